//! The deterministic splitter: `hash(salt, campaign, contact)` to a point in [0, 1), mapped onto
//! the variants by weight.

use std::collections::BTreeMap;

use mia_core::{Allocator, Assignment, AssignmentRequest, VariantId};
use sha2::{Digest, Sha256};

use crate::error::ExperimentError;

/// A weighted, salted, sticky split.
///
/// The same (salt, campaign, contact) always lands on the same point, so assignment survives
/// restarts and agrees across workers without any shared state. Variants without a weight get
/// weight 1. The propensity logged with each assignment is the variant's share of the total
/// weight among the variants on offer.
#[derive(Clone, Debug, Default)]
pub struct Splitter {
    salt: String,
    weights: BTreeMap<VariantId, f64>,
}

impl Splitter {
    /// An even split with an empty salt.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the salt; a new salt reshuffles everyone (use one per experiment).
    #[must_use]
    pub fn with_salt(mut self, salt: impl Into<String>) -> Self {
        self.salt = salt.into();
        self
    }

    /// Sets a variant's weight.
    ///
    /// # Errors
    /// [`ExperimentError::InvalidWeight`] for a negative, zero or non-finite weight.
    pub fn with_weight(
        mut self,
        variant: impl Into<VariantId>,
        weight: f64,
    ) -> Result<Self, ExperimentError> {
        let variant = variant.into();
        if !(weight.is_finite() && weight > 0.0) {
            return Err(ExperimentError::InvalidWeight {
                variant: variant.to_string(),
                weight,
            });
        }
        self.weights.insert(variant, weight);
        Ok(self)
    }

    /// The point in [0, 1) of a contact, from the first 8 bytes of
    /// SHA-256(salt ‖ 0xff ‖ campaign ‖ 0xff ‖ contact).
    pub fn point(&self, campaign: &str, contact: &str) -> f64 {
        unit_point(&[
            self.salt.as_bytes(),
            campaign.as_bytes(),
            contact.as_bytes(),
        ])
    }

    fn weight(&self, v: &VariantId) -> f64 {
        self.weights.get(v).copied().unwrap_or(1.0)
    }
}

/// A point in [0, 1) from the first 8 bytes of SHA-256 of `parts` joined by `0xff` bytes.
pub(crate) fn unit_point(parts: &[&[u8]]) -> f64 {
    let mut h = Sha256::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            h.update([0xff]);
        }
        h.update(part);
    }
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // 53 bits: exactly representable in an f64.
    (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64
}

impl Allocator for Splitter {
    fn assign(&self, request: &AssignmentRequest<'_>) -> mia_core::Result<Assignment> {
        if request.variants.is_empty() {
            return Err(ExperimentError::NoVariants(request.campaign.to_string()).into());
        }
        let total: f64 = request.variants.iter().map(|v| self.weight(v)).sum();
        let target = self.point(request.campaign.as_str(), request.contact.as_str()) * total;
        let mut acc = 0.0;
        for v in request.variants {
            let w = self.weight(v);
            acc += w;
            if target < acc {
                return Ok(Assignment {
                    variant: v.clone(),
                    propensity: w / total,
                });
            }
        }
        // Rounding can leave `target` a hair above the last boundary: it belongs to the last.
        let last = &request.variants[request.variants.len() - 1];
        Ok(Assignment {
            variant: last.clone(),
            propensity: self.weight(last) / total,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use mia_core::{CampaignId, ContactId};

    fn shares(s: &Splitter, variants: &[VariantId], n: usize) -> BTreeMap<VariantId, usize> {
        let campaign = CampaignId::new("spring");
        let mut out = BTreeMap::new();
        for i in 0..n {
            let contact = ContactId::new(format!("contact-{i}"));
            let a = s
                .assign(&AssignmentRequest {
                    campaign: &campaign,
                    contact: &contact,
                    variants,
                })
                .unwrap();
            *out.entry(a.variant).or_default() += 1;
        }
        out
    }

    #[test]
    fn weights_shape_the_split_within_sampling_error() {
        let s = Splitter::new()
            .with_salt("exp-1")
            .with_weight("A", 3.0)
            .unwrap();
        let variants = [VariantId::new("A"), VariantId::new("B")];
        let got = shares(&s, &variants, 20_000);
        let a = got[&VariantId::new("A")] as f64;
        // Binomial(20000, 0.75): sd = 61; allow 5 sd.
        assert!((a - 15_000.0).abs() < 310.0, "A got {a}");
    }

    #[test]
    fn assignment_is_sticky_and_the_salt_reshuffles() {
        let variants = [VariantId::new("A"), VariantId::new("B")];
        let one = Splitter::new().with_salt("x");
        let req = |c: &'static str| (CampaignId::new("k"), ContactId::new(c));
        let mut moved = 0;
        for i in 0..1000 {
            let (campaign, contact) = req("u");
            let contact = ContactId::new(format!("{contact}{i}"));
            let r = AssignmentRequest {
                campaign: &campaign,
                contact: &contact,
                variants: &variants,
            };
            let first = one.assign(&r).unwrap();
            assert_eq!(first, one.assign(&r).unwrap());
            assert_eq!(first.propensity, 0.5);
            if Splitter::new().with_salt("y").assign(&r).unwrap().variant != first.variant {
                moved += 1;
            }
        }
        // Independent salts disagree about half the time.
        assert!((400..600).contains(&moved), "{moved}");
    }

    #[test]
    fn bad_weights_and_empty_variants_are_errors() {
        assert!(Splitter::new().with_weight("A", 0.0).is_err());
        assert!(Splitter::new().with_weight("A", f64::NAN).is_err());
        let r = AssignmentRequest {
            campaign: &CampaignId::new("k"),
            contact: &ContactId::new("u"),
            variants: &[],
        };
        assert!(Splitter::new().assign(&r).is_err());
    }

    #[test]
    fn points_are_uniform_enough() {
        let s = Splitter::new();
        let mut buckets = [0usize; 10];
        for i in 0..10_000 {
            let p = s.point("k", &format!("u{i}"));
            assert!((0.0..1.0).contains(&p));
            buckets[(p * 10.0) as usize] += 1;
        }
        // Chi-square with 9 degrees of freedom; 27.9 is the 0.001 critical value.
        let chi: f64 = buckets
            .iter()
            .map(|&b| (b as f64 - 1000.0).powi(2) / 1000.0)
            .sum();
        assert!(chi < 27.9, "chi-square {chi}");
    }
}
