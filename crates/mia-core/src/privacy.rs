//! Data subject requests as the store keeps them: what was asked, by whom, by when, and where
//! it stands. The logic (deadlines, export, erasure, objection) is in
//! `mia_safety::compliance::dsr`.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::ContactId;

macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant),*
        }

        impl $name {
            /// The stable name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),*
                }
            }

            /// Parses a name written by [`as_str`](Self::as_str).
            ///
            /// # Errors
            /// [`Error::InvalidInput`] for an unknown name.
            pub fn parse(name: &str) -> Result<Self> {
                match name {
                    $($text => Ok($name::$variant),)*
                    _ => Err(Error::invalid(format!(
                        concat!("unknown ", stringify!($name), " {:?}"),
                        name
                    ))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum!(
    /// What a data subject asked for.
    RequestKind {
        /// A copy of everything kept about them (GDPR art. 15, CCPA right to know).
        Access => "access",
        /// Erasure of their personal data (GDPR art. 17, CCPA right to delete).
        Erasure => "erasure",
        /// Objection to direct marketing, which is absolute (GDPR art. 21(2)).
        Objection => "objection",
        /// Correction of inaccurate data (GDPR art. 16).
        Rectification => "rectification",
        /// Restriction of processing (GDPR art. 18).
        Restriction => "restriction",
        /// Lifting an earlier restriction of processing (GDPR art. 18(3)).
        LiftRestriction => "lift_restriction",
    }
);

named_enum!(
    /// The law a request is answered under, which sets its deadline.
    Jurisdiction {
        /// The GDPR: one calendar month from receipt.
        Gdpr => "gdpr",
        /// The CCPA/CPRA: 45 calendar days from receipt.
        Ccpa => "ccpa",
    }
);

named_enum!(
    /// Where a request stands.
    RequestState {
        /// Received, nothing done yet.
        Received => "received",
        /// Being worked on.
        InProgress => "in_progress",
        /// Done (final).
        Completed => "completed",
        /// Refused, with the reason in the note (final).
        Rejected => "rejected",
    }
);

impl RequestState {
    /// Whether the request is finished.
    pub fn is_final(self) -> bool {
        matches!(self, RequestState::Completed | RequestState::Rejected)
    }
}

/// One data subject request, tracked until it is answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectRequest {
    /// Its id.
    pub id: String,
    /// What was asked.
    pub kind: RequestKind,
    /// Under which law.
    pub jurisdiction: Jurisdiction,
    /// The contact; `None` once their data is erased.
    pub contact: Option<ContactId>,
    /// The contact's pseudonym in the audit log, which outlives an erasure.
    pub subject: String,
    /// Where it stands.
    pub state: RequestState,
    /// When it was received.
    pub received_at: Timestamp,
    /// The legal deadline.
    pub due_at: Timestamp,
    /// When it was finished.
    pub completed_at: Option<Timestamp>,
    /// A note without personal data (why it was rejected or extended, what was done).
    pub note: Option<String>,
}

/// What an erasure changed, by store table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureCounts {
    /// Contact rows deleted.
    pub contacts: u64,
    /// Consent records whose contact and evidence reference were replaced.
    pub consents: u64,
    /// Outbox jobs whose contact was replaced.
    pub jobs: u64,
    /// Of those, the open jobs the erasure cancelled (pending, held, or claimed but not yet
    /// with the transport): messages that will never be sent.
    #[serde(default)]
    pub cancelled: u64,
    /// Events whose contact was replaced.
    pub events: u64,
    /// Subject requests whose contact was cleared.
    pub requests: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in [
            RequestKind::Access,
            RequestKind::Erasure,
            RequestKind::Objection,
            RequestKind::Rectification,
            RequestKind::Restriction,
            RequestKind::LiftRestriction,
        ] {
            assert_eq!(RequestKind::parse(k.as_str()).unwrap(), k);
            assert_eq!(
                serde_json::to_value(k).unwrap(),
                serde_json::Value::String(k.as_str().into())
            );
        }
        for s in [
            RequestState::Received,
            RequestState::InProgress,
            RequestState::Completed,
            RequestState::Rejected,
        ] {
            assert_eq!(RequestState::parse(s.as_str()).unwrap(), s);
        }
        assert_eq!(Jurisdiction::parse("ccpa").unwrap(), Jurisdiction::Ccpa);
        assert!(Jurisdiction::parse("lgpd").is_err());
    }
}
