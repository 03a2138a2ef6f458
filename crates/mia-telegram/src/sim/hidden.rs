//! Telegram's undocumented per-method limits, as the simulator keeps them: each kind of call
//! (edit, delete, pin, invite link, resolve username, create chat, invite members) has its own
//! budget per window, drawn from the seed inside a realistic range, so a dry-run meets flood
//! waits where the real service would give them without anyone tuning to exact numbers.
//! Pushing on while a wait runs doubles it, as Telegram does.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use super::stable_hash;
use crate::limits::whole_seconds;

/// A kind of call with its own hidden limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SimMethod {
    /// `messages.editMessage` / `editMessageText`.
    EditMessage,
    /// `messages.deleteMessages` / `deleteMessage`.
    DeleteMessage,
    /// `messages.updatePinnedMessage` / `pinChatMessage`.
    PinMessage,
    /// `messages.exportChatInvite` / `createChatInviteLink`.
    ExportInviteLink,
    /// `contacts.resolveUsername`: the most flood-prone call there is.
    ResolveUsername,
    /// `messages.createChat` / `channels.createChannel`.
    CreateChat,
    /// `channels.inviteToChannel` / `messages.addChatUser`, counted per person added.
    InviteMembers,
}

impl SimMethod {
    /// Every method with a hidden limit.
    pub const ALL: [SimMethod; 7] = [
        SimMethod::EditMessage,
        SimMethod::DeleteMessage,
        SimMethod::PinMessage,
        SimMethod::ExportInviteLink,
        SimMethod::ResolveUsername,
        SimMethod::CreateChat,
        SimMethod::InviteMembers,
    ];

    /// The MTProto method's name.
    pub fn name(self) -> &'static str {
        match self {
            SimMethod::EditMessage => "messages.editMessage",
            SimMethod::DeleteMessage => "messages.deleteMessages",
            SimMethod::PinMessage => "messages.updatePinnedMessage",
            SimMethod::ExportInviteLink => "messages.exportChatInvite",
            SimMethod::ResolveUsername => "contacts.resolveUsername",
            SimMethod::CreateChat => "channels.createChannel",
            SimMethod::InviteMembers => "channels.inviteToChannel",
        }
    }

    /// The range the budget is drawn from, and its window.
    fn range(self) -> (u32, u32, Duration) {
        const MINUTE: Duration = Duration::from_secs(60);
        const HOUR: Duration = Duration::from_secs(3600);
        const DAY: Duration = Duration::from_secs(86_400);
        match self {
            SimMethod::EditMessage => (20, 40, MINUTE),
            SimMethod::DeleteMessage => (30, 60, MINUTE),
            SimMethod::PinMessage => (5, 15, MINUTE),
            SimMethod::ExportInviteLink => (10, 30, HOUR),
            SimMethod::ResolveUsername => (100, 300, DAY),
            SimMethod::CreateChat => (10, 50, DAY),
            SimMethod::InviteMembers => (30, 60, DAY),
        }
    }
}

/// One hidden limit: at most `calls` in any window of `per`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodLimit {
    /// Calls allowed per window.
    pub calls: u32,
    /// The window.
    pub per: Duration,
}

/// The hidden limit of `method` for a simulator seeded with `seed`.
pub(super) fn hidden_limit(seed: u64, method: SimMethod) -> MethodLimit {
    let mut rng = StdRng::seed_from_u64(stable_hash(&[
        &seed.to_be_bytes(),
        b"hidden",
        method.name().as_bytes(),
    ]));
    let (lo, hi, per) = method.range();
    MethodLimit {
        calls: rng.random_range(lo..=hi),
        per,
    }
}

/// Calls per method in their windows, and the flood wait running for each.
#[derive(Default)]
pub(super) struct MethodCalls {
    calls: HashMap<SimMethod, VecDeque<Timestamp>>,
    flood: HashMap<SimMethod, (Timestamp, SignedDuration)>,
    pub(super) limited: u64,
}

impl MethodCalls {
    /// Admits `n` calls of `method` at `now`, or answers the FLOOD_WAIT to give (nothing is
    /// recorded then). A call before a running wait ends doubles it (up to a day) when
    /// `escalate`.
    pub(super) fn admit(
        &mut self,
        method: SimMethod,
        limit: MethodLimit,
        n: u32,
        escalate: bool,
        now: Timestamp,
    ) -> Result<(), Duration> {
        let window = SignedDuration::try_from(limit.per).unwrap_or(SignedDuration::MAX);
        let wait = if let Some((until, last)) = self.flood.get(&method).copied()
            && now < until
        {
            if escalate {
                (last * 2).min(SignedDuration::from_hours(24))
            } else {
                until.duration_since(now)
            }
        } else {
            let calls = self.calls.entry(method).or_default();
            while calls
                .front()
                .is_some_and(|t| now.duration_since(*t) >= window)
            {
                calls.pop_front();
            }
            let used = u32::try_from(calls.len()).unwrap_or(u32::MAX);
            // A batch larger than the whole budget needs an empty window, not a larger one.
            let n = n.min(limit.calls);
            if used.saturating_add(n) <= limit.calls {
                calls.extend(std::iter::repeat_n(now, usize::try_from(n).unwrap_or(0)));
                return Ok(());
            }
            // Until enough calls leave the window (all of them, for more than the budget).
            let frees = usize::try_from(used.saturating_add(n) - limit.calls).unwrap_or(usize::MAX);
            let oldest = calls
                .get(frees.saturating_sub(1))
                .or(calls.back())
                .copied()
                .unwrap_or(now);
            (oldest + window).duration_since(now)
        };
        let after = whole_seconds(wait);
        let whole = SignedDuration::try_from(after).unwrap_or(wait);
        self.flood.insert(method, (now + whole, whole));
        self.limited += 1;
        Err(after)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn limits_are_drawn_from_the_seed_inside_their_ranges() {
        for method in SimMethod::ALL {
            let (lo, hi, per) = method.range();
            let draws: Vec<MethodLimit> = (0..50).map(|seed| hidden_limit(seed, method)).collect();
            assert!(
                draws
                    .iter()
                    .all(|l| (lo..=hi).contains(&l.calls) && l.per == per)
            );
            assert_eq!(hidden_limit(7, method), hidden_limit(7, method), "stable");
            let distinct: std::collections::HashSet<u32> = draws.iter().map(|l| l.calls).collect();
            assert!(
                distinct.len() > 3,
                "{method:?} varies with the seed: {distinct:?}"
            );
        }
    }

    #[test]
    fn a_sender_over_a_hidden_limit_waits_and_pushing_doubles_the_wait() {
        let t0 = Timestamp::from_second(1_800_000_000).unwrap();
        let s = SignedDuration::from_secs;
        let limit = MethodLimit {
            calls: 3,
            per: Duration::from_secs(60),
        };
        let mut calls = MethodCalls::default();
        for i in 0..3 {
            calls
                .admit(SimMethod::PinMessage, limit, 1, true, t0 + s(i * 10))
                .unwrap();
        }
        // The oldest call leaves the window at t0 + 60.
        let wait = calls
            .admit(SimMethod::PinMessage, limit, 1, true, t0 + s(30))
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(30));
        let pushed = calls
            .admit(SimMethod::PinMessage, limit, 1, true, t0 + s(40))
            .unwrap_err();
        assert_eq!(pushed, Duration::from_secs(60), "escalates");
        let again = calls
            .admit(SimMethod::PinMessage, limit, 1, true, t0 + s(50))
            .unwrap_err();
        assert_eq!(again, Duration::from_secs(120));
        assert_eq!(calls.limited, 3);
        // Other methods have their own budgets.
        calls
            .admit(SimMethod::EditMessage, limit, 1, true, t0 + s(50))
            .unwrap();
        // After the wait, the window has room again.
        calls
            .admit(SimMethod::PinMessage, limit, 1, true, t0 + s(50 + 121))
            .unwrap();
        // A batch larger than what is left waits for enough calls to leave the window.
        let mut batch = MethodCalls::default();
        batch
            .admit(SimMethod::InviteMembers, limit, 2, false, t0)
            .unwrap();
        assert_eq!(
            batch.admit(SimMethod::InviteMembers, limit, 2, false, t0 + s(5)),
            Err(Duration::from_secs(55))
        );
        let without = batch
            .admit(SimMethod::InviteMembers, limit, 1, false, t0 + s(6))
            .unwrap_err();
        assert_eq!(without, Duration::from_secs(54), "no escalation when off");
    }
}
