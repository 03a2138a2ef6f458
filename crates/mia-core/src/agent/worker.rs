//! The send loop: claim due jobs, pick a variant, pass the send policy, send, record.

use std::collections::HashMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use super::Agent;
use super::snapshot::{ContactFacts, Snapshot};
use crate::allocator::AssignmentRequest;
use crate::campaign::{Campaign, CampaignState};
use crate::error::{Error, Result};
use crate::event::{Event, EventKind};
use crate::ids::{CampaignId, EventId, ReviewId, VariantId};
use crate::message::{FailureReason, OutboundMessage, SendOutcome};
use crate::metrics::{self, JobOutcome};
use crate::policy::{Decision, RuleHit, SendContext, SendKind, SendPolicy, Verdict};
use crate::store::{Job, JobUpdate, ReviewItem, ReviewState, ReviewSubject};

/// The dead-letter reason of a job whose send was interrupted on a transport that cannot
/// recognise a resend (see [`Capabilities::idempotent_sends`](crate::Capabilities)).
pub const OUTCOME_UNKNOWN: &str = "outcome_unknown: the previous worker stopped while this message \
     was being sent and the transport cannot recognise a resend; check the chat, then requeue or discard";

/// What a run of the worker did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStats {
    /// Messages Telegram accepted.
    pub sent: u64,
    /// Sends the policy refused, by rule.
    pub skipped: std::collections::BTreeMap<String, u64>,
    /// Sends the policy deferred, by rule (a job deferred twice counts twice).
    pub deferred: std::collections::BTreeMap<String, u64>,
    /// Sends the transport asked to retry later (rate limits) or that failed transiently.
    pub retried: u64,
    /// Jobs moved to the dead letter queue.
    pub dead_lettered: u64,
    /// Jobs held for a reviewer.
    pub held: u64,
    /// Inbound events handled.
    pub inbound: u64,
    /// Campaigns paused by a spam signal.
    pub paused_for_spam: u64,
    /// Journey steps queued or decided (next sends, wait-for timers and their decisions).
    #[serde(default)]
    pub journey_steps: u64,
    /// Jobs queued for a recurring campaign's later occurrences.
    #[serde(default)]
    pub occurrence_jobs: u64,
}

impl RunStats {
    fn merge(&mut self, other: RunStats) {
        self.sent += other.sent;
        for (k, v) in other.skipped {
            *self.skipped.entry(k).or_default() += v;
        }
        for (k, v) in other.deferred {
            *self.deferred.entry(k).or_default() += v;
        }
        self.retried += other.retried;
        self.dead_lettered += other.dead_lettered;
        self.held += other.held;
        self.inbound += other.inbound;
        self.paused_for_spam += other.paused_for_spam;
        self.journey_steps += other.journey_steps;
        self.occurrence_jobs += other.occurrence_jobs;
    }

    /// Jobs that reached a final state or were parked (sent, skipped, dead letter, held).
    pub fn finished(&self) -> u64 {
        self.sent + self.skipped.values().sum::<u64>() + self.dead_lettered + self.held
    }
}

/// The results of a batch's jobs decided after their claim (sends and skips), waiting to be
/// written together by `Agent::flush`.
#[derive(Default)]
pub(crate) struct Completions {
    /// Each job and what to write to it.
    done: Vec<(Job, JobUpdate)>,
    /// The events of those results, recorded before the jobs are updated.
    events: Vec<Event>,
    /// The contacts of those jobs.
    contacts: std::collections::HashSet<crate::ids::ContactId>,
}

impl Completions {
    fn push(&mut self, job: &Job, update: JobUpdate, event: Event) {
        self.contacts.insert(job.contact.clone());
        self.done.push((job.clone(), update));
        self.events.push(event);
    }

    /// Whether a result for `contact` waits to be written.
    fn holds(&self, contact: &crate::ids::ContactId) -> bool {
        self.contacts.contains(contact)
    }

    /// Whether no result waits to be written.
    fn is_empty(&self) -> bool {
        self.done.is_empty()
    }

    /// When the oldest result waiting to be written was decided (its event's time).
    fn held_since(&self) -> Option<Timestamp> {
        self.events.iter().map(|e| e.at).min()
    }

    /// Whether the results held are to be written before `at`: by then the oldest would have
    /// waited longer than `hold` (a clock that went back counts as time passed), or a held
    /// job's lease would end within `hold`.
    fn due_by(&self, at: Timestamp, hold: SignedDuration) -> bool {
        let Some(since) = self.held_since() else {
            return false;
        };
        let lease_end = self
            .done
            .iter()
            .filter_map(|(job, _)| job.lease_until)
            .min();
        at.duration_since(since).abs() > hold
            || lease_end.is_some_and(|end| end.duration_since(at) <= hold)
    }
}

/// The longest a batch's results wait to be written, unless a tenth of the lease is shorter
/// (see [`Agent::result_hold`]).
const HOLD_RESULTS: Duration = Duration::from_secs(1);

/// A reviewer's decision on an escalated send.
enum Reviewed {
    /// Approved, for the escalating rules the reviewer saw.
    Approved {
        review: ReviewId,
        rules: Vec<String>,
    },
    /// Rejected.
    Rejected { review: ReviewId },
}

/// The rules of `trace` that escalate, by name, sorted, each once.
fn escalating_rules(trace: &[RuleHit]) -> Vec<&str> {
    let mut rules: Vec<&str> = trace
        .iter()
        .filter(|hit| hit.decision == Decision::Escalate)
        .map(|hit| hit.rule.as_str())
        .collect();
    rules.sort_unstable();
    rules.dedup();
    rules
}

/// The id of the review of `job`'s send escalated with `trace`: one per job and set of
/// escalating rules, so a decision covers the send for the reasons its reviewer saw, and a send
/// escalated for a new reason is asked about again.
fn send_review_id(job: &Job, trace: &[RuleHit]) -> ReviewId {
    // JSON keeps the list unambiguous, whatever the rule names hold.
    let rules = serde_json::to_string(&escalating_rules(trace)).unwrap_or_default();
    let reasons = format!("review:{rules}");
    ReviewId::new(format!(
        "rev_send_{}",
        EventId::derived(job.key.as_str(), &reasons).as_str()
    ))
}

pub(crate) fn add(now: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d)
        .ok()
        .and_then(|d| now.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

impl Agent {
    /// Handles inbound events and sends every due job once. Returns what it did; an empty
    /// result means nothing was due.
    ///
    /// # Errors
    /// A store or sink error; jobs already updated stay updated, the rest are reclaimed when
    /// their lease expires.
    pub async fn run_once(&self) -> Result<RunStats> {
        // The batch's policy decisions go to the audit log together, also when the batch
        // stops halfway: one append per batch, not one per job.
        let mut audit = Vec::new();
        // Likewise the results of sends: written together, and also when the batch stops
        // halfway (a result the transport gave is never dropped while the store is reachable).
        let mut results = Completions::default();
        let done = self.run_batch(&mut audit, &mut results).await;
        let completed = self.flush(&mut results, &HashMap::new()).await;
        let recorded = self.audit(&audit).await;
        let mut stats = done?;
        stats.merge(completed?);
        recorded?;
        Ok(stats)
    }

    async fn run_batch(
        &self,
        audit: &mut Vec<crate::AuditEvent>,
        results: &mut Completions,
    ) -> Result<RunStats> {
        let mut stats = self.poll_inbound().await?;
        stats.journey_steps += self.repair_journeys_once().await?;
        stats.occurrence_jobs += self.queue_due_occurrences().await?;
        self.expire_reviews().await?;
        self.close_abandoned_sends().await;
        let now = self.now();
        let lease = SignedDuration::try_from(self.inner.config.lease)
            .map_err(|e| Error::Config(e.to_string()))?;
        let jobs = self
            .inner
            .store
            .claim(
                &self.inner.config.worker_id,
                now,
                lease,
                self.inner.config.claim_batch,
            )
            .await?;
        let mut campaigns: HashMap<CampaignId, Campaign> = HashMap::new();
        // A transport that cannot recognise a resend (the Bot API) has each result written at
        // once: a crash then leaves at most the one send in flight (an `outcome_unknown` dead
        // letter), never a whole batch of them.
        let write_each = !self.inner.transport.capabilities().idempotent_sends;
        // The contacts' facts, read for the jobs still to come whenever they are needed and
        // none are held: once per batch while sends run without a pause (see `snapshot`).
        let mut snapshot = Snapshot::default();
        for (index, job) in jobs.iter().enumerate() {
            // A contact's send decision sees their earlier sends (frequency caps): write the
            // results this batch holds for them first.
            if results.holds(&job.contact) {
                stats.merge(self.flush(results, &campaigns).await?);
            }
            if !campaigns.contains_key(&job.campaign) {
                let c = self.campaign(&job.campaign).await?;
                campaigns.insert(c.id.clone(), c);
            }
            let Some(campaign) = campaigns.get(&job.campaign) else {
                continue;
            };
            if campaign.state != CampaignState::Running {
                // Paused or aborted earlier in this batch (a spam signal, or an attempt refused
                // below): the job waits, undecided, for the campaign to run again.
                self.leave_for_campaign(job, campaign.state).await?;
                metrics::send(JobOutcome::Paused);
                continue;
            }
            // The job's idempotency key is its correlation id: it follows the job through the
            // policy, the transport and the events (which run inside this span).
            let span = tracing::info_span!(
                "mia.send",
                campaign = %job.campaign,
                correlation_id = %job.key,
                variant = tracing::field::Empty,
                decision = tracing::field::Empty,
                outcome = tracing::field::Empty,
                reason = tracing::field::Empty,
                contact = tracing::field::Empty,
            );
            if self.inner.config.trace_personal_data {
                span.record("contact", job.contact.as_str());
            }
            // A journey's wait-for timer sends nothing: no send slot, no policy.
            let one = match self.run_wait_for(campaign, job).await.transpose() {
                Some(decided) => decided,
                None => {
                    // Wait for a send slot, then take in what contacts said meanwhile (a STOP),
                    // and only then decide: a verdict never goes stale during a rate-limit or
                    // FloodWait wait. Failing either stops the run: sending without the limit,
                    // or without reading STOPs, is not allowed.
                    stats.merge(self.pace_recording(results, &campaigns).await?);
                    let inbound = self.inner.transport.receive().await?;
                    if !inbound.is_empty() {
                        // A STOP cancels the contact's open jobs and a reply is matched to the
                        // job that sent its message: both need the results written first.
                        stats.merge(self.flush(results, &campaigns).await?);
                        stats.merge(self.handle_inbound(&inbound).await?);
                        // What the batch read of its contacts is read again.
                        snapshot.clear();
                    }
                    let now = self.now();
                    let facts = snapshot
                        .take(
                            &*self.inner.store,
                            job,
                            &jobs[index + 1..],
                            |contact| results.holds(contact),
                            now,
                            self.recent_sends_since(now),
                        )
                        .await;
                    // A read that fails (a contact row that does not decode) is this job's
                    // error, handled below like a failed decision, not the run's.
                    match facts {
                        Ok(facts) => {
                            self.process(campaign, job, facts, audit, results)
                                .instrument(span.clone())
                                .await
                        }
                        Err(e) => Err(e),
                    }
                }
            };
            match one {
                Ok(s) => {
                    if s.paused_for_spam > 0
                        && let Some(c) = campaigns.get_mut(&job.campaign)
                    {
                        c.state = CampaignState::Paused;
                    }
                    stats.merge(s);
                }
                // Paused or aborted since the batch read the campaign (`record_attempt` refused
                // the send): this job waits, and so do the batch's other jobs of the campaign,
                // without being decided (above).
                Err(Error::CampaignNotRunning { state, .. }) => {
                    span.record("outcome", JobOutcome::Paused.as_str());
                    metrics::send(JobOutcome::Paused);
                    if let Some(c) = campaigns.get_mut(&job.campaign) {
                        c.state = state;
                    }
                    self.leave_for_campaign(job, state).await?;
                }
                // Another worker took the job over (or STOP cancelled it): not ours any more.
                Err(Error::LeaseLost(key)) => {
                    tracing::debug!(correlation_id = %key, "lease lost");
                }
                // A busy database or a dropped connection: the job's lease runs out and it is
                // claimed again, so nothing is lost by moving on.
                Err(e) if e.is_retryable() => {
                    tracing::warn!(correlation_id = %job.key, error = %e, "mia.send transient error; the job will be retried");
                }
                // Something is wrong with this one job (a corrupt row, an allocator that
                // cannot choose): set it aside for a human instead of stalling every campaign.
                Err(e) => {
                    tracing::error!(correlation_id = %job.key, error = %e, "mia.send job failed; moved to the dead letter queue");
                    metrics::send(JobOutcome::Error);
                    let update = JobUpdate::DeadLetter {
                        reason: format!("error: {e}"),
                    };
                    match self.update(job, &update).await {
                        Ok(()) => stats.dead_lettered += 1,
                        Err(Error::LeaseLost(_)) => {}
                        Err(store) => return Err(store),
                    }
                }
            }
            if !results.is_empty() && (write_each || results.due_by(self.now(), self.result_hold()))
            {
                stats.merge(self.flush(results, &campaigns).await?);
            }
        }
        // Completing a campaign counts its open jobs: the results go in first.
        stats.merge(self.flush(results, &campaigns).await?);
        self.complete_finished(campaigns.keys()).await?;
        Ok(stats)
    }

    /// Once a lease at most (and at the first batch): closes the sends in flight that an abort
    /// left to their workers, whose lease has run out with no result (their worker stopped),
    /// so they count as aborted and an erasure waiting on them settles (see
    /// [`OutboxStore::close_abandoned_sends`](crate::OutboxStore::close_abandoned_sends)). A
    /// failure is logged and the batch goes on; the next batch tries again.
    async fn close_abandoned_sends(&self) {
        let now = self.now();
        let sweep_at = || {
            self.inner
                .abandoned_sweep_at
                .lock()
                .unwrap_or_else(|e| e.into_inner())
        };
        {
            let mut at = sweep_at();
            if at.is_some_and(|at| now < at) {
                return;
            }
            *at = Some(add(now, self.inner.config.lease));
        }
        match self.inner.store.close_abandoned_sends(now).await {
            Ok(0) => {}
            Ok(closed) => tracing::info!(
                closed,
                "mia.outbox closed sends in flight of aborted campaigns whose worker never reported"
            ),
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "mia.outbox could not close abandoned sends; will try again"
                );
                *sweep_at() = None;
            }
        }
    }

    /// Runs the worker until no job of a running campaign is open and no running recurring
    /// campaign has an occurrence left: sleeps (in the clock's time, so virtually under a
    /// simulated clock) until the next job or occurrence is due or the next inbound event
    /// arrives, handles STOPs as they come, and completes campaigns whose jobs are all final.
    /// A running recurring campaign with neither `count` nor `until` keeps it running until the
    /// campaign is paused, aborted or completes; loop on [`run_once`](Self::run_once) to stop
    /// earlier.
    ///
    /// # Errors
    /// As [`run_once`](Self::run_once).
    pub async fn run_until_idle(&self) -> Result<RunStats> {
        self.run_until_idle_with(|_| {}).await
    }

    /// [`run_until_idle`](Self::run_until_idle) that also ends once `stop` completes (a
    /// shutdown signal, say): a wait for the next job ends at once, and a batch under way is
    /// finished first (with its own waits for send slots, which a FloodWait can make long),
    /// its results written, so no send is left in flight for a lease to
    /// recover (on a transport that cannot recognise a resend, such a send would become an
    /// `outcome_unknown` dead letter for a human to check). `stop` is checked before each
    /// batch, so a stop that has already completed ends the run before anything is claimed.
    /// Returns the totals so far.
    ///
    /// # Errors
    /// As [`run_once`](Self::run_once).
    pub async fn run_until_idle_or(
        &self,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<RunStats> {
        self.run_loop(|_| {}, Some(std::pin::pin!(stop))).await
    }

    /// [`run_until_idle`](Self::run_until_idle), calling `progress` with the totals so far after
    /// every batch.
    ///
    /// # Errors
    /// As [`run_once`](Self::run_once).
    pub async fn run_until_idle_with(&self, progress: impl FnMut(&RunStats)) -> Result<RunStats> {
        self.run_loop(progress, None::<std::pin::Pin<&mut std::future::Ready<()>>>)
            .await
    }

    /// The loop of [`run_until_idle_with`](Self::run_until_idle_with), ending also once `stop`
    /// (if any) completes: checked before each batch and raced against each wait, never
    /// against a batch.
    async fn run_loop<F: std::future::Future<Output = ()>>(
        &self,
        mut progress: impl FnMut(&RunStats),
        mut stop: Option<std::pin::Pin<&mut F>>,
    ) -> Result<RunStats> {
        use std::task::Poll;
        let mut total = RunStats::default();
        loop {
            if let Some(stop) = stop.as_mut() {
                let waker = std::task::Waker::noop();
                let mut cx = std::task::Context::from_waker(waker);
                if stop.as_mut().poll(&mut cx).is_ready() {
                    progress(&total);
                    return Ok(total);
                }
            }
            let stats = self.run_once().await?;
            let did_something = stats != RunStats::default();
            total.merge(stats);
            if did_something {
                progress(&total);
                continue;
            }
            // A recurring campaign's next occurrence is work to wait for, like a due job.
            let next_occurrence = self.next_occurrence(self.now()).await?;
            let next_due = match (self.inner.store.next_due().await?, next_occurrence) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let Some(next_due) = next_due else {
                let running: Vec<CampaignId> = self
                    .inner
                    .store
                    .campaigns_in(CampaignState::Running)
                    .await?
                    .into_iter()
                    .map(|c| c.id)
                    .collect();
                self.complete_finished(running.iter()).await?;
                progress(&total);
                return Ok(total);
            };
            let mut wake = next_due;
            if let Some(d) = self.inner.transport.next_inbound_in() {
                wake = wake.min(add(self.now(), d));
            }
            // Never spin: sleep at least a millisecond of (virtual) time.
            wake = wake.max(add(self.now(), Duration::from_millis(1)));
            let mut sleep = self.inner.clock.sleep_until(wake);
            let stopped = std::future::poll_fn(|cx| {
                if let Some(stop) = stop.as_mut()
                    && stop.as_mut().poll(cx).is_ready()
                {
                    return Poll::Ready(true);
                }
                sleep.as_mut().poll(cx).map(|()| false)
            })
            .await;
            if stopped {
                progress(&total);
                return Ok(total);
            }
        }
    }

    /// Handles inbound events until the clock reads `until` (for example, to collect reads
    /// and conversions for a day after the last send). Sends nothing but STOP confirmations.
    ///
    /// # Errors
    /// A transport, store or sink error.
    pub async fn process_inbound_until(&self, until: Timestamp) -> Result<RunStats> {
        let mut total = RunStats::default();
        loop {
            total.merge(self.poll_inbound().await?);
            let now = self.now();
            if now >= until {
                return Ok(total);
            }
            let wake = match self.inner.transport.next_inbound_in() {
                Some(d) => add(now, d).min(until),
                None => until,
            };
            self.inner
                .clock
                .sleep_until(wake.max(add(now, Duration::from_millis(1))))
                .await;
        }
    }

    async fn complete_finished<'a>(
        &self,
        campaigns: impl Iterator<Item = &'a CampaignId>,
    ) -> Result<()> {
        for id in campaigns {
            let counts = self.inner.store.job_counts(id).await?;
            // The counts are read here anyway: the queue-depth gauge costs no extra query.
            metrics::outbox(id, &counts);
            if counts.open() == 0 {
                let mut c = self.campaign(id).await?;
                // A crash between a journey's send and its next step leaves nothing open:
                // queue what is missing instead of completing.
                if c.state == CampaignState::Running && self.repair_journey(&c).await? > 0 {
                    continue;
                }
                // A recurring campaign's occurrence may have fallen due since this batch began
                // (or another worker just queued it): queue it, then look again.
                if c.state == CampaignState::Running
                    && c.spec.recurrence.is_some()
                    && (self.queue_latest_occurrence(&c, self.now()).await? > 0
                        || self.inner.store.job_counts(id).await?.open() > 0)
                {
                    continue;
                }
                // A recurring campaign runs until its last occurrence.
                let more = c
                    .spec
                    .recurrence
                    .as_ref()
                    .is_some_and(|r| r.next_after(self.now()).is_some());
                if c.state == CampaignState::Running && !more {
                    let span = super::campaign_span(id, "complete");
                    async {
                        c.transition(CampaignState::Completed, self.now())?;
                        self.inner.store.update_campaign(&c).await?;
                        tracing::info!(campaign = %id, sent = counts.sent, "mia.campaign completed");
                        let extra = serde_json::json!({ "jobs": counts });
                        self.audit(&[super::audit::campaign_state(
                            &self.worker_actor(),
                            &c,
                            CampaignState::Running,
                            extra,
                        )])
                        .await
                    }
                    .instrument(span)
                    .await?;
                }
            }
        }
        Ok(())
    }

    async fn update(&self, job: &Job, update: &JobUpdate) -> Result<()> {
        self.inner
            .store
            .update_job(&job.key, job.claim_token, update, self.now())
            .await
    }

    /// The event of `job`'s outcome; its id is derived from the job, so recording it twice
    /// records it once.
    fn event(&self, job: &Job, variant: Option<&VariantId>, kind: EventKind) -> Event {
        Event {
            id: EventId::derived(job.key.as_str(), kind.name()),
            at: self.now(),
            contact: job.contact.clone(),
            campaign: Some(job.campaign.clone()),
            variant: variant.cloned(),
            step: Some(crate::journey::JourneyPosition::step_index(job.step)),
            kind,
        }
    }

    /// Queues `job` as skipped by `rule`, with its event, among the batch's results.
    fn skip(&self, job: &Job, rule: &str, results: &mut Completions) {
        let kind = EventKind::Skipped {
            rule: rule.to_owned(),
        };
        let event = self.event(job, None, kind);
        let update = JobUpdate::Skipped {
            rule: rule.to_owned(),
        };
        results.push(job, update, event);
    }

    /// Writes the results `results` holds: their events in one batch, then their jobs in one
    /// store round trip ([`OutboxStore::update_jobs`](crate::OutboxStore::update_jobs)), then
    /// the next journey steps of the sends. A crash before the jobs are written leaves them
    /// claimed with their send in flight: the events are recorded again (deduplicated by id)
    /// and, on a transport with idempotent sends, the sends are recognised by their idempotency
    /// keys, never lost or doubled. On a transport without them (the Bot API) every result is
    /// written right after its send, so a crash leaves at most that one send in flight, which
    /// goes to the dead letters as `outcome_unknown` rather than being sent twice. Returns the
    /// sends and skips written.
    ///
    /// `campaigns` are those of the jobs, where known; others are read from the store.
    async fn flush(
        &self,
        results: &mut Completions,
        campaigns: &HashMap<CampaignId, Campaign>,
    ) -> Result<RunStats> {
        let mut stats = RunStats::default();
        if results.done.is_empty() {
            return Ok(stats);
        }
        let done = std::mem::take(&mut results.done);
        let events = std::mem::take(&mut results.events);
        results.contacts.clear();
        self.inner.sink.record(&events).await?;
        let updates: Vec<(&Job, JobUpdate)> = done.iter().map(|(j, u)| (j, u.clone())).collect();
        let lost = self.inner.store.update_jobs(&updates, self.now()).await?;
        let lost: std::collections::HashSet<&crate::IdempotencyKey> = lost.iter().collect();
        for (job, update) in &done {
            if lost.contains(&job.key) {
                // Another worker took the job over (its lease ran out) or a STOP cancelled it
                // after the send: not ours any more. (An abort leaves a send in flight to its
                // worker; see `OutboxStore::cancel_campaign_jobs`.)
                tracing::warn!(correlation_id = %job.key, "mia.send result not recorded: the job was taken over or cancelled meanwhile");
                continue;
            }
            match update {
                JobUpdate::Skipped { rule } => *stats.skipped.entry(rule.clone()).or_default() += 1,
                JobUpdate::Sent { .. } => {
                    stats.sent += 1;
                    // The send is recorded; a failure to queue the next step is repaired later
                    // (on the next agent's first run, or before the campaign completes).
                    let next = match campaigns.get(&job.campaign) {
                        Some(c) => self.after_sent(c, job).await,
                        None => match self.campaign(&job.campaign).await {
                            Ok(c) => self.after_sent(&c, job).await,
                            Err(e) => Err(e),
                        },
                    };
                    match next {
                        Ok(n) => stats.journey_steps += n,
                        Err(e) => {
                            tracing::warn!(correlation_id = %job.key, error = %e, "mia.journey next step not queued yet; it will be repaired");
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(stats)
    }

    /// How long a batch's results may wait to be written: [`HOLD_RESULTS`], or a tenth of the
    /// lease if that is shorter. They are written before a wait for a send slot that would
    /// keep the oldest of them longer, or end a held job's lease within it, and after any job
    /// once the oldest has waited that long; so no result waits out a FloodWait, a string of
    /// send slots or slow sends, and none is left for its lease to run out. Shorter waits (the
    /// gaps of a fast rate limit) leave the results to be written together: a store round trip
    /// and a flushed commit for each send would otherwise bound the send rate, at a few
    /// hundred a second on Postgres.
    fn result_hold(&self) -> SignedDuration {
        SignedDuration::try_from(HOLD_RESULTS.min(self.inner.config.lease / 10))
            .unwrap_or(SignedDuration::ZERO)
    }

    /// [`pace`](Self::pace), writing the results `results` holds first when waiting would keep
    /// them too long (see [`result_hold`](Self::result_hold)).
    async fn pace_recording(
        &self,
        results: &mut Completions,
        campaigns: &HashMap<CampaignId, Campaign>,
    ) -> Result<RunStats> {
        let Some(limiter) = &self.inner.limiter else {
            return Ok(RunStats::default());
        };
        let key = self.limit_key();
        let mut stats = RunStats::default();
        loop {
            let now = self.now();
            match limiter.try_acquire(&key, now).await? {
                None => return Ok(stats),
                Some(wait) => {
                    let until = add(now, wait);
                    if results.due_by(until, self.result_hold()) {
                        stats.merge(self.flush(results, campaigns).await?);
                    }
                    self.inner.clock.sleep_until(until).await;
                }
            }
        }
    }

    /// How far back a send decision at `now` looks at the contact's sends (frequency caps).
    fn recent_sends_since(&self, now: Timestamp) -> Timestamp {
        now.checked_sub(SignedDuration::from_hours(24 * 7))
            .unwrap_or(now)
    }

    /// Leaves `job` for when its campaign, which is `state` now, runs again: back in the queue
    /// at its due time, no attempt counted.
    async fn leave_for_campaign(&self, job: &Job, state: CampaignState) -> Result<()> {
        if job.send_in_flight() {
            // Taken over from a worker that stopped mid-send: its mark must survive (a
            // transport that cannot recognise a resend dead-letters such a job instead of
            // sending it again), and a retry would clear it. Left claimed, it is claimed again
            // once its lease runs out and the campaign runs.
            return Ok(());
        }
        let update = JobUpdate::Retry {
            due_at: job.due_at,
            count_attempt: false,
            reason: format!("campaign_{state}"),
        };
        match self.update(job, &update).await {
            // Cancelled by an abort (or a STOP): not ours any more, nothing to leave.
            Err(Error::LeaseLost(_)) => Ok(()),
            done => done,
        }
    }

    /// Decides and sends `job`, with its contact's `facts` (`None`: no such contact).
    async fn process(
        &self,
        campaign: &Campaign,
        job: &Job,
        facts: Option<ContactFacts>,
        audit: &mut Vec<crate::AuditEvent>,
        results: &mut Completions,
    ) -> Result<RunStats> {
        let mut stats = RunStats::default();
        let store = &self.inner.store;
        // Called inside the job's `mia.send` span (see `run_batch`).
        let finish = |outcome: JobOutcome| {
            tracing::Span::current().record("outcome", outcome.as_str());
            metrics::send(outcome);
            tracing::debug!(outcome = outcome.as_str(), "mia.send done");
        };
        if job.send_in_flight() && !self.inner.transport.capabilities().idempotent_sends {
            // The previous worker stopped between handing this message to the transport and
            // recording the result. Telegram may have it, and this transport cannot recognise
            // a resend: never twice, so a human decides (requeue or discard).
            tracing::warn!(correlation_id = %job.key, "mia.send outcome unknown after an interrupted send; not resent");
            finish(JobOutcome::OutcomeUnknown);
            let variant = job
                .variant
                .clone()
                .unwrap_or_else(|| VariantId::new("unknown"));
            self.dead_letter(job, &variant, OUTCOME_UNKNOWN.to_owned(), None, &mut stats)
                .await?;
            return Ok(stats);
        }
        let Some(ContactFacts {
            contact,
            history,
            recent,
        }) = facts
        else {
            self.update(
                job,
                &JobUpdate::DeadLetter {
                    reason: "unknown_contact".into(),
                },
            )
            .await?;
            tracing::Span::current().record("reason", "unknown_contact");
            finish(JobOutcome::Failed);
            stats.dead_lettered += 1;
            return Ok(stats);
        };
        let now = self.now();
        let policy_span = tracing::info_span!(
            "mia.policy",
            policy = "send",
            campaign = %campaign.id,
            correlation_id = %job.key,
            decision = tracing::field::Empty,
            rule = tracing::field::Empty,
        );
        // A recurring campaign's occurrence that has not reached this contact when the next
        // one is due is superseded by it: its first message is not sent late, on top of the
        // new one (a journey the contact already started goes on).
        if self.superseded(campaign, job, now) {
            let rule = crate::recurrence::SUPERSEDED_RULE;
            self.skip(job, rule, results);
            tracing::Span::current().record("reason", rule);
            finish(JobOutcome::Skipped);
            return Ok(stats);
        }
        // The campaign's send window comes first: outside it the send waits for the window's
        // next opening on the contact's clock, and every rule is judged again then (a frequency
        // cap that refuses tonight may allow tomorrow morning).
        let outside_window = campaign.spec.send_window.as_ref().and_then(|window| {
            // A contact whose zone is unknown is sent to only while the window is open in
            // every zone the audience may live in. No common opening (or the end of the
            // calendar): never, rather than a guess.
            let open = match contact.known_tz() {
                Some(tz) => window.next_open(now, &tz),
                None => window.next_open_in_all(now, &self.inner.config.zones_when_unknown),
            }
            .unwrap_or(Timestamp::MAX);
            (open > now).then(|| {
                Verdict::defer(
                    crate::send_window::SEND_WINDOW_RULE,
                    open,
                    format!("outside the campaign's send window {window:?} on the contact's clock"),
                )
            })
        });
        let send_ctx = SendContext {
            contact: &contact,
            kind: SendKind::Campaign,
            purpose: &job.purpose,
            consent_history: &history,
            recent_sends: &recent,
            campaign: Some(&campaign.id),
            now,
        };
        let mut verdict = policy_span.in_scope(|| match outside_window {
            Some(deferral) => deferral,
            None => self.inner.sends.check(&send_ctx),
        });
        // An escalated send that a reviewer has decided goes the reviewer's way, for the
        // reasons the reviewer saw. Rejected, it is skipped. Approved, the policies judge it
        // again with those reasons allowed, so every rule after the escalating one (a
        // suppression list, a cap, quiet hours) still has its say, and the checks below follow;
        // a send escalated for another reason waits for a review of its own.
        if verdict.decision == Decision::Escalate {
            match self.reviewed_send(job, &verdict).await? {
                Some(Reviewed::Approved { review, rules }) => {
                    verdict = policy_span
                        .in_scope(|| self.inner.sends.check_approving(&send_ctx, &rules));
                    if verdict.decision == Decision::Allow {
                        verdict.trace.push(RuleHit {
                            rule: crate::APPROVED_BY_REVIEWER_RULE.to_owned(),
                            decision: Decision::Allow,
                            detail: format!("approved in review {review}"),
                        });
                    }
                }
                Some(Reviewed::Rejected { review }) => {
                    verdict.decision = Decision::Deny;
                    verdict.trace.push(RuleHit {
                        rule: crate::REJECTED_BY_REVIEWER_RULE.to_owned(),
                        decision: Decision::Deny,
                        detail: format!("rejected in review {review}"),
                    });
                }
                None => {}
            }
        }
        let rule = verdict.deciding_rule().unwrap_or("policy").to_owned();
        let decision = metrics::decision_name(&verdict.decision);
        policy_span.record("decision", decision);
        policy_span.record("rule", rule.as_str());
        policy_span.in_scope(|| tracing::debug!(decision, rule, "mia.policy send"));
        audit.push(super::audit::send_decision(
            &self.worker_actor(),
            job,
            &verdict,
            &history,
            now,
        ));
        tracing::Span::current().record("decision", decision);
        match verdict.decision {
            Decision::Allow => {}
            Decision::Deny => {
                // Recorded with the batch's results (the event first, then the job), and
                // counted once written.
                self.skip(job, &rule, results);
                metrics::denial("send", &rule);
                finish(JobOutcome::Skipped);
                return Ok(stats);
            }
            Decision::Defer { until } => {
                let update = JobUpdate::Retry {
                    due_at: until.max(now),
                    count_attempt: false,
                    reason: rule.clone(),
                };
                self.update(job, &update).await?;
                finish(JobOutcome::Deferred);
                *stats.deferred.entry(rule).or_default() += 1;
                return Ok(stats);
            }
            Decision::Escalate => {
                // The review item first (an idempotent upsert by id, which never reopens a
                // decided item), then the hold: a crash in between leaves a claimed job that is
                // retried, never a hold nobody sees. The reviewer's decision releases the job
                // (see `ReviewStore::resolve_review`), and its next claim finds the decision
                // (`reviewed_send`).
                let item = ReviewItem {
                    id: send_review_id(job, &verdict.trace),
                    campaign: campaign.id.clone(),
                    subject: ReviewSubject::Send {
                        job: job.key.clone(),
                    },
                    text: String::new(),
                    trace: verdict.trace,
                    state: ReviewState::Pending,
                    reviewer: None,
                    note: None,
                    created_at: now,
                    resolved_at: None,
                };
                let review = item.id.clone();
                store.insert_reviews(std::slice::from_ref(&item)).await?;
                self.update(job, &JobUpdate::Held { rule: rule.clone() })
                    .await?;
                // A decision that came between the item's queueing and the hold found the job
                // not yet held, so it could not release it: release it now, as decided.
                if let Some(decided) = store.review(&review).await?
                    && decided.state != ReviewState::Pending
                {
                    match store
                        .release_held(&job.key, decided.is_approved(), self.now())
                        .await
                    {
                        Ok(()) | Err(Error::NotFound { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
                finish(JobOutcome::Held);
                stats.held += 1;
                return Ok(stats);
            }
        }

        // A pause or abort from an operator (or another worker's spam signal) takes effect
        // within one job, not one batch: `record_attempt` refuses the send of a campaign that
        // is not running. With a daily cap, the state is also read before a day's send is
        // taken, so a paused campaign does not use one up.
        if self.inner.config.daily_cap.is_some() {
            let current = store
                .campaign_state(&campaign.id)
                .await?
                .ok_or_else(|| Error::not_found("campaign", &campaign.id))?;
            if current != CampaignState::Running {
                return Err(Error::CampaignNotRunning {
                    campaign: campaign.id.to_string(),
                    state: current,
                });
            }
        }

        // Sticky: a variant recorded by an earlier attempt wins, if it is still approved.
        // Decided before the daily cap, so a held-out contact never uses up a send.
        let mut approved: Vec<VariantId> =
            campaign.approved_variants().map(|v| v.id.clone()).collect();
        if let Some(journey) = &campaign.spec.journey
            && let Some(position) = crate::journey::JourneyPosition::from_step(job.step)
        {
            approved = journey.variants_for(position.index, &approved);
        }
        let allocation = match &job.variant {
            Some(v) if approved.contains(v) => {
                crate::allocator::Allocation::Variant(crate::allocator::Assignment {
                    variant: v.clone(),
                    propensity: job.propensity.unwrap_or(1.0),
                })
            }
            _ => self.inner.allocator.allocate(
                &AssignmentRequest::new(&campaign.id, &contact.id, &approved)
                    .with_attributes(&contact.attributes),
            )?,
        };
        let (variant, propensity) = match allocation {
            crate::allocator::Allocation::Variant(a) if approved.contains(&a.variant) => {
                (a.variant, a.propensity)
            }
            // Only approved copy is ever sent, whatever an allocator answers.
            crate::allocator::Allocation::Variant(a) => {
                return Err(Error::invalid(format!(
                    "allocator chose variant {}, which is not approved for this step",
                    a.variant
                )));
            }
            // A holdout or an exclusion: no message. Finished like a policy skip, with the
            // batch's results (the event first, then the job; counted once written), so
            // reports and analytics count it by its rule.
            other => {
                // Never `None` here (not a variant); the holdout's rule is the safe default.
                let rule = other
                    .skip_rule()
                    .unwrap_or_else(|| crate::allocator::HOLDOUT_RULE.to_owned());
                if let crate::allocator::Allocation::Holdout { propensity } = other {
                    tracing::debug!(propensity, "mia.send held out by the experiment");
                }
                tracing::Span::current().record("reason", rule.as_str());
                let event = self.event(job, None, EventKind::Skipped { rule: rule.clone() });
                results.push(job, JobUpdate::Skipped { rule }, event);
                finish(JobOutcome::Skipped);
                return Ok(stats);
            }
        };

        // The sending account's daily cap, counted in the store so every worker and every
        // restart sees the day's count. Full: the job waits for the account's next day.
        if let Some(cap) = &self.inner.config.daily_cap
            && !store
                .take_daily(&self.limit_key(), &cap.day_of(now), cap.max)
                .await?
        {
            let rule = crate::agent::DAILY_CAP_RULE.to_owned();
            let until = cap.next_day(now).max(now);
            let update = JobUpdate::Retry {
                due_at: until,
                count_attempt: false,
                reason: rule.clone(),
            };
            // Logged like every send decision: the deferral, its rule and the consent in force.
            let verdict = crate::policy::Verdict::of(
                &rule,
                Decision::Defer { until },
                format!("{} sends a day on {} are used up", cap.max, cap.time_zone),
            );
            audit.push(super::audit::send_decision(
                &self.worker_actor(),
                job,
                &verdict,
                &history,
                now,
            ));
            self.update(job, &update).await?;
            metrics::denial("send", &rule);
            finish(JobOutcome::Deferred);
            *stats.deferred.entry(rule).or_default() += 1;
            return Ok(stats);
        }

        let Some(text) = campaign.variant(&variant).map(|v| v.text.clone()) else {
            return Err(Error::invalid(format!(
                "allocator chose unknown variant {variant}"
            )));
        };
        tracing::Span::current().record("variant", variant.as_str());
        // A campaign paused or aborted meanwhile makes this `CampaignNotRunning`, which
        // `run_batch` handles for the rest of the batch too.
        store
            .record_attempt(&job.key, job.claim_token, &variant, propensity, now)
            .await?;
        let message = OutboundMessage::new(job.key.clone(), contact.id.clone(), contact.peer, text)
            .with_campaign(campaign.id.clone())
            .with_variant(variant.clone());
        let outcome = self.inner.transport.send(&message).await;
        let now = self.now();
        match outcome {
            Ok(SendOutcome::Sent { message_id, .. }) => {
                finish(JobOutcome::Sent);
                // Written with the batch's results (see `flush`): the job stays claimed, with
                // its send in flight, until its event and then its result are stored.
                let event = self.event(job, Some(&variant), EventKind::Sent);
                results.push(job, JobUpdate::Sent { message_id }, event);
                self.inner.blocks.record(false, now);
            }
            Ok(SendOutcome::RetryAfter { after, reason }) => {
                finish(JobOutcome::RetryAfter);
                metrics::flood_wait(after);
                stats.retried += 1;
                self.inner
                    .blocks
                    .signal(super::health::Signal::FloodWait, now);
                self.freeze_sends(add(now, after)).await?;
                if job.attempts + 1 >= self.inner.config.retry.max_attempts {
                    let reason = format!("out of attempts ({reason})");
                    self.dead_letter(job, &variant, reason, None, &mut stats)
                        .await?;
                } else {
                    let update = JobUpdate::Retry {
                        due_at: add(now, after),
                        count_attempt: true,
                        reason,
                    };
                    self.update(job, &update).await?;
                    metrics::send_retry();
                }
            }
            Ok(SendOutcome::Failed(FailureReason::SpamLimited)) => {
                // Invariant: a spam signal pauses the account, so every running campaign of it
                // pauses (every worker stops within one job); the traffic is never moved to
                // another account. The job waits, unsent, until a human resumes.
                finish(JobOutcome::SpamLimited);
                self.inner
                    .blocks
                    .signal(super::health::Signal::SpamLimited, now);
                tracing::warn!(campaign = %campaign.id, "Telegram limited the account for spam; pausing every running campaign");
                let update = JobUpdate::Retry {
                    due_at: now,
                    count_attempt: false,
                    reason: "spam_limited".into(),
                };
                self.update(job, &update).await?;
                stats.paused_for_spam += self
                    .pause_account("Telegram limited the sending account (PEER_FLOOD)")
                    .await?;
            }
            Ok(SendOutcome::Failed(reason)) => {
                tracing::Span::current().record("reason", reason.code());
                finish(if reason == FailureReason::Blocked {
                    JobOutcome::Blocked
                } else {
                    JobOutcome::Failed
                });
                if reason == FailureReason::PrivacyRestricted {
                    self.inner
                        .blocks
                        .signal(super::health::Signal::PrivacyRefused, now);
                }
                let blocked = reason == FailureReason::Blocked;
                let also = blocked.then_some(EventKind::Blocked);
                self.dead_letter(job, &variant, reason.code().to_owned(), also, &mut stats)
                    .await?;
                if blocked {
                    stats.paused_for_spam += self.note_block().await?;
                }
            }
            Err(e)
                if e.is_retryable() && job.attempts + 1 < self.inner.config.retry.max_attempts =>
            {
                finish(JobOutcome::TransientError);
                let delay = self
                    .inner
                    .config
                    .retry
                    .delay(job.attempts, self.random_unit());
                let update = JobUpdate::Retry {
                    due_at: add(now, delay),
                    count_attempt: true,
                    reason: format!("transport: {e}"),
                };
                self.update(job, &update).await?;
                metrics::send_retry();
                stats.retried += 1;
            }
            Err(e @ Error::Config(_)) => {
                // A refused token, a second poller: nothing was sent, and every other job would
                // fail the same way. The job goes back unchanged and the run stops.
                finish(JobOutcome::ConfigError);
                let update = JobUpdate::Retry {
                    due_at: job.due_at,
                    count_attempt: false,
                    reason: "transport_configuration".into(),
                };
                self.update(job, &update).await?;
                return Err(e);
            }
            Err(e) => {
                finish(JobOutcome::Error);
                let reason = format!("transport: {e}");
                self.dead_letter(job, &variant, reason, None, &mut stats)
                    .await?;
            }
        }
        Ok(stats)
    }

    /// The decision a reviewer made on `job`'s send for the reasons `verdict` escalates it
    /// (see [`send_review_id`]), if any.
    async fn reviewed_send(&self, job: &Job, verdict: &Verdict) -> Result<Option<Reviewed>> {
        let store = &self.inner.store;
        let now = escalating_rules(&verdict.trace);
        let mut found = store.review(&send_review_id(job, &verdict.trace)).await?;
        if found.is_none() && !now.is_empty() {
            // An item queued before review ids named their reasons (one per job) counts if it
            // saw every reason the send is escalated for now.
            let legacy = ReviewId::new(format!(
                "rev_send_{}",
                EventId::derived(job.key.as_str(), "review").as_str()
            ));
            found = store.review(&legacy).await?.filter(|item| {
                let seen = escalating_rules(&item.trace);
                now.iter().all(|rule| seen.contains(rule))
            });
        }
        let Some(item) = found else {
            return Ok(None);
        };
        Ok(match item.state {
            ReviewState::Pending => None,
            ReviewState::Rejected => Some(Reviewed::Rejected { review: item.id }),
            ReviewState::Approved | ReviewState::Edited { .. } => Some(Reviewed::Approved {
                rules: escalating_rules(&item.trace)
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
                review: item.id,
            }),
        })
    }

    /// Sets `job` aside as a dead letter after its send failed for `reason`: records its
    /// `Failed` event (and `also`, if any) first, then the job. The job goes through
    /// [`OutboxStore::update_jobs`](crate::OutboxStore::update_jobs), so that if its contact
    /// was erased meanwhile and the claim is lost, those events follow the erased contact's
    /// replacement; a lost claim is [`Error::LeaseLost`], as from `update_job`.
    async fn dead_letter(
        &self,
        job: &Job,
        variant: &VariantId,
        reason: String,
        also: Option<EventKind>,
        stats: &mut RunStats,
    ) -> Result<()> {
        let failed = EventKind::Failed {
            reason: reason.clone(),
        };
        let events: Vec<Event> = std::iter::once(failed)
            .chain(also)
            .map(|kind| self.event(job, Some(variant), kind))
            .collect();
        self.inner.sink.record(&events).await?;
        let update = JobUpdate::DeadLetter { reason };
        let lost = self
            .inner
            .store
            .update_jobs(&[(job, update)], self.now())
            .await?;
        if !lost.is_empty() {
            return Err(Error::LeaseLost(job.key.to_string()));
        }
        stats.dead_lettered += 1;
        Ok(())
    }

    /// The limiter key of this agent's sending account.
    pub(crate) fn limit_key(&self) -> String {
        format!("send:{}", self.inner.transport.name())
    }

    /// Waits for a send slot from the rate limiter, by the agent's clock.
    ///
    /// # Errors
    /// When a shared limiter cannot be reached.
    pub(crate) async fn pace(&self) -> Result<()> {
        // Nothing to write while waiting.
        self.pace_recording(&mut Completions::default(), &HashMap::new())
            .await
            .map(drop)
    }

    /// Counts a block against the sending account; on a burst, pauses every running campaign.
    /// Returns how many campaigns it paused.
    pub(crate) async fn note_block(&self) -> Result<u64> {
        let Some(alarm) = self.inner.blocks.record(true, self.now()) else {
            return Ok(0);
        };
        let reason = format!(
            "{} recipients blocked the sending account against {} sends in the last {}h",
            alarm.blocks,
            alarm.sends,
            self.inner.blocks.window().as_hours()
        );
        tracing::warn!(%reason, "mia.health pausing every running campaign");
        self.pause_account(&reason).await
    }

    /// Pauses every running campaign: the sending account must rest. Returns how many.
    async fn pause_account(&self, reason: &str) -> Result<u64> {
        let mut paused = 0;
        for campaign in self
            .inner
            .store
            .campaigns_in(CampaignState::Running)
            .await?
        {
            let op = self.operator().with_actor(self.worker_actor());
            let span = super::campaign_span(&campaign.id, "pause");
            match op.pause(&campaign.id, reason).instrument(span).await {
                Ok(_) => paused += 1,
                // Another worker paused it first.
                Err(Error::InvalidTransition { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(paused)
    }

    /// Tells every worker sharing the limiter to hold off (Telegram's FloodWait).
    async fn freeze_sends(&self, until: Timestamp) -> Result<()> {
        match &self.inner.limiter {
            Some(limiter) => limiter.freeze(&self.limit_key(), self.now(), until).await,
            None => Ok(()),
        }
    }
}
