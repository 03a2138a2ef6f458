//! Configuration of the client: key, endpoint, model, retries, deadlines.

use std::fmt;
use std::time::Duration;

use crate::error::{ClaudeError, Result};
use crate::retry::RetryPolicy;

/// The `anthropic-version` header the client speaks.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
/// The API's address.
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// The model used when a request names none.
pub const DEFAULT_MODEL: &str = "claude-sonnet-4-5";

/// An Anthropic API key. It never shows in `Debug`, `Display`, logs or errors.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key itself, for the `x-api-key` header only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

/// The base URL without user info or query, which may carry proxy credentials or tokens.
fn redacted_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    let rest = match rest.split_once('@') {
        Some((userinfo, host)) if !userinfo.contains('/') => format!("****@{host}"),
        _ => rest.to_owned(),
    };
    if scheme.is_empty() {
        rest
    } else {
        format!("{scheme}://{rest}")
    }
}

impl fmt::Debug for ClaudeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClaudeConfig")
            .field("api_key", &self.api_key)
            .field("base_url", &redacted_url(&self.base_url))
            .field("model", &self.model)
            .field("retry", &self.retry)
            .field("deadline", &self.deadline)
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("anthropic_version", &self.anthropic_version)
            .field("betas", &self.betas)
            .finish()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(****)")
    }
}

/// How the client talks to the API. Build one with [`ClaudeConfig::builder`] or
/// [`ClaudeConfig::from_env`].
#[derive(Clone)]
pub struct ClaudeConfig {
    pub(crate) api_key: ApiKey,
    pub(crate) base_url: String,
    pub(crate) model: String,
    pub(crate) retry: RetryPolicy,
    pub(crate) deadline: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) anthropic_version: String,
    pub(crate) betas: Vec<String>,
    pub(crate) throttle: bool,
}

impl ClaudeConfig {
    /// A builder with the given key and every default: the public endpoint,
    /// [`DEFAULT_MODEL`], 2 retries, a 10-minute deadline per call, retry-after honoured up to
    /// 60 s, throttling on the rate-limit headers.
    pub fn builder(api_key: ApiKey) -> ClaudeConfigBuilder {
        ClaudeConfigBuilder {
            config: ClaudeConfig {
                api_key,
                base_url: DEFAULT_BASE_URL.into(),
                model: DEFAULT_MODEL.into(),
                retry: RetryPolicy::default(),
                deadline: Duration::from_secs(600),
                request_timeout: Duration::from_secs(600),
                connect_timeout: Duration::from_secs(10),
                anthropic_version: ANTHROPIC_VERSION.into(),
                betas: Vec::new(),
                throttle: true,
            },
        }
    }

    /// A configuration from `ANTHROPIC_API_KEY` and, when set, `ANTHROPIC_BASE_URL` (as the
    /// official SDKs read them), with every other default.
    ///
    /// # Errors
    /// [`ClaudeError::Config`] when `ANTHROPIC_API_KEY` is unset or empty.
    pub fn from_env() -> Result<ClaudeConfig> {
        ClaudeConfigBuilder::from_lookup(|name| std::env::var(name).ok())?.build()
    }

    /// The model used when a request names none.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The API's address.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// The total deadline of one call, retries and waits included.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }
}

/// Builds a [`ClaudeConfig`].
#[derive(Clone, Debug)]
pub struct ClaudeConfigBuilder {
    config: ClaudeConfig,
}

impl ClaudeConfigBuilder {
    /// A builder from environment variables read through `lookup`: `ANTHROPIC_API_KEY`
    /// (required) and `ANTHROPIC_BASE_URL` (optional).
    ///
    /// # Errors
    /// [`ClaudeError::Config`] when the key is missing or empty.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let key = lookup("ANTHROPIC_API_KEY")
            .filter(|k| !k.trim().is_empty())
            .ok_or_else(|| ClaudeError::Config("ANTHROPIC_API_KEY is not set".into()))?;
        let mut builder = ClaudeConfig::builder(ApiKey::new(key.trim()));
        if let Some(url) = lookup("ANTHROPIC_BASE_URL").filter(|u| !u.trim().is_empty()) {
            builder = builder.base_url(url.trim());
        }
        Ok(builder)
    }

    /// The API's address (a proxy, a local fake). Default [`DEFAULT_BASE_URL`].
    #[must_use]
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.config.base_url = url.into();
        self
    }

    /// The model for requests that name none. Default [`DEFAULT_MODEL`].
    #[must_use]
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.config.model = model.into();
        self
    }

    /// Retries after the first attempt. Default 2.
    #[must_use]
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.config.retry.max_retries = retries;
        self
    }

    /// The whole retry policy (delays, jitter, retry-after cap).
    #[must_use]
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.config.retry = policy;
        self
    }

    /// The longest retry-after the client waits out; a longer one ends the call with
    /// [`ClaudeError::RateLimitedUntil`]. Default 60 s.
    #[must_use]
    pub fn max_retry_after(mut self, cap: Duration) -> Self {
        self.config.retry.max_retry_after = cap;
        self
    }

    /// The total time one call may take, retries and waits included. Default 10 minutes.
    #[must_use]
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.config.deadline = deadline;
        self
    }

    /// The time one HTTP attempt may take (for a stream: the longest silence between two
    /// pieces of the body). Default 10 minutes.
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.config.request_timeout = timeout;
        self
    }

    /// The time to open a connection. Default 10 s.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// The `anthropic-version` header. Default [`ANTHROPIC_VERSION`].
    #[must_use]
    pub fn anthropic_version(mut self, version: impl Into<String>) -> Self {
        self.config.anthropic_version = version.into();
        self
    }

    /// Adds a beta to the `anthropic-beta` header (`"context-1m-2025-08-07"`, ...).
    #[must_use]
    pub fn beta(mut self, beta: impl Into<String>) -> Self {
        self.config.betas.push(beta.into());
        self
    }

    /// Whether to wait ahead of a 429 when the `anthropic-ratelimit-*` headers say a window
    /// is spent. Default on.
    #[must_use]
    pub fn throttle(mut self, on: bool) -> Self {
        self.config.throttle = on;
        self
    }

    /// Checks and returns the configuration.
    ///
    /// # Errors
    /// [`ClaudeError::Config`] for an empty key or model, a base URL that is not http(s), a
    /// zero deadline or timeout, or a retry policy whose delays are inverted.
    pub fn build(mut self) -> Result<ClaudeConfig> {
        let c = &mut self.config;
        if c.api_key.expose().trim().is_empty() {
            return Err(ClaudeError::Config("the API key is empty".into()));
        }
        if c.model.trim().is_empty() {
            return Err(ClaudeError::Config("the default model is empty".into()));
        }
        let url = c.base_url.trim().trim_end_matches('/').to_owned();
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(ClaudeError::Config(format!(
                "the base URL must start with https:// or http://, got {url:?}"
            )));
        }
        c.base_url = url;
        if c.deadline.is_zero() || c.request_timeout.is_zero() || c.connect_timeout.is_zero() {
            return Err(ClaudeError::Config(
                "deadline and timeouts must be above zero".into(),
            ));
        }
        c.retry.validate()?;
        Ok(self.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_credentials_in_the_base_url() {
        let config = ClaudeConfig::builder(ApiKey::new("sk-ant-x"))
            .base_url("https://user:hunter2@proxy.example/anthropic?token=abc123")
            .deadline(Duration::MAX)
            .build()
            .unwrap();
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("abc123"),
            "{shown}"
        );
        assert!(
            shown.contains("https://****@proxy.example/anthropic"),
            "{shown}"
        );
        assert_eq!(redacted_url("http://127.0.0.1:9"), "http://127.0.0.1:9");
    }

    #[test]
    fn env_lookup_reads_key_and_base_url() {
        let env = |name: &str| match name {
            "ANTHROPIC_API_KEY" => Some("sk-ant-test-123".to_owned()),
            "ANTHROPIC_BASE_URL" => Some("http://127.0.0.1:9/".to_owned()),
            _ => None,
        };
        let config = ClaudeConfigBuilder::from_lookup(env)
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(config.base_url(), "http://127.0.0.1:9");
        assert_eq!(config.model(), DEFAULT_MODEL);
        assert_eq!(config.retry_policy().max_retries, 2);
        assert!(!format!("{config:?}").contains("sk-ant-test-123"));
        assert!(format!("{config:?}").contains("ApiKey(****)"));
    }

    #[test]
    fn a_missing_key_or_a_bad_url_is_a_config_error() {
        assert!(matches!(
            ClaudeConfigBuilder::from_lookup(|_| None),
            Err(ClaudeError::Config(_))
        ));
        let bad = ClaudeConfig::builder(ApiKey::new("k"))
            .base_url("ftp://x")
            .build();
        assert!(matches!(bad, Err(ClaudeError::Config(_))));
        let zero = ClaudeConfig::builder(ApiKey::new("k"))
            .deadline(Duration::ZERO)
            .build();
        assert!(matches!(zero, Err(ClaudeError::Config(_))));
    }
}
