//! [`FunnelSpec`]: which steps, which window, which mode.

use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How steps must follow each other. See the [module docs](super#semantics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FunnelMode {
    /// Steps in order; other events may sit in between.
    #[default]
    Ordered,
    /// Steps in order with no other event of the user in between.
    Strict,
    /// Steps in any order; the count at step `k` is users who covered `k + 1` steps.
    AnyOrder,
}

impl FunnelMode {
    /// The name used on the command line: `ordered`, `strict` or `any`.
    pub fn name(self) -> &'static str {
        match self {
            FunnelMode::Ordered => "ordered",
            FunnelMode::Strict => "strict",
            FunnelMode::AnyOrder => "any",
        }
    }
}

impl FromStr for FunnelMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ordered" => Ok(FunnelMode::Ordered),
            "strict" => Ok(FunnelMode::Strict),
            "any" | "any_order" | "any-order" | "unordered" => Ok(FunnelMode::AnyOrder),
            other => Err(format!(
                "unknown funnel mode {other:?}: ordered, strict or any"
            )),
        }
    }
}

/// Drops an attempt in which `event` happens between step `from_step` and step `to_step`
/// (0-based indices into [`FunnelSpec::steps`], `from_step < to_step`). See the
/// [module docs](super#semantics).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exclusion {
    /// The excluded event name (such as `opted_out`).
    pub event: String,
    /// The step after which the exclusion starts to apply (0-based).
    pub from_step: usize,
    /// The step at which it stops applying (0-based, greater than `from_step`).
    pub to_step: usize,
}

/// Splits the funnel by the value of a column. Every user falls in exactly one group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Breakdown {
    /// An event column (such as `variant`): the value on the user's first starting event.
    Event(String),
    /// A user column (such as `plan`): the user's value.
    User(String),
}

impl Breakdown {
    /// The column's name.
    pub fn column(&self) -> &str {
        match self {
            Breakdown::Event(c) | Breakdown::User(c) => c,
        }
    }
}

/// The default conversion window: 14 days.
pub const DEFAULT_WINDOW_MICROS: i64 = 14 * 86_400 * 1_000_000;

/// A funnel query: steps, conversion window, mode, exclusions and breakdown.
///
/// ```
/// use std::time::Duration;
/// use mia_analytics::funnel::{Breakdown, FunnelMode, FunnelSpec};
///
/// let spec = FunnelSpec::new(["sent", "delivered", "read", "clicked", "converted"])
///     .window(Duration::from_secs(7 * 86_400))
///     .mode(FunnelMode::Ordered)
///     .exclude("opted_out", 0, 4)
///     .breakdown(Breakdown::Event("variant".into()));
/// assert_eq!(spec.steps.len(), 5);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunnelSpec {
    /// Event names, one per step (1 to 32 steps).
    pub steps: Vec<String>,
    /// The conversion window in microseconds, measured from the starting event, inclusive.
    pub window_micros: i64,
    /// How steps must follow each other.
    pub mode: FunnelMode,
    /// Exclusion steps (at most 32).
    pub exclusions: Vec<Exclusion>,
    /// An optional split by a column.
    pub breakdown: Option<Breakdown>,
    /// Bins of the time-to-convert histogram (0: no histogram).
    pub histogram_bins: usize,
    /// Worker threads; 0 uses the machine's available parallelism.
    pub threads: usize,
}

impl FunnelSpec {
    /// An ordered funnel over `steps` with a 14-day window, no exclusion, no breakdown, a
    /// 10-bin histogram, and one thread per core.
    pub fn new<I, S>(steps: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            steps: steps.into_iter().map(Into::into).collect(),
            window_micros: DEFAULT_WINDOW_MICROS,
            mode: FunnelMode::Ordered,
            exclusions: Vec::new(),
            breakdown: None,
            histogram_bins: 10,
            threads: 0,
        }
    }

    /// Sets the conversion window (saturating at `i64::MAX` microseconds).
    #[must_use]
    pub fn window(mut self, window: Duration) -> Self {
        self.window_micros = i64::try_from(window.as_micros()).unwrap_or(i64::MAX);
        self
    }

    /// Sets the conversion window in microseconds.
    #[must_use]
    pub fn window_micros(mut self, micros: i64) -> Self {
        self.window_micros = micros;
        self
    }

    /// Sets the mode.
    #[must_use]
    pub fn mode(mut self, mode: FunnelMode) -> Self {
        self.mode = mode;
        self
    }

    /// Adds an exclusion: `event` between steps `from_step` and `to_step` (0-based) drops
    /// the attempt.
    #[must_use]
    pub fn exclude(mut self, event: impl Into<String>, from_step: usize, to_step: usize) -> Self {
        self.exclusions.push(Exclusion {
            event: event.into(),
            from_step,
            to_step,
        });
        self
    }

    /// Splits the result by a column.
    #[must_use]
    pub fn breakdown(mut self, breakdown: Breakdown) -> Self {
        self.breakdown = Some(breakdown);
        self
    }

    /// Sets the number of histogram bins (0: none).
    #[must_use]
    pub fn histogram_bins(mut self, bins: usize) -> Self {
        self.histogram_bins = bins;
        self
    }

    /// Sets the number of worker threads (0: one per core).
    #[must_use]
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_from_their_command_line_names() {
        for mode in [
            FunnelMode::Ordered,
            FunnelMode::Strict,
            FunnelMode::AnyOrder,
        ] {
            assert_eq!(mode.name().parse::<FunnelMode>(), Ok(mode));
        }
        assert!("sequential".parse::<FunnelMode>().is_err());
    }

    #[test]
    fn a_huge_window_saturates() {
        let spec = FunnelSpec::new(["a"]).window(Duration::MAX);
        assert_eq!(spec.window_micros, i64::MAX);
    }
}
