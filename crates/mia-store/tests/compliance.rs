//! The audit log and erasure on real databases: tampering with the rows (as someone with
//! database access could, triggers dropped) is detected by `mia_safety::compliance`, and after
//! an erasure no table holds anything of the subject.
//!
//! The Postgres half needs `MIA_TEST_POSTGRES_URL` (it says it skipped otherwise); each test
//! works in its own schema, dropped at the end.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    missing_docs
)]

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use mia_core::{
    AuditAction, AuditEvent, AuditHash, AuditStore, Campaign, CampaignId, CampaignSpec,
    CampaignState, ConsentRecord, Contact, ContactId, Event, EventId, EventKind, Evidence,
    IdempotencyKey, Jurisdiction, NewJob, Purpose, Store, TelegramPeer,
};
use mia_safety::compliance::{
    AuditLog, CheckpointKey, CheckpointSigner, ProblemKind, SubjectRights, verify_log,
};
use serde_json::json;

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

/// Raw SQL on the store's database, for what the store refuses to do.
trait Raw {
    /// Runs statements (separated by `;`).
    async fn exec(&self, sql: &str);
    /// Drops the append-only guards of the audit tables.
    async fn unguard(&self);
    /// Every column of every table, as text.
    async fn everything(&self) -> Vec<String>;
}

/// A log of 12 entries about three subjects, checkpointed at 5 and 10.
async fn small_log(store: Arc<dyn Store>) -> (AuditLog<Arc<dyn Store>>, CheckpointKey) {
    let signer = CheckpointSigner::generate();
    let key = signer.public_key();
    let log = AuditLog::new(store).with_signer(signer).checkpoint_every(5);
    for i in 0..12i64 {
        let contact = ContactId::new(format!("c{}", i % 3));
        let event = AuditEvent::new(
            t(i),
            "worker:w1",
            AuditAction::PolicyDecision,
            Some(&contact),
            json!({ "job": format!("job-{i}"), "decision": "allow", "rule": "consent" }),
        );
        log.append(&[event]).await.unwrap();
    }
    assert!(log.verify(&[key]).await.unwrap().is_ok());
    (log, key)
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Tampers with a fresh 12-entry log through `raw` and returns the first problem found.
async fn tamper<R: Raw>(
    open: impl AsyncFn() -> (Arc<dyn Store>, R),
    how: &str,
) -> mia_safety::compliance::AuditProblem {
    let (store, raw) = open().await;
    let (_log, key) = small_log(Arc::clone(&store)).await;
    raw.unguard().await;
    match how {
        "flip" => {
            raw.exec(
                "UPDATE audit_log SET detail = replace(detail, 'consent', 'consenT') WHERE seq = 3",
            )
            .await
        }
        "drop" => raw.exec("DELETE FROM audit_log WHERE seq = 4").await,
        "reorder" => {
            raw.exec(
                "UPDATE audit_log SET seq = 100 WHERE seq = 4; \
                 UPDATE audit_log SET seq = 4 WHERE seq = 5; \
                 UPDATE audit_log SET seq = 5 WHERE seq = 100",
            )
            .await
        }
        "insert" => {
            // Room at 6, then a well-formed entry that links to entry 5.
            let entries = store.audit_entries(0, 100).await.unwrap();
            raw.exec(
                "UPDATE audit_log SET seq = seq + 100 WHERE seq >= 6; \
                      UPDATE audit_log SET seq = seq - 99 WHERE seq >= 106",
            )
            .await;
            let forged = mia_core::AuditDraft {
                at: entries[4].at,
                actor: "worker:w1".into(),
                action: AuditAction::PolicyDecision,
                subject: None,
                detail: json!({ "job": "job-x", "decision": "allow" }),
            }
            .seal(6, entries[4].hash);
            raw.exec(&format!(
                "INSERT INTO audit_log (seq, at, actor, action, subject, detail, prev_hash, hash) \
                 VALUES (6, {}, 'worker:w1', 'policy_decision', NULL, {}, {}, {})",
                forged.at.as_microsecond(),
                quote(&mia_core::canonical_json(&forged.detail)),
                quote(&forged.prev_hash.to_hex()),
                quote(&forged.hash.to_hex()),
            ))
            .await;
        }
        "rewrite" => {
            // A forger who knows the format rebuilds the chain from entry 7 on.
            let mut entries = store.audit_entries(0, 100).await.unwrap();
            entries[6].detail["decision"] = json!("deny");
            for i in 6..entries.len() {
                entries[i].prev_hash = entries[i - 1].hash;
                entries[i].hash = entries[i].expected_hash();
                raw.exec(&format!(
                    "UPDATE audit_log SET detail = {}, prev_hash = {}, hash = {} WHERE seq = {}",
                    quote(&mia_core::canonical_json(&entries[i].detail)),
                    quote(&entries[i].prev_hash.to_hex()),
                    quote(&entries[i].hash.to_hex()),
                    entries[i].seq
                ))
                .await;
            }
        }
        "forge" => {
            raw.exec(&format!(
                "UPDATE audit_checkpoints SET root = {} WHERE size = 5",
                quote(&AuditHash([7; 32]).to_hex())
            ))
            .await
        }
        other => panic!("unknown tampering {other}"),
    }
    let report = verify_log(&*store, &[key]).await.unwrap();
    let shown = format!("{report:?}");
    report
        .problem
        .unwrap_or_else(|| panic!("{how} went unnoticed: {shown}"))
}

async fn every_tampering_is_detected<R: Raw>(open: impl AsyncFn() -> (Arc<dyn Store>, R) + Copy) {
    let p = tamper(open, "flip").await;
    assert_eq!(
        (p.kind, p.seq),
        (ProblemKind::Altered, Some(3)),
        "{}",
        p.message
    );
    let p = tamper(open, "drop").await;
    assert_eq!(
        (p.kind, p.seq),
        (ProblemKind::Missing, Some(4)),
        "{}",
        p.message
    );
    let p = tamper(open, "reorder").await;
    assert_eq!(
        (p.kind, p.seq),
        (ProblemKind::Altered, Some(4)),
        "{}",
        p.message
    );
    let p = tamper(open, "insert").await;
    assert_eq!(
        (p.kind, p.seq),
        (ProblemKind::Altered, Some(7)),
        "{}",
        p.message
    );
    let p = tamper(open, "rewrite").await;
    assert_eq!(
        (p.kind, p.range),
        (ProblemKind::RootMismatch, Some((6, 10))),
        "{}",
        p.message
    );
    let p = tamper(open, "forge").await;
    assert_eq!(p.kind, ProblemKind::BadSignature, "{}", p.message);
}

/// Puts a subject in every table, erases them, and scans every column of every table.
async fn erasure_leaves_nothing<R: Raw>(store: Arc<dyn Store>, raw: R) {
    let signer = CheckpointSigner::generate();
    let key = signer.public_key();
    let log = Arc::new(
        AuditLog::new(Arc::clone(&store))
            .with_signer(signer)
            .checkpoint_every(3),
    );
    let who = Contact::new(
        "crm-erase-me",
        TelegramPeer::user(918_273_645),
        "Europe/Vienna",
        t(0),
    )
    .unwrap()
    .with_attribute("city", json!("Hallstatt-attr"));
    let other = Contact::new("crm-stays", TelegramPeer::user(5), "UTC", t(0)).unwrap();
    store.upsert_contacts(&[who.clone(), other]).await.unwrap();
    let ev = Evidence::new("web_form", "form=9 email=erase-me@example.com");
    store
        .append_consent(&[ConsentRecord::grant(
            "crm-erase-me",
            Purpose::marketing(),
            ev,
            "v1",
            t(1),
        )])
        .await
        .unwrap();
    let mut campaign = Campaign::draft(
        CampaignId::new("k1"),
        CampaignSpec::new("n", "p", "o"),
        t(0),
    );
    store.insert_campaign(&campaign).await.unwrap();
    for s in [
        CampaignState::Generating,
        CampaignState::InReview,
        CampaignState::Approved,
        CampaignState::Scheduled,
        CampaignState::Running,
    ] {
        campaign.transition(s, t(1)).unwrap();
    }
    let job = |c: &str| NewJob {
        key: IdempotencyKey::for_job(&campaign.id, &ContactId::new(c), 0),
        contact: ContactId::new(c),
        purpose: Purpose::marketing(),
        step: 0,
        due_at: t(2),
        skipped: None,
    };
    store
        .schedule(&campaign, &[job("crm-erase-me"), job("crm-stays")])
        .await
        .unwrap();
    store
        .append_events(&[Event {
            id: EventId::new("e1"),
            at: t(3),
            contact: who.id.clone(),
            campaign: Some(campaign.id.clone()),
            variant: None,
            step: None,
            kind: EventKind::Clicked,
        }])
        .await
        .unwrap();
    log.append(&[AuditEvent::new(
        t(4),
        "inbound",
        AuditAction::ConsentChange,
        Some(&who.id),
        json!({"status": "granted"}),
    )])
    .await
    .unwrap();
    let rights = SubjectRights::new(Arc::clone(&store)).with_audit_trail(log.clone());
    let before = store.job_counts(&campaign.id).await.unwrap();
    let counts = rights
        .erase(
            &who.id,
            Jurisdiction::Gdpr,
            t(10) + SignedDuration::from_secs(1),
        )
        .await
        .unwrap()
        .counts;
    assert_eq!(
        (counts.contacts, counts.consents, counts.jobs, counts.events),
        (1, 1, 1, 1)
    );
    let cells = raw.everything().await;
    assert!(
        cells.iter().any(|c| c.contains("crm-stays")),
        "the scan reads the tables"
    );
    for needle in [
        "crm-erase-me",
        "918273645",
        "Hallstatt-attr",
        "erase-me@example.com",
    ] {
        let found: Vec<_> = cells.iter().filter(|c| c.contains(needle)).collect();
        assert!(
            found.is_empty(),
            "{needle} survived the erasure in {found:?}"
        );
    }
    // The aggregates keep their counts, but for the erased contact's queued job, now cancelled.
    let mut after = before;
    after.pending -= 1;
    after.cancelled += 1;
    assert_eq!(store.job_counts(&campaign.id).await.unwrap(), after);
    let report = log.verify(&[key]).await.unwrap();
    assert!(report.is_ok(), "{report:?}");
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;
    use mia_store::SqliteStore;
    use sqlx::{Row, SqlitePool};

    struct File(SqlitePool);

    impl Raw for File {
        async fn exec(&self, sql: &str) {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                .execute(&self.0)
                .await
                .unwrap();
        }
        async fn unguard(&self) {
            self.exec(
                "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete; \
                 DROP TRIGGER audit_checkpoints_no_update; DROP TRIGGER audit_checkpoints_no_delete",
            )
            .await;
        }
        async fn everything(&self) -> Vec<String> {
            let tables: Vec<String> =
                sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
                    .fetch_all(&self.0)
                    .await
                    .unwrap();
            let mut cells = Vec::new();
            for table in tables {
                let columns: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT name FROM pragma_table_info('{table}')"
                )))
                .fetch_all(&self.0)
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<String, _>(0))
                .collect();
                for column in columns {
                    let sql = format!("SELECT CAST(\"{column}\" AS TEXT) FROM \"{table}\"");
                    let values: Vec<Option<String>> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                        .fetch_all(&self.0)
                        .await
                        .unwrap();
                    cells.extend(values.into_iter().flatten());
                }
            }
            cells
        }
    }

    async fn open() -> (Arc<dyn Store>, File) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.keep().join("mia.db");
        let store = SqliteStore::open(&path).await.unwrap();
        let raw = SqlitePool::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        (Arc::new(store), File(raw))
    }

    #[tokio::test]
    async fn sqlite_every_tampering_is_detected() {
        every_tampering_is_detected(open).await;
    }

    #[tokio::test]
    async fn sqlite_erasure_leaves_nothing_of_the_subject() {
        let (store, raw) = open().await;
        erasure_leaves_nothing(store, raw).await;
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use mia_store::PostgresStore;
    use sqlx::PgPool;

    const URL_VAR: &str = "MIA_TEST_POSTGRES_URL";

    fn server() -> Option<String> {
        match std::env::var(URL_VAR) {
            Ok(url) if !url.is_empty() => Some(url),
            _ => {
                println!("skipped: set {URL_VAR} to run the Postgres compliance tests");
                None
            }
        }
    }

    /// A test's own schema on one pool; dropped by the test at the end.
    struct Schema {
        pool: PgPool,
        name: String,
    }

    impl Raw for Schema {
        async fn exec(&self, sql: &str) {
            let sql = format!("SET search_path TO \"{}\"; {sql}", self.name);
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&self.pool)
                .await
                .unwrap();
        }
        async fn unguard(&self) {
            self.exec(
                "ALTER TABLE audit_log DISABLE TRIGGER USER; \
                 ALTER TABLE audit_checkpoints DISABLE TRIGGER USER",
            )
            .await;
        }
        async fn everything(&self) -> Vec<String> {
            let columns: Vec<(String, String)> = sqlx::query_as(
                "SELECT table_name::text, column_name::text FROM information_schema.columns \
                 WHERE table_schema = $1",
            )
            .bind(&self.name)
            .fetch_all(&self.pool)
            .await
            .unwrap();
            assert!(columns.len() > 20, "the scan sees the tables");
            let mut cells = Vec::new();
            for (table, column) in columns {
                let sql = format!(
                    "SELECT CAST(\"{column}\" AS TEXT) FROM \"{}\".\"{table}\"",
                    self.name
                );
                let values: Vec<Option<String>> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .fetch_all(&self.pool)
                    .await
                    .unwrap();
                cells.extend(values.into_iter().flatten());
            }
            cells
        }
    }

    fn unique() -> String {
        format!("mia_test_{:016x}", rand_u64())
    }

    fn rand_u64() -> u64 {
        use std::hash::{BuildHasher, RandomState};
        RandomState::new().hash_one(std::time::SystemTime::now())
    }

    async fn open_in(
        url: &str,
        schemas: &std::sync::Mutex<Vec<String>>,
    ) -> (Arc<dyn Store>, Schema) {
        let name = unique();
        schemas.lock().unwrap().push(name.clone());
        let store = PostgresStore::connect_with_schema(url, &name)
            .await
            .unwrap();
        let pool = PgPool::connect(url).await.unwrap();
        (Arc::new(store), Schema { pool, name })
    }

    async fn drop_all(url: &str, schemas: &std::sync::Mutex<Vec<String>>) {
        let pool = PgPool::connect(url).await.unwrap();
        let names: Vec<String> = schemas.lock().unwrap().drain(..).collect();
        for name in names {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS \"{name}\" CASCADE"
            )))
            .execute(&pool)
            .await
            .unwrap();
        }
    }

    #[tokio::test]
    async fn postgres_every_tampering_is_detected() {
        let Some(url) = server() else { return };
        let schemas = std::sync::Mutex::new(Vec::new());
        let open = async || open_in(&url, &schemas).await;
        every_tampering_is_detected(&open).await;
        drop_all(&url, &schemas).await;
    }

    #[tokio::test]
    async fn postgres_erasure_leaves_nothing_of_the_subject() {
        let Some(url) = server() else { return };
        let schemas = std::sync::Mutex::new(Vec::new());
        let (store, raw) = open_in(&url, &schemas).await;
        erasure_leaves_nothing(store, raw).await;
        drop_all(&url, &schemas).await;
    }
}
