//! Handles: ids in a global table, never pointers to freed memory.
//!
//! C receives an opaque pointer-sized value that is really an id. Ids come from one counter
//! shared by every handle type and are never reused, so a freed handle, a handle of another
//! type or a made-up value finds nothing in the table and the call returns
//! `MIA_CLOSED_HANDLE`: no use after free is possible. The table lock is held only to look an
//! entry up (cloning its `Arc`), never during the work, so a long call on one handle does not
//! block others, and freeing a handle while another thread uses it lets that call finish.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{FfiError, FfiResult, MiaStatus};

/// The next id; 0 is never handed out, so `NULL` is never a live handle.
static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

/// A table of live handles of one type.
pub(crate) struct Registry<T> {
    kind: &'static str,
    entries: Mutex<HashMap<usize, Arc<T>>>,
}

impl<T> Registry<T> {
    pub(crate) fn new(kind: &'static str) -> Self {
        Self {
            kind,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<usize, Arc<T>>> {
        // Inserts and removes are single map operations; a panic cannot leave one half done.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `value` and returns its id.
    pub(crate) fn insert(&self, value: T) -> FfiResult<usize> {
        let id = NEXT_ID
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_add(1))
            .map_err(|_| FfiError::internal("this process has used up its handle ids"))?;
        self.lock().insert(id, Arc::new(value));
        Ok(id)
    }

    /// The live entry behind `id`.
    pub(crate) fn get(&self, id: usize) -> FfiResult<Arc<T>> {
        if id == 0 {
            return Err(FfiError::null(&format!("the {} handle", self.kind)));
        }
        self.lock().get(&id).cloned().ok_or_else(|| self.closed())
    }

    /// Removes `id`; the entry is dropped when the last call using it returns.
    pub(crate) fn remove(&self, id: usize) -> FfiResult<Arc<T>> {
        self.lock().remove(&id).ok_or_else(|| self.closed())
    }

    fn closed(&self) -> FfiError {
        FfiError::new(
            MiaStatus::MIA_CLOSED_HANDLE,
            format!(
                "not a live {} handle: it was freed, or it never came from mia_{}_new",
                self.kind, self.kind
            ),
        )
    }
}

/// The opaque value C holds for the id.
pub(crate) fn to_pointer<H>(id: usize) -> *mut H {
    // An address without provenance: C never dereferences it (the type is incomplete there),
    // and neither does Rust, which only reads the number back with `addr()`.
    std::ptr::without_provenance_mut(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_and_foreign_ids_are_closed_handles() {
        let agents: Registry<&str> = Registry::new("agent");
        let bandits: Registry<&str> = Registry::new("bandit");
        let a = agents.insert("a").unwrap_or(0);
        let b = bandits.insert("b").unwrap_or(0);
        assert_ne!(a, b, "ids are unique across handle types");
        assert_eq!(agents.get(a).map(|v| *v).ok(), Some("a"));
        assert_eq!(
            agents.get(b).err().map(|e| e.status),
            Some(MiaStatus::MIA_CLOSED_HANDLE)
        );
        assert!(agents.remove(a).is_ok());
        for result in [agents.get(a).map(|_| ()), agents.remove(a).map(|_| ())] {
            assert_eq!(
                result.err().map(|e| e.status),
                Some(MiaStatus::MIA_CLOSED_HANDLE)
            );
        }
        let again = agents.insert("again").unwrap_or(0);
        assert_ne!(again, a, "a freed id is never handed out again");
        assert_eq!(
            agents.get(0).err().map(|e| e.status),
            Some(MiaStatus::MIA_NULL_POINTER)
        );
    }
}
