//! `mia campaign send`: a campaign from a spec file, written, guarded and sent to the contacts
//! who consented, through the chosen transport.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use mia::safety::{ContentGuard, SendGuard};
use mia::{
    Agent, Audience, CampaignSpec, CampaignState, Clock, ContactId, Error, Purpose, Recurrence,
    Result, SendWindow, Store, SystemClock,
};
use serde::Deserialize;

use crate::dry_run::LlmChoice;
use crate::ops::{TransportArgs, json};

/// Flags of `mia campaign send`.
#[derive(Args, Debug)]
pub(crate) struct SendArgs {
    /// The campaign spec (TOML): `name`, `product`, `offer`, and optionally `url`, `purpose`,
    /// `tone`, `language`, `variants`, `audience` (contact ids; default: every contact, of whom
    /// only those with consent for the purpose get a message), `send_window` (`{ start =
    /// "09:00", end = "17:00", weekdays = ["mon", "fri"] }` on each contact's clock),
    /// `recurrence` (`{ every = "week", weekdays = ["mon"], at = "10:00", time_zone =
    /// "Europe/Berlin", count = 8 }`).
    #[arg(long)]
    spec: PathBuf,
    #[command(flatten)]
    transport: TransportArgs,
    /// Who writes the copy: `offline` (no key) or `claude` (`ANTHROPIC_API_KEY`).
    #[arg(long, value_enum, default_value_t = LlmChoice::Offline)]
    llm: LlmChoice,
    /// The Claude model (with `--llm claude`).
    #[arg(long)]
    model: Option<String>,
    /// Domains links in copy may point to (the spec's `url` domain is always allowed).
    #[arg(long = "allow-domain")]
    allow_domains: Vec<String>,
    /// Send now and wait until the outbox of this campaign is drained; otherwise the campaign
    /// is started and `mia worker` processes send it.
    #[arg(long)]
    until_done: bool,
}

/// The spec file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecFile {
    name: String,
    product: String,
    offer: String,
    url: Option<String>,
    purpose: Option<String>,
    tone: Option<String>,
    language: Option<String>,
    variants: Option<u8>,
    audience: Option<Vec<String>>,
    send_window: Option<SendWindow>,
    recurrence: Option<Recurrence>,
}

impl SpecFile {
    fn into_spec(self) -> CampaignSpec {
        let mut spec = CampaignSpec::new(self.name, self.product, self.offer);
        spec.call_to_action_url = self.url;
        if let Some(p) = self.purpose {
            spec.purpose = Purpose::new(p);
        }
        if let Some(t) = self.tone {
            spec.tone = t;
        }
        if let Some(l) = self.language {
            spec.language = l;
        }
        if let Some(v) = self.variants {
            spec.variant_count = v;
        }
        if let Some(ids) = self.audience {
            spec.audience = Audience::Contacts(ids.into_iter().map(ContactId::new).collect());
        }
        spec.send_window = self.send_window;
        spec.recurrence = self.recurrence;
        spec
    }
}

/// The registrable part of a URL's host, for the link allow-list.
fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let host = rest.split(['/', '?', '#', ':']).next()?;
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

#[allow(clippy::print_stdout)]
pub(crate) async fn send(store: Arc<dyn Store>, args: &SendArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.spec)
        .map_err(|e| Error::invalid(format!("{}: {e}", args.spec.display())))?;
    let file: SpecFile = toml::from_str(&text)
        .map_err(|e| Error::invalid(format!("{}: {e}", args.spec.display())))?;
    let spec = file.into_spec();
    spec.validate()?;
    if args.until_done && spec.recurrence.is_some() {
        return Err(Error::invalid(
            "--until-done would wait for the recurrence's last occurrence: leave it out and let \
             `mia worker` processes send each occurrence as it falls due",
        ));
    }

    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let transport = args.transport.open(clock.clone()).await?;
    let (llm, _) = crate::dry_run::provider(args.llm, args.model.as_deref())?;
    let mut content = ContentGuard::builder();
    for d in args
        .allow_domains
        .iter()
        .cloned()
        .chain(spec.call_to_action_url.as_deref().and_then(host_of))
    {
        content = content.allow_domain(d.as_str());
    }
    let agent = Agent::builder(llm, transport)
        .shared_store(store)
        .content_policy(content.build()?)
        .send_policy(SendGuard::builder().build()?)
        .build()?;
    let campaign = agent.create_campaign(spec).await?;
    match campaign.state {
        CampaignState::Approved => {}
        CampaignState::InReview => {
            println!(
                "{}",
                json(&serde_json::json!({
                    "campaign": campaign.id, "state": "in_review",
                    "next": "a reviewer decides the escalated copy; nothing is sent before that"
                }))?
            );
            return Ok(());
        }
        other => {
            return Err(Error::invalid(format!(
                "campaign {} is {other}: {}",
                campaign.id,
                campaign.state_reason.unwrap_or_default()
            )));
        }
    }
    let scheduling = agent.schedule(&campaign.id, None).await?;
    agent.start(&campaign.id).await?;
    let run = if args.until_done {
        Some(agent.run_until_idle().await?)
    } else {
        None
    };
    let status = agent.operator().status(&campaign.id).await?;
    println!(
        "{}",
        json(&serde_json::json!({
            "campaign": campaign.id,
            "scheduling": scheduling,
            "run": run,
            "status": status,
        }))?
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_files_fill_defaults_and_refuse_unknown_keys() {
        let file: SpecFile = toml::from_str(
            "name = \"Spring\"\nproduct = \"tea\"\noffer = \"20% off\"\nurl = \"https://Shop.example/tea?x=1\"\naudience = [\"a\", \"b\"]\n",
        )
        .unwrap();
        let spec = file.into_spec();
        assert_eq!(spec.variant_count, 2);
        assert_eq!(spec.purpose, Purpose::marketing());
        assert!(matches!(spec.audience, Audience::Contacts(ref ids) if ids.len() == 2));
        assert_eq!(
            host_of("https://Shop.example:443/tea?x=1").as_deref(),
            Some("shop.example")
        );
        let err = toml::from_str::<SpecFile>(
            "name = \"a\"\nproduct = \"b\"\noffer = \"c\"\nsend_to_everyone = true\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("send_to_everyone"), "{err}");
    }

    #[test]
    fn spec_files_carry_send_windows_and_recurrences() {
        let file: SpecFile = toml::from_str(
            r#"
name = "Weekly"
product = "tea"
offer = "a tip a week"
send_window = { start = "09:00", end = "17:00", weekdays = ["mon", "tue"] }
recurrence = { every = "week", weekdays = ["mon"], at = "10:00", time_zone = "Europe/Berlin", count = 8 }
"#,
        )
        .unwrap();
        let spec = file.into_spec();
        spec.validate().unwrap();
        let window = spec.send_window.unwrap();
        assert!(window.allows_day(jiff::civil::Weekday::Tuesday));
        assert!(!window.allows_day(jiff::civil::Weekday::Friday));
        let recurrence = spec.recurrence.unwrap();
        assert_eq!(recurrence.count, Some(8));
        // A bad window is refused with the reason, naming the field.
        let err = toml::from_str::<SpecFile>(
            "name = \"a\"\nproduct = \"b\"\noffer = \"c\"\nsend_window = { start = \"9am\", end = \"17:00\" }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("not a time of day"), "{err}");
    }
}
