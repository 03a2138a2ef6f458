//! The tool-use loop: the host registers tools, the loop runs the model's calls and feeds
//! the results back until the model is done, a hook stops it, or the turn budget is spent.
//!
//! Every tool's input schema is compiled when the tool is registered
//! ([`mia_core::schema::Schema`]: the JSON Schema subset tool schemas use; an unknown keyword is
//! refused then, not ignored later). Each input the model sends is validated before the handler
//! runs; input that breaks the schema never reaches the handler and goes back to the model as a
//! tool error naming every problem with its JSON pointer, so the model can correct the call:
//!
//! ```
//! use mia_claude::ToolRegistry;
//! use serde_json::{Value, json};
//!
//! # async fn run() -> Result<(), mia_claude::ClaudeError> {
//! let mut tools = ToolRegistry::new();
//! tools.register(
//!     "segment_size",
//!     "How many consenting contacts a segment has.",
//!     json!({
//!         "type": "object",
//!         "properties": {"segment": {"type": "string", "enum": ["vip", "new"]}},
//!         "required": ["segment"],
//!         "additionalProperties": false
//!     }),
//!     |input: Value| async move { Ok(format!("412 in {}", input["segment"])) },
//! )?;
//! let error = tools.call("segment_size", json!({"segment": "all"})).await.unwrap_err();
//! assert_eq!(
//!     error.to_string(),
//!     "invalid input for tool segment_size: /segment: expected one of \"vip\", \"new\", got \"all\""
//! );
//! # Ok(()) }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::future::join_all;
use mia_core::schema::{self, Schema};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::client::ClaudeClient;
use crate::error::{ClaudeError, Result};
use crate::wire::{
    ContentBlock, InputMessage, MessagesRequest, MessagesResponse, StopReason, Tool, Usage,
};

/// A tool's failure. The model sees the message in a `tool_result` with `is_error: true`
/// and may try again, so say what was wrong with the input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ToolError(pub String);

impl ToolError {
    /// A failure with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// The future a tool handler returns.
pub type ToolFuture = Pin<Box<dyn Future<Output = std::result::Result<String, ToolError>> + Send>>;

type Handler = Arc<dyn Fn(Value) -> ToolFuture + Send + Sync>;

/// Tools the host offers the model: a definition (name, description, JSON Schema) and an
/// async handler each.
#[derive(Clone, Default)]
pub struct ToolRegistry {
    tools: Vec<(Tool, Handler)>,
}

impl std::fmt::Debug for ToolRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.tools.iter().map(|(t, _)| &t.name))
            .finish()
    }
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl ToolRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a tool whose handler takes the raw JSON input. The schema is compiled now;
    /// each input is checked to be a JSON object that satisfies it before the handler runs,
    /// and input that does not becomes a tool error (`invalid input for tool NAME: /path:
    /// reason; ...`) the model sees.
    ///
    /// # Errors
    /// [`ClaudeError::Tools`] for a name outside `^[a-zA-Z0-9_-]{1,64}$`, a name already
    /// registered, a schema that is not an object schema, or a schema that does not compile
    /// (an unknown or unsupported keyword, a keyword of the wrong shape; the reason is in
    /// the message).
    pub fn register<F, Fut>(
        &mut self,
        name: &str,
        description: &str,
        input_schema: Value,
        handler: F,
    ) -> Result<&mut Self>
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<String, ToolError>> + Send + 'static,
    {
        if !valid_name(name) {
            return Err(ClaudeError::Tools(format!(
                "tool name {name:?} must match ^[a-zA-Z0-9_-]{{1,64}}$"
            )));
        }
        if self.tools.iter().any(|(t, _)| t.name == name) {
            return Err(ClaudeError::Tools(format!(
                "tool {name} is registered twice"
            )));
        }
        if input_schema.get("type").and_then(Value::as_str) != Some("object") {
            return Err(ClaudeError::Tools(format!(
                "tool {name}: the input schema must be {{\"type\": \"object\", ...}}"
            )));
        }
        let compiled = Schema::compile(&input_schema).map_err(|e| {
            ClaudeError::Tools(format!("tool {name}: the input schema is unusable: {e}"))
        })?;
        let handler = Arc::new(handler);
        let tool_name = name.to_owned();
        let wrapped: Handler = Arc::new(move |input: Value| {
            let refuse = |message: String| Box::pin(async move { Err(ToolError(message)) });
            if !input.is_object() {
                return refuse(format!(
                    "tool {tool_name}: the input must be a JSON object, got {input}"
                )) as ToolFuture;
            }
            if let Err(violations) = compiled.validate(&input) {
                return refuse(format!(
                    "invalid input for tool {tool_name}: {}",
                    schema::describe(&violations)
                ));
            }
            Box::pin(handler(input)) as ToolFuture
        });
        self.tools.push((
            Tool {
                name: name.to_owned(),
                description: Some(description.to_owned()).filter(|d| !d.is_empty()),
                input_schema,
                cache_control: None,
            },
            wrapped,
        ));
        Ok(self)
    }

    /// Registers a tool whose handler takes typed arguments, read from the input with serde
    /// after the schema check of [`register`](Self::register). Input that breaks the schema or
    /// does not fit `A` (a missing field, a wrong type) reaches the model as a tool error
    /// naming the problem, and the handler does not run.
    ///
    /// # Errors
    /// As [`register`](Self::register).
    pub fn register_typed<A, F, Fut>(
        &mut self,
        name: &str,
        description: &str,
        input_schema: Value,
        handler: F,
    ) -> Result<&mut Self>
    where
        A: DeserializeOwned + Send + 'static,
        F: Fn(A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<String, ToolError>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let tool_name = name.to_owned();
        self.register(name, description, input_schema, move |input: Value| {
            let handler = Arc::clone(&handler);
            let tool_name = tool_name.clone();
            async move {
                let args: A = serde_json::from_value(input)
                    .map_err(|e| ToolError(format!("invalid input for tool {tool_name}: {e}")))?;
                handler(args).await
            }
        })
    }

    /// The definitions to send to the API.
    pub fn definitions(&self) -> Vec<Tool> {
        self.tools.iter().map(|(t, _)| t.clone()).collect()
    }

    /// Runs the tool `name` on `input`.
    ///
    /// # Errors
    /// A [`ToolError`] from the handler, or for an unknown tool.
    pub async fn call(&self, name: &str, input: Value) -> std::result::Result<String, ToolError> {
        match self.tools.iter().find(|(t, _)| t.name == name) {
            Some((_, handler)) => handler(input).await,
            None => Err(ToolError(format!("there is no tool named {name}"))),
        }
    }
}

/// What a hook tells the loop after a turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TurnControl {
    /// Go on.
    Continue,
    /// End the loop now, with this turn's response.
    Stop,
}

/// Observes (and may stop) each turn of a [`ToolLoop`]. Every method has a default that does
/// nothing, so an implementor writes only what it cares about.
pub trait TurnHook: Send + Sync {
    /// The model answered turn `turn` (from 1). Return [`TurnControl::Stop`] to end the loop
    /// before any of its tool calls run.
    fn on_response(&self, turn: u32, response: &MessagesResponse) -> TurnControl {
        let _ = (turn, response);
        TurnControl::Continue
    }

    /// A tool call of turn `turn` finished.
    fn on_tool_result(
        &self,
        turn: u32,
        name: &str,
        input: &Value,
        result: &std::result::Result<String, ToolError>,
    ) {
        let _ = (turn, name, input, result);
    }
}

/// Why a tool loop ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoopEnd {
    /// The model ended its turn without calling a tool (`end_turn`, `max_tokens`,
    /// `stop_sequence`, `refusal`, ...).
    Finished,
    /// The turn budget was spent while the model still wanted to go on.
    TurnLimit,
    /// A hook stopped it.
    Stopped,
}

/// The result of a tool loop.
#[derive(Clone, Debug, PartialEq)]
pub struct LoopOutcome {
    /// Why it ended.
    pub end: LoopEnd,
    /// The model's last response.
    pub response: MessagesResponse,
    /// The whole conversation, the last response included.
    pub messages: Vec<InputMessage>,
    /// Requests made to the model.
    pub turns: u32,
    /// Usage summed over the turns.
    pub usage: Usage,
}

/// Runs a conversation with tools: each `tool_use` is answered with a `tool_result` (with
/// `is_error` when the tool failed or its input was malformed), `pause_turn` is continued by
/// sending the turn back, and the loop stops at the turn budget.
///
/// A forced `tool_choice` (`tool` or `any`) is kept on every turn; use `auto` when the
/// model should be able to finish with text.
pub struct ToolLoop<'a> {
    client: &'a ClaudeClient,
    tools: &'a ToolRegistry,
    max_turns: u32,
    hook: Option<&'a dyn TurnHook>,
}

impl std::fmt::Debug for ToolLoop<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolLoop")
            .field("tools", self.tools)
            .field("max_turns", &self.max_turns)
            .finish_non_exhaustive()
    }
}

impl<'a> ToolLoop<'a> {
    /// A loop over `client` with `tools`, at most 8 turns.
    pub fn new(client: &'a ClaudeClient, tools: &'a ToolRegistry) -> Self {
        Self {
            client,
            tools,
            max_turns: 8,
            hook: None,
        }
    }

    /// The most requests the loop makes to the model.
    #[must_use]
    pub fn max_turns(mut self, turns: u32) -> Self {
        self.max_turns = turns.max(1);
        self
    }

    /// A hook that sees every turn.
    #[must_use]
    pub fn hook(mut self, hook: &'a dyn TurnHook) -> Self {
        self.hook = Some(hook);
        self
    }

    /// Runs the loop from `request`; the registry's tools are added to the request's own.
    ///
    /// # Errors
    /// Any error of [`ClaudeClient::messages`]; tool failures are not errors, they go back to
    /// the model.
    pub async fn run(&self, request: MessagesRequest) -> Result<LoopOutcome> {
        let mut request = request;
        for tool in self.tools.definitions() {
            if !request.tools.iter().any(|t| t.name == tool.name) {
                request.tools.push(tool);
            }
        }
        let mut usage = Usage::default();
        let mut turn = 0;
        loop {
            turn += 1;
            let response = self.client.messages(&request).await?;
            add_usage(&mut usage, &response.usage);
            request
                .messages
                .push(InputMessage::assistant(response.content.clone()));
            let end = |end, response, messages: &Vec<InputMessage>, usage: &Usage| LoopOutcome {
                end,
                response,
                messages: messages.clone(),
                turns: turn,
                usage: usage.clone(),
            };
            if self
                .hook
                .is_some_and(|h| h.on_response(turn, &response) == TurnControl::Stop)
            {
                return Ok(end(LoopEnd::Stopped, response, &request.messages, &usage));
            }
            match response.stop_reason {
                Some(StopReason::ToolUse) => {
                    let results = self.run_tools(turn, &response).await;
                    if results.is_empty() {
                        return Ok(end(LoopEnd::Finished, response, &request.messages, &usage));
                    }
                    request.messages.push(InputMessage::user(results));
                }
                // The server paused a long turn: sending it back lets the model go on.
                Some(StopReason::PauseTurn) => {}
                _ => return Ok(end(LoopEnd::Finished, response, &request.messages, &usage)),
            }
            if turn >= self.max_turns {
                return Ok(end(LoopEnd::TurnLimit, response, &request.messages, &usage));
            }
        }
    }

    async fn run_tools(&self, turn: u32, response: &MessagesResponse) -> Vec<ContentBlock> {
        let calls = response.tool_uses().map(|(id, name, input)| async move {
            let result = self.tools.call(name, input.clone()).await;
            if let Some(hook) = self.hook {
                hook.on_tool_result(turn, name, input, &result);
            }
            tracing::debug!(tool = name, ok = result.is_ok(), "mia.llm tool call");
            match result {
                Ok(text) => ContentBlock::tool_result(id, text, false),
                Err(e) => ContentBlock::tool_result(id, e.0, true),
            }
        });
        join_all(calls).await
    }
}

fn add_usage(total: &mut Usage, turn: &Usage) {
    let add = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
    };
    total.input_tokens = total.input_tokens.saturating_add(turn.input_tokens);
    total.output_tokens = total.output_tokens.saturating_add(turn.output_tokens);
    total.cache_creation_input_tokens = add(
        total.cache_creation_input_tokens,
        turn.cache_creation_input_tokens,
    );
    total.cache_read_input_tokens =
        add(total.cache_read_input_tokens, turn.cache_read_input_tokens);
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn typed_tools_turn_bad_input_into_a_tool_error() {
        #[derive(Deserialize)]
        struct Args {
            city: String,
        }
        let mut tools = ToolRegistry::new();
        tools
            .register_typed(
                "weather",
                "Weather in a city",
                json!({"type": "object"}),
                |a: Args| async move { Ok(format!("sunny in {}", a.city)) },
            )
            .unwrap();
        assert_eq!(
            tools
                .call("weather", json!({"city": "Oslo"}))
                .await
                .unwrap(),
            "sunny in Oslo"
        );
        let bad = tools
            .call("weather", json!({"town": "Oslo"}))
            .await
            .unwrap_err();
        assert!(bad.0.contains("missing field `city`"), "{bad}");
        let not_object = tools.call("weather", json!("Oslo")).await.unwrap_err();
        assert!(not_object.0.contains("JSON object"));
        assert!(tools.call("nope", json!({})).await.is_err());
    }

    #[tokio::test]
    async fn input_is_validated_against_the_schema_before_the_handler() {
        let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let seen = Arc::clone(&calls);
        let mut tools = ToolRegistry::new();
        tools
            .register(
                "send_offer",
                "",
                json!({
                    "type": "object",
                    "properties": {
                        "segment": {"type": "string", "minLength": 1},
                        "discount": {"type": "integer", "minimum": 5, "maximum": 50}
                    },
                    "required": ["segment", "discount"],
                    "additionalProperties": false
                }),
                move |_| {
                    seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    async { Ok("sent".to_owned()) }
                },
            )
            .unwrap();
        let bad = tools
            .call(
                "send_offer",
                json!({"segment": "", "discount": 80, "urgent": true}),
            )
            .await
            .unwrap_err();
        assert_eq!(
            bad.0,
            "invalid input for tool send_offer: /discount: expected at most 50, got 80; \
             /segment: expected at least 1 character, got 0; \
             /urgent: unexpected property; allowed properties are discount, segment"
        );
        let missing = tools.call("send_offer", json!({})).await.unwrap_err();
        assert!(
            missing
                .0
                .contains("(root): missing required property \"segment\""),
            "{missing}"
        );
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 0);
        let ok = tools
            .call("send_offer", json!({"segment": "vip", "discount": 20}))
            .await;
        assert_eq!(ok.unwrap(), "sent");
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn a_schema_that_does_not_compile_is_refused_at_registration() {
        let mut tools = ToolRegistry::new();
        let ok = |_: Value| async { Ok(String::new()) };
        let error = tools
            .register(
                "lookup",
                "",
                json!({"type": "object", "properties": {"email": {"type": "string", "format": "email"}}}),
                ok,
            )
            .unwrap_err();
        assert!(
            matches!(&error, ClaudeError::Tools(m) if m.contains("tool lookup") && m.contains("/properties/email/format") && m.contains("`format` is not supported")),
            "{error}"
        );
        let error = tools
            .register_typed(
                "lookup",
                "",
                json!({"type": "object", "requird": ["email"]}),
                |_: Value| async { Ok(String::new()) },
            )
            .unwrap_err();
        assert!(
            error.to_string().contains("unknown keyword `requird`"),
            "{error}"
        );
        assert!(tools.definitions().is_empty());
    }

    #[test]
    fn names_are_checked_and_unique() {
        let mut tools = ToolRegistry::new();
        let ok = |_: Value| async { Ok(String::new()) };
        assert!(
            tools
                .register("a b", "", json!({"type": "object"}), ok)
                .is_err()
        );
        assert!(
            tools
                .register("a", "", json!({"type": "string"}), ok)
                .is_err()
        );
        tools
            .register("a", "", json!({"type": "object"}), ok)
            .unwrap();
        assert!(
            tools
                .register("a", "", json!({"type": "object"}), ok)
                .is_err()
        );
        assert_eq!(tools.definitions().len(), 1);
    }
}
