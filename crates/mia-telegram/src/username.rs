//! Usernames: their normal form, and a cache of what Telegram resolved them to.
//!
//! `contacts.resolveUsername` is among the most flood-limited calls Telegram has (a user
//! account gets a long FLOOD_WAIT after a few hundred a day), so answers are cached: found
//! peers for a while, and "no such username" too (a negative cache), so a typo repeated in a
//! loop costs one call, not hundreds.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use mia_core::TelegramPeer;

use crate::error::TelegramError;

/// The normal form of a username: `@Tea_Shop`, `tea_shop`, `t.me/tea_shop` and
/// `https://t.me/Tea_Shop` are all `tea_shop`.
///
/// # Errors
/// [`TelegramError::Config`] unless it is 4–32 characters of `a-z`, `0-9` and `_`, starting
/// with a letter (Telegram's rule; 4 for collectible names).
pub fn normalize_username(username: &str) -> Result<String, TelegramError> {
    let trimmed = username.trim();
    let bare = ["https://t.me/", "http://t.me/", "t.me/", "@"]
        .iter()
        .find_map(|prefix| trimmed.strip_prefix(prefix))
        .unwrap_or(trimmed);
    let name = bare.to_ascii_lowercase();
    let valid = (4..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !valid {
        return Err(TelegramError::Config(format!(
            "username {username:?}: expected 4 to 32 letters, digits or underscores, starting \
             with a letter"
        )));
    }
    Ok(name)
}

/// Resolved usernames with an expiry: found peers for `ttl`, unknown names for `negative_ttl`.
/// Bounded: past `capacity` entries the oldest are forgotten first.
#[derive(Debug)]
pub struct UsernameCache {
    ttl: SignedDuration,
    negative_ttl: SignedDuration,
    capacity: usize,
    entries: HashMap<String, (Option<TelegramPeer>, Timestamp)>,
    order: VecDeque<String>,
}

impl UsernameCache {
    /// A cache keeping found peers for `ttl` and unknown names for `negative_ttl`, at most
    /// `capacity` names.
    pub fn new(ttl: Duration, negative_ttl: Duration, capacity: usize) -> Self {
        let signed = |d: Duration| SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX);
        Self {
            ttl: signed(ttl),
            negative_ttl: signed(negative_ttl),
            capacity: capacity.max(1),
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// The cached answer for a normalised `username` at `now`: `Some(Some(peer))` found,
    /// `Some(None)` known not to exist, `None` not cached (or expired): ask Telegram.
    pub fn get(&self, username: &str, now: Timestamp) -> Option<Option<TelegramPeer>> {
        self.entries
            .get(username)
            .filter(|(_, until)| now < *until)
            .map(|(peer, _)| *peer)
    }

    /// Remembers Telegram's answer for a normalised `username` at `now`.
    pub fn put(&mut self, username: &str, peer: Option<TelegramPeer>, now: Timestamp) {
        let ttl = if peer.is_some() {
            self.ttl
        } else {
            self.negative_ttl
        };
        let until = now.checked_add(ttl).unwrap_or(Timestamp::MAX);
        if self
            .entries
            .insert(username.to_owned(), (peer, until))
            .is_none()
        {
            self.order.push_back(username.to_owned());
        }
        while self.entries.len() > self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.entries.remove(&old);
                }
                None => break,
            }
        }
    }

    /// How many names are cached (expired ones included until they are evicted).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Default for UsernameCache {
    /// Found peers for a day, unknown names for an hour, 10,000 names.
    fn default() -> Self {
        Self::new(
            Duration::from_secs(86_400),
            Duration::from_secs(3_600),
            10_000,
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn usernames_are_normalised_and_checked() {
        for form in [
            "@Tea_Shop",
            "tea_shop",
            "t.me/tea_shop",
            "https://t.me/Tea_Shop",
            " tea_shop ",
        ] {
            assert_eq!(normalize_username(form).unwrap(), "tea_shop", "{form}");
        }
        for bad in [
            "",
            "@",
            "abc",
            "1tea",
            "tea shop",
            "tea-shop",
            &"a".repeat(33),
            "@@tea_shop",
        ] {
            assert!(normalize_username(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn found_and_missing_names_expire_on_their_own_clocks() {
        let t0 = Timestamp::from_second(1_800_000_000).unwrap();
        let s = SignedDuration::from_secs;
        let mut cache = UsernameCache::new(Duration::from_secs(100), Duration::from_secs(10), 10);
        assert_eq!(cache.get("tea_shop", t0), None);
        cache.put("tea_shop", Some(TelegramPeer::channel(-1001)), t0);
        cache.put("typo_shop", None, t0);
        assert_eq!(
            cache.get("tea_shop", t0 + s(99)),
            Some(Some(TelegramPeer::channel(-1001)))
        );
        assert_eq!(
            cache.get("typo_shop", t0 + s(9)),
            Some(None),
            "negative answers are cached"
        );
        assert_eq!(
            cache.get("typo_shop", t0 + s(10)),
            None,
            "and expire sooner"
        );
        assert_eq!(cache.get("tea_shop", t0 + s(100)), None);
    }

    #[test]
    fn the_cache_forgets_the_oldest_names_past_its_capacity() {
        let t0 = Timestamp::from_second(1_800_000_000).unwrap();
        let mut cache = UsernameCache::new(Duration::from_secs(100), Duration::from_secs(100), 2);
        cache.put("first_name", None, t0);
        cache.put("second_name", None, t0);
        cache.put("first_name", Some(TelegramPeer::user(1)), t0);
        cache.put("third_name", None, t0);
        assert_eq!(cache.len(), 2);
        assert_eq!(
            cache.get("first_name", t0),
            None,
            "oldest inserted goes first"
        );
        assert_eq!(cache.get("third_name", t0), Some(None));
    }
}
