//! `mia stats` and `mia bandit-sim` as a user runs them: JSON on stdin or in a file, JSON out.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

fn mia(args: &[&str], stdin: Option<&str>) -> (bool, Value, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mia"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.success(), json, stderr)
}

#[track_caller]
fn close(got: &Value, want: f64, rel: f64) {
    let got = got
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {got}"));
    assert!(
        (got - want).abs() <= rel * want.abs(),
        "got {got}, want {want}"
    );
}

const BINOMIAL: &str = r#"{
  "metric": "binomial",
  "variants": [
    {"name": "A", "users": 10000, "conversions": 1000},
    {"name": "B", "users": 10000, "conversions": 1100}
  ],
  "weights": [0.5, 0.5],
  "alpha": 0.05,
  "prior": {"mean": 0.0, "stddev": 0.3}
}"#;

#[test]
fn binomial_analysis_from_stdin_matches_the_references() {
    let (ok, out, err) = mia(&["stats"], Some(BINOMIAL));
    assert!(ok, "{err}");
    close(&out["srm"]["chi2"], 0.0, 0.0);
    close(&out["srm"]["p_value"], 1.0, 1e-12);
    let c = &out["comparisons"][0];
    assert_eq!(
        (c["control"].as_str(), c["treatment"].as_str()),
        (Some("A"), Some("B"))
    );
    // Welch on the relative lift (scipy / GrowthBook formulas, tests/data/reference.json).
    close(&c["relative"]["estimate"], 0.1, 1e-12);
    close(&c["relative"]["p_value"], 0.027_889_528_764_600_59, 1e-9);
    close(&c["relative"]["ci"][0], 0.010_864_708_144_846_927, 1e-9);
    close(&c["relative"]["ci"][1], 0.189_135_291_855_153, 1e-9);
    close(&c["absolute"]["estimate"], 0.01, 1e-12);
    // statsmodels proportions_ztest.
    close(&c["z_test"]["z"], 2.306_634_773_817_010_3, 1e-9);
    close(&c["z_test"]["p_value"], 0.021_075_189_273_797_826, 1e-9);
    // Exact Beta-Binomial.
    close(&c["exact"]["chance_to_win"], 0.989_457_354_431_714, 1e-9);
    close(
        &c["exact"]["expected_loss"][0],
        0.010_013_582_843_752_214,
        1e-9,
    );
    let ctw = c["relative"]["chance_to_win"].as_f64().unwrap();
    assert!(ctw > 0.98 && ctw < 0.995, "{ctw}");
    let risk = c["relative"]["risk"].as_array().unwrap();
    assert!(risk[0].as_f64().unwrap() > risk[1].as_f64().unwrap());
    let p_best: Vec<f64> = out["p_best"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!((p_best[0] + p_best[1] - 1.0).abs() < 1e-9 && p_best[1] > 0.98);
}

#[test]
fn mean_metric_from_a_file_with_sequential_testing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("revenue.json");
    std::fs::write(
        &path,
        r#"{"metric": "mean", "sequential": {"tuning": 5000},
            "variants": [{"name": "control", "n": 1000, "sum": 5230.0, "sum_squares": 61234.0},
                         {"name": "new copy", "n": 1100, "sum": 6010.0, "sum_squares": 71020.0}]}"#,
    )
    .unwrap();
    let (ok, out, err) = mia(&["stats", path.to_str().unwrap()], None);
    assert!(ok, "{err}");
    let c = &out["comparisons"][0];
    assert!(c.get("exact").is_none() && c.get("z_test").is_none() && out.get("p_best").is_none());
    let (fixed_ok, fixed, _) = mia(
        &["stats"],
        Some(
            &std::fs::read_to_string(&path)
                .unwrap()
                .replace(r#""sequential": {"tuning": 5000},"#, ""),
        ),
    );
    assert!(fixed_ok);
    // The always-valid interval is wider than the fixed-horizon one around the same estimate.
    let width = |v: &Value| v["ci"][1].as_f64().unwrap() - v["ci"][0].as_f64().unwrap();
    let fc = &fixed["comparisons"][0];
    assert_eq!(c["absolute"]["estimate"], fc["absolute"]["estimate"]);
    assert!(width(&c["absolute"]) > width(&fc["absolute"]));
}

#[test]
fn bad_input_fails_with_a_message() {
    let (ok, _, err) = mia(
        &["stats"],
        Some(r#"{"metric": "binomial", "variants": []}"#),
    );
    assert!(!ok && err.contains("two variants"), "{err}");
    let (ok, _, err) = mia(&["stats"], Some("not json"));
    assert!(!ok && err.contains("invalid experiment JSON"), "{err}");
}

#[test]
fn sample_size_and_interval() {
    let (ok, out, err) = mia(
        &[
            "stats",
            "sample-size",
            "--baseline",
            "0.05",
            "--mde",
            "0.10",
            "--alpha",
            "0.05",
            "--power",
            "0.8",
        ],
        None,
    );
    assert!(ok, "{err}");
    // statsmodels samplesize_proportions_2indep_onetail: 31233.44 per arm.
    assert_eq!(out["per_arm"], 31234);
    close(&out["exact"], 31_233.437_940_129_97, 1e-9);
    let (ok, out, err) = mia(
        &[
            "stats",
            "interval",
            "--successes",
            "2",
            "--trials",
            "20",
            "--method",
            "clopper-pearson",
        ],
        None,
    );
    assert!(ok, "{err}");
    close(&out["lower"], 0.012_348_527_170_294_808, 1e-9);
    close(&out["upper"], 0.316_982_714_019_082_3, 1e-9);
    let (ok, out, _) = mia(
        &["stats", "interval", "--successes", "2", "--trials", "20"],
        None,
    );
    assert!(ok);
    close(&out["lower"], 0.027_866_481_213_768_196, 1e-9);
}

#[test]
fn bandit_sim_prints_the_regret_summary() {
    let (ok, out, err) = mia(
        &[
            "bandit-sim",
            "--arms",
            "0.04,0.05,0.06",
            "--pulls",
            "5000",
            "--seeds",
            "4",
            "--policy",
            "thompson",
            "--batch",
            "1",
        ],
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(out["policy"], "thompson");
    for key in ["mean_regret", "median_regret", "p90_regret"] {
        let v = out[key].as_f64().unwrap();
        // Uniform play would lose 50 over 5,000 pulls.
        assert!(v > 0.0 && v < 50.0, "{key} {v}");
    }
    let (ok, _, err) = mia(
        &[
            "bandit-sim",
            "--policy",
            "ucb1",
            "--pulls",
            "10",
            "--seeds",
            "1",
        ],
        None,
    );
    assert!(!ok && err.contains("unknown policy"), "{err}");
}
