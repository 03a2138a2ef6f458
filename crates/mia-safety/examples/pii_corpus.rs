//! Writes the labelled PII corpus of `tests/pii_corpus.rs` as JSON lines, with mia's findings
//! for each message and mia's scan rate, for comparisons with other tools
//! (`benches/compare/presidio.py`).
//!
//! ```sh
//! cargo run --release -p mia-safety --example pii_corpus -- OUT.jsonl [MESSAGES] [SEED]
//! ```
//!
//! Each line: `{"text", "locale", "labels": [{"kind", "start", "end"}], "mia": [...]}` with
//! offsets in Unicode code points (Python string indices). The last line is
//! `{"mia_messages_per_second": N}`: the scan alone, over the whole corpus, best of 5 runs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

#[path = "../tests/corpus/mod.rs"]
mod corpus;

use std::io::{BufWriter, Write};
use std::time::Instant;

use mia_safety::Scanner;
use serde_json::json;

/// Byte offset to code point offset.
fn chars(text: &str, byte: usize) -> usize {
    text[..byte].chars().count()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let out = args
        .next()
        .expect("usage: pii_corpus OUT.jsonl [MESSAGES] [SEED]");
    let count: usize = args.next().map_or(6000, |n| n.parse().expect("MESSAGES"));
    let seed: u64 = args
        .next()
        .map_or(0x5eed_2026, |n| n.parse().expect("SEED"));
    let messages = corpus::generate(seed, count);
    let scanner = Scanner::new().unwrap();

    let mut best = f64::MAX;
    for _ in 0..5 {
        let started = Instant::now();
        let mut found = 0usize;
        for m in &messages {
            found += scanner.scan_with_locale(&m.text, m.locale).len();
        }
        std::hint::black_box(found);
        best = best.min(started.elapsed().as_secs_f64());
    }

    let mut file = BufWriter::new(std::fs::File::create(&out).unwrap());
    for m in &messages {
        let labels: Vec<_> = m
            .labels
            .iter()
            .map(|l| json!({"kind": l.kind, "start": chars(&m.text, l.start), "end": chars(&m.text, l.end)}))
            .collect();
        let mia: Vec<_> = scanner
            .scan_with_locale(&m.text, m.locale)
            .iter()
            .map(|f| json!({"kind": f.kind.as_str(), "start": chars(&m.text, f.start), "end": chars(&m.text, f.end)}))
            .collect();
        let line = json!({"text": m.text, "locale": m.locale, "labels": labels, "mia": mia});
        writeln!(file, "{line}").unwrap();
    }
    let rate = messages.len() as f64 / best;
    writeln!(file, "{}", json!({"mia_messages_per_second": rate})).unwrap();
    file.flush().unwrap();
    println!(
        "{} messages to {out}; mia scans {rate:.0} messages/s",
        messages.len()
    );
}
