//! Segments: contacts chosen by rules over their attributes and their event history ("read in
//! the last 7 days and not converted"), and RFM scores. A segment becomes a campaign audience;
//! consent is still checked for every member when the campaign is scheduled and sent.

use jiff::{SignedDuration, Timestamp};
use mia_core::{Audience, Contact, ContactId, Event, EventKind};
use serde::{Deserialize, Serialize};

use crate::error::{AnalyticsError, Result};
use crate::funnel::table::FastMap;

/// How an attribute is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Equal (JSON equality).
    Eq,
    /// Not equal (a missing attribute is not equal).
    Ne,
    /// Numerically greater.
    Gt,
    /// Numerically greater or equal.
    Gte,
    /// Numerically less.
    Lt,
    /// Numerically less or equal.
    Lte,
    /// A string containing the value, or an array containing it.
    Contains,
    /// Present at all (the value is ignored).
    Exists,
}

/// A rule over one contact. Serialised as tagged JSON, e.g.
/// `{"all": [{"did": {"event": "read", "within_days": 7}}, {"not": {"did": {"event": "converted"}}}]}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// An attribute compared with a value.
    Attribute {
        /// The attribute's key.
        key: String,
        /// The comparison.
        op: Op,
        /// The value to compare with.
        #[serde(default)]
        value: serde_json::Value,
    },
    /// At least `min_count` events of this kind (`"read"`, `"clicked"`, `"converted"`, ...),
    /// within the last `within_days` days if given.
    Did {
        /// The event kind's name ([`EventKind::name`]).
        event: String,
        /// Only events this recent count.
        #[serde(default)]
        within_days: Option<u32>,
        /// How many at least (default 1).
        #[serde(default = "one")]
        min_count: u32,
    },
    /// Every rule holds.
    All(Vec<Rule>),
    /// At least one rule holds.
    Any(Vec<Rule>),
    /// The rule does not hold.
    Not(Box<Rule>),
}

fn one() -> u32 {
    1
}

const KINDS: &[&str] = &EventKind::NAMES;

impl Rule {
    /// Checks event names and nesting before a segment is evaluated.
    ///
    /// # Errors
    /// [`AnalyticsError::InvalidQuery`] naming the unknown event kind or the empty group.
    pub fn validate(&self) -> Result<()> {
        match self {
            Rule::Attribute { key, .. } if key.is_empty() => Err(AnalyticsError::InvalidQuery(
                "attribute rule with an empty key".into(),
            )),
            Rule::Attribute { .. } => Ok(()),
            Rule::Did { event, .. } if !KINDS.contains(&event.as_str()) => {
                Err(AnalyticsError::InvalidQuery(format!(
                    "unknown event kind {event:?} (one of {})",
                    KINDS.join(", ")
                )))
            }
            Rule::Did { .. } => Ok(()),
            Rule::All(rules) | Rule::Any(rules) if rules.is_empty() => Err(
                AnalyticsError::InvalidQuery("an all/any group needs at least one rule".into()),
            ),
            Rule::All(rules) | Rule::Any(rules) => rules.iter().try_for_each(Rule::validate),
            Rule::Not(rule) => rule.validate(),
        }
    }

    /// The rule with event names resolved to kind codes and time limits fixed at `now`, so
    /// evaluating it per contact compares small integers.
    fn compile(&self, now: Timestamp) -> Compiled<'_> {
        match self {
            Rule::Attribute { key, op, value } => Compiled::Attribute {
                key,
                op: *op,
                value,
            },
            Rule::Did {
                event,
                within_days,
                min_count,
            } => Compiled::Did {
                // `validate` has checked the name; an unknown one matches no event.
                kind: KINDS
                    .iter()
                    .position(|k| *k == event.as_str())
                    .map_or(u8::MAX, |i| i as u8),
                since: within_days.map(|d| now - SignedDuration::from_hours(24 * i64::from(d))),
                until: now,
                min_count: *min_count as usize,
            },
            Rule::All(rules) => Compiled::All(rules.iter().map(|r| r.compile(now)).collect()),
            Rule::Any(rules) => Compiled::Any(rules.iter().map(|r| r.compile(now)).collect()),
            Rule::Not(rule) => Compiled::Not(Box::new(rule.compile(now))),
        }
    }
}

/// A [`Rule`] ready to evaluate (see [`Rule::compile`]).
enum Compiled<'r> {
    Attribute {
        key: &'r str,
        op: Op,
        value: &'r serde_json::Value,
    },
    Did {
        kind: u8,
        since: Option<Timestamp>,
        until: Timestamp,
        min_count: usize,
    },
    All(Vec<Compiled<'r>>),
    Any(Vec<Compiled<'r>>),
    Not(Box<Compiled<'r>>),
}

impl Compiled<'_> {
    fn holds(&self, contact: &Contact, events: Events<'_>) -> bool {
        match self {
            Compiled::Attribute { key, op, value } => {
                compare(contact.attributes.get(*key), *op, value)
            }
            Compiled::Did {
                kind,
                since,
                until,
                min_count,
            } => {
                if *min_count == 0 {
                    return true;
                }
                let mut n = 0;
                for (k, at) in events.kinds.iter().zip(events.at) {
                    if k == kind && since.is_none_or(|s| *at >= s) && at <= until {
                        n += 1;
                        if n >= *min_count {
                            return true;
                        }
                    }
                }
                false
            }
            Compiled::All(rules) => rules.iter().all(|r| r.holds(contact, events)),
            Compiled::Any(rules) => rules.iter().any(|r| r.holds(contact, events)),
            Compiled::Not(rule) => !rule.holds(contact, events),
        }
    }
}

/// One contact's events: kind codes (positions in [`KINDS`]) and times, in input order.
#[derive(Clone, Copy)]
struct Events<'h> {
    kinds: &'h [u8],
    at: &'h [Timestamp],
}

/// The position of the kind's name in [`KINDS`].
fn kind_code(kind: &EventKind) -> u8 {
    // Eleven kinds: every code fits.
    u8::try_from(kind.code()).unwrap_or(u8::MAX)
}

fn compare(actual: Option<&serde_json::Value>, op: Op, expected: &serde_json::Value) -> bool {
    let Some(actual) = actual else {
        return false;
    };
    let numbers = || Some((actual.as_f64()?, expected.as_f64()?));
    match op {
        Op::Exists => true,
        Op::Eq => actual == expected,
        Op::Ne => actual != expected,
        Op::Gt => numbers().is_some_and(|(a, b)| a > b),
        Op::Gte => numbers().is_some_and(|(a, b)| a >= b),
        Op::Lt => numbers().is_some_and(|(a, b)| a < b),
        Op::Lte => numbers().is_some_and(|(a, b)| a <= b),
        Op::Contains => match (actual, expected) {
            (serde_json::Value::String(a), serde_json::Value::String(b)) => a.contains(b.as_str()),
            (serde_json::Value::Array(items), v) => items.contains(v),
            _ => false,
        },
    }
}

/// A named rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// Its name.
    pub name: String,
    /// Who is in it.
    pub rule: Rule,
}

/// Each contact's events, built once for many segments.
///
/// Contact ids are interned once: the events of all contacts sit in two flat arrays (kind
/// code, time) grouped by contact, so indexing copies no id per event and evaluating a rule
/// reads one contiguous slice per contact.
#[derive(Debug, Default)]
pub struct History {
    /// Contact id to its row.
    rows: FastMap<ContactId, u32>,
    /// The events of row `i` are at `start[i]..start[i + 1]`.
    start: Vec<usize>,
    kinds: Vec<u8>,
    at: Vec<Timestamp>,
    /// Purchases per contact: (count, value, last time).
    value_by_contact: FastMap<ContactId, (u32, i64, Timestamp)>,
}

impl History {
    /// Indexes `events` by contact.
    pub fn new(events: &[Event]) -> Self {
        // Pass 1: a row per contact (ids borrowed from the events) and each row's size.
        let mut ids: FastMap<&str, u32> = FastMap::default();
        let mut row_of = Vec::with_capacity(events.len());
        let mut sizes: Vec<usize> = Vec::new();
        let mut value_by_contact: FastMap<ContactId, (u32, i64, Timestamp)> = FastMap::default();
        for e in events {
            let next = sizes.len() as u32;
            let row = *ids.entry(e.contact.as_str()).or_insert(next);
            if row == next {
                sizes.push(0);
            }
            sizes[row as usize] += 1;
            row_of.push(row);
            if let EventKind::Converted { value_minor } = e.kind {
                let entry = match value_by_contact.get_mut(&e.contact) {
                    Some(entry) => entry,
                    None => value_by_contact
                        .entry(e.contact.clone())
                        .or_insert((0, 0, e.at)),
                };
                entry.0 += 1;
                entry.1 = entry.1.saturating_add(value_minor);
                entry.2 = entry.2.max(e.at);
            }
        }
        // Pass 2: place each event in its row, keeping input order within a row.
        let mut start = Vec::with_capacity(sizes.len() + 1);
        start.push(0);
        for size in &sizes {
            start.push(start[start.len() - 1] + size);
        }
        let mut fill = start[..sizes.len()].to_vec();
        let mut kinds = vec![0u8; events.len()];
        let mut at = vec![Timestamp::UNIX_EPOCH; events.len()];
        for (e, row) in events.iter().zip(&row_of) {
            let slot = &mut fill[*row as usize];
            kinds[*slot] = kind_code(&e.kind);
            at[*slot] = e.at;
            *slot += 1;
        }
        let rows = ids
            .into_iter()
            .map(|(id, row)| (ContactId::new(id), row))
            .collect();
        History {
            rows,
            start,
            kinds,
            at,
            value_by_contact,
        }
    }

    fn events(&self, contact: &ContactId) -> Events<'_> {
        match self.rows.get(contact) {
            Some(&row) => {
                let range = self.start[row as usize]..self.start[row as usize + 1];
                Events {
                    kinds: &self.kinds[range.clone()],
                    at: &self.at[range],
                }
            }
            None => Events {
                kinds: &[],
                at: &[],
            },
        }
    }
}

impl Segment {
    /// The members among `contacts` at `now`, in the order given.
    ///
    /// # Errors
    /// [`AnalyticsError::InvalidQuery`] for an invalid rule.
    pub fn members(
        &self,
        contacts: &[Contact],
        history: &History,
        now: Timestamp,
    ) -> Result<Vec<ContactId>> {
        self.rule.validate()?;
        let rule = self.rule.compile(now);
        Ok(contacts
            .iter()
            .filter(|c| rule.holds(c, history.events(&c.id)))
            .map(|c| c.id.clone())
            .collect())
    }

    /// The members as a campaign audience. Consent is checked for each when the campaign is
    /// scheduled: a segment never reaches anyone who did not opt in.
    ///
    /// # Errors
    /// [`AnalyticsError::InvalidQuery`] for an invalid rule.
    pub fn audience(
        &self,
        contacts: &[Contact],
        history: &History,
        now: Timestamp,
    ) -> Result<Audience> {
        Ok(Audience::Contacts(self.members(contacts, history, now)?))
    }
}

/// Recency, frequency and monetary value of one customer's purchases, with 1–5 scores (5 best)
/// by quintile among the customers who bought at all.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rfm {
    /// The contact.
    pub contact: ContactId,
    /// Days since the last purchase.
    pub recency_days: i64,
    /// Purchases.
    pub frequency: u32,
    /// Their total value in minor units.
    pub monetary_minor: i64,
    /// 1–5: more recent is better.
    pub r: u8,
    /// 1–5: more purchases is better.
    pub f: u8,
    /// 1–5: more value is better.
    pub m: u8,
}

/// RFM scores of every contact with a conversion in `history`, at `now`, sorted by contact id.
pub fn rfm(history: &History, now: Timestamp) -> Vec<Rfm> {
    let mut rows: Vec<Rfm> = history
        .value_by_contact
        .iter()
        .map(|(contact, (frequency, monetary, last))| Rfm {
            contact: contact.clone(),
            recency_days: now.duration_since(*last).as_hours().div_euclid(24),
            frequency: *frequency,
            monetary_minor: *monetary,
            r: 0,
            f: 0,
            m: 0,
        })
        .collect();
    quintiles(&mut rows, |r| -r.recency_days, |r, s| r.r = s);
    quintiles(&mut rows, |r| i64::from(r.frequency), |r, s| r.f = s);
    quintiles(&mut rows, |r| r.monetary_minor, |r, s| r.m = s);
    rows.sort_by(|a, b| a.contact.as_str().cmp(b.contact.as_str()));
    rows
}

/// Scores each row 1–5 by the quintile of its rank on `key` (ascending; equal values share the
/// lower rank).
fn quintiles(rows: &mut [Rfm], key: impl Fn(&Rfm) -> i64, set: impl Fn(&mut Rfm, u8)) {
    let n = rows.len().max(1);
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|i| key(&rows[*i]));
    let mut first_of_value = 0;
    for pos in 0..order.len() {
        if pos > 0 && key(&rows[order[pos - 1]]) != key(&rows[order[pos]]) {
            first_of_value = pos;
        }
        let score = (1 + first_of_value * 5 / n).min(5) as u8;
        set(&mut rows[order[pos]], score);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mia_core::{EventId, TelegramPeer};

    fn now() -> Timestamp {
        "2026-12-10T12:00:00Z".parse().unwrap()
    }

    fn contact(id: &str, plan: &str) -> Contact {
        let mut c = Contact::new(id, TelegramPeer::user(1), "UTC", now()).unwrap();
        c.attributes.insert("plan".into(), plan.into());
        c.attributes.insert("orders".into(), 3.into());
        c
    }

    fn event(contact: &str, kind: EventKind, days_ago: i64) -> Event {
        Event {
            id: EventId::new(format!("{contact}-{}-{days_ago}", kind.name())),
            at: now() - SignedDuration::from_hours(24 * days_ago),
            contact: ContactId::new(contact),
            campaign: None,
            variant: None,
            step: None,
            kind,
        }
    }

    #[test]
    fn read_recently_and_not_converted() {
        let contacts = vec![
            contact("a", "pro"),
            contact("b", "free"),
            contact("c", "pro"),
        ];
        let events = vec![
            event("a", EventKind::Read, 2),
            event("b", EventKind::Read, 3),
            event("b", EventKind::Converted { value_minor: 500 }, 1),
            event("c", EventKind::Read, 20),
        ];
        let rule: Rule = serde_json::from_value(serde_json::json!({"all": [
            {"did": {"event": "read", "within_days": 7}},
            {"not": {"did": {"event": "converted"}}}
        ]}))
        .unwrap();
        let seg = Segment {
            name: "warm".into(),
            rule,
        };
        let members = seg
            .members(&contacts, &History::new(&events), now())
            .unwrap();
        assert_eq!(members, vec![ContactId::new("a")]);
    }

    #[test]
    fn attributes_compare_by_type_and_missing_is_never_a_match() {
        let c = contact("a", "pro");
        let h = Events {
            kinds: &[],
            at: &[],
        };
        let rule = |key: &str, op: Op, value: serde_json::Value| Rule::Attribute {
            key: key.into(),
            op,
            value,
        };
        assert!(
            rule("plan", Op::Eq, "pro".into())
                .compile(now())
                .holds(&c, h)
        );
        assert!(
            rule("orders", Op::Gte, 3.into())
                .compile(now())
                .holds(&c, h)
        );
        assert!(!rule("orders", Op::Gt, 3.into()).compile(now()).holds(&c, h));
        assert!(
            !rule("plan", Op::Gt, 3.into()).compile(now()).holds(&c, h),
            "a string is not a number"
        );
        assert!(
            rule("plan", Op::Contains, "pr".into())
                .compile(now())
                .holds(&c, h)
        );
        assert!(
            !rule("city", Op::Ne, "Vienna".into())
                .compile(now())
                .holds(&c, h)
        );
        assert!(
            !rule("city", Op::Exists, serde_json::Value::Null)
                .compile(now())
                .holds(&c, h)
        );
    }

    #[test]
    fn invalid_rules_are_named() {
        let bad = Rule::Did {
            event: "opened".into(),
            within_days: None,
            min_count: 1,
        };
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("opened"), "{err}");
        assert!(Rule::All(vec![]).validate().is_err());
    }

    #[test]
    fn rfm_scores_by_quintile() {
        let mut events = Vec::new();
        for i in 0..10i64 {
            let who = format!("c{i}");
            for k in 0..=i {
                events.push(Event {
                    id: EventId::new(format!("{who}-{k}")),
                    ..event(
                        &who,
                        EventKind::Converted {
                            value_minor: 100 * (i + 1),
                        },
                        30 - i * 3 + k,
                    )
                });
            }
        }
        let rows = rfm(&History::new(&events), now());
        assert_eq!(rows.len(), 10);
        let best = rows.iter().find(|r| r.contact.as_str() == "c9").unwrap();
        assert_eq!((best.r, best.f, best.m), (5, 5, 5), "{best:?}");
        assert_eq!(best.frequency, 10);
        assert_eq!(best.monetary_minor, 10 * 1000);
        let worst = rows.iter().find(|r| r.contact.as_str() == "c0").unwrap();
        assert_eq!((worst.r, worst.f, worst.m), (1, 1, 1), "{worst:?}");
    }

    #[test]
    fn kind_codes_are_the_positions_of_the_names() {
        let kinds = [
            EventKind::Sent,
            EventKind::Delivered,
            EventKind::Read,
            EventKind::Clicked,
            EventKind::Replied,
            EventKind::Converted { value_minor: 1 },
            EventKind::OptedIn,
            EventKind::OptedOut,
            EventKind::Blocked,
            EventKind::Failed { reason: "x".into() },
            EventKind::Skipped { rule: "y".into() },
        ];
        assert_eq!(kinds.len(), KINDS.len());
        for kind in &kinds {
            assert_eq!(KINDS[kind_code(kind) as usize], kind.name());
        }
    }

    /// The rule's meaning, straight from the raw events: the oracle for the indexed evaluation.
    fn brute_force(rule: &Rule, contact: &Contact, events: &[Event], now: Timestamp) -> bool {
        match rule {
            Rule::Attribute { key, op, value } => compare(contact.attributes.get(key), *op, value),
            Rule::Did {
                event,
                within_days,
                min_count,
            } => {
                let since =
                    within_days.map(|d| now - SignedDuration::from_hours(24 * i64::from(d)));
                events
                    .iter()
                    .filter(|e| {
                        e.contact == contact.id
                            && e.kind.name() == event.as_str()
                            && since.is_none_or(|s| e.at >= s)
                            && e.at <= now
                    })
                    .count()
                    >= *min_count as usize
            }
            Rule::All(rules) => rules.iter().all(|r| brute_force(r, contact, events, now)),
            Rule::Any(rules) => rules.iter().any(|r| brute_force(r, contact, events, now)),
            Rule::Not(r) => !brute_force(r, contact, events, now),
        }
    }

    fn arb_rule() -> impl proptest::strategy::Strategy<Value = Rule> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            (0usize..3, 0u32..3).prop_map(|(p, n)| Rule::Attribute {
                key: "orders".into(),
                op: [Op::Gte, Op::Lt, Op::Eq][p],
                value: n.into(),
            }),
            (0usize..4, proptest::option::of(0u32..10), 0u32..3).prop_map(|(k, within, min)| {
                Rule::Did {
                    event: ["sent", "read", "clicked", "converted"][k].into(),
                    within_days: within,
                    min_count: min,
                }
            }),
        ];
        leaf.prop_recursive(3, 12, 3, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 1..3).prop_map(Rule::All),
                proptest::collection::vec(inner.clone(), 1..3).prop_map(Rule::Any),
                inner.prop_map(|r| Rule::Not(Box::new(r))),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        #[test]
        fn indexed_evaluation_matches_the_raw_events(
            rule in arb_rule(),
            raw in proptest::collection::vec((0usize..12, 0usize..4, -3i64..15), 0..80),
        ) {
            let contacts: Vec<Contact> = (0..10)
                .map(|i| {
                    let mut c = contact(&format!("c{i}"), "pro");
                    c.attributes.insert("orders".into(), (i % 3).into());
                    c
                })
                .collect();
            let kinds = [
                EventKind::Sent,
                EventKind::Read,
                EventKind::Clicked,
                EventKind::Converted { value_minor: 100 },
            ];
            let events: Vec<Event> = raw
                .iter()
                .enumerate()
                .map(|(n, (who, kind, days_ago))| Event {
                    id: EventId::new(format!("e{n}")),
                    // Contacts 10 and 11 have events but are not in the list.
                    ..event(&format!("c{who}"), kinds[*kind].clone(), *days_ago)
                })
                .collect();
            let seg = Segment { name: "s".into(), rule: rule.clone() };
            let got = seg.members(&contacts, &History::new(&events), now()).unwrap();
            let expected: Vec<ContactId> = contacts
                .iter()
                .filter(|c| brute_force(&rule, c, &events, now()))
                .map(|c| c.id.clone())
                .collect();
            proptest::prop_assert_eq!(got, expected);
        }
    }
}
