//! The HTML report: self-contained, escaped, deterministic, one funnel chart per variant.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;

use jiff::Timestamp;
use mia_analytics::html::{HtmlReport, conversions_per_day};
use mia_analytics::{CampaignReport, VariantReport};
use mia_core::{CampaignId, ContactId, Event, EventId, EventKind, VariantId};

fn variant(text: &str, sent: u64, clicked: u64, converted: u64) -> VariantReport {
    VariantReport {
        text: text.into(),
        sent,
        delivered: sent - 3,
        read: sent / 2,
        clicked,
        replied: 2,
        converted,
        revenue_minor: converted as i64 * 2_500,
        opted_out: 1,
        blocked: 0,
        click_rate: clicked as f64 / sent as f64,
        conversion_rate: converted as f64 / sent as f64,
    }
}

fn report(name: &str) -> CampaignReport {
    let mut variants = BTreeMap::new();
    variants.insert(
        VariantId::new("A"),
        variant("25% off everything until Sunday", 600, 60, 30),
    );
    variants.insert(
        VariantId::new("B"),
        variant("Winter sale: a quarter off", 610, 95, 52),
    );
    variants.insert(VariantId::new("C"), variant("Last call", 590, 40, 20));
    CampaignReport {
        campaign: CampaignId::new("c-1"),
        name: name.into(),
        state: "completed".into(),
        state_reason: None,
        audience: 2_000,
        sent: 1_800,
        messages: 1_800,
        skipped: BTreeMap::from([("no_consent".to_owned(), 150), ("withdrawn".to_owned(), 40)]),
        cancelled: BTreeMap::new(),
        failed: BTreeMap::from([("blocked".to_owned(), 10)]),
        open: 0,
        variants,
        opt_outs: 4,
    }
}

fn conversion(n: u32, day: i64, contact: &str, variant: &str) -> Event {
    Event {
        id: EventId::new(format!("e{n}")),
        at: Timestamp::from_second(1_800_000_000 + day * 86_400 + i64::from(n)).unwrap(),
        contact: ContactId::new(contact),
        campaign: Some(CampaignId::new("c-1")),
        variant: Some(VariantId::new(variant)),
        step: None,
        kind: EventKind::Converted { value_minor: 2_500 },
    }
}

fn events() -> Vec<Event> {
    vec![
        conversion(1, 0, "c1", "A"),
        conversion(2, 0, "c2", "B"),
        conversion(3, 1, "c3", "B"),
        // A second purchase by the same contact counts on its first day only.
        conversion(4, 2, "c2", "B"),
        conversion(5, 2, "c4", "C"),
    ]
}

fn page(name: &str) -> String {
    HtmlReport::new(report(name))
        .with_events(&events())
        .render()
}

#[test]
fn the_page_is_one_self_contained_document_with_a_funnel_per_variant() {
    let html = page("Winter sale");
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    assert!(html.contains("<svg"));
    assert_eq!(html.matches("<svg class=\"funnel\"").count(), 3);
    for v in ["A", "B", "C"] {
        assert!(html.contains(&format!("data-variant=\"{v}\"")), "{v}");
    }
    assert_eq!(html.matches("<svg class=\"timeline\"").count(), 1);
    // One lift chart per variant after the control, each with its interval shaded.
    assert_eq!(html.matches("<svg class=\"lift\"").count(), 2);
    assert_eq!(html.matches("class=\"interval\"").count(), 2);
    // Nothing is loaded from anywhere: no URL, script, external style sheet, font or image.
    assert!(!html.contains("http"), "no URLs the user did not write");
    for forbidden in ["<script", "<link", "<img", "@import", "url(", "src="] {
        assert!(!html.contains(forbidden), "{forbidden}");
    }
    // Every number of the charts is in a table too.
    assert!(html.matches("<table>").count() >= 4);
    for number in [
        "<td>600</td>",
        "<td>610</td>",
        "<td>52</td>",
        "<td>150</td>",
    ] {
        assert!(html.contains(number), "{number}");
    }
}

#[test]
fn conversions_per_day_count_each_contact_once_and_match_the_table() {
    let days = conversions_per_day(&events());
    let per_variant = |v: &str| -> u64 {
        days.values()
            .filter_map(|m| m.get(&VariantId::new(v)))
            .sum()
    };
    assert_eq!(days.len(), 3);
    assert_eq!(per_variant("A"), 1);
    assert_eq!(per_variant("B"), 2);
    assert_eq!(per_variant("C"), 1);
    let html = page("Winter sale");
    let first_day = days.keys().next().unwrap().to_string();
    assert!(html.contains(&format!(
        "<tr><th scope=\"row\">{first_day}</th><td>1</td><td>1</td><td>0</td></tr>"
    )));
}

#[test]
fn user_text_is_escaped() {
    let html = page("<script>alert('x')</script> & \"friends\"");
    assert!(!html.contains("<script>"));
    assert!(
        html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;friends&quot;")
    );
}

#[test]
fn a_url_the_user_wrote_is_shown_as_text_only() {
    let mut r = report("Winter sale");
    r.variants.get_mut(&VariantId::new("A")).unwrap().text = "See https://shop.example/sale".into();
    let html = HtmlReport::new(r).render();
    assert_eq!(html.matches("http").count(), 1);
    assert!(!html.contains("href="));
}

#[test]
fn the_same_input_renders_the_same_bytes() {
    assert_eq!(page("Winter sale"), page("Winter sale"));
}

#[test]
fn the_lift_of_a_better_variant_is_positive() {
    let html = HtmlReport::new(report("Winter sale"));
    let lifts = html.lifts();
    assert_eq!(lifts.len(), 2);
    let b = &lifts[0];
    assert_eq!(b.control, VariantId::new("A"));
    assert_eq!(b.treatment, VariantId::new("B"));
    assert!(b.probability_better > 0.95, "{}", b.probability_better);
    assert!(b.lower < b.mean && b.mean < b.upper);
    let c = &lifts[1];
    assert!(c.probability_better < 0.2, "{}", c.probability_better);
}

#[test]
fn a_report_without_variants_or_events_still_renders() {
    let mut r = report("Empty");
    r.variants.clear();
    let html = HtmlReport::new(r).render();
    assert!(html.contains("No conversions recorded."));
    assert!(html.contains("No lift to show"));
    assert_eq!(html.matches("<svg").count(), 0);
}
