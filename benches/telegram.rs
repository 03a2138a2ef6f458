//! Telegram transports: the rate the agent achieves against the simulator's limits (virtual
//! time), and sends per second of real CPU through the Bot API transport against the local
//! fake Bot API server (HTTP over loopback).
//!
//! Run with: `cargo bench --bench telegram --features full`
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use jiff::{SignedDuration, Timestamp};
use mia::telegram::Limits;
use mia::telegram::bot_api::{BotApiConfig, BotApiTransport, FakeBotApi};
use mia::*;

mod common;

const PACED: i64 = 3_000;
const HTTP_SENDS: i64 = 200;

/// The agent against Telegram's published limits (30/s overall, 1/s per chat): how close it
/// runs to the limit, and how often the simulator had to answer "retry after".
fn achieved_rate(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (agent, clock, sim) = runtime.block_on(common::ready_agent(PACED, Limits::default()));
    let start = clock.now();
    let stats = runtime.block_on(agent.run_until_idle()).unwrap();
    let sent = sim.sent_log();
    let first = sent.first().unwrap().at;
    let last = sent.last().unwrap().at;
    let span = last.duration_since(first).as_secs_f64();
    println!(
        "simulator: {} sends in {:.1} s of virtual time ({:.2}/s against a limit of 30/s), \
         {} answered with retry-after, run took {:.1} s virtual",
        stats.sent,
        span,
        (sent.len() - 1) as f64 / span,
        sim.rate_limited_count(),
        clock.now().duration_since(start).as_secs_f64()
    );
    let mut group = c.benchmark_group("telegram");
    group.throughput(Throughput::Elements(PACED as u64));
    group.sample_size(10);
    group.bench_function("agent_paced_3000_sends_virtual_time", |b| {
        b.iter_batched(
            || {
                runtime
                    .block_on(common::ready_agent(PACED, Limits::default()))
                    .0
            },
            |agent| runtime.block_on(agent.run_until_idle()).unwrap(),
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

fn bot_api_sends(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let fake = runtime.block_on(FakeBotApi::start());
    for user in 0..HTTP_SENDS {
        fake.user_writes(user + 1, "/start");
    }
    let clock = Arc::new(VirtualClock::starting_at(
        Timestamp::from_second(1_800_000_000).unwrap(),
    ));
    let config = BotApiConfig::new(fake.token())
        .with_api_base(fake.url())
        .unwrap()
        .with_limits(common::unlimited())
        .unwrap();
    let transport = BotApiTransport::new(config)
        .unwrap()
        .with_clock(clock.clone());
    let mut round = 0u64;
    let mut group = c.benchmark_group("telegram");
    group.throughput(Throughput::Elements(HTTP_SENDS as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("bot_api_200_sends_loopback_fake", |b| {
        b.iter(|| {
            round += 1;
            clock.advance(SignedDuration::from_secs(2));
            runtime.block_on(async {
                for user in 0..HTTP_SENDS {
                    let message = OutboundMessage::new(
                        IdempotencyKey::new(format!("{round}:{user}")),
                        ContactId::new(format!("u{user}")),
                        TelegramPeer::user(user + 1),
                        "Spring tea, 20% off this week",
                    );
                    let outcome = transport.send(&message).await.unwrap();
                    assert!(matches!(outcome, SendOutcome::Sent { .. }), "{outcome:?}");
                }
            });
        });
    });
    group.finish();
}

criterion_group!(benches, achieved_rate, bot_api_sends);
criterion_main!(benches);
