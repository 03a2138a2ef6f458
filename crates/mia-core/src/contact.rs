//! Contacts: the people (and chats) a business may message, with where and when they live.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::ContactId;

/// What kind of Telegram chat a peer is; Telegram limits each kind differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerKind {
    /// A private chat with one user.
    User,
    /// A group or supergroup.
    Group,
    /// A broadcast channel.
    Channel,
}

/// A Telegram chat, by its numeric id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TelegramPeer {
    /// The kind of chat.
    pub kind: PeerKind,
    /// Telegram's id of the user or chat.
    pub id: i64,
}

impl TelegramPeer {
    /// A private chat with the user `id`.
    pub fn user(id: i64) -> Self {
        Self {
            kind: PeerKind::User,
            id,
        }
    }

    /// The group `id`.
    pub fn group(id: i64) -> Self {
        Self {
            kind: PeerKind::Group,
            id,
        }
    }

    /// The broadcast channel `id`.
    pub fn channel(id: i64) -> Self {
        Self {
            kind: PeerKind::Channel,
            id,
        }
    }
}

/// The time zone of a contact whose zone nobody knows: someone who wrote to the bot first
/// (Telegram does not say where people are). Rules on the contact's clock then take the most
/// restrictive reading over the zones the audience may live in: a send must be allowed in every
/// one of them (`SendGuardBuilder::zones_when_unknown` in mia-safety for quiet hours and
/// weekdays, [`AgentBuilder::zones_when_unknown`](crate::AgentBuilder::zones_when_unknown) for
/// campaign send windows). [`Contact::tz`] reads it as UTC.
pub const UNKNOWN_TIME_ZONE: &str = "unknown";

/// A contact: someone the business knows, whether or not they agreed to hear from it.
///
/// Knowing a contact never allows a message; only a valid [`ConsentRecord`](crate::ConsentRecord)
/// does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    /// The host's id.
    pub id: ContactId,
    /// Where to reach them on Telegram.
    pub peer: TelegramPeer,
    /// BCP 47 language tag (`"de-AT"`), used to pick copy and phone regions.
    pub locale: Option<String>,
    /// IANA time zone (`"Europe/Vienna"`), used for quiet hours and send windows, or
    /// [`UNKNOWN_TIME_ZONE`].
    pub time_zone: String,
    /// Free-form attributes for segments (plan, city, ...).
    pub attributes: BTreeMap<String, serde_json::Value>,
    /// When the contact was first recorded.
    pub created_at: Timestamp,
}

impl Contact {
    /// A contact with a validated IANA time zone (or [`UNKNOWN_TIME_ZONE`]).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when the id is empty or the time zone is not one this build
    /// knows.
    pub fn new(
        id: impl Into<ContactId>,
        peer: TelegramPeer,
        time_zone: &str,
        created_at: Timestamp,
    ) -> Result<Self> {
        let id = id.into();
        if id.as_str().trim().is_empty() {
            return Err(Error::invalid("contact id must not be empty"));
        }
        check_zone(&id, time_zone)?;
        Ok(Self {
            id,
            peer,
            locale: None,
            time_zone: time_zone.to_owned(),
            attributes: BTreeMap::new(),
            created_at,
        })
    }

    /// Checks a contact built by hand or read from elsewhere (its fields are public): a
    /// non-empty id and a time zone this build knows. Quiet hours would otherwise be judged on
    /// the wrong clock.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the contact and the field.
    pub fn validate(&self) -> Result<()> {
        if self.id.as_str().trim().is_empty() {
            return Err(Error::invalid("contact id must not be empty"));
        }
        check_zone(&self.id, &self.time_zone)
    }

    /// Sets the locale.
    #[must_use]
    pub fn with_locale(mut self, locale: impl Into<String>) -> Self {
        self.locale = Some(locale.into());
        self
    }

    /// Sets one attribute.
    #[must_use]
    pub fn with_attribute(mut self, key: impl Into<String>, value: serde_json::Value) -> Self {
        self.attributes.insert(key.into(), value);
        self
    }

    /// The contact's time zone; UTC when it is [`UNKNOWN_TIME_ZONE`] or the stored name no
    /// longer resolves (a record written by an older tz database). [`Contact::new`] rejects
    /// names it does not know up front. Rules that must not guess use [`known_tz`](Self::known_tz).
    pub fn tz(&self) -> TimeZone {
        self.known_tz().unwrap_or(TimeZone::UTC)
    }

    /// The contact's time zone, or `None` when it is [`UNKNOWN_TIME_ZONE`] (or no longer
    /// resolves): rules on the contact's clock then read the zones the audience may live in.
    pub fn known_tz(&self) -> Option<TimeZone> {
        if self.time_zone == UNKNOWN_TIME_ZONE {
            return None;
        }
        TimeZone::get(&self.time_zone).ok()
    }
}

fn check_zone(id: &ContactId, time_zone: &str) -> Result<()> {
    if time_zone == UNKNOWN_TIME_ZONE {
        return Ok(());
    }
    TimeZone::get(time_zone)
        .map(|_| ())
        .map_err(|e| Error::invalid(format!("contact {id}: time zone {time_zone:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_unknown_time_zones_and_empty_ids() {
        let now = Timestamp::UNIX_EPOCH;
        assert!(Contact::new("a", TelegramPeer::user(1), "Europe/Vienna", now).is_ok());
        let err = Contact::new("a", TelegramPeer::user(1), "Mars/Olympus", now).unwrap_err();
        assert!(err.to_string().contains("Mars/Olympus"), "{err}");
        assert!(Contact::new(" ", TelegramPeer::user(1), "UTC", now).is_err());
        let mut typo = Contact::new("a", TelegramPeer::user(1), "UTC", now).unwrap();
        typo.time_zone = "America/Sao Paulo".into();
        assert!(
            typo.validate()
                .unwrap_err()
                .to_string()
                .contains("Sao Paulo")
        );
    }
}
