//! What the agent writes to the audit log: every send-policy and content-policy decision,
//! consent change, review decision and campaign state change, as [`AuditEvent`]s without
//! personal data (ids, rule names, decisions; the consent record that allowed a send is named
//! by its time, method and notice version, never by its evidence text).

use jiff::Timestamp;
use serde_json::{Value, json};

use super::Agent;
use crate::audit::{AuditAction, AuditEvent};
use crate::campaign::{Campaign, CampaignState};
use crate::consent::{ConsentRecord, current_consent};
use crate::error::Result;
use crate::ids::{ContactId, IdempotencyKey};
use crate::policy::{Decision, RuleHit, Verdict};
use crate::store::Job;

/// A decision as JSON: `"allow"`, `"deny"`, `"escalate"`, or `"defer"` with `until`.
pub(crate) fn decision_json(d: &Decision) -> Value {
    decision(d)
}

fn decision(d: &Decision) -> Value {
    match d {
        Decision::Allow => json!("allow"),
        Decision::Deny => json!("deny"),
        Decision::Escalate => json!("escalate"),
        Decision::Defer { until } => json!({ "defer": until.to_string() }),
    }
}

/// The trace of a verdict. The consent rule's detail quotes the evidence reference, which may
/// hold personal data, so its hit keeps only rule and decision; the record itself is named
/// by [`consent_ref`].
pub(crate) fn trace(hits: &[RuleHit]) -> Value {
    Value::Array(
        hits.iter()
            .map(|h| {
                if h.rule == "consent" {
                    json!({ "rule": h.rule, "decision": decision(&h.decision) })
                } else {
                    json!({ "rule": h.rule, "decision": decision(&h.decision), "detail": h.detail })
                }
            })
            .collect(),
    )
}

/// A consent record named without personal data: purpose, status, basis, when, how, notice.
pub(crate) fn consent_ref(r: &ConsentRecord) -> Value {
    json!({
        "purpose": r.purpose.as_str(),
        "status": r.status,
        "basis": r.basis,
        "recorded_at": r.recorded_at.to_string(),
        "method": r.evidence.method,
        "notice_version": r.notice_version,
        "expires_at": r.expires_at.map(|t| t.to_string()),
    })
}

/// The entry for a send-policy decision on a campaign job.
pub(crate) fn send_decision(
    actor: &str,
    job: &Job,
    verdict: &Verdict,
    history: &[ConsentRecord],
    now: Timestamp,
) -> AuditEvent {
    let consent = current_consent(history, &job.purpose, now).map(consent_ref);
    AuditEvent::new(
        now,
        actor,
        AuditAction::PolicyDecision,
        Some(&job.contact),
        json!({
            "policy": "send",
            "campaign": job.campaign.as_str(),
            "job": job.key.as_str(),
            "step": job.step,
            "purpose": job.purpose.as_str(),
            "decision": decision(&verdict.decision),
            "rule": verdict.deciding_rule(),
            "trace": trace(&verdict.trace),
            "consent": consent,
        }),
    )
}

/// The entry for a service reply's send decision (a STOP confirmation, a `/privacy` answer):
/// the answer `tag`, the update it answers, the verdict and its trace. Never the text.
pub(crate) fn service_reply_decision(
    actor: &str,
    contact: &ContactId,
    key: &IdempotencyKey,
    verdict: &Verdict,
    now: Timestamp,
) -> AuditEvent {
    AuditEvent::new(
        now,
        actor,
        AuditAction::PolicyDecision,
        Some(contact),
        json!({
            "policy": "send",
            "kind": "service_reply",
            "reply": key.as_str(),
            "decision": decision(&verdict.decision),
            "rule": verdict.deciding_rule(),
            "trace": trace(&verdict.trace),
        }),
    )
}

/// The entry for a consent record appended (a grant, or a withdrawal with the jobs it
/// cancelled).
pub(crate) fn consent_change(
    actor: &str,
    record: &ConsentRecord,
    cancelled: Option<u64>,
) -> AuditEvent {
    let mut detail = consent_ref(record);
    if let (Some(n), Some(map)) = (cancelled, detail.as_object_mut()) {
        map.insert("cancelled_jobs".into(), json!(n));
    }
    AuditEvent::new(
        record.recorded_at,
        actor,
        AuditAction::ConsentChange,
        Some(&record.contact),
        detail,
    )
}

/// The entry for a campaign moving from `from` to its current state.
pub(crate) fn campaign_state(
    actor: &str,
    campaign: &Campaign,
    from: CampaignState,
    extra: Value,
) -> AuditEvent {
    let mut detail = json!({
        "campaign": campaign.id.as_str(),
        "from": from.as_str(),
        "to": campaign.state.as_str(),
        "reason": campaign.state_reason,
    });
    if let (Value::Object(extra), Some(map)) = (extra, detail.as_object_mut()) {
        map.extend(extra);
    }
    AuditEvent::new(
        campaign.updated_at,
        actor,
        AuditAction::CampaignState,
        None,
        detail,
    )
}

/// The entry for a review decision; `contact` is the recipient of a held send.
pub(crate) fn review_decision(
    reviewer: &str,
    item: &crate::store::ReviewItem,
    contact: Option<&ContactId>,
    at: Timestamp,
) -> AuditEvent {
    let state = match &item.state {
        crate::store::ReviewState::Pending => "pending",
        crate::store::ReviewState::Approved => "approved",
        crate::store::ReviewState::Edited { .. } => "edited",
        crate::store::ReviewState::Rejected => "rejected",
    };
    AuditEvent::new(
        at,
        format!("reviewer:{reviewer}"),
        AuditAction::ReviewDecision,
        contact,
        json!({
            "review": item.id.as_str(),
            "campaign": item.campaign.as_str(),
            "subject": item.subject,
            "decision": state,
            "rules": item.trace.iter().map(|h| h.rule.as_str()).collect::<Vec<_>>(),
            "noted": item.note.is_some(),
        }),
    )
}

impl Agent {
    /// Who the worker is, as an audit actor.
    pub(crate) fn worker_actor(&self) -> String {
        format!("worker:{}", self.inner.config.worker_id)
    }

    /// Appends `events` to the audit trail (nothing for none).
    ///
    /// # Errors
    /// When the trail cannot append them.
    pub(crate) async fn audit(&self, events: &[AuditEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        self.inner.audit.record(events).await
    }

    /// The audit trail the agent writes to (every decision it makes is there).
    pub fn audit_trail(&self) -> &std::sync::Arc<dyn crate::AuditTrail> {
        &self.inner.audit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::{Evidence, Purpose};

    #[test]
    fn the_consent_evidence_reference_never_reaches_the_log() {
        let at = Timestamp::from_second(1_800_000_000).unwrap();
        let grant = ConsentRecord::grant(
            "c1",
            Purpose::marketing(),
            Evidence::new("web_form", "email=ana@example.com"),
            "v3",
            at,
        );
        let event = consent_change("host", &grant, None);
        let text = event.detail.to_string();
        assert!(!text.contains("ana@example.com"), "{text}");
        assert!(text.contains("web_form") && text.contains("v3"), "{text}");
        let verdict = crate::policy::Verdict::of(
            "consent",
            Decision::Allow,
            "granted via web_form (email=ana@example.com)",
        );
        let traced = trace(&verdict.trace).to_string();
        assert!(!traced.contains("ana@example.com"), "{traced}");
    }
}
