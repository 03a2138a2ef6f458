//! [`OutboxStore`] for [`SqliteStore`]: the durable job queue.
//!
//! A claim is one `UPDATE ... WHERE rowid IN (SELECT ...) RETURNING` statement, which SQLite
//! runs under the write lock from its first step, or for many jobs one `BEGIN IMMEDIATE`
//! transaction (see `CLAIM_PACKED`), which holds that lock from its start; so two workers (in
//! one process or two) never claim the same job. Worker writes are conditional on
//! `state = 'claimed' AND claim_token = ?`, so a worker whose lease expired cannot overwrite its
//! successor's work (a result also lands on a job an abort cancelled while that claim's send
//! was in flight: see `OutboxStore::cancel_campaign_jobs`).
//!
//! # Claims are not flushed by themselves
//!
//! At [`Durability::Full`](super::Durability::Full) every write is flushed to the disk before
//! it returns, except a claim: its commit goes to the WAL file without a flush of its own. The
//! outbox's guarantees do not need one:
//!
//! - The WAL is one append-only file, and a flush makes everything written to it before durable.
//!   A claim therefore reaches the disk with the next flushed commit on the file, and the
//!   claimed job's own next write is one: `record_attempt` (which the worker runs before the
//!   transport call) or `update_job`/`update_jobs`. No send can happen on a claim that a power
//!   cut could still undo.
//! - Only a power cut or an operating system crash undoes an unflushed commit (a killed process
//!   leaves it in the operating system's cache, which the next open reads). Either one stops
//!   every worker that could hold the lost claim, since SQLite's WAL mode only shares a file
//!   between processes of one machine. The job is then as it was before the claim: pending, or
//!   held by an older claim that has expired, which is the state a worker that crashed right
//!   after claiming leaves too, minus the wait for the lease.
//! - The claim token comes back to its old value with the job, and the next claim counts it on
//!   again, so two claims may carry the same token across a power cut; but the only holder of
//!   the lost one stopped with the machine, and tokens live nowhere else.
//! - Nothing is lost or done twice: a job whose send was recorded (`send_in_flight`) has a
//!   flushed claim, and a crash between the transport call and the update is recognised through
//!   that outcome and the idempotency key exactly as without this rule.
//!
//! So a job handled alone costs two flushes (its attempt and its update) instead of three, and
//! fewer when several workers share commits (see `group`); a batch costs one for its
//! `update_jobs`, plus its attempts.
//!
//! # Claim tokens name the job's row
//!
//! A claim token is the job's rowid above a count of its claims (see `next_token!`), so a
//! batched completion finds each job at its row instead of looking its key up in the key index,
//! and falls back to the key when the row there is not the job (see `update_sql`).

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use mia_core::{
    Campaign, CampaignId, ContactId, DeadLetterAction, Error, IdempotencyKey, Job, JobCounts,
    JobUpdate, NewJob, OutboxStore, Result, VariantId,
};
use sqlx::sqlite::SqliteRow;

use super::SqliteStore;
use super::batch::Insert;
use super::campaigns;
use super::group::{self, Pending, Write};
use crate::codec::{from_micros, micros};
use crate::error::Context;
use crate::rows::{self, JobChange, job_columns as columns, job_state, token};

/// New jobs: no attempts, claims or outcome yet (but the skip reason of a skipped one).
const INSERT: Insert = Insert {
    head: concat!("INSERT INTO outbox (", columns!(), ")"),
    row: "(?, ?, ?, ?, ?, ?, ?, 0, 0, NULL, NULL, NULL, NULL, NULL, ?, ?)",
    tail: "ON CONFLICT (key) DO NOTHING",
};

/// The batch without later repeats of a key (the first one is kept, as `ON CONFLICT DO NOTHING`
/// keeps it), in claim order: by due time, then key.
///
/// Rows get their rowids, and so their places in the table's pages, in insertion order. Claims
/// take jobs by due time and key, so jobs inserted in that order sit side by side: a claim of
/// 500 jobs and their completion rewrite a few dozen pages instead of one page per job, which
/// at [`Durability::Full`](super::Durability::Full) is what a batch's flushed commit costs.
fn in_claim_order(jobs: &[NewJob]) -> Vec<&NewJob> {
    let mut seen = std::collections::HashSet::with_capacity(jobs.len());
    let mut kept: Vec<&NewJob> = jobs.iter().filter(|j| seen.insert(&j.key)).collect();
    kept.sort_unstable_by(|a, b| (a.due_at, &a.key).cmp(&(b.due_at, &b.key)));
    kept
}

/// Inserts the jobs whose keys are new into `campaign`, in claim order; returns how many.
async fn insert_jobs(
    conn: &mut sqlx::SqliteConnection,
    campaign: &CampaignId,
    jobs: &[NewJob],
    now: Timestamp,
) -> Result<u64, crate::error::StoreError> {
    INSERT
        .run(conn, &in_claim_order(jobs), |query, new| {
            let state = rows::new_job_state(new);
            Ok(query
                .bind(new.key.as_str())
                .bind(campaign.as_str())
                .bind(new.contact.as_str())
                .bind(new.purpose.as_str())
                .bind(i64::from(new.step))
                .bind(state.as_str())
                .bind(micros(new.due_at))
                .bind(new.skipped.as_deref())
                .bind(micros(now)))
        })
        .await
}

/// The claim token a claim gives a job: the job's rowid (its low 38 bits) above a count of
/// its claims (the low 24 bits). Tokens fence writes, so all a claim needs is a token that no
/// earlier claim of the job held: the count changes with every claim and comes back to a value
/// only after 2^24 claims of the job (a token an older build issued, `claim_token + 1`, is
/// counted on from, and an older build's `+ 1` on a token of this form counts it on too). The
/// rowid lets a batched completion go to the job's row straight away instead of through the key
/// index (see [`update_sql`], which checks that the row there is still the job). Tokens stay
/// below 2^62, so even an older build's `+ 1` keeps them within the signed 64-bit column.
macro_rules! next_token {
    () => {
        "((rowid & 0x3FFFFFFFFF) << 24) | (((claim_token & 0xFFFFFF) + 1) & 0xFFFFFF)"
    };
}

/// The rowid that claim token `$token` names (see `next_token!`).
macro_rules! token_row {
    ($token:literal) => {
        concat!("(", $token, " >> 24)")
    };
}

/// Rows per statement of a batched update: as many statements of the largest size as fill,
/// then one statement of the smallest size that holds the rest, padded with rows that match no
/// job (their key is NULL). Each size has a few statement texts (with or without `RETURNING`,
/// with or without a `synchronous` pragma in front), kept prepared by the driver, and a batch
/// of `n` updates takes `ceil(n / 256)` statements: up to 256 are one statement, which is
/// atomic by itself and needs no transaction (each statement is a round trip to the
/// connection's thread, and a transaction adds two).
///
/// The sizes double, so a statement is always less than half padding. A padding row is not
/// free: its binds and its two lookups, which find nothing, cost about 8,000 to 9,000 CPU
/// instructions, a quarter or more of what a job's completion costs. With sizes of 1, 4, 32
/// and 256, the 64 results of a claim of 64 jobs (the agent's default batch) went out in a
/// statement of 256 rows (see the mia-store README for the figures).
const UPDATE_SIZES: [usize; 9] = [1, 2, 4, 8, 16, 32, 64, 128, 256];

/// The placeholders of one row of a batched update (see [`update_sql`]).
const UPDATE_ROW: &str = "(?, ?, ?, ?, ?, ?, ?, ?, ?)";

/// The values a row of a batched update binds: one for each placeholder of [`UPDATE_ROW`].
const UPDATE_BINDS: usize = 9;

// Sizes ascend (the smallest that holds a chunk is the first found), and the largest
// statement stays within SQLite's limit of 32,766 bound parameters.
const _: () = {
    let mut i = 1;
    while i < UPDATE_SIZES.len() {
        assert!(UPDATE_SIZES[i - 1] < UPDATE_SIZES[i]);
        i += 1;
    }
    assert!(UPDATE_SIZES[UPDATE_SIZES.len() - 1] * UPDATE_BINDS <= 32_766);
};

/// The largest of [`UPDATE_SIZES`].
const UPDATE_MAX: usize = UPDATE_SIZES[UPDATE_SIZES.len() - 1];

/// One job of a batched update: its key (and its campaign, when the caller knows it), the claim
/// that must still hold it, what changes, and the time to stamp it with.
struct UpdateRow<'a> {
    key: &'a str,
    campaign: Option<&'a str>,
    claim_token: u64,
    update: &'a JobUpdate,
    now: Timestamp,
}

/// A batched update of `rows` claimed jobs: the new columns of each job come in as a `VALUES`
/// list (9 binds a row), and only the jobs still held with the given claim token change.
///
/// With `returning`, it returns the keys it changed. Without, it is `UPDATE OR IGNORE`, which
/// cannot abort halfway and so needs no statement journal (a copy of every page it changes,
/// kept in case it does); a row it would ignore (none can break a constraint, but if one did)
/// makes the count fall short, and [`update_rows`] then runs the plain statement, which
/// reports the error.
///
/// Each job is found at the rowid its claim token names (see `next_token!`), if the row
/// there is the job (same key); otherwise (a token that an older build issued, a row that
/// `VACUUM` renumbered) by its key in the primary key's index. A seek by rowid is one
/// walk down the table's b-tree; a seek by key walks the key index first, and keys are
/// hashes, so a batch's lookups land all over that index (see the mia-store README for the
/// figures). Both lookups are correlated subqueries of one `COALESCE`, which stops at the first
/// that finds the row, so the key index is only read for a job the rowid misses.
///
/// A row of `u` that names a campaign also requires the job to be in it (see
/// `OutboxStore::update_jobs`): a job named under another campaign is not found. A queued
/// `update_job` names none.
fn update_sql(rows: usize, returning: bool) -> String {
    let mut sql = String::with_capacity(600 + rows * (UPDATE_ROW.len() + 2));
    sql.push_str(
        "WITH u (key, claim_token, state, message_id, outcome, due_at, add_attempts, \
         updated_at, campaign) AS (VALUES ",
    );
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(UPDATE_ROW);
    }
    sql.push_str(match returning {
        true => ") UPDATE outbox",
        false => ") UPDATE OR IGNORE outbox",
    });
    // A job cancelled by an abort while its send was in flight takes a send and stays
    // cancelled otherwise (see `OutboxStore::cancel_campaign_jobs`); every right-hand side
    // reads the row as it was.
    sql.push_str(
        " SET state = CASE WHEN outbox.state = 'claimed' OR u.state = 'sent' THEN u.state \
           ELSE 'cancelled' END, \
         lease_until = NULL, updated_at = u.updated_at, \
         message_id = COALESCE(u.message_id, outbox.message_id), \
         outcome = CASE WHEN outbox.state = 'claimed' OR u.state = 'sent' THEN u.outcome \
           ELSE 'campaign_aborted' END, \
         due_at = CASE WHEN outbox.state = 'claimed' THEN COALESCE(u.due_at, outbox.due_at) \
           ELSE outbox.due_at END, \
         attempts = CASE WHEN outbox.state = 'claimed' THEN outbox.attempts + u.add_attempts \
           ELSE outbox.attempts END \
         FROM u WHERE outbox.rowid = COALESCE(\
           (SELECT by_row.rowid FROM outbox by_row WHERE by_row.rowid = ",
    );
    sql.push_str(token_row!("u.claim_token"));
    sql.push_str(
        " AND by_row.key = u.key), \
           (SELECT by_key.rowid FROM outbox by_key WHERE by_key.key = u.key)) \
         AND outbox.key = u.key AND outbox.claim_token = u.claim_token \
         AND (outbox.state = 'claimed' \
           OR (outbox.state = 'cancelled' AND outbox.outcome = 'send_in_flight')) \
         AND (u.campaign IS NULL OR outbox.campaign = u.campaign)",
    );
    if returning {
        sql.push_str(" RETURNING key");
    }
    sql
}

/// The statements of a batched update of `rows`, `UPDATE_MAX` rows at most each, with a
/// `sync` level set in front of each (outside a transaction, whose `BEGIN` sets it), and
/// `RETURNING key` when `returning`. A row that names its campaign checks the job's (see
/// [`update_sql`]).
fn update_queries<'q>(
    rows: &'q [UpdateRow<'q>],
    sync: Option<super::Flush>,
    returning: bool,
) -> impl Iterator<Item = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>> {
    rows.chunks(UPDATE_MAX).map(move |chunk| {
        let size = statement_rows(chunk.len());
        // Built from the constant parts above only; every value is bound.
        let mut sql = sync
            .map(super::Flush::pragma)
            .unwrap_or_default()
            .to_owned();
        sql.push_str(&update_sql(size, returning));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for row in chunk {
            let change = JobChange::from(row.update);
            query = query
                .bind(row.key)
                .bind(token(row.claim_token))
                .bind(change.state.as_str())
                .bind(change.message_id)
                .bind(change.outcome)
                .bind(change.due_at)
                .bind(change.add_attempts)
                .bind(micros(row.now))
                .bind(row.campaign);
        }
        for _ in chunk.len()..size {
            // `outbox.key = NULL` is never true: the row changes nothing.
            query = query
                .bind(None::<&str>)
                .bind(0_i64)
                .bind("")
                .bind(None::<i64>)
                .bind(None::<&str>)
                .bind(None::<i64>)
                .bind(0_i64)
                .bind(0_i64)
                .bind(None::<&str>);
        }
        query
    })
}

/// Applies `rows` on `conn` (inside a transaction when it takes more than one statement);
/// returns the keys that changed. A `sync` level is set in front of each statement (outside a
/// transaction, whose `BEGIN` sets it).
async fn update_batch(
    conn: &mut sqlx::SqliteConnection,
    rows: &[UpdateRow<'_>],
    sync: Option<super::Flush>,
) -> Result<Vec<String>, crate::error::StoreError> {
    use sqlx::Row;
    let mut changed = Vec::with_capacity(rows.len());
    for query in update_queries(rows, sync, true) {
        for row in query.fetch_all(&mut *conn).await? {
            changed.push(row.try_get(0)?);
        }
    }
    Ok(changed)
}

/// Which jobs of a batched update changed.
enum Changed {
    /// Every one of them (the usual answer).
    All,
    /// These keys only.
    Only(Vec<String>),
}

/// Applies `rows` on the hot connection `conn`, setting its `synchronous` level to `set`
/// first (if any): one statement alone, more in one transaction.
///
/// A batch of several statements counts the jobs it changed rather than returning their keys:
/// a row returned is a message from the driver's thread, and for a batch of 500 those cost a
/// tenth of the update. When the count falls short (a claim was lost), the transaction is
/// rolled back and run again returning the keys, so the answer is exact either way.
async fn update_rows(
    conn: &mut sqlx::SqliteConnection,
    rows: &[UpdateRow<'_>],
    set: Option<super::Flush>,
) -> Result<Changed, crate::error::StoreError> {
    use sqlx::Connection;
    if update_statements(rows.len()) <= 1 {
        // One statement is atomic on its own.
        return update_batch(conn, rows, set).await.map(Changed::Only);
    }
    let mut tx = conn.begin_with(super::Flush::begin_setting(set)).await?;
    let mut counted = 0;
    for query in update_queries(rows, None, false) {
        counted += query.execute(&mut *tx).await?.rows_affected();
    }
    if counted == rows.len() as u64 {
        tx.commit().await?;
        return Ok(Changed::All);
    }
    tx.rollback().await?;
    // `synchronous` is not part of a transaction: the level set above still holds.
    let mut tx = conn.begin_with(super::Flush::begin_setting(None)).await?;
    let changed = update_batch(&mut tx, rows, None).await?;
    tx.commit().await?;
    Ok(Changed::Only(changed))
}

/// Releases the job `key` if it is held: `approve`d, it is pending again and due at `now`;
/// rejected, it is skipped with the outcome `rejected_by_reviewer`. Returns whether it was
/// held.
pub(super) async fn release<'c>(
    conn: impl sqlx::Executor<'c, Database = sqlx::Sqlite>,
    key: &IdempotencyKey,
    approve: bool,
    now: Timestamp,
) -> Result<bool, crate::error::StoreError> {
    let query = if approve {
        sqlx::query(
            "UPDATE outbox SET state = 'pending', due_at = ?1, updated_at = ?1 \
             WHERE key = ?2 AND state = 'held'",
        )
    } else {
        sqlx::query(
            "UPDATE outbox SET state = 'skipped', outcome = 'rejected_by_reviewer', \
             updated_at = ?1 WHERE key = ?2 AND state = 'held'",
        )
    };
    let released = query
        .bind(micros(now))
        .bind(key.as_str())
        .execute(conn)
        .await?
        .rows_affected();
    Ok(released > 0)
}

/// Records a send attempt on a claimed job (see
/// [`OutboxStore::record_attempt`](mia_core::OutboxStore::record_attempt)); every right-hand
/// side sees the row as it was, so the first variant sticks.
macro_rules! attempt_sql {
    () => {
        "UPDATE outbox SET variant = COALESCE(variant, ?1), \
         propensity = CASE WHEN variant IS NULL THEN ?2 ELSE propensity END, \
         updated_at = ?3, outcome = 'send_in_flight' \
         WHERE key = ?4 AND state = 'claimed' AND claim_token = ?5 \
         AND EXISTS (SELECT 1 FROM campaigns c WHERE c.id = outbox.campaign \
           AND c.state = 'running') RETURNING 1"
    };
}

/// Writes a group of queued writes on the hot connection `conn`, setting its `synchronous`
/// level to `set` first (if any): one statement alone, more in one transaction, in rounds in
/// which no job appears twice (see [`group::rounds`]). Returns whether each write changed its
/// job, by index.
async fn write_group(
    conn: &mut sqlx::SqliteConnection,
    group: &[Pending],
    set: Option<super::Flush>,
) -> Result<Vec<bool>, crate::error::StoreError> {
    use sqlx::Connection;
    let mut changed = vec![false; group.len()];
    let rounds = group::rounds(group);
    if let [round] = rounds.as_slice()
        && round_statements(group, round) <= 1
    {
        // One statement is atomic on its own.
        let done = write_round(conn, group, round, set).await?;
        for &i in round {
            changed[i] = done.contains(&group[i].id);
        }
        return Ok(changed);
    }
    let mut tx = conn.begin_with(super::Flush::begin_setting(set)).await?;
    for round in rounds {
        let done = write_round(&mut tx, group, &round, None).await?;
        for i in round {
            changed[i] = done.contains(&group[i].id);
        }
    }
    tx.commit().await?;
    Ok(changed)
}

/// How many statements [`write_round`] runs for the writes of `group` at `round`: one per
/// attempt, and those of one batched update for the updates.
fn round_statements(group: &[Pending], round: &[usize]) -> usize {
    let attempts = round
        .iter()
        .filter(|&&i| matches!(group[i].write, Write::Attempt { .. }))
        .count();
    attempts + update_statements(round.len() - attempts)
}

/// Writes the writes of `group` at `round` (no job twice); returns the ids of those that
/// changed their job. A `sync` level is set in front of each statement (outside a
/// transaction).
async fn write_round(
    conn: &mut sqlx::SqliteConnection,
    group: &[Pending],
    round: &[usize],
    sync: Option<super::Flush>,
) -> Result<std::collections::HashSet<u64>, crate::error::StoreError> {
    let mut done = std::collections::HashSet::with_capacity(round.len());
    let mut updates = Vec::with_capacity(round.len());
    let mut ids = std::collections::HashMap::with_capacity(round.len());
    for p in round.iter().map(|&i| &group[i]) {
        match &p.write {
            Write::Update(update) => {
                ids.insert(p.key.as_str(), p.id);
                updates.push(UpdateRow {
                    key: p.key.as_str(),
                    campaign: None,
                    claim_token: p.claim_token,
                    update,
                    now: p.now,
                });
            }
            Write::Attempt {
                variant,
                propensity,
            } => {
                let sql = match sync {
                    Some(sync) => with_sync!(sync, attempt_sql!()),
                    None => attempt_sql!(),
                };
                let updated = sqlx::query_scalar::<_, i64>(sql)
                    .bind(variant.as_str())
                    .bind(propensity)
                    .bind(micros(p.now))
                    .bind(p.key.as_str())
                    .bind(token(p.claim_token))
                    .fetch_optional(&mut *conn)
                    .await?;
                if updated.is_some() {
                    done.insert(p.id);
                }
            }
        }
    }
    if !updates.is_empty() {
        for key in update_batch(conn, &updates, sync).await? {
            done.extend(ids.get(key.as_str()));
        }
    }
    Ok(done)
}

/// The rows of the statement that updates `n` jobs (at most [`UPDATE_MAX`]): the smallest of
/// [`UPDATE_SIZES`] that holds them.
fn statement_rows(n: usize) -> usize {
    UPDATE_SIZES
        .into_iter()
        .find(|&size| size >= n)
        .unwrap_or(UPDATE_MAX)
}

/// How many statements [`update_batch`] runs for `n` updates.
fn update_statements(n: usize) -> usize {
    n.div_ceil(UPDATE_MAX)
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

/// The keys of `updates` that did not change, in input order.
fn lost_updates(updates: &[(&Job, JobUpdate)], changed: Changed) -> Vec<IdempotencyKey> {
    let changed = match changed {
        Changed::Only(changed) if changed.len() < updates.len() => changed,
        Changed::All | Changed::Only(_) => return Vec::new(),
    };
    let changed: std::collections::HashSet<String> = changed.into_iter().collect();
    updates
        .iter()
        .filter(|(job, _)| !changed.contains(job.key.as_str()))
        .map(|(job, _)| job.key.clone())
        .collect()
}

/// Rows of `doing`'s query, decoded.
fn decode_all(found: &[SqliteRow], doing: &'static str) -> Result<Vec<Job>> {
    rows::all(found, rows::job).context(doing)
}

impl SqliteStore {
    /// Writes `write` to the claimed job `key` with the group commit (see `group`): queues
    /// it, waits for the hot connection, and whoever gets the connection writes everything
    /// queued by then in one transaction and answers each caller.
    async fn grouped(
        &self,
        key: &IdempotencyKey,
        claim_token: u64,
        write: Write,
        now: Timestamp,
        doing: &'static str,
    ) -> Result<()> {
        let (ticket, answer) = self.updates.push(key, claim_token, write, now);
        let conn = match self.hot.acquire().await {
            Ok(conn) => Some(conn),
            // No connection (a closed store, a connection that could not be opened again): the
            // write is not done if it is still queued; if another call took it, it is done or
            // being done, and answered.
            Err(e) if self.updates.withdraw(&ticket) => return Err(e).context(doing),
            Err(_) => None,
        };
        if let Some(mut conn) = conn {
            let taken = self.updates.take();
            if !taken.is_empty() {
                let want = self.sync(false);
                let set = conn.set_for(want);
                let result = write_group(&mut conn, &taken, set).await;
                conn.settled(want, &result);
                let result = result.map_err(std::sync::Arc::new);
                for (i, p) in taken.into_iter().enumerate() {
                    let reply = match &result {
                        Ok(changed) => Ok(changed[i]),
                        Err(e) => Err(std::sync::Arc::clone(e)),
                    };
                    // The caller may have stopped waiting; its write stands all the same.
                    let _ = p.reply.send(reply);
                }
            }
        }
        // Ours was queued before this call took the queue (or found it taken), so this call
        // or another one took it; that one answers once its transaction is over (or drops the
        // reply if it was cancelled before).
        let reply = answer.await.ok();
        drop(ticket);
        match reply {
            Some(Ok(true)) => Ok(()),
            Some(Ok(false)) => Err(self.lost(key, claim_token, doing).await),
            Some(Err(e)) => Err(Error::store(format!("{doing}: {e}"), e.is_retryable(), e)),
            // The call writing the group stopped before it answered: before its commit, so
            // nothing was written, or (rarely) after it. Tried again, an update then answers
            // `LeaseLost` (a worker drops the job it no longer holds) and an attempt succeeds
            // again, keeping the first variant.
            None => Err(Error::store(
                format!("{doing}: the call writing its group was cancelled before it answered"),
                true,
                "group commit cancelled",
            )),
        }
    }

    /// Why a conditional write on `key` under `claim_token` matched no row (see
    /// [`rows::missed`]).
    async fn lost(&self, key: &IdempotencyKey, claim_token: u64, doing: &'static str) -> Error {
        let found = sqlx::query_as::<_, rows::Missed>(
            "SELECT o.state = 'claimed' AND o.claim_token = ?, o.campaign, c.state \
             FROM outbox o LEFT JOIN campaigns c ON c.id = o.campaign WHERE o.key = ?",
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

/// The jobs a claim takes, as `(id, due_at, key)` rows in claim order, at most `$limit`: due
/// pending jobs and expired leases, of running campaigns (see [`OutboxStore::claim`] and the
/// comment there). `$now` and `$limit` are the placeholders to use.
macro_rules! candidates_sql {
    ($now:literal, $limit:literal) => {
        concat!(
            "SELECT rowid AS id, due_at, key FROM outbox o \
             WHERE state = 'pending' AND due_at <= ",
            $now,
            " AND EXISTS (\
               SELECT 1 FROM campaigns c WHERE c.id = o.campaign AND c.state = 'running') \
             UNION ALL \
             SELECT rowid AS id, due_at, key FROM outbox o \
             WHERE state = 'claimed' AND lease_until <= ",
            $now,
            " AND EXISTS (\
               SELECT 1 FROM campaigns c WHERE c.id = o.campaign AND c.state = 'running') \
             ORDER BY due_at, key LIMIT (",
            $limit,
            " + 0)"
        )
    };
}

/// A claim (see [`OutboxStore::claim`] and the comment there):
/// `?1` the lease's end, `?2` the worker, `?3` now, `?4` the limit.
macro_rules! claim_sql {
    () => {
        concat!(
            "UPDATE outbox SET state = 'claimed', claim_token = ",
            next_token!(),
            ", lease_until = ?1, worker = ?2, updated_at = ?3 \
             WHERE rowid IN (SELECT id FROM (",
            candidates_sql!("?3", "?4"),
            ")) RETURNING ",
            columns!()
        )
    };
}

/// The columns of [`columns!`] packed into one JSON array per job, for
/// [`JsonRow`](super::codec::JsonRow), with `NULL` for `propensity`: reals are not packed (see
/// there); the claim reads the few that are set as rows of their own.
macro_rules! packed_columns {
    () => {
        "key, campaign, contact, purpose, step, state, due_at, attempts, claim_token, \
         lease_until, worker, variant, NULL, message_id, outcome, updated_at"
    };
}

/// A claim of many jobs, in one transaction: the candidates go to a temporary table, the
/// claim updates them, and the claimed jobs come back packed into one JSON value (one message
/// from the driver's thread, where `RETURNING` sends one per job: for 500 jobs that took half
/// the claim's time), followed by a row `(key, propensity)` for each claimed job that has a
/// propensity (an expired lease whose attempt was recorded: usually none). The `?` are, in
/// order: now, now, the limit, the lease's end, the worker, now. Temporary tables belong to the
/// connection and take part in its transactions.
const CLAIM_PACKED: &str = concat!(
    "CREATE TEMP TABLE IF NOT EXISTS claiming (id INTEGER PRIMARY KEY); \
     DELETE FROM temp.claiming; \
     INSERT INTO temp.claiming SELECT id FROM (",
    candidates_sql!("?", "?"),
    "); UPDATE outbox SET state = 'claimed', claim_token = ",
    next_token!(),
    ", lease_until = ?, worker = ?, updated_at = ? WHERE rowid IN temp.claiming; \
     SELECT json_group_array(json_array(",
    packed_columns!(),
    ")) FROM outbox WHERE rowid IN temp.claiming; \
     SELECT key, propensity FROM outbox \
     WHERE rowid IN temp.claiming AND propensity IS NOT NULL"
);

/// Claims of at least this many jobs take [`CLAIM_PACKED`]; smaller ones the single statement
/// of [`claim_sql!`], whose rows cost less than the two round trips of a transaction.
const PACKED_FROM: usize = 16;

/// The column names of [`columns!`], in order.
fn column_names() -> Vec<&'static str> {
    columns!().split(", ").collect()
}

/// A claim on `conn`, setting `set` first (if any): `packed` with [`CLAIM_PACKED`] in a
/// transaction, or else in one statement `RETURNING` the jobs.
async fn claim_on(
    conn: &mut sqlx::SqliteConnection,
    set: Option<super::Flush>,
    packed: bool,
    worker: &str,
    now: Timestamp,
    lease_until: Timestamp,
    limit: i64,
) -> Result<Vec<Job>, crate::error::StoreError> {
    use sqlx::{Connection, Row};
    if !packed {
        let sql = match set {
            Some(set) => with_sync!(set, claim_sql!()),
            None => claim_sql!(),
        };
        let rows = sqlx::query(sql)
            .bind(micros(lease_until))
            .bind(worker)
            .bind(micros(now))
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?;
        return rows::all(&rows, rows::job);
    }
    let mut tx = conn.begin_with(super::Flush::begin_setting(set)).await?;
    let found = sqlx::query(CLAIM_PACKED)
        .bind(micros(now))
        .bind(micros(now))
        .bind(limit)
        .bind(micros(lease_until))
        .bind(worker)
        .bind(micros(now))
        .fetch_all(&mut *tx)
        .await?;
    // Decoded before the commit: a damaged row rolls the claim back instead of leaving jobs
    // claimed that nobody got.
    let Some((packed, propensities)) = found.split_first() else {
        return Err(crate::error::StoreError::Corrupt(
            "a claim returned no packed jobs".into(),
        ));
    };
    let packed: String = packed.try_get(0)?;
    let mut jobs = super::codec::packed_rows(&packed, &column_names(), |row| rows::job(row))?;
    if !propensities.is_empty() {
        let mut by_key = std::collections::HashMap::with_capacity(propensities.len());
        for row in propensities {
            by_key.insert(row.try_get::<String, _>(0)?, row.try_get::<f64, _>(1)?);
        }
        for job in &mut jobs {
            job.propensity = by_key.get(job.key.as_str()).copied();
        }
    }
    tx.commit().await?;
    Ok(jobs)
}

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn schedule(&self, campaign: &Campaign, jobs: &[NewJob]) -> Result<u64> {
        const DOING: &str = "schedule jobs";
        let mut tx = self.begin_write().await.context(DOING)?;
        campaigns::save(&mut *tx, campaign, DOING).await?;
        let inserted = insert_jobs(&mut tx, &campaign.id, jobs, campaign.updated_at)
            .await
            .context(DOING)?;
        tx.commit().await.context(DOING)?;
        Ok(inserted)
    }

    async fn enqueue(&self, campaign: &CampaignId, jobs: &[NewJob], now: Timestamp) -> Result<u64> {
        const DOING: &str = "enqueue jobs";
        let mut tx = self.begin_write().await.context(DOING)?;
        let exists =
            sqlx::query_scalar::<_, i64>("SELECT EXISTS (SELECT 1 FROM campaigns WHERE id = ?)")
                .bind(campaign.as_str())
                .fetch_one(&mut *tx)
                .await
                .context(DOING)?;
        if exists == 0 {
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
        // The two branches walk their partial indexes (`outbox_pending` in claim order,
        // `outbox_leases` over the expired leases only, usually none) and SQLite merges them,
        // stopping at `limit`: a claim costs O(limit), not a sort of every due job. A campaign
        // is checked per candidate row (two index probes), which costs less than building the
        // list of running campaigns for every claim. Rows are picked by rowid, with no second
        // lookup by key. The limit is `(?4 + 0)`, not `?4`: SQLite reads a bare bound LIMIT
        // while planning and then marks the statement to be compiled again whenever the value
        // is bound, which is every call (a third of a one-job claim's time went to it).
        let lease_until = now
            .checked_add(lease)
            .map_err(|e| Error::invalid(e.to_string()))?;
        let mut conn = self.hot.acquire().await.context(DOING)?;
        // Not flushed by itself at `Durability::Full` (see there): the claim reaches the disk
        // with the next flushed commit, the job's own `record_attempt` or update at the latest.
        let want = self.sync(true);
        let set = conn.set_for(want);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let packed = limit >= PACKED_FROM as i64;
        let claimed = claim_on(&mut conn, set, packed, worker, now, lease_until, limit).await;
        conn.settled(want, &claimed);
        drop(conn);
        let mut jobs = claimed.context(DOING)?;
        // Neither RETURNING nor json_group_array gives rows in a set order.
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
        let write = Write::Attempt {
            variant: variant.clone(),
            propensity,
        };
        self.grouped(key, claim_token, write, now, "record a send attempt")
            .await
    }

    async fn update_job(
        &self,
        key: &IdempotencyKey,
        claim_token: u64,
        update: &JobUpdate,
        now: Timestamp,
    ) -> Result<()> {
        let write = Write::Update(update.clone());
        self.grouped(key, claim_token, write, now, "update a job")
            .await
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
        let rows: Vec<UpdateRow<'_>> = updates
            .iter()
            .map(|(job, update)| UpdateRow {
                key: job.key.as_str(),
                campaign: Some(job.campaign.as_str()),
                claim_token: job.claim_token,
                update,
                now,
            })
            .collect();
        let mut conn = self.hot.acquire().await.context(DOING)?;
        let want = self.sync(false);
        let set = conn.set_for(want);
        let changed = update_rows(&mut conn, &rows, set).await;
        conn.settled(want, &changed);
        let lost = lost_updates(updates, changed.context(DOING)?);
        super::subjects::reassign_lost(&mut conn, updates, &lost).await;
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
        let query = match action {
            DeadLetterAction::Requeue { due_at } => sqlx::query(
                "UPDATE outbox SET state = 'pending', due_at = ?3, attempts = 0, updated_at = ?1 \
                 WHERE key = ?2 AND state = 'dead_letter'",
            )
            .bind(micros(now))
            .bind(key.as_str())
            .bind(micros(due_at)),
            DeadLetterAction::Discard => sqlx::query(
                "UPDATE outbox SET state = 'cancelled', \
                 outcome = 'discarded: ' || coalesce(outcome, ''), updated_at = ?1 \
                 WHERE key = ?2 AND state = 'dead_letter'",
            )
            .bind(micros(now))
            .bind(key.as_str()),
        };
        let updated = query
            .execute(&self.pool)
            .await
            .context(DOING)?
            .rows_affected();
        if updated == 0 {
            return Err(Error::not_found("dead letter", key));
        }
        Ok(())
    }

    async fn job(&self, key: &IdempotencyKey) -> Result<Option<Job>> {
        const DOING: &str = "read a job";
        sqlx::query(concat!("SELECT ", columns!(), " FROM outbox WHERE key = ?"))
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
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM outbox WHERE campaign = ? ORDER BY key"
        ))
        .bind(campaign.as_str())
        .fetch_all(&self.pool)
        .await
        .context(DOING)?;
        decode_all(&rows, DOING)
    }

    async fn jobs_page(
        &self,
        campaign: &CampaignId,
        after: Option<&IdempotencyKey>,
        limit: usize,
    ) -> Result<Vec<Job>> {
        const DOING: &str = "read a page of a campaign's jobs";
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // Two texts rather than `(? IS NULL OR key > ?)`, which would keep SQLite from
        // starting the index range at `after`.
        let text = match after {
            None => concat!(
                "SELECT ",
                columns!(),
                " FROM outbox WHERE campaign = ?1 ORDER BY key LIMIT ?2"
            ),
            Some(_) => concat!(
                "SELECT ",
                columns!(),
                " FROM outbox WHERE campaign = ?1 AND key > ?3 ORDER BY key LIMIT ?2"
            ),
        };
        let mut query = sqlx::query(text).bind(campaign.as_str()).bind(limit);
        if let Some(after) = after {
            query = query.bind(after.as_str());
        }
        let rows = query.fetch_all(&self.pool).await.context(DOING)?;
        decode_all(&rows, DOING)
    }

    async fn existing_keys(&self, keys: &[IdempotencyKey]) -> Result<Vec<IdempotencyKey>> {
        const DOING: &str = "look up job keys";
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        // One statement for any number of keys: they come in as one JSON array.
        let found: Vec<(String,)> = sqlx::query_as(
            "SELECT key FROM outbox WHERE key IN (SELECT value FROM json_each(?)) ORDER BY key",
        )
        .bind(rows::key_list(keys))
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
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM outbox WHERE campaign = ? AND state = ? ORDER BY key"
        ))
        .bind(campaign.as_str())
        .bind(state.as_str())
        .fetch_all(&self.pool)
        .await
        .context(DOING)?;
        decode_all(&rows, DOING)
    }

    async fn job_groups(&self, campaign: &CampaignId) -> Result<Vec<mia_core::JobGroup>> {
        const DOING: &str = "group a campaign's jobs";
        let rows: Vec<rows::GroupRow> = sqlx::query_as(rows::job_groups_sql!("?1", "?2"))
            .bind(campaign.as_str())
            .bind(i64::from(mia_core::JourneyPosition::WITHIN_OCCURRENCE))
            .fetch_all(&self.pool)
            .await
            .context(DOING)?;
        rows::job_groups(rows).context(DOING)
    }

    async fn job_counts(&self, campaign: &CampaignId) -> Result<JobCounts> {
        const DOING: &str = "count a campaign's jobs";
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, COUNT(*) FROM outbox WHERE campaign = ? GROUP BY state")
                .bind(campaign.as_str())
                .fetch_all(&self.pool)
                .await
                .context(DOING)?;
        let mut counts = JobCounts::default();
        for (state, n) in rows {
            // COUNT(*) is never negative.
            counts.add(job_state(&state).context(DOING)?, n.unsigned_abs());
        }
        Ok(counts)
    }

    async fn job_by_message(&self, contact: &ContactId, message_id: i64) -> Result<Option<Job>> {
        const DOING: &str = "find a job by message";
        // Through `outbox_by_contact`, checking the message id on each of the contact's jobs
        // (schema version 9 explains why there is no index by message).
        sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM outbox WHERE contact = ? AND message_id = ? ORDER BY key LIMIT 1"
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
             WHERE contact = ? AND state = 'sent' AND updated_at >= ? \
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
             WHERE contact IN (SELECT value FROM json_each(?)) \
             AND state = 'sent' AND updated_at >= ? \
             ORDER BY contact, updated_at DESC",
        )
        .bind(rows::contact_list(contacts))
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
            "INSERT INTO daily_counters (key, day, used) VALUES (?, ?, 1) \
             ON CONFLICT (key, day) DO UPDATE SET used = daily_counters.used + 1 \
             WHERE daily_counters.used < ? RETURNING used",
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
        // The earliest pending job comes first in the (state, due_at) index; claimed jobs are
        // few, so their lease expiries are scanned.
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(t) FROM (\
               SELECT * FROM (\
                 SELECT o.due_at AS t FROM outbox o JOIN campaigns c ON c.id = o.campaign \
                 WHERE o.state = 'pending' AND c.state = 'running' \
                 ORDER BY o.due_at LIMIT 1) \
               UNION ALL \
               SELECT MIN(o.lease_until) FROM outbox o JOIN campaigns c ON c.id = o.campaign \
               WHERE o.state = 'claimed' AND c.state = 'running')",
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
        let mut tx = self.begin_write().await.context(DOING)?;
        // Jobs whose send is in flight under a live lease keep their outcome, and with it the
        // erased id of a contact erased meanwhile (`outcome` is not set, so the trigger of
        // schema version 8 does not run): their worker's result is still to come (see the
        // trait). The rest close with their outcome, and so do such jobs of an earlier call
        // whose lease ran out without a result.
        let flying: Vec<i64> = sqlx::query_scalar(
            "UPDATE outbox SET state = 'cancelled', updated_at = ?1 \
             WHERE campaign = ?2 AND state = 'claimed' AND outcome = 'send_in_flight' \
             AND lease_until > ?1 RETURNING lease_until",
        )
        .bind(micros(now))
        .bind(campaign.as_str())
        .fetch_all(&mut *tx)
        .await
        .context(DOING)?;
        let closed = sqlx::query(
            "UPDATE outbox SET state = 'cancelled', outcome = 'campaign_aborted', \
             lease_until = NULL, updated_at = ?1 \
             WHERE campaign = ?2 AND (state IN ('pending', 'claimed', 'held') \
               OR (state = 'cancelled' AND outcome = 'send_in_flight' AND lease_until <= ?1))",
        )
        .bind(micros(now))
        .bind(campaign.as_str())
        .execute(&mut *tx)
        .await
        .context(DOING)?
        .rows_affected();
        // What the sweep (`close_abandoned_sends`) looks for: when the last lease left to a
        // worker runs out. An earlier call's mark that has not passed stays (some of its sends
        // may still be out); one that has passed is done with, as the statement above closed
        // its sends.
        sqlx::query(
            "UPDATE campaigns SET flights_until = CASE WHEN flights_until > ?1 \
               THEN MAX(flights_until, COALESCE(?2, flights_until)) ELSE ?2 END \
             WHERE id = ?3",
        )
        .bind(micros(now))
        .bind(flying.iter().max().copied())
        .bind(campaign.as_str())
        .execute(&mut *tx)
        .await
        .context(DOING)?;
        tx.commit().await.context(DOING)?;
        Ok(flying.len() as u64 + closed)
    }

    async fn close_abandoned_sends(&self, now: Timestamp) -> Result<u64> {
        const DOING: &str = "close abandoned sends";
        // Most calls find nothing: a read, without the write lock, tells.
        let waiting: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM campaigns WHERE flights_until <= ?1 LIMIT 1")
                .bind(micros(now))
                .fetch_optional(&self.pool)
                .await
                .context(DOING)?;
        if waiting.is_none() {
            return Ok(0);
        }
        let mut tx = self.begin_write().await.context(DOING)?;
        // Every send in flight of such a campaign has a lease that ended by its
        // `flights_until`, so none is left to wait for.
        let closed = sqlx::query(
            "UPDATE outbox SET outcome = 'campaign_aborted', lease_until = NULL, updated_at = ?1 \
             WHERE campaign IN (SELECT id FROM campaigns WHERE flights_until <= ?1) \
             AND state = 'cancelled' AND outcome = 'send_in_flight' AND lease_until <= ?1",
        )
        .bind(micros(now))
        .execute(&mut *tx)
        .await
        .context(DOING)?
        .rows_affected();
        sqlx::query("UPDATE campaigns SET flights_until = NULL WHERE flights_until <= ?1")
            .bind(micros(now))
            .execute(&mut *tx)
            .await
            .context(DOING)?;
        tx.commit().await.context(DOING)?;
        Ok(closed)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use mia_core::{CampaignSpec, CampaignState, CampaignStore, JobState, Purpose};

    use super::*;
    use crate::{Durability, SqliteOptions};

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    /// However many updates a batch has, the statements `update_queries` builds for it hold
    /// them all, each is less than half padding, and a power of two up to 256 (the agent's
    /// default claim of 64 among them) needs no padding at all.
    #[test]
    fn batched_update_statements_are_never_mostly_padding() {
        use sqlx::Execute;
        assert_eq!(UPDATE_ROW.matches('?').count(), UPDATE_BINDS);
        let keys: Vec<String> = (0..1_000).map(|i| format!("k{i}")).collect();
        let sent = JobUpdate::Sent { message_id: 1 };
        for n in 1..=1_000 {
            let rows: Vec<UpdateRow<'_>> = keys[..n]
                .iter()
                .map(|key| UpdateRow {
                    key,
                    campaign: None,
                    claim_token: 1,
                    update: &sent,
                    now: t(0),
                })
                .collect();
            let sizes: Vec<usize> = update_queries(&rows, None, false)
                .map(|query| query.sql().as_str().matches(UPDATE_ROW).count())
                .collect();
            assert_eq!(sizes.len(), update_statements(n), "{n}: {sizes:?}");
            assert!(sizes.iter().sum::<usize>() >= n, "{n}: {sizes:?}");
            let (last, full) = sizes.split_last().unwrap();
            assert!(
                full.iter().all(|&size| size == UPDATE_MAX),
                "{n}: {sizes:?}"
            );
            let rest = n - full.len() * UPDATE_MAX;
            assert!(*last < 2 * rest, "{n}: {sizes:?}");
            if n.is_power_of_two() && n <= UPDATE_MAX {
                assert_eq!(sizes, [n]);
            }
        }
    }

    /// Checking lost jobs for an erased contact leaves the hot connection's prepared
    /// statements alone, whatever the number of lost jobs: that statement's text differs with
    /// it, and would push out the statements every batch runs.
    #[tokio::test]
    async fn lost_jobs_checks_take_no_place_among_prepared_statements() {
        use sqlx::Connection;
        let (_dir, store, jobs) = claimed(12).await;
        let sent = JobUpdate::Sent { message_id: 1 };
        let updates: Vec<(&Job, JobUpdate)> = jobs.iter().map(|job| (job, sent.clone())).collect();
        let mut conn = store.hot.acquire().await.unwrap();
        let cached = conn.cached_statements_size();
        for n in 1..=jobs.len() {
            let lost: Vec<IdempotencyKey> = jobs[..n].iter().map(|job| job.key.clone()).collect();
            super::super::subjects::reassign_lost(&mut conn, &updates, &lost).await;
        }
        assert_eq!(conn.cached_statements_size(), cached);
    }

    /// A file store at full durability with `n` claimed jobs of a running campaign.
    async fn claimed(n: i64) -> (tempfile::TempDir, SqliteStore, Vec<Job>) {
        claimed_with_lease(n, SignedDuration::from_mins(5)).await
    }

    /// [`claimed`], with leases of `lease` from `t(100)`.
    async fn claimed_with_lease(
        n: i64,
        lease: SignedDuration,
    ) -> (tempfile::TempDir, SqliteStore, Vec<Job>) {
        let (dir, store) = scheduled(n).await;
        let claimed = store.claim("w1", t(100), lease, n as usize).await.unwrap();
        assert_eq!(claimed.len() as i64, n);
        (dir, store, claimed)
    }

    /// A file store at full durability with `n` pending jobs of a running campaign, due by
    /// `t(99)`.
    async fn scheduled(n: i64) -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteOptions::new().with_durability(Durability::Full);
        let store = SqliteStore::open_with(dir.path().join("group.db"), options)
            .await
            .unwrap();
        let mut c = Campaign::draft(
            CampaignId::new("cmp"),
            CampaignSpec::new("Spring", "tea", "20% off"),
            t(0),
        );
        store.insert_campaign(&c).await.unwrap();
        c.state = CampaignState::Running;
        let jobs: Vec<NewJob> = (0..n)
            .map(|i| {
                // One contact id with text that JSON must escape, for the packed claims.
                let contact = match i {
                    0 => ContactId::new("c0 \"q\" \\ \u{1}\0 é \u{1f600}"),
                    _ => ContactId::new(format!("c{i}")),
                };
                NewJob {
                    key: IdempotencyKey::for_job(&c.id, &contact, 0),
                    contact,
                    purpose: Purpose::marketing(),
                    step: 0,
                    due_at: t(i % 100),
                    skipped: None,
                }
            })
            .collect();
        store.schedule(&c, &jobs).await.unwrap();
        (dir, store)
    }

    /// Yields until `store` has `n` updates queued (each task queues before it waits).
    async fn until_queued(store: &SqliteStore, n: usize) {
        for _ in 0..1_000 {
            if store.updates.len() == n {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("{} updates queued, expected {n}", store.updates.len());
    }

    #[tokio::test]
    async fn updates_queued_together_are_written_together_with_their_own_answers() {
        let (_dir, store, jobs) = claimed(3).await;
        // Holding the hot connection makes the updates below queue up behind it.
        let held = store.hot.acquire().await.unwrap();
        // Each update at its own time, to see that each row gets its own.
        let update = |key: IdempotencyKey, token: u64, update: JobUpdate, at: i64| {
            let store = store.clone();
            tokio::spawn(async move { store.update_job(&key, token, &update, t(at)).await })
        };
        let sent = update(
            jobs[0].key.clone(),
            jobs[0].claim_token,
            JobUpdate::Sent { message_id: 7 },
            200,
        );
        let stale = update(
            jobs[1].key.clone(),
            jobs[1].claim_token + 1,
            JobUpdate::Sent { message_id: 8 },
            201,
        );
        let unknown = update(
            IdempotencyKey::new("no-such-job"),
            1,
            JobUpdate::Sent { message_id: 9 },
            202,
        );
        let retry = update(
            jobs[2].key.clone(),
            jobs[2].claim_token,
            JobUpdate::Retry {
                due_at: t(300),
                count_attempt: true,
                reason: "flood_wait".into(),
            },
            203,
        );
        until_queued(&store, 4).await;
        drop(held);

        sent.await.unwrap().unwrap();
        // The first call to get the connection took all four: one transaction.
        assert_eq!(store.updates.len(), 0);
        assert!(matches!(stale.await.unwrap(), Err(Error::LeaseLost(_))));
        assert!(matches!(
            unknown.await.unwrap(),
            Err(Error::NotFound { .. })
        ));
        retry.await.unwrap().unwrap();

        let job = |i: usize| store.job(&jobs[i].key);
        let first = job(0).await.unwrap().unwrap();
        assert_eq!((first.state, first.message_id), (JobState::Sent, Some(7)));
        assert_eq!(first.updated_at, t(200));
        assert_eq!(job(1).await.unwrap().unwrap().state, JobState::Claimed);
        let third = job(2).await.unwrap().unwrap();
        assert_eq!(
            (third.state, third.due_at, third.attempts, third.updated_at),
            (JobState::Pending, t(300), 1, t(203))
        );
    }

    /// Three queued updates are one statement of four rows (one of them padding), written
    /// without a transaction; the claimed jobs outside the group stay as they were.
    #[tokio::test]
    async fn a_group_in_one_padded_statement_changes_only_its_jobs() {
        let (_dir, store, jobs) = claimed(5).await;
        let held = store.hot.acquire().await.unwrap();
        let tasks: Vec<_> = jobs[..3]
            .iter()
            .zip(1..)
            .map(|(job, id)| {
                let (store, job) = (store.clone(), job.clone());
                tokio::spawn(async move {
                    let sent = JobUpdate::Sent { message_id: id };
                    store
                        .update_job(&job.key, job.claim_token, &sent, t(200))
                        .await
                })
            })
            .collect();
        until_queued(&store, 3).await;
        drop(held);
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        for (i, job) in jobs.iter().enumerate() {
            let stored = store.job(&job.key).await.unwrap().unwrap();
            let expected = if i < 3 {
                (JobState::Sent, Some(i as i64 + 1))
            } else {
                (JobState::Claimed, None)
            };
            assert_eq!((stored.state, stored.message_id), expected, "job {i}");
        }
    }

    /// A write that skips the `PRAGMA` (its level is known to be set) still commits at its
    /// own level: claims unflushed, everything else flushed at `Full`, whatever ran before.
    #[tokio::test]
    async fn each_hot_write_commits_at_its_own_level_whatever_ran_before() {
        let (_dir, store, jobs) = claimed(4).await;
        // SQLite's numbers: NORMAL = 1, FULL = 2.
        let level = || async {
            let mut conn = store.hot.acquire().await.unwrap();
            sqlx::query_scalar::<_, i64>("PRAGMA synchronous")
                .fetch_one(&mut *conn)
                .await
                .unwrap()
        };
        let lease = SignedDuration::from_mins(5);
        // The fixture's claim left it unflushed; another claim keeps it so.
        assert_eq!(level().await, 1);
        store.claim("w2", t(100), lease, 1).await.unwrap();
        assert_eq!(level().await, 1);
        let sent = |id| JobUpdate::Sent { message_id: id };
        store
            .update_job(&jobs[0].key, jobs[0].claim_token, &sent(1), t(200))
            .await
            .unwrap();
        assert_eq!(level().await, 2);
        // Two flushed writes in a row: the second keeps the level it found.
        store
            .update_jobs(&[(&jobs[1], sent(2))], t(201))
            .await
            .unwrap();
        assert_eq!(level().await, 2);
        store.claim("w2", t(100), lease, 1).await.unwrap();
        assert_eq!(level().await, 1);
        store
            .update_jobs(&[(&jobs[2], sent(3)), (&jobs[3], sent(4))], t(202))
            .await
            .unwrap();
        assert_eq!(level().await, 2);
        store.claim("w2", t(100), lease, 1).await.unwrap();
        let event = mia_core::Event {
            id: mia_core::EventId::new("e1"),
            at: t(203),
            contact: ContactId::new("c0"),
            campaign: Some(CampaignId::new("cmp")),
            variant: None,
            step: None,
            kind: mia_core::EventKind::Sent,
        };
        mia_core::EventStore::append_events(&store, &[event])
            .await
            .unwrap();
        assert_eq!(level().await, 2);
    }

    #[tokio::test]
    async fn a_hot_connection_whose_driver_stopped_is_opened_again_by_the_next_call() {
        let (_dir, store, jobs) = claimed(1).await;
        let marker = || async {
            let mut conn = store.hot.acquire().await.unwrap();
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM sqlite_temp_master WHERE name = 'marker'",
            )
            .fetch_one(&mut *conn)
            .await
            .unwrap()
        };
        {
            let mut conn = store.hot.acquire().await.unwrap();
            sqlx::query("CREATE TEMP TABLE marker (x)")
                .execute(&mut *conn)
                .await
                .unwrap();
        }
        // A write that failed with any other error keeps the connection (its temporary table
        // is still there).
        let report = |error: sqlx::Error| async {
            let failed: Result<(), _> = Err(error.into());
            let mut conn = store.hot.acquire().await.unwrap();
            conn.settled(super::super::Flush::Flushed, &failed);
        };
        report(sqlx::Error::PoolTimedOut).await;
        assert_eq!(marker().await, 1);
        // What a write reports when the driver's thread is gone: the next call opens a new
        // connection, which has no temporary table, and the store works on it.
        report(sqlx::Error::WorkerCrashed).await;
        assert_eq!(marker().await, 0);
        let sent = JobUpdate::Sent { message_id: 1 };
        store
            .update_job(&jobs[0].key, jobs[0].claim_token, &sent, t(200))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn writes_to_one_job_in_one_group_apply_in_queue_order() {
        let (_dir, store, jobs) = claimed(2).await;
        let held = store.hot.acquire().await.unwrap();
        let attempt = |job: &Job| {
            let (store, job) = (store.clone(), job.clone());
            tokio::spawn(async move {
                let variant = VariantId::new("B");
                store
                    .record_attempt(&job.key, job.claim_token, &variant, 0.5, t(150))
                    .await
            })
        };
        let send = |job: &Job| {
            let (store, job) = (store.clone(), job.clone());
            tokio::spawn(async move {
                let sent = JobUpdate::Sent { message_id: 3 };
                store
                    .update_job(&job.key, job.claim_token, &sent, t(200))
                    .await
            })
        };
        // The first job: its attempt, then its send. The second: its send, then a late
        // attempt, which must find the job no longer claimed.
        let first_attempt = attempt(&jobs[0]);
        until_queued(&store, 1).await;
        let first_send = send(&jobs[0]);
        until_queued(&store, 2).await;
        let second_send = send(&jobs[1]);
        until_queued(&store, 3).await;
        let second_attempt = attempt(&jobs[1]);
        until_queued(&store, 4).await;
        drop(held);

        first_attempt.await.unwrap().unwrap();
        first_send.await.unwrap().unwrap();
        second_send.await.unwrap().unwrap();
        assert!(matches!(
            second_attempt.await.unwrap(),
            Err(Error::LeaseLost(_))
        ));
        let first = store.job(&jobs[0].key).await.unwrap().unwrap();
        assert_eq!(first.state, JobState::Sent);
        assert_eq!(first.variant, Some(VariantId::new("B")));
        let second = store.job(&jobs[1].key).await.unwrap().unwrap();
        assert_eq!((second.state, second.variant), (JobState::Sent, None));
    }

    #[tokio::test]
    async fn an_update_without_a_connection_fails_and_leaves_nothing_queued() {
        let (_dir, store, jobs) = claimed(1).await;
        store.hot.close().await;
        let sent = JobUpdate::Sent { message_id: 1 };
        let failed = store
            .update_job(&jobs[0].key, jobs[0].claim_token, &sent, t(200))
            .await;
        assert!(matches!(failed, Err(Error::Store { .. })), "{failed:?}");
        assert_eq!(store.updates.len(), 0);
        let job = store.job(&jobs[0].key).await.unwrap().unwrap();
        assert_eq!(job.state, JobState::Claimed);
    }

    /// Batches of every statement shape: padded within one statement (5 of 8), one full
    /// statement (256), and a full one plus a padded one (300). Only the jobs of the batch
    /// change; the padding rows match nothing, not even the claimed jobs left out.
    #[tokio::test]
    async fn batched_updates_change_exactly_their_jobs_whatever_the_padding() {
        for (claimed_jobs, batch) in [(8, 5), (260, 256), (310, 300)] {
            let (_dir, store, jobs) = claimed(claimed_jobs).await;
            let updates: Vec<(&Job, JobUpdate)> = jobs[..batch]
                .iter()
                .zip(1..)
                .map(|(job, id)| (job, JobUpdate::Sent { message_id: id }))
                .collect();
            let lost = store.update_jobs(&updates, t(200)).await.unwrap();
            assert!(lost.is_empty(), "{batch}: {lost:?}");
            for (i, job) in jobs.iter().enumerate() {
                let stored = store.job(&job.key).await.unwrap().unwrap();
                let expected = if i < batch {
                    JobState::Sent
                } else {
                    JobState::Claimed
                };
                assert_eq!(stored.state, expected, "{batch}: job {i}");
            }
            // Updated again, every job of the batch is lost (its claim is over).
            let again = store.update_jobs(&updates, t(201)).await.unwrap();
            assert_eq!(again.len(), batch);
        }
    }

    /// A batched update goes to each job's row by the rowid its token names, and reads the
    /// key index only in the subquery that runs when that row is not the job; returning keys
    /// or counting.
    #[tokio::test]
    async fn batched_updates_go_to_the_row_their_token_names() {
        use sqlx::Row;
        let (_dir, store, _jobs) = claimed(1).await;
        for returning in [true, false] {
            let sql = format!("EXPLAIN QUERY PLAN {}", update_sql(4, returning));
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for _ in 0..4 * UPDATE_BINDS {
                query = query.bind(None::<&str>);
            }
            // Each row of a plan is one step; its text is the fourth column.
            let plan: Vec<String> = query
                .fetch_all(&store.pool)
                .await
                .unwrap()
                .iter()
                .map(|row| row.get(3))
                .collect();
            let search = |table: &str, how: &str| {
                plan.iter()
                    .any(|step| step.starts_with(&format!("SEARCH {table} ")) && step.contains(how))
            };
            let context = format!("{returning}: {plan:?}");
            assert!(search("outbox", "(rowid=?)"), "{context}");
            assert!(search("by_row", "(rowid=?)"), "{context}");
            assert!(
                search("by_key", "sqlite_autoindex_outbox_1 (key=?)"),
                "{context}"
            );
            assert!(
                !plan.iter().any(|step| step.starts_with("SCAN outbox")),
                "{context}"
            );
        }
    }

    /// The rowid of job `key`.
    async fn rowid_of(store: &SqliteStore, key: &IdempotencyKey) -> i64 {
        sqlx::query_scalar("SELECT rowid FROM outbox WHERE key = ?")
            .bind(key.as_str())
            .fetch_one(&store.pool)
            .await
            .unwrap()
    }

    /// Runs `sql` on `store` with `value` and `key` bound, in that order.
    async fn set_on_job(store: &SqliteStore, sql: &'static str, value: i64, key: &IdempotencyKey) {
        sqlx::query(sql)
            .bind(value)
            .bind(key.as_str())
            .execute(&store.pool)
            .await
            .unwrap();
    }

    const RENUMBER: &str = "UPDATE outbox SET rowid = ? WHERE key = ?";
    const SET_TOKEN: &str = "UPDATE outbox SET claim_token = ? WHERE key = ?";

    /// Jobs whose token does not name their row are found by key, in a batch of one statement
    /// and of several and through queued `update_job`s: a row renumbered (as `VACUUM` may
    /// renumber rows), two jobs that swapped rows, and tokens as an older build issued them (a
    /// plain count). A token whose row part names another job's row, and which is that job's
    /// token, changes neither job.
    #[tokio::test]
    async fn jobs_whose_token_misses_their_row_are_found_by_key() {
        for n in [6, 300] {
            let (_dir, store, mut jobs) = claimed(n).await;
            // Every claimed token names its row, above a count of one claim.
            for job in &jobs {
                let row = rowid_of(&store, &job.key).await;
                assert_eq!(job.claim_token >> 24, u64::try_from(row).unwrap());
                assert_eq!(job.claim_token & 0xFF_FFFF, 1, "the first claim of the job");
            }
            // Job 0 moves far away; jobs 1 and 2 swap rows, and job 2 gets the token a claim at
            // its new row would give it; jobs 3 and 5 hold an older build's tokens.
            set_on_job(&store, RENUMBER, 1 << 40, &jobs[0].key).await;
            let one = rowid_of(&store, &jobs[1].key).await;
            let two = rowid_of(&store, &jobs[2].key).await;
            set_on_job(&store, RENUMBER, -1, &jobs[1].key).await;
            set_on_job(&store, RENUMBER, one, &jobs[2].key).await;
            set_on_job(&store, RENUMBER, two, &jobs[1].key).await;
            jobs[2].claim_token = (u64::try_from(one).unwrap() << 24) | 2;
            set_on_job(&store, SET_TOKEN, jobs[2].claim_token as i64, &jobs[2].key).await;
            for (i, token) in [(3, 7), (5, 9)] {
                jobs[i].claim_token = token;
                set_on_job(&store, SET_TOKEN, token as i64, &jobs[i].key).await;
            }
            // Job 4 under job 2's token: the row that token names is job 2's, and the token is
            // job 2's, but the key is job 4's. Neither job changes.
            let mut stale = jobs[4].clone();
            stale.claim_token = jobs[2].claim_token;
            let lost = store
                .update_jobs(&[(&stale, JobUpdate::Sent { message_id: 1 })], t(199))
                .await
                .unwrap();
            assert_eq!(lost, [stale.key.clone()], "{n}");
            for i in [2, 4] {
                let job = store.job(&jobs[i].key).await.unwrap().unwrap();
                assert_eq!(job.state, JobState::Claimed, "{n}: job {i}");
            }
            // The batch (all but jobs 4 and 5, which go through `update_job`) finds every job.
            let sent = |i: usize| JobUpdate::Sent {
                message_id: i as i64 + 10,
            };
            let updates: Vec<(&Job, JobUpdate)> = jobs
                .iter()
                .enumerate()
                .filter(|(i, _)| ![4, 5].contains(i))
                .map(|(i, job)| (job, sent(i)))
                .collect();
            let lost = store.update_jobs(&updates, t(200)).await.unwrap();
            assert!(lost.is_empty(), "{n}: {lost:?}");
            for i in [4, 5] {
                store
                    .update_job(&jobs[i].key, jobs[i].claim_token, &sent(i), t(200))
                    .await
                    .unwrap();
            }
            for (i, job) in jobs.iter().enumerate() {
                let stored = store.job(&job.key).await.unwrap().unwrap();
                assert_eq!(stored.state, JobState::Sent, "{n}: job {i}");
                assert_eq!(stored.message_id, Some(i as i64 + 10), "{n}: job {i}");
            }
        }
    }

    /// A job claimed at a rowid outside the token's 38 bits (far above, or negative) gets a
    /// token below 2^62 naming the rowid's low 38 bits, and is completed through the key; the
    /// largest token there is (2^62 - 1, as an older build's count could leave it) counts on to
    /// zero rather than overflowing.
    #[tokio::test]
    async fn tokens_stay_in_range_for_any_rowid_and_count() {
        let (_dir, store) = scheduled(3).await;
        let keys: Vec<IdempotencyKey> = store
            .jobs(&CampaignId::new("cmp"))
            .await
            .unwrap()
            .into_iter()
            .map(|job| job.key)
            .collect();
        set_on_job(&store, RENUMBER, (1 << 40) + 5, &keys[0]).await;
        set_on_job(&store, RENUMBER, -3, &keys[1]).await;
        set_on_job(&store, SET_TOKEN, (1 << 62) - 1, &keys[2]).await;
        let claimed = store
            .claim("w1", t(100), SignedDuration::from_mins(5), 3)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 3);
        const ROW_BITS: i64 = (1 << 38) - 1;
        for job in &claimed {
            let row = rowid_of(&store, &job.key).await;
            assert!(job.claim_token < 1 << 62, "{job:?}");
            assert_eq!(job.claim_token >> 24, (row & ROW_BITS) as u64, "{job:?}");
            let count = match job.key == keys[2] {
                true => 0,
                false => 1,
            };
            assert_eq!(job.claim_token & 0xFF_FFFF, count, "{job:?}");
        }
        let updates: Vec<(&Job, JobUpdate)> = claimed
            .iter()
            .map(|job| (job, JobUpdate::Sent { message_id: 3 }))
            .collect();
        assert!(
            store
                .update_jobs(&updates, t(200))
                .await
                .unwrap()
                .is_empty()
        );
        let counts = store.job_counts(&CampaignId::new("cmp")).await.unwrap();
        assert_eq!(counts.sent, 3);
    }

    /// One batch holding the claimed jobs of two campaigns changes each of them, each found
    /// under its own campaign, and a job named under a campaign it is not in is not found.
    #[tokio::test]
    async fn a_batch_across_campaigns_finds_each_job_under_its_own() {
        let (_dir, store, first) = claimed(3).await;
        let mut other = Campaign::draft(
            CampaignId::new("other"),
            CampaignSpec::new("Autumn", "tea", "10% off"),
            t(0),
        );
        store.insert_campaign(&other).await.unwrap();
        other.state = CampaignState::Running;
        let jobs: Vec<NewJob> = (0..3)
            .map(|i| {
                let contact = ContactId::new(format!("o{i}"));
                NewJob {
                    key: IdempotencyKey::for_job(&other.id, &contact, 0),
                    contact,
                    purpose: Purpose::marketing(),
                    step: 0,
                    due_at: t(i),
                    skipped: None,
                }
            })
            .collect();
        store.schedule(&other, &jobs).await.unwrap();
        let second = store
            .claim("w2", t(100), SignedDuration::from_mins(5), 10)
            .await
            .unwrap();
        assert_eq!(second.len(), 3);
        // The last job of the first campaign, named under the other one.
        let mut misnamed = first[2].clone();
        misnamed.campaign = other.id.clone();
        let updates: Vec<(&Job, JobUpdate)> = first[..2]
            .iter()
            .chain(&second)
            .chain([&misnamed])
            .map(|job| (job, JobUpdate::Sent { message_id: 9 }))
            .collect();
        let lost = store.update_jobs(&updates, t(200)).await.unwrap();
        assert_eq!(lost, [misnamed.key.clone()]);
        for job in first[..2].iter().chain(&second) {
            let stored = store.job(&job.key).await.unwrap().unwrap();
            assert_eq!(stored.state, JobState::Sent, "{}", job.key);
        }
        let stored = store.job(&first[2].key).await.unwrap().unwrap();
        assert_eq!(stored.state, JobState::Claimed);
    }

    /// A batch of several statements whose count falls short is run again returning its keys:
    /// exactly the jobs whose claims were lost are reported, every other job of the batch
    /// changes once (not rolled back, not applied twice), whichever statement holds the lost
    /// ones.
    #[tokio::test]
    async fn a_batch_with_lost_claims_reports_exactly_them_and_applies_the_rest_once() {
        let (_dir, store, jobs) = claimed(310).await;
        // Jobs 10..20 (first statement) and 290..295 (second) finish elsewhere first.
        let early: Vec<(&Job, JobUpdate)> = jobs[10..20]
            .iter()
            .chain(&jobs[290..295])
            .map(|job| (job, JobUpdate::Sent { message_id: 7 }))
            .collect();
        assert!(store.update_jobs(&early, t(150)).await.unwrap().is_empty());
        // Job 100 is named under a campaign it is not in: not found either.
        let misnamed = Job {
            campaign: CampaignId::new("elsewhere"),
            ..jobs[100].clone()
        };
        let updates: Vec<(&Job, JobUpdate)> = jobs[..300]
            .iter()
            .map(|job| {
                if job.key == misnamed.key {
                    &misnamed
                } else {
                    job
                }
            })
            .map(|job| {
                let retry = JobUpdate::Retry {
                    due_at: t(900),
                    count_attempt: true,
                    reason: "flood_wait".into(),
                };
                (job, retry)
            })
            .collect();
        let lost = store.update_jobs(&updates, t(200)).await.unwrap();
        let expected: Vec<IdempotencyKey> = jobs[10..20]
            .iter()
            .chain([&jobs[100]])
            .chain(&jobs[290..295])
            .map(|job| job.key.clone())
            .collect();
        assert_eq!(lost, expected);
        for (i, job) in jobs.iter().enumerate() {
            let stored = store.job(&job.key).await.unwrap().unwrap();
            let (state, attempts) = match i {
                10..20 | 290..295 => (JobState::Sent, job.attempts),
                100 | 300.. => (JobState::Claimed, job.attempts),
                _ => (JobState::Pending, job.attempts + 1),
            };
            assert_eq!(
                (stored.state, stored.attempts),
                (state, attempts),
                "job {i}"
            );
        }
    }

    /// Propensities a claim must return exactly: ones that 15 significant digits round, and one
    /// that SQLite's `printf` rounds to a neighbour even with 20.
    const PROPENSITIES: [f64; 10] = [
        0.1 + 0.2,
        1.0 / 3.0,
        2.0 / 3.0,
        0.123_456_789_012_345_68,
        1.423_848_980_393_789_6e224,
        f64::MIN_POSITIVE,
        5e-324,
        0.999_999_999_999_999_9,
        1.0,
        0.05,
    ];

    /// Both ways of claiming take the same jobs and return them alike, field for field: pending
    /// jobs, and expired leases with an attempt recorded (variant, a propensity that 15 digits
    /// would round, outcome) or retried (attempts, due time).
    #[tokio::test]
    async fn a_packed_claim_returns_what_a_claim_in_rows_returns() {
        let mut claimed = Vec::new();
        for packed in [false, true] {
            let (_dir, store, jobs) = claimed_with_lease(40, SignedDuration::from_mins(1)).await;
            for (job, propensity) in jobs[..10].iter().zip(PROPENSITIES) {
                let variant = VariantId::new("B");
                store
                    .record_attempt(&job.key, job.claim_token, &variant, propensity, t(110))
                    .await
                    .unwrap();
            }
            let retry = JobUpdate::Retry {
                due_at: t(150),
                count_attempt: true,
                reason: "flood_wait".into(),
            };
            for job in &jobs[10..15] {
                store
                    .update_job(&job.key, job.claim_token, &retry, t(120))
                    .await
                    .unwrap();
            }
            // Every lease has expired by now.
            let (now, lease) = (t(400), t(700));
            let mut conn = store.hot.acquire().await.unwrap();
            let mut got = claim_on(&mut conn, None, packed, "w2", now, lease, 100)
                .await
                .unwrap();
            got.sort_by(|a, b| a.key.cmp(&b.key));
            claimed.push(got);
        }
        let (rows, packed) = (&claimed[0], &claimed[1]);
        assert_eq!(rows.len(), 40);
        assert_eq!(rows, packed);
        let attempted: Vec<_> = packed.iter().filter(|j| j.variant.is_some()).collect();
        assert_eq!(attempted.len(), 10);
        let mut propensities: Vec<f64> = attempted.iter().filter_map(|j| j.propensity).collect();
        propensities.sort_by(f64::total_cmp);
        let mut expected = PROPENSITIES.to_vec();
        expected.sort_by(f64::total_cmp);
        assert_eq!(propensities, expected, "exactly");
        assert!(
            attempted
                .iter()
                .all(|j| j.outcome.as_deref() == Some("send_in_flight"))
        );
        assert_eq!(packed.iter().filter(|j| j.attempts == 1).count(), 5);
        assert!(packed.iter().all(|j| j.worker.as_deref() == Some("w2")
            && j.lease_until == Some(t(700))
            && j.state == JobState::Claimed));
    }

    #[tokio::test]
    async fn a_transaction_left_open_on_the_hot_connection_is_rolled_back_before_the_next_call() {
        let (_dir, store, jobs) = claimed(1).await;
        {
            let mut conn = store.hot.acquire().await.unwrap();
            let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE")
                .await
                .unwrap();
            sqlx::query("UPDATE outbox SET state = 'cancelled' WHERE key = ?")
                .bind(jobs[0].key.as_str())
                .execute(&mut *tx)
                .await
                .unwrap();
            // Dropped without a commit, as by a call cancelled halfway through.
        }
        let sent = JobUpdate::Sent { message_id: 1 };
        store
            .update_job(&jobs[0].key, jobs[0].claim_token, &sent, t(200))
            .await
            .unwrap();
        let job = store.job(&jobs[0].key).await.unwrap().unwrap();
        assert_eq!(job.state, JobState::Sent);
    }

    #[tokio::test]
    async fn a_closed_store_refuses_hot_writes() {
        let (_dir, store, _jobs) = claimed(1).await;
        store.close().await;
        let claim = store
            .claim("w2", t(300), SignedDuration::from_secs(30), 1)
            .await;
        let refused = claim.unwrap_err().to_string();
        assert!(refused.contains("the store is closed"), "{refused}");
    }

    #[tokio::test]
    async fn a_cancelled_update_leaves_nothing_queued() {
        let (_dir, store, jobs) = claimed(2).await;
        let held = store.hot.acquire().await.unwrap();
        let job = jobs[0].clone();
        let waiting = {
            let store = store.clone();
            tokio::spawn(async move {
                let sent = JobUpdate::Sent { message_id: 1 };
                store
                    .update_job(&job.key, job.claim_token, &sent, t(200))
                    .await
            })
        };
        until_queued(&store, 1).await;
        waiting.abort();
        assert!(waiting.await.unwrap_err().is_cancelled());
        assert_eq!(store.updates.len(), 0);
        drop(held);
        // Another job's update runs a group of its own; the cancelled one is not in it.
        let other = &jobs[1];
        let sent = JobUpdate::Sent { message_id: 2 };
        store
            .update_job(&other.key, other.claim_token, &sent, t(201))
            .await
            .unwrap();
        let job = store.job(&jobs[0].key).await.unwrap().unwrap();
        assert_eq!(job.state, JobState::Claimed);
    }
}
