//! The panic boundary every exported function runs inside.

use std::any::Any;
use std::ffi::c_char;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::error::{FfiResult, MiaStatus, set_last_error};

/// Runs `body` and turns its outcome into a status: `MIA_OK`, the error's own status, or
/// `MIA_PANIC` for a panic (which must never unwind into C). Failures set this thread's last
/// error, prefixed with `function` so a C programmer sees where it came from.
pub(crate) fn run(function: &str, body: impl FnOnce() -> FfiResult<()>) -> MiaStatus {
    // AssertUnwindSafe: after a panic no state the body touched is trusted blindly; every lock
    // in this crate recovers from poisoning and the handles keep working.
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => MiaStatus::MIA_OK,
        Ok(Err(e)) => {
            set_last_error(&format!("{function}: {}", e.message));
            e.status
        }
        Err(payload) => {
            set_last_error(&format!(
                "{function}: panic inside mia (caught): {}",
                panic_message(payload.as_ref())
            ));
            MiaStatus::MIA_PANIC
        }
    }
}

/// The boundary of the few functions that return a pointer to a static or thread-local string
/// instead of a status: a panic gives `""`.
pub(crate) fn string(body: impl FnOnce() -> *const c_char) -> *const c_char {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(c"".as_ptr())
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "a panic without a message"
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::panic)]

    use super::*;
    use crate::error::{FfiError, mia_last_error};

    fn last() -> String {
        // SAFETY: a valid NUL-terminated string owned by this thread's slot, read at once.
        unsafe { std::ffi::CStr::from_ptr(mia_last_error()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn a_panic_becomes_mia_panic_with_its_message() {
        let status = run("mia_test", || panic!("boom {}", 42));
        assert_eq!(status, MiaStatus::MIA_PANIC);
        assert_eq!(last(), "mia_test: panic inside mia (caught): boom 42");
    }

    #[test]
    fn errors_keep_their_status_and_name_the_function() {
        let status = run("mia_thing_do", || Err(FfiError::invalid("no")));
        assert_eq!(status, MiaStatus::MIA_INVALID_INPUT);
        assert_eq!(last(), "mia_thing_do: no");
        assert_eq!(run("mia_ok", || Ok(())), MiaStatus::MIA_OK);
        assert_eq!(
            last(),
            "mia_thing_do: no",
            "success leaves the last error alone"
        );
    }
}
