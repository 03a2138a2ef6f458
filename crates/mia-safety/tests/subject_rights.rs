//! Rectification and restriction of processing, end to end with an agent on the memory store:
//! each is a tracked request with its deadline, logged without personal data; a restricted
//! contact gets no campaign message until the restriction is lifted, queued jobs included.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use jiff::SignedDuration;
use mia_core::{
    Agent, Audience, AuditAction, AuditStore, CampaignId, CampaignSpec, ConsentRecord, Contact,
    ContactId, Evidence, JobState, Jurisdiction, MemoryStore, OutboundMessage, Purpose,
    RequestKind, RequestState, Result, SendOutcome, Store, TelegramPeer, TemplateProvider,
    Transport,
};
use mia_safety::compliance::{
    MarketingRestrictions, RESTRICTION_METHOD, RESTRICTION_PURPOSE, Rectification, SubjectRights,
    deadline,
};
use serde_json::json;

/// Accepts every message and remembers who got one.
#[derive(Default)]
struct Recorder(Mutex<Vec<ContactId>>);

#[async_trait]
impl Transport for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }
    async fn send(&self, message: &OutboundMessage) -> Result<SendOutcome> {
        let mut sent = self.0.lock().unwrap();
        sent.push(message.contact.clone());
        Ok(SendOutcome::Sent {
            message_id: i64::try_from(sent.len()).unwrap(),
            duplicate: false,
        })
    }
}

impl Recorder {
    fn count(&self, who: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.as_str() == who)
            .count()
    }
}

fn people(now: jiff::Timestamp) -> Vec<Contact> {
    (0..3)
        .map(|i| {
            Contact::new(format!("p{i}"), TelegramPeer::user(500 + i), "UTC", now)
                .unwrap()
                .with_attribute("city", json!("Graz"))
        })
        .collect()
}

/// An agent whose send policy is [`MarketingRestrictions`], with three consenting people.
async fn agent() -> (Agent, Arc<Recorder>, Arc<dyn Store>) {
    agent_with(true).await
}

/// The same agent, with or without [`MarketingRestrictions`] (the built-in consent rule alone).
async fn agent_with(rules: bool) -> (Agent, Arc<Recorder>, Arc<dyn Store>) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let sent = Arc::new(Recorder::default());
    let mut builder = Agent::builder(TemplateProvider::new(), Arc::clone(&sent))
        .shared_store(Arc::clone(&store))
        .permissive_policies();
    if rules {
        builder = builder.send_policy(MarketingRestrictions::new());
    }
    let agent = builder.build().unwrap();
    let now = agent.now();
    agent.import_contacts(&people(now)).await.unwrap();
    let grants: Vec<ConsentRecord> = (0..3)
        .map(|i| {
            ConsentRecord::grant(
                format!("p{i}"),
                Purpose::marketing(),
                Evidence::new("telegram_start", format!("update={i}")),
                "v1",
                now - SignedDuration::from_hours(1),
            )
        })
        .collect();
    agent.record_consent(&grants).await.unwrap();
    (agent, sent, store)
}

async fn campaign(
    agent: &Agent,
    name: &str,
    audience: &[&str],
    later: Option<SignedDuration>,
) -> CampaignId {
    let mut spec = CampaignSpec::new(name, "tea", "10% off");
    spec.audience = Audience::Contacts(audience.iter().map(|c| ContactId::new(*c)).collect());
    let campaign = agent.create_campaign(spec).await.unwrap();
    let at = later.map(|d| agent.now() + d);
    agent.schedule(&campaign.id, at).await.unwrap();
    agent.start(&campaign.id).await.unwrap();
    campaign.id
}

#[tokio::test]
async fn a_restricted_contact_gets_nothing_until_the_restriction_is_lifted() {
    let (agent, sent, store) = agent().await;
    let rights = SubjectRights::new(Arc::clone(&store));
    let p0 = ContactId::new("p0");
    let now = agent.now();

    // A campaign queued for later, then a restriction: the queued job is cancelled at once.
    let queued = campaign(
        &agent,
        "Queued",
        &["p0"],
        Some(SignedDuration::from_hours(5)),
    )
    .await;
    let restricted = rights.restrict(&p0, Jurisdiction::Gdpr, now).await.unwrap();
    assert!(restricted.restricted && restricted.changed);
    assert_eq!(restricted.cancelled_jobs, 1);
    assert_eq!(restricted.request.kind, RequestKind::Restriction);
    assert_eq!(restricted.request.state, RequestState::Completed);
    assert_eq!(restricted.request.due_at, deadline(Jurisdiction::Gdpr, now));
    let queued_jobs = store.contact_jobs(&p0).await.unwrap();
    assert_eq!(queued_jobs[0].campaign, queued);
    assert_eq!(queued_jobs[0].state, JobState::Cancelled);
    assert_eq!(queued_jobs[0].outcome.as_deref(), Some("restricted"));

    // A CRM sync replacing the contact does not lift it: it lives in the ledger.
    agent.import_contacts(&people(now)).await.unwrap();
    assert!(rights.is_restricted(&p0, now).await.unwrap());
    let again = rights.restrict(&p0, Jurisdiction::Gdpr, now).await.unwrap();
    assert!(!again.changed, "restricting twice changes nothing");

    // A new campaign while restricted: the send policy denies p0, the others get it.
    let during = campaign(&agent, "During", &["p0", "p1", "p2"], None).await;
    agent.run_until_idle().await.unwrap();
    assert_eq!(sent.count("p0"), 0, "a restricted contact gets nothing");
    assert_eq!(sent.count("p1"), 1);
    let job = store
        .job(&mia_core::IdempotencyKey::for_job(&during, &p0, 0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.state, JobState::Skipped);
    assert_eq!(job.outcome.as_deref(), Some("restricted"));

    // Consent itself was never touched, and the marker shows in an access export.
    let export = rights.export(&p0, now).await.unwrap();
    assert!(
        export
            .consents
            .iter()
            .any(|r| r.purpose.as_str() == RESTRICTION_PURPOSE
                && r.evidence.method == RESTRICTION_METHOD)
    );
    assert_eq!(
        mia_core::consent_state(&export.consents, &Purpose::marketing(), now),
        mia_core::ConsentState::Valid
    );

    // Lifted: the next campaign reaches p0 again.
    let later = agent.now();
    let lifted = rights
        .lift_restriction(&p0, Jurisdiction::Ccpa, later)
        .await
        .unwrap();
    assert!(!lifted.restricted && lifted.changed);
    assert_eq!(lifted.request.kind, RequestKind::LiftRestriction);
    assert_eq!(lifted.request.due_at, deadline(Jurisdiction::Ccpa, later));
    assert!(!rights.is_restricted(&p0, later).await.unwrap());
    campaign(&agent, "After", &["p0", "p1"], None).await;
    agent.run_until_idle().await.unwrap();
    assert_eq!(sent.count("p0"), 1, "sent again once lifted");

    // Every request and marker is in the audit log, under the pseudonym only.
    let entries = store.audit_entries(0, 100_000).await.unwrap();
    let kinds: Vec<&str> = entries
        .iter()
        .filter(|e| e.action == AuditAction::SubjectRequest)
        .filter_map(|e| e.detail["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"restriction") && kinds.contains(&"lift_restriction"));
    let markers = entries
        .iter()
        .filter(|e| {
            e.action == AuditAction::ConsentChange && e.detail["purpose"] == RESTRICTION_PURPOSE
        })
        .count();
    assert_eq!(markers, 2, "one marker entry to restrict, one to lift");
    let text = serde_json::to_string(&entries).unwrap();
    assert!(!text.contains("\"p0\""), "no raw contact id in the log");
}

#[tokio::test]
async fn the_built_in_consent_rule_holds_a_restriction_without_extra_policies() {
    let (agent, sent, store) = agent_with(false).await;
    let rights = SubjectRights::new(Arc::clone(&store));
    let p0 = ContactId::new("p0");
    rights
        .restrict(&p0, Jurisdiction::Gdpr, agent.now())
        .await
        .unwrap();
    let during = campaign(&agent, "During", &["p0", "p1"], None).await;
    agent.run_until_idle().await.unwrap();
    assert_eq!(sent.count("p0"), 0, "a restricted contact gets nothing");
    assert_eq!(sent.count("p1"), 1);
    let job = store
        .job(&mia_core::IdempotencyKey::for_job(&during, &p0, 0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.outcome.as_deref(), Some(mia_core::RESTRICTED_RULE));
    // Nobody can lift it by granting the marker's purpose.
    let forged = ConsentRecord::grant(
        "p0",
        Purpose::new(RESTRICTION_PURPOSE),
        Evidence::new("crm_import", "row 7"),
        "v1",
        agent.now(),
    );
    let err = agent.record_consent(&[forged]).await.unwrap_err();
    assert!(err.to_string().contains("reserved"), "{err}");
    rights
        .lift_restriction(&p0, Jurisdiction::Gdpr, agent.now())
        .await
        .unwrap();
    campaign(&agent, "After", &["p0"], None).await;
    agent.run_until_idle().await.unwrap();
    assert_eq!(sent.count("p0"), 1, "sent again once lifted");
}

#[tokio::test]
async fn an_objection_is_absolute_with_the_built_in_rule_alone() {
    let (agent, sent, store) = agent_with(false).await;
    let rights = SubjectRights::new(Arc::clone(&store));
    let p0 = ContactId::new("p0");
    let start = agent.now();
    rights
        .object(
            &p0,
            Jurisdiction::Gdpr,
            start - SignedDuration::from_secs(30),
        )
        .await
        .unwrap();
    // A later CRM import grants marketing again: it does not lift the objection.
    let later = start - SignedDuration::from_secs(20);
    let import = ConsentRecord::grant(
        "p0",
        Purpose::marketing(),
        Evidence::new("crm_import", "row 3"),
        "v1",
        later,
    );
    agent.record_consent(&[import]).await.unwrap();
    let campaign_id = campaign(&agent, "After import", &["p0", "p1"], None).await;
    agent.run_until_idle().await.unwrap();
    assert_eq!(sent.count("p0"), 0, "an objection is absolute");
    assert_eq!(sent.count("p1"), 1);
    let job = store
        .job(&mia_core::IdempotencyKey::for_job(&campaign_id, &p0, 0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.outcome.as_deref(), Some(mia_core::OBJECTION_RULE));
    // Opting in again themselves (`/start`) lifts it.
    let again = ConsentRecord::grant(
        "p0",
        Purpose::marketing(),
        Evidence::new("telegram_start", "update=77"),
        "v1",
        later + SignedDuration::from_secs(1),
    );
    agent.record_consent(&[again]).await.unwrap();
    campaign(&agent, "After opt-in", &["p0"], None).await;
    agent.run_until_idle().await.unwrap();
    assert_eq!(sent.count("p0"), 1);
}

#[tokio::test]
async fn the_retention_purge_keeps_a_restricted_contact() {
    let (agent, _, store) = agent_with(false).await;
    let rights = SubjectRights::new(Arc::clone(&store));
    let now = agent.now();
    // p0 and p1 both withdraw marketing; p0 also asks for a restriction instead of erasure.
    let withdrawals: Vec<ConsentRecord> = ["p0", "p1"]
        .iter()
        .map(|c| {
            ConsentRecord::withdraw(
                *c,
                Purpose::marketing(),
                Evidence::new("stop_keyword", "update=5"),
                now,
            )
        })
        .collect();
    agent.record_consent(&withdrawals).await.unwrap();
    rights
        .restrict(&ContactId::new("p0"), Jurisdiction::Gdpr, now)
        .await
        .unwrap();
    // Three years later both are inactive without consent; only p1 may be erased.
    let later = now + SignedDuration::from_hours(24 * 365 * 3);
    let report = mia_safety::compliance::purge(
        &store,
        None,
        &mia_safety::compliance::RetentionPolicy::default(),
        later,
    )
    .await
    .unwrap();
    assert_eq!(report.contacts, 1, "{report:?}");
    assert!(
        store
            .contact(&ContactId::new("p0"))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .contact(&ContactId::new("p1"))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn an_objection_leaves_the_restriction_markers_alone() {
    let (agent, _, store) = agent().await;
    let rights = SubjectRights::new(Arc::clone(&store));
    let p1 = ContactId::new("p1");
    let now = agent.now();
    rights.restrict(&p1, Jurisdiction::Gdpr, now).await.unwrap();
    let objection = rights.object(&p1, Jurisdiction::Gdpr, now).await.unwrap();
    assert_eq!(objection.withdrawn, vec![Purpose::marketing()]);
    assert!(rights.is_restricted(&p1, now).await.unwrap());
}

#[tokio::test]
async fn rectification_corrects_the_contact_and_logs_field_names_only() {
    let (agent, _, store) = agent().await;
    let rights = SubjectRights::new(Arc::clone(&store));
    let p2 = ContactId::new("p2");
    let now = agent.now();
    let fix = Rectification {
        locale: Some("de-AT".into()),
        time_zone: Some("Europe/Vienna".into()),
        attributes: BTreeMap::from([
            ("name".to_owned(), json!("Zoë Quellberg")),
            ("city".to_owned(), serde_json::Value::Null),
        ]),
    };
    let done = rights
        .rectify(&p2, &fix, Jurisdiction::Gdpr, now)
        .await
        .unwrap();
    assert_eq!(done.request.kind, RequestKind::Rectification);
    assert_eq!(done.request.state, RequestState::Completed);
    assert_eq!(
        done.changed,
        ["locale", "time_zone", "attributes.city", "attributes.name"]
    );
    let stored = store.contact(&p2).await.unwrap().unwrap();
    assert_eq!(stored.locale.as_deref(), Some("de-AT"));
    assert_eq!(stored.time_zone, "Europe/Vienna");
    assert_eq!(stored.attributes.get("name"), Some(&json!("Zoë Quellberg")));
    assert!(!stored.attributes.contains_key("city"));
    assert_eq!(
        stored.peer,
        TelegramPeer::user(502),
        "the peer is untouched"
    );

    let entries = store.audit_entries(0, 100_000).await.unwrap();
    let last = entries.last().unwrap();
    assert_eq!(last.detail["kind"], "rectification");
    assert_eq!(last.detail["fields"][3], "attributes.name");
    let text = serde_json::to_string(&entries).unwrap();
    assert!(!text.contains("Quellberg"), "values never reach the log");

    // Bad input is refused before anything is recorded.
    let requests = store.subject_requests().await.unwrap().len();
    let bad_zone = Rectification {
        time_zone: Some("Mars/Olympus".into()),
        ..Rectification::default()
    };
    let err = rights
        .rectify(&p2, &bad_zone, Jurisdiction::Gdpr, now)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Mars/Olympus"), "{err}");
    assert!(
        rights
            .rectify(&p2, &Rectification::default(), Jurisdiction::Gdpr, now)
            .await
            .is_err()
    );
    assert!(
        rights
            .rectify(&ContactId::new("nobody"), &fix, Jurisdiction::Gdpr, now)
            .await
            .is_err()
    );
    assert_eq!(store.subject_requests().await.unwrap().len(), requests);

    // The same correction again: recorded, nothing changed.
    let same = rights
        .rectify(&p2, &fix, Jurisdiction::Gdpr, now)
        .await
        .unwrap();
    assert!(same.changed.is_empty());
}

/// Withdraws consent from inside the transport's send, the moment a message is in flight: of
/// `target`, or (when `None`) of the person being sent to.
struct WithdrawDuringSend {
    store: Arc<dyn Store>,
    target: Option<ContactId>,
    sent: Mutex<Vec<ContactId>>,
}

#[async_trait]
impl Transport for WithdrawDuringSend {
    fn name(&self) -> &str {
        "withdraw-during-send"
    }
    async fn send(&self, message: &OutboundMessage) -> Result<SendOutcome> {
        let first = {
            let mut sent = self.sent.lock().unwrap();
            sent.push(message.contact.clone());
            sent.len() == 1
        };
        if first {
            let who = self
                .target
                .clone()
                .unwrap_or_else(|| message.contact.clone());
            let stop = ConsentRecord::withdraw(
                who,
                Purpose::marketing(),
                Evidence::new("stop_keyword", "update=99"),
                jiff::Timestamp::now(),
            );
            self.store.withdraw_consent(&stop).await?;
        }
        let n = self.sent.lock().unwrap().len();
        Ok(SendOutcome::Sent {
            message_id: i64::try_from(n).unwrap(),
            duplicate: false,
        })
    }
}

async fn racing(target: Option<&str>) -> (Agent, Arc<WithdrawDuringSend>, Arc<dyn Store>) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let transport = Arc::new(WithdrawDuringSend {
        store: Arc::clone(&store),
        target: target.map(ContactId::new),
        sent: Mutex::new(Vec::new()),
    });
    let agent = Agent::builder(TemplateProvider::new(), Arc::clone(&transport))
        .shared_store(Arc::clone(&store))
        .permissive_policies()
        .build()
        .unwrap();
    let now = agent.now();
    agent.import_contacts(&people(now)).await.unwrap();
    let grants: Vec<ConsentRecord> = (0..3)
        .map(|i| {
            ConsentRecord::grant(
                format!("p{i}"),
                Purpose::marketing(),
                Evidence::new("telegram_start", format!("update={i}")),
                "v1",
                now - SignedDuration::from_hours(1),
            )
        })
        .collect();
    agent.record_consent(&grants).await.unwrap();
    (agent, transport, store)
}

#[tokio::test]
async fn a_withdrawal_racing_a_claimed_job_means_it_is_never_sent() {
    // The worker claims all three jobs in one batch; while the first one is in flight, p-other
    // withdraws. Whichever of the other two that is, it never gets the message.
    for victim in ["p0", "p1", "p2"] {
        let (agent, transport, store) = racing(Some(victim)).await;
        let id = campaign(&agent, "Race", &["p0", "p1", "p2"], None).await;
        agent.run_until_idle().await.unwrap();
        let sent = transport.sent.lock().unwrap().clone();
        let first = sent[0].clone();
        let job = store
            .job(&mia_core::IdempotencyKey::for_job(
                &id,
                &ContactId::new(victim),
                0,
            ))
            .await
            .unwrap()
            .unwrap();
        if first.as_str() == victim {
            continue; // the in-flight case, below
        }
        assert!(
            !sent.iter().any(|c| c.as_str() == victim),
            "{victim} withdrew before their send: {sent:?}"
        );
        assert_eq!(job.state, JobState::Cancelled, "{victim}");
        assert_eq!(sent.len(), 2, "the other two were sent: {sent:?}");
    }
}

/// The race: "the send either completed before the withdrawal or never happens".
#[tokio::test]
async fn a_withdrawal_during_the_send_itself_stops_everything_after_it() {
    let (agent, transport, store) = racing(None).await;
    let id = campaign(&agent, "Race", &["p0", "p1", "p2"], None).await;
    agent.run_until_idle().await.unwrap();
    let first = transport.sent.lock().unwrap()[0].clone();
    let job = store
        .job(&mia_core::IdempotencyKey::for_job(&id, &first, 0))
        .await
        .unwrap()
        .unwrap();
    // The message was handed to Telegram before the withdrawal: the record says it was sent.
    assert_eq!(job.state, JobState::Sent, "{:?}", job.outcome);
    // The message in flight went out once; nothing after the withdrawal reaches them.
    campaign(&agent, "Next", &["p0", "p1", "p2"], None).await;
    agent.run_until_idle().await.unwrap();
    let sent = transport.sent.lock().unwrap().clone();
    assert_eq!(sent.iter().filter(|c| **c == first).count(), 1, "{sent:?}");
    assert_eq!(sent.len(), 5, "the others got both: {sent:?}");
}
