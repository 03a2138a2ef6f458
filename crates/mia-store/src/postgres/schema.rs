//! The schema, as embedded migrations versioned in a `schema_migrations` table.
//!
//! Migration `n` (1-based) moves a schema from version `n - 1` to `n`. Migrations are only ever
//! appended: a released one never changes, so every database converges on the same schema.
//! Table names are unqualified: every pooled connection's `search_path` is the store's schema.

use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};

use crate::error::StoreError;

/// Version 1: every aggregate of mia.
///
/// Columns that queries filter or sort on are real columns; nested values are JSONB.
/// Timestamps are BIGINT microseconds since the Unix epoch. Every text column uses the `C`
/// collation, so ids sort byte by byte as in SQLite and in Rust, whatever the database's
/// locale. States are checked against their names.
const V1: &str = r#"
CREATE TABLE contacts (
    id          TEXT COLLATE "C" PRIMARY KEY,
    peer_kind   TEXT COLLATE "C" NOT NULL,
    peer_id     BIGINT NOT NULL,
    locale      TEXT COLLATE "C",
    time_zone   TEXT COLLATE "C" NOT NULL,
    attributes  JSONB NOT NULL,
    created_at  BIGINT NOT NULL,
    CONSTRAINT contacts_by_peer UNIQUE (peer_kind, peer_id)
);

CREATE TABLE consents (
    seq             BIGSERIAL PRIMARY KEY,
    contact         TEXT COLLATE "C" NOT NULL,
    purpose         TEXT COLLATE "C" NOT NULL,
    status          TEXT COLLATE "C" NOT NULL,
    basis           TEXT COLLATE "C" NOT NULL,
    evidence        JSONB NOT NULL,
    notice_version  TEXT COLLATE "C" NOT NULL,
    recorded_at     BIGINT NOT NULL,
    expires_at      BIGINT
);
CREATE INDEX consents_by_contact ON consents (contact, seq);
CREATE INDEX consents_by_purpose ON consents (purpose, seq);
-- The ledger is evidence: a withdrawal is a new record, never an edit.
CREATE FUNCTION consents_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the consent ledger is append-only' USING ERRCODE = 'restrict_violation';
END
$$;
CREATE TRIGGER consents_no_update_or_delete BEFORE UPDATE OR DELETE ON consents
    FOR EACH ROW EXECUTE FUNCTION consents_append_only();
CREATE TRIGGER consents_no_truncate BEFORE TRUNCATE ON consents
    FOR EACH STATEMENT EXECUTE FUNCTION consents_append_only();

CREATE TABLE campaigns (
    seq           BIGSERIAL PRIMARY KEY,
    id            TEXT COLLATE "C" NOT NULL UNIQUE,
    spec          JSONB NOT NULL,
    variants      JSONB NOT NULL,
    state         TEXT COLLATE "C" NOT NULL CHECK (state IN ('draft', 'generating',
                  'in_review', 'approved', 'scheduled', 'running', 'paused', 'completed',
                  'aborted')),
    state_reason  TEXT COLLATE "C",
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE outbox (
    key          TEXT COLLATE "C" PRIMARY KEY,
    campaign     TEXT COLLATE "C" NOT NULL REFERENCES campaigns (id),
    contact      TEXT COLLATE "C" NOT NULL,
    purpose      TEXT COLLATE "C" NOT NULL,
    step         BIGINT NOT NULL CHECK (step >= 0),
    state        TEXT COLLATE "C" NOT NULL CHECK (state IN ('pending', 'claimed', 'held',
                 'sent', 'skipped', 'dead_letter', 'cancelled')),
    due_at       BIGINT NOT NULL,
    attempts     BIGINT NOT NULL CHECK (attempts >= 0),
    claim_token  BIGINT NOT NULL CHECK (claim_token >= 0),
    lease_until  BIGINT,
    worker       TEXT COLLATE "C",
    variant      TEXT COLLATE "C",
    propensity   DOUBLE PRECISION,
    message_id   BIGINT,
    outcome      TEXT COLLATE "C",
    updated_at   BIGINT NOT NULL
);
-- A claim walks the due pending jobs in order and the expired leases; both sets are small
-- next to the finished jobs, which these partial indexes leave out.
CREATE INDEX outbox_pending_due ON outbox (due_at, key) WHERE state = 'pending';
CREATE INDEX outbox_claimed_lease ON outbox (lease_until) WHERE state = 'claimed';
CREATE INDEX outbox_by_campaign ON outbox (campaign, key);
CREATE INDEX outbox_by_contact ON outbox (contact, state);
CREATE INDEX outbox_by_message ON outbox (contact, message_id) WHERE message_id IS NOT NULL;

CREATE TABLE events (
    id        TEXT COLLATE "C" PRIMARY KEY,
    at        BIGINT NOT NULL,
    contact   TEXT COLLATE "C" NOT NULL,
    campaign  TEXT COLLATE "C",
    variant   TEXT COLLATE "C",
    kind      TEXT COLLATE "C" NOT NULL,
    payload   JSONB NOT NULL
);
CREATE INDEX events_by_campaign ON events (campaign, at, id);
CREATE INDEX events_by_contact ON events (contact, at, id);

CREATE TABLE reviews (
    seq          BIGSERIAL PRIMARY KEY,
    id           TEXT COLLATE "C" NOT NULL UNIQUE,
    campaign     TEXT COLLATE "C" NOT NULL,
    subject      JSONB NOT NULL,
    text         TEXT COLLATE "C" NOT NULL,
    trace        JSONB NOT NULL,
    state        TEXT COLLATE "C" NOT NULL CHECK (state IN ('pending', 'approved', 'edited',
                 'rejected')),
    decision     JSONB NOT NULL,
    reviewer     TEXT COLLATE "C",
    note         TEXT COLLATE "C",
    created_at   BIGINT NOT NULL,
    resolved_at  BIGINT
);
CREATE INDEX reviews_pending ON reviews (seq) WHERE state = 'pending';
"#;

/// Version 2: the tamper-evident audit log, its checkpoints and subject key, data subject
/// requests, and erasure.
///
/// The audit tables are append-only like the consent ledger. Erasure must replace the contact
/// id in the contact's consent records, so the ledger's trigger lets an UPDATE through for the
/// rows of the contact named in the transaction-local setting `mia.erasing`, which only the
/// erasing transaction sets.
const V2: &str = r#"
CREATE TABLE audit_log (
    seq        BIGINT PRIMARY KEY CHECK (seq > 0),
    at         BIGINT NOT NULL,
    actor      TEXT COLLATE "C" NOT NULL,
    action     TEXT COLLATE "C" NOT NULL,
    subject    TEXT COLLATE "C",
    detail     TEXT COLLATE "C" NOT NULL,
    prev_hash  TEXT COLLATE "C" NOT NULL,
    hash       TEXT COLLATE "C" NOT NULL
);
CREATE INDEX audit_by_subject ON audit_log (subject, seq) WHERE subject IS NOT NULL;

CREATE TABLE audit_checkpoints (
    seq        BIGSERIAL PRIMARY KEY,
    size       BIGINT NOT NULL CHECK (size >= 0),
    root       TEXT COLLATE "C" NOT NULL,
    at         BIGINT NOT NULL,
    key_id     TEXT COLLATE "C" NOT NULL,
    signature  TEXT COLLATE "C" NOT NULL
);

CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only' USING ERRCODE = 'restrict_violation';
END
$$;
CREATE TRIGGER audit_log_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

CREATE TABLE audit_keys (
    name  TEXT COLLATE "C" PRIMARY KEY,
    key   TEXT COLLATE "C" NOT NULL
);

CREATE TABLE subject_requests (
    seq           BIGSERIAL PRIMARY KEY,
    id            TEXT COLLATE "C" NOT NULL UNIQUE,
    kind          TEXT COLLATE "C" NOT NULL CHECK (kind IN ('access', 'erasure', 'objection',
                  'rectification', 'restriction')),
    jurisdiction  TEXT COLLATE "C" NOT NULL,
    contact       TEXT COLLATE "C",
    subject       TEXT COLLATE "C" NOT NULL,
    state         TEXT COLLATE "C" NOT NULL CHECK (state IN ('received', 'in_progress',
                  'completed', 'rejected')),
    received_at   BIGINT NOT NULL,
    due_at        BIGINT NOT NULL,
    completed_at  BIGINT,
    note          TEXT COLLATE "C"
);
CREATE INDEX subject_requests_by_contact ON subject_requests (contact);

CREATE OR REPLACE FUNCTION consents_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF current_setting('mia.erasing', true) = OLD.contact THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'the consent ledger is append-only' USING ERRCODE = 'restrict_violation';
END
$$;
"#;

/// Version 3: per-account daily send counters (`OutboxStore::take_daily`).
const V3: &str = r#"
CREATE TABLE daily_counters (
    key   TEXT COLLATE "C" NOT NULL,
    day   TEXT COLLATE "C" NOT NULL,
    used  BIGINT NOT NULL,
    PRIMARY KEY (key, day)
);
"#;

/// Version 4: data subject requests may lift a restriction of processing
/// (`RequestKind::LiftRestriction`).
const V4: &str = r#"
ALTER TABLE subject_requests DROP CONSTRAINT subject_requests_kind_check;
ALTER TABLE subject_requests ADD CONSTRAINT subject_requests_kind_check CHECK (kind IN (
    'access', 'erasure', 'objection', 'rectification', 'restriction', 'lift_restriction'));
"#;

/// Version 5: the journey step an event is about (`Event::step`), for per-step counts.
const V5: &str = r#"
ALTER TABLE events ADD COLUMN step BIGINT CHECK (step >= 0);
"#;

/// Version 6: fewer and plan-proof outbox indexes, for queue throughput.
///
/// A claim and a completion change `state`, which the queue's partial indexes are defined on,
/// so neither can be a HOT update: every index of the outbox gets a new entry for every claim
/// and every completion, and that index maintenance is most of a drain's cost. The two
/// per-contact indexes become one on `(contact, message_id)`, which serves both the lookups by
/// contact (a contact has a handful of jobs) and by message.
///
/// The expired-lease index is defined on `lease_until` alone instead of `state = 'claimed'`
/// (a lease is set exactly while a job is claimed: every write that moves a job out of
/// `claimed` clears it). An index whose predicate is `state = 'claimed'` lets the planner
/// answer any query filtering on that state by scanning every claimed job, and with statistics
/// taken while none were claimed it did so for each conditional write, once per array element
/// of a batched update.
///
/// `claim_epoch` numbers the pooled connections, so that claim tokens never repeat after a
/// server crash (see the `outbox` module).
const V6: &str = r#"
DROP INDEX outbox_claimed_lease;
CREATE INDEX outbox_leased ON outbox (lease_until) WHERE lease_until IS NOT NULL;
DROP INDEX outbox_by_contact;
DROP INDEX outbox_by_message;
CREATE INDEX outbox_by_contact ON outbox (contact, message_id);

-- One row: the last claim epoch handed to a connection (see `postgres::outbox`, "Claims
-- commit without waiting for the disk").
CREATE TABLE claim_epoch (
    only_row  BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
    epoch     BIGINT NOT NULL CHECK (epoch >= 0)
);
INSERT INTO claim_epoch (epoch) VALUES (0);
"#;

/// Version 7: the open jobs get a narrow table of their own, so that claims and completions
/// are HOT updates of `outbox`.
///
/// Version 6 found the due jobs and the expired leases through partial indexes of `outbox`
/// itself, defined on `state` and `lease_until`, which every claim and every completion
/// changes: no such update could be HOT, so each one added an entry to every index of the
/// table, and that index maintenance was about half of a drain's cost.
///
/// `outbox_queue` now holds one row for each pending or claimed job (never for a held or
/// finished one): its key, campaign, due time and, while it is claimed, its lease. Claims find
/// their jobs through its two partial indexes; `outbox` stays the record of every job and
/// keeps only indexes on columns that no queue write changes (`key`, `campaign`, `contact`),
/// with room left on its pages (`fillfactor`) for the new row versions. A claim is a HOT
/// update of `outbox` and a small update of `outbox_queue`; a completion is a HOT update of
/// `outbox` and a delete from `outbox_queue`. The per-contact index loses `message_id`, which a
/// send sets: a contact has a handful of jobs, and the lookups by message filter them.
///
/// Existing open jobs are copied in, claimed ones with their leases.
///
/// A claim is the function `outbox_claim(lease_until, worker, now, limit)`, which returns the
/// claimed `outbox` rows. Its due branch walks the queue's partial index in `(due_at, key)`
/// order, joins each candidate's `outbox` row by key and locks it with `SKIP LOCKED` if it is
/// still open as the queue says (rechecked on the row's latest version), until it has `limit`
/// jobs: a claim costs O(limit), not a sort of every due job. The expired leases are few: that
/// branch gathers their keys from the lease index and sorts their `outbox` rows. One `OR`
/// query would sort every due job, because a sort under FOR UPDATE cannot stop at the limit.
/// The earliest `limit` of the two branches are leased in both tables; the rest are let go
/// when the statement ends. The locks are taken above any sort, so a claim never locks more
/// rows than it looks at.
///
/// It is a function for the settings it runs with, which a statement cannot carry: its plan
/// must not depend on statistics, and it runs too often to be planned afresh each time.
/// Statistics of a queue change fast (a drained queue, or one whose every job is leased), and
/// with a join they led the planner to scan every `outbox` row for each claim, or to sort
/// every due job. So the function plans once per session (`force_generic_plan`) with only
/// nested loops over index scans allowed, and without JIT (the penalties that steer the
/// planner away from the disabled plans would otherwise make it compile the plan each call).
///
/// `relaxed` makes the claim's transaction commit asynchronously, and a token is raised to
/// the connection's claim epoch: see "Claims commit without waiting for the disk" in
/// `postgres::outbox`. `relaxed` holds a volatile call, so it is evaluated once; the
/// candidate list joins it, so it runs whenever there is something to claim. The running
/// campaigns are read once, as an array, and the leased keys matched through primary keys.
const V7: &str = r#"
CREATE TABLE outbox_queue (
    key          TEXT COLLATE "C" PRIMARY KEY,
    campaign     TEXT COLLATE "C" NOT NULL,
    due_at       BIGINT NOT NULL,
    lease_until  BIGINT
);
CREATE INDEX outbox_queue_due ON outbox_queue (due_at, key) WHERE lease_until IS NULL;
CREATE INDEX outbox_queue_leased ON outbox_queue (lease_until) WHERE lease_until IS NOT NULL;
-- Every job passes through: vacuum and analyze it long before the default 10-20% of changes.
ALTER TABLE outbox_queue SET (autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_analyze_scale_factor = 0.02);
INSERT INTO outbox_queue (key, campaign, due_at, lease_until)
    SELECT key, campaign, due_at, CASE WHEN state = 'claimed' THEN lease_until END
    FROM outbox WHERE state IN ('pending', 'claimed');

DROP INDEX outbox_pending_due;
DROP INDEX outbox_leased;
DROP INDEX outbox_by_contact;
CREATE INDEX outbox_by_contact ON outbox (contact);
ALTER TABLE outbox SET (fillfactor = 70);

CREATE FUNCTION outbox_claim(lease_until BIGINT, worker TEXT, now BIGINT, lim BIGINT)
RETURNS SETOF outbox LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_hashjoin = off SET enable_mergejoin = off SET enable_seqscan = off
SET enable_bitmapscan = off SET enable_sort = off SET jit = off
AS $$
BEGIN
    RETURN QUERY
    WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true)),
    due AS (
        SELECT q.key, q.due_at FROM outbox_queue q JOIN outbox o ON o.key = q.key
        WHERE q.lease_until IS NULL AND q.due_at <= $3
        AND q.campaign = ANY (ARRAY(SELECT id FROM campaigns WHERE state = 'running'))
        AND o.state = 'pending' AND o.due_at <= $3
        ORDER BY q.due_at, q.key LIMIT $4
        FOR UPDATE OF o SKIP LOCKED),
    expired AS (
        SELECT o.key, o.due_at FROM outbox o
        WHERE o.key = ANY (ARRAY(
            SELECT q.key FROM outbox_queue q WHERE q.lease_until <= $3
            AND q.campaign = ANY (ARRAY(SELECT id FROM campaigns WHERE state = 'running'))))
        AND o.state = 'claimed' AND o.lease_until <= $3
        ORDER BY o.due_at, o.key LIMIT $4
        FOR UPDATE OF o SKIP LOCKED),
    picked AS (
        SELECT ARRAY(
            SELECT c.key FROM (SELECT * FROM due UNION ALL SELECT * FROM expired) AS c, relaxed
            ORDER BY c.due_at, c.key LIMIT $4) AS keys),
    leased AS (
        UPDATE outbox_queue q SET lease_until = $1
        WHERE q.key = ANY ((SELECT p.keys FROM picked p)::text[]))
    UPDATE outbox o SET state = 'claimed',
        claim_token = GREATEST(o.claim_token + 1,
            current_setting('mia.claim_epoch')::int8 * 4294967296),
        lease_until = $1, worker = $2, updated_at = $3
    WHERE o.key = ANY ((SELECT p.keys FROM picked p)::text[])
    RETURNING o.*;
END
$$;
"#;

/// Version 8: events deduplicated per contact (see `EventStore`): the primary key is
/// `(contact, id)`, no longer the id alone, and finds a contact's events too, so
/// `events_by_contact` goes: a batch of events writes one index scattered by contact instead of
/// one by contact and one by id.
const V8: &str = r#"
ALTER TABLE events DROP CONSTRAINT events_pkey;
ALTER TABLE events ADD PRIMARY KEY (contact, id);
DROP INDEX IF EXISTS events_by_contact;
"#;

/// Version 9: a send in flight when its contact is erased leaves nothing of the person behind.
///
/// An erasure leaves a job whose send is already with Telegram to its worker, which records
/// the send's events under the contact id it claimed the job with: the erased one. So the
/// erasure keeps that id on the job, in `erased_from`, and whatever then moves the job out of
/// `claimed` (its worker's result, a cancellation) moves the events of that contact and the
/// job's campaign to the job's contact (the replacement) in the same statement, and clears
/// the column. An event the replacement has already with one of those ids gives way, as in
/// the erasure. The trigger's `WHEN` reads one column of the row being written and calls
/// nothing otherwise; claims, which do not set `outcome`, do not even test it. The function
/// keeps the store's schema as its `search_path`, so it finds the schema's `events` whoever
/// writes the row.
const V9: &str = r#"
ALTER TABLE outbox ADD COLUMN erased_from TEXT COLLATE "C";
CREATE FUNCTION outbox_erased_send_done() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    DELETE FROM events r WHERE r.contact = NEW.contact AND EXISTS (
        SELECT 1 FROM events e WHERE e.contact = OLD.erased_from
        AND e.campaign = NEW.campaign AND e.id = r.id);
    UPDATE events SET contact = NEW.contact
        WHERE contact = OLD.erased_from AND campaign = NEW.campaign;
    NEW.erased_from := NULL;
    RETURN NEW;
END
$$;
CREATE TRIGGER outbox_erased_send_done BEFORE UPDATE OF outcome ON outbox FOR EACH ROW
    WHEN (OLD.erased_from IS NOT NULL AND NEW.state <> 'claimed'
        AND NEW.contact <> OLD.erased_from)
    EXECUTE FUNCTION outbox_erased_send_done();
"#;

/// Version 10: a claim takes its jobs out of the queue, and its leases go to `outbox_leases`,
/// one row for the jobs of each campaign it took.
///
/// Version 7 kept a claimed job in `outbox_queue` and moved its row from the due index to the
/// lease index: a new row version and two index entries for each job claimed, then a delete
/// of that version when the job was done. `outbox_queue` now holds the pending jobs only. A
/// claim deletes the queue rows of the jobs it takes (the row versions stay where they are:
/// no index entry is written) and writes one row to `outbox_leases` for each campaign among
/// them: the lease's end, the campaign, and the claimed keys in key order. A claim of 500 jobs
/// writes one lease row, not 500 queue rows; a worker's result writes nothing to the queue
/// unless a job is to be tried again.
///
/// A lease row stands for jobs that may still be claimed; it is only ever deleted when none
/// of its jobs is:
/// - by a result that finishes or reschedules exactly its jobs (the usual case: a worker
///   reports the batch it claimed), found through its lease's end;
/// - by a claim, once the lease has run out: the claim takes the row (`FOR UPDATE SKIP
///   LOCKED`, so two claims never take the same row), takes over those of its jobs that are
///   still claimed under the lease that ran out (for a running campaign), and deletes the row
///   if it took over every such job. Rows of paused campaigns (and of the other states a
///   campaign passes before it runs) wait. A completed campaign's row goes once none of its
///   jobs is claimed (one still claimed there keeps it: the campaign may run again, and the
///   job must be found then); an aborted campaign's row goes at once, as its jobs never run.
///
/// A claim takes at most `max(limit, 16)` lapsed rows, oldest lease first. Claims lock lapsed
/// rows before `outbox` rows, results lock `outbox` rows before the lease rows they delete;
/// that cannot deadlock only because a claim never waits for a lock (every lock it takes is
/// `SKIP LOCKED`, and `outbox_leases` has no unique index for an insert to wait on).
///
/// The aborted campaigns are read in a CTE of their own, which only the deletion of lapsed
/// rows reads: a claim that finds no lapsed row never reads them.
///
/// Existing leases are copied in, grouped by their end and campaign; the claimed jobs leave
/// the queue, which loses its lease column and keeps one index in due order.
const V10: &str = r#"
CREATE TABLE outbox_leases (
    lease_until  BIGINT NOT NULL,
    campaign     TEXT COLLATE "C" NOT NULL,
    keys         TEXT[] COLLATE "C" NOT NULL
);
CREATE INDEX outbox_leases_until ON outbox_leases (lease_until, (keys[1]));
INSERT INTO outbox_leases (lease_until, campaign, keys)
    SELECT o.lease_until, o.campaign, array_agg(o.key ORDER BY o.key) FROM outbox o
    WHERE o.state = 'claimed' AND o.lease_until IS NOT NULL
    GROUP BY o.lease_until, o.campaign;
DELETE FROM outbox_queue q USING outbox o WHERE o.key = q.key AND o.state <> 'pending';
ALTER TABLE outbox_queue DROP COLUMN lease_until;
CREATE INDEX outbox_queue_due ON outbox_queue (due_at, key);

CREATE OR REPLACE FUNCTION outbox_claim(lease_until BIGINT, worker TEXT, now BIGINT, lim BIGINT)
RETURNS SETOF outbox LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_hashjoin = off SET enable_mergejoin = off SET enable_seqscan = off
SET enable_bitmapscan = off SET enable_sort = off SET jit = off
AS $$
BEGIN
    RETURN QUERY
    WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true)),
    live AS (
        SELECT ARRAY(SELECT id FROM campaigns WHERE state = 'running') AS running,
            ARRAY(SELECT id FROM campaigns WHERE state IN ('running', 'completed', 'aborted'))
            AS settled),
    ended AS (SELECT ARRAY(SELECT id FROM campaigns WHERE state = 'aborted') AS aborted),
    due AS (
        SELECT q.key, q.due_at, q.campaign FROM outbox_queue q JOIN outbox o ON o.key = q.key
        WHERE q.due_at <= $3
        AND q.campaign = ANY ((SELECT c.running FROM live c)::text[])
        AND o.state = 'pending' AND o.due_at <= $3
        ORDER BY q.due_at, q.key LIMIT $4
        FOR UPDATE OF o SKIP LOCKED),
    lapsed AS (
        SELECT l.ctid AS id, l.keys FROM outbox_leases l
        WHERE l.lease_until <= $3 AND l.campaign = ANY ((SELECT c.settled FROM live c)::text[])
        ORDER BY l.lease_until LIMIT GREATEST($4, 16)
        FOR UPDATE OF l SKIP LOCKED),
    expired AS (
        SELECT o.key, o.due_at, o.campaign FROM outbox o
        WHERE o.key = ANY (ARRAY(SELECT unnest(l.keys) FROM lapsed l))
        AND o.state = 'claimed' AND o.lease_until <= $3
        AND o.campaign = ANY ((SELECT c.running FROM live c)::text[])
        ORDER BY o.due_at, o.key LIMIT $4
        FOR UPDATE OF o SKIP LOCKED),
    chosen AS (
        SELECT c.key, c.campaign
        FROM (SELECT * FROM due UNION ALL SELECT * FROM expired) AS c, relaxed
        ORDER BY c.due_at, c.key LIMIT $4),
    picked AS (SELECT ARRAY(SELECT c.key FROM chosen c) AS keys),
    dequeued AS (
        DELETE FROM outbox_queue q WHERE q.key = ANY ((SELECT p.keys FROM picked p)::text[])),
    leased AS (
        INSERT INTO outbox_leases (lease_until, campaign, keys)
        SELECT $1, c.campaign, array_agg(c.key ORDER BY c.key) FROM chosen c
        GROUP BY c.campaign),
    drained AS (
        DELETE FROM outbox_leases d WHERE d.ctid = ANY (ARRAY(
            SELECT l.id FROM lapsed l WHERE NOT EXISTS (
                SELECT FROM outbox o WHERE o.key = ANY (l.keys)
                AND o.state = 'claimed' AND o.lease_until <= $3
                AND o.campaign <> ALL ((SELECT e.aborted FROM ended e)::text[])
                AND o.key <> ALL ((SELECT p.keys FROM picked p)::text[])))))
    UPDATE outbox o SET state = 'claimed',
        claim_token = GREATEST(o.claim_token + 1,
            current_setting('mia.claim_epoch')::int8 * 4294967296),
        lease_until = $1, worker = $2, updated_at = $3
    WHERE o.key = ANY ((SELECT p.keys FROM picked p)::text[])
    RETURNING o.*;
END
$$;
"#;

/// Version 11: a claim that finds no lapsed lease runs only the due branch.
///
/// The claim of version 10 plans and runs every branch on each call: the lapsed lease rows,
/// the jobs they hold, the rows to delete, the campaigns in each state. Most claims find no
/// lapsed lease, and for a claim of one job that work was most of the function's time. So the
/// function first asks the lease index whether any lease has run out (one probe at its low
/// end, which the lapsed branch walks anyway); if none has, it claims from the queue alone,
/// as version 10 would with an empty lapsed branch. Otherwise it runs version 10's query.
const V11: &str = r#"
CREATE OR REPLACE FUNCTION outbox_claim(lease_until BIGINT, worker TEXT, now BIGINT, lim BIGINT)
RETURNS SETOF outbox LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_hashjoin = off SET enable_mergejoin = off SET enable_seqscan = off
SET enable_bitmapscan = off SET enable_sort = off SET jit = off
AS $$
BEGIN
    IF EXISTS (SELECT FROM outbox_leases l WHERE l.lease_until <= $3) THEN
        RETURN QUERY
        WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true)),
        live AS (
            SELECT ARRAY(SELECT id FROM campaigns WHERE state = 'running') AS running,
                ARRAY(SELECT id FROM campaigns WHERE state IN ('running', 'completed', 'aborted'))
                AS settled),
        ended AS (SELECT ARRAY(SELECT id FROM campaigns WHERE state = 'aborted') AS aborted),
        due AS (
            SELECT q.key, q.due_at, q.campaign FROM outbox_queue q JOIN outbox o ON o.key = q.key
            WHERE q.due_at <= $3
            AND q.campaign = ANY ((SELECT c.running FROM live c)::text[])
            AND o.state = 'pending' AND o.due_at <= $3
            ORDER BY q.due_at, q.key LIMIT $4
            FOR UPDATE OF o SKIP LOCKED),
        lapsed AS (
            SELECT l.ctid AS id, l.keys FROM outbox_leases l
            WHERE l.lease_until <= $3 AND l.campaign = ANY ((SELECT c.settled FROM live c)::text[])
            ORDER BY l.lease_until LIMIT GREATEST($4, 16)
            FOR UPDATE OF l SKIP LOCKED),
        expired AS (
            SELECT o.key, o.due_at, o.campaign FROM outbox o
            WHERE o.key = ANY (ARRAY(SELECT unnest(l.keys) FROM lapsed l))
            AND o.state = 'claimed' AND o.lease_until <= $3
            AND o.campaign = ANY ((SELECT c.running FROM live c)::text[])
            ORDER BY o.due_at, o.key LIMIT $4
            FOR UPDATE OF o SKIP LOCKED),
        chosen AS (
            SELECT c.key, c.campaign
            FROM (SELECT * FROM due UNION ALL SELECT * FROM expired) AS c, relaxed
            ORDER BY c.due_at, c.key LIMIT $4),
        picked AS (SELECT ARRAY(SELECT c.key FROM chosen c) AS keys),
        dequeued AS (
            DELETE FROM outbox_queue q WHERE q.key = ANY ((SELECT p.keys FROM picked p)::text[])),
        leased AS (
            INSERT INTO outbox_leases (lease_until, campaign, keys)
            SELECT $1, c.campaign, array_agg(c.key ORDER BY c.key) FROM chosen c
            GROUP BY c.campaign),
        drained AS (
            DELETE FROM outbox_leases d WHERE d.ctid = ANY (ARRAY(
                SELECT l.id FROM lapsed l WHERE NOT EXISTS (
                    SELECT FROM outbox o WHERE o.key = ANY (l.keys)
                    AND o.state = 'claimed' AND o.lease_until <= $3
                    AND o.campaign <> ALL ((SELECT e.aborted FROM ended e)::text[])
                    AND o.key <> ALL ((SELECT p.keys FROM picked p)::text[])))))
        UPDATE outbox o SET state = 'claimed',
            claim_token = GREATEST(o.claim_token + 1,
                current_setting('mia.claim_epoch')::int8 * 4294967296),
            lease_until = $1, worker = $2, updated_at = $3
        WHERE o.key = ANY ((SELECT p.keys FROM picked p)::text[])
        RETURNING o.*;
    ELSE
        RETURN QUERY
        WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true)),
        due AS (
            SELECT q.key, q.due_at, q.campaign FROM outbox_queue q JOIN outbox o ON o.key = q.key
            WHERE q.due_at <= $3
            AND q.campaign = ANY (ARRAY(SELECT id FROM campaigns WHERE state = 'running'))
            AND o.state = 'pending' AND o.due_at <= $3
            ORDER BY q.due_at, q.key LIMIT $4
            FOR UPDATE OF o SKIP LOCKED),
        chosen AS (SELECT c.key, c.campaign FROM due c, relaxed),
        picked AS (SELECT ARRAY(SELECT c.key FROM chosen c) AS keys),
        dequeued AS (
            DELETE FROM outbox_queue q WHERE q.key = ANY ((SELECT p.keys FROM picked p)::text[])),
        leased AS (
            INSERT INTO outbox_leases (lease_until, campaign, keys)
            SELECT $1, c.campaign, array_agg(c.key ORDER BY c.key) FROM chosen c
            GROUP BY c.campaign)
        UPDATE outbox o SET state = 'claimed',
            claim_token = GREATEST(o.claim_token + 1,
                current_setting('mia.claim_epoch')::int8 * 4294967296),
            lease_until = $1, worker = $2, updated_at = $3
        WHERE o.key = ANY ((SELECT p.keys FROM picked p)::text[])
        RETURNING o.*;
    END IF;
END
$$;
"#;

/// Version 12: an aborted campaign keeps, in `flights_until`, the latest lease end of the
/// sends in flight its abort left to their workers, so that workers find the sends whose worker
/// never reported (`close_abandoned_sends`) by reading a few campaign rows, not the outbox. No
/// outbox index changes: its updates stay heap-only where they were, and claims and results
/// cost what they did. Campaigns aborted before this version get the column from their jobs.
const V12: &str = r#"
ALTER TABLE campaigns ADD COLUMN flights_until BIGINT;
CREATE INDEX campaigns_flights ON campaigns (flights_until) WHERE flights_until IS NOT NULL;
UPDATE campaigns c SET flights_until = (
    SELECT MAX(o.lease_until) FROM outbox o
    WHERE o.campaign = c.id AND o.state = 'cancelled' AND o.outcome = 'send_in_flight')
WHERE c.state = 'aborted';
"#;

/// Every migration, oldest first.
const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11, V12];

/// The schema version this build writes.
pub(crate) const fn latest_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Creates `schema` if it is missing and brings it up to [`latest_version`], all in one
/// transaction on `conn` (whose `search_path` is `schema`) that first takes an advisory lock
/// for the schema: a second process starting at the same time waits, then finds the work done.
///
/// `schema` must be a checked identifier (it is spliced into `CREATE SCHEMA`).
pub(crate) async fn migrate(conn: &mut PgConnection, schema: &str) -> Result<(), StoreError> {
    let mut tx = conn.begin().await?;
    match apply(&mut tx, schema).await {
        Ok(()) => Ok(tx.commit().await?),
        Err(err) => {
            // Roll back now rather than when the connection is next used: until then it would
            // sit idle in a transaction, holding its locks on the schema.
            let _ = tx.rollback().await;
            Err(err)
        }
    }
}

/// The work of [`migrate`], inside its transaction.
async fn apply(tx: &mut sqlx::PgConnection, schema: &str) -> Result<(), StoreError> {
    // Held until commit or rollback. Other schemas take other locks.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("mia-store schema {schema}"))
        .execute(&mut *tx)
        .await?;
    // Checked first so that a role without CREATE on the database can use a schema its
    // administrator made (`CREATE SCHEMA IF NOT EXISTS` checks the privilege regardless).
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
            .bind(schema)
            .fetch_one(&mut *tx)
            .await?;
    if !exists {
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
            .execute(&mut *tx)
            .await?;
    }
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (\
           version BIGINT PRIMARY KEY, \
           applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .execute(&mut *tx)
    .await?;
    let found = current(&mut *tx).await?;
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
        sqlx::raw_sql(*sql)
            .execute(&mut *tx)
            .await
            .map_err(|source| StoreError::Migration { version, source })?;
        sqlx::query("INSERT INTO schema_migrations (version) VALUES ($1)")
            .bind(version)
            .execute(&mut *tx)
            .await
            .map_err(|source| StoreError::Migration { version, source })?;
        tracing::info!(version, schema, "mia-store: applied schema migration");
    }
    Ok(())
}

/// The newest migration applied (0 for a new schema).
async fn current(conn: &mut sqlx::PgConnection) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            .fetch_one(conn)
            .await?,
    )
}

/// The schema version of the store's schema.
pub(crate) async fn version(pool: &PgPool) -> Result<i64, StoreError> {
    let mut conn = pool.acquire().await?;
    current(&mut conn).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use mia_core::{CampaignState, JobState, ReviewState};

    /// A state added in mia-core needs a migration that widens the CHECK constraint: the
    /// matches below stop compiling, and the asserts check the names.
    #[test]
    fn every_state_name_passes_the_checks() {
        use CampaignState::*;
        use JobState::*;
        for job in [Pending, Claimed, Held, Sent, Skipped, DeadLetter, Cancelled] {
            match job {
                Pending | Claimed | Held | Sent | Skipped | DeadLetter | Cancelled => {}
            }
            assert!(V1.contains(&format!("'{job}'")), "{job}");
        }
        for campaign in [
            Draft, Generating, InReview, Approved, Scheduled, Running, Paused, Completed, Aborted,
        ] {
            match campaign {
                Draft | Generating | InReview | Approved | Scheduled | Running | Paused
                | Completed | Aborted => {}
            }
            assert!(
                V1.contains(&format!("'{}'", campaign.as_str())),
                "{campaign:?}"
            );
        }
        let edited = ReviewState::Edited {
            text: String::new(),
        };
        for review in [
            ReviewState::Pending,
            ReviewState::Approved,
            edited,
            ReviewState::Rejected,
        ] {
            let name = crate::rows::review_state_name(&review);
            assert!(V1.contains(&format!("'{name}'")), "{name}");
        }
        use mia_core::{RequestKind, RequestState};
        for kind in [
            RequestKind::Access,
            RequestKind::Erasure,
            RequestKind::Objection,
            RequestKind::Rectification,
            RequestKind::Restriction,
            RequestKind::LiftRestriction,
        ] {
            assert!(V4.contains(&format!("'{kind}'")), "{kind}");
        }
        for state in [
            RequestState::Received,
            RequestState::InProgress,
            RequestState::Completed,
            RequestState::Rejected,
        ] {
            assert!(V2.contains(&format!("'{state}'")), "{state}");
        }
    }
}
