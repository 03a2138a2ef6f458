//! Recurring campaigns in the worker: each due occurrence is queued once it is due (see
//! [`Recurrence`](crate::Recurrence)).

use jiff::Timestamp;

use super::{Agent, audit};
use crate::campaign::{Campaign, CampaignState};
use crate::error::Result;
use crate::journey::JourneyPosition;
use crate::store::Job;

impl Agent {
    /// Queues the latest due occurrence of every running recurring campaign that this agent
    /// has not queued yet. Occurrence 0 was queued by scheduling; an occurrence missed while no
    /// worker ran (or the campaign was paused) is skipped, not sent late. Idempotent across
    /// workers: an occurrence's jobs have their own keys, so racing workers insert them once.
    /// Returns how many jobs were new.
    pub(crate) async fn queue_due_occurrences(&self) -> Result<u64> {
        let now = self.now();
        let mut queued = 0;
        for campaign in self
            .inner
            .store
            .campaigns_in(CampaignState::Running)
            .await?
        {
            // One campaign's failure (a store hiccup, a journey that no longer validates) must
            // not stop every other campaign's sends: it is logged and tried again next batch.
            match self.queue_latest_occurrence(&campaign, now).await {
                Ok(new) => queued += new,
                Err(e) => {
                    tracing::warn!(campaign = %campaign.id, error = %e, "mia.campaign occurrence not queued; retried on the next batch");
                }
            }
        }
        Ok(queued)
    }

    /// Queues the latest due occurrence of a running recurring campaign unless this agent did
    /// already. Returns how many jobs were new.
    pub(crate) async fn queue_latest_occurrence(
        &self,
        campaign: &Campaign,
        now: Timestamp,
    ) -> Result<u64> {
        let Some(due) = campaign
            .spec
            .recurrence
            .as_ref()
            .and_then(|r| r.latest_due(now))
        else {
            return Ok(0);
        };
        if due.0 == 0 || self.occurrence_queued(campaign, due.0) {
            return Ok(0);
        }
        self.queue_occurrence(campaign, due, now).await
    }

    fn occurrence_queued(&self, campaign: &Campaign, occurrence: u32) -> bool {
        self.inner
            .occurrences_queued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&campaign.id)
            .is_some_and(|latest| *latest >= occurrence)
    }

    async fn queue_occurrence(
        &self,
        campaign: &Campaign,
        (occurrence, at): (u32, Timestamp),
        now: Timestamp,
    ) -> Result<u64> {
        let (summary, jobs) = self.occurrence_jobs(campaign, occurrence, at, now).await?;
        let new = self.inner.store.enqueue(&campaign.id, &jobs, now).await?;
        // An operator may have aborted the campaign meanwhile: its jobs are cancelled, these
        // too (a paused campaign keeps them for its resume).
        if new > 0
            && self
                .inner
                .store
                .campaign(&campaign.id)
                .await?
                .is_some_and(|c| c.state == CampaignState::Aborted)
        {
            self.inner
                .store
                .cancel_campaign_jobs(&campaign.id, now)
                .await?;
            return Ok(0);
        }
        if new > 0 {
            tracing::info!(campaign = %campaign.id, occurrence, queued = summary.queued, "mia.campaign occurrence queued");
            // The worker that inserted the occurrence records it (racing workers insert none).
            let extra = serde_json::json!({ "occurrence": occurrence, "summary": summary });
            let mut entry = audit::campaign_state(
                &self.worker_actor(),
                campaign,
                CampaignState::Running,
                extra,
            );
            entry.at = now;
            self.audit(&[entry]).await?;
        }
        self.inner
            .occurrences_queued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(campaign.id.clone(), occurrence);
        Ok(new)
    }

    /// Whether `job` is the first message of an occurrence of a recurring campaign whose next
    /// occurrence is already due at `now`.
    pub(crate) fn superseded(&self, campaign: &Campaign, job: &Job, now: Timestamp) -> bool {
        let Some(recurrence) = &campaign.spec.recurrence else {
            return false;
        };
        let occurrence = JourneyPosition::occurrence_of(job.step);
        let entry = match &campaign.spec.journey {
            Some(journey) => journey
                .first_of(occurrence, job.due_at)
                .ok()
                .flatten()
                .map(|first| first.position.step()),
            None => Some(
                JourneyPosition {
                    occurrence,
                    ..JourneyPosition::default()
                }
                .step(),
            ),
        };
        if entry != Some(job.step) {
            return false;
        }
        occurrence
            .checked_add(1)
            .and_then(|next| recurrence.occurrence(next, now))
            .is_some_and(|next| next <= now)
    }

    /// The earliest next occurrence of a running recurring campaign after `now`.
    pub(crate) async fn next_occurrence(&self, now: Timestamp) -> Result<Option<Timestamp>> {
        Ok(self
            .inner
            .store
            .campaigns_in(CampaignState::Running)
            .await?
            .iter()
            .filter_map(|c| c.spec.recurrence.as_ref()?.next_after(now))
            .map(|(_, at)| at)
            .min())
    }
}
