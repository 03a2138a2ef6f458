//! Timestamps as microseconds since the Unix epoch, from text.

/// Parses a timestamp as microseconds since the Unix epoch (UTC): either an integer number of
/// microseconds (`1767225600000000`, possibly negative) or an RFC 3339 date-time with an
/// offset (`2026-01-01T00:00:00Z`, `2026-01-01T01:00:00.5+01:00`). Digits past the
/// microsecond are dropped, rounding towards the past. `None` when it is neither.
///
/// The common shapes are parsed directly (the CSV loader calls this ten million times); any
/// other RFC 3339 spelling goes through `jiff`.
pub fn parse_timestamp_micros(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let digits = match b.first() {
        Some(b'-') | Some(b'+') => &b[1..],
        _ => b,
    };
    if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
        return text.trim_start_matches('+').parse::<i64>().ok();
    }
    fast_rfc3339(b).or_else(|| {
        let ts: jiff::Timestamp = text.parse().ok()?;
        Some(micros_of(ts))
    })
}

/// Microseconds since the epoch, rounded towards the past.
pub(crate) fn micros_of(ts: jiff::Timestamp) -> i64 {
    // A jiff timestamp (years -9999..=9999) always fits in i64 microseconds.
    i64::try_from(ts.as_nanosecond().div_euclid(1000)).unwrap_or(i64::MAX)
}

#[inline]
fn two(b: &[u8], at: usize) -> Option<i64> {
    let (h, l) = (*b.get(at)?, *b.get(at + 1)?);
    if h.is_ascii_digit() && l.is_ascii_digit() {
        Some(i64::from(h - b'0') * 10 + i64::from(l - b'0'))
    } else {
        None
    }
}

/// `YYYY-MM-DD(T|t| )HH:MM:SS[.fraction](Z|z|±HH:MM)`; `None` for anything else (including
/// a leap second, which jiff handles).
fn fast_rfc3339(b: &[u8]) -> Option<i64> {
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let year = two(b, 0)? * 100 + two(b, 2)?;
    let (month, day) = (two(b, 5)?, two(b, 8)?);
    let (hour, minute, second) = (two(b, 11)?, two(b, 14)?, two(b, 17)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut pos = 19;
    let mut micros = 0i64;
    if b[pos] == b'.' {
        pos += 1;
        let start = pos;
        while pos < b.len() && b[pos].is_ascii_digit() {
            if pos - start < 6 {
                micros = micros * 10 + i64::from(b[pos] - b'0');
            }
            pos += 1;
        }
        let n = pos - start;
        if n == 0 {
            return None;
        }
        for _ in n..6 {
            micros *= 10;
        }
    }
    let offset = match b.get(pos)? {
        b'Z' | b'z' if pos + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if pos + 6 == b.len() && b[pos + 3] == b':' => {
            let (oh, om) = (two(b, pos + 1)?, two(b, pos + 4)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let secs = oh * 3600 + om * 60;
            if *sign == b'-' { -secs } else { secs }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some(secs * 1_000_000 + micros)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian (year, month, day) of a day count since 1970-01-01 (the inverse
/// of [`days_from_civil`]).
pub(crate) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_fast_path_agrees_with_jiff() {
        for text in [
            "1970-01-01T00:00:00Z",
            "2026-01-01T00:00:00Z",
            "2024-02-29T23:59:59.999999Z",
            "2024-02-29T23:59:59.9999999Z",
            "2026-03-05T10:20:30.5+01:00",
            "2026-03-05t10:20:30.123-07:30",
            "2026-03-05 10:20:30z",
            "1969-12-31T23:59:59.25Z",
            "1900-03-01T00:00:00+00:00",
            "2000-12-31T12:00:00.000001+14:00",
        ] {
            let jiff: jiff::Timestamp = text.parse().unwrap();
            assert_eq!(
                fast_rfc3339(text.as_bytes()),
                Some(micros_of(jiff)),
                "{text}"
            );
            assert_eq!(
                parse_timestamp_micros(text),
                Some(micros_of(jiff)),
                "{text}"
            );
        }
    }

    #[test]
    fn civil_dates_round_trip() {
        for days in [-719_468, -1, 0, 31, 59, 365, 10_957, 20_454, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{days}");
        }
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
    }

    #[test]
    fn integers_are_microseconds_and_garbage_is_refused() {
        assert_eq!(
            parse_timestamp_micros("1767225600000000"),
            Some(1_767_225_600_000_000)
        );
        assert_eq!(parse_timestamp_micros("-5"), Some(-5));
        assert_eq!(parse_timestamp_micros("+5"), Some(5));
        for bad in [
            "",
            "-",
            "12a",
            "yesterday",
            "2026-02-30T00:00:00Z",
            "2026-01-01T00:00:00",
            "2026-01-01T24:00:00Z",
            "99999999999999999999",
        ] {
            assert_eq!(parse_timestamp_micros(bad), None, "{bad}");
        }
        // A leap second is not on the fast path but jiff takes it (as :59).
        assert_eq!(
            parse_timestamp_micros("2016-12-31T23:59:60Z"),
            parse_timestamp_micros("2016-12-31T23:59:59Z")
        );
    }
}
