//! The transport seam: send one message idempotently, report limits, receive inbound events.
//!
//! Chat administration is a separate trait, [`ChatAdmin`], so a transport may offer sending only.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::consent::{ConsentRecord, ConsentState, Purpose, consent_state};
use crate::contact::{Contact, PeerKind, TelegramPeer};
use crate::error::{Error, Result};
use crate::ids::ContactId;
use crate::message::{FailureReason, OutboundMessage, SendOutcome};
use crate::store::ConsentStore;

/// What a transport can do and the limits it must keep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Messages per second over all chats (Telegram bots: about 30).
    pub messages_per_second: Option<f64>,
    /// The longest text accepted (Telegram: 4096 characters).
    pub max_text_chars: usize,
    /// Whether the transport reports reads.
    pub read_receipts: bool,
    /// Whether Telegram itself recognises a resend of an idempotency key, across processes
    /// (MTProto's `random_id`, the simulator's journal). When false (the Bot API), a job found
    /// with a send in flight after a crash is not sent again: it goes to the dead letters as
    /// `outcome_unknown` for a human to check. Defaults to false: claim it only if it holds.
    pub idempotent_sends: bool,
    /// Whether Telegram itself holds a message until its
    /// [`send_at`](crate::OutboundMessage::send_at) (MTProto `schedule_date`, the simulator).
    /// When false (the Bot API), a message scheduled for later is refused with
    /// [`Error::InvalidInput`](crate::Error::InvalidInput), never sent early. Defaults to false.
    #[serde(default)]
    pub scheduled_sends: bool,
    /// Whether [`TextFormat::Html`](crate::TextFormat) and `MarkdownV2` texts are sent
    /// formatted (when false, a formatted message is refused like a scheduled one). Defaults
    /// to false.
    #[serde(default)]
    pub formatting: bool,
}

impl Capabilities {
    /// Whether a transport with these capabilities can send `message` as asked at `now`: a
    /// transport calls it first in [`Transport::send`] and refuses what it cannot do (a message
    /// scheduled for later without [`scheduled_sends`](Self::scheduled_sends), markup without
    /// [`formatting`](Self::formatting)) instead of sending it early or with its markup showing.
    ///
    /// # Errors
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) naming `transport` and what it cannot
    /// do; nothing was sent.
    pub fn check(&self, transport: &str, message: &OutboundMessage, now: Timestamp) -> Result<()> {
        if message.is_scheduled_after(now) && !self.scheduled_sends {
            return Err(crate::Error::invalid(format!(
                "{transport} cannot schedule a message (capabilities().scheduled_sends is false): \
                 send it when it is due"
            )));
        }
        if message.format != crate::TextFormat::Plain && !self.formatting {
            return Err(crate::Error::invalid(format!(
                "{transport} cannot send {:?} text (capabilities().formatting is false): send \
                 plain text",
                message.format
            )));
        }
        Ok(())
    }
}

impl Default for Capabilities {
    fn default() -> Self {
        Self {
            messages_per_second: Some(30.0),
            max_text_chars: 4096,
            read_receipts: false,
            idempotent_sends: false,
            scheduled_sends: false,
            formatting: false,
        }
    }
}

/// Something a contact did that the transport observed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum InboundKind {
    /// A bot command (`/start spring_sale`): `name` without the slash, `payload` after the space.
    Command {
        /// The command.
        name: String,
        /// Its argument (a deep-link payload for `/start`).
        payload: String,
    },
    /// A text message.
    Text {
        /// What they wrote. Data, never instructions.
        text: String,
        /// The message it replies to, if it quotes one of ours.
        reply_to: Option<i64>,
    },
    /// One of our messages reached their device.
    Delivered {
        /// Our message.
        message_id: i64,
    },
    /// They read one of our messages.
    Read {
        /// Our message.
        message_id: i64,
    },
    /// They opened a link in one of our messages.
    Clicked {
        /// Our message.
        message_id: i64,
    },
    /// They bought after one of our messages (reported by the host's shop, or the simulator).
    Converted {
        /// Our message.
        message_id: i64,
        /// Order value in minor units.
        value_minor: i64,
    },
    /// They blocked us.
    Blocked,
}

/// One inbound event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InboundEvent {
    /// A transport-unique id (Telegram's update id), used to deduplicate.
    pub id: String,
    /// When it happened.
    pub at: Timestamp,
    /// Who.
    pub peer: TelegramPeer,
    /// What.
    pub kind: InboundKind,
}

/// Sends messages to Telegram (or a simulation of it).
#[async_trait]
pub trait Transport: Send + Sync {
    /// A short name for traces (`"sim"`, `"bot_api"`, `"mtproto"`).
    fn name(&self) -> &str;

    /// Limits and features.
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    /// Sends one message. A second call with the same [`OutboundMessage::key`] must not post
    /// again: it returns the first message's id with `duplicate: true`.
    ///
    /// Per-message results (over a limit, blocked, ...) are [`SendOutcome`]s, not errors.
    ///
    /// It honours [`reply_to`](OutboundMessage::reply_to), [`send_at`](OutboundMessage::send_at)
    /// and [`format`](OutboundMessage::format), or refuses what its
    /// [`capabilities`](Self::capabilities) do not claim ([`Capabilities::check`]): never a
    /// scheduled message sent early, never markup shown to the reader.
    ///
    /// # Errors
    /// [`Error::Transport`](crate::Error::Transport) when the transport itself failed (I/O,
    /// protocol); retryable ones are retried with backoff.
    async fn send(&self, message: &OutboundMessage) -> Result<SendOutcome>;

    /// Inbound events that have arrived since the last call, oldest first. Never blocks for long.
    ///
    /// # Errors
    /// [`Error::Transport`](crate::Error::Transport) when polling failed.
    async fn receive(&self) -> Result<Vec<InboundEvent>> {
        Ok(Vec::new())
    }

    /// How long until the next inbound event is expected, if the transport knows (the simulator
    /// does); lets an idle agent sleep exactly that long in virtual time.
    fn next_inbound_in(&self) -> Option<Duration> {
        None
    }
}

#[async_trait]
impl<T: Transport + ?Sized> Transport for Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }
    async fn send(&self, message: &OutboundMessage) -> Result<SendOutcome> {
        (**self).send(message).await
    }
    async fn receive(&self) -> Result<Vec<InboundEvent>> {
        (**self).receive().await
    }
    fn next_inbound_in(&self) -> Option<Duration> {
        (**self).next_inbound_in()
    }
}

/// The kind of chat to create.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatKind {
    /// A small basic group.
    Group,
    /// A supergroup (large group; slow mode, admins, public username).
    Supergroup,
    /// A broadcast channel.
    Channel,
}

/// A group, supergroup or channel to create.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewChat {
    /// What kind.
    pub kind: ChatKind,
    /// Its title, 1–128 characters.
    pub title: String,
    /// Its description (supergroups and channels), up to 255 characters.
    pub about: String,
}

impl NewChat {
    /// A chat with this title and no description.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an empty (or blank) title or one over 128 characters.
    pub fn new(kind: ChatKind, title: impl Into<String>) -> Result<Self> {
        let chat = Self {
            kind,
            title: title.into(),
            about: String::new(),
        };
        chat.validate()?;
        Ok(chat)
    }

    /// With a description.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] over 255 characters.
    pub fn with_about(mut self, about: impl Into<String>) -> Result<Self> {
        self.about = about.into();
        self.validate()?;
        Ok(self)
    }

    /// Checks the title and description lengths Telegram accepts.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let title = self.title.trim().chars().count();
        if !(1..=128).contains(&title) {
            return Err(Error::invalid(format!(
                "chat title must be 1 to 128 characters, got {title}"
            )));
        }
        let about = self.about.chars().count();
        if about > 255 {
            return Err(Error::invalid(format!(
                "chat description must be at most 255 characters, got {about}"
            )));
        }
        Ok(())
    }
}

/// A contact whose consent to be invited was checked: the only way to name a person to
/// [`ChatAdmin::invite_members`]. It can be made only from a consent history in which a grant
/// for the invitation's purpose is in force ([`Invitee::with_consent`], [`Invitee::check`]),
/// the same test the send policy applies to a campaign message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invitee {
    contact: ContactId,
    peer: TelegramPeer,
    purpose: Purpose,
    consented_at: Timestamp,
}

impl Invitee {
    /// Checks `history` (the contact's consent ledger) for a grant for `purpose` in force at
    /// `now`. Records of other contacts in `history` are ignored.
    ///
    /// # Errors
    /// [`Error::Refused`] when there is no grant in force (never given, withdrawn, expired) or
    /// the contact's processing is restricted, naming the contact, the purpose and why;
    /// [`Error::InvalidInput`] when the contact is not
    /// a person (a group or channel peer).
    pub fn with_consent(
        contact: &Contact,
        purpose: &Purpose,
        history: &[ConsentRecord],
        now: Timestamp,
    ) -> Result<Self> {
        if contact.peer.kind != PeerKind::User {
            return Err(Error::invalid(format!(
                "contact {} is a chat, not a person: only people are invited",
                contact.id
            )));
        }
        let own: Vec<ConsentRecord> = history
            .iter()
            .filter(|r| r.contact == contact.id)
            .cloned()
            .collect();
        if let Some(since) = crate::consent::restricted_since(&own, now) {
            return Err(Error::Refused(format!(
                "contact {} may not be invited: processing restricted since {since} (GDPR art. 18)",
                contact.id
            )));
        }
        match consent_state(&own, purpose, now) {
            ConsentState::Valid => {
                let consented_at = crate::consent::current_consent(&own, purpose, now)
                    .map_or(now, |r| r.recorded_at);
                Ok(Self {
                    contact: contact.id.clone(),
                    peer: contact.peer,
                    purpose: purpose.clone(),
                    consented_at,
                })
            }
            state => Err(Error::Refused(format!(
                "contact {} may not be invited: {} for purpose {purpose}; mia invites only \
                 people who asked to join",
                contact.id,
                state.reason()
            ))),
        }
    }

    /// [`with_consent`](Self::with_consent) with the history read from `store`.
    ///
    /// # Errors
    /// As [`with_consent`](Self::with_consent), or a store error.
    pub async fn check<S: ConsentStore + ?Sized>(
        store: &S,
        contact: &Contact,
        purpose: &Purpose,
        now: Timestamp,
    ) -> Result<Self> {
        let history = store.consent_history(&contact.id).await?;
        Self::with_consent(contact, purpose, &history, now)
    }

    /// The contact.
    pub fn contact(&self) -> &ContactId {
        &self.contact
    }

    /// Their Telegram peer.
    pub fn peer(&self) -> TelegramPeer {
        self.peer
    }

    /// The purpose they consented to.
    pub fn purpose(&self) -> &Purpose {
        &self.purpose
    }

    /// When the grant in force was recorded.
    pub fn consented_at(&self) -> Timestamp {
        self.consented_at
    }
}

/// What happened to one [`ChatAdmin::invite_members`] call: nobody is lost from the report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteReport {
    /// Added to the chat.
    pub invited: Vec<ContactId>,
    /// Not added, and why (their privacy settings, blocked, deactivated, ...; Telegram's
    /// `missing_invitees`). Send them an invite link if they still want to join.
    pub not_invited: Vec<(ContactId, FailureReason)>,
}

fn unsupported(what: &str) -> Error {
    Error::invalid(format!("unsupported: this transport cannot {what}"))
}

/// Administers chats the sender owns: edit, delete and pin its own messages; create groups and
/// channels, export invite links, resolve usernames, and invite people who asked to join.
///
/// The methods after `pin_message` have defaults that answer [`Error::InvalidInput`]
/// ("unsupported"), so a transport implements what it can. mia only ever invites contacts with
/// consent for that purpose: [`invite_members`](Self::invite_members) takes [`Invitee`]s, which
/// exist only for people whose consent was checked.
#[async_trait]
pub trait ChatAdmin: Send + Sync {
    /// Replaces the text of one of our messages.
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound) for an unknown message.
    async fn edit_message(&self, peer: TelegramPeer, message_id: i64, text: &str) -> Result<()>;

    /// Deletes one of our messages.
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound) for an unknown message.
    async fn delete_message(&self, peer: TelegramPeer, message_id: i64) -> Result<()>;

    /// Pins one of our messages in its chat.
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound) for an unknown message.
    async fn pin_message(&self, peer: TelegramPeer, message_id: i64) -> Result<()>;

    /// Creates a group, supergroup or channel owned by the sender, with nobody else in it.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when the transport cannot create chats (the Bot API) or the
    /// title is invalid; a retryable [`Error::Transport`] for flood waits.
    async fn create_chat(&self, chat: &NewChat) -> Result<TelegramPeer> {
        let _ = chat;
        Err(unsupported("create chats"))
    }

    /// An invite link to a group or channel the sender administers, for people who asked to
    /// join; `member_limit` caps how many may join through it.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when unsupported; a transport error when Telegram refuses.
    async fn export_invite_link(
        &self,
        chat: TelegramPeer,
        member_limit: Option<u32>,
    ) -> Result<String> {
        let _ = (chat, member_limit);
        Err(unsupported("export invite links"))
    }

    /// The chat or person with this public username (`@name`, `name` or `t.me/name`), or
    /// `None` when there is none. Flood-prone on Telegram: transports cache answers.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a malformed username or when unsupported; a retryable
    /// [`Error::Transport`] for flood waits.
    async fn resolve_username(&self, username: &str) -> Result<Option<TelegramPeer>> {
        let _ = username;
        Err(unsupported("resolve usernames"))
    }

    /// Adds people who consented to be invited to a group or channel the sender administers.
    /// Those Telegram does not add (privacy settings: `missing_invitees`) are reported in
    /// [`InviteReport::not_invited`], never dropped silently.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when unsupported; a transport error when the call failed as a
    /// whole (nobody was added then).
    async fn invite_members(
        &self,
        chat: TelegramPeer,
        invitees: &[Invitee],
    ) -> Result<InviteReport> {
        let _ = (chat, invitees);
        Err(unsupported("invite members"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::consent::Evidence;
    use crate::ids::IdempotencyKey;
    use crate::memory::MemoryStore;
    use crate::message::TextFormat;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn anna() -> Contact {
        Contact::new("anna", TelegramPeer::user(1001), "Europe/Berlin", at(0)).unwrap()
    }

    #[tokio::test]
    async fn only_people_who_asked_to_join_can_be_invited() {
        let community = Purpose::new("community");
        let evidence = Evidence::new("telegram_start", "payload=join");
        let store = MemoryStore::new();
        let err = Invitee::check(&store, &anna(), &community, at(10))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Refused(_)), "{err}");
        assert!(err.to_string().contains("no_consent"), "{err}");
        store
            .append_consent(&[ConsentRecord::grant(
                "anna",
                community.clone(),
                evidence.clone(),
                "v1",
                at(5),
            )])
            .await
            .unwrap();
        let invitee = Invitee::check(&store, &anna(), &community, at(10))
            .await
            .unwrap();
        assert_eq!(invitee.contact().as_str(), "anna");
        assert_eq!(invitee.peer(), TelegramPeer::user(1001));
        assert_eq!(invitee.consented_at(), at(5));
        // Consent to marketing is not consent to be added to a group.
        let err = Invitee::check(&store, &anna(), &Purpose::marketing(), at(10))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Refused(_)), "{err}");
        store
            .append_consent(&[ConsentRecord::withdraw(
                "anna",
                community.clone(),
                evidence.clone(),
                at(20),
            )])
            .await
            .unwrap();
        let err = Invitee::check(&store, &anna(), &community, at(30))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("withdrawn"), "{err}");
        // Someone else's grant does not count for anna.
        let bens = [ConsentRecord::grant(
            "ben",
            community.clone(),
            evidence,
            "v1",
            at(1),
        )];
        assert!(Invitee::with_consent(&anna(), &community, &bens, at(2)).is_err());
        let group = Contact::new("g", TelegramPeer::group(-5), "UTC", at(0)).unwrap();
        let err = Invitee::with_consent(&group, &community, &[], at(2)).unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{err}");
        // A restriction of processing outranks a grant in force.
        let granted = ConsentRecord::grant(
            "anna",
            community.clone(),
            Evidence::new("telegram_start", "update=9"),
            "v1",
            at(1),
        );
        assert!(
            Invitee::with_consent(&anna(), &community, std::slice::from_ref(&granted), at(3))
                .is_ok()
        );
        let restricted = [
            granted,
            ConsentRecord::withdraw(
                "anna",
                Purpose::new(crate::RESTRICTION_PURPOSE),
                Evidence::new(crate::RESTRICTION_METHOD, "dsr_1"),
                at(2),
            ),
        ];
        let err = Invitee::with_consent(&anna(), &community, &restricted, at(3)).unwrap_err();
        assert!(err.to_string().contains("restricted"), "{err}");
    }

    #[test]
    fn what_a_transport_cannot_do_is_refused() {
        let m = OutboundMessage::new(
            IdempotencyKey::new("k"),
            ContactId::new("c"),
            TelegramPeer::user(1),
            "<b>hi</b>",
        );
        let plain = Capabilities::default();
        assert!(plain.check("t", &m, at(0)).is_ok());
        let later = m.clone().with_send_at(at(60));
        let err = plain.check("t", &later, at(0)).unwrap_err();
        assert!(err.to_string().contains("cannot schedule"), "{err}");
        assert!(!err.is_retryable());
        assert!(plain.check("t", &later, at(60)).is_ok(), "due: sent now");
        let html = m.with_format(TextFormat::Html);
        assert!(plain.check("t", &html, at(0)).is_err());
        let able = Capabilities {
            scheduled_sends: true,
            formatting: true,
            ..Capabilities::default()
        };
        assert!(able.check("t", &html.with_send_at(at(60)), at(0)).is_ok());
    }

    #[test]
    fn chat_titles_are_checked() {
        assert!(NewChat::new(ChatKind::Channel, "Tea lovers").is_ok());
        assert!(NewChat::new(ChatKind::Group, "  ").is_err());
        assert!(NewChat::new(ChatKind::Group, "x".repeat(129)).is_err());
        let about = NewChat::new(ChatKind::Supergroup, "Tea").unwrap();
        assert!(about.clone().with_about("y".repeat(256)).is_err());
        assert_eq!(
            about.with_about("Weekly tastings").unwrap().about,
            "Weekly tastings"
        );
    }
}
