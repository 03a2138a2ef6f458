//! [`FakeBotApi`]: a local HTTP server that speaks the Bot API wire format, for tests, examples
//! and `mia bot run` without a token. Feature `testing`.
//!
//! It behaves like Telegram where mia depends on it: a bot may only write to users who wrote to
//! it first (403 "bot can't initiate conversation"), blocked and deactivated users answer 403,
//! unknown chats 400, groups can migrate to supergroups (`migrate_to_chat_id`), updates are
//! confirmed by the next `getUpdates` offset, and failures can be scripted per chat (429 with
//! `retry_after`, any error, a 502 page, a slow answer after posting). Long polls return at once.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mia_core::{TextEntity, TextFormat};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::config::BotToken;

/// The token the fake accepts (well-formed, not a real bot).
pub const FAKE_TOKEN: &str = "1234567:FAKEfakeFAKEfakeFAKEfakeFAKEfake_-12";

/// A scripted answer to the next `sendMessage` to a chat.
#[derive(Clone, Debug, PartialEq)]
pub enum FakeFailure {
    /// 429 "Too Many Requests: retry after N" with `parameters.retry_after = N`.
    TooManyRequests(u64),
    /// Any Bot API error.
    Error {
        /// `error_code` and HTTP status.
        code: u16,
        /// `description`.
        description: String,
    },
    /// A proxy's HTML 502 page (not JSON).
    BadGateway,
    /// Posts the message, then answers only after this long (so the client times out).
    SlowAfterPosting(Duration),
}

/// A message the fake accepted: its ground truth.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FakeMessage {
    /// The chat.
    pub chat_id: i64,
    /// Its id in the chat.
    pub message_id: i64,
    /// The text as the reader sees it (the `parse_mode` markup parsed and removed).
    pub text: String,
    /// Its formatting, from the markup.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entities: Vec<TextEntity>,
    /// The message it replies to (`reply_parameters`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<i64>,
    /// Sent without notification.
    pub silent: bool,
    /// Sent with `allow_paid_broadcast`.
    pub paid_broadcast: bool,
    /// Edited, deleted, pinned.
    pub edited: bool,
    /// Deleted.
    pub deleted: bool,
    /// Pinned.
    pub pinned: bool,
}

#[derive(Default)]
struct State {
    next_update: i64,
    updates: VecDeque<Value>,
    next_message_id: i64,
    started: HashSet<i64>,
    blocked: HashSet<i64>,
    deactivated: HashSet<i64>,
    groups: HashSet<i64>,
    migrated: HashMap<i64, i64>,
    scripted: HashMap<i64, VecDeque<FakeFailure>>,
    messages: Vec<FakeMessage>,
    calls: HashMap<String, usize>,
    clock: i64,
}

/// A fake Bot API server on a loopback port. Dropping it stops the server.
pub struct FakeBotApi {
    server: MockServer,
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for FakeBotApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeBotApi")
            .field("url", &self.server.uri())
            .finish_non_exhaustive()
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl FakeBotApi {
    /// Starts a fake on 127.0.0.1 that accepts [`FAKE_TOKEN`].
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(State {
            next_update: 1,
            next_message_id: 1,
            clock: 1_800_000_000,
            ..State::default()
        }));
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::any())
            .respond_with(Responder(state.clone()))
            .mount(&server)
            .await;
        Self { server, state }
    }

    /// The base URL to give [`BotApiConfig::with_api_base`](super::BotApiConfig::with_api_base).
    pub fn url(&self) -> String {
        self.server.uri()
    }

    /// The token it accepts.
    pub fn token(&self) -> BotToken {
        // FAKE_TOKEN is well-formed; a unit test checks it with `BotToken::new`.
        BotToken::trusted(FAKE_TOKEN)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// A user writes `text` to the bot in their private chat (which lets the bot answer them).
    /// Returns the update id.
    pub fn user_writes(&self, user: i64, text: &str) -> i64 {
        self.user_replies(user, text, None)
    }

    /// A user writes `text`, quoting the bot's message `reply_to`.
    pub fn user_replies(&self, user: i64, text: &str, reply_to: Option<i64>) -> i64 {
        let mut s = self.lock();
        s.started.insert(user);
        s.blocked.remove(&user);
        s.clock += 1;
        let message_id = s.next_message_id;
        s.next_message_id += 1;
        let chat = json!({"id": user, "type": "private", "first_name": "Test"});
        let mut message = json!({"message_id": message_id, "date": s.clock, "chat": chat,
            "from": {"id": user, "is_bot": false, "first_name": "Test", "language_code": "en"},
            "text": text});
        if text.starts_with('/') {
            let len = text.split_whitespace().next().map_or(0, str::len);
            message["entities"] = json!([{"type": "bot_command", "offset": 0, "length": len}]);
        }
        if let Some(id) = reply_to {
            message["reply_to_message"] = json!({"message_id": id, "date": s.clock, "chat": chat});
        }
        push_update(&mut s, "message", message)
    }

    /// A user blocks the bot: a `my_chat_member` update, and sends to them answer 403.
    pub fn user_blocks(&self, user: i64) -> i64 {
        let mut s = self.lock();
        s.blocked.insert(user);
        s.clock += 1;
        let change = json!({"chat": {"id": user, "type": "private"},
            "from": {"id": user, "is_bot": false, "first_name": "Test"}, "date": s.clock,
            "old_chat_member": {"status": "member", "user": {"id": 1, "is_bot": true, "first_name": "bot"}},
            "new_chat_member": {"status": "kicked", "user": {"id": 1, "is_bot": true, "first_name": "bot"}}});
        push_update(&mut s, "my_chat_member", change)
    }

    /// The user deletes their account.
    pub fn deactivate(&self, user: i64) {
        self.lock().deactivated.insert(user);
    }

    /// A group or channel (negative id) the bot belongs to.
    pub fn add_group(&self, chat: i64) {
        self.lock().groups.insert(chat);
    }

    /// The group becomes the supergroup `to`: sends to `from` answer 400 with
    /// `migrate_to_chat_id`.
    pub fn migrate_group(&self, from: i64, to: i64) {
        let mut s = self.lock();
        s.groups.remove(&from);
        s.groups.insert(to);
        s.migrated.insert(from, to);
    }

    /// Scripts answers for the next sends to `chat`, one per send.
    pub fn fail_next(&self, chat: i64, failures: impl IntoIterator<Item = FakeFailure>) {
        self.lock()
            .scripted
            .entry(chat)
            .or_default()
            .extend(failures);
    }

    /// Every message the fake accepted, in order.
    pub fn messages(&self) -> Vec<FakeMessage> {
        self.lock().messages.clone()
    }

    /// The texts posted to `chat`, in order (deleted ones included).
    pub fn texts_to(&self, chat: i64) -> Vec<String> {
        self.lock()
            .messages
            .iter()
            .filter(|m| m.chat_id == chat)
            .map(|m| m.text.clone())
            .collect()
    }

    /// How many times `method` was called.
    pub fn calls(&self, method: &str) -> usize {
        self.lock().calls.get(method).copied().unwrap_or(0)
    }

    /// Updates not yet confirmed by a `getUpdates` offset.
    pub fn unconfirmed_updates(&self) -> usize {
        self.lock().updates.len()
    }
}

fn push_update(s: &mut State, kind: &str, payload: Value) -> i64 {
    let id = s.next_update;
    s.next_update += 1;
    let mut update = json!({"update_id": id});
    update[kind] = payload;
    s.updates.push_back(update);
    id
}

struct Responder(Arc<Mutex<State>>);

fn ok(result: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"ok": true, "result": result}))
}

fn error(code: u16, description: &str) -> ResponseTemplate {
    ResponseTemplate::new(code)
        .set_body_json(json!({"ok": false, "error_code": code, "description": description}))
}

fn error_with(code: u16, description: &str, parameters: Value) -> ResponseTemplate {
    ResponseTemplate::new(code).set_body_json(json!({"ok": false, "error_code": code,
        "description": description, "parameters": parameters}))
}

impl Respond for Responder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let path = request.url.path();
        let Some((token, method)) = path
            .strip_prefix("/bot")
            .and_then(|rest| rest.split_once('/'))
        else {
            return error(404, "Not Found");
        };
        if token != FAKE_TOKEN {
            return error(401, "Unauthorized");
        }
        let body: Value = if request.body.is_empty() {
            json!({})
        } else {
            match serde_json::from_slice(&request.body) {
                Ok(v) => v,
                Err(_) => return error(400, "Bad Request: invalid JSON body"),
            }
        };
        let mut s = lock(&self.0);
        *s.calls.entry(method.to_owned()).or_default() += 1;
        match method {
            "getMe" => ok(
                json!({"id": 1_234_567, "is_bot": true, "first_name": "mia fake",
                "username": "mia_fake_bot"}),
            ),
            "getUpdates" => get_updates(&mut s, &body),
            "sendMessage" => send_message(&mut s, &body),
            "editMessageText" | "deleteMessage" | "pinChatMessage" => admin(&mut s, method, &body),
            "createChatInviteLink" => {
                let chat = body["chat_id"].as_i64().unwrap_or(0);
                if s.groups.contains(&chat) {
                    ok(
                        json!({"invite_link": format!("https://t.me/+fake{}", chat.unsigned_abs()),
                        "creator": {"id": 1_234_567, "is_bot": true, "first_name": "mia fake"},
                        "creates_join_request": false, "is_primary": false, "is_revoked": false}),
                    )
                } else {
                    error(400, "Bad Request: chat not found")
                }
            }
            _ => error(404, "Not Found"),
        }
    }
}

fn get_updates(s: &mut State, body: &Value) -> ResponseTemplate {
    if let Some(offset) = body["offset"].as_i64() {
        while s
            .updates
            .front()
            .is_some_and(|u| u["update_id"].as_i64().unwrap_or(0) < offset)
        {
            s.updates.pop_front();
        }
    }
    let limit = body["limit"].as_u64().unwrap_or(100).clamp(1, 100) as usize;
    ok(Value::Array(
        s.updates.iter().take(limit).cloned().collect(),
    ))
}

fn send_message(s: &mut State, body: &Value) -> ResponseTemplate {
    let Some(chat) = body["chat_id"].as_i64() else {
        return error(400, "Bad Request: chat_id is empty");
    };
    let text = body["text"].as_str().unwrap_or("");
    if let Some(to) = s.migrated.get(&chat) {
        return error_with(
            400,
            "Bad Request: group chat was upgraded to a supergroup chat",
            json!({"migrate_to_chat_id": to}),
        );
    }
    let mut slow = None;
    if let Some(failure) = s.scripted.get_mut(&chat).and_then(VecDeque::pop_front) {
        match failure {
            FakeFailure::TooManyRequests(secs) => {
                return error_with(
                    429,
                    &format!("Too Many Requests: retry after {secs}"),
                    json!({"retry_after": secs}),
                );
            }
            FakeFailure::Error { code, description } => return error(code, &description),
            FakeFailure::BadGateway => {
                return ResponseTemplate::new(502)
                    .set_body_raw("<html><body>502 Bad Gateway</body></html>", "text/html");
            }
            FakeFailure::SlowAfterPosting(delay) => slow = Some(delay),
        }
    }
    if chat > 0 {
        if s.deactivated.contains(&chat) {
            return error(403, "Forbidden: user is deactivated");
        }
        if s.blocked.contains(&chat) {
            return error(403, "Forbidden: bot was blocked by the user");
        }
        if !s.started.contains(&chat) {
            return error(
                403,
                "Forbidden: bot can't initiate conversation with a user",
            );
        }
    } else if !s.groups.contains(&chat) {
        return error(400, "Bad Request: chat not found");
    }
    let format = match body["parse_mode"].as_str() {
        None => TextFormat::Plain,
        Some("HTML") => TextFormat::Html,
        Some("MarkdownV2") => TextFormat::MarkdownV2,
        Some(other) => {
            return error(
                400,
                &format!("Bad Request: unsupported parse_mode \"{other}\""),
            );
        }
    };
    // Telegram parses the markup first, then counts what the reader will see.
    let formatted = match format.parse(text) {
        Ok(formatted) => formatted,
        Err(e) => return error(400, &format!("Bad Request: {e}")),
    };
    let chars = formatted.text.chars().count();
    if chars == 0 {
        return error(400, "Bad Request: message text is empty");
    }
    if chars > 4096 {
        return error(400, "Bad Request: message is too long");
    }
    let reply_to = body["reply_parameters"]["message_id"].as_i64();
    if let Some(id) = reply_to
        && !s
            .messages
            .iter()
            .any(|m| m.chat_id == chat && m.message_id == id && !m.deleted)
    {
        return error(400, "Bad Request: message to be replied not found");
    }
    let message_id = s.next_message_id;
    s.next_message_id += 1;
    s.clock += 1;
    s.messages.push(FakeMessage {
        chat_id: chat,
        message_id,
        text: formatted.text.clone(),
        entities: formatted.entities,
        reply_to,
        silent: body["disable_notification"].as_bool().unwrap_or(false),
        paid_broadcast: body["allow_paid_broadcast"].as_bool().unwrap_or(false),
        edited: false,
        deleted: false,
        pinned: false,
    });
    let kind = if chat > 0 { "private" } else { "supergroup" };
    let answer = ok(json!({"message_id": message_id, "date": s.clock,
        "chat": {"id": chat, "type": kind}, "text": formatted.text}));
    match slow {
        Some(delay) => answer.set_delay(delay),
        None => answer,
    }
}

fn admin(s: &mut State, method: &str, body: &Value) -> ResponseTemplate {
    let chat = body["chat_id"].as_i64().unwrap_or(0);
    let id = body["message_id"].as_i64().unwrap_or(0);
    let Some(m) = s
        .messages
        .iter_mut()
        .find(|m| m.chat_id == chat && m.message_id == id && !m.deleted)
    else {
        let what = match method {
            "editMessageText" => "edit",
            "deleteMessage" => "delete",
            _ => "pin",
        };
        return error(400, &format!("Bad Request: message to {what} not found"));
    };
    match method {
        "editMessageText" => {
            m.text = body["text"].as_str().unwrap_or("").to_owned();
            m.edited = true;
            ok(
                json!({"message_id": id, "date": 0, "chat": {"id": chat, "type": "private"},
                "text": m.text}),
            )
        }
        "deleteMessage" => {
            m.deleted = true;
            ok(json!(true))
        }
        _ => {
            m.pinned = true;
            ok(json!(true))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fake_token_is_well_formed() {
        assert!(BotToken::new(FAKE_TOKEN).is_ok());
    }
}
