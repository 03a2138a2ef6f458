//! The folding stages of [`Normalizer`](super::Normalizer), each a pass over [`Unit`]s that
//! keeps every unit's original byte range.

use std::sync::LazyLock;

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::{IsNormalized, is_nfkc_quick};

use super::{Unit, is_starter, push_segment};

/// Whether `c` is an invisible formatting character that normalisation drops.
pub(crate) fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E007F}'
            | '\u{E0100}'..='\u{E01EF}'
    )
}

/// Full case folding of one character: lowercase, plus the folds that differ from it.
pub(crate) fn case_fold(c: char, mut push: impl FnMut(char)) {
    match c {
        'ß' | 'ẞ' => {
            push('s');
            push('s');
        }
        'ς' => push('σ'),
        c if c.is_ascii() => push(c.to_ascii_lowercase()),
        // The capitals of Latin-1 and of the basic Cyrillic alphabet, without the table
        // search (`common_case_folds_match_the_tables` checks them against it).
        'À'..='Ö' | 'Ø'..='Þ' | 'А'..='Я' => {
            push(char::from_u32(u32::from(c) + 0x20).unwrap_or(c))
        }
        'Ѐ'..='Џ' => push(char::from_u32(u32::from(c) + 0x50).unwrap_or(c)),
        // Their small letters fold to themselves.
        'ß'..='ÿ' | 'а'..='џ' => push(c),
        c => c.to_lowercase().for_each(push),
    }
}

/// Drops invisible characters and applies NFKC (and case folding) per segment: a starter
/// and the combining marks after it. Every output character maps to its whole segment.
///
/// Per-segment NFKC equals NFKC of the whole text except where two starters compose (Hangul
/// conjoining jamo written one by one), which marketing text does not use.
pub(crate) fn base(text: &str, fold: bool) -> Vec<Unit> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(text.len());
    let mut segment = String::new();
    let mut range: Option<(u32, u32)> = None;
    let mut i = 0;
    while let Some(rest) = bytes.get(i..).filter(|r| !r.is_empty()) {
        // ASCII characters followed by another (or by nothing) are segments of their own that
        // NFKC leaves alone: the common case, byte by byte, without the segment buffer. The
        // last one before a non-ASCII character goes the general way (a combining mark may
        // follow it).
        let ascii = rest
            .iter()
            .position(|b| !b.is_ascii())
            .unwrap_or(rest.len());
        let plain = if ascii == rest.len() {
            ascii
        } else {
            ascii.saturating_sub(1)
        };
        if plain > 0 {
            flush(&mut out, &mut segment, &mut range, fold);
            for (k, &b) in rest.iter().take(plain).enumerate() {
                out.push(Unit {
                    c: char::from(if fold { b.to_ascii_lowercase() } else { b }),
                    start: offset(i + k),
                    end: offset(i + k + 1),
                });
            }
            i += plain;
            continue;
        }
        let Some(c) = text.get(i..).and_then(|t| t.chars().next()) else {
            break;
        };
        let start = offset(i);
        i += c.len_utf8();
        if is_invisible(c) {
            continue;
        }
        let end = offset(i);
        if is_starter(c) {
            flush(&mut out, &mut segment, &mut range, fold);
        }
        segment.push(c);
        range = Some(match range {
            Some((s, _)) => (s, end),
            None => (start, end),
        });
    }
    flush(&mut out, &mut segment, &mut range, fold);
    out
}

fn offset(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

fn flush(out: &mut Vec<Unit>, segment: &mut String, range: &mut Option<(u32, u32)>, fold: bool) {
    let Some(r) = range.take() else {
        return;
    };
    let mut chars = segment.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii() => out.push(Unit {
            c: if fold { c.to_ascii_lowercase() } else { c },
            start: r.0,
            end: r.1,
        }),
        // A lone character NFKC leaves alone (most letters, signs and emoji): only the case
        // fold, without the normalisation iterator.
        (Some(c), None)
            if super::is_plainly_stable(c)
                || is_nfkc_quick(std::iter::once(c)) == IsNormalized::Yes =>
        {
            let unit = |c| Unit {
                c,
                start: r.0,
                end: r.1,
            };
            if fold {
                case_fold(c, |f| out.push(unit(f)));
            } else {
                out.push(unit(c));
            }
        }
        _ => push_segment(out, segment, r, fold),
    }
    segment.clear();
}

/// Collapses every run of whitespace into one space mapped to the whole run; drops
/// whitespace at both ends.
pub(crate) fn collapse_whitespace(mut units: Vec<Unit>) -> Vec<Unit> {
    // In place: the output is never longer than the input read so far.
    let mut kept = 0;
    let mut pending: Option<(u32, u32)> = None;
    for read in 0..units.len() {
        let Some(&u) = units.get(read) else { break };
        if u.c.is_whitespace() {
            pending = Some(match pending {
                Some((s, _)) => (s, u.end),
                None => (u.start, u.end),
            });
            continue;
        }
        if let Some((start, end)) = pending.take()
            && kept > 0
            && let Some(slot) = units.get_mut(kept)
        {
            *slot = Unit { c: ' ', start, end };
            kept += 1;
        }
        if let Some(slot) = units.get_mut(kept) {
            *slot = u;
            kept += 1;
        }
    }
    units.truncate(kept);
    units
}

/// Characters that spell a word out letter by letter: `f.r.e.e`, `f-r-e-e`, `f r e e`.
fn is_separator(c: char) -> bool {
    matches!(c, '.' | '-' | '_' | '*' | ' ' | '·' | '~' | '•' | '/' | '+')
}

/// Joins runs of at least three single letters or digits (two of them letters) separated by
/// the same separator: `f.r.e.e` → `free`. The separators are dropped from the text.
pub(crate) fn separators(units: Vec<Unit>) -> Vec<Unit> {
    let alnum = |u: Option<&Unit>| u.is_some_and(|u| u.c.is_alphanumeric());
    let mut out = Vec::with_capacity(units.len());
    let mut i = 0;
    while let Some(&first) = units.get(i) {
        // The cheap test first: most characters are not followed by a separator.
        if let Some(sep) = units.get(i + 1).map(|u| u.c).filter(|&s| is_separator(s))
            && first.c.is_alphanumeric()
            && (i == 0 || !alnum(units.get(i - 1)))
        {
            let mut last = i;
            while units.get(last + 1).is_some_and(|u| u.c == sep)
                && alnum(units.get(last + 2))
                && !alnum(units.get(last + 3))
            {
                last += 2;
            }
            let singles = (last - i) / 2 + 1;
            let letters = (i..=last)
                .step_by(2)
                .filter(|&k| units.get(k).is_some_and(|u| u.c.is_alphabetic()))
                .count();
            if singles >= 3 && letters >= 2 {
                out.extend((i..=last).step_by(2).filter_map(|k| units.get(k).copied()));
                i = last + 1;
                continue;
            }
        }
        out.push(first);
        i += 1;
    }
    out
}

/// The letter a leetspeak character stands for.
fn leet(c: char) -> Option<(char, bool)> {
    // (letter, whether the character is a symbol that folds only between letters)
    Some(match c {
        '0' => ('o', false),
        '1' => ('i', false),
        '3' => ('e', false),
        '4' => ('a', false),
        '5' => ('s', false),
        '7' => ('t', false),
        '@' => ('a', true),
        '$' => ('s', true),
        '!' => ('i', true),
        '|' => ('l', true),
        _ => return None,
    })
}

/// Folds leetspeak inside words that have letters: a digit next to a letter, a symbol
/// between letters (`fr33` → `free`, `m0ney` → `money`, `v!agra` → `viagra`). Words
/// without letters (`100%`, `19.99`) are untouched.
pub(crate) fn leetspeak(mut units: Vec<Unit>) -> Vec<Unit> {
    // Most copy has no leetspeak character in a word with letters; none at all is common
    // enough to answer at once.
    if !units.iter().any(|u| leet(u.c).is_some()) {
        return units;
    }
    let mut start = 0;
    while start < units.len() {
        let end = units
            .iter()
            .skip(start)
            .position(|u| u.c.is_whitespace())
            .map_or(units.len(), |p| start + p);
        let has_letter = units.get(start..end).is_some_and(|w| {
            w.iter().any(|u| leet(u.c).is_some()) && w.iter().any(|u| u.c.is_alphabetic())
        });
        if has_letter {
            for k in start..end {
                let Some((letter, symbol)) = units.get(k).and_then(|u| leet(u.c)) else {
                    continue;
                };
                let before = k
                    .checked_sub(1)
                    .filter(|&b| b >= start)
                    .and_then(|b| units.get(b))
                    .is_some_and(|u| u.c.is_alphabetic());
                let next = units.get(k + 1).filter(|_| k + 1 < end).map(|u| u.c);
                // A symbol folds only before a letter or a leet digit (`p@ss`, `$c4m`), never
                // before more punctuation (`stop!!`).
                let after = next.is_some_and(|c| {
                    c.is_alphabetic() || (leet(c).is_some_and(|(_, sym)| !sym || !symbol))
                });
                let fold = if symbol {
                    // Inside a word, or starting one: `v!agra`, `$cam`.
                    (before || k == start) && after
                } else {
                    before || after
                };
                if fold && let Some(u) = units.get_mut(k) {
                    u.c = letter;
                }
            }
        }
        start = end + 1;
    }
    units
}

/// Characters below this code point have their skeleton precomputed: ASCII, Latin-1,
/// Latin Extended-A and -B, IPA, combining marks, Greek and Cyrillic, which is nearly all
/// of the text mia sees. Others are computed per character.
const TABLE_END: u32 = 0x0530;

/// The TR39 skeletons (combining marks removed) of the characters below [`TABLE_END`],
/// computed once: `chars[offsets[c]..offsets[c + 1]]`.
struct SkeletonTable {
    chars: Vec<char>,
    offsets: Vec<u32>,
}

static SKELETONS: LazyLock<SkeletonTable> = LazyLock::new(|| {
    let mut chars = Vec::new();
    let mut offsets = vec![0u32];
    let mut buf = [0u8; 4];
    for code in 0..TABLE_END {
        if let Some(c) = char::from_u32(code) {
            chars.extend(
                unicode_security::skeleton(c.encode_utf8(&mut buf))
                    .filter(|c| !is_combining_mark(*c)),
            );
        }
        offsets.push(u32::try_from(chars.len()).unwrap_or(u32::MAX));
    }
    SkeletonTable { chars, offsets }
});

impl SkeletonTable {
    /// The skeleton of `c`, if precomputed.
    fn get(&self, c: char) -> Option<&[char]> {
        let i = usize::try_from(u32::from(c)).ok()?;
        let (start, end) = (*self.offsets.get(i)?, *self.offsets.get(i + 1)?);
        self.chars.get(start as usize..end as usize)
    }
}

/// The Latin letter a (case-folded) Cyrillic or Greek letter passes for. Both cases of a
/// letter map alike (`Т` and `т` → `t`), so a word compares equal whatever its case; TR39
/// alone maps `т` to `ᴛ` and `Т` to `T`.
fn script_fold(c: char) -> char {
    match c {
        'а' | 'α' => 'a',
        'в' | 'β' => 'b',
        'е' | 'ё' | 'ε' => 'e',
        'к' | 'κ' => 'k',
        'м' | 'μ' => 'm',
        'н' | 'һ' | 'η' => 'h',
        'о' | 'ο' => 'o',
        'р' | 'ρ' => 'p',
        'с' => 'c',
        'т' | 'τ' => 't',
        'у' | 'υ' => 'y',
        'х' | 'χ' => 'x',
        'і' | 'ї' | 'ι' => 'i',
        'ј' => 'j',
        'ѕ' => 's',
        'ԁ' => 'd',
        'ӏ' => 'l',
        'ԛ' => 'q',
        'ԝ' | 'ω' => 'w',
        'ν' => 'n',
        'ζ' => 'z',
        other => other,
    }
}

/// Whether [`script_fold`] leaves `c` alone (for the tests).
#[cfg(test)]
pub(crate) fn script_fold_is_identity(c: char) -> bool {
    script_fold(c) == c
}

/// Folds Cyrillic and Greek look-alikes to Latin ([`script_fold`]), then replaces every
/// character by its Unicode TR39 confusable skeleton and drops combining marks, so
/// look-alikes from other scripts and accents compare equal.
pub(crate) fn confusables(units: Vec<Unit>) -> Vec<Unit> {
    // Room for the few characters whose skeleton is longer (`m` → `rn`).
    let mut out = Vec::with_capacity(units.len() + units.len() / 4 + 4);
    let table = &*SKELETONS;
    for u in units {
        skeleton(table, u.c, |c| out.push(Unit { c, ..u }));
    }
    out
}

/// The text of [`confusables`]`(units)`, without building its units: what matching needs.
pub(crate) fn confusables_text(units: &[Unit]) -> String {
    let mut out = String::with_capacity(units.len() + units.len() / 4 + 4);
    let table = &*SKELETONS;
    for u in units {
        skeleton(table, u.c, |c| out.push(c));
    }
    out
}

/// The characters `c` turns into in [`confusables`].
fn skeleton(table: &SkeletonTable, c: char, mut push: impl FnMut(char)) {
    let c = if c.is_ascii() { c } else { script_fold(c) };
    if let Some(prototype) = table.get(c) {
        if let [one] = prototype {
            push(*one);
        } else {
            prototype.iter().for_each(|&c| push(c));
        }
        return;
    }
    let mut buf = [0u8; 4];
    unicode_security::skeleton(c.encode_utf8(&mut buf))
        .filter(|c| !is_combining_mark(*c))
        .for_each(push);
}
