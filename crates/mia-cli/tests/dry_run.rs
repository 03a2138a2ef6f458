//! The quickstart, as a user runs it: the `mia dry-run` binary on a fresh folder.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::process::Command;

fn dry_run(dir: &Path, seed: u64, contacts: u32) -> serde_json::Value {
    let db = dir.join("nested/folder/dry-run.db");
    let json = dir.join(format!("report-{seed}.json"));
    let out = Command::new(env!("CARGO_BIN_EXE_mia"))
        .args([
            "dry-run",
            "--quiet",
            "--contacts",
            &contacts.to_string(),
            "--seed",
            &seed.to_string(),
        ])
        .arg("--db")
        .arg(&db)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("every contact accounted for exactly once: yes"),
        "{stdout}"
    );
    assert!(
        db.exists(),
        "the SQLite database is created, folders included"
    );
    serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap()
}

fn sum(v: &serde_json::Value) -> u64 {
    v.as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum()
}

#[test]
fn the_report_accounts_for_every_contact_and_the_run_is_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let report = dry_run(dir.path(), 11, 1_500);
    let c = &report["campaign"];
    let audience = c["audience"].as_u64().unwrap();
    let sent = c["sent"].as_u64().unwrap();
    assert_eq!(audience, 1_500);
    assert_eq!(c["state"], "completed", "{:?}", c["state_reason"]);
    assert_eq!(c["open"], 0);
    assert_eq!(
        sent + c["open"].as_u64().unwrap()
            + sum(&c["skipped"])
            + sum(&c["cancelled"])
            + sum(&c["failed"]),
        audience
    );
    // Scheduling skipped exactly those without valid consent; the send policy skipped the rest.
    let s = &report["scheduling"];
    for (reason, key) in [
        ("no_consent", "no_consent"),
        ("withdrawn", "withdrawn"),
        ("expired", "expired"),
    ] {
        assert_eq!(
            c["skipped"][reason].as_u64().unwrap_or(0),
            s[key].as_u64().unwrap(),
            "{reason}"
        );
    }
    // About 70% consented; caps and failures take a few percent more.
    let queued = s["queued"].as_u64().unwrap();
    assert!((900..=1_200).contains(&queued), "queued {queued}");
    assert!(
        sent > queued * 85 / 100 && sent <= queued,
        "sent {sent} of {queued}"
    );
    assert!(
        c["skipped"]["frequency_cap"].as_u64().unwrap() > 0,
        "the warm-up newsletter caps someone"
    );
    assert!(
        report["run"]["deferred"]["quiet_hours"].as_u64().unwrap() > 0,
        "many time zones are asleep"
    );
    let variants = c["variants"].as_object().unwrap();
    assert_eq!(variants.len(), 2);
    let per_variant: u64 = variants.values().map(|v| v["sent"].as_u64().unwrap()).sum();
    assert_eq!(per_variant, sent);

    let again = dry_run(dir.path(), 11, 1_500);
    assert_eq!(report, again, "same seed, same report");
    let other = dry_run(dir.path(), 12, 1_500);
    assert_ne!(report["campaign"], other["campaign"]);
}

#[test]
fn bad_flags_are_clear_errors() {
    let out = Command::new(env!("CARGO_BIN_EXE_mia"))
        .args(["dry-run", "--contacts", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--contacts"));
    let out = Command::new(env!("CARGO_BIN_EXE_mia"))
        .args(["dry-run", "--start", "yesterday"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--start"));
}
