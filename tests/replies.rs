//! Replies that quote nothing are credited to the latest campaign message within the reply
//! window, so reply rates, journeys and opt-outs per campaign see them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use mia::telegram::{SimConfig, SimTelegram};
use mia::*;

fn noon() -> Timestamp {
    "2026-12-01T12:00:00Z".parse().unwrap()
}

struct World {
    agent: Agent,
    telegram: SimTelegram,
    store: Arc<dyn Store>,
    everyone: Vec<Contact>,
    campaign: CampaignId,
}

/// Four consented contacts got one campaign message each at noon.
async fn sent(window: Option<Duration>) -> World {
    let clock = Arc::new(SimClock::starting_at(noon()));
    let mut config = SimConfig {
        deactivated_share: 0.0,
        blocked_share: 0.0,
        privacy_share: 0.0,
        ..SimConfig::seeded(5)
    };
    config.behaviour.read = 0.0;
    let telegram = SimTelegram::new(config, clock.clone()).unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let mut builder = Agent::builder(TemplateProvider::new(), telegram.clone())
        .shared_store(store.clone())
        .permissive_policies()
        .clock(clock.clone())
        .seed(9);
    if let Some(window) = window {
        builder = builder.reply_window(window);
    }
    let agent = builder.build().unwrap();
    let everyone: Vec<Contact> = (0..4)
        .map(|i| Contact::new(format!("u{i}"), TelegramPeer::user(i + 1), "UTC", noon()).unwrap())
        .collect();
    agent.import_contacts(&everyone).await.unwrap();
    let grants = common::marketing_grants(&everyone, noon() - SignedDuration::from_hours(1));
    agent.record_consent(&grants).await.unwrap();
    let campaign = agent
        .create_campaign(CampaignSpec::new(
            "Winter",
            "green tea",
            "20% off this week",
        ))
        .await
        .unwrap();
    agent.schedule(&campaign.id, None).await.unwrap();
    agent.start(&campaign.id).await.unwrap();
    assert_eq!(agent.run_once().await.unwrap().sent, 4);
    World {
        agent,
        telegram,
        store,
        everyone,
        campaign: campaign.id,
    }
}

fn text(text: &str, reply_to: Option<i64>) -> InboundKind {
    InboundKind::Text {
        text: text.into(),
        reply_to,
    }
}

/// The campaign each contact's inbound events of `kind` were credited to.
async fn credited(w: &World, contact: &Contact, kind: &str) -> Vec<Option<CampaignId>> {
    w.store
        .contact_events(&contact.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind.name() == kind)
        .map(|e| e.campaign)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn unquoted_replies_and_stops_within_the_window_are_credited_to_the_campaign() {
    let w = sent(None).await;
    let [a, b, c, d] = &w.everyone[..] else {
        unreachable!()
    };
    let hour = SignedDuration::from_hours(1);
    w.telegram
        .push_inbound(a.peer, text("how much is it?", None), noon() + hour);
    // Four days later: outside the default 72 hours.
    w.telegram.push_inbound(
        b.peer,
        text("still on?", None),
        noon() + SignedDuration::from_hours(96),
    );
    // Quoting a message that is no campaign message of ours.
    w.telegram
        .push_inbound(c.peer, text("what is this?", Some(987_654)), noon() + hour);
    w.telegram
        .push_inbound(d.peer, text("STOP", None), noon() + hour);
    w.agent
        .process_inbound_until(noon() + SignedDuration::from_hours(97))
        .await
        .unwrap();

    let campaign = Some(w.campaign.clone());
    assert_eq!(credited(&w, a, "replied").await, vec![campaign.clone()]);
    assert_eq!(credited(&w, b, "replied").await, vec![None]);
    assert_eq!(credited(&w, c, "replied").await, vec![None]);
    assert_eq!(credited(&w, d, "opted_out").await, vec![campaign.clone()]);
    let report = mia::analytics::CampaignReport::build(w.store.as_ref(), &w.campaign)
        .await
        .unwrap();
    let replied: u64 = report.variants.values().map(|v| v.replied).sum();
    assert_eq!(replied, 1, "{report:?}");
}

#[tokio::test(start_paused = true)]
async fn a_zero_window_credits_quoting_replies_only() {
    let w = sent(Some(Duration::ZERO)).await;
    let [a, b, ..] = &w.everyone[..] else {
        unreachable!()
    };
    let message_id = w
        .telegram
        .sent_log()
        .into_iter()
        .find(|m| m.peer == b.peer && m.campaign.is_some())
        .unwrap()
        .message_id;
    let minute = SignedDuration::from_mins(1);
    w.telegram
        .push_inbound(a.peer, text("how much?", None), noon() + minute);
    w.telegram
        .push_inbound(b.peer, text("how much?", Some(message_id)), noon() + minute);
    w.agent
        .process_inbound_until(noon() + SignedDuration::from_hours(1))
        .await
        .unwrap();
    assert_eq!(credited(&w, a, "replied").await, vec![None]);
    assert_eq!(
        credited(&w, b, "replied").await,
        vec![Some(w.campaign.clone())]
    );
}
