//! The whole analysis of an experiment as serde types, JSON in and JSON out: what `mia stats`
//! prints. Every variant is compared with the first.

use serde::{Deserialize, Serialize};

use crate::error::{ExperimentError, Result};
use crate::stats::{
    self, BetaPosterior, Effect, Estimate, ExactComparison, Metric, Prior, Sequential, Summary,
    ZTest,
};

/// One variant's data: `users` and `conversions` for a binomial metric, `n`, `sum` and
/// `sum_squares` for a mean metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantInput {
    /// The variant's name.
    pub name: String,
    /// Users (binomial).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<u64>,
    /// Converted users (binomial).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversions: Option<u64>,
    /// Users (mean).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u64>,
    /// Sum of the values (mean).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sum: Option<f64>,
    /// Sum of the squared values (mean).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sum_squares: Option<f64>,
}

/// The input of [`analyze`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsInput {
    /// `binomial` or `mean`.
    pub metric: Metric,
    /// The variants; the first is the control.
    pub variants: Vec<VariantInput>,
    /// Configured traffic weights for the sample ratio check; equal when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<Vec<f64>>,
    /// Significance level; 0.05 when absent.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// A proper prior on the effect (relative unless `scale` says `absolute`); flat when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior: Option<Prior>,
    /// Sequential testing: the `ci` and `p_value` become always-valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequential: Option<Sequential>,
}

fn default_alpha() -> f64 {
    0.05
}

/// The sample ratio check in the output.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SrmOutput {
    /// Chi-square statistic.
    pub chi2: f64,
    /// p-value.
    pub p_value: f64,
    /// `p_value < 0.001`.
    pub mismatch: bool,
}

/// One effect (relative or absolute) of a treatment.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EffectOutput {
    /// Point estimate.
    pub estimate: f64,
    /// Welch confidence interval (always-valid with `sequential`).
    pub ci: [f64; 2],
    /// Welch p-value (always-valid with `sequential`).
    pub p_value: f64,
    /// Bayesian `P(effect > 0)`.
    pub chance_to_win: f64,
    /// Bayesian expected loss `[of shipping control, of shipping treatment]`.
    pub risk: [f64; 2],
    /// Bayesian credible interval.
    pub credible_interval: [f64; 2],
}

/// A treatment against the control.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The control's name.
    pub control: String,
    /// The treatment's name.
    pub treatment: String,
    /// Relative effect; `null` when undefined (see `notes`).
    pub relative: Option<EffectOutput>,
    /// Absolute effect; `null` when undefined (see `notes`).
    pub absolute: Option<EffectOutput>,
    /// Exact Beta–Binomial comparison (binomial only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exact: Option<ExactComparison>,
    /// Pooled two-proportion z-test (binomial only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub z_test: Option<ZTest>,
    /// Why a part is missing (zero variance, zero baseline, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The output of [`analyze`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatsOutput {
    /// Sample ratio mismatch check.
    pub srm: SrmOutput,
    /// Every variant against the first.
    pub comparisons: Vec<Comparison>,
    /// `P(best)` per variant by exact quadrature (binomial only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_best: Option<Vec<f64>>,
}

fn summary_of(metric: Metric, v: &VariantInput) -> Result<Summary> {
    match metric {
        Metric::Binomial => match (v.users, v.conversions) {
            (Some(users), Some(conversions)) => Summary::conversions(users, conversions),
            _ => Err(ExperimentError::invalid(format!(
                "variant {}: a binomial metric needs users and conversions",
                v.name
            ))),
        },
        Metric::Mean => match (v.n, v.sum, v.sum_squares) {
            (Some(n), Some(sum), Some(ss)) => Summary::new(n, sum, ss),
            _ => Err(ExperimentError::invalid(format!(
                "variant {}: a mean metric needs n, sum and sum_squares",
                v.name
            ))),
        },
    }
}

fn effect_output(
    input: &StatsInput,
    c: &Estimate,
    t: &Estimate,
    effect: Effect,
) -> Result<EffectOutput> {
    let test = match input.sequential {
        Some(seq) => stats::sequential_t_test(c, t, effect, input.alpha, seq)?,
        None => stats::welch_t_test(c, t, effect, input.alpha)?,
    };
    let post = stats::gaussian_posterior(c, t, effect, input.prior.as_ref(), input.alpha)?;
    Ok(EffectOutput {
        estimate: test.estimate,
        ci: test.ci,
        p_value: test.p_value,
        chance_to_win: post.chance_to_win,
        risk: post.risk,
        credible_interval: post.credible_interval,
    })
}

/// Analyses an experiment: SRM, then every variant against the first with Welch's test and the
/// GrowthBook-style posterior on the relative and absolute effects, plus the exact
/// Beta–Binomial comparison, the z-test and `P(best)` for conversions.
///
/// # Errors
/// [`ExperimentError::InvalidInput`] for fewer than two variants, missing fields, weights of
/// the wrong length, or alpha outside (0, 1); [`ExperimentError::InsufficientData`] when a
/// variant has no users. Effects that cannot be computed (zero variance, zero baseline) are
/// `null` with a note instead of failing the whole analysis.
pub fn analyze(input: &StatsInput) -> Result<StatsOutput> {
    if input.variants.len() < 2 {
        return Err(ExperimentError::invalid("need at least two variants"));
    }
    if !(input.alpha > 0.0 && input.alpha < 1.0) {
        return Err(ExperimentError::invalid(format!(
            "alpha must be in (0, 1), got {}",
            input.alpha
        )));
    }
    let summaries = input
        .variants
        .iter()
        .map(|v| summary_of(input.metric, v))
        .collect::<Result<Vec<_>>>()?;
    let estimates = summaries
        .iter()
        .map(|s| s.estimate(input.metric))
        .collect::<Result<Vec<_>>>()?;
    let users: Vec<u64> = summaries.iter().map(|s| s.n).collect();
    let weights = input
        .weights
        .clone()
        .unwrap_or_else(|| vec![1.0; users.len()]);
    let srm = stats::sample_ratio_mismatch(&users, &weights)?;

    let binomial = input.metric == Metric::Binomial;
    let posteriors = if binomial {
        Some(
            summaries
                .iter()
                .map(|s| BetaPosterior::from_conversions(s.n, s.sum as u64))
                .collect::<Result<Vec<_>>>()?,
        )
    } else {
        None
    };
    let control = &input.variants[0];
    let mut comparisons = Vec::with_capacity(input.variants.len() - 1);
    for (i, variant) in input.variants.iter().enumerate().skip(1) {
        let mut notes = Vec::new();
        let mut keep = |what: &str, r: Result<EffectOutput>| match r {
            Ok(v) => Some(v),
            Err(e) => {
                notes.push(format!("{what}: {e}"));
                None
            }
        };
        let relative = keep(
            "relative",
            effect_output(input, &estimates[0], &estimates[i], Effect::Relative),
        );
        let absolute = keep(
            "absolute",
            effect_output(input, &estimates[0], &estimates[i], Effect::Absolute),
        );
        let (exact, z_test) = match &posteriors {
            Some(p) => {
                let exact = stats::compare_beta(&p[0], &p[i])?;
                let z = stats::two_proportion_z_test(
                    summaries[0].n,
                    summaries[0].sum as u64,
                    summaries[i].n,
                    summaries[i].sum as u64,
                );
                let z = match z {
                    Ok(z) => Some(z),
                    Err(e) => {
                        notes.push(format!("z_test: {e}"));
                        None
                    }
                };
                (Some(exact), z)
            }
            None => (None, None),
        };
        comparisons.push(Comparison {
            control: control.name.clone(),
            treatment: variant.name.clone(),
            relative,
            absolute,
            exact,
            z_test,
            notes,
        });
    }
    let p_best = posteriors.as_deref().map(stats::prob_best).transpose()?;
    Ok(StatsOutput {
        srm: SrmOutput {
            chi2: srm.chi2,
            p_value: srm.p_value,
            mismatch: srm.mismatch,
        },
        comparisons,
        p_best,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binomial(name: &str, users: u64, conversions: u64) -> VariantInput {
        VariantInput {
            name: name.to_owned(),
            users: Some(users),
            conversions: Some(conversions),
            n: None,
            sum: None,
            sum_squares: None,
        }
    }

    #[test]
    fn zero_conversions_give_notes_not_failures() {
        let input = StatsInput {
            metric: Metric::Binomial,
            variants: vec![binomial("A", 20, 0), binomial("B", 20, 2)],
            weights: None,
            alpha: 0.05,
            prior: None,
            sequential: None,
        };
        let out = analyze(&input).unwrap();
        let c = &out.comparisons[0];
        assert!(c.relative.is_none() && c.absolute.is_some());
        assert!(c.notes[0].contains("relative"), "{:?}", c.notes);
        let exact = c.exact.unwrap();
        assert!(exact.chance_to_win > 0.85 && exact.chance_to_win < 0.9);
        let p = out.p_best.unwrap();
        assert!((p[0] + p[1] - 1.0).abs() < 1e-9);
    }

    #[test]
    fn bad_input_is_an_error() {
        let mut input = StatsInput {
            metric: Metric::Mean,
            variants: vec![binomial("A", 20, 0), binomial("B", 20, 2)],
            weights: None,
            alpha: 0.05,
            prior: None,
            sequential: None,
        };
        assert!(analyze(&input).is_err(), "mean metric without n/sum");
        input.metric = Metric::Binomial;
        input.weights = Some(vec![1.0]);
        assert!(analyze(&input).is_err(), "weights of the wrong length");
        input.weights = None;
        input.alpha = 1.5;
        assert!(analyze(&input).is_err());
    }
}
