//! The normalisation passes written the plain way, one pass and one vector per stage, as they
//! were before [`fold`](super::fold) fused them: the reference the property tests hold the
//! fused passes to. Shares only the per-character helpers with the real thing.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfkc_quick};

use super::fold::{case_fold, is_invisible, is_separator, leet, script_fold};
use super::{Normalizer, Unit, is_plainly_stable, is_starter};

/// The units [`Normalizer::normalize`] builds its text and map from, stage after stage.
pub(super) fn units(normalizer: &Normalizer, text: &str) -> Vec<Unit> {
    let mut units = base(text, normalizer.case_fold);
    if normalizer.whitespace {
        units = collapse_whitespace(units);
    }
    if normalizer.separators {
        units = separators(units);
    }
    if normalizer.leetspeak {
        units = leetspeak(units);
    }
    if normalizer.confusables {
        units = confusables(units);
    }
    units
}

fn base(text: &str, fold: bool) -> Vec<Unit> {
    let mut out = Vec::new();
    let mut segment = String::new();
    let mut range: Option<(u32, u32)> = None;
    for (i, c) in text.char_indices() {
        if is_invisible(c) {
            continue;
        }
        let (start, end) = (offset(i), offset(i + c.len_utf8()));
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
    let Some((start, end)) = range.take() else {
        return;
    };
    let mut chars = segment.chars();
    let lone = match (chars.next(), chars.next()) {
        (Some(c), None)
            if is_plainly_stable(c) || is_nfkc_quick(std::iter::once(c)) == IsNormalized::Yes =>
        {
            Some(c)
        }
        _ => None,
    };
    let mut push = |c| {
        if fold {
            case_fold(c, |f| out.push(Unit { c: f, start, end }));
        } else {
            out.push(Unit { c, start, end });
        }
    };
    match lone {
        Some(c) => push(c),
        None => segment.chars().nfkc().for_each(push),
    }
    segment.clear();
}

fn collapse_whitespace(units: Vec<Unit>) -> Vec<Unit> {
    let mut out: Vec<Unit> = Vec::new();
    let mut pending: Option<(u32, u32)> = None;
    for u in units {
        if u.c.is_whitespace() {
            pending = Some(match pending {
                Some((s, _)) => (s, u.end),
                None => (u.start, u.end),
            });
            continue;
        }
        if let Some((start, end)) = pending.take()
            && !out.is_empty()
        {
            out.push(Unit { c: ' ', start, end });
        }
        out.push(u);
    }
    out
}

fn separators(units: Vec<Unit>) -> Vec<Unit> {
    let alnum = |u: Option<&Unit>| u.is_some_and(|u| u.c.is_alphanumeric());
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&first) = units.get(i) {
        if first.c.is_alphanumeric()
            && (i == 0 || !alnum(units.get(i - 1)))
            && let Some(sep) = units.get(i + 1).map(|u| u.c).filter(|&s| is_separator(s))
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

fn leetspeak(mut units: Vec<Unit>) -> Vec<Unit> {
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
                let after = next.is_some_and(|c| {
                    c.is_alphabetic() || (leet(c).is_some_and(|(_, sym)| !sym || !symbol))
                });
                let fold = if symbol {
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

fn confusables(units: Vec<Unit>) -> Vec<Unit> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4];
    for u in units {
        let c = if u.c.is_ascii() {
            u.c
        } else {
            script_fold(u.c)
        };
        out.extend(
            unicode_security::skeleton(c.encode_utf8(&mut buf))
                .filter(|c| !is_combining_mark(*c))
                .map(|c| Unit { c, ..u }),
        );
    }
    out
}
