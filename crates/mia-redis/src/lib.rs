#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod error;
mod limiter;

pub use error::RedisError;
pub use limiter::{RedisRateLimiter, TimeSource};
