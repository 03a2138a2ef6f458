//! [`CampaignReport`]: what happened to a campaign, from the store's own records.

use std::collections::{BTreeMap, BTreeSet};

use mia_core::{CampaignId, ContactId, EventKind, JobState, Store, VariantId};
use serde::{Deserialize, Serialize};

/// Results of one variant. Reactions count distinct contacts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VariantReport {
    /// The text sent.
    pub text: String,
    /// Messages of this variant sent, at every step of a journey.
    pub sent: u64,
    /// Contacts whose message was delivered.
    pub delivered: u64,
    /// Contacts who read it.
    pub read: u64,
    /// Contacts who clicked.
    pub clicked: u64,
    /// Contacts who replied.
    pub replied: u64,
    /// Contacts who bought.
    pub converted: u64,
    /// Revenue in minor units.
    pub revenue_minor: i64,
    /// Contacts who sent STOP in reply to it.
    pub opted_out: u64,
    /// Contacts who blocked the sender after it.
    pub blocked: u64,
    /// `clicked / sent`.
    pub click_rate: f64,
    /// `converted / sent`.
    pub conversion_rate: f64,
}

/// A campaign's outcome. Every audience member is counted exactly once in `sent`, `skipped`,
/// `cancelled`, `failed` or `open`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CampaignReport {
    /// The campaign.
    pub campaign: CampaignId,
    /// Its name.
    pub name: String,
    /// Its state.
    pub state: String,
    /// Why it was paused or aborted.
    pub state_reason: Option<String>,
    /// Audience members (jobs of step 0).
    pub audience: u64,
    /// Audience members whose first message was sent.
    pub sent: u64,
    /// Messages sent, counting a journey's later steps too (equal to `sent` without a
    /// journey).
    #[serde(default)]
    pub messages: u64,
    /// Not sent because a rule said no, by rule (`no_consent`, `withdrawn`, `frequency_cap`...).
    pub skipped: BTreeMap<String, u64>,
    /// Cancelled before sending, by reason (`withdrawn` for a STOP mid-campaign).
    pub cancelled: BTreeMap<String, u64>,
    /// Dead letters, by reason (`blocked`, `deactivated`...).
    pub failed: BTreeMap<String, u64>,
    /// Still pending, claimed or held for review.
    pub open: u64,
    /// Results per variant.
    pub variants: BTreeMap<VariantId, VariantReport>,
    /// Contacts who opted out of anything while the campaign ran (attributed or not).
    pub opt_outs: u64,
}

impl CampaignReport {
    /// Builds the report from the campaign, its jobs and its events.
    ///
    /// # Errors
    /// [`mia_core::Error::NotFound`] for an unknown campaign; a store error.
    pub async fn build(store: &dyn Store, id: &CampaignId) -> mia_core::Result<Self> {
        let campaign = store
            .campaign(id)
            .await?
            .ok_or_else(|| mia_core::Error::NotFound {
                kind: "campaign",
                id: id.to_string(),
            })?;
        let jobs = store.jobs(id).await?;
        let mut report = CampaignReport {
            campaign: id.clone(),
            name: campaign.spec.name.clone(),
            state: campaign.state.to_string(),
            state_reason: campaign.state_reason.clone(),
            audience: 0,
            sent: 0,
            messages: 0,
            skipped: BTreeMap::new(),
            cancelled: BTreeMap::new(),
            failed: BTreeMap::new(),
            open: 0,
            variants: campaign
                .variants
                .iter()
                .map(|v| {
                    let r = VariantReport {
                        text: v.text.clone(),
                        ..VariantReport::default()
                    };
                    (v.id.clone(), r)
                })
                .collect(),
            opt_outs: 0,
        };
        let reason = |o: &Option<String>| o.clone().unwrap_or_else(|| "unknown".into());
        // Every message sent, at any step: a journey's follow-ups count for their variant.
        // (A journey's timers and decision records are never sent.)
        for job in jobs.iter().filter(|j| j.state == JobState::Sent) {
            report.messages += 1;
            if let Some(v) = &job.variant {
                report.variants.entry(v.clone()).or_default().sent += 1;
            }
        }
        // The audience is counted at each contact's first step, once per occurrence of a
        // recurring campaign (each occurrence reads its audience afresh).
        let first_step = |step: u32| {
            mia_core::JourneyPosition::from_step(step).is_some_and(|p| p.round == 0 && p.index == 0)
        };
        for job in jobs.iter().filter(|j| first_step(j.step)) {
            report.audience += 1;
            match job.state {
                JobState::Sent => report.sent += 1,
                JobState::Skipped => *report.skipped.entry(reason(&job.outcome)).or_default() += 1,
                JobState::Cancelled => {
                    *report.cancelled.entry(reason(&job.outcome)).or_default() += 1;
                }
                JobState::DeadLetter => {
                    *report.failed.entry(reason(&job.outcome)).or_default() += 1
                }
                JobState::Pending | JobState::Claimed | JobState::Held => report.open += 1,
            }
        }

        let mut seen: BTreeMap<(VariantId, &'static str), BTreeSet<ContactId>> = BTreeMap::new();
        let mut opted_out: BTreeSet<ContactId> = BTreeSet::new();
        for e in store.campaign_events(id).await? {
            if let EventKind::OptedOut = e.kind {
                opted_out.insert(e.contact.clone());
            }
            let Some(variant) = e.variant.clone() else {
                continue;
            };
            if let EventKind::Converted { value_minor } = e.kind {
                report
                    .variants
                    .entry(variant.clone())
                    .or_default()
                    .revenue_minor += value_minor;
            }
            seen.entry((variant, e.kind.name()))
                .or_default()
                .insert(e.contact);
        }
        for ((variant, kind), contacts) in seen {
            let n = contacts.len() as u64;
            let v = report.variants.entry(variant).or_default();
            match kind {
                "delivered" => v.delivered = n,
                "read" => v.read = n,
                "clicked" => v.clicked = n,
                "replied" => v.replied = n,
                "converted" => v.converted = n,
                "opted_out" => v.opted_out = n,
                "blocked" => v.blocked = n,
                _ => {}
            }
        }
        for v in report.variants.values_mut() {
            if v.sent > 0 {
                v.click_rate = v.clicked as f64 / v.sent as f64;
                v.conversion_rate = v.converted as f64 / v.sent as f64;
            }
        }
        report.opt_outs = opted_out.len() as u64;
        Ok(report)
    }

    /// Whether every audience member is counted exactly once.
    pub fn accounts_for_everyone(&self) -> bool {
        let sum = |m: &BTreeMap<String, u64>| m.values().sum::<u64>();
        self.sent + sum(&self.skipped) + sum(&self.cancelled) + sum(&self.failed) + self.open
            == self.audience
    }
}
