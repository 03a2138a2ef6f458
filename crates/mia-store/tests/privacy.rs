//! On SQLite with seeded data: the privacy scanner finds personal data where the configuration
//! does not allow it (naming table, record, field and kind, never the value), and audit-log
//! proofs made from the database verify on their own while tampered ones fail.
#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;

use jiff::Timestamp;
use mia_core::{
    AuditAction, AuditEvent, AuditHash, ConsentRecord, Contact, ContactId, Event, EventId,
    EventKind, Evidence, Jurisdiction, Purpose, Store, TelegramPeer,
};
use mia_safety::PiiKind;
use mia_safety::compliance::{
    AuditLog, CheckpointSigner, PrivacyScan, SubjectRights, prove_consistency, prove_inclusion,
    verify_consistency_proof, verify_inclusion_proof,
};
use mia_store::SqliteStore;
use serde_json::json;

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

async fn store() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("mia.db")).await.unwrap();
    (dir, Arc::new(store))
}

const EMAIL: &str = "zora.quill@example.org";
const PHONE: &str = "+43 664 1234567";

async fn seed(store: &Arc<dyn Store>) {
    let clean = Contact::new("c-clean", TelegramPeer::user(11), "UTC", t(0))
        .unwrap()
        .with_attribute("plan", json!("pro"));
    let noted = Contact::new("c-noted", TelegramPeer::user(12), "Europe/Vienna", t(0))
        .unwrap()
        .with_locale("de-AT")
        .with_attribute("rückruf", json!("ruf mich an: 0664 1234567"))
        .with_attribute("email", json!(EMAIL))
        .with_attribute(
            "notes",
            json!({"support": [format!("wants a call on {PHONE}"), "ok"]}),
        );
    let by_mail = Contact::new(EMAIL, TelegramPeer::user(13), "UTC", t(0)).unwrap();
    store
        .upsert_contacts(&[clean, noted, by_mail])
        .await
        .unwrap();
    store
        .append_consent(&[ConsentRecord::grant(
            "c-noted",
            Purpose::marketing(),
            Evidence::new("web_form", format!("form=7 email={EMAIL}")),
            "v1",
            t(1),
        )])
        .await
        .unwrap();
    let mut request = SubjectRights::new(Arc::clone(store))
        .receive(
            &ContactId::new("c-clean"),
            mia_core::RequestKind::Access,
            Jurisdiction::Gdpr,
            t(2),
        )
        .await
        .unwrap();
    request.note = Some(format!("asked by phone from {PHONE}"));
    store.save_request(&request).await.unwrap();
    // A failure reason that quotes an address, on an event of the contact whose id is one, and
    // the same event id on another contact (ids are unique per contact only).
    let failed = |contact: &str| Event {
        id: EventId::new("e-bounce"),
        at: t(2),
        contact: ContactId::new(contact),
        campaign: None,
        variant: None,
        step: None,
        kind: EventKind::Failed {
            reason: format!("bounced: {EMAIL}"),
        },
    };
    store
        .append_events(&[failed(EMAIL), failed("c-clean")])
        .await
        .unwrap();
    // A careless host writes a phone number into an audit detail.
    let log = AuditLog::new(Arc::clone(store));
    log.append(&[AuditEvent::new(
        t(3),
        "operator",
        AuditAction::CampaignState,
        None,
        json!({"reason": format!("customer called from {PHONE}")}),
    )])
    .await
    .unwrap();
}

fn places(report: &mia_safety::compliance::PrivacyReport) -> Vec<(String, String, String)> {
    report
        .findings
        .iter()
        .map(|f| (f.table.clone(), f.field.clone(), f.kind.clone()))
        .collect()
}

#[tokio::test]
async fn the_scanner_reports_personal_data_out_of_place_without_the_values() {
    let (_dir, store) = store().await;
    seed(&store).await;
    let report = PrivacyScan::new()
        .unwrap()
        .scan(&*store, t(10))
        .await
        .unwrap();
    let found = places(&report);
    let has = |table: &str, field: &str, kind: &str| {
        found
            .iter()
            .any(|(t, f, k)| t == table && f == field && k == kind)
    };
    assert!(has("consents", "evidence.reference", "EMAIL"), "{found:?}");
    assert!(has("subject_requests", "note", "PHONE"), "{found:?}");
    assert!(has("audit_log", "detail.reason", "PHONE"), "{found:?}");
    assert!(
        has("contacts", "id", "EMAIL"),
        "an e-mail as a contact id: {found:?}"
    );
    // Contact details in attributes are allowed by default.
    assert!(
        !found
            .iter()
            .any(|(t, f, _)| t == "contacts" && f.starts_with("attributes")),
        "{found:?}"
    );
    assert!(!report.is_clean());
    assert!(report.records >= 6 && report.fields >= 6);
    let text = serde_json::to_string(&report).unwrap();
    assert!(
        !text.contains("zora") && !text.contains("1234567"),
        "{text}"
    );
    let by_id = report.findings.iter().find(|f| f.field == "id").unwrap();
    assert!(
        by_id.record.starts_with("sub_"),
        "the pseudonym stands in: {by_id:?}"
    );
    // An event is named by its contact (or the contact's pseudonym) and its id.
    let events: Vec<&str> = report
        .findings
        .iter()
        .filter(|f| f.table == "events")
        .map(|f| f.record.as_str())
        .collect();
    assert_eq!(
        events,
        [
            "c-clean/e-bounce".to_owned(),
            format!("{}/e-bounce", by_id.record)
        ],
        "{:?}",
        report.findings
    );
    let audit = report
        .findings
        .iter()
        .find(|f| f.table == "audit_log")
        .unwrap();
    assert_eq!(audit.record, "2", "the audit entry's sequence number");

    // Stricter: no phone numbers in attributes either; laxer: e-mails allowed in evidence.
    let strict = PrivacyScan::new()
        .unwrap()
        .forbid("contacts.attributes.*")
        .allow("contacts.attributes.*", [PiiKind::Email])
        .allow("consents.evidence.reference", [PiiKind::Email])
        .scan(&*store, t(10))
        .await
        .unwrap();
    let found = places(&strict);
    assert!(
        found
            .iter()
            .any(|(t, f, k)| t == "contacts" && f == "attributes.notes.support[0]" && k == "PHONE"),
        "{found:?}"
    );
    assert!(!found.iter().any(|(t, _, _)| t == "consents"), "{found:?}");
    assert!(
        found
            .iter()
            .any(|(t, f, k)| t == "contacts" && f == "attributes.rückruf" && k == "PHONE"),
        "a national number, judged in the contact's locale: {found:?}"
    );
}

#[tokio::test]
async fn a_clean_store_scans_clean() {
    let (_dir, store) = store().await;
    let c = Contact::new("c1", TelegramPeer::user(1), "UTC", t(0))
        .unwrap()
        .with_attribute("plan", json!("pro"));
    store.upsert_contacts(&[c]).await.unwrap();
    let report = PrivacyScan::new()
        .unwrap()
        .scan(&*store, t(1))
        .await
        .unwrap();
    assert!(report.is_clean(), "{:?}", report.findings);
    assert_eq!(report.records, 1);
}

#[tokio::test]
async fn inclusion_and_consistency_proofs_verify_and_tampering_fails() {
    let (_dir, store) = store().await;
    let signer = CheckpointSigner::generate();
    let key = signer.public_key();
    let log = AuditLog::new(Arc::clone(&store))
        .with_signer(signer)
        .checkpoint_every(7);
    for i in 0..20i64 {
        let contact = ContactId::new(format!("c{}", i % 3));
        log.append(&[AuditEvent::new(
            t(i),
            "worker:w1",
            AuditAction::PolicyDecision,
            Some(&contact),
            json!({"job": format!("job-{i}"), "decision": "allow"}),
        )])
        .await
        .unwrap();
    }
    // Checkpoints at 7 and 14 were made incrementally; they verify like full ones.
    let checkpoints = store.audit_checkpoints().await.unwrap();
    assert_eq!(
        checkpoints.iter().map(|c| c.size).collect::<Vec<_>>(),
        [7, 14]
    );
    assert!(log.verify(&[key]).await.unwrap().is_ok());
    let last = log.checkpoint(t(100)).await.unwrap();
    assert_eq!(last.size, 20);
    assert_eq!(last.root, log.checkpoint_full(t(101)).await.unwrap().root);

    for seq in [1, 5, 7, 13, 20] {
        let proof = prove_inclusion(&*store, seq, None).await.unwrap();
        assert_eq!(proof.entry.seq, seq);
        assert!(proof.checkpoint.is_some(), "a signed root");
        verify_inclusion_proof(&proof, &[key]).unwrap();
        // Through JSON, as `mia audit prove` prints it.
        let text = serde_json::to_string(&proof).unwrap();
        let back = serde_json::from_str(&text).unwrap();
        verify_inclusion_proof(&back, &[key]).unwrap();

        let mut leaf = proof.clone();
        leaf.entry.detail = json!({"job": "forged", "decision": "allow"});
        assert!(verify_inclusion_proof(&leaf, &[]).is_err(), "changed entry");
        let mut resealed = leaf.clone();
        resealed.entry.hash = resealed.entry.expected_hash();
        assert!(
            verify_inclusion_proof(&resealed, &[]).is_err(),
            "resealed entry"
        );
        let mut path = proof.clone();
        path.path[0].0[5] ^= 0x40;
        assert!(verify_inclusion_proof(&path, &[]).is_err(), "changed path");
        let mut root = proof.clone();
        root.root = AuditHash([7; 32]);
        assert!(verify_inclusion_proof(&root, &[]).is_err(), "changed root");
        let mut moved = proof.clone();
        moved.entry.seq = if seq == 1 { 2 } else { seq - 1 };
        assert!(
            verify_inclusion_proof(&moved, &[]).is_err(),
            "another position"
        );
        let stranger = CheckpointSigner::generate().public_key();
        assert!(
            verify_inclusion_proof(&proof, &[stranger]).is_err(),
            "untrusted"
        );
    }
    let unsigned = prove_inclusion(&*store, 3, Some(9)).await.unwrap();
    assert_eq!(unsigned.tree_size, 9);
    assert!(unsigned.checkpoint.is_none());
    verify_inclusion_proof(&unsigned, &[]).unwrap();
    assert!(
        verify_inclusion_proof(&unsigned, &[key]).is_err(),
        "trusting a key demands a signed root"
    );
    assert!(prove_inclusion(&*store, 21, None).await.is_err());
    assert!(prove_inclusion(&*store, 0, None).await.is_err());

    let consistency = prove_consistency(&*store, 7, 20).await.unwrap();
    assert_eq!(consistency.old_root, checkpoints[0].root);
    assert_eq!(consistency.new_root, last.root);
    verify_consistency_proof(&consistency).unwrap();
    let mut forged = consistency.clone();
    forged.old_root = AuditHash([1; 32]);
    assert!(verify_consistency_proof(&forged).is_err());
}
