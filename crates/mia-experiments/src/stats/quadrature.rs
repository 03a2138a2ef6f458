//! Adaptive Gauss–Kronrod (7/15 points) quadrature, as QUADPACK's QAG, for the Beta
//! integrals that have no closed form.

/// Kronrod nodes on [-1, 1] (non-negative half; the odd ones are the Gauss nodes).
const XGK: [f64; 8] = [
    0.991_455_371_120_812_6,
    0.949_107_912_342_758_5,
    0.864_864_423_359_769_1,
    0.741_531_185_599_394_4,
    0.586_087_235_467_691_1,
    0.405_845_151_377_397_2,
    0.207_784_955_007_898_5,
    0.0,
];
const WGK: [f64; 8] = [
    0.022_935_322_010_529_22,
    0.063_092_092_629_978_55,
    0.104_790_010_322_250_18,
    0.140_653_259_715_525_92,
    0.169_004_726_639_267_9,
    0.190_350_578_064_785_4,
    0.204_432_940_075_298_9,
    0.209_482_141_084_727_83,
];
const WG: [f64; 4] = [
    0.129_484_966_168_869_7,
    0.279_705_391_489_276_7,
    0.381_830_050_505_118_9,
    0.417_959_183_673_469_4,
];

/// One 15-point Kronrod estimate on [a, b] and its error estimate against the 7-point Gauss
/// rule.
fn kronrod(f: &mut impl FnMut(f64) -> f64, a: f64, b: f64) -> (f64, f64) {
    let center = 0.5 * (a + b);
    let half = 0.5 * (b - a);
    let fc = f(center);
    let mut kronrod = fc * WGK[7];
    let mut gauss = fc * WG[3];
    for j in 0..7 {
        let dx = half * XGK[j];
        let pair = f(center - dx) + f(center + dx);
        kronrod += WGK[j] * pair;
        if j % 2 == 1 {
            gauss += WG[j / 2] * pair;
        }
    }
    (kronrod * half, ((kronrod - gauss) * half).abs())
}

/// Integrates `f` over `[a, b]`, first split at `breakpoints` (those inside the interval), then
/// bisecting the worst piece until the summed error estimate is below `tolerance` or
/// `max_pieces` pieces are in use.
pub(crate) fn integrate(
    mut f: impl FnMut(f64) -> f64,
    a: f64,
    b: f64,
    breakpoints: &[f64],
    tolerance: f64,
    max_pieces: usize,
) -> f64 {
    let mut edges: Vec<f64> = std::iter::once(a)
        .chain(breakpoints.iter().copied().filter(|x| *x > a && *x < b))
        .chain(std::iter::once(b))
        .collect();
    edges.sort_by(f64::total_cmp);
    edges.dedup();
    // (a, b, value, error)
    let mut pieces: Vec<(f64, f64, f64, f64)> = edges
        .windows(2)
        .map(|w| {
            let (v, e) = kronrod(&mut f, w[0], w[1]);
            (w[0], w[1], v, e)
        })
        .collect();
    while pieces.len() < max_pieces {
        let total_error: f64 = pieces.iter().map(|p| p.3).sum();
        if total_error <= tolerance {
            break;
        }
        let Some((worst, _)) = pieces
            .iter()
            .enumerate()
            .max_by(|x, y| x.1.3.total_cmp(&y.1.3))
        else {
            break;
        };
        let (lo, hi, _, _) = pieces.swap_remove(worst);
        let mid = 0.5 * (lo + hi);
        if !(mid > lo && mid < hi) {
            break;
        }
        let (v1, e1) = kronrod(&mut f, lo, mid);
        let (v2, e2) = kronrod(&mut f, mid, hi);
        pieces.push((lo, mid, v1, e1));
        pieces.push((mid, hi, v2, e2));
    }
    // Sum small to large for a little less rounding.
    let mut values: Vec<f64> = pieces.iter().map(|p| p.2).collect();
    values.sort_by(|x, y| x.abs().total_cmp(&y.abs()));
    values.iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integrates_smooth_and_kinked_functions() {
        let v = integrate(|x| x.exp(), 0.0, 1.0, &[], 1e-14, 100);
        assert!((v - (1f64.exp() - 1.0)).abs() < 1e-14);
        // A near-step is resolved by bisection.
        let v = integrate(
            |x| if x < 0.3 { 0.0 } else { 1.0 },
            0.0,
            1.0,
            &[],
            1e-12,
            500,
        );
        assert!((v - 0.7).abs() < 1e-9, "{v}");
    }
}
