//! Status codes, the error carried inside the crate, and the per-thread last error message.

use std::cell::RefCell;
use std::ffi::{CString, c_char, c_int};

/// What a `mia_*` call did. `MIA_OK` is zero; every other value is a failure, and
/// [`mia_last_error`] then describes it.
///
/// The numbers are part of the ABI: new codes are added at the end, existing ones never change.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MiaStatus {
    /// Success.
    MIA_OK = 0,
    /// A required pointer argument (a string, a handle or an out-parameter) was `NULL`.
    MIA_NULL_POINTER = 1,
    /// A string argument was not valid UTF-8.
    MIA_INVALID_UTF8 = 2,
    /// A JSON argument was not JSON, or not of the documented shape (an unknown key, a wrong
    /// type, a missing required key).
    MIA_INVALID_JSON = 3,
    /// Well-formed input that mia rejects (an unknown time zone, an empty id, a grant without
    /// evidence, a bad configuration value).
    MIA_INVALID_INPUT = 4,
    /// The handle was freed (or never came from mia): using it does nothing.
    MIA_CLOSED_HANDLE = 5,
    /// mia panicked inside the call. The panic was caught; the handle stays usable.
    MIA_PANIC = 6,
    /// A record the call named (campaign, review item, contact) does not exist.
    MIA_NOT_FOUND = 7,
    /// mia refuses to do what was asked (it offers no way around consent or the send policy).
    MIA_REFUSED = 8,
    /// The campaign or review item is not in a state that allows the call (launching a
    /// campaign still in review, deciding a review twice).
    MIA_INVALID_STATE = 9,
    /// Anything else: the store, the runtime, the transport.
    MIA_INTERNAL = 10,
}

/// A failure inside the crate: the status to return and the message for [`mia_last_error`].
#[derive(Debug)]
pub(crate) struct FfiError {
    pub(crate) status: MiaStatus,
    pub(crate) message: String,
}

impl FfiError {
    pub(crate) fn new(status: MiaStatus, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn null(what: &str) -> Self {
        Self::new(MiaStatus::MIA_NULL_POINTER, format!("{what} is NULL"))
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(MiaStatus::MIA_INVALID_INPUT, message)
    }

    pub(crate) fn json(what: &str, e: &serde_json::Error) -> Self {
        Self::new(MiaStatus::MIA_INVALID_JSON, format!("{what}: {e}"))
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(MiaStatus::MIA_INTERNAL, message)
    }
}

impl From<mia::Error> for FfiError {
    fn from(e: mia::Error) -> Self {
        let status = match &e {
            mia::Error::InvalidInput(_) | mia::Error::Config(_) => MiaStatus::MIA_INVALID_INPUT,
            mia::Error::InvalidTransition { .. } | mia::Error::CampaignNotRunning { .. } => {
                MiaStatus::MIA_INVALID_STATE
            }
            mia::Error::NotFound { .. } => MiaStatus::MIA_NOT_FOUND,
            mia::Error::Refused(_) => MiaStatus::MIA_REFUSED,
            _ => MiaStatus::MIA_INTERNAL,
        };
        Self::new(status, e.to_string())
    }
}

pub(crate) type FfiResult<T> = Result<T, FfiError>;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Records `message` as this thread's last error. NUL bytes (which C cannot show) become `\0`.
pub(crate) fn set_last_error(message: &str) {
    let text = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    // During thread teardown the slot may be gone; the status code still tells the failure.
    let _ = LAST_ERROR.try_with(|slot| *slot.borrow_mut() = text);
}

/// The message of the most recent failed `mia_*` call on the calling thread, or `""` when no
/// call on this thread has failed yet. Never `NULL`.
///
/// Lifetime and ownership: the string belongs to mia; do not free it. It stays valid until the
/// next `mia_*` call *on the same thread* that fails (which replaces it) or until the thread
/// exits. Successful calls leave it alone, so read it right after a call returned something
/// other than `MIA_OK`, and copy it (`strdup`) if you keep it past the next call. Each thread
/// has its own: an error on one thread is never seen on another.
#[unsafe(no_mangle)]
pub extern "C" fn mia_last_error() -> *const c_char {
    crate::boundary::string(|| {
        LAST_ERROR
            .try_with(|slot| slot.borrow().as_ptr())
            .unwrap_or(c"".as_ptr())
    })
}

/// The name of a status code (`"MIA_NOT_FOUND"`), a static string; never `NULL`. Unknown
/// numbers give `"MIA_UNKNOWN_STATUS"`.
#[unsafe(no_mangle)]
pub extern "C" fn mia_status_name(status: c_int) -> *const c_char {
    crate::boundary::string(|| status_name(status).as_ptr())
}

/// The name of a status by number. The argument is a plain `int`, not the enum: C may pass any
/// number, and an enum value Rust does not know would be undefined behaviour.
pub(crate) fn status_name(code: i32) -> &'static std::ffi::CStr {
    match code {
        0 => c"MIA_OK",
        1 => c"MIA_NULL_POINTER",
        2 => c"MIA_INVALID_UTF8",
        3 => c"MIA_INVALID_JSON",
        4 => c"MIA_INVALID_INPUT",
        5 => c"MIA_CLOSED_HANDLE",
        6 => c"MIA_PANIC",
        7 => c"MIA_NOT_FOUND",
        8 => c"MIA_REFUSED",
        9 => c"MIA_INVALID_STATE",
        10 => c"MIA_INTERNAL",
        _ => c"MIA_UNKNOWN_STATUS",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last() -> String {
        // SAFETY: `mia_last_error` returns a valid NUL-terminated string owned by this
        // thread's slot, read before any other call can replace it.
        unsafe { std::ffi::CStr::from_ptr(mia_last_error()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn last_error_is_per_thread_and_survives_nul_bytes() {
        set_last_error("bad\0input");
        assert_eq!(last(), "bad\\0input");
        let other = std::thread::spawn(last).join().unwrap_or_default();
        assert_eq!(other, "", "another thread must not see this thread's error");
    }

    #[test]
    fn core_errors_map_to_their_codes() {
        let cases = [
            (mia::Error::invalid("x"), MiaStatus::MIA_INVALID_INPUT),
            (
                mia::Error::not_found("campaign", "c"),
                MiaStatus::MIA_NOT_FOUND,
            ),
            (mia::Error::Refused("cold".into()), MiaStatus::MIA_REFUSED),
            (
                mia::Error::InvalidTransition {
                    from: mia::CampaignState::InReview,
                    to: mia::CampaignState::Scheduled,
                },
                MiaStatus::MIA_INVALID_STATE,
            ),
            (
                mia::Error::CampaignNotRunning {
                    campaign: "c".into(),
                    state: mia::CampaignState::Paused,
                },
                MiaStatus::MIA_INVALID_STATE,
            ),
        ];
        for (error, status) in cases {
            assert_eq!(FfiError::from(error).status, status);
        }
    }

    #[test]
    fn every_status_has_its_own_name() {
        let names: std::collections::BTreeSet<_> = (0..=10).map(status_name).collect();
        assert_eq!(names.len(), 11);
        assert_eq!(status_name(99), c"MIA_UNKNOWN_STATUS");
        assert_eq!(status_name(MiaStatus::MIA_PANIC as i32), c"MIA_PANIC");
    }
}
