//! Validators that turn a look-alike into a finding: Luhn and issuer ranges for payment
//! cards, mod-97 and per-country lengths for IBANs.

/// The Luhn checksum every payment card number passes.
pub(crate) fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Issuer identification ranges: (first prefix, last prefix, prefix digits, shortest card,
/// longest card).
const CARD_RANGES: &[(u32, u32, usize, usize, usize)] = &[
    // Mastercard, including the 2-series.
    (51, 55, 2, 16, 16),
    (2221, 2720, 4, 16, 16),
    // American Express.
    (34, 34, 2, 15, 15),
    (37, 37, 2, 15, 15),
    // Discover.
    (6011, 6011, 4, 16, 19),
    (644, 649, 3, 16, 19),
    (65, 65, 2, 16, 19),
    // JCB.
    (3528, 3589, 4, 16, 19),
    // Diners Club.
    (300, 305, 3, 14, 19),
    (3095, 3095, 4, 14, 19),
    (36, 36, 2, 14, 19),
    (38, 39, 2, 16, 19),
    // UnionPay.
    (62, 62, 2, 16, 19),
    (81, 81, 2, 16, 19),
    // Maestro.
    (5018, 5018, 4, 12, 19),
    (5020, 5020, 4, 12, 19),
    (5038, 5038, 4, 12, 19),
    (5893, 5893, 4, 12, 19),
    (6304, 6304, 4, 12, 19),
    (6759, 6759, 4, 12, 19),
    (6761, 6763, 4, 12, 19),
    // Mir.
    (2200, 2204, 4, 16, 19),
    // RuPay.
    (60, 60, 2, 16, 16),
    (508, 508, 3, 16, 16),
    (82, 82, 2, 16, 16),
    // Troy.
    (9792, 9792, 4, 16, 16),
    // Verve.
    (506_099, 506_198, 6, 16, 19),
    (650_002, 650_027, 6, 16, 19),
    (507_865, 507_964, 6, 16, 19),
];

/// Whether `digits` (each 0–9) is a payment card number: a known issuer range, a length that
/// issuer uses, and the Luhn checksum.
pub(crate) fn is_card(digits: &[u8]) -> bool {
    let len = digits.len();
    if !(12..=19).contains(&len) || !luhn(digits) {
        return false;
    }
    let prefix = |n: usize| -> u32 {
        digits
            .iter()
            .take(n)
            .fold(0, |acc, &d| acc * 10 + u32::from(d))
    };
    // Visa issues 13, 16 and 19 digits only.
    if digits.first() == Some(&4) {
        return matches!(len, 13 | 16 | 19);
    }
    CARD_RANGES
        .iter()
        .any(|&(lo, hi, n, min, max)| (lo..=hi).contains(&prefix(n)) && (min..=max).contains(&len))
}

/// IBAN lengths by country (SWIFT IBAN registry).
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BI", 27),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DJ", 27),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FK", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HN", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("LY", 25),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MN", 20),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NI", 28),
    ("NL", 18),
    ("NO", 15),
    ("OM", 23),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("RU", 33),
    ("SA", 24),
    ("SC", 31),
    ("SD", 18),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("SO", 23),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
    ("YE", 30),
];

/// The IBAN length of a country (two uppercase letters), if it issues IBANs.
pub(crate) fn iban_length(country: &str) -> Option<usize> {
    IBAN_LENGTHS
        .iter()
        .find(|(c, _)| *c == country)
        .map(|&(_, len)| len)
}

/// Whether `iban` (uppercase letters and digits, no spaces) has its country's length and
/// passes the mod-97 check (ISO 13616).
pub(crate) fn is_iban(iban: &str) -> bool {
    let bytes = iban.as_bytes();
    let Some(country) = iban.get(..2) else {
        return false;
    };
    if iban_length(country) != Some(bytes.len())
        || !bytes.iter().all(u8::is_ascii_alphanumeric)
        || !bytes
            .get(2..4)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    {
        return false;
    }
    let rotated = bytes.iter().skip(4).chain(bytes.iter().take(4));
    let mut remainder: u32 = 0;
    for &b in rotated {
        let value = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return false,
        };
        remainder = if value >= 10 {
            (remainder * 100 + value) % 97
        } else {
            (remainder * 10 + value) % 97
        };
    }
    remainder == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits(s: &str) -> Vec<u8> {
        s.bytes()
            .filter(u8::is_ascii_digit)
            .map(|b| b - b'0')
            .collect()
    }

    #[test]
    fn luhn_matches_known_values() {
        assert!(luhn(&digits("79927398713")));
        assert!(!luhn(&digits("79927398714")));
    }

    #[test]
    fn cards_need_an_issuer_a_length_and_luhn() {
        for valid in [
            "4111111111111111",
            "4222222222222",
            "4111111111111111110",
            "5500005555555559",
            "2223000048400011",
            "2720990000000007",
            "378282246310005",
            "6011111111111117",
            "3530111333300000",
            "36227206271667",
            "6200000000000005",
            "2200000000000004",
        ] {
            assert!(is_card(&digits(valid)), "{valid}");
        }
        for invalid in [
            "4111111111111112", // Luhn
            "5600005555555558", // no issuer, 16 digits
            "2721000000000004", // past the Mastercard 2-series
            "411111111111111",  // Visa has no 15-digit cards
            "1234567812345670", // no issuer
            "0000000000000000",
        ] {
            assert!(!is_card(&digits(invalid)), "{invalid}");
        }
    }

    #[test]
    fn ibans_need_the_country_length_and_mod_97() {
        for valid in [
            "DE89370400440532013000",
            "GB82WEST12345698765432",
            "FR1420041010050500013M02606",
            "ES9121000418450200051332",
            "NL91ABNA0417164300",
            "TR330006100519786457841326",
            "BR1800360305000010009795493C1",
            "NO9386011117947",
        ] {
            assert!(is_iban(valid), "{valid}");
        }
        for invalid in [
            "DE89370400440532013001", // check digits
            "DE8937040044053201300",  // length
            "XX89370400440532013000", // country
            "GB82WEST1234569876543",
        ] {
            assert!(!is_iban(invalid), "{invalid}");
        }
    }
}
