//! The grammers connection ([`MtprotoClient`]), the isolation of its calls, the deterministic
//! `random_id`, and the pure mapping of MTProto errors.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use grammers_client::Client;
use grammers_client::sender::{AutoSleep, ConnectionParams, InvocationError, RpcError, SenderPool};
use grammers_client::session::Session;
use grammers_client::session::types::{PeerId, PeerRef};
use grammers_client::session::updates::UpdatesLike;
use grammers_mtproto::transport;
use mia_core::{FailureReason, IdempotencyKey};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::config::MtprotoConfig;
use super::session::SessionFile;
use crate::error::TelegramError;

/// What an MTProto error means for mia, before the caller decides what it means for its call.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MtprotoFailure {
    /// Flood control (`FLOOD_WAIT_X`, `FLOOD_PREMIUM_WAIT_X`) or slow mode (`SLOWMODE_WAIT_X`,
    /// `per_chat`): wait this long.
    RetryAfter {
        /// How long Telegram asked to wait.
        after: Duration,
        /// True for slow mode, which limits one chat, not the account.
        per_chat: bool,
    },
    /// The message will never be delivered to this chat (`PEER_FLOOD` is
    /// [`FailureReason::SpamLimited`]: the account pauses; no retry, no other account).
    Undeliverable(FailureReason),
    /// `RANDOM_ID_DUPLICATE`: this `random_id` was posted before. The send succeeded earlier.
    AlreadySent,
    /// The message to edit, delete or pin does not exist (any more) or is not ours.
    MessageNotFound,
    /// `MESSAGE_NOT_MODIFIED`: the edit changes nothing.
    NotModified,
    /// `AUTH_KEY_DUPLICATED`: the session ran in two places at once and Telegram revoked it.
    /// A configuration error: stop.
    SessionDuplicated,
    /// The session is not signed in, or was revoked or deleted (401).
    Unauthorized,
    /// I/O, a dropped connection, a failed handshake, Telegram's internal errors: retry later.
    /// With `random_id`, resending a message whose answer was lost cannot post it twice.
    Transient,
    /// A fault on this side (session storage, an unreadable answer, an unknown data centre):
    /// retrying will not help.
    Local,
    /// Any other refusal of this request; the error's name says what.
    Other,
}

/// Maps an RPC error from Telegram to what it means. Pure: table-tested with the names
/// Telegram sends (grammers has already split `FLOOD_WAIT_31` into name and value).
pub fn classify_rpc(error: &RpcError) -> MtprotoFailure {
    use FailureReason as R;
    use MtprotoFailure::*;
    let wait = || Duration::from_secs(u64::from(error.value.unwrap_or(1).max(1)));
    match error.name.as_str() {
        "FLOOD_WAIT" | "FLOOD_PREMIUM_WAIT" | "FLOOD_TEST_PHONE_WAIT" | "TAKEOUT_INIT_DELAY" => {
            RetryAfter {
                after: wait(),
                per_chat: false,
            }
        }
        "SLOWMODE_WAIT" => RetryAfter {
            after: wait(),
            per_chat: true,
        },
        // The account is limited for spam (or frozen): pause it, never move the traffic.
        "PEER_FLOOD" | "USER_BANNED_IN_CHANNEL" | "FROZEN_METHOD_INVALID" => {
            Undeliverable(R::SpamLimited)
        }
        "USER_IS_BLOCKED" => Undeliverable(R::Blocked),
        "USER_PRIVACY_RESTRICTED"
        | "USER_NOT_MUTUAL_CONTACT"
        | "PRIVACY_PREMIUM_REQUIRED"
        | "USER_IS_BOT" => Undeliverable(R::PrivacyRestricted),
        // Not USER_DEACTIVATED: that one (401) is about our own account.
        "INPUT_USER_DEACTIVATED" => Undeliverable(R::Deactivated),
        "CHAT_WRITE_FORBIDDEN"
        | "CHAT_RESTRICTED"
        | "CHAT_SEND_PLAIN_FORBIDDEN"
        | "CHAT_ADMIN_REQUIRED"
        | "CHAT_GUEST_SEND_FORBIDDEN"
        | "CHANNEL_PRIVATE"
        | "YOU_BLOCKED_USER" => Undeliverable(R::ChatWriteForbidden),
        "PEER_ID_INVALID" | "CHAT_ID_INVALID" | "USER_ID_INVALID" | "CHANNEL_INVALID"
        | "INPUT_USER_INVALID" => Undeliverable(R::Other("chat not found".into())),
        "MESSAGE_TOO_LONG"
        | "MESSAGE_EMPTY"
        | "ENTITY_BOUNDS_INVALID"
        | "ENTITIES_TOO_LONG"
        | "ENTITY_MENTION_USER_INVALID" => Undeliverable(R::InvalidMessage(error.name.clone())),
        "RANDOM_ID_DUPLICATE" => AlreadySent,
        "MESSAGE_ID_INVALID"
        | "MESSAGE_DELETE_FORBIDDEN"
        | "MESSAGE_AUTHOR_REQUIRED"
        | "MESSAGE_EDIT_TIME_EXPIRED" => MessageNotFound,
        "MESSAGE_NOT_MODIFIED" => NotModified,
        "AUTH_KEY_DUPLICATED" => SessionDuplicated,
        _ => match error.code {
            401 => Unauthorized,
            // Flood control under a name this table does not know yet.
            420 => RetryAfter {
                after: wait(),
                per_chat: false,
            },
            // 303 (a data centre move outside sign-in), 5xx and negative codes (-503 Timeout):
            // Telegram's side; try again later.
            303 | 500..=599 | i32::MIN..=-1 => Transient,
            _ => Other,
        },
    }
}

/// Maps every kind of grammers failure to what it means; RPC errors go through
/// [`classify_rpc`].
pub fn classify(error: &InvocationError) -> MtprotoFailure {
    match error {
        InvocationError::Rpc(rpc) => classify_rpc(rpc),
        InvocationError::Io(_)
        | InvocationError::Dropped(_)
        | InvocationError::Authentication(_) => MtprotoFailure::Transient,
        // 404: the server does not know our authorization key (any more).
        InvocationError::Transport(transport::Error::BadStatus { status: 404 }) => {
            MtprotoFailure::Unauthorized
        }
        // 429 (too many connections from this address) and damaged packets: reconnect later.
        InvocationError::Transport(_) => MtprotoFailure::Transient,
        InvocationError::Session(_)
        | InvocationError::Deserialize(_)
        | InvocationError::InvalidDc => MtprotoFailure::Local,
        // `InvocationError` may grow; an unknown kind is not retried blindly.
        #[allow(unreachable_patterns)]
        _ => MtprotoFailure::Other,
    }
}

/// The `random_id` of the message sent for `key`: the first eight bytes (little endian) of
/// SHA-256 over a domain tag and the key.
///
/// Telegram remembers the `random_id` of recent sends per account and answers a second
/// `messages.sendMessage` with the same one `RANDOM_ID_DUPLICATE` instead of posting again, so a
/// resend after a crash, a timeout or a lost answer cannot post twice.
pub fn random_id(key: &IdempotencyKey) -> i64 {
    let digest = Sha256::new()
        .chain_update(b"mia.mtproto.random_id\0")
        .chain_update(key.as_str().as_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_le_bytes(first)
}

/// Runs `future` in its own task, so a panic inside the client library becomes
/// [`TelegramError::ClientPanicked`] instead of unwinding into the host.
pub(crate) async fn isolated<T, F>(during: &'static str, future: F) -> Result<T, TelegramError>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn(future).await {
        Ok(value) => Ok(value),
        Err(e) if e.is_panic() => {
            tracing::error!(during, "mia.mtproto the client library panicked; contained");
            Err(TelegramError::ClientPanicked { during })
        }
        Err(_) => Err(TelegramError::Mtproto {
            method: during,
            message: "the call was cancelled".into(),
            retryable: true,
        }),
    }
}

/// The text of an RPC error as Telegram sent it (`FLOOD_WAIT_31`), for reasons and messages.
pub(crate) fn rpc_text(error: &InvocationError) -> String {
    match error {
        InvocationError::Rpc(RpcError {
            name,
            value: Some(v),
            ..
        }) => format!("{name}_{v}"),
        InvocationError::Rpc(rpc) => rpc.name.clone(),
        other => other.to_string(),
    }
}

struct Inner {
    client: Client,
    session: Arc<SessionFile>,
    config: MtprotoConfig,
    updates: Mutex<Option<mpsc::Receiver<UpdatesLike>>>,
    runner_panicked: Arc<AtomicBool>,
    authorized: AtomicBool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Stops the connection task, which then lets go of the session and its lease.
        self.client.disconnect();
    }
}

/// A connection to Telegram over MTProto (grammers) on a leased [`SessionFile`].
///
/// [`connect`](Self::connect) opens it and tells whether the session is signed in; the
/// `sign_in_*` methods sign in as a bot or a user; [`MtprotoTransport::new`] sends on it.
/// Every call runs in its own task, so a panic in the client library is an error, not a crash,
/// and has a timeout. Cheap to clone; the connection closes when the last clone is dropped.
///
/// [`MtprotoTransport::new`]: super::MtprotoTransport::new
#[derive(Clone)]
pub struct MtprotoClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for MtprotoClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MtprotoClient")
            .field("config", &self.inner.config)
            .field("session", &self.inner.session)
            .field("authorized", &self.is_authorized())
            .finish()
    }
}

impl MtprotoClient {
    /// Connects with `session` (whose lease it keeps) and asks Telegram whether the session is
    /// signed in. grammers' own FloodWait sleep is off (or capped, see
    /// [`MtprotoConfig::with_flood_sleep_threshold`]) and I/O errors are not retried inside it:
    /// mia's scheduler owns every wait.
    ///
    /// # Errors
    /// [`TelegramError::Mtproto`] (retryable) when Telegram cannot be reached;
    /// [`TelegramError::AuthKeyDuplicated`] when Telegram revoked the session;
    /// [`TelegramError::ClientPanicked`] when the client library panicked while connecting.
    pub async fn connect(
        config: MtprotoConfig,
        session: SessionFile,
    ) -> Result<Self, TelegramError> {
        let session = Arc::new(session);
        session.set_server(config.server);
        let runner_panicked = Arc::new(AtomicBool::new(false));
        let (client, updates) = {
            let session = Arc::clone(&session);
            let flag = Arc::clone(&runner_panicked);
            let api_id = config.api_id;
            let threshold = config.flood_sleep_threshold;
            let use_ipv6 = matches!(config.server, Some(SocketAddr::V6(_)));
            isolated("connect", async move {
                let params = ConnectionParams {
                    use_ipv6,
                    app_version: format!("mia {}", env!("CARGO_PKG_VERSION")),
                    retry_policy: Box::new(AutoSleep {
                        tries: NonZeroU32::MIN,
                        threshold,
                        io_errors_as_flood_of: None,
                    }),
                    ..ConnectionParams::default()
                };
                let SenderPool {
                    runner,
                    handle,
                    updates,
                } = SenderPool::with_configuration(session, api_id, params);
                let client = Client::new(handle);
                let runner = tokio::task::spawn(runner.run());
                tokio::task::spawn(async move {
                    if let Err(e) = runner.await
                        && e.is_panic()
                    {
                        flag.store(true, Ordering::SeqCst);
                        tracing::error!("mia.mtproto the connection task panicked; reconnect");
                    }
                });
                (client, updates)
            })
            .await?
        };
        let this = Self {
            inner: Arc::new(Inner {
                client,
                session,
                config,
                updates: Mutex::new(Some(updates)),
                runner_panicked,
                authorized: AtomicBool::new(false),
            }),
        };
        let authorized = this
            .call("connect", |c| async move { c.is_authorized().await })
            .await?
            .map_err(|e| this.error("connect", &e))?;
        this.set_authorized(authorized);
        Ok(this)
    }

    /// Whether the session is signed in (as of connecting or the last sign-in).
    pub fn is_authorized(&self) -> bool {
        self.inner.authorized.load(Ordering::SeqCst)
    }

    /// The leased session.
    pub fn session(&self) -> &SessionFile {
        &self.inner.session
    }

    /// The configuration it was connected with.
    pub fn config(&self) -> &MtprotoConfig {
        &self.inner.config
    }

    pub(crate) fn set_authorized(&self, authorized: bool) {
        self.inner.authorized.store(authorized, Ordering::SeqCst);
    }

    /// The updates channel, once: the transport that streams updates takes it.
    pub(crate) fn take_updates(&self) -> Option<mpsc::Receiver<UpdatesLike>> {
        self.inner
            .updates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    pub(crate) fn grammers(&self) -> &Client {
        &self.inner.client
    }

    /// Runs `f` on the client in its own task, with the configured timeout. The outer error is
    /// mia's (timeout, panic); the inner one is grammers', for the caller to classify.
    pub(crate) async fn call<T, F, Fut>(
        &self,
        method: &'static str,
        f: F,
    ) -> Result<Result<T, InvocationError>, TelegramError>
    where
        F: FnOnce(Client) -> Fut,
        Fut: Future<Output = Result<T, InvocationError>> + Send + 'static,
        T: Send + 'static,
    {
        let limit = self.inner.config.request_timeout;
        let future = f(self.inner.client.clone());
        match isolated(method, tokio::time::timeout(limit, future)).await? {
            Ok(result) => Ok(result),
            Err(_) => Err(TelegramError::Mtproto {
                method,
                message: format!("no answer within {} ms", limit.as_millis()),
                retryable: true,
            }),
        }
    }

    /// The error for a failed call that is not a per-message outcome.
    pub(crate) fn error(&self, method: &'static str, error: &InvocationError) -> TelegramError {
        if matches!(error, InvocationError::Dropped(_))
            && self.inner.runner_panicked.load(Ordering::SeqCst)
        {
            return TelegramError::ClientPanicked {
                during: "the connection task",
            };
        }
        let message = rpc_text(error);
        match classify(error) {
            MtprotoFailure::SessionDuplicated => TelegramError::AuthKeyDuplicated,
            MtprotoFailure::Unauthorized => {
                self.set_authorized(false);
                TelegramError::Login(format!(
                    "{method}: the session is not signed in or was revoked ({message}); sign in again"
                ))
            }
            MtprotoFailure::Transient | MtprotoFailure::RetryAfter { .. } => {
                TelegramError::Mtproto {
                    method,
                    message,
                    retryable: true,
                }
            }
            _ => TelegramError::Mtproto {
                method,
                message,
                retryable: false,
            },
        }
    }

    /// The error for a connection that stopped for `why` (the update stream ended).
    pub(crate) fn connection_lost(&self, method: &'static str, why: String) -> TelegramError {
        if self.inner.runner_panicked.load(Ordering::SeqCst) {
            return TelegramError::ClientPanicked {
                during: "the connection task",
            };
        }
        TelegramError::Mtproto {
            method,
            message: why,
            retryable: true,
        }
    }

    /// The reference to `peer` (a Bot API style dialog id) with the access hash the session
    /// cached for it, or the bare id when none is cached (enough for bots and contacts).
    pub(crate) async fn peer_ref(&self, peer: PeerId) -> PeerRef {
        match self.inner.session.peer_ref(peer).await {
            Ok(Some(cached)) => cached,
            _ => peer.to_ambient_ref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use grammers_client::tl;

    use super::*;

    fn rpc(code: i32, message: &str) -> RpcError {
        RpcError::from(tl::types::RpcError {
            error_code: code,
            error_message: message.into(),
        })
    }

    #[test]
    fn the_errors_telegram_sends_map_to_outcomes() {
        use FailureReason as R;
        use MtprotoFailure::*;
        let secs = Duration::from_secs;
        let table: Vec<(i32, &str, MtprotoFailure)> = vec![
            (
                420,
                "FLOOD_WAIT_31",
                RetryAfter {
                    after: secs(31),
                    per_chat: false,
                },
            ),
            (
                420,
                "FLOOD_PREMIUM_WAIT_5",
                RetryAfter {
                    after: secs(5),
                    per_chat: false,
                },
            ),
            (
                420,
                "SLOWMODE_WAIT_60",
                RetryAfter {
                    after: secs(60),
                    per_chat: true,
                },
            ),
            (
                420,
                "FLOOD_WAIT_0",
                RetryAfter {
                    after: secs(1),
                    per_chat: false,
                },
            ),
            (
                420,
                "SOMETHING_NEW_WAIT_7",
                RetryAfter {
                    after: secs(7),
                    per_chat: false,
                },
            ),
            (400, "PEER_FLOOD", Undeliverable(R::SpamLimited)),
            (400, "USER_BANNED_IN_CHANNEL", Undeliverable(R::SpamLimited)),
            (403, "USER_IS_BLOCKED", Undeliverable(R::Blocked)),
            (
                403,
                "USER_PRIVACY_RESTRICTED",
                Undeliverable(R::PrivacyRestricted),
            ),
            (
                400,
                "USER_NOT_MUTUAL_CONTACT",
                Undeliverable(R::PrivacyRestricted),
            ),
            (400, "USER_IS_BOT", Undeliverable(R::PrivacyRestricted)),
            (400, "INPUT_USER_DEACTIVATED", Undeliverable(R::Deactivated)),
            (
                403,
                "CHAT_WRITE_FORBIDDEN",
                Undeliverable(R::ChatWriteForbidden),
            ),
            (400, "CHANNEL_PRIVATE", Undeliverable(R::ChatWriteForbidden)),
            (
                400,
                "PEER_ID_INVALID",
                Undeliverable(R::Other("chat not found".into())),
            ),
            (
                400,
                "MESSAGE_TOO_LONG",
                Undeliverable(R::InvalidMessage("MESSAGE_TOO_LONG".into())),
            ),
            (
                400,
                "MESSAGE_EMPTY",
                Undeliverable(R::InvalidMessage("MESSAGE_EMPTY".into())),
            ),
            (400, "RANDOM_ID_DUPLICATE", AlreadySent),
            (400, "MESSAGE_ID_INVALID", MessageNotFound),
            (403, "MESSAGE_DELETE_FORBIDDEN", MessageNotFound),
            (400, "MESSAGE_NOT_MODIFIED", NotModified),
            (406, "AUTH_KEY_DUPLICATED", SessionDuplicated),
            (401, "AUTH_KEY_UNREGISTERED", Unauthorized),
            (401, "SESSION_REVOKED", Unauthorized),
            (401, "USER_DEACTIVATED", Unauthorized),
            (500, "RPC_CALL_FAIL", Transient),
            (500, "INTERDC_2_CALL_ERROR", Transient),
            (-503, "Timeout", Transient),
            (303, "NETWORK_MIGRATE_4", Transient),
            (400, "SOMETHING_NEW", Other),
        ];
        for (code, message, want) in table {
            assert_eq!(classify_rpc(&rpc(code, message)), want, "{code} {message}");
        }
    }

    #[test]
    fn every_kind_of_invocation_error_is_mapped() {
        use MtprotoFailure::*;
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        let table: Vec<(InvocationError, MtprotoFailure)> = vec![
            (
                InvocationError::Rpc(rpc(420, "FLOOD_WAIT_3")),
                RetryAfter {
                    after: Duration::from_secs(3),
                    per_chat: false,
                },
            ),
            (InvocationError::Io(io), Transient),
            (
                InvocationError::Dropped("SenderPoolRunner was dropped"),
                Transient,
            ),
            (
                InvocationError::Transport(transport::Error::BadStatus { status: 429 }),
                Transient,
            ),
            (
                InvocationError::Transport(transport::Error::BadStatus { status: 404 }),
                Unauthorized,
            ),
            (
                InvocationError::Transport(transport::Error::BadCrc {
                    expected: 1,
                    got: 2,
                }),
                Transient,
            ),
            (
                InvocationError::Authentication(
                    grammers_mtproto::authentication::Error::InvalidPqSize { size: 3 },
                ),
                Transient,
            ),
            (InvocationError::Session("disk full".into()), Local),
            (InvocationError::InvalidDc, Local),
        ];
        for (error, want) in table {
            assert_eq!(classify(&error), want, "{error}");
            let retryable = matches!(want, Transient | RetryAfter { .. });
            let mia: mia_core::Error = TelegramError::Mtproto {
                method: "test",
                message: rpc_text(&error),
                retryable,
            }
            .into();
            assert_eq!(mia.is_retryable(), retryable, "{error}");
        }
        assert_eq!(
            rpc_text(&InvocationError::Rpc(rpc(420, "FLOOD_WAIT_31"))),
            "FLOOD_WAIT_31"
        );
    }

    #[test]
    fn random_ids_are_stable_and_distinct() {
        let key = IdempotencyKey::new("campaign-1:contact-7:0");
        // Pinned: changing the derivation would change what Telegram sees for keys already sent,
        // and a resend after an upgrade would post twice.
        assert_eq!(random_id(&key), 807_891_015_443_307_477);
        assert_eq!(
            random_id(&key),
            random_id(&IdempotencyKey::new("campaign-1:contact-7:0"))
        );
        assert_ne!(
            random_id(&key),
            random_id(&IdempotencyKey::new("campaign-1:contact-7:1"))
        );
        let ids: HashSet<i64> = (0..200_000)
            .map(|i| random_id(&IdempotencyKey::new(format!("campaign:{}:{i}", i % 7))))
            .collect();
        assert_eq!(ids.len(), 200_000, "distinct keys give distinct random ids");
    }

    #[tokio::test]
    async fn a_panic_in_the_library_is_an_error_not_a_crash() {
        let err = isolated("bot sign-in", async {
            if std::hint::black_box(true) {
                panic!("grammers: API returned SignUpRequired");
            }
            1
        })
        .await
        .unwrap_err();
        assert!(
            matches!(
                err,
                TelegramError::ClientPanicked {
                    during: "bot sign-in"
                }
            ),
            "{err}"
        );
        assert!(!err.is_retryable());
        assert_eq!(isolated("ok", async { 7 }).await.unwrap(), 7);
    }
}
