#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod bandit;
mod error;
mod experiment;
mod hash;
pub mod report;
mod splitter;
pub mod stats;

pub use error::{ExperimentError, Result};
pub use experiment::{
    Decision, Exclusion, Experiment, ExperimentAllocator, ExperimentState, Layer, Segment,
};
pub use hash::HashVersion;
pub use splitter::{Pick, Splitter};
