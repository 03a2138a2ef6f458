#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod budget;
mod capabilities;
mod client;
mod config;
mod context;
mod cost;
mod error;
mod ledger;
mod provider;
mod retry;
pub mod sse;
mod stream;
mod template;
mod tools;
pub mod wire;

pub use budget::{BudgetGuard, BudgetStatus, Reservation, estimate_input_tokens};
pub use capabilities::{ModelCapabilities, capabilities, check_request};
pub use client::{CallReport, ClaudeClient, ClaudeClientBuilder};
pub use config::{
    ANTHROPIC_VERSION, ApiKey, ClaudeConfig, ClaudeConfigBuilder, DEFAULT_BASE_URL, DEFAULT_MODEL,
};
pub use context::{
    ClaudeSummarizer, ContextManager, Fitted, SUMMARY_HEADING, Summarizer, mark_cacheable_prefix,
};
pub use cost::{Cost, CostBreakdown, ModelPrice, PriceTable, Rates};
pub use error::{ApiErrorType, ClaudeError, Result};
pub use ledger::{CallRecord, CostLedger, Scope, Totals};
pub use provider::{to_completion, to_core_stop_reason, to_wire_request};
pub use retry::RetryPolicy;
pub use stream::{MessageAccumulator, MessageStream, parse_event};
pub use template::{PromptTemplate, RenderedPrompt, escape_xml_text};
pub use tools::{
    LoopEnd, LoopOutcome, ToolError, ToolFuture, ToolLoop, ToolRegistry, TurnControl, TurnHook,
};
