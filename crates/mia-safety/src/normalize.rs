//! Text normalisation shared by every content rule, so the same tricks fail everywhere.
//!
//! Spammers hide words from filters with invisible characters (`g\u{200B}uaranteed`),
//! look-alike compatibility forms (fullwidth `ｇｕａｒａｎｔｅｅｄ`, `①`) and case. Rules match
//! on the normalised text only; it is never sent or stored.

use unicode_normalization::UnicodeNormalization;

/// Normalises `text` for matching: drops invisible formatting characters, applies Unicode
/// NFKC, lowercases, and collapses every run of whitespace into one space (trimmed at both
/// ends).
///
/// Dropped characters: zero-width spaces and joiners and the directional marks
/// (U+200B–U+200F), bidirectional embeddings and overrides (U+202A–U+202E) and isolates
/// (U+2066–U+2069), invisible operators (U+2060–U+2064), the byte-order mark (U+FEFF), tag
/// characters (U+E0000–U+E007F), the soft hyphen (U+00AD), the combining grapheme joiner
/// (U+034F), the Arabic letter mark (U+061C), the Mongolian vowel separator (U+180E) and
/// variation selectors (U+FE00–U+FE0F).
///
/// ```
/// assert_eq!(mia_safety::normalize("G\u{200B}UARANTEED  ｆｒｅｅ\n"), "guaranteed free");
/// ```
pub fn normalize(text: &str) -> String {
    let folded: String = text
        .chars()
        .filter(|c| !is_invisible(*c))
        .nfkc()
        .flat_map(char::to_lowercase)
        .collect();
    let mut out = String::with_capacity(folded.len());
    for word in folded.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Whether `c` is an invisible formatting character that [`normalize`] drops.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

/// Whether `c` is part of a word for boundary checks (as `\w` in regular expressions).
pub(crate) fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_characters_are_dropped() {
        assert_eq!(normalize("g\u{200B}uaranteed"), "guaranteed");
        assert_eq!(normalize("fr\u{200D}e\u{FEFF}e"), "free");
        assert_eq!(normalize("\u{202E}cure\u{202C}"), "cure");
        assert_eq!(normalize("mir\u{00AD}acle"), "miracle");
        assert_eq!(normalize("sc\u{E0041}am"), "scam");
        assert_eq!(normalize("wi\u{2060}n"), "win");
    }

    #[test]
    fn compatibility_forms_and_case_are_folded() {
        assert_eq!(normalize("ＧＵＡＲＡＮＴＥＥＤ"), "guaranteed");
        assert_eq!(normalize("ｂｉｔ．ｌｙ"), "bit.ly");
        assert_eq!(normalize("ＲＩＳＫ－ＦＲＥＥ"), "risk-free");
        assert_eq!(normalize("Get RICH"), "get rich");
        // Ligatures and circled digits decompose too.
        assert_eq!(normalize("\u{FB01}nd"), "find");
        assert_eq!(normalize("①⓪⓪% free"), "100% free");
    }

    #[test]
    fn whitespace_runs_collapse_to_one_space() {
        assert_eq!(normalize("  risk\n\t free\u{00A0}now  "), "risk free now");
        assert_eq!(normalize("\u{200B}\u{200B}"), "");
        assert_eq!(normalize(""), "");
    }

    #[test]
    fn ordinary_text_is_only_lowercased() {
        assert_eq!(normalize("Grüße aus Wien"), "grüße aus wien");
        assert_eq!(normalize("Привет"), "привет");
        // Emoji survive (only their variation selector goes).
        assert_eq!(normalize("Hi ❤\u{FE0F}"), "hi ❤");
    }
}
