//! The documented funnel rules, one small case each: ties, window edges, attempts, strictness,
//! exclusions, time to convert, breakdowns, mia's own events.
#![allow(clippy::unwrap_used, missing_docs)]

use mia_analytics::AnalyticsError;
use mia_analytics::funnel::{
    self, Breakdown, EventTable, EventTableBuilder, FunnelMode, FunnelSpec,
};

/// One second, in microseconds.
const S: i64 = 1_000_000;

fn table(rows: &[(&str, &str, i64)]) -> EventTable {
    let mut b = EventTable::builder();
    for (user, event, ts) in rows {
        b.push(user, event, *ts).unwrap();
    }
    b.build().unwrap()
}

fn counts(table: &EventTable, spec: &FunnelSpec) -> Vec<u64> {
    funnel::run(table, spec)
        .unwrap()
        .steps
        .iter()
        .map(|s| s.count)
        .collect()
}

fn sdr() -> FunnelSpec {
    FunnelSpec::new(["sent", "delivered", "read"]).window_micros(10 * S)
}

#[test]
fn simultaneous_events_count_in_funnel_order_whatever_the_input_order() {
    let t = table(&[
        ("u", "read", 5 * S),
        ("u", "delivered", 5 * S),
        ("u", "sent", 5 * S),
    ]);
    assert_eq!(counts(&t, &sdr()), [1, 1, 1]);
    let r = funnel::run(&t, &sdr()).unwrap();
    assert_eq!(r.median_time_to_convert_s, Some(0.0));
    // Strict too: simultaneous steps are consecutive.
    assert_eq!(counts(&t, &sdr().mode(FunnelMode::Strict)), [1, 1, 1]);
}

#[test]
fn the_window_is_inclusive_and_measured_from_the_first_step() {
    let at_edge = table(&[
        ("u", "sent", 0),
        ("u", "delivered", 4 * S),
        ("u", "read", 10 * S),
    ]);
    assert_eq!(counts(&at_edge, &sdr()), [1, 1, 1]);
    let past_edge = table(&[
        ("u", "sent", 0),
        ("u", "delivered", 4 * S),
        ("u", "read", 10 * S + 1),
    ]);
    assert_eq!(counts(&past_edge, &sdr()), [1, 1, 0]);
}

#[test]
fn every_first_step_starts_an_attempt_and_the_furthest_one_counts() {
    // The first attempt runs out of window; the second, started later, completes.
    let t = table(&[
        ("u", "sent", 0),
        ("u", "delivered", S),
        ("u", "sent", 20 * S),
        ("u", "delivered", 21 * S),
        ("u", "read", 22 * S),
    ]);
    let r = funnel::run(&t, &sdr()).unwrap();
    assert_eq!(
        r.steps.iter().map(|s| s.count).collect::<Vec<_>>(),
        [1, 1, 1]
    );
    assert_eq!(r.median_time_to_convert_s, Some(2.0));
}

#[test]
fn time_to_convert_uses_the_fastest_completing_attempt() {
    // Attempt 1: sent 0 -> read 9 (9 s). Attempt 2: sent 8 -> read 9 (1 s).
    let t = table(&[
        ("u", "sent", 0),
        ("u", "delivered", S),
        ("u", "sent", 8 * S),
        ("u", "delivered", 8 * S),
        ("u", "read", 9 * S),
    ]);
    assert_eq!(
        funnel::run(&t, &sdr()).unwrap().median_time_to_convert_s,
        Some(1.0)
    );
}

#[test]
fn other_events_may_sit_between_steps_except_in_strict_mode() {
    let t = table(&[
        ("u", "sent", 0),
        ("u", "clicked", S),
        ("u", "delivered", 2 * S),
        ("u", "read", 3 * S),
    ]);
    assert_eq!(counts(&t, &sdr()), [1, 1, 1]);
    assert_eq!(counts(&t, &sdr().mode(FunnelMode::Strict)), [1, 0, 0]);
}

#[test]
fn one_event_serves_one_step_of_an_attempt() {
    let spec = FunnelSpec::new(["read", "read"]).window_micros(10 * S);
    assert_eq!(counts(&table(&[("u", "read", 0)]), &spec), [1, 0]);
    assert_eq!(
        counts(&table(&[("u", "read", 0), ("u", "read", 0)]), &spec),
        [1, 1]
    );
    let any = FunnelSpec::new(["read", "read", "sent"])
        .window_micros(10 * S)
        .mode(FunnelMode::AnyOrder);
    assert_eq!(
        counts(&table(&[("u", "sent", 0), ("u", "read", S)]), &any),
        [1, 1, 0]
    );
}

#[test]
fn any_order_counts_steps_covered_within_the_window() {
    let spec = sdr().mode(FunnelMode::AnyOrder);
    let t = table(&[
        ("u", "read", 0),
        ("u", "sent", S),
        ("u", "delivered", 30 * S),
        ("v", "delivered", 0),
    ]);
    assert_eq!(counts(&t, &spec), [2, 1, 0]);
}

#[test]
fn an_excluded_event_between_the_steps_drops_the_attempt_entirely() {
    let spec = sdr().exclude("opted_out", 0, 2);
    let t = table(&[
        ("u", "sent", 0),
        ("u", "delivered", S),
        ("u", "opted_out", 2 * S),
        ("u", "read", 3 * S),
    ]);
    // Not even step 1 counts: the only attempt is dropped.
    assert_eq!(counts(&t, &spec), [0, 0, 0]);
    // After the last excluded step, or after the window, it does not matter.
    let after = table(&[
        ("u", "sent", 0),
        ("u", "delivered", S),
        ("u", "read", 3 * S),
        ("u", "opted_out", 4 * S),
    ]);
    assert_eq!(counts(&after, &spec), [1, 1, 1]);
    let late = table(&[("u", "sent", 0), ("u", "opted_out", 11 * S)]);
    assert_eq!(counts(&late, &spec), [1, 0, 0]);
    // An attempt that never reaches `to_step` is dropped by an exclusion inside the window.
    let stuck = table(&[("u", "sent", 0), ("u", "opted_out", 9 * S)]);
    assert_eq!(counts(&stuck, &spec), [0, 0, 0]);
    // Another attempt, started after the exclusion, still counts.
    let again = table(&[
        ("u", "sent", 0),
        ("u", "opted_out", S),
        ("u", "sent", 2 * S),
    ]);
    assert_eq!(counts(&again, &spec), [1, 0, 0]);
}

#[test]
fn a_simultaneous_exclusion_comes_after_the_step_events_of_that_instant() {
    let spec = sdr().exclude("opted_out", 0, 1);
    // Same instant as `sent`: after it, so between sent and delivered: dropped.
    let t = table(&[
        ("u", "opted_out", 0),
        ("u", "sent", 0),
        ("u", "delivered", S),
    ]);
    assert_eq!(counts(&t, &spec), [0, 0, 0]);
    // Same instant as `delivered`: after it, so not between: kept.
    let t = table(&[
        ("u", "sent", 0),
        ("u", "opted_out", S),
        ("u", "delivered", S),
    ]);
    assert_eq!(counts(&t, &spec), [1, 1, 0]);
}

#[test]
fn breakdown_groups_add_up_and_use_the_first_starting_event() {
    let mut b = EventTableBuilder::with_columns(["variant"]);
    b.push_row("u", "sent", 0, &["A"]).unwrap();
    b.push_row("u", "sent", 5 * S, &["B"]).unwrap();
    b.push_row("u", "delivered", 6 * S, &["B"]).unwrap();
    b.push_row("v", "sent", 0, &["B"]).unwrap();
    // Two simultaneous first sends: the smaller value wins.
    b.push_row("w", "sent", 0, &["C"]).unwrap();
    b.push_row("w", "sent", 0, &["B"]).unwrap();
    b.push_row("x", "read", 0, &["A"]).unwrap();
    b.user_property("plan", "u", "pro").unwrap();
    let t = b.build().unwrap();
    let r = funnel::run(&t, &sdr().breakdown(Breakdown::Event("variant".into()))).unwrap();
    let groups: Vec<(&str, Vec<u64>)> = r
        .breakdown
        .iter()
        .map(|g| {
            (
                g.breakdown_value.as_str(),
                g.steps.iter().map(|s| s.count).collect(),
            )
        })
        .collect();
    assert_eq!(groups, [("A", vec![1, 1, 0]), ("B", vec![2, 0, 0])]);
    let r = funnel::run(&t, &sdr().breakdown(Breakdown::User("plan".into()))).unwrap();
    let groups: Vec<(&str, u64)> = r
        .breakdown
        .iter()
        .map(|g| (g.breakdown_value.as_str(), g.steps[0].count))
        .collect();
    assert_eq!(groups, [("", 2), ("pro", 1)]);
    assert_eq!(r.steps[0].count, 3);
}

#[test]
fn bad_queries_are_errors_not_panics() {
    let t = table(&[("u", "sent", 0)]);
    let invalid =
        |spec: FunnelSpec| matches!(funnel::run(&t, &spec), Err(AnalyticsError::InvalidQuery(_)));
    assert!(invalid(FunnelSpec::new(Vec::<String>::new())));
    assert!(invalid(FunnelSpec::new([""])));
    assert!(invalid(FunnelSpec::new((0..33).map(|i| i.to_string()))));
    assert!(invalid(sdr().window_micros(-1)));
    assert!(invalid(sdr().exclude("x", 1, 1)));
    assert!(invalid(sdr().exclude("x", 1, 3)));
    assert!(invalid(sdr().breakdown(Breakdown::Event("variant".into()))));
    // Unknown step names are fine: nobody reaches them.
    assert_eq!(counts(&t, &FunnelSpec::new(["sent", "nope"])), [1, 0]);
}

#[test]
fn threads_do_not_change_the_result() {
    let mut b = EventTableBuilder::with_columns(["variant"]);
    let names = ["sent", "delivered", "read", "x"];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..120_000 {
        let r = next();
        let user = format!("u{}", r % 20_000);
        let name = names[(r >> 20) as usize % names.len()];
        let ts = ((r >> 24) % 40) as i64 * S;
        b.push_row(&user, name, ts, &[["A", "B"][(r >> 40) as usize % 2]])
            .unwrap();
    }
    let t = b.build().unwrap();
    for spec in [
        sdr(),
        sdr().mode(FunnelMode::Strict),
        sdr().exclude("x", 0, 2),
        sdr().mode(FunnelMode::AnyOrder),
    ] {
        let spec = spec.breakdown(Breakdown::Event("variant".into()));
        let one = funnel::run(&t, &spec.clone().threads(1)).unwrap();
        let three = funnel::run(&t, &spec.threads(3)).unwrap();
        assert!(one.steps[0].count > 0);
        assert_eq!(one, three);
    }
}

#[test]
fn mia_events_make_a_table() {
    use mia_core::{CampaignId, ContactId, Event, EventId, EventKind, VariantId};
    let at = |s: i64| jiff::Timestamp::from_second(1_767_225_600 + s).unwrap();
    let event = |id: &str, s, kind| Event {
        id: EventId::new(id),
        at: at(s),
        contact: ContactId::new("c1"),
        campaign: Some(CampaignId::new("k")),
        variant: Some(VariantId::new("A")),
        step: None,
        kind,
    };
    let events = [
        event("1", 0, EventKind::Sent),
        event("2", 60, EventKind::Read),
        event("3", 120, EventKind::Converted { value_minor: 500 }),
    ];
    let t = EventTable::from_events(&events).unwrap();
    let spec = FunnelSpec::new(["sent", "read", "converted"])
        .breakdown(Breakdown::Event("variant".into()));
    let r = funnel::run(&t, &spec).unwrap();
    assert_eq!(
        r.steps.iter().map(|s| s.count).collect::<Vec<_>>(),
        [1, 1, 1]
    );
    assert_eq!(r.median_time_to_convert_s, Some(120.0));
    assert_eq!(r.breakdown[0].breakdown_value, "A");
}
