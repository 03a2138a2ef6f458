//! Delayed rewards: a reward counts only if it arrives within an attribution window of its
//! assignment.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::error::{ExperimentError, Result};

/// What became of a reward offered to an [`AttributionWindow`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attribution {
    /// Within the window: learn from it.
    Counted,
    /// After the window closed: ignored, and counted in [`AttributionWindow::late`].
    Late,
    /// The assignment already had its reward (counted or late): ignored.
    Duplicate,
    /// No such assignment: ignored.
    Unknown,
}

/// Decides which rewards to learn from: one per assignment, and only if it arrives no later
/// than `window` after the assignment (a reward exactly at the boundary counts). A reward
/// stamped before its assignment (clock skew between workers) counts.
///
/// Keys are assignment ids (for [`Bandit`](super::Bandit), the contact within a campaign).
/// Hosts that learn from rewards without the `Allocator` seam, such as [`LinUcb`](super::LinUcb),
/// put this in front of their updates.
///
/// ```
/// use jiff::{SignedDuration, Timestamp};
/// use mia_experiments::bandit::{Attribution, AttributionWindow};
/// let mut window = AttributionWindow::new(SignedDuration::from_hours(24))?;
/// let t0 = Timestamp::from_second(1_700_000_000).map_err(|e| mia_experiments::ExperimentError::InvalidInput(e.to_string()))?;
/// window.assigned("a-1", t0);
/// window.assigned("a-2", t0);
/// assert_eq!(window.attribute(&"a-1", t0 + SignedDuration::from_hours(3)), Attribution::Counted);
/// assert_eq!(window.attribute(&"a-2", t0 + SignedDuration::from_hours(30)), Attribution::Late);
/// assert_eq!(window.late(), 1);
/// # Ok::<(), mia_experiments::ExperimentError>(())
/// ```
#[derive(Clone, Debug)]
pub struct AttributionWindow<K> {
    window: SignedDuration,
    assigned: HashMap<K, Timestamp>,
    settled: HashSet<K>,
    late: u64,
    duplicates: u64,
    unknown: u64,
}

impl<K: Hash + Eq + Clone> AttributionWindow<K> {
    /// A window of this length.
    ///
    /// # Errors
    /// [`ExperimentError::InvalidInput`] for a window that is not positive.
    pub fn new(window: SignedDuration) -> Result<Self> {
        if window <= SignedDuration::ZERO {
            return Err(ExperimentError::invalid(format!(
                "attribution window must be positive, got {window:?}"
            )));
        }
        Ok(Self {
            window,
            assigned: HashMap::new(),
            settled: HashSet::new(),
            late: 0,
            duplicates: 0,
            unknown: 0,
        })
    }

    /// The window's length.
    pub fn window(&self) -> SignedDuration {
        self.window
    }

    /// Notes that an assignment was made at `at`. A repeated key keeps its first time (sticky
    /// assignments are made once).
    pub fn assigned(&mut self, assignment: impl Into<K>, at: Timestamp) {
        self.assigned.entry(assignment.into()).or_insert(at);
    }

    /// Whether a reward for `assignment` arriving at `at` counts; settles the assignment
    /// unless it is unknown.
    pub fn attribute(&mut self, assignment: &K, at: Timestamp) -> Attribution {
        let Some(&start) = self.assigned.get(assignment) else {
            self.unknown += 1;
            return Attribution::Unknown;
        };
        if !self.settled.insert(assignment.clone()) {
            self.duplicates += 1;
            return Attribution::Duplicate;
        }
        if at.duration_since(start) > self.window {
            self.late += 1;
            return Attribution::Late;
        }
        Attribution::Counted
    }

    /// Rewards ignored because their window had closed.
    pub fn late(&self) -> u64 {
        self.late
    }

    /// Rewards ignored because their assignment was already settled.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Rewards ignored because their assignment was never noted.
    pub fn unknown(&self) -> u64 {
        self.unknown
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_timely_first_rewards_count() {
        let t0 = Timestamp::from_second(1_800_000_000).unwrap();
        let hour = SignedDuration::from_hours(1);
        let mut w = AttributionWindow::<String>::new(hour * 24).unwrap();
        for (id, offset) in [("a", 0), ("b", 1), ("c", 2), ("d", 3)] {
            w.assigned(id, t0 + hour * offset);
        }
        // Re-noting an assignment does not restart its window.
        w.assigned("a", t0 + hour * 100);
        let at = |h: i32| t0 + hour * h;
        assert_eq!(
            w.attribute(&"a".into(), at(24)),
            Attribution::Counted,
            "boundary"
        );
        assert_eq!(w.attribute(&"b".into(), at(26)), Attribution::Late);
        assert_eq!(w.attribute(&"c".into(), at(25)), Attribution::Counted);
        assert_eq!(
            w.attribute(&"d".into(), at(-1)),
            Attribution::Counted,
            "skew"
        );
        assert_eq!(w.attribute(&"a".into(), at(24)), Attribution::Duplicate);
        assert_eq!(w.attribute(&"b".into(), at(26)), Attribution::Duplicate);
        assert_eq!(w.attribute(&"zz".into(), at(1)), Attribution::Unknown);
        assert_eq!((w.late(), w.duplicates(), w.unknown()), (1, 2, 1));
        assert!(AttributionWindow::<String>::new(SignedDuration::ZERO).is_err());
    }
}
