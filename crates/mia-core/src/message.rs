//! Outbound messages and what a transport says happened to them.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::contact::TelegramPeer;
use crate::ids::{CampaignId, ContactId, IdempotencyKey, VariantId};

/// One message on its way to one chat.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutboundMessage {
    /// Transports must treat a second send with the same key as the first one (no new post).
    pub key: IdempotencyKey,
    /// The campaign it belongs to, if any (a STOP confirmation has none).
    pub campaign: Option<CampaignId>,
    /// The recipient.
    pub contact: ContactId,
    /// Where to send.
    pub peer: TelegramPeer,
    /// The variant chosen for this recipient.
    pub variant: Option<VariantId>,
    /// The text.
    pub text: String,
    /// Deliver without a notification sound.
    pub silent: bool,
}

/// Why a transport will never deliver a message to this chat.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason", content = "detail")]
pub enum FailureReason {
    /// The user blocked the sender (`USER_IS_BLOCKED`, bot API 403 "blocked by the user").
    Blocked,
    /// The account is deleted or deactivated.
    Deactivated,
    /// The user's privacy settings forbid the message.
    PrivacyRestricted,
    /// The sender may not write in this chat.
    ChatWriteForbidden,
    /// Telegram limited the sending account for spam (`PEER_FLOOD`): the account and the
    /// campaign pause; mia never moves the traffic to another account.
    SpamLimited,
    /// Telegram rejected the message itself (too long, bad entities, ...).
    InvalidMessage(String),
    /// Anything else that will not succeed on retry.
    Other(String),
}

impl FailureReason {
    /// A stable name for reports and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            FailureReason::Blocked => "blocked",
            FailureReason::Deactivated => "deactivated",
            FailureReason::PrivacyRestricted => "privacy_restricted",
            FailureReason::ChatWriteForbidden => "chat_write_forbidden",
            FailureReason::SpamLimited => "spam_limited",
            FailureReason::InvalidMessage(_) => "invalid_message",
            FailureReason::Other(_) => "other",
        }
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureReason::InvalidMessage(d) | FailureReason::Other(d) => {
                write!(f, "{}: {d}", self.code())
            }
            _ => f.write_str(self.code()),
        }
    }
}

/// What happened to one send.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum SendOutcome {
    /// Telegram accepted the message.
    Sent {
        /// Telegram's message id.
        message_id: i64,
        /// True when the key had been sent before and this is the original message.
        duplicate: bool,
    },
    /// Over a limit: try again after this long (FloodWait, HTTP 429 `retry_after`, slow mode).
    RetryAfter {
        /// How long Telegram asked to wait.
        after: Duration,
        /// Which limit.
        reason: String,
    },
    /// Will never succeed.
    Failed(FailureReason),
}
