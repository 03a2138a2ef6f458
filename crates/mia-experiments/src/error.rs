//! Errors of `mia-experiments`.

/// What can go wrong when configuring, running or analysing an experiment.
///
/// Statistics never return NaN silently: input that cannot give a number (no users, zero
/// variance, a zero baseline for a relative effect) is one of these variants instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExperimentError {
    /// A weight must be positive and finite.
    #[error("variant {variant}: weight must be positive and finite, got {weight}")]
    InvalidWeight {
        /// The variant.
        variant: String,
        /// The weight given.
        weight: f64,
    },
    /// There was nothing to choose from.
    #[error("campaign {0} has no variant to assign")]
    NoVariants(String),
    /// A parameter is out of its domain (alpha outside (0, 1), a negative count, more
    /// conversions than users, mismatched lengths, ...). The message names it.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Too few observations for the quantity asked for (an arm with no users, a variance from
    /// a single observation).
    #[error("not enough data: {0}")]
    InsufficientData(String),
    /// Every observation is equal, so the variance is zero and the test is undefined.
    #[error("zero variance: {0}")]
    ZeroVariance(String),
    /// An experiment cannot move from its state to the one asked for (only draft -> running
    /// -> stopped -> concluded is allowed).
    #[error("experiment {experiment}: cannot go from {from} to {to}")]
    InvalidTransition {
        /// The experiment.
        experiment: String,
        /// Its state.
        from: &'static str,
        /// The state asked for.
        to: &'static str,
    },
    /// A relative effect was asked for but the control's mean is zero.
    #[error("relative effect undefined: the control mean is zero ({0})")]
    ZeroBaseline(String),
}

impl ExperimentError {
    /// Never: these errors are about the configuration or the data, which retrying does not
    /// change.
    pub fn is_retryable(&self) -> bool {
        false
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidInput(message.into())
    }
}

impl From<ExperimentError> for mia_core::Error {
    fn from(e: ExperimentError) -> Self {
        mia_core::Error::InvalidInput(e.to_string())
    }
}

/// The result type of this crate.
pub type Result<T, E = ExperimentError> = std::result::Result<T, E>;
