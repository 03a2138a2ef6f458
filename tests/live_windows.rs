//! Real-time windows read while a campaign runs: after every batch the collector's minute,
//! hour and day windows and its sliding windows agree with the events in the store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use mia::analytics::Collector;
use mia::analytics::window::{Granularity, WindowConfig, ZoneRule};
use mia::telegram::{SimConfig, SimTelegram};
use mia::*;

fn start() -> Timestamp {
    // 23:58 in UTC: the campaign runs across midnight.
    "2026-12-01T23:58:00Z".parse().unwrap()
}

#[tokio::test(start_paused = true)]
async fn windows_are_readable_while_a_campaign_runs_and_match_the_store() {
    let clock = Arc::new(SimClock::starting_at(start()));
    let telegram = SimTelegram::new(
        SimConfig {
            deactivated_share: 0.0,
            blocked_share: 0.0,
            ..SimConfig::seeded(11)
        },
        clock.clone(),
    )
    .unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    // Half the contacts live in Tokyo, where it is already the 2nd; the rest fall back to UTC.
    let contacts: Vec<Contact> = (0..600)
        .map(|i| {
            let zone = if i % 2 == 0 { "Asia/Tokyo" } else { "UTC" };
            Contact::new(format!("u{i:04}"), TelegramPeer::user(i + 1), zone, start()).unwrap()
        })
        .collect();
    let zones: HashMap<ContactId, TimeZone> = contacts
        .iter()
        .filter(|c| c.time_zone == "Asia/Tokyo")
        .map(|c| (c.id.clone(), TimeZone::get("Asia/Tokyo").unwrap()))
        .collect();
    let collector = Arc::new(Collector::with_windows(
        store.clone(),
        WindowConfig::new(ZoneRule::contacts(zones, TimeZone::UTC)),
    ));
    let agent = Agent::builder(TemplateProvider::new(), telegram.clone())
        .shared_store(store.clone())
        .shared_event_sink(collector.clone())
        .permissive_policies()
        .clock(clock.clone())
        .seed(3)
        .build()
        .unwrap();
    agent.import_contacts(&contacts).await.unwrap();
    let grants = common::marketing_grants(&contacts, start() - SignedDuration::from_hours(1));
    agent.record_consent(&grants).await.unwrap();
    let campaign = agent
        .create_campaign(CampaignSpec::new(
            "Winter",
            "green tea",
            "20% off this week",
        ))
        .await
        .unwrap();
    agent.schedule(&campaign.id, None).await.unwrap();
    agent.start(&campaign.id).await.unwrap();

    // Read the windows after every batch, while the campaign runs.
    let mut snapshots: Vec<(Timestamp, u64, u64, u64)> = Vec::new();
    agent
        .run_until_idle_with(|_| {
            let now = clock.now();
            let total: u64 = collector
                .counts(&campaign.id)
                .iter()
                .filter(|((_, kind), _)| *kind == "sent")
                .map(|(_, n)| *n)
                .sum();
            // Every granularity accounts for every send so far.
            for g in Granularity::ALL {
                let windowed: u64 = collector
                    .tumbling(&campaign.id, g)
                    .iter()
                    .map(|w| w.counts.total("sent"))
                    .sum();
                assert_eq!(windowed, total, "{g:?} at {now}");
            }
            let last = |mins| {
                collector
                    .sliding(&campaign.id, SignedDuration::from_mins(mins), now)
                    .unwrap()
                    .total("sent")
            };
            snapshots.push((now, total, last(1), last(10)));
        })
        .await
        .unwrap();
    let sent: Vec<Timestamp> = store
        .campaign_events(&campaign.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EventKind::Sent)
        .map(|e| e.at)
        .collect();
    assert_eq!(sent.len(), 600);
    assert!(
        snapshots.len() > 2,
        "windows were read while the campaign ran"
    );
    let mut previous = 0;
    for (now, total, last1, last10) in &snapshots {
        assert!(*total >= previous);
        previous = *total;
        // The sliding windows read then agree with the store's events up to that moment.
        let minute = now.as_second().div_euclid(60);
        let within = |mins: i64| {
            sent.iter()
                .filter(|at| **at <= *now && at.as_second().div_euclid(60) > minute - mins)
                .count() as u64
        };
        assert_eq!(*last1, within(1), "last minute at {now}");
        assert_eq!(*last10, within(10), "last 10 minutes at {now}");
    }
    assert_eq!(previous, 600);
    // Tokyo contacts' sends fall on their 2nd of December; UTC contacts' on the 1st or 2nd.
    let days = collector.tumbling(&campaign.id, Granularity::Day);
    let dec2 = days
        .iter()
        .find(|d| d.start.date() == jiff::civil::date(2026, 12, 2))
        .unwrap();
    assert!(dec2.counts.total("sent") >= 300, "{days:?}");
    assert_eq!(collector.late(&campaign.id), 0);
}
