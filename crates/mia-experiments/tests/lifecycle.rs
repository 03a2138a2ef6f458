//! The experiment lifecycle: holdouts, layers, stickiness, targeting and state transitions.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::{BTreeMap, HashSet};

use mia_core::{CampaignId, ContactId, VariantId};
use mia_experiments::{
    Decision, Exclusion, Experiment, ExperimentError, ExperimentState, HashVersion, Layer, Segment,
};
use serde_json::{Value, json};

fn ab() -> [VariantId; 2] {
    [VariantId::new("A"), VariantId::new("B")]
}

fn contact(i: usize) -> ContactId {
    ContactId::new(format!("contact-{i}"))
}

fn no_attributes() -> BTreeMap<String, Value> {
    BTreeMap::new()
}

fn running(exp: Experiment) -> Experiment {
    let mut exp = exp;
    exp.start().unwrap();
    exp
}

const BOTH: [HashVersion; 2] = [HashVersion::V1, HashVersion::V2];

#[test]
fn holdout_takes_its_share_with_its_propensity() {
    for (version, pinned) in [(HashVersion::V1, 9_938), (HashVersion::V2, 10_075)] {
        holdout_share(version, pinned);
    }
    // New experiments hash with the latest version.
    let exp = Experiment::new("spring", ab()).unwrap();
    assert_eq!(exp.hash(), HashVersion::LATEST);
}

/// `pinned` is the number of `contact-0..contact-99999` below 0.1 for experiment `spring`
/// under `version` (computed independently: Python's hashlib for V1, the reference C xxHash
/// for V2). This exact count pins the hash rule, so a change that would reshuffle live
/// experiments fails here. Never update it; add a hash version instead.
fn holdout_share(version: HashVersion, pinned: usize) {
    let mut exp = running(
        Experiment::new("spring", ab())
            .unwrap()
            .with_hash(version)
            .with_holdout(0.1)
            .unwrap(),
    );
    let n = 100_000;
    let mut held = 0;
    let mut a = 0;
    for i in 0..n {
        match exp.assign(&contact(i), &no_attributes()) {
            Decision::Holdout { propensity } => {
                assert_eq!(propensity, 0.1);
                held += 1;
            }
            Decision::Variant {
                variant,
                propensity,
            } => {
                assert!((propensity - 0.45).abs() < 1e-15, "{propensity}");
                if variant.as_str() == "A" {
                    a += 1;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    // Binomial(100000, 0.1): sd 94.9; within 4 sd of the expectation.
    assert!((held as f64 - 10_000.0).abs() < 380.0, "{version}: {held}");
    assert!((a as f64 - 45_000.0).abs() < 4.0 * (n as f64 * 0.45 * 0.55).sqrt());
    // The split is a pure function of (version, salt, id, contact).
    assert_eq!(held, pinned, "{version}");
}

#[test]
fn experiments_in_one_layer_never_share_a_contact() {
    let exp = |id: &str| running(Experiment::new(id, ab()).unwrap());
    let mut layer = Layer::new("pricing")
        .with_experiment(exp("one"), 0.3)
        .unwrap()
        .with_experiment(exp("two"), 0.3)
        .unwrap()
        .with_experiment(exp("three"), 0.2)
        .unwrap();
    let n = 20_000;
    let mut outside = 0;
    for i in 0..n {
        match layer.assign(&contact(i), &no_attributes()) {
            Some((id, decision)) => {
                assert!(decision.assignment().is_some());
                assert_eq!(layer.experiment_of(&contact(i)), Some(&id));
            }
            None => outside += 1,
        }
    }
    // Each contact was stored by exactly one experiment.
    let mut seen = HashSet::new();
    let mut counts = Vec::new();
    for id in ["one", "two", "three"] {
        let e = layer.experiment(&CampaignId::new(id)).unwrap();
        counts.push(e.assignments().count());
        for (c, _) in e.assignments() {
            assert!(seen.insert(c.clone()), "{c} is in two experiments");
        }
    }
    assert_eq!(seen.len() + outside, n);
    // Slices of 30%, 30%, 20% and 20% outside; Binomial sd at most 65, allow 5 sd.
    for (got, share) in counts.iter().chain([&outside]).zip([0.3, 0.3, 0.2, 0.2]) {
        assert!(
            (*got as f64 - share * n as f64).abs() < 325.0,
            "{counts:?} {outside}"
        );
    }
    assert_eq!(layer.share(&CampaignId::new("three")), Some(0.2));
    // Overfilling the layer or adding an id twice is refused.
    assert!(layer.clone().with_experiment(exp("four"), 0.25).is_err());
    assert!(layer.with_experiment(exp("one"), 0.1).is_err());
}

#[test]
fn removing_an_experiment_frees_its_share_and_moves_no_one_else() {
    for version in BOTH {
        removal_moves_no_one_else(version);
    }
}

fn removal_moves_no_one_else(version: HashVersion) {
    let exp = |id: &str| running(Experiment::new(id, ab()).unwrap().with_hash(version));
    let mut layer = Layer::new("pricing")
        .with_hash(version)
        .with_experiment(exp("one"), 0.3)
        .unwrap()
        .with_experiment(exp("two"), 0.3)
        .unwrap()
        .with_experiment(exp("three"), 0.3)
        .unwrap();
    let n = 6_000;
    let before: Vec<Option<(CampaignId, Decision)>> = (0..n)
        .map(|i| layer.assign(&contact(i), &no_attributes()))
        .collect();
    assert!((layer.free_share() - 0.1).abs() < 1e-12);

    // Removing "two" gives back its experiment with its decisions, and frees its 30%.
    let removed = layer.remove_experiment(&CampaignId::new("two")).unwrap();
    assert_eq!(removed.id().as_str(), "two");
    let in_two = before
        .iter()
        .filter(|d| matches!(d, Some((id, _)) if id.as_str() == "two"))
        .count();
    assert_eq!(removed.assignments().count(), in_two);
    assert!(layer.experiment(&CampaignId::new("two")).is_none());
    assert!(layer.remove_experiment(&CampaignId::new("two")).is_none());
    assert!((layer.free_share() - 0.4).abs() < 1e-12);
    assert_eq!(layer.experiments().count(), 2);

    // Everyone else keeps their experiment and decision; two's contacts are in none.
    for (i, was) in before.iter().enumerate() {
        let now = layer.assign(&contact(i), &no_attributes());
        match was {
            Some((id, _)) if id.as_str() == "two" => assert_eq!(now, None, "{i}"),
            other => assert_eq!(&now, other, "{i}"),
        }
    }

    // The freed share goes to a new experiment: the gap first, then the free tail, without
    // moving "one" or "three".
    layer.add_experiment(exp("four"), 0.35).unwrap();
    assert!((layer.free_share() - 0.05).abs() < 1e-12);
    assert!(
        layer.add_experiment(exp("five"), 0.06).is_err(),
        "only 5% is left"
    );
    let mut in_four = 0;
    for (i, was) in before.iter().enumerate() {
        let now = layer.assign(&contact(i), &no_attributes());
        match (was, &now) {
            (Some((id, _)), Some((new, _))) if id.as_str() == "two" => {
                assert_eq!(new.as_str(), "four", "{i}");
                in_four += 1;
            }
            (Some((id, _)), None) if id.as_str() == "two" => {}
            (None, Some((new, _))) => {
                assert_eq!(new.as_str(), "four", "{i}");
                in_four += 1;
            }
            _ => assert_eq!(&now, was, "{i}"),
        }
    }
    // Binomial(6000, 0.35): sd 37; allow 5 sd.
    assert!(
        (in_four as f64 - 0.35 * n as f64).abs() < 185.0,
        "{version}: {in_four}"
    );
    assert_eq!(layer.share(&CampaignId::new("four")), Some(0.35));
}

#[test]
fn weight_changes_keep_existing_assignments() {
    for version in BOTH {
        weight_change_keeps_assignments(version);
    }
}

fn weight_change_keeps_assignments(version: HashVersion) {
    let mut exp = running(Experiment::new("spring", ab()).unwrap().with_hash(version));
    let before: Vec<Decision> = (0..5_000)
        .map(|i| exp.assign(&contact(i), &no_attributes()))
        .collect();
    exp.set_weight("A", 9.0).unwrap();
    exp.set_holdout(0.5).unwrap();
    for (i, old) in before.iter().enumerate() {
        assert_eq!(&exp.assign(&contact(i), &no_attributes()), old);
    }
    // New contacts follow the new rule: half held out, A gets 90% of the rest.
    let mut a = 0;
    let mut held = 0;
    for i in 5_000..15_000 {
        match exp.assign(&contact(i), &no_attributes()) {
            Decision::Holdout { .. } => held += 1,
            Decision::Variant {
                variant,
                propensity,
            } if variant.as_str() == "A" => {
                assert!((propensity - 0.45).abs() < 1e-15);
                a += 1;
            }
            _ => {}
        }
    }
    assert!((held as f64 - 5_000.0).abs() < 250.0, "{version}: {held}");
    assert!((a as f64 - 4_500.0).abs() < 250.0, "{version}: {a}");

    // A fresh process with the new weights restores the store and agrees.
    let saved: Vec<(ContactId, Decision)> = exp
        .assignments()
        .map(|(c, d)| (c.clone(), d.clone()))
        .collect();
    let mut restarted = running(
        Experiment::new("spring", ab())
            .unwrap()
            .with_hash(version)
            .with_weight("A", 9.0)
            .unwrap()
            .with_holdout(0.5)
            .unwrap(),
    );
    restarted.restore(saved).unwrap();
    for (i, old) in before.iter().enumerate() {
        assert_eq!(&restarted.assign(&contact(i), &no_attributes()), old);
    }
    // Contacts first seen after the restart land as they would have in the first process
    // (same version, weights and holdout), whichever process sees them first.
    for i in 15_000..16_000 {
        assert_eq!(
            restarted.assign(&contact(i), &no_attributes()),
            exp.assign(&contact(i), &no_attributes())
        );
    }
    let bad = Decision::Variant {
        variant: VariantId::new("Z"),
        propensity: 0.5,
    };
    assert!(restarted.restore([(contact(0), bad)]).is_err());
}

#[test]
fn only_the_segment_is_assigned() {
    let mut exp = running(
        Experiment::new("pro-upsell", ab())
            .unwrap()
            .with_segment(Segment::equals("plan", "pro")),
    );
    let pro: BTreeMap<String, Value> = [("plan".to_owned(), json!("pro"))].into_iter().collect();
    let free: BTreeMap<String, Value> = [("plan".to_owned(), json!("free"))].into_iter().collect();
    assert_eq!(
        exp.assign(&contact(1), &free),
        Decision::Excluded {
            reason: Exclusion::NotTargeted
        }
    );
    assert_eq!(exp.assignments().count(), 0);
    let first = exp.assign(&contact(1), &pro);
    assert!(first.assignment().is_some());
    // Once in, a contact stays in even if its attributes change.
    assert_eq!(exp.assign(&contact(1), &free), first);
    // The winner ships to the segment only.
    exp.stop().unwrap();
    exp.conclude("B").unwrap();
    assert!(matches!(
        exp.assign(&contact(2), &free),
        Decision::Excluded {
            reason: Exclusion::NotTargeted
        }
    ));
    assert_eq!(
        exp.assign(&contact(2), &pro)
            .assignment()
            .map(|a| a.variant),
        Some(VariantId::new("B"))
    );
}

#[test]
fn the_lifecycle_moves_forward_only() {
    let mut exp = Experiment::new("spring", ab()).unwrap();
    let excluded = Decision::Excluded {
        reason: Exclusion::NotRunning,
    };
    assert_eq!(exp.assign(&contact(1), &no_attributes()), excluded);
    assert!(matches!(
        exp.stop(),
        Err(ExperimentError::InvalidTransition {
            from: "draft",
            to: "stopped",
            ..
        })
    ));
    assert!(exp.conclude("A").is_err());
    exp.start().unwrap();
    assert!(exp.start().is_err());
    assert!(
        exp.conclude("A").is_err(),
        "running -> concluded skips stopped"
    );
    assert!(
        exp.assign(&contact(1), &no_attributes())
            .assignment()
            .is_some()
    );
    exp.stop().unwrap();
    assert_eq!(exp.assign(&contact(1), &no_attributes()), excluded);
    assert!(exp.start().is_err(), "stopped experiments do not restart");
    assert!(exp.conclude("Z").is_err(), "the winner must be a variant");
    exp.conclude("B").unwrap();
    assert_eq!(
        exp.state(),
        &ExperimentState::Concluded {
            winner: VariantId::new("B")
        }
    );
    assert_eq!(
        exp.assign(&contact(2), &no_attributes()),
        Decision::Variant {
            variant: VariantId::new("B"),
            propensity: 1.0
        }
    );
    assert!(exp.stop().is_err());
    assert!(exp.set_weight("A", 2.0).is_err());
}

#[test]
fn bad_configuration_is_refused() {
    assert!(Experiment::new("x", []).is_err());
    assert!(Experiment::new("x", [VariantId::new("A"), VariantId::new("A")]).is_err());
    let exp = Experiment::new("x", ab()).unwrap();
    assert!(exp.clone().with_holdout(1.0).is_err());
    assert!(exp.clone().with_holdout(-0.1).is_err());
    assert!(exp.clone().with_weight("A", 0.0).is_err());
    assert!(exp.with_weight("C", 1.0).is_err());
}

#[test]
fn two_workers_with_the_same_configuration_agree_without_sharing_state() {
    for version in BOTH {
        workers_agree(version);
    }
}

fn workers_agree(version: HashVersion) {
    let config = || {
        running(
            Experiment::new("spring", ab())
                .unwrap()
                .with_hash(version)
                .with_weight("B", 3.0)
                .unwrap()
                .with_holdout(0.2)
                .unwrap(),
        )
    };
    let (mut one, mut two) = (config(), config());
    let mut other_salt = running(
        Experiment::new("spring", ab())
            .unwrap()
            .with_hash(version)
            .with_salt("another")
            .with_weight("B", 3.0)
            .unwrap()
            .with_holdout(0.2)
            .unwrap(),
    );
    let mut moved = 0;
    for i in 0..2_000 {
        let d = one.assign(&contact(i), &no_attributes());
        assert_eq!(two.assign(&contact(i), &no_attributes()), d);
        if other_salt.assign(&contact(i), &no_attributes()) != d {
            moved += 1;
        }
    }
    // A new salt reshuffles: with shares 0.2 / 0.2 / 0.6 two independent draws differ with
    // probability 1 - (0.04 + 0.04 + 0.36) = 0.56.
    assert!((1_000..1_250).contains(&moved), "{version}: {moved}");
}

#[test]
fn the_hash_version_is_part_of_the_rule() {
    // Same experiment, other version: new contacts are reshuffled (shares 0.2 / 0.2 / 0.6,
    // so two independent draws differ with probability 0.56), stored ones are not.
    let config = |version| {
        running(
            Experiment::new("spring", ab())
                .unwrap()
                .with_hash(version)
                .with_weight("B", 3.0)
                .unwrap()
                .with_holdout(0.2)
                .unwrap(),
        )
    };
    let (mut v1, mut v2) = (config(HashVersion::V1), config(HashVersion::V2));
    let mut moved = 0;
    for i in 0..2_000 {
        if v1.assign(&contact(i), &no_attributes()) != v2.assign(&contact(i), &no_attributes()) {
            moved += 1;
        }
    }
    assert!((1_000..1_250).contains(&moved), "{moved}");
    let saved: Vec<(ContactId, Decision)> = v1
        .assignments()
        .map(|(c, d)| (c.clone(), d.clone()))
        .collect();
    let mut upgraded = config(HashVersion::V2);
    upgraded.restore(saved).unwrap();
    for i in 0..2_000 {
        assert_eq!(
            upgraded.assign(&contact(i), &no_attributes()),
            v1.assign(&contact(i), &no_attributes())
        );
    }
}
