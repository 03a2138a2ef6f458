//! [`BotApiTransport`]: the `Transport` and `ChatAdmin` seams over the Bot API.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use mia_core::{
    Capabilities, ChatAdmin, Clock, FailureReason, IdempotencyKey, InboundEvent, InviteReport,
    Invitee, NewChat, OutboundMessage, SendOutcome, SystemClock, TelegramPeer, Transport,
};

use super::client::{ApiFailure, BotApiClient, CallError, classify};
use super::config::BotApiConfig;
use super::updates::{ALLOWED_UPDATES, inbound_event};
use super::wire::{
    ChatInviteLink, CreateChatInviteLink, EditMessageText, GetUpdates, Message, MessageRef,
    ReplyParameters, SendMessage, Update, User,
};
use crate::error::TelegramError;
use crate::limits::{Pacer, whole_seconds};

#[derive(Default)]
struct SendState {
    pacer: Pacer,
    keys: HashMap<IdempotencyKey, i64>,
    order: VecDeque<IdempotencyKey>,
    migrations: HashMap<i64, i64>,
}

/// Sends through the Telegram Bot API and receives updates by polling.
///
/// - **Limits**: sends over the configured limits (30/s overall, 1/s per chat, 20/min per group
///   by default) are answered with [`SendOutcome::RetryAfter`] before Telegram is asked; a 429
///   from Telegram becomes a retry-after of its `retry_after`.
/// - **Idempotency**: a resend of a key this process already posted returns the first message
///   (`duplicate: true`). The Bot API itself cannot recognise a resend, so a send whose outcome
///   is unknown (a timeout after the request left, a server error) is an error that is not
///   retried ([`TelegramError::OutcomeUnknown`]): at most once, never twice.
/// - **Groups that became supergroups** (`migrate_to_chat_id`) are followed once and remembered;
///   [`BotApiTransport::migrations`] tells the host which contacts to update.
/// - **Inbound**: [`Transport::receive`] short-polls `getUpdates`; an update is confirmed only by
///   the next poll, after the agent handled the batch, so a crash redelivers rather than loses.
///   Only one process may poll a bot (Telegram answers a second one with 409 Conflict).
///
/// Cheap to clone; clones share limits, remembered keys and the update offset.
#[derive(Clone)]
pub struct BotApiTransport {
    client: BotApiClient,
    config: Arc<BotApiConfig>,
    clock: Arc<dyn Clock>,
    sends: Arc<Mutex<SendState>>,
    offset: Arc<tokio::sync::Mutex<Option<i64>>>,
}

impl std::fmt::Debug for BotApiTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BotApiTransport")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl BotApiTransport {
    /// A transport for `config`, pacing by the system clock. No request is made yet; call
    /// [`me`](Self::me) to check the token.
    ///
    /// # Errors
    /// [`TelegramError::Http`] when the HTTP client cannot be built (TLS roots).
    pub fn new(config: BotApiConfig) -> Result<Self, TelegramError> {
        Ok(Self {
            client: BotApiClient::new(&config)?,
            config: Arc::new(config),
            clock: Arc::new(SystemClock),
            sends: Arc::new(Mutex::new(SendState::default())),
            offset: Arc::new(tokio::sync::Mutex::new(None)),
        })
    }

    /// Paces by `clock` instead of the system clock (share the agent's clock).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn lock(&self) -> MutexGuard<'_, SendState> {
        // Every mutation completes before anything can panic, so poison is harmless.
        self.sends.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The bot itself (`getMe`): checks the token and the connection.
    ///
    /// # Errors
    /// [`TelegramError::Unauthorized`] for a refused token; [`TelegramError::Http`] when
    /// Telegram cannot be reached.
    pub async fn me(&self) -> Result<User, TelegramError> {
        self.client
            .call("getMe", &serde_json::json!({}), Duration::ZERO)
            .await
            .map_err(|e| e.into_error("getMe"))
    }

    /// Waits up to `wait` for updates (long polling; zero polls once) and returns the inbound
    /// events among them. Updates returned by the previous call are confirmed by this one.
    ///
    /// # Errors
    /// [`TelegramError::Conflict`] when another process polls this bot or a webhook is set;
    /// [`TelegramError::Http`] / [`TelegramError::Api`] (retryable) when Telegram cannot be
    /// reached.
    pub async fn poll(&self, wait: Duration) -> Result<Vec<InboundEvent>, TelegramError> {
        Ok(self.poll_from(wait).await?.1)
    }

    /// [`poll`](Self::poll), also returning the offset before it, for [`rewind`](Self::rewind).
    pub(crate) async fn poll_from(
        &self,
        wait: Duration,
    ) -> Result<(Option<i64>, Vec<InboundEvent>), TelegramError> {
        let mut offset = self.offset.lock().await;
        let before = *offset;
        let request = GetUpdates {
            offset: *offset,
            limit: 100,
            timeout: wait.as_secs(),
            allowed_updates: ALLOWED_UPDATES.iter().map(|s| (*s).to_owned()).collect(),
        };
        let updates: Vec<Update> = self
            .client
            .call("getUpdates", &request, wait)
            .await
            .map_err(|e| e.into_error("getUpdates"))?;
        if let Some(last) = updates.iter().map(|u| u.update_id).max() {
            *offset = Some(last + 1);
        }
        Ok((before, updates.iter().filter_map(inbound_event).collect()))
    }

    /// Forgets that the last batch was received, so the next poll fetches it again (the batch
    /// could not be handled; redelivered updates are recognised by their ids).
    pub(crate) async fn rewind(&self, to: Option<i64>) {
        *self.offset.lock().await = to;
    }

    /// An invite link to a group or channel the bot administers, for people who asked to join
    /// (`createChatInviteLink`). mia never adds anyone to a chat.
    ///
    /// # Errors
    /// [`TelegramError::Api`] when Telegram refuses (the bot is not an admin, ...).
    pub async fn create_invite_link(
        &self,
        chat: TelegramPeer,
        name: Option<&str>,
        member_limit: Option<u32>,
    ) -> Result<String, TelegramError> {
        let request = CreateChatInviteLink {
            chat_id: chat.id,
            name: name.map(str::to_owned),
            expire_date: None,
            member_limit,
        };
        let link: ChatInviteLink = self
            .client
            .call("createChatInviteLink", &request, Duration::ZERO)
            .await
            .map_err(|e| e.into_error("createChatInviteLink"))?;
        Ok(link.invite_link)
    }

    /// Groups that became supergroups while sending: `(old chat id, new chat id)`. Update the
    /// contacts' peers with them; the transport already redirects later sends.
    pub fn migrations(&self) -> Vec<(i64, i64)> {
        let mut out: Vec<_> = self
            .lock()
            .migrations
            .iter()
            .map(|(a, b)| (*a, *b))
            .collect();
        out.sort_unstable();
        out
    }

    fn remember(&self, key: &IdempotencyKey, message_id: i64) {
        let mut state = self.lock();
        if state.keys.insert(key.clone(), message_id).is_none() {
            state.order.push_back(key.clone());
        }
        while state.order.len() > self.config.remembered_keys {
            if let Some(old) = state.order.pop_front() {
                state.keys.remove(&old);
            }
        }
    }

    async fn admin_call(&self, method: &'static str, body: &MessageRef) -> mia_core::Result<()> {
        self.client
            .call::<_, serde_json::Value>(method, body, Duration::ZERO)
            .await
            .map(drop)
            .map_err(|e| not_found_or(e, method, body.chat_id, body.message_id).into())
    }
}

fn not_found_or(e: CallError, method: &'static str, chat: i64, message_id: i64) -> TelegramError {
    match &e {
        CallError::Api {
            code,
            description,
            parameters,
        } if classify(*code, description, parameters) == ApiFailure::MessageNotFound => {
            TelegramError::MessageNotFound { chat, message_id }
        }
        _ => e.into_error(method),
    }
}

#[async_trait]
impl Transport for BotApiTransport {
    fn name(&self) -> &str {
        "bot_api"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            messages_per_second: Some(f64::from(self.config.limits.global_per_second)),
            max_text_chars: 4096,
            read_receipts: false,
            // Keys are remembered in this process only; Telegram cannot recognise a resend.
            idempotent_sends: false,
            // sendMessage has no schedule: a message for later is refused, never sent early.
            scheduled_sends: false,
            formatting: true,
        }
    }

    async fn send(&self, message: &OutboundMessage) -> mia_core::Result<SendOutcome> {
        let now = self.clock.now();
        let mut chat_id = {
            let mut state = self.lock();
            if let Some(id) = state.keys.get(&message.key) {
                return Ok(SendOutcome::Sent {
                    message_id: *id,
                    duplicate: true,
                });
            }
            if message.is_scheduled_after(now) {
                return Err(TelegramError::Unsupported {
                    transport: "the Bot API",
                    what: "schedule a message (sendMessage has no send time; capabilities() \
                           reports scheduled_sends: false): send it when it is due, or use \
                           MTProto"
                        .into(),
                }
                .into());
            }
            let chat_id = state
                .migrations
                .get(&message.peer.id)
                .copied()
                .unwrap_or(message.peer.id);
            let peer = TelegramPeer {
                kind: message.peer.kind,
                id: chat_id,
            };
            if let Some(wait) = state.pacer.wait(&self.config.limits, peer, now) {
                return Ok(SendOutcome::RetryAfter {
                    after: whole_seconds(wait),
                    reason: "paced: the next send would exceed the configured Telegram limit"
                        .into(),
                });
            }
            state.pacer.record(peer, now);
            chat_id
        };
        // At most one migration is followed: a chat that moves twice is not a chat to chase.
        for _ in 0..2 {
            let request = SendMessage {
                chat_id,
                text: message.text.clone(),
                // Telegram parses the markup; text it cannot parse is refused with 400 "can't
                // parse entities", an invalid message.
                parse_mode: message.format.parse_mode().map(str::to_owned),
                disable_notification: message.silent,
                reply_parameters: message
                    .reply_to
                    .map(|message_id| ReplyParameters { message_id }),
                allow_paid_broadcast: self.config.allow_paid_broadcast
                    && message.campaign.is_some(),
            };
            let failure = match self
                .client
                .call::<_, Message>("sendMessage", &request, Duration::ZERO)
                .await
            {
                Ok(posted) => {
                    self.remember(&message.key, posted.message_id);
                    return Ok(SendOutcome::Sent {
                        message_id: posted.message_id,
                        duplicate: false,
                    });
                }
                Err(CallError::Transport {
                    message,
                    delivered_maybe: false,
                }) => {
                    return Err(TelegramError::Http {
                        method: "sendMessage",
                        message,
                        retryable: true,
                    }
                    .into());
                }
                Err(CallError::Transport { message, .. }) => {
                    return Err(TelegramError::OutcomeUnknown { cause: message }.into());
                }
                Err(CallError::Api {
                    code,
                    description,
                    parameters,
                }) => (code, description, parameters),
            };
            let (code, description, parameters) = failure;
            return Ok(match classify(code, &description, &parameters) {
                ApiFailure::RetryAfter(after) => SendOutcome::RetryAfter {
                    after,
                    reason: description,
                },
                ApiFailure::Migrated(to) => {
                    tracing::info!(
                        from = message.peer.id,
                        to,
                        "mia.send group became a supergroup"
                    );
                    self.lock().migrations.insert(message.peer.id, to);
                    chat_id = to;
                    continue;
                }
                ApiFailure::Undeliverable(reason) => SendOutcome::Failed(reason),
                ApiFailure::Unauthorized => {
                    return Err(TelegramError::Unauthorized { code }.into());
                }
                ApiFailure::Conflict => return Err(TelegramError::Conflict(description).into()),
                ApiFailure::Server => {
                    return Err(TelegramError::OutcomeUnknown {
                        cause: format!("Telegram answered {code} {description}"),
                    }
                    .into());
                }
                ApiFailure::MessageNotFound | ApiFailure::Other => {
                    SendOutcome::Failed(FailureReason::Other(description))
                }
            });
        }
        Ok(SendOutcome::Failed(FailureReason::Other(
            "the chat migrated more than once".into(),
        )))
    }

    async fn receive(&self) -> mia_core::Result<Vec<InboundEvent>> {
        Ok(self.poll(Duration::ZERO).await?)
    }
}

#[async_trait]
impl ChatAdmin for BotApiTransport {
    async fn edit_message(
        &self,
        peer: TelegramPeer,
        message_id: i64,
        text: &str,
    ) -> mia_core::Result<()> {
        let request = EditMessageText {
            chat_id: peer.id,
            message_id,
            text: text.to_owned(),
        };
        self.client
            .call::<_, serde_json::Value>("editMessageText", &request, Duration::ZERO)
            .await
            .map(drop)
            .map_err(|e| not_found_or(e, "editMessageText", peer.id, message_id).into())
    }

    async fn delete_message(&self, peer: TelegramPeer, message_id: i64) -> mia_core::Result<()> {
        let request = MessageRef {
            chat_id: peer.id,
            message_id,
            disable_notification: false,
        };
        self.admin_call("deleteMessage", &request).await
    }

    async fn pin_message(&self, peer: TelegramPeer, message_id: i64) -> mia_core::Result<()> {
        let request = MessageRef {
            chat_id: peer.id,
            message_id,
            disable_notification: true,
        };
        self.admin_call("pinChatMessage", &request).await
    }

    async fn create_chat(&self, chat: &NewChat) -> mia_core::Result<TelegramPeer> {
        let _ = chat;
        Err(TelegramError::Unsupported {
            transport: "the Bot API",
            what: "create groups or channels (bots cannot): create it with an MTProto user \
                   account or in the app, then make the bot an admin"
                .into(),
        }
        .into())
    }

    async fn export_invite_link(
        &self,
        chat: TelegramPeer,
        member_limit: Option<u32>,
    ) -> mia_core::Result<String> {
        if member_limit.is_some_and(|n| !(1..=99_999).contains(&n)) {
            return Err(mia_core::Error::invalid("member_limit must be 1 to 99999"));
        }
        Ok(self.create_invite_link(chat, None, member_limit).await?)
    }

    async fn resolve_username(&self, username: &str) -> mia_core::Result<Option<TelegramPeer>> {
        let _ = username;
        Err(TelegramError::Unsupported {
            transport: "the Bot API",
            what: "resolve usernames of people (a bot learns a person's id when they write to \
                   it): use an MTProto account"
                .into(),
        }
        .into())
    }

    async fn invite_members(
        &self,
        chat: TelegramPeer,
        invitees: &[Invitee],
    ) -> mia_core::Result<InviteReport> {
        let _ = (chat, invitees);
        Err(TelegramError::Unsupported {
            transport: "the Bot API",
            what: "add people to a chat (bots cannot): send those who asked to join an invite \
                   link from export_invite_link"
                .into(),
        }
        .into())
    }
}
