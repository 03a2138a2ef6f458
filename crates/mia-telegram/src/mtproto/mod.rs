//! Telegram's MTProto through grammers (feature `mtproto`): [`MtprotoTransport`] sends as a bot
//! or a user account, edits, deletes and pins, streams updates, and maps every MTProto error to
//! what it means for mia.
//!
//! ```no_run
//! # async fn run() -> Result<(), mia_telegram::TelegramError> {
//! use mia_telegram::bot_api::BotToken;
//! use mia_telegram::mtproto::{MtprotoClient, MtprotoConfig, MtprotoTransport, SessionFile};
//!
//! // The lease: a second process opening this file fails instead of getting the account
//! // revoked with AUTH_KEY_DUPLICATED.
//! let session = SessionFile::open("shop-bot.session")?;
//! let client = MtprotoClient::connect(MtprotoConfig::from_env()?, session).await?;
//! if !client.is_authorized() {
//!     client.sign_in_bot(&BotToken::from_env()?).await?;
//! }
//! let transport = MtprotoTransport::new(client)?;
//! # let _ = transport; Ok(()) }
//! ```
//!
//! - [`classify`] and [`classify_rpc`] map errors; [`random_id`] makes sends idempotent across
//!   crashes; [`inbound_event`] turns a [`MessageView`] into an opt-in, opt-out or reply.
//! - Every call into grammers runs in its own task, so a panic inside the library is
//!   [`TelegramError::ClientPanicked`](crate::TelegramError::ClientPanicked), not a crash.

mod admin;
mod client;
mod config;
mod login;
mod session;
mod transport;
mod updates;

pub use client::{MtprotoClient, MtprotoFailure, classify, classify_rpc, random_id};
pub use config::{ApiHash, MAX_FLOOD_SLEEP, MtprotoConfig};
pub use login::{Account, CodeRequest, PasswordRequest, SignIn};
pub use session::SessionFile;
pub use transport::{MtprotoTransport, UNKNOWN_MESSAGE_ID};
pub use updates::{MessageView, inbound_event};
