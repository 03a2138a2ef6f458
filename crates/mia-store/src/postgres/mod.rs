//! [`PostgresStore`]: every store seam of mia in one schema of a Postgres database.

mod audit;
mod campaigns;
mod codec;
mod consents;
mod contacts;
mod events;
mod outbox;
mod reviews;
mod schema;
mod subjects;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, Connection, Executor, PgPool};

use crate::error::{Context, StoreError};

/// Connections per store handle (and its clones).
const MAX_CONNECTIONS: u32 = 10;

/// Rows per statement in a batch write. Each column travels as one array parameter, so a
/// chunk of 5,000 rows is a message of a few hundred kilobytes to a few megabytes, and a batch
/// of a million rows is 200 statements in one transaction.
const CHUNK: usize = 5_000;

/// How long a call waits for a free connection before failing with a retryable error.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// A durable [`Store`](mia_core::Store) in a Postgres database, for several processes and
/// machines sharing one outbox.
///
/// Every table lives in one Postgres schema (`mia` unless
/// [`connect_with_schema`](Self::connect_with_schema) names another), created on connect if it
/// is missing; every pooled connection runs with `search_path` set to it, so several stores
/// (tenants, test runs) share a database without seeing each other. Connecting applies pending
/// migrations in one transaction under an advisory lock, so processes starting together do not
/// race.
///
/// A claim is one statement that picks the due jobs with `FOR UPDATE SKIP LOCKED`, so any
/// number of workers claim concurrently without ever getting the same job and without waiting
/// for each other; it walks the partial indexes of a narrow table of open jobs in due order, so
/// it costs O(limit) however long the queue, and claims and completions leave the indexes of
/// the (wide) table of jobs untouched. Worker writes are conditional on the claim token, as in
/// every store. A claim commits without waiting for its WAL flush (every other write waits):
/// a server crash may lose a claim nobody has acted on yet, which returns the job to the
/// queue, and claim tokens never repeat across a crash, so the worker holding a lost claim
/// gets [`LeaseLost`](mia_core::Error::LeaseLost). Each pooled connection takes a durable
/// claim epoch from the `claim_epoch` table when it connects.
///
/// Timestamps are stored as `BIGINT` microseconds since the Unix epoch, as in
/// `SqliteStore`; finer digits are dropped. Structured values are
/// `JSONB`. Postgres text cannot hold the NUL character, so a value containing one is refused.
///
/// Cloning is cheap and shares the connection pool. `Debug` shows the schema, never the URL
/// (which may hold a password).
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    schema: Arc<str>,
    upkeep: Arc<outbox::QueueUpkeep>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &&*self.schema)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// The Postgres schema [`connect`](Self::connect) keeps the tables in.
    pub const DEFAULT_SCHEMA: &'static str = "mia";

    /// Connects to the database at `url` (`postgres://user:password@host:5432/database`) and
    /// keeps every table in the schema [`DEFAULT_SCHEMA`](Self::DEFAULT_SCHEMA) (`mia`), creating it and applying
    /// migrations as needed.
    ///
    /// # Errors
    /// [`mia_core::Error::Store`] when the URL is malformed, the server cannot be reached (this
    /// one is retryable), the schema was written by a newer version of this crate, or a
    /// migration fails.
    pub async fn connect(url: &str) -> mia_core::Result<Self> {
        Self::connect_with_schema(url, Self::DEFAULT_SCHEMA).await
    }

    /// Like [`connect`](Self::connect), with every table in the Postgres schema `schema`.
    /// Stores on different schemas of one database are independent.
    ///
    /// # Errors
    /// [`mia_core::Error::InvalidInput`] unless `schema` is a plain lower-case identifier
    /// (`[a-z_][a-z0-9_]{0,62}`, not starting with `pg_`); otherwise as
    /// [`connect`](Self::connect).
    pub async fn connect_with_schema(url: &str, schema: &str) -> mia_core::Result<Self> {
        let schema = valid_schema(schema)?;
        // Migrations run on a connection of their own, before the pool opens: every pooled
        // connection takes a claim epoch from a table that the migrations create.
        let mut conn = sqlx::PgConnection::connect(url)
            .await
            .context("connect to Postgres")?;
        let migrated = async {
            conn.execute(sqlx::raw_sql(AssertSqlSafe(set_path(&schema))))
                .await?;
            schema::migrate(&mut conn, &schema).await
        }
        .await;
        let _ = conn.close().await;
        migrated.context("migrate the database schema")?;
        let pool = pool_options(&schema)
            .connect(url)
            .await
            .context("connect to Postgres")?;
        Ok(Self {
            pool,
            schema: schema.into(),
            upkeep: Arc::new(outbox::QueueUpkeep::new(outbox::VACUUM_AFTER)),
        })
    }

    /// Vacuums the outbox's queue and lease tables after `rows` of their rows died (one for
    /// each job claimed and then finished or rescheduled; 10,000 by default), or never with 0.
    /// Clones made from the returned store share its count; clones made before keep theirs.
    ///
    /// A claim walks the queue from its earliest due job, and dead rows that no vacuum removed
    /// yet sit right there: without vacuums, claims slow down as the queue is worked through
    /// (one worker handling jobs one at a time went from about 1,750 to 980 jobs/s within a
    /// minute on a server with autovacuum off). So the `update_job` or `update_jobs` call that
    /// crosses `rows` runs `VACUUM (INDEX_CLEANUP ON, SKIP_LOCKED, TRUNCATE false)` on those
    /// tables before it returns, after its own write committed and whatever the vacuum's
    /// outcome. That call waits for the vacuum, whose time grows with the number of open jobs
    /// (30 ms for 195,000 on the development machine). One store runs one vacuum at a time,
    /// and the next one no sooner than ten times the last one's duration, and at least a second
    /// later. A role that does not own the table gets a notice from the server and no vacuum; a
    /// vacuum that fails is logged. Turn it off when the server's autovacuum is tuned to keep up
    /// with the queue.
    #[must_use]
    pub fn with_queue_vacuum_after(mut self, rows: u64) -> Self {
        self.upkeep = Arc::new(outbox::QueueUpkeep::new(rows));
        self
    }

    /// The Postgres schema the tables live in.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The schema version of the database (the number of migrations applied).
    ///
    /// # Errors
    /// [`mia_core::Error::Store`] if the database cannot be read.
    pub async fn schema_version(&self) -> mia_core::Result<i64> {
        schema::version(&self.pool)
            .await
            .context("read the schema version")
    }

    /// Closes every connection, waiting for running queries. Later calls on any clone fail.
    /// Dropping the last clone closes the pool too; this only makes it deterministic.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Deletes the schema and everything in it, then closes the pool: for tests and for
    /// tearing down a deployment. There is no undo.
    ///
    /// # Errors
    /// [`mia_core::Error::Store`] if the schema cannot be dropped.
    pub async fn drop_schema(self) -> mia_core::Result<()> {
        // The schema is a checked identifier (see `valid_schema`), so quoting it is enough.
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.schema);
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&self.pool)
            .await
            .map_err(StoreError::from)
            .context("drop the schema")?;
        self.pool.close().await;
        Ok(())
    }

    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
        Ok(self.pool.begin().await?)
    }
}

/// `SET search_path` to `schema`, and only it, so a table of another schema is never used by
/// accident. The schema is a checked identifier (see `valid_schema`), so quoting it is enough.
fn set_path(schema: &str) -> String {
    format!("SET search_path TO \"{schema}\"")
}

/// Takes a claim epoch for the connection: one more than any connection took before, kept in
/// the session setting `mia.claim_epoch` for `claim` to read. It commits with at least a local
/// WAL flush whatever the server's default (`synchronous_commit = off` becomes `local`), so an
/// epoch in use is never lost in a crash and never handed out twice (see the `outbox` module).
const TAKE_CLAIM_EPOCH: &str = "WITH durable AS (\
       SELECT set_config('synchronous_commit', \
         CASE current_setting('synchronous_commit') WHEN 'off' THEN 'local' \
         ELSE current_setting('synchronous_commit') END, true)), \
     taken AS (UPDATE claim_epoch SET epoch = epoch + 1 RETURNING epoch) \
     SELECT set_config('mia.claim_epoch', taken.epoch::text, false) FROM taken, durable";

/// How long a pooled connection may sit idle before it is pinged on its way out of the pool.
/// A connection in use is not: a round trip before every statement would cost as much as the
/// statement itself when jobs are handled one at a time, and a connection that broke since is
/// found by the statement, whose error is retryable.
const PING_AFTER_IDLE: Duration = Duration::from_secs(10);

/// The pool settings: every new connection gets `search_path` set to the store's schema and
/// takes its claim epoch, in one round trip (and one transaction).
fn pool_options(schema: &str) -> PgPoolOptions {
    let setup: Arc<str> = format!("{}; {TAKE_CLAIM_EPOCH}", set_path(schema)).into();
    PgPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_AFTER_IDLE {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .after_connect(move |conn, _meta| {
            let setup = Arc::clone(&setup);
            Box::pin(async move {
                conn.execute(sqlx::raw_sql(AssertSqlSafe(setup))).await?;
                Ok(())
            })
        })
}

/// Checks that `schema` is a plain identifier that needs no escaping: `[a-z_][a-z0-9_]{0,62}`
/// (Postgres truncates names at 63 bytes), and not `pg_*`, which Postgres reserves.
fn valid_schema(schema: &str) -> mia_core::Result<String> {
    let mut chars = schema.chars();
    let plain = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && schema.len() <= 63
        && !schema.starts_with("pg_");
    if !plain {
        return Err(mia_core::Error::invalid(format!(
            "Postgres schema name {schema:?} must match [a-z_][a-z0-9_]{{0,62}} and not start \
             with pg_"
        )));
    }
    Ok(schema.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn only_plain_identifiers_are_schemas() {
        for ok in ["mia", "_x", "mia_test_0af3", &"a".repeat(63)] {
            assert!(valid_schema(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Mia",
            "9lives",
            "mia-test",
            "mia\"; DROP SCHEMA public; --",
            "pg_catalog",
            "mïa",
            &"a".repeat(64),
        ] {
            let err = valid_schema(bad).unwrap_err();
            assert!(matches!(err, mia_core::Error::InvalidInput(_)), "{bad}");
        }
    }

    #[tokio::test]
    async fn debug_shows_the_schema_and_never_the_url() {
        // A lazy pool never connects, so this needs no server.
        let pool = pool_options("tenant_a")
            .connect_lazy("postgres://mia:hunter2@db.example.com:5432/prod")
            .unwrap();
        let store = PostgresStore {
            pool,
            schema: "tenant_a".into(),
            upkeep: Arc::new(outbox::QueueUpkeep::new(outbox::VACUUM_AFTER)),
        };
        let shown = format!("{store:?}");
        assert!(shown.contains("tenant_a"), "{shown}");
        for secret in ["hunter2", "db.example.com", "postgres://", "mia:"] {
            assert!(!shown.contains(secret), "{shown} shows {secret}");
        }
        assert_eq!(store.schema(), "tenant_a");
    }
}
