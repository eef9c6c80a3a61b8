//! The one place every atomic, lock, thread and thread-local of this crate comes from.
//!
//! Normal builds use `std`; `RUSTFLAGS="--cfg flowbed_loom"` swaps in loom's model-checked
//! versions so `tests/loom.rs` can explore every interleaving of the pool's protocols.

// `Arc` is std's in both builds: the pool needs `self: &Arc<Self>` methods and
// `Arc<dyn Trait>` coercions that loom's `Arc` cannot offer, and reference counting is
// not one of the protocols the models check.
pub(crate) use std::sync::Arc;

#[cfg(flowbed_loom)]
pub(crate) use loom::{
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence},
    },
    thread::{current as current_thread, park, yield_now},
    thread_local,
};

#[cfg(not(flowbed_loom))]
pub(crate) use std::{
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence},
    },
    thread::{current as current_thread, park, yield_now},
    thread_local,
};

/// Locks a mutex, ignoring poisoning: every critical section in this crate leaves its data
/// consistent before anything in it can panic, so a poisoned lock holds valid data.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Starts a worker thread. loom threads have no names or stack sizes.
#[cfg(not(flowbed_loom))]
pub(crate) fn spawn_thread(
    name: String,
    stack_size: Option<usize>,
    body: impl FnOnce() + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = std::thread::Builder::new().name(name);
    if let Some(size) = stack_size {
        builder = builder.stack_size(size);
    }
    builder.spawn(body).map(drop)
}

#[cfg(flowbed_loom)]
pub(crate) fn spawn_thread(
    _name: String,
    _stack_size: Option<usize>,
    body: impl FnOnce() + Send + 'static,
) -> std::io::Result<()> {
    loom::thread::spawn(body);
    Ok(())
}
