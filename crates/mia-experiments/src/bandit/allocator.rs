//! A bandit behind the `Allocator` seam: sticky assignments, rewards counted once per
//! assignment, a floor per arm, a minimum sample before adapting and batched updates.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use jiff::{SignedDuration, Timestamp};
use mia_core::{
    Allocator, Assignment, AssignmentRequest, CampaignId, Clock, ContactId, Reward, VariantId,
};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use sha2::{Digest, Sha256};

use super::attribution::{Attribution, AttributionWindow};
use super::policy::{ArmStats, Policy};
use crate::error::{ExperimentError, Result};
use crate::stats::{BetaPosterior, prob_best};

/// Settings of a [`Bandit`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BanditConfig {
    /// How to choose.
    pub policy: Policy,
    /// Every arm gets at least this share of new assignments (so the control keeps a sample
    /// and a drifting arm can recover). `arms × min_share` must stay below 1.
    pub min_share: f64,
    /// Until every offered arm has this many pulls in the policy's view, assignment is uniform
    /// among the arms below it.
    pub min_samples: u64,
    /// The policy's view of the arms is refreshed every `batch` assignments (1: after each).
    /// Hosts that update on a clock call [`Bandit::refresh`] instead and set a large batch.
    pub batch: u64,
    /// Seed of the per-contact draws.
    pub seed: u64,
}

impl Default for BanditConfig {
    fn default() -> Self {
        Self {
            policy: Policy::Thompson,
            min_share: 0.0,
            min_samples: 0,
            batch: 1,
            seed: 0,
        }
    }
}

#[derive(Default)]
struct CampaignState {
    variants: Vec<VariantId>,
    live: Vec<ArmStats>,
    view: Vec<ArmStats>,
    since_refresh: u64,
    /// The assignment id is (campaign, contact): assignments are sticky, so there is one.
    assignments: HashMap<ContactId, Assignment>,
    /// Without an attribution window: the assignments rewarded already.
    rewarded: HashSet<ContactId>,
    /// With an attribution window: rewards held until each assignment's window closes.
    window: Option<AttributionWindow<ContactId>>,
    /// P(chosen) per arm under the current view, for the offered set it was computed for.
    propensities: Option<(Vec<usize>, Vec<f64>)>,
}

impl CampaignState {
    fn index_of(&mut self, variant: &VariantId) -> usize {
        if let Some(i) = self.variants.iter().position(|v| v == variant) {
            return i;
        }
        self.variants.push(variant.clone());
        self.live.push(ArmStats::default());
        self.view.push(ArmStats::default());
        self.propensities = None;
        self.variants.len() - 1
    }

    /// Applies every assignment whose attribution window closed before `now`: one pull and
    /// its held reward (0 when none came), clamped to [0, 1].
    fn settle(&mut self, now: Timestamp) {
        let Some(window) = &mut self.window else {
            return;
        };
        for (contact, value) in window.close(now) {
            let Some(variant) = self.assignments.get(&contact).map(|a| a.variant.clone()) else {
                continue;
            };
            let k = self.index_of(&variant);
            self.live[k].pulls += 1.0;
            self.live[k].reward += clamp_reward(value);
        }
    }

    fn refresh(&mut self) {
        self.view.clone_from(&self.live);
        self.since_refresh = 0;
        self.propensities = None;
    }
}

/// A reward as the policies count it: in [0, 1], 0 for a non-finite value.
fn clamp_reward(value: f64) -> f64 {
    if value.is_finite() {
        value.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// A multi-armed bandit usable as an [`Allocator`].
///
/// * **Sticky:** a contact keeps its arm for the campaign (kept in memory), and the draw for a
///   new contact is seeded from `SHA-256(seed, campaign, contact)`, so two workers with the same
///   view of the arms agree too.
/// * **Rewards once:** a reward counts for the contact's assignment only once; duplicates and
///   rewards for unknown assignments are ignored ([`Bandit::record`] says which).
/// * **Attribution window** (optional, [`Bandit::with_attribution_window`]): rewards are
///   held ([`AttributionWindow`](super::AttributionWindow)) and each assignment is learned
///   from only when its window closes: one pull with its reward, or with 0 when no reward
///   came. A reward arriving after the window is ignored and counted
///   ([`Bandit::late_rewards`]).
/// * **Propensity:** the logged probability is the true chance of the arm under the current
///   view: the floor `min_share` plus `(1 - arms × min_share)` times the policy's own chance
///   (for Thompson, `P(best)` by quadrature over the Beta posteriors).
pub struct Bandit {
    config: BanditConfig,
    attribution: Option<(SignedDuration, Arc<dyn Clock>)>,
    campaigns: Mutex<HashMap<CampaignId, CampaignState>>,
}

impl Bandit {
    /// A bandit with these settings.
    ///
    /// # Errors
    /// [`ExperimentError::InvalidInput`] for a negative or non-finite `min_share`, a zero
    /// batch or an invalid policy.
    pub fn new(config: BanditConfig) -> Result<Self> {
        config.policy.validate()?;
        if !(config.min_share.is_finite() && config.min_share >= 0.0 && config.min_share < 1.0) {
            return Err(ExperimentError::invalid(format!(
                "min_share must be in [0, 1), got {}",
                config.min_share
            )));
        }
        if config.batch == 0 {
            return Err(ExperimentError::invalid("batch must be positive"));
        }
        Ok(Self {
            config,
            attribution: None,
            campaigns: Mutex::new(HashMap::new()),
        })
    }

    /// Holds rewards until their assignment's attribution window closes, by `clock`, and only
    /// then counts the assignment: one pull and its reward, or 0 when none came. A reward
    /// arriving more than `window` after its assignment is ignored (one exactly at the boundary
    /// counts). Windows close as the bandit is used (every assignment, reward and refresh
    /// settles those closed by then) or on [`settle`](Bandit::settle). The policy,
    /// `min_samples` and [`arm_stats`](Bandit::arm_stats) see settled assignments only.
    ///
    /// # Errors
    /// [`ExperimentError::InvalidInput`] for a window that is not positive.
    pub fn with_attribution_window(
        mut self,
        window: SignedDuration,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        if window <= SignedDuration::ZERO {
            return Err(ExperimentError::invalid(format!(
                "attribution window must be positive, got {window:?}"
            )));
        }
        self.attribution = Some((window, clock));
        Ok(self)
    }

    /// Rewards ignored in a campaign because they arrived after the attribution window.
    pub fn late_rewards(&self, campaign: &CampaignId) -> u64 {
        self.lock()
            .get(campaign)
            .and_then(|s| s.window.as_ref())
            .map_or(0, AttributionWindow::late)
    }

    /// Assignments of a campaign whose attribution window is still open (not counted yet).
    pub fn open_assignments(&self, campaign: &CampaignId) -> usize {
        self.lock()
            .get(campaign)
            .and_then(|s| s.window.as_ref())
            .map_or(0, AttributionWindow::open)
    }

    /// Counts every assignment whose attribution window has closed by the clock (see
    /// [`with_attribution_window`](Bandit::with_attribution_window)); the policy sees them at
    /// its next refresh. Does nothing without a window.
    pub fn settle(&self) {
        let Some((_, clock)) = &self.attribution else {
            return;
        };
        let now = clock.now();
        for state in self.lock().values_mut() {
            state.settle(now);
        }
    }

    /// The state of a campaign, created with its attribution window if there is one.
    fn state<'a>(
        &self,
        campaigns: &'a mut HashMap<CampaignId, CampaignState>,
        campaign: &CampaignId,
    ) -> &'a mut CampaignState {
        campaigns
            .entry(campaign.clone())
            .or_insert_with(|| CampaignState {
                window: self
                    .attribution
                    .as_ref()
                    .and_then(|(window, _)| AttributionWindow::new(*window).ok()),
                ..CampaignState::default()
            })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<CampaignId, CampaignState>> {
        // A panic elsewhere cannot leave the counters half-written: every update is a
        // single assignment of plain numbers.
        self.campaigns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a reward for the contact's assignment (with an attribution window: holds it
    /// until the window closes). Returns `false`, counting nothing, when the contact has no
    /// assignment in the campaign, its assignment already has a reward, or the reward arrived
    /// after the attribution window (counted in [`late_rewards`](Bandit::late_rewards)).
    /// Values are clamped to [0, 1].
    pub fn record(&self, reward: &Reward) -> bool {
        let mut campaigns = self.lock();
        let Some(state) = campaigns.get_mut(&reward.campaign) else {
            return false;
        };
        let Some(assignment) = state.assignments.get(&reward.contact) else {
            return false;
        };
        // The assignment decides the arm, whatever variant the reward names.
        let variant = assignment.variant.clone();
        if let Some((_, clock)) = &self.attribution {
            let now = clock.now();
            let held = state
                .window
                .as_mut()
                .map(|w| w.attribute(&reward.contact, now, reward.value));
            state.settle(now);
            return held == Some(Attribution::Held);
        }
        if !state.rewarded.insert(reward.contact.clone()) {
            return false;
        }
        let k = state.index_of(&variant);
        state.live[k].reward += clamp_reward(reward.value);
        true
    }

    /// Refreshes the policy's view of every campaign now (for hosts that update on a clock),
    /// after settling the attribution windows closed by then.
    pub fn refresh(&self) {
        let now = self.attribution.as_ref().map(|(_, clock)| clock.now());
        for state in self.lock().values_mut() {
            if let Some(now) = now {
                state.settle(now);
            }
            state.refresh();
        }
    }

    /// Pulls and rewards per variant as counted so far (not only the policy's view).
    pub fn arm_stats(&self, campaign: &CampaignId) -> Vec<(VariantId, ArmStats)> {
        self.lock().get(campaign).map_or_else(Vec::new, |s| {
            s.variants
                .iter()
                .cloned()
                .zip(s.live.iter().copied())
                .collect()
        })
    }

    fn draw_seed(&self, campaign: &CampaignId, contact: &ContactId) -> u64 {
        let mut h = Sha256::new();
        h.update(self.config.seed.to_be_bytes());
        h.update(campaign.as_str().as_bytes());
        h.update([0xff]);
        h.update(contact.as_str().as_bytes());
        let digest = h.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(first)
    }

    /// The policy's chance of choosing each offered arm under the current view.
    fn policy_propensities(&self, arms: &[ArmStats]) -> Vec<f64> {
        let k = arms.len();
        let mut best = vec![0.0; k];
        let greedy = |best: &mut Vec<f64>, i: usize| best[i] = 1.0;
        match self.config.policy {
            Policy::Thompson => {
                let posteriors: Vec<BetaPosterior> = arms
                    .iter()
                    .map(|a| {
                        let (alpha, beta) = a.posterior_shapes();
                        BetaPosterior { alpha, beta }
                    })
                    .collect();
                return prob_best(&posteriors).unwrap_or_else(|_| vec![1.0 / k as f64; k]);
            }
            Policy::KlUcb => {
                let total: f64 = arms.iter().map(|a| a.pulls).sum();
                let mut rng = SmallRng::seed_from_u64(0);
                greedy(
                    &mut best,
                    self.config.policy.choose_index(arms, total, &mut rng),
                );
            }
            Policy::EpsilonGreedy { epsilon } => {
                let i = Policy::EpsilonGreedy { epsilon: 0.0 }.choose_index(
                    arms,
                    0.0,
                    &mut SmallRng::seed_from_u64(0),
                );
                for p in best.iter_mut() {
                    *p = epsilon / k as f64;
                }
                best[i] += 1.0 - epsilon;
            }
        }
        best
    }
}

impl Allocator for Bandit {
    fn assign(&self, request: &AssignmentRequest<'_>) -> mia_core::Result<Assignment> {
        if request.variants.is_empty() {
            return Err(ExperimentError::NoVariants(request.campaign.to_string()).into());
        }
        let mut campaigns = self.lock();
        let state = self.state(&mut campaigns, request.campaign);
        let now = self.attribution.as_ref().map(|(_, clock)| clock.now());
        if let Some(now) = now {
            state.settle(now);
        }
        if let Some(a) = state.assignments.get(request.contact)
            && request.variants.contains(&a.variant)
        {
            return Ok(a.clone());
        }
        let offered: Vec<usize> = request.variants.iter().map(|v| state.index_of(v)).collect();
        let view: Vec<ArmStats> = offered.iter().map(|&i| state.view[i]).collect();
        let k = offered.len();
        let mut rng = SmallRng::seed_from_u64(self.draw_seed(request.campaign, request.contact));

        let under: Vec<usize> = (0..k)
            .filter(|&i| view[i].pulls < self.config.min_samples as f64)
            .collect();
        let floor = (self.config.min_share * k as f64).min(1.0);
        let (choice, propensity) = if !under.is_empty() {
            let pick = under[rng.random_range(0..under.len())];
            (pick, 1.0 / under.len() as f64)
        } else {
            let cached = match &state.propensities {
                Some((set, p)) if *set == offered => p.clone(),
                _ => {
                    let p = self.policy_propensities(&view);
                    state.propensities = Some((offered.clone(), p.clone()));
                    p
                }
            };
            let pick = if rng.random::<f64>() < floor {
                rng.random_range(0..k)
            } else {
                let total: f64 = view.iter().map(|a| a.pulls).sum();
                self.config.policy.choose_index(&view, total, &mut rng)
            };
            (pick, floor / k as f64 + (1.0 - floor) * cached[pick])
        };
        let arm = offered[choice];
        let assignment = Assignment {
            variant: state.variants[arm].clone(),
            // Never zero: the arm was just chosen.
            propensity: propensity.clamp(f64::MIN_POSITIVE, 1.0),
        };
        state
            .assignments
            .insert(request.contact.clone(), assignment.clone());
        match (&mut state.window, now) {
            // Counted when its window closes, with its reward.
            (Some(window), Some(now)) => window.assigned(request.contact.clone(), now),
            _ => state.live[arm].pulls += 1.0,
        }
        state.since_refresh += 1;
        if state.since_refresh >= self.config.batch {
            state.refresh();
        }
        Ok(assignment)
    }

    fn observe(&self, reward: &Reward) {
        self.record(reward);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assign(b: &Bandit, variants: &[VariantId], contact: &str) -> Assignment {
        b.assign(&AssignmentRequest::new(
            &CampaignId::new("c"),
            &ContactId::new(contact),
            variants,
        ))
        .unwrap()
    }

    fn reward(contact: &str, value: f64) -> Reward {
        Reward {
            campaign: CampaignId::new("c"),
            contact: ContactId::new(contact),
            variant: VariantId::new("A"),
            value,
        }
    }

    #[test]
    fn assignments_are_sticky_and_rewards_count_once() {
        let b = Bandit::new(BanditConfig::default()).unwrap();
        let vs = [VariantId::new("A"), VariantId::new("B")];
        let first = assign(&b, &vs, "u1");
        assert_eq!(first, assign(&b, &vs, "u1"));
        assert!(b.record(&reward("u1", 1.0)));
        assert!(!b.record(&reward("u1", 1.0)), "a duplicate counts once");
        assert!(!b.record(&reward("nobody", 1.0)));
        let stats = b.arm_stats(&CampaignId::new("c"));
        let total: f64 = stats.iter().map(|(_, s)| s.reward).sum();
        let pulls: f64 = stats.iter().map(|(_, s)| s.pulls).sum();
        assert_eq!((total, pulls), (1.0, 1.0));
    }

    #[test]
    fn rewards_are_held_until_their_window_closes_then_counted_once() {
        let start = Timestamp::from_second(1_800_000_000).unwrap();
        let clock = Arc::new(mia_core::VirtualClock::starting_at(start));
        let b = Bandit::new(BanditConfig::default())
            .unwrap()
            .with_attribution_window(SignedDuration::from_hours(24), clock.clone())
            .unwrap();
        let c = CampaignId::new("c");
        let vs = [VariantId::new("A"), VariantId::new("B")];
        let arm_of: Vec<(String, VariantId)> = ["quick", "boundary", "late", "silent"]
            .iter()
            .map(|n| ((*n).to_owned(), assign(&b, &vs, n).variant))
            .collect();
        let totals = |b: &Bandit| {
            let s = b.arm_stats(&c);
            (
                s.iter().map(|(_, a)| a.pulls).sum::<f64>(),
                s.iter().map(|(_, a)| a.reward).sum::<f64>(),
            )
        };
        clock.advance(SignedDuration::from_hours(1));
        assert!(b.record(&reward("quick", 1.0)));
        assert!(!b.record(&reward("quick", 1.0)), "a duplicate is ignored");
        assert!(!b.record(&reward("nobody", 1.0)));
        // Held: nothing counted while the windows are open, not even the pulls.
        assert_eq!(totals(&b), (0.0, 0.0));
        assert_eq!(b.open_assignments(&c), 4);
        clock.advance(SignedDuration::from_hours(23));
        assert!(b.record(&reward("boundary", 0.5)), "the boundary is inside");
        b.settle();
        assert_eq!(totals(&b), (0.0, 0.0), "the boundary instant is still open");
        clock.advance(SignedDuration::from_secs(1));
        assert!(!b.record(&reward("late", 1.0)));
        assert!(!b.record(&reward("late", 1.0)));
        assert_eq!(b.late_rewards(&c), 2);
        // Every window closed (settled by the late reward's call): four pulls, the silent
        // and late ones counting 0, each reward on the arm the contact was assigned.
        assert_eq!(totals(&b), (4.0, 1.5));
        assert_eq!(b.open_assignments(&c), 0);
        let stats = b.arm_stats(&c);
        for (variant, arm) in &stats {
            let expected: f64 = arm_of
                .iter()
                .filter(|(_, v)| v == variant)
                .map(|(n, _)| match n.as_str() {
                    "quick" => 1.0,
                    "boundary" => 0.5,
                    _ => 0.0,
                })
                .sum();
            assert_eq!(arm.reward, expected, "{variant}");
        }
        assert!(!b.record(&reward("quick", 1.0)), "settled: never twice");
        assert_eq!(totals(&b), (4.0, 1.5));
        // A later assignment opens its own window, counted when it closes.
        assign(&b, &vs, "next");
        clock.advance(SignedDuration::from_hours(25));
        b.refresh();
        assert_eq!(totals(&b), (5.0, 1.5));
        assert!(
            Bandit::new(BanditConfig::default())
                .unwrap()
                .with_attribution_window(SignedDuration::ZERO, clock)
                .is_err()
        );
    }

    #[test]
    fn thompson_learns_and_respects_the_floor() {
        let b = Bandit::new(BanditConfig {
            min_share: 0.05,
            min_samples: 50,
            batch: 100,
            ..BanditConfig::default()
        })
        .unwrap();
        let vs = [VariantId::new("A"), VariantId::new("B")];
        let mut rng = SmallRng::seed_from_u64(3);
        for i in 0..6000 {
            let contact = format!("u{i}");
            let a = assign(&b, &vs, &contact);
            assert!(a.propensity > 0.0 && a.propensity <= 1.0);
            let p = if a.variant.as_str() == "B" { 0.3 } else { 0.1 };
            let value = if rng.random::<f64>() < p { 1.0 } else { 0.0 };
            b.observe(&reward(&contact, value));
        }
        let stats = b.arm_stats(&CampaignId::new("c"));
        let pulls = |name: &str| {
            stats
                .iter()
                .find(|(v, _)| v.as_str() == name)
                .unwrap()
                .1
                .pulls
        };
        assert!(pulls("B") > 4.0 * pulls("A"), "{stats:?}");
        // The floor keeps A at no less than 2.5% of assignments.
        assert!(pulls("A") >= 0.025 * 6000.0 * 0.8, "{stats:?}");
    }

    #[test]
    fn min_samples_come_first_and_config_is_checked() {
        let b = Bandit::new(BanditConfig {
            policy: Policy::KlUcb,
            min_samples: 10,
            batch: 1,
            ..BanditConfig::default()
        })
        .unwrap();
        let vs = [
            VariantId::new("A"),
            VariantId::new("B"),
            VariantId::new("C"),
        ];
        for i in 0..30 {
            assign(&b, &vs, &format!("u{i}"));
        }
        for (_, s) in b.arm_stats(&CampaignId::new("c")) {
            assert_eq!(s.pulls, 10.0);
        }
        assert!(
            Bandit::new(BanditConfig {
                batch: 0,
                ..BanditConfig::default()
            })
            .is_err()
        );
        assert!(
            Bandit::new(BanditConfig {
                min_share: 1.5,
                ..BanditConfig::default()
            })
            .is_err()
        );
        let empty = b.assign(&AssignmentRequest::new(
            &CampaignId::new("c"),
            &ContactId::new("x"),
            &[],
        ));
        assert!(empty.is_err());
    }
}
