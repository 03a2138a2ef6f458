//! Account health: a burst of blocks is a spam signal, like PEER_FLOOD. When too many of the
//! sending account's recent recipients block it, every running campaign pauses for a human to
//! look at the copy and the audience, before Telegram limits the account.

use std::collections::VecDeque;
use std::sync::Mutex;

/// Recent outcomes of the sending account: `true` for a block, `false` for a delivered send.
#[derive(Debug)]
pub(crate) struct BlockWatch {
    window: usize,
    max_blocks: usize,
    recent: Mutex<VecDeque<bool>>,
}

impl BlockWatch {
    pub(crate) fn new(window: usize, max_blocks: usize) -> Self {
        Self {
            window,
            max_blocks,
            recent: Mutex::new(VecDeque::with_capacity(window)),
        }
    }

    /// Records one outcome; returns the number of blocks in the window when it reaches the
    /// alarm (and starts a fresh window, so a resumed campaign is judged on new sends).
    pub(crate) fn record(&self, blocked: bool) -> Option<usize> {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() == self.window {
            recent.pop_front();
        }
        recent.push_back(blocked);
        let blocks = recent.iter().filter(|b| **b).count();
        if blocked && blocks >= self.max_blocks {
            recent.clear();
            Some(blocks)
        } else {
            None
        }
    }

    pub(crate) fn window(&self) -> usize {
        self.window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alarm_rings_at_the_threshold_within_the_window_and_then_resets() {
        let w = BlockWatch::new(10, 3);
        assert_eq!(w.record(true), None);
        for _ in 0..8 {
            assert_eq!(w.record(false), None);
        }
        assert_eq!(w.record(true), None, "two blocks in ten");
        assert_eq!(w.record(false), None, "the first block leaves the window");
        assert_eq!(w.record(true), None, "two again");
        assert_eq!(w.record(true), Some(3), "three of the last ten");
        assert_eq!(w.record(true), None, "a fresh window after the alarm");
    }
}
