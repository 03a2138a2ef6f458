//! `mia cohort`: a retention table over a CSV file of events, JSON out.

use std::io::Write;
use std::path::PathBuf;

use mia::analytics::cohort::{self, CohortKind, Period, RetentionMode, RetentionSpec};
use mia::analytics::funnel::{CsvOptions, EventTable};
use serde_json::json;

/// Flags of `mia cohort`.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct CohortArgs {
    /// The event that puts a user in a cohort (`opted_in`, `sent`).
    #[arg(long)]
    start: String,
    /// The event that counts as coming back (`read`, `converted`).
    #[arg(long = "return")]
    return_event: String,
    /// Cohort and offset periods: UTC days, weeks from Monday, or calendar months.
    #[arg(long, value_enum, default_value_t = PeriodArg::Day)]
    period: PeriodArg,
    /// How many periods after the cohort's own to report.
    #[arg(long, default_value_t = 7)]
    periods: usize,
    /// `first-time`: a user is in the cohort of their first start event; `recurring`: in the
    /// cohort of every period with a start event.
    #[arg(long, value_enum, default_value_t = KindArg::FirstTime)]
    kind: KindArg,
    /// `on`: came back in that very period; `on-or-after`: in that period or any later one.
    #[arg(long, value_enum, default_value_t = ModeArg::On)]
    mode: ModeArg,
    /// The events: CSV with a header `user_id,event,ts` (extra columns ignored); `ts` is RFC
    /// 3339 or integer microseconds since the epoch, UTC. `-` reads stdin.
    file: PathBuf,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum PeriodArg {
    Day,
    Week,
    Month,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum KindArg {
    FirstTime,
    Recurring,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum ModeArg {
    On,
    OnOrAfter,
}

/// `mia cohort`: prints `{"period", "cohorts": [{"start", "size", "retained", "rates"}]}`.
pub(crate) fn run(args: &CohortArgs) -> mia::Result<()> {
    let spec = RetentionSpec::new(args.start.as_str(), args.return_event.as_str())
        .period(match args.period {
            PeriodArg::Day => Period::Day,
            PeriodArg::Week => Period::Week,
            PeriodArg::Month => Period::Month,
        })
        .kind(match args.kind {
            KindArg::FirstTime => CohortKind::FirstTime,
            KindArg::Recurring => CohortKind::Recurring,
        })
        .mode(match args.mode {
            ModeArg::On => RetentionMode::On,
            ModeArg::OnOrAfter => RetentionMode::OnOrAfter,
        })
        .periods(args.periods);
    let options = CsvOptions::default();
    let table = if args.file.as_os_str() == "-" {
        EventTable::from_csv_with(std::io::stdin().lock(), &options)
    } else {
        let bytes = std::fs::read(&args.file).map_err(|e| {
            mia::Error::invalid(format!("cannot read {}: {e}", args.file.display()))
        })?;
        EventTable::from_csv_bytes(&bytes, &options)
    }
    .map_err(|e| mia::Error::invalid(format!("{}: {e}", args.file.display())))?;
    let result = cohort::retention(&table, &spec)?;
    let cohorts: Vec<_> = result
        .cohorts
        .iter()
        .map(|c| {
            let rates: Vec<f64> = c
                .retained
                .iter()
                .map(|&n| {
                    if c.size == 0 {
                        0.0
                    } else {
                        n as f64 / c.size as f64
                    }
                })
                .collect();
            json!({"start": c.start, "size": c.size, "retained": c.retained, "rates": rates})
        })
        .collect();
    let out =
        json!({"period": spec.period, "mode": spec.mode, "kind": spec.kind, "cohorts": cohorts});
    let text = serde_json::to_string_pretty(&out)
        .map_err(|e| mia::Error::invalid(format!("cannot write JSON: {e}")))?;
    writeln!(std::io::stdout().lock(), "{text}")
        .map_err(|e| mia::Error::invalid(format!("cannot write the output: {e}")))
}
