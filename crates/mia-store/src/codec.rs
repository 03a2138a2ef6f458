//! Conversions between domain values and columns, shared by every backend.
//!
//! Timestamps are 64-bit integer microseconds since the Unix epoch: they sort and compare in
//! SQL, and an `i64` of microseconds covers every [`Timestamp`]. Sub-microsecond digits are
//! dropped. Unit enums are stored by their serde names; structured values as JSON (text in
//! SQLite, JSONB in Postgres).
//!
//! Each backend implements [`Columns`] for its row type (how to read text, integers and JSON);
//! everything above that (timestamps, enum names, whole aggregates in [`crate::rows`]) is
//! written once here.

use jiff::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::StoreError;

/// Typed access to the columns of a result row. A failure to read or decode a column is
/// [`StoreError::Corrupt`] naming the column, never a panic.
pub(crate) trait Columns {
    /// A non-null text column.
    fn text(&self, name: &'static str) -> Result<String, StoreError>;
    /// A nullable text column.
    fn text_opt(&self, name: &'static str) -> Result<Option<String>, StoreError>;
    /// A non-null 64-bit integer column.
    fn integer(&self, name: &'static str) -> Result<i64, StoreError>;
    /// A nullable 64-bit integer column.
    fn integer_opt(&self, name: &'static str) -> Result<Option<i64>, StoreError>;
    /// A nullable double-precision column.
    fn real_opt(&self, name: &'static str) -> Result<Option<f64>, StoreError>;
    /// A JSON column decoded into `T`.
    fn json<T: DeserializeOwned>(&self, name: &'static str) -> Result<T, StoreError>;

    /// A timestamp column.
    fn timestamp(&self, name: &'static str) -> Result<Timestamp, StoreError> {
        from_micros(self.integer(name)?, name)
    }

    /// A nullable timestamp column.
    fn timestamp_opt(&self, name: &'static str) -> Result<Option<Timestamp>, StoreError> {
        self.integer_opt(name)?
            .map(|us| from_micros(us, name))
            .transpose()
    }

    /// A column written by [`name_of`].
    fn named<T: DeserializeOwned>(&self, name: &'static str) -> Result<T, StoreError> {
        let text = self.text(name)?;
        serde_json::from_value(serde_json::Value::String(text))
            .map_err(|e| StoreError::Corrupt(format!("column {name}: {e}")))
    }

    /// An integer column holding an unsigned count or number.
    fn unsigned<T: TryFrom<i64>>(&self, name: &'static str) -> Result<T, StoreError> {
        let n = self.integer(name)?;
        T::try_from(n)
            .map_err(|_| StoreError::Corrupt(format!("column {name}: {n} is out of range")))
    }

    /// A nullable integer column that must fit `T`.
    fn unsigned_opt<T: TryFrom<i64>>(&self, name: &'static str) -> Result<Option<T>, StoreError> {
        self.integer_opt(name)?
            .map(|n| {
                T::try_from(n)
                    .map_err(|_| StoreError::Corrupt(format!("column {name}: {n} is out of range")))
            })
            .transpose()
    }
}

/// Reads a column of any type the driver can decode, calling a failure corruption. The
/// backends' [`Columns`] impls are built on it.
pub(crate) fn column<'r, R, T>(row: &'r R, name: &'static str) -> Result<T, StoreError>
where
    R: sqlx::Row,
    &'static str: sqlx::ColumnIndex<R>,
    T: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    row.try_get(name)
        .map_err(|e| StoreError::Corrupt(format!("column {name}: {e}")))
}

/// A timestamp as stored.
pub(crate) fn micros(at: Timestamp) -> i64 {
    at.as_microsecond()
}

/// An optional timestamp as stored.
pub(crate) fn micros_opt(at: Option<Timestamp>) -> Option<i64> {
    at.map(micros)
}

/// A stored timestamp. Goes through seconds and nanoseconds because
/// `Timestamp::from_microsecond` refuses the microseconds of the last second of
/// [`Timestamp::MAX`].
pub(crate) fn from_micros(us: i64, name: &'static str) -> Result<Timestamp, StoreError> {
    // Truncating division gives both parts the same sign, as `Timestamp::new` wants.
    let nanos = i32::try_from(us % 1_000_000 * 1_000).unwrap_or_default();
    Timestamp::new(us / 1_000_000, nanos)
        .map_err(|e| StoreError::Corrupt(format!("column {name}: {us} is not a timestamp: {e}")))
}

/// Encodes `value` as JSON text.
pub(crate) fn to_json<T: Serialize + ?Sized>(
    value: &T,
    what: &'static str,
) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|source| StoreError::Encode { what, source })
}

/// The serde name of a unit enum variant (`PeerKind::User` is `"user"`).
pub(crate) fn name_of<T: Serialize>(value: &T, what: &'static str) -> Result<String, StoreError> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => Ok(name),
        Ok(other) => Err(StoreError::Corrupt(format!(
            "{what} is not a unit variant: {other}"
        ))),
        Err(source) => Err(StoreError::Encode { what, source }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use mia_core::PeerKind;

    #[test]
    fn microseconds_round_trip_and_keep_order() {
        let a = Timestamp::new(1_800_000_000, 123_456_000).unwrap();
        assert_eq!(from_micros(micros(a), "t").unwrap(), a);
        for t in [Timestamp::MIN, Timestamp::MAX] {
            let back = from_micros(micros(t), "t").unwrap();
            assert!(back.duration_since(t).abs() < jiff::SignedDuration::from_micros(1));
        }
        let before_epoch = Timestamp::new(-5, -123_456_000).unwrap();
        assert_eq!(
            from_micros(micros(before_epoch), "t").unwrap(),
            before_epoch
        );
        assert!(from_micros(i64::MAX, "t").is_err());
    }

    #[test]
    fn unit_variants_use_their_serde_names() {
        assert_eq!(name_of(&PeerKind::Channel, "kind").unwrap(), "channel");
    }
}
