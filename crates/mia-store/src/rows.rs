//! The rows of every table, shared by every backend: which columns a query selects, how a row
//! becomes a domain value, and the column values a domain change writes.
//!
//! Both backends use the same table and column names, so a `SELECT` of the columns listed here
//! decodes the same way whatever database it ran on.

use std::collections::HashMap;

use mia_core::{
    AuditAction, AuditCheckpoint, AuditEntry, AuditHash, Campaign, CampaignId, CampaignState,
    ConsentRecord, Contact, ContactId, Error, Event, EventGroup, EventId, IdempotencyKey, Job,
    JobGroup, JobState, JobUpdate, Jurisdiction, NewJob, Purpose, RequestKind, RequestState,
    ReviewId, ReviewItem, ReviewState, SubjectRequest, TelegramPeer, VariantId,
};

use crate::codec::{Columns, micros};
use crate::error::StoreError;

/// The columns of `contacts` that [`contact`] reads, for `concat!` into queries.
macro_rules! contact_columns {
    () => {
        "id, peer_kind, peer_id, locale, time_zone, attributes, created_at"
    };
}

/// The columns of `consents` that [`consent`] reads (and an append writes).
macro_rules! consent_columns {
    () => {
        "contact, purpose, status, basis, evidence, notice_version, recorded_at, expires_at"
    };
}

/// The columns of `campaigns` that [`campaign`] reads (and an insert writes).
macro_rules! campaign_columns {
    () => {
        "id, spec, variants, state, state_reason, created_at, updated_at"
    };
}

/// The columns of `outbox` that [`job`] reads.
macro_rules! job_columns {
    () => {
        "key, campaign, contact, purpose, step, state, due_at, attempts, claim_token, \
         lease_until, worker, variant, propensity, message_id, outcome, updated_at"
    };
}

/// The columns of `events` that [`event`] reads; with `$id`, an expression for the id column
/// (named `id`) in place of the column itself.
macro_rules! event_columns {
    () => {
        $crate::rows::event_columns!("id")
    };
    ($id:literal) => {
        concat!($id, ", at, contact, campaign, variant, step, payload")
    };
}

/// The columns of `reviews` that [`review`] reads (`state` is derived from `decision`).
macro_rules! review_columns {
    () => {
        "id, campaign, subject, text, trace, decision, reviewer, note, created_at, resolved_at"
    };
}

/// The columns of `audit_log` that [`audit_entry`] reads (and an append writes).
macro_rules! audit_columns {
    () => {
        "seq, at, actor, action, subject, detail, prev_hash, hash"
    };
}

/// The columns of `audit_checkpoints` that [`checkpoint`] reads (and an append writes).
macro_rules! checkpoint_columns {
    () => {
        "size, root, at, key_id, signature"
    };
}

/// The columns of `subject_requests` that [`subject_request`] reads (and a save writes).
macro_rules! request_columns {
    () => {
        "id, kind, jurisdiction, contact, subject, state, received_at, due_at, completed_at, note"
    };
}

pub(crate) use {
    audit_columns, campaign_columns, checkpoint_columns, consent_columns, contact_columns,
    event_columns, job_columns, request_columns, review_columns,
};

/// A hash column (64 hex digits).
fn hash(row: &impl Columns, name: &'static str) -> Result<AuditHash, StoreError> {
    AuditHash::from_hex(&row.text(name)?)
        .map_err(|e| StoreError::Corrupt(format!("column {name}: {e}")))
}

/// A column holding a name parsed by `parse`.
fn parsed<T>(
    row: &impl Columns,
    name: &'static str,
    parse: impl Fn(&str) -> mia_core::Result<T>,
) -> Result<T, StoreError> {
    parse(&row.text(name)?).map_err(|e| StoreError::Corrupt(format!("column {name}: {e}")))
}

/// An audit log row. The detail is canonical JSON text (never JSONB, which would reorder it).
pub(crate) fn audit_entry(row: &impl Columns) -> Result<AuditEntry, StoreError> {
    let detail = row.text("detail")?;
    Ok(AuditEntry {
        seq: row.unsigned("seq")?,
        at: row.timestamp("at")?,
        actor: row.text("actor")?,
        action: parsed(row, "action", AuditAction::parse)?,
        subject: row.text_opt("subject")?,
        detail: serde_json::from_str(&detail)
            .map_err(|e| StoreError::Corrupt(format!("column detail: {e}")))?,
        prev_hash: hash(row, "prev_hash")?,
        hash: hash(row, "hash")?,
    })
}

/// An audit checkpoint row.
pub(crate) fn checkpoint(row: &impl Columns) -> Result<AuditCheckpoint, StoreError> {
    Ok(AuditCheckpoint {
        size: row.unsigned("size")?,
        root: hash(row, "root")?,
        at: row.timestamp("at")?,
        key_id: row.text("key_id")?,
        signature: row.text("signature")?,
    })
}

/// A subject request row.
pub(crate) fn subject_request(row: &impl Columns) -> Result<SubjectRequest, StoreError> {
    Ok(SubjectRequest {
        id: row.text("id")?,
        kind: parsed(row, "kind", RequestKind::parse)?,
        jurisdiction: parsed(row, "jurisdiction", Jurisdiction::parse)?,
        contact: row.text_opt("contact")?.map(ContactId::new),
        subject: row.text("subject")?,
        state: parsed(row, "state", RequestState::parse)?,
        received_at: row.timestamp("received_at")?,
        due_at: row.timestamp("due_at")?,
        completed_at: row.timestamp_opt("completed_at")?,
        note: row.text_opt("note")?,
    })
}

/// The subject key as stored (64 hex digits). A damaged key is an error that never shows
/// the stored text.
pub(crate) fn subject_key(text: &str) -> Result<mia_core::SubjectKey, StoreError> {
    AuditHash::from_hex(text)
        .map(|h| mia_core::SubjectKey::from_bytes(h.0))
        .map_err(|_| StoreError::Corrupt("audit_keys.key is not 64 hex digits".into()))
}

/// A sequence number as stored (`INTEGER`/`BIGINT`). Sequence numbers beyond `i64::MAX` cannot
/// happen (one entry per nanosecond would take 292 years); they saturate.
pub(crate) fn seq(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A contact row.
pub(crate) fn contact(row: &impl Columns) -> Result<Contact, StoreError> {
    Ok(Contact {
        id: ContactId::new(row.text("id")?),
        peer: TelegramPeer {
            kind: row.named("peer_kind")?,
            id: row.integer("peer_id")?,
        },
        locale: row.text_opt("locale")?,
        time_zone: row.text("time_zone")?,
        attributes: row.json("attributes")?,
        created_at: row.timestamp("created_at")?,
    })
}

/// A consent record row.
pub(crate) fn consent(row: &impl Columns) -> Result<ConsentRecord, StoreError> {
    Ok(ConsentRecord {
        contact: ContactId::new(row.text("contact")?),
        purpose: Purpose::new(row.text("purpose")?),
        status: row.named("status")?,
        basis: row.named("basis")?,
        evidence: row.json("evidence")?,
        notice_version: row.text("notice_version")?,
        recorded_at: row.timestamp("recorded_at")?,
        expires_at: row.timestamp_opt("expires_at")?,
    })
}

/// A campaign state read from the `state` column.
pub(crate) fn campaign_state(name: &str) -> Result<CampaignState, StoreError> {
    CampaignState::parse(name).map_err(|e| StoreError::Corrupt(format!("column state: {e}")))
}

/// The claimed jobs of `updates` whose keys are among `lost` (a batch's updates that found
/// their claim gone), in input order: what `reassign_lost` of each SQL store checks for a
/// contact erased since the claim. Nothing lost, the usual answer, costs nothing.
pub(crate) fn lost_jobs<'a>(
    updates: &[(&'a Job, JobUpdate)],
    lost: &[IdempotencyKey],
) -> Vec<&'a Job> {
    if lost.is_empty() {
        return Vec::new();
    }
    let lost: std::collections::HashSet<&IdempotencyKey> = lost.iter().collect();
    updates
        .iter()
        .map(|(job, _)| *job)
        .filter(|job| lost.contains(&job.key))
        .collect()
}

/// The ids of `contacts` as one JSON array of strings (SQLite reads it with `json_each`).
#[cfg(feature = "sqlite")]
pub(crate) fn contact_list(contacts: &[ContactId]) -> String {
    serde_json::Value::from(contacts.iter().map(ContactId::as_str).collect::<Vec<_>>()).to_string()
}

/// Job keys as one JSON array of strings, for SQLite's `json_each`.
pub(crate) fn key_list(keys: &[IdempotencyKey]) -> String {
    serde_json::Value::from(keys.iter().map(IdempotencyKey::as_str).collect::<Vec<_>>()).to_string()
}

/// The `(contact, updated_at)` rows of sends as `(contact, when)`.
pub(crate) fn sends_by_contact(
    found: Vec<(String, i64)>,
) -> Result<Vec<(ContactId, jiff::Timestamp)>, StoreError> {
    found
        .into_iter()
        .map(|(contact, us)| {
            Ok((
                ContactId::new(contact),
                crate::codec::from_micros(us, "updated_at")?,
            ))
        })
        .collect()
}

/// A campaign row.
pub(crate) fn campaign(row: &impl Columns) -> Result<Campaign, StoreError> {
    Ok(Campaign {
        id: CampaignId::new(row.text("id")?),
        spec: row.json("spec")?,
        variants: row.json("variants")?,
        state: campaign_state(&row.text("state")?)?,
        state_reason: row.text_opt("state_reason")?,
        created_at: row.timestamp("created_at")?,
        updated_at: row.timestamp("updated_at")?,
    })
}

/// An outbox row.
pub(crate) fn job(row: &impl Columns) -> Result<Job, StoreError> {
    Ok(Job {
        key: IdempotencyKey::new(row.text("key")?),
        campaign: CampaignId::new(row.text("campaign")?),
        contact: ContactId::new(row.text("contact")?),
        purpose: Purpose::new(row.text("purpose")?),
        step: row.unsigned("step")?,
        state: job_state(&row.text("state")?)?,
        due_at: row.timestamp("due_at")?,
        attempts: row.unsigned("attempts")?,
        claim_token: row.unsigned("claim_token")?,
        lease_until: row.timestamp_opt("lease_until")?,
        worker: row.text_opt("worker")?,
        variant: row.text_opt("variant")?.map(VariantId::new),
        propensity: row.real_opt("propensity")?,
        message_id: row.integer_opt("message_id")?,
        outcome: row.text_opt("outcome")?,
        updated_at: row.timestamp("updated_at")?,
    })
}

/// An event row.
pub(crate) fn event(row: &impl Columns) -> Result<Event, StoreError> {
    Ok(Event {
        id: EventId::new(row.text("id")?),
        at: row.timestamp("at")?,
        contact: ContactId::new(row.text("contact")?),
        campaign: row.text_opt("campaign")?.map(CampaignId::new),
        variant: row.text_opt("variant")?.map(VariantId::new),
        step: row.unsigned_opt("step")?,
        // `payload` is the whole kind with its fields; `kind` is only its name, for queries.
        kind: row.json("payload")?,
    })
}

/// A review row.
pub(crate) fn review(row: &impl Columns) -> Result<ReviewItem, StoreError> {
    Ok(ReviewItem {
        id: ReviewId::new(row.text("id")?),
        campaign: CampaignId::new(row.text("campaign")?),
        subject: row.json("subject")?,
        text: row.text("text")?,
        trace: row.json("trace")?,
        // `decision` is the whole state with its fields; `state` is only its name, for queries.
        state: row.json("decision")?,
        reviewer: row.text_opt("reviewer")?,
        note: row.text_opt("note")?,
        created_at: row.timestamp("created_at")?,
        resolved_at: row.timestamp_opt("resolved_at")?,
    })
}

/// Why a decision on review `id` was not saved: the item was decided already if it `exists`
/// (a pending item takes the write), or there is no such item.
pub(crate) fn undecided_review(id: &ReviewId, exists: bool) -> mia_core::Error {
    if exists {
        mia_core::Error::invalid(format!("review {id} was already decided"))
    } else {
        mia_core::Error::NotFound {
            kind: "review",
            id: id.to_string(),
        }
    }
}

/// The events of a batch without later repeats of a `(contact, id)` (the first one is the one
/// kept, as the stores keep the first), in the order of the `(contact, id)` key. Rows are read
/// back ordered by time and id, never by insertion order, so this changes nothing visible; but
/// a batch usually spans many contacts, and inserting them in key order makes consecutive index
/// insertions land on the same pages (each page touched once instead of once per row).
pub(crate) fn events_in_key_order(events: &[Event]) -> Vec<&Event> {
    let mut seen = std::collections::HashSet::with_capacity(events.len());
    let mut kept: Vec<&Event> = events
        .iter()
        .filter(|e| seen.insert((&e.contact, &e.id)))
        .collect();
    kept.sort_unstable_by(|a, b| (&a.contact, &a.id).cmp(&(&b.contact, &b.id)));
    kept
}

/// Decodes every row with `decode`, stopping at the first damaged one.
pub(crate) fn all<R, T>(
    rows: &[R],
    decode: impl Fn(&R) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    rows.iter().map(decode).collect()
}

/// A job state read from the `state` column.
pub(crate) fn job_state(name: &str) -> Result<JobState, StoreError> {
    JobState::parse(name).map_err(|e| StoreError::Corrupt(format!("column state: {e}")))
}

/// The query both SQL stores answer
/// [`OutboxStore::job_groups`](mia_core::OutboxStore::job_groups) with (two placeholders,
/// `?1` and `?2` in SQLite, `$1` and `$2` in Postgres: the campaign, then
/// [`JourneyPosition::WITHIN_OCCURRENCE`](mia_core::JourneyPosition::WITHIN_OCCURRENCE)): one
/// row per group, counted in the database. Groups are named by position, which both databases
/// read as the select list's columns.
macro_rules! job_groups_sql {
    ($campaign:literal, $mask:literal) => {
        concat!(
            "SELECT state, outcome, attempts > 0, variant, step & ",
            $mask,
            ", COUNT(*), MIN(due_at) FROM outbox WHERE campaign = ",
            $campaign,
            " GROUP BY 1, 2, 3, 4, 5"
        )
    };
}
pub(crate) use job_groups_sql;

/// A row of [`job_groups_sql`]: `(state, outcome, retried, variant, step, jobs, earliest due)`.
pub(crate) type GroupRow = (String, Option<String>, bool, Option<String>, i64, i64, i64);

/// The [`JobGroup`]s of [`job_groups_sql`]'s rows.
pub(crate) fn job_groups(rows: Vec<GroupRow>) -> Result<Vec<JobGroup>, StoreError> {
    rows.into_iter()
        .map(|(state, outcome, retried, variant, step, jobs, due)| {
            Ok(JobGroup {
                state: job_state(&state)?,
                outcome,
                retried,
                variant: variant.map(VariantId::new),
                step: u32::try_from(step)
                    .map_err(|_| StoreError::Corrupt(format!("column step: {step}")))?,
                // COUNT(*) is never negative.
                jobs: jobs.unsigned_abs(),
                earliest_due: crate::codec::from_micros(due, "due_at")?,
            })
        })
        .collect()
}

/// The query both SQL stores answer
/// [`EventStore::event_groups`](mia_core::EventStore::event_groups) with (the campaign's
/// placeholder, and the expression reading a conversion's `value_minor` from `payload`): one
/// row per variant and kind, counted in the database. The sum is `BIGINT` in both databases,
/// and fails there rather than wrap when it overflows.
macro_rules! event_groups_sql {
    ($campaign:literal, $value:literal) => {
        concat!(
            "SELECT variant, kind, COUNT(*), COUNT(DISTINCT contact), \
             CAST(COALESCE(SUM(CASE WHEN kind = 'converted' THEN ",
            $value,
            " END), 0) AS BIGINT) FROM events WHERE campaign = ",
            $campaign,
            " GROUP BY variant, kind"
        )
    };
}
pub(crate) use event_groups_sql;

/// A row of [`event_groups_sql`]: `(variant, kind, events, contacts, value)`.
pub(crate) type EventGroupRow = (Option<String>, String, i64, i64, i64);

/// The [`EventGroup`]s of [`event_groups_sql`]'s rows.
pub(crate) fn event_groups(rows: Vec<EventGroupRow>) -> Vec<EventGroup> {
    rows.into_iter()
        .map(
            |(variant, kind, events, contacts, value_minor)| EventGroup {
                variant: variant.map(VariantId::new),
                kind,
                // Counts are never negative.
                events: events.unsigned_abs(),
                contacts: contacts.unsigned_abs(),
                value_minor,
            },
        )
        .collect()
}

/// The name of a review state, as kept in the `state` column of `reviews`.
pub(crate) fn review_state_name(state: &ReviewState) -> &'static str {
    match state {
        ReviewState::Pending => "pending",
        ReviewState::Approved => "approved",
        ReviewState::Edited { .. } => "edited",
        ReviewState::Rejected => "rejected",
    }
}

/// The state a new job starts in: a job skipped at scheduling time keeps its reason as its
/// outcome.
pub(crate) fn new_job_state(new: &NewJob) -> JobState {
    match new.skipped {
        Some(_) => JobState::Skipped,
        None => JobState::Pending,
    }
}

/// A claim token as stored. Stored tokens are never negative, so a token too large for a
/// 64-bit signed column becomes -1, which matches no job.
pub(crate) fn token(claim_token: u64) -> i64 {
    i64::try_from(claim_token).unwrap_or(-1)
}

/// What a store finds of a job whose conditional write matched no row: whether it is still
/// claimed under the writer's token, its campaign, and that campaign's state.
pub(crate) type Missed = (bool, String, Option<String>);

/// Why a conditional write on job `key` matched no row, from what the store then found of
/// the job (`None`: no such job). A job still held by the writer was refused for its
/// campaign's state (only an attempt checks it); if the campaign runs again by the time it is
/// read, or the job is held by another claim or none, the writer lost its claim. A job
/// whose campaign is gone is refused for that.
pub(crate) fn missed(key: &IdempotencyKey, found: Option<Missed>) -> Result<Error, StoreError> {
    Ok(match found {
        None => Error::NotFound {
            kind: "job",
            id: key.to_string(),
        },
        Some((true, campaign, Some(state))) => match campaign_state(&state)? {
            CampaignState::Running => Error::LeaseLost(key.to_string()),
            state => Error::CampaignNotRunning { campaign, state },
        },
        Some((true, campaign, None)) => Error::NotFound {
            kind: "campaign",
            id: campaign,
        },
        Some(_) => Error::LeaseLost(key.to_string()),
    })
}

/// The columns a [`JobUpdate`] writes to a claimed job. `None` keeps the column as it is.
pub(crate) struct JobChange<'a> {
    /// The new state.
    pub(crate) state: JobState,
    /// Telegram's message id, for a send.
    pub(crate) message_id: Option<i64>,
    /// The new outcome (`NULL` after a send).
    pub(crate) outcome: Option<&'a str>,
    /// The new due time (microseconds), for a retry.
    pub(crate) due_at: Option<i64>,
    /// Attempts to add.
    pub(crate) add_attempts: i64,
}

impl<'a> From<&'a JobUpdate> for JobChange<'a> {
    fn from(update: &'a JobUpdate) -> Self {
        let change = |state, outcome: &'a String| JobChange {
            state,
            message_id: None,
            outcome: Some(outcome.as_str()),
            due_at: None,
            add_attempts: 0,
        };
        match update {
            JobUpdate::Sent { message_id } => JobChange {
                state: JobState::Sent,
                message_id: Some(*message_id),
                outcome: None,
                due_at: None,
                add_attempts: 0,
            },
            JobUpdate::Skipped { rule } => change(JobState::Skipped, rule),
            JobUpdate::Retry {
                due_at,
                count_attempt,
                reason,
            } => JobChange {
                due_at: Some(micros(*due_at)),
                add_attempts: i64::from(*count_attempt),
                ..change(JobState::Pending, reason)
            },
            JobUpdate::Held { rule } => change(JobState::Held, rule),
            JobUpdate::DeadLetter { reason } => change(JobState::DeadLetter, reason),
        }
    }
}

/// The error for contact `c` whose Telegram peer already belongs to contact `other`.
pub(crate) fn peer_taken(c: &Contact, other: &str) -> Error {
    Error::invalid(format!(
        "contact {}: Telegram peer {:?} {} already belongs to contact {other}",
        c.id, c.peer.kind, c.peer.id
    ))
}

/// The error for a batch that itself gives one Telegram peer to two contacts, if it does.
pub(crate) fn peer_shared_in_batch(contacts: &[Contact]) -> Option<Error> {
    let mut owners = HashMap::new();
    for c in contacts {
        if let Some(other) = owners.insert(c.peer, &c.id)
            && other != &c.id
        {
            return Some(peer_taken(c, other.as_str()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_retry_reschedules_and_counts_only_when_asked() {
        let at = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let retry = JobUpdate::Retry {
            due_at: at,
            count_attempt: false,
            reason: "quiet_hours".into(),
        };
        let change = JobChange::from(&retry);
        assert_eq!(change.state, JobState::Pending);
        assert_eq!(change.due_at, Some(micros(at)));
        assert_eq!(change.add_attempts, 0);
        assert_eq!(change.outcome, Some("quiet_hours"));
        let sent = JobUpdate::Sent { message_id: 9 };
        let change = JobChange::from(&sent);
        assert_eq!((change.message_id, change.outcome), (Some(9), None));
    }

    #[test]
    fn a_batch_sharing_a_peer_names_both_contacts() {
        let t = jiff::Timestamp::from_second(0).unwrap();
        let a = Contact::new("a", TelegramPeer::user(1), "UTC", t).unwrap();
        let b = Contact::new("b", TelegramPeer::user(1), "UTC", t).unwrap();
        assert!(peer_shared_in_batch(&[a.clone(), a.clone()]).is_none());
        let message = peer_shared_in_batch(&[a, b]).unwrap().to_string();
        assert!(
            message.contains("contact b") && message.contains("contact a"),
            "{message}"
        );
    }

    #[test]
    fn too_large_a_token_matches_nothing() {
        assert_eq!(token(7), 7);
        assert_eq!(token(u64::MAX), -1);
    }
}
