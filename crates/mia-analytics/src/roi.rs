//! Return on investment per campaign and variant: revenue from conversions credited to the
//! message that earned them (last or first touch within an attribution window), costs from the
//! messages sent and what the host says a campaign cost (LLM tokens, design), ROI and cost per
//! conversion, with a 95% interval on the conversion rate.

use std::collections::{BTreeMap, HashMap};

use jiff::SignedDuration;
use mia_core::{CampaignId, ContactId, Event, EventKind, VariantId};
use serde::{Deserialize, Serialize};

use crate::error::{AnalyticsError, Result};

/// Which message earns a conversion when several could have.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Touch {
    /// The latest message before the conversion (the usual choice).
    #[default]
    Last,
    /// The earliest message within the window.
    First,
}

/// How revenue is credited and what things cost. All money is in the shop currency's minor
/// units (cents); the host converts LLM costs (micro-USD in the cost ledger) and Telegram Stars
/// for paid broadcasts into it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoiSpec {
    /// A conversion counts for a message sent at most this long before it.
    pub window: SignedDuration,
    /// Last or first touch.
    pub touch: Touch,
    /// What one sent message costs (paid broadcast, SMS fallback...), minor units.
    pub cost_per_message_minor: i64,
    /// What each campaign cost besides its messages (copywriting tokens, design), minor units.
    pub campaign_costs_minor: BTreeMap<CampaignId, i64>,
}

impl Default for RoiSpec {
    fn default() -> Self {
        Self {
            window: SignedDuration::from_hours(7 * 24),
            touch: Touch::Last,
            cost_per_message_minor: 0,
            campaign_costs_minor: BTreeMap::new(),
        }
    }
}

/// The return of one campaign variant (or of the whole campaign, `variant: None`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Roi {
    /// The campaign.
    pub campaign: CampaignId,
    /// The variant; `None` for the campaign's total.
    pub variant: Option<VariantId>,
    /// Messages sent.
    pub sends: u64,
    /// Conversions credited.
    pub conversions: u64,
    /// Revenue credited, minor units.
    pub revenue_minor: i64,
    /// Costs, minor units (campaign costs are split over variants by their sends).
    pub cost_minor: i64,
    /// (revenue − cost) / cost; `None` when nothing was spent.
    pub roi: Option<f64>,
    /// cost / conversions; `None` without conversions.
    pub cost_per_conversion_minor: Option<f64>,
    /// conversions / sends with its 95% Wilson interval.
    pub conversion_rate: (f64, f64, f64),
}

/// Wilson score interval at 95%: (rate, low, high).
fn wilson(successes: u64, trials: u64) -> (f64, f64, f64) {
    if trials == 0 {
        return (0.0, 0.0, 1.0);
    }
    let (n, p) = (trials as f64, successes as f64 / trials as f64);
    let z = 1.959_963_984_540_054_f64;
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
    (p, (centre - half).max(0.0), (centre + half).min(1.0))
}

/// ROI per campaign variant and per campaign, from the events of the campaigns' contacts (their
/// sends and their conversions, attributed or not: a conversion the shop reported without a
/// campaign is credited by the touch rule). Sorted by campaign, totals (`variant: None`) first.
///
/// # Errors
/// [`AnalyticsError::InvalidQuery`] for a window that is not positive or negative costs.
pub fn roi(events: &[Event], spec: &RoiSpec) -> Result<Vec<Roi>> {
    if spec.window <= SignedDuration::ZERO {
        return Err(AnalyticsError::InvalidQuery(
            "the attribution window must be positive".into(),
        ));
    }
    if spec.cost_per_message_minor < 0 || spec.campaign_costs_minor.values().any(|c| *c < 0) {
        return Err(AnalyticsError::InvalidQuery(
            "costs cannot be negative".into(),
        ));
    }
    type Key = (CampaignId, Option<VariantId>);
    let mut sends_by_contact: HashMap<&ContactId, Vec<(jiff::Timestamp, Key)>> = HashMap::new();
    let mut tally: BTreeMap<Key, (u64, u64, i64)> = BTreeMap::new();
    for e in events {
        if let (EventKind::Sent, Some(campaign)) = (&e.kind, &e.campaign) {
            let key = (campaign.clone(), e.variant.clone());
            sends_by_contact
                .entry(&e.contact)
                .or_default()
                .push((e.at, key.clone()));
            tally.entry(key).or_default().0 += 1;
        }
    }
    for sends in sends_by_contact.values_mut() {
        sends.sort_by_key(|(at, _)| *at);
    }
    for e in events {
        let EventKind::Converted { value_minor } = e.kind else {
            continue;
        };
        let Some(sends) = sends_by_contact.get(&e.contact) else {
            continue;
        };
        let earliest = e.at - spec.window;
        let mut eligible = sends
            .iter()
            .filter(|(at, _)| *at <= e.at && *at >= earliest);
        let credited = match spec.touch {
            Touch::Last => eligible.next_back(),
            Touch::First => eligible.next(),
        };
        if let Some((_, key)) = credited {
            let t = tally.entry(key.clone()).or_default();
            t.1 += 1;
            t.2 += value_minor;
        }
    }
    let mut campaign_sends: BTreeMap<CampaignId, u64> = BTreeMap::new();
    for ((campaign, _), (sends, _, _)) in &tally {
        *campaign_sends.entry(campaign.clone()).or_default() += sends;
    }
    let mut out: Vec<Roi> = Vec::new();
    let mut totals: BTreeMap<CampaignId, (u64, u64, i64, i64)> = BTreeMap::new();
    for ((campaign, variant), (sends, conversions, revenue)) in tally {
        let fixed = spec
            .campaign_costs_minor
            .get(&campaign)
            .copied()
            .unwrap_or(0);
        let share = fixed as f64 * sends as f64 / campaign_sends[&campaign].max(1) as f64;
        let cost = spec.cost_per_message_minor * sends as i64 + share.round() as i64;
        let t = totals.entry(campaign.clone()).or_default();
        *t = (t.0 + sends, t.1 + conversions, t.2 + revenue, t.3);
        out.push(row(campaign, variant, sends, conversions, revenue, cost));
    }
    for (campaign, (sends, conversions, revenue, _)) in totals {
        let fixed = spec
            .campaign_costs_minor
            .get(&campaign)
            .copied()
            .unwrap_or(0);
        let cost = spec.cost_per_message_minor * sends as i64 + fixed;
        out.push(row(campaign, None, sends, conversions, revenue, cost));
    }
    out.sort_by(|a, b| (&a.campaign, &a.variant).cmp(&(&b.campaign, &b.variant)));
    Ok(out)
}

fn row(
    campaign: CampaignId,
    variant: Option<VariantId>,
    sends: u64,
    conversions: u64,
    revenue_minor: i64,
    cost_minor: i64,
) -> Roi {
    Roi {
        campaign,
        variant,
        sends,
        conversions,
        revenue_minor,
        cost_minor,
        roi: (cost_minor > 0).then(|| (revenue_minor - cost_minor) as f64 / cost_minor as f64),
        cost_per_conversion_minor: (conversions > 0)
            .then(|| cost_minor as f64 / conversions as f64),
        conversion_rate: wilson(conversions, sends),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;
    use mia_core::EventId;

    fn at(hours: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + hours * 3600).unwrap()
    }

    fn sent(n: u32, contact: &str, campaign: &str, variant: &str, hours: i64) -> Event {
        Event {
            id: EventId::new(format!("s{n}")),
            at: at(hours),
            contact: ContactId::new(contact),
            campaign: Some(CampaignId::new(campaign)),
            variant: Some(VariantId::new(variant)),
            step: None,
            kind: EventKind::Sent,
        }
    }

    fn bought(n: u32, contact: &str, value: i64, hours: i64) -> Event {
        Event {
            id: EventId::new(format!("b{n}")),
            at: at(hours),
            contact: ContactId::new(contact),
            campaign: None,
            variant: None,
            step: None,
            kind: EventKind::Converted { value_minor: value },
        }
    }

    fn find<'a>(rows: &'a [Roi], campaign: &str, variant: Option<&str>) -> &'a Roi {
        rows.iter()
            .find(|r| {
                r.campaign.as_str() == campaign
                    && r.variant.as_ref().map(VariantId::as_str) == variant
            })
            .unwrap()
    }

    #[test]
    fn last_and_first_touch_within_the_window() {
        let events = vec![
            sent(1, "ana", "spring", "A", 0),
            sent(2, "ana", "summer", "B", 48),
            bought(1, "ana", 5_000, 60), // both in the window: last touch = summer
            bought(2, "ana", 1_000, 300), // 12 days after summer: outside a 7-day window
            sent(3, "ben", "spring", "B", 0),
        ];
        let spec = RoiSpec {
            cost_per_message_minor: 10,
            campaign_costs_minor: [(CampaignId::new("spring"), 980)].into_iter().collect(),
            ..RoiSpec::default()
        };
        let rows = roi(&events, &spec).unwrap();
        assert_eq!(find(&rows, "summer", Some("B")).revenue_minor, 5_000);
        assert_eq!(find(&rows, "spring", None).revenue_minor, 0);
        let spring = find(&rows, "spring", None);
        assert_eq!((spring.sends, spring.cost_minor), (2, 1_000));
        assert_eq!(spring.roi, Some(-1.0));
        assert_eq!(
            find(&rows, "spring", Some("A")).cost_minor,
            500,
            "fixed cost split by sends"
        );

        let first = roi(
            &events,
            &RoiSpec {
                touch: Touch::First,
                ..spec.clone()
            },
        )
        .unwrap();
        assert_eq!(find(&first, "spring", Some("A")).revenue_minor, 5_000);
        assert_eq!(find(&first, "summer", None).conversions, 0);
        let summer = find(&rows, "summer", None);
        assert_eq!(summer.cost_per_conversion_minor, Some(10.0));
        assert_eq!(summer.roi, Some(499.0));
    }

    #[test]
    fn wilson_interval_and_bad_specs() {
        let (p, lo, hi) = wilson(20, 200);
        assert!((p - 0.1).abs() < 1e-12);
        // Wilson (1927), computed independently in Python for 20 of 200.
        assert!((lo - 0.065_670_448_7).abs() < 1e-9, "{lo}");
        assert!((hi - 0.149_405_812_4).abs() < 1e-9, "{hi}");
        assert!(
            roi(
                &[],
                &RoiSpec {
                    window: SignedDuration::ZERO,
                    ..RoiSpec::default()
                }
            )
            .is_err()
        );
        assert!(
            roi(
                &[],
                &RoiSpec {
                    cost_per_message_minor: -1,
                    ..RoiSpec::default()
                }
            )
            .is_err()
        );
    }
}
