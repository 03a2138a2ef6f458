//! The audit trail seam: what the agent reports to the tamper-evident audit log, and the format
//! of the log's entries.
//!
//! Every entry links to the one before it: `hash = SHA-256(prev_hash || canonical entry bytes)`.
//! The link is defined here, next to the entry type, because every [`AuditStore`] computes it
//! inside the transaction that appends (it needs the previous hash, and several workers must
//! keep one chain). Merkle checkpoints, their signatures and verification live in
//! `mia_safety::compliance`.
//!
//! Entries never hold raw personal data: the subject is a pseudonym, a keyed hash of the
//! contact id ([`SubjectKey::pseudonym`]), and details hold ids, rule names and decisions only.
//! So erasing a contact's data never touches the log, and the log still verifies afterwards.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::ids::ContactId;
use crate::store::AuditStore;

/// A SHA-256 digest in the audit log: an entry's hash, the hash it links to, a Merkle root.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AuditHash(pub [u8; 32]);

impl AuditHash {
    /// The `prev_hash` of the first entry: 32 zero bytes.
    pub const ZERO: AuditHash = AuditHash([0; 32]);

    /// The digest as 64 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// Parses 64 hex digits.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for anything else.
    pub fn from_hex(text: &str) -> Result<Self> {
        let bytes = unhex(text)?;
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|_| Error::invalid(format!("an audit hash has 64 hex digits: {text:?}")))?;
        Ok(Self(array))
    }
}

impl fmt::Debug for AuditHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuditHash({})", self.to_hex())
    }
}

impl fmt::Display for AuditHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for AuditHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for AuditHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        AuditHash::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Bytes from hex digits (either case).
pub(crate) fn unhex(text: &str) -> Result<Vec<u8>> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(Error::invalid(format!(
            "not a hex digit: {:?}",
            char::from(c)
        ))),
    };
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return Err(Error::invalid("hex text has an odd number of digits"));
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Ok(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// What kind of thing an audit entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditAction {
    /// A send policy decided on a send (allow, deny, defer, escalate) with the rules that fired.
    PolicyDecision,
    /// The content policy decided on a piece of copy.
    ContentDecision,
    /// Consent was granted or withdrawn.
    ConsentChange,
    /// A reviewer (or the review deadline) decided a review item.
    ReviewDecision,
    /// A campaign moved to another state.
    CampaignState,
    /// A data subject request was received, progressed or completed.
    SubjectRequest,
    /// Personal data was removed by a retention purge.
    Retention,
}

impl AuditAction {
    /// Every action, in a stable order.
    pub const ALL: [AuditAction; 7] = [
        AuditAction::PolicyDecision,
        AuditAction::ContentDecision,
        AuditAction::ConsentChange,
        AuditAction::ReviewDecision,
        AuditAction::CampaignState,
        AuditAction::SubjectRequest,
        AuditAction::Retention,
    ];

    /// The action's stable name (`"policy_decision"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::PolicyDecision => "policy_decision",
            AuditAction::ContentDecision => "content_decision",
            AuditAction::ConsentChange => "consent_change",
            AuditAction::ReviewDecision => "review_decision",
            AuditAction::CampaignState => "campaign_state",
            AuditAction::SubjectRequest => "subject_request",
            AuditAction::Retention => "retention",
        }
    }

    /// Parses a name written by [`as_str`](Self::as_str).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an unknown name.
    pub fn parse(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == name)
            .ok_or_else(|| Error::invalid(format!("unknown audit action {name:?}")))
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The secret that turns a contact id into the pseudonym the audit log keeps
/// (HMAC-SHA-256). Anyone holding it and a contact id can find that contact's entries; without
/// it a pseudonym says nothing. Never shown by `Debug`.
#[derive(Clone)]
pub struct SubjectKey {
    bytes: [u8; 32],
    /// HMAC keyed with `bytes`, cloned for each pseudonym (keying costs two hash blocks).
    mac: Option<Hmac<Sha256>>,
}

impl PartialEq for SubjectKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for SubjectKey {}

impl SubjectKey {
    /// A key from 32 secret bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self {
            bytes,
            // HMAC takes keys of any length, so this is always `Some`.
            mac: Hmac::<Sha256>::new_from_slice(&bytes).ok(),
        }
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        Self::from_bytes(rand::random())
    }

    /// The key's bytes, to keep it somewhere safe.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.bytes
    }

    /// The pseudonym of `contact`: `sub_` and 32 hex digits (128 bits of
    /// HMAC-SHA-256(key, contact id)). The same contact always gets the same pseudonym under one
    /// key.
    pub fn pseudonym(&self, contact: &ContactId) -> String {
        let Some(mut mac) = self.mac.clone() else {
            return String::from("sub_unkeyed");
        };
        mac.update(contact.as_str().as_bytes());
        let digest = mac.finalize().into_bytes();
        format!("sub_{}", hex(&digest[..16]))
    }
}

impl fmt::Debug for SubjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SubjectKey(<redacted>)")
    }
}

/// An entry to append, before the store gives it a place in the chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditDraft {
    /// When it happened (kept to the microsecond).
    pub at: Timestamp,
    /// Who acted: `"worker:worker-1"`, `"inbound"`, `"reviewer:ana"`, `"operator"`, ...
    pub actor: String,
    /// What kind of thing happened.
    pub action: AuditAction,
    /// The pseudonym of the data subject concerned, if any (never a raw contact id).
    pub subject: Option<String>,
    /// The facts, as JSON without personal data: ids, rule names, decisions.
    pub detail: serde_json::Value,
}

impl AuditDraft {
    /// The entry this draft becomes at `seq`, after the entry whose hash is `prev_hash`.
    /// Every [`AuditStore`] seals drafts with this, inside the transaction that appends them.
    pub fn seal(self, seq: u64, prev_hash: AuditHash) -> AuditEntry {
        let mut entry = AuditEntry {
            seq,
            at: to_micros(self.at),
            actor: self.actor,
            action: self.action,
            subject: self.subject,
            detail: self.detail,
            prev_hash,
            hash: AuditHash::ZERO,
        };
        entry.hash = entry.expected_hash();
        entry
    }
}

/// Drops digits finer than a microsecond, which stores do not keep: a hash over nanoseconds
/// would not verify once read back.
fn to_micros(at: Timestamp) -> Timestamp {
    let nanos = at.subsec_nanosecond();
    Timestamp::new(at.as_second(), nanos - nanos % 1_000).unwrap_or(at)
}

/// One entry of the audit log, linked to the one before it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Its place in the log: 1, 2, 3, ... without gaps.
    pub seq: u64,
    /// When it happened, to the microsecond.
    pub at: Timestamp,
    /// Who acted.
    pub actor: String,
    /// What kind of thing happened.
    pub action: AuditAction,
    /// The pseudonym of the data subject, if any.
    pub subject: Option<String>,
    /// The facts, without personal data.
    pub detail: serde_json::Value,
    /// The hash of entry `seq - 1` ([`AuditHash::ZERO`] for the first).
    pub prev_hash: AuditHash,
    /// `SHA-256(prev_hash || canonical_bytes())`.
    pub hash: AuditHash,
}

/// The domain tag at the start of every entry's canonical bytes.
const ENTRY_TAG: &[u8] = b"mia-audit-entry-v1";

impl AuditEntry {
    /// The bytes the hash covers: a version tag, then each field length-prefixed (u64,
    /// big-endian): `seq` (u64), `at` (i64 microseconds), actor, action name, the subject (a
    /// presence byte, then the text), and the detail as canonical JSON ([`canonical_json`]).
    /// Everything but `prev_hash` and `hash`.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        self.write_canonical_bytes(&mut out);
        out
    }

    fn write_canonical_bytes(&self, out: &mut Vec<u8>) {
        canonical_fields(
            out,
            self.seq,
            self.at,
            &self.actor,
            self.action,
            self.subject.as_deref(),
            &self.detail,
        );
    }

    /// What `hash` must be: `SHA-256(prev_hash || canonical_bytes())`.
    pub fn expected_hash(&self) -> AuditHash {
        let mut bytes = Vec::with_capacity(256);
        self.write_canonical_bytes(&mut bytes);
        chain_hash(self.prev_hash, &bytes)
    }
}

fn chain_hash(prev: AuditHash, canonical: &[u8]) -> AuditHash {
    let mut hasher = Sha256::new();
    hasher.update(prev.0);
    hasher.update(canonical);
    AuditHash(hasher.finalize().into())
}

/// The canonical bytes of an entry from its parts (see [`AuditEntry::canonical_bytes`]).
fn canonical_fields(
    out: &mut Vec<u8>,
    seq: u64,
    at: Timestamp,
    actor: &str,
    action: AuditAction,
    subject: Option<&str>,
    detail: &serde_json::Value,
) {
    fn field(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        out.extend_from_slice(bytes);
    }
    field(out, ENTRY_TAG);
    field(out, &seq.to_be_bytes());
    field(out, &at.as_microsecond().to_be_bytes());
    field(out, actor.as_bytes());
    field(out, action.as_str().as_bytes());
    match subject {
        Some(subject) => {
            field(out, &[1]);
            field(out, subject.as_bytes());
        }
        None => field(out, &[0]),
    }
    // The detail's length comes first: write a placeholder, the JSON, then the length.
    let at_len = out.len();
    out.extend_from_slice(&[0; 8]);
    write_canonical(detail, out);
    let len = (out.len() - at_len - 8) as u64;
    out[at_len..at_len + 8].copy_from_slice(&len.to_be_bytes());
}

/// JSON with object keys sorted by their UTF-8 bytes and no insignificant whitespace, so equal
/// values always give equal bytes (whatever map order a JSON library or database keeps).
/// Numbers are written as `serde_json` writes them, which reads back to the same number.
pub fn canonical_json(value: &serde_json::Value) -> String {
    let mut out = Vec::new();
    write_canonical(value, &mut out);
    // Only UTF-8 is ever written: JSON text from `serde_json` and the keys and strings of
    // `value`, which are `String`s.
    String::from_utf8(out).unwrap_or_default()
}

fn write_canonical(value: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => {
            use std::io::Write as _;
            // Writing to a Vec cannot fail.
            let _ = write!(out, "{n}");
        }
        Value::String(s) => write_json_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            let mut write_entry = |i: usize, key: &str, v: &Value| {
                if i > 0 {
                    out.push(b',');
                }
                write_json_string(key, out);
                out.push(b':');
                write_canonical(v, out);
            };
            // Maps usually iterate in key order already (serde_json's default `BTreeMap`);
            // sort only when they do not (its `preserve_order` feature).
            if map.keys().is_sorted() {
                for (i, (key, v)) in map.iter().enumerate() {
                    write_entry(i, key, v);
                }
            } else {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                for (i, (key, v)) in entries.into_iter().enumerate() {
                    write_entry(i, key, v);
                }
            }
            out.push(b'}');
        }
    }
}

/// A JSON string literal exactly as `serde_json` writes it.
fn write_json_string(s: &str, out: &mut Vec<u8>) {
    // Serialising a `&str` into a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// A signed statement that the log had `size` entries whose RFC 6962 Merkle tree root is
/// `root`. Made and checked by `mia_safety::compliance`; stores only keep them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditCheckpoint {
    /// How many entries the tree covers (entries 1..=size).
    pub size: u64,
    /// The Merkle tree root over the entries' hashes.
    pub root: AuditHash,
    /// When it was made (to the microsecond).
    pub at: Timestamp,
    /// The signer's public key (hex), so a verifier can tell which key to trust.
    pub key_id: String,
    /// The signature (hex).
    pub signature: String,
}

/// What the agent reports to the audit trail: like an [`AuditDraft`], but with the contact's
/// real id, which the trail turns into a pseudonym before anything is stored.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEvent {
    /// When it happened.
    pub at: Timestamp,
    /// Who acted.
    pub actor: String,
    /// What kind of thing happened.
    pub action: AuditAction,
    /// The contact concerned, if any.
    pub contact: Option<ContactId>,
    /// The facts: ids, rule names, decisions; never message text or personal data.
    pub detail: serde_json::Value,
}

impl AuditEvent {
    /// An event about `contact` (or none).
    pub fn new(
        at: Timestamp,
        actor: impl Into<String>,
        action: AuditAction,
        contact: Option<&ContactId>,
        detail: serde_json::Value,
    ) -> Self {
        Self {
            at,
            actor: actor.into(),
            action,
            contact: contact.cloned(),
            detail,
        }
    }
}

/// Where the agent's audit events go. The default, [`StoreAuditTrail`], appends them to the
/// store's audit log; `mia_safety::compliance::AuditLog` also signs checkpoints.
#[async_trait]
pub trait AuditTrail: Send + Sync {
    /// Appends `events` to the log, in order, pseudonymising their contacts.
    ///
    /// # Errors
    /// When the entries could not be appended; none of them is then.
    async fn record(&self, events: &[AuditEvent]) -> Result<()>;

    /// The pseudonym the log keeps for `contact`.
    ///
    /// # Errors
    /// When the key cannot be read from the store.
    async fn pseudonym(&self, contact: &ContactId) -> Result<String>;
}

#[async_trait]
impl<T: AuditTrail + ?Sized> AuditTrail for Arc<T> {
    async fn record(&self, events: &[AuditEvent]) -> Result<()> {
        (**self).record(events).await
    }
    async fn pseudonym(&self, contact: &ContactId) -> Result<String> {
        (**self).pseudonym(contact).await
    }
}

#[async_trait]
impl<T: AuditTrail + ?Sized> AuditTrail for Box<T> {
    async fn record(&self, events: &[AuditEvent]) -> Result<()> {
        (**self).record(events).await
    }
    async fn pseudonym(&self, contact: &ContactId) -> Result<String> {
        (**self).pseudonym(contact).await
    }
}

/// The default trail: appends to an [`AuditStore`], pseudonymising with a [`SubjectKey`] —
/// the host's, or else the store's own (made at random on first use and kept in the store, so
/// every worker sharing the store uses the same one).
pub struct StoreAuditTrail<S> {
    store: S,
    key: tokio::sync::OnceCell<SubjectKey>,
}

impl<S> fmt::Debug for StoreAuditTrail<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreAuditTrail").finish_non_exhaustive()
    }
}

impl<S: AuditStore> StoreAuditTrail<S> {
    /// A trail over `store`, with the store's own subject key.
    pub fn new(store: S) -> Self {
        Self {
            store,
            key: tokio::sync::OnceCell::new(),
        }
    }

    /// A trail over `store` with the host's subject key.
    pub fn with_key(store: S, key: SubjectKey) -> Self {
        Self {
            store,
            key: tokio::sync::OnceCell::new_with(Some(key)),
        }
    }

    /// The subject key in use.
    ///
    /// # Errors
    /// When the store's key cannot be read or created.
    pub async fn key(&self) -> Result<&SubjectKey> {
        self.key
            .get_or_try_init(|| async {
                let candidate = SubjectKey::generate();
                self.store.audit_key(&candidate).await
            })
            .await
    }

    /// Turns events into drafts, pseudonymising their contacts.
    ///
    /// # Errors
    /// As [`key`](Self::key).
    pub async fn drafts(&self, events: &[AuditEvent]) -> Result<Vec<AuditDraft>> {
        // The key is read only when some event names a contact.
        let key = match events.iter().any(|e| e.contact.is_some()) {
            true => Some(self.key().await?),
            false => None,
        };
        Ok(events
            .iter()
            .map(|e| AuditDraft {
                at: e.at,
                actor: e.actor.clone(),
                action: e.action,
                subject: e.contact.as_ref().zip(key).map(|(c, key)| key.pseudonym(c)),
                detail: e.detail.clone(),
            })
            .collect())
    }

    /// Appends `events` and returns the entries as stored.
    ///
    /// # Errors
    /// As [`AuditStore::append_audit`].
    pub async fn append(&self, events: &[AuditEvent]) -> Result<Vec<AuditEntry>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let drafts = self.drafts(events).await?;
        self.store.append_audit(drafts).await
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }
}

#[async_trait]
impl<S: AuditStore> AuditTrail for StoreAuditTrail<S> {
    async fn record(&self, events: &[AuditEvent]) -> Result<()> {
        self.append(events).await.map(|_| ())
    }

    async fn pseudonym(&self, contact: &ContactId) -> Result<String> {
        Ok(self.key().await?.pseudonym(contact))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn draft(detail: serde_json::Value) -> AuditDraft {
        AuditDraft {
            at: Timestamp::from_second(1_800_000_000).unwrap()
                + jiff::SignedDuration::from_nanos(1_234_567),
            actor: "worker:w1".into(),
            action: AuditAction::PolicyDecision,
            subject: Some("sub_x".into()),
            detail,
        }
    }

    #[test]
    fn canonical_json_sorts_keys_and_drops_whitespace() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{ "b": 1, "a": [true, null, "x\"y"] }"#).unwrap();
        assert_eq!(canonical_json(&a), r#"{"a":[true,null,"x\"y"],"b":1}"#);
        let f = json!({"p": 0.1, "n": -3, "big": u64::MAX});
        let back: serde_json::Value = serde_json::from_str(&canonical_json(&f)).unwrap();
        assert_eq!(
            canonical_json(&back),
            canonical_json(&f),
            "reads back to the same bytes"
        );
    }

    /// Computed by the first implementation (which built the canonical JSON through
    /// `serde_json::Value` strings).
    const GOLDEN_HASH: &str = "f29b098a4a2961e914e99df0d7221a483685f1eb0eb2541fa0cbb45d84acf21f";

    /// The hash of one entry, pinned: logs written by earlier versions must keep verifying.
    #[test]
    fn the_entry_hash_format_is_stable() {
        let entry = AuditDraft {
            at: Timestamp::from_second(1_800_000_000).unwrap(),
            actor: "worker:w1".into(),
            action: AuditAction::PolicyDecision,
            subject: Some("sub_00ff".into()),
            detail: json!({
                "z": [1, -2, 0.5, u64::MAX, null, false],
                "policy": "send",
                "quote": "a\"b\\c\n\u{1}é🙂",
                "nested": {"b": {}, "a": []},
            }),
        }
        .seal(7, AuditHash([9; 32]));
        assert_eq!(entry.hash.to_hex(), GOLDEN_HASH);
        let value: serde_json::Value = serde_json::from_str(&entry.detail.to_string()).unwrap();
        assert_eq!(canonical_json(&value), value.to_string());
    }

    #[test]
    fn sealing_links_and_any_change_changes_the_hash() {
        let first = draft(json!({"rule": "consent"})).seal(1, AuditHash::ZERO);
        assert_eq!(
            first.at.subsec_nanosecond() % 1000,
            0,
            "kept to the microsecond"
        );
        assert_eq!(first.hash, first.expected_hash());
        let second = draft(json!({"rule": "quiet_hours"})).seal(2, first.hash);
        assert_eq!(second.prev_hash, first.hash);
        let mut changed = second.clone();
        changed.detail = json!({"rule": "quiet_hourz"});
        assert_ne!(changed.expected_hash(), second.hash);
        let mut moved = second.clone();
        moved.seq = 3;
        assert_ne!(moved.expected_hash(), second.hash);
        let mut no_subject = second.clone();
        no_subject.subject = None;
        assert_ne!(no_subject.expected_hash(), second.hash);
    }

    #[test]
    fn hashes_round_trip_through_hex_and_serde() {
        let h = draft(json!({})).seal(1, AuditHash::ZERO).hash;
        assert_eq!(AuditHash::from_hex(&h.to_hex()).unwrap(), h);
        let text = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<AuditHash>(&text).unwrap(), h);
        assert!(AuditHash::from_hex("abc").is_err());
        assert!(AuditHash::from_hex(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn pseudonyms_are_keyed_stable_and_keys_stay_secret() {
        let key = SubjectKey::from_bytes([7; 32]);
        let c = ContactId::new("crm-42");
        assert_eq!(key.pseudonym(&c), key.pseudonym(&c));
        assert!(key.pseudonym(&c).starts_with("sub_"));
        assert!(!key.pseudonym(&c).contains("crm-42"));
        assert_ne!(
            key.pseudonym(&c),
            SubjectKey::from_bytes([8; 32]).pseudonym(&c)
        );
        assert_eq!(format!("{key:?}"), "SubjectKey(<redacted>)");
        for name in AuditAction::ALL {
            assert_eq!(AuditAction::parse(name.as_str()).unwrap(), name);
        }
    }
}
