//! Throughput of the guards on realistic messages.
//!
//! Run with: `cargo bench -p mia-safety --bench safety -- --warm-up-time 1 --measurement-time 3`
//!
//! - `pii_scan`: the PII scanner, in messages per second, on two mixes: the labelled corpus
//!   (chat and marketing messages in eight languages, about 1.6 entities each, many hard
//!   negatives) and plain marketing copy (prices, dates, links, rarely personal data).
//! - `content_policy`: the whole `ContentGuard::check` on the same mixes.
//! - `send_policy`: one `SendGuard::check` decision, in nanoseconds.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/corpus/mod.rs"]
mod corpus;

use std::hint::black_box;

use corpus::mixes::{bench_guard, corpus_mix, marketing_mix};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jiff::Timestamp;
use mia_core::{
    Contact, ContentContext, ContentKind, ContentPolicy, Purpose, SendContext, SendKind,
    SendPolicy, TelegramPeer,
};
use mia_safety::{Normalizer, Scanner, SendGuard};

fn pii_scan(c: &mut Criterion) {
    let scanner = Scanner::new().unwrap();
    let mut group = c.benchmark_group("pii_scan");
    for (name, mix) in [("corpus", corpus_mix()), ("marketing", marketing_mix())] {
        group.throughput(Throughput::Elements(mix.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut found = 0;
                for (locale, text) in &mix {
                    found += scanner.scan_with_locale(black_box(text), locale).len();
                }
                black_box(found)
            })
        });
    }
    group.finish();
}

fn content_policy(c: &mut Criterion) {
    let guard = bench_guard();
    let mut group = c.benchmark_group("content_policy");
    for (name, mix) in [("corpus", corpus_mix()), ("marketing", marketing_mix())] {
        group.throughput(Throughput::Elements(mix.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut denied = 0;
                for (language, text) in &mix {
                    let ctx = ContentContext {
                        campaign: None,
                        language,
                        kind: ContentKind::Marketing,
                    };
                    denied += usize::from(!guard.check(black_box(text), &ctx).is_allow());
                }
                black_box(denied)
            })
        });
    }
    group.finish();
}

fn normalisation(c: &mut Criterion) {
    let mix = marketing_mix();
    let mut group = c.benchmark_group("normalize");
    group.throughput(Throughput::Elements(mix.len() as u64));
    for (name, normalizer) in [
        ("nfkc", Normalizer::nfkc()),
        ("standard", Normalizer::standard()),
        ("strict", Normalizer::strict()),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut bytes = 0;
                for (_, text) in &mix {
                    bytes += normalizer.normalize(black_box(text)).as_str().len();
                }
                black_box(bytes)
            })
        });
    }
    group.finish();
}

fn send_policy(c: &mut Criterion) {
    let guard = SendGuard::builder()
        .suppress(["someone-else"])
        .build()
        .unwrap();
    let contact = Contact::new(
        "anna",
        TelegramPeer::user(42),
        "Europe/Berlin",
        Timestamp::UNIX_EPOCH,
    )
    .unwrap();
    let purpose = Purpose::marketing();
    let recent: Vec<Timestamp> = vec!["2026-06-08T10:00:00Z".parse().unwrap()];
    let mut group = c.benchmark_group("send_policy");
    for (name, now) in [
        ("allow", "2026-06-10T10:30:00Z"),
        ("defer_quiet_hours", "2026-06-10T21:30:00Z"),
    ] {
        let now: Timestamp = now.parse().unwrap();
        group.bench_function(name, |b| {
            b.iter(|| {
                let ctx = SendContext {
                    contact: &contact,
                    kind: SendKind::Campaign,
                    purpose: &purpose,
                    consent_history: &[],
                    recent_sends: &recent,
                    campaign: None,
                    now,
                };
                black_box(guard.check(black_box(&ctx)))
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    pii_scan,
    content_policy,
    normalisation,
    send_policy
);
criterion_main!(benches);
