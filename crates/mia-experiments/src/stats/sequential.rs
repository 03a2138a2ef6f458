//! Always-valid inference: asymptotic confidence sequences (Waudby-Smith et al. 2023,
//! eq. 9 and 161; Howard et al. 2021), as GrowthBook's sequential testing. The interval and
//! p-value may be looked at after every new batch of data without inflating the error rate.
//!
//! The tuning parameter `N` is the total sample size at which the sequence is tightest;
//! `rho = sqrt((-2 ln alpha + ln(-2 ln alpha + 1)) / N)`.

use serde::{Deserialize, Serialize};

use super::dist::check_open_probability;
use super::frequentist::{TTest, welch_dof};
use super::summary::{Effect, Estimate, effect_moments};
use crate::error::{ExperimentError, Result};

/// Settings of sequential testing.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sequential {
    /// The tuning parameter `N` (total users at which the interval is tightest); GrowthBook's
    /// default is 5000.
    pub tuning: f64,
}

impl Default for Sequential {
    fn default() -> Self {
        Self { tuning: 5000.0 }
    }
}

/// The mixing parameter `rho` from `alpha` and the tuning parameter.
///
/// # Errors
/// [`ExperimentError::InvalidInput`] for alpha outside (0, 1) or a non-positive tuning.
pub fn sequential_rho(alpha: f64, tuning: f64) -> Result<f64> {
    check_open_probability(alpha, "alpha")?;
    if !(tuning.is_finite() && tuning > 0.0) {
        return Err(ExperimentError::invalid(format!(
            "the sequential tuning parameter must be positive, got {tuning}"
        )));
    }
    let l = -2.0 * alpha.ln();
    Ok(((l + (l + 1.0).ln()) / tuning).sqrt())
}

fn check(variance: f64, total_n: f64) -> Result<()> {
    if !(variance.is_finite() && variance > 0.0) {
        return Err(ExperimentError::ZeroVariance(
            "sequential interval".to_owned(),
        ));
    }
    if total_n.is_nan() || total_n < 1.0 {
        return Err(ExperimentError::InsufficientData("no users".to_owned()));
    }
    Ok(())
}

/// The always-valid `1 - alpha` interval around `estimate`, whose estimator has variance
/// `variance` (its squared standard error) after `total_n` users in all arms:
/// `estimate ± sqrt(v N) sqrt(2 (N rho² + 1) ln(sqrt(N rho² + 1) / alpha) / (N rho)²)`.
///
/// # Errors
/// [`ExperimentError::ZeroVariance`], [`ExperimentError::InsufficientData`] without users, and
/// the errors of [`sequential_rho`].
pub fn confidence_sequence(
    estimate: f64,
    variance: f64,
    total_n: f64,
    tuning: f64,
    alpha: f64,
) -> Result<[f64; 2]> {
    check(variance, total_n)?;
    let rho = sequential_rho(alpha, tuning)?;
    let a = total_n * rho * rho + 1.0;
    let half = (variance * total_n).sqrt()
        * (2.0 * a * (a.sqrt() / alpha).ln() / (total_n * rho).powi(2)).sqrt();
    Ok([estimate - half, estimate + half])
}

/// The always-valid two-sided p-value, `min(1, 1 / e-value)` (eq. 155 of Waudby-Smith et al.),
/// computed in log space. It stays at 1 until enough evidence has accumulated.
///
/// # Errors
/// As [`confidence_sequence`].
pub fn sequential_p_value(
    estimate: f64,
    variance: f64,
    total_n: f64,
    tuning: f64,
    alpha: f64,
) -> Result<f64> {
    check(variance, total_n)?;
    let rho = sequential_rho(alpha, tuning)?;
    let t2 = estimate * estimate / variance;
    let a = total_n * rho * rho + 1.0;
    let log_e = rho * rho * t2 * total_n / (2.0 * a) - 0.5 * a.ln();
    Ok(if log_e <= 0.0 { 1.0 } else { (-log_e).exp() })
}

/// Welch's test with the interval and p-value replaced by their always-valid versions
/// (GrowthBook's `SequentialTwoSidedTTest`); the estimate, standard error, degrees of freedom
/// and t are those of the fixed-horizon test.
///
/// # Errors
/// As [`super::welch_t_test`] and [`confidence_sequence`].
pub fn sequential_t_test(
    control: &Estimate,
    treatment: &Estimate,
    effect: Effect,
    alpha: f64,
    settings: Sequential,
) -> Result<TTest> {
    check_open_probability(alpha, "alpha")?;
    let (estimate, variance) = effect_moments(control, treatment, effect)?;
    let dof = welch_dof(control, treatment)?;
    let total = control.n + treatment.n;
    Ok(TTest {
        estimate,
        std_error: variance.sqrt(),
        dof,
        t: estimate / variance.sqrt(),
        p_value: sequential_p_value(estimate, variance, total, settings.tuning, alpha)?,
        ci: confidence_sequence(estimate, variance, total, settings.tuning, alpha)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sequence_is_wider_than_the_fixed_interval_and_shrinks() {
        let fixed = 1.959963984540054 * 0.01_f64.sqrt();
        let [lo, hi] = confidence_sequence(0.0, 0.01, 10_000.0, 5000.0, 0.05).unwrap();
        assert!(hi > fixed && (lo + hi).abs() < 1e-15);
        let [_, later] = confidence_sequence(0.0, 0.001, 100_000.0, 5000.0, 0.05).unwrap();
        assert!(later < hi);
        assert_eq!(
            sequential_p_value(0.0, 0.01, 100.0, 5000.0, 0.05).unwrap(),
            1.0
        );
        assert!(confidence_sequence(0.0, 0.0, 10.0, 5000.0, 0.05).is_err());
        assert!(sequential_rho(0.05, 0.0).is_err());
    }
}
