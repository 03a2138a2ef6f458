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
    /// Audience members: each contact's first job, once per occurrence of a recurring
    /// campaign (step 0 unless a journey starts with a wait or at a later step; see
    /// [`Journey::first_step`](mia_core::Journey::first_step)).
    pub audience: u64,
    /// Audience members whose first job, a message, was sent.
    pub sent: u64,
    /// Messages sent, counting a journey's later steps too (equal to `sent` without a
    /// journey).
    #[serde(default)]
    pub messages: u64,
    /// Not sent because a rule said no, by rule (`no_consent`, `withdrawn`, `frequency_cap`...).
    /// A journey that starts by waiting for an event has its audience counted at that wait,
    /// and a decided wait counts here as `journey_event` or `journey_timeout` (it is not sent
    /// itself; `messages` counts what was sent after it).
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
    /// Builds the report from the campaign, its jobs and its events, counted in the store
    /// ([`job_groups`](mia_core::OutboxStore::job_groups),
    /// [`event_groups`](mia_core::EventStore::event_groups) and the campaign's opt-outs): a
    /// campaign of millions of jobs and events is a few hundred rows here.
    ///
    /// # Errors
    /// [`mia_core::Error::NotFound`] for an unknown campaign; a store error, or an error
    /// when one variant's conversion values add up to more than an `i64` holds.
    pub async fn build(store: &dyn Store, id: &CampaignId) -> mia_core::Result<Self> {
        let campaign = store
            .campaign(id)
            .await?
            .ok_or_else(|| mia_core::Error::NotFound {
                kind: "campaign",
                id: id.to_string(),
            })?;
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
        // The audience is counted at each contact's first job, once per occurrence of a
        // recurring campaign (each occurrence reads its audience afresh). That is step 0
        // unless a journey starts with a wait or at a later step.
        let first_step = match &campaign.spec.journey {
            Some(journey) => journey.first_step(),
            None => Some(0),
        };
        let reason = |o: &Option<String>| o.clone().unwrap_or_else(|| "unknown".into());
        for group in store.job_groups(id).await? {
            // Every message sent, at any step: a journey's follow-ups count for their
            // variant. (A journey's timers and decision records are never sent.)
            if group.state == JobState::Sent {
                report.messages += group.jobs;
                if let Some(v) = &group.variant {
                    report.variants.entry(v.clone()).or_default().sent += group.jobs;
                }
            }
            if Some(group.step) != first_step {
                continue;
            }
            report.audience += group.jobs;
            let tally = match group.state {
                JobState::Sent => &mut report.sent,
                JobState::Skipped => report.skipped.entry(reason(&group.outcome)).or_default(),
                JobState::Cancelled => report.cancelled.entry(reason(&group.outcome)).or_default(),
                JobState::DeadLetter => report.failed.entry(reason(&group.outcome)).or_default(),
                JobState::Pending | JobState::Claimed | JobState::Held => &mut report.open,
            };
            *tally += group.jobs;
        }

        for group in store.event_groups(id).await? {
            let Some(variant) = group.variant else {
                continue;
            };
            let v = report.variants.entry(variant).or_default();
            let n = group.contacts;
            match group.kind.as_str() {
                "delivered" => v.delivered = n,
                "read" => v.read = n,
                "clicked" => v.clicked = n,
                "replied" => v.replied = n,
                "converted" => {
                    v.converted = n;
                    v.revenue_minor = group.value_minor;
                }
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
        // Opt-outs are few; a contact who opted out twice, or about two variants, counts once.
        let opt_outs = store
            .campaign_events_of(id, EventKind::OptedOut.name())
            .await?;
        report.opt_outs = opt_outs
            .iter()
            .map(|e| &e.contact)
            .collect::<BTreeSet<&ContactId>>()
            .len() as u64;
        Ok(report)
    }

    /// Whether every audience member is counted exactly once.
    pub fn accounts_for_everyone(&self) -> bool {
        let sum = |m: &BTreeMap<String, u64>| m.values().sum::<u64>();
        self.sent + sum(&self.skipped) + sum(&self.cancelled) + sum(&self.failed) + self.open
            == self.audience
    }
}
