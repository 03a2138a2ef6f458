//! Streamed responses: the events of one message assembled into the same
//! [`MessagesResponse`] the non-streaming call returns.

use std::collections::{BTreeMap, VecDeque};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde_json::Value;

use crate::error::{ApiErrorType, ClaudeError, Result};
use crate::sse::{SseDecoder, SseEvent};
use crate::wire::{BlockDelta, ContentBlock, MessagesResponse, StreamEvent};

const KNOWN_DELTAS: [&str; 5] = [
    "text_delta",
    "input_json_delta",
    "thinking_delta",
    "signature_delta",
    "citations_delta",
];

#[derive(Debug)]
struct OpenBlock {
    block: ContentBlock,
    json: String,
    closed: bool,
}

fn stream_error(message: impl Into<String>) -> ClaudeError {
    ClaudeError::Stream {
        message: message.into(),
        error_type: None,
    }
}

/// Builds a message from its stream events.
///
/// Text deltas are appended; `input_json_delta` pieces are concatenated per block and parsed
/// when the block stops (an empty input is `{}`); `message_delta` usage is cumulative. The
/// message is complete only after `message_stop`: [`finish`](Self::finish) refuses anything
/// less, and an in-band `error` event is an error at once.
#[derive(Debug, Default)]
pub struct MessageAccumulator {
    message: Option<MessagesResponse>,
    blocks: BTreeMap<usize, OpenBlock>,
    stopped: bool,
}

impl MessageAccumulator {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `message_stop` arrived.
    pub fn is_complete(&self) -> bool {
        self.stopped
    }

    fn block(&mut self, index: usize) -> Result<&mut OpenBlock> {
        match self.blocks.get_mut(&index) {
            Some(b) if !b.closed => Ok(b),
            Some(_) => Err(stream_error(format!(
                "content block {index} got a delta after content_block_stop"
            ))),
            None => Err(stream_error(format!(
                "content block {index} got a delta before content_block_start"
            ))),
        }
    }

    /// Applies one event.
    ///
    /// # Errors
    /// [`ClaudeError::Stream`] for an in-band error event, events out of order, a delta that
    /// does not fit its block, or tool input that is not valid JSON.
    pub fn apply(&mut self, event: &StreamEvent) -> Result<()> {
        if self.stopped {
            return Ok(()); // nothing may change a finished message
        }
        match event {
            StreamEvent::MessageStart { message } => {
                if self.message.is_some() {
                    return Err(stream_error("a second message_start"));
                }
                let mut message = message.clone();
                for (index, block) in std::mem::take(&mut message.content).into_iter().enumerate() {
                    self.blocks.insert(
                        index,
                        OpenBlock {
                            block,
                            json: String::new(),
                            closed: true,
                        },
                    );
                }
                self.message = Some(message);
            }
            StreamEvent::ContentBlockStart {
                index,
                content_block,
            } => {
                if self.message.is_none() {
                    return Err(stream_error("content_block_start before message_start"));
                }
                if self.blocks.contains_key(index) {
                    return Err(stream_error(format!("content block {index} started twice")));
                }
                self.blocks.insert(
                    *index,
                    OpenBlock {
                        block: content_block.clone(),
                        json: String::new(),
                        closed: false,
                    },
                );
            }
            StreamEvent::ContentBlockDelta { index, delta } => {
                let open = self.block(*index)?;
                match (&mut open.block, delta) {
                    (ContentBlock::Text { text, .. }, BlockDelta::TextDelta { text: more }) => {
                        text.push_str(more);
                    }
                    (
                        ContentBlock::Text { citations, .. },
                        BlockDelta::CitationsDelta { citation },
                    ) => {
                        citations
                            .get_or_insert_with(Vec::new)
                            .push(citation.clone());
                    }
                    (
                        ContentBlock::ToolUse { .. } | ContentBlock::Unknown(_),
                        BlockDelta::InputJsonDelta { partial_json },
                    ) => open.json.push_str(partial_json),
                    (
                        ContentBlock::Thinking { thinking, .. },
                        BlockDelta::ThinkingDelta { thinking: more },
                    ) => {
                        thinking.push_str(more);
                    }
                    (
                        ContentBlock::Thinking { signature, .. },
                        BlockDelta::SignatureDelta { signature: s },
                    ) => {
                        signature.push_str(s);
                    }
                    (_, BlockDelta::Unknown(v))
                        if v["type"]
                            .as_str()
                            .is_some_and(|t| KNOWN_DELTAS.contains(&t)) =>
                    {
                        return Err(stream_error(format!(
                            "content block {index} got a malformed delta: {v}"
                        )));
                    }
                    (_, BlockDelta::Unknown(_)) | (ContentBlock::Unknown(_), _) => {}
                    (_, other) => {
                        return Err(stream_error(format!(
                            "content block {index} got a delta of another kind: {other:?}"
                        )));
                    }
                }
            }
            StreamEvent::ContentBlockStop { index } => {
                let open = self.block(*index)?;
                open.closed = true;
                let json = std::mem::take(&mut open.json);
                match &mut open.block {
                    ContentBlock::ToolUse { input, name, .. } => {
                        if !json.is_empty() {
                            *input = parse_input(&json, *index, name)?;
                        } else if input.is_null() {
                            *input = Value::Object(Default::default());
                        }
                    }
                    ContentBlock::Unknown(Value::Object(map)) if !json.is_empty() => {
                        let input = parse_input(&json, *index, "server tool")?;
                        map.insert("input".into(), input);
                    }
                    _ => {}
                }
            }
            StreamEvent::MessageDelta { delta, usage } => {
                let message = self
                    .message
                    .as_mut()
                    .ok_or_else(|| stream_error("message_delta before message_start"))?;
                if delta.stop_reason.is_some() {
                    message.stop_reason.clone_from(&delta.stop_reason);
                }
                if delta.stop_sequence.is_some() {
                    message.stop_sequence.clone_from(&delta.stop_sequence);
                }
                message.usage.apply_delta(usage);
            }
            StreamEvent::MessageStop => {
                if self.message.is_none() {
                    return Err(stream_error("message_stop before message_start"));
                }
                if let Some((index, _)) = self.blocks.iter().find(|(_, b)| !b.closed) {
                    return Err(stream_error(format!(
                        "message_stop while content block {index} is open"
                    )));
                }
                self.stopped = true;
            }
            StreamEvent::Error { error } => {
                return Err(ClaudeError::Stream {
                    message: format!("in-band {}: {}", error.error_type, error.message),
                    error_type: Some(ApiErrorType::parse(&error.error_type)),
                });
            }
            StreamEvent::Ping | StreamEvent::Unknown(_) => {}
        }
        Ok(())
    }

    /// The complete message.
    ///
    /// # Errors
    /// [`ClaudeError::Stream`] when `message_stop` never came: a partial message is never
    /// a success.
    pub fn finish(self) -> Result<MessagesResponse> {
        if !self.stopped {
            return Err(stream_error("the stream ended before message_stop"));
        }
        let mut message = self
            .message
            .ok_or_else(|| stream_error("the stream carried no message"))?;
        message.content = self.blocks.into_values().map(|b| b.block).collect();
        Ok(message)
    }
}

fn parse_input(json: &str, index: usize, name: &str) -> Result<Value> {
    serde_json::from_str(json).map_err(|e| {
        stream_error(format!(
            "content block {index} ({name}) carries malformed JSON input: {e}"
        ))
    })
}

/// Reads one SSE frame as a stream event. Frames of unknown event names whose data is not
/// JSON are kept as [`StreamEvent::Unknown`].
///
/// # Errors
/// [`ClaudeError::Decode`] when a known event's data is not the JSON it should be.
pub fn parse_event(frame: &SseEvent) -> Result<StreamEvent> {
    const KNOWN: [&str; 8] = [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "ping",
        "error",
    ];
    match serde_json::from_str::<StreamEvent>(&frame.data) {
        // The open enum would keep a known event with a missing field as unknown, and its
        // content would be lost quietly: it is an error instead.
        Ok(StreamEvent::Unknown(v)) if v["type"].as_str().is_some_and(|t| KNOWN.contains(&t)) => {
            Err(stream_error(format!(
                "a malformed {} event: {}",
                v["type"].as_str().unwrap_or_default(),
                frame.data
            )))
        }
        Ok(event) => Ok(event),
        Err(source) => {
            if KNOWN.contains(&frame.event.as_str()) {
                Err(ClaudeError::Decode {
                    context: format!("stream event {}", frame.event),
                    source,
                })
            } else {
                Ok(StreamEvent::Unknown(serde_json::json!({
                    "event": frame.event,
                    "data": frame.data,
                })))
            }
        }
    }
}

/// Called once when a stream ends, with the message or the error.
pub(crate) type Finisher =
    Box<dyn FnOnce(std::result::Result<&MessagesResponse, &ClaudeError>) + Send>;

type Body = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// A streamed response: a [`Stream`] of [`StreamEvent`]s, and
/// [`final_message`](Self::final_message) for the assembled message.
///
/// The stream ends with an error, never quietly, when the body stops before `message_stop`,
/// carries an in-band error, or outlives the call's deadline.
pub struct MessageStream {
    body: Body,
    decoder: SseDecoder,
    frames: Vec<SseEvent>,
    pending: VecDeque<StreamEvent>,
    failure: Option<ClaudeError>,
    accumulator: MessageAccumulator,
    final_message: Option<MessagesResponse>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    deadline_length: Duration,
    attempts: u32,
    request_id: Option<String>,
    finisher: Option<Finisher>,
    done: bool,
}

impl std::fmt::Debug for MessageStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageStream")
            .field("request_id", &self.request_id)
            .field("attempts", &self.attempts)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl MessageStream {
    pub(crate) fn new(
        body: impl Stream<Item = reqwest::Result<Bytes>> + Send + 'static,
        deadline: tokio::time::Instant,
        deadline_length: Duration,
        attempts: u32,
        request_id: Option<String>,
        finisher: Option<Finisher>,
    ) -> Self {
        Self {
            body: Box::pin(body),
            decoder: SseDecoder::new(),
            frames: Vec::new(),
            pending: VecDeque::new(),
            failure: None,
            accumulator: MessageAccumulator::new(),
            final_message: None,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            deadline_length,
            attempts,
            request_id,
            finisher,
            done: false,
        }
    }

    /// The request id of the answer (`request-id` header).
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// HTTP requests made to open the stream, retries included.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Reads the rest of the stream and returns the assembled message, equal to what the
    /// non-streaming call returns.
    ///
    /// # Errors
    /// Every error the stream yields: [`ClaudeError::Stream`] (cut before `message_stop`,
    /// in-band error, malformed tool input), [`ClaudeError::Decode`],
    /// [`ClaudeError::Deadline`].
    pub async fn final_message(mut self) -> Result<MessagesResponse> {
        while let Some(event) = self.next().await {
            event?;
        }
        self.final_message
            .take()
            .ok_or_else(|| stream_error("the stream ended before message_stop"))
    }

    fn fail(&mut self, error: ClaudeError) -> ClaudeError {
        self.done = true;
        self.pending.clear();
        if let Some(finish) = self.finisher.take() {
            finish(Err(&error));
        }
        error
    }

    fn complete(&mut self) -> Option<ClaudeError> {
        self.done = true;
        self.decoder.finish();
        match std::mem::take(&mut self.accumulator).finish() {
            Ok(message) => {
                if let Some(finish) = self.finisher.take() {
                    finish(Ok(&message));
                }
                self.final_message = Some(message);
                None
            }
            Err(e) => Some(self.fail(e)),
        }
    }

    fn absorb(&mut self, chunk: &[u8]) {
        self.decoder.feed(chunk, &mut self.frames);
        for frame in std::mem::take(&mut self.frames) {
            let applied = parse_event(&frame).and_then(|event| {
                self.accumulator.apply(&event)?;
                Ok(event)
            });
            match applied {
                Ok(event) => self.pending.push_back(event),
                Err(e) => {
                    // Events before the failure are still delivered, then the error.
                    self.failure = Some(e);
                    return;
                }
            }
        }
    }
}

impl Stream for MessageStream {
    type Item = Result<StreamEvent>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(event) = this.pending.pop_front() {
                return Poll::Ready(Some(Ok(event)));
            }
            if let Some(error) = this.failure.take() {
                return Poll::Ready(Some(Err(this.fail(error))));
            }
            if this.done {
                return Poll::Ready(None);
            }
            if this.deadline.as_mut().poll(cx).is_ready() {
                let error = ClaudeError::Deadline {
                    deadline: this.deadline_length,
                    attempts: this.attempts,
                };
                return Poll::Ready(Some(Err(this.fail(error))));
            }
            match this.body.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => this.absorb(&chunk),
                Poll::Ready(Some(Err(e))) => {
                    let error = stream_error(format!("the connection broke mid-stream: {e}"));
                    return Poll::Ready(Some(Err(this.fail(error))));
                }
                Poll::Ready(None) => {
                    if let Some(error) = this.complete() {
                        return Poll::Ready(Some(Err(error)));
                    }
                }
            }
        }
    }
}

impl Drop for MessageStream {
    fn drop(&mut self) {
        // A stream dropped before its end is a call that did not succeed: the ledger hears
        // of it and its budget reservation is released.
        if let Some(finish) = self.finisher.take() {
            finish(Err(&stream_error("the stream was dropped before its end")));
        }
    }
}
