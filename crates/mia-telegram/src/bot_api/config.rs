//! Configuration of the Bot API transport: token, endpoint, limits, timeouts.

use std::fmt;
use std::time::Duration;

use crate::error::TelegramError;
use crate::limits::Limits;

/// Telegram's Bot API server.
pub const DEFAULT_API_BASE: &str = "https://api.telegram.org";

/// A bot token from @BotFather. It never shows in `Debug`, `Display`, logs or errors.
#[derive(Clone, PartialEq, Eq)]
pub struct BotToken(String);

impl BotToken {
    /// Checks the shape `<bot id>:<secret>` (digits, a colon, at least 30 characters of
    /// `A-Z a-z 0-9 _ -`), so a pasted token with a stray space or quote fails here, not
    /// as a 404 from Telegram.
    ///
    /// # Errors
    /// [`TelegramError::Config`] without the token in the message.
    pub fn new(token: impl Into<String>) -> Result<Self, TelegramError> {
        let token = token.into();
        let valid = token.split_once(':').is_some_and(|(id, secret)| {
            !id.is_empty()
                && id.bytes().all(|b| b.is_ascii_digit())
                && secret.len() >= 30
                && secret
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        });
        if !valid {
            return Err(TelegramError::Config(
                "bot token: expected `<bot id>:<secret>` as issued by @BotFather".into(),
            ));
        }
        Ok(Self(token))
    }

    /// A token known to be well-formed (the test fake's).
    #[cfg(feature = "testing")]
    pub(crate) fn trusted(token: &str) -> Self {
        Self(token.to_owned())
    }

    /// Reads `TELEGRAM_BOT_TOKEN`.
    ///
    /// # Errors
    /// [`TelegramError::Config`] when it is unset or malformed.
    pub fn from_env() -> Result<Self, TelegramError> {
        let token = std::env::var("TELEGRAM_BOT_TOKEN")
            .map_err(|_| TelegramError::Config("TELEGRAM_BOT_TOKEN is not set".into()))?;
        Self::new(token.trim())
    }

    /// The bot's own user id: the part before the colon (not secret).
    pub fn bot_id(&self) -> &str {
        self.0.split_once(':').map_or("", |(id, _)| id)
    }

    /// The token itself, for the request path only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BotToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BotToken({}:****)", self.bot_id())
    }
}

/// How the Bot API transport talks to Telegram.
#[derive(Clone, Debug)]
pub struct BotApiConfig {
    pub(crate) token: BotToken,
    pub(crate) api_base: String,
    pub(crate) limits: Limits,
    pub(crate) allow_paid_broadcast: bool,
    pub(crate) request_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) remembered_keys: usize,
}

impl BotApiConfig {
    /// Telegram's server, its published free limits (30 messages/s, 1/s per chat, 20/min per
    /// group), 30 s request timeout. Each message says its own format
    /// ([`OutboundMessage::format`](mia_core::OutboundMessage::format)).
    pub fn new(token: BotToken) -> Self {
        Self {
            token,
            api_base: DEFAULT_API_BASE.to_owned(),
            limits: Limits::default(),
            allow_paid_broadcast: false,
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            remembered_keys: 100_000,
        }
    }

    /// Another Bot API server: a local `telegram-bot-api` or a test fake (no trailing slash
    /// needed).
    ///
    /// # Errors
    /// [`TelegramError::Config`] unless it is an `http://` or `https://` URL.
    pub fn with_api_base(mut self, base: impl Into<String>) -> Result<Self, TelegramError> {
        let base = base.into();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(TelegramError::Config(format!(
                "api base must be an http(s) URL, got {base:?}"
            )));
        }
        self.api_base = base.trim_end_matches('/').to_owned();
        Ok(self)
    }

    /// Own limits (for example a lower rate to leave room for another sender on the same
    /// bot). Sends over them are answered with a retry-after before Telegram is asked.
    ///
    /// # Errors
    /// [`TelegramError::Config`] for a zero limit.
    pub fn with_limits(mut self, limits: Limits) -> Result<Self, TelegramError> {
        limits.validate()?;
        self.limits = limits;
        Ok(self)
    }

    /// Paid broadcast: campaign sends carry `allow_paid_broadcast`, which lifts the overall
    /// limit to `per_second` (at most 1000) and costs Telegram Stars per message beyond the
    /// free 30/s. Per-chat and group limits stay.
    ///
    /// # Errors
    /// [`TelegramError::Config`] outside 1..=1000.
    pub fn with_paid_broadcast(mut self, per_second: u32) -> Result<Self, TelegramError> {
        if !(1..=1000).contains(&per_second) {
            return Err(TelegramError::Config(format!(
                "paid broadcast allows 1..=1000 messages per second, got {per_second}"
            )));
        }
        self.allow_paid_broadcast = true;
        self.limits.global_per_second = per_second;
        Ok(self)
    }

    /// How long one request may take (long polls add their own timeout on top).
    #[must_use]
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How many idempotency keys of past sends to remember in this process (oldest forgotten
    /// first), so a retry inside the process is answered without a second post.
    #[must_use]
    pub fn with_remembered_keys(mut self, keys: usize) -> Self {
        self.remembered_keys = keys.max(1);
        self
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "123456:ABCdefGhIJKlmnOPQRstuVWXyz0123456789";

    #[test]
    fn token_shape_is_checked_and_never_printed() {
        let token = BotToken::new(TOKEN).unwrap();
        assert_eq!(token.bot_id(), "123456");
        let debug = format!("{:?}", BotApiConfig::new(token));
        assert!(!debug.contains("ABCdef"), "{debug}");
        assert!(debug.contains("123456:****"), "{debug}");
        for bad in [
            "",
            "123456",
            "abc:ABCdefGhIJKlmnOPQRstuVWXyz0123456789",
            "1:short",
            "1: ABCdefGhIJKlmnOPQRstuVWXyz0123456789",
        ] {
            let err = BotToken::new(bad).unwrap_err().to_string();
            assert!(err.contains("@BotFather"), "{err}");
            assert!(bad.len() < 8 || !err.contains(&bad[8..]), "{err}");
        }
    }

    #[test]
    fn builder_validates() {
        let c = BotApiConfig::new(BotToken::new(TOKEN).unwrap());
        assert!(c.clone().with_api_base("ftp://x").is_err());
        let c2 = c.clone().with_api_base("http://127.0.0.1:8081/").unwrap();
        assert_eq!(c2.api_base, "http://127.0.0.1:8081");
        assert!(c.clone().with_paid_broadcast(1001).is_err());
        assert_eq!(
            c.clone()
                .with_paid_broadcast(500)
                .unwrap()
                .limits
                .global_per_second,
            500
        );
        assert!(
            c.with_limits(Limits {
                global_per_second: 0,
                ..Limits::default()
            })
            .is_err()
        );
    }
}
