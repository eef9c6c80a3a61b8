//! The engine of tumbling and sliding windows: per key, a map of panes (slices of
//! `gcd(size, slide)` ms) holding accumulators; a fired window merges its panes through
//! [`TwoStacks`], so each event touches one accumulator however many windows it is in.

use std::collections::{BTreeMap, VecDeque};

use hashbrown::HashMap;
use std::hash::Hash;

use super::aggregator::Aggregator;
use super::event::{Firing, WindowEvent, WindowResult};
use super::sliding::TwoStacks;
use super::timers::Timers;
use super::{Timestamp, Window, align_down};

/// One key's panes.
#[derive(Debug)]
struct KeyPanes<Acc> {
    /// Pane start → accumulator of the events in `[start, start + pane)`.
    panes: BTreeMap<Timestamp, Acc>,
    /// The panes of the last window fired on time, ready to slide to the next one.
    stacks: TwoStacks<Acc>,
    /// The pane starts `[low, high)` that `stacks` covers.
    low: Timestamp,
    high: Timestamp,
    /// This key's timer in the queue.
    scheduled: Option<Timestamp>,
}

/// Tumbling (`size == slide`) and sliding windows for every key.
#[derive(Debug)]
pub(crate) struct Panes<K, Acc> {
    geometry: Geometry,
    /// The pane of the last event: `[start, end)` and the start of the last window holding
    /// it. Events mostly fall into the same pane as the one before: they skip the two
    /// divisions that place an event.
    hot_pane: (Timestamp, Timestamp, Timestamp),
    keys: HashMap<K, KeyPanes<Acc>>,
    timers: Timers<K>,
}

/// Window size, slide and pane length, in ms.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    size: Timestamp,
    slide: Timestamp,
    pane: Timestamp,
}

impl Geometry {
    /// The start of the last window containing `time`.
    fn last_start(&self, time: Timestamp) -> Timestamp {
        align_down(time, self.slide)
    }

    /// The start of the first window containing `time`.
    fn first_start(&self, time: Timestamp) -> Timestamp {
        align_down(time.saturating_sub(self.size), self.slide) + self.slide
    }

    /// When the last window holding the pane at `start` is past its lateness.
    fn expiry(&self, start: Timestamp, lateness: Timestamp) -> Timestamp {
        (self.last_start(start) + self.size - 1).saturating_add(lateness)
    }
}

fn gcd(mut a: Timestamp, mut b: Timestamp) -> Timestamp {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl<K: Hash + Eq + Clone, Acc: Clone> Panes<K, Acc> {
    pub(crate) fn new(size: Timestamp, slide: Timestamp) -> Self {
        Self {
            hot_pane: (Timestamp::MAX, Timestamp::MIN, 0),
            geometry: Geometry {
                size,
                slide,
                pane: gcd(size, slide),
            },
            keys: HashMap::new(),
            timers: Timers::new(),
        }
    }

    pub(crate) fn next_timer(&self) -> Option<Timestamp> {
        self.timers.next()
    }

    /// Adds `item` at `time`, or sends it to the side output if every window holding it is
    /// past lateness; fires the windows it updates that the watermark already passed.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_event<T, A: Aggregator<T, Acc = Acc>>(
        &mut self,
        agg: &A,
        key: K,
        time: Timestamp,
        item: T,
        watermark: Timestamp,
        lateness: Timestamp,
        out: &mut VecDeque<WindowEvent<K, A::Out, T>>,
    ) {
        let g = self.geometry;
        let (hot_start, hot_end, hot_last_start) = self.hot_pane;
        let (pane_start, last_start) = if hot_start <= time && time < hot_end {
            (hot_start, hot_last_start)
        } else {
            let pane_start = align_down(time, g.pane);
            let last_start = g.last_start(time);
            self.hot_pane = (pane_start, pane_start.saturating_add(g.pane), last_start);
            (pane_start, last_start)
        };
        if (last_start + g.size - 1).saturating_add(lateness) <= watermark {
            out.push_back(WindowEvent::Late(item));
            return;
        }
        let state = if let Some(state) = self.keys.get_mut(&key) {
            state
        } else {
            self.keys.entry(key.clone()).or_insert_with(|| KeyPanes {
                panes: BTreeMap::new(),
                stacks: TwoStacks::new(),
                low: 0,
                high: 0,
                scheduled: None,
            })
        };
        let mut new_pane = false;
        let acc = state.panes.entry(pane_start).or_insert_with(|| {
            new_pane = true;
            agg.init()
        });
        agg.add(acc, &item);
        if state.low <= pane_start && pane_start < state.high {
            state.stacks.clear();
            (state.low, state.high) = (0, 0);
        }
        if time > watermark {
            // Every window holding `time` ends after the watermark: nothing fires now,
            // and the key's timer only changes when a pane appeared.
            if new_pane {
                Self::reschedule(g, state, &mut self.timers, key, watermark, lateness);
            }
            return;
        }
        // Late re-fires: the live windows holding `time` that the watermark passed.
        let mut start = g.first_start(time);
        while start <= last_start {
            let window = Window {
                start,
                end: start + g.size,
            };
            let max = window.max_timestamp();
            if max <= watermark && max.saturating_add(lateness) > watermark {
                let mut panes = state
                    .panes
                    .range(window.start..window.end)
                    .map(|(_, acc)| acc);
                if let Some(first) = panes.next() {
                    let mut total = first.clone();
                    panes.for_each(|acc| agg.merge(&mut total, acc));
                    out.push_back(WindowEvent::Fired(WindowResult {
                        key: key.clone(),
                        window,
                        value: agg.finish(&total),
                        firing: Firing::Late,
                    }));
                }
            }
            start += g.slide;
        }
        Self::reschedule(g, state, &mut self.timers, key, watermark, lateness);
    }

    /// Fires (on time) every window whose last instant is `<= watermark` and drops the
    /// panes past lateness, in time order.
    pub(crate) fn advance<T, A: Aggregator<T, Acc = Acc>>(
        &mut self,
        agg: &A,
        watermark: Timestamp,
        lateness: Timestamp,
        out: &mut VecDeque<WindowEvent<K, A::Out, T>>,
    ) {
        let g = self.geometry;
        while let Some((time, key)) = self.timers.pop_due(watermark) {
            let Some(state) = self.keys.get_mut(&key) else {
                continue;
            };
            if state.scheduled != Some(time) {
                continue;
            }
            state.scheduled = None;
            let end = time.saturating_add(1);
            if (end - g.size).rem_euclid(g.slide) == 0 {
                let window = Window {
                    start: end - g.size,
                    end,
                };
                if let Some(value) = Self::window_value(agg, state, window, g.size == g.slide) {
                    out.push_back(WindowEvent::Fired(WindowResult {
                        key: key.clone(),
                        window,
                        value,
                        firing: Firing::OnTime,
                    }));
                }
            }
            while let Some(entry) = state.panes.first_entry() {
                if g.expiry(*entry.key(), lateness) > time {
                    break;
                }
                entry.remove();
            }
            if state.panes.is_empty() {
                self.keys.remove(&key);
            } else {
                Self::reschedule(g, state, &mut self.timers, key, time, lateness);
            }
        }
    }

    /// The value of `window` (fired on time, so windows of a key come in order): its one
    /// pane when tumbling, else slides the key's two stacks to it.
    fn window_value<T, A: Aggregator<T, Acc = Acc>>(
        agg: &A,
        state: &mut KeyPanes<Acc>,
        window: Window,
        tumbling: bool,
    ) -> Option<A::Out> {
        if tumbling {
            return state.panes.get(&window.start).map(|acc| agg.finish(acc));
        }
        let merge = |into: &mut Acc, other: &Acc| agg.merge(into, other);
        if window.start < state.low || window.start > state.high || window.end < state.high {
            state.stacks.clear();
            (state.low, state.high) = (window.start, window.start);
        }
        state.stacks.evict_before(window.start, merge);
        state.low = window.start;
        for (&start, acc) in state.panes.range(state.high..window.end) {
            state.stacks.push(start, acc.clone(), merge);
        }
        state.high = window.end;
        state.stacks.query(merge, |acc| agg.finish(acc))
    }

    /// Sets `key`'s timer to its next on-time firing after `cursor` or its next pane
    /// expiry, whichever comes first.
    fn reschedule(
        g: Geometry,
        state: &mut KeyPanes<Acc>,
        timers: &mut Timers<K>,
        key: K,
        cursor: Timestamp,
        lateness: Timestamp,
    ) {
        let Some((&first_pane, _)) = state.panes.first_key_value() else {
            return;
        };
        let mut next = g.expiry(first_pane, lateness);
        // The first window end after `cursor + 1`, then the first non-empty one.
        // (Windows ending before the first pane are empty: start the search there.)
        let after = cursor
            .max(first_pane.saturating_sub(g.size))
            .saturating_add(1);
        let first_end = g.first_start(after).saturating_add(g.size);
        let from = first_end.saturating_sub(g.size);
        if let Some((&pane, _)) = state.panes.range(from..).next() {
            let end = first_end.max(g.first_start(pane) + g.size);
            next = next.min(end - 1);
        }
        if state.scheduled != Some(next) {
            state.scheduled = Some(next);
            timers.schedule(next, key);
        }
    }

    /// Drops all state (after an error).
    pub(crate) fn clear(&mut self) {
        self.keys.clear();
        self.timers.clear();
    }
}
