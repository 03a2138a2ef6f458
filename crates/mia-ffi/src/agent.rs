//! The agent handle: creation, freeing, callbacks, and the wrapper every agent call runs in.

use std::ffi::{c_char, c_void};
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard};

use mia::Agent;
use tokio::runtime::Runtime;

use crate::boundary;
use crate::callbacks::{
    Callbacks, MiaEventCallback, MiaReviewCallback, Registered, ReviewTracker, deliver,
};
use crate::config::{AgentConfig, Parts};
use crate::error::{FfiError, FfiResult, MiaStatus};
use crate::handle::{Registry, to_pointer};
use crate::strings::{Out, opt_json_arg};

/// An agent: its store, the offline copywriter, the simulated Telegram, the guards, a virtual
/// clock, and its own tokio runtime. Opaque; create with [`mia_agent_new`], free with
/// [`mia_agent_free`].
pub struct MiaAgent {
    _private: [u8; 0],
}

static AGENTS: LazyLock<Registry<AgentEntry>> = LazyLock::new(|| Registry::new("agent"));

/// What an agent handle owns.
pub(crate) struct AgentEntry {
    runtime: Runtime,
    /// `Some` until the entry is dropped (then inside the runtime, see `Drop`).
    parts: Option<Parts>,
    /// Serialises calls on this handle and remembers the reviews already reported.
    work: Mutex<ReviewTracker>,
    callbacks: Mutex<Callbacks>,
    /// Default ids of inbound events: unique per process run and per event.
    inbound_prefix: u64,
    inbound_counter: AtomicU64,
}

impl Drop for AgentEntry {
    fn drop(&mut self) {
        // Database pools may spawn their closing work: give them the runtime's context.
        let _context = self.runtime.enter();
        drop(self.parts.take());
    }
}

impl AgentEntry {
    /// The agent. Always present while the entry is alive.
    pub(crate) fn agent(&self) -> FfiResult<&Agent> {
        self.parts
            .as_ref()
            .map(|p| &p.agent)
            .ok_or_else(|| FfiError::internal("the agent is being dropped"))
    }

    /// Runs `future` to completion on this handle's runtime.
    pub(crate) fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// A fresh default id for an inbound event.
    pub(crate) fn inbound_id(&self) -> String {
        let n = self.inbound_counter.fetch_add(1, Ordering::Relaxed);
        format!("ffi-{:016x}-{n}", self.inbound_prefix)
    }

    fn callbacks(&self) -> MutexGuard<'_, Callbacks> {
        // Plain copies of two optional pairs; nothing can be left half-written.
        self.callbacks.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Runs `work` on the agent behind `handle`, then delivers the events and review escalations
/// it produced to the registered callbacks: after the handle's lock is released, on this
/// thread, before returning. Calls on one handle are serialised; calls on different handles
/// run in parallel.
pub(crate) fn with_agent<T>(
    handle: *mut MiaAgent,
    work: impl FnOnce(&AgentEntry, &Agent) -> FfiResult<T>,
) -> FfiResult<T> {
    let entry = AGENTS.get(handle.addr())?;
    let (result, callbacks, events, reviews) = {
        // A panic in an earlier call poisoned the lock: the tracker is a set of ids and stays
        // consistent, so carry on.
        let mut tracker = entry.work.lock().unwrap_or_else(|e| e.into_inner());
        let agent = entry.agent()?;
        let result = work(&entry, agent);
        let callbacks = {
            let c = entry.callbacks();
            (c.events, c.reviews)
        };
        let events = match (&callbacks.0, &entry.parts) {
            (Some(_), Some(parts)) => parts.sink.take(),
            _ => Vec::new(),
        };
        let reviews = match callbacks.1 {
            // A failed look-up is retried on the next call; the work's own result stands.
            Some(_) => entry
                .block_on(agent.pending_reviews())
                .map(|pending| tracker.fresh(pending))
                .unwrap_or_default(),
            None => Vec::new(),
        };
        (result, callbacks, events, reviews)
    };
    deliver(callbacks.0, &events);
    deliver(callbacks.1, &reviews);
    result
}

/// Creates an agent from a JSON configuration (`NULL` for every default) and stores its handle
/// in `*out_agent`.
///
/// Keys (all optional; an unknown key is `MIA_INVALID_JSON`):
/// - `"store"`: `":memory:"` (default) or the path of a SQLite file, created if missing.
/// - `"seed"`: unsigned integer seeding the simulated Telegram, the agent and the split (0).
/// - `"start"`: RFC 3339 time where virtual time starts (default: now).
/// - `"allow_domains"`: domains links may point to; other links escalate to review.
/// - `"blacklist"`: phrases the content guard denies.
/// - `"allocator"`: `"split"` (default), `"thompson"`, `"kl-ucb"` or `"epsilon-greedy"`.
/// - `"notice_version"`: privacy notice version stamped on `/start` opt-ins (`"1"`).
/// - `"stop_confirmation"`: the one message sent after a STOP.
/// - `"zones_when_unknown"`: IANA zones the audience lives in, for contacts whose zone is
///   unknown (people who wrote first): quiet hours and send windows must allow a send in
///   all of them at once (default `["UTC"]`).
/// - `"llm"`: only `"offline"`. `"transport"`: only `"simulated"`.
///
/// The content and send guards are always on.
///
/// # Safety
/// `config_json` is `NULL` or a NUL-terminated string; `out_agent` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mia_agent_new(
    config_json: *const c_char,
    out_agent: *mut *mut MiaAgent,
) -> MiaStatus {
    boundary::run("mia_agent_new", || {
        // SAFETY: the caller promises `out_agent` is valid for a write.
        let out = unsafe { Out::new(out_agent, std::ptr::null_mut(), "out_agent") }?;
        // SAFETY: the caller promises `config_json` is NULL or a NUL-terminated string.
        let config: AgentConfig = unsafe { opt_json_arg(config_json, "config_json") }?;
        config.validate()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| FfiError::internal(format!("cannot start a runtime: {e}")))?;
        let parts = runtime.block_on(config.build())?;
        let id = AGENTS.insert(AgentEntry {
            runtime,
            parts: Some(parts),
            work: Mutex::new(ReviewTracker::default()),
            callbacks: Mutex::new(Callbacks::default()),
            inbound_prefix: RandomState::new().hash_one(std::process::id()),
            inbound_counter: AtomicU64::new(0),
        })?;
        out.set(to_pointer(id));
        Ok(())
    })
}

/// Frees an agent. `NULL` does nothing. Freeing twice, or using the handle afterwards, returns
/// `MIA_CLOSED_HANDLE`. A call running on another thread finishes first; the agent's memory,
/// runtime and store connections go when it returns.
#[unsafe(no_mangle)]
pub extern "C" fn mia_agent_free(agent: *mut MiaAgent) -> MiaStatus {
    boundary::run("mia_agent_free", || {
        if agent.is_null() {
            return Ok(());
        }
        AGENTS.remove(agent.addr()).map(drop)
    })
}

/// Registers the delivery-event callback (`NULL` unregisters it). Every event the agent records
/// from then on (sent, delivered, read, clicked, replied, converted, opted in, opted out,
/// blocked, failed, skipped) is passed to it, at least once: deduplicate on its `"id"`.
///
/// Called on the thread whose `mia_*` call produced the events, after that call's work and
/// before it returns, with no mia lock held: the callback may call back into mia, this handle
/// included. `userdata` is handed back untouched.
#[unsafe(no_mangle)]
pub extern "C" fn mia_agent_set_event_callback(
    agent: *mut MiaAgent,
    callback: MiaEventCallback,
    userdata: *mut c_void,
) -> MiaStatus {
    boundary::run("mia_agent_set_event_callback", || {
        let entry = AGENTS.get(agent.addr())?;
        let registered = callback.map(|function| Registered {
            function,
            userdata: userdata.addr(),
        });
        if let Some(parts) = &entry.parts {
            parts.sink.set_enabled(registered.is_some());
        }
        entry.callbacks().events = registered;
        Ok(())
    })
}

/// Registers the review-escalation callback (`NULL` unregisters it). Each pending review item
/// is passed to it once per handle, after the call that queued it (items pending in a reopened
/// SQLite store are passed after the next call). Same threading rules as
/// [`mia_agent_set_event_callback`].
#[unsafe(no_mangle)]
pub extern "C" fn mia_agent_set_review_callback(
    agent: *mut MiaAgent,
    callback: MiaReviewCallback,
    userdata: *mut c_void,
) -> MiaStatus {
    boundary::run("mia_agent_set_review_callback", || {
        let entry = AGENTS.get(agent.addr())?;
        entry.callbacks().reviews = callback.map(|function| Registered {
            function,
            userdata: userdata.addr(),
        });
        Ok(())
    })
}
