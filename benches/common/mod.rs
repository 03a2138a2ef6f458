//! Shared set-up of the benches: an agent with the guards, the splitter, the collector and the
//! simulated Telegram, a consented audience and a running campaign.
#![allow(dead_code)]

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use mia::analytics::Collector;
use mia::experiments::Splitter;
use mia::safety::{ContentGuard, SendGuard};
use mia::telegram::{Limits, SimConfig, SimTelegram};
use mia::*;

/// No limits at all: measures the send path, not the pacing.
pub(crate) fn unlimited() -> Limits {
    Limits {
        global_per_second: u32::MAX,
        per_chat_interval: std::time::Duration::ZERO,
        group_per_minute: u32::MAX,
    }
}

/// A running campaign to `contacts` consented contacts on a simulator with `limits`, in
/// virtual time; returns the agent, its clock and the simulator.
pub(crate) async fn ready_agent(
    contacts: i64,
    limits: Limits,
) -> (Agent, Arc<VirtualClock>, SimTelegram) {
    ready_agent_on(contacts, limits, Arc::new(MemoryStore::new())).await
}

/// [`ready_agent`] on `store`, which the agent and its collector share.
pub(crate) async fn ready_agent_on(
    contacts: i64,
    limits: Limits,
    store: Arc<dyn Store>,
) -> (Agent, Arc<VirtualClock>, SimTelegram) {
    ready_agent_with(contacts, limits, store, |_| {}).await
}

/// [`ready_agent_on`], with the campaign's spec changed by `edit` before it is created.
pub(crate) async fn ready_agent_with(
    contacts: i64,
    limits: Limits,
    store: Arc<dyn Store>,
    edit: impl FnOnce(&mut CampaignSpec),
) -> (Agent, Arc<VirtualClock>, SimTelegram) {
    let noon: Timestamp = "2026-12-01T12:00:00Z".parse().unwrap();
    let clock = Arc::new(VirtualClock::starting_at(noon));
    let config = SimConfig {
        limits,
        deactivated_share: 0.0,
        blocked_share: 0.0,
        ..SimConfig::seeded(1)
    };
    let telegram = SimTelegram::new(config, clock.clone()).unwrap();
    let sink: Arc<dyn EventSink> = Arc::new(Collector::new(store.clone()));
    let agent = Agent::builder(TemplateProvider::new(), telegram.clone())
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
        .clock(clock.clone())
        .seed(1)
        .build()
        .unwrap();
    let people: Vec<Contact> = (0..contacts)
        .map(|i| Contact::new(format!("u{i}"), TelegramPeer::user(i), "UTC", noon).unwrap())
        .collect();
    let grants: Vec<ConsentRecord> = people
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
    agent.import_contacts(&people).await.unwrap();
    agent.record_consent(&grants).await.unwrap();
    let mut spec = CampaignSpec::new("Bench", "tea", "20% off");
    spec.call_to_action_url = Some("https://shop.example/tea".into());
    edit(&mut spec);
    let campaign = agent.create_campaign(spec).await.unwrap();
    agent.schedule(&campaign.id, None).await.unwrap();
    agent.start(&campaign.id).await.unwrap();
    (agent, clock, telegram)
}

/// A two-thread runtime and a fresh SQLite file store (default durability) named `file` in a
/// temporary folder, which lives as long as the returned `TempDir`.
pub(crate) fn sqlite_store(
    file: &str,
) -> (
    tokio::runtime::Runtime,
    tempfile::TempDir,
    mia::store::SqliteStore,
) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = rt
        .block_on(mia::store::SqliteStore::open(dir.path().join(file)))
        .unwrap();
    (rt, dir, store)
}

/// Runs `bench` on a Postgres store in a schema of its own named after `name` and this
/// process, when `MIA_TEST_POSTGRES_URL` is set (otherwise prints that `name` was skipped),
/// then drops the schema: also after a panic, which then goes on.
#[allow(clippy::print_stdout)]
pub(crate) fn on_postgres(
    rt: &tokio::runtime::Runtime,
    name: &str,
    bench: impl FnOnce(&mia::store::PostgresStore),
) {
    let Some(url) = std::env::var("MIA_TEST_POSTGRES_URL")
        .ok()
        .filter(|url| !url.is_empty())
    else {
        println!("{name} skipped: set MIA_TEST_POSTGRES_URL");
        return;
    };
    let schema = format!("mia_bench_{name}_{}", std::process::id()).replace('.', "_");
    let store = rt
        .block_on(mia::store::PostgresStore::connect_with_schema(
            &url, &schema,
        ))
        .unwrap();
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| bench(&store)));
    rt.block_on(store.drop_schema()).unwrap();
    if let Err(panic) = ran {
        std::panic::resume_unwind(panic);
    }
}
