//! Data subject requests: access (a machine-readable export), erasure, objection to direct
//! marketing, each tracked with its legal deadline and state, and each recorded in the audit
//! log under the subject's pseudonym.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use mia_core::{
    AuditAction, AuditEntry, AuditEvent, AuditTrail, ConsentRecord, ConsentStatus, Contact,
    ContactId, ErasureCounts, Error, Event, Evidence, Job, Jurisdiction, Purpose, RequestKind,
    RequestState, Result, Store, StoreAuditTrail, SubjectRequest, VariantId, current_consent,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::restrictions::{
    RESTRICTION_LIFTED_METHOD, RESTRICTION_METHOD, RESTRICTION_PURPOSE, restricted_since,
};

// The evidence method of the withdrawals an objection writes; the agent's consent rule holds
// them absolute (see `mia_core::objected_since`).
pub use mia_core::OBJECTION_METHOD;

/// When a request received at `received` must be answered: under the GDPR one calendar month
/// later (art. 12(3)), the same day of the next month or its last day when it has none (31
/// January gives 28 or 29 February); under the CCPA 45 calendar days later. Computed on the
/// UTC calendar, to the same time of day.
pub fn deadline(jurisdiction: Jurisdiction, received: Timestamp) -> Timestamp {
    let start = received.to_zoned_datetime(TimeZone::UTC);
    let due = match jurisdiction {
        Jurisdiction::Gdpr => start.checked_add(1.month()),
        Jurisdiction::Ccpa => start.checked_add(45.days()),
    };
    due.map(|z| z.timestamp()).unwrap_or(Timestamp::MAX)
}

/// The latest a request may be answered after the controller extends it and tells the
/// subject why: GDPR two further months (three in all), CCPA another 45 days (90 in all).
pub fn extended_deadline(jurisdiction: Jurisdiction, received: Timestamp) -> Timestamp {
    let start = received.to_zoned_datetime(TimeZone::UTC);
    let due = match jurisdiction {
        Jurisdiction::Gdpr => start.checked_add(3.months()),
        Jurisdiction::Ccpa => start.checked_add(90.days()),
    };
    due.map(|z| z.timestamp()).unwrap_or(Timestamp::MAX)
}

/// One experiment assignment of the subject: which variant they were shown, with what
/// probability.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    /// The campaign (experiment).
    pub campaign: String,
    /// The variant.
    pub variant: VariantId,
    /// The probability the allocator gave it.
    pub propensity: Option<f64>,
}

/// Everything stored about one data subject, for an access request (GDPR art. 15 and 20,
/// CCPA right to know). Serialises to JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubjectExport {
    /// The format's name and version.
    pub format: String,
    /// When the export was made.
    pub exported_at: Timestamp,
    /// The contact record.
    pub contact: Option<Contact>,
    /// Their pseudonym in the audit log.
    pub subject: String,
    /// Their consent history, in order.
    pub consents: Vec<ConsentRecord>,
    /// Every message job (sent or not) across campaigns.
    pub jobs: Vec<Job>,
    /// Their events (sends, reads, clicks, replies, conversions, opt-ins and opt-outs).
    pub events: Vec<Event>,
    /// The experiment variants they were assigned.
    pub experiment_assignments: Vec<Assignment>,
    /// Their data subject requests.
    pub requests: Vec<SubjectRequest>,
    /// The audit log's entries about them.
    pub audit: Vec<AuditEntry>,
}

/// What an erasure did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Erasure {
    /// The request, completed.
    pub request: SubjectRequest,
    /// What changed, per table.
    pub counts: ErasureCounts,
}

/// A correction of a contact's stored data (GDPR art. 16): what to change. Only the fields
/// given change; the contact's id and Telegram peer are not personal data a subject corrects
/// here (a new peer is a new contact).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Rectification {
    /// A new locale (BCP 47); an empty text removes it.
    #[serde(default)]
    pub locale: Option<String>,
    /// A new IANA time zone (checked).
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Attributes to set (a name, a city, a birth date, ...); `null` removes one.
    #[serde(default)]
    pub attributes: BTreeMap<String, serde_json::Value>,
}

impl Rectification {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.locale.is_none() && self.time_zone.is_none() && self.attributes.is_empty()
    }

    /// `contact` corrected, and the names of the fields that changed (`locale`, `time_zone`,
    /// `attributes.<name>`), never their values.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an unknown time zone or an empty attribute name.
    pub fn apply(&self, contact: &Contact) -> Result<(Contact, Vec<String>)> {
        let mut fixed = contact.clone();
        let mut changed = Vec::new();
        if let Some(locale) = &self.locale {
            let locale = locale.trim();
            let new = (!locale.is_empty()).then(|| locale.to_owned());
            if new != fixed.locale {
                fixed.locale = new;
                changed.push("locale".to_owned());
            }
        }
        if let Some(zone) = &self.time_zone {
            let zone = zone.trim();
            if zone != fixed.time_zone {
                fixed.time_zone = zone.to_owned();
                changed.push("time_zone".to_owned());
            }
        }
        for (name, value) in &self.attributes {
            if name.trim().is_empty() {
                return Err(Error::invalid("an attribute name must not be empty"));
            }
            let before = fixed.attributes.get(name).cloned();
            if value.is_null() {
                fixed.attributes.remove(name);
            } else {
                fixed.attributes.insert(name.clone(), value.clone());
            }
            if fixed.attributes.get(name).cloned() != before {
                changed.push(format!("attributes.{name}"));
            }
        }
        fixed.validate()?;
        Ok((fixed, changed))
    }
}

/// What a rectification did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rectified {
    /// The request, completed.
    pub request: SubjectRequest,
    /// The fields that changed (names only).
    pub changed: Vec<String>,
    /// The contact as stored now.
    pub contact: Contact,
}

/// What a restriction of processing, or lifting one, did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Restriction {
    /// The request, completed.
    pub request: SubjectRequest,
    /// Whether the contact is restricted now.
    pub restricted: bool,
    /// Whether the request changed anything (`false`: it was already so).
    pub changed: bool,
    /// Queued jobs cancelled (restricting only).
    pub cancelled_jobs: u64,
}

/// What an objection did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Objection {
    /// The request, completed.
    pub request: SubjectRequest,
    /// The purposes withdrawn.
    pub withdrawn: Vec<Purpose>,
    /// Queued jobs cancelled.
    pub cancelled_jobs: u64,
}

/// Data subject requests over a [`Store`], recorded in an [`AuditTrail`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> mia_core::Result<()> {
/// use std::sync::Arc;
/// use mia_core::{Contact, ContactId, Jurisdiction, MemoryStore, Store, TelegramPeer};
/// use mia_safety::compliance::SubjectRights;
///
/// let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
/// let now = jiff::Timestamp::now();
/// store.upsert_contacts(&[Contact::new("c1", TelegramPeer::user(7), "UTC", now)?]).await?;
/// let rights = SubjectRights::new(store.clone());
/// let export = rights.export(&ContactId::new("c1"), now).await?;
/// assert!(export.contact.is_some());
/// let erased = rights.erase(&ContactId::new("c1"), Jurisdiction::Gdpr, now).await?;
/// assert_eq!(erased.counts.contacts, 1);
/// assert!(store.contact(&ContactId::new("c1")).await?.is_none());
/// # Ok(()) }
/// ```
pub struct SubjectRights {
    store: Arc<dyn Store>,
    audit: Arc<dyn AuditTrail>,
    actor: String,
}

impl std::fmt::Debug for SubjectRights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubjectRights")
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

impl SubjectRights {
    /// Requests over `store`, recorded in the store's own audit log.
    pub fn new(store: Arc<dyn Store>) -> Self {
        let audit = Arc::new(StoreAuditTrail::new(Arc::clone(&store)));
        Self {
            store,
            audit,
            actor: "dsr".into(),
        }
    }

    /// Records in `trail` instead (an [`AuditLog`](super::AuditLog) that signs checkpoints,
    /// or the agent's trail).
    #[must_use]
    pub fn with_audit_trail(mut self, trail: Arc<dyn AuditTrail>) -> Self {
        self.audit = trail;
        self
    }

    /// Who the audit log names as acting (default `"dsr"`).
    #[must_use]
    pub fn with_actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = actor.into();
        self
    }

    async fn record(
        &self,
        request: &SubjectRequest,
        contact: Option<&ContactId>,
        detail: serde_json::Value,
    ) -> Result<()> {
        let mut body = json!({
            "request": request.id,
            "kind": request.kind,
            "jurisdiction": request.jurisdiction,
            "state": request.state,
            "due_at": request.due_at.to_string(),
        });
        if let (Some(map), serde_json::Value::Object(extra)) = (body.as_object_mut(), detail) {
            map.extend(extra);
        }
        // The trail keeps the contact's pseudonym, never the contact: the entry outlives an
        // erasure.
        let at = request.completed_at.unwrap_or(request.received_at);
        let event = AuditEvent::new(at, &self.actor, AuditAction::SubjectRequest, contact, body);
        self.audit.record(&[event]).await
    }

    /// Records a request received at `at`, with its deadline. `contact` must exist.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown contact; a store error.
    pub async fn receive(
        &self,
        contact: &ContactId,
        kind: RequestKind,
        jurisdiction: Jurisdiction,
        at: Timestamp,
    ) -> Result<SubjectRequest> {
        if self.store.contact(contact).await?.is_none() {
            return Err(Error::not_found("contact", contact));
        }
        let request = SubjectRequest {
            id: format!("dsr_{:016x}", rand::random::<u64>()),
            kind,
            jurisdiction,
            contact: Some(contact.clone()),
            subject: self.audit.pseudonym(contact).await?,
            state: RequestState::Received,
            received_at: at,
            due_at: deadline(jurisdiction, at),
            completed_at: None,
            note: None,
        };
        self.store.save_request(&request).await?;
        self.record(&request, Some(contact), json!({})).await?;
        Ok(request)
    }

    /// Moves a request on (in progress, completed, rejected with a reason in `note`), or
    /// extends its deadline with `extend` (GDPR art. 12(3); the subject must be told why).
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::InvalidInput`] for a finished request.
    pub async fn update(
        &self,
        id: &str,
        state: RequestState,
        note: Option<String>,
        extend: bool,
        at: Timestamp,
    ) -> Result<SubjectRequest> {
        let mut request = self
            .store
            .subject_request(id)
            .await?
            .ok_or_else(|| Error::not_found("subject request", id))?;
        if request.state.is_final() {
            return Err(Error::invalid(format!(
                "request {id} is already {}",
                request.state
            )));
        }
        request.state = state;
        if note.is_some() {
            request.note = note;
        }
        if extend {
            request.due_at = extended_deadline(request.jurisdiction, request.received_at);
        }
        if state.is_final() {
            request.completed_at = Some(at);
        }
        self.store.save_request(&request).await?;
        let contact = request.contact.clone();
        self.record(&request, contact.as_ref(), json!({ "extended": extend }))
            .await?;
        Ok(request)
    }

    /// Open requests whose deadline has passed at `now`.
    ///
    /// # Errors
    /// A store error.
    pub async fn overdue(&self, now: Timestamp) -> Result<Vec<SubjectRequest>> {
        let mut all = self.store.subject_requests().await?;
        all.retain(|r| !r.state.is_final() && r.due_at <= now);
        Ok(all)
    }

    /// Everything stored about `contact`, without recording a request (see
    /// [`access`](Self::access)).
    ///
    /// # Errors
    /// A store error.
    pub async fn export(&self, contact: &ContactId, at: Timestamp) -> Result<SubjectExport> {
        let store = &self.store;
        let subject = self.audit.pseudonym(contact).await?;
        let jobs = store.contact_jobs(contact).await?;
        let experiment_assignments = jobs
            .iter()
            .filter_map(|j| {
                j.variant.as_ref().map(|v| Assignment {
                    campaign: j.campaign.to_string(),
                    variant: v.clone(),
                    propensity: j.propensity,
                })
            })
            .collect();
        let mut requests = store.subject_requests().await?;
        requests.retain(|r| r.contact.as_ref() == Some(contact) || r.subject == subject);
        Ok(SubjectExport {
            format: "mia-subject-export-v1".into(),
            exported_at: at,
            contact: store.contact(contact).await?,
            consents: store.consent_history(contact).await?,
            events: store.contact_events(contact).await?,
            audit: store.audit_entries_for(&subject).await?,
            subject,
            jobs,
            experiment_assignments,
            requests,
        })
    }

    /// An access request answered at once: records it, exports, and completes it.
    ///
    /// # Errors
    /// As [`receive`](Self::receive) and [`export`](Self::export).
    pub async fn access(
        &self,
        contact: &ContactId,
        jurisdiction: Jurisdiction,
        at: Timestamp,
    ) -> Result<(SubjectRequest, SubjectExport)> {
        let request = self
            .receive(contact, RequestKind::Access, jurisdiction, at)
            .await?;
        let export = self.export(contact, at).await?;
        let done = self
            .update(&request.id, RequestState::Completed, None, false, at)
            .await?;
        Ok((done, export))
    }

    /// An erasure request answered at once: records it, then in one store transaction
    /// deletes the contact, cancels their open jobs (a send already in flight is left to its
    /// worker, and the events it records for that send follow the replacement) and replaces
    /// their id everywhere else with `erased:<request id>` (consent records also lose their
    /// evidence reference), and completes the request. The audit log
    /// keeps only the pseudonym, so it still verifies; aggregates keep their totals.
    ///
    /// # Errors
    /// As [`receive`](Self::receive); a store error.
    pub async fn erase(
        &self,
        contact: &ContactId,
        jurisdiction: Jurisdiction,
        at: Timestamp,
    ) -> Result<Erasure> {
        let request = self
            .receive(contact, RequestKind::Erasure, jurisdiction, at)
            .await?;
        let replacement = ContactId::new(format!("erased:{}", request.id));
        let counts = self.store.erase_subject(contact, &replacement).await?;
        let mut done = self
            .store
            .subject_request(&request.id)
            .await?
            .ok_or_else(|| Error::not_found("subject request", &request.id))?;
        done.state = RequestState::Completed;
        done.completed_at = Some(at);
        done.note = Some(format!(
            "erased: {} contact, {} consent records, {} jobs ({} open ones cancelled), {} events \
             pseudonymised",
            counts.contacts, counts.consents, counts.jobs, counts.cancelled, counts.events
        ));
        self.store.save_request(&done).await?;
        self.record(&done, Some(contact), json!({ "erased": counts }))
            .await?;
        Ok(Erasure {
            request: done,
            counts,
        })
    }

    /// A rectification request answered at once (GDPR art. 16): records it, corrects the
    /// contact's stored data, and completes it. The audit log gets the names of the fields that
    /// changed, never their values.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a rectification that changes nothing or a bad value (an
    /// unknown time zone), before anything is recorded; as [`receive`](Self::receive); a store
    /// error.
    pub async fn rectify(
        &self,
        contact: &ContactId,
        fix: &Rectification,
        jurisdiction: Jurisdiction,
        at: Timestamp,
    ) -> Result<Rectified> {
        if fix.is_empty() {
            return Err(Error::invalid(
                "a rectification must change at least one field",
            ));
        }
        let current = self
            .store
            .contact(contact)
            .await?
            .ok_or_else(|| Error::not_found("contact", contact))?;
        let (fixed, changed) = fix.apply(&current)?;
        let request = self
            .receive(contact, RequestKind::Rectification, jurisdiction, at)
            .await?;
        if !changed.is_empty() {
            self.store
                .upsert_contacts(std::slice::from_ref(&fixed))
                .await?;
        }
        let note = match changed.len() {
            0 => "the stored data was already correct".to_owned(),
            n => format!("corrected {n} fields"),
        };
        let mut done = self
            .store
            .subject_request(&request.id)
            .await?
            .ok_or_else(|| Error::not_found("subject request", &request.id))?;
        done.state = RequestState::Completed;
        done.completed_at = Some(at);
        done.note = Some(note);
        self.store.save_request(&done).await?;
        self.record(&done, Some(contact), json!({ "fields": changed }))
            .await?;
        Ok(Rectified {
            request: done,
            changed,
            contact: fixed,
        })
    }

    /// A request to restrict processing answered at once (GDPR art. 18): records it; appends a
    /// [`RESTRICTION_PURPOSE`] marker to the consent ledger and cancels the contact's queued
    /// jobs in one transaction ([`SubjectStore::restrict_subject`](mia_core::SubjectStore));
    /// completes the request. While restricted, [`MarketingRestrictions`](super::MarketingRestrictions)
    /// denies every campaign send (rule `restricted`); the data stays stored. Restricting a
    /// restricted contact records the request and changes nothing.
    ///
    /// # Errors
    /// As [`receive`](Self::receive); a store error.
    pub async fn restrict(
        &self,
        contact: &ContactId,
        jurisdiction: Jurisdiction,
        at: Timestamp,
    ) -> Result<Restriction> {
        self.set_restriction(contact, true, jurisdiction, at).await
    }

    /// A request to lift a restriction of processing (GDPR art. 18(3)), answered at once: records
    /// it, appends the marker that ends the restriction, and completes it. Campaign sends are
    /// decided by consent again; jobs cancelled by the restriction stay cancelled.
    ///
    /// # Errors
    /// As [`receive`](Self::receive); a store error.
    pub async fn lift_restriction(
        &self,
        contact: &ContactId,
        jurisdiction: Jurisdiction,
        at: Timestamp,
    ) -> Result<Restriction> {
        self.set_restriction(contact, false, jurisdiction, at).await
    }

    /// Whether `contact` is restricted at `at`.
    ///
    /// # Errors
    /// A store error.
    pub async fn is_restricted(&self, contact: &ContactId, at: Timestamp) -> Result<bool> {
        let history = self.store.consent_history(contact).await?;
        Ok(restricted_since(&history, at).is_some())
    }

    async fn set_restriction(
        &self,
        contact: &ContactId,
        restrict: bool,
        jurisdiction: Jurisdiction,
        at: Timestamp,
    ) -> Result<Restriction> {
        let kind = match restrict {
            true => RequestKind::Restriction,
            false => RequestKind::LiftRestriction,
        };
        let request = self.receive(contact, kind, jurisdiction, at).await?;
        let history = self.store.consent_history(contact).await?;
        let purpose = Purpose::new(RESTRICTION_PURPOSE);
        // Stamped no earlier than the latest marker, so it is the one in force.
        let latest = current_consent(&history, &purpose, Timestamp::MAX);
        let stamp = latest.map_or(at, |r| r.recorded_at.max(at));
        let was = restricted_since(&history, stamp).is_some();
        let mut cancelled = 0;
        if was != restrict {
            let method = match restrict {
                true => RESTRICTION_METHOD,
                false => RESTRICTION_LIFTED_METHOD,
            };
            let evidence = Evidence::new(method, request.id.clone());
            let marker = ConsentRecord::withdraw(contact.clone(), purpose, evidence, stamp);
            cancelled = match restrict {
                true => self.store.restrict_subject(&marker).await?,
                false => {
                    self.store
                        .append_consent(std::slice::from_ref(&marker))
                        .await?;
                    0
                }
            };
            let event = AuditEvent::new(
                stamp,
                &self.actor,
                AuditAction::ConsentChange,
                Some(contact),
                json!({
                    "purpose": RESTRICTION_PURPOSE,
                    "status": ConsentStatus::Withdrawn,
                    "method": method,
                    "request": request.id,
                    "cancelled_jobs": cancelled,
                }),
            );
            self.audit.record(&[event]).await?;
        }
        let note = match (was == restrict, restrict) {
            (true, true) => "already restricted".to_owned(),
            (true, false) => "was not restricted".to_owned(),
            (false, true) => format!("restricted; {cancelled} queued jobs cancelled"),
            (false, false) => "restriction lifted".to_owned(),
        };
        let done = self
            .update(&request.id, RequestState::Completed, Some(note), false, at)
            .await?;
        Ok(Restriction {
            request: done,
            restricted: restrict,
            changed: was != restrict,
            cancelled_jobs: cancelled,
        })
    }

    /// An objection to direct marketing, which is absolute (GDPR art. 21(3)): withdraws every
    /// purpose the contact ever granted and `marketing` (even if never granted, so a later
    /// import cannot start it), cancelling queued jobs in the same transactions, with evidence
    /// method [`OBJECTION_METHOD`]; then completes the request.
    ///
    /// # Errors
    /// As [`receive`](Self::receive); a store error.
    pub async fn object(
        &self,
        contact: &ContactId,
        jurisdiction: Jurisdiction,
        at: Timestamp,
    ) -> Result<Objection> {
        let request = self
            .receive(contact, RequestKind::Objection, jurisdiction, at)
            .await?;
        let history = self.store.consent_history(contact).await?;
        let mut purposes: Vec<Purpose> = history.iter().map(|r| r.purpose.clone()).collect();
        purposes.push(Purpose::marketing());
        // The restriction markers are not consent: an objection leaves them alone.
        purposes.retain(|p| p.as_str() != "service" && p.as_str() != RESTRICTION_PURPOSE);
        purposes.sort();
        purposes.dedup();
        let evidence = Evidence::new(OBJECTION_METHOD, request.id.clone());
        let mut cancelled = 0;
        let mut events = Vec::new();
        for purpose in &purposes {
            // Stamped no earlier than the latest record, so it is the one in force.
            let latest = current_consent(&history, purpose, Timestamp::MAX);
            let stamp = latest.map_or(at, |r| r.recorded_at.max(at));
            let record =
                ConsentRecord::withdraw(contact.clone(), purpose.clone(), evidence.clone(), stamp);
            let n = self.store.withdraw_consent(&record).await?;
            cancelled += n;
            events.push(AuditEvent::new(
                stamp,
                &self.actor,
                AuditAction::ConsentChange,
                Some(contact),
                json!({
                    "purpose": purpose.as_str(),
                    "status": ConsentStatus::Withdrawn,
                    "method": OBJECTION_METHOD,
                    "request": request.id,
                    "cancelled_jobs": n,
                }),
            ));
        }
        self.audit.record(&events).await?;
        let done = self
            .update(
                &request.id,
                RequestState::Completed,
                Some(format!("withdrew {} purposes", purposes.len())),
                false,
                at,
            )
            .await?;
        Ok(Objection {
            request: done,
            withdrawn: purposes,
            cancelled_jobs: cancelled,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn gdpr_deadlines_are_one_calendar_month_clamped_to_the_month_end() {
        let cases = [
            ("2025-01-31T10:00:00Z", "2025-02-28T10:00:00Z"),
            ("2024-01-31T10:00:00Z", "2024-02-29T10:00:00Z"), // leap year
            ("2024-01-30T23:59:59Z", "2024-02-29T23:59:59Z"),
            ("2025-03-31T00:00:00Z", "2025-04-30T00:00:00Z"),
            ("2025-02-28T12:00:00Z", "2025-03-28T12:00:00Z"),
            ("2024-02-29T12:00:00Z", "2024-03-29T12:00:00Z"),
            ("2025-12-31T08:30:00Z", "2026-01-31T08:30:00Z"), // across a year end
            ("2025-05-15T00:00:00Z", "2025-06-15T00:00:00Z"),
        ];
        for (received, due) in cases {
            assert_eq!(
                deadline(Jurisdiction::Gdpr, ts(received)),
                ts(due),
                "{received}"
            );
        }
        assert_eq!(
            extended_deadline(Jurisdiction::Gdpr, ts("2025-11-30T00:00:00Z")),
            ts("2026-02-28T00:00:00Z")
        );
    }

    #[test]
    fn ccpa_deadlines_are_45_calendar_days() {
        let cases = [
            ("2025-01-31T10:00:00Z", "2025-03-17T10:00:00Z"),
            ("2024-01-31T10:00:00Z", "2024-03-16T10:00:00Z"), // leap year: 29 February counts
            ("2025-12-01T00:00:00Z", "2026-01-15T00:00:00Z"),
        ];
        for (received, due) in cases {
            assert_eq!(
                deadline(Jurisdiction::Ccpa, ts(received)),
                ts(due),
                "{received}"
            );
        }
        assert_eq!(
            extended_deadline(Jurisdiction::Ccpa, ts("2025-01-01T00:00:00Z")),
            ts("2025-04-01T00:00:00Z")
        );
    }
}
