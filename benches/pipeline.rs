//! Sends per second through the send path: the consent rule and the send guard, the splitter,
//! the simulated Telegram (limits off) and the analytics collector, on the in-memory store and
//! on a SQLite file at both durabilities (`Durability::Full` flushes each send's attempt before
//! the send and each batch's results; `Normal` flushes at checkpoints), and on Postgres (a
//! schema of its own for every iteration, dropped at the end) when `MIA_TEST_POSTGRES_URL` is
//! set.
//!
//! Run with: `cargo bench --bench pipeline --features full` (and
//! `MIA_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test` for Postgres)
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use jiff::SignedDuration;
use mia::store::{Durability, PostgresStore, SqliteOptions, SqliteStore};
use mia::{CampaignSpec, MemoryStore};

mod common;

const CONTACTS: i64 = 2_000;

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
            || {
                runtime
                    .block_on(common::ready_agent(CONTACTS, common::unlimited()))
                    .0
            },
            |agent| {
                let stats = runtime.block_on(agent.run_until_idle()).unwrap();
                assert_eq!(stats.sent, CONTACTS as u64);
                stats
            },
            BatchSize::PerIteration,
        );
    });
    // A daily campaign a year in (366 occurrences, the last one due): the first occurrence's
    // jobs (never sent) are superseded and skipped, and occurrence 365's are sent; every job's
    // first message asks whether a later occurrence has superseded it.
    group.bench_function("send_2000_jobs_memory_store_daily_a_year_in", |b| {
        b.iter_batched(
            || {
                let daily = |spec: &mut CampaignSpec| {
                    let recurrence = serde_json::json!({
                        "every": "day", "at": "11:00", "time_zone": "UTC", "count": 366
                    });
                    spec.recurrence = Some(serde_json::from_value(recurrence).unwrap());
                };
                let store = Arc::new(MemoryStore::new());
                let ready = common::ready_agent_with(CONTACTS, common::unlimited(), store, daily);
                let (agent, clock, _) = runtime.block_on(ready);
                clock.advance(SignedDuration::from_hours(24 * 366));
                agent
            },
            |agent| {
                let stats = runtime.block_on(agent.run_until_idle()).unwrap();
                assert_eq!(stats.sent, CONTACTS as u64);
                let superseded = stats.skipped.get(mia::SUPERSEDED_RULE).copied();
                assert_eq!(superseded, Some(CONTACTS as u64), "{stats:?}");
                stats
            },
            BatchSize::PerIteration,
        );
    });
    for (name, durability) in [("full", Durability::Full), ("normal", Durability::Normal)] {
        group.bench_function(format!("send_2000_jobs_sqlite_{name}"), |b| {
            b.iter_batched(
                || {
                    runtime.block_on(async {
                        let dir = tempfile::tempdir().unwrap();
                        let options = SqliteOptions::new().with_durability(durability);
                        let path = dir.path().join("mia.db");
                        let store = Arc::new(SqliteStore::open_with(path, options).await.unwrap());
                        let limits = common::unlimited();
                        let agent = common::ready_agent_on(CONTACTS, limits, store).await.0;
                        (dir, agent)
                    })
                },
                |(dir, agent)| {
                    let stats = runtime.block_on(agent.run_until_idle()).unwrap();
                    assert_eq!(stats.sent, CONTACTS as u64);
                    // Dropped after the timing: the file is deleted outside it.
                    (stats, dir, agent)
                },
                BatchSize::PerIteration,
            );
        });
    }
    match std::env::var("MIA_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        Some(url) => {
            let mut schemas = Vec::new();
            group.bench_function("send_2000_jobs_postgres", |b| {
                b.iter_batched(
                    || {
                        let schema =
                            format!("bench_pipeline_{}_{}", std::process::id(), schemas.len());
                        schemas.push(schema.clone());
                        runtime.block_on(async {
                            let store = PostgresStore::connect_with_schema(&url, &schema).await;
                            let store = Arc::new(store.unwrap());
                            let limits = common::unlimited();
                            common::ready_agent_on(CONTACTS, limits, store).await.0
                        })
                    },
                    |agent| {
                        let stats = runtime.block_on(agent.run_until_idle()).unwrap();
                        assert_eq!(stats.sent, CONTACTS as u64);
                        (stats, agent)
                    },
                    BatchSize::PerIteration,
                );
            });
            runtime.block_on(async {
                for schema in schemas {
                    let store = PostgresStore::connect_with_schema(&url, &schema).await;
                    store.unwrap().drop_schema().await.unwrap();
                }
            });
        }
        None => println!("skipped: set MIA_TEST_POSTGRES_URL to run send_2000_jobs_postgres"),
    }
    group.finish();
}

criterion_group!(benches, send_path);
criterion_main!(benches);
