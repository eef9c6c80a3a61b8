//! The engine of session windows: per key, disjoint sessions ordered by start; an event
//! opens `[t, t + gap)` and merges every session it overlaps or touches.

use std::collections::{BTreeMap, VecDeque};

use hashbrown::HashMap;
use std::hash::Hash;

use super::aggregator::Aggregator;
use super::event::{Firing, WindowEvent, WindowResult};
use super::timers::Timers;
use super::{Timestamp, Window};

/// One open session.
#[derive(Debug)]
struct Session<Acc> {
    end: Timestamp,
    acc: Acc,
    /// Whether it fired at its current extent (then it waits for its lateness to pass).
    fired: bool,
}

/// One key's sessions.
#[derive(Debug)]
struct KeySessions<Acc> {
    /// Start → session; sessions are disjoint, so ends are ordered like starts.
    sessions: BTreeMap<Timestamp, Session<Acc>>,
    scheduled: Option<Timestamp>,
}

/// Session windows for every key.
#[derive(Debug)]
pub(crate) struct Sessions<K, Acc> {
    gap: Timestamp,
    keys: HashMap<K, KeySessions<Acc>>,
    timers: Timers<K>,
}

impl<K: Hash + Eq + Clone, Acc: Clone> Sessions<K, Acc> {
    pub(crate) fn new(gap: Timestamp) -> Self {
        Self {
            gap,
            keys: HashMap::new(),
            timers: Timers::new(),
        }
    }

    pub(crate) fn next_timer(&self) -> Option<Timestamp> {
        self.timers.next()
    }

    /// Adds `item` at `time` to its session (merging the sessions it bridges), or sends it
    /// to the side output when it opens a new session that is already past lateness.
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
        let end = time.saturating_add(self.gap);
        let mut overlapping = Vec::new();
        if let Some(state) = self.keys.get(&key) {
            for (&start, session) in state.sessions.range(..=end).rev() {
                if session.end < time {
                    break;
                }
                overlapping.push(start);
            }
        }
        if overlapping.is_empty() && (end - 1).saturating_add(lateness) <= watermark {
            out.push_back(WindowEvent::Late(item));
            return;
        }
        let state = self.keys.entry(key.clone()).or_insert_with(|| KeySessions {
            sessions: BTreeMap::new(),
            scheduled: None,
        });
        let mut merged: Option<(Timestamp, Session<Acc>)> = None;
        for start in overlapping.into_iter().rev() {
            let Some(session) = state.sessions.remove(&start) else {
                continue;
            };
            merged = Some(match merged {
                None => (start, session),
                Some((first, mut into)) => {
                    agg.merge(&mut into.acc, &session.acc);
                    into.end = into.end.max(session.end);
                    (first, into)
                }
            });
        }
        let (start, mut session) = match merged {
            Some((start, session)) => (start.min(time), session),
            None => (
                time,
                Session {
                    end,
                    acc: agg.init(),
                    fired: false,
                },
            ),
        };
        session.end = session.end.max(end);
        agg.add(&mut session.acc, &item);
        let window = Window {
            start,
            end: session.end,
        };
        session.fired = window.max_timestamp() <= watermark;
        if session.fired {
            out.push_back(WindowEvent::Fired(WindowResult {
                key: key.clone(),
                window,
                value: agg.finish(&session.acc),
                firing: Firing::Late,
            }));
        }
        state.sessions.insert(start, session);
        self.reschedule(key, lateness);
    }

    /// Fires (on time) every session whose last instant is `<= watermark` and drops the
    /// sessions past lateness, in time order.
    pub(crate) fn advance<T, A: Aggregator<T, Acc = Acc>>(
        &mut self,
        agg: &A,
        watermark: Timestamp,
        lateness: Timestamp,
        out: &mut VecDeque<WindowEvent<K, A::Out, T>>,
    ) {
        while let Some((time, key)) = self.timers.pop_due(watermark) {
            let Some(state) = self.keys.get_mut(&key) else {
                continue;
            };
            if state.scheduled != Some(time) {
                continue;
            }
            state.scheduled = None;
            for (&start, session) in &mut state.sessions {
                let window = Window {
                    start,
                    end: session.end,
                };
                if !session.fired && window.max_timestamp() <= time {
                    session.fired = true;
                    out.push_back(WindowEvent::Fired(WindowResult {
                        key: key.clone(),
                        window,
                        value: agg.finish(&session.acc),
                        firing: Firing::OnTime,
                    }));
                }
            }
            state.sessions.retain(|_, session| {
                !session.fired || (session.end - 1).saturating_add(lateness) > time
            });
            if state.sessions.is_empty() {
                self.keys.remove(&key);
            } else {
                self.reschedule(key, lateness);
            }
        }
    }

    /// Sets `key`'s timer to the earliest on-time firing or expiry of its sessions.
    fn reschedule(&mut self, key: K, lateness: Timestamp) {
        let Some(state) = self.keys.get_mut(&key) else {
            return;
        };
        let next = state
            .sessions
            .values()
            .map(|session| {
                let max = session.end - 1;
                if session.fired {
                    max.saturating_add(lateness)
                } else {
                    max
                }
            })
            .min();
        if let Some(next) = next
            && state.scheduled != Some(next)
        {
            state.scheduled = Some(next);
            self.timers.schedule(next, key);
        }
    }

    /// Drops all state (after an error).
    pub(crate) fn clear(&mut self) {
        self.keys.clear();
        self.timers.clear();
    }
}
