//! [`OutboxStore`] for [`PostgresStore`]: the durable job queue.
//!
//! # Three tables
//!
//! `outbox` is the record of every job, and the authority on its state. `outbox_queue` holds
//! one narrow row for each pending job (the jobs a claim may take when they are due), with its
//! campaign and due time, and exists to be searched: claims walk its index in due order.
//! `outbox_leases` holds the leases of claimed jobs: one row for the jobs of each campaign
//! that one claim took, with the lease's end and their keys, so that a claim can find the
//! leases that ran out (schema version 10). `outbox` is only indexed on columns that a claim
//! or a completion never changes, so both are HOT updates of it (schema version 7 explains why
//! that matters).
//!
//! Every write that opens, claims, reschedules or closes a job changes the tables in one
//! statement, and always `outbox` first: it locks the job's `outbox` row, then writes its
//! queue row by key. One lock order means no deadlocks (lease rows are the exception: claims
//! lock them first, but never wait for a lock; see schema version 10). An abort's cancellation
//! and the sweep of its abandoned sends (`close_abandoned_sends`) lock the campaign's row
//! first: the cancellation then locks the campaign's open jobs in key order and closes them,
//! in one transaction; the sweep is one statement. Writing the queue row
//! by key means each write finds its latest version, whatever committed since the statement
//! began. A claim rechecks each candidate against its `outbox` row (locked, at its latest
//! version), so a queue row that is out of date can cost a look, never a wrong claim. A lease
//! row says which jobs to look at once a lease runs out; the `outbox` row says whether the job
//! is still claimed under it. A lease row is deleted only when none of its jobs is claimed any
//! more: by the result that finishes exactly its jobs, or by a claim after the lease (see
//! `settle_queue!` and schema version 10). Claims take lease rows with `SKIP LOCKED` and never
//! wait for one.
//!
//! A claim is one statement (a call of the function `outbox_claim`, whose text is in schema
//! version 10): it walks the queue in `(due_at, key)` order and the lease rows that ran out,
//! locks each candidate's `outbox` row with `FOR UPDATE SKIP LOCKED` until it has enough,
//! marks them claimed in `outbox`, deletes their queue rows and writes their lease rows. Each
//! worker locks the due jobs no other worker has locked, so concurrent claims never get the
//! same job and never wait for each other. Worker writes are conditional on
//! `state = 'claimed' AND claim_token = $n`, so a worker whose lease expired cannot overwrite
//! its successor's work (a result also lands on a job an abort cancelled while that claim's
//! send was in flight: see `OutboxStore::cancel_campaign_jobs`).
//!
//! # Claims commit without waiting for the disk
//!
//! A claim's transaction commits with `synchronous_commit = off` (set for that transaction
//! only): it returns once its commit record is in the server's WAL buffers, not once it is on
//! disk, which halves the disk flushes of a job handled one at a time. Every other write of
//! the store (record_attempt, the updates, scheduling, consent, events, audit) still waits for
//! its flush. A server crash (or a backend crash that makes it reinitialise) can therefore
//! lose the last fraction of a second of claims, and only claims. That is harmless:
//!
//! 1. A lost claim leaves the job as it was before, in both tables (one transaction writes
//!    them): pending and due, or claimed by its earlier worker with an expired lease. Either
//!    way it is claimed again, so nothing is lost.
//! 2. Nothing a worker does outside the store can depend on a lost claim. WAL is one ordered
//!    log and a flush covers everything before the flushed position, so the first durable
//!    commit after the claim (any session's) makes the claim durable too. A worker sends only
//!    after [`record_attempt`](OutboxStore::record_attempt) returned (its contract: "right
//!    before the transport call"), and that write is durable and later than the claim. So a
//!    claim that a crash can still lose has had no send, no recorded attempt and no result.
//! 3. The worker holding a lost claim can never write through it. Its writes name the claim
//!    token; if tokens were a plain counter, a claim after the crash would hand out the lost
//!    token again and both workers would hold it (and both would send). So a token is at
//!    least `epoch * 2^32`, where `epoch` is the claiming connection's claim epoch: each pooled
//!    connection takes one at connect, one more than any before, with a durable commit (see
//!    `TAKE_CLAIM_EPOCH`). A crash ends every connection; new ones take epochs above every
//!    epoch used before the crash, so every token issued after it is above every token issued
//!    before it, lost or not (a job would have to be claimed 2^32 times within one epoch to
//!    carry its tokens into the next). The holder of a lost claim gets `LeaseLost` and the job
//!    stays with the worker that claimed it after the crash.
//!
//! The argument assumes what the store needs anyway: the server does not lie about flushes
//! (`fsync` on), and a failover promotes a standby that has every durably committed
//! transaction (synchronous replication), as it must for any write of the store to survive.
//! Epochs run out after 2^31 connections; claims then fail rather than reuse a token.
//!
//! # Dead queue rows are vacuumed as the store goes
//!
//! Each job leaves a dead row version in `outbox_queue`: the one its claim deleted (and each
//! claim one in `outbox_leases`, deleted with its jobs' results or after the lease). Their index
//! entries stay until a vacuum removes them, and the oldest ones sit exactly where a claim
//! starts its walk of `outbox_queue_due` (and of `outbox_leases_until`): every claim steps over
//! all of them. Measured on one worker handling jobs one at a time against a server with
//! autovacuum off, a drain fell from about 1,750 to 980 jobs/s within a minute (schema version
//! 9, whose claims left two dead queue rows a job); autovacuum, where it is on, wakes once a
//! minute by default. So the store vacuums both tables itself (see [`QueueUpkeep`]): after a
//! set number of jobs finished or rescheduled (10,000 unless
//! [`PostgresStore::with_queue_vacuum_after`] says otherwise), the completion that crosses it
//! runs `VACUUM (INDEX_CLEANUP ON, SKIP_LOCKED, TRUNCATE false) outbox_queue, outbox_leases`
//! before it returns.
//! Its own write has committed by then, and its answer does not depend on the vacuum: a vacuum
//! that fails is logged and tried again later, and one refused to a role that does not own the
//! table is only a notice from the server.
//! - `INDEX_CLEANUP ON`: these dead rows sit on few heap pages, and a plain VACUUM then
//!   skips the indexes, which is where the claims pay.
//! - `SKIP_LOCKED`: a vacuum already running (another process's, or autovacuum's) is not
//!   waited for.
//! - `TRUNCATE false`: giving the emptied end of the table back to the system takes an
//!   exclusive lock that would stop every claim meanwhile.
//!
//! A vacuum reads the whole queue table and its indexes, whose size is the number of open
//! jobs: 30 ms for 195,000 open jobs and 10,000 dead rows (measured with `psql` on the
//! development machine), so a store with millions of open jobs makes the crossing call wait
//! longer. The next vacuum waits at least ten times as long as the last one took (and at least
//! a second), so vacuums take about a tenth of a busy worker's time at most. Rows that leave
//! the queue other than by a worker's result (a cancelled campaign, a withdrawal) are not
//! counted: they are few next to the jobs that pass through.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use mia_core::{
    Campaign, CampaignId, ContactId, DeadLetterAction, Error, IdempotencyKey, Job, JobCounts,
    JobUpdate, NewJob, OutboxStore, Result, VariantId,
};
use sqlx::postgres::PgRow;

use super::{CHUNK, PostgresStore, campaigns};
use crate::codec::{from_micros, micros};
use crate::error::{Context, StoreError};
use crate::rows::{self, JobChange, job_columns as columns, job_state, token};

/// `INSERT INTO outbox_queue`: the jobs that `SELECT key, campaign, due_at $from` gives join
/// the queue (an upsert: a job there already takes its new due time, so a job is never left
/// out of the queue).
macro_rules! enqueue {
    ($from:literal) => {
        concat!(
            "INSERT INTO outbox_queue (key, campaign, due_at) SELECT key, campaign, due_at ",
            $from,
            " ON CONFLICT (key) DO UPDATE SET due_at = EXCLUDED.due_at"
        )
    };
}

/// `DELETE FROM outbox_queue`: the jobs whose keys `SELECT key $from` gives leave the queue.
macro_rules! dequeue {
    ($from:literal) => {
        concat!(
            "DELETE FROM outbox_queue WHERE key = ANY (ARRAY(SELECT key ",
            $from,
            "))"
        )
    };
}

/// New jobs, one statement per chunk: no attempts, claims or outcome yet (but the skip reason
/// of a skipped one). A key that exists (or repeats in the chunk) is left alone. The pending
/// ones join the queue; returns how many jobs were new.
const INSERT: &str = concat!(
    "WITH new AS (\
       INSERT INTO outbox (key, campaign, contact, purpose, step, state, due_at, attempts, \
         claim_token, outcome, updated_at) \
       SELECT key, $1, contact, purpose, step, state, due_at, 0, 0, outcome, $2 \
       FROM UNNEST($3::text[], $4::text[], $5::text[], $6::int8[], $7::text[], $8::int8[], \
                   $9::text[]) \
         AS u (key, contact, purpose, step, state, due_at, outcome) \
       ON CONFLICT (key) DO NOTHING \
       RETURNING key, campaign, state, due_at), \
     queued AS (",
    enqueue!("FROM new WHERE state = 'pending'"),
    ") SELECT COUNT(*) FROM new"
);

/// The queue side of a write that changed claimed jobs, appended to a statement whose CTE
/// `done` returns the `key`, `campaign`, new `state` and new `due_at` of each job it changed,
/// and the end of the lease it was claimed under as `lease`. A job that is pending again (a
/// retry) joins the queue for its new due time (claimed jobs are not in the queue; an upsert
/// all the same: a job is never left out of it). A lease row whose jobs are exactly the jobs
/// of its campaign and lease end that the write changed is deleted: none of its jobs is
/// claimed any more. Any other lease row stays until its lease runs out, when a claim deletes
/// it (see schema version 10).
///
/// The delete's plan is left to the planner, unlike the claim's: whichever it picks, a nested
/// loop over `outbox_leases_until` or a hash join over a scan of `outbox_leases`, is cheap.
/// The planner sizes a table by its pages as they are when it plans, whatever the statistics
/// say, so it scans only a table that is small; and the table holds the rows of unfinished
/// claims (and dead ones until the next vacuum), not a row for every job.
macro_rules! settle_queue {
    () => {
        concat!(
            "requeued AS (",
            enqueue!("FROM done WHERE state = 'pending'"),
            "), released AS (\
               DELETE FROM outbox_leases l USING (\
                 SELECT d.lease, d.campaign, array_agg(d.key ORDER BY d.key) AS keys \
                 FROM done d GROUP BY d.lease, d.campaign) r \
               WHERE l.lease_until = r.lease AND l.keys[1] = r.keys[1] \
                 AND l.campaign = r.campaign AND l.keys = r.keys) "
        )
    };
}

/// A batched update of claimed jobs in one statement: the new columns of each job come in as
/// arrays, and only the jobs still held with the given claim token, in the given campaign,
/// change; their queue rows follow (see `settle_queue!`). Returns the keys it changed.
///
/// The plan must not depend on statistics. Written plainly (`o.state = 'claimed'` in the
/// WHERE clause), the planner estimates the claimed jobs at one row whenever the last ANALYZE
/// saw none (a fresh queue, or one between bursts), scans them first and matches every one
/// against every array element: 500 jobs took 130 ms instead of 5. So the jobs are reached by
/// key (`key = ANY`, so at most one row per element, whichever index of `outbox` the planner
/// reads it through: the primary key, or `(campaign, key)` now that the campaign must match
/// too), and the state check is a join condition against a constant of the fenced
/// (`OFFSET 0`) array subquery, which the planner cannot push down into the scan as a filter
/// that looks selective.
///
/// A job an abort cancelled while its send was in flight (`o.state = u.cut`) takes a send and
/// stays cancelled otherwise (see `OutboxStore::cancel_campaign_jobs`); the right-hand sides
/// read the row as it was.
const UPDATE_BATCH: &str = concat!(
    "WITH done AS (\
       UPDATE outbox o SET \
         state = CASE WHEN o.state = u.held OR u.state = 'sent' THEN u.state \
           ELSE 'cancelled' END, \
         lease_until = NULL, updated_at = $1, \
         message_id = COALESCE(u.message_id, o.message_id), \
         outcome = CASE WHEN o.state = u.held OR u.state = 'sent' THEN u.outcome \
           ELSE 'campaign_aborted' END, \
         due_at = CASE WHEN o.state = u.held THEN COALESCE(u.due_at, o.due_at) \
           ELSE o.due_at END, \
         attempts = CASE WHEN o.state = u.held THEN o.attempts + u.add_attempts \
           ELSE o.attempts END \
       FROM (SELECT x.*, 'claimed' COLLATE \"C\" AS held, 'cancelled' COLLATE \"C\" AS cut \
             FROM UNNEST($2::text[], $3::int8[], $4::text[], $5::int8[], $6::text[], \
                         $7::int8[], $8::int8[], $9::int8[], $10::text[]) \
               AS x (key, claim_token, state, message_id, outcome, due_at, add_attempts, \
                     lease, campaign) \
             OFFSET 0) AS u \
       WHERE o.key = ANY ($2::text[]) AND o.key = u.key AND o.campaign = u.campaign \
         AND (o.state = u.held OR (o.state = u.cut AND o.outcome = 'send_in_flight')) \
         AND o.claim_token = u.claim_token \
       RETURNING o.key, o.campaign, o.state, o.due_at, u.lease), ",
    settle_queue!(),
    "SELECT key FROM done"
);

/// A claim: the function `outbox_claim` of schema version 10 (see there), which returns the
/// claimed rows of `outbox`.
const CLAIM: &str = concat!("SELECT ", columns!(), " FROM outbox_claim($1, $2, $3, $4)");

/// Finishes or reschedules claimed job `$7` if its claim is still `$8`: the columns of a
/// [`JobChange`] (a NULL keeps the column), and the queue and lease rows to match (see
/// `settle_queue!`; the lease's end is read from the row as it was). A job an abort cancelled
/// while this claim's send was in flight takes a send and stays cancelled otherwise, as in
/// `UPDATE_BATCH`. Returns how many jobs changed (0 or 1).
const UPDATE_ONE: &str = concat!(
    "WITH done AS (\
       UPDATE outbox o SET \
         state = CASE WHEN o.state = 'claimed' OR $1 = 'sent' THEN $1 ELSE 'cancelled' END, \
         lease_until = NULL, updated_at = $2, \
         message_id = COALESCE($3, o.message_id), \
         outcome = CASE WHEN o.state = 'claimed' OR $1 = 'sent' THEN $4 \
           ELSE 'campaign_aborted' END, \
         due_at = CASE WHEN o.state = 'claimed' THEN COALESCE($5, o.due_at) ELSE o.due_at END, \
         attempts = CASE WHEN o.state = 'claimed' THEN o.attempts + $6 ELSE o.attempts END \
       FROM (SELECT lease_until FROM outbox WHERE key = $7) AS was \
       WHERE o.key = $7 AND o.claim_token = $8 AND (o.state = 'claimed' \
         OR (o.state = 'cancelled' AND o.outcome = 'send_in_flight')) \
       RETURNING o.key, o.campaign, o.state, o.due_at, was.lease_until AS lease), ",
    settle_queue!(),
    "SELECT COUNT(*) FROM done"
);

/// Wraps `$opened`, an `UPDATE outbox` that makes jobs pending again, so that those jobs join
/// the queue, unleased. Returns how many jobs it reopened.
macro_rules! reopen {
    ($opened:expr) => {
        concat!(
            "WITH opened AS (",
            $opened,
            " RETURNING key, campaign, due_at), queued AS (",
            enqueue!("FROM opened"),
            ") SELECT COUNT(*) FROM opened"
        )
    };
}

/// Appends to `$cancel` (an `UPDATE outbox` that closes open jobs) the removal of the closed
/// jobs from the queue. Returns how many jobs it closed.
macro_rules! close {
    ($cancel:expr) => {
        concat!(
            "WITH closed AS (",
            $cancel,
            " RETURNING key), dequeued AS (",
            $crate::postgres::outbox::dequeue!("FROM closed"),
            ") SELECT COUNT(*) FROM closed"
        )
    };
}
pub(super) use {close, dequeue};

/// Vacuums the queue and lease tables: see "Dead queue rows are vacuumed as the store goes"
/// above.
const VACUUM_QUEUE: &str =
    "VACUUM (INDEX_CLEANUP ON, SKIP_LOCKED, TRUNCATE false) outbox_queue, outbox_leases";

/// The jobs finished or rescheduled between two vacuums of a store that was not told
/// otherwise.
pub(super) const VACUUM_AFTER: u64 = 10_000;

/// The shortest time between two vacuums of one store (its clones share it).
const VACUUM_GAP: Duration = Duration::from_secs(1);

/// When a store (and its clones) vacuums the queue and lease tables: after `after` dead rows
/// (0: never), one vacuum at a time, and the next one only after ten times as long as the last
/// one took, and at least [`VACUUM_GAP`].
pub(super) struct QueueUpkeep {
    after: u64,
    state: Mutex<UpkeepState>,
}

#[derive(Default)]
struct UpkeepState {
    /// Dead rows counted since the last vacuum began.
    changed: u64,
    /// A vacuum is running.
    running: bool,
    /// No vacuum before this.
    not_before: Option<Instant>,
}

/// Marks a vacuum as running until dropped, even when the call running it is cancelled.
struct Vacuuming<'a> {
    upkeep: &'a QueueUpkeep,
    started: Instant,
}

impl Drop for Vacuuming<'_> {
    fn drop(&mut self) {
        let took = self.started.elapsed();
        let mut state = self.upkeep.lock();
        state.running = false;
        state.not_before = Some(Instant::now() + (took * 10).max(VACUUM_GAP));
    }
}

impl QueueUpkeep {
    pub(super) fn new(after: u64) -> Self {
        Self {
            after,
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, UpkeepState> {
        // The state is a few counters, consistent after any panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts `rows` more dead rows (one a job); a guard when the caller is to vacuum now.
    fn changed(&self, rows: u64) -> Option<Vacuuming<'_>> {
        if self.after == 0 || rows == 0 {
            return None;
        }
        let mut state = self.lock();
        state.changed = state.changed.saturating_add(rows);
        let now = Instant::now();
        let ready = state.changed >= self.after
            && !state.running
            && state.not_before.is_none_or(|at| now >= at);
        if !ready {
            return None;
        }
        state.changed = 0;
        state.running = true;
        Some(Vacuuming {
            upkeep: self,
            started: now,
        })
    }
}

impl PostgresStore {
    /// Notes that `jobs` claimed jobs were finished or rescheduled (one dead queue row each:
    /// the one its claim deleted), and vacuums the queue and lease tables when that makes it
    /// due.
    async fn jobs_done(&self, jobs: u64) {
        let Some(_vacuuming) = self.upkeep.changed(jobs) else {
            return;
        };
        match sqlx::raw_sql(VACUUM_QUEUE).execute(&self.pool).await {
            // A vacuum skipped (`SKIP_LOCKED`) or refused to a role that does not own the
            // table is a notice from the server, not an error.
            Ok(_) => {
                tracing::debug!(schema = %self.schema, "mia-store: ran VACUUM on the outbox queue")
            }
            Err(error) => tracing::warn!(
                schema = %self.schema,
                %error,
                "mia-store: could not vacuum the outbox queue; claims slow down until a vacuum runs"
            ),
        }
    }
}

/// Applies `updates` on `conn`, [`CHUNK`] to a statement; returns the keys that changed.
async fn update_batch(
    conn: &mut sqlx::PgConnection,
    updates: &[(&Job, JobUpdate)],
    now: Timestamp,
) -> Result<Vec<String>, StoreError> {
    let mut changed = Vec::with_capacity(updates.len());
    for chunk in updates.chunks(CHUNK) {
        let mut keys = Vec::with_capacity(chunk.len());
        let mut tokens = Vec::with_capacity(chunk.len());
        let mut states = Vec::with_capacity(chunk.len());
        let mut messages = Vec::with_capacity(chunk.len());
        let mut outcomes = Vec::with_capacity(chunk.len());
        let mut due = Vec::with_capacity(chunk.len());
        let mut attempts = Vec::with_capacity(chunk.len());
        let mut leases = Vec::with_capacity(chunk.len());
        let mut campaigns = Vec::with_capacity(chunk.len());
        for (job, update) in chunk {
            let change = JobChange::from(update);
            keys.push(job.key.as_str());
            tokens.push(token(job.claim_token));
            states.push(change.state.as_str());
            messages.push(change.message_id);
            outcomes.push(change.outcome);
            due.push(change.due_at);
            attempts.push(change.add_attempts);
            leases.push(job.lease_until.map(micros));
            campaigns.push(job.campaign.as_str());
        }
        let found: Vec<String> = sqlx::query_scalar(UPDATE_BATCH)
            .bind(micros(now))
            .bind(keys)
            .bind(tokens)
            .bind(states)
            .bind(messages)
            .bind(outcomes)
            .bind(due)
            .bind(attempts)
            .bind(leases)
            .bind(campaigns)
            .fetch_all(&mut *conn)
            .await?;
        changed.extend(found);
    }
    Ok(changed)
}

/// Refuses a batch of updates that names a job twice (which update would win is not defined).
fn no_repeated_job(updates: &[(&Job, JobUpdate)]) -> Result<()> {
    let mut seen = std::collections::HashSet::with_capacity(updates.len());
    match updates.iter().find(|(job, _)| !seen.insert(&job.key)) {
        Some((job, _)) => Err(Error::invalid(format!(
            "job {} appears twice in one batch of updates",
            job.key
        ))),
        None => Ok(()),
    }
}

/// The keys of `updates` that are not in `changed`, in input order.
fn lost_updates(updates: &[(&Job, JobUpdate)], changed: Vec<String>) -> Vec<IdempotencyKey> {
    if changed.len() == updates.len() {
        return Vec::new();
    }
    let changed: std::collections::HashSet<String> = changed.into_iter().collect();
    updates
        .iter()
        .filter(|(job, _)| !changed.contains(job.key.as_str()))
        .map(|(job, _)| job.key.clone())
        .collect()
}

/// Rows of `doing`'s query, decoded.
fn decode_all(found: &[PgRow], doing: &'static str) -> Result<Vec<Job>> {
    rows::all(found, rows::job).context(doing)
}

async fn insert_jobs(
    conn: &mut sqlx::PgConnection,
    campaign: &CampaignId,
    jobs: &[NewJob],
    now: Timestamp,
) -> Result<u64, StoreError> {
    let mut inserted = 0;
    for chunk in jobs.chunks(CHUNK) {
        let mut keys = Vec::with_capacity(chunk.len());
        let mut contacts = Vec::with_capacity(chunk.len());
        let mut purposes = Vec::with_capacity(chunk.len());
        let mut steps = Vec::with_capacity(chunk.len());
        let mut states = Vec::with_capacity(chunk.len());
        let mut due = Vec::with_capacity(chunk.len());
        let mut outcomes = Vec::with_capacity(chunk.len());
        for new in chunk {
            keys.push(new.key.as_str());
            contacts.push(new.contact.as_str());
            purposes.push(new.purpose.as_str());
            steps.push(i64::from(new.step));
            states.push(rows::new_job_state(new).as_str());
            due.push(micros(new.due_at));
            outcomes.push(new.skipped.as_deref());
        }
        let new: i64 = sqlx::query_scalar(INSERT)
            .bind(campaign.as_str())
            .bind(micros(now))
            .bind(keys)
            .bind(contacts)
            .bind(purposes)
            .bind(steps)
            .bind(states)
            .bind(due)
            .bind(outcomes)
            .fetch_one(&mut *conn)
            .await?;
        // COUNT(*) is never negative.
        inserted += new.unsigned_abs();
    }
    Ok(inserted)
}

impl PostgresStore {
    /// Why a conditional write on `key` under `claim_token` matched no row (see
    /// [`rows::missed`]).
    async fn lost(&self, key: &IdempotencyKey, claim_token: u64, doing: &'static str) -> Error {
        let found = sqlx::query_as::<_, rows::Missed>(
            "SELECT o.state = 'claimed' AND o.claim_token = $1, o.campaign, c.state \
             FROM outbox o LEFT JOIN campaigns c ON c.id = o.campaign WHERE o.key = $2",
        )
        .bind(token(claim_token))
        .bind(key.as_str())
        .fetch_optional(&self.pool)
        .await
        .context(doing);
        match found {
            Ok(found) => rows::missed(key, found)
                .context(doing)
                .unwrap_or_else(|e| e),
            Err(e) => e,
        }
    }
}

/// Releases the job `key` if it is held: `approve`d, it is pending again, due at `now`, and
/// joins the queue; rejected, it is skipped with the outcome `rejected_by_reviewer` (a held job
/// is not in the queue, so it never does). Returns whether it was held.
pub(super) async fn release<'c>(
    conn: impl sqlx::Executor<'c, Database = sqlx::Postgres>,
    key: &IdempotencyKey,
    approve: bool,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let query = if approve {
        sqlx::query_scalar(reopen!(
            "UPDATE outbox SET state = 'pending', due_at = $1, updated_at = $1 \
             WHERE key = $2 AND state = 'held'"
        ))
    } else {
        sqlx::query_scalar(
            "WITH done AS (UPDATE outbox SET state = 'skipped', \
             outcome = 'rejected_by_reviewer', updated_at = $1 \
             WHERE key = $2 AND state = 'held' RETURNING key) SELECT COUNT(*) FROM done",
        )
    };
    let released: i64 = query
        .bind(micros(now))
        .bind(key.as_str())
        .fetch_one(conn)
        .await?;
    Ok(released > 0)
}

#[async_trait]
impl OutboxStore for PostgresStore {
    async fn schedule(&self, campaign: &Campaign, jobs: &[NewJob]) -> Result<u64> {
        const DOING: &str = "schedule jobs";
        let mut tx = self.begin().await.context(DOING)?;
        campaigns::save(&mut *tx, campaign, DOING).await?;
        let inserted = insert_jobs(&mut tx, &campaign.id, jobs, campaign.updated_at)
            .await
            .context(DOING)?;
        tx.commit().await.context(DOING)?;
        Ok(inserted)
    }

    async fn enqueue(&self, campaign: &CampaignId, jobs: &[NewJob], now: Timestamp) -> Result<u64> {
        const DOING: &str = "enqueue jobs";
        let mut tx = self.begin().await.context(DOING)?;
        let exists =
            sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM campaigns WHERE id = $1)")
                .bind(campaign.as_str())
                .fetch_one(&mut *tx)
                .await
                .context(DOING)?;
        if !exists {
            return Err(Error::NotFound {
                kind: "campaign",
                id: campaign.to_string(),
            });
        }
        let inserted = insert_jobs(&mut tx, campaign, jobs, now)
            .await
            .context(DOING)?;
        tx.commit().await.context(DOING)?;
        Ok(inserted)
    }

    async fn claim(
        &self,
        worker: &str,
        now: Timestamp,
        lease: SignedDuration,
        limit: usize,
    ) -> Result<Vec<Job>> {
        const DOING: &str = "claim jobs";
        let lease_until = now
            .checked_add(lease)
            .map_err(|e| Error::invalid(e.to_string()))?;
        let found = sqlx::query(CLAIM)
            .bind(micros(lease_until))
            .bind(worker)
            .bind(micros(now))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .context(DOING)?;
        let mut jobs = decode_all(&found, DOING)?;
        // RETURNING gives rows in no particular order.
        jobs.sort_by(|a, b| a.due_at.cmp(&b.due_at).then_with(|| a.key.cmp(&b.key)));
        tracing::debug!(
            worker,
            claimed = jobs.len(),
            "mia-store: claimed outbox jobs"
        );
        Ok(jobs)
    }

    async fn record_attempt(
        &self,
        key: &IdempotencyKey,
        claim_token: u64,
        variant: &VariantId,
        propensity: f64,
        now: Timestamp,
    ) -> Result<()> {
        const DOING: &str = "record a send attempt";
        // Every right-hand side sees the row as it was, so the first variant sticks.
        let updated = sqlx::query(
            "UPDATE outbox SET variant = COALESCE(variant, $1), \
             propensity = CASE WHEN variant IS NULL THEN $2 ELSE propensity END, \
             updated_at = $3, outcome = 'send_in_flight' \
             WHERE key = $4 AND state = 'claimed' AND claim_token = $5 \
             AND EXISTS (SELECT 1 FROM campaigns c WHERE c.id = outbox.campaign \
               AND c.state = 'running')",
        )
        .bind(variant.as_str())
        .bind(propensity)
        .bind(micros(now))
        .bind(key.as_str())
        .bind(token(claim_token))
        .execute(&self.pool)
        .await
        .context(DOING)?
        .rows_affected();
        if updated == 0 {
            return Err(self.lost(key, claim_token, DOING).await);
        }
        Ok(())
    }

    async fn update_job(
        &self,
        key: &IdempotencyKey,
        claim_token: u64,
        update: &JobUpdate,
        now: Timestamp,
    ) -> Result<()> {
        const DOING: &str = "update a job";
        let change = JobChange::from(update);
        let updated: i64 = sqlx::query_scalar(UPDATE_ONE)
            .bind(change.state.as_str())
            .bind(micros(now))
            .bind(change.message_id)
            .bind(change.outcome)
            .bind(change.due_at)
            .bind(change.add_attempts)
            .bind(key.as_str())
            .bind(token(claim_token))
            .fetch_one(&self.pool)
            .await
            .context(DOING)?;
        if updated == 0 {
            return Err(self.lost(key, claim_token, DOING).await);
        }
        self.jobs_done(1).await;
        Ok(())
    }

    async fn update_jobs(
        &self,
        updates: &[(&Job, JobUpdate)],
        now: Timestamp,
    ) -> Result<Vec<IdempotencyKey>> {
        const DOING: &str = "update a batch of jobs";
        no_repeated_job(updates)?;
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        let changed = if updates.len() <= CHUNK {
            // One statement is atomic on its own.
            let mut conn = self.pool.acquire().await.context(DOING)?;
            update_batch(&mut conn, updates, now).await.context(DOING)?
        } else {
            let mut tx = self.begin().await.context(DOING)?;
            let changed = update_batch(&mut tx, updates, now).await.context(DOING)?;
            tx.commit().await.context(DOING)?;
            changed
        };
        self.jobs_done(changed.len() as u64).await;
        let lost = lost_updates(updates, changed);
        self.reassign_lost(updates, &lost).await;
        Ok(lost)
    }

    async fn release_held(
        &self,
        key: &IdempotencyKey,
        approve: bool,
        now: Timestamp,
    ) -> Result<()> {
        const DOING: &str = "release a held job";
        if !release(&self.pool, key, approve, now)
            .await
            .context(DOING)?
        {
            return Err(Error::NotFound {
                kind: "held job",
                id: key.to_string(),
            });
        }
        Ok(())
    }

    async fn settle_dead_letter(
        &self,
        key: &IdempotencyKey,
        action: DeadLetterAction,
        now: Timestamp,
    ) -> Result<()> {
        const DOING: &str = "settle a dead letter";
        // A dead letter is not in the queue: a requeued one joins it.
        let query = match action {
            DeadLetterAction::Requeue { due_at } => sqlx::query_scalar(reopen!(
                "UPDATE outbox SET state = 'pending', due_at = $3, attempts = 0, updated_at = $1 \
                 WHERE key = $2 AND state = 'dead_letter'"
            ))
            .bind(micros(now))
            .bind(key.as_str())
            .bind(micros(due_at)),
            DeadLetterAction::Discard => sqlx::query_scalar(
                "WITH done AS (UPDATE outbox SET state = 'cancelled', \
                 outcome = 'discarded: ' || COALESCE(outcome, ''), updated_at = $1 \
                 WHERE key = $2 AND state = 'dead_letter' RETURNING key) \
                 SELECT COUNT(*) FROM done",
            )
            .bind(micros(now))
            .bind(key.as_str()),
        };
        let updated: i64 = query.fetch_one(&self.pool).await.context(DOING)?;
        if updated == 0 {
            return Err(Error::not_found("dead letter", key));
        }
        Ok(())
    }

    async fn job(&self, key: &IdempotencyKey) -> Result<Option<Job>> {
        const DOING: &str = "read a job";
        sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM outbox WHERE key = $1"
        ))
        .bind(key.as_str())
        .fetch_optional(&self.pool)
        .await
        .context(DOING)?
        .map(|row| rows::job(&row))
        .transpose()
        .context(DOING)
    }

    async fn jobs(&self, campaign: &CampaignId) -> Result<Vec<Job>> {
        const DOING: &str = "read a campaign's jobs";
        let found = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM outbox WHERE campaign = $1 ORDER BY key"
        ))
        .bind(campaign.as_str())
        .fetch_all(&self.pool)
        .await
        .context(DOING)?;
        decode_all(&found, DOING)
    }

    async fn jobs_page(
        &self,
        campaign: &CampaignId,
        after: Option<&IdempotencyKey>,
        limit: usize,
    ) -> Result<Vec<Job>> {
        const DOING: &str = "read a page of a campaign's jobs";
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // Two texts rather than `($3 IS NULL OR key > $3)`, whose plan would not start the
        // index range at `after`.
        let text = match after {
            None => concat!(
                "SELECT ",
                columns!(),
                " FROM outbox WHERE campaign = $1 ORDER BY key LIMIT $2"
            ),
            Some(_) => concat!(
                "SELECT ",
                columns!(),
                " FROM outbox WHERE campaign = $1 AND key > $3 ORDER BY key LIMIT $2"
            ),
        };
        let mut query = sqlx::query(text).bind(campaign.as_str()).bind(limit);
        if let Some(after) = after {
            query = query.bind(after.as_str());
        }
        let found = query.fetch_all(&self.pool).await.context(DOING)?;
        decode_all(&found, DOING)
    }

    async fn existing_keys(&self, keys: &[IdempotencyKey]) -> Result<Vec<IdempotencyKey>> {
        const DOING: &str = "look up job keys";
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let found: Vec<(String,)> =
            sqlx::query_as("SELECT key FROM outbox WHERE key = ANY($1) ORDER BY key")
                .bind(keys.iter().map(IdempotencyKey::as_str).collect::<Vec<_>>())
                .fetch_all(&self.pool)
                .await
                .context(DOING)?;
        Ok(found
            .into_iter()
            .map(|(k,)| IdempotencyKey::new(k))
            .collect())
    }

    async fn jobs_in(&self, campaign: &CampaignId, state: mia_core::JobState) -> Result<Vec<Job>> {
        const DOING: &str = "read a campaign's jobs in a state";
        let found = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM outbox WHERE campaign = $1 AND state = $2 ORDER BY key"
        ))
        .bind(campaign.as_str())
        .bind(state.as_str())
        .fetch_all(&self.pool)
        .await
        .context(DOING)?;
        decode_all(&found, DOING)
    }

    async fn job_groups(&self, campaign: &CampaignId) -> Result<Vec<mia_core::JobGroup>> {
        const DOING: &str = "group a campaign's jobs";
        let rows: Vec<rows::GroupRow> = sqlx::query_as(rows::job_groups_sql!("$1", "$2"))
            .bind(campaign.as_str())
            .bind(i64::from(mia_core::JourneyPosition::WITHIN_OCCURRENCE))
            .fetch_all(&self.pool)
            .await
            .context(DOING)?;
        rows::job_groups(rows).context(DOING)
    }

    async fn job_counts(&self, campaign: &CampaignId) -> Result<JobCounts> {
        const DOING: &str = "count a campaign's jobs";
        let found: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, COUNT(*) FROM outbox WHERE campaign = $1 GROUP BY state")
                .bind(campaign.as_str())
                .fetch_all(&self.pool)
                .await
                .context(DOING)?;
        let mut counts = JobCounts::default();
        for (state, n) in found {
            // COUNT(*) is never negative.
            counts.add(job_state(&state).context(DOING)?, n.unsigned_abs());
        }
        Ok(counts)
    }

    async fn job_by_message(&self, contact: &ContactId, message_id: i64) -> Result<Option<Job>> {
        const DOING: &str = "find a job by message";
        sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM outbox WHERE contact = $1 AND message_id = $2 ORDER BY key LIMIT 1"
        ))
        .bind(contact.as_str())
        .bind(message_id)
        .fetch_optional(&self.pool)
        .await
        .context(DOING)?
        .map(|row| rows::job(&row))
        .transpose()
        .context(DOING)
    }

    async fn sends_since(&self, contact: &ContactId, since: Timestamp) -> Result<Vec<Timestamp>> {
        const DOING: &str = "read recent sends";
        let sends: Vec<i64> = sqlx::query_scalar(
            "SELECT updated_at FROM outbox \
             WHERE contact = $1 AND state = 'sent' AND updated_at >= $2 \
             ORDER BY updated_at DESC",
        )
        .bind(contact.as_str())
        .bind(micros(since))
        .fetch_all(&self.pool)
        .await
        .context(DOING)?;
        sends
            .into_iter()
            .map(|us| from_micros(us, "updated_at"))
            .collect::<Result<_, _>>()
            .context(DOING)
    }

    async fn sends_since_by_contact(
        &self,
        contacts: &[ContactId],
        since: Timestamp,
    ) -> Result<Vec<(ContactId, Timestamp)>> {
        const DOING: &str = "read recent sends";
        if contacts.is_empty() {
            return Ok(Vec::new());
        }
        let sends: Vec<(String, i64)> = sqlx::query_as(
            "SELECT contact, updated_at FROM outbox \
             WHERE contact = ANY($1) AND state = 'sent' AND updated_at >= $2 \
             ORDER BY contact, updated_at DESC",
        )
        .bind(contacts.iter().map(ContactId::as_str).collect::<Vec<_>>())
        .bind(micros(since))
        .fetch_all(&self.pool)
        .await
        .context(DOING)?;
        rows::sends_by_contact(sends).context(DOING)
    }

    async fn take_daily(&self, key: &str, day: &str, cap: u32) -> Result<bool> {
        const DOING: &str = "count a send against the daily cap";
        // One statement: a new day starts at 1; an existing one goes up only while under the
        // cap, and returns no row when it is full.
        let used: Option<i64> = sqlx::query_scalar(
            "INSERT INTO daily_counters (key, day, used) VALUES ($1, $2, 1) \
             ON CONFLICT (key, day) DO UPDATE SET used = daily_counters.used + 1 \
             WHERE daily_counters.used < $3 RETURNING used",
        )
        .bind(key)
        .bind(day)
        .bind(i64::from(cap))
        .fetch_optional(&self.pool)
        .await
        .context(DOING)?;
        Ok(used.is_some_and(|n| n <= i64::from(cap)))
    }

    async fn next_due(&self) -> Result<Option<Timestamp>> {
        const DOING: &str = "find the next due job";
        // The first branch reads the queue in due order and stops at the first job of a
        // running campaign whose `outbox` row agrees that it is pending (MIN over a join would
        // aggregate every open job); the second reads the leases in order and stops at the
        // first whose end is still that of one of its claimed jobs. LEAST ignores NULLs:
        // either kind of job may be missing.
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT LEAST(\
               (SELECT q.due_at FROM outbox_queue q \
                WHERE q.campaign = ANY (ARRAY(SELECT id FROM campaigns WHERE state = 'running')) \
                AND EXISTS (SELECT FROM outbox o WHERE o.key = q.key AND o.state = 'pending') \
                ORDER BY q.due_at LIMIT 1), \
               (SELECT l.lease_until FROM outbox_leases l \
                WHERE l.campaign = ANY (ARRAY(SELECT id FROM campaigns WHERE state = 'running')) \
                AND EXISTS (SELECT FROM outbox o WHERE o.key = ANY (l.keys) \
                  AND o.state = 'claimed' AND o.lease_until = l.lease_until) \
                ORDER BY l.lease_until LIMIT 1))",
        )
        .fetch_one(&self.pool)
        .await
        .context(DOING)?;
        next.map(|us| from_micros(us, "due_at"))
            .transpose()
            .context(DOING)
    }

    async fn cancel_campaign_jobs(&self, campaign: &CampaignId, now: Timestamp) -> Result<u64> {
        const DOING: &str = "cancel a campaign's jobs";
        let mut tx = self.begin().await.context(DOING)?;
        // The campaign's row is locked first, as the sweep (`close_abandoned_sends`) does, so
        // the two never wait on each other in opposite orders. Then the open jobs, so that the
        // two updates below split them as they are: a send recorded between the two would
        // otherwise lose its mark.
        for sql in [
            "SELECT FROM campaigns WHERE id = $1 FOR NO KEY UPDATE",
            "SELECT FROM outbox WHERE campaign = $1 AND (state IN ('pending', 'claimed', 'held') \
             OR (state = 'cancelled' AND outcome = 'send_in_flight')) ORDER BY key FOR UPDATE",
        ] {
            sqlx::query(sql)
                .bind(campaign.as_str())
                .execute(&mut *tx)
                .await
                .context(DOING)?;
        }
        // Jobs whose send is in flight under a live lease keep their outcome, and with it the
        // erased id of a contact erased meanwhile (`outcome` is not set, so the trigger of
        // schema version 9 does not run): their worker's result is still to come (see the
        // trait). They are claimed, so not in the queue. The rest close with their outcome, and
        // so do such jobs of an earlier call whose lease ran out without a result.
        let flying: Vec<i64> = sqlx::query_scalar(
            "UPDATE outbox SET state = 'cancelled', updated_at = $1 \
             WHERE campaign = $2 AND state = 'claimed' AND outcome = 'send_in_flight' \
             AND lease_until > $1 RETURNING lease_until",
        )
        .bind(micros(now))
        .bind(campaign.as_str())
        .fetch_all(&mut *tx)
        .await
        .context(DOING)?;
        let cancelled: i64 = sqlx::query_scalar(close!(
            "UPDATE outbox SET state = 'cancelled', outcome = 'campaign_aborted', \
             lease_until = NULL, updated_at = $1 \
             WHERE campaign = $2 AND (state IN ('pending', 'claimed', 'held') \
               OR (state = 'cancelled' AND outcome = 'send_in_flight' AND lease_until <= $1))"
        ))
        .bind(micros(now))
        .bind(campaign.as_str())
        .fetch_one(&mut *tx)
        .await
        .context(DOING)?;
        // What the sweep (`close_abandoned_sends`) looks for: when the last lease left to a
        // worker runs out. An earlier call's mark that has not passed stays (some of its sends
        // may still be out); one that has passed is done with, as the statement above closed
        // its sends.
        sqlx::query(
            "UPDATE campaigns SET flights_until = CASE WHEN flights_until > $1 \
               THEN GREATEST(flights_until, $2) ELSE $2 END \
             WHERE id = $3",
        )
        .bind(micros(now))
        .bind(flying.iter().max().copied())
        .bind(campaign.as_str())
        .execute(&mut *tx)
        .await
        .context(DOING)?;
        tx.commit().await.context(DOING)?;
        // COUNT(*) is never negative.
        Ok(flying.len() as u64 + cancelled.unsigned_abs())
    }

    async fn close_abandoned_sends(&self, now: Timestamp) -> Result<u64> {
        const DOING: &str = "close abandoned sends";
        // One statement: the campaigns whose last lease left to a worker has run out (locked
        // in key order, so two workers' sweeps take turns), their sends in flight (claimed
        // before the abort, so not in the queue), and the campaigns' marks. Every such send's
        // lease ended by its campaign's `flights_until`, so none is left to wait for.
        let closed: i64 = sqlx::query_scalar(
            "WITH due AS (\
               SELECT id FROM campaigns WHERE flights_until <= $1 ORDER BY id \
               FOR NO KEY UPDATE), \
             closed AS (\
               UPDATE outbox SET outcome = 'campaign_aborted', lease_until = NULL, \
               updated_at = $1 \
               WHERE campaign = ANY (ARRAY(SELECT id FROM due)) \
               AND state = 'cancelled' AND outcome = 'send_in_flight' AND lease_until <= $1 \
               RETURNING key), \
             cleared AS (\
               UPDATE campaigns SET flights_until = NULL \
               WHERE id = ANY (ARRAY(SELECT id FROM due))) \
             SELECT COUNT(*) FROM closed",
        )
        .bind(micros(now))
        .fetch_one(&self.pool)
        .await
        .context(DOING)?;
        // COUNT(*) is never negative.
        Ok(closed.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn the_queue_is_vacuumed_after_its_rows_one_vacuum_at_a_time_and_not_too_often() {
        let upkeep = QueueUpkeep::new(10);
        assert!(upkeep.changed(9).is_none(), "9 rows of 10");
        let first = upkeep.changed(1).expect("due at 10 rows");
        assert!(upkeep.changed(100).is_none(), "one vacuum at a time");
        drop(first);
        upkeep.lock().not_before = Some(Instant::now() + Duration::from_secs(3600));
        assert!(upkeep.changed(1).is_none(), "not again within the gap");
        upkeep.lock().not_before = None;
        let second = upkeep.changed(1);
        assert!(second.is_some(), "the rows counted meanwhile make it due");
        drop(second);
        upkeep.lock().not_before = None;
        assert!(upkeep.changed(9).is_none(), "rows start again from 0");
        assert!(upkeep.changed(1).is_some(), "and count to 10 again");

        let never = QueueUpkeep::new(0);
        assert!(never.changed(u64::MAX).is_none());
    }

    #[test]
    fn a_vacuum_that_took_long_puts_the_next_one_further_off() {
        let upkeep = QueueUpkeep::new(1);
        let mut vacuuming = upkeep.changed(1).unwrap();
        vacuuming.started -= Duration::from_secs(3);
        drop(vacuuming);
        let wait = upkeep.lock().not_before.unwrap() - Instant::now();
        assert!(wait > Duration::from_secs(25), "{wait:?}");
    }
}
