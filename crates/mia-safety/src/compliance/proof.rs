//! Proofs about the audit log that a third party checks without the database: that an entry
//! is in the log a signed checkpoint covers (an RFC 6962 inclusion proof), and that a later
//! log extends an earlier one without rewriting it (a consistency proof).

use jiff::Timestamp;
use mia_core::{AuditCheckpoint, AuditEntry, AuditHash, AuditStore, Error, Result};
use serde::{Deserialize, Serialize};

use super::audit::CheckpointKey;
use super::merkle::{
    consistency_path, inclusion_path, merkle_root, verify_consistency, verify_inclusion,
};

/// Entries read per page.
const PAGE: usize = 2_000;

/// The format name of an [`InclusionProof`].
pub const INCLUSION_FORMAT: &str = "mia-audit-inclusion-v1";

/// Proof that one audit entry is entry `entry.seq` of the log whose first `tree_size`
/// entries have the Merkle root `root`, with the signed checkpoint of that root when there is
/// one. Serialises to JSON; [`verify_inclusion_proof`] checks it without the database.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InclusionProof {
    /// [`INCLUSION_FORMAT`].
    pub format: String,
    /// The entry, whole (its hash is checked against its content).
    pub entry: AuditEntry,
    /// How many entries the tree covers.
    pub tree_size: u64,
    /// The sibling hashes from the entry's leaf up to the root.
    pub path: Vec<AuditHash>,
    /// The root of the tree.
    pub root: AuditHash,
    /// The signed checkpoint of `tree_size` and `root`, if the log has one.
    pub checkpoint: Option<AuditCheckpoint>,
}

/// Proof that the log's first `old_size` entries (root `old_root`) are unchanged in its first
/// `new_size` entries (root `new_root`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    /// The earlier size.
    pub old_size: u64,
    /// The later size.
    pub new_size: u64,
    /// The root over the first `old_size` entries.
    pub old_root: AuditHash,
    /// The root over the first `new_size` entries.
    pub new_root: AuditHash,
    /// The RFC 6962 consistency path.
    pub path: Vec<AuditHash>,
}

/// The hashes of entries `1..=size`, checking the chain on the way.
async fn entry_hashes<S: AuditStore + ?Sized>(store: &S, size: u64) -> Result<Vec<AuditHash>> {
    // The size comes from the caller: reserve no more than a page before the log shows it has
    // that many entries.
    let mut hashes = Vec::with_capacity(usize::try_from(size).map_or(PAGE, |n| n.min(PAGE)));
    let mut prev = AuditHash::ZERO;
    while (hashes.len() as u64) < size {
        let page = store.audit_entries(hashes.len() as u64, PAGE).await?;
        if page.is_empty() {
            break;
        }
        for e in page
            .iter()
            .take(usize::try_from(size).unwrap_or(usize::MAX) - hashes.len())
        {
            let expected = hashes.len() as u64 + 1;
            if e.seq != expected || e.hash != e.expected_hash() || e.prev_hash != prev {
                return Err(Error::invalid(format!(
                    "the audit log does not verify at entry {expected}: run `mia audit verify`"
                )));
            }
            prev = e.hash;
            hashes.push(e.hash);
        }
    }
    if (hashes.len() as u64) < size {
        return Err(Error::invalid(format!(
            "the audit log has {} entries, not {size}",
            hashes.len()
        )));
    }
    Ok(hashes)
}

/// Proves that entry `seq` is in the log. The tree is the one of the newest checkpoint that
/// covers the entry (so the proof carries a signed root), or with `size`, the tree of the first
/// `size` entries (with its checkpoint if one was signed at that size); without either, the
/// whole log as it is now, unsigned.
///
/// # Errors
/// [`Error::NotFound`] for an entry the log (or that tree) does not hold;
/// [`Error::InvalidInput`] when the chain or the checkpoint's root does not verify; a store
/// error.
pub async fn prove_inclusion<S: AuditStore + ?Sized>(
    store: &S,
    seq: u64,
    size: Option<u64>,
) -> Result<InclusionProof> {
    if seq == 0 {
        return Err(Error::invalid("audit entries are numbered from 1"));
    }
    let checkpoints = store.audit_checkpoints().await?;
    let checkpoint = match size {
        Some(size) => checkpoints.into_iter().rev().find(|c| c.size == size),
        None => checkpoints
            .into_iter()
            .filter(|c| c.size >= seq)
            .max_by_key(|c| (c.size, c.at)),
    };
    let size = match (size, &checkpoint) {
        (Some(size), _) => size,
        (None, Some(c)) => c.size,
        (None, None) => {
            let mut last = 0;
            loop {
                let page = store.audit_entries(last, PAGE).await?;
                match page.last() {
                    Some(e) => last = e.seq,
                    None => break,
                }
            }
            last
        }
    };
    if seq > size {
        return Err(Error::not_found(
            "audit entry",
            format!("{seq} (of {size})"),
        ));
    }
    let hashes = entry_hashes(store, size).await?;
    let root = merkle_root(&hashes);
    if let Some(c) = &checkpoint
        && c.root != root
    {
        return Err(Error::invalid(format!(
            "the entries no longer give the root the checkpoint of {size} signed: the log was \
             rewritten"
        )));
    }
    let index = usize::try_from(seq - 1).map_err(|_| Error::invalid("entry out of range"))?;
    let entry = store
        .audit_entries(seq - 1, 1)
        .await?
        .into_iter()
        .next()
        .filter(|e| e.seq == seq)
        .ok_or_else(|| Error::not_found("audit entry", seq))?;
    Ok(InclusionProof {
        format: INCLUSION_FORMAT.into(),
        entry,
        tree_size: size,
        path: inclusion_path(&hashes, index),
        root,
        checkpoint,
    })
}

/// Checks an inclusion proof without the database: the entry's hash is the hash of its
/// content, the path leads from it to the root, and the checkpoint (if any) signs that size and
/// root with the key it names. With `trusted` keys, the proof must carry a checkpoint signed by
/// one of them. Returns the checkpoint's time when it carries one.
///
/// Without `trusted` keys this shows only that the proof is consistent in itself: anyone can
/// build such a proof, with a checkpoint signed by a key of their own, for an entry that was
/// never logged. Pass the log's checkpoint key to know the entry is in *that* log.
///
/// # Errors
/// [`Error::InvalidInput`] saying what does not verify.
pub fn verify_inclusion_proof(
    proof: &InclusionProof,
    trusted: &[CheckpointKey],
) -> Result<Option<Timestamp>> {
    let bad = |why: &str| Err(Error::invalid(format!("the proof does not verify: {why}")));
    if proof.format != INCLUSION_FORMAT {
        return bad("unknown format");
    }
    let e = &proof.entry;
    if e.seq == 0 || e.hash != e.expected_hash() {
        return bad("the entry's content does not give its hash (the entry was altered)");
    }
    if !verify_inclusion(
        &e.hash,
        e.seq - 1,
        proof.tree_size,
        &proof.path,
        &proof.root,
    ) {
        return bad("the path does not lead from the entry to the root");
    }
    match &proof.checkpoint {
        None if trusted.is_empty() => Ok(None),
        None => bad("it carries no signed checkpoint"),
        Some(cp) => {
            if cp.size != proof.tree_size || cp.root != proof.root {
                return bad("the checkpoint is of another tree");
            }
            let key = CheckpointKey::from_hex(&cp.key_id).ok();
            if !key.is_some_and(|k| k.verifies(cp)) {
                return bad("the checkpoint's signature does not verify");
            }
            if !trusted.is_empty() && !key.is_some_and(|k| trusted.contains(&k)) {
                return bad("the checkpoint was signed by a key that is not trusted");
            }
            Ok(Some(cp.at))
        }
    }
}

/// Proves that the log's first `old_size` entries are unchanged in its first `new_size`.
///
/// # Errors
/// [`Error::InvalidInput`] when `old_size > new_size`, the log is shorter than `new_size`,
/// or its chain does not verify; a store error.
pub async fn prove_consistency<S: AuditStore + ?Sized>(
    store: &S,
    old_size: u64,
    new_size: u64,
) -> Result<ConsistencyProof> {
    if old_size > new_size {
        return Err(Error::invalid(
            "the earlier size must not exceed the later one",
        ));
    }
    let hashes = entry_hashes(store, new_size).await?;
    let old = usize::try_from(old_size).map_err(|_| Error::invalid("size out of range"))?;
    Ok(ConsistencyProof {
        old_size,
        new_size,
        old_root: merkle_root(&hashes[..old]),
        new_root: merkle_root(&hashes),
        path: consistency_path(&hashes, old),
    })
}

/// Checks a consistency proof without the database.
///
/// # Errors
/// [`Error::InvalidInput`] when it does not verify.
pub fn verify_consistency_proof(proof: &ConsistencyProof) -> Result<()> {
    if verify_consistency(
        proof.old_size,
        proof.new_size,
        &proof.old_root,
        &proof.new_root,
        &proof.path,
    ) {
        Ok(())
    } else {
        Err(Error::invalid(
            "the consistency proof does not verify: the later log does not extend the earlier one",
        ))
    }
}
