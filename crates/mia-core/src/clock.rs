//! Wall time: real for production, simulated (tied to tokio's paused clock) for dry-runs.

use std::fmt::Debug;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};

/// A source of wall-clock time.
pub trait Clock: Send + Sync + Debug {
    /// Now.
    fn now(&self) -> Timestamp;
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
}

/// The system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A wall clock that starts at a chosen instant and advances with tokio's clock.
///
/// Under a paused tokio runtime (`start_paused(true)` or `tokio::time::pause()`), time jumps
/// forward whenever every task is waiting, so a day of quiet hours passes in milliseconds and
/// the same seed gives the same run.
#[derive(Clone, Debug)]
pub struct SimClock {
    start_wall: Timestamp,
    start: tokio::time::Instant,
}

impl SimClock {
    /// A clock that reads `start` now.
    pub fn starting_at(start: Timestamp) -> Self {
        Self {
            start_wall: start,
            start: tokio::time::Instant::now(),
        }
    }

    /// How much virtual time has passed since the clock was made.
    pub fn elapsed(&self) -> std::time::Duration {
        self.start.elapsed()
    }
}

impl Clock for SimClock {
    fn now(&self) -> Timestamp {
        let elapsed = SignedDuration::try_from(self.start.elapsed()).unwrap_or(SignedDuration::MAX);
        self.start_wall
            .checked_add(elapsed)
            .unwrap_or(Timestamp::MAX)
    }
}

/// Sleeps (in tokio time) until `clock` reads `until`, or returns at once if it already does.
pub async fn sleep_until(clock: &dyn Clock, until: Timestamp) {
    let wait = until.duration_since(clock.now());
    if wait > SignedDuration::ZERO {
        let wait = std::time::Duration::try_from(wait).unwrap_or(std::time::Duration::MAX);
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn sim_clock_follows_paused_tokio_time() {
        let start = Timestamp::from_second(1_800_000_000).unwrap();
        let clock = SimClock::starting_at(start);
        assert_eq!(clock.now(), start);
        let later = start + SignedDuration::from_hours(9);
        sleep_until(&clock, later).await;
        assert_eq!(clock.now(), later);
        // Sleeping until the past returns at once.
        sleep_until(&clock, start).await;
        assert_eq!(clock.now(), later);
    }
}
