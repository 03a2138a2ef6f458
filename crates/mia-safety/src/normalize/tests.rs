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
    // The table's blocks (Latin to Cyrillic; punctuation to dingbats; emoji), and a margin
    // around the later two, outside the table.
    let codes = (0..0x0530u32).chain(0x1F00..0x2D00).chain(0x1F200..0x1FC00);
    for code in codes {
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

#[test]
fn caseless_ranges_fold_to_themselves() {
    // The fast path of `case_fold` for punctuation, currency signs, arrows, symbols and emoji.
    let ranges = [
        ('\u{2000}', '\u{20CF}'),
        ('\u{2190}', '\u{23FF}'),
        ('\u{2500}', '\u{27BF}'),
        ('\u{1F300}', '\u{1FAFF}'),
    ];
    for (lo, hi) in ranges {
        for c in lo..=hi {
            let mut fast = String::new();
            fold::case_fold(c, |f| fast.push(f));
            let expected: String = c.to_lowercase().collect();
            assert_eq!(fast, expected, "{:04X}", u32::from(c));
        }
    }
}

#[test]
fn the_ascii_sets_hold_what_the_matches_do() {
    for c in (0..=0x7Fu8).map(char::from).chain(['·', '•', 'é', '€']) {
        assert_eq!(
            fold::is_separator(c),
            matches!(c, '.' | '-' | '_' | '*' | ' ' | '·' | '~' | '•' | '/' | '+'),
            "{c:?}"
        );
        assert_eq!(
            fold::in_ascii_set(fold::LEETSPEAK, c),
            fold::leet(c).is_some(),
            "{c:?}"
        );
    }
}

/// Text that exercises the later stages: spelled-out words (`f.r.e.e`, `f r e e`) next to
/// each other and to words, leetspeak next to letters and punctuation, whitespace runs, with
/// the tricky characters around.
fn fold_text() -> impl Strategy<Value = String> {
    let letter = prop_oneof![
        3 => proptest::char::range('a', 'f'),
        1 => prop::sample::select(vec!['0', '1', '3', '4', '5', '7', '@', '$', '!', '|']),
        1 => tricky_char(),
    ];
    let separator = prop::sample::select(vec![
        '.', '-', '_', '*', ' ', '·', '~', '•', '/', '+', '\t', '\u{3000}',
    ]);
    let spelled = (
        proptest::collection::vec(letter.clone(), 1..6),
        separator.clone(),
    )
        .prop_map(|(letters, sep)| {
            let mut word = String::new();
            for (k, c) in letters.into_iter().enumerate() {
                if k > 0 {
                    word.push(sep);
                }
                word.push(c);
            }
            word
        });
    let token = prop_oneof![
        3 => spelled,
        2 => proptest::collection::vec(letter, 1..6).prop_map(String::from_iter),
        2 => separator.prop_map(String::from),
        2 => tricky_char().prop_map(String::from),
    ];
    proptest::collection::vec(token, 0..12).prop_map(|tokens| tokens.concat())
}

/// The flags of a [`Normalizer`], from five booleans.
fn any_normalizer() -> impl Strategy<Value = Normalizer> {
    any::<[bool; 5]>().prop_map(|[case, space, sep, leet, conf]| {
        Normalizer::nfkc()
            .with_case_fold(case)
            .with_whitespace_collapse(space)
            .with_separators(sep)
            .with_leetspeak(leet)
            .with_confusables(conf)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn fused_passes_match_the_reference_stages(
        original in fold_text(),
        normalizer in any_normalizer(),
    ) {
        let n = normalizer.normalize(&original);
        let units = reference::units(&normalizer, &original);
        let text: String = units.iter().map(|u| u.c).collect();
        prop_assert_eq!(n.as_str(), text.as_str());
        // The identity shortcut maps each character to itself, which the per-segment
        // reference does not (a mark that composes with nothing maps to its whole segment);
        // the texts agree all the same.
        if !n.is_identity() {
            let mut at = 0;
            let want: Vec<(usize, Range<usize>)> = units
                .iter()
                .map(|u| {
                    let span = (at, u.start as usize..u.end as usize);
                    at += u.c.len_utf8();
                    span
                })
                .collect();
            let got: Vec<(usize, Range<usize>)> = n.spans().collect();
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn the_content_rules_forms_match_the_presets(
        original in fold_text(),
    ) {
        let (standard, strict) = standard_and_strict(&original);
        let text_of = |n: &Normalizer| -> String {
            reference::units(n, &original).iter().map(|u| u.c).collect()
        };
        prop_assert_eq!(standard, text_of(&Normalizer::standard()));
        prop_assert_eq!(strict, text_of(&Normalizer::strict()));
    }
}

proptest! {
    #[test]
    fn ascii_prefixes_are_measured_as_byte_by_byte(text in "[a-z é\u{1F600}]{0,70}") {
        let bytes = text.as_bytes();
        let expected = bytes.iter().position(|b| !b.is_ascii()).unwrap_or(bytes.len());
        prop_assert_eq!(ascii_prefix_len(bytes), expected);
    }
}
