//! The hot paths of `SqliteStore` on a file database: batch writes of 10,000 rows, claims
//! from a full outbox, the running campaigns among 1,000, audit log appends (one entry, and a
//! worker round of 64), and signed audit checkpoints (full walk against the kept Merkle
//! frontier).
//!
//! `sqlite.outbox`: outbox throughput, jobs claimed and completed per second by 1, 2 and 4
//! concurrent workers (tasks sharing one store) draining a queue of due jobs, each iteration
//! a new campaign's jobs in a store kept for the whole bench and aged before it until its WAL
//! has passed a checkpoint (as a running worker's has), checked to complete every job once:
//! - `claim1_update`: one job at a time: claim 1, then its `update_job` (2 commits a job);
//! - `batch500_update_each`: claim up to 500, then one `update_job` (its own commit) per job;
//! - `batch500_update_jobs`: claim up to 500, then complete them all with one `update_jobs`
//!   (one transaction): the agent's worker path.
//!
//! The outbox and the batch writes run at both [`Durability`] settings, in groups named after
//! it (`sqlite.outbox.full`, `sqlite.batch_10k.normal`): `full` flushes every commit to the
//! disk (survives a power cut), `normal` only at checkpoints (survives a killed process).
//! `MIA_BENCH_DURABILITY=full` (or `normal`) runs only one of them.
//!
//! Run with: `cargo bench -p mia-store --bench sqlite` (`-- sqlite.outbox.full` for one group)
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use jiff::{SignedDuration, Timestamp};
use mia_core::{
    Campaign, CampaignId, CampaignSpec, CampaignState, CampaignStore, Contact, ContactId,
    ContactStore, Event, EventId, EventKind, EventStore, IdempotencyKey, NewJob, OutboxStore,
    Purpose, TelegramPeer,
};
use mia_store::{Durability, SqliteOptions, SqliteStore};
use tempfile::TempDir;

const N: i64 = 10_000;

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A fresh file store (the folder is deleted when the `TempDir` drops).
async fn fresh() -> (TempDir, SqliteStore) {
    fresh_with(Durability::Normal).await
}

/// A fresh file store with the given durability.
async fn fresh_with(durability: Durability) -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions::new().with_durability(durability);
    let store = SqliteStore::open_with(dir.path().join("bench.db"), options)
        .await
        .unwrap();
    (dir, store)
}

/// The durabilities to bench: both, or the one `MIA_BENCH_DURABILITY` names.
fn durabilities() -> Vec<(&'static str, Durability)> {
    let all = [("full", Durability::Full), ("normal", Durability::Normal)];
    match std::env::var("MIA_BENCH_DURABILITY") {
        Ok(only) => all.into_iter().filter(|(name, _)| *name == only).collect(),
        Err(_) => all.to_vec(),
    }
}

fn contacts() -> Vec<Contact> {
    (0..N)
        .map(|i| {
            Contact::new(
                format!("c{i}"),
                TelegramPeer::user(i),
                "Europe/Vienna",
                t(0),
            )
            .unwrap()
            .with_attribute("plan", serde_json::json!("pro"))
        })
        .collect()
}

/// A running campaign inserted into `store`, and its jobs (not yet scheduled).
async fn campaign(store: &SqliteStore) -> (Campaign, Vec<NewJob>) {
    campaign_named(store, "bench").await
}

/// A running campaign `id` inserted into `store`, and its jobs (not yet scheduled).
async fn campaign_named(store: &SqliteStore, id: &str) -> (Campaign, Vec<NewJob>) {
    campaign_of(store, id, N).await
}

/// [`campaign_named`] with `n` jobs: contacts `c0..`, due over a minute.
async fn campaign_of(store: &SqliteStore, id: &str, n: i64) -> (Campaign, Vec<NewJob>) {
    let mut c = Campaign::draft(
        CampaignId::new(id),
        CampaignSpec::new("Bench", "tea", "20% off"),
        t(0),
    );
    store.insert_campaign(&c).await.unwrap();
    c.state = CampaignState::Running;
    let jobs = (0..n)
        .map(|i| {
            let contact = ContactId::new(format!("c{i}"));
            NewJob {
                key: IdempotencyKey::for_job(&c.id, &contact, 0),
                contact,
                purpose: Purpose::marketing(),
                step: 0,
                due_at: t(i % 60),
                skipped: None,
            }
        })
        .collect();
    (c, jobs)
}

fn batch_writes(c: &mut Criterion) {
    for (name, durability) in durabilities() {
        batch_writes_with(c, name, durability);
    }
}

fn batch_writes_with(c: &mut Criterion, name: &str, durability: Durability) {
    let rt = runtime();
    let fresh = || fresh_with(durability);
    let mut group = c.benchmark_group(format!("sqlite.batch_10k.{name}"));
    group
        .sample_size(10)
        .throughput(Throughput::Elements(N as u64));

    let people = contacts();
    group.bench_function("upsert_contacts", |b| {
        b.iter_batched(
            || rt.block_on(fresh()),
            |(_dir, store)| rt.block_on(store.upsert_contacts(std::hint::black_box(&people))),
            BatchSize::PerIteration,
        );
    });

    group.bench_function("schedule", |b| {
        b.iter_batched(
            || {
                rt.block_on(async {
                    let (dir, store) = fresh().await;
                    let (c, jobs) = campaign(&store).await;
                    (dir, store, c, jobs)
                })
            },
            |(_dir, store, c, jobs)| rt.block_on(store.schedule(&c, std::hint::black_box(&jobs))),
            BatchSize::PerIteration,
        );
    });

    let events: Vec<Event> = (0..N)
        .map(|i| Event {
            id: EventId::new(format!("e{i}")),
            at: t(i),
            contact: ContactId::new(format!("c{i}")),
            campaign: Some(CampaignId::new("bench")),
            variant: None,
            step: None,
            kind: EventKind::Delivered,
        })
        .collect();
    group.bench_function("append_events", |b| {
        b.iter_batched(
            || rt.block_on(fresh()),
            |(_dir, store)| rt.block_on(store.append_events(std::hint::black_box(&events))),
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

fn claims(c: &mut Criterion) {
    let rt = runtime();
    let (_dir, store) = rt.block_on(fresh());
    rt.block_on(async {
        let (c, jobs) = campaign(&store).await;
        store.schedule(&c, &jobs).await.unwrap();
    });
    let mut group = c.benchmark_group("sqlite.claim");
    group.throughput(Throughput::Elements(100));
    // A zero lease expires at once, so every claim finds a full outbox again.
    group.bench_function("100_of_10k", |b| {
        b.iter(|| {
            rt.block_on(store.claim("w1", t(3600), SignedDuration::ZERO, 100))
                .unwrap()
        });
    });
    group.finish();
}

fn audit_appends(c: &mut Criterion) {
    use mia_core::{AuditAction, AuditDraft, AuditStore};
    let rt = runtime();
    let (_dir, store) = rt.block_on(fresh());
    let draft = |i: i64| AuditDraft {
        at: t(i),
        actor: "worker:w1".into(),
        action: AuditAction::PolicyDecision,
        subject: Some("sub_0123456789abcdef0123456789abcdef".into()),
        detail: serde_json::json!({
            "policy": "send", "campaign": "cmp_1", "job": format!("{i:032x}"),
            "decision": "allow", "rule": "consent",
            "trace": [{"rule": "consent", "decision": "allow"}],
        }),
    };
    let one = vec![draft(0)];
    let round: Vec<AuditDraft> = (0..64).map(draft).collect();
    let mut group = c.benchmark_group("sqlite.audit_append");
    group.throughput(Throughput::Elements(1));
    group.bench_function("1", |b| {
        b.iter(|| rt.block_on(store.append_audit(one.clone())).unwrap());
    });
    group.throughput(Throughput::Elements(64));
    group.bench_function("64", |b| {
        b.iter(|| rt.block_on(store.append_audit(round.clone())).unwrap());
    });
    group.finish();
}

/// A signed checkpoint after every 64 appended entries, on a log of 10,000 entries: the full
/// walk (reads and checks the whole log each time) against the kept Merkle frontier (reads
/// only the 64 new entries).
fn audit_checkpoints(c: &mut Criterion) {
    use std::sync::Arc;

    use mia_core::{AuditAction, AuditDraft, AuditStore};
    use mia_safety::compliance::{AuditLog, CheckpointSigner};
    let rt = runtime();
    let draft = |i: i64| AuditDraft {
        at: t(i),
        actor: "worker:w1".into(),
        action: AuditAction::PolicyDecision,
        subject: Some("sub_0123456789abcdef0123456789abcdef".into()),
        detail: serde_json::json!({"job": format!("{i:032x}"), "decision": "allow"}),
    };
    let round: Vec<AuditDraft> = (0..64).map(draft).collect();
    let mut group = c.benchmark_group("sqlite.audit_checkpoint");
    group.sample_size(10).throughput(Throughput::Elements(64));
    for incremental in [false, true] {
        let (_dir, store) = rt.block_on(fresh());
        let store = Arc::new(store);
        rt.block_on(async {
            for chunk in (0..N).collect::<Vec<_>>().chunks(1_000) {
                store
                    .append_audit(chunk.iter().map(|&i| draft(i)).collect())
                    .await
                    .unwrap();
            }
        });
        let log =
            AuditLog::new(Arc::clone(&store)).with_signer(CheckpointSigner::from_seed([7; 32]));
        // The frontier is built once, as by the first checkpoint of a process.
        rt.block_on(log.checkpoint(t(0))).unwrap();
        let name = if incremental {
            "frontier_10k"
        } else {
            "full_walk_10k"
        };
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    store.append_audit(round.clone()).await.unwrap();
                    match incremental {
                        true => log.checkpoint(t(1)).await.unwrap(),
                        false => log.checkpoint_full(t(1)).await.unwrap(),
                    }
                })
            });
        });
    }
    group.finish();
}

/// Jobs per claim in the batched outbox modes.
const BATCH: usize = 500;

#[derive(Clone, Copy)]
enum Mode {
    /// Claim 1, `update_job` it.
    OneByOne,
    /// Claim `BATCH`, `update_job` each.
    BatchUpdateEach,
    /// Claim `BATCH`, complete all with one `update_jobs`.
    BatchUpdateJobs,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::OneByOne => "claim1_update",
            Mode::BatchUpdateEach => "batch500_update_each",
            Mode::BatchUpdateJobs => "batch500_update_jobs",
        }
    }

    /// Due jobs per iteration.
    fn jobs(self) -> usize {
        match self {
            Mode::OneByOne | Mode::BatchUpdateEach => 4_000,
            Mode::BatchUpdateJobs => N as usize,
        }
    }
}

/// One worker: claims and completes until the queue is empty; returns how many it completed.
async fn work(store: SqliteStore, mode: Mode, name: String) -> u64 {
    use mia_core::{Job, JobUpdate};
    let lease = SignedDuration::from_mins(5);
    let limit = match mode {
        Mode::OneByOne => 1,
        Mode::BatchUpdateEach | Mode::BatchUpdateJobs => BATCH,
    };
    let mut done = 0;
    loop {
        let claimed = store.claim(&name, t(3600), lease, limit).await.unwrap();
        if claimed.is_empty() {
            return done;
        }
        match mode {
            Mode::OneByOne | Mode::BatchUpdateEach => {
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
    for (name, durability) in durabilities() {
        outbox_throughput_with(c, name, durability);
    }
}

/// Drains campaign `bench-{round}`, `n` jobs scheduled outside the timing, with `workers`
/// concurrent workers; returns the time the drain took, checked to complete every job once.
async fn drain_round(
    store: &SqliteStore,
    round: u32,
    mode: Mode,
    n: usize,
    workers: usize,
) -> std::time::Duration {
    let (campaign, jobs) = campaign_named(store, &format!("bench-{round}")).await;
    store.schedule(&campaign, &jobs[..n]).await.unwrap();
    let start = std::time::Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|w| tokio::spawn(work(store.clone(), mode, format!("w{w}"))))
        .collect();
    let mut done = 0;
    for task in tasks {
        done += task.await.unwrap();
    }
    let spent = start.elapsed();
    assert_eq!(std::hint::black_box(done), n as u64);
    let counts = store.job_counts(&campaign.id).await.unwrap();
    assert_eq!((counts.sent, counts.total()), (n as u64, n as u64));
    spent
}

fn outbox_throughput_with(c: &mut Criterion, name: &str, durability: Durability) {
    use std::time::Duration;

    use criterion::{BenchmarkId, SamplingMode};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group(format!("sqlite.outbox.{name}"));
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    // The WAL's length once it has collected a checkpoint's worth of pages.
    let grown = u64::from(SqliteOptions::DEFAULT_CHECKPOINT_PAGES) * 4096;
    for mode in [Mode::OneByOne, Mode::BatchUpdateEach, Mode::BatchUpdateJobs] {
        let n = mode.jobs();
        group.throughput(Throughput::Elements(n as u64));
        for workers in [1, 2, 4] {
            // One store for every sample of this bench, as a worker keeps its store, aged
            // before any timing until its WAL has passed a checkpoint: a new file's WAL grows
            // with every commit until the first checkpoint lets it start over, and a flush
            // that grows a file costs more than one that overwrites it, so new files measured
            // a store's first minutes and none of its checkpoints. Each round drains a new
            // campaign's jobs.
            let (dir, store) = rt.block_on(fresh_with(durability));
            let wal = dir.path().join("bench.db-wal");
            let mut round = 0_u32;
            rt.block_on(async {
                // At most 64 rounds (a bound, should a checkpoint come early and the WAL
                // start over before it is this long).
                while round < 64 {
                    round += 1;
                    drain_round(&store, round, mode, n, workers).await;
                    if std::fs::metadata(&wal).map_or(0, |m| m.len()) >= grown {
                        break;
                    }
                }
                // The round after the one that filled the WAL commits past the checkpoint.
                round += 1;
                drain_round(&store, round, mode, n, workers).await;
            });
            group.bench_with_input(
                BenchmarkId::new(mode.name(), workers),
                &workers,
                |b, &workers| {
                    b.iter_custom(|iters| {
                        rt.block_on(async {
                            let mut spent = Duration::ZERO;
                            for _ in 0..iters {
                                round += 1;
                                spent += drain_round(&store, round, mode, n, workers).await;
                            }
                            spent
                        })
                    });
                },
            );
            rt.block_on(store.close());
        }
    }
    group.finish();
}

/// What a worker reads each batch to find the running campaigns (recurring occurrences, journey
/// repair, account pauses), in a store that keeps 1,000 campaigns of which 10 run: all of them
/// filtered after decoding (`campaigns`), or the running ones only (`campaigns_in`).
fn running_campaigns(c: &mut Criterion) {
    let rt = runtime();
    let (_dir, store) = rt.block_on(fresh());
    rt.block_on(async {
        for i in 0..1_000 {
            let mut c = Campaign::draft(
                CampaignId::new(format!("k{i:04}")),
                CampaignSpec::new("Bench", "tea", "20% off"),
                t(0),
            );
            store.insert_campaign(&c).await.unwrap();
            c.state = match i % 100 {
                0 => CampaignState::Running,
                _ => CampaignState::Completed,
            };
            store.update_campaign(&c).await.unwrap();
        }
    });
    let mut group = c.benchmark_group("sqlite.running_campaigns");
    group.bench_function("campaigns_then_filter", |b| {
        b.iter(|| {
            let all = rt.block_on(store.campaigns()).unwrap();
            let running = all
                .into_iter()
                .filter(|c| c.state == CampaignState::Running);
            assert_eq!(running.count(), 10);
        });
    });
    group.bench_function("campaigns_in", |b| {
        b.iter(|| {
            let running = rt
                .block_on(store.campaigns_in(CampaignState::Running))
                .unwrap();
            assert_eq!(running.len(), 10);
        });
    });
    group.finish();
}

/// `Operator::status` (what `mia campaign status` shows) of a campaign of 100,000 jobs: 30,000
/// sent, 1,000 dead letters under 10 reasons, 2,000 waiting to retry, the rest pending.
fn campaign_status(c: &mut Criterion) {
    use std::sync::Arc;

    use mia_core::{JobUpdate, Operator, SystemClock};
    const JOBS: i64 = 100_000;
    let rt = runtime();
    let (_dir, store) = rt.block_on(fresh());
    let id = rt.block_on(async {
        let (c, jobs) = campaign_of(&store, "status", JOBS).await;
        store.schedule(&c, &jobs).await.unwrap();
        let lease = SignedDuration::from_mins(5);
        let claimed = store.claim("w", t(100), lease, 33_000).await.unwrap();
        let updates: Vec<_> = claimed
            .iter()
            .enumerate()
            .map(|(i, job)| {
                let update = match i {
                    0..30_000 => JobUpdate::Sent {
                        message_id: i as i64,
                    },
                    30_000..31_000 => JobUpdate::DeadLetter {
                        reason: format!("error: reason {}", i % 10),
                    },
                    _ => JobUpdate::Retry {
                        due_at: t(500),
                        count_attempt: true,
                        reason: "flood_wait".into(),
                    },
                };
                (job, update)
            })
            .collect();
        assert!(
            store
                .update_jobs(&updates, t(101))
                .await
                .unwrap()
                .is_empty()
        );
        c.id
    });
    let operator = Operator::new(Arc::new(store), Arc::new(SystemClock));
    let mut group = c.benchmark_group("sqlite.status");
    group.sample_size(10);
    group.bench_function("100000_jobs", |b| {
        b.iter(|| {
            let status = rt.block_on(operator.status(&id)).unwrap();
            assert_eq!(status.jobs.total(), JOBS as u64);
            assert_eq!(status.retrying, 2_000);
        });
    });
    group.finish();
}

criterion_group!(
    benches,
    campaign_status,
    outbox_throughput,
    batch_writes,
    claims,
    running_campaigns,
    audit_appends,
    audit_checkpoints
);
criterion_main!(benches);
