//! Fixtures shared by the root integration tests.
#![allow(dead_code)]

use jiff::Timestamp;
use mia::{ConsentRecord, Contact, Evidence, Purpose};

/// A marketing grant for each contact, given through `/start` at `at`, with the contact's id
/// as the evidence reference.
pub(crate) fn marketing_grants<'a>(
    contacts: impl IntoIterator<Item = &'a Contact>,
    at: Timestamp,
) -> Vec<ConsentRecord> {
    contacts
        .into_iter()
        .map(|c| {
            ConsentRecord::grant(
                c.id.clone(),
                Purpose::marketing(),
                Evidence::new("telegram_start", format!("test {}", c.id)),
                "v1",
                at,
            )
        })
        .collect()
}
