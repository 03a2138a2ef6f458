//! Run with: `cargo run --example quickstart --features full`
//!
//! The whole pipeline as library code, offline and in virtual time: 200 contacts (every other
//! one opted in), copy from the offline copywriter, the safety guards, a two-variant split,
//! the simulated Telegram, and a report. No keys, no network.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use mia::analytics::{CampaignReport, Collector};
use mia::experiments::Splitter;
use mia::safety::{ContentGuard, SendGuard};
use mia::telegram::{SimConfig, SimTelegram};
use mia::*;

/// Runs a campaign to 200 contacts and returns its report.
pub(crate) async fn run(seed: u64) -> Result<CampaignReport> {
    let start: Timestamp = "2026-12-01T12:00:00Z"
        .parse()
        .map_err(|e| Error::invalid(format!("start time: {e}")))?;
    let clock = Arc::new(SimClock::starting_at(start));
    let telegram = SimTelegram::new(SimConfig::seeded(seed), clock.clone())?;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let sink: Arc<dyn EventSink> = Arc::new(Collector::new(store.clone()));
    let agent = Agent::builder(TemplateProvider::new(), telegram)
        .shared_store(store.clone())
        .shared_event_sink(sink)
        .content_policy(
            ContentGuard::builder()
                .allow_domain("shop.example")
                .build()?,
        )
        .send_policy(SendGuard::builder().build()?)
        .allocator(Splitter::new().with_salt("quickstart"))
        .clock(clock.clone())
        .seed(seed)
        .build()?;

    let zones = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC"];
    let mut contacts = Vec::new();
    let mut consents = Vec::new();
    for i in 0..200i64 {
        let id = format!("user-{i}");
        let zone = zones[i as usize % zones.len()];
        contacts.push(Contact::new(
            id.as_str(),
            TelegramPeer::user(1_000 + i),
            zone,
            start,
        )?);
        if i % 2 == 0 {
            let evidence = Evidence::new("telegram_start", format!("payload=marketing update={i}"));
            let at = start - SignedDuration::from_hours(24);
            consents.push(ConsentRecord::grant(
                id.as_str(),
                Purpose::marketing(),
                evidence,
                "v1",
                at,
            ));
        }
    }
    agent.import_contacts(&contacts).await?;
    agent.record_consent(&consents).await?;

    let mut spec = CampaignSpec::new(
        "Winter sale",
        "the winter collection",
        "25% off until Sunday",
    );
    spec.call_to_action_url = Some("https://shop.example/sale".into());
    let campaign = agent.create_campaign(spec).await?;
    agent.schedule(&campaign.id, None).await?;
    agent.start(&campaign.id).await?;
    agent.run_until_idle().await?;
    // Collect reads, clicks and purchases for two more (virtual) days.
    agent
        .process_inbound_until(clock.now() + SignedDuration::from_hours(48))
        .await?;
    CampaignReport::build(store.as_ref(), &campaign.id).await
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> Result<()> {
    let report = run(7).await?;
    #[allow(clippy::print_stdout)]
    {
        println!(
            "{} of {} contacts got a message; skipped: {:?}",
            report.sent, report.audience, report.skipped
        );
        for (variant, v) in &report.variants {
            println!(
                "variant {variant}: sent {}, read {}, clicked {}, bought {}",
                v.sent, v.read, v.clicked, v.converted
            );
        }
    }
    Ok(())
}
