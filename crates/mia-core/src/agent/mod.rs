//! The [`Agent`]: the orchestrator that takes a campaign from spec to copy to guard to outbox to
//! transport to events.

mod assist;
mod audit;
mod broadcast;
pub use broadcast::{ChatPost, Posted};
mod builder;
pub(crate) mod generate;
mod health;
pub use health::AccountHealth;
mod inbound;
mod journey;
mod recurring;
pub use inbound::is_stop_request;
pub use journey::{DECIDED_BY_EVENT, DECIDED_BY_TIMEOUT};
mod reply;
mod snapshot;
pub use reply::Reply;
mod worker;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use rand::RngExt;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use tracing::Instrument;

pub(crate) use audit::campaign_state as campaign_state_event;
pub use builder::AgentBuilder;
pub use worker::{OUTCOME_UNKNOWN, RunStats};

use crate::allocator::Allocator;
use crate::campaign::{Audience, Campaign, CampaignState};
use crate::clock::Clock;
use crate::consent::{ConsentRecord, ConsentStatus, Evidence, consent_state};
use crate::contact::Contact;
use crate::error::{Error, Result};
use crate::events::EventSink;
use crate::ids::{CampaignId, ContactId, IdempotencyKey};
use crate::llm::LlmProvider;
use crate::operator::{CampaignStatus, Operator};
use crate::policy::{ContentPolicy, SendPolicies};
use crate::store::{NewJob, Store};
use crate::transport::Transport;

/// The `mia.campaign` span of `action` (`create`, `schedule`, `start`, `pause`, `resume`,
/// `abort`, `complete`) on campaign `id`.
pub(crate) fn campaign_span(id: &CampaignId, action: &'static str) -> tracing::Span {
    tracing::info_span!(
        "mia.campaign",
        campaign = %id,
        action,
        variants = tracing::field::Empty,
    )
}

/// Retries of transient transport failures: exponential backoff with jitter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Attempts before a job goes to the dead letter queue (counting rate-limit waits).
    pub max_attempts: u32,
    /// The first delay.
    pub base_delay: Duration,
    /// The longest delay.
    pub max_delay: Duration,
    /// Up to this fraction of each delay is taken off at random (0..=1), so workers that failed
    /// together do not retry together.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(600),
            jitter: 0.25,
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `attempt` (0-based), given a uniform draw `u` in [0, 1).
    pub fn delay(&self, attempt: u32, u: f64) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(30));
        let full = self.base_delay.saturating_mul(factor).min(self.max_delay);
        full.mul_f64(1.0 - self.jitter * u.clamp(0.0, 1.0))
    }
}

#[derive(Clone, Debug)]
pub(crate) struct AgentConfig {
    pub(crate) worker_id: String,
    pub(crate) lease: Duration,
    pub(crate) claim_batch: usize,
    pub(crate) retry: RetryPolicy,
    pub(crate) notice_version: String,
    pub(crate) stop_confirmation: String,
    /// The zone of a contact created from Telegram (who wrote first): unknown.
    pub(crate) default_time_zone: String,
    /// The zones an unknown zone is read as, all at once (see
    /// [`AgentBuilder::zones_when_unknown`]).
    pub(crate) zones_when_unknown: Vec<jiff::tz::TimeZone>,
    pub(crate) block_rate: f64,
    pub(crate) block_min: u64,
    pub(crate) block_window: jiff::SignedDuration,
    pub(crate) review_deadline: Duration,
    /// Whether spans may carry contact ids (off: see [`crate::metrics`]).
    pub(crate) trace_personal_data: bool,
    /// The sending account's daily cap, if any.
    pub(crate) daily_cap: Option<DailyCap>,
    /// How long after a campaign message a reply that quotes nothing is still taken as an
    /// answer to it (zero: only quoting replies are attributed).
    pub(crate) reply_window: jiff::SignedDuration,
}

/// The rule name of a send deferred by the daily cap.
pub const DAILY_CAP_RULE: &str = "daily_cap";

/// The rule name of an escalated send a reviewer approved: the rule that allows it, in the
/// audit log's record of the send decision.
pub const APPROVED_BY_REVIEWER_RULE: &str = "approved_by_reviewer";

/// The rule name (and the job's outcome) of an escalated send a reviewer rejected.
pub const REJECTED_BY_REVIEWER_RULE: &str = "rejected_by_reviewer";

/// At most `max` campaign sends a day from the sending account, days counted on `time_zone`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DailyCap {
    pub(crate) max: u32,
    pub(crate) time_zone: String,
    tz: jiff::tz::TimeZone,
}

impl DailyCap {
    pub(crate) fn new(max: u32, time_zone: &str) -> Result<Self> {
        if max == 0 {
            return Err(Error::Config("daily_cap must allow at least 1 send".into()));
        }
        let tz = jiff::tz::TimeZone::get(time_zone).map_err(|e| {
            Error::Config(format!("daily_cap: unknown time zone {time_zone:?}: {e}"))
        })?;
        Ok(Self {
            max,
            time_zone: time_zone.to_owned(),
            tz,
        })
    }

    /// The local date of `now`, `YYYY-MM-DD`.
    pub(crate) fn day_of(&self, now: Timestamp) -> String {
        self.tz.to_datetime(now).date().to_string()
    }

    /// The start of the local day after the one holding `now`.
    pub(crate) fn next_day(&self, now: Timestamp) -> Timestamp {
        let date = self.tz.to_datetime(now).date();
        date.tomorrow()
            .and_then(|d| {
                self.tz
                    .to_ambiguous_timestamp(d.to_datetime(jiff::civil::Time::midnight()))
                    .compatible()
            })
            // Only past the end of jiff's calendar: a day later is close enough.
            .unwrap_or_else(|_| now + jiff::SignedDuration::from_hours(24))
    }
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            worker_id: "worker-1".into(),
            lease: Duration::from_secs(60),
            claim_batch: 64,
            retry: RetryPolicy::default(),
            notice_version: "1".into(),
            stop_confirmation: "You are unsubscribed and will get no more messages from us. \
                                Send /start to subscribe again."
                .into(),
            default_time_zone: crate::contact::UNKNOWN_TIME_ZONE.into(),
            zones_when_unknown: vec![jiff::tz::TimeZone::UTC],
            block_rate: 0.05,
            block_min: 10,
            block_window: jiff::SignedDuration::from_hours(24),
            review_deadline: Duration::from_secs(72 * 3600),
            trace_personal_data: false,
            daily_cap: None,
            reply_window: jiff::SignedDuration::from_hours(72),
        }
    }
}

pub(crate) struct Inner {
    pub(crate) llm: Arc<dyn LlmProvider>,
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) content: Arc<dyn ContentPolicy>,
    pub(crate) sends: SendPolicies,
    pub(crate) allocator: Arc<dyn Allocator>,
    pub(crate) sink: Arc<dyn EventSink>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: AgentConfig,
    pub(crate) rng: Mutex<StdRng>,
    /// Recent blocks of the sending account.
    pub(crate) blocks: health::BlockWatch,
    /// Send slots, shared with other workers when the limiter is.
    pub(crate) limiter: Option<Arc<dyn crate::RateLimiter>>,
    /// Where every decision is recorded (the store's audit log by default).
    pub(crate) audit: Arc<dyn crate::AuditTrail>,
    /// Examines inbound text: its opt-out intent makes a STOP (see
    /// [`AgentBuilder::inbound_screen`]).
    pub(crate) screen: Option<Arc<dyn crate::assist::InboundScreen>>,
    /// The reply assistant and the screen its input passes, when the host turned it on.
    pub(crate) assistant: Option<(
        crate::assist::ReplyAssistant,
        Arc<dyn crate::assist::InboundScreen>,
    )>,
    /// Whether this agent repaired the running journeys a crash may have left behind.
    pub(crate) journeys_repaired: std::sync::atomic::AtomicBool,
    /// The latest occurrence of each recurring campaign this agent queued (queuing again is
    /// harmless, this only saves the work).
    pub(crate) occurrences_queued: Mutex<std::collections::HashMap<CampaignId, u32>>,
    /// When this agent next looks for sends in flight that an abort left to a worker that
    /// never reported (see `Agent::close_abandoned_sends`); `None` until its first batch.
    pub(crate) abandoned_sweep_at: Mutex<Option<Timestamp>>,
}

/// What scheduling a campaign did with its audience.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleSummary {
    /// Jobs queued for contacts with valid consent.
    pub queued: u64,
    /// Contacts with no consent record for the purpose.
    pub no_consent: u64,
    /// Contacts whose latest record is a withdrawal.
    pub withdrawn: u64,
    /// Contacts whose grant has expired.
    pub expired: u64,
}

/// A consent-first marketing agent. Cheap to clone; clones share everything.
///
/// ```
/// # use mia_core::*;
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<()> {
/// # struct Nowhere;
/// # #[async_trait::async_trait] impl Transport for Nowhere {
/// #   fn name(&self) -> &str { "nowhere" }
/// #   async fn send(&self, _: &OutboundMessage) -> Result<SendOutcome> {
/// #     Ok(SendOutcome::Sent { message_id: 1, duplicate: false }) } }
/// let agent = Agent::builder(TemplateProvider::new(), Nowhere)
///     .permissive_policies() // tests only: use mia_safety's guards in production
///     .build()?;
/// let campaign = agent.create_campaign(CampaignSpec::new("Spring", "green tea", "20% off")).await?;
/// assert_eq!(campaign.state, CampaignState::Approved);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Agent {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("llm", &self.inner.llm.name())
            .field("transport", &self.inner.transport.name())
            .field("worker_id", &self.inner.config.worker_id)
            .finish_non_exhaustive()
    }
}

impl Agent {
    /// Starts building an agent from its two required seams.
    pub fn builder(
        llm: impl LlmProvider + 'static,
        transport: impl Transport + 'static,
    ) -> AgentBuilder {
        AgentBuilder::new(Arc::new(llm), Arc::new(transport))
    }

    /// Like [`builder`](Self::builder), with seams the host already shares.
    pub fn builder_shared(
        llm: Arc<dyn LlmProvider>,
        transport: Arc<dyn Transport>,
    ) -> AgentBuilder {
        AgentBuilder::new(llm, transport)
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// Now, by the agent's clock.
    pub fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    pub(crate) fn random_unit(&self) -> f64 {
        self.inner
            .rng
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .random::<f64>()
    }

    fn random_id(&self, prefix: &str) -> String {
        let n: u64 = self
            .inner
            .rng
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .random();
        format!("{prefix}_{n:016x}")
    }

    /// Adds or replaces contacts. Knowing a contact never allows a message; consent does.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a contact with an empty id or an unknown time zone (nothing is
    /// written then); a store error.
    pub async fn import_contacts(&self, contacts: &[Contact]) -> Result<()> {
        for contact in contacts {
            contact.validate()?;
        }
        self.inner.store.upsert_contacts(contacts).await
    }

    /// Appends consent records. Withdrawals among them go through
    /// [`withdraw_consent`](crate::ConsentStore::withdraw_consent), so they cancel queued jobs at
    /// once.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a grant of a reserved purpose (the restriction markers'
    /// [`RESTRICTION_PURPOSE`](crate::RESTRICTION_PURPOSE)), before anything is written; a store
    /// error.
    pub async fn record_consent(&self, records: &[ConsentRecord]) -> Result<()> {
        if let Some(r) = records.iter().find(|r| {
            r.status != ConsentStatus::Withdrawn && crate::consent::is_reserved_purpose(&r.purpose)
        }) {
            return Err(Error::invalid(format!(
                "purpose {} is reserved for restriction markers and cannot be granted",
                r.purpose
            )));
        }
        let (withdrawals, grants): (Vec<_>, Vec<_>) = records
            .iter()
            .cloned()
            .partition(|r| r.status == ConsentStatus::Withdrawn);
        if !grants.is_empty() {
            self.inner.store.append_consent(&grants).await?;
            let events: Vec<_> = grants
                .iter()
                .map(|g| audit::consent_change("host", g, None))
                .collect();
            self.audit(&events).await?;
        }
        for w in &withdrawals {
            let cancelled = self.inner.store.withdraw_consent(w).await?;
            self.audit(&[audit::consent_change("host", w, Some(cancelled))])
                .await?;
        }
        Ok(())
    }

    /// Withdraws every purpose the contact has granted and cancels their queued jobs, in one
    /// transaction per purpose. Returns how many jobs were cancelled.
    ///
    /// # Errors
    /// A store error.
    pub async fn opt_out(&self, contact: &ContactId, evidence: Evidence) -> Result<u64> {
        let mut events = Vec::new();
        let cancelled = self
            .withdraw_everything(contact, evidence, "host", &mut events)
            .await;
        // What was withdrawn is recorded even when a later purpose failed.
        self.audit(&events).await?;
        cancelled
    }

    /// [`opt_out`](Self::opt_out), with the audit events of each withdrawal pushed to
    /// `events` for the caller to record (with others of its batch).
    pub(crate) async fn withdraw_everything(
        &self,
        contact: &ContactId,
        evidence: Evidence,
        actor: &str,
        events: &mut Vec<crate::AuditEvent>,
    ) -> Result<u64> {
        let now = self.now();
        let history = self.inner.store.consent_history(contact).await?;
        let mut purposes: Vec<_> = history.iter().map(|r| r.purpose.clone()).collect();
        purposes.sort();
        purposes.dedup();
        let mut cancelled = 0;
        for purpose in purposes {
            // The latest record whatever its stamp: a grant stamped by a clock ahead of ours
            // is withdrawn too, and the withdrawal is stamped no earlier than it.
            let latest = crate::current_consent(&history, &purpose, Timestamp::MAX);
            if let Some(grant) = latest.filter(|r| r.status == ConsentStatus::Granted) {
                let at = now.max(grant.recorded_at);
                let record =
                    ConsentRecord::withdraw(contact.clone(), purpose, evidence.clone(), at);
                let n = self.inner.store.withdraw_consent(&record).await?;
                events.push(audit::consent_change(actor, &record, Some(n)));
                cancelled += n;
            }
        }
        Ok(cancelled)
    }

    /// A campaign by id.
    ///
    /// # Errors
    /// [`Error::NotFound`] or a store error.
    pub async fn campaign(&self, id: &CampaignId) -> Result<Campaign> {
        self.inner
            .store
            .campaign(id)
            .await?
            .ok_or_else(|| Error::not_found("campaign", id))
    }

    /// The sending account's health over the block alarm's trailing window (24 h by default),
    /// from what this agent saw: sends, blocks, flood waits, privacy refusals and `PEER_FLOOD`.
    pub fn account_health(&self) -> AccountHealth {
        self.inner.blocks.health(self.now())
    }

    /// Campaign operations (status, pause, resume, abort, dead letters) over this agent's store
    /// and clock, with the transport's rate for ETAs.
    pub fn operator(&self) -> Operator {
        let op = Operator::new(Arc::clone(&self.inner.store), Arc::clone(&self.inner.clock))
            .with_audit_trail(Arc::clone(&self.inner.audit));
        match self.inner.transport.capabilities().messages_per_second {
            Some(rate) => op.with_send_rate(rate),
            None => op,
        }
    }

    /// Queues one job per audience member: a job to send for contacts with valid consent for
    /// the campaign's purpose, and a skipped record (with the reason) for the rest, so every
    /// contact is accounted for. The campaign moves to `scheduled` in the same transaction.
    /// Scheduling is idempotent: a job key that exists is left alone. A campaign with a
    /// [`Journey`](crate::Journey) queues each contact's first step; the rest follow as each
    /// step completes. A recurring campaign ([`Recurrence`](crate::Recurrence)) queues its first
    /// occurrence, at the first matching instant at or after `start_at`, and stores that date;
    /// workers queue the later occurrences as they fall due.
    ///
    /// # Errors
    /// [`Error::InvalidTransition`] unless the campaign is approved; [`Error::InvalidInput`]
    /// when the journey is invalid or names a variant that is not approved; a store error.
    pub async fn schedule(
        &self,
        id: &CampaignId,
        start_at: Option<Timestamp>,
    ) -> Result<ScheduleSummary> {
        self.schedule_inner(id, start_at)
            .instrument(campaign_span(id, "schedule"))
            .await
    }

    async fn schedule_inner(
        &self,
        id: &CampaignId,
        start_at: Option<Timestamp>,
    ) -> Result<ScheduleSummary> {
        let now = self.now();
        let mut campaign = self.campaign(id).await?;
        campaign.transition(CampaignState::Scheduled, now)?;
        let mut start = start_at.unwrap_or(now);
        // A recurring campaign starts at its first occurrence, whose date is stored with it so
        // that every worker numbers the later ones alike.
        if let Some(recurrence) = &campaign.spec.recurrence {
            let anchored = recurrence.anchored(start)?;
            // A `starts` given by the host must not lie in the past: its first occurrence
            // would go out late and the later ones pile up.
            match anchored.occurrences(start).next() {
                Some((_, first)) if first >= start => start = first,
                Some((_, first)) => {
                    return Err(Error::invalid(format!(
                        "recurrence starts with an occurrence at {first}, before the campaign's \
                         start {start}: leave `starts` out, or give a date from the start on"
                    )));
                }
                None => {
                    return Err(Error::invalid(format!(
                        "recurrence has no occurrence at or after {start}"
                    )));
                }
            }
            campaign.spec.recurrence = Some(anchored);
        }
        if let Some(window) = &campaign.spec.send_window
            && window
                .next_open_in_all(start, &self.inner.config.zones_when_unknown)
                .is_none()
        {
            return Err(Error::invalid(format!(
                "send window {window:?} is never open in all of the zones assumed for contacts \
                 whose zone is unknown (AgentBuilder::zones_when_unknown): they would never get \
                 a message; widen the window or narrow the zones"
            )));
        }
        let (summary, jobs) = self.occurrence_jobs(&campaign, 0, start, now).await?;
        self.inner.store.schedule(&campaign, &jobs).await?;
        tracing::info!(campaign = %id, queued = summary.queued, "mia.campaign scheduled");
        let extra = serde_json::json!({ "summary": summary });
        self.audit(&[audit::campaign_state(
            "host",
            &campaign,
            CampaignState::Approved,
            extra,
        )])
        .await?;
        Ok(summary)
    }

    /// One job per audience member for `occurrence` of the campaign (0 for a campaign that
    /// does not recur), due at `start` (or later, after a journey's first waits): a job to send
    /// for contacts with valid consent at `now`, a skipped record with the reason for the rest.
    /// The audience and consent are read afresh for every occurrence.
    pub(crate) async fn occurrence_jobs(
        &self,
        campaign: &Campaign,
        occurrence: u32,
        start: Timestamp,
        now: Timestamp,
    ) -> Result<(ScheduleSummary, Vec<NewJob>)> {
        let purpose = campaign.spec.purpose.clone();
        let audience: Vec<ContactId> = match &campaign.spec.audience {
            Audience::AllContacts => self
                .inner
                .store
                .contacts()
                .await?
                .into_iter()
                .map(|c| c.id)
                .collect(),
            Audience::Contacts(ids) => {
                let mut ids = ids.clone();
                ids.sort();
                ids.dedup();
                ids
            }
        };
        let mut histories: std::collections::HashMap<ContactId, Vec<ConsentRecord>> =
            std::collections::HashMap::new();
        for record in self.inner.store.consents_for_purpose(&purpose).await? {
            histories
                .entry(record.contact.clone())
                .or_default()
                .push(record);
        }
        let mut due_at = start;
        // A journey starts at its first step that needs a job (after any waits before it).
        let mut step = crate::journey::JourneyPosition {
            occurrence,
            ..Default::default()
        }
        .step();
        if let Some(journey) = &campaign.spec.journey {
            journey.validate()?;
            let approved: Vec<_> = campaign.approved_variants().map(|v| v.id.clone()).collect();
            journey.check_variants(&approved)?;
            let first = journey
                .first_of(occurrence, due_at)?
                .ok_or_else(|| Error::invalid("journey ends before its first send"))?;
            step = first.position.step();
            due_at = first.due_at;
        }
        let mut summary = ScheduleSummary::default();
        let mut jobs = Vec::with_capacity(audience.len());
        for contact in audience {
            let history = histories.get(&contact).map(Vec::as_slice).unwrap_or(&[]);
            let state = consent_state(history, &purpose, now);
            let skipped = match state {
                crate::ConsentState::Valid => {
                    summary.queued += 1;
                    None
                }
                crate::ConsentState::Missing => {
                    summary.no_consent += 1;
                    Some(state.reason().to_owned())
                }
                crate::ConsentState::Withdrawn => {
                    summary.withdrawn += 1;
                    Some(state.reason().to_owned())
                }
                crate::ConsentState::Expired => {
                    summary.expired += 1;
                    Some(state.reason().to_owned())
                }
            };
            jobs.push(NewJob {
                key: IdempotencyKey::for_job(&campaign.id, &contact, step),
                contact,
                purpose: purpose.clone(),
                step,
                due_at,
                skipped,
            });
        }
        Ok((summary, jobs))
    }

    /// Lets workers send a scheduled campaign. See [`Operator::start`].
    ///
    /// # Errors
    /// [`Error::InvalidTransition`] unless the campaign is scheduled; a store error.
    pub async fn start(&self, id: &CampaignId) -> Result<Campaign> {
        self.operator()
            .start(id)
            .instrument(campaign_span(id, "start"))
            .await
    }

    /// Holds a running campaign. See [`Operator::pause`].
    ///
    /// # Errors
    /// [`Error::InvalidTransition`] unless the campaign is running; a store error.
    pub async fn pause(&self, id: &CampaignId, reason: impl Into<String>) -> Result<Campaign> {
        self.operator()
            .pause(id, reason)
            .instrument(campaign_span(id, "pause"))
            .await
    }

    /// Resumes a paused campaign. See [`Operator::resume`].
    ///
    /// # Errors
    /// [`Error::InvalidTransition`] unless the campaign is paused; a store error.
    pub async fn resume(&self, id: &CampaignId) -> Result<Campaign> {
        self.operator()
            .resume(id)
            .instrument(campaign_span(id, "resume"))
            .await
    }

    /// Stops a campaign for good and cancels its open jobs; again, cancels what is left. See
    /// [`Operator::abort`].
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown campaign; a store error.
    pub async fn abort(&self, id: &CampaignId, reason: impl Into<String>) -> Result<Campaign> {
        self.operator()
            .abort(id, reason)
            .instrument(campaign_span(id, "abort"))
            .await
    }

    /// The status of a campaign. See [`Operator::status`].
    ///
    /// # Errors
    /// [`Error::NotFound`] or a store error.
    pub async fn status(&self, id: &CampaignId) -> Result<CampaignStatus> {
        self.operator().status(id).await
    }

    /// Dead letters of a campaign. See [`Operator::dead_letters`].
    ///
    /// # Errors
    /// A store error.
    pub async fn dead_letters(&self, id: &CampaignId) -> Result<Vec<crate::Job>> {
        self.operator().dead_letters(id).await
    }

    /// Puts a dead letter back in the queue. See [`Operator::requeue_dead_letter`].
    ///
    /// # Errors
    /// As [`Operator::requeue_dead_letter`].
    pub async fn requeue_dead_letter(&self, key: &IdempotencyKey) -> Result<()> {
        self.operator().requeue_dead_letter(key).await
    }

    /// Gives up on a dead letter. See [`Operator::discard_dead_letter`].
    ///
    /// # Errors
    /// As [`Operator::discard_dead_letter`].
    pub async fn discard_dead_letter(&self, key: &IdempotencyKey) -> Result<()> {
        self.operator().discard_dead_letter(key).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitter_only_shortens() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(0, 0.0), Duration::from_secs(2));
        assert_eq!(p.delay(3, 0.0), Duration::from_secs(16));
        assert_eq!(p.delay(40, 0.0), Duration::from_secs(600));
        assert_eq!(p.delay(0, 1.0), Duration::from_millis(1500));
        assert!(p.delay(2, 0.5) < p.delay(2, 0.0));
    }
}
