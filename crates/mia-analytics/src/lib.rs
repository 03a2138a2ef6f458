#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod collector;
mod report;

pub use collector::{Collector, Counts};
pub use report::{CampaignReport, VariantReport};
