//! The `mia` command-line tool.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod audience;
mod audit;
mod bot;
mod cohort;
mod compliance;
mod dry_run;
mod dsar;
mod funnel;
mod ops;
mod output;
mod report;
mod risk;
mod scan;
mod send;
mod stats;

/// mia: a consent-first marketing agent for Telegram.
#[derive(Parser, Debug)]
#[command(name = "mia", version, about)]
struct Cli {
    /// How logs go to stderr: `text`, or `json` (one JSON object a line, with the current span
    /// and its parents). The level comes from `RUST_LOG` (default `warn`; e.g. `RUST_LOG=info`
    /// or `RUST_LOG=mia_core=debug`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// The format of the logs on stderr.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line.
    Json,
}

/// Sends `tracing` events to stderr at the level `RUST_LOG` asks for (default `warn`).
fn init_logs(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second subscriber cannot be installed; there is none before this, and logs are not
    // worth failing the command over.
    let _ = match format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).try_init(),
        LogFormat::Json => logs.json().try_init(),
    };
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs a whole two-variant campaign offline, in virtual time: a seeded audience in SQLite,
    /// offline copy, the guards, the durable outbox, a simulated Telegram, and a report.
    DryRun(DryRunArgs),
    /// Analyses an experiment (JSON in, JSON out); `sample-size` and `interval` subcommands.
    Stats(stats::StatsArgs),
    /// Simulates a bandit policy on Bernoulli arms and prints its regret.
    BanditSim(stats::BanditSimArgs),
    /// Operates campaigns in a shared database: list, status, pause, resume, abort, dead
    /// letters (`--db postgres://... | path.db`).
    Campaign(ops::CampaignArgs),
    /// Sends the jobs of running campaigns in a shared database through the guards.
    ///
    /// Runs until no job is open (with `--watch`, until stopped) and prints what it did as JSON.
    /// Observability: `--metrics 127.0.0.1:9464` serves Prometheus metrics at `/metrics`
    /// (`mia_sends_total{outcome}`, `mia_policy_denials_total{policy,rule}`, retries, FloodWaits,
    /// `mia_outbox_jobs{campaign,state}`, LLM tokens and cost, inbound events), and
    /// `mia --log-format json worker ...` writes JSON logs carrying the `mia.send` and
    /// `mia.policy` spans with each job's `correlation_id` (`RUST_LOG=info` for more).
    Worker(ops::WorkerArgs),
    /// Scans text (JSON lines `{"id", "text"}` or plain lines) for personal data and checks it
    /// against the content rules; one JSON line out per line in.
    Scan(scan::ScanArgs),
    /// The tamper-evident audit log: `verify` it, sign a `checkpoint`, `prove` an entry is in it
    /// and `verify-proof` without the database (`--db PATH`).
    Audit(audit::AuditArgs),
    /// Data subject requests: `export`, `erase`, `object`, `rectify`, `restrict`,
    /// `unrestrict`, `why` `--subject ID --db PATH`, `list`.
    Dsar(dsar::DsarArgs),
    /// The data privacy scanner: `mia privacy scan --db PATH [--json]` reports personal data
    /// stored where the configuration does not allow it.
    Privacy(compliance::PrivacyArgs),
    /// Retention: `mia retention purge --db PATH --policy FILE` enforces it and reports what it
    /// removed (JSON).
    Retention(compliance::RetentionArgs),
    /// Compliance documents: `mia compliance records` prints the records of processing (JSON).
    Compliance(compliance::ComplianceArgs),
    /// Runs a consent-first Telegram bot on the Bot API: `mia bot run --db PATH`.
    Bot(bot::BotArgs),
    /// A funnel over a CSV file of events (`user_id,event,ts`): users per step as JSON.
    Funnel(funnel::FunnelArgs),
    /// Retention cohorts over a CSV file of events (`user_id,event,ts`): of the users who did
    /// `--start` in a period, how many did `--return` 0, 1, 2, ... periods later, as JSON.
    Cohort(cohort::CohortArgs),
    /// One campaign's report from a database (`--db postgres://... | path.db`): JSON on stdout
    /// or `--json PATH`, and a self-contained HTML page with `--html PATH`.
    Report(report::ReportArgs),
}

/// Flags of `mia dry-run`.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct DryRunArgs {
    /// How many contacts to generate.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=2_000_000))]
    pub(crate) contacts: u32,
    /// Seed of the audience, the simulated people and the agent.
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// The SQLite database to create (replaced if it exists).
    #[arg(long, default_value = "mia-data/dry-run.db")]
    pub(crate) db: PathBuf,
    /// Where to write the report as JSON.
    #[arg(long, default_value = "mia-data/dry-run-report.json")]
    pub(crate) json: PathBuf,
    /// Also write the report as a self-contained HTML page (inline SVG charts) here.
    #[arg(long)]
    pub(crate) html: Option<PathBuf>,
    /// Virtual start time (RFC 3339).
    #[arg(long, default_value = "2026-12-01T08:00:00Z")]
    pub(crate) start: jiff::Timestamp,
    /// How long after the last send to keep collecting reads, clicks and purchases.
    #[arg(long, default_value = "72h", value_parser = parse_hours)]
    pub(crate) attribution_hours: u32,
    /// No progress bar.
    #[arg(long)]
    pub(crate) quiet: bool,
    /// Who writes the copy: the offline template writer, or Claude (reads `ANTHROPIC_API_KEY`
    /// and, for a proxy or a local server, `ANTHROPIC_BASE_URL`).
    #[arg(long, value_enum, default_value_t = dry_run::LlmChoice::Offline)]
    pub(crate) llm: dry_run::LlmChoice,
    /// The Claude model (with `--llm claude`).
    #[arg(long)]
    pub(crate) model: Option<String>,
}

fn parse_hours(s: &str) -> Result<u32, String> {
    s.trim_end_matches('h')
        .parse::<u32>()
        .map_err(|e| format!("expected hours such as 72h: {e}"))
}

fn block_on(work: impl std::future::Future<Output = mia::Result<()>>) -> mia::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| mia::Error::Config(format!("cannot start the runtime: {e}")))?
        .block_on(work)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.log_format);
    let result = match cli.command {
        Command::DryRun(args) => dry_run::run(&args),
        Command::Stats(args) => stats::run(&args),
        Command::BanditSim(args) => stats::run_bandit_sim(&args),
        Command::Campaign(args) => block_on(ops::campaign(&args)),
        Command::Worker(args) => block_on(ops::worker(&args)),
        Command::Scan(args) => scan::run(&args),
        Command::Audit(args) => block_on(audit::audit(&args)),
        Command::Dsar(args) => block_on(dsar::dsar(&args)),
        Command::Privacy(args) => block_on(compliance::privacy(&args)),
        Command::Retention(args) => block_on(compliance::retention(&args)),
        Command::Compliance(args) => compliance::compliance(&args),
        Command::Bot(args) => block_on(bot::bot(&args)),
        Command::Funnel(args) => funnel::run(&args),
        Command::Cohort(args) => cohort::run(&args),
        Command::Report(args) => block_on(report::report(&args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            ExitCode::FAILURE
        }
    }
}
