//! `mia bot run`: a consent-first Telegram bot on the Bot API.

use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use mia::safety::inbound::ReplyScreen;
use mia::safety::{ContentGuard, SendGuard};
use mia::telegram::bot_api::{BotApiConfig, BotApiTransport, BotRunner, BotToken};
use mia::{Agent, Error, ReplyAssistant, Result};

use crate::dry_run::LlmChoice;

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
    /// is stored, `/help` explains, replies are recorded as events; with `--assistant`, the
    /// model answers other messages. One JSON line per update on stdout, without message
    /// texts.
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
    #[arg(long)]
    privacy_contact: Option<String>,
    /// Lets the model answer contacts' other messages, following the instructions in this
    /// file (who you are, what you may answer). Messages are redacted first, injections are
    /// held, answers pass the content and send policies. Off unless given.
    #[arg(long, value_name = "FILE")]
    assistant: Option<std::path::PathBuf>,
    /// The model for `--assistant`: `offline` (a fixed holding answer) or `claude`
    /// (`ANTHROPIC_API_KEY`, optional `ANTHROPIC_BASE_URL`).
    #[arg(long, value_enum, default_value_t = LlmChoice::Offline)]
    llm: LlmChoice,
    /// The Claude model (with `--llm claude`).
    #[arg(long)]
    model: Option<String>,
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
    let (llm, _) = crate::dry_run::provider(args.llm, args.model.as_deref())?;
    let mut builder = Agent::builder_shared(llm, Arc::new(transport.clone()))
        .shared_store(Arc::clone(&store))
        .content_policy(ContentGuard::builder().build()?)
        .send_policy(SendGuard::builder().build()?)
        // "Please remove me" and its localised forms stop like STOP does.
        .inbound_screen(ReplyScreen::new()?);
    if let Some(path) = &args.assistant {
        let instructions = std::fs::read_to_string(path).map_err(|e| {
            Error::Config(format!(
                "cannot read the assistant instructions {}: {e}",
                path.display()
            ))
        })?;
        builder = builder.reply_assistant(ReplyAssistant::new(instructions), ReplyScreen::new()?);
    }
    let agent = builder.build()?;
    let mut runner =
        BotRunner::new(agent, transport).poll_timeout(Duration::from_secs(args.poll_seconds));
    if let Some(line) = &args.privacy_contact {
        runner = runner.privacy_contact(line.as_str());
    }
    runner
        .run(args.exit_when_idle, |handled| {
            if let Ok(line) = serde_json::to_string(handled) {
                println!("{line}");
            }
        })
        .await
}
