//! Group commit of job updates on the hot connection.
//!
//! Each [`update_job`](mia_core::OutboxStore::update_job) is its own commit, and at
//! [`Durability::Full`](super::Durability::Full) each commit waits for a flush of the WAL file
//! (a quarter of a millisecond or more). Workers that finish jobs one at a time therefore spend
//! most of their time waiting for flushes, one after the other. Here a call does not run its
//! statement alone: it puts its update in a queue and waits for the hot connection. Whoever
//! gets the connection takes everything queued by then, writes it in one transaction (one
//! flush for all) and hands each caller its own answer. While that flush runs, the next
//! updates queue up and go together in the next one. A lone worker pays what it paid before;
//! several workers share their flushes.
//!
//! Each update keeps its own meaning: it is fenced by its own claim token and stamped with its
//! own time, and a caller whose job was not changed learns why (lost lease or unknown job)
//! exactly as with a statement of its own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use futures_channel::oneshot;
use jiff::Timestamp;
use mia_core::{IdempotencyKey, JobUpdate};

/// What the writer of a group tells each caller: whether its job changed, or why the group's
/// transaction failed (its message and whether a retry may succeed; one error for all).
pub(super) type Answer = Result<bool, (String, bool)>;

/// One queued update.
pub(super) struct Pending {
    /// Which call queued it, so a call that gives up can take it back.
    pub(super) id: u64,
    pub(super) key: IdempotencyKey,
    pub(super) claim_token: u64,
    pub(super) update: JobUpdate,
    pub(super) now: Timestamp,
    pub(super) reply: oneshot::Sender<Answer>,
}

/// The updates waiting for the hot connection.
#[derive(Default)]
pub(super) struct Queue {
    pending: Mutex<Vec<Pending>>,
    next_id: AtomicU64,
}

impl Queue {
    /// Queues an update; returns its id and where its answer will come.
    pub(super) fn push(
        &self,
        key: &IdempotencyKey,
        claim_token: u64,
        update: &JobUpdate,
        now: Timestamp,
    ) -> (Ticket<'_>, oneshot::Receiver<Answer>) {
        let (reply, answer) = oneshot::channel();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().push(Pending {
            id,
            key: key.clone(),
            claim_token,
            update: update.clone(),
            now,
            reply,
        });
        (Ticket { queue: self, id }, answer)
    }

    /// Everything queued, in queue order, leaving the queue empty.
    pub(super) fn take(&self) -> Vec<Pending> {
        std::mem::take(&mut *self.lock())
    }

    /// How many updates are queued.
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

/// A queued update's claim on its place: dropping it (the call returned or was cancelled)
/// takes the update back out if no writer has taken it yet, so a cancelled call never leaves
/// a write behind for a later group.
pub(super) struct Ticket<'a> {
    queue: &'a Queue,
    id: u64,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        self.queue.lock().retain(|p| p.id != self.id);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn sent() -> JobUpdate {
        JobUpdate::Sent { message_id: 1 }
    }

    #[test]
    fn take_empties_the_queue_in_order() {
        let queue = Queue::default();
        let now = Timestamp::UNIX_EPOCH;
        let (a, _ra) = queue.push(&IdempotencyKey::new("a"), 1, &sent(), now);
        let (b, _rb) = queue.push(&IdempotencyKey::new("b"), 2, &sent(), now);
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
        let (a, _ra) = queue.push(&IdempotencyKey::new("a"), 1, &sent(), now);
        let (_b, _rb) = queue.push(&IdempotencyKey::new("b"), 2, &sent(), now);
        drop(a);
        let taken = queue.take();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].key.as_str(), "b");
    }
}
