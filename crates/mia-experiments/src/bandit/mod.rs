//! Multi-armed bandits: Thompson sampling, KL-UCB and epsilon-greedy, as an
//! [`Allocator`](mia_core::Allocator) ([`Bandit`]) and in a regret simulator ([`simulate`]).

mod allocator;
mod policy;
mod sampling;
mod sim;

pub use allocator::{Bandit, BanditConfig};
pub use policy::{ArmStats, Policy};
pub use sim::{RegretSummary, simulate};
