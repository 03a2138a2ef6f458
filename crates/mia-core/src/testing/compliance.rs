//! Conformance checks of the compliance seams: the audit log's rows and chain, data subject
//! requests, erasure and retention.

use jiff::SignedDuration;

use super::{contact, job, running_campaign, t};
use crate::{
    AuditAction, AuditCheckpoint, AuditDraft, AuditEntry, AuditHash, CampaignId, CampaignState,
    ConsentRecord, ContactId, Event, EventId, EventKind, Evidence, IdempotencyKey, JobState,
    JobUpdate, Jurisdiction, Purpose, RequestKind, RequestState, Store, SubjectKey, SubjectRequest,
};

fn draft(i: u64, subject: Option<&str>) -> AuditDraft {
    AuditDraft {
        at: t(i64::try_from(i).unwrap()),
        actor: format!("worker:w{}", i % 3),
        action: AuditAction::PolicyDecision,
        subject: subject.map(str::to_owned),
        detail: serde_json::json!({
            "job": format!("job-{i}"),
            "decision": {"decision": "allow"},
            "trace": [{"rule": "consent", "detail": "granted \u{2713} v2"}],
            "propensity": 0.25,
            "n": i,
        }),
    }
}

/// Checks that `entries` are one unbroken chain starting at entry 1.
fn assert_one_chain(entries: &[AuditEntry]) {
    let mut prev = AuditHash::ZERO;
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1, "sequence numbers have no gaps");
        assert_eq!(e.prev_hash, prev, "entry {} links to the one before", e.seq);
        assert_eq!(e.hash, e.expected_hash(), "entry {} is sealed", e.seq);
        prev = e.hash;
    }
}

pub(super) async fn audit_log<S: Store + ?Sized>(store: &S) {
    assert!(store.audit_entries(0, 10).await.unwrap().is_empty());
    assert!(store.audit_checkpoints().await.unwrap().is_empty());
    let written = store
        .append_audit(vec![
            draft(1, Some("sub_a")),
            draft(2, None),
            draft(3, Some("sub_b")),
        ])
        .await
        .unwrap();
    assert_eq!(written.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(written[0].prev_hash, AuditHash::ZERO);
    let read = store.audit_entries(0, 100).await.unwrap();
    assert_eq!(read, written, "entries read back exactly as sealed");
    assert!(store.append_audit(Vec::new()).await.unwrap().is_empty());
    let more = store
        .append_audit(vec![draft(4, Some("sub_a")), draft(5, None)])
        .await
        .unwrap();
    assert_eq!(more[0].seq, 4);
    assert_eq!(
        more[0].prev_hash, written[2].hash,
        "appends continue the chain"
    );
    let page = store.audit_entries(2, 2).await.unwrap();
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 4]);
    let about_a = store.audit_entries_for("sub_a").await.unwrap();
    assert_eq!(about_a.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 4]);

    // Appends racing on several connections still make one chain.
    let batch = |k: u64| {
        (0..5)
            .map(move |i| draft(100 + k * 10 + i, Some("sub_c")))
            .collect::<Vec<_>>()
    };
    let (a, b, c, d) = (batch(1), batch(2), batch(3), batch(4));
    let (ra, rb, rc, rd) = tokio::join!(
        store.append_audit(a),
        store.append_audit(b),
        store.append_audit(c),
        store.append_audit(d)
    );
    for r in [ra, rb, rc, rd] {
        let r = r.unwrap();
        assert_eq!(r.len(), 5);
        assert!(
            r.windows(2).all(|w| w[1].seq == w[0].seq + 1),
            "a batch stays together"
        );
    }
    let all = store.audit_entries(0, 1000).await.unwrap();
    assert_eq!(all.len(), 25);
    assert_one_chain(&all);

    let cp = |size: u64, at: i64| AuditCheckpoint {
        size,
        root: all[usize::try_from(size).unwrap() - 1].hash,
        at: t(at),
        key_id: "ab".repeat(32),
        signature: "cd".repeat(64),
    };
    store.append_checkpoint(&cp(5, 10)).await.unwrap();
    store.append_checkpoint(&cp(25, 20)).await.unwrap();
    assert_eq!(
        store.audit_checkpoints().await.unwrap(),
        vec![cp(5, 10), cp(25, 20)],
        "checkpoints read back in order"
    );

    let first = SubjectKey::from_bytes([1; 32]);
    let kept = store.audit_key(&first).await.unwrap();
    assert_eq!(kept, first, "the first candidate is kept");
    let again = store
        .audit_key(&SubjectKey::from_bytes([2; 32]))
        .await
        .unwrap();
    assert_eq!(again, first, "the kept key never changes");
}

fn request(id: &str, contact: &str, kind: RequestKind, at: i64) -> SubjectRequest {
    SubjectRequest {
        id: id.into(),
        kind,
        jurisdiction: Jurisdiction::Gdpr,
        contact: Some(ContactId::new(contact)),
        subject: format!("sub_{contact}"),
        state: RequestState::Received,
        received_at: t(at),
        due_at: t(at + 30 * 86_400),
        completed_at: None,
        note: None,
    }
}

pub(super) async fn subject_requests<S: Store + ?Sized>(store: &S) {
    let a = request("dsr_a", "c1", RequestKind::Access, 1);
    let b = request("dsr_b", "c2", RequestKind::Objection, 2);
    // Every kind is storable (Postgres checks the names).
    let lift = request("dsr_l", "c2", RequestKind::LiftRestriction, 3);
    store.save_request(&a).await.unwrap();
    store.save_request(&b).await.unwrap();
    store.save_request(&lift).await.unwrap();
    let done = SubjectRequest {
        state: RequestState::Completed,
        completed_at: Some(t(5)),
        note: Some("exported".into()),
        ..a.clone()
    };
    store.save_request(&done).await.unwrap();
    assert_eq!(
        store.subject_request("dsr_a").await.unwrap(),
        Some(done.clone())
    );
    assert_eq!(
        store.subject_requests().await.unwrap(),
        vec![done, b, lift],
        "requests keep their first order; saving again replaces"
    );
    assert!(store.subject_request("nope").await.unwrap().is_none());
    let jobs = store.contact_jobs(&ContactId::new("c1")).await.unwrap();
    assert!(
        jobs.len() >= 2 && jobs.iter().all(|j| j.contact.as_str() == "c1"),
        "a contact's jobs across campaigns"
    );
    assert!(
        jobs.windows(2).all(|w| w[0].key < w[1].key),
        "ordered by key"
    );
}

/// `restrict_subject`: the marker joins the ledger and every open job of the contact is
/// cancelled in the same step, whatever its purpose; other contacts' jobs stay queued.
async fn restriction<S: Store + ?Sized>(store: &S) {
    store
        .upsert_contacts(&[contact(31), contact(32)])
        .await
        .unwrap();
    let mut campaign = running_campaign("k-restrict");
    campaign.state = CampaignState::Draft;
    store.insert_campaign(&campaign).await.unwrap();
    campaign.state = CampaignState::Running;
    let far = 10_000_000;
    let mut newsletter = job("k-restrict", "c31", far);
    newsletter.key = IdempotencyKey::for_job(&campaign.id, &ContactId::new("c31"), 1);
    newsletter.purpose = Purpose::new("newsletter");
    newsletter.step = 1;
    store
        .schedule(
            &campaign,
            &[
                job("k-restrict", "c31", far),
                newsletter,
                job("k-restrict", "c32", far),
            ],
        )
        .await
        .unwrap();
    let marker = ConsentRecord::withdraw(
        "c31",
        Purpose::new("processing_restriction"),
        Evidence::new("dsr_restriction", "dsr_31"),
        t(50),
    );
    let grant = ConsentRecord::grant(
        "c31",
        Purpose::marketing(),
        Evidence::new("telegram_start", "update=31"),
        "v3",
        t(40),
    );
    store
        .append_consent(std::slice::from_ref(&grant))
        .await
        .unwrap();
    let cancelled = store.restrict_subject(&marker).await.unwrap();
    assert_eq!(cancelled, 2, "both open jobs of the contact, any purpose");
    let history = store.consent_history(&ContactId::new("c31")).await.unwrap();
    assert_eq!(
        history,
        vec![grant, marker.clone()],
        "the marker is appended; the history before it is never overwritten"
    );
    for j in store.contact_jobs(&ContactId::new("c31")).await.unwrap() {
        assert_eq!(j.state, JobState::Cancelled, "{}", j.key);
        assert_eq!(j.outcome.as_deref(), Some("restricted"));
    }
    let other = store.contact_jobs(&ContactId::new("c32")).await.unwrap();
    assert_eq!(other.len(), 1);
    assert_eq!(
        other[0].state,
        JobState::Pending,
        "other contacts keep theirs"
    );
    assert_eq!(
        store.restrict_subject(&marker).await.unwrap(),
        0,
        "nothing left to cancel"
    );
}

/// Claims for `worker` the one job due first at `now` (the caller makes it `contact`'s) and
/// records its attempt: its send is in flight.
async fn in_flight_at<S: Store + ?Sized>(
    store: &S,
    worker: &str,
    now: i64,
    contact: &str,
) -> crate::Job {
    let claimed = store
        .claim(worker, t(now), SignedDuration::from_secs(30), 1)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].contact.as_str(), contact);
    let job = claimed[0].clone();
    store
        .record_attempt(
            &job.key,
            job.claim_token,
            &crate::VariantId::new("A"),
            1.0,
            t(now + 1),
        )
        .await
        .unwrap();
    job
}

/// A withdrawal racing a send: a job already handed to the transport (claimed, attempt
/// recorded) is left to its worker, which records it as sent; the contact's queued job is
/// cancelled. So a send either began before the withdrawal or never happens, and the record
/// says which.
async fn withdrawal_racing_a_send<S: Store + ?Sized>(store: &S) {
    store.upsert_contacts(&[contact(33)]).await.unwrap();
    let mut campaign = running_campaign("k-race");
    campaign.state = CampaignState::Draft;
    store.insert_campaign(&campaign).await.unwrap();
    campaign.state = CampaignState::Running;
    // Due before anything else in the store, so the claim below takes exactly this one.
    let now = -1_000;
    let mut later = job("k-race", "c33", 10_000_000);
    later.key = IdempotencyKey::for_job(&campaign.id, &ContactId::new("c33"), 1);
    later.step = 1;
    store
        .schedule(&campaign, &[job("k-race", "c33", now), later.clone()])
        .await
        .unwrap();
    let flying = in_flight_at(store, "w-race", now, "c33").await;
    let token = flying.claim_token;
    let stop = ConsentRecord::withdraw(
        "c33",
        Purpose::marketing(),
        Evidence::new("stop_keyword", "update=33"),
        t(now + 2),
    );
    assert_eq!(
        store.withdraw_consent(&stop).await.unwrap(),
        1,
        "the queued step is cancelled, the send in flight is not"
    );
    assert_eq!(
        store.job(&later.key).await.unwrap().unwrap().state,
        JobState::Cancelled
    );
    store
        .update_job(
            &flying.key,
            token,
            &JobUpdate::Sent { message_id: 3_300 },
            t(now + 3),
        )
        .await
        .unwrap();
    let sent = store.job(&flying.key).await.unwrap().unwrap();
    assert_eq!(
        sent.state,
        JobState::Sent,
        "the record says what Telegram got"
    );
    assert_eq!(sent.message_id, Some(3_300));
}

pub(super) async fn erasure<S: Store + ?Sized>(store: &S) {
    restriction(store).await;
    withdrawal_racing_a_send(store).await;
    let gone = contact(7);
    store
        .upsert_contacts(std::slice::from_ref(&gone))
        .await
        .unwrap();
    let ev = Evidence::new("web_form", "form=signup-7 email=c7@example.com");
    store
        .append_consent(&[ConsentRecord::grant(
            "c7",
            Purpose::marketing(),
            ev,
            "v2",
            t(1),
        )])
        .await
        .unwrap();
    let mut campaign = running_campaign("k7");
    campaign.state = CampaignState::Draft;
    store.insert_campaign(&campaign).await.unwrap();
    campaign.state = CampaignState::Running;
    // Due before anything else in the store (as in the race above), so the claim below takes
    // exactly c7's first job, whose send is then in flight; c7's second job stays queued.
    let now = -2_000;
    let mut queued = job("k7", "c7", 10_000_000);
    queued.key = IdempotencyKey::for_job(&campaign.id, &ContactId::new("c7"), 1);
    queued.step = 1;
    store
        .schedule(
            &campaign,
            &[job("k7", "c7", now), queued.clone(), job("k7", "c1", 0)],
        )
        .await
        .unwrap();
    let in_flight = in_flight_at(store, "w-erase", now, "c7").await;
    // A job of c7's in another campaign, claimed and being decided on (not yet sent).
    let mut other = running_campaign("k7b");
    other.state = CampaignState::Draft;
    store.insert_campaign(&other).await.unwrap();
    other.state = CampaignState::Running;
    store
        .schedule(&other, &[job("k7b", "c7", now + 1)])
        .await
        .unwrap();
    let deciding = store
        .claim("w-erase-2", t(now + 1), SignedDuration::from_secs(30), 1)
        .await
        .unwrap();
    assert_eq!(deciding.len(), 1);
    let deciding = deciding[0].clone();
    assert_eq!(deciding.campaign, other.id);
    let event = Event {
        id: EventId::new("e-c7"),
        at: t(3),
        contact: ContactId::new("c7"),
        campaign: Some(campaign.id.clone()),
        variant: None,
        step: None,
        kind: EventKind::Sent,
    };
    store
        .append_events(std::slice::from_ref(&event))
        .await
        .unwrap();
    store
        .save_request(&request("dsr_c7", "c7", RequestKind::Erasure, 4))
        .await
        .unwrap();
    let before = store.job_counts(&campaign.id).await.unwrap();

    let c7 = ContactId::new("c7");
    let anon = ContactId::new("erased:dsr_c7");
    let counts = store.erase_subject(&c7, &anon).await.unwrap();
    assert_eq!(
        (
            counts.contacts,
            counts.consents,
            counts.jobs,
            counts.cancelled,
            counts.events,
            counts.requests
        ),
        (1, 1, 3, 2, 1, 1),
        "the queued job and the one being decided on are cancelled, the send in flight is not"
    );
    assert!(store.contact(&c7).await.unwrap().is_none());
    assert!(
        store.contact_by_peer(&gone.peer).await.unwrap().is_none(),
        "the peer mapping goes with the contact"
    );
    assert!(store.consent_history(&c7).await.unwrap().is_empty());
    assert!(store.contact_jobs(&c7).await.unwrap().is_empty());
    assert!(store.contact_events(&c7).await.unwrap().is_empty());
    let kept = store.consent_history(&anon).await.unwrap();
    assert_eq!(
        kept.len(),
        1,
        "the ledger keeps the record, without the person"
    );
    assert_eq!(kept[0].evidence.method, "web_form");
    assert_eq!(
        kept[0].evidence.reference, "",
        "the evidence reference is blanked"
    );
    let mut after = before;
    after.pending -= 1;
    after.cancelled += 1;
    assert_eq!(
        store.job_counts(&campaign.id).await.unwrap(),
        after,
        "aggregates stay as they were, but for the queued job, now cancelled"
    );
    let erased = store.job(&queued.key).await.unwrap().unwrap();
    assert_eq!(
        (
            erased.state,
            erased.outcome.as_deref(),
            erased.contact.as_str()
        ),
        (JobState::Cancelled, Some("erased"), anon.as_str()),
        "nobody is sent to once erased"
    );
    let flying = store.job(&in_flight.key).await.unwrap().unwrap();
    assert_eq!(
        (flying.state, flying.contact.as_str()),
        (JobState::Claimed, anon.as_str()),
        "a send already with the transport is left to its worker"
    );
    // The workers record their results' events under the contact id they claimed the jobs
    // with, the erased one, before writing the results. The replacement has one of those ids
    // already (as when another worker took the send over and recorded it again).
    let result = |job: &crate::Job, kind: EventKind, at: i64| Event {
        id: EventId::derived(job.key.as_str(), kind.name()),
        at: t(at),
        contact: c7.clone(),
        campaign: Some(job.campaign.clone()),
        variant: None,
        step: Some(0),
        kind,
    };
    // (Later than the retention check's cut-off, as its count expects.)
    let sent = result(&in_flight, EventKind::Sent, 10);
    let skipped = result(
        &deciding,
        EventKind::Skipped {
            rule: "quiet_hours".into(),
        },
        10,
    );
    let taken_over = Event {
        contact: anon.clone(),
        at: t(9),
        ..sent.clone()
    };
    store
        .append_events(&[sent.clone(), skipped.clone(), taken_over])
        .await
        .unwrap();
    store
        .update_job(
            &in_flight.key,
            in_flight.claim_token,
            &JobUpdate::Sent { message_id: 700 },
            t(now + 3),
        )
        .await
        .unwrap();
    let update = JobUpdate::Skipped {
        rule: "quiet_hours".into(),
    };
    assert_eq!(
        store
            .update_jobs(&[(&deciding, update)], t(now + 3))
            .await
            .unwrap(),
        std::slice::from_ref(&deciding.key),
        "the erasure cancelled the job being decided on"
    );
    assert!(
        store.contact_events(&c7).await.unwrap().is_empty(),
        "the results of the send in flight and of the cancelled job go to the replacement"
    );
    let mut kept = store.contact_events(&anon).await.unwrap();
    kept.sort_by(|a, b| a.id.cmp(&b.id));
    let mut want = [event.clone(), sent, skipped].map(|e| Event {
        contact: anon.clone(),
        ..e
    });
    want.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(kept, want, "one event an id, the erased contact's");
    let req = store.subject_request("dsr_c7").await.unwrap().unwrap();
    assert_eq!(req.contact, None);
    assert_eq!(req.subject, "sub_c7", "the pseudonym outlives the erasure");
    assert_eq!(
        store.erase_subject(&c7, &anon).await.unwrap(),
        crate::ErasureCounts::default(),
        "erasing twice changes nothing"
    );
    // An event of the contact's comes again (with the same id: ids are unique per contact) and
    // is erased under the same replacement: the replacement keeps one event of that id, the
    // one just erased.
    let again = Event { at: t(9), ..event };
    assert_eq!(
        store
            .append_events(std::slice::from_ref(&again))
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.erase_subject(&c7, &anon).await.unwrap().events, 1);
    let kept: Vec<Event> = store
        .contact_events(&anon)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.id == again.id)
        .collect();
    assert_eq!(
        kept,
        [Event {
            contact: anon.clone(),
            ..again
        }]
    );
    assert!(
        store
            .contact(&ContactId::new("c1"))
            .await
            .unwrap()
            .is_some(),
        "other contacts are untouched"
    );
}

pub(super) async fn retention<S: Store + ?Sized>(store: &S) {
    // k2 is running, k3 has cancelled jobs but is still running; k8 completes.
    let mut done = running_campaign("k8");
    done.state = CampaignState::Draft;
    store.insert_campaign(&done).await.unwrap();
    done.state = CampaignState::Running;
    store
        .schedule(&done, &[job("k8", "c1", 0), job("k8", "c2", 0)])
        .await
        .unwrap();
    let claimed = store
        .claim("w", t(1_000), SignedDuration::from_secs(30), 100)
        .await
        .unwrap();
    let mine: Vec<_> = claimed.iter().filter(|j| j.campaign == done.id).collect();
    assert_eq!(mine.len(), 2);
    store
        .update_job(
            &mine[0].key,
            mine[0].claim_token,
            &JobUpdate::Sent { message_id: 900 },
            t(1_001),
        )
        .await
        .unwrap();
    store
        .update_job(
            &mine[1].key,
            mine[1].claim_token,
            &JobUpdate::Sent { message_id: 901 },
            t(5_000),
        )
        .await
        .unwrap();
    for other in claimed.iter().filter(|j| j.campaign != done.id) {
        let back = JobUpdate::Retry {
            due_at: t(1_000),
            count_attempt: false,
            reason: "test".into(),
        };
        store
            .update_job(&other.key, other.claim_token, &back, t(1_000))
            .await
            .unwrap();
    }
    assert_eq!(
        store.purge_jobs(t(2_000)).await.unwrap(),
        0,
        "jobs of a running campaign are kept"
    );
    done.transition(CampaignState::Completed, t(5_001)).unwrap();
    store.update_campaign(&done).await.unwrap();
    let open_elsewhere = store.job_counts(&CampaignId::new("k2")).await.unwrap();
    assert_eq!(
        store.purge_jobs(t(2_000)).await.unwrap(),
        1,
        "only the old one"
    );
    assert!(store.job(&mine[0].key).await.unwrap().is_none());
    assert!(store.job(&mine[1].key).await.unwrap().is_some());
    assert!(
        store
            .contact_jobs(&ContactId::new("c1"))
            .await
            .unwrap()
            .iter()
            .all(|j| j.key != mine[0].key)
    );
    assert_eq!(
        store.job_counts(&CampaignId::new("k2")).await.unwrap(),
        open_elsewhere
    );

    let before = store
        .contact_events(&ContactId::new("c1"))
        .await
        .unwrap()
        .len();
    assert!(before >= 3);
    // Events e1 (t 1), e2 and e3 (t 5) of the events check.
    assert_eq!(store.purge_events(t(2)).await.unwrap(), 1);
    assert_eq!(
        store
            .contact_events(&ContactId::new("c1"))
            .await
            .unwrap()
            .len(),
        before - 1
    );
    let again = Event {
        id: EventId::new("e1"),
        at: t(1),
        contact: ContactId::new("c1"),
        campaign: None,
        variant: None,
        step: None,
        kind: EventKind::Sent,
    };
    assert_eq!(
        store.append_events(&[again]).await.unwrap(),
        1,
        "a purged id may come back"
    );
}
