//! The content guard and the matchers behind its rules.

mod builder;
mod guard;
mod links;
mod lists;
mod phrases;

pub use builder::ContentGuardBuilder;
pub use guard::{ContentGuard, PiiAction, Screened, TELEGRAM_MAX_LENGTH};
pub use links::SHORTENERS;
pub use lists::{CREDENTIAL_REQUESTS, DEFAULT_RISKY_CLAIMS};

#[cfg(test)]
mod tests;
