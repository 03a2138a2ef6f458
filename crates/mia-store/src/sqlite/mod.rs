//! [`SqliteStore`]: every store seam of mia in one embedded SQLite database.

/// The constant statement `$sql` with the `PRAGMA` that sets the [`Flush`] level `$sync` in
/// front, for the hot connection. A statement that follows a `PRAGMA` must not be judged by
/// `rows_affected` (SQLite reports the changes of the last statement that made any, which may
/// be an earlier one): it returns rows instead.
macro_rules! with_sync {
    ($sync:expr, $sql:expr) => {
        match $sync {
            $crate::sqlite::Flush::Flushed => concat!("PRAGMA synchronous = FULL; ", $sql),
            $crate::sqlite::Flush::Unflushed => concat!("PRAGMA synchronous = NORMAL; ", $sql),
        }
    };
}

mod audit;
mod batch;
mod campaigns;
mod codec;
mod consents;
mod contacts;
mod events;
mod group;
mod options;
mod outbox;
mod reviews;
mod schema;
mod subjects;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

use crate::error::{Context, StoreError};

pub use options::{Durability, SqliteOptions};

/// How long a connection waits for another one's write lock before giving up with a
/// retryable error.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Rows the hot connection's driver thread may hand over before the caller takes them: a
/// whole claim of up to 15 jobs (larger ones come back as one row) or batched update that
/// returns its keys, and more.
const HOT_ROWS: usize = 1024;

/// Connections per file store: SQLite has one writer at a time, but readers run beside it in
/// WAL mode.
const MAX_CONNECTIONS: u32 = 4;

/// The pool options of a file store.
///
/// No idle or lifetime reaping: an embedded database has nothing to gain from closing
/// connections, and the reaper's timers would be the only ones running while a query waits,
/// which makes tokio's paused clock jump ahead (use `mia_core::VirtualClock` for simulations on
/// a real store). No test before each acquire either: that is one more round trip to the
/// connection's thread per statement, and a local file does not drop connections.
fn file_pool() -> SqlitePoolOptions {
    SqlitePoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .idle_timeout(None)
        .max_lifetime(None)
        .test_before_acquire(false)
}

/// A durable [`Store`](mia_core::Store) in one SQLite file.
///
/// Opening applies pending schema migrations. The file runs in WAL mode with
/// `synchronous=NORMAL` by default (a committed transaction survives a process crash; a power
/// cut may lose those since the last checkpoint, see [`SqliteOptions::with_checkpoint_pages`])
/// or `FULL` ([`Durability`]), foreign keys on, and a 5 s busy
/// timeout. Several handles, in one process or several, may use the same file: writes that
/// read first take the write lock up front (`BEGIN IMMEDIATE`), and a claim holds the write
/// lock throughout (one statement, or one `BEGIN IMMEDIATE` transaction when it asks for 16
/// jobs or more), so two workers never claim the same job. Within one handle (and its clones), attempts and
/// job updates that arrive while the connection is busy are written together in one
/// transaction (or one statement, when they fit in one) when it frees up (group commit: one
/// flush at [`Durability::Full`] for all of them, each caller still told its own outcome).
///
/// Timestamps are stored as microseconds since the Unix epoch; finer digits are dropped.
///
/// Cloning is cheap and shares the connection pool.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// One connection for the outbox's and the event log's hot writes (claims, job updates,
    /// event appends). Writers queue for it in this process, each woken as soon as the one
    /// before it commits, instead of meeting at SQLite's write lock, whose busy handler sleeps
    /// a millisecond or more between tries. Every write on it commits at the `synchronous`
    /// level it needs, which its statement sets first unless the connection is known to be
    /// there already (see [`Flush`]).
    hot: Arc<Hot>,
    /// Whether hot writes must be flushed ([`Durability::Full`]).
    full: bool,
    /// Attempts and job updates waiting for the hot connection, written together by whoever
    /// gets it next (group commit, see `group`).
    updates: Arc<group::Queue>,
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
        Self::open_with(path, SqliteOptions::default()).await
    }

    /// Like [`open`](Self::open), with the given options (such as [`Durability::Full`]).
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub async fn open_with(
        path: impl AsRef<Path>,
        options: SqliteOptions,
    ) -> mia_core::Result<Self> {
        let path = path.as_ref();
        if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder)
                .map_err(|source| StoreError::CreateFolder {
                    path: folder.to_owned(),
                    source,
                })
                .context("open the database")?;
        }
        let connect = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(options.durability.synchronous())
            // 8 MB of pages per connection (SQLite's default is 2 MB): a batch of claims or
            // updates spread over the outbox is read and written without going back to the
            // file for each page.
            .pragma("cache_size", "-8192")
            // Checkpoints every `checkpoint_pages` (see `SqliteOptions::with_checkpoint_pages`),
            // and a WAL file kept large enough after one that the next commits reuse it: a
            // commit that grows the file flushes its new size too.
            .pragma("wal_autocheckpoint", options.checkpoint_pages.to_string())
            .pragma("journal_size_limit", options.wal_size_limit().to_string())
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = file_pool()
            .connect_with(connect.clone())
            .await
            .context("open the database")?;
        // Opened after the first pool, so the file is in WAL mode already.
        // A larger page cache for the connection that writes the growing tables: the pages a
        // batch of events touches in the contact index stay in memory between batches.
        let hot = connect
            .pragma("cache_size", "-32768")
            // Temporary tables and the scratch tables of a statement in memory rather than in
            // a temporary file (the bundled SQLite's default): a batched claim lists its jobs in
            // a temporary table, and a batched update joins its rows through a scratch table;
            // both hold one batch. In a file, a 500-job drain ran about 10% slower (see the
            // mia-store README for the bench).
            .pragma("temp_store", "memory")
            // The rows of a statement come back from the driver's worker thread through a
            // channel of this many; with the driver's 50, a claim of 500 jobs stalled the
            // worker thread ten times for the caller to catch up.
            .row_buffer_size(HOT_ROWS);
        let conn = sqlx::ConnectOptions::connect(&hot)
            .await
            .context("open the database")?;
        let hot = Hot::owned(conn, hot);
        let full = options.durability == Durability::Full;
        Self::ready(pool, hot, full, Location::File(path.to_owned())).await
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
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .context("open an in-memory database")?;
        let hot = Hot::Shared(pool.clone());
        Self::ready(pool, hot, false, Location::Memory).await
    }

    async fn ready(
        pool: SqlitePool,
        hot: Hot,
        full: bool,
        location: Location,
    ) -> mia_core::Result<Self> {
        schema::migrate(&pool)
            .await
            .context("migrate the database schema")?;
        Ok(Self {
            pool,
            hot: Arc::new(hot),
            full,
            updates: Arc::default(),
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
        self.hot.close().await;
        self.pool.close().await;
    }

    /// A write transaction that holds the write lock from its first statement, so it never
    /// fails halfway by finding that another connection wrote since it read.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// How a statement on the hot connection commits: `Flushed` for every write at
    /// [`Durability::Full`], `Unflushed` for claims, and for everything at
    /// [`Durability::Normal`].
    fn sync(&self, claim: bool) -> Flush {
        match self.full && !claim {
            true => Flush::Flushed,
            false => Flush::Unflushed,
        }
    }
}

/// The hot connection of a store.
///
/// A file store owns it outright instead of keeping it in a pool of one: the pool tests a
/// connection each time it comes back (a round trip to the connection's thread), and the next
/// caller waited for that test, which made every hot statement cost two round trips. The
/// driver's thread runs a connection's commands in the order they were sent, so a statement a
/// cancelled call left running finishes before the next caller's, and a transaction it left
/// open (every transaction here goes through sqlx's `Transaction`, which rolls back when
/// dropped) is rolled back before the next caller's first statement.
///
/// Callers wait for the connection in the order they asked, with no time limit: each waits
/// for the statements queued before it, and a statement that meets another connection's write
/// lock gives up after the busy timeout. A connection whose driver thread has stopped (the
/// pool found those with its test) is replaced by the next caller after a write reported it.
enum Hot {
    /// A file store's own connection; `None` once the store is closed.
    Owned {
        conn: tokio::sync::Mutex<Option<Held>>,
        /// How to open it again.
        connect: Box<SqliteConnectOptions>,
    },
    /// An in-memory store's only connection, in the pool every other call uses (each
    /// connection to `:memory:` is a database of its own).
    Shared(SqlitePool),
}

impl Hot {
    fn owned(conn: sqlx::SqliteConnection, connect: SqliteConnectOptions) -> Self {
        Hot::Owned {
            conn: tokio::sync::Mutex::new(Some(Held::new(conn))),
            connect: Box::new(connect),
        }
    }

    /// Waits for the connection (in the order callers asked for it), opening it again first
    /// if its driver thread stopped.
    ///
    /// # Errors
    /// [`StoreError::Closed`] once the store is closed; the driver's error if the connection
    /// cannot be opened again (the next caller tries again).
    async fn acquire(&self) -> Result<HotConnection<'_>, StoreError> {
        match self {
            Hot::Owned { conn, connect } => {
                let mut slot = conn.lock().await;
                match slot.as_mut() {
                    None => return Err(StoreError::Closed),
                    Some(held) if held.broken => {
                        // Dropping the old one ends what is left of it.
                        *held = Held::new(sqlx::ConnectOptions::connect(&**connect).await?);
                    }
                    Some(_) => {}
                }
                tokio::sync::MutexGuard::try_map(slot, Option::as_mut)
                    .map(HotConnection::Owned)
                    .map_err(|_| StoreError::Closed)
            }
            Hot::Shared(pool) => Ok(HotConnection::Shared(pool.acquire().await?)),
        }
    }

    /// Closes the connection once the statement running on it is done; later calls fail with
    /// [`StoreError::Closed`].
    async fn close(&self) {
        match self {
            Hot::Owned { conn, .. } => {
                let taken = conn.lock().await.take();
                if let Some(held) = taken {
                    // Closing only fails when the connection is broken, which closes it too.
                    let _ = sqlx::Connection::close(held.conn).await;
                }
            }
            Hot::Shared(pool) => pool.close().await,
        }
    }
}

/// A file store's hot connection, and what its last write left it in.
struct Held {
    conn: sqlx::SqliteConnection,
    /// The `synchronous` level, set by the last write that succeeded; `None` when unknown (a
    /// new connection, or a write that failed or was cancelled after it may have set another
    /// level).
    level: Option<Flush>,
    /// A write found the driver's thread gone: the next caller opens a new connection.
    broken: bool,
}

impl Held {
    fn new(conn: sqlx::SqliteConnection) -> Self {
        Held {
            conn,
            level: None,
            broken: false,
        }
    }
}

/// The hot connection, held by one caller.
enum HotConnection<'a> {
    Owned(tokio::sync::MappedMutexGuard<'a, Held>),
    Shared(sqlx::pool::PoolConnection<sqlx::Sqlite>),
}

impl HotConnection<'_> {
    /// Starts a write that must commit at `want`: returns the level to set in front of it, or
    /// `None` when the connection is at `want` already (workers claiming one after another
    /// then skip the `PRAGMA`, a statement and a round trip of its own). The level counts as
    /// unknown until [`settled`](Self::settled) records the write's success.
    fn set_for(&mut self, want: Flush) -> Option<Flush> {
        match self {
            HotConnection::Owned(held) => {
                let known = held.level.take();
                (known != Some(want)).then_some(want)
            }
            // The pool's connection is shared with every other call: always set it.
            HotConnection::Shared(_) => Some(want),
        }
    }

    /// Records the outcome of a write started with [`set_for`](Self::set_for)`(want)`: after
    /// a success the connection is at `want`; after an error that says the driver's thread is
    /// gone, the next [`Hot::acquire`] opens a new connection.
    fn settled<T>(&mut self, want: Flush, result: &Result<T, StoreError>) {
        if let HotConnection::Owned(held) = self {
            match result {
                Ok(_) => held.level = Some(want),
                Err(StoreError::Sqlx(sqlx::Error::WorkerCrashed)) => held.broken = true,
                Err(_) => {}
            }
        }
    }
}

impl std::ops::Deref for HotConnection<'_> {
    type Target = sqlx::SqliteConnection;

    fn deref(&self) -> &Self::Target {
        match self {
            HotConnection::Owned(held) => &held.conn,
            HotConnection::Shared(conn) => conn,
        }
    }
}

impl std::ops::DerefMut for HotConnection<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match self {
            HotConnection::Owned(held) => &mut held.conn,
            HotConnection::Shared(conn) => conn,
        }
    }
}

/// The `synchronous` level a statement on the hot connection commits with; it is set by the
/// statement itself (a `PRAGMA` in front of it, in the same round trip), unless the last write
/// on the connection is known to have left it there (see [`HotConnection::set_for`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flush {
    /// `synchronous = FULL`.
    Flushed,
    /// `synchronous = NORMAL`.
    Unflushed,
}

impl Flush {
    /// The `PRAGMA` that sets this level, to put in front of a statement built at run time.
    fn pragma(self) -> &'static str {
        match self {
            Flush::Flushed => "PRAGMA synchronous = FULL; ",
            Flush::Unflushed => "PRAGMA synchronous = NORMAL; ",
        }
    }

    /// The `BEGIN IMMEDIATE` of a transaction that commits at this level.
    fn begin(self) -> &'static str {
        match self {
            Flush::Flushed => "PRAGMA synchronous = FULL; BEGIN IMMEDIATE",
            Flush::Unflushed => "PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE",
        }
    }

    /// The `BEGIN IMMEDIATE` of a transaction that first sets `set`, if any (see
    /// [`HotConnection::set_for`]).
    fn begin_setting(set: Option<Flush>) -> &'static str {
        set.map_or("BEGIN IMMEDIATE", Flush::begin)
    }
}
