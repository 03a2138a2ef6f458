#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod batching;
pub mod cohort;
mod collector;
mod error;
pub mod funnel;
pub mod html;
mod report;
pub mod roi;
pub mod segment;
pub mod window;

pub use batching::{BatchingSink, BatchingSinkBuilder, WhenFull};
pub use collector::{Collector, Counts};
pub use error::{AnalyticsError, Result};
pub use html::HtmlReport;
pub use report::{CampaignReport, VariantReport};
