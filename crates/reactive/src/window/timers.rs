//! The timer queue of the window engines: `(time, key)` in time order, so firing costs
//! `O(log n)` per due timer instead of a scan over every key.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use super::Timestamp;

/// One timer; ordered by time only (keys due at the same time pop in any order).
#[derive(Debug)]
struct Timer<K> {
    time: Timestamp,
    key: K,
}

impl<K> PartialEq for Timer<K> {
    fn eq(&self, other: &Self) -> bool {
        self.time == other.time
    }
}

impl<K> Eq for Timer<K> {}

impl<K> PartialOrd for Timer<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<K> Ord for Timer<K> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.time.cmp(&other.time)
    }
}

/// Timers by watermark time. Each key keeps its own "scheduled" time; an entry whose
/// time no longer matches its key's scheduled time is stale and skipped when popped.
#[derive(Debug)]
pub(crate) struct Timers<K> {
    heap: BinaryHeap<Reverse<Timer<K>>>,
}

impl<K> Timers<K> {
    pub(crate) fn new() -> Self {
        Self {
            heap: BinaryHeap::new(),
        }
    }

    /// Adds a timer for `key` at `time`.
    pub(crate) fn schedule(&mut self, time: Timestamp, key: K) {
        self.heap.push(Reverse(Timer { time, key }));
    }

    /// The earliest timer (possibly stale).
    pub(crate) fn next(&self) -> Option<Timestamp> {
        self.heap.peek().map(|timer| timer.0.time)
    }

    /// Removes and returns one timer due at `watermark` (time `<= watermark`), earliest
    /// first.
    pub(crate) fn pop_due(&mut self, watermark: Timestamp) -> Option<(Timestamp, K)> {
        if self.next()? > watermark {
            return None;
        }
        self.heap.pop().map(|timer| (timer.0.time, timer.0.key))
    }

    /// Drops every timer.
    pub(crate) fn clear(&mut self) {
        self.heap.clear();
    }
}
