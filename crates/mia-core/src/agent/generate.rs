//! Campaign creation: the LLM writes copy as structured output, the content policy checks every
//! variant, escalations wait for a human.

use std::sync::LazyLock;

use serde_json::{Value, json};
use tracing::Instrument;

use super::Agent;
use crate::campaign::{Campaign, CampaignSpec, CampaignState, Variant, VariantStatus};
use crate::error::{Error, Result};
use crate::ids::{CampaignId, ReviewId, VariantId, hex_digest};
use crate::llm::{Completion, CompletionRequest, Message, ToolChoice, ToolSpec};
use crate::policy::{ContentContext, ContentKind, ContentPolicy, Decision};
use crate::schema::{self, Schema, SchemaError};
use crate::store::{ReviewItem, ReviewState, ReviewSubject};

/// The tool the model must call with the variants (structured output).
pub(crate) const VARIANTS_TOOL: &str = "submit_variants";
/// The spec travels in the prompt between these tags, as JSON.
pub(crate) const SPEC_OPEN: &str = "<campaign_spec>";
pub(crate) const SPEC_CLOSE: &str = "</campaign_spec>";

const SYSTEM: &str = "You write short, honest Telegram messages for a business, sent only to \
people who asked to hear from it. No false urgency, no guarantees of results, no health or \
financial claims, no personal data. Every message ends with how to opt out \
(\"Reply STOP to unsubscribe.\"). Submit the variants with the submit_variants tool.";

/// The version id of the copy prompt: a hash of the system prompt, the instruction template and
/// the tool schema version, with the provider's name.
pub(crate) fn prompt_version(provider: &str) -> String {
    let digest = hex_digest(&[
        SYSTEM.as_bytes(),
        INSTRUCTION.as_bytes(),
        VARIANTS_TOOL.as_bytes(),
        provider.as_bytes(),
    ]);
    format!("copy-{}", &digest[..12])
}

/// The user turn; `{n}`, `{lang}` and the spec are filled in by [`variants_request`].
const INSTRUCTION: &str =
    "Write {n} clearly different message variants in language {lang} for this campaign.";

/// The input schema of the variants tool. The request caps the array at the variant count;
/// without a cap it is the schema [`parse_variants`] checks answers against.
fn variants_schema(max_items: Option<u8>) -> Value {
    let mut variants = json!({
        "type": "array",
        "minItems": 1,
        "items": {
            "type": "object",
            "properties": {
                "text": { "type": "string", "maxLength": 4096 },
                "rationale": { "type": "string" }
            },
            "required": ["text"]
        }
    });
    if let (Some(max), Some(map)) = (max_items, variants.as_object_mut()) {
        map.insert("maxItems".into(), Value::from(max));
    }
    json!({
        "type": "object",
        "properties": { "variants": variants },
        "required": ["variants"]
    })
}

/// The variants schema, compiled once. It is the schema the request sends without `maxItems`:
/// a model that writes more variants than asked loses the extras (see [`parse_variants`])
/// instead of the whole answer; every other rule holds.
static VARIANTS_SCHEMA: LazyLock<std::result::Result<Schema, SchemaError>> =
    LazyLock::new(|| Schema::compile(&variants_schema(None)));

pub(crate) fn variants_request(spec: &CampaignSpec) -> Result<CompletionRequest> {
    let spec_json = serde_json::to_string(spec)
        .map_err(|e| Error::invalid(format!("campaign spec cannot be serialised: {e}")))?;
    let n = spec.variant_count;
    Ok(CompletionRequest {
        model: None,
        system: Some(SYSTEM.into()),
        messages: vec![Message::user(format!(
            "{}\n{SPEC_OPEN}{spec_json}{SPEC_CLOSE}",
            INSTRUCTION
                .replace("{n}", &n.to_string())
                .replace("{lang}", &spec.language)
        ))],
        tools: vec![ToolSpec {
            name: VARIANTS_TOOL.into(),
            description: "Submit the message variants for the campaign.".into(),
            input_schema: variants_schema(Some(n)),
        }],
        tool_choice: ToolChoice::Tool {
            name: VARIANTS_TOOL.into(),
        },
        max_tokens: 1024,
        temperature: Some(0.7),
    })
}

/// The texts from the model's tool call: trimmed, non-empty, distinct, at most `max`.
///
/// The call's input must match the tool's schema (see [`VARIANTS_SCHEMA`]); an answer that
/// does not is an error naming every violation, with its JSON pointer.
pub(crate) fn parse_variants(completion: &Completion, max: usize) -> Result<Vec<String>> {
    let bad = |why: &str| Error::Llm {
        message: format!("the model's variants are unusable: {why}"),
        retryable: false,
        source: None,
    };
    let input = completion
        .tool_input(VARIANTS_TOOL)
        .ok_or_else(|| bad("it did not call submit_variants"))?;
    let schema = VARIANTS_SCHEMA
        .as_ref()
        .map_err(|e| bad(&format!("the {VARIANTS_TOOL} schema does not compile: {e}")))?;
    schema.validate(input).map_err(|violations| {
        bad(&format!(
            "the {VARIANTS_TOOL} input does not match its schema: {}",
            schema::describe(&violations)
        ))
    })?;
    let items = input["variants"]
        .as_array()
        .ok_or_else(|| bad("`variants` is not an array"))?;
    let mut texts: Vec<String> = Vec::new();
    for item in items {
        let text = item["text"].as_str().unwrap_or_default().trim();
        if !text.is_empty() && !texts.iter().any(|t| t == text) {
            texts.push(text.to_owned());
        }
    }
    texts.truncate(max);
    if texts.is_empty() {
        return Err(bad("no non-empty text"));
    }
    Ok(texts)
}

fn variant_id(index: usize) -> VariantId {
    // 1..=8 variants: A..H.
    VariantId::new(char::from(b'A' + (index % 26) as u8).to_string())
}

fn review_id(campaign: &CampaignId, subject: &str) -> ReviewId {
    ReviewId::new(format!(
        "rev_{}",
        &hex_digest(&[campaign.as_str().as_bytes(), subject.as_bytes()])[..16]
    ))
}

impl Agent {
    /// Creates a campaign: asks the LLM for copy, runs the content policy on every variant, and
    /// queues escalations for review. Returns the campaign `approved` when at least one variant
    /// passed and none waits for review, `in_review` while a reviewer must decide, or `aborted`
    /// when the policy denied every variant.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad spec; an LLM or store error (the campaign then stays in
    /// `generating` with the error recorded, and can be aborted).
    pub async fn create_campaign(&self, spec: CampaignSpec) -> Result<Campaign> {
        spec.validate()?;
        let now = self.now();
        // A seeded agent draws the same ids in every process: skip ids the store already has,
        // so a restarted host with the same seed does not collide with its own campaigns.
        let mut id = CampaignId::new(self.random_id("cmp"));
        for _ in 0..64 {
            if self.inner.store.campaign(&id).await?.is_none() {
                break;
            }
            id = CampaignId::new(self.random_id("cmp"));
        }
        let mut campaign = Campaign::draft(id, spec, now);
        self.inner.store.insert_campaign(&campaign).await?;
        let span = super::campaign_span(&campaign.id, "create");
        async {
            campaign.transition(CampaignState::Generating, self.now())?;
            self.inner.store.update_campaign(&campaign).await?;

            let request = variants_request(&campaign.spec)?;
            let prompt_version = prompt_version(self.inner.llm.name());
            let provider = self.inner.llm.name();
            let llm_span = crate::metrics::llm_span(provider);
            let completion = match self.inner.llm.complete(&request).instrument(llm_span.clone()).await {
                Ok(c) => c,
                Err(e) => {
                    campaign.state_reason = Some(format!("generation failed: {e}"));
                    self.inner.store.update_campaign(&campaign).await?;
                    return Err(e);
                }
            };
            crate::metrics::llm_completion(&llm_span, provider, &completion);
            let texts = parse_variants(&completion, usize::from(campaign.spec.variant_count))?;
            tracing::Span::current().record("variants", texts.len());

            let mut reviews = Vec::new();
            let ctx = ContentContext {
                campaign: Some(&campaign.id),
                language: &campaign.spec.language,
                kind: ContentKind::Marketing,
            };
            let mut variants = Vec::with_capacity(texts.len());
            let mut audit = Vec::with_capacity(texts.len() + 1);
            for (i, text) in texts.into_iter().enumerate() {
                let id = variant_id(i);
                // The policy may hand back a safer text (personal data redacted): that is
                // the copy, and the verdict is on it.
                let policy_span = tracing::info_span!(
                    "mia.policy",
                    policy = "content",
                    campaign = %campaign.id,
                    variant = %id,
                    decision = tracing::field::Empty,
                    rule = tracing::field::Empty,
                );
                let (verdict, rewritten) =
                    policy_span.in_scope(|| self.inner.content.check_rewriting(&text, &ctx));
                let decision = crate::metrics::decision_name(&verdict.decision);
                policy_span.record("decision", decision);
                if let Some(rule) = verdict.deciding_rule() {
                    policy_span.record("rule", rule);
                }
                if verdict.decision == Decision::Deny {
                    crate::metrics::denial("content", verdict.deciding_rule().unwrap_or("policy"));
                }
                audit.push(crate::AuditEvent::new(
                    self.now(),
                    "agent",
                    crate::AuditAction::ContentDecision,
                    None,
                    json!({
                        "policy": "content",
                        "campaign": campaign.id.as_str(),
                        "variant": id.as_str(),
                        "decision": super::audit::decision_json(&verdict.decision),
                        "rule": verdict.deciding_rule(),
                        "trace": super::audit::trace(&verdict.trace),
                        "rewritten": rewritten.is_some(),
                        "prompt_version": prompt_version,
                    }),
                ));
                let text = rewritten.unwrap_or(text);
                let status = match verdict.decision {
                    Decision::Allow => VariantStatus::Approved,
                    Decision::Deny => VariantStatus::Rejected,
                    // A deferral makes no sense for text; a human looks at it.
                    Decision::Escalate | Decision::Defer { .. } => {
                        reviews.push(ReviewItem {
                            id: review_id(&campaign.id, &format!("variant:{id}")),
                            campaign: campaign.id.clone(),
                            subject: ReviewSubject::Variant { variant: id.clone() },
                            text: text.clone(),
                            trace: verdict.trace.clone(),
                            state: ReviewState::Pending,
                            reviewer: None,
                            note: None,
                            created_at: self.now(),
                            resolved_at: None,
                        });
                        VariantStatus::InReview
                    }
                };
                policy_span.in_scope(|| {
                    tracing::info!(variant = %id, decision, rule = verdict.deciding_rule(), "mia.policy content");
                });
                variants.push(Variant {
                    id,
                    text,
                    status,
                    trace: verdict.trace,
                    prompt_version: prompt_version.clone(),
                });
            }
            campaign.variants = variants;
            campaign.transition(CampaignState::InReview, self.now())?;
            self.inner.store.insert_reviews(&reviews).await?;
            settle_review(&mut campaign, self.now());
            self.inner.store.update_campaign(&campaign).await?;
            audit.push(super::audit::campaign_state(
                "agent",
                &campaign,
                CampaignState::Draft,
                json!({}),
            ));
            self.audit(&audit).await?;
            Ok(campaign)
        }
        .instrument(span)
        .await
    }

    /// Items waiting for a reviewer, oldest first.
    ///
    /// # Errors
    /// A store error.
    pub async fn pending_reviews(&self) -> Result<Vec<ReviewItem>> {
        self.inner.store.pending_reviews().await
    }

    /// When a review item expires: its creation plus the agent's review deadline.
    pub fn review_deadline(&self, item: &ReviewItem) -> jiff::Timestamp {
        crate::agent::worker::add(item.created_at, self.inner.config.review_deadline)
    }

    /// Rejects every pending item whose deadline has passed, as reviewer `mia:deadline`: an
    /// escalation nobody looked at is never sent. The worker calls this on every round.
    /// Returns how many items expired.
    ///
    /// # Errors
    /// A store error.
    pub async fn expire_reviews(&self) -> Result<u64> {
        let now = self.now();
        let mut expired = 0;
        for item in self.inner.store.pending_reviews().await? {
            if self.review_deadline(&item) <= now {
                let note = format!(
                    "no decision within {}s; rejected so it is never sent unreviewed",
                    self.inner.config.review_deadline.as_secs()
                );
                let expired_now = self
                    .resolve(&item.id, "mia:deadline", ReviewState::Rejected, Some(note))
                    .await;
                match expired_now {
                    Ok(_) => {}
                    // A reviewer, or another worker's expiry, decided it meanwhile (the store
                    // refuses a second decision): the first one stands and this one has
                    // nothing left to do. Any other error (an audit write that failed after
                    // the decision) is the round's.
                    Err(Error::InvalidInput(msg)) => {
                        match self.inner.store.review(&item.id).await? {
                            Some(decided) if decided.state != ReviewState::Pending => continue,
                            _ => return Err(Error::InvalidInput(msg)),
                        }
                    }
                    Err(e) => return Err(e),
                }
                tracing::info!(review = %item.id, campaign = %item.campaign, "mia.review expired");
                expired += 1;
            }
        }
        Ok(expired)
    }

    /// Approves an item as it is.
    ///
    /// # Errors
    /// [`Error::NotFound`], or [`Error::InvalidInput`] if it was already decided.
    pub async fn approve_review(&self, id: &ReviewId, reviewer: &str) -> Result<Campaign> {
        self.resolve(id, reviewer, ReviewState::Approved, None)
            .await
    }

    /// Approves an item with new text. The new text must pass the content policy outright.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when the edit does not pass the content policy (with the rule), or
    /// the item is not a variant, or was already decided.
    pub async fn edit_review(&self, id: &ReviewId, reviewer: &str, text: &str) -> Result<Campaign> {
        let state = ReviewState::Edited {
            text: text.trim().to_owned(),
        };
        self.resolve(id, reviewer, state, None).await
    }

    /// Rejects an item.
    ///
    /// # Errors
    /// [`Error::NotFound`], or [`Error::InvalidInput`] if it was already decided.
    pub async fn reject_review(
        &self,
        id: &ReviewId,
        reviewer: &str,
        note: &str,
    ) -> Result<Campaign> {
        self.resolve(id, reviewer, ReviewState::Rejected, Some(note.to_owned()))
            .await
    }

    async fn resolve(
        &self,
        id: &ReviewId,
        reviewer: &str,
        decision: ReviewState,
        note: Option<String>,
    ) -> Result<Campaign> {
        if reviewer.trim().is_empty() {
            return Err(Error::invalid("reviewer must be named"));
        }
        let mut item = self
            .inner
            .store
            .review(id)
            .await?
            .ok_or_else(|| Error::not_found("review", id))?;
        if item.state != ReviewState::Pending {
            return Err(Error::invalid(format!("review {id} was already decided")));
        }
        let read = self.campaign(&item.campaign).await?;
        let now = self.now();
        let mut recipient = None;
        // A variant's new status (and its edited text, if any), or `None` for a send. The
        // store applies it to the campaign as stored, in the transaction that saves the
        // decision: two reviewers deciding two variants at once, or a decision and an abort,
        // never undo each other's change.
        let variant_change = match &item.subject {
            ReviewSubject::Variant { variant } => {
                let new_text = match &decision {
                    ReviewState::Edited { text } => {
                        let ctx = ContentContext {
                            campaign: Some(&read.id),
                            language: &read.spec.language,
                            kind: ContentKind::Marketing,
                        };
                        let verdict = self.inner.content.check(text, &ctx);
                        if !verdict.is_allow() {
                            return Err(Error::invalid(format!(
                                "the edited text does not pass the content policy ({})",
                                verdict.deciding_rule().unwrap_or("unknown rule")
                            )));
                        }
                        Some((text.clone(), verdict.trace))
                    }
                    _ => None,
                };
                let status = if decision == ReviewState::Rejected {
                    VariantStatus::Rejected
                } else {
                    VariantStatus::Approved
                };
                Some((variant.clone(), status, new_text))
            }
            ReviewSubject::Send { job } => {
                if matches!(decision, ReviewState::Edited { .. }) {
                    return Err(Error::invalid(
                        "a held send can be approved or rejected, not edited",
                    ));
                }
                // The store releases the held job with the decision, in one transaction
                // (see `ReviewStore::resolve_review`): a worker that claims it then finds the
                // decision, and a crash leaves neither without the other. The campaign does
                // not change.
                recipient = self.inner.store.job(job).await?.map(|j| j.contact);
                None
            }
        };
        item.state = decision;
        item.reviewer = Some(reviewer.to_owned());
        item.note = note;
        item.resolved_at = Some(now);
        // The state the decision found the campaign in, for the audit of a state change.
        let was = std::sync::Mutex::new(read.state);
        let campaign = self
            .inner
            .store
            .decide_review(&item, &|campaign: &mut Campaign| {
                *was.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = campaign.state;
                if let Some((variant, status, new_text)) = &variant_change {
                    let v = campaign
                        .variants
                        .iter_mut()
                        .find(|v| &v.id == variant)
                        .ok_or_else(|| Error::not_found("variant", variant))?;
                    v.status = *status;
                    if let Some((text, trace)) = new_text {
                        v.text.clone_from(text);
                        v.trace.clone_from(trace);
                    }
                    settle_review(campaign, now);
                }
                Ok(())
            })
            .await?;
        let was = was
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut audit = vec![super::audit::review_decision(
            reviewer,
            &item,
            recipient.as_ref(),
            now,
        )];
        if campaign.state != was {
            let actor = format!("reviewer:{reviewer}");
            audit.push(super::audit::campaign_state(
                &actor,
                &campaign,
                was,
                json!({}),
            ));
        }
        self.audit(&audit).await?;
        Ok(campaign)
    }
}

/// Moves a campaign in review on once no variant waits: approved if any variant passed,
/// aborted if none did.
fn settle_review(campaign: &mut Campaign, now: jiff::Timestamp) {
    if campaign.state != CampaignState::InReview
        || campaign
            .variants
            .iter()
            .any(|v| v.status == VariantStatus::InReview)
    {
        return;
    }
    let result = if campaign.approved_variants().next().is_some() {
        campaign.transition(CampaignState::Approved, now)
    } else {
        campaign.state_reason = Some("every variant was rejected".into());
        campaign.transition(CampaignState::Aborted, now)
    };
    // Both edges leave in_review, which we just checked.
    debug_assert!(result.is_ok());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{ContentBlock, StopReason, Usage};

    fn completion(input: serde_json::Value) -> Completion {
        Completion {
            model: "m".into(),
            content: vec![ContentBlock::ToolUse {
                id: "t".into(),
                name: VARIANTS_TOOL.into(),
                input,
            }],
            stop_reason: StopReason::ToolUse,
            usage: Usage::default(),
            cost_micro_usd: Some(0),
        }
    }

    #[test]
    fn variants_are_trimmed_deduplicated_and_capped() {
        let c = completion(json!({"variants": [
            {"text": " one "}, {"text": "one"}, {"text": ""}, {"text": "two"}, {"text": "three"}
        ]}));
        assert_eq!(parse_variants(&c, 2).unwrap(), vec!["one", "two"]);
    }

    #[test]
    fn the_prompt_version_names_the_prompt_and_the_provider() {
        let v = prompt_version("template");
        assert!(v.starts_with("copy-") && v.len() == 17, "{v}");
        assert_eq!(v, prompt_version("template"));
        assert_ne!(v, prompt_version("claude"));
    }

    #[tokio::test]
    async fn every_generated_variant_records_its_prompt_version() {
        struct Nowhere;
        #[async_trait::async_trait]
        impl crate::Transport for Nowhere {
            fn name(&self) -> &str {
                "nowhere"
            }
            async fn send(&self, _: &crate::OutboundMessage) -> Result<crate::SendOutcome> {
                Err(Error::invalid("not in this test"))
            }
        }
        let agent = Agent::builder(crate::TemplateProvider::new(), Nowhere)
            .permissive_policies()
            .build()
            .unwrap();
        let c = agent
            .create_campaign(CampaignSpec::new("n", "tea", "20% off"))
            .await
            .unwrap();
        assert!(
            c.variants
                .iter()
                .all(|v| v.prompt_version == prompt_version("template"))
        );
    }

    #[test]
    fn the_request_schema_is_the_checked_schema_plus_the_count() {
        let spec = CampaignSpec::new("n", "tea", "20% off");
        let request = variants_request(&spec).unwrap();
        let mut sent = request.tools[0].input_schema.clone();
        assert_eq!(
            sent["properties"]["variants"]["maxItems"],
            json!(spec.variant_count)
        );
        sent["properties"]["variants"]
            .as_object_mut()
            .unwrap()
            .remove("maxItems");
        assert_eq!(sent, variants_schema(None));
        assert!(VARIANTS_SCHEMA.is_ok());
    }

    #[test]
    fn output_that_breaks_the_schema_is_a_clear_error() {
        let error = |input: serde_json::Value| {
            parse_variants(&completion(input), 3)
                .unwrap_err()
                .to_string()
        };
        let e = error(json!({"variants": [{"text": "ok"}, {"text": 7}, {"rationale": "x"}]}));
        assert!(e.contains("does not match its schema"), "{e}");
        assert!(
            e.contains("/variants/1/text: expected string, got integer 7"),
            "{e}"
        );
        assert!(
            e.contains("/variants/2: missing required property \"text\""),
            "{e}"
        );
        let e = error(json!({"variants": [{"text": "x".repeat(4097)}]}));
        assert!(
            e.contains("/variants/0/text: expected at most 4096 characters, got 4097"),
            "{e}"
        );
        let e = error(json!({"variants": [{"text": "ok", "rationale": null}]}));
        assert!(e.contains("/variants/0/rationale: expected string"), "{e}");
        let e = error(json!({"drafts": [{"text": "ok"}]}));
        assert!(
            e.contains("(root): missing required property \"variants\""),
            "{e}"
        );
        // Unknown extra members are allowed, as the schema does not forbid them.
        let c = completion(json!({"variants": [{"text": "ok", "tone": "warm"}], "note": 1}));
        assert_eq!(parse_variants(&c, 3).unwrap(), vec!["ok"]);
    }

    #[test]
    fn unusable_output_is_an_error_not_a_panic() {
        assert!(parse_variants(&completion(json!({"variants": "x"})), 2).is_err());
        assert!(parse_variants(&completion(json!({"variants": []})), 2).is_err());
        assert!(parse_variants(&completion(json!(null)), 2).is_err());
    }
}
