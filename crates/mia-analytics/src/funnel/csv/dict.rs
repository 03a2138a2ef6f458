//! Interning the values of a CSV file.

use std::borrow::Cow;

use crate::funnel::table::FastMap;

/// A value of at most 23 bytes, stored in the hash table itself: looking up a user id then
/// compares 24 bytes in place instead of following a pointer into the (cold) file buffer,
/// which was most of the loading time.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct ShortKey([u8; 24]);

impl ShortKey {
    fn new(value: &str) -> Option<Self> {
        let bytes = value.as_bytes();
        if bytes.len() > 23 {
            return None;
        }
        let mut key = [0u8; 24];
        key[..bytes.len()].copy_from_slice(bytes);
        key[23] = bytes.len() as u8;
        Some(Self(key))
    }
}

/// Values to dense ids in order of first appearance, borrowing from the file buffer.
#[derive(Default)]
pub(super) struct Dict<'a> {
    short: FastMap<ShortKey, u32>,
    long: FastMap<Cow<'a, str>, u32>,
    pub(super) list: Vec<Cow<'a, str>>,
}

impl<'a> Dict<'a> {
    pub(super) fn with_capacity(n: usize) -> Self {
        let mut d = Self::default();
        d.short.reserve(n);
        d
    }

    #[inline]
    // A `&Cow`, not a `&str`: cloning it keeps a value borrowed from the buffer borrowed.
    #[allow(clippy::ptr_arg)]
    pub(super) fn intern(&mut self, value: &Cow<'a, str>) -> u32 {
        let list = &mut self.list;
        let mut push = || {
            let id = list.len() as u32;
            list.push(value.clone());
            id
        };
        match ShortKey::new(value) {
            Some(key) => *self.short.entry(key).or_insert_with(push),
            None => {
                if let Some(&id) = self.long.get(value.as_ref()) {
                    return id;
                }
                let id = push();
                self.long.insert(value.clone(), id);
                id
            }
        }
    }

    /// Adds another part's values; returns its ids to ids here.
    pub(super) fn absorb(&mut self, other: Dict<'a>) -> Vec<u32> {
        if self.list.is_empty() {
            // The first part's ids are the global ids.
            let remap = (0..other.list.len() as u32).collect();
            *self = other;
            return remap;
        }
        other.list.iter().map(|v| self.intern(v)).collect()
    }

    pub(super) fn into_strings(self) -> Vec<String> {
        self.list.into_iter().map(Cow::into_owned).collect()
    }
}
