//! C strings in, C strings out, and out-parameters.
//!
//! Every string mia hands to C is registered in a set of live strings, so
//! [`mia_string_free`] can tell a string of its own from a stranger or a string freed before,
//! and refuse those instead of corrupting the heap.

use std::collections::HashSet;
use std::ffi::{CStr, CString, c_char};
use std::sync::{LazyLock, Mutex, MutexGuard};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::boundary;
use crate::error::{FfiError, FfiResult, MiaStatus};

/// The live strings, by masked address.
static LIVE: LazyLock<Mutex<HashSet<usize>>> = LazyLock::new(|| Mutex::new(HashSet::new()));

/// Addresses are stored XOR this mask: a leak checker (LeakSanitizer, valgrind) that scans
/// memory for pointers must not mistake the set for a reference, or a string the host forgot
/// to free would never be reported.
const MASK: usize = usize::MAX ^ (usize::MAX >> 4);

fn key(ptr: *const c_char) -> usize {
    ptr.addr() ^ MASK
}

fn live() -> MutexGuard<'static, HashSet<usize>> {
    // The set is only inserted into and removed from; a panic cannot leave it half-written.
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads a required string argument.
///
/// # Safety
/// `ptr` is `NULL` or points to a NUL-terminated string that stays valid and unchanged for
/// `'a` (the duration of the `mia_*` call).
pub(crate) unsafe fn str_arg<'a>(ptr: *const c_char, what: &str) -> FfiResult<&'a str> {
    if ptr.is_null() {
        return Err(FfiError::null(what));
    }
    // SAFETY: not NULL, and the caller promises a NUL-terminated string valid for 'a.
    let bytes = unsafe { CStr::from_ptr(ptr) };
    bytes.to_str().map_err(|e| {
        FfiError::new(
            MiaStatus::MIA_INVALID_UTF8,
            format!("{what} is not valid UTF-8: {e}"),
        )
    })
}

/// Reads a required JSON argument into `T`.
///
/// # Safety
/// As [`str_arg`].
pub(crate) unsafe fn json_arg<T: DeserializeOwned>(ptr: *const c_char, what: &str) -> FfiResult<T> {
    // SAFETY: the caller's promise, passed on.
    let text = unsafe { str_arg(ptr, what) }?;
    serde_json::from_str(text).map_err(|e| FfiError::json(what, &e))
}

/// Reads an optional JSON argument: `NULL` gives `T::default()`.
///
/// # Safety
/// As [`str_arg`].
pub(crate) unsafe fn opt_json_arg<T: DeserializeOwned + Default>(
    ptr: *const c_char,
    what: &str,
) -> FfiResult<T> {
    if ptr.is_null() {
        return Ok(T::default());
    }
    // SAFETY: the caller's promise, passed on.
    unsafe { json_arg(ptr, what) }
}

/// An out-parameter, checked for `NULL` and cleared before any work is done, so a failed call
/// leaves `NULL`/zero there and never a stale value.
pub(crate) struct Out<T: Copy> {
    ptr: *mut T,
}

impl<T: Copy> Out<T> {
    /// Checks `ptr` and writes `empty` to it.
    ///
    /// # Safety
    /// `ptr` is `NULL` or valid for writes of a `T` for the duration of the `mia_*` call.
    pub(crate) unsafe fn new(ptr: *mut T, empty: T, what: &str) -> FfiResult<Self> {
        if ptr.is_null() {
            return Err(FfiError::null(what));
        }
        // SAFETY: not NULL, and the caller promises it is valid for writes of a T.
        unsafe { ptr.write(empty) };
        Ok(Self { ptr })
    }

    /// Writes the result.
    pub(crate) fn set(self, value: T) {
        // SAFETY: checked and made writable in `new`, whose caller promised validity for the
        // whole call, which has not returned yet.
        unsafe { self.ptr.write(value) };
    }
}

/// An out-parameter for a string mia allocates.
pub(crate) type OutString = Out<*mut c_char>;

impl OutString {
    /// Checks and clears a `char **` out-parameter.
    ///
    /// # Safety
    /// As [`Out::new`].
    pub(crate) unsafe fn string(ptr: *mut *mut c_char, what: &str) -> FfiResult<Self> {
        // SAFETY: the caller's promise, passed on.
        unsafe { Out::new(ptr, std::ptr::null_mut(), what) }
    }

    /// Hands `text` to C as a string to free with [`mia_string_free`].
    pub(crate) fn set_string(self, text: String) -> FfiResult<()> {
        self.set(into_c_string(text)?);
        Ok(())
    }

    /// Hands `value` to C as JSON.
    pub(crate) fn set_json(self, value: &impl Serialize) -> FfiResult<()> {
        let text = serde_json::to_string(value)
            .map_err(|e| FfiError::internal(format!("cannot write the result as JSON: {e}")))?;
        self.set_string(text)
    }
}

/// An owned C string, registered as live.
pub(crate) fn into_c_string(text: String) -> FfiResult<*mut c_char> {
    let c = CString::new(text).map_err(|_| {
        FfiError::internal("a result contained a NUL byte and cannot be a C string")
    })?;
    let ptr = c.into_raw();
    live().insert(key(ptr));
    Ok(ptr)
}

/// Frees a string that a `mia_*` function returned through an out-parameter. `NULL` is
/// accepted and does nothing.
///
/// Returns `MIA_INVALID_INPUT`, freeing nothing, for a pointer mia did not hand out or has
/// already freed, so a double free is reported instead of corrupting memory. Thread-safe.
#[unsafe(no_mangle)]
// Safe for any pointer: only a pointer found in the live set, which came from `into_raw`, is
// turned back into a `CString`; any other value is refused without being read.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub extern "C" fn mia_string_free(string: *mut c_char) -> MiaStatus {
    boundary::run("mia_string_free", || {
        if string.is_null() {
            return Ok(());
        }
        if !live().remove(&key(string)) {
            return Err(FfiError::invalid(
                "not a string from mia, or one already freed: nothing was freed",
            ));
        }
        // SAFETY: the pointer was in the live set, so it came from `CString::into_raw` in
        // `into_c_string` and has not been freed; removing it first means no other call
        // (on any thread) can free it again.
        drop(unsafe { CString::from_raw(string) });
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_string_is_freed_once_and_strangers_are_refused() {
        let ptr = into_c_string("hello".into()).unwrap_or(std::ptr::null_mut());
        assert!(!ptr.is_null());
        assert_eq!(mia_string_free(ptr), MiaStatus::MIA_OK);
        assert_eq!(mia_string_free(ptr), MiaStatus::MIA_INVALID_INPUT);
        let mut local = *b"stack\0";
        let stranger = local.as_mut_ptr().cast::<c_char>();
        assert_eq!(mia_string_free(stranger), MiaStatus::MIA_INVALID_INPUT);
        assert_eq!(mia_string_free(std::ptr::null_mut()), MiaStatus::MIA_OK);
    }

    #[test]
    fn bad_arguments_get_their_own_codes() {
        // SAFETY: NULL and valid NUL-terminated literals.
        unsafe {
            assert_eq!(
                str_arg(std::ptr::null(), "text")
                    .map_err(|e| e.status)
                    .err(),
                Some(MiaStatus::MIA_NULL_POINTER)
            );
            let latin1 = c"caf\xe9";
            assert_eq!(
                str_arg(latin1.as_ptr(), "text").map_err(|e| e.status).err(),
                Some(MiaStatus::MIA_INVALID_UTF8)
            );
            let not_json = c"{nope";
            let parsed: FfiResult<serde_json::Value> = json_arg(not_json.as_ptr(), "config");
            assert_eq!(
                parsed.err().map(|e| e.status),
                Some(MiaStatus::MIA_INVALID_JSON)
            );
        }
    }
}
