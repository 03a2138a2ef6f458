//! Outbox throughput of `PostgresStore`: jobs claimed and completed per second by 1, 2 and 4
//! concurrent workers draining a queue of 4,000 due jobs.
//!
//! - `batch500_update_each`: the store API as the agent uses it: claim up to 500 jobs, then
//!   one `update_job` (its own transaction) per job.
//! - `claim1_update`: one job per claim, then its `update_job`.
//! - `batch500_bulk_complete`: claim up to 500 through the store, then complete them all with
//!   one `UPDATE ... FROM UNNEST(...)` written here: a prototype of a batched completion API
//!   that mia-core does not have, to show what it would buy.
//!
//! `postgres.events` measures event ingest: batches of 1,000 and 10,000 events appended with
//! `append_events` (one transaction each) into a table that keeps growing, as a collector's
//! writes do.
//!
//! Durability is the server's default: every commit waits for its WAL flush
//! (`synchronous_commit = on`).
//!
//! Run with: `MIA_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test
//! cargo bench -p mia-store --features postgres --bench postgres`
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

use std::time::{Duration, Instant};

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use jiff::{SignedDuration, Timestamp};
use mia_core::{
    Campaign, CampaignId, CampaignSpec, CampaignState, CampaignStore, ContactId, Event, EventId,
    EventKind, EventStore, IdempotencyKey, JobUpdate, NewJob, OutboxStore, Purpose, VariantId,
};
use mia_store::PostgresStore;
use sqlx::{AssertSqlSafe, PgPool};

/// Due jobs per iteration.
const JOBS: i64 = 4_000;
/// Jobs per claim in the batched modes.
const BATCH: usize = 500;

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

#[derive(Clone, Copy)]
enum Mode {
    /// Claim `BATCH`, `update_job` each.
    BatchUpdateEach,
    /// Claim 1, `update_job` it.
    OneByOne,
    /// Claim `BATCH`, complete all in one statement.
    BatchBulkComplete,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::BatchUpdateEach => "batch500_update_each",
            Mode::OneByOne => "claim1_update",
            Mode::BatchBulkComplete => "batch500_bulk_complete",
        }
    }
}

/// The bench's schema on the server, its store, a plain pool on it, and a running campaign.
struct Fixture {
    schema: String,
    store: PostgresStore,
    raw: PgPool,
    campaign: Campaign,
    jobs: Vec<NewJob>,
}

impl Fixture {
    async fn new(url: &str) -> Self {
        let schema = format!("mia_bench_{}", std::process::id());
        let store = PostgresStore::connect_with_schema(url, &schema)
            .await
            .unwrap();
        let set_path = format!("SET search_path TO \"{schema}\"");
        let raw = sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .after_connect(move |conn, _| {
                let sql = set_path.clone();
                Box::pin(async move {
                    sqlx::raw_sql(AssertSqlSafe(sql)).execute(conn).await?;
                    Ok(())
                })
            })
            .connect(url)
            .await
            .unwrap();
        let mut campaign = Campaign::draft(
            CampaignId::new("bench"),
            CampaignSpec::new("Bench", "tea", "20% off"),
            t(0),
        );
        store.insert_campaign(&campaign).await.unwrap();
        campaign.state = CampaignState::Running;
        let jobs = (0..JOBS)
            .map(|i| {
                let contact = ContactId::new(format!("c{i}"));
                NewJob {
                    key: IdempotencyKey::for_job(&campaign.id, &contact, 0),
                    contact,
                    purpose: Purpose::marketing(),
                    step: 0,
                    due_at: t(i % 60),
                    skipped: None,
                }
            })
            .collect();
        Self {
            schema,
            store,
            raw,
            campaign,
            jobs,
        }
    }

    /// A full queue again: every job due and pending.
    async fn refill(&self) {
        sqlx::query("TRUNCATE outbox")
            .execute(&self.raw)
            .await
            .unwrap();
        let n = self
            .store
            .schedule(&self.campaign, &self.jobs)
            .await
            .unwrap();
        assert_eq!(n, JOBS as u64);
    }

    /// Drains the queue with `workers` concurrent workers; returns how many jobs they sent.
    async fn drain(&self, mode: Mode, workers: usize) -> u64 {
        let tasks: Vec<_> = (0..workers)
            .map(|w| {
                let store = self.store.clone();
                let raw = self.raw.clone();
                tokio::spawn(async move { work(&store, &raw, mode, &format!("w{w}")).await })
            })
            .collect();
        let mut sent = 0;
        for task in tasks {
            sent += task.await.unwrap();
        }
        sent
    }

    async fn drop_schema(self) {
        self.store.close().await;
        sqlx::query(AssertSqlSafe(format!(
            "DROP SCHEMA \"{}\" CASCADE",
            self.schema
        )))
        .execute(&self.raw)
        .await
        .unwrap();
        self.raw.close().await;
    }
}

/// One worker: claims and completes until the queue is empty.
async fn work(store: &PostgresStore, raw: &PgPool, mode: Mode, name: &str) -> u64 {
    let lease = SignedDuration::from_mins(5);
    let limit = match mode {
        Mode::OneByOne => 1,
        Mode::BatchUpdateEach | Mode::BatchBulkComplete => BATCH,
    };
    let mut done = 0;
    loop {
        let claimed = store.claim(name, t(3600), lease, limit).await.unwrap();
        if claimed.is_empty() {
            return done;
        }
        match mode {
            Mode::BatchUpdateEach | Mode::OneByOne => {
                for job in &claimed {
                    let sent = JobUpdate::Sent { message_id: 1 };
                    store
                        .update_job(&job.key, job.claim_token, &sent, t(3601))
                        .await
                        .unwrap();
                }
            }
            Mode::BatchBulkComplete => {
                let keys: Vec<&str> = claimed.iter().map(|j| j.key.as_str()).collect();
                let tokens: Vec<i64> = claimed
                    .iter()
                    .map(|j| i64::try_from(j.claim_token).unwrap())
                    .collect();
                let messages: Vec<i64> = (1..=claimed.len() as i64).collect();
                let updated = sqlx::query(
                    "UPDATE outbox o SET state = 'sent', lease_until = NULL, updated_at = $1, \
                     message_id = u.message_id, outcome = NULL \
                     FROM UNNEST($2::text[], $3::int8[], $4::int8[]) \
                       AS u (key, claim_token, message_id) \
                     WHERE o.key = u.key AND o.state = 'claimed' \
                       AND o.claim_token = u.claim_token",
                )
                .bind(t(3601).as_microsecond())
                .bind(keys)
                .bind(tokens)
                .bind(messages)
                .execute(raw)
                .await
                .unwrap()
                .rows_affected();
                assert_eq!(updated, claimed.len() as u64);
            }
        }
        done += claimed.len() as u64;
    }
}

fn outbox_throughput(c: &mut Criterion) {
    let Some(url) = std::env::var("MIA_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        println!("skipped: set MIA_TEST_POSTGRES_URL to run the Postgres store benches");
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let fixture = rt.block_on(Fixture::new(&url));
    let settings: Vec<(String, String)> = rt.block_on(async {
        sqlx::query_as(
            "SELECT name, setting FROM pg_settings \
             WHERE name IN ('synchronous_commit', 'fsync', 'wal_sync_method', 'server_version')",
        )
        .fetch_all(&fixture.raw)
        .await
        .unwrap()
    });
    println!(
        "postgres.outbox: {JOBS} due jobs per iteration, batch {BATCH}, server settings {settings:?}"
    );

    let mut group = c.benchmark_group("postgres.outbox");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(JOBS as u64));
    for mode in [
        Mode::BatchUpdateEach,
        Mode::OneByOne,
        Mode::BatchBulkComplete,
    ] {
        for workers in [1, 2, 4] {
            group.bench_with_input(
                BenchmarkId::new(mode.name(), workers),
                &workers,
                |b, &workers| {
                    b.iter_custom(|iters| {
                        rt.block_on(async {
                            let mut spent = Duration::ZERO;
                            for _ in 0..iters {
                                fixture.refill().await;
                                let start = Instant::now();
                                let sent = fixture.drain(mode, workers).await;
                                spent += start.elapsed();
                                assert_eq!(std::hint::black_box(sent), JOBS as u64);
                            }
                            spent
                        })
                    });
                },
            );
        }
    }
    group.finish();
    rt.block_on(fixture.drop_schema());
}

/// One event of the `n`th send, spread over 1,000 contacts like the root `events` bench.
fn event(n: u64) -> Event {
    Event {
        id: EventId::new(format!("e{n}")),
        at: t(0),
        contact: ContactId::new(format!("c{}", n % 1000)),
        campaign: Some(CampaignId::new("bench")),
        variant: Some(VariantId::new("A")),
        kind: EventKind::Sent,
    }
}

fn events_ingest(c: &mut Criterion) {
    let Some(url) = std::env::var("MIA_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        println!("skipped: set MIA_TEST_POSTGRES_URL to run the Postgres store benches");
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let schema = format!("mia_bench_events_{}", std::process::id());
    let store = rt
        .block_on(PostgresStore::connect_with_schema(&url, &schema))
        .unwrap();
    let mut next = 0_u64;
    let mut group = c.benchmark_group("postgres.events");
    group.sample_size(10);
    for size in [1_000_u64, 10_000] {
        group.throughput(Throughput::Elements(size));
        group.bench_with_input(BenchmarkId::new("append_batch", size), &size, |b, &size| {
            b.iter_batched(
                || {
                    let batch: Vec<Event> = (next..next + size).map(event).collect();
                    next += size;
                    batch
                },
                |batch| {
                    let new = rt.block_on(store.append_events(std::hint::black_box(&batch)));
                    assert_eq!(new.unwrap(), size);
                },
                criterion::BatchSize::PerIteration,
            );
        });
    }
    group.finish();
    rt.block_on(async {
        store.close().await;
        let raw = PgPool::connect(&url).await.unwrap();
        sqlx::query(AssertSqlSafe(format!("DROP SCHEMA \"{schema}\" CASCADE")))
            .execute(&raw)
            .await
            .unwrap();
        raw.close().await;
    });
}

criterion_group!(benches, outbox_throughput, events_ingest);
criterion_main!(benches);
