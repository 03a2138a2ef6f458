//! A campaign report from a store holding a campaign of 100,000 jobs and 74,500 events, on
//! SQLite (`report.sqlite`, `synchronous = NORMAL`) and, when `MIA_TEST_POSTGRES_URL` is set,
//! on Postgres (`report.postgres`, in a schema of its own that the bench drops at the end, also
//! after a failure): what `mia report`, the HTML report and FFI `mia_campaign_report` cost.
//! 30,000 jobs are sent (variants A and B taking turns), 1,000 are dead letters under 10
//! reasons, 2,000 wait to retry and the rest are pending. Every sent message has a `sent` and a
//! `delivered` event; a third are read, a tenth clicked, one in 25 converts and one in a
//! hundred opts out.
//!
//! Run with: `cargo bench --bench report --features full` (with
//! `MIA_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test` for Postgres too)
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use jiff::{SignedDuration, Timestamp};
use mia::analytics::{CampaignReport, HtmlReport};
use mia::*;

const JOBS: i64 = 100_000;
const SENT: usize = 30_000;

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

/// The campaign's jobs and events, written as a worker and the analytics pipeline would.
async fn fill(store: &dyn Store) -> CampaignId {
    let mut c = Campaign::draft(
        CampaignId::new("report"),
        CampaignSpec::new("Bench", "tea", "20% off"),
        t(0),
    );
    store.insert_campaign(&c).await.unwrap();
    c.state = CampaignState::Running;
    let jobs: Vec<NewJob> = (0..JOBS)
        .map(|i| {
            let contact = ContactId::new(format!("c{i}"));
            NewJob {
                key: IdempotencyKey::for_job(&c.id, &contact, 0),
                contact,
                purpose: Purpose::marketing(),
                step: 0,
                due_at: t(i % 60),
                skipped: None,
            }
        })
        .collect();
    store.schedule(&c, &jobs).await.unwrap();
    let claimed = store
        .claim("w", t(100), SignedDuration::from_mins(5), 33_000)
        .await
        .unwrap();
    let variant = |i: usize| VariantId::new(if i.is_multiple_of(2) { "A" } else { "B" });
    for (i, job) in claimed.iter().enumerate().take(SENT) {
        store
            .record_attempt(&job.key, job.claim_token, &variant(i), 0.5, t(100))
            .await
            .unwrap();
    }
    let updates: Vec<_> = claimed
        .iter()
        .enumerate()
        .map(|(i, job)| {
            let update = match i {
                0..SENT => JobUpdate::Sent {
                    message_id: i as i64,
                },
                SENT..31_000 => JobUpdate::DeadLetter {
                    reason: format!("error: reason {}", i % 10),
                },
                _ => JobUpdate::Retry {
                    due_at: t(500),
                    count_attempt: true,
                    reason: "flood_wait".into(),
                },
            };
            (job, update)
        })
        .collect();
    assert!(
        store
            .update_jobs(&updates, t(101))
            .await
            .unwrap()
            .is_empty()
    );
    let mut events = Vec::new();
    for (i, job) in claimed.iter().enumerate().take(SENT) {
        let event = |n: usize, kind: EventKind| Event {
            id: EventId::new(format!("{i}-{n}")),
            at: t(200 + i as i64),
            contact: job.contact.clone(),
            campaign: Some(c.id.clone()),
            variant: Some(variant(i)),
            step: Some(0),
            kind,
        };
        events.push(event(0, EventKind::Sent));
        events.push(event(1, EventKind::Delivered));
        if i.is_multiple_of(3) {
            events.push(event(2, EventKind::Read));
        }
        if i.is_multiple_of(10) {
            events.push(event(3, EventKind::Clicked));
        }
        if i.is_multiple_of(25) {
            events.push(event(4, EventKind::Converted { value_minor: 1_999 }));
        }
        if i % 100 == 1 {
            events.push(event(5, EventKind::OptedOut));
        }
    }
    store.append_events(&events).await.unwrap();
    c.id
}

fn report(c: &mut Criterion) {
    let (rt, _dir, store) = common::sqlite_store("report.db");
    let id = rt.block_on(fill(&store));
    report_on(c, &rt, "report.sqlite", &store, &id);
    common::on_postgres(&rt, "report.postgres", |store| {
        let id = rt.block_on(fill(store));
        report_on(c, &rt, "report.postgres", store, &id);
    });
}

/// The report and the HTML page of campaign `id` in `store`, as bench group `name`.
fn report_on(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    name: &str,
    store: &dyn Store,
    id: &CampaignId,
) {
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    group.bench_function("campaign_report_100000_jobs", |b| {
        b.iter(|| {
            let report = rt.block_on(CampaignReport::build(store, id)).unwrap();
            assert_eq!(report.audience, JOBS as u64);
            assert_eq!(report.sent, SENT as u64);
            assert_eq!(report.opt_outs, 300);
        });
    });
    group.bench_function("html_report_100000_jobs", |b| {
        b.iter(|| {
            let page = rt.block_on(HtmlReport::build(store, id)).unwrap();
            assert_eq!(page.report().variants[&VariantId::new("A")].converted, 600);
        });
    });
    group.finish();
}

criterion_group!(benches, report);
criterion_main!(benches);
