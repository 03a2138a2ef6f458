//! Sends per second through the send path: the consent rule and the send guard, the splitter,
//! the simulated Telegram (limits off) and the analytics collector, on the in-memory store.
//!
//! Run with: `cargo bench --bench pipeline --features full`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use jiff::{SignedDuration, Timestamp};
use mia::analytics::Collector;
use mia::experiments::Splitter;
use mia::safety::{ContentGuard, SendGuard};
use mia::telegram::{Limits, SimConfig, SimTelegram};
use mia::*;

const CONTACTS: i64 = 2_000;

async fn ready_agent() -> Agent {
    let noon: Timestamp = "2026-12-01T12:00:00Z".parse().unwrap();
    let clock = Arc::new(VirtualClock::starting_at(noon));
    let config = SimConfig {
        limits: Limits {
            global_per_second: u32::MAX,
            per_chat_interval: std::time::Duration::ZERO,
            group_per_minute: u32::MAX,
        },
        deactivated_share: 0.0,
        blocked_share: 0.0,
        ..SimConfig::seeded(1)
    };
    let telegram = SimTelegram::new(config, clock.clone()).unwrap();
    let store = Arc::new(MemoryStore::new());
    let sink: Arc<dyn EventSink> = Arc::new(Collector::new(store.clone()));
    let agent = Agent::builder(TemplateProvider::new(), telegram)
        .shared_store(store)
        .shared_event_sink(sink)
        .content_policy(
            ContentGuard::builder()
                .allow_domain("shop.example")
                .build()
                .unwrap(),
        )
        .send_policy(SendGuard::builder().build().unwrap())
        .allocator(Splitter::new().with_salt("bench"))
        .clock(clock)
        .seed(1)
        .build()
        .unwrap();
    let contacts: Vec<Contact> = (0..CONTACTS)
        .map(|i| Contact::new(format!("u{i}"), TelegramPeer::user(i), "UTC", noon).unwrap())
        .collect();
    let grants: Vec<ConsentRecord> = contacts
        .iter()
        .map(|c| {
            let ev = Evidence::new("telegram_start", "bench");
            ConsentRecord::grant(
                c.id.clone(),
                Purpose::marketing(),
                ev,
                "v1",
                noon - SignedDuration::from_hours(1),
            )
        })
        .collect();
    agent.import_contacts(&contacts).await.unwrap();
    agent.record_consent(&grants).await.unwrap();
    let mut spec = CampaignSpec::new("Bench", "tea", "20% off");
    spec.call_to_action_url = Some("https://shop.example/tea".into());
    let campaign = agent.create_campaign(spec).await.unwrap();
    agent.schedule(&campaign.id, None).await.unwrap();
    agent.start(&campaign.id).await.unwrap();
    agent
}

fn send_path(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(CONTACTS as u64));
    group.sample_size(20);
    group.bench_function("send_2000_jobs_memory_store", |b| {
        b.iter_batched(
            || runtime.block_on(ready_agent()),
            |agent| {
                let stats = runtime.block_on(agent.run_until_idle()).unwrap();
                assert_eq!(stats.sent, CONTACTS as u64);
                stats
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, send_path);
criterion_main!(benches);
