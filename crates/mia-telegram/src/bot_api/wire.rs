//! Serde types of the Telegram Bot API (<https://core.telegram.org/bots/api>): the subset mia
//! speaks. Unknown fields are ignored, so new Bot API versions do not break parsing.

use serde::{Deserialize, Serialize};

/// Every Bot API answer: `{"ok": true, "result": ...}` or
/// `{"ok": false, "error_code": 429, "description": "...", "parameters": {...}}`.
#[derive(Clone, Debug, Deserialize)]
pub struct ApiResponse<T> {
    /// Whether the call succeeded.
    pub ok: bool,
    /// The result, when `ok`.
    pub result: Option<T>,
    /// Telegram's error code (mirrors the HTTP status), when not `ok`.
    pub error_code: Option<i64>,
    /// A human-readable description of the error.
    pub description: Option<String>,
    /// Machine-readable hints: how long to wait, where a group moved.
    pub parameters: Option<ResponseParameters>,
}

/// `ResponseParameters`: why a request failed and what to do about it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseParameters {
    /// The group became a supergroup with this id; resend there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migrate_to_chat_id: Option<i64>,
    /// Flood control: seconds to wait before repeating the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// `User`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Telegram's user id.
    pub id: i64,
    /// Whether this is a bot.
    #[serde(default)]
    pub is_bot: bool,
    /// First name.
    #[serde(default)]
    pub first_name: String,
    /// `@username` without the `@`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// IETF language tag of the user's client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language_code: Option<String>,
}

/// `Chat`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chat {
    /// Telegram's chat id (negative for groups and channels).
    pub id: i64,
    /// `private`, `group`, `supergroup` or `channel`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Title of a group or channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// `MessageEntity` (only what command detection needs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageEntity {
    /// `bot_command`, `url`, `mention`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// Offset in UTF-16 code units.
    pub offset: usize,
    /// Length in UTF-16 code units.
    pub length: usize,
}

/// `Message`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Unique inside its chat.
    pub message_id: i64,
    /// Unix time in seconds.
    pub date: i64,
    /// Where it was posted.
    pub chat: Chat,
    /// Who wrote it (absent in channels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<User>,
    /// The text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Commands, links, mentions in the text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entities: Option<Vec<MessageEntity>>,
    /// The message this one replies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to_message: Option<Box<Message>>,
}

/// `ChatMember` (only its status).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMember {
    /// `creator`, `administrator`, `member`, `restricted`, `left` or `kicked`.
    pub status: String,
}

/// `ChatMemberUpdated`: the bot's own membership changed (in a private chat: blocked or
/// unblocked by the user).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatMemberUpdated {
    /// The chat.
    pub chat: Chat,
    /// Who changed it.
    pub from: User,
    /// Unix time in seconds.
    pub date: i64,
    /// Before.
    pub old_chat_member: ChatMember,
    /// After.
    pub new_chat_member: ChatMember,
}

/// `Update`: one incoming change. Kinds mia does not use are kept out by `allowed_updates`,
/// and skipped if they arrive anyway.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Update {
    /// Increasing id; confirming an update means asking for `offset = update_id + 1`.
    pub update_id: i64,
    /// A new message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
    /// The bot's own membership changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub my_chat_member: Option<ChatMemberUpdated>,
}

/// `ReplyParameters`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyParameters {
    /// The message to reply to.
    pub message_id: i64,
}

/// `sendMessage` parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SendMessage {
    /// The chat.
    pub chat_id: i64,
    /// The text, 1–4096 characters after entity parsing.
    pub text: String,
    /// `HTML` or `MarkdownV2`, if the text is formatted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parse_mode: Option<String>,
    /// Deliver silently.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disable_notification: bool,
    /// Quote a message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_parameters: Option<ReplyParameters>,
    /// Pay Telegram Stars to exceed the free 30 messages per second (up to 1000).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_paid_broadcast: bool,
}

/// `editMessageText` parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditMessageText {
    /// The chat.
    pub chat_id: i64,
    /// The message.
    pub message_id: i64,
    /// The new text.
    pub text: String,
}

/// `deleteMessage` and `pinChatMessage` parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRef {
    /// The chat.
    pub chat_id: i64,
    /// The message.
    pub message_id: i64,
    /// For `pinChatMessage`: pin without notifying members.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disable_notification: bool,
}

/// `getUpdates` parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetUpdates {
    /// First update to return; confirms every earlier one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    /// At most this many (1–100).
    pub limit: u32,
    /// Long-polling timeout in seconds (0 = short poll).
    pub timeout: u64,
    /// Which update kinds to receive.
    pub allowed_updates: Vec<String>,
}

/// `createChatInviteLink` parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateChatInviteLink {
    /// The chat.
    pub chat_id: i64,
    /// A name for the link, shown to admins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Unix time when the link expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_date: Option<i64>,
    /// How many people may join through it (1–99999).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_limit: Option<u32>,
}

/// `ChatInviteLink` (the part mia uses).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatInviteLink {
    /// The link.
    pub invite_link: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_real_update_and_ignores_unknown_fields() {
        let json = r#"{"update_id":10000,"message":{"message_id":1365,"from":{"id":1111111,
            "is_bot":false,"first_name":"Ana","username":"ana","language_code":"pt-BR",
            "is_premium":true},"chat":{"id":1111111,"first_name":"Ana","username":"ana",
            "type":"private"},"date":1441645532,"text":"/start spring_sale",
            "entities":[{"offset":0,"length":6,"type":"bot_command"}]}}"#;
        let u: Update = serde_json::from_str(json).unwrap();
        let m = u.message.unwrap();
        assert_eq!(m.chat.kind, "private");
        assert_eq!(m.text.as_deref(), Some("/start spring_sale"));
        assert_eq!(m.entities.unwrap()[0].kind, "bot_command");
    }

    #[test]
    fn error_envelope_with_parameters() {
        let json = r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#;
        let r: ApiResponse<Message> = serde_json::from_str(json).unwrap();
        assert!(!r.ok);
        assert_eq!(r.error_code, Some(429));
        assert_eq!(r.parameters.unwrap().retry_after, Some(7));
    }

    #[test]
    fn send_message_leaves_defaults_out() {
        let body = serde_json::to_value(SendMessage {
            chat_id: 5,
            text: "hi".into(),
            parse_mode: None,
            disable_notification: false,
            reply_parameters: None,
            allow_paid_broadcast: false,
        })
        .unwrap();
        assert_eq!(body, serde_json::json!({"chat_id": 5, "text": "hi"}));
    }
}
