//! The scanner, redaction, the content guard and the inbound checks take any text without
//! panicking, and every finding is a slice of the text.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use mia_core::{ContentContext, ContentPolicy};
use mia_safety::inbound::{injection_signals, opt_out_intent};
use mia_safety::{ContentGuard, Redaction, Scanner, redact};

static SCANNER: LazyLock<Scanner> = LazyLock::new(|| Scanner::new().expect("scanner builds"));
static GUARD: LazyLock<ContentGuard> = LazyLock::new(ContentGuard::recommended);

fuzz_target!(|text: &str| {
    for locale in ["", "de", "pt-BR"] {
        let found = SCANNER.scan_with_locale(text, locale);
        for f in &found {
            assert_eq!(text.get(f.start..f.end), Some(f.text.as_str()));
        }
        let _ = redact(text, &found, &Redaction::Mask);
    }
    let ctx = ContentContext { campaign: None, language: "en" };
    let _ = GUARD.check(text, &ctx);
    let _ = opt_out_intent(text);
    let _ = injection_signals(text);
});
