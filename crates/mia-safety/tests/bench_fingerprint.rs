//! A fingerprint of everything the guards answer on the benches' inputs: every verdict and its
//! trace, every finding with its kind, offsets and text, and every normalised form. Work that
//! only makes the guards faster must leave it unchanged; a change in behaviour changes it, and
//! then [`EXPECTED`] is updated on purpose, with the behaviour change explained.

#![allow(clippy::unwrap_used)]

mod corpus;

use std::fmt::Write as _;

use corpus::mixes::{bench_guard, corpus_mix, marketing_mix};
use mia_core::{ContentContext, ContentKind, ContentPolicy};
use mia_safety::{Normalizer, Scanner};
use sha2::{Digest, Sha256};

/// SHA-256 of the record [`fingerprint`] writes.
const EXPECTED: &str = "8d954f1c29aeb44ffb0dfc4703235e0ebf4174e6bd98e825a3db508ce75933bd";

fn fingerprint() -> String {
    let guard = bench_guard();
    let scanner = Scanner::new().unwrap();
    let normalizers = [
        Normalizer::nfkc(),
        Normalizer::standard(),
        Normalizer::strict(),
    ];
    let mut hasher = Sha256::new();
    let mut record = String::new();
    for (name, mix) in [("corpus", corpus_mix()), ("marketing", marketing_mix())] {
        for (i, (language, text)) in mix.iter().enumerate() {
            record.clear();
            let ctx = ContentContext {
                campaign: None,
                language,
                kind: ContentKind::Marketing,
            };
            let _ = writeln!(record, "{name} {i} {language} {text:?}");
            let _ = writeln!(record, "check {:?}", guard.check(text, &ctx));
            let _ = writeln!(record, "personal {:?}", guard.personal_data(text, language));
            let _ = writeln!(
                record,
                "scan {:?}",
                scanner.scan_with_locale(text, language)
            );
            for normalizer in &normalizers {
                let _ = writeln!(
                    record,
                    "normalized {:?}",
                    normalizer.normalize(text).as_str()
                );
            }
            hasher.update(record.as_bytes());
        }
    }
    hasher
        .finalize()
        .iter()
        .fold(String::new(), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

#[test]
fn the_guards_answer_as_recorded_on_the_bench_inputs() {
    assert_eq!(
        fingerprint(),
        EXPECTED,
        "the guards' answers on the bench inputs changed; if on purpose, update EXPECTED"
    );
}
