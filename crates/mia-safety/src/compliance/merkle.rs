//! RFC 6962 Merkle trees (the tree of Certificate Transparency) over audit entry hashes.
//!
//! Leaves are hashed as `SHA-256(0x00 || data)` and inner nodes as `SHA-256(0x01 || left ||
//! right)`, so a leaf can never pass for a node; a tree of `n` leaves splits at the largest
//! power of two below `n`. The empty tree's root is `SHA-256("")`. Inclusion and consistency
//! proofs are made and checked as RFC 6962 and RFC 9162 define them.

use mia_core::AuditHash;
use sha2::{Digest, Sha256};

/// The hash of a leaf holding `data`.
pub fn leaf_hash(data: &[u8]) -> AuditHash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    AuditHash(h.finalize().into())
}

/// The hash of an inner node.
pub fn node_hash(left: &AuditHash, right: &AuditHash) -> AuditHash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left.0);
    h.update(right.0);
    AuditHash(h.finalize().into())
}

/// The root of the empty tree.
pub fn empty_root() -> AuditHash {
    AuditHash(Sha256::digest([]).into())
}

/// The root over `leaves` (each leaf's data is the entry hash), as RFC 6962 defines it,
/// recursively. [`MerkleTree`] computes the same root in one pass with O(log n) memory.
pub fn merkle_root(leaves: &[AuditHash]) -> AuditHash {
    fn mth(leaves: &[AuditHash]) -> AuditHash {
        match leaves {
            [] => empty_root(),
            [one] => leaf_hash(&one.0),
            _ => {
                let k = split(leaves.len());
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }
    mth(leaves)
}

/// The largest power of two smaller than `n` (for `n >= 2`).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// The audit path of leaf `index` (0-based) in the tree over `leaves` (RFC 6962 section
/// 2.1.1, `PATH(m, D[n])`): the sibling hashes from the leaf up to the root. Empty when `index`
/// is out of range or the tree has one leaf.
pub fn inclusion_path(leaves: &[AuditHash], index: usize) -> Vec<AuditHash> {
    fn path(m: usize, leaves: &[AuditHash], out: &mut Vec<AuditHash>) {
        if leaves.len() <= 1 {
            return;
        }
        let k = split(leaves.len());
        if m < k {
            path(m, &leaves[..k], out);
            out.push(merkle_root(&leaves[k..]));
        } else {
            path(m - k, &leaves[k..], out);
            out.push(merkle_root(&leaves[..k]));
        }
    }
    let mut out = Vec::new();
    if index < leaves.len() {
        path(index, leaves, &mut out);
    }
    out
}

/// Whether `path` proves that the leaf holding `entry_hash` sits at `index` (0-based) of the
/// tree of `size` leaves whose root is `root` (RFC 9162 section 2.1.3.2).
pub fn verify_inclusion(
    entry_hash: &AuditHash,
    index: u64,
    size: u64,
    path: &[AuditHash],
    root: &AuditHash,
) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = leaf_hash(&entry_hash.0);
    for p in path {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == *root
}

/// The proof that the tree over the first `old_size` of `leaves` is a prefix of the tree over
/// all of them (RFC 6962 section 2.1.2, `PROOF(m, D[n])`). Empty when `old_size` is 0 or not
/// below `leaves.len()`.
pub fn consistency_path(leaves: &[AuditHash], old_size: usize) -> Vec<AuditHash> {
    fn subproof(m: usize, leaves: &[AuditHash], whole: bool, out: &mut Vec<AuditHash>) {
        let n = leaves.len();
        if m == n {
            if !whole {
                out.push(merkle_root(leaves));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            subproof(m, &leaves[..k], whole, out);
            out.push(merkle_root(&leaves[k..]));
        } else {
            subproof(m - k, &leaves[k..], false, out);
            out.push(merkle_root(&leaves[..k]));
        }
    }
    let mut out = Vec::new();
    if old_size > 0 && old_size < leaves.len() {
        subproof(old_size, leaves, true, &mut out);
    }
    out
}

/// Whether `path` proves that the tree of `old_size` leaves with root `old_root` is a prefix
/// of the tree of `new_size` leaves with root `new_root` (RFC 9162 section 2.1.4.2). Equal
/// sizes need an empty path and equal roots; every tree extends the empty one.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &AuditHash,
    new_root: &AuditHash,
    path: &[AuditHash],
) -> bool {
    if old_size > new_size {
        return false;
    }
    if old_size == new_size {
        return path.is_empty() && old_root == new_root;
    }
    if old_size == 0 {
        return path.is_empty() && *old_root == empty_root();
    }
    let mut path = path.to_vec();
    if old_size.is_power_of_two() {
        path.insert(0, *old_root);
    }
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut f, mut s) = (old_size - 1, new_size - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    fr == *old_root && sr == *new_root && s == 0
}

/// A Merkle tree built one leaf at a time: it keeps only the roots of its perfect subtrees
/// (one per set bit of the size), so a log of any length is checked in one pass.
#[derive(Clone, Debug, Default)]
pub struct MerkleTree {
    size: u64,
    /// Roots of perfect subtrees, left to right, with their heights (strictly decreasing).
    stack: Vec<(u32, AuditHash)>,
}

impl MerkleTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a leaf holding an entry hash.
    pub fn push(&mut self, entry_hash: &AuditHash) {
        self.push_data(&entry_hash.0);
    }

    /// Adds a leaf holding `data`.
    pub fn push_data(&mut self, data: &[u8]) {
        let mut node = (0u32, leaf_hash(data));
        while let Some(&(height, left)) = self.stack.last() {
            if height != node.0 {
                break;
            }
            self.stack.pop();
            node = (height + 1, node_hash(&left, &node.1));
        }
        self.stack.push(node);
        self.size += 1;
    }

    /// How many leaves it has.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The root: the perfect subtrees folded from the right, which is exactly RFC 6962's
    /// split at the largest power of two.
    pub fn root(&self) -> AuditHash {
        let mut iter = self.stack.iter().rev();
        let Some(&(_, mut root)) = iter.next() else {
            return empty_root();
        };
        for (_, left) in iter {
            root = node_hash(left, &root);
        }
        root
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// The tree of the Certificate Transparency reference tests: leaves and the roots of
    /// their first 1..=8 prefixes.
    const LEAVES: [&[u8]; 8] = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
        b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
    ];
    const ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    #[test]
    fn matches_the_certificate_transparency_reference_roots() {
        assert_eq!(
            empty_root().to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let mut tree = MerkleTree::new();
        for (leaf, root) in LEAVES.iter().zip(ROOTS) {
            tree.push_data(leaf);
            assert_eq!(tree.root().to_hex(), root, "size {}", tree.size());
        }
    }

    #[test]
    fn every_inclusion_proof_verifies_and_any_change_fails() {
        let hashes: Vec<AuditHash> = (0..37u8).map(|i| leaf_hash(&[i])).collect();
        for n in 1..=hashes.len() {
            let leaves = &hashes[..n];
            let root = merkle_root(leaves);
            for m in 0..n {
                let path = inclusion_path(leaves, m);
                let (i, size) = (m as u64, n as u64);
                assert!(
                    verify_inclusion(&leaves[m], i, size, &path, &root),
                    "{m} of {n}"
                );
                let other = AuditHash([0xee; 32]);
                assert!(!verify_inclusion(&other, i, size, &path, &root), "leaf");
                assert!(
                    !verify_inclusion(&leaves[m], i, size, &path, &other),
                    "root"
                );
                assert!(
                    !verify_inclusion(&leaves[m], size, size, &path, &root),
                    "index"
                );
                if n > 1 {
                    let j = (m + 1) % n;
                    assert!(!verify_inclusion(&leaves[m], j as u64, size, &path, &root));
                    let mut bent = path.clone();
                    bent[0].0[0] ^= 1;
                    assert!(!verify_inclusion(&leaves[m], i, size, &bent, &root), "path");
                    assert!(!verify_inclusion(&leaves[m], i, size, &path[1..], &root));
                }
            }
        }
    }

    #[test]
    fn every_consistency_proof_verifies_and_any_change_fails() {
        let hashes: Vec<AuditHash> = (0..33u8).map(|i| leaf_hash(&[i])).collect();
        for n in 1..=hashes.len() {
            let new_root = merkle_root(&hashes[..n]);
            for m in 0..=n {
                let old_root = merkle_root(&hashes[..m]);
                let path = consistency_path(&hashes[..n], m);
                let (om, on) = (m as u64, n as u64);
                assert!(
                    verify_consistency(om, on, &old_root, &new_root, &path),
                    "{m} -> {n}"
                );
                if m > 0 && m < n {
                    let other = AuditHash([0xee; 32]);
                    assert!(!verify_consistency(om, on, &other, &new_root, &path));
                    assert!(!verify_consistency(om, on, &old_root, &other, &path));
                    let mut bent = path.clone();
                    let last = bent.len() - 1;
                    bent[last].0[0] ^= 1;
                    assert!(!verify_consistency(om, on, &old_root, &new_root, &bent));
                }
            }
        }
        // A rewritten prefix is not consistent with the old root.
        let mut rewritten = hashes.clone();
        rewritten[3] = AuditHash([1; 32]);
        let path = consistency_path(&rewritten[..20], 10);
        assert!(!verify_consistency(
            10,
            20,
            &merkle_root(&hashes[..10]),
            &merkle_root(&rewritten[..20]),
            &path
        ));
    }

    #[test]
    fn the_one_pass_tree_agrees_with_the_recursive_definition() {
        let hashes: Vec<AuditHash> = (0..70u8).map(|i| leaf_hash(&[i])).collect();
        let mut tree = MerkleTree::new();
        assert_eq!(tree.root(), merkle_root(&[]));
        for n in 1..=hashes.len() {
            tree.push(&hashes[n - 1]);
            assert_eq!(tree.root(), merkle_root(&hashes[..n]), "size {n}");
        }
    }
}
