//! Generators of realistic personal data (the labelled entities) and of look-alikes that are
//! not personal data (the hard negatives), per country.

use std::str::FromStr;

use super::Rng;

pub(crate) use super::finance::{bad_card, bad_crypto, bad_iban, card, crypto, iban};

/// A country the corpus writes for: its language, phone formats and IBAN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Country {
    De,
    At,
    Ch,
    Us,
    Gb,
    Es,
    Mx,
    Ru,
    Pt,
    Br,
    Tr,
    Fr,
    It,
}

impl Country {
    pub(crate) fn code(self) -> &'static str {
        match self {
            Country::De => "DE",
            Country::At => "AT",
            Country::Ch => "CH",
            Country::Us => "US",
            Country::Gb => "GB",
            Country::Es => "ES",
            Country::Mx => "MX",
            Country::Ru => "RU",
            Country::Pt => "PT",
            Country::Br => "BR",
            Country::Tr => "TR",
            Country::Fr => "FR",
            Country::It => "IT",
        }
    }

    fn calling_code(self) -> &'static str {
        match self {
            Country::De => "49",
            Country::At => "43",
            Country::Ch => "41",
            Country::Us => "1",
            Country::Gb => "44",
            Country::Es => "34",
            Country::Mx => "52",
            Country::Ru => "7",
            Country::Pt => "351",
            Country::Br => "55",
            Country::Tr => "90",
            Country::Fr => "33",
            Country::It => "39",
        }
    }
}

/// A national significant number (without trunk prefix) and how it splits into an area or
/// operator code and the rest.
fn national_number(rng: &mut Rng, country: Country) -> (String, String) {
    let digits = |rng: &mut Rng, n: usize| -> String {
        (0..n)
            .map(|_| char::from(b'0' + rng.below(10) as u8))
            .collect()
    };
    let pick = |rng: &mut Rng, xs: &[&str]| rng.pick(xs).to_string();
    match country {
        Country::De => {
            if rng.chance(0.6) {
                let op = pick(
                    rng,
                    &[
                        "151", "152", "157", "160", "162", "170", "171", "172", "173", "174",
                        "175", "176", "177", "178", "179",
                    ],
                );
                let n = if op.starts_with("15") {
                    8
                } else {
                    7 + rng.below(2) as usize
                };
                (op, digits(rng, n))
            } else {
                let area = pick(
                    rng,
                    &[
                        "30", "40", "89", "221", "69", "711", "211", "341", "351", "511",
                    ],
                );
                let n = if area.len() == 2 {
                    7 + rng.below(2) as usize
                } else {
                    6 + rng.below(2) as usize
                };
                (area, format!("{}{}", 1 + rng.below(9), digits(rng, n - 1)))
            }
        }
        Country::At => (
            pick(rng, &["664", "660", "676", "699", "650"]),
            digits(rng, 7),
        ),
        Country::Ch => (
            pick(rng, &["76", "77", "78", "79"]),
            format!("{}{}", 1 + rng.below(9), digits(rng, 6)),
        ),
        Country::Us => (
            pick(
                rng,
                &[
                    "212", "415", "312", "646", "303", "617", "206", "305", "512", "718", "202",
                ],
            ),
            format!("{}{}", 2 + rng.below(8), digits(rng, 6)),
        ),
        Country::Gb => {
            if rng.chance(0.6) {
                (
                    format!(
                        "7{}",
                        pick(
                            rng,
                            &["400", "500", "700", "800", "900", "911", "824", "956"]
                        )
                    ),
                    digits(rng, 6),
                )
            } else {
                (
                    pick(rng, &["20", "161", "121", "131"]),
                    format!("{}{}", 3 + rng.below(5), digits(rng, 6)),
                )
            }
        }
        Country::Es => {
            let p = rng.pick(&["6", "7", "91", "93", "95"]).to_string();
            let rest = 9 - p.len();
            let first = if p == "7" {
                1 + rng.below(4)
            } else {
                1 + rng.below(9)
            };
            (p, format!("{first}{}", digits(rng, rest - 1)))
        }
        Country::Mx => (
            pick(rng, &["55", "33", "81"]),
            format!("{}{}", 1 + rng.below(9), digits(rng, 7)),
        ),
        Country::Ru => {
            if rng.chance(0.7) {
                (format!("9{}", digits(rng, 2)), digits(rng, 7))
            } else {
                (
                    pick(rng, &["495", "499", "812"]),
                    format!("{}{}", 2 + rng.below(7), digits(rng, 6)),
                )
            }
        }
        Country::Pt => {
            if rng.chance(0.7) {
                (pick(rng, &["91", "92", "93", "96"]), digits(rng, 7))
            } else {
                (pick(rng, &["21", "22"]), digits(rng, 7))
            }
        }
        Country::Br => {
            let area = pick(
                rng,
                &["11", "21", "31", "41", "51", "61", "71", "81", "85", "19"],
            );
            if rng.chance(0.7) {
                (area, format!("9{}{}", 6 + rng.below(4), digits(rng, 7)))
            } else {
                (area, format!("{}{}", 2 + rng.below(4), digits(rng, 7)))
            }
        }
        Country::Tr => {
            if rng.chance(0.7) {
                (
                    format!(
                        "5{}",
                        pick(rng, &["30", "32", "33", "35", "36", "42", "44", "05", "55"])
                    ),
                    digits(rng, 7),
                )
            } else {
                (
                    pick(rng, &["212", "216", "312", "232"]),
                    format!("{}{}", 2 + rng.below(7), digits(rng, 6)),
                )
            }
        }
        Country::Fr => (
            rng.pick(&["6", "7", "1", "2", "3", "4", "5", "9"])
                .to_string(),
            digits(rng, 8),
        ),
        Country::It => {
            if rng.chance(0.6) {
                (
                    format!(
                        "3{}",
                        pick(rng, &["20", "28", "33", "35", "39", "40", "47", "49", "66"])
                    ),
                    digits(rng, 7),
                )
            } else {
                let n = 6 + rng.below(2) as usize;
                (pick(rng, &["06", "02", "011", "055"]), digits(rng, n))
            }
        }
    }
}

/// Splits `s` into groups of the given sizes (the last group takes the rest).
pub(crate) fn groups(s: &str, sizes: &[usize], sep: &str) -> String {
    let mut out = Vec::new();
    let mut at = 0;
    for (i, &n) in sizes.iter().enumerate() {
        if at >= s.len() {
            break;
        }
        let end = if i + 1 == sizes.len() {
            s.len()
        } else {
            (at + n).min(s.len())
        };
        out.push(&s[at..end]);
        at = end;
    }
    if at < s.len() {
        out.push(&s[at..]);
    }
    out.join(sep)
}

/// Pairs of two digits: "12 34 56 78" (France, Switzerland, Russia, Turkey).
fn pairs(s: &str, sep: &str) -> String {
    let sizes: Vec<usize> = std::iter::repeat_n(2, s.len().div_ceil(2)).collect();
    groups(s, &sizes, sep)
}

/// A valid phone number of `country`, formatted as people there write it.
pub(crate) fn phone(rng: &mut Rng, country: Country) -> String {
    for _ in 0..200 {
        let (code, rest) = national_number(rng, country);
        let nsn = format!("{code}{rest}");
        let parsed = phonenumber::parse(None, format!("+{}{nsn}", country.calling_code()));
        if !parsed.is_ok_and(|n| n.is_valid()) {
            continue;
        }
        return format_phone(rng, country, &code, &rest);
    }
    // Fallback: a number known to be valid.
    "+49 30 12345678".to_owned()
}

fn format_phone(rng: &mut Rng, country: Country, code: &str, rest: &str) -> String {
    let cc = country.calling_code();
    let intl = rng.chance(0.4);
    let sep = *rng.pick(&[" ", " ", " ", "-"]);
    match country {
        Country::De | Country::At => {
            let rest_fmt = if rng.chance(0.5) {
                rest.to_owned()
            } else if rest.len().is_multiple_of(2) {
                groups(rest, &[rest.len() / 2, rest.len() / 2], sep)
            } else {
                groups(rest, &[3, 4], sep)
            };
            if intl {
                match rng.below(4) {
                    0 => format!("+{cc} {code} {rest_fmt}"),
                    1 => format!("+{cc} (0){code} {rest_fmt}"),
                    2 => format!("00{cc} {code} {rest}"),
                    _ => format!("+{cc}{code}{rest}"),
                }
            } else {
                match rng.below(5) {
                    0 => format!("0{code} {rest_fmt}"),
                    1 => format!("0{code}/{rest}"),
                    2 => format!("0{code}-{rest}"),
                    3 => format!("(0{code}) {rest}"),
                    _ => format!("0{code}{rest}"),
                }
            }
        }
        Country::Ch | Country::Fr => {
            let nsn = format!("{code}{rest}");
            if intl {
                if country == Country::Fr {
                    format!("+{cc} {} {}", &nsn[..1], pairs(&nsn[1..], " "))
                } else {
                    format!("+{cc} {} {}", &nsn[..2], groups(&nsn[2..], &[3, 2, 2], " "))
                }
            } else if country == Country::Fr {
                let sep = *rng.pick(&[" ", ".", " ", "-", ""]);
                pairs(&format!("0{nsn}"), sep)
            } else {
                format!("0{} {}", &nsn[..2], groups(&nsn[2..], &[3, 2, 2], " "))
            }
        }
        Country::Us => {
            let (a, b) = rest.split_at(3);
            if intl {
                match rng.below(3) {
                    0 => format!("+1 {code} {a} {b}"),
                    1 => format!("+1-{code}-{a}-{b}"),
                    _ => format!("+1 ({code}) {a}-{b}"),
                }
            } else {
                match rng.below(5) {
                    0 => format!("({code}) {a}-{b}"),
                    1 => format!("{code}-{a}-{b}"),
                    2 => format!("{code}.{a}.{b}"),
                    3 => format!("{code} {a} {b}"),
                    _ => format!("1-{code}-{a}-{b}"),
                }
            }
        }
        Country::Gb => {
            let nsn = format!("{code}{rest}");
            if intl {
                format!("+44 {} {}", &nsn[..4], &nsn[4..])
            } else if nsn.starts_with('2') {
                format!("0{} {} {}", &nsn[..2], &nsn[2..6], &nsn[6..])
            } else {
                format!("0{} {}", &nsn[..4], &nsn[4..])
            }
        }
        Country::Es | Country::Pt => {
            let nsn = format!("{code}{rest}");
            let body = match rng.below(3) {
                0 => groups(&nsn, &[3, 3, 3], " "),
                1 => groups(&nsn, &[3, 2, 2, 2], " "),
                _ => nsn.clone(),
            };
            if intl { format!("+{cc} {body}") } else { body }
        }
        Country::Mx | Country::It => {
            let body = format!("{code} {}", groups(rest, &[4, 4], " "));
            if intl { format!("+{cc} {body}") } else { body }
        }
        Country::Ru => {
            let sep = *rng.pick(&["-", " "]);
            let body = groups(rest, &[3, 2, 2], sep);
            if intl {
                match rng.below(3) {
                    0 => format!("+7 {code} {body}"),
                    1 => format!("+7 ({code}) {body}"),
                    _ => format!("+7{code}{rest}"),
                }
            } else {
                match rng.below(2) {
                    0 => format!("8 ({code}) {body}"),
                    _ => format!("8 {code} {body}"),
                }
            }
        }
        Country::Br => {
            let split = rest.len() - 4;
            let (a, b) = rest.split_at(split);
            if intl {
                format!("+55 {code} {a}-{b}")
            } else {
                match rng.below(3) {
                    0 => format!("({code}) {a}-{b}"),
                    1 => format!("{code} {a}-{b}"),
                    _ => format!("({code}) {a}{b}"),
                }
            }
        }
        Country::Tr => {
            let body = groups(rest, &[3, 2, 2], " ");
            if intl {
                format!("+90 {code} {body}")
            } else {
                match rng.below(3) {
                    0 => format!("0{code} {body}"),
                    1 => format!("0 ({code}) {body}"),
                    _ => format!("(0{code}) {body}"),
                }
            }
        }
    }
}

/// A valid IPv4 or IPv6 address.
pub(crate) fn ip(rng: &mut Rng) -> String {
    if rng.chance(0.7) {
        let first = *rng.pick(&[10, 172, 192, 203, 198, 85, 91, 46, 62, 178, 8, 1]);
        format!(
            "{first}.{}.{}.{}",
            rng.below(256),
            rng.below(256),
            1 + rng.below(254)
        )
    } else {
        let h = |rng: &mut Rng| format!("{:x}", rng.below(0x10000));
        match rng.below(3) {
            0 => format!("2001:db8::{}:{}", h(rng), h(rng)),
            1 => format!("fe80::{}:{}:{}:{}", h(rng), h(rng), h(rng), h(rng)),
            _ => (0..8).map(|_| h(rng)).collect::<Vec<_>>().join(":"),
        }
    }
}

/// An IP-like string that is not an address (a hard negative).
pub(crate) fn bad_ip(rng: &mut Rng) -> String {
    match rng.below(3) {
        0 => format!(
            "999.{}.{}.{}",
            rng.below(256),
            rng.below(256),
            rng.below(256)
        ),
        1 => format!(
            "{}.{}.{}.{}",
            256 + rng.below(700),
            rng.below(256),
            rng.below(256),
            rng.below(256)
        ),
        _ => format!(
            "{}.{}.{}.300",
            rng.below(256),
            rng.below(256),
            rng.below(256)
        ),
    }
}

const DOMAINS: &[&str] = &[
    "shop.example.com",
    "acme-store.de",
    "tienda-online.es",
    "loja.com.br",
    "magaza.com.tr",
    "boutique.fr",
    "negozio.it",
    "store.co.uk",
    "deals.shop",
    "mia-shop.io",
    "promo.ru",
    "example.org",
    "news.example.net",
    "t.me",
    "instagram.com",
    "youtube.com",
    "wa.me",
    "catalogo.com.mx",
    "sklep.pl",
    "my-brand.store",
    "events.berlin",
];

/// A URL: with a scheme, `www.` or bare, often with a path and a query.
pub(crate) fn url(rng: &mut Rng) -> String {
    let domain = *rng.pick(DOMAINS);
    let path = match rng.below(6) {
        0 => String::new(),
        1 => "/sale".to_owned(),
        2 => format!("/p/{}", 1000 + rng.below(90000)),
        3 => format!(
            "/promo?utm_source=telegram&utm_campaign=spring{}",
            rng.below(30)
        ),
        4 => format!(
            "/{}-collection/",
            rng.pick(&["winter", "sommer", "verano", "лето", "yaz"])
        ),
        _ => "/c/shoes#top".to_owned(),
    };
    match rng.below(4) {
        0 | 1 => format!("https://{domain}{path}"),
        2 if !domain.starts_with("t.") && !domain.starts_with("wa.") => {
            format!("www.{domain}{path}")
        }
        _ => format!(
            "{domain}{}",
            if path.is_empty() {
                "/".to_owned()
            } else {
                path
            }
        ),
    }
}

const FIRST: &[&str] = &[
    "anna", "jan", "maria", "jose", "olga", "ivan", "ayse", "mehmet", "joao", "ana", "pierre",
    "claire", "john", "emily", "lukas", "sofia", "dmitry", "elena", "carlos", "lucia", "giulia",
];
const LAST: &[&str] = &[
    "mueller",
    "schmidt",
    "garcia",
    "lopez",
    "ivanova",
    "petrov",
    "yilmaz",
    "kaya",
    "silva",
    "santos",
    "martin",
    "dubois",
    "smith",
    "brown",
    "rossi",
    "weber",
    "sokolov",
    "fernandes",
];
const MAIL_DOMAINS: &[&str] = &[
    "gmail.com",
    "web.de",
    "gmx.de",
    "mail.ru",
    "yandex.ru",
    "hotmail.com",
    "outlook.com",
    "icloud.com",
    "proton.me",
    "uol.com.br",
    "orange.fr",
    "laposte.net",
    "yahoo.es",
    "libero.it",
    "acme-store.de",
    "tienda-online.es",
    "firma.com.tr",
];

/// An e-mail address; sometimes obfuscated (`anna [at] web [dot] de`).
pub(crate) fn email(rng: &mut Rng) -> String {
    let (f, l) = (*rng.pick(FIRST), *rng.pick(LAST));
    let local = match rng.below(6) {
        0 => format!("{f}.{l}"),
        1 => format!("{f}{l}"),
        2 => format!("{}.{l}", &f[..1]),
        3 => format!("{f}_{l}{}", rng.below(100)),
        4 => format!("{f}+promo"),
        _ => format!("{f}{}", 1970 + rng.below(40)),
    };
    let domain = *rng.pick(MAIL_DOMAINS);
    let plain = format!("{local}@{domain}");
    let r = rng.below(100);
    if r < 75 {
        if rng.chance(0.1) {
            plain.to_uppercase()
        } else if rng.chance(0.1) {
            capitalise(&plain)
        } else {
            plain
        }
    } else {
        let (name, tld) = domain.rsplit_once('.').unwrap_or((domain, "com"));
        let name = name.replace('.', " [dot] ");
        match r {
            75..=81 => format!("{local} [at] {name} [dot] {tld}"),
            82..=86 => format!("{local}(at){name}(dot){tld}"),
            87..=91 => format!("{local} at {} dot {tld}", name.replace(" [dot] ", " dot ")),
            92..=95 => format!("{local} [at] {domain}"),
            _ => format!("{local} @ {domain}"),
        }
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// Parses a country code (for tests that need one).
impl FromStr for Country {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        [
            Country::De,
            Country::At,
            Country::Ch,
            Country::Us,
            Country::Gb,
            Country::Es,
            Country::Mx,
            Country::Ru,
            Country::Pt,
            Country::Br,
            Country::Tr,
            Country::Fr,
            Country::It,
        ]
        .into_iter()
        .find(|c| c.code() == s)
        .ok_or(())
    }
}
