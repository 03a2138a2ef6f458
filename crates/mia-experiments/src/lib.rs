#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod bandit;
mod error;
mod experiment;
pub mod report;
mod splitter;
pub mod stats;

pub use error::{ExperimentError, Result};
pub use experiment::{
    Decision, Exclusion, Experiment, ExperimentAllocator, ExperimentState, Layer, Segment,
};
pub use splitter::Splitter;
