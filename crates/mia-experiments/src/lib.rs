#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod bandit;
mod error;
pub mod report;
mod splitter;
pub mod stats;

pub use error::{ExperimentError, Result};
pub use splitter::Splitter;
