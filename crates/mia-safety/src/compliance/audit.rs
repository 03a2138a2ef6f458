//! The tamper-evident audit log: signed Merkle checkpoints, verification, and the answer to
//! "why did this contact get this message?".
//!
//! Entries are chained by the stores ([`AuditDraft::seal`](mia_core::AuditDraft::seal):
//! `hash = SHA-256(prev_hash || canonical entry bytes)`), so changing, removing, reordering or
//! inserting an entry breaks the chain. Someone who can write the database could rebuild the
//! whole chain after a change; a checkpoint stops that: an ed25519 signature over the log's
//! size and the RFC 6962 Merkle root of its entry hashes, made with a key the database never
//! holds. [`verify_log`] checks the chain and every checkpoint against the keys the caller
//! trusts, and names the first bad entry.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use jiff::Timestamp;
use mia_core::{
    AuditAction, AuditCheckpoint, AuditEntry, AuditEvent, AuditHash, AuditStore, AuditTrail,
    CampaignId, ConsentRecord, ContactId, Error, IdempotencyKey, Job, Result, Store,
    StoreAuditTrail, SubjectKey, current_consent,
};
use serde::{Deserialize, Serialize};

use super::merkle::MerkleTree;

/// Entries read per page while walking the log.
const PAGE: usize = 2_000;

/// The domain tag of a checkpoint's signed message.
const CHECKPOINT_TAG: &[u8] = b"mia-audit-checkpoint-v1";

/// The bytes a checkpoint signs: a version tag, the size (u64, big-endian), the root, and
/// the time (i64 microseconds, big-endian).
pub fn checkpoint_message(size: u64, root: &AuditHash, at: Timestamp) -> Vec<u8> {
    let mut out = Vec::with_capacity(CHECKPOINT_TAG.len() + 48);
    out.extend_from_slice(CHECKPOINT_TAG);
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(&root.0);
    out.extend_from_slice(&at.as_microsecond().to_be_bytes());
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<const N: usize>(text: &str, what: &str) -> Result<[u8; N]> {
    let bad = || Error::invalid(format!("{what} must be {} hex digits", N * 2));
    if text.len() != N * 2 || !text.is_ascii() {
        return Err(bad());
    }
    let mut out = [0u8; N];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = u8::from_str_radix(&text[i * 2..i * 2 + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// The secret key that signs checkpoints (ed25519). Keep it outside the database the log
/// lives in; `Debug` shows only its public half.
pub struct CheckpointSigner {
    key: SigningKey,
}

impl CheckpointSigner {
    /// The signer with this 32-byte secret seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// A signer with a fresh random key.
    pub fn generate() -> Self {
        Self::from_seed(rand::random())
    }

    /// Reads a seed written as 64 hex digits (surrounding whitespace is ignored).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for anything else; the message never repeats the text.
    pub fn from_hex(text: &str) -> Result<Self> {
        unhex::<32>(text.trim(), "a checkpoint signing key").map(Self::from_seed)
    }

    /// The secret seed, to keep it somewhere safe.
    pub fn to_seed(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The public key that verifies this signer's checkpoints.
    pub fn public_key(&self) -> CheckpointKey {
        CheckpointKey(self.key.verifying_key())
    }

    /// A checkpoint of a log with `size` entries whose Merkle root is `root`.
    pub fn sign(&self, size: u64, root: AuditHash, at: Timestamp) -> AuditCheckpoint {
        let at = micros(at);
        let signature = self.key.sign(&checkpoint_message(size, &root, at));
        AuditCheckpoint {
            size,
            root,
            at,
            key_id: self.public_key().to_hex(),
            signature: hex(&signature.to_bytes()),
        }
    }
}

fn micros(at: Timestamp) -> Timestamp {
    let nanos = at.subsec_nanosecond();
    Timestamp::new(at.as_second(), nanos - nanos % 1_000).unwrap_or(at)
}

impl fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("public_key", &self.public_key().to_hex())
            .finish_non_exhaustive()
    }
}

/// A public key that checkpoints are checked against.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CheckpointKey(VerifyingKey);

impl CheckpointKey {
    /// Reads a public key written as 64 hex digits.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when it is not a valid ed25519 public key.
    pub fn from_hex(text: &str) -> Result<Self> {
        let bytes = unhex::<32>(text.trim(), "a checkpoint public key")?;
        VerifyingKey::from_bytes(&bytes)
            .map(Self)
            .map_err(|_| Error::invalid("not an ed25519 public key"))
    }

    /// The key as 64 hex digits (a checkpoint's `key_id`).
    pub fn to_hex(&self) -> String {
        hex(self.0.as_bytes())
    }

    /// Whether `checkpoint` carries a valid signature by this key.
    pub fn verifies(&self, checkpoint: &AuditCheckpoint) -> bool {
        let Ok(bytes) = unhex::<64>(&checkpoint.signature, "a signature") else {
            return false;
        };
        let message = checkpoint_message(checkpoint.size, &checkpoint.root, checkpoint.at);
        self.0
            .verify(&message, &Signature::from_bytes(&bytes))
            .is_ok()
    }
}

impl fmt::Debug for CheckpointKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CheckpointKey({})", self.to_hex())
    }
}

impl fmt::Display for CheckpointKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// What is wrong with a log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// An entry's stored hash is not the hash of its content: the entry was changed.
    Altered,
    /// An entry does not link to the hash of the entry before it.
    BrokenLink,
    /// Sequence numbers skip: entries were removed.
    Missing,
    /// A sequence number repeats or goes back: entries were inserted or reordered.
    OutOfOrder,
    /// A checkpoint covers more entries than the log has: entries were removed from the end.
    Truncated,
    /// The entries a checkpoint covers no longer give its root: the log was rewritten.
    RootMismatch,
    /// A checkpoint's signature does not verify with the key it names.
    BadSignature,
    /// A checkpoint was signed by a key the caller does not trust.
    UntrustedKey,
}

/// The first thing found wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditProblem {
    /// What.
    pub kind: ProblemKind,
    /// The first bad entry, when one can be named.
    pub seq: Option<u64>,
    /// The range of entries that holds the change, when only a range can be named (a
    /// rewritten log: between the last checkpoint that matched and the first that did not).
    pub range: Option<(u64, u64)>,
    /// A sentence for a person.
    pub message: String,
}

/// What [`verify_log`] found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditReport {
    /// Entries read whose chain verified.
    pub entries: u64,
    /// The hash of the last good entry.
    pub head: Option<AuditHash>,
    /// Checkpoints whose signature, key, size and root verified.
    pub checkpoints: u64,
    /// How many entries the newest good checkpoint covers; entries after it are protected by
    /// the chain only.
    pub covered: u64,
    /// Whether checkpoints were checked against keys the caller trusts (otherwise only
    /// against the keys they name, which a forger could choose).
    pub keys_pinned: bool,
    /// The keys that signed the checkpoints.
    pub signers: Vec<String>,
    /// The first problem, or `None` when the log verified.
    pub problem: Option<AuditProblem>,
}

impl AuditReport {
    /// Whether the log verified.
    pub fn is_ok(&self) -> bool {
        self.problem.is_none()
    }
}

/// The outcome of one walk along the chain.
struct Walk {
    entries: u64,
    head: Option<AuditHash>,
    problem: Option<AuditProblem>,
    /// Merkle roots at the sizes asked for, while the chain was good.
    roots: BTreeMap<u64, AuditHash>,
    /// The root over everything read, while the chain was good.
    root: AuditHash,
}

fn problem(kind: ProblemKind, seq: Option<u64>, message: String) -> Option<AuditProblem> {
    Some(AuditProblem {
        kind,
        seq,
        range: None,
        message,
    })
}

/// Reads the whole log in order, checking sequence numbers, links and hashes, and builds the
/// Merkle tree; stops at the first bad entry.
async fn walk<S: AuditStore + ?Sized>(store: &S, sizes: &BTreeSet<u64>) -> Result<Walk> {
    let mut tree = MerkleTree::new();
    let mut roots = BTreeMap::new();
    let mut prev = AuditHash::ZERO;
    let mut expected = 1u64;
    let mut after = 0u64;
    loop {
        let page = store.audit_entries(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for e in &page {
            let bad = if e.seq > expected {
                let message = format!(
                    "entries {expected}..={} are missing (the log jumps from {} to {})",
                    e.seq - 1,
                    expected - 1,
                    e.seq
                );
                problem(ProblemKind::Missing, Some(expected), message)
            } else if e.seq < expected {
                let message = format!(
                    "entry {} comes after entry {}: entries were inserted or reordered",
                    e.seq,
                    expected - 1
                );
                problem(ProblemKind::OutOfOrder, Some(e.seq), message)
            } else if e.hash != e.expected_hash() {
                let message = format!(
                    "entry {} was altered: its content does not hash to its stored hash",
                    e.seq
                );
                problem(ProblemKind::Altered, Some(e.seq), message)
            } else if e.prev_hash != prev {
                let message = format!(
                    "entry {} does not link to entry {}: an entry before it was removed, \
                     replaced or moved",
                    e.seq,
                    e.seq.saturating_sub(1)
                );
                problem(ProblemKind::BrokenLink, Some(e.seq), message)
            } else {
                None
            };
            if bad.is_some() {
                return Ok(Walk {
                    entries: expected - 1,
                    head: (expected > 1).then_some(prev),
                    problem: bad,
                    roots,
                    root: tree.root(),
                });
            }
            tree.push(&e.hash);
            if sizes.contains(&tree.size()) {
                roots.insert(tree.size(), tree.root());
            }
            prev = e.hash;
            expected += 1;
        }
    }
    Ok(Walk {
        entries: expected - 1,
        head: (expected > 1).then_some(prev),
        problem: None,
        roots,
        root: tree.root(),
    })
}

/// Verifies the whole log: the chain (sequence numbers without gaps, each entry's hash over
/// its content, each link to the previous hash) and every checkpoint (its signature, its
/// signer among `trusted` unless `trusted` is empty, its size within the log, and its root
/// equal to the Merkle root of the entries it covers). Returns a report naming the first
/// problem; a verified log has none.
///
/// Pass the public keys of your checkpoint signers as `trusted`: without them a forger who
/// rewrote the log could sign new checkpoints with a key of their own.
///
/// # Errors
/// A store error (a damaged row the store cannot even decode is one).
pub async fn verify_log<S: AuditStore + ?Sized>(
    store: &S,
    trusted: &[CheckpointKey],
) -> Result<AuditReport> {
    let checkpoints = store.audit_checkpoints().await?;
    let sizes: BTreeSet<u64> = checkpoints.iter().map(|c| c.size).collect();
    let walk = walk(store, &sizes).await?;
    let mut report = AuditReport {
        entries: walk.entries,
        head: walk.head,
        checkpoints: 0,
        covered: 0,
        keys_pinned: !trusted.is_empty(),
        signers: Vec::new(),
        problem: walk.problem,
    };
    // Checkpoints in the order of the entries they cover; the first bad one is reported when
    // the chain itself is fine.
    let mut ordered: Vec<&AuditCheckpoint> = checkpoints.iter().collect();
    ordered.sort_by_key(|c| c.size);
    let mut good_up_to = 0u64;
    for cp in ordered {
        if !report.signers.contains(&cp.key_id) {
            report.signers.push(cp.key_id.clone());
        }
        let found = check_checkpoint(cp, trusted, &walk.roots, walk.entries, good_up_to);
        if let Some(p) = found {
            // A chain problem comes first; past a break, the roots cannot be compared.
            if report.problem.is_none() {
                report.problem = Some(p);
            }
        } else {
            report.checkpoints += 1;
            good_up_to = good_up_to.max(cp.size);
            report.covered = good_up_to;
        }
    }
    Ok(report)
}

fn check_checkpoint(
    cp: &AuditCheckpoint,
    trusted: &[CheckpointKey],
    roots: &BTreeMap<u64, AuditHash>,
    entries: u64,
    good_up_to: u64,
) -> Option<AuditProblem> {
    let named = CheckpointKey::from_hex(&cp.key_id).ok();
    let signed = named.is_some_and(|k| k.verifies(cp));
    if !signed {
        let message = format!(
            "the checkpoint of {} entries has no valid signature by the key it names",
            cp.size
        );
        return problem(ProblemKind::BadSignature, None, message);
    }
    if !trusted.is_empty() && !named.is_some_and(|k| trusted.contains(&k)) {
        let message = format!(
            "the checkpoint of {} entries was signed by {}, which is not a trusted key",
            cp.size, cp.key_id
        );
        return problem(ProblemKind::UntrustedKey, None, message);
    }
    if cp.size > entries {
        let message = format!(
            "a checkpoint covers {} entries but only {entries} verify: entries after {entries} \
             were removed or damaged",
            cp.size
        );
        return problem(ProblemKind::Truncated, Some(entries + 1), message);
    }
    let root = if cp.size == 0 {
        Some(super::merkle::empty_root())
    } else {
        roots.get(&cp.size).copied()
    };
    if root != Some(cp.root) {
        let from = good_up_to + 1;
        return Some(AuditProblem {
            kind: ProblemKind::RootMismatch,
            seq: None,
            range: Some((from, cp.size)),
            message: format!(
                "entries {from}..={} are not the entries the checkpoint of {} signed: the log \
                 was rewritten there",
                cp.size, cp.size
            ),
        });
    }
    None
}

/// The audit log with checkpoints: appends the agent's events (it is an [`AuditTrail`]),
/// signs a checkpoint every `checkpoint_every` entries when it has a signer, verifies, and
/// explains sends.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> mia_core::Result<()> {
/// use std::sync::Arc;
/// use mia_core::{AuditAction, AuditEvent, MemoryStore};
/// use mia_safety::compliance::{AuditLog, CheckpointSigner};
///
/// let signer = CheckpointSigner::generate();
/// let public = signer.public_key();
/// let log = AuditLog::new(Arc::new(MemoryStore::new())).with_signer(signer);
/// let at = jiff::Timestamp::now();
/// let event = AuditEvent::new(at, "operator", AuditAction::CampaignState, None, serde_json::json!({}));
/// log.append(&[event]).await?;
/// log.checkpoint(at).await?;
/// assert!(log.verify(&[public]).await?.is_ok());
/// # Ok(()) }
/// ```
pub struct AuditLog<S> {
    trail: StoreAuditTrail<S>,
    signer: Option<Arc<CheckpointSigner>>,
    every: u64,
    /// The Merkle frontier of the entries checked so far, so a checkpoint reads only the
    /// entries appended since the last one (the first one in a process reads the whole log).
    frontier: Mutex<Frontier>,
}

/// How far the log has been read and checked: the compact Merkle tree of the entries (the
/// roots of its perfect subtrees, O(log n) hashes) and the hash of the last one.
#[derive(Clone, Debug, Default)]
struct Frontier {
    tree: MerkleTree,
    head: Option<AuditHash>,
}

impl Frontier {
    /// Reads and checks the entries after the ones already in the tree, adding them; returns
    /// the first problem, leaving the frontier at the last good entry.
    async fn extend<S: AuditStore + ?Sized>(&mut self, store: &S) -> Result<Option<AuditProblem>> {
        loop {
            let after = self.tree.size();
            let page = store.audit_entries(after, PAGE).await?;
            if page.is_empty() {
                return Ok(None);
            }
            for e in &page {
                let expected = self.tree.size() + 1;
                let prev = self.head.unwrap_or(AuditHash::ZERO);
                let found = if e.seq != expected {
                    let message = format!(
                        "entry {expected} is missing or out of order (found {})",
                        e.seq
                    );
                    problem(ProblemKind::Missing, Some(expected), message)
                } else if e.hash != e.expected_hash() {
                    let message = format!("entry {} was altered", e.seq);
                    problem(ProblemKind::Altered, Some(e.seq), message)
                } else if e.prev_hash != prev {
                    let message = format!("entry {} does not link to entry {}", e.seq, e.seq - 1);
                    problem(ProblemKind::BrokenLink, Some(e.seq), message)
                } else {
                    None
                };
                if found.is_some() {
                    return Ok(found);
                }
                self.tree.push(&e.hash);
                self.head = Some(e.hash);
            }
        }
    }
}

impl<S> fmt::Debug for AuditLog<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("signer", &self.signer)
            .field("checkpoint_every", &self.every)
            .finish_non_exhaustive()
    }
}

impl<S: AuditStore> AuditLog<S> {
    /// The log in `store`, pseudonymising with the store's own subject key.
    pub fn new(store: S) -> Self {
        Self {
            trail: StoreAuditTrail::new(store),
            signer: None,
            every: 1_000,
            frontier: Mutex::new(Frontier::default()),
        }
    }

    /// The log in `store`, pseudonymising with the host's `key` (kept apart from the data).
    pub fn with_subject_key(store: S, key: SubjectKey) -> Self {
        Self {
            trail: StoreAuditTrail::with_key(store, key),
            signer: None,
            every: 1_000,
            frontier: Mutex::new(Frontier::default()),
        }
    }

    /// Signs checkpoints with `signer`: every [`checkpoint_every`](Self::checkpoint_every)
    /// entries when appending, and on [`checkpoint`](Self::checkpoint).
    #[must_use]
    pub fn with_signer(mut self, signer: CheckpointSigner) -> Self {
        self.signer = Some(Arc::new(signer));
        self
    }

    /// How many entries may pass between checkpoints made while appending (default 1,000;
    /// at least 1).
    #[must_use]
    pub fn checkpoint_every(mut self, entries: u64) -> Self {
        self.every = entries.max(1);
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        self.trail.store()
    }

    /// The pseudonym the log keeps for `contact`.
    ///
    /// # Errors
    /// When the store's subject key cannot be read.
    pub async fn pseudonym(&self, contact: &ContactId) -> Result<String> {
        Ok(self.trail.key().await?.pseudonym(contact))
    }

    /// Appends `events`, then signs a checkpoint if they crossed a multiple of
    /// `checkpoint_every` (and there is a signer). Returns the entries as stored.
    ///
    /// # Errors
    /// A store error, or the log failing verification when a checkpoint is due (it is never
    /// signed over a broken chain).
    pub async fn append(&self, events: &[AuditEvent]) -> Result<Vec<AuditEntry>> {
        let entries = self.trail.append(events).await?;
        if let (Some(_), Some(first), Some(last)) = (&self.signer, entries.first(), entries.last())
            && (first.seq - 1) / self.every != last.seq / self.every
        {
            self.checkpoint(last.at).await?;
        }
        Ok(entries)
    }

    /// Signs and keeps a checkpoint of the whole log as it is now, after checking the chain of
    /// the entries appended since this log last looked. The log keeps the Merkle frontier
    /// (O(log n) hashes), so only those new entries are read: the first checkpoint in a
    /// process reads the whole log once, later ones read what was appended since.
    ///
    /// # Errors
    /// [`Error::Config`] without a signer; [`Error::InvalidInput`] when the chain breaks
    /// (with the problem); a store error.
    pub async fn checkpoint(&self, at: Timestamp) -> Result<AuditCheckpoint> {
        let signer = self.signer.as_ref().ok_or_else(|| {
            Error::Config("no checkpoint signer: use AuditLog::with_signer".into())
        })?;
        // Not held across the reads: work on a copy, keep it if it got further.
        let mut frontier = self.lock_frontier().clone();
        let found = frontier.extend(self.store()).await?;
        {
            let mut kept = self.lock_frontier();
            if frontier.tree.size() > kept.tree.size() {
                *kept = frontier.clone();
            }
        }
        if let Some(p) = found {
            return Err(Error::invalid(format!(
                "refusing to sign a checkpoint: {}",
                p.message
            )));
        }
        let checkpoint = signer.sign(frontier.tree.size(), frontier.tree.root(), at);
        self.store().append_checkpoint(&checkpoint).await?;
        Ok(checkpoint)
    }

    /// Signs a checkpoint the slow way, reading and checking the whole log each time (what
    /// [`checkpoint`](Self::checkpoint) did before it kept a frontier); for comparison in
    /// benchmarks and for a caller that wants the whole chain checked first.
    ///
    /// # Errors
    /// As [`checkpoint`](Self::checkpoint).
    pub async fn checkpoint_full(&self, at: Timestamp) -> Result<AuditCheckpoint> {
        let signer = self.signer.as_ref().ok_or_else(|| {
            Error::Config("no checkpoint signer: use AuditLog::with_signer".into())
        })?;
        let walk = walk(self.store(), &BTreeSet::new()).await?;
        if let Some(p) = walk.problem {
            return Err(Error::invalid(format!(
                "refusing to sign a checkpoint: {}",
                p.message
            )));
        }
        let checkpoint = signer.sign(walk.entries, walk.root, at);
        self.store().append_checkpoint(&checkpoint).await?;
        Ok(checkpoint)
    }

    fn lock_frontier(&self) -> std::sync::MutexGuard<'_, Frontier> {
        // The frontier is only ever replaced whole, so a poisoned one is still consistent.
        self.frontier.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Verifies the log; see [`verify_log`]. This log's own signer's key is always trusted.
    ///
    /// # Errors
    /// A store error.
    pub async fn verify(&self, trusted: &[CheckpointKey]) -> Result<AuditReport> {
        let mut keys = trusted.to_vec();
        if let Some(signer) = &self.signer {
            keys.push(signer.public_key());
        }
        verify_log(self.store(), &keys).await
    }
}

#[async_trait]
impl<S: AuditStore> AuditTrail for AuditLog<S> {
    async fn record(&self, events: &[AuditEvent]) -> Result<()> {
        self.append(events).await.map(|_| ())
    }

    async fn pseudonym(&self, contact: &ContactId) -> Result<String> {
        AuditLog::pseudonym(self, contact).await
    }
}

/// Why a contact got (or did not get) a campaign message: the job, the consent record in
/// force when the send was decided, and every policy decision on the job from the audit log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SendExplanation {
    /// The outbox job (its state says whether it was sent).
    pub job: Job,
    /// The contact's pseudonym in the audit log.
    pub subject: String,
    /// The consent record in force at the deciding moment (the last policy decision, or the
    /// job's last change when none was logged).
    pub consent: Option<ConsentRecord>,
    /// Every send-policy decision on this job, oldest first, with the rules that fired.
    pub decisions: Vec<AuditEntry>,
    /// The decision that allowed the send, if one did.
    pub allowed_by: Option<AuditEntry>,
}

impl<S: Store> AuditLog<S> {
    /// Answers "why did this contact get this message?" for the job with `key`.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown job; a store error.
    pub async fn explain(&self, key: &IdempotencyKey) -> Result<SendExplanation> {
        let store = self.store();
        let job = store
            .job(key)
            .await?
            .ok_or_else(|| Error::not_found("job", key))?;
        let subject = self.pseudonym(&job.contact).await?;
        let decisions: Vec<AuditEntry> = store
            .audit_entries_for(&subject)
            .await?
            .into_iter()
            .filter(|e| {
                e.action == AuditAction::PolicyDecision
                    && e.detail.get("job").and_then(|j| j.as_str()) == Some(key.as_str())
            })
            .collect();
        let allowed_by = decisions
            .iter()
            .rev()
            .find(|e| e.detail.get("decision").and_then(|d| d.as_str()) == Some("allow"))
            .cloned();
        let moment = allowed_by
            .as_ref()
            .or(decisions.last())
            .map_or(job.updated_at, |e| e.at);
        let history = store.consent_history(&job.contact).await?;
        let consent = current_consent(&history, &job.purpose, moment).cloned();
        Ok(SendExplanation {
            job,
            subject,
            consent,
            decisions,
            allowed_by,
        })
    }

    /// [`explain`](Self::explain) for the first step of `campaign` to `contact`.
    ///
    /// # Errors
    /// As [`explain`](Self::explain).
    pub async fn explain_campaign(
        &self,
        contact: &ContactId,
        campaign: &CampaignId,
    ) -> Result<SendExplanation> {
        self.explain(&IdempotencyKey::for_job(campaign, contact, 0))
            .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn signatures_cover_size_root_and_time_and_keys_stay_secret() {
        let signer = CheckpointSigner::from_seed([9; 32]);
        let at = Timestamp::from_second(1_800_000_000).unwrap();
        let cp = signer.sign(5, AuditHash([1; 32]), at);
        let key = signer.public_key();
        assert!(key.verifies(&cp));
        for forged in [
            AuditCheckpoint {
                size: 6,
                ..cp.clone()
            },
            AuditCheckpoint {
                root: AuditHash([2; 32]),
                ..cp.clone()
            },
            AuditCheckpoint {
                at: at + jiff::SignedDuration::from_secs(1),
                ..cp.clone()
            },
        ] {
            assert!(!key.verifies(&forged), "{forged:?}");
        }
        assert!(
            !CheckpointSigner::from_seed([8; 32])
                .public_key()
                .verifies(&cp)
        );
        let shown = format!("{signer:?}");
        assert!(!shown.contains(&hex(&[9; 32])), "{shown}");
        assert_eq!(CheckpointKey::from_hex(&key.to_hex()).unwrap(), key);
        let err = CheckpointSigner::from_hex("not a key")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("not a key"), "{err}");
        assert_eq!(
            CheckpointSigner::from_hex(&hex(&[9; 32]))
                .unwrap()
                .to_seed(),
            [9; 32]
        );
    }
}
