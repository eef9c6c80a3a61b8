//! Reusable storage for the running handler's future, so handling a message allocates
//! nothing beyond the message's envelope.
//!
//! A handler's future has a different type per message type and borrows the actor and its
//! context, so the actor's loop cannot name it. The usual answer is a `Box<dyn Future>` per
//! message (what `async_trait` does). Instead the loop keeps one heap block and each
//! handler future is written into it; the block grows to the largest future seen and is
//! reused from then on.

use std::alloc::{self, Layout};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::ptr::{self, NonNull};
use std::task::{Context, Poll};

/// The smallest alignment a block is allocated with, so most futures fit without a new one.
const MIN_ALIGN: usize = 16;

/// One reusable block for the future of the handler that runs now.
pub(crate) struct HandlerSlot {
    block: NonNull<u8>,
    layout: Layout,
    /// True while a [`Running`] may still hold a future in the block: set when one is
    /// written, cleared when it is dropped. A `Running` leaked with `mem::forget` leaves it
    /// set, and then the block is leaked too, never reused: the memory of a pinned future
    /// must stay valid until its destructor runs, and a leaked one never runs.
    lent: bool,
}

// SAFETY: the block holds only futures that are `Send` (see `run`), and it is used only
// through `&mut self`.
unsafe impl Send for HandlerSlot {}

impl HandlerSlot {
    pub(crate) fn new() -> Self {
        Self {
            block: NonNull::dangling(),
            layout: Layout::new::<()>(),
            lent: false,
        }
    }

    /// Moves `future` into the block (growing it if the future does not fit) and returns
    /// it pinned there. The future is dropped when the returned [`Running`] is.
    pub(crate) fn run<'a, F>(&'a mut self, future: F) -> Running<'a>
    where
        F: Future<Output = ()> + Send + 'a,
    {
        let needed = Layout::new::<F>();
        let place: *mut F = if needed.size() == 0 {
            NonNull::<F>::dangling().as_ptr()
        } else {
            if self.lent || !fits(needed, self.layout) {
                self.replace_block(needed);
            }
            self.block.as_ptr().cast::<F>()
        };
        // SAFETY: `place` is valid for writes of `F` and aligned for it (a fresh or large
        // enough block aligned to at least `needed.align()`, or a dangling pointer for a
        // zero-sized `F`), and holds no live value: the previous future was dropped when
        // its `Running` was (`lent` is false), or the block was just replaced.
        unsafe { ptr::write(place, future) };
        self.lent = true;
        let future: *mut (dyn Future<Output = ()> + Send + 'a) = place;
        Running {
            // SAFETY: `place` is non-null (a block or a dangling non-null pointer).
            future: unsafe { NonNull::new_unchecked(future) },
            lent: &mut self.lent,
            _slot: PhantomData,
        }
    }

    fn replace_block(&mut self, needed: Layout) {
        self.free_block();
        let size = needed.size().max(self.layout.size()).next_power_of_two();
        let align = needed.align().max(MIN_ALIGN);
        let layout = Layout::from_size_align(size, align).expect("a future's layout is valid");
        // SAFETY: `layout` has a non-zero size (`needed.size() > 0`).
        let block = unsafe { alloc::alloc(layout) };
        self.block = NonNull::new(block).unwrap_or_else(|| alloc::handle_alloc_error(layout));
        self.layout = layout;
        self.lent = false;
    }

    fn free_block(&mut self) {
        if self.lent {
            // A leaked `Running` may still own a future here: leak the block with it.
        } else if self.layout.size() > 0 {
            // SAFETY: the block was allocated with `self.layout` and holds no live value.
            unsafe { alloc::dealloc(self.block.as_ptr(), self.layout) };
        }
        self.block = NonNull::dangling();
        self.layout = Layout::new::<()>();
    }
}

fn fits(needed: Layout, block: Layout) -> bool {
    needed.size() <= block.size() && needed.align() <= block.align()
}

impl Drop for HandlerSlot {
    fn drop(&mut self) {
        self.free_block();
    }
}

impl std::fmt::Debug for HandlerSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandlerSlot")
            .field("capacity", &self.layout.size())
            .finish()
    }
}

/// A handler future pinned in a [`HandlerSlot`]; dropping it drops the future in place.
pub(crate) struct Running<'a> {
    future: NonNull<dyn Future<Output = ()> + Send + 'a>,
    lent: &'a mut bool,
    _slot: PhantomData<&'a mut HandlerSlot>,
}

// SAFETY: the future is `Send` (required by `HandlerSlot::run`) and owned by this value.
unsafe impl Send for Running<'_> {}

impl Future for Running<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: the future lives in the slot's block, which is not moved, reused or freed
        // while this `Running` borrows the slot, and is dropped in place only by our `Drop`:
        // it is pinned. No other reference to it exists.
        let future = unsafe { Pin::new_unchecked(&mut *self.get_unchecked_mut().future.as_ptr()) };
        future.poll(cx)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        // SAFETY: the future was written by `HandlerSlot::run` and is dropped exactly once,
        // here; the block stays allocated (the slot is borrowed by us).
        unsafe { ptr::drop_in_place(self.future.as_ptr()) };
        *self.lent = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn block_on(mut future: Running<'_>) {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        // Our test futures complete within a few polls.
        for _ in 0..16 {
            if Pin::new(&mut future).poll(&mut cx).is_ready() {
                return;
            }
        }
        panic!("future did not complete");
    }

    struct CountDrop(Arc<AtomicUsize>);
    impl Drop for CountDrop {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn futures_of_different_sizes_reuse_and_grow_the_block() {
        let mut slot = HandlerSlot::new();
        let mut total = 0u64;
        for round in 0..4u64 {
            let small = round;
            block_on(slot.run(async { total += small }));
            let big = [round; 64];
            let sum = &mut total;
            block_on(slot.run(async move { *sum += big.iter().sum::<u64>() }));
            block_on(slot.run(async {}));
        }
        assert_eq!(total, 6 + 64 * 6);
        assert!(slot.layout.size() >= 64 * 8);
    }

    #[test]
    fn every_future_is_dropped_once_also_unfinished_ones() {
        let drops = Arc::new(AtomicUsize::new(0));
        let mut slot = HandlerSlot::new();
        for _ in 0..3 {
            let guard = CountDrop(drops.clone());
            block_on(slot.run(async move {
                let _guard = guard;
            }));
        }
        let guard = CountDrop(drops.clone());
        let pending = slot.run(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        });
        drop(pending);
        assert_eq!(drops.load(Ordering::SeqCst), 4);
    }

    #[test]
    #[cfg_attr(miri, ignore = "leaks a block on purpose, which miri reports")]
    fn a_leaked_future_leaks_its_block_instead_of_reusing_it() {
        let drops = Arc::new(AtomicUsize::new(0));
        let mut slot = HandlerSlot::new();
        let guard = CountDrop(drops.clone());
        let leaked = slot.run(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        });
        std::mem::forget(leaked);
        let leaked_block = slot.block;
        let payload = [1u8; 32];
        block_on(slot.run(async move {
            std::hint::black_box(payload);
        }));
        assert_ne!(
            slot.block, leaked_block,
            "a leaked future's memory was reused"
        );
        assert_eq!(drops.load(Ordering::SeqCst), 0);
    }
}
