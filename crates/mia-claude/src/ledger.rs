//! The cost ledger: every call (and every attempt) counted, per call, per campaign, per agent.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use jiff::Timestamp;

use crate::cost::Cost;
use crate::wire::Usage;

/// Who a call is for: the campaign and the agent it is charged to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Scope {
    /// The campaign, if the call is for one.
    pub campaign: Option<String>,
    /// The agent (or host component) making the call.
    pub agent: Option<String>,
}

impl Scope {
    /// A scope charged to `campaign`.
    pub fn campaign(campaign: impl Into<String>) -> Self {
        Self {
            campaign: Some(campaign.into()),
            agent: None,
        }
    }

    /// This scope, also charged to `agent`.
    #[must_use]
    pub fn with_agent(mut self, agent: impl Into<String>) -> Self {
        self.agent = Some(agent.into());
        self
    }
}

/// One call as the ledger saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct CallRecord {
    /// When it ended.
    pub at: Timestamp,
    /// The model asked for.
    pub model: String,
    /// Who it was for.
    pub scope: Scope,
    /// Tokens used (zero for a call that failed before any answer).
    pub usage: Usage,
    /// What it cost.
    pub cost: Cost,
    /// HTTP requests made, retries included.
    pub attempts: u32,
    /// Whether it succeeded.
    pub ok: bool,
    /// The request id of the last answer.
    pub request_id: Option<String>,
}

/// Sums over calls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Calls made.
    pub calls: u64,
    /// Calls that failed.
    pub failed_calls: u64,
    /// HTTP requests made, retries included.
    pub attempts: u64,
    /// Uncached input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Tokens written to the prompt cache.
    pub cache_write_tokens: u64,
    /// Tokens read from the prompt cache.
    pub cache_read_tokens: u64,
    /// The cost of the priced calls, in nano-dollars.
    pub cost_nano_usd: u64,
    /// Calls whose cost is unknown (no price for the model): the cost is then a lower bound.
    pub unpriced_calls: u64,
    /// What prompt caching saved, in nano-dollars (negative when writes cost more).
    pub cache_savings_nano_usd: i64,
}

impl Totals {
    /// Retries: attempts beyond the first of each call.
    pub fn retries(&self) -> u64 {
        self.attempts.saturating_sub(self.calls)
    }

    /// The cost in millionths of a dollar (rounded), or `None` when some call was unpriced.
    pub fn cost_micro_usd(&self) -> Option<u64> {
        (self.unpriced_calls == 0).then(|| self.cost_nano_usd.saturating_add(500) / 1000)
    }

    /// What prompt caching saved, in millionths of a dollar (rounded toward zero).
    pub fn cache_savings_micro_usd(&self) -> i64 {
        self.cache_savings_nano_usd / 1000
    }

    fn add(&mut self, call: &CallRecord) {
        self.calls += 1;
        self.failed_calls += u64::from(!call.ok);
        self.attempts = self.attempts.saturating_add(u64::from(call.attempts));
        let u = &call.usage;
        self.input_tokens = self.input_tokens.saturating_add(u.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(u.output_tokens);
        self.cache_write_tokens = self
            .cache_write_tokens
            .saturating_add(u.cache_creation_input_tokens.unwrap_or(0));
        self.cache_read_tokens = self
            .cache_read_tokens
            .saturating_add(u.cache_read_input_tokens.unwrap_or(0));
        match &call.cost {
            Cost::Known(b) => {
                self.cost_nano_usd = self.cost_nano_usd.saturating_add(b.total_nano_usd());
                self.cache_savings_nano_usd = self
                    .cache_savings_nano_usd
                    .saturating_add(b.cache_savings_nano_usd);
            }
            // A failed call with no usage costs nothing even without a price.
            Cost::Unknown { .. } if u.prompt_tokens() == 0 && u.output_tokens == 0 => {}
            Cost::Unknown { .. } => self.unpriced_calls += 1,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    total: Totals,
    campaigns: HashMap<String, Totals>,
    agents: HashMap<String, Totals>,
    recent: VecDeque<CallRecord>,
}

/// Counts every call a client makes: tokens, cost, attempts and cache savings, in total, per
/// campaign and per agent, plus the most recent calls.
#[derive(Debug)]
pub struct CostLedger {
    state: Mutex<State>,
    keep_recent: usize,
}

impl Default for CostLedger {
    fn default() -> Self {
        Self::new(1024)
    }
}

impl CostLedger {
    /// A ledger keeping the last `keep_recent` call records (the totals keep everything).
    pub fn new(keep_recent: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            keep_recent,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves sums that are still sums.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records one call.
    pub fn record(&self, call: CallRecord) {
        let mut s = self.lock();
        s.total.add(&call);
        if let Some(c) = &call.scope.campaign {
            s.campaigns.entry(c.clone()).or_default().add(&call);
        }
        if let Some(a) = &call.scope.agent {
            s.agents.entry(a.clone()).or_default().add(&call);
        }
        if self.keep_recent > 0 {
            if s.recent.len() == self.keep_recent {
                s.recent.pop_front();
            }
            s.recent.push_back(call);
        }
    }

    /// Every call.
    pub fn total(&self) -> Totals {
        self.lock().total
    }

    /// Calls charged to `campaign`.
    pub fn campaign(&self, campaign: &str) -> Totals {
        self.lock()
            .campaigns
            .get(campaign)
            .copied()
            .unwrap_or_default()
    }

    /// Calls charged to `agent`.
    pub fn agent(&self, agent: &str) -> Totals {
        self.lock().agents.get(agent).copied().unwrap_or_default()
    }

    /// The most recent calls, oldest first.
    pub fn recent_calls(&self) -> Vec<CallRecord> {
        self.lock().recent.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::CostBreakdown;

    fn call(scope: Scope, cost: Cost, attempts: u32, ok: bool) -> CallRecord {
        CallRecord {
            at: Timestamp::UNIX_EPOCH,
            model: "m".into(),
            scope,
            usage: Usage {
                input_tokens: if ok { 10 } else { 0 },
                output_tokens: if ok { 5 } else { 0 },
                ..Usage::default()
            },
            cost,
            attempts,
            ok,
            request_id: None,
        }
    }

    #[test]
    fn totals_per_campaign_and_agent_count_retries_and_unpriced_calls() {
        let ledger = CostLedger::new(2);
        let priced = |n| {
            Cost::Known(CostBreakdown {
                input_nano_usd: n,
                cache_savings_nano_usd: 1_000,
                ..CostBreakdown::default()
            })
        };
        let spring = Scope::campaign("spring").with_agent("writer");
        ledger.record(call(spring.clone(), priced(2_000_000), 3, true));
        ledger.record(call(spring.clone(), priced(0), 1, false));
        ledger.record(call(
            Scope::default().with_agent("writer"),
            priced(1_000_000),
            1,
            true,
        ));
        let t = ledger.campaign("spring");
        assert_eq!(
            (t.calls, t.failed_calls, t.attempts, t.retries()),
            (2, 1, 4, 2)
        );
        assert_eq!(t.cost_micro_usd(), Some(2_000));
        assert_eq!(t.cache_savings_micro_usd(), 2);
        assert_eq!(ledger.agent("writer").cost_micro_usd(), Some(3_000));
        assert_eq!(ledger.total().input_tokens, 20);
        assert_eq!(ledger.recent_calls().len(), 2, "only the last two are kept");

        let unknown = Cost::Unknown { model: "x".into() };
        ledger.record(call(Scope::campaign("spring"), unknown.clone(), 1, true));
        assert_eq!(
            ledger.campaign("spring").cost_micro_usd(),
            None,
            "unknown, never zero"
        );
        ledger.record(call(Scope::campaign("fall"), unknown, 2, false));
        assert_eq!(
            ledger.campaign("fall").cost_micro_usd(),
            Some(0),
            "a failed call without usage cost nothing"
        );
    }
}
