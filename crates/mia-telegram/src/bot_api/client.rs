//! One HTTP call to the Bot API, and the pure mapping of its errors.

use std::time::Duration;

use mia_core::FailureReason;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::config::BotApiConfig;
use super::wire::{ApiResponse, ResponseParameters};
use crate::error::TelegramError;

/// How a failed call went wrong, before the caller decides what it means for its method.
#[derive(Debug)]
pub(crate) enum CallError {
    /// Telegram answered `ok: false`.
    Api {
        code: i64,
        description: String,
        parameters: ResponseParameters,
    },
    /// No usable answer. `delivered_maybe` is false only when the request never left
    /// (connection refused, DNS, TLS).
    Transport {
        message: String,
        delivered_maybe: bool,
    },
}

/// What an error answer from the Bot API means, from its code, description and parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiFailure {
    /// Flood control (429): wait this long.
    RetryAfter(Duration),
    /// The group became a supergroup with this id (400 with `migrate_to_chat_id`).
    Migrated(i64),
    /// The message will never be delivered to this chat.
    Undeliverable(FailureReason),
    /// The message to edit, delete or pin does not exist (any more).
    MessageNotFound,
    /// The token was refused (401; 404 for an unknown bot path).
    Unauthorized,
    /// Another update consumer or a webhook (409).
    Conflict,
    /// Telegram's side failed (5xx); the request may or may not have taken effect.
    Server,
    /// Anything else; the description says what.
    Other,
}

/// Maps a Bot API error answer to what it means. Pure: table-tested with the descriptions
/// Telegram actually sends.
pub fn classify(code: i64, description: &str, parameters: &ResponseParameters) -> ApiFailure {
    let d = description.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| d.contains(n));
    if let Some(to) = parameters.migrate_to_chat_id {
        return ApiFailure::Migrated(to);
    }
    match code {
        429 => ApiFailure::RetryAfter(Duration::from_secs(
            parameters
                .retry_after
                .or_else(|| retry_after_in(&d))
                .unwrap_or(1)
                .max(1),
        )),
        401 | 404 => ApiFailure::Unauthorized,
        409 => ApiFailure::Conflict,
        403 if has(&["blocked by the user"]) => ApiFailure::Undeliverable(FailureReason::Blocked),
        403 if has(&["user is deactivated"]) => {
            ApiFailure::Undeliverable(FailureReason::Deactivated)
        }
        // The user never started the bot: a bot may only write to people who wrote first.
        403 if has(&["can't initiate conversation", "can't send messages to bots"]) => {
            ApiFailure::Undeliverable(FailureReason::PrivacyRestricted)
        }
        403 => ApiFailure::Undeliverable(FailureReason::ChatWriteForbidden),
        400 if has(&[
            "message to edit not found",
            "message to delete not found",
            "message to pin not found",
            "message can't be edited",
            "message can't be deleted",
        ]) =>
        {
            ApiFailure::MessageNotFound
        }
        400 if has(&["chat not found", "user not found", "peer_id_invalid"]) => {
            ApiFailure::Undeliverable(FailureReason::Other("chat not found".into()))
        }
        400 if has(&[
            "not enough rights",
            "have no rights",
            "chat_write_forbidden",
        ]) =>
        {
            ApiFailure::Undeliverable(FailureReason::ChatWriteForbidden)
        }
        400 if has(&[
            "message is too long",
            "text must be non-empty",
            "message text is empty",
            "can't parse entities",
            "entity",
            "message to be replied not found",
        ]) =>
        {
            ApiFailure::Undeliverable(FailureReason::InvalidMessage(description.to_owned()))
        }
        500..=599 => ApiFailure::Server,
        _ => ApiFailure::Other,
    }
}

/// "Too Many Requests: retry after 35" -> 35.
fn retry_after_in(description: &str) -> Option<u64> {
    let (_, tail) = description.rsplit_once("retry after ")?;
    let digits: String = tail.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// A Bot API client: JSON bodies, one method per call, the token only in the path.
#[derive(Clone)]
pub(crate) struct BotApiClient {
    http: reqwest::Client,
    base: String,
    request_timeout: Duration,
}

impl BotApiClient {
    pub(crate) fn new(config: &BotApiConfig) -> Result<Self, TelegramError> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .build()
            .map_err(|e| TelegramError::Http {
                method: "client",
                message: e.without_url().to_string(),
                retryable: false,
            })?;
        Ok(Self {
            http,
            base: format!("{}/bot{}", config.api_base, config.token.expose()),
            request_timeout: config.request_timeout,
        })
    }

    /// Calls `method` with `body`; `extra` lengthens the timeout (for long polls).
    pub(crate) async fn call<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: &'static str,
        body: &B,
        extra: Duration,
    ) -> Result<T, CallError> {
        let response = self
            .http
            .post(format!("{}/{method}", self.base))
            .timeout(self.request_timeout + extra)
            .json(body)
            .send()
            .await
            .map_err(|e| CallError::Transport {
                delivered_maybe: !(e.is_connect() || e.is_builder()),
                // Never the URL: it carries the token.
                message: e.without_url().to_string(),
            })?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| CallError::Transport {
            delivered_maybe: true,
            message: e.without_url().to_string(),
        })?;
        match serde_json::from_slice::<ApiResponse<T>>(&bytes) {
            Ok(ApiResponse {
                ok: true,
                result: Some(result),
                ..
            }) => Ok(result),
            Ok(answer) => Err(CallError::Api {
                code: answer
                    .error_code
                    .unwrap_or_else(|| i64::from(status.as_u16())),
                description: answer.description.unwrap_or_else(|| status.to_string()),
                parameters: answer.parameters.unwrap_or_default(),
            }),
            // A proxy's HTML error page, or a result of an unexpected shape.
            Err(e) if status.is_success() => Err(CallError::Transport {
                delivered_maybe: true,
                message: format!("unreadable answer: {e}"),
            }),
            Err(_) => Err(CallError::Api {
                code: i64::from(status.as_u16()),
                description: status.to_string(),
                parameters: ResponseParameters::default(),
            }),
        }
    }
}

impl CallError {
    /// The error for a call that is safe to repeat (everything except `sendMessage`).
    pub(crate) fn into_error(self, method: &'static str) -> TelegramError {
        match self {
            CallError::Transport { message, .. } => TelegramError::Http {
                method,
                message,
                retryable: true,
            },
            CallError::Api {
                code,
                description,
                parameters,
            } => match classify(code, &description, &parameters) {
                ApiFailure::Unauthorized => TelegramError::Unauthorized { code },
                ApiFailure::Conflict => TelegramError::Conflict(description),
                failure => TelegramError::Api {
                    method,
                    code,
                    description,
                    retryable: matches!(failure, ApiFailure::Server | ApiFailure::RetryAfter(_)),
                },
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(retry_after: Option<u64>, migrate: Option<i64>) -> ResponseParameters {
        ResponseParameters {
            retry_after,
            migrate_to_chat_id: migrate,
        }
    }

    #[test]
    fn the_descriptions_telegram_sends_map_to_outcomes() {
        use ApiFailure::*;
        use FailureReason as R;
        let none = p(None, None);
        let table: Vec<(i64, &str, ResponseParameters, ApiFailure)> = vec![
            (429, "Too Many Requests: retry after 35", p(Some(35), None), RetryAfter(Duration::from_secs(35))),
            (429, "Too Many Requests: retry after 12", none.clone(), RetryAfter(Duration::from_secs(12))),
            (429, "Too Many Requests", none.clone(), RetryAfter(Duration::from_secs(1))),
            (429, "Too Many Requests: retry after 0", p(Some(0), None), RetryAfter(Duration::from_secs(1))),
            (400, "Bad Request: group chat was upgraded to a supergroup chat", p(None, Some(-1001234)), Migrated(-1001234)),
            (403, "Forbidden: bot was blocked by the user", none.clone(), Undeliverable(R::Blocked)),
            (403, "Forbidden: user is deactivated", none.clone(), Undeliverable(R::Deactivated)),
            (403, "Forbidden: bot can't initiate conversation with a user", none.clone(), Undeliverable(R::PrivacyRestricted)),
            (403, "Forbidden: bot can't send messages to bots", none.clone(), Undeliverable(R::PrivacyRestricted)),
            (403, "Forbidden: bot was kicked from the supergroup chat", none.clone(), Undeliverable(R::ChatWriteForbidden)),
            (403, "Forbidden: bot is not a member of the channel chat", none.clone(), Undeliverable(R::ChatWriteForbidden)),
            (400, "Bad Request: not enough rights to send text messages to the chat", none.clone(), Undeliverable(R::ChatWriteForbidden)),
            (400, "Bad Request: chat not found", none.clone(), Undeliverable(R::Other("chat not found".into()))),
            (400, "Bad Request: message is too long", none.clone(), Undeliverable(R::InvalidMessage("Bad Request: message is too long".into()))),
            (400, "Bad Request: can't parse entities: Unsupported start tag \"x\" at byte offset 0", none.clone(), Undeliverable(R::InvalidMessage("Bad Request: can't parse entities: Unsupported start tag \"x\" at byte offset 0".into()))),
            (400, "Bad Request: message to be replied not found", none.clone(), Undeliverable(R::InvalidMessage("Bad Request: message to be replied not found".into()))),
            (400, "Bad Request: message to edit not found", none.clone(), MessageNotFound),
            (400, "Bad Request: message to delete not found", none.clone(), MessageNotFound),
            (400, "Bad Request: message can't be deleted for everyone", none.clone(), MessageNotFound),
            (401, "Unauthorized", none.clone(), Unauthorized),
            (404, "Not Found", none.clone(), Unauthorized),
            (409, "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running", none.clone(), Conflict),
            (409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first", none.clone(), Conflict),
            (500, "Internal Server Error", none.clone(), Server),
            (502, "Bad Gateway", none.clone(), Server),
            (400, "Bad Request: something new", none.clone(), Other),
        ];
        for (code, description, params, want) in table {
            assert_eq!(
                classify(code, description, &params),
                want,
                "{code} {description}"
            );
        }
    }

    #[test]
    fn call_errors_for_repeatable_methods() {
        let e = CallError::Api {
            code: 502,
            description: "Bad Gateway".into(),
            parameters: ResponseParameters::default(),
        }
        .into_error("getUpdates");
        assert!(e.is_retryable(), "{e}");
        let e = CallError::Api {
            code: 401,
            description: "Unauthorized".into(),
            parameters: ResponseParameters::default(),
        }
        .into_error("getUpdates");
        assert!(matches!(e, TelegramError::Unauthorized { code: 401 }));
        assert!(!e.is_retryable());
        let e = CallError::Transport {
            message: "connection refused".into(),
            delivered_maybe: false,
        }
        .into_error("getMe");
        assert!(e.is_retryable());
    }
}
