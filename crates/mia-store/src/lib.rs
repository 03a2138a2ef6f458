#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod error;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use error::StoreError;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
