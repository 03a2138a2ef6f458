//! The JSON configuration of `mia_agent_new`, and the wiring it describes.

use std::sync::Arc;

use jiff::Timestamp;
use mia::analytics::Collector;
use mia::experiments::Splitter;
use mia::experiments::bandit::{Bandit, BanditConfig, Policy};
use mia::safety::{ContentGuard, SendGuard};
use mia::store::SqliteStore;
use mia::telegram::{SimConfig, SimTelegram};
use mia::{
    Agent, Allocator, EventSink, MemoryStore, Store, TemplateProvider, Transport, VirtualClock,
};
use serde::Deserialize;

use crate::callbacks::ForwardingSink;
use crate::error::{FfiError, FfiResult};

/// The store value that selects the in-memory store.
pub(crate) const MEMORY_STORE: &str = ":memory:";

/// `mia_agent_new`'s configuration. Every key is optional; unknown keys are an error.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AgentConfig {
    /// `":memory:"` (the default) or the path of a SQLite file, created if missing.
    store: Option<String>,
    /// Seeds the simulated Telegram, the agent's draws and the split (default 0).
    seed: Option<u64>,
    /// Where virtual time starts, RFC 3339 (default: the wall clock at creation).
    start: Option<Timestamp>,
    /// Domains links may point to; links elsewhere escalate to review (default none).
    allow_domains: Option<Vec<String>>,
    /// Phrases the content guard denies (default none).
    blacklist: Option<Vec<String>>,
    /// `"split"` (the default), `"thompson"`, `"kl-ucb"` or `"epsilon-greedy"`.
    allocator: Option<String>,
    /// The privacy notice version stamped on `/start` opt-ins (default `"1"`).
    notice_version: Option<String>,
    /// The text of the one confirmation sent after a STOP.
    stop_confirmation: Option<String>,
    /// Only `"offline"`: the template copywriter (no network, no key).
    llm: Option<String>,
    /// Only `"simulated"`: the simulated Telegram, in virtual time.
    transport: Option<String>,
    /// The zones a contact of unknown zone is judged on, all at once (default `["UTC"]`).
    zones_when_unknown: Option<Vec<String>>,
}

/// What an agent handle owns besides its runtime.
pub(crate) struct Parts {
    pub(crate) agent: Agent,
    pub(crate) sink: Arc<ForwardingSink>,
}

impl AgentConfig {
    /// Checks the values that need no I/O, so a bad configuration fails before a runtime or
    /// a database exists.
    pub(crate) fn validate(&self) -> FfiResult<()> {
        match self.llm.as_deref() {
            None | Some("offline") => {}
            Some(other) => {
                return Err(FfiError::invalid(format!(
                    "llm {other:?}: this build offers only \"offline\""
                )));
            }
        }
        match self.transport.as_deref() {
            None | Some("simulated") => {}
            Some(other) => {
                return Err(FfiError::invalid(format!(
                    "transport {other:?}: this build offers only \"simulated\""
                )));
            }
        }
        if self.store.as_deref().is_some_and(|s| s.trim().is_empty()) {
            return Err(FfiError::invalid(
                "store must be \":memory:\" or the path of a SQLite file",
            ));
        }
        self.allocator()?;
        Ok(())
    }

    fn allocator(&self) -> FfiResult<Arc<dyn Allocator>> {
        let seed = self.seed.unwrap_or(0);
        Ok(match self.allocator.as_deref() {
            None | Some("split") => Arc::new(Splitter::new().with_salt(format!("ffi-{seed}"))),
            Some(name) => {
                let policy = Policy::from_name(name).map_err(|e| {
                    FfiError::invalid(format!(
                        "allocator: {e} (or \"split\" for a deterministic split)"
                    ))
                })?;
                Arc::new(
                    Bandit::new(BanditConfig {
                        policy,
                        seed,
                        ..BanditConfig::default()
                    })
                    .map_err(|e| FfiError::invalid(format!("allocator: {e}")))?,
                )
            }
        })
    }

    /// Builds the agent: the store, the offline copywriter, the simulated Telegram, the
    /// content and send guards (always on), the allocator and a virtual clock.
    pub(crate) async fn build(&self) -> FfiResult<Parts> {
        let seed = self.seed.unwrap_or(0);
        let store: Arc<dyn Store> = match self.store.as_deref().unwrap_or(MEMORY_STORE) {
            MEMORY_STORE => Arc::new(MemoryStore::new()),
            path => Arc::new(SqliteStore::open(path).await?),
        };
        let clock = Arc::new(VirtualClock::starting_at(
            self.start.unwrap_or_else(Timestamp::now),
        ));
        let telegram = SimTelegram::new(SimConfig::seeded(seed), clock.clone())
            .map_err(|e| FfiError::invalid(format!("simulated Telegram: {e}")))?;
        let transport: Arc<dyn Transport> = Arc::new(telegram);
        let collector: Arc<dyn EventSink> = Arc::new(Collector::new(store.clone()));
        let sink = Arc::new(ForwardingSink::new(collector));
        let content = ContentGuard::builder()
            .allow_domains(self.allow_domains.iter().flatten().cloned())
            .blacklist(self.blacklist.iter().flatten().cloned())
            .build()
            .map_err(|e| FfiError::invalid(format!("content guard: {e}")))?;
        let mut sends = SendGuard::builder();
        if let Some(zones) = &self.zones_when_unknown {
            sends = sends.zones_when_unknown(zones.iter().cloned());
        }
        let sends = sends
            .build()
            .map_err(|e| FfiError::invalid(format!("send guard: {e}")))?;
        let mut builder = Agent::builder_shared(Arc::new(TemplateProvider::new()), transport)
            .shared_store(store)
            .shared_event_sink(sink.clone())
            .content_policy(content)
            .send_policy(sends)
            .allocator(self.allocator()?)
            .clock(clock)
            .seed(seed);
        if let Some(version) = &self.notice_version {
            builder = builder.notice_version(version.clone());
        }
        if let Some(text) = &self.stop_confirmation {
            builder = builder.stop_confirmation(text.clone());
        }
        if let Some(zones) = &self.zones_when_unknown {
            builder = builder.zones_when_unknown(zones.iter().cloned());
        }
        Ok(Parts {
            agent: builder.build()?,
            sink,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::MiaStatus;

    fn parse(json: &str) -> Result<AgentConfig, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let err = parse(r#"{"seed": 1, "colour": "blue"}"#)
            .err()
            .unwrap_or_default();
        assert!(err.contains("unknown field `colour`"), "{err}");
    }

    #[test]
    fn only_the_offline_llm_and_the_simulator_are_offered() {
        for json in [
            r#"{"llm": "claude"}"#,
            r#"{"transport": "bot_api"}"#,
            r#"{"allocator": "coin"}"#,
            r#"{"store": " "}"#,
        ] {
            let config = parse(json).unwrap_or_default();
            let status = config.validate().err().map(|e| e.status);
            assert_eq!(status, Some(MiaStatus::MIA_INVALID_INPUT), "{json}");
        }
        let config =
            parse(r#"{"llm": "offline", "transport": "simulated", "allocator": "thompson"}"#)
                .unwrap_or_default();
        assert!(config.validate().is_ok());
    }

    #[test]
    fn zones_for_contacts_of_unknown_zone_reach_the_guards() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let good = parse(r#"{"zones_when_unknown": ["Europe/London", "America/New_York"]}"#)
            .unwrap_or_default();
        assert!(runtime.block_on(good.build()).is_ok());
        let bad = parse(r#"{"zones_when_unknown": ["Mars/Olympus"]}"#).unwrap_or_default();
        let err = runtime
            .block_on(bad.build())
            .err()
            .map(|e| e.message)
            .unwrap_or_default();
        assert!(err.contains("Mars/Olympus"), "{err}");
    }
}
