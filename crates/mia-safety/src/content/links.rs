//! Links in copy: where they go, whether the host vouches for that place, and whether the
//! destination is hidden behind a shortener.

use std::borrow::Cow;

use regex::Regex;

use crate::domain::{is_bare_tld, is_homoglyph_host, registrable_domain};
use crate::error::SafetyError;
use crate::normalize::{is_word_char, normalize};
use crate::rules;

/// The URL shorteners the `links` rule denies (and their subdomains): a link through one
/// hides where it goes.
pub const SHORTENERS: &[&str] = &[
    "bit.ly",
    "tinyurl.com",
    "t.co",
    "goo.gl",
    "is.gd",
    "ow.ly",
    "cutt.ly",
    "rebrand.ly",
    "shorturl.at",
];

/// `scheme://authority...`, any scheme (only http and https are web links), starting at a
/// word boundary. The boundary is checked in code ([`LinkScanner::scheme_urls`]): a Unicode
/// `\b` would make the regex engine leave its fast DFA on any non-ASCII text.
const SCHEME_URL: &str = r"[a-z][a-z0-9+.\-]*://[^\s<>]*";
/// A host name followed by an optional port and path, without a scheme (`example.com/sale`).
/// Labels may be Unicode (look-alike domains are links too). Label lengths and hyphens are
/// checked afterwards ([`is_host_name`]), and so is the top-level label (against the known
/// TLDs of [`crate::domain`]): bounded repetitions of Unicode classes would make the automaton too big
/// to stay linear-time.
const BARE_DOMAIN: &str =
    r"(?:[\p{L}\p{N}][\p{L}\p{N}\-]*\.)+(?:\p{L}{2,}|xn--[a-z0-9\-]+)(?::\d+)?(?:/[^\s<>]*)?";
/// E-mail addresses, masked so their domains do not count as links.
const EMAIL: &str = r"[\p{L}\p{N}._%+\-]+@[\p{L}\p{N}.\-]+";

/// Why one link is a problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Problem {
    /// Goes through a URL shortener.
    Shortener(&'static str),
    /// A scheme other than http and https.
    OtherScheme,
    /// A domain the host did not allow.
    NotAllowed,
    /// An internationalised domain that imitates another (`аррӏе.com` in Cyrillic).
    Homoglyph,
    /// Plain `http://`.
    PlainHttp,
}

/// What the `links` rule concluded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LinkFinding {
    /// A shortener: deny.
    Shortener(String),
    /// Something a human must look at.
    Review(String),
}

/// The compiled patterns and domain lists of the `links` rule.
#[derive(Clone, Debug)]
pub(crate) struct LinkScanner {
    scheme_url: Regex,
    bare_domain: Regex,
    email: Regex,
    /// One word character, as the `regex` crate's Unicode `\b` sees it.
    word_char: Regex,
    /// Allowed registrable domains (eTLD+1), normalised.
    allowed: Vec<String>,
}

impl LinkScanner {
    /// Compiles the patterns and validates `allowed` domains.
    ///
    /// # Errors
    /// [`SafetyError::InvalidConfig`] for an allowed domain that is not a host name;
    /// [`SafetyError::InvalidPattern`] if a built-in pattern does not compile (a bug, covered
    /// by tests).
    pub(crate) fn new(allowed: &[String]) -> Result<Self, SafetyError> {
        let compile = |p: &str| Regex::new(p).map_err(|e| SafetyError::pattern(rules::LINKS, p, e));
        let mut domains = Vec::with_capacity(allowed.len());
        for domain in allowed {
            let n = normalize(domain);
            let n = n.strip_prefix("*.").unwrap_or(&n).trim_end_matches('.');
            if !is_host_name(n) {
                return Err(SafetyError::config(format!(
                    "allowed domain {domain:?} is not a host name (give `example.com`, not a URL)"
                )));
            }
            let Some(registrable) = registrable_domain(n) else {
                return Err(SafetyError::config(format!(
                    "allowed domain {domain:?} is a public suffix; allowing it would allow \
                     everyone's sites under it"
                )));
            };
            if !domains.iter().any(|d| d == registrable) {
                domains.push(registrable.to_owned());
            }
        }
        Ok(Self {
            scheme_url: compile(SCHEME_URL)?,
            bare_domain: compile(BARE_DOMAIN)?,
            email: compile(EMAIL)?,
            word_char: compile(r"\A\w\z")?,
            allowed: domains,
        })
    }

    /// Checks every link in normalised `text`; `None` when there is none to worry about.
    pub(crate) fn check(&self, text: &str) -> Option<LinkFinding> {
        // A bare domain needs a dot and a scheme a colon: without either, there is no link.
        if !text.contains(['.', ':']) {
            return None;
        }
        let mut problems = Vec::new();
        let urls = self.scheme_urls(text);
        for &(start, end) in &urls {
            let url = text.get(start..end).unwrap_or("");
            let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
            let host = host_of(rest);
            match scheme {
                "https" => problems.extend(self.judge(host)),
                "http" => {
                    problems.extend(self.judge(host));
                    problems.push(Problem::PlainHttp);
                }
                _ => problems.push(Problem::OtherScheme),
            }
        }
        if !text.contains('.') {
            // No bare domain either.
            return summarise(&problems);
        }
        let without_urls = blank_out(text, &urls);
        let without_emails = if without_urls.contains('@') {
            self.email.replace_all(&without_urls, " ")
        } else {
            Cow::Borrowed(without_urls.as_ref())
        };
        let rest: &str = &without_emails;
        // A bare domain has a dot followed by a letter (`\p{L}` is alphabetic); most copy
        // has none left once its URLs and addresses are out.
        let dotted = rest.match_indices('.').any(|(i, _)| {
            rest.get(i + 1..)
                .and_then(|t| t.chars().next())
                .is_some_and(char::is_alphabetic)
        });
        if !dotted {
            return summarise(&problems);
        }
        for m in self.bare_domain.find_iter(rest) {
            let before = rest.get(..m.start()).and_then(|s| s.chars().next_back());
            let after = rest.get(m.end()..).and_then(|s| s.chars().next());
            // Part of a longer token (`promo.mp4`), or a path segment of something else.
            if before.is_some_and(|c| is_word_char(c) || matches!(c, '-' | '/' | '.' | '@'))
                || after.is_some_and(|c| is_word_char(c) || c == '-')
            {
                continue;
            }
            let host = host_of(m.as_str());
            let tld = host.rsplit('.').next().unwrap_or("");
            if is_bare_tld(tld) && is_host_name(host) {
                problems.extend(self.judge(host));
            }
        }
        summarise(&problems)
    }

    /// The byte ranges of the `scheme://` URLs in `text`, as `\b` + [`SCHEME_URL`] finds them:
    /// a match must not follow a word character. A match that does is dropped and the search
    /// goes on after that word (no match can start inside it), which keeps it linear.
    fn scheme_urls(&self, text: &str) -> Vec<(usize, usize)> {
        let mut found = Vec::new();
        if !text.contains("://") {
            return found;
        }
        let mut from = 0;
        while let Some(m) = self.scheme_url.find_at(text, from) {
            let glued = text
                .get(..m.start())
                .and_then(|h| h.chars().next_back())
                .is_some_and(|c| self.is_word_char(c));
            if !glued {
                found.push((m.start(), m.end()));
                // An empty match is impossible (`://` is required); move on regardless.
                from = m.end().max(m.start() + 1);
                continue;
            }
            // Skip to the end of the word the match starts in.
            let rest = text.get(m.start()..).unwrap_or("");
            let word = rest
                .char_indices()
                .find(|&(_, c)| !self.is_word_char(c))
                .map_or(rest.len(), |(i, _)| i);
            from = m.start() + word.max(1);
        }
        found
    }

    /// Whether `c` is a word character for the `regex` crate (Unicode `\w`, which counts
    /// combining marks and joiners but not every numeric character, unlike
    /// [`is_word_char`]).
    fn is_word_char(&self, c: char) -> bool {
        c.is_ascii_alphanumeric()
            || c == '_'
            || (!c.is_ascii() && self.word_char.is_match(c.encode_utf8(&mut [0; 4])))
    }

    /// The problem with a link to `host`, if any (the scheme is judged by the caller).
    fn judge(&self, host: &str) -> Option<Problem> {
        if let Some(shortener) = SHORTENERS.iter().find(|s| within(host, s)) {
            return Some(Problem::Shortener(shortener));
        }
        if is_homoglyph_host(host) {
            return Some(Problem::Homoglyph);
        }
        let registrable = registrable_domain(host);
        if registrable.is_some_and(|r| self.allowed.iter().any(|d| d == r)) {
            None
        } else {
            Some(Problem::NotAllowed)
        }
    }
}

/// `text` with each of the (ordered, disjoint) byte `ranges` replaced by one space, as
/// `Regex::replace_all` with `" "` would; borrowed when there is none.
fn blank_out<'t>(text: &'t str, ranges: &[(usize, usize)]) -> Cow<'t, str> {
    if ranges.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for &(start, end) in ranges {
        out.push_str(text.get(at..start).unwrap_or(""));
        out.push(' ');
        at = end;
    }
    out.push_str(text.get(at..).unwrap_or(""));
    Cow::Owned(out)
}

/// The host of `authority[/path...]`: without user info, port, or a trailing dot.
fn host_of(rest: &str) -> &str {
    let authority = rest.split(['/', '?', '#', '\\']).next().unwrap_or(rest);
    // `https://bit.ly@evil.example` goes to evil.example: the host follows the last `@`.
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let host = if let Some(literal) = authority.strip_prefix('[') {
        // An IPv6 literal keeps its colons.
        literal.split(']').next().unwrap_or(literal)
    } else {
        // Stop at the port, or at punctuation closing the sentence: `(https://example.com)`.
        let end = authority
            .find(|c: char| !(c.is_alphanumeric() || matches!(c, '-' | '.' | '_')))
            .unwrap_or(authority.len());
        authority.get(..end).unwrap_or(authority)
    };
    host.trim_end_matches('.')
}

/// Whether `name` is a host name: dot-separated labels of 1 to 63 letters, digits and inner
/// hyphens.
fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|label| {
            (1..=63).contains(&label.chars().count())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
}

/// Whether `host` is `domain` or one of its subdomains.
fn within(host: &str, domain: &str) -> bool {
    host == domain
        || host
            .strip_suffix(domain)
            .is_some_and(|prefix| prefix.ends_with('.'))
}

/// One finding for all links: a shortener denies, anything else asks a human.
fn summarise(problems: &[Problem]) -> Option<LinkFinding> {
    if let Some(Problem::Shortener(name)) =
        problems.iter().find(|p| matches!(p, Problem::Shortener(_)))
    {
        return Some(LinkFinding::Shortener(format!(
            "link through the URL shortener {name} hides its destination"
        )));
    }
    let count = |wanted: Problem| problems.iter().filter(|p| **p == wanted).count();
    let mut parts = Vec::new();
    let look_alike = count(Problem::Homoglyph);
    if look_alike > 0 {
        parts.push(format!(
            "{look_alike} link{} to a look-alike (IDN homoglyph) domain",
            if look_alike == 1 { "" } else { "s" }
        ));
    }
    let not_allowed = count(Problem::NotAllowed);
    if not_allowed > 0 {
        parts.push(format!(
            "{not_allowed} link{} to a domain not on the allow-list",
            if not_allowed == 1 { "" } else { "s" }
        ));
    }
    let http = count(Problem::PlainHttp);
    if http > 0 {
        parts.push(format!(
            "{http} link{} over plain http",
            if http == 1 { "" } else { "s" }
        ));
    }
    let other = count(Problem::OtherScheme);
    if other > 0 {
        parts.push(format!(
            "{other} link{} with a scheme other than https",
            if other == 1 { "" } else { "s" }
        ));
    }
    if parts.is_empty() {
        None
    } else {
        Some(LinkFinding::Review(parts.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    fn scanner(allowed: &[&str]) -> LinkScanner {
        let allowed: Vec<String> = allowed.iter().map(|d| (*d).to_owned()).collect();
        LinkScanner::new(&allowed).unwrap()
    }

    fn check(s: &LinkScanner, text: &str) -> Option<LinkFinding> {
        s.check(&normalize(text))
    }

    fn is_review(f: Option<LinkFinding>) -> bool {
        matches!(f, Some(LinkFinding::Review(_)))
    }

    fn is_shortener(f: Option<LinkFinding>) -> bool {
        matches!(f, Some(LinkFinding::Shortener(_)))
    }

    #[test]
    fn allowed_domains_and_their_subdomains_pass() {
        let s = scanner(&["shop.example", "Example.COM"]);
        assert_eq!(check(&s, "see https://shop.example/sale?x=1"), None);
        assert_eq!(check(&s, "see https://www.shop.example/"), None);
        assert_eq!(check(&s, "see HTTPS://EXAMPLE.COM/Sale"), None);
        assert_eq!(check(&s, "see example.com/sale."), None);
        assert_eq!(check(&s, "see deals.example.com"), None);
        assert_eq!(
            check(&s, "(see https://example.com), or example.com!"),
            None
        );
        assert_eq!(check(&s, "https://example.com:8443/x"), None);
    }

    #[test]
    fn other_domains_escalate_including_look_alikes() {
        let s = scanner(&["example.com"]);
        assert!(is_review(check(&s, "see https://evil.test/x")));
        assert!(is_review(check(&s, "see example.com.evil.io/x")));
        assert!(is_review(check(&s, "see notexample.com")));
        // Cyrillic "а" in place of the Latin one.
        assert!(is_review(check(&s, "see exаmple.com")));
        // User info before the host does not make a link go where it seems to.
        assert!(is_review(check(&s, "https://example.com@evil.io/")));
    }

    #[test]
    fn homoglyph_domains_are_named_as_such() {
        let s = scanner(&["apple.com", "example.com"]);
        for text in [
            "see https://аррӏе.com/login",
            "see https://xn--80ak6aa92e.com/login",
            "see exаmple.com",
        ] {
            let Some(LinkFinding::Review(detail)) = check(&s, text) else {
                panic!("{text} must escalate");
            };
            assert!(detail.contains("look-alike"), "{detail}");
        }
        // An honest internationalised domain is judged by the allow-list only.
        let s = scanner(&["bücher.de"]);
        assert_eq!(check(&s, "https://bücher.de/neu"), None);
    }

    #[test]
    fn the_allow_list_works_by_registrable_domain() {
        let s = scanner(&["www.shop.co.uk", "brand.github.io"]);
        assert_eq!(check(&s, "https://shop.co.uk/x"), None);
        assert_eq!(check(&s, "https://deals.shop.co.uk/x"), None);
        assert!(is_review(check(&s, "https://other.co.uk/x")));
        assert_eq!(check(&s, "https://brand.github.io/x"), None);
        assert!(is_review(check(&s, "https://evil.github.io/x")));
        assert!(LinkScanner::new(&["co.uk".into()]).is_err());
        assert!(LinkScanner::new(&["github.io".into()]).is_err());
    }

    #[test]
    fn an_empty_allow_list_escalates_every_link() {
        let s = scanner(&[]);
        assert!(is_review(check(&s, "https://example.com")));
        assert!(is_review(check(&s, "t.me/mia_shop")));
        assert!(is_review(check(&s, "mia.shop")));
    }

    #[test]
    fn shorteners_are_found_in_every_disguise() {
        let s = scanner(&["example.com"]);
        assert!(is_shortener(check(&s, "https://bit.ly/abc")));
        assert!(is_shortener(check(&s, "go to bit.ly/abc now")));
        assert!(is_shortener(check(&s, "ＢＩＴ．ＬＹ/abc")));
        assert!(is_shortener(check(&s, "bit\u{200B}.ly/abc")));
        assert!(is_shortener(check(&s, "http://t.co/xyz")));
        assert!(is_shortener(check(&s, "www.tinyurl.com/xyz")));
        // A shortener wins over other problems in the same text.
        assert!(is_shortener(check(&s, "http://a.test and cutt.ly/q")));
    }

    #[test]
    fn shorteners_are_denied_even_when_allowed() {
        let s = scanner(&["bit.ly"]);
        assert!(is_shortener(check(&s, "bit.ly/abc")));
    }

    #[test]
    fn plain_http_and_other_schemes_escalate_even_for_allowed_domains() {
        let s = scanner(&["example.com"]);
        let Some(LinkFinding::Review(detail)) = check(&s, "http://example.com/sale") else {
            panic!("plain http must escalate");
        };
        assert!(detail.contains("plain http"), "{detail}");
        assert!(!detail.contains("example"), "{detail}");
        assert!(is_review(check(&s, "ftp://example.com/file")));
    }

    #[test]
    fn file_names_versions_emails_and_prices_are_not_links() {
        let s = scanner(&[]);
        for text in [
            "watch promo.mp4",
            "read the file.txt",
            "update to v2.3.1",
            "now €19.99",
            "mail jane@example.com",
            "sale ends 2026-11-26",
            "SKU-12345",
            "e.g. this, i.e. that",
            "follow @mia_shop",
        ] {
            assert_eq!(check(&s, text), None, "{text}");
        }
    }

    #[test]
    fn allowed_domains_are_validated() {
        assert!(LinkScanner::new(&["https://example.com/".into()]).is_err());
        assert!(LinkScanner::new(&["".into()]).is_err());
        assert!(LinkScanner::new(&["exa mple.com".into()]).is_err());
        let s = LinkScanner::new(&["*.Example.com.".into()]).unwrap();
        assert_eq!(check(&s, "https://a.example.com"), None);
    }

    #[test]
    fn scheme_urls_start_at_a_word_boundary_as_with_a_regex_boundary() {
        let s = scanner(&[]);
        let reference = Regex::new(&format!(r"\b{SCHEME_URL}")).unwrap();
        for text in [
            "see https://a.example/x and http://b.example",
            "éhttps://evil.test",
            "_https://evil.test x:https://ok.test",
            "ühttp://a.b/http://c.d ok",
            "a\u{0301}https://x.y 2https://z.w ²https://v.w",
            "xhttps://x.y (https://z.w) «ftp://q.r»",
            "https://",
            "ééé",
        ] {
            let ours: Vec<(usize, usize)> = s.scheme_urls(text);
            let theirs: Vec<(usize, usize)> = reference
                .find_iter(text)
                .map(|m| (m.start(), m.end()))
                .collect();
            assert_eq!(ours, theirs, "{text}");
        }
    }

    #[test]
    fn subdomain_matching_needs_a_dot() {
        assert!(within("a.example.com", "example.com"));
        assert!(within("example.com", "example.com"));
        assert!(!within("badexample.com", "example.com"));
        assert!(!within("example.com.evil", "example.com"));
    }
}
