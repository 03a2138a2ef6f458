//! `mia report`: one campaign's report from a store, as JSON and as a self-contained HTML page.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use clap::Args;
use jiff::tz::TimeZone;
use mia::analytics::HtmlReport;
use mia::analytics::window::{Granularity, Retention, WindowConfig, Windows, ZoneRule};
use mia::{CampaignId, ContactId, Error, Event, Result, Store};

use crate::ops::DbArgs;

/// `mia report --db PATH --campaign ID [--html PATH] [--json PATH]
/// [--by minute|hour|day --tz ZONE]`.
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
    let zones = ContactZones::default();
    activity_paged(store, campaign, by, tz, &zones, EVENT_PAGE).await
}

/// [`activity`], reading `page` events at a time and, with `tz` `contact`, learning the zones
/// of their contacts into `zones`.
async fn activity_paged(
    store: &dyn Store,
    campaign: &str,
    by: Granularity,
    tz: &str,
    zones: &ContactZones,
    page: usize,
) -> Result<String> {
    let id = CampaignId::new(campaign);
    let Some(found) = store.campaign(&id).await? else {
        return Err(Error::not_found("campaign", campaign));
    };
    // Counts name steps by index; a journey's names say which index is which.
    let steps: Vec<&str> = match &found.spec.journey {
        Some(journey) => journey.steps.iter().map(|s| s.name.as_str()).collect(),
        None => vec!["message"],
    };
    let (rule, zones) = if tz == "contact" {
        (zones.rule(), Some(zones))
    } else {
        let zone = TimeZone::get(tz)
            .map_err(|e| Error::invalid(format!("unknown time zone {tz:?}: {e}")))?;
        (ZoneRule::Campaign(zone), None)
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
        let found = store.campaign_events_page(&id, last.as_ref(), page).await?;
        if let Some(zones) = &zones {
            zones.learn(store, &found).await?;
        }
        for e in &found {
            windows.add(e);
        }
        events += found.len();
        if found.len() != page {
            break;
        }
        last = found.into_iter().next_back();
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

/// The time zones of the contacts whose events `--tz contact` has read so far: each page's new
/// contacts are read with one `contacts_by_id` before its events are counted, so a report
/// reads the contacts it needs, not the whole contact store.
#[derive(Clone, Default)]
struct ContactZones(Arc<Mutex<HashMap<ContactId, Option<TimeZone>>>>);

impl ContactZones {
    /// The map, which a panic elsewhere cannot leave half-written (one insert at a time).
    fn map(&self) -> MutexGuard<'_, HashMap<ContactId, Option<TimeZone>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Each contact's own zone from this map, UTC for a contact without one (an unknown zone,
    /// no contact record, or an erased one).
    fn rule(&self) -> ZoneRule {
        let zones = self.clone();
        ZoneRule::Contact {
            lookup: Arc::new(move |c| zones.map().get(c).cloned().flatten()),
            fallback: TimeZone::UTC,
        }
    }

    /// Reads the zones of the contacts of `events` that it has not seen yet.
    async fn learn(&self, store: &dyn Store, events: &[Event]) -> Result<()> {
        let new: Vec<ContactId> = {
            let known = self.map();
            let unseen: HashSet<&ContactId> = events
                .iter()
                .map(|e| &e.contact)
                .filter(|c| !known.contains_key(*c))
                .collect();
            unseen.into_iter().cloned().collect()
        };
        if new.is_empty() {
            return Ok(());
        }
        let found = store.contacts_by_id(&new).await?;
        let mut known = self.map();
        // A contact the store does not know is remembered as zoneless, so it is asked once.
        known.extend(new.into_iter().map(|id| (id, None)));
        for c in found {
            // Zones are validated on import; an unknown one falls back to UTC like a missing one.
            known.insert(c.id, TimeZone::get(&c.time_zone).ok());
        }
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use mia::{
        Campaign, CampaignSpec, CampaignStore, Contact, ContactStore, EventId, EventKind,
        EventStore, MemoryStore, TelegramPeer,
    };

    use super::*;

    /// A sent event of `contact` in campaign `c` at `at`.
    fn sent(n: u32, contact: &str, at: &str) -> Event {
        Event {
            id: EventId::derived("report-test", &n.to_string()),
            at: at.parse().unwrap(),
            contact: ContactId::new(contact),
            campaign: Some(CampaignId::new("c")),
            variant: None,
            step: Some(0),
            kind: EventKind::Sent,
        }
    }

    /// The day windows' starts and the sends in each.
    fn days(json: &str) -> Vec<(String, u64)> {
        let out: serde_json::Value = serde_json::from_str(json).unwrap();
        out["windows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                let sends = w["counts"]["counts"].as_array().unwrap();
                let count = sends.iter().map(|r| r["count"].as_u64().unwrap()).sum();
                (w["start"].as_str().unwrap().to_owned(), count)
            })
            .collect()
    }

    #[tokio::test]
    async fn contact_days_follow_each_contacts_zone_across_pages() {
        let store = MemoryStore::new();
        let t0: jiff::Timestamp = "2026-06-01T00:00:00Z".parse().unwrap();
        let spec = CampaignSpec::new("Report", "tea", "20% off");
        store
            .insert_campaign(&Campaign::draft(CampaignId::new("c"), spec, t0))
            .await
            .unwrap();
        let contact = |id: &str, peer: i64, zone: &str| {
            Contact::new(id, TelegramPeer::user(peer), zone, t0).unwrap()
        };
        store
            .upsert_contacts(&[
                // UTC+14 and UTC-11: noon UTC is the next day in the east, the same in the west.
                contact("east", 1, "Pacific/Kiritimati"),
                contact("west", 2, "Pacific/Pago_Pago"),
                contact("bystander", 3, "Asia/Tokyo"),
            ])
            .await
            .unwrap();
        // "ghost" has events and no contact record: UTC.
        let events = [
            sent(1, "east", "2026-06-01T12:00:00Z"),
            sent(2, "west", "2026-06-01T12:00:01Z"),
            sent(3, "ghost", "2026-06-01T12:00:02Z"),
            sent(4, "east", "2026-06-01T12:00:03Z"),
            sent(5, "west", "2026-06-01T12:00:04Z"),
        ];
        store.append_events(&events).await.unwrap();
        let want = vec![
            ("2026-06-01T00:00:00".to_owned(), 3),
            ("2026-06-02T00:00:00".to_owned(), 2),
        ];
        let zone = |name: &str| Some(TimeZone::get(name).unwrap());
        for page in [1, 2, 3, 5, EVENT_PAGE] {
            let zones = ContactZones::default();
            let json = activity_paged(&store, "c", Granularity::Day, "contact", &zones, page)
                .await
                .unwrap();
            assert_eq!(days(&json), want, "pages of {page}");
            // The contacts with events, read once each; not the bystander.
            let learnt: HashMap<ContactId, Option<TimeZone>> = zones.map().clone();
            let expected = HashMap::from([
                (ContactId::new("east"), zone("Pacific/Kiritimati")),
                (ContactId::new("west"), zone("Pacific/Pago_Pago")),
                (ContactId::new("ghost"), None),
            ]);
            assert_eq!(learnt, expected, "pages of {page}");
        }
        // On one clock, every send is on the same day, and no contact is read.
        let zones = ContactZones::default();
        let json = activity_paged(&store, "c", Granularity::Day, "UTC", &zones, 2)
            .await
            .unwrap();
        assert!(zones.map().is_empty());
        assert_eq!(days(&json), [("2026-06-01T00:00:00".to_owned(), 5)]);
    }

    #[tokio::test]
    async fn contact_zones_are_read_once_for_the_contacts_with_events() {
        let store = MemoryStore::new();
        let t0: jiff::Timestamp = "2026-06-01T00:00:00Z".parse().unwrap();
        store
            .upsert_contacts(&[
                Contact::new("a", TelegramPeer::user(1), "Asia/Tokyo", t0).unwrap(),
                Contact::new("c", TelegramPeer::user(3), "Europe/Oslo", t0).unwrap(),
            ])
            .await
            .unwrap();
        let zones = ContactZones::default();
        let page = [
            sent(1, "a", "2026-06-01T12:00:00Z"),
            sent(2, "b", "2026-06-01T12:00:01Z"),
        ];
        zones.learn(&store, &page).await.unwrap();
        let known = zones.map().clone();
        assert_eq!(
            known.len(),
            2,
            "the two contacts with events (one unknown), not the one without"
        );
        assert_eq!(
            known[&ContactId::new("a")],
            Some(TimeZone::get("Asia/Tokyo").unwrap())
        );
        assert_eq!(known[&ContactId::new("b")], None);
        // Once seen, a contact is not asked again, even when the store changed meanwhile.
        store
            .upsert_contacts(&[
                Contact::new("b", TelegramPeer::user(2), "Europe/Paris", t0).unwrap()
            ])
            .await
            .unwrap();
        zones.learn(&store, &page).await.unwrap();
        assert_eq!(zones.map()[&ContactId::new("b")], None);
    }
}
