//! Errors of `mia-experiments`.

/// What can go wrong when configuring or running an experiment.
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
}

impl ExperimentError {
    /// Never: these errors are about the configuration, which retrying does not change.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

impl From<ExperimentError> for mia_core::Error {
    fn from(e: ExperimentError) -> Self {
        mia_core::Error::InvalidInput(e.to_string())
    }
}
