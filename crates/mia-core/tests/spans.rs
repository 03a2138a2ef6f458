//! The agent's spans: stable names, the job's correlation id from the policy decision to the
//! send to a read of the message, and no personal data unless the host opts in.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use mia_core::*;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

fn noon() -> Timestamp {
    "2026-12-01T12:00:00Z".parse().unwrap()
}

/// One span as it ended up: its name and every field recorded on it.
#[derive(Clone, Debug, Default)]
struct SeenSpan {
    name: &'static str,
    fields: BTreeMap<String, String>,
}

/// Collects every span with its fields, in creation order.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<SeenSpan>>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_owned(),
            format!("{value:?}").replace('"', ""),
        );
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

/// Where in `Spans` a span is.
struct Index(usize);

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut seen = SeenSpan {
            name: attrs.metadata().name(),
            ..SeenSpan::default()
        };
        attrs.record(&mut Fields(&mut seen.fields));
        let mut all = self.0.lock().unwrap();
        all.push(seen);
        ctx.span(id)
            .unwrap()
            .extensions_mut()
            .insert(Index(all.len() - 1));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let span = ctx.span(id).unwrap();
        let extensions = span.extensions();
        let index = extensions.get::<Index>().unwrap().0;
        values.record(&mut Fields(&mut self.0.lock().unwrap()[index].fields));
    }
}

/// Accepts every message (ids 1, 2, 3...); after the first, reports one read of message 1 by
/// its recipient.
#[derive(Default)]
struct Telegram {
    next_id: AtomicI64,
    first_recipient: Mutex<Option<TelegramPeer>>,
    read_reported: Mutex<bool>,
}

#[async_trait]
impl Transport for Telegram {
    fn name(&self) -> &str {
        "test"
    }

    async fn send(&self, message: &OutboundMessage) -> Result<SendOutcome> {
        self.first_recipient
            .lock()
            .unwrap()
            .get_or_insert(message.peer);
        Ok(SendOutcome::Sent {
            message_id: self.next_id.fetch_add(1, Ordering::SeqCst) + 1,
            duplicate: false,
        })
    }

    async fn receive(&self) -> Result<Vec<InboundEvent>> {
        let mut reported = self.read_reported.lock().unwrap();
        let Some(peer) = *self.first_recipient.lock().unwrap() else {
            return Ok(Vec::new());
        };
        if *reported {
            return Ok(Vec::new());
        }
        *reported = true;
        Ok(vec![InboundEvent {
            id: "update-7".into(),
            at: noon(),
            peer,
            kind: InboundKind::Read { message_id: 1 },
        }])
    }
}

/// Runs a campaign to three contacts (`contact-1..3`, peers 1001..1003) and returns the spans
/// and the agent.
fn run(personal_data: bool) -> (Vec<SeenSpan>, Agent) {
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry().with(spans.clone());
    let agent = tracing::subscriber::with_default(subscriber, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let agent = Agent::builder(TemplateProvider::new(), Telegram::default())
                    .permissive_policies()
                    .clock(VirtualClock::starting_at(noon()))
                    .trace_personal_data(personal_data)
                    .seed(5)
                    .build()
                    .unwrap();
                let contacts: Vec<Contact> = (1..=3)
                    .map(|i| {
                        Contact::new(
                            format!("contact-{i}"),
                            TelegramPeer::user(1000 + i),
                            "UTC",
                            noon(),
                        )
                        .unwrap()
                    })
                    .collect();
                agent.import_contacts(&contacts).await.unwrap();
                let grants: Vec<_> = contacts
                    .iter()
                    .map(|c| {
                        ConsentRecord::grant(
                            c.id.clone(),
                            Purpose::marketing(),
                            Evidence::new("test", "form"),
                            "v1",
                            noon() - SignedDuration::from_hours(1),
                        )
                    })
                    .collect();
                agent.record_consent(&grants).await.unwrap();
                let campaign = agent
                    .create_campaign(CampaignSpec::new("Spring", "green tea", "20% off"))
                    .await
                    .unwrap();
                agent.schedule(&campaign.id, None).await.unwrap();
                agent.start(&campaign.id).await.unwrap();
                let stats = agent.run_until_idle().await.unwrap();
                assert_eq!(stats.sent, 3, "{stats:?}");
                agent
            })
    });
    let spans = spans.0.lock().unwrap().clone();
    (spans, agent)
}

fn named<'a>(spans: &'a [SeenSpan], name: &str) -> Vec<&'a SeenSpan> {
    spans.iter().filter(|s| s.name == name).collect()
}

#[test]
fn a_job_is_traced_by_its_key_from_policy_to_send_to_the_read_without_personal_data() {
    let (spans, agent) = run(false);
    for name in [
        "mia.campaign",
        "mia.llm",
        "mia.policy",
        "mia.send",
        "mia.inbound",
    ] {
        assert!(
            !named(&spans, name).is_empty(),
            "no {name} span: {spans:#?}"
        );
    }

    let llm = named(&spans, "mia.llm")[0];
    for field in [
        "provider",
        "model",
        "input_tokens",
        "output_tokens",
        "cost_micro_usd",
    ] {
        assert!(llm.fields.contains_key(field), "{field} missing: {llm:?}");
    }
    assert_eq!(llm.fields["provider"], "template");

    let sends = named(&spans, "mia.send");
    assert_eq!(sends.len(), 3, "{sends:#?}");
    let send_policies: Vec<_> = named(&spans, "mia.policy")
        .into_iter()
        .filter(|s| s.fields.get("policy").map(String::as_str) == Some("send"))
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for send in &sends {
        assert_eq!(send.fields["outcome"], "sent", "{send:?}");
        assert!(send.fields.contains_key("variant"), "{send:?}");
        let key = &send.fields["correlation_id"];
        let job = rt
            .block_on(agent.store().job(&IdempotencyKey::new(key.as_str())))
            .unwrap()
            .unwrap_or_else(|| panic!("{key} is not a job key"));
        assert_eq!(job.state, JobState::Sent);
        assert!(
            send_policies
                .iter()
                .any(|p| &p.fields["correlation_id"] == key
                    && p.fields["decision"] == "allow"
                    && p.fields["rule"] == "consent"),
            "no policy decision for {key}: {send_policies:#?}"
        );
    }

    // The read of message 1 carries the correlation id of the job that sent it.
    let inbound = named(&spans, "mia.inbound");
    assert_eq!(inbound.len(), 1, "{inbound:#?}");
    assert_eq!(inbound[0].fields["kind"], "read");
    assert_eq!(inbound[0].fields["update_id"], "update-7");
    let read = &inbound[0].fields["correlation_id"];
    let job = rt
        .block_on(agent.store().job(&IdempotencyKey::new(read.as_str())))
        .unwrap()
        .unwrap();
    assert_eq!(job.message_id, Some(1), "{job:?}");

    // No contact id, chat id or message text in any span.
    for span in &spans {
        assert!(!span.fields.contains_key("contact"), "{span:?}");
        for value in span.fields.values() {
            assert!(
                !value.contains("contact-") && !value.contains("1001") && !value.contains("tea"),
                "personal data in {span:?}"
            );
        }
    }
}

#[test]
fn a_host_that_opts_in_sees_the_contact_on_the_send_span() {
    let (spans, _) = run(true);
    let mut contacts: Vec<_> = named(&spans, "mia.send")
        .iter()
        .map(|s| s.fields["contact"].clone())
        .collect();
    contacts.sort();
    assert_eq!(contacts, ["contact-1", "contact-2", "contact-3"]);
}
