//! [`Columns`] for SQLite rows: integers are `INTEGER`, reals `REAL`, and JSON is text.

use std::borrow::Cow;

use serde::de::{self, DeserializeOwned, Visitor};
use serde::{Deserialize, Deserializer};
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

/// A row that SQLite packed into a JSON array (`json_array(...)`), read by the names of its
/// columns in order: many rows packed into one value come back from the driver's thread as one
/// message instead of one each. Reals are not packed: SQLite's JSON writes them with 15
/// digits, and its `printf` rounds some doubles to a neighbour even with 20; read them as
/// rows of their own.
pub(super) struct JsonRow<'a> {
    /// The column names, in the order of `values`.
    pub(super) names: &'a [&'static str],
    /// The values.
    values: Vec<Packed<'a>>,
}

/// One value of a packed row, borrowed from the packed text where it has no escapes: what
/// `json_array` makes of an SQLite value (a real only in a damaged row, see [`JsonRow`]).
/// Decoding into these rather than into `serde_json::Value` skips a copy of every text (and
/// the allocation for it) and the `Value`s themselves.
enum Packed<'a> {
    Null,
    Integer(i64),
    Real(f64),
    Text(Cow<'a, str>),
}

impl std::fmt::Display for Packed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Packed::Null => f.write_str("null"),
            Packed::Integer(n) => write!(f, "{n}"),
            Packed::Real(x) => write!(f, "{x}"),
            Packed::Text(text) => write!(f, "{text:?}"),
        }
    }
}

impl<'de> Deserialize<'de> for Packed<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Scalar;

        impl<'de> Visitor<'de> for Scalar {
            type Value = Packed<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an integer, a string or null")
            }

            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Packed::Null)
            }

            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
                Ok(Packed::Integer(n))
            }

            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
                i64::try_from(n)
                    .map(Packed::Integer)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(n), &self))
            }

            fn visit_f64<E: de::Error>(self, x: f64) -> Result<Self::Value, E> {
                Ok(Packed::Real(x))
            }

            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(Packed::Text(Cow::Borrowed(text)))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(Packed::Text(Cow::Owned(text.to_owned())))
            }

            fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
                Ok(Packed::Text(Cow::Owned(text)))
            }
        }

        deserializer.deserialize_any(Scalar)
    }
}

impl JsonRow<'_> {
    /// The value of column `name`.
    fn get(&self, name: &'static str) -> Result<&Packed<'_>, StoreError> {
        self.names
            .iter()
            .position(|&n| n == name)
            .and_then(|i| self.values.get(i))
            .ok_or_else(|| StoreError::Corrupt(format!("column {name}: missing")))
    }

    /// The value of column `name`, `None` for SQL `NULL`.
    fn get_opt(&self, name: &'static str) -> Result<Option<&Packed<'_>>, StoreError> {
        self.get(name)
            .map(|v| (!matches!(v, Packed::Null)).then_some(v))
    }
}

/// The error for a packed value of the wrong type.
fn mistyped(name: &'static str, want: &str, found: &Packed<'_>) -> StoreError {
    StoreError::Corrupt(format!("column {name}: expected {want}, found {found}"))
}

fn text_of(name: &'static str, v: &Packed<'_>) -> Result<String, StoreError> {
    match v {
        Packed::Text(text) => Ok(text.as_ref().to_owned()),
        _ => Err(mistyped(name, "text", v)),
    }
}

fn integer_of(name: &'static str, v: &Packed<'_>) -> Result<i64, StoreError> {
    match v {
        Packed::Integer(n) => Ok(*n),
        _ => Err(mistyped(name, "an integer", v)),
    }
}

impl Columns for JsonRow<'_> {
    fn text(&self, name: &'static str) -> Result<String, StoreError> {
        text_of(name, self.get(name)?)
    }

    fn text_opt(&self, name: &'static str) -> Result<Option<String>, StoreError> {
        self.get_opt(name)?.map(|v| text_of(name, v)).transpose()
    }

    fn integer(&self, name: &'static str) -> Result<i64, StoreError> {
        integer_of(name, self.get(name)?)
    }

    fn integer_opt(&self, name: &'static str) -> Result<Option<i64>, StoreError> {
        self.get_opt(name)?.map(|v| integer_of(name, v)).transpose()
    }

    fn real_opt(&self, name: &'static str) -> Result<Option<f64>, StoreError> {
        match self.get_opt(name)? {
            None => Ok(None),
            Some(v) => Err(mistyped(name, "NULL (reals are not packed)", v)),
        }
    }

    fn json<T: DeserializeOwned>(&self, name: &'static str) -> Result<T, StoreError> {
        serde_json::from_str(&self.text(name)?)
            .map_err(|e| StoreError::Corrupt(format!("column {name}: {e}")))
    }
}

/// The rows of a `json_group_array(json_array(...))` value, each decoded with `decode` under
/// the column `names`.
pub(super) fn packed_rows<T>(
    packed: &str,
    names: &[&'static str],
    decode: impl Fn(&JsonRow<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let rows: Vec<Vec<Packed<'_>>> = serde_json::from_str(packed)
        .map_err(|e| StoreError::Corrupt(format!("packed rows: {e}")))?;
    rows.into_iter()
        .map(|values| decode(&JsonRow { names, values }))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const NAMES: [&str; 4] = ["name", "n", "p", "note"];

    fn one(packed: &str) -> Result<(String, i64, Option<f64>, Option<String>), StoreError> {
        let mut rows = packed_rows(packed, &NAMES, |row| {
            Ok((
                row.text("name")?,
                row.integer("n")?,
                row.real_opt("p")?,
                row.text_opt("note")?,
            ))
        })?;
        Ok(rows.remove(0))
    }

    #[test]
    fn packed_rows_read_back_their_values() {
        let row = one(r#"[["a \"q\" \\ \u0000 \ud83d\ude00", 9007199254740993, null, "n"]]"#);
        let text = "a \"q\" \\ \0 \u{1f600}".to_owned();
        assert_eq!(
            row.unwrap(),
            (text, 9_007_199_254_740_993, None, Some("n".into()))
        );
        assert_eq!(
            one(r#"[["plain", -7, null, null]]"#).unwrap(),
            ("plain".into(), -7, None, None)
        );
        assert!(
            packed_rows("[]", &NAMES, |row| row.text("name"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn damaged_packed_rows_are_corrupt_naming_the_column() {
        for (packed, column) in [
            (r#"[[1, 2, null, null]]"#, "column name"),
            (r#"[["a", "2", null, null]]"#, "column n"),
            (
                r#"[["a", 2, 0.5, null]]"#,
                "column p: expected NULL (reals are not packed)",
            ),
            (r#"[["a", 2, null, 3]]"#, "column note"),
            (r#"[["a", 2]]"#, "column p: missing"),
            (r#"{"a": 1}"#, "packed rows"),
            // Not a value `json_array` makes of an SQLite value: the whole pack is refused.
            (r#"[["a", 9223372036854775808, null, null]]"#, "packed rows"),
            (r#"[["a", true, null, null]]"#, "packed rows"),
            (r#"[["a", [2], null, null]]"#, "packed rows"),
        ] {
            match one(packed) {
                Err(StoreError::Corrupt(message)) => {
                    assert!(message.starts_with(column), "{packed}: {message}");
                }
                other => panic!("{packed}: {other:?}"),
            }
        }
    }
}
