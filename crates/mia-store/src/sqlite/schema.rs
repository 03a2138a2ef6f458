//! The schema, as embedded migrations versioned by `PRAGMA user_version`.
//!
//! Migration `n` (1-based) moves a database from version `n - 1` to `n`. Migrations are only
//! ever appended: a released one never changes, so every file converges on the same schema.

use sqlx::SqlitePool;

use crate::error::StoreError;

/// Version 1: every aggregate of mia.
///
/// Columns that queries filter or sort on are real columns; nested values are JSON text.
/// Timestamps are INTEGER microseconds since the Unix epoch. `STRICT` makes SQLite refuse a
/// value of the wrong type instead of storing it.
const V1: &str = r#"
CREATE TABLE contacts (
    id          TEXT PRIMARY KEY NOT NULL,
    peer_kind   TEXT NOT NULL,
    peer_id     INTEGER NOT NULL,
    locale      TEXT,
    time_zone   TEXT NOT NULL,
    attributes  TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX contacts_by_peer ON contacts (peer_kind, peer_id);

CREATE TABLE consents (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    contact         TEXT NOT NULL,
    purpose         TEXT NOT NULL,
    status          TEXT NOT NULL,
    basis           TEXT NOT NULL,
    evidence        TEXT NOT NULL,
    notice_version  TEXT NOT NULL,
    recorded_at     INTEGER NOT NULL,
    expires_at      INTEGER
) STRICT;
CREATE INDEX consents_by_contact ON consents (contact, seq);
CREATE INDEX consents_by_purpose ON consents (purpose, seq);
-- The ledger is evidence: a withdrawal is a new record, never an edit.
CREATE TRIGGER consents_no_update BEFORE UPDATE ON consents
BEGIN SELECT RAISE(ABORT, 'the consent ledger is append-only'); END;
CREATE TRIGGER consents_no_delete BEFORE DELETE ON consents
BEGIN SELECT RAISE(ABORT, 'the consent ledger is append-only'); END;

CREATE TABLE campaigns (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL UNIQUE,
    spec          TEXT NOT NULL,
    variants      TEXT NOT NULL,
    state         TEXT NOT NULL,
    state_reason  TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE outbox (
    key          TEXT PRIMARY KEY NOT NULL,
    campaign     TEXT NOT NULL REFERENCES campaigns (id),
    contact      TEXT NOT NULL,
    purpose      TEXT NOT NULL,
    step         INTEGER NOT NULL,
    state        TEXT NOT NULL,
    due_at       INTEGER NOT NULL,
    attempts     INTEGER NOT NULL,
    claim_token  INTEGER NOT NULL,
    lease_until  INTEGER,
    worker       TEXT,
    variant      TEXT,
    propensity   REAL,
    message_id   INTEGER,
    outcome      TEXT,
    updated_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX outbox_due ON outbox (state, due_at, key);
CREATE INDEX outbox_by_campaign ON outbox (campaign, key);
CREATE INDEX outbox_by_contact ON outbox (contact, state);
CREATE INDEX outbox_by_message ON outbox (contact, message_id);

CREATE TABLE events (
    id        TEXT PRIMARY KEY NOT NULL,
    at        INTEGER NOT NULL,
    contact   TEXT NOT NULL,
    campaign  TEXT,
    variant   TEXT,
    kind      TEXT NOT NULL,
    payload   TEXT NOT NULL
) STRICT;
CREATE INDEX events_by_campaign ON events (campaign, at, id);
CREATE INDEX events_by_contact ON events (contact, at, id);

CREATE TABLE reviews (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    campaign     TEXT NOT NULL,
    subject      TEXT NOT NULL,
    text         TEXT NOT NULL,
    trace        TEXT NOT NULL,
    state        TEXT NOT NULL,
    decision     TEXT NOT NULL,
    reviewer     TEXT,
    note         TEXT,
    created_at   INTEGER NOT NULL,
    resolved_at  INTEGER
) STRICT;
CREATE INDEX reviews_by_state ON reviews (state, seq);

PRAGMA user_version = 1;
"#;

/// Version 2: the tamper-evident audit log, its checkpoints and subject key, data subject
/// requests, and erasure.
///
/// The audit tables are append-only like the consent ledger. Erasure must replace the contact
/// id in the contact's consent records, so the ledger's update trigger lets through the rows of
/// a contact listed in `erasure_gate`, which the erasing transaction fills and empties before
/// it commits: no committed state ever lists anyone.
const V2: &str = r#"
CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY NOT NULL,
    at         INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    subject    TEXT,
    detail     TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
) STRICT;
CREATE INDEX audit_by_subject ON audit_log (subject, seq) WHERE subject IS NOT NULL;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

CREATE TABLE audit_checkpoints (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    size       INTEGER NOT NULL,
    root       TEXT NOT NULL,
    at         INTEGER NOT NULL,
    key_id     TEXT NOT NULL,
    signature  TEXT NOT NULL
) STRICT;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;

CREATE TABLE audit_keys (
    name  TEXT PRIMARY KEY NOT NULL,
    key   TEXT NOT NULL
) STRICT;

CREATE TABLE subject_requests (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL UNIQUE,
    kind          TEXT NOT NULL,
    jurisdiction  TEXT NOT NULL,
    contact       TEXT,
    subject       TEXT NOT NULL,
    state         TEXT NOT NULL,
    received_at   INTEGER NOT NULL,
    due_at        INTEGER NOT NULL,
    completed_at  INTEGER,
    note          TEXT
) STRICT;
CREATE INDEX subject_requests_by_contact ON subject_requests (contact);

CREATE TABLE erasure_gate (contact TEXT PRIMARY KEY NOT NULL) STRICT;
DROP TRIGGER consents_no_update;
CREATE TRIGGER consents_no_update BEFORE UPDATE ON consents
WHEN NOT EXISTS (SELECT 1 FROM erasure_gate WHERE contact = OLD.contact)
BEGIN SELECT RAISE(ABORT, 'the consent ledger is append-only'); END;

PRAGMA user_version = 2;
"#;

/// Version 3: per-account daily send counters (`OutboxStore::take_daily`).
const V3: &str = r#"
CREATE TABLE daily_counters (
    key   TEXT NOT NULL,
    day   TEXT NOT NULL,
    used  INTEGER NOT NULL,
    PRIMARY KEY (key, day)
) STRICT;

PRAGMA user_version = 3;
"#;

/// Version 4: the journey step an event is about (`Event::step`), for per-step counts.
const V4: &str = r#"
ALTER TABLE events ADD COLUMN step INTEGER CHECK (step >= 0);

PRAGMA user_version = 4;
"#;

/// Version 5: outbox indexes that a job's state changes touch as little as possible.
///
/// Every index on `outbox` whose columns an UPDATE assigns is rewritten by it, and a job changes
/// state at least twice (claimed, then done), so each index entry that moves is a page write
/// (and, with `synchronous=FULL`, part of a flushed commit). The indexes of version 1 kept every
/// job, done or not, and all but one moved on every change. Now:
/// - `outbox_pending` holds pending jobs only, in claim order: a claim removes the job, a retry
///   puts it back;
/// - `outbox_leases` holds claimed jobs only, by lease expiry: a claim adds the job, its update
///   removes it, and a claim of expired leases reads them without visiting every claimed job;
/// - `outbox_by_contact` names the contact only, which never changes in a job's life (erasure
///   aside), so the contact's queries filter states on the few rows it finds;
/// - `outbox_by_message` holds only jobs with a message id: a send adds it once.
///
/// And `events_by_contact` names the contact only (SQLite appends the rowid), so a batch of
/// events adds each contact's new entries at the end of that contact's range, one page per
/// contact, instead of between older entries with the same time wherever their ids sort; a
/// contact's events are few, and reading them sorts them by time.
const V5: &str = r#"
DROP INDEX events_by_contact;
CREATE INDEX events_by_contact ON events (contact);
DROP INDEX outbox_due;
DROP INDEX outbox_by_contact;
DROP INDEX outbox_by_message;
CREATE INDEX outbox_pending ON outbox (due_at, key) WHERE state = 'pending';
CREATE INDEX outbox_leases ON outbox (lease_until) WHERE state = 'claimed';
CREATE INDEX outbox_by_contact ON outbox (contact);
CREATE INDEX outbox_by_message ON outbox (contact, message_id) WHERE message_id IS NOT NULL;

PRAGMA user_version = 5;
"#;

/// Version 6: events deduplicated per contact, and smaller event indexes.
///
/// Event ids are unique per contact (see `EventStore`), so the table is rebuilt without the
/// unique index of every id, which a batch of events wrote all over (the ids mia derives are 32
/// hex digits in no order), and one unique index on `(contact, id)` takes both its place and
/// that of `events_by_contact`: a batch of events writes one scattered index instead of two
/// (a third more events per second into a growing table, with events shaped like mia's).
/// `events_by_campaign` no longer carries the id either: a campaign's events are read in time
/// order, and the few with the same time are sorted by id as they are read. The rebuild copies
/// every event once, in the same transaction as the rest of the step.
const V6: &str = r#"
CREATE TABLE events_v6 (
    id        TEXT NOT NULL,
    at        INTEGER NOT NULL,
    contact   TEXT NOT NULL,
    campaign  TEXT,
    variant   TEXT,
    kind      TEXT NOT NULL,
    payload   TEXT NOT NULL,
    step      INTEGER CHECK (step >= 0)
) STRICT;
INSERT INTO events_v6 (id, at, contact, campaign, variant, kind, payload, step)
    SELECT id, at, contact, campaign, variant, kind, payload, step FROM events ORDER BY rowid;
DROP TABLE events;
ALTER TABLE events_v6 RENAME TO events;
CREATE UNIQUE INDEX events_key ON events (contact, id);
CREATE INDEX events_by_campaign ON events (campaign, at);

PRAGMA user_version = 6;
"#;

/// Version 7: event ids that are 32 lowercase hex digits (the ids mia derives) are stored as
/// their 16 bytes, any other id as its text.
///
/// The unique index on `(contact, id)` is written all over by a batch of events (mia's ids and
/// contacts come in no order), so every batch dirties pages in proportion to the index's size;
/// with the id in half the bytes, its entries take about two thirds of the room, and batches of
/// mia's events into a large table went in 7–27% faster (`cargo bench --bench events --features
/// full`). The form is canonical (an id in that form is always stored as bytes), so the index
/// still holds each id once per contact; reads turn the bytes back into the same digits. The
/// test is `lower(hex(unhex(id))) = id` rather than a pattern, because SQLite's `length` and
/// `unhex` stop at a NUL character and this comparison does not: an id with one stays text, as
/// the store's appends keep it. The rebuild copies every event once, in the same transaction as
/// the rest of the step.
///
/// A process of an older build that has the file open when this step runs keeps writing such
/// ids as text, and cannot read them as bytes: stop older processes before the first open with
/// this build.
const V7: &str = r#"
CREATE TABLE events_v7 (
    id        ANY NOT NULL,
    at        INTEGER NOT NULL,
    contact   TEXT NOT NULL,
    campaign  TEXT,
    variant   TEXT,
    kind      TEXT NOT NULL,
    payload   TEXT NOT NULL,
    step      INTEGER CHECK (step >= 0)
) STRICT;
INSERT INTO events_v7 (id, at, contact, campaign, variant, kind, payload, step)
    SELECT CASE WHEN length(id) = 32 AND lower(hex(unhex(id))) = id THEN unhex(id) ELSE id END,
        at, contact, campaign, variant, kind, payload, step
    FROM events ORDER BY rowid;
DROP TABLE events;
ALTER TABLE events_v7 RENAME TO events;
CREATE UNIQUE INDEX events_key ON events (contact, id);
CREATE INDEX events_by_campaign ON events (campaign, at);

PRAGMA user_version = 7;
"#;

/// Version 8: a send in flight when its contact is erased leaves nothing of the person behind.
///
/// An erasure leaves a job whose send is already with Telegram to its worker, which records
/// the send's events under the contact id it claimed the job with: the erased one. So the
/// erasure keeps that id on the job, in `erased_from`, and whatever then moves the job out of
/// `claimed` (its worker's result, a cancellation) moves the events of that contact and the
/// job's campaign to the job's contact (the replacement) in the same statement, and clears
/// the column. An event the replacement has already with one of those ids gives way, as in
/// the erasure. Every write that moves a job out of `claimed` sets `outcome`, and claims do
/// not, so claims never run the trigger. A batched result pays for testing it on each row:
/// about 3% more instructions for the results of a batched drain, and nothing for its claims
/// (`python3 benches/compare/erasure_trigger.py`, callgrind). (A later step that rebuilds
/// `events` drops the trigger first and creates it again after: SQLite checks a trigger's
/// tables on a rename.)
const V8: &str = r#"
ALTER TABLE outbox ADD COLUMN erased_from TEXT;
CREATE TRIGGER outbox_erased_send_done AFTER UPDATE OF outcome ON outbox
    WHEN OLD.erased_from IS NOT NULL AND NEW.state <> 'claimed'
        AND NEW.contact <> OLD.erased_from
BEGIN
    DELETE FROM events WHERE contact = NEW.contact AND id IN
        (SELECT id FROM events WHERE contact = OLD.erased_from AND campaign = NEW.campaign);
    UPDATE events SET contact = NEW.contact
        WHERE contact = OLD.erased_from AND campaign = NEW.campaign;
    UPDATE outbox SET erased_from = NULL WHERE key = NEW.key;
END;

PRAGMA user_version = 8;
"#;

/// Version 9: no index by message id; the contact's index finds a job by message.
///
/// `outbox_by_message` took an entry for every send, at the place of the job's contact: sends
/// come in claim order, which is the order of their keys (hashes), so each batched result wrote
/// its entries all over an index that grows with every job ever sent, one page per entry once
/// the index is larger than a batch, and every such page is a frame in the WAL and later a
/// page written by the checkpoint. Finding a job by its message (a reply or a click) is rare
/// next to sends, and a contact has few jobs: `outbox_by_contact` finds them, and the message
/// id is checked on each, as the Postgres store has done since its version 7.
const V9: &str = r#"
DROP INDEX IF EXISTS outbox_by_message;

PRAGMA user_version = 9;
"#;

/// Version 10: an aborted campaign keeps, in `flights_until`, the latest lease end of the
/// sends in flight its abort left to their workers, so that workers find the sends whose worker
/// never reported (`close_abandoned_sends`) by reading a few campaign rows, not the outbox. No
/// outbox index changes, so claims and results cost what they did. Campaigns aborted before
/// this version get the column from their jobs.
const V10: &str = r#"
ALTER TABLE campaigns ADD COLUMN flights_until INTEGER;
CREATE INDEX campaigns_flights ON campaigns (flights_until) WHERE flights_until IS NOT NULL;
UPDATE campaigns SET flights_until = (
    SELECT MAX(o.lease_until) FROM outbox o
    WHERE o.campaign = campaigns.id AND o.state = 'cancelled' AND o.outcome = 'send_in_flight')
WHERE state = 'aborted';

PRAGMA user_version = 10;
"#;

/// Every migration, oldest first; each one ends by setting `user_version` to its number.
const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6, V7, V8, V9, V10];

/// The schema version this build writes.
pub(crate) const fn latest_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Brings the database up to [`latest_version`], each step in its own `BEGIN IMMEDIATE`
/// transaction so concurrent openers wait for each other instead of racing.
pub(crate) async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
    let found = user_version(pool).await?;
    if found > latest_version() {
        return Err(StoreError::SchemaTooNew {
            found,
            known: latest_version(),
        });
    }
    for (index, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(found).unwrap_or(0))
    {
        let version = index as i64 + 1;
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        // Another process may have migrated while this one waited for the write lock.
        let current: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&mut *tx)
            .await?;
        if current >= version {
            continue;
        }
        sqlx::raw_sql(*sql)
            .execute(&mut *tx)
            .await
            .map_err(|source| StoreError::Migration { version, source })?;
        tx.commit()
            .await
            .map_err(|source| StoreError::Migration { version, source })?;
        tracing::info!(version, "mia-store: applied schema migration");
    }
    Ok(())
}

/// The schema version of the open database (0 for a new file).
pub(crate) async fn user_version(pool: &SqlitePool) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(pool)
        .await?)
}
