//! The Bot API transport against the local fake: every error path Telegram can answer with.
#![cfg(feature = "testing")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use mia_core::{
    ChatAdmin, ContactId, FailureReason, IdempotencyKey, OutboundMessage, SendOutcome,
    TelegramPeer, Transport, VirtualClock,
};
use mia_telegram::bot_api::{BotApiConfig, BotApiTransport, FakeBotApi, FakeFailure};
use mia_telegram::{Limits, TelegramError};

fn message(key: &str, peer: TelegramPeer, text: &str) -> OutboundMessage {
    OutboundMessage::new(
        IdempotencyKey::new(key),
        ContactId::new(format!("c{}", peer.id)),
        peer,
        text,
    )
}

struct Setup {
    fake: FakeBotApi,
    clock: Arc<VirtualClock>,
    transport: BotApiTransport,
}

async fn setup(config: impl FnOnce(BotApiConfig) -> BotApiConfig) -> Setup {
    let fake = FakeBotApi::start().await;
    let clock = Arc::new(VirtualClock::starting_at(
        Timestamp::from_second(1_800_000_000).unwrap(),
    ));
    let base = BotApiConfig::new(fake.token())
        .with_api_base(fake.url())
        .unwrap()
        .with_request_timeout(Duration::from_secs(2));
    let transport = BotApiTransport::new(config(base))
        .unwrap()
        .with_clock(clock.clone());
    Setup {
        fake,
        clock,
        transport,
    }
}

fn secs(s: i64) -> SignedDuration {
    SignedDuration::from_secs(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_cannot_write_first_deactivated_users_and_unknown_chats_fail() {
    let s = setup(|c| c).await;
    let out = s
        .transport
        .send(&message("k1", TelegramPeer::user(7), "hi"))
        .await
        .unwrap();
    assert_eq!(
        out,
        SendOutcome::Failed(FailureReason::PrivacyRestricted),
        "cold DM refused"
    );
    s.fake.user_writes(8, "/start");
    s.fake.deactivate(8);
    let out = s
        .transport
        .send(&message("k2", TelegramPeer::user(8), "hi"))
        .await
        .unwrap();
    assert_eq!(out, SendOutcome::Failed(FailureReason::Deactivated));
    let out = s
        .transport
        .send(&message("k3", TelegramPeer::group(-5), "hi"))
        .await
        .unwrap();
    assert_eq!(
        out,
        SendOutcome::Failed(FailureReason::Other("chat not found".into()))
    );
    assert!(s.fake.messages().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgraded_group_is_followed_once_and_remembered() {
    let s = setup(|c| c).await;
    s.fake.add_group(-100);
    s.fake.migrate_group(-100, -100_200);
    let out = s
        .transport
        .send(&message("g1", TelegramPeer::group(-100), "news"))
        .await
        .unwrap();
    assert!(
        matches!(
            out,
            SendOutcome::Sent {
                duplicate: false,
                ..
            }
        ),
        "{out:?}"
    );
    assert_eq!(s.fake.texts_to(-100_200), vec!["news".to_owned()]);
    assert_eq!(s.transport.migrations(), vec![(-100, -100_200)]);
    // The next send goes straight to the supergroup.
    s.clock.advance(secs(5));
    let calls = s.fake.calls("sendMessage");
    s.transport
        .send(&message("g2", TelegramPeer::group(-100), "more news"))
        .await
        .unwrap();
    assert_eq!(s.fake.calls("sendMessage"), calls + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_outcome_is_an_error_that_is_not_retried() {
    let s = setup(|c| c).await;
    s.fake.user_writes(9, "/start");
    s.fake
        .fail_next(9, [FakeFailure::SlowAfterPosting(Duration::from_secs(4))]);
    let err = s
        .transport
        .send(&message("slow", TelegramPeer::user(9), "hello"))
        .await
        .unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert!(err.to_string().contains("outcome unknown"), "{err}");
    // Telegram did post it: a retry would have posted twice.
    assert_eq!(s.fake.texts_to(9).len(), 1);

    s.clock.advance(secs(5));
    s.fake.fail_next(9, [FakeFailure::BadGateway]);
    let err = s
        .transport
        .send(&message("gateway", TelegramPeer::user(9), "hello"))
        .await
        .unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert!(err.to_string().contains("502"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_retryable_and_the_token_never_shows() {
    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let fake = FakeBotApi::start().await;
    let token = fake.token();
    let transport = BotApiTransport::new(
        BotApiConfig::new(token.clone())
            .with_api_base(format!("http://127.0.0.1:{port}"))
            .unwrap(),
    )
    .unwrap();
    let err = transport
        .send(&message("k", TelegramPeer::user(1), "hi"))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "never sent, safe to retry: {err}");
    let secret = mia_telegram::bot_api::FAKE_TOKEN.split_once(':').unwrap().1;
    for text in [
        err.to_string(),
        format!("{err:?}"),
        format!("{transport:?}"),
        format!("{token:?}"),
    ] {
        assert!(!text.contains(secret), "token leaked: {text}");
    }
    let err = transport.me().await.unwrap_err();
    assert!(!err.to_string().contains(secret), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_a_configuration_error() {
    let fake = FakeBotApi::start().await;
    let other =
        mia_telegram::bot_api::BotToken::new("999:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
    let transport =
        BotApiTransport::new(BotApiConfig::new(other).with_api_base(fake.url()).unwrap()).unwrap();
    let err = transport.me().await.unwrap_err();
    assert!(
        matches!(err, TelegramError::Unauthorized { code: 401 }),
        "{err}"
    );
    let err = transport
        .send(&message("k", TelegramPeer::user(1), "hi"))
        .await
        .unwrap_err();
    assert!(matches!(err, mia_core::Error::Config(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_are_paced_before_telegram_complains() {
    let s = setup(|c| {
        c.with_limits(Limits {
            global_per_second: 2,
            per_chat_interval: Duration::from_secs(1),
            group_per_minute: 20,
        })
        .unwrap()
    })
    .await;
    for user in 1..=3 {
        s.fake.user_writes(user, "/start");
    }
    let a = s
        .transport
        .send(&message("a", TelegramPeer::user(1), "1"))
        .await
        .unwrap();
    assert!(matches!(a, SendOutcome::Sent { .. }));
    // Same chat within a second: paced locally, Telegram never asked.
    let b = s
        .transport
        .send(&message("b", TelegramPeer::user(1), "2"))
        .await
        .unwrap();
    assert!(
        matches!(b, SendOutcome::RetryAfter { after, .. } if after == Duration::from_secs(1)),
        "{b:?}"
    );
    let c = s
        .transport
        .send(&message("c", TelegramPeer::user(2), "3"))
        .await
        .unwrap();
    assert!(matches!(c, SendOutcome::Sent { .. }));
    // Two sends this second: the third chat waits for the window.
    let d = s
        .transport
        .send(&message("d", TelegramPeer::user(3), "4"))
        .await
        .unwrap();
    assert!(matches!(d, SendOutcome::RetryAfter { .. }), "{d:?}");
    assert_eq!(s.fake.calls("sendMessage"), 2);
    s.clock.advance(secs(1));
    let d = s
        .transport
        .send(&message("d", TelegramPeer::user(3), "4"))
        .await
        .unwrap();
    assert!(matches!(d, SendOutcome::Sent { .. }), "{d:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paid_broadcast_and_silent_flags_reach_telegram() {
    let s = setup(|c| c.with_paid_broadcast(300).unwrap()).await;
    s.fake.user_writes(4, "/start");
    let mut m = message("p", TelegramPeer::user(4), "sale");
    m.campaign = Some(mia_core::CampaignId::new("spring"));
    m.silent = true;
    s.transport.send(&m).await.unwrap();
    let posted = &s.fake.messages()[0];
    assert!(posted.paid_broadcast && posted.silent, "{posted:?}");
    assert_eq!(s.transport.capabilities().messages_per_second, Some(300.0));
    // Service replies (no campaign) never pay.
    s.clock.advance(secs(2));
    s.transport
        .send(&message("q", TelegramPeer::user(4), "ok"))
        .await
        .unwrap();
    assert!(!s.fake.messages()[1].paid_broadcast);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_delete_pin_and_invite_links() {
    let s = setup(|c| c).await;
    s.fake.add_group(-300);
    let SendOutcome::Sent { message_id, .. } = s
        .transport
        .send(&message("m", TelegramPeer::group(-300), "draft"))
        .await
        .unwrap()
    else {
        panic!("not sent");
    };
    let group = TelegramPeer::group(-300);
    s.transport
        .edit_message(group, message_id, "final")
        .await
        .unwrap();
    s.transport.pin_message(group, message_id).await.unwrap();
    let m = &s.fake.messages()[0];
    assert!(m.edited && m.pinned && m.text == "final", "{m:?}");
    s.transport.delete_message(group, message_id).await.unwrap();
    let err = s
        .transport
        .edit_message(group, message_id, "again")
        .await
        .unwrap_err();
    assert!(matches!(err, mia_core::Error::NotFound { .. }), "{err}");
    let link = s
        .transport
        .create_invite_link(group, Some("spring"), Some(100))
        .await
        .unwrap();
    assert!(link.starts_with("https://t.me/+"), "{link}");
    let err = s
        .transport
        .create_invite_link(TelegramPeer::group(-1), None, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("chat not found"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bot_api_says_clearly_what_a_bot_cannot_administer() {
    use mia_core::{ChatKind, NewChat};
    let s = setup(|c| c).await;
    let group = TelegramPeer::group(-100_500);
    s.fake.add_group(group.id);
    let link = s
        .transport
        .export_invite_link(group, Some(20))
        .await
        .unwrap();
    assert!(link.starts_with("https://t.me/+"), "{link}");
    assert!(
        s.transport
            .export_invite_link(group, Some(0))
            .await
            .is_err()
    );
    let err = s
        .transport
        .create_chat(&NewChat::new(ChatKind::Supergroup, "Tea").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, mia_core::Error::InvalidInput(_)), "{err}");
    assert!(
        err.to_string().contains("the Bot API cannot create groups"),
        "{err}"
    );
    let err = s.transport.resolve_username("@tea_shop").await.unwrap_err();
    assert!(
        err.to_string().contains("cannot resolve usernames"),
        "{err}"
    );
    let err = s.transport.invite_members(group, &[]).await.unwrap_err();
    assert!(err.to_string().contains("invite link"), "{err}");
    assert_eq!(
        s.fake.calls("createChatInviteLink"),
        1,
        "refusals never reach Telegram"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_are_confirmed_only_by_the_next_poll() {
    let s = setup(|c| c).await;
    s.fake.user_writes(11, "/start");
    s.fake.user_writes(11, "hello");
    let first = s.transport.receive().await.unwrap();
    assert_eq!(first.len(), 2);
    // Not yet confirmed: a crash now would redeliver them.
    assert_eq!(s.fake.unconfirmed_updates(), 2);
    assert!(s.transport.receive().await.unwrap().is_empty());
    assert_eq!(s.fake.unconfirmed_updates(), 0);
    // A second process (fresh offset) sees a redelivery of unconfirmed updates only.
    s.fake.user_writes(11, "again");
    let other = BotApiTransport::new(
        BotApiConfig::new(s.fake.token())
            .with_api_base(s.fake.url())
            .unwrap(),
    )
    .unwrap();
    let seen = other.receive().await.unwrap();
    assert_eq!(seen.len(), 1);
}
