//! The funnel engine against a deliberately naive implementation of the documented semantics,
//! on random small data full of ties, repeated step names, windows and exclusions.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::BTreeMap;

use mia_analytics::funnel::{
    self, Breakdown, BreakdownGroup, EventTable, EventTableBuilder, FunnelMode, FunnelResult,
    FunnelSpec, StepCount, TimeToConvert,
};
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Ev {
    user: u8,
    name: &'static str,
    ts: i64,
    variant: &'static str,
}

const NAMES: [&str; 5] = ["a", "b", "c", "d", "x"];
const VARIANTS: [&str; 3] = ["p", "q", "r"];
const PLANS: [&str; 2] = ["free", "pro"];

/// What one user contributes: furthest step (0: none), fastest conversion, group value.
struct UserResult {
    level: usize,
    time: Option<i64>,
    group: String,
}

/// The documented semantics, transliterated: every starting event, its greedy path found by
/// searching forward, exclusions checked by position, no shortcut of any kind.
fn brute_user(events: &[Ev], spec: &FunnelSpec, plan: &str) -> UserResult {
    let steps = &spec.steps;
    let n = steps.len();
    let w = spec.window_micros;
    let rank = |name: &str| steps.iter().position(|s| s == name).unwrap_or(n);
    let mut evs: Vec<(usize, &Ev)> = events.iter().enumerate().collect();
    evs.sort_by_key(|(i, e)| (e.ts, rank(e.name), *i));
    let evs: Vec<&Ev> = evs.into_iter().map(|(_, e)| e).collect();
    let starts = |e: &Ev| match spec.mode {
        FunnelMode::AnyOrder => steps.iter().any(|s| s == e.name),
        _ => steps[0] == e.name,
    };
    let mut level = 0;
    let mut time: Option<i64> = None;
    for p in 0..evs.len() {
        if !starts(evs[p]) {
            continue;
        }
        let t0 = evs[p].ts;
        let in_window = |q: usize| evs[q].ts <= t0 + w;
        // Positions of the events that reached steps 1, 2, ...
        let mut path = vec![p];
        match spec.mode {
            FunnelMode::Ordered => {
                while path.len() < n {
                    let cur = *path.last().unwrap();
                    let next = (cur + 1..evs.len())
                        .find(|&q| evs[q].name == steps[path.len()] && in_window(q));
                    match next {
                        Some(q) => path.push(q),
                        None => break,
                    }
                }
            }
            FunnelMode::Strict => {
                while path.len() < n {
                    let q = *path.last().unwrap() + 1;
                    if q < evs.len() && evs[q].name == steps[path.len()] && in_window(q) {
                        path.push(q);
                    } else {
                        break;
                    }
                }
            }
            FunnelMode::AnyOrder => {
                path.clear();
                for q in p..evs.len() {
                    if !in_window(q) {
                        break;
                    }
                    // Steps covered by events p..=q: per distinct name, at most as many as
                    // the steps that name appears in.
                    let mut names: Vec<&str> = steps.iter().map(String::as_str).collect();
                    names.sort_unstable();
                    names.dedup();
                    let covered: usize = names
                        .iter()
                        .map(|name| {
                            let slots = steps.iter().filter(|s| s == name).count();
                            let seen = evs[p..=q].iter().filter(|e| e.name == *name).count();
                            slots.min(seen)
                        })
                        .sum();
                    while path.len() < covered {
                        path.push(q);
                    }
                }
            }
        }
        let reached = path.len();
        let dropped = spec.exclusions.iter().any(|x| {
            x.from_step < reached
                && (0..evs.len()).any(|q| {
                    evs[q].name == x.event
                        && q > path[x.from_step]
                        && if x.to_step < reached {
                            q < path[x.to_step]
                        } else {
                            in_window(q)
                        }
                })
        });
        if dropped {
            continue;
        }
        level = level.max(reached);
        if reached == n {
            let t = evs[path[n - 1]].ts - t0;
            time = Some(time.map_or(t, |b| b.min(t)));
        }
    }
    let group = match &spec.breakdown {
        None => String::new(),
        Some(Breakdown::User(_)) => plan.to_owned(),
        Some(Breakdown::Event(_)) => {
            let first = evs.iter().find(|e| starts(e));
            match first {
                None => String::new(),
                Some(f) => evs
                    .iter()
                    .filter(|e| starts(e) && e.ts == f.ts && rank(e.name) == rank(f.name))
                    .map(|e| e.variant)
                    .min()
                    .unwrap()
                    .to_owned(),
            }
        }
    };
    UserResult { level, time, group }
}

fn counts(spec: &FunnelSpec, levels: &[usize]) -> Vec<StepCount> {
    spec.steps
        .iter()
        .enumerate()
        .map(|(k, name)| StepCount {
            name: name.clone(),
            count: levels.iter().filter(|&&l| l > k).count() as u64,
        })
        .collect()
}

fn brute(events: &[Ev], plans: &[&str], spec: &FunnelSpec) -> FunnelResult {
    let mut users: BTreeMap<u8, Vec<Ev>> = BTreeMap::new();
    for e in events {
        users.entry(e.user).or_default().push(e.clone());
    }
    let results: Vec<UserResult> = users
        .iter()
        .map(|(u, evs)| brute_user(evs, spec, plans[*u as usize]))
        .filter(|r| r.level > 0)
        .collect();
    let levels: Vec<usize> = results.iter().map(|r| r.level).collect();
    let mut times: Vec<i64> = results.iter().filter_map(|r| r.time).collect();
    let total = TimeToConvert::from_micros(&mut times, spec.histogram_bins);
    let mut breakdown = Vec::new();
    if spec.breakdown.is_some() {
        let mut groups: BTreeMap<&str, Vec<&UserResult>> = BTreeMap::new();
        for r in &results {
            groups.entry(&r.group).or_default().push(r);
        }
        for (value, rs) in groups {
            let levels: Vec<usize> = rs.iter().map(|r| r.level).collect();
            let mut times: Vec<i64> = rs.iter().filter_map(|r| r.time).collect();
            let time = TimeToConvert::from_micros(&mut times, spec.histogram_bins);
            breakdown.push(BreakdownGroup {
                breakdown_value: value.to_owned(),
                steps: counts(spec, &levels),
                median_time_to_convert_s: time.as_ref().map(|t| t.median_s),
                time_to_convert: time,
            });
        }
    }
    FunnelResult {
        steps: counts(spec, &levels),
        median_time_to_convert_s: total.as_ref().map(|t| t.median_s),
        time_to_convert: total,
        breakdown,
    }
}

fn table(events: &[Ev], plans: &[&str]) -> EventTable {
    let mut b = EventTableBuilder::with_columns(["variant"]);
    for e in events {
        b.push_row(&format!("u{}", e.user), e.name, e.ts, &[e.variant])
            .unwrap();
    }
    // Every user gets a plan, those without events too (they are in no funnel).
    for (u, plan) in plans.iter().enumerate() {
        b.user_property("plan", &format!("u{u}"), plan).unwrap();
    }
    b.build().unwrap()
}

fn event() -> impl Strategy<Value = Ev> {
    (
        0u8..4,
        0usize..NAMES.len(),
        0i64..24,
        0usize..VARIANTS.len(),
    )
        .prop_map(|(user, n, ts, v)| Ev {
            user,
            name: NAMES[n],
            ts,
            variant: VARIANTS[v],
        })
}

fn spec() -> impl Strategy<Value = FunnelSpec> {
    let steps = prop::collection::vec(0usize..4, 1..=4);
    let mode = prop_oneof![
        Just(FunnelMode::Ordered),
        Just(FunnelMode::Strict),
        Just(FunnelMode::AnyOrder)
    ];
    let exclusions = prop::collection::vec((0usize..NAMES.len(), 0usize..4, 0usize..4), 0..=2);
    let breakdown = prop_oneof![
        Just(None),
        Just(Some(Breakdown::Event("variant".into()))),
        Just(Some(Breakdown::User("plan".into())))
    ];
    (steps, 0i64..16, mode, exclusions, breakdown, 0usize..4).prop_map(
        |(steps, window, mode, exclusions, breakdown, bins)| {
            let n = steps.len();
            let mut spec = FunnelSpec::new(steps.iter().map(|&s| NAMES[s]))
                .window_micros(window)
                .mode(mode)
                .histogram_bins(bins);
            for (name, a, b) in exclusions {
                let (from, to) = (a.min(b) % n, a.max(b) % n);
                if from < to {
                    spec = spec.exclude(NAMES[name], from, to);
                }
            }
            spec.breakdown = breakdown;
            spec
        },
    )
}

fn plans() -> impl Strategy<Value = Vec<&'static str>> {
    prop::collection::vec(prop::sample::select(PLANS.to_vec()), 4)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 3000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn engine_matches_brute_force(
        events in prop::collection::vec(event(), 0..40),
        spec in spec(),
        plans in plans(),
    ) {
        let table = table(&events, &plans);
        let got = funnel::run(&table, &spec).unwrap();
        let want = brute(&events, &plans, &spec);
        prop_assert_eq!(got, want);
    }

    #[test]
    fn input_order_does_not_matter(
        events in prop::collection::vec(event(), 0..30),
        spec in spec(),
        plans in plans(),
    ) {
        let forward = funnel::run(&table(&events, &plans), &spec).unwrap();
        let mut reversed = events.clone();
        reversed.reverse();
        let backward = funnel::run(&table(&reversed, &plans), &spec).unwrap();
        prop_assert_eq!(forward, backward);
    }
}

/// The brute force itself, on cases worked out by hand, so it cannot drift with the engine.
#[test]
fn the_brute_force_agrees_with_hand_worked_cases() {
    let ev = |user, name, ts| Ev {
        user,
        name,
        ts,
        variant: "p",
    };
    let plans = ["free"; 4];
    // u0: a, b, c in order; u1: a then c (no b); u2: b, a (wrong order); u3: a, b too late.
    let events = [
        ev(0, "a", 0),
        ev(0, "x", 1),
        ev(0, "b", 2),
        ev(0, "c", 3),
        ev(1, "a", 0),
        ev(1, "c", 1),
        ev(2, "b", 0),
        ev(2, "a", 1),
        ev(3, "a", 0),
        ev(3, "b", 9),
    ];
    let spec = FunnelSpec::new(["a", "b", "c"]).window_micros(5);
    let r = brute(&events, &plans, &spec);
    let got: Vec<u64> = r.steps.iter().map(|s| s.count).collect();
    assert_eq!(got, [4, 1, 1]);
    assert_eq!(r.median_time_to_convert_s, Some(3e-6));
    // Strict: u0's x breaks a -> b.
    let r = brute(&events, &plans, &spec.clone().mode(FunnelMode::Strict));
    let got: Vec<u64> = r.steps.iter().map(|s| s.count).collect();
    assert_eq!(got, [4, 0, 0]);
    // Any order: u1 covers a and c, u2 covers a and b.
    let r = brute(&events, &plans, &spec.clone().mode(FunnelMode::AnyOrder));
    let got: Vec<u64> = r.steps.iter().map(|s| s.count).collect();
    assert_eq!(got, [4, 3, 1]);
    // Excluding x between a and b drops u0's only attempt.
    let r = brute(&events, &plans, &spec.clone().exclude("x", 0, 1));
    let got: Vec<u64> = r.steps.iter().map(|s| s.count).collect();
    assert_eq!(got, [3, 0, 0]);
}
