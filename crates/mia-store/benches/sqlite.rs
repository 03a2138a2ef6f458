//! The hot paths of `SqliteStore` on a file database: batch writes of 10,000 rows, claims
//! from a full outbox, and audit log appends (one entry, and a worker round of 64).
//!
//! Run with: `cargo bench -p mia-store --bench sqlite`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use jiff::{SignedDuration, Timestamp};
use mia_core::{
    Campaign, CampaignId, CampaignSpec, CampaignState, CampaignStore, Contact, ContactId,
    ContactStore, Event, EventId, EventKind, EventStore, IdempotencyKey, NewJob, OutboxStore,
    Purpose, TelegramPeer,
};
use mia_store::SqliteStore;
use tempfile::TempDir;

const N: i64 = 10_000;

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A fresh file store (the folder is deleted when the `TempDir` drops).
async fn fresh() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("bench.db"))
        .await
        .unwrap();
    (dir, store)
}

fn contacts() -> Vec<Contact> {
    (0..N)
        .map(|i| {
            Contact::new(
                format!("c{i}"),
                TelegramPeer::user(i),
                "Europe/Vienna",
                t(0),
            )
            .unwrap()
            .with_attribute("plan", serde_json::json!("pro"))
        })
        .collect()
}

/// A running campaign inserted into `store`, and its jobs (not yet scheduled).
async fn campaign(store: &SqliteStore) -> (Campaign, Vec<NewJob>) {
    let mut c = Campaign::draft(
        CampaignId::new("bench"),
        CampaignSpec::new("Bench", "tea", "20% off"),
        t(0),
    );
    store.insert_campaign(&c).await.unwrap();
    c.state = CampaignState::Running;
    let jobs = (0..N)
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
    (c, jobs)
}

fn batch_writes(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("sqlite.batch_10k");
    group
        .sample_size(10)
        .throughput(Throughput::Elements(N as u64));

    let people = contacts();
    group.bench_function("upsert_contacts", |b| {
        b.iter_batched(
            || rt.block_on(fresh()),
            |(_dir, store)| rt.block_on(store.upsert_contacts(std::hint::black_box(&people))),
            BatchSize::PerIteration,
        );
    });

    group.bench_function("schedule", |b| {
        b.iter_batched(
            || {
                rt.block_on(async {
                    let (dir, store) = fresh().await;
                    let (c, jobs) = campaign(&store).await;
                    (dir, store, c, jobs)
                })
            },
            |(_dir, store, c, jobs)| rt.block_on(store.schedule(&c, std::hint::black_box(&jobs))),
            BatchSize::PerIteration,
        );
    });

    let events: Vec<Event> = (0..N)
        .map(|i| Event {
            id: EventId::new(format!("e{i}")),
            at: t(i),
            contact: ContactId::new(format!("c{i}")),
            campaign: Some(CampaignId::new("bench")),
            variant: None,
            kind: EventKind::Delivered,
        })
        .collect();
    group.bench_function("append_events", |b| {
        b.iter_batched(
            || rt.block_on(fresh()),
            |(_dir, store)| rt.block_on(store.append_events(std::hint::black_box(&events))),
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

fn claims(c: &mut Criterion) {
    let rt = runtime();
    let (_dir, store) = rt.block_on(fresh());
    rt.block_on(async {
        let (c, jobs) = campaign(&store).await;
        store.schedule(&c, &jobs).await.unwrap();
    });
    let mut group = c.benchmark_group("sqlite.claim");
    group.throughput(Throughput::Elements(100));
    // A zero lease expires at once, so every claim finds a full outbox again.
    group.bench_function("100_of_10k", |b| {
        b.iter(|| {
            rt.block_on(store.claim("w1", t(3600), SignedDuration::ZERO, 100))
                .unwrap()
        });
    });
    group.finish();
}

fn audit_appends(c: &mut Criterion) {
    use mia_core::{AuditAction, AuditDraft, AuditStore};
    let rt = runtime();
    let (_dir, store) = rt.block_on(fresh());
    let draft = |i: i64| AuditDraft {
        at: t(i),
        actor: "worker:w1".into(),
        action: AuditAction::PolicyDecision,
        subject: Some("sub_0123456789abcdef0123456789abcdef".into()),
        detail: serde_json::json!({
            "policy": "send", "campaign": "cmp_1", "job": format!("{i:032x}"),
            "decision": "allow", "rule": "consent",
            "trace": [{"rule": "consent", "decision": "allow"}],
        }),
    };
    let one = vec![draft(0)];
    let round: Vec<AuditDraft> = (0..64).map(draft).collect();
    let mut group = c.benchmark_group("sqlite.audit_append");
    group.throughput(Throughput::Elements(1));
    group.bench_function("1", |b| {
        b.iter(|| rt.block_on(store.append_audit(one.clone())).unwrap());
    });
    group.throughput(Throughput::Elements(64));
    group.bench_function("64", |b| {
        b.iter(|| rt.block_on(store.append_audit(round.clone())).unwrap());
    });
    group.finish();
}

criterion_group!(benches, batch_writes, claims, audit_appends);
criterion_main!(benches);
