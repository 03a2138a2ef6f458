#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod compliance;
mod content;
mod domain;
mod error;
pub mod inbound;
mod normalize;
mod pii;
pub mod rules;
pub mod scan;
mod send;

pub use content::{
    CREDENTIAL_REQUESTS, ContentGuard, ContentGuardBuilder, DEFAULT_RISKY_CLAIMS, PiiAction,
    SHORTENERS, Screened, TELEGRAM_MAX_LENGTH,
};
pub use error::SafetyError;
pub use normalize::{Normalized, Normalizer, normalize};
pub use pii::{
    DEFAULT_PHONE_REGIONS, Finding, PiiKind, Redaction, Scanner, ScannerBuilder, redact,
};
pub use send::{MAX_FREQUENCY_PERIOD, SendGuard, SendGuardBuilder};
