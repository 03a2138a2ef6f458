//! Thin, panic-free wrappers over the `statrs` distributions this crate needs.
//!
//! statrs panics on a probability outside [0, 1] in its quantile functions; these helpers check
//! first and answer with an [`ExperimentError`] instead.

use statrs::distribution::{Beta, ChiSquared, Continuous, ContinuousCDF, StudentsT};
use statrs::function::erf;

use super::special::beta_reg_pair;
use crate::error::{ExperimentError, Result};

/// Standard normal CDF, accurate in both tails.
pub(crate) fn norm_cdf(x: f64) -> f64 {
    0.5 * erf::erfc(-x / std::f64::consts::SQRT_2)
}

/// Standard normal survival function, `1 - cdf`, accurate in the upper tail.
pub(crate) fn norm_sf(x: f64) -> f64 {
    0.5 * erf::erfc(x / std::f64::consts::SQRT_2)
}

/// Standard normal density.
pub(crate) fn norm_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Standard normal quantile.
pub(crate) fn norm_ppf(p: f64) -> Result<f64> {
    check_open_probability(p, "probability")?;
    let mut x = -std::f64::consts::SQRT_2 * erf::erfc_inv(2.0 * p);
    // statrs's erfc_inv is good to about 1e-13; two Newton steps on the smaller tail give
    // full precision.
    for _ in 0..2 {
        let density = norm_pdf(x);
        if density.is_nan() || density <= 0.0 {
            break;
        }
        let step = if p > 0.5 {
            ((1.0 - p) - norm_sf(x)) / density
        } else {
            (norm_cdf(x) - p) / density
        };
        x -= step;
    }
    Ok(x)
}

fn student(df: f64) -> Result<StudentsT> {
    if !(df.is_finite() && df > 0.0) {
        return Err(ExperimentError::InsufficientData(format!(
            "degrees of freedom must be positive, got {df}"
        )));
    }
    StudentsT::new(0.0, 1.0, df).map_err(|e| ExperimentError::invalid(e.to_string()))
}

/// Upper tail of Student's t: `I_{df/(df+t²)}(df/2, 1/2) / 2` for `t >= 0`, with both
/// `df/(df+t²)` and `t²/(df+t²)` formed directly so huge `df` keeps its digits.
pub(crate) fn t_sf(t: f64, df: f64) -> f64 {
    let t2 = t * t;
    let (x, y) = (df / (df + t2), t2 / (df + t2));
    let (tail, _) = beta_reg_pair(df / 2.0, 0.5, x, y);
    if t >= 0.0 {
        0.5 * tail
    } else {
        1.0 - 0.5 * tail
    }
}

/// Two-sided p-value of a t statistic with `df` degrees of freedom.
pub(crate) fn t_two_sided_p(t: f64, df: f64) -> Result<f64> {
    student(df)?;
    Ok((2.0 * t_sf(t.abs(), df)).min(1.0))
}

/// Student t quantile. For up to 1000 degrees of freedom the start is statrs's inverse; above,
/// where statrs's inverse incomplete beta becomes slow, the Cornish–Fisher expansion in `1/df`.
/// Then safeguarded Newton steps on the CDF give full double precision.
pub(crate) fn t_ppf(p: f64, df: f64) -> Result<f64> {
    check_open_probability(p, "probability")?;
    let d = student(df)?;
    let start = if df <= 1000.0 {
        d.inverse_cdf(p)
    } else {
        let z = norm_ppf(p)?;
        let (z2, v) = (z * z, df);
        let g1 = (z2 + 1.0) * z / 4.0;
        let g2 = ((5.0 * z2 + 16.0) * z2 + 3.0) * z / 96.0;
        let g3 = (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) * z / 384.0;
        let g4 = ((((79.0 * z2 + 776.0) * z2 + 1482.0) * z2 - 1920.0) * z2 - 945.0) * z / 92160.0;
        z + g1 / v + g2 / (v * v) + g3 / (v * v * v) + g4 / (v * v * v * v)
    };
    Ok(invert(
        |x| t_sf(-x, df),
        |x| t_sf(x, df),
        |x| d.pdf(x),
        p,
        f64::NEG_INFINITY,
        f64::INFINITY,
        start,
    ))
}

/// Solves `cdf(x) = p` from `start` by Newton steps on the smaller tail, kept inside a bracket
/// that shrinks with every evaluation and bisected (geometrically when the bracket spans
/// orders of magnitude) whenever Newton would leave it.
fn invert(
    cdf: impl Fn(f64) -> f64,
    sf: impl Fn(f64) -> f64,
    pdf: impl Fn(f64) -> f64,
    p: f64,
    mut lo: f64,
    mut hi: f64,
    start: f64,
) -> f64 {
    let upper = p > 0.5;
    // Positive when x is above the root.
    let residual = |x: f64| if upper { (1.0 - p) - sf(x) } else { cdf(x) - p };
    let mut x = if start.is_finite() && start > lo && start < hi {
        start
    } else if lo.is_finite() && hi.is_finite() {
        0.5 * (lo + hi)
    } else {
        0.0
    };
    for _ in 0..300 {
        let r = residual(x);
        if r == 0.0 {
            return x;
        }
        if r > 0.0 {
            hi = x;
        } else {
            lo = x;
        }
        let density = pdf(x);
        let newton = x - r / density;
        let next = if density > 0.0 && newton.is_finite() && newton > lo && newton < hi {
            newton
        } else if lo > 0.0 && hi.is_finite() && hi > 4.0 * lo {
            (lo * hi).sqrt()
        } else if lo.is_finite() && hi.is_finite() {
            0.5 * (lo + hi)
        } else if r > 0.0 {
            x - 2.0 * x.abs().max(1.0)
        } else {
            x + 2.0 * x.abs().max(1.0)
        };
        if (next - x).abs() <= 4.0 * f64::EPSILON * x.abs() || next == lo || next == hi {
            return next;
        }
        x = next;
    }
    x
}

/// Upper tail of a chi-square with `df` degrees of freedom.
pub(crate) fn chi2_sf(x: f64, df: f64) -> Result<f64> {
    let d = ChiSquared::new(df).map_err(|e| ExperimentError::invalid(e.to_string()))?;
    Ok(d.sf(x))
}

/// Beta quantile by safeguarded Newton steps on the CDF (statrs's inverse incomplete beta
/// stalls on shapes like (4, 1e7), common for rare conversions), started from a normal
/// approximation on the logit scale.
pub(crate) fn beta_ppf(p: f64, a: f64, b: f64) -> Result<f64> {
    check_open_probability(p, "probability")?;
    let d = Beta::new(a, b).map_err(|e| ExperimentError::invalid(e.to_string()))?;
    let mean = a / (a + b);
    if mean > 0.5 {
        // Solve for 1 - x, whose digits matter, on the mirrored distribution.
        return Ok(1.0 - beta_ppf(1.0 - p, b, a)?);
    }
    let sd = (a * b / ((a + b) * (a + b) * (a + b + 1.0))).sqrt();
    let start = (mean + norm_ppf(p)? * sd).clamp(mean * 1e-3, 1.0 - (1.0 - mean) * 1e-3);
    let cdf = |x: f64| beta_reg_pair(a, b, x, 1.0 - x);
    Ok(invert(
        |x| cdf(x).0,
        |x| cdf(x).1,
        |x| d.pdf(x),
        p,
        0.0,
        1.0,
        start,
    ))
}

pub(crate) fn check_open_probability(p: f64, name: &str) -> Result<()> {
    if p.is_finite() && p > 0.0 && p < 1.0 {
        Ok(())
    } else {
        Err(ExperimentError::invalid(format!(
            "{name} must be in (0, 1), got {p}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_tail_matches_statrs_and_scipy() {
        for &df in &[1.0, 3.2, 10.0] {
            let d = StudentsT::new(0.0, 1.0, df).unwrap();
            for &t in &[-4.0, -1.0, 0.0, 0.3, 2.5, 9.0] {
                assert!((t_sf(t, df) - d.sf(t)).abs() < 1e-14, "{df} {t}");
            }
        }
        // scipy.stats.t.sf; statrs is off by 2e-14 here.
        for (t, want) in [
            (-1.0, 0.840_861_288_883_272_7),
            (2.5, 0.006_530_441_412_533_065_5),
        ] {
            assert!((t_sf(t, 250.0) - want).abs() < 1e-15, "{t}");
        }
    }

    #[test]
    fn quantiles_invert_their_cdfs() {
        for &p in &[1e-9, 0.025, 0.3, 0.5, 0.8, 0.975, 1.0 - 1e-9] {
            let z = norm_ppf(p).unwrap();
            assert!((norm_cdf(z) - p).abs() < 1e-15 + 1e-12 * p, "norm {p}");
            let t = t_ppf(p, 7.5).unwrap();
            let d = StudentsT::new(0.0, 1.0, 7.5).unwrap();
            assert!((d.cdf(t) - p).abs() < 1e-14, "t {p} {t} {}", d.cdf(t) - p);
            let x = beta_ppf(p, 3.0, 40.0).unwrap();
            let b = Beta::new(3.0, 40.0).unwrap();
            assert!((b.cdf(x) - p).abs() < 1e-13, "{p} {x}");
        }
        assert!(norm_ppf(0.0).is_err());
        assert!(norm_ppf(f64::NAN).is_err());
        assert!(t_ppf(0.5, 0.0).is_err());
    }
}
