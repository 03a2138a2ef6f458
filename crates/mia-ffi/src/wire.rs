//! The JSON shapes C sends: contacts, consent records, inbound events, campaign specs and run
//! options. Each refuses unknown keys, so a typo is an error and not a silent default.

use std::collections::BTreeMap;

use jiff::Timestamp;
use mia::{
    Audience, CampaignSpec, ConsentRecord, ConsentStatus, Contact, ContactId, Evidence,
    LawfulBasis, Purpose, Recurrence, SendWindow, TelegramPeer,
};
use serde::Deserialize;

use crate::error::{FfiError, FfiResult};

/// One item or a list of them.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany<T> {
    /// A list.
    Many(Vec<T>),
    /// One.
    One(T),
}

impl<T> OneOrMany<T> {
    pub(crate) fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::Many(v) => v,
            OneOrMany::One(t) => vec![t],
        }
    }
}

/// A contact: `{"id", "user_id" | "peer", "time_zone", "locale"?, "attributes"?,
/// "created_at"?}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ContactInput {
    id: String,
    /// A Telegram user id (a private chat). Give this or `peer`.
    user_id: Option<i64>,
    /// `{"kind": "user" | "group" | "channel", "id": N}`.
    peer: Option<TelegramPeer>,
    /// IANA time zone; quiet hours are judged on it, so it is required.
    time_zone: String,
    locale: Option<String>,
    attributes: Option<BTreeMap<String, serde_json::Value>>,
    created_at: Option<Timestamp>,
}

impl ContactInput {
    pub(crate) fn into_contact(self, now: Timestamp) -> FfiResult<Contact> {
        let peer = match (self.user_id, self.peer) {
            (Some(id), None) => TelegramPeer::user(id),
            (None, Some(peer)) => peer,
            _ => {
                return Err(FfiError::invalid(format!(
                    "contact {:?}: give exactly one of user_id and peer",
                    self.id
                )));
            }
        };
        let mut contact = Contact::new(
            self.id,
            peer,
            &self.time_zone,
            self.created_at.unwrap_or(now),
        )?;
        contact.locale = self.locale;
        contact.attributes = self.attributes.unwrap_or_default();
        Ok(contact)
    }
}

/// `{"method", "reference"}`: how consent was captured.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EvidenceInput {
    method: String,
    reference: String,
}

/// A consent record: `{"contact", "evidence", "notice_version"?, "purpose"?, "status"?,
/// "basis"?, "recorded_at"?, "expires_at"?}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsentInput {
    contact: String,
    /// Default `"marketing"`.
    purpose: Option<String>,
    /// `"granted"` (default) or `"withdrawn"`.
    status: Option<ConsentStatus>,
    /// `"consent"` (default) or `"soft_opt_in"`.
    basis: Option<LawfulBasis>,
    evidence: EvidenceInput,
    /// Required for grants: the privacy notice the contact saw.
    notice_version: Option<String>,
    recorded_at: Option<Timestamp>,
    expires_at: Option<Timestamp>,
}

impl ConsentInput {
    pub(crate) fn into_record(self, now: Timestamp) -> FfiResult<ConsentRecord> {
        let bad = |why: &str| FfiError::invalid(format!("consent of {:?}: {why}", self.contact));
        if self.contact.trim().is_empty() {
            return Err(bad("contact must not be empty"));
        }
        if self.evidence.method.trim().is_empty() || self.evidence.reference.trim().is_empty() {
            return Err(bad("evidence needs a method and a reference"));
        }
        let purpose = Purpose::new(self.purpose.clone().unwrap_or_else(|| "marketing".into()));
        if purpose.as_str().trim().is_empty() {
            return Err(bad("purpose must not be empty"));
        }
        let evidence = Evidence::new(self.evidence.method, self.evidence.reference);
        let at = self.recorded_at.unwrap_or(now);
        let mut record = match self.status.unwrap_or(ConsentStatus::Granted) {
            ConsentStatus::Granted => {
                let notice = self
                    .notice_version
                    .filter(|v| !v.trim().is_empty())
                    .ok_or_else(|| bad("a grant needs the notice_version the contact saw"))?;
                ConsentRecord::grant(self.contact, purpose, evidence, notice, at)
            }
            ConsentStatus::Withdrawn => {
                ConsentRecord::withdraw(self.contact, purpose, evidence, at)
            }
        };
        record.basis = self.basis.unwrap_or(LawfulBasis::Consent);
        record.expires_at = self.expires_at;
        Ok(record)
    }
}

/// What a contact did, as the host saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum InboundKindInput {
    /// `/start <payload>`: consent for the purpose `payload` (default marketing).
    OptIn,
    /// STOP: withdraws every purpose and cancels queued messages at once.
    Stop,
    /// A text message; a STOP word alone counts as a STOP.
    Reply,
    /// A message reached the device.
    Delivered,
    /// A message was read.
    Read,
    /// A link was opened.
    Click,
    /// A purchase.
    Conversion,
    /// The contact blocked the sender.
    Blocked,
}

impl InboundKindInput {
    /// The name as the JSON spells it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::OptIn => "opt_in",
            Self::Stop => "stop",
            Self::Reply => "reply",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Click => "click",
            Self::Conversion => "conversion",
            Self::Blocked => "blocked",
        }
    }
}

/// An inbound event: `{"kind", "contact" | "user_id", ...}`; see the crate docs for each kind.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InboundInput {
    pub(crate) kind: InboundKindInput,
    /// A known contact's id.
    pub(crate) contact: Option<String>,
    /// A Telegram user id (for `opt_in` of someone new).
    pub(crate) user_id: Option<i64>,
    /// `opt_in`: the purpose.
    pub(crate) payload: Option<String>,
    /// `reply`: the text.
    pub(crate) text: Option<String>,
    /// `reply`: the message it quotes; `delivered`..`conversion`: the message it is about.
    pub(crate) message_id: Option<i64>,
    /// Instead of `message_id`: the contact's message of this campaign.
    pub(crate) campaign: Option<String>,
    /// `conversion`: the order value in minor units.
    pub(crate) value_minor: Option<i64>,
    /// A unique id to deduplicate on (default: a fresh one).
    pub(crate) id: Option<String>,
    /// When it happened (default: the agent's clock).
    pub(crate) at: Option<Timestamp>,
}

/// A campaign: `{"name", "product", "offer", "purpose"?, "call_to_action_url"?, "tone"?,
/// "language"?, "variant_count"?, "audience"?, "send_window"?, "recurrence"?}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CampaignInput {
    name: String,
    product: String,
    offer: String,
    purpose: Option<String>,
    call_to_action_url: Option<String>,
    tone: Option<String>,
    language: Option<String>,
    variant_count: Option<u8>,
    /// Contact ids; absent means every contact (consent is checked for each either way).
    audience: Option<Vec<String>>,
    /// `{"start": "09:00", "end": "17:00", "weekdays"?: ["mon", ...]}` on each contact's clock.
    send_window: Option<SendWindow>,
    /// `{"every": "day"|"week"|"month", "at": "10:00", "time_zone": "Europe/Berlin", ...}`.
    recurrence: Option<Recurrence>,
}

impl CampaignInput {
    pub(crate) fn into_spec(self) -> CampaignSpec {
        let mut spec = CampaignSpec::new(self.name, self.product, self.offer);
        if let Some(purpose) = self.purpose {
            spec.purpose = Purpose::new(purpose);
        }
        spec.call_to_action_url = self.call_to_action_url;
        if let Some(tone) = self.tone {
            spec.tone = tone;
        }
        if let Some(language) = self.language {
            spec.language = language;
        }
        if let Some(n) = self.variant_count {
            spec.variant_count = n;
        }
        if let Some(ids) = self.audience {
            spec.audience = Audience::Contacts(ids.into_iter().map(ContactId::new).collect());
        }
        spec.send_window = self.send_window;
        spec.recurrence = self.recurrence;
        spec
    }
}

/// `mia_agent_run`'s options: `{"attribution_hours"?}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunOptions {
    /// Virtual hours to keep collecting reads, clicks and purchases after the last send
    /// (default 48, at most 720).
    pub(crate) attribution_hours: Option<u32>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]

    use super::*;

    #[test]
    fn a_grant_without_notice_or_evidence_is_refused() {
        let now = Timestamp::UNIX_EPOCH;
        let no_notice: ConsentInput = serde_json::from_str(
            r#"{"contact": "u1", "evidence": {"method": "web_form", "reference": "f-1"}}"#,
        )
        .expect("well-formed");
        assert!(no_notice.into_record(now).is_err());
        let empty_evidence: ConsentInput = serde_json::from_str(
            r#"{"contact": "u1", "notice_version": "v1", "evidence": {"method": "", "reference": "x"}}"#,
        )
        .expect("well-formed");
        assert!(empty_evidence.into_record(now).is_err());
        let withdrawal: ConsentInput = serde_json::from_str(
            r#"{"contact": "u1", "status": "withdrawn", "evidence": {"method": "email", "reference": "m-9"}}"#,
        )
        .expect("well-formed");
        let record = withdrawal.into_record(now).map_err(|e| e.message);
        assert_eq!(record.map(|r| r.status), Ok(ConsentStatus::Withdrawn));
    }

    #[test]
    fn a_contact_names_exactly_one_peer() {
        let both: ContactInput = serde_json::from_str(
            r#"{"id": "u1", "user_id": 1, "peer": {"kind": "group", "id": 2}, "time_zone": "UTC"}"#,
        )
        .expect("well-formed");
        assert!(both.into_contact(Timestamp::UNIX_EPOCH).is_err());
        let group: ContactInput = serde_json::from_str(
            r#"{"id": "g1", "peer": {"kind": "group", "id": 2}, "time_zone": "Europe/Berlin"}"#,
        )
        .expect("well-formed");
        let contact = group
            .into_contact(Timestamp::UNIX_EPOCH)
            .map_err(|e| e.message);
        assert_eq!(contact.map(|c| c.peer), Ok(TelegramPeer::group(2)));
    }
}
