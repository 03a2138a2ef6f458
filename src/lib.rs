#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use mia_core::*;

/// The Claude client: retries, streaming, tool loop, costs and budgets (feature `claude`).
#[cfg(feature = "claude")]
pub use mia_claude as claude;

/// Experiments: splitter, frequentist and Bayesian statistics, bandits (feature `experiments`).
#[cfg(feature = "experiments")]
pub use mia_experiments as experiments;

/// Analytics: the event collector and campaign reports (feature `analytics`).
#[cfg(feature = "analytics")]
pub use mia_analytics as analytics;

/// Content and send guards (feature `safety`).
#[cfg(feature = "safety")]
pub use mia_safety as safety;

/// Shared rate limits in Redis (feature `redis`).
#[cfg(feature = "redis")]
pub use mia_redis as redis;

/// Durable stores through sqlx (features `sqlite`, `postgres`).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use mia_store as store;

/// Telegram transports: the simulated Telegram (feature `telegram`).
#[cfg(feature = "telegram")]
pub use mia_telegram as telegram;
