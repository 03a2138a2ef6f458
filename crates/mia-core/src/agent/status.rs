//! Campaign status for operators: where the queue stands, how fast it drains, what went wrong.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::Agent;
use crate::campaign::CampaignState;
use crate::error::Result;
use crate::ids::CampaignId;
use crate::store::{Job, JobCounts, JobState};

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
    /// Jobs that are waiting after a failed or rate-limited attempt.
    pub retrying: u64,
    /// Dead letters by reason.
    pub dead_letters: BTreeMap<String, u64>,
    /// Open jobs that are waiting for a reason (quiet hours, flood wait...), by that reason.
    pub waiting: BTreeMap<String, u64>,
    /// The earliest time an open job becomes due.
    pub next_due: Option<Timestamp>,
    /// How long the open jobs take at the transport's rate, if it states one (a floor: quiet
    /// hours and retries come on top).
    pub eta: Option<Duration>,
}

impl Agent {
    /// The status of a campaign: job counts, progress, retries, dead letters and an ETA.
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound) or a store error.
    pub async fn status(&self, id: &CampaignId) -> Result<CampaignStatus> {
        let campaign = self.campaign(id).await?;
        let jobs = self.inner.store.jobs(id).await?;
        let mut counts = JobCounts::default();
        let mut dead_letters = BTreeMap::new();
        let mut waiting = BTreeMap::new();
        let mut retrying = 0;
        let mut next_due: Option<Timestamp> = None;
        for job in &jobs {
            counts.add(job.state, 1);
            match job.state {
                JobState::DeadLetter => {
                    *dead_letters.entry(reason(job)).or_default() += 1;
                }
                JobState::Pending => {
                    if job.attempts > 0 {
                        retrying += 1;
                    }
                    if job.outcome.is_some() {
                        *waiting.entry(reason(job)).or_default() += 1;
                    }
                    next_due = Some(next_due.map_or(job.due_at, |d| d.min(job.due_at)));
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
        let eta = self
            .inner
            .transport
            .capabilities()
            .messages_per_second
            .filter(|r| r.is_finite() && *r > 0.0)
            .map(|rate| Duration::from_secs_f64(counts.open() as f64 / rate));
        Ok(CampaignStatus {
            campaign: id.clone(),
            state: campaign.state,
            state_reason: campaign.state_reason,
            jobs: counts,
            progress,
            retrying,
            dead_letters,
            waiting,
            next_due,
            eta,
        })
    }

    /// Dead letters of a campaign, for an operator to inspect.
    ///
    /// # Errors
    /// A store error.
    pub async fn dead_letters(&self, id: &CampaignId) -> Result<Vec<Job>> {
        let mut jobs = self.inner.store.jobs(id).await?;
        jobs.retain(|j| j.state == JobState::DeadLetter);
        Ok(jobs)
    }

    /// Puts a dead letter back in the queue, due now, with its attempts reset. It passes the
    /// send policy again (consent included) when a worker picks it up.
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound) if the job is not a dead letter;
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) if its campaign has finished.
    pub async fn requeue_dead_letter(&self, key: &crate::IdempotencyKey) -> Result<()> {
        let job = self
            .inner
            .store
            .job(key)
            .await?
            .ok_or_else(|| crate::Error::not_found("dead letter", key))?;
        let campaign = self.campaign(&job.campaign).await?;
        if campaign.state.is_terminal() {
            return Err(crate::Error::invalid(format!(
                "campaign {} is {}; a dead letter of a finished campaign cannot be requeued",
                campaign.id, campaign.state
            )));
        }
        let now = self.now();
        self.inner
            .store
            .settle_dead_letter(key, crate::DeadLetterAction::Requeue { due_at: now }, now)
            .await
    }

    /// Gives up on a dead letter for good.
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound) if the job is not a dead letter.
    pub async fn discard_dead_letter(&self, key: &crate::IdempotencyKey) -> Result<()> {
        let now = self.now();
        self.inner
            .store
            .settle_dead_letter(key, crate::DeadLetterAction::Discard, now)
            .await
    }
}

fn reason(job: &Job) -> String {
    job.outcome.clone().unwrap_or_else(|| "unknown".into())
}
