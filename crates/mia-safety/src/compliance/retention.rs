//! Retention: how long each category of personal data is kept, a purge job that enforces it
//! and reports what it removed, and the records of processing (GDPR art. 30) as JSON.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use mia_core::{
    AuditAction, AuditEvent, AuditTrail, ConsentState, ContactId, Error, Result, Store,
    StoreAuditTrail, consent_state,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The shortest job retention accepted: the frequency cap reads the last 7 days of sends.
pub const MIN_JOB_RETENTION: SignedDuration = SignedDuration::from_hours(24 * 7);

/// How long each category of data is kept; `None` keeps it until erased.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionPolicy {
    /// Engagement events (sent, delivered, read, clicked, replied, converted, ...).
    pub events: Option<SignedDuration>,
    /// Message jobs of completed or aborted campaigns (at least [`MIN_JOB_RETENTION`]).
    pub jobs: Option<SignedDuration>,
    /// Contacts without valid consent for any purpose and without activity (consent record,
    /// job or event) for this long are erased like an erasure request.
    pub inactive_contacts: Option<SignedDuration>,
}

impl Default for RetentionPolicy {
    /// Events 13 months, jobs 13 months, inactive contacts 24 months.
    fn default() -> Self {
        Self {
            events: Some(SignedDuration::from_hours(24 * 396)),
            jobs: Some(SignedDuration::from_hours(24 * 396)),
            inactive_contacts: Some(SignedDuration::from_hours(24 * 730)),
        }
    }
}

impl RetentionPolicy {
    /// Checks the periods.
    ///
    /// # Errors
    /// [`Error::Config`] for a negative period, or jobs kept less than
    /// [`MIN_JOB_RETENTION`].
    pub fn validate(&self) -> Result<()> {
        for (name, period) in [
            ("events", self.events),
            ("jobs", self.jobs),
            ("inactive_contacts", self.inactive_contacts),
        ] {
            if period.is_some_and(|p| p.is_negative()) {
                return Err(Error::Config(format!(
                    "retention of {name} must not be negative"
                )));
            }
        }
        if self.jobs.is_some_and(|p| p < MIN_JOB_RETENTION) {
            return Err(Error::Config(
                "jobs must be kept at least 7 days (the frequency cap reads them)".into(),
            ));
        }
        Ok(())
    }
}

/// What a purge removed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeReport {
    /// When it ran.
    pub at: Option<Timestamp>,
    /// Events deleted.
    pub events: u64,
    /// Jobs deleted.
    pub jobs: u64,
    /// Inactive contacts erased.
    pub contacts: u64,
    /// Their rows pseudonymised (consent records, jobs, events).
    pub pseudonymised_rows: u64,
}

fn cutoff(now: Timestamp, period: SignedDuration) -> Timestamp {
    now.checked_sub(period).unwrap_or(Timestamp::MIN)
}

/// Enforces `policy` at `now`: deletes old events and old jobs of closed campaigns, and erases
/// inactive contacts without consent. Records one audit entry per erased contact and one for
/// the whole purge, in `audit` (the store's own log when `None`).
///
/// # Errors
/// [`Error::Config`] for an invalid policy; a store error (what was already purged stays
/// purged and is recorded).
pub async fn purge(
    store: &Arc<dyn Store>,
    audit: Option<Arc<dyn AuditTrail>>,
    policy: &RetentionPolicy,
    now: Timestamp,
) -> Result<PurgeReport> {
    policy.validate()?;
    let audit = audit.unwrap_or_else(|| Arc::new(StoreAuditTrail::new(Arc::clone(store))));
    let mut report = PurgeReport {
        at: Some(now),
        ..PurgeReport::default()
    };
    let mut events = Vec::new();
    let result = purge_into(store, policy, now, &mut report, &mut events).await;
    events.push(AuditEvent::new(
        now,
        "retention",
        AuditAction::Retention,
        None,
        json!({ "policy": policy, "removed": report, "complete": result.is_ok() }),
    ));
    audit.record(&events).await?;
    result.map(|()| report)
}

async fn purge_into(
    store: &Arc<dyn Store>,
    policy: &RetentionPolicy,
    now: Timestamp,
    report: &mut PurgeReport,
    events: &mut Vec<AuditEvent>,
) -> Result<()> {
    if let Some(period) = policy.events {
        report.events = store.purge_events(cutoff(now, period)).await?;
    }
    if let Some(period) = policy.jobs {
        report.jobs = store.purge_jobs(cutoff(now, period)).await?;
    }
    if let Some(period) = policy.inactive_contacts {
        let before = cutoff(now, period);
        for contact in store.contacts().await? {
            if contact.created_at >= before || active_since(store, &contact.id, before, now).await?
            {
                continue;
            }
            let replacement = ContactId::new(format!("expired:{:016x}", rand::random::<u64>()));
            // The event is made first: once erased, the contact id is gone.
            let event = AuditEvent::new(
                now,
                "retention",
                AuditAction::Retention,
                Some(&contact.id),
                json!({ "category": "inactive_contact" }),
            );
            let counts = store.erase_subject(&contact.id, &replacement).await?;
            events.push(event);
            report.contacts += counts.contacts;
            report.pseudonymised_rows += counts.consents + counts.jobs + counts.events;
        }
    }
    Ok(())
}

/// Whether the contact has valid consent for any purpose now, or any consent record, job
/// change or event at or after `since`.
async fn active_since(
    store: &Arc<dyn Store>,
    contact: &ContactId,
    since: Timestamp,
    now: Timestamp,
) -> Result<bool> {
    let history = store.consent_history(contact).await?;
    let consented = history
        .iter()
        .any(|r| consent_state(&history, &r.purpose, now) == ConsentState::Valid);
    // A restriction of processing (GDPR art. 18) is asked for instead of erasure: the data
    // stays stored while it lasts.
    let restricted = mia_core::restricted_since(&history, now).is_some();
    if consented || restricted || history.iter().any(|r| r.recorded_at >= since) {
        return Ok(true);
    }
    if store
        .contact_jobs(contact)
        .await?
        .iter()
        .any(|j| j.updated_at >= since || !j.state.is_final())
    {
        return Ok(true);
    }
    Ok(store
        .contact_events(contact)
        .await?
        .iter()
        .any(|e| e.at >= since))
}

/// Who is responsible for the processing (GDPR art. 30(1)(a)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Controller {
    /// The business's name.
    pub name: String,
    /// How to reach it.
    pub contact: String,
    /// Its data protection officer, if it has one.
    pub dpo: Option<String>,
}

/// One processing activity (GDPR art. 30(1)(b)-(g)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessingActivity {
    /// Its name.
    pub name: String,
    /// What for.
    pub purposes: Vec<String>,
    /// On which legal ground.
    pub lawful_basis: String,
    /// Whose data.
    pub data_subjects: Vec<String>,
    /// Which data.
    pub data_categories: Vec<String>,
    /// Who receives it (processors included).
    pub recipients: Vec<String>,
    /// Transfers outside the EEA and their safeguards.
    pub transfers: Vec<String>,
    /// How long it is kept.
    pub retention: String,
    /// The technical and organisational measures.
    pub security: Vec<String>,
}

/// The records of processing, exportable as JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordsOfProcessing {
    /// The controller.
    pub controller: Controller,
    /// Every activity.
    pub activities: Vec<ProcessingActivity>,
}

fn period(p: Option<SignedDuration>) -> String {
    match p {
        Some(d) => format!("{} days", d.as_hours() / 24),
        None => "until erased".into(),
    }
}

impl RecordsOfProcessing {
    /// The records of what mia itself processes for `controller`, with the retention of
    /// `policy`; add the host's own activities to `activities`.
    pub fn for_mia(controller: Controller, policy: &RetentionPolicy) -> Self {
        let s = |items: &[&str]| items.iter().map(|i| (*i).to_owned()).collect::<Vec<_>>();
        let security = s(&[
            "consent checked before every send; STOP honoured at once",
            "tamper-evident audit log with signed checkpoints",
            "pseudonymised audit subjects (keyed hash)",
            "erasure and objection on request",
        ]);
        Self {
            controller,
            activities: vec![
                ProcessingActivity {
                    name: "Telegram marketing messages".into(),
                    purposes: s(&["direct marketing to people who opted in"]),
                    lawful_basis: "consent (GDPR art. 6(1)(a)); soft opt-in where the host vouches for it".into(),
                    data_subjects: s(&["contacts who opted in", "customers"]),
                    data_categories: s(&[
                        "contact id", "Telegram user id", "locale", "time zone",
                        "segment attributes", "consent records", "message jobs",
                    ]),
                    recipients: s(&["Telegram (transport)"]),
                    transfers: s(&["Telegram's infrastructure, per its terms"]),
                    retention: format!(
                        "jobs: {}; inactive contacts without consent: {}",
                        period(policy.jobs),
                        period(policy.inactive_contacts)
                    ),
                    security: security.clone(),
                },
                ProcessingActivity {
                    name: "Campaign measurement and experiments".into(),
                    purposes: s(&["measuring campaigns", "choosing better copy (A/B tests, bandits)"]),
                    lawful_basis: "legitimate interest (GDPR art. 6(1)(f)) within the consent given".into(),
                    data_subjects: s(&["message recipients"]),
                    data_categories: s(&["engagement events", "experiment assignments"]),
                    recipients: s(&[]),
                    transfers: s(&[]),
                    retention: format!("events: {}", period(policy.events)),
                    security: security.clone(),
                },
                ProcessingActivity {
                    name: "Compliance records".into(),
                    purposes: s(&["proof of consent", "audit trail", "data subject requests"]),
                    lawful_basis: "legal obligation (GDPR art. 6(1)(c), art. 7(1))".into(),
                    data_subjects: s(&["contacts"]),
                    data_categories: s(&["consent evidence", "pseudonymous audit entries", "request records"]),
                    recipients: s(&["supervisory authorities on request"]),
                    transfers: s(&[]),
                    retention: "consent records while processing lasts and the limitation period; audit entries hold no direct identifiers".into(),
                    security,
                },
            ],
        }
    }

    /// The records as pretty JSON.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if serialisation fails (it does not for these types).
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| Error::invalid(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn job_retention_below_a_week_is_refused() {
        let short = RetentionPolicy {
            jobs: Some(SignedDuration::from_hours(24)),
            ..RetentionPolicy::default()
        };
        assert!(matches!(short.validate(), Err(Error::Config(_))));
        assert!(RetentionPolicy::default().validate().is_ok());
    }

    #[test]
    fn records_of_processing_name_the_retention() {
        let records = RecordsOfProcessing::for_mia(
            Controller {
                name: "Tea Shop".into(),
                contact: "privacy@tea.example".into(),
                dpo: None,
            },
            &RetentionPolicy::default(),
        );
        let json = records.to_json().unwrap();
        assert!(
            json.contains("396 days") && json.contains("730 days"),
            "{json}"
        );
        let back: RecordsOfProcessing = serde_json::from_str(&json).unwrap();
        assert_eq!(back, records);
    }
}
