//! `mia campaign ...` and `mia worker` on a SQLite database another process prepared.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use mia::store::SqliteStore;
use mia::telegram::{SimConfig, SimTelegram};
use mia::*;

/// An `Etc/GMT` zone where it is around noon now, so quiet hours never get in the way.
fn daytime_zone() -> String {
    let hour = Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .hour();
    let offset = 12 - i32::from(hour); // -11..=12
    match offset {
        0 => "Etc/GMT".into(),
        // Etc/GMT signs are inverted: Etc/GMT-3 is UTC+3.
        o => format!("Etc/GMT{:+}", -o),
    }
}

fn mia(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mia"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// 30 contacts (users 1..=30) of whom u0..u19 consented to marketing; returns the agent.
async fn audience(db: &Path) -> Agent {
    let store = Arc::new(SqliteStore::open(db).await.unwrap());
    let clock = Arc::new(SystemClock);
    let telegram = SimTelegram::new(SimConfig::default(), clock).unwrap();
    let agent = Agent::builder(TemplateProvider::new(), telegram)
        .shared_store(store)
        .permissive_policies()
        .build()
        .unwrap();
    let now = Timestamp::now();
    let zone = daytime_zone();
    let contacts: Vec<Contact> = (0..30)
        .map(|i| Contact::new(format!("u{i}"), TelegramPeer::user(i + 1), &zone, now).unwrap())
        .collect();
    agent.import_contacts(&contacts).await.unwrap();
    let grants: Vec<ConsentRecord> = (0..20)
        .map(|i| {
            let ev = Evidence::new("telegram_start", format!("update={i}"));
            ConsentRecord::grant(
                format!("u{i}"),
                Purpose::marketing(),
                ev,
                "v1",
                now - SignedDuration::from_hours(1),
            )
        })
        .collect();
    agent.record_consent(&grants).await.unwrap();
    agent
}

async fn prepare(db: &Path) -> CampaignId {
    let agent = audience(db).await;
    let mut spec = CampaignSpec::new("Ops", "tea", "20% off");
    spec.call_to_action_url = Some("https://shop.example/tea".into());
    let c = agent.create_campaign(spec).await.unwrap();
    agent.schedule(&c.id, None).await.unwrap();
    agent.start(&c.id).await.unwrap();
    c.id
}

#[tokio::test]
async fn a_watching_worker_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mia.db");
    let id = prepare(&db).await;
    let journal = dir.path().join("telegram.jsonl");
    let mut worker = Command::new(env!("CARGO_BIN_EXE_mia"))
        .args([
            "worker",
            "--db",
            db.to_str().unwrap(),
            "--journal",
            journal.to_str().unwrap(),
            "--allow-domain",
            "shop.example",
            "--rate",
            "200",
            "--watch",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The first line is the campaign's run; the worker then watches for more work.
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(worker.stdout.take().unwrap()));
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["sent"], 20);
    let killed = Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = worker.wait().unwrap();
    assert!(
        status.success(),
        "SIGTERM ends the worker cleanly: {status}"
    );
    // It had nothing more to report (or, stopped right as a new round began, reports that it
    // did nothing), and left nothing claimed.
    if let Some(line) = lines.next() {
        let last: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        assert_eq!(last["sent"], 0, "{last}");
    }
    let (ok, out, err) = mia(&[
        "campaign",
        "--db",
        db.to_str().unwrap(),
        "status",
        id.as_str(),
    ]);
    assert!(ok, "{err}");
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["jobs"]["claimed"], 0, "{status}");
    assert_eq!(status["jobs"]["sent"], 20, "{status}");
}

#[tokio::test]
async fn an_operator_pauses_resumes_and_watches_a_campaign_that_workers_send() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mia.db");
    let id = prepare(&db).await;
    let db = db.to_str().unwrap();
    let journal = dir.path().join("telegram.jsonl");
    let journal = journal.to_str().unwrap();

    let (ok, out, err) = mia(&["campaign", "--db", db, "status", id.as_str()]);
    assert!(ok, "{err}");
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["state"], "running");
    assert_eq!(status["jobs"]["pending"], 20);
    assert_eq!(status["jobs"]["skipped"], 10);
    assert!(status["eta"].is_null(), "no rate, no ETA: {status}");
    // At 4 messages a second, the 20 open jobs take 5 s.
    let (ok, out, err) = mia(&["campaign", "--db", db, "status", id.as_str(), "--rate", "4"]);
    assert!(ok, "{err}");
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["eta"]["secs"], 5, "{status}");
    let (ok, _, err) = mia(&["campaign", "--db", db, "status", id.as_str(), "--rate", "0"]);
    assert!(!ok && err.contains("--rate"), "{err}");

    let (ok, out, _) = mia(&["campaign", "--db", db, "pause", id.as_str()]);
    assert!(ok && out.contains("paused"), "{out}");
    let worker = [
        "worker",
        "--db",
        db,
        "--journal",
        journal,
        "--allow-domain",
        "shop.example",
        "--rate",
        "200",
    ];
    let (ok, out, err) = mia(&worker);
    assert!(ok, "{err}");
    let stats: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(stats["sent"], 0, "a paused campaign sends nothing");

    let (ok, _, err) = mia(&["campaign", "--db", db, "resume", id.as_str()]);
    assert!(ok, "{err}");
    let (ok, out, err) = mia(&worker);
    assert!(ok, "{err}");
    let stats: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(stats["sent"], 20);
    // A second worker finds nothing left to do, and Telegram's journal holds 20 posts.
    let (ok, out, _) = mia(&worker);
    assert!(ok);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(out.trim()).unwrap()["sent"],
        0
    );
    assert_eq!(
        std::fs::read_to_string(journal).unwrap().lines().count(),
        20
    );

    let (ok, out, _) = mia(&["campaign", "--db", db, "list"]);
    assert!(
        ok && out.contains("completed") && out.contains("sent      20 of      30"),
        "{out}"
    );
    let (ok, out, _) = mia(&["campaign", "--db", db, "dead-letters", id.as_str()]);
    assert!(ok && out.trim().is_empty(), "{out}");
    // Operating on a finished campaign is a clear error, not a crash.
    let (ok, _, err) = mia(&["campaign", "--db", db, "pause", id.as_str()]);
    assert!(
        !ok && err.contains("cannot go from completed to paused"),
        "{err}"
    );
    let (ok, _, err) = mia(&["campaign", "--db", "/nonexistent/mia.db", "list"]);
    assert!(!ok && err.contains("no database"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_sends_a_campaign_through_the_bot_api() {
    use mia::telegram::bot_api::{FAKE_TOKEN, FakeBotApi};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ops.db");
    prepare(&db).await;
    let fake = FakeBotApi::start().await;
    // Contacts u0..u19 (users 1..=20) opted in. On Telegram, 1..=19 started the bot; 19 then
    // blocked it; 20 never wrote to it, so the Bot API refuses a first message.
    for user in 1..=19 {
        fake.user_writes(user, "/start");
    }
    fake.user_blocks(19);
    let run = |fake_url: String, db: std::path::PathBuf| {
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_mia"))
                .args(["worker", "--transport", "bot-api", "--rate", "500"])
                .args(["--allow-domain", "shop.example", "--api-base", &fake_url])
                .arg("--db")
                .arg(&db)
                .env("TELEGRAM_BOT_TOKEN", FAKE_TOKEN)
                .output()
                .unwrap()
        })
    };
    let out = run(fake.url(), db.clone()).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["sent"], 18, "{stats}");
    assert_eq!(stats["dead_lettered"], 2, "{stats}");
    let mut chats: Vec<i64> = fake.messages().iter().map(|m| m.chat_id).collect();
    chats.sort_unstable();
    assert_eq!(
        chats,
        (1..=18).collect::<Vec<_>>(),
        "one message per consented chat"
    );

    // Nothing is left: a second worker posts nothing.
    let out = run(fake.url(), db.clone()).await.unwrap();
    assert!(out.status.success());
    assert_eq!(fake.messages().len(), 18);
    let (ok, out, _) = mia(&["campaign", "--db", db.to_str().unwrap(), "list"]);
    assert!(ok);
    assert!(out.contains("completed"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_send_writes_guards_and_sends_a_spec_through_the_bot_api() {
    use mia::telegram::bot_api::{FAKE_TOKEN, FakeBotApi};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("send.db");
    drop(audience(&db).await);
    let spec = dir.path().join("spring.toml");
    std::fs::write(
        &spec,
        "name = \"Spring\"\nproduct = \"green tea\"\noffer = \"20% off this week\"\n\
         url = \"https://shop.example/tea\"\n",
    )
    .unwrap();
    let fake = FakeBotApi::start().await;
    for user in 1..=30 {
        fake.user_writes(user, "/start");
    }
    let (url, db2, spec2) = (fake.url(), db.clone(), spec.clone());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_mia"))
            .args(["campaign", "--db"])
            .arg(&db2)
            .args([
                "send",
                "--transport",
                "bot-api",
                "--until-done",
                "--api-base",
                &url,
            ])
            .arg("--spec")
            .arg(&spec2)
            .env("TELEGRAM_BOT_TOKEN", FAKE_TOKEN)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["run"]["sent"], 20, "{report}");
    let mut chats: Vec<i64> = fake.messages().iter().map(|m| m.chat_id).collect();
    chats.sort_unstable();
    assert_eq!(
        chats,
        (1..=20).collect::<Vec<_>>(),
        "only the 20 who consented"
    );
    assert!(
        fake.messages()
            .iter()
            .all(|m| m.text.contains("shop.example"))
    );

    // A spec that asks for something mia does not do is refused by name.
    std::fs::write(
        &spec,
        "name = \"x\"\nproduct = \"y\"\noffer = \"z\"\nscrape_group = true\n",
    )
    .unwrap();
    let (ok, _, err) = mia(&[
        "campaign",
        "--db",
        db.to_str().unwrap(),
        "send",
        "--journal",
        "/dev/null",
        "--spec",
        spec.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(err.contains("scrape_group"), "{err}");
}
