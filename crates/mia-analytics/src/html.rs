//! A campaign report as one self-contained HTML page.
//!
//! [`HtmlReport`] renders a [`CampaignReport`] with three kinds of inline SVG chart — the funnel
//! of each variant, new converting contacts per day, and the posterior of each variant's lift in
//! conversion rate over the first variant with its 95% interval shaded — and every number again
//! in an HTML table, for screen readers and for copying. The page loads nothing: no scripts,
//! fonts, style sheets or images from anywhere, so it can be mailed or archived as it is. All
//! text is HTML-escaped (campaign names and message texts are user input), and the same input
//! always renders the same bytes.
//!
//! ```
//! use mia_analytics::CampaignReport;
//! use mia_analytics::html::HtmlReport;
//! # fn report() -> CampaignReport {
//! #     serde_json::from_value(serde_json::json!({
//! #         "campaign": "c1", "name": "Winter sale", "state": "completed", "state_reason": null,
//! #         "audience": 2, "sent": 2, "skipped": {}, "cancelled": {}, "failed": {}, "open": 0,
//! #         "variants": {}, "opt_outs": 0
//! #     })).unwrap()
//! # }
//! let page = HtmlReport::new(report()).render();
//! assert!(page.starts_with("<!DOCTYPE html>"));
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use mia_core::{CampaignId, ContactId, Event, EventKind, Store, VariantId};
use serde::{Deserialize, Serialize};

use crate::report::CampaignReport;

/// Points on each lift density curve.
const CURVE_POINTS: usize = 201;
/// Grid points over the control's conversion rate when integrating the lift density.
const GRID_POINTS: usize = 801;
/// Chart colours, one per variant in order.
const PALETTE: [&str; 6] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
];

/// The posterior of one variant's relative lift in conversion rate over the control.
///
/// Each rate gets a Beta(1 + converted, 1 + sent − converted) posterior (a uniform prior); the
/// lift is `treatment / control − 1`, and its density is integrated numerically, so it is
/// exact up to the grid rather than a normal approximation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LiftPosterior {
    /// The variant compared against.
    pub control: VariantId,
    /// The variant whose lift this is.
    pub treatment: VariantId,
    /// Posterior mean of the lift (0.1 is +10%).
    pub mean: f64,
    /// Lower end of the central 95% interval.
    pub lower: f64,
    /// Upper end of the central 95% interval.
    pub upper: f64,
    /// Posterior probability that the treatment converts better than the control.
    pub probability_better: f64,
    /// The density curve as `(lift, density)` points, lift ascending.
    pub density: Vec<(f64, f64)>,
}

impl LiftPosterior {
    /// The lift posterior from the counts of both variants, or `None` when either variant has
    /// sent nothing (there is no evidence to plot).
    pub fn from_counts(
        control: (&VariantId, u64, u64),
        treatment: (&VariantId, u64, u64),
    ) -> Option<Self> {
        let (control_id, control_sent, control_converted) = control;
        let (treatment_id, treatment_sent, treatment_converted) = treatment;
        if control_sent == 0 || treatment_sent == 0 {
            return None;
        }
        let a = Beta::from_counts(control_sent, control_converted);
        let b = Beta::from_counts(treatment_sent, treatment_converted);

        // The curve spans the lift's delta-method mean ± 6 standard deviations, wide enough
        // for the skew of small samples.
        let ratio = b.mean() / a.mean();
        let spread =
            ratio * (a.variance() / a.mean().powi(2) + b.variance() / b.mean().powi(2)).sqrt();
        let low = (ratio - 1.0 - 6.0 * spread).max(-1.0);
        let high = ratio - 1.0 + 6.0 * spread;
        let step = (high - low) / (CURVE_POINTS - 1) as f64;
        let lifts: Vec<f64> = (0..CURVE_POINTS).map(|i| low + step * i as f64).collect();

        // f(r) = ∫ fA(x) fB(x (1 + r)) x dx over the control's rate x.
        let (x_low, x_high) = a.support();
        let dx = (x_high - x_low) / (GRID_POINTS - 1) as f64;
        let xs: Vec<(f64, f64)> = (0..GRID_POINTS)
            .map(|i| {
                let x = x_low + dx * i as f64;
                (x, a.density(x))
            })
            .collect();
        let mut density: Vec<f64> = lifts
            .iter()
            .map(|r| {
                xs.iter()
                    .map(|&(x, fa)| fa * b.density(x * (1.0 + r)) * x)
                    .sum::<f64>()
                    * dx
            })
            .collect();
        let total = trapezoid(&density, step);
        if !(total.is_finite() && total > 0.0) {
            return None;
        }
        for d in &mut density {
            *d /= total;
        }
        let mut cdf = Vec::with_capacity(CURVE_POINTS);
        let mut acc = 0.0;
        cdf.push(0.0);
        for w in density.windows(2) {
            acc += (w[0] + w[1]) / 2.0 * step;
            cdf.push(acc);
        }
        let mean = lifts.iter().zip(&density).map(|(r, d)| r * d).sum::<f64>() * step;
        let quantile = |p: f64| {
            let i = cdf.partition_point(|&c| c < p).clamp(1, CURVE_POINTS - 1);
            let (c0, c1) = (cdf[i - 1], cdf[i]);
            let t = if c1 > c0 { (p - c0) / (c1 - c0) } else { 0.0 };
            lifts[i - 1] + t * step
        };
        let below_zero = if 0.0 <= low {
            0.0
        } else if 0.0 >= high {
            1.0
        } else {
            let i = ((0.0 - low) / step) as usize;
            let t = (0.0 - lifts[i]) / step;
            cdf[i] + t * (cdf[(i + 1).min(CURVE_POINTS - 1)] - cdf[i])
        };
        Some(LiftPosterior {
            control: control_id.clone(),
            treatment: treatment_id.clone(),
            mean,
            lower: quantile(0.025),
            upper: quantile(0.975),
            probability_better: (1.0 - below_zero).clamp(0.0, 1.0),
            density: lifts.into_iter().zip(density).collect(),
        })
    }
}

fn trapezoid(values: &[f64], step: f64) -> f64 {
    values.windows(2).map(|w| (w[0] + w[1]) / 2.0).sum::<f64>() * step
}

/// A Beta distribution whose density is normalised numerically (no special functions needed).
struct Beta {
    alpha: f64,
    beta: f64,
    /// The log density's maximum plus the log of its normalising integral.
    log_norm: f64,
}

impl Beta {
    fn from_counts(sent: u64, converted: u64) -> Self {
        let converted = converted.min(sent);
        let mut beta = Beta {
            alpha: 1.0 + converted as f64,
            beta: 1.0 + (sent - converted) as f64,
            log_norm: 0.0,
        };
        let (low, high) = beta.support();
        let dx = (high - low) / (GRID_POINTS - 1) as f64;
        let logs: Vec<f64> = (0..GRID_POINTS)
            .map(|i| beta.log_kernel(low + dx * i as f64))
            .collect();
        let peak = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let values: Vec<f64> = logs.iter().map(|l| (l - peak).exp()).collect();
        beta.log_norm = peak + trapezoid(&values, dx).ln();
        beta
    }

    fn mean(&self) -> f64 {
        self.alpha / (self.alpha + self.beta)
    }

    fn variance(&self) -> f64 {
        let n = self.alpha + self.beta;
        self.alpha * self.beta / (n * n * (n + 1.0))
    }

    /// Where nearly all the mass lies: mean ± 10 standard deviations, inside (0, 1).
    fn support(&self) -> (f64, f64) {
        let (m, s) = (self.mean(), self.variance().sqrt());
        ((m - 10.0 * s).max(1e-12), (m + 10.0 * s).min(1.0 - 1e-12))
    }

    fn log_kernel(&self, x: f64) -> f64 {
        (self.alpha - 1.0) * x.ln() + (self.beta - 1.0) * (1.0 - x).ln()
    }

    fn density(&self, x: f64) -> f64 {
        if x <= 0.0 || x >= 1.0 {
            return 0.0;
        }
        (self.log_kernel(x) - self.log_norm).exp()
    }
}

/// Contacts converting for the first time, per UTC day and variant, from a campaign's events.
/// Each contact counts once per variant, on the day of its first conversion, so the days of a
/// variant add up to its `converted` count in the [`CampaignReport`].
pub fn conversions_per_day(events: &[Event]) -> BTreeMap<Date, BTreeMap<VariantId, u64>> {
    let mut conversions: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Converted { .. }) && e.variant.is_some())
        .collect();
    conversions.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
    let mut seen: BTreeSet<(&VariantId, &ContactId)> = BTreeSet::new();
    let mut days: BTreeMap<Date, BTreeMap<VariantId, u64>> = BTreeMap::new();
    for e in conversions {
        let Some(variant) = &e.variant else { continue };
        if seen.insert((variant, &e.contact)) {
            let day = TimeZone::UTC.to_datetime(e.at).date();
            *days
                .entry(day)
                .or_default()
                .entry(variant.clone())
                .or_default() += 1;
        }
    }
    days
}

/// A campaign report ready to render as HTML.
#[derive(Clone, Debug, PartialEq)]
pub struct HtmlReport {
    report: CampaignReport,
    per_day: BTreeMap<Date, BTreeMap<VariantId, u64>>,
    lifts: Vec<LiftPosterior>,
}

impl HtmlReport {
    /// A page for `report`. The lift of every variant over the first one (in id order) is
    /// computed from its counts; conversions over time stay empty until
    /// [`with_events`](Self::with_events) supplies the events.
    pub fn new(report: CampaignReport) -> Self {
        let mut variants = report.variants.iter();
        let lifts = match variants.next() {
            None => Vec::new(),
            Some((control, c)) => variants
                .filter_map(|(treatment, t)| {
                    LiftPosterior::from_counts(
                        (control, c.sent, c.converted),
                        (treatment, t.sent, t.converted),
                    )
                })
                .collect(),
        };
        HtmlReport {
            report,
            per_day: BTreeMap::new(),
            lifts,
        }
    }

    /// Adds conversions over time from the campaign's events (see [`conversions_per_day`]).
    #[must_use]
    pub fn with_events(mut self, events: &[Event]) -> Self {
        self.per_day = conversions_per_day(events);
        self
    }

    /// Builds the report and reads the campaign's conversions from the store (not its other
    /// events).
    ///
    /// # Errors
    /// [`mia_core::Error::NotFound`] for an unknown campaign; a store error.
    pub async fn build(store: &dyn Store, id: &CampaignId) -> mia_core::Result<Self> {
        let report = CampaignReport::build(store, id).await?;
        let converted = EventKind::Converted { value_minor: 0 }.name();
        let conversions = store.campaign_events_of(id, converted).await?;
        Ok(HtmlReport::new(report).with_events(&conversions))
    }

    /// The report this page shows.
    pub fn report(&self) -> &CampaignReport {
        &self.report
    }

    /// The lift posteriors, one per variant after the first.
    pub fn lifts(&self) -> &[LiftPosterior] {
        &self.lifts
    }

    /// The whole page: one self-contained HTML document.
    pub fn render(&self) -> String {
        let r = &self.report;
        let mut out = String::with_capacity(32 * 1024);
        let title = format!("Campaign report: {}", r.name);
        out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
        let _ = writeln!(out, "<title>{}</title>", escape(&title));
        out.push_str(STYLE);
        out.push_str("</head>\n<body>\n<main>\n");
        let _ = writeln!(out, "<h1>{}</h1>", escape(&title));
        let _ = write!(
            out,
            "<p>Campaign <code>{}</code>, state <strong>{}</strong>",
            escape(r.campaign.as_str()),
            escape(&r.state)
        );
        if let Some(reason) = &r.state_reason {
            let _ = write!(out, " ({})", escape(reason));
        }
        out.push_str(".</p>\n");
        self.summary(&mut out);
        self.funnels(&mut out);
        self.timeline(&mut out);
        self.lift_section(&mut out);
        out.push_str("</main>\n</body>\n</html>\n");
        out
    }

    fn summary(&self, out: &mut String) {
        let r = &self.report;
        out.push_str("<section>\n<h2>Audience</h2>\n<table>\n<caption>Every audience member, counted once</caption>\n<thead><tr><th scope=\"col\">Outcome</th><th scope=\"col\">Contacts</th></tr></thead>\n<tbody>\n");
        let mut row = |label: &str, n: u64| {
            let _ = writeln!(
                out,
                "<tr><th scope=\"row\">{}</th><td>{n}</td></tr>",
                escape(label)
            );
        };
        row("audience", r.audience);
        row("sent", r.sent);
        for (group, counts) in [
            ("skipped", &r.skipped),
            ("cancelled", &r.cancelled),
            ("failed", &r.failed),
        ] {
            for (reason, n) in counts {
                row(&format!("{group}: {reason}"), *n);
            }
        }
        row("open", r.open);
        row("opted out (any attribution)", r.opt_outs);
        out.push_str("</tbody>\n</table>\n</section>\n");
    }

    fn funnels(&self, out: &mut String) {
        out.push_str("<section>\n<h2>Funnel per variant</h2>\n");
        for (i, (id, v)) in self.report.variants.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            let stages = [
                ("sent", v.sent),
                ("delivered", v.delivered),
                ("read", v.read),
                ("clicked", v.clicked),
                ("converted", v.converted),
            ];
            let _ = writeln!(
                out,
                "<figure>\n<figcaption>Variant <strong>{}</strong>: {}</figcaption>",
                escape(id.as_str()),
                escape(&v.text)
            );
            let (width, bar_height, label_width) = (520.0, 26.0, 90.0);
            let height = bar_height * stages.len() as f64 + 10.0;
            let top = stages.iter().map(|s| s.1).max().unwrap_or(0).max(1) as f64;
            let _ = writeln!(
                out,
                "<svg class=\"funnel\" data-variant=\"{}\" role=\"img\" aria-label=\"Funnel of variant {}\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\">",
                escape(id.as_str()),
                escape(id.as_str())
            );
            for (j, (stage, n)) in stages.iter().enumerate() {
                let y = 5.0 + bar_height * j as f64;
                let w = (width - label_width - 70.0) * (*n as f64) / top;
                let _ = writeln!(
                    out,
                    "<text x=\"0\" y=\"{}\" class=\"label\">{stage}</text><rect x=\"{label_width}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{colour}\"/><text x=\"{}\" y=\"{}\" class=\"value\">{n}</text>",
                    num(y + bar_height * 0.65),
                    num(y + 3.0),
                    num(w),
                    num(bar_height - 6.0),
                    num(label_width + w + 6.0),
                    num(y + bar_height * 0.65),
                );
            }
            out.push_str("</svg>\n</figure>\n");
        }
        out.push_str("<table>\n<caption>Funnel and outcomes per variant (reactions count distinct contacts; revenue in minor units)</caption>\n<thead><tr><th scope=\"col\">Variant</th>");
        for h in [
            "sent",
            "delivered",
            "read",
            "clicked",
            "replied",
            "converted",
            "revenue",
            "opted out",
            "blocked",
            "click rate",
            "conversion rate",
        ] {
            let _ = write!(out, "<th scope=\"col\">{h}</th>");
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        for (id, v) in &self.report.variants {
            let _ = writeln!(
                out,
                "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(id.as_str()),
                v.sent,
                v.delivered,
                v.read,
                v.clicked,
                v.replied,
                v.converted,
                v.revenue_minor,
                v.opted_out,
                v.blocked,
                percent(v.click_rate),
                percent(v.conversion_rate),
            );
        }
        out.push_str("</tbody>\n</table>\n</section>\n");
    }

    fn timeline(&self, out: &mut String) {
        out.push_str("<section>\n<h2>Conversions over time</h2>\n");
        let variants: Vec<&VariantId> = self.report.variants.keys().collect();
        if self.per_day.is_empty() {
            out.push_str("<p>No conversions recorded.</p>\n</section>\n");
            return;
        }
        let days: Vec<&Date> = self.per_day.keys().collect();
        let count = |day: &Date, v: &VariantId| {
            self.per_day
                .get(day)
                .and_then(|m| m.get(v))
                .copied()
                .unwrap_or(0)
        };
        let top = self
            .per_day
            .values()
            .flat_map(|m| m.values())
            .copied()
            .max()
            .unwrap_or(0)
            .max(1) as f64;
        let (width, height, left, bottom, right, top_pad) = (640.0, 260.0, 50.0, 40.0, 20.0, 20.0);
        let plot_w = width - left - right;
        let plot_h = height - bottom - top_pad;
        let x = |i: usize| {
            if days.len() == 1 {
                left + plot_w / 2.0
            } else {
                left + plot_w * i as f64 / (days.len() - 1) as f64
            }
        };
        let y = |n: u64| top_pad + plot_h - plot_h * n as f64 / top;
        let _ = writeln!(
            out,
            "<figure>\n<figcaption>Contacts converting for the first time, per day (UTC)</figcaption>\n<svg class=\"timeline\" role=\"img\" aria-label=\"Conversions per day\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\">"
        );
        axes(out, left, top_pad, plot_w, plot_h);
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" class=\"tick\" text-anchor=\"end\">{}</text><text x=\"{}\" y=\"{}\" class=\"tick\" text-anchor=\"end\">0</text>",
            num(left - 6.0),
            num(top_pad + 4.0),
            top,
            num(left - 6.0),
            num(top_pad + plot_h + 4.0),
        );
        for (i, day) in days.iter().enumerate() {
            if i == 0 || i + 1 == days.len() {
                let _ = writeln!(
                    out,
                    "<text x=\"{}\" y=\"{}\" class=\"tick\" text-anchor=\"middle\">{day}</text>",
                    num(x(i)),
                    num(height - bottom + 18.0),
                );
            }
        }
        for (k, v) in variants.iter().enumerate() {
            let colour = PALETTE[k % PALETTE.len()];
            let points: Vec<String> = days
                .iter()
                .enumerate()
                .map(|(i, d)| format!("{},{}", num(x(i)), num(y(count(d, v)))))
                .collect();
            let _ = writeln!(
                out,
                "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
                points.join(" ")
            );
            for p in &points {
                if let Some((px, py)) = p.split_once(',') {
                    let _ = write!(
                        out,
                        "<circle cx=\"{px}\" cy=\"{py}\" r=\"3\" fill=\"{colour}\"/>"
                    );
                }
            }
            let _ = writeln!(
                out,
                "\n<text x=\"{}\" y=\"{}\" class=\"legend\" fill=\"{colour}\">{}</text>",
                num(left + 10.0 + 80.0 * k as f64),
                num(top_pad - 6.0),
                escape(v.as_str())
            );
        }
        out.push_str("</svg>\n</figure>\n<table>\n<caption>Contacts converting for the first time, per day (UTC)</caption>\n<thead><tr><th scope=\"col\">Day</th>");
        for v in &variants {
            let _ = write!(out, "<th scope=\"col\">{}</th>", escape(v.as_str()));
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        for day in &days {
            let _ = write!(out, "<tr><th scope=\"row\">{day}</th>");
            for v in &variants {
                let _ = write!(out, "<td>{}</td>", count(day, v));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n</table>\n</section>\n");
    }

    fn lift_section(&self, out: &mut String) {
        out.push_str("<section>\n<h2>Lift in conversion rate</h2>\n");
        if self.lifts.is_empty() {
            out.push_str(
                "<p>No lift to show: it needs two variants that both sent messages.</p>\n</section>\n",
            );
            return;
        }
        for lift in &self.lifts {
            lift_chart(out, lift);
        }
        out.push_str("<table>\n<caption>Posterior of the relative lift in conversion rate (Beta(1, 1) priors)</caption>\n<thead><tr><th scope=\"col\">Variant</th><th scope=\"col\">versus</th><th scope=\"col\">mean lift</th><th scope=\"col\">95% interval, low</th><th scope=\"col\">95% interval, high</th><th scope=\"col\">P(better)</th></tr></thead>\n<tbody>\n");
        for lift in &self.lifts {
            let _ = writeln!(
                out,
                "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(lift.treatment.as_str()),
                escape(lift.control.as_str()),
                percent(lift.mean),
                percent(lift.lower),
                percent(lift.upper),
                percent(lift.probability_better),
            );
        }
        out.push_str("</tbody>\n</table>\n</section>\n");
    }
}

fn lift_chart(out: &mut String, lift: &LiftPosterior) {
    let (Some(first), Some(last)) = (lift.density.first(), lift.density.last()) else {
        return;
    };
    let (low, high) = (first.0, last.0);
    let peak = lift
        .density
        .iter()
        .map(|p| p.1)
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let (width, height, left, bottom, right, top_pad) = (640.0, 240.0, 20.0, 40.0, 20.0, 20.0);
    let plot_w = width - left - right;
    let plot_h = height - bottom - top_pad;
    let span = (high - low).max(f64::MIN_POSITIVE);
    let x = |r: f64| left + plot_w * (r - low) / span;
    let y = |d: f64| top_pad + plot_h - plot_h * d / peak;
    let base = top_pad + plot_h;
    let _ = writeln!(
        out,
        "<figure>\n<figcaption>Lift of {} over {}: mean {}, 95% interval {} to {} (shaded), P(better) {}</figcaption>\n<svg class=\"lift\" role=\"img\" aria-label=\"Posterior density of the lift of {} over {}\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\">",
        escape(lift.treatment.as_str()),
        escape(lift.control.as_str()),
        percent(lift.mean),
        percent(lift.lower),
        percent(lift.upper),
        percent(lift.probability_better),
        escape(lift.treatment.as_str()),
        escape(lift.control.as_str()),
    );
    axes(out, left, top_pad, plot_w, plot_h);
    // The interval: the area under the curve between its ends.
    let mut shaded = format!("{},{}", num(x(lift.lower)), num(base));
    for &(r, d) in lift
        .density
        .iter()
        .filter(|(r, _)| *r >= lift.lower && *r <= lift.upper)
    {
        let _ = write!(shaded, " {},{}", num(x(r)), num(y(d)));
    }
    let _ = write!(shaded, " {},{}", num(x(lift.upper)), num(base));
    let _ = writeln!(
        out,
        "<polygon class=\"interval\" points=\"{shaded}\" fill=\"#1f77b4\" fill-opacity=\"0.25\"/>"
    );
    let curve: Vec<String> = lift
        .density
        .iter()
        .map(|&(r, d)| format!("{},{}", num(x(r)), num(y(d))))
        .collect();
    let _ = writeln!(
        out,
        "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"{}\"/>",
        curve.join(" ")
    );
    if low < 0.0 && high > 0.0 {
        let _ = writeln!(
            out,
            "<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#555\" stroke-dasharray=\"4 3\"/><text x=\"{0}\" y=\"{3}\" class=\"tick\" text-anchor=\"middle\">0%</text>",
            num(x(0.0)),
            num(top_pad),
            num(base),
            num(base + 30.0),
        );
    }
    for r in [low, high] {
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" class=\"tick\" text-anchor=\"middle\">{}</text>",
            num(x(r)),
            num(base + 16.0),
            percent(r),
        );
    }
    out.push_str("</svg>\n</figure>\n");
}

fn axes(out: &mut String, left: f64, top: f64, width: f64, height: f64) {
    let _ = writeln!(
        out,
        "<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" class=\"axis\"/><line x1=\"{0}\" y1=\"{2}\" x2=\"{3}\" y2=\"{2}\" class=\"axis\"/>",
        num(left),
        num(top),
        num(top + height),
        num(left + width),
    );
}

/// A coordinate with two decimals; anything not finite draws at 0 rather than breaking the SVG.
fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.2}")
    } else {
        "0".into()
    }
}

fn percent(v: f64) -> String {
    if v.is_finite() {
        format!("{:.2}%", v * 100.0)
    } else {
        "n/a".into()
    }
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "<style>
body { font-family: system-ui, sans-serif; color: #222; margin: 2rem; }
main { max-width: 60rem; }
table { border-collapse: collapse; margin: 1rem 0 2rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: right; }
th[scope=row], caption { text-align: left; }
caption { font-weight: 600; padding-bottom: 0.3rem; }
figure { margin: 1rem 0; }
svg text { font-size: 12px; fill: #222; }
svg .axis { stroke: #888; }
svg .legend { font-weight: 600; }
</style>
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn a_beta_density_integrates_to_one() {
        let b = Beta::from_counts(1_000, 50);
        let (low, high) = b.support();
        let n = 2_001;
        let dx = (high - low) / (n - 1) as f64;
        let values: Vec<f64> = (0..n).map(|i| b.density(low + dx * i as f64)).collect();
        assert!((trapezoid(&values, dx) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn equal_arms_have_a_lift_centred_on_zero() {
        let (a, b) = (VariantId::new("A"), VariantId::new("B"));
        let lift = LiftPosterior::from_counts((&a, 2_000, 200), (&b, 2_000, 200)).unwrap();
        assert!((lift.probability_better - 0.5).abs() < 0.02, "{lift:?}");
        assert!(lift.lower < 0.0 && lift.upper > 0.0);
        // The lift of a ratio is skewed right: the mean sits slightly above zero.
        assert!(lift.mean.abs() < 0.02, "{}", lift.mean);
    }

    #[test]
    fn a_clearly_better_arm_has_a_positive_interval() {
        let (a, b) = (VariantId::new("A"), VariantId::new("B"));
        let lift = LiftPosterior::from_counts((&a, 5_000, 250), (&b, 5_000, 400)).unwrap();
        assert!(lift.probability_better > 0.999, "{lift:?}");
        assert!(lift.lower > 0.3 && lift.upper < 0.9, "{lift:?}");
        assert!((lift.mean - 0.6).abs() < 0.05, "{}", lift.mean);
    }

    #[test]
    fn no_sends_means_no_posterior() {
        let (a, b) = (VariantId::new("A"), VariantId::new("B"));
        assert!(LiftPosterior::from_counts((&a, 0, 0), (&b, 10, 1)).is_none());
    }
}
