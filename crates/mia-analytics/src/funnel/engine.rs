//! The funnel engine: one pass over each user's events.

use std::ops::Range;

use super::result::{FunnelResult, Tally};
use super::spec::{Breakdown, FunnelMode, FunnelSpec};
use super::table::EventTable;
use crate::error::{AnalyticsError, Result};

/// The most steps, and the most exclusions, a funnel may have (they are bit masks).
const MAX_STEPS: usize = 32;

/// No attempt has reached this step.
const NONE: i64 = i64::MIN;

/// Where a user's breakdown group comes from.
#[derive(Clone, Copy)]
enum Groups<'t> {
    None,
    /// Event column codes: the code on the first starting event.
    Event(&'t [u32]),
    /// User column codes.
    User(&'t [u32]),
}

/// A spec compiled against a table: per event name, the steps and exclusions it matches.
struct Plan<'t> {
    steps: usize,
    window: i64,
    mode: FunnelMode,
    /// Per event name: bit `k` set if the name is step `k`.
    step_mask: Vec<u32>,
    /// Per event name: bit `e` set if the name is exclusion `e`.
    exclusion_mask: Vec<u32>,
    /// Per event name: the first step it matches, or `steps` (ties sort by this).
    rank: Vec<u8>,
    /// Per exclusion: (from_step, to_step).
    exclusions: Vec<(u8, u8)>,
    groups: Groups<'t>,
}

/// One attempt, followed event by event (exclusions and the any-order mode).
#[derive(Clone, Copy, Debug)]
struct Attempt {
    start: i64,
    /// Steps reached so far.
    reached: u8,
    /// Any-order mode: the steps covered.
    covered: u32,
    /// Strict mode: false once another event came between two steps.
    progressing: bool,
    dropped: bool,
}

/// Per-worker buffers reused from user to user, so a user costs no allocation.
#[derive(Default)]
struct Scratch {
    ties: Vec<(u8, u32)>,
    attempts: Vec<Attempt>,
}

/// What one user contributes.
struct Outcome {
    /// Furthest step reached (1-based), 0 for none.
    level: usize,
    /// The fastest completing attempt's time, if any.
    time: Option<i64>,
    group: u32,
}

/// Runs a funnel over a table. See the [module docs](super#semantics) for the exact rules.
///
/// # Errors
/// [`AnalyticsError::InvalidQuery`] for no steps or more than 32, an empty step name, a
/// negative window, an exclusion whose steps are not `from_step < to_step < steps.len()` (or
/// more than 32 of them), or a breakdown column the table does not have.
pub fn run(table: &EventTable, spec: &FunnelSpec) -> Result<FunnelResult> {
    let plan = Plan::compile(table, spec)?;
    let (groups, dictionary) = match &spec.breakdown {
        None => (1, None),
        Some(b) => {
            let column = find_column(table, b)?;
            (column.dictionary().len(), Some(column.dictionary()))
        }
    };
    let threads = match spec.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    // Below this, starting threads costs more than it saves.
    let threads = if table.len() < 50_000 { 1 } else { threads };
    let ranges = split_users(table, threads);
    let tally = if ranges.len() <= 1 {
        plan.scan(table, 0..table.user_count(), groups)
    } else {
        std::thread::scope(|scope| {
            let workers: Vec<_> = ranges
                .into_iter()
                .map(|users| {
                    let plan = &plan;
                    scope.spawn(move || plan.scan(table, users, groups))
                })
                .collect();
            let mut total = Tally::new(groups, spec.steps.len());
            for worker in workers {
                let part = worker
                    .join()
                    .map_err(|_| AnalyticsError::Worker("a funnel worker panicked".into()))?;
                total.merge(part);
            }
            Ok::<_, AnalyticsError>(total)
        })?
    };
    Ok(tally.finish(&spec.steps, spec.histogram_bins, dictionary))
}

fn find_column<'t>(table: &'t EventTable, b: &Breakdown) -> Result<&'t super::Column> {
    let (columns, kind) = match b {
        Breakdown::Event(_) => (table.event_columns(), "event"),
        Breakdown::User(_) => (table.user_columns(), "user"),
    };
    columns
        .iter()
        .find(|c| c.name() == b.column())
        .ok_or_else(|| {
            let known: Vec<&str> = columns.iter().map(|c| c.name()).collect();
            AnalyticsError::query(format!(
                "breakdown: no {kind} column {:?} (the table has: {})",
                b.column(),
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ))
        })
}

/// Splits users into up to `threads` ranges with about as many events each.
fn split_users(table: &EventTable, threads: usize) -> Vec<Range<usize>> {
    let users = table.user_count();
    let threads = threads.clamp(1, users.max(1));
    let per = table.len().div_ceil(threads).max(1);
    let mut ranges = Vec::with_capacity(threads);
    let mut start = 0;
    for t in 1..threads {
        let target = per * t;
        let end = table.offsets.partition_point(|&o| o < target).min(users);
        if end > start {
            ranges.push(start..end);
            start = end;
        }
    }
    if start < users || ranges.is_empty() {
        ranges.push(start..users);
    }
    ranges
}

impl<'t> Plan<'t> {
    fn compile(table: &'t EventTable, spec: &FunnelSpec) -> Result<Self> {
        let steps = spec.steps.len();
        if steps == 0 {
            return Err(AnalyticsError::query("a funnel needs at least one step"));
        }
        if steps > MAX_STEPS {
            return Err(AnalyticsError::query(format!(
                "{steps} steps: at most {MAX_STEPS}"
            )));
        }
        if let Some(k) = spec.steps.iter().position(|s| s.is_empty()) {
            return Err(AnalyticsError::query(format!("step {k} has no event name")));
        }
        if spec.window_micros < 0 {
            return Err(AnalyticsError::query("the window must not be negative"));
        }
        if spec.exclusions.len() > MAX_STEPS {
            return Err(AnalyticsError::query(format!(
                "{} exclusions: at most {MAX_STEPS}",
                spec.exclusions.len()
            )));
        }
        for e in &spec.exclusions {
            if e.event.is_empty() || e.from_step >= e.to_step || e.to_step >= steps {
                return Err(AnalyticsError::query(format!(
                    "exclusion {:?} between steps {} and {}: needs an event name and \
                     from_step < to_step < {steps} (0-based)",
                    e.event, e.from_step, e.to_step
                )));
            }
        }
        let names = table.event_names();
        let mut step_mask = vec![0u32; names.len()];
        let mut exclusion_mask = vec![0u32; names.len()];
        let mut rank = vec![steps as u8; names.len()];
        for (id, name) in names.iter().enumerate() {
            for (k, step) in spec.steps.iter().enumerate().rev() {
                if step == name {
                    step_mask[id] |= 1 << k;
                    rank[id] = k as u8;
                }
            }
            for (e, exclusion) in spec.exclusions.iter().enumerate() {
                if &exclusion.event == name {
                    exclusion_mask[id] |= 1 << e;
                }
            }
        }
        let groups = match &spec.breakdown {
            None => Groups::None,
            Some(b @ Breakdown::Event(_)) => Groups::Event(find_column(table, b)?.codes()),
            Some(b @ Breakdown::User(_)) => Groups::User(find_column(table, b)?.codes()),
        };
        Ok(Self {
            steps,
            window: spec.window_micros,
            mode: spec.mode,
            step_mask,
            exclusion_mask,
            rank,
            exclusions: spec
                .exclusions
                .iter()
                .map(|e| (e.from_step as u8, e.to_step as u8))
                .collect(),
            groups,
        })
    }

    /// Tallies the users in `users`.
    fn scan(&self, table: &EventTable, users: Range<usize>, groups: usize) -> Tally {
        let mut tally = Tally::new(groups, self.steps);
        let mut scratch = Scratch::default();
        let fast = self.exclusions.is_empty() && self.mode != FunnelMode::AnyOrder;
        for user in users {
            let rows = table.offsets[user]..table.offsets[user + 1];
            let outcome = match (fast, self.mode) {
                (true, FunnelMode::Ordered) => self.ordered(table, rows, &mut scratch.ties),
                (true, _) => self.strict(table, rows, &mut scratch.ties),
                (false, _) => self.attempts(table, rows, &mut scratch),
            };
            let group = match self.groups {
                Groups::User(codes) => codes.get(user).copied().unwrap_or(0),
                _ => outcome.group,
            };
            tally.record(group, outcome.level, outcome.time);
        }
        tally
    }

    /// Calls `f(row)` for each row of `rows` in funnel order: by time, simultaneous events by
    /// their first step (see the module docs), then by input order.
    #[inline(always)]
    fn in_order(
        &self,
        table: &EventTable,
        rows: Range<usize>,
        ties: &mut Vec<(u8, u32)>,
        mut f: impl FnMut(usize),
    ) {
        let ts = &table.ts[..rows.end];
        let event = &table.event[..rows.end];
        let mut i = rows.start;
        while i < rows.end {
            let t = ts[i];
            let mut j = i + 1;
            while j < rows.end && ts[j] == t {
                j += 1;
            }
            if j == i + 1 {
                f(i);
            } else {
                ties.clear();
                ties.extend((i..j).map(|r| (self.rank[event[r] as usize], r as u32)));
                ties.sort_unstable();
                for &(_, r) in ties.iter() {
                    f(r as usize);
                }
            }
            i = j;
        }
    }

    /// Whether the event at `row` (with step mask `mask`) starts an attempt.
    #[inline(always)]
    fn starts(&self, mask: u32) -> bool {
        match self.mode {
            FunnelMode::AnyOrder => mask != 0,
            _ => mask & 1 != 0,
        }
    }

    /// Keeps the breakdown code of the first starting event (smallest code among
    /// simultaneous ones of the same rank).
    #[inline(always)]
    fn first_touch(&self, first: &mut Option<(i64, u8, u32)>, row: usize, t: i64, rank: u8) {
        let Groups::Event(codes) = self.groups else {
            return;
        };
        let code = codes.get(row).copied().unwrap_or(0);
        match first {
            None => *first = Some((t, rank, code)),
            Some((ft, fr, fc)) if *ft == t && *fr == rank && code < *fc => *fc = code,
            Some(_) => {}
        }
    }

    /// Ordered mode without exclusions: `latest[k]` is the latest start of an attempt that
    /// reached step `k`. A later start at the same step dominates an earlier one (same
    /// position, more window left), so it is the only one worth following.
    fn ordered(
        &self,
        table: &EventTable,
        rows: Range<usize>,
        ties: &mut Vec<(u8, u32)>,
    ) -> Outcome {
        let mut latest = [NONE; MAX_STEPS];
        let mut level = 0usize;
        let mut best = i64::MAX;
        let mut first = None;
        let last = self.steps - 1;
        self.in_order(table, rows, ties, |row| {
            let name = table.event[row] as usize;
            let mask = self.step_mask[name];
            if mask == 0 {
                return;
            }
            let t = table.ts[row];
            // Highest step first, so one event never serves two steps of one attempt.
            let mut bits = mask;
            while bits != 0 {
                let k = (31 - bits.leading_zeros()) as usize;
                bits &= !(1 << k);
                let start = if k == 0 {
                    self.first_touch(&mut first, row, t, self.rank[name]);
                    t
                } else {
                    let s = latest[k - 1];
                    if s == NONE || t > s.saturating_add(self.window) {
                        continue;
                    }
                    s
                };
                if start > latest[k] {
                    latest[k] = start;
                }
                level = level.max(k + 1);
                if k == last {
                    best = best.min(t.saturating_sub(start));
                }
            }
        });
        Outcome {
            level,
            time: (best != i64::MAX).then_some(best),
            group: first.map_or(0, |(_, _, c)| c),
        }
    }

    /// Strict mode without exclusions: as [`ordered`](Self::ordered), but every event
    /// (funnel step or not) ends the attempts it does not advance.
    fn strict(&self, table: &EventTable, rows: Range<usize>, ties: &mut Vec<(u8, u32)>) -> Outcome {
        let mut latest = [NONE; MAX_STEPS];
        let mut alive = 0u32;
        let mut level = 0usize;
        let mut best = i64::MAX;
        let mut first = None;
        let last = self.steps - 1;
        self.in_order(table, rows, ties, |row| {
            let name = table.event[row] as usize;
            let mask = self.step_mask[name];
            let t = table.ts[row];
            let mut next = 0u32;
            let mut bits = mask;
            while bits != 0 {
                let k = (31 - bits.leading_zeros()) as usize;
                bits &= !(1 << k);
                let start = if k == 0 {
                    self.first_touch(&mut first, row, t, self.rank[name]);
                    t
                } else {
                    let s = latest[k - 1];
                    if alive & (1 << (k - 1)) == 0 || t > s.saturating_add(self.window) {
                        continue;
                    }
                    s
                };
                // In place: lower steps, read later, are not written yet.
                latest[k] = start;
                next |= 1 << k;
                level = level.max(k + 1);
                if k == last {
                    best = best.min(t.saturating_sub(start));
                }
            }
            alive = next;
        });
        Outcome {
            level,
            time: (best != i64::MAX).then_some(best),
            group: first.map_or(0, |(_, _, c)| c),
        }
    }

    /// Every mode, with exclusions: each attempt followed on its own until it completes, runs
    /// out of window or the user's events end.
    fn attempts(&self, table: &EventTable, rows: Range<usize>, scratch: &mut Scratch) -> Outcome {
        let Scratch { ties, attempts } = scratch;
        attempts.clear();
        let steps = self.steps as u8;
        let mut level = 0usize;
        let mut best = i64::MAX;
        let mut first = None;
        let mut finish = |a: &Attempt, t: i64| {
            if !a.dropped {
                level = level.max(usize::from(a.reached));
                if a.reached == steps {
                    best = best.min(t.saturating_sub(a.start));
                }
            }
        };
        let dominance = self.exclusions.is_empty();
        self.in_order(table, rows, ties, |row| {
            let name = table.event[row] as usize;
            let mask = self.step_mask[name];
            let excluded = self.exclusion_mask[name];
            let t = table.ts[row];
            let mut kept = 0;
            for i in 0..attempts.len() {
                let mut a = attempts[i];
                if t > a.start.saturating_add(self.window) {
                    finish(&a, t);
                    continue;
                }
                let before = a.reached;
                if a.progressing {
                    match self.mode {
                        FunnelMode::Ordered => {
                            if mask & (1 << a.reached) != 0 {
                                a.reached += 1;
                            }
                        }
                        FunnelMode::Strict => {
                            if mask & (1 << a.reached) != 0 {
                                a.reached += 1;
                            } else {
                                a.progressing = false;
                            }
                        }
                        FunnelMode::AnyOrder => {
                            let free = mask & !a.covered;
                            if free != 0 {
                                a.covered |= free & free.wrapping_neg();
                                a.reached += 1;
                            }
                        }
                    }
                }
                let mut bits = excluded;
                while bits != 0 && !a.dropped {
                    let e = bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    let (from, to) = self.exclusions[e];
                    // Reached `from` before this event, and `to` not even with it.
                    a.dropped = before > from && a.reached <= to;
                }
                if a.reached == steps {
                    finish(&a, t);
                    continue;
                }
                attempts[kept] = a;
                kept += 1;
            }
            attempts.truncate(kept);
            if self.starts(mask) {
                self.first_touch(&mut first, row, t, self.rank[name]);
                // Without exclusions, an attempt that started at the same instant has seen
                // every event this one will, so this one adds nothing.
                if dominance && attempts.iter().any(|a| a.start == t) {
                    return;
                }
                let a = Attempt {
                    start: t,
                    reached: 1,
                    covered: match self.mode {
                        FunnelMode::AnyOrder => mask & mask.wrapping_neg(),
                        _ => 1,
                    },
                    progressing: true,
                    dropped: false,
                };
                if a.reached == steps {
                    finish(&a, t);
                } else {
                    attempts.push(a);
                }
            }
        });
        for a in attempts.iter() {
            finish(a, a.start);
        }
        Outcome {
            level,
            time: (best != i64::MAX).then_some(best),
            group: first.map_or(0, |(_, _, c)| c),
        }
    }
}
