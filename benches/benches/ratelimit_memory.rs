//! Bytes per tracked key: flowbed's `KeyedRateLimiter` against governor's keyed limiter
//! (`RateLimiter::keyed`, dashmap), both with `u64` keys and their default hasher
//! (`RandomState`) and shard count.
//!
//! A counting global allocator wraps the system allocator. For each limiter, the bytes
//! live before it is built are subtracted from the bytes live once `N` distinct keys have
//! been checked once each (the limiter itself included, amortised over the keys); the peak
//! during insertion (table growth holds the old and the new table at once) is reported
//! too. Keys are `0..N`, inserted by one thread; the quota is one cell per hour, so every
//! key stays busy and no sweep may forget one. The counts depend only on how the keys fall
//! into the shards and the shard count (4 × cores, a power of two, for both), so they are
//! repeatable on one machine.
//!
//! Run: `cargo bench -p flowbed-benches --bench ratelimit_memory` (100,000 and 1,000,000
//! keys); with `-- --test` only 100,000 keys.

use std::alloc::{GlobalAlloc, Layout, System};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};

use flowbed_ratelimit::{KeyedRateLimiter, Quota};

/// The system allocator, counting the bytes currently allocated and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

impl Counting {
    fn grew(size: usize) {
        let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
        PEAK.fetch_max(live, Ordering::Relaxed);
    }

    fn shrank(size: usize) {
        LIVE.fetch_sub(size, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded to `System` with the caller's arguments; the counters
// are only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which we forward.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            Self::grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            Self::grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (through us) with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        Self::shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` was allocated by `System` (through us) with `layout`; the caller
        // upholds the rest of `realloc`'s contract.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            Self::shrank(layout.size());
            Self::grew(new_size);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// What one limiter cost for `keys` keys.
struct Usage {
    /// Bytes still allocated after the insertions, over the baseline.
    live: usize,
    /// The most bytes allocated at once during construction and insertion, over the
    /// baseline.
    peak: usize,
}

/// Builds a limiter with `build`, checks keys `0..keys` once each with `insert` (each must
/// be admitted), and measures the bytes it holds.
fn measure<L>(
    keys: u64,
    build: impl FnOnce() -> L,
    insert: impl Fn(&L, u64) -> bool,
    len: impl Fn(&L) -> usize,
) -> Usage {
    let baseline = LIVE.load(Ordering::Relaxed);
    PEAK.store(baseline, Ordering::Relaxed);
    let limiter = build();
    for key in 0..keys {
        assert!(insert(&limiter, key), "key {key} was refused");
    }
    assert_eq!(len(&limiter) as u64, keys, "not every key is tracked");
    let usage = Usage {
        live: LIVE.load(Ordering::Relaxed) - baseline,
        peak: PEAK.load(Ordering::Relaxed) - baseline,
    };
    drop(limiter);
    usage
}

fn report(name: &str, keys: u64, usage: &Usage) {
    let keys_f = keys as f64;
    println!(
        "ratelimit_memory/{keys}_keys/{name:<8} {:>12} bytes  {:>7.1} bytes/key  (peak {:>7.1} bytes/key)",
        usage.live,
        usage.live as f64 / keys_f,
        usage.peak as f64 / keys_f,
    );
}

fn main() {
    let test_mode = std::env::args().any(|arg| arg == "--test");
    let sizes: &[u64] = if test_mode {
        &[100_000]
    } else {
        &[100_000, 1_000_000]
    };
    // One cell per hour: a key's state stays busy for an hour after its first check.
    let one_per_hour = Quota::per_hour(NonZeroU32::MIN);
    let governor_one_per_hour = governor::Quota::per_hour(NonZeroU32::MIN);
    println!("payload: u64 key + u64 state = 16 bytes/key for both");
    for &keys in sizes {
        let flowbed = measure(
            keys,
            || KeyedRateLimiter::<u64>::new(one_per_hour),
            |limiter, key| limiter.check(&key).is_ok_and(|d| d.is_allowed()),
            KeyedRateLimiter::len,
        );
        report("flowbed", keys, &flowbed);
        let governor = measure(
            keys,
            || governor::RateLimiter::<u64, _, _>::keyed(governor_one_per_hour),
            |limiter, key| limiter.check_key(&key).is_ok(),
            |limiter| limiter.len(),
        );
        report("governor", keys, &governor);
        println!(
            "ratelimit_memory/{keys}_keys: flowbed/governor = {:.3}",
            flowbed.live as f64 / governor.live as f64
        );
    }
}
