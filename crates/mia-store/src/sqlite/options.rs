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
    /// database (a checkpoint: see [`SqliteOptions::with_checkpoint_pages`]), so a power cut or
    /// an operating system crash may lose the commits since the last checkpoint: the outbox
    /// then forgets those sends' results and retries them, which the transport's idempotency
    /// key recognises.
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
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SqliteOptions {
    pub(super) durability: Durability,
    pub(super) checkpoint_pages: u32,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            durability: Durability::default(),
            checkpoint_pages: Self::DEFAULT_CHECKPOINT_PAGES,
        }
    }
}

impl SqliteOptions {
    /// The default of [`with_checkpoint_pages`](Self::with_checkpoint_pages): 32,768 pages of
    /// 4 KiB, 128 MiB of WAL.
    pub const DEFAULT_CHECKPOINT_PAGES: u32 = 32_768;

    /// The defaults: [`Durability::Normal`], a checkpoint every
    /// [`DEFAULT_CHECKPOINT_PAGES`](Self::DEFAULT_CHECKPOINT_PAGES).
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

    /// How many pages (4 KiB each) the WAL file may collect before the commit that passes
    /// them copies them back into the database file (a checkpoint, with two flushes). Zero
    /// counts as one, and more than `i32::MAX` as `i32::MAX`. The default is
    /// [`DEFAULT_CHECKPOINT_PAGES`](Self::DEFAULT_CHECKPOINT_PAGES); SQLite's own is 1,000.
    ///
    /// A checkpoint writes each page once however many commits changed it since the last one,
    /// so rarer checkpoints write much less when the same pages change again and again: a
    /// batch of events changes pages of the `(contact, id)` index all over, and the next batch
    /// the same pages. On the bench machine, events shaped like mia's went in 7–38% faster
    /// with 32,768 pages than with 8,192, in batches of 10,000 and of 100,000 (`cargo bench
    /// --bench events --features full`, two alternating runs of each build).
    ///
    /// The price:
    /// - the WAL file takes up to this much disk, and one large commit more; after a
    ///   checkpoint it is kept at up to one and a half times this, so that later commits reuse
    ///   it rather than grow it again;
    /// - the checkpoint runs inside the commit that crosses the interval, on the writing
    ///   connection, so the claims and updates queued behind that commit wait for it;
    /// - a reader looks pages up in a larger WAL index (a few percent slower just before a
    ///   checkpoint), and opening the file after a crash reads the whole WAL once;
    /// - at [`Durability::Normal`] a power cut may lose the commits since the last checkpoint,
    ///   so up to this many pages of them;
    /// - a new file's WAL grows with every commit until the first checkpoint lets it start
    ///   over, and at [`Durability::Full`] a flush that grows a file costs more than one that
    ///   overwrites it (it writes the file's new size too): a new store commits more slowly
    ///   until its WAL first reaches this size, so measure one that has run that long.
    ///
    /// These bounds hold while checkpoints finish: one cannot start over at the beginning of
    /// the WAL while a reader still uses an older snapshot, so a reader that never lets go lets
    /// the WAL grow past them.
    #[must_use]
    pub fn with_checkpoint_pages(mut self, pages: u32) -> Self {
        // SQLite reads the setting as a 32-bit signed number, and 0 turns checkpoints off.
        self.checkpoint_pages = pages.clamp(1, i32::MAX.unsigned_abs());
        self
    }

    /// The checkpoint interval these options ask for, in pages.
    pub fn checkpoint_pages(&self) -> u32 {
        self.checkpoint_pages
    }

    /// The most bytes of WAL file kept after a checkpoint (`journal_size_limit`): one and a
    /// half times the checkpoint interval.
    pub(super) fn wal_size_limit(&self) -> u64 {
        u64::from(self.checkpoint_pages) * 4096 * 3 / 2
    }
}
