//! Segment evaluation over one million contacts and three million events: "read in the last 7
//! days and not converted, on the pro plan", and RFM scoring.
//!
//! Run with: `cargo bench -p mia-analytics --bench segment`
#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use jiff::{SignedDuration, Timestamp};
use mia_analytics::segment::{History, Rule, Segment, rfm};
use mia_core::{Contact, ContactId, Event, EventId, EventKind, TelegramPeer};

const CONTACTS: i64 = 1_000_000;

fn data() -> (Vec<Contact>, Vec<Event>, Timestamp) {
    let now: Timestamp = "2026-12-10T12:00:00Z".parse().unwrap();
    let template = Contact::new("c", TelegramPeer::user(1), "UTC", now).unwrap();
    let mut contacts = Vec::with_capacity(CONTACTS as usize);
    let mut events = Vec::with_capacity(3 * CONTACTS as usize);
    for i in 0..CONTACTS {
        let mut c = template.clone();
        c.id = ContactId::new(format!("c{i}"));
        c.peer = TelegramPeer::user(i + 1);
        c.attributes.insert(
            "plan".into(),
            if i.rem_euclid(3) == 0 { "pro" } else { "free" }.into(),
        );
        contacts.push(c);
        // A deterministic spread of reads and purchases over 30 days.
        let h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        for (k, kind) in [EventKind::Sent, EventKind::Read].into_iter().enumerate() {
            events.push(Event {
                id: EventId::new(format!("e{i}-{k}")),
                at: now - SignedDuration::from_hours((h % 720) as i64),
                contact: ContactId::new(format!("c{i}")),
                campaign: None,
                variant: None,
                step: None,
                kind,
            });
        }
        if h.is_multiple_of(7) {
            events.push(Event {
                id: EventId::new(format!("e{i}-c")),
                at: now - SignedDuration::from_hours(((h >> 8) % 720) as i64),
                contact: ContactId::new(format!("c{i}")),
                campaign: None,
                variant: None,
                step: None,
                kind: EventKind::Converted {
                    value_minor: ((h >> 16) % 10_000) as i64,
                },
            });
        }
    }
    (contacts, events, now)
}

fn segments(c: &mut Criterion) {
    let (contacts, events, now) = data();
    let rule: Rule = serde_json::from_value(serde_json::json!({"all": [
        {"attribute": {"key": "plan", "op": "eq", "value": "pro"}},
        {"did": {"event": "read", "within_days": 7}},
        {"not": {"did": {"event": "converted"}}}
    ]}))
    .unwrap();
    let segment = Segment {
        name: "warm pro".into(),
        rule,
    };
    let mut group = c.benchmark_group("segment");
    group.sample_size(10);
    group.bench_function("index_3m_events", |b| b.iter(|| History::new(&events)));
    let history = History::new(&events);
    group.bench_function("evaluate_1m_contacts", |b| {
        b.iter(|| segment.members(&contacts, &history, now).unwrap().len())
    });
    group.bench_function("rfm_scores", |b| b.iter(|| rfm(&history, now).len()));
    group.finish();
}

criterion_group!(benches, segments);
criterion_main!(benches);
