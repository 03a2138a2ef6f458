//! The experiment lifecycle: states, holdouts, targeting, sticky assignments with their
//! propensity, and mutually exclusive layers ([`Layer`]).

mod allocator;
mod layer;
mod segment;

use std::collections::{BTreeMap, HashMap};

use mia_core::{Assignment, CampaignId, ContactId, VariantId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use allocator::ExperimentAllocator;
pub use layer::Layer;
pub use segment::Segment;

use crate::error::{ExperimentError, Result};
use crate::hash::HashVersion;

/// Where an experiment is in its life. The only moves are draft -> running -> stopped ->
/// concluded; anything else is [`ExperimentError::InvalidTransition`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ExperimentState {
    /// Being configured; assigns no one.
    #[default]
    Draft,
    /// Assigning contacts.
    Running,
    /// No new assignments and no treatment; the data is being analysed.
    Stopped,
    /// Decided: everyone in the segment gets the winner.
    Concluded {
        /// The variant shipped.
        winner: VariantId,
    },
}

impl ExperimentState {
    /// The state's name (`draft`, `running`, `stopped`, `concluded`).
    pub fn name(&self) -> &'static str {
        match self {
            ExperimentState::Draft => "draft",
            ExperimentState::Running => "running",
            ExperimentState::Stopped => "stopped",
            ExperimentState::Concluded { .. } => "concluded",
        }
    }
}

/// Why a contact gets no part in an experiment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Exclusion {
    /// The experiment is a draft or stopped.
    NotRunning,
    /// The contact is outside the experiment's [`Segment`].
    NotTargeted,
    /// The contact's point in the experiment's [`Layer`] falls in another experiment's slice,
    /// or in none.
    OutsideLayerSlice,
}

impl Exclusion {
    /// The exclusion's name in `snake_case`, as it serialises (`not_targeted`).
    pub fn name(&self) -> &'static str {
        match self {
            Exclusion::NotRunning => "not_running",
            Exclusion::NotTargeted => "not_targeted",
            Exclusion::OutsideLayerSlice => "outside_layer_slice",
        }
    }
}

/// What a contact gets from an experiment, with the probability it had of getting it.
///
/// `propensity` is conditional on entering the experiment (being targeted, and inside the
/// experiment's slice of its [`Layer`]): `(1 - holdout) × weight / total weight` for a
/// variant, `holdout` for the holdout. It is the probability at assignment time; later weight
/// changes do not rewrite it, which is what inverse-propensity weighting needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Decision {
    /// Send this variant.
    Variant {
        /// The variant.
        variant: VariantId,
        /// Its allocation probability, in (0, 1].
        propensity: f64,
    },
    /// In the holdout: send nothing, but count the contact as a comparison group.
    Holdout {
        /// The holdout's share, in (0, 1).
        propensity: f64,
    },
    /// Not in the experiment.
    Excluded {
        /// Why.
        reason: Exclusion,
    },
}

impl Decision {
    /// The variant to send as the `Allocator` seam's [`Assignment`], if any.
    pub fn assignment(&self) -> Option<Assignment> {
        match self {
            Decision::Variant {
                variant,
                propensity,
            } => Some(Assignment {
                variant: variant.clone(),
                propensity: *propensity,
            }),
            _ => None,
        }
    }
}

/// An experiment: weighted variants, an optional holdout and segment, a lifecycle, and a store
/// of the assignments made so far.
///
/// **Assignment rule.** A new contact's point `hash(salt, id, contact)` in [0, 1) decides:
/// below `holdout` it is held out, otherwise the rest of the interval is split by weight. So
/// workers with the same configuration agree without sharing state. The hash is the
/// experiment's [`HashVersion`]: [`HashVersion::LATEST`] (XXH3, V2) for a new experiment;
/// an experiment that assigned contacts before hash versions existed used
/// [`HashVersion::V1`] (SHA-256) and is recreated with `.with_hash(HashVersion::V1)` so that
/// contacts it has not stored a decision for yet land where they would have.
///
/// **Stickiness.** Every decision is kept in an in-memory store and returned as-is on later
/// calls, even after [`set_weight`](Experiment::set_weight) or
/// [`set_holdout`](Experiment::set_holdout) (which only shape new assignments) or a change of
/// the contact's attributes. Hosts persist [`assignments`](Experiment::assignments) and call
/// [`restore`](Experiment::restore) at start-up; workers that change weights must share it.
///
/// ```
/// use mia_core::{ContactId, VariantId};
/// use mia_experiments::{Decision, Experiment, Segment};
/// let mut exp = Experiment::new("onboarding", [VariantId::new("A"), VariantId::new("B")])?
///     .with_holdout(0.1)?
///     .with_segment(Segment::equals("plan", "pro"));
/// exp.start()?;
/// let pro = [("plan".to_owned(), serde_json::json!("pro"))].into_iter().collect();
/// let first = exp.assign(&ContactId::new("u-1"), &pro);
/// exp.set_weight("A", 9.0)?; // new contacts only
/// assert_eq!(exp.assign(&ContactId::new("u-1"), &pro), first);
/// assert!(!matches!(first, Decision::Excluded { .. }));
/// # Ok::<(), mia_experiments::ExperimentError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Experiment {
    id: CampaignId,
    salt: String,
    variants: Vec<(VariantId, f64)>,
    holdout: f64,
    segment: Segment,
    state: ExperimentState,
    hash: HashVersion,
    assignments: HashMap<ContactId, Decision>,
}

impl Experiment {
    /// A draft experiment splitting evenly between `variants`, with no holdout, targeting
    /// everyone, salted with its id, hashing with [`HashVersion::LATEST`].
    ///
    /// # Errors
    /// [`ExperimentError::NoVariants`] for no variants, [`ExperimentError::InvalidInput`] for a
    /// repeated one.
    pub fn new(
        id: impl Into<CampaignId>,
        variants: impl IntoIterator<Item = VariantId>,
    ) -> Result<Self> {
        let id = id.into();
        let mut list: Vec<(VariantId, f64)> = Vec::new();
        for v in variants {
            if list.iter().any(|(known, _)| *known == v) {
                return Err(ExperimentError::invalid(format!(
                    "experiment {id}: variant {v} listed twice"
                )));
            }
            list.push((v, 1.0));
        }
        if list.is_empty() {
            return Err(ExperimentError::NoVariants(id.to_string()));
        }
        Ok(Self {
            salt: id.to_string(),
            id,
            variants: list,
            holdout: 0.0,
            segment: Segment::Everyone,
            state: ExperimentState::Draft,
            hash: HashVersion::LATEST,
            assignments: HashMap::new(),
        })
    }

    /// Sets the hash version of new assignments (stored decisions stay as they are); a
    /// different version reshuffles every new assignment. Use [`HashVersion::V1`] for an
    /// experiment that assigned contacts before hash versions existed.
    #[must_use]
    pub fn with_hash(mut self, version: HashVersion) -> Self {
        self.hash = version;
        self
    }

    /// Sets the salt (by default the id); a new salt reshuffles every new assignment.
    #[must_use]
    pub fn with_salt(mut self, salt: impl Into<String>) -> Self {
        self.salt = salt.into();
        self
    }

    /// Targets only contacts in `segment`.
    #[must_use]
    pub fn with_segment(mut self, segment: Segment) -> Self {
        self.segment = segment;
        self
    }

    /// Sets a variant's weight (builder form of [`set_weight`](Experiment::set_weight)).
    ///
    /// # Errors
    /// As [`set_weight`](Experiment::set_weight).
    pub fn with_weight(mut self, variant: impl Into<VariantId>, weight: f64) -> Result<Self> {
        self.set_weight(variant, weight)?;
        Ok(self)
    }

    /// Sets the holdout share (builder form of [`set_holdout`](Experiment::set_holdout)).
    ///
    /// # Errors
    /// As [`set_holdout`](Experiment::set_holdout).
    pub fn with_holdout(mut self, share: f64) -> Result<Self> {
        self.set_holdout(share)?;
        Ok(self)
    }

    /// Changes a variant's weight for new assignments; existing ones keep their variant and
    /// logged propensity.
    ///
    /// # Errors
    /// [`ExperimentError::InvalidWeight`] for a weight that is not positive and finite,
    /// [`ExperimentError::InvalidInput`] for an unknown variant or a concluded experiment.
    pub fn set_weight(&mut self, variant: impl Into<VariantId>, weight: f64) -> Result<()> {
        let variant = variant.into();
        if !(weight.is_finite() && weight > 0.0) {
            return Err(ExperimentError::InvalidWeight {
                variant: variant.to_string(),
                weight,
            });
        }
        self.check_not_concluded()?;
        let Some(slot) = self.variants.iter_mut().find(|(v, _)| *v == variant) else {
            return Err(ExperimentError::invalid(format!(
                "experiment {}: no variant {variant}",
                self.id
            )));
        };
        slot.1 = weight;
        Ok(())
    }

    /// Changes the share of new contacts held out (given no treatment), in [0, 1).
    ///
    /// # Errors
    /// [`ExperimentError::InvalidInput`] for a share outside [0, 1) or a concluded experiment.
    pub fn set_holdout(&mut self, share: f64) -> Result<()> {
        if !(0.0..1.0).contains(&share) {
            return Err(ExperimentError::invalid(format!(
                "experiment {}: holdout must be in [0, 1), got {share}",
                self.id
            )));
        }
        self.check_not_concluded()?;
        self.holdout = share;
        Ok(())
    }

    fn check_not_concluded(&self) -> Result<()> {
        if matches!(self.state, ExperimentState::Concluded { .. }) {
            return Err(ExperimentError::invalid(format!(
                "experiment {} is concluded",
                self.id
            )));
        }
        Ok(())
    }

    /// The experiment's id.
    pub fn id(&self) -> &CampaignId {
        &self.id
    }

    /// Its state.
    pub fn state(&self) -> &ExperimentState {
        &self.state
    }

    /// Its segment.
    pub fn segment(&self) -> &Segment {
        &self.segment
    }

    /// Its holdout share.
    pub fn holdout(&self) -> f64 {
        self.holdout
    }

    /// Its hash version.
    pub fn hash(&self) -> HashVersion {
        self.hash
    }

    /// Its variants and their current weights, in order.
    pub fn variants(&self) -> &[(VariantId, f64)] {
        &self.variants
    }

    fn transition(&mut self, allowed_from: &ExperimentState, to: ExperimentState) -> Result<()> {
        if self.state != *allowed_from {
            return Err(ExperimentError::InvalidTransition {
                experiment: self.id.to_string(),
                from: self.state.name(),
                to: to.name(),
            });
        }
        self.state = to;
        Ok(())
    }

    /// Draft -> running: starts assigning.
    ///
    /// # Errors
    /// [`ExperimentError::InvalidTransition`] from any other state.
    pub fn start(&mut self) -> Result<()> {
        self.transition(&ExperimentState::Draft, ExperimentState::Running)
    }

    /// Running -> stopped: no new assignments, no treatment.
    ///
    /// # Errors
    /// [`ExperimentError::InvalidTransition`] from any other state.
    pub fn stop(&mut self) -> Result<()> {
        self.transition(&ExperimentState::Running, ExperimentState::Stopped)
    }

    /// Stopped -> concluded with `winner`, which everyone gets from now on.
    ///
    /// # Errors
    /// [`ExperimentError::InvalidInput`] when `winner` is not a variant,
    /// [`ExperimentError::InvalidTransition`] from a state other than stopped.
    pub fn conclude(&mut self, winner: impl Into<VariantId>) -> Result<()> {
        let winner = winner.into();
        if !self.variants.iter().any(|(v, _)| *v == winner) {
            return Err(ExperimentError::invalid(format!(
                "experiment {}: winner {winner} is not a variant",
                self.id
            )));
        }
        self.transition(
            &ExperimentState::Stopped,
            ExperimentState::Concluded { winner },
        )
    }

    /// The decision for a contact with these attributes.
    ///
    /// * running: the stored decision if there is one; otherwise
    ///   [`Exclusion::NotTargeted`] outside the segment (not stored, so the contact may enter
    ///   later), or a new holdout or variant decision, stored;
    /// * draft or stopped: [`Exclusion::NotRunning`];
    /// * concluded: the winner with propensity 1 for everyone in the segment.
    pub fn assign(
        &mut self,
        contact: &ContactId,
        attributes: &BTreeMap<String, Value>,
    ) -> Decision {
        match &self.state {
            ExperimentState::Draft | ExperimentState::Stopped => {
                return Decision::Excluded {
                    reason: Exclusion::NotRunning,
                };
            }
            ExperimentState::Concluded { winner } => {
                if !self.segment.matches(attributes) {
                    return Decision::Excluded {
                        reason: Exclusion::NotTargeted,
                    };
                }
                return Decision::Variant {
                    variant: winner.clone(),
                    propensity: 1.0,
                };
            }
            ExperimentState::Running => {}
        }
        if let Some(known) = self.assignments.get(contact) {
            return known.clone();
        }
        if !self.segment.matches(attributes) {
            return Decision::Excluded {
                reason: Exclusion::NotTargeted,
            };
        }
        let decision = self.decide(contact);
        self.assignments.insert(contact.clone(), decision.clone());
        decision
    }

    /// The hash rule under the experiment's hash version and current weights and holdout.
    fn decide(&self, contact: &ContactId) -> Decision {
        let point = self.hash.point(&[
            self.salt.as_bytes(),
            self.id.as_str().as_bytes(),
            contact.as_str().as_bytes(),
        ]);
        if point < self.holdout {
            return Decision::Holdout {
                propensity: self.holdout,
            };
        }
        let total: f64 = self.variants.iter().map(|(_, w)| w).sum();
        // The rest of [0, 1), rescaled onto the total weight.
        let target = (point - self.holdout) / (1.0 - self.holdout) * total;
        let treated = 1.0 - self.holdout;
        let mut acc = 0.0;
        for (variant, weight) in &self.variants {
            acc += weight;
            if target < acc {
                return Decision::Variant {
                    variant: variant.clone(),
                    propensity: treated * weight / total,
                };
            }
        }
        // Rounding can leave `target` a hair above the last boundary: it belongs to the last.
        // `variants` is never empty (checked in `new`).
        let (variant, weight) = self.variants[self.variants.len() - 1].clone();
        Decision::Variant {
            variant,
            propensity: treated * weight / total,
        }
    }

    /// The stored decision of a contact (a holdout or a variant), if one was made.
    pub fn decision(&self, contact: &ContactId) -> Option<&Decision> {
        self.assignments.get(contact)
    }

    /// The decisions made so far (holdouts and variants), for the host to persist.
    pub fn assignments(&self) -> impl Iterator<Item = (&ContactId, &Decision)> {
        self.assignments.iter()
    }

    /// Loads persisted decisions (from [`assignments`](Experiment::assignments)), replacing any
    /// in memory for the same contacts.
    ///
    /// # Errors
    /// [`ExperimentError::InvalidInput`], loading nothing, when a decision is an exclusion,
    /// names an unknown variant or has a propensity outside (0, 1].
    pub fn restore(
        &mut self,
        decisions: impl IntoIterator<Item = (ContactId, Decision)>,
    ) -> Result<()> {
        let decisions: Vec<(ContactId, Decision)> = decisions.into_iter().collect();
        for (contact, decision) in &decisions {
            let valid = match decision {
                Decision::Variant {
                    variant,
                    propensity,
                } => {
                    self.variants.iter().any(|(v, _)| v == variant)
                        && *propensity > 0.0
                        && *propensity <= 1.0
                }
                Decision::Holdout { propensity } => *propensity > 0.0 && *propensity < 1.0,
                Decision::Excluded { .. } => false,
            };
            if !valid {
                return Err(ExperimentError::invalid(format!(
                    "experiment {}: cannot restore {decision:?} for {contact}",
                    self.id
                )));
            }
        }
        self.assignments.extend(decisions);
        Ok(())
    }
}
