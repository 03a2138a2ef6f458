//! Configuration of the MTProto transport: the application's API id and hash, limits, timeouts.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use crate::error::TelegramError;
use crate::limits::Limits;

/// The application's `api_hash` from <https://my.telegram.org>. It never shows in `Debug`,
/// `Display`, logs or errors.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiHash(String);

impl ApiHash {
    /// Checks the shape: 32 hexadecimal characters, as my.telegram.org issues them.
    ///
    /// # Errors
    /// [`TelegramError::Config`] without the hash in the message.
    pub fn new(hash: impl Into<String>) -> Result<Self, TelegramError> {
        let hash = hash.into();
        if hash.len() != 32 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(TelegramError::Config(
                "api hash: expected the 32 hexadecimal characters from my.telegram.org".into(),
            ));
        }
        Ok(Self(hash))
    }

    /// The hash itself, for sign-in requests only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiHash(****)")
    }
}

/// How the MTProto transport talks to Telegram.
///
/// Telegram's servers come from the session (the five known data centres, then whatever
/// Telegram's configuration says); [`with_server`](Self::with_server) points every data centre
/// at one address instead, for Telegram's test servers or a local stand-in.
#[derive(Clone, Debug)]
pub struct MtprotoConfig {
    pub(crate) api_id: i32,
    pub(crate) api_hash: ApiHash,
    pub(crate) limits: Limits,
    pub(crate) flood_sleep_threshold: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) server: Option<SocketAddr>,
    pub(crate) remembered_keys: usize,
    pub(crate) catch_up: bool,
}

/// The longest FloodWait grammers may sleep through by itself; longer ones go to mia's scheduler.
pub const MAX_FLOOD_SLEEP: Duration = Duration::from_secs(10);

impl MtprotoConfig {
    /// The application `api_id` and `api_hash` from <https://my.telegram.org>, Telegram's
    /// published free limits (30 messages/s, 1/s per chat, 20/min per group; lower them for a
    /// user account with [`with_limits`](Self::with_limits)), no automatic FloodWait sleep, 30 s
    /// per request, and catching up on updates missed while offline.
    ///
    /// # Errors
    /// [`TelegramError::Config`] for an `api_id` that is not positive.
    pub fn new(api_id: i32, api_hash: ApiHash) -> Result<Self, TelegramError> {
        if api_id <= 0 {
            return Err(TelegramError::Config(format!(
                "api id must be the positive number from my.telegram.org, got {api_id}"
            )));
        }
        Ok(Self {
            api_id,
            api_hash,
            limits: Limits::default(),
            flood_sleep_threshold: Duration::ZERO,
            request_timeout: Duration::from_secs(30),
            server: None,
            remembered_keys: 100_000,
            catch_up: true,
        })
    }

    /// Reads `MIA_MTPROTO_API_ID` and `MIA_MTPROTO_API_HASH`.
    ///
    /// # Errors
    /// [`TelegramError::Config`] when either is unset or malformed.
    pub fn from_env() -> Result<Self, TelegramError> {
        let id = std::env::var("MIA_MTPROTO_API_ID")
            .map_err(|_| TelegramError::Config("MIA_MTPROTO_API_ID is not set".into()))?;
        let id: i32 = id
            .trim()
            .parse()
            .map_err(|_| TelegramError::Config("MIA_MTPROTO_API_ID must be a number".into()))?;
        let hash = std::env::var("MIA_MTPROTO_API_HASH")
            .map_err(|_| TelegramError::Config("MIA_MTPROTO_API_HASH is not set".into()))?;
        Self::new(id, ApiHash::new(hash.trim())?)
    }

    /// Own limits. Sends over them are answered with a retry-after before Telegram is asked.
    ///
    /// # Errors
    /// [`TelegramError::Config`] for a zero limit.
    pub fn with_limits(mut self, limits: Limits) -> Result<Self, TelegramError> {
        limits.validate()?;
        self.limits = limits;
        Ok(self)
    }

    /// Lets grammers sleep through FloodWaits up to `threshold` (at most [`MAX_FLOOD_SLEEP`])
    /// before answering. Off by default: mia's scheduler owns every wait, with one freeze per
    /// account, so concurrent senders do not all retry together.
    #[must_use]
    pub fn with_flood_sleep_threshold(mut self, threshold: Duration) -> Self {
        self.flood_sleep_threshold = threshold.min(MAX_FLOOD_SLEEP);
        self
    }

    /// How long one call may take, connecting included.
    #[must_use]
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Connects every data centre to `address` instead of Telegram's production servers: one of
    /// Telegram's test servers, or a local address in tests. Not stored in the session.
    #[must_use]
    pub fn with_server(mut self, address: SocketAddr) -> Self {
        self.server = Some(address);
        self
    }

    /// Whether updates that arrived while the process was offline are fetched on start
    /// (default yes: an opt-out sent overnight must not be lost).
    #[must_use]
    pub fn with_catch_up(mut self, catch_up: bool) -> Self {
        self.catch_up = catch_up;
        self
    }

    /// How many idempotency keys of past sends to remember in this process (oldest forgotten
    /// first), so a retry inside the process is answered without asking Telegram.
    #[must_use]
    pub fn with_remembered_keys(mut self, keys: usize) -> Self {
        self.remembered_keys = keys.max(1);
        self
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The application's `api_id`.
    pub fn api_id(&self) -> i32 {
        self.api_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "0123456789abcdef0123456789ABCDEF";

    #[test]
    fn the_api_hash_is_checked_and_never_printed() {
        let config = MtprotoConfig::new(12345, ApiHash::new(HASH).unwrap()).unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("0123456789"), "{debug}");
        assert!(debug.contains("12345"), "{debug}");
        for bad in [
            "",
            "xyz",
            "0123456789abcdef0123456789abcdeZ",
            &format!("{HASH}0"),
        ] {
            let err = ApiHash::new(bad).unwrap_err().to_string();
            assert!(err.contains("my.telegram.org"), "{err}");
            assert!(bad.len() < 10 || !err.contains(&bad[..10]), "{err}");
        }
        assert!(MtprotoConfig::new(0, ApiHash::new(HASH).unwrap()).is_err());
    }

    #[test]
    fn grammers_may_sleep_a_few_seconds_at_most() {
        let config = MtprotoConfig::new(1, ApiHash::new(HASH).unwrap()).unwrap();
        assert_eq!(config.flood_sleep_threshold, Duration::ZERO);
        let config = config.with_flood_sleep_threshold(Duration::from_secs(600));
        assert_eq!(config.flood_sleep_threshold, MAX_FLOOD_SLEEP);
        assert!(
            config
                .with_limits(Limits {
                    group_per_minute: 0,
                    ..Limits::default()
                })
                .is_err()
        );
    }
}
