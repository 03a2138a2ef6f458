#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::*;

fn strict(text: &str) -> String {
    Normalizer::strict().normalize(text).into_string()
}

#[test]
fn invisible_characters_are_dropped() {
    assert_eq!(normalize("g\u{200B}uaranteed"), "guaranteed");
    assert_eq!(normalize("fr\u{200D}e\u{FEFF}e"), "free");
    assert_eq!(normalize("\u{202E}cure\u{202C}"), "cure");
    assert_eq!(normalize("mir\u{00AD}acle"), "miracle");
    assert_eq!(normalize("sc\u{E0041}am"), "scam");
    assert_eq!(normalize("wi\u{2060}n"), "win");
    assert_eq!(normalize("w\u{E0100}in"), "win");
}

#[test]
fn compatibility_forms_and_case_are_folded() {
    assert_eq!(normalize("ＧＵＡＲＡＮＴＥＥＤ"), "guaranteed");
    assert_eq!(normalize("ｂｉｔ．ｌｙ"), "bit.ly");
    assert_eq!(normalize("ＲＩＳＫ－ＦＲＥＥ"), "risk-free");
    assert_eq!(normalize("Get RICH"), "get rich");
    // Ligatures and circled digits decompose too.
    assert_eq!(normalize("\u{FB01}nd"), "find");
    assert_eq!(normalize("①⓪⓪% free"), "100% free");
    // Full case folding, not just lowercase.
    assert_eq!(normalize("STRASSE Straße"), "strasse strasse");
    assert_eq!(normalize("ΣΟΦΟΣ σοφος"), "σοφοσ σοφοσ");
}

#[test]
fn combining_sequences_compose() {
    // "e" + combining acute composes to "é", mapped to both original characters.
    let n = Normalizer::standard().normalize("cafe\u{301}!");
    assert_eq!(n.as_str(), "café!");
    let at = n.as_str().find('é').unwrap();
    assert_eq!(n.original_range(at..at + 2), Some(3..6));
}

#[test]
fn whitespace_runs_collapse_to_one_space() {
    assert_eq!(normalize("  risk\n\t free\u{00A0}now  "), "risk free now");
    assert_eq!(normalize("\u{200B}\u{200B}"), "");
    assert_eq!(normalize(""), "");
}

#[test]
fn ordinary_text_is_only_case_folded() {
    assert_eq!(normalize("Grüße aus Wien"), "grüsse aus wien");
    assert_eq!(normalize("Привет"), "привет");
    // Emoji survive (only their variation selector goes).
    assert_eq!(normalize("Hi ❤\u{FE0F}"), "hi ❤");
}

#[test]
fn the_nfkc_preset_keeps_case_and_layout_and_is_free_on_clean_text() {
    let n = Normalizer::nfkc().normalize("Call +49 30 1234567\nBye");
    assert!(n.is_identity());
    assert_eq!(n.as_str(), "Call +49 30 1234567\nBye");
    let n = Normalizer::nfkc().normalize("Grüße, Привет 👋");
    assert!(n.is_identity());
    let n = Normalizer::nfkc().normalize("Call ＋４９ ３０\u{200B} 1234567");
    assert!(!n.is_identity());
    assert_eq!(n.as_str(), "Call +49 30 1234567");
}

#[test]
fn strict_folds_look_alikes_leetspeak_and_separators() {
    let free = strict("free money");
    for text in [
        "FREE MONEY",
        "frее mоney", // Cyrillic е and о
        "fr33 m0ney", // leetspeak
        "f.r.e.e money",
        "f r e e  money",
        "f-r-e-e m-o-n-e-y",
        "frée mönéy", // accents
        "𝐟𝐫𝐞𝐞 money", // mathematical bold
        "ｆｒｅｅ\u{200B} money",
    ] {
        assert_eq!(strict(text), free, "{text}");
    }
    // Prices and percentages keep their digits.
    assert_eq!(strict("100% off"), strict("100% off"));
    assert_ne!(strict("100% off"), strict("ioo% off"));
    assert_ne!(strict("e.g. this"), strict("eg this"));
}

#[test]
fn offsets_point_at_the_original_bytes() {
    let original = "Hi\u{200B} ＪＡＮＥ@exa\u{0301}mple.com!";
    let n = Normalizer::standard().normalize(original);
    assert_eq!(n.as_str(), "hi jane@exámple.com!");
    let start = n.as_str().find("jane").unwrap();
    let end = n.as_str().find('!').unwrap();
    let range = n.original_range(start..end).unwrap();
    assert_eq!(&original[range], "ＪＡＮＥ@exa\u{0301}mple.com");
    assert_eq!(n.original_range(0..0), Some(0..0));
    let len = n.as_str().len();
    assert_eq!(
        n.original_range(len..len),
        Some(original.len()..original.len())
    );
    #[allow(clippy::reversed_empty_ranges)]
    let reversed = 3..2;
    assert_eq!(n.original_range(reversed), None);
    assert_eq!(n.original_range(0..len + 1), None);
}

#[test]
fn one_character_can_become_several_and_several_one() {
    let original = "ﬁne ①②";
    let n = Normalizer::standard().normalize(original);
    assert_eq!(n.as_str(), "fine 12");
    // "f" and "i" both come from the ligature.
    assert_eq!(n.original_range(0..1), Some(0..3));
    assert_eq!(n.original_range(1..2), Some(0..3));
    assert_eq!(n.original_range(5..7), Some(6..12));
    let spans: Vec<_> = n.spans().collect();
    assert_eq!(spans.len(), 7);
}

/// Characters that stress the map: invisibles, combining marks, fullwidth forms, ligatures,
/// emoji with variation selectors, look-alikes, whitespace and leetspeak symbols.
fn tricky_char() -> impl Strategy<Value = char> {
    prop_oneof![
        proptest::char::range('a', 'z'),
        proptest::char::range('A', 'Z'),
        proptest::char::range('0', '9'),
        Just(' '),
        Just('\n'),
        Just('.'),
        Just('-'),
        Just('@'),
        Just('$'),
        Just('!'),
        Just('|'),
        Just('\u{200B}'),
        Just('\u{200D}'),
        Just('\u{202E}'),
        Just('\u{FE0F}'),
        Just('\u{E0041}'),
        Just('\u{00AD}'),
        Just('\u{00A0}'),
        proptest::char::range('\u{0300}', '\u{036F}'),
        proptest::char::range('\u{FF01}', '\u{FF5E}'),
        proptest::char::range('\u{0400}', '\u{04FF}'),
        proptest::char::range('\u{0370}', '\u{03FF}'),
        proptest::char::range('\u{1F600}', '\u{1F64F}'),
        proptest::char::range('\u{2460}', '\u{24FF}'),
        proptest::char::range('\u{AC00}', '\u{AC20}'),
        proptest::char::range('\u{1100}', '\u{1112}'),
        Just('ß'),
        Just('ẞ'),
        Just('ﬁ'),
        Just('İ'),
        Just('㎏'),
        any::<char>(),
    ]
}

fn check_map(original: &str, n: &Normalized) -> Result<(), TestCaseError> {
    let mut previous = (0, 0);
    for (at, range) in n.spans() {
        prop_assert!(n.as_str().is_char_boundary(at));
        prop_assert!(original.is_char_boundary(range.start), "{range:?}");
        prop_assert!(original.is_char_boundary(range.end), "{range:?}");
        prop_assert!(range.start < range.end, "{range:?}");
        prop_assert!(
            range.start >= previous.0 && range.end >= previous.1,
            "not monotonic"
        );
        previous = (range.start, range.end);
    }
    // Every range of normalised characters maps to a slice of the original, and redacting it
    // never panics.
    let bounds: Vec<usize> = n
        .as_str()
        .char_indices()
        .map(|(i, _)| i)
        .chain([n.as_str().len()])
        .collect();
    for (k, &s) in bounds.iter().enumerate() {
        for &e in bounds.iter().skip(k).take(6) {
            let r = n.original_range(s..e).unwrap();
            prop_assert!(r.start <= r.end && r.end <= original.len());
            prop_assert!(original.get(r.clone()).is_some(), "{r:?}");
            let redacted = format!(
                "{}<X>{}",
                original.get(..r.start).unwrap_or(""),
                original.get(r.end..).unwrap_or("")
            );
            prop_assert!(redacted.len() <= original.len() + 3);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn maps_lie_on_char_boundaries_and_are_monotonic(
        chars in proptest::collection::vec(tricky_char(), 0..40)
    ) {
        let original: String = chars.into_iter().collect();
        for normalizer in [Normalizer::nfkc(), Normalizer::standard(), Normalizer::strict()] {
            let n = normalizer.normalize(&original);
            check_map(&original, &n)?;
        }
    }

    #[test]
    fn normalising_is_idempotent_on_the_standard_preset(
        chars in proptest::collection::vec(tricky_char(), 0..30)
    ) {
        let original: String = chars.into_iter().filter(|c| !('\u{1100}'..='\u{11FF}').contains(c)).collect();
        let once = normalize(&original);
        // Case folding can leave text that NFKC changes again (U+0130), so compare the
        // second and third rounds.
        let twice = normalize(&once);
        prop_assert_eq!(normalize(&twice), twice);
    }
}

#[test]
fn the_identity_shortcut_agrees_with_full_normalisation() {
    // Every character the shortcut trusts really is left alone by NFKC.
    use unicode_normalization::UnicodeNormalization;
    let ranges = [
        ('\u{0000}', '\u{007F}'),
        ('\u{00C0}', '\u{00FF}'),
        ('\u{0100}', '\u{017F}'),
        ('\u{0391}', '\u{03C9}'),
        ('\u{0400}', '\u{04FF}'),
        ('\u{2013}', '\u{201D}'),
        ('\u{20A0}', '\u{20C0}'),
        ('\u{2600}', '\u{27BF}'),
        ('\u{1F300}', '\u{1FAFF}'),
    ];
    for (lo, hi) in ranges {
        for c in lo..=hi {
            if super::is_plainly_stable(c) {
                let s = c.to_string();
                assert_eq!(s.nfkc().collect::<String>(), s, "{:04X}", u32::from(c));
                assert!(!is_invisible(c), "{:04X}", u32::from(c));
            }
        }
    }
}

#[test]
fn the_skeleton_table_matches_tr39() {
    use unicode_normalization::char::is_combining_mark;
    for code in 0..0x0530u32 {
        let Some(c) = char::from_u32(code) else {
            continue;
        };
        let units = vec![Unit {
            c,
            start: 0,
            end: 1,
        }];
        // The table path, with the script fold switched off by picking untouched letters.
        if fold::script_fold_is_identity(c) {
            let got: String = fold::confusables(units).iter().map(|u| u.c).collect();
            let mut buf = [0u8; 4];
            let want: String = unicode_security::skeleton(c.encode_utf8(&mut buf))
                .filter(|c| !is_combining_mark(*c))
                .collect();
            assert_eq!(got, want, "{code:04X}");
        }
    }
}

#[test]
fn common_case_folds_match_the_tables() {
    // The fast paths of `case_fold` for Latin-1 and Cyrillic agree with full lowercasing.
    for c in ('\u{0080}'..='\u{00FF}').chain('\u{0400}'..='\u{045F}') {
        let mut fast = String::new();
        fold::case_fold(c, |f| fast.push(f));
        let expected: String = match c {
            'ß' => "ss".to_owned(),
            c => c.to_lowercase().collect(),
        };
        assert_eq!(fast, expected, "{:04X}", u32::from(c));
    }
}
