//! `mia dsar export|erase|object`: data subject requests against a shared database, each
//! tracked with its legal deadline and recorded in the audit log.

use clap::{Args, Subcommand, ValueEnum};
use mia::safety::compliance::SubjectRights;
use mia::{ContactId, Error, Jurisdiction, Result};

use crate::ops::DbArgs;

/// `mia dsar <command>`.
#[derive(Args, Debug)]
pub(crate) struct DsarArgs {
    #[command(flatten)]
    db: DbArgs,
    #[command(subcommand)]
    command: DsarCommand,
}

/// The law a request is answered under.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Law {
    /// One calendar month.
    Gdpr,
    /// 45 days.
    Ccpa,
}

impl From<Law> for Jurisdiction {
    fn from(law: Law) -> Self {
        match law {
            Law::Gdpr => Jurisdiction::Gdpr,
            Law::Ccpa => Jurisdiction::Ccpa,
        }
    }
}

#[derive(Subcommand, Debug)]
enum DsarCommand {
    /// An access request: prints everything stored about the subject as JSON (contact,
    /// consents, messages, events, experiment assignments, requests, audit entries).
    Export {
        /// The contact id.
        #[arg(long)]
        subject: String,
        /// The law the request is answered under.
        #[arg(long, value_enum, default_value_t = Law::Gdpr)]
        law: Law,
    },
    /// An erasure request: deletes the contact and pseudonymises their rows everywhere, so
    /// aggregates and the audit log stay valid; prints what changed.
    Erase {
        /// The contact id.
        #[arg(long)]
        subject: String,
        /// The law the request is answered under.
        #[arg(long, value_enum, default_value_t = Law::Gdpr)]
        law: Law,
    },
    /// An objection to direct marketing: withdraws every marketing purpose and cancels queued
    /// messages.
    Object {
        /// The contact id.
        #[arg(long)]
        subject: String,
        /// The law the request is answered under.
        #[arg(long, value_enum, default_value_t = Law::Gdpr)]
        law: Law,
    },
    /// Every request with its state and deadline (JSON lines).
    List,
}

fn json(value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string_pretty(value)
        .map_err(|e| Error::invalid(format!("not serialisable: {e}")))
}

#[allow(clippy::print_stdout)]
pub(crate) async fn dsar(args: &DsarArgs) -> Result<()> {
    let store = args.db.open().await?;
    let rights = SubjectRights::new(store.clone()).with_actor("cli");
    let now = jiff::Timestamp::now();
    match &args.command {
        DsarCommand::Export { subject, law } => {
            let (_, export) = rights
                .access(&ContactId::new(subject.as_str()), (*law).into(), now)
                .await?;
            println!("{}", json(&export)?);
        }
        DsarCommand::Erase { subject, law } => {
            let erased = rights
                .erase(&ContactId::new(subject.as_str()), (*law).into(), now)
                .await?;
            println!("{}", json(&erased)?);
        }
        DsarCommand::Object { subject, law } => {
            let objection = rights
                .object(&ContactId::new(subject.as_str()), (*law).into(), now)
                .await?;
            println!("{}", json(&objection)?);
        }
        DsarCommand::List => {
            for request in store.subject_requests().await? {
                println!(
                    "{}",
                    serde_json::to_string(&request).map_err(|e| Error::invalid(e.to_string()))?
                );
            }
        }
    }
    Ok(())
}
