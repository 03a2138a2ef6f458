//! A simulated Telegram with virtual time, seeded: rate limits answered with retry-after like
//! the real service, idempotent sends, and simulated people who read, click, buy, reply, send
//! STOP or block, according to a [`Behaviour`] per variant.
//!
//! Time comes from the [`Clock`] it is given (share the agent's
//! [`SimClock`](mia_core::SimClock) so that both live in the same virtual time).

mod config;
mod hidden;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use mia_core::{
    CampaignId, Capabilities, ChatAdmin, ChatKind, Clock, FailureReason, IdempotencyKey,
    InboundEvent, InboundKind, InviteReport, Invitee, NewChat, OutboundMessage, PeerKind,
    SendOutcome, TelegramPeer, TextEntity, Transport, VariantId,
};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

pub use config::{Behaviour, SimConfig};
pub use hidden::{MethodLimit, SimMethod};

use crate::error::TelegramError;
use crate::limits::{Pacer, whole_seconds};

/// A message as the simulated Telegram recorded it: its own log, the ground truth for tests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SentMessage {
    /// Telegram's message id.
    pub message_id: i64,
    /// The idempotency key it was sent with.
    pub key: IdempotencyKey,
    /// The campaign, if the sender said (`None` for service replies such as STOP confirmations).
    pub campaign: Option<CampaignId>,
    /// The chat.
    pub peer: TelegramPeer,
    /// The text as the reader sees it (markup parsed and removed; after edits).
    pub text: String,
    /// Its formatting, parsed from the markup it was sent with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entities: Vec<TextEntity>,
    /// The message it replies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<i64>,
    /// The variant, if the sender said.
    pub variant: Option<VariantId>,
    /// When it reached the chat: when Telegram accepted it, or the time it was scheduled for.
    pub at: Timestamp,
    /// Sent with a schedule: Telegram holds it until [`at`](Self::at).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub scheduled: bool,
    /// Whether it was deleted.
    pub deleted: bool,
    /// Whether it is pinned.
    pub pinned: bool,
}

impl SentMessage {
    /// Whether it is in the chat at `now` (a scheduled message only from its time on).
    pub fn delivered_by(&self, now: Timestamp) -> bool {
        !self.scheduled || self.at <= now
    }
}

/// A scripted answer for the next send to a chat, for tests of failure handling.
#[derive(Clone, Debug, PartialEq)]
pub enum Scripted {
    /// Answer with this outcome (without posting, unless it is `Sent`).
    Outcome(SendOutcome),
    /// Fail as a dropped connection would (a retryable transport error).
    Outage,
}

#[derive(Default)]
struct State {
    next_message_id: i64,
    next_update_id: u64,
    by_key: HashMap<IdempotencyKey, i64>,
    log: Vec<SentMessage>,
    index: HashMap<(i64, i64), usize>,
    pacer: Pacer,
    inbound: BinaryHeap<Reverse<(Timestamp, u64)>>,
    pending: HashMap<u64, InboundEvent>,
    blocked: HashMap<i64, bool>,
    scripted: HashMap<i64, VecDeque<Scripted>>,
    rate_limited: u64,
    journal: Option<std::fs::File>,
    /// People who wrote to the sender (any command or text): messages to them are not cold.
    wrote_first: std::collections::HashSet<i64>,
    cold_sent: u32,
    spam_limited: bool,
    /// Per chat: until when its flood wait runs, and how long the last one was.
    flood: HashMap<i64, (Timestamp, SignedDuration)>,
    slow_last: HashMap<i64, Timestamp>,
    /// Calls against the hidden per-method limits.
    methods: hidden::MethodCalls,
    /// Chats the sender created: their members, how many invite links were made.
    chats: BTreeMap<i64, SimChat>,
    usernames: HashMap<String, TelegramPeer>,
    next_chat: i64,
}

struct SimChat {
    members: std::collections::BTreeSet<i64>,
    links: u64,
}

/// The simulated Telegram. Cheap to clone; clones share one simulated world.
#[derive(Clone)]
pub struct SimTelegram {
    config: Arc<SimConfig>,
    clock: Arc<dyn Clock>,
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for SimTelegram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimTelegram")
            .field("seed", &self.config.seed)
            .finish_non_exhaustive()
    }
}

fn stable_hash(parts: &[&[u8]]) -> u64 {
    // FNV-1a: stable across platforms and releases, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.iter().chain(&[0xff]) {
            h ^= u64::from(*byte);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

fn exp_delay(rng: &mut StdRng, mean: Duration) -> SignedDuration {
    // Inverse-CDF sampling; 1 - u is in (0, 1] so ln is finite.
    let u: f64 = rng.random();
    let secs = -mean.as_secs_f64() * (1.0 - u).ln();
    SignedDuration::from_secs_f64(secs.min(30.0 * 86_400.0)).max(SignedDuration::from_secs(1))
}

impl SimTelegram {
    /// A simulated Telegram living in `clock`'s time.
    ///
    /// # Errors
    /// [`TelegramError::Config`] for an invalid configuration.
    pub fn new(config: SimConfig, clock: Arc<dyn Clock>) -> Result<Self, TelegramError> {
        config.validate()?;
        Ok(Self {
            config: Arc::new(config),
            clock,
            state: Arc::new(Mutex::new(State {
                next_message_id: 1,
                next_update_id: 1,
                ..State::default()
            })),
        })
    }

    /// A simulated Telegram whose posts survive the process: every post is appended to the
    /// journal at `path` (one JSON line each) before `send` returns, and an existing journal is
    /// loaded first, so a restarted process sees what "Telegram" already has and a resend of
    /// the same key is recognised. Edits and deletes are not journaled.
    ///
    /// A torn last line (the process died inside the write, before `send` returned) is ignored:
    /// that post never happened as far as the sender could know.
    ///
    /// # Errors
    /// [`TelegramError::Config`] for an invalid configuration; [`TelegramError::Journal`] when
    /// the journal cannot be read, parsed or opened.
    pub fn with_journal(
        config: SimConfig,
        clock: Arc<dyn Clock>,
        path: impl AsRef<std::path::Path>,
    ) -> Result<Self, TelegramError> {
        use std::io::Write;
        let path = path.as_ref();
        let sim = Self::new(config, clock)?;
        let journal_error = |e: std::io::Error| TelegramError::Journal {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(journal_error(e)),
        };
        let complete = text.rsplit_once('\n').map_or("", |(done, _)| done);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(journal_error)?;
        if !text.is_empty() && !text.ends_with('\n') {
            // Drop the torn tail so the next line starts clean.
            let keep = complete.len() + usize::from(!complete.is_empty());
            file.set_len(keep as u64).map_err(journal_error)?;
            file.flush().map_err(journal_error)?;
        }
        {
            let mut state = sim.lock();
            for (n, line) in complete.lines().enumerate() {
                let m: SentMessage =
                    serde_json::from_str(line).map_err(|e| TelegramError::Journal {
                        path: path.display().to_string(),
                        message: format!("line {}: {e}", n + 1),
                    })?;
                state.next_message_id = state.next_message_id.max(m.message_id + 1);
                state.by_key.insert(m.key.clone(), m.message_id);
                let position = state.log.len();
                state.index.insert((m.peer.id, m.message_id), position);
                state.log.push(m);
            }
            state.journal = Some(file);
        }
        Ok(sim)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every mutation below is complete before anything can panic, so poison is harmless.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every message posted, in the order Telegram accepted them, including deleted ones; a
    /// scheduled message appears once its time has come.
    pub fn sent_log(&self) -> Vec<SentMessage> {
        let now = self.clock.now();
        self.lock()
            .log
            .iter()
            .filter(|m| m.delivered_by(now))
            .cloned()
            .collect()
    }

    /// Scheduled messages Telegram holds until their time, soonest first.
    pub fn scheduled(&self) -> Vec<SentMessage> {
        let now = self.clock.now();
        let mut held: Vec<SentMessage> = self
            .lock()
            .log
            .iter()
            .filter(|m| !m.delivered_by(now))
            .cloned()
            .collect();
        held.sort_by_key(|m| m.at);
        held
    }

    /// How many sends were answered with a retry-after because of a rate limit.
    pub fn rate_limited_count(&self) -> u64 {
        self.lock().rate_limited
    }

    /// Queues answers for the next sends to `peer`, consumed one per send.
    pub fn script(&self, peer: TelegramPeer, answers: impl IntoIterator<Item = Scripted>) {
        self.lock()
            .scripted
            .entry(peer.id)
            .or_default()
            .extend(answers);
    }

    /// Makes a simulated person do something at `at` (write `/start`, STOP, a reply...).
    pub fn push_inbound(&self, peer: TelegramPeer, kind: InboundKind, at: Timestamp) {
        let mut state = self.lock();
        Self::schedule(&mut state, peer, kind, at);
    }

    /// A person blocks the sender now: a [`InboundKind::Blocked`] event, and sends to them
    /// fail with [`FailureReason::Blocked`] from now on.
    pub fn user_blocks(&self, peer: TelegramPeer) {
        let now = self.clock.now();
        let mut state = self.lock();
        state.blocked.insert(peer.id, true);
        Self::schedule(&mut state, peer, InboundKind::Blocked, now);
    }

    /// A person writes text to the bot now. `/command payload` becomes a command.
    pub fn user_writes(&self, peer: TelegramPeer, text: &str) {
        let kind = crate::command::inbound_kind(text, None);
        self.push_inbound(peer, kind, self.clock.now());
    }

    /// Marks people as having written to the sender (they started the bot, or wrote to the
    /// account), so messages to them are not cold (see [`SimConfig::cold_message_limit`]).
    pub fn wrote_first(&self, peers: impl IntoIterator<Item = TelegramPeer>) {
        let mut state = self.lock();
        state.wrote_first.extend(peers.into_iter().map(|p| p.id));
    }

    /// The hidden limit of `method` in this simulated world (drawn from the seed). A dry-run
    /// may report it; a sender should not tune to it, as the real numbers are unknown.
    pub fn hidden_limit(&self, method: SimMethod) -> MethodLimit {
        hidden::hidden_limit(self.config.seed, method)
    }

    /// How many calls other than sends were answered with a flood wait (hidden limits).
    pub fn method_limited_count(&self) -> u64 {
        self.lock().methods.limited
    }

    /// Gives `peer` the public username `username` (any accepted form), so
    /// [`ChatAdmin::resolve_username`] finds it.
    ///
    /// # Errors
    /// [`TelegramError::Config`] for a malformed username.
    pub fn set_username(&self, username: &str, peer: TelegramPeer) -> Result<(), TelegramError> {
        let name = crate::username::normalize_username(username)?;
        self.lock().usernames.insert(name, peer);
        Ok(())
    }

    /// The people in a chat the sender created, by user id; `None` for an unknown chat.
    pub fn members(&self, chat: TelegramPeer) -> Option<Vec<i64>> {
        self.lock()
            .chats
            .get(&chat.id)
            .map(|c| c.members.iter().copied().collect())
    }

    /// Admits `n` calls of `method` under its hidden limit, or the flood wait to answer.
    fn admit(&self, state: &mut State, method: SimMethod, n: u32) -> Result<(), TelegramError> {
        if !self.config.hidden_limits {
            return Ok(());
        }
        let limit = self.hidden_limit(method);
        let now = self.clock.now();
        state
            .methods
            .admit(method, limit, n, self.config.flood_escalation, now)
            .map_err(|after| TelegramError::FloodWait {
                method: method.name(),
                after,
            })
    }

    /// Whether Telegram has limited the account for spam (`PEER_FLOOD`).
    pub fn spam_limited(&self) -> bool {
        self.lock().spam_limited
    }

    fn schedule(state: &mut State, peer: TelegramPeer, kind: InboundKind, at: Timestamp) {
        if matches!(kind, InboundKind::Command { .. } | InboundKind::Text { .. }) {
            state.wrote_first.insert(peer.id);
        }
        let update = state.next_update_id;
        state.next_update_id += 1;
        state.pending.insert(
            update,
            InboundEvent {
                // The time makes ids unique across restarts of a journaled simulator.
                id: format!("sim-{}-{update}", at.as_microsecond()),
                at,
                peer,
                kind,
            },
        );
        state.inbound.push(Reverse((at, update)));
    }

    /// Whether the chat is gone or blocked us, drawn once per chat from the seed.
    fn chat_fate(&self, peer: TelegramPeer) -> Option<FailureReason> {
        let mut rng = StdRng::seed_from_u64(stable_hash(&[
            &self.config.seed.to_be_bytes(),
            b"chat",
            &peer.id.to_be_bytes(),
        ]));
        let u: f64 = rng.random();
        if u < self.config.deactivated_share {
            Some(FailureReason::Deactivated)
        } else if u < self.config.deactivated_share + self.config.blocked_share {
            Some(FailureReason::Blocked)
        } else if u < self.config.deactivated_share
            + self.config.blocked_share
            + self.config.privacy_share
        {
            Some(FailureReason::PrivacyRestricted)
        } else {
            None
        }
    }

    /// Telegram's flood control for a send to `peer` at `now`: the limits, slow mode, and a
    /// doubled wait for a sender that tries again before its wait ran out.
    fn flood_control(
        &self,
        state: &mut State,
        peer: TelegramPeer,
        now: Timestamp,
    ) -> Option<SendOutcome> {
        let (wait, reason) = if let Some((until, last)) = state.flood.get(&peer.id).copied()
            && now < until
            && self.config.flood_escalation
        {
            let next = (last * 2).min(SignedDuration::from_hours(1));
            (next, "FLOOD_WAIT: sent again before the wait ran out")
        } else if let Some(gap) = self.config.slow_mode.get(&peer.id)
            && let Some(last) = state.slow_last.get(&peer.id)
            && now.duration_since(*last) < SignedDuration::try_from(*gap).unwrap_or_default()
        {
            let gap = SignedDuration::try_from(*gap).unwrap_or_default();
            (gap - now.duration_since(*last), "SLOWMODE_WAIT")
        } else if let Some(wait) = state.pacer.wait(&self.config.limits, peer, now) {
            (wait, "Too Many Requests: retry after")
        } else {
            return None;
        };
        let after = whole_seconds(wait);
        let whole = SignedDuration::try_from(after).unwrap_or(wait);
        state.flood.insert(peer.id, (now + whole, whole));
        state.rate_limited += 1;
        Some(SendOutcome::RetryAfter {
            after,
            reason: reason.into(),
        })
    }

    /// Plans what the recipient of a new message will do, from a generator seeded by the key.
    fn plan_reactions(
        &self,
        state: &mut State,
        message: &OutboundMessage,
        message_id: i64,
        now: Timestamp,
    ) {
        if message.campaign.is_none() {
            return;
        }
        let b = self.config.behaviour_for(message.variant.as_ref());
        let mut rng = StdRng::seed_from_u64(stable_hash(&[
            &self.config.seed.to_be_bytes(),
            message.key.as_str().as_bytes(),
        ]));
        let peer = message.peer;
        if !rng.random_bool(b.delivered) {
            return;
        }
        let delivered_at = now + SignedDuration::from_secs(rng.random_range(1..=20));
        Self::schedule(
            state,
            peer,
            InboundKind::Delivered { message_id },
            delivered_at,
        );
        if !rng.random_bool(b.read) {
            return;
        }
        let read_at = delivered_at + exp_delay(&mut rng, b.mean_time_to_read);
        Self::schedule(state, peer, InboundKind::Read { message_id }, read_at);
        let act_at = read_at + exp_delay(&mut rng, b.mean_time_to_act);
        if rng.random_bool(b.stop) {
            Self::schedule(
                state,
                peer,
                InboundKind::Text {
                    text: "STOP".into(),
                    reply_to: Some(message_id),
                },
                act_at,
            );
            return;
        }
        if rng.random_bool(b.block) {
            Self::schedule(state, peer, InboundKind::Blocked, act_at);
            state.blocked.insert(peer.id, true);
            return;
        }
        if rng.random_bool(b.replied) {
            let text = "Is this available in my size?".to_owned();
            Self::schedule(
                state,
                peer,
                InboundKind::Text {
                    text,
                    reply_to: Some(message_id),
                },
                act_at,
            );
        }
        if rng.random_bool(b.clicked) {
            Self::schedule(state, peer, InboundKind::Clicked { message_id }, act_at);
            if rng.random_bool(b.converted) {
                let (lo, hi) = b.order_value_minor;
                let value_minor = rng.random_range(lo..=hi);
                let at = act_at + exp_delay(&mut rng, b.mean_time_to_convert);
                Self::schedule(
                    state,
                    peer,
                    InboundKind::Converted {
                        message_id,
                        value_minor,
                    },
                    at,
                );
            }
        }
    }
}

#[async_trait]
impl Transport for SimTelegram {
    fn name(&self) -> &str {
        "sim"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            messages_per_second: Some(f64::from(self.config.limits.global_per_second)),
            max_text_chars: 4096,
            read_receipts: true,
            // Its log recognises a key, across restarts with a journal.
            idempotent_sends: true,
            scheduled_sends: true,
            formatting: true,
        }
    }

    async fn send(&self, message: &OutboundMessage) -> mia_core::Result<SendOutcome> {
        let now = self.clock.now();
        let mut state = self.lock();
        // A resend of a key that was posted is the original message (RANDOM_ID_DUPLICATE).
        if let Some(id) = state.by_key.get(&message.key) {
            return Ok(SendOutcome::Sent {
                message_id: *id,
                duplicate: true,
            });
        }
        if let Some(next) = state
            .scripted
            .get_mut(&message.peer.id)
            .and_then(VecDeque::pop_front)
        {
            match next {
                Scripted::Outage => return Err(TelegramError::SimulatedOutage.into()),
                Scripted::Outcome(SendOutcome::Sent { .. }) => {}
                Scripted::Outcome(other) => return Ok(other),
            }
        }
        // Telegram parses the markup first and counts what the reader will see.
        let formatted = match message.formatted() {
            Ok(formatted) => formatted,
            Err(e) => {
                return Ok(SendOutcome::Failed(FailureReason::InvalidMessage(
                    e.to_string(),
                )));
            }
        };
        let chars = formatted.text.chars().count();
        if chars == 0 || chars > 4096 {
            return Ok(SendOutcome::Failed(FailureReason::InvalidMessage(format!(
                "MESSAGE_TOO_LONG or empty: {chars} characters"
            ))));
        }
        if let Some(reply_to) = message.reply_to
            && !state
                .index
                .get(&(message.peer.id, reply_to))
                .and_then(|i| state.log.get(*i))
                .is_some_and(|m| !m.deleted && m.delivered_by(now))
        {
            return Ok(SendOutcome::Failed(FailureReason::InvalidMessage(format!(
                "REPLY_MESSAGE_ID_INVALID: message {reply_to} to be replied not found"
            ))));
        }
        let deliver_at = message.send_at.filter(|at| *at > now).unwrap_or(now);
        if deliver_at.duration_since(now) > SignedDuration::from_hours(365 * 24) {
            return Ok(SendOutcome::Failed(FailureReason::InvalidMessage(
                "SCHEDULE_DATE_TOO_LATE: at most 365 days ahead".into(),
            )));
        }
        if let Some(fate) = self.chat_fate(message.peer) {
            return Ok(SendOutcome::Failed(fate));
        }
        if state
            .blocked
            .get(&message.peer.id)
            .copied()
            .unwrap_or(false)
        {
            return Ok(SendOutcome::Failed(FailureReason::Blocked));
        }
        if let Some(outcome) = self.flood_control(&mut state, message.peer, now) {
            return Ok(outcome);
        }
        let cold =
            message.peer.kind == PeerKind::User && !state.wrote_first.contains(&message.peer.id);
        if cold && state.spam_limited {
            return Ok(SendOutcome::Failed(FailureReason::SpamLimited));
        }
        if cold && let Some(limit) = self.config.cold_message_limit {
            if state.cold_sent >= limit {
                state.spam_limited = true;
                return Ok(SendOutcome::Failed(FailureReason::SpamLimited));
            }
            state.cold_sent += 1;
        }
        state.pacer.record(message.peer, now);
        if self.config.slow_mode.contains_key(&message.peer.id) {
            state.slow_last.insert(message.peer.id, now);
        }
        let message_id = state.next_message_id;
        let posted = SentMessage {
            message_id,
            key: message.key.clone(),
            campaign: message.campaign.clone(),
            peer: message.peer,
            text: formatted.text,
            entities: formatted.entities,
            reply_to: message.reply_to,
            variant: message.variant.clone(),
            at: deliver_at,
            scheduled: deliver_at > now,
            deleted: false,
            pinned: false,
        };
        if let Some(journal) = state.journal.as_mut() {
            use std::io::Write;
            let mut line = serde_json::to_vec(&posted).map_err(|e| TelegramError::Journal {
                path: "journal".into(),
                message: e.to_string(),
            })?;
            line.push(b'\n');
            // One write call per line: a killed process leaves at most a torn last line.
            journal
                .write_all(&line)
                .map_err(|e| TelegramError::Journal {
                    path: "journal".into(),
                    message: e.to_string(),
                })?;
        }
        state.next_message_id += 1;
        state.by_key.insert(message.key.clone(), message_id);
        let position = state.log.len();
        state.index.insert((message.peer.id, message_id), position);
        state.log.push(posted);
        self.plan_reactions(&mut state, message, message_id, deliver_at);
        Ok(SendOutcome::Sent {
            message_id,
            duplicate: false,
        })
    }

    async fn receive(&self) -> mia_core::Result<Vec<InboundEvent>> {
        let now = self.clock.now();
        let mut state = self.lock();
        let mut due = Vec::new();
        while let Some(Reverse((at, update))) = state.inbound.peek().copied() {
            if at > now {
                break;
            }
            state.inbound.pop();
            if let Some(event) = state.pending.remove(&update) {
                due.push(event);
            }
        }
        Ok(due)
    }

    fn next_inbound_in(&self) -> Option<Duration> {
        let now = self.clock.now();
        let state = self.lock();
        state.inbound.peek().map(|Reverse((at, _))| {
            Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO)
        })
    }
}

#[async_trait]
impl ChatAdmin for SimTelegram {
    async fn edit_message(
        &self,
        peer: TelegramPeer,
        message_id: i64,
        text: &str,
    ) -> mia_core::Result<()> {
        let mut state = self.lock();
        self.admit(&mut state, SimMethod::EditMessage, 1)?;
        let i = live(&state, peer, message_id)?;
        state.log[i].text = text.to_owned();
        state.log[i].entities.clear();
        Ok(())
    }

    async fn delete_message(&self, peer: TelegramPeer, message_id: i64) -> mia_core::Result<()> {
        let mut state = self.lock();
        self.admit(&mut state, SimMethod::DeleteMessage, 1)?;
        let i = live(&state, peer, message_id)?;
        state.log[i].deleted = true;
        Ok(())
    }

    async fn pin_message(&self, peer: TelegramPeer, message_id: i64) -> mia_core::Result<()> {
        let mut state = self.lock();
        self.admit(&mut state, SimMethod::PinMessage, 1)?;
        let i = live(&state, peer, message_id)?;
        state.log[i].pinned = true;
        Ok(())
    }

    async fn create_chat(&self, chat: &NewChat) -> mia_core::Result<TelegramPeer> {
        chat.validate()?;
        let mut state = self.lock();
        self.admit(&mut state, SimMethod::CreateChat, 1)?;
        state.next_chat += 1;
        let n = state.next_chat;
        // Bot API style ids: basic groups -N, supergroups and channels -100N.
        let peer = match chat.kind {
            ChatKind::Group => TelegramPeer::group(-(4_000_000_000 + n)),
            ChatKind::Supergroup => TelegramPeer::group(-(1_000_000_000_000 + n)),
            ChatKind::Channel => TelegramPeer::channel(-(1_000_000_000_000 + n)),
        };
        state.chats.insert(
            peer.id,
            SimChat {
                members: std::collections::BTreeSet::new(),
                links: 0,
            },
        );
        Ok(peer)
    }

    async fn export_invite_link(
        &self,
        chat: TelegramPeer,
        member_limit: Option<u32>,
    ) -> mia_core::Result<String> {
        if member_limit.is_some_and(|n| !(1..=99_999).contains(&n)) {
            return Err(mia_core::Error::invalid(
                "member_limit must be 1 to 99999 (USAGE_LIMIT_INVALID)",
            ));
        }
        let mut state = self.lock();
        self.admit(&mut state, SimMethod::ExportInviteLink, 1)?;
        let seed = self.config.seed;
        let Some(known) = state.chats.get_mut(&chat.id) else {
            return Err(mia_core::Error::not_found("chat", chat.id));
        };
        known.links += 1;
        let token = stable_hash(&[
            &seed.to_be_bytes(),
            b"invite",
            &chat.id.to_be_bytes(),
            &known.links.to_be_bytes(),
        ]);
        Ok(format!("https://t.me/+sim{token:016x}"))
    }

    async fn resolve_username(&self, username: &str) -> mia_core::Result<Option<TelegramPeer>> {
        let name = crate::username::normalize_username(username)
            .map_err(|e| mia_core::Error::invalid(e.to_string()))?;
        let mut state = self.lock();
        self.admit(&mut state, SimMethod::ResolveUsername, 1)?;
        Ok(state.usernames.get(&name).copied())
    }

    async fn invite_members(
        &self,
        chat: TelegramPeer,
        invitees: &[Invitee],
    ) -> mia_core::Result<InviteReport> {
        let mut state = self.lock();
        if !state.chats.contains_key(&chat.id) {
            return Err(mia_core::Error::not_found("chat", chat.id));
        }
        let n = u32::try_from(invitees.len()).unwrap_or(u32::MAX);
        self.admit(&mut state, SimMethod::InviteMembers, n)?;
        let mut report = InviteReport::default();
        for invitee in invitees {
            let peer = invitee.peer();
            let refused = self.chat_fate(peer).or_else(|| {
                state
                    .blocked
                    .get(&peer.id)
                    .copied()
                    .unwrap_or(false)
                    .then_some(FailureReason::PrivacyRestricted)
            });
            match refused {
                // Telegram's `missing_invitees`: their privacy settings keep them out.
                Some(reason) => report.not_invited.push((invitee.contact().clone(), reason)),
                None => {
                    if let Some(known) = state.chats.get_mut(&chat.id) {
                        known.members.insert(peer.id);
                    }
                    report.invited.push(invitee.contact().clone());
                }
            }
        }
        Ok(report)
    }
}

fn live(state: &State, peer: TelegramPeer, message_id: i64) -> mia_core::Result<usize> {
    state
        .index
        .get(&(peer.id, message_id))
        .copied()
        .filter(|i| state.log.get(*i).is_some_and(|m| !m.deleted))
        .ok_or_else(|| {
            TelegramError::MessageNotFound {
                chat: peer.id,
                message_id,
            }
            .into()
        })
}

/// Per-variant counts from the simulator's own log: what was actually posted.
pub fn posted_by_variant(log: &[SentMessage]) -> BTreeMap<Option<VariantId>, usize> {
    let mut out = BTreeMap::new();
    for m in log {
        *out.entry(m.variant.clone()).or_default() += 1;
    }
    out
}

#[cfg(test)]
mod tests;
