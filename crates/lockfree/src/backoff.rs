//! Exponential backoff for contended CAS loops and short waits.

use crate::sync::{spin_loop, yield_now};

/// Spins for exponentially longer after each failed attempt, then yields the CPU.
///
/// On a machine with fewer cores than threads, spinning while the thread we wait for is
/// descheduled only burns its time slice; yielding early is what keeps 4 producers and 4
/// consumers on 2 cores from collapsing. Under loom every step is a yield so the model
/// checker can schedule the thread we are waiting for.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use flowbed_lockfree::Backoff;
///
/// let flag = AtomicBool::new(true);
/// let mut backoff = Backoff::new();
/// while !flag.load(Ordering::Acquire) && !backoff.is_completed() {
///     backoff.snooze();
/// }
/// ```
#[derive(Debug, Default)]
pub struct Backoff {
    step: u32,
}

/// Above this step `spin` stops growing the spin count.
const SPIN_LIMIT: u32 = 6;
/// Above this step `snooze` yields instead of spinning, and `is_completed` turns true.
const YIELD_LIMIT: u32 = 10;

impl Backoff {
    /// A fresh backoff at its first (shortest) step.
    pub const fn new() -> Self {
        Self { step: 0 }
    }

    /// Backs off after losing a race (a failed CAS): the other thread made progress, so
    /// only spin a little.
    #[inline]
    pub fn spin(&mut self) {
        if cfg!(flowbed_loom) {
            yield_now();
            return;
        }
        for _ in 0..1u32 << self.step.min(SPIN_LIMIT) {
            spin_loop();
        }
        if self.step <= SPIN_LIMIT {
            self.step += 1;
        }
    }

    /// Backs off while waiting for another thread to finish a step (a slot being written):
    /// spin, then give the CPU away.
    #[inline]
    pub fn snooze(&mut self) {
        if cfg!(flowbed_loom) || self.step > SPIN_LIMIT {
            yield_now();
        } else {
            for _ in 0..1u32 << self.step {
                spin_loop();
            }
        }
        if self.step <= YIELD_LIMIT {
            self.step += 1;
        }
    }

    /// True once waiting longer should park the thread instead of spinning.
    #[inline]
    pub fn is_completed(&self) -> bool {
        self.step > YIELD_LIMIT
    }
}
