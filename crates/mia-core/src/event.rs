//! Events: the facts analytics and experiments learn from.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::ids::{CampaignId, ContactId, EventId, VariantId};

/// What happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum EventKind {
    /// Telegram accepted the message.
    Sent,
    /// The message reached the recipient's device.
    Delivered,
    /// The recipient read it.
    Read,
    /// The recipient followed a link in it.
    Clicked,
    /// The recipient replied.
    Replied,
    /// The recipient bought; `value_minor` is in the campaign currency's minor units (cents).
    Converted {
        /// The order value in minor units.
        value_minor: i64,
    },
    /// The contact granted consent (`/start` with evidence).
    OptedIn,
    /// The contact withdrew consent (STOP).
    OptedOut,
    /// The contact blocked the sender.
    Blocked,
    /// The send failed for good.
    Failed {
        /// Why, as [`FailureReason::code`](crate::FailureReason::code).
        reason: String,
    },
    /// The send policy refused the send.
    Skipped {
        /// The rule that decided.
        rule: String,
    },
}

impl EventKind {
    /// Every kind's [`name`](Self::name), in the order of the variants.
    pub const NAMES: [&'static str; 11] = [
        "sent",
        "delivered",
        "read",
        "clicked",
        "replied",
        "converted",
        "opted_in",
        "opted_out",
        "blocked",
        "failed",
        "skipped",
    ];

    /// A stable name (`"sent"`, `"converted"`, ...).
    pub fn name(&self) -> &'static str {
        Self::NAMES[self.code()]
    }

    /// The kind's position in [`NAMES`](Self::NAMES): a small code for compact indexes.
    pub fn code(&self) -> usize {
        match self {
            EventKind::Sent => 0,
            EventKind::Delivered => 1,
            EventKind::Read => 2,
            EventKind::Clicked => 3,
            EventKind::Replied => 4,
            EventKind::Converted { .. } => 5,
            EventKind::OptedIn => 6,
            EventKind::OptedOut => 7,
            EventKind::Blocked => 8,
            EventKind::Failed { .. } => 9,
            EventKind::Skipped { .. } => 10,
        }
    }
}

/// One fact about one contact, at one moment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Stores and sinks deduplicate on this id, per contact: a contact's event with an id it
    /// has already is a repeat.
    pub id: EventId,
    /// When it happened.
    pub at: Timestamp,
    /// Who.
    pub contact: ContactId,
    /// In which campaign, if any.
    pub campaign: Option<CampaignId>,
    /// After which variant, if any.
    pub variant: Option<VariantId>,
    /// The campaign step of the message the event is about: its index in the campaign's
    /// [`Journey::steps`](crate::Journey), `0` for a campaign without a journey (every visit of
    /// a step in a loop, and every occurrence of a recurring campaign, counts under the same
    /// index). `None` when the event is about no message: opt-ins and opt-outs without a quoted
    /// message, replies and conversions attributed to no send, events written by the host; and
    /// for events stored before steps were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<u32>,
    /// What.
    pub kind: EventKind,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_code_and_name() {
        let text = || String::from("x");
        let kinds = [
            EventKind::Sent,
            EventKind::Delivered,
            EventKind::Read,
            EventKind::Clicked,
            EventKind::Replied,
            EventKind::Converted { value_minor: 1 },
            EventKind::OptedIn,
            EventKind::OptedOut,
            EventKind::Blocked,
            EventKind::Failed { reason: text() },
            EventKind::Skipped { rule: text() },
        ];
        let codes: Vec<usize> = kinds.iter().map(EventKind::code).collect();
        assert_eq!(codes, (0..EventKind::NAMES.len()).collect::<Vec<_>>());
        // The names are the serde tags.
        for kind in &kinds {
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json["kind"], kind.name());
        }
    }
}
