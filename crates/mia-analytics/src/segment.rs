//! Segments: contacts chosen by rules over their attributes and their event history ("read in
//! the last 7 days and not converted"), and RFM scores. A segment becomes a campaign audience;
//! consent is still checked for every member when the campaign is scheduled and sent.

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};
use mia_core::{Audience, Contact, ContactId, Event, EventKind};
use serde::{Deserialize, Serialize};

use crate::error::{AnalyticsError, Result};

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

const KINDS: &[&str] = &[
    "sent",
    "delivered",
    "read",
    "clicked",
    "replied",
    "converted",
    "opted_in",
    "opted_out",
    "blocked",
    "failed",
    "skipped",
];

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

    fn holds(
        &self,
        contact: &Contact,
        history: &[(&'static str, Timestamp)],
        now: Timestamp,
    ) -> bool {
        match self {
            Rule::Attribute { key, op, value } => compare(contact.attributes.get(key), *op, value),
            Rule::Did {
                event,
                within_days,
                min_count,
            } => {
                let since =
                    within_days.map(|d| now - SignedDuration::from_hours(24 * i64::from(d)));
                let n = history
                    .iter()
                    .filter(|(kind, at)| {
                        *kind == event.as_str() && since.is_none_or(|s| *at >= s) && *at <= now
                    })
                    .count();
                n >= *min_count as usize
            }
            Rule::All(rules) => rules.iter().all(|r| r.holds(contact, history, now)),
            Rule::Any(rules) => rules.iter().any(|r| r.holds(contact, history, now)),
            Rule::Not(rule) => !rule.holds(contact, history, now),
        }
    }
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

/// Each contact's events as (kind name, time), built once for many segments.
#[derive(Debug, Default)]
pub struct History {
    by_contact: HashMap<ContactId, Vec<(&'static str, Timestamp)>>,
    value_by_contact: HashMap<ContactId, (u32, i64, Timestamp)>,
}

impl History {
    /// Indexes `events` by contact.
    pub fn new(events: &[Event]) -> Self {
        let mut h = History::default();
        for e in events {
            h.by_contact
                .entry(e.contact.clone())
                .or_default()
                .push((e.kind.name(), e.at));
            if let EventKind::Converted { value_minor } = e.kind {
                let entry = h
                    .value_by_contact
                    .entry(e.contact.clone())
                    .or_insert((0, 0, e.at));
                entry.0 += 1;
                entry.1 += value_minor;
                entry.2 = entry.2.max(e.at);
            }
        }
        h
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
        Ok(contacts
            .iter()
            .filter(|c| {
                let events = history.by_contact.get(&c.id).map_or(&[][..], Vec::as_slice);
                self.rule.holds(c, events, now)
            })
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
        let h: &[(&'static str, Timestamp)] = &[];
        let rule = |key: &str, op: Op, value: serde_json::Value| Rule::Attribute {
            key: key.into(),
            op,
            value,
        };
        assert!(rule("plan", Op::Eq, "pro".into()).holds(&c, h, now()));
        assert!(rule("orders", Op::Gte, 3.into()).holds(&c, h, now()));
        assert!(!rule("orders", Op::Gt, 3.into()).holds(&c, h, now()));
        assert!(
            !rule("plan", Op::Gt, 3.into()).holds(&c, h, now()),
            "a string is not a number"
        );
        assert!(rule("plan", Op::Contains, "pr".into()).holds(&c, h, now()));
        assert!(!rule("city", Op::Ne, "Vienna".into()).holds(&c, h, now()));
        assert!(!rule("city", Op::Exists, serde_json::Value::Null).holds(&c, h, now()));
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
}
