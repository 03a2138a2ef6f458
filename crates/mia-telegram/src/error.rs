//! Errors of the Telegram transports.

/// What can go wrong in `mia-telegram`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelegramError {
    /// The configuration is unusable.
    #[error("telegram config: {0}")]
    Config(String),
    /// A message the caller named does not exist.
    #[error("message {message_id} not found in chat {chat}")]
    MessageNotFound {
        /// The chat.
        chat: i64,
        /// The message.
        message_id: i64,
    },
    /// The simulator's journal could not be read or written.
    #[error("simulator journal {path}: {message}")]
    Journal {
        /// The journal file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A failure the simulator was scripted to produce (a dropped connection).
    #[error("simulated transient failure")]
    SimulatedOutage,
}

impl TelegramError {
    /// Whether trying again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, TelegramError::SimulatedOutage)
    }
}

impl From<TelegramError> for mia_core::Error {
    fn from(e: TelegramError) -> Self {
        match e {
            TelegramError::Config(m) => mia_core::Error::Config(m),
            TelegramError::MessageNotFound { chat, message_id } => mia_core::Error::NotFound {
                kind: "message",
                id: format!("{chat}/{message_id}"),
            },
            other => mia_core::Error::Transport {
                message: other.to_string(),
                retryable: other.is_retryable(),
                source: Some(Box::new(other)),
            },
        }
    }
}
