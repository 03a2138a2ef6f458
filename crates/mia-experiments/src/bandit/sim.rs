//! The regret simulator: Bernoulli arms, a policy, many seeds.

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use super::policy::{ArmStats, Policy};
use crate::error::{ExperimentError, Result};

/// Pseudo-regret over the seeds: `Σ (p* - p_chosen)` per run, summarised.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegretSummary {
    /// The policy's name.
    pub policy: String,
    /// Mean over seeds.
    pub mean_regret: f64,
    /// Median over seeds.
    pub median_regret: f64,
    /// 90th percentile over seeds (linear interpolation, as numpy).
    pub p90_regret: f64,
}

/// Runs `policy` on Bernoulli arms with success rates `arms` for `pulls` pulls, once per seed
/// `0..seeds`, updating the policy's view every `batch` pulls (1: after every pull). Seeds run
/// on all cores; each seed has its own generator, so the result does not depend on the number
/// of threads.
///
/// # Errors
/// [`ExperimentError::InvalidInput`] for fewer than two arms, a rate outside [0, 1], zero
/// pulls, seeds or batch, or an invalid policy.
pub fn simulate(
    policy: &Policy,
    arms: &[f64],
    pulls: u64,
    seeds: u64,
    batch: u64,
) -> Result<RegretSummary> {
    policy.validate()?;
    if arms.len() < 2 || arms.iter().any(|p| !(0.0..=1.0).contains(p)) {
        return Err(ExperimentError::invalid(
            "need at least two arms, each a rate in [0, 1]",
        ));
    }
    if pulls == 0 || seeds == 0 || batch == 0 {
        return Err(ExperimentError::invalid(
            "pulls, seeds and batch must be positive",
        ));
    }
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(seeds as usize);
    let mut regrets = vec![0.0; seeds as usize];
    let chunk = regrets.len().div_ceil(threads);
    std::thread::scope(|scope| {
        for (i, slot) in regrets.chunks_mut(chunk).enumerate() {
            scope.spawn(move || {
                for (j, r) in slot.iter_mut().enumerate() {
                    *r = run_once(policy, arms, pulls, batch, (i * chunk + j) as u64);
                }
            });
        }
    });
    regrets.sort_by(f64::total_cmp);
    Ok(RegretSummary {
        policy: policy.name().to_owned(),
        mean_regret: regrets.iter().sum::<f64>() / regrets.len() as f64,
        median_regret: percentile(&regrets, 0.5),
        p90_regret: percentile(&regrets, 0.9),
    })
}

fn run_once(policy: &Policy, arms: &[f64], pulls: u64, batch: u64, seed: u64) -> f64 {
    let mut rng = SmallRng::seed_from_u64(seed);
    let best = arms.iter().copied().fold(0.0, f64::max);
    let mut live = vec![ArmStats::default(); arms.len()];
    let mut view = live.clone();
    let mut view_total = 0.0;
    let mut regret = 0.0;
    let mut since = 0;
    for t in 0..pulls {
        let k = policy.choose_index(&view, view_total, &mut rng);
        let success = rng.random::<f64>() < arms[k];
        live[k].pulls += 1.0;
        live[k].reward += if success { 1.0 } else { 0.0 };
        regret += best - arms[k];
        since += 1;
        if since == batch {
            view.copy_from_slice(&live);
            view_total = (t + 1) as f64;
            since = 0;
        }
    }
    regret
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_policy_beats_uniform_play() {
        // Uniform play would lose (0.02 + 0.01) / 3 per pull: 200 over 20,000 pulls.
        for policy in [
            Policy::Thompson,
            Policy::KlUcb,
            Policy::EpsilonGreedy { epsilon: 0.1 },
        ] {
            let r = simulate(&policy, &[0.04, 0.05, 0.06], 20_000, 8, 1).unwrap();
            assert!(r.mean_regret < 150.0, "{r:?}");
            assert!(r.median_regret <= r.p90_regret);
        }
    }

    #[test]
    fn runs_are_reproducible_and_inputs_checked() {
        let a = simulate(&Policy::Thompson, &[0.1, 0.2], 2_000, 3, 10).unwrap();
        let b = simulate(&Policy::Thompson, &[0.1, 0.2], 2_000, 3, 10).unwrap();
        assert_eq!(a, b);
        assert!(simulate(&Policy::Thompson, &[0.1], 10, 1, 1).is_err());
        assert!(simulate(&Policy::Thompson, &[0.1, 1.5], 10, 1, 1).is_err());
        assert!(simulate(&Policy::Thompson, &[0.1, 0.2], 10, 1, 0).is_err());
    }

    #[test]
    fn percentiles_interpolate_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 0.5), 2.5);
        assert!((percentile(&v, 0.9) - 3.7).abs() < 1e-12);
    }
}
