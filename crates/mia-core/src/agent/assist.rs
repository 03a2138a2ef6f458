//! [`Agent::answer`]: the reply assistant's one path from a person's message to an answer.

use serde_json::{Value, json};
use tracing::Instrument;

use super::Agent;
use super::reply::Reply;
use crate::assist::{Answer, Answered, ScreenedText};
use crate::audit::{AuditAction, AuditEvent};
use crate::contact::Contact;
use crate::error::{Error, Result};
use crate::ids::IdempotencyKey;
use crate::llm::{Completion, CompletionRequest, ContentBlock, Message, Role, ToolChoice, Usage};
use crate::policy::{ContentContext, ContentKind, Decision, Verdict};
use crate::transport::{InboundEvent, InboundKind};

impl Agent {
    /// Answers a contact's own message with the model, when the host turned the reply
    /// assistant on ([`AgentBuilder::reply_assistant`](crate::AgentBuilder::reply_assistant)).
    /// The steps and what each guards against are in [`crate::assist`]. The idempotency key is
    /// derived from the update id, so a redelivered update is not answered twice on transports
    /// that recognise resends.
    ///
    /// Call it after [`handle_inbound`](Self::handle_inbound) has seen the event (which records
    /// the reply and applies a STOP).
    ///
    /// # Errors
    /// [`Error::Config`] when the assistant is off; a store, model or transport error.
    pub async fn answer(&self, event: &InboundEvent) -> Result<Answered> {
        let Some((assistant, screen)) = &self.inner.assistant else {
            return Err(Error::Config(
                "the reply assistant is off: turn it on with AgentBuilder::reply_assistant".into(),
            ));
        };
        let skipped = |reason: &str| {
            Ok(Answered::without_model(Answer::Skipped {
                reason: reason.to_owned(),
            }))
        };
        let InboundKind::Text { text, reply_to } = &event.kind else {
            return skipped("not_text");
        };
        let Some(contact) = self.inner.store.contact_by_peer(&event.peer).await? else {
            return skipped("not_a_contact");
        };
        let locale = contact.locale.clone().unwrap_or_else(|| "und".to_owned());
        let screened = screen.screen(text, &locale);
        let key = IdempotencyKey::new(format!("assist:{}", event.id));
        if screened.opt_out || super::is_stop_request(text) {
            // A STOP, or an opt-out in other words: handle_inbound withdrew consent at once and
            // confirmed (the screen is the agent's inbound screen too); never for the model.
            return skipped("opt_out");
        }
        let mut record = AssistRecord::new(&key, &screened);
        if !screened.injection.is_empty() {
            let answer = Answer::Held {
                reason: "injection".into(),
                rules: screened.injection.clone(),
            };
            self.audit_answer(&contact, &record, &answer).await?;
            return Ok(Answered::without_model(answer));
        }

        // The campaign message they replied to, as context.
        let job = match reply_to {
            Some(id) => self.inner.store.job_by_message(&contact.id, *id).await?,
            None => None,
        };
        let mut quoted = None;
        if let Some(job) = &job
            && assistant.quotes_campaign_message()
            && let Some(campaign) = self.inner.store.campaign(&job.campaign).await?
        {
            quoted = campaign
                .variants
                .iter()
                .find(|v| Some(&v.id) == job.variant.as_ref())
                .map(|v| v.text.clone());
        }
        let tools = assistant.registered_tools()?;
        let specs: Vec<_> = tools.iter().map(|t| t.spec.clone()).collect();
        let mut messages = vec![Message::user(
            assistant.user_turn(&screened.redacted, quoted.as_deref()),
        )];
        let mut spent = Spent::default();
        let mut draft = None;
        for _ in 0..assistant.turns() {
            let request = CompletionRequest {
                model: assistant.model_name().map(str::to_owned),
                system: Some(assistant.system_prompt()),
                messages: messages.clone(),
                // Only the host's tools; without any, none at all.
                tool_choice: if specs.is_empty() {
                    ToolChoice::None
                } else {
                    ToolChoice::Auto
                },
                tools: specs.clone(),
                max_tokens: assistant.tokens(),
                temperature: assistant.temperature_setting(),
            };
            let provider = self.inner.llm.name();
            let span = crate::metrics::llm_span(provider);
            let completion = self
                .inner
                .llm
                .complete(&request)
                .instrument(span.clone())
                .await?;
            crate::metrics::llm_completion(&span, provider, &completion);
            record.model_called = true;
            spent.add(&completion);
            let calls: Vec<(String, String, Value)> = completion
                .content
                .iter()
                .filter_map(|b| match b {
                    ContentBlock::ToolUse { id, name, input } => {
                        Some((id.clone(), name.clone(), input.clone()))
                    }
                    _ => None,
                })
                .collect();
            if calls.is_empty() {
                draft = Some(text_of(&completion.content));
                break;
            }
            messages.push(Message {
                role: Role::Assistant,
                content: completion.content,
            });
            let mut results = Vec::with_capacity(calls.len());
            for (id, name, input) in calls {
                spent.tool_calls.push(name.clone());
                let outcome = match tools.iter().find(|t| t.spec.name == name) {
                    None => Err(format!("there is no tool named {name}")),
                    Some(t) => match t.schema.validate(&input) {
                        Err(violations) => Err(format!(
                            "invalid input for tool {name}: {}",
                            crate::schema::describe(&violations)
                        )),
                        Ok(()) => t.tool.call(&contact.id, input).await,
                    },
                };
                let is_error = outcome.is_err();
                results.push(ContentBlock::ToolResult {
                    tool_use_id: id,
                    content: outcome.unwrap_or_else(|e| e),
                    is_error,
                });
            }
            messages.push(Message {
                role: Role::User,
                content: results,
            });
        }
        record.tool_calls.clone_from(&spent.tool_calls);
        let with_model = |answer: Answer| spent.answered(answer);
        let Some(draft) = draft else {
            let answer = Answer::Held {
                reason: "turn_limit".into(),
                rules: Vec::new(),
            };
            self.audit_answer(&contact, &record, &answer).await?;
            return Ok(with_model(answer));
        };
        if draft.is_empty() {
            let answer = Answer::Skipped {
                reason: "empty_answer".into(),
            };
            self.audit_answer(&contact, &record, &answer).await?;
            return Ok(with_model(answer));
        }

        let campaign = job.as_ref().map(|j| &j.campaign);
        let (verdict, rewritten) = self.inner.content.check_rewriting(
            &draft,
            &ContentContext {
                campaign,
                language: &locale,
                kind: ContentKind::Answer,
            },
        );
        record.content = Some(verdict.clone());
        let answer = match verdict.decision {
            Decision::Deny => Answer::Blocked {
                rule: deciding(&verdict, "content_policy"),
            },
            Decision::Escalate | Decision::Defer { .. } => Answer::Held {
                reason: "content_review".into(),
                rules: verdict.trace.iter().map(|h| h.rule.clone()).collect(),
            },
            Decision::Allow => {
                let text = rewritten.unwrap_or(draft);
                match self
                    .service_reply(event, &contact, key.clone(), text, false)
                    .await?
                {
                    Reply::Sent { message_id } => Answer::Sent { message_id },
                    Reply::Denied { rule } => Answer::Denied { rule },
                    Reply::NotDelivered { outcome } => Answer::NotDelivered { outcome },
                }
            }
        };
        self.audit_answer(&contact, &record, &answer).await?;
        Ok(with_model(answer))
    }

    /// Whether the reply assistant is on.
    pub fn has_reply_assistant(&self) -> bool {
        self.inner.assistant.is_some()
    }

    async fn audit_answer(
        &self,
        contact: &Contact,
        record: &AssistRecord<'_>,
        answer: &Answer,
    ) -> Result<()> {
        let event = AuditEvent::new(
            self.now(),
            self.worker_actor(),
            AuditAction::PolicyDecision,
            Some(&contact.id),
            record.detail(answer),
        );
        self.audit(&[event]).await
    }
}

/// The text blocks of a completion, joined and trimmed.
fn text_of(content: &[ContentBlock]) -> String {
    content
        .iter()
        .filter_map(|b| match b {
            ContentBlock::Text { text } => Some(text.as_str()),
            _ => None,
        })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// What the model calls of one answer used, over every turn.
#[derive(Default)]
struct Spent {
    model: Option<String>,
    usage: Usage,
    /// `None` once a turn's cost is unknown: unknown, never a made-up sum.
    cost_micro_usd: Option<u64>,
    turns: u32,
    tool_calls: Vec<String>,
}

impl Spent {
    fn add(&mut self, completion: &Completion) {
        self.cost_micro_usd = match (self.turns, self.cost_micro_usd, completion.cost_micro_usd) {
            (0, _, cost) => cost,
            (_, Some(sum), Some(cost)) => Some(sum + cost),
            _ => None,
        };
        self.turns += 1;
        self.model = Some(completion.model.clone());
        self.usage.input_tokens += completion.usage.input_tokens;
        self.usage.output_tokens += completion.usage.output_tokens;
    }

    fn answered(&self, answer: Answer) -> Answered {
        Answered {
            answer,
            model: self.model.clone(),
            usage: self.usage,
            tool_calls: self.tool_calls.clone(),
            cost_micro_usd: self.cost_micro_usd,
        }
    }
}

fn deciding(verdict: &Verdict, fallback: &str) -> String {
    verdict.deciding_rule().unwrap_or(fallback).to_owned()
}

/// What the audit log keeps of one answer: never the message or the answer text.
struct AssistRecord<'a> {
    key: &'a IdempotencyKey,
    screened: &'a ScreenedText,
    model_called: bool,
    tool_calls: Vec<String>,
    content: Option<Verdict>,
}

impl<'a> AssistRecord<'a> {
    fn new(key: &'a IdempotencyKey, screened: &'a ScreenedText) -> Self {
        Self {
            key,
            screened,
            model_called: false,
            tool_calls: Vec::new(),
            content: None,
        }
    }

    fn detail(&self, answer: &Answer) -> Value {
        let outcome = serde_json::to_value(answer).unwrap_or(Value::Null);
        json!({
            "policy": "assistant",
            "reply": self.key.as_str(),
            "redacted": self.screened.redacted_kinds,
            "injection": self.screened.injection,
            "model_called": self.model_called,
            "tool_calls": self.tool_calls,
            "content": self.content.as_ref().map(|v| json!({
                "decision": super::audit::decision_json(&v.decision),
                "rule": v.deciding_rule(),
                "trace": super::audit::trace(&v.trace),
            })),
            "outcome": outcome,
        })
    }
}
