//! From Bot API updates to mia's inbound events, for long polling and webhooks alike.

use jiff::Timestamp;
use mia_core::{InboundEvent, InboundKind, TelegramPeer};

use super::wire::Update;
use crate::error::TelegramError;

/// The update kinds mia asks for: messages (commands, replies) and the bot's own membership in
/// private chats (blocked / unblocked).
pub const ALLOWED_UPDATES: &[&str] = &["message", "my_chat_member"];

/// The inbound event an update carries, if it is one mia acts on.
///
/// Only private chats count: opt-ins, opt-outs and replies come from people, never from a group
/// on a member's behalf. A `/command@OtherBot` is kept as a command; the `@bot` suffix is
/// dropped. The event id is `bot:<update_id>`, stable across redeliveries, so a redelivered
/// update is recognised downstream.
pub fn inbound_event(update: &Update) -> Option<InboundEvent> {
    let id = format!("bot:{}", update.update_id);
    if let Some(m) = &update.message {
        if m.chat.kind != "private" || m.from.as_ref().is_some_and(|u| u.is_bot) {
            return None;
        }
        let text = m.text.as_deref()?;
        return Some(InboundEvent {
            id,
            at: at(m.date),
            peer: TelegramPeer::user(m.chat.id),
            kind: crate::command::inbound_kind(
                text,
                m.reply_to_message.as_ref().map(|r| r.message_id),
            ),
        });
    }
    if let Some(change) = &update.my_chat_member
        && change.chat.kind == "private"
        && change.new_chat_member.status == "kicked"
    {
        return Some(InboundEvent {
            id,
            at: at(change.date),
            peer: TelegramPeer::user(change.chat.id),
            kind: InboundKind::Blocked,
        });
    }
    None
}

/// Parses the body of a webhook request into the inbound event it carries, if any.
///
/// # Errors
/// [`TelegramError::Api`] with code 400 when the body is not an `Update`.
pub fn parse_webhook(body: &[u8]) -> Result<Option<InboundEvent>, TelegramError> {
    let update: Update = serde_json::from_slice(body).map_err(|e| TelegramError::Api {
        method: "webhook",
        code: 400,
        description: format!("not a Bot API update: {e}"),
        retryable: false,
    })?;
    Ok(inbound_event(&update))
}

/// Checks the `X-Telegram-Bot-Api-Secret-Token` header of a webhook request against the secret
/// given to `setWebhook`, in time independent of where they differ.
pub fn webhook_secret_matches(expected: &str, header: Option<&str>) -> bool {
    let Some(got) = header else {
        return false;
    };
    let (a, b) = (expected.as_bytes(), got.as_bytes());
    let mut diff = u8::from(a.len() != b.len());
    for (i, x) in a.iter().enumerate() {
        diff |= x ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

fn at(unix_seconds: i64) -> Timestamp {
    Timestamp::from_second(unix_seconds).unwrap_or(Timestamp::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(json: serde_json::Value) -> Option<InboundEvent> {
        inbound_event(&serde_json::from_value(json).unwrap())
    }

    fn message(chat_type: &str, text: &str) -> serde_json::Value {
        serde_json::json!({"update_id": 7, "message": {"message_id": 3, "date": 1_800_000_000,
            "chat": {"id": 42, "type": chat_type}, "from": {"id": 42, "is_bot": false, "first_name": "A"},
            "text": text}})
    }

    #[test]
    fn commands_with_payloads_and_bot_suffixes() {
        let e = update(message("private", "/start spring_sale")).unwrap();
        assert_eq!(e.id, "bot:7");
        assert_eq!(e.peer, TelegramPeer::user(42));
        assert_eq!(e.at.as_second(), 1_800_000_000);
        assert_eq!(
            e.kind,
            InboundKind::Command {
                name: "start".into(),
                payload: "spring_sale".into()
            }
        );
        let e = update(message("private", "/STOP@mia_demo_bot")).unwrap();
        assert_eq!(
            e.kind,
            InboundKind::Command {
                name: "stop".into(),
                payload: String::new()
            }
        );
        // A path is text, not a command.
        let e = update(message("private", "/ is my favourite character")).unwrap();
        assert!(matches!(e.kind, InboundKind::Text { .. }));
    }

    #[test]
    fn replies_keep_the_quoted_message() {
        let mut json = message("private", "STOP");
        json["message"]["reply_to_message"] = serde_json::json!({"message_id": 99, "date": 1,
            "chat": {"id": 42, "type": "private"}});
        let e = update(json).unwrap();
        assert_eq!(
            e.kind,
            InboundKind::Text {
                text: "STOP".into(),
                reply_to: Some(99)
            }
        );
    }

    #[test]
    fn groups_bots_and_other_updates_are_not_inbound() {
        assert!(update(message("group", "/start")).is_none());
        assert!(update(message("supergroup", "hello")).is_none());
        let mut from_bot = message("private", "hi");
        from_bot["message"]["from"]["is_bot"] = true.into();
        assert!(update(from_bot).is_none());
        assert!(
            update(serde_json::json!({"update_id": 1, "callback_query": {"id": "x"}})).is_none()
        );
    }

    #[test]
    fn a_private_kick_is_a_block() {
        let e = update(serde_json::json!({"update_id": 9, "my_chat_member": {
            "chat": {"id": 42, "type": "private"}, "from": {"id": 42, "first_name": "A"},
            "date": 1_800_000_100, "old_chat_member": {"status": "member"},
            "new_chat_member": {"status": "kicked"}}}))
        .unwrap();
        assert_eq!(e.kind, InboundKind::Blocked);
    }

    #[test]
    fn webhook_bodies_and_secrets() {
        let body = serde_json::to_vec(&message("private", "/start")).unwrap();
        assert!(parse_webhook(&body).unwrap().is_some());
        let err = parse_webhook(b"<html>").unwrap_err();
        assert!(err.to_string().contains("not a Bot API update"), "{err}");
        assert!(webhook_secret_matches("s3cret", Some("s3cret")));
        assert!(!webhook_secret_matches("s3cret", Some("s3cret!")));
        assert!(!webhook_secret_matches("s3cret", Some("s3cre")));
        assert!(!webhook_secret_matches("s3cret", None));
    }
}
