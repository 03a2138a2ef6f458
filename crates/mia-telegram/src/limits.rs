//! Telegram's sending limits and a pacer that keeps them before Telegram has to complain.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use mia_core::{PeerKind, TelegramPeer};
use serde::{Deserialize, Serialize};

use crate::error::TelegramError;

/// Telegram's published limits for one sender (bot or account).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Messages per second over all chats (Telegram: about 30; up to 1000 with paid broadcast).
    pub global_per_second: u32,
    /// Shortest gap between two messages to one private chat (Telegram: about 1 s).
    pub per_chat_interval: Duration,
    /// Messages per minute to one group or channel (Telegram: 20).
    pub group_per_minute: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            global_per_second: 30,
            per_chat_interval: Duration::from_secs(1),
            group_per_minute: 20,
        }
    }
}

impl Limits {
    /// Checks that every limit lets at least one message through.
    ///
    /// # Errors
    /// [`TelegramError::Config`] for a zero limit.
    pub fn validate(&self) -> Result<(), TelegramError> {
        if self.global_per_second == 0 || self.group_per_minute == 0 {
            return Err(TelegramError::Config(
                "limits: messages per second and per group minute must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// Sliding windows over recent sends: answers "how long must a send to this chat wait?".
///
/// Shared by the simulator (which answers an over-limit send with a retry-after, like Telegram)
/// and the real transports (which answer it themselves instead of letting Telegram do it).
#[derive(Debug, Default)]
pub(crate) struct Pacer {
    global: VecDeque<Timestamp>,
    chat_last: HashMap<i64, Timestamp>,
    groups: HashMap<i64, VecDeque<Timestamp>>,
    sends_since_prune: u32,
}

const SECOND: SignedDuration = SignedDuration::from_secs(1);
const MINUTE: SignedDuration = SignedDuration::from_secs(60);

impl Pacer {
    /// The wait a send at `now` to `peer` needs to respect `limits`, if any.
    pub(crate) fn wait(
        &mut self,
        limits: &Limits,
        peer: TelegramPeer,
        now: Timestamp,
    ) -> Option<SignedDuration> {
        while self
            .global
            .front()
            .is_some_and(|t| now.duration_since(*t) >= SECOND)
        {
            self.global.pop_front();
        }
        let mut wait = SignedDuration::ZERO;
        if self.global.len() >= limits.global_per_second as usize
            && let Some(oldest) = self.global.front()
        {
            wait = wait.max(SECOND - now.duration_since(*oldest));
        }
        match peer.kind {
            PeerKind::User => {
                let gap = SignedDuration::try_from(limits.per_chat_interval).unwrap_or(SECOND);
                if let Some(last) = self.chat_last.get(&peer.id) {
                    let since = now.duration_since(*last);
                    if since < gap {
                        wait = wait.max(gap - since);
                    }
                }
            }
            PeerKind::Group | PeerKind::Channel => {
                if let Some(window) = self.groups.get_mut(&peer.id) {
                    while window
                        .front()
                        .is_some_and(|t| now.duration_since(*t) >= MINUTE)
                    {
                        window.pop_front();
                    }
                    if window.len() >= limits.group_per_minute as usize
                        && let Some(oldest) = window.front()
                    {
                        wait = wait.max(MINUTE - now.duration_since(*oldest));
                    }
                }
            }
        }
        (wait > SignedDuration::ZERO).then_some(wait)
    }

    /// Counts a send to `peer` at `now`.
    pub(crate) fn record(&mut self, peer: TelegramPeer, now: Timestamp) {
        self.global.push_back(now);
        match peer.kind {
            PeerKind::User => {
                self.chat_last.insert(peer.id, now);
            }
            PeerKind::Group | PeerKind::Channel => {
                self.groups.entry(peer.id).or_default().push_back(now);
            }
        }
        // Forget chats nobody wrote to for a minute, so memory follows the active chats,
        // not every chat ever seen.
        self.sends_since_prune += 1;
        if self.sends_since_prune >= 4096 {
            self.sends_since_prune = 0;
            self.chat_last
                .retain(|_, last| now.duration_since(*last) < MINUTE);
            self.groups.retain(|_, window| {
                window
                    .back()
                    .is_some_and(|last| now.duration_since(*last) < MINUTE)
            });
        }
    }

    /// How many private chats and groups it currently remembers.
    #[cfg(test)]
    pub(crate) fn remembered(&self) -> usize {
        self.chat_last.len() + self.groups.len()
    }
}

/// Telegram's `retry_after` is whole seconds, at least one.
pub(crate) fn whole_seconds(d: SignedDuration) -> Duration {
    Duration::from_secs_f64(d.as_secs_f64().ceil().max(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_millisecond(1_800_000_000_000 + ms).unwrap()
    }

    #[test]
    fn per_chat_gap_global_window_and_group_minute() {
        let limits = Limits {
            global_per_second: 3,
            per_chat_interval: Duration::from_secs(1),
            group_per_minute: 2,
        };
        let mut p = Pacer::default();
        let alice = TelegramPeer::user(1);
        assert_eq!(p.wait(&limits, alice, t(0)), None);
        p.record(alice, t(0));
        assert_eq!(
            p.wait(&limits, alice, t(400)),
            Some(SignedDuration::from_millis(600))
        );
        p.record(TelegramPeer::user(2), t(100));
        p.record(TelegramPeer::user(3), t(200));
        // Three sends in the last second: a fourth chat waits for the oldest to age out.
        assert_eq!(
            p.wait(&limits, TelegramPeer::user(4), t(500)),
            Some(SignedDuration::from_millis(500))
        );
        assert_eq!(p.wait(&limits, TelegramPeer::user(4), t(1000)), None);

        let group = TelegramPeer::group(-100);
        p.record(group, t(2000));
        p.record(group, t(3000));
        assert_eq!(
            p.wait(&limits, group, t(4000)),
            Some(SignedDuration::from_secs(58))
        );
        assert_eq!(p.wait(&limits, group, t(62_000)), None);
    }

    #[test]
    fn idle_chats_are_forgotten() {
        let limits = Limits::default();
        let mut p = Pacer::default();
        for i in 0..5000 {
            p.record(TelegramPeer::user(i), t(i * 100));
        }
        // At the prune (send 4096, t = 409.5 s) only chats of the last minute remain.
        assert!(p.remembered() < 1600, "{}", p.remembered());
        assert_eq!(p.wait(&limits, TelegramPeer::user(1), t(600_000)), None);
    }

    #[test]
    fn retry_after_is_whole_seconds() {
        assert_eq!(
            whole_seconds(SignedDuration::from_millis(1)),
            Duration::from_secs(1)
        );
        assert_eq!(
            whole_seconds(SignedDuration::from_millis(1200)),
            Duration::from_secs(2)
        );
    }
}
