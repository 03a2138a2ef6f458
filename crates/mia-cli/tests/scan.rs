//! `mia scan`: JSON lines or plain lines in, one JSON line out each, offsets into the original.
#![allow(clippy::unwrap_used, missing_docs)]

use std::io::Write;
use std::process::{Command, Stdio};

fn scan(input: &str, args: &[&str]) -> Vec<serde_json::Value> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mia"))
        .arg("scan")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn findings_point_at_the_original_bytes_and_hard_negatives_stay_quiet() {
    let text =
        "Schreib an anna\u{200B}@example.de – Bestellung #12345, 19,99 €. STOP zum Abmelden.";
    let input = format!(
        "{}\nv2.3.1 promo.mp4 @shop 2026-11-26. Reply STOP to unsubscribe.\n",
        serde_json::json!({"id": "m1", "text": text})
    );
    let out = scan(&input, &["--redact", "tag"]);
    assert_eq!(out.len(), 2);
    let findings = out[0]["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    let (start, end) = (
        findings[0]["start"].as_u64().unwrap() as usize,
        findings[0]["end"].as_u64().unwrap() as usize,
    );
    assert_eq!(findings[0]["kind"], "EMAIL");
    assert_eq!(
        &text[start..end],
        "anna\u{200B}@example.de",
        "byte offsets into the original, invisible char included"
    );
    assert_eq!(out[0]["verdict"], "escalate");
    assert!(out[0]["redacted"].as_str().unwrap().contains("<EMAIL>"));
    assert_eq!(out[1]["findings"].as_array().unwrap().len(), 0);
    assert_eq!(out[1]["verdict"], "allow");
}
