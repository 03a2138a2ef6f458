//! Special functions that keep their digits for the shapes experiments produce: `ln Γ`
//! differences and the regularized incomplete beta with shapes in the millions. statrs
//! computes `ln B(a, b)` as a difference of `ln Γ` values near `1e8`, which loses about eight
//! digits exactly where rare conversions and large samples live.

use statrs::function::gamma::ln_gamma;

/// Stirling's correction `ln Γ(x) - [(x - 1/2) ln x - x + ln(2π)/2]` for `x >= 20`, to about
/// 1e-16.
pub(crate) fn stirling_tail(x: f64) -> f64 {
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    inv * (1.0 / 12.0 - inv2 * (1.0 / 360.0 - inv2 * (1.0 / 1260.0 - inv2 * (1.0 / 1680.0))))
}

const STIRLING_FROM: f64 = 20.0;

/// `ln Γ(x + h) - ln Γ(x)` for `x > 0`, `h >= 0`, without forming either large logarithm.
pub(crate) fn ln_gamma_ratio(x: f64, h: f64) -> f64 {
    if h == 0.0 {
        return 0.0;
    }
    if x >= STIRLING_FROM {
        // (x+h-1/2) ln(x+h) - (x-1/2) ln x - h = (x-1/2) ln(1+h/x) + h ln(x+h) - h
        (x - 0.5) * (h / x).ln_1p() + h * (x + h).ln() - h + stirling_tail(x + h) - stirling_tail(x)
    } else if x + h <= STIRLING_FROM {
        ln_gamma(x + h) - ln_gamma(x)
    } else {
        (ln_gamma(STIRLING_FROM) - ln_gamma(x))
            + ln_gamma_ratio(STIRLING_FROM, x + h - STIRLING_FROM)
    }
}

/// `ln B(a, b)`, accurate to a few ulps of its largest term for any positive shapes.
pub(crate) fn ln_beta(a: f64, b: f64) -> f64 {
    let (small, large) = if a < b { (a, b) } else { (b, a) };
    if small >= STIRLING_FROM {
        let sum = a + b;
        0.5 * (2.0 * std::f64::consts::PI).ln()
            - 0.5 * sum.ln()
            - (a - 0.5) * (b / a).ln_1p()
            - (b - 0.5) * (a / b).ln_1p()
            + stirling_tail(a)
            + stirling_tail(b)
            - stirling_tail(sum)
    } else {
        ln_gamma(small) - ln_gamma_ratio(large, small)
    }
}

/// The regularized incomplete beta `I_x(a, b)` and its complement `1 - I_x(a, b)`, given `x`
/// and `y = 1 - x` separately so that neither loses digits near 0 or 1. Continued fraction
/// (modified Lentz) on the side where it converges fast.
pub(crate) fn beta_reg_pair(a: f64, b: f64, x: f64, y: f64) -> (f64, f64) {
    if x <= 0.0 {
        return (0.0, 1.0);
    }
    if y <= 0.0 {
        return (1.0, 0.0);
    }
    let (ln_x, ln_y) = ln_pair(x, y);
    beta_reg_pair_from_logs(a, b, x, y, ln_x, ln_y, ln_beta(a, b))
}

/// `(ln x, ln y)` for `y = 1 - x`, each from whichever of `x`, `y` keeps its digits.
pub(crate) fn ln_pair(x: f64, y: f64) -> (f64, f64) {
    (
        if x < 0.5 { x.ln() } else { (-y).ln_1p() },
        if y < 0.5 { y.ln() } else { (-x).ln_1p() },
    )
}

/// [`beta_reg_pair`] for `0 < x < 1` given `ln x`, `ln y` (see [`ln_pair`]) and `ln B(a, b)`,
/// for callers that evaluate many shapes at one point or one shape at many points.
pub(crate) fn beta_reg_pair_from_logs(
    a: f64,
    b: f64,
    x: f64,
    y: f64,
    ln_x: f64,
    ln_y: f64,
    ln_beta_ab: f64,
) -> (f64, f64) {
    let ln_front = a * ln_x + b * ln_y - ln_beta_ab;
    if x < (a + 1.0) / (a + b + 2.0) {
        let lower = (ln_front.exp() * continued_fraction(a, b, x, y) / a).clamp(0.0, 1.0);
        (lower, 1.0 - lower)
    } else {
        let upper = (ln_front.exp() * continued_fraction(b, a, y, x) / b).clamp(0.0, 1.0);
        (1.0 - upper, upper)
    }
}

/// The continued fraction of `I_x(a, b)`; `y = 1 - x` given accurately.
fn continued_fraction(a: f64, b: f64, x: f64, y: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let guard = |v: f64| if v.abs() < TINY { TINY } else { v };
    let mut c = 1.0;
    // 1 - (a+b) x / (a+1), written through y when x is near 1 so it keeps its digits.
    let first = if x < 0.5 {
        1.0 - qab * x / qap
    } else {
        (1.0 - b + qab * y) / qap
    };
    let mut d = 1.0 / guard(first);
    let mut h = d;
    for m in 1..100_000 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 / guard(1.0 + aa * d);
        c = guard(1.0 + aa / c);
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 / guard(1.0 + aa * d);
        c = guard(1.0 + aa / c);
        let step = d * c;
        h *= step;
        if (step - 1.0).abs() < 4.0 * f64::EPSILON {
            break;
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_and_betas_agree_with_ln_gamma_where_it_is_accurate() {
        for &(x, h) in &[(0.5, 3.0), (3.0, 25.0), (25.0, 4.5), (100.0, 0.5)] {
            let direct = ln_gamma(x + h) - ln_gamma(x);
            assert!((ln_gamma_ratio(x, h) - direct).abs() < 1e-12, "{x} {h}");
        }
        for &(a, b) in &[(2.0, 3.0), (30.0, 45.0), (0.5, 200.0)] {
            let direct = ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b);
            assert!((ln_beta(a, b) - direct).abs() < 1e-12, "{a} {b}");
        }
    }

    #[test]
    fn incomplete_beta_matches_closed_forms() {
        // I_x(1, b) = 1 - (1 - x)^b.
        let (lo, hi) = beta_reg_pair(1.0, 1e7, 5e-7, 1.0 - 5e-7);
        let want = 1.0 - ((-5e-7f64).ln_1p() * 1e7).exp();
        assert!(
            (lo - want).abs() < 1e-14 && (hi - (1.0 - want)).abs() < 1e-14,
            "{lo} {want} {hi}"
        );
        // I_x(a, 1) = x^a.
        let (lo, _) = beta_reg_pair(5.0, 1.0, 0.3, 0.7);
        assert!((lo - 0.3f64.powi(5)).abs() < 1e-16);
    }
}
