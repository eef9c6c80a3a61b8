//! Events: state transitions and call outcomes, delivered to subscribed callbacks.

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::sync::{AtomicU64, AtomicUsize, Ordering, RwLock, read, write};
use crate::{Outcome, Rejected, State};

/// Something that happened to a breaker.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The breaker moved from one state to another (exactly one event per transition,
    /// however many threads raced to cause it).
    Transition {
        /// The state left.
        from: State,
        /// The state entered.
        to: State,
    },
    /// [`reset`](crate::CircuitBreaker::reset) emptied the window and closed the breaker.
    Reset,
    /// A permitted call finished.
    Call {
        /// How it counted.
        outcome: Outcome,
        /// Whether it took at least `slow_call_duration`.
        slow: bool,
        /// How long it took, when calls are timed.
        took: Option<Duration>,
    },
    /// A call was not permitted.
    Rejected(Rejected),
}

/// Which events a subscriber receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interest {
    /// Transitions and resets only: costs nothing on the call path.
    Transitions,
    /// Everything, including one event per call and per rejection.
    All,
}

type Callback = Arc<dyn Fn(&Event) + Send + Sync>;

#[derive(Clone)]
struct Listener {
    id: u64,
    interest: Interest,
    callback: Callback,
}

/// The subscribers of one breaker. Emitting checks a counter first, so a breaker nobody
/// listens to pays one relaxed load per call.
pub(crate) struct Listeners {
    list: RwLock<Arc<[Listener]>>,
    next_id: AtomicU64,
    /// Subscribers with [`Interest::All`].
    for_calls: AtomicUsize,
    /// All subscribers.
    for_transitions: AtomicUsize,
}

impl fmt::Debug for Listeners {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listeners")
            .field("subscribers", &self.for_transitions.load(Ordering::Relaxed))
            .finish()
    }
}

impl Listeners {
    pub(crate) fn new() -> Arc<Listeners> {
        Arc::new(Listeners {
            list: RwLock::new(Arc::from(Vec::new())),
            next_id: AtomicU64::new(0),
            for_calls: AtomicUsize::new(0),
            for_transitions: AtomicUsize::new(0),
        })
    }

    #[inline]
    pub(crate) fn want_calls(&self) -> bool {
        self.for_calls.load(Ordering::Relaxed) != 0
    }

    #[inline]
    pub(crate) fn want_transitions(&self) -> bool {
        self.for_transitions.load(Ordering::Relaxed) != 0
    }

    pub(crate) fn subscribe(
        self: &Arc<Self>,
        interest: Interest,
        callback: Callback,
    ) -> Subscription {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut list = write(&self.list);
        let mut listeners: Vec<Listener> = list.to_vec();
        listeners.push(Listener {
            id,
            interest,
            callback,
        });
        *list = Arc::from(listeners);
        self.count(interest, true);
        Subscription {
            listeners: Arc::downgrade(self),
            id,
        }
    }

    fn count(&self, interest: Interest, add: bool) {
        let counters: &[&AtomicUsize] = match interest {
            Interest::All => &[&self.for_calls, &self.for_transitions],
            Interest::Transitions => &[&self.for_transitions],
        };
        for counter in counters {
            if add {
                counter.fetch_add(1, Ordering::Relaxed);
            } else {
                counter.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    fn unsubscribe(&self, id: u64) {
        let mut list = write(&self.list);
        let Some(gone) = list.iter().find(|l| l.id == id).map(|l| l.interest) else {
            return;
        };
        let kept: Vec<Listener> = list.iter().filter(|l| l.id != id).cloned().collect();
        *list = Arc::from(kept);
        self.count(gone, false);
    }

    /// Calls every subscriber interested in `event`, outside the lock (a callback may
    /// subscribe or unsubscribe).
    pub(crate) fn emit(&self, event: &Event) {
        let list = Arc::clone(&read(&self.list));
        let for_calls_only = matches!(event, Event::Call { .. } | Event::Rejected(_));
        for listener in list.iter() {
            if !for_calls_only || listener.interest == Interest::All {
                (listener.callback)(event);
            }
        }
    }
}

/// A subscription to a breaker's events; dropping it unsubscribes. Keep it alive as long
/// as the callback should run ([`forget`](Subscription::forget) keeps it for the breaker's
/// lifetime).
#[must_use = "dropping a Subscription unsubscribes at once"]
pub struct Subscription {
    listeners: Weak<Listeners>,
    id: u64,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .finish()
    }
}

impl Subscription {
    /// Keeps the callback subscribed for as long as the breaker lives.
    pub fn forget(mut self) {
        self.listeners = Weak::new();
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(listeners) = self.listeners.upgrade() {
            listeners.unsubscribe(self.id);
        }
    }
}
