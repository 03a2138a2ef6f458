//! A dry-run's risk estimate: how a campaign would look to Telegram before anything real is sent.

use mia::RunStats;
use mia::analytics::CampaignReport;
use serde::Serialize;

/// Low, medium or high, with the reasons.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct Risk {
    pub(crate) level: &'static str,
    pub(crate) block_rate: f64,
    pub(crate) stop_rate: f64,
    pub(crate) rate_limited_share: f64,
    pub(crate) reasons: Vec<String>,
}

/// Telegram limits accounts whose messages get blocked or reported; the thresholds follow the
/// agent's own block alarm (5%) with a margin below it.
pub(crate) fn assess(report: &CampaignReport, run: &RunStats, rate_limited: u64) -> Risk {
    let sent = report.sent.max(1) as f64;
    let blocks = report.failed.get("blocked").copied().unwrap_or(0)
        + report.variants.values().map(|v| v.blocked).sum::<u64>();
    let block_rate = blocks as f64 / sent;
    let stop_rate = report.opt_outs as f64 / sent;
    let rate_limited_share = rate_limited as f64 / sent;
    let mut high = Vec::new();
    let mut medium = Vec::new();
    if run.paused_for_spam > 0 {
        high.push(
            "the campaign was paused for a spam signal (PEER_FLOOD or a burst of blocks)"
                .to_owned(),
        );
    }
    match block_rate {
        r if r >= 0.02 => high.push(format!(
            "{:.1}% of recipients blocked the sender",
            r * 100.0
        )),
        r if r >= 0.005 => medium.push(format!(
            "{:.1}% of recipients blocked the sender",
            r * 100.0
        )),
        _ => {}
    }
    match stop_rate {
        r if r >= 0.03 => high.push(format!("{:.1}% of recipients sent STOP", r * 100.0)),
        r if r >= 0.01 => medium.push(format!("{:.1}% of recipients sent STOP", r * 100.0)),
        _ => {}
    }
    if rate_limited_share >= 0.01 {
        medium.push(format!(
            "{rate_limited} sends were answered with a retry-after: lower the rate"
        ));
    }
    let level = if !high.is_empty() {
        "high"
    } else if !medium.is_empty() {
        "medium"
    } else {
        "low"
    };
    high.extend(medium);
    Risk {
        level,
        block_rate,
        stop_rate,
        rate_limited_share,
        reasons: high,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(sent: u64, blocked: u64, opt_outs: u64) -> CampaignReport {
        let mut r: CampaignReport = serde_json::from_value(serde_json::json!({
            "campaign": "c", "name": "n", "state": "completed", "state_reason": null,
            "audience": sent, "sent": sent, "skipped": {}, "cancelled": {}, "failed": {},
            "open": 0, "variants": {}, "opt_outs": opt_outs
        }))
        .unwrap();
        r.failed.insert("blocked".into(), blocked);
        r
    }

    #[test]
    fn levels_follow_blocks_stops_and_pauses() {
        let calm = assess(&report(1000, 1, 2), &RunStats::default(), 0);
        assert_eq!(calm.level, "low", "{calm:?}");
        let some = assess(&report(1000, 8, 2), &RunStats::default(), 0);
        assert_eq!(some.level, "medium", "{some:?}");
        let bad = assess(&report(1000, 30, 40), &RunStats::default(), 0);
        assert_eq!(bad.level, "high");
        assert_eq!(bad.reasons.len(), 2, "{bad:?}");
        let paused = RunStats {
            paused_for_spam: 1,
            ..RunStats::default()
        };
        assert_eq!(assess(&report(1000, 0, 0), &paused, 0).level, "high");
        assert_eq!(
            assess(&report(1000, 0, 0), &RunStats::default(), 50).level,
            "medium"
        );
    }
}
