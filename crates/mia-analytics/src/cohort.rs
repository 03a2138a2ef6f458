//! Retention cohorts: of the users who did a start event in a period, how many came back with
//! a return event one, two, ... periods later.
//!
//! ```
//! use mia_analytics::cohort::{self, CohortKind, Period, RetentionMode, RetentionSpec};
//! use mia_analytics::funnel::EventTable;
//!
//! let day = 86_400_000_000i64;
//! let mut b = EventTable::builder();
//! b.push("ann", "opted_in", 0)?;
//! b.push("ann", "read", day)?;      // back on day 1
//! b.push("ann", "read", 3 * day)?;  // and on day 3
//! b.push("ben", "opted_in", 0)?;
//! b.push("ben", "read", 2 * day)?;  // back on day 2 only
//! let table = b.build()?;
//!
//! let spec = RetentionSpec::new("opted_in", "read").periods(3);
//! let r = cohort::retention(&table, &spec)?;
//! assert_eq!(r.cohorts[0].start, "1970-01-01");
//! assert_eq!(r.cohorts[0].size, 2);
//! assert_eq!(r.cohorts[0].retained, [0, 1, 1, 1]);
//! let r = cohort::retention(&table, &spec.clone().mode(RetentionMode::OnOrAfter))?;
//! assert_eq!(r.cohorts[0].retained, [2, 2, 2, 1]);
//! # Ok::<(), mia_analytics::AnalyticsError>(())
//! ```
//!
//! # Rules
//!
//! - Periods are UTC calendar days, weeks starting on Monday, or calendar months.
//! - [`CohortKind::FirstTime`]: a user belongs to one cohort, the period of their first start
//!   event. [`CohortKind::Recurring`]: a user belongs to the cohort of every period in which
//!   they did the start event.
//! - `retained[k]` (for `k` in `0..=periods`) counts cohort members with a return event in
//!   period `cohort + k` ([`RetentionMode::On`]) or in any period from `cohort + k` on
//!   ([`RetentionMode::OnOrAfter`]). `retained[0]` is the cohort period itself: a return event
//!   in the same period counts, before or after the start event.
//! - Cohorts are listed oldest first; only periods with at least one member appear.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{AnalyticsError, Result};
use crate::funnel::EventTable;
use crate::funnel::timestamp::{civil_from_days, days_from_civil};

const DAY_MICROS: i64 = 86_400_000_000;

/// The length of a retention period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// A UTC calendar day.
    #[default]
    Day,
    /// A week from Monday 00:00 UTC.
    Week,
    /// A UTC calendar month.
    Month,
}

impl Period {
    /// The index of the period holding `ts` (microseconds since the epoch).
    fn index(self, ts: i64) -> i64 {
        let days = ts.div_euclid(DAY_MICROS);
        match self {
            Period::Day => days,
            // 1970-01-01 was a Thursday; Monday 1970-01-05 starts week 1.
            Period::Week => (days + 3).div_euclid(7),
            Period::Month => {
                let (y, m, _) = civil_from_days(days);
                y * 12 + (m - 1)
            }
        }
    }

    /// The first day (days since the epoch) of period `index`.
    fn first_day(self, index: i64) -> i64 {
        match self {
            Period::Day => index,
            Period::Week => index * 7 - 3,
            Period::Month => days_from_civil(index.div_euclid(12), index.rem_euclid(12) + 1, 1),
        }
    }

    /// `2026-01-05` for days and weeks, `2026-01` for months.
    fn label(self, index: i64) -> String {
        let (y, m, d) = civil_from_days(self.first_day(index));
        match self {
            Period::Month => format!("{y:04}-{m:02}"),
            _ => format!("{y:04}-{m:02}-{d:02}"),
        }
    }
}

/// Which start events make cohorts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CohortKind {
    /// Only a user's first start event: one cohort per user.
    #[default]
    FirstTime,
    /// Every period with a start event: a user may be in many cohorts.
    Recurring,
}

/// When a return counts for period `k`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetentionMode {
    /// A return event in exactly period `k`.
    #[default]
    On,
    /// A return event in period `k` or any later one.
    OnOrAfter,
}

/// A retention query.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionSpec {
    /// The event that puts a user in a cohort (such as `opted_in` or `sent`).
    pub start_event: String,
    /// The event that counts as coming back (such as `read` or `converted`).
    pub return_event: String,
    /// Days, weeks or months.
    pub period: Period,
    /// First-time or recurring cohorts.
    pub kind: CohortKind,
    /// "On" or "on or after".
    pub mode: RetentionMode,
    /// How many periods after the cohort's to report (`retained` has `periods + 1` entries).
    pub periods: usize,
}

impl RetentionSpec {
    /// Daily, first-time, "on" retention over 7 periods.
    pub fn new(start_event: impl Into<String>, return_event: impl Into<String>) -> Self {
        Self {
            start_event: start_event.into(),
            return_event: return_event.into(),
            period: Period::Day,
            kind: CohortKind::FirstTime,
            mode: RetentionMode::On,
            periods: 7,
        }
    }

    /// Sets the period length.
    #[must_use]
    pub fn period(mut self, period: Period) -> Self {
        self.period = period;
        self
    }

    /// Sets first-time or recurring cohorts.
    #[must_use]
    pub fn kind(mut self, kind: CohortKind) -> Self {
        self.kind = kind;
        self
    }

    /// Sets "on" or "on or after".
    #[must_use]
    pub fn mode(mut self, mode: RetentionMode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets how many periods to report after the cohort's own.
    #[must_use]
    pub fn periods(mut self, periods: usize) -> Self {
        self.periods = periods;
        self
    }
}

/// One cohort's row of the retention table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cohort {
    /// The first day of the cohort's period (`YYYY-MM-DD`, or `YYYY-MM` for months).
    pub start: String,
    /// The same instant in microseconds since the epoch.
    pub start_micros: i64,
    /// Users in the cohort.
    pub size: u64,
    /// Users who came back, per period offset `0..=periods` (see the [module docs](self)).
    pub retained: Vec<u64>,
}

/// What [`retention`] found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionResult {
    /// The cohorts, oldest first.
    pub cohorts: Vec<Cohort>,
}

/// Computes a retention table.
///
/// # Errors
/// [`AnalyticsError::InvalidQuery`] for an empty start or return event name, or more than
/// 10,000 periods.
pub fn retention(table: &EventTable, spec: &RetentionSpec) -> Result<RetentionResult> {
    if spec.start_event.is_empty() || spec.return_event.is_empty() {
        return Err(AnalyticsError::query(
            "retention needs a start and a return event",
        ));
    }
    if spec.periods > 10_000 {
        return Err(AnalyticsError::query(format!(
            "{} periods: at most 10,000",
            spec.periods
        )));
    }
    let id = |name: &str| table.names.iter().position(|n| n == name);
    let (Some(start), returning) = (id(&spec.start_event), id(&spec.return_event)) else {
        return Ok(RetentionResult {
            cohorts: Vec::new(),
        });
    };
    let mut rows: BTreeMap<i64, (u64, Vec<u64>)> = BTreeMap::new();
    let mut starts: Vec<i64> = Vec::new();
    let mut returns: Vec<i64> = Vec::new();
    for w in table.offsets.windows(2) {
        starts.clear();
        returns.clear();
        for row in w[0]..w[1] {
            let name = usize::from(table.event[row]);
            let period = spec.period.index(table.ts[row]);
            // Rows are in time order, so periods come sorted: dedupe against the last.
            if name == start && starts.last() != Some(&period) {
                starts.push(period);
            }
            if Some(name) == returning && returns.last() != Some(&period) {
                returns.push(period);
            }
        }
        if spec.kind == CohortKind::FirstTime {
            starts.truncate(1);
        }
        let last_return = returns.last().copied();
        for &cohort in &starts {
            let (size, retained) = rows
                .entry(cohort)
                .or_insert_with(|| (0, vec![0; spec.periods + 1]));
            *size += 1;
            for (k, count) in retained.iter_mut().enumerate() {
                let target = cohort + k as i64;
                let back = match spec.mode {
                    RetentionMode::On => returns.binary_search(&target).is_ok(),
                    RetentionMode::OnOrAfter => last_return.is_some_and(|p| p >= target),
                };
                *count += u64::from(back);
            }
        }
    }
    Ok(RetentionResult {
        cohorts: rows
            .into_iter()
            .map(|(index, (size, retained))| Cohort {
                start: spec.period.label(index),
                start_micros: spec.period.first_day(index).saturating_mul(DAY_MICROS),
                size,
                retained,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const DAY: i64 = DAY_MICROS;
    /// 2026-01-01, a Thursday.
    const JAN1: i64 = 20_454 * DAY;

    fn table(rows: &[(&str, &str, i64)]) -> EventTable {
        let mut b = EventTable::builder();
        for (u, e, t) in rows {
            b.push(u, e, *t).unwrap();
        }
        b.build().unwrap()
    }

    #[test]
    fn first_time_cohorts_count_each_user_once_and_recurring_ones_per_period() {
        let t = table(&[
            ("a", "start", JAN1),
            ("a", "start", JAN1 + DAY),
            ("a", "back", JAN1 + 2 * DAY),
            ("b", "start", JAN1 + DAY),
            ("b", "back", JAN1 + DAY + 3600 * 1_000_000),
        ]);
        let spec = RetentionSpec::new("start", "back").periods(2);
        let r = retention(&t, &spec).unwrap();
        let rows: Vec<(&str, u64, &[u64])> = r
            .cohorts
            .iter()
            .map(|c| (c.start.as_str(), c.size, c.retained.as_slice()))
            .collect();
        assert_eq!(
            rows,
            [
                ("2026-01-01", 1, &[0, 0, 1][..]),
                ("2026-01-02", 1, &[1, 0, 0][..])
            ]
        );
        let r = retention(&t, &spec.clone().kind(CohortKind::Recurring)).unwrap();
        assert_eq!(r.cohorts[1].size, 2);
        assert_eq!(r.cohorts[1].retained, [1, 1, 0]);
        let r = retention(&t, &spec.mode(RetentionMode::OnOrAfter)).unwrap();
        assert_eq!(r.cohorts[0].retained, [1, 1, 1]);
    }

    #[test]
    fn weeks_start_on_monday_and_months_on_the_first() {
        // Sunday 2026-01-04 and Monday 2026-01-05.
        let t = table(&[
            ("a", "s", JAN1 + 3 * DAY),
            ("b", "s", JAN1 + 4 * DAY),
            ("b", "r", JAN1 + 11 * DAY),
        ]);
        let r = retention(
            &t,
            &RetentionSpec::new("s", "r").period(Period::Week).periods(1),
        )
        .unwrap();
        let starts: Vec<&str> = r.cohorts.iter().map(|c| c.start.as_str()).collect();
        assert_eq!(starts, ["2025-12-29", "2026-01-05"]);
        assert_eq!(r.cohorts[1].retained, [0, 1]);
        assert_eq!(r.cohorts[1].start_micros, JAN1 + 4 * DAY);
        let t = table(&[("a", "s", JAN1 - 1), ("a", "r", JAN1 + 40 * DAY)]);
        let r = retention(
            &t,
            &RetentionSpec::new("s", "r")
                .period(Period::Month)
                .periods(2),
        )
        .unwrap();
        assert_eq!(r.cohorts[0].start, "2025-12");
        assert_eq!(r.cohorts[0].retained, [0, 0, 1]);
    }

    #[test]
    fn unknown_events_give_no_cohort_and_bad_specs_are_errors() {
        let t = table(&[("a", "s", 0)]);
        assert!(
            retention(&t, &RetentionSpec::new("nope", "s"))
                .unwrap()
                .cohorts
                .is_empty()
        );
        assert!(retention(&t, &RetentionSpec::new("", "s")).is_err());
        assert!(retention(&t, &RetentionSpec::new("s", "r").periods(10_001)).is_err());
        let r = retention(&t, &RetentionSpec::new("s", "nope")).unwrap();
        assert_eq!(r.cohorts[0].retained, vec![0; 8]);
    }
}
