//! The budget guard: reserve a call's worst case before sending it, settle on the real cost.
//!
//! Budgets are kept in nano-dollars, globally, per campaign and per agent. A call charged to
//! a campaign and an agent must fit in every budget that applies to it; if one is short, the
//! call is refused with [`ClaudeError::Budget`] before any HTTP request is made.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::{ClaudeError, Result};
use crate::ledger::Scope;
use crate::wire::{ContentBlock, MessagesRequest, System, ToolResultContent};

/// Tokens counted for an image: a 1.15-megapixel image, the largest the API keeps unresized,
/// is about 1,600 tokens.
const IMAGE_TOKENS: u64 = 1_600;
/// The hidden system prompt the API adds when tools are offered (a few hundred tokens).
const TOOLS_OVERHEAD: u64 = 500;

/// A local, deliberately high estimate of a request's input tokens: one token per three
/// bytes of text and JSON, a few per block, 1,600 per image, 500 when tools are offered.
///
/// Real tokenisation averages more bytes per token, so the estimate bounds the usual case
/// from above; use `count_tokens` for an exact figure.
pub fn estimate_input_tokens(request: &MessagesRequest) -> u64 {
    fn text(s: &str) -> u64 {
        (s.len() as u64).div_ceil(3)
    }
    fn block(b: &ContentBlock) -> u64 {
        4 + match b {
            ContentBlock::Text { text: t, .. } => text(t),
            ContentBlock::Image { .. } => IMAGE_TOKENS,
            ContentBlock::ToolUse { name, input, .. } => text(name) + text(&input.to_string()),
            ContentBlock::ToolResult { content, .. } => match content {
                ToolResultContent::Text(t) => text(t),
                ToolResultContent::Blocks(blocks) => blocks.iter().map(block).sum(),
            },
            ContentBlock::Thinking { thinking, .. } => text(thinking),
            ContentBlock::RedactedThinking { data } => text(data),
            ContentBlock::Unknown(v) => text(&v.to_string()),
        }
    }
    let system = match &request.system {
        None => 0,
        Some(System::Text(t)) => text(t),
        Some(System::Blocks(blocks)) => blocks
            .iter()
            .map(|b| match b {
                crate::wire::SystemBlock::Text { text: t, .. } => 4 + text(t),
            })
            .sum(),
    };
    let messages: u64 = request
        .messages
        .iter()
        .map(|m| 4 + m.content.iter().map(block).sum::<u64>())
        .sum();
    let tools: u64 = if request.tools.is_empty() {
        0
    } else {
        TOOLS_OVERHEAD
            + request
                .tools
                .iter()
                .map(|t| {
                    text(&t.name)
                        + t.description.as_deref().map_or(0, text)
                        + text(&t.input_schema.to_string())
                })
                .sum::<u64>()
    };
    system + messages + tools
}

#[derive(Clone, Copy, Debug)]
struct Account {
    limit: u64,
    spent: u64,
    reserved: u64,
}

impl Account {
    fn committed(&self) -> u64 {
        self.spent.saturating_add(self.reserved)
    }
}

#[derive(Debug, Default)]
struct Accounts {
    global: Option<Account>,
    campaigns: HashMap<String, Account>,
    agents: HashMap<String, Account>,
}

impl Accounts {
    fn for_scope(&mut self, scope: &Scope) -> Vec<(String, &mut Account)> {
        let mut out = Vec::new();
        if let Some(a) = self.global.as_mut() {
            out.push(("global".to_owned(), a));
        }
        if let Some(c) = &scope.campaign
            && let Some(a) = self.campaigns.get_mut(c)
        {
            out.push((format!("campaign:{c}"), a));
        }
        if let Some(g) = &scope.agent
            && let Some(a) = self.agents.get_mut(g)
        {
            out.push((format!("agent:{g}"), a));
        }
        out
    }
}

/// Budgets, in nano-dollars (10^-9 USD), shared by every clone.
#[derive(Clone, Debug, Default)]
pub struct BudgetGuard {
    accounts: Arc<Mutex<Accounts>>,
}

/// What a budget has left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BudgetStatus {
    /// The limit.
    pub limit_nano_usd: u64,
    /// Spent by settled calls.
    pub spent_nano_usd: u64,
    /// Reserved by calls in flight.
    pub reserved_nano_usd: u64,
}

impl BudgetGuard {
    /// A guard with no budget: every call passes until a limit is set.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Accounts> {
        self.accounts.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn account(limit: u64) -> Account {
        Account {
            limit,
            spent: 0,
            reserved: 0,
        }
    }

    /// Sets the budget of every call, in millionths of a dollar.
    #[must_use]
    pub fn with_global_limit(self, micro_usd: u64) -> Self {
        self.lock().global = Some(Self::account(micro_usd.saturating_mul(1000)));
        self
    }

    /// Sets (or replaces the limit of) a campaign's budget, in millionths of a dollar. What
    /// was spent stays spent.
    pub fn set_campaign_limit(&self, campaign: impl Into<String>, micro_usd: u64) {
        let limit = micro_usd.saturating_mul(1000);
        self.lock()
            .campaigns
            .entry(campaign.into())
            .and_modify(|a| a.limit = limit)
            .or_insert_with(|| Self::account(limit));
    }

    /// Sets (or replaces the limit of) an agent's budget, in millionths of a dollar.
    pub fn set_agent_limit(&self, agent: impl Into<String>, micro_usd: u64) {
        let limit = micro_usd.saturating_mul(1000);
        self.lock()
            .agents
            .entry(agent.into())
            .and_modify(|a| a.limit = limit)
            .or_insert_with(|| Self::account(limit));
    }

    /// The state of a campaign's budget, if it has one.
    pub fn campaign(&self, campaign: &str) -> Option<BudgetStatus> {
        self.lock().campaigns.get(campaign).map(status)
    }

    /// The state of an agent's budget, if it has one.
    pub fn agent(&self, agent: &str) -> Option<BudgetStatus> {
        self.lock().agents.get(agent).map(status)
    }

    /// The state of the global budget, if there is one.
    pub fn global(&self) -> Option<BudgetStatus> {
        self.lock().global.as_ref().map(status)
    }

    /// Whether any budget applies to `scope`.
    pub fn applies_to(&self, scope: &Scope) -> bool {
        !self.lock().for_scope(scope).is_empty()
    }

    /// Reserves `worst_case_nano_usd` in every budget that applies to `scope`, all or none.
    ///
    /// # Errors
    /// [`ClaudeError::Budget`] naming the first budget it does not fit in.
    pub fn reserve(&self, scope: &Scope, worst_case_nano_usd: u64) -> Result<Reservation> {
        let mut accounts = self.lock();
        let mut applicable = accounts.for_scope(scope);
        for (name, a) in &applicable {
            if a.committed().saturating_add(worst_case_nano_usd) > a.limit {
                return Err(ClaudeError::Budget {
                    scope: name.clone(),
                    limit_micro_usd: a.limit / 1000,
                    committed_micro_usd: a.committed().div_ceil(1000),
                    requested_micro_usd: worst_case_nano_usd.div_ceil(1000),
                });
            }
        }
        for (_, a) in &mut applicable {
            a.reserved = a.reserved.saturating_add(worst_case_nano_usd);
        }
        Ok(Reservation {
            guard: self.clone(),
            scope: scope.clone(),
            amount: worst_case_nano_usd,
            open: true,
        })
    }
}

fn status(a: &Account) -> BudgetStatus {
    BudgetStatus {
        limit_nano_usd: a.limit,
        spent_nano_usd: a.spent,
        reserved_nano_usd: a.reserved,
    }
}

/// Money held for a call in flight. [`settle`](Self::settle) it with the real cost; dropped
/// unsettled (a cancelled call), it is released as if the call cost nothing.
#[derive(Debug)]
#[must_use = "a reservation is released when dropped; settle it with the real cost"]
pub struct Reservation {
    guard: BudgetGuard,
    scope: Scope,
    amount: u64,
    open: bool,
}

impl Reservation {
    /// The amount held, in nano-dollars.
    pub fn amount_nano_usd(&self) -> u64 {
        self.amount
    }

    /// Replaces the reservation by the real cost (which may exceed it: the guard never
    /// refuses what was already spent).
    pub fn settle(mut self, actual_nano_usd: u64) {
        self.close(actual_nano_usd);
    }

    fn close(&mut self, actual: u64) {
        if !self.open {
            return;
        }
        self.open = false;
        let mut accounts = self.guard.lock();
        for (_, a) in accounts.for_scope(&self.scope) {
            a.reserved = a.reserved.saturating_sub(self.amount);
            a.spent = a.spent.saturating_add(actual);
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.close(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_must_fit_every_budget_of_its_scope() {
        let guard = BudgetGuard::new().with_global_limit(10_000);
        guard.set_campaign_limit("spring", 1_000);
        let spring = Scope::campaign("spring").with_agent("a1");
        let r = guard.reserve(&spring, 600_000).unwrap();
        let refused = guard.reserve(&spring, 600_000).unwrap_err();
        assert!(matches!(
            refused,
            ClaudeError::Budget { ref scope, limit_micro_usd: 1_000, committed_micro_usd: 600, requested_micro_usd: 600 }
                if scope == "campaign:spring"
        ));
        assert_eq!(
            guard.global().unwrap().reserved_nano_usd,
            600_000,
            "all or none"
        );
        r.settle(100_000);
        let s = guard.campaign("spring").unwrap();
        assert_eq!((s.spent_nano_usd, s.reserved_nano_usd), (100_000, 0));
        drop(guard.reserve(&spring, 900_000).unwrap());
        assert_eq!(
            guard.campaign("spring").unwrap().reserved_nano_usd,
            0,
            "released on drop"
        );
        assert!(guard.reserve(&Scope::campaign("other"), 9_000_000).is_ok());
        assert!(!BudgetGuard::new().applies_to(&spring));
    }

    #[test]
    fn the_estimate_grows_with_the_request() {
        let small = MessagesRequest::new("m", 10, "hi");
        let big = MessagesRequest::new("m", 10, "x".repeat(3_000));
        assert!(estimate_input_tokens(&big) >= 1_000);
        assert!(estimate_input_tokens(&small) < estimate_input_tokens(&big));
    }
}
