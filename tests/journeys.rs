//! Journeys end to end in virtual time: a send, a wait, a branch on a click with a timeout and
//! a follow-up; STOP between steps; a crash between steps; validation before start.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use mia::telegram::{SentMessage, SimConfig, SimTelegram};
use mia::*;

fn noon() -> Timestamp {
    "2026-12-01T12:00:00Z".parse().unwrap()
}

/// Send, wait two days, wait up to three more for a click: clickers exit, the rest get a
/// follow-up with variant B.
const JOURNEY: &str = r#"{
  "steps": [
    { "name": "intro",     "kind": "send" },
    { "name": "pause",     "kind": "wait", "duration": "48h" },
    { "name": "check",     "kind": "wait_for", "event": "clicked", "timeout": "72h",
      "then": "done", "otherwise": "follow_up" },
    { "name": "follow_up", "kind": "send", "variants": ["B"], "next": "done" },
    { "name": "done",      "kind": "exit" }
  ]
}"#;

struct World {
    agent: Agent,
    telegram: SimTelegram,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    everyone: Vec<Contact>,
}

fn sim(clock: Arc<dyn Clock>) -> SimTelegram {
    // Nobody reads, clicks or stops on their own: the test decides who does.
    let mut config = SimConfig {
        deactivated_share: 0.0,
        blocked_share: 0.0,
        privacy_share: 0.0,
        ..SimConfig::seeded(3)
    };
    config.behaviour.read = 0.0;
    SimTelegram::new(config, clock).unwrap()
}

fn agent(
    telegram: &SimTelegram,
    store: &Arc<dyn Store>,
    clock: &Arc<dyn Clock>,
    id: &str,
) -> Agent {
    Agent::builder(TemplateProvider::new(), telegram.clone())
        .shared_store(store.clone())
        .permissive_policies()
        .clock(clock.clone())
        .worker_id(id)
        .seed(7)
        .build()
        .unwrap()
}

/// `n` contacts; all but the last have marketing consent.
async fn world(n: i64, store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> World {
    let telegram = sim(clock.clone());
    let agent = agent(&telegram, &store, &clock, "worker-1");
    let everyone: Vec<Contact> = (0..n)
        .map(|i| {
            Contact::new(format!("u{i:04}"), TelegramPeer::user(i + 1), "UTC", noon()).unwrap()
        })
        .collect();
    agent.import_contacts(&everyone).await.unwrap();
    let grants: Vec<_> = everyone[..everyone.len() - 1]
        .iter()
        .map(|c| {
            ConsentRecord::grant(
                c.id.clone(),
                Purpose::marketing(),
                Evidence::new("telegram_start", format!("test {}", c.id)),
                "v1",
                noon() - SignedDuration::from_hours(1),
            )
        })
        .collect();
    agent.record_consent(&grants).await.unwrap();
    World {
        agent,
        telegram,
        store,
        clock,
        everyone,
    }
}

fn spec(journey: &str) -> CampaignSpec {
    let mut spec = CampaignSpec::new("Spring", "green tea", "20% off this week");
    spec.call_to_action_url = Some("https://shop.example/tea".into());
    spec.journey = Some(serde_json::from_str(journey).unwrap());
    spec
}

async fn launch(agent: &Agent) -> Campaign {
    let campaign = agent.create_campaign(spec(JOURNEY)).await.unwrap();
    assert_eq!(campaign.state, CampaignState::Approved);
    agent.schedule(&campaign.id, None).await.unwrap();
    agent.start(&campaign.id).await.unwrap()
}

/// Campaign messages per peer, from the simulator's own log, with no key posted twice.
fn campaign_posts(tg: &SimTelegram) -> BTreeMap<i64, Vec<SentMessage>> {
    let log = tg.sent_log();
    let keys: BTreeSet<_> = log.iter().map(|m| m.key.clone()).collect();
    assert_eq!(keys.len(), log.len(), "a message key was posted twice");
    let mut out: BTreeMap<i64, Vec<SentMessage>> = BTreeMap::new();
    for m in log.into_iter().filter(|m| m.campaign.is_some()) {
        out.entry(m.peer.id).or_default().push(m);
    }
    out
}

/// The three-step journey with clickers and a STOP between steps.
async fn clickers_exit_others_get_one_follow_up(w: World) {
    let campaign = launch(&w.agent).await;
    let start = w.clock.now();
    let first = w.agent.run_once().await.unwrap();
    assert_eq!(first.sent, 11, "step one goes to every consented contact");

    let posts = campaign_posts(&w.telegram);
    let clickers: Vec<&Contact> = w.everyone[0..3].iter().collect();
    let stoppers: Vec<&Contact> = w.everyone[3..5].iter().collect();
    let day3 = start + SignedDuration::from_hours(72);
    for c in &clickers {
        let message_id = posts[&c.peer.id][0].message_id;
        w.telegram
            .push_inbound(c.peer, InboundKind::Clicked { message_id }, day3);
    }
    for c in &stoppers {
        let kind = InboundKind::Text {
            text: "STOP".into(),
            reply_to: None,
        };
        w.telegram.push_inbound(c.peer, kind, day3);
    }
    w.agent.run_until_idle().await.unwrap();

    let posts = campaign_posts(&w.telegram);
    let follow_up_due = start + SignedDuration::from_hours(120);
    for (i, c) in w.everyone.iter().enumerate() {
        let got = posts.get(&c.peer.id).map(Vec::as_slice).unwrap_or(&[]);
        let clicked = clickers.iter().any(|x| x.id == c.id);
        let stopped = stoppers.iter().any(|x| x.id == c.id);
        let consented = i < w.everyone.len() - 1;
        let expected = match (consented, clicked || stopped) {
            (false, _) => 0,
            (true, true) => 1,
            (true, false) => 2,
        };
        assert_eq!(
            got.len(),
            expected,
            "contact {} (clicked {clicked}, stopped {stopped})",
            c.id
        );
        if let [_, follow_up] = got {
            assert_eq!(follow_up.variant, Some(VariantId::new("B")));
            assert!(
                follow_up.at >= follow_up_due,
                "the follow-up waited for the timeout"
            );
        }
    }
    // Clickers' waits were decided by their click, the others' by the timeout.
    let jobs = w.store.jobs(&campaign.id).await.unwrap();
    let decisions: Vec<_> = jobs
        .iter()
        .filter(|j| JourneyPosition::from_decision_step(j.step).is_some())
        .collect();
    let by_event: BTreeSet<_> = decisions
        .iter()
        .filter(|j| j.outcome.as_deref() == Some(DECIDED_BY_EVENT))
        .map(|j| j.contact.clone())
        .collect();
    let clicker_ids: BTreeSet<_> = clickers.iter().map(|c| c.id.clone()).collect();
    assert_eq!(by_event, clicker_ids);
    // The stoppers' waits were cancelled by the STOP, not decided.
    assert_eq!(decisions.len(), 9);
    // The operator counts messages, not the journey's bookkeeping: each decided wait is a
    // timer and a decision record, and only the contact without consent is "skipped".
    let status = w.agent.operator().status(&campaign.id).await.unwrap();
    assert_eq!(status.journey_decisions, 18, "{status:?}");
    assert_eq!(status.jobs.skipped, 1, "{status:?}");
    assert_eq!(
        status.jobs.sent,
        11 + 6,
        "intros, and follow-ups for the six who did not click"
    );
    assert_eq!(status.progress, 1.0);
    assert_eq!(
        w.store.campaign(&campaign.id).await.unwrap().unwrap().state,
        CampaignState::Completed
    );
}

#[tokio::test(start_paused = true)]
async fn a_three_step_journey_runs_in_virtual_time() {
    let clock: Arc<dyn Clock> = Arc::new(SimClock::starting_at(noon()));
    let w = world(12, Arc::new(MemoryStore::new()), clock).await;
    clickers_exit_others_get_one_follow_up(w).await;
}

#[tokio::test]
async fn a_three_step_journey_runs_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        mia::store::SqliteStore::open(dir.path().join("mia.db"))
            .await
            .unwrap(),
    );
    // Virtual time that moves only when the agent waits (SQLite's driver thread is not idleness).
    let clock: Arc<dyn Clock> = Arc::new(VirtualClock::starting_at(noon()));
    let w = world(12, store, clock).await;
    clickers_exit_others_get_one_follow_up(w).await;
}

#[tokio::test(start_paused = true)]
async fn a_crash_between_steps_resumes_and_sends_each_step_once() {
    let clock: Arc<dyn Clock> = Arc::new(SimClock::starting_at(noon()));
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let w = world(12, store.clone(), clock.clone()).await;
    let campaign = launch(&w.agent).await;
    let telegram = w.telegram.clone();
    drop(w);
    // A worker dies after step one's sends: it posted every message, recorded the first six
    // as sent (but queued no next step) and the rest not at all.
    let claimed = store
        .claim("doomed", clock.now(), SignedDuration::from_secs(60), 64)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 11);
    for (i, job) in claimed.iter().enumerate() {
        let contact = store.contact(&job.contact).await.unwrap().unwrap();
        let message = OutboundMessage::new(
            job.key.clone(),
            contact.id,
            contact.peer,
            "posted just before the crash",
        )
        .with_campaign(campaign.id.clone())
        .with_variant(VariantId::new("A"));
        let SendOutcome::Sent { message_id, .. } = telegram.send(&message).await.unwrap() else {
            panic!("the simulator refused a send");
        };
        if i < 6 {
            store
                .update_job(
                    &job.key,
                    job.claim_token,
                    &JobUpdate::Sent { message_id },
                    clock.now(),
                )
                .await
                .unwrap();
        }
    }
    // A new agent on the same store finishes the journey.
    let agent = agent(&telegram, &store, &clock, "after-restart");
    agent.run_until_idle().await.unwrap();

    let posts = campaign_posts(&telegram);
    assert_eq!(posts.len(), 11, "every consented contact, nobody else");
    for (peer, messages) in &posts {
        assert_eq!(
            messages.len(),
            2,
            "peer {peer}: one intro and one follow-up"
        );
        assert_eq!(messages[1].variant, Some(VariantId::new("B")));
    }
    assert_eq!(
        store.campaign(&campaign.id).await.unwrap().unwrap().state,
        CampaignState::Completed
    );
}

#[tokio::test(start_paused = true)]
async fn invalid_journeys_are_refused_before_anything_is_sent() {
    let clock: Arc<dyn Clock> = Arc::new(SimClock::starting_at(noon()));
    let w = world(3, Arc::new(MemoryStore::new()), clock).await;
    let broken = JOURNEY.replace(r#""then": "done""#, r#""then": "nowhere""#);
    match w.agent.create_campaign(spec(&broken)).await {
        Err(Error::InvalidInput(m)) => {
            assert!(m.contains("\"check\"") && m.contains("nowhere"), "{m}")
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    let looping = r#"{ "steps": [
        { "name": "a", "kind": "send", "next": "b" },
        { "name": "b", "kind": "send", "next": "a" } ] }"#;
    match w.agent.create_campaign(spec(looping)).await {
        Err(Error::InvalidInput(m)) => assert!(m.contains("loop without a wait"), "{m}"),
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    // A variant the campaign does not have is caught when it is scheduled, before any job.
    let unknown_variant = JOURNEY.replace(r#"["B"]"#, r#"["Z"]"#);
    let campaign = w
        .agent
        .create_campaign(spec(&unknown_variant))
        .await
        .unwrap();
    match w.agent.schedule(&campaign.id, None).await {
        Err(Error::InvalidInput(m)) => {
            assert!(m.contains("\"follow_up\"") && m.contains('Z'), "{m}")
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    assert!(w.store.jobs(&campaign.id).await.unwrap().is_empty());
    assert!(w.telegram.sent_log().is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_event_starts_the_then_branch_early_but_not_before_the_wait() {
    let clock: Arc<dyn Clock> = Arc::new(SimClock::starting_at(noon()));
    let w = world(4, Arc::new(MemoryStore::new()), clock).await;
    let thanks = r#"{ "steps": [
        { "name": "intro",  "kind": "send" },
        { "name": "pause",  "kind": "wait", "duration": "48h" },
        { "name": "check",  "kind": "wait_for", "event": "clicked", "timeout": "72h",
          "then": "thanks", "otherwise": "done" },
        { "name": "thanks", "kind": "send", "variants": ["A"] },
        { "name": "done",   "kind": "exit" } ] }"#;
    let campaign = w.agent.create_campaign(spec(thanks)).await.unwrap();
    w.agent.schedule(&campaign.id, None).await.unwrap();
    w.agent.start(&campaign.id).await.unwrap();
    let start = w.clock.now();
    assert_eq!(w.agent.run_once().await.unwrap().sent, 3);
    // One contact clicks an hour in (during the 48h wait), one on day three.
    let posts = campaign_posts(&w.telegram);
    let early = &w.everyone[0];
    let late = &w.everyone[1];
    for (c, after) in [(early, 1), (late, 72)] {
        let message_id = posts[&c.peer.id][0].message_id;
        let at = start + SignedDuration::from_hours(after);
        w.telegram
            .push_inbound(c.peer, InboundKind::Clicked { message_id }, at);
    }
    w.agent.run_until_idle().await.unwrap();

    let posts = campaign_posts(&w.telegram);
    let timeout = start + SignedDuration::from_hours(120);
    let early_thanks = &posts[&early.peer.id][1];
    assert!(early_thanks.at >= start + SignedDuration::from_hours(48));
    assert!(
        early_thanks.at < timeout,
        "decided by the click, not the timeout"
    );
    let late_thanks = &posts[&late.peer.id][1];
    assert!(late_thanks.at >= start + SignedDuration::from_hours(72) && late_thanks.at < timeout);
    // Each wait's decision record is due when its branch started, which is what a repair after
    // a crash would plan the branch from: the early click's at the end of the 48h wait.
    let check = JourneyPosition {
        index: 2,
        ..JourneyPosition::default()
    };
    let decided = |c: &Contact| IdempotencyKey::for_job(&campaign.id, &c.id, check.decision_step());
    let early_record = w.store.job(&decided(early)).await.unwrap().unwrap();
    assert_eq!(early_record.outcome.as_deref(), Some(DECIDED_BY_EVENT));
    let hours = |h| start + SignedDuration::from_hours(h);
    assert!(
        (hours(48)..hours(49)).contains(&early_record.due_at),
        "{early_record:?}"
    );
    let late_record = w.store.job(&decided(late)).await.unwrap().unwrap();
    assert!(
        (hours(72)..hours(73)).contains(&late_record.due_at),
        "{late_record:?}"
    );
    assert_eq!(posts[&early.peer.id].len(), 2);
    assert_eq!(posts[&late.peer.id].len(), 2);
    assert_eq!(
        posts[&w.everyone[2].peer.id].len(),
        1,
        "no click, no thanks"
    );
}

/// Send, then wait up to three days for an opt-out: who opts out leaves on that branch, the
/// rest get a follow-up.
const OPT_OUT_JOURNEY: &str = r#"{
  "steps": [
    { "name": "intro",     "kind": "send" },
    { "name": "check",     "kind": "wait_for", "event": "opted_out", "timeout": "72h",
      "then": "gone", "otherwise": "follow_up" },
    { "name": "follow_up", "kind": "send", "variants": ["B"], "next": "done" },
    { "name": "gone",      "kind": "exit" },
    { "name": "done",      "kind": "exit" }
  ]
}"#;

/// Two contacts write STOP on day one (one of them quoting the message), one opts out in the
/// 72h: their waits are decided by the opt-out and they get nothing more.
async fn opt_outs_leave_on_their_branch(w: World) {
    let campaign = w
        .agent
        .create_campaign(spec(OPT_OUT_JOURNEY))
        .await
        .unwrap();
    w.agent.schedule(&campaign.id, None).await.unwrap();
    w.agent.start(&campaign.id).await.unwrap();
    let start = w.clock.now();
    assert_eq!(w.agent.run_once().await.unwrap().sent, 11);
    let posts = campaign_posts(&w.telegram);
    let stoppers = &w.everyone[0..2];
    let day1 = start + SignedDuration::from_hours(24);
    let quoted = posts[&stoppers[0].peer.id][0].message_id;
    for (c, reply_to) in stoppers.iter().zip([Some(quoted), None]) {
        let kind = InboundKind::Text {
            text: "STOP".into(),
            reply_to,
        };
        w.telegram.push_inbound(c.peer, kind, day1);
    }
    w.agent.run_until_idle().await.unwrap();

    let posts = campaign_posts(&w.telegram);
    for (i, c) in w.everyone.iter().enumerate() {
        let got = posts.get(&c.peer.id).map_or(0, Vec::len);
        let expected = match i {
            0 | 1 => 1,
            11 => 0,
            _ => 2,
        };
        assert_eq!(got, expected, "contact {}", c.id);
    }
    let jobs = w.store.jobs(&campaign.id).await.unwrap();
    let decided = |outcome: &str| -> BTreeSet<ContactId> {
        jobs.iter()
            .filter(|j| JourneyPosition::from_decision_step(j.step).is_some())
            .filter(|j| j.outcome.as_deref() == Some(outcome))
            .map(|j| j.contact.clone())
            .collect()
    };
    let stopper_ids: BTreeSet<ContactId> = stoppers.iter().map(|c| c.id.clone()).collect();
    assert_eq!(
        decided(DECIDED_BY_EVENT),
        stopper_ids,
        "an opt-out, quoted or not, takes the opted_out branch"
    );
    assert_eq!(decided(DECIDED_BY_TIMEOUT).len(), 9);
    // The stoppers' timers were cancelled by the withdrawal; nothing is left open.
    for c in stoppers {
        let timer = jobs
            .iter()
            .find(|j| {
                j.contact == c.id
                    && JourneyPosition::from_step(j.step).is_some_and(|p| p.index == 1)
            })
            .unwrap();
        assert_eq!(timer.state, JobState::Cancelled);
    }
    assert_eq!(
        w.store.campaign(&campaign.id).await.unwrap().unwrap().state,
        CampaignState::Completed
    );
}

#[tokio::test(start_paused = true)]
async fn an_opt_out_ends_the_journey_on_its_branch() {
    let clock: Arc<dyn Clock> = Arc::new(SimClock::starting_at(noon()));
    let w = world(12, Arc::new(MemoryStore::new()), clock).await;
    opt_outs_leave_on_their_branch(w).await;
}

#[tokio::test]
async fn an_opt_out_ends_the_journey_on_its_branch_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        mia::store::SqliteStore::open(dir.path().join("mia.db"))
            .await
            .unwrap(),
    );
    let clock: Arc<dyn Clock> = Arc::new(VirtualClock::starting_at(noon()));
    let w = world(12, store, clock).await;
    opt_outs_leave_on_their_branch(w).await;
}

#[tokio::test]
async fn an_opt_out_ends_the_journey_on_its_branch_on_postgres() {
    let Ok(url) = std::env::var("MIA_TEST_POSTGRES_URL") else {
        println!("skipped: set MIA_TEST_POSTGRES_URL to run the journey on Postgres");
        return;
    };
    let schema = format!("mia_journey_{}", std::process::id());
    let store = mia::store::PostgresStore::connect_with_schema(&url, &schema)
        .await
        .unwrap();
    let shared: Arc<dyn Store> = Arc::new(store.clone());
    let clock: Arc<dyn Clock> = Arc::new(VirtualClock::starting_at(noon()));
    let w = world(12, shared, clock).await;
    opt_outs_leave_on_their_branch(w).await;
    store.drop_schema().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_opted_out_branch_that_leads_to_a_send_is_refused() {
    let clock: Arc<dyn Clock> = Arc::new(SimClock::starting_at(noon()));
    let w = world(3, Arc::new(MemoryStore::new()), clock).await;
    let bad = OPT_OUT_JOURNEY.replace(r#""then": "gone""#, r#""then": "follow_up""#);
    let bad = bad.replace(r#""otherwise": "follow_up""#, r#""otherwise": "gone""#);
    match w.agent.create_campaign(spec(&bad)).await {
        Err(Error::InvalidInput(m)) => {
            assert!(m.contains("\"check\"") && m.contains("opted_out"), "{m}");
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    assert!(w.telegram.sent_log().is_empty());
}
