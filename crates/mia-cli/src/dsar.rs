//! `mia dsar export|erase|object|rectify|restrict|unrestrict|why|list`: data subject requests
//! against a shared database, each tracked with its legal deadline and recorded in the audit
//! log, and the answer to "why did this contact get this message?".

use std::collections::BTreeMap;

use clap::{Args, Subcommand, ValueEnum};
use mia::safety::compliance::{AuditLog, Rectification, SubjectRights};
use mia::{CampaignId, ContactId, Error, Jurisdiction, Result};

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
    /// A rectification request: corrects the contact's stored data and prints the fields that
    /// changed (the audit log gets their names only).
    Rectify {
        /// The contact id.
        #[arg(long)]
        subject: String,
        /// The law the request is answered under.
        #[arg(long, value_enum, default_value_t = Law::Gdpr)]
        law: Law,
        /// A new locale (BCP 47); an empty value removes it.
        #[arg(long)]
        locale: Option<String>,
        /// A new IANA time zone.
        #[arg(long)]
        time_zone: Option<String>,
        /// An attribute to set, `NAME=VALUE` (VALUE is JSON, or else text); repeatable.
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
        /// An attribute to remove; repeatable.
        #[arg(long = "unset", value_name = "NAME")]
        unset: Vec<String>,
    },
    /// A request to restrict processing (GDPR art. 18): no campaign message while it lasts,
    /// queued ones are cancelled; the data stays stored.
    Restrict {
        /// The contact id.
        #[arg(long)]
        subject: String,
        /// The law the request is answered under.
        #[arg(long, value_enum, default_value_t = Law::Gdpr)]
        law: Law,
    },
    /// A request to lift a restriction of processing.
    Unrestrict {
        /// The contact id.
        #[arg(long)]
        subject: String,
        /// The law the request is answered under.
        #[arg(long, value_enum, default_value_t = Law::Gdpr)]
        law: Law,
    },
    /// Why did this contact get (or not get) this campaign's message: the job, the consent
    /// record in force and every policy decision from the audit log, as JSON.
    Why {
        /// The contact id.
        #[arg(long)]
        subject: String,
        /// The campaign id.
        #[arg(long)]
        campaign: String,
    },
    /// Every request with its state and deadline (JSON lines).
    List,
}

/// The rectification the flags of `mia dsar rectify` ask for.
fn rectification(
    locale: &Option<String>,
    time_zone: &Option<String>,
    set: &[String],
    unset: &[String],
) -> Result<Rectification> {
    let mut attributes = BTreeMap::new();
    for pair in set {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| Error::invalid(format!("--set wants NAME=VALUE, got {pair:?}")))?;
        let value = serde_json::from_str(value)
            .unwrap_or_else(|_| serde_json::Value::String(value.to_owned()));
        attributes.insert(name.trim().to_owned(), value);
    }
    for name in unset {
        let name = name.trim().to_owned();
        if attributes.contains_key(&name) {
            return Err(Error::invalid(format!(
                "attribute {name:?} is both set and unset: say one"
            )));
        }
        attributes.insert(name, serde_json::Value::Null);
    }
    Ok(Rectification {
        locale: locale.clone(),
        time_zone: time_zone.clone(),
        attributes,
    })
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
        DsarCommand::Rectify {
            subject,
            law,
            locale,
            time_zone,
            set,
            unset,
        } => {
            let fix = rectification(locale, time_zone, set, unset)?;
            let done = rights
                .rectify(&ContactId::new(subject.as_str()), &fix, (*law).into(), now)
                .await?;
            println!("{}", json(&done)?);
        }
        DsarCommand::Restrict { subject, law } => {
            let done = rights
                .restrict(&ContactId::new(subject.as_str()), (*law).into(), now)
                .await?;
            println!("{}", json(&done)?);
        }
        DsarCommand::Unrestrict { subject, law } => {
            let done = rights
                .lift_restriction(&ContactId::new(subject.as_str()), (*law).into(), now)
                .await?;
            println!("{}", json(&done)?);
        }
        DsarCommand::Why { subject, campaign } => {
            let log = AuditLog::new(store.clone());
            let why = log
                .explain_campaign(
                    &ContactId::new(subject.as_str()),
                    &CampaignId::new(campaign.as_str()),
                )
                .await?;
            println!("{}", json(&why)?);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attribute_both_set_and_unset_is_refused() {
        let err = rectification(&None, &None, &["plan=pro".into()], &["plan".into()]).unwrap_err();
        assert!(err.to_string().contains("both set and unset"), "{err}");
        let ok = rectification(&None, &None, &["plan=pro".into()], &["city".into()]).unwrap();
        assert_eq!(ok.attributes["plan"], serde_json::json!("pro"));
        assert_eq!(ok.attributes["city"], serde_json::Value::Null);
    }
}
