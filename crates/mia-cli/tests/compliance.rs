//! `mia audit verify|checkpoint` and `mia dsar export|erase|object` on a SQLite database an
//! agent wrote.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

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

/// Three contacts with consent get one campaign, sent.
async fn prepare(db: &Path) {
    let store = Arc::new(SqliteStore::open(db).await.unwrap());
    let agent = Agent::builder(TemplateProvider::new(), Accept(AtomicI64::new(0)))
        .shared_store(store)
        .permissive_policies()
        .build()
        .unwrap();
    let now = Timestamp::now();
    let contacts: Vec<Contact> = (0..3)
        .map(|i| {
            Contact::new(
                format!("u{i}-cli"),
                TelegramPeer::user(70_000 + i),
                "UTC",
                now,
            )
            .unwrap()
            .with_attribute("nick", serde_json::json!(format!("nick-{i}-x")))
        })
        .collect();
    agent.import_contacts(&contacts).await.unwrap();
    let grants: Vec<ConsentRecord> = (0..3)
        .map(|i| {
            let ev = Evidence::new("telegram_start", format!("update={i}"));
            let at = now - SignedDuration::from_hours(1);
            ConsentRecord::grant(format!("u{i}-cli"), Purpose::marketing(), ev, "v1", at)
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
}

#[tokio::test]
async fn verify_checkpoint_export_and_erase_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mia.db");
    prepare(&db).await;
    let db = db.to_str().unwrap();

    let (ok, out, err) = mia(&["audit", "--db", db, "verify"]);
    assert!(ok, "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(report["problem"].is_null(), "{out}");
    assert!(report["entries"].as_u64().unwrap() >= 10, "{out}");

    let signer = CheckpointSigner::from_seed([5; 32]);
    let key_file = dir.path().join("checkpoint.key");
    std::fs::write(&key_file, "05".repeat(32)).unwrap();
    let (ok, out, err) = mia(&[
        "audit",
        "--db",
        db,
        "checkpoint",
        "--key-file",
        key_file.to_str().unwrap(),
    ]);
    assert!(ok, "{out}{err}");
    assert!(
        !out.contains(&"05".repeat(32)),
        "the secret never shows: {out}"
    );
    let trusted = signer.public_key().to_hex();
    let (ok, out, err) = mia(&["audit", "--db", db, "verify", "--trust", &trusted]);
    assert!(ok, "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["checkpoints"], 1, "{out}");
    // A checkpoint by a key nobody trusts fails verification, with the reason.
    let stranger = CheckpointSigner::from_seed([6; 32]).public_key().to_hex();
    let (ok, out, err) = mia(&["audit", "--db", db, "verify", "--trust", &stranger]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("untrusted_key") && err.contains("not a trusted key"),
        "{out}{err}"
    );

    let (ok, out, err) = mia(&["dsar", "--db", db, "export", "--subject", "u1-cli"]);
    assert!(ok, "{out}{err}");
    let export: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(export["contact"]["id"], "u1-cli");
    assert_eq!(export["jobs"].as_array().unwrap().len(), 1);
    assert!(out.contains("nick-1-x"));

    let (ok, out, err) = mia(&[
        "dsar",
        "--db",
        db,
        "erase",
        "--subject",
        "u1-cli",
        "--law",
        "ccpa",
    ]);
    assert!(ok, "{out}{err}");
    let erased: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(erased["counts"]["contacts"], 1, "{out}");
    assert_eq!(erased["request"]["state"], "completed");
    let (ok, _, err) = mia(&["dsar", "--db", db, "export", "--subject", "u1-cli"]);
    assert!(!ok && err.contains("not found"), "{err}");
    let (ok, out, _) = mia(&["dsar", "--db", db, "list"]);
    assert!(ok && !out.contains("u1-cli"), "{out}");
    // The log still verifies after the erasure.
    let (ok, out, err) = mia(&["audit", "--db", db, "verify", "--trust", &trusted]);
    assert!(ok, "{out}{err}");

    let (ok, out, err) = mia(&["dsar", "--db", db, "object", "--subject", "u2-cli"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("\"marketing\""), "{out}");
}
