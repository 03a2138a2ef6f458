//! Callbacks to C: delivery events and review escalations.
//!
//! Nothing calls C while mia holds a lock or runs its runtime. Events are buffered while a call
//! works and handed to the callback after the work is done, on the thread that made the call,
//! before that call returns. So a callback may call any `mia_*` function, on the same handle
//! too (even `mia_agent_free`), without deadlock.

use std::ffi::{CString, c_char, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use mia::{Event, EventSink, ReviewItem};

/// Called with one event as JSON (`{"id", "at", "contact", "campaign", "variant", "kind":
/// {"kind": "sent" | "delivered" | "read" | "clicked" | "replied" | "converted" | "opted_in" |
/// "opted_out" | "blocked" | "failed" | "skipped", ...}}`).
///
/// `event_json` is valid only during the call: copy it to keep it, never free it. `userdata` is
/// the pointer given with the callback, passed back untouched.
pub type MiaEventCallback = Option<extern "C" fn(userdata: *mut c_void, event_json: *const c_char)>;

/// Called with one review item as JSON (`{"id", "campaign", "subject", "text", "trace",
/// "state", ...}`) when the content policy escalates copy or the send policy holds a send for
/// a human. Decide it with `mia_review_approve`, `mia_review_edit` or `mia_review_reject`
/// (from inside the callback too).
///
/// `review_json` is valid only during the call: copy it to keep it, never free it.
pub type MiaReviewCallback =
    Option<extern "C" fn(userdata: *mut c_void, review_json: *const c_char)>;

/// A C callback and its `userdata`, kept as an address: mia never reads through it, it only
/// hands it back to the callback, on the thread that made the call.
#[derive(Clone, Copy)]
pub(crate) struct Registered<F> {
    pub(crate) function: F,
    pub(crate) userdata: usize,
}

/// The callbacks of one agent handle.
#[derive(Default)]
pub(crate) struct Callbacks {
    pub(crate) events: Option<Registered<extern "C" fn(*mut c_void, *const c_char)>>,
    pub(crate) reviews: Option<Registered<extern "C" fn(*mut c_void, *const c_char)>>,
}

/// Calls `callback` once per item, with each item as a NUL-terminated JSON string.
pub(crate) fn deliver<T: serde::Serialize>(
    callback: Option<Registered<extern "C" fn(*mut c_void, *const c_char)>>,
    items: &[T],
) {
    let Some(cb) = callback else { return };
    for item in items {
        // serde_json escapes control characters, so the text has no NUL byte; skip rather than
        // panic if that ever changed.
        let Ok(json) = serde_json::to_string(item) else {
            continue;
        };
        let Ok(text) = CString::new(json) else {
            continue;
        };
        (cb.function)(std::ptr::without_provenance_mut(cb.userdata), text.as_ptr());
    }
}

/// Reviews reported already, so each pending item is reported once per handle.
#[derive(Default)]
pub(crate) struct ReviewTracker {
    reported: std::collections::HashSet<mia::ReviewId>,
}

impl ReviewTracker {
    /// The pending items not reported yet; forgets decided ones.
    pub(crate) fn fresh(&mut self, pending: Vec<ReviewItem>) -> Vec<ReviewItem> {
        let live: std::collections::HashSet<_> = pending.iter().map(|r| r.id.clone()).collect();
        self.reported.retain(|id| live.contains(id));
        pending
            .into_iter()
            .filter(|r| self.reported.insert(r.id.clone()))
            .collect()
    }
}

/// The agent's event sink: records through the collector, then keeps a copy of each recorded
/// batch for the event callback while one is registered.
pub(crate) struct ForwardingSink {
    inner: Arc<dyn EventSink>,
    enabled: AtomicBool,
    buffer: Mutex<Vec<Event>>,
}

impl ForwardingSink {
    pub(crate) fn new(inner: Arc<dyn EventSink>) -> Self {
        Self {
            inner,
            enabled: AtomicBool::new(false),
            buffer: Mutex::new(Vec::new()),
        }
    }

    fn buffer(&self) -> MutexGuard<'_, Vec<Event>> {
        // Pushes and takes only; a panic cannot leave the vector half-written.
        self.buffer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts or stops keeping copies (no callback, no copies: memory stays flat).
    pub(crate) fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::SeqCst);
        if !enabled {
            self.buffer().clear();
        }
    }

    /// The events recorded since the last call.
    pub(crate) fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.buffer())
    }
}

#[async_trait::async_trait]
impl EventSink for ForwardingSink {
    async fn record(&self, events: &[Event]) -> mia::Result<()> {
        self.inner.record(events).await?;
        if self.enabled.load(Ordering::SeqCst) {
            self.buffer().extend_from_slice(events);
        }
        Ok(())
    }

    async fn flush(&self) -> mia::Result<()> {
        self.inner.flush().await
    }
}
