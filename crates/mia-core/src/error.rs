//! The one error type of `mia-core`, which every adapter error converts into.

use std::error::Error as StdError;

use crate::campaign::CampaignState;

/// A boxed error from an adapter (store driver, HTTP client, ...), kept as the source.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// The result type of mia.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in mia.
///
/// Adapter crates define their own error enums and convert into this one with `From`, keeping
/// the original error as the [`source`](std::error::Error::source). Ask
/// [`is_retryable`](Error::is_retryable) before retrying: only transient failures answer yes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Input failed validation; the message says which field and why.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The builder or a configuration value is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A campaign was asked to move between two states that are not connected.
    #[error("campaign cannot go from {from} to {to}")]
    InvalidTransition {
        /// The state the campaign is in.
        from: CampaignState,
        /// The state that was asked for.
        to: CampaignState,
    },
    /// A record the caller named does not exist.
    #[error("{kind} not found: {id}")]
    NotFound {
        /// What kind of record (contact, campaign, review, ...).
        kind: &'static str,
        /// Its id.
        id: String,
    },
    /// A feature was asked for that mia refuses to provide (cold outreach, scraping, ...).
    #[error("refused: {0}")]
    Refused(String),
    /// The worker no longer holds the lease on an outbox job (it expired and another worker
    /// claimed it). The other worker finishes the job; this one must drop it.
    #[error("lease lost on outbox job {0}")]
    LeaseLost(String),
    /// A send attempt was refused because its campaign is not running (paused, aborted,
    /// completed): the caller must not send. See
    /// [`OutboxStore::record_attempt`](crate::OutboxStore::record_attempt).
    #[error("campaign {campaign} is {state}, not running")]
    CampaignNotRunning {
        /// The campaign.
        campaign: String,
        /// The state it is in.
        state: CampaignState,
    },
    /// A store backend failed.
    #[error("store error: {message}")]
    Store {
        /// What the store was doing.
        message: String,
        /// Whether trying again may succeed (a busy database, a dropped connection).
        retryable: bool,
        /// The driver's error.
        #[source]
        source: Option<BoxError>,
    },
    /// An LLM provider failed.
    #[error("llm error: {message}")]
    Llm {
        /// What went wrong, without secrets.
        message: String,
        /// Whether trying again may succeed.
        retryable: bool,
        /// The client's error.
        #[source]
        source: Option<BoxError>,
    },
    /// A transport failed in a way that is not a per-message outcome (I/O, protocol).
    #[error("transport error: {message}")]
    Transport {
        /// What went wrong, without secrets.
        message: String,
        /// Whether trying again may succeed.
        retryable: bool,
        /// The client's error.
        #[source]
        source: Option<BoxError>,
    },
}

impl Error {
    /// Whether the same call may succeed if tried again later.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Store { retryable, .. }
            | Error::Llm { retryable, .. }
            | Error::Transport { retryable, .. } => *retryable,
            _ => false,
        }
    }

    /// A store error with its driver error as source.
    pub fn store(message: impl Into<String>, retryable: bool, source: impl Into<BoxError>) -> Self {
        Error::Store {
            message: message.into(),
            retryable,
            source: Some(source.into()),
        }
    }

    /// A shorthand for [`Error::InvalidInput`].
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidInput(message.into())
    }

    /// A shorthand for [`Error::NotFound`].
    pub fn not_found(kind: &'static str, id: impl ToString) -> Self {
        Error::NotFound {
            kind,
            id: id.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_errors_are_retryable() {
        let busy = Error::Store {
            message: "database is locked".into(),
            retryable: true,
            source: None,
        };
        assert!(busy.is_retryable());
        assert!(!Error::invalid("bad").is_retryable());
        assert!(
            !Error::InvalidTransition {
                from: CampaignState::Draft,
                to: CampaignState::Running
            }
            .is_retryable()
        );
    }

    #[test]
    fn store_errors_keep_their_source() {
        let io = std::io::Error::other("disk gone");
        let err = Error::store("insert", false, io);
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("disk gone"));
    }
}
