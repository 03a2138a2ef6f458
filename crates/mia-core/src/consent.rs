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

/// The reserved consent-ledger purpose that carries restrictions of processing (GDPR art.
/// 18). Its records are markers, never consent: every one is a withdrawal (so no consent
/// check ever reads one as a grant), with evidence method [`RESTRICTION_METHOD`] when a
/// restriction starts and [`RESTRICTION_LIFTED_METHOD`] when it is lifted; the latest one in
/// force says whether the contact is restricted. Kept in the append-only ledger, a restriction
/// survives a contact upsert (a CRM sync), shows in an access export and is pseudonymised by an
/// erasure like any other record. The agent's built-in consent rule sends no campaign message
/// to a restricted contact.
pub const RESTRICTION_PURPOSE: &str = "processing_restriction";
/// The evidence method of the ledger marker that starts a restriction of processing.
pub const RESTRICTION_METHOD: &str = "dsr_restriction";
/// The evidence method of the ledger marker that lifts a restriction of processing.
pub const RESTRICTION_LIFTED_METHOD: &str = "dsr_restriction_lifted";

/// Since when a contact with this consent `history` is restricted at `now`, or `None`: the
/// [`RESTRICTION_PURPOSE`] marker in force at `now` (as [`current_consent`] picks it) starts a
/// restriction.
///
/// Only the markers themselves count (withdrawals with method [`RESTRICTION_METHOD`] or
/// [`RESTRICTION_LIFTED_METHOD`]): any other record for the reserved purpose (a grant a
/// `/start processing_restriction` or an import tried to write) can neither start nor lift a
/// restriction.
pub fn restricted_since(history: &[ConsentRecord], now: Timestamp) -> Option<Timestamp> {
    let purpose = Purpose::new(RESTRICTION_PURPOSE);
    let markers: Vec<ConsentRecord> = history
        .iter()
        .filter(|r| {
            r.purpose == purpose
                && r.status == ConsentStatus::Withdrawn
                && (r.evidence.method == RESTRICTION_METHOD
                    || r.evidence.method == RESTRICTION_LIFTED_METHOD)
        })
        .cloned()
        .collect();
    current_consent(&markers, &purpose, now)
        .filter(|r| r.evidence.method == RESTRICTION_METHOD)
        .map(|r| r.recorded_at)
}

/// The evidence method of the withdrawals an objection to direct marketing writes (GDPR art.
/// 21(3): absolute). The agent's built-in consent rule sends no campaign message after one
/// until the person grants the purpose again themselves ([`SELF_GIVEN_METHODS`]).
pub const OBJECTION_METHOD: &str = "dsr_objection";

/// Evidence methods of grants the person gave themselves: only these lift an objection (a CRM
/// import or a host's bulk grant never does).
pub const SELF_GIVEN_METHODS: &[&str] = &["telegram_start", "web_form", "double_opt_in"];

/// When the contact objected to direct marketing, if the objection still holds for `purpose`
/// at `now`: a withdrawal with method [`OBJECTION_METHOD`], and no later grant of `purpose`
/// whose method is one of `lifting` (normally [`SELF_GIVEN_METHODS`]).
pub fn objected_since(
    history: &[ConsentRecord],
    purpose: &Purpose,
    lifting: &[&str],
    now: Timestamp,
) -> Option<Timestamp> {
    let objected = history
        .iter()
        .filter(|r| {
            r.status == ConsentStatus::Withdrawn
                && r.evidence.method == OBJECTION_METHOD
                && r.recorded_at <= now
        })
        .map(|r| r.recorded_at)
        .max()?;
    let lifted = history.iter().any(|r| {
        r.status == ConsentStatus::Granted
            && &r.purpose == purpose
            && r.recorded_at > objected
            && r.recorded_at <= now
            && lifting.contains(&r.evidence.method.as_str())
    });
    (!lifted).then_some(objected)
}

/// Whether `purpose` is reserved for mia's own ledger markers ([`RESTRICTION_PURPOSE`]): no
/// one can grant it.
pub fn is_reserved_purpose(purpose: &Purpose) -> bool {
    purpose.as_str() == RESTRICTION_PURPOSE
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
