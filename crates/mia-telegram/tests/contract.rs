//! The transport contract, run against every Telegram transport mia ships.
#![cfg(feature = "testing")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mia_telegram::contract::{FakeBotApiHarness, SimHarness, transport_contract};

#[tokio::test]
async fn the_simulator_keeps_the_contract() {
    transport_contract(&SimHarness::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bot_api_transport_keeps_the_contract() {
    let harness = FakeBotApiHarness::start().await;
    transport_contract(&harness).await;
}

/// Opt-in: `MIA_TEST_TELEGRAM_BOT_TOKEN` and `MIA_TEST_TELEGRAM_CHAT` (a user who started the
/// bot) run a send and a duplicate against the real Bot API.
#[tokio::test]
async fn a_real_bot_sends_once_per_key() {
    use mia_core::{
        ContactId, IdempotencyKey, OutboundMessage, SendOutcome, TelegramPeer, Transport,
    };
    use mia_telegram::bot_api::{BotApiConfig, BotApiTransport, BotToken};
    let (Ok(token), Ok(chat)) = (
        std::env::var("MIA_TEST_TELEGRAM_BOT_TOKEN"),
        std::env::var("MIA_TEST_TELEGRAM_CHAT"),
    ) else {
        eprintln!(
            "skipped: set MIA_TEST_TELEGRAM_BOT_TOKEN and MIA_TEST_TELEGRAM_CHAT to run against the real Bot API"
        );
        return;
    };
    let chat: i64 = chat.parse().expect("MIA_TEST_TELEGRAM_CHAT is a chat id");
    let transport =
        BotApiTransport::new(BotApiConfig::new(BotToken::new(token).expect("token"))).unwrap();
    transport.me().await.expect("the token works");
    let message = OutboundMessage::new(
        IdempotencyKey::new(format!("live:{}", jiff::Timestamp::now())),
        ContactId::new("live"),
        TelegramPeer::user(chat),
        "mia live test: you asked for this (MIA_TEST_TELEGRAM_CHAT).",
    )
    .with_silent(true);
    let first = transport.send(&message).await.unwrap();
    let SendOutcome::Sent { message_id, .. } = first else {
        panic!("{first:?}");
    };
    assert_eq!(
        transport.send(&message).await.unwrap(),
        SendOutcome::Sent {
            message_id,
            duplicate: true
        }
    );
}
