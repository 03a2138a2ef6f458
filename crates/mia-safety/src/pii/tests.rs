#![allow(clippy::unwrap_used)]

use super::*;

fn found(scanner: &Scanner, text: &str) -> Vec<(PiiKind, String)> {
    scanner
        .scan(text)
        .into_iter()
        .map(|f| {
            assert_eq!(text.get(f.start..f.end), Some(f.text.as_str()));
            (f.kind, f.text)
        })
        .collect()
}

fn scanner() -> Scanner {
    Scanner::builder().locale("en").build().unwrap()
}

#[test]
fn finds_each_kind_with_exact_original_spans() {
    let s = scanner();
    let cases: &[(&str, PiiKind, &str)] = &[
        (
            "write to jane.doe+promo@example.co.uk today",
            PiiKind::Email,
            "jane.doe+promo@example.co.uk",
        ),
        (
            "Ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ",
            PiiKind::Email,
            "Ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ",
        ),
        (
            "jane [at] example [dot] com, thanks",
            PiiKind::Email,
            "jane [at] example [dot] com",
        ),
        ("Call +49 30 1234567 now", PiiKind::Phone, "+49 30 1234567"),
        ("call (415) 555-2671.", PiiKind::Phone, "(415) 555-2671"),
        ("📞+7 912 345-67-89", PiiKind::Phone, "+7 912 345-67-89"),
        (
            "card 4111 1111 1111 1111!",
            PiiKind::CreditCard,
            "4111 1111 1111 1111",
        ),
        (
            "mc 2223 0000 4840 0011",
            PiiKind::CreditCard,
            "2223 0000 4840 0011",
        ),
        (
            "IBAN: GB82 WEST 1234 5698 7654 32.",
            PiiKind::Iban,
            "GB82 WEST 1234 5698 7654 32",
        ),
        ("from 203.0.113.7:", PiiKind::Ip, "203.0.113.7"),
        (
            "from fe80::1ff:fe23:4567:890a.",
            PiiKind::Ip,
            "fe80::1ff:fe23:4567:890a",
        ),
        (
            "see https://shop.example/a?b=c).",
            PiiKind::Url,
            "https://shop.example/a?b=c",
        ),
        (
            "tip: bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4 🙏",
            PiiKind::Crypto,
            "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
        ),
        (
            "eth 0x52908400098527886E0F7030069857D2E4169EE7",
            PiiKind::Crypto,
            "0x52908400098527886E0F7030069857D2E4169EE7",
        ),
        // Invisible characters inside the finding are part of its original bytes.
        (
            "call +49 30\u{200B} 1234567",
            PiiKind::Phone,
            "+49 30\u{200B} 1234567",
        ),
        (
            "call ＋４９ ３０ １２３４５６７",
            PiiKind::Phone,
            "＋４９ ３０ １２３４５６７",
        ),
    ];
    for (text, kind, expected) in cases {
        assert_eq!(found(&s, text), [(*kind, (*expected).to_owned())], "{text}");
    }
}

#[test]
fn hard_negatives_do_not_fire() {
    let s = scanner();
    for text in [
        "now only €19.99",
        "now only 19.99€",
        "$1,299,000 in prizes",
        "price 1 299 000 ₽",
        "watch promo.mp4",
        "update to v2.3.1",
        "version 1.2.3.4 is out",
        "sale ends 2026-11-26 10:00",
        "sale ends 26.11.2026",
        "SKU-12345678",
        "order #12345678",
        "Order 12345678 shipped",
        "order no. 1234567",
        "join 1000000 happy customers",
        "1 2 3 4 5 6 7 8",
        "open 2019-2026",
        "card 4111 1111 1111 1112",
        "IBAN DE89 3704 0044 0532 0130 01",
        "server 999.1.1.1",
        "follow @mia_shop",
        "logo@2x.png",
        "10115 Berlin",
        "ZIP 94105-1804",
        "e.g. this, i.e. that",
        "it's 10:30:00 now",
        "commit 3f2a9c1b7d",
    ] {
        assert_eq!(found(&s, text), [], "{text}");
    }
}

#[test]
fn the_locale_decides_national_formats() {
    let s = Scanner::new().unwrap();
    // A Spanish mobile written without separators counts for a Spanish contact only.
    assert_eq!(found(&s, "mi móvil 612345678").len(), 1);
    assert_eq!(s.scan_with_locale("escríbeme 612345678", "es").len(), 1);
    assert_eq!(s.scan("escríbeme 612345678").len(), 0);
    assert!(s.scan_with_locale("escríbeme 612345678", "de").is_empty());
}

#[test]
fn kinds_can_be_limited_and_described() {
    let s = Scanner::builder().kinds([PiiKind::Email]).build().unwrap();
    assert_eq!(s.scan("a@b.example.com +49 30 1234567").len(), 1);
    let all = scanner().scan("a@example.com, b@example.com, +49 30 1234567");
    assert_eq!(describe(&all), "2 e-mail addresses, 1 phone number");
    assert!(Scanner::builder().phone_regions(["ZZ"]).build().is_err());
    assert_eq!(
        "credit_card".parse::<PiiKind>().unwrap(),
        PiiKind::CreditCard
    );
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    static SCANNER: std::sync::LazyLock<Scanner> =
        std::sync::LazyLock::new(|| Scanner::new().unwrap());

    /// Text pieces that look like the start of personal data, with invisible characters,
    /// fullwidth forms, combining marks and emoji between them.
    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            "[0-9 +().\\-/]{1,12}",
            "[a-z]{1,6}",
            Just("@".to_owned()),
            Just("[at]".to_owned()),
            Just(" dot ".to_owned()),
            Just("https://".to_owned()),
            Just("www.".to_owned()),
            Just(".com".to_owned()),
            Just("DE89".to_owned()),
            Just("bc1q".to_owned()),
            Just("0x".to_owned()),
            Just("::".to_owned()),
            Just("\u{200B}".to_owned()),
            Just("\u{FE0F}".to_owned()),
            Just("\u{0301}".to_owned()),
            Just("＋４９".to_owned()),
            Just("３０".to_owned()),
            Just("👉".to_owned()),
            Just("Ü".to_owned()),
            any::<char>().prop_map(String::from),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn scanning_never_panics_and_findings_point_into_the_text(
            pieces in proptest::collection::vec(piece(), 0..24)
        ) {
            let text: String = pieces.concat();
            let scanner = &*SCANNER;
            let mut last_end = 0;
            for f in scanner.scan_with_locale(&text, "de") {
                prop_assert!(f.start < f.end && f.end <= text.len());
                prop_assert_eq!(text.get(f.start..f.end), Some(f.text.as_str()));
                prop_assert!(f.start >= last_end, "findings overlap");
                last_end = f.end;
            }
            let _ = scanner.redact(&text, &Redaction::hash("salt"));
        }
    }
}
