//! A worker's first run over a running journey campaign of 100,000 contacts, on SQLite
//! (`journey_repair.sqlite`, `synchronous = NORMAL`) and, when `MIA_TEST_POSTGRES_URL` is set,
//! on Postgres (`journey_repair.postgres`, in a schema of its own that the bench drops at the
//! end, also after a failure): every intro is sent and every contact's next step is queued (due
//! tomorrow), so the run finds nothing to send and nothing to repair. What it costs is the
//! check for steps a crash left unqueued, which reads the whole campaign (200,000 jobs) once
//! per worker start and whenever a journey campaign runs out of open jobs.
//!
//! Run with: `cargo bench --bench journey_repair --features full` (with
//! `MIA_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test` for Postgres too)
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use jiff::{SignedDuration, Timestamp};
use mia::telegram::{SimConfig, SimTelegram};
use mia::*;

const CONTACTS: u32 = 100_000;

const JOURNEY: &str = r#"{ "steps": [
    { "name": "intro",     "kind": "send" },
    { "name": "pause",     "kind": "wait", "duration": "24h" },
    { "name": "follow_up", "kind": "send", "next": "done" },
    { "name": "done",      "kind": "exit" }
] }"#;

fn noon() -> Timestamp {
    "2026-12-01T12:00:00Z".parse().unwrap()
}

/// The campaign: intros sent, follow-ups queued for tomorrow.
async fn fill(store: &dyn Store) {
    let mut spec = CampaignSpec::new("Bench", "tea", "20% off");
    spec.journey = Some(serde_json::from_str(JOURNEY).unwrap());
    let mut c = Campaign::draft(CampaignId::new("journey"), spec, noon());
    store.insert_campaign(&c).await.unwrap();
    c.state = CampaignState::Running;
    let job = |i: u32, step: u32, due_at: Timestamp| {
        let contact = ContactId::new(format!("c{i}"));
        NewJob {
            key: IdempotencyKey::for_job(&c.id, &contact, step),
            contact,
            purpose: Purpose::marketing(),
            step,
            due_at,
            skipped: None,
        }
    };
    let intros: Vec<NewJob> = (0..CONTACTS).map(|i| job(i, 0, noon())).collect();
    store.schedule(&c, &intros).await.unwrap();
    let lease = SignedDuration::from_mins(5);
    let claimed = store
        .claim("w", noon(), lease, CONTACTS as usize)
        .await
        .unwrap();
    assert_eq!(claimed.len(), CONTACTS as usize);
    let sent: Vec<_> = claimed
        .iter()
        .map(|j| (j, JobUpdate::Sent { message_id: 1 }))
        .collect();
    assert!(store.update_jobs(&sent, noon()).await.unwrap().is_empty());
    let follow_up = JourneyPosition {
        index: 2,
        ..JourneyPosition::default()
    }
    .step();
    let tomorrow = noon() + SignedDuration::from_hours(24);
    let next: Vec<NewJob> = (0..CONTACTS).map(|i| job(i, follow_up, tomorrow)).collect();
    let id = CampaignId::new("journey");
    let queued = store.enqueue(&id, &next, noon()).await.unwrap();
    assert_eq!(queued, u64::from(CONTACTS));
}

fn repair(c: &mut Criterion) {
    let (rt, _dir, store) = common::sqlite_store("journey.db");
    rt.block_on(fill(&store));
    repair_on(c, &rt, "journey_repair.sqlite", Arc::new(store));
    common::on_postgres(&rt, "journey_repair.postgres", |store| {
        rt.block_on(fill(store));
        repair_on(c, &rt, "journey_repair.postgres", Arc::new(store.clone()));
    });
}

/// A new worker's first run over the campaign in `store`, as bench group `name`.
fn repair_on(c: &mut Criterion, rt: &tokio::runtime::Runtime, name: &str, store: Arc<dyn Store>) {
    let clock = Arc::new(SimClock::starting_at(noon()));
    let telegram = SimTelegram::new(SimConfig::seeded(1), clock.clone()).unwrap();
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    group.bench_function("first_run_100000_contacts", |b| {
        b.iter(|| {
            // A new worker checks its journeys once, on its first run.
            let agent = Agent::builder(TemplateProvider::new(), telegram.clone())
                .shared_store(store.clone())
                .permissive_policies()
                .clock(clock.clone())
                .build()
                .unwrap();
            let stats = rt.block_on(agent.run_once()).unwrap();
            assert_eq!(stats.journey_steps, 0, "nothing to repair");
            assert_eq!(stats.sent, 0, "nothing due");
        });
    });
    group.finish();
}

criterion_group!(benches, repair);
criterion_main!(benches);
