//! Run with: `cargo run --example telegram_bot --features full`
//!
//! A consent-first Telegram bot: `/start` opts in (the update is the consent evidence), `/stop`
//! or STOP opts out at once with one confirmation, `/privacy` answers what is stored, replies
//! are recorded as events. Nobody gets a message who did not write to the bot first.
//!
//! With `TELEGRAM_BOT_TOKEN` set it serves your bot (state in `mia-data/bot.db`) until stopped.
//! Without it, it starts a local fake of the Bot API, plays three people, and prints what
//! happened — no token, no network.
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::Duration;

use mia::safety::{ContentGuard, SendGuard};
use mia::store::SqliteStore;
use mia::telegram::bot_api::{BotApiConfig, BotApiTransport, BotRunner, BotToken, FakeBotApi};
use mia::*;

/// The bot: an agent with the guards on the Bot API transport, inside a runner.
pub(crate) fn bot(transport: BotApiTransport, store: Arc<dyn Store>) -> Result<BotRunner> {
    let agent = Agent::builder(TemplateProvider::new(), transport.clone())
        .shared_store(store)
        .content_policy(ContentGuard::builder().build()?)
        .send_policy(SendGuard::builder().build()?)
        .build()?;
    Ok(BotRunner::new(agent, transport)
        .privacy_contact("Write to privacy@shop.example for a copy or erasure."))
}

/// Without a token: three people talk to a fake Bot API; returns the fake and the store so a
/// test can check what the bot did.
pub(crate) async fn demo() -> Result<(FakeBotApi, Arc<dyn Store>)> {
    let fake = FakeBotApi::start().await;
    let config = BotApiConfig::new(fake.token()).with_api_base(fake.url())?;
    let transport = BotApiTransport::new(config)?;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let runner = bot(transport, store.clone())?.poll_timeout(Duration::ZERO);

    fake.user_writes(1001, "/start"); // Ana opts in ...
    fake.user_writes(1001, "/privacy"); // ... and asks what is stored
    fake.user_writes(1002, "/start spring_sale"); // Ben opts in for one campaign ...
    fake.user_writes(1002, "STOP"); // ... and changes his mind
    fake.user_writes(1003, "hello?"); // Cleo never opted in: nothing is stored or sent
    runner
        .run(true, |h| println!("{} {}", h.update, h.kind))
        .await?;
    Ok((fake, store))
}

#[tokio::main]
async fn main() -> Result<()> {
    let token = match BotToken::from_env() {
        Ok(token) => token,
        Err(_) => {
            println!("TELEGRAM_BOT_TOKEN is not set: running against a local fake Bot API\n");
            let (fake, _) = demo().await?;
            for m in fake.messages() {
                println!("\nbot -> {}:\n{}", m.chat_id, m.text);
            }
            return Ok(());
        }
    };
    std::fs::create_dir_all("mia-data").map_err(|e| Error::invalid(e.to_string()))?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open("mia-data/bot.db").await?);
    let transport = BotApiTransport::new(BotApiConfig::new(token))?;
    let me = transport.me().await?;
    println!("serving @{}", me.username.unwrap_or_default());
    bot(transport, store)?
        .run(false, |h| println!("{} {}", h.update, h.kind))
        .await
}
