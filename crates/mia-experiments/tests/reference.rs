//! Checks the statistics against tests/data/reference.json, written by
//! tests/data/make_reference.py from scipy, statsmodels and GrowthBook's formulas.
//! Closed forms agree to 1e-9 relative, quadrature to 1e-6.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use mia_experiments::stats::{
    self, BetaPosterior, Effect, Estimate, IntervalMethod, Metric, PrePost, Prior, Summary,
};
use serde_json::Value;

const CLOSED: f64 = 1e-9;
const QUADRATURE: f64 = 1e-6;

fn reference() -> Value {
    let text = include_str!("data/reference.json");
    serde_json::from_str(text).unwrap()
}

#[track_caller]
fn close(what: &str, got: f64, want: f64, rel: f64) {
    let ok = (got - want).abs() <= rel * want.abs() + 1e-15;
    assert!(
        ok,
        "{what}: got {got:e}, want {want:e} (rel error {:e})",
        ((got - want) / want).abs()
    );
}

#[track_caller]
fn close_pair(what: &str, got: [f64; 2], want: &Value, rel: f64) {
    close(&format!("{what}[0]"), got[0], f(&want[0]), rel);
    close(&format!("{what}[1]"), got[1], f(&want[1]), rel);
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap()
}

fn summary(v: &Value) -> Summary {
    Summary::new(u(&v["n"]), f(&v["sum"]), f(&v["sum_squares"])).unwrap()
}

fn metric(v: &Value) -> Metric {
    serde_json::from_value(v.clone()).unwrap()
}

fn effect(v: &Value) -> Effect {
    serde_json::from_value(v.clone()).unwrap()
}

fn estimates(case: &Value) -> (Estimate, Estimate) {
    let m = metric(&case["metric"]);
    (
        summary(&case["control"]).estimate(m).unwrap(),
        summary(&case["treatment"]).estimate(m).unwrap(),
    )
}

#[test]
fn welch_matches_scipy() {
    for case in reference()["welch"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (c, t) = estimates(case);
        let r = stats::welch_t_test(&c, &t, effect(&case["effect"]), f(&case["alpha"])).unwrap();
        close(
            &format!("{name} estimate"),
            r.estimate,
            f(&case["estimate"]),
            CLOSED,
        );
        close(
            &format!("{name} se"),
            r.std_error,
            f(&case["std_error"]),
            CLOSED,
        );
        close(&format!("{name} dof"), r.dof, f(&case["dof"]), CLOSED);
        close(&format!("{name} t"), r.t, f(&case["t"]), CLOSED);
        close(&format!("{name} p"), r.p_value, f(&case["p_value"]), CLOSED);
        close_pair(&format!("{name} ci"), r.ci, &case["ci"], CLOSED);
    }
}

#[test]
fn z_test_matches_statsmodels() {
    for case in reference()["z_test"].as_array().unwrap() {
        let (c, t) = (&case["control"], &case["treatment"]);
        let name = case["name"].as_str().unwrap();
        let r = stats::two_proportion_z_test(u(&c[0]), u(&c[1]), u(&t[0]), u(&t[1])).unwrap();
        close(&format!("{name} z"), r.z, f(&case["z"]), CLOSED);
        close(&format!("{name} p"), r.p_value, f(&case["p_value"]), CLOSED);
    }
}

#[test]
fn intervals_match_statsmodels() {
    for case in reference()["interval"].as_array().unwrap() {
        let (k, n, alpha) = (u(&case["successes"]), u(&case["trials"]), f(&case["alpha"]));
        let name = format!("{k}/{n} alpha={alpha}");
        let w = stats::proportion_interval(k, n, alpha, IntervalMethod::Wilson).unwrap();
        close_pair(&format!("{name} wilson"), w, &case["wilson"], CLOSED);
        let cp = stats::proportion_interval(k, n, alpha, IntervalMethod::ClopperPearson).unwrap();
        close_pair(
            &format!("{name} clopper-pearson"),
            cp,
            &case["clopper_pearson"],
            CLOSED,
        );
    }
}

#[test]
fn power_and_sample_size_match_statsmodels() {
    let data = reference();
    for case in data["power"].as_array().unwrap() {
        let (b, mde, alpha, power) = (
            f(&case["baseline"]),
            f(&case["mde"]),
            f(&case["alpha"]),
            f(&case["power"]),
        );
        let name = format!("{b} {mde} {alpha} {power}");
        let s = stats::sample_size_two_proportions(b, mde, alpha, power).unwrap();
        close(
            &format!("{name} n"),
            s.exact,
            f(&case["sample_size"]),
            CLOSED,
        );
        assert_eq!(s.per_arm, f(&case["sample_size"]).ceil() as u64);
        let p = stats::power_two_proportions(b, b * (1.0 + mde), 12345.0, alpha).unwrap();
        close(
            &format!("{name} power"),
            p,
            f(&case["power_at_12345"]),
            CLOSED,
        );
        if let Some(back) = case["mde_at_sample_size"].as_f64() {
            let m = stats::minimum_detectable_effect(b, s.exact, alpha, power).unwrap();
            close(&format!("{name} mde"), m, back, CLOSED);
        }
    }
    for case in data["power_means"].as_array().unwrap() {
        let s = stats::sample_size_means(
            f(&case["std_dev"]),
            f(&case["mde"]),
            f(&case["alpha"]),
            f(&case["power"]),
        )
        .unwrap();
        close("means n", s.exact, f(&case["sample_size"]), CLOSED);
    }
}

#[test]
fn corrections_match_statsmodels() {
    for case in reference()["multiple"].as_array().unwrap() {
        let p: Vec<f64> = case["p_values"].as_array().unwrap().iter().map(f).collect();
        for (got, want) in stats::holm(&p)
            .unwrap()
            .iter()
            .zip(case["holm"].as_array().unwrap())
        {
            close("holm", *got, f(want), CLOSED);
        }
        let bh = stats::benjamini_hochberg(&p).unwrap();
        for (got, want) in bh.iter().zip(case["bh"].as_array().unwrap()) {
            close("bh", *got, f(want), CLOSED);
        }
    }
}

#[test]
fn srm_matches_scipy() {
    for case in reference()["srm"].as_array().unwrap() {
        let users: Vec<u64> = case["users"].as_array().unwrap().iter().map(u).collect();
        let weights: Vec<f64> = case["weights"].as_array().unwrap().iter().map(f).collect();
        let r = stats::sample_ratio_mismatch(&users, &weights).unwrap();
        close("chi2", r.chi2, f(&case["chi2"]), CLOSED);
        close("p", r.p_value, f(&case["p_value"]), CLOSED);
        assert_eq!(r.mismatch, f(&case["p_value"]) < 0.001);
    }
}

#[test]
fn bayesian_posterior_follows_growthbook() {
    for case in reference()["bayes"].as_array().unwrap() {
        let (c, t) = estimates(case);
        let prior: Option<Prior> = serde_json::from_value(case["prior"].clone()).unwrap();
        let e = effect(&case["effect"]);
        let what = format!("{:?} {e:?} {prior:?}", case["treatment"]);
        let r = stats::gaussian_posterior(&c, &t, e, prior.as_ref(), f(&case["alpha"])).unwrap();
        close(&format!("{what} mean"), r.mean, f(&case["mean"]), CLOSED);
        close(&format!("{what} sd"), r.stddev, f(&case["stddev"]), CLOSED);
        close(
            &format!("{what} ctw"),
            r.chance_to_win,
            f(&case["chance_to_win"]),
            CLOSED,
        );
        close_pair(
            &format!("{what} ci"),
            r.credible_interval,
            &case["credible_interval"],
            CLOSED,
        );
        close_pair(&format!("{what} risk"), r.risk, &case["risk"], CLOSED);
    }
}

#[test]
fn exact_beta_binomial_matches_the_closed_form() {
    for case in reference()["exact"].as_array().unwrap() {
        let (c, t) = (&case["control"], &case["treatment"]);
        let a = BetaPosterior::from_conversions(u(&c[0]), u(&c[1])).unwrap();
        let b = BetaPosterior::from_conversions(u(&t[0]), u(&t[1])).unwrap();
        let what = format!("{c} vs {t}");
        let r = stats::compare_beta(&a, &b).unwrap();
        close(
            &format!("{what} ctw"),
            r.chance_to_win,
            f(&case["chance_to_win"]),
            CLOSED,
        );
        // The loss is a difference of two closed-form terms of the size of the conversion
        // rate (m_t P(T' > C) - m_c P(T > C')); when it is thousands of times smaller than they
        // are, 1e-9 relative is beyond double precision, so 1e-13 absolute also passes.
        for (k, want) in case["expected_loss"].as_array().unwrap().iter().enumerate() {
            let (got, want) = (r.expected_loss[k], f(want));
            let ok = (got - want).abs() <= (CLOSED * want.abs()).max(1e-13);
            assert!(ok, "{what} loss[{k}]: got {got:e}, want {want:e}");
        }
    }
}

#[test]
fn p_best_matches_scipy_quadrature() {
    for case in reference()["p_best"].as_array().unwrap() {
        let arms: Vec<BetaPosterior> = case["arms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| BetaPosterior::from_conversions(u(&a[0]), u(&a[1])).unwrap())
            .collect();
        let got = stats::prob_best(&arms).unwrap();
        for (g, w) in got.iter().zip(case["p_best"].as_array().unwrap()) {
            close(&format!("p_best {}", case["arms"]), *g, f(w), QUADRATURE);
        }
    }
}

#[test]
fn sequential_follows_growthbook() {
    for case in reference()["sequential"].as_array().unwrap() {
        let (e, v, n, tuning, alpha) = (
            f(&case["estimate"]),
            f(&case["variance"]),
            f(&case["total_n"]),
            f(&case["tuning"]),
            f(&case["alpha"]),
        );
        close(
            "rho",
            stats::sequential_rho(alpha, tuning).unwrap(),
            f(&case["rho"]),
            CLOSED,
        );
        let ci = stats::confidence_sequence(e, v, n, tuning, alpha).unwrap();
        close_pair("cs", ci, &case["ci"], CLOSED);
        let p = stats::sequential_p_value(e, v, n, tuning, alpha).unwrap();
        close("p", p, f(&case["p_value"]), CLOSED);
    }
}

#[test]
fn cuped_matches_numpy_on_raw_data() {
    for case in reference()["cuped"].as_array().unwrap() {
        let arm = |v: &Value| PrePost {
            post: summary(&v["post"]),
            pre: summary(&v["pre"]),
            sum_products: f(&v["sum_products"]),
        };
        let name = case["name"].as_str().unwrap();
        let r = stats::cuped(
            &arm(&case["control"]),
            &arm(&case["treatment"]),
            effect(&case["effect"]),
            f(&case["alpha"]),
        )
        .unwrap();
        // Sufficient statistics lose a few digits to cancellation against the raw-data path.
        let tol = 1e-8;
        close(&format!("{name} theta"), r.theta, f(&case["theta"]), tol);
        close(
            &format!("{name} estimate"),
            r.test.estimate,
            f(&case["estimate"]),
            tol,
        );
        close(
            &format!("{name} se"),
            r.test.std_error,
            f(&case["std_error"]),
            tol,
        );
        close(&format!("{name} dof"), r.test.dof, f(&case["dof"]), tol);
        close(
            &format!("{name} p"),
            r.test.p_value,
            f(&case["p_value"]),
            tol,
        );
        close_pair(&format!("{name} ci"), r.test.ci, &case["ci"], tol);
        close(
            &format!("{name} reduction"),
            r.variance_reduction,
            f(&case["variance_reduction"]),
            tol,
        );
    }
}
