//! Outbox throughput of `PostgresStore`: jobs claimed and completed per second by 1, 2 and 4
//! concurrent workers (1 in the 20,000-job modes) draining a queue of due jobs (each worker a
//! task on a 4-thread runtime, with its own pooled connection). Every iteration checks that
//! every job was completed once: no claim handed a job to two workers, no completion was
//! refused.
//!
//! - `claim1_update`: one job at a time: claim 1, then its `update_job` (2 commits a job).
//! - `claim1_update_20000`: the same over 20,000 jobs, one worker: a drain long enough for the
//!   dead rows it leaves in the queue to slow claims down unless they are vacuumed (the store
//!   vacuums the queue every 10,000 changed rows; see `PostgresStore::with_queue_vacuum_after`).
//!   `claim1_update_20000_unvacuumed` is the same drain with those vacuums turned off.
//! - `batch500_update_each`: claim up to 500, then one `update_job` (its own commit) per job.
//! - `batch500_update_jobs`: claim up to 500, then complete them all with one `update_jobs`
//!   (one `UPDATE ... FROM UNNEST`, one commit): the agent's worker path.
//!
//! `postgres.events` measures event ingest: batches of 1,000 and 10,000 events appended with
//! `append_events` (one transaction each) into a table that keeps growing, as a collector's
//! writes do: `append_batch` with ids that sort in order over 1,000 contacts,
//! `append_batch_derived_ids` with events shaped like mia's (derived ids, 100,000 contacts).
//!
//! Durability is the store's: with the server's default `synchronous_commit = on`, every
//! commit waits for its WAL flush except a claim's, which the store commits asynchronously
//! (safe in a crash: see the docs of `src/postgres/outbox.rs`). A job handled one at a time
//! therefore costs one flush, a batch of 500 one flush; on a busy disk the one-at-a-time
//! figures follow the flush latency, not the store. State the machine's load with any figure.
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
    EventKind, EventStore, IdempotencyKey, Job, JobUpdate, NewJob, OutboxStore, Purpose, VariantId,
};
use mia_store::PostgresStore;
use sqlx::{AssertSqlSafe, PgPool};

/// Jobs per claim in the batched modes.
const BATCH: usize = 500;

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

#[derive(Clone, Copy)]
enum Mode {
    /// Claim 1, `update_job` it.
    OneByOne,
    /// The same over a queue ten times as long, with one worker: a drain long enough for the
    /// store's vacuums of the queue to run.
    OneByOneLong,
    /// `OneByOneLong` with the store's vacuums of the queue turned off.
    OneByOneLongUnvacuumed,
    /// Claim `BATCH`, `update_job` each.
    BatchUpdateEach,
    /// Claim `BATCH`, complete all with one `update_jobs`.
    BatchUpdateJobs,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::OneByOne => "claim1_update",
            Mode::OneByOneLong => "claim1_update_20000",
            Mode::OneByOneLongUnvacuumed => "claim1_update_20000_unvacuumed",
            Mode::BatchUpdateEach => "batch500_update_each",
            Mode::BatchUpdateJobs => "batch500_update_jobs",
        }
    }

    /// Due jobs per iteration: enough for a drain to take well over the timer's resolution.
    fn jobs(self) -> i64 {
        match self {
            Mode::OneByOne => 2_000,
            Mode::OneByOneLong | Mode::OneByOneLongUnvacuumed => 20_000,
            Mode::BatchUpdateEach => 4_000,
            Mode::BatchUpdateJobs => 40_000,
        }
    }

    /// The numbers of concurrent workers to bench.
    fn workers(self) -> &'static [usize] {
        match self {
            Mode::OneByOneLong | Mode::OneByOneLongUnvacuumed => &[1],
            Mode::OneByOne | Mode::BatchUpdateEach | Mode::BatchUpdateJobs => &[1, 2, 4],
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
        let jobs = (0..Mode::BatchUpdateJobs.jobs())
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

    /// A full queue again: the first `n` jobs due and pending.
    async fn refill(&self, n: i64) {
        // The open jobs' queue and the leases too: a drain empties them, but leaves their dead
        // rows to vacuum.
        sqlx::query("TRUNCATE outbox, outbox_queue, outbox_leases")
            .execute(&self.raw)
            .await
            .unwrap();
        let jobs = &self.jobs[..usize::try_from(n).unwrap()];
        let inserted = self.store.schedule(&self.campaign, jobs).await.unwrap();
        assert_eq!(inserted, n as u64);
        // Fresh statistics, as autovacuum would have them for a queue this size.
        sqlx::query("ANALYZE outbox, outbox_queue")
            .execute(&self.raw)
            .await
            .unwrap();
    }

    /// Checks that every one of the `n` jobs was completed, once.
    async fn check_done(&self, n: i64) {
        let counts = self.store.job_counts(&self.campaign.id).await.unwrap();
        assert_eq!((counts.sent, counts.total()), (n as u64, n as u64));
    }

    /// Drains the queue with `workers` concurrent workers; returns how many jobs they sent.
    async fn drain(&self, mode: Mode, workers: usize) -> u64 {
        let tasks: Vec<_> = (0..workers)
            .map(|w| {
                let store = match mode {
                    Mode::OneByOneLongUnvacuumed => self.store.clone().with_queue_vacuum_after(0),
                    _ => self.store.clone(),
                };
                tokio::spawn(async move { work(&store, mode, &format!("w{w}")).await })
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
async fn work(store: &PostgresStore, mode: Mode, name: &str) -> u64 {
    let lease = SignedDuration::from_mins(5);
    let limit = match mode {
        Mode::OneByOne | Mode::OneByOneLong | Mode::OneByOneLongUnvacuumed => 1,
        Mode::BatchUpdateEach | Mode::BatchUpdateJobs => BATCH,
    };
    let mut done = 0;
    loop {
        let claimed = store.claim(name, t(3600), lease, limit).await.unwrap();
        if claimed.is_empty() {
            return done;
        }
        match mode {
            Mode::BatchUpdateEach
            | Mode::OneByOne
            | Mode::OneByOneLong
            | Mode::OneByOneLongUnvacuumed => {
                for job in &claimed {
                    let sent = JobUpdate::Sent { message_id: 1 };
                    store
                        .update_job(&job.key, job.claim_token, &sent, t(3601))
                        .await
                        .unwrap();
                }
            }
            Mode::BatchUpdateJobs => {
                let updates: Vec<(&Job, JobUpdate)> = claimed
                    .iter()
                    .zip(1..)
                    .map(|(job, id)| (job, JobUpdate::Sent { message_id: id }))
                    .collect();
                let lost = store.update_jobs(&updates, t(3601)).await.unwrap();
                assert!(lost.is_empty(), "a claimed job was lost: {lost:?}");
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
    println!("postgres.outbox: batch {BATCH}, server settings {settings:?}");

    let mut group = c.benchmark_group("postgres.outbox");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    let modes = [
        Mode::OneByOne,
        Mode::OneByOneLong,
        Mode::OneByOneLongUnvacuumed,
        Mode::BatchUpdateEach,
        Mode::BatchUpdateJobs,
    ];
    for mode in modes {
        let n = mode.jobs();
        group.throughput(Throughput::Elements(n as u64));
        for &workers in mode.workers() {
            group.bench_with_input(
                BenchmarkId::new(mode.name(), workers),
                &workers,
                |b, &workers| {
                    b.iter_custom(|iters| {
                        rt.block_on(async {
                            let mut spent = Duration::ZERO;
                            for _ in 0..iters {
                                fixture.refill(n).await;
                                let start = Instant::now();
                                let sent = fixture.drain(mode, workers).await;
                                spent += start.elapsed();
                                assert_eq!(std::hint::black_box(sent), n as u64);
                                fixture.check_done(n).await;
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
        step: None,
        kind: EventKind::Sent,
    }
}

/// Event `n` shaped like the ones mia records, as in the root `events` bench: an id derived as
/// the worker derives them (32 hex digits, in no order), for one of 100,000 contacts, consecutive
/// events going to contacts far apart (7,919 is prime, so every contact comes up once in
/// 100,000 events). The primary key `(contact, id)` then gets a batch's entries scattered over
/// the whole index.
fn derived_event(n: u64) -> Event {
    Event {
        id: EventId::derived(&format!("job{n}"), "sent"),
        at: t((n / 10_000) as i64),
        contact: ContactId::new(format!("c{}", n * 7_919 % 100_000)),
        campaign: Some(CampaignId::new("bench")),
        variant: Some(VariantId::new("A")),
        step: Some(0),
        kind: EventKind::Sent,
    }
}

/// A bench of `postgres.events`: its name, how event `n` looks, and the batch sizes.
type Shape = (&'static str, fn(u64) -> Event, &'static [u64]);

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
    let mut group = c.benchmark_group("postgres.events");
    group.sample_size(10);
    // Each shape in a schema of its own, so each table grows with its own events only.
    let shapes: [Shape; 2] = [
        ("append_batch", event, &[1_000, 10_000]),
        ("append_batch_derived_ids", derived_event, &[10_000]),
    ];
    for (name, make, sizes) in shapes {
        let schema = format!("mia_bench_{name}_{}", std::process::id());
        let store = rt
            .block_on(PostgresStore::connect_with_schema(&url, &schema))
            .unwrap();
        let mut next = 0_u64;
        for &size in sizes {
            group.throughput(Throughput::Elements(size));
            group.bench_with_input(BenchmarkId::new(name, size), &size, |b, &size| {
                b.iter_batched(
                    || {
                        let batch: Vec<Event> = (next..next + size).map(make).collect();
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
    group.finish();
}

criterion_group!(benches, outbox_throughput, events_ingest);
criterion_main!(benches);
