//! Crypto wallet addresses, validated by their checksums: Bitcoin Base58Check (P2PKH, P2SH;
//! double SHA-256), bech32 and bech32m segwit addresses (BIP 173, BIP 350), and Ethereum
//! `0x` + 40 hex digits (whose EIP-55 mixed-case checksum needs Keccak and is not verified).

use sha2::{Digest, Sha256};

const BASE58: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const BECH32: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

/// Decodes Base58 into bytes (leading `1`s become zero bytes).
pub(crate) fn base58_decode(text: &str) -> Option<Vec<u8>> {
    let mut bytes: Vec<u8> = Vec::with_capacity(32);
    for c in text.bytes() {
        let mut carry = u32::try_from(BASE58.iter().position(|&b| b == c)?).ok()?;
        for byte in bytes.iter_mut().rev() {
            carry += u32::from(*byte) * 58;
            *byte = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            bytes.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let zeros = text.bytes().take_while(|&b| b == b'1').count();
    let mut out = vec![0u8; zeros];
    out.extend(bytes);
    Some(out)
}

/// Encodes bytes as Base58 (for tests).
#[cfg(test)]
fn base58_encode(data: &[u8]) -> String {
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
            .filter_map(|&d| BASE58.get(usize::from(d)).map(|&b| char::from(b))),
    );
    out
}

/// The first four bytes of SHA-256(SHA-256(`payload`)).
pub(crate) fn checksum4(payload: &[u8]) -> [u8; 4] {
    let twice = Sha256::digest(Sha256::digest(payload));
    let mut out = [0u8; 4];
    out.copy_from_slice(twice.get(..4).unwrap_or(&[0; 4]));
    out
}

/// Whether `text` is a mainnet Bitcoin P2PKH (`1…`) or P2SH (`3…`) address: 25 bytes of
/// Base58 with the right version byte and a valid double-SHA-256 checksum.
pub(crate) fn is_base58_address(text: &str) -> bool {
    let Some(bytes) = base58_decode(text) else {
        return false;
    };
    let (Some(payload), Some(check)) = (bytes.get(..21), bytes.get(21..)) else {
        return false;
    };
    bytes.len() == 25 && matches!(payload.first(), Some(0x00 | 0x05)) && check == checksum4(payload)
}

fn polymod(values: impl Iterator<Item = u8>) -> u32 {
    const GEN: [u32; 5] = [
        0x3b6a_57b2,
        0x2650_8e6d,
        0x1ea1_19fa,
        0x3d42_33dd,
        0x2a14_62b3,
    ];
    let mut chk: u32 = 1;
    for v in values {
        let top = chk >> 25;
        chk = ((chk & 0x01ff_ffff) << 5) ^ u32::from(v);
        for (i, g) in GEN.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                chk ^= g;
            }
        }
    }
    chk
}

fn hrp_expand(hrp: &[u8]) -> impl Iterator<Item = u8> + '_ {
    hrp.iter()
        .map(|b| b >> 5)
        .chain(std::iter::once(0))
        .chain(hrp.iter().map(|b| b & 31))
}

const BECH32_CONST: u32 = 1;
const BECH32M_CONST: u32 = 0x2bc8_30a3;

/// Whether `text` is a segwit address (`bc1…` mainnet, `tb1…` testnet): one case, a valid
/// bech32 (witness version 0) or bech32m (versions 1–16) checksum and a program of a valid
/// length.
pub(crate) fn is_segwit_address(text: &str) -> bool {
    let has_lower = text.bytes().any(|b| b.is_ascii_lowercase());
    let has_upper = text.bytes().any(|b| b.is_ascii_uppercase());
    if has_lower && has_upper || text.len() > 90 {
        return false;
    }
    let lower = text.to_ascii_lowercase();
    let Some((hrp, data)) = lower.rsplit_once('1') else {
        return false;
    };
    if !matches!(hrp, "bc" | "tb") || data.len() < 6 {
        return false;
    }
    let Some(values) = data
        .bytes()
        .map(|c| {
            BECH32
                .iter()
                .position(|&b| b == c)
                .and_then(|p| u8::try_from(p).ok())
        })
        .collect::<Option<Vec<u8>>>()
    else {
        return false;
    };
    let residue = polymod(hrp_expand(hrp.as_bytes()).chain(values.iter().copied()));
    let Some((&version, rest)) = values.split_first() else {
        return false;
    };
    let program = rest.get(..rest.len().saturating_sub(6)).unwrap_or(&[]);
    let expected = if version == 0 {
        BECH32_CONST
    } else {
        BECH32M_CONST
    };
    if residue != expected || version > 16 {
        return false;
    }
    // 5-bit groups to bytes; leftover bits must be fewer than 5 and zero.
    let bits = program.len() * 5;
    let bytes = bits / 8;
    if bits % 8 >= 5 {
        return false;
    }
    let tail_bits = bits % 8;
    if tail_bits > 0
        && program
            .last()
            .is_some_and(|&v| v & ((1 << tail_bits) - 1) != 0)
    {
        return false;
    }
    (2..=40).contains(&bytes) && (version != 0 || bytes == 20 || bytes == 32)
}

/// Encodes a segwit address (for tests): `hrp`, witness `version`, `program`.
#[cfg(test)]
fn segwit_encode(hrp: &str, version: u8, program: &[u8]) -> String {
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
    let constant = if version == 0 {
        BECH32_CONST
    } else {
        BECH32M_CONST
    };
    let residue = polymod(
        hrp_expand(hrp.as_bytes())
            .chain(values.iter().copied())
            .chain([0u8; 6]),
    ) ^ constant;
    values.extend((0..6).map(|i| ((residue >> (5 * (5 - i))) & 31) as u8));
    let data: String = values
        .iter()
        .filter_map(|&v| BECH32.get(usize::from(v)).map(|&b| char::from(b)))
        .collect();
    format!("{hrp}1{data}")
}

/// Whether `text` is `0x` followed by exactly 40 hex digits.
pub(crate) fn is_ethereum_address(text: &str) -> bool {
    text.len() == 42
        && text.starts_with("0x")
        && text.bytes().skip(2).all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base58check_addresses_validate() {
        // The genesis block's address and a well-known P2SH address.
        assert!(is_base58_address("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"));
        assert!(is_base58_address("3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"));
        assert!(!is_base58_address("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb"));
        assert!(!is_base58_address("3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLz"));
        // The all-zero hash is a valid (burn) address; a wrong version byte is not.
        assert!(is_base58_address("1111111111111111111114oLvT2"));
        assert!(!is_base58_address("LcHKx1pM5BFUxMt5cEYbu5EAwLrKjZKdkS"));
        let payload: Vec<u8> = std::iter::once(0u8).chain(1..=20).collect();
        let mut full = payload.clone();
        full.extend(checksum4(&payload));
        let address = base58_encode(&full);
        assert!(is_base58_address(&address), "{address}");
        assert_eq!(base58_decode(&address), Some(full));
    }

    #[test]
    fn segwit_addresses_validate_with_bech32_and_bech32m() {
        // BIP 173 and BIP 350 test vectors.
        assert!(is_segwit_address(
            "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4"
        ));
        assert!(is_segwit_address(
            "bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3"
        ));
        assert!(is_segwit_address(
            "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0"
        ));
        assert!(is_segwit_address(
            "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"
        ));
        // Mixed case, a bad checksum, v0 with a bech32m checksum, an unknown prefix.
        assert!(!is_segwit_address(
            "bc1qW508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
        ));
        assert!(!is_segwit_address(
            "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5"
        ));
        assert!(!is_segwit_address(
            "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh"
        ));
        assert!(!is_segwit_address(
            "ltc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
        ));
        let encoded = segwit_encode("bc", 0, &[7u8; 20]);
        assert!(is_segwit_address(&encoded), "{encoded}");
        let encoded = segwit_encode("bc", 1, &[9u8; 32]);
        assert!(is_segwit_address(&encoded), "{encoded}");
    }

    #[test]
    fn ethereum_addresses_are_0x_and_40_hex_digits() {
        assert!(is_ethereum_address(
            "0x52908400098527886E0F7030069857D2E4169EE7"
        ));
        assert!(!is_ethereum_address(
            "0x52908400098527886E0F7030069857D2E4169EE"
        ));
        assert!(!is_ethereum_address(
            "0x52908400098527886E0F7030069857D2E4169EEG"
        ));
    }
}
