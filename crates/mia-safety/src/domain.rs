//! Domain names: known top-level domains, registrable domains (eTLD+1) with a small table of
//! multi-part public suffixes, Punycode decoding and IDN homoglyph detection.
//!
//! A full Public Suffix List (the `psl` crate) is 2.5 MB of generated code; the table here
//! covers the multi-part suffixes marketing links actually use (`co.uk`, `com.br`, `com.au`,
//! hosting platforms such as `github.io`), which is what the allow-list needs.

use unicode_security::{MixedScript, skeleton};

/// Two-letter country-code top-level domains.
const CC_TLDS: &str = "ac ad ae af ag ai al am ao aq ar as at au aw ax az ba bb bd be bf bg bh bi \
bj bm bn bo br bs bt bw by bz ca cc cd cf cg ch ci ck cl cm cn co cr cu cv cw cx cy cz de dj dk \
dm do dz ec ee eg er es et eu fi fj fk fm fo fr ga gd ge gf gg gh gi gl gm gn gp gq gr gs gt gu \
gw gy hk hm hn hr ht hu id ie il im in io iq ir is it je jm jo jp ke kg kh ki km kn kp kr kw ky \
kz la lb lc li lk lr ls lt lu lv ly ma mc md me mg mh mk ml mm mn mo mp mq mr ms mt mu mv mw mx \
my mz na nc ne nf ng ni nl no np nr nu nz om pa pe pf pg ph pk pl pm pn pr ps pt pw py qa re ro \
rs ru rw sa sb sc sd se sg sh si sk sl sm sn so sr ss st su sv sx sy sz tc td tf tg th tj tk tl \
tm tn to tr tt tv tw tz ua ug uk us uy uz va vc ve vg vi vn vu wf ws ye yt za zm zw";

/// Country codes that are far more often file extensions than domains in chat text
/// (`readme.md`, `main.rs`, `run.sh`, `script.py`, `photo.ps`): not taken as bare domains.
const FILE_LIKE_CC_TLDS: &[&str] = &["md", "rs", "sh", "py", "ps"];

/// Generic top-level domains recognised in bare domains (a link with a scheme or `www.` is
/// recognised whatever its TLD). Short on purpose: `promo.mp4` and `file.txt` are not links,
/// and TLDs that are also common file extensions (`.zip`, `.mov`) are left out.
const GENERIC_TLDS: &[&str] = &[
    "com",
    "net",
    "org",
    "info",
    "biz",
    "app",
    "dev",
    "shop",
    "store",
    "online",
    "site",
    "xyz",
    "club",
    "pro",
    "top",
    "live",
    "news",
    "blog",
    "tech",
    "cloud",
    "link",
    "click",
    "page",
    "fun",
    "space",
    "website",
    "world",
    "today",
    "email",
    "media",
    "agency",
    "digital",
    "mobi",
    "name",
    "travel",
    "edu",
    "gov",
    "mil",
    "int",
    "museum",
    "aero",
    "jobs",
    "tel",
    "asia",
    "cat",
    "coop",
    "bar",
    "best",
    "bio",
    "buzz",
    "cafe",
    "cash",
    "center",
    "company",
    "deals",
    "design",
    "fit",
    "fyi",
    "games",
    "global",
    "group",
    "guru",
    "help",
    "host",
    "icu",
    "ink",
    "life",
    "ltd",
    "market",
    "network",
    "one",
    "plus",
    "promo",
    "rocks",
    "run",
    "sale",
    "services",
    "social",
    "software",
    "solutions",
    "studio",
    "support",
    "systems",
    "team",
    "tools",
    "vip",
    "win",
    "work",
    "works",
    "zone",
    "money",
    "loan",
    "bet",
    "casino",
    "poker",
    "finance",
    "capital",
    "credit",
    "berlin",
    "wien",
    "london",
    "nyc",
    "moscow",
    "tokyo",
    "рф",
    "укр",
    "google",
    "amazon",
    "apple",
    "microsoft",
    "youtube",
    "gmbh",
    "ag",
    "eus",
    "cymru",
    "bayern",
    "hamburg",
    "paris",
    "istanbul",
    "io",
    "ai",
    "gg",
    "ly",
    "tv",
    "fm",
];

/// Multi-part public suffixes (ICANN and the hosting platforms whose subdomains belong to
/// different people), for [`registrable_domain`].
const MULTI_PART_SUFFIXES: &[&str] = &[
    "co.uk",
    "org.uk",
    "ac.uk",
    "gov.uk",
    "me.uk",
    "ltd.uk",
    "plc.uk",
    "net.uk",
    "nhs.uk",
    "com.au",
    "net.au",
    "org.au",
    "edu.au",
    "gov.au",
    "id.au",
    "com.br",
    "net.br",
    "org.br",
    "gov.br",
    "edu.br",
    "art.br",
    "co.nz",
    "org.nz",
    "net.nz",
    "govt.nz",
    "co.jp",
    "ne.jp",
    "or.jp",
    "ac.jp",
    "go.jp",
    "co.za",
    "org.za",
    "gov.za",
    "com.mx",
    "org.mx",
    "gob.mx",
    "com.ar",
    "gob.ar",
    "com.tr",
    "net.tr",
    "org.tr",
    "gen.tr",
    "gov.tr",
    "com.cn",
    "net.cn",
    "org.cn",
    "gov.cn",
    "com.hk",
    "com.sg",
    "com.my",
    "co.in",
    "net.in",
    "org.in",
    "firm.in",
    "gov.in",
    "co.kr",
    "or.kr",
    "com.ua",
    "org.ua",
    "gov.ua",
    "co.il",
    "org.il",
    "com.pl",
    "net.pl",
    "org.pl",
    "com.es",
    "org.es",
    "gob.es",
    "com.pt",
    "org.pt",
    "com.co",
    "com.pe",
    "com.ve",
    "com.ec",
    "com.uy",
    "com.tw",
    "co.th",
    "in.th",
    "co.id",
    "or.id",
    "com.ph",
    "com.vn",
    "com.eg",
    "com.sa",
    "com.pk",
    "co.ke",
    "com.ng",
    "msk.ru",
    "spb.ru",
    "com.ru",
    "co.at",
    "or.at",
    "gv.at",
    "com.de",
    "co.it",
    "com.gr",
    "com.cy",
    "com.mt",
    "co.hu",
    "github.io",
    "gitlab.io",
    "blogspot.com",
    "herokuapp.com",
    "netlify.app",
    "vercel.app",
    "pages.dev",
    "workers.dev",
    "web.app",
    "firebaseapp.com",
    "appspot.com",
    "azurewebsites.net",
    "cloudfront.net",
    "s3.amazonaws.com",
    "myshopify.com",
    "wixsite.com",
    "wordpress.com",
    "tumblr.com",
    "substack.com",
    "notion.site",
    "glitch.me",
    "ngrok.io",
    "ngrok-free.app",
    "r2.dev",
    "fly.dev",
    "onrender.com",
    "railway.app",
    "carrd.co",
];

/// Whether `tld` (lowercase, without the dot) is a top-level domain a bare domain (no
/// scheme, no `www.`) may end in.
pub(crate) fn is_bare_tld(tld: &str) -> bool {
    if tld.starts_with("xn--") {
        return tld.len() > 4;
    }
    if tld.len() == 2 && tld.is_ascii() {
        return is_cc_tld(tld) && !FILE_LIKE_CC_TLDS.contains(&tld);
    }
    GENERIC_TLDS.contains(&tld)
}

/// Whether `tld` is a two-letter country-code TLD.
pub(crate) fn is_cc_tld(tld: &str) -> bool {
    tld.len() == 2 && CC_TLDS.split(' ').any(|c| c == tld)
}

/// Whether `tld` is any top-level domain this module knows (generic or country code).
pub(crate) fn is_known_tld(tld: &str) -> bool {
    is_cc_tld(tld) || GENERIC_TLDS.contains(&tld)
}

/// The public suffix of a lowercase `host`: the longest multi-part suffix from the table,
/// else its last label.
pub(crate) fn public_suffix(host: &str) -> &str {
    let host = host.trim_end_matches('.');
    MULTI_PART_SUFFIXES
        .iter()
        .filter(|s| {
            host.strip_suffix(*s)
                .is_some_and(|p| p.is_empty() || p.ends_with('.'))
        })
        .max_by_key(|s| s.len())
        .and_then(|s| host.get(host.len() - s.len()..))
        .unwrap_or_else(|| host.rsplit('.').next().unwrap_or(host))
}

/// The registrable domain (eTLD+1) of a lowercase `host`: `shop.example.co.uk` →
/// `example.co.uk`. `None` when the host is itself a public suffix (`co.uk`).
pub(crate) fn registrable_domain(host: &str) -> Option<&str> {
    let host = host.trim_end_matches('.');
    let suffix = public_suffix(host);
    let rest = host.strip_suffix(suffix)?.strip_suffix('.')?;
    let label = rest.rsplit('.').next().unwrap_or(rest);
    if label.is_empty() {
        return None;
    }
    host.get(rest.len() - label.len()..)
}

/// Decodes one Punycode label (without the `xn--` prefix), RFC 3492.
pub(crate) fn punycode_decode(input: &str) -> Option<String> {
    const BASE: u32 = 36;
    const T_MIN: u32 = 1;
    const T_MAX: u32 = 26;
    let (basic, extended) = match input.rfind('-') {
        Some(b) => (input.get(..b)?, input.get(b + 1..)?),
        None => ("", input),
    };
    if !basic.is_ascii() {
        return None;
    }
    let mut output: Vec<char> = basic.chars().collect();
    let (mut n, mut i, mut bias) = (128u32, 0u32, 72u32);
    let mut digits = extended.bytes().peekable();
    while digits.peek().is_some() {
        let old_i = i;
        let mut w = 1u32;
        let mut k = BASE;
        loop {
            let digit = match digits.next()? {
                b @ b'a'..=b'z' => u32::from(b - b'a'),
                b @ b'A'..=b'Z' => u32::from(b - b'A'),
                b @ b'0'..=b'9' => u32::from(b - b'0') + 26,
                _ => return None,
            };
            i = i.checked_add(digit.checked_mul(w)?)?;
            let t = if k <= bias {
                T_MIN
            } else if k >= bias + T_MAX {
                T_MAX
            } else {
                k - bias
            };
            if digit < t {
                break;
            }
            w = w.checked_mul(BASE - t)?;
            k += BASE;
        }
        let len = u32::try_from(output.len()).ok()? + 1;
        bias = adapt(i - old_i, len, old_i == 0);
        n = n.checked_add(i / len)?;
        i %= len;
        output.insert(usize::try_from(i).ok()?, char::from_u32(n)?);
        i += 1;
    }
    Some(output.into_iter().collect())
}

fn adapt(delta: u32, points: u32, first: bool) -> u32 {
    const BASE: u32 = 36;
    let mut delta = if first { delta / 700 } else { delta / 2 };
    delta += delta / points;
    let mut k = 0;
    while delta > ((BASE - 1) * 26) / 2 {
        delta /= BASE - 1;
        k += BASE;
    }
    k + (BASE * delta) / (delta + 38)
}

/// Whether `host` (lowercase, Unicode or Punycode labels) has a label that imitates another:
/// a non-ASCII label whose TR39 skeleton is plain ASCII (`аррӏе` in Cyrillic looks like
/// `apple`), or one that mixes scripts (`раураl`: Cyrillic with a Latin `l`).
pub(crate) fn is_homoglyph_host(host: &str) -> bool {
    host.split('.').any(|label| {
        let decoded;
        let label = match label.strip_prefix("xn--") {
            Some(code) => match punycode_decode(code) {
                Some(d) => {
                    decoded = d;
                    decoded.as_str()
                }
                // Undecodable Punycode is suspicious in itself.
                None => return true,
            },
            None => label,
        };
        !label.is_ascii() && (skeleton(label).all(|c| c.is_ascii()) || !label.is_single_script())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrable_domains_know_multi_part_suffixes() {
        assert_eq!(
            registrable_domain("shop.example.co.uk"),
            Some("example.co.uk")
        );
        assert_eq!(registrable_domain("example.co.uk"), Some("example.co.uk"));
        assert_eq!(registrable_domain("a.b.shop.com.br"), Some("shop.com.br"));
        assert_eq!(registrable_domain("www.shop.example"), Some("shop.example"));
        assert_eq!(registrable_domain("mia.github.io"), Some("mia.github.io"));
        assert_eq!(registrable_domain("co.uk"), None);
        assert_eq!(registrable_domain("com"), None);
        assert_eq!(registrable_domain("github.io"), None);
        // A suffix match needs a label boundary.
        assert_eq!(registrable_domain("disco.uk"), Some("disco.uk"));
    }

    #[test]
    fn punycode_decodes_known_labels() {
        assert_eq!(punycode_decode("bcher-kva").as_deref(), Some("bücher"));
        assert_eq!(punycode_decode("mnchen-3ya").as_deref(), Some("münchen"));
        assert_eq!(punycode_decode("80ak6aa92e").as_deref(), Some("аррӏе"));
        assert_eq!(punycode_decode("e1afmkfd").as_deref(), Some("пример"));
        assert_eq!(punycode_decode("!!"), None);
    }

    #[test]
    fn homoglyph_hosts_are_flagged_and_honest_idns_are_not() {
        assert!(is_homoglyph_host("xn--80ak6aa92e.com"));
        assert!(is_homoglyph_host("аррӏе.com"));
        assert!(is_homoglyph_host("раураl.com"));
        assert!(is_homoglyph_host("exаmple.com"));
        assert!(!is_homoglyph_host("example.com"));
        assert!(!is_homoglyph_host("bücher.de"));
        assert!(!is_homoglyph_host("xn--mnchen-3ya.de"));
        assert!(!is_homoglyph_host("пример.рф"));
        assert!(!is_homoglyph_host("xn--e1afmkfd.xn--p1ai"));
    }

    #[test]
    fn bare_tlds_leave_file_extensions_out() {
        assert!(is_bare_tld("com"));
        assert!(is_bare_tld("de"));
        assert!(is_bare_tld("xn--p1ai"));
        assert!(!is_bare_tld("mp4"));
        assert!(!is_bare_tld("txt"));
        assert!(!is_bare_tld("md"));
        assert!(!is_bare_tld("zip"));
        assert!(is_known_tld("uk"));
    }
}
