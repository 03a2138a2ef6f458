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

pub use command::inbound_kind;
pub use error::TelegramError;
pub use limits::Limits;
pub use sim::{Behaviour, Scripted, SentMessage, SimConfig, SimTelegram};
