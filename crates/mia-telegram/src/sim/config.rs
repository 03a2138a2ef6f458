//! Configuration of the simulated Telegram: limits and how simulated people respond.

use std::collections::BTreeMap;
use std::time::Duration;

use mia_core::VariantId;
use serde::{Deserialize, Serialize};

use crate::error::TelegramError;
use crate::limits::Limits;

/// How people who got one variant behave. Probabilities are conditional on the step before:
/// `read` is P(read | delivered), `clicked` is P(click | read), `converted` is
/// P(convert | click), `replied`, `stop` and `block` are P(· | read).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Behaviour {
    /// P(delivered | sent).
    pub delivered: f64,
    /// P(read | delivered).
    pub read: f64,
    /// P(click | read).
    pub clicked: f64,
    /// P(reply | read).
    pub replied: f64,
    /// P(conversion | click).
    pub converted: f64,
    /// P(STOP | read).
    pub stop: f64,
    /// P(block | read), when they did not send STOP.
    pub block: f64,
    /// Order values, uniform in this range of minor units.
    pub order_value_minor: (i64, i64),
    /// Mean time from delivery to reading (exponential).
    pub mean_time_to_read: Duration,
    /// Mean time from reading to acting (click, reply, STOP; exponential).
    pub mean_time_to_act: Duration,
    /// Mean time from click to purchase (exponential).
    pub mean_time_to_convert: Duration,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            delivered: 0.98,
            read: 0.65,
            clicked: 0.12,
            replied: 0.03,
            converted: 0.2,
            stop: 0.015,
            block: 0.005,
            order_value_minor: (1_500, 9_000),
            mean_time_to_read: Duration::from_secs(2 * 3600),
            mean_time_to_act: Duration::from_secs(5 * 60),
            mean_time_to_convert: Duration::from_secs(30 * 60),
        }
    }
}

impl Behaviour {
    /// Checks that every probability is within 0..=1 and the value range is ordered.
    ///
    /// # Errors
    /// [`TelegramError::Config`] naming the bad field.
    pub fn validate(&self) -> Result<(), TelegramError> {
        for (name, p) in [
            ("delivered", self.delivered),
            ("read", self.read),
            ("clicked", self.clicked),
            ("replied", self.replied),
            ("converted", self.converted),
            ("stop", self.stop),
            ("block", self.block),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(TelegramError::Config(format!(
                    "behaviour.{name} must be a probability, got {p}"
                )));
            }
        }
        if self.order_value_minor.0 > self.order_value_minor.1 || self.order_value_minor.0 < 0 {
            return Err(TelegramError::Config(
                "behaviour.order_value_minor must be an ordered, non-negative range".into(),
            ));
        }
        Ok(())
    }
}

/// Everything the simulator needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimConfig {
    /// Seeds every random draw; the same seed and the same sends give the same run.
    pub seed: u64,
    /// Rate limits.
    pub limits: Limits,
    /// Behaviour for variants without their own entry (and for messages without a variant).
    pub behaviour: Behaviour,
    /// Behaviour per variant, to give an A/B test a true winner.
    pub per_variant: BTreeMap<VariantId, Behaviour>,
    /// Share of chats whose account is deleted (sends fail permanently).
    pub deactivated_share: f64,
    /// Share of chats that blocked the sender before the run.
    pub blocked_share: f64,
    /// Share of chats whose privacy settings refuse the sender (`USER_PRIVACY_RESTRICTED`).
    #[serde(default)]
    pub privacy_share: f64,
    /// Flood control escalates as Telegram's does: a send before a retry-after ran out is
    /// answered with a wait twice as long as the last one (up to an hour).
    #[serde(default = "yes")]
    pub flood_escalation: bool,
    /// `PEER_FLOOD` (the account limited for spam) after this many messages to people who
    /// never wrote to the sender, as a user account that cold-messages strangers gets; from
    /// then on every message to such a person fails with `SpamLimited`. `None`: off.
    #[serde(default)]
    pub cold_message_limit: Option<u32>,
    /// Slow mode per group or channel id: the shortest gap between two of our messages there
    /// (`SLOWMODE_WAIT_X`).
    #[serde(default)]
    pub slow_mode: BTreeMap<i64, Duration>,
    /// Telegram's undocumented limits per kind of call (edit, delete, pin, invite link,
    /// resolve username, create chat, invite members), each drawn from the seed inside a
    /// realistic range ([`SimTelegram::hidden_limit`](super::SimTelegram::hidden_limit)) and
    /// answered with escalating flood waits. On by default.
    #[serde(default = "yes")]
    pub hidden_limits: bool,
}

fn yes() -> bool {
    true
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            limits: Limits::default(),
            behaviour: Behaviour::default(),
            per_variant: BTreeMap::new(),
            deactivated_share: 0.005,
            blocked_share: 0.01,
            privacy_share: 0.0,
            flood_escalation: true,
            cold_message_limit: None,
            slow_mode: BTreeMap::new(),
            hidden_limits: true,
        }
    }
}

impl SimConfig {
    /// A default configuration with this seed.
    pub fn seeded(seed: u64) -> Self {
        Self {
            seed,
            ..Self::default()
        }
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// [`TelegramError::Config`] naming the bad field.
    pub fn validate(&self) -> Result<(), TelegramError> {
        self.behaviour.validate()?;
        for b in self.per_variant.values() {
            b.validate()?;
        }
        self.limits.validate()?;
        for (name, p) in [
            ("deactivated_share", self.deactivated_share),
            ("blocked_share", self.blocked_share),
            ("privacy_share", self.privacy_share),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(TelegramError::Config(format!(
                    "{name} must be a probability, got {p}"
                )));
            }
        }
        if self.deactivated_share + self.blocked_share + self.privacy_share > 1.0 {
            return Err(TelegramError::Config(
                "deactivated_share + blocked_share + privacy_share must not exceed 1".into(),
            ));
        }
        Ok(())
    }

    pub(crate) fn behaviour_for(&self, variant: Option<&VariantId>) -> &Behaviour {
        variant
            .and_then(|v| self.per_variant.get(v))
            .unwrap_or(&self.behaviour)
    }
}
