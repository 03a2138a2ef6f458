//! The human-readable dry-run report.

use std::path::Path;
use std::time::Duration;

use crate::dry_run::DryRunReport;

fn pct(n: u64, of: u64) -> String {
    if of == 0 {
        "-".into()
    } else {
        format!("{:.1}%", 100.0 * n as f64 / of as f64)
    }
}

fn duration(secs: i64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    if d > 0 {
        format!("{d}d {h}h {m}m")
    } else {
        format!("{h}h {m}m")
    }
}

#[allow(clippy::print_stdout)]
pub(crate) fn print(r: &DryRunReport, real: Duration, json: &Path) {
    let c = &r.campaign;
    println!(
        "mia dry-run: \"{}\" to {} contacts (seed {})",
        c.name, r.contacts, r.seed
    );
    println!("  database          {}", r.database);
    println!(
        "  virtual time      {} -> {} ({}), last send {}",
        r.virtual_start,
        r.virtual_end,
        duration(r.virtual_duration_secs),
        r.last_send.map_or_else(|| "-".into(), |t| t.to_string())
    );
    println!("  real time         {:.2} s", real.as_secs_f64());
    let cost = r.llm.cost_micro_usd.map_or_else(
        || "unknown (unpriced model)".into(),
        |c| format!("${:.4}", c as f64 / 1e6),
    );
    println!(
        "  copywriter        {}: {} calls, {} tokens in, {} out, {} retries, cost {cost}",
        r.llm.provider, r.llm.calls, r.llm.input_tokens, r.llm.output_tokens, r.llm.retries
    );
    println!();
    println!("Audience            {:>7}", c.audience);
    println!(
        "  sent              {:>7}  {}",
        c.sent,
        pct(c.sent, c.audience)
    );
    for (title, map) in [
        ("skipped", &c.skipped),
        ("cancelled", &c.cancelled),
        ("failed", &c.failed),
    ] {
        for (reason, n) in map {
            println!("  {title:<9} {reason:<19} {n:>5}  {}", pct(*n, c.audience));
        }
    }
    if c.open > 0 {
        println!("  still open        {:>7}", c.open);
    }
    let accounted = if c.accounts_for_everyone() {
        "yes"
    } else {
        "NO"
    };
    println!("  every contact accounted for exactly once: {accounted}");
    println!();
    println!("Deferred by the send policy (then sent when allowed):");
    if r.run.deferred.is_empty() {
        println!("  none");
    }
    for (rule, n) in &r.run.deferred {
        println!("  {rule:<26} {n:>6}");
    }
    println!(
        "Rate-limit answers from Telegram: {} (honoured with retry-after)",
        r.rate_limited_by_telegram
    );
    println!(
        "Risk with Telegram: {} (blocks {:.2}%, STOP {:.2}%)",
        r.risk.level,
        r.risk.block_rate * 100.0,
        r.risk.stop_rate * 100.0
    );
    for reason in &r.risk.reasons {
        println!("  - {reason}");
    }
    println!(
        "Account health: {}/100 over the last {} h",
        r.account_health.score, r.account_health.window_hours
    );
    println!();
    println!(
        "{:<8} {:>7} {:>10} {:>8} {:>8} {:>10} {:>11} {:>8}",
        "variant", "sent", "delivered", "read", "clicked", "converted", "revenue", "stopped"
    );
    for (id, v) in &c.variants {
        println!(
            "{:<8} {:>7} {:>10} {:>8} {:>8} {:>10} {:>11.2} {:>8}",
            id.as_str(),
            v.sent,
            v.delivered,
            v.read,
            v.clicked,
            v.converted,
            v.revenue_minor as f64 / 100.0,
            v.opted_out
        );
    }
    for (id, v) in &c.variants {
        println!(
            "  {}: click rate {}, conversion rate {}",
            id.as_str(),
            pct(v.clicked, v.sent),
            pct(v.converted, v.sent)
        );
    }
    println!();
    println!("Opt-outs (STOP) during the run: {}", c.opt_outs);
    println!(
        "Warm-up newsletter: {} sent of {} (their recipients are frequency-capped above)",
        r.warm_up.sent, r.warm_up.audience
    );
    println!("Report written to {}", json.display());
}
