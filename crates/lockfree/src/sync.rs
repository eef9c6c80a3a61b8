//! The one place every atomic, cell, lock and thread operation of this crate comes from.
//!
//! Normal builds use `std`; `RUSTFLAGS="--cfg flowbed_loom"` swaps in loom's model-checked
//! versions so `tests/loom.rs` can explore every interleaving of the real code.

#[cfg(flowbed_loom)]
pub(crate) use loom::{
    cell::UnsafeCell,
    hint::spin_loop,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering, fence},
    },
    thread::{Thread, current as current_thread, park, yield_now},
};

#[cfg(not(flowbed_loom))]
pub(crate) use std::{
    hint::spin_loop,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering, fence},
    },
    thread::{Thread, current as current_thread, park, yield_now},
};

/// `std::cell::UnsafeCell` with loom's closure-based access API, so the same code compiles
/// against both.
#[cfg(not(flowbed_loom))]
#[derive(Debug)]
#[repr(transparent)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(flowbed_loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self(std::cell::UnsafeCell::new(value))
    }

    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// Locks a mutex, ignoring poisoning: every critical section in this crate leaves its data
/// consistent before it can panic, so a poisoned lock holds valid data.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Tells loom about reads and writes of buffer slots that are reached through raw
/// pointers (the SPSC ring hands out contiguous slices, which per-slot loom cells cannot
/// provide), so the model checker still catches a data race on any slot. Zero-sized and
/// free in normal builds.
#[derive(Debug)]
pub(crate) struct SlotAccess {
    #[cfg(flowbed_loom)]
    cells: Box<[UnsafeCell<()>]>,
}

impl SlotAccess {
    pub(crate) fn new(_slots: usize) -> Self {
        Self {
            #[cfg(flowbed_loom)]
            cells: (0.._slots).map(|_| UnsafeCell::new(())).collect(),
        }
    }

    /// Records a write of slot `_index`.
    #[inline(always)]
    pub(crate) fn write(&self, _index: usize) {
        #[cfg(flowbed_loom)]
        self.cells[_index].with_mut(|_| ());
    }

    /// Records a read of slot `_index`.
    #[inline(always)]
    pub(crate) fn read(&self, _index: usize) {
        #[cfg(flowbed_loom)]
        self.cells[_index].with(|_| ());
    }
}
