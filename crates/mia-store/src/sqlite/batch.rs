//! Multi-row INSERTs for large batches.
//!
//! Each statement the driver runs is a round trip to its worker thread, so 10,000 one-row
//! INSERTs cost far more than the SQLite work they do. Rows go [`CHUNK`] to a statement
//! instead, and the remainder one by one, so only two statement texts exist per table and the
//! driver's per-connection statement cache keeps both prepared.

use std::sync::Arc;

use sqlx::query::Query;
use sqlx::sqlite::SqliteArguments;
use sqlx::{AssertSqlSafe, Sqlite, SqliteConnection};

use crate::error::StoreError;

/// A query whose binds are being added.
pub(crate) type Binds = Query<'static, Sqlite, SqliteArguments>;

/// Rows per statement: 64 rows of at most 16 columns stay far below SQLite's limit of 32,766
/// bound parameters.
const CHUNK: usize = 64;

/// An INSERT statement split where its rows go.
pub(crate) struct Insert {
    /// `INSERT INTO table (a, b)`.
    pub(crate) head: &'static str,
    /// The placeholders of one row: `(?, ?)`.
    pub(crate) row: &'static str,
    /// What follows the rows: `ON CONFLICT (a) DO NOTHING`, or nothing.
    pub(crate) tail: &'static str,
}

impl Insert {
    fn sql(&self, rows: usize) -> Arc<str> {
        let mut sql = String::with_capacity(
            self.head.len() + self.tail.len() + 10 + rows * (self.row.len() + 2),
        );
        sql.push_str(self.head);
        sql.push_str(" VALUES ");
        for i in 0..rows {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(self.row);
        }
        sql.push(' ');
        sql.push_str(self.tail);
        sql.into()
    }

    /// Inserts `items`, binding each one's columns with `bind`, and returns how many rows
    /// changed. Runs on `conn`, which should be inside a transaction: a failure leaves the
    /// earlier chunks written until the caller rolls back.
    pub(crate) async fn run<T>(
        &self,
        conn: &mut SqliteConnection,
        items: &[T],
        bind: impl Fn(Binds, &T) -> Result<Binds, StoreError>,
    ) -> Result<u64, StoreError> {
        self.run_sized(conn, items, &[CHUNK, 1], bind).await
    }

    /// Like [`run`](Self::run), with statements of the given numbers of rows, largest first
    /// and ending with 1: as many of the largest as fit, then of the next size for what is
    /// left, and so on. Each size is one statement text, kept prepared by the driver.
    pub(crate) async fn run_sized<T>(
        &self,
        conn: &mut SqliteConnection,
        mut items: &[T],
        sizes: &[usize],
        bind: impl Fn(Binds, &T) -> Result<Binds, StoreError>,
    ) -> Result<u64, StoreError> {
        let mut changed = 0;
        for (i, &size) in sizes.iter().enumerate() {
            // The last size takes everything left, so no item is ever dropped.
            let size = if i + 1 == sizes.len() { 1 } else { size.max(1) };
            let mut chunks = items.chunks_exact(size);
            if chunks.len() > 0 {
                // Built from the constant parts above only; every value is bound.
                let sql = self.sql(size);
                for chunk in &mut chunks {
                    let mut query = sqlx::query(AssertSqlSafe(Arc::clone(&sql)));
                    for item in chunk {
                        query = bind(query, item)?;
                    }
                    changed += query.execute(&mut *conn).await?.rows_affected();
                }
            }
            items = chunks.remainder();
        }
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_joined_between_head_and_tail() {
        let insert = Insert {
            head: "INSERT INTO t (a, b)",
            row: "(?, ?)",
            tail: "ON CONFLICT (a) DO NOTHING",
        };
        assert_eq!(
            &*insert.sql(2),
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?) ON CONFLICT (a) DO NOTHING"
        );
    }
}
