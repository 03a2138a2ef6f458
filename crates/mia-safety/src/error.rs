//! The one error type of `mia-safety`: everything that can go wrong while building a guard.
//!
//! Checking never fails (a guard answers with a [`Verdict`](mia_core::Verdict)), so every error
//! here is a configuration mistake and none is worth retrying.

use std::error::Error as StdError;

/// A guard could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SafetyError {
    /// A phrase list or pattern could not be compiled into a matcher.
    #[error("invalid pattern for {rule}: {message}")]
    InvalidPattern {
        /// The rule the pattern belongs to (`"blacklist"`, `"risky_claims"`, ...).
        rule: &'static str,
        /// What is wrong with it.
        message: String,
        /// The matcher library's error.
        #[source]
        source: Option<Box<dyn StdError + Send + Sync + 'static>>,
    },
    /// A configuration value is unusable (a frequency cap of 0, quiet hours that start when
    /// they end, an empty phrase, a malformed domain).
    #[error("invalid safety configuration: {0}")]
    InvalidConfig(String),
}

impl SafetyError {
    /// Whether building again with the same input may succeed: never, the input must change.
    pub fn is_retryable(&self) -> bool {
        false
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        SafetyError::InvalidConfig(message.into())
    }

    pub(crate) fn pattern(
        rule: &'static str,
        message: impl Into<String>,
        source: impl Into<Box<dyn StdError + Send + Sync + 'static>>,
    ) -> Self {
        SafetyError::InvalidPattern {
            rule,
            message: message.into(),
            source: Some(source.into()),
        }
    }
}

impl From<SafetyError> for mia_core::Error {
    /// A guard that cannot be built is a configuration error of the agent. `Error::Config`
    /// carries a message only, so the source's text is folded into it.
    fn from(err: SafetyError) -> Self {
        let message = match StdError::source(&err) {
            Some(source) => format!("{err}: {source}"),
            None => err.to_string(),
        };
        mia_core::Error::Config(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_safety_error_is_retryable_and_all_become_config_errors() {
        let err = SafetyError::config("frequency cap must be at least 1");
        assert!(!err.is_retryable());
        let core: mia_core::Error = err.into();
        assert!(matches!(core, mia_core::Error::Config(_)), "{core:?}");
        assert!(!core.is_retryable());
        assert!(core.to_string().contains("frequency cap"), "{core}");
    }

    #[test]
    fn the_source_text_survives_the_conversion() {
        let source = std::io::Error::other("pattern too big");
        let err = SafetyError::pattern("blacklist", "phrase set", source);
        assert_eq!(
            StdError::source(&err).map(ToString::to_string).as_deref(),
            Some("pattern too big")
        );
        let core: mia_core::Error = err.into();
        assert!(core.to_string().contains("pattern too big"), "{core}");
    }
}
