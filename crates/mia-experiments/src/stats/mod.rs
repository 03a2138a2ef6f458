//! Statistics of experiments: sufficient statistics, frequentist tests, GrowthBook-style
//! Bayesian posteriors, exact Beta–Binomial comparisons, confidence sequences and CUPED.
//!
//! Every function validates its input and answers with an
//! [`ExperimentError`](crate::ExperimentError) rather than NaN.

mod bayes;
mod cuped;
mod dist;
mod exact;
mod frequentist;
mod power;
mod quadrature;
mod sequential;
mod special;
mod summary;

pub use bayes::{Posterior, Prior, gaussian_posterior, posterior_from_moments};
pub use cuped::{CupedTest, PrePost, cuped};
pub use exact::{BetaPosterior, ExactComparison, compare_beta, prob_best};
pub use frequentist::{
    IntervalMethod, SRM_THRESHOLD, Srm, TTest, ZTest, benjamini_hochberg, holm,
    proportion_interval, sample_ratio_mismatch, two_proportion_z_test, welch_dof, welch_t_test,
};
pub use power::{
    SampleSize, minimum_detectable_effect, power_two_proportions, sample_size_means,
    sample_size_two_proportions,
};
pub use sequential::{
    Sequential, confidence_sequence, sequential_p_value, sequential_rho, sequential_t_test,
};
pub use summary::{Effect, Estimate, Metric, Summary, effect_moments};
