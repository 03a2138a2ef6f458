//! Campaigns and the review queue: create, review, launch, run, report.

use std::ffi::c_char;

use jiff::SignedDuration;
use mia::analytics::CampaignReport;
use mia::{CampaignId, ReviewId, ReviewState};
use serde::Serialize;

use crate::agent::{AgentEntry, MiaAgent, with_agent};
use crate::boundary;
use crate::error::{FfiError, FfiResult, MiaStatus};
use crate::strings::{OutString, json_arg, opt_json_arg, str_arg};
use crate::wire::{CampaignInput, RunOptions};

/// Creates a campaign: the offline copywriter writes the variants and the content guard checks
/// each one. `spec_json` is `{"name", "product", "offer"}` with optional `"purpose"` (default
/// `"marketing"`), `"call_to_action_url"`, `"tone"`, `"language"` (BCP 47, default `"en"`),
/// `"variant_count"` (1 to 8, default 2) and `"audience"` (contact ids; default every
/// contact: only those with consent for the purpose are ever sent to).
///
/// Stores the campaign as JSON in `*out_campaign_json`: its `"id"`, `"state"` (`"approved"`,
/// `"in_review"` while a human must decide an escalated variant, or `"aborted"` when every
/// variant was denied) and `"variants"` with the rules that fired.
///
/// # Safety
/// `agent` is a handle or `NULL`; `spec_json` is `NULL` or a NUL-terminated string;
/// `out_campaign_json` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mia_campaign_create(
    agent: *mut MiaAgent,
    spec_json: *const c_char,
    out_campaign_json: *mut *mut c_char,
) -> MiaStatus {
    boundary::run("mia_campaign_create", || {
        // SAFETY: the caller promises `out_campaign_json` is valid for a write.
        let out = unsafe { OutString::string(out_campaign_json, "out_campaign_json") }?;
        // SAFETY: the caller promises a NUL-terminated string or NULL.
        let input: CampaignInput = unsafe { json_arg(spec_json, "spec_json") }?;
        with_agent(agent, |entry, agent| {
            let campaign = entry.block_on(agent.create_campaign(input.into_spec()))?;
            out.set_json(&campaign)
        })
    })
}

/// Queues an approved campaign and starts it: one job per audience member with valid consent,
/// a skipped record (with the reason) for everyone else. Sending happens in [`mia_agent_run`].
/// Stores `{"queued", "no_consent", "withdrawn", "expired"}` in `*out_summary_json`.
///
/// `MIA_INVALID_STATE` while the campaign waits for review or once it was launched;
/// `MIA_NOT_FOUND` for an unknown id.
///
/// # Safety
/// `agent` is a handle or `NULL`; `campaign_id` is `NULL` or a NUL-terminated string;
/// `out_summary_json` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mia_campaign_launch(
    agent: *mut MiaAgent,
    campaign_id: *const c_char,
    out_summary_json: *mut *mut c_char,
) -> MiaStatus {
    boundary::run("mia_campaign_launch", || {
        // SAFETY: the caller promises `out_summary_json` is valid for a write.
        let out = unsafe { OutString::string(out_summary_json, "out_summary_json") }?;
        // SAFETY: the caller promises a NUL-terminated string or NULL.
        let id = CampaignId::new(unsafe { str_arg(campaign_id, "campaign_id") }?);
        with_agent(agent, |entry, agent| {
            let summary = entry.block_on(agent.schedule(&id, None))?;
            entry.block_on(agent.start(&id))?;
            out.set_json(&summary)
        })
    })
}

/// What a run did.
#[derive(Serialize)]
struct RunReport {
    /// The worker, until no job of a running campaign was open.
    run: mia::RunStats,
    /// Inbound events collected afterwards, for the attribution window.
    attribution: mia::RunStats,
    /// The virtual clock at the end.
    now: jiff::Timestamp,
}

/// Runs the worker in virtual time until no job of a running campaign is open (every send
/// through the consent ledger and the send guard, quiet hours waited out in virtual time),
/// then keeps collecting reads, clicks, purchases and STOPs for `"attribution_hours"` more
/// virtual hours (default 48, at most 720). `options_json` may be `NULL`.
///
/// Stores `{"run": stats, "attribution": stats, "now": time}` in `*out_stats_json`, where
/// stats are `{"sent", "skipped", "deferred", "retried", "dead_lettered", "held", "inbound",
/// "paused_for_spam"}`. Delivery events reach the event callback before this returns.
///
/// # Safety
/// `agent` is a handle or `NULL`; `options_json` is `NULL` or a NUL-terminated string;
/// `out_stats_json` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mia_agent_run(
    agent: *mut MiaAgent,
    options_json: *const c_char,
    out_stats_json: *mut *mut c_char,
) -> MiaStatus {
    boundary::run("mia_agent_run", || {
        // SAFETY: the caller promises `out_stats_json` is valid for a write.
        let out = unsafe { OutString::string(out_stats_json, "out_stats_json") }?;
        // SAFETY: the caller promises a NUL-terminated string or NULL.
        let options: RunOptions = unsafe { opt_json_arg(options_json, "options_json") }?;
        let hours = options.attribution_hours.unwrap_or(48);
        if hours > 720 {
            return Err(FfiError::invalid(format!(
                "attribution_hours must be at most 720, got {hours}"
            )));
        }
        with_agent(agent, |entry, agent| {
            let run = entry.block_on(agent.run_until_idle())?;
            let until = agent.now() + SignedDuration::from_hours(i64::from(hours));
            let attribution = entry.block_on(agent.process_inbound_until(until))?;
            out.set_json(&RunReport {
                run,
                attribution,
                now: agent.now(),
            })
        })
    })
}

/// Stores a campaign's report as JSON in `*out_report_json`: `"state"`, `"audience"`,
/// `"sent"`, `"skipped"` and `"cancelled"` and `"failed"` by reason, `"open"`, and per variant
/// its text, sends, deliveries, reads, clicks, replies, purchases, revenue, STOPs and blocks.
/// Every audience member is counted exactly once.
///
/// # Safety
/// `agent` is a handle or `NULL`; `campaign_id` is `NULL` or a NUL-terminated string;
/// `out_report_json` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mia_campaign_report(
    agent: *mut MiaAgent,
    campaign_id: *const c_char,
    out_report_json: *mut *mut c_char,
) -> MiaStatus {
    boundary::run("mia_campaign_report", || {
        // SAFETY: the caller promises `out_report_json` is valid for a write.
        let out = unsafe { OutString::string(out_report_json, "out_report_json") }?;
        // SAFETY: the caller promises a NUL-terminated string or NULL.
        let id = CampaignId::new(unsafe { str_arg(campaign_id, "campaign_id") }?);
        with_agent(agent, |entry, agent| {
            entry.block_on(agent.campaign(&id))?;
            let report = entry.block_on(CampaignReport::build(agent.store().as_ref(), &id))?;
            out.set_json(&report)
        })
    })
}

/// Stores the review items waiting for a human, oldest first, as a JSON array in
/// `*out_reviews_json`.
///
/// # Safety
/// `agent` is a handle or `NULL`; `out_reviews_json` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mia_review_list(
    agent: *mut MiaAgent,
    out_reviews_json: *mut *mut c_char,
) -> MiaStatus {
    boundary::run("mia_review_list", || {
        // SAFETY: the caller promises `out_reviews_json` is valid for a write.
        let out = unsafe { OutString::string(out_reviews_json, "out_reviews_json") }?;
        with_agent(agent, |entry, agent| {
            out.set_json(&entry.block_on(agent.pending_reviews())?)
        })
    })
}

/// A reviewer's decision.
enum Decision<'a> {
    Approve,
    Edit(&'a str),
    Reject(&'a str),
}

fn decide(
    entry: &AgentEntry,
    agent: &mia::Agent,
    id: &ReviewId,
    reviewer: &str,
    decision: Decision<'_>,
) -> FfiResult<mia::Campaign> {
    let item = entry
        .block_on(agent.store().review(id))?
        .ok_or_else(|| FfiError::from(mia::Error::not_found("review", id)))?;
    if item.state != ReviewState::Pending {
        return Err(FfiError::new(
            MiaStatus::MIA_INVALID_STATE,
            format!("review {id} was already decided"),
        ));
    }
    let campaign = match decision {
        Decision::Approve => entry.block_on(agent.approve_review(id, reviewer)),
        Decision::Edit(text) => entry.block_on(agent.edit_review(id, reviewer, text)),
        Decision::Reject(note) => entry.block_on(agent.reject_review(id, reviewer, note)),
    }?;
    Ok(campaign)
}

/// Approves a review item as it is, in the name of `reviewer` (required: decisions are
/// audited). Stores the campaign as JSON in `*out_campaign_json`; once no variant waits for
/// review it is `"approved"` and can be launched. `MIA_INVALID_STATE` if already decided.
///
/// # Safety
/// `agent` is a handle or `NULL`; `review_id` and `reviewer` are `NULL` or NUL-terminated
/// strings; `out_campaign_json` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mia_review_approve(
    agent: *mut MiaAgent,
    review_id: *const c_char,
    reviewer: *const c_char,
    out_campaign_json: *mut *mut c_char,
) -> MiaStatus {
    boundary::run("mia_review_approve", || {
        // SAFETY: the caller promises `out_campaign_json` is valid for a write.
        let out = unsafe { OutString::string(out_campaign_json, "out_campaign_json") }?;
        // SAFETY: the caller promises NUL-terminated strings or NULL.
        let (id, reviewer) = unsafe {
            (
                str_arg(review_id, "review_id")?,
                str_arg(reviewer, "reviewer")?,
            )
        };
        with_agent(agent, |entry, agent| {
            let campaign = decide(
                entry,
                agent,
                &ReviewId::new(id),
                reviewer,
                Decision::Approve,
            )?;
            out.set_json(&campaign)
        })
    })
}

/// Approves a copy variant with new `text`, which must pass the content guard outright
/// (`MIA_INVALID_INPUT` names the rule otherwise). Held sends cannot be edited.
///
/// # Safety
/// As [`mia_review_approve`], and `text` is `NULL` or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mia_review_edit(
    agent: *mut MiaAgent,
    review_id: *const c_char,
    reviewer: *const c_char,
    text: *const c_char,
    out_campaign_json: *mut *mut c_char,
) -> MiaStatus {
    boundary::run("mia_review_edit", || {
        // SAFETY: the caller promises `out_campaign_json` is valid for a write.
        let out = unsafe { OutString::string(out_campaign_json, "out_campaign_json") }?;
        // SAFETY: the caller promises NUL-terminated strings or NULL.
        let (id, reviewer, text) = unsafe {
            (
                str_arg(review_id, "review_id")?,
                str_arg(reviewer, "reviewer")?,
                str_arg(text, "text")?,
            )
        };
        with_agent(agent, |entry, agent| {
            let id = ReviewId::new(id);
            let campaign = decide(entry, agent, &id, reviewer, Decision::Edit(text))?;
            out.set_json(&campaign)
        })
    })
}

/// Rejects a review item with a `note` (may be empty, not `NULL`): a rejected variant or send
/// is never sent.
///
/// # Safety
/// As [`mia_review_approve`], and `note` is `NULL` or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mia_review_reject(
    agent: *mut MiaAgent,
    review_id: *const c_char,
    reviewer: *const c_char,
    note: *const c_char,
    out_campaign_json: *mut *mut c_char,
) -> MiaStatus {
    boundary::run("mia_review_reject", || {
        // SAFETY: the caller promises `out_campaign_json` is valid for a write.
        let out = unsafe { OutString::string(out_campaign_json, "out_campaign_json") }?;
        // SAFETY: the caller promises NUL-terminated strings or NULL.
        let (id, reviewer, note) = unsafe {
            (
                str_arg(review_id, "review_id")?,
                str_arg(reviewer, "reviewer")?,
                str_arg(note, "note")?,
            )
        };
        with_agent(agent, |entry, agent| {
            let id = ReviewId::new(id);
            let campaign = decide(entry, agent, &id, reviewer, Decision::Reject(note))?;
            out.set_json(&campaign)
        })
    })
}
