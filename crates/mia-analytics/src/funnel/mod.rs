//! Funnels: how many users went through a sequence of events, within a conversion window.
//!
//! Load events into an [`EventTable`] (from a [`EventTableBuilder`], from mia's own
//! [`Event`](mia_core::Event)s with [`EventTable::from_events`], or from CSV with
//! [`EventTable::from_csv`]), describe the funnel with a [`FunnelSpec`] and call [`run`].
//!
//! ```
//! use std::time::Duration;
//! use mia_analytics::funnel::{self, EventTable, FunnelSpec};
//!
//! let mut b = EventTable::builder();
//! let s = 1_000_000; // one second in microseconds
//! b.push("alice", "sent", 0)?;
//! b.push("alice", "read", 60 * s)?;
//! b.push("alice", "clicked", 90 * s)?;
//! b.push("bob", "sent", 0)?;
//! b.push("bob", "read", 3 * 86_400 * s)?; // after the one-day window
//! let table = b.build()?;
//!
//! let spec = FunnelSpec::new(["sent", "read", "clicked"]).window(Duration::from_secs(86_400));
//! let result = funnel::run(&table, &spec)?;
//! let counts: Vec<u64> = result.steps.iter().map(|s| s.count).collect();
//! assert_eq!(counts, [2, 1, 1]);
//! assert_eq!(result.median_time_to_convert_s, Some(90.0));
//! # Ok::<(), mia_analytics::AnalyticsError>(())
//! ```
//!
//! # Semantics
//!
//! The funnel follows PostHog's "sequential" funnels, made precise here. Steps are event
//! names; the same name may appear in several steps.
//!
//! **The order of a user's events.** Events are ordered by timestamp. Events with *equal*
//! timestamps are ordered by the first funnel step their name matches (an event matching no
//! step, such as an exclusion event, comes after the step events of that instant), then by
//! input order — which only ever ties events with the same name, so results never depend on
//! the order of the input. In effect, simultaneous events count in funnel order: `sent` and
//! `delivered` logged in the same microsecond make two steps. "Before" and "after" below
//! refer to this order.
//!
//! **Attempts.** An attempt starts at a *starting event*: an event of step 1 in the ordered
//! and strict modes, an event of any step in [`FunnelMode::AnyOrder`]. Every starting event
//! starts its own attempt. From there the attempt takes, one step at a time, the *first* event
//! after its previous step's event that matches the next step (greedy; taking the earliest
//! match never reaches fewer steps). One event serves at most one step of an attempt.
//! - [`FunnelMode::Ordered`]: other events may sit between two steps.
//! - [`FunnelMode::Strict`]: the next step must be the user's very next event — any other
//!   event of the user, even one outside the funnel, ends the attempt's progress.
//! - [`FunnelMode::AnyOrder`]: every event after the starting event that matches a step not
//!   yet covered covers it (a name that appears `r` times among the steps covers up to `r`
//!   steps); the attempt's reached steps are the number of covered steps.
//!
//! **Window.** Every event an attempt uses has a timestamp at most
//! [`window`](FunnelSpec::window) after the attempt's starting event (inclusive: an event
//! exactly one window later counts).
//!
//! **Exclusions.** An [`Exclusion`] `{event, from_step, to_step}` (0-based step indices)
//! drops an attempt that reached step `from_step` if an `event` occurs after its
//! `from_step` event and before its `to_step` event — or, when the attempt never reaches
//! `to_step`, anywhere after its `from_step` event within the window. A dropped attempt counts
//! for nothing, not even for the steps it reached before the excluded event.
//!
//! **Counting.** A user counts at the furthest step reached by any of their attempts that was
//! not dropped: `steps[k].count` is the number of users who reached step `k` (0-based) or
//! further. A user with no attempt left counts nowhere. In any-order mode `steps[k]` reads
//! "covered at least `k + 1` steps".
//!
//! **Time to convert.** For each user who completed every step, the time from the starting
//! event to the last step's event of their *fastest* completing attempt (not the first one: a
//! user who took a week the first time and a minute the second time converted in a minute;
//! the fastest attempt is also the one least affected by the arbitrary window). See
//! [`TimeToConvert`] for the median and histogram.
//!
//! **Breakdown.** With a [`Breakdown`], every user falls in exactly one group, so the groups
//! add up to the total: [`Breakdown::Event`] takes the column's value on the user's first
//! starting event ("first touch"; among simultaneous first starting events, the smallest
//! value), [`Breakdown::User`] the user's value of a user column. The funnel of each group is
//! computed from all of the user's attempts, whatever their starting event's value.
//!
//! # Performance
//!
//! The table is sorted by (user, time), so a query is one pass over each user's slice. The
//! ordered and strict modes without exclusions keep one start time per step (the latest start
//! that reached it dominates every earlier one), so they cost a few nanoseconds per event;
//! exclusions and the any-order mode follow every open attempt, which costs more for users
//! with many starting events inside one window. Users are split over
//! [`threads`](FunnelSpec::threads) scoped threads.

mod csv;
mod engine;
mod result;
mod spec;
pub(crate) mod table;
pub(crate) mod timestamp;

pub use self::csv::CsvOptions;
pub use engine::run;
pub use result::{BreakdownGroup, FunnelResult, HistogramBin, StepCount, TimeToConvert};
pub use spec::{Breakdown, DEFAULT_WINDOW_MICROS, Exclusion, FunnelMode, FunnelSpec};
pub use table::{Column, EventTable, EventTableBuilder};
pub use timestamp::parse_timestamp_micros;
