//! Mutually exclusive layers: experiments that split one layer's traffic.

use std::collections::BTreeMap;

use mia_core::{CampaignId, ContactId};
use serde_json::Value;

use super::{Decision, Experiment};
use crate::error::{ExperimentError, Result};
use crate::splitter::unit_point;

/// One experiment's slice `[start, end)` of the layer's unit interval.
#[derive(Clone, Debug)]
struct Slot {
    start: f64,
    end: f64,
    /// As given (`end - start` may differ in the last bit).
    share: f64,
    experiment: Experiment,
}

/// Experiments that must not overlap: each owns a slice of the layer's traffic, so a contact
/// is in at most one of them.
///
/// A contact's layer point is `SHA-256("layer", salt, contact)` in [0, 1), independent of the
/// experiments' own split; slices are laid end to end in the order experiments are added, so
/// adding one never moves the others. Traffic outside every slice is in no experiment.
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
    slots: Vec<Slot>,
}

impl Layer {
    /// An empty layer; the salt names it (use one per layer).
    pub fn new(salt: impl Into<String>) -> Self {
        Self {
            salt: salt.into(),
            slots: Vec::new(),
        }
    }

    /// Adds an experiment owning the next `share` of the layer's traffic.
    ///
    /// # Errors
    /// [`ExperimentError::InvalidInput`] for a share outside (0, 1], shares summing past 1 or
    /// an experiment id already in the layer.
    pub fn with_experiment(mut self, experiment: Experiment, share: f64) -> Result<Self> {
        let start = self.slots.last().map_or(0.0, |s| s.end);
        if !(share > 0.0 && share <= 1.0) || start + share > 1.0 + 1e-12 {
            return Err(ExperimentError::invalid(format!(
                "layer {}: share {share} of experiment {} does not fit (used {start})",
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
        self.slots.push(Slot {
            start,
            end: (start + share).min(1.0),
            share,
            experiment,
        });
        Ok(self)
    }

    /// The experiment whose slice holds the contact, if any (whatever its state or segment).
    pub fn experiment_of(&self, contact: &ContactId) -> Option<&CampaignId> {
        self.slot_of(contact).map(|i| self.slots[i].experiment.id())
    }

    fn slot_of(&self, contact: &ContactId) -> Option<usize> {
        let point = unit_point(&[b"layer", self.salt.as_bytes(), contact.as_str().as_bytes()]);
        self.slots
            .iter()
            .position(|s| s.start <= point && point < s.end)
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
}
