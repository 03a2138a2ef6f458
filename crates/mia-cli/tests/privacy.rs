//! Through the `mia` binary on a SQLite database an agent wrote: `dsar rectify|restrict|
//! unrestrict|why`, `privacy scan`, `audit prove|verify-proof`, `retention purge` and
//! `compliance records`, bad input included.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use jiff::{SignedDuration, Timestamp};
use mia::safety::compliance::CheckpointSigner;
use mia::store::SqliteStore;
use mia::*;

fn mia(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mia"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

struct Accept(AtomicI64);

#[async_trait::async_trait]
impl Transport for Accept {
    fn name(&self) -> &str {
        "accept"
    }
    async fn send(&self, _: &OutboundMessage) -> Result<SendOutcome> {
        Ok(SendOutcome::Sent {
            message_id: self.0.fetch_add(1, Ordering::Relaxed) + 1,
            duplicate: false,
        })
    }
}

/// Three contacts with consent (one gave an e-mail address as evidence) get one campaign,
/// sent; returns the campaign id.
async fn prepare(db: &Path) -> String {
    let store = Arc::new(SqliteStore::open(db).await.unwrap());
    let agent = Agent::builder(TemplateProvider::new(), Accept(AtomicI64::new(0)))
        .shared_store(store)
        .permissive_policies()
        .build()
        .unwrap();
    let now = Timestamp::now();
    let contacts: Vec<Contact> = (0..3)
        .map(|i| {
            Contact::new(format!("v{i}"), TelegramPeer::user(80_000 + i), "UTC", now)
                .unwrap()
                .with_attribute("plan", serde_json::json!("pro"))
        })
        .collect();
    agent.import_contacts(&contacts).await.unwrap();
    let grants: Vec<ConsentRecord> = (0..3)
        .map(|i| {
            let reference = match i {
                2 => "form=9 email=vera.quist@example.net".to_owned(),
                _ => format!("update={i}"),
            };
            let ev = Evidence::new("web_form", reference);
            let at = now - SignedDuration::from_hours(1);
            ConsentRecord::grant(format!("v{i}"), Purpose::marketing(), ev, "v1", at)
        })
        .collect();
    agent.record_consent(&grants).await.unwrap();
    let c = agent
        .create_campaign(CampaignSpec::new("Ops", "tea", "20% off"))
        .await
        .unwrap();
    agent.schedule(&c.id, None).await.unwrap();
    agent.start(&c.id).await.unwrap();
    agent.run_until_idle().await.unwrap();
    c.id.to_string()
}

#[tokio::test]
async fn rectify_restrict_and_why_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mia.db");
    let campaign = prepare(&path).await;
    let db = path.to_str().unwrap();

    let (ok, out, err) = mia(&[
        "dsar",
        "--db",
        db,
        "why",
        "--subject",
        "v1",
        "--campaign",
        &campaign,
    ]);
    assert!(ok, "{out}{err}");
    let why = json(&out);
    assert_eq!(why["job"]["state"], "sent");
    assert_eq!(why["consent"]["evidence"]["method"], "web_form");
    assert_eq!(why["allowed_by"]["detail"]["decision"], "allow");
    let (ok, _, err) = mia(&[
        "dsar",
        "--db",
        db,
        "why",
        "--subject",
        "nobody",
        "--campaign",
        &campaign,
    ]);
    assert!(!ok && err.contains("not found"), "{err}");

    let (ok, out, err) = mia(&[
        "dsar",
        "--db",
        db,
        "rectify",
        "--subject",
        "v0",
        "--time-zone",
        "Europe/Vienna",
        "--set",
        "name=Vera Quist",
        "--set",
        "age=41",
        "--unset",
        "plan",
    ]);
    assert!(ok, "{out}{err}");
    let done = json(&out);
    assert_eq!(done["request"]["kind"], "rectification");
    assert_eq!(done["contact"]["time_zone"], "Europe/Vienna");
    assert_eq!(done["contact"]["attributes"]["age"], 41, "JSON values");
    assert_eq!(done["contact"]["attributes"]["name"], "Vera Quist");
    assert!(done["contact"]["attributes"].get("plan").is_none());
    let (ok, _, err) = mia(&[
        "dsar",
        "--db",
        db,
        "rectify",
        "--subject",
        "v0",
        "--set",
        "nameless",
    ]);
    assert!(!ok && err.contains("NAME=VALUE"), "{err}");
    let (ok, _, err) = mia(&["dsar", "--db", db, "rectify", "--subject", "v0"]);
    assert!(!ok && err.contains("at least one field"), "{err}");

    let (ok, out, err) = mia(&["dsar", "--db", db, "restrict", "--subject", "v1"]);
    assert!(ok, "{out}{err}");
    let restricted = json(&out);
    assert_eq!(restricted["restricted"], true);
    assert_eq!(restricted["request"]["state"], "completed");
    let (ok, out, err) = mia(&[
        "dsar",
        "--db",
        db,
        "unrestrict",
        "--subject",
        "v1",
        "--law",
        "ccpa",
    ]);
    assert!(ok, "{out}{err}");
    assert_eq!(json(&out)["request"]["kind"], "lift_restriction");
    let (ok, out, _) = mia(&["dsar", "--db", db, "list"]);
    assert!(ok);
    for kind in ["rectification", "restriction", "lift_restriction"] {
        assert!(out.contains(&format!("\"kind\":\"{kind}\"")), "{out}");
    }
    // Nothing personal went to the log: it still verifies, and holds no name.
    let (ok, out, err) = mia(&["audit", "--db", db, "verify"]);
    assert!(ok, "{out}{err}");
}

#[tokio::test]
async fn the_privacy_scan_names_places_not_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mia.db");
    prepare(&path).await;
    let db = path.to_str().unwrap();

    let (ok, out, err) = mia(&["privacy", "scan", "--db", db, "--json"]);
    assert!(!ok, "personal data out of place fails the command: {out}");
    assert!(err.contains("1 places"), "{err}");
    let report = json(&out);
    let finding = &report["findings"][0];
    assert_eq!(finding["table"], "consents");
    assert_eq!(finding["field"], "evidence.reference");
    assert_eq!(finding["kind"], "EMAIL");
    assert!(
        finding["record"]
            .as_str()
            .unwrap()
            .starts_with("v2/marketing@")
    );
    assert!(!out.contains("vera.quist"), "never the value: {out}");

    let (ok, out, err) = mia(&["privacy", "scan", "--db", db]);
    assert!(!ok);
    assert!(
        out.starts_with("consents\tv2/marketing@") && out.contains("EMAIL x1"),
        "{out}{err}"
    );

    let (ok, out, err) = mia(&[
        "privacy",
        "scan",
        "--db",
        db,
        "--allow",
        "consents.evidence.reference=EMAIL",
    ]);
    assert!(ok, "allowed there now: {out}{err}");
    let (ok, _, err) = mia(&[
        "privacy",
        "scan",
        "--db",
        db,
        "--allow",
        "consents.evidence.reference=SHOESIZE",
    ]);
    assert!(!ok && err.contains("SHOESIZE"), "{err}");
}

#[tokio::test]
async fn inclusion_proofs_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mia.db");
    prepare(&path).await;
    let db = path.to_str().unwrap();
    let key_file = dir.path().join("checkpoint.key");
    std::fs::write(&key_file, "0a".repeat(32)).unwrap();
    let trusted = CheckpointSigner::from_seed([10; 32]).public_key().to_hex();
    let (ok, out, err) = mia(&[
        "audit",
        "--db",
        db,
        "checkpoint",
        "--key-file",
        key_file.to_str().unwrap(),
    ]);
    assert!(ok, "{out}{err}");

    let (ok, out, err) = mia(&["audit", "--db", db, "prove", "--entry", "2"]);
    assert!(ok, "{out}{err}");
    let proof = json(&out);
    assert_eq!(proof["entry"]["seq"], 2);
    assert_eq!(proof["checkpoint"]["key_id"], trusted.as_str());
    let file = dir.path().join("proof.json");
    std::fs::write(&file, &out).unwrap();
    // No database needed to check it.
    let (ok, out, err) = mia(&[
        "audit",
        "verify-proof",
        "--proof",
        file.to_str().unwrap(),
        "--trust",
        &trusted,
    ]);
    assert!(ok, "{out}{err}");
    assert_eq!(json(&out)["verified"], true);

    let stranger = CheckpointSigner::from_seed([11; 32]).public_key().to_hex();
    let (ok, _, err) = mia(&[
        "audit",
        "verify-proof",
        "--proof",
        file.to_str().unwrap(),
        "--trust",
        &stranger,
    ]);
    assert!(!ok && err.contains("not trusted"), "{err}");
    // Without a trusted key nothing is called verified: anyone can build a consistent proof.
    let (ok, out, err) = mia(&["audit", "verify-proof", "--proof", file.to_str().unwrap()]);
    assert!(!ok && err.contains("--trust"), "{out}{err}");

    let mut forged = proof.clone();
    forged["entry"]["actor"] = serde_json::json!("someone-else");
    std::fs::write(&file, forged.to_string()).unwrap();
    let (ok, _, err) = mia(&["audit", "verify-proof", "--proof", file.to_str().unwrap()]);
    assert!(!ok && err.contains("altered"), "{err}");

    let mut bent = proof.clone();
    bent["root"] = serde_json::json!("00".repeat(32));
    std::fs::write(&file, bent.to_string()).unwrap();
    let (ok, _, err) = mia(&["audit", "verify-proof", "--proof", file.to_str().unwrap()]);
    assert!(!ok && err.contains("does not lead"), "{err}");

    std::fs::write(&file, "{\"not\": \"a proof\"}").unwrap();
    let (ok, _, err) = mia(&["audit", "verify-proof", "--proof", file.to_str().unwrap()]);
    assert!(!ok && err.contains("not an inclusion proof"), "{err}");
    let (ok, _, err) = mia(&["audit", "--db", db, "prove", "--entry", "100000"]);
    assert!(!ok && err.contains("not found"), "{err}");
    // A size far past the log is a clear error, not an allocation failure.
    let huge = u64::MAX.to_string();
    let (ok, _, err) = mia(&[
        "audit", "--db", db, "prove", "--entry", "1", "--size", &huge,
    ]);
    assert!(!ok && !err.contains("panicked"), "{err}");
    let (ok, _, err) = mia(&[
        "audit",
        "--db",
        db,
        "prove-consistency",
        "--from",
        "1",
        "--to",
        &huge,
    ]);
    assert!(!ok && !err.contains("panicked"), "{err}");
    let (ok, _, err) = mia(&["audit", "prove", "--entry", "1"]);
    assert!(!ok && err.contains("--db"), "{err}");

    // The log grew past the checkpoint without rewriting it.
    let size = proof["tree_size"].as_u64().unwrap().to_string();
    let (ok, out, err) = mia(&["dsar", "--db", db, "restrict", "--subject", "v0"]);
    assert!(ok, "{out}{err}");
    let (ok, out, err) = mia(&["audit", "--db", db, "prove-consistency", "--from", &size]);
    assert!(ok, "{out}{err}");
    let consistency = json(&out);
    assert_eq!(consistency["old_root"], proof["root"], "the signed root");
    assert!(consistency["new_size"].as_u64().unwrap() > consistency["old_size"].as_u64().unwrap());
    std::fs::write(&file, &out).unwrap();
    let (ok, out, err) = mia(&[
        "audit",
        "verify-consistency",
        "--proof",
        file.to_str().unwrap(),
    ]);
    assert!(ok, "{out}{err}");
    let mut forged = consistency.clone();
    forged["new_root"] = serde_json::json!("11".repeat(32));
    std::fs::write(&file, forged.to_string()).unwrap();
    let (ok, _, err) = mia(&[
        "audit",
        "verify-consistency",
        "--proof",
        file.to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("does not extend"), "{err}");
}

#[tokio::test]
async fn retention_purge_and_records_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mia.db");
    prepare(&path).await;
    let db = path.to_str().unwrap();
    let policy = dir.path().join("policy.json");
    // Events older than 0 days go now; jobs of open campaigns and consenting contacts stay.
    std::fs::write(
        &policy,
        r#"{"events_days": 0, "jobs_days": 30, "inactive_contacts_days": null}"#,
    )
    .unwrap();
    let (ok, out, err) = mia(&[
        "retention",
        "purge",
        "--db",
        db,
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert!(ok, "{out}{err}");
    let report = json(&out);
    assert!(report["events"].as_u64().unwrap() >= 3, "{out}");
    assert_eq!(report["contacts"], 0, "{out}");

    std::fs::write(&policy, r#"{"jobs_days": 1}"#).unwrap();
    let (ok, _, err) = mia(&[
        "retention",
        "purge",
        "--db",
        db,
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("at least 7 days"), "{err}");
    std::fs::write(&policy, r#"{"event_days": 10}"#).unwrap();
    let (ok, _, err) = mia(&[
        "retention",
        "purge",
        "--db",
        db,
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert!(
        !ok && err.contains("event_days"),
        "a typo is refused: {err}"
    );

    std::fs::write(&policy, r#"{"events_days": 30}"#).unwrap();
    let (ok, out, err) = mia(&[
        "compliance",
        "records",
        "--controller",
        "Tea Shop",
        "--contact",
        "privacy@tea.example",
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert!(ok, "{out}{err}");
    let records = json(&out);
    assert_eq!(records["controller"]["name"], "Tea Shop");
    assert!(out.contains("events: 30 days"), "{out}");
}
