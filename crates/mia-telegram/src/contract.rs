//! The transport contract: one suite every Telegram transport must pass — the simulator, the
//! Bot API transport against [`FakeBotApi`], a real bot when a token is given, and any
//! transport a host writes. Feature `testing`.
//!
//! A [`ContractHarness`] gives the suite the transport and a way to act as Telegram's users
//! (write, block) and as Telegram itself (rate-limit, report what it posted).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use mia_telegram::contract::{SimHarness, transport_contract};
//! transport_contract(&SimHarness::new()).await;
//! # }
//! ```

// A test suite: failing loudly with the broken rule is its job.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use mia_core::{
    Clock, ContactId, FailureReason, IdempotencyKey, InboundEvent, InboundKind, OutboundMessage,
    SendOutcome, TelegramPeer, TextFormat, Transport, VirtualClock,
};

use crate::bot_api::{BotApiConfig, BotApiTransport, FakeBotApi, FakeFailure};
use crate::sim::{Scripted, SimConfig, SimTelegram};

/// What the suite needs besides the transport: acting as users and as Telegram.
#[async_trait]
pub trait ContractHarness: Send + Sync {
    /// The transport under test.
    fn transport(&self) -> &dyn Transport;
    /// A person writes `text` to the sender in their private chat (`/start` opens it).
    async fn user_writes(&self, user: i64, text: &str);
    /// The person blocks the sender.
    async fn user_blocks(&self, user: i64);
    /// Telegram answers the next send to `user` with "too many requests, retry after `secs`".
    async fn rate_limit_next_send(&self, user: i64, secs: u64);
    /// Time passes for the transport (its clock moves forward).
    async fn advance(&self, by: Duration);
    /// The texts Telegram posted to `user`, in order: its own record, the ground truth. A
    /// formatted text appears as the reader sees it; a scheduled one once its time has come.
    async fn posted_to(&self, user: i64) -> Vec<String>;
    /// The person writes `text` quoting our message `reply_to`.
    async fn user_replies(&self, user: i64, text: &str, reply_to: i64);
    /// The messages Telegram posted to `user`, in order: `(message id, the message it replies
    /// to)`.
    async fn replies_posted_to(&self, user: i64) -> Vec<(i64, Option<i64>)>;
    /// The transport's time now (the clock it paces and schedules by); the system clock unless
    /// the harness has its own.
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

fn message(key: &str, user: i64, text: &str) -> OutboundMessage {
    OutboundMessage::new(
        IdempotencyKey::new(key),
        ContactId::new(format!("c{user}")),
        TelegramPeer::user(user),
        text,
    )
}

fn sent_id(outcome: &SendOutcome, what: &str) -> i64 {
    match outcome {
        SendOutcome::Sent {
            message_id,
            duplicate: false,
        } => *message_id,
        other => panic!("{what} must post: {other:?}"),
    }
}

async fn drain<H: ContractHarness + ?Sized>(h: &H) -> Vec<InboundEvent> {
    let mut all = Vec::new();
    // Bounded: a transport that redelivers forever fails the suite instead of hanging it.
    for _ in 0..50 {
        let batch = h.transport().receive().await.expect("receive");
        if batch.is_empty() {
            break;
        }
        all.extend(batch);
    }
    all
}

/// Runs the whole contract; panics with a message naming the broken rule.
pub async fn transport_contract<H: ContractHarness + ?Sized>(h: &H) {
    sends_once_per_key(h).await;
    retry_after_is_an_outcome(h).await;
    blocked_users_are_reported_and_refused(h).await;
    opt_in_and_opt_out_arrive_in_order(h).await;
    updates_are_paginated_without_loss_or_repeats(h).await;
    overlong_text_is_an_invalid_message(h).await;
    replies_round_trip(h).await;
    scheduled_messages_wait_for_their_time(h).await;
    markup_is_parsed_and_bad_markup_refused(h).await;
}

async fn replies_round_trip<H: ContractHarness + ?Sized>(h: &H) {
    h.user_writes(107, "/start").await;
    drain(h).await;
    h.advance(Duration::from_secs(2)).await;
    let order = message("contract:reply:1", 107, "Your order has shipped.");
    let first = sent_id(&h.transport().send(&order).await.expect("send"), "a send");
    h.advance(Duration::from_secs(2)).await;
    let follow_up = message("contract:reply:2", 107, "It arrives on Friday.").with_reply_to(first);
    let second = sent_id(
        &h.transport().send(&follow_up).await.expect("send"),
        "a reply to our own message",
    );
    assert_eq!(
        h.replies_posted_to(107).await,
        vec![(first, None), (second, Some(first))],
        "reply_to reaches Telegram"
    );
    h.user_replies(107, "Thanks!", first).await;
    let kinds: Vec<InboundKind> = drain(h)
        .await
        .into_iter()
        .filter(|e| e.peer == TelegramPeer::user(107))
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        vec![InboundKind::Text {
            text: "Thanks!".into(),
            reply_to: Some(first),
        }],
        "a reply names the message it quotes"
    );
    h.advance(Duration::from_secs(2)).await;
    let dangling = message("contract:reply:3", 107, "Re: nothing").with_reply_to(second + 1000);
    let outcome = h.transport().send(&dangling).await.expect("send");
    assert!(
        matches!(
            outcome,
            SendOutcome::Failed(FailureReason::InvalidMessage(_))
        ),
        "a reply to a message that does not exist is an invalid message: {outcome:?}"
    );
    assert_eq!(h.posted_to(107).await.len(), 2, "nothing posted for it");
}

async fn scheduled_messages_wait_for_their_time<H: ContractHarness + ?Sized>(h: &H) {
    h.user_writes(108, "/start").await;
    drain(h).await;
    h.advance(Duration::from_secs(2)).await;
    let text = "Doors open in an hour.";
    let hour = SignedDuration::from_hours(1);
    let later = message("contract:scheduled", 108, text).with_send_at(h.now() + hour);
    let outcome = h.transport().send(&later).await;
    if h.transport().capabilities().scheduled_sends {
        sent_id(&outcome.expect("send"), "a scheduled message");
        assert!(
            h.posted_to(108).await.is_empty(),
            "a scheduled message is not delivered before its time"
        );
        h.advance(Duration::from_secs(59 * 60)).await;
        assert!(h.posted_to(108).await.is_empty(), "not a minute early");
        h.advance(Duration::from_secs(2 * 60)).await;
        assert_eq!(
            h.posted_to(108).await,
            vec![text.to_owned()],
            "delivered at its time"
        );
    } else {
        let err = outcome.expect_err(
            "a transport that cannot schedule must refuse a message for later, not send it now",
        );
        assert!(!err.is_retryable(), "the refusal is final: {err}");
        assert!(err.to_string().contains("schedule"), "says why: {err}");
        assert!(h.posted_to(108).await.is_empty(), "nothing sent early");
    }
    h.advance(Duration::from_secs(2)).await;
    let due = message("contract:scheduled:due", 108, "Doors are open.")
        .with_send_at(h.now() - SignedDuration::from_secs(1));
    sent_id(
        &h.transport().send(&due).await.expect("send"),
        "a message whose time has come",
    );
    assert!(
        h.posted_to(108)
            .await
            .contains(&"Doors are open.".to_owned())
    );
}

async fn markup_is_parsed_and_bad_markup_refused<H: ContractHarness + ?Sized>(h: &H) {
    h.user_writes(109, "/start").await;
    drain(h).await;
    h.advance(Duration::from_secs(2)).await;
    if !h.transport().capabilities().formatting {
        let html =
            message("contract:html", 109, "<b>Spring</b> sale").with_format(TextFormat::Html);
        let err = h.transport().send(&html).await.expect_err(
            "a transport that cannot format must refuse markup, not show it to the reader",
        );
        assert!(!err.is_retryable(), "the refusal is final: {err}");
        assert!(h.posted_to(109).await.is_empty(), "nothing sent");
        return;
    }
    let html = message("contract:html", 109, "<b>Spring</b> sale &amp; <i>more</i>")
        .with_format(TextFormat::Html);
    sent_id(
        &h.transport().send(&html).await.expect("send"),
        "valid HTML",
    );
    h.advance(Duration::from_secs(2)).await;
    let markdown =
        message("contract:markdown", 109, "*20%* off\\!").with_format(TextFormat::MarkdownV2);
    sent_id(
        &h.transport().send(&markdown).await.expect("send"),
        "valid MarkdownV2",
    );
    h.advance(Duration::from_secs(2)).await;
    let plain = "<b>not bold</b> *nor this*.";
    sent_id(
        &h.transport()
            .send(&message("contract:plain", 109, plain))
            .await
            .expect("send"),
        "plain text",
    );
    assert_eq!(
        h.posted_to(109).await,
        vec![
            "Spring sale & more".to_owned(),
            "20% off!".to_owned(),
            plain.to_owned()
        ],
        "the reader sees the text without its markup, and plain text exactly as it was guarded"
    );
    for (key, text, format) in [
        ("contract:bad-html", "<b>Spring sale", TextFormat::Html),
        ("contract:bad-tag", "<blink>Sale</blink>", TextFormat::Html),
        ("contract:bad-markdown", "20% off.", TextFormat::MarkdownV2),
    ] {
        h.advance(Duration::from_secs(2)).await;
        let bad = message(key, 109, text).with_format(format);
        match h.transport().send(&bad).await.expect("send") {
            SendOutcome::Failed(FailureReason::InvalidMessage(why)) => assert!(
                why.contains("can't parse entities"),
                "{text:?} is refused as Telegram refuses it: {why}"
            ),
            other => panic!("bad markup {text:?} is a permanent invalid message: {other:?}"),
        }
    }
    assert_eq!(h.posted_to(109).await.len(), 3, "bad markup posts nothing");
}

async fn sends_once_per_key<H: ContractHarness + ?Sized>(h: &H) {
    h.user_writes(101, "/start").await;
    drain(h).await;
    let m = message("contract:once", 101, "Hello from the contract");
    let first = h.transport().send(&m).await.expect("send");
    let SendOutcome::Sent {
        message_id,
        duplicate: false,
    } = first
    else {
        panic!("a first send must post: {first:?}");
    };
    h.advance(Duration::from_secs(2)).await;
    let again = h.transport().send(&m).await.expect("resend");
    assert_eq!(
        again,
        SendOutcome::Sent {
            message_id,
            duplicate: true
        },
        "a resend of the same key must return the first message"
    );
    assert_eq!(
        h.posted_to(101).await,
        vec!["Hello from the contract".to_owned()],
        "a key is posted once"
    );
}

async fn retry_after_is_an_outcome<H: ContractHarness + ?Sized>(h: &H) {
    h.user_writes(102, "/start").await;
    drain(h).await;
    h.advance(Duration::from_secs(2)).await;
    h.rate_limit_next_send(102, 7).await;
    let m = message("contract:retry", 102, "After the wait");
    let outcome = h.transport().send(&m).await.expect("send");
    match outcome {
        SendOutcome::RetryAfter { after, .. } => assert!(
            after >= Duration::from_secs(7),
            "retry-after must keep Telegram's wait, got {after:?}"
        ),
        other => panic!("a rate-limited send must be RetryAfter, got {other:?}"),
    }
    assert!(
        h.posted_to(102).await.is_empty(),
        "nothing posted while limited"
    );
    h.advance(Duration::from_secs(8)).await;
    let outcome = h.transport().send(&m).await.expect("send after wait");
    assert!(
        matches!(
            outcome,
            SendOutcome::Sent {
                duplicate: false,
                ..
            }
        ),
        "after the wait the send goes through: {outcome:?}"
    );
    assert_eq!(h.posted_to(102).await.len(), 1);
}

async fn blocked_users_are_reported_and_refused<H: ContractHarness + ?Sized>(h: &H) {
    h.user_writes(103, "/start").await;
    drain(h).await;
    h.user_blocks(103).await;
    let events = drain(h).await;
    assert!(
        events
            .iter()
            .any(|e| e.peer == TelegramPeer::user(103) && e.kind == InboundKind::Blocked),
        "a block arrives as an inbound event: {events:?}"
    );
    h.advance(Duration::from_secs(2)).await;
    let outcome = h
        .transport()
        .send(&message("contract:blocked", 103, "Anyone there?"))
        .await
        .expect("send");
    assert_eq!(outcome, SendOutcome::Failed(FailureReason::Blocked));
    assert!(h.posted_to(103).await.is_empty());
}

async fn opt_in_and_opt_out_arrive_in_order<H: ContractHarness + ?Sized>(h: &H) {
    h.user_writes(104, "/start spring_sale").await;
    h.user_writes(104, "Is the blue one in stock?").await;
    h.user_writes(104, "STOP").await;
    h.user_writes(104, "/stop").await;
    let kinds: Vec<InboundKind> = drain(h)
        .await
        .into_iter()
        .filter(|e| e.peer == TelegramPeer::user(104))
        .map(|e| e.kind)
        .collect();
    let expected = vec![
        InboundKind::Command {
            name: "start".into(),
            payload: "spring_sale".into(),
        },
        InboundKind::Text {
            text: "Is the blue one in stock?".into(),
            reply_to: None,
        },
        InboundKind::Text {
            text: "STOP".into(),
            reply_to: None,
        },
        InboundKind::Command {
            name: "stop".into(),
            payload: String::new(),
        },
    ];
    assert_eq!(kinds, expected, "opt-in, reply and opt-outs, in order");
}

async fn updates_are_paginated_without_loss_or_repeats<H: ContractHarness + ?Sized>(h: &H) {
    for i in 0..250 {
        h.user_writes(105, &format!("message {i}")).await;
    }
    let events: Vec<InboundEvent> = drain(h)
        .await
        .into_iter()
        .filter(|e| e.peer == TelegramPeer::user(105))
        .collect();
    let texts: Vec<String> = events
        .iter()
        .filter_map(|e| match &e.kind {
            InboundKind::Text { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect();
    let expected: Vec<String> = (0..250).map(|i| format!("message {i}")).collect();
    assert_eq!(texts, expected, "every update once, in order");
    let ids: HashSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), 250, "event ids are unique");
    assert!(
        drain(h).await.is_empty(),
        "confirmed updates are not delivered again"
    );
}

async fn overlong_text_is_an_invalid_message<H: ContractHarness + ?Sized>(h: &H) {
    h.user_writes(106, "/start").await;
    drain(h).await;
    let text = "x".repeat(4097);
    let outcome = h
        .transport()
        .send(&message("contract:long", 106, &text))
        .await
        .expect("send");
    assert!(
        matches!(
            outcome,
            SendOutcome::Failed(FailureReason::InvalidMessage(_))
        ),
        "4097 characters is an invalid message: {outcome:?}"
    );
}

fn start() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The simulator under the contract, on a [`VirtualClock`].
#[derive(Debug)]
pub struct SimHarness {
    clock: Arc<VirtualClock>,
    sim: SimTelegram,
}

impl SimHarness {
    /// A simulator where nobody is deactivated or blocked up front.
    ///
    /// # Panics
    /// Never: the configuration is valid.
    pub fn new() -> Self {
        let clock = Arc::new(VirtualClock::starting_at(start()));
        let config = SimConfig {
            deactivated_share: 0.0,
            blocked_share: 0.0,
            ..SimConfig::seeded(1)
        };
        let sim = SimTelegram::new(config, clock.clone()).expect("valid simulator config");
        Self { clock, sim }
    }
}

impl Default for SimHarness {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl ContractHarness for SimHarness {
    fn transport(&self) -> &dyn Transport {
        &self.sim
    }
    async fn user_writes(&self, user: i64, text: &str) {
        self.sim.user_writes(TelegramPeer::user(user), text);
    }
    async fn user_blocks(&self, user: i64) {
        self.sim.user_blocks(TelegramPeer::user(user));
    }
    async fn rate_limit_next_send(&self, user: i64, secs: u64) {
        self.sim.script(
            TelegramPeer::user(user),
            [Scripted::Outcome(SendOutcome::RetryAfter {
                after: Duration::from_secs(secs),
                reason: format!("FLOOD_WAIT_{secs}"),
            })],
        );
    }
    async fn advance(&self, by: Duration) {
        self.clock
            .advance(SignedDuration::try_from(by).unwrap_or(SignedDuration::MAX));
    }
    async fn posted_to(&self, user: i64) -> Vec<String> {
        self.sim
            .sent_log()
            .into_iter()
            .filter(|m| m.peer == TelegramPeer::user(user))
            .map(|m| m.text)
            .collect()
    }
    async fn user_replies(&self, user: i64, text: &str, reply_to: i64) {
        self.sim.push_inbound(
            TelegramPeer::user(user),
            InboundKind::Text {
                text: text.to_owned(),
                reply_to: Some(reply_to),
            },
            self.clock.now(),
        );
    }
    async fn replies_posted_to(&self, user: i64) -> Vec<(i64, Option<i64>)> {
        self.sim
            .sent_log()
            .into_iter()
            .filter(|m| m.peer == TelegramPeer::user(user))
            .map(|m| (m.message_id, m.reply_to))
            .collect()
    }
    fn now(&self) -> Timestamp {
        self.clock.now()
    }
}

/// The Bot API transport against a [`FakeBotApi`], pacing on a [`VirtualClock`].
#[derive(Debug)]
pub struct FakeBotApiHarness {
    clock: Arc<VirtualClock>,
    /// The fake server (script failures, read what it posted).
    pub fake: FakeBotApi,
    /// The transport under test.
    pub transport: BotApiTransport,
}

impl FakeBotApiHarness {
    /// Starts a fake server and a transport pointed at it.
    ///
    /// # Panics
    /// When the fake's address is not a valid API base (it always is).
    pub async fn start() -> Self {
        let fake = FakeBotApi::start().await;
        let clock = Arc::new(VirtualClock::starting_at(start()));
        let config = BotApiConfig::new(fake.token())
            .with_api_base(fake.url())
            .expect("the fake serves http")
            .with_request_timeout(Duration::from_secs(5));
        let transport = BotApiTransport::new(config)
            .expect("http client")
            .with_clock(clock.clone());
        Self {
            clock,
            fake,
            transport,
        }
    }
}

#[async_trait]
impl ContractHarness for FakeBotApiHarness {
    fn transport(&self) -> &dyn Transport {
        &self.transport
    }
    async fn user_writes(&self, user: i64, text: &str) {
        self.fake.user_writes(user, text);
    }
    async fn user_blocks(&self, user: i64) {
        self.fake.user_blocks(user);
    }
    async fn rate_limit_next_send(&self, user: i64, secs: u64) {
        self.fake
            .fail_next(user, [FakeFailure::TooManyRequests(secs)]);
    }
    async fn advance(&self, by: Duration) {
        self.clock
            .advance(SignedDuration::try_from(by).unwrap_or(SignedDuration::MAX));
    }
    async fn posted_to(&self, user: i64) -> Vec<String> {
        self.fake.texts_to(user)
    }
    async fn user_replies(&self, user: i64, text: &str, reply_to: i64) {
        self.fake.user_replies(user, text, Some(reply_to));
    }
    async fn replies_posted_to(&self, user: i64) -> Vec<(i64, Option<i64>)> {
        self.fake
            .messages()
            .into_iter()
            .filter(|m| m.chat_id == user)
            .map(|m| (m.message_id, m.reply_to))
            .collect()
    }
    fn now(&self) -> Timestamp {
        self.clock.now()
    }
}
