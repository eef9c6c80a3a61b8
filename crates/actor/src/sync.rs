//! The one place every atomic and lock of this crate comes from.
//!
//! Normal builds use `std`; `RUSTFLAGS="--cfg flowbed_loom"` swaps in loom's model-checked
//! versions so `tests/loom.rs` can explore every interleaving of the lifecycle protocol
//! (the reference count that stops an actor nobody can reach, the kill switch, the exit
//! watchers registered while the actor stops).

#[cfg(flowbed_loom)]
pub(crate) use loom::sync::{
    Mutex, MutexGuard, RwLock,
    atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
};

#[cfg(not(flowbed_loom))]
pub(crate) use std::sync::{
    Mutex, MutexGuard, RwLock,
    atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
};

/// Locks a mutex, ignoring poisoning: no user code runs under any lock of this crate, and
/// every critical section leaves its data consistent before anything in it can panic.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
