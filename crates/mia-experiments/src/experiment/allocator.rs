//! Experiments and layers behind the `Allocator` seam: the agent asks, the experiment decides
//! (variant, holdout or exclusion), and a held-out contact gets no message.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use mia_core::{
    Allocation, Allocator, Assignment, AssignmentRequest, CampaignId, ContactId, EvenSplit, Reward,
};

use super::{Decision, Experiment, ExperimentState, Layer};
use crate::error::{ExperimentError, Result};

#[derive(Default)]
struct Registry {
    /// Experiments on their own, by id.
    experiments: HashMap<CampaignId, Experiment>,
    /// Layers of mutually exclusive experiments.
    layers: Vec<Layer>,
}

impl Registry {
    fn knows(&self, id: &CampaignId) -> bool {
        self.experiments.contains_key(id) || self.layers.iter().any(|l| l.experiment(id).is_some())
    }

    fn experiment_mut(&mut self, id: &CampaignId) -> Option<&mut Experiment> {
        if let Some(e) = self.experiments.get_mut(id) {
            return Some(e);
        }
        self.layers.iter_mut().find_map(|l| l.experiment_mut(id))
    }

    fn experiment(&self, id: &CampaignId) -> Option<&Experiment> {
        self.experiments
            .get(id)
            .or_else(|| self.layers.iter().find_map(|l| l.experiment(id)))
    }
}

/// Running [`Experiment`]s (alone or in [`Layer`]s) as the agent's
/// [`Allocator`]: a campaign whose id is an experiment's id is decided by that experiment;
/// any other campaign by the fallback allocator ([`EvenSplit`] unless set).
///
/// The agent calls [`Allocator::allocate`] with the contact's attributes, and:
/// * a **variant** decision is sent, logged on the job with its propensity;
/// * a **holdout** decision sends nothing: the job is finished as skipped with the rule
///   [`mia_core::HOLDOUT_RULE`] and a `skipped` event, so reports count the comparison group
///   (`CampaignReport::skipped["experiment_holdout"]`) and lift against it can be measured;
/// * an **exclusion** (outside the segment, outside the experiment's layer slice, or the
///   experiment is stopped) sends nothing either, with the rule `experiment_<reason>`
///   (`experiment_not_targeted`, `experiment_outside_layer_slice`, `experiment_not_running`);
/// * while the experiment is still a **draft**, its campaign's jobs get an error: the agent
///   sets them aside as dead letters, to requeue once the experiment runs.
///
/// Decisions are sticky: each experiment keeps them (with their propensity) and returns them
/// as-is; the first decision comes from the hash rule under the experiment's own
/// [`HashVersion`](crate::HashVersion) (and, in a layer, the layer's slice under the layer's),
/// so workers with the same configuration agree without shared state, and experiments of
/// either version run side by side. Persist [`decisions`](ExperimentAllocator::decisions) and give
/// them back with [`restore`](ExperimentAllocator::restore) at start-up to keep them across
/// restarts and weight changes.
///
/// A request that offers none of the experiment's variants (a journey step with its own copy)
/// goes to the fallback; a variant decision that is not offered while others of the
/// experiment are is an error (the campaign's approved variants and the experiment disagree),
/// so the job is set aside for a person instead of sending the wrong copy.
///
/// ```
/// use mia_core::{Allocation, Allocator, AssignmentRequest, CampaignId, ContactId, VariantId};
/// use mia_experiments::{Experiment, ExperimentAllocator};
/// let variants = [VariantId::new("A"), VariantId::new("B")];
/// let mut exp = Experiment::new("spring", variants.clone())?.with_holdout(0.2)?;
/// exp.start()?;
/// let allocator = ExperimentAllocator::new().with_experiment(exp)?;
/// let campaign = CampaignId::new("spring");
/// let contact = ContactId::new("u-1");
/// match allocator.allocate(&AssignmentRequest::new(&campaign, &contact, &variants))? {
///     Allocation::Variant(a) => assert!((a.propensity - 0.4).abs() < 1e-12),
///     Allocation::Holdout { propensity } => assert_eq!(propensity, 0.2),
///     other => unreachable!("{other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ExperimentAllocator {
    registry: Mutex<Registry>,
    fallback: Arc<dyn Allocator>,
}

impl Default for ExperimentAllocator {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for ExperimentAllocator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let registry = self.lock();
        f.debug_struct("ExperimentAllocator")
            .field(
                "experiments",
                &registry.experiments.keys().collect::<Vec<_>>(),
            )
            .field(
                "layers",
                &registry.layers.iter().map(Layer::salt).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl ExperimentAllocator {
    /// No experiments yet; other campaigns split evenly ([`EvenSplit`], the agent's default).
    pub fn new() -> Self {
        Self {
            registry: Mutex::new(Registry::default()),
            fallback: Arc::new(EvenSplit),
        }
    }

    /// Campaigns without an experiment go to `allocator` (a [`Splitter`](crate::Splitter), a
    /// [`Bandit`](crate::bandit::Bandit), ...), which also receives every reward.
    #[must_use]
    pub fn with_fallback(mut self, allocator: impl Allocator + 'static) -> Self {
        self.fallback = Arc::new(allocator);
        self
    }

    /// Adds an experiment on its own (builder form of
    /// [`add_experiment`](ExperimentAllocator::add_experiment)).
    ///
    /// # Errors
    /// As [`add_experiment`](ExperimentAllocator::add_experiment).
    pub fn with_experiment(self, experiment: Experiment) -> Result<Self> {
        self.add_experiment(experiment)?;
        Ok(self)
    }

    /// Adds a layer (builder form of [`add_layer`](ExperimentAllocator::add_layer)).
    ///
    /// # Errors
    /// As [`add_layer`](ExperimentAllocator::add_layer).
    pub fn with_layer(self, layer: Layer) -> Result<Self> {
        self.add_layer(layer)?;
        Ok(self)
    }

    /// Adds an experiment on its own, also while the agent runs (share the allocator as an
    /// `Arc`): campaign `experiment.id()` is decided by it from now on.
    ///
    /// # Errors
    /// [`ExperimentError::InvalidInput`] when an experiment with that id is already here.
    pub fn add_experiment(&self, experiment: Experiment) -> Result<()> {
        let mut registry = self.lock();
        if registry.knows(experiment.id()) {
            return Err(ExperimentError::invalid(format!(
                "experiment {} added twice",
                experiment.id()
            )));
        }
        registry
            .experiments
            .insert(experiment.id().clone(), experiment);
        Ok(())
    }

    /// Adds a layer; each of its experiments decides its own campaign, for the contacts in
    /// its slice.
    ///
    /// # Errors
    /// [`ExperimentError::InvalidInput`] when a layer with the same salt, or an experiment
    /// with the id of one of the layer's, is already here.
    pub fn add_layer(&self, layer: Layer) -> Result<()> {
        let mut registry = self.lock();
        if registry.layers.iter().any(|l| l.salt() == layer.salt()) {
            return Err(ExperimentError::invalid(format!(
                "layer {} added twice",
                layer.salt()
            )));
        }
        if let Some(e) = layer.experiments().find(|e| registry.knows(e.id())) {
            return Err(ExperimentError::invalid(format!(
                "experiment {} added twice",
                e.id()
            )));
        }
        registry.layers.push(layer);
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        // Every change under the lock is a whole insert or a whole call on an experiment, so
        // a panic elsewhere leaves nothing half-written.
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes an experiment while the agent runs (start, stop, conclude, reweight): calls
    /// `change` on it and returns its answer, or `None` when no experiment has this id.
    pub fn update_experiment<R>(
        &self,
        id: &CampaignId,
        change: impl FnOnce(&mut Experiment) -> R,
    ) -> Option<R> {
        self.lock().experiment_mut(id).map(change)
    }

    /// Changes a layer while the agent runs (for example [`Layer::add_experiment`]): calls
    /// `change` on the layer with this salt and returns its answer, or `None` when there is
    /// none. An experiment added this way must not reuse the id of one elsewhere here (the
    /// first registered would decide its campaign).
    pub fn update_layer<R>(&self, salt: &str, change: impl FnOnce(&mut Layer) -> R) -> Option<R> {
        self.lock()
            .layers
            .iter_mut()
            .find(|l| l.salt() == salt)
            .map(change)
    }

    /// Removes an experiment, on its own or from its layer ([`Layer::remove_experiment`]: its
    /// traffic is freed, every other experiment keeps its contacts and decisions), and returns
    /// it with its decisions; `None` for an unknown id. Its campaign goes to the fallback from
    /// now on.
    pub fn remove_experiment(&self, id: &CampaignId) -> Option<Experiment> {
        let mut registry = self.lock();
        if let Some(e) = registry.experiments.remove(id) {
            return Some(e);
        }
        registry
            .layers
            .iter_mut()
            .find_map(|l| l.remove_experiment(id))
    }

    /// The decisions an experiment has made (variants and holdouts, with their propensities),
    /// for the host to persist; empty for an unknown id.
    pub fn decisions(&self, id: &CampaignId) -> Vec<(ContactId, Decision)> {
        self.lock().experiment(id).map_or_else(Vec::new, |e| {
            e.assignments()
                .map(|(c, d)| (c.clone(), d.clone()))
                .collect()
        })
    }

    /// Gives an experiment back its persisted decisions ([`Experiment::restore`]).
    ///
    /// # Errors
    /// [`ExperimentError::InvalidInput`] for an unknown id, or as [`Experiment::restore`].
    pub fn restore(
        &self,
        id: &CampaignId,
        decisions: impl IntoIterator<Item = (ContactId, Decision)>,
    ) -> Result<()> {
        self.lock()
            .experiment_mut(id)
            .ok_or_else(|| ExperimentError::invalid(format!("no experiment {id}")))?
            .restore(decisions)
    }

    /// The experiment's decision for the request and whether the request offers any of its
    /// variants, or `None` when no experiment has the campaign's id.
    ///
    /// # Errors
    /// [`ExperimentError::InvalidInput`] while the experiment is a draft.
    fn decide(&self, request: &AssignmentRequest<'_>) -> Option<Result<(Decision, bool)>> {
        let mut registry = self.lock();
        let id = request.campaign;
        let experiment = registry.experiment(id)?;
        if *experiment.state() == ExperimentState::Draft {
            // Its campaign is sending before the experiment started: a configuration mistake.
            // An error sets the job aside (a dead letter to requeue once the experiment runs)
            // instead of finishing it for good as a skip.
            return Some(Err(ExperimentError::invalid(format!(
                "experiment {id} is a draft: start it before its campaign sends"
            ))));
        }
        let offers_any = offers_any(experiment, request);
        let decision = if let Some(e) = registry.experiments.get_mut(id) {
            e.assign(request.contact, request.attributes)
        } else {
            registry
                .layers
                .iter_mut()
                .find_map(|l| l.assign_in(id, request.contact, request.attributes))?
        };
        Some(Ok((decision, offers_any)))
    }
}

/// Whether the request offers at least one of the experiment's variants.
fn offers_any(experiment: &Experiment, request: &AssignmentRequest<'_>) -> bool {
    experiment
        .variants()
        .iter()
        .any(|(v, _)| request.variants.contains(v))
}

impl Allocator for ExperimentAllocator {
    /// The variant only: a holdout or an exclusion is an [`mia_core::Error::InvalidInput`]
    /// (there is no variant to send). The agent calls [`allocate`](Allocator::allocate).
    fn assign(&self, request: &AssignmentRequest<'_>) -> mia_core::Result<Assignment> {
        match self.allocate(request)? {
            Allocation::Variant(a) => Ok(a),
            other => Err(mia_core::Error::invalid(format!(
                "campaign {}: contact {} gets no variant ({})",
                request.campaign,
                request.contact,
                other.skip_rule().unwrap_or_default()
            ))),
        }
    }

    fn allocate(&self, request: &AssignmentRequest<'_>) -> mia_core::Result<Allocation> {
        if request.variants.is_empty() {
            return Err(ExperimentError::NoVariants(request.campaign.to_string()).into());
        }
        let Some(decided) = self.decide(request) else {
            return self.fallback.allocate(request);
        };
        let (decision, offers_any) = decided?;
        Ok(match decision {
            Decision::Variant {
                variant,
                propensity,
            } => {
                if !request.variants.contains(&variant) {
                    if !offers_any {
                        return self.fallback.allocate(request);
                    }
                    return Err(ExperimentError::invalid(format!(
                        "experiment {}: contact {} has variant {variant}, which is not offered",
                        request.campaign, request.contact
                    ))
                    .into());
                }
                Allocation::Variant(Assignment {
                    variant,
                    propensity,
                })
            }
            Decision::Holdout { propensity } => Allocation::Holdout { propensity },
            Decision::Excluded { reason } => Allocation::Excluded {
                reason: reason.name().to_owned(),
            },
        })
    }

    fn observe(&self, reward: &Reward) {
        self.fallback.observe(reward);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;

    use mia_core::VariantId;
    use serde_json::{Value, json};

    use super::*;
    use crate::{HashVersion, Segment};

    fn variants() -> [VariantId; 2] {
        [VariantId::new("A"), VariantId::new("B")]
    }

    fn running(id: &str, holdout: f64) -> Experiment {
        let mut e = Experiment::new(id, variants())
            .unwrap()
            .with_holdout(holdout)
            .unwrap();
        e.start().unwrap();
        e
    }

    fn allocate(
        a: &ExperimentAllocator,
        campaign: &str,
        contact: &str,
        offered: &[VariantId],
        attributes: &BTreeMap<String, Value>,
    ) -> mia_core::Result<Allocation> {
        let (campaign, contact) = (CampaignId::new(campaign), ContactId::new(contact));
        a.allocate(
            &AssignmentRequest::new(&campaign, &contact, offered).with_attributes(attributes),
        )
    }

    #[test]
    fn holdouts_exclusions_and_variants_map_onto_the_seam() {
        let exp = running("spring", 0.3).with_segment(Segment::equals("plan", "pro"));
        let a = ExperimentAllocator::new().with_experiment(exp).unwrap();
        let pro = [("plan".to_owned(), json!("pro"))].into_iter().collect();
        let free = [("plan".to_owned(), json!("free"))].into_iter().collect();
        let (mut held, mut sent) = (0, 0);
        for i in 0..2000 {
            let contact = format!("u{i}");
            match allocate(&a, "spring", &contact, &variants(), &pro).unwrap() {
                Allocation::Holdout { propensity } => {
                    assert_eq!(propensity, 0.3);
                    held += 1;
                }
                Allocation::Variant(v) => {
                    assert!((v.propensity - 0.35).abs() < 1e-12);
                    sent += 1;
                }
                other => panic!("{other:?}"),
            }
            // Sticky, and the `assign` form refuses a holdout.
            let again = allocate(&a, "spring", &contact, &variants(), &pro).unwrap();
            let (campaign, id) = (CampaignId::new("spring"), ContactId::new(contact));
            let assigned = a.assign(&AssignmentRequest::new(&campaign, &id, &variants()));
            match again {
                Allocation::Variant(v) => assert_eq!(assigned.unwrap(), v),
                _ => assert!(assigned.is_err()),
            }
        }
        // Binomial(2000, 0.3): sd 20.5; 5 sd.
        assert!((held as f64 - 600.0).abs() < 103.0, "{held} held of {sent}");
        assert_eq!(
            allocate(&a, "spring", "x-free", &variants(), &free).unwrap(),
            Allocation::Excluded {
                reason: "not_targeted".into()
            }
        );
        assert_eq!(a.decisions(&CampaignId::new("spring")).len(), 2000);
        // Other campaigns go to the fallback (even split, propensity 1/2).
        match allocate(&a, "other", "u1", &variants(), &free).unwrap() {
            Allocation::Variant(v) => assert_eq!(v.propensity, 0.5),
            other => panic!("{other:?}"),
        }
        // A draft is a configuration mistake: an error, not a skip.
        let draft = ExperimentAllocator::new()
            .with_experiment(Experiment::new("draft", variants()).unwrap())
            .unwrap();
        let err = allocate(&draft, "draft", "u1", &variants(), &pro).unwrap_err();
        assert!(err.to_string().contains("draft"), "{err}");
        // Stopped: no treatment for anyone.
        a.update_experiment(&CampaignId::new("spring"), |e| e.stop())
            .unwrap()
            .unwrap();
        assert_eq!(
            allocate(&a, "spring", "u1", &variants(), &pro)
                .unwrap()
                .skip_rule()
                .as_deref(),
            Some("experiment_not_running")
        );
        assert!(allocate(&a, "spring", "u1", &[], &pro).is_err());
    }

    #[test]
    fn a_layer_keeps_contacts_in_their_slice_and_ids_are_unique() {
        let layer = Layer::new("pricing")
            .with_experiment(running("copy", 0.0), 0.5)
            .unwrap()
            .with_experiment(running("emoji", 0.0), 0.5)
            .unwrap();
        let a = ExperimentAllocator::new()
            .with_layer(layer.clone())
            .unwrap();
        let none = BTreeMap::new();
        for i in 0..500 {
            let contact = ContactId::new(format!("u{i}"));
            let owner = layer.experiment_of(&contact).unwrap().clone();
            for id in ["copy", "emoji"] {
                let got = allocate(&a, id, contact.as_str(), &variants(), &none).unwrap();
                if owner.as_str() == id {
                    assert!(matches!(got, Allocation::Variant(_)), "{got:?}");
                } else {
                    assert_eq!(
                        got.skip_rule().as_deref(),
                        Some("experiment_outside_layer_slice")
                    );
                }
            }
        }
        // Each experiment stored decisions for its own slice only.
        let stored = a.decisions(&CampaignId::new("copy")).len()
            + a.decisions(&CampaignId::new("emoji")).len();
        assert_eq!(stored, 500);
        // Removing "copy" keeps every "emoji" decision and sends "copy" to the fallback.
        let emoji_before = a.decisions(&CampaignId::new("emoji"));
        let removed = a.remove_experiment(&CampaignId::new("copy")).unwrap();
        assert_eq!(removed.id().as_str(), "copy");
        assert!(a.remove_experiment(&CampaignId::new("copy")).is_none());
        for (contact, decision) in &emoji_before {
            let got = allocate(&a, "emoji", contact.as_str(), &variants(), &none).unwrap();
            assert_eq!(Some(got), decision.assignment().map(Allocation::Variant));
        }
        match allocate(&a, "copy", "u1", &variants(), &none).unwrap() {
            Allocation::Variant(v) => assert_eq!(v.propensity, 0.5),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            a.update_layer("pricing", |l| l.free_share())
                .map(|f| (f * 10.0).round()),
            Some(5.0)
        );
        assert!(
            ExperimentAllocator::new()
                .with_experiment(running("copy", 0.0))
                .unwrap()
                .with_layer(layer)
                .is_err()
        );
    }

    #[test]
    fn decisions_survive_a_restart_and_a_weight_change() {
        for version in [HashVersion::V1, HashVersion::V2] {
            restart_and_weight_change(version);
        }
    }

    fn restart_and_weight_change(version: HashVersion) {
        let a = ExperimentAllocator::new()
            .with_experiment(running("spring", 0.2).with_hash(version))
            .unwrap();
        let none = BTreeMap::new();
        let first: Vec<Allocation> = (0..300)
            .map(|i| allocate(&a, "spring", &format!("u{i}"), &variants(), &none).unwrap())
            .collect();
        let saved = a.decisions(&CampaignId::new("spring"));
        // A new process with changed weights and holdout, given the saved decisions.
        let mut changed = running("spring", 0.5)
            .with_hash(version)
            .with_weight("A", 9.0)
            .unwrap();
        changed.set_holdout(0.5).unwrap();
        let b = ExperimentAllocator::new().with_experiment(changed).unwrap();
        b.restore(&CampaignId::new("spring"), saved).unwrap();
        for (i, before) in first.iter().enumerate() {
            let after = allocate(&b, "spring", &format!("u{i}"), &variants(), &none).unwrap();
            assert_eq!(&after, before, "{version}");
        }
        // A weight change while the allocator runs keeps every decision too.
        a.update_experiment(&CampaignId::new("spring"), |e| e.set_weight("B", 20.0))
            .unwrap()
            .unwrap();
        for (i, before) in first.iter().enumerate() {
            let after = allocate(&a, "spring", &format!("u{i}"), &variants(), &none).unwrap();
            assert_eq!(&after, before, "{version}");
        }
        assert!(b.restore(&CampaignId::new("nope"), Vec::new()).is_err());
    }

    #[test]
    fn unoffered_variants_fall_back_or_fail() {
        let a = ExperimentAllocator::new()
            .with_experiment(running("spring", 0.0))
            .unwrap();
        let none = BTreeMap::new();
        // A journey step with its own copy: the fallback chooses among it.
        let own = [VariantId::new("reminder")];
        match allocate(&a, "spring", "u1", &own, &none).unwrap() {
            Allocation::Variant(v) => assert_eq!(v.variant.as_str(), "reminder"),
            other => panic!("{other:?}"),
        }
        // One experiment variant offered, but the contact has the other: an error, never the
        // wrong copy.
        let mut failed = 0;
        for i in 0..50 {
            let contact = format!("v{i}");
            let only_a = [VariantId::new("A")];
            match allocate(&a, "spring", &contact, &only_a, &none) {
                Ok(Allocation::Variant(v)) => assert_eq!(v.variant.as_str(), "A"),
                Ok(other) => panic!("{other:?}"),
                Err(_) => failed += 1,
            }
        }
        assert!(failed > 0 && failed < 50, "{failed}");
    }

    #[test]
    fn each_experiment_decides_with_its_own_hash_version() {
        // The allocator asks each experiment (alone or in a layer), which hashes with the
        // version it was defined with: the same decisions as the experiment on its own.
        let layer = |version| {
            Layer::new("pricing")
                .with_hash(version)
                .with_experiment(running("copy", 0.1).with_hash(version), 0.5)
                .unwrap()
        };
        let a = ExperimentAllocator::new()
            .with_experiment(running("old", 0.1).with_hash(HashVersion::V1))
            .unwrap()
            .with_experiment(running("new", 0.1))
            .unwrap()
            .with_layer(layer(HashVersion::V1))
            .unwrap();
        let mut alone = [
            running("old", 0.1).with_hash(HashVersion::V1),
            running("new", 0.1).with_hash(HashVersion::V2),
        ];
        let mut reference = layer(HashVersion::V1);
        let none = BTreeMap::new();
        let expected = |d: Decision| match d {
            Decision::Variant {
                variant,
                propensity,
            } => Allocation::Variant(Assignment {
                variant,
                propensity,
            }),
            Decision::Holdout { propensity } => Allocation::Holdout { propensity },
            Decision::Excluded { reason } => Allocation::Excluded {
                reason: reason.name().to_owned(),
            },
        };
        for i in 0..1000 {
            let contact = ContactId::new(format!("u{i}"));
            for e in &mut alone {
                let want = expected(e.assign(&contact, &none));
                let id = e.id().as_str().to_owned();
                let have = allocate(&a, &id, contact.as_str(), &variants(), &none).unwrap();
                assert_eq!(have, want, "{id} {contact}");
            }
            let want = expected(
                reference
                    .assign_in(&CampaignId::new("copy"), &contact, &none)
                    .unwrap(),
            );
            let have = allocate(&a, "copy", contact.as_str(), &variants(), &none).unwrap();
            assert_eq!(have, want, "copy {contact}");
        }
        // The reference experiments under the other version would disagree with the
        // allocator: the versions are really used.
        let mut other = running("old", 0.1).with_hash(HashVersion::V2);
        let moved = (0..1000)
            .filter(|i| {
                let contact = ContactId::new(format!("u{i}"));
                let d = other.assign(&contact, &none);
                alone[0].decision(&contact) != Some(&d)
            })
            .count();
        // Shares 0.1 / 0.45 / 0.45: independent draws differ with probability 0.585.
        assert!((500..670).contains(&moved), "{moved}");
    }
}
