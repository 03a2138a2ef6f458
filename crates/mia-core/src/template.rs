//! An offline [`LlmProvider`] that writes copy from templates: no network, no keys, the same
//! answer for the same request. It lets every part of mia run (and be tested) without Claude.

use async_trait::async_trait;
use serde_json::json;

use crate::agent::generate::{SPEC_CLOSE, SPEC_OPEN, VARIANTS_TOOL};
use crate::campaign::CampaignSpec;
use crate::error::{Error, Result};
use crate::llm::{
    Completion, CompletionRequest, ContentBlock, LlmProvider, StopReason, ToolChoice, Usage,
};

/// Writes campaign copy from a fixed set of templates, deterministically.
///
/// It answers the agent's structured-output request (a forced call to the variants tool) with
/// one variant per template, filled in from the campaign spec; any other request gets a short
/// text answer. Usage is counted as whitespace-separated words, cost is zero.
#[derive(Clone, Debug, Default)]
pub struct TemplateProvider {
    _private: (),
}

impl TemplateProvider {
    /// A new provider.
    pub fn new() -> Self {
        Self::default()
    }
}

const FRIENDLY: [&str; 4] = [
    "{product}: {offer}. {cta}",
    "Hi! We saved something for you: {offer} on {product}. {cta}",
    "Good news: {offer}. {product} is waiting for you. {cta}",
    "{offer} - just for our subscribers. Treat yourself to {product}. {cta}",
];
const FORMAL: [&str; 2] = [
    "{product}: {offer}. {cta}",
    "We are pleased to offer you {offer} on {product}. {cta}",
];

fn render(template: &str, spec: &CampaignSpec) -> String {
    let cta = match &spec.call_to_action_url {
        Some(url) => format!("Details: {url}"),
        None => String::new(),
    };
    let body = template
        .replace("{product}", &spec.product)
        .replace("{offer}", &spec.offer)
        .replace("{cta}", &cta);
    format!("{}\n\nReply STOP to unsubscribe.", body.trim_end())
}

fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

#[async_trait]
impl LlmProvider for TemplateProvider {
    fn name(&self) -> &str {
        "template"
    }

    async fn complete(&self, request: &CompletionRequest) -> Result<Completion> {
        let prompt: String = request
            .messages
            .iter()
            .flat_map(|m| &m.content)
            .filter_map(|b| match b {
                ContentBlock::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let input_tokens = words(&prompt) + request.system.as_deref().map_or(0, words);

        let forced =
            matches!(&request.tool_choice, ToolChoice::Tool { name } if name == VARIANTS_TOOL);
        if !forced {
            let text = "Thanks for your message. A member of our team will get back to you.";
            return Ok(Completion {
                model: "template-1".into(),
                content: vec![ContentBlock::Text { text: text.into() }],
                stop_reason: StopReason::EndTurn,
                usage: Usage {
                    input_tokens,
                    output_tokens: words(text),
                },
                cost_micro_usd: Some(0),
            });
        }

        let spec_json = prompt
            .split_once(SPEC_OPEN)
            .and_then(|(_, rest)| rest.split_once(SPEC_CLOSE))
            .map(|(json, _)| json)
            .ok_or_else(|| Error::Llm {
                message: "template provider: the request carries no campaign spec".into(),
                retryable: false,
                source: None,
            })?;
        let spec: CampaignSpec = serde_json::from_str(spec_json).map_err(|e| Error::Llm {
            message: format!("template provider: unreadable campaign spec: {e}"),
            retryable: false,
            source: Some(Box::new(e)),
        })?;
        let templates: &[&str] = if spec.tone.eq_ignore_ascii_case("formal") {
            &FORMAL
        } else {
            &FRIENDLY
        };
        let variants: Vec<_> = (0..usize::from(spec.variant_count))
            .map(|i| {
                let text = render(templates[i % templates.len()], &spec);
                json!({ "text": text, "rationale": format!("template {}", i % templates.len()) })
            })
            .collect();
        let output_tokens = variants
            .iter()
            .map(|v| words(v["text"].as_str().unwrap_or_default()))
            .sum();
        Ok(Completion {
            model: "template-1".into(),
            content: vec![ContentBlock::ToolUse {
                id: "toolu_template_0".into(),
                name: VARIANTS_TOOL.into(),
                input: json!({ "variants": variants }),
            }],
            stop_reason: StopReason::ToolUse,
            usage: Usage {
                input_tokens,
                output_tokens,
            },
            cost_micro_usd: Some(0),
        })
    }
}
