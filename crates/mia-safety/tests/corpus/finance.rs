//! Generators of payment data: card numbers, IBANs and wallet addresses, valid (with real
//! checksums) and broken (the hard negatives).

use sha2::{Digest, Sha256};

use super::Rng;
use super::entities::{Country, groups};

fn luhn_digit(body: &[u8]) -> u8 {
    let sum: u32 = body
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

/// A valid payment card number with a real issuer prefix, grouped as printed.
pub(crate) fn card(rng: &mut Rng) -> String {
    let (prefix, len): (String, usize) = match rng.below(10) {
        0 | 1 => ("4".into(), 16),
        2 => ("4".into(), *rng.pick(&[13, 19])),
        3 => (format!("5{}", 1 + rng.below(5)), 16),
        4 => (format!("{}", 2221 + rng.below(500)), 16),
        5 => (rng.pick(&["34", "37"]).to_string(), 15),
        6 => ("6011".into(), 16),
        7 => (format!("{}", 3528 + rng.below(62)), 16),
        8 => (format!("220{}", rng.below(5)), 16),
        _ => ("62".into(), *rng.pick(&[16, 19])),
    };
    let mut digits: Vec<u8> = prefix.bytes().map(|b| b - b'0').collect();
    while digits.len() < len - 1 {
        digits.push(rng.below(10) as u8);
    }
    digits.push(luhn_digit(&digits));
    let s: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
    format_card(rng, &s)
}

fn format_card(rng: &mut Rng, s: &str) -> String {
    let sep = *rng.pick(&[" ", " ", "-", ""]);
    if sep.is_empty() {
        return s.to_owned();
    }
    match s.len() {
        15 => groups(s, &[4, 6, 5], sep),
        _ => groups(s, &[4, 4, 4, 4, 3], sep),
    }
}

/// A card-like number that fails Luhn (a hard negative).
pub(crate) fn bad_card(rng: &mut Rng) -> String {
    let mut digits: Vec<u8> = vec![4];
    while digits.len() < 15 {
        digits.push(rng.below(10) as u8);
    }
    let good = luhn_digit(&digits);
    digits.push((good + 1 + rng.below(9) as u8) % 10);
    let s: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
    format_card(rng, &s)
}

const IBAN_SHAPES: &[(&str, &str)] = &[
    ("DE", "nnnnnnnnnnnnnnnnnn"),
    ("AT", "nnnnnnnnnnnnnnnn"),
    ("CH", "nnnnnnnnnnnnnnnnn"),
    ("GB", "AAAAnnnnnnnnnnnnnn"),
    ("FR", "nnnnnnnnnnnnnnnnnnnnnnn"),
    ("ES", "nnnnnnnnnnnnnnnnnnnn"),
    ("IT", "Annnnnnnnnnnnnnnnnnnnnn"),
    ("NL", "AAAAnnnnnnnnnn"),
    ("PT", "nnnnnnnnnnnnnnnnnnnnn"),
    ("TR", "nnnnnnnnnnnnnnnnnnnnnn"),
    ("BE", "nnnnnnnnnnnn"),
    ("PL", "nnnnnnnnnnnnnnnnnnnnnnnn"),
];

fn iban_check(country: &str, bban: &str) -> String {
    let rearranged = format!("{bban}{country}00");
    let mut rem: u64 = 0;
    for c in rearranged.chars() {
        let v = c.to_digit(36).unwrap_or(0) as u64;
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    format!("{:02}", 98 - rem)
}

fn iban_raw(rng: &mut Rng, country: Option<&str>) -> String {
    let (cc, shape) = match country.and_then(|c| IBAN_SHAPES.iter().find(|(x, _)| *x == c)) {
        Some(s) => *s,
        None => *rng.pick(IBAN_SHAPES),
    };
    let bban: String = shape
        .chars()
        .map(|k| {
            if k == 'A' {
                char::from(b'A' + rng.below(26) as u8)
            } else {
                char::from(b'0' + rng.below(10) as u8)
            }
        })
        .collect();
    format!("{cc}{}{bban}", iban_check(cc, &bban))
}

fn format_iban(rng: &mut Rng, raw: &str) -> String {
    let s = if rng.chance(0.7) {
        let sizes: Vec<usize> = std::iter::repeat_n(4, raw.len().div_ceil(4)).collect();
        groups(raw, &sizes, " ")
    } else {
        raw.to_owned()
    };
    if rng.chance(0.05) {
        s.to_lowercase()
    } else {
        s
    }
}

/// A valid IBAN, often of `country`.
pub(crate) fn iban(rng: &mut Rng, country: Country) -> String {
    let raw = iban_raw(rng, Some(country.code()));
    format_iban(rng, &raw)
}

/// An IBAN with wrong check digits (a hard negative).
pub(crate) fn bad_iban(rng: &mut Rng) -> String {
    let raw = iban_raw(rng, None);
    let check: u32 = raw[2..4].parse().unwrap_or(0);
    let bad = format!("{:02}", (check + 1 + rng.below(90) as u32) % 97 + 2);
    let raw = format!("{}{}{}", &raw[..2], bad, &raw[4..]);
    format_iban(rng, &raw)
}

const BASE58: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const BECH32: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

fn base58(data: &[u8]) -> String {
    let mut digits: Vec<u8> = Vec::new();
    for &byte in data {
        let mut carry = u32::from(byte);
        for d in digits.iter_mut() {
            carry += u32::from(*d) << 8;
            *d = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let zeros = data.iter().take_while(|&&b| b == 0).count();
    let mut out = "1".repeat(zeros);
    out.extend(
        digits
            .iter()
            .rev()
            .map(|&d| char::from(BASE58[usize::from(d)])),
    );
    out
}

fn polymod(values: &[u8]) -> u32 {
    const GEN: [u32; 5] = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
    let mut chk: u32 = 1;
    for &v in values {
        let top = chk >> 25;
        chk = ((chk & 0x1ffffff) << 5) ^ u32::from(v);
        for (i, g) in GEN.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                chk ^= g;
            }
        }
    }
    chk
}

fn segwit(version: u8, program: &[u8]) -> String {
    let mut values = vec![version];
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in program {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            values.push(((acc >> bits) & 31) as u8);
        }
    }
    if bits > 0 {
        values.push(((acc << (5 - bits)) & 31) as u8);
    }
    let mut input = vec![3u8, 3, 0, 2, 3];
    input.extend(&values);
    input.extend([0u8; 6]);
    let constant = if version == 0 { 1 } else { 0x2bc830a3 };
    let residue = polymod(&input) ^ constant;
    values.extend((0..6).map(|i| ((residue >> (5 * (5 - i))) & 31) as u8));
    let data: String = values
        .iter()
        .map(|&v| char::from(BECH32[usize::from(v)]))
        .collect();
    format!("bc1{data}")
}

/// A wallet address with a valid checksum: Bitcoin P2PKH, P2SH, segwit v0 or taproot, or
/// Ethereum.
pub(crate) fn crypto(rng: &mut Rng) -> String {
    let bytes =
        |rng: &mut Rng, n: usize| -> Vec<u8> { (0..n).map(|_| rng.below(256) as u8).collect() };
    match rng.below(5) {
        0 | 1 => {
            let mut payload = vec![if rng.chance(0.6) { 0u8 } else { 5u8 }];
            payload.extend(bytes(rng, 20));
            let check = Sha256::digest(Sha256::digest(&payload));
            payload.extend(&check[..4]);
            base58(&payload)
        }
        2 => {
            let n = if rng.chance(0.7) { 20 } else { 32 };
            let program = bytes(rng, n);
            segwit(0, &program)
        }
        3 => segwit(1, &bytes(rng, 32)),
        _ => {
            let hex: String = bytes(rng, 20).iter().map(|b| format!("{b:02x}")).collect();
            let hex = if rng.chance(0.3) {
                hex.to_uppercase()
            } else {
                hex
            };
            format!("0x{hex}")
        }
    }
}

/// A wallet-like string with a broken checksum (a hard negative).
pub(crate) fn bad_crypto(rng: &mut Rng) -> String {
    let good = crypto(rng);
    if good.starts_with("0x") {
        // A transaction hash: 64 hex digits.
        let more: String = (0..24)
            .map(|_| char::from(b"0123456789abcdef"[rng.below(16) as usize]))
            .collect();
        return format!("{good}{more}");
    }
    let mut chars: Vec<char> = good.chars().collect();
    let i = chars.len() - 1 - rng.below(5) as usize;
    let alphabet: &[u8] = if good.starts_with("bc1") {
        BECH32
    } else {
        BASE58
    };
    let replacement = alphabet
        .iter()
        .map(|&b| char::from(b))
        .find(|&c| c != chars[i] && rng.chance(0.2))
        .unwrap_or(if chars[i] == 'q' { 'p' } else { 'q' });
    chars[i] = replacement;
    chars.into_iter().collect()
}
