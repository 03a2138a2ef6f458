//! Errors of `mia-analytics`.

/// What can go wrong when loading events or running an analytics query.
///
/// Every variant is about the input or the query; none is transient.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnalyticsError {
    /// A CSV file is malformed; `line` is 1-based and counts the header as line 1.
    #[error("line {line}: {message}")]
    Csv {
        /// The physical line (1-based, the header is line 1).
        line: u64,
        /// What is wrong there.
        message: String,
    },
    /// Reading the input failed.
    #[error("cannot read the events: {0}")]
    Io(#[from] std::io::Error),
    /// A query is not well formed (no steps, an exclusion outside the steps, an unknown
    /// breakdown column...). The message names the field.
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// The data does not fit the in-memory table (more than `u32::MAX` users or events, more
    /// than 65,536 event names).
    #[error("too large: {0}")]
    TooLarge(String),
    /// A worker thread of a query failed.
    #[error("worker failed: {0}")]
    Worker(String),
}

impl AnalyticsError {
    /// Never: these errors are about the data or the query, which retrying does not change.
    pub fn is_retryable(&self) -> bool {
        false
    }

    pub(crate) fn query(message: impl Into<String>) -> Self {
        Self::InvalidQuery(message.into())
    }

    pub(crate) fn csv(line: u64, message: impl Into<String>) -> Self {
        Self::Csv {
            line,
            message: message.into(),
        }
    }
}

impl From<AnalyticsError> for mia_core::Error {
    fn from(e: AnalyticsError) -> Self {
        mia_core::Error::InvalidInput(e.to_string())
    }
}

/// The result type of this crate's queries and loaders.
pub type Result<T, E = AnalyticsError> = std::result::Result<T, E>;
