//! [`BotRunner`]: the loop of a consent-first bot — poll, hand updates to the agent, answer
//! `/privacy` and `/help`, and let the reply assistant answer other messages when it is on.

use std::time::Duration;

use mia_core::{Agent, Answered, InboundKind, Reply, is_stop_request};
use serde::Serialize;

use super::transport::BotApiTransport;

/// What the runner did with one update (no message text: safe to log).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Handled {
    /// The update id (`bot:<update_id>`).
    pub update: String,
    /// `/start`, `/stop`, `/privacy`, `stop` (a STOP word), `text`, `blocked`, ...
    pub kind: String,
    /// The answer sent to a `/privacy` or `/help` command, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<Reply>,
    /// What the reply assistant did with a text message, when it is on
    /// ([`Agent::answer`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<Answered>,
}

/// Runs a bot: long-polls updates, lets the [`Agent`] handle them (`/start [purpose]` opts in
/// with the update as evidence, `/stop` and STOP words opt out at once with one confirmation,
/// replies become events), and answers `/privacy` with what is stored and `/help` with the
/// help text. With the agent's reply assistant on
/// ([`AgentBuilder::reply_assistant`](mia_core::AgentBuilder::reply_assistant)), other text
/// messages are answered by the model through [`Agent::answer`]. Every answer goes through the
/// agent's send policy.
///
/// The agent must be built on the same [`BotApiTransport`] (a clone).
#[derive(Debug)]
pub struct BotRunner {
    agent: Agent,
    transport: BotApiTransport,
    poll_timeout: Duration,
    privacy_contact: String,
    help: String,
}

impl BotRunner {
    /// A runner with a 25 s long poll and default `/privacy` and `/help` texts.
    pub fn new(agent: Agent, transport: BotApiTransport) -> Self {
        Self {
            agent,
            transport,
            poll_timeout: Duration::from_secs(25),
            privacy_contact: "Reply here to ask for a copy of your data or its erasure.".into(),
            help: "Send /start to get our news, /stop (or STOP) to stop them at any time, \
                   and /privacy to see what we store about you."
                .into(),
        }
    }

    /// How long one poll waits for updates (zero: return at once).
    #[must_use]
    pub fn poll_timeout(mut self, timeout: Duration) -> Self {
        self.poll_timeout = timeout;
        self
    }

    /// The last line of the `/privacy` answer: where to ask for a copy or erasure.
    #[must_use]
    pub fn privacy_contact(mut self, line: impl Into<String>) -> Self {
        self.privacy_contact = line.into();
        self
    }

    /// The answer to `/help`.
    #[must_use]
    pub fn help_text(mut self, text: impl Into<String>) -> Self {
        self.help = text.into();
        self
    }

    /// One poll: handles every update that arrived and returns what was done.
    ///
    /// # Errors
    /// A polling error (retryable ones are worth retrying), a store or transport error.
    pub async fn step(&self) -> mia_core::Result<Vec<Handled>> {
        let (before, events) = self.transport.poll_from(self.poll_timeout).await?;
        if events.is_empty() {
            return Ok(Vec::new());
        }
        if let Err(e) = self.agent.handle_inbound(&events).await {
            // Not confirmed: the next poll brings the batch again instead of losing it.
            self.transport.rewind(before).await;
            return Err(e);
        }
        let mut handled = Vec::with_capacity(events.len());
        for event in &events {
            let mut answer = None;
            let (kind, reply) = match &event.kind {
                InboundKind::Command { name, .. } if name == "privacy" => {
                    let notice = self
                        .agent
                        .privacy_notice(&event.peer, &self.privacy_contact)
                        .await?;
                    let reply = self.agent.reply(event, "privacy", &notice).await?;
                    ("/privacy".to_owned(), Some(reply))
                }
                InboundKind::Command { name, .. } if name == "help" => {
                    let reply = self.agent.reply(event, "help", &self.help).await?;
                    ("/help".to_owned(), Some(reply))
                }
                InboundKind::Command { name, .. } => (format!("/{name}"), None),
                InboundKind::Text { text, .. } if is_stop_request(text) => ("stop".into(), None),
                InboundKind::Text { .. } => {
                    if self.agent.has_reply_assistant() {
                        match self.agent.answer(event).await {
                            Ok(a) => answer = Some(a),
                            // The model being down must not stop the bot: the message is
                            // recorded, and STOP and /privacy keep working.
                            Err(e @ mia_core::Error::Llm { .. }) => {
                                tracing::warn!(error = %e, update = %event.id, "mia.assistant model call failed; not answered");
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    ("text".into(), None)
                }
                InboundKind::Blocked => ("blocked".into(), None),
                _ => ("other".into(), None),
            };
            handled.push(Handled {
                update: event.id.clone(),
                kind,
                reply,
                answer,
            });
        }
        Ok(handled)
    }

    /// Polls until an error that retrying cannot fix (a refused token, another process polling
    /// the same bot), calling `each` for every handled update. Transient polling failures are
    /// retried with backoff (0.5 s doubling to 32 s). With `exit_when_idle`, returns after the
    /// first poll that brought nothing.
    ///
    /// # Errors
    /// A non-retryable error, or a retryable one that persisted through 8 attempts.
    pub async fn run(
        &self,
        exit_when_idle: bool,
        mut each: impl FnMut(&Handled),
    ) -> mia_core::Result<()> {
        let mut failures = 0u32;
        loop {
            match self.step().await {
                Ok(handled) => {
                    failures = 0;
                    if handled.is_empty() && exit_when_idle {
                        return Ok(());
                    }
                    handled.iter().for_each(&mut each);
                }
                Err(e) if e.is_retryable() && failures < 8 => {
                    failures += 1;
                    let wait = Duration::from_millis(500 << failures.min(6));
                    tracing::warn!(error = %e, ?wait, "mia.inbound polling failed; retrying");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}
