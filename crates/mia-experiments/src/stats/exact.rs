//! Exact Bayesian analysis of conversions: Beta posteriors, `P(B > A)` in closed form (Evan
//! Miller's sum, in log space), the expected loss both ways, and `P(best of K)` by adaptive
//! quadrature. Right at any sample size, including 0/20 against 2/20 where normal
//! approximations fail.

use serde::{Deserialize, Serialize};
use statrs::distribution::{Beta, Continuous, ContinuousCDF};

use super::quadrature::integrate;
use super::special::{ln_gamma_ratio, stirling_tail};
use crate::error::{ExperimentError, Result};

/// A Beta(alpha, beta) posterior on a conversion rate.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BetaPosterior {
    /// First shape: prior alpha plus conversions.
    pub alpha: f64,
    /// Second shape: prior beta plus non-conversions.
    pub beta: f64,
}

/// Above this many terms the closed-form sum gives way to quadrature.
const MAX_TERMS: f64 = 2_000_000.0;

impl BetaPosterior {
    /// A posterior from explicit shapes.
    ///
    /// # Errors
    /// [`ExperimentError::InvalidInput`] unless both shapes are positive and finite.
    pub fn new(alpha: f64, beta: f64) -> Result<Self> {
        if !(alpha.is_finite() && beta.is_finite() && alpha > 0.0 && beta > 0.0) {
            return Err(ExperimentError::invalid(format!(
                "Beta shapes must be positive and finite, got ({alpha}, {beta})"
            )));
        }
        Ok(Self { alpha, beta })
    }

    /// The posterior after `conversions` among `users` from a uniform Beta(1, 1) prior.
    ///
    /// # Errors
    /// [`ExperimentError::InvalidInput`] when `conversions > users`.
    pub fn from_conversions(users: u64, conversions: u64) -> Result<Self> {
        if conversions > users {
            return Err(ExperimentError::invalid(format!(
                "{conversions} conversions among {users} users"
            )));
        }
        Ok(Self {
            alpha: 1.0 + conversions as f64,
            beta: 1.0 + (users - conversions) as f64,
        })
    }

    /// Posterior mean `alpha / (alpha + beta)`.
    pub fn mean(&self) -> f64 {
        self.alpha / (self.alpha + self.beta)
    }

    fn sd(&self) -> f64 {
        let s = self.alpha + self.beta;
        (self.alpha * self.beta / (s * s * (s + 1.0))).sqrt()
    }

    fn dist(&self) -> Result<Beta> {
        Beta::new(self.alpha, self.beta).map_err(|e| ExperimentError::invalid(e.to_string()))
    }

    /// Where nearly all the mass lies: mean ± 40 sd within [0, 1]. A Beta with both shapes at
    /// least 1 is log-concave, so its tails beyond 40 sd hold less than 1e-16.
    fn support(&self) -> (f64, f64) {
        if self.alpha >= 1.0 && self.beta >= 1.0 {
            let (m, s) = (self.mean(), self.sd());
            ((m - 40.0 * s).max(0.0), (m + 40.0 * s).min(1.0))
        } else {
            (0.0, 1.0)
        }
    }
}

fn is_whole(x: f64) -> bool {
    x.fract() == 0.0 && x <= MAX_TERMS
}

/// `P(X1 > X2)`, X1 ~ Beta(a, b), X2 ~ Beta(c, d), by Evan Miller's sum over `i < a` (a whole):
/// `Σ B(c + i, b + d) / ((b + i) B(1 + i, b) B(c, d))`. Each term is the previous one times
/// `(c + i)(b + i) / ((c + b + d + i)(1 + i))`; the terms are kept as logarithms and summed
/// with a running maximum, so nothing underflows.
fn miller_sum(a: f64, b: f64, c: f64, d: f64) -> f64 {
    let terms = a as u64;
    let mut log_term = first_log_term(b, c, d);
    // The log of the term is carried with Neumaier compensation: tens of thousands of small
    // increments to a large value would otherwise drift by 1e-9.
    let mut carry = 0.0;
    let (mut max, mut scaled) = (log_term, 0.0);
    for i in 0..terms {
        let x = i as f64;
        let current = log_term + carry;
        if current > max {
            scaled = scaled * (max - current).exp() + 1.0;
            max = current;
        } else {
            scaled += (current - max).exp();
        }
        // One logarithm of the ratio loses less than two of large products.
        let step = ((c + x) * (b + x) / ((c + b + d + x) * (1.0 + x))).ln();
        let next = log_term + step;
        carry += if log_term.abs() >= step.abs() {
            (log_term - next) + step
        } else {
            (step - next) + log_term
        };
        log_term = next;
    }
    (max + scaled.ln()).exp().clamp(0.0, 1.0)
}

/// `ln B(c, b + d) - ln B(c, d) = [ln Γ(c+d) - ln Γ(d)] - [ln Γ(b+c+d) - ln Γ(b+d)]`, the log
/// of the first term of Evan Miller's sum. For `d >= 20` the Stirling forms of both differences
/// are combined before evaluation, so the large parts cancel exactly.
fn first_log_term(b: f64, c: f64, d: f64) -> f64 {
    if d < 20.0 {
        return ln_gamma_ratio(d, c) - ln_gamma_ratio(b + d, c);
    }
    (d - 0.5) * (c / d).ln_1p() - (b + d - 0.5) * (c / (b + d)).ln_1p() - c * (b / (c + d)).ln_1p()
        + (stirling_tail(c + d) - stirling_tail(d))
        - (stirling_tail(b + c + d) - stirling_tail(b + d))
}

/// `P(X1 > X2)` for two Beta posteriors, exactly.
fn prob_greater(x1: &BetaPosterior, x2: &BetaPosterior) -> Result<f64> {
    let (a, b, c, d) = (x1.alpha, x1.beta, x2.alpha, x2.beta);
    // Four equivalent sums (by symmetry and 1 - p ~ Beta(b, a)): two give the answer directly,
    // two its complement. Take the shortest direct one unless a complement is far shorter.
    let direct = [(a, (a, b, c, d)), (d, (d, c, b, a))]
        .into_iter()
        .filter(|(n, _)| is_whole(*n))
        .min_by(|x, y| x.0.total_cmp(&y.0));
    let complement = [(c, (c, d, a, b)), (b, (b, a, d, c))]
        .into_iter()
        .filter(|(n, _)| is_whole(*n))
        .min_by(|x, y| x.0.total_cmp(&y.0));
    match (direct, complement) {
        (Some((n, (p, q, r, s))), Some((m, _))) if n <= (4.0 * m).max(1000.0) => {
            Ok(miller_sum(p, q, r, s))
        }
        (Some((n, (p, q, r, s))), None) if n <= MAX_TERMS => Ok(miller_sum(p, q, r, s)),
        (_, Some((_, (p, q, r, s)))) => Ok((1.0 - miller_sum(p, q, r, s)).clamp(0.0, 1.0)),
        _ => prob_greater_by_quadrature(x1, x2),
    }
}

fn prob_greater_by_quadrature(x1: &BetaPosterior, x2: &BetaPosterior) -> Result<f64> {
    let p = prob_best(&[*x1, *x2])?;
    Ok(p[0])
}

/// The exact comparison of a treatment's posterior with the control's.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExactComparison {
    /// `P(rate_t > rate_c)`.
    pub chance_to_win: f64,
    /// `[E max(rate_t - rate_c, 0), E max(rate_c - rate_t, 0)]`: the expected loss of shipping
    /// the control, then of shipping the treatment (absolute, in conversion-rate units).
    pub expected_loss: [f64; 2],
}

/// `P(treatment > control)` and the expected loss both ways, in closed form. The loss uses
/// `E max(X2 - X1, 0) = m2 P(X2' > X1) - m1 P(X2 > X1')` with `X'` the posterior with one
/// more conversion.
///
/// # Errors
/// [`ExperimentError::InvalidInput`] for invalid posteriors.
pub fn compare_beta(control: &BetaPosterior, treatment: &BetaPosterior) -> Result<ExactComparison> {
    let (c, t) = (
        BetaPosterior::new(control.alpha, control.beta)?,
        BetaPosterior::new(treatment.alpha, treatment.beta)?,
    );
    let bump = |x: &BetaPosterior| BetaPosterior {
        alpha: x.alpha + 1.0,
        beta: x.beta,
    };
    let chance_to_win = prob_greater(&t, &c)?;
    // Loss of shipping control: treatment was better by this much on average.
    let loss_control = (t.mean() * prob_greater(&bump(&t), &c)?
        - c.mean() * prob_greater(&t, &bump(&c))?)
    .max(0.0);
    let loss_treatment = (c.mean() * prob_greater(&bump(&c), &t)?
        - t.mean() * prob_greater(&c, &bump(&t))?)
    .max(0.0);
    Ok(ExactComparison {
        chance_to_win,
        expected_loss: [loss_control, loss_treatment],
    })
}

/// `P(arm k has the highest rate)` for every arm: `∫ f_k(x) Π_{j≠k} F_j(x) dx` by adaptive
/// Gauss–Kronrod quadrature over arm k's support, split at the other arms' means and
/// quantile-like points so sharp CDFs are resolved. Accurate to about 1e-10.
///
/// # Errors
/// [`ExperimentError::InvalidInput`] for no arms or an invalid posterior.
pub fn prob_best(arms: &[BetaPosterior]) -> Result<Vec<f64>> {
    if arms.is_empty() {
        return Err(ExperimentError::invalid("no arms"));
    }
    let dists = arms
        .iter()
        .map(BetaPosterior::dist)
        .collect::<Result<Vec<_>>>()?;
    if arms.len() == 1 {
        return Ok(vec![1.0]);
    }
    let mut breaks = Vec::with_capacity(arms.len() * 7);
    for arm in arms {
        let (m, s) = (arm.mean(), arm.sd());
        for k in [-6.0, -3.0, -1.0, 0.0, 1.0, 3.0, 6.0] {
            breaks.push(m + k * s);
        }
    }
    let mut out = Vec::with_capacity(arms.len());
    for (k, arm) in arms.iter().enumerate() {
        let (lo, hi) = arm.support();
        let integrand = |x: f64| {
            let mut v = dists[k].pdf(x);
            for (j, d) in dists.iter().enumerate() {
                if j != k && v != 0.0 {
                    v *= d.cdf(x);
                }
            }
            if v.is_finite() { v } else { 0.0 }
        };
        out.push(integrate(integrand, lo, hi, &breaks, 1e-12, 4000).clamp(0.0, 1.0));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_samples_are_exact() {
        // 0/20 against 2/20: Beta(1, 21) against Beta(3, 19).
        let a = BetaPosterior::from_conversions(20, 0).unwrap();
        let b = BetaPosterior::from_conversions(20, 2).unwrap();
        let r = compare_beta(&a, &b).unwrap();
        let by_quadrature = prob_greater_by_quadrature(&b, &a).unwrap();
        assert!(
            (r.chance_to_win - by_quadrature).abs() < 1e-10,
            "{r:?} {by_quadrature}"
        );
        // The losses differ by the difference of the means.
        let d = b.mean() - a.mean();
        assert!((r.expected_loss[0] - r.expected_loss[1] - d).abs() < 1e-12);
    }

    #[test]
    fn every_sum_agrees() {
        let (x1, x2) = (
            BetaPosterior::new(13.0, 90.0).unwrap(),
            BetaPosterior::new(9.0, 70.0).unwrap(),
        );
        let (a, b, c, d) = (x1.alpha, x1.beta, x2.alpha, x2.beta);
        let p = miller_sum(a, b, c, d);
        // scipy quad: 0.6074510693522124
        for q in [
            p,
            miller_sum(d, c, b, a),
            1.0 - miller_sum(c, d, a, b),
            1.0 - miller_sum(b, a, d, c),
        ] {
            assert!((q - 0.607_451_069_352_212_4).abs() < 1e-11, "{q}");
        }
    }

    #[test]
    fn p_best_sums_to_one_and_ranks() {
        let arms = [
            BetaPosterior::from_conversions(1000, 40).unwrap(),
            BetaPosterior::from_conversions(1000, 50).unwrap(),
            BetaPosterior::from_conversions(1000, 60).unwrap(),
        ];
        let p = prob_best(&arms).unwrap();
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{p:?}");
        assert!(p[2] > p[1] && p[1] > p[0]);
        assert!(prob_best(&[]).is_err());
    }
}
