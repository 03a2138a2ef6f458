//! Run with: `cargo run --example custom_transport --features full`
//!
//! How to plug a transport of your own into mia — here a staging gateway that keeps every post
//! in memory, so a QA team can watch campaigns without Telegram — and prove it keeps the same
//! contract as the real ones: `mia::telegram::contract::transport_contract` runs the checks the
//! simulator and the Bot API transport pass (a key posts once, retry-after, blocks, opt-in and
//! STOP in order, updates paged without loss, overlong texts refused, replies, and what it
//! cannot do — schedule, format — refused rather than done wrong).
#![allow(clippy::print_stdout)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use mia::telegram::contract::{ContractHarness, transport_contract};
use mia::*;

#[derive(Default)]
struct Gateway {
    /// Chat, text, the message it replies to; a post's id is its position + 1.
    posts: Vec<(i64, String, Option<i64>)>,
    by_key: HashMap<IdempotencyKey, i64>,
    blocked: HashSet<i64>,
    throttled: HashMap<i64, u64>,
    inbound: VecDeque<InboundEvent>,
    next_update: u64,
}

/// The transport: everything a campaign send needs, in memory.
#[derive(Default)]
pub(crate) struct StagingTransport(Mutex<Gateway>);

impl StagingTransport {
    fn gateway(&self) -> std::sync::MutexGuard<'_, Gateway> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Transport for StagingTransport {
    fn name(&self) -> &str {
        "staging"
    }

    fn capabilities(&self) -> Capabilities {
        // It remembers every key for as long as it lives, but not across restarts.
        Capabilities {
            idempotent_sends: false,
            ..Capabilities::default()
        }
    }

    async fn send(&self, message: &OutboundMessage) -> Result<SendOutcome> {
        // No scheduling, no markup: refuse those instead of sending early or showing tags.
        self.capabilities()
            .check(self.name(), message, jiff::Timestamp::now())?;
        let mut g = self.gateway();
        if let Some(id) = g.by_key.get(&message.key) {
            return Ok(SendOutcome::Sent {
                message_id: *id,
                duplicate: true,
            });
        }
        if let Some(secs) = g.throttled.remove(&message.peer.id) {
            let after = Duration::from_secs(secs);
            return Ok(SendOutcome::RetryAfter {
                after,
                reason: "staging throttle".into(),
            });
        }
        if g.blocked.contains(&message.peer.id) {
            return Ok(SendOutcome::Failed(FailureReason::Blocked));
        }
        if message.text.chars().count() > 4096 {
            return Ok(SendOutcome::Failed(FailureReason::InvalidMessage(
                "too long".into(),
            )));
        }
        if let Some(reply_to) = message.reply_to {
            let exists = usize::try_from(reply_to - 1)
                .ok()
                .and_then(|i| g.posts.get(i))
                .is_some_and(|(chat, _, _)| *chat == message.peer.id);
            if !exists {
                return Ok(SendOutcome::Failed(FailureReason::InvalidMessage(
                    "message to be replied not found".into(),
                )));
            }
        }
        g.posts
            .push((message.peer.id, message.text.clone(), message.reply_to));
        let id = g.posts.len() as i64;
        g.by_key.insert(message.key.clone(), id);
        Ok(SendOutcome::Sent {
            message_id: id,
            duplicate: false,
        })
    }

    async fn receive(&self) -> Result<Vec<InboundEvent>> {
        // At most 100 per call, oldest first, like Telegram's getUpdates.
        let mut g = self.gateway();
        let n = g.inbound.len().min(100);
        Ok(g.inbound.drain(..n).collect())
    }
}

/// What the contract needs besides the transport: acting as users and as the service.
pub(crate) struct Harness(pub(crate) StagingTransport);

impl Harness {
    fn push(&self, user: i64, kind: InboundKind) {
        let mut g = self.0.gateway();
        g.next_update += 1;
        let id = format!("staging:{}", g.next_update);
        let (at, peer) = (jiff::Timestamp::now(), TelegramPeer::user(user));
        g.inbound.push_back(InboundEvent { id, at, peer, kind });
    }
}

#[async_trait]
impl ContractHarness for Harness {
    fn transport(&self) -> &dyn Transport {
        &self.0
    }
    async fn user_writes(&self, user: i64, text: &str) {
        // The same reading of `/start payload` and replies as every mia transport.
        let kind = mia::telegram::inbound_kind(text, None);
        self.push(user, kind);
    }
    async fn user_blocks(&self, user: i64) {
        self.0.gateway().blocked.insert(user);
        self.push(user, InboundKind::Blocked);
    }
    async fn rate_limit_next_send(&self, user: i64, secs: u64) {
        self.0.gateway().throttled.insert(user, secs);
    }
    async fn advance(&self, _by: Duration) {}
    async fn posted_to(&self, user: i64) -> Vec<String> {
        let g = self.0.gateway();
        g.posts
            .iter()
            .filter(|(p, _, _)| *p == user)
            .map(|(_, t, _)| t.clone())
            .collect()
    }
    async fn user_replies(&self, user: i64, text: &str, reply_to: i64) {
        let kind = mia::telegram::inbound_kind(text, Some(reply_to));
        self.push(user, kind);
    }
    async fn replies_posted_to(&self, user: i64) -> Vec<(i64, Option<i64>)> {
        let g = self.0.gateway();
        (1..)
            .zip(&g.posts)
            .filter(|(_, (p, _, _))| *p == user)
            .map(|(id, (_, _, reply_to))| (id, *reply_to))
            .collect()
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // The contract panics with the broken rule if the transport gets something wrong.
    transport_contract(&Harness(StagingTransport::default())).await;
    println!("StagingTransport keeps the transport contract; give it to Agent::builder.");
}
