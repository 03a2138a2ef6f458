//! Account health: a burst of blocks is a spam signal, like PEER_FLOOD. When the sending
//! account's block rate over a trailing window passes the alarm (with enough blocks to mean
//! something), every running campaign pauses for a human to look at the copy and the audience,
//! before Telegram limits the account.

use std::collections::VecDeque;
use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// What Telegram answered one send with, as far as account health is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Signal {
    /// Posted.
    Sent,
    /// The recipient blocked the sender (at send time or afterwards).
    Blocked,
    /// A flood wait or retry-after.
    FloodWait,
    /// The recipient's privacy settings refused the message.
    PrivacyRefused,
    /// `PEER_FLOOD`: the account is limited for spam.
    SpamLimited,
}

#[derive(Clone, Copy, Debug, Default)]
struct Minute {
    minute: i64,
    sends: u64,
    blocks: u64,
    flood_waits: u64,
    privacy_refusals: u64,
    spam_limited: u64,
}

/// The sending account's health over the trailing window (24 h by default), as Telegram would
/// judge it: a score from 100 (nothing wrong) down to 0 (limited for spam).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccountHealth {
    /// 100 minus penalties: 10 points per percent of sends blocked, 2 per percent answered
    /// with a flood wait, 2 per percent refused for privacy; 0 once Telegram reported
    /// `PEER_FLOOD`.
    pub score: u8,
    /// Messages posted in the window.
    pub sends: u64,
    /// Blocks in the window.
    pub blocks: u64,
    /// Flood waits and retry-afters in the window.
    pub flood_waits: u64,
    /// Privacy refusals in the window.
    pub privacy_refusals: u64,
    /// Whether Telegram limited the account for spam within the window.
    pub spam_limited: bool,
    /// The window, in hours.
    pub window_hours: i64,
}

/// Signals per minute over a trailing window: the block alarm and the health score.
#[derive(Debug)]
pub(crate) struct BlockWatch {
    window: SignedDuration,
    max_rate: f64,
    min_blocks: u64,
    /// Oldest first.
    minutes: Mutex<VecDeque<Minute>>,
    /// The alarm judges only minutes from here on (after an alarm it starts over, so a resumed
    /// campaign is judged on what comes next); health keeps the whole window.
    alarm_since: Mutex<i64>,
}

/// What tripped the alarm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Alarm {
    pub(crate) blocks: u64,
    pub(crate) sends: u64,
}

impl BlockWatch {
    pub(crate) fn new(max_rate: f64, min_blocks: u64, window: SignedDuration) -> Self {
        Self {
            window,
            max_rate,
            min_blocks,
            minutes: Mutex::new(VecDeque::new()),
            alarm_since: Mutex::new(i64::MIN),
        }
    }

    /// Records one send (`blocked == false`) or one block at `at`; returns the totals when the
    /// alarm trips.
    pub(crate) fn record(&self, blocked: bool, at: Timestamp) -> Option<Alarm> {
        let signal = if blocked {
            Signal::Blocked
        } else {
            Signal::Sent
        };
        self.signal(signal, at)
    }

    /// Records one signal at `at`; returns the totals when it was a block that trips the alarm.
    pub(crate) fn signal(&self, signal: Signal, at: Timestamp) -> Option<Alarm> {
        let minute = at.as_second().div_euclid(60);
        let mut minutes = self.minutes.lock().unwrap_or_else(|e| e.into_inner());
        self.prune(&mut minutes, minute);
        // Out-of-order stamps (an inbound block stamped a little earlier) join the newest
        // minute; the window is long enough for that not to matter.
        if minutes.back().is_none_or(|m| m.minute < minute) {
            minutes.push_back(Minute {
                minute,
                ..Minute::default()
            });
        }
        if let Some(m) = minutes.back_mut() {
            match signal {
                Signal::Sent => m.sends += 1,
                Signal::Blocked => m.blocks += 1,
                Signal::FloodWait => m.flood_waits += 1,
                Signal::PrivacyRefused => m.privacy_refusals += 1,
                Signal::SpamLimited => m.spam_limited += 1,
            }
        }
        if signal != Signal::Blocked {
            return None;
        }
        let mut since = self.alarm_since.lock().unwrap_or_else(|e| e.into_inner());
        let (sends, blocks) = minutes
            .iter()
            .filter(|m| m.minute >= *since)
            .fold((0, 0), |(s, b), m| (s + m.sends, b + m.blocks));
        let rate = blocks as f64 / (sends + blocks).max(1) as f64;
        if blocks >= self.min_blocks && rate >= self.max_rate {
            *since = minute + 1;
            Some(Alarm { blocks, sends })
        } else {
            None
        }
    }

    fn prune(&self, minutes: &mut VecDeque<Minute>, now_minute: i64) {
        let oldest = now_minute - self.window.as_secs().div_euclid(60);
        while minutes.front().is_some_and(|m| m.minute <= oldest) {
            minutes.pop_front();
        }
    }

    /// The health of the account over the window ending at `now`.
    pub(crate) fn health(&self, now: Timestamp) -> AccountHealth {
        let mut minutes = self.minutes.lock().unwrap_or_else(|e| e.into_inner());
        self.prune(&mut minutes, now.as_second().div_euclid(60));
        let mut t = Minute::default();
        for m in minutes.iter() {
            t.sends += m.sends;
            t.blocks += m.blocks;
            t.flood_waits += m.flood_waits;
            t.privacy_refusals += m.privacy_refusals;
            t.spam_limited += m.spam_limited;
        }
        let attempts = (t.sends + t.blocks + t.flood_waits + t.privacy_refusals).max(1) as f64;
        let percent = |n: u64| n as f64 * 100.0 / attempts;
        let penalty = 10.0 * percent(t.blocks)
            + 2.0 * percent(t.flood_waits)
            + 2.0 * percent(t.privacy_refusals);
        let score = if t.spam_limited > 0 {
            0
        } else {
            (100.0 - penalty).clamp(0.0, 100.0).round() as u8
        };
        AccountHealth {
            score,
            sends: t.sends,
            blocks: t.blocks,
            flood_waits: t.flood_waits,
            privacy_refusals: t.privacy_refusals,
            spam_limited: t.spam_limited > 0,
            window_hours: self.window.as_hours(),
        }
    }

    pub(crate) fn window(&self) -> SignedDuration {
        self.window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(mins: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + mins * 60).unwrap()
    }

    #[test]
    fn the_alarm_needs_both_enough_blocks_and_a_high_rate_within_the_window() {
        let w = BlockWatch::new(0.05, 3, SignedDuration::from_hours(24));
        // 1% of 1000 sends blocked: never an alarm.
        for i in 0..1000 {
            assert_eq!(w.record(i % 100 == 0, t(i / 10)), None);
        }
        // A burst: blocks outnumber sends for a while.
        let w = BlockWatch::new(0.05, 3, SignedDuration::from_hours(24));
        for i in 0..20 {
            w.record(false, t(i));
        }
        assert_eq!(w.record(true, t(21)), None);
        assert_eq!(w.record(true, t(22)), None, "two blocks are not enough");
        assert_eq!(
            w.record(true, t(23)),
            Some(Alarm {
                blocks: 3,
                sends: 20
            })
        );
        assert_eq!(
            w.record(true, t(24)),
            None,
            "a fresh window after the alarm"
        );
    }

    #[test]
    fn old_minutes_leave_the_window() {
        let w = BlockWatch::new(0.05, 2, SignedDuration::from_hours(1));
        w.record(true, t(0));
        assert_eq!(
            w.record(true, t(61)),
            None,
            "the first block is an hour old"
        );
        assert!(w.record(true, t(62)).is_some());
    }

    #[test]
    fn health_scores_blocks_waits_refusals_and_spam_limits() {
        let w = BlockWatch::new(0.05, 1000, SignedDuration::from_hours(24));
        assert_eq!(w.health(t(0)).score, 100);
        for i in 0..96 {
            w.signal(Signal::Sent, t(i));
        }
        w.signal(Signal::Blocked, t(96));
        w.signal(Signal::FloodWait, t(97));
        w.signal(Signal::PrivacyRefused, t(98));
        w.signal(Signal::PrivacyRefused, t(99));
        let h = w.health(t(100));
        // 1% blocked (10 points), 1% flood waits (2), 2% refused (4).
        assert_eq!(
            (h.sends, h.blocks, h.flood_waits, h.privacy_refusals),
            (96, 1, 1, 2)
        );
        assert_eq!(h.score, 84, "{h:?}");
        // A day later it has all left the window.
        assert_eq!(w.health(t(100 + 24 * 60)).score, 100);
        w.signal(Signal::SpamLimited, t(3000));
        let h = w.health(t(3000));
        assert!(h.spam_limited);
        assert_eq!(h.score, 0);
    }

    #[test]
    fn an_alarm_starts_the_alarm_over_but_health_remembers() {
        let w = BlockWatch::new(0.05, 2, SignedDuration::from_hours(24));
        w.record(false, t(0));
        assert!(w.record(true, t(1)).is_none());
        assert!(w.record(true, t(2)).is_some());
        assert!(
            w.record(true, t(3)).is_none(),
            "judged afresh after the alarm"
        );
        assert_eq!(w.health(t(4)).blocks, 3);
    }
}
