//! Power, sample size and minimum detectable effect for two arms of equal size, two-sided,
//! with the conventions of statsmodels' `power_proportions_2indep` and
//! `samplesize_proportions_2indep_onetail`: pooled variance under the null, unpooled under the
//! alternative.

use serde::{Deserialize, Serialize};

use super::dist::{check_open_probability, norm_cdf, norm_ppf, norm_sf};
use crate::error::{ExperimentError, Result};

fn check_rate(p: f64, name: &str) -> Result<()> {
    check_open_probability(p, name)
}

/// Standard deviations of the difference of two rates under the null (pooled) and the
/// alternative, for one user per arm.
fn sigmas(p_control: f64, p_treatment: f64) -> (f64, f64) {
    let pooled = (p_control + p_treatment) / 2.0;
    let null = (2.0 * pooled * (1.0 - pooled)).sqrt();
    let alternative = (p_control * (1.0 - p_control) + p_treatment * (1.0 - p_treatment)).sqrt();
    (null, alternative)
}

/// Power of the two-sided two-proportion z-test with `n_per_arm` users in each arm, when the
/// true rates are `p_control` and `p_treatment`. Both tails count, as in statsmodels.
///
/// # Errors
/// [`ExperimentError::InvalidInput`] for rates or alpha outside (0, 1), or no users.
pub fn power_two_proportions(
    p_control: f64,
    p_treatment: f64,
    n_per_arm: f64,
    alpha: f64,
) -> Result<f64> {
    check_rate(p_control, "control rate")?;
    check_rate(p_treatment, "treatment rate")?;
    check_open_probability(alpha, "alpha")?;
    if !(n_per_arm.is_finite() && n_per_arm > 0.0) {
        return Err(ExperimentError::invalid(format!(
            "users per arm must be positive, got {n_per_arm}"
        )));
    }
    let (s0, s1) = sigmas(p_control, p_treatment);
    let crit = norm_ppf(1.0 - alpha / 2.0)?;
    let shift = (p_treatment - p_control) * n_per_arm.sqrt() / s1;
    Ok(norm_sf(crit * s0 / s1 - shift) + norm_cdf(-crit * s0 / s1 - shift))
}

/// The users needed per arm.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SampleSize {
    /// Users per arm, rounded up.
    pub per_arm: u64,
    /// The unrounded solution of the power equation.
    pub exact: f64,
}

/// Users per arm to detect a relative lift `relative_mde` over a `baseline` conversion rate
/// with a two-sided test at `alpha` and the given `power`:
/// `n = ((z(1-alpha/2) σ0 + z(power) σ1) / Δ)²` with `Δ = baseline · relative_mde`,
/// `σ0² = 2 p̄ (1 - p̄)`, `σ1² = p_c (1 - p_c) + p_t (1 - p_t)`.
///
/// # Errors
/// [`ExperimentError::InvalidInput`] for a baseline, alpha or power outside (0, 1), a zero
/// MDE, or a treatment rate `baseline · (1 + mde)` outside (0, 1).
pub fn sample_size_two_proportions(
    baseline: f64,
    relative_mde: f64,
    alpha: f64,
    power: f64,
) -> Result<SampleSize> {
    check_rate(baseline, "baseline")?;
    check_open_probability(alpha, "alpha")?;
    check_open_probability(power, "power")?;
    if !(relative_mde.is_finite() && relative_mde != 0.0) {
        return Err(ExperimentError::invalid(format!(
            "the minimum detectable effect must be non-zero, got {relative_mde}"
        )));
    }
    let treatment = baseline * (1.0 + relative_mde);
    check_rate(treatment, "treatment rate baseline * (1 + mde)")?;
    let (s0, s1) = sigmas(baseline, treatment);
    let z_alpha = norm_ppf(1.0 - alpha / 2.0)?;
    let z_power = norm_ppf(power)?;
    let delta = treatment - baseline;
    let exact = ((z_alpha * s0 + z_power * s1) / delta).powi(2);
    Ok(SampleSize {
        per_arm: exact.ceil() as u64,
        exact,
    })
}

/// Users per arm for a mean metric with per-user standard deviation `std_dev` (equal in both
/// arms) to detect an absolute difference `absolute_mde`: `n = 2 σ² (z(1-alpha/2) + z(power))² / Δ²`.
///
/// # Errors
/// [`ExperimentError::InvalidInput`] for alpha or power outside (0, 1), a non-positive
/// standard deviation or a zero MDE.
pub fn sample_size_means(
    std_dev: f64,
    absolute_mde: f64,
    alpha: f64,
    power: f64,
) -> Result<SampleSize> {
    check_open_probability(alpha, "alpha")?;
    check_open_probability(power, "power")?;
    if !(std_dev.is_finite() && std_dev > 0.0 && absolute_mde.is_finite() && absolute_mde != 0.0) {
        return Err(ExperimentError::invalid(
            "the standard deviation must be positive and the MDE non-zero",
        ));
    }
    let z = norm_ppf(1.0 - alpha / 2.0)? + norm_ppf(power)?;
    let exact = 2.0 * (std_dev * z / absolute_mde).powi(2);
    Ok(SampleSize {
        per_arm: exact.ceil() as u64,
        exact,
    })
}

/// The smallest relative lift over `baseline` that `n_per_arm` users per arm detect with the
/// given power: the inverse of [`sample_size_two_proportions`] (solved by bisection to full
/// precision).
///
/// # Errors
/// [`ExperimentError::InvalidInput`] for a baseline, alpha or power outside (0, 1) or no
/// users; [`ExperimentError::InsufficientData`] when no lift up to a rate of 1 is detectable
/// with so few users.
pub fn minimum_detectable_effect(
    baseline: f64,
    n_per_arm: f64,
    alpha: f64,
    power: f64,
) -> Result<f64> {
    check_rate(baseline, "baseline")?;
    check_open_probability(alpha, "alpha")?;
    check_open_probability(power, "power")?;
    if !(n_per_arm.is_finite() && n_per_arm > 0.0) {
        return Err(ExperimentError::invalid(format!(
            "users per arm must be positive, got {n_per_arm}"
        )));
    }
    let z_alpha = norm_ppf(1.0 - alpha / 2.0)?;
    let z_power = norm_ppf(power)?;
    let root_n = n_per_arm.sqrt();
    // Positive once the lift is detectable with n users.
    let gap = |lift: f64| {
        let treatment = baseline * (1.0 + lift);
        let (s0, s1) = sigmas(baseline, treatment);
        root_n * (treatment - baseline) - z_alpha * s0 - z_power * s1
    };
    let mut lo = 0.0;
    let mut hi = (1.0 / baseline - 1.0) * (1.0 - 1e-12);
    if gap(hi) <= 0.0 {
        return Err(ExperimentError::InsufficientData(format!(
            "{n_per_arm} users per arm cannot detect any lift over {baseline}"
        )));
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if gap(mid) > 0.0 {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_size_and_mde_are_inverse() {
        let s = sample_size_two_proportions(0.05, 0.10, 0.05, 0.8).unwrap();
        let mde = minimum_detectable_effect(0.05, s.exact, 0.05, 0.8).unwrap();
        assert!((mde - 0.10).abs() < 1e-10, "{mde}");
        // With n users the power is at least the target (the other tail only adds).
        let p = power_two_proportions(0.05, 0.055, s.per_arm as f64, 0.05).unwrap();
        assert!((0.8..0.81).contains(&p), "{p}");
    }

    #[test]
    fn impossible_requests_are_errors() {
        assert!(sample_size_two_proportions(0.6, 1.0, 0.05, 0.8).is_err());
        assert!(sample_size_two_proportions(0.05, 0.0, 0.05, 0.8).is_err());
        assert!(minimum_detectable_effect(0.05, 1.0, 0.05, 0.8).is_err());
        assert!(power_two_proportions(0.05, 0.06, 0.0, 0.05).is_err());
    }
}
