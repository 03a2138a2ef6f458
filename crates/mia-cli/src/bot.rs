//! `mia bot run`: a consent-first Telegram bot on the Bot API.

use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use mia::safety::{ContentGuard, SendGuard};
use mia::telegram::bot_api::{BotApiConfig, BotApiTransport, BotToken};
use mia::{Agent, Error, InboundKind, Result, TemplateProvider};

use crate::ops::DbArgs;

/// `mia bot <command>`.
#[derive(Args, Debug)]
pub(crate) struct BotArgs {
    #[command(subcommand)]
    command: BotCommand,
}

#[derive(Subcommand, Debug)]
enum BotCommand {
    /// Long-polls the bot's updates (token in `TELEGRAM_BOT_TOKEN`): `/start [purpose]` opts in
    /// with the update as evidence, `/stop` and STOP opt out at once, `/privacy` answers what
    /// is stored, replies are recorded as events. One JSON line per update on stdout.
    Run(RunArgs),
}

#[derive(Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    db: DbArgs,
    /// The Bot API server (a local `telegram-bot-api`, or a test fake).
    #[arg(long, default_value = mia::telegram::bot_api::DEFAULT_API_BASE)]
    api_base: String,
    /// Long-polling timeout per request.
    #[arg(long, default_value_t = 25)]
    poll_seconds: u64,
    /// Stop after a poll that brought no updates (for tests and cron jobs).
    #[arg(long)]
    exit_when_idle: bool,
    /// The last line of the `/privacy` answer: where to ask for a copy or erasure.
    #[arg(
        long,
        default_value = "Reply here to ask for a copy of your data or its erasure."
    )]
    privacy_contact: String,
}

pub(crate) async fn bot(args: &BotArgs) -> Result<()> {
    match &args.command {
        BotCommand::Run(run) => run_bot(run).await,
    }
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
async fn run_bot(args: &RunArgs) -> Result<()> {
    let store = args.db.open_or_create().await?;
    let config = BotApiConfig::new(BotToken::from_env()?)
        .with_api_base(args.api_base.as_str())?
        .with_request_timeout(Duration::from_secs(10));
    let transport = BotApiTransport::new(config)?;
    // Fail fast on a bad token or an unreachable server.
    let me = transport.me().await?;
    eprintln!(
        "mia bot: running as @{} (id {})",
        me.username.as_deref().unwrap_or("?"),
        me.id
    );
    let agent = Agent::builder(TemplateProvider::new(), transport.clone())
        .shared_store(Arc::clone(&store))
        .content_policy(ContentGuard::builder().build()?)
        .send_policy(SendGuard::builder().build()?)
        .build()?;
    let mut failures = 0u32;
    loop {
        let events = match transport.poll(Duration::from_secs(args.poll_seconds)).await {
            Ok(events) => {
                failures = 0;
                events
            }
            Err(e) if e.is_retryable() && failures < 8 => {
                failures += 1;
                let wait = Duration::from_millis(500 << failures.min(6));
                eprintln!("mia bot: polling failed ({e}); retrying in {wait:?}");
                tokio::time::sleep(wait).await;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if events.is_empty() {
            if args.exit_when_idle {
                return Ok(());
            }
            continue;
        }
        agent.handle_inbound(&events).await?;
        for event in &events {
            let mut line = serde_json::json!({"update": event.id, "kind": kind_name(&event.kind)});
            if let InboundKind::Command { name, .. } = &event.kind
                && name == "privacy"
            {
                let notice = agent
                    .privacy_notice(&event.peer, &args.privacy_contact)
                    .await?;
                let reply = agent.reply(event, "privacy", &notice).await?;
                line["reply"] =
                    serde_json::to_value(&reply).map_err(|e| Error::invalid(e.to_string()))?;
            }
            println!("{line}");
        }
    }
}

fn kind_name(kind: &InboundKind) -> String {
    match kind {
        InboundKind::Command { name, .. } => format!("/{name}"),
        InboundKind::Text { text, .. } if mia::is_stop_request(text) => "stop".into(),
        InboundKind::Text { .. } => "text".into(),
        InboundKind::Blocked => "blocked".into(),
        _ => "other".into(),
    }
}
