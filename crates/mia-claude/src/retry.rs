//! When to retry and how long to wait: the official SDKs' policy, plus a cap on honoured
//! retry-after and throttling ahead of a 429 from the `anthropic-ratelimit-*` headers.

use std::time::Duration;

use jiff::Timestamp;
use reqwest::header::HeaderMap;

use crate::error::{ClaudeError, Result, status_is_retryable};

/// How a failed attempt is retried.
///
/// The defaults match the official SDKs: 2 retries; before retry `n` (from 0) wait
/// `min(0.5 s * 2^n, 8 s)` shortened by up to 25 % jitter; a `retry-after-ms` or `retry-after`
/// answer header replaces that delay; `x-should-retry: true|false` decides when present,
/// otherwise 408, 409, 429, every status >= 500 and connection errors and timeouts are retried.
/// What the SDKs lack: a retry-after above [`max_retry_after`](Self::max_retry_after) ends the
/// call with [`ClaudeError::RateLimitedUntil`] instead of sleeping for minutes.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The delay before the first retry.
    pub initial_delay: Duration,
    /// The longest delay between two attempts (before jitter).
    pub max_delay: Duration,
    /// The largest share of a delay that jitter removes, 0.0 to 1.0.
    pub jitter: f64,
    /// The longest retry-after (or rate-limit reset) the client waits out.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 2,
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            jitter: 0.25,
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry `retry` (0 for the first), given a uniform random draw in
    /// `[0, 1)`: `min(initial * 2^retry, max) * (1 - jitter * random)`.
    pub fn backoff(&self, retry: u32, random: f64) -> Duration {
        let base = self
            .initial_delay
            .saturating_mul(2u32.saturating_pow(retry.min(31)))
            .min(self.max_delay);
        let cut = (self.jitter * random.clamp(0.0, 1.0)).clamp(0.0, 1.0);
        base.mul_f64(1.0 - cut)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.initial_delay > self.max_delay {
            return Err(ClaudeError::Config(
                "retry initial_delay must not exceed max_delay".into(),
            ));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(ClaudeError::Config(
                "retry jitter must be between 0 and 1".into(),
            ));
        }
        Ok(())
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// `x-should-retry`, when the server says.
pub(crate) fn should_retry_header(headers: &HeaderMap) -> Option<bool> {
    match header(headers, "x-should-retry")? {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Whether an error answer is retried: `x-should-retry` wins, then the status.
pub(crate) fn should_retry(status: u16, headers: &HeaderMap) -> bool {
    should_retry_header(headers).unwrap_or_else(|| status_is_retryable(status))
}

/// The wait the server asked for: `retry-after-ms` (milliseconds), then `retry-after`
/// (seconds, or an HTTP date). A wait of zero or less, or an unreadable value, is no answer.
pub(crate) fn retry_after(headers: &HeaderMap, now: Timestamp) -> Option<Duration> {
    let positive = |secs: f64| (secs.is_finite() && secs > 0.0).then_some(secs);
    if let Some(ms) = header(headers, "retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && let Some(ms) = positive(ms)
    {
        return Duration::try_from_secs_f64(ms / 1000.0).ok();
    }
    let value = header(headers, "retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return positive(secs).and_then(|s| Duration::try_from_secs_f64(s).ok());
    }
    let at = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(value)
        .ok()?;
    let wait = at.duration_since(now);
    positive(wait.as_secs_f64()).and_then(|s| Duration::try_from_secs_f64(s).ok())
}

/// The time until which the `anthropic-ratelimit-*` headers say a window is spent: the
/// latest reset among the limits (requests, tokens, input tokens, output tokens) whose
/// remaining count is 0.
pub(crate) fn exhausted_until(headers: &HeaderMap) -> Option<Timestamp> {
    ["requests", "tokens", "input-tokens", "output-tokens"]
        .iter()
        .filter_map(|limit| {
            let remaining = header(headers, &format!("anthropic-ratelimit-{limit}-remaining"))?;
            if remaining.parse::<u64>().ok()? != 0 {
                return None;
            }
            header(headers, &format!("anthropic-ratelimit-{limit}-reset"))?
                .parse::<Timestamp>()
                .ok()
        })
        .max()
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn backoff_doubles_from_half_a_second_up_to_eight() {
        let p = RetryPolicy::default();
        let delays: Vec<_> = (0..6).map(|n| p.backoff(n, 0.0)).collect();
        let ms: Vec<_> = delays.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [500, 1000, 2000, 4000, 8000, 8000]);
        // Full jitter removes a quarter, never more.
        assert_eq!(p.backoff(0, 0.999_999).as_millis(), 375);
        assert_eq!(p.backoff(3, 1.0).as_millis(), 3000);
        assert_eq!(p.backoff(40, 0.0), Duration::from_secs(8));
    }

    #[test]
    fn retry_after_ms_wins_then_seconds_then_http_date() {
        let now: Timestamp = "2025-10-21T07:28:00Z".parse().unwrap();
        let h = headers(&[("retry-after-ms", "1500"), ("retry-after", "30")]);
        assert_eq!(retry_after(&h, now), Some(Duration::from_millis(1500)));
        let h = headers(&[("retry-after", "2.5")]);
        assert_eq!(retry_after(&h, now), Some(Duration::from_millis(2500)));
        let h = headers(&[("retry-after", "Tue, 21 Oct 2025 07:28:30 GMT")]);
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(30)));
        let h = headers(&[("retry-after", "0")]);
        assert_eq!(retry_after(&h, now), None, "zero falls back to backoff");
        let h = headers(&[("retry-after", "soon")]);
        assert_eq!(retry_after(&h, now), None);
        let h = headers(&[("retry-after-ms", "x"), ("retry-after", "3")]);
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(3)));
    }

    #[test]
    fn x_should_retry_wins_over_the_status() {
        assert!(should_retry(529, &headers(&[])));
        assert!(should_retry(408, &headers(&[])));
        assert!(should_retry(409, &headers(&[])));
        assert!(!should_retry(400, &headers(&[])));
        assert!(!should_retry(529, &headers(&[("x-should-retry", "false")])));
        assert!(should_retry(400, &headers(&[("x-should-retry", "true")])));
        assert!(should_retry(503, &headers(&[("x-should-retry", "maybe")])));
    }

    #[test]
    fn a_spent_window_is_read_from_the_rate_limit_headers() {
        let h = headers(&[
            ("anthropic-ratelimit-requests-remaining", "0"),
            ("anthropic-ratelimit-requests-reset", "2025-10-21T07:28:10Z"),
            ("anthropic-ratelimit-tokens-remaining", "0"),
            ("anthropic-ratelimit-tokens-reset", "2025-10-21T07:28:40Z"),
            ("anthropic-ratelimit-input-tokens-remaining", "12000"),
            (
                "anthropic-ratelimit-input-tokens-reset",
                "2025-10-21T07:29:00Z",
            ),
        ]);
        assert_eq!(
            exhausted_until(&h),
            Some("2025-10-21T07:28:40Z".parse().unwrap())
        );
        let h = headers(&[
            ("anthropic-ratelimit-requests-remaining", "49"),
            ("anthropic-ratelimit-requests-reset", "2025-10-21T07:28:10Z"),
        ]);
        assert_eq!(exhausted_until(&h), None);
    }

    #[test]
    fn inverted_delays_are_rejected() {
        let p = RetryPolicy {
            initial_delay: Duration::from_secs(9),
            ..RetryPolicy::default()
        };
        assert!(p.validate().is_err());
    }
}
