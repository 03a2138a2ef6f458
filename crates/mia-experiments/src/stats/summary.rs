//! Sufficient statistics of one arm: count, sum and sum of squares.

use serde::{Deserialize, Serialize};

use crate::error::{ExperimentError, Result};

/// What a metric measures, which decides its per-user variance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// A conversion (0 or 1 per user). Variance `p (1 - p)`, as GrowthBook's
    /// `ProportionStatistic`.
    Binomial,
    /// Any numeric value per user (revenue, messages read). Sample variance with `n - 1`, as
    /// GrowthBook's `SampleMeanStatistic`.
    Mean,
}

/// Which effect to report: the difference of means or the difference over the control mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// `mean_t - mean_c`.
    Absolute,
    /// `(mean_t - mean_c) / mean_c`, with delta-method variance.
    Relative,
}

/// Count, sum and sum of squares of one arm's per-user values.
///
/// Mergeable ([`merge`](Summary::merge), `+`) so daily or per-shard summaries add up, and
/// erasable ([`subtract`](Summary::subtract)) so a retracted batch can be taken out again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of users (units).
    pub n: u64,
    /// Sum of their values.
    pub sum: f64,
    /// Sum of the squares of their values.
    pub sum_squares: f64,
}

impl Summary {
    /// A summary from its three numbers.
    ///
    /// # Errors
    /// [`ExperimentError::InvalidInput`] for a non-finite sum, a negative sum of squares, or a
    /// sum of squares too small for the sum (`sum^2 > n * sum_squares` beyond rounding).
    pub fn new(n: u64, sum: f64, sum_squares: f64) -> Result<Self> {
        let s = Self {
            n,
            sum,
            sum_squares,
        };
        s.validate()?;
        Ok(s)
    }

    /// The summary of a conversion metric: `conversions` ones among `users`.
    ///
    /// # Errors
    /// [`ExperimentError::InvalidInput`] when `conversions > users`.
    pub fn conversions(users: u64, conversions: u64) -> Result<Self> {
        if conversions > users {
            return Err(ExperimentError::invalid(format!(
                "{conversions} conversions among {users} users"
            )));
        }
        Ok(Self {
            n: users,
            sum: conversions as f64,
            sum_squares: conversions as f64,
        })
    }

    /// The summary of a slice of values.
    pub fn from_values(values: &[f64]) -> Self {
        let mut s = Self::default();
        for &v in values {
            s.push(v);
        }
        s
    }

    fn validate(&self) -> Result<()> {
        if !(self.sum.is_finite() && self.sum_squares.is_finite()) || self.sum_squares < 0.0 {
            return Err(ExperimentError::invalid(format!(
                "sum {} and sum of squares {} must be finite, the latter non-negative",
                self.sum, self.sum_squares
            )));
        }
        let n = self.n as f64;
        // Cauchy-Schwarz: sum^2 <= n * sum_squares. Allow rounding.
        if self.sum * self.sum > n * self.sum_squares * (1.0 + 1e-9) + 1e-9 {
            return Err(ExperimentError::invalid(format!(
                "sum of squares {} is too small for sum {} over {} users",
                self.sum_squares, self.sum, self.n
            )));
        }
        Ok(())
    }

    /// Adds one observation.
    pub fn push(&mut self, value: f64) {
        self.n += 1;
        self.sum += value;
        self.sum_squares += value * value;
    }

    /// Adds another summary (another day, another shard).
    pub fn merge(&mut self, other: &Summary) {
        self.n += other.n;
        self.sum += other.sum;
        self.sum_squares += other.sum_squares;
    }

    /// Takes out a summary that was merged in before (erasure).
    ///
    /// # Errors
    /// [`ExperimentError::InvalidInput`] when `other` has more users than `self`; `self` is
    /// left unchanged.
    pub fn subtract(&mut self, other: &Summary) -> Result<()> {
        let n = self.n.checked_sub(other.n).ok_or_else(|| {
            ExperimentError::invalid(format!("cannot take {} users out of {}", other.n, self.n))
        })?;
        self.n = n;
        self.sum -= other.sum;
        // Rounding can leave a hair below zero once everything is taken out.
        self.sum_squares = (self.sum_squares - other.sum_squares).max(0.0);
        if self.n == 0 {
            self.sum = 0.0;
            self.sum_squares = 0.0;
        }
        Ok(())
    }

    /// The mean, or `None` without users.
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }

    /// The sample variance (divisor `n - 1`), or `None` with fewer than two users.
    pub fn sample_variance(&self) -> Option<f64> {
        if self.n < 2 {
            return None;
        }
        let n = self.n as f64;
        Some(((self.sum_squares - self.sum * self.sum / n) / (n - 1.0)).max(0.0))
    }

    /// Mean and per-user variance under a metric's convention, ready for the tests.
    ///
    /// # Errors
    /// [`ExperimentError::InsufficientData`] without users (or with one user for a mean
    /// metric); [`ExperimentError::InvalidInput`] for an invalid summary, or a binomial
    /// summary whose mean is outside [0, 1].
    pub fn estimate(&self, metric: Metric) -> Result<Estimate> {
        self.validate()?;
        let mean = self
            .mean()
            .ok_or_else(|| ExperimentError::InsufficientData("an arm has no users".to_owned()))?;
        let variance = match metric {
            Metric::Binomial => {
                if !(0.0..=1.0).contains(&mean) {
                    return Err(ExperimentError::invalid(format!(
                        "a conversion rate must be in [0, 1], got {mean}"
                    )));
                }
                mean * (1.0 - mean)
            }
            Metric::Mean => self.sample_variance().ok_or_else(|| {
                ExperimentError::InsufficientData("a variance needs at least two users".to_owned())
            })?,
        };
        Ok(Estimate {
            n: self.n as f64,
            mean,
            variance,
        })
    }
}

impl std::ops::Add for Summary {
    type Output = Summary;
    fn add(mut self, rhs: Summary) -> Summary {
        self.merge(&rhs);
        self
    }
}

impl std::ops::AddAssign for Summary {
    fn add_assign(&mut self, rhs: Summary) {
        self.merge(&rhs);
    }
}

/// An arm's mean, per-user variance and count: what every test below consumes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// Number of users.
    pub n: f64,
    /// Mean per user.
    pub mean: f64,
    /// Variance per user (not of the mean).
    pub variance: f64,
}

impl Estimate {
    /// Variance of the mean, `variance / n`.
    pub fn variance_of_mean(&self) -> f64 {
        self.variance / self.n
    }
}

/// Point estimate and variance of the effect of `treatment` over `control`.
///
/// Relative: `(m_t - m_c) / m_c` with the delta-method variance
/// `v_t / (m_c^2 n_t) + v_c m_t^2 / (m_c^4 n_c)` (GrowthBook's `frequentist_variance`).
///
/// # Errors
/// [`ExperimentError::ZeroBaseline`] for a relative effect on a zero control mean;
/// [`ExperimentError::ZeroVariance`] when both arms have zero variance.
pub fn effect_moments(
    control: &Estimate,
    treatment: &Estimate,
    effect: Effect,
) -> Result<(f64, f64)> {
    let (estimate, variance) = match effect {
        Effect::Absolute => (
            treatment.mean - control.mean,
            treatment.variance_of_mean() + control.variance_of_mean(),
        ),
        Effect::Relative => {
            let mc = control.mean;
            if mc == 0.0 {
                return Err(ExperimentError::ZeroBaseline("relative effect".to_owned()));
            }
            let mt = treatment.mean;
            (
                (mt - mc) / mc,
                treatment.variance / (mc * mc * treatment.n)
                    + control.variance * mt * mt / (mc.powi(4) * control.n),
            )
        }
    };
    if !(variance.is_finite() && variance > 0.0) {
        return Err(ExperimentError::ZeroVariance(
            "both arms have zero variance".to_owned(),
        ));
    }
    Ok((estimate, variance))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_and_subtract_round_trip() {
        let a = Summary::from_values(&[1.0, 2.0, 3.5]);
        let b = Summary::from_values(&[4.0, -1.0]);
        let mut all = a + b;
        assert_eq!(all, Summary::from_values(&[1.0, 2.0, 3.5, 4.0, -1.0]));
        all.subtract(&b).unwrap();
        assert_eq!(all.n, 3);
        assert!((all.sum - a.sum).abs() < 1e-12);
        assert!(all.subtract(&(b + b)).is_err());
        assert_eq!(all.n, 3, "a failed subtraction leaves the summary alone");
    }

    #[test]
    fn estimates_follow_the_metric_conventions() {
        let c = Summary::conversions(200, 50).unwrap();
        let e = c.estimate(Metric::Binomial).unwrap();
        assert_eq!(e.mean, 0.25);
        assert_eq!(e.variance, 0.25 * 0.75);
        let m = Summary::from_values(&[1.0, 2.0, 3.0, 4.0]);
        assert!((m.estimate(Metric::Mean).unwrap().variance - 5.0 / 3.0).abs() < 1e-15);
        assert!(Summary::default().estimate(Metric::Binomial).is_err());
        assert!(Summary::from_values(&[1.0]).estimate(Metric::Mean).is_err());
        assert!(Summary::conversions(1, 2).is_err());
        assert!(Summary::new(2, 10.0, 1.0).is_err());
    }

    #[test]
    fn zero_baseline_and_zero_variance_are_errors_not_nan() {
        let zero = Summary::conversions(100, 0)
            .unwrap()
            .estimate(Metric::Binomial)
            .unwrap();
        let some = Summary::conversions(100, 3)
            .unwrap()
            .estimate(Metric::Binomial)
            .unwrap();
        assert!(matches!(
            effect_moments(&zero, &some, Effect::Relative),
            Err(ExperimentError::ZeroBaseline(_))
        ));
        assert!(matches!(
            effect_moments(&zero, &zero, Effect::Absolute),
            Err(ExperimentError::ZeroVariance(_))
        ));
        assert!(effect_moments(&zero, &some, Effect::Absolute).is_ok());
    }
}
