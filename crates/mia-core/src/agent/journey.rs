//! Running journeys: queue each contact's next step when a send completes or a wait-for is
//! decided, and repair what a crash left undone.
//!
//! Every step that needs a job (a send, or a wait-for as a timer due at its timeout) is an
//! outbox job whose [`Job::step`] encodes its [`JourneyPosition`], so its idempotency key is
//! unique per campaign, contact and visit: queuing a step twice queues it once. A wait-for is
//! decided by whoever first inserts its *decision record* — a final job at
//! [`JourneyPosition::decision_step`] with outcome [`DECIDED_BY_EVENT`] (an inbound event came)
//! or [`DECIDED_BY_TIMEOUT`] (the timer job came due) — so an event and a timeout racing,
//! in one process or several, still take one branch. The record is due when its branch starts
//! (for an event that came during a wait before the wait-for, when the wait-for began), so a
//! repair after a crash plans the branch as the decision did.

use std::collections::{HashMap, HashSet};

use jiff::{SignedDuration, Timestamp};

use super::Agent;
use super::worker::RunStats;
use crate::campaign::{Campaign, CampaignState};
use crate::consent::consent_state;
use crate::error::Result;
use crate::event::Event;
use crate::ids::{CampaignId, IdempotencyKey};
use crate::journey::{Journey, JourneyPosition, PlannedStep, StepAction};
use crate::store::{Job, JobState, JobUpdate, NewJob};

/// Jobs read at a time when a journey campaign is checked for steps a crash left unqueued.
const REPAIR_PAGE: usize = 1_000;

/// The next steps of a journey campaign that are planned but not queued: after each sent job
/// of a send step, and after each decided wait-for, the step the journey goes to when no job
/// has its key. Walks the campaign `page` jobs at a time, so a campaign of millions of jobs never
/// sits in memory, and answers a page's missing steps, each with the job it follows.
struct MissingSteps<'a> {
    store: &'a dyn crate::Store,
    campaign: &'a CampaignId,
    journey: &'a Journey,
    page: usize,
    /// The last key read; `None` before the first page.
    after: Option<IdempotencyKey>,
    done: bool,
}

impl<'a> MissingSteps<'a> {
    fn new(
        store: &'a dyn crate::Store,
        campaign: &'a CampaignId,
        journey: &'a Journey,
        page: usize,
    ) -> Self {
        Self {
            store,
            campaign,
            journey,
            page,
            after: None,
            done: false,
        }
    }

    /// The missing steps of the next page (often none); `None` once every job was read.
    async fn next_page(&mut self) -> Result<Option<Vec<(Job, PlannedStep)>>> {
        if self.done {
            return Ok(None);
        }
        let jobs = self
            .store
            .jobs_page(self.campaign, self.after.as_ref(), self.page)
            .await?;
        match jobs.last() {
            Some(last) if jobs.len() == self.page => {
                // A store that did not move past `after` would have the walk go round forever.
                if self.after.as_ref().is_some_and(|after| &last.key <= after) {
                    return Err(crate::Error::Store {
                        message: format!(
                            "a page of campaign {}'s jobs does not come after the last page",
                            self.campaign
                        ),
                        retryable: false,
                        source: None,
                    });
                }
                self.after = Some(last.key.clone());
            }
            // Short, empty, or longer than asked for (everything left: a store's default).
            _ => self.done = true,
        }
        let journey = self.journey;
        let planned: Vec<(Job, PlannedStep, IdempotencyKey)> = jobs
            .into_iter()
            .filter_map(|job| {
                let planned = if let Some(position) = JourneyPosition::from_decision_step(job.step)
                {
                    // A decision record is due when its branch starts (records written before
                    // that was so are due when they were written).
                    let happened = job.outcome.as_deref() == Some(DECIDED_BY_EVENT);
                    journey.after_wait_for(position, happened, job.due_at)
                } else if job.state == JobState::Sent
                    && let Some((position, StepAction::Send { .. })) = position_at(journey, &job)
                {
                    journey.after_send(position, job.updated_at)
                } else {
                    None
                }?;
                let step = planned.position.step();
                let key = IdempotencyKey::for_job(self.campaign, &job.contact, step);
                Some((job, planned, key))
            })
            .collect();
        let keys: Vec<IdempotencyKey> = planned.iter().map(|(_, _, key)| key.clone()).collect();
        let queued: HashSet<IdempotencyKey> =
            self.store.existing_keys(&keys).await?.into_iter().collect();
        Ok(Some(
            planned
                .into_iter()
                .filter(|(_, _, key)| !queued.contains(key))
                .map(|(job, planned, _)| (job, planned))
                .collect(),
        ))
    }
}

/// The outcome of a wait-for decided by the event it waited for.
pub const DECIDED_BY_EVENT: &str = "journey_event";
/// The outcome of a wait-for decided by its timeout.
pub const DECIDED_BY_TIMEOUT: &str = "journey_timeout";

/// The journey position of a job of a journey campaign and the step there (`None` for a
/// decision record or a step the journey does not have).
fn position_at<'a>(journey: &'a Journey, job: &Job) -> Option<(JourneyPosition, &'a StepAction)> {
    let position = JourneyPosition::from_step(job.step)?;
    let step = journey.steps.get(position.index)?;
    Some((position, &step.action))
}

impl Agent {
    /// Queues the planned step for `job`'s contact, unless the journey ended or the contact has
    /// no valid consent any more (a STOP ends the journey). Returns how many jobs were new.
    async fn queue_planned(
        &self,
        campaign: &Campaign,
        job: &Job,
        planned: PlannedStep,
    ) -> Result<u64> {
        let now = self.now();
        // An aborted campaign queues nothing more (its open jobs were cancelled).
        let current = self.inner.store.campaign(&campaign.id).await?;
        if current.is_none_or(|c| c.state == CampaignState::Aborted) {
            return Ok(0);
        }
        let history = self.inner.store.consent_history(&job.contact).await?;
        let state = consent_state(&history, &job.purpose, now);
        if state != crate::ConsentState::Valid {
            tracing::info!(campaign = %campaign.id, correlation_id = %job.key, reason = state.reason(), "mia.journey ends: no consent");
            return Ok(0);
        }
        let step = planned.position.step();
        let new = NewJob {
            key: IdempotencyKey::for_job(&campaign.id, &job.contact, step),
            contact: job.contact.clone(),
            purpose: job.purpose.clone(),
            step,
            due_at: planned.due_at,
            skipped: None,
        };
        self.inner
            .store
            .enqueue(&campaign.id, std::slice::from_ref(&new), now)
            .await
    }

    /// After the send `job` went out: queues the contact's next step. Returns how many jobs
    /// were new.
    pub(crate) async fn after_sent(&self, campaign: &Campaign, job: &Job) -> Result<u64> {
        let Some(journey) = &campaign.spec.journey else {
            return Ok(0);
        };
        let Some((position, StepAction::Send { .. })) = position_at(journey, job) else {
            return Ok(0);
        };
        match journey.after_send(position, self.now()) {
            Some(planned) => self.queue_planned(campaign, job, planned).await,
            None => Ok(0),
        }
    }

    /// Records how the wait-for at `position` was decided, with its branch starting at `base`,
    /// unless it was decided already. Returns whether the event came in time and when the
    /// branch starts, by this decision or the earlier one: every decider, and a repair after a
    /// crash, plan the branch from the one record.
    async fn decide(
        &self,
        campaign: &CampaignId,
        job: &Job,
        position: JourneyPosition,
        by_event: bool,
        base: Timestamp,
    ) -> Result<(bool, Timestamp)> {
        let step = position.decision_step();
        let key = IdempotencyKey::for_job(campaign, &job.contact, step);
        let outcome = if by_event {
            DECIDED_BY_EVENT
        } else {
            DECIDED_BY_TIMEOUT
        };
        let record = NewJob {
            key: key.clone(),
            contact: job.contact.clone(),
            purpose: job.purpose.clone(),
            step,
            // When the branch starts: a repair after a crash plans it from here.
            due_at: base,
            skipped: Some(outcome.to_owned()),
        };
        let now = self.now();
        if self
            .inner
            .store
            .enqueue(campaign, std::slice::from_ref(&record), now)
            .await?
            == 1
        {
            return Ok((by_event, base));
        }
        Ok(match self.inner.store.job(&key).await? {
            Some(earlier) => (
                earlier.outcome.as_deref() == Some(DECIDED_BY_EVENT),
                earlier.due_at,
            ),
            None => (false, base),
        })
    }

    /// Handles a claimed job that is a wait-for's timer: decides the wait (by timeout, unless an
    /// event decided it first), queues the branch taken and finishes the timer. `None` when
    /// `job` is not a timer; the worker sends it then.
    pub(crate) async fn run_wait_for(
        &self,
        campaign: &Campaign,
        job: &Job,
    ) -> Result<Option<RunStats>> {
        let Some(journey) = &campaign.spec.journey else {
            return Ok(None);
        };
        let Some((position, StepAction::WaitFor { .. })) = position_at(journey, job) else {
            return Ok(None);
        };
        let now = self.now();
        let (happened, base) = self.decide(&campaign.id, job, position, false, now).await?;
        let mut stats = RunStats::default();
        if let Some(planned) = journey.after_wait_for(position, happened, base) {
            stats.journey_steps += self.queue_planned(campaign, job, planned).await?;
        }
        let rule = if happened {
            DECIDED_BY_EVENT
        } else {
            DECIDED_BY_TIMEOUT
        };
        self.inner
            .store
            .update_job(
                &job.key,
                job.claim_token,
                &JobUpdate::Skipped { rule: rule.into() },
                self.now(),
            )
            .await?;
        // Counted so that a run that only decided waits is not taken for an idle one.
        stats.journey_steps = stats.journey_steps.max(1);
        Ok(Some(stats))
    }

    /// Decides the open wait-fors that `events` (inbound, attributed to a campaign) satisfy,
    /// queuing their `then` branch now. An opt-out, attributed or not, decides the contact's
    /// wait-fors for it in every campaign, also those its withdrawal just cancelled (their
    /// branch queues nothing: the contact has no consent any more). Returns how many jobs were
    /// new.
    pub(crate) async fn resolve_waits(&self, events: &[Event]) -> Result<u64> {
        let mut campaigns: HashMap<CampaignId, Option<Campaign>> = HashMap::new();
        let mut queued = 0;
        for event in events {
            let opted_out = event.kind == crate::event::EventKind::OptedOut;
            let ids: Vec<CampaignId> = match &event.campaign {
                Some(id) => vec![id.clone()],
                None if opted_out => {
                    let mut ids: Vec<CampaignId> = self
                        .inner
                        .store
                        .contact_jobs(&event.contact)
                        .await?
                        .into_iter()
                        .map(|j| j.campaign)
                        .collect();
                    ids.sort();
                    ids.dedup();
                    ids
                }
                None => continue,
            };
            for id in &ids {
                queued += self
                    .resolve_waits_in(id, event, opted_out, &mut campaigns)
                    .await?;
            }
        }
        Ok(queued)
    }

    /// [`resolve_waits`](Self::resolve_waits) for one event in campaign `id`.
    async fn resolve_waits_in(
        &self,
        id: &CampaignId,
        event: &Event,
        opted_out: bool,
        campaigns: &mut HashMap<CampaignId, Option<Campaign>>,
    ) -> Result<u64> {
        let mut queued = 0;
        if !campaigns.contains_key(id) {
            let c = self.inner.store.campaign(id).await?;
            // Only journeys that wait for something.
            let c = c.filter(|c| {
                c.spec.journey.as_ref().is_some_and(|j| {
                    j.steps
                        .iter()
                        .any(|s| matches!(s.action, StepAction::WaitFor { .. }))
                })
            });
            campaigns.insert(id.clone(), c);
        }
        let Some(Some(campaign)) = campaigns.get(id) else {
            return Ok(0);
        };
        if campaign.state == CampaignState::Aborted {
            return Ok(0);
        }
        let Some(journey) = &campaign.spec.journey else {
            return Ok(0);
        };
        let waiting: Vec<(Job, JourneyPosition, SignedDuration)> = self
            .inner
            .store
            .contact_jobs(&event.contact)
            .await?
            .into_iter()
            // The withdrawal behind an opt-out cancelled the timers waiting for it.
            .filter(|j| {
                &j.campaign == id
                    && (!j.state.is_final() || (opted_out && j.state == JobState::Cancelled))
            })
            .filter_map(|j| match position_at(journey, &j) {
                Some((
                    p,
                    StepAction::WaitFor {
                        event: wanted,
                        timeout,
                        ..
                    },
                )) if wanted.matches(&event.kind) => Some((j, p, *timeout)),
                _ => None,
            })
            .collect();
        for (job, position, timeout) in waiting {
            // The branch starts once the wait-for itself began (after any wait before it),
            // even if the event came during that wait.
            let began = job.due_at.checked_sub(timeout).ok();
            let base = began.map_or(self.now(), |b| b.max(self.now()));
            let (happened, base) = self.decide(id, &job, position, true, base).await?;
            if !happened {
                continue;
            }
            if let Some(planned) = journey.after_wait_for(position, true, base) {
                queued += self.queue_planned(campaign, &job, planned).await?;
            }
        }
        Ok(queued)
    }

    /// Queues the next steps a crash left unqueued: after every sent job, and after every
    /// decided wait-for, of a journey campaign. Idempotent; returns how many jobs were new.
    pub(crate) async fn repair_journey(&self, campaign: &Campaign) -> Result<u64> {
        let Some(journey) = &campaign.spec.journey else {
            return Ok(0);
        };
        let store = self.inner.store.as_ref();
        let mut pages = MissingSteps::new(store, &campaign.id, journey, REPAIR_PAGE);
        let mut queued = 0;
        while let Some(missing) = pages.next_page().await? {
            for (job, planned) in missing {
                queued += self.queue_planned(campaign, &job, planned).await?;
            }
        }
        if queued > 0 {
            tracing::info!(campaign = %campaign.id, queued, "mia.journey repaired steps a crash left unqueued");
        }
        Ok(queued)
    }

    /// Repairs every running journey campaign, once per agent (on its first run).
    pub(crate) async fn repair_journeys_once(&self) -> Result<u64> {
        if self
            .inner
            .journeys_repaired
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            return Ok(0);
        }
        let mut queued = 0;
        let result: Result<()> = async {
            for campaign in self
                .inner
                .store
                .campaigns_in(CampaignState::Running)
                .await?
            {
                if campaign.spec.journey.is_some() {
                    queued += self.repair_journey(&campaign).await?;
                }
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            // Try again on the next run.
            self.inner
                .journeys_repaired
                .store(false, std::sync::atomic::Ordering::Release);
            return Err(e);
        }
        Ok(queued)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::campaign::CampaignSpec;
    use crate::consent::Purpose;
    use crate::ids::{ContactId, VariantId};
    use crate::{CampaignStore, MemoryStore, OutboxStore};

    const JOURNEY: &str = r#"{ "steps": [
        { "name": "intro",     "kind": "send" },
        { "name": "pause",     "kind": "wait", "duration": "1h" },
        { "name": "check",     "kind": "wait_for", "event": "clicked", "timeout": "1h",
          "then": "done", "otherwise": "follow_up" },
        { "name": "follow_up", "kind": "send", "next": "done" },
        { "name": "done",      "kind": "exit" }
    ] }"#;

    fn new_job(campaign: &CampaignId, who: &str, step: u32, skipped: Option<&str>) -> NewJob {
        let contact = ContactId::new(who);
        NewJob {
            key: IdempotencyKey::for_job(campaign, &contact, step),
            contact,
            purpose: Purpose::marketing(),
            step,
            due_at: Timestamp::UNIX_EPOCH,
            skipped: skipped.map(Into::into),
        }
    }

    /// Pages of any size find the same missing steps: after each sent intro whose wait-for is
    /// not queued, and after each decided wait-for whose follow-up is not.
    #[tokio::test]
    async fn missing_steps_are_found_a_page_at_a_time() {
        let journey: Journey = serde_json::from_str(JOURNEY).unwrap();
        let store = MemoryStore::new();
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let mut campaign = Campaign::draft(
            CampaignId::new("k-repair"),
            CampaignSpec::new("n", "p", "o"),
            now,
        );
        store.insert_campaign(&campaign).await.unwrap();
        campaign.state = CampaignState::Running;
        let id = campaign.id.clone();
        let intro = JourneyPosition::default().step();
        let check = JourneyPosition {
            index: 2,
            ..JourneyPosition::default()
        };
        let follow_up = JourneyPosition {
            index: 3,
            ..JourneyPosition::default()
        };
        let mut jobs: Vec<NewJob> = (0..7)
            .map(|i| new_job(&id, &format!("u{i}"), intro, None))
            .collect();
        // u5 and u6 had their wait-for decided by its timeout: their follow-up is missing. A
        // decision record is due when its branch starts, which is when a repair plans it from.
        let branch_starts = now + SignedDuration::from_hours(5);
        for who in ["u5", "u6"] {
            jobs.push(NewJob {
                due_at: branch_starts,
                ..new_job(&id, who, check.decision_step(), Some(DECIDED_BY_TIMEOUT))
            });
        }
        store.schedule(&campaign, &jobs).await.unwrap();
        let claimed = store
            .claim("w", now, SignedDuration::from_mins(1), 100)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 7);
        for job in &claimed {
            let variant = VariantId::new("A");
            store
                .record_attempt(&job.key, job.claim_token, &variant, 1.0, now)
                .await
                .unwrap();
        }
        let sent: Vec<_> = claimed
            .iter()
            .map(|job| (job, JobUpdate::Sent { message_id: 1 }))
            .collect();
        assert!(store.update_jobs(&sent, now).await.unwrap().is_empty());
        // u0 and u1 have their wait-for queued, u5 its follow-up.
        let queued = [
            new_job(&id, "u0", check.step(), None),
            new_job(&id, "u1", check.step(), None),
            new_job(&id, "u5", follow_up.step(), None),
        ];
        assert_eq!(store.enqueue(&id, &queued, now).await.unwrap(), 3);

        let mut expected: Vec<(String, u32)> = ["u2", "u3", "u4", "u5", "u6"]
            .into_iter()
            .map(|who| (who.to_owned(), check.step()))
            .chain([("u6".to_owned(), follow_up.step())])
            .collect();
        expected.sort();
        for page in [1, 2, 3, 12, 13, 1_000] {
            let mut pages = MissingSteps::new(&store, &id, &journey, page);
            let mut found: Vec<(String, u32)> = Vec::new();
            let mut read = 0;
            while let Some(missing) = pages.next_page().await.unwrap() {
                read += 1;
                for (job, planned) in missing {
                    if planned.position == follow_up {
                        assert_eq!(planned.due_at, branch_starts, "{}", job.contact);
                    }
                    found.push((job.contact.to_string(), planned.position.step()));
                }
            }
            // Twelve jobs: a last page that is short, or empty after full ones.
            assert_eq!(read, 12 / page + 1, "pages of {page}");
            found.sort();
            assert_eq!(found, expected, "pages of {page}");
        }
    }
}
