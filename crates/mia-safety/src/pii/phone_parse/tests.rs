//! The fast parse must answer exactly as `phonenumber::parse` does: on every region's example
//! numbers in international, national and IDD form, on their near misses, and on random
//! digits.

use std::str::FromStr;

use proptest::prelude::*;

use super::*;
use crate::pii::phone;

/// Regions the scanner tries for national numbers (its locales and defaults), and a few more.
const REGIONS: &[Id] = &[
    Id::US,
    Id::CA,
    Id::GB,
    Id::IE,
    Id::IN,
    Id::AU,
    Id::DE,
    Id::AT,
    Id::CH,
    Id::FR,
    Id::BE,
    Id::NL,
    Id::ES,
    Id::MX,
    Id::AR,
    Id::CO,
    Id::IT,
    Id::PT,
    Id::BR,
    Id::RU,
    Id::KZ,
    Id::BY,
    Id::UA,
    Id::TR,
    Id::PL,
    Id::JP,
    Id::KR,
    Id::IL,
    Id::ZA,
    Id::EG,
    Id::NZ,
];

/// The old route's answer, reduced the same way.
fn reference(country: Option<Id>, text: &str) -> Option<Parsed> {
    phonenumber::parse(country, text).ok().map(|n| Parsed {
        code: n.code().value(),
        national: n.national().to_string(),
    })
}

/// Compares both routes on `text`; `true` when the fast parse covered it.
fn agree(country: Option<Id>, text: &str) -> bool {
    let Ok(fast) = parse(country, text) else {
        return false;
    };
    let slow = reference(country, text);
    assert_eq!(fast, slow, "{country:?} {text:?}");
    if let Some(p) = &fast {
        let number = phonenumber::parse(country, text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(
            phone_rules::is_valid_parts(p.code, &p.national),
            phone_rules::is_valid(&number),
            "{country:?} {text:?}"
        );
    }
    true
}

/// SplitMix64, for reproducible digits.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `digits` with one digit changed, one dropped and one added, at places `state` picks.
fn near_misses(digits: &str, state: &mut u64) -> Vec<String> {
    let mut out = Vec::new();
    if digits.is_empty() {
        return out;
    }
    let bytes = digits.as_bytes();
    let at = (next(state) % bytes.len() as u64) as usize;
    let mut changed = bytes.to_vec();
    changed[at] = b'0' + ((changed[at] - b'0' + 1 + (next(state) % 9) as u8) % 10);
    out.push(String::from_utf8(changed).unwrap());
    let mut dropped = bytes.to_vec();
    dropped.remove(at);
    out.push(String::from_utf8(dropped).unwrap());
    let mut added = bytes.to_vec();
    added.insert(at, b'0' + (next(state) % 10) as u8);
    out.push(String::from_utf8(added).unwrap());
    out
}

/// Prepares `phonenumber`'s pattern cache as the scanner does, so the reference stays fast.
fn warm() {
    static WARM: std::sync::Once = std::sync::Once::new();
    WARM.call_once(|| phone::warm_up(&[]));
}

#[test]
fn agrees_with_phonenumber_parse_on_every_example_number() {
    warm();
    let mut state = 11u64;
    let (mut covered, mut valid) = (0usize, 0usize);
    let mut metas: Vec<&'static Metadata> = (0..1000u16)
        .filter_map(|code| DATABASE.by_code(&code))
        .flatten()
        .collect();
    metas.dedup_by_key(|m| (m.id().to_owned(), m.country_code()));
    assert!(metas.len() > 200, "{} regions", metas.len());
    let national_ids: Vec<Id> = REGIONS.to_vec();
    for meta in metas {
        let examples =
            crate::pii::phone_rules::number_types(meta).filter_map(|desc| desc.example());
        let region = Id::from_str(meta.id()).ok();
        for example in examples {
            let mut forms = vec![example.to_owned()];
            forms.extend(near_misses(example, &mut state));
            for form in forms {
                let international = format!("+{}{form}", meta.country_code());
                covered += usize::from(agree(None, &international));
                valid += usize::from(reference(None, &international).is_some());
                let trunk = meta.national_prefix().unwrap_or("");
                let idd = format!("00{}{form}", meta.country_code());
                let us_idd = format!("011{}{form}", meta.country_code());
                let ru_idd = format!("810{}{form}", meta.country_code());
                let with_code = format!("{}{form}", meta.country_code());
                let written = format!("{trunk}{form}");
                let national_forms = [&form, &written, &idd, &us_idd, &ru_idd, &with_code];
                let own = region.filter(|id| !national_ids.contains(id));
                for id in national_ids.iter().copied().chain(own) {
                    // Every region for the region's own numbers, a sample for the others'.
                    if Some(id) != region && !next(&mut state).is_multiple_of(8) {
                        continue;
                    }
                    for text in national_forms {
                        covered += usize::from(agree(Some(id), text));
                    }
                }
            }
        }
    }
    assert!(
        covered > 20_000 && valid > 2_000,
        "{covered} covered, {valid} parsed"
    );
}

#[test]
fn agrees_with_phonenumber_parse_on_nanp_numbers() {
    warm();
    let mut state = 5u64;
    for _ in 0..4000 {
        let area = 200 + next(&mut state) % 800;
        let exchange = 100 + next(&mut state) % 900;
        let line = next(&mut state) % 10_000;
        let digits = format!("1{area}{exchange}{line:04}");
        assert!(agree(None, &format!("+{}", digits)), "{digits}");
        assert!(agree(Some(Id::US), &digits[1..]));
        assert!(agree(Some(Id::CA), &digits));
    }
}

#[test]
fn leaves_other_inputs_to_phonenumber() {
    assert_eq!(parse(None, "4155552671"), Err(Fallback));
    assert_eq!(parse(Some(Id::US), "+14155552671"), Err(Fallback));
    assert_eq!(parse(None, "+1 415 555 2671"), Err(Fallback));
    assert_eq!(parse(Some(Id::DE), "030 1234567"), Err(Fallback));
    assert_eq!(parse(None, "+١٤١٥٥٥٥٢٦٧١"), Err(Fallback));
}

#[test]
fn known_numbers_parse() {
    warm();
    let us = parse(None, "+14155552671").unwrap().unwrap();
    assert_eq!((us.code, us.national.as_str()), (1, "4155552671"));
    let de = parse(Some(Id::DE), "0301234567").unwrap().unwrap();
    assert_eq!((de.code, de.national.as_str()), (49, "301234567"));
    let it = parse(None, "+390612345678").unwrap().unwrap();
    assert_eq!((it.code, it.national.as_str()), (39, "0612345678"));
    assert_eq!(parse(None, "+0123456789"), Ok(None));
    assert_eq!(parse(None, "+12"), Ok(None));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn agrees_with_phonenumber_parse_on_random_international_digits(
        digits in "[0-9]{0,18}",
    ) {
        warm();
        let text = format!("+{digits}");
        prop_assert!(agree(None, &text));
    }

    #[test]
    fn agrees_with_phonenumber_parse_on_random_codes_and_numbers(
        code in prop::sample::select(vec![
            "1", "7", "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43",
            "44", "45", "46", "47", "48", "49", "52", "54", "55", "57", "61", "64", "81", "82",
            "86", "90", "91", "358", "380", "375", "353", "351", "800", "882", "979",
        ]),
        rest in "[0-9]{4,14}",
    ) {
        warm();
        let text = format!("+{code}{rest}");
        prop_assert!(agree(None, &text));
    }

    #[test]
    fn agrees_with_phonenumber_parse_on_random_national_digits(
        region in prop::sample::select(REGIONS.to_vec()),
        digits in "[0-9]{0,18}",
    ) {
        warm();
        prop_assert!(agree(Some(region), &digits));
    }
}
