//! An in-memory [`Store`](crate::Store): fast, complete, and gone when the process ends.
//! For tests, benches and short dry-runs; it passes the same conformance suite as SQLite.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};

use crate::audit::{AuditCheckpoint, AuditDraft, AuditEntry, AuditHash, SubjectKey};
use crate::campaign::{Campaign, CampaignState};
use crate::consent::{ConsentRecord, Purpose};
use crate::contact::{Contact, TelegramPeer};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::ids::{CampaignId, ContactId, EventId, IdempotencyKey, ReviewId, VariantId};
use crate::privacy::{ErasureCounts, SubjectRequest};
use crate::store::{
    AuditStore, CampaignChange, CampaignStore, ConsentStore, ContactStore, DeadLetterAction,
    EventStore, Job, JobCounts, JobState, JobUpdate, NewJob, OutboxStore, ReviewItem, ReviewState,
    ReviewStore, ReviewSubject, SubjectStore,
};

#[derive(Default)]
struct Inner {
    contacts: BTreeMap<ContactId, Contact>,
    peers: HashMap<TelegramPeer, ContactId>,
    consents: Vec<ConsentRecord>,
    /// Positions in `consents` by contact, in insertion order.
    consents_by_contact: HashMap<ContactId, Vec<usize>>,
    campaigns: BTreeMap<CampaignId, Campaign>,
    campaign_order: Vec<CampaignId>,
    jobs: BTreeMap<IdempotencyKey, Job>,
    jobs_by_contact: HashMap<ContactId, Vec<IdempotencyKey>>,
    events: Vec<Event>,
    /// The `(contact, id)` of every stored event (events are deduplicated per contact).
    event_ids: HashSet<(ContactId, EventId)>,
    reviews: BTreeMap<ReviewId, ReviewItem>,
    review_order: Vec<ReviewId>,
    audit: Vec<AuditEntry>,
    checkpoints: Vec<AuditCheckpoint>,
    audit_key: Option<SubjectKey>,
    daily: HashMap<(String, String), u32>,
    requests: BTreeMap<String, SubjectRequest>,
    request_order: Vec<String>,
    /// Jobs whose send was in flight when their contact was erased, with the erased id: the
    /// events their worker records under it move to the replacement when the job leaves
    /// `claimed` (see [`settle_erasure`]).
    erased_in_flight: HashMap<IdempotencyKey, ContactId>,
}

/// Moves the events of `from` about `campaign` to `to`; an event `to` has already with one of
/// their ids gives way, as in an erasure.
fn move_job_events(inner: &mut Inner, from: &ContactId, to: &ContactId, campaign: &CampaignId) {
    if from == to {
        return;
    }
    let Inner {
        events, event_ids, ..
    } = inner;
    let of_job = |e: &Event| &e.contact == from && e.campaign.as_ref() == Some(campaign);
    let moved: HashSet<EventId> = events
        .iter()
        .filter(|e| of_job(e))
        .map(|e| e.id.clone())
        .collect();
    if moved.is_empty() {
        return;
    }
    events.retain(|e| !(&e.contact == to && moved.contains(&e.id)));
    for event in events.iter_mut().filter(|e| of_job(e)) {
        event_ids.remove(&(from.clone(), event.id.clone()));
        event_ids.insert((to.clone(), event.id.clone()));
        event.contact = to.clone();
    }
}

/// After the job `key` left `claimed`: if its send was in flight when its contact was erased,
/// the events its worker recorded under the erased id move to the job's contact.
fn settle_erasure(inner: &mut Inner, key: &IdempotencyKey) {
    let Some(erased) = inner.erased_in_flight.remove(key) else {
        return;
    };
    if let Some(job) = inner.jobs.get(key) {
        let (to, campaign) = (job.contact.clone(), job.campaign.clone());
        move_job_events(inner, &erased, &to, &campaign);
    }
}

/// Everything in one mutex-guarded map set. Each method is one critical section, which makes
/// the multi-record operations atomic.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Edits the stored audit rows directly, as someone with access to the database could:
    /// for tests that check `mia_safety::compliance` detects tampering.
    #[cfg(feature = "testing")]
    pub fn tamper_with_audit_log(
        &self,
        edit: impl FnOnce(&mut Vec<AuditEntry>, &mut Vec<AuditCheckpoint>),
    ) {
        let mut inner = self.lock();
        let Inner {
            audit, checkpoints, ..
        } = &mut *inner;
        edit(audit, checkpoints);
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the maps consistent (every method validates
        // before it mutates), so a poisoned lock is still safe to use.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether the worker holding claim `token` may write its result to `job`: the job is claimed
/// with that token, or cancelled by an abort while that claim's send was in flight.
fn held_by(job: &Job, token: u64) -> Result<()> {
    if (job.state == JobState::Claimed || job.send_in_flight()) && job.claim_token == token {
        Ok(())
    } else {
        Err(Error::LeaseLost(job.key.to_string()))
    }
}

/// Releases a held job: approved, pending and due at `now`; rejected, skipped.
fn release(job: &mut Job, approve: bool, now: Timestamp) {
    if approve {
        job.state = JobState::Pending;
        job.due_at = now;
    } else {
        job.state = JobState::Skipped;
        job.outcome = Some(crate::REJECTED_BY_REVIEWER_RULE.into());
    }
    job.updated_at = now;
}

/// Writes what a worker did with a job it holds (see [`held_by`]). On a job an abort
/// cancelled, only a send counts; any other result leaves it cancelled.
fn apply_update(job: &mut Job, update: &JobUpdate, now: Timestamp) {
    job.lease_until = None;
    job.updated_at = now;
    if job.state == JobState::Cancelled && !matches!(update, JobUpdate::Sent { .. }) {
        job.outcome = Some(crate::CAMPAIGN_ABORTED.into());
        return;
    }
    match update {
        JobUpdate::Sent { message_id } => {
            job.state = JobState::Sent;
            job.message_id = Some(*message_id);
            job.outcome = None;
        }
        JobUpdate::Skipped { rule } => {
            job.state = JobState::Skipped;
            job.outcome = Some(rule.clone());
        }
        JobUpdate::Retry {
            due_at,
            count_attempt,
            reason,
        } => {
            job.state = JobState::Pending;
            job.due_at = *due_at;
            job.attempts += u32::from(*count_attempt);
            job.outcome = Some(reason.clone());
        }
        JobUpdate::Held { rule } => {
            job.state = JobState::Held;
            job.outcome = Some(rule.clone());
        }
        JobUpdate::DeadLetter { reason } => {
            job.state = JobState::DeadLetter;
            job.outcome = Some(reason.clone());
        }
    }
}

#[async_trait]
impl ContactStore for MemoryStore {
    async fn upsert_contacts(&self, contacts: &[Contact]) -> Result<()> {
        let mut inner = self.lock();
        // Validate the whole batch first: a peer belongs to one contact.
        let mut batch: HashMap<TelegramPeer, &ContactId> = HashMap::new();
        for c in contacts {
            let owner = batch
                .insert(c.peer, &c.id)
                .or_else(|| inner.peers.get(&c.peer));
            if let Some(owner) = owner.filter(|o| **o != c.id) {
                return Err(Error::invalid(format!(
                    "Telegram peer {} belongs to contact {owner}, not {}",
                    c.peer.id, c.id
                )));
            }
        }
        for c in contacts {
            if let Some(old) = inner.contacts.insert(c.id.clone(), c.clone()) {
                inner.peers.remove(&old.peer);
            }
            inner.peers.insert(c.peer, c.id.clone());
        }
        Ok(())
    }

    async fn contact(&self, id: &ContactId) -> Result<Option<Contact>> {
        Ok(self.lock().contacts.get(id).cloned())
    }

    async fn contact_by_peer(&self, peer: &TelegramPeer) -> Result<Option<Contact>> {
        let inner = self.lock();
        Ok(inner
            .peers
            .get(peer)
            .and_then(|id| inner.contacts.get(id))
            .cloned())
    }

    async fn contacts(&self) -> Result<Vec<Contact>> {
        Ok(self.lock().contacts.values().cloned().collect())
    }
}

/// Appends a consent record and indexes it under its contact.
fn push_consent(inner: &mut Inner, record: ConsentRecord) {
    inner
        .consents_by_contact
        .entry(record.contact.clone())
        .or_default()
        .push(inner.consents.len());
    inner.consents.push(record);
}

#[async_trait]
impl ConsentStore for MemoryStore {
    async fn append_consent(&self, records: &[ConsentRecord]) -> Result<()> {
        let mut inner = self.lock();
        for record in records {
            push_consent(&mut inner, record.clone());
        }
        Ok(())
    }

    async fn consent_history(&self, contact: &ContactId) -> Result<Vec<ConsentRecord>> {
        let inner = self.lock();
        Ok(inner
            .consents_by_contact
            .get(contact)
            .map(|at| at.iter().map(|&i| inner.consents[i].clone()).collect())
            .unwrap_or_default())
    }

    async fn consents_for_purpose(&self, purpose: &Purpose) -> Result<Vec<ConsentRecord>> {
        Ok(self
            .lock()
            .consents
            .iter()
            .filter(|r| &r.purpose == purpose)
            .cloned()
            .collect())
    }

    async fn withdraw_consent(&self, record: &ConsentRecord) -> Result<u64> {
        let mut inner = self.lock();
        push_consent(&mut inner, record.clone());
        let mut cancelled = 0;
        let keys = inner
            .jobs_by_contact
            .get(&record.contact)
            .cloned()
            .unwrap_or_default();
        for key in &keys {
            let Some(job) = inner.jobs.get_mut(key) else {
                continue;
            };
            if job.purpose == record.purpose && !job.state.is_final() && !job.send_in_flight() {
                job.state = JobState::Cancelled;
                job.outcome = Some("withdrawn".into());
                job.lease_until = None;
                job.updated_at = record.recorded_at;
                cancelled += 1;
            }
        }
        Ok(cancelled)
    }
}

#[async_trait]
impl CampaignStore for MemoryStore {
    async fn insert_campaign(&self, campaign: &Campaign) -> Result<()> {
        let mut inner = self.lock();
        if inner.campaigns.contains_key(&campaign.id) {
            return Err(Error::invalid(format!(
                "campaign {} already exists",
                campaign.id
            )));
        }
        inner
            .campaigns
            .insert(campaign.id.clone(), campaign.clone());
        inner.campaign_order.push(campaign.id.clone());
        Ok(())
    }

    async fn update_campaign(&self, campaign: &Campaign) -> Result<()> {
        let mut inner = self.lock();
        match inner.campaigns.get_mut(&campaign.id) {
            Some(slot) => {
                *slot = campaign.clone();
                Ok(())
            }
            None => Err(Error::not_found("campaign", &campaign.id)),
        }
    }

    async fn campaign(&self, id: &CampaignId) -> Result<Option<Campaign>> {
        Ok(self.lock().campaigns.get(id).cloned())
    }

    async fn campaigns(&self) -> Result<Vec<Campaign>> {
        let inner = self.lock();
        Ok(inner
            .campaign_order
            .iter()
            .filter_map(|id| inner.campaigns.get(id).cloned())
            .collect())
    }
}

fn contact_jobs<'a>(inner: &'a Inner, contact: &ContactId) -> impl Iterator<Item = &'a Job> {
    inner
        .jobs_by_contact
        .get(contact)
        .into_iter()
        .flatten()
        .filter_map(|key| inner.jobs.get(key))
}

/// Inserts the jobs whose keys are new; returns how many.
fn insert_jobs(inner: &mut Inner, campaign: &CampaignId, jobs: &[NewJob], now: Timestamp) -> u64 {
    let mut inserted = 0;
    for new in jobs {
        if inner.jobs.contains_key(&new.key) {
            continue;
        }
        let (state, outcome) = match &new.skipped {
            Some(reason) => (JobState::Skipped, Some(reason.clone())),
            None => (JobState::Pending, None),
        };
        inner
            .jobs_by_contact
            .entry(new.contact.clone())
            .or_default()
            .push(new.key.clone());
        inner.jobs.insert(
            new.key.clone(),
            Job {
                key: new.key.clone(),
                campaign: campaign.clone(),
                contact: new.contact.clone(),
                purpose: new.purpose.clone(),
                step: new.step,
                state,
                due_at: new.due_at,
                attempts: 0,
                claim_token: 0,
                lease_until: None,
                worker: None,
                variant: None,
                propensity: None,
                message_id: None,
                outcome,
                updated_at: now,
            },
        );
        inserted += 1;
    }
    inserted
}

fn running(inner: &Inner, campaign: &CampaignId) -> bool {
    inner
        .campaigns
        .get(campaign)
        .is_some_and(|c| c.state == CampaignState::Running)
}

#[async_trait]
impl OutboxStore for MemoryStore {
    async fn schedule(&self, campaign: &Campaign, jobs: &[NewJob]) -> Result<u64> {
        let mut inner = self.lock();
        if !inner.campaigns.contains_key(&campaign.id) {
            return Err(Error::not_found("campaign", &campaign.id));
        }
        inner
            .campaigns
            .insert(campaign.id.clone(), campaign.clone());
        Ok(insert_jobs(
            &mut inner,
            &campaign.id,
            jobs,
            campaign.updated_at,
        ))
    }

    async fn enqueue(&self, campaign: &CampaignId, jobs: &[NewJob], now: Timestamp) -> Result<u64> {
        let mut inner = self.lock();
        if !inner.campaigns.contains_key(campaign) {
            return Err(Error::not_found("campaign", campaign));
        }
        Ok(insert_jobs(&mut inner, campaign, jobs, now))
    }

    async fn claim(
        &self,
        worker: &str,
        now: Timestamp,
        lease: SignedDuration,
        limit: usize,
    ) -> Result<Vec<Job>> {
        let mut inner = self.lock();
        let mut due: Vec<(Timestamp, IdempotencyKey)> = inner
            .jobs
            .values()
            .filter(|j| running(&inner, &j.campaign))
            .filter_map(|j| match j.state {
                JobState::Pending if j.due_at <= now => Some((j.due_at, j.key.clone())),
                JobState::Claimed if j.lease_until.is_some_and(|l| l <= now) => {
                    Some((j.due_at, j.key.clone()))
                }
                _ => None,
            })
            .collect();
        due.sort();
        due.truncate(limit);
        let lease_until = now
            .checked_add(lease)
            .map_err(|e| Error::invalid(e.to_string()))?;
        let mut claimed = Vec::with_capacity(due.len());
        for (_, key) in due {
            if let Some(job) = inner.jobs.get_mut(&key) {
                job.state = JobState::Claimed;
                job.claim_token += 1;
                job.lease_until = Some(lease_until);
                job.worker = Some(worker.to_owned());
                job.updated_at = now;
                claimed.push(job.clone());
            }
        }
        Ok(claimed)
    }

    async fn record_attempt(
        &self,
        key: &IdempotencyKey,
        claim_token: u64,
        variant: &VariantId,
        propensity: f64,
        now: Timestamp,
    ) -> Result<()> {
        let mut inner = self.lock();
        let Inner {
            jobs, campaigns, ..
        } = &mut *inner;
        let job = jobs
            .get_mut(key)
            .ok_or_else(|| Error::not_found("job", key))?;
        // Only a claimed job is sent (a cancelled one whose send is in flight is not sent
        // again).
        if job.state != JobState::Claimed {
            return Err(Error::LeaseLost(key.to_string()));
        }
        held_by(job, claim_token)?;
        let state = campaigns.get(&job.campaign).map(|c| c.state);
        if state != Some(crate::CampaignState::Running) {
            return Err(match state {
                Some(state) => Error::CampaignNotRunning {
                    campaign: job.campaign.to_string(),
                    state,
                },
                None => Error::not_found("campaign", &job.campaign),
            });
        }
        if job.variant.is_none() {
            job.variant = Some(variant.clone());
            job.propensity = Some(propensity);
        }
        job.outcome = Some(crate::store::SEND_IN_FLIGHT.to_owned());
        job.updated_at = now;
        Ok(())
    }

    async fn update_job(
        &self,
        key: &IdempotencyKey,
        claim_token: u64,
        update: &JobUpdate,
        now: Timestamp,
    ) -> Result<()> {
        let mut inner = self.lock();
        let job = inner
            .jobs
            .get_mut(key)
            .ok_or_else(|| Error::not_found("job", key))?;
        held_by(job, claim_token)?;
        apply_update(job, update, now);
        settle_erasure(&mut inner, key);
        Ok(())
    }

    async fn update_jobs(
        &self,
        updates: &[(&Job, JobUpdate)],
        now: Timestamp,
    ) -> Result<Vec<IdempotencyKey>> {
        let mut seen = HashSet::with_capacity(updates.len());
        if let Some((job, _)) = updates.iter().find(|(job, _)| !seen.insert(&job.key)) {
            return Err(Error::invalid(format!(
                "job {} appears twice in one batch of updates",
                job.key
            )));
        }
        let mut inner = self.lock();
        let mut lost = Vec::new();
        for (claimed, update) in updates {
            match inner
                .jobs
                .get_mut(&claimed.key)
                .filter(|job| job.campaign == claimed.campaign)
                .filter(|job| held_by(job, claimed.claim_token).is_ok())
            {
                Some(job) => {
                    apply_update(job, update, now);
                    settle_erasure(&mut inner, &claimed.key);
                }
                None => {
                    lost.push(claimed.key.clone());
                    // Its contact erased since the claim: the events of its results, recorded
                    // under the erased id, go to the replacement.
                    if let Some(to) = inner.jobs.get(&claimed.key).map(|j| j.contact.clone()) {
                        move_job_events(&mut inner, &claimed.contact, &to, &claimed.campaign);
                    }
                }
            }
        }
        Ok(lost)
    }

    async fn release_held(
        &self,
        key: &IdempotencyKey,
        approve: bool,
        now: Timestamp,
    ) -> Result<()> {
        let mut inner = self.lock();
        let job = inner
            .jobs
            .get_mut(key)
            .filter(|j| j.state == JobState::Held)
            .ok_or_else(|| Error::not_found("held job", key))?;
        release(job, approve, now);
        Ok(())
    }

    async fn settle_dead_letter(
        &self,
        key: &IdempotencyKey,
        action: DeadLetterAction,
        now: Timestamp,
    ) -> Result<()> {
        let mut inner = self.lock();
        let job = inner
            .jobs
            .get_mut(key)
            .filter(|j| j.state == JobState::DeadLetter)
            .ok_or_else(|| Error::not_found("dead letter", key))?;
        match action {
            DeadLetterAction::Requeue { due_at } => {
                job.state = JobState::Pending;
                job.due_at = due_at;
                job.attempts = 0;
            }
            DeadLetterAction::Discard => {
                job.state = JobState::Cancelled;
                let reason = job.outcome.take().unwrap_or_default();
                job.outcome = Some(format!("discarded: {reason}"));
            }
        }
        job.updated_at = now;
        Ok(())
    }

    async fn job(&self, key: &IdempotencyKey) -> Result<Option<Job>> {
        Ok(self.lock().jobs.get(key).cloned())
    }

    async fn jobs(&self, campaign: &CampaignId) -> Result<Vec<Job>> {
        Ok(self
            .lock()
            .jobs
            .values()
            .filter(|j| &j.campaign == campaign)
            .cloned()
            .collect())
    }

    async fn jobs_page(
        &self,
        campaign: &CampaignId,
        after: Option<&IdempotencyKey>,
        limit: usize,
    ) -> Result<Vec<Job>> {
        use std::ops::Bound;
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(self
            .lock()
            .jobs
            .range::<IdempotencyKey, _>((start, Bound::Unbounded))
            .map(|(_, job)| job)
            .filter(|j| &j.campaign == campaign)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn existing_keys(&self, keys: &[IdempotencyKey]) -> Result<Vec<IdempotencyKey>> {
        let inner = self.lock();
        let mut found: Vec<IdempotencyKey> = keys
            .iter()
            .filter(|key| inner.jobs.contains_key(*key))
            .cloned()
            .collect();
        found.sort_unstable();
        found.dedup();
        Ok(found)
    }

    async fn job_counts(&self, campaign: &CampaignId) -> Result<JobCounts> {
        let mut counts = JobCounts::default();
        for job in self
            .lock()
            .jobs
            .values()
            .filter(|j| &j.campaign == campaign)
        {
            counts.add(job.state, 1);
        }
        Ok(counts)
    }

    async fn job_by_message(&self, contact: &ContactId, message_id: i64) -> Result<Option<Job>> {
        let inner = self.lock();
        Ok(contact_jobs(&inner, contact)
            .find(|j| j.message_id == Some(message_id))
            .cloned())
    }

    async fn sends_since(&self, contact: &ContactId, since: Timestamp) -> Result<Vec<Timestamp>> {
        let inner = self.lock();
        let mut sends: Vec<Timestamp> = contact_jobs(&inner, contact)
            .filter(|j| j.state == JobState::Sent && j.updated_at >= since)
            .map(|j| j.updated_at)
            .collect();
        sends.sort_by(|a, b| b.cmp(a));
        Ok(sends)
    }

    async fn take_daily(&self, key: &str, day: &str, cap: u32) -> Result<bool> {
        let mut inner = self.lock();
        let used = inner
            .daily
            .entry((key.to_owned(), day.to_owned()))
            .or_default();
        if *used >= cap {
            return Ok(false);
        }
        *used += 1;
        Ok(true)
    }

    async fn next_due(&self) -> Result<Option<Timestamp>> {
        let inner = self.lock();
        Ok(inner
            .jobs
            .values()
            .filter(|j| running(&inner, &j.campaign))
            .filter_map(|j| match j.state {
                JobState::Pending => Some(j.due_at),
                JobState::Claimed => j.lease_until,
                _ => None,
            })
            .min())
    }

    async fn cancel_campaign_jobs(&self, campaign: &CampaignId, now: Timestamp) -> Result<u64> {
        let mut inner = self.lock();
        let mut flying = 0;
        for job in inner.jobs.values_mut() {
            let live = job.lease_until.is_some_and(|l| l > now);
            if &job.campaign == campaign
                && job.send_in_flight()
                && job.state == JobState::Claimed
                && live
            {
                // Its worker's result is still to come (see the trait), and with it the
                // events of an erased contact.
                job.state = JobState::Cancelled;
                job.updated_at = now;
                flying += 1;
            }
        }
        let cancelled = close_aborted(&mut inner, now, |job| {
            let live = job.lease_until.is_some_and(|l| l > now);
            &job.campaign == campaign && (!job.state.is_final() || (job.send_in_flight() && !live))
        });
        Ok(cancelled + flying)
    }

    async fn close_abandoned_sends(&self, now: Timestamp) -> Result<u64> {
        let mut inner = self.lock();
        Ok(close_aborted(&mut inner, now, |job| {
            job.state == JobState::Cancelled
                && job.send_in_flight()
                && job.lease_until.is_some_and(|l| l <= now)
        }))
    }
}

/// Closes the jobs `which` picks as cancelled by an abort
/// ([`CAMPAIGN_ABORTED`](crate::CAMPAIGN_ABORTED)), settling an erasure that waited on any of
/// them; returns how many.
fn close_aborted(inner: &mut Inner, now: Timestamp, which: impl Fn(&Job) -> bool) -> u64 {
    let mut closed = Vec::new();
    for job in inner.jobs.values_mut().filter(|j| which(j)) {
        job.state = JobState::Cancelled;
        job.outcome = Some(crate::CAMPAIGN_ABORTED.into());
        job.lease_until = None;
        job.updated_at = now;
        closed.push(job.key.clone());
    }
    for key in &closed {
        settle_erasure(inner, key);
    }
    closed.len() as u64
}

fn by_time(events: &mut [Event]) {
    events.sort_by(|a, b| (a.at, &a.id, &a.contact).cmp(&(b.at, &b.id, &b.contact)));
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn append_events(&self, events: &[Event]) -> Result<u64> {
        let mut inner = self.lock();
        let mut new = 0;
        for e in events {
            if inner.event_ids.insert((e.contact.clone(), e.id.clone())) {
                inner.events.push(e.clone());
                new += 1;
            }
        }
        Ok(new)
    }

    async fn campaign_events(&self, campaign: &CampaignId) -> Result<Vec<Event>> {
        let mut out: Vec<Event> = self
            .lock()
            .events
            .iter()
            .filter(|e| e.campaign.as_ref() == Some(campaign))
            .cloned()
            .collect();
        by_time(&mut out);
        Ok(out)
    }

    async fn campaign_events_page(
        &self,
        campaign: &CampaignId,
        after: Option<&Event>,
        limit: usize,
    ) -> Result<Vec<Event>> {
        fn key(e: &Event) -> (Timestamp, &str, &str) {
            (e.at, e.id.as_str(), e.contact.as_str())
        }
        let mut out: Vec<Event> = self
            .lock()
            .events
            .iter()
            .filter(|e| e.campaign.as_ref() == Some(campaign))
            .filter(|e| after.is_none_or(|after| key(e) > key(after)))
            .cloned()
            .collect();
        by_time(&mut out);
        out.truncate(limit);
        Ok(out)
    }

    async fn contact_events(&self, contact: &ContactId) -> Result<Vec<Event>> {
        let mut out: Vec<Event> = self
            .lock()
            .events
            .iter()
            .filter(|e| &e.contact == contact)
            .cloned()
            .collect();
        by_time(&mut out);
        Ok(out)
    }
}

#[async_trait]
impl ReviewStore for MemoryStore {
    async fn insert_reviews(&self, items: &[ReviewItem]) -> Result<()> {
        let mut inner = self.lock();
        for item in items {
            match inner.reviews.get(&item.id) {
                // Decided: queueing never reopens it.
                Some(queued) if queued.state != ReviewState::Pending => {}
                Some(_) => {
                    inner.reviews.insert(item.id.clone(), item.clone());
                }
                None => {
                    inner.reviews.insert(item.id.clone(), item.clone());
                    inner.review_order.push(item.id.clone());
                }
            }
        }
        Ok(())
    }

    async fn decide_review(
        &self,
        item: &ReviewItem,
        change: &CampaignChange<'_>,
    ) -> Result<Campaign> {
        let at = item.decided_at()?;
        let mut inner = self.lock();
        match inner.reviews.get(&item.id) {
            None => return Err(Error::not_found("review", &item.id)),
            Some(stored) if stored.state != ReviewState::Pending => {
                return Err(Error::invalid(format!(
                    "review {} was already decided",
                    item.id
                )));
            }
            Some(_) => {}
        }
        let mut campaign = inner
            .campaigns
            .get(&item.campaign)
            .cloned()
            .ok_or_else(|| Error::not_found("campaign", &item.campaign))?;
        item.change_campaign(&mut campaign, change)?;
        if let ReviewSubject::Send { job } = &item.subject
            && let Some(job) = inner
                .jobs
                .get_mut(job)
                .filter(|j| j.state == JobState::Held)
        {
            release(job, item.is_approved(), at);
        }
        inner.reviews.insert(item.id.clone(), item.clone());
        inner
            .campaigns
            .insert(campaign.id.clone(), campaign.clone());
        Ok(campaign)
    }

    async fn review(&self, id: &ReviewId) -> Result<Option<ReviewItem>> {
        Ok(self.lock().reviews.get(id).cloned())
    }

    async fn pending_reviews(&self) -> Result<Vec<ReviewItem>> {
        let inner = self.lock();
        Ok(inner
            .review_order
            .iter()
            .filter_map(|id| inner.reviews.get(id))
            .filter(|r| r.state == ReviewState::Pending)
            .cloned()
            .collect())
    }
}

#[async_trait]
impl AuditStore for MemoryStore {
    async fn append_audit(&self, drafts: Vec<AuditDraft>) -> Result<Vec<AuditEntry>> {
        let mut inner = self.lock();
        let (mut seq, mut prev) = inner
            .audit
            .last()
            .map_or((0, AuditHash::ZERO), |e| (e.seq, e.hash));
        let mut sealed = Vec::with_capacity(drafts.len());
        for draft in drafts {
            seq += 1;
            let entry = draft.seal(seq, prev);
            prev = entry.hash;
            sealed.push(entry);
        }
        inner.audit.extend(sealed.iter().cloned());
        Ok(sealed)
    }

    async fn audit_entries(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>> {
        let inner = self.lock();
        // Entries are kept in order; a tampered vector is read as it is, in vector order.
        Ok(inner
            .audit
            .iter()
            .filter(|e| e.seq > after)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn audit_entries_for(&self, subject: &str) -> Result<Vec<AuditEntry>> {
        Ok(self
            .lock()
            .audit
            .iter()
            .filter(|e| e.subject.as_deref() == Some(subject))
            .cloned()
            .collect())
    }

    async fn append_checkpoint(&self, checkpoint: &AuditCheckpoint) -> Result<()> {
        self.lock().checkpoints.push(checkpoint.clone());
        Ok(())
    }

    async fn audit_checkpoints(&self) -> Result<Vec<AuditCheckpoint>> {
        Ok(self.lock().checkpoints.clone())
    }

    async fn audit_key(&self, candidate: &SubjectKey) -> Result<SubjectKey> {
        Ok(self
            .lock()
            .audit_key
            .get_or_insert_with(|| candidate.clone())
            .clone())
    }
}

#[async_trait]
impl SubjectStore for MemoryStore {
    async fn save_request(&self, request: &SubjectRequest) -> Result<()> {
        let mut inner = self.lock();
        if inner
            .requests
            .insert(request.id.clone(), request.clone())
            .is_none()
        {
            inner.request_order.push(request.id.clone());
        }
        Ok(())
    }

    async fn subject_request(&self, id: &str) -> Result<Option<SubjectRequest>> {
        Ok(self.lock().requests.get(id).cloned())
    }

    async fn subject_requests(&self) -> Result<Vec<SubjectRequest>> {
        let inner = self.lock();
        Ok(inner
            .request_order
            .iter()
            .filter_map(|id| inner.requests.get(id).cloned())
            .collect())
    }

    async fn contact_jobs(&self, contact: &ContactId) -> Result<Vec<Job>> {
        let inner = self.lock();
        let mut jobs: Vec<Job> = contact_jobs(&inner, contact).cloned().collect();
        jobs.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(jobs)
    }

    async fn restrict_subject(&self, marker: &ConsentRecord) -> Result<u64> {
        let mut inner = self.lock();
        push_consent(&mut inner, marker.clone());
        let keys = inner
            .jobs_by_contact
            .get(&marker.contact)
            .cloned()
            .unwrap_or_default();
        let mut cancelled = 0;
        for key in &keys {
            let Some(job) = inner.jobs.get_mut(key) else {
                continue;
            };
            if !job.state.is_final() && !job.send_in_flight() {
                job.state = JobState::Cancelled;
                job.outcome = Some("restricted".into());
                job.lease_until = None;
                job.updated_at = marker.recorded_at;
                cancelled += 1;
            }
        }
        Ok(cancelled)
    }

    async fn erase_subject(
        &self,
        contact: &ContactId,
        replacement: &ContactId,
    ) -> Result<ErasureCounts> {
        let mut inner = self.lock();
        let mut counts = ErasureCounts::default();
        if let Some(old) = inner.contacts.remove(contact) {
            inner.peers.remove(&old.peer);
            counts.contacts = 1;
        }
        let positions = inner
            .consents_by_contact
            .remove(contact)
            .unwrap_or_default();
        for &i in &positions {
            let record = &mut inner.consents[i];
            record.contact = replacement.clone();
            record.evidence.reference = String::new();
            counts.consents += 1;
        }
        if !positions.is_empty() {
            let mut moved = inner
                .consents_by_contact
                .remove(replacement)
                .unwrap_or_default();
            moved.extend(positions);
            moved.sort_unstable();
            inner.consents_by_contact.insert(replacement.clone(), moved);
        }
        let keys = inner.jobs_by_contact.remove(contact).unwrap_or_default();
        for key in &keys {
            let Inner {
                jobs,
                erased_in_flight,
                ..
            } = &mut *inner;
            if let Some(job) = jobs.get_mut(key) {
                job.contact = replacement.clone();
                counts.jobs += 1;
                // Nobody is sent to once erased (a send already in flight is left to its
                // worker, as in a restriction).
                if !job.state.is_final() && !job.send_in_flight() {
                    job.state = JobState::Cancelled;
                    job.outcome = Some("erased".into());
                    job.lease_until = None;
                    counts.cancelled += 1;
                } else if job.send_in_flight() && replacement != contact {
                    erased_in_flight.insert(key.clone(), contact.clone());
                }
            }
        }
        if !keys.is_empty() {
            inner
                .jobs_by_contact
                .entry(replacement.clone())
                .or_default()
                .extend(keys);
        }
        // An event the replacement has already (the same id, erased from another contact under
        // the same replacement) gives way to this contact's, which takes its place.
        let Inner {
            events, event_ids, ..
        } = &mut *inner;
        let moved: HashSet<EventId> = events
            .iter()
            .filter(|e| &e.contact == contact)
            .map(|e| e.id.clone())
            .collect();
        if replacement != contact {
            events.retain(|e| !(&e.contact == replacement && moved.contains(&e.id)));
        }
        for event in events.iter_mut().filter(|e| &e.contact == contact) {
            event_ids.remove(&(contact.clone(), event.id.clone()));
            event_ids.insert((replacement.clone(), event.id.clone()));
            event.contact = replacement.clone();
            counts.events += 1;
        }
        for request in inner.requests.values_mut() {
            if request.contact.as_ref() == Some(contact) {
                request.contact = None;
                counts.requests += 1;
            }
        }
        Ok(counts)
    }

    async fn purge_events(&self, before: Timestamp) -> Result<u64> {
        let mut inner = self.lock();
        let Inner {
            events, event_ids, ..
        } = &mut *inner;
        let len = events.len();
        events.retain(|e| {
            let keep = e.at >= before;
            if !keep {
                event_ids.remove(&(e.contact.clone(), e.id.clone()));
            }
            keep
        });
        Ok((len - events.len()) as u64)
    }

    async fn purge_jobs(&self, before: Timestamp) -> Result<u64> {
        let mut inner = self.lock();
        let closed: HashSet<CampaignId> = inner
            .campaigns
            .values()
            .filter(|c| matches!(c.state, CampaignState::Completed | CampaignState::Aborted))
            .map(|c| c.id.clone())
            .collect();
        let gone: Vec<(IdempotencyKey, ContactId)> = inner
            .jobs
            .values()
            .filter(|j| j.state.is_final() && j.updated_at < before && closed.contains(&j.campaign))
            .map(|j| (j.key.clone(), j.contact.clone()))
            .collect();
        for (key, contact) in &gone {
            inner.jobs.remove(key);
            if let Some(keys) = inner.jobs_by_contact.get_mut(contact) {
                keys.retain(|k| k != key);
            }
        }
        Ok(gone.len() as u64)
    }
}
