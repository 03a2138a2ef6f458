//! What reading markup costs per message: every transport parses a formatted text once per send
//! (the simulator and the fake to strip it, MTProto to build entities), and the simulator's
//! send path with and without it.
//!
//! Run with: `cargo bench -p mia-telegram --bench formatting`
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use jiff::Timestamp;
use mia_core::{
    ContactId, IdempotencyKey, OutboundMessage, TelegramPeer, TextFormat, Transport, VirtualClock,
};
use mia_telegram::{SimConfig, SimTelegram};

const HTML: &str = "<b>Spring tea week</b> 🍵\n\nOur <i>first flush Darjeeling</i> is in: \
    <u>20% off</u> until Sunday with code <code>SPRING20</code>.\n\n\
    <blockquote>The best cup I had this year — a regular</blockquote>\n\
    <a href=\"https://shop.example/tea?utm_source=telegram&amp;utm_campaign=spring\">Order \
    here</a> &lt;3\n\nReply STOP to unsubscribe.";

const MARKDOWN: &str = "*Spring tea week* 🍵\n\nOur _first flush Darjeeling_ is in: __20% off__ \
    until Sunday with code `SPRING20`\\.\n\n>The best cup I had this year \\- a regular\n\
    [Order here](https://shop.example/tea?utm_source=telegram&utm_campaign=spring) <3\n\n\
    Reply STOP to unsubscribe\\.";

fn parsing(c: &mut Criterion) {
    let mut group = c.benchmark_group("formatting");
    group.throughput(Throughput::Bytes(HTML.len() as u64));
    group.bench_function("parse_html_campaign_copy", |b| {
        b.iter(|| TextFormat::Html.parse(black_box(HTML)).unwrap());
    });
    group.throughput(Throughput::Bytes(MARKDOWN.len() as u64));
    group.bench_function("parse_markdown_v2_campaign_copy", |b| {
        b.iter(|| TextFormat::MarkdownV2.parse(black_box(MARKDOWN)).unwrap());
    });
    group.finish();
}

fn sim_sends(c: &mut Criterion) {
    const SENDS: i64 = 1_000;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("formatting");
    group.throughput(Throughput::Elements(SENDS as u64));
    for (name, format, text) in [
        ("sim_1000_sends_plain", TextFormat::Plain, HTML),
        ("sim_1000_sends_html", TextFormat::Html, HTML),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let clock = Arc::new(VirtualClock::starting_at(
                        Timestamp::from_second(1_800_000_000).unwrap(),
                    ));
                    let config = SimConfig {
                        deactivated_share: 0.0,
                        blocked_share: 0.0,
                        ..SimConfig::seeded(1)
                    };
                    (SimTelegram::new(config, clock.clone()).unwrap(), clock)
                },
                |(sim, clock)| {
                    runtime.block_on(async {
                        for user in 0..SENDS {
                            // Spread over time so no limit answers: this measures the send path.
                            clock.advance(jiff::SignedDuration::from_millis(40));
                            let message = OutboundMessage::new(
                                IdempotencyKey::new(format!("k{user}")),
                                ContactId::new(format!("u{user}")),
                                TelegramPeer::user(user + 1),
                                text,
                            )
                            .with_format(format);
                            black_box(sim.send(&message).await.unwrap());
                        }
                    });
                },
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, parsing, sim_sends);
criterion_main!(benches);
