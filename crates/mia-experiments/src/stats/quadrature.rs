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

/// The 15 Kronrod nodes on [-1, 1] in increasing order, with their Kronrod weights (on
/// [-1, 1]: scale by half the width) and the Gauss weights (0 at the nodes that are not Gauss nodes).
pub(crate) const NODES: usize = 15;
const T: [f64; NODES] = {
    let mut t = [0.0; NODES];
    let mut j = 0;
    while j < 7 {
        t[j] = -XGK[j];
        t[NODES - 1 - j] = XGK[j];
        j += 1;
    }
    t
};
pub(crate) const KRONROD_WEIGHTS: [f64; NODES] = {
    let mut w = [0.0; NODES];
    let mut j = 0;
    while j < 8 {
        w[j] = WGK[j];
        w[NODES - 1 - j] = WGK[j];
        j += 1;
    }
    w
};
const WGAUSS: [f64; NODES] = {
    let mut w = [0.0; NODES];
    let mut j = 1;
    while j < 8 {
        w[j] = WG[j / 2];
        w[NODES - 1 - j] = WG[j / 2];
        j += 2;
    }
    w
};

/// `S[m][n] = ∫_{-1}^{t_m} l_n(t) dt` with `l_n` the Lagrange basis polynomial (degree 14) of
/// the 15 nodes: `Σ_n S[m][n] g(t_n)` integrates the interpolant of `g` from -1 to node `m`,
/// which is how [`integrate`]'s callers turn densities at the nodes into CDF increments. Each
/// entry is the 15-point Kronrod rule on `[-1, t_m]`, exact for the degree-14 integrand.
pub(crate) static CUMULATIVE: std::sync::LazyLock<[[f64; NODES]; NODES]> =
    std::sync::LazyLock::new(|| {
        let lagrange = |n: usize, t: f64| {
            (0..NODES)
                .filter(|&i| i != n)
                .map(|i| (t - T[i]) / (T[n] - T[i]))
                .product::<f64>()
        };
        let mut s = [[0.0; NODES]; NODES];
        for (m, row) in s.iter_mut().enumerate() {
            let (c, h) = (0.5 * (T[m] - 1.0), 0.5 * (T[m] + 1.0));
            for (n, entry) in row.iter_mut().enumerate() {
                *entry = h
                    * (0..NODES)
                        .map(|q| KRONROD_WEIGHTS[q] * lagrange(n, c + h * T[q]))
                        .sum::<f64>();
            }
        }
        s
    });

/// One 15-point Kronrod estimate of every component of `f` on [a, b], written to `out`; returns
/// the summed error estimate against the 7-point Gauss rule. `values` is scratch space.
fn kronrod(
    f: &mut impl FnMut(f64, f64, &[f64; NODES], &mut [f64]),
    a: f64,
    b: f64,
    values: &mut [f64],
    out: &mut [f64],
) -> f64 {
    let center = 0.5 * (a + b);
    let half = 0.5 * (b - a);
    let xs = T.map(|t| center + half * t);
    f(a, b, &xs, values);
    let dim = out.len().max(1);
    let mut error = 0.0;
    for (i, k) in out.iter_mut().enumerate() {
        let (mut kronrod, mut gauss) = (0.0, 0.0);
        for (m, row) in values.chunks_exact(dim).enumerate() {
            kronrod += KRONROD_WEIGHTS[m] * row[i];
            gauss += WGAUSS[m] * row[i];
        }
        error += ((kronrod - gauss) * half).abs();
        *k = kronrod * half;
    }
    error
}

/// Integrates the `dim` components of `f` over `[a, b]` on one shared set of nodes. `f(lo, hi,
/// xs, values)` evaluates a piece `[lo, hi]` at its 15 nodes `xs` (increasing) at once, writing
/// node `m`'s components to `values[m * dim..(m + 1) * dim]`. The interval is first split split at `breakpoints` (those inside the interval), then
/// bisecting the piece with the worst summed error until the total error estimate is below
/// `tolerance` or `max_pieces` pieces are in use.
pub(crate) fn integrate(
    mut f: impl FnMut(f64, f64, &[f64; NODES], &mut [f64]),
    dim: usize,
    a: f64,
    b: f64,
    breakpoints: &[f64],
    tolerance: f64,
    max_pieces: usize,
) -> Vec<f64> {
    let mut edges: Vec<f64> = std::iter::once(a)
        .chain(breakpoints.iter().copied().filter(|x| *x > a && *x < b))
        .chain(std::iter::once(b))
        .collect();
    edges.sort_by(f64::total_cmp);
    edges.dedup();
    let mut s = vec![0.0; NODES * dim];
    // (a, b, error); piece i's values are values[i * dim..(i + 1) * dim].
    let mut pieces: Vec<(f64, f64, f64)> = Vec::with_capacity(edges.len() * 2);
    let mut values = vec![0.0; (edges.len() - 1) * dim];
    for (w, out) in edges.windows(2).zip(values.chunks_exact_mut(dim.max(1))) {
        let e = kronrod(&mut f, w[0], w[1], &mut s, out);
        pieces.push((w[0], w[1], e));
    }
    while pieces.len() < max_pieces {
        let total_error: f64 = pieces.iter().map(|p| p.2).sum();
        if total_error <= tolerance {
            break;
        }
        let Some((worst, _)) = pieces
            .iter()
            .enumerate()
            .max_by(|x, y| x.1.2.total_cmp(&y.1.2))
        else {
            break;
        };
        let (lo, hi, _) = pieces[worst];
        let mid = 0.5 * (lo + hi);
        if !(mid > lo && mid < hi) {
            break;
        }
        let e1 = kronrod(
            &mut f,
            lo,
            mid,
            &mut s,
            &mut values[worst * dim..(worst + 1) * dim],
        );
        pieces[worst] = (lo, mid, e1);
        let start = values.len();
        values.resize(start + dim, 0.0);
        let e2 = kronrod(&mut f, mid, hi, &mut s, &mut values[start..]);
        pieces.push((mid, hi, e2));
    }
    // Sum small to large for a little less rounding.
    let mut column = Vec::with_capacity(pieces.len());
    (0..dim)
        .map(|i| {
            column.clear();
            column.extend(values.iter().skip(i).step_by(dim).copied());
            column.sort_by(|x, y| x.abs().total_cmp(&y.abs()));
            column.iter().sum()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integrates_smooth_and_kinked_functions() {
        // Both at once: the smooth one rides along on the nodes the step needs.
        let v = integrate(
            |_, _, xs, out| {
                for (x, o) in xs.iter().zip(out.chunks_exact_mut(2)) {
                    o[0] = x.exp();
                    // A near-step is resolved by bisection.
                    o[1] = if *x < 0.3 { 0.0 } else { 1.0 };
                }
            },
            2,
            0.0,
            1.0,
            &[],
            1e-12,
            500,
        );
        assert!((v[0] - (1f64.exp() - 1.0)).abs() < 1e-14, "{v:?}");
        assert!((v[1] - 0.7).abs() < 1e-9, "{v:?}");
    }

    #[test]
    fn cumulative_weights_integrate_to_every_node() {
        // exp on [-1, 1]: the degree-14 interpolant is within 1e-15 of it.
        for (m, row) in CUMULATIVE.iter().enumerate() {
            let got: f64 = row.iter().zip(T).map(|(w, t)| w * t.exp()).sum();
            let want = T[m].exp() - (-1f64).exp();
            assert!((got - want).abs() < 1e-14, "{m} {got} {want}");
        }
    }
}
