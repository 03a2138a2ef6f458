//! [`BatchingSink`]: group commit for events. Many callers' events go to the store in one write,
//! and each `record` returns only once its events are written, so a crash never loses an event
//! a caller was told about.

use std::sync::Arc;

use async_trait::async_trait;
use mia_core::{Error, Event, EventSink};
use tokio::sync::{mpsc, oneshot};

/// What `record` does when the queue is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WhenFull {
    /// Wait for room (backpressure on the caller).
    #[default]
    Wait,
    /// Return a retryable error at once; the caller keeps its events.
    Error,
}

enum Request {
    Record(Vec<Event>, oneshot::Sender<Result<(), Error>>),
}

/// Wraps an [`EventSink`] (usually a [`Collector`](crate::Collector) or a store sink): callers'
/// batches wait in a bounded queue; one writer task takes everything waiting (up to
/// `max_batch` events) and writes it in one call to the inner sink — one transaction on SQLite or
/// Postgres — then answers every caller of that write with its result.
///
/// - **Nothing lost**: `record` returns `Ok` only after the inner sink wrote the events, so
///   shutting down needs no flush and a killed process loses only events nobody was told
///   about. A failed write fails every `record` of that write (retryable if the store said so);
///   the callers keep their events.
/// - **Bounded memory**: at most `queue` batches wait; a full queue waits or errors
///   ([`WhenFull`]), never grows.
/// - **No double counting**: ids are deduplicated by the inner sink's store, so a caller that
///   retries after an error or a crash cannot count an event twice.
#[derive(Clone)]
pub struct BatchingSink {
    tx: mpsc::Sender<Request>,
    when_full: WhenFull,
}

impl std::fmt::Debug for BatchingSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchingSink")
            .field("when_full", &self.when_full)
            .finish_non_exhaustive()
    }
}

/// Builds a [`BatchingSink`].
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct BatchingSinkBuilder {
    queue: usize,
    max_batch: usize,
    when_full: WhenFull,
}

impl BatchingSink {
    /// A builder: a queue of 1,024 waiting batches, writes of up to 10,000 events, waiting
    /// when full.
    pub fn builder() -> BatchingSinkBuilder {
        BatchingSinkBuilder {
            queue: 1024,
            max_batch: 10_000,
            when_full: WhenFull::Wait,
        }
    }
}

impl BatchingSinkBuilder {
    /// How many callers' batches may wait (at least 1).
    pub fn queue(mut self, batches: usize) -> Self {
        self.queue = batches.max(1);
        self
    }

    /// The most events in one write (at least 1; a single larger batch is written whole).
    ///
    /// Larger writes pay off most for events of many contacts with ids in no order (as mia
    /// derives them): each write touches the store's `(contact, id)` index all over, at most
    /// once per index page however many of its events land on one. On SQLite at `Full`, on
    /// the bench machine, such events went in at about 95,000 a second in writes of 10,000
    /// and about 225,000 in writes of 100,000 (`cargo bench --bench events --features full`),
    /// at the cost of holding that many events in memory while a write waits.
    pub fn max_batch(mut self, events: usize) -> Self {
        self.max_batch = events.max(1);
        self
    }

    /// What `record` does when the queue is full.
    pub fn when_full(mut self, when_full: WhenFull) -> Self {
        self.when_full = when_full;
        self
    }

    /// Starts the writer task on the current tokio runtime.
    ///
    /// # Errors
    /// [`Error::Config`] outside a tokio runtime.
    pub fn build(self, inner: Arc<dyn EventSink>) -> Result<BatchingSink, Error> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::Config("BatchingSink needs a tokio runtime for its writer task".into())
        })?;
        let (tx, rx) = mpsc::channel(self.queue);
        runtime.spawn(write_loop(inner, rx, self.max_batch));
        Ok(BatchingSink {
            tx,
            when_full: self.when_full,
        })
    }
}

async fn write_loop(inner: Arc<dyn EventSink>, mut rx: mpsc::Receiver<Request>, max: usize) {
    while let Some(Request::Record(mut batch, first)) = rx.recv().await {
        let mut waiters = vec![first];
        while batch.len() < max {
            match rx.try_recv() {
                Ok(Request::Record(events, done)) => {
                    batch.extend(events);
                    waiters.push(done);
                }
                Err(_) => break,
            }
        }
        let result = inner.record(&batch).await;
        for done in waiters {
            // A caller that stopped waiting has nothing to be told.
            let _ = done.send(match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(Error::Store {
                    message: format!("writing a batch of {} events: {e}", batch.len()),
                    retryable: e.is_retryable(),
                    source: None,
                }),
            });
        }
    }
}

fn stopped() -> Error {
    Error::Store {
        message: "the event writer stopped (its runtime shut down)".into(),
        retryable: false,
        source: None,
    }
}

#[async_trait]
impl EventSink for BatchingSink {
    async fn record(&self, events: &[Event]) -> mia_core::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let (done, answer) = oneshot::channel();
        let request = Request::Record(events.to_vec(), done);
        match self.when_full {
            WhenFull::Wait => self.tx.send(request).await.map_err(|_| stopped())?,
            WhenFull::Error => self.tx.try_send(request).map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => Error::Store {
                    message: "the event queue is full; try again".into(),
                    retryable: true,
                    source: None,
                },
                mpsc::error::TrySendError::Closed(_) => stopped(),
            })?,
        }
        answer.await.map_err(|_| stopped())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use jiff::Timestamp;
    use mia_core::{ContactId, EventId, EventKind};

    /// Counts writes and events; fails while `fail` is set; waits on `gate` before writing.
    struct Probe {
        entered: AtomicUsize,
        writes: AtomicUsize,
        events: AtomicUsize,
        fail: AtomicBool,
        gate: tokio::sync::Semaphore,
    }

    impl Default for Probe {
        fn default() -> Self {
            Self {
                entered: AtomicUsize::new(0),
                writes: AtomicUsize::new(0),
                events: AtomicUsize::new(0),
                fail: AtomicBool::new(false),
                gate: tokio::sync::Semaphore::new(0),
            }
        }
    }

    #[async_trait]
    impl EventSink for Probe {
        async fn record(&self, events: &[Event]) -> mia_core::Result<()> {
            self.entered.fetch_add(events.len(), Ordering::SeqCst);
            let _permit = self.gate.acquire().await.map_err(|_| stopped())?;
            if self.fail.load(Ordering::SeqCst) {
                return Err(Error::Store {
                    message: "database is locked".into(),
                    retryable: true,
                    source: None,
                });
            }
            self.writes.fetch_add(1, Ordering::SeqCst);
            self.events.fetch_add(events.len(), Ordering::SeqCst);
            Ok(())
        }
    }

    fn event(n: usize) -> Event {
        Event {
            id: EventId::new(format!("e{n}")),
            at: Timestamp::UNIX_EPOCH,
            contact: ContactId::new("c"),
            campaign: None,
            variant: None,
            step: None,
            kind: EventKind::Sent,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_share_writes_and_each_waits_for_its_own() {
        let probe = Arc::new(Probe::default());
        let sink = BatchingSink::builder().build(probe.clone()).unwrap();
        // Hold the writer until every caller queued, so they must share writes.
        let mut tasks = Vec::new();
        for n in 0..200 {
            let sink = sink.clone();
            tasks.push(tokio::spawn(async move { sink.record(&[event(n)]).await }));
        }
        // Every batch is either with the writer (waiting at the gate) or in the queue.
        while probe.entered.load(Ordering::SeqCst) + (1024 - sink.tx.capacity()) < 200 {
            tokio::task::yield_now().await;
        }
        probe.gate.add_permits(1_000);
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(probe.events.load(Ordering::SeqCst), 200);
        let writes = probe.writes.load(Ordering::SeqCst);
        assert!(writes <= 2, "200 callers in {writes} writes");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_write_fails_every_caller_of_it_and_a_full_queue_is_an_error() {
        let probe = Arc::new(Probe::default());
        probe.gate.add_permits(1_000);
        probe.fail.store(true, Ordering::SeqCst);
        let sink = BatchingSink::builder().build(probe.clone()).unwrap();
        let err = sink.record(&[event(1)]).await.unwrap_err();
        assert!(err.is_retryable(), "{err}");
        assert!(err.to_string().contains("database is locked"), "{err}");
        probe.fail.store(false, Ordering::SeqCst);
        sink.record(&[event(1)]).await.unwrap();
        assert_eq!(probe.events.load(Ordering::SeqCst), 1);

        let stuck = Arc::new(Probe::default()); // no permits: the writer never finishes
        // One batch per write, so the writer holds exactly one and the queue one more.
        let sink = BatchingSink::builder()
            .queue(1)
            .max_batch(1)
            .when_full(WhenFull::Error)
            .build(stuck)
            .unwrap();
        // The writer can hold one batch and the queue one more: of three callers at least one
        // is refused at once, whatever order they run in, and the others wait.
        let callers: Vec<_> = (0..3)
            .map(|n| {
                let sink = sink.clone();
                tokio::spawn(async move { sink.record(&[event(n)]).await })
            })
            .collect();
        let refused = loop {
            if let Some(i) = callers
                .iter()
                .position(tokio::task::JoinHandle::is_finished)
            {
                break i;
            }
            tokio::task::yield_now().await;
        };
        let mut callers = callers;
        let refused = callers.remove(refused).await.unwrap().unwrap_err();
        assert!(
            refused.is_retryable() && refused.to_string().contains("full"),
            "{refused}"
        );
        // An accepted batch waits for its write, which never comes; a finished one was refused.
        for caller in callers {
            if caller.is_finished() {
                let err = caller.await.unwrap().unwrap_err();
                assert!(err.to_string().contains("full"), "{err}");
            } else {
                caller.abort();
            }
        }
    }

    #[test]
    fn outside_a_runtime_it_says_so() {
        let err = BatchingSink::builder()
            .build(Arc::new(Probe::default()))
            .unwrap_err();
        assert!(err.to_string().contains("tokio runtime"), "{err}");
    }
}
