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

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jiff::Timestamp;
use mia_core::{
    Contact, ContentContext, ContentKind, ContentPolicy, Purpose, SendContext, SendKind,
    SendPolicy, TelegramPeer,
};
use mia_safety::{ContentGuard, Normalizer, Scanner, SendGuard};

const MESSAGES: usize = 2000;

/// Marketing copy as an LLM writes it: offers, prices, dates, links, an opt-out line.
fn marketing_mix() -> Vec<(&'static str, String)> {
    let mut rng = corpus::Rng::new(42);
    let templates: &[(&str, &str)] = &[
        (
            "en",
            "Spring sale! Everything {P}% off until {D}. Shop now at https://shop.example/spring 🌸\n\nReply STOP to unsubscribe.",
        ),
        (
            "en",
            "Hi Emily, your favourites are back in stock from ${N}.99. Free shipping over $50. Reply STOP to opt out.",
        ),
        (
            "de",
            "Nur bis {D}: {P}% Rabatt auf alle Sneaker, ab {N},99 €. Jetzt ansehen: shop.example/sale – Abmelden mit STOP.",
        ),
        (
            "es",
            "¡Últimos días! {P}% de descuento en toda la colección, desde {N},99 €. Más en https://shop.example/es. Responde STOP para darte de baja.",
        ),
        (
            "ru",
            "Скидка {P}% на всё до {D}! Цены от {N} 990 ₽. Подробнее: https://shop.example/ru. Чтобы отписаться, ответьте СТОП.",
        ),
        (
            "pt",
            "Promoção: {P}% OFF em tudo até {D}, a partir de R$ {N},90. Confira: shop.example/br 🛍️ Para sair da lista responda STOP.",
        ),
        (
            "tr",
            "Sadece {D} tarihine kadar %{P} indirim! {N}.999 TL'den başlayan fiyatlar. shop.example/tr — Listeden çıkmak için STOP yazın.",
        ),
        (
            "en",
            "New drop: the v2 runner is here 👟 Order #{O} ships today; questions? Call +1 415 555 2671. Reply STOP to unsubscribe.",
        ),
    ];
    (0..MESSAGES)
        .map(|_| {
            let (lang, t) = *rng.pick(templates);
            let text = t
                .replace("{P}", &format!("{}", 10 + rng.below(60)))
                .replace(
                    "{D}",
                    &format!("{:02}.{:02}.2026", 1 + rng.below(28), 1 + rng.below(12)),
                )
                .replace("{N}", &format!("{}", 9 + rng.below(300)))
                .replace("{O}", &format!("{}", 10_000_000 + rng.below(89_999_999)));
            (lang, text)
        })
        .collect()
}

fn corpus_mix() -> Vec<(&'static str, String)> {
    corpus::generate(0xbe7c4, MESSAGES)
        .into_iter()
        .map(|m| (m.locale, m.text))
        .collect()
}

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
    let guard = ContentGuard::builder()
        .allow_domain("shop.example")
        .blacklist(["crypto giveaway", "scam", "casino"])
        .build()
        .unwrap();
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
