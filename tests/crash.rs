//! Crash safety, proven: a 10,000-contact campaign runs in a child process that is killed with
//! SIGKILL more than twenty times, half of them at random moments and half right after a post
//! and before the outbox update (the child says when it has posted, then waits for the signal);
//! each restart resumes from the store. At the end the simulated
//! Telegram's own journal must show exactly one post per consented contact and none to anyone
//! else.
//!
//! The child is this test binary run again with `MIA_CRASH_CHILD` set (see `crash_child`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    missing_docs
)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use mia::safety::{ContentGuard, SendGuard};
use mia::telegram::{Behaviour, SimConfig, SimTelegram};
use mia::*;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const CHILD: &str = "MIA_CRASH_CHILD";
const CONTACTS: i64 = 10_000;
const CAMPAIGN: &str = "Crash test";

fn consented(i: i64) -> bool {
    i % 10 < 7
}

fn t0() -> Timestamp {
    "2026-12-01T09:30:00Z".parse().unwrap()
}

/// What a child prints once its `after`-th new post is at Telegram, before the outbox knows.
const POSTED: &str = "mia-crash: posted, not recorded";

/// Passes sends through and stops the process right after the `after`-th new post: it prints
/// [`POSTED`] and blocks until the parent kills it. The message is at Telegram, the outbox does
/// not know yet.
struct StopAfter {
    inner: SimTelegram,
    after: u64,
    posts: AtomicU64,
}

#[async_trait]
impl Transport for StopAfter {
    fn name(&self) -> &str {
        "sim-stop-after"
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn send(&self, message: &OutboundMessage) -> Result<SendOutcome> {
        let outcome = self.inner.send(message).await?;
        if let SendOutcome::Sent {
            duplicate: false, ..
        } = outcome
            && self.posts.fetch_add(1, Ordering::SeqCst) + 1 == self.after
        {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            writeln!(out, "{POSTED}").unwrap();
            out.flush().unwrap();
            // Blocks this thread (and with it the worker) until the parent's SIGKILL.
            loop {
                std::thread::park();
            }
        }
        Ok(outcome)
    }
    async fn receive(&self) -> Result<Vec<InboundEvent>> {
        self.inner.receive().await
    }
    fn next_inbound_in(&self) -> Option<Duration> {
        self.inner.next_inbound_in()
    }
}

async fn open_store(spec: &str) -> Arc<dyn Store> {
    match spec.split_once(':') {
        Some(("sqlite", path)) => Arc::new(mia::store::SqliteStore::open(path).await.unwrap()),
        Some(("postgres", schema)) => {
            let url = std::env::var("MIA_TEST_POSTGRES_URL").unwrap();
            Arc::new(
                mia::store::PostgresStore::connect_with_schema(&url, schema)
                    .await
                    .unwrap(),
            )
        }
        _ => panic!("unknown store {spec}"),
    }
}

fn sim_config() -> SimConfig {
    SimConfig {
        deactivated_share: 0.0,
        blocked_share: 0.0,
        behaviour: Behaviour {
            stop: 0.0,
            block: 0.0,
            ..Behaviour::default()
        },
        ..SimConfig::seeded(99)
    }
}

/// Sets the campaign up if an earlier life did not get that far; idempotent at every step.
async fn ensure_running(agent: &Agent, store: &dyn Store) -> CampaignId {
    if store.contacts().await.unwrap().len() < CONTACTS as usize {
        let contacts: Vec<Contact> = (0..CONTACTS)
            .map(|i| {
                Contact::new(format!("c{i:05}"), TelegramPeer::user(i + 1), "UTC", t0()).unwrap()
            })
            .collect();
        agent.import_contacts(&contacts).await.unwrap();
    }
    if store
        .consents_for_purpose(&Purpose::marketing())
        .await
        .unwrap()
        .is_empty()
    {
        let grants: Vec<ConsentRecord> = (0..CONTACTS)
            .filter(|i| consented(*i))
            .map(|i| {
                let ev = Evidence::new("telegram_start", format!("update={i}"));
                ConsentRecord::grant(
                    format!("c{i:05}"),
                    Purpose::marketing(),
                    ev,
                    "v1",
                    t0() - SignedDuration::from_hours(1),
                )
            })
            .collect();
        agent.record_consent(&grants).await.unwrap();
    }
    let existing = store
        .campaigns()
        .await
        .unwrap()
        .into_iter()
        .rev()
        .find(|c| c.spec.name == CAMPAIGN && c.state != CampaignState::Aborted);
    let mut campaign = match existing {
        Some(c)
            if matches!(
                c.state,
                CampaignState::Draft | CampaignState::Generating | CampaignState::InReview
            ) =>
        {
            // Died while generating copy: start that part over.
            agent
                .abort(&c.id, "restarted during generation")
                .await
                .unwrap();
            None
        }
        other => other,
    };
    if campaign.is_none() {
        let mut spec = CampaignSpec::new(CAMPAIGN, "tea", "20% off this week");
        spec.call_to_action_url = Some("https://shop.example/tea".into());
        campaign = Some(agent.create_campaign(spec).await.unwrap());
    }
    let c = campaign.unwrap();
    if c.state == CampaignState::Approved {
        agent.schedule(&c.id, None).await.unwrap();
    }
    let c = agent.campaign(&c.id).await.unwrap();
    if c.state == CampaignState::Scheduled {
        agent.start(&c.id).await.unwrap();
    }
    c.id
}

/// The child: one life of the worker. Does nothing unless `MIA_CRASH_CHILD` is set.
#[tokio::test]
async fn crash_child() {
    let Ok(store_spec) = std::env::var(CHILD) else {
        return;
    };
    let journal = std::env::var("MIA_CRASH_JOURNAL").unwrap();
    let start: Timestamp = std::env::var("MIA_CRASH_START").unwrap().parse().unwrap();
    let stop_after: u64 = std::env::var("MIA_CRASH_STOP_AFTER").map_or(0, |n| n.parse().unwrap());

    let store = open_store(&store_spec).await;
    let clock = Arc::new(VirtualClock::starting_at(start));
    let telegram = SimTelegram::with_journal(sim_config(), clock.clone(), &journal).unwrap();
    let transport = StopAfter {
        inner: telegram,
        after: stop_after,
        posts: AtomicU64::new(0),
    };
    let agent = Agent::builder(TemplateProvider::new(), transport)
        .shared_store(store.clone())
        .content_policy(
            ContentGuard::builder()
                .allow_domain("shop.example")
                .build()
                .unwrap(),
        )
        .send_policy(SendGuard::builder().build().unwrap())
        .clock(clock)
        .worker_id(format!("child-{}", std::process::id()))
        .build()
        .unwrap();
    let id = ensure_running(&agent, store.as_ref()).await;
    agent.run_until_idle().await.unwrap();
    let c = agent.campaign(&id).await.unwrap();
    assert_eq!(c.state, CampaignState::Completed, "{:?}", c.state_reason);
    println!("child finished campaign {id}");
}

fn child(store: &str, journal: &Path, life: u32, stop_after: Option<u64>) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD, store)
        .env("MIA_CRASH_JOURNAL", journal)
        .env(
            "MIA_CRASH_START",
            (t0() + SignedDuration::from_mins(10 * i64::from(life))).to_string(),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(n) = stop_after {
        cmd.env("MIA_CRASH_STOP_AFTER", n.to_string());
    }
    cmd
}

async fn run_with_crashes(store_spec: &str, journal: &Path, seed: u64) -> CampaignId {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut kills = 0;
    let mut kills_after_post = 0;
    let mut life = 0;
    while kills < 22 {
        assert!(
            life < 60,
            "the campaign finished before it could be killed 22 times"
        );
        let after_post = life % 2 == 1;
        let stop_after = after_post.then(|| rng.random_range(1..250));
        let mut cmd = child(store_spec, journal, life, stop_after);
        if after_post {
            cmd.stdout(Stdio::piped());
        }
        let mut proc = cmd.spawn().unwrap();
        let status = if after_post {
            // Killed once it has posted and before it records the post; a child that ends
            // before it posts that many (the campaign is done) is not killed. (The marker may
            // share its line with the test harness's `test crash_child ... `.)
            let out = std::io::BufReader::new(proc.stdout.take().unwrap());
            if std::io::BufRead::lines(out)
                .map_while(std::result::Result::ok)
                .any(|line| line.contains(POSTED))
            {
                let _ = proc.kill(); // SIGKILL
            }
            proc.wait().unwrap()
        } else {
            std::thread::sleep(Duration::from_millis(rng.random_range(150..900)));
            let _ = proc.kill(); // SIGKILL
            proc.wait().unwrap()
        };
        life += 1;
        if status.success() {
            // It finished before the kill landed: nothing left to crash.
            break;
        }
        // Only our SIGKILL may end a life early: an exit code means the child failed (101 is
        // a failed assertion), another signal that it crashed.
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "child failed in life {life}: {status}"
        );
        kills += 1;
        kills_after_post += u32::from(after_post);
    }
    assert!(kills >= 20, "only {kills} kills");
    assert!(
        kills_after_post >= 10,
        "only {kills_after_post} crashes between post and outbox update"
    );
    // The last life runs to the end.
    let status = child(store_spec, journal, life, None)
        .stdout(Stdio::inherit())
        .status()
        .unwrap();
    assert!(status.success(), "final run: {status}");

    let store = open_store(store_spec).await;
    let campaign = store
        .campaigns()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.state == CampaignState::Completed)
        .expect("a completed campaign");
    let counts = store.job_counts(&campaign.id).await.unwrap();
    assert_eq!(counts.sent, 7_000);
    assert_eq!(counts.open(), 0);
    campaign.id
}

fn check_journal(journal: &Path, campaign: &CampaignId) {
    // Read after every life (each starts 10 minutes after the last): the log shows what had
    // reached a chat by then.
    let clock = Arc::new(VirtualClock::starting_at(
        t0() + SignedDuration::from_hours(24),
    ));
    let posts = SimTelegram::with_journal(sim_config(), clock, journal)
        .unwrap()
        .sent_log();
    assert!(
        posts.iter().all(|m| m.campaign.as_ref() == Some(campaign)),
        "only the final campaign ever posted"
    );
    let mut per_peer: BTreeMap<i64, usize> = BTreeMap::new();
    for m in &posts {
        *per_peer.entry(m.peer.id).or_default() += 1;
    }
    for i in 0..CONTACTS {
        let got = per_peer.get(&(i + 1)).copied().unwrap_or(0);
        assert_eq!(got, usize::from(consented(i)), "contact c{i:05}");
    }
    assert_eq!(posts.len(), 7_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_on_sqlite_loses_and_doubles_nothing() {
    if std::env::var(CHILD).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("telegram.jsonl");
    let store = format!("sqlite:{}", dir.path().join("mia.db").display());
    let campaign = run_with_crashes(&store, &journal, 2026).await;
    check_journal(&journal, &campaign);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_on_postgres_loses_and_doubles_nothing() {
    if std::env::var(CHILD).is_ok() {
        return;
    }
    let Ok(url) = std::env::var("MIA_TEST_POSTGRES_URL") else {
        println!("skipped: set MIA_TEST_POSTGRES_URL to run the crash harness on Postgres");
        return;
    };
    let schema = format!("mia_crash_{:012x}", rand::rng().random::<u64>() >> 16);
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("telegram.jsonl");
    let campaign = run_with_crashes(&format!("postgres:{schema}"), &journal, 2027).await;
    check_journal(&journal, &campaign);
    let store = mia::store::PostgresStore::connect_with_schema(&url, &schema)
        .await
        .unwrap();
    store.drop_schema().await.unwrap();
}
