//! `mia worker --metrics ADDR` serves Prometheus metrics while it sends; `mia --log-format json`
//! writes one JSON object a line to stderr.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

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
    match 12 - i32::from(hour) {
        0 => "Etc/GMT".into(),
        // Etc/GMT signs are inverted: Etc/GMT-3 is UTC+3.
        o => format!("Etc/GMT{:+}", -o),
    }
}

/// A running campaign for 10 contacts, 6 of whom consented.
async fn prepare(db: &Path) {
    let store = Arc::new(SqliteStore::open(db).await.unwrap());
    let telegram = SimTelegram::new(SimConfig::default(), Arc::new(SystemClock)).unwrap();
    let agent = Agent::builder(TemplateProvider::new(), telegram)
        .shared_store(store)
        .permissive_policies()
        .build()
        .unwrap();
    let now = Timestamp::now();
    let zone = daytime_zone();
    let contacts: Vec<Contact> = (0..10)
        .map(|i| Contact::new(format!("u{i}"), TelegramPeer::user(i + 1), &zone, now).unwrap())
        .collect();
    agent.import_contacts(&contacts).await.unwrap();
    let grants: Vec<ConsentRecord> = (0..6)
        .map(|i| {
            ConsentRecord::grant(
                format!("u{i}"),
                Purpose::marketing(),
                Evidence::new("telegram_start", format!("update={i}")),
                "v1",
                now - SignedDuration::from_hours(1),
            )
        })
        .collect();
    agent.record_consent(&grants).await.unwrap();
    let mut spec = CampaignSpec::new("Metrics", "tea", "20% off");
    spec.call_to_action_url = Some("https://shop.example/tea".into());
    let c = agent.create_campaign(spec).await.unwrap();
    agent.schedule(&c.id, None).await.unwrap();
    agent.start(&c.id).await.unwrap();
}

/// The Prometheus exporter (the `metrics` feature).
#[cfg(feature = "metrics")]
mod exporter {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use super::prepare;

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// The value of the sample `series` (name and labels, exactly as exposed), if present.
    fn sample(exposition: &str, series: &str) -> Option<f64> {
        exposition.lines().find_map(|line| {
            line.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
    }

    /// Kills the worker when the test ends, also when it fails.
    struct Child(std::process::Child);

    impl Drop for Child {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_watching_worker_serves_its_sends_on_the_metrics_endpoint() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("mia.db");
        prepare(&db).await;
        let journal = dir.path().join("telegram.jsonl");
        let addr = format!("127.0.0.1:{}", free_port());
        let mut worker = Child(
            Command::new(env!("CARGO_BIN_EXE_mia"))
                .args(["worker", "--watch", "--rate", "200"])
                .args(["--allow-domain", "shop.example", "--metrics", &addr])
                .arg("--db")
                .arg(&db)
                .arg("--journal")
                .arg(&journal)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );

        let url = format!("http://{addr}/metrics");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        let body = loop {
            if let Some(status) = worker.0.try_wait().unwrap() {
                let mut err = String::new();
                std::io::Read::read_to_string(worker.0.stderr.as_mut().unwrap(), &mut err).unwrap();
                panic!("the worker stopped ({status}): {err}");
            }
            if let Ok(response) = client.get(&url).send().await
                && response.status().is_success()
            {
                let body = response.text().await.unwrap();
                // Sends are counted as they happen, the outbox gauges set after each batch:
                // wait for both.
                let outbox_sent = body
                    .lines()
                    .any(|l| l.starts_with("mia_outbox_jobs{") && l.contains(r#"state="sent""#));
                if sample(&body, r#"mia_sends_total{outcome="sent"}"#) == Some(6.0) && outbox_sent {
                    break body;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no six sends and sent jobs in the outbox gauge on {url} within a minute"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        // Still running (it watches for new jobs), and described for Prometheus.
        assert!(worker.0.try_wait().unwrap().is_none());
        assert!(body.contains("# TYPE mia_sends_total counter"), "{body}");
        assert!(body.contains("# HELP mia_sends_total"), "{body}");
        // No contact appears in a label.
        assert!(!body.contains(r#""u1""#), "{body}");
    }
}

#[tokio::test]
async fn json_logs_are_one_json_object_a_line_with_the_span() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mia.db");
    prepare(&db).await;
    let journal = dir.path().join("telegram.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_mia"))
        .args(["--log-format", "json", "worker", "--rate", "200"])
        .args(["--allow-domain", "shop.example"])
        .arg("--db")
        .arg(&db)
        .arg("--journal")
        .arg(&journal)
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["sent"], 6, "{stats}");
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let completed = lines
        .iter()
        .find(|l| l["fields"]["message"] == "mia.campaign completed")
        .unwrap_or_else(|| panic!("no completion in {stderr}"));
    assert_eq!(completed["level"], "INFO");
    assert_eq!(completed["span"]["name"], "mia.campaign");
    assert_eq!(completed["span"]["action"], "complete");
}
