//! `mia funnel`: a funnel over a CSV file of events, JSON out.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use mia::analytics::funnel::{
    self, Breakdown, CsvOptions, EventTable, FunnelMode, FunnelResult, FunnelSpec,
};
use serde_json::{Value, json};

/// Flags of `mia funnel`.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct FunnelArgs {
    /// The steps: event names, comma-separated (`sent,delivered,read,clicked,converted`).
    #[arg(long, value_delimiter = ',', required = true)]
    steps: Vec<String>,
    /// The conversion window from the first step, inclusive: a number with a unit, `s`, `m`,
    /// `h`, `d` or `w` (`7d`, `36h`).
    #[arg(long, default_value = "14d", value_parser = parse_window)]
    window: i64,
    /// `ordered` (other events may sit between steps), `strict` (none may) or `any` (steps
    /// in any order).
    #[arg(long, default_value = "ordered", value_parser = parse_mode)]
    mode: FunnelMode,
    /// Split by a column of the file: each user falls in the group of their first
    /// step-1 event's value.
    #[arg(long)]
    breakdown: Option<String>,
    /// Drops attempts in which EVENT happens between two steps: `EVENT:FROM:TO` with 1-based
    /// step numbers (`opted_out:1:5`). Repeatable.
    #[arg(long = "exclude", value_parser = parse_exclusion)]
    exclusions: Vec<(String, usize, usize)>,
    /// Prints loading and query times as JSON to stderr.
    #[arg(long)]
    timings: bool,
    /// The events: CSV with a header `user_id,event,ts` and optional extra columns; `ts` is
    /// RFC 3339 or integer microseconds since the epoch, UTC. `-` reads stdin.
    file: PathBuf,
}

fn parse_window(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let number: i64 = number
        .parse()
        .map_err(|_| format!("expected a window such as 7d or 36h, got {s:?}"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(format!("unknown unit in {s:?}: s, m, h, d or w")),
    };
    number
        .checked_mul(seconds * 1_000_000)
        .ok_or_else(|| format!("window {s:?} is too long"))
}

fn parse_mode(s: &str) -> Result<FunnelMode, String> {
    s.parse()
}

fn parse_exclusion(s: &str) -> Result<(String, usize, usize), String> {
    let bad = || format!("expected EVENT:FROM:TO with 1-based step numbers, got {s:?}");
    let mut parts = s.rsplitn(3, ':');
    let to = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let from = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let event = parts.next().filter(|e| !e.is_empty()).ok_or_else(bad)?;
    if from == 0 {
        return Err(bad());
    }
    Ok((event.to_owned(), from, to))
}

/// The JSON of one funnel (the whole, or one breakdown group).
fn funnel_json(
    steps: &[funnel::StepCount],
    median: Option<f64>,
    time: Option<&funnel::TimeToConvert>,
) -> Value {
    json!({
        "steps": steps.iter().map(|s| json!({"name": s.name, "count": s.count})).collect::<Vec<_>>(),
        "median_time_to_convert_s": median,
        "time_to_convert": time,
    })
}

fn output(result: &FunnelResult, breakdown: Option<&str>) -> Value {
    match breakdown {
        None => funnel_json(
            &result.steps,
            result.median_time_to_convert_s,
            result.time_to_convert.as_ref(),
        ),
        Some(_) => Value::Array(
            result
                .breakdown
                .iter()
                .map(|g| {
                    let mut v = funnel_json(
                        &g.steps,
                        g.median_time_to_convert_s,
                        g.time_to_convert.as_ref(),
                    );
                    if let Value::Object(map) = &mut v {
                        map.insert("breakdown_value".into(), json!(g.breakdown_value));
                    }
                    v
                })
                .collect(),
        ),
    }
}

/// `mia funnel`.
pub(crate) fn run(args: &FunnelArgs) -> mia::Result<()> {
    if args.steps.iter().all(String::is_empty) {
        return Err(mia::Error::invalid("--steps: give at least one event name"));
    }
    let mut spec = FunnelSpec::new(args.steps.iter().cloned())
        .window_micros(args.window)
        .mode(args.mode);
    for (event, from, to) in &args.exclusions {
        // 1-based on the command line, 0-based in the library.
        spec = spec.exclude(event.clone(), from - 1, to.saturating_sub(1));
    }
    if let Some(column) = &args.breakdown {
        spec = spec.breakdown(Breakdown::Event(column.clone()));
    }
    let options = CsvOptions {
        keep_columns: Some(args.breakdown.iter().cloned().collect()),
        ..CsvOptions::default()
    };
    let started = Instant::now();
    let table = if args.file.as_os_str() == "-" {
        EventTable::from_csv_with(std::io::stdin().lock(), &options)
    } else {
        // One read of the right size, rather than a growing buffer.
        let bytes = std::fs::read(&args.file).map_err(|e| {
            mia::Error::invalid(format!("cannot read {}: {e}", args.file.display()))
        })?;
        EventTable::from_csv_bytes(&bytes, &options)
    }
    .map_err(|e| mia::Error::invalid(format!("{}: {e}", args.file.display())))?;
    let loaded = started.elapsed();
    let started = Instant::now();
    let result = funnel::run(&table, &spec)?;
    let queried = started.elapsed();
    let text = serde_json::to_string_pretty(&output(&result, args.breakdown.as_deref()))
        .map_err(|e| mia::Error::invalid(format!("cannot write JSON: {e}")))?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")
        .map_err(|e| mia::Error::invalid(format!("cannot write the output: {e}")))?;
    if args.timings {
        let timings = json!({
            "events": table.len(),
            "users": table.user_count(),
            "load_s": loaded.as_secs_f64(),
            "query_s": queried.as_secs_f64(),
        });
        eprintln!("{timings}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn windows_take_a_unit() {
        assert_eq!(parse_window("7d"), Ok(7 * 86_400 * 1_000_000));
        assert_eq!(parse_window("90s"), Ok(90_000_000));
        assert_eq!(parse_window("2w"), Ok(14 * 86_400 * 1_000_000));
        assert!(parse_window("7").is_err());
        assert!(parse_window("d").is_err());
        assert!(parse_window("7y").is_err());
        assert!(parse_window("99999999999999w").is_err());
    }

    #[test]
    fn exclusions_are_event_from_to() {
        assert_eq!(
            parse_exclusion("opted_out:1:5"),
            Ok(("opted_out".into(), 1, 5))
        );
        assert_eq!(parse_exclusion("a:b:1:2"), Ok(("a:b".into(), 1, 2)));
        assert!(parse_exclusion("opted_out:0:2").is_err());
        assert!(parse_exclusion("opted_out:1").is_err());
        assert!(parse_exclusion(":1:2").is_err());
    }
}
