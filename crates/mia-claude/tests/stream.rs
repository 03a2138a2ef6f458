//! Streaming: a realistic event sequence (text and two parallel tool calls) chunked at odd
//! byte boundaries assembles into the non-streaming answer; cut streams, in-band errors and
//! malformed tool JSON are errors, never partial successes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use futures_util::StreamExt;
use mia_claude::sse::SseDecoder;
use mia_claude::wire::{MessagesRequest, MessagesResponse, StreamEvent};
use mia_claude::{ClaudeError, MessageAccumulator, parse_event};
use wiremock::matchers::{body_partial_json, header, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn weather() -> MessagesRequest {
    MessagesRequest::new(
        "claude-sonnet-4-5",
        1024,
        "Weather in San Francisco and Zürich?",
    )
}

fn expected() -> MessagesResponse {
    serde_json::from_value(weather_response()).unwrap()
}

fn assemble(chunks: &[Vec<u8>]) -> mia_claude::Result<MessagesResponse> {
    let mut decoder = SseDecoder::new();
    let mut acc = MessageAccumulator::new();
    let mut frames = Vec::new();
    for chunk in chunks {
        decoder.feed(chunk, &mut frames);
        for frame in frames.drain(..) {
            acc.apply(&parse_event(&frame)?)?;
        }
    }
    decoder.finish();
    acc.finish()
}

#[test]
fn every_chunking_of_the_stream_assembles_the_same_message() {
    let bytes = WEATHER_SSE.as_bytes();
    for size in [1, 2, 3, 5, 7, 13, 64, 1000, bytes.len()] {
        let chunks = odd_chunks(bytes, &[size]);
        assert_eq!(
            assemble(&chunks).unwrap(),
            expected(),
            "chunks of {size} bytes"
        );
    }
    // Uneven sizes split the multi-byte characters (—, ☀️, ü) at every offset somewhere.
    let chunks = odd_chunks(bytes, &[1, 4, 2, 9, 3, 17, 5]);
    assert_eq!(assemble(&chunks).unwrap(), expected());
    let crlf = WEATHER_SSE.replace('\n', "\r\n");
    let chunks = odd_chunks(crlf.as_bytes(), &[3, 1, 7]);
    assert_eq!(assemble(&chunks).unwrap(), expected(), "CRLF line endings");
}

#[tokio::test]
async fn a_stream_over_http_in_odd_chunks_equals_the_json_answer() {
    let chunks = odd_chunks(WEATHER_SSE.as_bytes(), &[7, 1, 31, 2, 113, 3]);
    let (url, served) = chunked_server(chunks, false).await;
    let client = client(&url);
    let mut stream = client.stream(&weather()).await.unwrap();
    assert_eq!(stream.request_id(), Some("req_chunked_1"));
    let mut events = Vec::new();
    while let Some(event) = stream.next().await {
        events.push(event.unwrap());
    }
    assert!(matches!(
        events.first(),
        Some(StreamEvent::MessageStart { .. })
    ));
    assert!(matches!(events.last(), Some(StreamEvent::MessageStop)));
    assert!(events.iter().any(|e| matches!(e, StreamEvent::Ping)));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, StreamEvent::Unknown(v) if v["type"] == "future_event")),
        "unknown events are kept"
    );
    drop(stream);

    let message = client
        .stream(&weather())
        .await
        .unwrap()
        .final_message()
        .await
        .unwrap();
    assert_eq!(message, expected());
    let calls: Vec<_> = message
        .tool_uses()
        .map(|(id, _, input)| (id, input["location"].clone()))
        .collect();
    assert_eq!(calls.len(), 2, "parallel tool calls stay separate");
    assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 2);
    let totals = client.ledger().total();
    assert_eq!(
        (totals.calls, totals.failed_calls),
        (2, 0),
        "streams are in the ledger"
    );
    assert_eq!(
        totals.output_tokens,
        2 * 89,
        "with their final, cumulative usage"
    );
}

#[tokio::test]
async fn the_stream_request_asks_for_events() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header("accept", "text/event-stream"))
        .and(body_partial_json(serde_json::json!({"stream": true})))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/event-stream")
                .set_body_raw(WEATHER_SSE.as_bytes().to_vec(), "text/event-stream"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let message = client(&server.uri())
        .stream(&weather())
        .await
        .unwrap()
        .final_message()
        .await
        .unwrap();
    assert_eq!(message, expected());
}

#[tokio::test]
async fn a_connection_cut_before_message_stop_is_an_error() {
    let cut_at = WEATHER_SSE.find("event: message_delta").unwrap();
    let chunks = odd_chunks(&WEATHER_SSE.as_bytes()[..cut_at], &[50]);
    let (url, _) = chunked_server(chunks, true).await;
    let client = client(&url);
    let err = client
        .stream(&weather())
        .await
        .unwrap()
        .final_message()
        .await
        .unwrap_err();
    assert!(matches!(err, ClaudeError::Stream { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(client.ledger().total().failed_calls, 1);
}

#[tokio::test]
async fn a_body_that_ends_cleanly_without_message_stop_is_an_error() {
    let server = MockServer::start().await;
    let cut_at = WEATHER_SSE.find("event: message_stop").unwrap();
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            WEATHER_SSE.as_bytes()[..cut_at].to_vec(),
            "text/event-stream",
        ))
        .mount(&server)
        .await;
    let err = client(&server.uri())
        .stream(&weather())
        .await
        .unwrap()
        .final_message()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClaudeError::Stream { message, .. } if message.contains("message_stop")),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_in_band_error_ends_the_stream_with_its_type() {
    let server = MockServer::start().await;
    let cut_at = WEATHER_SSE.find("event: content_block_start").unwrap();
    let body = format!(
        "{}event: error\ndata: {{\"type\": \"error\", \"error\": {{\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}}}\n\n",
        &WEATHER_SSE[..cut_at]
    );
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(body.into_bytes(), "text/event-stream"),
        )
        .mount(&server)
        .await;
    let mut stream = client(&server.uri()).stream(&weather()).await.unwrap();
    assert!(matches!(
        stream.next().await,
        Some(Ok(StreamEvent::MessageStart { .. }))
    ));
    let err = stream.next().await.unwrap().unwrap_err();
    assert!(
        matches!(
            &err,
            ClaudeError::Stream {
                error_type: Some(mia_claude::ApiErrorType::Overloaded),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert!(stream.next().await.is_none(), "nothing after the error");
}

#[tokio::test]
async fn malformed_tool_json_in_a_stream_is_an_error() {
    let server = MockServer::start().await;
    let body = WEATHER_SSE.replace("ncisco, CA\\\", \\\"unit", "ncisco, CA\\\",, \\\"unit");
    assert_ne!(body, WEATHER_SSE, "the test corrupts the JSON");
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(body.into_bytes(), "text/event-stream"),
        )
        .mount(&server)
        .await;
    let err = client(&server.uri())
        .stream(&weather())
        .await
        .unwrap()
        .final_message()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClaudeError::Stream { message, .. } if message.contains("malformed JSON")),
        "{err:?}"
    );
}

#[tokio::test]
async fn opening_a_stream_is_retried_like_a_call() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(529).set_body_json(error_body(
            "overloaded_error",
            "Overloaded",
            "r",
        )))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(WEATHER_SSE.as_bytes().to_vec(), "text/event-stream"),
        )
        .mount(&server)
        .await;
    let stream = client(&server.uri()).stream(&weather()).await.unwrap();
    assert_eq!(stream.attempts(), 2);
    assert_eq!(stream.final_message().await.unwrap(), expected());
}

#[test]
fn a_known_event_with_a_missing_field_is_an_error_not_an_unknown_event() {
    let frame = mia_claude::sse::SseEvent {
        event: "content_block_delta".into(),
        data: r#"{"type":"content_block_delta","delta":{"type":"text_delta","text":"lost?"}}"#
            .into(),
        ..Default::default()
    };
    assert!(matches!(
        parse_event(&frame),
        Err(ClaudeError::Stream { .. })
    ));
    let mut acc = MessageAccumulator::new();
    let start: StreamEvent = serde_json::from_str(
        r#"{"type":"message_start","message":{"id":"m","type":"message","role":"assistant","model":"x","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":1,"output_tokens":1}}}"#,
    )
    .unwrap();
    acc.apply(&start).unwrap();
    let block: StreamEvent = serde_json::from_str(
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
    )
    .unwrap();
    acc.apply(&block).unwrap();
    let bad_delta: StreamEvent = serde_json::from_str(
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","txt":"typo"}}"#,
    )
    .unwrap();
    assert!(
        acc.apply(&bad_delta).is_err(),
        "a malformed text delta is not skipped"
    );
}
