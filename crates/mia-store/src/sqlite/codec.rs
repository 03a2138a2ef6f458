//! [`Columns`] for SQLite rows: integers are `INTEGER`, reals `REAL`, and JSON is text.

use serde::de::DeserializeOwned;
use sqlx::sqlite::SqliteRow;

use crate::codec::{Columns, column};
use crate::error::StoreError;

impl Columns for SqliteRow {
    fn text(&self, name: &'static str) -> Result<String, StoreError> {
        column(self, name)
    }

    fn text_opt(&self, name: &'static str) -> Result<Option<String>, StoreError> {
        column(self, name)
    }

    fn integer(&self, name: &'static str) -> Result<i64, StoreError> {
        column(self, name)
    }

    fn integer_opt(&self, name: &'static str) -> Result<Option<i64>, StoreError> {
        column(self, name)
    }

    fn real_opt(&self, name: &'static str) -> Result<Option<f64>, StoreError> {
        column(self, name)
    }

    fn json<T: DeserializeOwned>(&self, name: &'static str) -> Result<T, StoreError> {
        serde_json::from_str(&self.text(name)?)
            .map_err(|e| StoreError::Corrupt(format!("column {name}: {e}")))
    }
}
