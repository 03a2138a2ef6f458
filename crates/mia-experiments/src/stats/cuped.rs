//! CUPED: variance reduction with a pre-period covariate (Deng et al. 2013), from sufficient
//! statistics, with GrowthBook's conventions (`RegressionAdjustedStatistic`): one `theta` for
//! all arms, `cov(pre, post) / var(pre)` over the pooled data.

use serde::{Deserialize, Serialize};

use super::frequentist::{TTest, t_test_from_moments};
use super::summary::{Effect, Summary};
use crate::error::{ExperimentError, Result};

/// Sufficient statistics of one arm with a pre-period covariate: the post-period metric, the
/// same metric (or any covariate) before the experiment, and the sum of their products.
/// Mergeable and erasable like [`Summary`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PrePost {
    /// The metric during the experiment.
    pub post: Summary,
    /// The covariate before the experiment, for the same users.
    pub pre: Summary,
    /// `Σ pre_i · post_i`.
    pub sum_products: f64,
}

impl PrePost {
    /// Adds one user's pre-period and post-period values.
    pub fn push(&mut self, pre: f64, post: f64) {
        self.pre.push(pre);
        self.post.push(post);
        self.sum_products += pre * post;
    }

    /// Adds another arm summary (another day, another shard).
    pub fn merge(&mut self, other: &PrePost) {
        self.pre.merge(&other.pre);
        self.post.merge(&other.post);
        self.sum_products += other.sum_products;
    }

    /// Takes out a summary merged in before.
    ///
    /// # Errors
    /// [`ExperimentError::InvalidInput`] when `other` has more users; `self` is then unchanged.
    pub fn subtract(&mut self, other: &PrePost) -> Result<()> {
        let mut next = *self;
        next.pre.subtract(&other.pre)?;
        next.post.subtract(&other.post)?;
        next.sum_products -= other.sum_products;
        *self = next;
        Ok(())
    }

    fn check(&self) -> Result<f64> {
        if self.pre.n != self.post.n {
            return Err(ExperimentError::invalid(format!(
                "pre-period has {} users but post-period {}",
                self.pre.n, self.post.n
            )));
        }
        if self.post.n < 2 {
            return Err(ExperimentError::InsufficientData(
                "CUPED needs at least two users per arm".to_owned(),
            ));
        }
        Ok(self.post.n as f64)
    }

    /// Sample covariance of pre and post.
    fn covariance(&self) -> f64 {
        let n = self.post.n as f64;
        (self.sum_products - self.pre.sum * self.post.sum / n) / (n - 1.0)
    }
}

/// A CUPED-adjusted comparison.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CupedTest {
    /// The regression coefficient used for both arms.
    pub theta: f64,
    /// Welch's test on the adjusted effect.
    pub test: TTest,
    /// `1 - var(adjusted effect) / var(unadjusted effect)`: the share of variance removed.
    pub variance_reduction: f64,
}

/// Welch's test on the CUPED-adjusted effect of `treatment` over `control`.
///
/// Adjusted mean `post - theta · pre`, adjusted per-user variance
/// `var(post) + theta² var(pre) - 2 theta cov(pre, post)`. The relative effect divides by the
/// control's unadjusted post mean, with GrowthBook's delta-method variance
/// (`frequentist_variance_relative_cuped`).
///
/// # Errors
/// [`ExperimentError::InsufficientData`] with fewer than two users in an arm;
/// [`ExperimentError::InvalidInput`] for mismatched pre/post counts or alpha outside (0, 1);
/// [`ExperimentError::ZeroVariance`] when the adjusted effect has no variance;
/// [`ExperimentError::ZeroBaseline`] for a relative effect on a zero control mean.
pub fn cuped(
    control: &PrePost,
    treatment: &PrePost,
    effect: Effect,
    alpha: f64,
) -> Result<CupedTest> {
    let (nc, nt) = (control.check()?, treatment.check()?);
    let mut joint = *control;
    joint.merge(treatment);
    let var_pre = joint.pre.sample_variance().unwrap_or(0.0);
    let var_post = joint.post.sample_variance().unwrap_or(0.0);
    let theta = if var_pre > 0.0 && var_post > 0.0 {
        joint.covariance() / var_pre
    } else {
        0.0
    };
    struct Arm {
        n: f64,
        post_mean: f64,
        adjusted_mean: f64,
        post_var: f64,
        adjusted_var: f64,
        cov: f64,
        pre_var: f64,
    }
    let arm = |s: &PrePost, n: f64| {
        let post_mean = s.post.sum / n;
        let pre_mean = s.pre.sum / n;
        let post_var = s.post.sample_variance().unwrap_or(0.0);
        let pre_var = s.pre.sample_variance().unwrap_or(0.0);
        let cov = s.covariance();
        Arm {
            n,
            post_mean,
            adjusted_mean: post_mean - theta * pre_mean,
            post_var,
            adjusted_var: (post_var + theta * theta * pre_var - 2.0 * theta * cov).max(0.0),
            cov,
            pre_var,
        }
    };
    let (c, t) = (arm(control, nc), arm(treatment, nt));
    let (estimate, variance, unadjusted) = match effect {
        Effect::Absolute => (
            t.adjusted_mean - c.adjusted_mean,
            t.adjusted_var / t.n + c.adjusted_var / c.n,
            t.post_var / t.n + c.post_var / c.n,
        ),
        Effect::Relative => {
            let m = c.post_mean;
            if m == 0.0 {
                return Err(ExperimentError::ZeroBaseline(
                    "CUPED relative effect".to_owned(),
                ));
            }
            let v_trt = t.adjusted_var / (t.n * m * m);
            let k = -t.post_mean;
            let v_ctrl = (c.post_var * k * k / (m * m)
                + 2.0 * theta * c.cov * k / m
                + theta * theta * c.pre_var)
                / (c.n * m * m);
            let unadjusted =
                t.post_var / (m * m * t.n) + c.post_var * t.post_mean.powi(2) / (m.powi(4) * c.n);
            (
                (t.adjusted_mean - c.adjusted_mean) / m,
                v_trt + v_ctrl,
                unadjusted,
            )
        }
    };
    if !(variance.is_finite() && variance > 0.0) {
        return Err(ExperimentError::ZeroVariance(
            "the adjusted effect".to_owned(),
        ));
    }
    let (vc, vt) = (c.adjusted_var / c.n, t.adjusted_var / t.n);
    let dof = (vc + vt).powi(2) / (vt * vt / (t.n - 1.0) + vc * vc / (c.n - 1.0));
    let test = t_test_from_moments(estimate, variance, dof, alpha)?;
    Ok(CupedTest {
        theta,
        test,
        variance_reduction: if unadjusted > 0.0 {
            1.0 - variance / unadjusted
        } else {
            0.0
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_correlated_covariate_removes_variance() {
        let (mut c, mut t) = (PrePost::default(), PrePost::default());
        for i in 0..200 {
            let pre = (i % 17) as f64;
            let noise = ((i * 7919) % 13) as f64 / 13.0;
            c.push(pre, pre + noise);
            t.push(pre, pre + noise + 0.3);
        }
        let r = cuped(&c, &t, Effect::Absolute, 0.05).unwrap();
        assert!(r.variance_reduction > 0.9, "{r:?}");
        assert!((r.test.estimate - 0.3).abs() < 1e-9);
        let mut bad = c;
        bad.pre.n += 1;
        assert!(cuped(&bad, &t, Effect::Absolute, 0.05).is_err());
    }
}
