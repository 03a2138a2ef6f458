//! The consent ledger's records: who agreed to what, when, how, and under which notice.
//!
//! Records are append-only. A withdrawal is a new record, never an update, so the full history
//! answers "why did this person get this message?" long after the fact.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::ids::ContactId;

/// What a contact agreed to hear about (`"marketing"`, `"product_updates"`, ...).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Purpose(String);

impl Purpose {
    /// Promotional messages.
    pub fn marketing() -> Self {
        Self("marketing".into())
    }

    /// A named purpose.
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    /// The purpose's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether a record grants or withdraws consent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentStatus {
    /// The contact agreed.
    Granted,
    /// The contact withdrew (STOP, unsubscribe, a request to the business).
    Withdrawn,
}

/// The legal ground a record rests on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LawfulBasis {
    /// Freely given, specific, informed consent (GDPR art. 6(1)(a)).
    Consent,
    /// Soft opt-in for existing customers (ePrivacy art. 13(2)); the host vouches for it.
    SoftOptIn,
}

/// How the consent was captured, so it can be shown later.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// The method: `"telegram_start"`, `"web_form"`, `"import"`, `"stop_keyword"`, ...
    pub method: String,
    /// A reference to the proof: the `/start` payload and message id, a form id, ...
    pub reference: String,
}

impl Evidence {
    /// Evidence by method and reference.
    pub fn new(method: impl Into<String>, reference: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            reference: reference.into(),
        }
    }
}

/// One entry in the consent ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRecord {
    /// Whose consent.
    pub contact: ContactId,
    /// For what.
    pub purpose: Purpose,
    /// Granted or withdrawn.
    pub status: ConsentStatus,
    /// The legal ground.
    pub basis: LawfulBasis,
    /// How it was captured.
    pub evidence: Evidence,
    /// The version of the privacy notice the contact saw.
    pub notice_version: String,
    /// When this record was made.
    pub recorded_at: Timestamp,
    /// When a grant lapses, if it does.
    pub expires_at: Option<Timestamp>,
}

impl ConsentRecord {
    /// A grant of `purpose` by `contact` at `at`.
    pub fn grant(
        contact: impl Into<ContactId>,
        purpose: Purpose,
        evidence: Evidence,
        notice_version: impl Into<String>,
        at: Timestamp,
    ) -> Self {
        Self {
            contact: contact.into(),
            purpose,
            status: ConsentStatus::Granted,
            basis: LawfulBasis::Consent,
            evidence,
            notice_version: notice_version.into(),
            recorded_at: at,
            expires_at: None,
        }
    }

    /// A withdrawal of `purpose` by `contact` at `at`.
    pub fn withdraw(
        contact: impl Into<ContactId>,
        purpose: Purpose,
        evidence: Evidence,
        at: Timestamp,
    ) -> Self {
        Self {
            contact: contact.into(),
            purpose,
            status: ConsentStatus::Withdrawn,
            basis: LawfulBasis::Consent,
            evidence,
            notice_version: String::new(),
            recorded_at: at,
            expires_at: None,
        }
    }
}

/// What a contact's history says about one purpose at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentState {
    /// A grant is in force.
    Valid,
    /// There has never been a record for the purpose.
    Missing,
    /// The latest record is a withdrawal.
    Withdrawn,
    /// The latest grant has expired.
    Expired,
}

impl ConsentState {
    /// A stable name for reports (`"no_consent"`, `"withdrawn"`, `"expired"`, `"valid"`).
    pub fn reason(self) -> &'static str {
        match self {
            ConsentState::Valid => "valid",
            ConsentState::Missing => "no_consent",
            ConsentState::Withdrawn => "withdrawn",
            ConsentState::Expired => "expired",
        }
    }
}

/// How far ahead of `now` a withdrawal may be stamped and still count at once: clocks of the
/// transport, the workers and the host disagree by seconds, and a withdrawal must never wait
/// for a clock to catch up. (A grant stamped in the future counts only from its stamp.)
pub const WITHDRAWAL_CLOCK_SKEW: jiff::SignedDuration = jiff::SignedDuration::from_mins(5);

/// The record in force for `purpose` at `now`: the latest one recorded at or before `now`, or
/// a withdrawal stamped up to [`WITHDRAWAL_CLOCK_SKEW`] later (ties go to the later entry in
/// `history`, which stores return in insertion order).
pub fn current_consent<'a>(
    history: &'a [ConsentRecord],
    purpose: &Purpose,
    now: Timestamp,
) -> Option<&'a ConsentRecord> {
    let horizon = now.checked_add(WITHDRAWAL_CLOCK_SKEW).unwrap_or(now);
    history
        .iter()
        .filter(|r| {
            &r.purpose == purpose
                && (r.recorded_at <= now
                    || (r.status == ConsentStatus::Withdrawn && r.recorded_at <= horizon))
        })
        .fold(None, |best: Option<&ConsentRecord>, r| match best {
            Some(b) if b.recorded_at > r.recorded_at => Some(b),
            _ => Some(r),
        })
}

/// Classifies `purpose` for a contact with this `history` at `now`.
pub fn consent_state(history: &[ConsentRecord], purpose: &Purpose, now: Timestamp) -> ConsentState {
    match current_consent(history, purpose, now) {
        None => ConsentState::Missing,
        Some(r) if r.status == ConsentStatus::Withdrawn => ConsentState::Withdrawn,
        Some(r) if r.expires_at.is_some_and(|e| e <= now) => ConsentState::Expired,
        Some(_) => ConsentState::Valid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;

    fn hours(h: i64) -> Timestamp {
        Timestamp::UNIX_EPOCH + SignedDuration::from_hours(h)
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::UNIX_EPOCH + SignedDuration::from_secs(secs)
    }

    #[test]
    fn the_latest_record_wins_and_history_is_kept() {
        let ev = Evidence::new("telegram_start", "payload=spring");
        let m = Purpose::marketing();
        let history = vec![
            ConsentRecord::grant("u", m.clone(), ev.clone(), "v1", hours(10)),
            ConsentRecord::withdraw("u", m.clone(), ev.clone(), hours(20)),
            ConsentRecord::grant("u", Purpose::new("updates"), ev.clone(), "v1", hours(30)),
        ];
        assert_eq!(consent_state(&history, &m, hours(5)), ConsentState::Missing);
        assert_eq!(consent_state(&history, &m, hours(15)), ConsentState::Valid);
        assert_eq!(
            consent_state(&history, &m, hours(25)),
            ConsentState::Withdrawn
        );
        assert_eq!(
            consent_state(&history, &Purpose::new("updates"), hours(31)),
            ConsentState::Valid
        );
    }

    #[test]
    fn a_withdrawal_stamped_by_a_clock_running_ahead_counts_at_once() {
        let ev = Evidence::new("import", "crm");
        let m = Purpose::marketing();
        let history = vec![
            ConsentRecord::grant("u", m.clone(), ev.clone(), "v1", at(10)),
            ConsentRecord::withdraw("u", m.clone(), ev.clone(), at(13)),
        ];
        assert_eq!(consent_state(&history, &m, at(11)), ConsentState::Withdrawn);
        // A future grant waits for its stamp; a far-future withdrawal is not skew.
        let later = vec![
            ConsentRecord::grant("u", m.clone(), ev.clone(), "v1", at(10)),
            ConsentRecord::withdraw("u", m.clone(), ev, at(10 + 3600)),
        ];
        assert_eq!(consent_state(&later, &m, at(11)), ConsentState::Valid);
    }

    #[test]
    fn grants_expire_and_same_instant_ties_go_to_the_later_entry() {
        let ev = Evidence::new("import", "crm");
        let m = Purpose::marketing();
        let mut grant = ConsentRecord::grant("u", m.clone(), ev.clone(), "v1", at(10));
        grant.expires_at = Some(at(100));
        assert_eq!(
            consent_state(&[grant.clone()], &m, at(99)),
            ConsentState::Valid
        );
        assert_eq!(
            consent_state(&[grant.clone()], &m, at(100)),
            ConsentState::Expired
        );
        let stop = ConsentRecord::withdraw("u", m.clone(), ev, at(10));
        assert_eq!(
            consent_state(&[grant, stop], &m, at(50)),
            ConsentState::Withdrawn
        );
    }
}
