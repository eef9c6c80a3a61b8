//! `SmallFn`: a type-erased `FnOnce() + Send` that is stored inline when it is small.
//!
//! Most jobs capture a pointer or two (an `Arc`, a few integers). Boxing each one costs a
//! `malloc` on the submitting thread and a cross-thread `free` on the worker, which the
//! profile of `workerpool_submit_tiny` showed as a quarter of the time per job. A closure
//! of at most [`INLINE_WORDS`] pointer-sized, pointer-aligned words lives in the task
//! itself; a bigger one is boxed as before.

use std::marker::PhantomData;
use std::mem::{self, ManuallyDrop, MaybeUninit};
use std::ptr;

/// Closures up to this many machine words are stored without allocating.
pub(crate) const INLINE_WORDS: usize = 3;

type Storage = [MaybeUninit<usize>; INLINE_WORDS];

/// What to do with the bytes in `Storage` for one closure type.
struct VTable {
    /// Moves the closure out of the storage and calls it.
    call: unsafe fn(*mut Storage),
    /// Drops the closure in place, uncalled.
    drop: unsafe fn(*mut Storage),
}

/// The vtables of closure type `F`, as constants so `&` gives `'static` references.
struct VTables<F>(PhantomData<F>);

impl<F: FnOnce()> VTables<F> {
    const INLINE: VTable = VTable {
        call: call_inline::<F>,
        drop: drop_inline::<F>,
    };
    const BOXED: VTable = VTable {
        call: call_boxed::<F>,
        drop: drop_boxed::<F>,
    };
}

/// # Safety
/// `storage` holds an initialised `F` (written by `SmallFn::new`) that is not used again.
unsafe fn call_inline<F: FnOnce()>(storage: *mut Storage) {
    // SAFETY: per this function's contract; `new` checked size and alignment.
    let job = unsafe { ptr::read(storage.cast::<F>()) };
    job();
}

/// # Safety
/// As `call_inline`.
unsafe fn drop_inline<F: FnOnce()>(storage: *mut Storage) {
    // SAFETY: per this function's contract.
    unsafe { ptr::drop_in_place(storage.cast::<F>()) };
}

/// # Safety
/// `storage` starts with a pointer from `Box::<F>::into_raw` that is not used again.
unsafe fn call_boxed<F: FnOnce()>(storage: *mut Storage) {
    // SAFETY: per this function's contract.
    let job = unsafe { Box::from_raw(ptr::read(storage.cast::<*mut F>())) };
    job();
}

/// # Safety
/// As `call_boxed`.
unsafe fn drop_boxed<F: FnOnce()>(storage: *mut Storage) {
    // SAFETY: per this function's contract.
    drop(unsafe { Box::from_raw(ptr::read(storage.cast::<*mut F>())) });
}

/// A `Box<dyn FnOnce() + Send>` without the box for small closures.
pub(crate) struct SmallFn {
    storage: Storage,
    vtable: &'static VTable,
}

// SAFETY: `new` only accepts `F: Send`, and the storage is only touched by whoever owns
// the `SmallFn`.
unsafe impl Send for SmallFn {}

impl SmallFn {
    pub(crate) fn new<F: FnOnce() + Send + 'static>(job: F) -> Self {
        let mut storage: Storage = [MaybeUninit::uninit(); INLINE_WORDS];
        let fits = mem::size_of::<F>() <= mem::size_of::<Storage>()
            && mem::align_of::<F>() <= mem::align_of::<Storage>();
        let vtable = if fits {
            // SAFETY: `F` fits in `storage` in size and alignment (checked above).
            unsafe { ptr::write(storage.as_mut_ptr().cast::<F>(), job) };
            &VTables::<F>::INLINE
        } else {
            let boxed = Box::into_raw(Box::new(job));
            // SAFETY: a pointer fits in the first word of `storage`.
            unsafe { ptr::write(storage.as_mut_ptr().cast::<*mut F>(), boxed) };
            &VTables::<F>::BOXED
        };
        Self { storage, vtable }
    }

    /// Calls the closure (consuming it). A panic propagates; the closure is gone either way.
    pub(crate) fn call(self) {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: the storage holds the closure `new` put there, and `ManuallyDrop` makes
        // sure `Drop` will not touch it after `call` moved it out.
        unsafe { (this.vtable.call)(&mut this.storage) };
    }
}

impl Drop for SmallFn {
    fn drop(&mut self) {
        // SAFETY: not called (`call` forgets `self`), so the closure is still there.
        unsafe { (self.vtable.drop)(&mut self.storage) };
    }
}

#[cfg(all(test, not(flowbed_loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn small_and_large_closures_run_once_and_drop_their_captures() {
        let counter = Arc::new(AtomicUsize::new(0));
        let small = {
            let counter = counter.clone();
            SmallFn::new(move || {
                counter.fetch_add(1, Ordering::SeqCst);
            })
        };
        let big_capture = [7u64; 16];
        let large = {
            let counter = counter.clone();
            SmallFn::new(move || {
                counter.fetch_add(big_capture.iter().sum::<u64>() as usize, Ordering::SeqCst);
            })
        };
        small.call();
        large.call();
        assert_eq!(counter.load(Ordering::SeqCst), 1 + 112);
        assert_eq!(
            Arc::strong_count(&counter),
            1,
            "captures were dropped after the call"
        );
    }

    #[test]
    fn uncalled_closures_drop_their_captures() {
        let counter = Arc::new(AtomicUsize::new(0));
        let small = SmallFn::new({
            let counter = counter.clone();
            move || drop(counter)
        });
        let large = SmallFn::new({
            let counter = counter.clone();
            let pad = [0u8; 64];
            move || drop((counter, pad))
        });
        assert_eq!(Arc::strong_count(&counter), 3);
        drop(small);
        drop(large);
        assert_eq!(Arc::strong_count(&counter), 1);
    }

    #[test]
    fn a_panicking_closure_is_consumed_once() {
        let counter = Arc::new(AtomicUsize::new(0));
        let job = SmallFn::new({
            let counter = counter.clone();
            move || {
                let _keep = counter;
                panic!("boom");
            }
        });
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.call()));
        assert!(outcome.is_err());
        assert_eq!(Arc::strong_count(&counter), 1);
    }

    #[test]
    fn over_aligned_closures_are_boxed() {
        #[repr(align(32))]
        struct Aligned(u8);
        let value = Aligned(5);
        let seen = Arc::new(AtomicUsize::new(0));
        let job = SmallFn::new({
            let seen = seen.clone();
            move || {
                seen.store(usize::from(value.0), Ordering::SeqCst);
            }
        });
        job.call();
        assert_eq!(seen.load(Ordering::SeqCst), 5);
    }
}
