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
//! | [`SubjectRights`] | access/export, erasure, objection, request tracking; [`deadline`] |
//! | [`MarketingRestrictions`] | a send policy: objections are absolute, a minimum age, do-not-sell and GPC |
//! | [`RetentionPolicy`], [`purge`] | retention per data category and the purge job, with a report |
//! | [`RecordsOfProcessing`] | GDPR art. 30 records as JSON |

mod audit;
mod dsr;
pub mod merkle;
mod restrictions;
mod retention;

pub use audit::{
    AuditLog, AuditProblem, AuditReport, CheckpointKey, CheckpointSigner, ProblemKind,
    SendExplanation, checkpoint_message, verify_log,
};
pub use dsr::{
    Assignment, Erasure, OBJECTION_METHOD, Objection, SubjectExport, SubjectRights, deadline,
    extended_deadline,
};
pub use restrictions::{DO_NOT_SELL, MINIMUM_AGE, MarketingRestrictions, OBJECTION};
pub use retention::{
    Controller, MIN_JOB_RETENTION, ProcessingActivity, PurgeReport, RecordsOfProcessing,
    RetentionPolicy, purge,
};
