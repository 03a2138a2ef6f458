//! Wire types against JSON in the exact shape of the Messages API: requests and responses
//! round-trip unchanged, unknown blocks, deltas, events and stop reasons are kept.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mia_claude::wire::{
    CacheControl, CacheTtl, ContentBlock, ImageSource, MessagesRequest, MessagesResponse,
    StopReason, StreamEvent, System, SystemBlock, ToolChoice, ToolResultContent,
};
use serde_json::{Value, json};

fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(value: &Value) -> T {
    let typed: T = serde_json::from_value(value.clone()).unwrap();
    assert_eq!(
        &serde_json::to_value(&typed).unwrap(),
        value,
        "round trip changes nothing"
    );
    typed
}

#[test]
fn a_full_request_round_trips() {
    let request = json!({
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 1024,
        "messages": [
            {"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/shirt.jpg"}},
                {"type": "text", "text": "Describe the shirt.", "cache_control": {"type": "ephemeral"}}
            ]},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_01A", "name": "get_offer", "input": {"sku": "linen"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "20% off", "cache_control": {"type": "ephemeral", "ttl": "5m"}},
                {"type": "tool_result", "tool_use_id": "toolu_01B", "content": [{"type": "text", "text": "failed"}], "is_error": true}
            ]}
        ],
        "system": [
            {"type": "text", "text": "You write marketing copy.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
        ],
        "tools": [{
            "name": "get_offer",
            "description": "The running offer for a product.",
            "input_schema": {"type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"]},
            "cache_control": {"type": "ephemeral"}
        }],
        "tool_choice": {"type": "tool", "name": "get_offer", "disable_parallel_tool_use": true},
        "stop_sequences": ["\n\nHuman:"],
        "temperature": 0.5,
        "metadata": {"user_id": "3f1a9c0e"},
        "stream": true
    });
    let r: MessagesRequest = round_trip(&request);
    assert!(matches!(
        &r.system,
        Some(System::Blocks(b)) if matches!(&b[0], SystemBlock::Text { cache_control: Some(CacheControl::Ephemeral { ttl: Some(CacheTtl::OneHour) }), .. })
    ));
    assert!(matches!(
        &r.messages[0].content[1],
        ContentBlock::Image { source: ImageSource::Url { url }, .. } if url.ends_with("shirt.jpg")
    ));
    assert!(matches!(
        &r.messages[2].content[1],
        ContentBlock::ToolResult {
            content: ToolResultContent::Blocks(_),
            is_error: Some(true),
            ..
        }
    ));
    for choice in [
        json!({"type": "auto"}),
        json!({"type": "any"}),
        json!({"type": "none"}),
    ] {
        round_trip::<ToolChoice>(&choice);
    }
}

#[test]
fn string_content_and_string_system_are_accepted() {
    let r: MessagesRequest = serde_json::from_value(json!({
        "model": "claude-haiku-4-5",
        "max_tokens": 10,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Hello"}]
    }))
    .unwrap();
    assert_eq!(r.system, Some(System::Text("Be brief.".into())));
    assert_eq!(r.messages[0].content, vec![ContentBlock::text("Hello")]);
    let built = MessagesRequest::new("claude-haiku-4-5", 10, "Hello");
    assert_eq!(
        serde_json::to_value(&built).unwrap(),
        json!({"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}]}),
        "empty options are left out"
    );
}

#[test]
fn a_response_with_cache_usage_round_trips() {
    let response = json!({
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": "claude-opus-4-1-20250805",
        "content": [
            {"type": "thinking", "thinking": "The user wants…", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3h"},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
            {"type": "text", "text": "Here is the copy.", "citations": [{"type": "char_location", "cited_text": "x", "document_index": 0, "start_char_index": 0, "end_char_index": 1}]},
            {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "submit_variants", "input": {"variants": [{"text": "Hi"}]}}
        ],
        "stop_reason": "tool_use",
        "stop_sequence": null,
        "usage": {
            "input_tokens": 2095,
            "output_tokens": 503,
            "cache_creation_input_tokens": 2051,
            "cache_read_input_tokens": 4102,
            "cache_creation": {"ephemeral_5m_input_tokens": 2051, "ephemeral_1h_input_tokens": 0},
            "service_tier": "standard"
        }
    });
    let r: MessagesResponse = round_trip(&response);
    assert_eq!(r.usage.prompt_tokens(), 2095 + 2051 + 4102);
    assert_eq!(r.usage.cache_writes(), (2051, 0));
    assert_eq!(r.tool_uses().count(), 1);
}

#[test]
fn unknown_blocks_stop_reasons_and_events_are_kept() {
    let response = json!({
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-future-5",
        "content": [
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "linen"}},
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
            {"type": "hologram", "payload": {"x": 1}}
        ],
        "stop_reason": "model_context_window_exceeded",
        "stop_sequence": null,
        "usage": {"input_tokens": 1, "output_tokens": 1}
    });
    let r: MessagesResponse = round_trip(&response);
    assert!(
        r.content
            .iter()
            .all(|b| matches!(b, ContentBlock::Unknown(_)))
    );
    assert_eq!(
        r.stop_reason,
        Some(StopReason::Other("model_context_window_exceeded".into()))
    );
    for (wire, reason) in [
        ("end_turn", StopReason::EndTurn),
        ("max_tokens", StopReason::MaxTokens),
        ("stop_sequence", StopReason::StopSequence),
        ("tool_use", StopReason::ToolUse),
        ("pause_turn", StopReason::PauseTurn),
        ("refusal", StopReason::Refusal),
    ] {
        assert_eq!(
            serde_json::from_value::<StopReason>(json!(wire)).unwrap(),
            reason
        );
        assert_eq!(serde_json::to_value(&reason).unwrap(), json!(wire));
    }
    let event: StreamEvent =
        serde_json::from_value(json!({"type": "content_block_delta", "index": 0, "delta": {"type": "telepathy_delta", "x": 1}}))
            .unwrap();
    assert!(matches!(
        event,
        StreamEvent::ContentBlockDelta {
            delta: mia_claude::wire::BlockDelta::Unknown(_),
            ..
        }
    ));
    let event: StreamEvent =
        serde_json::from_value(json!({"type": "message_rewind", "to": 3})).unwrap();
    assert!(matches!(event, StreamEvent::Unknown(_)));
}

#[test]
fn stream_events_parse_in_their_wire_shape() {
    let delta: StreamEvent = serde_json::from_value(json!({
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": null},
        "usage": {"output_tokens": 15}
    }))
    .unwrap();
    assert!(matches!(
        delta,
        StreamEvent::MessageDelta { ref usage, .. } if usage.output_tokens == Some(15) && usage.input_tokens.is_none()
    ));
    let err: StreamEvent = serde_json::from_value(json!({
        "type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}
    }))
    .unwrap();
    assert!(
        matches!(err, StreamEvent::Error { ref error } if error.error_type == "overloaded_error")
    );
}
