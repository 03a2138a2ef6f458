//! `mia stats` and `mia bandit-sim`: JSON in, JSON out, on top of `mia::experiments`.

use std::io::Read;
use std::path::PathBuf;

use mia::experiments::bandit::{self, Policy};
use mia::experiments::report::{self, StatsInput};
use mia::experiments::stats::{self, IntervalMethod};
use serde::Serialize;

/// Flags of `mia stats`.
#[derive(clap::Args, Debug, Clone)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct StatsArgs {
    #[command(subcommand)]
    command: Option<StatsCommand>,
    /// The experiment as JSON (`{"metric": "binomial", "variants": [...]}`); stdin when absent
    /// or `-`.
    input: Option<PathBuf>,
}

#[derive(clap::Subcommand, Debug, Clone)]
enum StatsCommand {
    /// Users per arm for a two-sided test of a relative lift on a conversion rate.
    SampleSize {
        /// Baseline conversion rate, such as 0.05.
        #[arg(long)]
        baseline: f64,
        /// Relative minimum detectable effect, such as 0.10 for +10%.
        #[arg(long)]
        mde: f64,
        /// Significance level.
        #[arg(long, default_value_t = 0.05)]
        alpha: f64,
        /// Power.
        #[arg(long, default_value_t = 0.8)]
        power: f64,
    },
    /// A confidence interval for a proportion.
    Interval {
        /// Successes.
        #[arg(long)]
        successes: u64,
        /// Trials.
        #[arg(long)]
        trials: u64,
        /// `wilson` or `clopper-pearson`.
        #[arg(long, default_value = "wilson", value_parser = parse_method)]
        method: IntervalMethod,
        /// Significance level (a `1 - alpha` interval).
        #[arg(long, default_value_t = 0.05)]
        alpha: f64,
    },
}

fn parse_method(s: &str) -> Result<IntervalMethod, String> {
    match s {
        "wilson" => Ok(IntervalMethod::Wilson),
        "clopper-pearson" => Ok(IntervalMethod::ClopperPearson),
        other => Err(format!("unknown method {other}: wilson or clopper-pearson")),
    }
}

/// Flags of `mia bandit-sim`.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct BanditSimArgs {
    /// Success rates of the arms, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0.04,0.05,0.06")]
    arms: Vec<f64>,
    /// Pulls per run.
    #[arg(long, default_value_t = 100_000)]
    pulls: u64,
    /// Runs (seeds 0..seeds).
    #[arg(long, default_value_t = 200)]
    seeds: u64,
    /// `thompson`, `kl-ucb` or `epsilon-greedy`.
    #[arg(long, default_value = "thompson")]
    policy: String,
    /// Exploration rate of epsilon-greedy.
    #[arg(long, default_value_t = 0.1)]
    epsilon: f64,
    /// The policy sees the results every `batch` pulls.
    #[arg(long, default_value_t = 1)]
    batch: u64,
}

fn print_json(value: &impl Serialize) -> mia::Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| mia::Error::invalid(format!("cannot write JSON: {e}")))?;
    #[allow(clippy::print_stdout)] // The command's output is its JSON.
    {
        println!("{text}");
    }
    Ok(())
}

/// `mia stats`.
pub(crate) fn run(args: &StatsArgs) -> mia::Result<()> {
    match &args.command {
        Some(StatsCommand::SampleSize {
            baseline,
            mde,
            alpha,
            power,
        }) => {
            let s = stats::sample_size_two_proportions(*baseline, *mde, *alpha, *power)?;
            print_json(&serde_json::json!({
                "baseline": baseline,
                "mde": mde,
                "alpha": alpha,
                "power": power,
                "per_arm": s.per_arm,
                "total": s.per_arm.saturating_mul(2),
                "exact": s.exact,
            }))
        }
        Some(StatsCommand::Interval {
            successes,
            trials,
            method,
            alpha,
        }) => {
            let [lower, upper] = stats::proportion_interval(*successes, *trials, *alpha, *method)?;
            print_json(&serde_json::json!({
                "successes": successes,
                "trials": trials,
                "estimate": *successes as f64 / *trials as f64,
                "method": method,
                "alpha": alpha,
                "lower": lower,
                "upper": upper,
            }))
        }
        None => {
            let text = match args.input.as_deref() {
                Some(path) if path.as_os_str() != "-" => {
                    std::fs::read_to_string(path).map_err(|e| {
                        mia::Error::invalid(format!("cannot read {}: {e}", path.display()))
                    })?
                }
                _ => {
                    let mut s = String::new();
                    std::io::stdin()
                        .read_to_string(&mut s)
                        .map_err(|e| mia::Error::invalid(format!("cannot read stdin: {e}")))?;
                    s
                }
            };
            let input: StatsInput = serde_json::from_str(&text)
                .map_err(|e| mia::Error::invalid(format!("invalid experiment JSON: {e}")))?;
            print_json(&report::analyze(&input)?)
        }
    }
}

/// `mia bandit-sim`.
pub(crate) fn run_bandit_sim(args: &BanditSimArgs) -> mia::Result<()> {
    let policy = match Policy::from_name(&args.policy)? {
        Policy::EpsilonGreedy { .. } => Policy::EpsilonGreedy {
            epsilon: args.epsilon,
        },
        other => other,
    };
    let summary = bandit::simulate(&policy, &args.arms, args.pulls, args.seeds, args.batch)?;
    print_json(&summary)
}
