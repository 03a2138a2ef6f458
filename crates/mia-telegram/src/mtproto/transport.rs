//! [`MtprotoTransport`]: the `Transport` and `ChatAdmin` seams over MTProto.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use grammers_client::message::InputMessage;
use grammers_client::sender::{InvocationError, UpdatesConfiguration};
use grammers_client::session::Session;
use grammers_client::session::types::{PeerId, UpdateState};
use grammers_client::session::updates::{MessageBox, State, UpdatesLike};
use grammers_client::tl;
use jiff::{SignedDuration, Timestamp};
use mia_core::{
    Capabilities, ChatAdmin, Clock, EntityKind, FailureReason, IdempotencyKey, InboundEvent,
    InviteReport, Invitee, NewChat, OutboundMessage, SendOutcome, SystemClock, TelegramPeer,
    TextEntity, Transport,
};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::client::{MtprotoClient, MtprotoFailure, classify, random_id, rpc_text};
use super::updates::event_of;
use crate::error::TelegramError;
use crate::limits::{Pacer, whole_seconds};
use crate::username::UsernameCache;

/// The message id reported for a key Telegram says was already sent (`RANDOM_ID_DUPLICATE`)
/// when this process no longer knows the original id (it was sent before a crash). Telegram
/// never uses 0 for a message.
pub const UNKNOWN_MESSAGE_ID: i64 = 0;

/// Most updates handed out by one [`Transport::receive`].
const BATCH: usize = 100;
/// Updates buffered between the connection and `receive`; the stream waits when it is full.
const BUFFERED: usize = 1000;

#[derive(Default)]
struct SendState {
    pacer: Pacer,
    keys: HashMap<IdempotencyKey, i64>,
    order: VecDeque<IdempotencyKey>,
    /// A FloodWait freezes the whole account: concurrent senders wait together.
    frozen_until: Option<Timestamp>,
    /// Slow mode freezes one chat.
    chat_frozen: HashMap<i64, Timestamp>,
    /// Telegram answered `PEER_FLOOD` to a chat-administration call (an invitation): the
    /// account is limited for spam, so every later send fails the same way without asking
    /// Telegram, and the agent pauses the account. Kept for the life of the transport.
    spam_limited: bool,
}

impl SendState {
    fn frozen(&mut self, chat: i64, now: Timestamp) -> Option<SignedDuration> {
        self.chat_frozen.retain(|_, until| *until > now);
        let account = self.frozen_until.filter(|until| *until > now);
        let chat = self.chat_frozen.get(&chat).copied();
        account
            .into_iter()
            .chain(chat)
            .max()
            .map(|until| until.duration_since(now))
    }
}

/// One update from the stream: the event it carries (if any) and the update state to confirm
/// once the agent has received it.
struct Pumped {
    event: Option<InboundEvent>,
    state: State,
}

struct Inbound {
    rx: mpsc::Receiver<Pumped>,
    /// States of the last batch handed out, confirmed by the next `receive`.
    handed: Vec<State>,
    /// Why the stream stopped, once it did.
    stopped: Arc<Mutex<Option<String>>>,
}

/// Aborts the update stream when the last clone of the transport goes.
struct PumpGuard(AbortHandle);

impl Drop for PumpGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sends through MTProto (a bot or a user account, via grammers) and receives its updates.
///
/// - **Idempotency across crashes**: every send is a raw `messages.sendMessage` whose
///   `random_id` is derived from the idempotency key ([`random_id`](super::random_id)). Telegram
///   answers a resend of the same key `RANDOM_ID_DUPLICATE` instead of posting again, which this
///   transport reports as `Sent { duplicate: true }` — so a timeout or lost answer is a retryable
///   error (it declares [`Capabilities::idempotent_sends`]). A resend inside the process is
///   answered from memory with the original message id; after a crash the id is unknown
///   ([`UNKNOWN_MESSAGE_ID`]).
/// - **Limits**: sends over the configured limits are answered with a retry-after before
///   Telegram is asked. A FloodWait freezes the account (every send waits it out together), a
///   slow mode freezes its chat. `PEER_FLOOD` is [`FailureReason::SpamLimited`]: the agent
///   pauses the account and its campaigns; nothing here retries it or moves to another account.
/// - **Errors**: one pure function, [`classify`](super::classify), maps them;
///   `AUTH_KEY_DUPLICATED` is a configuration error that stops sending.
/// - **Inbound**: updates stream in the background; [`Transport::receive`] hands out what
///   arrived, and confirms a batch (stores its update state in the session) only with the next
///   call, after the agent handled it, so a crash redelivers rather than loses.
///
/// Cheap to clone; clones share limits, remembered keys and the update stream.
#[derive(Clone)]
pub struct MtprotoTransport {
    client: MtprotoClient,
    clock: Arc<dyn Clock>,
    sends: Arc<Mutex<SendState>>,
    inbound: Arc<tokio::sync::Mutex<Inbound>>,
    usernames: Arc<Mutex<UsernameCache>>,
    _pump: Arc<PumpGuard>,
}

impl std::fmt::Debug for MtprotoTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MtprotoTransport")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl MtprotoTransport {
    /// A transport on a signed-in connection, pacing by the system clock; starts streaming
    /// updates.
    ///
    /// # Errors
    /// [`TelegramError::Login`] when the session is not signed in;
    /// [`TelegramError::Config`] when another transport already streams this connection's
    /// updates.
    pub fn new(client: MtprotoClient) -> Result<Self, TelegramError> {
        if !client.is_authorized() {
            return Err(TelegramError::Login(
                "the session is not signed in: call sign_in_bot or request_login_code first".into(),
            ));
        }
        let updates = client.take_updates().ok_or_else(|| {
            TelegramError::Config(
                "this connection already has a transport streaming its updates".into(),
            )
        })?;
        let (tx, rx) = mpsc::channel(BUFFERED);
        let stopped = Arc::new(Mutex::new(None));
        let pump = tokio::task::spawn(pump(
            client.grammers().clone(),
            updates,
            client.config().catch_up,
            tx,
            Arc::clone(&stopped),
        ));
        Ok(Self {
            client,
            clock: Arc::new(SystemClock),
            sends: Arc::new(Mutex::new(SendState::default())),
            inbound: Arc::new(tokio::sync::Mutex::new(Inbound {
                rx,
                handed: Vec::new(),
                stopped,
            })),
            usernames: Arc::new(Mutex::new(UsernameCache::default())),
            _pump: Arc::new(PumpGuard(pump.abort_handle())),
        })
    }

    /// Caches resolved usernames this way instead of the default (found peers for a day,
    /// unknown names for an hour).
    #[must_use]
    pub fn with_username_cache(self, cache: UsernameCache) -> Self {
        *self.usernames() = cache;
        self
    }

    pub(super) fn usernames(&self) -> MutexGuard<'_, UsernameCache> {
        // Every mutation completes before anything can panic, so poison is harmless.
        self.usernames.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// Paces by `clock` instead of the system clock (share the agent's clock).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The connection.
    pub fn client(&self) -> &MtprotoClient {
        &self.client
    }

    fn lock(&self) -> MutexGuard<'_, SendState> {
        // Every mutation completes before anything can panic, so poison is harmless.
        self.sends.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn remember(&self, key: &IdempotencyKey, message_id: i64) {
        let mut state = self.lock();
        if state.keys.insert(key.clone(), message_id).is_none() {
            state.order.push_back(key.clone());
        }
        while state.order.len() > self.client.config().remembered_keys {
            if let Some(old) = state.order.pop_front() {
                state.keys.remove(&old);
            }
        }
    }

    /// Marks the account limited for spam (see `SendState::spam_limited`).
    pub(super) fn mark_spam_limited(&self) {
        tracing::warn!("mia.mtproto Telegram limited this account for spam (PEER_FLOOD)");
        self.lock().spam_limited = true;
    }

    pub(super) fn freeze(&self, chat: i64, after: Duration, per_chat: bool) {
        let until = self
            .clock
            .now()
            .checked_add(SignedDuration::try_from(after).unwrap_or(SignedDuration::MAX))
            .unwrap_or(Timestamp::MAX);
        let mut state = self.lock();
        if per_chat {
            state.chat_frozen.insert(chat, until);
        } else {
            state.frozen_until = Some(state.frozen_until.map_or(until, |u| u.max(until)));
        }
    }

    async fn admin<T, Fut>(
        &self,
        method: &'static str,
        peer: TelegramPeer,
        message_id: i64,
        call: impl FnOnce(grammers_client::Client, grammers_client::session::types::PeerRef, i32) -> Fut,
    ) -> mia_core::Result<Option<T>>
    where
        Fut: std::future::Future<Output = Result<T, InvocationError>> + Send + 'static,
        T: Send + 'static,
    {
        let not_found = || TelegramError::MessageNotFound {
            chat: peer.id,
            message_id,
        };
        let (Some(id), Ok(message)) = (
            PeerId::from_bot_api_dialog_id(peer.id),
            i32::try_from(message_id),
        ) else {
            return Err(not_found().into());
        };
        let peer_ref = self.client.peer_ref(id).await;
        match self
            .client
            .call(method, move |c| call(c, peer_ref, message))
            .await?
        {
            Ok(value) => Ok(Some(value)),
            Err(e) => match classify(&e) {
                MtprotoFailure::MessageNotFound => Err(not_found().into()),
                MtprotoFailure::NotModified => Ok(None),
                // A flood wait keeps its length, for the caller to wait it out.
                _ => Err(super::admin::flood_wait(method, &e)
                    .unwrap_or_else(|| self.client.error(method, &e))
                    .into()),
            },
        }
    }
}

/// The parts of `messages.sendMessage` that come from the message: the visible text and its
/// entities, the message replied to, the schedule.
#[derive(Debug, PartialEq)]
struct Prepared {
    text: String,
    entities: Option<Vec<tl::enums::MessageEntity>>,
    reply_to: Option<tl::enums::InputReplyTo>,
    schedule_date: Option<i32>,
}

/// Parses the markup (MTProto has no `parse_mode`: the client sends entities) and converts the
/// reply and the schedule. Pure; refusals are the outcomes Telegram would give.
fn prepare(message: &OutboundMessage, now: Timestamp) -> Result<Prepared, FailureReason> {
    let formatted = message
        .formatted()
        .map_err(|e| FailureReason::InvalidMessage(e.to_string()))?;
    let entities: Vec<tl::enums::MessageEntity> = formatted
        .entities
        .iter()
        .filter_map(|e| tl_entity(e).ok())
        .collect();
    if entities.len() != formatted.entities.len() {
        return Err(FailureReason::InvalidMessage(
            "ENTITY_BOUNDS_INVALID: the text is too long for its entities".into(),
        ));
    }
    let reply_to = match message.reply_to {
        None => None,
        Some(id) => {
            let reply_to_msg_id = i32::try_from(id).map_err(|_| {
                FailureReason::InvalidMessage(format!("REPLY_MESSAGE_ID_INVALID: {id}"))
            })?;
            Some(
                tl::types::InputReplyToMessage {
                    reply_to_msg_id,
                    top_msg_id: None,
                    reply_to_peer_id: None,
                    quote_text: None,
                    quote_entities: None,
                    quote_offset: None,
                    monoforum_peer_id: None,
                    todo_item_id: None,
                    poll_option: None,
                }
                .into(),
            )
        }
    };
    let schedule_date = match message.send_at.filter(|at| *at > now) {
        None => None,
        Some(at) => Some(i32::try_from(at.as_second()).map_err(|_| {
            FailureReason::InvalidMessage("SCHEDULE_DATE_INVALID: beyond 2038".into())
        })?),
    };
    Ok(Prepared {
        text: formatted.text,
        entities: (!entities.is_empty()).then_some(entities),
        reply_to,
        schedule_date,
    })
}

/// One entity as MTProto's `MessageEntity`; an error when an offset does not fit in an `int`.
fn tl_entity(entity: &TextEntity) -> Result<tl::enums::MessageEntity, std::num::TryFromIntError> {
    use tl::types as t;
    let offset = i32::try_from(entity.offset)?;
    let length = i32::try_from(entity.length)?;
    Ok(match &entity.kind {
        EntityKind::Bold => t::MessageEntityBold { offset, length }.into(),
        EntityKind::Italic => t::MessageEntityItalic { offset, length }.into(),
        EntityKind::Underline => t::MessageEntityUnderline { offset, length }.into(),
        EntityKind::Strikethrough => t::MessageEntityStrike { offset, length }.into(),
        EntityKind::Spoiler => t::MessageEntitySpoiler { offset, length }.into(),
        EntityKind::Code => t::MessageEntityCode { offset, length }.into(),
        EntityKind::Pre { language } => t::MessageEntityPre {
            offset,
            length,
            language: language.clone().unwrap_or_default(),
        }
        .into(),
        EntityKind::TextLink { url } => t::MessageEntityTextUrl {
            offset,
            length,
            url: url.clone(),
        }
        .into(),
        EntityKind::Blockquote => t::MessageEntityBlockquote {
            collapsed: false,
            offset,
            length,
        }
        .into(),
        EntityKind::CustomEmoji { id } => t::MessageEntityCustomEmoji {
            offset,
            length,
            document_id: *id,
        }
        .into(),
    })
}

/// Streams updates into `tx` until the connection closes.
async fn pump(
    client: grammers_client::Client,
    updates: mpsc::Receiver<UpdatesLike>,
    catch_up: bool,
    tx: mpsc::Sender<Pumped>,
    stopped: Arc<Mutex<Option<String>>>,
) {
    let stop = |why: String| {
        tracing::warn!(reason = %why, "mia.mtproto update stream stopped");
        *stopped.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
    };
    let mut stream = match client
        .stream_updates(updates, UpdatesConfiguration { catch_up })
        .await
    {
        Ok(stream) => stream,
        Err(e) => return stop(format!("cannot start: {e}")),
    };
    let mut backoff = Duration::from_secs(1);
    loop {
        match stream.next().await {
            Ok(update) => {
                backoff = Duration::from_secs(1);
                let pumped = Pumped {
                    event: event_of(&update),
                    state: update.state().clone(),
                };
                if tx.send(pumped).await.is_err() {
                    return;
                }
            }
            Err(InvocationError::Dropped(why)) => return stop(why.to_owned()),
            Err(e) => {
                tracing::warn!(error = %e, "mia.mtproto fetching updates failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
    }
}

/// The session update that confirms everything up to `state`.
fn confirmation(state: &State) -> Option<UpdateState> {
    Some(match state.message_box? {
        MessageBox::Common { pts } => UpdateState::Primary {
            pts,
            date: state.date,
            seq: state.seq,
        },
        MessageBox::Secondary { qts } => UpdateState::Secondary { qts },
        MessageBox::Channel { channel_id, pts } => UpdateState::Channel {
            id: channel_id,
            pts,
        },
    })
}

/// The id of the message a `messages.sendMessage` with `random_id` produced, from its answer.
fn sent_message_id(updates: &tl::enums::Updates, random_id: i64) -> Option<i64> {
    use tl::enums::{Message, Update, Updates};
    let from_list = |list: &[Update]| {
        let by_random_id = list.iter().find_map(|u| match u {
            Update::MessageId(m) if m.random_id == random_id => Some(i64::from(m.id)),
            _ => None,
        });
        by_random_id.or_else(|| {
            list.iter().find_map(|u| match u {
                Update::NewMessage(tl::types::UpdateNewMessage {
                    message: Message::Message(m),
                    ..
                })
                | Update::NewChannelMessage(tl::types::UpdateNewChannelMessage {
                    message: Message::Message(m),
                    ..
                })
                | Update::NewScheduledMessage(tl::types::UpdateNewScheduledMessage {
                    message: Message::Message(m),
                }) if m.out => Some(i64::from(m.id)),
                _ => None,
            })
        })
    };
    match updates {
        Updates::UpdateShortSentMessage(sent) => Some(i64::from(sent.id)),
        Updates::Updates(u) => from_list(&u.updates),
        Updates::Combined(u) => from_list(&u.updates),
        Updates::UpdateShort(u) => from_list(std::slice::from_ref(&u.update)),
        _ => None,
    }
}

#[async_trait]
impl Transport for MtprotoTransport {
    fn name(&self) -> &str {
        "mtproto"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            messages_per_second: Some(f64::from(self.client.config().limits().global_per_second)),
            max_text_chars: 4096,
            read_receipts: false,
            idempotent_sends: true,
            // `schedule_date`: Telegram holds the message until its time.
            scheduled_sends: true,
            formatting: true,
        }
    }

    async fn send(&self, message: &OutboundMessage) -> mia_core::Result<SendOutcome> {
        let now = self.clock.now();
        {
            let mut state = self.lock();
            if let Some(id) = state.keys.get(&message.key) {
                return Ok(SendOutcome::Sent {
                    message_id: *id,
                    duplicate: true,
                });
            }
            if state.spam_limited {
                return Ok(SendOutcome::Failed(FailureReason::SpamLimited));
            }
            if let Some(wait) = state.frozen(message.peer.id, now) {
                return Ok(SendOutcome::RetryAfter {
                    after: whole_seconds(wait),
                    reason: "frozen: Telegram asked this account (or chat) to wait".into(),
                });
            }
            let limits = self.client.config().limits();
            if let Some(wait) = state.pacer.wait(limits, message.peer, now) {
                return Ok(SendOutcome::RetryAfter {
                    after: whole_seconds(wait),
                    reason: "paced: the next send would exceed the configured Telegram limit"
                        .into(),
                });
            }
            state.pacer.record(message.peer, now);
        }
        let Some(peer) = PeerId::from_bot_api_dialog_id(message.peer.id) else {
            return Ok(SendOutcome::Failed(FailureReason::Other(format!(
                "{} is not a Telegram chat id",
                message.peer.id
            ))));
        };
        let request = match prepare(message, now) {
            Ok(prepared) => prepared,
            Err(reason) => return Ok(SendOutcome::Failed(reason)),
        };
        let peer = self.client.peer_ref(peer).await;
        let random_id = random_id(&message.key);
        let request = tl::functions::messages::SendMessage {
            no_webpage: false,
            silent: message.silent,
            background: false,
            clear_draft: false,
            noforwards: false,
            update_stickersets_order: false,
            invert_media: false,
            allow_paid_floodskip: false,
            peer: peer.into(),
            reply_to: request.reply_to,
            message: request.text,
            random_id,
            reply_markup: None,
            entities: request.entities,
            schedule_date: request.schedule_date,
            schedule_repeat_period: None,
            send_as: None,
            quick_reply_shortcut: None,
            effect: None,
            allow_paid_stars: None,
            suggested_post: None,
            rich_message: None,
        };
        let method = "messages.sendMessage";
        let answer = self
            .client
            .call(method, move |c| async move { c.invoke(&request).await })
            .await?;
        let error = match answer {
            Ok(updates) => {
                let message_id = sent_message_id(&updates, random_id).unwrap_or_else(|| {
                    tracing::warn!("mia.send Telegram's answer did not name the new message");
                    UNKNOWN_MESSAGE_ID
                });
                self.remember(&message.key, message_id);
                return Ok(SendOutcome::Sent {
                    message_id,
                    duplicate: false,
                });
            }
            Err(e) => e,
        };
        let text = rpc_text(&error);
        Ok(match classify(&error) {
            MtprotoFailure::RetryAfter { after, per_chat } => {
                self.freeze(message.peer.id, after, per_chat);
                SendOutcome::RetryAfter {
                    after,
                    reason: text,
                }
            }
            MtprotoFailure::Undeliverable(reason) => {
                if reason == FailureReason::SpamLimited {
                    tracing::warn!(error = %text, "mia.send Telegram limited this account for spam");
                }
                SendOutcome::Failed(reason)
            }
            MtprotoFailure::AlreadySent => {
                let message_id = self
                    .lock()
                    .keys
                    .get(&message.key)
                    .copied()
                    .unwrap_or(UNKNOWN_MESSAGE_ID);
                self.remember(&message.key, message_id);
                SendOutcome::Sent {
                    message_id,
                    duplicate: true,
                }
            }
            MtprotoFailure::MessageNotFound
            | MtprotoFailure::NotModified
            | MtprotoFailure::Other => SendOutcome::Failed(FailureReason::Other(text)),
            _ => return Err(self.client.error(method, &error).into()),
        })
    }

    async fn receive(&self) -> mia_core::Result<Vec<InboundEvent>> {
        let mut inbound = self.inbound.lock().await;
        // The agent handled the previous batch: its update state may now be stored.
        let session = self.client.session();
        for state in std::mem::take(&mut inbound.handed) {
            if let Some(confirm) = confirmation(&state)
                && let Err(e) = session.set_update_state(confirm).await
            {
                tracing::warn!(error = %e, "mia.mtproto could not record the update state");
            }
        }
        if let Err(e) = session.save() {
            // Not fatal: the updates are redelivered after a restart, and recognised by id.
            tracing::warn!(error = %e, "mia.mtproto could not save the session");
        }
        let mut events = Vec::new();
        while inbound.handed.len() < BATCH {
            match inbound.rx.try_recv() {
                Ok(pumped) => {
                    inbound.handed.push(pumped.state);
                    events.extend(pumped.event);
                }
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    if inbound.handed.is_empty() {
                        let why = inbound
                            .stopped
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .clone()
                            .unwrap_or_else(|| "the update stream ended".into());
                        return Err(self.client.connection_lost("updates", why).into());
                    }
                    break;
                }
            }
        }
        Ok(events)
    }
}

#[async_trait]
impl ChatAdmin for MtprotoTransport {
    async fn edit_message(
        &self,
        peer: TelegramPeer,
        message_id: i64,
        text: &str,
    ) -> mia_core::Result<()> {
        let text = text.to_owned();
        self.admin("messages.editMessage", peer, message_id, move |c, p, id| async move {
            c.edit_message(p, id, InputMessage::new().text(text)).await
        })
        .await
        .map(drop)
    }

    async fn delete_message(&self, peer: TelegramPeer, message_id: i64) -> mia_core::Result<()> {
        let deleted = self
            .admin(
                "messages.deleteMessages",
                peer,
                message_id,
                |c, p, id| async move { c.delete_messages(p, &[id]).await },
            )
            .await?;
        if deleted == Some(0) {
            return Err(TelegramError::MessageNotFound {
                chat: peer.id,
                message_id,
            }
            .into());
        }
        Ok(())
    }

    async fn pin_message(&self, peer: TelegramPeer, message_id: i64) -> mia_core::Result<()> {
        self.admin(
            "messages.updatePinnedMessage",
            peer,
            message_id,
            |c, p, id| async move { c.pin_message(p, id).await },
        )
        .await
        .map(drop)
    }

    async fn create_chat(&self, chat: &NewChat) -> mia_core::Result<TelegramPeer> {
        self.create(chat).await
    }

    async fn export_invite_link(
        &self,
        chat: TelegramPeer,
        member_limit: Option<u32>,
    ) -> mia_core::Result<String> {
        self.invite_link(chat, member_limit).await
    }

    async fn resolve_username(&self, username: &str) -> mia_core::Result<Option<TelegramPeer>> {
        self.resolve(username).await
    }

    async fn invite_members(
        &self,
        chat: TelegramPeer,
        invitees: &[Invitee],
    ) -> mia_core::Result<InviteReport> {
        self.invite(chat, invitees).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_new_message_id_is_read_from_every_answer_shape() {
        use tl::enums::{Update, Updates};
        let short = Updates::UpdateShortSentMessage(tl::types::UpdateShortSentMessage {
            out: true,
            id: 41,
            pts: 1,
            pts_count: 1,
            date: 0,
            media: None,
            entities: None,
            ttl_period: None,
        });
        assert_eq!(sent_message_id(&short, 5), Some(41));
        let ids = |random_id: i64| {
            Updates::Updates(tl::types::Updates {
                updates: vec![
                    Update::MessageId(tl::types::UpdateMessageId {
                        id: 7,
                        random_id: 1,
                    }),
                    Update::MessageId(tl::types::UpdateMessageId { id: 8, random_id }),
                ],
                users: Vec::new(),
                chats: Vec::new(),
                date: 0,
                seq: 0,
            })
        };
        assert_eq!(sent_message_id(&ids(99), 99), Some(8));
        assert_eq!(sent_message_id(&Updates::TooLong, 99), None);
    }

    #[test]
    fn markup_reply_and_schedule_become_the_request() {
        use mia_core::{ContactId, TextFormat};
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let base = OutboundMessage::new(
            IdempotencyKey::new("k"),
            ContactId::new("c"),
            TelegramPeer::user(5),
            "😀 <b>Sale</b> at <a href=\"https://shop.example\">the shop</a>",
        );
        let plain = prepare(&base, now).unwrap();
        assert_eq!(plain.text, base.text, "plain text is sent as it is");
        assert_eq!(
            (plain.entities, plain.reply_to, plain.schedule_date),
            (None, None, None)
        );
        let html = base
            .clone()
            .with_format(TextFormat::Html)
            .with_reply_to(41)
            .with_send_at(now + SignedDuration::from_hours(2));
        let prepared = prepare(&html, now).unwrap();
        assert_eq!(prepared.text, "😀 Sale at the shop");
        assert_eq!(
            prepared.entities,
            Some(vec![
                tl::types::MessageEntityBold {
                    offset: 3,
                    length: 4
                }
                .into(),
                tl::types::MessageEntityTextUrl {
                    offset: 11,
                    length: 8,
                    url: "https://shop.example".into()
                }
                .into(),
            ])
        );
        assert!(matches!(
            prepared.reply_to,
            Some(tl::enums::InputReplyTo::Message(
                tl::types::InputReplyToMessage {
                    reply_to_msg_id: 41,
                    ..
                }
            ))
        ));
        assert_eq!(prepared.schedule_date, Some(1_800_007_200));
        let due = base.clone().with_send_at(now);
        assert_eq!(
            prepare(&due, now).unwrap().schedule_date,
            None,
            "due now: sent now"
        );
        let mut bad = base.with_format(TextFormat::Html);
        bad.text = "<b>open".into();
        match prepare(&bad, now) {
            Err(FailureReason::InvalidMessage(why)) => {
                assert!(why.contains("can't parse entities"), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_flood_wait_freezes_the_account_and_slow_mode_one_chat() {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let mut state = SendState {
            frozen_until: Some(now + SignedDuration::from_secs(30)),
            ..SendState::default()
        };
        assert_eq!(state.frozen(1, now), Some(SignedDuration::from_secs(30)));
        assert_eq!(state.frozen(1, now + SignedDuration::from_secs(31)), None);
        state
            .chat_frozen
            .insert(-5, now + SignedDuration::from_secs(60));
        assert_eq!(state.frozen(-5, now), Some(SignedDuration::from_secs(60)));
        assert_eq!(state.frozen(2, now), Some(SignedDuration::from_secs(30)));
        assert_eq!(state.frozen(2, now + SignedDuration::from_secs(40)), None);
        assert_eq!(
            state.frozen(-5, now + SignedDuration::from_secs(40)),
            Some(SignedDuration::from_secs(20))
        );
    }

    #[test]
    fn confirming_a_state_stores_its_message_box() {
        let state = |message_box| State {
            date: 5,
            seq: 6,
            message_box,
        };
        assert!(matches!(
            confirmation(&state(Some(MessageBox::Common { pts: 9 }))),
            Some(UpdateState::Primary {
                pts: 9,
                date: 5,
                seq: 6
            })
        ));
        assert!(matches!(
            confirmation(&state(Some(MessageBox::Channel {
                channel_id: 3,
                pts: 4
            }))),
            Some(UpdateState::Channel { id: 3, pts: 4 })
        ));
        assert!(confirmation(&state(None)).is_none());
    }
}
