//! Summarising old turns against a local server: the model writes the summary that replaces
//! the oldest exchanges, tools and system stay as they were, roles alternate and tool calls
//! keep their results; a summary too long to fit falls back to dropping, and a failed summary
//! call leaves the conversation unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;

use common::*;
use mia_claude::wire::{
    ContentBlock, InputMessage, MessagesRequest, Role, System, Tool, ToolResultContent,
};
use mia_claude::{
    ClaudeError, ClaudeSummarizer, ContextManager, SUMMARY_HEADING, estimate_input_tokens,
};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn summary_answer(text: &str) -> Value {
    let mut answer = text_response();
    answer["content"] = json!([{"type": "text", "text": text}]);
    answer["model"] = json!("claude-haiku-4-5-20251001");
    answer
}

async fn answer_with(server: &MockServer, response: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(response)
        .mount(server)
        .await;
}

/// A campaign-planning conversation: a tool exchange with a long result, a long answer, then
/// two short exchanges.
fn conversation() -> MessagesRequest {
    let mut r = MessagesRequest::new(
        "claude-sonnet-4-5",
        512,
        "Plan the VIP linen campaign for the spring sale.",
    );
    r.system = Some(System::Text(
        "You plan consented Telegram campaigns.".into(),
    ));
    r.tools = vec![Tool {
        name: "segment_size".into(),
        description: Some("How many consenting contacts a segment has.".into()),
        input_schema: json!({"type": "object", "properties": {"segment": {"type": "string"}}}),
        cache_control: None,
    }];
    r.messages.push(InputMessage::assistant(vec![
        ContentBlock::text("Let me size the segment."),
        ContentBlock::ToolUse {
            id: "toolu_seg".into(),
            name: "segment_size".into(),
            input: json!({"segment": "vip"}),
            cache_control: None,
        },
    ]));
    r.messages
        .push(InputMessage::user(vec![ContentBlock::tool_result(
            "toolu_seg",
            format!("412 contacts; breakdown: {}", "city=Oslo ".repeat(1000)),
            false,
        )]));
    r.messages
        .push(InputMessage::assistant(vec![ContentBlock::text(format!(
            "The VIP segment has 412 consenting contacts. {}",
            "Detail. ".repeat(1000)
        ))]));
    r.messages
        .push(InputMessage::user_text("Draft a subject line for them."));
    r.messages
        .push(InputMessage::assistant(vec![ContentBlock::text(
            "Linen for our VIPs: 20% off until Sunday.",
        )]));
    r.messages
        .push(InputMessage::user_text("Make it shorter, please."));
    r
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
        .join("\n")
}

/// Roles alternate from a user turn, and every tool result answers a call of the turn
/// before it.
fn assert_well_formed(messages: &[InputMessage]) {
    assert_eq!(messages[0].role, Role::User);
    for pair in messages.windows(2) {
        assert_ne!(pair[0].role, pair[1].role, "{messages:?}");
        let calls: HashSet<&str> = pair[0]
            .content
            .iter()
            .filter_map(|b| match b {
                ContentBlock::ToolUse { id, .. } => Some(id.as_str()),
                _ => None,
            })
            .collect();
        for block in &pair[1].content {
            if let ContentBlock::ToolResult { tool_use_id, .. } = block {
                assert!(calls.contains(tool_use_id.as_str()), "{messages:?}");
            }
        }
    }
    if let Some(ContentBlock::ToolResult { .. }) = messages[0].content.first() {
        panic!("the conversation opens with an orphan tool result: {messages:?}");
    }
}

#[tokio::test]
async fn the_model_summarises_the_exchanges_that_no_longer_fit() {
    let server = MockServer::start().await;
    let summary = "The user is planning a VIP linen campaign; segment_size said the VIP \
                   segment has 412 consenting contacts (mostly Oslo).";
    answer_with(
        &server,
        ResponseTemplate::new(200).set_body_json(summary_answer(summary)),
    )
    .await;
    let client = client(&server.uri());
    let summarizer = ClaudeSummarizer::new(client.clone())
        .model("claude-haiku-4-5")
        .max_tokens(200);

    let original = conversation();
    let mut request = original.clone();
    let budget = estimate_input_tokens(&original) / 2;
    let fitted = ContextManager::new(budget)
        .fit_summarizing(&mut request, &summarizer)
        .await
        .unwrap();

    assert!(fitted.summarized);
    assert_eq!(
        fitted.removed_messages, 4,
        "the first user turn, the tool exchange and the long answer"
    );
    assert!(fitted.prompt_tokens <= budget);
    assert_eq!(
        (&request.tools, &request.system),
        (&original.tools, &original.system),
        "the cached prefix is untouched"
    );
    assert_well_formed(&request.messages);
    assert_eq!(request.messages.len(), 3);
    let resumed = text_of(&request.messages[0]);
    assert!(resumed.starts_with(SUMMARY_HEADING), "{resumed}");
    assert!(resumed.contains(summary), "{resumed}");
    assert!(
        resumed.ends_with("Draft a subject line for them."),
        "{resumed}"
    );
    assert_eq!(request.messages[1..], original.messages[5..]);

    // One call, to the summary model, with the dropped turns as a transcript.
    let sent = server.received_requests().await.unwrap();
    assert_eq!(sent.len(), 1);
    let body: Value = serde_json::from_slice(&sent[0].body).unwrap();
    assert_eq!(body["model"], "claude-haiku-4-5");
    assert_eq!(body["max_tokens"], 200);
    assert!(
        body.get("tools").is_none(),
        "the summary call offers no tools"
    );
    let prompt = body["messages"][0]["content"][0]["text"].as_str().unwrap();
    assert!(
        prompt.contains("User: Plan the VIP linen campaign for the spring sale."),
        "{prompt}"
    );
    assert!(
        prompt.contains("Assistant called tool segment_size with {\"segment\":\"vip\"}"),
        "{prompt}"
    );
    assert!(prompt.contains("Tool result: 412 contacts"), "{prompt}");
    assert!(
        !prompt.contains("Make it shorter"),
        "kept turns are not summarised: {prompt}"
    );
    assert_eq!(
        client.ledger().total().calls,
        1,
        "the call is in the ledger"
    );
}

#[tokio::test]
async fn a_summary_too_long_to_fit_falls_back_to_dropping() {
    let server = MockServer::start().await;
    answer_with(
        &server,
        ResponseTemplate::new(200).set_body_json(summary_answer(&"rambling ".repeat(3000))),
    )
    .await;
    let summarizer = ClaudeSummarizer::new(client(&server.uri()));
    let mut request = conversation();
    let budget = estimate_input_tokens(&request) / 2;
    let fitted = ContextManager::new(budget)
        .fit_summarizing(&mut request, &summarizer)
        .await
        .unwrap();
    assert!(!fitted.summarized);
    assert_eq!(fitted.removed_messages, 4);
    assert_eq!(
        request.messages[0],
        InputMessage::user_text("Draft a subject line for them.")
    );
    assert!(
        !request
            .messages
            .iter()
            .any(|m| text_of(m).contains(SUMMARY_HEADING))
    );
    assert_well_formed(&request.messages);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_failed_summary_call_leaves_the_conversation_unchanged() {
    let server = MockServer::start().await;
    answer_with(
        &server,
        ResponseTemplate::new(400).set_body_json(error_body(
            "invalid_request_error",
            "max_tokens: too large",
            "req_summary_1",
        )),
    )
    .await;
    let summarizer = ClaudeSummarizer::new(client(&server.uri()));
    let mut request = conversation();
    let budget = estimate_input_tokens(&request) / 2;
    let error = ContextManager::new(budget)
        .fit_summarizing(&mut request, &summarizer)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ClaudeError::Api { status: 400, .. }),
        "{error}"
    );
    assert_eq!(request, conversation());
    // Tool results with blocks are kept as text in the transcript, too.
    let blocks = InputMessage::user(vec![ContentBlock::ToolResult {
        tool_use_id: "toolu_x".into(),
        content: ToolResultContent::Blocks(vec![ContentBlock::text("block text")]),
        is_error: Some(true),
        cache_control: None,
    }]);
    let prompt = summarizer.request(&[blocks]).messages[0].content[0].clone();
    assert!(
        matches!(&prompt, ContentBlock::Text { text, .. } if text.contains("Tool result (error): block text")),
        "{prompt:?}"
    );
}
