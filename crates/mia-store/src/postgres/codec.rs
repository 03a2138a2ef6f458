//! [`Columns`] for Postgres rows: integers are `BIGINT`, reals `DOUBLE PRECISION`, and JSON is
//! `JSONB`.

use serde::de::DeserializeOwned;
use sqlx::postgres::PgRow;
use sqlx::types::Json;

use crate::codec::{Columns, column};
use crate::error::StoreError;

impl Columns for PgRow {
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
        // JSONB is valid JSON by construction, but may not have the shape `T` wants.
        column::<_, Json<T>>(self, name).map(|Json(value)| value)
    }
}
