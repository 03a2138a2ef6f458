#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod agent;
mod audience;
mod bandit;
mod boundary;
mod callbacks;
mod campaign;
mod config;
mod error;
mod handle;
mod scan;
mod strings;
mod wire;

use std::ffi::c_char;

pub use agent::{
    MiaAgent, mia_agent_free, mia_agent_new, mia_agent_set_event_callback,
    mia_agent_set_review_callback,
};
pub use audience::{mia_consent_record, mia_contact_import, mia_inbound_record};
pub use bandit::{
    MiaBandit, mia_bandit_assign, mia_bandit_free, mia_bandit_new, mia_bandit_reward,
    mia_bandit_stats,
};
pub use callbacks::{MiaEventCallback, MiaReviewCallback};
pub use campaign::{
    mia_agent_run, mia_campaign_create, mia_campaign_launch, mia_campaign_report,
    mia_review_approve, mia_review_edit, mia_review_list, mia_review_reject,
};
pub use error::{MiaStatus, mia_last_error, mia_status_name};
pub use scan::mia_scan_text;
pub use strings::mia_string_free;

/// The version of mia this library was built from (`"0.1.0"`), a static string; never free it.
#[unsafe(no_mangle)]
pub extern "C" fn mia_version() -> *const c_char {
    const VERSION: &std::ffi::CStr = match std::ffi::CStr::from_bytes_with_nul(
        concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes(),
    ) {
        Ok(v) => v,
        Err(_) => c"unknown",
    };
    boundary::string(|| VERSION.as_ptr())
}
