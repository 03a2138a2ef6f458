//! Conversions between domain values and SQLite columns.
//!
//! Timestamps are INTEGER microseconds since the Unix epoch: they sort and compare in SQL, and
//! an `i64` of microseconds covers every [`Timestamp`]. Sub-microsecond digits are dropped.
//! Unit enums are stored by their serde names; structured values as JSON text.

use jiff::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::error::StoreError;

/// A timestamp as stored.
pub(crate) fn micros(at: Timestamp) -> i64 {
    at.as_microsecond()
}

/// An optional timestamp as stored.
pub(crate) fn micros_opt(at: Option<Timestamp>) -> Option<i64> {
    at.map(micros)
}

/// Reads a column of any type a row can decode, calling a failure corruption.
pub(crate) fn column<'r, T>(row: &'r SqliteRow, name: &'static str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(name)
        .map_err(|e| StoreError::Corrupt(format!("column {name}: {e}")))
}

/// Reads a timestamp column.
pub(crate) fn timestamp(row: &SqliteRow, name: &'static str) -> Result<Timestamp, StoreError> {
    from_micros(column(row, name)?, name)
}

/// Reads a nullable timestamp column.
pub(crate) fn timestamp_opt(
    row: &SqliteRow,
    name: &'static str,
) -> Result<Option<Timestamp>, StoreError> {
    column::<Option<i64>>(row, name)?
        .map(|us| from_micros(us, name))
        .transpose()
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

/// Reads a JSON text column into `T`.
pub(crate) fn json<T: DeserializeOwned>(
    row: &SqliteRow,
    name: &'static str,
) -> Result<T, StoreError> {
    let text: String = column(row, name)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("column {name}: {e}")))
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

/// Reads a column written by [`name_of`].
pub(crate) fn named<T: DeserializeOwned>(
    row: &SqliteRow,
    name: &'static str,
) -> Result<T, StoreError> {
    let text: String = column(row, name)?;
    serde_json::from_value(serde_json::Value::String(text))
        .map_err(|e| StoreError::Corrupt(format!("column {name}: {e}")))
}

/// Reads an INTEGER column into an unsigned count or number.
pub(crate) fn unsigned<T: TryFrom<i64>>(
    row: &SqliteRow,
    name: &'static str,
) -> Result<T, StoreError> {
    let n: i64 = column(row, name)?;
    T::try_from(n).map_err(|_| StoreError::Corrupt(format!("column {name}: {n} is out of range")))
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
