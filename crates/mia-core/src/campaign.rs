//! Campaigns: a spec, the copy variants generated for it, and a validated state machine.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::consent::Purpose;
use crate::error::{Error, Result};
use crate::ids::{CampaignId, ContactId, VariantId};
use crate::journey::Journey;
use crate::policy::RuleHit;
use crate::recurrence::Recurrence;
use crate::send_window::SendWindow;

/// Who a campaign is for. Consent is checked for every contact either way.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Audience {
    /// Every known contact (only those with consent for the purpose get a message).
    AllContacts,
    /// These contacts.
    Contacts(Vec<ContactId>),
}

/// What the host asks for: the brief the copy is written from and the rules of the send.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CampaignSpec {
    /// A short name (`"Spring sale"`).
    pub name: String,
    /// The consent purpose every recipient must have granted.
    pub purpose: Purpose,
    /// The product or offer, in plain words.
    pub product: String,
    /// The offer itself (`"20% off until Sunday"`).
    pub offer: String,
    /// Where the call to action points, if anywhere.
    pub call_to_action_url: Option<String>,
    /// The brand's tone of voice (`"friendly"`, `"formal"`).
    pub tone: String,
    /// The language of the copy (BCP 47).
    pub language: String,
    /// How many copy variants to generate (1..=8).
    pub variant_count: u8,
    /// Who to send to.
    pub audience: Audience,
    /// Follow-up steps per contact (see [`Journey`]); `None` sends one message per contact.
    /// Campaigns stored before journeys existed load with `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journey: Option<Journey>,
    /// When the campaign's messages may go out, on each contact's own clock (see
    /// [`SendWindow`]); `None` for any time the send policy allows. A job outside the window is
    /// deferred to its next opening, never dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_window: Option<SendWindow>,
    /// Send the campaign again every day, week or month (see [`Recurrence`]); `None` sends it
    /// once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrence: Option<Recurrence>,
}

impl CampaignSpec {
    /// A spec with defaults: marketing purpose, friendly tone, English, two variants, every
    /// contact as the audience.
    pub fn new(
        name: impl Into<String>,
        product: impl Into<String>,
        offer: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            purpose: Purpose::marketing(),
            product: product.into(),
            offer: offer.into(),
            call_to_action_url: None,
            tone: "friendly".into(),
            language: "en".into(),
            variant_count: 2,
            audience: Audience::AllContacts,
            journey: None,
            send_window: None,
            recurrence: None,
        }
    }

    /// Checks the spec before any work is done.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the first bad field, or the journey's first fault (see
    /// [`Journey::validate`]).
    pub fn validate(&self) -> Result<()> {
        if self.name.trim().is_empty() {
            return Err(Error::invalid("campaign name must not be empty"));
        }
        if self.product.trim().is_empty() {
            return Err(Error::invalid("campaign product must not be empty"));
        }
        if !(1..=8).contains(&self.variant_count) {
            return Err(Error::invalid(format!(
                "variant_count must be between 1 and 8, got {}",
                self.variant_count
            )));
        }
        if let Some(url) = &self.call_to_action_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(Error::invalid(format!(
                "call_to_action_url must be an http(s) URL, got {url:?}"
            )));
        }
        if self.purpose.as_str().is_empty() {
            return Err(Error::invalid("campaign purpose must not be empty"));
        }
        if let Some(journey) = &self.journey {
            journey.validate()?;
        }
        if let Some(recurrence) = &self.recurrence {
            recurrence.validate()?;
        }
        Ok(())
    }
}

/// Where a variant stands with the content guard and the reviewers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VariantStatus {
    /// Passed the content policy or a reviewer approved it: it may be sent.
    Approved,
    /// Waiting for a human reviewer.
    InReview,
    /// Denied by the content policy or rejected by a reviewer: it is never sent.
    Rejected,
}

/// One piece of copy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    /// `"A"`, `"B"`, ...
    pub id: VariantId,
    /// The message text.
    pub text: String,
    /// Guard and review status.
    pub status: VariantStatus,
    /// The content-policy rules that fired on this text.
    pub trace: Vec<RuleHit>,
    /// Which prompt wrote it: a hash of the prompt template and the model's provider, so copy
    /// can be traced back after the prompt changes. Empty for copy written before it was kept.
    #[serde(default)]
    pub prompt_version: String,
}

/// A campaign's lifecycle.
///
/// ```text
/// draft -> generating -> in_review -> approved -> scheduled -> running <-> paused
///                                                               running <-> completed
/// any state but aborted -> aborted
/// (completed -> running only to retry a requeued dead letter)
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignState {
    /// Created, nothing generated yet.
    Draft,
    /// The LLM is writing copy.
    Generating,
    /// Copy is waiting for the guard's escalations to be reviewed.
    InReview,
    /// At least one variant may be sent; nothing is queued yet.
    Approved,
    /// Jobs are in the outbox.
    Scheduled,
    /// Workers are sending.
    Running,
    /// Sending is on hold (by a human, or by a spam signal from Telegram).
    Paused,
    /// Every job is finished.
    Completed,
    /// Stopped for good.
    Aborted,
}

impl CampaignState {
    /// Whether the machine allows going from `self` to `to`.
    pub fn can_become(self, to: CampaignState) -> bool {
        use CampaignState::*;
        matches!(
            (self, to),
            (Draft, Generating)
                | (Generating, InReview)
                | (InReview, Approved)
                | (Approved, Scheduled)
                | (Scheduled, Running)
                | (Running, Paused)
                | (Paused, Running)
                | (Running, Completed)
                | (Completed, Running)
        ) || (to == Aborted && !self.is_terminal())
    }

    /// Aborted campaigns never change again. (A completed one reopens only when an operator
    /// requeues one of its dead letters.)
    pub fn is_terminal(self) -> bool {
        matches!(self, CampaignState::Aborted)
    }

    /// The state's stable name.
    pub fn as_str(self) -> &'static str {
        use CampaignState::*;
        match self {
            Draft => "draft",
            Generating => "generating",
            InReview => "in_review",
            Approved => "approved",
            Scheduled => "scheduled",
            Running => "running",
            Paused => "paused",
            Completed => "completed",
            Aborted => "aborted",
        }
    }

    /// Parses a name written by [`as_str`](Self::as_str).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an unknown name.
    pub fn parse(name: &str) -> Result<Self> {
        use CampaignState::*;
        [
            Draft, Generating, InReview, Approved, Scheduled, Running, Paused, Completed, Aborted,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
        .ok_or_else(|| Error::invalid(format!("unknown campaign state {name:?}")))
    }
}

impl fmt::Display for CampaignState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A campaign: its spec, copy and state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Campaign {
    /// Its id.
    pub id: CampaignId,
    /// What the host asked for.
    pub spec: CampaignSpec,
    /// The copy, once generated.
    pub variants: Vec<Variant>,
    /// Where it is in its lifecycle.
    pub state: CampaignState,
    /// Why it was last paused or aborted, if it was.
    pub state_reason: Option<String>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

impl Campaign {
    /// A new draft.
    pub fn draft(id: CampaignId, spec: CampaignSpec, now: Timestamp) -> Self {
        Self {
            id,
            spec,
            variants: Vec::new(),
            state: CampaignState::Draft,
            state_reason: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// Moves to `to` if the state machine allows it.
    ///
    /// # Errors
    /// [`Error::InvalidTransition`], leaving the campaign unchanged.
    pub fn transition(&mut self, to: CampaignState, now: Timestamp) -> Result<()> {
        if !self.state.can_become(to) {
            return Err(Error::InvalidTransition {
                from: self.state,
                to,
            });
        }
        self.state = to;
        self.updated_at = now;
        Ok(())
    }

    /// The variants that may be sent.
    pub fn approved_variants(&self) -> impl Iterator<Item = &Variant> {
        self.variants
            .iter()
            .filter(|v| v.status == VariantStatus::Approved)
    }

    /// The variant with this id.
    pub fn variant(&self, id: &VariantId) -> Option<&Variant> {
        self.variants.iter().find(|v| &v.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CampaignState::*;

    const ALL: [CampaignState; 9] = [
        Draft, Generating, InReview, Approved, Scheduled, Running, Paused, Completed, Aborted,
    ];

    #[test]
    fn the_happy_path_is_allowed() {
        let mut c = Campaign::draft(
            CampaignId::new("c"),
            CampaignSpec::new("n", "p", "o"),
            Timestamp::UNIX_EPOCH,
        );
        for s in [
            Generating, InReview, Approved, Scheduled, Running, Paused, Running, Completed,
        ] {
            c.transition(s, Timestamp::UNIX_EPOCH).unwrap();
        }
        assert_eq!(c.state, Completed);
    }

    #[test]
    fn illegal_transitions_are_typed_errors() {
        let mut c = Campaign::draft(
            CampaignId::new("c"),
            CampaignSpec::new("n", "p", "o"),
            Timestamp::UNIX_EPOCH,
        );
        let err = c.transition(Running, Timestamp::UNIX_EPOCH).unwrap_err();
        assert!(matches!(
            err,
            Error::InvalidTransition {
                from: Draft,
                to: Running
            }
        ));
        assert_eq!(c.state, Draft);
        // Aborted never moves; completed only reopens (or is aborted).
        for to in ALL {
            assert!(!Aborted.can_become(to), "aborted -> {to}");
            assert_eq!(
                Completed.can_become(to),
                matches!(to, Running | Aborted),
                "completed -> {to}"
            );
        }
        // Nine edges besides aborts.
        let edges = ALL
            .iter()
            .flat_map(|a| ALL.iter().map(move |b| (*a, *b)))
            .filter(|(a, b)| *b != Aborted && a.can_become(*b))
            .count();
        assert_eq!(edges, 9);
    }

    #[test]
    fn states_round_trip_through_their_names() {
        for s in ALL {
            assert_eq!(CampaignState::parse(s.as_str()).unwrap(), s);
        }
        assert!(CampaignState::parse("sent").is_err());
    }

    #[test]
    fn specs_stored_without_a_journey_still_load() {
        let spec = CampaignSpec::new("Spring", "tea", "20% off");
        let mut json = serde_json::to_value(&spec).unwrap();
        assert!(json.get("journey").is_none());
        json.as_object_mut().unwrap().remove("journey");
        let back: CampaignSpec = serde_json::from_value(json).unwrap();
        assert_eq!(back.journey, None);
    }

    #[test]
    fn specs_are_validated() {
        let mut spec = CampaignSpec::new("Spring", "tea", "20% off");
        assert!(spec.validate().is_ok());
        spec.variant_count = 0;
        assert!(spec.validate().is_err());
        spec.variant_count = 2;
        spec.call_to_action_url = Some("javascript:alert(1)".into());
        assert!(
            spec.validate()
                .unwrap_err()
                .to_string()
                .contains("call_to_action_url")
        );
    }
}
