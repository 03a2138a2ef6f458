//! Bandit policies: which arm to pull given each arm's pulls and rewards.

use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

use super::sampling::beta;
use crate::error::{ExperimentError, Result};

/// Pulls and summed rewards of one arm. Rewards are in [0, 1] (a conversion is 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ArmStats {
    /// Times the arm was chosen.
    pub pulls: f64,
    /// Sum of its rewards.
    pub reward: f64,
}

impl ArmStats {
    /// The Beta(1 + successes, 1 + failures) posterior's shapes, both at least 1: negative or
    /// NaN counts count as 0 (`f64::clamp` would panic on them, and a shape below 0 would
    /// never be accepted by the Gamma sampler).
    pub(crate) fn posterior_shapes(&self) -> (f64, f64) {
        let pulls = self.pulls.max(0.0);
        let successes = self.reward.max(0.0).min(pulls);
        (1.0 + successes, 1.0 + pulls - successes)
    }

    /// Mean reward, 0 before the first pull.
    pub fn mean(&self) -> f64 {
        if self.pulls > 0.0 {
            (self.reward / self.pulls).clamp(0.0, 1.0)
        } else {
            0.0
        }
    }
}

/// How a bandit chooses.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Policy {
    /// Thompson sampling with exact Beta(1 + rewards, 1 + pulls - rewards) posteriors: pull the
    /// arm whose posterior draw is highest.
    Thompson,
    /// KL-UCB (Garivier and Cappé 2011) with threshold `ln t`: pull the arm whose upper
    /// confidence bound `max {q : n KL(p, q) <= ln t}` is highest.
    KlUcb,
    /// With probability `epsilon` a uniform arm, otherwise the best mean so far.
    EpsilonGreedy {
        /// Exploration probability in [0, 1].
        epsilon: f64,
    },
}

impl Policy {
    /// The policy's name as the command line spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Policy::Thompson => "thompson",
            Policy::KlUcb => "kl-ucb",
            Policy::EpsilonGreedy { .. } => "epsilon-greedy",
        }
    }

    /// Parses `thompson`, `kl-ucb` or `epsilon-greedy` (epsilon 0.1).
    ///
    /// # Errors
    /// [`ExperimentError::InvalidInput`] for another name.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "thompson" => Ok(Policy::Thompson),
            "kl-ucb" => Ok(Policy::KlUcb),
            "epsilon-greedy" => Ok(Policy::EpsilonGreedy { epsilon: 0.1 }),
            other => Err(ExperimentError::invalid(format!(
                "unknown policy {other}: expected thompson, kl-ucb or epsilon-greedy"
            ))),
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if let Policy::EpsilonGreedy { epsilon } = self
            && !(0.0..=1.0).contains(epsilon)
        {
            return Err(ExperimentError::invalid(format!(
                "epsilon must be in [0, 1], got {epsilon}"
            )));
        }
        Ok(())
    }

    /// Chooses an arm: its index in `arms`, or `None` when `arms` is empty. `total` is the
    /// number of pulls so far (KL-UCB's `t`).
    pub fn choose<R: Rng + ?Sized>(
        &self,
        arms: &[ArmStats],
        total: f64,
        rng: &mut R,
    ) -> Option<usize> {
        (!arms.is_empty()).then(|| self.choose_index(arms, total, rng))
    }

    /// [`choose`](Policy::choose) for a non-empty `arms`.
    pub(crate) fn choose_index<R: Rng + ?Sized>(
        &self,
        arms: &[ArmStats],
        total: f64,
        rng: &mut R,
    ) -> usize {
        match self {
            Policy::Thompson => argmax(arms.iter().map(|a| {
                let (alpha, beta_shape) = a.posterior_shapes();
                beta(rng, alpha, beta_shape)
            })),
            Policy::KlUcb => {
                if let Some(k) = arms.iter().position(|a| a.pulls == 0.0) {
                    return k;
                }
                let threshold = total.max(1.0).ln();
                argmax(
                    arms.iter()
                        .map(|a| kl_ucb_index(a.mean(), a.pulls, threshold)),
                )
            }
            Policy::EpsilonGreedy { epsilon } => {
                if rng.random::<f64>() < *epsilon {
                    return rng.random_range(0..arms.len());
                }
                if let Some(k) = arms.iter().position(|a| a.pulls == 0.0) {
                    return k;
                }
                argmax(arms.iter().map(ArmStats::mean))
            }
        }
    }
}

fn argmax(values: impl Iterator<Item = f64>) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, v) in values.enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0
}

/// Bernoulli Kullback–Leibler divergence `KL(p, q)`.
fn kl(p: f64, q: f64) -> f64 {
    let a = if p > 0.0 { p * (p / q).ln() } else { 0.0 };
    let b = if p < 1.0 {
        (1.0 - p) * ((1.0 - p) / (1.0 - q)).ln()
    } else {
        0.0
    };
    a + b
}

/// `max {q in [p, 1) : n KL(p, q) <= threshold}` by Newton's method from Pinsker's bound
/// `p + sqrt(threshold / 2n)`, which lies above the root; the function is convex and
/// increasing there, so the iterates decrease monotonically onto it.
pub(crate) fn kl_ucb_index(p: f64, n: f64, threshold: f64) -> f64 {
    let bound = threshold / n;
    let mut q = (p + (bound / 2.0).sqrt()).min(1.0 - 1e-12);
    if kl(p, q) <= bound {
        return q;
    }
    for _ in 0..50 {
        let f = kl(p, q) - bound;
        let slope = (q - p) / (q * (1.0 - q));
        if slope.is_nan() || slope <= 0.0 {
            break;
        }
        let next = (q - f / slope).max(p);
        if (q - next).abs() < 1e-10 {
            return next;
        }
        q = next;
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kl_ucb_index_solves_its_equation() {
        for &(p, n, t) in &[(0.05, 100.0, 8.0), (0.0, 10.0, 3.0), (0.5, 5000.0, 11.0)] {
            let q = kl_ucb_index(p, n, t);
            assert!(q >= p && (n * kl(p, q) - t).abs() < 1e-6, "{p} {n} {t} {q}");
        }
    }

    #[test]
    fn thompson_survives_nonsense_counts() {
        use rand::SeedableRng;
        let arms = [
            ArmStats {
                pulls: -3.0,
                reward: 1.0,
            },
            ArmStats {
                pulls: f64::NAN,
                reward: f64::NAN,
            },
            ArmStats {
                pulls: 100.0,
                reward: 90.0,
            },
        ];
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        let picks = (0..100)
            .filter(|_| Policy::Thompson.choose(&arms, 0.0, &mut rng) == Some(2))
            .count();
        // Beta(91, 11) against two uniforms: the third arm wins about 80% of the time.
        assert!(picks > 60, "{picks}");
    }

    #[test]
    fn names_round_trip() {
        for name in ["thompson", "kl-ucb", "epsilon-greedy"] {
            assert_eq!(Policy::from_name(name).unwrap().name(), name);
        }
        assert!(Policy::from_name("ucb1").is_err());
        assert!(Policy::EpsilonGreedy { epsilon: 2.0 }.validate().is_err());
    }
}
