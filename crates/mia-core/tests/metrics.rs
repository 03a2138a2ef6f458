//! The agent's metrics, read back through a local recorder around one short campaign: sends by
//! outcome, denials by policy and rule, FloodWaits and retries, the outbox gauge, LLM tokens and
//! inbound events.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use mia_core::*;

fn noon() -> Timestamp {
    "2026-12-01T12:00:00Z".parse().unwrap()
}

/// Accepts every message, except the first to peer 2, which meets a FloodWait; reports one read
/// of message 1 on the first poll.
#[derive(Default)]
struct Telegram {
    sends: AtomicUsize,
    flood_once: Mutex<bool>,
    inbound: Mutex<Option<Vec<InboundEvent>>>,
}

#[async_trait]
impl Transport for Telegram {
    fn name(&self) -> &str {
        "test"
    }

    async fn send(&self, message: &OutboundMessage) -> Result<SendOutcome> {
        if message.peer == TelegramPeer::user(2) {
            let mut flooded = self.flood_once.lock().unwrap();
            if !*flooded {
                *flooded = true;
                return Ok(SendOutcome::RetryAfter {
                    after: Duration::from_millis(1500),
                    reason: "FLOOD_WAIT".into(),
                });
            }
        }
        let n = self.sends.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(SendOutcome::Sent {
            message_id: i64::try_from(n).unwrap(),
            duplicate: false,
        })
    }

    async fn receive(&self) -> Result<Vec<InboundEvent>> {
        // Nothing until the first message went out, then one read of it.
        if self.sends.load(Ordering::SeqCst) == 0 {
            return Ok(Vec::new());
        }
        Ok(self.inbound.lock().unwrap().take().unwrap_or_default())
    }
}

/// Denies every send to contact `c3`.
struct NotC3;

impl SendPolicy for NotC3 {
    fn check(&self, ctx: &SendContext<'_>) -> Verdict {
        if ctx.contact.id.as_str() == "c3" {
            Verdict::deny("test_not_c3", "this test never writes to c3")
        } else {
            Verdict::allow()
        }
    }
}

/// Denies every second text it sees.
#[derive(Default)]
struct EverySecond(AtomicUsize);

impl ContentPolicy for EverySecond {
    fn check(&self, _text: &str, _ctx: &ContentContext<'_>) -> Verdict {
        if self.0.fetch_add(1, Ordering::SeqCst) % 2 == 1 {
            Verdict::deny("test_every_second", "every second text")
        } else {
            Verdict::allow()
        }
    }
}

async fn campaign(agent: &Agent) -> Campaign {
    let contacts: Vec<Contact> = (1..=3)
        .map(|i| Contact::new(format!("c{i}"), TelegramPeer::user(i), "UTC", noon()).unwrap())
        .collect();
    agent.import_contacts(&contacts).await.unwrap();
    let grants: Vec<_> = contacts
        .iter()
        .map(|c| {
            ConsentRecord::grant(
                c.id.clone(),
                Purpose::marketing(),
                Evidence::new("test", c.id.as_str()),
                "v1",
                noon() - SignedDuration::from_hours(1),
            )
        })
        .collect();
    agent.record_consent(&grants).await.unwrap();
    let campaign = agent
        .create_campaign(CampaignSpec::new(
            "Spring",
            "green tea",
            "20% off this week",
        ))
        .await
        .unwrap();
    assert_eq!(campaign.state, CampaignState::Approved);
    agent.schedule(&campaign.id, None).await.unwrap();
    agent.start(&campaign.id).await.unwrap()
}

type Snapshot = BTreeMap<(String, Vec<(String, String)>), DebugValue>;

fn snapshot(snapshotter: &metrics_util::debugging::Snapshotter) -> Snapshot {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let mut labels: Vec<_> = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            labels.sort();
            ((key.name().to_owned(), labels), value)
        })
        .collect()
}

fn counter(s: &Snapshot, name: &str, labels: &[(&str, &str)]) -> u64 {
    let mut labels: Vec<_> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    labels.sort();
    match s.get(&(name.to_owned(), labels.clone())) {
        Some(DebugValue::Counter(n)) => *n,
        other => panic!("{name} {labels:?}: {other:?} in {s:#?}"),
    }
}

#[test]
fn a_run_counts_sends_denials_waits_tokens_and_inbound_events() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let telegram = std::sync::Arc::new(Telegram::default());
    *telegram.inbound.lock().unwrap() = Some(vec![InboundEvent {
        id: "update-1".into(),
        at: noon(),
        peer: TelegramPeer::user(1),
        kind: InboundKind::Read { message_id: 1 },
    }]);
    let (campaign, stats) = ::metrics::with_local_recorder(&recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let agent = Agent::builder_shared(
                    std::sync::Arc::new(TemplateProvider::new()),
                    telegram.clone(),
                )
                .send_policy(NotC3)
                .content_policy(EverySecond::default())
                .clock(VirtualClock::starting_at(noon()))
                .seed(3)
                .build()
                .unwrap();
                let campaign = campaign(&agent).await;
                let stats = agent.run_until_idle().await.unwrap();
                (campaign, stats)
            })
    });
    assert_eq!(stats.sent, 2, "{stats:?}");
    let s = snapshot(&snapshotter);

    assert_eq!(
        counter(&s, "mia_sends_total", &[("outcome", "sent")]),
        2,
        "{s:#?}"
    );
    assert_eq!(counter(&s, "mia_sends_total", &[("outcome", "skipped")]), 1);
    assert_eq!(
        counter(&s, "mia_sends_total", &[("outcome", "retry_after")]),
        1
    );
    assert_eq!(
        counter(
            &s,
            "mia_policy_denials_total",
            &[("policy", "send"), ("rule", "test_not_c3")]
        ),
        1
    );
    let rejected = campaign
        .variants
        .iter()
        .filter(|v| v.status == VariantStatus::Rejected)
        .count();
    assert!(rejected > 0, "the content policy denied no variant");
    assert_eq!(
        counter(
            &s,
            "mia_policy_denials_total",
            &[("policy", "content"), ("rule", "test_every_second")]
        ),
        u64::try_from(rejected).unwrap()
    );
    assert_eq!(counter(&s, "mia_flood_waits_total", &[]), 1);
    // 1.5 s, rounded up.
    assert_eq!(counter(&s, "mia_flood_wait_seconds_total", &[]), 2);
    assert_eq!(counter(&s, "mia_send_retries_total", &[]), 1);
    assert_eq!(
        counter(&s, "mia_inbound_events_total", &[("kind", "read")]),
        1
    );
    // The offline writer reports its tokens; its cost is a known zero.
    assert!(
        counter(
            &s,
            "mia_llm_tokens_total",
            &[("direction", "output"), ("provider", "template")]
        ) > 0
    );
    assert_eq!(
        counter(
            &s,
            "mia_llm_cost_micro_usd_total",
            &[("provider", "template")]
        ),
        0
    );
    let gauge = |state: &str| match s.get(&(
        "mia_outbox_jobs".to_owned(),
        vec![
            ("campaign".to_owned(), campaign.id.as_str().to_owned()),
            ("state".to_owned(), state.to_owned()),
        ],
    )) {
        Some(DebugValue::Gauge(v)) => v.into_inner(),
        other => panic!("mia_outbox_jobs{{state={state}}}: {other:?}"),
    };
    assert_eq!(gauge("sent"), 2.0);
    assert_eq!(gauge("skipped"), 1.0);
    assert_eq!(gauge("pending"), 0.0);
    // No label names a contact.
    assert!(s.keys().all(|(_, labels)| {
        labels
            .iter()
            .all(|(_, v)| !["c1", "c2", "c3"].contains(&v.as_str()))
    }));
}
