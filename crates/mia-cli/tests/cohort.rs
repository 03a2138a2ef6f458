//! `mia cohort` as a user runs it: a CSV file in, a retention table as JSON out.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::process::Command;

use serde_json::{Value, json};

const EVENTS: &str = "\
user_id,event,ts
ann,opted_in,2026-12-01T09:00:00Z
ann,read,2026-12-02T10:00:00Z
ann,read,2026-12-04T10:00:00Z
ben,opted_in,2026-12-01T20:00:00Z
ben,read,2026-12-03T08:00:00Z
cleo,opted_in,2026-12-02T12:00:00Z
cleo,read,2026-12-02T13:00:00Z
";

fn cohort(args: &[&str], file: &std::path::Path) -> (bool, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mia"))
        .arg("cohort")
        .args(args)
        .arg(file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (
        out.status.success(),
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
        stderr,
    )
}

#[test]
fn a_retention_table_by_day_on_and_on_or_after() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.csv");
    std::fs::write(&file, EVENTS).unwrap();
    let args = ["--start", "opted_in", "--return", "read", "--periods", "3"];
    let (ok, out, stderr) = cohort(&args, &file);
    assert!(ok, "{stderr}");
    assert_eq!(out["period"], "day");
    let cohorts = out["cohorts"].as_array().unwrap();
    assert_eq!(cohorts.len(), 2);
    // 1 Dec: ann and ben; ann back on day 1 and 3, ben on day 2.
    assert_eq!(cohorts[0]["start"], "2026-12-01");
    assert_eq!(cohorts[0]["size"], 2);
    assert_eq!(cohorts[0]["retained"], json!([0, 1, 1, 1]));
    assert_eq!(cohorts[0]["rates"], json!([0.0, 0.5, 0.5, 0.5]));
    // 2 Dec: cleo, who read the same day.
    assert_eq!(cohorts[1]["start"], "2026-12-02");
    assert_eq!(cohorts[1]["retained"][0], 1);

    let mut later = args.to_vec();
    later.extend(["--mode", "on-or-after"]);
    let (ok, out, stderr) = cohort(&later, &file);
    assert!(ok, "{stderr}");
    // From day k on: ann (days 1, 3) and ben (day 2) both count until day 2; on day 3, ann.
    assert_eq!(out["cohorts"][0]["retained"], json!([2, 2, 2, 1]));
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.csv");
    std::fs::write(&file, "user,what\nann,x\n").unwrap();
    let (ok, _, stderr) = cohort(&["--start", "a", "--return", "b"], &file);
    assert!(!ok);
    assert!(stderr.contains("events.csv"), "{stderr}");
    let (ok, _, stderr) = cohort(
        &["--start", "a", "--return", "b", "--period", "year"],
        &file,
    );
    assert!(!ok);
    assert!(stderr.contains("year"), "{stderr}");
}
