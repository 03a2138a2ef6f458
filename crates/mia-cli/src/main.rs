//! The `mia` command-line tool.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod audience;
mod dry_run;
mod output;

/// mia: a consent-first marketing agent for Telegram.
#[derive(Parser, Debug)]
#[command(name = "mia", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs a whole two-variant campaign offline, in virtual time: a seeded audience in SQLite,
    /// offline copy, the guards, the durable outbox, a simulated Telegram, and a report.
    DryRun(DryRunArgs),
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
    /// Virtual start time (RFC 3339).
    #[arg(long, default_value = "2026-12-01T08:00:00Z")]
    pub(crate) start: jiff::Timestamp,
    /// How long after the last send to keep collecting reads, clicks and purchases.
    #[arg(long, default_value = "72h", value_parser = parse_hours)]
    pub(crate) attribution_hours: u32,
    /// No progress bar.
    #[arg(long)]
    pub(crate) quiet: bool,
}

fn parse_hours(s: &str) -> Result<u32, String> {
    s.trim_end_matches('h')
        .parse::<u32>()
        .map_err(|e| format!("expected hours such as 72h: {e}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::DryRun(args) => dry_run::run(&args),
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
