//! RFC 6962 Merkle trees (the tree of Certificate Transparency) over audit entry hashes.
//!
//! Leaves are hashed as `SHA-256(0x00 || data)` and inner nodes as `SHA-256(0x01 || left ||
//! right)`, so a leaf can never pass for a node; a tree of `n` leaves splits at the largest
//! power of two below `n`. The empty tree's root is `SHA-256("")`.

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
