//! Keeping a conversation within a token budget, and the cacheable prefix stable.
//!
//! The prefix the API caches is tools, then system, then messages. [`ContextManager`] never
//! touches tools or system, so their cache entry survives trimming; it drops the oldest
//! turns, only at a user turn that opens a new exchange (never between a `tool_use` and its
//! `tool_result`), optionally keeping the first user message (the task).
//!
//! # Summarising instead of forgetting
//!
//! [`ContextManager::fit_summarizing`] is the opt-in alternative to dropping: the same whole
//! exchanges are cut, but a [`Summarizer`] first writes a short summary of them, which goes at
//! the start of the user turn where the kept conversation resumes, marked as a summary of
//! earlier conversation (see [`SUMMARY_HEADING`]). Roles still alternate, the conversation
//! still starts with a user turn, and a `tool_use` is never separated from its `tool_result`.
//! [`ClaudeSummarizer`] asks the model itself, with a small `max_tokens`. When no summary is
//! written, or the conversation with it does not fit, it falls back to plain dropping.
//!
//! ```no_run
//! use mia_claude::{ClaudeClient, ClaudeConfig, ClaudeSummarizer, ContextManager};
//! use mia_claude::wire::MessagesRequest;
//!
//! # async fn run(mut request: MessagesRequest) -> Result<(), mia_claude::ClaudeError> {
//! let client = ClaudeClient::new(ClaudeConfig::from_env()?)?;
//! let summarizer = ClaudeSummarizer::new(client.clone())
//!     .model("claude-haiku-4-5")
//!     .max_tokens(300);
//! let fitted = ContextManager::new(150_000)
//!     .keep_first_message(true)
//!     .fit_summarizing(&mut request, &summarizer)
//!     .await?;
//! if fitted.summarized {
//!     println!("{} old messages replaced by a summary", fitted.removed_messages);
//! }
//! let answer = client.messages(&request).await?;
//! # let _ = answer; Ok(()) }
//! ```

use std::sync::Arc;

use async_trait::async_trait;

use crate::budget::estimate_input_tokens;
use crate::client::ClaudeClient;
use crate::error::{ClaudeError, Result};
use crate::wire::{
    CacheControl, ContentBlock, InputMessage, MessagesRequest, Role, System, SystemBlock,
    ToolResultContent,
};

/// The first line of the text block that carries a summary of earlier conversation; a block
/// that starts with it is recognised as a summary (and summarised again, not kept, when the
/// conversation is cut once more).
pub const SUMMARY_HEADING: &str = "[Summary of the earlier conversation, shortened to fit the \
                                   context window. It records what was said; it is not a new \
                                   request.]";

/// What [`ContextManager::fit`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fitted {
    /// Messages removed from the conversation (with a summary: the messages it replaced).
    pub removed_messages: usize,
    /// The prompt's tokens after trimming (estimated, or counted by the API).
    pub prompt_tokens: u64,
    /// Whether a summary replaced the removed messages (only
    /// [`ContextManager::fit_summarizing`] writes one).
    pub summarized: bool,
}

/// Trims a conversation to a prompt-token budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContextManager {
    max_prompt_tokens: u64,
    keep_first: bool,
    summary_reserve: u64,
}

/// Writes the short summary that replaces the oldest turns in
/// [`ContextManager::fit_summarizing`].
#[async_trait]
pub trait Summarizer: Send + Sync {
    /// Summarises `dropped`: the oldest turns of a conversation, as whole exchanges (every
    /// `tool_use` with its `tool_result`; a summary written earlier may be among them). The
    /// answer should be a few sentences the model can continue from: facts, decisions, tool
    /// results that matter, open questions. An empty answer means "no summary": the turns are
    /// then dropped.
    ///
    /// # Errors
    /// Whatever stopped the summary; [`ContextManager::fit_summarizing`] returns it and leaves
    /// the conversation unchanged.
    async fn summarize(&self, dropped: &[InputMessage]) -> Result<String>;
}

#[async_trait]
impl<T: Summarizer + ?Sized> Summarizer for Arc<T> {
    async fn summarize(&self, dropped: &[InputMessage]) -> Result<String> {
        (**self).summarize(dropped).await
    }
}

#[async_trait]
impl<T: Summarizer + ?Sized> Summarizer for Box<T> {
    async fn summarize(&self, dropped: &[InputMessage]) -> Result<String> {
        (**self).summarize(dropped).await
    }
}

const SUMMARIZER_SYSTEM: &str = "You condense the earlier part of a conversation between a \
user and an AI assistant (with tool calls) so the assistant can continue without it. Keep \
facts, numbers, names, decisions, what tools returned and questions still open. Write plain \
sentences, no preamble, no headings, no more than the space allows.";

/// A [`Summarizer`] that asks Claude itself, through the host's [`ClaudeClient`] (so the
/// call is retried, budgeted and lands in the ledger like any other). The dropped turns go to
/// the model as a plain-text transcript, each block cut to 2,000 characters and the whole to
/// [`max_transcript_chars`](Self::max_transcript_chars).
#[derive(Clone, Debug)]
pub struct ClaudeSummarizer {
    client: ClaudeClient,
    model: String,
    max_tokens: u32,
    max_transcript_chars: usize,
}

impl ClaudeSummarizer {
    /// A summariser on the client's default model, with answers of at most 400 tokens from
    /// transcripts of at most 60,000 characters.
    pub fn new(client: ClaudeClient) -> Self {
        Self {
            client,
            model: String::new(),
            max_tokens: 400,
            max_transcript_chars: 60_000,
        }
    }

    /// The model that writes summaries (a small, fast one does well).
    #[must_use]
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = model.into();
        self
    }

    /// The most tokens of a summary. Keep it under the manager's
    /// [`summary_reserve_tokens`](ContextManager::summary_reserve_tokens).
    #[must_use]
    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = max_tokens.max(1);
        self
    }

    /// The most characters of transcript sent; a longer one keeps its beginning and its end.
    #[must_use]
    pub fn max_transcript_chars(mut self, chars: usize) -> Self {
        self.max_transcript_chars = chars.max(100);
        self
    }

    /// The request that asks for a summary of `dropped`.
    pub fn request(&self, dropped: &[InputMessage]) -> MessagesRequest {
        let words = self.max_tokens.saturating_mul(3) / 5;
        let prompt = format!(
            "<conversation>\n{}\n</conversation>\n\nSummarise the conversation above in at \
             most {words} words.",
            transcript(dropped, self.max_transcript_chars)
        );
        let mut request = MessagesRequest::new(self.model.clone(), self.max_tokens, prompt);
        request.system = Some(System::Text(SUMMARIZER_SYSTEM.to_owned()));
        request.temperature = Some(0.0);
        request
    }
}

#[async_trait]
impl Summarizer for ClaudeSummarizer {
    async fn summarize(&self, dropped: &[InputMessage]) -> Result<String> {
        let response = self.client.messages(&self.request(dropped)).await?;
        Ok(response.text().trim().to_owned())
    }
}

/// Cuts `text` to `max` characters, marking the cut.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(max).collect();
    short.push_str(" […]");
    short
}

/// The conversation as plain text, one line per block.
fn transcript(messages: &[InputMessage], max_chars: usize) -> String {
    const BLOCK_CHARS: usize = 2_000;
    let mut lines = Vec::new();
    for message in messages {
        let who = match message.role {
            Role::User => "User",
            Role::Assistant => "Assistant",
        };
        for block in &message.content {
            let line = match block {
                ContentBlock::Text { text, .. } => format!("{who}: {}", clip(text, BLOCK_CHARS)),
                ContentBlock::Image { .. } => format!("{who}: [an image]"),
                ContentBlock::ToolUse { name, input, .. } => format!(
                    "Assistant called tool {name} with {}",
                    clip(&input.to_string(), BLOCK_CHARS)
                ),
                ContentBlock::ToolResult {
                    content, is_error, ..
                } => {
                    let text = match content {
                        ToolResultContent::Text(text) => text.clone(),
                        ToolResultContent::Blocks(blocks) => blocks
                            .iter()
                            .filter_map(|b| match b {
                                ContentBlock::Text { text, .. } => Some(text.as_str()),
                                _ => None,
                            })
                            .collect::<Vec<_>>()
                            .join("\n"),
                    };
                    let failed = if *is_error == Some(true) {
                        " (error)"
                    } else {
                        ""
                    };
                    format!("Tool result{failed}: {}", clip(&text, BLOCK_CHARS))
                }
                // Reasoning and blocks this version does not know add nothing a summary needs.
                ContentBlock::Thinking { .. }
                | ContentBlock::RedactedThinking { .. }
                | ContentBlock::Unknown(_) => continue,
            };
            lines.push(line);
        }
    }
    let text = lines.join("\n");
    let total = text.chars().count();
    if total <= max_chars {
        return text;
    }
    // Keep the beginning (the task) and the end (the latest state).
    let half = max_chars / 2;
    let head: String = text.chars().take(half).collect();
    let tail: String = text.chars().skip(total - half).collect();
    format!(
        "{head}\n[… {} characters omitted …]\n{tail}",
        total - 2 * half
    )
}

fn summary_block(summary: &str) -> ContentBlock {
    ContentBlock::text(format!(
        "{SUMMARY_HEADING}\n<earlier_conversation_summary>\n{summary}\n</earlier_conversation_summary>"
    ))
}

fn is_summary(block: &ContentBlock) -> bool {
    matches!(block, ContentBlock::Text { text, .. } if text.starts_with(SUMMARY_HEADING))
}

/// Puts the summary at the start of the user turn at `at` (where the kept conversation
/// resumes) and, when a kept first user message precedes it, merges that turn into it, so
/// roles still alternate.
fn insert_summary(messages: &mut Vec<InputMessage>, at: usize, summary: &str) {
    let Some(resume) = messages.get_mut(at) else {
        messages.push(InputMessage::user(vec![summary_block(summary)]));
        return;
    };
    resume.content.insert(0, summary_block(summary));
    if at > 0 && messages[at - 1].role == Role::User {
        let resume = messages.remove(at);
        messages[at - 1].content.extend(resume.content);
    }
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
            summary_reserve: 600,
        }
    }

    /// The room (in estimated tokens) [`fit_summarizing`](Self::fit_summarizing) leaves for
    /// the summary when it chooses where to cut; 600 by default, enough for a 400-token
    /// summary by the deliberately high local estimate.
    #[must_use]
    pub fn summary_reserve_tokens(mut self, tokens: u64) -> Self {
        self.summary_reserve = tokens;
        self
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
                summarized: false,
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
                    summarized: false,
                });
            }
        }
        Err(self.too_large(estimate))
    }

    /// As [`fit`](Self::fit), but the exchanges cut are replaced by a summary `summarizer`
    /// writes: the earliest cut that leaves room for the summary
    /// ([`summary_reserve_tokens`](Self::summary_reserve_tokens)) is chosen, the summary goes
    /// at the start of the user turn where the kept conversation resumes (merged into the
    /// kept first message with [`keep_first_message`](Self::keep_first_message), so roles
    /// alternate), marked with [`SUMMARY_HEADING`]. A summary from an earlier fit is cut and
    /// summarised again like any other turn. Tools and system are untouched.
    ///
    /// Falls back to [`fit`](Self::fit) (plain dropping, `summarized: false`) when no cut
    /// leaves room for a summary, the summary is empty, or the conversation with it does not
    /// fit. A conversation that already fits is returned unchanged without a summary call.
    ///
    /// # Errors
    /// The summariser's error (the conversation is then unchanged), or as [`fit`](Self::fit).
    pub async fn fit_summarizing(
        &self,
        request: &mut MessagesRequest,
        summarizer: &dyn Summarizer,
    ) -> Result<Fitted> {
        let estimate = estimate_input_tokens(request);
        if estimate <= self.max_prompt_tokens {
            return Ok(Fitted {
                removed_messages: 0,
                prompt_tokens: estimate,
                summarized: false,
            });
        }
        let mut trimmed = request.clone();
        if self.keep_first {
            split_earlier_summary(&mut trimmed.messages);
        }
        let first = usize::from(self.keep_first);
        let room = self.max_prompt_tokens.saturating_sub(self.summary_reserve);
        let cut = self.cut_points(&trimmed.messages).into_iter().find(|&at| {
            let mut trial = trimmed.clone();
            trial.messages.drain(first..at);
            estimate_input_tokens(&trial) <= room
        });
        let Some(at) = cut else {
            tracing::debug!("mia.llm context: no room for a summary, dropping");
            return self.fit(request);
        };
        let summary = summarizer.summarize(&trimmed.messages[first..at]).await?;
        let summary = summary.trim();
        if summary.is_empty() {
            tracing::debug!("mia.llm context: empty summary, dropping");
            return self.fit(request);
        }
        let removed = trimmed.messages.drain(first..at).count();
        insert_summary(&mut trimmed.messages, first, summary);
        let tokens = estimate_input_tokens(&trimmed);
        if tokens > self.max_prompt_tokens {
            tracing::debug!(
                tokens,
                "mia.llm context: the summary does not fit, dropping"
            );
            return self.fit(request);
        }
        *request = trimmed;
        Ok(Fitted {
            removed_messages: removed,
            prompt_tokens: tokens,
            summarized: true,
        })
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
                    summarized: false,
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

/// Moves a summary merged into the kept first message (and what follows it) back into a
/// user turn of its own at index 1, so a new cut can summarise it again instead of keeping it
/// forever. The API reads consecutive user turns as one, so the meaning is unchanged.
fn split_earlier_summary(messages: &mut Vec<InputMessage>) {
    let Some(first) = messages.first_mut() else {
        return;
    };
    if first.role != Role::User {
        return;
    }
    if let Some(at) = first.content.iter().position(is_summary).filter(|&i| i > 0) {
        let rest = first.content.split_off(at);
        messages.insert(1, InputMessage::user(rest));
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

    /// Answers with a fixed text and records what it was asked to summarise.
    struct Fixed {
        answer: String,
        seen: std::sync::Mutex<Vec<Vec<InputMessage>>>,
    }

    impl Fixed {
        fn new(answer: &str) -> Self {
            Self {
                answer: answer.to_owned(),
                seen: std::sync::Mutex::new(Vec::new()),
            }
        }

        fn calls(&self) -> Vec<Vec<InputMessage>> {
            self.seen.lock().unwrap().clone()
        }
    }

    #[async_trait]
    impl Summarizer for Fixed {
        async fn summarize(&self, dropped: &[InputMessage]) -> Result<String> {
            self.seen.lock().unwrap().push(dropped.to_vec());
            Ok(self.answer.clone())
        }
    }

    fn alternates(messages: &[InputMessage]) -> bool {
        messages.first().is_some_and(|m| m.role == Role::User)
            && messages.windows(2).all(|w| w[0].role != w[1].role)
    }

    fn text_of(message: &InputMessage) -> String {
        message
            .content
            .iter()
            .filter_map(|b| match b {
                ContentBlock::Text { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("|")
    }

    #[tokio::test]
    async fn a_summary_replaces_the_dropped_exchanges() {
        let mut r = conversation();
        let before = estimate_input_tokens(&r);
        let summarizer = Fixed::new("The user asked for a lookup; it returned a long list.");
        let fitted = ContextManager::new(before - 1)
            .summary_reserve_tokens(40)
            .fit_summarizing(&mut r, &summarizer)
            .await
            .unwrap();
        assert!(fitted.summarized);
        assert_eq!(fitted.removed_messages, 4);
        assert!(fitted.prompt_tokens < before);
        assert_eq!(fitted.prompt_tokens, estimate_input_tokens(&r));
        let calls = summarizer.calls();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0], conversation().messages[..4].to_vec());
        assert_eq!(r.messages.len(), 3);
        assert!(alternates(&r.messages));
        assert!(is_summary(&r.messages[0].content[0]));
        assert!(
            text_of(&r.messages[0]).contains(
                "<earlier_conversation_summary>\nThe user asked for a lookup; it returned a long list.\n</earlier_conversation_summary>|second question"
            ),
            "{:?}",
            r.messages[0]
        );
    }

    #[tokio::test]
    async fn with_the_first_message_kept_the_summary_joins_it_and_is_summarised_again_later() {
        let mut r = conversation();
        let before = estimate_input_tokens(&r);
        let manager = ContextManager::new(before - 1)
            .keep_first_message(true)
            .summary_reserve_tokens(40);
        let fitted = manager
            .fit_summarizing(&mut r, &Fixed::new("first summary"))
            .await
            .unwrap();
        assert_eq!((fitted.summarized, fitted.removed_messages), (true, 3));
        assert!(alternates(&r.messages), "{:?}", r.messages);
        let first = text_of(&r.messages[0]);
        assert!(first.starts_with("TASK"), "{first}");
        assert!(first.contains("first summary"), "{first}");
        assert!(first.ends_with("second question"), "{first}");

        // The conversation goes on and must be cut again: the old summary is summarised,
        // not kept beside the task forever.
        for (long, question) in [("y", "fourth question"), ("z", "fifth question")] {
            r.messages
                .push(InputMessage::assistant(vec![ContentBlock::text(
                    long.repeat(900),
                )]));
            r.messages.push(InputMessage::user_text(question));
        }
        assert!(estimate_input_tokens(&r) > before);
        let second = Fixed::new("second summary");
        let fitted = manager.fit_summarizing(&mut r, &second).await.unwrap();
        assert!(fitted.summarized);
        let dropped = &second.calls()[0];
        assert!(dropped.iter().any(|m| m.content.iter().any(is_summary)));
        assert!(alternates(&r.messages), "{:?}", r.messages);
        let first = text_of(&r.messages[0]);
        assert!(first.starts_with("TASK"), "{first}");
        assert!(!first.contains("first summary"), "{first}");
        assert!(first.contains("second summary"), "{first}");
        assert_eq!(
            r.messages[0]
                .content
                .iter()
                .filter(|b| is_summary(b))
                .count(),
            1
        );
    }

    #[tokio::test]
    async fn without_room_or_text_for_a_summary_it_drops() {
        let before = estimate_input_tokens(&conversation());
        // A summary longer than the room it was given.
        let mut r = conversation();
        let fitted = ContextManager::new(before - 1)
            .summary_reserve_tokens(40)
            .fit_summarizing(&mut r, &Fixed::new(&"long ".repeat(400)))
            .await
            .unwrap();
        assert!(!fitted.summarized);
        assert_eq!(r.messages[0], InputMessage::user_text("second question"));
        // An empty summary.
        let mut r = conversation();
        let fitted = ContextManager::new(before - 1)
            .summary_reserve_tokens(40)
            .fit_summarizing(&mut r, &Fixed::new("  "))
            .await
            .unwrap();
        assert!(!fitted.summarized);
        // No cut leaves room for a summary: the summariser is not asked.
        let mut r = conversation();
        let never = Fixed::new("unused");
        let fitted = ContextManager::new(before - 1)
            .summary_reserve_tokens(before)
            .fit_summarizing(&mut r, &never)
            .await
            .unwrap();
        assert!(!fitted.summarized && never.calls().is_empty());
        // A conversation that fits is left alone.
        let mut r = conversation();
        let fitted = ContextManager::new(before)
            .fit_summarizing(&mut r, &never)
            .await
            .unwrap();
        assert_eq!((fitted.removed_messages, r), (0, conversation()));
        assert!(never.calls().is_empty());
    }

    #[test]
    fn the_transcript_names_every_turn_and_stays_short() {
        let text = transcript(&conversation().messages, 10_000);
        assert!(text.starts_with("User: TASK"), "{text}");
        assert!(
            text.contains("\nAssistant called tool lookup with {}\n"),
            "{text}"
        );
        assert!(text.contains("\nTool result: xxx"), "{text}");
        assert!(text.ends_with("\nUser: third question"), "{text}");
        let short = transcript(&conversation().messages, 200);
        assert!(short.contains("characters omitted"), "{short}");
        assert!(short.starts_with("User: TASK") && short.ends_with("third question"));
        assert!(short.chars().count() < 300);
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
