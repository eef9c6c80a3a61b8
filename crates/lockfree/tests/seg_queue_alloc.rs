//! `SegQueue` recycles its blocks: in steady state (pops keeping pace with pushes) it
//! allocates nothing, and after a burst drains it keeps only a bounded number of spares.
//!
//! A counting global allocator measures it, so this file is its own test binary and runs
//! its checks in one test (no other test thread allocates concurrently).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use flowbed_lockfree::SegQueue;

struct CountingAllocator;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator and only counts.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        LIVE_BYTES.fetch_add(layout.size(), Ordering::SeqCst);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::SeqCst);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

#[test]
fn steady_state_allocates_nothing_and_a_drained_burst_returns_its_memory() {
    let q = SegQueue::new();
    let block_bytes = {
        let before = LIVE_BYTES.load(Ordering::SeqCst);
        q.push(0u64).unwrap();
        LIVE_BYTES.load(Ordering::SeqCst) - before
    };
    q.pop().unwrap();

    // Warm up: let the spare list fill.
    for i in 0..1_000u64 {
        q.push(i).unwrap();
        q.push(i).unwrap();
        q.pop().unwrap();
        q.pop().unwrap();
    }
    let allocations = ALLOCATIONS.load(Ordering::SeqCst);
    let rounds = if cfg!(miri) { 1_000 } else { 1_000_000u64 };
    for i in 0..rounds {
        q.push(i).unwrap();
        q.push(i).unwrap();
        assert_eq!(q.pop(), Ok(i));
        assert_eq!(q.pop(), Ok(i));
    }
    assert_eq!(
        ALLOCATIONS.load(Ordering::SeqCst),
        allocations,
        "steady-state push/pop allocated"
    );

    // A burst of 100k values takes ~3,200 blocks; once drained, at most the current block
    // plus 4 spares stay.
    let before_burst = LIVE_BYTES.load(Ordering::SeqCst);
    let burst = if cfg!(miri) { 500 } else { 100_000u64 };
    for i in 0..burst {
        q.push(i).unwrap();
    }
    assert!(LIVE_BYTES.load(Ordering::SeqCst) > before_burst + 10 * block_bytes);
    for i in 0..burst {
        assert_eq!(q.pop(), Ok(i));
    }
    let after_drain = LIVE_BYTES.load(Ordering::SeqCst);
    assert!(
        after_drain <= before_burst + 5 * block_bytes,
        "drained queue holds {} bytes more than before the burst (block = {block_bytes})",
        after_drain.saturating_sub(before_burst)
    );
}
