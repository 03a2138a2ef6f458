//! Targeting: a serde-able predicate over a contact's attributes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Which contacts an experiment targets: a predicate over the contact's attributes
/// (`mia_core::Contact::attributes`). It serialises as tagged JSON, so it can live in a
/// campaign's configuration:
///
/// ```
/// use mia_experiments::Segment;
/// let pro: Segment = serde_json::from_str(r#"{"op": "equals", "attribute": "plan", "value": "pro"}"#)?;
/// let attributes = [("plan".to_owned(), serde_json::json!("pro"))].into_iter().collect();
/// assert!(pro.matches(&attributes));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Segment {
    /// Every contact.
    #[default]
    Everyone,
    /// The attribute is present and equal to `value` (JSON equality: `"1"` is not `1`).
    Equals {
        /// The attribute's name.
        attribute: String,
        /// The value it must have.
        value: Value,
    },
    /// The attribute is present and equal to one of `values`.
    In {
        /// The attribute's name.
        attribute: String,
        /// The accepted values.
        values: Vec<Value>,
    },
    /// The attribute is present (with any value, `null` included).
    Exists {
        /// The attribute's name.
        attribute: String,
    },
    /// Every part matches (an empty list matches everyone).
    And {
        /// The parts.
        all: Vec<Segment>,
    },
    /// At least one part matches (an empty list matches no one).
    Or {
        /// The parts.
        any: Vec<Segment>,
    },
    /// The inner segment does not match.
    Not {
        /// The segment negated.
        not: Box<Segment>,
    },
}

impl Segment {
    /// `attribute == value`.
    pub fn equals(attribute: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::Equals {
            attribute: attribute.into(),
            value: value.into(),
        }
    }

    /// Whether a contact with these attributes belongs to the segment.
    pub fn matches(&self, attributes: &BTreeMap<String, Value>) -> bool {
        match self {
            Segment::Everyone => true,
            Segment::Equals { attribute, value } => attributes.get(attribute) == Some(value),
            Segment::In { attribute, values } => attributes
                .get(attribute)
                .is_some_and(|v| values.contains(v)),
            Segment::Exists { attribute } => attributes.contains_key(attribute),
            Segment::And { all } => all.iter().all(|s| s.matches(attributes)),
            Segment::Or { any } => any.iter().any(|s| s.matches(attributes)),
            Segment::Not { not } => !not.matches(attributes),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn attrs(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn predicates_match_as_documented_and_round_trip_through_json() {
        let pro = attrs(&[("plan", json!("pro")), ("city", json!("Lisbon"))]);
        let free = attrs(&[("plan", json!("free"))]);
        let none = BTreeMap::new();
        let segment = Segment::And {
            all: vec![
                Segment::equals("plan", "pro"),
                Segment::Not {
                    not: Box::new(Segment::In {
                        attribute: "city".into(),
                        values: vec![json!("Paris"), json!("Rome")],
                    }),
                },
            ],
        };
        assert!(segment.matches(&pro));
        assert!(!segment.matches(&free));
        assert!(!segment.matches(&none));
        assert!(Segment::Everyone.matches(&none));
        assert!(!Segment::Or { any: vec![] }.matches(&pro));
        assert!(
            Segment::Exists {
                attribute: "city".into()
            }
            .matches(&pro)
        );
        assert!(
            !Segment::Exists {
                attribute: "city".into()
            }
            .matches(&free)
        );
        // JSON equality: the string "1" is not the number 1.
        assert!(!Segment::equals("n", 1).matches(&attrs(&[("n", json!("1"))])));
        let text = serde_json::to_string(&segment).unwrap();
        assert_eq!(serde_json::from_str::<Segment>(&text).unwrap(), segment);
    }
}
