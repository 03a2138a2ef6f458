//! [`RedisRateLimiter`]: GCRA and FloodWait freezes in Redis, one Lua script per decision, so
//! every worker of a deployment shares one Telegram limit.

use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use mia_core::{Gcra, RateLimiter};
use redis::Script;
use redis::aio::ConnectionManager;

use crate::error::RedisError;

/// Takes a slot of KEYS[1] (GCRA theoretical arrival time) unless KEYS[2] (freeze) holds.
/// ARGV: now µs, interval µs, tolerance µs, "server" to use Redis's clock instead of ARGV[1].
/// Returns 0 when granted, else the wait in µs. Atomic: Redis runs a script without
/// interleaving other commands.
const ACQUIRE: &str = r"
local now = tonumber(ARGV[1])
if ARGV[4] == 'server' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local interval = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
local frozen = tonumber(redis.call('GET', KEYS[2]) or '0')
if frozen > now then
  return frozen - now
end
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then
  tat = now
end
if tat - now > tolerance then
  return tat - now - tolerance
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return 0
";

/// Extends KEYS[1] (freeze, µs since the epoch) to now + ARGV[1] µs unless it already runs
/// longer; ARGV[2] is the caller's now, ARGV[3] "server" to use Redis's clock instead.
const FREEZE: &str = r"
local now = tonumber(ARGV[2])
if ARGV[3] == 'server' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local untilv = now + tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if untilv > cur and untilv > now then
  redis.call('SET', KEYS[1], string.format('%d', untilv), 'PX', math.ceil((untilv - now) / 1000) + 1000)
end
return 0
";

/// Whose clock decides when a slot is free.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TimeSource {
    /// The Redis server's clock (`TIME`): workers on machines with skewed clocks still share
    /// one limit exactly. The default.
    #[default]
    Server,
    /// The `now` the agent passes (its [`Clock`](mia_core::Clock)): for simulations in virtual
    /// time, where every worker shares one simulated clock.
    Caller,
}

impl TimeSource {
    fn arg(self) -> &'static str {
        match self {
            TimeSource::Server => "server",
            TimeSource::Caller => "caller",
        }
    }
}

/// A GCRA rate limiter in Redis.
#[derive(Clone)]
pub struct RedisRateLimiter {
    connection: ConnectionManager,
    prefix: String,
    limit: Gcra,
    time: TimeSource,
    acquire: Script,
    freeze: Script,
}

impl std::fmt::Debug for RedisRateLimiter {
    // The URL may carry a password; it is not kept.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("prefix", &self.prefix)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl RedisRateLimiter {
    /// Connects to `url` (`redis://host:port/db`); keys are `<prefix>:gcra:<key>` and
    /// `<prefix>:freeze:<key>`, so deployments (and tests) sharing a server stay apart.
    ///
    /// # Errors
    /// [`mia_core::Error::Config`] for a bad URL, prefix or limit; a retryable
    /// [`mia_core::Error::Transport`] when Redis cannot be reached.
    pub async fn connect(url: &str, prefix: &str, limit: Gcra) -> mia_core::Result<Self> {
        limit.validate()?;
        if prefix.is_empty() || prefix.contains(char::is_whitespace) {
            return Err(RedisError::Config(format!(
                "prefix must be non-empty without spaces, got {prefix:?}"
            ))
            .into());
        }
        let client = redis::Client::open(url)
            // The client's message may repeat the URL, password included: keep it out.
            .map_err(|_| RedisError::Config("the Redis URL is not valid".into()))?;
        let connection =
            ConnectionManager::new(client)
                .await
                .map_err(|source| RedisError::Redis {
                    context: "connect",
                    source,
                })?;
        Ok(Self {
            connection,
            prefix: prefix.to_owned(),
            limit,
            time: TimeSource::default(),
            acquire: Script::new(ACQUIRE),
            freeze: Script::new(FREEZE),
        })
    }
}

impl RedisRateLimiter {
    /// Chooses whose clock decides (default: the server's).
    #[must_use]
    pub fn with_time_source(mut self, time: TimeSource) -> Self {
        self.time = time;
        self
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn try_acquire(&self, key: &str, now: Timestamp) -> mia_core::Result<Option<Duration>> {
        let mut connection = self.connection.clone();
        let wait: i64 = self
            .acquire
            .key(format!("{}:gcra:{key}", self.prefix))
            .key(format!("{}:freeze:{key}", self.prefix))
            .arg(now.as_microsecond())
            .arg(self.limit.interval_micros())
            .arg(self.limit.tolerance_micros())
            .arg(self.time.arg())
            .invoke_async(&mut connection)
            .await
            .map_err(|source| RedisError::Redis {
                context: "acquire a send slot",
                source,
            })?;
        Ok((wait > 0).then(|| Duration::from_micros(u64::try_from(wait).unwrap_or(0))))
    }

    async fn freeze(&self, key: &str, now: Timestamp, until: Timestamp) -> mia_core::Result<()> {
        let mut connection = self.connection.clone();
        let _: i64 = self
            .freeze
            .key(format!("{}:freeze:{key}", self.prefix))
            .arg(until.as_microsecond().saturating_sub(now.as_microsecond()))
            .arg(now.as_microsecond())
            .arg(self.time.arg())
            .invoke_async(&mut connection)
            .await
            .map_err(|source| RedisError::Redis {
                context: "freeze sends",
                source,
            })?;
        Ok(())
    }
}
