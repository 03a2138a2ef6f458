//! Test support that ships with the SDK: the store conformance suite.
//!
//! Every [`Store`] implementation, the real ones included, must pass
//! [`store_conformance`]. Call it from a test with a fresh, empty store:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! mia_core::testing::store_conformance(&mia_core::MemoryStore::new()).await;
//! # }
//! ```
//!
//! Every [`LlmProvider`](crate::LlmProvider) must pass [`provider_conformance`]: it answers the
//! agent's structured-output request for copy variants.
//!
//! The checks panic with a message naming the broken rule, like any assertion.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod compliance;
mod events;
mod llm;
mod outbox;

pub use llm::provider_conformance;

use jiff::{SignedDuration, Timestamp};

use crate::{
    Campaign, CampaignId, CampaignSpec, CampaignState, ConsentRecord, Contact, ContactId,
    DeadLetterAction, Error, Event, EventId, EventKind, Evidence, IdempotencyKey, Job, JobState,
    JobUpdate, NewJob, Purpose, ReviewId, ReviewItem, ReviewState, ReviewSubject, Store,
    TelegramPeer, VariantId,
};

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

fn contact(i: i64) -> Contact {
    Contact::new(
        format!("c{i}"),
        TelegramPeer::user(1000 + i),
        "Europe/Berlin",
        t(0),
    )
    .unwrap()
    .with_locale("de-DE")
    .with_attribute("plan", serde_json::json!("pro"))
}

fn running_campaign(id: &str) -> Campaign {
    let mut c = Campaign::draft(CampaignId::new(id), CampaignSpec::new("n", "p", "o"), t(0));
    for s in [
        CampaignState::Generating,
        CampaignState::InReview,
        CampaignState::Approved,
        CampaignState::Scheduled,
        CampaignState::Running,
    ] {
        c.transition(s, t(0)).unwrap();
    }
    c
}

fn job(campaign: &str, contact: &str, due: i64) -> NewJob {
    NewJob {
        key: IdempotencyKey::for_job(&CampaignId::new(campaign), &ContactId::new(contact), 0),
        contact: ContactId::new(contact),
        purpose: Purpose::marketing(),
        step: 0,
        due_at: t(due),
        skipped: None,
    }
}

/// Runs every conformance check against `store`, which must start empty.
pub async fn store_conformance<S: Store + ?Sized>(store: &S) {
    contacts(store).await;
    consent_ledger(store).await;
    campaigns(store).await;
    outbox(store).await;
    withdrawal_cancels_jobs(store).await;
    enqueue_adds_later_steps(store).await;
    events(store).await;
    reviews(store).await;
    send_reviews(store).await;
    claim_order_and_rejections(store).await;
    daily_caps(store).await;
    outbox::batched_updates(store).await;
    compliance::audit_log(store).await;
    compliance::subject_requests(store).await;
    compliance::erasure(store).await;
    compliance::retention(store).await;
    batch_reads(store).await;
    // Last: the retention check counts the finished jobs of finished campaigns.
    outbox::abort_with_sends_in_flight(store).await;
    outbox::abandoned_sends_are_closed(store).await;
    outbox::attempts_need_a_running_campaign(store).await;
    outbox::job_groups_match_the_jobs(store).await;
    events::event_groups_match_the_events(store).await;
}

/// Checks that `store` answers [`jobs_page`](crate::OutboxStore::jobs_page) and
/// [`campaign_events_page`](crate::EventStore::campaign_events_page) a page of at most `limit`
/// at a time: for a store with its own paging (the trait's defaults answer everything left at
/// once, which [`store_conformance`] allows). Run it after `store_conformance`, on the same
/// store.
pub async fn pages_keep_their_limit<S: Store + ?Sized>(store: &S) {
    outbox::jobs_pages_keep_their_limit(store).await;
    events::event_pages_keep_their_limit(store).await;
}

/// The reads a worker makes once per claimed batch answer as the reads of one contact do: ids
/// given in any order and twice, unknown ids, empty lists.
async fn batch_reads<S: Store + ?Sized>(store: &S) {
    store
        .upsert_contacts(&[contact(41), contact(42), contact(43)])
        .await
        .unwrap();
    let ids = |names: &[&str]| names.iter().map(|n| ContactId::new(*n)).collect::<Vec<_>>();
    assert_eq!(
        store
            .contacts_by_id(&ids(&["c43", "c41", "c99", "c41"]))
            .await
            .unwrap(),
        [contact(41), contact(43)],
        "ordered by id, an unknown id left out, a repeated one answered once"
    );
    assert!(store.contacts_by_id(&[]).await.unwrap().is_empty());

    let ev = |n: &str| Evidence::new("telegram_start", format!("update={n}"));
    let records = [
        ConsentRecord::grant("c41", Purpose::marketing(), ev("41a"), "v1", t(1)),
        ConsentRecord::grant("c42", Purpose::marketing(), ev("42"), "v1", t(2)),
        ConsentRecord::withdraw("c41", Purpose::marketing(), ev("41b"), t(3)),
        ConsentRecord::grant("c43", Purpose::marketing(), ev("43"), "v1", t(4)),
    ];
    store.append_consent(&records).await.unwrap();
    let histories = store
        .consent_histories(&ids(&["c42", "c41", "c42", "c98"]))
        .await
        .unwrap();
    for who in ["c41", "c42"] {
        let mine: Vec<_> = histories
            .iter()
            .filter(|r| r.contact.as_str() == who)
            .cloned()
            .collect();
        assert_eq!(
            mine,
            store.consent_history(&ContactId::new(who)).await.unwrap(),
            "{who}'s history, in insertion order"
        );
    }
    assert_eq!(histories.len(), 3, "c43's record is not asked for");
    assert!(store.consent_histories(&[]).await.unwrap().is_empty());

    let mut campaign = running_campaign("k-batch");
    campaign.state = CampaignState::Draft;
    store.insert_campaign(&campaign).await.unwrap();
    assert_eq!(
        store.campaign_state(&campaign.id).await.unwrap(),
        Some(CampaignState::Draft)
    );
    assert_eq!(
        store
            .campaign_state(&CampaignId::new("k-none"))
            .await
            .unwrap(),
        None
    );
    campaign.state = CampaignState::Running;
    // Due before anything else in the store, so the claim takes exactly these three.
    let now = -5_000;
    let mut second = job("k-batch", "c41", now);
    second.key = IdempotencyKey::for_job(&campaign.id, &ContactId::new("c41"), 1);
    second.step = 1;
    let jobs = [
        job("k-batch", "c41", now),
        second,
        job("k-batch", "c42", now),
    ];
    store.schedule(&campaign, &jobs).await.unwrap();
    assert_eq!(
        store.campaign_state(&campaign.id).await.unwrap(),
        Some(CampaignState::Running)
    );
    let claimed = store
        .claim("w-batch", t(now), SignedDuration::from_secs(30), 3)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    for (i, job) in (1..).zip(&claimed) {
        // c42's send falls before `since`, both of c41's after it.
        let at = match (job.contact.as_str(), job.step) {
            ("c42", _) => now + 10,
            (_, 0) => now + 20,
            _ => now + 30,
        };
        store
            .update_job(
                &job.key,
                job.claim_token,
                &JobUpdate::Sent { message_id: i },
                t(at),
            )
            .await
            .unwrap();
    }
    let since = t(now + 15);
    let sends = store
        .sends_since_by_contact(&ids(&["c43", "c42", "c41", "c42"]), since)
        .await
        .unwrap();
    for who in ["c41", "c42", "c43"] {
        let mine: Vec<_> = sends
            .iter()
            .filter(|(c, _)| c.as_str() == who)
            .map(|(_, at)| *at)
            .collect();
        assert_eq!(
            mine,
            store
                .sends_since(&ContactId::new(who), since)
                .await
                .unwrap(),
            "{who}'s sends, newest first"
        );
    }
    assert_eq!(
        sends
            .iter()
            .map(|(c, at)| (c.as_str(), *at))
            .collect::<Vec<_>>(),
        [("c41", t(now + 30)), ("c41", t(now + 20))],
        "c41's two sends, newest first; c42's is before `since`"
    );
    assert!(
        store
            .sends_since_by_contact(&[], since)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn daily_caps<S: Store + ?Sized>(store: &S) {
    let take = |key: &'static str, day: &'static str| store.take_daily(key, day, 3);
    for n in 1..=3 {
        assert!(
            take("acct", "2026-12-01").await.unwrap(),
            "send {n} of 3 fits"
        );
    }
    assert!(
        !take("acct", "2026-12-01").await.unwrap(),
        "the 4th does not"
    );
    assert!(!take("acct", "2026-12-01").await.unwrap(), "nor a 5th");
    assert!(
        take("acct", "2026-12-02").await.unwrap(),
        "a new day starts at zero"
    );
    assert!(
        take("other", "2026-12-01").await.unwrap(),
        "each key has its own count"
    );
    assert!(
        store.take_daily("acct", "2026-12-01", 4).await.unwrap(),
        "a raised cap lets one more through"
    );
    // Racing takes never pass the cap together.
    let racing = futures_join_all((0..12).map(|_| store.take_daily("race", "2026-12-01", 5))).await;
    let granted = racing.into_iter().filter(|r| *r.as_ref().unwrap()).count();
    assert_eq!(granted, 5, "exactly the cap is granted under concurrency");
}

/// Runs futures concurrently on the current task (no extra dependency).
async fn futures_join_all<F: std::future::Future>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, fut) in out.iter_mut().zip(pinned.iter_mut()) {
            if slot.is_none() {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

async fn contacts<S: Store + ?Sized>(store: &S) {
    store
        .upsert_contacts(&[contact(1), contact(2)])
        .await
        .unwrap();
    let got = store.contact(&ContactId::new("c1")).await.unwrap();
    assert_eq!(
        got,
        Some(contact(1)),
        "a contact reads back exactly as written"
    );
    let by_peer = store
        .contact_by_peer(&TelegramPeer::user(1002))
        .await
        .unwrap();
    assert_eq!(by_peer.map(|c| c.id), Some(ContactId::new("c2")));
    let moved = Contact {
        peer: TelegramPeer::user(5000),
        ..contact(2)
    };
    store.upsert_contacts(&[moved]).await.unwrap();
    assert!(
        store
            .contact_by_peer(&TelegramPeer::user(1002))
            .await
            .unwrap()
            .is_none(),
        "upsert replaces the peer mapping"
    );
    let thief = Contact {
        peer: TelegramPeer::user(1001),
        ..contact(9)
    };
    assert!(
        matches!(
            store.upsert_contacts(&[contact(8), thief]).await,
            Err(Error::InvalidInput(_))
        ),
        "a peer belongs to one contact"
    );
    assert!(
        store
            .contact(&ContactId::new("c8"))
            .await
            .unwrap()
            .is_none(),
        "a refused batch writes nothing"
    );
    let all = store.contacts().await.unwrap();
    assert_eq!(
        all.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["c1", "c2"]
    );
    assert!(
        store
            .contact(&ContactId::new("nobody"))
            .await
            .unwrap()
            .is_none()
    );
}

async fn consent_ledger<S: Store + ?Sized>(store: &S) {
    let ev = Evidence::new("telegram_start", "update=1");
    let mut grant = ConsentRecord::grant("c1", Purpose::marketing(), ev.clone(), "v2", t(10));
    grant.expires_at = Some(t(1_000_000));
    let other = ConsentRecord::grant("c1", Purpose::new("updates"), ev.clone(), "v2", t(11));
    store
        .append_consent(&[grant.clone(), other.clone()])
        .await
        .unwrap();
    let history = store.consent_history(&ContactId::new("c1")).await.unwrap();
    assert_eq!(
        history,
        vec![grant.clone(), other],
        "history keeps every field, in order"
    );
    let marketing = store
        .consents_for_purpose(&Purpose::marketing())
        .await
        .unwrap();
    assert_eq!(marketing, vec![grant]);
}

async fn campaigns<S: Store + ?Sized>(store: &S) {
    let draft = Campaign::draft(
        CampaignId::new("k1"),
        CampaignSpec::new("n", "p", "o"),
        t(0),
    );
    store.insert_campaign(&draft).await.unwrap();
    assert!(
        store.insert_campaign(&draft).await.is_err(),
        "inserting an existing campaign id fails"
    );
    let mut changed = draft.clone();
    changed.transition(CampaignState::Generating, t(1)).unwrap();
    store.update_campaign(&changed).await.unwrap();
    assert_eq!(store.campaign(&draft.id).await.unwrap(), Some(changed));
    let missing = Campaign::draft(
        CampaignId::new("nope"),
        CampaignSpec::new("n", "p", "o"),
        t(0),
    );
    assert!(matches!(
        store.update_campaign(&missing).await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(store.campaigns().await.unwrap().len(), 1);
    // By state, oldest first, as saved.
    let mut later = Campaign::draft(
        CampaignId::new("k0"),
        CampaignSpec::new("n", "p", "o"),
        t(2),
    );
    store.insert_campaign(&later).await.unwrap();
    later.transition(CampaignState::Generating, t(3)).unwrap();
    store.update_campaign(&later).await.unwrap();
    let generating = store.campaigns_in(CampaignState::Generating).await.unwrap();
    let ids: Vec<_> = generating.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["k1", "k0"], "in insertion order, not by id");
    assert_eq!(generating[1], later);
    assert!(
        store
            .campaigns_in(CampaignState::Running)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn outbox<S: Store + ?Sized>(store: &S) {
    let mut campaign = running_campaign("k2");
    campaign.state = CampaignState::Draft;
    store.insert_campaign(&campaign).await.unwrap();
    campaign.state = CampaignState::Running;
    let mut skipped = job("k2", "c3", 0);
    skipped.skipped = Some("no_consent".into());
    let jobs = vec![job("k2", "c1", 0), job("k2", "c2", 5), skipped];
    assert_eq!(store.schedule(&campaign, &jobs).await.unwrap(), 3);
    assert_eq!(
        store.campaign(&campaign.id).await.unwrap().unwrap().state,
        CampaignState::Running,
        "schedule saves the campaign with its jobs"
    );
    assert_eq!(
        store.schedule(&campaign, &jobs).await.unwrap(),
        0,
        "scheduling twice is harmless"
    );

    let counts = store.job_counts(&campaign.id).await.unwrap();
    assert_eq!((counts.pending, counts.skipped, counts.total()), (2, 1, 3));
    assert_eq!(store.next_due().await.unwrap(), Some(t(0)));

    let lease = SignedDuration::from_secs(30);
    let first = store.claim("w1", t(1), lease, 10).await.unwrap();
    assert_eq!(first.len(), 1, "only due jobs are claimed");
    let a = &first[0];
    assert_eq!(a.state, JobState::Claimed);
    assert_eq!(a.worker.as_deref(), Some("w1"));
    assert!(
        store.claim("w2", t(2), lease, 10).await.unwrap().is_empty(),
        "a leased job is not claimed twice"
    );

    // The lease expires; another worker takes over and the first one's writes are refused.
    let stolen = store.claim("w2", t(40), lease, 10).await.unwrap();
    assert_eq!(stolen.len(), 2, "an expired lease and the now-due job");
    let b = stolen.iter().find(|j| j.key == a.key).unwrap();
    assert_ne!(b.claim_token, a.claim_token, "a new claim, a new token");
    let v = VariantId::new("A");
    assert!(matches!(
        store
            .record_attempt(&a.key, a.claim_token, &v, 0.5, t(41))
            .await,
        Err(Error::LeaseLost(_))
    ));
    assert!(matches!(
        store
            .update_job(
                &a.key,
                a.claim_token,
                &JobUpdate::Sent { message_id: 1 },
                t(41)
            )
            .await,
        Err(Error::LeaseLost(_))
    ));
    store
        .record_attempt(&b.key, b.claim_token, &v, 0.5, t(41))
        .await
        .unwrap();
    store
        .record_attempt(&b.key, b.claim_token, &VariantId::new("B"), 0.5, t(41))
        .await
        .unwrap();
    let in_flight = store.job(&b.key).await.unwrap().unwrap();
    assert_eq!(
        in_flight.outcome.as_deref(),
        Some(crate::SEND_IN_FLIGHT),
        "a recorded attempt marks the send in flight until its result is recorded"
    );
    store
        .update_job(
            &b.key,
            b.claim_token,
            &JobUpdate::Sent { message_id: 77 },
            t(42),
        )
        .await
        .unwrap();
    let sent = store.job(&b.key).await.unwrap().unwrap();
    assert_eq!(sent.state, JobState::Sent);
    assert_eq!(sent.variant, Some(v), "the first recorded variant sticks");
    assert_eq!(sent.propensity, Some(0.5));
    assert_eq!(sent.message_id, Some(77));
    let found = store.job_by_message(&sent.contact, 77).await.unwrap();
    assert_eq!(found.map(|j| j.key), Some(sent.key.clone()));
    assert_eq!(
        store.sends_since(&sent.contact, t(0)).await.unwrap(),
        vec![t(42)]
    );
    assert!(
        store
            .sends_since(&sent.contact, t(43))
            .await
            .unwrap()
            .is_empty()
    );

    // Retry with an attempt counted, then dead letter.
    let c = stolen.iter().find(|j| j.key != a.key).unwrap();
    let retry = JobUpdate::Retry {
        due_at: t(100),
        count_attempt: true,
        reason: "flood_wait".into(),
    };
    store
        .update_job(&c.key, c.claim_token, &retry, t(42))
        .await
        .unwrap();
    let waiting = store.job(&c.key).await.unwrap().unwrap();
    assert_eq!(
        (waiting.state, waiting.attempts, waiting.due_at),
        (JobState::Pending, 1, t(100))
    );
    assert_eq!(waiting.outcome.as_deref(), Some("flood_wait"));
    assert_eq!(store.next_due().await.unwrap(), Some(t(100)));
    assert!(
        store
            .claim("w1", t(99), lease, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Paused campaigns are not claimed.
    let mut paused = campaign.clone();
    paused.state = CampaignState::Paused;
    store.update_campaign(&paused).await.unwrap();
    assert!(
        store
            .claim("w1", t(100), lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.next_due().await.unwrap(), None);
    store.update_campaign(&campaign).await.unwrap();

    let c = store
        .claim("w1", t(100), lease, 10)
        .await
        .unwrap()
        .remove(0);
    store
        .update_job(
            &c.key,
            c.claim_token,
            &JobUpdate::Held {
                rule: "review".into(),
            },
            t(101),
        )
        .await
        .unwrap();
    assert_eq!(
        store.next_due().await.unwrap(),
        None,
        "held jobs are not due"
    );
    store.release_held(&c.key, true, t(102)).await.unwrap();
    assert!(
        store.release_held(&c.key, true, t(102)).await.is_err(),
        "only held jobs are released"
    );
    let c = store
        .claim("w1", t(102), lease, 10)
        .await
        .unwrap()
        .remove(0);
    let dead = JobUpdate::DeadLetter {
        reason: "blocked".into(),
    };
    store
        .update_job(&c.key, c.claim_token, &dead, t(103))
        .await
        .unwrap();
    let counts = store.job_counts(&campaign.id).await.unwrap();
    assert_eq!(
        (
            counts.sent,
            counts.dead_letter,
            counts.skipped,
            counts.open()
        ),
        (1, 1, 1, 0)
    );
    // Dead letters can be requeued (attempts reset) or discarded, and nothing else can.
    assert!(
        matches!(
            store
                .settle_dead_letter(&b.key, DeadLetterAction::Discard, t(104))
                .await,
            Err(Error::NotFound { .. })
        ),
        "a sent job is not a dead letter"
    );
    let requeue = DeadLetterAction::Requeue { due_at: t(200) };
    store
        .settle_dead_letter(&c.key, requeue, t(104))
        .await
        .unwrap();
    let back = store.job(&c.key).await.unwrap().unwrap();
    assert_eq!(
        (back.state, back.attempts, back.due_at),
        (JobState::Pending, 0, t(200))
    );
    let c = store
        .claim("w1", t(200), lease, 10)
        .await
        .unwrap()
        .remove(0);
    store
        .update_job(&c.key, c.claim_token, &dead, t(201))
        .await
        .unwrap();
    store
        .settle_dead_letter(&c.key, DeadLetterAction::Discard, t(202))
        .await
        .unwrap();
    let gone = store.job(&c.key).await.unwrap().unwrap();
    assert_eq!(gone.state, JobState::Cancelled);
    assert_eq!(gone.outcome.as_deref(), Some("discarded: blocked"));
    let keys: Vec<_> = store
        .jobs(&campaign.id)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.key)
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "jobs come ordered by key");
}

async fn withdrawal_cancels_jobs<S: Store + ?Sized>(store: &S) {
    let mut campaign = running_campaign("k3");
    campaign.state = CampaignState::Draft;
    store.insert_campaign(&campaign).await.unwrap();
    campaign.state = CampaignState::Running;
    store
        .schedule(&campaign, &[job("k3", "c1", 0), job("k3", "c2", 0)])
        .await
        .unwrap();
    let claimed = store
        .claim("w1", t(1), SignedDuration::from_secs(30), 1)
        .await
        .unwrap();
    let stop = ConsentRecord::withdraw(
        claimed[0].contact.clone(),
        Purpose::marketing(),
        Evidence::new("stop_keyword", "update=9"),
        t(2),
    );
    assert_eq!(
        store.withdraw_consent(&stop).await.unwrap(),
        1,
        "the claimed job is cancelled"
    );
    assert!(
        store
            .consent_history(&claimed[0].contact)
            .await
            .unwrap()
            .contains(&stop),
        "the withdrawal is in the ledger"
    );
    let job = store.job(&claimed[0].key).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Cancelled);
    assert!(
        matches!(
            store
                .record_attempt(
                    &job.key,
                    claimed[0].claim_token,
                    &VariantId::new("A"),
                    1.0,
                    t(3)
                )
                .await,
            Err(Error::LeaseLost(_))
        ),
        "a worker holding a cancelled job must not send it"
    );
    assert_eq!(
        store
            .cancel_campaign_jobs(&campaign.id, t(4))
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.job_counts(&campaign.id).await.unwrap().cancelled, 2);
}

/// A journey's next steps are added to a running campaign once, without touching it.
async fn enqueue_adds_later_steps<S: Store + ?Sized>(store: &S) {
    let mut campaign = running_campaign("k9");
    campaign.state = CampaignState::Draft;
    store.insert_campaign(&campaign).await.unwrap();
    campaign.state = CampaignState::Running;
    store
        .schedule(&campaign, &[job("k9", "c9", 0)])
        .await
        .unwrap();
    // An operator pauses it meanwhile; adding a step must not undo that.
    let mut paused = campaign.clone();
    paused.state = CampaignState::Paused;
    store.update_campaign(&paused).await.unwrap();
    let mut later = job("k9", "c9", 100);
    later.step = 1;
    later.key = IdempotencyKey::for_job(&campaign.id, &later.contact, 1);
    assert_eq!(
        store
            .enqueue(&campaign.id, std::slice::from_ref(&later), t(50))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .enqueue(&campaign.id, std::slice::from_ref(&later), t(60))
            .await
            .unwrap(),
        0,
        "a key that exists is left alone"
    );
    let stored = store.job(&later.key).await.unwrap().unwrap();
    assert_eq!(stored.step, 1);
    assert_eq!(stored.state, JobState::Pending);
    assert_eq!(stored.due_at, t(100));
    assert_eq!(stored.updated_at, t(50));
    assert_eq!(
        store.campaign(&campaign.id).await.unwrap().unwrap().state,
        CampaignState::Paused
    );
    assert_eq!(store.jobs(&campaign.id).await.unwrap().len(), 2);
    assert!(matches!(
        store
            .enqueue(
                &CampaignId::new("nope"),
                std::slice::from_ref(&later),
                t(70)
            )
            .await,
        Err(Error::NotFound { .. })
    ));
    // A withdrawal cancels the contact's open jobs of every step.
    store.update_campaign(&campaign).await.unwrap();
    let stop = ConsentRecord::withdraw(
        later.contact.clone(),
        Purpose::marketing(),
        Evidence::new("stop_keyword", "update=10"),
        t(80),
    );
    assert_eq!(store.withdraw_consent(&stop).await.unwrap(), 2);
    assert_eq!(store.job_counts(&campaign.id).await.unwrap().cancelled, 2);
}

async fn events<S: Store + ?Sized>(store: &S) {
    let e = |id: &str, at: i64, kind: EventKind| Event {
        id: EventId::new(id),
        at: t(at),
        contact: ContactId::new("c1"),
        campaign: Some(CampaignId::new("k2")),
        variant: Some(VariantId::new("A")),
        step: None,
        kind,
    };
    let batch = vec![
        e("e2", 5, EventKind::Converted { value_minor: 1999 }),
        // The journey step round-trips; events without one stay without.
        Event {
            step: Some(3),
            ..e("e1", 1, EventKind::Sent)
        },
        e(
            "e3",
            5,
            EventKind::Failed {
                reason: "blocked".into(),
            },
        ),
    ];
    assert_eq!(store.append_events(&batch).await.unwrap(), 3);
    assert_eq!(
        store.append_events(&batch[..1]).await.unwrap(),
        0,
        "ids dedupe"
    );
    let got = store.campaign_events(&CampaignId::new("k2")).await.unwrap();
    let ids: Vec<_> = got.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["e1", "e2", "e3"], "ordered by time then id");
    assert_eq!(got[1].kind, EventKind::Converted { value_minor: 1999 });
    assert_eq!(got, [batch[1].clone(), batch[0].clone(), batch[2].clone()]);
    assert_eq!(got[0].step, Some(3));
    assert_eq!(got[1].step, None);
    assert_eq!(
        store
            .contact_events(&ContactId::new("c1"))
            .await
            .unwrap()
            .len(),
        3
    );
    assert!(
        store
            .campaign_events(&CampaignId::new("none"))
            .await
            .unwrap()
            .is_empty()
    );
    // Ids are unique per contact: the same id on another contact is another event, stored
    // once however often it comes (in one batch, or again).
    let other = Event {
        contact: ContactId::new("c9"),
        ..batch[0].clone()
    };
    let twice = [other.clone(), other.clone()];
    assert_eq!(store.append_events(&twice).await.unwrap(), 1, "per contact");
    assert_eq!(store.append_events(&twice).await.unwrap(), 0);
    assert_eq!(
        store.contact_events(&other.contact).await.unwrap(),
        std::slice::from_ref(&other)
    );
    // Two events of one time and id come by contact.
    let got = store.campaign_events(&CampaignId::new("k2")).await.unwrap();
    let order: Vec<_> = got
        .iter()
        .map(|e| (e.id.as_str(), e.contact.as_str()))
        .collect();
    assert_eq!(
        order,
        [("e1", "c1"), ("e2", "c1"), ("e2", "c9"), ("e3", "c1")]
    );
}

async fn reviews<S: Store + ?Sized>(store: &S) {
    let item = ReviewItem {
        id: ReviewId::new("r1"),
        campaign: CampaignId::new("k1"),
        subject: ReviewSubject::Variant {
            variant: VariantId::new("B"),
        },
        text: "Guaranteed results!".into(),
        trace: vec![],
        state: ReviewState::Pending,
        reviewer: None,
        note: None,
        created_at: t(1),
        resolved_at: None,
    };
    store
        .insert_reviews(std::slice::from_ref(&item))
        .await
        .unwrap();
    assert_eq!(store.pending_reviews().await.unwrap(), vec![item.clone()]);
    let mut campaign = store
        .campaign(&CampaignId::new("k1"))
        .await
        .unwrap()
        .unwrap();
    campaign.state_reason = Some("reviewed".into());
    let decided = ReviewItem {
        state: ReviewState::Edited {
            text: "Good results.".into(),
        },
        reviewer: Some("ana".into()),
        resolved_at: Some(t(2)),
        ..item
    };
    store.resolve_review(&decided, &campaign).await.unwrap();
    assert!(store.pending_reviews().await.unwrap().is_empty());
    assert_eq!(
        store.review(&decided.id).await.unwrap().as_ref(),
        Some(&decided)
    );
    assert_eq!(
        store
            .campaign(&campaign.id)
            .await
            .unwrap()
            .unwrap()
            .state_reason
            .as_deref(),
        Some("reviewed"),
        "resolve_review saves the campaign too"
    );

    // `decide_review` changes the campaign as stored: two decisions made from the same
    // earlier read both stand.
    let queued: Vec<ReviewItem> = ["r2", "r3", "r4"]
        .into_iter()
        .map(|id| ReviewItem {
            id: ReviewId::new(id),
            state: ReviewState::Pending,
            reviewer: None,
            resolved_at: None,
            ..decided.clone()
        })
        .collect();
    store.insert_reviews(&queued).await.unwrap();
    let note = |mark: &'static str| {
        move |c: &mut Campaign| {
            let was = c.state_reason.clone().unwrap_or_default();
            c.state_reason = Some(format!("{was}+{mark}"));
            Ok(())
        }
    };
    let approve = |item: &ReviewItem| ReviewItem {
        state: ReviewState::Approved,
        reviewer: Some("ana".into()),
        resolved_at: Some(t(3)),
        ..item.clone()
    };
    store
        .decide_review(&approve(&queued[0]), &note("r2"))
        .await
        .unwrap();
    let saved = store
        .decide_review(&approve(&queued[1]), &note("r3"))
        .await
        .unwrap();
    assert_eq!(saved.state_reason.as_deref(), Some("reviewed+r2+r3"));
    assert_eq!(
        store.campaign(&campaign.id).await.unwrap().unwrap(),
        saved,
        "decide_review returns the campaign as saved"
    );
    // A change that fails writes nothing.
    let refused = store
        .decide_review(&approve(&queued[2]), &|_: &mut Campaign| {
            Err(Error::invalid("no"))
        })
        .await;
    assert!(
        matches!(refused, Err(Error::InvalidInput(_))),
        "{refused:?}"
    );
    assert_eq!(
        store.review(&queued[2].id).await.unwrap().unwrap().state,
        ReviewState::Pending
    );
    assert_eq!(store.campaign(&campaign.id).await.unwrap().unwrap(), saved);
    let late = store
        .decide_review(&approve(&queued[0]), &note("again"))
        .await;
    assert!(matches!(late, Err(Error::InvalidInput(_))), "{late:?}");
    assert_eq!(store.campaign(&campaign.id).await.unwrap().unwrap(), saved);
}

/// A decision on a held send releases its job in the same write; the first decision on an
/// item stands, and queueing an item again never reopens it.
async fn send_reviews<S: Store + ?Sized>(store: &S) {
    let campaign = running_campaign("k_rev");
    store.insert_campaign(&campaign).await.unwrap();
    let jobs = [job("k_rev", "c1", 1), job("k_rev", "c2", 1)];
    store.schedule(&campaign, &jobs).await.unwrap();
    let lease = SignedDuration::from_secs(30);
    let mut claimed = store.claim("w", t(2), lease, 2).await.unwrap();
    claimed.sort_by(|a, b| a.key.cmp(&b.key));
    let mut keys: Vec<_> = jobs.iter().map(|j| j.key.clone()).collect();
    keys.sort();
    assert_eq!(
        claimed.iter().map(|j| j.key.clone()).collect::<Vec<_>>(),
        keys
    );
    let item = |job: &Job| ReviewItem {
        id: ReviewId::new(format!("rev_{}", job.contact)),
        campaign: campaign.id.clone(),
        subject: ReviewSubject::Send {
            job: job.key.clone(),
        },
        text: String::new(),
        trace: vec![],
        state: ReviewState::Pending,
        reviewer: None,
        note: None,
        created_at: t(3),
        resolved_at: None,
    };
    let held = JobUpdate::Held { rule: "r".into() };
    for job in &claimed {
        store
            .insert_reviews(std::slice::from_ref(&item(job)))
            .await
            .unwrap();
        store
            .update_job(&job.key, job.claim_token, &held, t(3))
            .await
            .unwrap();
    }
    let decide = |job: &Job, state: ReviewState| ReviewItem {
        state,
        reviewer: Some("ana".into()),
        resolved_at: Some(t(5)),
        ..item(job)
    };
    let (yes, no) = (&claimed[0], &claimed[1]);
    store
        .resolve_review(&decide(yes, ReviewState::Approved), &campaign)
        .await
        .unwrap();
    store
        .resolve_review(&decide(no, ReviewState::Rejected), &campaign)
        .await
        .unwrap();
    let approved = store.job(&yes.key).await.unwrap().unwrap();
    assert_eq!(
        (approved.state, approved.due_at),
        (JobState::Pending, t(5)),
        "an approval releases the held job, due at the decision"
    );
    let rejected = store.job(&no.key).await.unwrap().unwrap();
    assert_eq!(
        (rejected.state, rejected.outcome.as_deref()),
        (JobState::Skipped, Some("rejected_by_reviewer")),
        "a rejection skips it"
    );

    // The first decision stands: a second one (another reviewer, an expiry) is refused and
    // changes nothing, and queueing the item again does not reopen it.
    let late = store
        .resolve_review(&decide(yes, ReviewState::Rejected), &campaign)
        .await;
    assert!(matches!(late, Err(Error::InvalidInput(_))), "{late:?}");
    store
        .insert_reviews(std::slice::from_ref(&item(yes)))
        .await
        .unwrap();
    let stored = store.review(&item(yes).id).await.unwrap().unwrap();
    assert_eq!(stored.state, ReviewState::Approved);
    assert!(
        store
            .pending_reviews()
            .await
            .unwrap()
            .iter()
            .all(|r| r.campaign != campaign.id)
    );
    assert_eq!(
        store.job(&yes.key).await.unwrap().unwrap().state,
        JobState::Pending
    );
    // Only decisions are saved, with their time; an unknown item is not found.
    let undecided = store.resolve_review(&item(yes), &campaign).await;
    assert!(
        matches!(undecided, Err(Error::InvalidInput(_))),
        "{undecided:?}"
    );
    let untimed = ReviewItem {
        resolved_at: None,
        ..decide(yes, ReviewState::Approved)
    };
    let untimed = store.resolve_review(&untimed, &campaign).await;
    assert!(
        matches!(untimed, Err(Error::InvalidInput(_))),
        "{untimed:?}"
    );
    let ghost = ReviewItem {
        id: ReviewId::new("rev_nobody"),
        ..decide(yes, ReviewState::Approved)
    };
    let ghost = store.resolve_review(&ghost, &campaign).await;
    assert!(matches!(ghost, Err(Error::NotFound { .. })), "{ghost:?}");

    // The approved job is in the queue again: a claim takes it, and it is finished.
    let again = store.claim("w", t(6), lease, 10).await.unwrap();
    let again: Vec<&Job> = again.iter().filter(|j| j.key == yes.key).collect();
    assert_eq!(again.len(), 1, "the approved job is claimed again");
    store
        .update_job(
            &yes.key,
            again[0].claim_token,
            &JobUpdate::Sent { message_id: 9 },
            t(7),
        )
        .await
        .unwrap();
}

async fn claim_order_and_rejections<S: Store + ?Sized>(store: &S) {
    let mut campaign = running_campaign("k4");
    campaign.state = CampaignState::Draft;
    store.insert_campaign(&campaign).await.unwrap();
    campaign.state = CampaignState::Running;
    let jobs: Vec<NewJob> = (0..6)
        .map(|i| job("k4", &format!("c{i}"), 10 - i))
        .collect();
    store.schedule(&campaign, &jobs).await.unwrap();
    let lease = SignedDuration::from_secs(30);
    let first = store.claim("w", t(20), lease, 2).await.unwrap();
    let due: Vec<_> = first.iter().map(|j| j.due_at).collect();
    assert_eq!(
        due,
        vec![t(5), t(6)],
        "the earliest due jobs come first, up to the limit"
    );
    let held = &first[0];
    store
        .update_job(
            &held.key,
            held.claim_token,
            &JobUpdate::Held { rule: "r".into() },
            t(21),
        )
        .await
        .unwrap();
    store.release_held(&held.key, false, t(22)).await.unwrap();
    let rejected = store.job(&held.key).await.unwrap().unwrap();
    assert_eq!(
        rejected.state,
        JobState::Skipped,
        "a rejected held job is skipped"
    );
    assert_eq!(rejected.outcome.as_deref(), Some("rejected_by_reviewer"));

    let ghost = running_campaign("never-inserted");
    assert!(
        matches!(
            store.schedule(&ghost, &[]).await,
            Err(Error::NotFound { .. })
        ),
        "scheduling an unknown campaign"
    );
    assert!(matches!(
        store
            .update_job(
                &IdempotencyKey::new("nope"),
                1,
                &JobUpdate::Sent { message_id: 1 },
                t(1)
            )
            .await,
        Err(Error::NotFound { .. })
    ));

    // Two sends to one contact come back newest first.
    let c = first[1].clone();
    store
        .update_job(
            &c.key,
            c.claim_token,
            &JobUpdate::Sent { message_id: 5 },
            t(30),
        )
        .await
        .unwrap();
    let next = store.claim("w", t(31), lease, 1).await.unwrap().remove(0);
    let mut again = running_campaign("k5");
    again.state = CampaignState::Draft;
    store.insert_campaign(&again).await.unwrap();
    again.state = CampaignState::Running;
    store
        .schedule(&again, &[job("k5", c.contact.as_str(), 0)])
        .await
        .unwrap();
    store
        .update_job(
            &next.key,
            next.claim_token,
            &JobUpdate::Sent { message_id: 6 },
            t(32),
        )
        .await
        .unwrap();
    let k5 = store.claim("w", t(40), lease, 10).await.unwrap();
    let k5 = k5.iter().find(|j| j.campaign == again.id).unwrap();
    store
        .update_job(
            &k5.key,
            k5.claim_token,
            &JobUpdate::Sent { message_id: 7 },
            t(41),
        )
        .await
        .unwrap();
    assert_eq!(
        store.sends_since(&c.contact, t(0)).await.unwrap(),
        vec![t(41), t(30)]
    );
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn the_template_provider_conforms() {
        super::provider_conformance(&crate::TemplateProvider::new()).await;
    }

    #[tokio::test]
    async fn the_memory_store_conforms() {
        let store = crate::MemoryStore::new();
        super::store_conformance(&store).await;
        super::pages_keep_their_limit(&store).await;
    }
}
