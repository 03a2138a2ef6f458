//! The allocator seam: which variant a contact gets, and what it earned.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::{CampaignId, ContactId, VariantId};

/// A request to pick a variant.
#[derive(Clone, Debug)]
pub struct AssignmentRequest<'a> {
    /// The campaign (the experiment).
    pub campaign: &'a CampaignId,
    /// The contact.
    pub contact: &'a ContactId,
    /// The variants that may be sent, in the campaign's order.
    pub variants: &'a [VariantId],
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

/// Picks variants. Must be sticky: the same contact gets the same variant for a campaign across
/// retries, restarts and workers.
pub trait Allocator: Send + Sync {
    /// Picks a variant.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when `variants` is empty.
    fn assign(&self, request: &AssignmentRequest<'_>) -> Result<Assignment>;

    /// Learns from a reward. Does nothing by default.
    fn observe(&self, _reward: &Reward) {}
}

impl<A: Allocator + ?Sized> Allocator for Arc<A> {
    fn assign(&self, request: &AssignmentRequest<'_>) -> Result<Assignment> {
        (**self).assign(request)
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
            let req = AssignmentRequest {
                campaign: &campaign,
                contact: &contact,
                variants: &variants,
            };
            let first = EvenSplit.assign(&req).unwrap();
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
        let req = AssignmentRequest {
            campaign: &CampaignId::new("c"),
            contact: &ContactId::new("u"),
            variants: &[],
        };
        assert!(EvenSplit.assign(&req).is_err());
    }
}
