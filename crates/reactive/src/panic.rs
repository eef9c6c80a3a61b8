//! Turning a panic in user code into an error signal.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::Error;

/// Runs `f`, turning a panic into [`Error::Panicked`].
///
/// Unwind safety: whatever `f` touched is dropped right after a panic (the flow ends and
/// cancels upstream), never used again.
pub(crate) fn guard<R>(f: impl FnOnce() -> R) -> Result<R, Error> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| Error::from_panic(&*payload))
}
