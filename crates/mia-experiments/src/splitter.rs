//! The deterministic splitter: `hash(salt, campaign, contact)` to a point in [0, 1), mapped onto
//! the variants by weight.
//!
//! # Hash versions
//!
//! The hash is versioned ([`HashVersion`]) so that assignments never move: a version's
//! algorithm is fixed forever, and a faster one comes as a new version.
//!
//! * **V1**: the first 8 bytes of SHA-256(salt ‖ 0xff ‖ campaign ‖ 0xff ‖ contact), big-endian.
//!   Every assignment made before versions existed was made with it; a definition stored
//!   without a version means V1 ([`HashVersion::unversioned`]).
//! * **V2** ([`HashVersion::LATEST`], the default of [`Splitter::new`],
//!   [`Experiment::new`](crate::Experiment::new) and [`Layer::new`](crate::Layer::new)):
//!   XXH3-64 (seed 0, default secret) of the same bytes, a small fraction of V1's cost; see
//!   [`HashVersion`] for why this algorithm.
//!
//! Either way the point is the top 53 bits over 2^53, so weights and propensities keep full
//! `f64` precision. Code that recreates a splitter, experiment or layer at start-up which
//! already assigned contacts under V1 (any made with mia before hash versions) must say so
//! with `.with_hash(HashVersion::V1)`: otherwise its contacts are hashed anew under V2 (an
//! [`Experiment`](crate::Experiment)'s restored decisions stay, but a [`Splitter`] has no
//! store and a [`Layer`](crate::Layer)'s slices are the hash alone). Golden-value tests pin
//! both versions; a failing one means contacts would move, and is never "fixed" by updating
//! the value.
//!
//! [`Splitter::choose`] gives the decision without copying the variant (a [`Pick`] borrowing
//! it from the request); the [`Allocator`] seam's owned [`Assignment`] copies it once.

use mia_core::{Allocator, Assignment, AssignmentRequest, VariantId};

use crate::error::ExperimentError;
use crate::hash::HashVersion;

/// A weighted, salted, sticky split.
///
/// The same (salt, campaign, contact) always lands on the same point under the splitter's
/// [`HashVersion`], so assignment survives restarts and agrees across workers without any
/// shared state. Variants without a weight get weight 1. The propensity logged with each
/// assignment is the variant's share of the total weight among the variants on offer.
///
/// A splitter that assigned contacts before hash versions existed hashed with
/// [`HashVersion::V1`]; recreate it with `.with_hash(HashVersion::V1)` to keep them where they
/// are.
///
/// ```
/// use mia_core::{AssignmentRequest, CampaignId, ContactId, VariantId};
/// use mia_experiments::{HashVersion, Splitter};
/// let variants = [VariantId::new("A"), VariantId::new("B")];
/// let (campaign, contact) = (CampaignId::new("spring"), ContactId::new("u-42"));
/// let request = AssignmentRequest::new(&campaign, &contact, &variants);
/// // A new split (XXH3, V2), and one that keeps V1's assignments.
/// let new = Splitter::new().with_salt("spring-2026");
/// let old = Splitter::new().with_salt("spring-2026").with_hash(HashVersion::V1);
/// assert_eq!(new.hash(), HashVersion::V2);
/// // `choose` borrows the variant from the request: no copy on the hot path.
/// let pick = old.choose(&request)?;
/// assert_eq!(pick.variant, &variants[pick.index]);
/// assert_eq!(pick.propensity, 0.5);
/// # Ok::<(), mia_experiments::ExperimentError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Splitter {
    salt: String,
    /// Sorted by variant, one entry per variant: searched by scanning while short (cheaper
    /// than a tree of strings for the few weighted variants of a real split), by halves after.
    weights: Vec<(VariantId, f64)>,
    hash: HashVersion,
}

/// Up to this many weights are looked up by a linear scan.
const SCAN_WEIGHTS: usize = 8;

impl Default for Splitter {
    fn default() -> Self {
        Self::new()
    }
}

/// A [`Splitter`]'s choice, borrowing the variant from the request instead of copying it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pick<'a> {
    /// The variant's position in the request's variants.
    pub index: usize,
    /// The variant.
    pub variant: &'a VariantId,
    /// Its share of the total weight on offer, in (0, 1].
    pub propensity: f64,
}

impl Splitter {
    /// An even split with an empty salt, hashing with [`HashVersion::LATEST`].
    pub fn new() -> Self {
        Self {
            salt: String::new(),
            weights: Vec::new(),
            hash: HashVersion::LATEST,
        }
    }

    /// Sets the salt; a new salt reshuffles everyone (use one per experiment).
    #[must_use]
    pub fn with_salt(mut self, salt: impl Into<String>) -> Self {
        self.salt = salt.into();
        self
    }

    /// Sets the hash version; a different version reshuffles everyone. Use
    /// [`HashVersion::V1`] for a split that assigned contacts before versions existed.
    #[must_use]
    pub fn with_hash(mut self, version: HashVersion) -> Self {
        self.hash = version;
        self
    }

    /// The hash version.
    pub fn hash(&self) -> HashVersion {
        self.hash
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
        match self.weights.binary_search_by(|(v, _)| v.cmp(&variant)) {
            Ok(i) => self.weights[i].1 = weight,
            Err(i) => self.weights.insert(i, (variant, weight)),
        }
        Ok(self)
    }

    /// The point in [0, 1) of a contact: the splitter's [`HashVersion`] of
    /// salt ‖ 0xff ‖ campaign ‖ 0xff ‖ contact.
    pub fn point(&self, campaign: &str, contact: &str) -> f64 {
        self.hash.point(&[
            self.salt.as_bytes(),
            campaign.as_bytes(),
            contact.as_bytes(),
        ])
    }

    /// The request's variant for its contact, borrowed from the request, with its propensity:
    /// the same choice as [`Allocator::assign`] without copying the variant.
    ///
    /// # Errors
    /// [`ExperimentError::NoVariants`] when the request offers none.
    pub fn choose<'a>(&self, request: &AssignmentRequest<'a>) -> Result<Pick<'a>, ExperimentError> {
        let variants = request.variants;
        if variants.is_empty() {
            return Err(ExperimentError::NoVariants(request.campaign.to_string()));
        }
        let point = self.point(request.campaign.as_str(), request.contact.as_str());
        let n = variants.len();
        let (index, propensity) = if self.weights.is_empty() {
            // Every weight is 1: the boundaries are the integers, so the weighted rule lands
            // on `floor(target)` (the last variant when rounding reaches `n`).
            let index = ((point * n as f64) as usize).min(n - 1);
            (index, 1.0 / n as f64)
        } else {
            self.weighted_index(point, variants)
        };
        Ok(Pick {
            index,
            variant: &variants[index],
            propensity,
        })
    }

    fn weight(&self, v: &VariantId) -> f64 {
        let found = if self.weights.len() <= SCAN_WEIGHTS {
            self.weights
                .iter()
                .find(|(known, _)| same_id(known.as_str(), v.as_str()))
        } else {
            self.weights
                .binary_search_by(|(known, _)| known.cmp(v))
                .ok()
                .map(|i| &self.weights[i])
        };
        found.map_or(1.0, |(_, w)| *w)
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

/// `a == b`, comparing short ids byte by byte in place: a call to `memcmp` per weighted
/// variant was a fifth of a ten-variant decision.
fn same_id(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    if a.len() <= 16 {
        a.iter().zip(b).all(|(x, y)| x == y)
    } else {
        a == b
    }
}

impl Allocator for Splitter {
    /// [`choose`](Splitter::choose), with the variant copied into the seam's owned type.
    fn assign(&self, request: &AssignmentRequest<'_>) -> mia_core::Result<Assignment> {
        let pick = self.choose(request)?;
        Ok(Assignment {
            variant: pick.variant.clone(),
            propensity: pick.propensity,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use mia_core::{CampaignId, ContactId};
    use sha2::{Digest, Sha256};
    use std::collections::BTreeMap;

    const BOTH: [HashVersion; 2] = [HashVersion::V1, HashVersion::V2];

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
        for version in BOTH {
            let s = Splitter::new()
                .with_salt("exp-1")
                .with_hash(version)
                .with_weight("A", 3.0)
                .unwrap();
            let variants = [VariantId::new("A"), VariantId::new("B")];
            let got = shares(&s, &variants, 20_000);
            let a = got[&VariantId::new("A")] as f64;
            // Binomial(20000, 0.75): sd = 61; allow 5 sd.
            assert!((a - 15_000.0).abs() < 310.0, "{version}: A got {a}");
        }
    }

    #[test]
    fn assignment_is_sticky_and_the_salt_and_version_reshuffle() {
        let variants = [VariantId::new("A"), VariantId::new("B")];
        for version in BOTH {
            let one = Splitter::new().with_salt("x").with_hash(version);
            let campaign = CampaignId::new("k");
            let (mut salt_moved, mut version_moved) = (0, 0);
            for i in 0..1000 {
                let contact = ContactId::new(format!("u{i}"));
                let r = AssignmentRequest::new(&campaign, &contact, &variants);
                let first = one.assign(&r).unwrap();
                assert_eq!(first, one.assign(&r).unwrap());
                assert_eq!(first.propensity, 0.5);
                let other_salt = Splitter::new().with_salt("y").with_hash(version);
                if other_salt.assign(&r).unwrap().variant != first.variant {
                    salt_moved += 1;
                }
                let other_version = if version == HashVersion::V1 {
                    HashVersion::V2
                } else {
                    HashVersion::V1
                };
                let other = Splitter::new().with_salt("x").with_hash(other_version);
                if other.assign(&r).unwrap().variant != first.variant {
                    version_moved += 1;
                }
            }
            // Independent salts (or hashes) disagree about half the time.
            assert!((400..600).contains(&salt_moved), "{version}: {salt_moved}");
            assert!(
                (400..600).contains(&version_moved),
                "{version}: {version_moved}"
            );
        }
    }

    #[test]
    fn bad_weights_and_empty_variants_are_errors() {
        assert!(Splitter::new().with_weight("A", 0.0).is_err());
        assert!(Splitter::new().with_weight("A", f64::NAN).is_err());
        let (campaign, contact) = (CampaignId::new("k"), ContactId::new("u"));
        let r = AssignmentRequest::new(&campaign, &contact, &[]);
        assert!(Splitter::new().assign(&r).is_err());
        assert!(Splitter::new().choose(&r).is_err());
    }

    #[test]
    fn new_splitters_hash_with_the_latest_version() {
        assert_eq!(Splitter::new().hash(), HashVersion::LATEST);
        assert_eq!(Splitter::default().hash(), HashVersion::V2);
        let s = Splitter::new().with_salt("s");
        assert_eq!(
            s.point("k", "u"),
            s.clone().with_hash(HashVersion::V2).point("k", "u")
        );
    }

    /// Pinned assignments: if one of these changes, contacts moved. Never update them; add a
    /// hash version instead. Values computed independently (Python's hashlib for V1, the
    /// reference C xxHash for V2) with the same weighted rule.
    #[test]
    fn golden_assignments_never_change() {
        let variants = [
            VariantId::new("A"),
            VariantId::new("B"),
            VariantId::new("C"),
        ];
        let campaign = CampaignId::new("spring");
        let expected = [
            (HashVersion::V1, "ABABAAAAACACBCABBCAA"),
            (HashVersion::V2, "AAACABACAAAACAAACAAA"),
        ];
        for (version, letters) in expected {
            let split = Splitter::new()
                .with_salt("spring-2026")
                .with_hash(version)
                .with_weight("A", 2.0)
                .unwrap();
            let got: String = (0..20)
                .map(|i| {
                    let contact = ContactId::new(format!("contact-{i}"));
                    let pick = split
                        .choose(&AssignmentRequest::new(&campaign, &contact, &variants))
                        .unwrap();
                    assert_eq!(pick.propensity, if pick.index == 0 { 0.5 } else { 0.25 });
                    pick.variant.as_str().to_owned()
                })
                .collect();
            assert_eq!(got, letters, "{version}");
        }
        // The even split's integer fast path, ten arms.
        let arms: Vec<VariantId> = (0..10).map(|k| VariantId::new(format!("{k}"))).collect();
        for (version, digits) in [
            (HashVersion::V1, "27453323181768056841"),
            (HashVersion::V2, "33481649343490317311"),
        ] {
            let split = Splitter::new().with_salt("spring-2026").with_hash(version);
            let got: String = (0..20)
                .map(|i| {
                    let contact = ContactId::new(format!("contact-{i}"));
                    let pick = split
                        .choose(&AssignmentRequest::new(&campaign, &contact, &arms))
                        .unwrap();
                    assert_eq!(pick.propensity, 0.1);
                    pick.variant.as_str().to_owned()
                })
                .collect();
            assert_eq!(got, digits, "{version}");
        }
    }

    #[test]
    fn weights_are_found_by_scan_and_by_search() {
        // Up to 8 weights are scanned, more are searched; a weight set twice is replaced.
        for count in [1, 8, 9, 30] {
            let mut split = Splitter::new().with_weight("v0", 5.0).unwrap();
            for k in (0..count).rev() {
                split = split.with_weight(format!("v{k}"), k as f64 + 1.0).unwrap();
            }
            assert_eq!(split.weights.len(), count);
            let arms: Vec<VariantId> = (0..40).map(|k| VariantId::new(format!("v{k}"))).collect();
            let total: f64 = (0..40)
                .map(|k| if k < count { k as f64 + 1.0 } else { 1.0 })
                .sum();
            let campaign = CampaignId::new("k");
            for i in 0..300 {
                let contact = ContactId::new(format!("u{i}"));
                let pick = split
                    .choose(&AssignmentRequest::new(&campaign, &contact, &arms))
                    .unwrap();
                let weight = if pick.index < count {
                    pick.index as f64 + 1.0
                } else {
                    1.0
                };
                assert_eq!(pick.propensity, weight / total, "{count} weights");
            }
        }
    }

    #[test]
    fn choose_and_assign_agree() {
        for version in BOTH {
            let split = Splitter::new()
                .with_hash(version)
                .with_weight("v3", 4.0)
                .unwrap();
            let arms: Vec<VariantId> = (0..10).map(|k| VariantId::new(format!("v{k}"))).collect();
            let campaign = CampaignId::new("k");
            for i in 0..500 {
                let contact = ContactId::new(format!("u{i}"));
                let r = AssignmentRequest::new(&campaign, &contact, &arms);
                let pick = split.choose(&r).unwrap();
                let a = split.assign(&r).unwrap();
                assert_eq!((pick.variant, pick.propensity), (&a.variant, a.propensity));
                assert_eq!(pick.variant, &arms[pick.index]);
            }
        }
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
            assert_eq!(
                HashVersion::V1.point(&parts),
                reference(&parts),
                "{}",
                salt.len()
            );
        }
        for version in BOTH {
            // Unweighted (the integer fast path) and explicitly weighted 1 agree on everyone.
            let even = Splitter::new().with_salt("e").with_hash(version);
            let ones = even.clone().with_weight("A", 1.0).unwrap();
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
            let weighted = Splitter::new()
                .with_hash(version)
                .with_weight("v39", 39.0)
                .unwrap();
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
            assert!((last - 1000_i32).abs() < 112, "{version}: {last}");
        }
    }

    #[test]
    fn points_are_uniform_enough() {
        for version in BOTH {
            let s = Splitter::new().with_hash(version);
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
            assert!(chi < 27.9, "{version}: chi-square {chi}");
        }
    }
}
