//! The compliance guard on the memory store, end to end with an agent: the log is written by
//! every decision, verifies, detects every kind of tampering, explains a send; erasure leaves
//! nothing of the subject anywhere; an objection stops marketing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use mia_core::{
    Agent, AuditAction, AuditEntry, AuditEvent, AuditHash, AuditStore, CampaignSpec, CampaignState,
    ConsentRecord, Contact, ContactId, Evidence, InboundEvent, InboundKind, JobState, Jurisdiction,
    MemoryStore, OutboundMessage, Purpose, Result, SendOutcome, Store, TelegramPeer,
    TemplateProvider, Transport,
};
use mia_safety::compliance::{
    AuditLog, CheckpointSigner, OBJECTION_METHOD, ProblemKind, SubjectRights, verify_log,
};
use serde_json::json;

/// Accepts every message.
struct Accept(AtomicI64);

#[async_trait]
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

const PEER: i64 = 918_273_645;

fn people(now: Timestamp) -> Vec<Contact> {
    (0..4)
        .map(|i| {
            Contact::new(
                format!("crm-{i}-zq"),
                TelegramPeer::user(PEER + i),
                "UTC",
                now,
            )
            .unwrap()
            .with_attribute("city", json!(format!("Hallstatt-{i}-attr")))
        })
        .collect()
}

/// An agent over a shared memory store that has sent one campaign to three of four people
/// (one never consented), with the audit log signed by `signer`.
async fn sent_campaign(
    store: &Arc<MemoryStore>,
    signer: CheckpointSigner,
) -> (Agent, Arc<AuditLog<Arc<dyn Store>>>) {
    let shared: Arc<dyn Store> = store.clone();
    let log = Arc::new(
        AuditLog::new(Arc::clone(&shared))
            .with_signer(signer)
            .checkpoint_every(5),
    );
    let agent = Agent::builder(TemplateProvider::new(), Accept(AtomicI64::new(0)))
        .shared_store(shared)
        .audit_trail(Arc::clone(&log))
        .permissive_policies()
        .build()
        .unwrap();
    let now = agent.now();
    agent.import_contacts(&people(now)).await.unwrap();
    let grants: Vec<ConsentRecord> = (0..3)
        .map(|i| {
            ConsentRecord::grant(
                format!("crm-{i}-zq"),
                Purpose::marketing(),
                Evidence::new("web_form", format!("form=7 email=crm{i}@example.com")),
                "v2",
                now - SignedDuration::from_hours(1),
            )
        })
        .collect();
    agent.record_consent(&grants).await.unwrap();
    let campaign = agent
        .create_campaign(CampaignSpec::new("Spring", "green tea", "20% off"))
        .await
        .unwrap();
    agent.schedule(&campaign.id, None).await.unwrap();
    agent.start(&campaign.id).await.unwrap();
    agent.run_until_idle().await.unwrap();
    assert_eq!(
        agent.campaign(&campaign.id).await.unwrap().state,
        CampaignState::Completed
    );
    (agent, log)
}

async fn all_entries(store: &MemoryStore) -> Vec<AuditEntry> {
    store.audit_entries(0, 100_000).await.unwrap()
}

#[tokio::test]
async fn the_agent_logs_every_decision_without_personal_data_and_the_log_verifies() {
    let store = Arc::new(MemoryStore::new());
    let signer = CheckpointSigner::generate();
    let trusted = signer.public_key();
    let (agent, log) = sent_campaign(&store, signer).await;
    // A STOP from the first contact.
    let stop = InboundEvent {
        id: "update-1".into(),
        at: agent.now(),
        peer: TelegramPeer::user(PEER),
        kind: InboundKind::Text {
            text: "STOP".into(),
            reply_to: None,
        },
    };
    agent.handle_inbound(&[stop]).await.unwrap();

    let entries = all_entries(&store).await;
    let count = |a: AuditAction| entries.iter().filter(|e| e.action == a).count();
    assert_eq!(count(AuditAction::ConsentChange), 4, "3 grants and a STOP");
    assert_eq!(count(AuditAction::ContentDecision), 2, "one per variant");
    assert_eq!(
        count(AuditAction::PolicyDecision),
        4,
        "one per send, and one for the STOP confirmation"
    );
    assert!(
        count(AuditAction::CampaignState) >= 4,
        "approved, scheduled, running, completed"
    );
    let text = serde_json::to_string(&entries).unwrap();
    for secret in [
        "crm-0-zq",
        "crm1@example.com",
        "Hallstatt",
        &PEER.to_string(),
    ] {
        assert!(!text.contains(secret), "the log holds {secret}");
    }
    let withdrawal = entries
        .iter()
        .rfind(|e| e.action == AuditAction::ConsentChange)
        .unwrap();
    let subject = log.pseudonym(&ContactId::new("crm-0-zq")).await.unwrap();
    assert_eq!(withdrawal.subject.as_deref(), Some(subject.as_str()));
    assert_eq!(withdrawal.detail["status"], "withdrawn");
    assert_eq!(withdrawal.actor, "inbound");

    let report = log.verify(&[trusted]).await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.entries as usize, entries.len());
    assert!(
        report.checkpoints >= 2 && report.covered >= 10,
        "{report:?}"
    );
}

#[tokio::test]
async fn why_did_this_contact_get_this_message() {
    let store = Arc::new(MemoryStore::new());
    let (agent, log) = sent_campaign(&store, CheckpointSigner::generate()).await;
    let campaign = agent.inner_campaigns().await;
    let why = log
        .explain_campaign(&ContactId::new("crm-1-zq"), &campaign)
        .await
        .unwrap();
    assert_eq!(why.job.state, JobState::Sent);
    let consent = why.consent.expect("the consent record that allowed it");
    assert_eq!(consent.evidence.method, "web_form");
    assert_eq!(consent.notice_version, "v2");
    let allowed = why.allowed_by.expect("the allow decision");
    assert_eq!(allowed.detail["rule"], "consent", "consent decided");
    assert_eq!(allowed.detail["consent"]["method"], "web_form");
    assert_eq!(allowed.detail["trace"][0]["rule"], "consent");
    // The contact who never consented was never sent to, and nothing allowed it.
    let never = log
        .explain_campaign(&ContactId::new("crm-3-zq"), &campaign)
        .await
        .unwrap();
    assert_eq!(never.job.state, JobState::Skipped);
    assert!(never.consent.is_none() && never.allowed_by.is_none());
}

trait Campaigns {
    async fn inner_campaigns(&self) -> mia_core::CampaignId;
}

impl Campaigns for Agent {
    async fn inner_campaigns(&self) -> mia_core::CampaignId {
        self.store().campaigns().await.unwrap().remove(0).id
    }
}

/// A log of 12 entries about three subjects, checkpointed at 5 and 10.
async fn small_log() -> (
    Arc<MemoryStore>,
    AuditLog<Arc<dyn Store>>,
    mia_safety::compliance::CheckpointKey,
) {
    let store = Arc::new(MemoryStore::new());
    let signer = CheckpointSigner::generate();
    let key = signer.public_key();
    let shared: Arc<dyn Store> = store.clone();
    let log = AuditLog::new(shared)
        .with_signer(signer)
        .checkpoint_every(5);
    let at = Timestamp::from_second(1_800_000_000).unwrap();
    for i in 0..12i64 {
        let contact = ContactId::new(format!("c{}", i % 3));
        let event = AuditEvent::new(
            at + SignedDuration::from_secs(i),
            "worker:w1",
            AuditAction::PolicyDecision,
            Some(&contact),
            json!({ "job": format!("job-{i}"), "decision": "allow", "rule": "consent" }),
        );
        log.append(&[event]).await.unwrap();
    }
    (store, log, key)
}

async fn tampered(
    edit: impl FnOnce(&mut Vec<AuditEntry>, &mut Vec<mia_core::AuditCheckpoint>),
) -> mia_safety::compliance::AuditReport {
    let (store, log, key) = small_log().await;
    assert!(log.verify(&[key]).await.unwrap().is_ok());
    store.tamper_with_audit_log(edit);
    verify_log(&*store, &[key]).await.unwrap()
}

/// Re-seals entries `from..` after an edit, as a forger who knows the format would.
fn reseal(entries: &mut [AuditEntry], from: usize) {
    for i in from..entries.len() {
        let prev = if i == 0 {
            AuditHash::ZERO
        } else {
            entries[i - 1].hash
        };
        entries[i].prev_hash = prev;
        entries[i].hash = entries[i].expected_hash();
    }
}

#[tokio::test]
async fn every_kind_of_tampering_is_detected_and_the_first_bad_entry_named() {
    let flip = tampered(|e, _| e[2].detail["rule"] = json!("consenT")).await;
    let p = flip.problem.unwrap();
    assert_eq!(
        (p.kind, p.seq),
        (ProblemKind::Altered, Some(3)),
        "{}",
        p.message
    );
    assert_eq!(flip.entries, 2, "entries before the bad one verify");

    let hash_byte = tampered(|e, _| e[6].hash.0[0] ^= 1).await;
    assert_eq!(hash_byte.problem.unwrap().seq, Some(7));

    let dropped = tampered(|e, _| {
        e.remove(3);
    })
    .await;
    let p = dropped.problem.unwrap();
    assert_eq!(
        (p.kind, p.seq),
        (ProblemKind::Missing, Some(4)),
        "{}",
        p.message
    );

    let reordered = tampered(|e, _| e.swap(3, 4)).await;
    let p = reordered.problem.unwrap();
    assert_eq!(
        (p.kind, p.seq),
        (ProblemKind::Missing, Some(4)),
        "{}",
        p.message
    );

    let inserted = tampered(|e, _| {
        let mut forged = e[4].clone();
        forged.detail = json!({ "job": "job-x", "decision": "allow" });
        forged.hash = forged.expected_hash();
        e.insert(5, forged);
    })
    .await;
    let p = inserted.problem.unwrap();
    assert_eq!(
        (p.kind, p.seq),
        (ProblemKind::OutOfOrder, Some(5)),
        "{}",
        p.message
    );

    // A forger who rebuilds the whole chain after a change is caught by the checkpoint.
    let rewritten = tampered(|e, _| {
        e[6].detail["decision"] = json!("deny");
        reseal(e, 6);
    })
    .await;
    let p = rewritten.problem.unwrap();
    assert_eq!(p.kind, ProblemKind::RootMismatch, "{}", p.message);
    assert_eq!(
        p.range,
        Some((6, 10)),
        "between the good and the bad checkpoint"
    );

    let truncated = tampered(|e, _| e.truncate(8)).await;
    assert_eq!(truncated.problem.unwrap().kind, ProblemKind::Truncated);

    let forged_root = tampered(|_, c| c[0].root = AuditHash([7; 32])).await;
    assert_eq!(forged_root.problem.unwrap().kind, ProblemKind::BadSignature);

    // A rewrite re-signed with the forger's own key: caught by the pinned key.
    let foreign = tampered(|e, c| {
        e[1].detail["rule"] = json!("none");
        reseal(e, 1);
        let forger = CheckpointSigner::generate();
        let hashes: Vec<AuditHash> = e.iter().map(|x| x.hash).collect();
        for cp in c.iter_mut() {
            let n = usize::try_from(cp.size).unwrap();
            *cp = forger.sign(
                cp.size,
                mia_safety::compliance::merkle::merkle_root(&hashes[..n]),
                cp.at,
            );
        }
    })
    .await;
    assert_eq!(foreign.problem.unwrap().kind, ProblemKind::UntrustedKey);
}

#[tokio::test]
async fn erasure_leaves_nothing_of_the_subject_and_the_log_still_verifies() {
    let store = Arc::new(MemoryStore::new());
    let signer = CheckpointSigner::generate();
    let trusted = signer.public_key();
    let (agent, log) = sent_campaign(&store, signer).await;
    let shared: Arc<dyn Store> = store.clone();
    let rights = SubjectRights::new(Arc::clone(&shared)).with_audit_trail(log.clone());
    let who = ContactId::new("crm-2-zq");
    let before = shared
        .job_counts(&agent.inner_campaigns().await)
        .await
        .unwrap();

    let (_, export) = rights
        .access(&who, Jurisdiction::Gdpr, agent.now())
        .await
        .unwrap();
    let exported = serde_json::to_string(&export).unwrap();
    for needle in ["crm-2-zq", "Hallstatt-2-attr", "crm2@example.com"] {
        assert!(exported.contains(needle), "the export has {needle}");
    }
    assert_eq!(export.jobs.len(), 1);
    assert_eq!(export.experiment_assignments.len(), 1);
    assert!(!export.audit.is_empty() && !export.events.is_empty());

    let erased = rights
        .erase(&who, Jurisdiction::Gdpr, agent.now())
        .await
        .unwrap();
    assert_eq!(erased.counts.contacts, 1);
    assert!(erased.request.contact.is_none());

    // Everything the store holds, through every read it offers.
    let mut dump = Vec::new();
    dump.push(serde_json::to_value(shared.contacts().await.unwrap()).unwrap());
    dump.push(
        serde_json::to_value(
            shared
                .consents_for_purpose(&Purpose::marketing())
                .await
                .unwrap(),
        )
        .unwrap(),
    );
    for c in shared.campaigns().await.unwrap() {
        dump.push(serde_json::to_value(shared.jobs(&c.id).await.unwrap()).unwrap());
        dump.push(serde_json::to_value(shared.campaign_events(&c.id).await.unwrap()).unwrap());
        dump.push(serde_json::to_value(&c).unwrap());
    }
    dump.push(serde_json::to_value(shared.subject_requests().await.unwrap()).unwrap());
    dump.push(serde_json::to_value(all_entries(&store).await).unwrap());
    let text = serde_json::to_string(&dump).unwrap();
    for needle in [
        "crm-2-zq",
        "Hallstatt-2-attr",
        "crm2@example.com",
        &(PEER + 2).to_string(),
    ] {
        assert!(!text.contains(needle), "{needle} survived the erasure");
    }
    assert!(text.contains("crm-1-zq"), "other people are untouched");
    assert!(
        shared
            .contact_by_peer(&TelegramPeer::user(PEER + 2))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        shared
            .job_counts(&agent.inner_campaigns().await)
            .await
            .unwrap(),
        before,
        "campaign aggregates are unchanged"
    );
    let report = log.verify(&[trusted]).await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    let subject = erased.request.subject.clone();
    let about: Vec<_> = shared.audit_entries_for(&subject).await.unwrap();
    assert!(
        about
            .iter()
            .any(|e| e.detail["kind"] == "erasure" && e.detail["state"] == "completed"),
        "the erasure itself is on the record, under the pseudonym"
    );
}

#[tokio::test]
async fn an_objection_withdraws_every_marketing_purpose_and_cancels_queued_jobs() {
    let store = Arc::new(MemoryStore::new());
    let shared: Arc<dyn Store> = store.clone();
    let agent = Agent::builder(TemplateProvider::new(), Accept(AtomicI64::new(0)))
        .shared_store(Arc::clone(&shared))
        .permissive_policies()
        .build()
        .unwrap();
    let now = agent.now();
    agent.import_contacts(&people(now)).await.unwrap();
    let ev = Evidence::new("telegram_start", "update=1");
    let earlier = now - SignedDuration::from_hours(1);
    agent
        .record_consent(&[
            ConsentRecord::grant("crm-0-zq", Purpose::marketing(), ev.clone(), "v1", earlier),
            ConsentRecord::grant("crm-0-zq", Purpose::new("newsletter"), ev, "v1", earlier),
        ])
        .await
        .unwrap();
    let mut spec = CampaignSpec::new("Later", "tea", "10% off");
    spec.audience = mia_core::Audience::Contacts(vec![ContactId::new("crm-0-zq")]);
    let campaign = agent.create_campaign(spec).await.unwrap();
    agent
        .schedule(&campaign.id, Some(now + SignedDuration::from_hours(5)))
        .await
        .unwrap();
    let rights = SubjectRights::new(Arc::clone(&shared));
    let objection = rights
        .object(&ContactId::new("crm-0-zq"), Jurisdiction::Ccpa, now)
        .await
        .unwrap();
    assert_eq!(
        objection.withdrawn,
        vec![Purpose::marketing(), Purpose::new("newsletter")]
    );
    assert_eq!(objection.cancelled_jobs, 1, "the queued job is cancelled");
    let history = shared
        .consent_history(&ContactId::new("crm-0-zq"))
        .await
        .unwrap();
    for purpose in [Purpose::marketing(), Purpose::new("newsletter")] {
        assert_eq!(
            mia_core::consent_state(&history, &purpose, now + SignedDuration::from_secs(1)),
            mia_core::ConsentState::Withdrawn
        );
    }
    assert!(
        history
            .iter()
            .any(|r| r.evidence.method == OBJECTION_METHOD)
    );
    assert_eq!(
        objection.request.due_at,
        mia_safety::compliance::deadline(Jurisdiction::Ccpa, now)
    );
}

#[tokio::test]
async fn the_purge_job_enforces_retention_and_reports_what_it_removed() {
    use mia_core::{Campaign, CampaignId, EventId, EventKind, IdempotencyKey, JobUpdate, NewJob};
    use mia_safety::compliance::{RetentionPolicy, purge};

    let store = Arc::new(MemoryStore::new());
    let shared: Arc<dyn Store> = store.clone();
    let t0 = Timestamp::from_second(1_700_000_000).unwrap();
    let day = SignedDuration::from_hours(24);
    let now = t0 + day * 800;
    let contact = |id: &str, peer: i64, at: Timestamp| {
        Contact::new(id, TelegramPeer::user(peer), "UTC", at).unwrap()
    };
    shared
        .upsert_contacts(&[
            contact("old-silent", 1, t0),
            contact("old-consented", 2, t0),
            contact("recent", 3, now - day),
        ])
        .await
        .unwrap();
    let ev = Evidence::new("telegram_start", "update=1");
    shared
        .append_consent(&[ConsentRecord::grant(
            "old-consented",
            Purpose::marketing(),
            ev,
            "v1",
            t0,
        )])
        .await
        .unwrap();
    let mut campaign = Campaign::draft(CampaignId::new("k"), CampaignSpec::new("n", "p", "o"), t0);
    shared.insert_campaign(&campaign).await.unwrap();
    for s in [
        CampaignState::Generating,
        CampaignState::InReview,
        CampaignState::Approved,
        CampaignState::Scheduled,
        CampaignState::Running,
    ] {
        campaign.transition(s, t0).unwrap();
    }
    let who = ContactId::new("old-consented");
    let key = IdempotencyKey::for_job(&campaign.id, &who, 0);
    let new_job = NewJob {
        key: key.clone(),
        contact: who.clone(),
        purpose: Purpose::marketing(),
        step: 0,
        due_at: t0,
        skipped: None,
    };
    shared.schedule(&campaign, &[new_job]).await.unwrap();
    let job = shared.claim("w", t0, day, 1).await.unwrap().remove(0);
    shared
        .update_job(
            &key,
            job.claim_token,
            &JobUpdate::Sent { message_id: 1 },
            t0 + day,
        )
        .await
        .unwrap();
    campaign
        .transition(CampaignState::Completed, t0 + day)
        .unwrap();
    shared.update_campaign(&campaign).await.unwrap();
    shared
        .append_events(&[mia_core::Event {
            id: EventId::new("old"),
            at: t0 + day,
            contact: who.clone(),
            campaign: Some(campaign.id.clone()),
            variant: None,
            step: None,
            kind: EventKind::Sent,
        }])
        .await
        .unwrap();

    let report = purge(&shared, None, &RetentionPolicy::default(), now)
        .await
        .unwrap();
    assert_eq!(
        (report.events, report.jobs, report.contacts),
        (1, 1, 1),
        "{report:?}"
    );
    assert!(
        shared
            .contact(&ContactId::new("old-silent"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        shared.contact(&who).await.unwrap().is_some(),
        "valid consent keeps a contact"
    );
    assert!(
        shared
            .contact(&ContactId::new("recent"))
            .await
            .unwrap()
            .is_some()
    );
    let retention: Vec<_> = all_entries(&store)
        .await
        .into_iter()
        .filter(|e| e.action == AuditAction::Retention)
        .collect();
    assert_eq!(
        retention.len(),
        2,
        "one per erased contact and one for the purge"
    );
    assert_eq!(retention[1].detail["removed"]["jobs"], 1);
    assert!(
        !serde_json::to_string(&retention)
            .unwrap()
            .contains("old-silent")
    );
    let again = purge(&shared, None, &RetentionPolicy::default(), now)
        .await
        .unwrap();
    assert_eq!(
        (again.events, again.jobs, again.contacts),
        (0, 0, 0),
        "nothing left to do"
    );
}
