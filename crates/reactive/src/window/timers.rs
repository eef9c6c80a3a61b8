//! The timer queue of the window engines: `(time, key)` in time order, so firing costs
//! `O(log n)` per due timer instead of a scan over every key.

use std::collections::BTreeMap;

use super::Timestamp;

/// Timers by watermark time. Each key keeps its own "scheduled" time; an entry whose
/// time no longer matches its key's scheduled time is stale and skipped when popped.
#[derive(Debug)]
pub(crate) struct Timers<K> {
    queue: BTreeMap<Timestamp, Vec<K>>,
}

impl<K> Timers<K> {
    pub(crate) fn new() -> Self {
        Self {
            queue: BTreeMap::new(),
        }
    }

    /// Adds a timer for `key` at `time`.
    pub(crate) fn schedule(&mut self, time: Timestamp, key: K) {
        self.queue.entry(time).or_default().push(key);
    }

    /// The earliest timer (possibly stale).
    pub(crate) fn next(&self) -> Option<Timestamp> {
        self.queue.first_key_value().map(|(&time, _)| time)
    }

    /// Removes and returns one timer due at `watermark` (time `<= watermark`), earliest
    /// first.
    pub(crate) fn pop_due(&mut self, watermark: Timestamp) -> Option<(Timestamp, K)> {
        let mut entry = self.queue.first_entry()?;
        let time = *entry.key();
        if time > watermark {
            return None;
        }
        let key = entry.get_mut().pop();
        if entry.get().is_empty() {
            entry.remove();
        }
        key.map(|key| (time, key))
    }

    /// Drops every timer.
    pub(crate) fn clear(&mut self) {
        self.queue.clear();
    }
}
