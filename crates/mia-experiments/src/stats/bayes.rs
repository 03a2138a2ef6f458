//! Bayesian analysis with GrowthBook's conventions (`EffectBayesianABTest` in gbstats): a
//! Gaussian posterior on the effect, built from the same point estimate and delta-method
//! variance as the frequentist test, with a flat prior unless a proper one is given.

use serde::{Deserialize, Serialize};

use super::dist::{check_open_probability, norm_pdf, norm_ppf, norm_sf};
use super::summary::{Effect, Estimate, effect_moments};
use crate::error::{ExperimentError, Result};

/// A proper Gaussian prior on the effect.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prior {
    /// Prior mean of the effect.
    pub mean: f64,
    /// Prior standard deviation of the effect.
    pub stddev: f64,
    /// The scale the prior is stated on; GrowthBook's default is relative. A relative prior on
    /// an absolute analysis is multiplied by the control mean (and the other way round).
    #[serde(default = "relative")]
    pub scale: Effect,
}

fn relative() -> Effect {
    Effect::Relative
}

impl Prior {
    /// A prior on the relative effect.
    pub fn relative(mean: f64, stddev: f64) -> Self {
        Self {
            mean,
            stddev,
            scale: Effect::Relative,
        }
    }

    /// Mean and variance of the prior on the scale of `effect`, given the control mean.
    fn on_scale(&self, effect: Effect, control_mean: f64) -> Result<(f64, f64)> {
        if !(self.mean.is_finite() && self.stddev.is_finite() && self.stddev > 0.0) {
            return Err(ExperimentError::invalid(format!(
                "a prior needs a finite mean and a positive standard deviation, got ({}, {})",
                self.mean, self.stddev
            )));
        }
        let var = self.stddev * self.stddev;
        Ok(match (self.scale, effect) {
            (a, b) if a == b => (self.mean, var),
            (Effect::Relative, _) => (
                self.mean * control_mean.abs(),
                var * control_mean * control_mean,
            ),
            (Effect::Absolute, _) => {
                if control_mean == 0.0 {
                    return Err(ExperimentError::ZeroBaseline(
                        "scaling the prior".to_owned(),
                    ));
                }
                (
                    self.mean / control_mean.abs(),
                    var / (control_mean * control_mean),
                )
            }
        })
    }
}

/// A Gaussian posterior on the effect and what GrowthBook reports from it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Posterior {
    /// Posterior mean of the effect.
    pub mean: f64,
    /// Posterior standard deviation.
    pub stddev: f64,
    /// `P(effect > 0)`.
    pub chance_to_win: f64,
    /// Equal-tailed `1 - alpha` credible interval.
    pub credible_interval: [f64; 2],
    /// Expected loss `[of shipping control, of shipping treatment]`:
    /// `[E max(effect, 0), E max(-effect, 0)]`, from the truncated normal.
    pub risk: [f64; 2],
}

/// The posterior on the effect of `treatment` over `control`, flat prior when `prior` is
/// `None`. With a proper prior of variance `τ²` and mean `μ0`, the posterior precision is
/// `1/v + 1/τ²` and the mean `(d/v + μ0/τ²) / precision`.
///
/// # Errors
/// [`ExperimentError::InvalidInput`] for alpha outside (0, 1) or a bad prior, and the errors of
/// [`effect_moments`].
pub fn gaussian_posterior(
    control: &Estimate,
    treatment: &Estimate,
    effect: Effect,
    prior: Option<&Prior>,
    alpha: f64,
) -> Result<Posterior> {
    let (estimate, variance) = effect_moments(control, treatment, effect)?;
    let prior = prior
        .map(|p| p.on_scale(effect, control.mean))
        .transpose()?;
    posterior_from_moments(estimate, variance, prior, alpha)
}

/// The posterior from an effect estimate and its variance, and an optional prior given as
/// (mean, variance) on the same scale.
///
/// # Errors
/// [`ExperimentError::InvalidInput`] for alpha outside (0, 1) or a non-positive variance.
pub fn posterior_from_moments(
    estimate: f64,
    variance: f64,
    prior: Option<(f64, f64)>,
    alpha: f64,
) -> Result<Posterior> {
    check_open_probability(alpha, "alpha")?;
    if !(variance.is_finite() && variance > 0.0 && estimate.is_finite()) {
        return Err(ExperimentError::invalid(format!(
            "an effect needs a finite estimate and a positive variance, got ({estimate}, {variance})"
        )));
    }
    let (mean, precision) = match prior {
        None => (estimate, 1.0 / variance),
        Some((m0, v0)) => {
            if !(v0.is_finite() && v0 > 0.0) {
                return Err(ExperimentError::invalid("prior variance must be positive"));
            }
            let precision = 1.0 / variance + 1.0 / v0;
            ((estimate / variance + m0 / v0) / precision, precision)
        }
    };
    let stddev = (1.0 / precision).sqrt();
    let z = norm_ppf(1.0 - alpha / 2.0)?;
    Ok(Posterior {
        mean,
        stddev,
        chance_to_win: norm_sf(-mean / stddev),
        credible_interval: [mean - z * stddev, mean + z * stddev],
        risk: normal_risk(mean, stddev),
    })
}

/// `[E max(X, 0), E max(-X, 0)]` for `X ~ N(mu, sigma²)`: GrowthBook's `get_risk`, which
/// writes them as `P(X > 0) E[X | X > 0]` and `-P(X < 0) E[X | X < 0]`.
pub(crate) fn normal_risk(mu: f64, sigma: f64) -> [f64; 2] {
    let z = mu / sigma;
    // E max(X, 0) = sigma (phi(z) + z Phi(z)) = sigma * g(-z); E max(-X, 0) = sigma * g(z),
    // where g(z) = phi(z) - z Phi(-z) >= 0.
    [sigma * upper_partial(-z), sigma * upper_partial(z)]
}

/// `g(z) = phi(z) - z (1 - Phi(z))`, the standard normal's upper partial expectation of
/// `(Z - z)`, without the cancellation of the plain formula for large `z`.
fn upper_partial(z: f64) -> f64 {
    if z < 8.0 {
        return norm_pdf(z) - z * norm_sf(z);
    }
    // Asymptotic series: phi(z) (1/z² - 3/z⁴ + 15/z⁶ - ...), accurate far below 1e-12 here.
    let inv = 1.0 / (z * z);
    let mut term = inv;
    let mut sum = 0.0;
    for k in 1..12 {
        sum += term;
        term *= -((2 * k + 1) as f64) * inv;
    }
    norm_pdf(z) * sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn risk_is_stable_in_the_tails() {
        for &mu in &[-3.0, -0.5, 0.0, 0.5, 3.0, 9.0, 12.0] {
            let [rc, rt] = normal_risk(mu, 1.0);
            // E max(X,0) - E max(-X,0) = E X.
            assert!((rc - rt - mu).abs() < 1e-12, "{mu}");
            assert!(rc >= 0.0 && rt >= 0.0);
        }
        // Continuity across the switch to the series.
        let a = upper_partial(8.0 - 1e-9);
        let b = upper_partial(8.0);
        assert!((a - b).abs() / b < 1e-6, "{a} {b}");
    }

    #[test]
    fn a_proper_prior_shrinks_toward_its_mean() {
        let flat = posterior_from_moments(0.1, 0.01, None, 0.05).unwrap();
        let shrunk = posterior_from_moments(0.1, 0.01, Some((0.0, 0.01)), 0.05).unwrap();
        assert!((shrunk.mean - 0.05).abs() < 1e-15);
        assert!(shrunk.stddev < flat.stddev);
        assert!(posterior_from_moments(0.1, 0.0, None, 0.05).is_err());
    }
}
