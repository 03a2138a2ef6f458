//! Sets of phrases matched on normalised text at word boundaries, for the blacklist, the
//! credential requests, the risky claims, the sender identity and the opt-out keywords: all
//! in one automaton, so a text is read once for every list.

use aho_corasick::{AhoCorasick, AhoCorasickKind, Match};

use crate::error::SafetyError;
use crate::normalize::{Normalizer, is_word_char};

/// Phrases normalised once, matched through [`PhraseSets`].
#[derive(Clone, Debug)]
pub(crate) struct PhraseSet {
    /// The phrases as given, for the trace.
    phrases: Vec<String>,
    /// For each phrase, whether it starts and ends with a word character: only those edges
    /// need a word boundary (`"scam"` needs both, `"$$$"` none, `"100% free"` one).
    edges: Vec<(bool, bool)>,
    /// The phrases normalised, as the automaton holds them.
    normalised: Vec<String>,
}

impl PhraseSet {
    /// Compiles `phrases` for `rule`, normalising each with `normalizer`, the way the text
    /// it is matched against must be normalised.
    ///
    /// # Errors
    /// [`SafetyError::InvalidConfig`] for a phrase that is empty once normalised;
    /// [`SafetyError::InvalidPattern`] when the automaton cannot be built.
    pub(crate) fn new(
        rule: &'static str,
        phrases: &[String],
        normalizer: Normalizer,
    ) -> Result<Self, SafetyError> {
        let mut normalised = Vec::with_capacity(phrases.len());
        let mut edges = Vec::with_capacity(phrases.len());
        for phrase in phrases {
            let n = normalizer.normalize(phrase).into_string();
            let (Some(first), Some(last)) = (n.chars().next(), n.chars().next_back()) else {
                return Err(SafetyError::config(format!(
                    "{rule}: phrase {} is empty once normalised",
                    normalised.len() + 1
                )));
            };
            edges.push((is_word_char(first), is_word_char(last)));
            normalised.push(n);
        }
        // Compiled here too, so a list that cannot be compiled is reported with its rule.
        automaton(rule, &normalised)?;
        Ok(Self {
            phrases: phrases.to_vec(),
            edges,
            normalised,
        })
    }

    /// The index of the first phrase (by position in `text`) that occurs in the normalised
    /// `text` as whole words. (The guard asks [`PhraseSets`] for all its lists at once.)
    #[cfg(test)]
    pub(crate) fn first_match(&self, text: &str) -> Option<usize> {
        let [found] = PhraseSets::new([Some(self)]).ok()?.first_matches(text);
        found
    }

    /// The phrase at `index` as it was configured.
    pub(crate) fn phrase(&self, index: usize) -> &str {
        self.phrases.get(index).map_or("", String::as_str)
    }

    /// How many phrases the set holds.
    pub(crate) fn len(&self) -> usize {
        self.phrases.len()
    }
}

/// One automaton for all phrases, `None` when there is none. A DFA where it can be built (the
/// fastest kind, and the lists are short), else whatever kind the crate picks.
fn automaton(rule: &'static str, phrases: &[String]) -> Result<Option<AhoCorasick>, SafetyError> {
    if phrases.is_empty() {
        return Ok(None);
    }
    if let Ok(dfa) = AhoCorasick::builder()
        .kind(Some(AhoCorasickKind::DFA))
        .build(phrases)
    {
        return Ok(Some(dfa));
    }
    AhoCorasick::new(phrases)
        .map(Some)
        .map_err(|e| SafetyError::pattern(rule, "phrase list", e))
}

/// Whether the match `m` in `text` is not glued to a word at an edge that needs a boundary.
fn stands_alone(text: &str, m: &Match, edges: Option<&(bool, bool)>) -> bool {
    let (starts_word, ends_word) = edges.copied().unwrap_or((true, true));
    let glued_before = starts_word
        && text
            .get(..m.start())
            .and_then(|s| s.chars().next_back())
            .is_some_and(is_word_char);
    let glued_after = ends_word
        && text
            .get(m.end()..)
            .and_then(|s| s.chars().next())
            .is_some_and(is_word_char);
    !(glued_before || glued_after)
}

/// Several [`PhraseSet`]s matched in one pass over the text.
#[derive(Clone, Debug)]
pub(crate) struct PhraseSets<const N: usize> {
    /// `None` when no set has a phrase.
    matcher: Option<AhoCorasick>,
    /// For each pattern of the automaton: its set, its index there and its edges.
    owners: Vec<(usize, usize, (bool, bool))>,
}

impl<const N: usize> PhraseSets<N> {
    /// Compiles the phrases of `sets` (a `None` set has none) into one automaton.
    ///
    /// # Errors
    /// [`SafetyError::InvalidPattern`] when the automaton cannot be built.
    pub(crate) fn new(sets: [Option<&PhraseSet>; N]) -> Result<Self, SafetyError> {
        let mut patterns = Vec::new();
        let mut owners = Vec::new();
        for (set_index, set) in sets.iter().enumerate() {
            let Some(set) = set else { continue };
            for (i, (phrase, edges)) in set.normalised.iter().zip(&set.edges).enumerate() {
                patterns.push(phrase.clone());
                owners.push((set_index, i, *edges));
            }
        }
        Ok(Self {
            matcher: automaton("phrases", &patterns)?,
            owners,
        })
    }

    /// For each set, the index of its first phrase (by position in `text`, then by index)
    /// that occurs in the normalised `text` as whole words. The search reports overlapping
    /// matches, so a candidate that fails the boundary test ("scam" inside "scampi") cannot
    /// hide a real match that overlaps it.
    pub(crate) fn first_matches(&self, text: &str) -> [Option<usize>; N] {
        let mut best: [Option<(usize, usize)>; N] = [None; N];
        if let Some(matcher) = &self.matcher {
            for m in matcher.find_overlapping_iter(text) {
                let Some(&(set, index, edges)) = self.owners.get(m.pattern().as_usize()) else {
                    continue;
                };
                let Some(slot) = best.get_mut(set) else {
                    continue;
                };
                let candidate = (m.start(), index);
                if slot.is_none_or(|b| candidate < b) && stands_alone(text, &m, Some(&edges)) {
                    *slot = Some(candidate);
                }
            }
        }
        best.map(|b| b.map(|(_, index)| index))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn set(phrases: &[&str]) -> PhraseSet {
        let phrases: Vec<String> = phrases.iter().map(|p| (*p).to_owned()).collect();
        PhraseSet::new("test", &phrases, Normalizer::standard()).unwrap()
    }

    fn hit<'a>(s: &'a PhraseSet, text: &str) -> Option<&'a str> {
        s.first_match(&crate::normalize(text)).map(|i| s.phrase(i))
    }

    #[test]
    fn phrases_match_only_as_whole_words() {
        let s = set(&["scam", "cure"]);
        assert_eq!(hit(&s, "this is a scam"), Some("scam"));
        assert_eq!(hit(&s, "Scam!"), Some("scam"));
        assert_eq!(hit(&s, "fresh scampi tonight"), None);
        assert_eq!(hit(&s, "secure checkout"), None);
        assert_eq!(hit(&s, "scams"), None);
        assert_eq!(hit(&s, "scampi, then a scam"), Some("scam"));
    }

    #[test]
    fn edges_that_are_not_word_characters_need_no_boundary() {
        let s = set(&["100% free", "$$$"]);
        assert_eq!(hit(&s, "now 100% free!"), Some("100% free"));
        assert_eq!(hit(&s, "win$$$now"), Some("$$$"));
        assert_eq!(hit(&s, "2100% freedom"), None);
    }

    #[test]
    fn phrases_are_normalised_like_the_text() {
        let s = set(&["RISK  Free"]);
        assert_eq!(hit(&s, "totally risk\nfree"), Some("RISK  Free"));
        assert_eq!(hit(&s, "ｒｉｓｋ ｆｒｅｅ"), Some("RISK  Free"));
    }

    #[test]
    fn strict_sets_see_through_look_alikes_and_leetspeak() {
        let phrases = vec!["free money".to_owned()];
        let s = PhraseSet::new("test", &phrases, Normalizer::strict()).unwrap();
        for text in [
            "FR33 M0NEY",
            "frее mоney",
            "f.r.e.e money",
            "free\u{200B} money",
        ] {
            let n = Normalizer::strict().normalize(text).into_string();
            assert_eq!(s.first_match(&n), Some(0), "{text}");
        }
        let n = Normalizer::strict()
            .normalize("freedom money")
            .into_string();
        assert_eq!(s.first_match(&n), None);
    }

    #[test]
    fn the_earliest_match_in_the_text_is_reported() {
        let s = set(&["miracle", "get rich"]);
        assert_eq!(hit(&s, "get rich with this miracle"), Some("get rich"));
    }

    #[test]
    fn sets_matched_together_answer_as_each_alone() {
        let a = set(&["scam", "free", "free money", "$$$"]);
        let b = set(&["money", "scam", "stop"]);
        let empty = set(&[]);
        let together = PhraseSets::new([Some(&a), None, Some(&b), Some(&empty)]).unwrap();
        for text in [
            "free money, no scam",
            "scampi for free$$$ stop",
            "stop the money",
            "nothing here",
            "money money free scam",
        ] {
            let n = crate::normalize(text);
            let [x, none, y, nothing] = together.first_matches(&n);
            assert_eq!(x, a.first_match(&n), "{text}");
            assert_eq!(y, b.first_match(&n), "{text}");
            assert_eq!((none, nothing), (None, None), "{text}");
        }
    }

    #[test]
    fn empty_phrases_are_rejected_and_an_empty_set_matches_nothing() {
        let err = PhraseSet::new(
            "blacklist",
            &["ok".into(), "\u{200B} ".into()],
            Normalizer::standard(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("phrase 2"), "{err}");
        assert_eq!(set(&[]).first_match("anything"), None);
    }
}
