#!/usr/bin/env python3
"""Writes reference.json, the values tests/reference.rs checks mia-experiments against.

Run from this directory:  pip install scipy statsmodels numpy && python3 make_reference.py

Where a library computes the quantity, the value comes from it:
  Welch t-test (absolute)  scipy.stats.ttest_ind_from_stats(equal_var=False), scipy t.ppf
  pooled z-test            statsmodels proportions_ztest
  Wilson / Clopper-Pearson statsmodels proportion_confint(method="wilson" / "beta")
  power, sample size       statsmodels power_proportions_2indep, samplesize_proportions_2indep_onetail
  MDE                      scipy.optimize.brentq on statsmodels' sample-size equation
  Holm / BH                statsmodels multipletests("holm" / "fdr_bh")
  SRM                      scipy.stats.chisquare
  P(B > A), expected loss  the closed form (Evan Miller) in 40-digit mpmath arithmetic, checked
                           against scipy.integrate.quad over scipy.stats.beta to 1e-8
  P(best of K)             scipy.integrate.quad
GrowthBook-specific quantities have no scipy equivalent; they are computed here from
GrowthBook's published formulas (gbstats) with scipy's norm, t and truncnorm:
  relative effect with delta-method variance, Gaussian effect posterior (flat or proper prior),
  chance to win, credible interval, risk via truncnorm, sequential confidence sequences and
  p-values (Waudby-Smith et al. eq. 9, 155, 161), CUPED with a pooled theta -- the latter from
  raw numpy data, not from sufficient statistics.
"""

import json
import math

import mpmath
import numpy as np
from scipy import integrate, optimize, stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import normal_sample_size_one_tail
from statsmodels.stats.proportion import (
    power_proportions_2indep,
    proportion_confint,
    proportions_ztest,
    samplesize_proportions_2indep_onetail,
)


def summary(n, s, ss):
    return {"n": int(n), "sum": float(s), "sum_squares": float(ss)}


def conv(n, k):
    return summary(n, k, k)


def estimate(sm, metric):
    n = sm["n"]
    mean = sm["sum"] / n
    if metric == "binomial":
        var = mean * (1 - mean)
    else:
        var = (sm["sum_squares"] - sm["sum"] ** 2 / n) / (n - 1)
    return n, mean, var


def effect_moments(c, t, effect):
    nc, mc, vc = c
    nt, mt, vt = t
    if effect == "absolute":
        return mt - mc, vt / nt + vc / nc
    return (mt - mc) / mc, vt / (mc**2 * nt) + vc * mt**2 / (mc**4 * nc)


def welch_dof(c, t):
    nc, _, vc = c
    nt, _, vt = t
    return (vt / nt + vc / nc) ** 2 / ((vt / nt) ** 2 / (nt - 1) + (vc / nc) ** 2 / (nc - 1))


# ---------------------------------------------------------------------------------------------
def welch_cases():
    cases = []
    inputs = [
        ("mean", "revenue", summary(1000, 5230.0, 61234.0), summary(1100, 6010.0, 71020.0)),
        ("mean", "small", summary(3, 6.0, 14.0), summary(4, 14.0, 54.0)),
        ("binomial", "conversions", conv(10000, 1000), conv(10000, 1100)),
        ("binomial", "equal arms", conv(5000, 250), conv(5000, 250)),
        ("binomial", "huge n", conv(100_000_000, 5_000_000), conv(100_000_000, 5_010_000)),
        ("binomial", "2/20 vs 5/20", conv(20, 2), conv(20, 5)),
    ]
    for metric, name, sc, st in inputs:
        c, t = estimate(sc, metric), estimate(st, metric)
        for effect in ("absolute", "relative"):
            for alpha in (0.05, 0.1):
                est, var = effect_moments(c, t, effect)
                dof = welch_dof(c, t)
                se = math.sqrt(var)
                tstat = est / se
                p = 2 * stats.t.sf(abs(tstat), dof)
                if effect == "absolute":
                    # Independent check of t and p with scipy's own Welch test.
                    ref = stats.ttest_ind_from_stats(
                        t[1], math.sqrt(t[2]), t[0], c[1], math.sqrt(c[2]), c[0], equal_var=False
                    )
                    if not math.isnan(ref.statistic):
                        assert math.isclose(ref.statistic, tstat, rel_tol=1e-12, abs_tol=1e-15)
                        assert math.isclose(ref.pvalue, p, rel_tol=1e-12)
                    # else: equal arms, 0/0 in scipy; ours is t = 0, p = 1.
                w = stats.t.ppf(1 - alpha / 2, dof) * se
                cases.append({
                    "name": f"{name} {effect} alpha={alpha}",
                    "metric": metric, "effect": effect, "alpha": alpha,
                    "control": sc, "treatment": st,
                    "estimate": est, "std_error": se, "dof": dof, "t": tstat, "p_value": p,
                    "ci": [est - w, est + w],
                })
    return cases


def z_cases():
    out = []
    for name, (nc, kc), (nt, kt) in [
        ("conversions", (10000, 1000), (10000, 1100)),
        ("0/20 vs 2/20", (20, 0), (20, 2)),
        ("huge n", (100_000_000, 5_000_000), (100_000_000, 5_010_000)),
        ("unequal arms", (3000, 150), (7000, 290)),
        ("equal", (500, 25), (500, 25)),
    ]:
        z, p = proportions_ztest([kt, kc], [nt, nc])
        out.append({"name": name, "control": [nc, kc], "treatment": [nt, kt], "z": float(z), "p_value": float(p)})
    return out


def interval_cases():
    out = []
    for k, n in [(0, 20), (2, 20), (20, 20), (1000, 10000), (3, 10_000_000), (1, 1), (0, 1), (50, 51)]:
        for alpha in (0.05, 0.01):
            w = proportion_confint(k, n, alpha=alpha, method="wilson")
            cp = proportion_confint(k, n, alpha=alpha, method="beta")
            out.append({"successes": k, "trials": n, "alpha": alpha,
                        "wilson": [float(w[0]), float(w[1])],
                        "clopper_pearson": [float(cp[0]), float(cp[1])]})
    return out


def power_cases():
    out = []
    for baseline, mde, alpha, power in [
        (0.05, 0.10, 0.05, 0.8), (0.05, 0.05, 0.05, 0.9), (0.2, -0.1, 0.01, 0.8),
        (0.5, 0.02, 0.05, 0.8), (0.001, 0.5, 0.05, 0.8),
    ]:
        p_t = baseline * (1 + mde)
        n = samplesize_proportions_2indep_onetail(p_t - baseline, baseline, power, ratio=1, alpha=alpha,
                                                  alternative="two-sided")
        za, zb = stats.norm.isf(alpha / 2), stats.norm.isf(1 - power)

        def gap(lift, n=n):
            pt = baseline * (1 + lift)
            pbar = (baseline + pt) / 2
            s0 = math.sqrt(2 * pbar * (1 - pbar))
            s1 = math.sqrt(baseline * (1 - baseline) + pt * (1 - pt))
            return math.sqrt(n) * (pt - baseline) - za * s0 - zb * s1

        mde_back = optimize.brentq(gap, 1e-12, (1 / baseline - 1) * (1 - 1e-12), xtol=1e-15, rtol=1e-15)
        pw = power_proportions_2indep(p_t - baseline, baseline, 12345, alpha=alpha, alternative="two-sided",
                                      return_results=False)
        out.append({"baseline": baseline, "mde": mde, "alpha": alpha, "power": power,
                    "sample_size": float(n), "mde_at_sample_size": abs(mde_back) if mde > 0 else None,
                    "power_at_12345": float(pw)})
    means = []
    for sd, mde, alpha, power in [(2.5, 0.1, 0.05, 0.8), (10.0, 1.0, 0.01, 0.9)]:
        s = math.sqrt(2) * sd
        n = normal_sample_size_one_tail(mde, power, alpha / 2, std_null=s, std_alternative=s)
        means.append({"std_dev": sd, "mde": mde, "alpha": alpha, "power": power, "sample_size": float(n)})
    return out, means


def multiple_cases():
    out = []
    for ps in [[0.01, 0.04, 0.03, 0.005], [0.2, 0.001, 0.049, 0.05, 0.5, 0.0001], [0.5], [0.03, 0.03, 0.03]]:
        out.append({"p_values": ps,
                    "holm": multipletests(ps, method="holm")[1].tolist(),
                    "bh": multipletests(ps, method="fdr_bh")[1].tolist()})
    return out


def srm_cases():
    out = []
    for users, weights in [([5000, 5050], [0.5, 0.5]), ([5000, 5400], [1, 1]),
                           ([3321, 3354, 3325], [1, 1, 1]), ([900, 2100], [0.3, 0.7]),
                           ([10_000_000, 10_010_000], [1, 1])]:
        total = sum(users)
        exp = [total * w / sum(weights) for w in weights]
        r = stats.chisquare(users, f_exp=exp)
        out.append({"users": users, "weights": weights, "chi2": float(r.statistic), "p_value": float(r.pvalue)})
    return out


# --- GrowthBook Bayesian effect posterior ---------------------------------------------------
def gb_risk(mu, sigma):
    # gbstats EffectBayesianABTest.get_risk, with scipy truncnorm for the truncated means.
    p_ctrl_better = stats.norm.cdf(0.0, loc=mu, scale=sigma)
    mn_neg = stats.truncnorm.mean(-np.inf, (0 - mu) / sigma, loc=mu, scale=sigma) if p_ctrl_better > 0 else 0
    mn_pos = stats.truncnorm.mean((0 - mu) / sigma, np.inf, loc=mu, scale=sigma) if p_ctrl_better < 1 else 0
    return [float((1 - p_ctrl_better) * mn_pos), float(-p_ctrl_better * mn_neg)]


def bayes_cases():
    out = []
    inputs = [
        ("binomial", conv(10000, 1000), conv(10000, 1100)),
        ("binomial", conv(2000, 100), conv(2000, 96)),
        ("mean", summary(1000, 5230.0, 61234.0), summary(1100, 6010.0, 71020.0)),
        ("binomial", conv(5000, 250), conv(5000, 250)),
    ]
    for metric, sc, st in inputs:
        c, t = estimate(sc, metric), estimate(st, metric)
        for effect in ("relative", "absolute"):
            for prior in (None, {"mean": 0.0, "stddev": 0.3, "scale": "relative"},
                          {"mean": 0.01, "stddev": 0.05, "scale": "absolute"}):
                alpha = 0.05
                d, v = effect_moments(c, t, effect)
                if prior is None:
                    mean, prec = d, 1 / v
                else:
                    m0, v0 = prior["mean"], prior["stddev"] ** 2
                    if prior["scale"] == "relative" and effect == "absolute":
                        m0, v0 = m0 * abs(c[1]), v0 * c[1] ** 2
                    elif prior["scale"] == "absolute" and effect == "relative":
                        m0, v0 = m0 / abs(c[1]), v0 / c[1] ** 2
                    prec = 1 / v + 1 / v0
                    mean = (d / v + m0 / v0) / prec
                sd = math.sqrt(1 / prec)
                out.append({
                    "metric": metric, "effect": effect, "alpha": alpha, "prior": prior,
                    "control": sc, "treatment": st,
                    "mean": mean, "stddev": sd,
                    "chance_to_win": float(stats.norm.sf(0, mean, sd)),
                    "credible_interval": [float(x) for x in stats.norm.ppf([alpha / 2, 1 - alpha / 2], mean, sd)],
                    "risk": gb_risk(mean, sd),
                })
    return out


# --- exact Beta-Binomial --------------------------------------------------------------------
def miller(a, b, c, d):
    """P(X1 > X2), X1 ~ Beta(a, b), X2 ~ Beta(c, d), a whole (Evan Miller's sum), in 40-digit
    mpmath arithmetic: term_i = B(c+i, b+d) / ((b+i) B(1+i, b) B(c, d)), each term the previous
    times (c+i)(b+i) / ((c+b+d+i)(1+i))."""
    with mpmath.workdps(40):
        a, b, c, d = (mpmath.mpf(x) for x in (a, b, c, d))
        term = mpmath.exp(mpmath.log(mpmath.beta(c, b + d)) - mpmath.log(mpmath.beta(c, d)))
        total = mpmath.mpf(0)
        for i in range(int(a)):
            total += term
            term *= (c + i) * (b + i) / ((c + b + d + i) * (1 + i))
        return float(total)


def prob_greater_closed(x1, x2):
    (a, b), (c, d) = x1, x2
    # Shortest direct sum, as in the Rust code; the others agree to rounding.
    return miller(a, b, c, d) if a <= d else miller(d, c, b, a)


def bounds(a, b):
    m, s = a / (a + b), math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    return max(0, m - 40 * s), min(1, m + 40 * s), [m + k * s for k in (-6, -3, -1, 0, 1, 3, 6)]


def quad_greater(x1, x2):
    (a, b), (c, d) = x1, x2
    lo, hi, pts = bounds(a, b)
    pts = [p for p in pts + bounds(c, d)[2] if lo < p < hi]
    v, _ = integrate.quad(lambda x: stats.beta.pdf(x, a, b) * stats.beta.cdf(x, c, d), lo, hi,
                          points=pts, epsabs=1e-15, epsrel=1e-13, limit=500)
    return v


def quad_loss(x_lo, x_hi):
    """E max(X_hi - X_lo, 0) by 1-D quadrature over X_lo."""
    (a, b), (c, d) = x_lo, x_hi
    m = c / (c + d)
    lo, hi, pts = bounds(a, b)
    pts = [p for p in pts + bounds(c, d)[2] if lo < p < hi]
    f = lambda x: stats.beta.pdf(x, a, b) * (m * stats.beta.sf(x, c + 1, d) - x * stats.beta.sf(x, c, d))
    v, _ = integrate.quad(f, lo, hi, points=pts, epsabs=1e-15, epsrel=1e-13, limit=500)
    return v


def exact_cases():
    out = []
    for (nc, kc), (nt, kt) in [
        ((20, 0), (20, 2)), ((10000, 1000), (10000, 1100)), ((1000, 50), (1000, 50)),
        ((20, 0), (20, 0)), ((20, 20), (20, 19)), ((1_000_000, 40_000), (1_000_000, 40_500)),
        ((300, 12), (150, 3)), ((5, 1), (7, 6)),
    ]:
        A = (1 + kc, 1 + nc - kc)
        B = (1 + kt, 1 + nt - kt)
        p = prob_greater_closed(B, A)
        q = quad_greater(B, A)
        assert math.isclose(p, q, rel_tol=1e-8, abs_tol=1e-13), (p, q)
        ma, mb = A[0] / sum(A), B[0] / sum(B)
        loss_control = mb * prob_greater_closed((B[0] + 1, B[1]), A) - ma * prob_greater_closed(B, (A[0] + 1, A[1]))
        loss_treat = ma * prob_greater_closed((A[0] + 1, A[1]), B) - mb * prob_greater_closed(A, (B[0] + 1, B[1]))
        lq_c, lq_t = quad_loss(A, B), quad_loss(B, A)
        assert math.isclose(loss_control, lq_c, rel_tol=1e-8, abs_tol=1e-13), (loss_control, lq_c)
        assert math.isclose(loss_treat, lq_t, rel_tol=1e-8, abs_tol=1e-13), (loss_treat, lq_t)
        out.append({"control": [nc, kc], "treatment": [nt, kt], "chance_to_win": p,
                    "expected_loss": [max(loss_control, 0.0), max(loss_treat, 0.0)]})
    return out


def p_best_cases():
    out = []
    for arms in [
        [(20, 0), (20, 2)],
        [(1000, 40), (1000, 50), (1000, 60)],
        [(20, 1), (25, 3), (30, 2), (18, 0)],
        [(10000, 500), (10000, 520), (10000, 480), (10000, 530), (10000, 510)],
        [(100, 5), (100_000, 5200)],
    ]:
        post = [(1 + k, 1 + n - k) for n, k in arms]
        probs = []
        for i, (a, b) in enumerate(post):
            lo, hi, pts = bounds(a, b)
            others = [x for j, x in enumerate(post) if j != i]
            for (c, d) in others:
                pts += bounds(c, d)[2]
            pts = sorted(p for p in pts if lo < p < hi)

            def f(x, a=a, b=b, others=others):
                v = stats.beta.pdf(x, a, b)
                for (c, d) in others:
                    v *= stats.beta.cdf(x, c, d)
                return v

            v, _ = integrate.quad(f, lo, hi, points=pts, epsabs=1e-14, epsrel=1e-12, limit=1000)
            probs.append(v)
        assert abs(sum(probs) - 1) < 1e-8, probs
        out.append({"arms": [[n, k] for n, k in arms], "p_best": probs})
    return out


# --- sequential (GrowthBook SequentialTwoSidedTTest) ---------------------------------------
def sequential_cases():
    out = []
    for est, var, n, tuning, alpha in [
        (0.1, 0.0025, 20000, 5000, 0.05), (0.02, 0.0001, 1000, 5000, 0.05),
        (-0.05, 0.0004, 1_000_000, 100_000, 0.01), (0.001, 0.01, 50, 5000, 0.1),
    ]:
        rho = math.sqrt((-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning)
        s2 = var * n
        a = n * rho**2 + 1
        half = math.sqrt(s2) * math.sqrt(2 * a * math.log(math.sqrt(a) / alpha) / (n * rho) ** 2)
        st2 = est**2 * n / var
        evalue = math.exp(rho**2 * st2 / (2 * a)) / math.sqrt(a)
        out.append({"estimate": est, "variance": var, "total_n": n, "tuning": tuning, "alpha": alpha,
                    "rho": rho, "ci": [est - half, est + half], "p_value": min(1 / evalue, 1.0)})
    return out


# --- CUPED from raw data --------------------------------------------------------------------
def cuped_cases():
    out = []
    rng = np.random.default_rng(7)
    for name, nc, nt, lift, rho_pre in [("correlated", 800, 900, 0.3, 0.8), ("weak", 300, 250, 0.5, 0.2)]:
        def arm(n, shift):
            pre = rng.gamma(2.0, 5.0, size=n)
            post = 3.0 + rho_pre * pre + rng.normal(0, 4.0, size=n) + shift
            return pre, post
        pre_c, post_c = arm(nc, 0.0)
        pre_t, post_t = arm(nt, lift)
        pre_all, post_all = np.concatenate([pre_c, pre_t]), np.concatenate([post_c, post_t])
        theta = np.cov(post_all, pre_all, ddof=1)[0, 1] / np.var(pre_all, ddof=1)
        adj_c, adj_t = post_c - theta * pre_c, post_t - theta * pre_t
        vc, vt = np.var(adj_c, ddof=1), np.var(adj_t, ddof=1)
        dof = (vt / nt + vc / nc) ** 2 / ((vt / nt) ** 2 / (nt - 1) + (vc / nc) ** 2 / (nc - 1))

        def pp(pre, post):
            return {"post": summary(len(post), post.sum(), (post**2).sum()),
                    "pre": summary(len(pre), pre.sum(), (pre**2).sum()),
                    "sum_products": float((pre * post).sum())}

        for effect in ("absolute", "relative"):
            if effect == "absolute":
                est = adj_t.mean() - adj_c.mean()
                var = vt / nt + vc / nc
                unadj = np.var(post_t, ddof=1) / nt + np.var(post_c, ddof=1) / nc
            else:
                m = post_c.mean()
                est = (adj_t.mean() - adj_c.mean()) / m
                # gbstats frequentist_variance_relative_cuped
                cov_c = np.cov(post_c, pre_c, ddof=1)[0, 1]
                k = -post_t.mean()
                v_trt = vt / (nt * m**2)
                v_ctrl = (np.var(post_c, ddof=1) * k**2 / m**2 + 2 * theta * cov_c * k / m
                          + theta**2 * np.var(pre_c, ddof=1)) / (nc * m**2)
                var = v_trt + v_ctrl
                unadj = (np.var(post_t, ddof=1) / (m**2 * nt)
                         + np.var(post_c, ddof=1) * post_t.mean() ** 2 / (m**4 * nc))
            se = math.sqrt(var)
            w = stats.t.ppf(0.975, dof) * se
            out.append({"name": f"{name} {effect}", "effect": effect, "alpha": 0.05,
                        "control": pp(pre_c, post_c), "treatment": pp(pre_t, post_t),
                        "theta": float(theta), "estimate": float(est), "std_error": se, "dof": float(dof),
                        "p_value": float(2 * stats.t.sf(abs(est / se), dof)),
                        "ci": [float(est - w), float(est + w)],
                        "variance_reduction": float(1 - var / unadj)})
    return out


def main():
    power, power_means = power_cases()
    data = {
        "welch": welch_cases(),
        "z_test": z_cases(),
        "interval": interval_cases(),
        "power": power,
        "power_means": power_means,
        "multiple": multiple_cases(),
        "srm": srm_cases(),
        "bayes": bayes_cases(),
        "exact": exact_cases(),
        "p_best": p_best_cases(),
        "sequential": sequential_cases(),
        "cuped": cuped_cases(),
    }
    with open("reference.json", "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
