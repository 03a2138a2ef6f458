//! The benches' inputs (`benches/safety.rs`), shared with the test that fingerprints what the
//! guards answer on them (`tests/bench_fingerprint.rs`), so a speed-up can be checked to
//! change no verdict, finding or offset.

use mia_safety::ContentGuard;

/// The content guard the benches measure.
pub(crate) fn bench_guard() -> ContentGuard {
    ContentGuard::builder()
        .allow_domain("shop.example")
        .blacklist(["crypto giveaway", "scam", "casino"])
        .build()
        .unwrap()
}

/// Messages in each mix.
pub(crate) const MESSAGES: usize = 2000;

/// Marketing copy as an LLM writes it: offers, prices, dates, links, an opt-out line.
pub(crate) fn marketing_mix() -> Vec<(&'static str, String)> {
    let mut rng = super::Rng::new(42);
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

/// The labelled corpus's messages, without their labels.
pub(crate) fn corpus_mix() -> Vec<(&'static str, String)> {
    super::generate(0xbe7c4, MESSAGES)
        .into_iter()
        .map(|m| (m.locale, m.text))
        .collect()
}
