//! The folding stages of [`Normalizer`](super::Normalizer). [`base`] (invisibles, NFKC, case)
//! writes into a [`Sink`], with whitespace collapsing fused in by [`CollapseWhitespace`];
//! separators and leetspeak then work in place, and the confusable skeleton makes the last
//! copy. The stages after `base` run on [`Unit`]s (character and original byte range) when
//! the offset map is wanted and on bare `char`s when only the text is.

use std::sync::LazyLock;

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfkc_quick};

use super::{Unit, is_starter};

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
        // Their small letters fold to themselves, as do punctuation, currency signs, arrows,
        // symbols and emoji (`caseless_ranges_fold_to_themselves` checks them).
        'ß'..='ÿ' | 'а'..='џ' => push(c),
        '\u{2000}'..='\u{20CF}'
        | '\u{2190}'..='\u{23FF}'
        | '\u{2500}'..='\u{27BF}'
        | '\u{1F300}'..='\u{1FAFF}' => push(c),
        c => c.to_lowercase().for_each(push),
    }
}

/// Where [`base`] puts the characters it produces, each with the original byte range it came
/// from: the units of a [`Normalized`](super::Normalized) map, or bare characters when only
/// the text is wanted.
pub(crate) trait Sink {
    /// Takes the next character, which came from the original bytes `start..end`.
    fn put(&mut self, c: char, start: u32, end: u32);

    /// Takes ASCII characters (`ascii` has no other) that each came from their own byte,
    /// from `start` on: the common case, which a sink may take faster than one by one.
    #[inline]
    fn put_ascii(&mut self, ascii: &str, start: u32) {
        let mut at = start;
        for b in ascii.bytes() {
            // Saturating, as every offset: texts past 4 GiB map their tail to the end.
            let next = at.saturating_add(1);
            self.put(char::from(b), at, next);
            at = next;
        }
    }
}

impl Sink for Vec<Unit> {
    #[inline]
    fn put(&mut self, c: char, start: u32, end: u32) {
        self.push(Unit { c, start, end });
    }
}

/// The text and the characters of what [`base`] produces, without offsets: what the content
/// rules need (the text to match links on, the characters for the later stages).
#[derive(Default)]
pub(crate) struct TextAndChars {
    pub(crate) text: String,
    pub(crate) chars: Vec<char>,
}

impl TextAndChars {
    pub(crate) fn with_capacity(bytes: usize) -> Self {
        Self {
            text: String::with_capacity(bytes),
            chars: Vec::with_capacity(bytes),
        }
    }
}

impl Sink for TextAndChars {
    #[inline]
    fn put(&mut self, c: char, _start: u32, _end: u32) {
        self.text.push(c);
        self.chars.push(c);
    }

    #[inline]
    fn put_ascii(&mut self, ascii: &str, _start: u32) {
        self.text.push_str(ascii);
        self.chars.extend(ascii.bytes().map(char::from));
    }
}

/// A [`Sink`] that collapses every run of whitespace into one space mapped to the whole run
/// and drops whitespace at both ends, on the way into the sink it wraps: the whitespace
/// stage, fused into [`base`].
pub(crate) struct CollapseWhitespace<S> {
    inner: S,
    /// The original range of the whitespace run seen since the last other character.
    pending: Option<(u32, u32)>,
    /// Whether a character other than whitespace went through (a run before it is leading
    /// whitespace, dropped).
    started: bool,
}

impl<S: Sink> CollapseWhitespace<S> {
    pub(crate) fn new(inner: S) -> Self {
        Self {
            inner,
            pending: None,
            started: false,
        }
    }

    /// The wrapped sink; a pending run of whitespace is trailing, so it is dropped.
    pub(crate) fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Sink> Sink for CollapseWhitespace<S> {
    #[inline]
    fn put(&mut self, c: char, start: u32, end: u32) {
        if c.is_whitespace() {
            self.pending = Some(match self.pending {
                Some((s, _)) => (s, end),
                None => (start, end),
            });
            return;
        }
        if let Some((s, e)) = self.pending.take()
            && self.started
        {
            self.inner.put(' ', s, e);
        }
        self.started = true;
        self.inner.put(c, start, end);
    }

    #[inline]
    fn put_ascii(&mut self, ascii: &str, start: u32) {
        // `put`, written out for ASCII (whose whitespace is `\t`..`\r` and the space), with
        // the runs between whitespace passed on whole.
        let is_space = |b: &u8| matches!(b, b' ' | b'\t'..=b'\r');
        let bytes = ascii.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let at = start.saturating_add(offset(i));
            let rest = bytes.get(i..).unwrap_or_default();
            let spaces = rest.iter().position(|b| !is_space(b)).unwrap_or(rest.len());
            if spaces > 0 {
                let end = start.saturating_add(offset(i + spaces));
                self.pending = Some(match self.pending {
                    Some((s, _)) => (s, end),
                    None => (at, end),
                });
                i += spaces;
                continue;
            }
            let word = rest.iter().position(is_space).unwrap_or(rest.len());
            if let Some((s, e)) = self.pending.take()
                && self.started
            {
                self.inner.put(' ', s, e);
            }
            self.started = true;
            self.inner
                .put_ascii(ascii.get(i..i + word).unwrap_or_default(), at);
            i += word;
        }
    }
}

/// Drops invisible characters and applies NFKC (and case folding) per segment: a starter
/// and the combining marks after it. Every output character maps to its whole segment.
///
/// Per-segment NFKC equals NFKC of the whole text except where two starters compose (Hangul
/// conjoining jamo written one by one), which marketing text does not use.
pub(crate) fn base(text: &str, fold: bool, out: &mut impl Sink) {
    let bytes = text.as_bytes();
    let mut segment = Segment::default();
    let mut lowered = String::new();
    let mut i = 0;
    while let Some(rest) = bytes.get(i..).filter(|r| !r.is_empty()) {
        // ASCII characters followed by another (or by nothing) are segments of their own that
        // NFKC leaves alone: the common case, byte by byte, without the segment. The last one
        // before a non-ASCII character goes the general way (a combining mark may follow it).
        let ascii = super::ascii_prefix_len(rest);
        let plain = if ascii == rest.len() {
            ascii
        } else {
            ascii.saturating_sub(1)
        };
        if plain > 0 {
            segment.flush(out, fold);
            let run = text.get(i..i + plain).unwrap_or_default();
            if fold && run.bytes().any(|b| b.is_ascii_uppercase()) {
                lowered.clear();
                lowered.push_str(run);
                lowered.make_ascii_lowercase();
                out.put_ascii(&lowered, offset(i));
            } else {
                out.put_ascii(run, offset(i));
            }
            i += plain;
            continue;
        }
        let Some(c) = text.get(i..).and_then(|t| t.chars().next()) else {
            break;
        };
        let start = offset(i);
        i += c.len_utf8();
        // Plainly stable characters are visible starters (`the_identity_shortcut_agrees_…`
        // checks it), so they skip both table lookups.
        let stable = super::is_plainly_stable(c);
        if !stable && is_invisible(c) {
            continue;
        }
        if stable || is_starter(c) {
            segment.flush(out, fold);
            // A stable character before another starter is a segment of its own that NFKC
            // leaves alone: only the case fold.
            if stable && starts_segment(text, i) {
                put_folded(out, c, (start, offset(i)), fold);
                continue;
            }
        }
        segment.push(c, start, offset(i));
    }
    segment.flush(out, fold);
}

/// Whether the character at byte `at` of `text` (if any) surely starts a new segment: the
/// end of the text, ASCII, or a plainly stable character (a visible starter). Anything else
/// may be invisible or a combining mark, which the general way sorts out.
fn starts_segment(text: &str, at: usize) -> bool {
    match text.as_bytes().get(at) {
        None => true,
        Some(b) if b.is_ascii() => true,
        Some(_) => text
            .get(at..)
            .and_then(|t| t.chars().next())
            .is_some_and(super::is_plainly_stable),
    }
}

/// Puts `c`, case-folded if `fold`, mapped to `range`.
#[inline]
fn put_folded(out: &mut impl Sink, c: char, (start, end): (u32, u32), fold: bool) {
    if fold {
        case_fold(c, |f| out.put(f, start, end));
    } else {
        out.put(c, start, end);
    }
}

fn offset(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// The segment [`base`] is reading: a starter and the combining marks after it.
#[derive(Default)]
struct Segment {
    /// The character of a segment that has only one (most of them), kept out of `chars`.
    lone: Option<char>,
    /// The characters of a longer segment.
    chars: String,
    /// The original bytes of the segment; `None` while it is empty.
    range: Option<(u32, u32)>,
}

impl Segment {
    fn push(&mut self, c: char, start: u32, end: u32) {
        match &mut self.range {
            None => {
                self.lone = Some(c);
                self.range = Some((start, end));
            }
            Some(range) => {
                if let Some(first) = self.lone.take() {
                    self.chars.push(first);
                }
                self.chars.push(c);
                range.1 = end;
            }
        }
    }

    /// Puts the segment's NFKC (case-folded if `fold`) into `out` and starts a new one.
    fn flush(&mut self, out: &mut impl Sink, fold: bool) {
        let Some((start, end)) = self.range.take() else {
            return;
        };
        let mut put = |c: char| put_folded(out, c, (start, end), fold);
        match self.lone.take() {
            // A lone character NFKC leaves alone (most letters, signs and emoji): only the
            // case fold, without the normalisation iterator.
            Some(c)
                if super::is_plainly_stable(c)
                    || is_nfkc_quick(std::iter::once(c)) == IsNormalized::Yes =>
            {
                put(c);
            }
            Some(c) => std::iter::once(c).nfkc().for_each(put),
            None => {
                self.chars.chars().nfkc().for_each(put);
                self.chars.clear();
            }
        }
    }
}

/// What the stages after [`base`] work on: a [`Unit`] when the map is wanted, a bare `char`
/// when only the text is.
pub(crate) trait Folded: Copy {
    /// The character.
    fn char(&self) -> char;
    /// Replaces the character, keeping its original range.
    fn set_char(&mut self, c: char);
}

impl Folded for Unit {
    #[inline]
    fn char(&self) -> char {
        self.c
    }

    #[inline]
    fn set_char(&mut self, c: char) {
        self.c = c;
    }
}

impl Folded for char {
    #[inline]
    fn char(&self) -> char {
        *self
    }

    #[inline]
    fn set_char(&mut self, c: char) {
        *self = c;
    }
}

/// A set of ASCII characters as a bit mask, for branch-free membership tests in hot loops.
const fn ascii_set(chars: &[u8]) -> u128 {
    let mut mask = 0u128;
    let mut i = 0;
    while i < chars.len() {
        mask |= 1 << chars[i];
        i += 1;
    }
    mask
}

/// Whether `c` is in the ASCII set `mask`.
#[inline]
pub(super) fn in_ascii_set(mask: u128, c: char) -> bool {
    // Two 64-bit halves: cheaper than a 128-bit shift, and folded away for a constant mask.
    let code = u32::from(c);
    let (low, high) = (mask as u64, (mask >> 64) as u64);
    if code < 64 {
        (low >> code) & 1 == 1
    } else if code < 128 {
        (high >> (code - 64)) & 1 == 1
    } else {
        false
    }
}

/// The ASCII separators of [`is_separator`].
const ASCII_SEPARATORS: u128 = ascii_set(b".-_* ~/+");

/// Characters that spell a word out letter by letter: `f.r.e.e`, `f-r-e-e`, `f r e e`.
pub(super) fn is_separator(c: char) -> bool {
    in_ascii_set(ASCII_SEPARATORS, c) || matches!(c, '·' | '•')
}

/// Joins runs of at least three single letters or digits (two of them letters) separated by
/// the same separator: `f.r.e.e` → `free`. The separators are dropped from the text.
///
/// In place: the output is never longer than the input read so far, and a run is judged
/// only on input not yet overwritten.
pub(crate) fn separators<T: Folded>(units: &mut Vec<T>) {
    // A run has the same separator after its first and its second character; text without
    // a separator that comes back two characters later (most text) has none. Before the
    // first place it does, every character stays where it is.
    let Some(first_candidate) = units
        .iter()
        .zip(units.iter().skip(2))
        // The equality first: it rarely holds, and it is one comparison.
        .position(|(a, b)| a.char() == b.char() && is_separator(a.char()))
    else {
        return;
    };
    let alnum = |u: Option<&T>| u.is_some_and(|u| u.char().is_alphanumeric());
    let mut i = first_candidate.saturating_sub(1);
    let mut kept = i;
    // The input character before `i` (its slot may be overwritten by then).
    let mut previous = i
        .checked_sub(1)
        .and_then(|p| units.get(p))
        .map(Folded::char);
    while let Some(&first) = units.get(i) {
        let c = first.char();
        // The cheap test first: most characters are not followed by a separator.
        if let Some(sep) = units
            .get(i + 1)
            .map(Folded::char)
            .filter(|&s| is_separator(s))
            && c.is_alphanumeric()
            && !previous.is_some_and(char::is_alphanumeric)
        {
            let mut last = i;
            while units.get(last + 1).is_some_and(|u| u.char() == sep)
                && alnum(units.get(last + 2))
                && !alnum(units.get(last + 3))
            {
                last += 2;
            }
            let singles = (last - i) / 2 + 1;
            let letters = (i..=last)
                .step_by(2)
                .filter(|&k| units.get(k).is_some_and(|u| u.char().is_alphabetic()))
                .count();
            if singles >= 3 && letters >= 2 {
                previous = units.get(last).map(Folded::char);
                for k in (i..=last).step_by(2) {
                    if let Some(&u) = units.get(k)
                        && let Some(slot) = units.get_mut(kept)
                    {
                        *slot = u;
                        kept += 1;
                    }
                }
                i = last + 1;
                continue;
            }
        }
        if let Some(slot) = units.get_mut(kept) {
            *slot = first;
            kept += 1;
        }
        previous = Some(c);
        i += 1;
    }
    units.truncate(kept);
}

/// The characters [`leet`] knows.
pub(super) const LEETSPEAK: u128 = ascii_set(b"013457@$!|");

/// The letter a leetspeak character stands for.
pub(super) fn leet(c: char) -> Option<(char, bool)> {
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
pub(crate) fn leetspeak<T: Folded>(units: &mut [T]) {
    // Only a word (a run without whitespace) with a leetspeak character is looked at (most
    // copy has few: prices, dates); words are folded independently, so each is found from
    // its first leetspeak character.
    let is_space = |u: &T| u.char().is_whitespace();
    let mut from = 0;
    while let Some(at) = units.get(from..).and_then(|rest| {
        rest.iter()
            .position(|u| in_ascii_set(LEETSPEAK, u.char()))
            .map(|p| from + p)
    }) {
        let start = units
            .get(..at)
            .and_then(|before| before.iter().rposition(is_space))
            .map_or(0, |p| p + 1);
        let end = units
            .get(at..)
            .and_then(|rest| rest.iter().position(is_space))
            .map_or(units.len(), |p| at + p);
        if let Some(word) = units.get_mut(start..end) {
            leetspeak_word(word);
        }
        // `end` is whitespace or the end: the next word starts after it.
        from = end.max(at + 1);
    }
}

/// [`leetspeak`] in one word that has a leetspeak character. A folded character counts as a
/// letter for the next one.
fn leetspeak_word<T: Folded>(word: &mut [T]) {
    if !word.iter().any(|u| u.char().is_alphabetic()) {
        return;
    }
    for k in 0..word.len() {
        let Some((letter, symbol)) = word.get(k).and_then(|u| leet(u.char())) else {
            continue;
        };
        let before = k
            .checked_sub(1)
            .and_then(|b| word.get(b))
            .is_some_and(|u| u.char().is_alphabetic());
        let next = word.get(k + 1).map(Folded::char);
        // A symbol folds only before a letter or a leet digit (`p@ss`, `$c4m`), never
        // before more punctuation (`stop!!`).
        let after = next.is_some_and(|c| {
            c.is_alphabetic() || (leet(c).is_some_and(|(_, sym)| !sym || !symbol))
        });
        let fold = if symbol {
            // Inside a word, or starting one: `v!agra`, `$cam`.
            (before || k == 0) && after
        } else {
            before || after
        };
        if fold && let Some(u) = word.get_mut(k) {
            u.set_char(letter);
        }
    }
}

/// The blocks of characters whose skeleton is precomputed (start, end): ASCII, Latin-1,
/// Latin Extended-A and -B, IPA, combining marks, Greek and Cyrillic; punctuation, currency
/// signs, arrows, symbols and dingbats; emoji. That is nearly all of the text mia sees. Other
/// characters are computed one by one (a decomposition and a table search each).
const TABLE_BLOCKS: [(u32, u32); 3] = [(0, 0x0530), (0x2000, 0x2C00), (0x1F300, 0x1FB00)];

/// The index of `c` among the characters of [`TABLE_BLOCKS`], if it is one of them.
fn table_slot(c: char) -> Option<usize> {
    let code = u32::from(c);
    let mut base = 0;
    for (start, end) in TABLE_BLOCKS {
        if code < start {
            return None;
        }
        if code < end {
            return usize::try_from(base + code - start).ok();
        }
        base += end - start;
    }
    None
}

/// The TR39 skeletons (combining marks removed) of the characters of [`TABLE_BLOCKS`] after
/// [`script_fold`], computed once: `chars[offsets[slot]..offsets[slot + 1]]` for the
/// character's [slot](table_slot), and for ASCII characters whose skeleton is one ASCII
/// character, that character in `ascii` (else `0xFF`).
struct SkeletonTable {
    chars: Vec<char>,
    offsets: Vec<u32>,
    ascii: [u8; 128],
}

static SKELETONS: LazyLock<SkeletonTable> = LazyLock::new(|| {
    let mut chars = Vec::new();
    let mut offsets = vec![0u32];
    let mut ascii = [0xFF; 128];
    let mut buf = [0u8; 4];
    for code in TABLE_BLOCKS.into_iter().flat_map(|(start, end)| start..end) {
        let before = chars.len();
        if let Some(c) = char::from_u32(code) {
            // As `skeleton` computes it for a character outside the table.
            let c = script_fold(c);
            chars.extend(
                unicode_security::skeleton(c.encode_utf8(&mut buf))
                    .filter(|c| !is_combining_mark(*c)),
            );
        }
        if let (Some(slot), Some(&[one])) = (
            ascii.get_mut(code as usize),
            chars.get(before..).filter(|s| s.len() == 1),
        ) && one.is_ascii()
        {
            *slot = one as u8;
        }
        offsets.push(u32::try_from(chars.len()).unwrap_or(u32::MAX));
    }
    SkeletonTable {
        chars,
        offsets,
        ascii,
    }
});

impl SkeletonTable {
    /// The skeleton of `script_fold(c)`, if precomputed.
    fn get(&self, c: char) -> Option<&[char]> {
        let i = table_slot(c)?;
        let (start, end) = (*self.offsets.get(i)?, *self.offsets.get(i + 1)?);
        self.chars.get(start as usize..end as usize)
    }
}

/// The Latin letter a (case-folded) Cyrillic or Greek letter passes for. Both cases of a
/// letter map alike (`Т` and `т` → `t`), so a word compares equal whatever its case; TR39
/// alone maps `т` to `ᴛ` and `Т` to `T`.
pub(super) fn script_fold(c: char) -> char {
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

/// The text of [`confusables`] on `chars`, without building units: what matching needs.
pub(crate) fn confusables_text(chars: &[char]) -> String {
    // Bytes, which take an ASCII character with less work than a `String` takes a `char`.
    let mut out: Vec<u8> = Vec::with_capacity(chars.len() + chars.len() / 4 + 4);
    let table = &*SKELETONS;
    for &c in chars {
        // Most characters are ASCII with a one-character skeleton.
        if let Some(&b) = table.ascii.get(c as usize)
            && b != 0xFF
        {
            out.push(b);
            continue;
        }
        skeleton(table, c, |c| {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        });
    }
    // Only whole characters went in (the table's ASCII bytes are ASCII characters), so the
    // bytes are UTF-8; the lossy conversion is never taken.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The characters `c` turns into in [`confusables`].
fn skeleton(table: &SkeletonTable, c: char, mut push: impl FnMut(char)) {
    if let Some(prototype) = table.get(c) {
        prototype.iter().for_each(|&c| push(c));
        return;
    }
    let mut buf = [0u8; 4];
    unicode_security::skeleton(script_fold(c).encode_utf8(&mut buf))
        .filter(|c| !is_combining_mark(*c))
        .for_each(push);
}
