//! `impl LlmProvider for ClaudeClient`: mia's completion types mapped to and from the wire.

use async_trait::async_trait;
use mia_core::{Completion, CompletionRequest, LlmProvider};

use crate::client::ClaudeClient;
use crate::wire::{
    ContentBlock, InputMessage, MessagesRequest, MessagesResponse, Role, StopReason, System, Tool,
    ToolChoice, ToolResultContent,
};

/// The wire request for a mia completion request; `default_model` fills in a missing model.
pub fn to_wire_request(request: &CompletionRequest, default_model: &str) -> MessagesRequest {
    let messages = request
        .messages
        .iter()
        .map(|m| InputMessage {
            role: match m.role {
                mia_core::Role::User => Role::User,
                mia_core::Role::Assistant => Role::Assistant,
            },
            content: m.content.iter().map(to_wire_block).collect(),
        })
        .collect();
    MessagesRequest {
        model: request
            .model
            .clone()
            .unwrap_or_else(|| default_model.to_owned()),
        max_tokens: request.max_tokens,
        messages,
        system: request.system.clone().map(System::Text),
        tools: request
            .tools
            .iter()
            .map(|t| Tool {
                name: t.name.clone(),
                description: Some(t.description.clone()).filter(|d| !d.is_empty()),
                input_schema: t.input_schema.clone(),
                cache_control: None,
            })
            .collect(),
        // Without tools the API refuses a tool_choice, so none is sent.
        tool_choice: (!request.tools.is_empty()).then(|| match &request.tool_choice {
            mia_core::ToolChoice::Auto => ToolChoice::Auto {
                disable_parallel_tool_use: None,
            },
            mia_core::ToolChoice::Any => ToolChoice::Any {
                disable_parallel_tool_use: None,
            },
            mia_core::ToolChoice::Tool { name } => ToolChoice::Tool {
                name: name.clone(),
                disable_parallel_tool_use: None,
            },
            mia_core::ToolChoice::None => ToolChoice::None,
        }),
        stop_sequences: Vec::new(),
        temperature: request.temperature,
        top_p: None,
        top_k: None,
        metadata: None,
        stream: None,
    }
}

fn to_wire_block(block: &mia_core::ContentBlock) -> ContentBlock {
    match block {
        mia_core::ContentBlock::Text { text } => ContentBlock::text(text.clone()),
        mia_core::ContentBlock::ToolUse { id, name, input } => ContentBlock::ToolUse {
            id: id.clone(),
            name: name.clone(),
            input: input.clone(),
            cache_control: None,
        },
        mia_core::ContentBlock::ToolResult {
            tool_use_id,
            content,
            is_error,
        } => ContentBlock::tool_result(tool_use_id.clone(), content.clone(), *is_error),
    }
}

/// mia's stop reason for a wire one. `pause_turn` has no counterpart in mia and stays
/// [`mia_core::StopReason::Other`]`("pause_turn")`, so a caller can send the turn back.
pub fn to_core_stop_reason(reason: Option<&StopReason>) -> mia_core::StopReason {
    match reason {
        Some(StopReason::EndTurn) => mia_core::StopReason::EndTurn,
        Some(StopReason::MaxTokens) => mia_core::StopReason::MaxTokens,
        Some(StopReason::ToolUse) => mia_core::StopReason::ToolUse,
        Some(StopReason::StopSequence) => mia_core::StopReason::StopSequence,
        Some(StopReason::Refusal) => mia_core::StopReason::Refusal,
        Some(other) => mia_core::StopReason::Other(other.as_str().to_owned()),
        None => mia_core::StopReason::Other("none".into()),
    }
}

/// The mia completion for a wire response. Blocks mia has no type for (thinking, server
/// tools) are left out; `usage.input_tokens` is the whole prompt, cached parts included.
pub fn to_completion(response: &MessagesResponse, cost_micro_usd: Option<u64>) -> Completion {
    let content = response
        .content
        .iter()
        .filter_map(|b| match b {
            ContentBlock::Text { text, .. } => {
                Some(mia_core::ContentBlock::Text { text: text.clone() })
            }
            ContentBlock::ToolUse {
                id, name, input, ..
            } => Some(mia_core::ContentBlock::ToolUse {
                id: id.clone(),
                name: name.clone(),
                input: input.clone(),
            }),
            ContentBlock::ToolResult {
                tool_use_id,
                content,
                is_error,
                ..
            } => Some(mia_core::ContentBlock::ToolResult {
                tool_use_id: tool_use_id.clone(),
                content: match content {
                    ToolResultContent::Text(t) => t.clone(),
                    ToolResultContent::Blocks(blocks) => blocks
                        .iter()
                        .filter_map(|b| match b {
                            ContentBlock::Text { text, .. } => Some(text.as_str()),
                            _ => None,
                        })
                        .collect(),
                },
                is_error: is_error.unwrap_or(false),
            }),
            _ => None,
        })
        .collect();
    Completion {
        model: response.model.clone(),
        content,
        stop_reason: to_core_stop_reason(response.stop_reason.as_ref()),
        usage: mia_core::Usage {
            input_tokens: response.usage.prompt_tokens(),
            output_tokens: response.usage.output_tokens,
        },
        cost_micro_usd,
    }
}

#[async_trait]
impl LlmProvider for ClaudeClient {
    fn name(&self) -> &str {
        "claude"
    }

    /// One completion through [`ClaudeClient::messages_with_report`]. `cost_micro_usd` is
    /// the priced cost, or `None` when the model has no price (the ledger then counts the
    /// call as unpriced, and a warning is logged).
    async fn complete(&self, request: &CompletionRequest) -> mia_core::Result<Completion> {
        let wire = to_wire_request(request, self.config().model());
        let (response, report) = self.messages_with_report(&wire).await?;
        let cost = report.cost.as_ref().and_then(crate::cost::Cost::micro_usd);
        let span = tracing::Span::current();
        span.record("input_tokens", response.usage.prompt_tokens());
        span.record("output_tokens", response.usage.output_tokens);
        Ok(to_completion(&response, cost))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_core_request_maps_one_to_one() {
        let request = CompletionRequest {
            model: None,
            system: Some("be brief".into()),
            messages: vec![
                mia_core::Message::user("hi"),
                mia_core::Message {
                    role: mia_core::Role::Assistant,
                    content: vec![mia_core::ContentBlock::ToolUse {
                        id: "toolu_1".into(),
                        name: "t".into(),
                        input: json!({"a": 1}),
                    }],
                },
                mia_core::Message {
                    role: mia_core::Role::User,
                    content: vec![mia_core::ContentBlock::ToolResult {
                        tool_use_id: "toolu_1".into(),
                        content: "boom".into(),
                        is_error: true,
                    }],
                },
            ],
            tools: vec![mia_core::ToolSpec {
                name: "t".into(),
                description: "a tool".into(),
                input_schema: json!({"type": "object"}),
            }],
            tool_choice: mia_core::ToolChoice::Tool { name: "t".into() },
            max_tokens: 100,
            temperature: Some(0.5),
        };
        let wire = serde_json::to_value(to_wire_request(&request, "claude-haiku-4-5")).unwrap();
        assert_eq!(
            wire,
            json!({
                "model": "claude-haiku-4-5",
                "max_tokens": 100,
                "system": "be brief",
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "hi"}]},
                    {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "t", "input": {"a": 1}}]},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "boom", "is_error": true}]}
                ],
                "tools": [{"name": "t", "description": "a tool", "input_schema": {"type": "object"}}],
                "tool_choice": {"type": "tool", "name": "t"},
                "temperature": 0.5
            })
        );
    }

    #[test]
    fn stop_reasons_map_and_pause_turn_is_kept() {
        assert_eq!(
            to_core_stop_reason(Some(&StopReason::PauseTurn)),
            mia_core::StopReason::Other("pause_turn".into())
        );
        assert_eq!(
            to_core_stop_reason(Some(&StopReason::from(
                "model_context_window_exceeded".to_owned()
            ))),
            mia_core::StopReason::Other("model_context_window_exceeded".into())
        );
        assert_eq!(
            to_core_stop_reason(Some(&StopReason::Refusal)),
            mia_core::StopReason::Refusal
        );
    }

    #[test]
    fn usage_counts_the_whole_prompt() {
        let response: MessagesResponse = serde_json::from_value(json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": [{"type": "thinking", "thinking": "hm", "signature": "s"}, {"type": "text", "text": "ok"}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 5, "output_tokens": 2, "cache_creation_input_tokens": 10, "cache_read_input_tokens": 100}
        }))
        .unwrap();
        let c = to_completion(&response, Some(7));
        assert_eq!(c.usage.input_tokens, 115);
        assert_eq!(c.content.len(), 1, "thinking has no mia counterpart");
        assert_eq!(c.cost_micro_usd, Some(7));
    }
}
