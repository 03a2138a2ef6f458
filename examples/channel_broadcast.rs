//! Run with: `cargo run --example channel_broadcast --features full`
//!
//! Posts to a channel and a group the sender administers. Every post passes the content
//! policy (a shortener link is blocked, a risky claim waits for a person) and the send policy
//! on the chat's clock (quiet hours defer a late post), is paced within Telegram's group limits
//! (about 20 messages a minute per group), and is recorded in the audit log. A private chat is
//! refused: people are written to through campaigns, with consent.
//!
//! With `TELEGRAM_BOT_TOKEN` and `TELEGRAM_CHAT_ID` (a channel or group where the bot is an
//! admin) it posts one message there. Without them it runs on the simulated Telegram in
//! virtual time — no token, no network.
#![allow(clippy::print_stdout)]

use std::sync::Arc;

use jiff::Timestamp;
use mia::safety::{ContentGuard, SendGuard};
use mia::telegram::bot_api::{BotApiConfig, BotApiTransport, BotToken};
use mia::telegram::{SimConfig, SimTelegram};
use mia::*;

/// The guards every post passes.
fn guarded(builder: AgentBuilder) -> Result<Agent> {
    builder
        .content_policy(
            ContentGuard::builder()
                .allow_domain("shop.example")
                .build()?,
        )
        .send_policy(SendGuard::builder().build()?)
        .build()
}

/// What one demo run did: each post's outcome, and the virtual seconds 25 group posts took.
pub(crate) struct Demo {
    pub(crate) outcomes: Vec<(String, Posted)>,
    pub(crate) burst_seconds: i64,
    pub(crate) refused: Error,
    pub(crate) telegram: SimTelegram,
}

/// Without a token: a week's posts to a channel in Berlin and a burst to a group.
pub(crate) async fn demo() -> Result<Demo> {
    let start: Timestamp = "2026-12-01T11:00:00Z"
        .parse()
        .map_err(|e| Error::invalid(format!("start time: {e}")))?;
    let clock = Arc::new(SimClock::starting_at(start));
    let config = SimConfig {
        deactivated_share: 0.0,
        blocked_share: 0.0,
        ..SimConfig::seeded(1)
    };
    let telegram = SimTelegram::new(config, clock.clone())?;
    let agent =
        guarded(Agent::builder(TemplateProvider::new(), telegram.clone()).clock(clock.clone()))?;
    let channel = TelegramPeer::channel(-100_777);
    let berlin =
        |key: &str, text: &str| ChatPost::new(channel, key, text).time_zone("Europe/Berlin");

    let mut outcomes = Vec::new();
    for post in [
        berlin(
            "advent-1",
            "Advent week 1: 20% off winter boots at https://shop.example/boots",
        ),
        berlin("short", "Flash sale! https://bit.ly/xyz"),
        berlin("claim", "Our insoles cure back pain, guaranteed."),
    ] {
        outcomes.push((post.key.clone(), agent.post_to_chat(&post).await?));
    }
    // 22:30 in Berlin is inside quiet hours: deferred to 09:00, then posted.
    clock
        .sleep_until(
            "2026-12-01T21:30:00Z"
                .parse()
                .map_err(|e| Error::invalid(format!("{e}")))?,
        )
        .await;
    let late = berlin(
        "late",
        "Last call: the boot sale ends at midnight. https://shop.example/boots",
    );
    let deferred = agent.post_to_chat(&late).await?;
    if let Posted::Deferred { until, .. } = &deferred {
        clock.sleep_until(*until).await;
    }
    outcomes.push(("late (deferred)".into(), deferred));
    outcomes.push(("late (retried)".into(), agent.post_to_chat(&late).await?));

    // 25 announcements to one group: Telegram allows about 20 a minute there.
    let group = TelegramPeer::group(-100_888);
    let before = clock.now();
    for i in 0..25 {
        let text = format!("Table {i} is free tonight.");
        let post = ChatPost::new(group, format!("table-{i}"), text).time_zone("Europe/Berlin");
        if !matches!(agent.post_to_chat(&post).await?, Posted::Sent { .. }) {
            return Err(Error::invalid(format!("group post {i} was not sent")));
        }
    }
    let burst_seconds = clock.now().duration_since(before).as_secs();
    let refused = agent
        .post_to_chat(&ChatPost::new(TelegramPeer::user(42), "dm", "Hi!"))
        .await
        .err()
        .ok_or_else(|| Error::invalid("a post to a person was not refused"))?;
    Ok(Demo {
        outcomes,
        burst_seconds,
        refused,
        telegram,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let (Ok(token), Ok(chat)) = (BotToken::from_env(), std::env::var("TELEGRAM_CHAT_ID")) else {
        println!("TELEGRAM_BOT_TOKEN or TELEGRAM_CHAT_ID is not set: simulated Telegram\n");
        tokio::time::pause(); // virtual time: waits pass at once
        let demo = demo().await?;
        for (key, outcome) in &demo.outcomes {
            println!(
                "{key:>16}: {}",
                serde_json::to_string(outcome).unwrap_or_default()
            );
        }
        println!("25 group posts took {} virtual seconds", demo.burst_seconds);
        println!("a post to a person: {}", demo.refused);
        println!("posted in all: {}", demo.telegram.sent_log().len());
        return Ok(());
    };
    let id: i64 = chat
        .parse()
        .map_err(|e| Error::invalid(format!("TELEGRAM_CHAT_ID: {e}")))?;
    let transport = BotApiTransport::new(BotApiConfig::new(token))?;
    let agent = guarded(Agent::builder(TemplateProvider::new(), transport))?;
    let post = ChatPost::new(
        TelegramPeer::channel(id),
        "hello",
        "Hello from mia: every post here passed our content checks.",
    );
    println!("{:?}", agent.post_to_chat(&post).await?);
    Ok(())
}
