//! A campaign report counts every message of a journey: follow-ups count for their variant and
//! in `messages`, while the audience is still accounted for once; events carry the journey step
//! they are about, so windows count each step apart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use mia::analytics::CampaignReport;
use mia::analytics::window::{Granularity, WindowConfig, Windows};
use mia::telegram::{SimConfig, SimTelegram};
use mia::*;

const JOURNEY: &str = r#"{
  "steps": [
    { "name": "intro",     "kind": "send" },
    { "name": "pause",     "kind": "wait", "duration": "1h" },
    { "name": "follow_up", "kind": "send", "variants": ["B"], "next": "done" },
    { "name": "done",      "kind": "exit" }
  ]
}"#;

/// Runs a campaign of `journey` to its end: twelve contacts, ten of whom opted in. Returns the
/// store, the campaign and how many campaign messages Telegram took.
async fn run(journey: &str) -> (Arc<dyn Store>, Campaign, usize) {
    let noon: Timestamp = "2026-12-01T12:00:00Z".parse().unwrap();
    let clock = Arc::new(SimClock::starting_at(noon));
    let telegram = SimTelegram::new(
        SimConfig {
            deactivated_share: 0.0,
            blocked_share: 0.0,
            privacy_share: 0.0,
            ..SimConfig::seeded(4)
        },
        clock.clone(),
    )
    .unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let agent = Agent::builder(TemplateProvider::new(), telegram.clone())
        .shared_store(store.clone())
        .permissive_policies()
        .clock(clock)
        .seed(2)
        .build()
        .unwrap();
    let everyone: Vec<Contact> = (0..12)
        .map(|i| Contact::new(format!("u{i}"), TelegramPeer::user(i + 1), "UTC", noon).unwrap())
        .collect();
    agent.import_contacts(&everyone).await.unwrap();
    // Ten of twelve opted in.
    let grants = common::marketing_grants(&everyone[..10], noon - SignedDuration::from_hours(1));
    agent.record_consent(&grants).await.unwrap();
    let mut spec = CampaignSpec::new("Winter", "green tea", "20% off this week");
    spec.journey = Some(serde_json::from_str(journey).unwrap());
    let campaign = agent.create_campaign(spec).await.unwrap();
    agent.schedule(&campaign.id, None).await.unwrap();
    agent.start(&campaign.id).await.unwrap();
    agent.run_until_idle().await.unwrap();
    let posts = telegram
        .sent_log()
        .into_iter()
        .filter(|m| m.campaign.is_some())
        .count();
    (store, campaign, posts)
}

#[tokio::test(start_paused = true)]
async fn follow_ups_count_as_messages_of_their_variant() {
    let (store, campaign, posts) = run(JOURNEY).await;
    assert_eq!(posts, 20, "an intro and a follow-up each");
    let report = CampaignReport::build(store.as_ref(), &campaign.id)
        .await
        .unwrap();
    assert_eq!(report.audience, 12);
    assert_eq!(report.sent, 10);
    assert_eq!(report.messages, 20);
    assert!(report.accounts_for_everyone(), "{report:?}");
    let a = &report.variants[&VariantId::new("A")];
    let b = &report.variants[&VariantId::new("B")];
    assert_eq!(a.sent + b.sent, 20, "{report:?}");
    assert!(b.sent >= 10, "every follow-up is a B: {report:?}");

    // Every event names its step: 0 the intro, 2 the follow-up (1 is the wait).
    let events = store.campaign_events(&campaign.id).await.unwrap();
    let mut windows = Windows::new(WindowConfig::default());
    for e in &events {
        windows.add(e);
    }
    let day = &windows.tumbling(&campaign.id, Granularity::Day)[0].counts;
    let sent_at = |step| {
        day.step_count(Some(&VariantId::new("A")), Some(step), "sent")
            + day.step_count(Some(&VariantId::new("B")), Some(step), "sent")
    };
    assert_eq!(sent_at(0), 10, "{day:?}");
    assert_eq!(sent_at(2), 10, "{day:?}");
    assert_eq!(
        day.step_count(Some(&VariantId::new("A")), Some(2), "sent"),
        0,
        "the follow-up sends only B"
    );
    assert!(
        events.iter().all(|e| e.step.is_some()),
        "every event of this campaign is about a message: {events:?}"
    );
}

/// A journey that starts with a wait has its first job at a later step: the report counts the
/// audience there, not at step 0 (where it found no one).
#[tokio::test(start_paused = true)]
async fn a_journey_starting_with_a_wait_counts_its_audience_at_its_first_job() {
    const WAIT_FIRST: &str = r#"{
      "steps": [
        { "name": "pause", "kind": "wait", "duration": "1h" },
        { "name": "intro", "kind": "send", "next": "done" },
        { "name": "done",  "kind": "exit" }
      ]
    }"#;
    let (store, campaign, posts) = run(WAIT_FIRST).await;
    assert_eq!(posts, 10);
    let report = CampaignReport::build(store.as_ref(), &campaign.id)
        .await
        .unwrap();
    assert_eq!(report.audience, 12, "{report:?}");
    assert_eq!((report.sent, report.messages), (10, 10), "{report:?}");
    assert_eq!(report.skipped.values().sum::<u64>(), 2, "{report:?}");
    assert!(report.accounts_for_everyone(), "{report:?}");
}
