#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The provider conformance suite: every [`LlmProvider`] (the offline template provider and
//! the Claude client included) must answer the agent's structured-output request.

use serde_json::json;

use crate::{
    CampaignSpec, CompletionRequest, ContentBlock, LlmProvider, Message, StopReason, ToolChoice,
    ToolSpec,
};

/// The tool the agent forces for variants (as in `agent/generate.rs`).
const VARIANTS_TOOL: &str = "submit_variants";

/// The request the agent sends for copy variants, in the same shape as
/// `agent::generate::variants_request`: a system prompt, one user message carrying the spec
/// as JSON between `<campaign_spec>` tags, the `submit_variants` tool with its JSON schema,
/// and a forced tool choice.
fn variants_request(spec: &CampaignSpec) -> CompletionRequest {
    let spec_json = serde_json::to_string(spec).unwrap();
    let n = spec.variant_count;
    CompletionRequest {
        model: None,
        system: Some(
            "You write short, honest Telegram messages for a business, sent only to people who \
             asked to hear from it. No false urgency, no guarantees of results, no health or \
             financial claims, no personal data. Every message ends with how to opt out \
             (\"Reply STOP to unsubscribe.\"). Submit the variants with the submit_variants tool."
                .into(),
        ),
        messages: vec![Message::user(format!(
            "Write {n} clearly different message variants in language {lang} for this \
             campaign.\n<campaign_spec>{spec_json}</campaign_spec>",
            lang = spec.language
        ))],
        tools: vec![ToolSpec {
            name: VARIANTS_TOOL.into(),
            description: "Submit the message variants for the campaign.".into(),
            input_schema: json!({
                "type": "object",
                "properties": {
                    "variants": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": n,
                        "items": {
                            "type": "object",
                            "properties": {
                                "text": { "type": "string", "maxLength": 4096 },
                                "rationale": { "type": "string" }
                            },
                            "required": ["text"]
                        }
                    }
                },
                "required": ["variants"]
            }),
        }],
        tool_choice: ToolChoice::Tool {
            name: VARIANTS_TOOL.into(),
        },
        max_tokens: 1024,
        temperature: Some(0.7),
    }
}

/// Checks that `provider` answers the agent's structured-output request: a `tool_use` block
/// named `submit_variants` whose input holds `variants`, a non-empty array of at most
/// `variant_count` objects with non-empty `text`; `stop_reason` `tool_use`; input tokens
/// counted.
///
/// Panics with a message naming the broken rule, like any assertion.
pub async fn provider_conformance<P: LlmProvider + ?Sized>(provider: &P) {
    let mut spec = CampaignSpec::new("Spring sale", "Linen shirts", "20% off until Sunday");
    spec.variant_count = 3;
    spec.call_to_action_url = Some("https://shop.example/spring".into());
    let request = variants_request(&spec);
    let completion = provider
        .complete(&request)
        .await
        .unwrap_or_else(|e| panic!("{}: the variants request failed: {e}", provider.name()));

    let name = provider.name();
    let calls: Vec<_> = completion
        .content
        .iter()
        .filter_map(|b| match b {
            ContentBlock::ToolUse { name, input, .. } if name == VARIANTS_TOOL => Some(input),
            _ => None,
        })
        .collect();
    assert!(
        !calls.is_empty(),
        "{name}: the answer has no tool_use block named {VARIANTS_TOOL}: {:?}",
        completion.content
    );
    let variants = calls[0]["variants"]
        .as_array()
        .unwrap_or_else(|| panic!("{name}: `variants` is not an array: {}", calls[0]));
    assert!(!variants.is_empty(), "{name}: `variants` is empty");
    assert!(
        variants.len() <= usize::from(spec.variant_count),
        "{name}: {} variants, more than the {} asked for",
        variants.len(),
        spec.variant_count
    );
    for (i, v) in variants.iter().enumerate() {
        assert!(v.is_object(), "{name}: variant {i} is not an object: {v}");
        let text = v["text"].as_str().unwrap_or_default();
        assert!(
            !text.trim().is_empty(),
            "{name}: variant {i} has no non-empty `text`: {v}"
        );
    }
    assert_eq!(
        completion.stop_reason,
        StopReason::ToolUse,
        "{name}: a forced tool call stops with tool_use"
    );
    assert!(
        completion.usage.input_tokens > 0,
        "{name}: input tokens are counted"
    );
}
