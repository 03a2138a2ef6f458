//! Prices as data: effective-dated rows per model, prompt-length tiers, the batch multiplier,
//! and the cost of a response's usage, in nano-dollars so that no rounding piles up.
//!
//! The built-in table (`src/prices.json`) holds Anthropic's public list prices as known when
//! it was written; they are data to verify, and the host can override any row. A model with
//! no row has an unknown cost ([`Cost::Unknown`]), never zero.

use jiff::Timestamp;
use jiff::civil::Date;
use serde::Deserialize;

use crate::error::{ClaudeError, Result};
use crate::wire::Usage;

const BUILTIN: &str = include_str!("prices.json");

/// Nano-dollars (10^-9 USD) per token for each kind of token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rates {
    /// Uncached input.
    pub input: u64,
    /// Output.
    pub output: u64,
    /// Cache write with the five-minute lifetime.
    pub cache_write_5m: u64,
    /// Cache write with the one-hour lifetime.
    pub cache_write_1h: u64,
    /// Cache read.
    pub cache_read: u64,
}

/// The prices of one model over a period.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelPrice {
    /// The model id the row is for (`claude-sonnet-4-5`); it also prices dated snapshots
    /// (`claude-sonnet-4-5-20250929`) and `-latest`.
    pub model: String,
    /// Other ids priced by this row.
    pub aliases: Vec<String>,
    /// First day (UTC) the row applies.
    pub effective_from: Date,
    /// First day (UTC) it no longer applies, if it ended.
    pub effective_until: Option<Date>,
    /// The base rates.
    pub rates: Rates,
    /// Higher rates for long prompts: (prompt tokens above which they apply, rates),
    /// ascending.
    pub tiers: Vec<(u64, Rates)>,
}

impl ModelPrice {
    fn matches(&self, id: &str) -> bool {
        std::iter::once(&self.model)
            .chain(&self.aliases)
            .any(|name| match id.strip_prefix(name.as_str()) {
                Some("") | Some("-latest") => true,
                Some(rest) => {
                    rest.len() == 9
                        && rest.starts_with('-')
                        && rest[1..].bytes().all(|b| b.is_ascii_digit())
                }
                None => false,
            })
    }

    fn applies_at(&self, day: Date) -> bool {
        self.effective_from <= day && self.effective_until.is_none_or(|end| day < end)
    }

    /// The rates for a prompt of `prompt_tokens` (the highest tier it exceeds).
    pub fn rates_for(&self, prompt_tokens: u64) -> Rates {
        self.tiers
            .iter()
            .rev()
            .find(|(above, _)| prompt_tokens > *above)
            .map_or(self.rates, |(_, r)| *r)
    }
}

/// What one response cost, by kind of token, in nano-dollars.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CostBreakdown {
    /// Uncached input.
    pub input_nano_usd: u64,
    /// Output.
    pub output_nano_usd: u64,
    /// Cache writes (both lifetimes).
    pub cache_write_nano_usd: u64,
    /// Cache reads.
    pub cache_read_nano_usd: u64,
    /// What prompt caching saved against sending every cached token as plain input
    /// (negative when writes cost more than reads saved so far).
    pub cache_savings_nano_usd: i64,
}

impl CostBreakdown {
    /// The total, in nano-dollars.
    pub fn total_nano_usd(&self) -> u64 {
        self.input_nano_usd
            .saturating_add(self.output_nano_usd)
            .saturating_add(self.cache_write_nano_usd)
            .saturating_add(self.cache_read_nano_usd)
    }

    /// The total, in millionths of a dollar, rounded to the nearest.
    pub fn total_micro_usd(&self) -> u64 {
        self.total_nano_usd().saturating_add(500) / 1000
    }
}

/// The cost of a response: known, or unknown because the model has no price.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cost {
    /// Priced.
    Known(CostBreakdown),
    /// The model has no row in the price table.
    Unknown {
        /// The model id.
        model: String,
    },
}

impl Cost {
    /// The total in millionths of a dollar, if known.
    pub fn micro_usd(&self) -> Option<u64> {
        match self {
            Cost::Known(b) => Some(b.total_micro_usd()),
            Cost::Unknown { .. } => None,
        }
    }

    /// The total in nano-dollars, if known.
    pub fn nano_usd(&self) -> Option<u64> {
        match self {
            Cost::Known(b) => Some(b.total_nano_usd()),
            Cost::Unknown { .. } => None,
        }
    }
}

/// The price table: rows per model, effective-dated.
#[derive(Clone, Debug, PartialEq)]
pub struct PriceTable {
    rows: Vec<ModelPrice>,
    batch_multiplier: f64,
}

#[derive(Deserialize)]
struct FileRates {
    input: f64,
    output: f64,
    cache_write_5m: f64,
    cache_write_1h: f64,
    cache_read: f64,
}

#[derive(Deserialize)]
struct FileTier {
    above_input_tokens: u64,
    #[serde(flatten)]
    rates: FileRates,
}

#[derive(Deserialize)]
struct FileRow {
    model: String,
    #[serde(default)]
    aliases: Vec<String>,
    effective_from: Date,
    #[serde(default)]
    effective_until: Option<Date>,
    #[serde(flatten)]
    rates: FileRates,
    #[serde(default)]
    tiers: Vec<FileTier>,
}

#[derive(Deserialize)]
struct File {
    #[serde(default = "half")]
    batch_multiplier: f64,
    models: Vec<FileRow>,
}

fn half() -> f64 {
    0.5
}

fn per_token(usd_per_mtok: f64, model: &str) -> Result<u64> {
    if !(usd_per_mtok.is_finite() && usd_per_mtok >= 0.0) {
        return Err(ClaudeError::Config(format!(
            "price table: {model} has a price that is not a non-negative number"
        )));
    }
    // USD per million tokens = micro-USD per token = 1000 nano-USD per token.
    Ok((usd_per_mtok * 1000.0).round() as u64)
}

impl FileRates {
    fn to_rates(&self, model: &str) -> Result<Rates> {
        Ok(Rates {
            input: per_token(self.input, model)?,
            output: per_token(self.output, model)?,
            cache_write_5m: per_token(self.cache_write_5m, model)?,
            cache_write_1h: per_token(self.cache_write_1h, model)?,
            cache_read: per_token(self.cache_read, model)?,
        })
    }
}

impl PriceTable {
    /// The built-in table (public list prices, to verify).
    pub fn builtin() -> Self {
        // The embedded file is checked by a test; an empty table (every cost unknown) is the
        // safe answer if it ever failed to parse.
        Self::from_json(BUILTIN).unwrap_or_else(|e| {
            tracing::error!(error = %e, "mia-claude: the built-in price table is unreadable");
            Self::empty()
        })
    }

    /// A table with no rows: every cost is unknown.
    pub fn empty() -> Self {
        Self {
            rows: Vec::new(),
            batch_multiplier: 0.5,
        }
    }

    /// A table from JSON in the shape of the built-in `prices.json`: `batch_multiplier` and
    /// `models`, each row with `model`, optional `aliases`, `effective_from`, optional
    /// `effective_until`, the five prices in USD per million tokens and optional `tiers`.
    ///
    /// # Errors
    /// [`ClaudeError::Config`] for JSON of another shape or a negative price.
    pub fn from_json(json: &str) -> Result<Self> {
        let file: File = serde_json::from_str(json)
            .map_err(|e| ClaudeError::Config(format!("price table: {e}")))?;
        if !(file.batch_multiplier.is_finite() && file.batch_multiplier >= 0.0) {
            return Err(ClaudeError::Config(
                "price table: batch_multiplier must be a non-negative number".into(),
            ));
        }
        let mut rows = Vec::with_capacity(file.models.len());
        for row in file.models {
            let mut tiers = Vec::with_capacity(row.tiers.len());
            for t in &row.tiers {
                tiers.push((t.above_input_tokens, t.rates.to_rates(&row.model)?));
            }
            tiers.sort_by_key(|(above, _)| *above);
            rows.push(ModelPrice {
                rates: row.rates.to_rates(&row.model)?,
                model: row.model,
                aliases: row.aliases,
                effective_from: row.effective_from,
                effective_until: row.effective_until,
                tiers,
            });
        }
        Ok(Self {
            rows,
            batch_multiplier: file.batch_multiplier,
        })
    }

    /// Adds rows; for a model and day covered twice, the row added last wins.
    #[must_use]
    pub fn with_rows(mut self, rows: impl IntoIterator<Item = ModelPrice>) -> Self {
        self.rows.extend(rows);
        self
    }

    /// Adds every row of `other` (they win over ours) and takes its batch multiplier.
    #[must_use]
    pub fn merged_with(mut self, other: PriceTable) -> Self {
        self.rows.extend(other.rows);
        self.batch_multiplier = other.batch_multiplier;
        self
    }

    /// The multiplier of the Message Batches API (0.5).
    pub fn batch_multiplier(&self) -> f64 {
        self.batch_multiplier
    }

    /// The row pricing `model` at `at`: among rows in effect that day, the latest
    /// `effective_from`, and among equals the one added last.
    pub fn price(&self, model: &str, at: Timestamp) -> Option<&ModelPrice> {
        let day = jiff::tz::TimeZone::UTC.to_datetime(at).date();
        self.rows
            .iter()
            .enumerate()
            .filter(|(_, r)| r.matches(model) && r.applies_at(day))
            .max_by_key(|(i, r)| (r.effective_from, *i))
            .map(|(_, r)| r)
    }

    /// What `usage` of `model` cost at `at` (`batch` for the Message Batches API).
    pub fn cost(&self, model: &str, usage: &Usage, at: Timestamp, batch: bool) -> Cost {
        let Some(row) = self.price(model, at) else {
            return Cost::Unknown {
                model: model.to_owned(),
            };
        };
        let rates = row.rates_for(usage.prompt_tokens());
        let (w5, w1) = usage.cache_writes();
        let read = usage.cache_read_input_tokens.unwrap_or(0);
        let scale = |n: u64| {
            if batch {
                (n as f64 * self.batch_multiplier).round() as u64
            } else {
                n
            }
        };
        let mul = |tokens: u64, rate: u64| scale(tokens.saturating_mul(rate));
        let plain = |tokens: u64| i128::from(mul(tokens, rates.input));
        let savings = plain(read)
            - i128::from(mul(read, rates.cache_read))
            - (i128::from(mul(w5, rates.cache_write_5m)) - plain(w5))
            - (i128::from(mul(w1, rates.cache_write_1h)) - plain(w1));
        Cost::Known(CostBreakdown {
            input_nano_usd: mul(usage.input_tokens, rates.input),
            output_nano_usd: mul(usage.output_tokens, rates.output),
            cache_write_nano_usd: mul(w5, rates.cache_write_5m)
                .saturating_add(mul(w1, rates.cache_write_1h)),
            cache_read_nano_usd: mul(read, rates.cache_read),
            cache_savings_nano_usd: i64::try_from(savings).unwrap_or(i64::MAX),
        })
    }

    /// The most a call can cost: `prompt_tokens` all priced as the dearest kind of input
    /// (a one-hour cache write, at the tier the prompt falls in) plus `max_tokens` of output.
    /// `None` when the model has no price.
    pub fn worst_case_nano_usd(
        &self,
        model: &str,
        prompt_tokens: u64,
        max_tokens: u64,
        at: Timestamp,
    ) -> Option<u64> {
        let row = self.price(model, at)?;
        let rates = row.rates_for(prompt_tokens);
        let input_rate = rates
            .input
            .max(rates.cache_write_5m)
            .max(rates.cache_write_1h);
        Some(
            prompt_tokens
                .saturating_mul(input_rate)
                .saturating_add(max_tokens.saturating_mul(rates.output)),
        )
    }
}

impl Default for PriceTable {
    fn default() -> Self {
        Self::builtin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::CacheCreation;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn the_builtin_table_parses_and_prices_current_models() {
        let table = PriceTable::from_json(BUILTIN).unwrap();
        let now = at("2025-12-01T00:00:00Z");
        for model in [
            "claude-opus-4-1",
            "claude-opus-4-1-20250805",
            "claude-opus-4-20250514",
            "claude-opus-4-0",
            "claude-sonnet-4-5",
            "claude-sonnet-4-5-20250929",
            "claude-sonnet-4-20250514",
            "claude-haiku-4-5-20251001",
            "claude-3-5-haiku-latest",
            "claude-3-5-haiku-20241022",
        ] {
            assert!(table.price(model, now).is_some(), "{model} has a price");
        }
        assert_eq!(
            table.price("claude-opus-4-1", now).unwrap().rates.output,
            75_000
        );
        assert_eq!(
            table.price("claude-opus-4", now).unwrap().model,
            "claude-opus-4"
        );
        for unknown in ["claude-opus-4-6", "gpt-5", "claude-sonnet-4-5x", ""] {
            assert!(table.price(unknown, now).is_none(), "{unknown} is unknown");
        }
        assert!(
            table
                .price("claude-haiku-4-5", at("2025-01-01T00:00:00Z"))
                .is_none(),
            "not yet in effect"
        );
    }

    #[test]
    fn cost_prices_every_kind_of_token_and_what_caching_saved() {
        let table = PriceTable::builtin();
        let usage = Usage {
            input_tokens: 1_000,
            output_tokens: 500,
            cache_creation_input_tokens: Some(2_000),
            cache_read_input_tokens: Some(10_000),
            cache_creation: Some(CacheCreation {
                ephemeral_5m_input_tokens: 1_000,
                ephemeral_1h_input_tokens: 1_000,
            }),
            ..Usage::default()
        };
        let now = at("2025-12-01T00:00:00Z");
        let Cost::Known(b) = table.cost("claude-sonnet-4-5-20250929", &usage, now, false) else {
            panic!("sonnet 4.5 is priced");
        };
        // $3 in, $15 out, $3.75 / $6 writes, $0.30 reads per million tokens.
        assert_eq!(b.input_nano_usd, 3_000_000);
        assert_eq!(b.output_nano_usd, 7_500_000);
        assert_eq!(b.cache_write_nano_usd, 3_750_000 + 6_000_000);
        assert_eq!(b.cache_read_nano_usd, 3_000_000);
        assert_eq!(b.total_micro_usd(), 23_250);
        // Reads saved 10k * 2.70 µ$; writes cost 1k * 0.75 + 1k * 3 extra.
        assert_eq!(b.cache_savings_nano_usd, 27_000_000 - 750_000 - 3_000_000);
        let batch = table.cost("claude-sonnet-4-5", &usage, now, true);
        assert_eq!(batch.micro_usd(), Some(11_625));
        assert_eq!(
            table.cost("claude-next", &usage, now, false),
            Cost::Unknown {
                model: "claude-next".into()
            }
        );
    }

    #[test]
    fn long_prompts_use_the_long_context_tier() {
        let table = PriceTable::builtin();
        let usage = Usage {
            input_tokens: 250_000,
            output_tokens: 1_000,
            ..Usage::default()
        };
        let now = at("2025-12-01T00:00:00Z");
        let cost = table.cost("claude-sonnet-4-5", &usage, now, false);
        assert_eq!(cost.micro_usd(), Some(250_000 * 6 + 1_000 * 45 / 2));
        let cost = table.cost("claude-haiku-4-5", &usage, now, false);
        assert_eq!(cost.micro_usd(), Some(250_000 + 5_000), "no tier for haiku");
    }

    #[test]
    fn host_rows_override_the_builtin_ones() {
        let host = PriceTable::from_json(
            r#"{"models":[{"model":"claude-sonnet-4-5","effective_from":"2025-09-29",
                "input":1,"output":2,"cache_write_5m":1,"cache_write_1h":1,"cache_read":1}]}"#,
        )
        .unwrap();
        let table = PriceTable::builtin().merged_with(host);
        let now = at("2025-12-01T00:00:00Z");
        assert_eq!(
            table.price("claude-sonnet-4-5", now).unwrap().rates.input,
            1_000
        );
        assert!(PriceTable::from_json(r#"{"models":[{"model":"x"}]}"#).is_err());
    }
}
