//! `mia funnel` as a user runs it: a CSV file in, JSON out, clear errors for bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn mia(args: &[&str], file: &Path) -> (bool, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mia"))
        .arg("funnel")
        .args(args)
        .arg(file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.success(), json, stderr)
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn counts(v: &Value) -> Vec<u64> {
    v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["count"].as_u64().unwrap())
        .collect()
}

const EVENTS: &str = "\
user_id,event,ts,variant
u1,sent,2026-01-01T00:00:00Z,A
u1,delivered,2026-01-01T00:00:05Z,A
u1,read,2026-01-01T00:01:00Z,A
u1,clicked,2026-01-01T00:02:00Z,A
u2,sent,1767225600000000,B
u2,delivered,1767225601000000,B
u2,read,1767225602000000,B
u2,clicked,1767225610000000,B
u3,sent,2026-01-01T00:00:00Z,B
u3,read,2026-01-01T00:00:10Z,B
u4,sent,2026-01-01T00:00:00Z,A
u4,delivered,2026-01-01T00:00:01Z,A
u4,clicked,2026-01-09T00:00:00Z,A
u4,read,2026-01-09T00:00:00Z,A
";

#[test]
fn prints_users_per_step_and_the_median_time_to_convert() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "events.csv", EVENTS);
    let (ok, json, stderr) = mia(
        &["--steps", "sent,delivered,read,clicked", "--window", "7d"],
        &file,
    );
    assert!(ok, "{stderr}");
    // u4 reads and clicks eight days later: outside the 7-day window.
    assert_eq!(counts(&json), [4, 3, 2, 2]);
    let names: Vec<&str> = json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sent", "delivered", "read", "clicked"]);
    // u1 converted in 120 s, u2 in 10 s.
    assert_eq!(json["median_time_to_convert_s"].as_f64(), Some(65.0));
    // With a 9-day window u4 completes too (its read and click share a timestamp).
    let (ok, json, _) = mia(
        &["--steps", "sent,delivered,read,clicked", "--window", "9d"],
        &file,
    );
    assert!(ok);
    assert_eq!(counts(&json), [4, 3, 3, 3]);
}

#[test]
fn modes_breakdowns_and_exclusions_change_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "events.csv", EVENTS);
    let steps = ["--steps", "sent,read", "--window", "7d"];
    let (_, ordered, _) = mia(&steps, &file);
    assert_eq!(counts(&ordered), [4, 3]);
    let (_, strict, _) = mia(&[&steps[..], &["--mode", "strict"]].concat(), &file);
    assert_eq!(counts(&strict), [4, 1]); // only u3 reads right after sending
    let (_, excluded, _) = mia(
        &[&steps[..], &["--exclude", "delivered:1:2"]].concat(),
        &file,
    );
    assert_eq!(counts(&excluded), [1, 1]); // only u3 has no delivered in between
    let (ok, groups, stderr) = mia(&[&steps[..], &["--breakdown", "variant"]].concat(), &file);
    assert!(ok, "{stderr}");
    let groups = groups.as_array().unwrap();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0]["breakdown_value"], "A");
    assert_eq!(counts(&groups[0]), [2, 1]);
    assert_eq!(groups[1]["breakdown_value"], "B");
    assert_eq!(counts(&groups[1]), [2, 2]);
}

#[test]
fn timings_go_to_stderr_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "events.csv", EVENTS);
    let (ok, json, stderr) = mia(&["--steps", "sent,read", "--timings"], &file);
    assert!(ok);
    // The default window is 14 days: u4's read, 8 days later, counts.
    assert_eq!(counts(&json), [4, 4]);
    let timings: Value = serde_json::from_str(stderr.trim()).unwrap();
    assert_eq!(timings["events"], 14);
    assert_eq!(timings["users"], 4);
    assert!(timings["load_s"].is_f64() && timings["query_s"].is_f64());
}

#[test]
fn bad_input_is_a_clear_error_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str], &str); 6] = [
        (
            "user_id,event\nu,sent\n",
            &["--steps", "sent"],
            "missing column \"ts\"",
        ),
        (
            "user_id,event,ts\nu,sent,1\nu,read,tomorrow\n",
            &["--steps", "sent"],
            "line 3",
        ),
        (
            "user_id,event,ts\nu,sent,1\nu,read\n",
            &["--steps", "sent"],
            "line 3",
        ),
        (
            "user_id,event,ts\nu,sent,1\n",
            &["--steps", "sent", "--mode", "sideways"],
            "unknown funnel mode",
        ),
        (
            "user_id,event,ts\nu,sent,1\n",
            &["--steps", ""],
            "at least one",
        ),
        (
            "user_id,event,ts\nu,sent,1\n",
            &["--steps", "sent", "--breakdown", "variant"],
            "variant",
        ),
    ];
    for (i, (text, args, needle)) in cases.iter().enumerate() {
        let file = write(dir.path(), &format!("bad{i}.csv"), text);
        let (ok, json, stderr) = mia(args, &file);
        assert!(!ok, "case {i} succeeded: {json}");
        assert!(
            stderr.contains(needle),
            "case {i}: {stderr:?} lacks {needle:?}"
        );
    }
    let (ok, _, stderr) = mia(&["--steps", "sent"], &dir.path().join("missing.csv"));
    assert!(!ok);
    assert!(stderr.contains("missing.csv"), "{stderr}");
}
