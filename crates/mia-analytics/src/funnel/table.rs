//! [`EventTable`]: events in columns, interned and sorted by (user, time).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use mia_core::Event;

use crate::error::{AnalyticsError, Result};

/// A small multiplicative hasher (the FxHash recipe) for interning: SipHash's protection
/// against hash flooding costs more than the whole funnel query here, and the keys are the
/// host's own data.
#[derive(Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // A multiplication only carries entropy upwards, and hash tables pick buckets with
        // the low bits: keys differing only in their last bytes (`u0000001`, `u0000002`...)
        // would collide. The murmur3 finalizer spreads every bit over every bit.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// A hash map with [`FastHasher`].
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// Strings to dense ids, in order of first appearance.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    ids: FastMap<String, u32>,
    values: Vec<String>,
}

impl Interner {
    pub(crate) fn intern(&mut self, value: &str) -> u32 {
        if let Some(&id) = self.ids.get(value) {
            return id;
        }
        // Ids are checked against u32 by the callers' row limits; a dictionary cannot outgrow
        // the rows that fill it.
        let id = self.values.len() as u32;
        self.ids.insert(value.to_owned(), id);
        self.values.push(value.to_owned());
        id
    }

    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }

    pub(crate) fn into_values(self) -> Vec<String> {
        self.values
    }
}

/// A column of strings, dictionary-encoded: `dictionary` is sorted, so comparing codes
/// compares the strings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Column {
    name: String,
    dictionary: Vec<String>,
    codes: Vec<u32>,
}

impl Column {
    /// The column's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The distinct values, sorted.
    pub fn dictionary(&self) -> &[String] {
        &self.dictionary
    }

    /// One code per row (events for an event column, users for a user column), an index into
    /// [`dictionary`](Self::dictionary).
    pub fn codes(&self) -> &[u32] {
        &self.codes
    }

    /// The value at `row`, or `None` past the end.
    pub fn value(&self, row: usize) -> Option<&str> {
        let code = *self.codes.get(row)?;
        self.dictionary.get(code as usize).map(String::as_str)
    }

    /// Builds a column whose dictionary is sorted, from codes into an unsorted dictionary.
    fn sorted(name: String, dictionary: Vec<String>, codes: Vec<u32>) -> Self {
        let mut order: Vec<u32> = (0..dictionary.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| dictionary[a as usize].cmp(&dictionary[b as usize]));
        let mut remap = vec![0u32; dictionary.len()];
        for (new, &old) in order.iter().enumerate() {
            remap[old as usize] = new as u32;
        }
        let mut slots: Vec<Option<String>> = dictionary.into_iter().map(Some).collect();
        let dictionary = order
            .iter()
            .map(|&old| slots[old as usize].take().unwrap_or_default())
            .collect();
        let codes = codes.into_iter().map(|c| remap[c as usize]).collect();
        Self {
            name,
            dictionary,
            codes,
        }
    }
}

/// Events of many users in columns, ready for funnel queries.
///
/// User ids are interned to `u32` and event names to `u16`; timestamps are `i64`
/// microseconds since the Unix epoch (UTC). Rows are sorted by (user, timestamp), so the events
/// of one user are one contiguous slice, in time order. Extra string columns come in two
/// kinds: *event columns* (one value per event, such as the variant a message used) and *user
/// columns* (one value per user, such as a plan or a country).
///
/// Build one with [`EventTableBuilder`], [`EventTable::from_events`] (mia's own events) or
/// [`EventTable::from_csv`].
#[derive(Clone, Debug, Default)]
pub struct EventTable {
    pub(crate) users: Vec<String>,
    pub(crate) offsets: Vec<usize>,
    pub(crate) names: Vec<String>,
    pub(crate) event: Vec<u16>,
    pub(crate) ts: Vec<i64>,
    pub(crate) columns: Vec<Column>,
    pub(crate) user_columns: Vec<Column>,
}

impl EventTable {
    /// A builder with no extra columns.
    pub fn builder() -> EventTableBuilder {
        EventTableBuilder::default()
    }

    /// A table of mia's own events: the user is the contact, the event name is
    /// [`EventKind::name`](mia_core::EventKind::name) (`sent`, `delivered`, `read`, `clicked`,
    /// `converted`...), and two event columns, `campaign` and `variant`, hold those ids (the
    /// empty string when absent).
    ///
    /// # Errors
    /// [`AnalyticsError::TooLarge`] past `u32::MAX` events or users.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a Event>) -> Result<Self> {
        let mut builder = EventTableBuilder::with_columns(["campaign", "variant"]);
        for e in events {
            let campaign = e.campaign.as_ref().map_or("", |c| c.as_str());
            let variant = e.variant.as_ref().map_or("", |v| v.as_str());
            builder.push_row(
                e.contact.as_str(),
                e.kind.name(),
                e.at.as_microsecond(),
                &[campaign, variant],
            )?;
        }
        builder.build()
    }

    /// How many events.
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    /// Whether there is no event.
    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    /// How many distinct users.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// The distinct event names.
    pub fn event_names(&self) -> &[String] {
        &self.names
    }

    /// The event columns (one value per event).
    pub fn event_columns(&self) -> &[Column] {
        &self.columns
    }

    /// The user columns (one value per user).
    pub fn user_columns(&self) -> &[Column] {
        &self.user_columns
    }

    /// The events of one user as (event name, timestamp in microseconds), in time order;
    /// `None` for an unknown user.
    pub fn user_events(&self, user: &str) -> Option<Vec<(&str, i64)>> {
        let id = self.users.iter().position(|u| u == user)?;
        let rows = self.offsets[id]..self.offsets[id + 1];
        Some(
            rows.map(|r| (self.names[self.event[r] as usize].as_str(), self.ts[r]))
                .collect(),
        )
    }

    /// Assembles a table from interned, unsorted rows: sorts them by (user, time) with a
    /// stable counting sort on the user, then a stable sort on time within each user.
    pub(crate) fn from_rows(rows: Rows) -> Result<Self> {
        let Rows {
            users,
            names,
            user,
            event,
            ts,
            columns,
            user_columns,
        } = rows;
        let n_users = users.len();
        let mut offsets = vec![0usize; n_users + 1];
        for &u in &user {
            offsets[u as usize + 1] += 1;
        }
        for i in 0..n_users {
            offsets[i + 1] += offsets[i];
        }
        let mut next = offsets.clone();
        let mut perm = vec![0u32; user.len()];
        for (row, &u) in user.iter().enumerate() {
            let slot = &mut next[u as usize];
            perm[*slot] = row as u32;
            *slot += 1;
        }
        drop(user);
        for w in offsets.windows(2) {
            let slice = &mut perm[w[0]..w[1]];
            if slice
                .windows(2)
                .any(|p| ts[p[0] as usize] > ts[p[1] as usize])
            {
                slice.sort_by_key(|&r| ts[r as usize]);
            }
        }
        let gather_u16 = |v: &[u16]| perm.iter().map(|&r| v[r as usize]).collect::<Vec<_>>();
        let gather_u32 = |v: &[u32]| perm.iter().map(|&r| v[r as usize]).collect::<Vec<_>>();
        let event = gather_u16(&event);
        let ts = perm.iter().map(|&r| ts[r as usize]).collect();
        let columns = columns
            .into_iter()
            .map(|(name, dict, codes)| Column::sorted(name, dict, gather_u32(&codes)))
            .collect();
        let user_columns = user_columns
            .into_iter()
            .map(|(name, dict, codes)| Column::sorted(name, dict, codes))
            .collect();
        if names.len() > usize::from(u16::MAX) + 1 {
            return Err(AnalyticsError::TooLarge(format!(
                "{} distinct event names (at most 65,536)",
                names.len()
            )));
        }
        Ok(Self {
            users,
            offsets,
            names,
            event,
            ts,
            columns,
            user_columns,
        })
    }
}

/// Interned rows before sorting; user columns already hold one code per user.
pub(crate) struct Rows {
    pub(crate) users: Vec<String>,
    pub(crate) names: Vec<String>,
    pub(crate) user: Vec<u32>,
    pub(crate) event: Vec<u16>,
    pub(crate) ts: Vec<i64>,
    pub(crate) columns: Vec<(String, Vec<String>, Vec<u32>)>,
    pub(crate) user_columns: Vec<(String, Vec<String>, Vec<u32>)>,
}

/// Collects events one by one, then sorts them into an [`EventTable`].
///
/// ```
/// use mia_analytics::funnel::EventTable;
///
/// let mut b = EventTable::builder();
/// b.push("alice", "sent", 1_000_000)?;
/// b.push("alice", "read", 5_000_000)?;
/// b.user_property("plan", "alice", "pro")?;
/// let table = b.build()?;
/// assert_eq!(table.len(), 2);
/// # Ok::<(), mia_analytics::AnalyticsError>(())
/// ```
#[derive(Debug, Default)]
pub struct EventTableBuilder {
    users: Interner,
    names: Interner,
    user: Vec<u32>,
    event: Vec<u16>,
    ts: Vec<i64>,
    columns: Vec<(String, Interner, Vec<u32>)>,
    user_columns: Vec<PendingUserColumn>,
}

/// A user column being built: its name, its values, and (user, value) pairs.
type PendingUserColumn = (String, Interner, Vec<(u32, u32)>);

impl EventTableBuilder {
    /// A builder whose events carry the given event columns (such as `variant`).
    pub fn with_columns<I, S>(columns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            columns: columns
                .into_iter()
                .map(|c| (c.into(), Interner::default(), Vec::new()))
                .collect(),
            ..Self::default()
        }
    }

    /// Adds an event; its event columns, if any, get the empty string.
    ///
    /// # Errors
    /// [`AnalyticsError::TooLarge`] past `u32::MAX` events or 65,536 event names.
    pub fn push(&mut self, user: &str, event: &str, ts_micros: i64) -> Result<()> {
        let empty = vec![""; self.columns.len()];
        self.push_row(user, event, ts_micros, &empty)
    }

    /// Adds an event with one value per event column, in the order given to
    /// [`with_columns`](Self::with_columns).
    ///
    /// # Errors
    /// [`AnalyticsError::InvalidQuery`] if `values` does not have one value per column;
    /// [`AnalyticsError::TooLarge`] past `u32::MAX` events or 65,536 event names.
    pub fn push_row(
        &mut self,
        user: &str,
        event: &str,
        ts_micros: i64,
        values: &[&str],
    ) -> Result<()> {
        if values.len() != self.columns.len() {
            return Err(AnalyticsError::query(format!(
                "{} values for {} event columns",
                values.len(),
                self.columns.len()
            )));
        }
        if self.ts.len() >= u32::MAX as usize {
            return Err(AnalyticsError::TooLarge("more than u32::MAX events".into()));
        }
        let name = self.names.intern(event);
        let name = u16::try_from(name)
            .map_err(|_| AnalyticsError::TooLarge("more than 65,536 event names".into()))?;
        self.user.push(self.users.intern(user));
        self.event.push(name);
        self.ts.push(ts_micros);
        for ((_, dict, codes), value) in self.columns.iter_mut().zip(values) {
            codes.push(dict.intern(value));
        }
        Ok(())
    }

    /// Sets a user column's value for one user (the last call for a user wins). A user who has
    /// no event yet is added with none.
    ///
    /// # Errors
    /// [`AnalyticsError::TooLarge`] past `u32::MAX` users.
    pub fn user_property(&mut self, column: &str, user: &str, value: &str) -> Result<()> {
        if self.users.len() >= u32::MAX as usize {
            return Err(AnalyticsError::TooLarge("more than u32::MAX users".into()));
        }
        let user = self.users.intern(user);
        let index = match self.user_columns.iter().position(|(n, _, _)| n == column) {
            Some(i) => i,
            None => {
                self.user_columns
                    .push((column.to_owned(), Interner::default(), Vec::new()));
                self.user_columns.len() - 1
            }
        };
        let (_, dict, values) = &mut self.user_columns[index];
        values.push((user, dict.intern(value)));
        Ok(())
    }

    /// Sorts the events into a table. Users without a value in a user column get the empty
    /// string there.
    ///
    /// # Errors
    /// [`AnalyticsError::TooLarge`] past 65,536 event names.
    pub fn build(self) -> Result<EventTable> {
        let n_users = self.users.len();
        let user_columns = self
            .user_columns
            .into_iter()
            .map(|(name, mut dict, values)| {
                let empty = dict.intern("");
                let mut codes = vec![empty; n_users];
                for (user, code) in values {
                    codes[user as usize] = code;
                }
                (name, dict.into_values(), codes)
            })
            .collect();
        EventTable::from_rows(Rows {
            users: self.users.into_values(),
            names: self.names.into_values(),
            user: self.user,
            event: self.event,
            ts: self.ts,
            columns: self
                .columns
                .into_iter()
                .map(|(name, dict, codes)| (name, dict.into_values(), codes))
                .collect(),
            user_columns,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rows_are_grouped_by_user_and_sorted_by_time_stably() {
        let mut b = EventTableBuilder::with_columns(["variant"]);
        b.push_row("bob", "read", 30, &["B"]).unwrap();
        b.push_row("alice", "sent", 20, &["A"]).unwrap();
        b.push_row("bob", "sent", 10, &["B"]).unwrap();
        b.push_row("alice", "read", 20, &["C"]).unwrap();
        b.user_property("plan", "carol", "pro").unwrap();
        let t = b.build().unwrap();
        assert_eq!(t.len(), 4);
        assert_eq!(t.user_count(), 3);
        assert_eq!(
            t.user_events("bob").unwrap(),
            vec![("sent", 10), ("read", 30)]
        );
        // Equal timestamps keep their input order.
        assert_eq!(
            t.user_events("alice").unwrap(),
            vec![("sent", 20), ("read", 20)]
        );
        assert_eq!(t.user_events("carol").unwrap(), vec![]);
        let variant = &t.event_columns()[0];
        assert_eq!(variant.dictionary(), ["A", "B", "C"]);
        // bob came first (user 0): his two rows, then alice's A and C.
        assert_eq!(variant.value(0), Some("B"));
        assert_eq!(variant.value(2), Some("A"));
        assert_eq!(variant.value(3), Some("C"));
        let plan = &t.user_columns()[0];
        assert_eq!(plan.dictionary(), ["", "pro"]);
        assert_eq!(plan.value(2), Some("pro"));
        assert_eq!(plan.value(0), Some(""));
    }

    #[test]
    fn ids_differing_only_in_their_last_bytes_spread_over_buckets() {
        use std::hash::BuildHasher;
        let build = BuildHasherDefault::<FastHasher>::default();
        let mut buckets: Vec<u64> = (0..100_000)
            .map(|i| build.hash_one(format!("u{i:07}")) & 0xffff)
            .collect();
        buckets.sort_unstable();
        buckets.dedup();
        // 100,000 keys into 65,536 buckets: a good hash fills most of them.
        assert!(buckets.len() > 50_000, "{} buckets used", buckets.len());
    }

    #[test]
    fn a_row_with_the_wrong_number_of_values_is_refused() {
        let mut b = EventTableBuilder::with_columns(["variant"]);
        assert!(b.push_row("u", "sent", 1, &[]).is_err());
        assert!(b.push("u", "sent", 1).is_ok());
    }
}
