//! Text normalisation shared by every content rule, so the same tricks fail everywhere, with
//! an offset map back to the original text.
//!
//! Spammers hide words from filters with invisible characters (`g\u{200B}uaranteed`),
//! compatibility forms (fullwidth `ｇｕａｒａｎｔｅｅｄ`, `①`), look-alike letters from other
//! scripts (Cyrillic `frее`), leetspeak (`fr33 m0ney`) and separators (`f.r.e.e`). Rules match
//! on a normalised form; every character of it remembers the bytes of the original it came
//! from ([`Normalized::original_range`]), so a finding on the normalised text redacts the
//! right bytes of the original. The normalised text is never sent or stored.
//!
//! Three presets cover mia's needs:
//!
//! | preset | invisibles | NFKC | case fold | whitespace | separators | leetspeak | confusables |
//! | --- | --- | --- | --- | --- | --- | --- | --- |
//! | [`Normalizer::nfkc`] (PII scanner) | dropped | yes | - | - | - | - | - |
//! | [`Normalizer::standard`] (links, [`normalize`]) | dropped | yes | yes | collapsed | - | - | - |
//! | [`Normalizer::strict`] (blacklist, claims, credentials) | dropped | yes | yes | collapsed | yes | yes | yes |

mod fold;

use std::ops::Range;

use unicode_normalization::char::canonical_combining_class;
use unicode_normalization::{IsNormalized, is_nfkc_quick};

pub(crate) use fold::is_invisible;
use fold::{CollapseWhitespace, TextAndChars};

/// Normalises `text` for matching with the [standard](Normalizer::standard) preset: drops
/// invisible formatting characters, applies Unicode NFKC, case-folds, and collapses every run
/// of whitespace into one space (trimmed at both ends).
///
/// Dropped characters: zero-width spaces and joiners and the directional marks
/// (U+200B–U+200F), bidirectional embeddings and overrides (U+202A–U+202E) and isolates
/// (U+2066–U+2069), invisible operators (U+2060–U+2064), the byte-order mark (U+FEFF), tag
/// characters (U+E0000–U+E007F), the soft hyphen (U+00AD), the combining grapheme joiner
/// (U+034F), the Arabic letter mark (U+061C), the Mongolian vowel separator (U+180E),
/// Hangul fillers and variation selectors (U+FE00–U+FE0F, U+E0100–U+E01EF).
///
/// ```
/// assert_eq!(mia_safety::normalize("G\u{200B}UARANTEED  ｆｒｅｅ\n"), "guaranteed free");
/// ```
pub fn normalize(text: &str) -> String {
    Normalizer::standard().normalize(text).into_string()
}

/// A normalisation recipe: which folds to apply. Cheap to copy; build one per use.
///
/// ```
/// use mia_safety::Normalizer;
///
/// let original = "Get FR\u{200B}33 m0ney at ｓｈｏｐ.example";
/// let n = Normalizer::strict().normalize(original);
/// // Confusable skeletons are for matching only: compare them with skeletons.
/// assert!(n.as_str().contains(Normalizer::strict().normalize("free money").as_str()));
/// let plain = Normalizer::standard().normalize(original);
/// let at = plain.as_str().find("shop").unwrap();
/// let range = plain.original_range(at..at + 4).unwrap();
/// assert_eq!(&original[range], "ｓｈｏｐ");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Normalizer {
    case_fold: bool,
    whitespace: bool,
    separators: bool,
    leetspeak: bool,
    confusables: bool,
}

impl Normalizer {
    /// Drops invisible characters and applies NFKC, nothing else: what the PII scanner
    /// needs (case and whitespace carry meaning there: Base58 addresses, line breaks).
    pub const fn nfkc() -> Self {
        Self {
            case_fold: false,
            whitespace: false,
            separators: false,
            leetspeak: false,
            confusables: false,
        }
    }

    /// [`nfkc`](Self::nfkc), then case folding and whitespace collapsing, as [`normalize`].
    pub const fn standard() -> Self {
        Self {
            case_fold: true,
            whitespace: true,
            ..Self::nfkc()
        }
    }

    /// [`standard`](Self::standard), then separator folding (`f.r.e.e` → `free`),
    /// leetspeak (`fr33 m0ney` → `free money`) and the Unicode TR39 confusable skeleton
    /// with combining marks removed (`frее` in Cyrillic, `frée` → the skeleton of `free`).
    ///
    /// The skeleton is a matching key, not readable text (TR39 maps `m` to `rn` and `0` to
    /// `O`): compare it only with patterns normalised the same way.
    pub const fn strict() -> Self {
        Self {
            case_fold: true,
            whitespace: true,
            separators: true,
            leetspeak: true,
            confusables: true,
        }
    }

    /// Turns case folding on or off.
    #[must_use]
    pub const fn with_case_fold(mut self, on: bool) -> Self {
        self.case_fold = on;
        self
    }

    /// Turns whitespace collapsing (runs become one space, trimmed ends) on or off.
    #[must_use]
    pub const fn with_whitespace_collapse(mut self, on: bool) -> Self {
        self.whitespace = on;
        self
    }

    /// Turns separator folding (`f.r.e.e`, `f-r-e-e`, `f r e e` → `free`) on or off.
    #[must_use]
    pub const fn with_separators(mut self, on: bool) -> Self {
        self.separators = on;
        self
    }

    /// Turns leetspeak folding (`0`→`o`, `1`→`i`, `3`→`e`, `4`→`a`, `5`→`s`, `7`→`t`, and
    /// `@ $ !` between letters) on or off. Digits fold only inside words that have letters,
    /// so `100%` and prices are untouched.
    #[must_use]
    pub const fn with_leetspeak(mut self, on: bool) -> Self {
        self.leetspeak = on;
        self
    }

    /// Turns the TR39 confusable skeleton (with combining marks removed) on or off.
    #[must_use]
    pub const fn with_confusables(mut self, on: bool) -> Self {
        self.confusables = on;
        self
    }

    /// Normalises `text`, keeping for every normalised character the byte range of the
    /// original it came from.
    pub fn normalize(&self, text: &str) -> Normalized {
        if self.is_identity_on(text) {
            return Normalized {
                text: text.to_owned(),
                map: None,
                original_len: text.len(),
            };
        }
        let mut units = Vec::with_capacity(text.len());
        if self.whitespace {
            let mut sink = CollapseWhitespace::new(units);
            fold::base(text, self.case_fold, &mut sink);
            units = sink.into_inner();
        } else {
            fold::base(text, self.case_fold, &mut units);
        }
        if self.separators {
            fold::separators(&mut units);
        }
        if self.leetspeak {
            fold::leetspeak(&mut units);
        }
        if self.confusables {
            units = fold::confusables(units);
        }
        Normalized::from_units(units, text.len())
    }

    /// Whether normalising `text` would change nothing, so the map is the identity.
    fn is_identity_on(&self, text: &str) -> bool {
        if self.case_fold || self.whitespace || self.separators || self.leetspeak {
            return false;
        }
        if self.confusables {
            return false;
        }
        // ASCII is invisible-free and NFKC-stable, and resets the combining-class order, so
        // only the non-ASCII characters need the (table-driven) checks. A "maybe" only costs
        // the full normalisation.
        if text.is_ascii() {
            return true;
        }
        // One pass: the quick check answers `Yes` only after seeing every character.
        let mut invisible = false;
        let quick = is_nfkc_quick(
            non_ascii_chars(text)
                .filter(|c| !is_plainly_stable(*c))
                .inspect(|c| invisible |= is_invisible(*c)),
        );
        quick == IsNormalized::Yes && !invisible
    }

    /// Whether [`normalize`](Self::normalize) would return `text` unchanged; then the
    /// caller can work on `text` itself instead of a copy.
    pub(crate) fn leaves_unchanged(&self, text: &str) -> bool {
        self.is_identity_on(text)
    }
}

/// The [standard](Normalizer::standard) and [strict](Normalizer::strict) forms of `text`,
/// without offset maps: what the content rules match on. The strict form continues from the
/// standard one instead of starting over, and both work on bare characters, so both cost
/// little more than the strict form alone.
pub(crate) fn standard_and_strict(text: &str) -> (String, String) {
    let mut sink = CollapseWhitespace::new(TextAndChars::with_capacity(text.len()));
    fold::base(text, true, &mut sink);
    let TextAndChars {
        text: standard,
        mut chars,
    } = sink.into_inner();
    fold::separators(&mut chars);
    fold::leetspeak(&mut chars);
    (standard, fold::confusables_text(&chars))
}

/// The non-ASCII characters of `text`, found by skipping ASCII bytes without decoding them.
fn non_ascii_chars(text: &str) -> impl Iterator<Item = char> + '_ {
    let bytes = text.as_bytes();
    let mut at = 0;
    std::iter::from_fn(move || {
        let rest = bytes.get(at..)?;
        let ascii = ascii_prefix_len(rest);
        if ascii == rest.len() {
            return None;
        }
        at += ascii;
        let c = text.get(at..)?.chars().next()?;
        at += c.len_utf8();
        Some(c)
    })
}

/// How many bytes at the start of `bytes` are ASCII: sixteen at a time (the standard
/// library checks them a machine word at a time), then one by one.
pub(crate) fn ascii_prefix_len(bytes: &[u8]) -> usize {
    if bytes.first().is_some_and(|b| !b.is_ascii()) {
        return 0;
    }
    let mut ascii = 0;
    for chunk in bytes.chunks_exact(16) {
        if !chunk.is_ascii() {
            break;
        }
        ascii += 16;
    }
    let rest = bytes.get(ascii..).unwrap_or_default();
    ascii
        + rest
            .iter()
            .position(|b| !b.is_ascii())
            .unwrap_or(rest.len())
}

impl Default for Normalizer {
    /// The [standard](Normalizer::standard) preset.
    fn default() -> Self {
        Self::standard()
    }
}

/// One normalised character and the original bytes it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Unit {
    pub(crate) c: char,
    pub(crate) start: u32,
    pub(crate) end: u32,
}

/// Where one normalised character sits and where it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    /// Byte offset in the normalised text.
    at: u32,
    /// Byte range in the original text.
    start: u32,
    end: u32,
}

/// Normalised text with a map back to the original.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Normalized {
    text: String,
    /// `None` when the normalised text is the original (the map is the identity).
    map: Option<Vec<Span>>,
    original_len: usize,
}

impl Normalized {
    fn from_units(units: Vec<Unit>, original_len: usize) -> Self {
        let mut text = String::with_capacity(units.len());
        let mut map = Vec::with_capacity(units.len());
        for u in units {
            let at = u32::try_from(text.len()).unwrap_or(u32::MAX);
            map.push(Span {
                at,
                start: u.start,
                end: u.end,
            });
            text.push(u.c);
        }
        Self {
            text,
            map: Some(map),
            original_len,
        }
    }

    /// The normalised text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The normalised text, owned.
    pub fn into_string(self) -> String {
        self.text
    }

    /// Whether the normalised text is byte for byte the original (offsets map to themselves).
    pub fn is_identity(&self) -> bool {
        self.map.is_none()
    }

    /// The byte range of the original text that the normalised bytes `range` came from: from
    /// the start of the original of the character holding `range.start` to the end of the
    /// original of the character holding `range.end - 1`. Both ends lie on character
    /// boundaries of the original. An empty range maps to an empty range. `None` when
    /// `range` is reversed or reaches past the normalised text.
    pub fn original_range(&self, range: Range<usize>) -> Option<Range<usize>> {
        if range.start > range.end || range.end > self.text.len() {
            return None;
        }
        let Some(map) = &self.map else {
            return Some(range);
        };
        let index_of = |byte: usize| -> usize {
            // The last span starting at or before `byte`.
            map.partition_point(|s| s.at as usize <= byte)
                .saturating_sub(1)
        };
        if range.is_empty() {
            let at = if range.start == self.text.len() {
                self.original_len
            } else {
                map.get(index_of(range.start))
                    .map_or(self.original_len, |s| s.start as usize)
            };
            return Some(at..at);
        }
        let first = map.get(index_of(range.start))?;
        let last = map.get(index_of(range.end - 1))?;
        let (start, end) = (first.start as usize, last.end as usize);
        Some(start.min(end)..end)
    }

    /// For each normalised character (in order), its byte offset in the normalised text and
    /// the byte range of the original it came from.
    pub fn spans(&self) -> impl Iterator<Item = (usize, Range<usize>)> + '_ {
        let identity = self.map.is_none().then(|| {
            self.text
                .char_indices()
                .map(|(i, c)| (i, i..i + c.len_utf8()))
        });
        let mapped = self.map.as_ref().map(|m| {
            m.iter()
                .map(|s| (s.at as usize, s.start as usize..s.end as usize))
        });
        identity
            .into_iter()
            .flatten()
            .chain(mapped.into_iter().flatten())
    }
}

/// Characters that are visible starters NFKC leaves alone (ASCII, Latin-1 and Latin
/// Extended-A letters but for their few compatibility forms, Greek and Cyrillic letters,
/// dashes and quotes, currency signs, emoji), so the identity check can skip their table
/// lookups.
fn is_plainly_stable(c: char) -> bool {
    let in_ranges = matches!(c,
        '\u{0000}'..='\u{007F}'
        | '\u{00C0}'..='\u{017F}'
        | '\u{0391}'..='\u{03A9}'
        | '\u{03B1}'..='\u{03C9}'
        | '\u{0400}'..='\u{0482}'
        | '\u{048A}'..='\u{04FF}'
        | '\u{2013}'..='\u{2014}'
        | '\u{2018}'..='\u{201D}'
        | '\u{20A0}'..='\u{20C0}'
        | '\u{2600}'..='\u{27BF}'
        | '\u{1F300}'..='\u{1FAFF}');
    // Compatibility forms inside those ranges: Ĳ ĳ Ŀ ŀ ŉ ſ ₨.
    in_ranges
        && !matches!(
            c,
            '\u{0132}'
                | '\u{0133}'
                | '\u{013F}'
                | '\u{0140}'
                | '\u{0149}'
                | '\u{017F}'
                | '\u{20A8}'
        )
}

/// Whether `c` is part of a word for boundary checks (as `\w` in regular expressions).
pub(crate) fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether `c` starts a new normalisation segment (a starter, canonical combining class 0).
pub(crate) fn is_starter(c: char) -> bool {
    canonical_combining_class(c) == 0
}

#[cfg(test)]
mod reference;
#[cfg(test)]
mod tests;
