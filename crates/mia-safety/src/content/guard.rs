//! [`ContentGuard`]: the rules every piece of copy passes before it can be sent.

use std::collections::BTreeSet;

use mia_core::{ContentContext, ContentKind, ContentPolicy, Decision, RuleHit, Verdict};

use super::links::{LinkFinding, LinkScanner};
use super::phrases::{PhraseSet, PhraseSets};
use crate::normalize::{Normalizer, standard_and_strict};
use crate::pii::{self, Finding, Redaction, Scanner, redact};
use crate::rules;

use super::builder::ContentGuardBuilder;

/// The longest text Telegram accepts in one message, in UTF-16 code units.
pub const TELEGRAM_MAX_LENGTH: usize = 4096;

/// What the `pii` rule does with personal data in outgoing copy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum PiiAction {
    /// A human must confirm it belongs there (the default).
    #[default]
    Escalate,
    /// Never send it.
    Deny,
    /// Replace it and send the rest: the agent uses [`ContentPolicy::check_rewriting`] (and
    /// [`ContentGuard::screen`] returns the redacted text). Plain [`ContentPolicy::check`]
    /// cannot change the text it is given, so there the rule escalates instead.
    Redact(Redaction),
}

/// Checks copy before it can be sent: length, blacklist, credential requests, personal data,
/// risky claims, links, sender identity and the opt-out notice, in that order.
///
/// Phrases (blacklist, claims, credential requests, brand names, opt-out keywords) match on
/// the [strict](Normalizer::strict) form of the text, so invisible characters, fullwidth
/// forms, look-alike letters from other scripts, leetspeak and spelled-out letters do not
/// hide them; links are judged on the [standard](Normalizer::standard) form, where a
/// look-alike domain stays what it is; personal data is found by the PII [`Scanner`] in the
/// message's language.
///
/// Every rule runs and every rule that fires is in the trace, in order. A deny beats an
/// escalation wherever it comes in the order, so a hard block (a URL shortener, a request for
/// a password) is never turned into a review a human could wave through; otherwise the first
/// rule decides. A text that is empty or too long is denied at once without further checks.
///
/// Built once (patterns compile in [`ContentGuardBuilder::build`]) and cheap to share.
///
/// ```
/// use mia_core::{ContentContext, ContentKind, ContentPolicy, Decision};
/// use mia_safety::ContentGuard;
///
/// let guard = ContentGuard::builder()
///     .allow_domains(["shop.example"])
///     .build()?;
/// let ctx = ContentContext { campaign: None, language: "en", kind: ContentKind::Marketing };
/// let ok = guard.check("Spring sale at https://shop.example/spring. Reply STOP to opt out.", &ctx);
/// assert_eq!(ok.decision, Decision::Allow);
/// let short = guard.check("Spring sale: bit.ly/x. Reply STOP to opt out.", &ctx);
/// assert_eq!(short.decision, Decision::Deny);
/// assert_eq!(short.deciding_rule(), Some("links"));
/// let phish = guard.check("Send us the c0de from your SMS. Reply STOP to opt out.", &ctx);
/// assert_eq!(phish.deciding_rule(), Some("credentials"));
/// # Ok::<(), mia_safety::SafetyError>(())
/// ```
#[derive(Clone, Debug)]
pub struct ContentGuard {
    pub(super) max_length: usize,
    pub(super) blacklist: PhraseSet,
    pub(super) credentials: Option<PhraseSet>,
    pub(super) pii: Scanner,
    pub(super) pii_action: PiiAction,
    pub(super) allowed_emails: BTreeSet<String>,
    pub(super) risky_claims: PhraseSet,
    pub(super) links: LinkScanner,
    pub(super) sender_identity: Option<PhraseSet>,
    pub(super) opt_out_notice: bool,
    /// The phrase lists (blacklist, credentials, risky claims, sender identity, opt-out
    /// keywords, in that order) in one automaton, so one pass over the text serves all.
    pub(super) phrase_lists: PhraseSets<5>,
}

/// The outcome of [`ContentGuard::screen`]: the text to send and the verdict on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Screened {
    /// The copy, with personal data redacted when the guard is configured to redact.
    pub text: String,
    /// The verdict on `text`.
    pub verdict: Verdict,
    /// The personal data found in the original copy (published addresses excluded).
    pub findings: Vec<Finding>,
}

impl ContentGuard {
    /// A builder with the recommended defaults: Telegram's length limit, no blacklist, the
    /// credential-request rule on, personal data escalated, the
    /// [default risky claims](crate::DEFAULT_RISKY_CLAIMS), no allowed link domains (every
    /// link escalates), no sender identity required and the opt-out notice required.
    pub fn builder() -> ContentGuardBuilder {
        ContentGuardBuilder::default()
    }

    /// The guard with the recommended defaults, as [`ContentGuard::builder`] describes.
    pub fn recommended() -> Self {
        // The defaults are constants whose compilation the tests cover
        // (`the_recommended_guard_builds_and_passes_clean_copy`); building them cannot fail.
        #[allow(clippy::expect_used)]
        ContentGuardBuilder::default()
            .build()
            .expect("the built-in content patterns compile")
    }

    /// The personal data in `text` that the `pii` rule would act on, judged in `language`
    /// (a BCP 47 tag such as `de` or `pt-BR`, which decides how national phone numbers are
    /// read). Addresses the host [publishes](ContentGuardBuilder::allow_emails) and URLs (the
    /// `links` rule's business) are left out.
    pub fn personal_data(&self, text: &str, language: &str) -> Vec<Finding> {
        let mut found = self.pii.scan_with_locale(text, language);
        if !self.allowed_emails.is_empty() {
            found.retain(|f| {
                f.kind != pii::PiiKind::Email
                    || !self
                        .allowed_emails
                        .contains(&Normalizer::standard().normalize(&f.text).into_string())
            });
        }
        found
    }

    /// Checks `text` like [`ContentPolicy::check`], but where the guard is configured to
    /// [redact](PiiAction::Redact) personal data, replaces it first and checks the result:
    /// the returned text is what may be sent.
    pub fn screen(&self, text: &str, ctx: &ContentContext<'_>) -> Screened {
        let findings = self.personal_data(text, ctx.language);
        match &self.pii_action {
            PiiAction::Redact(mode) if !findings.is_empty() => {
                let redacted = redact(text, &findings, mode);
                let mut verdict = self.verdict(&redacted, ctx, &[]);
                verdict.trace.insert(
                    0,
                    RuleHit {
                        rule: rules::PII.to_owned(),
                        decision: Decision::Allow,
                        detail: format!("redacted personal data ({})", pii::describe(&findings)),
                    },
                );
                Screened {
                    text: redacted,
                    verdict,
                    findings,
                }
            }
            _ => Screened {
                text: text.to_owned(),
                verdict: self.verdict(text, ctx, &findings),
                findings,
            },
        }
    }

    /// The verdict on `text`, whose personal data (`findings`) was found beforehand.
    fn verdict(&self, text: &str, ctx: &ContentContext<'_>, findings: &[Finding]) -> Verdict {
        if exceeds(text, self.max_length) {
            let length = text.encode_utf16().count();
            return Verdict::deny(
                rules::LENGTH,
                format!(
                    "text is {length} characters long; the limit is {}",
                    self.max_length
                ),
            );
        }
        let (standard, strict) = standard_and_strict(text);
        let strict = strict.as_str();
        if strict.is_empty() {
            return Verdict::deny(rules::LENGTH, "text is empty");
        }

        let mut trace = Vec::new();
        let mut fire = |rule: &str, decision: Decision, detail: String| {
            trace.push(RuleHit {
                rule: rule.to_owned(),
                decision,
                detail,
            });
        };
        let [blacklisted, credentials, claim, brand, opt_out] =
            self.phrase_lists.first_matches(strict);
        if let Some(i) = blacklisted {
            fire(
                rules::BLACKLIST,
                Decision::Deny,
                format!(
                    "blacklisted phrase (entry {} of {} in the host's list)",
                    i + 1,
                    self.blacklist.len()
                ),
            );
        }
        if let Some(i) = credentials {
            let phrase = self.credentials.as_ref().map_or("", |c| c.phrase(i));
            fire(
                rules::CREDENTIALS,
                Decision::Deny,
                format!(
                    "copy asks for credentials ({phrase:?}); mia never asks for passwords or codes"
                ),
            );
        }
        if !findings.is_empty() {
            let what = pii::describe(findings);
            match &self.pii_action {
                PiiAction::Escalate => fire(
                    rules::PII,
                    Decision::Escalate,
                    format!(
                        "copy contains personal data ({what}); a human must confirm it belongs there"
                    ),
                ),
                PiiAction::Deny => fire(
                    rules::PII,
                    Decision::Deny,
                    format!("copy contains personal data ({what}), which this guard never sends"),
                ),
                PiiAction::Redact(_) => fire(
                    rules::PII,
                    Decision::Escalate,
                    format!(
                        "copy contains personal data ({what}) to be redacted, but this check \
                         cannot change the text (use ContentGuard::screen)"
                    ),
                ),
            }
        }
        if let Some(i) = claim {
            fire(
                rules::RISKY_CLAIMS,
                Decision::Escalate,
                format!("risky claim {:?}", self.risky_claims.phrase(i)),
            );
        }
        match self.links.check(&standard) {
            Some(LinkFinding::Shortener(detail)) => fire(rules::LINKS, Decision::Deny, detail),
            Some(LinkFinding::Review(detail)) => fire(rules::LINKS, Decision::Escalate, detail),
            None => {}
        }
        // Who sends it and how to opt out are marketing rules: a one-to-one answer to the
        // person's own message needs neither, and members of a chat stop by leaving it.
        let needs_identity = ctx.kind != ContentKind::Answer;
        let needs_opt_out = ctx.kind == ContentKind::Marketing;
        if needs_identity && self.sender_identity.is_some() && brand.is_none() {
            fire(
                rules::SENDER_IDENTITY,
                Decision::Escalate,
                "copy does not say who sends it (no configured brand name appears)".to_owned(),
            );
        }
        if needs_opt_out && self.opt_out_notice && opt_out.is_none() {
            fire(
                rules::OPT_OUT_NOTICE,
                Decision::Escalate,
                "copy does not say how to opt out (no STOP or unsubscribe)".to_owned(),
            );
        }

        let decision = [Decision::Deny, Decision::Escalate]
            .into_iter()
            .find(|d| trace.iter().any(|h| h.decision == *d))
            .unwrap_or(Decision::Allow);
        Verdict { decision, trace }
    }
}

/// Whether `text` is longer than `max` UTF-16 code units. A text of at most `max` bytes is
/// not (no character takes more UTF-16 units than UTF-8 bytes), so the common case skips the
/// count.
fn exceeds(text: &str, max: usize) -> bool {
    text.len() > max && text.encode_utf16().count() > max
}

impl Default for ContentGuard {
    /// The same as [`ContentGuard::recommended`].
    fn default() -> Self {
        Self::recommended()
    }
}

impl ContentPolicy for ContentGuard {
    fn check(&self, text: &str, ctx: &ContentContext<'_>) -> Verdict {
        if exceeds(text, self.max_length) {
            return self.verdict(text, ctx, &[]);
        }
        let findings = self.personal_data(text, ctx.language);
        self.verdict(text, ctx, &findings)
    }

    /// Where the guard redacts personal data, the redacted copy and its verdict.
    fn check_rewriting(&self, text: &str, ctx: &ContentContext<'_>) -> (Verdict, Option<String>) {
        let screened = self.screen(text, ctx);
        let rewritten = (screened.text != text).then_some(screened.text);
        (screened.verdict, rewritten)
    }
}
