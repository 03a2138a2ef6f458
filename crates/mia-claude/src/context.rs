//! Keeping a conversation within a token budget, and the cacheable prefix stable.
//!
//! The prefix the API caches is tools, then system, then messages. [`ContextManager`] never
//! touches tools or system, so their cache entry survives trimming; it drops the oldest
//! turns, only at a user turn that opens a new exchange (never between a `tool_use` and its
//! `tool_result`), optionally keeping the first user message (the task).

use crate::budget::estimate_input_tokens;
use crate::client::ClaudeClient;
use crate::error::{ClaudeError, Result};
use crate::wire::{
    CacheControl, ContentBlock, InputMessage, MessagesRequest, Role, System, SystemBlock,
};

/// What [`ContextManager::fit`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fitted {
    /// Messages removed from the conversation.
    pub removed_messages: usize,
    /// The prompt's tokens after trimming (estimated, or counted by the API).
    pub prompt_tokens: u64,
}

/// Trims a conversation to a prompt-token budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContextManager {
    max_prompt_tokens: u64,
    keep_first: bool,
}

fn opens_exchange(message: &InputMessage) -> bool {
    message.role == Role::User
        && !message
            .content
            .iter()
            .any(|b| matches!(b, ContentBlock::ToolResult { .. }))
}

impl ContextManager {
    /// A manager keeping prompts at or under `max_prompt_tokens`.
    pub fn new(max_prompt_tokens: u64) -> Self {
        Self {
            max_prompt_tokens,
            keep_first: false,
        }
    }

    /// Keeps the first user message (the task statement) whatever else is dropped.
    #[must_use]
    pub fn keep_first_message(mut self, keep: bool) -> Self {
        self.keep_first = keep;
        self
    }

    /// Where the conversation may be cut: indexes of user turns that open an exchange.
    fn cut_points(&self, messages: &[InputMessage]) -> Vec<usize> {
        let first = usize::from(self.keep_first);
        (first + 1..messages.len())
            .filter(|&i| opens_exchange(&messages[i]))
            .collect()
    }

    fn cut(&self, request: &mut MessagesRequest, at: usize) -> usize {
        let first = usize::from(self.keep_first);
        request.messages.drain(first..at).count()
    }

    /// Drops the oldest exchanges until the local estimate
    /// ([`estimate_input_tokens`](crate::estimate_input_tokens)) fits.
    ///
    /// # Errors
    /// [`ClaudeError::Config`] when even the last exchange alone does not fit.
    pub fn fit(&self, request: &mut MessagesRequest) -> Result<Fitted> {
        let mut estimate = estimate_input_tokens(request);
        if estimate <= self.max_prompt_tokens {
            return Ok(Fitted {
                removed_messages: 0,
                prompt_tokens: estimate,
            });
        }
        let first = usize::from(self.keep_first);
        for at in self.cut_points(&request.messages) {
            let mut trial = request.clone();
            trial.messages.drain(first..at);
            estimate = estimate_input_tokens(&trial);
            if estimate <= self.max_prompt_tokens {
                let removed = self.cut(request, at);
                return Ok(Fitted {
                    removed_messages: removed,
                    prompt_tokens: estimate,
                });
            }
        }
        Err(self.too_large(estimate))
    }

    /// As [`fit`](Self::fit), but counting with `POST /v1/messages/count_tokens` (exact;
    /// one request per step), for hosts that enable it.
    ///
    /// # Errors
    /// As [`fit`](Self::fit), and the errors of [`ClaudeClient::count_tokens`].
    pub async fn fit_counted(
        &self,
        client: &ClaudeClient,
        request: &mut MessagesRequest,
    ) -> Result<Fitted> {
        let mut removed = 0;
        loop {
            let counted = client.count_tokens(request).await?;
            if counted <= self.max_prompt_tokens {
                return Ok(Fitted {
                    removed_messages: removed,
                    prompt_tokens: counted,
                });
            }
            match self.cut_points(&request.messages).first() {
                Some(&at) => removed += self.cut(request, at),
                None => return Err(self.too_large(counted)),
            }
        }
    }

    fn too_large(&self, tokens: u64) -> ClaudeError {
        ClaudeError::Config(format!(
            "the prompt needs about {tokens} tokens even with only its last exchange, over the \
             budget of {}",
            self.max_prompt_tokens
        ))
    }
}

/// Puts cache breakpoints at the end of the stable prefix: the last tool and the last system
/// block (a string system prompt becomes one block). Later requests with the same tools and
/// system then read them from the cache.
pub fn mark_cacheable_prefix(request: &mut MessagesRequest, control: CacheControl) {
    if let Some(tool) = request.tools.last_mut() {
        tool.cache_control = Some(control.clone());
    }
    let system = match request.system.take() {
        Some(System::Text(text)) => Some(System::Blocks(vec![SystemBlock::Text {
            text,
            cache_control: None,
        }])),
        other => other,
    };
    request.system = system.map(|s| match s {
        System::Blocks(mut blocks) => {
            if let Some(SystemBlock::Text { cache_control, .. }) = blocks.last_mut() {
                *cache_control = Some(control);
            }
            System::Blocks(blocks)
        }
        text => text,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{CacheTtl, Tool};

    fn conversation() -> MessagesRequest {
        let mut r = MessagesRequest::new("m", 100, "TASK ".repeat(30));
        let long = "x".repeat(600);
        r.messages
            .push(InputMessage::assistant(vec![ContentBlock::ToolUse {
                id: "t1".into(),
                name: "lookup".into(),
                input: serde_json::json!({}),
                cache_control: None,
            }]));
        r.messages
            .push(InputMessage::user(vec![ContentBlock::tool_result(
                "t1",
                long.clone(),
                false,
            )]));
        r.messages
            .push(InputMessage::assistant(vec![ContentBlock::text(
                long.clone(),
            )]));
        r.messages.push(InputMessage::user_text("second question"));
        r.messages
            .push(InputMessage::assistant(vec![ContentBlock::text(
                "short answer",
            )]));
        r.messages.push(InputMessage::user_text("third question"));
        r
    }

    #[test]
    fn oldest_exchanges_go_first_and_tool_pairs_stay_together() {
        let mut r = conversation();
        let before = estimate_input_tokens(&r);
        let fitted = ContextManager::new(before - 1).fit(&mut r).unwrap();
        assert_eq!(
            fitted.removed_messages, 4,
            "cut at the first clean user turn"
        );
        assert_eq!(r.messages[0], InputMessage::user_text("second question"));
        assert!(fitted.prompt_tokens < before);

        let mut kept = conversation();
        let fitted = ContextManager::new(before - 1)
            .keep_first_message(true)
            .fit(&mut kept)
            .unwrap();
        assert_eq!(fitted.removed_messages, 3);
        assert!(
            matches!(&kept.messages[0].content[0], ContentBlock::Text { text, .. } if text.starts_with("TASK"))
        );
        assert_eq!(kept.messages[1], InputMessage::user_text("second question"));
    }

    #[test]
    fn too_small_a_budget_is_an_error_and_a_fitting_one_changes_nothing() {
        let mut r = conversation();
        assert!(ContextManager::new(5).fit(&mut r).is_err());
        let untouched = conversation();
        let mut same = untouched.clone();
        let f = ContextManager::new(1_000_000).fit(&mut same).unwrap();
        assert_eq!((f.removed_messages, same), (0, untouched));
    }

    #[test]
    fn cache_breakpoints_end_the_stable_prefix() {
        let mut r = MessagesRequest::new("m", 10, "hi");
        r.system = Some(System::Text("You write copy.".into()));
        r.tools = vec![
            Tool {
                name: "a".into(),
                description: None,
                input_schema: serde_json::json!({"type": "object"}),
                cache_control: None,
            },
            Tool {
                name: "b".into(),
                description: None,
                input_schema: serde_json::json!({"type": "object"}),
                cache_control: None,
            },
        ];
        mark_cacheable_prefix(&mut r, CacheControl::with_ttl(CacheTtl::OneHour));
        assert!(r.tools[0].cache_control.is_none());
        assert!(r.tools[1].cache_control.is_some());
        assert_eq!(
            serde_json::to_value(&r.system).unwrap(),
            serde_json::json!([{"type": "text", "text": "You write copy.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}])
        );
    }
}
