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

    /// The variant whose share of the total weight holds `point`, and its share; each weight
    /// is looked up once (on the stack for up to 16 variants).
    fn weighted_index(&self, point: f64, variants: &[VariantId]) -> (usize, f64) {
        let mut stack = [0.0; 16];
        let mut heap = Vec::new();
        let weights: &mut [f64] = if variants.len() <= stack.len() {
            &mut stack[..variants.len()]
        } else {
            heap.resize(variants.len(), 0.0);
            &mut heap
        };
        for (w, v) in weights.iter_mut().zip(variants) {
            *w = self.weight(v);
        }
        let total: f64 = weights.iter().sum();
        let target = point * total;
        let mut acc = 0.0;
        for (i, &w) in weights.iter().enumerate() {
            acc += w;
            if target < acc {
                return (i, w / total);
            }
        }
        // Rounding can leave `target` a hair above the last boundary: it belongs to the last.
        let last = weights.len() - 1;
        (last, weights[last] / total)
    }
}

/// SHA-256's initial hash value (FIPS 180-4, 5.3.3).
const SHA256_INITIAL: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// Messages up to this length fit two padded SHA-256 blocks (`128 - 1 - 8` bytes).
const TWO_BLOCKS: usize = 119;

/// A point in [0, 1) from the first 8 bytes of SHA-256 of `parts` joined by `0xff` bytes.
///
/// Short messages (all real ids) are padded by hand on the stack and fed to the compression
/// function directly: the same digest as [`Sha256`], without the hasher's buffering, copies
/// and finalisation (about a third of an assignment's time).
// `GenericArray` is the block type of sha2 0.10's `compress256`; its crate deprecates itself
// in favour of a 1.x that sha2 0.10 does not use.
#[allow(deprecated)]
pub(crate) fn unit_point(parts: &[&[u8]]) -> f64 {
    let len = parts.iter().map(|p| p.len()).sum::<usize>() + parts.len().saturating_sub(1);
    let first = if len <= TWO_BLOCKS {
        let mut buf = [0u8; 128];
        let mut at = 0;
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                buf[at] = 0xff;
                at += 1;
            }
            buf[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        buf[at] = 0x80;
        let end = if len <= 55 { 64 } else { 128 };
        buf[end - 8..end].copy_from_slice(&(len as u64 * 8).to_be_bytes());
        type Block = sha2::digest::generic_array::GenericArray<u8, sha2::digest::consts::U64>;
        let mut state = SHA256_INITIAL;
        // Block by block, each borrowed in place: no copy.
        for block in buf[..end].chunks_exact(64) {
            sha2::compress256(&mut state, std::slice::from_ref(Block::from_slice(block)));
        }
        (u64::from(state[0]) << 32) | u64::from(state[1])
    } else {
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
        u64::from_be_bytes(first)
    };
    // 53 bits: exactly representable in an f64.
    (first >> 11) as f64 / (1u64 << 53) as f64
}

impl Allocator for Splitter {
    fn assign(&self, request: &AssignmentRequest<'_>) -> mia_core::Result<Assignment> {
        if request.variants.is_empty() {
            return Err(ExperimentError::NoVariants(request.campaign.to_string()).into());
        }
        let point = self.point(request.campaign.as_str(), request.contact.as_str());
        let n = request.variants.len();
        let (index, propensity) = if self.weights.is_empty() {
            // Every weight is 1: the boundaries are the integers, so the loop below lands on
            // `floor(target)` (the last variant when rounding reaches `n`).
            let index = ((point * n as f64) as usize).min(n - 1);
            (index, 1.0 / n as f64)
        } else {
            self.weighted_index(point, request.variants)
        };
        Ok(Assignment {
            variant: request.variants[index].clone(),
            propensity,
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
                .assign(&AssignmentRequest::new(&campaign, &contact, variants))
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
            let r = AssignmentRequest::new(&campaign, &contact, &variants);
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
        let (campaign, contact) = (CampaignId::new("k"), ContactId::new("u"));
        let r = AssignmentRequest::new(&campaign, &contact, &[]);
        assert!(Splitter::new().assign(&r).is_err());
    }

    #[test]
    fn fast_paths_agree_with_the_reference_rule() {
        // The stack-buffer hash equals SHA-256 fed part by part, short and long messages.
        let reference = |parts: &[&[u8]]| {
            let mut h = Sha256::new();
            for (i, part) in parts.iter().enumerate() {
                if i > 0 {
                    h.update([0xff]);
                }
                h.update(part);
            }
            let d = h.finalize();
            (u64::from_be_bytes(d[..8].try_into().unwrap()) >> 11) as f64 / (1u64 << 53) as f64
        };
        let long = "x".repeat(200);
        for (salt, campaign, contact) in [
            ("", "", ""),
            ("spring-2026", "spring", "contact-1"),
            (long.as_str(), "k", "u"),
            ("s", long.as_str(), "u"),
            (&long[..30], &long[..23], ""),
            (&long[..30], &long[..24], ""),
            (&long[..60], &long[..57], ""),
            (&long[..60], &long[..58], ""),
        ] {
            let parts = [salt.as_bytes(), campaign.as_bytes(), contact.as_bytes()];
            assert_eq!(unit_point(&parts), reference(&parts), "{}", salt.len());
        }
        // Unweighted (the integer fast path) and explicitly weighted 1 agree on everyone.
        let even = Splitter::new().with_salt("e");
        let ones = Splitter::new()
            .with_salt("e")
            .with_weight("A", 1.0)
            .unwrap();
        let variants = [
            VariantId::new("A"),
            VariantId::new("B"),
            VariantId::new("C"),
        ];
        let campaign = CampaignId::new("k");
        for i in 0..5000 {
            let contact = ContactId::new(format!("u{i}"));
            let r = AssignmentRequest::new(&campaign, &contact, &variants);
            assert_eq!(even.assign(&r).unwrap(), ones.assign(&r).unwrap());
        }
        // More variants than the stack holds.
        let many: Vec<VariantId> = (0..40).map(|k| VariantId::new(format!("v{k}"))).collect();
        let weighted = Splitter::new().with_weight("v39", 39.0).unwrap();
        let mut last = 0;
        for i in 0..2000 {
            let contact = ContactId::new(format!("u{i}"));
            let a = weighted
                .assign(&AssignmentRequest::new(&campaign, &contact, &many))
                .unwrap();
            if a.variant.as_str() == "v39" {
                assert_eq!(a.propensity, 0.5);
                last += 1;
            }
        }
        // Binomial(2000, 0.5): sd 22; 5 sd.
        assert!((last - 1000_i32).abs() < 112, "{last}");
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
