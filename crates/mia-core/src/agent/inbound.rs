//! Inbound: `/start` grants consent with evidence, STOP withdraws it at once, everything else
//! becomes events attributed to the message it follows.

use super::Agent;
use super::reply::Reply;
use super::worker::RunStats;
use crate::allocator::Reward;
use crate::consent::{ConsentRecord, Evidence, Purpose};
use crate::contact::Contact;
use crate::error::Result;
use crate::event::{Event, EventKind};
use crate::ids::{ContactId, EventId, IdempotencyKey};
use crate::store::Job;
use crate::transport::{InboundEvent, InboundKind};
use jiff::Timestamp;

use tracing::Instrument;

/// Words that, sent alone, mean "stop messaging me" (compared case-insensitively, trimmed).
const STOP_WORDS: &[&str] = &[
    "stop",
    "/stop",
    "stopall",
    "unsubscribe",
    "/unsubscribe",
    "cancel",
    "end",
    "quit",
    "opt out",
    "optout",
    "стоп",
    "отписаться",
    "abmelden",
    "baja",
    "arrêt",
    "arret",
    "parar",
];

/// The `kind` of an inbound event in spans and metrics: a bounded set, never its text.
fn kind_name(kind: &InboundKind) -> &'static str {
    match kind {
        InboundKind::Command { name, .. } if name == "start" => "start",
        InboundKind::Command { name, .. } if is_stop_request(name) => "stop",
        InboundKind::Command { .. } => "command",
        InboundKind::Text { text, .. } if is_stop_request(text) => "stop",
        InboundKind::Text { .. } => "text",
        InboundKind::Delivered { .. } => "delivered",
        InboundKind::Read { .. } => "read",
        InboundKind::Clicked { .. } => "clicked",
        InboundKind::Converted { .. } => "converted",
        InboundKind::Blocked => "blocked",
    }
}

/// Whether `text` is a request to stop messages.
pub fn is_stop_request(text: &str) -> bool {
    let t = text.trim().trim_end_matches(['.', '!']).to_lowercase();
    STOP_WORDS.contains(&t.as_str())
}

impl Agent {
    /// Takes pending inbound events from the transport and handles them.
    ///
    /// # Errors
    /// A transport, store or sink error.
    pub async fn poll_inbound(&self) -> Result<RunStats> {
        let events = self.inner.transport.receive().await?;
        self.handle_inbound(&events).await
    }

    /// Handles inbound events: `/start [purpose]` grants consent (for `marketing` unless the
    /// payload names another purpose) with the update as evidence; STOP and its synonyms
    /// withdraw every purpose, cancel queued jobs in the same transaction, and send one
    /// confirmation; reads, clicks, replies and conversions become events attributed to the
    /// campaign and variant of the message they follow. Text from contacts is data, never an
    /// instruction to the agent.
    ///
    /// # Errors
    /// A store or sink error.
    pub async fn handle_inbound(&self, events: &[InboundEvent]) -> Result<RunStats> {
        let mut stats = RunStats::default();
        // Events are written in one batch at the end (one store transaction, not one per
        // event), and also when handling fails halfway, so what was handled is recorded.
        let mut out = Vec::with_capacity(events.len());
        // Every withdrawal and grant of the batch is applied before any confirmation is sent
        // (a confirmation may wait for a send slot), and one failing event does not stop the
        // others: the transport does not redeliver them.
        let mut confirmations = Vec::new();
        let mut first_error = None;
        // The span of each confirmation's event, so the confirmation is traced under it.
        let mut confirmation_spans = Vec::new();
        for event in events {
            stats.inbound += 1;
            let kind = kind_name(&event.kind);
            crate::metrics::inbound(kind);
            // The update id is Telegram's, not the contact's; the correlation id is recorded when
            // the event follows one of our sends.
            let span = tracing::info_span!(
                "mia.inbound",
                kind,
                update_id = %event.id,
                correlation_id = tracing::field::Empty,
            );
            if let Err(e) = self
                .handle_one(event, &mut stats, &mut out, &mut confirmations)
                .instrument(span.clone())
                .await
            {
                span.in_scope(|| {
                    tracing::error!(error = %e, "mia.inbound event not handled");
                });
                first_error.get_or_insert(e);
            }
            confirmation_spans.resize(confirmations.len(), span);
        }
        if !out.is_empty() {
            self.inner.sink.record(&out).await?;
            // A reply, click, read or conversion ends the wait-fors of journeys waiting for it.
            stats.journey_steps += self.resolve_waits(&out).await?;
        }
        for ((event, contact), span) in confirmations.iter().zip(confirmation_spans) {
            self.confirm_stop(event, contact).instrument(span).await?;
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(stats),
        }
    }

    async fn handle_one(
        &self,
        event: &InboundEvent,
        stats: &mut RunStats,
        out: &mut Vec<Event>,
        confirmations: &mut Vec<(InboundEvent, Contact)>,
    ) -> Result<()> {
        {
            let contact = self.inner.store.contact_by_peer(&event.peer).await?;
            match (&event.kind, contact) {
                (InboundKind::Command { name, payload }, contact) if name == "start" => {
                    self.opt_in(event, payload, contact, out).await?;
                }
                (InboundKind::Command { name, .. }, Some(contact)) if is_stop_request(name) => {
                    self.stop(event, &contact, None, out).await?;
                    confirmations.push((event.clone(), contact));
                }
                (InboundKind::Text { text, reply_to }, Some(contact))
                    if is_stop_request(text) || self.opts_out(text, &contact) =>
                {
                    // A STOP is attributed to the campaign message it answers (withdrawal
                    // itself is for every campaign).
                    let job = self.answered(&contact.id, *reply_to, event.at).await?;
                    self.stop(event, &contact, job.as_ref(), out).await?;
                    confirmations.push((event.clone(), contact));
                }
                (InboundKind::Text { reply_to, .. }, Some(contact)) => {
                    let job = self.answered(&contact.id, *reply_to, event.at).await?;
                    self.record_inbound(event, &contact.id, job.as_ref(), EventKind::Replied, out);
                }
                (InboundKind::Delivered { message_id }, Some(c)) => {
                    self.attributed(event, &c.id, *message_id, EventKind::Delivered, out)
                        .await?;
                }
                (InboundKind::Read { message_id }, Some(c)) => {
                    self.attributed(event, &c.id, *message_id, EventKind::Read, out)
                        .await?;
                }
                (InboundKind::Clicked { message_id }, Some(c)) => {
                    self.attributed(event, &c.id, *message_id, EventKind::Clicked, out)
                        .await?;
                }
                (
                    InboundKind::Converted {
                        message_id,
                        value_minor,
                    },
                    Some(c),
                ) => {
                    let kind = EventKind::Converted {
                        value_minor: *value_minor,
                    };
                    if let Some(job) = self
                        .attributed(event, &c.id, *message_id, kind, out)
                        .await?
                        && let Some(variant) = job.variant
                    {
                        self.inner.allocator.observe(&Reward {
                            campaign: job.campaign,
                            contact: c.id.clone(),
                            variant,
                            value: *value_minor as f64,
                        });
                    }
                }
                (InboundKind::Blocked, Some(c)) => {
                    self.record_inbound(event, &c.id, None, EventKind::Blocked, out);
                    stats.paused_for_spam += self.note_block().await?;
                }
                (_, None) => {
                    tracing::debug!("mia.inbound event from an unknown chat ignored");
                }
                (InboundKind::Command { .. }, Some(_)) => {}
            }
        }
        Ok(())
    }

    /// The campaign job a text from `contact` at `at` answers: the message it quotes; or, when
    /// it quotes nothing, the latest campaign message sent to the contact within the reply
    /// window before it. A text quoting a message that is not a campaign message (a STOP
    /// confirmation, a `/privacy` answer) answers no campaign.
    ///
    /// "Sent" is the time of the send itself, from the job's `sent` event (a job's record may
    /// be written later, when its batch's results are), so a quick reply to the newest message
    /// finds it.
    async fn answered(
        &self,
        contact: &ContactId,
        reply_to: Option<i64>,
        at: Timestamp,
    ) -> Result<Option<Job>> {
        if let Some(id) = reply_to {
            return self.inner.store.job_by_message(contact, id).await;
        }
        let window = self.inner.config.reply_window;
        if window.is_zero() {
            return Ok(None);
        }
        let since = at.checked_sub(window).unwrap_or(Timestamp::MIN);
        let latest = self
            .inner
            .store
            .contact_events(contact)
            .await?
            .into_iter()
            .filter(|e| {
                e.kind == EventKind::Sent && e.campaign.is_some() && e.at <= at && e.at >= since
            })
            .max_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
        let Some(latest) = latest else {
            return Ok(None);
        };
        Ok(self
            .inner
            .store
            .contact_jobs(contact)
            .await?
            .into_iter()
            .find(|j| EventId::derived(j.key.as_str(), EventKind::Sent.name()) == latest.id))
    }

    async fn attributed(
        &self,
        event: &InboundEvent,
        contact: &ContactId,
        message_id: i64,
        kind: EventKind,
        out: &mut Vec<Event>,
    ) -> Result<Option<Job>> {
        let job = self.inner.store.job_by_message(contact, message_id).await?;
        self.record_inbound(event, contact, job.as_ref(), kind, out);
        Ok(job)
    }

    fn record_inbound(
        &self,
        event: &InboundEvent,
        contact: &ContactId,
        job: Option<&Job>,
        kind: EventKind,
        out: &mut Vec<Event>,
    ) {
        // Called inside the event's `mia.inbound` span (see `handle_inbound`).
        if let Some(job) = job {
            tracing::Span::current().record("correlation_id", job.key.as_str());
        }
        out.push(Event {
            id: EventId::derived(&event.id, kind.name()),
            at: event.at,
            contact: contact.clone(),
            campaign: job.map(|j| j.campaign.clone()),
            variant: job.and_then(|j| j.variant.clone()),
            step: job.map(|j| crate::journey::JourneyPosition::step_index(j.step)),
            kind,
        });
    }

    async fn opt_in(
        &self,
        event: &InboundEvent,
        payload: &str,
        contact: Option<Contact>,
        out: &mut Vec<Event>,
    ) -> Result<()> {
        let contact = match contact {
            Some(c) => c,
            None => {
                // Someone who writes to us first becomes a contact; they asked to hear from us.
                let c = Contact::new(
                    format!("tg:{}", event.peer.id),
                    event.peer,
                    &self.inner.config.default_time_zone,
                    event.at,
                )?;
                self.inner
                    .store
                    .upsert_contacts(std::slice::from_ref(&c))
                    .await?;
                c
            }
        };
        let purpose = match payload.trim() {
            "" => Purpose::marketing(),
            p => Purpose::new(p),
        };
        if crate::consent::is_reserved_purpose(&purpose) {
            // A deep link cannot lift a restriction of processing by granting its marker.
            return Err(crate::Error::invalid(format!(
                "/start payload {purpose} is a reserved purpose; no consent recorded"
            )));
        }
        let record = ConsentRecord::grant(
            contact.id.clone(),
            purpose,
            Evidence::new(
                "telegram_start",
                format!("update={} payload={payload}", event.id),
            ),
            self.inner.config.notice_version.clone(),
            // Never stamped ahead of our clock (the transport's may run fast).
            event.at.min(self.now()),
        );
        self.inner
            .store
            .append_consent(std::slice::from_ref(&record))
            .await?;
        self.audit(&[super::audit::consent_change("inbound", &record, None)])
            .await?;
        self.record_inbound(event, &contact.id, None, EventKind::OptedIn, out);
        Ok(())
    }

    /// Whether the inbound screen reads `text` as an opt-out in other words.
    fn opts_out(&self, text: &str, contact: &Contact) -> bool {
        self.inner.screen.as_ref().is_some_and(|screen| {
            screen
                .screen(text, contact.locale.as_deref().unwrap_or("und"))
                .opt_out
        })
    }

    async fn stop(
        &self,
        event: &InboundEvent,
        contact: &Contact,
        job: Option<&Job>,
        out: &mut Vec<Event>,
    ) -> Result<()> {
        let evidence = Evidence::new("stop_keyword", format!("update={}", event.id));
        let mut audit = Vec::new();
        let cancelled = self
            .withdraw_everything(&contact.id, evidence, "inbound", &mut audit)
            .await;
        // The withdrawals that happened are recorded even if a later one failed.
        self.audit(&audit).await?;
        let cancelled = cancelled?;
        tracing::info!(cancelled, "mia.inbound stop");
        self.record_inbound(event, &contact.id, job, EventKind::OptedOut, out);
        Ok(())
    }

    /// One confirmation, through the send policy like every send. Its key derives from the
    /// update id, so a redelivered STOP does not confirm twice.
    async fn confirm_stop(&self, event: &InboundEvent, contact: &Contact) -> Result<()> {
        let key = IdempotencyKey::new(format!("stop:{}", event.id));
        let text = self.inner.config.stop_confirmation.clone();
        match self.service_reply(event, contact, key, text, true).await {
            Ok(Reply::Sent { .. }) => {}
            Ok(Reply::Denied { rule }) => {
                tracing::info!(rule, "mia.policy stop confirmation not sent");
            }
            Ok(Reply::NotDelivered { outcome }) => {
                tracing::info!(?outcome, "mia.send stop confirmation not delivered");
            }
            // The withdrawal already holds; a lost confirmation must not undo or block it.
            Err(e) => tracing::warn!(error = %e, "mia.send stop confirmation failed"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_words_match_alone_not_inside_sentences() {
        for t in [
            "STOP",
            " stop ",
            "Stop!",
            "/stop",
            "Unsubscribe",
            "СТОП",
            "opt out",
        ] {
            assert!(is_stop_request(t), "{t}");
        }
        for t in ["don't stop", "stopwatch", "when does the sale end?", ""] {
            assert!(!is_stop_request(t), "{t}");
        }
    }
}
