//! The tool-use loop against a local server: two tools over several turns, a malformed
//! tool input fed back as an error, input that breaks the schema corrected by the model,
//! pause_turn, the turn budget and a stopping hook.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use common::*;
use mia_claude::wire::{MessagesRequest, MessagesResponse, ToolChoice};
use mia_claude::{LoopEnd, ToolError, ToolLoop, ToolRegistry, TurnControl, TurnHook};
use serde::Deserialize;
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn answer(id: &str, content: Value, stop_reason: &str, output_tokens: u64) -> Value {
    json!({
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5-20251001",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": {"input_tokens": 100, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": output_tokens}
    })
}

async fn script(server: &MockServer, answers: Vec<Value>) {
    for a in answers {
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_json(a))
            .up_to_n_times(1)
            .mount(server)
            .await;
    }
}

async fn bodies(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

#[derive(Deserialize)]
struct OfferArgs {
    sku: String,
}

fn registry(offer_calls: &'static AtomicU32) -> ToolRegistry {
    let mut tools = ToolRegistry::new();
    tools
        .register(
            "segment_size",
            "How many consenting contacts a segment has.",
            json!({"type": "object", "properties": {"segment": {"type": "string"}}, "required": ["segment"]}),
            |input: Value| async move {
                match input["segment"].as_str() {
                    Some("vip") => Ok("412".to_owned()),
                    Some(other) => Err(ToolError::new(format!("no segment named {other}"))),
                    None => Err(ToolError::new("segment is required")),
                }
            },
        )
        .unwrap()
        .register_typed(
            "current_offer",
            "The running offer for a product.",
            json!({"type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"]}),
            move |args: OfferArgs| async move {
                offer_calls.fetch_add(1, Ordering::SeqCst);
                Ok(format!("{}: 20% off until Sunday", args.sku))
            },
        )
        .unwrap();
    tools
}

#[derive(Default)]
struct Recorder {
    results: Mutex<Vec<(u32, String, bool)>>,
    stop_on_turn: Option<u32>,
}

impl TurnHook for Recorder {
    fn on_response(&self, turn: u32, _response: &MessagesResponse) -> TurnControl {
        if self.stop_on_turn == Some(turn) {
            TurnControl::Stop
        } else {
            TurnControl::Continue
        }
    }
    fn on_tool_result(
        &self,
        turn: u32,
        name: &str,
        _input: &Value,
        result: &Result<String, ToolError>,
    ) {
        self.results
            .lock()
            .unwrap()
            .push((turn, name.to_owned(), result.is_ok()));
    }
}

#[tokio::test]
async fn two_tools_over_three_turns_with_a_malformed_input() {
    static OFFER_CALLS: AtomicU32 = AtomicU32::new(0);
    let server = MockServer::start().await;
    script(
        &server,
        vec![
            answer(
                "msg_1",
                json!([
                    {"type": "text", "text": "Let me check the segment and the offer."},
                    {"type": "tool_use", "id": "toolu_seg", "name": "segment_size", "input": {"segment": "vip"}},
                    {"type": "tool_use", "id": "toolu_off", "name": "current_offer", "input": {"sku": "linen-shirt"}}
                ]),
                "tool_use",
                60,
            ),
            answer(
                "msg_2",
                json!([{"type": "tool_use", "id": "toolu_bad", "name": "current_offer", "input": {"sku": 42}}]),
                "tool_use",
                20,
            ),
            answer(
                "msg_3",
                json!([{"type": "text", "text": "412 VIPs will get 20% off linen shirts."}]),
                "end_turn",
                15,
            ),
        ],
    )
    .await;
    let client = client(&server.uri());
    let tools = registry(&OFFER_CALLS);
    let hook = Recorder::default();
    let request = MessagesRequest::new("claude-haiku-4-5", 512, "Plan the VIP linen campaign.");
    let outcome = ToolLoop::new(&client, &tools)
        .hook(&hook)
        .run(request)
        .await
        .unwrap();

    assert_eq!(outcome.end, LoopEnd::Finished);
    assert_eq!(outcome.turns, 3);
    assert_eq!(
        outcome.response.text(),
        "412 VIPs will get 20% off linen shirts."
    );
    assert_eq!(
        (outcome.usage.input_tokens, outcome.usage.output_tokens),
        (300, 95)
    );
    assert_eq!(
        outcome.messages.len(),
        6,
        "user, assistant, results, assistant, results, assistant"
    );
    assert_eq!(
        OFFER_CALLS.load(Ordering::SeqCst),
        1,
        "the malformed call never reached the handler"
    );

    let sent = bodies(&server).await;
    assert_eq!(sent.len(), 3);
    assert_eq!(
        sent[0]["tools"].as_array().unwrap().len(),
        2,
        "the registry's tools are offered"
    );
    let results = &sent[1]["messages"][2];
    assert_eq!(results["role"], "user");
    assert_eq!(
        results["content"],
        json!([
            {"type": "tool_result", "tool_use_id": "toolu_seg", "content": "412"},
            {"type": "tool_result", "tool_use_id": "toolu_off", "content": "linen-shirt: 20% off until Sunday"}
        ])
    );
    let bad = &sent[2]["messages"][4]["content"][0];
    assert_eq!(bad["tool_use_id"], "toolu_bad");
    assert_eq!(bad["is_error"], true);
    assert!(
        bad["content"]
            .as_str()
            .unwrap()
            .contains("invalid input for tool current_offer"),
        "{bad}"
    );
    assert_eq!(
        *hook.results.lock().unwrap(),
        vec![
            (1, "segment_size".to_owned(), true),
            (1, "current_offer".to_owned(), true),
            (2, "current_offer".to_owned(), false)
        ]
    );
}

#[tokio::test]
async fn input_that_breaks_the_schema_goes_back_to_the_model_which_corrects_it() {
    static SENT: AtomicU32 = AtomicU32::new(0);
    let server = MockServer::start().await;
    script(
        &server,
        vec![
            answer(
                "msg_1",
                json!([{"type": "tool_use", "id": "toolu_bad", "name": "send_offer",
                        "input": {"segment": "everyone", "discount": "20", "urgent": true}}]),
                "tool_use",
                20,
            ),
            answer(
                "msg_2",
                json!([{"type": "tool_use", "id": "toolu_good", "name": "send_offer",
                        "input": {"segment": "vip", "discount": 20}}]),
                "tool_use",
                20,
            ),
            answer(
                "msg_3",
                json!([{"type": "text", "text": "The VIP offer is queued."}]),
                "end_turn",
                8,
            ),
        ],
    )
    .await;
    let mut tools = ToolRegistry::new();
    tools
        .register(
            "send_offer",
            "Queue a discount for a segment of consenting contacts.",
            json!({
                "type": "object",
                "properties": {
                    "segment": {"type": "string", "enum": ["vip", "new"]},
                    "discount": {"type": "integer", "minimum": 5, "maximum": 50,
                                 "description": "percent off"}
                },
                "required": ["segment", "discount"],
                "additionalProperties": false
            }),
            |input: Value| async move {
                SENT.fetch_add(1, Ordering::SeqCst);
                Ok(format!(
                    "queued {}% for {}",
                    input["discount"],
                    input["segment"].as_str().unwrap_or_default()
                ))
            },
        )
        .unwrap();
    let client = client(&server.uri());
    let hook = Recorder::default();
    let outcome = ToolLoop::new(&client, &tools)
        .hook(&hook)
        .run(MessagesRequest::new(
            "claude-haiku-4-5",
            256,
            "Give the VIPs 20% off.",
        ))
        .await
        .unwrap();

    assert_eq!((outcome.end, outcome.turns), (LoopEnd::Finished, 3));
    assert_eq!(
        SENT.load(Ordering::SeqCst),
        1,
        "the handler ran once, for the valid input"
    );
    let sent = bodies(&server).await;
    assert_eq!(sent.len(), 3);
    assert_eq!(
        sent[0]["tools"][0]["input_schema"]["properties"]["discount"]["description"], "percent off",
        "the schema goes to the API as registered"
    );
    let refused = &sent[1]["messages"][2]["content"][0];
    assert_eq!(refused["tool_use_id"], "toolu_bad");
    assert_eq!(refused["is_error"], true);
    assert_eq!(
        refused["content"],
        "invalid input for tool send_offer: \
         /discount: expected integer, got string \"20\"; \
         /segment: expected one of \"vip\", \"new\", got \"everyone\"; \
         /urgent: unexpected property; allowed properties are discount, segment"
    );
    let accepted = &sent[2]["messages"][4]["content"][0];
    assert_eq!(accepted["tool_use_id"], "toolu_good");
    assert_eq!(accepted["content"], "queued 20% for vip");
    assert!(accepted.get("is_error").is_none());
    assert_eq!(
        *hook.results.lock().unwrap(),
        vec![
            (1, "send_offer".to_owned(), false),
            (2, "send_offer".to_owned(), true)
        ]
    );
}

#[tokio::test]
async fn pause_turn_is_continued_by_sending_the_turn_back() {
    static UNUSED: AtomicU32 = AtomicU32::new(0);
    let server = MockServer::start().await;
    let paused = json!([{"type": "text", "text": "Searching…"}, {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "linen"}}]);
    script(
        &server,
        vec![
            answer("msg_p", paused.clone(), "pause_turn", 10),
            answer(
                "msg_done",
                json!([{"type": "text", "text": "Done."}]),
                "end_turn",
                3,
            ),
        ],
    )
    .await;
    let client = client(&server.uri());
    let tools = registry(&UNUSED);
    let outcome = ToolLoop::new(&client, &tools)
        .run(MessagesRequest::new(
            "claude-haiku-4-5",
            256,
            "Research linen trends.",
        ))
        .await
        .unwrap();
    assert_eq!((outcome.end, outcome.turns), (LoopEnd::Finished, 2));
    let sent = bodies(&server).await;
    let last = sent[1]["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        last,
        json!({"role": "assistant", "content": paused}),
        "the paused turn goes back as is"
    );
}

#[tokio::test]
async fn the_turn_budget_ends_a_loop_that_keeps_calling_tools() {
    static UNUSED: AtomicU32 = AtomicU32::new(0);
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(answer(
            "msg_loop",
            json!([{"type": "tool_use", "id": "toolu_x", "name": "segment_size", "input": {"segment": "nobody"}}]),
            "tool_use",
            5,
        )))
        .mount(&server)
        .await;
    let client = client(&server.uri());
    let tools = registry(&UNUSED);
    let mut request = MessagesRequest::new("claude-haiku-4-5", 256, "Loop forever.");
    request.tool_choice = Some(ToolChoice::Any {
        disable_parallel_tool_use: None,
    });
    let outcome = ToolLoop::new(&client, &tools)
        .max_turns(2)
        .run(request)
        .await
        .unwrap();
    assert_eq!((outcome.end, outcome.turns), (LoopEnd::TurnLimit, 2));
    let sent = bodies(&server).await;
    assert_eq!(sent.len(), 2);
    let failed = &sent[1]["messages"][2]["content"][0];
    assert_eq!(
        failed["is_error"], true,
        "a failing tool is reported to the model"
    );
    assert_eq!(failed["content"], "no segment named nobody");
}

#[tokio::test]
async fn a_hook_can_stop_before_tools_run() {
    static CALLS: AtomicU32 = AtomicU32::new(0);
    let server = MockServer::start().await;
    script(
        &server,
        vec![answer(
            "msg_1",
            json!([{"type": "tool_use", "id": "toolu_off", "name": "current_offer", "input": {"sku": "a"}}]),
            "tool_use",
            5,
        )],
    )
    .await;
    let client = client(&server.uri());
    let tools = registry(&CALLS);
    let hook = Recorder {
        stop_on_turn: Some(1),
        ..Recorder::default()
    };
    let outcome = ToolLoop::new(&client, &tools)
        .hook(&hook)
        .run(MessagesRequest::new("claude-haiku-4-5", 256, "Go."))
        .await
        .unwrap();
    assert_eq!((outcome.end, outcome.turns), (LoopEnd::Stopped, 1));
    assert_eq!(CALLS.load(Ordering::SeqCst), 0);
    assert!(hook.results.lock().unwrap().is_empty());
}
