//! Replacing findings in the original text: mask, salted hash, or type tag.

use std::fmt::Write as _;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use super::{Finding, PiiKind};
use crate::error::SafetyError;

/// How [`redact`] replaces personal data.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Redaction {
    /// Every letter and digit becomes `*`, punctuation stays: `+49 30 1234567` →
    /// `+** ** *******`. Shows the shape, hides the value.
    Mask,
    /// A salted SHA-256 of the normalised value, truncated to 16 hex digits, with the kind:
    /// `<PHONE:3f2a…>`. The same value under the same salt gives the same tag, so records can
    /// be joined without revealing them; keep the salt secret.
    Hash {
        /// The secret salt mixed into every hash.
        salt: String,
    },
    /// The kind only: `<EMAIL>`.
    Tag,
}

impl Redaction {
    /// The salted-hash mode.
    pub fn hash(salt: impl Into<String>) -> Self {
        Redaction::Hash { salt: salt.into() }
    }

    /// The replacement for one finding.
    fn replacement(&self, finding: &Finding) -> String {
        match self {
            Redaction::Mask => finding
                .text
                .chars()
                .map(|c| if c.is_alphanumeric() { '*' } else { c })
                .collect(),
            Redaction::Tag => format!("<{}>", finding.kind),
            Redaction::Hash { salt } => {
                let mut hasher = Sha256::new();
                hasher.update(salt.as_bytes());
                hasher.update([0u8]);
                hasher.update(finding.kind.as_str().as_bytes());
                hasher.update([0u8]);
                hasher.update(canonical(finding).as_bytes());
                let digest = hasher.finalize();
                let mut hex = String::with_capacity(16);
                for byte in digest.iter().take(8) {
                    let _ = write!(hex, "{byte:02x}");
                }
                format!("<{}:{hex}>", finding.kind)
            }
        }
    }
}

impl FromStr for Redaction {
    type Err = SafetyError;

    /// `mask`, `tag`, or `hash` (with an empty salt; use [`Redaction::hash`] for a real one).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "mask" => Ok(Redaction::Mask),
            "tag" => Ok(Redaction::Tag),
            "hash" => Ok(Redaction::hash("")),
            other => Err(SafetyError::config(format!(
                "unknown redaction mode {other:?}: use mask, hash or tag"
            ))),
        }
    }
}

/// The value a hash is computed over, so that formatting does not change it: digits for
/// phone and card numbers, uppercase letters and digits for IBANs, lowercase for e-mail
/// addresses and URLs.
fn canonical(finding: &Finding) -> String {
    let text = finding.text.as_str();
    match finding.kind {
        PiiKind::Phone | PiiKind::CreditCard => {
            let digits: String = text.chars().filter(char::is_ascii_digit).collect();
            if text.trim_start().starts_with('+') {
                format!("+{digits}")
            } else {
                digits
            }
        }
        PiiKind::Iban => text
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_uppercase())
            .collect(),
        PiiKind::Email | PiiKind::Url | PiiKind::Ip => text.to_lowercase(),
        PiiKind::Crypto => text.to_owned(),
    }
}

/// `text` with every finding replaced according to `mode`. Findings must refer to `text`
/// (as [`Scanner::scan`](super::Scanner::scan) returns them); overlapping or out-of-range
/// findings are skipped rather than trusted.
///
/// ```
/// use mia_safety::{Redaction, Scanner, redact};
///
/// let scanner = Scanner::new()?;
/// let text = "Mail jane@example.com or call +49 30 1234567.";
/// let found = scanner.scan(text);
/// assert_eq!(redact(text, &found, &Redaction::Tag), "Mail <EMAIL> or call <PHONE>.");
/// assert_eq!(redact(text, &found, &Redaction::Mask), "Mail ****@*******.*** or call +** ** *******.");
/// # Ok::<(), mia_safety::SafetyError>(())
/// ```
pub fn redact(text: &str, findings: &[Finding], mode: &Redaction) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for finding in findings {
        let (start, end) = (finding.start, finding.end);
        if start < at
            || end < start
            || !text.is_char_boundary(start)
            || !text.is_char_boundary(end)
            || end > text.len()
        {
            continue;
        }
        out.push_str(text.get(at..start).unwrap_or(""));
        out.push_str(&mode.replacement(finding));
        at = end;
    }
    out.push_str(text.get(at..).unwrap_or(""));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(kind: PiiKind, text: &str, all: &str) -> Finding {
        let start = all.find(text).unwrap_or(0);
        Finding {
            kind,
            start,
            end: start + text.len(),
            text: text.to_owned(),
        }
    }

    #[test]
    fn hashes_are_salted_stable_and_ignore_formatting() {
        let a = "call +49 30 1234567";
        let b = "call +49-30-1234567";
        let fa = finding(PiiKind::Phone, "+49 30 1234567", a);
        let fb = finding(PiiKind::Phone, "+49-30-1234567", b);
        let salted = Redaction::hash("s3cret");
        let one = std::slice::from_ref(&fa);
        assert_eq!(redact(a, one, &salted), redact(b, &[fb], &salted));
        let other = Redaction::hash("other");
        assert_ne!(redact(a, one, &salted), redact(a, one, &other));
        let out = redact(a, &[fa], &salted);
        assert!(
            out.starts_with("call <PHONE:") && out.len() == "call <PHONE:>".len() + 16,
            "{out}"
        );
    }

    #[test]
    fn bad_findings_are_skipped_not_trusted() {
        let text = "héllo";
        let f = Finding {
            kind: PiiKind::Email,
            start: 2,
            end: 3,
            text: String::new(),
        };
        assert_eq!(redact(text, &[f], &Redaction::Tag), "héllo");
        let f = Finding {
            kind: PiiKind::Email,
            start: 4,
            end: 99,
            text: String::new(),
        };
        assert_eq!(redact(text, &[f], &Redaction::Tag), "héllo");
    }

    #[test]
    fn modes_parse() {
        assert_eq!("mask".parse::<Redaction>().ok(), Some(Redaction::Mask));
        assert_eq!("TAG".parse::<Redaction>().ok(), Some(Redaction::Tag));
        assert!(matches!(
            "hash".parse::<Redaction>(),
            Ok(Redaction::Hash { .. })
        ));
        assert!("blur".parse::<Redaction>().is_err());
    }
}
