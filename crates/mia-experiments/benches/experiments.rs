//! Hot paths of mia-experiments: one assignment among 3 and 10 variants under each hash
//! version (target: under 100 ns for 10 arms), one Thompson decision among 10 arms, one
//! experiment decision, one LinUCB choice and update, one full analysis of a 5-arm experiment.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use mia_core::{Allocator, AssignmentRequest, CampaignId, ContactId, VariantId};
use mia_experiments::bandit::{ArmStats, Bandit, BanditConfig, LinUcb, Policy};
use mia_experiments::report::{StatsInput, VariantInput, analyze};
use mia_experiments::stats::Metric;
use mia_experiments::{Experiment, ExperimentAllocator, HashVersion, Splitter};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

fn splitter(c: &mut Criterion) {
    let contacts: Vec<ContactId> = (0..1024)
        .map(|i| ContactId::new(format!("contact-{i}")))
        .collect();
    let campaign = CampaignId::new("spring");
    let three = [
        VariantId::new("A"),
        VariantId::new("B"),
        VariantId::new("C"),
    ];
    let ten: Vec<VariantId> = (0..10).map(|k| VariantId::new(format!("v{k}"))).collect();
    let mut group = c.benchmark_group("splitter");
    // One weighted variant, so the weighted rule runs (not the even split's shortcut).
    for (version, suffix) in [(HashVersion::V2, ""), (HashVersion::V1, "_v1")] {
        let Ok(split) = Splitter::new()
            .with_salt("spring-2026")
            .with_hash(version)
            .with_weight("A", 2.0)
            .and_then(|s| s.with_weight("v0", 2.0))
        else {
            return;
        };
        let mut i = 0;
        group.bench_function(format!("assign_3_variants{suffix}"), |b| {
            b.iter(|| {
                i = (i + 1) % contacts.len();
                split.assign(black_box(&AssignmentRequest::new(
                    &campaign,
                    &contacts[i],
                    &three,
                )))
            })
        });
        // The seam's path: the chosen variant is copied into the owned `Assignment`.
        group.bench_function(format!("assign_10_variants{suffix}"), |b| {
            b.iter(|| {
                i = (i + 1) % contacts.len();
                split.assign(black_box(&AssignmentRequest::new(
                    &campaign,
                    &contacts[i],
                    &ten,
                )))
            })
        });
        // The same decision borrowing the variant: no allocation.
        group.bench_function(format!("choose_10_variants{suffix}"), |b| {
            b.iter(|| {
                i = (i + 1) % contacts.len();
                split
                    .choose(black_box(&AssignmentRequest::new(
                        &campaign,
                        &contacts[i],
                        &ten,
                    )))
                    .map(|pick| pick.index)
            })
        });
    }
    group.finish();
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
                bandit.assign(&AssignmentRequest::new(&campaign, &contact, &variants))
            })
        });
    }
    group.finish();
}

fn lifecycle(c: &mut Criterion) {
    // A returning contact (the store answers) and a new one (hash, segment, store insert).
    let variants = [
        VariantId::new("A"),
        VariantId::new("B"),
        VariantId::new("C"),
    ];
    let Ok(mut exp) = Experiment::new("spring", variants).and_then(|e| e.with_holdout(0.1)) else {
        return;
    };
    if exp.start().is_err() {
        return;
    }
    let attributes = Default::default();
    let returning = ContactId::new("contact-1");
    exp.assign(&returning, &attributes);
    c.bench_function("experiment/assign_returning_contact", |b| {
        b.iter(|| exp.assign(black_box(&returning), &attributes))
    });
    let mut i = 0u64;
    c.bench_function("experiment/assign_new_contact", |b| {
        b.iter(|| {
            i += 1;
            exp.assign(&ContactId::new(format!("c{i}")), &attributes)
        })
    });
    // The agent's path: the allocator's lock, the experiment's stored decision, the seam's type.
    let variants = [
        VariantId::new("A"),
        VariantId::new("B"),
        VariantId::new("C"),
    ];
    let Ok(allocator) = ExperimentAllocator::new().with_experiment(exp) else {
        return;
    };
    let campaign = CampaignId::new("spring");
    c.bench_function("experiment/allocator_returning_contact", |b| {
        b.iter(|| {
            allocator.allocate(black_box(
                &AssignmentRequest::new(&campaign, &returning, &variants)
                    .with_attributes(&attributes),
            ))
        })
    });
}

fn linucb(c: &mut Criterion) {
    // Ten arms over eight features, each arm trained on 200 contexts.
    let Ok(mut bandit) = LinUcb::new(10, 8, 1.0) else {
        return;
    };
    let mut rng = SmallRng::seed_from_u64(3);
    let mut context = || -> Vec<f64> { (0..8).map(|_| rng.random::<f64>()).collect() };
    for arm in 0..10 {
        for _ in 0..200 {
            let x = context();
            let _ = bandit.update(arm, &x, x[arm % 8]);
        }
    }
    let x = context();
    c.bench_function("linucb/choose_10_arms_8_features", |b| {
        b.iter(|| bandit.choose(black_box(&x)))
    });
    c.bench_function("linucb/update_8_features", |b| {
        b.iter(|| bandit.update(3, black_box(&x), 1.0))
    });
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

criterion_group!(benches, splitter, thompson, lifecycle, linucb, analysis);
criterion_main!(benches);
