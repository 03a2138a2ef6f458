//! Observability: the metrics the [`Agent`](crate::Agent) records through the [`metrics`]
//! facade, and the names of the spans it opens.
//!
//! # Metrics
//!
//! The agent records into whatever recorder the host installed (none: every call is a no-op).
//! `mia worker --metrics 127.0.0.1:9464` installs a Prometheus exporter; a host installs its own
//! (`metrics-exporter-prometheus`, StatsD, OpenTelemetry) and may call [`describe`] after it.
//! Label values are bounded sets (outcome codes, rule names, providers, campaign ids): never a
//! contact, a chat or message text.
//!
//! | Name | Kind | Labels | Counts |
//! |------|------|--------|--------|
//! | `mia_sends_total` | counter | `outcome` | jobs the send path decided, by [outcome](JobOutcome) |
//! | `mia_policy_denials_total` | counter | `policy` (`send`, `content`), `rule` | denials, by the rule that decided |
//! | `mia_send_retries_total` | counter | | sends put back for another attempt (rate limits, transient errors) |
//! | `mia_flood_waits_total` | counter | | waits Telegram asked for (FloodWait, 429 `retry_after`) |
//! | `mia_flood_wait_seconds_total` | counter | | the seconds of those waits, each rounded up |
//! | `mia_outbox_jobs` | gauge | `campaign`, `state` | a campaign's jobs by state (`pending`, `claimed`, `held`, `sent`, `skipped`, `dead_letter`, `cancelled`), set after each worker batch; `sum by (state)` is the queue depth |
//! | `mia_llm_tokens_total` | counter | `direction` (`input`, `output`), `provider` | LLM tokens |
//! | `mia_llm_cost_micro_usd_total` | counter | `provider` | LLM cost in millionths of a US dollar, when the provider knows it |
//! | `mia_inbound_events_total` | counter | `kind` (`start`, `stop`, `command`, `text`, `delivered`, `read`, `clicked`, `converted`, `blocked`) | inbound events handled |
//!
//! # Spans
//!
//! Stable names, for filters and dashboards. Fields are recorded as they become known.
//!
//! | Name | Where | Fields |
//! |------|-------|--------|
//! | [`SPAN_CAMPAIGN`] `mia.campaign` | creating (copy and guards), scheduling, starting, pausing, resuming, aborting and completing a campaign | `campaign`, `action`, `variants` |
//! | [`SPAN_LLM`] `mia.llm` | each LLM call | `provider`, `model`, `input_tokens`, `output_tokens`, `cost_micro_usd` |
//! | [`SPAN_POLICY`] `mia.policy` | each send and content policy decision | `policy`, `campaign`, `correlation_id` (sends), `variant` (content), `decision`, `rule` |
//! | [`SPAN_SEND`] `mia.send` | each outbox job the worker takes | `campaign`, `correlation_id`, `variant`, `outcome`, `reason`, `contact` (only when opted in) |
//! | [`SPAN_INBOUND`] `mia.inbound` | each inbound event | `kind`, `update_id`, `correlation_id` (when it follows one of our sends) |
//!
//! The correlation id of a job is its idempotency key (`Job::key`, a digest, not a contact
//! id): it is on the job's `mia.send` and `mia.policy` spans, the transport and event-sink calls
//! for the job run inside them, and an inbound read, click or reply to the message carries it
//! again on its `mia.inbound` span. Message text, chat ids and contact ids never appear in
//! spans, unless the host calls
//! [`AgentBuilder::trace_personal_data(true)`](crate::AgentBuilder::trace_personal_data), which
//! adds the contact id to `mia.send`.

use std::time::Duration;

use ::metrics::{Unit, counter, describe_counter, describe_gauge, gauge};

use crate::ids::CampaignId;
use crate::llm::Completion;
use crate::policy::Decision;
use crate::store::JobCounts;

/// Jobs the send path decided, labelled `outcome`.
pub const SENDS_TOTAL: &str = "mia_sends_total";
/// Policy denials, labelled `policy` and `rule`.
pub const POLICY_DENIALS_TOTAL: &str = "mia_policy_denials_total";
/// Sends put back for another attempt.
pub const SEND_RETRIES_TOTAL: &str = "mia_send_retries_total";
/// Waits Telegram asked for.
pub const FLOOD_WAITS_TOTAL: &str = "mia_flood_waits_total";
/// Seconds of the waits Telegram asked for (each rounded up to a whole second).
pub const FLOOD_WAIT_SECONDS_TOTAL: &str = "mia_flood_wait_seconds_total";
/// A campaign's jobs by state (gauge), labelled `campaign` and `state`.
pub const OUTBOX_JOBS: &str = "mia_outbox_jobs";
/// LLM tokens, labelled `direction` and `provider`.
pub const LLM_TOKENS_TOTAL: &str = "mia_llm_tokens_total";
/// LLM cost in millionths of a US dollar, labelled `provider`.
pub const LLM_COST_MICRO_USD_TOTAL: &str = "mia_llm_cost_micro_usd_total";
/// Inbound events handled, labelled `kind`.
pub const INBOUND_EVENTS_TOTAL: &str = "mia_inbound_events_total";

/// The span around campaign creation and state changes.
pub const SPAN_CAMPAIGN: &str = "mia.campaign";
/// The span around one LLM call.
pub const SPAN_LLM: &str = "mia.llm";
/// The span around one policy decision.
pub const SPAN_POLICY: &str = "mia.policy";
/// The span around one outbox job.
pub const SPAN_SEND: &str = "mia.send";
/// The span around one inbound event.
pub const SPAN_INBOUND: &str = "mia.inbound";

/// What the send path did with one job: the `outcome` label of `mia_sends_total` and the
/// `outcome` field of the `mia.send` span.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JobOutcome {
    /// Telegram accepted the message.
    Sent,
    /// The send policy refused it (see `mia_policy_denials_total` for the rule).
    Skipped,
    /// The send policy deferred it (quiet hours, frequency caps).
    Deferred,
    /// The send policy escalated it to a reviewer.
    Held,
    /// The campaign was no longer running when the job came up; the job waits.
    Paused,
    /// Telegram asked to wait (FloodWait, a rate limit); the job is retried after it.
    RetryAfter,
    /// Telegram limited the account for spam (PEER_FLOOD); every campaign pauses.
    SpamLimited,
    /// The recipient blocked the sending account.
    Blocked,
    /// Another permanent failure; the job is a dead letter.
    Failed,
    /// A transient transport error; the job is retried.
    TransientError,
    /// The transport is misconfigured; the run stops and the job waits.
    ConfigError,
    /// A transport error that is not retryable (or out of attempts); the job is a dead letter.
    Error,
    /// An interrupted send on a transport that cannot recognise a resend; a dead letter.
    OutcomeUnknown,
}

impl JobOutcome {
    /// The label value (`"sent"`, `"retry_after"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            JobOutcome::Sent => "sent",
            JobOutcome::Skipped => "skipped",
            JobOutcome::Deferred => "deferred",
            JobOutcome::Held => "held",
            JobOutcome::Paused => "paused",
            JobOutcome::RetryAfter => "retry_after",
            JobOutcome::SpamLimited => "spam_limited",
            JobOutcome::Blocked => "blocked",
            JobOutcome::Failed => "failed",
            JobOutcome::TransientError => "transient_error",
            JobOutcome::ConfigError => "config_error",
            JobOutcome::Error => "error",
            JobOutcome::OutcomeUnknown => "outcome_unknown",
        }
    }
}

/// Registers the unit and description of every metric above with the installed recorder (a
/// Prometheus exporter prints them as `# HELP` lines). Call it once after installing one;
/// recording works without it.
pub fn describe() {
    describe_counter!(
        SENDS_TOTAL,
        Unit::Count,
        "Jobs the send path decided, by outcome"
    );
    describe_counter!(
        POLICY_DENIALS_TOTAL,
        Unit::Count,
        "Send and content policy denials, by the rule that decided"
    );
    describe_counter!(
        SEND_RETRIES_TOTAL,
        Unit::Count,
        "Sends put back for another attempt"
    );
    describe_counter!(
        FLOOD_WAITS_TOTAL,
        Unit::Count,
        "Waits Telegram asked for (FloodWait, retry_after)"
    );
    describe_counter!(
        FLOOD_WAIT_SECONDS_TOTAL,
        Unit::Seconds,
        "Seconds of the waits Telegram asked for, each rounded up"
    );
    describe_gauge!(
        OUTBOX_JOBS,
        Unit::Count,
        "A campaign's outbox jobs by state, after the worker's last batch"
    );
    describe_counter!(
        LLM_TOKENS_TOTAL,
        Unit::Count,
        "LLM tokens, by direction and provider"
    );
    describe_counter!(
        LLM_COST_MICRO_USD_TOTAL,
        "LLM cost in millionths of a US dollar, when the provider knows it"
    );
    describe_counter!(
        INBOUND_EVENTS_TOTAL,
        Unit::Count,
        "Inbound events handled, by kind"
    );
}

/// Counts one job the send path decided.
pub(crate) fn send(outcome: JobOutcome) {
    counter!(SENDS_TOTAL, "outcome" => outcome.as_str()).increment(1);
}

/// Counts one denial of `policy` (`"send"` or `"content"`) by `rule`.
pub(crate) fn denial(policy: &'static str, rule: &str) {
    counter!(POLICY_DENIALS_TOTAL, "policy" => policy, "rule" => rule.to_owned()).increment(1);
}

/// Counts one send put back for another attempt.
pub(crate) fn send_retry() {
    counter!(SEND_RETRIES_TOTAL).increment(1);
}

/// Counts one wait Telegram asked for, and its length.
pub(crate) fn flood_wait(after: Duration) {
    counter!(FLOOD_WAITS_TOTAL).increment(1);
    let seconds = after.as_secs() + u64::from(after.subsec_nanos() > 0);
    counter!(FLOOD_WAIT_SECONDS_TOTAL).increment(seconds);
}

/// Sets the outbox gauge of `campaign` from its job counts.
pub(crate) fn outbox(campaign: &CampaignId, counts: &JobCounts) {
    for (state, n) in [
        ("pending", counts.pending),
        ("claimed", counts.claimed),
        ("held", counts.held),
        ("sent", counts.sent),
        ("skipped", counts.skipped),
        ("dead_letter", counts.dead_letter),
        ("cancelled", counts.cancelled),
    ] {
        // Job counts stay far below 2^53: the conversion is exact.
        #[allow(clippy::cast_precision_loss)]
        let value = n as f64;
        gauge!(OUTBOX_JOBS, "campaign" => campaign.as_str().to_owned(), "state" => state)
            .set(value);
    }
}

/// Opens the `mia.llm` span of one call to `provider`; record the answer on it with
/// [`llm_completion`].
pub(crate) fn llm_span(provider: &str) -> tracing::Span {
    tracing::info_span!(
        "mia.llm",
        provider,
        model = tracing::field::Empty,
        input_tokens = tracing::field::Empty,
        output_tokens = tracing::field::Empty,
        cost_micro_usd = tracing::field::Empty,
    )
}

/// Records one LLM completion: its model, tokens and cost on `span` (a span from [`llm_span`];
/// `Span::none()` records nothing there), and its tokens and cost (when known) as metrics
/// labelled `provider`.
pub(crate) fn llm_completion(span: &tracing::Span, provider: &str, completion: &Completion) {
    let usage = completion.usage;
    span.record("model", completion.model.as_str());
    span.record("input_tokens", usage.input_tokens);
    span.record("output_tokens", usage.output_tokens);
    if let Some(cost) = completion.cost_micro_usd {
        span.record("cost_micro_usd", cost);
    }
    counter!(LLM_TOKENS_TOTAL, "direction" => "input", "provider" => provider.to_owned())
        .increment(usage.input_tokens);
    counter!(LLM_TOKENS_TOTAL, "direction" => "output", "provider" => provider.to_owned())
        .increment(usage.output_tokens);
    if let Some(cost) = completion.cost_micro_usd {
        counter!(LLM_COST_MICRO_USD_TOTAL, "provider" => provider.to_owned()).increment(cost);
    }
}

/// The `decision` field of a `mia.policy` span: `allow`, `deny`, `defer` or `escalate`.
pub(crate) fn decision_name(decision: &Decision) -> &'static str {
    match decision {
        Decision::Allow => "allow",
        Decision::Deny => "deny",
        Decision::Defer { .. } => "defer",
        Decision::Escalate => "escalate",
    }
}

/// Counts one inbound event of `kind`.
pub(crate) fn inbound(kind: &'static str) {
    counter!(INBOUND_EVENTS_TOTAL, "kind" => kind).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_labels_are_snake_case_and_distinct() {
        let all = [
            JobOutcome::Sent,
            JobOutcome::Skipped,
            JobOutcome::Deferred,
            JobOutcome::Held,
            JobOutcome::Paused,
            JobOutcome::RetryAfter,
            JobOutcome::SpamLimited,
            JobOutcome::Blocked,
            JobOutcome::Failed,
            JobOutcome::TransientError,
            JobOutcome::ConfigError,
            JobOutcome::Error,
            JobOutcome::OutcomeUnknown,
        ];
        let labels: std::collections::BTreeSet<_> = all.iter().map(|o| o.as_str()).collect();
        assert_eq!(labels.len(), all.len());
        assert!(
            labels
                .iter()
                .all(|l| l.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        );
    }
}
