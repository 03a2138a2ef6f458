#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The provider conformance suite: every [`LlmProvider`] (the offline template provider and
//! the Claude client included) must answer the agent's structured-output request.

use crate::agent::generate::{VARIANTS_TOOL, variants_request};
use crate::{CampaignSpec, ContentBlock, LlmProvider, StopReason};

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
    // Exactly the request the agent sends.
    let request = variants_request(&spec).unwrap();
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
