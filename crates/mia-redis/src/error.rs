//! Errors of `mia-redis`.

/// What can go wrong talking to Redis.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisError {
    /// The URL or a parameter is unusable.
    #[error("redis config: {0}")]
    Config(String),
    /// Redis answered with an error or could not be reached.
    #[error("redis: {context}")]
    Redis {
        /// What mia was doing.
        context: &'static str,
        /// The client's error.
        #[source]
        source: redis::RedisError,
    },
}

impl RedisError {
    /// Whether trying again may succeed (connection drops, timeouts, a busy or loading server).
    pub fn is_retryable(&self) -> bool {
        match self {
            RedisError::Config(_) => false,
            RedisError::Redis { source, .. } => {
                source.is_io_error()
                    || source.is_timeout()
                    || source.is_connection_dropped()
                    || source.is_connection_refusal()
                    || matches!(
                        source.kind(),
                        redis::ErrorKind::Server(redis::ServerErrorKind::BusyLoading)
                            | redis::ErrorKind::Server(redis::ServerErrorKind::TryAgain)
                    )
            }
        }
    }
}

impl From<RedisError> for mia_core::Error {
    fn from(e: RedisError) -> Self {
        match e {
            RedisError::Config(m) => mia_core::Error::Config(m),
            other => mia_core::Error::Transport {
                message: other.to_string(),
                retryable: other.is_retryable(),
                source: Some(Box::new(other)),
            },
        }
    }
}
