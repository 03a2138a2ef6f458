//! Frequentist tests: Welch's t-test on absolute and relative effects, the pooled
//! two-proportion z-test, binomial intervals, multiple-testing corrections and the sample
//! ratio mismatch check.

use serde::{Deserialize, Serialize};

use super::dist::{
    beta_ppf, check_open_probability, chi2_sf, norm_ppf, norm_sf, t_ppf, t_two_sided_p,
};
use super::summary::{Effect, Estimate, effect_moments};
use crate::error::{ExperimentError, Result};

/// The outcome of a Welch t-test on one effect.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TTest {
    /// Point estimate of the effect.
    pub estimate: f64,
    /// Its standard error (delta method for a relative effect).
    pub std_error: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub dof: f64,
    /// `estimate / std_error`.
    pub t: f64,
    /// Two-sided p-value against no effect.
    pub p_value: f64,
    /// Two-sided `1 - alpha` confidence interval.
    pub ci: [f64; 2],
}

/// Welch–Satterthwaite degrees of freedom of two arms.
///
/// # Errors
/// [`ExperimentError::InsufficientData`] when an arm has fewer than two users;
/// [`ExperimentError::ZeroVariance`] when both arms have zero variance.
pub fn welch_dof(control: &Estimate, treatment: &Estimate) -> Result<f64> {
    if control.n < 2.0 || treatment.n < 2.0 {
        return Err(ExperimentError::InsufficientData(
            "Welch's test needs at least two users per arm".to_owned(),
        ));
    }
    let vc = control.variance / control.n;
    let vt = treatment.variance / treatment.n;
    let den = vt * vt / (treatment.n - 1.0) + vc * vc / (control.n - 1.0);
    if den.is_nan() || den <= 0.0 {
        return Err(ExperimentError::ZeroVariance(
            "both arms have zero variance".to_owned(),
        ));
    }
    Ok((vc + vt).powi(2) / den)
}

/// Welch's two-sided t-test on the absolute or relative effect of `treatment` over `control`,
/// as GrowthBook's `TwoSidedTTest`: the effect's variance from [`effect_moments`], the degrees of
/// freedom from [`welch_dof`], the interval `estimate ± t(1 - alpha/2, dof) · se`.
///
/// # Errors
/// [`ExperimentError::InvalidInput`] for alpha outside (0, 1), and the errors of
/// [`effect_moments`] and [`welch_dof`].
pub fn welch_t_test(
    control: &Estimate,
    treatment: &Estimate,
    effect: Effect,
    alpha: f64,
) -> Result<TTest> {
    check_open_probability(alpha, "alpha")?;
    let (estimate, variance) = effect_moments(control, treatment, effect)?;
    let dof = welch_dof(control, treatment)?;
    t_test_from_moments(estimate, variance, dof, alpha)
}

/// A two-sided t-test from an estimate, its variance and the degrees of freedom.
pub(crate) fn t_test_from_moments(
    estimate: f64,
    variance: f64,
    dof: f64,
    alpha: f64,
) -> Result<TTest> {
    check_open_probability(alpha, "alpha")?;
    if !(variance.is_finite() && variance > 0.0) {
        return Err(ExperimentError::ZeroVariance(
            "the effect has zero variance".to_owned(),
        ));
    }
    let std_error = variance.sqrt();
    let t = estimate / std_error;
    let width = t_ppf(1.0 - alpha / 2.0, dof)? * std_error;
    Ok(TTest {
        estimate,
        std_error,
        dof,
        t,
        p_value: t_two_sided_p(t, dof)?,
        ci: [estimate - width, estimate + width],
    })
}

/// The outcome of a z-test.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZTest {
    /// The z statistic (positive when the treatment converts more).
    pub z: f64,
    /// Two-sided p-value.
    pub p_value: f64,
}

/// The pooled two-proportion z-test (statsmodels `proportions_ztest`):
/// `z = (p_t - p_c) / sqrt(p (1 - p) (1/n_c + 1/n_t))` with the pooled rate `p`.
///
/// # Errors
/// [`ExperimentError::InvalidInput`] for more conversions than users;
/// [`ExperimentError::InsufficientData`] for an arm without users;
/// [`ExperimentError::ZeroVariance`] when the pooled rate is 0 or 1.
pub fn two_proportion_z_test(
    control_users: u64,
    control_conversions: u64,
    treatment_users: u64,
    treatment_conversions: u64,
) -> Result<ZTest> {
    if control_conversions > control_users || treatment_conversions > treatment_users {
        return Err(ExperimentError::invalid("more conversions than users"));
    }
    if control_users == 0 || treatment_users == 0 {
        return Err(ExperimentError::InsufficientData(
            "an arm has no users".to_owned(),
        ));
    }
    let (nc, nt) = (control_users as f64, treatment_users as f64);
    let (pc, pt) = (
        control_conversions as f64 / nc,
        treatment_conversions as f64 / nt,
    );
    let pooled = (control_conversions + treatment_conversions) as f64 / (nc + nt);
    let variance = pooled * (1.0 - pooled) * (1.0 / nc + 1.0 / nt);
    if variance.is_nan() || variance <= 0.0 {
        return Err(ExperimentError::ZeroVariance(
            "the pooled conversion rate is 0 or 1".to_owned(),
        ));
    }
    let z = (pt - pc) / variance.sqrt();
    Ok(ZTest {
        z,
        p_value: (2.0 * norm_sf(z.abs())).min(1.0),
    })
}

/// How to build a confidence interval for a proportion.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IntervalMethod {
    /// Wilson score interval: good coverage, never outside [0, 1].
    #[default]
    Wilson,
    /// Clopper–Pearson "exact" interval from Beta quantiles: conservative.
    ClopperPearson,
}

/// A two-sided `1 - alpha` interval for a binomial proportion `successes / trials`
/// (statsmodels `proportion_confint`, methods `wilson` and `beta`).
///
/// # Errors
/// [`ExperimentError::InvalidInput`] for alpha outside (0, 1) or `successes > trials`;
/// [`ExperimentError::InsufficientData`] for zero trials.
pub fn proportion_interval(
    successes: u64,
    trials: u64,
    alpha: f64,
    method: IntervalMethod,
) -> Result<[f64; 2]> {
    check_open_probability(alpha, "alpha")?;
    if successes > trials {
        return Err(ExperimentError::invalid(format!(
            "{successes} successes in {trials} trials"
        )));
    }
    if trials == 0 {
        return Err(ExperimentError::InsufficientData("zero trials".to_owned()));
    }
    let (k, n) = (successes as f64, trials as f64);
    match method {
        IntervalMethod::Wilson => {
            let z = norm_ppf(1.0 - alpha / 2.0)?;
            let p = k / n;
            let z2 = z * z;
            let center = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
            let half = z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
            // The bounds at 0 and n successes are exactly 0 and 1; keep rounding out.
            let lo = if successes == 0 {
                0.0
            } else {
                (center - half).max(0.0)
            };
            let hi = if successes == trials {
                1.0
            } else {
                (center + half).min(1.0)
            };
            Ok([lo, hi])
        }
        IntervalMethod::ClopperPearson => {
            let lo = if successes == 0 {
                0.0
            } else {
                beta_ppf(alpha / 2.0, k, n - k + 1.0)?
            };
            let hi = if successes == trials {
                1.0
            } else {
                beta_ppf(1.0 - alpha / 2.0, k + 1.0, n - k)?
            };
            Ok([lo, hi])
        }
    }
}

fn check_p_values(p_values: &[f64]) -> Result<()> {
    if let Some(p) = p_values.iter().find(|p| !(0.0..=1.0).contains(*p)) {
        return Err(ExperimentError::invalid(format!(
            "a p-value must be in [0, 1], got {p}"
        )));
    }
    Ok(())
}

/// Holm's step-down adjusted p-values (family-wise error), in the input's order
/// (statsmodels `multipletests(method="holm")`).
///
/// # Errors
/// [`ExperimentError::InvalidInput`] for a p-value outside [0, 1] (NaN included).
pub fn holm(p_values: &[f64]) -> Result<Vec<f64>> {
    check_p_values(p_values)?;
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    let mut adjusted = vec![0.0; m];
    let mut running: f64 = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p_values[i]).min(1.0));
        adjusted[i] = running;
    }
    Ok(adjusted)
}

/// Benjamini–Hochberg adjusted p-values (false discovery rate), in the input's order
/// (statsmodels `multipletests(method="fdr_bh")`).
///
/// # Errors
/// [`ExperimentError::InvalidInput`] for a p-value outside [0, 1] (NaN included).
pub fn benjamini_hochberg(p_values: &[f64]) -> Result<Vec<f64>> {
    check_p_values(p_values)?;
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    let mut adjusted = vec![0.0; m];
    let mut running: f64 = 1.0;
    for (rank, &i) in order.iter().enumerate().rev() {
        running = running.min(m as f64 / (rank + 1) as f64 * p_values[i]);
        adjusted[i] = running.min(1.0);
    }
    Ok(adjusted)
}

/// The sample ratio mismatch check.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Srm {
    /// Pearson's chi-square statistic against the configured weights.
    pub chi2: f64,
    /// Its p-value with `arms - 1` degrees of freedom.
    pub p_value: f64,
    /// Whether `p_value < 0.001`: the split is broken and the results are not to be trusted.
    pub mismatch: bool,
}

/// The p-value below which [`sample_ratio_mismatch`] flags the experiment.
pub const SRM_THRESHOLD: f64 = 0.001;

/// Chi-square goodness of fit of the users per arm against the configured weights (scipy
/// `chisquare`). Weights need not sum to one.
///
/// # Errors
/// [`ExperimentError::InvalidInput`] for fewer than two arms, mismatched lengths or a
/// non-positive weight; [`ExperimentError::InsufficientData`] without users.
pub fn sample_ratio_mismatch(users: &[u64], weights: &[f64]) -> Result<Srm> {
    if users.len() != weights.len() || users.len() < 2 {
        return Err(ExperimentError::invalid(format!(
            "{} arms and {} weights: need the same number, at least two",
            users.len(),
            weights.len()
        )));
    }
    if let Some(w) = weights.iter().find(|w| !(w.is_finite() && **w > 0.0)) {
        return Err(ExperimentError::invalid(format!(
            "weights must be positive and finite, got {w}"
        )));
    }
    let total: f64 = users.iter().map(|&u| u as f64).sum();
    if total == 0.0 {
        return Err(ExperimentError::InsufficientData("no users".to_owned()));
    }
    let weight_sum: f64 = weights.iter().sum();
    let chi2: f64 = users
        .iter()
        .zip(weights)
        .map(|(&u, &w)| {
            let expected = total * w / weight_sum;
            (u as f64 - expected).powi(2) / expected
        })
        .sum();
    let p_value = chi2_sf(chi2, (users.len() - 1) as f64)?;
    Ok(Srm {
        chi2,
        p_value,
        mismatch: p_value < SRM_THRESHOLD,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrections_keep_order_and_bounds() {
        let p = [0.01, 0.04, 0.03, 0.005];
        let h = holm(&p).unwrap();
        assert_eq!(h, vec![0.03, 0.06, 0.06, 0.02]);
        let bh = benjamini_hochberg(&p).unwrap();
        assert!((bh[0] - 0.02).abs() < 1e-15 && (bh[1] - 0.04).abs() < 1e-15);
        assert!(holm(&[f64::NAN]).is_err());
        assert!(holm(&[]).unwrap().is_empty());
    }

    #[test]
    fn srm_flags_a_broken_split() {
        assert!(
            !sample_ratio_mismatch(&[5000, 5050], &[0.5, 0.5])
                .unwrap()
                .mismatch
        );
        assert!(
            sample_ratio_mismatch(&[5000, 5400], &[1.0, 1.0])
                .unwrap()
                .mismatch
        );
        assert!(sample_ratio_mismatch(&[5000], &[1.0]).is_err());
        assert!(sample_ratio_mismatch(&[0, 0], &[1.0, 1.0]).is_err());
    }

    #[test]
    fn intervals_handle_the_edges() {
        let w = proportion_interval(0, 20, 0.05, IntervalMethod::Wilson).unwrap();
        assert_eq!(w[0], 0.0);
        let cp = proportion_interval(20, 20, 0.05, IntervalMethod::ClopperPearson).unwrap();
        assert_eq!(cp[1], 1.0);
        assert!(proportion_interval(0, 0, 0.05, IntervalMethod::Wilson).is_err());
        assert!(proportion_interval(3, 2, 0.05, IntervalMethod::Wilson).is_err());
    }

    #[test]
    fn z_test_refuses_degenerate_input() {
        assert!(two_proportion_z_test(100, 0, 100, 0).is_err());
        assert!(two_proportion_z_test(0, 0, 100, 5).is_err());
        let z = two_proportion_z_test(1000, 100, 1000, 130).unwrap();
        assert!(z.z > 0.0 && z.p_value < 0.05);
    }
}
