//! The LLM seam: one completion, with tools, usage and cost.
//!
//! The types follow the shape of the Anthropic Messages API (content blocks, tool use,
//! `tool_choice`) so that the Claude adapter maps them one to one, and an offline provider
//! ([`TemplateProvider`](crate::TemplateProvider)) can answer the same requests.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// Who said a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The host (and tool results).
    User,
    /// The model.
    Assistant,
}

/// A piece of a message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum ContentBlock {
    /// Plain text.
    Text {
        /// The text.
        text: String,
    },
    /// The model calls a tool.
    ToolUse {
        /// The call's id, echoed by the result.
        id: String,
        /// The tool's name.
        name: String,
        /// The arguments, matching the tool's input schema.
        input: serde_json::Value,
    },
    /// The host answers a tool call.
    ToolResult {
        /// The call answered.
        tool_use_id: String,
        /// The answer.
        content: String,
        /// Whether the tool failed.
        is_error: bool,
    },
}

/// One turn of the conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who.
    pub role: Role,
    /// What.
    pub content: Vec<ContentBlock>,
}

impl Message {
    /// A user turn of plain text.
    pub fn user(text: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: vec![ContentBlock::Text { text: text.into() }],
        }
    }
}

/// A tool the model may call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// Its name.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// JSON Schema of its input.
    pub input_schema: serde_json::Value,
}

/// Whether and which tool the model must call.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum ToolChoice {
    /// The model decides.
    #[default]
    Auto,
    /// Some tool must be called.
    Any,
    /// This tool must be called (structured output).
    Tool {
        /// The tool's name.
        name: String,
    },
    /// No tool may be called.
    None,
}

/// A request for one completion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompletionRequest {
    /// The model, or `None` for the provider's default.
    pub model: Option<String>,
    /// The system prompt.
    pub system: Option<String>,
    /// The conversation so far.
    pub messages: Vec<Message>,
    /// Tools on offer.
    pub tools: Vec<ToolSpec>,
    /// Tool choice.
    pub tool_choice: ToolChoice,
    /// The most tokens to generate.
    pub max_tokens: u32,
    /// Sampling temperature.
    pub temperature: Option<f32>,
}

/// Why the model stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// It finished.
    EndTurn,
    /// It hit `max_tokens`.
    MaxTokens,
    /// It called a tool.
    ToolUse,
    /// It hit a stop sequence.
    StopSequence,
    /// It refused.
    Refusal,
    /// A reason this version does not know, kept verbatim.
    Other(String),
}

/// Tokens used by one completion.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
}

/// One completion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// The model that answered.
    pub model: String,
    /// What it said.
    pub content: Vec<ContentBlock>,
    /// Why it stopped.
    pub stop_reason: StopReason,
    /// Tokens used.
    pub usage: Usage,
    /// What it cost, in millionths of a US dollar: `Some(0)` for offline providers, `None` when
    /// the provider cannot price the model (never a made-up zero).
    pub cost_micro_usd: Option<u64>,
}

impl Completion {
    /// The input of the first call to `tool`, if the model made one.
    pub fn tool_input(&self, tool: &str) -> Option<&serde_json::Value> {
        self.content.iter().find_map(|b| match b {
            ContentBlock::ToolUse { name, input, .. } if name == tool => Some(input),
            _ => None,
        })
    }
}

/// A language model.
#[async_trait]
pub trait LlmProvider: Send + Sync {
    /// A short name for traces (`"claude"`, `"template"`).
    fn name(&self) -> &str;

    /// One completion for `request`.
    ///
    /// # Errors
    /// [`Error::Llm`](crate::Error::Llm), with `retryable` set for overload and rate limits.
    async fn complete(&self, request: &CompletionRequest) -> Result<Completion>;
}

#[async_trait]
impl<P: LlmProvider + ?Sized> LlmProvider for Arc<P> {
    fn name(&self) -> &str {
        (**self).name()
    }
    async fn complete(&self, request: &CompletionRequest) -> Result<Completion> {
        (**self).complete(request).await
    }
}

#[async_trait]
impl<P: LlmProvider + ?Sized> LlmProvider for Box<P> {
    fn name(&self) -> &str {
        (**self).name()
    }
    async fn complete(&self, request: &CompletionRequest) -> Result<Completion> {
        (**self).complete(request).await
    }
}
