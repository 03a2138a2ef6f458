//! Events per second into SQLite (WAL): one event per call straight to the store, and many
//! concurrent callers through `BatchingSink`'s group commit (each call still returns only after
//! its event is written), into one table that keeps growing.
//!
//! Runs at both durabilities of the store, in groups named after it: `events.full`
//! (`synchronous = FULL`: a returned write survives a power cut) and `events.normal`
//! (`synchronous = NORMAL`, the default: a returned write survives a killed process).
//! `MIA_BENCH_DURABILITY=full` (or `normal`) runs only one of them.
//!
//! Run with: `cargo bench --bench events --features full`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jiff::Timestamp;
use mia::analytics::BatchingSink;
use mia::store::{Durability, SqliteOptions, SqliteStore};
use mia::*;

const CALLERS: u64 = 64;
const PER_CALLER: u64 = 100;

fn event(n: u64) -> Event {
    Event {
        id: EventId::new(format!("e{n}")),
        at: Timestamp::from_second(1_800_000_000).unwrap(),
        contact: ContactId::new(format!("c{}", n % 1000)),
        campaign: Some(CampaignId::new("bench")),
        variant: Some(VariantId::new("A")),
        step: None,
        kind: EventKind::Sent,
    }
}

fn ingest(c: &mut Criterion) {
    let all = [("full", Durability::Full), ("normal", Durability::Normal)];
    let only = std::env::var("MIA_BENCH_DURABILITY").ok();
    for (name, durability) in all {
        if only.as_deref().is_none_or(|only| only == name) {
            ingest_with(c, name, durability);
        }
    }
}

fn ingest_with(c: &mut Criterion, name: &str, durability: Durability) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = runtime
        .block_on(SqliteStore::open_with(
            dir.path().join("events.db"),
            SqliteOptions::new().with_durability(durability),
        ))
        .unwrap();
    let store: Arc<dyn Store> = Arc::new(store);
    let next = Arc::new(AtomicU64::new(0));
    let mut group = c.benchmark_group(format!("events.{name}"));
    group.sample_size(10);

    let direct = StoreSink::new(store.clone());
    group.throughput(Throughput::Elements(200));
    group.bench_function("store_sink_one_event_per_call", |b| {
        b.iter(|| {
            runtime.block_on(async {
                for _ in 0..200 {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    direct.record(&[event(n)]).await.unwrap();
                }
            });
        });
    });

    let batching = runtime.block_on(async {
        BatchingSink::builder()
            .build(Arc::new(StoreSink::new(store.clone())))
            .unwrap()
    });
    group.throughput(Throughput::Elements(CALLERS * PER_CALLER));
    group.bench_function("batching_sink_64_concurrent_callers", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let mut tasks = Vec::new();
                for _ in 0..CALLERS {
                    let (sink, next) = (batching.clone(), next.clone());
                    tasks.push(tokio::spawn(async move {
                        for _ in 0..PER_CALLER {
                            let n = next.fetch_add(1, Ordering::Relaxed);
                            sink.record(&[event(n)]).await.unwrap();
                        }
                    }));
                }
                for t in tasks {
                    t.await.unwrap();
                }
            });
        });
    });

    // The batch is built outside the timing: the figure is the store's, not the allocation of
    // the events by their producer.
    let mut batches =
        |name: &str, store: &dyn Store, next: &AtomicU64, size: u64, make: fn(u64) -> Event| {
            group.throughput(Throughput::Elements(size));
            group.bench_function(name, |b| {
                b.iter_batched(
                    || {
                        (0..size)
                            .map(|_| make(next.fetch_add(1, Ordering::Relaxed)))
                            .collect::<Vec<Event>>()
                    },
                    // Returned, so that criterion drops the events outside the timing too.
                    |events| {
                        runtime.block_on(store.append_events(&events)).unwrap();
                        events
                    },
                    criterion::BatchSize::PerIteration,
                );
            });
        };
    batches("store_one_batch_of_10000", &*store, &next, 10_000, event);

    // The same, with events shaped like the ones mia records: ids derived from a job key (32
    // hex digits, in no order) and 10,000 different contacts per batch, out of 100,000, in no
    // order either. The index by contact and id then gets a batch's entries scattered over the
    // whole index instead of appended at the end of a few ranges, so this one falls as its
    // own table grows.
    //
    // And in batches of 100,000 (`BatchingSink::builder().max_batch(100_000)`, or a bulk
    // import): a batch dirties at most every page of that index once, however many of its
    // events land on each page, so ten times the events per commit write far fewer pages each.
    for size in [10_000, 100_000] {
        let dir = tempfile::tempdir().unwrap();
        let scattered = runtime
            .block_on(SqliteStore::open_with(
                dir.path().join("events.db"),
                SqliteOptions::new().with_durability(durability),
            ))
            .unwrap();
        let name = format!("store_one_batch_of_{size}_derived_ids");
        batches(&name, &scattered, &AtomicU64::new(0), size, derived_event);
    }
    group.finish();
}

/// Event `n` of a campaign to 100,000 contacts, with an id derived as the worker derives them;
/// consecutive events go to contacts far apart (7,919 is prime, so every contact comes up once
/// in 100,000 events).
fn derived_event(n: u64) -> Event {
    let contact = ContactId::new(format!("c{}", n * 7_919 % 100_000));
    Event {
        id: EventId::derived(&format!("job{n}"), "sent"),
        at: Timestamp::from_second(1_800_000_000 + (n / 10_000) as i64).unwrap(),
        contact,
        campaign: Some(CampaignId::new("bench")),
        variant: Some(VariantId::new("A")),
        step: Some(0),
        kind: EventKind::Sent,
    }
}

criterion_group!(benches, ingest);
criterion_main!(benches);
