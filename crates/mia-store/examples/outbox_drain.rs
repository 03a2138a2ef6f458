//! Drains campaigns through a SQLite outbox, one worker, and prints the jobs per second of each
//! timed round: for counting a drain's CPU instructions with callgrind, which gives the same
//! count on every run, where wall-clock benches on a shared 2-core machine swing by ±20%
//! (`benches/sqlite.rs` is the wall-clock bench).
//!
//! Each round schedules a new running campaign of `--jobs` jobs, then claims `--batch` jobs at a
//! time until none is left and completes them: one `update_jobs` per claim, or `update_job`
//! when a claim brings one job (every claim with `--batch 1`). `--warm` rounds run before the
//! `--rounds` timed ones. `--stop schedule` only schedules and `--stop claim` only claims (the
//! jobs stay claimed), so the differences between three counts are the cost of the claims and
//! of the completions (and of reading the clock around each call: three reads a claim with
//! `--batch 1`, a few hundred instructions next to a claim's hundreds of thousands).
//!
//! Each round also prints the wall-clock time its claims and its completions took per job.
//! `--durability normal` runs at `Durability::Normal` (no flush a commit) instead of the
//! default `Full`, which tells what the flushes cost; `--warm 30` first grows the outbox to
//! 300,000 jobs, as the wall-clock bench's store grows. `--threads N` runs each round as a task
//! on a multi-thread runtime of `N` worker threads, as the wall-clock bench and most services
//! run, instead of on one thread: the results of the driver's thread then wake a task that may
//! sit on another thread.
//!
//! ```text
//! cargo build --release -p mia-store --example outbox_drain
//! for stop in schedule claim none; do
//!   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/outbox_drain --stop $stop 2>&1 | grep Collected
//! done
//! target/release/examples/outbox_drain --warm 30 --rounds 5 --durability normal
//! target/release/examples/outbox_drain --warm 40 --rounds 4 --threads 4
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use mia_core::{
    Campaign, CampaignId, CampaignSpec, CampaignState, CampaignStore, ContactId, IdempotencyKey,
    Job, JobUpdate, NewJob, OutboxStore, Purpose,
};
use mia_store::{Durability, SqliteOptions, SqliteStore};

/// Where a round stops.
#[derive(Clone, Copy, PartialEq)]
enum Stop {
    Schedule,
    Claim,
    None,
}

#[derive(Clone, Copy)]
struct Options {
    jobs: i64,
    batch: usize,
    warm: u32,
    rounds: u32,
    stop: Stop,
    durability: Durability,
    /// Worker threads of a multi-thread runtime; 0 for a current-thread runtime.
    threads: u32,
}

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        jobs: 10_000,
        batch: 500,
        warm: 1,
        rounds: 3,
        stop: Stop::None,
        durability: Durability::Full,
        threads: 0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = |what: &str| {
            value
                .parse::<u32>()
                .map_err(|e| format!("{what} {value:?}: {e}"))
        };
        match flag.as_str() {
            "--jobs" => options.jobs = i64::from(number("--jobs")?),
            "--batch" => options.batch = number("--batch")?.max(1) as usize,
            "--warm" => options.warm = number("--warm")?,
            "--rounds" => options.rounds = number("--rounds")?,
            "--threads" => options.threads = number("--threads")?,
            "--stop" => {
                options.stop = match value.as_str() {
                    "schedule" => Stop::Schedule,
                    "claim" => Stop::Claim,
                    "none" => Stop::None,
                    other => return Err(format!("--stop {other:?}: schedule, claim or none")),
                }
            }
            "--durability" => {
                options.durability = match value.as_str() {
                    "full" => Durability::Full,
                    "normal" => Durability::Normal,
                    other => return Err(format!("--durability {other:?}: full or normal")),
                }
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(options)
}

/// How long a round's claims and its completions took.
#[derive(Default)]
struct Spent {
    claims: Duration,
    completions: Duration,
}

/// Runs round `round`; returns how long its claims and completions took.
async fn round(store: &SqliteStore, round: u32, options: &Options) -> Spent {
    let mut campaign = Campaign::draft(
        CampaignId::new(format!("drain-{round}")),
        CampaignSpec::new("Drain", "tea", "20% off"),
        t(0),
    );
    store.insert_campaign(&campaign).await.unwrap();
    campaign.state = CampaignState::Running;
    let jobs: Vec<NewJob> = (0..options.jobs)
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
    store.schedule(&campaign, &jobs).await.unwrap();
    let mut spent = Spent::default();
    if options.stop == Stop::Schedule {
        return spent;
    }
    let lease = SignedDuration::from_mins(5);
    let mut done = 0;
    loop {
        let start = Instant::now();
        let claimed = store
            .claim("w0", t(3600), lease, options.batch)
            .await
            .unwrap();
        spent.claims += start.elapsed();
        if claimed.is_empty() {
            break;
        }
        done += claimed.len();
        if options.stop == Stop::Claim {
            continue;
        }
        let start = Instant::now();
        if let [job] = claimed.as_slice() {
            let sent = JobUpdate::Sent { message_id: 1 };
            store
                .update_job(&job.key, job.claim_token, &sent, t(3601))
                .await
                .unwrap();
            spent.completions += start.elapsed();
            continue;
        }
        let updates: Vec<(&Job, JobUpdate)> = claimed
            .iter()
            .zip(1..)
            .map(|(job, id)| (job, JobUpdate::Sent { message_id: id }))
            .collect();
        let lost = store.update_jobs(&updates, t(3601)).await.unwrap();
        assert!(lost.is_empty(), "a claimed job was lost: {lost:?}");
        spent.completions += start.elapsed();
    }
    assert_eq!(done as i64, options.jobs, "every job claimed once");
    spent
}

fn main() {
    let options = match options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("outbox_drain: {message}");
            std::process::exit(2);
        }
    };
    let runtime = match options.threads {
        0 => tokio::runtime::Builder::new_current_thread(),
        n => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(n as usize);
            builder
        }
    }
    .enable_all()
    .build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!(
                "outbox_drain: a runtime of {} threads: {e}",
                options.threads
            );
            std::process::exit(2);
        }
    };
    let dir = tempfile::tempdir().unwrap();
    runtime.block_on(async {
        let settings = SqliteOptions::new().with_durability(options.durability);
        let store = SqliteStore::open_with(dir.path().join("drain.db"), settings)
            .await
            .unwrap();
        // On a multi-thread runtime, each round runs as a task of its own, as a worker does.
        let run = |r: u32| {
            let store = store.clone();
            async move {
                match options.threads {
                    0 => round(&store, r, &options).await,
                    _ => tokio::spawn(async move { round(&store, r, &options).await })
                        .await
                        .unwrap(),
                }
            }
        };
        for r in 0..options.warm {
            run(r).await;
        }
        for r in options.warm..options.warm + options.rounds {
            let spent = run(r).await;
            if options.stop != Stop::Schedule {
                let jobs = options.jobs as f64;
                let rate = jobs / (spent.claims + spent.completions).as_secs_f64();
                let per_job = |d: Duration| d.as_secs_f64() * 1e6 / jobs;
                println!(
                    "round {r}: {rate:.0} jobs/s (claims {:.2} µs a job, completions {:.2} µs \
                     a job)",
                    per_job(spent.claims),
                    per_job(spent.completions)
                );
            }
        }
        store.close().await;
    });
}
