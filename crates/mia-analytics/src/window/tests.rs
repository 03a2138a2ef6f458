#![allow(clippy::unwrap_used)]

use super::*;
use jiff::civil::date;
use proptest::prelude::*;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn event(n: usize, at: Timestamp, contact: &str, variant: &str, kind: EventKind) -> Event {
    Event {
        id: mia_core::EventId::new(format!("e{n}")),
        at,
        contact: ContactId::new(contact),
        campaign: Some(CampaignId::new("k")),
        variant: Some(VariantId::new(variant)),
        step: None,
        kind,
    }
}

fn k() -> CampaignId {
    CampaignId::new("k")
}

fn utc() -> Windows {
    Windows::new(WindowConfig::default())
}

#[test]
fn tumbling_windows_count_per_variant_and_kind_with_rates_and_revenue() {
    let mut w = utc();
    let at = ts("2026-11-26T10:15:30Z");
    w.add(&event(1, at, "u1", "A", EventKind::Sent));
    w.add(&event(2, at, "u2", "A", EventKind::Sent));
    w.add(&event(3, at, "u3", "B", EventKind::Sent));
    w.add(&event(
        4,
        ts("2026-11-26T10:59:59Z"),
        "u1",
        "A",
        EventKind::Clicked,
    ));
    w.add(&event(
        5,
        ts("2026-11-26T11:00:00Z"),
        "u1",
        "A",
        EventKind::Converted { value_minor: 1250 },
    ));
    w.add(&event(
        6,
        ts("2026-11-26T11:30:00Z"),
        "u3",
        "B",
        EventKind::Converted { value_minor: 990 },
    ));

    let hours = w.tumbling(&k(), Granularity::Hour);
    assert_eq!(hours.len(), 2);
    assert_eq!(hours[0].start, date(2026, 11, 26).at(10, 0, 0, 0));
    assert_eq!(hours[0].end, date(2026, 11, 26).at(11, 0, 0, 0));
    let a = VariantId::new("A");
    let b = VariantId::new("B");
    assert_eq!(hours[0].counts.count(Some(&a), "sent"), 2);
    assert_eq!(hours[0].counts.count(Some(&b), "sent"), 1);
    assert_eq!(hours[0].counts.rate(Some(&a), "clicked", "sent"), Some(0.5));
    assert_eq!(hours[0].counts.rate(Some(&b), "clicked", "sent"), Some(0.0));
    assert_eq!(
        hours[1].counts.rate(Some(&a), "converted", "sent"),
        None,
        "nothing sent in hour 11"
    );
    assert_eq!(hours[1].counts.total("converted"), 2);
    assert_eq!(hours[1].counts.revenue(Some(&a)), 1250);
    assert_eq!(
        hours[1].counts.variants(),
        vec![Some(a.clone()), Some(b.clone())]
    );

    let days = w.tumbling(&k(), Granularity::Day);
    assert_eq!(days.len(), 1);
    assert_eq!(days[0].end, date(2026, 11, 27).at(0, 0, 0, 0));
    assert_eq!(days[0].counts.total("sent"), 3);
    let minutes = w.tumbling(&k(), Granularity::Minute);
    assert_eq!(minutes.len(), 4);
    assert_eq!(minutes[1].start, date(2026, 11, 26).at(10, 59, 0, 0));

    assert!(
        w.tumbling(&CampaignId::new("other"), Granularity::Day)
            .is_empty()
    );
    let json = serde_json::to_value(&hours[1]).unwrap();
    assert_eq!(json["start"], "2026-11-26T11:00:00");
    assert_eq!(json["counts"]["revenue_minor"][0]["revenue_minor"], 1250);
    assert_eq!(json["counts"]["counts"][0]["kind"], "converted");
}

#[test]
fn counts_split_by_journey_step() {
    let mut w = utc();
    let at = ts("2026-11-26T10:15:00Z");
    let step = |n: usize, contact: &str, step: Option<u32>, kind: EventKind| Event {
        step,
        ..event(n, at, contact, "A", kind)
    };
    // Step 0 (the first message) to two contacts, one clicks; the follow-up at step 2 to one,
    // who buys; an opt-out about no message.
    w.add(&step(1, "u1", Some(0), EventKind::Sent));
    w.add(&step(2, "u2", Some(0), EventKind::Sent));
    w.add(&step(3, "u1", Some(0), EventKind::Clicked));
    w.add(&step(4, "u2", Some(2), EventKind::Sent));
    w.add(&step(
        5,
        "u2",
        Some(2),
        EventKind::Converted { value_minor: 700 },
    ));
    w.add(&step(6, "u1", None, EventKind::OptedOut));

    let hour = &w.tumbling(&k(), Granularity::Hour)[0].counts;
    let a = VariantId::new("A");
    assert_eq!(hour.steps(), [None, Some(0), Some(2)]);
    assert_eq!(hour.count(Some(&a), "sent"), 3, "count adds every step");
    assert_eq!(hour.step_count(Some(&a), Some(0), "sent"), 2);
    assert_eq!(hour.step_count(Some(&a), Some(2), "sent"), 1);
    assert_eq!(hour.step_count(Some(&a), Some(1), "sent"), 0);
    assert_eq!(hour.step_count(Some(&a), None, "opted_out"), 1);
    assert_eq!(
        hour.step_rate(Some(&a), Some(0), "clicked", "sent"),
        Some(0.5)
    );
    assert_eq!(
        hour.step_rate(Some(&a), Some(2), "converted", "sent"),
        Some(1.0)
    );
    assert_eq!(hour.step_rate(Some(&a), Some(1), "clicked", "sent"), None);
    assert_eq!(hour.revenue(Some(&a)), 700);

    // Sliding windows keep the step too.
    let last = w.sliding(&k(), SignedDuration::from_mins(5), at).unwrap();
    assert_eq!(last.step_count(Some(&a), Some(2), "converted"), 1);

    let json = serde_json::to_value(hour).unwrap();
    let rows = json["counts"].as_array().unwrap();
    let follow_up_sent = rows
        .iter()
        .find(|r| r["step"] == 2 && r["kind"] == "sent")
        .unwrap();
    assert_eq!(follow_up_sent["count"], 1);
    assert_eq!(follow_up_sent["variant"], "A");
    let opt_out = rows.iter().find(|r| r["kind"] == "opted_out").unwrap();
    assert!(
        opt_out.get("step").is_none(),
        "no step, no field: {opt_out}"
    );
    assert_eq!(json["revenue_minor"][0]["step"], 2);
}

#[test]
fn local_windows_follow_daylight_saving_time() {
    // Berlin leaves summer time on 2026-10-25: 03:00 CEST becomes 02:00 CET.
    let berlin = TimeZone::get("Europe/Berlin").unwrap();
    let mut w = Windows::new(WindowConfig::new(ZoneRule::Campaign(berlin)));
    // 02:30 CEST and 02:30 CET: one local hour window, two real hours apart.
    w.add(&event(
        1,
        ts("2026-10-25T00:30:00Z"),
        "u",
        "A",
        EventKind::Sent,
    ));
    w.add(&event(
        2,
        ts("2026-10-25T01:30:00Z"),
        "u",
        "A",
        EventKind::Sent,
    ));
    // 00:30 and 23:30 local on the 25th: the same calendar day, which has 25 hours.
    w.add(&event(
        3,
        ts("2026-10-24T22:30:00Z"),
        "u",
        "A",
        EventKind::Read,
    ));
    w.add(&event(
        4,
        ts("2026-10-25T22:30:00Z"),
        "u",
        "A",
        EventKind::Read,
    ));
    // 00:30 local on the 26th.
    w.add(&event(
        5,
        ts("2026-10-25T23:30:00Z"),
        "u",
        "A",
        EventKind::Read,
    ));

    let hours = w.tumbling(&k(), Granularity::Hour);
    let two = hours
        .iter()
        .find(|h| h.start == date(2026, 10, 25).at(2, 0, 0, 0))
        .unwrap();
    assert_eq!(
        two.counts.total("sent"),
        2,
        "the repeated hour is one window"
    );
    let days = w.tumbling(&k(), Granularity::Day);
    assert_eq!(days.len(), 2);
    assert_eq!(days[0].start, date(2026, 10, 25).at(0, 0, 0, 0));
    assert_eq!(days[0].counts.total("read"), 2);
    assert_eq!(days[0].counts.total("sent"), 2);
    assert_eq!(days[1].counts.total("read"), 1);
    // In UTC the same events fall on other days.
    let mut u = utc();
    for (n, at) in ["2026-10-24T22:30:00Z", "2026-10-25T22:30:00Z"]
        .iter()
        .enumerate()
    {
        u.add(&event(n, ts(at), "u", "A", EventKind::Read));
    }
    assert_eq!(u.tumbling(&k(), Granularity::Day).len(), 2);
}

#[test]
fn contact_zones_put_one_instant_on_each_contacts_own_day() {
    let zones = HashMap::from([
        (
            ContactId::new("tokyo"),
            TimeZone::get("Asia/Tokyo").unwrap(),
        ),
        (
            ContactId::new("ny"),
            TimeZone::get("America/New_York").unwrap(),
        ),
    ]);
    let kolkata = TimeZone::get("Asia/Kolkata").unwrap();
    let mut w = Windows::new(WindowConfig::new(ZoneRule::contacts(zones, kolkata)));
    let at = ts("2026-11-26T20:00:00Z");
    w.add(&event(1, at, "tokyo", "A", EventKind::Sent)); // 27th 05:00
    w.add(&event(2, at, "ny", "A", EventKind::Sent)); // 26th 15:00
    w.add(&event(3, at, "unknown", "A", EventKind::Sent)); // 27th 01:30 in Kolkata
    let days = w.tumbling(&k(), Granularity::Day);
    let starts: Vec<_> = days
        .iter()
        .map(|d| (d.start.date(), d.counts.total("sent")))
        .collect();
    assert_eq!(
        starts,
        vec![(date(2026, 11, 26), 1), (date(2026, 11, 27), 2)]
    );
    // A half-hour zone has its own hour boundaries.
    let hours = w.tumbling(&k(), Granularity::Hour);
    assert!(
        hours
            .iter()
            .any(|h| h.start == date(2026, 11, 27).at(1, 0, 0, 0))
    );
}

#[test]
fn sliding_windows_cover_the_minutes_up_to_now() {
    let mut w = utc();
    let t0 = ts("2026-11-26T10:00:00Z");
    for i in 0..60 {
        w.add(&event(
            i,
            t0 + SignedDuration::from_mins(i as i64),
            "u",
            "A",
            EventKind::Sent,
        ));
    }
    let now = ts("2026-11-26T10:59:30Z");
    let last = |mins| {
        w.sliding(&k(), SignedDuration::from_mins(mins), now)
            .unwrap()
            .total("sent")
    };
    assert_eq!(last(1), 1);
    assert_eq!(last(15), 15);
    assert_eq!(last(60), 60);
    assert_eq!(last(120), 60);
    // An hour later nothing is in the last 15 minutes.
    let later = w
        .sliding(
            &k(),
            SignedDuration::from_mins(15),
            now + SignedDuration::from_hours(1),
        )
        .unwrap();
    assert_eq!(later.total("sent"), 0);
}

#[test]
fn bad_sliding_widths_are_clear_errors() {
    let w = utc();
    let now = ts("2026-11-26T10:00:00Z");
    for width in [
        SignedDuration::ZERO,
        SignedDuration::from_secs(-60),
        SignedDuration::from_secs(90),
        SignedDuration::from_millis(60_500),
        SignedDuration::from_hours(25),
    ] {
        let err = w.sliding(&k(), width, now).unwrap_err();
        assert!(
            matches!(err, AnalyticsError::InvalidQuery(_)),
            "{width:?}: {err}"
        );
    }
    assert_eq!("hour".parse::<Granularity>().unwrap(), Granularity::Hour);
    assert!("week".parse::<Granularity>().is_err());
}

#[test]
fn memory_is_bounded_and_late_events_are_counted_as_late() {
    let retention = Retention {
        minutes: 3,
        hours: 2,
        days: 2,
    };
    let mut w = Windows::new(WindowConfig::default().retention(retention));
    let t0 = ts("2026-11-26T10:00:00Z");
    for i in 0..5 {
        w.add(&event(
            i,
            t0 + SignedDuration::from_mins(i as i64),
            "u",
            "A",
            EventKind::Sent,
        ));
    }
    let minutes = w.tumbling(&k(), Granularity::Minute);
    assert_eq!(minutes.len(), 3);
    assert_eq!(minutes[0].start, date(2026, 11, 26).at(10, 2, 0, 0));
    assert_eq!(w.late(&k()), 0);
    // Older than every kept minute: in the hour and day windows, not in the minutes.
    w.add(&event(9, t0, "u", "A", EventKind::Sent));
    assert_eq!(w.late(&k()), 1);
    assert_eq!(w.tumbling(&k(), Granularity::Minute).len(), 3);
    assert_eq!(
        w.tumbling(&k(), Granularity::Hour)[0].counts.total("sent"),
        6
    );
    let err = w
        .sliding(
            &k(),
            SignedDuration::from_mins(4),
            t0 + SignedDuration::from_mins(4),
        )
        .unwrap_err();
    assert!(err.to_string().contains("3 minutes kept"), "{err}");
    // Events without a campaign are not windowed.
    let mut loose = event(10, t0, "u", "A", EventKind::OptedIn);
    loose.campaign = None;
    w.add(&loose);
    assert_eq!(w.campaigns(), vec![k()]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Windows agree with a brute-force count over the raw events.
    #[test]
    fn windows_match_brute_force(
        offsets in prop::collection::vec((0i64..3 * 86_400, 0usize..3, 0usize..3), 1..200),
        now_offset in 0i64..3 * 86_400,
        width_min in 1i64..=1_440,
    ) {
        let zone = TimeZone::get("America/Sao_Paulo").unwrap();
        let mut w = Windows::new(WindowConfig::new(ZoneRule::Campaign(zone.clone())).retention(Retention {
            minutes: 10_000,
            hours: 10_000,
            days: 10_000,
        }));
        let base = ts("2026-11-01T00:00:00Z");
        let kinds = ["sent", "read", "clicked"];
        let events: Vec<Event> = offsets
            .iter()
            .enumerate()
            .map(|(n, (secs, v, kind))| {
                let kind = match kinds[*kind] {
                    "sent" => EventKind::Sent,
                    "read" => EventKind::Read,
                    _ => EventKind::Clicked,
                };
                event(n, base + SignedDuration::from_secs(*secs), "u", ["A", "B", "C"][*v], kind)
            })
            .collect();
        for e in &events {
            w.add(e);
        }
        for g in Granularity::ALL {
            let windows = w.tumbling(&k(), g);
            let total: u64 = windows.iter().map(|x| x.counts.total("sent")).sum();
            prop_assert_eq!(total, events.iter().filter(|e| e.kind == EventKind::Sent).count() as u64);
            for x in &windows {
                let brute = events
                    .iter()
                    .filter(|e| {
                        let local = zone.to_datetime(e.at);
                        local >= x.start && local < x.end && e.kind == EventKind::Read
                    })
                    .count() as u64;
                prop_assert_eq!(x.counts.total("read"), brute);
            }
        }
        let now = base + SignedDuration::from_secs(now_offset);
        let got = w.sliding(&k(), SignedDuration::from_mins(width_min), now).unwrap();
        let last = now.as_second().div_euclid(60);
        let brute = events
            .iter()
            .filter(|e| {
                let m = e.at.as_second().div_euclid(60);
                m > last - width_min && m <= last && e.kind == EventKind::Clicked
            })
            .count() as u64;
        prop_assert_eq!(got.total("clicked"), brute);
    }
}
