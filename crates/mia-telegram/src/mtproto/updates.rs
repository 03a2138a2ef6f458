//! From MTProto updates to mia's inbound events: a pure function over a small view of a
//! message, and the glue from grammers' updates to that view.

use grammers_client::peer::Peer;
use grammers_client::session::types::{PeerId, PeerKind as GrammersPeerKind};
use grammers_client::tl;
use grammers_client::update::Update;
use jiff::Timestamp;
use mia_core::{InboundEvent, InboundKind, PeerKind, TelegramPeer};

/// What mia needs to know about one message, whatever client library delivered it.
#[derive(Clone, Debug, PartialEq)]
pub struct MessageView {
    /// Telegram's id of the message (unique per account in private chats).
    pub id: i64,
    /// The chat it was written in, by Bot API style dialog id (users positive, groups negative).
    pub chat: TelegramPeer,
    /// Who wrote it (a user id), when known.
    pub sender: Option<i64>,
    /// Whether the sender is a bot.
    pub sender_is_bot: bool,
    /// The text (or media caption); empty for media without one and for service messages.
    pub text: String,
    /// The message it replies to, if any.
    pub reply_to: Option<i64>,
    /// Whether we wrote it (from this account, any device).
    pub outgoing: bool,
    /// When it was sent.
    pub date: Timestamp,
}

/// The inbound event a message carries, if it is one mia acts on.
///
/// Only incoming messages from a person in a private chat count: opt-ins, opt-outs and replies
/// come from people, never from a group on a member's behalf, from a bot, or from our own
/// account on another device. `/command@bot payload` becomes a command (lower-cased, the `@bot`
/// dropped); anything else is text with the message it replies to. The event id is
/// `mtproto:<chat>:<message id>`, stable across redeliveries.
pub fn inbound_event(view: &MessageView) -> Option<InboundEvent> {
    if view.outgoing
        || view.chat.kind != PeerKind::User
        || view.sender_is_bot
        || view.sender.is_some_and(|s| s != view.chat.id)
        || view.text.trim().is_empty()
    {
        return None;
    }
    let kind = crate::command::inbound_kind(&view.text, view.reply_to);
    Some(InboundEvent {
        id: format!("mtproto:{}:{}", view.chat.id, view.id),
        at: view.date,
        peer: view.chat,
        kind,
    })
}

/// mia's peer for a grammers peer id, by its Bot API style dialog id.
pub(crate) fn telegram_peer(id: PeerId) -> Option<TelegramPeer> {
    let dialog = id.bot_api_dialog_id()?;
    let kind = match id.kind() {
        GrammersPeerKind::User => PeerKind::User,
        GrammersPeerKind::Chat => PeerKind::Group,
        GrammersPeerKind::Channel => PeerKind::Channel,
    };
    Some(TelegramPeer { kind, id: dialog })
}

fn at(unix_seconds: i64) -> Timestamp {
    Timestamp::from_second(unix_seconds).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The view of a message grammers delivered.
pub(crate) fn view_of(message: &grammers_client::message::Message) -> Option<MessageView> {
    let chat = telegram_peer(message.peer_id())?;
    let sender = message.sender_id();
    Some(MessageView {
        id: i64::from(message.id()),
        chat,
        sender: sender
            .filter(|s| matches!(s.kind(), GrammersPeerKind::User))
            .and_then(|s| s.bare_id()),
        sender_is_bot: matches!(message.sender(), Some(Peer::User(user)) if user.is_bot()),
        text: message.text().to_owned(),
        reply_to: message.reply_to_message_id().map(i64::from),
        outgoing: message.outgoing(),
        date: at(message.date().as_second()),
    })
}

/// The inbound event a grammers update carries: new private messages, and a user stopping
/// (blocking) the bot.
pub(crate) fn event_of(update: &Update) -> Option<InboundEvent> {
    match update {
        Update::NewMessage(message) => inbound_event(&view_of(message)?),
        Update::Raw(raw) => match &raw.raw {
            tl::enums::Update::BotStopped(stopped) if stopped.stopped => Some(InboundEvent {
                id: format!("mtproto:stopped:{}:{}", stopped.user_id, stopped.qts),
                at: at(i64::from(stopped.date)),
                peer: TelegramPeer::user(stopped.user_id),
                kind: InboundKind::Blocked,
            }),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(text: &str) -> MessageView {
        MessageView {
            id: 3,
            chat: TelegramPeer::user(42),
            sender: Some(42),
            sender_is_bot: false,
            text: text.into(),
            reply_to: None,
            outgoing: false,
            date: Timestamp::from_second(1_800_000_000).unwrap(),
        }
    }

    #[test]
    fn opt_ins_and_opt_outs_are_commands() {
        let e = inbound_event(&view("/start spring_sale")).unwrap();
        assert_eq!(e.id, "mtproto:42:3");
        assert_eq!(e.peer, TelegramPeer::user(42));
        assert_eq!(e.at.as_second(), 1_800_000_000);
        assert_eq!(
            e.kind,
            InboundKind::Command {
                name: "start".into(),
                payload: "spring_sale".into()
            }
        );
        assert_eq!(
            inbound_event(&view("/STOP@mia_demo_bot")).unwrap().kind,
            InboundKind::Command {
                name: "stop".into(),
                payload: String::new()
            }
        );
        assert!(matches!(
            inbound_event(&view("/ is my favourite character"))
                .unwrap()
                .kind,
            InboundKind::Text { .. }
        ));
    }

    #[test]
    fn replies_keep_the_quoted_message() {
        let mut v = view("STOP");
        v.reply_to = Some(99);
        assert_eq!(
            inbound_event(&v).unwrap().kind,
            InboundKind::Text {
                text: "STOP".into(),
                reply_to: Some(99)
            }
        );
    }

    #[test]
    fn only_people_writing_to_us_privately_count() {
        let mut ours = view("/start");
        ours.outgoing = true;
        assert_eq!(inbound_event(&ours), None, "our own message");
        let mut group = view("/start");
        group.chat = TelegramPeer::group(-100);
        assert_eq!(inbound_event(&group), None, "a group");
        let mut channel = view("/start");
        channel.chat = TelegramPeer {
            kind: PeerKind::Channel,
            id: -1_001_234,
        };
        assert_eq!(inbound_event(&channel), None, "a channel");
        let mut bot = view("/start");
        bot.sender_is_bot = true;
        assert_eq!(inbound_event(&bot), None, "a bot");
        let mut someone_else = view("/start");
        someone_else.sender = Some(7);
        assert_eq!(inbound_event(&someone_else), None, "not the chat's user");
        assert_eq!(inbound_event(&view("   ")), None, "media without a caption");
    }

    #[test]
    fn a_user_stopping_the_bot_is_a_block() {
        use grammers_client::session::updates::State;
        use grammers_client::update::Raw;
        let stopped = |stopped: bool| {
            Update::Raw(Raw {
                raw: tl::enums::Update::BotStopped(tl::types::UpdateBotStopped {
                    user_id: 42,
                    date: 1_800_000_000,
                    stopped,
                    qts: 9,
                }),
                state: State {
                    date: 1_800_000_000,
                    seq: 0,
                    message_box: None,
                },
            })
        };
        let e = event_of(&stopped(true)).unwrap();
        assert_eq!(e.kind, InboundKind::Blocked);
        assert_eq!(e.peer, TelegramPeer::user(42));
        assert_eq!(e.id, "mtproto:stopped:42:9");
        assert_eq!(
            event_of(&stopped(false)),
            None,
            "restarting the bot is not a block"
        );
    }

    #[test]
    fn grammers_peer_ids_become_dialog_ids() {
        assert_eq!(
            telegram_peer(PeerId::user_unchecked(42)),
            Some(TelegramPeer::user(42))
        );
        assert_eq!(
            telegram_peer(PeerId::chat_unchecked(5)),
            Some(TelegramPeer::group(-5))
        );
        assert_eq!(
            telegram_peer(PeerId::channel_unchecked(1234)),
            Some(TelegramPeer {
                kind: PeerKind::Channel,
                id: -1_000_000_001_234
            })
        );
        assert_eq!(telegram_peer(PeerId::self_user()), None);
    }
}
