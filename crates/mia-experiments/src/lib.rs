#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod error;
mod splitter;

pub use error::ExperimentError;
pub use splitter::Splitter;
