//! `phonenumber::parse` for the numbers the scanner builds (`+` and ASCII digits, or ASCII
//! digits in a region's national format), on precompiled rules.
//!
//! `phonenumber::parse` matches through a shared pattern cache that hashes each pattern's
//! source text on every use; finding the region of a `+1` number walks the rules of the 25
//! NANP regions that way (≈40,000 instructions a number). This module takes the same steps
//! with the same metadata (`parser::parse_with`, `helper::country_code`,
//! `helper::international_prefix`, `helper::national_number`, `validator::source_for` and
//! `validator::length`), reduced to the inputs above, on the patterns
//! [`phone_rules`] compiles once. Anything else, or a region whose patterns do not compile,
//! is left to `phonenumber::parse` ([`Fallback`]). The `agrees_with_phonenumber_parse` tests
//! check that both answer alike.

use std::borrow::Cow;
use std::sync::LazyLock;

use phonenumber::country::Id;
use phonenumber::metadata::{DATABASE, Metadata};
use phonenumber::{NationalNumber, Validation};

use super::phone_rules::{self, Rules};

/// The longest country calling code (`consts::MAX_LENGTH_FOR_COUNTRY_CODE`).
const MAX_CODE_DIGITS: usize = 3;
/// The shortest and longest national significant numbers `phonenumber::parse` accepts.
const NATIONAL_LENGTHS: std::ops::RangeInclusive<usize> = 2..=17;

/// The answer needs `phonenumber::parse` itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fallback;

/// What validity depends on in a parsed number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parsed {
    /// The country calling code.
    pub(crate) code: u16,
    /// The national significant number, as `NationalNumber` prints it.
    pub(crate) national: String,
}

/// Whether a country calling code has metadata (`DATABASE.by_code(code).is_some()`), by code.
/// Codes have at most three digits, so below 1000.
static KNOWN_CODES: LazyLock<Vec<bool>> = LazyLock::new(|| {
    (0..1000u16)
        .map(|code| DATABASE.by_code(&code).is_some())
        .collect()
});

/// `phonenumber::parse(country, text)`, reduced to what validity depends on: `Ok(None)`
/// where it fails, `Err(Fallback)` for inputs this module does not cover.
pub(crate) fn parse(country: Option<Id>, text: &str) -> Result<Option<Parsed>, Fallback> {
    let (plus, digits) = match text.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Fallback);
    }
    match (country, plus) {
        (None, true) => international(digits),
        (Some(id), false) => national(id, digits),
        _ => Err(Fallback),
    }
}

/// `+digits` with no region: the country code comes from the number.
fn international(digits: &str) -> Result<Option<Parsed>, Fallback> {
    // `is_viable` wants three digits after the plus; `country_code` more than two digits and
    // no leading zero.
    if digits.len() <= 2 || digits.starts_with('0') {
        return Ok(None);
    }
    let Some((code, national)) = split_code(digits) else {
        return Ok(None);
    };
    let region = match source_for(code, national.trim_start_matches('0'))? {
        Some(meta) => Some(phone_rules::rules(meta).ok_or(Fallback)?),
        None => None,
    };
    finish(region.as_deref(), code, national)
}

/// National-format `digits` in region `id`, or an international number after the region's
/// international prefix (`00…`, `011…`).
fn national(id: Id, digits: &str) -> Result<Option<Parsed>, Fallback> {
    let meta = DATABASE.by_id(id.as_ref()).ok_or(Fallback)?;
    let rules = phone_rules::rules(meta).ok_or(Fallback)?;
    let parsing = rules.parsing.as_ref().ok_or(Fallback)?;
    // `is_viable`: at least two digits.
    if digits.len() < 2 {
        return Ok(None);
    }
    let after_idd = parsing
        .international_prefix
        .as_ref()
        .and_then(|idd| idd.find(digits))
        .filter(|m| m.start() == 0)
        .and_then(|m| digits.get(m.end()..))
        .filter(|rest| !rest.starts_with('0'));
    if let Some(rest) = after_idd {
        if rest.len() <= 2 || rest.starts_with('0') {
            return Ok(None);
        }
        let Some((code, national)) = split_code(rest) else {
            return Ok(None);
        };
        return finish(Some(&rules), code, national);
    }
    // A number that starts with the region's own country code but is no valid national
    // number loses the code.
    let code = meta.country_code();
    let code_text = code.to_string();
    let national = match digits.strip_prefix(code_text.as_str()) {
        Some(rest)
            if !rules.general.is_match(digits) || !parsing.length(digits.len()).is_possible() =>
        {
            rest
        }
        _ => digits,
    };
    finish(Some(&rules), code, national)
}

/// The country calling code at the start of `digits` (codes are prefix-free) and the rest.
fn split_code(digits: &str) -> Option<(u16, &str)> {
    (1..=MAX_CODE_DIGITS).find_map(|len| {
        let code: u16 = digits.get(..len)?.parse().ok()?;
        KNOWN_CODES
            .get(usize::from(code))
            .copied()
            .unwrap_or(false)
            .then(|| digits.get(len..).map(|rest| (code, rest)))
            .flatten()
    })
}

/// The metadata a number with country code `code` and national number `national` belongs
/// to, as `validator::source_for` picks it.
fn source_for(code: u16, national: &str) -> Result<Option<&'static Metadata>, Fallback> {
    let Some(country) = phone_rules::country(code) else {
        return Ok(None);
    };
    if let [only] = country.regions.as_slice() {
        if only.id == "001" {
            return Ok(DATABASE.by_code(&code).and_then(|m| m.into_iter().next()));
        }
        return Ok(only.by_parsed_id.flatten());
    }
    for region in &country.regions {
        // `phonenumber` unwraps these; and a non-geographic region among several would take
        // its rules from other metadata than `by_id`. Neither happens.
        if region.by_id.is_none() || region.id == "001" {
            return Err(Fallback);
        }
        let rules = region.rules().ok_or(Fallback)?;
        let found = match &rules.leading_digits {
            Some(leading) => leading.is_match(national),
            None => rules.is_valid(national),
        };
        if found {
            return region.by_parsed_id.ok_or(Fallback);
        }
    }
    Ok(None)
}

/// The end of `parse_with`: strip the national prefix (and carrier code) where the region's
/// rules say so, check the length and build the national number.
fn finish(region: Option<&Rules>, code: u16, national: &str) -> Result<Option<Parsed>, Fallback> {
    let mut national = Cow::Borrowed(national);
    if let Some(rules) = region {
        let parsing = rules.parsing.as_ref().ok_or(Fallback)?;
        let meta = parsing.meta;
        let mut potential = national_number(rules, national.as_ref())?;
        if let Some(prefix) = meta.national_prefix()
            && let Some(rest) = potential.strip_prefix(prefix)
        {
            potential = Cow::Owned(rest.to_owned());
        }
        if parsing.length(potential.len()) != Validation::TooShort {
            national = Cow::Owned(potential.into_owned());
        }
    }
    if !NATIONAL_LENGTHS.contains(&national.len()) {
        return Ok(None);
    }
    Ok(national.parse::<NationalNumber>().ok().map(|n| Parsed {
        code,
        national: n.to_string(),
    }))
}

/// `helper::national_number`: the national number without the national prefix for parsing,
/// transformed where the region has a transform rule.
fn national_number<'a>(rules: &Rules, national: &'a str) -> Result<Cow<'a, str>, Fallback> {
    let parsing = rules.parsing.as_ref().ok_or(Fallback)?;
    let meta = parsing.meta;
    let Some(pattern) = &parsing.national_prefix_for_parsing else {
        if let Some(prefix) = meta.national_prefix()
            && let Some(rest) = national.strip_prefix(prefix)
        {
            return Ok(Cow::Borrowed(rest));
        }
        return Ok(Cow::Borrowed(national));
    };
    let Some(found) = pattern.find(national).filter(|m| m.start() == 0) else {
        return Ok(Cow::Borrowed(national));
    };
    let viable = rules.general.is_match(national);
    let captures = pattern.captures(national).ok_or(Fallback)?;
    let last_group = captures.len().checked_sub(1).and_then(|i| captures.get(i));
    match meta.national_prefix_transform_rule() {
        Some(transform) if last_group.is_some() => {
            let transformed = pattern.replace(national, transform);
            if viable && !rules.general.is_match(&transformed) {
                return Ok(Cow::Borrowed(national));
            }
            Ok(Cow::Owned(transformed.into_owned()))
        }
        // `phonenumber` keeps the number when it was viable and the rest is not, which
        // cannot happen here: the prefix was found at the start, so the rest is the number.
        _ => Ok(Cow::Borrowed(national.get(found.end()..).unwrap_or(""))),
    }
}

#[cfg(test)]
mod tests;
