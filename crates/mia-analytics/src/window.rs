//! Real-time windows: counts and rates per campaign, variant, journey step and event kind in
//! tumbling (minute, hour, day) and sliding windows, readable while a campaign runs.
//!
//! [`Windows`] is fed by a [`Collector`](crate::Collector) built with
//! [`Collector::with_windows`](crate::Collector::with_windows): events are counted after the
//! store accepted them and each event id counts once, exactly like the collector's totals.
//!
//! **Time zones.** Tumbling windows are local: a day is a calendar day on the wall clock of the
//! [`ZoneRule`] — the campaign's zone, or each contact's own zone ("what did people do on their
//! Monday"). Local windows follow daylight saving time: a day can be 23 or 25 hours long, the
//! hour skipped in spring has no window and the hour repeated in autumn is one window holding
//! both. Sliding windows ("the last 15 minutes") are spans of real time and have no zone.
//!
//! **Memory is bounded.** Each campaign keeps at most [`Retention`] windows per granularity (by
//! default a day of minutes, two weeks of hours and 400 days). An event older than every kept
//! window is not counted in any window; it is counted in [`Windows::late`] instead, so nothing
//! disappears silently (the store and the collector's totals still have it).
//!
//! ```
//! use jiff::{SignedDuration, Timestamp, tz::TimeZone};
//! use mia_analytics::window::{Granularity, Windows, WindowConfig, ZoneRule};
//! use mia_core::{CampaignId, ContactId, Event, EventId, EventKind, VariantId};
//!
//! let mut windows = Windows::new(WindowConfig::new(ZoneRule::Campaign(TimeZone::UTC)));
//! let at: Timestamp = "2026-11-26T10:15:30Z".parse().unwrap();
//! let event = |id: &str, step, kind| Event {
//!     id: EventId::new(id), at, contact: ContactId::new("u1"),
//!     campaign: Some(CampaignId::new("spring")), variant: Some(VariantId::new("A")),
//!     step: Some(step), kind,
//! };
//! windows.add(&event("1", 0, EventKind::Sent));
//! windows.add(&event("2", 0, EventKind::Clicked));
//! windows.add(&event("3", 1, EventKind::Sent)); // the journey's follow-up
//!
//! let spring = CampaignId::new("spring");
//! let hours = windows.tumbling(&spring, Granularity::Hour);
//! assert_eq!(hours.len(), 1);
//! assert_eq!(hours[0].start.to_string(), "2026-11-26T10:00:00");
//! let a = VariantId::new("A");
//! assert_eq!(hours[0].counts.rate(Some(&a), "clicked", "sent"), Some(0.5));
//! assert_eq!(hours[0].counts.step_rate(Some(&a), Some(0), "clicked", "sent"), Some(1.0));
//! assert_eq!(hours[0].counts.steps(), [Some(0), Some(1)]);
//!
//! let now = at + SignedDuration::from_mins(10);
//! assert_eq!(windows.sliding(&spring, SignedDuration::from_mins(15), now).unwrap().total("sent"), 2);
//! assert_eq!(windows.sliding(&spring, SignedDuration::from_mins(5), now).unwrap().total("sent"), 0);
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use mia_core::{CampaignId, ContactId, Event, EventKind, VariantId};
use serde::Serialize;

use crate::error::{AnalyticsError, Result};

/// The length of a tumbling window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    /// One wall-clock minute.
    Minute,
    /// One wall-clock hour.
    Hour,
    /// One calendar day.
    Day,
}

impl Granularity {
    /// Every granularity, shortest first.
    pub const ALL: [Granularity; 3] = [Granularity::Minute, Granularity::Hour, Granularity::Day];

    fn index(self) -> usize {
        self as usize
    }

    /// The start of the window holding the local time `t`.
    fn truncate(self, t: DateTime) -> DateTime {
        let (hour, minute) = match self {
            Granularity::Minute => (t.hour(), t.minute()),
            Granularity::Hour => (t.hour(), 0),
            Granularity::Day => (0, 0),
        };
        t.date().at(hour, minute, 0, 0)
    }

    /// The local start of the next window after `start`.
    fn next(self, start: DateTime) -> DateTime {
        let step = match self {
            Granularity::Minute => 1.minute(),
            Granularity::Hour => 1.hour(),
            Granularity::Day => 1.day(),
        };
        // Civil arithmetic cannot overflow for the dates jiff represents, except at the very end
        // of its range, where the window is left open-ended at its own start.
        start.checked_add(step).unwrap_or(start)
    }
}

impl std::str::FromStr for Granularity {
    type Err = AnalyticsError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "minute" => Ok(Granularity::Minute),
            "hour" => Ok(Granularity::Hour),
            "day" => Ok(Granularity::Day),
            other => Err(AnalyticsError::InvalidQuery(format!(
                "unknown window {other:?}: use minute, hour or day"
            ))),
        }
    }
}

/// Looks up a contact's time zone.
pub type ZoneLookup = Arc<dyn Fn(&ContactId) -> Option<TimeZone> + Send + Sync>;

/// Whose wall clock the tumbling windows follow.
#[derive(Clone)]
pub enum ZoneRule {
    /// One zone for every event (the campaign's).
    Campaign(TimeZone),
    /// Each contact's own zone, looked up per event; contacts the lookup does not know use
    /// `fallback`.
    Contact {
        /// The contact's zone, if known.
        lookup: ZoneLookup,
        /// The zone for contacts without one.
        fallback: TimeZone,
    },
}

impl ZoneRule {
    /// Each contact's zone from a map (for example built from the contact store), `fallback`
    /// for the rest.
    pub fn contacts(zones: HashMap<ContactId, TimeZone>, fallback: TimeZone) -> Self {
        ZoneRule::Contact {
            lookup: Arc::new(move |c| zones.get(c).cloned()),
            fallback,
        }
    }

    fn local(&self, event: &Event) -> DateTime {
        match self {
            ZoneRule::Campaign(tz) => tz.to_datetime(event.at),
            ZoneRule::Contact { lookup, fallback } => match lookup(&event.contact) {
                Some(tz) => tz.to_datetime(event.at),
                None => fallback.to_datetime(event.at),
            },
        }
    }
}

impl fmt::Debug for ZoneRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ZoneRule::Campaign(tz) => f.debug_tuple("Campaign").field(&tz.iana_name()).finish(),
            ZoneRule::Contact { fallback, .. } => f
                .debug_struct("Contact")
                .field("fallback", &fallback.iana_name())
                .finish_non_exhaustive(),
        }
    }
}

/// How many windows each campaign keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Minute windows kept (default 1,440: one day). Also bounds sliding windows.
    pub minutes: usize,
    /// Hour windows kept (default 336: two weeks).
    pub hours: usize,
    /// Day windows kept (default 400).
    pub days: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            minutes: 1_440,
            hours: 336,
            days: 400,
        }
    }
}

impl Retention {
    fn of(&self, g: Granularity) -> usize {
        match g {
            Granularity::Minute => self.minutes,
            Granularity::Hour => self.hours,
            Granularity::Day => self.days,
        }
    }
}

/// What the windows count and in which zone.
#[derive(Clone, Debug)]
pub struct WindowConfig {
    zone: ZoneRule,
    retention: Retention,
}

impl WindowConfig {
    /// Windows on the wall clock of `zone`, with the default [`Retention`].
    pub fn new(zone: ZoneRule) -> Self {
        Self {
            zone,
            retention: Retention::default(),
        }
    }

    /// Keeps this many windows per granularity (each at least 1).
    pub fn retention(mut self, retention: Retention) -> Self {
        self.retention = Retention {
            minutes: retention.minutes.max(1),
            hours: retention.hours.max(1),
            days: retention.days.max(1),
        };
        self
    }
}

impl Default for WindowConfig {
    fn default() -> Self {
        Self::new(ZoneRule::Campaign(TimeZone::UTC))
    }
}

/// What one count in a [`WindowCounts`] is of: a variant, a journey step and an event kind.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct CountKey {
    /// The variant (`None`: events without a variant).
    pub variant: Option<VariantId>,
    /// The journey step ([`Event::step`]; `None`: events about no message).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<u32>,
    /// The event kind's name ([`EventKind::name`]).
    pub kind: &'static str,
}

/// Counts per variant, journey step and event kind, with revenue, for one window.
///
/// [`count`](Self::count), [`total`](Self::total) and [`rate`](Self::rate) add up every step;
/// [`step_count`](Self::step_count) and [`step_rate`](Self::step_rate) look at one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WindowCounts {
    /// (variant, step, event kind name) to count; serialised as rows
    /// `{"variant", "step", "kind", "count"}` (`step` absent when `None`).
    #[serde(serialize_with = "serialize_counts")]
    pub counts: BTreeMap<CountKey, u64>,
    /// Revenue of `converted` events per (variant, step), in minor units; serialised as rows
    /// `{"variant", "step", "revenue_minor"}`.
    #[serde(serialize_with = "serialize_revenue")]
    pub revenue_minor: BTreeMap<(Option<VariantId>, Option<u32>), i64>,
}

impl WindowCounts {
    fn add(&mut self, event: &Event) {
        let key = CountKey {
            variant: event.variant.clone(),
            step: event.step,
            kind: event.kind.name(),
        };
        *self.counts.entry(key).or_default() += 1;
        if let EventKind::Converted { value_minor } = event.kind {
            let sum = self
                .revenue_minor
                .entry((event.variant.clone(), event.step))
                .or_default();
            *sum = sum.saturating_add(value_minor);
        }
    }

    fn merge(&mut self, other: &WindowCounts) {
        for (key, n) in &other.counts {
            *self.counts.entry(key.clone()).or_default() += n;
        }
        for (key, v) in &other.revenue_minor {
            let sum = self.revenue_minor.entry(key.clone()).or_default();
            *sum = sum.saturating_add(*v);
        }
    }

    fn sum(&self, keep: impl Fn(&CountKey) -> bool) -> u64 {
        self.counts
            .iter()
            .filter(|(key, _)| keep(key))
            .map(|(_, n)| *n)
            .sum()
    }

    /// The count of `kind` for one variant (`None`: events without a variant), over every step.
    pub fn count(&self, variant: Option<&VariantId>, kind: &str) -> u64 {
        self.sum(|k| k.variant.as_ref() == variant && k.kind == kind)
    }

    /// The count of `kind` for one variant at one journey step (`None`: events about no
    /// message).
    pub fn step_count(&self, variant: Option<&VariantId>, step: Option<u32>, kind: &str) -> u64 {
        self.sum(|k| k.variant.as_ref() == variant && k.step == step && k.kind == kind)
    }

    /// The count of `kind` over every variant and step.
    pub fn total(&self, kind: &str) -> u64 {
        self.sum(|k| k.kind == kind)
    }

    /// `numerator / denominator` counts for one variant (`"clicked"` per `"sent"`); `None` when
    /// the denominator is zero.
    ///
    /// A window rate compares events that happened in the window: a click in this hour may
    /// answer a message sent the hour before, so a rate can exceed 1.
    pub fn rate(
        &self,
        variant: Option<&VariantId>,
        numerator: &str,
        denominator: &str,
    ) -> Option<f64> {
        let den = self.count(variant, denominator);
        (den > 0).then(|| self.count(variant, numerator) as f64 / den as f64)
    }

    /// [`rate`](Self::rate) at one journey step: how the follow-up at `step` does, apart from
    /// the first message.
    pub fn step_rate(
        &self,
        variant: Option<&VariantId>,
        step: Option<u32>,
        numerator: &str,
        denominator: &str,
    ) -> Option<f64> {
        let den = self.step_count(variant, step, denominator);
        (den > 0).then(|| self.step_count(variant, step, numerator) as f64 / den as f64)
    }

    /// Revenue of `converted` events for one variant, over every step, in minor units.
    pub fn revenue(&self, variant: Option<&VariantId>) -> i64 {
        self.revenue_minor
            .iter()
            .filter(|((v, _), _)| v.as_ref() == variant)
            .fold(0i64, |sum, (_, r)| sum.saturating_add(*r))
    }

    /// The variants seen in this window.
    pub fn variants(&self) -> Vec<Option<VariantId>> {
        let mut out: Vec<Option<VariantId>> =
            self.counts.keys().map(|k| k.variant.clone()).collect();
        out.dedup();
        out
    }

    /// The journey steps seen in this window, in order (`None`, events about no message, first).
    pub fn steps(&self) -> Vec<Option<u32>> {
        let mut out: Vec<Option<u32>> = self.counts.keys().map(|k| k.step).collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

fn serialize_counts<S: serde::Serializer>(
    counts: &BTreeMap<CountKey, u64>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    #[derive(Serialize)]
    struct Row<'a> {
        #[serde(flatten)]
        key: &'a CountKey,
        count: u64,
    }
    let mut seq = s.serialize_seq(Some(counts.len()))?;
    for (key, count) in counts {
        seq.serialize_element(&Row { key, count: *count })?;
    }
    seq.end()
}

fn serialize_revenue<S: serde::Serializer>(
    revenue: &BTreeMap<(Option<VariantId>, Option<u32>), i64>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    #[derive(Serialize)]
    struct Row<'a> {
        variant: Option<&'a VariantId>,
        #[serde(skip_serializing_if = "Option::is_none")]
        step: Option<u32>,
        revenue_minor: i64,
    }
    let mut seq = s.serialize_seq(Some(revenue.len()))?;
    for ((variant, step), revenue_minor) in revenue {
        seq.serialize_element(&Row {
            variant: variant.as_ref(),
            step: *step,
            revenue_minor: *revenue_minor,
        })?;
    }
    seq.end()
}

/// One tumbling window: its local start and end and what happened in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Window {
    /// The window's length.
    pub granularity: Granularity,
    /// Local start (inclusive), on the [`ZoneRule`]'s wall clock.
    pub start: DateTime,
    /// Local end (exclusive).
    pub end: DateTime,
    /// What happened.
    pub counts: WindowCounts,
}

#[derive(Default)]
struct CampaignWindows {
    /// Local windows per granularity, by local start.
    local: [BTreeMap<DateTime, WindowCounts>; 3],
    /// Real-time minutes (Unix minute) for sliding windows.
    minutes: BTreeMap<i64, WindowCounts>,
    late: u64,
}

/// Adds `event` to the window at `key`, keeping at most `cap` windows; false when the event is
/// older than every kept window (the window is then dropped at once).
fn add_bounded<K: Ord + Clone>(
    map: &mut BTreeMap<K, WindowCounts>,
    key: K,
    cap: usize,
    event: &Event,
) -> bool {
    if map.len() >= cap && map.first_key_value().is_some_and(|(first, _)| key < *first) {
        return false;
    }
    map.entry(key).or_default().add(event);
    while map.len() > cap {
        map.pop_first();
    }
    true
}

/// Tumbling and sliding windows over the events of every campaign (see the [module](self)).
pub struct Windows {
    config: WindowConfig,
    campaigns: HashMap<CampaignId, CampaignWindows>,
}

impl fmt::Debug for Windows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Windows")
            .field("config", &self.config)
            .field("campaigns", &self.campaigns.len())
            .finish()
    }
}

impl Windows {
    /// Empty windows.
    pub fn new(config: WindowConfig) -> Self {
        Self {
            config,
            campaigns: HashMap::new(),
        }
    }

    /// Counts one event. Events without a campaign are not windowed. The caller deduplicates
    /// (the [`Collector`](crate::Collector) does).
    pub fn add(&mut self, event: &Event) {
        let Some(campaign) = &event.campaign else {
            return;
        };
        let local = self.config.zone.local(event);
        let retention = self.config.retention;
        let windows = self.campaigns.entry(campaign.clone()).or_default();
        let mut late = false;
        for g in Granularity::ALL {
            late |= !add_bounded(
                &mut windows.local[g.index()],
                g.truncate(local),
                retention.of(g),
                event,
            );
        }
        let minute = event.at.as_second().div_euclid(60);
        late |= !add_bounded(&mut windows.minutes, minute, retention.minutes, event);
        if late {
            windows.late += 1;
        }
    }

    /// The kept tumbling windows of a campaign at one granularity, oldest first; windows in which
    /// nothing happened are absent.
    pub fn tumbling(&self, campaign: &CampaignId, granularity: Granularity) -> Vec<Window> {
        let Some(windows) = self.campaigns.get(campaign) else {
            return Vec::new();
        };
        windows.local[granularity.index()]
            .iter()
            .map(|(start, counts)| Window {
                granularity,
                start: *start,
                end: granularity.next(*start),
                counts: counts.clone(),
            })
            .collect()
    }

    /// What happened in the `width` of real time up to and including `now`, at minute resolution:
    /// the minutes `(now - width, now]`, where the minute holding `now` counts whole.
    ///
    /// # Errors
    /// [`AnalyticsError::InvalidQuery`] when `width` is not a positive whole number of minutes or
    /// reaches further back than the kept minutes ([`Retention::minutes`]).
    pub fn sliding(
        &self,
        campaign: &CampaignId,
        width: SignedDuration,
        now: Timestamp,
    ) -> Result<WindowCounts> {
        let secs = width.as_secs();
        if secs <= 0 || secs % 60 != 0 || width.subsec_nanos() != 0 {
            return Err(AnalyticsError::InvalidQuery(format!(
                "a sliding window is a positive whole number of minutes, not {width:?}"
            )));
        }
        let span = secs / 60;
        if span > self.config.retention.minutes as i64 {
            return Err(AnalyticsError::InvalidQuery(format!(
                "a sliding window of {span} minutes is longer than the {} minutes kept",
                self.config.retention.minutes
            )));
        }
        let mut out = WindowCounts::default();
        if let Some(windows) = self.campaigns.get(campaign) {
            let last = now.as_second().div_euclid(60);
            for (_, counts) in windows.minutes.range(last - span + 1..=last) {
                out.merge(counts);
            }
        }
        Ok(out)
    }

    /// Events of a campaign that were older than every kept window when they arrived (counted in
    /// the collector's totals and the store, not in any window).
    pub fn late(&self, campaign: &CampaignId) -> u64 {
        self.campaigns.get(campaign).map_or(0, |w| w.late)
    }

    /// The campaigns with windows.
    pub fn campaigns(&self) -> Vec<CampaignId> {
        let mut out: Vec<CampaignId> = self.campaigns.keys().cloned().collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests;
