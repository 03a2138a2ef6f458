//! Phone number validity from `phonenumber`'s metadata, with the patterns compiled once.
//!
//! `phonenumber::PhoneNumber::is_valid` matches through a shared cache that looks every
//! pattern up by its source text (kilobytes per region, hashed on every use) behind one
//! mutex. This module answers the same question with the same metadata and the same steps
//! (`validator::is_valid_with`: pick the region by country code and leading digits, then the
//! general pattern and any number type), but on patterns compiled once per region. The
//! `agrees_with_phonenumber` test checks that both answer alike.
//!
//! The rules also carry what [`phone_parse`](super::phone_parse) needs to parse the numbers
//! the scanner sees without `phonenumber::parse` (the international and national prefixes).

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, LazyLock, OnceLock, RwLock};

use phonenumber::country::Id;
use phonenumber::metadata::{DATABASE, Descriptor, Metadata};
use phonenumber::{PhoneNumber, Validation};
use regex::{Regex, RegexBuilder};

/// A pattern anchored at the start, as `phonenumber` matches them (`find` at offset 0).
fn anchored(source: &str) -> Option<Regex> {
    RegexBuilder::new(&format!("^(?:{source})"))
        .ignore_whitespace(true)
        .build()
        .ok()
}

/// A pattern as `phonenumber` compiles it, unanchored, for the steps that use the match's end,
/// its groups or a replacement.
fn unanchored(source: &str) -> Option<Regex> {
    RegexBuilder::new(source)
        .ignore_whitespace(true)
        .build()
        .ok()
}

/// One number type of a region: its lengths and its pattern.
#[derive(Debug)]
pub(super) struct Desc {
    lengths: Vec<u16>,
    pattern: Regex,
}

impl Desc {
    fn new(d: &Descriptor) -> Option<Self> {
        Some(Self {
            lengths: d.possible_length().to_vec(),
            pattern: anchored(d.national_number().as_str())?,
        })
    }

    pub(super) fn is_match(&self, value: &str) -> bool {
        (self.lengths.is_empty() || self.lengths.iter().any(|&l| usize::from(l) == value.len()))
            && self.pattern.is_match(value)
    }
}

/// The compiled rules of one region.
#[derive(Debug)]
pub(super) struct Rules {
    pub(super) general: Desc,
    types: Vec<Desc>,
    pub(super) leading_digits: Option<Regex>,
    /// `None` when one of its patterns does not compile; parsing then stays with
    /// `phonenumber::parse`.
    pub(super) parsing: Option<Parsing>,
}

/// What parsing a number needs of a region besides its validity rules.
#[derive(Debug)]
pub(super) struct Parsing {
    pub(super) meta: &'static Metadata,
    pub(super) international_prefix: Option<Regex>,
    pub(super) national_prefix_for_parsing: Option<Regex>,
    general_lengths: Vec<u16>,
    general_local_lengths: Vec<u16>,
}

impl Parsing {
    fn compile(meta: &'static Metadata) -> Option<Self> {
        let general = meta.descriptors().general();
        Some(Self {
            meta,
            international_prefix: match meta.international_prefix() {
                Some(p) => Some(unanchored(p.as_str())?),
                None => None,
            },
            national_prefix_for_parsing: match meta.national_prefix_for_parsing() {
                Some(p) => Some(unanchored(p.as_str())?),
                None => None,
            },
            general_lengths: general.possible_length().to_vec(),
            general_local_lengths: general.possible_local_length().to_vec(),
        })
    }

    /// `phonenumber::validator::length(meta, number, Type::Unknown)` for a national number of
    /// `len` digits (the general descriptor's lengths, compared as that function does).
    pub(super) fn length(&self, len: usize) -> Validation {
        let possible = &self.general_lengths;
        let (Some(&minimum), Some(&maximum)) = (possible.first(), possible.last()) else {
            return Validation::InvalidLength;
        };
        let len = u16::try_from(len).unwrap_or(u16::MAX);
        if self.general_local_lengths.contains(&len) {
            Validation::IsPossibleLocalOnly
        } else if len == minimum {
            Validation::IsPossible
        } else if len < minimum {
            Validation::TooShort
        } else if len > maximum {
            Validation::TooLong
        } else if possible.contains(&len) {
            Validation::IsPossible
        } else {
            Validation::InvalidLength
        }
    }
}

/// The number-type descriptors `meta` has (premium rate, toll free, ..., fixed line, mobile),
/// in the order `phonenumber` tests them.
pub(super) fn number_types(meta: &Metadata) -> impl Iterator<Item = &Descriptor> {
    let d = meta.descriptors();
    [
        d.premium_rate(),
        d.toll_free(),
        d.shared_cost(),
        d.voip(),
        d.personal_number(),
        d.pager(),
        d.uan(),
        d.voicemail(),
        d.fixed_line(),
        d.mobile(),
    ]
    .into_iter()
    .flatten()
}

impl Rules {
    fn compile(meta: &'static Metadata) -> Option<Self> {
        let types = number_types(meta)
            .map(Desc::new)
            .collect::<Option<Vec<_>>>()?;
        let d = meta.descriptors();
        let leading_digits = match meta.leading_digits() {
            Some(l) => Some(anchored(l.as_str())?),
            None => None,
        };
        Some(Self {
            general: Desc::new(d.general())?,
            types,
            leading_digits,
            parsing: Parsing::compile(meta),
        })
    }

    /// `number_type(meta, value) != Unknown`.
    pub(super) fn is_valid(&self, national: &str) -> bool {
        self.general.is_match(national) && self.types.iter().any(|t| t.is_match(national))
    }
}

type Cache = RwLock<HashMap<(&'static str, u16), Option<Arc<Rules>>>>;

/// Compiled rules by region id and country code, filled as regions are first seen.
static RULES: LazyLock<Cache> = LazyLock::new(|| RwLock::new(HashMap::new()));

/// The compiled rules of `meta`'s region, compiled on first use.
pub(super) fn rules(meta: &'static Metadata) -> Option<Arc<Rules>> {
    let key = (meta.id(), meta.country_code());
    if let Ok(cache) = RULES.read()
        && let Some(found) = cache.get(&key)
    {
        return found.clone();
    }
    let compiled = Rules::compile(meta).map(Arc::new);
    if let Ok(mut cache) = RULES.write() {
        cache.insert(key, compiled.clone());
    }
    compiled
}

/// Compiles the rules of region `id` now.
pub(crate) fn warm_up(id: &str) {
    if let Some(meta) = DATABASE.by_id(id) {
        let _ = rules(meta);
    }
}

/// Whether `number` is valid, as `phonenumber::PhoneNumber::is_valid` decides it.
pub(crate) fn is_valid(number: &PhoneNumber) -> bool {
    is_valid_parts(number.code().value(), &number.national().to_string())
}

/// Country calling codes have at most three digits.
const CODES: usize = 1000;

/// The regions of one country calling code (`DATABASE.region(code)`, in its order), with
/// the metadata each step looks up for them, found once.
#[derive(Debug)]
pub(super) struct Country {
    pub(super) regions: Vec<CodeRegion>,
}

/// One region of a [`Country`].
#[derive(Debug)]
pub(super) struct CodeRegion {
    /// The region id (`"US"`; `"001"` for a non-geographic code).
    pub(super) id: &'static str,
    /// `DATABASE.by_id(id)`.
    pub(super) by_id: Option<&'static Metadata>,
    /// The metadata of the region `id` names as a `country::Id`, `None` when it names none.
    pub(super) by_parsed_id: Option<Option<&'static Metadata>>,
    /// The metadata validity takes the rules from: `by_id`, or for a non-geographic code
    /// the first metadata of the code.
    rules_meta: Option<&'static Metadata>,
    rules: OnceLock<Option<Arc<Rules>>>,
}

impl CodeRegion {
    /// The compiled rules of [`rules_meta`](Self::rules_meta), compiled on first use.
    pub(super) fn rules(&self) -> Option<&Arc<Rules>> {
        self.rules
            .get_or_init(|| self.rules_meta.and_then(rules))
            .as_ref()
    }
}

impl Country {
    fn find(code: u16) -> Option<Self> {
        let regions = DATABASE.region(&code)?;
        let first_of_code = DATABASE.by_code(&code).and_then(|m| m.into_iter().next());
        let regions = regions
            .into_iter()
            .map(|id| {
                let by_id = DATABASE.by_id(id);
                CodeRegion {
                    id,
                    by_id,
                    by_parsed_id: Id::from_str(id)
                        .ok()
                        .map(|parsed| DATABASE.by_id(parsed.as_ref())),
                    // Non-geographic codes: the first metadata for the code.
                    rules_meta: if id == "001" { first_of_code } else { by_id },
                    rules: OnceLock::new(),
                }
            })
            .collect();
        Some(Self { regions })
    }
}

/// The [`Country`] of each code below [`CODES`], found on first use.
static COUNTRIES: LazyLock<Vec<OnceLock<Option<Country>>>> =
    LazyLock::new(|| (0..CODES).map(|_| OnceLock::new()).collect());

/// The regions of country calling code `code`, `None` for a code without metadata.
pub(super) fn country(code: u16) -> Option<&'static Country> {
    // No code has more than three digits (`no_code_is_longer_than_three_digits`).
    COUNTRIES
        .get(usize::from(code))?
        .get_or_init(|| Country::find(code))
        .as_ref()
}

/// Whether the number with country calling code `code` and national significant number
/// `national` (as `NationalNumber` prints it) is valid, as [`is_valid`] decides it.
pub(super) fn is_valid_parts(code: u16, national: &str) -> bool {
    let Some(country) = country(code) else {
        return false;
    };
    if let [only] = country.regions.as_slice() {
        return only.rules().is_some_and(|r| r.is_valid(national));
    }
    // Several regions share the code: the first whose leading digits match, or, for a
    // region without leading digits, in which the number is valid.
    for region in &country.regions {
        let Some(r) = region.rules() else {
            continue;
        };
        match &r.leading_digits {
            Some(leading) if leading.is_match(national) => return r.is_valid(national),
            Some(_) => {}
            None if r.is_valid(national) => return true,
            None => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use phonenumber::country::Id;

    use super::*;

    /// SplitMix64, for reproducible digits.
    fn next(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    #[test]
    fn no_code_is_longer_than_three_digits() {
        let code = u16::try_from(CODES).unwrap_or(u16::MAX);
        assert!((code..=u16::MAX).all(|c| DATABASE.region(&c).is_none()));
        assert!(country(1).is_some_and(|c| c.regions.len() > 20));
        assert!(country(0).is_none());
    }

    #[test]
    fn agrees_with_phonenumber() {
        let regions = [
            Id::US,
            Id::CA,
            Id::GB,
            Id::DE,
            Id::AT,
            Id::CH,
            Id::FR,
            Id::ES,
            Id::IT,
            Id::PT,
            Id::BR,
            Id::MX,
            Id::RU,
            Id::KZ,
            Id::TR,
            Id::NL,
            Id::PL,
            Id::UA,
            Id::IN,
            Id::AU,
        ];
        let mut state = 7u64;
        let (mut checked, mut valid) = (0, 0);
        for i in 0..6000 {
            let region = regions[i % regions.len()];
            let len = 6 + (next(&mut state) % 8) as usize;
            let mut digits: String = (0..len)
                .map(|_| char::from(b'0' + (next(&mut state) % 10) as u8))
                .collect();
            if i % 3 == 0 {
                digits.insert(0, '0');
            }
            let (region, text) = if i % 5 == 0 {
                (None, format!("+{}{digits}", 1 + next(&mut state) % 99))
            } else {
                (Some(region), digits)
            };
            let Ok(number) = phonenumber::parse(region, &text) else {
                continue;
            };
            checked += 1;
            let expected = number.is_valid();
            valid += usize::from(expected);
            assert_eq!(is_valid(&number), expected, "{region:?} {text}");
        }
        // Known valid numbers too, so the comparison is not all "invalid".
        for (region, text) in [
            (Some(Id::DE), "030 1234567"),
            (Some(Id::US), "(415) 555-2671"),
            (Some(Id::CA), "(204) 555-0199"),
            (Some(Id::RU), "8 912 345 67 89"),
            (Some(Id::KZ), "8 701 234 5678"),
            (None, "+44 20 7946 0958"),
            (None, "+800 1234 5678"),
        ] {
            let number = phonenumber::parse(region, text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(is_valid(&number), number.is_valid(), "{text}");
        }
        assert!(
            checked > 3000 && valid > 100,
            "{checked} checked, {valid} valid"
        );
    }
}
