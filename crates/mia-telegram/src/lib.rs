#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod bot_api;
mod command;
#[cfg(feature = "testing")]
pub mod contract;
mod error;
mod limits;
#[cfg(feature = "mtproto")]
pub mod mtproto;
pub mod sim;
mod username;

pub use command::inbound_kind;
pub use error::{TelegramError, retry_after};
pub use limits::Limits;
pub use sim::{Behaviour, MethodLimit, Scripted, SentMessage, SimConfig, SimMethod, SimTelegram};
pub use username::{UsernameCache, normalize_username};
