//! Group commit of a claimed job's writes on the hot connection.
//!
//! Without it, each [`update_job`](mia_core::OutboxStore::update_job) and
//! [`record_attempt`](mia_core::OutboxStore::record_attempt) would be a commit of its own, and
//! at [`Durability::Full`](super::Durability::Full) each commit waits for a flush of the WAL
//! file (a quarter of a millisecond or more): workers that finish jobs one at a time would
//! spend most of their time waiting for flushes, one after the other. Here a call does not run
//! its statement alone: it puts its write in a queue and waits for the hot connection. Whoever
//! gets the connection takes everything queued by then, writes it in one transaction (one
//! statement when it fits in one, which is atomic by itself; one flush for all) and hands each
//! caller its own answer. While that flush runs, the next writes queue up and go together in
//! the next one. A lone worker pays what it paid before; several workers share their flushes.
//!
//! Each write keeps its own meaning: it is fenced by its own claim token and stamped with its
//! own time, a job named twice in one group is written in queue order (the later write sees
//! the earlier one), and a caller whose job was not changed learns why (lost lease or unknown
//! job) exactly as with a statement of its own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use futures_channel::oneshot;
use jiff::Timestamp;
use mia_core::{IdempotencyKey, JobUpdate, VariantId};

/// Splits `group` into rounds in which no job appears twice, keeping queue order: a write
/// goes to the round after the last one that names its job. Returns the indexes of each round.
pub(super) fn rounds(group: &[Pending]) -> Vec<Vec<usize>> {
    let mut rounds: Vec<Vec<usize>> = Vec::new();
    let mut last: std::collections::HashMap<&str, usize> =
        std::collections::HashMap::with_capacity(group.len());
    for (i, p) in group.iter().enumerate() {
        let round = last.get(p.key.as_str()).map_or(0, |r| r + 1);
        last.insert(p.key.as_str(), round);
        if round == rounds.len() {
            rounds.push(Vec::new());
        }
        rounds[round].push(i);
    }
    rounds
}

/// What the writer of a group tells each caller: whether its job changed, or why the group's
/// transaction failed (one error for all).
pub(super) type Answer = Result<bool, std::sync::Arc<crate::error::StoreError>>;

/// What a queued call writes to its claimed job.
pub(super) enum Write {
    /// [`update_job`](mia_core::OutboxStore::update_job).
    Update(JobUpdate),
    /// [`record_attempt`](mia_core::OutboxStore::record_attempt).
    Attempt {
        /// The variant chosen for the send.
        variant: VariantId,
        /// The probability it was chosen with.
        propensity: f64,
    },
}

/// One queued write.
pub(super) struct Pending {
    /// Which call queued it, so a call that gives up can take it back.
    pub(super) id: u64,
    pub(super) key: IdempotencyKey,
    pub(super) claim_token: u64,
    pub(super) write: Write,
    pub(super) now: Timestamp,
    pub(super) reply: oneshot::Sender<Answer>,
}

/// The writes waiting for the hot connection.
#[derive(Default)]
pub(super) struct Queue {
    pending: Mutex<Vec<Pending>>,
    next_id: AtomicU64,
}

impl Queue {
    /// Queues a write; returns its ticket and where its answer will come.
    pub(super) fn push(
        &self,
        key: &IdempotencyKey,
        claim_token: u64,
        write: Write,
        now: Timestamp,
    ) -> (Ticket<'_>, oneshot::Receiver<Answer>) {
        let (reply, answer) = oneshot::channel();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().push(Pending {
            id,
            key: key.clone(),
            claim_token,
            write,
            now,
            reply,
        });
        (Ticket { queue: self, id }, answer)
    }

    /// Takes the write `ticket` stands for back out of the queue; `false` if a writer took it
    /// already (it is written then, or being written, and answered).
    pub(super) fn withdraw(&self, ticket: &Ticket<'_>) -> bool {
        let mut pending = self.lock();
        let before = pending.len();
        pending.retain(|p| p.id != ticket.id);
        pending.len() < before
    }

    /// Everything queued, in queue order, leaving the queue empty.
    pub(super) fn take(&self) -> Vec<Pending> {
        std::mem::take(&mut *self.lock())
    }

    /// How many writes are queued.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.lock().len()
    }

    /// The queue; a panic elsewhere while it was held leaves a valid `Vec`, so a poisoned lock
    /// is used as it is.
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Pending>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A queued write's claim on its place: dropping it (the call returned or was cancelled) takes
/// the write back out if no writer has taken it yet, so a cancelled call never leaves a write
/// behind for a later group.
pub(super) struct Ticket<'a> {
    queue: &'a Queue,
    id: u64,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        self.queue.withdraw(self);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn sent() -> Write {
        Write::Update(JobUpdate::Sent { message_id: 1 })
    }

    #[test]
    fn take_empties_the_queue_in_order() {
        let queue = Queue::default();
        let now = Timestamp::UNIX_EPOCH;
        let (a, _ra) = queue.push(&IdempotencyKey::new("a"), 1, sent(), now);
        let (b, _rb) = queue.push(&IdempotencyKey::new("b"), 2, sent(), now);
        let taken = queue.take();
        let keys: Vec<_> = taken.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["a", "b"]);
        assert_ne!(a.id, b.id);
        assert!(queue.take().is_empty());
    }

    #[test]
    fn a_dropped_ticket_takes_its_update_back() {
        let queue = Queue::default();
        let now = Timestamp::UNIX_EPOCH;
        let (a, _ra) = queue.push(&IdempotencyKey::new("a"), 1, sent(), now);
        let (_b, _rb) = queue.push(&IdempotencyKey::new("b"), 2, sent(), now);
        drop(a);
        let taken = queue.take();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].key.as_str(), "b");
    }

    #[test]
    fn a_job_named_again_waits_for_the_next_round() {
        let queue = Queue::default();
        let now = Timestamp::UNIX_EPOCH;
        let mut tickets = Vec::new();
        for key in ["a", "b", "a", "c", "a", "b"] {
            tickets.push(queue.push(&IdempotencyKey::new(key), 1, sent(), now));
        }
        assert_eq!(rounds(&queue.take()), [vec![0, 1, 3], vec![2, 5], vec![4]]);
    }
}
