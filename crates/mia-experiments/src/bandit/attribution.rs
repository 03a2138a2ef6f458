//! Delayed rewards: each assignment's reward is held while its attribution window is open and
//! settled when the window closes (no reward by then is a reward of 0).

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::error::{ExperimentError, Result};

/// What became of a reward offered to an [`AttributionWindow`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attribution {
    /// Within the window: held, and learned from when the window closes.
    Held,
    /// After the window closed: ignored, and counted in [`AttributionWindow::late`]. The
    /// assignment settles (or has settled) with whatever it held, 0 if nothing.
    Late,
    /// The assignment already had its reward: ignored.
    Duplicate,
    /// No such assignment: ignored.
    Unknown,
}

/// An assignment whose window is still open.
#[derive(Clone, Debug)]
struct Open {
    /// When its window closes (assignment time + window; a reward at that instant counts).
    closes_at: Timestamp,
    /// The reward held so far.
    value: Option<f64>,
}

/// Holds delayed rewards until their attribution window closes: one reward per assignment
/// (keyed by assignment id, so duplicates never count twice), counted only if it arrives no
/// later than `window` after the assignment (a reward exactly at the boundary counts; one
/// stamped before its assignment, from clock skew between workers, counts too).
///
/// [`close`](AttributionWindow::close) settles every assignment whose window has closed: its
/// held reward, or 0 when none came (a no-conversion is an outcome too). A learner applies the
/// pull and the reward together then, so recent assignments never look like failures while
/// their conversions may still come. [`Bandit`](super::Bandit) uses this with an attribution
/// window; hosts that learn outside the `Allocator` seam, such as with
/// [`LinUcb`](super::LinUcb), put it in front of their updates.
///
/// ```
/// use jiff::{SignedDuration, Timestamp};
/// use mia_experiments::bandit::{Attribution, AttributionWindow};
/// let mut window = AttributionWindow::new(SignedDuration::from_hours(24))?;
/// let t0 = Timestamp::from_second(1_700_000_000).map_err(|e| mia_experiments::ExperimentError::InvalidInput(e.to_string()))?;
/// window.assigned("a-1", t0);
/// window.assigned("a-2", t0);
/// assert_eq!(window.attribute(&"a-1", t0 + SignedDuration::from_hours(3), 1.0), Attribution::Held);
/// assert!(window.close(t0 + SignedDuration::from_hours(5)).is_empty(), "still open");
/// assert_eq!(window.attribute(&"a-2", t0 + SignedDuration::from_hours(30), 1.0), Attribution::Late);
/// let settled = window.close(t0 + SignedDuration::from_hours(30));
/// assert_eq!(settled, vec![("a-1", 1.0), ("a-2", 0.0)]);
/// # Ok::<(), mia_experiments::ExperimentError>(())
/// ```
#[derive(Clone, Debug)]
pub struct AttributionWindow<K> {
    window: SignedDuration,
    open: HashMap<K, Open>,
    /// Open assignments by closing time (ties in assignment order).
    deadlines: BTreeMap<(Timestamp, u64), K>,
    /// Settled assignments: whether each had a reward.
    settled: HashMap<K, bool>,
    next_seq: u64,
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
            open: HashMap::new(),
            deadlines: BTreeMap::new(),
            settled: HashMap::new(),
            next_seq: 0,
            late: 0,
            duplicates: 0,
            unknown: 0,
        })
    }

    /// The window's length.
    pub fn window(&self) -> SignedDuration {
        self.window
    }

    /// Notes that an assignment was made at `at`, opening its window. A key already noted
    /// (open or settled) keeps its first window: sticky assignments are made once.
    pub fn assigned(&mut self, assignment: impl Into<K>, at: Timestamp) {
        let key = assignment.into();
        if self.open.contains_key(&key) || self.settled.contains_key(&key) {
            return;
        }
        // A window past the end of time closes at the end of time.
        let closes_at = at.checked_add(self.window).unwrap_or(Timestamp::MAX);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.deadlines.insert((closes_at, seq), key.clone());
        self.open.insert(
            key,
            Open {
                closes_at,
                value: None,
            },
        );
    }

    /// Offers a reward for `assignment` arriving at `at`: held if its window is open at `at`
    /// and it has none yet. Rewards that are not held change nothing but a counter.
    pub fn attribute(&mut self, assignment: &K, at: Timestamp, value: f64) -> Attribution {
        if let Some(open) = self.open.get_mut(assignment) {
            if open.value.is_some() {
                self.duplicates += 1;
                return Attribution::Duplicate;
            }
            if at > open.closes_at {
                self.late += 1;
                return Attribution::Late;
            }
            open.value = Some(value);
            return Attribution::Held;
        }
        match self.settled.get(assignment) {
            Some(true) => {
                self.duplicates += 1;
                Attribution::Duplicate
            }
            Some(false) => {
                self.late += 1;
                Attribution::Late
            }
            None => {
                self.unknown += 1;
                Attribution::Unknown
            }
        }
    }

    /// Settles every assignment whose window closed before `now`, in closing order: each
    /// with its held reward, or 0 when none came. Each assignment settles once.
    pub fn close(&mut self, now: Timestamp) -> Vec<(K, f64)> {
        let mut out = Vec::new();
        while let Some(entry) = self.deadlines.first_entry() {
            if entry.key().0 >= now {
                break;
            }
            let key = entry.remove();
            if let Some(open) = self.open.remove(&key) {
                self.settled.insert(key.clone(), open.value.is_some());
                out.push((key, open.value.unwrap_or(0.0)));
            }
        }
        out
    }

    /// When the next open window closes, if any is open.
    pub fn next_close(&self) -> Option<Timestamp> {
        self.deadlines.keys().next().map(|&(at, _)| at)
    }

    /// Assignments whose window is still open.
    pub fn open(&self) -> usize {
        self.open.len()
    }

    /// The reward held for an open assignment, if one came.
    pub fn held(&self, assignment: &K) -> Option<f64> {
        self.open.get(assignment).and_then(|o| o.value)
    }

    /// Rewards ignored because their window had closed.
    pub fn late(&self) -> u64 {
        self.late
    }

    /// Rewards ignored because their assignment already had one.
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
    fn rewards_are_held_until_the_window_closes_then_settled_once() {
        let t0 = Timestamp::from_second(1_800_000_000).unwrap();
        let hour = SignedDuration::from_hours(1);
        let mut w = AttributionWindow::<String>::new(hour * 24).unwrap();
        for (id, offset) in [("a", 0), ("b", 1), ("c", 2), ("d", 3), ("e", 4)] {
            w.assigned(id, t0 + hour * offset);
        }
        // Re-noting an assignment does not restart its window.
        w.assigned("a", t0 + hour * 100);
        let at = |h: i32| t0 + hour * h;
        assert_eq!(
            w.attribute(&"a".into(), at(24), 1.0),
            Attribution::Held,
            "boundary"
        );
        assert_eq!(w.attribute(&"b".into(), at(26), 1.0), Attribution::Late);
        assert_eq!(w.attribute(&"c".into(), at(25), 0.5), Attribution::Held);
        assert_eq!(
            w.attribute(&"d".into(), at(-1), 1.0),
            Attribution::Held,
            "skew"
        );
        assert_eq!(
            w.attribute(&"a".into(), at(24), 1.0),
            Attribution::Duplicate
        );
        assert_eq!(w.attribute(&"zz".into(), at(1), 1.0), Attribution::Unknown);
        assert_eq!(w.held(&"c".into()), Some(0.5));
        assert_eq!(w.next_close(), Some(at(24)));

        // Nothing closes while every window is open (the boundary instant is still open).
        assert!(w.close(at(24)).is_empty());
        assert_eq!(w.open(), 5);
        // a and b close; b had no timely reward, so it settles at 0.
        let first = w.close(at(26));
        assert_eq!(first, vec![("a".into(), 1.0), ("b".into(), 0.0)]);
        // Everything else closes, in order; e never converted.
        let rest = w.close(at(100));
        assert_eq!(
            rest,
            vec![("c".into(), 0.5), ("d".into(), 1.0), ("e".into(), 0.0)]
        );
        assert!(w.close(at(200)).is_empty(), "each settles once");
        assert_eq!((w.open(), w.next_close()), (0, None));

        // After settling: a duplicate of a rewarded one, a late one for an unrewarded one;
        // re-noting a settled assignment opens nothing.
        assert_eq!(
            w.attribute(&"a".into(), at(30), 1.0),
            Attribution::Duplicate
        );
        assert_eq!(w.attribute(&"e".into(), at(30), 1.0), Attribution::Late);
        w.assigned("e", at(101));
        assert!(w.close(at(300)).is_empty());
        assert_eq!((w.late(), w.duplicates(), w.unknown()), (2, 2, 1));
        assert!(AttributionWindow::<String>::new(SignedDuration::ZERO).is_err());
    }
}
