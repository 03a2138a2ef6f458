//! Journeys: a campaign's follow-ups as data. A [`Journey`] is a list of named steps — send,
//! wait, wait for an event (with a timeout), exit — that the agent walks per contact, one
//! outbox job per send or wait-for, so a journey survives a crash like any other job.
//!
//! ```
//! use mia_core::Journey;
//!
//! let journey: Journey = serde_json::from_str(r#"{
//!   "steps": [
//!     { "name": "intro",     "kind": "send" },
//!     { "name": "pause",     "kind": "wait", "duration": "48h" },
//!     { "name": "check",     "kind": "wait_for", "event": "clicked", "timeout": "72h",
//!       "then": "done", "otherwise": "follow_up" },
//!     { "name": "follow_up", "kind": "send", "variants": ["B"], "next": "done" },
//!     { "name": "done",      "kind": "exit" }
//!   ]
//! }"#).unwrap();
//! journey.validate().unwrap();
//! ```

use std::collections::{BTreeSet, HashMap};

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::event::EventKind;
use crate::ids::VariantId;

/// The most steps a journey may have.
pub const MAX_JOURNEY_STEPS: usize = 32;

/// How many times a contact may go round a journey's loops before the journey ends for them.
pub const MAX_JOURNEY_ROUNDS: u32 = 64;

/// Set in [`Job::step`](crate::Job) of the bookkeeping job that records how a
/// [`StepAction::WaitFor`] was decided (see [`JourneyPosition::decision_step`]).
const DECISION_BIT: u32 = 1 << 31;

/// Where the occurrence of a recurring campaign starts in [`Job::step`](crate::Job).
const OCCURRENCE_SHIFT: u32 = 16;

/// The round and index part of a step.
const IN_OCCURRENCE_MASK: u32 = (1 << OCCURRENCE_SHIFT) - 1;

/// A campaign's steps per contact. The first step is `start`, or the first in the list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Journey {
    /// The name of the first step; the first step of the list when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// The steps, in order: a step without an explicit `next` continues with the one after it.
    pub steps: Vec<JourneyStep>,
}

/// One named step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JourneyStep {
    /// Unique within the journey; other steps refer to it by this name.
    pub name: String,
    /// What the step does.
    #[serde(flatten)]
    pub action: StepAction,
}

/// What a step does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum StepAction {
    /// Sends one of the campaign's approved variants, through the send policy like every send.
    Send {
        /// The variants this step may send; empty means any approved variant.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        variants: Vec<VariantId>,
        /// The step after the send; the next in the list when absent (the end after the last).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<String>,
    },
    /// Waits this long, then goes on.
    Wait {
        /// How long (`"48h"`, `"PT48H"`); must be positive.
        duration: SignedDuration,
        /// The step after the wait; the next in the list when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<String>,
    },
    /// Waits for the contact to do something in this campaign, at most `timeout`. The event
    /// counts from the send before this step on (also during a `wait` in between); the `then`
    /// branch starts when the event came, but not before this step began.
    WaitFor {
        /// What they should do.
        event: JourneyEvent,
        /// How long to wait (`"72h"`); must be positive.
        timeout: SignedDuration,
        /// Where to go when they did it in time.
        then: String,
        /// Where to go when the timeout ran out first.
        otherwise: String,
    },
    /// The journey ends for this contact.
    Exit,
}

/// An event a [`StepAction::WaitFor`] step waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JourneyEvent {
    /// They replied to one of the campaign's messages.
    Replied,
    /// They opened a link in one.
    Clicked,
    /// They bought after one.
    Converted,
    /// They read one.
    Read,
    /// They withdrew consent (STOP, or an opt-out in other words). The journey ends for them
    /// on this branch: the `then` of a wait for it may only lead to waits and exits, never to
    /// a send (checked by [`Journey::validate`]), and no message reaches them after it anyway.
    OptedOut,
}

impl JourneyEvent {
    /// Whether `kind` is this event.
    pub fn matches(self, kind: &EventKind) -> bool {
        matches!(
            (self, kind),
            (JourneyEvent::Replied, EventKind::Replied)
                | (JourneyEvent::Clicked, EventKind::Clicked)
                | (JourneyEvent::Converted, EventKind::Converted { .. })
                | (JourneyEvent::Read, EventKind::Read)
                | (JourneyEvent::OptedOut, EventKind::OptedOut)
        )
    }
}

/// Where a contact stands in a campaign: the occurrence of a recurring campaign, a step index,
/// and how many times they went round a loop to get there. Encoded in
/// [`Job::step`](crate::Job) as `occurrence << 16 | (round * MAX_JOURNEY_STEPS + index)`, so
/// every visit of a step, in every occurrence, has its own idempotency key; a campaign that
/// does not recur is occurrence 0, whose steps are encoded as before occurrences existed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct JourneyPosition {
    /// Times round a loop (0 on the first pass).
    pub round: u32,
    /// The step's index in [`Journey::steps`] (0 for a campaign without a journey).
    pub index: usize,
    /// The occurrence of a recurring campaign (0 for the first, and for a campaign that does
    /// not recur); at most [`MAX_OCCURRENCES`](crate::MAX_OCCURRENCES).
    pub occurrence: u32,
}

impl JourneyPosition {
    /// The [`Job::step`](crate::Job) of the job at this position.
    pub fn step(self) -> u32 {
        // Round and index are bounded by the constants above (below 2^11), the occurrence by
        // MAX_OCCURRENCES (below 2^15), so the decision bit stays free.
        (self.occurrence.min(crate::MAX_OCCURRENCES) << OCCURRENCE_SHIFT)
            | (self.round * MAX_JOURNEY_STEPS as u32 + self.index as u32)
    }

    /// The step of the bookkeeping job recording how the wait-for at this position was decided.
    pub fn decision_step(self) -> u32 {
        self.step() | DECISION_BIT
    }

    /// The bits of a [`Job::step`](crate::Job) that [`within_occurrence`](Self::within_occurrence)
    /// keeps: all but the occurrence. A store groups steps with `step & WITHIN_OCCURRENCE`.
    pub const WITHIN_OCCURRENCE: u32 = DECISION_BIT | IN_OCCURRENCE_MASK;

    /// A job's `step` with its occurrence cleared: the same for every occurrence's visit of
    /// one position (and for its decision record, which keeps its decision bit). The step of
    /// the position in occurrence 0.
    pub fn within_occurrence(step: u32) -> u32 {
        step & Self::WITHIN_OCCURRENCE
    }

    /// The position a job's step encodes; `None` for a decision record.
    pub fn from_step(step: u32) -> Option<Self> {
        if step & DECISION_BIT != 0 {
            return None;
        }
        let in_occurrence = step & IN_OCCURRENCE_MASK;
        Some(Self {
            round: in_occurrence / MAX_JOURNEY_STEPS as u32,
            index: (in_occurrence % MAX_JOURNEY_STEPS as u32) as usize,
            occurrence: step >> OCCURRENCE_SHIFT,
        })
    }

    /// The occurrence a job's `step` belongs to (decision records included).
    pub fn occurrence_of(step: u32) -> u32 {
        (step & !DECISION_BIT) >> OCCURRENCE_SHIFT
    }

    /// The index in [`Journey::steps`] of the step a job's `step` belongs to, decision records
    /// included (a decision record belongs to its wait-for step): the step an
    /// [`Event::step`](crate::Event) names. `0` for a campaign without a journey.
    pub fn step_index(step: u32) -> u32 {
        (step & IN_OCCURRENCE_MASK) % MAX_JOURNEY_STEPS as u32
    }

    /// The position of a decision record's wait-for step.
    pub fn from_decision_step(step: u32) -> Option<Self> {
        if step & DECISION_BIT == 0 {
            return None;
        }
        Self::from_step(step & !DECISION_BIT)
    }
}

/// The job to queue next: where, and not before when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlannedStep {
    /// The position of the job (a send or a wait-for step).
    pub position: JourneyPosition,
    /// When it becomes due: after any waits on the way, and for a wait-for, its timeout.
    pub due_at: Timestamp,
}

impl Journey {
    /// The index of the step named `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.name == name)
    }

    /// The index of the first step.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when `start` names no step or there are no steps.
    pub fn start_index(&self) -> Result<usize> {
        match &self.start {
            Some(name) => self.index_of(name).ok_or_else(|| {
                Error::invalid(format!(
                    "journey start {name:?} is not a step of the journey"
                ))
            }),
            None if self.steps.is_empty() => Err(Error::invalid("journey has no steps")),
            None => Ok(0),
        }
    }

    /// The step after a send or a wait at `index`: its `next`, else the one after it in the
    /// list. `None` at the end of the list.
    fn next_of(&self, index: usize, next: Option<&String>) -> Option<usize> {
        match next {
            Some(name) => self.index_of(name),
            None => (index + 1 < self.steps.len()).then_some(index + 1),
        }
    }

    /// The step names each step can go to (unknown names included, for validation).
    fn targets(&self, index: usize) -> Vec<Result<usize, String>> {
        let resolve = |name: &String| self.index_of(name).ok_or_else(|| name.clone());
        let Some(step) = self.steps.get(index) else {
            return Vec::new();
        };
        match &step.action {
            StepAction::Send { next, .. } | StepAction::Wait { next, .. } => match next {
                Some(name) => vec![resolve(name)],
                None => self.next_of(index, None).map(Ok).into_iter().collect(),
            },
            StepAction::WaitFor {
                then, otherwise, ..
            } => vec![resolve(then), resolve(otherwise)],
            StepAction::Exit => Vec::new(),
        }
    }

    /// Where a contact goes after the send at `position`: `None` when the journey ends.
    pub fn after_send(&self, position: JourneyPosition, now: Timestamp) -> Option<PlannedStep> {
        match self.steps.get(position.index).map(|s| &s.action) {
            Some(StepAction::Send { next, .. }) => {
                let target = self.next_of(position.index, next.as_ref())?;
                self.plan(Some(position), target, now)
            }
            _ => None,
        }
    }

    /// Where a contact goes after the wait-for at `position` was decided (`happened`: the
    /// event came in time). `None` when the journey ends.
    pub fn after_wait_for(
        &self,
        position: JourneyPosition,
        happened: bool,
        now: Timestamp,
    ) -> Option<PlannedStep> {
        match self.steps.get(position.index).map(|s| &s.action) {
            Some(StepAction::WaitFor {
                then, otherwise, ..
            }) => {
                let target = self.index_of(if happened { then } else { otherwise })?;
                self.plan(Some(position), target, now)
            }
            _ => None,
        }
    }

    /// The first job of the journey, for a contact starting at `start_at`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when the start step does not exist.
    pub fn first(&self, start_at: Timestamp) -> Result<Option<PlannedStep>> {
        self.first_of(0, start_at)
    }

    /// The first job of the journey in `occurrence` of a recurring campaign.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when the start step does not exist.
    pub fn first_of(&self, occurrence: u32, start_at: Timestamp) -> Result<Option<PlannedStep>> {
        let start = JourneyPosition {
            occurrence,
            ..JourneyPosition::default()
        };
        Ok(self.plan_from(start, None, self.start_index()?, start_at))
    }

    /// The [`Job::step`](crate::Job) of every contact's first job, in occurrence 0 (its
    /// [`within_occurrence`](JourneyPosition::within_occurrence) in every occurrence): where a
    /// report counts a campaign's audience. Not always step 0: a journey may start with a wait
    /// or name another step as its start. `None` when no job would start it (its start is not
    /// a step, or it ends before its first job).
    pub fn first_step(&self) -> Option<u32> {
        let first = self.first(Timestamp::UNIX_EPOCH).ok().flatten()?;
        Some(first.position.step())
    }

    /// Walks from `from` to `target` and on through waits (adding their durations) to the next
    /// step that needs a job. Going to a step at or before the current one starts a new round.
    fn plan(
        &self,
        from: Option<JourneyPosition>,
        target: usize,
        base: Timestamp,
    ) -> Option<PlannedStep> {
        self.plan_from(
            from.unwrap_or_default(),
            from.map(|p| p.index),
            target,
            base,
        )
    }

    /// [`plan`](Self::plan) from `from`'s occurrence and round; `current` is the step left
    /// (`None` at the start).
    fn plan_from(
        &self,
        from: JourneyPosition,
        current: Option<usize>,
        target: usize,
        base: Timestamp,
    ) -> Option<PlannedStep> {
        let occurrence = from.occurrence;
        let mut round = from.round;
        let mut current = current;
        let mut index = target;
        let mut at = base;
        // A walk longer than the journey goes round a loop of waits only: it never sends.
        for _ in 0..=self.steps.len() {
            if current.is_some_and(|c| index <= c) {
                round += 1;
            }
            if round >= MAX_JOURNEY_ROUNDS {
                return None;
            }
            let position = JourneyPosition {
                round,
                index,
                occurrence,
            };
            match &self.steps.get(index)?.action {
                StepAction::Send { .. } => {
                    return Some(PlannedStep {
                        position,
                        due_at: at,
                    });
                }
                StepAction::WaitFor { timeout, .. } => {
                    let due_at = at.checked_add(*timeout).unwrap_or(Timestamp::MAX);
                    return Some(PlannedStep { position, due_at });
                }
                StepAction::Wait { duration, next } => {
                    at = at.checked_add(*duration).unwrap_or(Timestamp::MAX);
                    current = Some(index);
                    index = self.next_of(index, next.as_ref())?;
                }
                StepAction::Exit => return None,
            }
        }
        None
    }

    /// Checks the journey before a campaign with it starts.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the step at fault: no steps or more than
    /// [`MAX_JOURNEY_STEPS`]; an empty or repeated name; a start that is not a step; a reference
    /// to an unknown step; a wait that is not positive; a step that cannot be reached from the
    /// start; a loop without a wait; no send at all; a send reachable from the `then` branch
    /// of a wait for [`JourneyEvent::OptedOut`].
    pub fn validate(&self) -> Result<()> {
        if self.steps.is_empty() {
            return Err(Error::invalid("journey has no steps"));
        }
        if self.steps.len() > MAX_JOURNEY_STEPS {
            return Err(Error::invalid(format!(
                "journey has {} steps; at most {MAX_JOURNEY_STEPS} are allowed",
                self.steps.len()
            )));
        }
        let mut names = BTreeSet::new();
        for step in &self.steps {
            if step.name.trim().is_empty() {
                return Err(Error::invalid("journey step names must not be empty"));
            }
            if !names.insert(step.name.as_str()) {
                return Err(Error::invalid(format!(
                    "journey step {:?} is defined twice",
                    step.name
                )));
            }
        }
        let start = self.start_index()?;
        for (index, step) in self.steps.iter().enumerate() {
            for target in self.targets(index) {
                if let Err(unknown) = target {
                    return Err(Error::invalid(format!(
                        "journey step {:?} refers to unknown step {unknown:?}",
                        step.name
                    )));
                }
            }
            let wait = match &step.action {
                StepAction::Wait { duration, .. } => Some(("duration", duration)),
                StepAction::WaitFor { timeout, .. } => Some(("timeout", timeout)),
                _ => None,
            };
            if let Some((field, d)) = wait
                && !d.is_positive()
            {
                return Err(Error::invalid(format!(
                    "journey step {:?}: {field} must be positive, got {d}",
                    step.name
                )));
            }
        }
        // Reachability from the start.
        let mut seen = vec![false; self.steps.len()];
        let mut stack = vec![start];
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut seen[i], true) {
                continue;
            }
            stack.extend(self.targets(i).into_iter().flatten());
        }
        if let Some(i) = seen.iter().position(|s| !s) {
            return Err(Error::invalid(format!(
                "journey step {:?} is unreachable from the start step {:?}",
                self.steps[i].name, self.steps[start].name
            )));
        }
        for step in &self.steps {
            if let StepAction::WaitFor {
                event: JourneyEvent::OptedOut,
                then,
                ..
            } = &step.action
                && let Some(send) = self.index_of(then).and_then(|i| self.send_reachable(i))
            {
                return Err(Error::invalid(format!(
                    "journey step {:?}: its opted_out branch {then:?} leads to send step {:?}; \
                     after an opt-out only waits and exits may follow",
                    step.name, self.steps[send].name
                )));
            }
        }
        if let Some(i) = self.loop_without_wait() {
            return Err(Error::invalid(format!(
                "journey step {:?} is on a loop without a wait; every loop needs a wait or wait_for",
                self.steps[i].name
            )));
        }
        if !self
            .steps
            .iter()
            .any(|s| matches!(s.action, StepAction::Send { .. }))
        {
            return Err(Error::invalid("journey has no send step"));
        }
        Ok(())
    }

    /// The first send step reachable from the step at `from` (itself included), if any.
    fn send_reachable(&self, from: usize) -> Option<usize> {
        let mut seen = vec![false; self.steps.len()];
        let mut stack = vec![from];
        while let Some(i) = stack.pop() {
            if std::mem::replace(seen.get_mut(i)?, true) {
                continue;
            }
            if matches!(self.steps[i].action, StepAction::Send { .. }) {
                return Some(i);
            }
            stack.extend(self.targets(i).into_iter().flatten());
        }
        None
    }

    /// A step on a cycle of steps none of which waits, if there is one (a depth-first search
    /// over the edges leaving sends; waits and exits break every cycle through them).
    fn loop_without_wait(&self) -> Option<usize> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Open,
            Done,
        }
        let edges: HashMap<usize, Vec<usize>> = (0..self.steps.len())
            .map(|i| {
                let out = match self.steps[i].action {
                    StepAction::Send { .. } => self.targets(i).into_iter().flatten().collect(),
                    _ => Vec::new(),
                };
                (i, out)
            })
            .collect();
        let mut marks = vec![Mark::New; self.steps.len()];
        for root in 0..self.steps.len() {
            if marks[root] != Mark::New {
                continue;
            }
            // (node, next edge to try)
            let mut stack = vec![(root, 0usize)];
            marks[root] = Mark::Open;
            while let Some((node, edge)) = stack.last_mut() {
                let node = *node;
                let out = edges.get(&node).map(Vec::as_slice).unwrap_or(&[]);
                match out.get(*edge) {
                    Some(&to) => {
                        *edge += 1;
                        match marks[to] {
                            Mark::Open => return Some(to),
                            Mark::New => {
                                marks[to] = Mark::Open;
                                stack.push((to, 0));
                            }
                            Mark::Done => {}
                        }
                    }
                    None => {
                        marks[node] = Mark::Done;
                        stack.pop();
                    }
                }
            }
        }
        None
    }

    /// The variants the send at `index` may use, out of `approved` (all of them when the step
    /// names none).
    pub fn variants_for(&self, index: usize, approved: &[VariantId]) -> Vec<VariantId> {
        match self.steps.get(index).map(|s| &s.action) {
            Some(StepAction::Send { variants, .. }) if !variants.is_empty() => approved
                .iter()
                .filter(|v| variants.contains(v))
                .cloned()
                .collect(),
            _ => approved.to_vec(),
        }
    }

    /// Checks that every variant a send step names is among `approved`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the step and the variant.
    pub fn check_variants(&self, approved: &[VariantId]) -> Result<()> {
        for step in &self.steps {
            if let StepAction::Send { variants, .. } = &step.action
                && let Some(v) = variants.iter().find(|v| !approved.contains(v))
            {
                return Err(Error::invalid(format!(
                    "journey step {:?} sends variant {v}, which is not an approved variant of the campaign",
                    step.name
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three_steps() -> Journey {
        serde_json::from_str(
            r#"{ "steps": [
                { "name": "intro", "kind": "send" },
                { "name": "pause", "kind": "wait", "duration": "48h" },
                { "name": "check", "kind": "wait_for", "event": "clicked", "timeout": "72h",
                  "then": "done", "otherwise": "follow_up" },
                { "name": "follow_up", "kind": "send", "next": "done" },
                { "name": "done", "kind": "exit" }
            ] }"#,
        )
        .unwrap()
    }

    fn err(j: &Journey) -> String {
        match j.validate() {
            Err(Error::InvalidInput(m)) => m,
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }

    fn send(name: &str, next: Option<&str>) -> JourneyStep {
        JourneyStep {
            name: name.into(),
            action: StepAction::Send {
                variants: Vec::new(),
                next: next.map(Into::into),
            },
        }
    }

    #[test]
    fn a_valid_journey_round_trips_through_json() {
        let j = three_steps();
        j.validate().unwrap();
        let back: Journey = serde_json::from_str(&serde_json::to_string(&j).unwrap()).unwrap();
        assert_eq!(back, j);
    }

    #[test]
    fn unknown_references_name_the_step() {
        let mut j = three_steps();
        j.steps[3] = send("follow_up", Some("nowhere"));
        let m = err(&j);
        assert!(
            m.contains("\"follow_up\"") && m.contains("\"nowhere\""),
            "{m}"
        );
    }

    #[test]
    fn unreachable_steps_are_rejected() {
        let mut j = three_steps();
        j.steps.push(send("orphan", Some("done")));
        let m = err(&j);
        assert!(m.contains("\"orphan\"") && m.contains("unreachable"), "{m}");
    }

    #[test]
    fn loops_without_a_wait_are_rejected_and_loops_with_one_are_not() {
        let j = Journey {
            start: None,
            steps: vec![send("a", Some("b")), send("b", Some("a"))],
        };
        let m = err(&j);
        assert!(m.contains("loop without a wait"), "{m}");
        let mut with_wait = three_steps();
        with_wait.steps[3] = send("follow_up", Some("pause"));
        with_wait.validate().unwrap();
    }

    #[test]
    fn a_start_that_is_not_a_step_is_rejected() {
        let mut j = three_steps();
        j.start = Some("begin".into());
        let m = err(&j);
        assert!(m.contains("\"begin\""), "{m}");
        // A start later in the list leaves the steps before it unreachable.
        j.start = Some("check".into());
        let m = err(&j);
        assert!(m.contains("\"intro\"") && m.contains("unreachable"), "{m}");
    }

    #[test]
    fn too_many_steps_duplicates_and_empty_journeys_are_rejected() {
        let steps: Vec<JourneyStep> = (0..=MAX_JOURNEY_STEPS)
            .map(|i| send(&format!("s{i}"), None))
            .collect();
        let m = err(&Journey { start: None, steps });
        assert!(m.contains("at most"), "{m}");
        let m = err(&Journey {
            start: None,
            steps: vec![send("a", None), send("a", None)],
        });
        assert!(m.contains("\"a\" is defined twice"), "{m}");
        assert!(
            err(&Journey {
                start: None,
                steps: vec![]
            })
            .contains("no steps")
        );
        let m = err(&Journey {
            start: None,
            steps: vec![JourneyStep {
                name: "x".into(),
                action: StepAction::Exit,
            }],
        });
        assert!(m.contains("no send"), "{m}");
    }

    #[test]
    fn waits_must_be_positive() {
        let mut j = three_steps();
        j.steps[1].action = StepAction::Wait {
            duration: SignedDuration::ZERO,
            next: None,
        };
        let m = err(&j);
        assert!(m.contains("\"pause\"") && m.contains("duration"), "{m}");
    }

    #[test]
    fn plans_walk_waits_and_branches() {
        let j = three_steps();
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let first = j.first(t0).unwrap().unwrap();
        assert_eq!(first.position, at(0, 0));
        assert_eq!(first.due_at, t0);
        // After the intro: wait 48h, then the wait-for is due at its 72h timeout.
        let check = j.after_send(first.position, t0).unwrap();
        assert_eq!(check.position.index, 2);
        assert_eq!(check.due_at, t0 + SignedDuration::from_hours(120));
        // Clickers exit; the others get the follow-up now, and nothing after it.
        assert_eq!(j.after_wait_for(check.position, true, t0), None);
        let follow = j.after_wait_for(check.position, false, t0).unwrap();
        assert_eq!(follow.position.index, 3);
        assert_eq!(j.after_send(follow.position, t0), None);
    }

    #[test]
    fn loops_start_new_rounds_with_their_own_steps() {
        let mut j = three_steps();
        j.steps[3] = send("follow_up", Some("pause"));
        let t0 = Timestamp::UNIX_EPOCH;
        let follow = at(0, 3);
        let again = j.after_send(follow, t0).unwrap();
        assert_eq!(again.position, at(1, 2));
        assert_ne!(again.position.step(), at(0, 2).step());
        assert_eq!(
            JourneyPosition::from_step(again.position.step()),
            Some(again.position)
        );
        let d = again.position.decision_step();
        assert_eq!(JourneyPosition::from_step(d), None);
        assert_eq!(JourneyPosition::from_decision_step(d), Some(again.position));
        // The loop ends after MAX_JOURNEY_ROUNDS.
        let last = at(MAX_JOURNEY_ROUNDS - 1, 3);
        assert_eq!(j.after_send(last, t0), None);
    }

    #[test]
    fn the_first_step_is_where_the_first_job_is() {
        let mut j = three_steps();
        assert_eq!(j.first_step(), Some(0), "a journey starting with a send");
        // Starting at the wait: the first job is the wait-for after it, at index 2.
        j.start = Some("pause".into());
        assert_eq!(j.first_step(), Some(at(0, 2).step()));
        // Going from the wait back to a step before it starts a new round.
        let back = Journey {
            start: Some("pause".into()),
            steps: vec![
                send("intro", None),
                JourneyStep {
                    name: "pause".into(),
                    action: StepAction::Wait {
                        duration: SignedDuration::from_hours(1),
                        next: Some("intro".into()),
                    },
                },
            ],
        };
        assert_eq!(back.first_step(), Some(at(1, 0).step()));
        j.start = Some("nowhere".into());
        assert_eq!(j.first_step(), None);
        let exit_first = Journey {
            start: None,
            steps: vec![JourneyStep {
                name: "done".into(),
                action: StepAction::Exit,
            }],
        };
        assert_eq!(exit_first.first_step(), None);
        // Every occurrence's visit of a position, and its decision record, keep their step.
        for position in [at(0, 0), at(1, 2), at(MAX_JOURNEY_ROUNDS - 1, 31)] {
            for occurrence in [0, 1, crate::MAX_OCCURRENCES] {
                let visit = JourneyPosition {
                    occurrence,
                    ..position
                };
                assert_eq!(
                    JourneyPosition::within_occurrence(visit.step()),
                    position.step()
                );
                assert_eq!(
                    JourneyPosition::within_occurrence(visit.decision_step()),
                    position.decision_step()
                );
            }
        }
    }

    fn at(round: u32, index: usize) -> JourneyPosition {
        JourneyPosition {
            round,
            index,
            occurrence: 0,
        }
    }

    #[test]
    fn occurrences_have_their_own_steps_and_keep_them_along_the_journey() {
        let j = three_steps();
        let t0 = Timestamp::UNIX_EPOCH;
        // Occurrence 0 is encoded as before occurrences existed.
        assert_eq!(at(1, 2).step(), MAX_JOURNEY_STEPS as u32 + 2);
        let first = j.first_of(5, t0).unwrap().unwrap();
        assert_eq!(first.position.occurrence, 5);
        assert_ne!(
            first.position.step(),
            j.first(t0).unwrap().unwrap().position.step()
        );
        // The next steps stay in occurrence 5, through a wait-for and its decision record.
        let check = j.after_send(first.position, t0).unwrap();
        assert_eq!((check.position.occurrence, check.position.index), (5, 2));
        let d = check.position.decision_step();
        assert_eq!(JourneyPosition::from_decision_step(d), Some(check.position));
        assert_eq!(JourneyPosition::occurrence_of(d), 5);
        assert_eq!(JourneyPosition::step_index(d), 2);
        let follow = j.after_wait_for(check.position, false, t0).unwrap();
        assert_eq!(follow.position.occurrence, 5);
        // The largest occurrence round-trips with the largest round and index.
        let far = JourneyPosition {
            round: MAX_JOURNEY_ROUNDS - 1,
            index: MAX_JOURNEY_STEPS - 1,
            occurrence: crate::MAX_OCCURRENCES,
        };
        assert_eq!(JourneyPosition::from_step(far.step()), Some(far));
        assert_eq!(
            JourneyPosition::from_decision_step(far.decision_step()),
            Some(far)
        );
    }

    #[test]
    fn an_opted_out_branch_may_not_lead_to_a_send() {
        // intro -> check; the opted_out branch goes to `then`, the other to `otherwise`.
        let journey = |then: &str, otherwise: &str| -> Journey {
            serde_json::from_str(&format!(
                r#"{{ "steps": [
                    {{ "name": "intro", "kind": "send" }},
                    {{ "name": "check", "kind": "wait_for", "event": "opted_out",
                       "timeout": "72h", "then": "{then}", "otherwise": "{otherwise}" }},
                    {{ "name": "cool_off", "kind": "wait", "duration": "24h",
                       "next": "follow_up" }},
                    {{ "name": "follow_up", "kind": "send", "next": "done" }},
                    {{ "name": "done", "kind": "exit" }}
                ] }}"#
            ))
            .unwrap()
        };
        // Straight to a send, or to one after a wait: refused, naming both steps.
        for (then, otherwise) in [("follow_up", "cool_off"), ("cool_off", "done")] {
            let m = err(&journey(then, otherwise));
            assert!(
                m.contains("\"check\"") && m.contains("opted_out") && m.contains("\"follow_up\""),
                "{m}"
            );
        }
        // To an exit (the other branch sending after a wait): fine.
        journey("done", "cool_off").validate().unwrap();
        assert!(JourneyEvent::OptedOut.matches(&EventKind::OptedOut));
        assert!(!JourneyEvent::OptedOut.matches(&EventKind::Blocked));
    }

    #[test]
    fn send_steps_may_name_approved_variants_only() {
        let mut j = three_steps();
        j.steps[3].action = StepAction::Send {
            variants: vec![VariantId::new("B")],
            next: Some("done".into()),
        };
        let approved = [VariantId::new("A"), VariantId::new("B")];
        j.check_variants(&approved).unwrap();
        assert_eq!(j.variants_for(3, &approved), vec![VariantId::new("B")]);
        assert_eq!(j.variants_for(0, &approved), approved.to_vec());
        let m = j.check_variants(&approved[..1]).unwrap_err().to_string();
        assert!(m.contains("\"follow_up\"") && m.contains('B'), "{m}");
    }
}
