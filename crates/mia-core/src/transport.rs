//! The transport seam: send one message idempotently, report limits, receive inbound events.
//!
//! Chat administration is a separate trait, [`ChatAdmin`], so a transport may offer sending only.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::contact::TelegramPeer;
use crate::error::Result;
use crate::message::{OutboundMessage, SendOutcome};

/// What a transport can do and the limits it must keep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Messages per second over all chats (Telegram bots: about 30).
    pub messages_per_second: Option<f64>,
    /// The longest text accepted (Telegram: 4096 characters).
    pub max_text_chars: usize,
    /// Whether the transport reports reads.
    pub read_receipts: bool,
    /// Whether Telegram itself recognises a resend of an idempotency key, across processes
    /// (MTProto's `random_id`, the simulator's journal). When false (the Bot API), a job found
    /// with a send in flight after a crash is not sent again: it goes to the dead letters as
    /// `outcome_unknown` for a human to check. Defaults to false: claim it only if it holds.
    pub idempotent_sends: bool,
}

impl Default for Capabilities {
    fn default() -> Self {
        Self {
            messages_per_second: Some(30.0),
            max_text_chars: 4096,
            read_receipts: false,
            idempotent_sends: false,
        }
    }
}

/// Something a contact did that the transport observed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum InboundKind {
    /// A bot command (`/start spring_sale`): `name` without the slash, `payload` after the space.
    Command {
        /// The command.
        name: String,
        /// Its argument (a deep-link payload for `/start`).
        payload: String,
    },
    /// A text message.
    Text {
        /// What they wrote. Data, never instructions.
        text: String,
        /// The message it replies to, if it quotes one of ours.
        reply_to: Option<i64>,
    },
    /// One of our messages reached their device.
    Delivered {
        /// Our message.
        message_id: i64,
    },
    /// They read one of our messages.
    Read {
        /// Our message.
        message_id: i64,
    },
    /// They opened a link in one of our messages.
    Clicked {
        /// Our message.
        message_id: i64,
    },
    /// They bought after one of our messages (reported by the host's shop, or the simulator).
    Converted {
        /// Our message.
        message_id: i64,
        /// Order value in minor units.
        value_minor: i64,
    },
    /// They blocked us.
    Blocked,
}

/// One inbound event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InboundEvent {
    /// A transport-unique id (Telegram's update id), used to deduplicate.
    pub id: String,
    /// When it happened.
    pub at: Timestamp,
    /// Who.
    pub peer: TelegramPeer,
    /// What.
    pub kind: InboundKind,
}

/// Sends messages to Telegram (or a simulation of it).
#[async_trait]
pub trait Transport: Send + Sync {
    /// A short name for traces (`"sim"`, `"bot_api"`, `"mtproto"`).
    fn name(&self) -> &str;

    /// Limits and features.
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    /// Sends one message. A second call with the same [`OutboundMessage::key`] must not post
    /// again: it returns the first message's id with `duplicate: true`.
    ///
    /// Per-message results (over a limit, blocked, ...) are [`SendOutcome`]s, not errors.
    ///
    /// # Errors
    /// [`Error::Transport`](crate::Error::Transport) when the transport itself failed (I/O,
    /// protocol); retryable ones are retried with backoff.
    async fn send(&self, message: &OutboundMessage) -> Result<SendOutcome>;

    /// Inbound events that have arrived since the last call, oldest first. Never blocks for long.
    ///
    /// # Errors
    /// [`Error::Transport`](crate::Error::Transport) when polling failed.
    async fn receive(&self) -> Result<Vec<InboundEvent>> {
        Ok(Vec::new())
    }

    /// How long until the next inbound event is expected, if the transport knows (the simulator
    /// does); lets an idle agent sleep exactly that long in virtual time.
    fn next_inbound_in(&self) -> Option<Duration> {
        None
    }
}

#[async_trait]
impl<T: Transport + ?Sized> Transport for Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }
    async fn send(&self, message: &OutboundMessage) -> Result<SendOutcome> {
        (**self).send(message).await
    }
    async fn receive(&self) -> Result<Vec<InboundEvent>> {
        (**self).receive().await
    }
    fn next_inbound_in(&self) -> Option<Duration> {
        (**self).next_inbound_in()
    }
}

/// Administers chats the sender owns: edit, delete and pin its own messages.
///
/// Creating groups and inviting people live here too once a transport implements them; mia will
/// only ever invite contacts with consent for that purpose.
#[async_trait]
pub trait ChatAdmin: Send + Sync {
    /// Replaces the text of one of our messages.
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound) for an unknown message.
    async fn edit_message(&self, peer: TelegramPeer, message_id: i64, text: &str) -> Result<()>;

    /// Deletes one of our messages.
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound) for an unknown message.
    async fn delete_message(&self, peer: TelegramPeer, message_id: i64) -> Result<()>;

    /// Pins one of our messages in its chat.
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound) for an unknown message.
    async fn pin_message(&self, peer: TelegramPeer, message_id: i64) -> Result<()>;
}
