//! `mia report`: one campaign's report from a store, as JSON and as a self-contained HTML page.

use std::path::{Path, PathBuf};

use clap::Args;
use std::collections::HashMap;

use jiff::tz::TimeZone;
use mia::analytics::HtmlReport;
use mia::analytics::window::{Granularity, Retention, WindowConfig, Windows, ZoneRule};
use mia::{CampaignId, Error, Event, Result, Store};

use crate::ops::DbArgs;

/// `mia report --db PATH --campaign ID [--html PATH] [--json PATH] [--by minute|hour|day --tz ZONE]`.
#[derive(Args, Debug)]
pub(crate) struct ReportArgs {
    #[command(flatten)]
    db: DbArgs,
    /// The campaign to report on.
    #[arg(long)]
    campaign: String,
    /// Also write the report as a self-contained HTML page (inline SVG charts) here.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Write the JSON report here instead of printing it.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Instead of the report, the campaign's activity per minute, hour or day: counts per
    /// variant, journey step and event kind, with revenue, in tumbling windows (`steps` names
    /// the step indexes).
    #[arg(long, value_name = "minute|hour|day")]
    by: Option<Granularity>,
    /// Whose wall clock the windows follow: an IANA zone such as `Europe/Berlin` (default UTC),
    /// or `contact` for each contact's own zone.
    #[arg(long, requires = "by", default_value = "UTC")]
    tz: String,
}

/// Counts the campaign's jobs and events in the store and writes the report.
#[allow(clippy::print_stdout)]
pub(crate) async fn report(args: &ReportArgs) -> Result<()> {
    let store = args.db.open().await?;
    if let Some(by) = args.by {
        let json = activity(store.as_ref(), &args.campaign, by, &args.tz).await?;
        match &args.json {
            Some(path) => write(path, &json)?,
            None => println!("{json}"),
        }
        return Ok(());
    }
    let page = HtmlReport::build(store.as_ref(), &CampaignId::new(args.campaign.clone())).await?;
    let json = serde_json::to_string_pretty(page.report())
        .map_err(|e| Error::invalid(format!("report is not serialisable: {e}")))?;
    match &args.json {
        Some(path) => write(path, &json)?,
        None => println!("{json}"),
    }
    if let Some(path) = &args.html {
        write(path, &page.render())?;
    }
    Ok(())
}

/// Events read at a time for `--by`.
const EVENT_PAGE: usize = 10_000;

/// The campaign's events in tumbling windows, as pretty JSON.
async fn activity(store: &dyn Store, campaign: &str, by: Granularity, tz: &str) -> Result<String> {
    let id = CampaignId::new(campaign);
    let Some(found) = store.campaign(&id).await? else {
        return Err(Error::not_found("campaign", campaign));
    };
    // Counts name steps by index; a journey's names say which index is which.
    let steps: Vec<&str> = match &found.spec.journey {
        Some(journey) => journey.steps.iter().map(|s| s.name.as_str()).collect(),
        None => vec!["message"],
    };
    let zone = |name: &str| {
        TimeZone::get(name).map_err(|e| Error::invalid(format!("unknown time zone {name:?}: {e}")))
    };
    let rule = if tz == "contact" {
        let mut zones = HashMap::new();
        for c in store.contacts().await? {
            // Zones are validated on import; an unknown one falls back to UTC like a missing one.
            if let Ok(z) = TimeZone::get(&c.time_zone) {
                zones.insert(c.id, z);
            }
        }
        ZoneRule::contacts(zones, TimeZone::UTC)
    } else {
        ZoneRule::Campaign(zone(tz)?)
    };
    // Keep every window: a report covers the campaign's whole life.
    let all = Retention {
        minutes: usize::MAX,
        hours: usize::MAX,
        days: usize::MAX,
    };
    let mut windows = Windows::new(WindowConfig::new(rule).retention(all));
    // A page of events at a time: the windows hold counts, never the events.
    let mut events = 0;
    let mut last: Option<Event> = None;
    loop {
        let page = store
            .campaign_events_page(&id, last.as_ref(), EVENT_PAGE)
            .await?;
        for e in &page {
            windows.add(e);
        }
        events += page.len();
        if page.len() != EVENT_PAGE {
            break;
        }
        last = page.into_iter().next_back();
    }
    let out = serde_json::json!({
        "campaign": campaign,
        "by": by,
        "tz": tz,
        "events": events,
        "steps": steps,
        "windows": windows.tumbling(&id, by),
    });
    serde_json::to_string_pretty(&out)
        .map_err(|e| Error::invalid(format!("windows are not serialisable: {e}")))
}

/// Writes `text` to `path`, creating its folder.
pub(crate) fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::invalid(format!("cannot create {}: {e}", dir.display())))?;
    }
    std::fs::write(path, text)
        .map_err(|e| Error::invalid(format!("cannot write {}: {e}", path.display())))
}
