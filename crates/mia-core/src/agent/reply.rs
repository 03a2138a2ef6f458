//! Service replies: one answer to a person who just wrote, through the send policy like every
//! send (a STOP confirmation, the answer to `/privacy` or `/help`).

use serde::{Deserialize, Serialize};

use super::Agent;
use crate::consent::Purpose;
use crate::contact::Contact;
use crate::error::Result;
use crate::ids::IdempotencyKey;
use crate::message::{OutboundMessage, SendOutcome};
use crate::policy::{SendContext, SendKind, SendPolicy};
use crate::transport::InboundEvent;

/// What became of a service reply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reply")]
pub enum Reply {
    /// Telegram accepted it (or had it already: a redelivered update is not answered twice).
    Sent {
        /// Telegram's message id.
        message_id: i64,
    },
    /// The send policy refused it; the rule says why (their message is too old, ...).
    Denied {
        /// The deciding rule.
        rule: String,
    },
    /// The transport did not deliver it (blocked, rate-limited three times in a row, ...).
    NotDelivered {
        /// What the transport said.
        outcome: SendOutcome,
    },
}

impl Agent {
    /// Answers `event` with `text`: one service message to the person who sent it, checked by
    /// the send policy (allowed only while their message is fresh, never as marketing) and
    /// paced like every send. `tag` names the answer (`"privacy"`, `"help"`); the idempotency
    /// key is derived from the update id and the tag, so a redelivered update is not answered
    /// twice. Someone who is not a contact yet may be answered; nothing is stored about them.
    ///
    /// # Errors
    /// A store error, or a transport error that is not a per-message outcome.
    pub async fn reply(&self, event: &InboundEvent, tag: &str, text: &str) -> Result<Reply> {
        let contact = match self.inner.store.contact_by_peer(&event.peer).await? {
            Some(c) => c,
            None => Contact::new(
                format!("tg:{}", event.peer.id),
                event.peer,
                &self.inner.config.default_time_zone,
                event.at,
            )?,
        };
        let key = IdempotencyKey::new(format!("{tag}:{}", event.id));
        self.service_reply(event, &contact, key, text.to_owned(), false)
            .await
    }

    /// What mia stores about the person behind `peer`, in plain words, for a `/privacy`
    /// answer: their contact record, the consent in force per purpose with how it was given,
    /// how many events are linked to them, how to stop, and `contact_line` (where to ask for
    /// a copy or erasure). Message texts and attributes are not repeated back.
    ///
    /// # Errors
    /// A store error.
    pub async fn privacy_notice(
        &self,
        peer: &crate::contact::TelegramPeer,
        contact_line: &str,
    ) -> Result<String> {
        let store = &self.inner.store;
        let Some(contact) = store.contact_by_peer(peer).await? else {
            return Ok(format!(
                "We store nothing about you: you have not opted in to messages from us.\n{contact_line}"
            ));
        };
        let now = self.now();
        let history = store.consent_history(&contact.id).await?;
        let mut purposes: Vec<&Purpose> = history.iter().map(|r| &r.purpose).collect();
        purposes.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        purposes.dedup();
        let mut lines = vec![
            "What we store about you:".to_owned(),
            format!(
                "- your Telegram chat id, time zone ({}) and the date you first wrote ({})",
                contact.time_zone,
                contact.created_at.strftime("%Y-%m-%d")
            ),
        ];
        for purpose in purposes {
            let line = match crate::consent::current_consent(&history, purpose, now) {
                Some(r) => format!(
                    "- consent for {}: {} on {} ({})",
                    purpose.as_str(),
                    match r.status {
                        crate::consent::ConsentStatus::Granted => "given",
                        crate::consent::ConsentStatus::Withdrawn => "withdrawn",
                    },
                    r.recorded_at.strftime("%Y-%m-%d"),
                    r.evidence.method
                ),
                None => continue,
            };
            lines.push(line);
        }
        let events = store.contact_events(&contact.id).await?.len();
        lines.push(format!(
            "- {events} delivery and response events (sent, read, clicked, replied)"
        ));
        lines.push("Send STOP at any time to stop all messages.".to_owned());
        lines.push(contact_line.to_owned());
        Ok(lines.join("\n"))
    }

    pub(super) async fn service_reply(
        &self,
        event: &InboundEvent,
        contact: &Contact,
        key: IdempotencyKey,
        text: String,
        silent: bool,
    ) -> Result<Reply> {
        let now = self.now();
        let history = self.inner.store.consent_history(&contact.id).await?;
        let purpose = Purpose::new("service");
        let verdict = self.inner.sends.check(&SendContext {
            contact,
            kind: SendKind::ServiceReply {
                in_response_to: event.at.min(now),
            },
            purpose: &purpose,
            consent_history: &history,
            recent_sends: &[],
            campaign: None,
            now,
        });
        self.audit(&[super::audit::service_reply_decision(
            &self.worker_actor(),
            &contact.id,
            &key,
            &verdict,
            now,
        )])
        .await?;
        if !verdict.is_allow() {
            return Ok(Reply::Denied {
                rule: verdict.deciding_rule().unwrap_or("send_policy").to_owned(),
            });
        }
        let message =
            OutboundMessage::new(key, contact.id.clone(), contact.peer, text).with_silent(silent);
        Ok(match self.deliver(&message).await? {
            Ok(message_id) => Reply::Sent { message_id },
            Err(outcome) => Reply::NotDelivered { outcome },
        })
    }

    /// Sends one message outside the outbox (a reply, a chat post), after its policy checks:
    /// paced like every send, waiting out a retry-after up to three times rather than dropping
    /// it. `Ok(Err(outcome))` when the transport did not deliver it.
    pub(super) async fn deliver(
        &self,
        message: &OutboundMessage,
    ) -> Result<std::result::Result<i64, SendOutcome>> {
        let mut last = None;
        for _ in 0..3 {
            self.pace().await?;
            match self.inner.transport.send(message).await? {
                SendOutcome::Sent { message_id, .. } => return Ok(Ok(message_id)),
                SendOutcome::RetryAfter { after, reason } => {
                    let until = super::worker::add(self.now(), after);
                    self.inner.clock.sleep_until(until).await;
                    last = Some(SendOutcome::RetryAfter { after, reason });
                }
                other => return Ok(Err(other)),
            }
        }
        Ok(Err(last.unwrap_or(SendOutcome::Failed(
            crate::FailureReason::Other("no attempt".into()),
        ))))
    }
}
