//! Hot paths of mia-experiments: one assignment, one Thompson decision among 10 arms, one full
//! analysis of a 5-arm experiment.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use mia_core::{Allocator, AssignmentRequest, CampaignId, ContactId, VariantId};
use mia_experiments::Splitter;
use mia_experiments::bandit::{ArmStats, Bandit, BanditConfig, Policy};
use mia_experiments::report::{StatsInput, VariantInput, analyze};
use mia_experiments::stats::Metric;
use rand::SeedableRng;
use rand::rngs::SmallRng;

fn splitter(c: &mut Criterion) {
    let split = Splitter::new()
        .with_salt("spring-2026")
        .with_weight("A", 2.0)
        .unwrap_or_default();
    let campaign = CampaignId::new("spring");
    let variants = [
        VariantId::new("A"),
        VariantId::new("B"),
        VariantId::new("C"),
    ];
    let contacts: Vec<ContactId> = (0..1024)
        .map(|i| ContactId::new(format!("contact-{i}")))
        .collect();
    let mut i = 0;
    c.bench_function("splitter/assign_3_variants", |b| {
        b.iter(|| {
            i = (i + 1) % contacts.len();
            split.assign(black_box(&AssignmentRequest {
                campaign: &campaign,
                contact: &contacts[i],
                variants: &variants,
            }))
        })
    });
}

fn thompson(c: &mut Criterion) {
    // Ten arms with a realistic history: a few thousand pulls each, rates 3–7%.
    let arms: Vec<ArmStats> = (0..10)
        .map(|k| {
            let pulls = 2000.0 + 300.0 * k as f64;
            ArmStats {
                pulls,
                reward: pulls * (0.03 + 0.004 * k as f64),
            }
        })
        .collect();
    let total: f64 = arms.iter().map(|a| a.pulls).sum();
    let mut rng = SmallRng::seed_from_u64(7);
    let mut group = c.benchmark_group("thompson");
    group.bench_function("choose_10_arms", |b| {
        b.iter(|| Policy::Thompson.choose(black_box(&arms), total, &mut rng))
    });
    group.bench_function("kl_ucb_choose_10_arms", |b| {
        b.iter(|| Policy::KlUcb.choose(black_box(&arms), total, &mut rng))
    });
    // The allocator path: lock, sticky map, per-contact seed, decision (batch of 1000).
    let bandit = Bandit::new(BanditConfig {
        batch: 1000,
        ..BanditConfig::default()
    });
    if let Ok(bandit) = bandit {
        let campaign = CampaignId::new("spring");
        let variants: Vec<VariantId> = (0..10).map(|k| VariantId::new(format!("v{k}"))).collect();
        let mut i = 0u64;
        group.bench_function("bandit_assign_new_contact_10_arms", |b| {
            b.iter(|| {
                i += 1;
                let contact = ContactId::new(format!("c{i}"));
                bandit.assign(&AssignmentRequest {
                    campaign: &campaign,
                    contact: &contact,
                    variants: &variants,
                })
            })
        });
    }
    group.finish();
}

fn analysis(c: &mut Criterion) {
    let variants = (0..5)
        .map(|k| VariantInput {
            name: format!("v{k}"),
            users: Some(20_000 + 100 * k),
            conversions: Some(1000 + 40 * k),
            n: None,
            sum: None,
            sum_squares: None,
        })
        .collect();
    let input = StatsInput {
        metric: Metric::Binomial,
        variants,
        weights: None,
        alpha: 0.05,
        prior: None,
        sequential: None,
    };
    c.bench_function("analysis/binomial_5_arms", |b| {
        b.iter(|| analyze(black_box(&input)))
    });
}

criterion_group!(benches, splitter, thompson, analysis);
criterion_main!(benches);
