//! What each model accepts, as data, so that a request a model is known to reject is caught
//! before it is sent (and before it is retried, billed or counted against a rate limit).
//!
//! The table holds public limits as known when it was written; like the prices, it is data
//! to verify. A model not in the table is not checked.

use crate::error::{ClaudeError, Result};
use crate::wire::MessagesRequest;

/// What one model accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelCapabilities {
    /// The model id the row is for; dated snapshots (`-YYYYMMDD`) and `-latest` match too.
    pub model: &'static str,
    /// The most output tokens one request may ask for.
    pub max_output_tokens: u32,
    /// The context window without betas, in tokens.
    pub context_window: u64,
}

const TABLE: &[ModelCapabilities] = &[
    ModelCapabilities {
        model: "claude-opus-4-5",
        max_output_tokens: 64_000,
        context_window: 200_000,
    },
    ModelCapabilities {
        model: "claude-opus-4-1",
        max_output_tokens: 32_000,
        context_window: 200_000,
    },
    ModelCapabilities {
        model: "claude-opus-4",
        max_output_tokens: 32_000,
        context_window: 200_000,
    },
    ModelCapabilities {
        model: "claude-opus-4-0",
        max_output_tokens: 32_000,
        context_window: 200_000,
    },
    ModelCapabilities {
        model: "claude-sonnet-4-5",
        max_output_tokens: 64_000,
        context_window: 200_000,
    },
    ModelCapabilities {
        model: "claude-sonnet-4",
        max_output_tokens: 64_000,
        context_window: 200_000,
    },
    ModelCapabilities {
        model: "claude-sonnet-4-0",
        max_output_tokens: 64_000,
        context_window: 200_000,
    },
    ModelCapabilities {
        model: "claude-3-7-sonnet",
        max_output_tokens: 64_000,
        context_window: 200_000,
    },
    ModelCapabilities {
        model: "claude-haiku-4-5",
        max_output_tokens: 64_000,
        context_window: 200_000,
    },
    ModelCapabilities {
        model: "claude-3-5-haiku",
        max_output_tokens: 8_192,
        context_window: 200_000,
    },
    ModelCapabilities {
        model: "claude-3-haiku",
        max_output_tokens: 4_096,
        context_window: 200_000,
    },
];

fn matches(row: &str, id: &str) -> bool {
    match id.strip_prefix(row) {
        Some("") | Some("-latest") => true,
        Some(rest) => {
            rest.len() == 9
                && rest.starts_with('-')
                && rest[1..].bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

/// The capabilities of `model`, if the table knows it.
pub fn capabilities(model: &str) -> Option<&'static ModelCapabilities> {
    TABLE.iter().find(|row| matches(row.model, model))
}

/// Checks a request against what its model and the API accept. With any beta enabled, the
/// model's limits are not checked (betas raise them, like `output-128k-2025-02-19`).
///
/// # Errors
/// [`ClaudeError::Unsupported`] for `max_tokens` of 0 or above the model's limit, a
/// temperature outside 0..=1, or no messages.
pub fn check_request(request: &MessagesRequest, betas: &[String]) -> Result<()> {
    let unsupported = |reason: String| ClaudeError::Unsupported {
        model: request.model.clone(),
        reason,
    };
    if request.max_tokens == 0 {
        return Err(unsupported("max_tokens must be at least 1".into()));
    }
    if request.messages.is_empty() {
        return Err(unsupported("a request needs at least one message".into()));
    }
    if let Some(t) = request.temperature
        && !(0.0..=1.0).contains(&t)
    {
        return Err(unsupported(format!("temperature {t} is outside 0..=1")));
    }
    let Some(caps) = capabilities(&request.model).filter(|_| betas.is_empty()) else {
        return Ok(());
    };
    if request.max_tokens > caps.max_output_tokens {
        return Err(unsupported(format!(
            "max_tokens {} is above the model's {}",
            request.max_tokens, caps.max_output_tokens
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_limits_are_enforced_and_unknown_models_pass() {
        let none: &[String] = &[];
        let ok = MessagesRequest::new("claude-haiku-4-5-20251001", 64_000, "hi");
        assert!(check_request(&ok, none).is_ok());
        let too_many = MessagesRequest::new("claude-3-5-haiku-20241022", 10_000, "hi");
        assert!(matches!(
            check_request(&too_many, none),
            Err(ClaudeError::Unsupported { .. })
        ));
        let beta = ["output-128k-2025-02-19".to_owned()];
        assert!(
            check_request(&too_many, &beta).is_ok(),
            "betas raise limits"
        );
        let unknown = MessagesRequest::new("claude-next-9", 1_000_000, "hi");
        assert!(check_request(&unknown, none).is_ok());
        assert!(check_request(&MessagesRequest::new("claude-next-9", 0, "hi"), none).is_err());
        let mut hot = MessagesRequest::new("claude-sonnet-4-5", 10, "hi");
        hot.temperature = Some(1.5);
        assert!(check_request(&hot, none).is_err());
    }
}
