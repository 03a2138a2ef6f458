#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod error;
pub mod sim;

pub use error::TelegramError;
pub use sim::{Behaviour, Scripted, SentMessage, SimConfig, SimLimits, SimTelegram};
