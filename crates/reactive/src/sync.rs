//! The one place every atomic and lock of this crate comes from.
//!
//! Normal builds use `std`; `RUSTFLAGS="--cfg flowbed_loom"` swaps in loom's model-checked
//! versions so `tests/loom.rs` can explore every interleaving of the demand counter and the
//! async boundary's hand-off.

#[cfg(flowbed_loom)]
pub(crate) use loom::sync::{
    Arc, Mutex, MutexGuard,
    atomic::{AtomicBool, AtomicU64, Ordering},
};

#[cfg(not(flowbed_loom))]
pub(crate) use std::sync::{
    Arc, Mutex, MutexGuard,
    atomic::{AtomicBool, AtomicU64, Ordering},
};

/// Locks a mutex, ignoring poisoning: no user code runs under any lock of this crate, and
/// every critical section leaves its data consistent before anything in it can panic.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
