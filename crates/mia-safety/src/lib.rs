#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod content;
mod error;
mod normalize;
pub mod rules;
mod send;

pub use content::{
    ContentGuard, ContentGuardBuilder, DEFAULT_RISKY_CLAIMS, SHORTENERS, TELEGRAM_MAX_LENGTH,
};
pub use error::SafetyError;
pub use normalize::normalize;
pub use send::{MAX_FREQUENCY_PERIOD, SendGuard, SendGuardBuilder};
