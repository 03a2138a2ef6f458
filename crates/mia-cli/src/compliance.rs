//! `mia privacy scan`, `mia retention purge` and `mia compliance records`: the data privacy
//! scanner over a database's free text, the retention purge job, and the records of processing.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use jiff::SignedDuration;
use mia::safety::PiiKind;
use mia::safety::compliance::{
    Controller, PrivacyScan, RecordsOfProcessing, RetentionPolicy, purge,
};
use mia::{Error, Result};
use serde::{Deserialize, Deserializer};

use crate::ops::DbArgs;

/// `mia privacy <command>`.
#[derive(Args, Debug)]
pub(crate) struct PrivacyArgs {
    #[command(subcommand)]
    command: PrivacyCommand,
}

#[derive(Subcommand, Debug)]
enum PrivacyCommand {
    /// Scans the free text the database keeps (contact attributes, consent evidence, job
    /// outcomes, event reasons, review and request notes, the audit log) for personal data and
    /// reports where it sits that the configuration does not allow: table, record, field and
    /// kind, never the value. Fails (exit 1) when it finds any.
    ///
    /// By default contacts may keep e-mail addresses and phone numbers in their attributes and
    /// nothing else is allowed anywhere.
    Scan {
        #[command(flatten)]
        db: DbArgs,
        /// The whole report as JSON (otherwise one line per finding).
        #[arg(long)]
        json: bool,
        /// Also allow kinds in fields: `contacts.attributes.notes=EMAIL,PHONE` (a trailing `*`
        /// matches any rest of the path); repeatable.
        #[arg(long = "allow", value_name = "FIELD=KINDS")]
        allow: Vec<String>,
        /// Allow nothing by default (contact attributes included).
        #[arg(long)]
        strict: bool,
    },
}

/// `mia retention <command>`.
#[derive(Args, Debug)]
pub(crate) struct RetentionArgs {
    #[command(subcommand)]
    command: RetentionCommand,
}

#[derive(Subcommand, Debug)]
enum RetentionCommand {
    /// Enforces a retention policy: deletes old events and old jobs of closed campaigns,
    /// erases inactive contacts without consent, records it in the audit log, and prints what
    /// it removed as JSON.
    Purge {
        #[command(flatten)]
        db: DbArgs,
        /// The policy as JSON: `{"events_days": 396, "jobs_days": 396,
        /// "inactive_contacts_days": 730}`; a missing field takes that default, `null` keeps
        /// the data until erased.
        #[arg(long)]
        policy: PathBuf,
    },
}

/// `mia compliance <command>`.
#[derive(Args, Debug)]
pub(crate) struct ComplianceArgs {
    #[command(subcommand)]
    command: ComplianceCommand,
}

#[derive(Subcommand, Debug)]
enum ComplianceCommand {
    /// Prints the records of processing (GDPR art. 30) of what mia processes, as JSON.
    Records {
        /// The controller's name.
        #[arg(long)]
        controller: String,
        /// How to reach the controller.
        #[arg(long)]
        contact: String,
        /// The data protection officer, if any.
        #[arg(long)]
        dpo: Option<String>,
        /// The retention policy (as for `mia retention purge`); the defaults otherwise.
        #[arg(long)]
        policy: Option<PathBuf>,
    },
}

/// A retention policy file, in days.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default, deserialize_with = "present")]
    events_days: Option<Option<u32>>,
    #[serde(default, deserialize_with = "present")]
    jobs_days: Option<Option<u32>>,
    #[serde(default, deserialize_with = "present")]
    inactive_contacts_days: Option<Option<u32>>,
}

/// A field that is there: `Some(None)` for `null`, told apart from a missing one (`None`).
fn present<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<Option<u32>>, D::Error> {
    Option::<u32>::deserialize(d).map(Some)
}

fn days(field: Option<Option<u32>>, default: Option<SignedDuration>) -> Option<SignedDuration> {
    match field {
        None => default,
        Some(None) => None,
        Some(Some(n)) => Some(SignedDuration::from_hours(i64::from(n) * 24)),
    }
}

/// Reads and checks a policy file.
fn read_policy(path: &Path) -> Result<RetentionPolicy> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::invalid(format!("cannot read the policy {}: {e}", path.display())))?;
    let file: PolicyFile = serde_json::from_str(&text)
        .map_err(|e| Error::invalid(format!("the policy {}: {e}", path.display())))?;
    let defaults = RetentionPolicy::default();
    let policy = RetentionPolicy {
        events: days(file.events_days, defaults.events),
        jobs: days(file.jobs_days, defaults.jobs),
        inactive_contacts: days(file.inactive_contacts_days, defaults.inactive_contacts),
    };
    policy.validate()?;
    Ok(policy)
}

fn json(value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string_pretty(value)
        .map_err(|e| Error::invalid(format!("not serialisable: {e}")))
}

/// The scanner the flags ask for.
fn scanner(allow: &[String], strict: bool) -> Result<PrivacyScan> {
    let mut scan = PrivacyScan::new()?;
    if strict {
        scan = scan.forbid("contacts.attributes.*");
    }
    for rule in allow {
        let (field, kinds) = rule
            .split_once('=')
            .ok_or_else(|| Error::invalid(format!("--allow wants FIELD=KINDS, got {rule:?}")))?;
        let kinds = kinds
            .split(',')
            .map(|k| k.parse::<PiiKind>().map_err(Error::from))
            .collect::<Result<Vec<_>>>()?;
        scan = scan.allow(field.trim(), kinds);
    }
    Ok(scan)
}

/// `mia privacy ...`.
#[allow(clippy::print_stdout)]
pub(crate) async fn privacy(args: &PrivacyArgs) -> Result<()> {
    match &args.command {
        PrivacyCommand::Scan {
            db,
            json: as_json,
            allow,
            strict,
        } => {
            let scan = scanner(allow, *strict)?;
            let store = db.open().await?;
            let report = scan.scan(&*store, jiff::Timestamp::now()).await?;
            if *as_json {
                println!("{}", json(&report)?);
            } else {
                for f in &report.findings {
                    println!(
                        "{}\t{}\t{}\t{} x{}",
                        f.table, f.record, f.field, f.kind, f.count
                    );
                }
            }
            match report.findings.len() {
                0 => Ok(()),
                n => Err(Error::invalid(format!(
                    "{n} places hold personal data the configuration does not allow ({} records, \
                     {} fields scanned)",
                    report.records, report.fields
                ))),
            }
        }
    }
}

/// `mia retention ...`.
#[allow(clippy::print_stdout)]
pub(crate) async fn retention(args: &RetentionArgs) -> Result<()> {
    match &args.command {
        RetentionCommand::Purge { db, policy } => {
            let policy = read_policy(policy)?;
            let store = db.open().await?;
            let report = purge(&store, None, &policy, jiff::Timestamp::now()).await?;
            println!("{}", json(&report)?);
            Ok(())
        }
    }
}

/// `mia compliance ...`.
#[allow(clippy::print_stdout)]
pub(crate) fn compliance(args: &ComplianceArgs) -> Result<()> {
    match &args.command {
        ComplianceCommand::Records {
            controller,
            contact,
            dpo,
            policy,
        } => {
            let policy = match policy {
                Some(path) => read_policy(path)?,
                None => RetentionPolicy::default(),
            };
            let controller = Controller {
                name: controller.clone(),
                contact: contact.clone(),
                dpo: dpo.clone(),
            };
            println!(
                "{}",
                RecordsOfProcessing::for_mia(controller, &policy).to_json()?
            );
            Ok(())
        }
    }
}
