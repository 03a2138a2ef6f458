//! Phone number validation with the `phonenumber` crate (Google's libphonenumber metadata),
//! with regions taken from the contact's locale.

use std::str::FromStr;

use phonenumber::country::Id;
use phonenumber::metadata::DATABASE;

use super::phone_parse::{self, Fallback};
use super::phone_rules;

/// Regions tried for numbers in national format when the locale says nothing (or after the
/// locale's own regions).
pub const DEFAULT_PHONE_REGIONS: &[&str] = &["US", "GB", "DE", "FR", "ES", "RU", "BR", "TR"];

/// Regions whose people write national numbers with the trunk prefix (`030 …` in Germany,
/// `8 912 …` in Russia). A national-format number for them must start with it, which keeps
/// order numbers and postcodes from validating as subscriber numbers.
const TRUNK_WRITTEN: &[&str] = &[
    "DE", "AT", "CH", "FR", "BE", "NL", "GB", "IE", "RU", "UA", "BY", "KZ", "TR", "AU", "NZ", "JP",
    "KR", "IL", "ZA", "EG",
];

/// The languages [`regions_for_locale`] knows.
pub(crate) const LANGUAGES: &[&str] = &[
    "en", "de", "es", "ru", "uk", "pt", "tr", "fr", "it", "nl", "pl",
];

/// The regions a language or locale (`de`, `de-AT`, `pt_BR`) suggests, most likely first.
pub(crate) fn regions_for_locale(locale: &str) -> Vec<&'static str> {
    let mut parts = locale.split(['-', '_']);
    let language = parts.next().unwrap_or("").to_ascii_lowercase();
    let region = parts
        .find(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_alphabetic()))
        .map(str::to_ascii_uppercase);
    let by_language: &[&'static str] = match language.as_str() {
        "en" => &["US", "GB", "CA", "AU", "IE", "IN"],
        "de" => &["DE", "AT", "CH"],
        "es" => &["ES", "MX", "AR", "CO"],
        "ru" => &["RU", "KZ", "BY"],
        "uk" => &["UA"],
        "pt" => &["PT", "BR"],
        "tr" => &["TR"],
        "fr" => &["FR", "BE", "CH"],
        "it" => &["IT", "CH"],
        "nl" => &["NL", "BE"],
        "pl" => &["PL"],
        _ => &[],
    };
    let mut out: Vec<&'static str> = Vec::new();
    if let Some(region) = region
        && let Some(known) = by_language
            .iter()
            .chain(DEFAULT_PHONE_REGIONS)
            .find(|r| **r == region)
    {
        out.push(known);
    }
    for r in by_language {
        if !out.contains(r) {
            out.push(r);
        }
    }
    out
}

/// A region to try and whether it came from the contact's locale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Region {
    pub(crate) id: Id,
    pub(crate) trunk: Option<&'static str>,
    pub(crate) from_locale: bool,
}

/// Resolves region codes to `phonenumber` ids, dropping unknown ones.
pub(crate) fn resolve(codes: &[&str], from_locale: bool) -> Vec<Region> {
    codes
        .iter()
        .filter_map(|code| {
            let id = Id::from_str(code).ok()?;
            let meta = DATABASE.by_id(*code)?;
            let trunk = if TRUNK_WRITTEN.contains(code) {
                match meta.national_prefix() {
                    Some("0") => Some("0"),
                    Some("8") => Some("8"),
                    _ => None,
                }
            } else {
                None
            };
            Some(Region {
                id,
                trunk,
                from_locale,
            })
        })
        .collect()
}

/// How many compiled patterns `phonenumber` keeps. Its default (100) holds the patterns of
/// about eight regions; a scanner that sees numbers from more regions would recompile
/// patterns on every call (≈1 ms each instead of ≈3 µs). Every region's patterns together
/// are about 3,000, compiled only when first used.
const PATTERN_CACHE_CAPACITY: usize = 4096;

/// Raises `phonenumber`'s shared pattern cache to [`PATTERN_CACHE_CAPACITY`], loads the
/// metadata and compiles the patterns of `regions` now, so the first messages scanned do not
/// pay for it.
pub(crate) fn warm_up(regions: &[Region]) {
    if let Ok(mut cache) = DATABASE.cache().lock()
        && cache.capacity() < PATTERN_CACHE_CAPACITY
    {
        cache.set_capacity(PATTERN_CACHE_CAPACITY);
    }
    let _ = phonenumber::parse(None, "+14155552671").map(|n| n.is_valid());
    for r in regions {
        let _ = phonenumber::parse(Some(r.id), "0301234567").map(|n| n.is_valid());
        phone_rules::warm_up(r.id.as_ref());
    }
}

/// Whether the international number `+digits` is a valid phone number.
pub(crate) fn is_valid_international(digits: &str) -> bool {
    let mut buf = String::with_capacity(digits.len() + 1);
    buf.push('+');
    buf.push_str(digits);
    parses_valid(None, &buf)
}

/// Whether `text` parses (in `country`, for a national number) to a valid number: with
/// [`phone_parse`] where it covers the input, as `phonenumber::parse` would, else with
/// `phonenumber::parse` itself.
fn parses_valid(country: Option<Id>, text: &str) -> bool {
    match phone_parse::parse(country, text) {
        Ok(parsed) => parsed.is_some_and(|p| phone_rules::is_valid_parts(p.code, &p.national)),
        Err(Fallback) => phonenumber::parse(country, text).is_ok_and(|n| phone_rules::is_valid(&n)),
    }
}

/// The first region in which national-format `digits` is a valid number. `bare` numbers
/// (one unbroken run of digits, no phone word before them) count only in the locale's own
/// regions.
pub(crate) fn valid_region(digits: &str, regions: &[Region], bare: bool) -> Option<Id> {
    regions.iter().find_map(|r| {
        if bare && !r.from_locale {
            return None;
        }
        if let Some(trunk) = r.trunk
            && !digits.starts_with(trunk)
        {
            return None;
        }
        if r.trunk.is_none() && digits.starts_with('0') && !matches!(r.id, Id::IT | Id::BR) {
            // Without a written trunk prefix, a leading 0 means another country's format.
            return None;
        }
        parses_valid(Some(r.id), digits).then_some(r.id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locales_map_to_regions() {
        assert_eq!(regions_for_locale("de"), ["DE", "AT", "CH"]);
        assert_eq!(regions_for_locale("de-AT"), ["AT", "DE", "CH"]);
        assert_eq!(regions_for_locale("pt_BR"), ["BR", "PT"]);
        assert_eq!(regions_for_locale("en-GB")[0], "GB");
        assert!(regions_for_locale("xx").is_empty());
    }

    #[test]
    fn national_numbers_validate_in_their_region_with_the_trunk_prefix() {
        let de = resolve(&["DE"], true);
        assert_eq!(valid_region("0301234567", &de, false), Some(Id::DE));
        assert_eq!(valid_region("301234567", &de, false), None);
        let ru = resolve(&["RU"], true);
        assert_eq!(valid_region("89123456789", &ru, false), Some(Id::RU));
        let us = resolve(&["US"], false);
        assert_eq!(valid_region("4155552671", &us, false), Some(Id::US));
        assert_eq!(valid_region("4155552671", &us, true), None);
        assert!(is_valid_international("49301234567"));
        assert!(!is_valid_international("4912"));
    }
}
