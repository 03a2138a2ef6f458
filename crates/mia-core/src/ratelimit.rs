//! The rate-limit seam: one Telegram limit, respected by every worker that shares the limiter.
//!
//! The agent asks the limiter for a slot before every send and freezes the key when Telegram
//! answers with a retry-after (FloodWait), so that all workers wait together instead of each
//! finding out on its own. [`LocalRateLimiter`] keeps the state in the process; a shared one
//! (Redis, in `mia-store`) makes several processes one sender.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A GCRA (generic cell rate algorithm) limit: `rate` per second with bursts of up to `burst`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gcra {
    /// Sustained slots per second.
    pub rate: f64,
    /// Slots that may be taken at once after a quiet period (at least 1).
    pub burst: u32,
}

impl Gcra {
    /// `rate` per second, no burst.
    pub fn per_second(rate: f64) -> Self {
        Self { rate, burst: 1 }
    }

    /// Checks the parameters.
    ///
    /// # Errors
    /// [`Error::Config`] for a rate that is not positive and finite, or a burst of 0.
    pub fn validate(&self) -> Result<()> {
        if !(self.rate.is_finite() && self.rate > 0.0) || self.burst == 0 {
            return Err(Error::Config(format!(
                "rate limit needs a positive rate and a burst of at least 1, got {self:?}"
            )));
        }
        Ok(())
    }

    /// The time between two slots, in microseconds (at least 1), rounded up: `rate` is a
    /// limit, so n + 1 slots never fit in less than n intervals of the true rate (at 30/s,
    /// 31 slots span 1.00002 s, not 0.99999 s, which a one-second window would refuse).
    pub fn interval_micros(&self) -> i64 {
        ((1e6 / self.rate).ceil() as i64).max(1)
    }

    /// How far ahead of now the theoretical arrival time may run, in microseconds.
    pub fn tolerance_micros(&self) -> i64 {
        self.interval_micros() * i64::from(self.burst.saturating_sub(1))
    }

    /// One GCRA step on a stored theoretical arrival time (µs since the epoch): the new value
    /// to store if a slot is granted, or the wait until one is.
    pub fn step(&self, tat: Option<i64>, now: i64) -> std::result::Result<i64, Duration> {
        let tat = tat.unwrap_or(now).max(now);
        let ahead = tat - now;
        if ahead > self.tolerance_micros() {
            let wait = ahead - self.tolerance_micros();
            return Err(Duration::from_micros(u64::try_from(wait).unwrap_or(0)));
        }
        Ok(tat + self.interval_micros())
    }
}

/// Hands out send slots.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Takes one slot of `key` at `now` if one is free, or says how long until one is (a
    /// freeze counts too). Never blocks.
    ///
    /// # Errors
    /// When the shared state cannot be reached; the agent then retries the job later.
    async fn try_acquire(&self, key: &str, now: Timestamp) -> Result<Option<Duration>>;

    /// Holds every slot of `key` from `now` until `until` (Telegram said FLOOD_WAIT / retry
    /// after). A later freeze extends it; an earlier one does nothing.
    ///
    /// # Errors
    /// When the shared state cannot be reached.
    async fn freeze(&self, key: &str, now: Timestamp, until: Timestamp) -> Result<()>;
}

#[async_trait]
impl<R: RateLimiter + ?Sized> RateLimiter for Arc<R> {
    async fn try_acquire(&self, key: &str, now: Timestamp) -> Result<Option<Duration>> {
        (**self).try_acquire(key, now).await
    }
    async fn freeze(&self, key: &str, now: Timestamp, until: Timestamp) -> Result<()> {
        (**self).freeze(key, now, until).await
    }
}

#[derive(Default)]
struct Slot {
    tat: Option<i64>,
    frozen_until: i64,
}

/// A GCRA limiter in this process's memory, by the agent's clock (so it works in virtual time).
pub struct LocalRateLimiter {
    limit: Gcra,
    slots: Mutex<HashMap<String, Slot>>,
}

impl std::fmt::Debug for LocalRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalRateLimiter")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl LocalRateLimiter {
    /// A limiter with this limit for every key.
    ///
    /// # Errors
    /// [`Error::Config`] for invalid parameters.
    pub fn new(limit: Gcra) -> Result<Self> {
        limit.validate()?;
        Ok(Self {
            limit,
            slots: Mutex::new(HashMap::new()),
        })
    }
}

#[async_trait]
impl RateLimiter for LocalRateLimiter {
    async fn try_acquire(&self, key: &str, now: Timestamp) -> Result<Option<Duration>> {
        let now = now.as_microsecond();
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let slot = slots.entry(key.to_owned()).or_default();
        if slot.frozen_until > now {
            let wait = slot.frozen_until - now;
            return Ok(Some(Duration::from_micros(
                u64::try_from(wait).unwrap_or(0),
            )));
        }
        match self.limit.step(slot.tat, now) {
            Ok(tat) => {
                slot.tat = Some(tat);
                Ok(None)
            }
            Err(wait) => Ok(Some(wait)),
        }
    }

    async fn freeze(&self, key: &str, _now: Timestamp, until: Timestamp) -> Result<()> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let slot = slots.entry(key.to_owned()).or_default();
        slot.frozen_until = slot.frozen_until.max(until.as_microsecond());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_millisecond(1_800_000_000_000 + ms).unwrap()
    }

    #[tokio::test]
    async fn thirty_per_second_means_one_every_33_ms() {
        let l = LocalRateLimiter::new(Gcra::per_second(30.0)).unwrap();
        assert_eq!(l.try_acquire("bot", t(0)).await.unwrap(), None);
        let wait = l.try_acquire("bot", t(10)).await.unwrap().unwrap();
        assert_eq!(wait, Duration::from_micros(33_334 - 10_000));
        assert_eq!(l.try_acquire("bot", t(34)).await.unwrap(), None);
        assert_eq!(
            l.try_acquire("other", t(34)).await.unwrap(),
            None,
            "keys are independent"
        );
        // Over one second of steady asking, exactly 30 slots.
        let granted = {
            let l = LocalRateLimiter::new(Gcra::per_second(30.0)).unwrap();
            let mut n = 0;
            for ms in 0..1000 {
                if l.try_acquire("k", t(ms)).await.unwrap().is_none() {
                    n += 1;
                }
            }
            n
        };
        assert_eq!(granted, 30);
    }

    #[test]
    fn the_rate_is_never_exceeded_in_any_one_second_window() {
        for rate in [30.0, 29.0, 7.0, 1000.0, 3.0] {
            let gcra = Gcra::per_second(rate);
            let n = rate as i64;
            // n + 1 slots granted back to back span at least one second.
            assert!(gcra.interval_micros() * n >= 1_000_000, "{rate}");
        }
    }

    #[tokio::test]
    async fn bursts_and_freezes() {
        let l = LocalRateLimiter::new(Gcra {
            rate: 1.0,
            burst: 3,
        })
        .unwrap();
        for _ in 0..3 {
            assert_eq!(l.try_acquire("k", t(0)).await.unwrap(), None);
        }
        assert!(l.try_acquire("k", t(0)).await.unwrap().is_some());
        l.freeze("k", t(0), t(5_000)).await.unwrap();
        l.freeze("k", t(0), t(2_000)).await.unwrap(); // earlier: ignored
        assert_eq!(
            l.try_acquire("k", t(4_000)).await.unwrap(),
            Some(Duration::from_secs(1))
        );
        assert_eq!(l.try_acquire("k", t(5_000)).await.unwrap(), None);
    }

    #[test]
    fn bad_limits_are_config_errors() {
        assert!(LocalRateLimiter::new(Gcra::per_second(0.0)).is_err());
        assert!(
            LocalRateLimiter::new(Gcra {
                rate: f64::NAN,
                burst: 1
            })
            .is_err()
        );
        assert!(
            LocalRateLimiter::new(Gcra {
                rate: 1.0,
                burst: 0
            })
            .is_err()
        );
    }
}
