//! Disjoint LinUCB (Li, Chu, Langford and Schapire 2010): one ridge regression per arm, the arm
//! with the highest upper confidence bound on its expected reward in this context wins.

use serde::{Deserialize, Serialize};

use crate::error::{ExperimentError, Result};

/// One arm's ridge regression: `A⁻¹` (row-major `d × d`), `b` and `θ = A⁻¹ b`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct LinArm {
    a_inverse: Vec<f64>,
    b: Vec<f64>,
    theta: Vec<f64>,
    pulls: u64,
}

impl LinArm {
    fn new(d: usize) -> Self {
        let mut a_inverse = vec![0.0; d * d];
        for i in 0..d {
            a_inverse[i * d + i] = 1.0;
        }
        Self {
            a_inverse,
            b: vec![0.0; d],
            theta: vec![0.0; d],
            pulls: 0,
        }
    }

    /// `xᵀ A⁻¹ x`, without allocating.
    fn quadratic_form(&self, x: &[f64]) -> f64 {
        let d = x.len();
        let mut total = 0.0;
        for (i, xi) in x.iter().enumerate() {
            let row = &self.a_inverse[i * d..(i + 1) * d];
            total += xi * row.iter().zip(x).map(|(a, xj)| a * xj).sum::<f64>();
        }
        total
    }
}

/// A disjoint LinUCB contextual bandit over `d`-dimensional contexts.
///
/// Each arm keeps `A = I + Σ x xᵀ` and `b = Σ r x` over its pulls; the score of an arm in
/// context `x` is `θᵀ x + alpha √(xᵀ A⁻¹ x)` with `θ = A⁻¹ b`. `A⁻¹` is kept up to date by the
/// Sherman–Morrison formula, `A⁻¹ ← A⁻¹ - (A⁻¹x)(A⁻¹x)ᵀ / (1 + xᵀA⁻¹x)`, so an update costs
/// `O(d²)` and nothing is ever inverted. Ties go to the lowest arm index, so the choice is a
/// pure function of the history.
///
/// ```
/// use mia_experiments::bandit::LinUcb;
/// let mut bandit = LinUcb::new(2, 2, 1.0)?;
/// bandit.update(0, &[1.0, 0.0], 1.0)?;
/// assert_eq!(bandit.choose(&[1.0, 0.0])?, 0);
/// # Ok::<(), mia_experiments::ExperimentError>(())
/// ```
///
/// It serialises with serde for hosts that persist it; deserialising checks every matrix's
/// shape, so a corrupt state is an error rather than a panic later.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "LinUcbState")]
pub struct LinUcb {
    dimension: usize,
    alpha: f64,
    arms: Vec<LinArm>,
}

/// The serialised form of [`LinUcb`], checked before use.
#[derive(Deserialize)]
struct LinUcbState {
    dimension: usize,
    alpha: f64,
    arms: Vec<LinArm>,
}

impl TryFrom<LinUcbState> for LinUcb {
    type Error = ExperimentError;

    fn try_from(state: LinUcbState) -> Result<Self> {
        let mut checked = LinUcb::new(state.arms.len(), state.dimension, state.alpha)?;
        let d = state.dimension;
        for arm in &state.arms {
            let finite = |v: &[f64]| v.iter().all(|x| x.is_finite());
            if arm.a_inverse.len() != d * d
                || arm.b.len() != d
                || arm.theta.len() != d
                || !(finite(&arm.a_inverse) && finite(&arm.b) && finite(&arm.theta))
            {
                return Err(ExperimentError::invalid(format!(
                    "LinUCB state does not match dimension {d}"
                )));
            }
        }
        checked.arms = state.arms;
        Ok(checked)
    }
}

impl LinUcb {
    /// `arms` arms over contexts of `dimension` features, with exploration weight `alpha`
    /// (0 is greedy; Li et al. use `1 + √(ln(2/δ)/2)`).
    ///
    /// # Errors
    /// [`ExperimentError::InvalidInput`] for no arms, a zero dimension or an `alpha` that is
    /// negative or not finite.
    pub fn new(arms: usize, dimension: usize, alpha: f64) -> Result<Self> {
        if arms == 0 || dimension == 0 {
            return Err(ExperimentError::invalid(
                "LinUCB needs at least one arm and one feature",
            ));
        }
        if !(alpha.is_finite() && alpha >= 0.0) {
            return Err(ExperimentError::invalid(format!(
                "LinUCB alpha must be finite and non-negative, got {alpha}"
            )));
        }
        Ok(Self {
            dimension,
            alpha,
            arms: (0..arms).map(|_| LinArm::new(dimension)).collect(),
        })
    }

    /// The number of arms.
    pub fn arms(&self) -> usize {
        self.arms.len()
    }

    /// The number of features of a context.
    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// An arm's current coefficients `θ = A⁻¹ b`, or `None` for an unknown arm.
    pub fn theta(&self, arm: usize) -> Option<&[f64]> {
        self.arms.get(arm).map(|a| a.theta.as_slice())
    }

    /// How many updates an arm has had, or `None` for an unknown arm.
    pub fn pulls(&self, arm: usize) -> Option<u64> {
        self.arms.get(arm).map(|a| a.pulls)
    }

    fn check_context(&self, context: &[f64]) -> Result<()> {
        if context.len() != self.dimension {
            return Err(ExperimentError::invalid(format!(
                "context has {} features, LinUCB expects {}",
                context.len(),
                self.dimension
            )));
        }
        if context.iter().any(|x| !x.is_finite()) {
            return Err(ExperimentError::invalid("context features must be finite"));
        }
        Ok(())
    }

    fn score(&self, arm: &LinArm, context: &[f64]) -> f64 {
        let mean: f64 = arm.theta.iter().zip(context).map(|(t, x)| t * x).sum();
        // A⁻¹ is positive definite; clamp the rounding error of a near-zero form.
        mean + self.alpha * arm.quadratic_form(context).max(0.0).sqrt()
    }

    /// Each arm's upper confidence bound in this context.
    ///
    /// # Errors
    /// [`ExperimentError::InvalidInput`] for a context of the wrong length or with a
    /// non-finite feature.
    pub fn scores(&self, context: &[f64]) -> Result<Vec<f64>> {
        self.check_context(context)?;
        Ok(self.arms.iter().map(|a| self.score(a, context)).collect())
    }

    /// The arm with the highest score in this context; the lowest index among equals.
    ///
    /// # Errors
    /// As [`scores`](LinUcb::scores).
    pub fn choose(&self, context: &[f64]) -> Result<usize> {
        self.check_context(context)?;
        let mut best = (0, f64::NEG_INFINITY);
        for (i, arm) in self.arms.iter().enumerate() {
            let s = self.score(arm, context);
            if s > best.1 {
                best = (i, s);
            }
        }
        Ok(best.0)
    }

    /// Learns that `arm` earned `reward` in `context`.
    ///
    /// # Errors
    /// [`ExperimentError::InvalidInput`], changing nothing, for an unknown arm, a non-finite
    /// reward or a bad context.
    pub fn update(&mut self, arm: usize, context: &[f64], reward: f64) -> Result<()> {
        self.check_context(context)?;
        if !reward.is_finite() {
            return Err(ExperimentError::invalid(format!(
                "reward must be finite, got {reward}"
            )));
        }
        let d = self.dimension;
        let Some(state) = self.arms.get_mut(arm) else {
            return Err(ExperimentError::invalid(format!(
                "no arm {arm}: LinUCB has {} arms",
                self.arms.len()
            )));
        };
        // u = A⁻¹ x (A⁻¹ is symmetric, so xᵀ A⁻¹ = uᵀ).
        let u: Vec<f64> = (0..d)
            .map(|i| {
                state.a_inverse[i * d..(i + 1) * d]
                    .iter()
                    .zip(context)
                    .map(|(a, x)| a * x)
                    .sum()
            })
            .collect();
        // 1 + xᵀ A⁻¹ x ≥ 1 since A⁻¹ is positive definite.
        let denominator = 1.0 + u.iter().zip(context).map(|(a, x)| a * x).sum::<f64>();
        for i in 0..d {
            for j in 0..d {
                state.a_inverse[i * d + j] -= u[i] * u[j] / denominator;
            }
        }
        for (b, x) in state.b.iter_mut().zip(context) {
            *b += reward * x;
        }
        for i in 0..d {
            state.theta[i] = state.a_inverse[i * d..(i + 1) * d]
                .iter()
                .zip(&state.b)
                .map(|(a, b)| a * b)
                .sum();
        }
        state.pulls += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::bandit::sampling::standard_normal;
    use rand::rngs::SmallRng;
    use rand::{RngExt, SeedableRng};

    #[test]
    fn matches_a_hand_computed_example() {
        let mut bandit = LinUcb::new(2, 2, 1.0).unwrap();
        // A fresh bandit ties everywhere: the lowest index wins.
        assert_eq!(bandit.choose(&[0.3, -0.7]).unwrap(), 0);
        bandit.update(0, &[1.0, 0.0], 1.0).unwrap();
        bandit.update(0, &[1.0, 1.0], 0.0).unwrap();
        // A = [[3, 1], [1, 2]], det 5, A⁻¹ = [[0.4, -0.2], [-0.2, 0.6]]; b = (1, 0).
        let a = &bandit.arms[0].a_inverse;
        for (got, want) in a.iter().zip([0.4, -0.2, -0.2, 0.6]) {
            assert!((got - want).abs() < 1e-15, "{a:?}");
        }
        let theta = bandit.theta(0).unwrap();
        assert!((theta[0] - 0.4).abs() < 1e-15 && (theta[1] + 0.2).abs() < 1e-15);
        // At x = (0, 1): arm 0 scores -0.2 + √0.6, arm 1 (no data) scores √1.
        let s = bandit.scores(&[0.0, 1.0]).unwrap();
        assert!((s[0] - (-0.2 + 0.6f64.sqrt())).abs() < 1e-15, "{s:?}");
        assert_eq!(s[1], 1.0);
        assert_eq!(bandit.choose(&[0.0, 1.0]).unwrap(), 1);
        // At x = (1, 0): 0.4 + √0.4 = 1.0325 beats 1.
        assert_eq!(bandit.choose(&[1.0, 0.0]).unwrap(), 0);
        assert_eq!(bandit.pulls(0), Some(2));
    }

    #[test]
    fn state_round_trips_and_corrupt_state_is_refused() {
        let mut bandit = LinUcb::new(2, 2, 0.5).unwrap();
        bandit.update(1, &[0.5, 1.0], 1.0).unwrap();
        let text = serde_json::to_string(&bandit).unwrap();
        assert_eq!(serde_json::from_str::<LinUcb>(&text).unwrap(), bandit);
        let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
        value["dimension"] = 3.into();
        assert!(serde_json::from_value::<LinUcb>(value).is_err());
    }

    #[test]
    fn bad_input_is_refused_and_changes_nothing() {
        assert!(LinUcb::new(0, 2, 1.0).is_err());
        assert!(LinUcb::new(2, 0, 1.0).is_err());
        assert!(LinUcb::new(2, 2, -1.0).is_err());
        let mut bandit = LinUcb::new(2, 2, 1.0).unwrap();
        let before = bandit.clone();
        assert!(bandit.update(2, &[1.0, 0.0], 1.0).is_err());
        assert!(bandit.update(0, &[1.0], 1.0).is_err());
        assert!(bandit.update(0, &[1.0, f64::NAN], 1.0).is_err());
        assert!(bandit.update(0, &[1.0, 0.0], f64::INFINITY).is_err());
        assert!(bandit.choose(&[1.0, 2.0, 3.0]).is_err());
        assert_eq!(bandit, before);
    }

    /// Total regret of LinUCB and of uniform play on a linear environment: 5 arms, 6 features,
    /// rewards `θ_kᵀ x + N(0, 0.1²)`.
    fn linear_regret(seed: u64, steps: usize) -> (f64, f64) {
        let (k, d) = (5, 6);
        let mut rng = SmallRng::seed_from_u64(seed);
        let thetas: Vec<Vec<f64>> = (0..k)
            .map(|_| (0..d).map(|_| rng.random::<f64>() * 2.0 - 1.0).collect())
            .collect();
        let mut bandit = LinUcb::new(k, d, 1.0).unwrap();
        let (mut linucb, mut uniform) = (0.0, 0.0);
        for _ in 0..steps {
            let x: Vec<f64> = (0..d).map(|_| rng.random::<f64>()).collect();
            let means: Vec<f64> = thetas
                .iter()
                .map(|t| t.iter().zip(&x).map(|(a, b)| a * b).sum())
                .collect();
            let best = means.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let arm = bandit.choose(&x).unwrap();
            linucb += best - means[arm];
            uniform += best - means[rng.random_range(0..k)];
            let reward = means[arm] + 0.1 * standard_normal(&mut rng);
            bandit.update(arm, &x, reward).unwrap();
        }
        (linucb, uniform)
    }

    #[test]
    fn beats_uniform_play_on_a_linear_environment() {
        let (linucb, uniform) = linear_regret(11, 5_000);
        // Uniform play's regret grows linearly; LinUCB's like √T: far below a tenth of it.
        assert!(linucb < 0.1 * uniform, "LinUCB {linucb}, uniform {uniform}");
        // And it keeps learning: the second half costs less than the first.
        let (early, _) = linear_regret(11, 2_500);
        assert!(linucb - early < early, "{early} then {}", linucb - early);
    }
}
