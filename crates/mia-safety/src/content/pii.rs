//! Personal data in outgoing copy: e-mail addresses, phone numbers, payment card numbers.
//!
//! Tuned for precision: marketing copy is full of prices, dates, versions, SKUs and order
//! numbers, and a reviewer who is asked about every one of them stops reading. What is found
//! escalates (a human looks); nothing here denies.

use std::collections::BTreeSet;

use regex::Regex;

use crate::error::SafetyError;
use crate::normalize::{is_word_char, normalize};
use crate::rules;

/// E-mail addresses (on normalised, lowercase text).
const EMAIL: &str =
    r"[\p{L}\p{N}._%+\-]+@(?:[\p{L}\p{N}](?:[\p{L}\p{N}\-]*[\p{L}\p{N}])?\.)+\p{L}{2,}";
/// Dates and clock times, masked before looking for numbers (`2026-11-26`, `26-11-2026`,
/// `10:00`).
const DATE_OR_TIME: &str =
    r"\b(?:\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[\-./]\d{1,2}[\-./]\d{2,4}|\d{1,2}:\d{2}(?::\d{2})?)\b";
/// Runs of digit groups joined by one space or dash, with parentheses around a group and an
/// optional leading `+`.
const NUMBER: &str = r"(?:\+ ?)?\(?\d+(?:(?:[ \-]?\(|\)[ \-]?|[ \-])\d+)*";
/// Groups of thousands (`1 299 000`): an amount, not a phone number.
const THOUSANDS: &str = r"^[1-9]\d{0,2}(?: \d{3})+$";
/// A year range (`2019-2026`).
const YEAR_RANGE: &str = r"^(?:19|20)\d{2}-(?:19|20)\d{2}$";

/// Words that, right before a number, say it is a reference rather than a phone number.
const REFERENCE_WORDS: &[&str] = &[
    "order",
    "invoice",
    "ref",
    "reference",
    "sku",
    "item",
    "article",
    "art",
    "ticket",
    "tracking",
    "booking",
    "confirmation",
    "id",
    "code",
    "coupon",
    "voucher",
    "promo",
    "model",
    "part",
    "batch",
    "serial",
];
/// Words between the reference word and the number (`order no. 123`).
const NUMBER_WORDS: &[&str] = &["no", "nr", "num", "number"];
/// Characters that make a number a price, percentage, path or identifier when glued to it.
const NOT_A_PHONE_NEIGHBOUR: &[char] = &[
    '#', '№', '.', ',', '-', '/', '\\', '@', '=', '&', '?', '%', '$', '€', '£', '¥', '₹', '₽', '₩',
    '₺', '₴', '₿', '¢', '¤', '~',
];

/// The kinds of personal data the scanner finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum PiiKind {
    Email,
    Phone,
    PaymentCard,
}

impl PiiKind {
    /// The name of the kind, singular or plural.
    fn label(self, count: usize) -> &'static str {
        match (self, count == 1) {
            (PiiKind::Email, true) => "e-mail address",
            (PiiKind::Email, false) => "e-mail addresses",
            (PiiKind::Phone, true) => "phone number",
            (PiiKind::Phone, false) => "phone numbers",
            (PiiKind::PaymentCard, true) => "payment card number",
            (PiiKind::PaymentCard, false) => "payment card numbers",
        }
    }
}

/// The compiled patterns of the `pii` rule.
#[derive(Clone, Debug)]
pub(crate) struct PiiScanner {
    email: Regex,
    date_or_time: Regex,
    number: Regex,
    thousands: Regex,
    year_range: Regex,
    /// Addresses the host publishes on purpose (`support@shop.example`), normalised.
    allowed_emails: BTreeSet<String>,
}

impl PiiScanner {
    /// Compiles the patterns.
    ///
    /// # Errors
    /// [`SafetyError::InvalidPattern`] if a built-in pattern does not compile (a bug, covered
    /// by tests); [`SafetyError::InvalidConfig`] for an allowed address without an `@`.
    pub(crate) fn new(allowed_emails: &[String]) -> Result<Self, SafetyError> {
        let compile = |p: &str| Regex::new(p).map_err(|e| SafetyError::pattern(rules::PII, p, e));
        let mut allowed = BTreeSet::new();
        for address in allowed_emails {
            let n = normalize(address);
            if n.contains(' ') || n.split('@').count() != 2 {
                return Err(SafetyError::config(format!(
                    "allowed e-mail {address:?} is not an address"
                )));
            }
            allowed.insert(n);
        }
        Ok(Self {
            email: compile(EMAIL)?,
            date_or_time: compile(DATE_OR_TIME)?,
            number: compile(NUMBER)?,
            thousands: compile(THOUSANDS)?,
            year_range: compile(YEAR_RANGE)?,
            allowed_emails: allowed,
        })
    }

    /// The kinds found in normalised `text`, each with how often, in [`PiiKind`] order.
    pub(crate) fn scan(&self, text: &str) -> Vec<(PiiKind, usize)> {
        let mut found = Vec::new();
        let mut emails = 0;
        for m in self.email.find_iter(text) {
            if !self.allowed_emails.contains(m.as_str()) {
                emails += 1;
            }
        }
        // Numbers inside e-mail addresses, dates and times are not phone numbers; mask them
        // with a word character so nothing glued to them counts either.
        let masked = self.email.replace_all(text, "_");
        let masked = self.date_or_time.replace_all(&masked, "_");
        let (mut phones, mut cards) = (0, 0);
        for m in self.number.find_iter(&masked) {
            match self.classify(&masked, m.start(), m.end()) {
                Some(PiiKind::Phone) => phones += 1,
                Some(PiiKind::PaymentCard) => cards += 1,
                _ => {}
            }
        }
        for (kind, count) in [
            (PiiKind::Email, emails),
            (PiiKind::Phone, phones),
            (PiiKind::PaymentCard, cards),
        ] {
            if count > 0 {
                found.push((kind, count));
            }
        }
        found
    }

    /// Whether the number at `start..end` of `text` is a phone or card number.
    fn classify(&self, text: &str, start: usize, end: usize) -> Option<PiiKind> {
        let candidate = text.get(start..end)?;
        let before = text.get(..start)?;
        let after = text.get(end..)?;
        if glued(before.chars().next_back(), after.chars().next(), after) {
            return None;
        }
        if follows_reference_word(before) {
            return None;
        }
        let digits: Vec<u8> = candidate
            .bytes()
            .filter(u8::is_ascii_digit)
            .map(|b| b - b'0')
            .collect();
        let plus = candidate.starts_with('+');
        let parens = candidate.contains('(') || candidate.contains(')');
        if (13..=19).contains(&digits.len()) && !plus && !parens && luhn(&digits) {
            return Some(PiiKind::PaymentCard);
        }
        if !(7..=15).contains(&digits.len()) {
            return None;
        }
        if self.thousands.is_match(candidate) || self.year_range.is_match(candidate) {
            return None;
        }
        // A trunk prefix in parentheses, "+49 (0) 30 1234567", is not a group of its own.
        let core = candidate.replace("(0)", " ");
        let groups: Vec<&str> = core
            .split(|c: char| !c.is_ascii_digit())
            .filter(|g| !g.is_empty())
            .collect();
        // "1 2 3 4 5 6 7" is a list; only a leading country or trunk code may be one digit.
        if groups.iter().skip(1).any(|g| g.len() == 1) {
            return None;
        }
        // A bare run of 7-9 digits not starting with a trunk prefix is more often a quantity
        // or an id ("1000000 customers") than a phone number.
        if !plus && groups.len() == 1 && digits.len() < 10 && digits.first() != Some(&0) {
            return None;
        }
        Some(PiiKind::Phone)
    }
}

/// Whether the number is glued to something that makes it part of a word, price, decimal,
/// percentage, path or identifier.
fn glued(before: Option<char>, after: Option<char>, rest: &str) -> bool {
    let bad = |c: char| is_word_char(c) || NOT_A_PHONE_NEIGHBOUR.contains(&c);
    if before.is_some_and(bad) {
        return true;
    }
    match after {
        // A full stop or comma ending a sentence is fine; followed by a digit it is a decimal.
        Some('.' | ',') => rest
            .chars()
            .nth(1)
            .is_some_and(|c| c.is_ascii_digit() || is_word_char(c)),
        Some(c) if bad(c) => true,
        // "1234567 €": a price with the currency after a space.
        Some(' ') => rest
            .chars()
            .nth(1)
            .is_some_and(|c| NOT_A_PHONE_NEIGHBOUR.contains(&c) && c != '-'),
        _ => false,
    }
}

/// Whether `before` ends with a reference marker: `#`, `№`, or a word like "order" optionally
/// followed by "no." and a colon.
fn follows_reference_word(before: &str) -> bool {
    let trim = |s: &str| -> String {
        s.trim_end_matches(|c: char| c.is_whitespace() || matches!(c, ':' | '.' | '#' | '№'))
            .to_owned()
    };
    let tail = before.trim_end();
    if tail.ends_with('#') || tail.ends_with('№') {
        return true;
    }
    let mut rest = trim(tail);
    for _ in 0..2 {
        let word_start = rest
            .char_indices()
            .rev()
            .find(|(_, c)| !is_word_char(*c))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let word = rest.get(word_start..).unwrap_or("");
        if REFERENCE_WORDS.contains(&word) {
            return true;
        }
        if !NUMBER_WORDS.contains(&word) {
            return false;
        }
        rest = trim(rest.get(..word_start).unwrap_or(""));
    }
    false
}

/// The Luhn checksum every payment card number passes.
fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// A short description of what was found, without the data itself.
pub(crate) fn describe(found: &[(PiiKind, usize)]) -> String {
    let parts: Vec<String> = found
        .iter()
        .map(|(kind, count)| format!("{count} {}", kind.label(*count)))
        .collect();
    format!(
        "copy contains personal data ({}); a human must confirm it belongs there",
        parts.join(", ")
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn scan(text: &str) -> Vec<(PiiKind, usize)> {
        PiiScanner::new(&[]).unwrap().scan(&normalize(text))
    }

    fn kinds(text: &str) -> Vec<PiiKind> {
        scan(text).into_iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn finds_email_addresses() {
        assert_eq!(
            kinds("write to jane.doe+promo@example.co.uk today"),
            [PiiKind::Email]
        );
        assert_eq!(kinds("Ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ"), [PiiKind::Email]);
        assert_eq!(kinds("JANE@EXAMPLE.COM"), [PiiKind::Email]);
        assert_eq!(kinds("follow @mia_shop on telegram"), []);
    }

    #[test]
    fn published_addresses_can_be_allowed() {
        let s = PiiScanner::new(&["Support@Shop.example".into()]).unwrap();
        assert_eq!(s.scan(&normalize("ask support@shop.example")), []);
        assert_eq!(
            s.scan(&normalize("ask jane@shop.example")),
            [(PiiKind::Email, 1)]
        );
        assert!(PiiScanner::new(&["not an address".into()]).is_err());
    }

    #[test]
    fn finds_phone_numbers_in_common_formats() {
        for text in [
            "Call +49 30 1234567 now",
            "call (030) 123-4567",
            "call 030 1234567",
            "call 030-123-45-67",
            "call 01711234567",
            "+1 (555) 123-4567",
            "phone: 555-123-4567.",
            "+7 999 123 45 67",
            "+49 (0) 30 1234567",
            "0800 123 456",
            "tel 004930123456",
            "call 555 123 4567, today",
        ] {
            assert_eq!(kinds(text), [PiiKind::Phone], "{text}");
        }
        assert_eq!(scan("030 1234567 or 040 7654321"), [(PiiKind::Phone, 2)]);
    }

    #[test]
    fn prices_dates_versions_and_references_are_not_phone_numbers() {
        for text in [
            "now only €19.99",
            "now only 19.99€",
            "$1,299,000 in prizes",
            "price 1 299 000 ₽",
            "1234567 € total",
            "watch promo.mp4",
            "update to v2.3.1",
            "sale ends 2026-11-26",
            "sale ends 2026-11-26 10:00",
            "sale ends 26-11-2026",
            "SKU-12345",
            "SKU-1234567",
            "order #12345678",
            "Order 12345678",
            "order no. 1234567",
            "Invoice: 0301234567",
            "your code 4815162342",
            "join 1000000 happy customers",
            "50% off, 7 days left",
            "1 2 3 4 5 6 7 8",
            "open 2019-2026",
            "see example.com/p/12345678",
            "track?id=12345678",
            "12345678%",
            "v1234567",
        ] {
            assert_eq!(kinds(text), [], "{text}");
        }
    }

    #[test]
    fn finds_payment_card_numbers_that_pass_luhn() {
        assert_eq!(kinds("card 4111 1111 1111 1111"), [PiiKind::PaymentCard]);
        assert_eq!(kinds("card 4111-1111-1111-1111"), [PiiKind::PaymentCard]);
        assert_eq!(kinds("card 5500005555555559"), [PiiKind::PaymentCard]);
        assert_eq!(kinds("amex 378282246310005"), [PiiKind::PaymentCard]);
        // One digit off: fails Luhn, and 16 digits is too long for a phone number.
        assert_eq!(kinds("card 4111 1111 1111 1112"), []);
    }

    #[test]
    fn the_description_counts_without_quoting() {
        let found = scan("mail a@b.example or b@c.example, card 4111111111111111");
        assert_eq!(found, [(PiiKind::Email, 2), (PiiKind::PaymentCard, 1)]);
        let text = describe(&found);
        assert!(text.contains("2 e-mail addresses"), "{text}");
        assert!(text.contains("1 payment card number"), "{text}");
        assert!(!text.contains("4111"), "{text}");
        assert!(!text.contains("example"), "{text}");
    }

    #[test]
    fn luhn_matches_known_values() {
        assert!(luhn(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1, 3]));
        assert!(!luhn(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1, 4]));
    }
}
