//! Send windows: see [`SendWindow`].

use std::fmt;

use jiff::Timestamp;
use jiff::civil::{DateTime, Time, Weekday};
use jiff::tz::{AmbiguousOffset, TimeZone};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The rule name under which the worker defers a send outside its campaign's [`SendWindow`].
pub const SEND_WINDOW_RULE: &str = "send_window";

/// Weekday names as windows and recurrences write them, Monday first.
const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// The same days in full, also accepted on input.
const FULL_DAY_NAMES: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// The index (Monday 0) of the weekday named `name`: `mon` or `monday`, in any case.
pub(crate) fn weekday_named(name: &str) -> Option<usize> {
    let lower = name.to_ascii_lowercase();
    DAY_NAMES
        .iter()
        .position(|d| *d == lower)
        .or_else(|| FULL_DAY_NAMES.iter().position(|d| *d == lower))
}

/// Send windows: the hours and weekdays at which a campaign's messages may go out, on each
/// contact's own wall clock.
///
/// A [`SendWindow`] is set per campaign ([`CampaignSpec::send_window`]). The worker checks it
/// before the send policy: a job that falls outside the window is deferred (rule
/// [`SEND_WINDOW_RULE`]) to the window's next opening on the contact's clock, never dropped, and
/// every other rule (consent, caps, quiet hours) is judged again then.
///
/// Windows follow the contact's time zone with its real offsets: across a daylight-saving
/// change "09:00" is still 09:00 on the contact's clock; an opening that falls into a clock gap
/// (spring forward) opens at the moment after the gap, and in a repeated hour (fall back) at its
/// first occurrence.
///
/// ```
/// use jiff::{Timestamp, tz::TimeZone};
/// use mia_core::SendWindow;
///
/// // Weekday mornings, 09:00–12:00 on the contact's clock.
/// let window: SendWindow = serde_json::from_str(
///     r#"{"start": "09:00", "end": "12:00", "weekdays": ["mon", "tue", "wed", "thu", "fri"]}"#,
/// )?;
/// let berlin = TimeZone::get("Europe/Berlin")?;
/// // Saturday 2026-11-28 10:00 in Berlin: closed until Monday 09:00 there.
/// let saturday: Timestamp = "2026-11-28T09:00:00Z".parse()?;
/// assert_eq!(
///     window.next_open(saturday, &berlin),
///     Some("2026-11-30T08:00:00Z".parse()?)
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// [`CampaignSpec::send_window`]: crate::CampaignSpec::send_window
///
/// Local hours `[start, end)` on allowed weekdays. A window whose `end` is before its `start`
/// crosses midnight (`22:00`–`02:00`); it belongs to the weekday on which it opens.
///
/// Serialised as `{"start": "HH:MM", "end": "HH:MM", "weekdays": ["mon", ...]}`; `weekdays`
/// may be left out for every day.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "WindowSpec", into = "WindowSpec")]
pub struct SendWindow {
    start: Time,
    end: Time,
    /// Indexed by `Weekday::to_monday_zero_offset`.
    days: [bool; 7],
}

impl SendWindow {
    /// Every day from `start` (inclusive) to `end` (exclusive), local time.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when `start` equals `end` (a window that is never, or always,
    /// open says nothing a campaign should rely on).
    pub fn new(start: Time, end: Time) -> Result<Self> {
        if start == end {
            return Err(Error::invalid(format!(
                "send window opens and closes at {}: give a window with two different times",
                hhmm(start)
            )));
        }
        Ok(Self {
            start,
            end,
            days: [true; 7],
        })
    }

    /// Only on these weekdays.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when `days` is empty.
    pub fn on(mut self, days: impl IntoIterator<Item = Weekday>) -> Result<Self> {
        self.days = [false; 7];
        for day in days {
            self.days[day_index(day)] = true;
        }
        if !self.days.contains(&true) {
            return Err(Error::invalid("send window allows no weekday"));
        }
        Ok(self)
    }

    /// Opens, local time.
    pub fn start(&self) -> Time {
        self.start
    }

    /// Closes, local time.
    pub fn end(&self) -> Time {
        self.end
    }

    /// Whether the window allows `day`.
    pub fn allows_day(&self, day: Weekday) -> bool {
        self.days[day_index(day)]
    }

    /// Whether the local time of day `t` is within the hours (whatever the weekday).
    pub fn in_hours(&self, t: Time) -> bool {
        if self.start < self.end {
            self.start <= t && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }

    /// Whether the window is open at the wall-clock time `local`. After midnight, a window
    /// crossing it belongs to the day before.
    pub fn is_open_at(&self, local: DateTime) -> bool {
        if !self.in_hours(local.time()) {
            return false;
        }
        let opened_on = if self.start > self.end && local.time() < self.end {
            local.date().yesterday().map(|d| d.weekday())
        } else {
            Ok(local.date().weekday())
        };
        opened_on.is_ok_and(|day| self.allows_day(day))
    }

    /// Whether the window is open at `now` on the clock of `tz`.
    pub fn is_open(&self, now: Timestamp, tz: &TimeZone) -> bool {
        self.is_open_at(tz.to_datetime(now))
    }

    /// The first instant at or after `now` at which the window is open on the clock of `tz`;
    /// `now` itself when it is open. `None` only when the calendar runs out (year 9999).
    pub fn next_open(&self, now: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        if self.is_open(now, tz) {
            return Some(now);
        }
        let today = tz.to_datetime(now).date();
        // The next opening is on one of the next eight days (the window allows some weekday);
        // yesterday's opening may still be running past midnight, which `is_open` has seen.
        let mut day = today;
        for _ in 0..8 {
            if self.allows_day(day.weekday()) {
                let opening = first_instant_at_or_after(tz, day.to_datetime(self.start), now)?;
                if opening >= now && self.is_open(opening, tz) {
                    return Some(opening);
                }
            }
            day = day.tomorrow().ok()?;
        }
        None
    }
}

impl SendWindow {
    /// The first instant at or after `now` at which the window is open on the clock of every
    /// zone in `zones` at once: the most restrictive reading for a contact whose zone is not
    /// known ([`UNKNOWN_TIME_ZONE`](crate::UNKNOWN_TIME_ZONE)), over the zones the audience may
    /// live in. `None` when the zones share no open moment within the next eight days (or
    /// `zones` is empty).
    pub fn next_open_in_all(&self, now: Timestamp, zones: &[TimeZone]) -> Option<Timestamp> {
        first_open_in_all(now, zones, |at, tz| self.next_open(at, tz))
    }
}

/// The first instant at or after `now` that `next_open` (the first open instant at or after a
/// time on one zone's clock) finds open in every zone at once, within eight days; `None` when
/// there is none (or `zones` is empty). The most restrictive reading of a clock rule for a
/// contact whose zone is not known. Each round moves to the latest of the zones' next
/// openings, never later than the first common one, so the walk stops there or runs past the
/// horizon.
pub fn first_open_in_all(
    now: Timestamp,
    zones: &[TimeZone],
    next_open: impl Fn(Timestamp, &TimeZone) -> Option<Timestamp>,
) -> Option<Timestamp> {
    if zones.is_empty() {
        return None;
    }
    let horizon = now
        .checked_add(jiff::SignedDuration::from_hours(24 * 8))
        .ok()?;
    let mut at = now;
    // Every round lands on some zone's opening; there are a few per zone per day.
    for _ in 0..(zones.len() * 32 + 8) {
        let mut latest = at;
        for tz in zones {
            latest = latest.max(next_open(at, tz)?);
        }
        if latest == at {
            return Some(at);
        }
        if latest > horizon {
            return None;
        }
        at = latest;
    }
    None
}

impl fmt::Debug for SendWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let spec = WindowSpec::from(self.clone());
        write!(
            f,
            "SendWindow({}–{} {:?})",
            spec.start, spec.end, spec.weekdays
        )
    }
}

/// The first instant at or after `after` at which the wall clock of `tz` reads `local` or, when
/// `local` falls into a gap (spring forward), the moment the gap ends; in a fold (fall back) the
/// earlier occurrence, unless it has already passed. An instant before `after` when every
/// candidate has passed (the caller then tries the next day); `None` at the end of time.
pub(crate) fn first_instant_at_or_after(
    tz: &TimeZone,
    local: DateTime,
    after: Timestamp,
) -> Option<Timestamp> {
    let ambiguous = tz.to_ambiguous_timestamp(local);
    match ambiguous.offset() {
        AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(local).ok(),
        AmbiguousOffset::Gap { after: offset, .. } => {
            // `local` read with the offset after the gap is an instant before the gap; the
            // next transition from there is the moment the clock jumps over `local`.
            let before_gap = offset.to_timestamp(local).ok()?;
            Some(tz.following(before_gap).next()?.timestamp())
        }
        AmbiguousOffset::Fold {
            before,
            after: second,
        } => {
            let first = before.to_timestamp(local).ok()?;
            if first >= after {
                return Some(first);
            }
            second.to_timestamp(local).ok()
        }
    }
}

/// The index of `day`, Monday 0.
pub(crate) fn day_index(day: Weekday) -> usize {
    usize::try_from(day.to_monday_zero_offset()).unwrap_or(0)
}

fn hhmm(t: Time) -> String {
    format!("{:02}:{:02}", t.hour(), t.minute())
}

fn parse_time(field: &str, s: &str) -> Result<Time> {
    s.parse::<Time>().map_err(|e| {
        Error::invalid(format!(
            "send window {field} {s:?} is not a time of day (HH:MM): {e}"
        ))
    })
}

/// The serialised form.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowSpec {
    start: String,
    end: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    weekdays: Vec<String>,
}

impl TryFrom<WindowSpec> for SendWindow {
    type Error = Error;

    fn try_from(spec: WindowSpec) -> Result<Self> {
        let window = Self::new(
            parse_time("start", &spec.start)?,
            parse_time("end", &spec.end)?,
        )?;
        if spec.weekdays.is_empty() {
            return Ok(window);
        }
        let mut days = Vec::with_capacity(spec.weekdays.len());
        for name in &spec.weekdays {
            let index = weekday_named(name).ok_or_else(|| {
                Error::invalid(format!(
                    "send window weekday {name:?} is not one of mon, tue, wed, thu, fri, \
                         sat, sun"
                ))
            })?;
            days.push(
                Weekday::from_monday_zero_offset(index as i8)
                    .map_err(|e| Error::invalid(format!("send window weekday {name:?}: {e}")))?,
            );
        }
        window.on(days)
    }
}

impl From<SendWindow> for WindowSpec {
    fn from(w: SendWindow) -> Self {
        let weekdays = if w.days.iter().all(|d| *d) {
            Vec::new()
        } else {
            DAY_NAMES
                .iter()
                .zip(w.days)
                .filter(|(_, on)| *on)
                .map(|(name, _)| (*name).to_owned())
                .collect()
        };
        Self {
            start: hhmm_or_seconds(w.start),
            end: hhmm_or_seconds(w.end),
            weekdays,
        }
    }
}

fn hhmm_or_seconds(t: Time) -> String {
    if t.second() == 0 && t.subsec_nanosecond() == 0 {
        hhmm(t)
    } else {
        t.to_string()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use jiff::SignedDuration;
    use jiff::civil::time;
    use proptest::prelude::*;

    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn berlin() -> TimeZone {
        TimeZone::get("Europe/Berlin").unwrap()
    }

    fn window(json: &str) -> SendWindow {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn defers_to_the_next_opening_on_the_contacts_clock() {
        let w = window(r#"{"start": "09:00", "end": "17:30"}"#);
        let tz = berlin();
        // 08:00 Berlin (07:00Z): opens at 09:00 Berlin.
        assert_eq!(
            w.next_open(ts("2026-11-26T07:00:00Z"), &tz),
            Some(ts("2026-11-26T08:00:00Z"))
        );
        // Inside: now.
        let inside = ts("2026-11-26T12:00:00Z");
        assert_eq!(w.next_open(inside, &tz), Some(inside));
        // 17:30 Berlin is closed (end exclusive): tomorrow 09:00.
        assert_eq!(
            w.next_open(ts("2026-11-26T16:30:00Z"), &tz),
            Some(ts("2026-11-27T08:00:00Z"))
        );
        // The same instant in Tokyo is 01:30 on the 27th: 09:00 there.
        let tokyo = TimeZone::get("Asia/Tokyo").unwrap();
        assert_eq!(
            w.next_open(ts("2026-11-26T16:30:00Z"), &tokyo),
            Some(ts("2026-11-27T00:00:00Z"))
        );
    }

    #[test]
    fn follows_daylight_saving_time() {
        let w = window(r#"{"start": "09:00", "end": "10:00"}"#);
        let tz = berlin();
        // Berlin springs forward on 2026-03-29: 09:00 CEST is 07:00Z, the day before 08:00Z.
        assert_eq!(
            w.next_open(ts("2026-03-28T12:00:00Z"), &tz),
            Some(ts("2026-03-29T07:00:00Z"))
        );
        // And falls back on 2026-10-25: 09:00 CET is 08:00Z.
        assert_eq!(
            w.next_open(ts("2026-10-24T12:00:00Z"), &tz),
            Some(ts("2026-10-25T08:00:00Z"))
        );
        // An opening inside the spring gap (02:30 does not exist): the moment the clock jumps
        // to 03:00 CEST = 01:00Z, when the window is already open.
        let gap = window(r#"{"start": "02:30", "end": "04:00"}"#);
        assert_eq!(
            gap.next_open(ts("2026-03-28T12:00:00Z"), &tz),
            Some(ts("2026-03-29T01:00:00Z"))
        );
        // In the repeated autumn hour: the first 02:30 (CEST, 00:30Z).
        let fold = window(r#"{"start": "02:30", "end": "02:45"}"#);
        assert_eq!(
            fold.next_open(ts("2026-10-24T12:00:00Z"), &tz),
            Some(ts("2026-10-25T00:30:00Z"))
        );
    }

    #[test]
    fn weekdays_and_windows_across_midnight() {
        let tz = TimeZone::UTC;
        let weekdays =
            window(r#"{"start": "10:00", "end": "18:00", "weekdays": ["Mon", "friday"]}"#);
        // Saturday 2026-11-28 → Monday 30th 10:00.
        assert_eq!(
            weekdays.next_open(ts("2026-11-28T11:00:00Z"), &tz),
            Some(ts("2026-11-30T10:00:00Z"))
        );
        // Friday 27th 12:00 is open.
        assert!(weekdays.is_open(ts("2026-11-27T12:00:00Z"), &tz));

        // 22:00–02:00 on Fridays only: Saturday 01:00 belongs to Friday's window.
        let night = window(r#"{"start": "22:00", "end": "02:00", "weekdays": ["fri"]}"#);
        assert!(night.is_open(ts("2026-11-28T01:00:00Z"), &tz));
        assert!(
            !night.is_open(ts("2026-11-28T23:00:00Z"), &tz),
            "Saturday night"
        );
        assert!(
            !night.is_open(ts("2026-11-27T01:00:00Z"), &tz),
            "Thursday's night"
        );
        assert_eq!(
            night.next_open(ts("2026-11-28T03:00:00Z"), &tz),
            Some(ts("2026-12-04T22:00:00Z"))
        );
    }

    #[test]
    fn bad_windows_are_clear_errors() {
        for (json, needle) in [
            (
                r#"{"start": "09:00", "end": "09:00"}"#,
                "two different times",
            ),
            (r#"{"start": "9am", "end": "17:00"}"#, "not a time of day"),
            (
                r#"{"start": "09:00", "end": "17:00", "weekdays": ["mo"]}"#,
                "not one of",
            ),
            (
                r#"{"start": "09:00", "end": "17:00", "weekdays": ["monkey"]}"#,
                "not one of",
            ),
            (
                r#"{"start": "09:00", "end": "17:00", "days": ["mon"]}"#,
                "unknown field",
            ),
        ] {
            let err = serde_json::from_str::<SendWindow>(json)
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{json}: {err}");
        }
        let none: [Weekday; 0] = [];
        assert!(
            SendWindow::new(time(9, 0, 0, 0), time(17, 0, 0, 0))
                .unwrap()
                .on(none)
                .is_err()
        );
    }

    #[test]
    fn round_trips_through_json() {
        let w = window(r#"{"start": "09:15", "end": "17:00", "weekdays": ["sat", "mon"]}"#);
        let json = serde_json::to_string(&w).unwrap();
        assert_eq!(
            json,
            r#"{"start":"09:15","end":"17:00","weekdays":["mon","sat"]}"#
        );
        assert_eq!(serde_json::from_str::<SendWindow>(&json).unwrap(), w);
        let every_day = window(r#"{"start": "09:00", "end": "17:00"}"#);
        assert_eq!(
            serde_json::to_string(&every_day).unwrap(),
            r#"{"start":"09:00","end":"17:00"}"#
        );
    }

    #[test]
    fn unknown_zones_take_the_window_open_in_every_candidate() {
        let w = window(r#"{"start": "09:00", "end": "18:00"}"#);
        let zones = [
            TimeZone::get("Europe/London").unwrap(),
            TimeZone::get("America/New_York").unwrap(),
        ];
        // 09:00–18:00 in London (UTC in winter) and New York (UTC-5): 14:00–18:00Z.
        assert_eq!(
            w.next_open_in_all(ts("2026-11-26T08:00:00Z"), &zones),
            Some(ts("2026-11-26T14:00:00Z"))
        );
        let inside = ts("2026-11-26T15:00:00Z");
        assert_eq!(w.next_open_in_all(inside, &zones), Some(inside));
        // After 18:00Z: tomorrow 14:00Z.
        assert_eq!(
            w.next_open_in_all(ts("2026-11-26T18:00:00Z"), &zones),
            Some(ts("2026-11-27T14:00:00Z"))
        );
        // London and Sydney share no office hour: never, rather than a guess.
        let apart = [
            TimeZone::get("Europe/London").unwrap(),
            TimeZone::get("Australia/Sydney").unwrap(),
        ];
        assert_eq!(w.next_open_in_all(ts("2026-11-26T08:00:00Z"), &apart), None);
        assert_eq!(w.next_open_in_all(inside, &[]), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        /// The next opening is open, not before `now`, within eight days, and no minute in
        /// between is open (checked at minute resolution against a brute-force walk).
        #[test]
        fn next_open_is_the_first_open_minute(
            start_min in 0i64..1440,
            len_min in 1i64..1439,
            days in proptest::collection::vec(any::<bool>(), 7),
            offset_min in 0i64..(60 * 24 * 400),
            zone in prop::sample::select(vec!["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]),
        ) {
            prop_assume!(days.iter().any(|d| *d));
            let start = Time::midnight().wrapping_add(SignedDuration::from_mins(start_min));
            let end = Time::midnight()
                .wrapping_add(SignedDuration::from_mins((start_min + len_min) % 1440));
            let chosen = (0..7i8)
                .filter(|i| days[*i as usize])
                .map(|i| Weekday::from_monday_zero_offset(i).unwrap());
            let w = SendWindow::new(start, end).unwrap().on(chosen).unwrap();
            let tz = TimeZone::get(zone).unwrap();
            let now = ts("2026-01-01T00:00:00Z") + SignedDuration::from_mins(offset_min);
            let next = w.next_open(now, &tz).unwrap();
            prop_assert!(next >= now);
            prop_assert!(w.is_open(next, &tz), "{next} is closed");
            prop_assert!(next - now <= SignedDuration::from_hours(24 * 8));
            // Whole minutes strictly between now and next are closed.
            let mut m = now;
            while m + SignedDuration::from_mins(1) < next {
                m += SignedDuration::from_mins(1);
                prop_assert!(!w.is_open(m, &tz), "{m} is open before {next}");
            }
        }
    }
}
