//! Event collection under a crash: a writer process recording events from many tasks through
//! `BatchingSink` into SQLite is killed mid-stream; every event it acknowledged is in the
//! database after a restart, and redelivering everything counts nothing twice.
//!
//! The child is this test binary run again with `MIA_EVENTS_CHILD` set (see `events_child`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;

use jiff::Timestamp;
use mia::analytics::BatchingSink;
use mia::store::SqliteStore;
use mia::*;

const CHILD: &str = "MIA_EVENTS_CHILD";
const TASKS: usize = 8;
const PER_TASK: usize = 2_000;

fn event(task: usize, n: usize) -> Event {
    Event {
        id: EventId::new(format!("t{task}-{n}")),
        at: Timestamp::from_second(1_800_000_000 + n as i64).unwrap(),
        contact: ContactId::new("c"),
        campaign: Some(CampaignId::new("crash")),
        variant: None,
        step: None,
        kind: EventKind::Sent,
    }
}

/// The child: records every event once from `TASKS` tasks, printing each id it was told is
/// written. Does nothing unless `MIA_EVENTS_CHILD` names the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_child() {
    let Ok(path) = std::env::var(CHILD) else {
        return;
    };
    let store = Arc::new(SqliteStore::open(&path).await.unwrap());
    let sink = BatchingSink::builder()
        .build(Arc::new(StoreSink::new(store)))
        .unwrap();
    let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let (sink, out) = (sink.clone(), out.clone());
        tasks.push(tokio::spawn(async move {
            for n in 0..PER_TASK {
                sink.record(&[event(task, n)]).await.unwrap();
                let mut out = out.lock().unwrap();
                writeln!(out, "ack t{task}-{n}").unwrap();
                out.flush().unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

fn child(db: &std::path::Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "events_child", "--nocapture", "--test-threads=1"])
        .env(CHILD, db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_writer_loses_no_acknowledged_event_and_a_redelivery_counts_none_twice() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.db");
    // Create the schema before the first life, so the kill lands while events are written.
    drop(SqliteStore::open(&db).await.unwrap());

    let mut first = child(&db);
    let mut acked = HashSet::new();
    let stdout = BufReader::new(first.stdout.take().unwrap());
    for line in stdout.lines() {
        let line = line.unwrap();
        // The test harness may print its own words before ours on the same line.
        if let Some((_, id)) = line.split_once("ack ") {
            acked.insert(id.to_owned());
        }
        if acked.len() >= 3_000 {
            break;
        }
    }
    first.kill().unwrap(); // SIGKILL: no destructor, no flush
    first.wait().unwrap();
    assert!(
        acked.len() >= 3_000,
        "the writer was killed before it wrote enough"
    );

    let store = SqliteStore::open(&db).await.unwrap();
    let stored = store.contact_events(&ContactId::new("c")).await.unwrap();
    let ids: HashSet<String> = stored.iter().map(|e| e.id.as_str().to_owned()).collect();
    assert_eq!(ids.len(), stored.len(), "no event twice");
    let lost: Vec<_> = acked.iter().filter(|id| !ids.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged events lost, e.g. {:?}",
        lost.len(),
        lost.first()
    );
    assert!(
        stored.len() < TASKS * PER_TASK,
        "the kill landed mid-stream"
    );
    drop(store);

    // The host redelivers everything (at least once): every event once, none twice.
    let second = child(&db).wait_with_output().unwrap();
    assert!(second.status.success());
    let store = SqliteStore::open(&db).await.unwrap();
    let stored = store.contact_events(&ContactId::new("c")).await.unwrap();
    let ids: HashSet<String> = stored.iter().map(|e| e.id.as_str().to_owned()).collect();
    assert_eq!(stored.len(), TASKS * PER_TASK);
    assert_eq!(ids.len(), TASKS * PER_TASK);
}
