//! [`FunnelResult`] and the tallies the workers fill.

use serde::{Deserialize, Serialize};

use super::table::FastMap;

/// Users who reached one step (or further).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepCount {
    /// The step's event name.
    pub name: String,
    /// Users who reached this step or a later one.
    pub count: u64,
}

/// One bin of the time-to-convert histogram: users whose time is in `[from_s, to_s)` (the
/// last bin also holds `to_s`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistogramBin {
    /// Lower bound in seconds, inclusive.
    pub from_s: f64,
    /// Upper bound in seconds, exclusive.
    pub to_s: f64,
    /// Users in the bin.
    pub users: u64,
}

/// The distribution of the time to convert of users who completed every step (each user's
/// fastest completing attempt; see the [module docs](super#semantics)).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimeToConvert {
    /// Users who completed the funnel.
    pub users: u64,
    /// The median in seconds (the mean of the two middle values for an even count).
    pub median_s: f64,
    /// The mean in seconds.
    pub mean_s: f64,
    /// The fastest, in seconds.
    pub min_s: f64,
    /// The slowest, in seconds.
    pub max_s: f64,
    /// Equal-width bins from the fastest to the slowest time (at most the requested number:
    /// bins are whole microseconds wide, so a narrow range gets fewer).
    pub histogram: Vec<HistogramBin>,
}

const MICROS: f64 = 1_000_000.0;

impl TimeToConvert {
    /// The distribution of `times` (microseconds; reordered in place) with up to `bins`
    /// histogram bins; `None` when there is no time.
    pub fn from_micros(times: &mut [i64], bins: usize) -> Option<Self> {
        let n = times.len();
        if n == 0 {
            return None;
        }
        let mid = n / 2;
        let (lower, upper, _) = times.select_nth_unstable(mid);
        let upper = *upper;
        let median_us = if n % 2 == 1 {
            upper as f64
        } else {
            let below = lower.iter().copied().max().unwrap_or(upper);
            (below as f64 + upper as f64) / 2.0
        };
        let min = times.iter().copied().min().unwrap_or(0);
        let max = times.iter().copied().max().unwrap_or(0);
        let sum: i128 = times.iter().map(|&t| i128::from(t)).sum();
        let mut histogram = Vec::new();
        if bins > 0 {
            let span = i128::from(max) - i128::from(min) + 1;
            let width = ((span + bins as i128 - 1) / bins as i128).max(1);
            let used = ((span + width - 1) / width) as usize;
            let mut counts = vec![0u64; used];
            for &t in times.iter() {
                let bin = ((i128::from(t) - i128::from(min)) / width) as usize;
                counts[bin.min(used - 1)] += 1;
            }
            histogram = counts
                .into_iter()
                .enumerate()
                .map(|(i, users)| {
                    let from = i128::from(min) + i as i128 * width;
                    HistogramBin {
                        from_s: from as f64 / MICROS,
                        to_s: (from + width) as f64 / MICROS,
                        users,
                    }
                })
                .collect();
            if let Some(last) = histogram.last_mut() {
                last.to_s = max as f64 / MICROS;
            }
        }
        Some(Self {
            users: n as u64,
            median_s: median_us / MICROS,
            mean_s: (sum as f64 / n as f64) / MICROS,
            min_s: min as f64 / MICROS,
            max_s: max as f64 / MICROS,
            histogram,
        })
    }
}

/// One group of a broken-down funnel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BreakdownGroup {
    /// The column's value (the empty string for a missing value).
    pub breakdown_value: String,
    /// Users per step, as in [`FunnelResult::steps`].
    pub steps: Vec<StepCount>,
    /// The median time to convert in seconds, `None` when nobody completed the funnel.
    pub median_time_to_convert_s: Option<f64>,
    /// The distribution of the time to convert.
    pub time_to_convert: Option<TimeToConvert>,
}

/// What [`run`](super::run) found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FunnelResult {
    /// Users per step, over all users: `steps[k].count` reached step `k` or further.
    pub steps: Vec<StepCount>,
    /// The median time to convert in seconds, `None` when nobody completed the funnel.
    pub median_time_to_convert_s: Option<f64>,
    /// The distribution of the time to convert.
    pub time_to_convert: Option<TimeToConvert>,
    /// One group per breakdown value that has at least one user in the funnel, sorted by
    /// value; empty without a breakdown.
    pub breakdown: Vec<BreakdownGroup>,
}

/// Users per furthest level, per group, and the times of the completers, from one worker.
#[derive(Debug)]
pub(crate) struct Tally {
    /// Levels per group: index `group * (steps + 1) + level`.
    dense: Vec<u64>,
    /// The same for groups beyond the dense range (a breakdown with very many values).
    sparse: FastMap<u32, Vec<u64>>,
    dense_groups: u32,
    steps: usize,
    pub(crate) times: Vec<(u32, i64)>,
}

const DENSE_GROUPS: usize = 1 << 16;

impl Tally {
    pub(crate) fn new(groups: usize, steps: usize) -> Self {
        let dense_groups = groups.clamp(1, DENSE_GROUPS);
        Self {
            dense: vec![0; dense_groups * (steps + 1)],
            sparse: FastMap::default(),
            dense_groups: dense_groups as u32,
            steps,
            times: Vec::new(),
        }
    }

    /// Records one user: furthest `level` (1-based; 0 for nobody) and, if they completed, the
    /// time of their fastest completing attempt.
    #[inline]
    pub(crate) fn record(&mut self, group: u32, level: usize, time: Option<i64>) {
        if level == 0 {
            return;
        }
        let width = self.steps + 1;
        if group < self.dense_groups {
            self.dense[group as usize * width + level] += 1;
        } else {
            self.sparse.entry(group).or_insert_with(|| vec![0; width])[level] += 1;
        }
        if let Some(t) = time {
            self.times.push((group, t));
        }
    }

    pub(crate) fn merge(&mut self, other: Tally) {
        for (a, b) in self.dense.iter_mut().zip(other.dense) {
            *a += b;
        }
        for (group, levels) in other.sparse {
            let mine = self
                .sparse
                .entry(group)
                .or_insert_with(|| vec![0; levels.len()]);
            for (a, b) in mine.iter_mut().zip(levels) {
                *a += b;
            }
        }
        self.times.extend(other.times);
    }

    /// Per-group level counts, sorted by group.
    fn groups(&self) -> Vec<(u32, Vec<u64>)> {
        let width = self.steps + 1;
        let mut out: Vec<(u32, Vec<u64>)> = self
            .dense
            .chunks(width)
            .enumerate()
            .filter(|(_, c)| c.iter().any(|&n| n > 0))
            .map(|(g, c)| (g as u32, c.to_vec()))
            .collect();
        out.extend(self.sparse.iter().map(|(g, c)| (*g, c.clone())));
        out.sort_unstable_by_key(|(g, _)| *g);
        out
    }

    /// The result: totals, and one group per value when `dictionary` is given.
    pub(crate) fn finish(
        mut self,
        steps: &[String],
        bins: usize,
        dictionary: Option<&[String]>,
    ) -> FunnelResult {
        let groups = self.groups();
        let mut total_levels = vec![0u64; self.steps + 1];
        for (_, levels) in &groups {
            for (a, b) in total_levels.iter_mut().zip(levels) {
                *a += b;
            }
        }
        let mut all: Vec<i64> = self.times.iter().map(|&(_, t)| t).collect();
        let total_time = TimeToConvert::from_micros(&mut all, bins);
        drop(all);
        let mut breakdown = Vec::new();
        if let Some(dictionary) = dictionary {
            self.times.sort_unstable();
            let mut rest = &self.times[..];
            for (group, levels) in &groups {
                let end = rest.partition_point(|&(g, _)| g <= *group);
                let skip = rest.partition_point(|&(g, _)| g < *group);
                let mut times: Vec<i64> = rest[skip..end].iter().map(|&(_, t)| t).collect();
                rest = &rest[end..];
                let time = TimeToConvert::from_micros(&mut times, bins);
                breakdown.push(BreakdownGroup {
                    breakdown_value: dictionary.get(*group as usize).cloned().unwrap_or_default(),
                    steps: step_counts(steps, levels),
                    median_time_to_convert_s: time.as_ref().map(|t| t.median_s),
                    time_to_convert: time,
                });
            }
        }
        FunnelResult {
            steps: step_counts(steps, &total_levels),
            median_time_to_convert_s: total_time.as_ref().map(|t| t.median_s),
            time_to_convert: total_time,
            breakdown,
        }
    }
}

/// Users at each furthest level to users at each step or further.
fn step_counts(steps: &[String], levels: &[u64]) -> Vec<StepCount> {
    let mut at_or_beyond = 0;
    let mut counts: Vec<StepCount> = steps
        .iter()
        .enumerate()
        .rev()
        .map(|(k, name)| {
            at_or_beyond += levels.get(k + 1).copied().unwrap_or(0);
            StepCount {
                name: name.clone(),
                count: at_or_beyond,
            }
        })
        .collect();
    counts.reverse();
    counts
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn median_of_an_even_count_is_the_mean_of_the_middle_two() {
        let mut t = [4_000_000, 1_000_000, 3_000_000, 2_000_000];
        let d = TimeToConvert::from_micros(&mut t, 0).unwrap();
        assert_eq!(d.median_s, 2.5);
        assert_eq!(d.mean_s, 2.5);
        assert_eq!((d.min_s, d.max_s, d.users), (1.0, 4.0, 4));
        assert!(d.histogram.is_empty());
        let mut t = [5_000_000, 1_000_000, 9_000_000];
        assert_eq!(TimeToConvert::from_micros(&mut t, 0).unwrap().median_s, 5.0);
        assert!(TimeToConvert::from_micros(&mut [], 10).is_none());
    }

    #[test]
    fn histogram_bins_cover_every_time_once() {
        let mut t: Vec<i64> = (0..100).map(|i| i * 1_000_000).collect();
        let d = TimeToConvert::from_micros(&mut t, 10).unwrap();
        assert_eq!(d.histogram.len(), 10);
        assert!(d.histogram.iter().all(|b| b.users == 10));
        assert_eq!(d.histogram[0].from_s, 0.0);
        assert_eq!(d.histogram[9].to_s, 99.0);
        // A single value makes a single bin.
        let d = TimeToConvert::from_micros(&mut [7], 10).unwrap();
        assert_eq!(d.histogram.len(), 1);
        assert_eq!(d.histogram[0].users, 1);
    }

    #[test]
    fn levels_become_cumulative_step_counts() {
        let steps: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let mut tally = Tally::new(1, 3);
        tally.record(0, 1, None);
        tally.record(0, 3, Some(5));
        tally.record(0, 3, Some(7));
        tally.record(0, 0, None);
        let r = tally.finish(&steps, 0, None);
        let counts: Vec<u64> = r.steps.iter().map(|s| s.count).collect();
        assert_eq!(counts, [3, 2, 2]);
        assert_eq!(r.median_time_to_convert_s, Some(6e-6));
    }
}
