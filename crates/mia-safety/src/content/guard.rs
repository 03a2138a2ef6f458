//! [`ContentGuard`]: the rules every piece of copy passes before it can be sent.

use mia_core::{ContentContext, ContentPolicy, Decision, RuleHit, Verdict};

use super::links::{LinkFinding, LinkScanner};
use super::phrases::PhraseSet;
use super::pii::{self, PiiScanner};
use crate::error::SafetyError;
use crate::normalize::normalize;
use crate::rules;

/// The longest text Telegram accepts in one message, in UTF-16 code units.
pub const TELEGRAM_MAX_LENGTH: usize = 4096;

/// The risky marketing claims the `risky_claims` rule escalates unless the host turns the
/// defaults off with [`ContentGuardBuilder::default_risky_claims`].
pub const DEFAULT_RISKY_CLAIMS: &[&str] = &[
    "guaranteed",
    "risk-free",
    "risk free",
    "no risk",
    "100% free",
    "free money",
    "get rich",
    "double your money",
    "miracle",
    "cure",
    "cures",
    "lose weight fast",
    "act now",
    "limited time only",
];

/// The words that count as telling the reader how to opt out.
const DEFAULT_OPT_OUT_KEYWORDS: &[&str] = &["stop", "unsubscribe", "/stop"];

/// Checks copy before it can be sent: length, blacklist, personal data, risky claims, links
/// and the opt-out notice, in that order, on a normalised form of the text (invisible
/// characters dropped, NFKC, lowercase; see [`normalize`](crate::normalize)).
///
/// Every rule runs and every rule that fires is in the trace, in order. A deny beats an
/// escalation wherever it comes in the order, so a hard block (a URL shortener) is never
/// turned into a review a human could wave through; otherwise the first rule decides. A text
/// that is empty or too long is denied at once without further checks.
///
/// Built once (patterns compile in [`ContentGuardBuilder::build`]) and cheap to share.
///
/// ```
/// use mia_core::{ContentContext, ContentPolicy, Decision};
/// use mia_safety::ContentGuard;
///
/// let guard = ContentGuard::builder()
///     .allow_domains(["shop.example"])
///     .build()?;
/// let ctx = ContentContext { campaign: None, language: "en" };
/// let ok = guard.check("Spring sale at https://shop.example/spring. Reply STOP to opt out.", &ctx);
/// assert_eq!(ok.decision, Decision::Allow);
/// let short = guard.check("Spring sale: bit.ly/x. Reply STOP to opt out.", &ctx);
/// assert_eq!(short.decision, Decision::Deny);
/// assert_eq!(short.deciding_rule(), Some("links"));
/// # Ok::<(), mia_safety::SafetyError>(())
/// ```
#[derive(Clone, Debug)]
pub struct ContentGuard {
    max_length: usize,
    blacklist: PhraseSet,
    pii: PiiScanner,
    risky_claims: PhraseSet,
    links: LinkScanner,
    opt_out_notice: bool,
    opt_out_keywords: PhraseSet,
}

impl ContentGuard {
    /// A builder with the recommended defaults: Telegram's length limit, no blacklist, the
    /// [default risky claims](DEFAULT_RISKY_CLAIMS), no allowed link domains (every link
    /// escalates) and the opt-out notice required.
    pub fn builder() -> ContentGuardBuilder {
        ContentGuardBuilder::default()
    }

    /// The guard with the recommended defaults, as [`ContentGuard::builder`] describes.
    pub fn recommended() -> Self {
        // The defaults are constants whose compilation the tests cover
        // (`the_recommended_guard_builds`); building them cannot fail.
        #[allow(clippy::expect_used)]
        ContentGuardBuilder::default()
            .build()
            .expect("the built-in content patterns compile")
    }
}

impl Default for ContentGuard {
    /// The same as [`ContentGuard::recommended`].
    fn default() -> Self {
        Self::recommended()
    }
}

impl ContentPolicy for ContentGuard {
    fn check(&self, text: &str, _ctx: &ContentContext<'_>) -> Verdict {
        let length = text.encode_utf16().count();
        if length > self.max_length {
            return Verdict::deny(
                rules::LENGTH,
                format!(
                    "text is {length} characters long; the limit is {}",
                    self.max_length
                ),
            );
        }
        let normalised = normalize(text);
        if normalised.is_empty() {
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
        if let Some(i) = self.blacklist.first_match(&normalised) {
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
        let found = self.pii.scan(&normalised);
        if !found.is_empty() {
            fire(rules::PII, Decision::Escalate, pii::describe(&found));
        }
        if let Some(i) = self.risky_claims.first_match(&normalised) {
            fire(
                rules::RISKY_CLAIMS,
                Decision::Escalate,
                format!("risky claim {:?}", self.risky_claims.phrase(i)),
            );
        }
        match self.links.check(&normalised) {
            Some(LinkFinding::Shortener(detail)) => fire(rules::LINKS, Decision::Deny, detail),
            Some(LinkFinding::Review(detail)) => fire(rules::LINKS, Decision::Escalate, detail),
            None => {}
        }
        if self.opt_out_notice && self.opt_out_keywords.first_match(&normalised).is_none() {
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

/// Configures a [`ContentGuard`]. Setters take and return the builder; [`build`](Self::build)
/// validates and compiles.
#[derive(Clone, Debug)]
pub struct ContentGuardBuilder {
    max_length: usize,
    blacklist: Vec<String>,
    risky_claims: Vec<String>,
    default_risky_claims: bool,
    allowed_domains: Vec<String>,
    allowed_emails: Vec<String>,
    opt_out_notice: bool,
    opt_out_keywords: Vec<String>,
}

impl Default for ContentGuardBuilder {
    fn default() -> Self {
        Self {
            max_length: TELEGRAM_MAX_LENGTH,
            blacklist: Vec::new(),
            risky_claims: Vec::new(),
            default_risky_claims: true,
            allowed_domains: Vec::new(),
            allowed_emails: Vec::new(),
            opt_out_notice: true,
            opt_out_keywords: Vec::new(),
        }
    }
}

impl ContentGuardBuilder {
    /// The longest text allowed, in UTF-16 code units as Telegram counts them (an emoji may
    /// count as two). Default and maximum: [`TELEGRAM_MAX_LENGTH`]; use 1024 for media
    /// captions.
    #[must_use]
    pub fn max_length(mut self, max: usize) -> Self {
        self.max_length = max;
        self
    }

    /// Adds phrases that deny copy outright (rule `blacklist`). Matched as whole words,
    /// case-insensitively, on normalised text: `"scam"` catches `"SCAM"` and `"s\u{200B}cam"`
    /// but not `"scampi"`.
    #[must_use]
    pub fn blacklist<I, S>(mut self, phrases: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.blacklist.extend(phrases.into_iter().map(Into::into));
        self
    }

    /// Adds risky claims that send copy to a human (rule `risky_claims`), matched like the
    /// blacklist, on top of [`DEFAULT_RISKY_CLAIMS`].
    #[must_use]
    pub fn risky_claims<I, S>(mut self, phrases: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.risky_claims
            .extend(phrases.into_iter().map(Into::into));
        self
    }

    /// Whether [`DEFAULT_RISKY_CLAIMS`] are checked (default `true`). Turn off only to replace
    /// them with a list of your own.
    #[must_use]
    pub fn default_risky_claims(mut self, enabled: bool) -> Self {
        self.default_risky_claims = enabled;
        self
    }

    /// Adds domains links may point to (rule `links`); their subdomains are allowed too.
    /// Give host names (`shop.example`), not URLs. With no allowed domain, every link
    /// escalates. URL shorteners are denied even when listed.
    #[must_use]
    pub fn allow_domains<I, S>(mut self, domains: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_domains
            .extend(domains.into_iter().map(Into::into));
        self
    }

    /// Adds one domain links may point to; see [`allow_domains`](Self::allow_domains).
    #[must_use]
    pub fn allow_domain(mut self, domain: impl Into<String>) -> Self {
        self.allowed_domains.push(domain.into());
        self
    }

    /// Adds e-mail addresses the business publishes on purpose (`support@shop.example`), which
    /// the `pii` rule then lets through. Every other address escalates.
    #[must_use]
    pub fn allow_emails<I, S>(mut self, addresses: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_emails
            .extend(addresses.into_iter().map(Into::into));
        self
    }

    /// Whether copy must say how to opt out (rule `opt_out_notice`, default `true`): text that
    /// mentions none of "stop", "unsubscribe", "/stop" (or an
    /// [added keyword](Self::opt_out_keywords)) escalates. Turn off only where the host adds
    /// the notice itself (a footer appended to every message).
    #[must_use]
    pub fn opt_out_notice(mut self, required: bool) -> Self {
        self.opt_out_notice = required;
        self
    }

    /// Adds words that count as an opt-out notice, for copy in other languages
    /// (`"abmelden"`, `"отписаться"`). Matched as whole words on normalised text.
    #[must_use]
    pub fn opt_out_keywords<I, S>(mut self, words: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.opt_out_keywords
            .extend(words.into_iter().map(Into::into));
        self
    }

    /// Validates the configuration and compiles every pattern once.
    ///
    /// # Errors
    /// [`SafetyError::InvalidConfig`] when `max_length` is 0 or above
    /// [`TELEGRAM_MAX_LENGTH`], a phrase is empty once normalised, an allowed domain is not a
    /// host name or an allowed e-mail is not an address; [`SafetyError::InvalidPattern`] when
    /// a phrase list cannot be compiled.
    pub fn build(self) -> Result<ContentGuard, SafetyError> {
        if self.max_length == 0 || self.max_length > TELEGRAM_MAX_LENGTH {
            return Err(SafetyError::config(format!(
                "max_length must be between 1 and {TELEGRAM_MAX_LENGTH}, got {}",
                self.max_length
            )));
        }
        let mut claims: Vec<String> = if self.default_risky_claims {
            DEFAULT_RISKY_CLAIMS
                .iter()
                .map(|c| (*c).to_owned())
                .collect()
        } else {
            Vec::new()
        };
        claims.extend(self.risky_claims);
        let mut keywords: Vec<String> = DEFAULT_OPT_OUT_KEYWORDS
            .iter()
            .map(|k| (*k).to_owned())
            .collect();
        keywords.extend(self.opt_out_keywords);
        Ok(ContentGuard {
            max_length: self.max_length,
            blacklist: PhraseSet::new(rules::BLACKLIST, &self.blacklist)?,
            pii: PiiScanner::new(&self.allowed_emails)?,
            risky_claims: PhraseSet::new(rules::RISKY_CLAIMS, &claims)?,
            links: LinkScanner::new(&self.allowed_domains)?,
            opt_out_notice: self.opt_out_notice,
            opt_out_keywords: PhraseSet::new(rules::OPT_OUT_NOTICE, &keywords)?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const CTX: ContentContext<'static> = ContentContext {
        campaign: None,
        language: "en",
    };
    const FOOTER: &str = " Reply STOP to opt out.";

    fn guard() -> ContentGuard {
        ContentGuard::builder()
            .blacklist(["scam", "crypto giveaway"])
            .allow_domain("shop.example")
            .build()
            .unwrap()
    }

    fn rules_fired(v: &Verdict) -> Vec<&str> {
        v.trace.iter().map(|h| h.rule.as_str()).collect()
    }

    #[test]
    fn the_recommended_guard_builds_and_passes_clean_copy() {
        let g = ContentGuard::recommended();
        let v = g.check("Our spring collection is here.", &CTX);
        // Without an opt-out notice it still goes to a human.
        assert_eq!(v.decision, Decision::Escalate);
        assert_eq!(rules_fired(&v), ["opt_out_notice"]);
        let v = g.check(&format!("Our spring collection is here.{FOOTER}"), &CTX);
        assert_eq!(v, Verdict::allow());
        let v = ContentGuard::default().check("New arrivals! /stop to unsubscribe", &CTX);
        assert!(v.is_allow(), "{v:?}");
    }

    #[test]
    fn empty_and_overlong_text_is_denied() {
        let g = guard();
        for text in ["", "   \n", "\u{200B}\u{FEFF}"] {
            let v = g.check(text, &CTX);
            assert_eq!(v.decision, Decision::Deny, "{text:?}");
            assert_eq!(v.deciding_rule(), Some("length"));
        }
        let long = format!("{}{FOOTER}", "a".repeat(TELEGRAM_MAX_LENGTH));
        let v = g.check(&long, &CTX);
        assert_eq!(v.decision, Decision::Deny);
        assert_eq!(v.deciding_rule(), Some("length"));
        // Exactly at the limit is fine.
        let at_limit = format!("{}{FOOTER}", "a".repeat(TELEGRAM_MAX_LENGTH - FOOTER.len()));
        assert!(g.check(&at_limit, &CTX).is_allow());
        // Emoji outside the BMP count twice, as Telegram counts them.
        let emoji = format!("{}{FOOTER}", "🎉".repeat(2040));
        assert_eq!(g.check(&emoji, &CTX).decision, Decision::Deny);
    }

    #[test]
    fn captions_can_have_a_lower_limit() {
        let g = ContentGuard::builder().max_length(1024).build().unwrap();
        let v = g.check(&format!("{}{FOOTER}", "a".repeat(1024)), &CTX);
        assert_eq!(v.deciding_rule(), Some("length"));
        assert!(ContentGuard::builder().max_length(0).build().is_err());
        assert!(ContentGuard::builder().max_length(4097).build().is_err());
    }

    #[test]
    fn blacklisted_phrases_deny_even_when_disguised() {
        let g = guard();
        for text in [
            "This is no SCAM!",
            "this is no s\u{200B}cam",
            "this is no ｓｃａｍ",
            "Join our crypto\n  giveaway",
        ] {
            let v = g.check(&format!("{text}{FOOTER}"), &CTX);
            assert_eq!(v.decision, Decision::Deny, "{text}");
            assert_eq!(v.deciding_rule(), Some("blacklist"), "{text}");
            let detail = &v.trace.first().unwrap().detail;
            assert!(!detail.to_lowercase().contains("scam"), "{detail}");
        }
        let v = g.check(&format!("Fresh scampi tonight.{FOOTER}"), &CTX);
        assert!(v.is_allow(), "{v:?}");
    }

    #[test]
    fn personal_data_escalates_without_quoting_it() {
        let g = guard();
        let v = g.check(&format!("Questions? Mail jane@doe.example.{FOOTER}"), &CTX);
        assert_eq!(v.decision, Decision::Escalate);
        assert_eq!(rules_fired(&v), ["pii"]);
        let detail = &v.trace.first().unwrap().detail;
        assert!(detail.contains("e-mail"), "{detail}");
        assert!(!detail.contains("jane"), "{detail}");

        let v = g.check(&format!("Call +49 30 1234567 today.{FOOTER}"), &CTX);
        assert_eq!(rules_fired(&v), ["pii"]);
        let v = g.check(&format!("Card 4111 1111 1111 1111 saved.{FOOTER}"), &CTX);
        assert_eq!(rules_fired(&v), ["pii"]);
    }

    #[test]
    fn everyday_marketing_numbers_pass() {
        let g = guard();
        let text = format!(
            "Watch promo.mp4, update to v2.3.1, sale ends 2026-11-26: now €19.99 \
             (SKU-12345, order #12345678) at https://shop.example/sale.{FOOTER}"
        );
        let v = g.check(&text, &CTX);
        assert!(v.is_allow(), "{v:?}");
    }

    #[test]
    fn risky_claims_escalate_and_hosts_can_add_their_own() {
        let g = ContentGuard::builder()
            .risky_claims(["best price in town"])
            .build()
            .unwrap();
        for (text, claim) in [
            ("Results GUARANTEED", "guaranteed"),
            ("Results g\u{200B}uaranteed", "guaranteed"),
            ("ｒｉｓｋ－ｆｒｅｅ trial", "risk-free"),
            ("Act now, limited time only", "act now"),
            ("The best price in town", "best price in town"),
        ] {
            let v = g.check(&format!("{text}.{FOOTER}"), &CTX);
            assert_eq!(v.decision, Decision::Escalate, "{text}");
            assert_eq!(rules_fired(&v), ["risky_claims"], "{text}");
            assert_eq!(
                v.trace.first().unwrap().detail,
                format!("risky claim {claim:?}")
            );
        }
        // Word boundaries: "secure" is not "cure", "guaranteedly" is not a listed word.
        let v = g.check(&format!("Secure checkout.{FOOTER}"), &CTX);
        assert!(v.is_allow(), "{v:?}");
    }

    #[test]
    fn default_claims_can_be_replaced() {
        let g = ContentGuard::builder()
            .default_risky_claims(false)
            .risky_claims(["unbeatable"])
            .build()
            .unwrap();
        assert!(g.check(&format!("Act now!{FOOTER}"), &CTX).is_allow());
        let v = g.check(&format!("Unbeatable!{FOOTER}"), &CTX);
        assert_eq!(v.deciding_rule(), Some("risky_claims"));
    }

    #[test]
    fn links_follow_the_allow_list() {
        let g = guard();
        let ok = g.check(
            &format!("Shop at https://www.shop.example/x.{FOOTER}"),
            &CTX,
        );
        assert!(ok.is_allow(), "{ok:?}");
        let other = g.check(&format!("Shop at other.example.com.{FOOTER}"), &CTX);
        assert_eq!(other.decision, Decision::Escalate);
        assert_eq!(rules_fired(&other), ["links"]);
        let http = g.check(&format!("Shop at http://shop.example.{FOOTER}"), &CTX);
        assert_eq!(http.decision, Decision::Escalate);
        let short = g.check(&format!("Shop at ｂｉｔ．ｌｙ/x.{FOOTER}"), &CTX);
        assert_eq!(short.decision, Decision::Deny);
        assert_eq!(short.deciding_rule(), Some("links"));
    }

    #[test]
    fn a_later_deny_beats_an_earlier_escalation_and_every_hit_is_traced() {
        let g = guard();
        let v = g.check("Guaranteed! Mail jane@doe.example or see bit.ly/x", &CTX);
        assert_eq!(v.decision, Decision::Deny);
        assert_eq!(
            rules_fired(&v),
            ["pii", "risky_claims", "links", "opt_out_notice"]
        );
        assert_eq!(v.deciding_rule(), Some("links"));
    }

    #[test]
    fn the_opt_out_notice_is_configurable() {
        let g = guard();
        for text in ["Reply STOP to opt out", "unsubscribe: /stop", "Tap /stop"] {
            assert!(g.check(text, &CTX).is_allow(), "{text}");
        }
        // "nonstop" does not tell anyone how to stop.
        let v = g.check("Nonstop deals all week", &CTX);
        assert_eq!(v.deciding_rule(), Some("opt_out_notice"));

        let german = ContentGuard::builder()
            .opt_out_keywords(["abmelden"])
            .build()
            .unwrap();
        assert!(
            german
                .check("Neue Angebote! Abmelden mit einem Klick.", &CTX)
                .is_allow()
        );
        let off = ContentGuard::builder()
            .opt_out_notice(false)
            .build()
            .unwrap();
        assert!(off.check("New arrivals", &CTX).is_allow());
    }

    #[test]
    fn bad_configuration_is_rejected() {
        assert!(ContentGuard::builder().blacklist([" "]).build().is_err());
        assert!(ContentGuard::builder().risky_claims([""]).build().is_err());
        assert!(
            ContentGuard::builder()
                .allow_domains(["https://shop.example/"])
                .build()
                .is_err()
        );
        assert!(
            ContentGuard::builder()
                .allow_emails(["support"])
                .build()
                .is_err()
        );
    }
}
