//! Recurring campaigns: see [`Recurrence`].

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::send_window::{day_index, first_instant_at_or_after, weekday_named};

/// The most occurrences a recurring campaign may have (they are numbered in its jobs' steps).
pub const MAX_OCCURRENCES: u32 = 0x7FFF;

/// The rule under which a worker skips the first message of an occurrence that a later one
/// has superseded (see [`Recurrence`]).
pub const SUPERSEDED_RULE: &str = "occurrence_superseded";

/// The largest `interval` (days, weeks or months) a recurrence may have.
pub const MAX_INTERVAL: u32 = 1000;

/// How often.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Every {
    /// Every `interval` days.
    Day,
    /// On `weekdays` of every `interval`-th week (weeks start on Monday).
    Week,
    /// On the day of the month of the first occurrence, every `interval` months (the last day
    /// of a month that is shorter).
    Month,
}

/// Recurring campaigns: the same campaign again every day, week or month, at a local time.
///
/// A [`Recurrence`] on a campaign ([`CampaignSpec::recurrence`]) makes
/// [`Agent::schedule`](crate::Agent::schedule) queue the first occurrence at the first matching
/// instant at or after the start, and workers queue each later one when it is due, until
/// `count` occurrences or `until`. Each occurrence resolves the audience and checks consent
/// afresh (someone who opted in since gets it, someone who left does not), every message passes
/// the send policy as always, and each occurrence's jobs have their own idempotency keys, so
/// several workers queue an occurrence once. Nothing piles up: only the latest due occurrence
/// is queued, and the first messages of earlier occurrences that have not gone out when a later
/// one is due are skipped (rule [`SUPERSEDED_RULE`]); a journey a contact already started goes
/// on.
///
/// Occurrences may overlap when a journey outlasts the interval; a `wait_for` event of the
/// contact then decides the waits of every occurrence still waiting for it, as it would for
/// any two waits of one contact in one campaign.
///
/// Times are on the recurrence's zone (the campaign's clock, not each contact's: combine with a
/// [`SendWindow`](crate::SendWindow) for "10:00 on each contact's clock"), with its real offsets:
/// "every Monday 10:00 Europe/Berlin" stays 10:00 in Berlin across daylight-saving changes; a
/// time in the hour skipped in spring is the moment the clock jumps past it, and a time in the
/// hour repeated in autumn its first occurrence.
///
/// ```
/// use mia_core::Recurrence;
///
/// let weekly: Recurrence = serde_json::from_str(r#"{
///     "every": "week", "weekdays": ["mon", "thu"], "at": "10:00",
///     "time_zone": "Europe/Berlin", "count": 8
/// }"#)?;
/// let start = "2026-11-26T12:00:00Z".parse()?; // Thursday, 13:00 in Berlin: today's 10:00 passed
/// let first: Vec<_> = weekly.occurrences(start).take(3).map(|(n, at)| (n, at.to_string())).collect();
/// assert_eq!(first, [
///     (0, "2026-11-30T09:00:00Z".to_string()), // Monday 10:00 CET
///     (1, "2026-12-03T09:00:00Z".to_string()), // Thursday
///     (2, "2026-12-07T09:00:00Z".to_string()),
/// ]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// [`CampaignSpec::recurrence`]: crate::CampaignSpec::recurrence
///
/// Serialised as `{"every": "day" | "week" |
/// "month", "interval"?: 1, "weekdays"?: ["mon", ...], "at": "HH:MM", "time_zone": "IANA zone",
/// "count"?: N, "until"?: "RFC 3339", "starts"?: "YYYY-MM-DD"}`. `starts`, the date of the first
/// occurrence, is filled in when the campaign is scheduled and fixes every later date.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recurrence {
    /// Day, week or month.
    pub every: Every,
    /// Every how many days, weeks or months (at least 1).
    #[serde(default = "one")]
    pub interval: u32,
    /// For `week`: the weekdays (default: the weekday of the start). Names as
    /// `mon`..`sun` or in full.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weekdays: Vec<String>,
    /// The local time of day.
    pub at: Time,
    /// The zone `at` is read in.
    pub time_zone: String,
    /// How many occurrences in all (at most [`MAX_OCCURRENCES`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// No occurrence after this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
    /// The date of the first occurrence, in `time_zone`; set by scheduling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts: Option<Date>,
}

fn one() -> u32 {
    1
}

impl Recurrence {
    /// Checks the fields.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        self.zone()?;
        if !(1..=MAX_INTERVAL).contains(&self.interval) {
            return Err(Error::invalid(format!(
                "recurrence interval must be between 1 and {MAX_INTERVAL}, got {}",
                self.interval
            )));
        }
        if let Some(count) = self.count
            && !(1..=MAX_OCCURRENCES).contains(&count)
        {
            return Err(Error::invalid(format!(
                "recurrence count must be between 1 and {MAX_OCCURRENCES}, got {count}"
            )));
        }
        let days = self.days()?;
        if self.every != Every::Week && days.is_some() {
            return Err(Error::invalid(
                "recurrence weekdays are for \"every\": \"week\" only",
            ));
        }
        Ok(())
    }

    fn zone(&self) -> Result<TimeZone> {
        TimeZone::get(&self.time_zone).map_err(|e| {
            Error::invalid(format!(
                "recurrence time_zone {:?} is not a known IANA zone: {e}",
                self.time_zone
            ))
        })
    }

    /// The allowed weekdays (Monday first), or `None` when not given.
    fn days(&self) -> Result<Option<[bool; 7]>> {
        if self.weekdays.is_empty() {
            return Ok(None);
        }
        let mut days = [false; 7];
        for name in &self.weekdays {
            let index = weekday_named(name).ok_or_else(|| {
                Error::invalid(format!(
                    "recurrence weekday {name:?} is not one of mon, tue, wed, thu, fri, sat, sun"
                ))
            })?;
            days[index] = true;
        }
        Ok(Some(days))
    }

    /// The same recurrence with `starts` fixed: the date of the first occurrence at or after
    /// `start` (unless `starts` is set already). Scheduling stores this, so every worker numbers
    /// the same occurrences at the same instants.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when the recurrence is invalid or has no occurrence at or after
    /// `start` (`until` before it).
    pub fn anchored(&self, start: Timestamp) -> Result<Recurrence> {
        self.validate()?;
        if self.starts.is_some() {
            return Ok(self.clone());
        }
        let zone = self.zone()?;
        let mut anchored = self.clone();
        anchored.starts = Some(zone.to_datetime(start).date());
        let first = anchored
            .dates()
            .map_while(|d| anchored.instant(&zone, d).map(|at| (d, at)))
            .find(|(_, at)| *at >= start);
        match first {
            Some((date, at)) if self.until.is_none_or(|u| at <= u) => {
                anchored.starts = Some(date);
                Ok(anchored)
            }
            _ => Err(Error::invalid(format!(
                "recurrence has no occurrence at or after {start} (until {:?})",
                self.until
            ))),
        }
    }

    /// The candidate local dates, from `starts` on (today when unset).
    fn dates(&self) -> Box<dyn Iterator<Item = Date>> {
        let starts = self.starts.unwrap_or(Date::constant(1970, 1, 1));
        let interval = i64::from(self.interval.max(1));
        match self.every {
            Every::Day => Box::new(
                (0..).map_while(move |k: i64| starts.checked_add(span_days(k * interval)?).ok()),
            ),
            Every::Week => {
                let (days, monday) = self.week_of(starts);
                Box::new(
                    (0..)
                        .map_while(move |w: i64| {
                            monday.checked_add(span_days(w * interval * 7)?).ok()
                        })
                        .flat_map(move |week| {
                            (0..7).filter_map(move |d| {
                                let date = week.checked_add(d.days()).ok()?;
                                (days[day_index(date.weekday())] && date >= starts).then_some(date)
                            })
                        }),
                )
            }
            Every::Month => {
                let day = starts.day();
                Box::new((0..).map_while(move |k: i64| {
                    let first = starts
                        .first_of_month()
                        .checked_add(jiff::Span::new().try_months(k * interval).ok()?)
                        .ok()?;
                    let last = first.last_of_month().day();
                    first.with().day(day.min(last)).build().ok()
                }))
            }
        }
    }

    /// The weekdays of a weekly recurrence (by [`day_index`]) and the Monday of the week of
    /// `starts`.
    fn week_of(&self, starts: Date) -> ([bool; 7], Date) {
        let days = self.days().ok().flatten().unwrap_or_else(|| {
            let mut only = [false; 7];
            only[day_index(starts.weekday())] = true;
            only
        });
        let monday = starts
            .checked_sub(i64::from(starts.weekday().to_monday_zero_offset()).days())
            .unwrap_or(starts);
        (days, monday)
    }

    /// Date `k` of [`dates`](Self::dates), computed without the ones before it; `None` past
    /// the end of the calendar.
    fn nth_date(&self, k: u32) -> Option<Date> {
        let starts = self.starts.unwrap_or(Date::constant(1970, 1, 1));
        let interval = i64::from(self.interval.max(1));
        let k = i64::from(k);
        match self.every {
            Every::Day => starts.checked_add(span_days(k * interval)?).ok(),
            Every::Week => {
                let (days, monday) = self.week_of(starts);
                let chosen: Vec<i64> = (0..7).filter(|&d| days[d as usize]).collect();
                // The first week holds the chosen days from the start's on.
                let offset = i64::from(starts.weekday().to_monday_zero_offset());
                let first: Vec<i64> = chosen.iter().copied().filter(|&d| d >= offset).collect();
                let (week, day) = match usize::try_from(k).ok().and_then(|k| first.get(k)) {
                    Some(&day) => (0, day),
                    None => {
                        let later = k - first.len() as i64;
                        let per_week = chosen.len() as i64;
                        let day = *chosen.get(usize::try_from(later % per_week.max(1)).ok()?)?;
                        (1 + later / per_week.max(1), day)
                    }
                };
                let week = monday.checked_add(span_days(week * interval * 7)?).ok()?;
                week.checked_add(day.days()).ok()
            }
            Every::Month => {
                let first = starts
                    .first_of_month()
                    .checked_add(jiff::Span::new().try_months(k * interval).ok()?)
                    .ok()?;
                let last = first.last_of_month().day();
                first.with().day(starts.day().min(last)).build().ok()
            }
        }
    }

    /// The instant of `at` on `date`; `None` at the end of time.
    fn instant(&self, zone: &TimeZone, date: Date) -> Option<Timestamp> {
        first_instant_at_or_after(zone, date.to_datetime(self.at), Timestamp::MIN)
    }

    /// The occurrences, numbered from 0: from `starts` on when it is set, otherwise from the
    /// first at or after `from` (see [`anchored`](Self::anchored)). Ends after `count`, `until`
    /// or [`MAX_OCCURRENCES`]; empty when the recurrence is invalid.
    pub fn occurrences(&self, from: Timestamp) -> impl Iterator<Item = (u32, Timestamp)> + use<> {
        let limit = self.count.unwrap_or(MAX_OCCURRENCES).min(MAX_OCCURRENCES);
        let until = self.until;
        let anchored = self.anchored(from).ok().zip(self.zone().ok());
        anchored.into_iter().flat_map(move |(anchored, zone)| {
            let at = anchored.at;
            let instants = anchored
                .dates()
                .map_while(move |d| {
                    first_instant_at_or_after(&zone, d.to_datetime(at), Timestamp::MIN)
                })
                .take_while(move |t| until.is_none_or(|u| *t <= u))
                .take(limit as usize);
            (0u32..).zip(instants)
        })
    }

    /// Occurrence number `k` of [`occurrences`](Self::occurrences)`(from)`, computed without
    /// walking the ones before it (a job of a daily campaign a year in would otherwise walk
    /// 365); `None` when the recurrence ends before it.
    pub fn occurrence(&self, k: u32, from: Timestamp) -> Option<Timestamp> {
        if k >= self.count.unwrap_or(MAX_OCCURRENCES).min(MAX_OCCURRENCES) {
            return None;
        }
        let anchored = self.anchored(from).ok()?;
        let zone = self.zone().ok()?;
        let date = anchored.nth_date(k)?;
        let at = first_instant_at_or_after(&zone, date.to_datetime(anchored.at), Timestamp::MIN)?;
        self.until.is_none_or(|u| at <= u).then_some(at)
    }

    /// The latest occurrence due at `now` (at or before it), if any.
    pub fn latest_due(&self, now: Timestamp) -> Option<(u32, Timestamp)> {
        self.occurrences(now)
            .take_while(|(_, at)| *at <= now)
            .last()
    }

    /// The first occurrence after `now`, if any is left.
    pub fn next_after(&self, now: Timestamp) -> Option<(u32, Timestamp)> {
        self.occurrences(now).find(|(_, at)| *at > now)
    }
}

/// `n` days as a span; `None` past what a span holds (the end of the calendar is nearer).
fn span_days(n: i64) -> Option<jiff::Span> {
    jiff::Span::new().try_days(n).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn rec(json: &str) -> Recurrence {
        serde_json::from_str(json).unwrap()
    }

    fn first(r: &Recurrence, from: &str, n: usize) -> Vec<String> {
        r.occurrences(ts(from))
            .take(n)
            .map(|(_, at)| at.to_string())
            .collect()
    }

    #[test]
    fn daily_at_a_local_time_across_daylight_saving() {
        let r = rec(r#"{"every": "day", "at": "10:00", "time_zone": "Europe/Berlin"}"#);
        // Berlin springs forward on Sunday 2026-03-29: 10:00 is 09:00Z before, 08:00Z after.
        assert_eq!(
            first(&r, "2026-03-27T12:00:00Z", 3),
            [
                "2026-03-28T09:00:00Z",
                "2026-03-29T08:00:00Z",
                "2026-03-30T08:00:00Z"
            ]
        );
        // Before today's 10:00, today is the first.
        assert_eq!(
            first(&r, "2026-03-27T08:59:00Z", 1),
            ["2026-03-27T09:00:00Z"]
        );
    }

    #[test]
    fn times_in_the_skipped_hour_and_the_repeated_hour() {
        let gap = rec(r#"{"every": "day", "at": "02:30", "time_zone": "Europe/Berlin"}"#);
        // 2026-03-29 02:30 does not exist: the clock jumps from 02:00 CET to 03:00 CEST (01:00Z).
        assert_eq!(
            first(&gap, "2026-03-28T12:00:00Z", 2),
            ["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"]
        );
        let fold = rec(r#"{"every": "day", "at": "02:30", "time_zone": "Europe/Berlin"}"#);
        // 2026-10-25 02:30 happens twice: the first (CEST, 00:30Z) counts, once.
        assert_eq!(
            first(&fold, "2026-10-24T12:00:00Z", 2),
            ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]
        );
    }

    #[test]
    fn weekly_on_weekdays_every_other_week() {
        let r = rec(
            r#"{"every": "week", "interval": 2, "weekdays": ["tue", "Friday"], "at": "18:00", "time_zone": "UTC"}"#,
        );
        // From Wednesday 2026-11-25: Friday the 27th, then the Tuesday and Friday two weeks on.
        assert_eq!(
            first(&r, "2026-11-25T00:00:00Z", 3),
            [
                "2026-11-27T18:00:00Z",
                "2026-12-08T18:00:00Z",
                "2026-12-11T18:00:00Z"
            ]
        );
        // Without weekdays: the weekday of the start (a Thursday whose 09:00 has passed).
        let plain = rec(r#"{"every": "week", "at": "09:00", "time_zone": "UTC"}"#);
        assert_eq!(
            first(&plain, "2026-11-26T10:00:00Z", 2),
            ["2026-12-03T09:00:00Z", "2026-12-10T09:00:00Z"]
        );
    }

    #[test]
    fn monthly_keeps_the_day_or_the_last_day_of_a_short_month() {
        let r =
            rec(r#"{"every": "month", "at": "12:00", "time_zone": "UTC", "starts": "2027-01-31"}"#);
        assert_eq!(
            first(&r, "2020-01-01T00:00:00Z", 3),
            [
                "2027-01-31T12:00:00Z",
                "2027-02-28T12:00:00Z",
                "2027-03-31T12:00:00Z"
            ]
        );
    }

    #[test]
    fn count_and_until_end_it_and_anchoring_fixes_the_numbers() {
        let r = rec(r#"{"every": "day", "at": "10:00", "time_zone": "UTC", "count": 3}"#);
        let all: Vec<_> = r.occurrences(ts("2026-11-26T00:00:00Z")).collect();
        assert_eq!(all.len(), 3);
        let anchored = r.anchored(ts("2026-11-26T00:00:00Z")).unwrap();
        assert_eq!(anchored.starts, Some(Date::constant(2026, 11, 26)));
        // Later, the anchored recurrence numbers the same occurrences.
        assert_eq!(
            anchored.latest_due(ts("2026-11-27T11:00:00Z")),
            Some((1, ts("2026-11-27T10:00:00Z")))
        );
        assert_eq!(
            anchored.next_after(ts("2026-11-27T11:00:00Z")),
            Some((2, ts("2026-11-28T10:00:00Z")))
        );
        assert_eq!(
            anchored.next_after(ts("2026-11-28T10:00:00Z")),
            None,
            "count 3"
        );
        assert_eq!(anchored.latest_due(ts("2026-11-25T00:00:00Z")), None);

        let until = rec(
            r#"{"every": "day", "at": "10:00", "time_zone": "UTC", "until": "2026-11-28T10:00:00Z"}"#,
        );
        assert_eq!(
            until.occurrences(ts("2026-11-26T00:00:00Z")).count(),
            3,
            "until is inclusive"
        );
        assert!(
            until.anchored(ts("2026-11-29T00:00:00Z")).is_err(),
            "nothing left"
        );
    }

    #[test]
    fn the_largest_intervals_end_at_the_end_of_the_calendar_without_panicking() {
        for every in ["day", "week", "month"] {
            let r = rec(&format!(
                r#"{{"every": "{every}", "interval": {MAX_INTERVAL}, "at": "00:00", "time_zone": "UTC"}}"#
            ));
            let n = r.occurrences(ts("2026-11-26T00:00:00Z")).count();
            assert!(n >= 2, "{every}: {n}");
            // Unvalidated input reaching the iterator directly does not panic either: the first
            // date is the start, the next one lies past what a span holds, and the dates end.
            let mut huge = r.clone();
            huge.interval = u32::MAX;
            huge.starts = Some(Date::constant(2026, 11, 26));
            assert_eq!(huge.dates().take(3).count(), 1, "{every}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// `occurrence(k)` is the `k`th of `occurrences`, for every kind, interval, set of
        /// weekdays, zone, start, count and end, up to the end of the calendar.
        #[test]
        fn an_occurrence_by_number_is_the_one_the_walk_reaches(
            every in 0..3_usize,
            interval in proptest::prop_oneof![1..5_u32, proptest::strategy::Just(MAX_INTERVAL)],
            weekdays in proptest::collection::vec(0..7_usize, 0..4),
            (hour, minute) in (0..24_i8, 0..60_i8),
            zone in 0..4_usize,
            start_days in 0..20_000_i64,
            count in proptest::option::of(1..400_u32),
            until_days in proptest::option::of(0..800_i64),
            ks in proptest::collection::vec(0..450_u32, 1..6),
        ) {
            let names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
            let zones = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"];
            let starts = Date::constant(2000, 1, 1).checked_add(start_days.days()).unwrap();
            let from = ts("2000-01-01T00:00:00Z");
            let r = Recurrence {
                every: [Every::Day, Every::Week, Every::Month][every],
                interval,
                weekdays: weekdays.iter().map(|&d| names[d].to_owned()).collect(),
                at: Time::new(hour, minute, 0, 0).unwrap(),
                time_zone: zones[zone].to_owned(),
                count,
                until: until_days.map(|d| {
                    TimeZone::UTC.to_timestamp(starts.checked_add(d.days()).unwrap().to_datetime(Time::midnight())).unwrap()
                }),
                starts: Some(starts),
            };
            let walked: Vec<Option<Timestamp>> =
                ks.iter().map(|&k| r.occurrences(from).nth(k as usize).map(|(_, at)| at)).collect();
            let direct: Vec<Option<Timestamp>> = ks.iter().map(|&k| r.occurrence(k, from)).collect();
            proptest::prop_assert_eq!(direct, walked, "{:?} at {:?}", r, ks);
        }
    }

    #[test]
    fn bad_recurrences_are_clear_errors() {
        for (json, needle) in [
            (
                r#"{"every": "day", "at": "10:00", "time_zone": "Mars/Olympus"}"#,
                "IANA",
            ),
            (
                r#"{"every": "day", "interval": 0, "at": "10:00", "time_zone": "UTC"}"#,
                "interval",
            ),
            (
                r#"{"every": "day", "interval": 8000000, "at": "10:00", "time_zone": "UTC"}"#,
                "interval",
            ),
            (
                r#"{"every": "day", "at": "10:00", "time_zone": "UTC", "count": 0}"#,
                "count",
            ),
            (
                r#"{"every": "day", "at": "10:00", "time_zone": "UTC", "weekdays": ["mon"]}"#,
                "week",
            ),
            (
                r#"{"every": "week", "at": "10:00", "time_zone": "UTC", "weekdays": ["mo"]}"#,
                "not one of",
            ),
        ] {
            let err = rec(json).validate().unwrap_err().to_string();
            assert!(err.contains(needle), "{json}: {err}");
        }
        assert!(
            serde_json::from_str::<Recurrence>(
                r#"{"every": "hour", "at": "10:00", "time_zone": "UTC"}"#
            )
            .is_err()
        );
        assert!(
            serde_json::from_str::<Recurrence>(
                r#"{"every": "day", "at": "10:00", "time_zone": "UTC", "cron": "x"}"#
            )
            .is_err()
        );
    }
}
