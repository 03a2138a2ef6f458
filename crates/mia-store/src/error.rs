//! The one error type of `mia-store`, and its conversion into [`mia_core::Error`].

use std::path::PathBuf;

/// SQLite's primary result codes for a database another connection holds
/// (<https://www.sqlite.org/rescode.html>): `SQLITE_BUSY` and `SQLITE_LOCKED`.
#[cfg(feature = "sqlite")]
const SQLITE_BUSY: i64 = 5;
#[cfg(feature = "sqlite")]
const SQLITE_LOCKED: i64 = 6;

/// Postgres SQLSTATEs after which the same statement may succeed
/// (<https://www.postgresql.org/docs/current/errcodes-appendix.html>): a serialization failure
/// or deadlock (the transaction was chosen as the victim), too many connections, a lock wait
/// that timed out, and the server shutting down or starting up. Class `08` (connection
/// exceptions) is matched by prefix.
#[cfg(feature = "postgres")]
const POSTGRES_RETRYABLE: &[&str] = &[
    "40001", // serialization_failure
    "40P01", // deadlock_detected
    "53300", // too_many_connections
    "55P03", // lock_not_available
    "57P01", // admin_shutdown
    "57P02", // crash_shutdown
    "57P03", // cannot_connect_now
];

/// Everything that can go wrong in a store of this crate.
///
/// Converts into [`mia_core::Error::Store`] with the same
/// [`is_retryable`](StoreError::is_retryable) answer and this error as the source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The driver failed: SQL, I/O, the connection pool.
    #[error("{0}")]
    Sqlx(#[from] sqlx::Error),
    /// A schema migration failed; the database is left at the version before it.
    #[error("schema migration to version {version} failed: {source}")]
    Migration {
        /// The version that could not be applied.
        version: i64,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The database was written by a newer build of this crate.
    #[error("database schema version {found} is newer than the newest this build knows ({known})")]
    SchemaTooNew {
        /// The version found in the database.
        found: i64,
        /// The newest version this build can read and write.
        known: i64,
    },
    /// The folder for the database file could not be created.
    #[error("cannot create the folder {path:?} for the database: {source}")]
    CreateFolder {
        /// The folder.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A stored row could not be decoded (hand-edited or damaged data).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The store was closed ([`SqliteStore::close`](crate::SqliteStore::close)).
    #[error("the store is closed")]
    Closed,
    /// A value could not be encoded for storage.
    #[error("cannot encode {what}: {source}")]
    Encode {
        /// Which value.
        what: &'static str,
        /// The encoder's error.
        #[source]
        source: serde_json::Error,
    },
}

impl StoreError {
    /// Whether the same call may succeed if tried again later: the database was busy or
    /// locked by another connection (SQLite), the transaction lost a serialization conflict
    /// or a deadlock, the connection failed or the server is shutting down (Postgres), the
    /// pool had no free connection in time, or I/O failed.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Sqlx(e) | StoreError::Migration { source: e, .. } => sqlx_retryable(e),
            StoreError::SchemaTooNew { .. }
            | StoreError::CreateFolder { .. }
            | StoreError::Corrupt(_)
            | StoreError::Closed
            | StoreError::Encode { .. } => false,
        }
    }
}

fn sqlx_retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => true,
        sqlx::Error::Database(db) => database_retryable(&**db),
        _ => false,
    }
}

/// Whether a database's own error is worth a retry. The codes mean different things per
/// database, so each driver's errors are recognised by type before their codes are read.
#[cfg_attr(
    not(any(feature = "sqlite", feature = "postgres")),
    allow(unused_variables)
)]
fn database_retryable(db: &dyn sqlx::error::DatabaseError) -> bool {
    #[cfg(feature = "sqlite")]
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        return db
            .code()
            .and_then(|code| code.parse::<i64>().ok())
            // The driver reports extended codes (`SQLITE_BUSY_SNAPSHOT` is 517); the primary
            // code is the low byte.
            .is_some_and(|code| matches!(code & 0xff, SQLITE_BUSY | SQLITE_LOCKED));
    }
    #[cfg(feature = "postgres")]
    if let Some(e) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        return postgres_code_retryable(e.code());
    }
    false
}

/// Whether a Postgres SQLSTATE is worth a retry.
#[cfg(feature = "postgres")]
fn postgres_code_retryable(code: &str) -> bool {
    code.starts_with("08") || POSTGRES_RETRYABLE.contains(&code)
}

impl From<StoreError> for mia_core::Error {
    fn from(err: StoreError) -> Self {
        let retryable = err.is_retryable();
        mia_core::Error::store(err.to_string(), retryable, err)
    }
}

/// Adds what the store was doing to an error on its way into [`mia_core::Error`].
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) trait Context<T> {
    /// Converts the error, prefixing its message with `doing` (`"claim jobs"`).
    fn context(self, doing: &'static str) -> mia_core::Result<T>;
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl<T, E: Into<StoreError>> Context<T> for Result<T, E> {
    fn context(self, doing: &'static str) -> mia_core::Result<T> {
        self.map_err(|e| {
            let err = e.into();
            let retryable = err.is_retryable();
            mia_core::Error::store(format!("{doing}: {err}"), retryable, err)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn pool_timeouts_are_retryable_and_corruption_is_not() {
        assert!(StoreError::Sqlx(sqlx::Error::PoolTimedOut).is_retryable());
        assert!(!StoreError::Corrupt("bad json".into()).is_retryable());
        let core: mia_core::Error = StoreError::Sqlx(sqlx::Error::PoolTimedOut).into();
        assert!(core.is_retryable());
        assert!(matches!(core, mia_core::Error::Store { .. }));
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn postgres_conflicts_and_lost_connections_are_retryable() {
        for code in ["40001", "40P01", "08006", "57P01"] {
            assert!(postgres_code_retryable(code), "{code}");
        }
        // A unique violation, a syntax error, and a code whose low byte would look like
        // SQLITE_BUSY if read as a number.
        for code in ["23505", "42601", "42501"] {
            assert!(!postgres_code_retryable(code), "{code}");
        }
    }

    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[test]
    fn context_names_the_operation_and_keeps_the_source() {
        let res: Result<(), StoreError> = Err(StoreError::Corrupt("contacts.attributes".into()));
        let err = res.context("read contacts").unwrap_err();
        assert!(err.to_string().contains("read contacts"), "{err}");
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("corrupt row: contacts.attributes"));
    }
}
