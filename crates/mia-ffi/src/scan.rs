//! `mia_scan_text`: the safety guard on one text, no agent needed.

use std::ffi::c_char;

use mia::safety::scan::LineScanner;
use mia::safety::{ContentGuard, Redaction, Scanner};
use serde::Deserialize;

use crate::boundary;
use crate::error::{FfiError, MiaStatus};
use crate::strings::{OutString, opt_json_arg, str_arg};

/// `mia_scan_text`'s options.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScanOptions {
    allow_domains: Option<Vec<String>>,
    blacklist: Option<Vec<String>>,
    locale: Option<String>,
    redact: Option<String>,
    salt: Option<String>,
    opt_out_notice: Option<bool>,
}

/// Scans `text` with the content guard and the personal-data scanner, as `mia scan` does, and
/// stores the result as JSON in `*out_result_json`:
/// `{"findings": [{"kind", "start", "end", "text"}], "verdict": "allow" | "deny" | "escalate" |
/// "defer", "rules": [{"rule", "decision", "detail"}]}` (offsets are UTF-8 byte offsets, end
/// exclusive), plus `"redacted"` when asked for.
///
/// `options_json` may be `NULL`; its keys (all optional, unknown keys are an error):
/// `"allow_domains"` and `"blacklist"` (string arrays), `"locale"` (`"de"`, `"pt-BR"`: how
/// national phone numbers are read), `"redact"` (`"mask"`, `"hash"` or `"tag"`), `"salt"` (of
/// `"hash"`), `"opt_out_notice"` (default true: require an opt-out notice in the text).
/// Thread-safe; needs no agent.
///
/// # Safety
/// `text` and `options_json` are `NULL` or NUL-terminated strings; `out_result_json` is valid
/// for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mia_scan_text(
    text: *const c_char,
    options_json: *const c_char,
    out_result_json: *mut *mut c_char,
) -> MiaStatus {
    boundary::run("mia_scan_text", || {
        // SAFETY: the caller promises `out_result_json` is valid for a write.
        let out = unsafe { OutString::string(out_result_json, "out_result_json") }?;
        // SAFETY: the caller promises NUL-terminated strings or NULL.
        let (text, options) = unsafe {
            (
                str_arg(text, "text")?,
                opt_json_arg::<ScanOptions>(options_json, "options_json")?,
            )
        };
        let redaction = match options.redact.as_deref() {
            None => None,
            Some("mask") => Some(Redaction::Mask),
            Some("tag") => Some(Redaction::Tag),
            Some("hash") => Some(Redaction::hash(options.salt.clone().unwrap_or_default())),
            Some(other) => {
                return Err(FfiError::invalid(format!(
                    "redact {other:?}: expected \"mask\", \"hash\" or \"tag\""
                )));
            }
        };
        let guard = ContentGuard::builder()
            .allow_domains(options.allow_domains.into_iter().flatten())
            .blacklist(options.blacklist.into_iter().flatten())
            .opt_out_notice(options.opt_out_notice.unwrap_or(true))
            .build()
            .map_err(|e| FfiError::invalid(format!("content guard: {e}")))?;
        let scanner = Scanner::new().map_err(|e| FfiError::internal(format!("scanner: {e}")))?;
        let lines = LineScanner::new(guard, scanner)
            .with_locale(options.locale)
            .with_redaction(redaction);
        // As a JSON line, so the text is read as it is, never as JSON of its own.
        let line = serde_json::json!({ "text": text }).to_string();
        let mut result = lines.scan_line(&line, 1);
        if let Some(map) = result.as_object_mut() {
            map.remove("id");
        }
        out.set_json(&result)
    })
}
