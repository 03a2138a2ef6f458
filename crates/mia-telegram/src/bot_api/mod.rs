//! The Telegram Bot API over HTTPS (reqwest, rustls): [`BotApiTransport`] sends, edits,
//! deletes and pins, polls updates, and maps every Bot API error to what it means for mia.
//!
//! ```no_run
//! # async fn run() -> Result<(), mia_telegram::TelegramError> {
//! use mia_telegram::bot_api::{BotApiConfig, BotApiTransport, BotToken};
//!
//! let transport = BotApiTransport::new(BotApiConfig::new(BotToken::from_env()?))?;
//! let me = transport.me().await?; // checks the token
//! println!("running as @{}", me.username.unwrap_or_default());
//! # Ok(()) }
//! ```
//!
//! With the `testing` feature, `FakeBotApi` is a local server that speaks the same wire
//! format, so everything above runs without a token.

mod client;
mod config;
#[cfg(feature = "testing")]
mod fake;
mod runner;
mod transport;
mod updates;
pub mod wire;

pub use client::{ApiFailure, classify};
pub use config::{BotApiConfig, BotToken, DEFAULT_API_BASE};
#[cfg(feature = "testing")]
pub use fake::{FAKE_TOKEN, FakeBotApi, FakeFailure, FakeMessage};
pub use runner::{BotRunner, Handled};
pub use transport::BotApiTransport;
pub use updates::{ALLOWED_UPDATES, inbound_event, parse_webhook, webhook_secret_matches};
