//! Campaign timing end to end in virtual time: send windows on each contact's own clock,
//! across a daylight-saving change; recurring campaigns that re-read their audience and
//! consent for every occurrence.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use mia::telegram::{SimConfig, SimTelegram};
use mia::*;

struct World {
    agent: Agent,
    telegram: SimTelegram,
    clock: Arc<SimClock>,
    store: Arc<dyn Store>,
    everyone: Vec<Contact>,
}

/// Contacts in Berlin, New York and Tokyo, all opted in; the sim delivers everything it is
/// given.
async fn world(start: Timestamp, seed: u64) -> World {
    let clock = Arc::new(SimClock::starting_at(start));
    let mut config = SimConfig {
        deactivated_share: 0.0,
        blocked_share: 0.0,
        privacy_share: 0.0,
        ..SimConfig::seeded(seed)
    };
    // Nobody stops or blocks on their own: the tests decide who leaves.
    config.behaviour.stop = 0.0;
    config.behaviour.block = 0.0;
    let telegram = SimTelegram::new(config, clock.clone()).unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let agent = Agent::builder(TemplateProvider::new(), telegram.clone())
        .shared_store(store.clone())
        .permissive_policies()
        .clock(clock.clone())
        .seed(seed)
        .build()
        .unwrap();
    let zones = ["Europe/Berlin", "America/New_York", "Asia/Tokyo"];
    let everyone: Vec<Contact> = (0..9)
        .map(|i| {
            Contact::new(
                format!("u{i}"),
                TelegramPeer::user(i + 1),
                zones[i as usize % 3],
                start,
            )
            .unwrap()
        })
        .collect();
    agent.import_contacts(&everyone).await.unwrap();
    let grants = common::marketing_grants(&everyone, start - SignedDuration::from_hours(1));
    agent.record_consent(&grants).await.unwrap();
    World {
        agent,
        telegram,
        clock,
        store,
        everyone,
    }
}

fn zone_of(world: &World, peer: TelegramPeer) -> TimeZone {
    let contact = world.everyone.iter().find(|c| c.peer == peer).unwrap();
    TimeZone::get(&contact.time_zone).unwrap()
}

#[tokio::test(start_paused = true)]
async fn messages_wait_for_the_send_window_on_each_contacts_clock() {
    // Saturday 2026-03-28 20:00 UTC. Berlin moves its clocks forward on Sunday the 29th, New
    // York did on the 8th; the window is weekdays 09:00–11:00 local, so nobody gets anything
    // before Monday 09:00 on their own clock: 07:00Z in Berlin (now CEST), 13:00Z in New York
    // (EDT), 00:00Z in Tokyo.
    let start: Timestamp = "2026-03-28T20:00:00Z".parse().unwrap();
    let w = world(start, 11).await;
    let mut spec = CampaignSpec::new("Spring", "green tea", "20% off this week");
    spec.send_window = Some(
        serde_json::from_str(
            r#"{"start": "09:00", "end": "11:00", "weekdays": ["mon", "tue", "wed", "thu", "fri"]}"#,
        )
        .unwrap(),
    );
    let campaign = w.agent.create_campaign(spec).await.unwrap();
    w.agent.schedule(&campaign.id, None).await.unwrap();
    w.agent.start(&campaign.id).await.unwrap();
    let stats = w.agent.run_until_idle().await.unwrap();

    let sent = campaign_sends(&w);
    assert_eq!(sent.len(), 9, "deferred, never dropped: {stats:?}");
    assert_eq!(stats.deferred.get(SEND_WINDOW_RULE), Some(&9), "{stats:?}");
    let window = campaign_window(&w, &campaign.id).await;
    for m in &sent {
        let tz = zone_of(&w, m.peer);
        let local = tz.to_datetime(m.at);
        assert!(window.is_open(m.at, &tz), "{} at {local} local", m.peer.id);
        assert_eq!(local.date(), "2026-03-30".parse().unwrap(), "Monday");
        // The first opening: the worker sends as soon as the window opens (paced by the rate
        // limit, so within its first minute).
        assert!(first_minute(local.time()), "{local}");
    }
    let berlin = sent
        .iter()
        .find(|m| zone_of(&w, m.peer) == TimeZone::get("Europe/Berlin").unwrap())
        .unwrap();
    assert_eq!(
        berlin.at,
        "2026-03-30T07:00:00Z".parse::<Timestamp>().unwrap()
    );
    let status = w.agent.status(&campaign.id).await.unwrap();
    assert_eq!(status.state, CampaignState::Completed);
}

fn first_minute(t: jiff::civil::Time) -> bool {
    (jiff::civil::time(9, 0, 0, 0)..jiff::civil::time(9, 1, 0, 0)).contains(&t)
}

async fn campaign_window(w: &World, id: &CampaignId) -> SendWindow {
    w.agent
        .campaign(id)
        .await
        .unwrap()
        .spec
        .send_window
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn inside_the_window_messages_go_at_once() {
    // Wednesday 2026-12-02 09:30 UTC: 10:30 in Berlin (inside 09:00–11:00), 04:30 in New York
    // and 18:30 in Tokyo (outside).
    let start: Timestamp = "2026-12-02T09:30:00Z".parse().unwrap();
    let w = world(start, 12).await;
    let mut spec = CampaignSpec::new("Winter", "green tea", "20% off this week");
    spec.send_window = Some(
        SendWindow::new(
            jiff::civil::time(9, 0, 0, 0),
            jiff::civil::time(11, 0, 0, 0),
        )
        .unwrap(),
    );
    let campaign = w.agent.create_campaign(spec).await.unwrap();
    w.agent.schedule(&campaign.id, None).await.unwrap();
    w.agent.start(&campaign.id).await.unwrap();
    let stats = w.agent.run_until_idle().await.unwrap();
    assert_eq!(stats.deferred.get(SEND_WINDOW_RULE), Some(&6), "{stats:?}");
    let sent = campaign_sends(&w);
    let berlin = TimeZone::get("Europe/Berlin").unwrap();
    for m in &sent {
        let tz = zone_of(&w, m.peer);
        if tz == berlin {
            assert!(
                m.at < start + SignedDuration::from_mins(5),
                "Berlin at once: {}",
                m.at
            );
        } else {
            let local = tz.to_datetime(m.at);
            assert!(first_minute(local.time()), "{local}");
        }
    }
    assert_eq!(sent.len(), 9);
}

#[tokio::test(start_paused = true)]
async fn a_recurring_campaign_reads_its_audience_and_consent_for_every_occurrence() {
    // Monday 2026-11-30 07:00 UTC; every day at 10:00 Berlin (09:00Z), three times.
    let start: Timestamp = "2026-11-30T07:00:00Z".parse().unwrap();
    let w = world(start, 13).await;
    let mut spec = CampaignSpec::new("Daily tip", "green tea", "a new tip every day");
    spec.recurrence = Some(
        serde_json::from_str(
            r#"{"every": "day", "at": "10:00", "time_zone": "Europe/Berlin", "count": 3}"#,
        )
        .unwrap(),
    );
    let campaign = w.agent.create_campaign(spec).await.unwrap();
    let summary = w.agent.schedule(&campaign.id, None).await.unwrap();
    assert_eq!(summary.queued, 9);
    // Scheduling fixed the first date, so every worker numbers the occurrences alike.
    let stored = w.agent.campaign(&campaign.id).await.unwrap();
    assert_eq!(
        stored.spec.recurrence.as_ref().unwrap().starts,
        Some("2026-11-30".parse().unwrap())
    );
    w.agent.start(&campaign.id).await.unwrap();

    // Occurrence 0 goes out at 09:00Z, not before.
    assert_eq!(w.agent.run_once().await.unwrap().sent, 0, "not due yet");
    w.clock
        .sleep_until(start + SignedDuration::from_hours(2))
        .await;
    assert_eq!(w.agent.run_once().await.unwrap().sent, 9);
    let status = w.agent.status(&campaign.id).await.unwrap();
    assert_eq!(status.state, CampaignState::Running, "{status:?}");
    assert_eq!(
        status.next_occurrence,
        Some("2026-12-01T09:00:00Z".parse().unwrap())
    );

    // Between occurrences, u0 stops and a newcomer opts in: the next ones follow.
    w.agent
        .opt_out(&w.everyone[0].id, Evidence::new("stop_keyword", "update=1"))
        .await
        .unwrap();
    let now = w.clock.now();
    let newcomer = Contact::new("new", TelegramPeer::user(99), "Asia/Tokyo", now).unwrap();
    w.agent
        .import_contacts(std::slice::from_ref(&newcomer))
        .await
        .unwrap();
    let grant = common::marketing_grants(std::slice::from_ref(&newcomer), now);
    w.agent.record_consent(&grant).await.unwrap();
    let rest = w.agent.run_until_idle().await.unwrap();
    assert_eq!(rest.sent, 18, "{rest:?}");

    let status = w.agent.status(&campaign.id).await.unwrap();
    assert_eq!(
        status.state,
        CampaignState::Completed,
        "after the third: {status:?}"
    );
    assert_eq!(status.next_occurrence, None);
    let sent = campaign_sends(&w);
    let mut days = std::collections::BTreeMap::<String, Vec<i64>>::new();
    for m in &sent {
        let at = m.at.to_string();
        assert_eq!(&at[11..16], "09:00", "10:00 in Berlin: {at}");
        days.entry(at[..10].to_owned()).or_default().push(m.peer.id);
    }
    let days: Vec<_> = days.into_iter().collect();
    assert_eq!(days.len(), 3, "{days:?}");
    assert!(days[0].1.contains(&1) && !days[0].1.contains(&99));
    for (day, peers) in &days[1..] {
        assert_eq!(peers.len(), 9, "{day}");
        assert!(!peers.contains(&1), "u0 stopped: {day}");
        assert!(peers.contains(&99), "the newcomer opted in: {day}");
    }
    // Each message is its own job: three occurrences, three keys per contact.
    let keys: std::collections::BTreeSet<_> = sent.iter().map(|m| m.key.clone()).collect();
    assert_eq!(keys.len(), 27);
}

#[tokio::test(start_paused = true)]
async fn a_contact_of_unknown_zone_waits_for_the_window_on_every_audience_clock() {
    // Thursday 2026-11-26 08:00 UTC. Someone who wrote to the bot first has no known zone; the
    // business's audience lives in London and New York: 09:00-18:00 on both clocks is
    // 14:00-18:00 UTC.
    let start: Timestamp = "2026-11-26T08:00:00Z".parse().unwrap();
    let clock = Arc::new(SimClock::starting_at(start));
    let mut config = SimConfig::seeded(14);
    config.deactivated_share = 0.0;
    config.blocked_share = 0.0;
    config.privacy_share = 0.0;
    let telegram = SimTelegram::new(config, clock.clone()).unwrap();
    let agent = Agent::builder(TemplateProvider::new(), telegram.clone())
        .store(MemoryStore::new())
        .permissive_policies()
        .clock(clock)
        .zones_when_unknown(["Europe/London", "America/New_York"])
        .seed(14)
        .build()
        .unwrap();
    let who = Contact::new("walk-in", TelegramPeer::user(5), UNKNOWN_TIME_ZONE, start).unwrap();
    agent
        .import_contacts(std::slice::from_ref(&who))
        .await
        .unwrap();
    let grants = common::marketing_grants(std::slice::from_ref(&who), start);
    agent.record_consent(&grants).await.unwrap();
    let mut spec = CampaignSpec::new("Winter", "green tea", "20% off this week");
    spec.send_window = Some(
        SendWindow::new(
            jiff::civil::time(9, 0, 0, 0),
            jiff::civil::time(18, 0, 0, 0),
        )
        .unwrap(),
    );
    let campaign = agent.create_campaign(spec.clone()).await.unwrap();
    agent.schedule(&campaign.id, None).await.unwrap();
    agent.start(&campaign.id).await.unwrap();
    agent.run_until_idle().await.unwrap();
    let sent: Vec<_> = telegram
        .sent_log()
        .into_iter()
        .filter(|m| m.campaign.is_some())
        .collect();
    assert_eq!(sent.len(), 1);
    let at = sent[0].at;
    assert!(
        at >= "2026-11-26T14:00:00Z".parse::<Timestamp>().unwrap()
            && at < "2026-11-26T14:01:00Z".parse::<Timestamp>().unwrap(),
        "09:00 in New York, the later clock: {at}"
    );

    // A window that is never open on both clocks at once is refused when scheduling, not
    // left to defer forever.
    spec.send_window = Some(
        SendWindow::new(
            jiff::civil::time(9, 0, 0, 0),
            jiff::civil::time(11, 0, 0, 0),
        )
        .unwrap(),
    );
    let never = agent.create_campaign(spec).await.unwrap();
    let err = agent
        .schedule(&never.id, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("never open"), "{err}");
}

/// A daily campaign at 10:00 UTC, `count` times, scheduled Monday 2026-11-30 07:00 UTC.
async fn daily(count: u32, seed: u64) -> (World, CampaignId) {
    let start: Timestamp = "2026-11-30T07:00:00Z".parse().unwrap();
    let w = world(start, seed).await;
    let mut spec = CampaignSpec::new("Daily tip", "green tea", "a new tip every day");
    spec.recurrence = Some(
        serde_json::from_str(&format!(
            r#"{{"every": "day", "at": "10:00", "time_zone": "UTC", "count": {count}}}"#
        ))
        .unwrap(),
    );
    let campaign = w.agent.create_campaign(spec).await.unwrap();
    w.agent.schedule(&campaign.id, None).await.unwrap();
    (w, campaign.id)
}

fn campaign_sends(w: &World) -> Vec<mia::telegram::SentMessage> {
    w.telegram
        .sent_log()
        .into_iter()
        .filter(|m| m.campaign.is_some())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn an_occurrence_nobody_sent_in_time_is_superseded_not_sent_late() {
    let (w, id) = daily(4, 15).await;
    // Started only on Wednesday at noon: Monday's and Tuesday's tips are stale.
    w.clock
        .sleep_until("2026-12-02T12:00:00Z".parse().unwrap())
        .await;
    w.agent.start(&id).await.unwrap();
    let stats = w.agent.run_until_idle().await.unwrap();
    assert_eq!(
        stats.skipped.get(SUPERSEDED_RULE),
        Some(&9),
        "Monday's jobs: {stats:?}"
    );
    let sent = campaign_sends(&w);
    assert_eq!(sent.len(), 18, "Wednesday's and Thursday's, once each");
    let mut per_contact = std::collections::BTreeMap::<i64, Vec<String>>::new();
    for m in &sent {
        per_contact
            .entry(m.peer.id)
            .or_default()
            .push(m.at.to_string()[..13].to_owned());
    }
    for (peer, days) in per_contact {
        assert_eq!(days, ["2026-12-02T12", "2026-12-03T10"], "user {peer}");
    }
    let status = w.agent.status(&id).await.unwrap();
    assert_eq!(status.state, CampaignState::Completed);
}

#[tokio::test(start_paused = true)]
async fn the_last_occurrence_falling_due_during_a_batch_is_not_lost() {
    let (w, id) = daily(2, 16).await;
    w.agent.start(&id).await.unwrap();
    // The worker first runs a moment before Tuesday's 10:00: Monday's tip is late but not yet
    // superseded, and sending it carries the batch past 10:00, when the last one falls due.
    w.clock
        .sleep_until("2026-12-01T09:59:59.990Z".parse().unwrap())
        .await;
    let stats = w.agent.run_until_idle().await.unwrap();
    // Monday's tips that had not gone out by 10:00 were superseded by Tuesday's; Tuesday's
    // reached everyone.
    let superseded = stats.skipped.get(SUPERSEDED_RULE).copied().unwrap_or(0);
    let sent = campaign_sends(&w);
    assert_eq!(sent.len() as u64 + superseded, 18, "{stats:?}");
    let tuesday: Timestamp = "2026-12-01T10:00:00Z".parse().unwrap();
    for c in &w.everyone {
        assert!(
            sent.iter().any(|m| m.peer == c.peer && m.at >= tuesday),
            "{} got Tuesday's tip",
            c.id
        );
    }
    let status = w.agent.status(&id).await.unwrap();
    assert_eq!(status.state, CampaignState::Completed, "{status:?}");
}

#[tokio::test(start_paused = true)]
async fn a_recurrence_starting_in_the_past_is_refused() {
    let start: Timestamp = "2026-11-30T07:00:00Z".parse().unwrap();
    let w = world(start, 17).await;
    for (json, needle) in [
        (
            r#"{"every": "day", "at": "10:00", "time_zone": "UTC", "starts": "2026-11-01"}"#,
            "before the campaign's start",
        ),
        (
            r#"{"every": "day", "at": "10:00", "time_zone": "UTC", "until": "2026-11-02T00:00:00Z"}"#,
            "no occurrence",
        ),
    ] {
        let mut spec = CampaignSpec::new("Daily tip", "green tea", "a new tip every day");
        spec.recurrence = Some(serde_json::from_str(json).unwrap());
        let campaign = w.agent.create_campaign(spec).await.unwrap();
        let err = w
            .agent
            .schedule(&campaign.id, None)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{json}: {err}");
    }
    assert!(campaign_sends(&w).is_empty());
}

#[tokio::test(start_paused = true)]
async fn two_workers_queue_and_send_each_occurrence_once() {
    let (w, id) = daily(3, 18).await;
    let second = Agent::builder(TemplateProvider::new(), w.telegram.clone())
        .shared_store(w.store.clone())
        .permissive_policies()
        .clock(w.clock.clone())
        .worker_id("worker-2")
        .seed(19)
        .build()
        .unwrap();
    w.agent.start(&id).await.unwrap();
    let (a, b) = tokio::join!(w.agent.run_until_idle(), second.run_until_idle());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.sent + b.sent, 27, "{a:?} {b:?}");
    let sent = campaign_sends(&w);
    let keys: std::collections::BTreeSet<_> = sent.iter().map(|m| m.key.clone()).collect();
    assert_eq!((sent.len(), keys.len()), (27, 27), "nothing twice");
    let jobs = w.store.jobs(&id).await.unwrap();
    assert_eq!(jobs.len(), 27, "each occurrence queued once");
    assert_eq!(
        w.agent.status(&id).await.unwrap().state,
        CampaignState::Completed
    );
}
