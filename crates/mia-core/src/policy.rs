//! The guards: [`ContentPolicy`] checks words, [`SendPolicy`] checks sends.
//!
//! Both are synchronous and CPU-only: the agent loads everything a decision needs (consent
//! history, recent sends, the contact's time zone) into a context first, so a policy is a pure
//! function that is easy to test and fast to run. Policies compose in order and the first
//! verdict that is not [`Decision::Allow`] wins.

use std::sync::Arc;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::consent::{ConsentRecord, ConsentState, Purpose, consent_state, current_consent};
use crate::contact::Contact;
use crate::ids::CampaignId;

/// A policy's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "decision")]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// Never (for this job).
    Deny,
    /// Not before `until`.
    Defer {
        /// The earliest time to try again.
        until: Timestamp,
    },
    /// A human must decide.
    Escalate,
}

/// One rule that fired, with why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleHit {
    /// The rule's stable name (`"consent"`, `"quiet_hours"`, `"blacklist"`).
    pub rule: String,
    /// What the rule decided.
    pub decision: Decision,
    /// Why, for the audit trail and the reviewer (no message text, no personal data).
    pub detail: String,
}

/// A decision and the trace of rules that fired on the way to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// The decision.
    pub decision: Decision,
    /// Rules that fired, in order (allow hits that carry evidence, such as the consent record
    /// used, are kept too).
    pub trace: Vec<RuleHit>,
}

impl Verdict {
    /// Allow, with nothing to report.
    pub fn allow() -> Self {
        Self {
            decision: Decision::Allow,
            trace: Vec::new(),
        }
    }

    /// A verdict of one rule.
    pub fn of(rule: impl Into<String>, decision: Decision, detail: impl Into<String>) -> Self {
        Self {
            decision,
            trace: vec![RuleHit {
                rule: rule.into(),
                decision,
                detail: detail.into(),
            }],
        }
    }

    /// Deny by `rule`.
    pub fn deny(rule: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::of(rule, Decision::Deny, detail)
    }

    /// Defer until `until` by `rule`.
    pub fn defer(rule: impl Into<String>, until: Timestamp, detail: impl Into<String>) -> Self {
        Self::of(rule, Decision::Defer { until }, detail)
    }

    /// Escalate to a human by `rule`.
    pub fn escalate(rule: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::of(rule, Decision::Escalate, detail)
    }

    /// Whether the decision is [`Decision::Allow`].
    pub fn is_allow(&self) -> bool {
        self.decision == Decision::Allow
    }

    /// The rule that decided: the last hit whose decision is the verdict's.
    pub fn deciding_rule(&self) -> Option<&str> {
        self.trace
            .iter()
            .rev()
            .find(|h| h.decision == self.decision)
            .map(|h| h.rule.as_str())
    }
}

/// What a text is for, which decides the content rules that apply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentKind {
    /// Marketing copy (campaign variants, reviewers' edits): every rule applies, including
    /// the ones only marketing needs (who sends it, how to opt out).
    #[default]
    Marketing,
    /// A one-to-one answer to the person's own message (the reply assistant): the rules on
    /// what may be said apply; the marketing-only ones (sender identity, opt-out notice) do
    /// not.
    Answer,
    /// A post to a group or channel (`Agent::post_to_chat`): every rule but the opt-out
    /// notice, since members stop by leaving the chat.
    ChatPost,
}

/// What a content policy knows about the text it checks.
#[derive(Clone, Debug)]
pub struct ContentContext<'a> {
    /// The campaign the text is for.
    pub campaign: Option<&'a CampaignId>,
    /// The language of the text (BCP 47).
    pub language: &'a str,
    /// What the text is for.
    pub kind: ContentKind,
}

/// Checks text (LLM output, edits by reviewers) before it can be sent.
pub trait ContentPolicy: Send + Sync {
    /// The verdict on `text`. Must be deterministic and must not block.
    fn check(&self, text: &str, ctx: &ContentContext<'_>) -> Verdict;

    /// Like [`check`](Self::check), but the policy may also return a safer text to send instead
    /// (personal data redacted, say); the verdict is then on that text. The agent uses this for
    /// generated copy. Default: no rewrite.
    fn check_rewriting(&self, text: &str, ctx: &ContentContext<'_>) -> (Verdict, Option<String>) {
        (self.check(text, ctx), None)
    }
}

/// Why a message is being sent, which decides the rules that apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendKind {
    /// A campaign message: needs valid consent for the campaign's purpose.
    Campaign,
    /// A one-off answer to something the contact just sent (the confirmation of a STOP): allowed
    /// only while the contact's own message is fresh, never as marketing.
    ServiceReply {
        /// When the contact's message arrived.
        in_response_to: Timestamp,
    },
    /// A post to a group or channel the sender administers (`Agent::post_to_chat`): its members
    /// joined it themselves, so no one person's consent applies, but the content rules and the
    /// send rules on the chat's clock (quiet hours, weekdays) do. Never to a private chat.
    ChatPost,
}

/// Everything a send policy may look at. Built by the agent from the stores.
#[derive(Clone, Debug)]
pub struct SendContext<'a> {
    /// The recipient.
    pub contact: &'a Contact,
    /// Campaign or service reply.
    pub kind: SendKind,
    /// The purpose the message serves.
    pub purpose: &'a Purpose,
    /// The contact's consent history (all purposes), in insertion order.
    pub consent_history: &'a [ConsentRecord],
    /// When the contact was last sent a campaign message, newest first, at most the last 7 days.
    pub recent_sends: &'a [Timestamp],
    /// The campaign, if any.
    pub campaign: Option<&'a CampaignId>,
    /// Now, from the agent's clock.
    pub now: Timestamp,
}

/// Checks one send. Runs on every send; there is no path around it.
pub trait SendPolicy: Send + Sync {
    /// The verdict on this send. Must be deterministic and must not block.
    fn check(&self, ctx: &SendContext<'_>) -> Verdict;

    /// The verdict on a send a reviewer approved for the escalating rules `approved` (by
    /// name): a verdict that escalates for those rules alone allows instead (its hits stay in
    /// the trace). The default judges with [`check`](Self::check); a chain
    /// ([`SendPolicies`]) asks each of its policies in turn, so the policies after an approved
    /// escalation (a suppression list, a frequency cap, quiet hours) still judge the send.
    fn check_approving(&self, ctx: &SendContext<'_>, approved: &[String]) -> Verdict {
        let mut verdict = self.check(ctx);
        if escalates_only_for(&verdict, approved) {
            verdict.decision = Decision::Allow;
        }
        verdict
    }
}

impl<P: ContentPolicy + ?Sized> ContentPolicy for Arc<P> {
    fn check(&self, text: &str, ctx: &ContentContext<'_>) -> Verdict {
        (**self).check(text, ctx)
    }
    fn check_rewriting(&self, text: &str, ctx: &ContentContext<'_>) -> (Verdict, Option<String>) {
        (**self).check_rewriting(text, ctx)
    }
}

impl<P: ContentPolicy + ?Sized> ContentPolicy for Box<P> {
    fn check(&self, text: &str, ctx: &ContentContext<'_>) -> Verdict {
        (**self).check(text, ctx)
    }
    fn check_rewriting(&self, text: &str, ctx: &ContentContext<'_>) -> (Verdict, Option<String>) {
        (**self).check_rewriting(text, ctx)
    }
}

impl<P: SendPolicy + ?Sized> SendPolicy for Arc<P> {
    fn check(&self, ctx: &SendContext<'_>) -> Verdict {
        (**self).check(ctx)
    }
    fn check_approving(&self, ctx: &SendContext<'_>, approved: &[String]) -> Verdict {
        (**self).check_approving(ctx, approved)
    }
}

impl<P: SendPolicy + ?Sized> SendPolicy for Box<P> {
    fn check(&self, ctx: &SendContext<'_>) -> Verdict {
        (**self).check(ctx)
    }
    fn check_approving(&self, ctx: &SendContext<'_>, approved: &[String]) -> Verdict {
        (**self).check_approving(ctx, approved)
    }
}

/// Runs verdicts in order, collecting traces; the first non-allow verdict wins.
fn first_non_allow(verdicts: impl Iterator<Item = Verdict>) -> Verdict {
    let mut trace = Vec::new();
    for verdict in verdicts {
        trace.extend(verdict.trace);
        if verdict.decision != Decision::Allow {
            return Verdict {
                decision: verdict.decision,
                trace,
            };
        }
    }
    Verdict {
        decision: Decision::Allow,
        trace,
    }
}

/// Several content policies in order; the first verdict that is not allow wins.
#[derive(Clone, Default)]
pub struct ContentPolicies(Vec<Arc<dyn ContentPolicy>>);

impl ContentPolicies {
    /// An empty chain (allows everything).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a policy.
    #[must_use]
    pub fn with(mut self, policy: impl ContentPolicy + 'static) -> Self {
        self.0.push(Arc::new(policy));
        self
    }

    /// Whether the chain has no policy.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl ContentPolicy for ContentPolicies {
    fn check(&self, text: &str, ctx: &ContentContext<'_>) -> Verdict {
        first_non_allow(self.0.iter().map(|p| p.check(text, ctx)))
    }

    /// Each policy sees the text as the policies before it rewrote it.
    fn check_rewriting(&self, text: &str, ctx: &ContentContext<'_>) -> (Verdict, Option<String>) {
        let mut current: Option<String> = None;
        let mut trace = Vec::new();
        for policy in &self.0 {
            let (verdict, rewritten) =
                policy.check_rewriting(current.as_deref().unwrap_or(text), ctx);
            trace.extend(verdict.trace);
            if rewritten.is_some() {
                current = rewritten;
            }
            if verdict.decision != Decision::Allow {
                return (
                    Verdict {
                        decision: verdict.decision,
                        trace,
                    },
                    current,
                );
            }
        }
        (
            Verdict {
                decision: Decision::Allow,
                trace,
            },
            current,
        )
    }
}

/// Several send policies in order; the first verdict that is not allow wins.
#[derive(Clone, Default)]
pub struct SendPolicies(Vec<Arc<dyn SendPolicy>>);

impl SendPolicies {
    /// An empty chain (allows everything it is asked about).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a policy.
    #[must_use]
    pub fn with(mut self, policy: impl SendPolicy + 'static) -> Self {
        self.0.push(Arc::new(policy));
        self
    }

    pub(crate) fn push_arc(&mut self, policy: Arc<dyn SendPolicy>) {
        self.0.push(policy);
    }

    /// Whether the chain has no policy.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl SendPolicy for SendPolicies {
    fn check(&self, ctx: &SendContext<'_>) -> Verdict {
        first_non_allow(self.0.iter().map(|p| p.check(ctx)))
    }
    fn check_approving(&self, ctx: &SendContext<'_>, approved: &[String]) -> Verdict {
        first_non_allow(self.0.iter().map(|p| p.check_approving(ctx, approved)))
    }
}

/// Whether `verdict` escalates for rules of `approved` alone.
fn escalates_only_for(verdict: &Verdict, approved: &[String]) -> bool {
    verdict.decision == Decision::Escalate
        && verdict
            .trace
            .iter()
            .filter(|hit| hit.decision == Decision::Escalate)
            .all(|hit| approved.contains(&hit.rule))
}

/// The rule name under which the [`ConsentRule`] refuses a campaign send to a contact whose
/// processing is restricted (GDPR art. 18; see [`RESTRICTION_PURPOSE`](crate::RESTRICTION_PURPOSE)).
pub const RESTRICTED_RULE: &str = "restricted";

/// The rule name under which the [`ConsentRule`] refuses a campaign send after an objection to
/// direct marketing (see [`OBJECTION_METHOD`](crate::OBJECTION_METHOD)).
pub const OBJECTION_RULE: &str = "objection";

/// The consent rule. The agent runs it before any host policy, on every send; it cannot be
/// configured away.
///
/// - Campaign sends need a valid (granted, not withdrawn, not expired) record for the purpose,
///   and none goes to a contact whose processing is restricted (rule [`RESTRICTED_RULE`]) until
///   the restriction is lifted, or who objected to direct marketing (rule [`OBJECTION_RULE`])
///   until they grant the purpose again themselves ([`SELF_GIVEN_METHODS`](crate::SELF_GIVEN_METHODS)):
///   a CRM import or bulk grant never lifts an objection.
/// - Service replies are allowed only within `service_reply_window` of the contact's own
///   message (24 hours by default, as Telegram's and WhatsApp's customer-care windows).
#[derive(Clone, Debug)]
pub struct ConsentRule {
    service_reply_window: jiff::SignedDuration,
}

impl Default for ConsentRule {
    fn default() -> Self {
        Self {
            service_reply_window: jiff::SignedDuration::from_hours(24),
        }
    }
}

impl SendPolicy for ConsentRule {
    fn check(&self, ctx: &SendContext<'_>) -> Verdict {
        match ctx.kind {
            SendKind::ServiceReply { in_response_to } => {
                let age = ctx.now.duration_since(in_response_to);
                if age >= jiff::SignedDuration::ZERO && age <= self.service_reply_window {
                    Verdict::of(
                        "consent",
                        Decision::Allow,
                        "service reply to the contact's own message",
                    )
                } else {
                    Verdict::deny("consent", "service reply window has closed")
                }
            }
            SendKind::ChatPost => match ctx.contact.peer.kind {
                crate::contact::PeerKind::Group | crate::contact::PeerKind::Channel => Verdict::of(
                    "consent",
                    Decision::Allow,
                    "post to a chat the sender administers; its members joined it",
                ),
                crate::contact::PeerKind::User => Verdict::deny(
                    "consent",
                    "a chat post goes to groups and channels only; a person is written to \
                     through a campaign, with consent",
                ),
            },
            SendKind::Campaign => {
                if let Some(since) = crate::consent::restricted_since(ctx.consent_history, ctx.now)
                {
                    return Verdict::deny(
                        RESTRICTED_RULE,
                        format!("processing restricted since {since} (GDPR art. 18)"),
                    );
                }
                if let Some(at) = crate::consent::objected_since(
                    ctx.consent_history,
                    ctx.purpose,
                    crate::consent::SELF_GIVEN_METHODS,
                    ctx.now,
                ) {
                    return Verdict::deny(
                        OBJECTION_RULE,
                        format!("the contact objected to direct marketing at {at}"),
                    );
                }
                self.campaign(ctx)
            }
        }
    }
}

impl ConsentRule {
    fn campaign(&self, ctx: &SendContext<'_>) -> Verdict {
        match consent_state(ctx.consent_history, ctx.purpose, ctx.now) {
            ConsentState::Valid => {
                let evidence = current_consent(ctx.consent_history, ctx.purpose, ctx.now)
                    .map(|r| {
                        format!(
                            "granted {} via {} ({}), notice {}",
                            r.recorded_at,
                            r.evidence.method,
                            r.evidence.reference,
                            r.notice_version
                        )
                    })
                    .unwrap_or_default();
                Verdict::of("consent", Decision::Allow, evidence)
            }
            state => Verdict::deny(
                "consent",
                format!("{} for purpose {}", state.reason(), ctx.purpose),
            ),
        }
    }
}

/// Allows every send the consent rule allows. Only for tests and demos: the builder accepts it
/// only through [`AgentBuilder::permissive_policies`](crate::AgentBuilder::permissive_policies).
#[derive(Clone, Copy, Debug, Default)]
pub struct PermissiveSendPolicy;

impl SendPolicy for PermissiveSendPolicy {
    fn check(&self, _ctx: &SendContext<'_>) -> Verdict {
        Verdict::allow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::Evidence;
    use crate::contact::TelegramPeer;
    use jiff::SignedDuration;

    struct Fixed(Verdict);
    impl SendPolicy for Fixed {
        fn check(&self, _ctx: &SendContext<'_>) -> Verdict {
            self.0.clone()
        }
    }

    fn ctx<'a>(
        contact: &'a Contact,
        purpose: &'a Purpose,
        history: &'a [ConsentRecord],
        kind: SendKind,
        now: Timestamp,
    ) -> SendContext<'a> {
        SendContext {
            contact,
            kind,
            purpose,
            consent_history: history,
            recent_sends: &[],
            campaign: None,
            now,
        }
    }

    #[test]
    fn first_non_allow_wins_and_traces_accumulate() {
        let now = Timestamp::UNIX_EPOCH;
        let chain = SendPolicies::new()
            .with(Fixed(Verdict::of("a", Decision::Allow, "fine")))
            .with(Fixed(Verdict::defer("quiet", now, "night")))
            .with(Fixed(Verdict::deny("never", "reached")));
        let c = Contact::new("u", TelegramPeer::user(1), "UTC", now).unwrap();
        let p = Purpose::marketing();
        let v = chain.check(&ctx(&c, &p, &[], SendKind::Campaign, now));
        assert_eq!(v.decision, Decision::Defer { until: now });
        assert_eq!(v.trace.len(), 2);
        assert_eq!(v.deciding_rule(), Some("quiet"));
    }

    #[test]
    fn consent_rule_refuses_campaigns_to_a_restricted_contact_until_lifted() {
        let now = Timestamp::UNIX_EPOCH + SignedDuration::from_hours(100);
        let c = Contact::new("u", TelegramPeer::user(1), "UTC", now).unwrap();
        let p = Purpose::marketing();
        let marker = |method: &str, hours: i64| {
            ConsentRecord::withdraw(
                c.id.clone(),
                Purpose::new(crate::RESTRICTION_PURPOSE),
                Evidence::new(method, "dsr_1"),
                now - SignedDuration::from_hours(hours),
            )
        };
        let grant = ConsentRecord::grant(
            c.id.clone(),
            p.clone(),
            Evidence::new("telegram_start", "update=1"),
            "v1",
            now - SignedDuration::from_hours(10),
        );
        let rule = ConsentRule::default();
        let restricted = [grant.clone(), marker(crate::RESTRICTION_METHOD, 5)];
        let v = rule.check(&ctx(&c, &p, &restricted, SendKind::Campaign, now));
        assert_eq!(v.decision, Decision::Deny);
        assert_eq!(v.deciding_rule(), Some(RESTRICTED_RULE));
        // A service reply is not marketing: still allowed within its window.
        let reply = SendKind::ServiceReply {
            in_response_to: now - SignedDuration::from_hours(1),
        };
        assert!(rule.check(&ctx(&c, &p, &restricted, reply, now)).is_allow());
        let lifted = [
            grant,
            marker(crate::RESTRICTION_METHOD, 5),
            marker(crate::RESTRICTION_LIFTED_METHOD, 2),
        ];
        assert!(
            rule.check(&ctx(&c, &p, &lifted, SendKind::Campaign, now))
                .is_allow()
        );
        // A grant of the reserved purpose (a `/start processing_restriction`) lifts nothing.
        let forged = ConsentRecord::grant(
            c.id.clone(),
            Purpose::new(crate::RESTRICTION_PURPOSE),
            Evidence::new("telegram_start", "update=2"),
            "v1",
            now - SignedDuration::from_hours(1),
        );
        let mut still = restricted.to_vec();
        still.push(forged);
        let v = rule.check(&ctx(&c, &p, &still, SendKind::Campaign, now));
        assert_eq!(v.deciding_rule(), Some(RESTRICTED_RULE));
    }

    #[test]
    fn consent_rule_holds_an_objection_until_the_person_grants_again() {
        let now = Timestamp::UNIX_EPOCH + SignedDuration::from_hours(100);
        let c = Contact::new("u", TelegramPeer::user(1), "UTC", now).unwrap();
        let p = Purpose::marketing();
        let grant = |method: &str, hours: i64| {
            ConsentRecord::grant(
                c.id.clone(),
                p.clone(),
                Evidence::new(method, "x"),
                "v1",
                now - SignedDuration::from_hours(hours),
            )
        };
        let objection = ConsentRecord::withdraw(
            c.id.clone(),
            p.clone(),
            Evidence::new(crate::OBJECTION_METHOD, "dsr_2"),
            now - SignedDuration::from_hours(8),
        );
        let rule = ConsentRule::default();
        // A CRM import after the objection makes consent "valid" again, but not for marketing.
        let imported = [
            grant("telegram_start", 10),
            objection.clone(),
            grant("crm_import", 5),
        ];
        let v = rule.check(&ctx(&c, &p, &imported, SendKind::Campaign, now));
        assert_eq!(v.decision, Decision::Deny);
        assert_eq!(v.deciding_rule(), Some(OBJECTION_RULE));
        // The person opting in again themselves lifts it.
        let again = [
            grant("telegram_start", 10),
            objection,
            grant("telegram_start", 2),
        ];
        assert!(
            rule.check(&ctx(&c, &p, &again, SendKind::Campaign, now))
                .is_allow()
        );
    }

    #[test]
    fn consent_rule_needs_a_valid_record_for_campaigns() {
        let now = Timestamp::UNIX_EPOCH + SignedDuration::from_hours(100);
        let c = Contact::new("u", TelegramPeer::user(1), "UTC", now).unwrap();
        let p = Purpose::marketing();
        let rule = ConsentRule::default();
        let none = rule.check(&ctx(&c, &p, &[], SendKind::Campaign, now));
        assert_eq!(none.decision, Decision::Deny);
        assert!(none.trace[0].detail.contains("no_consent"));

        let grant = ConsentRecord::grant(
            "u",
            p.clone(),
            Evidence::new("telegram_start", "spring"),
            "v3",
            now - SignedDuration::from_hours(1),
        );
        let ok = rule.check(&ctx(
            &c,
            &p,
            std::slice::from_ref(&grant),
            SendKind::Campaign,
            now,
        ));
        assert!(ok.is_allow());
        assert!(ok.trace[0].detail.contains("telegram_start"));

        let other = Purpose::new("updates");
        let wrong = rule.check(&ctx(&c, &other, &[grant], SendKind::Campaign, now));
        assert_eq!(wrong.decision, Decision::Deny);
    }

    #[test]
    fn service_replies_only_inside_the_window() {
        let now = Timestamp::UNIX_EPOCH + SignedDuration::from_hours(100);
        let c = Contact::new("u", TelegramPeer::user(1), "UTC", now).unwrap();
        let p = Purpose::new("service");
        let rule = ConsentRule::default();
        let fresh = SendKind::ServiceReply {
            in_response_to: now - SignedDuration::from_mins(1),
        };
        assert!(rule.check(&ctx(&c, &p, &[], fresh, now)).is_allow());
        let stale = SendKind::ServiceReply {
            in_response_to: now - SignedDuration::from_hours(25),
        };
        assert_eq!(
            rule.check(&ctx(&c, &p, &[], stale, now)).decision,
            Decision::Deny
        );
    }

    #[test]
    fn chat_posts_go_to_groups_and_channels_never_to_a_person() {
        let now = Timestamp::UNIX_EPOCH + SignedDuration::from_hours(100);
        let p = Purpose::marketing();
        let rule = ConsentRule::default();
        for peer in [TelegramPeer::group(-100), TelegramPeer::channel(-1001)] {
            let chat = Contact::new("chat", peer, "UTC", now).unwrap();
            let v = rule.check(&ctx(&chat, &p, &[], SendKind::ChatPost, now));
            assert!(v.is_allow(), "{peer:?}");
        }
        let person = Contact::new("u", TelegramPeer::user(1), "UTC", now).unwrap();
        let v = rule.check(&ctx(&person, &p, &[], SendKind::ChatPost, now));
        assert_eq!(v.decision, Decision::Deny);
    }
}
