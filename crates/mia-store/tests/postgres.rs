//! `PostgresStore` against the store conformance suite, plus what only a shared server can get
//! wrong: reopening, concurrent migrations, damaged rows, schema isolation, and many workers
//! claiming from one outbox.
//!
//! These tests need a server: set `MIA_TEST_POSTGRES_URL` (for example
//! `postgres://postgres@127.0.0.1:5432/test`). Without it each test says it skipped and passes.
//! Every test works in its own schema, `mia_test_<random hex>`, dropped at the end.
#![cfg(feature = "postgres")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::collections::HashSet;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

use jiff::{SignedDuration, Timestamp};
use mia_core::{
    Campaign, CampaignId, CampaignSpec, CampaignState, CampaignStore, ConsentRecord, ConsentStore,
    Contact, ContactId, ContactStore, Error, Event, EventId, EventKind, EventStore, Evidence,
    IdempotencyKey, JobState, JobUpdate, NewJob, OutboxStore, Purpose, ReviewId, ReviewItem,
    ReviewState, ReviewStore, ReviewSubject, TelegramPeer, VariantId,
};
use mia_store::PostgresStore;
use sqlx::{AssertSqlSafe, PgPool};

const URL_VAR: &str = "MIA_TEST_POSTGRES_URL";

/// The server's URL, or `None` after saying that the test skips.
fn server() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            println!("skipped: set {URL_VAR} to run the Postgres store tests");
            None
        }
    }
}

/// A schema name no other test (in this run or a parallel one) uses.
fn unique_schema() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let seed = (
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now(),
    );
    let hash = std::collections::hash_map::RandomState::new().hash_one(seed);
    format!("mia_test_{hash:016x}")
}

/// A test's schema; dropped with everything in it when the test ends, passed or failed.
struct Scratch {
    url: String,
    name: String,
}

impl Scratch {
    fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            name: unique_schema(),
        }
    }

    async fn store(&self) -> PostgresStore {
        PostgresStore::connect_with_schema(&self.url, &self.name)
            .await
            .unwrap()
    }

    /// A plain pool on the same database, for what the store does not offer (damaging rows).
    async fn raw(&self) -> PgPool {
        PgPool::connect(&self.url).await.unwrap()
    }

    /// The names of the indexes of `table`, sorted.
    async fn indexes(&self, table: &str) -> Vec<String> {
        let raw = self.raw().await;
        let mut names: Vec<String> = sqlx::query_scalar(
            "SELECT indexname::text FROM pg_indexes WHERE schemaname = $1 AND tablename = $2",
        )
        .bind(&self.name)
        .bind(table)
        .fetch_all(&raw)
        .await
        .unwrap();
        raw.close().await;
        names.sort();
        names
    }

    /// Runs `sql` with `{s}` replaced by the quoted schema name.
    async fn exec(&self, sql: &str) -> Result<u64, sqlx::Error> {
        let raw = self.raw().await;
        let sql = sql.replace("{s}", &format!("\"{}\"", self.name));
        let done = sqlx::query(AssertSqlSafe(sql)).execute(&raw).await;
        raw.close().await;
        done.map(|r| r.rows_affected())
    }

    /// Runs `statements` in order with [`exec`](Self::exec), each of which must succeed.
    async fn exec_all(&self, statements: &[&str]) {
        for sql in statements {
            if let Err(e) = self.exec(sql).await {
                panic!("{sql}: {e}");
            }
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Drop cannot await, and may run inside a runtime: clean up on a thread of its own.
        let url = self.url.clone();
        // A lock timeout, so that a test leaving a transaction open fails instead of hanging.
        let sql = format!(
            "SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS \"{}\" CASCADE",
            self.name
        );
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let raw = PgPool::connect(&url).await.unwrap();
                sqlx::raw_sql(AssertSqlSafe(sql))
                    .execute(&raw)
                    .await
                    .unwrap();
                raw.close().await;
            });
        });
        if cleanup.join().is_err() && !std::thread::panicking() {
            panic!("could not drop the test schema {}", self.name);
        }
    }
}

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

fn contact(i: i64) -> Contact {
    Contact::new(
        format!("c{i:05}"),
        TelegramPeer::user(1000 + i),
        "Europe/Vienna",
        t(0),
    )
    .unwrap()
    .with_attribute("plan", serde_json::json!({ "tier": "pro", "seats": i }))
}

/// A campaign that has been inserted as a draft and is about to be scheduled as running.
async fn running_campaign(store: &PostgresStore, id: &str) -> Campaign {
    let mut c = Campaign::draft(
        CampaignId::new(id),
        CampaignSpec::new("Spring", "tea", "20% off"),
        t(0),
    );
    store.insert_campaign(&c).await.unwrap();
    for s in [
        CampaignState::Generating,
        CampaignState::InReview,
        CampaignState::Approved,
        CampaignState::Scheduled,
        CampaignState::Running,
    ] {
        c.transition(s, t(1)).unwrap();
    }
    c
}

fn jobs_for(campaign: &Campaign, contacts: impl Iterator<Item = i64>) -> Vec<NewJob> {
    contacts
        .map(|i| {
            let contact = ContactId::new(format!("c{i:05}"));
            NewJob {
                key: IdempotencyKey::for_job(&campaign.id, &contact, 0),
                contact,
                purpose: Purpose::marketing(),
                step: 0,
                due_at: t(i % 10),
                skipped: None,
            }
        })
        .collect()
}

#[tokio::test]
async fn a_postgres_store_conforms() {
    let Some(url) = server() else { return };
    let scratch = Scratch::new(&url);
    let store = scratch.store().await;
    mia_core::testing::store_conformance(&store).await;
    mia_core::testing::pages_keep_their_limit(&store).await;
    store.close().await;
}

#[tokio::test]
async fn reopening_a_schema_keeps_everything_and_other_schemas_see_nothing() {
    let Some(url) = server() else { return };
    let scratch = Scratch::new(&url);
    let store = scratch.store().await;
    let version = store.schema_version().await.unwrap();
    assert!(version >= 1);

    store
        .upsert_contacts(&[contact(1), contact(2), contact(3)])
        .await
        .unwrap();
    let evidence = Evidence::new("telegram_start", "update=1");
    for i in 1..=3 {
        let grant = ConsentRecord::grant(
            format!("c{i:05}"),
            Purpose::marketing(),
            evidence.clone(),
            "v1",
            t(i),
        );
        store.append_consent(&[grant]).await.unwrap();
    }
    let campaign = running_campaign(&store, "spring").await;
    store
        .schedule(&campaign, &jobs_for(&campaign, 1..=3))
        .await
        .unwrap();
    let lease = SignedDuration::from_mins(5);
    let claimed = store.claim("w1", t(10), lease, 2).await.unwrap();
    assert_eq!(claimed.len(), 2);
    store
        .record_attempt(
            &claimed[0].key,
            claimed[0].claim_token,
            &VariantId::new("A"),
            0.5,
            t(11),
        )
        .await
        .unwrap();
    store
        .update_job(
            &claimed[0].key,
            claimed[0].claim_token,
            &JobUpdate::Sent { message_id: 42 },
            t(12),
        )
        .await
        .unwrap();
    let stop = ConsentRecord::withdraw("c00003", Purpose::marketing(), evidence, t(13));
    assert_eq!(store.withdraw_consent(&stop).await.unwrap(), 1);
    store
        .append_events(&[Event {
            id: EventId::new("e1"),
            at: t(12),
            contact: claimed[0].contact.clone(),
            campaign: Some(campaign.id.clone()),
            variant: Some(VariantId::new("A")),
            step: None,
            kind: EventKind::Converted { value_minor: 1999 },
        }])
        .await
        .unwrap();
    let review = ReviewItem {
        id: ReviewId::new("r1"),
        campaign: campaign.id.clone(),
        subject: ReviewSubject::Send {
            job: claimed[1].key.clone(),
        },
        text: "Spring tea, 20% off".into(),
        trace: vec![],
        state: ReviewState::Pending,
        reviewer: None,
        note: None,
        created_at: t(14),
        resolved_at: None,
    };
    store
        .insert_reviews(std::slice::from_ref(&review))
        .await
        .unwrap();

    let contacts = store.contacts().await.unwrap();
    let history = store
        .consent_history(&ContactId::new("c00003"))
        .await
        .unwrap();
    let jobs = store.jobs(&campaign.id).await.unwrap();
    let events = store.campaign_events(&campaign.id).await.unwrap();
    store.close().await;
    drop(store);

    for edit in [
        "UPDATE {s}.consents SET status = 'granted'",
        "DELETE FROM {s}.consents",
        "TRUNCATE {s}.consents",
    ] {
        let err = scratch.exec(edit).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{edit}: {err}");
    }

    let store = scratch.store().await;
    assert_eq!(store.schema(), scratch.name);
    assert_eq!(store.schema_version().await.unwrap(), version);
    assert_eq!(store.contacts().await.unwrap(), contacts);
    assert_eq!(contacts.len(), 3);
    assert_eq!(
        store
            .consent_history(&ContactId::new("c00003"))
            .await
            .unwrap(),
        history
    );
    assert_eq!(history.len(), 2, "the grant and the withdrawal");
    let reopened = store.campaign(&campaign.id).await.unwrap().unwrap();
    assert_eq!(reopened, campaign);
    assert_eq!(store.jobs(&campaign.id).await.unwrap(), jobs);
    let states: HashSet<JobState> = jobs.iter().map(|j| j.state).collect();
    assert!(states.contains(&JobState::Sent) && states.contains(&JobState::Claimed));
    assert!(
        states.contains(&JobState::Cancelled),
        "the withdrawal cancelled c00003's job"
    );
    assert_eq!(store.campaign_events(&campaign.id).await.unwrap(), events);
    assert_eq!(store.pending_reviews().await.unwrap(), vec![review]);
    assert_eq!(
        store
            .job_by_message(&claimed[0].contact, 42)
            .await
            .unwrap()
            .map(|j| j.key),
        Some(claimed[0].key.clone())
    );

    // Another schema of the same database is another store.
    let neighbour = Scratch::new(&url);
    let other = neighbour.store().await;
    assert!(other.contacts().await.unwrap().is_empty());
    assert!(other.campaign(&campaign.id).await.unwrap().is_none());
    other.close().await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn processes_starting_together_migrate_once() {
    let Some(url) = server() else { return };
    let scratch = Scratch::new(&url);
    let connects: Vec<_> = (0..4)
        .map(|_| {
            let (url, name) = (url.clone(), scratch.name.clone());
            tokio::spawn(async move { PostgresStore::connect_with_schema(&url, &name).await })
        })
        .collect();
    let mut stores = Vec::new();
    for connect in connects {
        stores.push(
            connect
                .await
                .unwrap()
                .expect("every concurrent connect succeeds"),
        );
    }
    for store in &stores {
        assert_eq!(store.schema_version().await.unwrap(), 12);
    }
    let raw = scratch.raw().await;
    let applied: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM \"{}\".schema_migrations",
        scratch.name
    )))
    .fetch_one(&raw)
    .await
    .unwrap();
    assert_eq!(applied, 12, "each migration is recorded once");
    raw.close().await;
    for store in stores {
        store.close().await;
    }
}

#[tokio::test]
async fn a_corrupt_row_is_an_error_not_a_panic() {
    let Some(url) = server() else { return };
    let scratch = Scratch::new(&url);
    let store = scratch.store().await;
    store
        .upsert_contacts(&[contact(1), contact(2)])
        .await
        .unwrap();
    let campaign = running_campaign(&store, "spring").await;
    store
        .schedule(&campaign, &jobs_for(&campaign, 1..=2))
        .await
        .unwrap();

    // JSONB only holds valid JSON, but not necessarily JSON of the right shape.
    let damaged = scratch
        .exec("UPDATE {s}.contacts SET attributes = '[1, 2]' WHERE id = 'c00001'")
        .await
        .unwrap();
    assert_eq!(damaged, 1);
    scratch
        .exec("UPDATE {s}.campaigns SET spec = '\"oops\"'")
        .await
        .unwrap();
    scratch
        .exec(&format!(
            "UPDATE {{s}}.outbox SET due_at = {} WHERE contact = 'c00002'",
            i64::MAX
        ))
        .await
        .unwrap();

    let err = store
        .contact(&ContactId::new("c00001"))
        .await
        .expect_err("an array is not an attribute map");
    assert!(
        matches!(
            err,
            Error::Store {
                retryable: false,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("attributes"), "{err}");
    assert!(store.contacts().await.is_err());
    // Rows that are fine still read.
    assert!(
        store
            .contact(&ContactId::new("c00002"))
            .await
            .unwrap()
            .is_some()
    );
    let err = store.campaign(&campaign.id).await.unwrap_err();
    assert!(err.to_string().contains("spec"), "{err}");
    let err = store.jobs(&campaign.id).await.unwrap_err();
    assert!(err.to_string().contains("due_at"), "{err}");
    // The states are fine, so counting still works.
    assert_eq!(store.job_counts(&campaign.id).await.unwrap().pending, 2);
    // CHECK constraints keep unknown states out in the first place.
    let err = scratch
        .exec("UPDATE {s}.outbox SET state = 'exploded'")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("check"), "{err}");
    store.close().await;
}

#[tokio::test]
async fn a_schema_from_a_newer_build_is_refused() {
    let Some(url) = server() else { return };
    let scratch = Scratch::new(&url);
    scratch.store().await.close().await;
    scratch
        .exec("INSERT INTO {s}.schema_migrations (version) VALUES (999)")
        .await
        .unwrap();
    let err = PostgresStore::connect_with_schema(&url, &scratch.name)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("999"), "{err}");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn server_errors_say_whether_a_retry_may_help() {
    let Some(url) = server() else { return };
    let raw = PgPool::connect(&url).await.unwrap();
    let raise = |code: &str| {
        format!("DO $$ BEGIN RAISE EXCEPTION 'raised by a test' USING ERRCODE = '{code}'; END $$")
    };
    for (code, retryable) in [
        ("40001", true),  // serialization_failure
        ("40P01", true),  // deadlock_detected
        ("57P01", true),  // admin_shutdown
        ("08006", true),  // connection_failure
        ("23505", false), // unique_violation
        ("42501", false), // insufficient_privilege
    ] {
        let err = sqlx::raw_sql(AssertSqlSafe(raise(code)))
            .execute(&raw)
            .await
            .unwrap_err();
        let err = mia_store::StoreError::from(err);
        assert_eq!(err.is_retryable(), retryable, "{code}: {err}");
        let core = mia_core::Error::from(err);
        assert!(matches!(core, Error::Store { .. }));
        assert_eq!(core.is_retryable(), retryable, "{code}");
    }
    raw.close().await;
}

#[tokio::test]
async fn schema_names_must_be_plain_identifiers() {
    // Checked before connecting, so this runs without a server too.
    let url = "postgres://nobody:secret@127.0.0.1:1/none";
    for bad in ["Mia", "mia; DROP TABLE x", "mia\"", "", "pg_temp"] {
        let err = PostgresStore::connect_with_schema(url, bad)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{bad:?}: {err:?}");
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}

#[tokio::test]
async fn debug_shows_the_schema_not_the_url() {
    let Some(url) = server() else { return };
    let scratch = Scratch::new(&url);
    let store = scratch.store().await;
    let shown = format!("{store:?}");
    assert!(shown.contains(&scratch.name), "{shown}");
    assert!(
        !shown.contains(&url) && !shown.contains("postgres://"),
        "{shown}"
    );
    store.close().await;
}

#[tokio::test]
async fn a_peer_belongs_to_one_contact() {
    let Some(url) = server() else { return };
    let scratch = Scratch::new(&url);
    let store = scratch.store().await;
    store.upsert_contacts(&[contact(1)]).await.unwrap();

    // A large batch whose last contact takes c00001's chat: the error names both, and none of
    // the batch is written.
    let mut batch: Vec<Contact> = (100..6_000).map(contact).collect();
    let mut twin = contact(2);
    twin.peer = contact(1).peer;
    batch.push(twin);
    let err = store.upsert_contacts(&batch).await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("c00002") && message.contains("c00001"),
        "{message}"
    );
    assert_eq!(store.contacts().await.unwrap(), vec![contact(1)]);

    // Two new contacts in one batch sharing a chat.
    let mut pair = vec![contact(5), contact(6)];
    pair[1].peer = pair[0].peer;
    let message = store.upsert_contacts(&pair).await.unwrap_err().to_string();
    assert!(
        message.contains("c00005") && message.contains("c00006"),
        "{message}"
    );

    // Moving a contact to a free chat is an update, not a conflict; repeating a contact in a
    // batch keeps its last version.
    let mut moved = contact(1);
    moved.peer = TelegramPeer::group(-42);
    store
        .upsert_contacts(&[contact(1), moved.clone()])
        .await
        .unwrap();
    assert_eq!(
        store.contact_by_peer(&moved.peer).await.unwrap(),
        Some(moved)
    );
    store.close().await;
}

/// Runs four workers, two on each of `first` and `second` (the pools of two processes), each
/// claiming up to `limit` jobs at `at` until a claim comes back empty, and finishing each batch
/// as sent: job by job with `update_job` when `one_by_one`, else with one `update_jobs`.
/// Returns every key taken, asserting that no job was taken twice, and how many workers took
/// any.
async fn four_workers(
    first: &PostgresStore,
    second: &PostgresStore,
    at: Timestamp,
    limit: usize,
    one_by_one: bool,
) -> (HashSet<IdempotencyKey>, usize) {
    let worker = |store: PostgresStore, name: &'static str| {
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = store
                    .claim(name, at, SignedDuration::from_hours(1), limit)
                    .await
                    .unwrap();
                if batch.is_empty() {
                    return mine;
                }
                let sent = JobUpdate::Sent { message_id: 1 };
                assert!(batch.iter().all(|job| job.worker.as_deref() == Some(name)));
                if one_by_one {
                    for job in &batch {
                        store
                            .update_job(&job.key, job.claim_token, &sent, at)
                            .await
                            .unwrap();
                    }
                } else {
                    let updates: Vec<_> = batch.iter().map(|job| (job, sent.clone())).collect();
                    assert!(store.update_jobs(&updates, at).await.unwrap().is_empty());
                }
                mine.extend(batch.into_iter().map(|job| job.key));
            }
        })
    };
    let tasks = [
        worker(first.clone(), "w1"),
        worker(first.clone(), "w2"),
        worker(second.clone(), "w3"),
        worker(second.clone(), "w4"),
    ];
    let mut seen = HashSet::new();
    let mut busy = 0;
    for task in tasks {
        let keys = task.await.unwrap();
        busy += usize::from(!keys.is_empty());
        for key in keys {
            assert!(seen.insert(key.clone()), "{key} was taken twice");
        }
    }
    (seen, busy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_workers_never_claim_the_same_job() {
    const JOBS: i64 = 2_000;
    let Some(url) = server() else { return };
    let scratch = Scratch::new(&url);
    let first = scratch.store().await;
    let campaign = running_campaign(&first, "spring").await;
    first
        .schedule(&campaign, &jobs_for(&campaign, 0..JOBS))
        .await
        .unwrap();
    let second = scratch.store().await;
    let (seen, busy) = four_workers(&first, &second, t(100), 25, true).await;
    assert_eq!(seen.len(), JOBS as usize, "every job was claimed");
    assert!(busy >= 2, "the workers shared the queue");
    let counts = second.job_counts(&campaign.id).await.unwrap();
    assert_eq!(counts.sent, JOBS as u64);
    first.close().await;
    second.close().await;
}

/// How many times the queue table of `scratch` was vacuumed other than by autovacuum.
async fn queue_vacuums(scratch: &Scratch) -> i64 {
    let raw = scratch.raw().await;
    let vacuums = sqlx::query_scalar(
        "SELECT vacuum_count FROM pg_stat_user_tables \
         WHERE schemaname = $1 AND relname = 'outbox_queue'",
    )
    .bind(&scratch.name)
    .fetch_one(&raw)
    .await
    .unwrap();
    raw.close().await;
    vacuums
}

/// Claims and completes every due job, 20 at a time.
async fn drain(store: &PostgresStore) -> u64 {
    let mut done = 0;
    loop {
        let batch = store
            .claim("w", t(100), SignedDuration::from_hours(1), 20)
            .await
            .unwrap();
        if batch.is_empty() {
            return done;
        }
        let updates: Vec<_> = batch
            .iter()
            .map(|job| (job, JobUpdate::Sent { message_id: 1 }))
            .collect();
        assert!(
            store
                .update_jobs(&updates, t(101))
                .await
                .unwrap()
                .is_empty()
        );
        done += batch.len() as u64;
    }
}

#[tokio::test]
async fn completions_vacuum_the_queue_after_the_set_number_of_rows() {
    let Some(url) = server() else { return };
    for (after, vacuumed) in [(100, true), (0, false)] {
        let scratch = Scratch::new(&url);
        let store = scratch.store().await.with_queue_vacuum_after(after);
        // So that autovacuum holds no lock that would make the store's vacuum skip the table.
        scratch
            .exec("ALTER TABLE {s}.outbox_queue SET (autovacuum_enabled = false)")
            .await
            .unwrap();
        let campaign = running_campaign(&store, "spring").await;
        store
            .schedule(&campaign, &jobs_for(&campaign, 0..120))
            .await
            .unwrap();
        // 120 jobs claimed and sent leave 120 dead queue rows.
        assert_eq!(drain(&store).await, 120);
        let vacuums = queue_vacuums(&scratch).await;
        assert_eq!(
            vacuums >= 1,
            vacuumed,
            "after {after} rows: {vacuums} vacuums"
        );
        assert_eq!(store.job_counts(&campaign.id).await.unwrap().sent, 120);
        store.close().await;
    }
}

#[tokio::test]
async fn a_lease_taken_over_through_another_handle_is_lost() {
    let Some(url) = server() else { return };
    let scratch = Scratch::new(&url);
    let first = scratch.store().await;
    let campaign = running_campaign(&first, "spring").await;
    first
        .schedule(&campaign, &jobs_for(&campaign, 0..1))
        .await
        .unwrap();
    let second = scratch.store().await;
    let lease = SignedDuration::from_secs(30);
    let old = first.claim("w1", t(10), lease, 1).await.unwrap().remove(0);
    let new = second.claim("w2", t(60), lease, 1).await.unwrap().remove(0);
    assert_eq!(old.key, new.key);
    let sent = JobUpdate::Sent { message_id: 1 };
    let err = first
        .update_job(&old.key, old.claim_token, &sent, t(61))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::LeaseLost(_)), "{err:?}");
    second
        .update_job(&new.key, new.claim_token, &sent, t(61))
        .await
        .unwrap();
    let missing = IdempotencyKey::new("no-such-job");
    assert!(matches!(
        first.update_job(&missing, 1, &sent, t(62)).await,
        Err(Error::NotFound { .. })
    ));
    first.close().await;
    second.close().await;
}

#[tokio::test]
async fn ten_thousand_of_everything_in_one_batch_each() {
    const N: i64 = 10_000;
    let Some(url) = server() else { return };
    let scratch = Scratch::new(&url);
    let store = scratch.store().await;
    let contacts: Vec<Contact> = (0..N).map(contact).collect();
    store.upsert_contacts(&contacts).await.unwrap();
    let campaign = running_campaign(&store, "spring").await;
    assert_eq!(
        store
            .schedule(&campaign, &jobs_for(&campaign, 0..N))
            .await
            .unwrap(),
        N as u64
    );
    let events: Vec<Event> = (0..N)
        .map(|i| Event {
            id: EventId::new(format!("e{i}")),
            at: t(i),
            contact: ContactId::new(format!("c{i:05}")),
            campaign: Some(campaign.id.clone()),
            variant: None,
            step: None,
            kind: EventKind::Delivered,
        })
        .collect();
    assert_eq!(store.append_events(&events).await.unwrap(), N as u64);
    assert_eq!(store.append_events(&events).await.unwrap(), 0, "ids dedupe");
    assert_eq!(store.contacts().await.unwrap(), contacts);
    assert_eq!(
        store.job_counts(&campaign.id).await.unwrap().pending,
        N as u64
    );
    assert_eq!(
        store.campaign_events(&campaign.id).await.unwrap().len(),
        N as usize
    );
    let claimed = store
        .claim("w1", t(9), SignedDuration::from_mins(1), 100)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 100);
    assert!(
        claimed
            .windows(2)
            .all(|w| (w[0].due_at, &w[0].key) <= (w[1].due_at, &w[1].key)),
        "claims come earliest first"
    );
    store.close().await;
}

#[tokio::test]
async fn a_version_5_schema_upgrades_with_its_claimed_jobs() {
    let Some(url) = server() else { return };
    let scratch = Scratch::new(&url);
    let store = scratch.store().await;
    let campaign = running_campaign(&store, "spring").await;
    store
        .schedule(&campaign, &jobs_for(&campaign, 0..3))
        .await
        .unwrap();
    let lease = SignedDuration::from_secs(30);
    let mut old = store.claim("w1", t(10), lease, 1).await.unwrap().remove(0);
    store.close().await;
    // Back to the outbox indexes of version 5, as a database written by an earlier release.
    back_to_version_6(&scratch).await;
    scratch
        .exec_all(&[
            "DROP INDEX {s}.outbox_leased",
            "DROP INDEX {s}.outbox_by_contact",
            "CREATE INDEX outbox_claimed_lease ON {s}.outbox (lease_until) WHERE state = 'claimed'",
            "CREATE INDEX outbox_by_contact ON {s}.outbox (contact, state)",
            "CREATE INDEX outbox_by_message ON {s}.outbox (contact, message_id) \
             WHERE message_id IS NOT NULL",
            "DROP TABLE {s}.claim_epoch",
            "UPDATE {s}.outbox SET claim_token = 1 WHERE claim_token > 0",
            "DELETE FROM {s}.schema_migrations WHERE version > 5",
        ])
        .await;

    old.claim_token = 1;
    let store = scratch.store().await;
    assert_eq!(store.schema_version().await.unwrap(), 12);
    assert_eq!(
        scratch.indexes("outbox").await,
        ["outbox_by_campaign", "outbox_by_contact", "outbox_pkey"]
    );
    // The job claimed before the upgrade: its lease runs out and it is taken over.
    assert_eq!(store.next_due().await.unwrap(), Some(t(1)));
    let rest = store
        .claim("w2", t(20), SignedDuration::from_hours(1), 10)
        .await
        .unwrap();
    assert_eq!(rest.len(), 2, "the two pending jobs");
    let mut taken = store.claim("w3", t(60), lease, 10).await.unwrap();
    assert_eq!(taken.len(), 1, "only the lease that ran out");
    let new = taken.remove(0);
    assert_eq!(new.key, old.key);
    assert!(new.claim_token > old.claim_token);
    let sent = JobUpdate::Sent { message_id: 7 };
    assert!(matches!(
        store
            .update_job(&old.key, old.claim_token, &sent, t(61))
            .await,
        Err(Error::LeaseLost(_))
    ));
    store
        .update_job(&new.key, new.claim_token, &sent, t(61))
        .await
        .unwrap();
    let updates: Vec<(&mia_core::Job, JobUpdate)> = rest
        .iter()
        .map(|job| (job, JobUpdate::Sent { message_id: 8 }))
        .collect();
    assert!(store.update_jobs(&updates, t(62)).await.unwrap().is_empty());
    assert_eq!(
        store
            .job_by_message(&new.contact, 7)
            .await
            .unwrap()
            .map(|j| j.key),
        Some(new.key.clone())
    );
    assert_eq!(store.job_counts(&campaign.id).await.unwrap().sent, 3);
    assert_eq!(store.next_due().await.unwrap(), None);
    store.close().await;
}

/// A version-11 schema with an aborted campaign whose send in flight was left to its worker:
/// the migration to version 12 marks the campaign from its jobs, so the sweep closes that send
/// once its lease has run out, and not before; two sweeps at once close it once.
#[tokio::test]
async fn a_version_11_abort_left_in_flight_is_closed_after_the_upgrade() {
    let Some(url) = server() else { return };
    let scratch = Scratch::new(&url);
    let store = scratch.store().await;
    let mut campaign = running_campaign(&store, "spring").await;
    store
        .schedule(&campaign, &jobs_for(&campaign, 0..2))
        .await
        .unwrap();
    // Leases until t(40).
    let jobs = store
        .claim("w1", t(10), SignedDuration::from_secs(30), 2)
        .await
        .unwrap();
    store
        .record_attempt(
            &jobs[0].key,
            jobs[0].claim_token,
            &VariantId::new("A"),
            1.0,
            t(11),
        )
        .await
        .unwrap();
    campaign.transition(CampaignState::Aborted, t(12)).unwrap();
    store.update_campaign(&campaign).await.unwrap();
    assert_eq!(
        store
            .cancel_campaign_jobs(&campaign.id, t(12))
            .await
            .unwrap(),
        2
    );
    store.close().await;
    back_to_version_11(&scratch).await;

    let store = scratch.store().await;
    let other = scratch.store().await;
    assert_eq!(store.schema_version().await.unwrap(), 12);
    assert_eq!(store.close_abandoned_sends(t(39)).await.unwrap(), 0);
    assert!(
        store
            .job(&jobs[0].key)
            .await
            .unwrap()
            .unwrap()
            .send_in_flight()
    );
    let (a, b) = tokio::join!(
        store.close_abandoned_sends(t(40)),
        other.close_abandoned_sends(t(40))
    );
    assert_eq!(a.unwrap() + b.unwrap(), 1, "closed once");
    let closed = store.job(&jobs[0].key).await.unwrap().unwrap();
    assert_eq!(
        (closed.state, closed.outcome.as_deref(), closed.lease_until),
        (JobState::Cancelled, Some(mia_core::CAMPAIGN_ABORTED), None)
    );
    assert_eq!(store.close_abandoned_sends(t(41)).await.unwrap(), 0);
    store.close().await;
    other.close().await;
}

/// Turns a schema of the current version back into version 11, as the release before version
/// 12 left it: no `flights_until` on campaigns (its index goes with the column).
async fn back_to_version_11(scratch: &Scratch) {
    scratch
        .exec_all(&[
            "ALTER TABLE {s}.campaigns DROP COLUMN flights_until",
            "DELETE FROM {s}.schema_migrations WHERE version > 11",
        ])
        .await;
}

/// Turns a schema of the current version back into version 9, as the release before version
/// 10 left it: claimed jobs stay in the queue with their leases, under a partial index of their
/// own, and there is no lease table. (The claim function stays as it is: version 10 replaces
/// it whatever it was.)
async fn back_to_version_9(scratch: &Scratch) {
    back_to_version_11(scratch).await;
    scratch
        .exec_all(&[
            "ALTER TABLE {s}.outbox_queue ADD COLUMN lease_until BIGINT",
            "INSERT INTO {s}.outbox_queue (key, campaign, due_at, lease_until) \
             SELECT key, campaign, due_at, lease_until FROM {s}.outbox WHERE state = 'claimed'",
            "DROP TABLE {s}.outbox_leases",
            "DROP INDEX {s}.outbox_queue_due",
            "CREATE INDEX outbox_queue_due ON {s}.outbox_queue (due_at, key) \
             WHERE lease_until IS NULL",
            "CREATE INDEX outbox_queue_leased ON {s}.outbox_queue (lease_until) \
             WHERE lease_until IS NOT NULL",
            "DELETE FROM {s}.schema_migrations WHERE version > 9",
        ])
        .await;
}

/// Turns a schema of the current version back into version 8, as the release before version
/// 9 left it: no `erased_from` column, nor its trigger.
async fn back_to_version_8(scratch: &Scratch) {
    back_to_version_9(scratch).await;
    scratch
        .exec_all(&[
            "DROP TRIGGER outbox_erased_send_done ON {s}.outbox",
            "DROP FUNCTION {s}.outbox_erased_send_done",
            "ALTER TABLE {s}.outbox DROP COLUMN erased_from",
            "DELETE FROM {s}.schema_migrations WHERE version > 8",
        ])
        .await;
}

/// Turns a schema of the current version back into version 6, as the release before it left
/// it: no queue table or claim function, the queue's partial indexes on `outbox` itself, full
/// pages (and the events' primary key of version 8 stays, which version 6 code never relied
/// on).
async fn back_to_version_6(scratch: &Scratch) {
    back_to_version_8(scratch).await;
    scratch
        .exec_all(&[
            "DROP FUNCTION {s}.outbox_claim",
            "DROP TABLE {s}.outbox_queue",
            "DROP INDEX {s}.outbox_by_contact",
            "CREATE INDEX outbox_pending_due ON {s}.outbox (due_at, key) WHERE state = 'pending'",
            "CREATE INDEX outbox_leased ON {s}.outbox (lease_until) WHERE lease_until IS NOT NULL",
            "CREATE INDEX outbox_by_contact ON {s}.outbox (contact, message_id)",
            "ALTER TABLE {s}.outbox RESET (fillfactor)",
            "DELETE FROM {s}.schema_migrations WHERE version > 6",
        ])
        .await;
}

/// A version-6 database holding jobs in every state opens as version 7 and keeps working:
/// the open jobs (pending, retrying, claimed) are claimable as before, a claim made before the
/// upgrade is still fenced, held jobs and dead letters come back when released, and finished
/// jobs stay finished.
#[tokio::test]
async fn a_version_6_schema_upgrades_with_jobs_in_every_state() {
    let Some(url) = server() else { return };
    let scratch = Scratch::new(&url);
    let store = scratch.store().await;
    let campaign = running_campaign(&store, "spring").await;
    // c00000..c00007, due at t(0)..t(7).
    let jobs = jobs_for(&campaign, 0..8);
    store.schedule(&campaign, &jobs).await.unwrap();
    let mut skipped = jobs_for(&campaign, 8..9);
    skipped[0].skipped = Some("quiet_hours".into());
    store.enqueue(&campaign.id, &skipped, t(1)).await.unwrap();
    let autumn = running_campaign(&store, "autumn").await;
    store
        .schedule(&autumn, &jobs_for(&autumn, 9..10))
        .await
        .unwrap();
    assert_eq!(
        store.cancel_campaign_jobs(&autumn.id, t(2)).await.unwrap(),
        1
    );

    let lease = SignedDuration::from_secs(30);
    let claimed = store.claim("w1", t(10), lease, 5).await.unwrap();
    let [sent, held, dead, retry, old] = <[_; 5]>::try_from(claimed).unwrap();
    let update = |job: &mia_core::Job, update: JobUpdate| {
        let store = store.clone();
        let (key, token) = (job.key.clone(), job.claim_token);
        async move { store.update_job(&key, token, &update, t(11)).await.unwrap() }
    };
    update(&sent, JobUpdate::Sent { message_id: 7 }).await;
    let rule = "needs_review".to_owned();
    update(&held, JobUpdate::Held { rule }).await;
    let reason = "bad_request".to_owned();
    update(&dead, JobUpdate::DeadLetter { reason }).await;
    let reason = "flood_wait".to_owned();
    let due_at = t(100);
    update(
        &retry,
        JobUpdate::Retry {
            due_at,
            count_attempt: true,
            reason,
        },
    )
    .await;
    store.close().await;
    back_to_version_6(&scratch).await;

    let store = scratch.store().await;
    assert_eq!(store.schema_version().await.unwrap(), 12);
    assert_eq!(
        scratch.indexes("outbox").await,
        ["outbox_by_campaign", "outbox_by_contact", "outbox_pkey"]
    );
    let counts = store.job_counts(&campaign.id).await.unwrap();
    assert_eq!(
        (counts.pending, counts.claimed, counts.held, counts.sent),
        (4, 1, 1, 1)
    );
    assert_eq!((counts.skipped, counts.dead_letter), (1, 1));
    assert_eq!(store.job_counts(&autumn.id).await.unwrap().cancelled, 1);
    assert_eq!(store.next_due().await.unwrap(), Some(t(5)));

    // The pending jobs, earliest first; not the lease that still runs, nor the retry.
    let pending = store
        .claim("w2", t(20), SignedDuration::from_hours(1), 10)
        .await
        .unwrap();
    let keys: Vec<_> = pending.iter().map(|j| j.key.clone()).collect();
    let expected: Vec<_> = jobs[5..8].iter().map(|j| j.key.clone()).collect();
    assert_eq!(keys, expected);
    assert_eq!(
        store.next_due().await.unwrap(),
        Some(t(40)),
        "the old lease"
    );
    // The lease taken before the upgrade runs out and is taken over; its holder is fenced.
    let mut taken = store
        .claim("w3", t(50), SignedDuration::from_hours(1), 10)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1, "only the lease that ran out");
    let new = taken.remove(0);
    assert_eq!(new.key, old.key);
    assert!(new.claim_token > old.claim_token);
    let variant = VariantId::new("A");
    let err = store
        .record_attempt(&old.key, old.claim_token, &variant, 0.5, t(51))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::LeaseLost(_)), "{err:?}");
    // The held job and the dead letter come back when released; the retry when it is due.
    store.release_held(&held.key, true, t(60)).await.unwrap();
    let requeue = mia_core::DeadLetterAction::Requeue { due_at: t(60) };
    store
        .settle_dead_letter(&dead.key, requeue, t(60))
        .await
        .unwrap();
    let back = store
        .claim("w4", t(200), SignedDuration::from_hours(1), 10)
        .await
        .unwrap();
    let mut keys: Vec<_> = back.iter().map(|j| j.key.clone()).collect();
    keys.sort();
    let mut expected = vec![held.key.clone(), dead.key.clone(), retry.key.clone()];
    expected.sort();
    assert_eq!(keys, expected, "nothing finished came back");
    assert_eq!(back.last().unwrap().key, retry.key, "due last");

    let updates: Vec<(&mia_core::Job, JobUpdate)> = pending
        .iter()
        .chain(&back)
        .chain([&new])
        .zip(10..)
        .map(|(job, id)| (job, JobUpdate::Sent { message_id: id }))
        .collect();
    assert!(
        store
            .update_jobs(&updates, t(201))
            .await
            .unwrap()
            .is_empty()
    );
    let counts = store.job_counts(&campaign.id).await.unwrap();
    assert_eq!((counts.sent, counts.skipped, counts.total()), (8, 1, 9));
    assert_eq!(store.next_due().await.unwrap(), None);
    assert_eq!(
        store
            .job_by_message(&sent.contact, 7)
            .await
            .unwrap()
            .map(|j| j.key),
        Some(sent.key.clone())
    );
    assert_eq!(
        store.sends_since(&sent.contact, t(0)).await.unwrap(),
        [t(11)]
    );
    store.close().await;
}

/// Claims commit without waiting for the disk (see `postgres::outbox`), so a server crash can
/// lose one. Its worker must then never be able to write through it: the claim after the
/// crash, on a new connection, must not hand out the same token again.
#[tokio::test]
async fn a_claim_lost_in_a_crash_never_gets_its_token_back() {
    let Some(url) = server() else { return };
    let scratch = Scratch::new(&url);
    let before = scratch.store().await;
    let campaign = running_campaign(&before, "spring").await;
    before
        .schedule(&campaign, &jobs_for(&campaign, 0..1))
        .await
        .unwrap();
    let lease = SignedDuration::from_hours(1);
    let lost = before.claim("w1", t(10), lease, 1).await.unwrap().remove(0);
    before.close().await;
    // The crash: the claim's commit never reached the disk, and every connection ended.
    scratch
        .exec(
            "UPDATE {s}.outbox SET state = 'pending', claim_token = 0, lease_until = NULL, \
             worker = NULL",
        )
        .await
        .unwrap();
    scratch
        .exec_all(&[
            "INSERT INTO {s}.outbox_queue (key, campaign, due_at) \
             SELECT key, campaign, due_at FROM {s}.outbox",
            "DELETE FROM {s}.outbox_leases",
        ])
        .await;

    let after = scratch.store().await;
    let taken = after.claim("w2", t(11), lease, 1).await.unwrap().remove(0);
    assert_eq!(taken.key, lost.key);
    assert!(taken.claim_token > lost.claim_token);
    let variant = VariantId::new("A");
    let err = after
        .record_attempt(&lost.key, lost.claim_token, &variant, 0.5, t(12))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::LeaseLost(_)), "{err:?}");
    after
        .record_attempt(&taken.key, taken.claim_token, &variant, 0.5, t(12))
        .await
        .unwrap();
    after.close().await;
}

/// The lease rows of `scratch`'s store (see schema version 10), as (lease end, keys), in that
/// order.
async fn lease_rows(scratch: &Scratch) -> Vec<(i64, Vec<String>)> {
    let raw = scratch.raw().await;
    let rows = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT lease_until, keys::text[] FROM \"{}\".outbox_leases ORDER BY lease_until, keys",
        scratch.name
    )))
    .fetch_all(&raw)
    .await
    .unwrap();
    raw.close().await;
    rows
}

/// Lease rows go with their jobs: a worker's result for exactly the jobs of a lease row deletes
/// it, one for some of them does not; once the lease runs out, a claim takes over the jobs
/// still claimed under it and deletes the row, but not while the campaign is paused; a
/// completed campaign's row stays while a job of it is claimed; and the row of a campaign that
/// was aborted is deleted by the next claim after the lease.
#[tokio::test]
async fn lease_rows_go_with_their_jobs() {
    let Some(url) = server() else { return };
    let scratch = Scratch::new(&url);
    let store = scratch.store().await;
    let campaign = running_campaign(&store, "spring").await;
    store
        .schedule(&campaign, &jobs_for(&campaign, 0..6))
        .await
        .unwrap();
    let lease = SignedDuration::from_secs(30);
    let first = store.claim("w1", t(10), lease, 3).await.unwrap();
    let second = store.claim("w2", t(11), lease, 3).await.unwrap();
    let keys = |jobs: &[mia_core::Job]| -> Vec<String> {
        let mut keys: Vec<String> = jobs.iter().map(|j| j.key.to_string()).collect();
        keys.sort();
        keys
    };
    let micros = |at: Timestamp| at.as_microsecond();
    assert_eq!(
        lease_rows(&scratch).await,
        [
            (micros(t(40)), keys(&first)),
            (micros(t(41)), keys(&second))
        ]
    );

    let sent = |job| (job, JobUpdate::Sent { message_id: 7 });
    let updates: Vec<_> = first.iter().map(sent).collect();
    assert!(store.update_jobs(&updates, t(12)).await.unwrap().is_empty());
    for job in &second[..2] {
        store
            .update_job(&job.key, job.claim_token, &sent(job).1, t(12))
            .await
            .unwrap();
    }
    assert_eq!(
        lease_rows(&scratch).await,
        [(micros(t(41)), keys(&second))],
        "the first batch's row went with its result; the second's waits for its last job"
    );
    assert_eq!(store.next_due().await.unwrap(), Some(t(41)));

    let mut paused = campaign.clone();
    paused.state = CampaignState::Paused;
    store.update_campaign(&paused).await.unwrap();
    assert!(
        store
            .claim("w3", t(60), lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        lease_rows(&scratch).await.len(),
        1,
        "a paused campaign's row waits"
    );
    store.update_campaign(&campaign).await.unwrap();
    let taken = store.claim("w3", t(60), lease, 10).await.unwrap();
    assert_eq!(
        keys(&taken),
        keys(&second[2..]),
        "only the job still claimed"
    );
    assert_eq!(
        lease_rows(&scratch).await,
        [(micros(t(90)), keys(&taken))],
        "the lapsed row is gone, the new lease has its own"
    );
    let late = &second[2];
    assert!(matches!(
        store
            .update_job(&late.key, late.claim_token, &sent(late).1, t(61))
            .await,
        Err(Error::LeaseLost(_))
    ));

    // A completed campaign's lapsed row stays while its job is claimed: the campaign may run
    // again (a dead letter requeued), and the job must be taken over then.
    let mut completed = campaign.clone();
    completed.state = CampaignState::Completed;
    store.update_campaign(&completed).await.unwrap();
    assert!(
        store
            .claim("w4", t(100), lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(lease_rows(&scratch).await, [(micros(t(90)), keys(&taken))]);
    store.update_campaign(&campaign).await.unwrap();
    let again = store.claim("w4", t(100), lease, 10).await.unwrap();
    assert_eq!(keys(&again), keys(&taken));
    assert_eq!(lease_rows(&scratch).await, [(micros(t(130)), keys(&again))]);

    // An aborted campaign's lapsed row goes with the next claim after its lease.
    assert_eq!(
        store
            .cancel_campaign_jobs(&campaign.id, t(101))
            .await
            .unwrap(),
        1
    );
    let mut aborted = campaign.clone();
    aborted.state = CampaignState::Aborted;
    store.update_campaign(&aborted).await.unwrap();
    assert_eq!(lease_rows(&scratch).await.len(), 1);
    assert_eq!(store.next_due().await.unwrap(), None);
    assert!(
        store
            .claim("w5", t(200), lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(lease_rows(&scratch).await.is_empty());
    store.close().await;
}

/// Jobs of `campaign` among `jobs`.
fn of_campaign<'a>(jobs: &'a [mia_core::Job], campaign: &Campaign) -> Vec<&'a mia_core::Job> {
    jobs.iter().filter(|j| j.campaign == campaign.id).collect()
}

/// `(lease end, sorted keys)` of `jobs`, as [`lease_rows`] gives a lease row.
fn lease_row(jobs: &[&mia_core::Job]) -> (i64, Vec<String>) {
    let mut keys: Vec<String> = jobs.iter().map(|j| j.key.to_string()).collect();
    keys.sort();
    let until = jobs[0].lease_until.unwrap().as_microsecond();
    (until, keys)
}

/// Results of `jobs`, all sent.
fn all_sent<'a>(jobs: &[&'a mia_core::Job]) -> Vec<(&'a mia_core::Job, JobUpdate)> {
    jobs.iter()
        .map(|&job| (job, JobUpdate::Sent { message_id: 7 }))
        .collect()
}

/// A claim that takes jobs of two campaigns writes a lease row for each: the result of one
/// campaign's jobs deletes that campaign's row and leaves the other's, and one result naming
/// the jobs of both deletes both rows.
#[tokio::test]
async fn a_claim_across_campaigns_writes_a_lease_row_for_each() {
    let Some(url) = server() else { return };
    let scratch = Scratch::new(&url);
    let store = scratch.store().await;
    let spring = running_campaign(&store, "spring").await;
    let autumn = running_campaign(&store, "autumn").await;
    for campaign in [&spring, &autumn] {
        store
            .schedule(campaign, &jobs_for(campaign, 0..6))
            .await
            .unwrap();
    }
    let lease = SignedDuration::from_secs(30);
    // Due at t(0), t(1), t(2) in each campaign: three of each, in one claim.
    let first = store.claim("w1", t(10), lease, 6).await.unwrap();
    let (spring_jobs, autumn_jobs) = (of_campaign(&first, &spring), of_campaign(&first, &autumn));
    assert_eq!((spring_jobs.len(), autumn_jobs.len()), (3, 3));
    let mut rows = vec![lease_row(&spring_jobs), lease_row(&autumn_jobs)];
    rows.sort();
    assert_eq!(lease_rows(&scratch).await, rows);

    let updates = all_sent(&spring_jobs);
    assert!(store.update_jobs(&updates, t(11)).await.unwrap().is_empty());
    assert_eq!(
        lease_rows(&scratch).await,
        [lease_row(&autumn_jobs)],
        "spring's result deleted spring's row only"
    );
    let updates = all_sent(&autumn_jobs);
    assert!(store.update_jobs(&updates, t(11)).await.unwrap().is_empty());
    assert!(lease_rows(&scratch).await.is_empty());

    let second = store.claim("w1", t(12), lease, 6).await.unwrap();
    assert_eq!(of_campaign(&second, &spring).len(), 3);
    assert_eq!(lease_rows(&scratch).await.len(), 2);
    let mixed: Vec<_> = second.iter().collect();
    let updates = all_sent(&mixed);
    assert!(store.update_jobs(&updates, t(13)).await.unwrap().is_empty());
    assert!(
        lease_rows(&scratch).await.is_empty(),
        "one result for both campaigns deleted both rows"
    );
    for campaign in [&spring, &autumn] {
        assert_eq!(store.job_counts(&campaign.id).await.unwrap().sent, 6);
    }
    store.close().await;
}

/// A claim and a result of more jobs than one statement of results holds (5,000): every job
/// is claimed once and finished once. The result runs in several statements, none of which
/// finishes all of the lease row's jobs, so the row is left to the first claim after the lease,
/// which deletes it and takes nothing; meanwhile it makes nothing look due.
#[tokio::test]
async fn a_batch_larger_than_a_statement_is_claimed_and_finished_whole() {
    const N: i64 = 6_000;
    let Some(url) = server() else { return };
    let scratch = Scratch::new(&url);
    let store = scratch.store().await;
    let campaign = running_campaign(&store, "spring").await;
    store
        .schedule(&campaign, &jobs_for(&campaign, 0..N))
        .await
        .unwrap();
    let lease = SignedDuration::from_secs(30);
    let claimed = store.claim("w1", t(10), lease, 7_000).await.unwrap();
    assert_eq!(claimed.len(), N as usize);
    let keys: HashSet<_> = claimed.iter().map(|j| &j.key).collect();
    assert_eq!(keys.len(), N as usize, "no job twice");
    assert!(
        store
            .claim("w2", t(10), lease, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let all: Vec<_> = claimed.iter().collect();
    let updates = all_sent(&all);
    assert!(store.update_jobs(&updates, t(11)).await.unwrap().is_empty());
    assert_eq!(store.job_counts(&campaign.id).await.unwrap().sent, N as u64);
    // Not a promise, a known cost (see the README): the row outlives its jobs until the lease.
    assert_eq!(lease_rows(&scratch).await, [lease_row(&all)]);
    assert_eq!(store.next_due().await.unwrap(), None);
    assert!(
        store
            .claim("w2", t(100), lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(lease_rows(&scratch).await.is_empty());
    store.close().await;
}

/// Four workers on two pools take over the jobs of forty lapsed lease rows at once, each asking
/// for fewer jobs than a row holds: every job is taken over exactly once, the old holder is
/// fenced, and no lease row is left at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_taking_over_lapsed_leases_together_take_each_job_once() {
    const JOBS: i64 = 400;
    let Some(url) = server() else { return };
    let scratch = Scratch::new(&url);
    let first = scratch.store().await;
    let campaign = running_campaign(&first, "spring").await;
    first
        .schedule(&campaign, &jobs_for(&campaign, 0..JOBS))
        .await
        .unwrap();
    let lease = SignedDuration::from_secs(30);
    let mut crashed = Vec::new();
    for _ in 0..JOBS / 10 {
        crashed.extend(first.claim("w0", t(10), lease, 10).await.unwrap());
    }
    assert_eq!(crashed.len(), JOBS as usize);
    assert_eq!(lease_rows(&scratch).await.len(), (JOBS / 10) as usize);
    let second = scratch.store().await;
    let (seen, _) = four_workers(&first, &second, t(100), 7, false).await;
    assert_eq!(seen.len(), JOBS as usize, "every job was taken over");
    assert_eq!(
        second.job_counts(&campaign.id).await.unwrap().sent,
        JOBS as u64
    );
    let old = &crashed[0];
    let sent = JobUpdate::Sent { message_id: 1 };
    assert!(matches!(
        first
            .update_job(&old.key, old.claim_token, &sent, t(102))
            .await,
        Err(Error::LeaseLost(_))
    ));
    // The last claims found nothing left to take; any row they could not lock is gone with
    // the claim that held it.
    assert!(
        first
            .claim("w1", t(200), lease, 7)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(lease_rows(&scratch).await.is_empty());
    first.close().await;
    second.close().await;
}

/// A version-9 database, whose claimed jobs wait in the queue with their leases, opens as
/// version 10 with those leases in lease rows: the pending jobs are claimed as before, the
/// leases that still run are left alone, and one that runs out is taken over, its holder
/// fenced.
#[tokio::test]
async fn a_version_9_schema_upgrades_with_its_claimed_jobs() {
    let Some(url) = server() else { return };
    let scratch = Scratch::new(&url);
    let store = scratch.store().await;
    let campaign = running_campaign(&store, "spring").await;
    // c00000..c00003, due at t(0)..t(3).
    store
        .schedule(&campaign, &jobs_for(&campaign, 0..4))
        .await
        .unwrap();
    let old = store
        .claim("w1", t(10), SignedDuration::from_secs(30), 2)
        .await
        .unwrap();
    store.close().await;
    back_to_version_9(&scratch).await;
    assert_eq!(
        scratch.indexes("outbox_queue").await,
        [
            "outbox_queue_due",
            "outbox_queue_leased",
            "outbox_queue_pkey"
        ]
    );

    let store = scratch.store().await;
    assert_eq!(store.schema_version().await.unwrap(), 12);
    assert_eq!(
        scratch.indexes("outbox_queue").await,
        ["outbox_queue_due", "outbox_queue_pkey"]
    );
    let mut old_keys: Vec<String> = old.iter().map(|j| j.key.to_string()).collect();
    old_keys.sort();
    assert_eq!(
        lease_rows(&scratch).await,
        [(t(40).as_microsecond(), old_keys)]
    );
    assert_eq!(store.next_due().await.unwrap(), Some(t(2)));
    let rest = store
        .claim("w2", t(20), SignedDuration::from_hours(1), 10)
        .await
        .unwrap();
    assert_eq!(
        rest.len(),
        2,
        "the two pending jobs, not the leases that still run"
    );
    assert_eq!(store.next_due().await.unwrap(), Some(t(40)));
    let sent = JobUpdate::Sent { message_id: 7 };
    store
        .update_job(&old[0].key, old[0].claim_token, &sent, t(21))
        .await
        .unwrap();
    let mut taken = store
        .claim("w3", t(50), SignedDuration::from_hours(1), 10)
        .await
        .unwrap();
    assert_eq!(
        taken.len(),
        1,
        "only the lease that ran out, of the job not done"
    );
    let new = taken.remove(0);
    assert_eq!(new.key, old[1].key);
    assert!(new.claim_token > old[1].claim_token);
    assert!(matches!(
        store
            .update_job(&old[1].key, old[1].claim_token, &sent, t(51))
            .await,
        Err(Error::LeaseLost(_))
    ));
    store
        .update_job(&new.key, new.claim_token, &sent, t(51))
        .await
        .unwrap();
    let updates: Vec<_> = rest.iter().map(|job| (job, sent.clone())).collect();
    assert!(store.update_jobs(&updates, t(52)).await.unwrap().is_empty());
    assert_eq!(store.job_counts(&campaign.id).await.unwrap().sent, 4);
    assert_eq!(store.next_due().await.unwrap(), None);
    assert!(
        lease_rows(&scratch).await.is_empty(),
        "every lease row went with its jobs"
    );
    store.close().await;
}

/// A batch first goes in with plain INSERTs and only on a taken id again with `ON CONFLICT`:
/// a batch that repeats some stored ids (a retried write) stores exactly the new ones, keeps
/// the stored ones as they were, and leaves the transaction usable.
#[tokio::test]
async fn a_batch_with_some_stored_ids_adds_only_the_new_ones() {
    let Some(url) = server() else { return };
    let scratch = Scratch::new(&url);
    let store = scratch.store().await;
    let event = |id: &str, kind: EventKind| Event {
        id: EventId::new(id),
        at: t(1),
        contact: ContactId::new("c00001"),
        campaign: Some(CampaignId::new("spring")),
        variant: None,
        step: None,
        kind,
    };
    let first = [event("e1", EventKind::Sent), event("e2", EventKind::Sent)];
    assert_eq!(store.append_events(&first).await.unwrap(), 2);
    let retried = [
        event("e3", EventKind::Delivered),
        event("e2", EventKind::Delivered),
        event("e3", EventKind::Sent),
        event("e4", EventKind::Delivered),
    ];
    assert_eq!(store.append_events(&retried).await.unwrap(), 2);
    let stored = store
        .campaign_events(&CampaignId::new("spring"))
        .await
        .unwrap();
    let kinds: Vec<(&str, &EventKind)> = stored.iter().map(|e| (e.id.as_str(), &e.kind)).collect();
    assert_eq!(
        kinds,
        [
            ("e1", &EventKind::Sent),
            ("e2", &EventKind::Sent),
            ("e3", &EventKind::Delivered),
            ("e4", &EventKind::Delivered)
        ]
    );
    store.close().await;
}

/// A version-7 database, whose events were unique by id alone, opens as version 8 with its
/// events kept (and the primary key as the only index by contact), and then takes the same id
/// on another contact as another event.
#[tokio::test]
async fn a_version_7_schema_upgrades_to_events_unique_per_contact() {
    let Some(url) = server() else { return };
    let scratch = Scratch::new(&url);
    let store = scratch.store().await;
    let event = |contact: &str, at: i64| Event {
        id: EventId::new("e1"),
        at: t(at),
        contact: ContactId::new(contact),
        campaign: Some(CampaignId::new("spring")),
        variant: None,
        step: None,
        kind: EventKind::Sent,
    };
    assert_eq!(store.append_events(&[event("c1", 1)]).await.unwrap(), 1);
    store.close().await;
    back_to_version_8(&scratch).await;
    scratch
        .exec_all(&[
            "ALTER TABLE {s}.events DROP CONSTRAINT events_pkey",
            "ALTER TABLE {s}.events ADD PRIMARY KEY (id)",
            "CREATE INDEX events_by_contact ON {s}.events (contact, at, id)",
            "DELETE FROM {s}.schema_migrations WHERE version > 7",
        ])
        .await;

    let store = scratch.store().await;
    assert_eq!(store.schema_version().await.unwrap(), 12);
    assert_eq!(
        scratch.indexes("events").await,
        ["events_by_campaign", "events_pkey"]
    );
    let both = [event("c1", 2), event("c2", 3)];
    assert_eq!(store.append_events(&both).await.unwrap(), 1, "c2's only");
    let stored = store
        .campaign_events(&CampaignId::new("spring"))
        .await
        .unwrap();
    assert_eq!(stored, [event("c1", 1), event("c2", 3)]);
    store.close().await;
}
