//! Many workers, one campaign: three worker processes on one Postgres database and one Redis
//! drain a campaign together. No job is sent twice, the combined send rate stays within the
//! Telegram limit, and a pause stops every worker within one job.
//!
//! Needs `MIA_TEST_POSTGRES_URL` and `MIA_TEST_REDIS_URL`; skips with a message otherwise.
//! The workers are this test binary run again with `MIA_WORKER_CHILD` set.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    missing_docs
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use mia::redis::RedisRateLimiter;
use mia::store::PostgresStore;
use mia::telegram::{Behaviour, Limits, SimConfig, SimTelegram};
use mia::*;
use rand::RngExt;

const CHILD: &str = "MIA_WORKER_CHILD";
const CONTACTS: i64 = 1_200;
/// The Telegram limit this test holds the workers to, and the shared limiter's rate below it.
const TELEGRAM_LIMIT: usize = 60;
const LIMITER_RATE: f64 = 50.0;

fn consented(i: i64) -> bool {
    i % 6 != 5
}

fn sim_config() -> SimConfig {
    SimConfig {
        // Each process's simulator sees only its own sends; the shared limit is the test.
        limits: Limits {
            global_per_second: 10_000,
            per_chat_interval: Duration::from_secs(1),
            group_per_minute: 20,
        },
        deactivated_share: 0.0,
        blocked_share: 0.0,
        behaviour: Behaviour {
            stop: 0.0,
            block: 0.0,
            ..Behaviour::default()
        },
        ..SimConfig::seeded(3)
    }
}

fn services() -> Option<(String, String)> {
    match (
        std::env::var("MIA_TEST_POSTGRES_URL"),
        std::env::var("MIA_TEST_REDIS_URL"),
    ) {
        (Ok(pg), Ok(redis)) => Some((pg, redis)),
        _ => {
            println!(
                "skipped: set MIA_TEST_POSTGRES_URL and MIA_TEST_REDIS_URL to run the many-workers test"
            );
            None
        }
    }
}

/// One worker process: drains whatever is due, then exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_child() {
    let Ok(schema) = std::env::var(CHILD) else {
        return;
    };
    let (pg, redis) = services().unwrap();
    let journal = std::env::var("MIA_WORKER_JOURNAL").unwrap();
    let prefix = std::env::var("MIA_WORKER_REDIS_PREFIX").unwrap();
    let store = PostgresStore::connect_with_schema(&pg, &schema)
        .await
        .unwrap();
    let limiter = RedisRateLimiter::connect(&redis, &prefix, Gcra::per_second(LIMITER_RATE))
        .await
        .unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let telegram = SimTelegram::with_journal(sim_config(), clock, &journal).unwrap();
    let agent = Agent::builder(TemplateProvider::new(), telegram)
        .store(store)
        .permissive_policies()
        .rate_limiter(limiter)
        .claim_batch(8)
        .lease(Duration::from_secs(10))
        .worker_id(format!("worker-{}", std::process::id()))
        .build()
        .unwrap();
    agent.run_until_idle().await.unwrap();
}

fn spawn(schema: &str, journal: &Path, prefix: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "worker_child", "--nocapture", "--test-threads=1"])
        .env(CHILD, schema)
        .env("MIA_WORKER_JOURNAL", journal)
        .env("MIA_WORKER_REDIS_PREFIX", prefix)
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_all(children: Vec<Child>) {
    for mut c in children {
        // A generous bound so a broken pause fails the test instead of hanging CI.
        let mut waited = Duration::ZERO;
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                assert!(status.success(), "worker failed: {status}");
                break;
            }
            if waited > Duration::from_secs(300) {
                let _ = c.kill();
                panic!("a worker did not stop");
            }
            std::thread::sleep(Duration::from_millis(50));
            waited += Duration::from_millis(50);
        }
    }
}

fn posts(journals: &[PathBuf]) -> Vec<mia::telegram::SentMessage> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut all: Vec<_> = journals
        .iter()
        .flat_map(|j| {
            SimTelegram::with_journal(sim_config(), clock.clone(), j)
                .unwrap()
                .sent_log()
        })
        .collect();
    all.sort_by_key(|m| m.at);
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_drain_one_campaign_once_within_the_limit_and_stop_on_pause() {
    if std::env::var(CHILD).is_ok() {
        return;
    }
    let Some((pg, _redis)) = services() else {
        return;
    };
    let schema = format!("mia_workers_{:012x}", rand::rng().random::<u64>() >> 16);
    let prefix = format!("mia-workers-{schema}");
    let store = PostgresStore::connect_with_schema(&pg, &schema)
        .await
        .unwrap();
    let agent = Agent::builder(
        TemplateProvider::new(),
        SimTelegram::new(sim_config(), Arc::new(SystemClock)).unwrap(),
    )
    .store(store.clone())
    .permissive_policies()
    .build()
    .unwrap();
    let now = Timestamp::now();
    let contacts: Vec<Contact> = (0..CONTACTS)
        .map(|i| Contact::new(format!("w{i:05}"), TelegramPeer::user(i + 1), "UTC", now).unwrap())
        .collect();
    agent.import_contacts(&contacts).await.unwrap();
    let grants: Vec<ConsentRecord> = (0..CONTACTS)
        .filter(|i| consented(*i))
        .map(|i| {
            let ev = Evidence::new("telegram_start", format!("update={i}"));
            ConsentRecord::grant(
                format!("w{i:05}"),
                Purpose::marketing(),
                ev,
                "v1",
                now - SignedDuration::from_hours(1),
            )
        })
        .collect();
    agent.record_consent(&grants).await.unwrap();
    let campaign = agent
        .create_campaign(CampaignSpec::new("Workers", "tea", "20% off"))
        .await
        .unwrap();
    agent.schedule(&campaign.id, None).await.unwrap();
    agent.start(&campaign.id).await.unwrap();
    let total = grants.len() as u64;

    let dir = tempfile::tempdir().unwrap();
    let journals: Vec<PathBuf> = (0..6)
        .map(|i| dir.path().join(format!("worker-{i}.jsonl")))
        .collect();
    let first: Vec<Child> = journals[..3]
        .iter()
        .map(|j| spawn(&schema, j, &prefix))
        .collect();
    // Pause once a quarter is out.
    loop {
        let sent = store.job_counts(&campaign.id).await.unwrap().sent;
        if sent >= total / 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    agent.pause(&campaign.id, "operator pause").await.unwrap();
    let paused_at = Timestamp::now();
    wait_all(first);
    let after_pause = store.job_counts(&campaign.id).await.unwrap();
    assert!(
        after_pause.sent < total,
        "the pause stopped the workers before the end"
    );
    let late = posts(&journals[..3])
        .iter()
        .filter(|m| m.at > paused_at)
        .count();
    assert!(
        late <= 3,
        "{late} posts after the pause: at most the one in flight per worker"
    );

    agent.resume(&campaign.id).await.unwrap();
    let second: Vec<Child> = journals[3..]
        .iter()
        .map(|j| spawn(&schema, j, &prefix))
        .collect();
    wait_all(second);

    let counts = store.job_counts(&campaign.id).await.unwrap();
    assert_eq!((counts.sent, counts.open()), (total, 0));
    let all = posts(&journals);
    let mut per_peer: BTreeMap<i64, usize> = BTreeMap::new();
    for m in &all {
        *per_peer.entry(m.peer.id).or_default() += 1;
    }
    for i in 0..CONTACTS {
        assert_eq!(
            per_peer.get(&(i + 1)).copied().unwrap_or(0),
            usize::from(consented(i)),
            "contact w{i:05}"
        );
    }
    // The combined rate, over every one-second window of the run.
    let mut busiest = 0;
    let mut start = 0;
    for end in 0..all.len() {
        while all[end].at.duration_since(all[start].at) >= SignedDuration::from_secs(1) {
            start += 1;
        }
        busiest = busiest.max(end - start + 1);
    }
    assert!(
        busiest <= TELEGRAM_LIMIT,
        "{busiest} posts within one second"
    );
    println!(
        "{} posts by 6 worker processes; busiest second: {busiest}",
        all.len()
    );
    store.drop_schema().await.unwrap();
}
