//! Funnel queries over 1M and 10M generated events in memory (the table is built once,
//! outside the measured loop).
//!
//! Run with: `cargo bench -p mia-analytics --bench funnel`

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mia_analytics::funnel::{
    self, Breakdown, EventTable, EventTableBuilder, FunnelMode, FunnelSpec,
};

const STEPS: [&str; 5] = ["sent", "delivered", "read", "clicked", "converted"];
const SECOND: i64 = 1_000_000;
const DAY: i64 = 86_400 * SECOND;

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Whole seconds from an exponential distribution with this mean, in microseconds.
    fn delay(&mut self, mean_s: f64) -> i64 {
        (-mean_s * (1.0 - self.unit()).ln()) as i64 * SECOND
    }
}

/// Campaign-like events over 30 days (the same shape as `benches/compare/funnel.py`): about
/// 5.6 events per user, so `events / 5.6` users.
fn generate(events: usize) -> EventTable {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut b = EventTableBuilder::with_columns(["variant"]);
    let mut n = 0;
    let mut user = 0u64;
    while n < events {
        let id = format!("u{user:07}");
        user += 1;
        let mut sends = 1;
        while rng.unit() < 0.505 {
            sends += 1;
        }
        let mut rows: Vec<(&str, i64, &str)> = Vec::new();
        for _ in 0..sends {
            let variant = if rng.unit() < 0.5 { "A" } else { "B" };
            let mut t = (rng.unit() * (30 * DAY) as f64) as i64;
            rows.push(("sent", t, variant));
            let delivered = rng.unit() < 0.92;
            if delivered {
                t += rng.delay(30.0);
                rows.push(("delivered", t, variant));
            }
            if rng.unit() < if delivered { 0.62 } else { 0.2 } {
                t += rng.delay(7200.0);
                rows.push(("read", t, variant));
                if rng.unit() < 0.32 {
                    t += rng.delay(3600.0);
                    rows.push(("clicked", t, variant));
                    if rng.unit() < 0.25 {
                        t += rng.delay(2.0 * 86_400.0);
                        rows.push(("converted", t, variant));
                    }
                }
            }
            if rng.unit() < 0.05 {
                rows.push(("replied", t + rng.delay(600.0), variant));
            }
        }
        for (event, ts, variant) in rows {
            if n == events {
                break;
            }
            // Generated data always fits the table.
            #[allow(clippy::unwrap_used)]
            b.push_row(&id, event, ts, &[variant]).unwrap();
            n += 1;
        }
    }
    #[allow(clippy::unwrap_used)]
    b.build().unwrap()
}

fn funnels(c: &mut Criterion) {
    let mut group = c.benchmark_group("funnel");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for events in [1_000_000usize, 10_000_000] {
        let table = generate(events);
        let ordered = FunnelSpec::new(STEPS).window(Duration::from_secs(7 * 86_400));
        let cases = [
            ("ordered_5_steps", ordered.clone()),
            ("strict_5_steps", ordered.clone().mode(FunnelMode::Strict)),
            (
                "any_order_5_steps",
                ordered.clone().mode(FunnelMode::AnyOrder),
            ),
            (
                "ordered_exclusion",
                ordered.clone().exclude("replied", 0, 4),
            ),
            (
                "ordered_by_variant",
                ordered
                    .clone()
                    .breakdown(Breakdown::Event("variant".into())),
            ),
            ("ordered_1_thread", ordered.clone().threads(1)),
        ];
        group.throughput(Throughput::Elements(events as u64));
        for (name, spec) in cases {
            if events > 1_000_000 && !matches!(name, "ordered_5_steps" | "ordered_1_thread") {
                continue;
            }
            group.bench_with_input(BenchmarkId::new(name, events), &spec, |b, spec| {
                b.iter(|| funnel::run(black_box(&table), black_box(spec)))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, funnels);
criterion_main!(benches);
