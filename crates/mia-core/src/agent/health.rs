//! Account health: a burst of blocks is a spam signal, like PEER_FLOOD. When the sending
//! account's block rate over a trailing window passes the alarm (with enough blocks to mean
//! something), every running campaign pauses for a human to look at the copy and the audience,
//! before Telegram limits the account.

use std::collections::VecDeque;
use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};

/// Sends and blocks per minute over a trailing window.
#[derive(Debug)]
pub(crate) struct BlockWatch {
    window: SignedDuration,
    max_rate: f64,
    min_blocks: u64,
    /// (minute since the epoch, sends, blocks), oldest first.
    minutes: Mutex<VecDeque<(i64, u64, u64)>>,
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
        }
    }

    /// Records one send (`blocked == false`) or one block at `at`; returns the totals when the
    /// alarm trips, and then starts over, so a resumed campaign is judged on what comes next.
    pub(crate) fn record(&self, blocked: bool, at: Timestamp) -> Option<Alarm> {
        let minute = at.as_second().div_euclid(60);
        let oldest = minute - self.window.as_secs().div_euclid(60);
        let mut minutes = self.minutes.lock().unwrap_or_else(|e| e.into_inner());
        while minutes.front().is_some_and(|(m, _, _)| *m <= oldest) {
            minutes.pop_front();
        }
        match minutes.back_mut() {
            Some((m, sends, blocks)) if *m == minute => {
                *sends += u64::from(!blocked);
                *blocks += u64::from(blocked);
            }
            // Out-of-order stamps (an inbound block stamped a little earlier) join the newest
            // minute; the window is long enough for that not to matter.
            Some((m, sends, blocks)) if *m > minute => {
                *sends += u64::from(!blocked);
                *blocks += u64::from(blocked);
            }
            _ => minutes.push_back((minute, u64::from(!blocked), u64::from(blocked))),
        }
        if !blocked {
            return None;
        }
        let (sends, blocks) = minutes
            .iter()
            .fold((0, 0), |(s, b), (_, sends, blocks)| (s + sends, b + blocks));
        let rate = blocks as f64 / (sends + blocks).max(1) as f64;
        if blocks >= self.min_blocks && rate >= self.max_rate {
            minutes.clear();
            Some(Alarm { blocks, sends })
        } else {
            None
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
}
