//! Wall time: real for production; simulated for tests ([`SimClock`], tied to tokio's paused
//! clock) and dry-runs ([`VirtualClock`], which moves only when someone waits on it).

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};

/// A boxed future returned by [`Clock::sleep_until`].
pub type Sleep<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// A source of wall-clock time, and a way to wait for it.
pub trait Clock: Send + Sync + Debug {
    /// Now.
    fn now(&self) -> Timestamp;

    /// Waits until the clock reads `deadline` (returns at once if it already does).
    ///
    /// The default sleeps in tokio time for the difference, which is right for the system
    /// clock and for [`SimClock`] under a paused runtime.
    fn sleep_until(&self, deadline: Timestamp) -> Sleep<'_> {
        let wait = deadline.duration_since(self.now());
        Box::pin(async move {
            if wait > SignedDuration::ZERO {
                let wait = std::time::Duration::try_from(wait).unwrap_or(std::time::Duration::MAX);
                tokio::time::sleep(wait).await;
            }
        })
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
    fn sleep_until(&self, deadline: Timestamp) -> Sleep<'_> {
        (**self).sleep_until(deadline)
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

/// A clock that stands still until someone waits on it, then jumps to the deadline.
///
/// For dry-runs with a real database: time does not pass while a query runs, only when the
/// agent waits (for a due job, a rate limit, the next reply), so a campaign spanning days of
/// quiet hours runs as fast as the store allows and the same seed gives the same run. (Tokio's
/// paused clock is not used here on purpose: it jumps ahead whenever the runtime is idle, which
/// includes waiting on a database driver's thread, where it would fire the pool's timeouts.)
///
/// With several tasks waiting at once, the earliest deadline does not win: whoever waits first
/// moves time. Use it with one worker; use [`SimClock`] to simulate concurrency.
#[derive(Debug)]
pub struct VirtualClock {
    now: Mutex<Timestamp>,
}

impl VirtualClock {
    /// A clock that reads `start`.
    pub fn starting_at(start: Timestamp) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock forward by `by` (never backwards).
    pub fn advance(&self, by: SignedDuration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        if by > SignedDuration::ZERO {
            *now = now.checked_add(by).unwrap_or(Timestamp::MAX);
        }
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sleep_until(&self, deadline: Timestamp) -> Sleep<'_> {
        {
            let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
            if deadline > *now {
                *now = deadline;
            }
        }
        // Let other tasks run, as a real sleep would.
        Box::pin(tokio::task::yield_now())
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
        clock.sleep_until(later).await;
        assert_eq!(clock.now(), later);
        // Sleeping until the past returns at once.
        clock.sleep_until(start).await;
        assert_eq!(clock.now(), later);
    }

    #[tokio::test]
    async fn virtual_clock_moves_only_when_waited_on() {
        let start = Timestamp::from_second(1_800_000_000).unwrap();
        let clock = VirtualClock::starting_at(start);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        assert_eq!(clock.now(), start, "real time does not move it");
        let later = start + SignedDuration::from_hours(30);
        clock.sleep_until(later).await;
        assert_eq!(clock.now(), later);
        clock.sleep_until(start).await;
        assert_eq!(clock.now(), later, "never backwards");
        clock.advance(SignedDuration::from_secs(1));
        assert_eq!(clock.now(), later + SignedDuration::from_secs(1));
    }
}
