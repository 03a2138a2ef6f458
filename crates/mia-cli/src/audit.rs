//! `mia audit verify|checkpoint|prove|verify-proof|prove-consistency|verify-consistency`: the
//! tamper-evident audit log of a shared database, and inclusion and consistency proofs a third
//! party checks without it.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use mia::safety::compliance::{
    AuditLog, CheckpointKey, CheckpointSigner, ConsistencyProof, InclusionProof, prove_consistency,
    prove_inclusion, verify_consistency_proof, verify_inclusion_proof, verify_log,
};
use mia::{Error, Result};

use crate::ops::DbArgs;

/// `mia audit <command>`.
#[derive(Args, Debug)]
pub(crate) struct AuditArgs {
    /// `postgres://user@host/db` or a SQLite file path (`sqlite:` prefix optional); every
    /// command but `verify-proof` needs it.
    #[arg(long)]
    db: Option<String>,
    /// The Postgres schema holding mia's tables.
    #[arg(long, default_value = "mia")]
    schema: String,
    #[command(subcommand)]
    command: AuditCommand,
}

impl AuditArgs {
    async fn open(&self) -> Result<std::sync::Arc<dyn mia::Store>> {
        let db = self
            .db
            .clone()
            .ok_or_else(|| Error::invalid("--db is required for this command"))?;
        DbArgs {
            db,
            schema: self.schema.clone(),
        }
        .open()
        .await
    }
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Checks the chain of every entry and every signed checkpoint; prints a JSON report and
    /// fails (exit 1) naming the first bad entry when the log was tampered with.
    Verify {
        /// A public key (64 hex digits) whose checkpoints you trust; repeat for several.
        /// Without one, checkpoints are only checked against the keys they name.
        #[arg(long = "trust")]
        trust: Vec<String>,
    },
    /// Verifies the log and signs a checkpoint of it (size and Merkle root) with the ed25519
    /// key in a file (64 hex digits); prints the checkpoint as JSON.
    Checkpoint {
        /// The file holding the signing key's 32-byte seed as hex. Keep it away from the
        /// database.
        #[arg(long)]
        key_file: PathBuf,
    },
    /// Proves that entry N is in the log: prints an RFC 6962 inclusion proof as JSON, against
    /// the newest signed checkpoint that covers the entry (or the whole log, unsigned).
    Prove {
        /// The entry's sequence number (from 1).
        #[arg(long)]
        entry: u64,
        /// Prove against the tree of the first SIZE entries instead.
        #[arg(long)]
        size: Option<u64>,
    },
    /// Checks a proof printed by `prove` without the database: the entry's hash, the path to
    /// the root and the checkpoint's signature. Fails (exit 1) saying what does not verify.
    VerifyProof {
        /// The proof (JSON); `-` reads standard input.
        #[arg(long)]
        proof: PathBuf,
        /// A public key (64 hex digits) whose checkpoints you trust (required; repeat for
        /// several): the proof must carry a checkpoint signed by one of them.
        #[arg(long = "trust")]
        trust: Vec<String>,
    },
    /// Proves that the log's first FROM entries are unchanged in its first TO entries (an
    /// RFC 6962 consistency proof, JSON): compare `old_root` and `new_root` with two signed
    /// checkpoints, then check it with `verify-consistency`.
    ProveConsistency {
        /// The earlier size (a checkpoint's size).
        #[arg(long)]
        from: u64,
        /// The later size (default: the whole log).
        #[arg(long)]
        to: Option<u64>,
    },
    /// Checks a proof printed by `prove-consistency` without the database; fails (exit 1) when
    /// the later log does not extend the earlier one.
    VerifyConsistency {
        /// The proof (JSON).
        #[arg(long)]
        proof: PathBuf,
    },
}

fn json(value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string_pretty(value)
        .map_err(|e| Error::invalid(format!("not serialisable: {e}")))
}

#[allow(clippy::print_stdout)]
pub(crate) async fn audit(args: &AuditArgs) -> Result<()> {
    match &args.command {
        AuditCommand::Verify { trust } => {
            let store = args.open().await?;
            let keys = trust
                .iter()
                .map(|k| CheckpointKey::from_hex(k))
                .collect::<Result<Vec<_>>>()?;
            let report = verify_log(&*store, &keys).await?;
            println!("{}", json(&report)?);
            match report.problem {
                None => Ok(()),
                Some(p) => Err(Error::invalid(format!(
                    "the audit log does not verify: {}",
                    p.message
                ))),
            }
        }
        AuditCommand::Checkpoint { key_file } => {
            let store = args.open().await?;
            // The key file's content is never echoed, not even in an error.
            let text = std::fs::read_to_string(key_file).map_err(|e| {
                Error::invalid(format!(
                    "cannot read the key file {}: {e}",
                    key_file.display()
                ))
            })?;
            let signer = CheckpointSigner::from_hex(&text)?;
            let log = AuditLog::new(store).with_signer(signer);
            let checkpoint = log.checkpoint(jiff::Timestamp::now()).await?;
            println!("{}", json(&checkpoint)?);
            Ok(())
        }
        AuditCommand::Prove { entry, size } => {
            let store = args.open().await?;
            let proof = prove_inclusion(&*store, *entry, *size).await?;
            println!("{}", json(&proof)?);
            Ok(())
        }
        AuditCommand::ProveConsistency { from, to } => {
            let store = args.open().await?;
            let to = match to {
                Some(to) => *to,
                None => verify_log(&*store, &[]).await?.entries,
            };
            println!("{}", json(&prove_consistency(&*store, *from, to).await?)?);
            Ok(())
        }
        AuditCommand::VerifyConsistency { proof } => {
            let text = std::fs::read_to_string(proof).map_err(|e| {
                Error::invalid(format!("cannot read the proof {}: {e}", proof.display()))
            })?;
            let proof: ConsistencyProof = serde_json::from_str(&text)
                .map_err(|e| Error::invalid(format!("not a consistency proof: {e}")))?;
            verify_consistency_proof(&proof)?;
            // The proof links two roots it names itself: it means something only for roots
            // the reader trusts (two signed checkpoints), so say so rather than "verified".
            let verdict = serde_json::json!({
                "consistent": true,
                "note": "the later log extends the earlier one; compare old_root and new_root \
                         with checkpoints signed by a key you trust",
                "old_size": proof.old_size,
                "new_size": proof.new_size,
                "old_root": proof.old_root,
                "new_root": proof.new_root,
            });
            println!("{}", json(&verdict)?);
            Ok(())
        }
        AuditCommand::VerifyProof { proof, trust } => {
            let keys = trust
                .iter()
                .map(|k| CheckpointKey::from_hex(k))
                .collect::<Result<Vec<_>>>()?;
            let text = match proof.to_str() {
                Some("-") => std::io::read_to_string(std::io::stdin())
                    .map_err(|e| Error::invalid(format!("cannot read the proof: {e}")))?,
                _ => std::fs::read_to_string(proof).map_err(|e| {
                    Error::invalid(format!("cannot read the proof {}: {e}", proof.display()))
                })?,
            };
            let proof: InclusionProof = serde_json::from_str(&text)
                .map_err(|e| Error::invalid(format!("not an inclusion proof: {e}")))?;
            let signed_at = verify_inclusion_proof(&proof, &keys)?;
            if keys.is_empty() {
                return Err(Error::invalid(
                    "the proof is consistent in itself, but anyone can build such a proof: \
                     pass --trust KEY (the log's checkpoint public key) to verify it",
                ));
            }
            let verdict = serde_json::json!({
                "verified": true,
                "entry": proof.entry.seq,
                "tree_size": proof.tree_size,
                "root": proof.root,
                "signed_by": proof.checkpoint.as_ref().map(|c| c.key_id.clone()),
                "signed_at": signed_at.map(|t| t.to_string()),
            });
            println!("{}", json(&verdict)?);
            Ok(())
        }
    }
}
