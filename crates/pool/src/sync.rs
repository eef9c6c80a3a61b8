//! The one place every atomic and lock of this crate comes from.
//!
//! Normal builds use `std`; `RUSTFLAGS="--cfg flowbed_loom"` swaps in loom's model-checked
//! versions so `tests/loom.rs` can explore every interleaving of the hand-off between
//! returned connections and waiting callers.

#[cfg(flowbed_loom)]
pub(crate) use loom::sync::{
    Mutex, MutexGuard,
    atomic::{AtomicU64, AtomicUsize, Ordering},
};

#[cfg(not(flowbed_loom))]
pub(crate) use std::sync::{
    Mutex, MutexGuard,
    atomic::{AtomicU64, AtomicUsize, Ordering},
};

/// Locks a mutex, ignoring poisoning: every critical section in this crate leaves the pool's
/// bookkeeping consistent before anything in it can panic (user code never runs under the
/// lock), so a poisoned lock holds valid data.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
