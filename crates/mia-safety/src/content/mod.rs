//! The content guard and the matchers behind its rules.

mod guard;
mod links;
mod phrases;
mod pii;

pub use guard::{ContentGuard, ContentGuardBuilder, DEFAULT_RISKY_CLAIMS, TELEGRAM_MAX_LENGTH};
pub use links::SHORTENERS;
