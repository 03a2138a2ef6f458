//! [`SqliteOptions`]: how [`SqliteStore::open_with`](super::SqliteStore::open_with) sets up a
//! file.

use sqlx::sqlite::SqliteSynchronous;

/// What a committed write survives. The file always runs in WAL mode; this picks SQLite's
/// `synchronous` setting.
///
/// Neither setting can corrupt the file: after any crash SQLite opens it at the last commit it
/// kept. They differ in which commits it keeps after the machine itself stops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// `synchronous=NORMAL`, the default. A call that returned has its write in the WAL file
    /// in the operating system's cache, so it survives the process being killed (SIGKILL, a
    /// panic, an abort). The WAL is flushed to the disk only when it is copied back into the
    /// database (a checkpoint, about every 1,000 pages), so a power cut or an operating system
    /// crash may lose the commits since the last checkpoint: the outbox then forgets those
    /// sends' results and retries them, which the transport's idempotency key recognises.
    #[default]
    Normal,
    /// `synchronous=FULL`. A call that returned has its write on the disk (the WAL file is
    /// flushed before the commit returns), so it also survives a power cut or an operating
    /// system crash, as far as the disk keeps what it acknowledged. Costs one flush per
    /// transaction; batched writes (`append_events`, `update_jobs`) share one flush.
    ///
    /// One exception keeps the outbox fast without weakening it: a claim's commit is not
    /// flushed by itself. It reaches the disk with the next flushed commit on the file, at the
    /// latest the claimed job's own `record_attempt` or `update_job`, so a claim whose job led
    /// to anything outside the database (a send) is always on the disk. A power cut can undo
    /// only a claim that nothing has acted on yet, and every worker that held it stopped with
    /// the machine; the job is then due again at once, as after an expired lease.
    Full,
}

impl Durability {
    pub(super) fn synchronous(self) -> SqliteSynchronous {
        match self {
            Durability::Normal => SqliteSynchronous::Normal,
            Durability::Full => SqliteSynchronous::Full,
        }
    }
}

/// Settings for [`SqliteStore::open_with`](super::SqliteStore::open_with).
///
/// ```rust,no_run
/// # async fn demo() -> mia_core::Result<()> {
/// use mia_store::{Durability, SqliteOptions, SqliteStore};
///
/// let options = SqliteOptions::new().with_durability(Durability::Full);
/// let store = SqliteStore::open_with("data/mia.db", options).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SqliteOptions {
    pub(super) durability: Durability,
}

impl SqliteOptions {
    /// The defaults: [`Durability::Normal`].
    pub fn new() -> Self {
        Self::default()
    }

    /// What a committed write survives.
    #[must_use]
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// The durability these options ask for.
    pub fn durability(&self) -> Durability {
        self.durability
    }
}
