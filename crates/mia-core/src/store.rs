//! The store seams: one narrow trait per aggregate. A backend type implements all of them and
//! so is a [`Store`].
//!
//! Operations that must be atomic across aggregates are single methods here, so every backend
//! makes them one transaction: scheduling a campaign writes its state and its jobs together;
//! withdrawing consent appends the record and cancels the contact's queued jobs together.
//!
//! Backends may keep timestamps to the microsecond (SQLite and Postgres do); nothing in mia
//! needs more.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::audit::{AuditCheckpoint, AuditDraft, AuditEntry, SubjectKey};
use crate::campaign::{Campaign, CampaignState};
use crate::consent::{ConsentRecord, Purpose};
use crate::contact::{Contact, TelegramPeer};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::ids::{CampaignId, ContactId, IdempotencyKey, ReviewId, VariantId};
use crate::policy::RuleHit;
use crate::privacy::{ErasureCounts, SubjectRequest};

/// Where an outbox job stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for its due time and a worker.
    Pending,
    /// A worker holds a lease on it.
    Claimed,
    /// Waiting for a human reviewer (the send policy escalated).
    Held,
    /// Sent (final).
    Sent,
    /// Not sent because a rule said no, at scheduling or at send time (final).
    Skipped,
    /// Dead letter: failed for good or out of attempts (final).
    DeadLetter,
    /// Cancelled by a withdrawal or an aborted campaign (final; but for a job whose send was in
    /// flight at an abort, which still takes its worker's result: see
    /// [`OutboxStore::cancel_campaign_jobs`]).
    Cancelled,
}

impl JobState {
    /// The state's stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Claimed => "claimed",
            JobState::Held => "held",
            JobState::Sent => "sent",
            JobState::Skipped => "skipped",
            JobState::DeadLetter => "dead_letter",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Parses a name written by [`as_str`](Self::as_str).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an unknown name.
    pub fn parse(name: &str) -> Result<Self> {
        use JobState::*;
        [Pending, Claimed, Held, Sent, Skipped, DeadLetter, Cancelled]
            .into_iter()
            .find(|s| s.as_str() == name)
            .ok_or_else(|| Error::invalid(format!("unknown job state {name:?}")))
    }

    /// Whether the job is finished for good (a cancelled job whose send was in flight at an
    /// abort still takes its worker's result: see [`OutboxStore::cancel_campaign_jobs`]).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Sent | JobState::Skipped | JobState::DeadLetter | JobState::Cancelled
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job to put in the outbox.
#[derive(Clone, Debug, PartialEq)]
pub struct NewJob {
    /// `hash(campaign, contact, step)`; inserting a key that exists does nothing.
    pub key: IdempotencyKey,
    /// The recipient.
    pub contact: ContactId,
    /// The consent purpose the job serves.
    pub purpose: Purpose,
    /// The step of the campaign.
    pub step: u32,
    /// Not before.
    pub due_at: Timestamp,
    /// `None` for a job to send; `Some(reason)` to record a contact skipped at scheduling time
    /// (`"no_consent"`, `"withdrawn"`), so every audience member is accounted for.
    pub skipped: Option<String>,
}

/// One recipient and step of a campaign.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Its idempotency key, which is also its id.
    pub key: IdempotencyKey,
    /// Its campaign.
    pub campaign: CampaignId,
    /// The recipient.
    pub contact: ContactId,
    /// The consent purpose.
    pub purpose: Purpose,
    /// The step.
    pub step: u32,
    /// Where it stands.
    pub state: JobState,
    /// Not before.
    pub due_at: Timestamp,
    /// How many transport attempts failed transiently or were told to wait.
    pub attempts: u32,
    /// Changed by every claim; a worker's writes must carry the token it claimed with. Opaque:
    /// a store may put more in it than a count (the SQLite store puts the job's row in it), so
    /// compare tokens for equality only.
    pub claim_token: u64,
    /// Until when the current claim holds.
    pub lease_until: Option<Timestamp>,
    /// Who holds the claim.
    pub worker: Option<String>,
    /// The variant chosen (sticky once recorded).
    pub variant: Option<VariantId>,
    /// The probability the allocator gave that variant.
    pub propensity: Option<f64>,
    /// Telegram's message id once sent.
    pub message_id: Option<i64>,
    /// The rule or failure reason behind the last non-send (`"quiet_hours"`, `"blocked"`).
    pub outcome: Option<String>,
    /// Last change.
    pub updated_at: Timestamp,
}

/// The `outcome` of a job whose send was handed to the transport and whose result was not
/// recorded yet (set by [`OutboxStore::record_attempt`], replaced by every
/// [`OutboxStore::update_job`]). Found on a claimed job, it means the previous worker stopped
/// mid-send. Found on a cancelled job, it means the campaign was aborted while the send was in
/// flight (see [`OutboxStore::cancel_campaign_jobs`]): the worker's result has not come, and
/// the message may have reached Telegram.
pub const SEND_IN_FLIGHT: &str = "send_in_flight";

/// The `outcome` of a job cancelled because its campaign was aborted.
pub const CAMPAIGN_ABORTED: &str = "campaign_aborted";

impl Job {
    /// Whether the job's send is in flight ([`SEND_IN_FLIGHT`]): handed to the transport by a
    /// worker that has not recorded the result (or stopped before it could). The job is
    /// claimed, or cancelled by an abort that came while the send was in flight, which leaves
    /// the result to that worker.
    pub fn send_in_flight(&self) -> bool {
        matches!(self.state, JobState::Claimed | JobState::Cancelled)
            && self.outcome.as_deref() == Some(SEND_IN_FLIGHT)
    }
}

/// What a worker did with a claimed job.
#[derive(Clone, Debug, PartialEq)]
pub enum JobUpdate {
    /// Telegram accepted it.
    Sent {
        /// Telegram's message id.
        message_id: i64,
    },
    /// A rule said no.
    Skipped {
        /// The rule.
        rule: String,
    },
    /// Try again at `due_at`.
    Retry {
        /// When.
        due_at: Timestamp,
        /// Whether this counts as a failed attempt (a policy deferral does not).
        count_attempt: bool,
        /// Why (`"quiet_hours"`, `"flood_wait"`).
        reason: String,
    },
    /// Wait for a reviewer.
    Held {
        /// The rule that escalated.
        rule: String,
    },
    /// Give up: dead letter.
    DeadLetter {
        /// Why.
        reason: String,
    },
}

/// What an operator does with a dead letter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeadLetterAction {
    /// Back to the queue at `due_at`, with its attempts reset. It passes the send policy again.
    Requeue {
        /// When it becomes due.
        due_at: Timestamp,
    },
    /// Give up on it for good: it becomes cancelled with outcome `discarded: <reason>`.
    Discard,
}

/// Counts of a campaign's jobs by state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobCounts {
    /// Pending.
    pub pending: u64,
    /// Claimed.
    pub claimed: u64,
    /// Held for review.
    pub held: u64,
    /// Sent.
    pub sent: u64,
    /// Skipped.
    pub skipped: u64,
    /// Dead letters.
    pub dead_letter: u64,
    /// Cancelled.
    pub cancelled: u64,
}

impl JobCounts {
    /// Adds one job in `state`.
    pub fn add(&mut self, state: JobState, n: u64) {
        let slot = match state {
            JobState::Pending => &mut self.pending,
            JobState::Claimed => &mut self.claimed,
            JobState::Held => &mut self.held,
            JobState::Sent => &mut self.sent,
            JobState::Skipped => &mut self.skipped,
            JobState::DeadLetter => &mut self.dead_letter,
            JobState::Cancelled => &mut self.cancelled,
        };
        *slot += n;
    }

    /// Jobs not yet final.
    pub fn open(&self) -> u64 {
        self.pending + self.claimed + self.held
    }

    /// All jobs.
    pub fn total(&self) -> u64 {
        self.open() + self.sent + self.skipped + self.dead_letter + self.cancelled
    }
}

/// The jobs of a campaign that share a state, an outcome, whether an attempt was counted, a
/// variant and a step within their occurrence: one row of [`OutboxStore::job_groups`], from
/// which a campaign's status and report are built without reading each job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobGroup {
    /// Their state.
    pub state: JobState,
    /// Their outcome, if any (a skip's rule, a dead letter's, a retry's or a cancellation's
    /// reason, a hold's rule).
    pub outcome: Option<String>,
    /// Whether they have had an attempt counted (`attempts > 0`).
    pub retried: bool,
    /// The variant their attempt chose, if any.
    pub variant: Option<VariantId>,
    /// Their [`Job::step`] without its occurrence ([`JourneyPosition::within_occurrence`]):
    /// every occurrence of a recurring campaign visiting one journey position shares it, so a
    /// report finds a campaign's audience (its contacts' first step) in few groups. `0` for a
    /// campaign without a journey.
    ///
    /// [`JourneyPosition::within_occurrence`]: crate::JourneyPosition::within_occurrence
    pub step: u32,
    /// How many jobs.
    pub jobs: u64,
    /// The earliest due time among them.
    pub earliest_due: Timestamp,
}

/// [`JobGroup`]s of `jobs`, in no particular order: what
/// [`OutboxStore::job_groups`] answers, computed from the jobs themselves.
pub(crate) fn group_jobs<'a>(jobs: impl IntoIterator<Item = &'a Job>) -> Vec<JobGroup> {
    type Key<'a> = (JobState, Option<&'a str>, bool, Option<&'a VariantId>, u32);
    let mut groups: std::collections::HashMap<Key<'a>, JobGroup> = std::collections::HashMap::new();
    for job in jobs {
        let retried = job.attempts > 0;
        let step = crate::JourneyPosition::within_occurrence(job.step);
        groups
            .entry((
                job.state,
                job.outcome.as_deref(),
                retried,
                job.variant.as_ref(),
                step,
            ))
            .and_modify(|g| {
                g.jobs += 1;
                g.earliest_due = g.earliest_due.min(job.due_at);
            })
            .or_insert_with(|| JobGroup {
                state: job.state,
                outcome: job.outcome.clone(),
                retried,
                variant: job.variant.clone(),
                step,
                jobs: 1,
                earliest_due: job.due_at,
            });
    }
    groups.into_values().collect()
}

/// The jobs of `jobs` whose key comes after `after` (all when `None`), in key order: what the
/// default [`OutboxStore::jobs_page`] answers, whatever order `jobs` came in.
pub(crate) fn jobs_after(mut jobs: Vec<Job>, after: Option<&IdempotencyKey>) -> Vec<Job> {
    jobs.retain(|j| after.is_none_or(|after| &j.key > after));
    jobs.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    jobs
}

/// A campaign's events that share a variant and a kind: one row of
/// [`EventStore::event_groups`], from which a campaign report is built without reading each
/// event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventGroup {
    /// The variant they are about, if any.
    pub variant: Option<VariantId>,
    /// Their kind's [`EventKind::name`](crate::EventKind::name).
    pub kind: String,
    /// How many events.
    pub events: u64,
    /// How many contacts they are about, each counted once.
    pub contacts: u64,
    /// The sum of their conversion values, in minor units (0 for any other kind).
    pub value_minor: i64,
}

/// [`EventGroup`]s of `events` (a campaign's), in no particular order: what
/// [`EventStore::event_groups`] answers, computed from the events themselves.
///
/// # Errors
/// [`Error::InvalidInput`] when a group's conversion values add up to more than an `i64`
/// holds.
pub(crate) fn group_events<'a>(
    events: impl IntoIterator<Item = &'a Event>,
) -> Result<Vec<EventGroup>> {
    use std::collections::{HashMap, HashSet};
    type Key<'a> = (Option<&'a VariantId>, &'static str);
    let mut groups: HashMap<Key<'a>, (EventGroup, HashSet<&ContactId>)> = HashMap::new();
    for e in events {
        let (group, contacts) = groups
            .entry((e.variant.as_ref(), e.kind.name()))
            .or_insert_with(|| {
                let group = EventGroup {
                    variant: e.variant.clone(),
                    kind: e.kind.name().to_owned(),
                    events: 0,
                    contacts: 0,
                    value_minor: 0,
                };
                (group, HashSet::new())
            });
        group.events += 1;
        contacts.insert(&e.contact);
        if let crate::EventKind::Converted { value_minor } = e.kind {
            group.value_minor = group.value_minor.checked_add(value_minor).ok_or_else(|| {
                Error::invalid(format!(
                    "the conversion values of variant {:?} add up to more than an i64 holds",
                    group.variant
                ))
            })?;
        }
    }
    Ok(groups
        .into_values()
        .map(|(mut group, contacts)| {
            group.contacts = contacts.len() as u64;
            group
        })
        .collect())
}

/// What a reviewer is asked to look at.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ReviewSubject {
    /// A copy variant the content policy escalated.
    Variant {
        /// Which one.
        variant: VariantId,
    },
    /// One send the send policy escalated.
    Send {
        /// The job.
        job: IdempotencyKey,
    },
}

/// A reviewer's decision, or none yet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum ReviewState {
    /// Waiting.
    Pending,
    /// Approved as it is.
    Approved,
    /// Approved with new text (which passed the content policy).
    Edited {
        /// The new text.
        text: String,
    },
    /// Rejected.
    Rejected,
}

/// An item in the human review queue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReviewItem {
    /// Its id.
    pub id: ReviewId,
    /// The campaign.
    pub campaign: CampaignId,
    /// What to review.
    pub subject: ReviewSubject,
    /// The text in question.
    pub text: String,
    /// The rules that fired.
    pub trace: Vec<RuleHit>,
    /// The decision.
    pub state: ReviewState,
    /// Who decided.
    pub reviewer: Option<String>,
    /// The reviewer's note.
    pub note: Option<String>,
    /// When it was queued.
    pub created_at: Timestamp,
    /// When it was decided.
    pub resolved_at: Option<Timestamp>,
}

impl ReviewItem {
    /// When the item was decided, checking that it was: what a store's
    /// [`ReviewStore::resolve_review`] needs.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if the item is pending or has no `resolved_at`.
    pub fn decided_at(&self) -> Result<Timestamp> {
        match (&self.state, self.resolved_at) {
            (ReviewState::Pending, _) => Err(Error::invalid(format!(
                "review {} is not decided: only a decision is saved",
                self.id
            ))),
            (_, None) => Err(Error::invalid(format!(
                "review {} is decided but says not when (resolved_at)",
                self.id
            ))),
            (_, Some(at)) => Ok(at),
        }
    }

    /// Applies `change` to `campaign`, the item's campaign as stored: what a store's
    /// [`ReviewStore::decide_review`] does before it saves both.
    ///
    /// # Errors
    /// `change`'s error; [`Error::InvalidInput`] if `change` made it another campaign.
    pub fn change_campaign(
        &self,
        campaign: &mut Campaign,
        change: &CampaignChange<'_>,
    ) -> Result<()> {
        change(campaign)?;
        if campaign.id != self.campaign {
            return Err(Error::invalid(format!(
                "review {} is about campaign {}, not {}",
                self.id, self.campaign, campaign.id
            )));
        }
        Ok(())
    }

    /// Whether the decision lets its subject go ahead: approved, with or without an edit.
    pub fn is_approved(&self) -> bool {
        matches!(
            self.state,
            ReviewState::Approved | ReviewState::Edited { .. }
        )
    }
}

/// Contacts. A Telegram peer belongs to one contact.
#[async_trait]
pub trait ContactStore: Send + Sync {
    /// Inserts or replaces contacts by id.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if the batch would give a peer to two contacts; a store error.
    /// Nothing is written then.
    async fn upsert_contacts(&self, contacts: &[Contact]) -> Result<()>;
    /// One contact.
    ///
    /// # Errors
    /// A store error.
    async fn contact(&self, id: &ContactId) -> Result<Option<Contact>>;
    /// The contact behind a Telegram chat.
    ///
    /// # Errors
    /// A store error.
    async fn contact_by_peer(&self, peer: &TelegramPeer) -> Result<Option<Contact>>;
    /// Every contact, ordered by id.
    ///
    /// # Errors
    /// A store error.
    async fn contacts(&self) -> Result<Vec<Contact>>;
    /// The contacts with these ids, ordered by id; an id with no contact is left out, and an
    /// id given twice is answered once. A worker reads a claimed batch's contacts with one call.
    /// The default asks [`contact`](Self::contact) for each id.
    ///
    /// # Errors
    /// A store error.
    async fn contacts_by_id(&self, ids: &[ContactId]) -> Result<Vec<Contact>> {
        let mut ids: Vec<&ContactId> = ids.iter().collect();
        ids.sort_unstable();
        ids.dedup();
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            found.extend(self.contact(id).await?);
        }
        Ok(found)
    }
}

/// The consent ledger (append-only).
#[async_trait]
pub trait ConsentStore: Send + Sync {
    /// Appends records. A withdrawal appended here cancels no job: withdraw through
    /// [`withdraw_consent`](Self::withdraw_consent), which does, so that a worker that read the
    /// contact's consent before cannot send.
    ///
    /// # Errors
    /// A store error; nothing is written then.
    async fn append_consent(&self, records: &[ConsentRecord]) -> Result<()>;
    /// A contact's history, in insertion order.
    ///
    /// # Errors
    /// A store error.
    async fn consent_history(&self, contact: &ContactId) -> Result<Vec<ConsentRecord>>;
    /// The histories of these contacts together: every record of each, in insertion order (a
    /// contact given twice is answered once). A worker reads a claimed batch's histories with
    /// one call. The default asks [`consent_history`](Self::consent_history) for each contact and
    /// returns the histories one after the other, each in insertion order.
    ///
    /// # Errors
    /// A store error.
    async fn consent_histories(&self, contacts: &[ContactId]) -> Result<Vec<ConsentRecord>> {
        let mut contacts: Vec<&ContactId> = contacts.iter().collect();
        contacts.sort_unstable();
        contacts.dedup();
        let mut found = Vec::new();
        for contact in contacts {
            found.extend(self.consent_history(contact).await?);
        }
        Ok(found)
    }
    /// Every record for `purpose`, in insertion order.
    ///
    /// # Errors
    /// A store error.
    async fn consents_for_purpose(&self, purpose: &Purpose) -> Result<Vec<ConsentRecord>>;
    /// Appends a withdrawal and, in the same transaction, cancels the contact's open jobs
    /// (pending, claimed, held) for that purpose. Returns how many jobs were cancelled.
    ///
    /// A job whose send is in flight (claimed, outcome [`SEND_IN_FLIGHT`]: the message was
    /// handed to the transport before the withdrawal) is left to its worker, which records what
    /// happened; every other job is cancelled, so a send either began before the withdrawal or
    /// never happens, and the record says which.
    ///
    /// # Errors
    /// A store error; nothing is written then.
    async fn withdraw_consent(&self, record: &ConsentRecord) -> Result<u64>;
}

/// Campaigns.
#[async_trait]
pub trait CampaignStore: Send + Sync {
    /// Inserts a new campaign.
    ///
    /// # Errors
    /// A store error, or [`Error::InvalidInput`] if the id exists.
    async fn insert_campaign(&self, campaign: &Campaign) -> Result<()>;
    /// Saves a campaign's spec, variants and state.
    ///
    /// # Errors
    /// A store error, or [`Error::NotFound`].
    async fn update_campaign(&self, campaign: &Campaign) -> Result<()>;
    /// One campaign.
    ///
    /// # Errors
    /// A store error.
    async fn campaign(&self, id: &CampaignId) -> Result<Option<Campaign>>;
    /// One campaign's state, without its spec and variants: a worker with a daily cap asks
    /// before it takes a day's send, so a paused campaign does not use one up (the send itself
    /// is refused by [`OutboxStore::record_attempt`]). The default reads the campaign.
    ///
    /// # Errors
    /// A store error.
    async fn campaign_state(&self, id: &CampaignId) -> Result<Option<CampaignState>> {
        Ok(self.campaign(id).await?.map(|c| c.state))
    }
    /// Every campaign, oldest first.
    ///
    /// # Errors
    /// A store error.
    async fn campaigns(&self) -> Result<Vec<Campaign>>;
    /// The campaigns in `state`, oldest first. Workers read the running ones every batch; a
    /// store that keeps many finished campaigns answers without reading (and decoding) those.
    /// The default filters [`campaigns`](Self::campaigns).
    ///
    /// # Errors
    /// A store error.
    async fn campaigns_in(&self, state: CampaignState) -> Result<Vec<Campaign>> {
        let mut all = self.campaigns().await?;
        all.retain(|c| c.state == state);
        Ok(all)
    }
}

/// The durable outbox.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Saves `campaign` (now running) and inserts its jobs in one transaction; keys that exist
    /// are left alone, so scheduling twice is harmless. Returns how many jobs were inserted.
    ///
    /// # Errors
    /// A store error; nothing is written then.
    async fn schedule(&self, campaign: &Campaign, jobs: &[NewJob]) -> Result<u64>;
    /// Claims up to `limit` jobs of running campaigns that are due at `now` (pending, or claimed
    /// with an expired lease), earliest first, leasing them to `worker` for `lease`.
    ///
    /// # Errors
    /// A store error.
    async fn claim(
        &self,
        worker: &str,
        now: Timestamp,
        lease: SignedDuration,
        limit: usize,
    ) -> Result<Vec<Job>>;
    /// Records the variant chosen for a claimed job, right before the transport call. Keeps an
    /// earlier choice (assignments are sticky). Sets the job's `outcome` to [`SEND_IN_FLIGHT`]
    /// until [`update_job`](Self::update_job) records what happened, so a worker that claims
    /// the job after a crash knows a send may have reached Telegram.
    ///
    /// The write also checks that the job's campaign is running, in the same statement: this
    /// is the last word on whether the send may go, so a pause or an abort stops every worker
    /// at its next attempt, without a read of the campaign before each send.
    ///
    /// # Errors
    /// [`Error::LeaseLost`] if `claim_token` is no longer the job's current claim or the job was
    /// cancelled meanwhile; [`Error::CampaignNotRunning`] if the job's campaign is not running
    /// (nothing is written then). Either way the caller must not send.
    async fn record_attempt(
        &self,
        key: &IdempotencyKey,
        claim_token: u64,
        variant: &VariantId,
        propensity: f64,
        now: Timestamp,
    ) -> Result<()>;
    /// Adds jobs to a campaign that is already scheduled (a journey's next steps), in one
    /// transaction, leaving the campaign itself alone. Inserting a key that exists does
    /// nothing, so two writers racing to add the same job add it once. Returns how many jobs
    /// were new.
    ///
    /// # Errors
    /// [`Error::NotFound`] if the campaign does not exist; a store error. Nothing is written
    /// then.
    async fn enqueue(&self, campaign: &CampaignId, jobs: &[NewJob], now: Timestamp) -> Result<u64>;
    /// Finishes or reschedules a claimed job.
    ///
    /// A job that an abort cancelled while its send was in flight (see
    /// [`cancel_campaign_jobs`](Self::cancel_campaign_jobs)) still takes its worker's result,
    /// under the same claim: [`JobUpdate::Sent`] makes it a sent job (the message went out),
    /// and any other result leaves it cancelled, with the outcome [`CAMPAIGN_ABORTED`]. Once
    /// its lease has run out, a later `cancel_campaign_jobs` or
    /// [`close_abandoned_sends`](Self::close_abandoned_sends) may close it first; a result that
    /// comes after that is refused, and the job stays cancelled (the events its worker recorded
    /// for it stay too).
    ///
    /// # Errors
    /// [`Error::LeaseLost`] if `claim_token` is no longer the job's current claim, or the job
    /// was closed as above.
    async fn update_job(
        &self,
        key: &IdempotencyKey,
        claim_token: u64,
        update: &JobUpdate,
        now: Timestamp,
    ) -> Result<()>;
    /// Finishes or reschedules many claimed jobs in one store round trip (one transaction):
    /// each `(job, update)` is applied as [`update_job`](Self::update_job) would apply it, if
    /// `job.claim_token` is still the job's current claim. Workers use it to record a claimed
    /// batch's results together.
    ///
    /// An update whose claim was lost (another worker took the job over, a withdrawal, an
    /// erasure or an abort cancelled it before its send, or the job does not exist) changes
    /// nothing; the keys of those are returned, in input order. So does an update whose
    /// `job.campaign` is not the job's campaign: `job` is the job as a claim returned it, and
    /// every store checks the campaign it names against the job's. The other updates are all
    /// written, or none on an error. One more thing happens for a lost job whose contact was
    /// erased after `job` was claimed (the job's contact is now the erasure's replacement,
    /// `job.contact` the erased id): the events under `job.contact` about `job.campaign`, which
    /// the worker recorded for its results before calling this, move to the replacement, as
    /// [`SubjectStore::erase_subject`] moved the others (after the updates are written; a
    /// failure of that step is logged, not returned, as the updates stand).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if a key appears twice; a store error. Nothing is written then.
    async fn update_jobs(
        &self,
        updates: &[(&Job, JobUpdate)],
        now: Timestamp,
    ) -> Result<Vec<IdempotencyKey>>;
    /// Moves a held job back to pending (approved) or to skipped (rejected).
    ///
    /// # Errors
    /// [`Error::NotFound`] if the job is not held.
    async fn release_held(&self, key: &IdempotencyKey, approve: bool, now: Timestamp)
    -> Result<()>;
    /// Requeues or discards a dead letter.
    ///
    /// # Errors
    /// [`Error::NotFound`] if the job is not a dead letter.
    async fn settle_dead_letter(
        &self,
        key: &IdempotencyKey,
        action: DeadLetterAction,
        now: Timestamp,
    ) -> Result<()>;
    /// One job.
    ///
    /// # Errors
    /// A store error.
    async fn job(&self, key: &IdempotencyKey) -> Result<Option<Job>>;
    /// A campaign's jobs, ordered by key.
    ///
    /// # Errors
    /// A store error.
    async fn jobs(&self, campaign: &CampaignId) -> Result<Vec<Job>>;
    /// Counts of a campaign's jobs by state.
    ///
    /// # Errors
    /// A store error.
    async fn job_counts(&self, campaign: &CampaignId) -> Result<JobCounts>;
    /// A page of a campaign's jobs, ordered by key (byte order, as [`IdempotencyKey`]'s
    /// `Ord`): those whose key comes after `after` (from the first when `None`), at most
    /// `limit` of them (`limit` is at least 1), or every one left. A caller walks a large
    /// campaign a page at a time, passing the last key it got, and holds one page in memory; a
    /// page of any length but `limit` is the last.
    ///
    /// The default reads [`jobs`](Self::jobs) and answers every job after `after` at once,
    /// however many: reading them all for each page of `limit` would read the campaign once
    /// a page. A caller sees one long page, then an empty one.
    ///
    /// # Errors
    /// A store error.
    async fn jobs_page(
        &self,
        campaign: &CampaignId,
        after: Option<&IdempotencyKey>,
        limit: usize,
    ) -> Result<Vec<Job>> {
        let _ = limit;
        Ok(jobs_after(self.jobs(campaign).await?, after))
    }
    /// Which of `keys` name a job (of any campaign), ordered, each once. The default asks
    /// [`job`](Self::job) for each key.
    ///
    /// # Errors
    /// A store error.
    async fn existing_keys(&self, keys: &[IdempotencyKey]) -> Result<Vec<IdempotencyKey>> {
        let mut keys: Vec<&IdempotencyKey> = keys.iter().collect();
        keys.sort_unstable();
        keys.dedup();
        let mut found = Vec::new();
        for key in keys {
            if self.job(key).await?.is_some() {
                found.push(key.clone());
            }
        }
        Ok(found)
    }
    /// A campaign's jobs in `state`, ordered by key: its dead letters for an operator, without
    /// reading the rest. The default filters [`jobs`](Self::jobs).
    ///
    /// # Errors
    /// A store error.
    async fn jobs_in(&self, campaign: &CampaignId, state: JobState) -> Result<Vec<Job>> {
        let mut jobs = self.jobs(campaign).await?;
        jobs.retain(|j| j.state == state);
        Ok(jobs)
    }
    /// A campaign's jobs grouped by state, outcome, whether an attempt was counted, variant
    /// and step within their occurrence ([`JobGroup`]), in no particular order: what a status
    /// or a report needs, without loading each job (the SQL stores count in the database,
    /// which still reads the campaign's rows). The default groups [`jobs`](Self::jobs).
    ///
    /// # Errors
    /// A store error.
    async fn job_groups(&self, campaign: &CampaignId) -> Result<Vec<JobGroup>> {
        Ok(group_jobs(&self.jobs(campaign).await?))
    }
    /// The sent job that produced Telegram message `message_id` for `contact`.
    ///
    /// # Errors
    /// A store error.
    async fn job_by_message(&self, contact: &ContactId, message_id: i64) -> Result<Option<Job>>;
    /// When `contact` was sent campaign messages at or after `since`, newest first.
    ///
    /// # Errors
    /// A store error.
    async fn sends_since(&self, contact: &ContactId, since: Timestamp) -> Result<Vec<Timestamp>>;
    /// [`sends_since`](Self::sends_since) for several contacts in one call: each send as
    /// `(contact, when)`, every contact's newest first (a contact given twice is answered
    /// once). A worker reads a claimed batch's recent sends with one call. The default asks
    /// `sends_since` for each contact.
    ///
    /// # Errors
    /// A store error.
    async fn sends_since_by_contact(
        &self,
        contacts: &[ContactId],
        since: Timestamp,
    ) -> Result<Vec<(ContactId, Timestamp)>> {
        let mut contacts: Vec<&ContactId> = contacts.iter().collect();
        contacts.sort_unstable();
        contacts.dedup();
        let mut found = Vec::new();
        for contact in contacts {
            let sends = self.sends_since(contact, since).await?;
            found.extend(sends.into_iter().map(|at| (contact.clone(), at)));
        }
        Ok(found)
    }

    /// Counts one send against the daily cap of `key` (a sending account) on `day` (its local
    /// date, `YYYY-MM-DD`), atomically across every worker sharing the store: `true` when
    /// fewer than `cap` sends were counted that day and this one now is, `false` when the cap
    /// is reached (nothing is counted). Counters are kept with the store, so a restarted
    /// worker finds the day's count.
    ///
    /// # Errors
    /// A store error; nothing is counted then.
    async fn take_daily(&self, key: &str, day: &str, cap: u32) -> Result<bool>;
    /// The earliest time a job of a running campaign becomes claimable (its due time, or its
    /// lease expiry), if any job is open.
    ///
    /// # Errors
    /// A store error.
    async fn next_due(&self) -> Result<Option<Timestamp>>;
    /// Cancels every open job of a campaign (when it is aborted), with the outcome
    /// [`CAMPAIGN_ABORTED`]. Returns how many.
    ///
    /// A claimed job whose send is in flight (handed to the transport after
    /// [`record_attempt`](Self::record_attempt)) under a lease that has not run out is
    /// cancelled too, but keeps the outcome [`SEND_IN_FLIGHT`], its claim and its lease's end:
    /// the message may already be with Telegram, so the worker's result still lands (see
    /// [`update_job`](Self::update_job)), and a message that went out counts as sent
    /// (frequency caps, reports). A send in flight under a lease that has run out (its worker
    /// stopped) is cancelled as any other job, and so is one whose worker never reported by the
    /// end of its lease, when this is called again or when a worker's
    /// [`close_abandoned_sends`](Self::close_abandoned_sends) finds it. No job of the campaign
    /// is sent after this returns: a worker's [`record_attempt`](Self::record_attempt) on a
    /// cancelled job fails.
    ///
    /// # Errors
    /// A store error.
    async fn cancel_campaign_jobs(&self, campaign: &CampaignId, now: Timestamp) -> Result<u64>;
    /// Closes the sends in flight that [`cancel_campaign_jobs`](Self::cancel_campaign_jobs)
    /// left to their workers and whose lease has run out by `now` with no result (their
    /// worker stopped): each becomes a cancelled job with the outcome [`CAMPAIGN_ABORTED`],
    /// as a later `cancel_campaign_jobs` of its campaign would make it, and an erasure waiting
    /// on it settles. Returns how many. A store may leave such sends until every send in flight
    /// that the same campaign's abort left has run out of lease (the SQL stores do: they keep
    /// one mark a campaign). Workers call it now and then (at most once a lease), so an abort
    /// needs no second call; it finds its work without reading every aborted campaign's
    /// jobs.
    ///
    /// # Errors
    /// A store error; nothing is closed then.
    async fn close_abandoned_sends(&self, now: Timestamp) -> Result<u64>;
}

/// Events, deduplicated per contact: an event whose contact has an event with its id already
/// is a repeat (a delivery retried, a fact recorded twice) and is not stored again. Ids need
/// only be unique per contact; the same id on two contacts is two events.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Appends the events whose `(contact, id)` is new (the first of repeats within `events`);
    /// returns how many were new.
    ///
    /// # Errors
    /// A store error; nothing is written then.
    async fn append_events(&self, events: &[Event]) -> Result<u64>;
    /// A campaign's events, by time, then id, then contact.
    ///
    /// # Errors
    /// A store error.
    async fn campaign_events(&self, campaign: &CampaignId) -> Result<Vec<Event>>;
    /// A contact's events, by time then id.
    ///
    /// # Errors
    /// A store error.
    async fn contact_events(&self, contact: &ContactId) -> Result<Vec<Event>>;
    /// A page of a campaign's events in the order of [`campaign_events`](Self::campaign_events)
    /// (time, then id, then contact): those that come after `after` (from the first when
    /// `None`), at most `limit` of them (`limit` is at least 1), or every one left. A caller
    /// walks a large campaign's events a page at a time, passing the last event it got; a page
    /// of any length but `limit` is the last. The default reads
    /// [`campaign_events`](Self::campaign_events) and answers every event after `after` at
    /// once.
    ///
    /// # Errors
    /// A store error.
    async fn campaign_events_page(
        &self,
        campaign: &CampaignId,
        after: Option<&Event>,
        limit: usize,
    ) -> Result<Vec<Event>> {
        let _ = limit;
        let mut events = self.campaign_events(campaign).await?;
        if let Some(after) = after {
            events.retain(|e| (e.at, &e.id, &e.contact) > (after.at, &after.id, &after.contact));
        }
        Ok(events)
    }
    /// A campaign's events of one kind (its [`EventKind::name`](crate::EventKind::name)), in
    /// the order of [`campaign_events`](Self::campaign_events): its conversions or its
    /// opt-outs, without reading the rest. The default filters `campaign_events`.
    ///
    /// # Errors
    /// A store error.
    async fn campaign_events_of(&self, campaign: &CampaignId, kind: &str) -> Result<Vec<Event>> {
        let mut events = self.campaign_events(campaign).await?;
        events.retain(|e| e.kind.name() == kind);
        Ok(events)
    }
    /// A campaign's events grouped by variant and kind ([`EventGroup`]), in no particular
    /// order: what a report needs (distinct contacts, revenue), without loading each event
    /// (the SQL stores count in the database, which still reads the campaign's rows). The
    /// default groups [`campaign_events`](Self::campaign_events).
    ///
    /// # Errors
    /// A store error; [`Error::InvalidInput`] when a group's conversion values add up to more
    /// than an `i64` holds.
    async fn event_groups(&self, campaign: &CampaignId) -> Result<Vec<EventGroup>> {
        group_events(&self.campaign_events(campaign).await?)
    }
}

/// A change to a campaign that [`ReviewStore::decide_review`] makes to the campaign as stored,
/// in the transaction that saves a decision.
pub type CampaignChange<'a> = dyn for<'c> Fn(&'c mut Campaign) -> Result<()> + Send + Sync + 'a;

/// The human review queue.
#[async_trait]
pub trait ReviewStore: Send + Sync {
    /// Queues items. An item whose id is queued already replaces it while that one waits
    /// (queueing the same item again after a crash is harmless), and leaves it alone once it is
    /// decided: queueing never reopens a decision.
    ///
    /// # Errors
    /// A store error; nothing is written then.
    async fn insert_reviews(&self, items: &[ReviewItem]) -> Result<()>;
    /// Saves a decided item and the campaign it changed, in one transaction, if the stored
    /// item is still pending: of two decisions on one item, the first stands. A decided send
    /// ([`ReviewSubject::Send`]) releases its job in the same transaction, if the job is still
    /// held: approved, it is pending again and due at the item's `resolved_at`; rejected, it is
    /// skipped with the outcome `rejected_by_reviewer` (as
    /// [`OutboxStore::release_held`] would leave it). A crash can therefore never leave a
    /// decision without its job, or a released job without its decision.
    ///
    /// `campaign` replaces the stored campaign whatever changed it meanwhile; the default is
    /// [`decide_review`](Self::decide_review) with that replacement, which a decision should
    /// use instead to change only what it decides.
    ///
    /// # Errors
    /// [`Error::NotFound`] if no item or no campaign has the id; [`Error::InvalidInput`] if the
    /// stored item was decided already, or `item` is not decided or has no `resolved_at`, or
    /// `campaign` is not the item's; a store error. Nothing is written then.
    async fn resolve_review(&self, item: &ReviewItem, campaign: &Campaign) -> Result<()> {
        self.decide_review(item, &|stored| {
            *stored = campaign.clone();
            Ok(())
        })
        .await
        .map(drop)
    }
    /// [`resolve_review`](Self::resolve_review) with the campaign as `change` makes it of the
    /// campaign as stored when the decision is written: the campaign is read and changed in the
    /// same transaction, so two decisions on one campaign's items (two reviewers, a reviewer and
    /// an expiry) or a decision and an abort never undo each other's change. An error from
    /// `change` writes nothing. Returns the campaign as saved.
    ///
    /// # Errors
    /// As [`resolve_review`](Self::resolve_review); [`Error::NotFound`] if the campaign does
    /// not exist; `change`'s error.
    async fn decide_review(
        &self,
        item: &ReviewItem,
        change: &CampaignChange<'_>,
    ) -> Result<Campaign>;
    /// One item.
    ///
    /// # Errors
    /// A store error.
    async fn review(&self, id: &ReviewId) -> Result<Option<ReviewItem>>;
    /// Items still waiting, oldest first.
    ///
    /// # Errors
    /// A store error.
    async fn pending_reviews(&self) -> Result<Vec<ReviewItem>>;
}

/// The tamper-evident audit log. The store keeps rows and one chain; the chain link is
/// [`AuditDraft::seal`], and Merkle checkpoints and verification are in
/// `mia_safety::compliance`. Entries and checkpoints are never changed or deleted.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends `drafts` at the end of the log, in order: in one transaction that excludes every
    /// other append (of this process and of others sharing the database), it reads the last
    /// entry, seals each draft with the next sequence number and the previous hash, and
    /// inserts them. Returns the entries as stored.
    ///
    /// # Errors
    /// A store error; nothing is appended then.
    async fn append_audit(&self, drafts: Vec<AuditDraft>) -> Result<Vec<AuditEntry>>;
    /// Up to `limit` entries with a sequence number above `after`, in order.
    ///
    /// # Errors
    /// A store error.
    async fn audit_entries(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>>;
    /// Every entry about the subject with this pseudonym, in order.
    ///
    /// # Errors
    /// A store error.
    async fn audit_entries_for(&self, subject: &str) -> Result<Vec<AuditEntry>>;
    /// Keeps a signed checkpoint.
    ///
    /// # Errors
    /// A store error.
    async fn append_checkpoint(&self, checkpoint: &AuditCheckpoint) -> Result<()>;
    /// Every checkpoint, oldest first.
    ///
    /// # Errors
    /// A store error.
    async fn audit_checkpoints(&self) -> Result<Vec<AuditCheckpoint>>;
    /// The store's own key for subject pseudonyms: the one kept, or `candidate`, kept now if
    /// there is none yet (one atomic step, so every worker ends up with the same key).
    ///
    /// # Errors
    /// A store error.
    async fn audit_key(&self, candidate: &SubjectKey) -> Result<SubjectKey>;
}

/// What data subject requests need beyond the other stores: the requests themselves, a
/// contact's jobs, and erasure.
#[async_trait]
pub trait SubjectStore: Send + Sync {
    /// Inserts a request or replaces the one with its id.
    ///
    /// # Errors
    /// A store error.
    async fn save_request(&self, request: &SubjectRequest) -> Result<()>;
    /// One request.
    ///
    /// # Errors
    /// A store error.
    async fn subject_request(&self, id: &str) -> Result<Option<SubjectRequest>>;
    /// Every request, oldest first.
    ///
    /// # Errors
    /// A store error.
    async fn subject_requests(&self) -> Result<Vec<SubjectRequest>>;
    /// Every outbox job of `contact`, across campaigns, ordered by key.
    ///
    /// # Errors
    /// A store error.
    async fn contact_jobs(&self, contact: &ContactId) -> Result<Vec<Job>>;
    /// Erases `contact` in one transaction: deletes the contact; cancels their open jobs
    /// (pending, claimed, held) with outcome `"erased"`, as a restriction does, so a worker
    /// that read the contact before the erasure loses its lease before sending (a send already
    /// in flight is left to its worker: the events its worker records for it under the erased
    /// id move to `replacement` when the job leaves `claimed`, in the same transaction as its
    /// result, whichever worker writes that result, and the events of a cancelled job's results
    /// move when its worker finds the claim lost, see [`OutboxStore::update_jobs`]); in consent
    /// records, jobs and
    /// events replaces the contact id with `replacement` (an id that says nothing about the
    /// person), so totals and aggregates keep their counts (the cancelled jobs move from open to
    /// cancelled; and one more case: if `replacement`
    /// has an event with the id of one of the contact's already, erased from another contact
    /// under the same replacement, that one is deleted and the contact's takes its place, as
    /// [`EventStore`] keeps one event per contact and id); blanks the evidence reference of
    /// their consent records; clears the contact of their subject requests. The audit log holds
    /// no personal data and is left alone. Erasing a contact that is gone changes nothing.
    ///
    /// # Errors
    /// A store error; nothing is changed then.
    async fn erase_subject(
        &self,
        contact: &ContactId,
        replacement: &ContactId,
    ) -> Result<ErasureCounts>;
    /// Restriction of processing (GDPR art. 18): appends `marker` to the consent ledger (the
    /// record that starts the restriction) and, in the same transaction, cancels every open job
    /// (pending, claimed, held) of the marker's contact, whatever its purpose, with outcome
    /// `"restricted"`: a worker that claimed one of them loses its lease before sending, as
    /// after a withdrawal, while a send already in flight is left to its worker, as by
    /// [`ConsentStore::withdraw_consent`]. Returns how many jobs were cancelled.
    ///
    /// # Errors
    /// A store error; nothing is written then.
    async fn restrict_subject(&self, marker: &ConsentRecord) -> Result<u64>;
    /// Retention: deletes events that happened before `before`. Returns how many.
    ///
    /// # Errors
    /// A store error; nothing is deleted then.
    async fn purge_events(&self, before: Timestamp) -> Result<u64>;
    /// Retention: deletes the final jobs (sent, skipped, dead letter, cancelled) of completed
    /// or aborted campaigns that last changed before `before`. Returns how many.
    ///
    /// # Errors
    /// A store error; nothing is deleted then.
    async fn purge_jobs(&self, before: Timestamp) -> Result<u64>;
}

/// A backend that stores everything mia keeps.
pub trait Store:
    ContactStore
    + ConsentStore
    + CampaignStore
    + OutboxStore
    + EventStore
    + ReviewStore
    + AuditStore
    + SubjectStore
{
}

impl<T> Store for T where
    T: ContactStore
        + ConsentStore
        + CampaignStore
        + OutboxStore
        + EventStore
        + ReviewStore
        + AuditStore
        + SubjectStore
{
}

macro_rules! forward_store {
    ($($wrapper:ident),*) => {$(
        #[async_trait]
        impl<S: ContactStore + ?Sized> ContactStore for $wrapper<S> {
            async fn upsert_contacts(&self, contacts: &[Contact]) -> Result<()> { (**self).upsert_contacts(contacts).await }
            async fn contact(&self, id: &ContactId) -> Result<Option<Contact>> { (**self).contact(id).await }
            async fn contact_by_peer(&self, peer: &TelegramPeer) -> Result<Option<Contact>> { (**self).contact_by_peer(peer).await }
            async fn contacts(&self) -> Result<Vec<Contact>> { (**self).contacts().await }
            async fn contacts_by_id(&self, ids: &[ContactId]) -> Result<Vec<Contact>> { (**self).contacts_by_id(ids).await }
        }
        #[async_trait]
        impl<S: ConsentStore + ?Sized> ConsentStore for $wrapper<S> {
            async fn append_consent(&self, records: &[ConsentRecord]) -> Result<()> { (**self).append_consent(records).await }
            async fn consent_history(&self, contact: &ContactId) -> Result<Vec<ConsentRecord>> { (**self).consent_history(contact).await }
            async fn consent_histories(&self, contacts: &[ContactId]) -> Result<Vec<ConsentRecord>> { (**self).consent_histories(contacts).await }
            async fn consents_for_purpose(&self, purpose: &Purpose) -> Result<Vec<ConsentRecord>> { (**self).consents_for_purpose(purpose).await }
            async fn withdraw_consent(&self, record: &ConsentRecord) -> Result<u64> { (**self).withdraw_consent(record).await }
        }
        #[async_trait]
        impl<S: CampaignStore + ?Sized> CampaignStore for $wrapper<S> {
            async fn insert_campaign(&self, campaign: &Campaign) -> Result<()> { (**self).insert_campaign(campaign).await }
            async fn update_campaign(&self, campaign: &Campaign) -> Result<()> { (**self).update_campaign(campaign).await }
            async fn campaign(&self, id: &CampaignId) -> Result<Option<Campaign>> { (**self).campaign(id).await }
            async fn campaign_state(&self, id: &CampaignId) -> Result<Option<CampaignState>> { (**self).campaign_state(id).await }
            async fn campaigns(&self) -> Result<Vec<Campaign>> { (**self).campaigns().await }
            async fn campaigns_in(&self, state: CampaignState) -> Result<Vec<Campaign>> { (**self).campaigns_in(state).await }
        }
        #[async_trait]
        impl<S: OutboxStore + ?Sized> OutboxStore for $wrapper<S> {
            async fn schedule(&self, campaign: &Campaign, jobs: &[NewJob]) -> Result<u64> { (**self).schedule(campaign, jobs).await }
            async fn claim(&self, worker: &str, now: Timestamp, lease: SignedDuration, limit: usize) -> Result<Vec<Job>> { (**self).claim(worker, now, lease, limit).await }
            async fn enqueue(&self, campaign: &CampaignId, jobs: &[NewJob], now: Timestamp) -> Result<u64> { (**self).enqueue(campaign, jobs, now).await }
            async fn record_attempt(&self, key: &IdempotencyKey, claim_token: u64, variant: &VariantId, propensity: f64, now: Timestamp) -> Result<()> { (**self).record_attempt(key, claim_token, variant, propensity, now).await }
            async fn update_job(&self, key: &IdempotencyKey, claim_token: u64, update: &JobUpdate, now: Timestamp) -> Result<()> { (**self).update_job(key, claim_token, update, now).await }
            async fn update_jobs(&self, updates: &[(&Job, JobUpdate)], now: Timestamp) -> Result<Vec<IdempotencyKey>> { (**self).update_jobs(updates, now).await }
            async fn release_held(&self, key: &IdempotencyKey, approve: bool, now: Timestamp) -> Result<()> { (**self).release_held(key, approve, now).await }
            async fn settle_dead_letter(&self, key: &IdempotencyKey, action: DeadLetterAction, now: Timestamp) -> Result<()> { (**self).settle_dead_letter(key, action, now).await }
            async fn job(&self, key: &IdempotencyKey) -> Result<Option<Job>> { (**self).job(key).await }
            async fn jobs(&self, campaign: &CampaignId) -> Result<Vec<Job>> { (**self).jobs(campaign).await }
            async fn job_counts(&self, campaign: &CampaignId) -> Result<JobCounts> { (**self).job_counts(campaign).await }
            async fn job_by_message(&self, contact: &ContactId, message_id: i64) -> Result<Option<Job>> { (**self).job_by_message(contact, message_id).await }
            async fn sends_since(&self, contact: &ContactId, since: Timestamp) -> Result<Vec<Timestamp>> { (**self).sends_since(contact, since).await }
            async fn sends_since_by_contact(&self, contacts: &[ContactId], since: Timestamp) -> Result<Vec<(ContactId, Timestamp)>> { (**self).sends_since_by_contact(contacts, since).await }
            async fn take_daily(&self, key: &str, day: &str, cap: u32) -> Result<bool> { (**self).take_daily(key, day, cap).await }
            async fn next_due(&self) -> Result<Option<Timestamp>> { (**self).next_due().await }
            async fn cancel_campaign_jobs(&self, campaign: &CampaignId, now: Timestamp) -> Result<u64> { (**self).cancel_campaign_jobs(campaign, now).await }
            async fn close_abandoned_sends(&self, now: Timestamp) -> Result<u64> { (**self).close_abandoned_sends(now).await }
            async fn job_groups(&self, campaign: &CampaignId) -> Result<Vec<JobGroup>> { (**self).job_groups(campaign).await }
            async fn jobs_page(&self, campaign: &CampaignId, after: Option<&IdempotencyKey>, limit: usize) -> Result<Vec<Job>> { (**self).jobs_page(campaign, after, limit).await }
            async fn existing_keys(&self, keys: &[IdempotencyKey]) -> Result<Vec<IdempotencyKey>> { (**self).existing_keys(keys).await }
            async fn jobs_in(&self, campaign: &CampaignId, state: JobState) -> Result<Vec<Job>> { (**self).jobs_in(campaign, state).await }
        }
        #[async_trait]
        impl<S: EventStore + ?Sized> EventStore for $wrapper<S> {
            async fn append_events(&self, events: &[Event]) -> Result<u64> { (**self).append_events(events).await }
            async fn campaign_events(&self, campaign: &CampaignId) -> Result<Vec<Event>> { (**self).campaign_events(campaign).await }
            async fn campaign_events_of(&self, campaign: &CampaignId, kind: &str) -> Result<Vec<Event>> { (**self).campaign_events_of(campaign, kind).await }
            async fn event_groups(&self, campaign: &CampaignId) -> Result<Vec<EventGroup>> { (**self).event_groups(campaign).await }
            async fn campaign_events_page(&self, campaign: &CampaignId, after: Option<&Event>, limit: usize) -> Result<Vec<Event>> { (**self).campaign_events_page(campaign, after, limit).await }
            async fn contact_events(&self, contact: &ContactId) -> Result<Vec<Event>> { (**self).contact_events(contact).await }
        }
        #[async_trait]
        impl<S: ReviewStore + ?Sized> ReviewStore for $wrapper<S> {
            async fn insert_reviews(&self, items: &[ReviewItem]) -> Result<()> { (**self).insert_reviews(items).await }
            async fn resolve_review(&self, item: &ReviewItem, campaign: &Campaign) -> Result<()> { (**self).resolve_review(item, campaign).await }
            async fn decide_review(&self, item: &ReviewItem, change: &CampaignChange<'_>) -> Result<Campaign> { (**self).decide_review(item, change).await }
            async fn review(&self, id: &ReviewId) -> Result<Option<ReviewItem>> { (**self).review(id).await }
            async fn pending_reviews(&self) -> Result<Vec<ReviewItem>> { (**self).pending_reviews().await }
        }
        #[async_trait]
        impl<S: AuditStore + ?Sized> AuditStore for $wrapper<S> {
            async fn append_audit(&self, drafts: Vec<AuditDraft>) -> Result<Vec<AuditEntry>> { (**self).append_audit(drafts).await }
            async fn audit_entries(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>> { (**self).audit_entries(after, limit).await }
            async fn audit_entries_for(&self, subject: &str) -> Result<Vec<AuditEntry>> { (**self).audit_entries_for(subject).await }
            async fn append_checkpoint(&self, checkpoint: &AuditCheckpoint) -> Result<()> { (**self).append_checkpoint(checkpoint).await }
            async fn audit_checkpoints(&self) -> Result<Vec<AuditCheckpoint>> { (**self).audit_checkpoints().await }
            async fn audit_key(&self, candidate: &SubjectKey) -> Result<SubjectKey> { (**self).audit_key(candidate).await }
        }
        #[async_trait]
        impl<S: SubjectStore + ?Sized> SubjectStore for $wrapper<S> {
            async fn save_request(&self, request: &SubjectRequest) -> Result<()> { (**self).save_request(request).await }
            async fn subject_request(&self, id: &str) -> Result<Option<SubjectRequest>> { (**self).subject_request(id).await }
            async fn subject_requests(&self) -> Result<Vec<SubjectRequest>> { (**self).subject_requests().await }
            async fn contact_jobs(&self, contact: &ContactId) -> Result<Vec<Job>> { (**self).contact_jobs(contact).await }
            async fn erase_subject(&self, contact: &ContactId, replacement: &ContactId) -> Result<ErasureCounts> { (**self).erase_subject(contact, replacement).await }
            async fn restrict_subject(&self, marker: &ConsentRecord) -> Result<u64> { (**self).restrict_subject(marker).await }
            async fn purge_events(&self, before: Timestamp) -> Result<u64> { (**self).purge_events(before).await }
            async fn purge_jobs(&self, before: Timestamp) -> Result<u64> { (**self).purge_jobs(before).await }
        }
    )*};
}

forward_store!(Arc, Box);

#[cfg(test)]
mod tests {
    use super::*;

    /// The default page answers the jobs after a key in byte order, whatever order `jobs()`
    /// gave them in (a store may sort by a locale's collation).
    #[test]
    fn the_default_page_is_in_key_order_after_the_key() {
        let job = |key: &str| Job {
            key: IdempotencyKey::new(key),
            campaign: CampaignId::new("k"),
            contact: ContactId::new("c"),
            purpose: Purpose::marketing(),
            step: 0,
            state: JobState::Pending,
            due_at: Timestamp::UNIX_EPOCH,
            attempts: 0,
            claim_token: 0,
            lease_until: None,
            worker: None,
            variant: None,
            propensity: None,
            message_id: None,
            outcome: None,
            updated_at: Timestamp::UNIX_EPOCH,
        };
        let unsorted = || ["b", "é", "", "B", "a"].map(job).to_vec();
        let keys = |jobs: Vec<Job>| {
            jobs.into_iter()
                .map(|j| j.key.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(jobs_after(unsorted(), None)), ["", "B", "a", "b", "é"]);
        let after = IdempotencyKey::new("a");
        assert_eq!(keys(jobs_after(unsorted(), Some(&after))), ["b", "é"]);
        let last = IdempotencyKey::new("é");
        assert!(jobs_after(unsorted(), Some(&last)).is_empty());
    }
}
