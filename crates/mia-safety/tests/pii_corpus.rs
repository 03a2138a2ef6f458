//! Accuracy of the PII scanner on a labelled, generated corpus of chat and marketing messages
//! in eight languages: per-entity precision and recall on exact spans.
//!
//! Run with `cargo test -p mia-safety --test pii_corpus -- --nocapture` to see the table.

#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::panic)]

mod corpus;

use std::collections::BTreeMap;

use mia_safety::{PiiKind, Scanner};

const SEED: u64 = 0x5eed_2026;
const MESSAGES: usize = 6000;

#[derive(Default, Debug, Clone, Copy)]
struct Counts {
    tp: usize,
    fp: usize,
    fn_: usize,
}

impl Counts {
    fn precision(self) -> f64 {
        if self.tp + self.fp == 0 {
            1.0
        } else {
            self.tp as f64 / (self.tp + self.fp) as f64
        }
    }

    fn recall(self) -> f64 {
        if self.tp + self.fn_ == 0 {
            1.0
        } else {
            self.tp as f64 / (self.tp + self.fn_) as f64
        }
    }
}

#[test]
fn every_entity_reaches_the_precision_and_recall_targets() {
    let messages = corpus::generate(SEED, MESSAGES);
    let scanner = Scanner::new().unwrap();
    let mut counts: BTreeMap<&'static str, Counts> = PiiKind::ALL
        .iter()
        .map(|k| (k.as_str(), Counts::default()))
        .collect();
    let mut errors: Vec<String> = Vec::new();
    let mut labelled = 0;
    for m in &messages {
        labelled += m.labels.len();
        let found = scanner.scan_with_locale(&m.text, m.locale);
        for f in &found {
            let hit = m
                .labels
                .iter()
                .any(|l| l.kind == f.kind.as_str() && l.start == f.start && l.end == f.end);
            let c = counts.get_mut(f.kind.as_str()).unwrap();
            if hit {
                c.tp += 1;
            } else {
                c.fp += 1;
                errors.push(format!(
                    "FP {} {:?} in {:?} ({})",
                    f.kind, f.text, m.text, m.locale
                ));
            }
        }
        for l in &m.labels {
            let hit = found
                .iter()
                .any(|f| l.kind == f.kind.as_str() && l.start == f.start && l.end == f.end);
            if !hit {
                counts.get_mut(l.kind).unwrap().fn_ += 1;
                errors.push(format!(
                    "FN {} {:?} in {:?} ({})",
                    l.kind,
                    &m.text[l.start..l.end],
                    m.text,
                    m.locale
                ));
            }
        }
    }

    println!(
        "\n{} messages, {labelled} labelled entities (seed {SEED:#x})",
        messages.len()
    );
    println!("| entity | support | TP | FP | FN | precision | recall |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (kind, c) in &counts {
        println!(
            "| {kind} | {} | {} | {} | {} | {:.4} | {:.4} |",
            c.tp + c.fn_,
            c.tp,
            c.fp,
            c.fn_,
            c.precision(),
            c.recall()
        );
    }
    for e in errors.iter().take(40) {
        println!("{e}");
    }
    for (kind, c) in &counts {
        assert!(c.tp + c.fn_ > 100, "{kind}: too few examples in the corpus");
        assert!(
            c.precision() >= 0.98,
            "{kind}: precision {:.4} < 0.98",
            c.precision()
        );
        assert!(
            c.recall() >= 0.97,
            "{kind}: recall {:.4} < 0.97",
            c.recall()
        );
    }
}

#[test]
fn the_corpus_is_deterministic_and_varied() {
    let a = corpus::generate(7, 300);
    let b = corpus::generate(7, 300);
    assert!(
        a.iter()
            .zip(&b)
            .all(|(x, y)| x.text == y.text && x.labels == y.labels)
    );
    let locales: std::collections::BTreeSet<&str> = a.iter().map(|m| m.locale).collect();
    assert!(locales.len() >= 6, "{locales:?}");
    // Labels point at the entity, on character boundaries.
    for m in &a {
        for l in &m.labels {
            assert!(m.text.is_char_boundary(l.start) && m.text.is_char_boundary(l.end));
            assert!(l.start < l.end);
        }
    }
    assert!(
        a.iter().any(|m| m.labels.is_empty()),
        "some messages carry no PII"
    );
    assert!(
        a.iter().any(|m| m.text.contains('\n')),
        "some messages span lines"
    );
}
