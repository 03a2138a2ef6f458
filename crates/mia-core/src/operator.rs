//! [`Operator`]: what a person (or the `mia campaign` command) does to campaigns that workers
//! are sending — status, pause, resume, abort, dead letters. It needs only the store and a
//! clock, no LLM and no transport.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::audit::{AuditTrail, StoreAuditTrail};
use crate::campaign::{Campaign, CampaignState};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::ids::{CampaignId, IdempotencyKey};
use crate::store::{DeadLetterAction, Job, JobCounts, JobState, Store};

/// A snapshot of one campaign, cheap enough to poll.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CampaignStatus {
    /// The campaign.
    pub campaign: CampaignId,
    /// Its state.
    pub state: CampaignState,
    /// Why it is paused or aborted.
    pub state_reason: Option<String>,
    /// Jobs by state.
    pub jobs: JobCounts,
    /// Share of jobs that are final, 0..=1.
    pub progress: f64,
    /// Pending jobs that have had an attempt counted (after a failed or rate-limited send).
    pub retrying: u64,
    /// Dead letters by reason.
    pub dead_letters: BTreeMap<String, u64>,
    /// Open jobs that are waiting for a reason (quiet hours, flood wait...), by that reason.
    pub waiting: BTreeMap<String, u64>,
    /// A journey's decided waits (its `wait_for` timers and their decision records, rule
    /// [`DECIDED_BY_EVENT`](crate::DECIDED_BY_EVENT) or
    /// [`DECIDED_BY_TIMEOUT`](crate::DECIDED_BY_TIMEOUT)): bookkeeping, not messages, so not in
    /// `jobs` or `progress`.
    #[serde(default)]
    pub journey_decisions: u64,
    /// The earliest time a pending job becomes due.
    pub next_due: Option<Timestamp>,
    /// A recurring campaign's next occurrence (its jobs are queued when it is due; `jobs` and
    /// `progress` count the occurrences queued so far).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_occurrence: Option<Timestamp>,
    /// How long the open jobs take at the transport's rate, if it states one (a floor: quiet
    /// hours and retries come on top).
    pub eta: Option<Duration>,
}

/// Campaign operations over a store. Cheap to clone.
#[derive(Clone)]
pub struct Operator {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    send_rate: Option<f64>,
    audit: Arc<dyn AuditTrail>,
    actor: String,
}

impl std::fmt::Debug for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operator")
            .field("send_rate", &self.send_rate)
            .finish_non_exhaustive()
    }
}

impl Operator {
    /// Operations on `store`, stamping changes with `clock`. Every state change is recorded in
    /// the store's audit log (see [`with_audit_trail`](Self::with_audit_trail)).
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        let audit = Arc::new(StoreAuditTrail::new(Arc::clone(&store)));
        Self {
            store,
            clock,
            send_rate: None,
            audit,
            actor: "operator".into(),
        }
    }

    /// Records state changes in `trail` instead of the store's own audit log.
    #[must_use]
    pub fn with_audit_trail(mut self, trail: Arc<dyn AuditTrail>) -> Self {
        self.audit = trail;
        self
    }

    /// Who the audit log names as acting (default `"operator"`; the CLI says who ran it).
    #[must_use]
    pub fn with_actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = actor.into();
        self
    }

    /// The messages per second the workers send at, for the ETA in [`status`](Self::status).
    #[must_use]
    pub fn with_send_rate(mut self, per_second: f64) -> Self {
        self.send_rate = Some(per_second).filter(|r| r.is_finite() && *r > 0.0);
        self
    }

    /// A campaign by id.
    ///
    /// # Errors
    /// [`Error::NotFound`] or a store error.
    pub async fn campaign(&self, id: &CampaignId) -> Result<Campaign> {
        self.store
            .campaign(id)
            .await?
            .ok_or_else(|| Error::not_found("campaign", id))
    }

    pub(crate) async fn set_state(
        &self,
        id: &CampaignId,
        to: CampaignState,
        reason: Option<String>,
    ) -> Result<Campaign> {
        let mut campaign = self.campaign(id).await?;
        let from = campaign.state;
        campaign.transition(to, self.clock.now())?;
        campaign.state_reason = reason;
        self.store.update_campaign(&campaign).await?;
        tracing::info!(campaign = %id, state = %to, "mia.campaign state");
        let event =
            crate::agent::campaign_state_event(&self.actor, &campaign, from, serde_json::json!({}));
        self.audit.record(&[event]).await?;
        Ok(campaign)
    }

    /// Lets workers send a scheduled campaign.
    ///
    /// # Errors
    /// [`Error::InvalidTransition`] unless the campaign is scheduled; a store error.
    pub async fn start(&self, id: &CampaignId) -> Result<Campaign> {
        self.set_state(id, CampaignState::Running, None).await
    }

    /// Holds a running campaign: every worker stops within one job.
    ///
    /// # Errors
    /// [`Error::InvalidTransition`] unless the campaign is running; a store error.
    pub async fn pause(&self, id: &CampaignId, reason: impl Into<String>) -> Result<Campaign> {
        self.set_state(id, CampaignState::Paused, Some(reason.into()))
            .await
    }

    /// Resumes a paused campaign.
    ///
    /// # Errors
    /// [`Error::InvalidTransition`] unless the campaign is paused; a store error.
    pub async fn resume(&self, id: &CampaignId) -> Result<Campaign> {
        self.set_state(id, CampaignState::Running, None).await
    }

    /// Stops a campaign for good and cancels its open jobs (see
    /// [`OutboxStore::cancel_campaign_jobs`](crate::OutboxStore::cancel_campaign_jobs)).
    /// Aborting an aborted campaign again only cancels what is left: a send that was in
    /// flight at the first abort and whose worker never reported by the end of its lease (which
    /// workers also close on their own, see
    /// [`OutboxStore::close_abandoned_sends`](crate::OutboxStore::close_abandoned_sends)), or
    /// the jobs of a first abort whose cancellation failed.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown campaign; a store error.
    pub async fn abort(&self, id: &CampaignId, reason: impl Into<String>) -> Result<Campaign> {
        let current = self.campaign(id).await?;
        let campaign = if current.state == CampaignState::Aborted {
            current
        } else {
            self.set_state(id, CampaignState::Aborted, Some(reason.into()))
                .await?
        };
        self.store
            .cancel_campaign_jobs(id, self.clock.now())
            .await?;
        Ok(campaign)
    }

    /// The status of a campaign: job counts, progress, retries, dead letters and an ETA.
    ///
    /// # Errors
    /// [`Error::NotFound`] or a store error.
    pub async fn status(&self, id: &CampaignId) -> Result<CampaignStatus> {
        let campaign = self.campaign(id).await?;
        // Counted in the store: a campaign of millions of jobs is a few groups here.
        let groups = self.store.job_groups(id).await?;
        let mut counts = JobCounts::default();
        let mut dead_letters = BTreeMap::new();
        let mut waiting = BTreeMap::new();
        let mut retrying = 0;
        let mut next_due: Option<Timestamp> = None;
        let mut journey_decisions = 0;
        for group in groups {
            let decided_wait = group.state == JobState::Skipped
                && matches!(
                    group.outcome.as_deref(),
                    Some(crate::DECIDED_BY_EVENT | crate::DECIDED_BY_TIMEOUT)
                );
            if decided_wait {
                journey_decisions += group.jobs;
                continue;
            }
            counts.add(group.state, group.jobs);
            let reason = || group.outcome.clone().unwrap_or_else(|| "unknown".into());
            match group.state {
                JobState::DeadLetter => {
                    *dead_letters.entry(reason()).or_default() += group.jobs;
                }
                JobState::Pending => {
                    if group.retried {
                        retrying += group.jobs;
                    }
                    if group.outcome.is_some() {
                        *waiting.entry(reason()).or_default() += group.jobs;
                    }
                    next_due =
                        Some(next_due.map_or(group.earliest_due, |d| d.min(group.earliest_due)));
                }
                _ => {}
            }
        }
        let total = counts.total();
        let progress = if total == 0 {
            1.0
        } else {
            (total - counts.open()) as f64 / total as f64
        };
        let next_occurrence = campaign
            .spec
            .recurrence
            .as_ref()
            .filter(|_| {
                !matches!(
                    campaign.state,
                    CampaignState::Completed | CampaignState::Aborted
                )
            })
            .and_then(|r| r.next_after(self.clock.now()))
            .map(|(_, at)| at);
        // No ETA past what a `Duration` holds (a rate of a message a century, say).
        let eta = self
            .send_rate
            .and_then(|rate| Duration::try_from_secs_f64(counts.open() as f64 / rate).ok());
        Ok(CampaignStatus {
            campaign: id.clone(),
            state: campaign.state,
            state_reason: campaign.state_reason,
            jobs: counts,
            progress,
            retrying,
            dead_letters,
            waiting,
            journey_decisions,
            next_due,
            next_occurrence,
            eta,
        })
    }

    /// Dead letters of a campaign, for an operator to inspect.
    ///
    /// # Errors
    /// A store error.
    pub async fn dead_letters(&self, id: &CampaignId) -> Result<Vec<Job>> {
        self.store.jobs_in(id, JobState::DeadLetter).await
    }

    /// Puts a dead letter back in the queue, due now, with its attempts reset. It passes the
    /// send policy again (consent included) when a worker picks it up.
    ///
    /// # Errors
    /// [`Error::NotFound`] if the job is not a dead letter;
    /// [`Error::InvalidInput`] if its campaign was aborted. A completed campaign reopens
    /// (`completed -> running`) so that workers pick the job up, and completes again after it.
    pub async fn requeue_dead_letter(&self, key: &IdempotencyKey) -> Result<()> {
        let job = self
            .store
            .job(key)
            .await?
            .ok_or_else(|| Error::not_found("dead letter", key))?;
        let campaign = self.campaign(&job.campaign).await?;
        if campaign.state.is_terminal() {
            return Err(Error::invalid(format!(
                "campaign {} is {}; a dead letter of an aborted campaign cannot be requeued",
                campaign.id, campaign.state
            )));
        }
        if job.state != JobState::DeadLetter {
            return Err(Error::not_found("dead letter", key));
        }
        if campaign.state == CampaignState::Completed {
            // Reopen first: a crash right after leaves a running campaign that simply
            // completes again, never a queued job in a campaign no worker looks at.
            self.set_state(
                &campaign.id,
                CampaignState::Running,
                Some("reopened to retry a dead letter".into()),
            )
            .await?;
        }
        let now = self.clock.now();
        self.store
            .settle_dead_letter(key, DeadLetterAction::Requeue { due_at: now }, now)
            .await
    }

    /// Gives up on a dead letter for good.
    ///
    /// # Errors
    /// [`Error::NotFound`] if the job is not a dead letter.
    pub async fn discard_dead_letter(&self, key: &IdempotencyKey) -> Result<()> {
        let now = self.clock.now();
        self.store
            .settle_dead_letter(key, DeadLetterAction::Discard, now)
            .await
    }
}
