//! The pattern-based detectors: e-mail addresses (plain and obfuscated), URLs, IBANs, crypto
//! wallet addresses and IPv6 addresses. Each regex finds candidates; code checks them.

use std::net::Ipv6Addr;

use aho_corasick::AhoCorasick;
use regex::Regex;

use super::PiiKind;
use super::checks::{iban_length, is_iban};
use super::crypto::{is_base58_address, is_ethereum_address, is_segwit_address};
use crate::domain::{is_bare_tld, is_known_tld};
use crate::error::SafetyError;
use crate::rules;

/// Characters a URL may contain (RFC 3986 plus Unicode letters and digits for IRIs).
const URL_CHARS: &str = r"[\p{L}\p{N}\-._~:/?#\[\]@!$&'()*+,;=%]";

/// File extensions that look like top-level domains after an `@` (`logo@2x.png`).
const FILE_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "gif", "svg", "webp", "mp4", "mov", "pdf", "txt", "zip", "doc", "docx",
    "xls", "xlsx", "csv", "json", "html", "htm", "js", "css", "heic", "avif", "mp3", "wav",
];

/// Markers that make an address obfuscated on their own: a bracketed or spaced `at`.
const AT_MARKERS: &[&str] = &[
    "[at]", "(at)", "{at}", "<at>", "[ at ]", "( at )", "{ at }", "< at >", " @ ", "[@]", "(@)",
];
/// Markers that need a spelled-out dot as well (`jane at example dot com`).
const SPOKEN_AT: &[&str] = &[" at ", " arroba ", " собака ", " СОБАКА ", "@"];
/// Spelled-out or bracketed dots.
const DOT_MARKERS: &[&str] = &[
    " dot ",
    "[dot]",
    "(dot)",
    "{dot}",
    "[.]",
    "(.)",
    " punto ",
    " punkt ",
    " точка ",
    " ponto ",
    " nokta ",
    " point ",
];

/// The compiled patterns, built once per scanner.
#[derive(Clone, Debug)]
pub(crate) struct Patterns {
    email: Regex,
    obfuscated_email: Regex,
    scheme_url: Regex,
    bare_url: Regex,
    iban: Regex,
    base58: Regex,
    bech32: Regex,
    ethereum: Regex,
    ipv6: Regex,
    /// Markers of obfuscated addresses: the costly pattern runs only where they are.
    at_markers: AhoCorasick,
    spoken_at: AhoCorasick,
    /// Both of the above: one pass rules out most text.
    any_at: AhoCorasick,
    dot_markers: AhoCorasick,
}

/// A finding on the scanned text: kind and byte range.
pub(crate) type Hit = (PiiKind, usize, usize);

impl Patterns {
    /// Compiles the patterns.
    ///
    /// # Errors
    /// [`SafetyError::InvalidPattern`] if a built-in pattern does not compile (a bug, covered
    /// by tests).
    pub(crate) fn new() -> Result<Self, SafetyError> {
        let compile = |p: &str| Regex::new(p).map_err(|e| SafetyError::pattern(rules::PII, p, e));
        let at = r"(?:\[\s*(?:at|@)\s*\]|\(\s*(?:at|@)\s*\)|\{\s*(?:at|@)\s*\}|<\s*(?:at|@)\s*>|\s+(?:at|arroba|собака)\s+|\s+@\s+|@)";
        let dot = r"(?:\s*\[\s*(?:dot|\.)\s*\]\s*|\s*\(\s*(?:dot|\.)\s*\)\s*|\s*\{\s*(?:dot|\.)\s*\}\s*|\s+(?:dot|punto|punkt|точка|ponto|nokta|point)\s+|\.)";
        let obfuscated = format!(
            r"(?i)[a-z0-9][a-z0-9_%+\-]*(?:{dot}[a-z0-9_%+\-]+)*\s*{at}\s*[a-z0-9][a-z0-9\-]*(?:{dot}[a-z0-9\-]+)+"
        );
        Ok(Self {
            email: compile(
                r"(?i)[\p{L}\p{N}._%+\-]+@(?:[\p{L}\p{N}](?:[\p{L}\p{N}\-]*[\p{L}\p{N}])?\.)+\p{L}{2,}",
            )?,
            obfuscated_email: compile(&obfuscated)?,
            scheme_url: compile(&format!(r"(?i)(?:https?|ftp)://{URL_CHARS}+"))?,
            bare_url: compile(&format!(
                r"(?i)(?:[\p{{L}}\p{{N}}](?:[\p{{L}}\p{{N}}\-]*[\p{{L}}\p{{N}}])?\.)+(?:\p{{L}}{{2,}}|xn--[a-z0-9\-]+)(?::\d{{2,5}})?(?:[/?#]{URL_CHARS}*)?"
            ))?,
            iban: compile(r"(?i)[a-z]{2}[0-9]{2}(?:[ \-]?[a-z0-9]){11,32}")?,
            base58: compile(r"[13][1-9A-HJ-NP-Za-km-z]{25,34}")?,
            bech32: compile(r"(?i)(?:bc|tb)1[02-9ac-hj-np-z]{6,87}")?,
            ethereum: compile(r"0x[0-9a-fA-F]{40}")?,
            ipv6: compile(r"(?i)[0-9a-f:]*:[0-9a-f]*:[0-9a-f:.]*")?,
            at_markers: markers(AT_MARKERS)?,
            spoken_at: markers(SPOKEN_AT)?,
            any_at: markers(&[AT_MARKERS, SPOKEN_AT].concat())?,
            dot_markers: markers(DOT_MARKERS)?,
        })
    }

    /// E-mail addresses, plain and obfuscated (`jane [at] example [dot] com`).
    pub(crate) fn emails(&self, text: &str, out: &mut Vec<Hit>) {
        if text.contains('@') {
            for m in self.email.find_iter(text) {
                let before = text.get(..m.start()).and_then(|h| h.chars().next_back());
                if before.is_some_and(|c| c == '@' || c == '/') {
                    continue;
                }
                let tld = m.as_str().rsplit('.').next().unwrap_or("");
                if FILE_EXTENSIONS.iter().any(|e| tld.eq_ignore_ascii_case(e)) {
                    continue;
                }
                // A local part cannot start or end with a dot.
                let start = m.start() + leading_dots(m.as_str());
                out.push((PiiKind::Email, start, m.end()));
            }
        }
        let obfuscated = self.any_at.is_match(text)
            && (self.at_markers.is_match(text)
                || (self.spoken_at.is_match(text) && self.dot_markers.is_match(text)));
        if !obfuscated {
            return;
        }
        let mut from = 0;
        while let Some(m) = self.obfuscated_email.find_at(text, from) {
            let candidate = m.as_str();
            let plain = !candidate.contains(char::is_whitespace)
                && !candidate.contains(['[', '(', '{', '<']);
            if plain {
                // The plain pattern has judged it.
                from = m.end();
                continue;
            }
            let before = text.get(..m.start()).and_then(|h| h.chars().next_back());
            let tld = candidate
                .rsplit(|c: char| !c.is_ascii_alphanumeric() && c != '-')
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            if !before.is_some_and(|c| c.is_alphanumeric() || c == '.' || c == '@')
                && is_known_tld(&tld)
                && obfuscation_is_consistent(candidate)
            {
                out.push((PiiKind::Email, m.start(), m.end()));
                from = m.end();
            } else {
                // Go on after the first word, not one character later: linear time.
                let word = candidate
                    .find(|c: char| !(c.is_alphanumeric() || "._%+-".contains(c)))
                    .unwrap_or(candidate.len())
                    .max(1);
                from = next_char(text, m.start() + word - 1);
            }
        }
    }

    /// URLs with a scheme, `www.` hosts and bare domains with a known TLD, without trailing
    /// punctuation.
    pub(crate) fn urls(&self, text: &str, out: &mut Vec<Hit>) {
        let start_len = out.len();
        for m in self.scheme_url.find_iter(text) {
            let before = text.get(..m.start()).and_then(|h| h.chars().next_back());
            if before.is_some_and(char::is_alphanumeric) {
                continue;
            }
            let end = m.start() + trim_url(m.as_str());
            if text.get(m.start()..end).is_some_and(|u| u.ends_with("://")) {
                continue;
            }
            out.push((PiiKind::Url, m.start(), end));
        }
        if !text.contains('.') {
            return;
        }
        for m in self.bare_url.find_iter(text) {
            if out
                .get(start_len..)
                .is_some_and(|u| u.iter().any(|&(_, s, e)| m.start() < e && s < m.end()))
            {
                continue;
            }
            let mut back = text.get(..m.start()).unwrap_or("").chars().rev();
            let (before, before2) = (back.next(), back.next());
            // "Details:shop.com" is punctuation; "x:shop.com" after a digit or a slash is not.
            let colon_glued = before == Some(':') && !before2.is_some_and(char::is_alphabetic);
            if colon_glued
                || before.is_some_and(|c| {
                    c.is_alphanumeric() || matches!(c, '@' | '.' | '/' | '_' | '-')
                })
            {
                continue;
            }
            if text
                .get(m.end()..)
                .and_then(|t| t.chars().next())
                .is_some_and(char::is_alphanumeric)
            {
                // Cut off inside a word: `promo.mp4` matched as `promo.mp`.
                continue;
            }
            let end = m.start() + trim_url(m.as_str());
            let Some(url) = text.get(m.start()..end) else {
                continue;
            };
            let host_end = url.find([':', '/', '?', '#']).unwrap_or(url.len());
            let host = url.get(..host_end).unwrap_or(url);
            let after = text.get(end..).and_then(|t| t.chars().next());
            if after.is_some_and(|c| c == '@') {
                continue;
            }
            let tld = host.rsplit('.').next().unwrap_or("");
            let www = host.len() > 4
                && host
                    .get(..4)
                    .is_some_and(|p| p.eq_ignore_ascii_case("www."));
            let tld_lower = tld.to_lowercase();
            let known = if www {
                is_known_tld(&tld_lower) || tld_lower.starts_with("xn--")
            } else {
                is_bare_tld(&tld_lower)
            };
            // "today.Shop now": a capitalised word after a full stop is a new sentence.
            let sentence = !www
                && host_end == url.len()
                && tld.chars().next().is_some_and(char::is_uppercase)
                && tld.chars().skip(1).all(char::is_lowercase);
            let labels_ok = host.split('.').all(|l| {
                !l.is_empty() && l.chars().count() <= 63 && !l.chars().all(|c| c.is_ascii_digit())
            });
            if known && !sentence && labels_ok {
                out.push((PiiKind::Url, m.start(), end));
            }
        }
    }

    /// IBANs: a country with a known length, check digits, mod-97.
    pub(crate) fn ibans(&self, text: &str, out: &mut Vec<Hit>) {
        // Two letters and two digits at a word start, or no IBAN at all.
        let b = text.as_bytes();
        let possible = b.windows(4).enumerate().any(|(i, w)| {
            // The digits first: most text has few, and fewer after two letters.
            matches!(w, [l1, l2, d1, d2] if d2.is_ascii_digit()
                && d1.is_ascii_digit()
                && l2.is_ascii_alphabetic()
                && l1.is_ascii_alphabetic())
                && (i == 0 || b.get(i - 1).is_some_and(|p| !p.is_ascii_alphanumeric()))
        });
        if !possible {
            return;
        }
        for m in self.iban.find_iter(text) {
            let before = text.get(..m.start()).and_then(|h| h.chars().next_back());
            if before.is_some_and(char::is_alphanumeric) {
                continue;
            }
            let country = m.as_str().get(..2).unwrap_or("").to_ascii_uppercase();
            let Some(len) = iban_length(&country) else {
                continue;
            };
            // Take exactly the country's length of characters, then require a word end.
            let mut compact = String::with_capacity(len);
            let mut end = m.start();
            for (i, c) in m.as_str().char_indices() {
                if compact.len() == len {
                    break;
                }
                if c.is_ascii_alphanumeric() {
                    compact.push(c.to_ascii_uppercase());
                    end = m.start() + i + 1;
                }
            }
            let after = text.get(end..).and_then(|t| t.chars().next());
            if compact.len() == len
                && !after.is_some_and(char::is_alphanumeric)
                && is_iban(&compact)
            {
                out.push((PiiKind::Iban, m.start(), end));
            }
        }
    }

    /// Crypto wallet addresses with valid checksums.
    pub(crate) fn crypto(&self, text: &str, out: &mut Vec<Hit>) {
        let word_end = |s: usize, e: usize| {
            let before = text.get(..s).and_then(|h| h.chars().next_back());
            let after = text.get(e..).and_then(|t| t.chars().next());
            !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
        };
        if !has_long_token(text, 26) {
            return;
        }
        for m in self.base58.find_iter(text) {
            if word_end(m.start(), m.end()) && is_base58_address(m.as_str()) {
                out.push((PiiKind::Crypto, m.start(), m.end()));
            }
        }
        for m in self.bech32.find_iter(text) {
            if word_end(m.start(), m.end()) && is_segwit_address(m.as_str()) {
                out.push((PiiKind::Crypto, m.start(), m.end()));
            }
        }
        if text.contains("0x") {
            for m in self.ethereum.find_iter(text) {
                if word_end(m.start(), m.end()) && is_ethereum_address(m.as_str()) {
                    out.push((PiiKind::Crypto, m.start(), m.end()));
                }
            }
        }
    }

    /// IPv6 addresses, parsed by the standard library.
    pub(crate) fn ipv6(&self, text: &str, out: &mut Vec<Hit>) {
        if text.bytes().filter(|&b| b == b':').count() < 2 {
            return;
        }
        for m in self.ipv6.find_iter(text) {
            // "login:fe80::1": a colon glued to the word before is punctuation.
            let lead = usize::from(m.as_str().starts_with(':') && !m.as_str().starts_with("::"));
            let start = m.start() + lead;
            let candidate = m.as_str().get(lead..).unwrap_or("").trim_end_matches('.');
            // A trailing colon ends a sentence ("at fe80::1:"), unless it is "::".
            let candidate = if candidate.ends_with(':') && !candidate.ends_with("::") {
                candidate.trim_end_matches(':')
            } else {
                candidate
            };
            let end = start + candidate.len();
            let before = text.get(..start).and_then(|h| h.chars().next_back());
            let after = text.get(end..).and_then(|t| t.chars().next());
            if (lead == 0 && before.is_some_and(|c| c.is_alphanumeric() || c == ':'))
                || after.is_some_and(char::is_alphanumeric)
            {
                continue;
            }
            let groups = candidate.split(':').filter(|g| !g.is_empty()).count();
            if (groups >= 2 || candidate == "::1") && candidate.parse::<Ipv6Addr>().is_ok() {
                out.push((PiiKind::Ip, start, end));
            }
        }
    }
}

/// Whether `text` has `len` ASCII letters or digits in a row. Bytes, not characters: a
/// non-ASCII character's bytes are all outside ASCII.
///
/// Each window of `len` bytes is read from its end back to the last byte that is not a
/// letter or digit, and the next window starts after that byte, so ordinary text (short
/// words) is read a few bytes per window rather than byte by byte.
fn has_long_token(text: &str, len: usize) -> bool {
    let bytes = text.as_bytes();
    let mut start = 0;
    while let Some(window) = bytes.get(start..start + len) {
        match window.iter().rposition(|b| !b.is_ascii_alphanumeric()) {
            Some(p) => start += p + 1,
            None => return true,
        }
    }
    false
}

/// An ASCII-case-insensitive matcher for `patterns`.
fn markers(patterns: &[&str]) -> Result<AhoCorasick, SafetyError> {
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(patterns)
        .map_err(|e| SafetyError::pattern(rules::PII, "obfuscation markers", e))
}

/// Whether an obfuscated candidate has an `at` marker, and, when that marker is a plain word
/// (`jane at example dot com`), spells every dot out too: `find us at shop.com` is a
/// sentence, not an address.
fn obfuscation_is_consistent(candidate: &str) -> bool {
    let lower = candidate.to_lowercase();
    let marked = lower.contains('@')
        || [
            "[at]", "(at)", "{at}", "<at>", "[ at ]", "( at )", "{ at }", "< at >",
        ]
        .iter()
        .any(|m| lower.contains(m));
    if marked {
        return true;
    }
    let spoken = [" at ", " arroba ", " собака "]
        .iter()
        .find_map(|m| lower.find(m).map(|i| i + m.len()));
    spoken.is_some_and(|domain_start| {
        lower
            .get(domain_start..)
            .is_some_and(|domain| !domain.contains('.'))
    })
}

fn leading_dots(s: &str) -> usize {
    s.len() - s.trim_start_matches('.').len()
}

fn next_char(text: &str, at: usize) -> usize {
    text.get(at..)
        .and_then(|t| t.chars().next())
        .map_or(text.len(), |c| at + c.len_utf8())
}

/// The length of `url` without trailing punctuation and unbalanced closing brackets.
fn trim_url(url: &str) -> usize {
    let mut end = url.len();
    loop {
        let Some(last) = url.get(..end).and_then(|u| u.chars().next_back()) else {
            return end;
        };
        let head = url.get(..end).unwrap_or("");
        let unbalanced = |open: char, close: char| {
            last == close && head.matches(open).count() < head.matches(close).count()
        };
        if matches!(last, '.' | ',' | ';' | ':' | '!' | '?' | '\'' | '*' | '"')
            || unbalanced('(', ')')
            || unbalanced('[', ']')
        {
            end -= last.len_utf8();
        } else {
            return end;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    proptest::proptest! {
        #[test]
        fn long_tokens_are_found_as_a_byte_by_byte_count_finds_them(
            text in "[a-c0-2 .é]{0,80}",
            len in 1usize..30,
        ) {
            let mut token = 0;
            let expected = text.bytes().any(|b| {
                token = if b.is_ascii_alphanumeric() { token + 1 } else { 0 };
                token >= len
            });
            proptest::prop_assert_eq!(has_long_token(&text, len), expected);
        }
    }

    fn found(text: &str) -> Vec<(PiiKind, &str)> {
        let p = Patterns::new().unwrap();
        let mut out = Vec::new();
        p.emails(text, &mut out);
        p.urls(text, &mut out);
        p.ibans(text, &mut out);
        p.crypto(text, &mut out);
        p.ipv6(text, &mut out);
        out.iter()
            .map(|&(k, s, e)| (k, text.get(s..e).unwrap()))
            .collect()
    }

    #[test]
    fn emails_plain_and_obfuscated() {
        assert_eq!(
            found("mail jane.doe+x@example.co.uk."),
            [(PiiKind::Email, "jane.doe+x@example.co.uk")]
        );
        assert_eq!(
            found("jane [at] example [dot] com"),
            [(PiiKind::Email, "jane [at] example [dot] com")]
        );
        assert_eq!(
            found("write: j.doe(at)mail(dot)de!"),
            [(PiiKind::Email, "j.doe(at)mail(dot)de")]
        );
        assert_eq!(
            found("jane at example dot com"),
            [(PiiKind::Email, "jane at example dot com")]
        );
        assert_eq!(found("meet at the cafe dot later"), []);
        assert_eq!(found("logo@2x.png and @mia_shop"), []);
    }

    #[test]
    fn urls_have_exact_spans() {
        assert_eq!(
            found("see https://shop.example/sale?x=1."),
            [(PiiKind::Url, "https://shop.example/sale?x=1")]
        );
        assert_eq!(
            found("(see https://en.wikipedia.org/wiki/Foo_(bar))"),
            [(PiiKind::Url, "https://en.wikipedia.org/wiki/Foo_(bar)")]
        );
        assert_eq!(
            found("visit www.shop.co.uk!"),
            [(PiiKind::Url, "www.shop.co.uk")]
        );
        assert_eq!(
            found("visit shop.com.br/promo, now"),
            [(PiiKind::Url, "shop.com.br/promo")]
        );
        assert_eq!(found("watch promo.mp4 or file.txt, v2.3.1"), []);
        assert_eq!(found("Sale ends today.Shop now"), []);
    }

    #[test]
    fn ibans_crypto_and_ipv6() {
        assert_eq!(
            found("IBAN DE89 3704 0044 0532 0130 00 bitte"),
            [(PiiKind::Iban, "DE89 3704 0044 0532 0130 00")]
        );
        assert_eq!(found("IBAN DE89 3704 0044 0532 0130 01"), []);
        assert_eq!(
            found("send to 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa."),
            [(PiiKind::Crypto, "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa")]
        );
        assert_eq!(
            found("host 2001:db8::1, time 10:30:00"),
            [(PiiKind::Ip, "2001:db8::1")]
        );
    }
}
