//! The PII scanner: finds personal data in text and reports each finding with its byte range
//! in the original text.
//!
//! | kind | found by | validated by |
//! | --- | --- | --- |
//! | `EMAIL` | `local@domain.tld`, and `name [at] domain [dot] com` and its variants | a known TLD for obfuscated forms; file names (`logo@2x.png`) excluded |
//! | `PHONE` | runs of digit groups (`+`, spaces, dashes, dots, slashes, parentheses) | the `phonenumber` crate (libphonenumber metadata), in the locale's regions |
//! | `CREDIT_CARD` | 12–19 digits, unbroken or in printed groupings | Luhn and current issuer ranges and lengths (Mastercard 2221–2720, 19-digit cards) |
//! | `IBAN` | two letters, two digits, 11–32 letters or digits | the country's length and mod-97 |
//! | `IP` | dotted quads, colon-separated hex | `std::net` parsing (`999.1.1.1` fails) |
//! | `URL` | a scheme, `www.`, or a bare domain with a known TLD | trailing punctuation and unbalanced brackets trimmed |
//! | `CRYPTO` | Base58 `1…`/`3…`, `bc1…`/`tb1…`, `0x` + 40 hex | Base58Check double SHA-256, bech32/bech32m checksums |
//!
//! Text is normalised first ([`Normalizer::nfkc`]: invisible characters dropped, fullwidth
//! digits folded), and every finding is mapped back to the original bytes.

mod checks;
mod context;
pub(crate) mod crypto;
mod numbers;
mod patterns;
mod phone;
mod phone_parse;
mod phone_rules;
mod redact;

use std::fmt;
use std::str::FromStr;

use patterns::{Hit, Patterns};
use phone::{LANGUAGES, Region, regions_for_locale, resolve};

pub use phone::DEFAULT_PHONE_REGIONS;
pub use redact::{Redaction, redact};

use crate::error::SafetyError;
use crate::normalize::{Normalized, Normalizer};

/// A kind of personal data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum PiiKind {
    /// An e-mail address, plain or obfuscated.
    Email,
    /// A phone number.
    Phone,
    /// A payment card number.
    CreditCard,
    /// An international bank account number.
    Iban,
    /// An IPv4 or IPv6 address.
    Ip,
    /// A web address.
    Url,
    /// A crypto wallet address (Bitcoin, Ethereum).
    Crypto,
}

impl PiiKind {
    /// Every kind, in report order.
    pub const ALL: [PiiKind; 7] = [
        PiiKind::Email,
        PiiKind::Phone,
        PiiKind::CreditCard,
        PiiKind::Iban,
        PiiKind::Ip,
        PiiKind::Url,
        PiiKind::Crypto,
    ];

    /// The stable name: `EMAIL`, `PHONE`, `CREDIT_CARD`, `IBAN`, `IP`, `URL`, `CRYPTO`.
    pub fn as_str(self) -> &'static str {
        match self {
            PiiKind::Email => "EMAIL",
            PiiKind::Phone => "PHONE",
            PiiKind::CreditCard => "CREDIT_CARD",
            PiiKind::Iban => "IBAN",
            PiiKind::Ip => "IP",
            PiiKind::Url => "URL",
            PiiKind::Crypto => "CRYPTO",
        }
    }

    /// Which kind wins when two findings cover the same bytes.
    fn priority(self) -> u8 {
        match self {
            PiiKind::Email => 0,
            PiiKind::Url => 1,
            PiiKind::Iban => 2,
            PiiKind::Crypto => 3,
            PiiKind::CreditCard => 4,
            PiiKind::Phone => 5,
            PiiKind::Ip => 6,
        }
    }

    /// A plain-language name, singular or plural.
    pub(crate) fn describe(self, count: usize) -> &'static str {
        let one = count == 1;
        match self {
            PiiKind::Email if one => "e-mail address",
            PiiKind::Email => "e-mail addresses",
            PiiKind::Phone if one => "phone number",
            PiiKind::Phone => "phone numbers",
            PiiKind::CreditCard if one => "payment card number",
            PiiKind::CreditCard => "payment card numbers",
            PiiKind::Iban if one => "IBAN",
            PiiKind::Iban => "IBANs",
            PiiKind::Ip if one => "IP address",
            PiiKind::Ip => "IP addresses",
            PiiKind::Url if one => "URL",
            PiiKind::Url => "URLs",
            PiiKind::Crypto if one => "crypto wallet address",
            PiiKind::Crypto => "crypto wallet addresses",
        }
    }
}

impl fmt::Display for PiiKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PiiKind {
    type Err = SafetyError;

    /// Parses the stable name (case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PiiKind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| SafetyError::config(format!("unknown PII kind {s:?}")))
    }
}

/// One piece of personal data found in a text.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Finding {
    /// What it is.
    pub kind: PiiKind,
    /// Byte offset of its first byte in the original text.
    pub start: usize,
    /// Byte offset just past its last byte in the original text (exclusive).
    pub end: usize,
    /// The original text of the finding (`&text[start..end]`).
    pub text: String,
}

/// Finds personal data. Build once (patterns and phone metadata load in
/// [`ScannerBuilder::build`]) and share; scanning never fails and never panics.
///
/// ```
/// use mia_safety::{PiiKind, Scanner};
///
/// let scanner = Scanner::builder().locale("de-DE").build()?;
/// let text = "Ruf an: 030 1234567 oder schreib an anna [at] beispiel [dot] de";
/// let kinds: Vec<PiiKind> = scanner.scan(text).into_iter().map(|f| f.kind).collect();
/// assert_eq!(kinds, [PiiKind::Phone, PiiKind::Email]);
/// // Order numbers, prices, dates and versions are not personal data.
/// assert!(scanner.scan("Bestellung 12345678: 19,99 € am 26.11.2026, App v2.3.1").is_empty());
/// # Ok::<(), mia_safety::SafetyError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Scanner {
    patterns: Patterns,
    /// Regions from the configured locale, then the fallback regions.
    regions: Vec<Region>,
    /// The regions of each known language, resolved once.
    by_language: Vec<(&'static str, Vec<Region>)>,
    kinds: Vec<PiiKind>,
}

impl Scanner {
    /// A scanner with every kind and the [default phone regions](DEFAULT_PHONE_REGIONS).
    ///
    /// # Errors
    /// As [`ScannerBuilder::build`].
    pub fn new() -> Result<Self, SafetyError> {
        Self::builder().build()
    }

    /// A builder: locale, phone regions, kinds.
    pub fn builder() -> ScannerBuilder {
        ScannerBuilder::default()
    }

    /// Every finding in `text`, in order, without overlaps, with byte ranges into `text`.
    pub fn scan(&self, text: &str) -> Vec<Finding> {
        self.scan_in(text, &self.regions)
    }

    /// As [`scan`](Self::scan), with phone numbers in national format judged in the regions
    /// of `locale` (the contact's language or locale: `de`, `pt-BR`) instead of the
    /// configured ones; an unknown locale falls back to [`scan`](Self::scan). Numbers in
    /// international format (`+49 …`, `0049 …`) are judged in every region.
    pub fn scan_with_locale(&self, text: &str, locale: &str) -> Vec<Finding> {
        // A bare language is the common case: its regions were resolved at build time.
        if let Some((_, regions)) = self
            .by_language
            .iter()
            .find(|(language, _)| language.eq_ignore_ascii_case(locale))
        {
            return self.scan_in(text, regions);
        }
        let regions = resolve(&regions_for_locale(locale), true);
        if regions.is_empty() {
            return self.scan(text);
        }
        self.scan_in(text, &regions)
    }

    /// `text` with every finding replaced according to `mode`.
    pub fn redact(&self, text: &str, mode: &Redaction) -> String {
        redact(text, &self.scan(text), mode)
    }

    fn scan_in(&self, text: &str, regions: &[Region]) -> Vec<Finding> {
        // Most text is already in NFKC without invisible characters: scan it in place.
        let nfkc = Normalizer::nfkc();
        let normalized = (!nfkc.leaves_unchanged(text)).then(|| nfkc.normalize(text));
        let s = normalized.as_ref().map_or(text, Normalized::as_str);
        let mut hits: Vec<Hit> = Vec::new();
        let wants = |k: PiiKind| self.kinds.contains(&k);
        if wants(PiiKind::Email) {
            self.patterns.emails(s, &mut hits);
        }
        if wants(PiiKind::Url) {
            self.patterns.urls(s, &mut hits);
        }
        if wants(PiiKind::Iban) {
            self.patterns.ibans(s, &mut hits);
        }
        if wants(PiiKind::Crypto) {
            self.patterns.crypto(s, &mut hits);
        }
        if wants(PiiKind::Ip) {
            self.patterns.ipv6(s, &mut hits);
        }
        let numbers = wants(PiiKind::Phone) || wants(PiiKind::CreditCard) || wants(PiiKind::Ip);
        if numbers && s.bytes().any(|b| b.is_ascii_digit()) {
            let taken = hits.len();
            for run in numbers::runs(s) {
                if hits
                    .get(..taken)
                    .is_some_and(|t| t.iter().any(|&(_, a, b)| run.start < b && a < run.end))
                {
                    continue;
                }
                hits.extend(
                    numbers::classify(s, &run, regions)
                        .into_iter()
                        .filter(|hit| wants(hit.0)),
                );
            }
        }
        resolve_overlaps(&mut hits);
        hits.into_iter()
            .filter_map(|(kind, start, end)| {
                let range = match &normalized {
                    Some(n) => n.original_range(start..end)?,
                    None => start..end,
                };
                Some(Finding {
                    kind,
                    text: text.get(range.clone())?.to_owned(),
                    start: range.start,
                    end: range.end,
                })
            })
            .collect()
    }
}

/// Sorts hits by position and drops every hit that overlaps an earlier, longer or
/// higher-priority one.
fn resolve_overlaps(hits: &mut Vec<Hit>) {
    hits.sort_by_key(|&(kind, start, end)| (start, std::cmp::Reverse(end), kind.priority()));
    let mut kept: Vec<Hit> = Vec::with_capacity(hits.len());
    for &hit in hits.iter() {
        match kept.last() {
            Some(&(_, _, last_end)) if hit.1 < last_end => {}
            _ => kept.push(hit),
        }
    }
    *hits = kept;
}

/// Configures a [`Scanner`].
#[derive(Clone, Debug, Default)]
pub struct ScannerBuilder {
    locale: Option<String>,
    regions: Option<Vec<String>>,
    kinds: Option<Vec<PiiKind>>,
}

impl ScannerBuilder {
    /// The locale whose regions are tried first for phone numbers in national format
    /// (`de` → Germany, Austria, Switzerland; `pt-BR` → Brazil, then Portugal). Numbers in
    /// international format (`+49 …`, `0049 …`) validate in any region.
    #[must_use]
    pub fn locale(mut self, locale: impl Into<String>) -> Self {
        self.locale = Some(locale.into());
        self
    }

    /// The fallback regions (ISO 3166 codes) tried after the locale's, in order; default
    /// [`DEFAULT_PHONE_REGIONS`]. A number written as one unbroken run of digits counts only
    /// in the locale's regions, or after a phone word (`tel`, `call`, `WhatsApp`).
    #[must_use]
    pub fn phone_regions<I, S>(mut self, regions: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.regions = Some(regions.into_iter().map(Into::into).collect());
        self
    }

    /// Only these kinds are reported (default: all).
    #[must_use]
    pub fn kinds(mut self, kinds: impl IntoIterator<Item = PiiKind>) -> Self {
        self.kinds = Some(kinds.into_iter().collect());
        self
    }

    /// Compiles the patterns and loads the phone metadata for the configured regions.
    ///
    /// # Errors
    /// [`SafetyError::InvalidConfig`] for an unknown phone region;
    /// [`SafetyError::InvalidPattern`] if a built-in pattern does not compile (a bug).
    pub fn build(self) -> Result<Scanner, SafetyError> {
        let fallback_codes: Vec<String> = self.regions.unwrap_or_else(|| {
            DEFAULT_PHONE_REGIONS
                .iter()
                .map(|r| (*r).to_owned())
                .collect()
        });
        let mut fallback = Vec::new();
        for code in &fallback_codes {
            let upper = code.trim().to_ascii_uppercase();
            let resolved = resolve(&[upper.as_str()], false);
            if resolved.is_empty() {
                return Err(SafetyError::config(format!(
                    "unknown phone region {code:?} (give an ISO 3166 code such as \"DE\")"
                )));
            }
            fallback.extend(resolved);
        }
        let mut regions = self
            .locale
            .as_deref()
            .map(|l| resolve(&regions_for_locale(l), true))
            .unwrap_or_default();
        for r in &fallback {
            if !regions.iter().any(|x| x.id == r.id) {
                regions.push(*r);
            }
        }
        phone::warm_up(&regions);
        let by_language = LANGUAGES
            .iter()
            .map(|l| (*l, resolve(&regions_for_locale(l), true)))
            .collect();
        Ok(Scanner {
            patterns: Patterns::new()?,
            regions,
            by_language,
            kinds: self.kinds.unwrap_or_else(|| PiiKind::ALL.to_vec()),
        })
    }
}

/// A short description of what was found, without the data itself: "2 e-mail addresses,
/// 1 phone number".
pub(crate) fn describe(findings: &[Finding]) -> String {
    PiiKind::ALL
        .iter()
        .filter_map(|&kind| {
            let count = findings.iter().filter(|f| f.kind == kind).count();
            (count > 0).then(|| format!("{count} {}", kind.describe(count)))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
