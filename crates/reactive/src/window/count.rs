//! The engine of count windows: per key, every `n` events fire a window.

use std::collections::VecDeque;

use hashbrown::HashMap;
use std::hash::Hash;

use super::aggregator::Aggregator;
use super::event::{Firing, WindowEvent, WindowResult};
use super::{Timestamp, Window};

/// One key's current window.
#[derive(Debug)]
struct KeyCount<Acc> {
    /// The key's event number where the current window starts.
    start: u64,
    /// Events in the current window.
    filled: u64,
    acc: Option<Acc>,
}

/// Count windows for every key.
#[derive(Debug)]
pub(crate) struct Counts<K, Acc> {
    n: u64,
    keys: HashMap<K, KeyCount<Acc>>,
}

fn window(start: u64, len: u64) -> Window {
    let start = Timestamp::try_from(start).unwrap_or(Timestamp::MAX);
    Window {
        start,
        end: start.saturating_add(Timestamp::try_from(len).unwrap_or(Timestamp::MAX)),
    }
}

impl<K: Hash + Eq + Clone, Acc> Counts<K, Acc> {
    pub(crate) fn new(n: u64) -> Self {
        Self {
            n,
            keys: HashMap::new(),
        }
    }

    /// Adds `item`; fires the key's window when it holds `n` events.
    pub(crate) fn on_event<T, A: Aggregator<T, Acc = Acc>>(
        &mut self,
        agg: &A,
        key: K,
        item: &T,
        out: &mut VecDeque<WindowEvent<K, A::Out, T>>,
    ) {
        if !self.keys.contains_key(&key) {
            let fresh = KeyCount {
                start: 0,
                filled: 0,
                acc: None,
            };
            self.keys.insert(key.clone(), fresh);
        }
        let Some(state) = self.keys.get_mut(&key) else {
            return;
        };
        agg.add(state.acc.get_or_insert_with(|| agg.init()), item);
        state.filled += 1;
        if state.filled < self.n {
            return;
        }
        let start = state.start;
        state.start += state.filled;
        state.filled = 0;
        if let Some(acc) = state.acc.take() {
            out.push_back(WindowEvent::Fired(WindowResult {
                key,
                window: window(start, self.n),
                value: agg.finish(&acc),
                firing: Firing::OnTime,
            }));
        }
    }

    /// End of input: fires every key's partial window.
    pub(crate) fn flush<T, A: Aggregator<T, Acc = Acc>>(
        &mut self,
        agg: &A,
        out: &mut VecDeque<WindowEvent<K, A::Out, T>>,
    ) {
        for (key, state) in self.keys.drain() {
            if let Some(acc) = state.acc {
                out.push_back(WindowEvent::Fired(WindowResult {
                    key,
                    window: window(state.start, state.filled),
                    value: agg.finish(&acc),
                    firing: Firing::OnTime,
                }));
            }
        }
    }

    /// Drops all state (after an error).
    pub(crate) fn clear(&mut self) {
        self.keys.clear();
    }
}
