//! [`SqliteStore`]: every store seam of mia in one embedded SQLite database.

mod audit;
mod batch;
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
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::error::{Context, StoreError};

/// How long a connection waits for another one's write lock before giving up with a
/// retryable error.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections per file store: SQLite has one writer at a time, but readers run beside it in
/// WAL mode.
const MAX_CONNECTIONS: u32 = 4;

/// A durable [`Store`](mia_core::Store) in one SQLite file.
///
/// Opening applies pending schema migrations. The file runs in WAL mode with
/// `synchronous=NORMAL` (a committed transaction survives a process crash; a power cut may
/// lose the last few), foreign keys on, and a 5 s busy timeout. Several handles, in one process
/// or several, may use the same file: writes that read first take the write lock up front
/// (`BEGIN IMMEDIATE`), and claims are one statement, so two workers never claim the same job.
///
/// Timestamps are stored as microseconds since the Unix epoch; finer digits are dropped.
///
/// Cloning is cheap and shares the connection pool.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    location: Arc<Location>,
}

enum Location {
    File(PathBuf),
    Memory,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("SqliteStore");
        match &*self.location {
            Location::File(path) => s.field("path", path),
            Location::Memory => s.field("path", &":memory:"),
        };
        s.finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens the database at `path`, creating the file and its folder if they are missing,
    /// and brings its schema up to date. Reopening a file keeps everything in it.
    ///
    /// # Errors
    /// [`mia_core::Error::Store`] when the folder cannot be created, the file is not a SQLite
    /// database, it was written by a newer version of this crate, or a migration fails.
    pub async fn open(path: impl AsRef<Path>) -> mia_core::Result<Self> {
        let path = path.as_ref();
        if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder)
                .map_err(|source| StoreError::CreateFolder {
                    path: folder.to_owned(),
                    source,
                })
                .context("open the database")?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        // No idle or lifetime reaping: an embedded database has nothing to gain from closing
        // connections, and the reaper's timers would be the only ones running while a query
        // waits, which makes tokio's paused clock jump ahead (use `mia_core::VirtualClock` for
        // simulations on a real store).
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .context("open the database")?;
        Self::ready(pool, Location::File(path.to_owned())).await
    }

    /// A fresh database that lives in memory and is gone when the last clone is dropped.
    /// For tests: it behaves as a file store, minus durability and parallel reads.
    ///
    /// # Errors
    /// [`mia_core::Error::Store`] if SQLite cannot start.
    pub async fn in_memory() -> mia_core::Result<Self> {
        let options = SqliteConnectOptions::new()
            .in_memory(true)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        // Every connection to `:memory:` is its own database, so the pool holds exactly one
        // connection and never lets it go.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .context("open an in-memory database")?;
        Self::ready(pool, Location::Memory).await
    }

    async fn ready(pool: SqlitePool, location: Location) -> mia_core::Result<Self> {
        schema::migrate(&pool)
            .await
            .context("migrate the database schema")?;
        Ok(Self {
            pool,
            location: Arc::new(location),
        })
    }

    /// The file this store lives in, or `None` for [`in_memory`](Self::in_memory).
    pub fn path(&self) -> Option<&Path> {
        match &*self.location {
            Location::File(path) => Some(path),
            Location::Memory => None,
        }
    }

    /// The schema version of the database (the number of migrations applied).
    ///
    /// # Errors
    /// [`mia_core::Error::Store`] if the database cannot be read.
    pub async fn schema_version(&self) -> mia_core::Result<i64> {
        schema::user_version(&self.pool)
            .await
            .context("read the schema version")
    }

    /// Closes every connection, waiting for running queries. Later calls on any clone fail.
    /// Dropping the last clone closes the pool too; this only makes it deterministic.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A write transaction that holds the write lock from its first statement, so it never
    /// fails halfway by finding that another connection wrote since it read.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}
