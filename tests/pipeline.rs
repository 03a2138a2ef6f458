//! The pipeline end to end on embedded defaults: consent, STOP, retries, dead letters, spam
//! pauses, crash recovery, and reports that account for everyone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use mia::analytics::{CampaignReport, Collector};
use mia::telegram::{Scripted, SimConfig, SimTelegram};
use mia::*;

fn noon() -> Timestamp {
    "2026-12-01T12:00:00Z".parse().unwrap()
}

struct World {
    agent: Agent,
    telegram: SimTelegram,
    store: Arc<dyn Store>,
    consented: BTreeSet<ContactId>,
    everyone: Vec<Contact>,
}

fn sim_config(seed: u64) -> SimConfig {
    SimConfig {
        deactivated_share: 0.0,
        blocked_share: 0.0,
        ..SimConfig::seeded(seed)
    }
}

/// `n` contacts in UTC; every other one has marketing consent.
async fn world(
    n: i64,
    store: Arc<dyn Store>,
    clock: Arc<SimClock>,
    telegram: SimTelegram,
) -> World {
    let sink: Arc<dyn EventSink> = Arc::new(Collector::new(store.clone()));
    let agent = Agent::builder(TemplateProvider::new(), telegram.clone())
        .shared_store(store.clone())
        .shared_event_sink(sink)
        .permissive_policies()
        .clock(clock.clone())
        .seed(7)
        .build()
        .unwrap();
    let everyone: Vec<Contact> = (0..n)
        .map(|i| {
            Contact::new(format!("u{i:04}"), TelegramPeer::user(i + 1), "UTC", noon()).unwrap()
        })
        .collect();
    agent.import_contacts(&everyone).await.unwrap();
    let mut consented = BTreeSet::new();
    let mut grants = Vec::new();
    for c in everyone.iter().step_by(2) {
        consented.insert(c.id.clone());
        let ev = Evidence::new("telegram_start", format!("test {}", c.id));
        grants.push(ConsentRecord::grant(
            c.id.clone(),
            Purpose::marketing(),
            ev,
            "v1",
            noon() - SignedDuration::from_hours(1),
        ));
    }
    agent.record_consent(&grants).await.unwrap();
    World {
        agent,
        telegram,
        store,
        consented,
        everyone,
    }
}

async fn memory_world(n: i64) -> (World, Arc<SimClock>) {
    let clock = Arc::new(SimClock::starting_at(noon()));
    let telegram = SimTelegram::new(sim_config(1), clock.clone()).unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    (world(n, store, clock.clone(), telegram).await, clock)
}

async fn launch(agent: &Agent) -> Campaign {
    let mut spec = CampaignSpec::new("Spring", "green tea", "20% off this week");
    spec.call_to_action_url = Some("https://shop.example/tea".into());
    let campaign = agent.create_campaign(spec).await.unwrap();
    assert_eq!(campaign.state, CampaignState::Approved);
    agent.schedule(&campaign.id, None).await.unwrap();
    agent.start(&campaign.id).await.unwrap()
}

/// Campaign posts per peer, from the simulator's own log.
fn campaign_posts(tg: &SimTelegram) -> BTreeMap<i64, usize> {
    let mut out = BTreeMap::new();
    for m in tg.sent_log().iter().filter(|m| m.campaign.is_some()) {
        *out.entry(m.peer.id).or_default() += 1;
    }
    out
}

#[tokio::test(start_paused = true)]
async fn only_consented_contacts_get_a_message_and_stop_works_mid_campaign() {
    let (w, clock) = memory_world(400).await;
    let campaign = launch(&w.agent).await;

    // Ten consented contacts whose jobs come last send STOP one second in, mid-campaign.
    let jobs = w.store.jobs(&campaign.id).await.unwrap();
    let mut queued: Vec<_> = jobs
        .iter()
        .filter(|j| j.state == JobState::Pending)
        .collect();
    queued.sort_by(|a, b| (a.due_at, &a.key).cmp(&(b.due_at, &b.key)));
    let stoppers: Vec<&Contact> = queued[queued.len() - 10..]
        .iter()
        .map(|j| w.everyone.iter().find(|c| c.id == j.contact).unwrap())
        .collect();
    for c in &stoppers {
        w.telegram.push_inbound(
            c.peer,
            InboundKind::Text {
                text: "STOP".into(),
                reply_to: None,
            },
            clock.now() + SignedDuration::from_secs(1),
        );
    }
    w.agent.run_until_idle().await.unwrap();

    let posts = campaign_posts(&w.telegram);
    for c in &w.everyone {
        let got = posts.get(&c.peer.id).copied().unwrap_or(0);
        let stopped = stoppers.iter().any(|s| s.id == c.id);
        let expected = usize::from(w.consented.contains(&c.id) && !stopped);
        assert_eq!(got, expected, "contact {} (stopped: {stopped})", c.id);
    }
    // Each STOP got exactly one confirmation, a service reply outside any campaign.
    let confirmations = w
        .telegram
        .sent_log()
        .into_iter()
        .filter(|m| m.campaign.is_none())
        .count();
    assert_eq!(confirmations, 10);
    let report = CampaignReport::build(w.store.as_ref(), &campaign.id)
        .await
        .unwrap();
    assert_eq!(report.cancelled.get("withdrawn"), Some(&10));
    assert_eq!(report.skipped.get("no_consent"), Some(&200));
    assert_eq!(report.sent, 190);
    assert!(report.accounts_for_everyone());
    assert_eq!(
        w.store.campaign(&campaign.id).await.unwrap().unwrap().state,
        CampaignState::Completed
    );
    // The withdrawal is in the ledger with its evidence.
    let history = w.store.consent_history(&stoppers[0].id).await.unwrap();
    assert_eq!(history.last().unwrap().status, ConsentStatus::Withdrawn);
    assert_eq!(history.last().unwrap().evidence.method, "stop_keyword");
}

#[tokio::test(start_paused = true)]
async fn start_grants_consent_with_evidence_and_later_campaigns_reach_them() {
    let (w, clock) = memory_world(4).await;
    // u0001 never consented; they press /start.
    let newcomer = w.everyone[1].clone();
    assert!(!w.consented.contains(&newcomer.id));
    w.telegram.push_inbound(
        newcomer.peer,
        InboundKind::Command {
            name: "start".into(),
            payload: String::new(),
        },
        clock.now(),
    );
    w.agent.poll_inbound().await.unwrap();
    let history = w.store.consent_history(&newcomer.id).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].evidence.method, "telegram_start");
    assert!(history[0].evidence.reference.contains("update=sim-"));
    // A stranger pressing /start becomes a contact with consent.
    w.telegram.push_inbound(
        TelegramPeer::user(999),
        InboundKind::Command {
            name: "start".into(),
            payload: "marketing".into(),
        },
        clock.now(),
    );
    w.agent.poll_inbound().await.unwrap();
    let stranger = w
        .store
        .contact_by_peer(&TelegramPeer::user(999))
        .await
        .unwrap()
        .unwrap();

    let campaign = launch(&w.agent).await;
    w.agent.run_until_idle().await.unwrap();
    let posts = campaign_posts(&w.telegram);
    assert_eq!(posts.get(&newcomer.peer.id), Some(&1));
    assert_eq!(posts.get(&999), Some(&1));
    let report = CampaignReport::build(w.store.as_ref(), &campaign.id)
        .await
        .unwrap();
    assert_eq!((report.audience, report.sent), (5, 4));
    assert!(w.store.consent_history(&stranger.id).await.unwrap().len() == 1);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_and_permanent_failures_are_dead_letters() {
    let (w, clock) = memory_world(6).await;
    let slow = w.everyone[0].clone(); // consented
    let gone = w.everyone[2].clone(); // consented
    let flaky = w.everyone[4].clone(); // consented
    let wait = Duration::from_secs(90);
    w.telegram.script(
        slow.peer,
        [Scripted::Outcome(SendOutcome::RetryAfter {
            after: wait,
            reason: "FLOOD_WAIT_90".into(),
        })],
    );
    w.telegram.script(
        gone.peer,
        [Scripted::Outcome(SendOutcome::Failed(
            FailureReason::Deactivated,
        ))],
    );
    w.telegram
        .script(flaky.peer, [Scripted::Outage, Scripted::Outage]);
    let started = clock.now();
    let campaign = launch(&w.agent).await;
    let stats = w.agent.run_until_idle().await.unwrap();

    let log = w.telegram.sent_log();
    let slow_post = log.iter().find(|m| m.peer == slow.peer).unwrap();
    assert!(
        slow_post.at >= started + SignedDuration::from_secs(90),
        "sent at {} before the retry-after",
        slow_post.at
    );
    assert!(log.iter().all(|m| m.peer != gone.peer));
    assert!(
        log.iter().any(|m| m.peer == flaky.peer),
        "two outages, then delivered"
    );
    assert_eq!(stats.retried, 3);

    let job = w
        .store
        .job(&IdempotencyKey::for_job(&campaign.id, &gone.id, 0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.state, JobState::DeadLetter);
    assert_eq!(job.outcome.as_deref(), Some("deactivated"));
    let events = w.store.contact_events(&gone.id).await.unwrap();
    assert!(events.iter().any(|e| e.kind
        == EventKind::Failed {
            reason: "deactivated".into()
        }));
    let report = CampaignReport::build(w.store.as_ref(), &campaign.id)
        .await
        .unwrap();
    assert_eq!(report.failed.get("deactivated"), Some(&1));
    assert_eq!(report.sent, 2);
    assert!(report.accounts_for_everyone());
}

#[tokio::test(start_paused = true)]
async fn out_of_attempts_goes_to_the_dead_letter_queue() {
    let (w, _) = memory_world(2).await;
    let c = w.everyone[0].clone();
    w.telegram
        .script(c.peer, std::iter::repeat_n(Scripted::Outage, 20));
    let campaign = launch(&w.agent).await;
    w.agent.run_until_idle().await.unwrap();
    let job = w
        .store
        .job(&IdempotencyKey::for_job(&campaign.id, &c.id, 0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.state, JobState::DeadLetter);
    assert_eq!(job.attempts, RetryPolicy::default().max_attempts - 1);
    assert!(job.outcome.unwrap().contains("simulated transient failure"));
    assert!(w.telegram.sent_log().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_spam_signal_pauses_the_campaign_and_nothing_moves_elsewhere() {
    let (w, _) = memory_world(40).await;
    let first = w.everyone[0].clone();
    w.telegram.script(
        first.peer,
        [Scripted::Outcome(SendOutcome::Failed(
            FailureReason::SpamLimited,
        ))],
    );
    let campaign = launch(&w.agent).await;
    let stats = w.agent.run_until_idle().await.unwrap();
    assert_eq!(stats.paused_for_spam, 1);
    let c = w.store.campaign(&campaign.id).await.unwrap().unwrap();
    assert_eq!(c.state, CampaignState::Paused);
    assert!(c.state_reason.unwrap().contains("PEER_FLOOD"));
    let counts = w.store.job_counts(&campaign.id).await.unwrap();
    assert!(counts.pending > 0, "the rest waits for a human");
    let health = w.agent.account_health();
    assert!(health.spam_limited && health.score == 0, "{health:?}");
    let sent_before = w.telegram.sent_log().len();
    // A human resumes; the rest goes out, each exactly once.
    w.agent.resume(&campaign.id).await.unwrap();
    w.agent.run_until_idle().await.unwrap();
    assert!(w.telegram.sent_log().len() > sent_before);
    assert!(campaign_posts(&w.telegram).values().all(|n| *n == 1));
    assert_eq!(campaign_posts(&w.telegram).len(), 20);
}

#[tokio::test(start_paused = true)]
async fn a_crash_between_send_and_outbox_update_neither_loses_nor_doubles() {
    let (w, clock) = memory_world(100).await;
    let campaign = launch(&w.agent).await;
    // A worker that will "crash": it claims jobs, posts some, and dies before recording them.
    let doomed = w
        .store
        .claim("doomed", clock.now(), SignedDuration::from_secs(60), 20)
        .await
        .unwrap();
    assert_eq!(doomed.len(), 20);
    for job in &doomed[..12] {
        let contact = w.store.contact(&job.contact).await.unwrap().unwrap();
        let message = OutboundMessage::new(
            job.key.clone(),
            contact.id.clone(),
            contact.peer,
            "posted by the worker that crashed",
        )
        .with_campaign(campaign.id.clone())
        .with_variant(VariantId::new("A"));
        assert!(matches!(
            w.telegram.send(&message).await.unwrap(),
            SendOutcome::Sent { .. }
        ));
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    // A fresh agent on the same store picks everything up once the leases expire.
    let again = Agent::builder(TemplateProvider::new(), w.telegram.clone())
        .shared_store(w.store.clone())
        .permissive_policies()
        .clock(clock.clone())
        .worker_id("worker-2")
        .build()
        .unwrap();
    drop(w.agent);
    again.run_until_idle().await.unwrap();
    let posts = campaign_posts(&w.telegram);
    assert_eq!(posts.len(), 50, "every consented contact");
    assert!(posts.values().all(|n| *n == 1), "nobody twice");
    let report = CampaignReport::build(w.store.as_ref(), &campaign.id)
        .await
        .unwrap();
    assert_eq!(report.sent, 50);
    assert_eq!(report.open, 0);
}

#[tokio::test(start_paused = true)]
async fn reactions_become_attributed_events() {
    let (w, clock) = memory_world(200).await;
    let campaign = launch(&w.agent).await;
    w.agent.run_until_idle().await.unwrap();
    w.agent
        .process_inbound_until(clock.now() + SignedDuration::from_hours(72))
        .await
        .unwrap();
    let report = CampaignReport::build(w.store.as_ref(), &campaign.id)
        .await
        .unwrap();
    let total =
        |f: fn(&analytics::VariantReport) -> u64| report.variants.values().map(f).sum::<u64>();
    assert_eq!(total(|v| v.sent), 100);
    let delivered = total(|v| v.delivered);
    let read = total(|v| v.read);
    assert!((90..=100).contains(&delivered), "delivered {delivered}");
    assert!(read > 40 && read < delivered, "read {read}");
    assert!(total(|v| v.clicked) < read);
    let events = w.store.campaign_events(&campaign.id).await.unwrap();
    assert!(
        events
            .iter()
            .filter(|e| e.kind.name() == "read")
            .all(|e| e.variant.is_some())
    );
}

#[tokio::test]
async fn an_agent_without_a_send_policy_does_not_build() {
    let clock = Arc::new(SimClock::starting_at(noon()));
    let tg = SimTelegram::new(SimConfig::default(), clock).unwrap();
    let err = Agent::builder(TemplateProvider::new(), tg)
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)));
    assert!(err.to_string().contains("send policy"));
}

async fn guarded_agent() -> (Agent, SimTelegram, Arc<SimClock>) {
    let clock = Arc::new(SimClock::starting_at(noon()));
    let telegram = SimTelegram::new(sim_config(3), clock.clone()).unwrap();
    let agent = Agent::builder(TemplateProvider::new(), telegram.clone())
        .content_policy(
            mia::safety::ContentGuard::builder()
                .allow_domain("shop.example")
                .build()
                .unwrap(),
        )
        .send_policy(mia::safety::SendGuard::builder().build().unwrap())
        .clock(clock.clone())
        .build()
        .unwrap();
    (agent, telegram, clock)
}

#[tokio::test(start_paused = true)]
async fn risky_copy_waits_for_a_human_who_can_approve_edit_or_reject() {
    let (agent, _, _) = guarded_agent().await;
    let mut spec = CampaignSpec::new("Detox", "our detox tea", "guaranteed results in a week");
    spec.variant_count = 3;
    let campaign = agent.create_campaign(spec).await.unwrap();
    assert_eq!(campaign.state, CampaignState::InReview);
    let reviews = agent.pending_reviews().await.unwrap();
    assert_eq!(reviews.len(), 3);
    assert!(
        reviews
            .iter()
            .all(|r| r.trace.iter().any(|h| h.rule == "risky_claims"))
    );
    assert!(
        matches!(
            agent.schedule(&campaign.id, None).await,
            Err(Error::InvalidTransition {
                from: CampaignState::InReview,
                ..
            })
        ),
        "nothing is queued while copy waits for review"
    );

    // An edit that still makes the claim is refused, with the rule.
    let err = agent
        .edit_review(
            &reviews[0].id,
            "ana",
            "Guaranteed results! Reply STOP to unsubscribe.",
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("risky_claims"), "{err}");
    let c = agent
        .edit_review(
            &reviews[0].id,
            "ana",
            "Our detox tea, 10% off this week. Reply STOP to unsubscribe.",
        )
        .await
        .unwrap();
    assert_eq!(c.state, CampaignState::InReview, "two items still wait");
    agent
        .reject_review(&reviews[1].id, "ana", "overpromises")
        .await
        .unwrap();
    assert!(
        agent.approve_review(&reviews[1].id, "ana").await.is_err(),
        "decided items stay decided"
    );
    let c = agent
        .reject_review(&reviews[2].id, "ana", "overpromises")
        .await
        .unwrap();
    assert_eq!(c.state, CampaignState::Approved);
    let approved: Vec<_> = c.approved_variants().map(|v| v.text.as_str()).collect();
    assert_eq!(
        approved,
        ["Our detox tea, 10% off this week. Reply STOP to unsubscribe."]
    );
    assert!(agent.pending_reviews().await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn copy_the_guard_denies_is_never_sent_and_an_all_denied_campaign_aborts() {
    let (agent, _, _) = guarded_agent().await;
    let mut spec = CampaignSpec::new("Short links", "tea", "20% off");
    spec.call_to_action_url = Some("https://bit.ly/xyz".into());
    let c = agent.create_campaign(spec).await.unwrap();
    assert_eq!(c.state, CampaignState::Aborted);
    assert!(
        c.variants
            .iter()
            .all(|v| v.status == VariantStatus::Rejected)
    );
    assert!(
        c.variants[0]
            .trace
            .iter()
            .any(|h| h.rule == "links" && h.decision == Decision::Deny)
    );
}

#[tokio::test(start_paused = true)]
async fn quiet_hours_defer_to_the_contacts_own_morning() {
    let (agent, telegram, clock) = guarded_agent().await;
    // Noon UTC is 21:00 in Tokyo: quiet until 09:00 local, 00:00 UTC.
    let tokyo = Contact::new("t", TelegramPeer::user(81), "Asia/Tokyo", noon()).unwrap();
    let berlin = Contact::new("b", TelegramPeer::user(49), "Europe/Berlin", noon()).unwrap();
    agent
        .import_contacts(&[tokyo.clone(), berlin.clone()])
        .await
        .unwrap();
    let ev = Evidence::new("telegram_start", "x");
    agent
        .record_consent(&[
            ConsentRecord::grant("t", Purpose::marketing(), ev.clone(), "v1", noon()),
            ConsentRecord::grant("b", Purpose::marketing(), ev, "v1", noon()),
        ])
        .await
        .unwrap();
    let mut spec = CampaignSpec::new("Tea", "tea", "20% off");
    spec.call_to_action_url = Some("https://shop.example/t".into());
    let c = agent.create_campaign(spec).await.unwrap();
    agent.schedule(&c.id, None).await.unwrap();
    agent.start(&c.id).await.unwrap();
    let stats = agent.run_until_idle().await.unwrap();
    assert_eq!(stats.sent, 2);
    assert_eq!(stats.deferred.get("quiet_hours"), Some(&1));
    let log = telegram.sent_log();
    let at = |peer: i64| log.iter().find(|m| m.peer.id == peer).unwrap().at;
    assert!(at(49) < noon() + SignedDuration::from_mins(1));
    let tokyo_morning: Timestamp = "2026-12-02T00:00:00Z".parse().unwrap();
    assert!(
        at(81) >= tokyo_morning && at(81) < tokyo_morning + SignedDuration::from_mins(1),
        "{}",
        at(81)
    );
    assert!(clock.now() >= tokyo_morning);
}

#[tokio::test]
async fn a_crash_mid_campaign_on_sqlite_resumes_with_nothing_lost_or_doubled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mia.db");
    // Virtual time that moves only when the agent waits: SQLite's driver thread must not be
    // mistaken for idleness.
    let clock = Arc::new(VirtualClock::starting_at(noon()));
    let telegram = SimTelegram::new(sim_config(5), clock.clone()).unwrap();
    let campaign;
    {
        let store: Arc<dyn Store> = Arc::new(mia::store::SqliteStore::open(&path).await.unwrap());
        let w = world(
            300,
            store.clone(),
            Arc::new(SimClock::starting_at(noon())),
            telegram.clone(),
        )
        .await;
        // The world's agent used its own clock for setup; the run uses the virtual one.
        let agent = Agent::builder(TemplateProvider::new(), telegram.clone())
            .shared_store(store.clone())
            .permissive_policies()
            .clock(clock.clone())
            .build()
            .unwrap();
        drop(w);
        campaign = launch(&agent).await;
        let first = agent.run_once().await.unwrap();
        assert!(
            first.sent > 0 && first.sent < 150,
            "part of the campaign went out: {}",
            first.sent
        );
        // The worker dies mid-batch: it claimed jobs and posted some, but recorded nothing.
        let doomed = store
            .claim("doomed", clock.now(), SignedDuration::from_secs(60), 10)
            .await
            .unwrap();
        for job in &doomed[..6] {
            let contact = store.contact(&job.contact).await.unwrap().unwrap();
            let message = OutboundMessage::new(
                job.key.clone(),
                contact.id,
                contact.peer,
                "posted just before the crash",
            )
            .with_campaign(campaign.id.clone())
            .with_variant(VariantId::new("A"));
            clock.advance(SignedDuration::from_millis(40));
            assert!(matches!(
                telegram.send(&message).await.unwrap(),
                SendOutcome::Sent { .. }
            ));
        }
        // Crash: everything in memory is gone, Telegram keeps what it got.
    }
    let store: Arc<dyn Store> = Arc::new(mia::store::SqliteStore::open(&path).await.unwrap());
    let agent = Agent::builder(TemplateProvider::new(), telegram.clone())
        .shared_store(store.clone())
        .permissive_policies()
        .clock(clock.clone())
        .worker_id("after-restart")
        .build()
        .unwrap();
    agent.run_until_idle().await.unwrap();

    let posts = campaign_posts(&telegram);
    assert_eq!(posts.len(), 150, "every consented contact, nobody else");
    assert!(posts.values().all(|n| *n == 1), "nobody twice");
    let report = CampaignReport::build(store.as_ref(), &campaign.id)
        .await
        .unwrap();
    assert_eq!((report.sent, report.open), (150, 0));
    assert!(report.accounts_for_everyone());
    assert_eq!(
        store.campaign(&campaign.id).await.unwrap().unwrap().state,
        CampaignState::Completed
    );
    // The peers that only got a consent-free skip never appear in Telegram's log.
    let consented_peers: BTreeSet<i64> = (0..300).step_by(2).map(|i| i + 1).collect();
    assert_eq!(
        posts.keys().copied().collect::<BTreeSet<_>>(),
        consented_peers
    );
}

#[tokio::test(start_paused = true)]
async fn operators_see_status_and_can_requeue_or_discard_dead_letters() {
    let (w, _) = memory_world(6).await;
    let (a, b, c) = (
        w.everyone[0].clone(),
        w.everyone[2].clone(),
        w.everyone[4].clone(),
    );
    w.telegram.script(
        b.peer,
        [Scripted::Outcome(SendOutcome::Failed(
            FailureReason::Other("PEER_ID_INVALID".into()),
        ))],
    );
    let hour = Duration::from_secs(3600);
    w.telegram.script(
        c.peer,
        [Scripted::Outcome(SendOutcome::RetryAfter {
            after: hour,
            reason: "FLOOD_WAIT_3600".into(),
        })],
    );
    let campaign = launch(&w.agent).await;
    w.agent.run_once().await.unwrap();

    let status = w.agent.status(&campaign.id).await.unwrap();
    assert_eq!(status.state, CampaignState::Running);
    assert_eq!(
        (
            status.jobs.sent,
            status.jobs.dead_letter,
            status.jobs.pending
        ),
        (1, 1, 1)
    );
    assert_eq!(status.dead_letters.get("other"), Some(&1));
    assert_eq!(status.waiting.get("FLOOD_WAIT_3600"), Some(&1));
    assert_eq!(status.retrying, 1);
    assert!(status.progress > 0.6 && status.progress < 1.0);

    let dead = w.agent.dead_letters(&campaign.id).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].contact, b.id);
    w.agent.requeue_dead_letter(&dead[0].key).await.unwrap();
    assert!(
        w.agent.discard_dead_letter(&dead[0].key).await.is_err(),
        "no longer a dead letter"
    );
    w.agent.run_until_idle().await.unwrap();
    let posts = campaign_posts(&w.telegram);
    for p in [a.peer.id, b.peer.id, c.peer.id] {
        assert_eq!(posts.get(&p), Some(&1));
    }
    let status = w.agent.status(&campaign.id).await.unwrap();
    assert_eq!(
        (status.state, status.jobs.sent, status.progress),
        (CampaignState::Completed, 3, 1.0)
    );
    // A FloodWait holds every send of the account, not just the one job.
    let log = w.telegram.sent_log();
    let b_at = log.iter().find(|m| m.peer == b.peer).unwrap().at;
    assert!(
        b_at >= noon() + SignedDuration::from_hours(1),
        "requeued send waited out the freeze: {b_at}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_blocks_pauses_every_running_campaign() {
    let clock = Arc::new(SimClock::starting_at(noon()));
    // A bad list: half the recipients blocked the bot long ago.
    let config = SimConfig {
        blocked_share: 0.5,
        deactivated_share: 0.0,
        ..SimConfig::seeded(11)
    };
    let telegram = SimTelegram::new(config, clock.clone()).unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let w = world(400, store, clock, telegram).await;
    let campaign = launch(&w.agent).await;
    let stats = w.agent.run_until_idle().await.unwrap();
    assert_eq!(stats.paused_for_spam, 1);
    let c = w.store.campaign(&campaign.id).await.unwrap().unwrap();
    assert_eq!(c.state, CampaignState::Paused);
    let reason = c.state_reason.unwrap();
    assert!(
        reason.starts_with("10 recipients blocked the sending account against"),
        "{reason}"
    );
    let counts = w.store.job_counts(&campaign.id).await.unwrap();
    assert_eq!(counts.dead_letter, 10, "it stopped at the tenth block");
    assert!(counts.pending > 150, "most of the list was never tried");
}

#[tokio::test(start_paused = true)]
async fn a_stop_in_the_middle_of_a_claimed_batch_is_honoured_before_the_next_send() {
    let clock = Arc::new(SimClock::starting_at(noon()));
    let telegram = SimTelegram::new(sim_config(9), clock.clone()).unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let w = world(120, store.clone(), clock.clone(), telegram.clone()).await;
    // One worker claiming everything in one batch: the STOP must be read between sends.
    let agent = Agent::builder(TemplateProvider::new(), telegram.clone())
        .shared_store(store.clone())
        .permissive_policies()
        .clock(clock.clone())
        .claim_batch(500)
        .build()
        .unwrap();
    let campaign = launch(&agent).await;
    let mut queued: Vec<_> = store
        .jobs(&campaign.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|j| j.state == JobState::Pending)
        .collect();
    queued.sort_by(|a, b| (a.due_at, &a.key).cmp(&(b.due_at, &b.key)));
    let last = w
        .everyone
        .iter()
        .find(|c| c.id == queued.last().unwrap().contact)
        .unwrap();
    // 60 sends at 30 per second take two seconds; the STOP comes after one.
    telegram.push_inbound(
        last.peer,
        InboundKind::Text {
            text: "stop".into(),
            reply_to: None,
        },
        clock.now() + SignedDuration::from_secs(1),
    );
    agent.run_until_idle().await.unwrap();
    let posts = campaign_posts(&telegram);
    assert_eq!(
        posts.get(&last.peer.id),
        None,
        "no campaign message after the STOP"
    );
    assert_eq!(posts.len(), 59);
}

#[tokio::test(start_paused = true)]
async fn reviews_nobody_decides_expire_and_are_never_sent() {
    let (agent, _, clock) = guarded_agent().await;
    let mut spec = CampaignSpec::new("Detox", "our detox tea", "guaranteed results in a week");
    spec.variant_count = 2;
    let campaign = agent.create_campaign(spec).await.unwrap();
    let reviews = agent.pending_reviews().await.unwrap();
    assert_eq!(reviews.len(), 2);
    assert_eq!(
        agent.review_deadline(&reviews[0]),
        reviews[0].created_at + SignedDuration::from_hours(72)
    );
    assert_eq!(agent.expire_reviews().await.unwrap(), 0, "not yet");
    clock
        .sleep_until(clock.now() + SignedDuration::from_hours(72))
        .await;
    // The worker's round expires them.
    agent.run_once().await.unwrap();
    assert!(agent.pending_reviews().await.unwrap().is_empty());
    let item = agent.store().review(&reviews[0].id).await.unwrap().unwrap();
    assert_eq!(
        (item.state, item.reviewer.as_deref()),
        (ReviewState::Rejected, Some("mia:deadline"))
    );
    let c = agent.campaign(&campaign.id).await.unwrap();
    assert_eq!(
        c.state,
        CampaignState::Aborted,
        "no variant was approved in time"
    );
    assert!(
        c.variants
            .iter()
            .all(|v| v.status == VariantStatus::Rejected)
    );
}

#[tokio::test(start_paused = true)]
async fn a_guard_set_to_redact_rewrites_generated_copy_before_it_is_approved() {
    use mia::safety::{ContentGuard, PiiAction, Redaction, SendGuard};
    let clock = Arc::new(SimClock::starting_at(noon()));
    let telegram = SimTelegram::new(sim_config(3), clock.clone()).unwrap();
    let guard = ContentGuard::builder()
        .pii_action(PiiAction::Redact(Redaction::Tag))
        .build()
        .unwrap();
    let agent = Agent::builder(TemplateProvider::new(), telegram)
        .content_policy(guard)
        .send_policy(SendGuard::builder().build().unwrap())
        .clock(clock)
        .build()
        .unwrap();
    // The brief carries someone's phone number by mistake; the copy must not.
    let spec = CampaignSpec::new(
        "Tea",
        "green tea",
        "20% off, questions to Anna at +49 30 1234567",
    );
    let c = agent.create_campaign(spec).await.unwrap();
    assert_eq!(c.state, CampaignState::Approved);
    for v in &c.variants {
        assert!(!v.text.contains("1234567"), "{}", v.text);
        assert!(v.text.contains("<PHONE>"), "{}", v.text);
        assert!(
            v.trace
                .iter()
                .any(|h| h.rule == "pii" && h.detail.contains("redacted"))
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_dead_letter_of_a_completed_campaign_can_still_be_retried() {
    let (w, _) = memory_world(4).await;
    let gone = w.everyone[2].clone(); // consented
    w.telegram.script(
        gone.peer,
        [Scripted::Outcome(SendOutcome::Failed(
            FailureReason::Other("CHAT_RESTRICTED".into()),
        ))],
    );
    let campaign = launch(&w.agent).await;
    w.agent.run_until_idle().await.unwrap();
    assert_eq!(
        w.agent.campaign(&campaign.id).await.unwrap().state,
        CampaignState::Completed
    );
    let dead = w.agent.dead_letters(&campaign.id).await.unwrap();
    assert_eq!(dead.len(), 1);

    w.agent.requeue_dead_letter(&dead[0].key).await.unwrap();
    assert_eq!(
        w.agent.campaign(&campaign.id).await.unwrap().state,
        CampaignState::Running,
        "reopened"
    );
    w.agent.run_until_idle().await.unwrap();
    let c = w.agent.campaign(&campaign.id).await.unwrap();
    assert_eq!(c.state, CampaignState::Completed, "and completed again");
    assert_eq!(campaign_posts(&w.telegram).get(&gone.peer.id), Some(&1));
    // Aborted campaigns stay closed; aborting again only cancels what is left (nothing here).
    w.agent.abort(&campaign.id, "done").await.unwrap();
    let again = w.agent.abort(&campaign.id, "again").await.unwrap();
    assert_eq!(
        (again.state, again.state_reason.as_deref()),
        (CampaignState::Aborted, Some("done")),
        "the first abort's reason stands"
    );
    let err = w.agent.requeue_dead_letter(&dead[0].key).await.unwrap_err();
    assert!(
        matches!(err, Error::InvalidInput(_)) && err.to_string().contains("aborted"),
        "{err}"
    );
}

/// The simulator, declaring that it cannot recognise a resend (as the Bot API).
struct NotIdempotent(SimTelegram);

#[async_trait::async_trait]
impl Transport for NotIdempotent {
    fn name(&self) -> &str {
        "sim-not-idempotent"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            idempotent_sends: false,
            ..self.0.capabilities()
        }
    }
    async fn send(&self, message: &OutboundMessage) -> Result<SendOutcome> {
        self.0.send(message).await
    }
}

#[tokio::test(start_paused = true)]
async fn an_interrupted_send_on_a_transport_that_cannot_deduplicate_is_never_repeated() {
    let (w, clock) = memory_world(20).await;
    let campaign = launch(&w.agent).await;
    // A worker claims two jobs, hands both to the transport (one reaches Telegram) and dies
    // before recording either result.
    let doomed = w
        .store
        .claim("doomed", clock.now(), SignedDuration::from_secs(60), 2)
        .await
        .unwrap();
    for job in &doomed {
        w.store
            .record_attempt(
                &job.key,
                job.claim_token,
                &VariantId::new("A"),
                1.0,
                clock.now(),
            )
            .await
            .unwrap();
    }
    let contact = w.store.contact(&doomed[0].contact).await.unwrap().unwrap();
    let message = OutboundMessage::new(
        doomed[0].key.clone(),
        contact.id.clone(),
        contact.peer,
        "posted by the worker that died",
    )
    .with_campaign(campaign.id.clone())
    .with_variant(VariantId::new("A"));
    w.telegram.send(&message).await.unwrap();
    tokio::time::sleep(Duration::from_secs(61)).await;

    let again = Agent::builder(TemplateProvider::new(), NotIdempotent(w.telegram.clone()))
        .shared_store(w.store.clone())
        .permissive_policies()
        .clock(clock.clone())
        .worker_id("worker-2")
        .build()
        .unwrap();
    drop(w.agent);
    again.run_until_idle().await.unwrap();

    let posts = campaign_posts(&w.telegram);
    assert!(posts.values().all(|n| *n == 1), "nobody twice: {posts:?}");
    assert_eq!(
        posts.len(),
        9,
        "the eight others, and the one that got through before the crash"
    );
    for job in &doomed {
        let job = w.store.job(&job.key).await.unwrap().unwrap();
        assert_eq!(job.state, JobState::DeadLetter, "{job:?}");
        assert_eq!(job.outcome.as_deref(), Some(OUTCOME_UNKNOWN));
    }
    // An operator who checked the chat requeues the one that never arrived: it is sent once.
    let lost = &doomed[1].key;
    again.operator().requeue_dead_letter(lost).await.unwrap();
    again.run_until_idle().await.unwrap();
    assert_eq!(
        w.store.job(lost).await.unwrap().unwrap().state,
        JobState::Sent
    );
    assert!(campaign_posts(&w.telegram).values().all(|n| *n == 1));
}

/// Not idempotent either, and its third send hangs for ever: the worker is stopped there, as
/// by a crash.
struct HangsOnThird(SimTelegram, std::sync::atomic::AtomicUsize);

#[async_trait::async_trait]
impl Transport for HangsOnThird {
    fn name(&self) -> &str {
        "sim-hangs"
    }
    fn capabilities(&self) -> Capabilities {
        // No rate to pace to: the worker never waits for a send slot, so nothing but the
        // transport's lack of idempotent sends makes it write each result at once.
        Capabilities {
            idempotent_sends: false,
            messages_per_second: None,
            ..self.0.capabilities()
        }
    }
    async fn send(&self, message: &OutboundMessage) -> Result<SendOutcome> {
        if self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 2 {
            std::future::pending::<()>().await;
        }
        self.0.send(message).await
    }
}

/// A worker of `w` on a [`HangsOnThird`] transport claims a batch and stops while its third
/// send hangs, as a killed process would (its run is dropped after 30 s of the clock).
async fn stop_mid_send(w: &World, clock: &Arc<SimClock>) {
    let hanging = Agent::builder(
        TemplateProvider::new(),
        HangsOnThird(w.telegram.clone(), std::sync::atomic::AtomicUsize::new(0)),
    )
    .shared_store(w.store.clone())
    .permissive_policies()
    .clock(clock.clone())
    .worker_id("worker-hangs")
    .build()
    .unwrap();
    let stopped = tokio::time::timeout(Duration::from_secs(30), hanging.run_once()).await;
    assert!(stopped.is_err(), "the third send never returns");
}

#[tokio::test(start_paused = true)]
async fn without_idempotent_sends_a_crash_mid_batch_leaves_only_the_send_in_flight_unknown() {
    let (w, clock) = memory_world(20).await;
    let campaign = launch(&w.agent).await;
    stop_mid_send(&w, &clock).await;
    // The two sends before it were written at once: sent, not left in flight.
    let jobs = w.store.jobs(&campaign.id).await.unwrap();
    let sent = jobs.iter().filter(|j| j.state == JobState::Sent).count();
    assert_eq!(sent, 2, "{jobs:?}");
    tokio::time::sleep(Duration::from_secs(61)).await;
    // Another worker finds one send of unknown outcome, not a batch of them.
    let again = Agent::builder(TemplateProvider::new(), NotIdempotent(w.telegram.clone()))
        .shared_store(w.store.clone())
        .permissive_policies()
        .clock(clock.clone())
        .worker_id("worker-2")
        .build()
        .unwrap();
    again.run_until_idle().await.unwrap();
    let dead = again.dead_letters(&campaign.id).await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].outcome.as_deref(), Some(OUTCOME_UNKNOWN));
    let posts = campaign_posts(&w.telegram);
    assert!(posts.values().all(|n| *n == 1), "nobody twice: {posts:?}");
    assert_eq!(
        posts.len(),
        9,
        "every consented contact but the one in flight"
    );
}

#[tokio::test(start_paused = true)]
async fn a_send_in_flight_at_an_abort_whose_worker_stopped_is_closed_by_a_later_batch() {
    let (w, clock) = memory_world(20).await;
    let campaign = launch(&w.agent).await;
    // The operator aborts the campaign within the stopped worker's lease (60 s from its claim).
    stop_mid_send(&w, &clock).await;
    let flying: Vec<Job> = w
        .store
        .jobs(&campaign.id)
        .await
        .unwrap()
        .into_iter()
        .filter(Job::send_in_flight)
        .collect();
    assert_eq!(flying.len(), 1, "{flying:?}");
    w.agent.abort(&campaign.id, "wrong audience").await.unwrap();
    let left = w.store.job(&flying[0].key).await.unwrap().unwrap();
    assert_eq!(left.state, JobState::Cancelled);
    assert!(
        left.send_in_flight(),
        "left to its worker while the lease lasts"
    );

    // A batch within the lease leaves it; the first batch after the lease closes it, with
    // nobody aborting again.
    w.agent.run_once().await.unwrap();
    assert!(
        w.store
            .job(&flying[0].key)
            .await
            .unwrap()
            .unwrap()
            .send_in_flight()
    );
    tokio::time::sleep(Duration::from_secs(61)).await;
    w.agent.run_once().await.unwrap();
    let closed = w.store.job(&flying[0].key).await.unwrap().unwrap();
    assert_eq!(
        (closed.state, closed.outcome.as_deref(), closed.lease_until),
        (JobState::Cancelled, Some(CAMPAIGN_ABORTED), None)
    );
    assert!(
        w.store
            .jobs(&campaign.id)
            .await
            .unwrap()
            .iter()
            .all(|j| !j.send_in_flight()),
        "nothing of the campaign is left in flight"
    );
}

#[tokio::test(start_paused = true)]
async fn a_restarted_agent_with_the_same_seed_does_not_reuse_campaign_ids() {
    let (w, clock) = memory_world(4).await;
    let first = launch(&w.agent).await;
    // The same seed on the same store, as a host restarted with a fixed seed would be.
    let again = Agent::builder(TemplateProvider::new(), w.telegram.clone())
        .shared_store(w.store.clone())
        .permissive_policies()
        .clock(clock.clone())
        .seed(7)
        .build()
        .unwrap();
    let second = launch(&again).await;
    assert_ne!(first.id, second.id);
    assert_eq!(w.store.campaigns().await.unwrap().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_stop_confirmation_is_a_logged_policy_decision_without_its_text() {
    let (w, _) = memory_world(4).await;
    let contact = w.everyone[0].clone();
    w.telegram.user_writes(contact.peer, "STOP");
    w.agent.poll_inbound().await.unwrap();
    let entries = w.store.audit_entries(0, 10_000).await.unwrap();
    let replies: Vec<_> = entries
        .iter()
        .filter(|e| e.action == AuditAction::PolicyDecision && e.detail["kind"] == "service_reply")
        .collect();
    assert_eq!(replies.len(), 1, "{entries:?}");
    assert_eq!(
        replies[0].detail["decision"], "allow",
        "{:?}",
        replies[0].detail
    );
    let logged = serde_json::to_string(&entries).unwrap();
    assert!(
        !logged.contains("unsubscribed"),
        "no message text in the log"
    );
    assert!(
        !logged.contains(contact.id.as_str()),
        "no raw contact id in the log"
    );
}

#[tokio::test]
async fn a_daily_cap_holds_across_restarts_and_campaigns_and_defers_to_the_next_local_day() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mia.db");
    let clock = Arc::new(VirtualClock::starting_at(noon()));
    // Both campaigns write to the same people on the same day: no per-chat retry-after here,
    // so every counted attempt is a send (a retried attempt counts again).
    let mut config = sim_config(9);
    config.limits.per_chat_interval = std::time::Duration::from_millis(1);
    // Nobody stops or blocks: every consented contact gets both campaigns.
    config.behaviour.stop = 0.0;
    config.behaviour.block = 0.0;
    let telegram = SimTelegram::new(config, clock.clone()).unwrap();
    let capped = |store: Arc<dyn Store>, id: &str| {
        Agent::builder(TemplateProvider::new(), telegram.clone())
            .shared_store(store)
            .permissive_policies()
            .clock(clock.clone())
            .worker_id(id)
            .daily_cap(4, "Europe/Berlin")
            .build()
            .unwrap()
    };
    let first;
    {
        let store: Arc<dyn Store> = Arc::new(mia::store::SqliteStore::open(&path).await.unwrap());
        // 20 contacts, 10 with consent.
        drop(
            world(
                20,
                store.clone(),
                Arc::new(SimClock::starting_at(noon())),
                telegram.clone(),
            )
            .await,
        );
        let agent = capped(store, "before-restart");
        first = launch(&agent).await;
        let stats = agent.run_once().await.unwrap();
        assert_eq!(stats.sent, 4, "{stats:?}");
        assert_eq!(stats.deferred.get(DAILY_CAP_RULE), Some(&6));
    }
    // A restarted worker, a second campaign, the same Berlin day: the count survived.
    let store: Arc<dyn Store> = Arc::new(mia::store::SqliteStore::open(&path).await.unwrap());
    let agent = capped(store.clone(), "after-restart");
    let mut spec = CampaignSpec::new("Autumn", "black tea", "10% off");
    spec.call_to_action_url = Some("https://shop.example/black".into());
    let second = agent.create_campaign(spec).await.unwrap();
    agent.schedule(&second.id, None).await.unwrap();
    agent.start(&second.id).await.unwrap();
    let stats = agent.run_once().await.unwrap();
    assert_eq!(stats.sent, 0, "the day's 4 are used: {stats:?}");
    assert_eq!(stats.deferred.get(DAILY_CAP_RULE), Some(&10));

    agent.run_until_idle().await.unwrap();
    let berlin = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
    let mut per_day: BTreeMap<jiff::civil::Date, usize> = BTreeMap::new();
    for m in telegram.sent_log().iter().filter(|m| m.campaign.is_some()) {
        *per_day.entry(berlin.to_datetime(m.at).date()).or_default() += 1;
    }
    assert_eq!(
        per_day.values().sum::<usize>(),
        20,
        "both campaigns, every consented contact"
    );
    assert!(per_day.values().all(|n| *n == 4), "{per_day:?}");
    assert_eq!(per_day.len(), 5);
    // Each later day starts at Berlin midnight (23:00 UTC), not at noon.
    let second_day = telegram
        .sent_log()
        .iter()
        .filter(|m| m.campaign.is_some())
        .map(|m| m.at)
        .filter(|at| berlin.to_datetime(*at).date() > berlin.to_datetime(noon()).date())
        .min()
        .unwrap();
    assert_eq!(
        second_day,
        "2026-12-01T23:00:00Z".parse::<Timestamp>().unwrap()
    );
    for id in [&first.id, &second.id] {
        let report = CampaignReport::build(store.as_ref(), id).await.unwrap();
        assert_eq!((report.sent, report.open), (10, 0));
    }
}

/// The simulator without a rate limit (so a claimed batch's results are held until the batch
/// ends); on the third new post, the first recipient reads their message and writes STOP
/// quoting it, while the rest of the batch is still being sent.
struct ReactsMidBatch {
    inner: SimTelegram,
    clock: Arc<SimClock>,
    react: bool,
    posts: std::sync::Mutex<Vec<(TelegramPeer, i64)>>,
}

#[async_trait::async_trait]
impl Transport for ReactsMidBatch {
    fn name(&self) -> &str {
        "sim-reacts-mid-batch"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            messages_per_second: None,
            ..self.inner.capabilities()
        }
    }
    async fn send(&self, message: &OutboundMessage) -> Result<SendOutcome> {
        let outcome = self.inner.send(message).await?;
        if let SendOutcome::Sent {
            message_id,
            duplicate: false,
            ..
        } = outcome
        {
            let mut posts = self.posts.lock().unwrap();
            posts.push((message.peer, message_id));
            if self.react && posts.len() == 3 {
                let (peer, id) = posts[0];
                let now = self.clock.now();
                self.inner
                    .push_inbound(peer, InboundKind::Read { message_id: id }, now);
                let stop = InboundKind::Text {
                    text: "stop".into(),
                    reply_to: Some(id),
                };
                self.inner.push_inbound(peer, stop, now);
            }
        }
        Ok(outcome)
    }
    async fn receive(&self) -> Result<Vec<InboundEvent>> {
        self.inner.receive().await
    }
    fn next_inbound_in(&self) -> Option<Duration> {
        self.inner.next_inbound_in()
    }
}

/// A world of 40 contacts whose agent claims everything in one batch and sends without a rate
/// limit through [`ReactsMidBatch`]. Simulated people do nothing on their own (no receipts):
/// the only inbound events are those the test makes.
async fn unpaced_world(react: bool, sends: impl SendPolicy + 'static) -> (World, Agent) {
    unpaced_world_with(sends, |inner, clock, _| ReactsMidBatch {
        inner,
        clock,
        react,
        posts: std::sync::Mutex::new(Vec::new()),
    })
    .await
}

/// [`unpaced_world`] with the transport `transport` makes of the simulator, the clock and the
/// store.
async fn unpaced_world_with<T: Transport + 'static>(
    sends: impl SendPolicy + 'static,
    transport: impl FnOnce(SimTelegram, Arc<SimClock>, Arc<dyn Store>) -> T,
) -> (World, Agent) {
    unpaced_world_leased(sends, Duration::from_secs(60), transport).await
}

/// [`unpaced_world_with`], its agent claiming jobs for `lease`.
async fn unpaced_world_leased<T: Transport + 'static>(
    sends: impl SendPolicy + 'static,
    lease: Duration,
    transport: impl FnOnce(SimTelegram, Arc<SimClock>, Arc<dyn Store>) -> T,
) -> (World, Agent) {
    let clock = Arc::new(SimClock::starting_at(noon()));
    let quiet = SimConfig {
        behaviour: mia::telegram::Behaviour {
            delivered: 0.0,
            ..mia::telegram::Behaviour::default()
        },
        ..sim_config(4)
    };
    let telegram = SimTelegram::new(quiet, clock.clone()).unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let w = world(40, store.clone(), clock.clone(), telegram.clone()).await;
    let transport = transport(telegram, clock.clone(), store.clone());
    let agent = Agent::builder(TemplateProvider::new(), transport)
        .shared_store(store)
        .permissive_policies()
        .send_policy(sends)
        .clock(clock)
        .claim_batch(500)
        .lease(lease)
        .build()
        .unwrap();
    (w, agent)
}

#[tokio::test(start_paused = true)]
async fn a_batchs_results_are_written_before_a_stop_or_a_read_in_the_middle_of_it() {
    let (w, agent) = unpaced_world(true, PermissiveSendPolicy).await;
    let campaign = launch(&agent).await;
    agent.run_until_idle().await.unwrap();
    let posts = campaign_posts(&w.telegram);
    assert_eq!(
        posts.len(),
        w.consented.len(),
        "every consented contact once"
    );
    assert!(posts.values().all(|n| *n == 1));
    // The first recipient read and stopped after their message went out: it stays sent.
    let first = w
        .telegram
        .sent_log()
        .into_iter()
        .find(|m| m.campaign.is_some())
        .unwrap();
    let contact = w.store.contact_by_peer(&first.peer).await.unwrap().unwrap();
    let jobs = w.store.contact_jobs(&contact.id).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        jobs[0].state,
        JobState::Sent,
        "a send recorded before the STOP is handled is not cancelled by it"
    );
    let counts = w.store.job_counts(&campaign.id).await.unwrap();
    assert_eq!(
        (counts.sent, counts.cancelled, counts.open()),
        (w.consented.len() as u64, 0, 0)
    );
    let events = w.store.contact_events(&contact.id).await.unwrap();
    let read = events
        .iter()
        .find(|e| e.kind == EventKind::Read)
        .expect("the read is recorded");
    assert_eq!(
        read.campaign.as_ref(),
        Some(&campaign.id),
        "the read is matched to the job that sent the message"
    );
    let history = w.store.consent_history(&contact.id).await.unwrap();
    assert_eq!(
        consent_state(&history, &Purpose::marketing(), agent.now()),
        ConsentState::Withdrawn
    );
}

/// The simulator paced at `rate` sends a second (the simulator's own 30 when `None`), noting at
/// each campaign send how many sends came before it and how many of the campaign's jobs the
/// store holds as sent.
struct CountsWritten {
    inner: SimTelegram,
    store: Arc<dyn Store>,
    rate: Option<f64>,
    seen: Arc<std::sync::Mutex<Vec<(u64, u64)>>>,
}

#[async_trait::async_trait]
impl Transport for CountsWritten {
    fn name(&self) -> &str {
        "sim-counts-written"
    }
    fn capabilities(&self) -> Capabilities {
        let inner = self.inner.capabilities();
        Capabilities {
            messages_per_second: self.rate.or(inner.messages_per_second),
            ..inner
        }
    }
    async fn send(&self, message: &OutboundMessage) -> Result<SendOutcome> {
        if let Some(campaign) = &message.campaign {
            let written = self.store.job_counts(campaign).await?.sent;
            let mut seen = self.seen.lock().unwrap();
            let before = seen.len() as u64;
            seen.push((before, written));
        }
        self.inner.send(message).await
    }
    async fn receive(&self) -> Result<Vec<InboundEvent>> {
        self.inner.receive().await
    }
    fn next_inbound_in(&self) -> Option<Duration> {
        self.inner.next_inbound_in()
    }
}

/// A batch's results wait through the short gaps of a rate limit and are written together, but
/// none waits past a second, or a tenth of the lease if that is shorter, and none is left within
/// that time of its lease's end. Per case, how many results were unwritten at each of the 20
/// sends of one claimed batch:
/// - at Telegram's 30 a second, the batch (0.63 s) is written when it ends: 0, 1, ... 19;
/// - at 5 a second, sends at 0, 0.2, ... 1.0 s, and the wait until 1.2 s would keep the first
///   result past a second, so the six are written before it: 0, 1, ... 5, 0, 1, ...;
/// - at 50 a second with a lease of one second, likewise with 0.1 s;
/// - at 2 a second with a lease of ten, three results at a time, until the send at 9 s, within
///   a second of the lease's end: its result is written at once, so the last send sees none.
#[tokio::test(start_paused = true)]
async fn results_wait_through_the_gaps_of_a_rate_limit_for_a_second_at_most() {
    /// A case: the rate (`None`: the simulator's own), the lease in seconds, and the
    /// results unwritten at the send of each index.
    type Case = (Option<f64>, u64, fn(u64) -> u64);
    let cases: [Case; 4] = [
        (None, 60, |i| i),
        (Some(5.0), 60, |i| i % 6),
        (Some(50.0), 1, |i| i % 6),
        (Some(2.0), 10, |i| if i == 19 { 0 } else { i % 3 }),
    ];
    for (rate, lease, unwritten_at) in cases {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let shared = seen.clone();
        let lease = Duration::from_secs(lease);
        let (w, agent) = unpaced_world_leased(PermissiveSendPolicy, lease, |inner, _, store| {
            CountsWritten {
                inner,
                store,
                rate,
                seen: shared,
            }
        })
        .await;
        let campaign = launch(&agent).await;
        agent.run_until_idle().await.unwrap();
        let counts = w.store.job_counts(&campaign.id).await.unwrap();
        assert_eq!(counts.sent, w.consented.len() as u64);
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 20, "one claimed batch, no resend");
        let unwritten: Vec<u64> = seen
            .iter()
            .map(|(before, written)| before - written)
            .collect();
        let expected: Vec<u64> = (0..20).map(unwritten_at).collect();
        assert_eq!(unwritten, expected, "at {rate:?} a second, lease {lease:?}");
    }
}

/// The contacts a [`ChangesStoreMidBatch`] acts on.
type Targets = Arc<std::sync::Mutex<Vec<ContactId>>>;

/// The simulator without a rate limit; after the third new post, the host withdraws the
/// consent of one contact and erases another, straight through the store (no STOP through
/// Telegram), while both their jobs wait later in the same claimed batch.
struct ChangesStoreMidBatch {
    inner: SimTelegram,
    clock: Arc<SimClock>,
    store: Arc<dyn Store>,
    /// The contact to withdraw, then the one to erase (set once the jobs exist).
    targets: Targets,
    posts: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl Transport for ChangesStoreMidBatch {
    fn name(&self) -> &str {
        "sim-changes-store-mid-batch"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            messages_per_second: None,
            ..self.inner.capabilities()
        }
    }
    async fn send(&self, message: &OutboundMessage) -> Result<SendOutcome> {
        let outcome = self.inner.send(message).await?;
        let posted = self.posts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if posted == 2 {
            let targets = self.targets.lock().unwrap().clone();
            let stop = ConsentRecord::withdraw(
                targets[0].as_str(),
                Purpose::marketing(),
                Evidence::new("host_api", "unsubscribe page"),
                self.clock.now(),
            );
            self.store.withdraw_consent(&stop).await?;
            let anon = ContactId::new("erased:mid-batch");
            self.store.erase_subject(&targets[1], &anon).await?;
        }
        Ok(outcome)
    }
    async fn receive(&self) -> Result<Vec<InboundEvent>> {
        self.inner.receive().await
    }
    fn next_inbound_in(&self) -> Option<Duration> {
        self.inner.next_inbound_in()
    }
}

/// An [`unpaced_world_with`] a [`ChangesStoreMidBatch`] transport and a launched campaign;
/// returns them with the campaign's last two jobs in claim order (jobs due together are
/// claimed in key order, so both come long after the third post) and the transport's targets,
/// to set to those jobs' contacts (or others).
async fn store_changing_world() -> (World, Agent, Campaign, Vec<Job>, Targets) {
    let targets = Arc::new(std::sync::Mutex::new(Vec::new()));
    let shared = targets.clone();
    let (w, agent) = unpaced_world_with(PermissiveSendPolicy, |inner, clock, store| {
        ChangesStoreMidBatch {
            inner,
            clock,
            store,
            targets: shared,
            posts: std::sync::atomic::AtomicUsize::new(0),
        }
    })
    .await;
    let campaign = launch(&agent).await;
    let mut jobs = w.store.jobs(&campaign.id).await.unwrap();
    jobs.retain(|j| j.state == JobState::Pending);
    jobs.sort_by(|a, b| a.key.cmp(&b.key));
    assert!(jobs.len() > 6);
    let last = jobs[jobs.len() - 2..].to_vec();
    (w, agent, campaign, last, targets)
}

/// The worker reads a claimed batch's contacts, consents and recent sends once; a withdrawal
/// or an erasure made meanwhile still stops the sends to those contacts (both cancel the
/// contact's claimed jobs, so the attempt is refused before anything is sent).
#[tokio::test(start_paused = true)]
async fn a_withdrawal_or_an_erasure_in_the_middle_of_a_batch_stops_its_later_sends() {
    let (w, agent, campaign, last, targets) = store_changing_world().await;
    let peers: Vec<TelegramPeer> = {
        let mut peers = Vec::new();
        for job in &last {
            peers.push(w.store.contact(&job.contact).await.unwrap().unwrap().peer);
        }
        peers
    };
    *targets.lock().unwrap() = last.iter().map(|j| j.contact.clone()).collect();
    agent.run_until_idle().await.unwrap();

    let posts = campaign_posts(&w.telegram);
    for peer in &peers {
        assert!(!posts.contains_key(&peer.id), "nothing sent to {peer:?}");
    }
    assert_eq!(posts.len(), w.consented.len() - 2);
    assert!(posts.values().all(|n| *n == 1));
    let withdrawn = w.store.job(&last[0].key).await.unwrap().unwrap();
    assert_eq!(withdrawn.state, JobState::Cancelled);
    let erased = w.store.job(&last[1].key).await.unwrap().unwrap();
    assert_eq!(
        (
            erased.state,
            erased.outcome.as_deref(),
            erased.contact.as_str()
        ),
        (JobState::Cancelled, Some("erased"), "erased:mid-batch")
    );
    let counts = w.store.job_counts(&campaign.id).await.unwrap();
    assert_eq!(
        (counts.sent, counts.cancelled, counts.open()),
        (w.consented.len() as u64 - 2, 2, 0)
    );
}

/// An erasure that comes while the contact's own message is with Telegram: the send is left to
/// its worker, and the `Sent` event the worker records (under the id it claimed the job with)
/// follows the replacement when the result is written, so nothing keeps the erased id.
#[tokio::test(start_paused = true)]
async fn an_erasure_during_the_contacts_own_send_leaves_nothing_under_their_id() {
    let (w, agent, campaign, _, targets) = store_changing_world().await;
    let mut jobs = w.store.jobs(&campaign.id).await.unwrap();
    jobs.retain(|j| j.state == JobState::Pending);
    jobs.sort_by(|a, b| a.key.cmp(&b.key));
    // The third post is the third job: its contact is erased while it is in flight (the
    // withdrawal goes to the first contact, whose message is out already).
    let (first, third) = (jobs[0].contact.clone(), jobs[2].clone());
    *targets.lock().unwrap() = vec![first, third.contact.clone()];
    agent.run_until_idle().await.unwrap();

    let posts = campaign_posts(&w.telegram);
    assert_eq!(posts.len(), w.consented.len(), "every send went out once");
    assert!(posts.values().all(|n| *n == 1));
    assert!(
        w.store
            .contact_events(&third.contact)
            .await
            .unwrap()
            .is_empty(),
        "no event keeps the erased id"
    );
    let anon = ContactId::new("erased:mid-batch");
    let kept = w.store.contact_events(&anon).await.unwrap();
    assert!(
        kept.iter()
            .any(|e| e.kind == EventKind::Sent && e.campaign.as_ref() == Some(&campaign.id)),
        "the send is counted, under the replacement: {kept:?}"
    );
    let job = w.store.job(&third.key).await.unwrap().unwrap();
    assert_eq!(
        (job.state, job.contact.as_str()),
        (JobState::Sent, anon.as_str())
    );
}

/// A job whose send was in flight when its worker stopped is claimed again once its lease runs
/// out. A withdrawal does not cancel such a job (its message may be with Telegram already), so
/// the worker decides it on facts read for it alone, never on the batch's earlier read.
#[tokio::test(start_paused = true)]
async fn an_interrupted_send_is_decided_on_fresh_facts_after_a_withdrawal_mid_batch() {
    let (w, agent, _, last, targets) = store_changing_world().await;
    // A worker claims every job, hands the last but one to Telegram's side of the wire (its
    // attempt is recorded: send in flight) and dies before sending it.
    let doomed = w
        .store
        .claim("doomed", agent.now(), SignedDuration::from_secs(1), 10_000)
        .await
        .unwrap();
    let flying = doomed.iter().find(|j| j.key == last[0].key).unwrap();
    w.store
        .record_attempt(
            &flying.key,
            flying.claim_token,
            &VariantId::new("A"),
            1.0,
            agent.now(),
        )
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(2)).await;
    *targets.lock().unwrap() = last.iter().map(|j| j.contact.clone()).collect();
    let peer = w
        .store
        .contact(&last[0].contact)
        .await
        .unwrap()
        .unwrap()
        .peer;
    agent.run_until_idle().await.unwrap();

    let posts = campaign_posts(&w.telegram);
    assert!(
        !posts.contains_key(&peer.id),
        "withdrawn before the interrupted send was decided again: never sent"
    );
    let job = w.store.job(&last[0].key).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Skipped, "{job:?}");
    assert_eq!(posts.len(), w.consented.len() - 2);
}

#[tokio::test(start_paused = true)]
async fn a_frequency_cap_counts_a_send_made_earlier_in_the_same_batch() {
    let guard = mia::safety::SendGuard::builder()
        .frequency_cap(1, SignedDuration::from_hours(24 * 7))
        .build()
        .unwrap();
    let (w, agent) = unpaced_world(false, guard).await;
    // Two campaigns due at once: every contact's two jobs are claimed in one batch.
    let first = launch(&agent).await;
    let second = launch(&agent).await;
    let due = w.store.jobs(&first.id).await.unwrap()[0].due_at;
    assert_eq!(w.store.jobs(&second.id).await.unwrap()[0].due_at, due);
    agent.run_until_idle().await.unwrap();
    let posts = campaign_posts(&w.telegram);
    assert_eq!(posts.len(), w.consented.len());
    assert!(
        posts.values().all(|n| *n == 1),
        "one message per contact a week, though both jobs were in one batch"
    );
    assert_eq!(
        w.telegram.rate_limited_count(),
        0,
        "the second job is denied by the cap, never handed to Telegram"
    );
    let a = w.store.job_counts(&first.id).await.unwrap();
    let b = w.store.job_counts(&second.id).await.unwrap();
    assert_eq!(a.sent + b.sent, w.consented.len() as u64);
    assert_eq!(
        w.store
            .jobs(&second.id)
            .await
            .unwrap()
            .iter()
            .chain(w.store.jobs(&first.id).await.unwrap().iter())
            .filter(|j| j.outcome.as_deref() == Some("frequency_cap"))
            .count(),
        w.consented.len()
    );
}

/// A transport that pauses the campaign of its post number `pause_at` (from 0) straight
/// through the store, as an operator (or another worker's spam signal) would while this
/// worker's batch is under way; `idempotent` says whether it recognises a resend.
struct PausesMidBatch {
    inner: SimTelegram,
    clock: Arc<SimClock>,
    store: Arc<dyn Store>,
    posts: std::sync::atomic::AtomicUsize,
    pause_at: usize,
    idempotent: bool,
}

impl PausesMidBatch {
    fn new(
        inner: SimTelegram,
        clock: Arc<SimClock>,
        store: Arc<dyn Store>,
        pause_at: usize,
        idempotent: bool,
    ) -> Self {
        Self {
            inner,
            clock,
            store,
            posts: std::sync::atomic::AtomicUsize::new(0),
            pause_at,
            idempotent,
        }
    }
}

#[async_trait::async_trait]
impl Transport for PausesMidBatch {
    fn name(&self) -> &str {
        "sim-pauses-mid-batch"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            messages_per_second: None,
            idempotent_sends: self.idempotent,
            ..self.inner.capabilities()
        }
    }
    async fn send(&self, message: &OutboundMessage) -> Result<SendOutcome> {
        let outcome = self.inner.send(message).await?;
        if self.posts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == self.pause_at
            && let Some(id) = &message.campaign
        {
            let mut campaign = self.store.campaign(id).await?.expect("the campaign");
            campaign.transition(CampaignState::Paused, self.clock.now())?;
            self.store.update_campaign(&campaign).await?;
        }
        Ok(outcome)
    }
    async fn receive(&self) -> Result<Vec<InboundEvent>> {
        self.inner.receive().await
    }
    fn next_inbound_in(&self) -> Option<Duration> {
        self.inner.next_inbound_in()
    }
}

/// A pause that lands while a worker's batch is under way stops the batch at its next send
/// (whose attempt is refused), and the batch's later jobs of the campaign wait undecided: no
/// policy decision, no skip, no send. Resumed, the campaign reaches everyone once.
#[tokio::test(start_paused = true)]
async fn a_pause_in_the_middle_of_a_batch_leaves_the_rest_of_it_undecided() {
    let (w, agent) = unpaced_world_with(PermissiveSendPolicy, |inner, clock, store| {
        PausesMidBatch::new(inner, clock, store, 2, true)
    })
    .await;
    let campaign = launch(&agent).await;
    let before = w.store.job_counts(&campaign.id).await.unwrap();
    let open = before.open();
    assert!(open > 6, "{open}");
    agent.run_once().await.unwrap();

    assert_eq!(campaign_posts(&w.telegram).len(), 3);
    let decided = w
        .store
        .audit_entries(0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| {
            e.action == AuditAction::PolicyDecision
                && e.detail["policy"] == "send"
                && e.detail["campaign"] == campaign.id.as_str()
        })
        .count();
    assert_eq!(
        decided, 4,
        "the three sends and the one refused, nothing after"
    );
    let counts = w.store.job_counts(&campaign.id).await.unwrap();
    assert_eq!(
        (counts.sent, counts.skipped),
        (3, before.skipped),
        "nobody is skipped (held out, denied) while the campaign is paused"
    );
    let jobs = w.store.jobs(&campaign.id).await.unwrap();
    let waiting: Vec<&Job> = jobs
        .iter()
        .filter(|j| j.state == JobState::Pending)
        .collect();
    assert_eq!(
        (waiting.len() as u64, counts.open()),
        (open - 3, open - 3),
        "the rest wait in the queue, none left claimed"
    );
    assert!(
        waiting
            .iter()
            .all(|j| j.attempts == 0 && j.variant.is_none()),
        "no attempt recorded, no variant chosen"
    );

    agent.resume(&campaign.id).await.unwrap();
    agent.run_until_idle().await.unwrap();
    let posts = campaign_posts(&w.telegram);
    assert_eq!(posts.len(), w.consented.len());
    assert!(posts.values().all(|n| *n == 1), "{posts:?}");
}

/// A job taken over from a worker that stopped mid-send keeps its mark when a pause leaves it
/// in a batch: a transport that cannot recognise a resend then dead-letters it once the
/// campaign runs again, instead of sending it a second time.
#[tokio::test(start_paused = true)]
async fn a_pause_keeps_the_mark_of_a_send_in_flight_taken_over() {
    let (w, agent) = unpaced_world_with(PermissiveSendPolicy, |inner, clock, store| {
        PausesMidBatch::new(inner, clock, store, 0, false)
    })
    .await;
    let campaign = launch(&agent).await;
    // A worker claims the first five jobs and hands the fifth to Telegram, then stops.
    let now = w
        .store
        .campaign(&campaign.id)
        .await
        .unwrap()
        .unwrap()
        .updated_at;
    let dead = w
        .store
        .claim("stopped", now, SignedDuration::from_secs(60), 5)
        .await
        .unwrap();
    assert_eq!(dead.len(), 5);
    let flying = &dead[4];
    let variant = w
        .store
        .campaign(&campaign.id)
        .await
        .unwrap()
        .unwrap()
        .variants[0]
        .id
        .clone();
    w.store
        .record_attempt(&flying.key, flying.claim_token, &variant, 1.0, now)
        .await
        .unwrap();
    let peer = w
        .store
        .contact(&flying.contact)
        .await
        .unwrap()
        .unwrap()
        .peer;

    // After its lease, this worker takes the five over: the first is sent, the pause lands, and
    // the rest, the send in flight among them, are left.
    tokio::time::sleep(Duration::from_secs(61)).await;
    agent.run_once().await.unwrap();
    assert_eq!(campaign_posts(&w.telegram).len(), 1);
    let left = w.store.job(&flying.key).await.unwrap().unwrap();
    assert!(left.send_in_flight(), "{left:?}");

    agent.resume(&campaign.id).await.unwrap();
    agent.run_until_idle().await.unwrap();
    let posts = campaign_posts(&w.telegram);
    assert!(!posts.contains_key(&peer.id), "never sent a second time");
    assert_eq!(posts.len(), w.consented.len() - 1);
    assert!(posts.values().all(|n| *n == 1), "{posts:?}");
    let dead_letters = agent.dead_letters(&campaign.id).await.unwrap();
    assert_eq!(
        dead_letters
            .iter()
            .map(|j| (&j.key, j.outcome.as_deref()))
            .collect::<Vec<_>>(),
        [(&flying.key, Some(OUTCOME_UNKNOWN))]
    );
}

/// Escalates the sends to the contacts it lists (as a policy for a sensitive list would),
/// allows the rest.
struct EscalatesFor(BTreeSet<ContactId>);

impl SendPolicy for EscalatesFor {
    fn check(&self, ctx: &SendContext<'_>) -> Verdict {
        if self.0.contains(&ctx.contact.id) {
            Verdict::escalate(
                "sensitive_list",
                "the contact is on the list a human checks",
            )
        } else {
            Verdict::allow()
        }
    }
}

/// Denies the sends to the contacts on a suppression list the test can change.
struct SharedSuppression(Arc<std::sync::Mutex<BTreeSet<ContactId>>>);

impl SendPolicy for SharedSuppression {
    fn check(&self, ctx: &SendContext<'_>) -> Verdict {
        if self.0.lock().unwrap().contains(&ctx.contact.id) {
            Verdict::deny("suppression", "the contact is on the suppression list")
        } else {
            Verdict::allow()
        }
    }
}

/// Six of twelve consented contacts are on a list whose sends a human reviews: three are
/// approved (one of them is also on a suppression list the policy chain checks after the
/// escalation), two rejected, one left to expire. Each approved send that nothing else stops
/// goes out once, the others never, and every decision is in the audit log.
///
/// `clock` runs the agent; waiting on it moves it forward (a [`SimClock`] under tokio's paused
/// time, or a [`VirtualClock`] with a store whose driver has a thread of its own).
async fn escalated_sends_wait_for_their_reviewer<C: Clock + 'static>(
    store: Arc<dyn Store>,
    clock: Arc<C>,
) {
    let telegram = SimTelegram::new(sim_config(6), clock.clone()).unwrap();
    let w = world(
        24,
        store.clone(),
        Arc::new(SimClock::starting_at(noon())),
        telegram.clone(),
    )
    .await;
    let listed: BTreeSet<ContactId> = w.consented.iter().take(6).cloned().collect();
    // Empty for now: a contact is put on it after the reviews are queued.
    let suppressed = Arc::new(std::sync::Mutex::new(BTreeSet::new()));
    let agent = Agent::builder(TemplateProvider::new(), telegram.clone())
        .shared_store(store.clone())
        .permissive_policies()
        .send_policy(
            SendPolicies::new()
                .with(EscalatesFor(listed.clone()))
                .with(SharedSuppression(suppressed.clone())),
        )
        .clock(clock.clone())
        .build()
        .unwrap();
    let campaign = launch(&agent).await;
    let first = agent.run_until_idle().await.unwrap();
    assert_eq!(first.held, 6);
    let peer_of = |id: &ContactId| {
        w.everyone
            .iter()
            .find(|c| &c.id == id)
            .map(|c| c.peer.id)
            .unwrap()
    };
    let posts_to = |ids: &[ContactId]| {
        let posts = campaign_posts(&telegram);
        ids.iter()
            .map(|id| posts.get(&peer_of(id)).copied().unwrap_or(0))
            .collect::<Vec<_>>()
    };
    let others: Vec<ContactId> = w.consented.difference(&listed).cloned().collect();
    assert_eq!(posts_to(&others), vec![1; 6]);

    // One review for each held send, with the rule that escalated it.
    let reviews = agent.pending_reviews().await.unwrap();
    assert_eq!(reviews.len(), 6);
    let mut contact_of = BTreeMap::new();
    for item in &reviews {
        let ReviewSubject::Send { job } = &item.subject else {
            panic!("not a send: {item:?}");
        };
        let job = store.job(job).await.unwrap().unwrap();
        assert_eq!(job.state, JobState::Held);
        assert!(
            item.trace
                .iter()
                .any(|h| h.rule == "sensitive_list" && h.decision == Decision::Escalate),
            "{:?}",
            item.trace
        );
        contact_of.insert(item.id.clone(), job.contact);
    }
    let who = |items: &[ReviewItem]| -> Vec<ContactId> {
        items.iter().map(|i| contact_of[&i.id].clone()).collect()
    };
    let (approved, rest) = reviews.split_at(3);
    let (rejected, undecided) = rest.split_at(2);
    // The third approved contact lands on the suppression list before the send is judged
    // again.
    let (approved, suppressed_one) = approved.split_at(2);
    suppressed
        .lock()
        .unwrap()
        .insert(contact_of[&suppressed_one[0].id].clone());
    agent
        .approve_review(&suppressed_one[0].id, "ana")
        .await
        .unwrap();
    for item in approved {
        agent.approve_review(&item.id, "ana").await.unwrap();
    }
    for item in rejected {
        agent
            .reject_review(&item.id, "ana", "not this week")
            .await
            .unwrap();
    }
    assert!(matches!(
        agent.reject_review(&approved[0].id, "bo", "too late").await,
        Err(Error::InvalidInput(_))
    ));

    // The approved sends go out, once, though the policy still escalates them; the rejected
    // ones are skipped; nothing reopens a decided review.
    let second = agent.run_until_idle().await.unwrap();
    assert_eq!(second.sent, 2);
    assert_eq!(second.held, 0);
    agent.run_until_idle().await.unwrap();
    assert_eq!(posts_to(&who(approved)), [1, 1]);
    assert_eq!(
        posts_to(&who(suppressed_one)),
        [0],
        "an approval does not pass the rules after the escalating one"
    );
    assert_eq!(second.skipped.get("suppression"), Some(&1), "{second:?}");
    assert_eq!(posts_to(&who(rejected)), [0, 0]);
    assert_eq!(posts_to(&who(undecided)), [0]);
    let waiting: Vec<ReviewId> = agent
        .pending_reviews()
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(
        waiting,
        undecided.iter().map(|i| i.id.clone()).collect::<Vec<_>>()
    );
    for item in rejected {
        let ReviewSubject::Send { job } = &item.subject else {
            unreachable!()
        };
        let job = store.job(job).await.unwrap().unwrap();
        assert_eq!(
            (job.state, job.outcome.as_deref()),
            (JobState::Skipped, Some(REJECTED_BY_REVIEWER_RULE))
        );
    }

    // Nobody decides the last two: they expire, and are never sent.
    clock
        .sleep_until(clock.now() + SignedDuration::from_hours(72))
        .await;
    agent.run_until_idle().await.unwrap();
    assert!(agent.pending_reviews().await.unwrap().is_empty());
    assert_eq!(posts_to(&who(undecided)), [0]);
    assert_eq!(posts_to(&who(approved)), [1, 1]);
    let counts = store.job_counts(&campaign.id).await.unwrap();
    assert_eq!(counts.held, 0, "{counts:?}");

    // The log has every decision: the reviewers', the expiries, and the approved sends
    // allowed by the reviewer's rule.
    let entries = store.audit_entries(0, 100_000).await.unwrap();
    let decisions: Vec<(String, String)> = entries
        .iter()
        .filter(|e| e.action == AuditAction::ReviewDecision)
        .map(|e| {
            (
                e.actor.clone(),
                e.detail["decision"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut expected = vec![("reviewer:ana".to_owned(), "approved".to_owned()); 3];
    expected.extend(vec![("reviewer:ana".to_owned(), "rejected".to_owned()); 2]);
    expected.push(("reviewer:mia:deadline".to_owned(), "rejected".to_owned()));
    assert_eq!(decisions, expected);
    let allowed_by_reviewer = entries
        .iter()
        .filter(|e| {
            e.action == AuditAction::PolicyDecision
                && e.detail["rule"] == APPROVED_BY_REVIEWER_RULE
                && e.detail["decision"] == "allow"
        })
        .count();
    assert_eq!(allowed_by_reviewer, 2);
}

#[tokio::test(start_paused = true)]
async fn escalated_sends_go_out_once_approved_and_never_when_rejected_or_expired() {
    let clock = Arc::new(SimClock::starting_at(noon()));
    escalated_sends_wait_for_their_reviewer(Arc::new(MemoryStore::new()), clock).await;
}

#[tokio::test]
async fn escalated_sends_wait_for_their_reviewer_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = mia::store::SqliteStore::open(dir.path().join("mia.db"))
        .await
        .unwrap();
    let clock = Arc::new(VirtualClock::starting_at(noon()));
    escalated_sends_wait_for_their_reviewer(Arc::new(store), clock).await;
}

/// Passes sends through, and completes a stop signal at the first post.
struct StopsAtFirstPost(
    SimTelegram,
    std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
);

#[async_trait::async_trait]
impl Transport for StopsAtFirstPost {
    fn name(&self) -> &str {
        "sim-stops"
    }
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }
    async fn send(&self, message: &OutboundMessage) -> Result<SendOutcome> {
        let outcome = self.0.send(message).await;
        if let Some(stop) = self.1.lock().unwrap().take() {
            let _ = stop.send(());
        }
        outcome
    }
}

#[tokio::test(start_paused = true)]
async fn a_stopped_worker_finishes_its_batch_and_leaves_no_send_in_flight() {
    let (w, clock) = memory_world(40).await;
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let transport = StopsAtFirstPost(w.telegram.clone(), std::sync::Mutex::new(Some(stop)));
    let agent = Agent::builder(TemplateProvider::new(), transport)
        .shared_store(w.store.clone())
        .permissive_policies()
        .clock(clock.clone())
        .claim_batch(4)
        .build()
        .unwrap();
    let campaign = launch(&agent).await;
    // Stopped before it starts: nothing is claimed.
    let none = agent
        .run_until_idle_or(std::future::ready(()))
        .await
        .unwrap();
    assert_eq!(none, RunStats::default());
    assert_eq!(w.store.job_counts(&campaign.id).await.unwrap().pending, 20);

    // The stop comes with the first post: the batch of four is finished and written, and no
    // other batch starts.
    let first = agent
        .run_until_idle_or(async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    assert_eq!(first.sent, 4);
    let counts = w.store.job_counts(&campaign.id).await.unwrap();
    assert_eq!(
        (counts.claimed, counts.sent, counts.pending),
        (0, 4, 16),
        "{counts:?}"
    );
    // A later run sends the rest, each once.
    let rest = agent.run_until_idle().await.unwrap();
    assert_eq!(rest.sent, 16);
    let posts = campaign_posts(&w.telegram);
    assert_eq!(posts.len(), 20);
    assert!(posts.values().all(|&n| n == 1), "{posts:?}");
}
