//! Run with: cargo run --release -p mia-experiments --example regret -- [pulls] [seeds]
//!
//! The regret of every bandit policy on arms p = (0.04, 0.05, 0.06), updated every pull and
//! every 1,000 pulls: the figures quoted in the crate's README.

use mia_experiments::bandit::{Policy, RegretSummary, simulate};

/// Regret of each policy and cadence; a function so a test can run it small.
fn regret_table(pulls: u64, seeds: u64) -> mia_experiments::Result<Vec<(u64, RegretSummary)>> {
    let arms = [0.04, 0.05, 0.06];
    let mut out = Vec::new();
    for policy in [
        Policy::Thompson,
        Policy::KlUcb,
        Policy::EpsilonGreedy { epsilon: 0.1 },
    ] {
        for batch in [1, 1000] {
            out.push((batch, simulate(&policy, &arms, pulls, seeds, batch)?));
        }
    }
    Ok(out)
}

fn main() -> mia_experiments::Result<()> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u64>().ok());
    let pulls = args.next().flatten().unwrap_or(100_000);
    let seeds = args.next().flatten().unwrap_or(200);
    for (batch, r) in regret_table(pulls, seeds)? {
        #[allow(clippy::print_stdout)] // An example's output is its point.
        {
            println!(
                "{:<15} batch {:>5}: mean {:>8.1}  median {:>8.1}  p90 {:>8.1}",
                r.policy, batch, r.mean_regret, r.median_regret, r.p90_regret
            );
        }
    }
    Ok(())
}
