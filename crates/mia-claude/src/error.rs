//! The one error type of `mia-claude`.
//!
//! No variant carries the API key: the key lives only in [`ApiKey`](crate::ApiKey), whose
//! `Debug` prints `ApiKey(****)`, and in a header value marked sensitive.

use std::time::Duration;

use jiff::Timestamp;

use crate::wire::ErrorEnvelope;

/// The `error.type` of an API error. Unknown types are kept in [`ApiErrorType::Other`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiErrorType {
    /// 400: the request is malformed or asks for something the model cannot do.
    InvalidRequest,
    /// 401: the API key is missing or wrong.
    Authentication,
    /// 402: a billing problem.
    Billing,
    /// 403: the key may not use this resource.
    Permission,
    /// 404: no such resource (or model).
    NotFound,
    /// 413: the request is larger than the API accepts.
    RequestTooLarge,
    /// 429: a rate limit was hit.
    RateLimit,
    /// 500: an unexpected error inside the API.
    Api,
    /// 504: the request timed out inside the API.
    Timeout,
    /// 529: the API is overloaded.
    Overloaded,
    /// A type this version does not know, kept verbatim.
    Other(String),
}

impl ApiErrorType {
    /// Reads the wire name.
    pub fn parse(s: &str) -> Self {
        match s {
            "invalid_request_error" => ApiErrorType::InvalidRequest,
            "authentication_error" => ApiErrorType::Authentication,
            "billing_error" => ApiErrorType::Billing,
            "permission_error" => ApiErrorType::Permission,
            "not_found_error" => ApiErrorType::NotFound,
            "request_too_large" => ApiErrorType::RequestTooLarge,
            "rate_limit_error" => ApiErrorType::RateLimit,
            "api_error" => ApiErrorType::Api,
            "timeout_error" => ApiErrorType::Timeout,
            "overloaded_error" => ApiErrorType::Overloaded,
            other => ApiErrorType::Other(other.to_owned()),
        }
    }

    /// The type the API documents for an HTTP status, for bodies that carry none (a proxy's
    /// HTML page, an empty 502).
    pub fn for_status(status: u16) -> Self {
        match status {
            400 => ApiErrorType::InvalidRequest,
            401 => ApiErrorType::Authentication,
            402 => ApiErrorType::Billing,
            403 => ApiErrorType::Permission,
            404 => ApiErrorType::NotFound,
            413 => ApiErrorType::RequestTooLarge,
            429 => ApiErrorType::RateLimit,
            504 => ApiErrorType::Timeout,
            529 => ApiErrorType::Overloaded,
            s if s >= 500 => ApiErrorType::Api,
            s => ApiErrorType::Other(format!("http_{s}")),
        }
    }

    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            ApiErrorType::InvalidRequest => "invalid_request_error",
            ApiErrorType::Authentication => "authentication_error",
            ApiErrorType::Billing => "billing_error",
            ApiErrorType::Permission => "permission_error",
            ApiErrorType::NotFound => "not_found_error",
            ApiErrorType::RequestTooLarge => "request_too_large",
            ApiErrorType::RateLimit => "rate_limit_error",
            ApiErrorType::Api => "api_error",
            ApiErrorType::Timeout => "timeout_error",
            ApiErrorType::Overloaded => "overloaded_error",
            ApiErrorType::Other(s) => s,
        }
    }

    /// Whether an error of this type is transient.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ApiErrorType::RateLimit
                | ApiErrorType::Api
                | ApiErrorType::Timeout
                | ApiErrorType::Overloaded
        )
    }
}

impl std::fmt::Display for ApiErrorType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong talking to Claude.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClaudeError {
    /// The API answered with an error status.
    #[error(
        "claude api error {status} {error_type}: {message}{}",
        request_suffix(request_id)
    )]
    Api {
        /// The HTTP status.
        status: u16,
        /// The error type from the envelope (or the status, when the body had none).
        error_type: ApiErrorType,
        /// The API's message.
        message: String,
        /// The request id (`req_...`), for Anthropic support.
        request_id: Option<String>,
    },
    /// The API asked to wait longer than the configured cap, or the rate-limit headers say the
    /// window is spent until then; nothing was sent past this point.
    #[error(
        "claude rate limited until {until} ({attempts} attempt(s) made){}",
        request_suffix(request_id)
    )]
    RateLimitedUntil {
        /// When to try again.
        until: Timestamp,
        /// The status that asked to wait (`None` when the client throttled ahead of a 429).
        status: Option<u16>,
        /// The request id of the last answer, if any.
        request_id: Option<String>,
        /// HTTP requests made for this call.
        attempts: u32,
    },
    /// The total deadline of the call passed.
    #[error("claude call exceeded its deadline of {deadline:?} after {attempts} attempt(s)")]
    Deadline {
        /// The deadline configured.
        deadline: Duration,
        /// HTTP requests made for this call.
        attempts: u32,
    },
    /// The budget guard refused the call before any request was sent.
    #[error(
        "claude budget for {scope} refused a call: worst case {requested_micro_usd} µUSD, \
         {committed_micro_usd} µUSD spent or reserved of {limit_micro_usd} µUSD"
    )]
    Budget {
        /// The budget that refused (`campaign:spring`, `agent:a1`, `global`).
        scope: String,
        /// Its limit, in millionths of a US dollar.
        limit_micro_usd: u64,
        /// Already spent plus reserved by calls in flight.
        committed_micro_usd: u64,
        /// The worst case of this call.
        requested_micro_usd: u64,
    },
    /// The price of the model is unknown, so a budget cannot bound the call.
    #[error("no price known for model {model}; a budget cannot bound the call")]
    UnknownPrice {
        /// The model id.
        model: String,
    },
    /// A stream ended before `message_stop`, or carried an in-band error, or was malformed.
    #[error("claude stream failed: {message}")]
    Stream {
        /// What happened.
        message: String,
        /// The in-band error type, if the API sent one.
        error_type: Option<ApiErrorType>,
    },
    /// The HTTP exchange failed (connection, timeout, TLS, body).
    #[error("claude transport error: {0}")]
    Transport(#[source] reqwest::Error),
    /// A body could not be read as the expected JSON.
    #[error("claude response could not be decoded ({context}): {source}")]
    Decode {
        /// What was being read.
        context: String,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// The configuration is unusable.
    #[error("claude configuration: {0}")]
    Config(String),
    /// The request asks for something the model or the API is known to reject; nothing was
    /// sent.
    #[error("claude model {model} cannot take this request: {reason}")]
    Unsupported {
        /// The model id.
        model: String,
        /// What is wrong.
        reason: String,
    },
    /// A tool loop was misused (a tool registered twice, ...).
    #[error("claude tool loop: {0}")]
    Tools(String),
}

fn request_suffix(id: &Option<String>) -> String {
    id.as_deref()
        .map(|id| format!(" (request id {id})"))
        .unwrap_or_default()
}

/// HTTP statuses the official SDKs retry.
pub(crate) fn status_is_retryable(status: u16) -> bool {
    matches!(status, 408 | 409 | 429) || status >= 500
}

impl ClaudeError {
    /// Whether the same call may succeed if tried again later (after the client's own
    /// retries gave up, or for an error it does not retry, like a cut stream).
    pub fn is_retryable(&self) -> bool {
        match self {
            ClaudeError::Api {
                status, error_type, ..
            } => status_is_retryable(*status) || error_type.is_transient(),
            ClaudeError::RateLimitedUntil { .. } | ClaudeError::Deadline { .. } => true,
            ClaudeError::Stream { error_type, .. } => {
                error_type.as_ref().is_none_or(ApiErrorType::is_transient)
            }
            ClaudeError::Transport(e) => {
                e.is_timeout() || e.is_connect() || e.is_request() || e.is_body()
            }
            ClaudeError::Budget { .. }
            | ClaudeError::UnknownPrice { .. }
            | ClaudeError::Decode { .. }
            | ClaudeError::Config(_)
            | ClaudeError::Unsupported { .. }
            | ClaudeError::Tools(_) => false,
        }
    }

    /// The request id of the API answer this error came from, if any.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            ClaudeError::Api { request_id, .. }
            | ClaudeError::RateLimitedUntil { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }

    /// An API error from a status, the body and the `request-id` header.
    ///
    /// The envelope's fields win; a body that is not an envelope keeps the status's
    /// documented type and a short excerpt of the body as the message.
    pub fn from_response(status: u16, body: &[u8], header_request_id: Option<String>) -> Self {
        match serde_json::from_slice::<ErrorEnvelope>(body) {
            Ok(env) => ClaudeError::Api {
                status,
                error_type: ApiErrorType::parse(&env.error.error_type),
                message: env.error.message,
                request_id: env.request_id.or(header_request_id),
            },
            Err(_) => {
                let text = String::from_utf8_lossy(body);
                let excerpt: String = text.trim().chars().take(200).collect();
                ClaudeError::Api {
                    status,
                    error_type: ApiErrorType::for_status(status),
                    message: if excerpt.is_empty() {
                        format!("http status {status}")
                    } else {
                        excerpt
                    },
                    request_id: header_request_id,
                }
            }
        }
    }
}

impl From<ClaudeError> for mia_core::Error {
    fn from(e: ClaudeError) -> Self {
        mia_core::Error::Llm {
            message: e.to_string(),
            retryable: e.is_retryable(),
            source: Some(Box::new(e)),
        }
    }
}

/// The result type of `mia-claude`.
pub type Result<T, E = ClaudeError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_fields_win_over_the_header() {
        let body = br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}"#;
        let e = ClaudeError::from_response(529, body, Some("req_header".into()));
        assert!(matches!(
            &e,
            ClaudeError::Api { status: 529, error_type: ApiErrorType::Overloaded, message, request_id: Some(id) }
                if message == "Overloaded" && id == "req_011CSHoEeqs5C35K2UUqR7Fy"
        ));
        assert!(e.is_retryable());
    }

    #[test]
    fn a_body_that_is_not_an_envelope_keeps_the_status() {
        let e = ClaudeError::from_response(502, b"<html>Bad Gateway</html>", Some("req_1".into()));
        assert!(matches!(
            &e,
            ClaudeError::Api { status: 502, error_type: ApiErrorType::Api, request_id: Some(id), .. } if id == "req_1"
        ));
        let e = ClaudeError::from_response(400, b"", None);
        assert!(matches!(
            &e,
            ClaudeError::Api {
                error_type: ApiErrorType::InvalidRequest,
                ..
            }
        ));
        assert!(!e.is_retryable());
    }

    #[test]
    fn unknown_error_types_are_kept() {
        assert_eq!(
            ApiErrorType::parse("quota_melted_error"),
            ApiErrorType::Other("quota_melted_error".into())
        );
        assert_eq!(
            ApiErrorType::parse("overloaded_error").as_str(),
            "overloaded_error"
        );
    }

    #[test]
    fn conversion_to_the_core_error_keeps_source_and_retryability() {
        let e = ClaudeError::from_response(
            429,
            br#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#,
            None,
        );
        let core: mia_core::Error = e.into();
        assert!(core.is_retryable());
        let source = std::error::Error::source(&core).map(ToString::to_string);
        assert!(source.is_some_and(|s| s.contains("slow down")));
        let budget: mia_core::Error = ClaudeError::Budget {
            scope: "global".into(),
            limit_micro_usd: 1,
            committed_micro_usd: 0,
            requested_micro_usd: 2,
        }
        .into();
        assert!(!budget.is_retryable());
    }
}
