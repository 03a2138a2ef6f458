//! Identifiers: small string newtypes so a contact id cannot be passed where a campaign id goes.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a string as this id.
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }
    };
}

string_id!(
    /// A contact's id, chosen by the host (a CRM id, say). Never a phone number.
    ContactId
);
string_id!(
    /// A campaign's id.
    CampaignId
);
string_id!(
    /// A copy variant's id within its campaign (`"A"`, `"B"`, ...).
    VariantId
);
string_id!(
    /// An event's id; sinks and stores deduplicate on it, so recording an event twice counts once.
    EventId
);
string_id!(
    /// An item in the human review queue.
    ReviewId
);
string_id!(
    /// The idempotency key of one outbox job: `hash(campaign, contact, step)`.
    ///
    /// It is also the job's id, and transports use it to recognise a resend (the simulated
    /// Telegram keeps a table of keys; MTProto derives `random_id` from it).
    IdempotencyKey
);

impl IdempotencyKey {
    /// The key of the job that sends `step` of `campaign` to `contact`.
    pub fn for_job(campaign: &CampaignId, contact: &ContactId, step: u32) -> Self {
        Self(hex_digest(&[
            campaign.as_str().as_bytes(),
            contact.as_str().as_bytes(),
            &step.to_be_bytes(),
        ]))
    }
}

impl EventId {
    /// A deterministic id for an event derived from a stable source (a job key, an inbound
    /// update id) and a discriminator, so the same fact recorded twice dedupes.
    pub fn derived(source: &str, discriminator: &str) -> Self {
        Self(hex_digest(&[source.as_bytes(), discriminator.as_bytes()]))
    }
}

/// SHA-256 over length-prefixed parts (so `("ab","c")` and `("a","bc")` differ), first 16 bytes
/// as hex: 128 bits, collision-free for any realistic number of jobs.
pub(crate) fn hex_digest(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    let digest = hasher.finalize();
    let mut out = String::with_capacity(32);
    for byte in &digest[..16] {
        use fmt::Write;
        // Writing to a String cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_stable_and_distinct() {
        let c = CampaignId::new("spring");
        let a = IdempotencyKey::for_job(&c, &ContactId::new("u1"), 0);
        assert_eq!(a, IdempotencyKey::for_job(&c, &ContactId::new("u1"), 0));
        assert_ne!(a, IdempotencyKey::for_job(&c, &ContactId::new("u1"), 1));
        assert_ne!(a, IdempotencyKey::for_job(&c, &ContactId::new("u2"), 0));
        assert_eq!(a.as_str().len(), 32);
    }

    #[test]
    fn parts_are_length_prefixed() {
        assert_ne!(hex_digest(&[b"ab", b"c"]), hex_digest(&[b"a", b"bc"]));
    }
}
