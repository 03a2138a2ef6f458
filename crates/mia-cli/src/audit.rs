//! `mia audit verify|checkpoint`: the tamper-evident audit log of a shared database.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use mia::safety::compliance::{AuditLog, CheckpointKey, CheckpointSigner, verify_log};
use mia::{Error, Result};

use crate::ops::DbArgs;

/// `mia audit <command>`.
#[derive(Args, Debug)]
pub(crate) struct AuditArgs {
    #[command(flatten)]
    db: DbArgs,
    #[command(subcommand)]
    command: AuditCommand,
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
}

fn json(value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string_pretty(value)
        .map_err(|e| Error::invalid(format!("not serialisable: {e}")))
}

#[allow(clippy::print_stdout)]
pub(crate) async fn audit(args: &AuditArgs) -> Result<()> {
    let store = args.db.open().await?;
    match &args.command {
        AuditCommand::Verify { trust } => {
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
    }
}
