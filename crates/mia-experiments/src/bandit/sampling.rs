//! Fast samplers on a cheap generator: standard normal (polar method), Gamma (Marsaglia–Tsang)
//! and Beta (two Gammas). rand 0.10 ships no distributions beyond uniform.

use rand::{Rng, RngExt};

/// A standard normal draw by Marsaglia's polar method (the second value is dropped: simpler
/// than caching it, and the Gamma sampler rarely needs more than one).
pub(crate) fn standard_normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    loop {
        let u = 2.0 * rng.random::<f64>() - 1.0;
        let v = 2.0 * rng.random::<f64>() - 1.0;
        let s = u * u + v * v;
        if s > 0.0 && s < 1.0 {
            return u * (-2.0 * s.ln() / s).sqrt();
        }
    }
}

/// A Gamma(shape, 1) draw; Marsaglia and Tsang (2000), boosted for shape < 1.
pub(crate) fn gamma<R: Rng + ?Sized>(rng: &mut R, shape: f64) -> f64 {
    if shape < 1.0 {
        let u: f64 = rng.random();
        return gamma(rng, shape + 1.0) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = standard_normal(rng);
        let v = 1.0 + c * x;
        if v <= 0.0 {
            continue;
        }
        let v = v * v * v;
        let u: f64 = rng.random();
        let x2 = x * x;
        // Squeeze first, then the exact test.
        if u < 1.0 - 0.0331 * x2 * x2 || u.ln() < 0.5 * x2 + d * (1.0 - v + v.ln()) {
            return d * v;
        }
    }
}

/// A Beta(a, b) draw as `X / (X + Y)` with `X ~ Gamma(a)`, `Y ~ Gamma(b)`.
pub(crate) fn beta<R: Rng + ?Sized>(rng: &mut R, a: f64, b: f64) -> f64 {
    let x = gamma(rng, a);
    let y = gamma(rng, b);
    x / (x + y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    #[test]
    fn beta_draws_have_the_right_moments() {
        let mut rng = SmallRng::seed_from_u64(1);
        for &(a, b) in &[(0.5, 0.5), (2.0, 30.0), (400.0, 9600.0)] {
            let n = 200_000;
            let draws: Vec<f64> = (0..n).map(|_| beta(&mut rng, a, b)).collect();
            let mean = draws.iter().sum::<f64>() / n as f64;
            let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
            let (m, v) = (a / (a + b), a * b / ((a + b).powi(2) * (a + b + 1.0)));
            // 5 standard errors of the mean; 5% on the variance.
            assert!(
                (mean - m).abs() < 5.0 * (v / n as f64).sqrt(),
                "{a} {b} {mean}"
            );
            assert!((var / v - 1.0).abs() < 0.05, "{a} {b} {var} {v}");
        }
    }
}
