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
    /// The Bot API refused the bot token (401, or 404 for a bot path it does not know).
    #[error("the Bot API rejected the bot token (HTTP {code}); check TELEGRAM_BOT_TOKEN")]
    Unauthorized {
        /// Telegram's error code.
        code: i64,
    },
    /// Another process polls updates for this bot, or a webhook is set (409 Conflict): one
    /// bot has one update consumer.
    #[error("Bot API conflict: {0}")]
    Conflict(String),
    /// The Bot API answered a call with an error that is not a per-message outcome.
    #[error("Bot API {method} failed ({code}): {description}")]
    Api {
        /// The method called.
        method: &'static str,
        /// Telegram's error code.
        code: i64,
        /// Telegram's description.
        description: String,
        /// Whether trying again may succeed (server errors, flood control).
        retryable: bool,
    },
    /// The request did not get an answer (connection refused, timeout, unreadable body).
    /// The message never contains the request URL, which carries the bot token.
    #[error("Bot API {method}: {message}")]
    Http {
        /// The method called.
        method: &'static str,
        /// What went wrong.
        message: String,
        /// Whether trying again is safe and may succeed.
        retryable: bool,
    },
    /// A send may or may not have been posted (timeout after the request left, server
    /// error). The Bot API cannot recognise a resend, so it is not retried.
    #[error(
        "Bot API sendMessage: outcome unknown ({cause}); the Bot API cannot deduplicate a \
         resend, so mia does not retry it: check the chat, then requeue or discard the dead letter"
    )]
    OutcomeUnknown {
        /// Why the outcome is unknown.
        cause: String,
    },
    /// An MTProto call failed without a per-message outcome (I/O, a dropped connection, a
    /// server error, an unexpected RPC error).
    #[error("MTProto {method}: {message}")]
    Mtproto {
        /// The call (`messages.sendMessage`, `connect`, ...).
        method: &'static str,
        /// What went wrong; never session bytes.
        message: String,
        /// Whether trying again is safe and may succeed.
        retryable: bool,
    },
    /// Another owner holds the lease on this MTProto session: one account runs in one process.
    #[error(
        "MTProto session {path} is in use by another process or transport (its lock file \
         {path}.lock is held); one account must run in one place only, or Telegram answers \
         AUTH_KEY_DUPLICATED and invalidates the session"
    )]
    SessionInUse {
        /// The session file.
        path: String,
    },
    /// The MTProto session file could not be read or written. The message never holds its bytes.
    #[error("MTProto session {path}: {message}")]
    Session {
        /// The session file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// Telegram answered AUTH_KEY_DUPLICATED: the session was used from two places at once and
    /// Telegram revoked it.
    #[error(
        "Telegram answered AUTH_KEY_DUPLICATED: this session ran in two places at once and is \
         no longer valid; stop every other process using it, then sign in again with a new session"
    )]
    AuthKeyDuplicated,
    /// Signing in failed, or the session is not (or no longer) signed in.
    #[error("MTProto sign-in: {0}")]
    Login(String),
    /// The transport cannot do what was asked (the Bot API cannot schedule a message or create
    /// a group). Nothing was sent or changed.
    #[error("{transport} cannot {what}")]
    Unsupported {
        /// The transport (`bot_api`, `sim`, ...).
        transport: &'static str,
        /// What it cannot do, and what to use instead.
        what: String,
    },
    /// Telegram's flood control refused a call that is not a send (edit, pin, resolve a
    /// username, ...): wait this long. Retryable; [`retry_after`](crate::retry_after) reads the
    /// wait back from a `mia_core::Error`.
    #[error("FLOOD_WAIT_{}: {method} is over Telegram's limit; retry after {} s", after.as_secs(), after.as_secs())]
    FloodWait {
        /// The call.
        method: &'static str,
        /// How long Telegram asked to wait.
        after: std::time::Duration,
    },
    /// The caller asked for something mia refuses to do (invite people without their consent).
    #[error("refused: {0}")]
    Refused(String),
    /// The client library panicked; the panic was contained and the host keeps running.
    #[error("the MTProto client library panicked during {during}; the call was abandoned")]
    ClientPanicked {
        /// What was running.
        during: &'static str,
    },
}

/// The wait a flood-limited call asked for, if `error` is a [`TelegramError::FloodWait`]
/// (directly, or converted into a `mia_core::Error`).
pub fn retry_after(error: &(dyn std::error::Error + 'static)) -> Option<std::time::Duration> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(TelegramError::FloodWait { after, .. }) = e.downcast_ref::<TelegramError>() {
            return Some(*after);
        }
        current = e.source();
    }
    None
}

impl TelegramError {
    /// Whether trying again may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            TelegramError::SimulatedOutage | TelegramError::FloodWait { .. } => true,
            TelegramError::Api { retryable, .. }
            | TelegramError::Http { retryable, .. }
            | TelegramError::Mtproto { retryable, .. } => *retryable,
            _ => false,
        }
    }
}

impl From<TelegramError> for mia_core::Error {
    fn from(e: TelegramError) -> Self {
        match e {
            TelegramError::Config(_)
            | TelegramError::Unauthorized { .. }
            | TelegramError::Conflict(_)
            | TelegramError::SessionInUse { .. }
            | TelegramError::Session { .. }
            | TelegramError::AuthKeyDuplicated
            | TelegramError::Login(_) => mia_core::Error::Config(e.to_string()),
            TelegramError::Unsupported { .. } => mia_core::Error::InvalidInput(e.to_string()),
            TelegramError::Refused(why) => mia_core::Error::Refused(why),
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
