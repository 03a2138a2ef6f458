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

/// The state of one key. A key absent from the map behaves as [`Slot::FRESH`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    /// Theoretical arrival time, µs since the epoch.
    tat: Option<i64>,
    /// No slot before this, µs since the epoch.
    frozen_until: i64,
}

impl Slot {
    /// A key never seen. `i64::MIN`, not 0, so a clock before 1970 is not frozen.
    const FRESH: Slot = Slot {
        tat: None,
        frozen_until: i64::MIN,
    };

    /// Whether this state decides every call at `now` or later exactly like [`Slot::FRESH`]:
    /// a theoretical arrival time at or before `now` is raised to `now` by [`Gcra::step`],
    /// as a missing one is, and a freeze that has ended holds nothing.
    fn is_idle_at(&self, now: i64) -> bool {
        self.tat.is_none_or(|tat| tat <= now) && self.frozen_until <= now
    }
}

/// The map size below which no automatic prune runs (a prune scans every key).
const PRUNE_MIN_KEYS: usize = 1024;

/// The keys and the bookkeeping of automatic pruning.
#[derive(Debug)]
struct Slots {
    map: HashMap<String, Slot>,
    /// The size at which the next automatic prune runs: twice the size the last one left,
    /// so its cost (one scan) is paid for by the insertions since, and the map stays within
    /// about twice the keys active in the last burst window and grace period.
    prune_at: usize,
    /// The smallest `prune_at`; `usize::MAX` turns automatic pruning off (for the tests).
    min_keys: usize,
}

impl Slots {
    fn new(min_keys: usize) -> Self {
        Self {
            map: HashMap::new(),
            prune_at: min_keys,
            min_keys,
        }
    }

    /// Runs `f` on the state of `key`, inserting it fresh if absent. An insertion that brings
    /// the map to `prune_at` first drops the keys idle since `now - PRUNE_GRACE`.
    fn update<R>(&mut self, key: &str, now: i64, f: impl FnOnce(&mut Slot) -> R) -> R {
        // The common case, a known key, without allocating the key.
        if let Some(slot) = self.map.get_mut(key) {
            return f(slot);
        }
        if self.map.len() >= self.prune_at {
            self.prune(now.saturating_sub(grace_micros()));
            self.prune_at = self.map.len().saturating_mul(2).max(self.min_keys);
        }
        let mut slot = Slot::FRESH;
        let result = f(&mut slot);
        self.map.insert(key.to_owned(), slot);
        result
    }

    /// Drops every key idle at `horizon`; returns how many.
    fn prune(&mut self, horizon: i64) -> usize {
        let before = self.map.len();
        self.map.retain(|_, slot| !slot.is_idle_at(horizon));
        before - self.map.len()
    }
}

fn grace_micros() -> i64 {
    i64::try_from(LocalRateLimiter::PRUNE_GRACE.as_micros()).unwrap_or(i64::MAX)
}

/// A GCRA limiter in this process's memory, by the agent's clock (so it works in virtual time).
///
/// A key whose theoretical arrival time and freeze are both past answers like a key never
/// seen, so it is dropped: automatically, whenever the map has doubled since the last prune
/// (keys idle since [`PRUNE_GRACE`](Self::PRUNE_GRACE) before the triggering call), and on
/// demand with [`prune`](Self::prune). However many keys pass through over time, the map
/// holds about those active in the last burst window and grace period (at most twice as
/// many; automatic pruning starts at 1,024 keys).
///
/// The GCRA is mia's own rather than the `governor` crate's keyed limiter because governor
/// reads the time from a clock the limiter owns, not from the caller, so it cannot take the
/// `now` (possibly virtual) that every [`RateLimiter::try_acquire`] call carries, nor freeze a
/// key until a given time.
pub struct LocalRateLimiter {
    limit: Gcra,
    slots: Mutex<Slots>,
}

impl std::fmt::Debug for LocalRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalRateLimiter")
            .field("limit", &self.limit)
            // `try_lock`: formatting must never wait for, or deadlock on, the limiter.
            .field("keys", &self.slots.try_lock().map(|s| s.map.len()).ok())
            .finish_non_exhaustive()
    }
}

impl LocalRateLimiter {
    /// How far behind the time of the call that triggers it an automatic prune looks: only
    /// keys idle since `now - PRUNE_GRACE` are dropped, so workers whose clocks (or whose reads
    /// of one clock) differ by less than this get the same answers as without pruning.
    pub const PRUNE_GRACE: Duration = Duration::from_secs(1);

    /// A limiter with this limit for every key.
    ///
    /// # Errors
    /// [`Error::Config`] for invalid parameters.
    pub fn new(limit: Gcra) -> Result<Self> {
        Self::with_prune_min_keys(limit, PRUNE_MIN_KEYS)
    }

    fn with_prune_min_keys(limit: Gcra, min_keys: usize) -> Result<Self> {
        limit.validate()?;
        Ok(Self {
            limit,
            slots: Mutex::new(Slots::new(min_keys)),
        })
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, Slots> {
        // The state stays consistent whatever panicked while holding the lock: every update
        // is a single assignment.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many keys the limiter holds state for (for tests and monitoring).
    pub fn len(&self) -> usize {
        self.slots().map.len()
    }

    /// Whether the limiter holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every key idle at `now` (its theoretical arrival time and freeze at or before
    /// `now`) and returns how many it dropped. A dropped key answers like one never seen at
    /// `now` and later, so pass the earliest time a later call may carry: the automatic prune
    /// uses the calling time minus [`PRUNE_GRACE`](Self::PRUNE_GRACE).
    pub fn prune(&self, now: Timestamp) -> usize {
        self.slots().prune(now.as_microsecond())
    }
}

#[async_trait]
impl RateLimiter for LocalRateLimiter {
    async fn try_acquire(&self, key: &str, now: Timestamp) -> Result<Option<Duration>> {
        let now = now.as_microsecond();
        let limit = self.limit;
        Ok(self.slots().update(key, now, |slot| {
            if slot.frozen_until > now {
                let wait = slot.frozen_until - now;
                return Some(Duration::from_micros(u64::try_from(wait).unwrap_or(0)));
            }
            match limit.step(slot.tat, now) {
                Ok(tat) => {
                    slot.tat = Some(tat);
                    None
                }
                Err(wait) => Some(wait),
            }
        }))
    }

    async fn freeze(&self, key: &str, now: Timestamp, until: Timestamp) -> Result<()> {
        let until = until.as_microsecond();
        self.slots().update(key, now.as_microsecond(), |slot| {
            slot.frozen_until = slot.frozen_until.max(until);
        });
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

    #[tokio::test]
    async fn pruning_drops_idle_keys_only() {
        let l = LocalRateLimiter::new(Gcra::per_second(30.0)).unwrap();
        assert!(l.is_empty());
        l.try_acquire("a", t(0)).await.unwrap();
        l.try_acquire("b", t(0)).await.unwrap();
        l.freeze("c", t(0), t(10_000)).await.unwrap();
        assert_eq!(l.len(), 3);
        // "a" and "b" may take their next slot at 33 ms: still busy at 20 ms.
        assert_eq!(l.prune(t(20)), 0);
        assert_eq!(l.prune(t(500)), 2, "a and b are idle, c is frozen");
        assert_eq!(l.len(), 1);
        assert_eq!(
            l.try_acquire("c", t(9_000)).await.unwrap(),
            Some(Duration::from_secs(1)),
            "the freeze survives"
        );
        assert_eq!(l.prune(t(9_999)), 0, "frozen for one more millisecond");
        assert_eq!(l.prune(t(10_000)), 1);
        assert!(l.is_empty());
        assert_eq!(l.try_acquire("a", t(10_000)).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_fresh_key_before_1970_is_not_frozen() {
        let l = LocalRateLimiter::new(Gcra::per_second(1.0)).unwrap();
        let before_epoch = Timestamp::from_second(-86_400).unwrap();
        assert_eq!(l.try_acquire("k", before_epoch).await.unwrap(), None);
    }

    /// SplitMix64, for reproducible sequences.
    fn next(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Property: on random sequences of acquisitions, freezes and prunes, with the clock
    /// moving forward in steps and jumps and every call reading it up to the grace period
    /// late (workers racing), a limiter that prunes at every insertion answers exactly like
    /// one that never prunes.
    #[tokio::test]
    async fn pruning_never_changes_a_decision() {
        let grace = i64::try_from(LocalRateLimiter::PRUNE_GRACE.as_micros()).unwrap();
        let mut dropped = 0;
        for seed in 0..64u64 {
            let mut rng = seed;
            let rates = [0.5, 1.0, 4.0, 10.0, 30.0, 1000.0];
            let limit = Gcra {
                rate: rates[(next(&mut rng) % 6) as usize],
                burst: 1 + (next(&mut rng) % 4) as u32,
            };
            let pruned = LocalRateLimiter::with_prune_min_keys(limit, 1).unwrap();
            let unpruned = LocalRateLimiter::with_prune_min_keys(limit, usize::MAX).unwrap();
            let keys = 1 + next(&mut rng) % 24;
            // Times on a millisecond grid, like most intervals here, so that arrival times
            // and freezes end exactly at the time of a call as often as around it.
            let mut ms = |bound: u64| (next(&mut rng) % bound) as i64 * 1000;
            let grace_ms = (grace / 1000) as u64;
            let mut clock: i64 = 1_800_000_000_000_000;
            for _ in 0..1500 {
                clock += match ms(20) {
                    0 => ms(20_000),
                    1_000..=3_000 => ms(1_000),
                    4_000..=9_000 => 0,
                    _ => ms(50),
                };
                // Half the sequences read the clock late (racing workers), half on time.
                let late = match ms(10) {
                    _ if seed % 2 == 0 => 0,
                    0 => ms(grace_ms + 1),
                    1_000 | 2_000 => ms(50),
                    _ => 0,
                };
                let now = Timestamp::from_microsecond(clock - late).unwrap();
                let key = format!("k{}", ms(keys) / 1000);
                match ms(10) {
                    0 => {
                        let until = match ms(2) {
                            0 => now.as_microsecond() - 2_000_000 + ms(10_000),
                            _ => now.as_microsecond() - 20_000 + ms(100),
                        };
                        let until = Timestamp::from_microsecond(until).unwrap();
                        pruned.freeze(&key, now, until).await.unwrap();
                        unpruned.freeze(&key, now, until).await.unwrap();
                    }
                    1_000 => {
                        // The earliest time a later call may carry.
                        let lag = if seed % 2 == 0 { 0 } else { grace };
                        let horizon = Timestamp::from_microsecond(clock - lag).unwrap();
                        dropped += pruned.prune(horizon);
                    }
                    _ => {
                        let a = pruned.try_acquire(&key, now).await.unwrap();
                        let b = unpruned.try_acquire(&key, now).await.unwrap();
                        assert_eq!(a, b, "seed {seed}, {key} at {now}, {limit:?}");
                    }
                }
                assert!(pruned.len() <= unpruned.len());
            }
        }
        assert!(dropped > 1000, "the test must prune: {dropped} dropped");
    }

    #[tokio::test]
    async fn the_map_stays_bounded_over_many_distinct_keys() {
        let l = LocalRateLimiter::new(Gcra::per_second(30.0)).unwrap();
        let mut largest = 0;
        // 100,000 recipients, one new one every millisecond, each sent to once.
        for i in 0..100_000 {
            let key = format!("user-{i}");
            assert_eq!(l.try_acquire(&key, t(i)).await.unwrap(), None);
            largest = largest.max(l.len());
        }
        // Keys stay for their 33 ms interval plus the one-second grace: about 1,034 at a
        // time, and the map doubles at most once past that before a prune.
        assert!(largest <= 2 * 1_040, "{largest} keys held at once");
        let held = l.len();
        assert!(held <= 2 * 1_040);
        assert_eq!(
            l.prune(t(200_000)),
            held,
            "all idle once the last interval is over"
        );
        assert!(l.is_empty());
    }
}
