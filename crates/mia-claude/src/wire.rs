//! Serde types of the Anthropic Messages API (`POST /v1/messages`), request, response and
//! stream events, in the exact shape the API speaks.
//!
//! Enums the API may grow are open: an unknown content block, delta or stream event is kept as
//! `Unknown(serde_json::Value)`, an unknown stop reason or error type as `Other(String)`, and
//! model ids are plain strings, so a new API feature never turns into a parse failure.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// The body of `POST /v1/messages`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MessagesRequest {
    /// The model id (`"claude-sonnet-4-5"`, `"claude-haiku-4-5-20251001"`, ...); left
    /// empty, [`ClaudeClient`](crate::ClaudeClient) uses its configured default.
    pub model: String,
    /// The most tokens to generate.
    pub max_tokens: u32,
    /// The conversation, alternating user and assistant turns.
    pub messages: Vec<InputMessage>,
    /// The system prompt, as a string or as text blocks (which may carry `cache_control`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<System>,
    /// Tools the model may call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    /// Whether and which tool the model must call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Sequences that stop generation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop_sequences: Vec<String>,
    /// Sampling temperature, 0.0 to 1.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// Top-k sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    /// Request metadata (an opaque end-user id for abuse detection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    /// Whether the answer comes as server-sent events. The client sets it; leave it `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
}

impl MessagesRequest {
    /// A request for `model` with one user message of text.
    pub fn new(model: impl Into<String>, max_tokens: u32, user_text: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            max_tokens,
            messages: vec![InputMessage::user_text(user_text)],
            system: None,
            tools: Vec::new(),
            tool_choice: None,
            stop_sequences: Vec::new(),
            temperature: None,
            top_p: None,
            top_k: None,
            metadata: None,
            stream: None,
        }
    }
}

/// Who said a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The host, and tool results.
    User,
    /// The model.
    Assistant,
}

/// One turn of the conversation sent to the API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputMessage {
    /// Who.
    pub role: Role,
    /// What; the API also accepts a bare string, which is read as one text block.
    #[serde(deserialize_with = "string_or_blocks")]
    pub content: Vec<ContentBlock>,
}

impl InputMessage {
    /// A user turn of plain text.
    pub fn user_text(text: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: vec![ContentBlock::text(text)],
        }
    }

    /// A user turn of blocks (tool results, images, text).
    pub fn user(content: Vec<ContentBlock>) -> Self {
        Self {
            role: Role::User,
            content,
        }
    }

    /// An assistant turn, as the model answered it.
    pub fn assistant(content: Vec<ContentBlock>) -> Self {
        Self {
            role: Role::Assistant,
            content,
        }
    }
}

fn string_or_blocks<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ContentBlock>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Text(String),
        Blocks(Vec<ContentBlock>),
    }
    Ok(match Either::deserialize(d)? {
        Either::Text(text) => vec![ContentBlock::text(text)],
        Either::Blocks(blocks) => blocks,
    })
}

/// Marks the end of a cacheable prefix (prompt caching).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CacheControl {
    /// The only kind the API has: an ephemeral cache entry.
    Ephemeral {
        /// How long the entry lives; the API's default is five minutes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttl: Option<CacheTtl>,
    },
}

impl CacheControl {
    /// An ephemeral breakpoint with the default (five-minute) lifetime.
    pub fn ephemeral() -> Self {
        CacheControl::Ephemeral { ttl: None }
    }

    /// An ephemeral breakpoint with an explicit lifetime.
    pub fn with_ttl(ttl: CacheTtl) -> Self {
        CacheControl::Ephemeral { ttl: Some(ttl) }
    }
}

/// The lifetime of a prompt-cache entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CacheTtl {
    /// Five minutes (writes cost 1.25x input).
    #[serde(rename = "5m")]
    FiveMinutes,
    /// One hour (writes cost 2x input).
    #[serde(rename = "1h")]
    OneHour,
}

/// A piece of a message, sent or received.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    /// Plain text.
    Text {
        /// The text.
        text: String,
        /// Citations the model attached (kept verbatim).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        citations: Option<Vec<Value>>,
        /// A cache breakpoint after this block.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
    /// An image.
    Image {
        /// Where the image comes from.
        source: ImageSource,
        /// A cache breakpoint after this block.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
    /// The model calls a tool.
    ToolUse {
        /// The call's id, echoed by the result.
        id: String,
        /// The tool's name.
        name: String,
        /// The arguments, matching the tool's input schema.
        input: Value,
        /// A cache breakpoint after this block.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
    /// The host answers a tool call.
    ToolResult {
        /// The call answered.
        tool_use_id: String,
        /// The answer.
        #[serde(default, skip_serializing_if = "ToolResultContent::is_empty")]
        content: ToolResultContent,
        /// Whether the tool failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        is_error: Option<bool>,
        /// A cache breakpoint after this block.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
    /// Extended thinking, returned when thinking is enabled.
    Thinking {
        /// The reasoning text.
        thinking: String,
        /// The signature that must be sent back unchanged.
        signature: String,
    },
    /// Thinking the API redacted.
    RedactedThinking {
        /// Opaque data to send back unchanged.
        data: String,
    },
    /// A block type this version does not know, kept verbatim.
    #[serde(untagged)]
    Unknown(Value),
}

impl ContentBlock {
    /// A text block without citations or cache breakpoint.
    pub fn text(text: impl Into<String>) -> Self {
        ContentBlock::Text {
            text: text.into(),
            citations: None,
            cache_control: None,
        }
    }

    /// A tool result of text.
    pub fn tool_result(
        tool_use_id: impl Into<String>,
        text: impl Into<String>,
        error: bool,
    ) -> Self {
        ContentBlock::ToolResult {
            tool_use_id: tool_use_id.into(),
            content: ToolResultContent::Text(text.into()),
            is_error: error.then_some(true),
            cache_control: None,
        }
    }

    /// Sets the cache breakpoint of a block that can carry one (text, image, tool use, tool
    /// result); other blocks are returned unchanged.
    #[must_use]
    pub fn with_cache_control(mut self, control: CacheControl) -> Self {
        match &mut self {
            ContentBlock::Text { cache_control, .. }
            | ContentBlock::Image { cache_control, .. }
            | ContentBlock::ToolUse { cache_control, .. }
            | ContentBlock::ToolResult { cache_control, .. } => *cache_control = Some(control),
            _ => {}
        }
        self
    }
}

/// Where an image comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ImageSource {
    /// Inline bytes, base64-encoded.
    Base64 {
        /// `image/jpeg`, `image/png`, `image/gif` or `image/webp`.
        media_type: String,
        /// The base64 data.
        data: String,
    },
    /// An image the API fetches.
    Url {
        /// Its URL.
        url: String,
    },
    /// A source type this version does not know, kept verbatim.
    #[serde(untagged)]
    Unknown(Value),
}

/// The content of a tool result: a string or blocks (text, images).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ToolResultContent {
    /// Plain text.
    Text(String),
    /// Blocks.
    Blocks(Vec<ContentBlock>),
}

impl Default for ToolResultContent {
    fn default() -> Self {
        ToolResultContent::Text(String::new())
    }
}

impl ToolResultContent {
    fn is_empty(&self) -> bool {
        match self {
            ToolResultContent::Text(t) => t.is_empty(),
            ToolResultContent::Blocks(b) => b.is_empty(),
        }
    }
}

/// The system prompt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum System {
    /// A plain string.
    Text(String),
    /// Text blocks, which may carry cache breakpoints.
    Blocks(Vec<SystemBlock>),
}

/// A block of the system prompt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SystemBlock {
    /// Text.
    Text {
        /// The text.
        text: String,
        /// A cache breakpoint after this block.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
}

/// A tool the model may call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    /// Its name (`^[a-zA-Z0-9_-]{1,64}$`).
    pub name: String,
    /// What it does, for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of its input (an object schema).
    pub input_schema: Value,
    /// A cache breakpoint after this tool (caches every tool up to here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
}

/// Whether and which tool the model must call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides.
    Auto {
        /// Allow at most one tool call.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    /// Some tool must be called.
    Any {
        /// Allow at most one tool call.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    /// This tool must be called.
    Tool {
        /// The tool's name.
        name: String,
        /// Allow at most one tool call.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    /// No tool may be called.
    None,
}

/// Request metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// An opaque id of the end user (a hash, never a name, email or phone number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

/// Why the model stopped. Unknown reasons are kept in [`StopReason::Other`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum StopReason {
    /// It finished its turn.
    EndTurn,
    /// It hit `max_tokens`.
    MaxTokens,
    /// It hit one of the stop sequences.
    StopSequence,
    /// It called one or more tools.
    ToolUse,
    /// A long-running server tool paused the turn; send the response back to continue.
    PauseTurn,
    /// It declined for safety reasons.
    Refusal,
    /// A reason this version does not know, kept verbatim.
    Other(String),
}

impl StopReason {
    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            StopReason::EndTurn => "end_turn",
            StopReason::MaxTokens => "max_tokens",
            StopReason::StopSequence => "stop_sequence",
            StopReason::ToolUse => "tool_use",
            StopReason::PauseTurn => "pause_turn",
            StopReason::Refusal => "refusal",
            StopReason::Other(s) => s,
        }
    }
}

impl From<String> for StopReason {
    fn from(s: String) -> Self {
        match s.as_str() {
            "end_turn" => StopReason::EndTurn,
            "max_tokens" => StopReason::MaxTokens,
            "stop_sequence" => StopReason::StopSequence,
            "tool_use" => StopReason::ToolUse,
            "pause_turn" => StopReason::PauseTurn,
            "refusal" => StopReason::Refusal,
            _ => StopReason::Other(s),
        }
    }
}

impl From<StopReason> for String {
    fn from(r: StopReason) -> Self {
        match r {
            StopReason::Other(s) => s,
            known => known.as_str().to_owned(),
        }
    }
}

/// Tokens written to the prompt cache, by lifetime.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheCreation {
    /// Tokens written with the five-minute lifetime.
    #[serde(default)]
    pub ephemeral_5m_input_tokens: u64,
    /// Tokens written with the one-hour lifetime.
    #[serde(default)]
    pub ephemeral_1h_input_tokens: u64,
}

/// Tokens used by one response.
///
/// `input_tokens` counts only the uncached part of the prompt; the whole prompt is
/// `input_tokens + cache_creation_input_tokens + cache_read_input_tokens`
/// ([`Usage::prompt_tokens`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Uncached input tokens.
    #[serde(default)]
    pub input_tokens: u64,
    /// Generated tokens.
    #[serde(default)]
    pub output_tokens: u64,
    /// Input tokens written to the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    /// Input tokens read from the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    /// The cache writes split by lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation: Option<CacheCreation>,
    /// Server tool use counts (web search requests, ...), kept verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_tool_use: Option<Value>,
    /// The service tier that answered (`"standard"`, `"priority"`, `"batch"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
}

impl Usage {
    /// Every input token: uncached, written to and read from the cache.
    pub fn prompt_tokens(&self) -> u64 {
        self.input_tokens
            .saturating_add(self.cache_creation_input_tokens.unwrap_or(0))
            .saturating_add(self.cache_read_input_tokens.unwrap_or(0))
    }

    /// Cache writes as (five-minute, one-hour) tokens. Without the split, every write counts
    /// as five-minute, the API's default lifetime.
    pub fn cache_writes(&self) -> (u64, u64) {
        match self.cache_creation {
            Some(c) => (c.ephemeral_5m_input_tokens, c.ephemeral_1h_input_tokens),
            None => (self.cache_creation_input_tokens.unwrap_or(0), 0),
        }
    }

    /// Applies the cumulative usage of a `message_delta` event: fields it carries replace ours.
    pub fn apply_delta(&mut self, delta: &DeltaUsage) {
        if let Some(v) = delta.input_tokens {
            self.input_tokens = v;
        }
        if let Some(v) = delta.output_tokens {
            self.output_tokens = v;
        }
        if delta.cache_creation_input_tokens.is_some() {
            self.cache_creation_input_tokens = delta.cache_creation_input_tokens;
        }
        if delta.cache_read_input_tokens.is_some() {
            self.cache_read_input_tokens = delta.cache_read_input_tokens;
        }
        if delta.server_tool_use.is_some() {
            self.server_tool_use.clone_from(&delta.server_tool_use);
        }
    }
}

/// The body of a successful `POST /v1/messages`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MessagesResponse {
    /// The message id (`msg_...`).
    pub id: String,
    /// Always `"message"`.
    #[serde(rename = "type", default = "message_type")]
    pub kind: String,
    /// Always the assistant.
    pub role: Role,
    /// The model that answered.
    pub model: String,
    /// What it said.
    pub content: Vec<ContentBlock>,
    /// Why it stopped (`null` only in a stream's `message_start`).
    pub stop_reason: Option<StopReason>,
    /// The stop sequence it hit, if any.
    #[serde(default)]
    pub stop_sequence: Option<String>,
    /// Tokens used.
    pub usage: Usage,
}

fn message_type() -> String {
    "message".into()
}

impl MessagesResponse {
    /// The text of every text block, joined.
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(|b| match b {
                ContentBlock::Text { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Every tool call, as (id, name, input).
    pub fn tool_uses(&self) -> impl Iterator<Item = (&str, &str, &Value)> {
        self.content.iter().filter_map(|b| match b {
            ContentBlock::ToolUse {
                id, name, input, ..
            } => Some((id.as_str(), name.as_str(), input)),
            _ => None,
        })
    }
}

/// The `error` object of an error response or an in-band stream error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    /// The error type (`overloaded_error`, ...).
    #[serde(rename = "type")]
    pub error_type: String,
    /// A human-readable message.
    #[serde(default)]
    pub message: String,
}

/// The body of an error response: `{"type":"error","error":{...},"request_id":"req_..."}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    /// Always `"error"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The error.
    pub error: ApiErrorBody,
    /// The request id, also in the `request-id` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// One server-sent event of a streamed response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    /// The message, with empty content.
    MessageStart {
        /// The message so far.
        message: MessagesResponse,
    },
    /// A content block opens at `index`.
    ContentBlockStart {
        /// Its index in the content.
        index: usize,
        /// The block, with empty text or input.
        content_block: ContentBlock,
    },
    /// More of the block at `index`.
    ContentBlockDelta {
        /// The block's index.
        index: usize,
        /// The piece.
        delta: BlockDelta,
    },
    /// The block at `index` is complete.
    ContentBlockStop {
        /// The block's index.
        index: usize,
    },
    /// Top-level changes: the stop reason, and cumulative usage.
    MessageDelta {
        /// The stop reason and sequence.
        delta: MessageDelta,
        /// Cumulative usage so far.
        #[serde(default)]
        usage: DeltaUsage,
    },
    /// The message is complete.
    MessageStop,
    /// Keep-alive.
    Ping,
    /// An in-band error (for example `overloaded_error`); the stream is over.
    Error {
        /// The error.
        error: ApiErrorBody,
    },
    /// An event type this version does not know, kept verbatim.
    #[serde(untagged)]
    Unknown(Value),
}

/// A piece of a content block.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BlockDelta {
    /// More text.
    TextDelta {
        /// The text.
        text: String,
    },
    /// More of a tool call's input, as a piece of JSON text.
    InputJsonDelta {
        /// The piece (not valid JSON on its own).
        partial_json: String,
    },
    /// More thinking.
    ThinkingDelta {
        /// The text.
        thinking: String,
    },
    /// The thinking block's signature.
    SignatureDelta {
        /// The signature.
        signature: String,
    },
    /// A citation for a text block.
    CitationsDelta {
        /// The citation, verbatim.
        citation: Value,
    },
    /// A delta type this version does not know, kept verbatim.
    #[serde(untagged)]
    Unknown(Value),
}

/// The top-level change carried by `message_delta`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageDelta {
    /// Why the model stopped.
    #[serde(default)]
    pub stop_reason: Option<StopReason>,
    /// The stop sequence it hit.
    #[serde(default)]
    pub stop_sequence: Option<String>,
}

/// Usage in `message_delta`: cumulative, each field present replaces the earlier value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaUsage {
    /// Uncached input tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    /// Generated tokens so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    /// Input tokens written to the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    /// Input tokens read from the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    /// Server tool use counts, verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_tool_use: Option<Value>,
}

/// The body of `POST /v1/messages/count_tokens`'s answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCount {
    /// Input tokens the request would use.
    pub input_tokens: u64,
}
