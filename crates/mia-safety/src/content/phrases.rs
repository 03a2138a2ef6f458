//! A set of phrases matched on normalised text at word boundaries, for the blacklist, the
//! risky claims and the opt-out keywords.

use aho_corasick::AhoCorasick;

use crate::error::SafetyError;
use crate::normalize::{Normalizer, is_word_char};

/// Phrases compiled once into one automaton.
#[derive(Clone, Debug)]
pub(crate) struct PhraseSet {
    /// `None` when there are no phrases (nothing can match).
    matcher: Option<AhoCorasick>,
    /// The phrases as given, for the trace.
    phrases: Vec<String>,
    /// For each phrase, whether it starts and ends with a word character: only those edges
    /// need a word boundary (`"scam"` needs both, `"$$$"` none, `"100% free"` one).
    edges: Vec<(bool, bool)>,
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
        let matcher = if normalised.is_empty() {
            None
        } else {
            let ac = AhoCorasick::new(&normalised)
                .map_err(|e| SafetyError::pattern(rule, "phrase list", e))?;
            Some(ac)
        };
        Ok(Self {
            matcher,
            phrases: phrases.to_vec(),
            edges,
        })
    }

    /// The index of the first phrase (by position in `text`) that occurs in the normalised
    /// `text` as whole words.
    pub(crate) fn first_match(&self, text: &str) -> Option<usize> {
        let matcher = self.matcher.as_ref()?;
        // Overlapping search, so a candidate that fails the boundary test ("scam" inside
        // "scampi") cannot hide a real match that overlaps it.
        matcher
            .find_overlapping_iter(text)
            .filter(|m| {
                let (starts_word, ends_word) = self
                    .edges
                    .get(m.pattern().as_usize())
                    .copied()
                    .unwrap_or((true, true));
                let before = text.get(..m.start()).and_then(|s| s.chars().next_back());
                let after = text.get(m.end()..).and_then(|s| s.chars().next());
                let glued_before = starts_word && before.is_some_and(is_word_char);
                let glued_after = ends_word && after.is_some_and(is_word_char);
                !(glued_before || glued_after)
            })
            .min_by_key(|m| (m.start(), m.pattern().as_usize()))
            .map(|m| m.pattern().as_usize())
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
