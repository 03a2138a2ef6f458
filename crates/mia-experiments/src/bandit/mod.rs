//! Multi-armed bandits: Thompson sampling, KL-UCB and epsilon-greedy, as an
//! [`Allocator`](mia_core::Allocator) ([`Bandit`]) and in a regret simulator ([`simulate`]);
//! the contextual [`LinUcb`]; an [`AttributionWindow`] for delayed rewards.

mod allocator;
mod attribution;
mod linucb;
mod policy;
mod sampling;
mod sim;

pub use allocator::{Bandit, BanditConfig};
pub use attribution::{Attribution, AttributionWindow};
pub use linucb::LinUcb;
pub use policy::{ArmStats, Policy};
pub use sim::{RegretSummary, simulate};
