//! Posts to groups and channels the sender administers, through the same guards as every send.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Agent;
use crate::audit::{AuditAction, AuditEvent};
use crate::consent::Purpose;
use crate::contact::{Contact, PeerKind, TelegramPeer};
use crate::error::{Error, Result};
use crate::ids::IdempotencyKey;
use crate::message::{OutboundMessage, SendOutcome};
use crate::policy::{ContentContext, ContentKind, Decision, SendContext, SendKind, SendPolicy};

/// One post to a group or channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatPost {
    /// The group or channel (never a private chat).
    pub chat: TelegramPeer,
    /// The host's id for this post. Posting the same key again does not post twice on
    /// transports that recognise resends (the simulator, MTProto).
    pub key: String,
    /// The text.
    pub text: String,
    /// The chat's time zone (IANA), for quiet hours and weekdays. Default `UTC`.
    pub time_zone: String,
    /// The language of the text (BCP 47), for the content policy. Default `und`.
    pub language: String,
    /// Post without a notification sound.
    pub silent: bool,
}

impl ChatPost {
    /// A post of `text` to `chat` under the host's `key`.
    pub fn new(chat: TelegramPeer, key: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            chat,
            key: key.into(),
            text: text.into(),
            time_zone: "UTC".into(),
            language: "und".into(),
            silent: false,
        }
    }

    /// The chat's time zone.
    #[must_use]
    pub fn time_zone(mut self, tz: impl Into<String>) -> Self {
        self.time_zone = tz.into();
        self
    }

    /// The text's language.
    #[must_use]
    pub fn language(mut self, language: impl Into<String>) -> Self {
        self.language = language.into();
        self
    }

    /// Without a notification sound.
    #[must_use]
    pub fn silent(mut self) -> Self {
        self.silent = true;
        self
    }
}

/// What became of a chat post.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "post")]
pub enum Posted {
    /// Telegram accepted it.
    Sent {
        /// Telegram's message id.
        message_id: i64,
    },
    /// The content policy denied the text.
    Blocked {
        /// The deciding rule.
        rule: String,
    },
    /// The content policy wants a person to look at the text first; post it again once
    /// it is approved (or edited).
    Held {
        /// The rules that escalated.
        rules: Vec<String>,
    },
    /// Not now on the chat's clock (quiet hours, weekdays); post again at `until`.
    Deferred {
        /// The deciding rule.
        rule: String,
        /// When it may be posted.
        until: jiff::Timestamp,
    },
    /// The send policy refused it.
    Denied {
        /// The deciding rule.
        rule: String,
    },
    /// The transport did not deliver it (not an admin there, rate-limited three times, ...).
    NotDelivered {
        /// What the transport said.
        outcome: SendOutcome,
    },
}

impl Agent {
    /// Posts to a group or channel the sender administers. The text passes the content
    /// policy ([`ContentKind::ChatPost`]: every rule but the opt-out notice) and the post passes the send policy as
    /// [`SendKind::ChatPost`] on the chat's clock; both decisions go to the audit log. Posts
    /// are paced like every send and wait out Telegram's group limits (about 20 messages a
    /// minute per group) up to three retry-afters.
    ///
    /// # Errors
    /// [`Error::Refused`] for a private chat (people are written to through campaigns, with
    /// consent); [`Error::InvalidInput`] for an unknown time zone or an empty key; a store or
    /// transport error.
    pub async fn post_to_chat(&self, post: &ChatPost) -> Result<Posted> {
        if post.chat.kind == PeerKind::User {
            return Err(Error::Refused(
                "post_to_chat posts to groups and channels only; a person is written to \
                 through a campaign, with consent"
                    .into(),
            ));
        }
        if post.key.trim().is_empty() {
            return Err(Error::InvalidInput("a chat post needs a key".into()));
        }
        let now = self.now();
        let chat = Contact::new(
            format!("chat:{}", post.chat.id),
            post.chat,
            &post.time_zone,
            now,
        )?;
        let key = IdempotencyKey::new(format!("chat:{}:{}", post.chat.id, post.key));
        let actor = self.worker_actor();
        let (content, rewritten) = self.inner.content.check_rewriting(
            &post.text,
            &ContentContext {
                campaign: None,
                language: &post.language,
                kind: ContentKind::ChatPost,
            },
        );
        let content_entry = AuditEvent::new(
            now,
            &actor,
            AuditAction::ContentDecision,
            None,
            json!({
                "policy": "content",
                "post": key.as_str(),
                "decision": super::audit::decision_json(&content.decision),
                "rule": content.deciding_rule(),
                "trace": super::audit::trace(&content.trace),
                "rewritten": rewritten.is_some(),
            }),
        );
        match content.decision {
            Decision::Allow => {}
            Decision::Deny => {
                self.audit(&[content_entry]).await?;
                return Ok(Posted::Blocked {
                    rule: content.deciding_rule().unwrap_or("content_policy").into(),
                });
            }
            Decision::Escalate | Decision::Defer { .. } => {
                self.audit(&[content_entry]).await?;
                return Ok(Posted::Held {
                    rules: content.trace.iter().map(|h| h.rule.clone()).collect(),
                });
            }
        }
        let purpose = Purpose::marketing();
        let verdict = self.inner.sends.check(&SendContext {
            contact: &chat,
            kind: SendKind::ChatPost,
            purpose: &purpose,
            consent_history: &[],
            recent_sends: &[],
            campaign: None,
            now,
        });
        let send_entry = AuditEvent::new(
            now,
            &actor,
            AuditAction::PolicyDecision,
            None,
            json!({
                "policy": "send",
                "kind": "chat_post",
                "post": key.as_str(),
                "decision": super::audit::decision_json(&verdict.decision),
                "rule": verdict.deciding_rule(),
                "trace": super::audit::trace(&verdict.trace),
            }),
        );
        self.audit(&[content_entry, send_entry]).await?;
        let rule = || verdict.deciding_rule().unwrap_or("send_policy").to_owned();
        match verdict.decision {
            Decision::Allow => {}
            Decision::Defer { until } => {
                return Ok(Posted::Deferred {
                    rule: rule(),
                    until,
                });
            }
            Decision::Deny | Decision::Escalate => return Ok(Posted::Denied { rule: rule() }),
        }
        let text = rewritten.unwrap_or_else(|| post.text.clone());
        let message =
            OutboundMessage::new(key, chat.id.clone(), post.chat, text).with_silent(post.silent);
        Ok(match self.deliver(&message).await? {
            Ok(message_id) => Posted::Sent { message_id },
            Err(outcome) => Posted::NotDelivered { outcome },
        })
    }
}
