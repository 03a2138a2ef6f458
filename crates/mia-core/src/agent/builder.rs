//! [`AgentBuilder`]: required seams as arguments, optional ones as setters, checked by `build`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::{Agent, AgentConfig, Inner, RetryPolicy};
use crate::allocator::{Allocator, EvenSplit};
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::events::{EventSink, StoreSink};
use crate::llm::LlmProvider;
use crate::memory::MemoryStore;
use crate::policy::{
    ConsentRule, ContentPolicies, ContentPolicy, PermissiveSendPolicy, SendPolicies, SendPolicy,
};
use crate::ratelimit::{Gcra, LocalRateLimiter, RateLimiter};
use crate::store::Store;
use crate::transport::Transport;

/// Builds an [`Agent`]. Start with [`Agent::builder`].
///
/// A send policy is required: either a real one ([`send_policy`](Self::send_policy), such as
/// `mia_safety::SendGuard`) or, for tests and demos only, the documented
/// [`permissive_policies`](Self::permissive_policies). The same holds for the content
/// policy. The consent rule runs before either and cannot be turned off.
#[must_use]
pub struct AgentBuilder {
    llm: Arc<dyn LlmProvider>,
    transport: Arc<dyn Transport>,
    store: Option<Arc<dyn Store>>,
    content: Option<Arc<dyn ContentPolicy>>,
    send: Option<Arc<dyn SendPolicy>>,
    allocator: Option<Arc<dyn Allocator>>,
    sink: Option<Arc<dyn EventSink>>,
    clock: Option<Arc<dyn Clock>>,
    limiter: Option<Arc<dyn RateLimiter>>,
    audit: Option<Arc<dyn crate::AuditTrail>>,
    screen: Option<Arc<dyn crate::assist::InboundScreen>>,
    assistant: Option<(
        crate::assist::ReplyAssistant,
        Arc<dyn crate::assist::InboundScreen>,
    )>,
    daily_cap: Option<(u32, String)>,
    zones_when_unknown: Option<Vec<String>>,
    seed: Option<u64>,
    config: AgentConfig,
}

impl AgentBuilder {
    pub(super) fn new(llm: Arc<dyn LlmProvider>, transport: Arc<dyn Transport>) -> Self {
        Self {
            llm,
            transport,
            store: None,
            content: None,
            send: None,
            allocator: None,
            sink: None,
            clock: None,
            limiter: None,
            audit: None,
            assistant: None,
            screen: None,
            daily_cap: None,
            zones_when_unknown: None,
            seed: None,
            config: AgentConfig::default(),
        }
    }

    /// Where everything is kept. Default: a fresh [`MemoryStore`].
    pub fn store(mut self, store: impl Store + 'static) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// A store already shared with other parts of the host.
    pub fn shared_store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The content policy every generated or edited text passes.
    pub fn content_policy(mut self, policy: impl ContentPolicy + 'static) -> Self {
        self.content = Some(Arc::new(policy));
        self
    }

    /// The send policy every send passes, after the built-in consent rule.
    pub fn send_policy(mut self, policy: impl SendPolicy + 'static) -> Self {
        self.send = Some(Arc::new(policy));
        self
    }

    /// For tests and demos only: no send rules beyond consent, and no content rules. Consent is
    /// still checked on every send.
    pub fn permissive_policies(mut self) -> Self {
        self.send = Some(Arc::new(PermissiveSendPolicy));
        self.content = Some(Arc::new(ContentPolicies::new()));
        self
    }

    /// Picks variants. Default: [`EvenSplit`].
    pub fn allocator(mut self, allocator: impl Allocator + 'static) -> Self {
        self.allocator = Some(Arc::new(allocator));
        self
    }

    /// Receives events. Default: a [`StoreSink`] over the store.
    pub fn event_sink(mut self, sink: impl EventSink + 'static) -> Self {
        self.sink = Some(Arc::new(sink));
        self
    }

    /// A sink already shared with other parts of the host (an analytics collector it reads).
    pub fn shared_event_sink(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.sink = Some(sink);
        self
    }

    /// Wall time. Default: [`SystemClock`]; use [`SimClock`](crate::SimClock) for dry-runs.
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Hands out send slots. Default: a [`LocalRateLimiter`] at the transport's
    /// `messages_per_second` (none if the transport states no limit). Give every worker of a
    /// deployment the same shared limiter (Redis) so they respect one Telegram limit together.
    pub fn rate_limiter(mut self, limiter: impl RateLimiter + 'static) -> Self {
        self.limiter = Some(Arc::new(limiter));
        self
    }

    /// Where the agent records every decision it makes (send and content policy, consent,
    /// reviews, campaign states). Default: a [`StoreAuditTrail`](crate::StoreAuditTrail) over
    /// the store, with the store's own subject key; `mia_safety::compliance::AuditLog` also
    /// signs checkpoints. The log is always written; reading it is up to the host.
    pub fn audit_trail(mut self, trail: impl crate::AuditTrail + 'static) -> Self {
        self.audit = Some(Arc::new(trail));
        self
    }

    /// Reads every inbound text from a contact with `screen` (e.g. `mia_safety::ReplyScreen`):
    /// an opt-out in other words ("please remove me from this list", localised forms) is then a
    /// STOP, withdrawn at once and confirmed, like the STOP keywords mia always knows.
    /// [`reply_assistant`](Self::reply_assistant) sets it too.
    pub fn inbound_screen(mut self, screen: impl crate::assist::InboundScreen + 'static) -> Self {
        self.screen = Some(Arc::new(screen));
        self
    }

    /// Turns on the reply assistant ([`Agent::answer`]): the model may answer a contact's own
    /// message, after `screen` (e.g. `mia_safety::ReplyScreen`) redacted it and found no
    /// injection, and its answer passes the content and send policies. Off unless called. See
    /// [`crate::assist`].
    pub fn reply_assistant(
        mut self,
        assistant: crate::assist::ReplyAssistant,
        screen: impl crate::assist::InboundScreen + 'static,
    ) -> Self {
        let screen: Arc<dyn crate::assist::InboundScreen> = Arc::new(screen);
        self.screen = Some(Arc::clone(&screen));
        self.assistant = Some((assistant, screen));
        self
    }

    /// Seeds the agent's randomness (retry jitter, campaign ids) for reproducible runs.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// This worker's name in leases. Default: `"worker-1"`.
    pub fn worker_id(mut self, id: impl Into<String>) -> Self {
        self.config.worker_id = id.into();
        self
    }

    /// How long a claim on a job lasts before another worker may take it. Default: 60 s.
    /// A batch's results wait to be written together for a second at most, or a tenth of the
    /// lease if that is shorter, and never until within that time of a lease's end.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.config.lease = lease;
        self
    }

    /// How many jobs a worker claims at once. Default: 64. Keep a batch short enough to send
    /// well within the lease at the rate limit.
    pub fn claim_batch(mut self, jobs: usize) -> Self {
        self.config.claim_batch = jobs;
        self
    }

    /// Pauses every running campaign when, over the trailing `window`, at least `min_blocks`
    /// recipients blocked the sending account and blocks are at least `max_rate` of sends plus
    /// blocks: a burst of blocks is a spam signal, and Telegram limits accounts that keep
    /// sending through one. Default: 5% and at least 10 blocks over 24 hours.
    pub fn block_alarm(
        mut self,
        max_rate: f64,
        min_blocks: u64,
        window: jiff::SignedDuration,
    ) -> Self {
        self.config.block_rate = max_rate;
        self.config.block_min = min_blocks;
        self.config.block_window = window;
        self
    }

    /// How long an item may wait in the review queue. Past it, the item is rejected (copy is
    /// never sent unreviewed; a held send is skipped). Default: 72 hours.
    pub fn review_deadline(mut self, deadline: Duration) -> Self {
        self.config.review_deadline = deadline;
        self
    }

    /// Retries of transient transport failures. Default: [`RetryPolicy::default`].
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.config.retry = retry;
        self
    }

    /// At most `max` campaign sends a day from the sending account, days counted on
    /// `time_zone` (IANA). The count is kept in the store ([`OutboxStore::take_daily`]), so
    /// every worker sharing it and every restart see the day's count; a job over the cap is
    /// deferred to the account's next day (rule `daily_cap`), never dropped. A cap counts send
    /// attempts, so a retried send counts again. Off by default.
    ///
    /// [`OutboxStore::take_daily`]: crate::OutboxStore::take_daily
    pub fn daily_cap(mut self, max: u32, time_zone: &str) -> Self {
        self.daily_cap = Some((max, time_zone.to_owned()));
        self
    }

    /// The zones (IANA) the audience may live in, for contacts whose own zone is not known
    /// ([`UNKNOWN_TIME_ZONE`](crate::UNKNOWN_TIME_ZONE): people who wrote to the bot first, as
    /// Telegram does not say where they are). A campaign's [`SendWindow`](crate::SendWindow)
    /// then takes the most restrictive reading: such a contact is sent to only while the window
    /// is open in every one of these zones. Default: `["UTC"]`. Give the send guard the same
    /// zones for quiet hours (`SendGuardBuilder::zones_when_unknown` in mia-safety).
    ///
    /// [`build`](Self::build) fails on an unknown zone or an empty list.
    pub fn zones_when_unknown<I, S>(mut self, zones: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.zones_when_unknown = Some(zones.into_iter().map(Into::into).collect());
        self
    }

    /// How long after a campaign message a reply that does not quote any message still counts
    /// as an answer to it (default 72 hours). Most people just type instead of using Telegram's
    /// reply; such a reply (or STOP) is credited to the latest campaign message the contact got
    /// within this window, so reply rates, journeys waiting for a reply and opt-outs per
    /// campaign see it. A reply quoting a message is credited to that message only.
    /// `Duration::ZERO` credits quoting replies only.
    pub fn reply_window(mut self, window: Duration) -> Self {
        self.config.reply_window =
            jiff::SignedDuration::try_from(window).unwrap_or(jiff::SignedDuration::MAX);
        self
    }

    /// The privacy notice version recorded with consents granted through `/start`.
    pub fn notice_version(mut self, version: impl Into<String>) -> Self {
        self.config.notice_version = version.into();
        self
    }

    /// The reply sent once after a STOP.
    pub fn stop_confirmation(mut self, text: impl Into<String>) -> Self {
        self.config.stop_confirmation = text.into();
        self
    }

    /// Whether spans may carry personal data: with `true`, the `mia.send` span also records
    /// the contact id. Default: `false`, and spans carry campaign ids, rule names and the job's
    /// correlation id (a digest) only. Message text and chat ids never go into spans. See
    /// [`crate::metrics`] for every span and its fields.
    pub fn trace_personal_data(mut self, on: bool) -> Self {
        self.config.trace_personal_data = on;
        self
    }

    /// Checks the configuration and builds the agent.
    ///
    /// # Errors
    /// [`Error::Config`] when no send or content policy was given, or a setting is out of range.
    pub fn build(self) -> Result<Agent> {
        let send = self.send.ok_or_else(|| {
            Error::Config(
                "no send policy: add one with .send_policy(..) (e.g. mia_safety::SendGuard), \
                 or call .permissive_policies() in tests"
                    .into(),
            )
        })?;
        let content = self.content.ok_or_else(|| {
            Error::Config(
                "no content policy: add one with .content_policy(..) (e.g. \
                 mia_safety::ContentGuard), or call .permissive_policies() in tests"
                    .into(),
            )
        })?;
        let c = &self.config;
        if c.lease < Duration::from_secs(1) {
            return Err(Error::Config("lease must be at least one second".into()));
        }
        if c.retry.max_attempts == 0 {
            return Err(Error::Config(
                "retry.max_attempts must be at least 1".into(),
            ));
        }
        if c.retry.base_delay.is_zero() || c.retry.max_delay < c.retry.base_delay {
            return Err(Error::Config(
                "retry delays must be positive and max_delay >= base_delay".into(),
            ));
        }
        if !(0.0..=1.0).contains(&c.retry.jitter) {
            return Err(Error::Config("retry.jitter must be within 0..=1".into()));
        }
        if c.worker_id.trim().is_empty() {
            return Err(Error::Config("worker_id must not be empty".into()));
        }
        if !(c.block_rate > 0.0 && c.block_rate <= 1.0)
            || c.block_min == 0
            || c.block_window < jiff::SignedDuration::from_mins(1)
        {
            return Err(Error::Config(
                "block_alarm needs a rate in (0, 1], at least one block and a window of a minute or more"
                    .into(),
            ));
        }
        if let Some((assistant, _)) = &self.assistant {
            assistant.validate()?;
        }
        if c.claim_batch == 0 {
            return Err(Error::Config("claim_batch must be at least 1".into()));
        }
        let blocks = super::health::BlockWatch::new(c.block_rate, c.block_min, c.block_window);
        let mut config = self.config;
        if let Some((max, tz)) = &self.daily_cap {
            config.daily_cap = Some(super::DailyCap::new(*max, tz)?);
        }
        if let Some(names) = &self.zones_when_unknown {
            if names.is_empty() {
                return Err(Error::Config(
                    "zones_when_unknown must name at least one zone".into(),
                ));
            }
            config.zones_when_unknown = names
                .iter()
                .map(|name| {
                    jiff::tz::TimeZone::get(name).map_err(|e| {
                        Error::Config(format!(
                            "zones_when_unknown: unknown time zone {name:?}: {e}"
                        ))
                    })
                })
                .collect::<Result<_>>()?;
        }
        let store = self.store.unwrap_or_else(|| Arc::new(MemoryStore::new()));
        let audit = self
            .audit
            .unwrap_or_else(|| Arc::new(crate::StoreAuditTrail::new(Arc::clone(&store))));
        let sink = self
            .sink
            .unwrap_or_else(|| Arc::new(StoreSink::new(Arc::clone(&store))));
        let limiter: Option<Arc<dyn RateLimiter>> = match self.limiter {
            Some(l) => Some(l),
            None => match self.transport.capabilities().messages_per_second {
                Some(rate) => Some(Arc::new(LocalRateLimiter::new(Gcra::per_second(rate))?)),
                None => None,
            },
        };
        let mut sends = SendPolicies::new().with(ConsentRule::default());
        sends.push_arc(send);
        let rng = match self.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::seed_from_u64(rand::random()),
        };
        Ok(Agent {
            inner: Arc::new(Inner {
                llm: self.llm,
                transport: self.transport,
                store,
                content,
                sends,
                allocator: self.allocator.unwrap_or_else(|| Arc::new(EvenSplit)),
                sink,
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
                config,
                rng: Mutex::new(rng),
                blocks,
                limiter,
                audit,
                assistant: self.assistant,
                screen: self.screen,
                journeys_repaired: std::sync::atomic::AtomicBool::new(false),
                occurrences_queued: Mutex::new(std::collections::HashMap::new()),
                abandoned_sweep_at: Mutex::new(None),
            }),
        })
    }
}
