//! The logic of `mia scan`: one input line (a JSON object `{"id", "text"}` or plain text) in,
//! one JSON object out, with the personal data found, the content guard's verdict and the
//! rules that fired.
//!
//! ```
//! use mia_safety::scan::LineScanner;
//! use mia_safety::{ContentGuard, Redaction, Scanner};
//!
//! let lines = LineScanner::new(ContentGuard::recommended(), Scanner::new()?)
//!     .with_redaction(Some(Redaction::Tag));
//! let out = lines.scan_line(r#"{"id": "m1", "text": "Call +49 30 1234567"}"#, 1);
//! assert_eq!(out["id"], "m1");
//! assert_eq!(out["findings"][0]["kind"], "PHONE");
//! assert_eq!(out["findings"][0]["start"], 5);
//! assert_eq!(out["verdict"], "escalate");
//! assert_eq!(out["redacted"], "Call <PHONE>");
//! # Ok::<(), mia_safety::SafetyError>(())
//! ```

use mia_core::{ContentContext, ContentKind, ContentPolicy, Decision};
use serde_json::{Map, Value, json};

use crate::{ContentGuard, Redaction, Scanner, redact};

/// Scans input lines: the PII [`Scanner`] for findings (every kind, URLs included), the
/// [`ContentGuard`] for the verdict, optionally a [`Redaction`] of the text.
#[derive(Clone, Debug)]
pub struct LineScanner {
    guard: ContentGuard,
    scanner: Scanner,
    locale: Option<String>,
    redaction: Option<Redaction>,
}

impl LineScanner {
    /// A line scanner with no locale (the scanner's own phone regions) and no redaction.
    pub fn new(guard: ContentGuard, scanner: Scanner) -> Self {
        Self {
            guard,
            scanner,
            locale: None,
            redaction: None,
        }
    }

    /// The language or locale of the messages (`de`, `pt-BR`), unless a line names its own
    /// in a `"locale"` or `"language"` field.
    #[must_use]
    pub fn with_locale(mut self, locale: Option<String>) -> Self {
        self.locale = locale.filter(|l| !l.trim().is_empty());
        self
    }

    /// Adds a `"redacted"` field with the text redacted this way.
    #[must_use]
    pub fn with_redaction(mut self, redaction: Option<Redaction>) -> Self {
        self.redaction = redaction;
        self
    }

    /// Scans one input line. A JSON object with a string `"text"` is read as such (its
    /// `"id"` is echoed, `"locale"` or `"language"` overrides the scanner's locale); any other
    /// line is the text itself, with `line_number` as its id. Offsets are UTF-8 byte offsets
    /// into the text, end exclusive.
    ///
    /// The output: `{"id", "findings": [{"kind", "start", "end", "text"}], "verdict",
    /// "rules": [{"rule", "decision", "detail"}]}`, plus `"redacted"` when redaction is on.
    pub fn scan_line(&self, line: &str, line_number: usize) -> Value {
        let parsed: Option<Map<String, Value>> = serde_json::from_str(line.trim()).ok();
        let (id, text, locale) = match parsed {
            Some(obj) if obj.get("text").is_some_and(Value::is_string) => {
                let text = obj
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let locale = ["locale", "language"]
                    .iter()
                    .find_map(|k| obj.get(*k).and_then(Value::as_str))
                    .map(str::to_owned);
                (obj.get("id").cloned().unwrap_or(Value::Null), text, locale)
            }
            _ => (
                json!(line_number),
                line.trim_end_matches(['\r', '\n']).to_owned(),
                None,
            ),
        };
        let locale = locale.or_else(|| self.locale.clone()).unwrap_or_default();
        let findings = if locale.is_empty() {
            self.scanner.scan(&text)
        } else {
            self.scanner.scan_with_locale(&text, &locale)
        };
        let ctx = ContentContext {
            campaign: None,
            language: &locale,
            kind: ContentKind::Marketing,
        };
        let verdict = self.guard.check(&text, &ctx);
        let mut out = Map::new();
        out.insert("id".into(), id);
        out.insert(
            "findings".into(),
            Value::Array(
                findings
                    .iter()
                    .map(|f| {
                        json!({"kind": f.kind.as_str(), "start": f.start, "end": f.end, "text": f.text})
                    })
                    .collect(),
            ),
        );
        out.insert("verdict".into(), json!(decision_name(verdict.decision)));
        out.insert(
            "rules".into(),
            Value::Array(
                verdict
                    .trace
                    .iter()
                    .map(|h| {
                        json!({"rule": h.rule, "decision": decision_name(h.decision), "detail": h.detail})
                    })
                    .collect(),
            ),
        );
        if let Some(mode) = &self.redaction {
            out.insert("redacted".into(), json!(redact(&text, &findings, mode)));
        }
        Value::Object(out)
    }
}

/// The lowercase name of a decision: `allow`, `deny`, `defer`, `escalate`.
fn decision_name(decision: Decision) -> &'static str {
    match decision {
        Decision::Allow => "allow",
        Decision::Deny => "deny",
        Decision::Defer { .. } => "defer",
        Decision::Escalate => "escalate",
    }
}

/// The phrases of a blacklist file: one per line, blank lines and lines starting with `#`
/// skipped, surrounding whitespace trimmed.
pub fn phrase_list(contents: &str) -> Vec<String> {
    contents
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn scanner(redaction: Option<Redaction>) -> LineScanner {
        let guard = ContentGuard::builder()
            .blacklist(phrase_list("# banned\nscam\n\n  crypto giveaway \n"))
            .allow_domain("shop.example")
            .build()
            .unwrap();
        LineScanner::new(guard, Scanner::new().unwrap())
            .with_locale(Some("de".into()))
            .with_redaction(redaction)
    }

    #[test]
    fn json_lines_keep_their_id_and_offsets_point_into_the_text() {
        let s = scanner(None);
        let line =
            r#"{"id": "a-1", "text": "Grüße! Mail anna@beispiel.de oder 030 1234567. STOP"}"#;
        let out = s.scan_line(line, 7);
        assert_eq!(out["id"], "a-1");
        let text = "Grüße! Mail anna@beispiel.de oder 030 1234567. STOP";
        let findings = out["findings"].as_array().unwrap();
        assert_eq!(findings.len(), 2);
        for f in findings {
            let (start, end) = (
                f["start"].as_u64().unwrap() as usize,
                f["end"].as_u64().unwrap() as usize,
            );
            assert_eq!(&text[start..end], f["text"].as_str().unwrap());
        }
        assert_eq!(findings[0]["kind"], "EMAIL");
        assert_eq!(findings[0]["start"], 14); // "ü" and "ß" take two bytes each
        assert_eq!(findings[1]["kind"], "PHONE");
        assert_eq!(out["verdict"], "escalate");
        assert_eq!(out["rules"][0]["rule"], "pii");
        assert!(out.get("redacted").is_none());
    }

    #[test]
    fn plain_lines_use_the_line_number_and_report_the_verdict() {
        let s = scanner(Some(Redaction::Mask));
        let out = s.scan_line("Total scam, see bit.ly/x\n", 3);
        assert_eq!(out["id"], 3);
        assert_eq!(out["verdict"], "deny");
        let rules: Vec<&str> = out["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["rule"].as_str().unwrap())
            .collect();
        assert_eq!(rules, ["blacklist", "links", "opt_out_notice"]);
        assert_eq!(out["findings"][0]["kind"], "URL");
        assert_eq!(out["redacted"], "Total scam, see ***.**/*");
        let clean = s.scan_line("Neu bei https://shop.example! STOP zum Abmelden", 4);
        assert_eq!(clean["verdict"], "allow");
        assert_eq!(clean["findings"][0]["text"], "https://shop.example");
    }

    #[test]
    fn a_line_may_name_its_own_locale_and_odd_json_is_text() {
        let s = scanner(Some(Redaction::Tag));
        let out = s.scan_line(r#"{"text": "escríbeme 612345678", "locale": "es"}"#, 1);
        assert_eq!(out["id"], Value::Null);
        assert_eq!(out["redacted"], "escríbeme <PHONE>");
        let out = s.scan_line(r#"{"id": 5, "body": "x"}"#, 9);
        assert_eq!(out["id"], 9);
        assert_eq!(out["findings"].as_array().unwrap().len(), 0);
    }
}
