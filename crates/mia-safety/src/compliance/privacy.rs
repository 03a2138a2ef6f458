//! The data privacy scanner: finds personal data in the free text a store keeps (contact
//! attributes, consent evidence, job outcomes, event reasons, review notes, request notes, the
//! audit log) with the PII [`Scanner`], and reports where it sits although the configuration
//! says it should not. A report names the place (table, record, field) and the kind, never the
//! value.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use mia_core::{ContactId, EventKind, Purpose, Result, Store, SubjectKey};
use serde::{Deserialize, Serialize};

use crate::{PiiKind, Scanner};

/// Entries read per page while scanning the audit log.
const PAGE: usize = 2_000;

/// Where personal data was found that may not be there.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PrivacyFinding {
    /// The table (`contacts`, `consents`, `outbox`, `events`, `reviews`, `subject_requests`,
    /// `audit_log`).
    pub table: String,
    /// The record: a contact, job, review or request id, an audit sequence number, for an
    /// event `contact/id` (event ids are unique per contact), or for a consent record
    /// `contact/purpose@time`. When the contact id itself holds personal data, its audit
    /// pseudonym stands in for it.
    pub record: String,
    /// The field, as `table`-relative path (`attributes.note`, `evidence.reference`,
    /// `detail.reason`).
    pub field: String,
    /// The kind (`EMAIL`, `PHONE`, ...).
    pub kind: String,
    /// How many of that kind the field holds.
    pub count: usize,
}

/// What a scan found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivacyReport {
    /// When it ran.
    pub scanned_at: Timestamp,
    /// Records read.
    pub records: u64,
    /// Text fields scanned.
    pub fields: u64,
    /// Personal data where the configuration does not allow it, ordered by place.
    pub findings: Vec<PrivacyFinding>,
}

impl PrivacyReport {
    /// Whether nothing was found out of place.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Scans a store's free text for personal data and reports what sits where the
/// configuration does not allow it.
///
/// The configuration is a set of allowances: `(field pattern, kinds)`. A pattern is a
/// `table.field` path (`contacts.attributes.email`); a trailing `*` matches any rest
/// (`contacts.attributes.*`). By default contacts may keep e-mail addresses and phone numbers
/// in their attributes (contact details a host stores on purpose) and nothing else is allowed
/// anywhere: in particular the audit log and request notes must hold no personal data.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> mia_core::Result<()> {
/// use mia_core::{Contact, ContactStore, MemoryStore, TelegramPeer};
/// use mia_safety::compliance::PrivacyScan;
///
/// let store = MemoryStore::new();
/// let now = jiff::Timestamp::now();
/// let note = serde_json::json!("call me on +43 664 1234567");
/// let c = Contact::new("c1", TelegramPeer::user(7), "UTC", now)?.with_attribute("note", note);
/// store.upsert_contacts(&[c]).await?;
/// // Phone numbers in attributes are allowed by default; not once that is forbidden.
/// assert!(PrivacyScan::new()?.scan(&store, now).await?.is_clean());
/// let strict = PrivacyScan::new()?.forbid("contacts.attributes.*");
/// let report = strict.scan(&store, now).await?;
/// assert_eq!(report.findings[0].field, "attributes.note");
/// assert_eq!(report.findings[0].kind, "PHONE");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct PrivacyScan {
    scanner: Scanner,
    allowed: BTreeMap<String, BTreeSet<PiiKind>>,
}

impl PrivacyScan {
    /// The default configuration (see the type's docs) with every PII kind.
    ///
    /// # Errors
    /// When the PII scanner cannot be built.
    pub fn new() -> Result<Self> {
        let scanner = Scanner::new().map_err(mia_core::Error::from)?;
        Ok(Self::with_scanner(scanner)
            .allow("contacts.attributes.*", [PiiKind::Email, PiiKind::Phone]))
    }

    /// No allowances at all, scanning with `scanner` (its locale, regions and kinds).
    pub fn with_scanner(scanner: Scanner) -> Self {
        Self {
            scanner,
            allowed: BTreeMap::new(),
        }
    }

    /// Allows `kinds` in the fields matching `pattern` (see the type's docs).
    #[must_use]
    pub fn allow(
        mut self,
        pattern: impl Into<String>,
        kinds: impl IntoIterator<Item = PiiKind>,
    ) -> Self {
        self.allowed
            .entry(pattern.into())
            .or_default()
            .extend(kinds);
        self
    }

    /// Removes every allowance for `pattern`.
    #[must_use]
    pub fn forbid(mut self, pattern: &str) -> Self {
        self.allowed.remove(pattern);
        self
    }

    fn is_allowed(&self, path: &str, kind: PiiKind) -> bool {
        self.allowed.iter().any(|(pattern, kinds)| {
            kinds.contains(&kind)
                && match pattern.strip_suffix('*') {
                    Some(prefix) => path.starts_with(prefix),
                    None => path == pattern,
                }
        })
    }

    /// Scans every free-text field of `store`.
    ///
    /// # Errors
    /// A store error.
    pub async fn scan<S: Store + ?Sized>(&self, store: &S, at: Timestamp) -> Result<PrivacyReport> {
        let mut run = Run {
            scan: self,
            records: 0,
            fields: 0,
            findings: BTreeMap::new(),
            locale: None,
        };
        let mut key: Option<SubjectKey> = None;
        let contacts = store.contacts().await?;
        let mut purposes: BTreeSet<Purpose> = BTreeSet::from([Purpose::marketing()]);
        for contact in &contacts {
            run.records += 1;
            // The id is the host's key; if it holds personal data itself, the report names the
            // contact by pseudonym.
            let id_kinds = run.kinds_in(contact.id.as_str());
            let record = match id_kinds.is_empty() {
                true => contact.id.to_string(),
                false => pseudonym(store, &mut key, &contact.id).await?,
            };
            run.add("contacts", &record, "id", id_kinds);
            // Phone numbers in national format are judged in the contact's own regions.
            run.locale = contact.locale.clone();
            for (name, value) in &contact.attributes {
                run.json("contacts", &record, &format!("attributes.{name}"), value);
            }
            for job in store.contact_jobs(&contact.id).await? {
                purposes.insert(job.purpose.clone());
                if let Some(outcome) = &job.outcome {
                    run.text("outbox", job.key.as_str(), "outcome", outcome);
                }
            }
            for event in store.contact_events(&contact.id).await? {
                let reason = match &event.kind {
                    EventKind::Failed { reason } => Some(("kind.reason", reason)),
                    EventKind::Skipped { rule } => Some(("kind.rule", rule)),
                    _ => None,
                };
                if let Some((field, text)) = reason {
                    // Event ids are unique per contact only.
                    run.text("events", &format!("{record}/{}", event.id), field, text);
                }
            }
            run.locale = None;
            for record in store.consent_history(&contact.id).await? {
                purposes.insert(record.purpose.clone());
            }
        }
        for campaign in store.campaigns().await? {
            purposes.insert(campaign.spec.purpose.clone());
        }
        // Per purpose, so the records of erased contacts are read too.
        for purpose in &purposes {
            for r in store.consents_for_purpose(purpose).await? {
                run.records += 1;
                let contact = match run.kinds_in(r.contact.as_str()).is_empty() {
                    true => r.contact.to_string(),
                    false => pseudonym(store, &mut key, &r.contact).await?,
                };
                let record = format!("{contact}/{}@{}", r.purpose, r.recorded_at);
                run.text(
                    "consents",
                    &record,
                    "evidence.reference",
                    &r.evidence.reference,
                );
                run.text("consents", &record, "evidence.method", &r.evidence.method);
                run.text("consents", &record, "notice_version", &r.notice_version);
            }
        }
        for review in store.pending_reviews().await? {
            run.records += 1;
            if let Some(note) = &review.note {
                run.text("reviews", review.id.as_str(), "note", note);
            }
            if let Some(reviewer) = &review.reviewer {
                run.text("reviews", review.id.as_str(), "reviewer", reviewer);
            }
        }
        for request in store.subject_requests().await? {
            run.records += 1;
            if let Some(note) = &request.note {
                run.text("subject_requests", &request.id, "note", note);
            }
        }
        let mut after = 0;
        loop {
            let page = store.audit_entries(after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for entry in &page {
                run.records += 1;
                let record = entry.seq.to_string();
                run.text("audit_log", &record, "actor", &entry.actor);
                run.json("audit_log", &record, "detail", &entry.detail);
            }
        }
        Ok(PrivacyReport {
            scanned_at: at,
            records: run.records,
            fields: run.fields,
            findings: run.findings.into_values().collect(),
        })
    }
}

/// The audit pseudonym of `contact`, reading the store's subject key once.
async fn pseudonym<S: Store + ?Sized>(
    store: &S,
    key: &mut Option<SubjectKey>,
    contact: &ContactId,
) -> Result<String> {
    let key = match key {
        Some(key) => key,
        None => key.insert(store.audit_key(&SubjectKey::generate()).await?),
    };
    Ok(key.pseudonym(contact))
}

/// One scan's running totals.
struct Run<'a> {
    scan: &'a PrivacyScan,
    records: u64,
    fields: u64,
    findings: BTreeMap<(String, String, String, PiiKind), PrivacyFinding>,
    /// The locale of the contact whose fields are being scanned, if known.
    locale: Option<String>,
}

impl Run<'_> {
    fn kinds_in(&self, text: &str) -> Vec<PiiKind> {
        let found = match &self.locale {
            Some(locale) => self.scan.scanner.scan_with_locale(text, locale),
            None => self.scan.scanner.scan(text),
        };
        found.into_iter().map(|f| f.kind).collect()
    }

    fn text(&mut self, table: &str, record: &str, field: &str, text: &str) {
        if text.trim().is_empty() {
            return;
        }
        self.fields += 1;
        let kinds = self.kinds_in(text);
        self.add(table, record, field, kinds);
    }

    /// Scans every string (and number, which may be a phone or card number) inside `value`;
    /// object keys extend the path, array items add `[i]`.
    fn json(&mut self, table: &str, record: &str, path: &str, value: &serde_json::Value) {
        use serde_json::Value;
        match value {
            Value::String(s) => self.text(table, record, path, s),
            Value::Number(n) => self.text(table, record, path, &n.to_string()),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.json(table, record, &format!("{path}[{i}]"), item);
                }
            }
            Value::Object(map) => {
                for (key, item) in map {
                    self.json(table, record, &format!("{path}.{key}"), item);
                }
            }
            Value::Null | Value::Bool(_) => {}
        }
    }

    fn add(&mut self, table: &str, record: &str, field: &str, kinds: Vec<PiiKind>) {
        let place = format!("{table}.{field}");
        for kind in kinds {
            if self.scan.is_allowed(&place, kind) {
                continue;
            }
            let key = (table.to_owned(), record.to_owned(), field.to_owned(), kind);
            self.findings
                .entry(key)
                .or_insert_with(|| PrivacyFinding {
                    table: table.to_owned(),
                    record: record.to_owned(),
                    field: field.to_owned(),
                    kind: kind.as_str().to_owned(),
                    count: 0,
                })
                .count += 1;
        }
    }
}
