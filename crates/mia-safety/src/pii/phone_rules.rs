//! Phone number validity from `phonenumber`'s metadata, with the patterns compiled once.
//!
//! `phonenumber::PhoneNumber::is_valid` matches through a shared cache that looks every
//! pattern up by its source text (kilobytes per region, hashed on every use) behind one
//! mutex. This module answers the same question with the same metadata and the same steps
//! (`validator::is_valid_with`: pick the region by country code and leading digits, then the
//! general pattern and any number type), but on patterns compiled once per region. The
//! `agrees_with_phonenumber` test checks that both answer alike.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

use phonenumber::PhoneNumber;
use phonenumber::metadata::{DATABASE, Descriptor, Metadata};
use regex::{Regex, RegexBuilder};

/// A pattern anchored at the start, as `phonenumber` matches them (`find` at offset 0).
fn anchored(source: &str) -> Option<Regex> {
    RegexBuilder::new(&format!("^(?:{source})"))
        .ignore_whitespace(true)
        .build()
        .ok()
}

/// One number type of a region: its lengths and its pattern.
#[derive(Debug)]
struct Desc {
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

    fn is_match(&self, value: &str) -> bool {
        (self.lengths.is_empty() || self.lengths.iter().any(|&l| usize::from(l) == value.len()))
            && self.pattern.is_match(value)
    }
}

/// The compiled rules of one region.
#[derive(Debug)]
struct Rules {
    general: Desc,
    types: Vec<Desc>,
    leading_digits: Option<Regex>,
}

impl Rules {
    fn compile(meta: &Metadata) -> Option<Self> {
        let d = meta.descriptors();
        let types = [
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
        .map(Desc::new)
        .collect::<Option<Vec<_>>>()?;
        let leading_digits = match meta.leading_digits() {
            Some(l) => Some(anchored(l.as_str())?),
            None => None,
        };
        Some(Self {
            general: Desc::new(d.general())?,
            types,
            leading_digits,
        })
    }

    /// `number_type(meta, value) != Unknown`.
    fn is_valid(&self, national: &str) -> bool {
        self.general.is_match(national) && self.types.iter().any(|t| t.is_match(national))
    }
}

type Cache = RwLock<HashMap<(&'static str, u16), Option<Arc<Rules>>>>;

/// Compiled rules by region id and country code, filled as regions are first seen.
static RULES: LazyLock<Cache> = LazyLock::new(|| RwLock::new(HashMap::new()));

fn rules(meta: &'static Metadata) -> Option<Arc<Rules>> {
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
    let code = number.code().value();
    let national = number.national().to_string();
    let Some(regions) = DATABASE.region(&code) else {
        return false;
    };
    let rules_of = |id: &str| -> Option<Arc<Rules>> {
        if id == "001" {
            // Non-geographic codes: the first metadata for the code.
            DATABASE
                .by_code(&code)
                .and_then(|m| m.into_iter().next())
                .and_then(rules)
        } else {
            DATABASE.by_id(id).and_then(rules)
        }
    };
    if let [only] = regions.as_slice() {
        return rules_of(only).is_some_and(|r| r.is_valid(&national));
    }
    // Several regions share the code: the first whose leading digits match, or, for a
    // region without leading digits, in which the number is valid.
    for id in regions {
        let Some(r) = rules_of(id) else {
            continue;
        };
        match &r.leading_digits {
            Some(leading) if leading.is_match(&national) => return r.is_valid(&national),
            Some(_) => {}
            None if r.is_valid(&national) => return true,
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
