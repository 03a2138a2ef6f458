//! `SqliteStore` against the store conformance suite, plus what only a durable store can get
//! wrong: reopening, damaged rows, several handles on one file, and large batches.
#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::path::Path;

use jiff::{SignedDuration, Timestamp};
use mia_core::{
    Campaign, CampaignId, CampaignSpec, CampaignState, CampaignStore, ConsentRecord, ConsentStore,
    Contact, ContactId, ContactStore, Error, Event, EventId, EventKind, EventStore, Evidence,
    IdempotencyKey, JobState, JobUpdate, NewJob, OutboxStore, Purpose, ReviewId, ReviewItem,
    ReviewState, ReviewStore, ReviewSubject, TelegramPeer, VariantId,
};
use mia_store::{Durability, SqliteOptions, SqliteStore};

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

/// A delivery to `contact` in campaign `spring`.
fn delivered(id: impl Into<String>, contact: impl Into<String>, at: i64) -> Event {
    Event {
        id: EventId::new(id),
        at: t(at),
        contact: ContactId::new(contact),
        campaign: Some(CampaignId::new("spring")),
        variant: None,
        step: None,
        kind: EventKind::Delivered,
    }
}

/// A campaign that has been inserted as a draft and is about to be scheduled as running.
async fn running_campaign(store: &SqliteStore, id: &str) -> Campaign {
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

/// A fresh file store at full durability (the folder goes when the `TempDir` drops).
async fn full_store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions::new().with_durability(Durability::Full);
    let store = SqliteStore::open_with(dir.path().join("mia.db"), options)
        .await
        .unwrap();
    (dir, store)
}

async fn raw_pool(path: &Path) -> sqlx::SqlitePool {
    sqlx::SqlitePool::connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(path))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_file_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    // The folder does not exist yet: `open` creates it.
    let store = SqliteStore::open(dir.path().join("nested/mia.db"))
        .await
        .unwrap();
    mia_core::testing::store_conformance(&store).await;
    mia_core::testing::pages_keep_their_limit(&store).await;
}

#[tokio::test]
async fn a_full_durability_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions::new().with_durability(Durability::Full);
    assert_eq!(options.durability(), Durability::Full);
    let store = SqliteStore::open_with(dir.path().join("mia.db"), options)
        .await
        .unwrap();
    mia_core::testing::store_conformance(&store).await;
}

/// Claims and job updates share one connection, each statement setting its own `synchronous`
/// level first; a statement after such a `PRAGMA` must still see that it changed nothing.
#[tokio::test]
async fn a_lost_update_right_after_a_good_one_is_still_lost() {
    let (_dir, store) = full_store().await;
    let campaign = running_campaign(&store, "spring").await;
    store
        .schedule(&campaign, &jobs_for(&campaign, 0..2))
        .await
        .unwrap();
    let lease = SignedDuration::from_secs(30);
    let jobs = store.claim("w1", t(10), lease, 2).await.unwrap();
    let sent = JobUpdate::Sent { message_id: 1 };
    let variant = VariantId::new("A");
    store
        .record_attempt(&jobs[0].key, jobs[0].claim_token, &variant, 0.5, t(11))
        .await
        .unwrap();
    let err = store
        .record_attempt(&jobs[1].key, jobs[1].claim_token + 1, &variant, 0.5, t(11))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::LeaseLost(_)), "{err:?}");
    store
        .update_job(&jobs[0].key, jobs[0].claim_token, &sent, t(12))
        .await
        .unwrap();
    let err = store
        .update_job(&jobs[1].key, jobs[1].claim_token + 1, &sent, t(12))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::LeaseLost(_)), "{err:?}");
    // The second job is still held by its claim, which can finish it.
    let retry = JobUpdate::Retry {
        due_at: t(100),
        count_attempt: true,
        reason: "flood_wait".into(),
    };
    store
        .update_job(&jobs[1].key, jobs[1].claim_token, &retry, t(13))
        .await
        .unwrap();
    let job = store.job(&jobs[1].key).await.unwrap().unwrap();
    assert_eq!((job.state, job.attempts), (JobState::Pending, 1));
    let job = store.job(&jobs[0].key).await.unwrap().unwrap();
    assert_eq!((job.state, job.message_id), (JobState::Sent, Some(1)));
}

/// A file written before the outbox and event indexes changed (schema version 4) is migrated on
/// open (versions 5 to 10), and its jobs are claimed, found by message and by contact, and its
/// events kept, deduplicated and read by contact and by campaign, as before.
#[tokio::test]
async fn a_version_4_outbox_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mia.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let campaign = running_campaign(&store, "spring").await;
    store
        .schedule(&campaign, &jobs_for(&campaign, 0..3))
        .await
        .unwrap();
    let lease = SignedDuration::from_secs(30);
    let first = store.claim("w1", t(10), lease, 1).await.unwrap().remove(0);
    store
        .update_job(
            &first.key,
            first.claim_token,
            &JobUpdate::Sent { message_id: 7 },
            t(11),
        )
        .await
        .unwrap();
    let event = |id: &str, at: i64| Event {
        id: EventId::new(id),
        at: t(at),
        contact: first.contact.clone(),
        campaign: Some(campaign.id.clone()),
        variant: None,
        step: None,
        kind: EventKind::Delivered,
    };
    // Stored before: versions 6 and 7 rebuild the table with them. The derived id goes to
    // bytes; the one with a NUL after the same digits stays text (SQLite's `length` and
    // `unhex` stop at the NUL).
    let derived = EventId::derived("job", "sent").to_string();
    let with_nul = format!("{derived}\0x");
    let before = [event("z", 0), event(&derived, 0), event(&with_nul, 0)];
    assert_eq!(store.append_events(&before).await.unwrap(), 3);
    store.close().await;
    // Back to the indexes (and the events table) of version 4.
    let raw = raw_pool(&path).await;
    sqlx::raw_sql(
        "DROP INDEX campaigns_flights; ALTER TABLE campaigns DROP COLUMN flights_until; \
         DROP TRIGGER outbox_erased_send_done; ALTER TABLE outbox DROP COLUMN erased_from; \
         DROP INDEX outbox_pending; DROP INDEX outbox_leases; DROP INDEX outbox_by_contact; \
         CREATE INDEX outbox_due ON outbox (state, due_at, key); \
         CREATE INDEX outbox_by_contact ON outbox (contact, state); \
         CREATE INDEX outbox_by_message ON outbox (contact, message_id); \
         CREATE TABLE events_v4 (id TEXT PRIMARY KEY NOT NULL, at INTEGER NOT NULL, \
           contact TEXT NOT NULL, campaign TEXT, variant TEXT, kind TEXT NOT NULL, \
           payload TEXT NOT NULL, step INTEGER CHECK (step >= 0)) STRICT; \
         INSERT INTO events_v4 SELECT CASE typeof(id) WHEN 'blob' THEN lower(hex(id)) \
           ELSE id END, at, contact, campaign, variant, kind, payload, step FROM events; \
         DROP TABLE events; \
         ALTER TABLE events_v4 RENAME TO events; \
         CREATE INDEX events_by_campaign ON events (campaign, at, id); \
         CREATE INDEX events_by_contact ON events (contact, at, id); \
         PRAGMA user_version = 4;",
    )
    .execute(&raw)
    .await
    .unwrap();
    raw.close().await;

    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), 10);
    let found = store
        .job_by_message(&first.contact, 7)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.key, first.key);
    let rest = store.claim("w1", t(20), lease, 10).await.unwrap();
    assert_eq!(rest.len(), 2);
    assert!(rest.iter().all(|job| job.key != first.key));
    let sends = store.sends_since(&first.contact, t(0)).await.unwrap();
    assert_eq!(sends, vec![t(11)]);
    // Appended out of order: read back by time, then id; the ones from before are still
    // repeats.
    let events = [
        event("b", 2),
        event("c", 1),
        event("a", 2),
        event("z", 3),
        event(&derived, 4),
        event(&with_nul, 5),
    ];
    assert_eq!(store.append_events(&events).await.unwrap(), 3);
    let ids = |events: Vec<Event>| -> Vec<String> {
        events.into_iter().map(|e| e.id.to_string()).collect()
    };
    let by_contact = store.contact_events(&first.contact).await.unwrap();
    assert_eq!(ids(by_contact), [&derived, &with_nul, "z", "c", "a", "b"]);
    let by_campaign = store.campaign_events(&campaign.id).await.unwrap();
    assert_eq!(ids(by_campaign), [&derived, &with_nul, "z", "c", "a", "b"]);
    store.close().await;
    let raw = raw_pool(&path).await;
    let kinds: Vec<(String, i64)> =
        sqlx::query_as("SELECT typeof(id), COUNT(*) FROM events GROUP BY 1 ORDER BY 1")
            .fetch_all(&raw)
            .await
            .unwrap();
    assert_eq!(
        kinds,
        [("blob".to_owned(), 1), ("text".to_owned(), 5)],
        "the derived id, and only it, is migrated to its bytes"
    );
    let columns: String = sqlx::query_scalar(
        "SELECT group_concat(name, ',') FROM pragma_index_info('events_by_campaign')",
    )
    .fetch_one(&raw)
    .await
    .unwrap();
    assert_eq!(columns, "campaign,at");
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' ORDER BY name",
    )
    .fetch_all(&raw)
    .await
    .unwrap();
    assert_eq!(indexes, ["events_by_campaign", "events_key"]);
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'outbox' ORDER BY name",
    )
    .fetch_all(&raw)
    .await
    .unwrap();
    assert_eq!(
        indexes,
        [
            "outbox_by_campaign",
            "outbox_by_contact",
            "outbox_leases",
            "outbox_pending",
            "sqlite_autoindex_outbox_1"
        ],
        "version 9 has no index by message"
    );
    // A job is found by message through the contact's index, not by reading every job (the
    // store's lookup, with its parameters bound).
    let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(
        "EXPLAIN QUERY PLAN \
         SELECT * FROM outbox WHERE contact = ? AND message_id = ? ORDER BY key LIMIT 1",
    )
    .bind(first.contact.as_str())
    .bind(7_i64)
    .fetch_all(&raw)
    .await
    .unwrap();
    let plan: Vec<String> = plan.into_iter().map(|(_, _, _, detail)| detail).collect();
    assert!(
        plan.iter()
            .any(|step| step.contains("USING INDEX outbox_by_contact")),
        "{plan:?}"
    );
    raw.close().await;
}

/// A file written before version 10 with an aborted campaign whose send in flight was left to
/// its worker: the migration marks the campaign from its jobs, so the sweep closes that send
/// once its lease has run out, and not before.
#[tokio::test]
async fn a_version_9_abort_left_in_flight_is_closed_after_the_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mia.db");
    let store = SqliteStore::open(&path).await.unwrap();
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
    let raw = raw_pool(&path).await;
    sqlx::raw_sql(
        "DROP INDEX campaigns_flights; ALTER TABLE campaigns DROP COLUMN flights_until; \
         PRAGMA user_version = 9;",
    )
    .execute(&raw)
    .await
    .unwrap();
    raw.close().await;

    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), 10);
    assert_eq!(store.close_abandoned_sends(t(39)).await.unwrap(), 0);
    assert!(
        store
            .job(&jobs[0].key)
            .await
            .unwrap()
            .unwrap()
            .send_in_flight()
    );
    assert_eq!(store.close_abandoned_sends(t(40)).await.unwrap(), 1);
    let closed = store.job(&jobs[0].key).await.unwrap().unwrap();
    assert_eq!(
        (closed.state, closed.outcome.as_deref(), closed.lease_until),
        (JobState::Cancelled, Some(mia_core::CAMPAIGN_ABORTED), None)
    );
    assert_eq!(store.close_abandoned_sends(t(41)).await.unwrap(), 0);
}

#[tokio::test]
async fn an_in_memory_store_conforms() {
    let store = SqliteStore::in_memory().await.unwrap();
    assert_eq!(store.path(), None);
    mia_core::testing::store_conformance(&store).await;
}

#[tokio::test]
async fn reopening_a_file_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mia.db");
    let store = SqliteStore::open(&path).await.unwrap();
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

    let raw = raw_pool(&path).await;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&raw)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let edit = sqlx::query("UPDATE consents SET status = 'granted'")
        .execute(&raw)
        .await;
    assert!(edit.is_err(), "the consent ledger refuses edits");
    raw.close().await;

    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.path(), Some(path.as_path()));
    assert!(format!("{store:?}").contains("mia.db"));
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
    assert_eq!(reopened.state, CampaignState::Running);
    assert_eq!(store.jobs(&campaign.id).await.unwrap(), jobs);
    let states: HashSet<JobState> = jobs.iter().map(|j| j.state).collect();
    assert!(states.contains(&JobState::Sent) && states.contains(&JobState::Claimed));
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
}

#[tokio::test]
async fn a_corrupt_row_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mia.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store
        .upsert_contacts(&[contact(1), contact(2)])
        .await
        .unwrap();
    let campaign = running_campaign(&store, "spring").await;
    store
        .schedule(&campaign, &jobs_for(&campaign, 1..=2))
        .await
        .unwrap();

    let raw = raw_pool(&path).await;
    sqlx::query("UPDATE contacts SET attributes = '{not json' WHERE id = 'c00001'")
        .execute(&raw)
        .await
        .unwrap();
    sqlx::query("UPDATE outbox SET state = 'exploded' WHERE contact = 'c00002'")
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;

    let err = store
        .contact(&ContactId::new("c00001"))
        .await
        .expect_err("garbage JSON must not decode");
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
    let err = store.jobs(&campaign.id).await.unwrap_err();
    assert!(err.to_string().contains("exploded"), "{err}");
    assert!(store.job_counts(&campaign.id).await.is_err());
    let err = store.job_groups(&campaign.id).await.unwrap_err();
    assert!(err.to_string().contains("exploded"), "{err}");
}

#[tokio::test]
async fn a_database_from_a_newer_build_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mia.db");
    SqliteStore::open(&path).await.unwrap().close().await;
    let raw = raw_pool(&path).await;
    sqlx::query("PRAGMA user_version = 999")
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;
    let err = SqliteStore::open(&path).await.unwrap_err();
    assert!(err.to_string().contains("999"), "{err}");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn a_peer_belongs_to_one_contact() {
    let store = SqliteStore::in_memory().await.unwrap();
    store.upsert_contacts(&[contact(1)]).await.unwrap();

    // A large batch whose last contact takes c00001's chat: the error names both, and none of
    // the batch is written.
    let mut batch: Vec<Contact> = (100..300).map(contact).collect();
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

    // Two new contacts in one statement sharing a chat.
    let mut pair = vec![contact(5), contact(6)];
    pair[1].peer = pair[0].peer;
    let message = store.upsert_contacts(&pair).await.unwrap_err().to_string();
    assert!(
        message.contains("c00005") && message.contains("c00006"),
        "{message}"
    );

    // Moving a contact to a free chat is an update, not a conflict.
    let mut moved = contact(1);
    moved.peer = TelegramPeer::group(-42);
    store.upsert_contacts(&[moved.clone()]).await.unwrap();
    assert_eq!(
        store.contact_by_peer(&moved.peer).await.unwrap(),
        Some(moved)
    );
}

/// Claims of 7 (one statement each) and of 20 (one transaction each, packed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handles_on_one_file_never_claim_the_same_job() {
    for limit in [7, 20] {
        two_handles_claim_apart(limit).await;
    }
}

/// Two handles on one file drain 300 jobs, claiming `limit` at a time: each job is claimed
/// once, by one of them.
async fn two_handles_claim_apart(limit: usize) {
    const JOBS: i64 = 300;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mia.db");
    let first = SqliteStore::open(&path).await.unwrap();
    let campaign = running_campaign(&first, "spring").await;
    first
        .schedule(&campaign, &jobs_for(&campaign, 0..JOBS))
        .await
        .unwrap();
    let second = SqliteStore::open(&path).await.unwrap();

    let worker = |store: SqliteStore, name: &'static str| {
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = store
                    .claim(name, t(100), SignedDuration::from_hours(1), limit)
                    .await
                    .unwrap();
                if batch.is_empty() {
                    return mine;
                }
                for job in batch {
                    assert_eq!(job.worker.as_deref(), Some(name));
                    store
                        .update_job(
                            &job.key,
                            job.claim_token,
                            &JobUpdate::Sent { message_id: 1 },
                            t(101),
                        )
                        .await
                        .unwrap();
                    mine.push(job.key);
                }
            }
        })
    };
    let a = worker(first.clone(), "w1");
    let b = worker(second.clone(), "w2");
    let (a, b) = (a.await.unwrap(), b.await.unwrap());

    let a_keys: HashSet<_> = a.iter().cloned().collect();
    let b_keys: HashSet<_> = b.iter().cloned().collect();
    assert_eq!(a_keys.len(), a.len(), "w1 never got a job twice");
    assert_eq!(b_keys.len(), b.len(), "w2 never got a job twice");
    assert!(a_keys.is_disjoint(&b_keys), "no job went to both workers");
    assert_eq!(a.len() + b.len(), JOBS as usize, "every job was claimed");
    let counts = second.job_counts(&campaign.id).await.unwrap();
    assert_eq!(counts.sent, JOBS as u64);
}

/// Workers of one handle finishing jobs one at a time share commits (group commit): each job
/// is still written once, with its own attempt, message id and time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_sharing_commits_write_every_job_once_and_as_their_own() {
    const JOBS: i64 = 400;
    const WORKERS: i64 = 4;
    let (_dir, store) = full_store().await;
    let campaign = running_campaign(&store, "spring").await;
    store
        .schedule(&campaign, &jobs_for(&campaign, 0..JOBS))
        .await
        .unwrap();

    let worker = |w: i64| {
        let store = store.clone();
        tokio::spawn(async move {
            let name = format!("w{w}");
            let variant = VariantId::new(format!("V{w}"));
            let mut mine = Vec::new();
            loop {
                let batch = store
                    .claim(&name, t(100), SignedDuration::from_hours(1), 1)
                    .await
                    .unwrap();
                let Some(job) = batch.into_iter().next() else {
                    return mine;
                };
                store
                    .record_attempt(&job.key, job.claim_token, &variant, 0.25, t(101))
                    .await
                    .unwrap();
                let sent = JobUpdate::Sent {
                    message_id: 1000 * w + mine.len() as i64,
                };
                store
                    .update_job(&job.key, job.claim_token, &sent, t(102 + w))
                    .await
                    .unwrap();
                mine.push(job.key);
            }
        })
    };
    let tasks: Vec<_> = (0..WORKERS).map(worker).collect();
    let mut seen = HashSet::new();
    for (w, task) in (0..WORKERS).zip(tasks) {
        for (i, key) in task.await.unwrap().into_iter().enumerate() {
            assert!(seen.insert(key.clone()), "{key} was done twice");
            let job = store.job(&key).await.unwrap().unwrap();
            assert_eq!(job.state, JobState::Sent);
            assert_eq!(job.worker, Some(format!("w{w}")));
            assert_eq!(job.variant, Some(VariantId::new(format!("V{w}"))));
            assert_eq!(job.message_id, Some(1000 * w + i as i64));
            assert_eq!(job.updated_at, t(102 + w));
            assert_eq!(job.outcome, None);
        }
    }
    assert_eq!(seen.len(), JOBS as usize, "every job was done");
}

#[tokio::test]
async fn a_lease_taken_over_through_another_handle_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mia.db");
    let first = SqliteStore::open(&path).await.unwrap();
    let campaign = running_campaign(&first, "spring").await;
    first
        .schedule(&campaign, &jobs_for(&campaign, 0..1))
        .await
        .unwrap();
    let second = SqliteStore::open(&path).await.unwrap();
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
}

#[tokio::test]
async fn ten_thousand_of_everything_in_one_batch_each() {
    const N: i64 = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("mia.db")).await.unwrap();
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
    assert_eq!(store.contacts().await.unwrap().len(), N as usize);
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
}

/// Event ids of 32 lowercase hex digits (the ids mia derives) are stored as their 16 bytes;
/// every id reads back as it was written, repeats are skipped in either form, and events of one
/// time come back in the order of their ids' text, as with ids stored as text.
#[tokio::test]
async fn derived_event_ids_are_stored_as_bytes_and_read_back_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mia.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let derived = EventId::derived("job", "sent").to_string();
    assert_eq!(derived.len(), 32);
    let ids = [
        derived.clone(),
        derived.to_uppercase(),
        "g".repeat(32),
        format!("{}0", &derived[..31]),
        derived[..30].to_owned(),
        "e1".to_owned(),
    ];
    let events: Vec<Event> = ids.iter().map(|id| delivered(id, "c00001", 5)).collect();
    assert_eq!(store.append_events(&events).await.unwrap(), 6);
    assert_eq!(store.append_events(&events).await.unwrap(), 0);
    let mut sorted = events.clone();
    sorted.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    assert_eq!(
        store
            .contact_events(&ContactId::new("c00001"))
            .await
            .unwrap(),
        sorted
    );
    assert_eq!(
        store
            .campaign_events(&CampaignId::new("spring"))
            .await
            .unwrap(),
        sorted
    );
    store.close().await;
    let raw = raw_pool(&path).await;
    let blobs: Vec<i64> =
        sqlx::query_scalar("SELECT length(id) FROM events WHERE typeof(id) = 'blob'")
            .fetch_all(&raw)
            .await
            .unwrap();
    // The derived id and the one that differs from it in its last digit.
    assert_eq!(blobs, [16, 16]);
    raw.close().await;
}

/// The WAL is copied back into the database file once it holds the configured number of
/// pages, and not before: with a small interval the database file grows as events come in and
/// the WAL stays small; with a large one everything waits in the WAL.
#[tokio::test]
async fn checkpoints_come_at_the_configured_number_of_pages() {
    assert_eq!(
        SqliteOptions::new().checkpoint_pages(),
        SqliteOptions::DEFAULT_CHECKPOINT_PAGES
    );
    assert_eq!(
        SqliteOptions::new()
            .with_checkpoint_pages(0)
            .checkpoint_pages(),
        1
    );
    let size = |path: &Path| std::fs::metadata(path).map_or(0, |m| m.len());
    let mut grown = Vec::new();
    for pages in [50, 1_000_000] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mia.db");
        let wal = dir.path().join("mia.db-wal");
        let options = SqliteOptions::new().with_checkpoint_pages(pages);
        assert_eq!(options.checkpoint_pages(), pages);
        let store = SqliteStore::open_with(&path, options).await.unwrap();
        let before = size(&path);
        for batch in 0..20 {
            let events: Vec<Event> = (0..500)
                .map(|i| {
                    let contact = format!("c{:05}", (i * 7_919 + batch) % 10_000);
                    delivered(format!("e{batch}-{i}"), contact, i)
                })
                .collect();
            assert_eq!(store.append_events(&events).await.unwrap(), 500);
        }
        // Read before closing: the last connection to close checkpoints the WAL whatever the
        // interval.
        grown.push((pages, size(&path) - before, size(&wal)));
        store.close().await;
    }
    let [(_, small_grew, small_wal), (_, large_grew, large_wal)] = grown[..] else {
        panic!("two stores: {grown:?}");
    };
    assert!(
        small_grew > 100 * 4096,
        "checkpoints every 50 pages: {grown:?}"
    );
    assert_eq!(
        large_grew, 0,
        "no checkpoint before 1,000,000 pages: {grown:?}"
    );
    assert!(
        large_wal > 100 * 4096,
        "every page waits in the WAL: {grown:?}"
    );
    // Kept at one and a half times the interval after a checkpoint, plus the frames of the
    // commits since.
    assert!(small_wal < large_wal / 2, "a small WAL: {grown:?}");
}

/// The network edge of the worker test below: takes every message and remembers the chats.
struct Takes(std::sync::Mutex<Vec<TelegramPeer>>);

#[async_trait::async_trait]
impl mia_core::Transport for Takes {
    fn name(&self) -> &str {
        "takes-everything"
    }
    async fn send(
        &self,
        message: &mia_core::OutboundMessage,
    ) -> mia_core::Result<mia_core::SendOutcome> {
        let mut sent = self.0.lock().unwrap();
        sent.push(message.peer);
        Ok(mia_core::SendOutcome::Sent {
            message_id: sent.len() as i64,
            duplicate: false,
        })
    }
}

/// A worker reads a batch's contacts in one call; one contact row that does not decode fails
/// that call, but only its own job: it goes to the dead letters, every other contact is sent
/// to, and the run goes on.
#[tokio::test]
async fn a_worker_sets_aside_the_job_of_a_corrupt_contact_and_sends_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mia.db");
    let store = std::sync::Arc::new(SqliteStore::open(&path).await.unwrap());
    let transport = std::sync::Arc::new(Takes(std::sync::Mutex::new(Vec::new())));
    let agent = mia_core::Agent::builder(mia_core::TemplateProvider::new(), transport.clone())
        .shared_store(store.clone())
        .permissive_policies()
        .build()
        .unwrap();
    let people: Vec<Contact> = (1..=5).map(contact).collect();
    let now = Timestamp::now();
    let grants: Vec<ConsentRecord> = people
        .iter()
        .map(|c| {
            let ev = Evidence::new("telegram_start", "test");
            ConsentRecord::grant(c.id.clone(), Purpose::marketing(), ev, "v1", now)
        })
        .collect();
    agent.import_contacts(&people).await.unwrap();
    agent.record_consent(&grants).await.unwrap();
    let campaign = agent
        .create_campaign(CampaignSpec::new("Spring", "tea", "20% off"))
        .await
        .unwrap();
    agent.schedule(&campaign.id, None).await.unwrap();
    agent.start(&campaign.id).await.unwrap();

    let raw = raw_pool(&path).await;
    sqlx::query("UPDATE contacts SET attributes = '{not json' WHERE id = 'c00003'")
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;

    let stats = agent.run_until_idle().await.unwrap();
    assert_eq!((stats.sent, stats.dead_lettered), (4, 1));
    let sent = transport.0.lock().unwrap().clone();
    assert_eq!(sent.len(), 4);
    assert!(
        !sent.contains(&people[2].peer),
        "nothing to the corrupt row"
    );
    let jobs = mia_core::SubjectStore::contact_jobs(store.as_ref(), &people[2].id)
        .await
        .unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].state, JobState::DeadLetter);
    let reason = jobs[0].outcome.as_deref().unwrap_or_default();
    assert!(
        reason.starts_with("error: ") && reason.contains("attributes"),
        "{reason}"
    );
}
