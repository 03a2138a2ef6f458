//! [`ContentGuardBuilder`]: configuration and compilation of a [`ContentGuard`].

use std::collections::BTreeSet;

use super::guard::{ContentGuard, PiiAction, TELEGRAM_MAX_LENGTH};
use super::links::LinkScanner;
use super::lists::{CREDENTIAL_REQUESTS, DEFAULT_OPT_OUT_KEYWORDS, DEFAULT_RISKY_CLAIMS};
use super::phrases::{PhraseSet, PhraseSets};
use crate::error::SafetyError;
use crate::normalize::Normalizer;
use crate::pii::{PiiKind, Scanner};
use crate::rules;

/// Configures a [`ContentGuard`]. Setters take and return the builder; [`build`](Self::build)
/// validates and compiles.
#[derive(Clone, Debug)]
pub struct ContentGuardBuilder {
    max_length: usize,
    blacklist: Vec<String>,
    credentials: bool,
    risky_claims: Vec<String>,
    default_risky_claims: bool,
    allowed_domains: Vec<String>,
    allowed_emails: Vec<String>,
    pii_action: PiiAction,
    phone_regions: Option<Vec<String>>,
    sender_identity: Vec<String>,
    opt_out_notice: bool,
    opt_out_keywords: Vec<String>,
}

impl Default for ContentGuardBuilder {
    fn default() -> Self {
        Self {
            max_length: TELEGRAM_MAX_LENGTH,
            blacklist: Vec::new(),
            credentials: true,
            risky_claims: Vec::new(),
            default_risky_claims: true,
            allowed_domains: Vec::new(),
            allowed_emails: Vec::new(),
            pii_action: PiiAction::Escalate,
            phone_regions: None,
            sender_identity: Vec::new(),
            opt_out_notice: true,
            opt_out_keywords: Vec::new(),
        }
    }
}

fn strings<I, S>(items: I) -> impl Iterator<Item = String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    items.into_iter().map(Into::into)
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

    /// Adds phrases that deny copy outright (rule `blacklist`). Matched as whole words on the
    /// strict normal form: `"scam"` catches `"SCAM"`, `"s\u{200B}cam"`, `"$c4m"` and a
    /// Cyrillic `"sсam"`, but not `"scampi"`.
    #[must_use]
    pub fn blacklist<I, S>(mut self, phrases: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.blacklist.extend(strings(phrases));
        self
    }

    /// Whether copy that asks for passwords, login or one-time codes is denied (rule
    /// `credentials`, default `true`, phrases in [`CREDENTIAL_REQUESTS`]).
    #[must_use]
    pub fn deny_credential_requests(mut self, enabled: bool) -> Self {
        self.credentials = enabled;
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
        self.risky_claims.extend(strings(phrases));
        self
    }

    /// Whether [`DEFAULT_RISKY_CLAIMS`] are checked (default `true`). Turn off only to replace
    /// them with a list of your own.
    #[must_use]
    pub fn default_risky_claims(mut self, enabled: bool) -> Self {
        self.default_risky_claims = enabled;
        self
    }

    /// Adds domains links may point to (rule `links`). The allow-list works by registrable
    /// domain: `shop.example`, `www.shop.example` and `deals.shop.example` all allow every
    /// host under `shop.example`, and `shop.co.uk` allows `*.shop.co.uk` but not the rest of
    /// `co.uk` (a public suffix cannot be allowed). Give host names, not URLs. With no allowed
    /// domain, every link escalates. URL shorteners are denied and look-alike (IDN
    /// homoglyph) domains escalate even when listed.
    #[must_use]
    pub fn allow_domains<I, S>(mut self, domains: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_domains.extend(strings(domains));
        self
    }

    /// Adds one domain links may point to; see [`allow_domains`](Self::allow_domains).
    #[must_use]
    pub fn allow_domain(mut self, domain: impl Into<String>) -> Self {
        self.allowed_domains.push(domain.into());
        self
    }

    /// Adds e-mail addresses the business publishes on purpose (`support@shop.example`), which
    /// the `pii` rule then lets through. Every other address counts as personal data.
    #[must_use]
    pub fn allow_emails<I, S>(mut self, addresses: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_emails.extend(strings(addresses));
        self
    }

    /// What the `pii` rule does with personal data (default [`PiiAction::Escalate`]).
    #[must_use]
    pub fn pii_action(mut self, action: PiiAction) -> Self {
        self.pii_action = action;
        self
    }

    /// The phone regions (ISO 3166 codes) used when a message's language names none; see
    /// [`ScannerBuilder::phone_regions`](crate::ScannerBuilder::phone_regions).
    #[must_use]
    pub fn phone_regions<I, S>(mut self, regions: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.phone_regions = Some(strings(regions).collect());
        self
    }

    /// Requires copy to say who sends it (rule `sender_identity`): one of these names (the
    /// brand, the shop, the channel's `@handle`) must appear, matched like the blacklist.
    /// Copy without one escalates. Off until a name is given.
    #[must_use]
    pub fn sender_identity<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.sender_identity.extend(strings(names));
        self
    }

    /// Whether copy must say how to opt out (rule `opt_out_notice`, default `true`): text that
    /// mentions none of "stop", "unsubscribe", "/stop", their translations (German, Spanish,
    /// Russian, Portuguese, Turkish, French, Italian) or an
    /// [added keyword](Self::opt_out_keywords) escalates. Turn off only where the host adds
    /// the notice itself (a footer appended to every message).
    #[must_use]
    pub fn opt_out_notice(mut self, required: bool) -> Self {
        self.opt_out_notice = required;
        self
    }

    /// Adds words that count as an opt-out notice (`"abbestellen"`, `"отписаться"`).
    /// Matched as whole words.
    #[must_use]
    pub fn opt_out_keywords<I, S>(mut self, words: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.opt_out_keywords.extend(strings(words));
        self
    }

    /// Validates the configuration and compiles every pattern once.
    ///
    /// # Errors
    /// [`SafetyError::InvalidConfig`] when `max_length` is 0 or above
    /// [`TELEGRAM_MAX_LENGTH`], a phrase is empty once normalised, an allowed domain is not a
    /// host name or is a public suffix, an allowed e-mail is not an address, or a phone
    /// region is unknown; [`SafetyError::InvalidPattern`] when a phrase list cannot be
    /// compiled.
    pub fn build(self) -> Result<ContentGuard, SafetyError> {
        if self.max_length == 0 || self.max_length > TELEGRAM_MAX_LENGTH {
            return Err(SafetyError::config(format!(
                "max_length must be between 1 and {TELEGRAM_MAX_LENGTH}, got {}",
                self.max_length
            )));
        }
        let strict = Normalizer::strict();
        let mut claims: Vec<String> = if self.default_risky_claims {
            strings(DEFAULT_RISKY_CLAIMS.iter().copied()).collect()
        } else {
            Vec::new()
        };
        claims.extend(self.risky_claims);
        let mut keywords: Vec<String> = strings(DEFAULT_OPT_OUT_KEYWORDS.iter().copied()).collect();
        keywords.extend(self.opt_out_keywords);
        let mut allowed_emails = BTreeSet::new();
        for address in &self.allowed_emails {
            let n = Normalizer::standard().normalize(address).into_string();
            if n.contains(' ') || n.split('@').count() != 2 {
                return Err(SafetyError::config(format!(
                    "allowed e-mail {address:?} is not an address"
                )));
            }
            allowed_emails.insert(n);
        }
        let credentials: Vec<String> = strings(CREDENTIAL_REQUESTS.iter().copied()).collect();
        let mut scanner =
            Scanner::builder().kinds(PiiKind::ALL.into_iter().filter(|k| *k != PiiKind::Url));
        if let Some(regions) = self.phone_regions {
            scanner = scanner.phone_regions(regions);
        }
        let blacklist = PhraseSet::new(rules::BLACKLIST, &self.blacklist, strict)?;
        let credentials = if self.credentials {
            Some(PhraseSet::new(rules::CREDENTIALS, &credentials, strict)?)
        } else {
            None
        };
        let risky_claims = PhraseSet::new(rules::RISKY_CLAIMS, &claims, strict)?;
        let sender_identity = if self.sender_identity.is_empty() {
            None
        } else {
            Some(PhraseSet::new(
                rules::SENDER_IDENTITY,
                &self.sender_identity,
                strict,
            )?)
        };
        let opt_out_keywords = PhraseSet::new(rules::OPT_OUT_NOTICE, &keywords, strict)?;
        // In the order `ContentGuard::verdict` reads them.
        let phrase_lists = PhraseSets::new([
            Some(&blacklist),
            credentials.as_ref(),
            Some(&risky_claims),
            sender_identity.as_ref(),
            Some(&opt_out_keywords),
        ])?;
        Ok(ContentGuard {
            max_length: self.max_length,
            blacklist,
            credentials,
            pii: scanner.build()?,
            pii_action: self.pii_action,
            allowed_emails,
            risky_claims,
            links: LinkScanner::new(&self.allowed_domains)?,
            sender_identity,
            opt_out_notice: self.opt_out_notice,
            phrase_lists,
        })
    }
}
