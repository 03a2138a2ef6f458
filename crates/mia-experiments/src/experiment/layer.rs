//! Mutually exclusive layers: experiments that split one layer's traffic.

use std::collections::BTreeMap;

use mia_core::{CampaignId, ContactId};
use serde_json::Value;

use super::{Decision, Exclusion, Experiment};
use crate::error::{ExperimentError, Result};
use crate::hash::HashVersion;

/// One experiment's slice of the layer's unit interval: one range `[start, end)`, or several
/// when it filled gaps left by removed experiments.
#[derive(Clone, Debug)]
struct Slot {
    ranges: Vec<(f64, f64)>,
    /// As given (the ranges' total may differ in the last bit).
    share: f64,
    experiment: Experiment,
}

impl Slot {
    fn holds(&self, point: f64) -> bool {
        self.ranges
            .iter()
            .any(|&(start, end)| start <= point && point < end)
    }
}

/// Slack for shares that add up to 1 in decimal but not quite in binary.
const SHARE_SLACK: f64 = 1e-12;

/// Experiments that must not overlap: each owns a slice of the layer's traffic, so a contact
/// is in at most one of them.
///
/// A contact's layer point is `hash("layer", salt, contact)` in [0, 1) under the layer's
/// [`HashVersion`] (its own, independent of its experiments'), independent of the experiments'
/// own split; slices are laid end to end in the order experiments are added, so adding one
/// never moves the others. Traffic outside every slice is in no experiment.
///
/// The slices are the hash alone (no store), so the version must never change for a layer
/// that holds contacts: a layer that assigned contacts before hash versions existed used
/// [`HashVersion::V1`] and is recreated with `.with_hash(HashVersion::V1)`, otherwise its
/// contacts move between its experiments.
///
/// [`remove_experiment`](Layer::remove_experiment) frees an experiment's slice without moving
/// any other: every other contact keeps its experiment and decision. A later experiment takes
/// the free traffic from the lowest point up, gaps first, so it may own several ranges.
///
/// ```
/// use mia_core::{ContactId, VariantId};
/// use mia_experiments::{Experiment, Layer};
/// let variants = || [VariantId::new("A"), VariantId::new("B")];
/// let mut layer = Layer::new("pricing")
///     .with_experiment(Experiment::new("price-copy", variants())?, 0.5)?
///     .with_experiment(Experiment::new("price-emoji", variants())?, 0.5)?;
/// for id in ["price-copy", "price-emoji"] {
///     layer.experiment_mut(&id.into()).map(|e| e.start()).transpose()?;
/// }
/// let (experiment, _decision) = layer
///     .assign(&ContactId::new("u-1"), &Default::default())
///     .expect("the slices cover the layer");
/// assert!(experiment.as_str().starts_with("price-"));
/// # Ok::<(), mia_experiments::ExperimentError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Layer {
    salt: String,
    hash: HashVersion,
    slots: Vec<Slot>,
}

impl Layer {
    /// An empty layer hashing with [`HashVersion::LATEST`]; the salt names it (use one per
    /// layer).
    pub fn new(salt: impl Into<String>) -> Self {
        Self {
            salt: salt.into(),
            hash: HashVersion::LATEST,
            slots: Vec::new(),
        }
    }

    /// Sets the hash version of the layer point. A different version moves contacts between
    /// the layer's experiments: set it when the layer is created, and use [`HashVersion::V1`]
    /// for a layer that assigned contacts before hash versions existed.
    #[must_use]
    pub fn with_hash(mut self, version: HashVersion) -> Self {
        self.hash = version;
        self
    }

    /// The hash version of the layer point.
    pub fn hash(&self) -> HashVersion {
        self.hash
    }

    /// Adds an experiment owning the next `share` of the layer's traffic.
    ///
    /// # Errors
    /// [`ExperimentError::InvalidInput`] for a share outside (0, 1], shares summing past 1 or
    /// an experiment id already in the layer.
    pub fn with_experiment(mut self, experiment: Experiment, share: f64) -> Result<Self> {
        self.add_experiment(experiment, share)?;
        Ok(self)
    }

    /// Adds an experiment owning `share` of the layer's free traffic, taken from the lowest
    /// free point up (gaps left by removed experiments first); no other experiment moves.
    ///
    /// # Errors
    /// [`ExperimentError::InvalidInput`], adding nothing, for a share outside (0, 1], more
    /// than the free share ([`free_share`](Layer::free_share)) or an experiment id already in
    /// the layer.
    pub fn add_experiment(&mut self, experiment: Experiment, share: f64) -> Result<()> {
        let free = self.free_ranges();
        let available: f64 = free.iter().map(|(start, end)| end - start).sum();
        if !(share > 0.0 && share <= 1.0) || share > available + SHARE_SLACK {
            return Err(ExperimentError::invalid(format!(
                "layer {}: share {share} of experiment {} does not fit (free {available})",
                self.salt,
                experiment.id()
            )));
        }
        if self.experiment(experiment.id()).is_some() {
            return Err(ExperimentError::invalid(format!(
                "layer {}: experiment {} added twice",
                self.salt,
                experiment.id()
            )));
        }
        let mut ranges = Vec::new();
        let mut needed = share;
        for (start, end) in free {
            if needed <= SHARE_SLACK {
                break;
            }
            let stop = (start + needed).min(end);
            ranges.push((start, stop));
            needed -= stop - start;
        }
        self.slots.push(Slot {
            ranges,
            share,
            experiment,
        });
        Ok(())
    }

    /// Removes an experiment and frees its slice; returns it (with its decisions, for the
    /// host to archive), or `None` when it is not in the layer. Every other experiment keeps
    /// its slice, so every other contact keeps its experiment and decision. The freed traffic
    /// is in no experiment until [`add_experiment`](Layer::add_experiment) gives it out again.
    pub fn remove_experiment(&mut self, id: &CampaignId) -> Option<Experiment> {
        let i = self.slots.iter().position(|s| s.experiment.id() == id)?;
        Some(self.slots.remove(i).experiment)
    }

    /// The share of the layer's traffic in no experiment.
    pub fn free_share(&self) -> f64 {
        self.free_ranges()
            .iter()
            .map(|(start, end)| end - start)
            .sum()
    }

    /// The layer's name (its salt).
    pub fn salt(&self) -> &str {
        &self.salt
    }

    /// The experiments of the layer, in the order they were added.
    pub fn experiments(&self) -> impl Iterator<Item = &Experiment> {
        self.slots.iter().map(|s| &s.experiment)
    }

    /// The parts of [0, 1) no slot owns, in increasing order.
    fn free_ranges(&self) -> Vec<(f64, f64)> {
        let mut used: Vec<(f64, f64)> = self
            .slots
            .iter()
            .flat_map(|s| s.ranges.iter().copied())
            .collect();
        used.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut free = Vec::new();
        let mut at = 0.0;
        for (start, end) in used {
            if start > at {
                free.push((at, start));
            }
            at = f64::max(at, end);
        }
        if at < 1.0 {
            free.push((at, 1.0));
        }
        free
    }

    /// The experiment whose slice holds the contact, if any (whatever its state or segment).
    pub fn experiment_of(&self, contact: &ContactId) -> Option<&CampaignId> {
        self.slot_of(contact).map(|i| self.slots[i].experiment.id())
    }

    fn slot_of(&self, contact: &ContactId) -> Option<usize> {
        let point = self
            .hash
            .point(&[b"layer", self.salt.as_bytes(), contact.as_str().as_bytes()]);
        self.slots.iter().position(|s| s.holds(point))
    }

    /// The share of the layer's traffic an experiment owns.
    pub fn share(&self, id: &CampaignId) -> Option<f64> {
        self.slots
            .iter()
            .find(|s| s.experiment.id() == id)
            .map(|s| s.share)
    }

    /// An experiment of the layer.
    pub fn experiment(&self, id: &CampaignId) -> Option<&Experiment> {
        self.slots
            .iter()
            .map(|s| &s.experiment)
            .find(|e| e.id() == id)
    }

    /// An experiment of the layer, to start, stop, reweight or restore.
    pub fn experiment_mut(&mut self, id: &CampaignId) -> Option<&mut Experiment> {
        self.slots
            .iter_mut()
            .map(|s| &mut s.experiment)
            .find(|e| e.id() == id)
    }

    /// The contact's experiment in this layer and its decision there
    /// ([`Experiment::assign`]); `None` when the contact's point falls outside every slice.
    /// The decision's propensity is conditional on the slice: multiply by
    /// [`share`](Layer::share) for the probability over all traffic.
    pub fn assign(
        &mut self,
        contact: &ContactId,
        attributes: &BTreeMap<String, Value>,
    ) -> Option<(CampaignId, Decision)> {
        let i = self.slot_of(contact)?;
        let experiment = &mut self.slots[i].experiment;
        let decision = experiment.assign(contact, attributes);
        Some((experiment.id().clone(), decision))
    }

    /// The contact's decision in one experiment of the layer: [`Experiment::assign`] when the
    /// contact's point is in that experiment's slice, [`Exclusion::OutsideLayerSlice`]
    /// otherwise (no other experiment is asked, so none stores a decision). `None` when the
    /// experiment is not in the layer.
    pub fn assign_in(
        &mut self,
        id: &CampaignId,
        contact: &ContactId,
        attributes: &BTreeMap<String, Value>,
    ) -> Option<Decision> {
        let i = self.slots.iter().position(|s| s.experiment.id() == id)?;
        if self.slot_of(contact) != Some(i) {
            return Some(Decision::Excluded {
                reason: Exclusion::OutsideLayerSlice,
            });
        }
        Some(self.slots[i].experiment.assign(contact, attributes))
    }
}
