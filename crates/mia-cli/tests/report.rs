//! `mia report` on the database a dry-run left behind, and `mia dry-run --html`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::process::{Command, Output};

fn mia(args: &[&str], paths: &[(&str, &Path)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mia"));
    command.args(args);
    for (flag, path) in paths {
        command.arg(flag).arg(path);
    }
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "mia {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn check_page(html: &str, name: &str) {
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains(name), "{name}");
    // The dry-run's campaign has two variants: a funnel each, one lift chart.
    assert_eq!(html.matches("<svg class=\"funnel\"").count(), 2);
    assert_eq!(html.matches("<svg class=\"lift\"").count(), 1);
    assert_eq!(html.matches("<svg class=\"timeline\"").count(), 1);
    for forbidden in ["<script", "<link", "<img", "src=", "href="] {
        assert!(!html.contains(forbidden), "{forbidden}");
    }
}

#[test]
fn report_reads_a_campaign_back_from_the_dry_run_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("dry-run.db");
    let dry_json = dir.path().join("dry-run.json");
    let dry_html = dir.path().join("dry-run.html");
    mia(
        &["dry-run", "--quiet", "--contacts", "800", "--seed", "5"],
        &[("--db", &db), ("--json", &dry_json), ("--html", &dry_html)],
    );
    let dry: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&dry_json).unwrap()).unwrap();
    let campaign = dry["campaign"]["campaign"].as_str().unwrap().to_owned();
    let name = dry["campaign"]["name"].as_str().unwrap().to_owned();
    let dry_page = std::fs::read_to_string(&dry_html).unwrap();
    check_page(&dry_page, &name);

    // JSON on stdout, the page in a new folder.
    let html = dir.path().join("reports/out.html");
    let out = mia(
        &["report", "--campaign", &campaign],
        &[("--db", &db), ("--html", &html)],
    );
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        printed, dry["campaign"],
        "the same numbers as the dry-run's report"
    );
    let page = std::fs::read_to_string(&html).unwrap();
    check_page(&page, &name);
    assert_eq!(page, dry_page, "the same page as the dry-run wrote");
    let sent = printed["sent"].as_u64().unwrap();
    assert!(sent > 0);
    assert!(page.contains(&format!("<td>{sent}</td>")));

    // --json writes the file instead of printing.
    let json = dir.path().join("report.json");
    let out = mia(
        &["report", "--campaign", &campaign],
        &[("--db", &db), ("--json", &json)],
    );
    assert!(out.stdout.is_empty());
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(written, printed);

    // --by: the same sends in tumbling windows, on one zone's clock or each contact's.
    let sent_rows = |windows: &serde_json::Value| -> Vec<serde_json::Value> {
        windows["windows"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|w| w["counts"]["counts"].as_array().unwrap())
            .filter(|row| row["kind"] == "sent")
            .cloned()
            .collect()
    };
    let sent_in = |windows: &serde_json::Value| -> u64 {
        sent_rows(windows)
            .iter()
            .map(|row| row["count"].as_u64().unwrap())
            .sum()
    };
    for (by, tz) in [
        ("hour", "Europe/Berlin"),
        ("day", "contact"),
        ("minute", "UTC"),
    ] {
        let out = mia(
            &["report", "--campaign", &campaign, "--by", by, "--tz", tz],
            &[("--db", &db)],
        );
        let windows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(windows["by"], by);
        assert_eq!(sent_in(&windows), sent, "{by} in {tz}");
        // A campaign without a journey is one step, "message", and every send is at it.
        assert_eq!(windows["steps"], serde_json::json!(["message"]));
        assert!(
            sent_rows(&windows).iter().all(|row| row["step"] == 0),
            "{windows}"
        );
        let starts: Vec<&str> = windows["windows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["start"].as_str().unwrap())
            .collect();
        assert!(!starts.is_empty());
        assert!(
            starts.windows(2).all(|p| p[0] < p[1]),
            "oldest first: {starts:?}"
        );
    }
    for (args, message) in [
        (vec!["--by", "week"], "week"),
        (
            vec!["--by", "day", "--tz", "Mars/Olympus"],
            "unknown time zone",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_mia"))
            .args(["report", "--campaign", &campaign])
            .args(&args)
            .arg("--db")
            .arg(&db)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(message), "{args:?}: {err}");
    }
}

#[test]
fn an_unknown_campaign_or_database_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mia"))
        .args(["report", "--campaign", "nope", "--db"])
        .arg(dir.path().join("missing.db"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no database"));
}
