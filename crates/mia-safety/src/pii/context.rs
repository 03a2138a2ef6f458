//! The words and characters around a number that say what it is: an order number, a price,
//! a version, a postcode, or a phone number.

use std::borrow::Cow;
use std::sync::LazyLock;

use crate::normalize::is_word_char;

/// Words that, right before a number, say it is a reference, not a phone number (several
/// languages; compared in lowercase).
const REFERENCE_WORDS: &[&str] = &[
    "order",
    "orders",
    "invoice",
    "ref",
    "reference",
    "sku",
    "item",
    "article",
    "art",
    "ticket",
    "tracking",
    "booking",
    "confirmation",
    "id",
    "code",
    "coupon",
    "voucher",
    "promo",
    "model",
    "part",
    "batch",
    "serial",
    "account",
    "case",
    "customer",
    "client",
    "transaction",
    "receipt",
    "parcel",
    "shipment",
    "bestellung",
    "bestellnummer",
    "rechnung",
    "rechnungsnummer",
    "auftrag",
    "kundennummer",
    "artikel",
    "sendung",
    "sendungsnummer",
    "pedido",
    "factura",
    "referencia",
    "artículo",
    "envío",
    "заказ",
    "заказа",
    "счет",
    "счёт",
    "артикул",
    "накладная",
    "трек",
    "посылка",
    "sipariş",
    "siparis",
    "siparişiniz",
    "fatura",
    "kargo",
    "takip",
    "encomenda",
    "rastreio",
    "commande",
    "facture",
    "référence",
    "colis",
    "ordine",
    "fattura",
    "codice",
    "spedizione",
    "riferimento",
    "postcode",
    "zip",
    "plz",
    "postleitzahl",
    "cep",
    "cp",
    "индекс",
    "isbn",
    "ean",
    "upc",
    "imei",
    "iban",
    "bic",
];

/// Stems of compound reference words (`Bestellnummer`, `Kundennr`, `Siparişiniz`).
const REFERENCE_STEMS: &[&str] = &[
    "bestell",
    "rechnung",
    "kundennr",
    "kundennum",
    "sendung",
    "auftrag",
    "artikel",
    "sipariş",
    "referen",
    "invoice",
    "tracking",
    "заказ",
    "артикул",
];

/// Words between a reference word and its number (`order no. 123`, `Bestell-Nr.`).
const FILLER_WORDS: &[&str] = &[
    "no",
    "nr",
    "num",
    "number",
    "nummer",
    "número",
    "numero",
    "номер",
    "numara",
    "n",
    "n°",
    "de",
    "del",
    "do",
    "da",
    "your",
    "my",
    "our",
    "the",
    "is",
    "ist",
    "es",
    "é",
];

/// Words that, before a number, say it is a phone number.
const PHONE_CUES: &[&str] = &[
    "tel",
    "phone",
    "call",
    "mobile",
    "mob",
    "cell",
    "whatsapp",
    "wa",
    "viber",
    "sms",
    "text",
    "fax",
    "hotline",
    "telefon",
    "handy",
    "ruf",
    "anrufen",
    "mobil",
    "teléfono",
    "telefono",
    "móvil",
    "movil",
    "celular",
    "llama",
    "llámanos",
    "llamar",
    "telefone",
    "ligue",
    "contato",
    "телефон",
    "тел",
    "звоните",
    "позвоните",
    "моб",
    "whatsapp:",
    "ara",
    "arayın",
    "cep",
    "gsm",
    "tél",
    "portable",
    "appelez",
    "contact",
    "reach",
    "unter",
    "número",
    "numero",
];

/// Words before a dotted number that say it is a version.
const VERSION_WORDS: &[&str] = &[
    "v",
    "ver",
    "version",
    "build",
    "release",
    "firmware",
    "ios",
    "android",
    "app",
    "update",
    "версия",
    "версии",
    "versión",
    "versão",
    "sürüm",
    "sürümü",
    "patch",
];

/// Currency and unit words right before or after a number that say it is an amount.
const AMOUNT_WORDS: &[&str] = &[
    "eur",
    "euro",
    "euros",
    "usd",
    "dollar",
    "dollars",
    "gbp",
    "rub",
    "руб",
    "рублей",
    "р",
    "try",
    "tl",
    "lira",
    "brl",
    "reais",
    "real",
    "r$",
    "mxn",
    "pesos",
    "chf",
    "kg",
    "g",
    "km",
    "m",
    "cm",
    "mm",
    "ml",
    "l",
    "mb",
    "gb",
    "tb",
    "pcs",
    "stk",
    "stück",
    "шт",
    "units",
    "people",
    "customers",
    "kunden",
    "clientes",
    "клиентов",
    "müşteri",
    "views",
    "followers",
    "subscribers",
    "downloads",
    "users",
    "miles",
    "points",
    "punkte",
    "puntos",
    "баллов",
    "bonus",
    "x",
];

/// Characters glued to a number that make it a price, percentage, path or identifier.
const NOT_A_NUMBER_NEIGHBOUR: &[char] = &[
    '#', '№', '$', '€', '£', '¥', '₹', '₽', '₩', '₺', '₴', '₿', '¢', '¤', '%', '@', '=', '&', '?',
    '~', '/', '\\', '_', '‰', '°', '×', '^',
];

/// A word list for membership tests, by byte length: a test compares a word only with the
/// listed words of its length (a handful) instead of the whole list.
struct WordSet {
    by_len: Vec<Vec<&'static str>>,
}

impl WordSet {
    fn new(words: &[&'static str]) -> Self {
        let longest = words.iter().map(|w| w.len()).max().unwrap_or(0);
        let mut by_len = vec![Vec::new(); longest + 1];
        for &word in words {
            if let Some(bucket) = by_len.get_mut(word.len()) {
                bucket.push(word);
            }
        }
        Self { by_len }
    }

    fn contains(&self, word: &str) -> bool {
        self.by_len
            .get(word.len())
            .is_some_and(|bucket| bucket.contains(&word))
    }
}

static REFERENCE_SET: LazyLock<WordSet> = LazyLock::new(|| WordSet::new(REFERENCE_WORDS));
static PHONE_CUE_SET: LazyLock<WordSet> = LazyLock::new(|| WordSet::new(PHONE_CUES));
static VERSION_SET: LazyLock<WordSet> = LazyLock::new(|| WordSet::new(VERSION_WORDS));
static FILLER_SET: LazyLock<WordSet> = LazyLock::new(|| WordSet::new(FILLER_WORDS));
static AMOUNT_SET: LazyLock<WordSet> = LazyLock::new(|| WordSet::new(AMOUNT_WORDS));
static CURRENCY_SET: LazyLock<WordSet> = LazyLock::new(|| WordSet::new(CURRENCY_WORDS));

/// The word before byte `at` of `text` (skipping spaces and `:.,#№-` around it), lowercase.
fn word_before(text: &str, at: usize) -> (Cow<'_, str>, usize) {
    let head = text.get(..at).unwrap_or("");
    let trimmed = head.trim_end_matches(|c: char| {
        c.is_whitespace() || matches!(c, ':' | '.' | ',' | '#' | '№' | '-' | '(' | '\'' | '"')
    });
    let start = trimmed
        .char_indices()
        .rev()
        .find(|(_, c)| !(is_word_char(*c) || matches!(c, '$' | '°' | '\'')))
        .map_or(0, |(i, c)| i + c.len_utf8());
    (lowercase(trimmed.get(start..).unwrap_or("")), start)
}

/// The word after byte `at` of `text` (skipping one run of spaces), lowercase.
fn word_after(text: &str, at: usize) -> Cow<'_, str> {
    let tail = text.get(at..).unwrap_or("");
    let trimmed = tail.trim_start();
    let end = trimmed
        .char_indices()
        .find(|(_, c)| !(is_word_char(*c) || matches!(c, '$' | '.')))
        .map_or(trimmed.len(), |(i, _)| i);
    let word = trimmed.get(..end).unwrap_or("");
    if word.is_empty() {
        // A lone symbol: `19 €`, `50 %`.
        let symbol = trimmed.chars().next().map_or(0, char::len_utf8);
        Cow::Borrowed(trimmed.get(..symbol).unwrap_or(""))
    } else {
        lowercase(word.trim_end_matches('.'))
    }
}

/// `word` in lowercase, borrowed when it already is (the common case: no allocation).
fn lowercase(word: &str) -> Cow<'_, str> {
    if word.is_ascii() && !word.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Borrowed(word)
    } else {
        Cow::Owned(word.to_lowercase())
    }
}

/// What the surroundings of the number at `start..end` say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Context {
    /// Glued to a word, a price sign, a path or a decimal: not a number of its own.
    pub(crate) glued: bool,
    /// After a reference word (order, invoice, SKU, postcode...).
    pub(crate) reference: bool,
    /// After a phone word (tel, call, WhatsApp...).
    pub(crate) phone_cue: bool,
    /// After a version word.
    pub(crate) version: bool,
    /// Next to a currency or unit.
    pub(crate) amount: bool,
}

/// Whether the number at `start..end` of `text` is glued to a word, a price sign, a path or
/// a decimal ([`Context::glued`]).
pub(crate) fn is_glued(text: &str, start: usize, end: usize) -> bool {
    let mut prev = text.get(..start).unwrap_or("").chars().rev();
    let (p1, p2) = (prev.next(), prev.next());
    let mut next = text.get(end..).unwrap_or("").chars();
    let (n1, n2) = (next.next(), next.next());
    let bad = |c: char| is_word_char(c) || NOT_A_NUMBER_NEIGHBOUR.contains(&c);
    let digit_or_word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric());
    p1.is_some_and(bad)
        || (matches!(p1, Some('-' | '+')) && digit_or_word(p2))
        || (matches!(p1, Some('.' | ',' | ':')) && p2.is_some_and(|c| c.is_ascii_digit()))
        || n1.is_some_and(bad)
        || (matches!(n1, Some('.' | ',' | ':')) && n2.is_some_and(|c| c.is_ascii_digit()))
        || (matches!(n1, Some('-' | '.' | ',')) && n2.is_some_and(char::is_alphanumeric))
}

/// Reads the context of the number at `start..end` of `text`.
pub(crate) fn context(text: &str, start: usize, end: usize) -> Context {
    let before = text.get(..start).unwrap_or("");
    let glued = is_glued(text, start, end);
    let p1 = before.chars().next_back();

    let mut reference = p1.is_some_and(|c| matches!(c, '#' | '№'));
    let mut phone_cue = false;
    let mut version = false;
    let mut at = start;
    // Look back over at most three words: "order no. 123", "phone number: 030 ...".
    for _ in 0..3 {
        let (word, word_start) = word_before(text, at);
        if word.is_empty() {
            break;
        }
        if REFERENCE_SET.contains(&word) || REFERENCE_STEMS.iter().any(|r| word.starts_with(r)) {
            reference = true;
            break;
        }
        if PHONE_CUE_SET.contains(&word) || word.starts_with("tel") {
            phone_cue = true;
            break;
        }
        if VERSION_SET.contains(&word) {
            version = true;
            break;
        }
        if !FILLER_SET.contains(&word) {
            break;
        }
        at = word_start;
    }
    let (prev_word, _) = word_before(text, start);
    let next_word = word_after(text, end);
    let amount = AMOUNT_SET.contains(&next_word)
        || CURRENCY_SET.contains(&prev_word)
        || next_word.chars().next().is_some_and(is_currency_or_percent)
        || before
            .trim_end()
            .chars()
            .next_back()
            .is_some_and(is_currency_or_percent);
    let reference = reference || after_account_prefix(before);
    Context {
        glued,
        reference,
        phone_cue,
        version,
        amount,
    }
}

/// Currency words that come before an amount (`EUR 1299`, `R$ 1.299`).
const CURRENCY_WORDS: &[&str] = &[
    "eur", "usd", "gbp", "rub", "try", "brl", "chf", "r$", "rs", "us$",
];

fn is_currency_or_percent(c: char) -> bool {
    matches!(
        c,
        '$' | '€' | '£' | '¥' | '₹' | '₽' | '₺' | '₴' | '₩' | '¢' | '%' | '‰'
    )
}

/// Whether `before` ends with the start of a bank account number printed in groups
/// (`NL92 BEUN `, `IBAN DE89 3704 `): the digits that follow belong to it.
fn after_account_prefix(before: &str) -> bool {
    let Some(head) = before.strip_suffix(' ') else {
        return false;
    };
    let tokens: Vec<&str> = head.split(' ').rev().take(9).collect();
    let groups = tokens
        .iter()
        .take_while(|t| t.len() == 4 && t.bytes().all(|b| b.is_ascii_alphanumeric()))
        .count();
    tokens.get(..groups).is_some_and(|g| {
        g.iter().any(|t| {
            let b = t.as_bytes();
            b.len() == 4
                && b.iter().take(2).all(u8::is_ascii_alphabetic)
                && b.iter().skip(2).all(u8::is_ascii_digit)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_sets_hold_exactly_their_lists() {
        let lists = [
            REFERENCE_WORDS,
            PHONE_CUES,
            VERSION_WORDS,
            FILLER_WORDS,
            AMOUNT_WORDS,
            CURRENCY_WORDS,
        ];
        // Every word of every list, and near misses, against every set.
        let mut probes: Vec<String> = vec![String::new(), "x".repeat(40)];
        for word in lists.concat() {
            probes.extend([
                word.to_owned(),
                format!("{word}s"),
                word.chars().skip(1).collect(),
                word.to_uppercase(),
            ]);
        }
        for list in lists {
            let set = WordSet::new(list);
            for probe in &probes {
                assert_eq!(
                    set.contains(probe),
                    list.contains(&probe.as_str()),
                    "{probe}"
                );
            }
        }
    }

    fn ctx(text: &str, number: &str) -> Context {
        let start = text.find(number).unwrap_or(0);
        context(text, start, start + number.len())
    }

    #[test]
    fn references_are_recognised_over_filler_words() {
        assert!(ctx("Order no. 12345678 shipped", "12345678").reference);
        assert!(ctx("Bestellnummer: 12345678", "12345678").reference);
        assert!(ctx("заказ № 12345678", "12345678").reference);
        assert!(ctx("your #12345678", "12345678").reference);
        assert!(!ctx("call 030 1234567", "030 1234567").reference);
        assert!(ctx("phone number: 030 1234567", "030 1234567").phone_cue);
    }

    #[test]
    fn amounts_and_glue_are_recognised() {
        assert!(ctx("only 1 299 000 ₽", "1 299 000").amount);
        assert!(ctx("now €1299000", "1299000").glued);
        assert!(ctx("get 1500000 points", "1500000").amount);
        assert!(ctx("SKU-1234567", "1234567").glued);
        assert!(ctx("12.5%", "12").glued);
        assert!(!ctx("call 030 1234567 #sale", "030 1234567").amount);
        assert!(ctx("IBAN NL92 BEUN 0621 3085 87", "0621 3085 87").reference);
        assert!(!ctx("call 0301234567.", "0301234567").glued);
        assert!(!ctx("call 0301234567, ok", "0301234567").glued);
    }
}
