//! Why callers never see `SQLITE_BUSY`: every connection has a busy timeout (SQLite itself
//! waits and retries inside the call), and every statement that can meet a lock held by
//! another connection (`BEGIN IMMEDIATE`, `COMMIT`, reads, the open-time pragmas) runs in
//! [`retry`], which waits again, with a growing pause, for as long as the lock is held.
//! The wait ends only when the operation gets through or the store is closing.

use std::sync::atomic::Ordering;
use std::time::Duration;

use rusqlite::ErrorCode;

use super::Shared;

/// The store was closed while an operation waited for a lock.
#[derive(Debug)]
pub(super) struct Interrupted;

/// The longest pause between two attempts (each attempt also waits up to the connection's
/// busy timeout inside SQLite).
const MAX_PAUSE: Duration = Duration::from_millis(50);

/// True for "another connection holds the lock" (`SQLITE_BUSY`, `SQLITE_LOCKED` and their
/// extended codes).
pub(super) fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// Runs `attempt` until it returns anything but a busy error.
///
/// # Errors
///
/// [`Interrupted`] when the store started closing while the lock was held.
pub(super) fn retry<T>(
    shared: &Shared,
    mut attempt: impl FnMut() -> rusqlite::Result<T>,
) -> Result<rusqlite::Result<T>, Interrupted> {
    retry_if(shared, is_busy, &mut attempt)
}

/// [`retry`] for operations with their own error type; `busy` says which errors to wait out.
pub(super) fn retry_if<T, E>(
    shared: &Shared,
    busy: impl Fn(&E) -> bool,
    mut attempt: impl FnMut() -> Result<T, E>,
) -> Result<Result<T, E>, Interrupted> {
    let mut pause = Duration::from_millis(1);
    loop {
        match attempt() {
            Err(error) if busy(&error) => {
                shared.counters.busy_waits.fetch_add(1, Ordering::Relaxed);
                if shared.closing.load(Ordering::Acquire) {
                    return Err(Interrupted);
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(MAX_PAUSE);
            }
            other => return Ok(other),
        }
    }
}
