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
    /// Where the next column asked for is looked for first: decoders read the columns in the
    /// order they are packed, so a lookup is one comparison rather than a search.
    next: std::cell::Cell<usize>,
}

/// One value of a packed row, borrowed from the packed text where it has no escapes: what
/// `json_array` makes of an SQLite value (a real only in a damaged row, see [`JsonRow`]).
/// Decoding into these rather than into `serde_json::Value` skips a copy of every text (and
/// the allocation for it) and the `Value`s themselves.
#[derive(Debug, PartialEq)]
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
        let guess = self.next.get();
        let index = match self.names.get(guess) {
            Some(&n) if n == name => Some(guess),
            _ => self.names.iter().position(|&n| n == name),
        };
        self.next.set(index.map_or(0, |i| i + 1));
        index
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
    let rows = match scan_plain(packed) {
        Some(rows) => rows,
        None => serde_json::from_str(packed)
            .map_err(|e| StoreError::Corrupt(format!("packed rows: {e}")))?,
    };
    rows.into_iter()
        .map(|values| {
            decode(&JsonRow {
                names,
                values,
                next: std::cell::Cell::new(0),
            })
        })
        .collect()
}

/// The rows of a pack in the shape `json_group_array(json_array(...))` gives when no text needs
/// an escape (ids, names and keys as mia writes them): `[[v,v,...],...]` without spaces, where
/// each `v` is `null`, an integer, or a string without `\` or control characters. Anything
/// else (an escape, a real, a space, a damaged pack) gives `None`, and the caller reads the
/// pack with `serde_json` instead, so the answer is the same either way; this only skips the
/// general parser's work for the usual pack (a quarter of a 500-job claim's decoding, by
/// callgrind over `examples/outbox_drain.rs`).
fn scan_plain(packed: &str) -> Option<Vec<Vec<Packed<'_>>>> {
    let bytes = packed.as_bytes();
    let mut at = 0;
    let mut rows = Vec::new();
    let eat = |at: &mut usize, byte: u8| -> bool {
        let found = bytes.get(*at) == Some(&byte);
        *at += usize::from(found);
        found
    };
    if !eat(&mut at, b'[') {
        return None;
    }
    if eat(&mut at, b']') {
        return (at == bytes.len()).then_some(rows);
    }
    loop {
        if !eat(&mut at, b'[') {
            return None;
        }
        let mut values = Vec::with_capacity(rows.last().map_or(0, Vec::len));
        if !eat(&mut at, b']') {
            loop {
                values.push(scan_value(packed, &mut at)?);
                if eat(&mut at, b']') {
                    break;
                }
                if !eat(&mut at, b',') {
                    return None;
                }
            }
        }
        rows.push(values);
        if eat(&mut at, b']') {
            return (at == bytes.len()).then_some(rows);
        }
        if !eat(&mut at, b',') {
            return None;
        }
    }
}

/// One value for [`scan_plain`] at `*at`, which it moves past the value; `None` for anything
/// but `null`, an integer that fits `i64` written as JSON writes it (no leading zero, no `-0`),
/// or a string without escapes or control characters.
fn scan_value<'a>(packed: &'a str, at: &mut usize) -> Option<Packed<'a>> {
    let bytes = packed.as_bytes();
    let rest = bytes.get(*at..)?;
    match rest.first()? {
        b'n' if rest.starts_with(b"null") => {
            *at += 4;
            Some(Packed::Null)
        }
        b'"' => {
            let len = rest[1..]
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
            if rest[1 + len] != b'"' {
                return None;
            }
            // Both ends are ASCII quotes, so the slice falls on character boundaries.
            let text = packed.get(*at + 1..*at + 1 + len)?;
            *at += len + 2;
            Some(Packed::Text(Cow::Borrowed(text)))
        }
        b'-' | b'0'..=b'9' => {
            let sign = usize::from(rest[0] == b'-');
            let digits = rest[sign..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            let end = sign + digits;
            let zero_led = digits > 1 && rest[sign] == b'0';
            let minus_zero = sign == 1 && digits == 1 && rest[1] == b'0';
            let more = matches!(rest.get(end), Some(b'.' | b'e' | b'E'));
            if digits == 0 || zero_led || minus_zero || more {
                return None;
            }
            let n = packed.get(*at..*at + end)?.parse::<i64>().ok()?;
            *at += end;
            Some(Packed::Integer(n))
        }
        _ => None,
    }
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

    /// What `serde_json` reads from `packed`, the general path.
    fn general(packed: &str) -> Option<Vec<Vec<Packed<'_>>>> {
        serde_json::from_str(packed).ok()
    }

    #[test]
    fn the_plain_scan_reads_what_sqlite_packs_as_serde_json_does() {
        for packed in [
            "[]",
            "[[]]",
            r#"[["k1","spring",null,0,-7,9223372036854775807,-9223372036854775808,""]]"#,
            r#"[["ünïcødé 😀",1],["b",null],["",0]]"#,
            "[[\"del \u{7f}\",1]]",
        ] {
            let scanned = scan_plain(packed);
            assert!(scanned.is_some(), "{packed}");
            assert_eq!(scanned, general(packed), "{packed}");
        }
        // Deterministic pseudo-random packs of the plain shape, checked against serde_json.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            seed >> 33
        };
        for _ in 0..500 {
            let rows: Vec<serde_json::Value> = (0..next() % 4)
                .map(|_| {
                    let values = (0..next() % 6).map(|_| match next() % 3 {
                        0 => serde_json::Value::Null,
                        1 => serde_json::json!((next() as i64 - (1 << 30)) * (next() as i64)),
                        _ => {
                            let text: String = (0..next() % 12)
                                .map(|_| char::from(b' ' + (next() % 95) as u8))
                                .filter(|&c| c != '"' && c != '\\')
                                .collect();
                            serde_json::Value::String(text)
                        }
                    });
                    serde_json::Value::Array(values.collect())
                })
                .collect();
            let packed = serde_json::to_string(&rows).unwrap();
            let scanned = scan_plain(&packed);
            assert!(scanned.is_some(), "{packed}");
            assert_eq!(scanned, general(&packed), "{packed}");
        }
    }

    #[test]
    fn anything_but_the_plain_shape_goes_to_serde_json() {
        for packed in [
            r#"[["a\"b"]]"#,
            r#"[["a\u0000"]]"#,
            "[[\"a\u{1}\"]]",
            "[[1.5]]",
            "[[1e3]]",
            "[[01]]",
            "[[-01]]",
            "[[-0]]",
            "[[1E5]]",
            "[[-9223372036854775809]]",
            "[[null1]]",
            "[[-]]",
            "[[9223372036854775808]]",
            "[[true]]",
            "[[[1]]]",
            "[[1, 2]]",
            " [[1]]",
            "[[1]] ",
            "[[1]",
            "[[1],",
            "[[1]]x",
            "[[nul]]",
            r#"[["a]]"#,
            r#"{"a":1}"#,
            "",
        ] {
            assert_eq!(scan_plain(packed), None, "{packed}");
        }
        // Packs with escapes are read through serde_json; `-0` is a real there, so both paths
        // refuse it as an integer.
        let row = one(r#"[["a\"b",5,null,"\u00e9"]]"#).unwrap();
        assert_eq!(row, ("a\"b".into(), 5, None, Some("é".into())));
        assert!(matches!(
            one(r#"[["a",-0,null,null]]"#),
            Err(StoreError::Corrupt(_))
        ));
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
