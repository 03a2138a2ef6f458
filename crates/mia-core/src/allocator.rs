//! The allocator seam: which variant a contact gets, and what it earned.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::ids::{CampaignId, ContactId, VariantId};

/// The attributes of a request made without any ([`AssignmentRequest::new`]).
static NO_ATTRIBUTES: BTreeMap<String, Value> = BTreeMap::new();

/// A request to pick a variant.
#[derive(Clone, Debug)]
pub struct AssignmentRequest<'a> {
    /// The campaign (the experiment).
    pub campaign: &'a CampaignId,
    /// The contact.
    pub contact: &'a ContactId,
    /// The variants that may be sent, in the campaign's order.
    pub variants: &'a [VariantId],
    /// The contact's attributes ([`Contact::attributes`](crate::Contact)), for targeting.
    /// The agent always passes them; empty when the caller has none.
    pub attributes: &'a BTreeMap<String, Value>,
}

impl<'a> AssignmentRequest<'a> {
    /// A request without attributes (add them with
    /// [`with_attributes`](AssignmentRequest::with_attributes)).
    pub fn new(
        campaign: &'a CampaignId,
        contact: &'a ContactId,
        variants: &'a [VariantId],
    ) -> Self {
        Self {
            campaign,
            contact,
            variants,
            attributes: &NO_ATTRIBUTES,
        }
    }

    /// The same request with the contact's attributes.
    #[must_use]
    pub fn with_attributes(mut self, attributes: &'a BTreeMap<String, Value>) -> Self {
        self.attributes = attributes;
        self
    }
}

/// A chosen variant and the probability it had of being chosen (for propensity weighting).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    /// The variant.
    pub variant: VariantId,
    /// The probability the allocator gave it, in (0, 1].
    pub propensity: f64,
}

/// A reward observed for an assignment (a click, a conversion).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reward {
    /// The campaign.
    pub campaign: CampaignId,
    /// The contact.
    pub contact: ContactId,
    /// The variant they got.
    pub variant: VariantId,
    /// The reward (1.0 for a conversion, the order value, ...).
    pub value: f64,
}

/// The rule recorded on a job (and its `skipped` event) whose contact an experiment held out:
/// the contact gets no message and counts in the comparison group.
pub const HOLDOUT_RULE: &str = "experiment_holdout";

/// What an allocator decided for a contact: a variant to send, or no message at all.
///
/// The agent sends only a [`Variant`](Allocation::Variant). For the other two it finishes the
/// job without sending, as a skipped job with the rule [`skip_rule`](Allocation::skip_rule)
/// and a `skipped` event, so reports count held-out and excluded contacts like every other
/// skipped one (`CampaignReport::skipped` by rule).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Allocation {
    /// Send this variant.
    Variant(Assignment),
    /// In the experiment's holdout: send nothing, count the contact as the comparison group.
    Holdout {
        /// The probability of being held out, in (0, 1), for propensity weighting.
        propensity: f64,
    },
    /// Not in the experiment (outside its segment, its layer slice, or while it is not
    /// running): send nothing.
    Excluded {
        /// Why, in `snake_case` (`"not_targeted"`); the job's rule is `experiment_<reason>`.
        reason: String,
    },
}

impl Allocation {
    /// The rule a job gets when nothing is sent: [`HOLDOUT_RULE`] for the holdout,
    /// `experiment_<reason>` for an exclusion, `None` for a variant.
    pub fn skip_rule(&self) -> Option<String> {
        match self {
            Allocation::Variant(_) => None,
            Allocation::Holdout { .. } => Some(HOLDOUT_RULE.to_owned()),
            Allocation::Excluded { reason } => Some(format!("experiment_{reason}")),
        }
    }
}

/// Picks variants. Must be sticky: the same contact gets the same variant for a campaign across
/// retries, restarts and workers.
pub trait Allocator: Send + Sync {
    /// Picks a variant.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when `variants` is empty.
    fn assign(&self, request: &AssignmentRequest<'_>) -> Result<Assignment>;

    /// Decides for a contact: a variant, or a holdout or exclusion that sends nothing. The agent
    /// calls this one; by default it is [`assign`](Allocator::assign)'s variant, so allocators
    /// without holdouts implement `assign` only. Sticky like `assign`.
    ///
    /// # Errors
    /// As [`assign`](Allocator::assign).
    fn allocate(&self, request: &AssignmentRequest<'_>) -> Result<Allocation> {
        self.assign(request).map(Allocation::Variant)
    }

    /// Learns from a reward. Does nothing by default.
    fn observe(&self, _reward: &Reward) {}
}

impl<A: Allocator + ?Sized> Allocator for Arc<A> {
    fn assign(&self, request: &AssignmentRequest<'_>) -> Result<Assignment> {
        (**self).assign(request)
    }
    fn allocate(&self, request: &AssignmentRequest<'_>) -> Result<Allocation> {
        (**self).allocate(request)
    }
    fn observe(&self, reward: &Reward) {
        (**self).observe(reward);
    }
}

/// The default allocator: an even, sticky split by a stable hash of (campaign, contact).
///
/// `mia-experiments` offers weights, holdouts and salts; this one exists so an agent works out of
/// the box.
#[derive(Clone, Copy, Debug, Default)]
pub struct EvenSplit;

impl Allocator for EvenSplit {
    fn assign(&self, request: &AssignmentRequest<'_>) -> Result<Assignment> {
        let n = request.variants.len();
        if n == 0 {
            return Err(Error::invalid(format!(
                "campaign {} has no variant to assign",
                request.campaign
            )));
        }
        let digest = crate::ids::hex_digest(&[
            request.campaign.as_str().as_bytes(),
            request.contact.as_str().as_bytes(),
        ]);
        // The first 16 hex digits are 64 uniform bits.
        let bits = u64::from_str_radix(&digest[..16], 16).unwrap_or(0);
        let index = ((u128::from(bits) * n as u128) >> 64) as usize;
        Ok(Assignment {
            variant: request.variants[index].clone(),
            propensity: 1.0 / n as f64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_split_is_sticky_and_roughly_even() {
        let campaign = CampaignId::new("c");
        let variants = [VariantId::new("A"), VariantId::new("B")];
        let mut a = 0;
        for i in 0..10_000 {
            let contact = ContactId::new(format!("u{i}"));
            let req = AssignmentRequest::new(&campaign, &contact, &variants);
            let first = EvenSplit.assign(&req).unwrap();
            assert_eq!(
                EvenSplit.allocate(&req).unwrap(),
                Allocation::Variant(first.clone()),
                "allocate defaults to assign"
            );
            assert_eq!(first, EvenSplit.assign(&req).unwrap());
            assert_eq!(first.propensity, 0.5);
            if first.variant.as_str() == "A" {
                a += 1;
            }
        }
        // Binomial(10000, 0.5): 5 standard deviations is 250.
        assert!((4750..=5250).contains(&a), "A got {a} of 10000");
    }

    #[test]
    fn no_variants_is_an_error() {
        let (campaign, contact) = (CampaignId::new("c"), ContactId::new("u"));
        let req = AssignmentRequest::new(&campaign, &contact, &[]);
        assert!(EvenSplit.assign(&req).is_err());
        assert!(EvenSplit.allocate(&req).is_err());
    }

    #[test]
    fn skip_rules_name_the_holdout_and_the_exclusion() {
        let variant = Allocation::Variant(Assignment {
            variant: VariantId::new("A"),
            propensity: 0.5,
        });
        assert_eq!(variant.skip_rule(), None);
        assert_eq!(
            Allocation::Holdout { propensity: 0.1 }
                .skip_rule()
                .as_deref(),
            Some(HOLDOUT_RULE)
        );
        let excluded = Allocation::Excluded {
            reason: "not_targeted".into(),
        };
        assert_eq!(
            excluded.skip_rule().as_deref(),
            Some("experiment_not_targeted")
        );
        let attributes = [("plan".to_owned(), Value::from("pro"))]
            .into_iter()
            .collect();
        let (campaign, contact) = (CampaignId::new("c"), ContactId::new("u"));
        let req = AssignmentRequest::new(&campaign, &contact, &[]).with_attributes(&attributes);
        assert_eq!(req.attributes.get("plan"), Some(&Value::from("pro")));
        assert!(
            AssignmentRequest::new(&campaign, &contact, &[])
                .attributes
                .is_empty()
        );
    }
}
