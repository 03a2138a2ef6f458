//! Compliance: the tamper-evident audit log (signed Merkle checkpoints, verification, the
//! answer to "why did this contact get this message?") and data subject requests (access,
//! erasure, objection, with legal deadlines).
//!
//! Everything here works through the store seams of `mia-core`, so it runs the same on
//! [`MemoryStore`](mia_core::MemoryStore), `SqliteStore` and `PostgresStore`. The agent writes
//! the log on its own (every policy decision, consent change, review decision and campaign
//! state change); hosts read and verify it here.
//!
//! | piece | what it does |
//! |---|---|
//! | [`AuditLog`] | appends (an [`AuditTrail`](mia_core::AuditTrail) for the agent), signs checkpoints every N entries, verifies, explains a send |
//! | [`verify_log`] | checks the chain and every checkpoint; [`AuditReport`] names the first bad entry |
//! | [`CheckpointSigner`], [`CheckpointKey`] | ed25519 keys for checkpoints (the secret never shows in `Debug`) |
//! | [`merkle`] | RFC 6962 Merkle trees over entry hashes |
//! | [`prove_inclusion`], [`verify_inclusion_proof`] | proof that an entry is in a signed checkpoint's tree, checked without the database; [`prove_consistency`] for two sizes |
//! | [`SubjectRights`] | access/export, rectification, erasure, restriction of processing (and lifting it), objection, request tracking; [`deadline`] |
//! | [`MarketingRestrictions`] | a send policy: restrictions and objections stop marketing, a minimum age, do-not-sell and GPC |
//! | [`RetentionPolicy`], [`purge`] | retention per data category and the purge job, with a report |
//! | [`RecordsOfProcessing`] | GDPR art. 30 records as JSON |
//! | [`PrivacyScan`] | the data privacy scanner: personal data in stored free text where the configuration does not allow it |

mod audit;
mod dsr;
pub mod merkle;
mod privacy;
mod proof;
mod restrictions;
mod retention;

pub use audit::{
    AuditLog, AuditProblem, AuditReport, CheckpointKey, CheckpointSigner, ProblemKind,
    SendExplanation, checkpoint_message, verify_log,
};
pub use dsr::{
    Assignment, Erasure, OBJECTION_METHOD, Objection, Rectification, Rectified, Restriction,
    SubjectExport, SubjectRights, deadline, extended_deadline,
};
pub use privacy::{PrivacyFinding, PrivacyReport, PrivacyScan};
pub use proof::{
    ConsistencyProof, INCLUSION_FORMAT, InclusionProof, prove_consistency, prove_inclusion,
    verify_consistency_proof, verify_inclusion_proof,
};
pub use restrictions::{
    DO_NOT_SELL, MINIMUM_AGE, MarketingRestrictions, OBJECTION, RESTRICTED,
    RESTRICTION_LIFTED_METHOD, RESTRICTION_METHOD, RESTRICTION_PURPOSE, restricted_since,
};
pub use retention::{
    Controller, MIN_JOB_RETENTION, ProcessingActivity, PurgeReport, RecordsOfProcessing,
    RetentionPolicy, purge,
};
