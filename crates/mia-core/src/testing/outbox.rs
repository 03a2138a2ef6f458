//! Conformance of [`OutboxStore::update_jobs`](crate::OutboxStore::update_jobs): a claimed
//! batch's results written together.

use jiff::SignedDuration;

use super::{running_campaign, t};
use crate::{
    CampaignId, CampaignState, ContactId, Error, IdempotencyKey, Job, JobState, JobUpdate, NewJob,
    Purpose, Store,
};

/// Jobs of campaign `id` for contacts `ub0..ub{n}`, due long before every other check's jobs,
/// so a claim takes these first.
fn early_jobs(id: &str, n: usize) -> Vec<NewJob> {
    (0..n)
        .map(|i| {
            let contact = ContactId::new(format!("ub{i}"));
            NewJob {
                key: IdempotencyKey::for_job(&CampaignId::new(id), &contact, 0),
                contact,
                purpose: Purpose::marketing(),
                step: 0,
                due_at: t(-100_000 + i64::try_from(i).unwrap()),
                skipped: None,
            }
        })
        .collect()
}

/// Schedules `n` early jobs of a new running campaign `id` and claims them all.
async fn claimed<S: Store + ?Sized>(store: &S, id: &str, n: usize) -> Vec<Job> {
    let mut campaign = running_campaign(id);
    campaign.state = CampaignState::Draft;
    store.insert_campaign(&campaign).await.unwrap();
    campaign.state = CampaignState::Running;
    let jobs = early_jobs(id, n);
    assert_eq!(store.schedule(&campaign, &jobs).await.unwrap(), n as u64);
    let lease = SignedDuration::from_secs(30);
    let claimed = store.claim("wb", t(-50_000), lease, n).await.unwrap();
    assert_eq!(claimed.len(), n, "the early jobs are claimed first");
    assert!(claimed.iter().all(|j| j.campaign == campaign.id));
    claimed
}

pub(super) async fn batched_updates<S: Store + ?Sized>(store: &S) {
    let jobs = claimed(store, "kb1", 6).await;
    let now = t(-49_000);
    assert!(
        store.update_jobs(&[], now).await.unwrap().is_empty(),
        "an empty batch does nothing"
    );

    // Another worker takes over one job; a withdrawal cancels another.
    let (stale, cancelled) = (&jobs[4], &jobs[5]);
    let mut taken = stale.clone();
    taken.claim_token += 1;
    store
        .update_job(
            &cancelled.key,
            cancelled.claim_token,
            &JobUpdate::Retry {
                due_at: t(1_000_000),
                count_attempt: false,
                reason: "moved".into(),
            },
            now,
        )
        .await
        .unwrap();
    let ghost = Job {
        key: IdempotencyKey::new("no-such-job"),
        ..jobs[0].clone()
    };

    let retry_at = t(-40_000);
    let updates = vec![
        (&jobs[0], JobUpdate::Sent { message_id: 11 }),
        (&ghost, JobUpdate::Sent { message_id: 12 }),
        (
            &jobs[1],
            JobUpdate::Skipped {
                rule: "no_consent".into(),
            },
        ),
        (
            &jobs[2],
            JobUpdate::Retry {
                due_at: retry_at,
                count_attempt: true,
                reason: "flood_wait".into(),
            },
        ),
        (cancelled, JobUpdate::Sent { message_id: 13 }),
        (
            &jobs[3],
            JobUpdate::DeadLetter {
                reason: "blocked".into(),
            },
        ),
        (&taken, JobUpdate::Sent { message_id: 14 }),
    ];
    let lost = store.update_jobs(&updates, now).await.unwrap();
    assert_eq!(
        lost,
        vec![ghost.key.clone(), cancelled.key.clone(), stale.key.clone()],
        "updates whose claim is gone change nothing and come back, in input order"
    );

    let sent = store.job(&jobs[0].key).await.unwrap().unwrap();
    assert_eq!(sent.state, JobState::Sent);
    assert_eq!(sent.message_id, Some(11));
    assert_eq!((sent.outcome, sent.lease_until), (None, None));
    assert_eq!(sent.updated_at, now);
    let skipped = store.job(&jobs[1].key).await.unwrap().unwrap();
    assert_eq!(skipped.state, JobState::Skipped);
    assert_eq!(skipped.outcome.as_deref(), Some("no_consent"));
    let retried = store.job(&jobs[2].key).await.unwrap().unwrap();
    assert_eq!(retried.state, JobState::Pending);
    assert_eq!(retried.due_at, retry_at);
    assert_eq!(retried.attempts, 1, "a counted retry adds an attempt");
    assert_eq!(retried.outcome.as_deref(), Some("flood_wait"));
    let dead = store.job(&jobs[3].key).await.unwrap().unwrap();
    assert_eq!(dead.state, JobState::DeadLetter);
    assert_eq!(dead.outcome.as_deref(), Some("blocked"));
    let moved = store.job(&cancelled.key).await.unwrap().unwrap();
    assert_eq!(
        (moved.state, moved.message_id),
        (JobState::Pending, None),
        "a job no longer claimed is left alone"
    );
    let untouched = store.job(&stale.key).await.unwrap().unwrap();
    assert_eq!(
        untouched.state,
        JobState::Claimed,
        "a stale claim token changes nothing"
    );
    assert_eq!(untouched.message_id, None);

    // Completing the same jobs again completes nothing twice.
    let again = vec![(&jobs[0], JobUpdate::Sent { message_id: 99 })];
    assert_eq!(
        store.update_jobs(&again, now).await.unwrap(),
        vec![jobs[0].key.clone()]
    );
    assert_eq!(
        store.job(&jobs[0].key).await.unwrap().unwrap().message_id,
        Some(11)
    );

    // A key twice is refused as a whole.
    let twice = vec![
        (stale, JobUpdate::Sent { message_id: 1 }),
        (stale, JobUpdate::Skipped { rule: "r".into() }),
    ];
    assert!(matches!(
        store.update_jobs(&twice, now).await,
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(
        store.job(&stale.key).await.unwrap().unwrap().state,
        JobState::Claimed,
        "a refused batch writes nothing"
    );
    store
        .update_jobs(&[(stale, JobUpdate::Sent { message_id: 15 })], now)
        .await
        .unwrap();
    assert_eq!(
        store
            .cancel_campaign_jobs(&CampaignId::new("kb1"), now)
            .await
            .unwrap(),
        2,
        "the retried job and the moved one were still open"
    );

    // A job named under a campaign it is not in is not found; its neighbour is.
    let pair = claimed(store, "kb3", 2).await;
    let misnamed = Job {
        campaign: CampaignId::new("kb1"),
        ..pair[1].clone()
    };
    let updates = vec![
        (&pair[0], JobUpdate::Sent { message_id: 16 }),
        (&misnamed, JobUpdate::Sent { message_id: 17 }),
    ];
    assert_eq!(
        store.update_jobs(&updates, now).await.unwrap(),
        vec![misnamed.key.clone()]
    );
    let states = (
        store.job(&pair[0].key).await.unwrap().unwrap().state,
        store.job(&pair[1].key).await.unwrap().unwrap().state,
    );
    assert_eq!(states, (JobState::Sent, JobState::Claimed));
    // Under its own campaign, it is found (and closed, so later checks do not claim it).
    let own = vec![(&pair[1], JobUpdate::Sent { message_id: 17 })];
    assert!(store.update_jobs(&own, now).await.unwrap().is_empty());

    // A batch larger than any one statement a backend prepares.
    let many = claimed(store, "kb2", 301).await;
    let updates: Vec<(&Job, JobUpdate)> = many
        .iter()
        .zip(1..)
        .map(|(job, id)| (job, JobUpdate::Sent { message_id: id }))
        .collect();
    assert!(store.update_jobs(&updates, now).await.unwrap().is_empty());
    let counts = store.job_counts(&CampaignId::new("kb2")).await.unwrap();
    assert_eq!((counts.sent, counts.total()), (301, 301));
    for (job, id) in many.iter().zip(1..) {
        let stored = store.job(&job.key).await.unwrap().unwrap();
        assert_eq!(stored.message_id, Some(id), "each job gets its own update");
    }
    assert_eq!(
        store.update_jobs(&updates, now).await.unwrap().len(),
        301,
        "none is completed twice"
    );
}

/// An abort while sends are in flight: every open job is cancelled at once and none can be
/// sent after, but a job whose send was already with the transport keeps its mark and its
/// claim, so its worker's result still lands: a send makes it a sent job (and a send that
/// counts), anything else leaves it cancelled. A send whose worker never reports is closed by
/// a later call once its lease has run out. The campaign stays running here, so that only the
/// cancellation keeps the jobs from being sent or claimed again.
pub(super) async fn abort_with_sends_in_flight<S: Store + ?Sized>(store: &S) {
    use crate::{CAMPAIGN_ABORTED, Event, EventId, EventKind, SEND_IN_FLIGHT, VariantId};
    // Claimed at -50,000 for 30 s.
    let jobs = claimed(store, "ka1", 7).await;
    let now = t(-49_990);
    let a = VariantId::new("A");
    // Jobs 0, 1, 2, 4, 5 and 6 are with the transport; job 3 is not yet.
    for job in jobs.iter().filter(|j| j.key != jobs[3].key) {
        store
            .record_attempt(&job.key, job.claim_token, &a, 1.0, now)
            .await
            .unwrap();
    }
    // The contacts of jobs 5 and 6 are erased before the abort, job 0's after it: their
    // workers' results, and the events recorded with them, must still reach the erasures'
    // replacements.
    let erased = |i: usize| ContactId::new(format!("erased:ka1-{i}"));
    for i in [5, 6] {
        store
            .erase_subject(&jobs[i].contact, &erased(i))
            .await
            .unwrap();
    }
    let campaign = jobs[0].campaign.clone();
    let at = t(-49_985);
    assert_eq!(
        store.cancel_campaign_jobs(&campaign, at).await.unwrap(),
        7,
        "every open job is cancelled, sends in flight too"
    );
    for job in &jobs {
        let stored = store.job(&job.key).await.unwrap().unwrap();
        assert_eq!(stored.state, JobState::Cancelled);
        let (outcome, lease) = if job.key == jobs[3].key {
            (CAMPAIGN_ABORTED, None)
        } else {
            (SEND_IN_FLIGHT, job.lease_until)
        };
        assert_eq!(stored.outcome.as_deref(), Some(outcome), "{}", job.key);
        assert_eq!(stored.lease_until, lease, "{}", job.key);
        assert_eq!(stored.send_in_flight(), outcome == SEND_IN_FLIGHT);
    }
    for (i, why) in [
        (3, "nothing is sent once the jobs are cancelled"),
        (2, "nor sent again"),
    ] {
        assert!(
            matches!(
                store
                    .record_attempt(&jobs[i].key, jobs[i].claim_token, &a, 1.0, at)
                    .await,
                Err(Error::LeaseLost(_))
            ),
            "{why}"
        );
    }
    assert_eq!(store.job_counts(&campaign).await.unwrap().cancelled, 7);
    store
        .erase_subject(&jobs[0].contact, &erased(0))
        .await
        .unwrap();

    // The workers record their results' events under the ids they claimed the jobs with,
    // then report: batched for jobs 0 to 4, one at a time for 5 and 6.
    let later = t(-49_980);
    let event = |i: usize, kind: EventKind| Event {
        id: EventId::derived(jobs[i].key.as_str(), kind.name()),
        at: later,
        contact: jobs[i].contact.clone(),
        campaign: Some(campaign.clone()),
        variant: Some(a.clone()),
        step: Some(0),
        kind,
    };
    let failed = EventKind::Failed {
        reason: "flood_wait".into(),
    };
    let events = [
        event(0, EventKind::Sent),
        event(5, EventKind::Sent),
        event(6, failed),
    ];
    store.append_events(&events).await.unwrap();
    let mut stale = jobs[4].clone();
    stale.claim_token += 1;
    let updates = vec![
        (&jobs[0], JobUpdate::Sent { message_id: 21 }),
        (
            &jobs[1],
            JobUpdate::Retry {
                due_at: t(-46_000),
                count_attempt: true,
                reason: "flood_wait".into(),
            },
        ),
        (&jobs[3], JobUpdate::Sent { message_id: 23 }),
        (&stale, JobUpdate::Sent { message_id: 24 }),
    ];
    assert_eq!(
        store.update_jobs(&updates, later).await.unwrap(),
        vec![jobs[3].key.clone(), jobs[4].key.clone()],
        "a job cancelled before its send, and a claim that is not the job's, take nothing"
    );
    store
        .update_job(
            &jobs[5].key,
            jobs[5].claim_token,
            &JobUpdate::Sent { message_id: 25 },
            later,
        )
        .await
        .unwrap();
    store
        .update_job(
            &jobs[6].key,
            jobs[6].claim_token,
            &JobUpdate::Retry {
                due_at: t(-46_000),
                count_attempt: true,
                reason: "flood_wait".into(),
            },
            later,
        )
        .await
        .unwrap();

    for (i, message_id) in [(0, 21), (5, 25)] {
        let sent = store.job(&jobs[i].key).await.unwrap().unwrap();
        assert_eq!(
            (sent.state, sent.message_id, sent.outcome.as_deref()),
            (JobState::Sent, Some(message_id), None),
            "a send in flight at the abort lands"
        );
        assert_eq!((sent.updated_at, sent.lease_until), (later, None));
        // (The contacts `ub*` have jobs of the earlier checks too, sent later than this.)
        assert!(
            store
                .sends_since(&sent.contact, later)
                .await
                .unwrap()
                .contains(&later),
            "and counts as a send"
        );
    }
    for i in [1, 6] {
        let not_sent = store.job(&jobs[i].key).await.unwrap().unwrap();
        assert_eq!(
            (not_sent.state, not_sent.outcome.as_deref()),
            (JobState::Cancelled, Some(CAMPAIGN_ABORTED)),
            "a send in flight that did not go out leaves its job cancelled"
        );
        assert_eq!(
            (not_sent.due_at, not_sent.attempts, not_sent.lease_until),
            (jobs[i].due_at, jobs[i].attempts, None),
            "and never due again"
        );
    }
    for (i, e) in [(0, &events[0]), (5, &events[1]), (6, &events[2])] {
        assert!(
            store
                .contact_events(&jobs[i].contact)
                .await
                .unwrap()
                .is_empty(),
            "nothing is left under an erased id"
        );
        let moved = store.contact_events(&erased(i)).await.unwrap();
        assert!(
            moved.iter().any(|m| m.id == e.id),
            "the result's event went to the replacement"
        );
    }
    for i in [2, 3, 4] {
        let stored = store.job(&jobs[i].key).await.unwrap().unwrap();
        assert_eq!(stored.state, JobState::Cancelled, "{i}");
        assert_eq!(stored.message_id, None, "{i}");
    }
    assert!(
        matches!(
            store
                .update_job(
                    &jobs[0].key,
                    jobs[0].claim_token,
                    &JobUpdate::Sent { message_id: 99 },
                    later
                )
                .await,
            Err(Error::LeaseLost(_))
        ),
        "a result lands once"
    );
    let counts = store.job_counts(&campaign).await.unwrap();
    assert_eq!((counts.sent, counts.cancelled), (2, 5));
    assert!(
        store
            .claim("wa", t(-45_000), SignedDuration::from_secs(30), 10)
            .await
            .unwrap()
            .iter()
            .all(|j| j.campaign != campaign),
        "no job of the campaign is claimed again, though it runs"
    );

    // No result comes for jobs 2 and 4 (job 4's came from a claim that was not its). Called
    // again within their lease, the cancellation leaves them; after it, it closes them.
    assert_eq!(
        store.cancel_campaign_jobs(&campaign, later).await.unwrap(),
        0
    );
    for i in [2, 4] {
        let left = store.job(&jobs[i].key).await.unwrap().unwrap();
        assert!(left.send_in_flight(), "{i}");
    }
    assert_eq!(
        store
            .cancel_campaign_jobs(&campaign, t(-49_000))
            .await
            .unwrap(),
        2
    );
    for i in [2, 4] {
        let closed = store.job(&jobs[i].key).await.unwrap().unwrap();
        assert_eq!(
            (closed.state, closed.outcome.as_deref(), closed.lease_until),
            (JobState::Cancelled, Some(CAMPAIGN_ABORTED), None),
            "{i}"
        );
    }
}

/// The sweep closes the sends in flight an abort left to workers that never reported, once
/// their lease has run out, as a second cancellation would: not before, not twice, and not a
/// send in flight of a campaign that was not aborted (another worker takes that one over). An
/// erasure waiting on such a send settles, and a result that comes after all is refused.
pub(super) async fn abandoned_sends_are_closed<S: Store + ?Sized>(store: &S) {
    use crate::{CAMPAIGN_ABORTED, Event, EventId, EventKind, SEND_IN_FLIGHT, VariantId};
    // Claimed at -50,000 for 30 s.
    let mut jobs = claimed(store, "ks1", 3).await;
    let other = claimed(store, "ks2", 1).await;
    // A fourth job of the campaign, claimed later for longer: until -49,935.
    let late = early_jobs("ks1", 4).split_off(3);
    assert_eq!(
        store
            .enqueue(&jobs[0].campaign, &late, t(-49_996))
            .await
            .unwrap(),
        1
    );
    jobs.extend(
        store
            .claim("wb", t(-49_995), SignedDuration::from_secs(60), 1)
            .await
            .unwrap(),
    );
    assert_eq!(jobs[3].key, late[0].key);
    let a = VariantId::new("A");
    let now = t(-49_990);
    // Jobs 0, 1 and 3 are with the transport, job 2 is not; so is the other campaign's job.
    for job in [&jobs[0], &jobs[1], &jobs[3], &other[0]] {
        store
            .record_attempt(&job.key, job.claim_token, &a, 1.0, now)
            .await
            .unwrap();
    }
    // Job 1's contact is erased; its worker wrote the send's event and then stopped.
    let erased = ContactId::new("erased:ks1-1");
    store
        .erase_subject(&jobs[1].contact, &erased)
        .await
        .unwrap();
    let event = Event {
        id: EventId::derived(jobs[1].key.as_str(), "sent"),
        at: now,
        contact: jobs[1].contact.clone(),
        campaign: Some(jobs[1].campaign.clone()),
        variant: Some(a.clone()),
        step: Some(0),
        kind: EventKind::Sent,
    };
    store
        .append_events(std::slice::from_ref(&event))
        .await
        .unwrap();
    let campaign = jobs[0].campaign.clone();
    assert_eq!(
        store
            .cancel_campaign_jobs(&campaign, t(-49_985))
            .await
            .unwrap(),
        4
    );

    assert_eq!(
        store.close_abandoned_sends(t(-49_975)).await.unwrap(),
        0,
        "no lease has run out"
    );
    for job in [&jobs[0], &jobs[1], &jobs[3]] {
        let left = store.job(&job.key).await.unwrap().unwrap();
        assert!(left.send_in_flight(), "{}", job.key);
    }
    // Jobs 0 and 1 are past their lease, job 3 is not: it is left, and they may be closed now
    // or with it (the SQL stores wait for a campaign's last lease).
    let early = store.close_abandoned_sends(t(-49_950)).await.unwrap();
    assert!(early == 0 || early == 2, "{early}");
    let left = store.job(&jobs[3].key).await.unwrap().unwrap();
    assert!(left.send_in_flight(), "a live lease is left to its worker");

    let lapsed = t(-49_000);
    assert_eq!(
        early + store.close_abandoned_sends(lapsed).await.unwrap(),
        3,
        "each abandoned send is closed once its lease has run out"
    );
    for job in &jobs {
        let closed = store.job(&job.key).await.unwrap().unwrap();
        assert_eq!(
            (closed.state, closed.outcome.as_deref(), closed.lease_until),
            (JobState::Cancelled, Some(CAMPAIGN_ABORTED), None),
            "{}",
            job.key
        );
        assert!(!closed.send_in_flight());
    }
    assert!(
        store
            .contact_events(&jobs[1].contact)
            .await
            .unwrap()
            .is_empty(),
        "nothing is left under the erased id"
    );
    assert!(
        store
            .contact_events(&erased)
            .await
            .unwrap()
            .iter()
            .any(|e| e.id == event.id),
        "the send's event went to the replacement"
    );
    let running = store.job(&other[0].key).await.unwrap().unwrap();
    assert_eq!(
        (running.state, running.outcome.as_deref()),
        (JobState::Claimed, Some(SEND_IN_FLIGHT)),
        "a send in flight of a campaign that was not aborted is left to the next claim"
    );

    assert_eq!(
        store.close_abandoned_sends(lapsed).await.unwrap(),
        0,
        "nothing is closed twice"
    );
    assert_eq!(
        store.cancel_campaign_jobs(&campaign, lapsed).await.unwrap(),
        0,
        "nor left for a second cancellation"
    );
    assert!(
        matches!(
            store
                .update_job(
                    &jobs[0].key,
                    jobs[0].claim_token,
                    &JobUpdate::Sent { message_id: 31 },
                    lapsed
                )
                .await,
            Err(Error::LeaseLost(_))
        ),
        "a result that comes after the sweep is refused"
    );
    let counts = store.job_counts(&campaign).await.unwrap();
    assert_eq!((counts.sent, counts.cancelled), (0, 4));

    // The other campaign is aborted too, with nothing in flight left once it is: its lapsed
    // send is closed by the cancellation itself, and the sweep finds nothing.
    assert_eq!(
        store
            .cancel_campaign_jobs(&other[0].campaign, lapsed)
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.close_abandoned_sends(t(-40_000)).await.unwrap(), 0);
}

/// A send attempt is refused while its campaign does not run, with the campaign's state, and
/// writes nothing; once the campaign runs again it is recorded.
pub(super) async fn attempts_need_a_running_campaign<S: Store + ?Sized>(store: &S) {
    use crate::VariantId;
    let jobs = claimed(store, "kr1", 1).await;
    let job = &jobs[0];
    let now = t(-49_000);
    let mut campaign = store.campaign(&job.campaign).await.unwrap().unwrap();
    for state in [
        CampaignState::Paused,
        CampaignState::Completed,
        CampaignState::Aborted,
    ] {
        campaign.state = state;
        store.update_campaign(&campaign).await.unwrap();
        match store
            .record_attempt(&job.key, job.claim_token, &VariantId::new("A"), 1.0, now)
            .await
        {
            Err(Error::CampaignNotRunning {
                campaign: id,
                state: found,
            }) => {
                assert_eq!((id.as_str(), found), ("kr1", state));
            }
            other => panic!("an attempt of a {state} campaign: {other:?}"),
        }
        let stored = store.job(&job.key).await.unwrap().unwrap();
        assert_eq!(
            (stored.state, stored.variant, stored.outcome),
            (JobState::Claimed, None, None),
            "a refused attempt writes nothing"
        );
    }
    campaign.state = CampaignState::Running;
    store.update_campaign(&campaign).await.unwrap();
    let mut stale = job.clone();
    stale.claim_token += 1;
    assert!(
        matches!(
            store
                .record_attempt(
                    &stale.key,
                    stale.claim_token,
                    &VariantId::new("A"),
                    1.0,
                    now
                )
                .await,
            Err(Error::LeaseLost(_))
        ),
        "another claim's attempt is refused for its claim"
    );
    store
        .record_attempt(&job.key, job.claim_token, &VariantId::new("A"), 1.0, now)
        .await
        .unwrap();
    assert!(store.job(&job.key).await.unwrap().unwrap().send_in_flight());
}

/// Every campaign's [`job_groups`](crate::OutboxStore::job_groups) (what a status report
/// reads) group exactly its jobs, [`jobs_in`](crate::OutboxStore::jobs_in) finds exactly
/// its jobs in each state, [`jobs_page`](crate::OutboxStore::jobs_page) walks them all and
/// [`existing_keys`](crate::OutboxStore::existing_keys) finds their keys, over the jobs every
/// earlier check left in every state.
pub(super) async fn job_groups_match_the_jobs<S: Store + ?Sized>(store: &S) {
    // Three retries with one reason: two with an attempt counted (due at -40,000 and
    // -41,000), one without (due at -42,000). They are two groups, told apart only by
    // `retried`.
    let retries = claimed(store, "kg1", 3).await;
    let updates: Vec<_> = retries
        .iter()
        .zip([(true, -40_000), (true, -41_000), (false, -42_000)])
        .map(|(job, (count_attempt, due))| {
            let retry = JobUpdate::Retry {
                due_at: t(due),
                count_attempt,
                reason: "flood_wait".into(),
            };
            (job, retry)
        })
        .collect();
    assert!(
        store
            .update_jobs(&updates, t(-49_990))
            .await
            .unwrap()
            .is_empty()
    );
    let mut groups = store.job_groups(&retries[0].campaign).await.unwrap();
    groups.sort_by_key(|g| g.retried);
    let pending = |retried: bool, jobs: u64, earliest_due: jiff::Timestamp| crate::JobGroup {
        state: JobState::Pending,
        outcome: Some("flood_wait".into()),
        retried,
        variant: None,
        step: 0,
        jobs,
        earliest_due,
    };
    assert_eq!(
        groups,
        [pending(false, 1, t(-42_000)), pending(true, 2, t(-41_000))]
    );

    // Visits of one journey position in two occurrences of a recurring campaign share a
    // group; a decision record keeps its own.
    let mut recurring = running_campaign("kg2");
    recurring.state = CampaignState::Draft;
    store.insert_campaign(&recurring).await.unwrap();
    recurring.state = CampaignState::Running;
    let position = |occurrence| crate::JourneyPosition {
        round: 0,
        index: 1,
        occurrence,
    };
    let visits = [
        ("r1", position(2).step()),
        ("r2", position(3).step()),
        ("r1", position(1).decision_step()),
    ];
    let jobs: Vec<NewJob> = visits
        .iter()
        .map(|&(who, step)| {
            let contact = ContactId::new(who);
            NewJob {
                key: IdempotencyKey::for_job(&recurring.id, &contact, step),
                contact,
                purpose: Purpose::marketing(),
                step,
                // Long after every other check's jobs: nothing claims them.
                due_at: t(1_000_000),
                skipped: None,
            }
        })
        .collect();
    store.schedule(&recurring, &jobs).await.unwrap();
    let mut groups = store.job_groups(&recurring.id).await.unwrap();
    groups.sort_by_key(|g| g.step);
    let visit = |step: u32, jobs: u64| crate::JobGroup {
        state: JobState::Pending,
        outcome: None,
        retried: false,
        variant: None,
        step,
        jobs,
        earliest_due: t(1_000_000),
    };
    assert_eq!(
        groups,
        [
            visit(position(0).step(), 2),
            visit(position(0).decision_step(), 1)
        ]
    );

    // Keys of any text page in byte order: the empty key, capitals before small letters,
    // and a letter outside ASCII after them all.
    let mut odd_keys = running_campaign("kg3");
    odd_keys.state = CampaignState::Draft;
    store.insert_campaign(&odd_keys).await.unwrap();
    odd_keys.state = CampaignState::Running;
    let jobs: Vec<NewJob> = ["é", "ab", "", "Z", "a"]
        .into_iter()
        .enumerate()
        .map(|(i, key)| NewJob {
            key: IdempotencyKey::new(key),
            contact: ContactId::new(format!("o{i}")),
            purpose: Purpose::marketing(),
            step: 0,
            due_at: t(1_000_000),
            skipped: None,
        })
        .collect();
    store.schedule(&odd_keys, &jobs).await.unwrap();
    let keys: Vec<String> = store
        .jobs(&odd_keys.id)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.key.to_string())
        .collect();
    assert_eq!(keys, ["", "Z", "a", "ab", "é"]);

    let sorted = |mut groups: Vec<crate::JobGroup>| {
        groups.sort_by(|a, b| {
            let key = |g: &crate::JobGroup| {
                (
                    g.state,
                    g.outcome.clone(),
                    g.retried,
                    g.variant.clone(),
                    g.step,
                )
            };
            key(a).cmp(&key(b))
        });
        groups
    };
    let mut seen = std::collections::BTreeSet::new();
    let (mut retried, mut with_variant, mut later_steps) = (0, 0, 0);
    for campaign in store.campaigns().await.unwrap() {
        let jobs = store.jobs(&campaign.id).await.unwrap();
        let expected = sorted(crate::store::group_jobs(&jobs));
        let found = sorted(store.job_groups(&campaign.id).await.unwrap());
        assert_eq!(found, expected, "{}", campaign.id);
        assert_eq!(
            found.iter().map(|g| g.jobs).sum::<u64>(),
            jobs.len() as u64,
            "{}",
            campaign.id
        );
        for state in [
            JobState::Pending,
            JobState::Claimed,
            JobState::Held,
            JobState::Sent,
            JobState::Skipped,
            JobState::DeadLetter,
            JobState::Cancelled,
        ] {
            let mut of_state = jobs.clone();
            of_state.retain(|j| j.state == state);
            assert_eq!(
                store.jobs_in(&campaign.id, state).await.unwrap(),
                of_state,
                "{} {state:?}",
                campaign.id,
            );
        }
        // Pages of two walk the campaign's jobs in key order, and end with a short page.
        let mut walked: Vec<Job> = Vec::new();
        loop {
            let after = walked.last().map(|j| j.key.clone());
            let page = store
                .jobs_page(&campaign.id, after.as_ref(), 2)
                .await
                .unwrap();
            // At most two, unless the store answers everything left at once (the default).
            let rest = jobs.len() - walked.len();
            assert!(page.len() <= 2 || page.len() == rest, "{}", campaign.id);
            let last = page.len() < 2;
            walked.extend(page);
            if last {
                break;
            }
        }
        assert_eq!(walked, jobs, "{}", campaign.id);
        let everything = store
            .jobs_page(&campaign.id, None, usize::MAX)
            .await
            .unwrap();
        assert_eq!(everything, jobs, "{}", campaign.id);
        // Every key of the campaign exists, each named once however often it is asked for; a
        // key of no job does not.
        let mut asked: Vec<IdempotencyKey> = jobs.iter().map(|j| j.key.clone()).collect();
        asked.extend(jobs.first().map(|j| j.key.clone()));
        asked.push(IdempotencyKey::new("no-such-job"));
        asked.reverse();
        let mut keys: Vec<IdempotencyKey> = jobs.iter().map(|j| j.key.clone()).collect();
        keys.sort();
        assert_eq!(
            store.existing_keys(&asked).await.unwrap(),
            keys,
            "{}",
            campaign.id
        );
        seen.extend(found.iter().map(|g| g.state));
        retried += found.iter().filter(|g| g.retried).count();
        with_variant += found.iter().filter(|g| g.variant.is_some()).count();
        later_steps += found.iter().filter(|g| g.step != 0).count();
    }
    for state in [
        JobState::Pending,
        JobState::Sent,
        JobState::Skipped,
        JobState::DeadLetter,
        JobState::Cancelled,
    ] {
        assert!(seen.contains(&state), "no {state:?} job to group: {seen:?}");
    }
    // Keys of every campaign at once.
    let mut every_key: Vec<IdempotencyKey> = Vec::new();
    for campaign in store.campaigns().await.unwrap() {
        let jobs = store.jobs(&campaign.id).await.unwrap();
        every_key.extend(jobs.into_iter().map(|j| j.key));
    }
    every_key.sort();
    let mut asked = every_key.clone();
    asked.push(IdempotencyKey::new("no-such-job"));
    asked.reverse();
    assert_eq!(store.existing_keys(&asked).await.unwrap(), every_key);
    assert!(store.existing_keys(&[]).await.unwrap().is_empty());
    assert!(
        store
            .jobs_page(&CampaignId::new("k-none"), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(retried > 0, "no job with a counted attempt to group");
    assert!(with_variant > 0, "no job with a variant to group");
    assert!(later_steps > 0, "no job of a later step to group");
}

/// Pages of two, then of one, over a campaign of five jobs: two, two, one; then five of one.
pub(super) async fn jobs_pages_keep_their_limit<S: Store + ?Sized>(store: &S) {
    let jobs = claimed(store, "k-pages", 5).await;
    let mut keys: Vec<IdempotencyKey> = jobs.iter().map(|j| j.key.clone()).collect();
    keys.sort();
    let campaign = CampaignId::new("k-pages");
    for limit in [2, 1] {
        let mut walked: Vec<IdempotencyKey> = Vec::new();
        let mut sizes = Vec::new();
        loop {
            let page = store
                .jobs_page(&campaign, walked.last(), limit)
                .await
                .unwrap();
            sizes.push(page.len());
            walked.extend(page.into_iter().map(|j| j.key));
            if sizes.last() < Some(&limit) {
                break;
            }
        }
        assert_eq!(walked, keys, "pages of {limit}");
        let expected: &[usize] = if limit == 2 {
            &[2, 2, 1]
        } else {
            &[1, 1, 1, 1, 1, 0]
        };
        assert_eq!(sizes, expected, "pages of {limit}");
    }
}
