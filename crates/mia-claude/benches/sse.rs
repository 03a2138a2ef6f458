//! SSE parsing throughput (MB/s) of a realistic Messages stream, and the cost of building
//! and serialising the agent's variants request.
//!
//! Run with: `cargo bench -p mia-claude --bench sse -- --warm-up-time 1 --measurement-time 3`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mia_claude::sse::SseDecoder;
use mia_claude::wire::MessagesRequest;
use mia_claude::{MessageAccumulator, parse_event, to_wire_request};
use serde_json::json;

/// A long answer: message_start, one text block of `text_deltas` deltas (with multi-byte
/// text), a tool call in 40 JSON pieces, message_delta, message_stop; pings in between.
fn realistic_stream(text_deltas: usize) -> String {
    let mut s = String::new();
    let mut event = |name: &str, data: serde_json::Value| {
        s.push_str(&format!("event: {name}\ndata: {data}\n\n"));
    };
    event(
        "message_start",
        json!({"type": "message_start", "message": {"id": "msg_014p7gG3wDgGV9EUtLvnow3U", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929", "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 472, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 2}}}),
    );
    event(
        "content_block_start",
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    );
    for i in 0..text_deltas {
        if i % 100 == 0 {
            event("ping", json!({"type": "ping"}));
        }
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Frühlingsrabatt — 20% auf Leinen ✓ "}}),
        );
    }
    event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    );
    event(
        "content_block_start",
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_01A", "name": "submit_variants", "input": {}}}),
    );
    let input = json!({"variants": [{"text": "Linen shirts: 20% off until Sunday.\n\nReply STOP to unsubscribe.", "rationale": "direct"}]}).to_string();
    let pieces = input.len().div_ceil(40);
    for piece in input.as_bytes().chunks(pieces) {
        let piece = std::str::from_utf8(piece).unwrap();
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": piece}}),
        );
    }
    event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 1}),
    );
    event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 4000}}),
    );
    event("message_stop", json!({"type": "message_stop"}));
    s
}

fn sse(c: &mut Criterion) {
    let stream = realistic_stream(2_000);
    // Network reads arrive in pieces of about one TLS record.
    let chunks: Vec<&[u8]> = stream.as_bytes().chunks(1_371).collect();
    let mut group = c.benchmark_group("sse");
    group.throughput(Throughput::Bytes(stream.len() as u64));
    group.bench_function("frames", |b| {
        b.iter(|| {
            let mut decoder = SseDecoder::new();
            let mut frames = Vec::with_capacity(64);
            let mut n = 0;
            for chunk in &chunks {
                decoder.feed(black_box(chunk), &mut frames);
                n += frames.len();
                frames.clear();
            }
            n
        });
    });
    group.bench_function("frames_events_message", |b| {
        b.iter(|| {
            let mut decoder = SseDecoder::new();
            let mut acc = MessageAccumulator::new();
            let mut frames = Vec::with_capacity(64);
            for chunk in &chunks {
                decoder.feed(black_box(chunk), &mut frames);
                for frame in frames.drain(..) {
                    acc.apply(&parse_event(&frame).unwrap()).unwrap();
                }
            }
            acc.finish().unwrap()
        });
    });
    group.finish();
}

fn variants_request() -> mia_core::CompletionRequest {
    let spec = mia_core::CampaignSpec::new("Spring sale", "Linen shirts", "20% off until Sunday");
    mia_core::CompletionRequest {
        model: None,
        system: Some("You write short, honest Telegram messages for a business, sent only to people who asked to hear from it. Submit the variants with the submit_variants tool.".into()),
        messages: vec![mia_core::Message::user(format!(
            "Write 3 clearly different message variants in language en for this campaign.\n<campaign_spec>{}</campaign_spec>",
            serde_json::to_string(&spec).unwrap()
        ))],
        tools: vec![mia_core::ToolSpec {
            name: "submit_variants".into(),
            description: "Submit the message variants for the campaign.".into(),
            input_schema: json!({"type": "object", "properties": {"variants": {"type": "array", "minItems": 1, "maxItems": 3, "items": {"type": "object", "properties": {"text": {"type": "string", "maxLength": 4096}, "rationale": {"type": "string"}}, "required": ["text"]}}}, "required": ["variants"]}),
        }],
        tool_choice: mia_core::ToolChoice::Tool { name: "submit_variants".into() },
        max_tokens: 1024,
        temperature: Some(0.7),
    }
}

fn request(c: &mut Criterion) {
    let core = variants_request();
    let wire: MessagesRequest = to_wire_request(&core, "claude-sonnet-4-5");
    let mut group = c.benchmark_group("request");
    group.throughput(Throughput::Elements(1));
    group.bench_function("map_core_to_wire", |b| {
        b.iter(|| to_wire_request(black_box(&core), "claude-sonnet-4-5"));
    });
    group.bench_function("serialize_json", |b| {
        b.iter(|| serde_json::to_vec(black_box(&wire)).unwrap());
    });
    group.bench_function("map_and_serialize", |b| {
        b.iter(|| {
            serde_json::to_vec(&to_wire_request(black_box(&core), "claude-sonnet-4-5")).unwrap()
        });
    });
    group.finish();
}

criterion_group!(benches, sse, request);
criterion_main!(benches);
