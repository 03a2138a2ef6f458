//! Runs of digits (with spaces, dashes, dots, slashes and parentheses between groups) and
//! what they are: a payment card, an IPv4 address, a phone number, or nothing personal.

use std::net::Ipv4Addr;

use super::PiiKind;
use super::checks::is_card;
use super::context::{context, is_glued};
use super::phone::{Region, is_valid_international, valid_region};

/// One run of digit groups.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Run {
    /// Byte range in the scanned text.
    pub(crate) start: usize,
    pub(crate) end: usize,
    /// Byte ranges of the digit groups.
    groups: Vec<(usize, usize)>,
    /// Starts with `+`.
    plus: bool,
    /// Byte offsets of the opening parentheses inside the run.
    parens_at: Vec<usize>,
}

const SEPARATORS: &[u8] = b" -./";

/// Finds every run of digit groups in `text` that does not start inside a word.
pub(crate) fn runs(text: &str) -> Vec<Run> {
    let bytes = text.as_bytes();
    let at = |i: usize| bytes.get(i).copied().unwrap_or(0);
    let digit = |i: usize| at(i).is_ascii_digit();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = at(i);
        let starts = b.is_ascii_digit()
            || (b == b'+' && (digit(i + 1) || (at(i + 1) == b'(' && digit(i + 2))))
            || (b == b'(' && (digit(i + 1) || (at(i + 1) == b'+' && digit(i + 2))));
        if !starts {
            i += 1;
            continue;
        }
        // Inside a word (`SKU12345678`, `v2`): skip the rest of that word.
        let prev = text.get(..i).and_then(|h| h.chars().next_back());
        if prev.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            while i < bytes.len() && (at(i).is_ascii_alphanumeric() || at(i) == b'_') {
                i += 1;
            }
            i += 1;
            continue;
        }
        let run = read_run(bytes, i);
        i = run.end.max(i + 1);
        if !run.groups.is_empty() {
            out.push(run);
        }
    }
    out
}

/// Reads one run starting at `start` (a digit, `+` or `(`).
fn read_run(bytes: &[u8], start: usize) -> Run {
    let at = |i: usize| bytes.get(i).copied().unwrap_or(0);
    let digit = |i: usize| at(i).is_ascii_digit();
    let mut run = Run {
        start,
        ..Run::default()
    };
    let leading_paren = at(start) == b'(';
    let mut j = start;
    let mut open = 0usize;
    // Where the parenthesis opened at `start` closes, if it does.
    let mut leading_close = None;
    if leading_paren {
        open += 1;
        j += 1;
    }
    if at(j) == b'+' {
        run.plus = true;
        j += 1;
        if at(j) == b'(' {
            open += 1;
            j += 1;
        }
    }
    let mut end = j;
    loop {
        let g = j;
        while digit(j) {
            j += 1;
        }
        if j == g {
            break;
        }
        run.groups.push((g, j));
        end = j;
        // What joins this group to the next one.
        let mut k = j;
        if at(k) == b')' && open > 0 {
            open -= 1;
            if open == 0 && leading_paren && leading_close.is_none() {
                leading_close = Some(k);
            }
            k += 1;
            end = k;
            if matches!(at(k), b' ' | b'-') {
                k += 1;
            }
        } else if SEPARATORS.contains(&at(k)) {
            k += 1;
        }
        if at(k) == b'(' && digit(k + 1) {
            open += 1;
            run.parens_at.push(k);
            k += 1;
        }
        if k == j || !digit(k) {
            break;
        }
        j = k;
    }
    run.end = end;
    if leading_paren {
        match leading_close {
            // "(+49 30 1234567)", "(12345678)": parentheses around the whole number are not
            // part of it.
            Some(close) if close + 1 == run.end => {
                run.start = start + 1;
                run.end = close;
            }
            // "(030) 1234567": an area code in parentheses is.
            Some(_) => {}
            // "(+49 30 1234567": an unclosed parenthesis is not.
            None => run.start = start + 1,
        }
    }
    run
}

impl Run {
    fn digits(&self, text: &str, groups: &[(usize, usize)]) -> String {
        groups.iter().filter_map(|&(s, e)| text.get(s..e)).collect()
    }

    /// The sub-run of groups `first..=last`.
    fn part(&self, first: usize, last: usize) -> Run {
        let groups: Vec<(usize, usize)> = self.groups.get(first..=last).unwrap_or(&[]).to_vec();
        let start = if first == 0 {
            self.start
        } else {
            // Keep an opening parenthesis right before the first group: "(11) 97908-4782".
            groups.first().map_or(self.start, |g| {
                let opens = first > 0 && self.groups.get(first - 1).is_some_and(|p| p.1 < g.0);
                g.0 - usize::from(opens && self.opens_before(g.0))
            })
        };
        let end = if last + 1 == self.groups.len() {
            self.end
        } else {
            groups.last().map_or(self.end, |g| g.1)
        };
        Run {
            start,
            end,
            groups,
            plus: self.plus && first == 0,
            parens_at: self.parens_at.clone(),
        }
    }

    /// Whether the byte before `at` is an opening parenthesis (set when the run was read).
    fn opens_before(&self, at: usize) -> bool {
        self.parens_at.contains(&at.wrapping_sub(1))
    }

    /// The separator bytes between group `k` and `k + 1`.
    fn joint<'t>(&self, text: &'t str, k: usize) -> &'t str {
        match (self.groups.get(k), self.groups.get(k + 1)) {
            (Some(&(_, e)), Some(&(s, _))) => text.get(e..s).unwrap_or(""),
            _ => "",
        }
    }
}

/// A finding: kind and byte range.
pub(crate) type Hit = (PiiKind, usize, usize);

/// What the run is. A run that is nothing as a whole but changes its separators (`85.1.2.3
/// (11) 97908-4782`, a card number followed by a date) is split where they change, and each
/// part is judged on its own.
pub(crate) fn classify(text: &str, run: &Run, regions: &[Region]) -> Vec<Hit> {
    if let Some(hit) = classify_run(text, run, regions) {
        return vec![hit];
    }
    split(text, run, regions, 2)
}

fn joint_kind(joint: &str) -> u8 {
    [b'.', b'-', b'/']
        .into_iter()
        .find(|b| joint.as_bytes().contains(b))
        .unwrap_or(b' ')
}

fn split(text: &str, run: &Run, regions: &[Region], depth: u8) -> Vec<Hit> {
    let n = run.groups.len();
    if depth == 0 || n < 2 {
        return Vec::new();
    }
    let kinds: Vec<u8> = (0..n - 1).map(|k| joint_kind(run.joint(text, k))).collect();
    let Some(change) = (1..kinds.len()).find(|&k| kinds.get(k) != kinds.get(k - 1)) else {
        return Vec::new();
    };
    let mut best = Vec::new();
    // The boundary is the joint where the new separator appears, or the one before it.
    for boundary in [change, change - 1] {
        let left = run.part(0, boundary);
        let right = run.part(boundary + 1, n - 1);
        let mut hits: Vec<Hit> = classify_run(text, &left, regions).into_iter().collect();
        hits.extend(match classify_run(text, &right, regions) {
            Some(hit) => vec![hit],
            None => split(text, &right, regions, depth - 1),
        });
        if hits.len() > best.len() {
            best = hits;
        }
    }
    best
}

/// What the run at hand is, with its (possibly shortened) byte range.
fn classify_run(text: &str, run: &Run, regions: &[Region]) -> Option<Hit> {
    let lens: Vec<usize> = run.groups.iter().map(|(s, e)| e - s).collect();
    let joints: Vec<&str> = (0..run.groups.len().saturating_sub(1))
        .map(|k| run.joint(text, k))
        .collect();
    // Dates are the commonest long runs in marketing copy; they need no context.
    if is_date(&lens, &joints, text, run) {
        return None;
    }
    // Most runs in copy are glued to a sign or a word (`20%`, `€19`): decided before the
    // costlier look at the words around.
    if is_glued(text, run.start, run.end) {
        return None;
    }
    let ctx = context(text, run.start, run.end);
    let all_joints = |j: &str| joints.iter().all(|x| *x == j);
    let digits = run.digits(text, &run.groups);
    let parens = joints.iter().any(|j| j.contains('(') || j.contains(')'))
        || text
            .get(run.start..run.end)
            .is_some_and(|s| s.starts_with('('));

    // IPv4: four dotted groups of one to three digits, parsed by the standard library.
    if !joints.is_empty() && all_joints(".") {
        if lens.len() == 4 && lens.iter().all(|l| (1..=3).contains(l)) {
            if ctx.version {
                return None;
            }
            let candidate = text.get(run.start..run.end)?;
            return candidate
                .parse::<Ipv4Addr>()
                .ok()
                .map(|_| (PiiKind::Ip, run.start, run.end));
        }
        if lens.len() == 3 && lens.iter().all(|l| (1..=3).contains(l)) {
            // A version (`2.10.1`) or a dotted amount.
            return None;
        }
    }
    if ctx.version {
        return None;
    }
    // Payment cards: 12-19 digits, unbroken or in the printed groupings.
    let card_layout = !run.plus
        && !parens
        && (joints.is_empty() || all_joints(" ") || all_joints("-"))
        && matches!(
            lens.as_slice(),
            [_] | [4, 4, 4, 4]
                | [4, 4, 4, 4, 3]
                | [4, 4, 4, 4, 1..=4]
                | [4, 4, 4, 1..=4]
                | [4, 6, 5]
                | [4, 6, 4]
        );
    if (12..=19).contains(&digits.len()) && card_layout {
        let values: Vec<u8> = digits.bytes().map(|b| b - b'0').collect();
        if is_card(&values) {
            return Some((PiiKind::CreditCard, run.start, run.end));
        }
        if lens.len() > 1 && digits.len() >= 13 {
            // Printed like a card but not one (a Luhn-invalid number): nothing else either.
            return None;
        }
    }
    if ctx.reference || ctx.amount {
        return None;
    }
    phone(text, run, &lens, &joints, regions, ctx.phone_cue)
}

/// Dates and year ranges: `26.11.2026`, `2026-11-26`, `11/26/26`, `2019-2026`.
fn is_date(lens: &[usize], joints: &[&str], text: &str, run: &Run) -> bool {
    let same = joints.windows(2).all(|w| w.first() == w.last());
    let sep_ok = joints
        .first()
        .is_some_and(|j| matches!(*j, "." | "/" | "-"));
    if !(same && sep_ok) {
        return false;
    }
    let values: Vec<u32> = run
        .groups
        .iter()
        .filter_map(|&(s, e)| text.get(s..e)?.parse().ok())
        .collect();
    let year = |v: u32, len: usize| len == 4 && (1900..=2099).contains(&v) || len == 2;
    let day_month = |a: u32, b: u32| (1..=31).contains(&a) && (1..=12).contains(&b);
    match (lens, values.as_slice()) {
        ([4, 4], [a, b]) => (1900..=2099).contains(a) && (1900..=2099).contains(b),
        ([1 | 2, 1 | 2, l], [a, b, y]) => year(*y, *l) && (day_month(*a, *b) || day_month(*b, *a)),
        ([4, 1 | 2, 1 | 2], [y, m, d]) => year(*y, 4) && day_month(*d, *m),
        _ => false,
    }
}

/// A phone number, tried whole and then without trailing groups that may belong to the
/// next words (`+49 30 1234567 9-17`).
fn phone(
    text: &str,
    run: &Run,
    lens: &[usize],
    joints: &[&str],
    regions: &[Region],
    cue: bool,
) -> Option<(PiiKind, usize, usize)> {
    // "1 2 3 4 5 6 7": a list; only a country or trunk code may stand alone.
    if lens.iter().skip(1).filter(|l| **l == 1).count() > 1 {
        return None;
    }
    let mut groups = run.groups.as_slice();
    // "+49 30 1234567 9-17": opening hours after the number are not part of it.
    let n = groups.len();
    if n > 3
        && joints.get(n - 2) == Some(&"-")
        && joints.get(n - 3) == Some(&" ")
        && groups
            .get(n - 2..)
            .is_some_and(|g| g.iter().all(|&(s, e)| is_hour(text, s, e)))
    {
        groups = groups.get(..n - 2)?;
    }
    phone_of_groups(text, run, groups, lens, joints, regions, cue)
}

/// Whether `text[s..e]` is an hour of the day (`9`, `17`).
fn is_hour(text: &str, s: usize, e: usize) -> bool {
    e - s <= 2
        && text
            .get(s..e)
            .and_then(|h| h.parse::<u8>().ok())
            .is_some_and(|h| h <= 24)
}

fn phone_of_groups(
    text: &str,
    run: &Run,
    groups: &[(usize, usize)],
    lens: &[usize],
    joints: &[&str],
    regions: &[Region],
    cue: bool,
) -> Option<(PiiKind, usize, usize)> {
    let &(_, last_end) = groups.last()?;
    // Keep a closing parenthesis that belongs to the last group.
    let end = if groups.len() == run.groups.len() {
        run.end
    } else {
        last_end
    };
    let mut digits = String::with_capacity(16);
    for (k, &(s, e)) in groups.iter().enumerate() {
        let group = text.get(s..e)?;
        // "+49 (0) 30": the trunk prefix in parentheses is dropped in international format.
        let in_parens = k > 0 && joints.get(k - 1).is_some_and(|j| j.ends_with('('));
        if run.plus && in_parens && group == "0" {
            continue;
        }
        digits.push_str(group);
    }
    let international = run.plus || digits.starts_with("00");
    if international {
        let number = if run.plus {
            digits.as_str()
        } else {
            digits.get(2..)?
        };
        if !(8..=15).contains(&number.len()) {
            return None;
        }
        return is_valid_international(number).then_some((PiiKind::Phone, run.start, end));
    }
    if !(7..=13).contains(&digits.len()) {
        return None;
    }
    // Groups of thousands without a trunk prefix: an amount (`1 299 000`).
    let thousands = lens.len() > 1
        && lens.first().is_some_and(|l| *l <= 3)
        && lens.iter().skip(1).all(|l| *l == 3)
        && !digits.starts_with('0')
        && joints.iter().all(|j| *j == " " || *j == ".");
    if thousands && !cue && lens.len() == groups.len() && lens.len() > 3 {
        return None;
    }
    let bare = groups.len() == 1 && !cue;
    valid_region(&digits, regions, bare).map(|_| (PiiKind::Phone, run.start, end))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::super::phone::resolve;
    use super::*;

    fn spans(text: &str) -> Vec<&str> {
        runs(text)
            .iter()
            .map(|r| text.get(r.start..r.end).unwrap())
            .collect()
    }

    fn kinds(text: &str, regions: &[&str]) -> Vec<(PiiKind, String)> {
        let regions = resolve(regions, true);
        runs(text)
            .iter()
            .flat_map(|r| classify(text, r, &regions))
            .map(|(k, s, e)| (k, text.get(s..e).unwrap().to_owned()))
            .collect()
    }

    #[test]
    fn runs_cover_common_layouts() {
        assert_eq!(spans("call +49 (0)30 1234567 now"), ["+49 (0)30 1234567"]);
        assert_eq!(spans("call (030) 123-4567."), ["(030) 123-4567"]);
        assert_eq!(spans("tel (+7 912 345 67 89)"), ["+7 912 345 67 89"]);
        assert_eq!(spans("SKU12345678 and 42"), ["42"]);
        assert_eq!(spans("€19.99, 2026-11-26"), ["19.99", "2026-11-26"]);
        assert_eq!(spans("ip 192.168.0.1!"), ["192.168.0.1"]);
    }

    #[test]
    fn phones_cards_and_ips_are_told_apart() {
        assert_eq!(
            kinds("Ruf an: 030 1234567", &["DE"]),
            [(PiiKind::Phone, "030 1234567".to_owned())]
        );
        assert_eq!(
            kinds("card 4111 1111 1111 1111!", &["DE"]),
            [(PiiKind::CreditCard, "4111 1111 1111 1111".to_owned())]
        );
        assert_eq!(
            kinds("server 203.0.113.7.", &["DE"]),
            [(PiiKind::Ip, "203.0.113.7".to_owned())]
        );
        assert_eq!(kinds("bad 999.1.1.1", &["DE"]), []);
        assert_eq!(kinds("v 1.2.3.4 released", &["DE"]), []);
        assert_eq!(kinds("am 26.11.2026 um 10", &["DE"]), []);
        assert_eq!(kinds("Bestellung 0301234567", &["DE"]), []);
        assert_eq!(kinds("nur 1 299 000 ₽", &["RU"]), []);
        assert_eq!(
            kinds("звоните 8 (912) 345-67-89", &["RU"]),
            [(PiiKind::Phone, "8 (912) 345-67-89".to_owned())]
        );
        assert_eq!(
            kinds("call +49 30 1234567 9-17", &["DE"]),
            [(PiiKind::Phone, "+49 30 1234567".to_owned())]
        );
        assert_eq!(
            kinds("Karte 2204 0307 7649 4376 06.01.2024", &["DE"]),
            [(PiiKind::CreditCard, "2204 0307 7649 4376".to_owned())]
        );
        assert_eq!(
            kinds("IP 85.168.109.224 (030) 1234567", &["DE"]),
            [
                (PiiKind::Ip, "85.168.109.224".to_owned()),
                (PiiKind::Phone, "(030) 1234567".to_owned())
            ]
        );
    }
}
