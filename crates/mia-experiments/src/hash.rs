//! The versioned assignment hash: `(parts) -> point in [0, 1)`, one fixed algorithm per
//! [`HashVersion`].
//!
//! Both versions hash the same bytes: the parts joined by one `0xff` byte (a byte UTF-8 never
//! contains, so `("ab", "c")` and `("a", "bc")` differ), and both keep the top 53 bits of a
//! 64-bit result, `(h >> 11) / 2^53`, which is exact in an `f64`.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ExperimentError;

/// Which hash turns `(salt, campaign, contact)` into a contact's point in [0, 1).
///
/// A version is fixed forever: the same inputs give the same point under a version in every
/// mia release, on every platform, so assignments made under it never move. A new algorithm
/// is a new version, never a change to an old one; golden-value tests pin each.
///
/// Both hash the UTF-8 bytes of the parts joined by one `0xff` byte (which UTF-8 never
/// contains, so `("ab", "c")` and `("a", "bc")` differ): `salt ‖ 0xff ‖ campaign ‖ 0xff ‖
/// contact` for a [`Splitter`](crate::Splitter) and an [`Experiment`](crate::Experiment) (whose
/// campaign is its id), `"layer" ‖ 0xff ‖ salt ‖ 0xff ‖ contact` for a
/// [`Layer`](crate::Layer). The point is the top 53 bits of a 64-bit value over 2^53.
///
/// | version | 64-bit value | status |
/// | --- | --- | --- |
/// | [`V1`](HashVersion::V1) | the first 8 bytes of SHA-256 (FIPS 180-4), big-endian | mia's first rule; kept for everything that already assigns with it |
/// | [`V2`](HashVersion::V2) | XXH3-64 (`XXH3_64bits`, seed 0, default secret; xxHash ≥ 0.8.0) | [`LATEST`](HashVersion::LATEST): the default of new [`Splitter`](crate::Splitter)s, [`Experiment`](crate::Experiment)s and [`Layer`](crate::Layer)s |
///
/// **Why XXH3-64.** It is a published algorithm with a written specification
/// (`doc/xxhash_spec.md` in the xxHash repository) whose output its author declared stable with
/// xxHash 0.8.0 (2020), with ports in most languages, so any system can recompute a mia
/// point (in Python: `xxhash.xxh3_64_intdigest(b"\xff".join([salt, campaign, contact])) >> 11`
/// over `2**53`). It passes SMHasher, keeps 53 bits of resolution (weights, holdouts and
/// logged propensities stay exact to about 1e-16), and costs a small fraction of SHA-256 on
/// a 30-byte id even with SHA-NI (`benches/experiments.rs`, `splitter/*` against
/// `splitter/*_v1`). It is implemented here in scalar code (about 150 lines, tested against
/// the reference C library on every length class) rather than taken from a crate, so no
/// dependency update can change it. It is not cryptographic, and neither is its use: anyone
/// who knows the salt can compute where a contact lands, as with V1.
///
/// GrowthBook's v2 hash (`fnv32a(str(fnv32a(seed + id))) % 10000 / 10000`) was considered for
/// agreement with GrowthBook SDKs and not taken: it has 1e-4 resolution (a weight or holdout
/// finer than that is rounded, and the logged propensity `weight / total` is then off by up to
/// 1e-4 per boundary), its SDKs feed FNV different units for non-ASCII ids (UTF-16 code units
/// in JavaScript, code points in Python), mia's splitter hashes three parts where GrowthBook
/// hashes two, and its two byte-serial FNV passes plus the decimal formatting between them
/// cost about as much as SHA-256 with SHA-NI on a 30-byte id.
///
/// Serialised as its number (`1`, `2`). A stored definition without a version was made under
/// V1 and must be read as V1: use `#[serde(default = "HashVersion::unversioned")]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
#[non_exhaustive]
pub enum HashVersion {
    /// SHA-256 of the joined parts; the point is its first 8 bytes, big-endian, `>> 11`.
    V1,
    /// XXH3-64 (seed 0, default secret) of the joined parts; the point is the hash `>> 11`.
    V2,
}

impl HashVersion {
    /// The version new splitters, experiments and layers use.
    pub const LATEST: HashVersion = HashVersion::V2;

    /// What a stored definition without a version means: [`V1`](HashVersion::V1), the only
    /// rule before versions existed. A serde default for version fields.
    pub fn unversioned() -> HashVersion {
        HashVersion::V1
    }

    /// The version's number (1, 2), as it serialises.
    pub fn number(self) -> u8 {
        match self {
            HashVersion::V1 => 1,
            HashVersion::V2 => 2,
        }
    }

    /// The version with this number.
    ///
    /// # Errors
    /// [`ExperimentError::InvalidInput`] for a number no version has (data from a newer mia,
    /// or corrupt).
    pub fn from_number(number: u8) -> Result<HashVersion, ExperimentError> {
        match number {
            1 => Ok(HashVersion::V1),
            2 => Ok(HashVersion::V2),
            other => Err(ExperimentError::invalid(format!(
                "unknown hash version {other} (this mia knows 1 and 2)"
            ))),
        }
    }

    /// The point in [0, 1) of `parts` joined by `0xff` bytes under this version.
    pub(crate) fn point(self, parts: &[&[u8]]) -> f64 {
        let h = match self {
            HashVersion::V1 => sha256_prefix(parts),
            HashVersion::V2 => xxh3_joined(parts),
        };
        // 53 bits: exactly representable in an f64.
        (h >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl std::fmt::Display for HashVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "v{}", self.number())
    }
}

impl TryFrom<u8> for HashVersion {
    type Error = ExperimentError;
    fn try_from(number: u8) -> Result<Self, Self::Error> {
        HashVersion::from_number(number)
    }
}

impl From<HashVersion> for u8 {
    fn from(version: HashVersion) -> u8 {
        version.number()
    }
}

/// Messages up to this length are joined on the stack.
const STACK_JOIN: usize = 128;

/// Joins `parts` with `0xff` bytes into `buf` when they fit, and returns the joined length.
fn join_into(parts: &[&[u8]], buf: &mut [u8]) -> Option<usize> {
    let len = parts.iter().map(|p| p.len()).sum::<usize>() + parts.len().saturating_sub(1);
    if len > buf.len() {
        return None;
    }
    let mut at = 0;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            buf[at] = 0xff;
            at += 1;
        }
        buf[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    Some(len)
}

fn join(parts: &[&[u8]]) -> Vec<u8> {
    parts.join(&0xff_u8)
}

/// XXH3-64 of `parts` joined by `0xff`.
fn xxh3_joined(parts: &[&[u8]]) -> u64 {
    let mut buf = [0u8; STACK_JOIN];
    match join_into(parts, &mut buf) {
        Some(len) => xxh3::hash64(&buf[..len]),
        None => xxh3::hash64(&join(parts)),
    }
}

/// SHA-256's initial hash value (FIPS 180-4, 5.3.3).
const SHA256_INITIAL: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// Messages up to this length fit two padded SHA-256 blocks (`128 - 1 - 8` bytes).
const TWO_BLOCKS: usize = 119;

/// The first 8 bytes, big-endian, of SHA-256 of `parts` joined by `0xff` bytes.
///
/// Short messages (all real ids) are padded by hand on the stack and fed to the compression
/// function directly: the same digest as [`Sha256`], without the hasher's buffering, copies
/// and finalisation.
// `GenericArray` is the block type of sha2 0.10's `compress256`; its crate deprecates itself
// in favour of a 1.x that sha2 0.10 does not use.
#[allow(deprecated)]
fn sha256_prefix(parts: &[&[u8]]) -> u64 {
    let mut buf = [0u8; 128];
    if let Some(len) = join_into(parts, &mut buf[..TWO_BLOCKS]) {
        buf[len] = 0x80;
        let end = if len <= 55 { 64 } else { 128 };
        buf[end - 8..end].copy_from_slice(&(len as u64 * 8).to_be_bytes());
        type Block = sha2::digest::generic_array::GenericArray<u8, sha2::digest::consts::U64>;
        let mut state = SHA256_INITIAL;
        // Block by block, each borrowed in place: no copy.
        for block in buf[..end].chunks_exact(64) {
            sha2::compress256(&mut state, std::slice::from_ref(Block::from_slice(block)));
        }
        (u64::from(state[0]) << 32) | u64::from(state[1])
    } else {
        let digest = Sha256::digest(join(parts));
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(first)
    }
}

/// XXH3-64 with seed 0 and the default secret, as specified in xxHash's
/// `doc/xxhash_spec.md` and implemented by `XXH3_64bits` (xxHash 0.8.x). Scalar code only: the
/// result is the same on every platform.
mod xxh3 {
    const PRIME32_1: u64 = 0x9E37_79B1;
    const PRIME32_2: u64 = 0x85EB_CA77;
    const PRIME32_3: u64 = 0xC2B2_AE3D;
    const PRIME64_1: u64 = 0x9E37_79B1_85EB_CA87;
    const PRIME64_2: u64 = 0xC2B2_AE3D_27D4_EB4F;
    const PRIME64_3: u64 = 0x1656_67B1_9E37_79F9;
    const PRIME64_4: u64 = 0x85EB_CA77_C2B2_AE63;
    const PRIME64_5: u64 = 0x27D4_EB2F_1656_67C5;
    const PRIME_MX1: u64 = 0x1656_6791_9E37_79F9;
    const PRIME_MX2: u64 = 0x9FB2_1C65_1E98_DF25;

    /// The default secret (`XXH3_kSecret`), 192 bytes.
    const SECRET: [u8; 192] = [
        0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad,
        0x1c, 0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3,
        0x67, 0x1f, 0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0, 0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc,
        0xff, 0x72, 0x21, 0xb8, 0x08, 0x46, 0x74, 0xf7, 0x43, 0x24, 0x8e, 0xe0, 0x35, 0x90, 0xe6,
        0x81, 0x3a, 0x26, 0x4c, 0x3c, 0x28, 0x52, 0xbb, 0x91, 0xc3, 0x00, 0xcb, 0x88, 0xd0, 0x65,
        0x8b, 0x1b, 0x53, 0x2e, 0xa3, 0x71, 0x64, 0x48, 0x97, 0xa2, 0x0d, 0xf9, 0x4e, 0x38, 0x19,
        0xef, 0x46, 0xa9, 0xde, 0xac, 0xd8, 0xa8, 0xfa, 0x76, 0x3f, 0xe3, 0x9c, 0x34, 0x3f, 0xf9,
        0xdc, 0xbb, 0xc7, 0xc7, 0x0b, 0x4f, 0x1d, 0x8a, 0x51, 0xe0, 0x4b, 0xcd, 0xb4, 0x59, 0x31,
        0xc8, 0x9f, 0x7e, 0xc9, 0xd9, 0x78, 0x73, 0x64, 0xea, 0xc5, 0xac, 0x83, 0x34, 0xd3, 0xeb,
        0xc3, 0xc5, 0x81, 0xa0, 0xff, 0xfa, 0x13, 0x63, 0xeb, 0x17, 0x0d, 0xdd, 0x51, 0xb7, 0xf0,
        0xda, 0x49, 0xd3, 0x16, 0x55, 0x26, 0x29, 0xd4, 0x68, 0x9e, 0x2b, 0x16, 0xbe, 0x58, 0x7d,
        0x47, 0xa1, 0xfc, 0x8f, 0xf8, 0xb8, 0xd1, 0x7a, 0xd0, 0x31, 0xce, 0x45, 0xcb, 0x3a, 0x8f,
        0x95, 0x16, 0x04, 0x28, 0xaf, 0xd7, 0xfb, 0xca, 0xbb, 0x4b, 0x40, 0x7e,
    ];

    const STRIPE: usize = 64;
    /// Stripes per block with the default secret: `(192 - 64) / 8`.
    const STRIPES_PER_BLOCK: usize = (SECRET.len() - STRIPE) / 8;
    const BLOCK: usize = STRIPE * STRIPES_PER_BLOCK;

    // The callers index within bounds they checked: every `at..at + N` below lies inside the
    // slice (lengths are dispatched on first), so these never panic.
    fn read64(bytes: &[u8], at: usize) -> u64 {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(word)
    }

    fn read32(bytes: &[u8], at: usize) -> u64 {
        let mut word = [0u8; 4];
        word.copy_from_slice(&bytes[at..at + 4]);
        u64::from(u32::from_le_bytes(word))
    }

    fn mul128_fold64(a: u64, b: u64) -> u64 {
        let product = u128::from(a) * u128::from(b);
        (product as u64) ^ ((product >> 64) as u64)
    }

    fn xxh64_avalanche(mut h: u64) -> u64 {
        h ^= h >> 33;
        h = h.wrapping_mul(PRIME64_2);
        h ^= h >> 29;
        h = h.wrapping_mul(PRIME64_3);
        h ^ (h >> 32)
    }

    fn avalanche(mut h: u64) -> u64 {
        h ^= h >> 37;
        h = h.wrapping_mul(PRIME_MX1);
        h ^ (h >> 32)
    }

    fn rrmxmx(mut h: u64, len: u64) -> u64 {
        h ^= h.rotate_left(49) ^ h.rotate_left(24);
        h = h.wrapping_mul(PRIME_MX2);
        h ^= (h >> 35).wrapping_add(len);
        h = h.wrapping_mul(PRIME_MX2);
        h ^ (h >> 28)
    }

    fn mix16(input: &[u8], at: usize, secret_at: usize) -> u64 {
        mul128_fold64(
            read64(input, at) ^ read64(&SECRET, secret_at),
            read64(input, at + 8) ^ read64(&SECRET, secret_at + 8),
        )
    }

    /// `XXH3_64bits(input, input.len())`.
    pub(super) fn hash64(input: &[u8]) -> u64 {
        let len = input.len();
        match len {
            0 => xxh64_avalanche(read64(&SECRET, 56) ^ read64(&SECRET, 64)),
            1..=3 => {
                let combined = (u64::from(input[0]) << 16)
                    | (u64::from(input[len >> 1]) << 24)
                    | u64::from(input[len - 1])
                    | ((len as u64) << 8);
                let flip = read32(&SECRET, 0) ^ read32(&SECRET, 4);
                xxh64_avalanche(combined ^ flip)
            }
            4..=8 => {
                let low = read32(input, len - 4);
                let high = read32(input, 0);
                let flip = read64(&SECRET, 8) ^ read64(&SECRET, 16);
                rrmxmx((low | (high << 32)) ^ flip, len as u64)
            }
            9..=16 => {
                let low = read64(input, 0) ^ (read64(&SECRET, 24) ^ read64(&SECRET, 32));
                let high = read64(input, len - 8) ^ (read64(&SECRET, 40) ^ read64(&SECRET, 48));
                let acc = (len as u64)
                    .wrapping_add(low.swap_bytes())
                    .wrapping_add(high)
                    .wrapping_add(mul128_fold64(low, high));
                avalanche(acc)
            }
            17..=128 => {
                let mut acc = (len as u64).wrapping_mul(PRIME64_1);
                if len > 32 {
                    if len > 64 {
                        if len > 96 {
                            acc = acc.wrapping_add(mix16(input, 48, 96));
                            acc = acc.wrapping_add(mix16(input, len - 64, 112));
                        }
                        acc = acc.wrapping_add(mix16(input, 32, 64));
                        acc = acc.wrapping_add(mix16(input, len - 48, 80));
                    }
                    acc = acc.wrapping_add(mix16(input, 16, 32));
                    acc = acc.wrapping_add(mix16(input, len - 32, 48));
                }
                acc = acc.wrapping_add(mix16(input, 0, 0));
                acc = acc.wrapping_add(mix16(input, len - 16, 16));
                avalanche(acc)
            }
            129..=240 => {
                let mut acc = (len as u64).wrapping_mul(PRIME64_1);
                for i in 0..8 {
                    acc = acc.wrapping_add(mix16(input, 16 * i, 16 * i));
                }
                acc = avalanche(acc);
                for i in 8..len / 16 {
                    acc = acc.wrapping_add(mix16(input, 16 * i, 16 * (i - 8) + 3));
                }
                // XXH3_SECRET_SIZE_MIN (136) - XXH3_MIDSIZE_LASTOFFSET (17).
                acc = acc.wrapping_add(mix16(input, len - 16, 136 - 17));
                avalanche(acc)
            }
            _ => long(input),
        }
    }

    fn accumulate_stripe(acc: &mut [u64; 8], input: &[u8], at: usize, secret_at: usize) {
        for i in 0..8 {
            let data = read64(input, at + 8 * i);
            let key = data ^ read64(&SECRET, secret_at + 8 * i);
            acc[i ^ 1] = acc[i ^ 1].wrapping_add(data);
            acc[i] = acc[i].wrapping_add((key & 0xffff_ffff).wrapping_mul(key >> 32));
        }
    }

    fn scramble(acc: &mut [u64; 8]) {
        let secret_at = SECRET.len() - STRIPE;
        for (i, a) in acc.iter_mut().enumerate() {
            let mut v = *a;
            v ^= v >> 47;
            v ^= read64(&SECRET, secret_at + 8 * i);
            *a = v.wrapping_mul(PRIME32_1);
        }
    }

    /// Inputs over 240 bytes.
    fn long(input: &[u8]) -> u64 {
        let len = input.len();
        let mut acc = [
            PRIME32_3, PRIME64_1, PRIME64_2, PRIME64_3, PRIME64_4, PRIME32_2, PRIME64_5, PRIME32_1,
        ];
        let blocks = (len - 1) / BLOCK;
        for b in 0..blocks {
            for s in 0..STRIPES_PER_BLOCK {
                accumulate_stripe(&mut acc, input, b * BLOCK + s * STRIPE, s * 8);
            }
            scramble(&mut acc);
        }
        let stripes = ((len - 1) - BLOCK * blocks) / STRIPE;
        for s in 0..stripes {
            accumulate_stripe(&mut acc, input, blocks * BLOCK + s * STRIPE, s * 8);
        }
        // The last stripe, with XXH_SECRET_LASTACC_START (7).
        accumulate_stripe(&mut acc, input, len - STRIPE, SECRET.len() - STRIPE - 7);
        // XXH_SECRET_MERGEACCS_START (11).
        let mut result = (len as u64).wrapping_mul(PRIME64_1);
        for i in 0..4 {
            result = result.wrapping_add(mul128_fold64(
                acc[2 * i] ^ read64(&SECRET, 11 + 16 * i),
                acc[2 * i + 1] ^ read64(&SECRET, 11 + 16 * i + 8),
            ));
        }
        avalanche(result)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Pinned points: if one of these fails, assignments moved. Never update them; add a
    /// version instead. V1 values are Python's `hashlib.sha256`, V2 values the reference C
    /// library's `XXH3_64bits` (libxxhash 0.8.1), of the parts joined by `0xff`.
    #[test]
    fn golden_hashes_never_change() {
        let long = "x".repeat(200);
        let cases: [([&str; 3], u64, u64); 5] = [
            (["", "", ""], 0xca2f_d00f_a001_1907, 0xb258_05c5_94de_c06b),
            (
                ["spring-2026", "spring", "contact-1"],
                0xbae5_187e_4d38_0a83,
                0x5bea_a5d0_71d0_1aed,
            ),
            (
                ["layer", "pricing", "u-1"],
                0x443e_06c0_e712_20dc,
                0x3978_bd5e_4c22_aaff,
            ),
            (
                ["onboarding", "onboarding", "u-42"],
                0x9ab7_df73_63f2_d58c,
                0x38c7_dd38_3061_2885,
            ),
            (
                [long.as_str(), "k", "u"],
                0xcfbc_e0da_d7fc_6797,
                0xa5e1_c634_e378_88aa,
            ),
        ];
        for (parts, v1, v2) in cases {
            let parts = parts.map(str::as_bytes);
            assert_eq!(sha256_prefix(&parts), v1, "{parts:?}");
            assert_eq!(xxh3_joined(&parts), v2, "{parts:?}");
            for (version, h) in [(HashVersion::V1, v1), (HashVersion::V2, v2)] {
                assert_eq!(
                    version.point(&parts),
                    (h >> 11) as f64 / 9_007_199_254_740_992.0
                );
            }
        }
        // Two of the points as decimals, from the same reference values.
        let parts = ["spring-2026", "spring", "contact-1"].map(str::as_bytes);
        assert_eq!(HashVersion::V1.point(&parts), 0.730_058_222_613_678_4);
        assert_eq!(HashVersion::V2.point(&parts), 0.359_049_189_939_299);
    }

    /// XXH3-64 on every length class of the algorithm (0, 1–3, 4–8, 9–16, 17–128, 129–240, and
    /// over 240 with one or more 1024-byte blocks), against the reference C library.
    #[test]
    fn xxh3_matches_the_reference_implementation() {
        let data: Vec<u8> = (0..3000u32).map(|i| ((i * 31 + 7) % 251) as u8).collect();
        let vectors: [(usize, u64); 24] = [
            (0, 0x2d06_8005_38d3_94c2),
            (1, 0x4c5c_ca45_d0f4_811f),
            (2, 0xa7e2_50c9_7710_ff27),
            (3, 0x15f7_093b_173d_005c),
            (4, 0xdca0_12f9_5811_b6b9),
            (8, 0xdec6_a9a4_3575_982e),
            (9, 0x15e5_53b9_7e27_735d),
            (16, 0xa768_3b86_1e58_5aa6),
            (17, 0x637c_1aa9_0769_8945),
            (32, 0xfb0a_38fb_3af3_2306),
            (33, 0xdbd8_ff66_fdf7_b97e),
            (64, 0xa168_8ef0_a48a_39d4),
            (65, 0x67dc_5b5c_ae64_c652),
            (96, 0xd1a3_5000_054a_80d5),
            (97, 0xd628_cd72_3fed_4570),
            (128, 0x6d0f_64c8_2dda_ad27),
            (129, 0xeaf3_fc97_c05f_44f3),
            (200, 0xf4b5_4cdc_82f2_0685),
            (240, 0x22f2_8cbb_faf0_447f),
            (241, 0x0752_5dbc_1490_2c7f),
            (1024, 0xe289_8655_db7b_c9ee),
            (1025, 0x134c_652b_a3d6_fb9e),
            (2048, 0x63a7_8a59_658d_80f4),
            (2100, 0x8ddf_b7cf_ddc5_c73e),
        ];
        for (len, expected) in vectors {
            assert_eq!(xxh3::hash64(&data[..len]), expected, "length {len}");
        }
        // Published values: XXH3_64bits("a") and ("abc").
        assert_eq!(xxh3::hash64(b"a"), 0xe6c6_32b6_1e96_4e1f);
        assert_eq!(xxh3::hash64(b"abc"), 0x78af_5f94_892f_3950);
    }

    #[test]
    fn stack_and_heap_joins_agree() {
        // Around the stack buffer's edge, both versions hash the joined bytes whatever path.
        let long = "y".repeat(300);
        for salt_len in [0, 100, 117, 118, 119, 120, 126, 127, 128, 250] {
            let parts = [&long.as_bytes()[..salt_len], b"k", b"u"];
            let joined = parts.join(&0xff_u8);
            assert_eq!(xxh3_joined(&parts), xxh3::hash64(&joined), "{salt_len}");
            let digest = Sha256::digest(&joined);
            assert_eq!(
                sha256_prefix(&parts).to_be_bytes(),
                digest[..8],
                "{salt_len}"
            );
        }
    }

    #[test]
    fn v2_points_are_uniform_over_many_ids() {
        // 100 buckets, 200,000 ids shaped like real ones (sequential, with a shared prefix).
        for salt in ["", "spring-2026"] {
            let mut buckets = [0usize; 100];
            for i in 0..200_000 {
                let contact = format!("contact-{i}");
                let p = HashVersion::V2.point(&[salt.as_bytes(), b"spring", contact.as_bytes()]);
                assert!((0.0..1.0).contains(&p));
                buckets[(p * 100.0) as usize] += 1;
            }
            // Chi-square with 99 degrees of freedom; 148.2 is the 0.001 critical value.
            let chi: f64 = buckets
                .iter()
                .map(|&b| (b as f64 - 2000.0).powi(2) / 2000.0)
                .sum();
            assert!(chi < 148.2, "salt {salt:?}: chi-square {chi}");
        }
    }

    #[test]
    fn versions_serialise_as_numbers_and_a_missing_one_is_v1() {
        assert_eq!(serde_json::to_string(&HashVersion::V1).unwrap(), "1");
        assert_eq!(serde_json::to_string(&HashVersion::V2).unwrap(), "2");
        let v2: HashVersion = serde_json::from_str("2").unwrap();
        assert_eq!(v2, HashVersion::V2);
        assert!(serde_json::from_str::<HashVersion>("3").is_err());
        assert!(serde_json::from_str::<HashVersion>("0").is_err());

        #[derive(Deserialize)]
        struct Stored {
            #[serde(default = "HashVersion::unversioned")]
            hash: HashVersion,
        }
        let old: Stored = serde_json::from_str("{}").unwrap();
        assert_eq!(old.hash, HashVersion::V1);
        let new: Stored = serde_json::from_str(r#"{"hash": 2}"#).unwrap();
        assert_eq!(new.hash, HashVersion::V2);
        assert_eq!(HashVersion::LATEST, HashVersion::V2);
        assert_eq!(HashVersion::V2.to_string(), "v2");
    }
}
