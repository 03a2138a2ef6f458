//! Experiments in the agent, end to end on the memory store and the simulated Telegram:
//! `mia_experiments::ExperimentAllocator` behind the `Allocator` seam. Held-out contacts get
//! nothing and are counted (without using up the daily cap), targeting excludes contacts
//! outside the segment, a draft experiment sets its jobs aside, two workers agree without
//! sharing state, a restarted worker keeps the decisions it is given back, and experiments of
//! one layer never share a contact.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use mia::analytics::{CampaignReport, Collector};
use mia::experiments::{Decision, Experiment, ExperimentAllocator, Layer, Segment};
use mia::telegram::{Behaviour, SimConfig, SimTelegram};
use mia::*;

fn noon() -> Timestamp {
    "2026-12-01T12:00:00Z".parse().unwrap()
}

fn sim_config() -> SimConfig {
    SimConfig {
        deactivated_share: 0.0,
        blocked_share: 0.0,
        behaviour: Behaviour {
            stop: 0.0,
            block: 0.0,
            ..Behaviour::default()
        },
        ..SimConfig::seeded(11)
    }
}

/// Contacts `u0000`.. with peer `i + 1`, every one with marketing consent; even ones on the
/// `pro` plan, odd ones on `free`.
fn contacts(n: i64) -> Vec<Contact> {
    (0..n)
        .map(|i| {
            let mut c =
                Contact::new(format!("u{i:04}"), TelegramPeer::user(i + 1), "UTC", noon()).unwrap();
            let plan = if i % 2 == 0 { "pro" } else { "free" };
            c.attributes
                .insert("plan".into(), serde_json::Value::from(plan));
            c
        })
        .collect()
}

struct World {
    store: Arc<dyn Store>,
    clock: Arc<SimClock>,
    telegram: SimTelegram,
    everyone: Vec<Contact>,
}

async fn world(n: i64) -> World {
    let clock = Arc::new(SimClock::starting_at(noon()));
    let telegram = SimTelegram::new(sim_config(), clock.clone()).unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let w = World {
        store,
        clock,
        telegram,
        everyone: contacts(n),
    };
    let setup = agent(&w, Arc::new(ExperimentAllocator::new()), "setup");
    setup.import_contacts(&w.everyone).await.unwrap();
    let grants = common::marketing_grants(&w.everyone, noon() - SignedDuration::from_hours(1));
    setup.record_consent(&grants).await.unwrap();
    w
}

/// A worker on the shared store, clock and Telegram, deciding with `allocator`.
fn agent(w: &World, allocator: Arc<ExperimentAllocator>, worker: &str) -> Agent {
    let sink: Arc<dyn EventSink> = Arc::new(Collector::new(w.store.clone()));
    Agent::builder(TemplateProvider::new(), w.telegram.clone())
        .shared_store(w.store.clone())
        .shared_event_sink(sink)
        .permissive_policies()
        .clock(w.clock.clone())
        .allocator(allocator)
        .worker_id(worker)
        .claim_batch(7)
        .seed(5)
        .build()
        .unwrap()
}

/// Creates an approved campaign (variants from the template provider) and queues its jobs.
async fn create(agent: &Agent, name: &str) -> Campaign {
    let spec = CampaignSpec::new(name, "green tea", "20% off this week");
    let campaign = agent.create_campaign(spec).await.unwrap();
    assert_eq!(campaign.state, CampaignState::Approved);
    agent.schedule(&campaign.id, None).await.unwrap();
    campaign
}

fn approved(campaign: &Campaign) -> Vec<VariantId> {
    campaign.approved_variants().map(|v| v.id.clone()).collect()
}

/// Campaign messages per peer id, for one campaign.
fn posts(tg: &SimTelegram, campaign: &CampaignId) -> BTreeMap<i64, usize> {
    let mut out = BTreeMap::new();
    for m in tg
        .sent_log()
        .iter()
        .filter(|m| m.campaign.as_ref() == Some(campaign))
    {
        *out.entry(m.peer.id).or_default() += 1;
    }
    out
}

fn peer_of(w: &World, contact: &ContactId) -> i64 {
    w.everyone
        .iter()
        .find(|c| c.id == *contact)
        .unwrap()
        .peer
        .id
}

#[tokio::test(start_paused = true)]
async fn holdouts_get_nothing_and_are_counted_and_targeting_excludes_the_rest() {
    let w = world(240).await;
    let allocator = Arc::new(ExperimentAllocator::new());
    let agent = agent(&w, allocator.clone(), "w1");
    let campaign = create(&agent, "Spring").await;
    let variants = approved(&campaign);
    assert!(variants.len() >= 2, "{variants:?}");
    let mut experiment = Experiment::new(campaign.id.clone(), variants.clone())
        .unwrap()
        .with_holdout(0.3)
        .unwrap()
        .with_segment(Segment::equals("plan", "pro"));
    experiment.start().unwrap();
    allocator.add_experiment(experiment).unwrap();

    agent.start(&campaign.id).await.unwrap();
    let stats = agent.run_until_idle().await.unwrap();

    let decisions: BTreeMap<ContactId, Decision> =
        allocator.decisions(&campaign.id).into_iter().collect();
    let held: BTreeSet<ContactId> = decisions
        .iter()
        .filter(|(_, d)| matches!(d, Decision::Holdout { .. }))
        .map(|(c, _)| c.clone())
        .collect();
    let treated: BTreeSet<ContactId> = decisions
        .iter()
        .filter(|(_, d)| matches!(d, Decision::Variant { .. }))
        .map(|(c, _)| c.clone())
        .collect();
    // Every pro contact was decided; no free one was.
    assert_eq!(decisions.len(), 120);
    assert!(decisions.keys().all(|c| {
        w.everyone
            .iter()
            .any(|e| e.id == *c && e.attributes["plan"] == "pro")
    }));
    // 120 pro contacts, 30% held out: Binomial sd 5; a wide deterministic band.
    assert!((15..=60).contains(&held.len()), "{} held out", held.len());

    // Who got a message: exactly the treated pro contacts, once each.
    let got = posts(&w.telegram, &campaign.id);
    for c in &w.everyone {
        let n = got.get(&c.peer.id).copied().unwrap_or(0);
        let expected = usize::from(treated.contains(&c.id));
        assert_eq!(n, expected, "{} ({:?})", c.id, decisions.get(&c.id));
    }
    assert_eq!(stats.sent, treated.len() as u64);
    assert_eq!(
        stats.skipped.get(HOLDOUT_RULE).copied(),
        Some(held.len() as u64)
    );
    assert_eq!(
        stats.skipped.get("experiment_not_targeted").copied(),
        Some(120)
    );

    // Jobs: held-out and untargeted ones are finished as skipped with their rule; the sent
    // ones carry the variant's propensity, (1 - 0.3) / 2.
    for job in w.store.jobs(&campaign.id).await.unwrap() {
        if held.contains(&job.contact) {
            assert_eq!(job.state, JobState::Skipped);
            assert_eq!(job.outcome.as_deref(), Some(HOLDOUT_RULE));
            assert_eq!(job.message_id, None);
        } else if treated.contains(&job.contact) {
            assert_eq!(job.state, JobState::Sent);
            let p = job.propensity.unwrap();
            assert!((p - 0.7 / variants.len() as f64).abs() < 1e-12, "{p}");
        } else {
            assert_eq!(job.state, JobState::Skipped);
            assert_eq!(job.outcome.as_deref(), Some("experiment_not_targeted"));
        }
    }
    for (contact, d) in &decisions {
        if let Decision::Holdout { propensity } = d {
            assert_eq!(*propensity, 0.3, "{contact}");
        }
    }

    // Reports and analytics count the comparison group, and everyone exactly once.
    let report = CampaignReport::build(w.store.as_ref(), &campaign.id)
        .await
        .unwrap();
    assert_eq!(
        report.skipped.get(HOLDOUT_RULE).copied(),
        Some(held.len() as u64)
    );
    assert_eq!(
        report.skipped.get("experiment_not_targeted").copied(),
        Some(120)
    );
    assert_eq!(report.sent, treated.len() as u64);
    assert!(report.accounts_for_everyone(), "{report:?}");
    let events = w.store.campaign_events(&campaign.id).await.unwrap();
    let held_events: BTreeSet<ContactId> = events
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::Skipped { rule } if rule == HOLDOUT_RULE))
        .map(|e| e.contact.clone())
        .collect();
    assert_eq!(held_events, held);
    assert_eq!(
        agent.campaign(&campaign.id).await.unwrap().state,
        CampaignState::Completed
    );
}

#[tokio::test(start_paused = true)]
async fn two_workers_agree_and_a_restarted_worker_keeps_the_decisions_it_is_given() {
    let w = world(160).await;
    let first = Arc::new(ExperimentAllocator::new());
    let second = Arc::new(ExperimentAllocator::new());
    let one = agent(&w, first.clone(), "w1");
    let two = agent(&w, second.clone(), "w2");
    let campaign = create(&one, "Autumn").await;
    let variants = approved(&campaign);
    let configured = |holdout: f64| {
        let mut e = Experiment::new(campaign.id.clone(), variants.clone())
            .unwrap()
            .with_holdout(holdout)
            .unwrap();
        e.start().unwrap();
        e
    };
    // Two workers with the same configuration and no shared state.
    first.add_experiment(configured(0.25)).unwrap();
    second.add_experiment(configured(0.25)).unwrap();
    one.start(&campaign.id).await.unwrap();
    // They take turns on the queue, a few jobs each, until half the audience is done.
    let mut done = 0;
    while done < 80 {
        done += one.run_once().await.unwrap().finished();
        done += two.run_once().await.unwrap().finished();
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    let mut saved: Vec<(ContactId, Decision)> = first.decisions(&campaign.id);
    saved.extend(second.decisions(&campaign.id));
    assert!(
        !first.decisions(&campaign.id).is_empty() && !second.decisions(&campaign.id).is_empty()
    );

    // A restart with a different holdout and weights: without the saved decisions it would
    // decide differently for some contacts; given them back, it keeps every one.
    let restarted = Arc::new(ExperimentAllocator::new());
    let mut changed = configured(0.6);
    changed.set_weight(variants[0].clone(), 5.0).unwrap();
    restarted.add_experiment(changed).unwrap();
    restarted.restore(&campaign.id, saved.clone()).unwrap();
    let three = agent(&w, restarted.clone(), "w3");
    three.run_until_idle().await.unwrap();

    // Every decision made before the restart stands; the reference rule (same configuration,
    // fresh state) agrees with both workers.
    let after: BTreeMap<ContactId, Decision> =
        restarted.decisions(&campaign.id).into_iter().collect();
    let mut reference = configured(0.25);
    let none = BTreeMap::new();
    for (contact, decision) in &saved {
        assert_eq!(after.get(contact), Some(decision), "{contact}");
        assert_eq!(&reference.assign(contact, &none), decision, "{contact}");
    }
    // Each contact got a message exactly when its decision is a variant, whichever worker.
    let got = posts(&w.telegram, &campaign.id);
    assert_eq!(after.len(), 160);
    for (contact, decision) in &after {
        let n = got.get(&peer_of(&w, contact)).copied().unwrap_or(0);
        let expected = usize::from(matches!(decision, Decision::Variant { .. }));
        assert_eq!(n, expected, "{contact} {decision:?}");
    }
    let report = CampaignReport::build(w.store.as_ref(), &campaign.id)
        .await
        .unwrap();
    let held = after
        .values()
        .filter(|d| matches!(d, Decision::Holdout { .. }))
        .count() as u64;
    assert!(held > 0);
    assert_eq!(report.skipped.get(HOLDOUT_RULE).copied(), Some(held));
    assert!(report.accounts_for_everyone());
}

#[tokio::test(start_paused = true)]
async fn experiments_of_one_layer_never_share_a_contact() {
    let w = world(200).await;
    let allocator = Arc::new(ExperimentAllocator::new());
    let agent = agent(&w, allocator.clone(), "w1");
    let copy = create(&agent, "Copy test").await;
    let timing = create(&agent, "Timing test").await;
    let running = |c: &Campaign| {
        let mut e = Experiment::new(c.id.clone(), approved(c)).unwrap();
        e.start().unwrap();
        e
    };
    let layer = Layer::new("winter")
        .with_experiment(running(&copy), 0.4)
        .unwrap()
        .with_experiment(running(&timing), 0.4)
        .unwrap();
    allocator.add_layer(layer.clone()).unwrap();
    agent.start(&copy.id).await.unwrap();
    agent.start(&timing.id).await.unwrap();
    agent.run_until_idle().await.unwrap();

    let by_copy = posts(&w.telegram, &copy.id);
    let by_timing = posts(&w.telegram, &timing.id);
    let mut outside = 0;
    for c in &w.everyone {
        let owner = layer.experiment_of(&c.id);
        let (a, b) = (
            by_copy.get(&c.peer.id).copied().unwrap_or(0),
            by_timing.get(&c.peer.id).copied().unwrap_or(0),
        );
        match owner {
            Some(id) if *id == copy.id => assert_eq!((a, b), (1, 0), "{}", c.id),
            Some(id) if *id == timing.id => assert_eq!((a, b), (0, 1), "{}", c.id),
            _ => {
                assert_eq!((a, b), (0, 0), "{}", c.id);
                outside += 1;
            }
        }
    }
    // 20% of the layer is in neither experiment.
    assert!((15..=70).contains(&outside), "{outside}");
    let report = CampaignReport::build(w.store.as_ref(), &copy.id)
        .await
        .unwrap();
    assert_eq!(
        report
            .skipped
            .get("experiment_outside_layer_slice")
            .copied(),
        Some(200 - report.sent)
    );
}

#[tokio::test(start_paused = true)]
async fn held_out_contacts_never_use_up_the_daily_cap() {
    let w = world(80).await;
    let allocator = Arc::new(ExperimentAllocator::new());
    let sink: Arc<dyn EventSink> = Arc::new(Collector::new(w.store.clone()));
    let agent = Agent::builder(TemplateProvider::new(), w.telegram.clone())
        .shared_store(w.store.clone())
        .shared_event_sink(sink)
        .permissive_policies()
        .clock(w.clock.clone())
        .allocator(allocator.clone())
        .daily_cap(10, "UTC")
        .seed(5)
        .build()
        .unwrap();
    let campaign = create(&agent, "Capped").await;
    let mut experiment = Experiment::new(campaign.id.clone(), approved(&campaign))
        .unwrap()
        .with_holdout(0.5)
        .unwrap();
    experiment.start().unwrap();
    allocator.add_experiment(experiment).unwrap();
    agent.start(&campaign.id).await.unwrap();
    let stats = agent.run_until_idle().await.unwrap();

    let held = allocator
        .decisions(&campaign.id)
        .iter()
        .filter(|(_, d)| matches!(d, Decision::Holdout { .. }))
        .count() as u64;
    assert!(held > 10, "{held}");
    assert_eq!(stats.sent + held, 80);
    // Day one (UTC) sends exactly the cap, and every held-out contact is settled that day:
    // none of them waited for a send slot or took one.
    let tomorrow: Timestamp = "2026-12-02T00:00:00Z".parse().unwrap();
    let sent_day_one = w
        .telegram
        .sent_log()
        .iter()
        .filter(|m| m.campaign.as_ref() == Some(&campaign.id) && m.at < tomorrow)
        .count();
    assert_eq!(sent_day_one, 10);
    let events = w.store.campaign_events(&campaign.id).await.unwrap();
    let held_events: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::Skipped { rule } if rule == HOLDOUT_RULE))
        .collect();
    assert_eq!(held_events.len() as u64, held);
    assert!(held_events.iter().all(|e| e.at < tomorrow));
}

#[tokio::test(start_paused = true)]
async fn a_campaign_whose_experiment_is_a_draft_sends_nothing_and_sets_its_jobs_aside() {
    let w = world(20).await;
    let allocator = Arc::new(ExperimentAllocator::new());
    let agent = agent(&w, allocator.clone(), "w1");
    let campaign = create(&agent, "Too early").await;
    let draft = Experiment::new(campaign.id.clone(), approved(&campaign)).unwrap();
    allocator.add_experiment(draft).unwrap();
    agent.start(&campaign.id).await.unwrap();
    let stats = agent.run_until_idle().await.unwrap();
    assert_eq!((stats.sent, stats.dead_lettered), (0, 20));
    assert!(posts(&w.telegram, &campaign.id).is_empty());
    for job in w.store.jobs(&campaign.id).await.unwrap() {
        assert_eq!(job.state, JobState::DeadLetter);
        assert!(
            job.outcome.as_deref().unwrap_or("").contains("draft"),
            "{job:?}"
        );
    }
}
