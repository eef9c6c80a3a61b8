//! The demand counter between a [`Subscription`] (the subscriber's side: `request`,
//! `cancel`) and a [`Demand`] (the publisher's side: how many items it may send).

use std::fmt;
use std::num::NonZeroU64;
use std::task::{Context, Poll};

use flowbed_lockfree::Doorbell;

use crate::sync::{Arc, AtomicBool, AtomicU64, Ordering};

/// Outstanding demand of `u64::MAX` means "unbounded": it is never decremented (Reactive
/// Streams rule 3.17).
pub const UNBOUNDED: u64 = u64::MAX;

#[derive(Debug, Default)]
struct Shared {
    /// Items requested and not yet taken by the publisher, saturating at [`UNBOUNDED`].
    requested: AtomicU64,
    cancelled: AtomicBool,
    /// Wakes a publisher waiting for demand (or for the cancel).
    bell: Doorbell,
}

/// The subscriber's handle on a subscription: ask for more items, or cancel.
///
/// Cheap to clone and `Send + Sync`; calling it from inside `on_next` is fine (it never
/// calls back into the subscriber: no recursion, rule 3.3). Demand is a `NonZeroU64`, so
/// the spec's invalid `request(0)` cannot be written; requests add up and saturate at
/// `u64::MAX`, which means unbounded.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU64;
/// use flowbed_reactive::Demand;
///
/// let (subscription, demand) = Demand::pair();
/// subscription.request(NonZeroU64::new(3).unwrap());
/// assert_eq!(demand.take(2), 2);
/// assert_eq!(demand.take(10), 1);
/// subscription.cancel();
/// assert!(demand.is_cancelled());
/// ```
#[derive(Clone)]
pub struct Subscription {
    shared: Arc<Shared>,
}

impl Subscription {
    /// Asks for `n` more items.
    pub fn request(&self, n: NonZeroU64) {
        if self.shared.cancelled.load(Ordering::Relaxed) {
            return;
        }
        let mut current = self.shared.requested.load(Ordering::Relaxed);
        loop {
            let next = current.saturating_add(n.get());
            match self.shared.requested.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => current = actual,
            }
        }
        if !serving(&self.shared) {
            self.shared.bell.ring();
        }
    }

    /// Asks for every item there is (`request(u64::MAX)`).
    pub fn request_unbounded(&self) {
        self.request(NonZeroU64::MAX);
    }

    /// Stops the flow: the publisher sends at most the items already on their way, then
    /// nothing more, and releases the subscriber. Idempotent.
    pub fn cancel(&self) {
        self.shared.cancelled.store(true, Ordering::Release);
        self.shared.bell.ring();
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.shared.cancelled.load(Ordering::Acquire)
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("requested", &self.shared.requested.load(Ordering::Relaxed))
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

/// The publisher's side of a subscription: the demand it may serve.
///
/// Write your own [`Publisher`](crate::Publisher) with it: hand the [`Subscription`] to
/// `on_subscribe`, then send only what [`take`](Self::take) grants.
pub struct Demand {
    shared: Arc<Shared>,
}

impl Demand {
    /// A new subscription with no demand yet.
    pub fn pair() -> (Subscription, Demand) {
        let shared = Arc::new(Shared::default());
        (
            Subscription {
                shared: Arc::clone(&shared),
            },
            Demand { shared },
        )
    }

    /// Claims up to `max` items of the outstanding demand and returns how many it got
    /// (0 if none). Unbounded demand grants `max` every time.
    pub fn take(&self, max: u64) -> u64 {
        let mut current = self.shared.requested.load(Ordering::Acquire);
        loop {
            if current == UNBOUNDED {
                return max;
            }
            let granted = current.min(max);
            if granted == 0 {
                return 0;
            }
            match self.shared.requested.compare_exchange_weak(
                current,
                current - granted,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return granted,
                Err(actual) => current = actual,
            }
        }
    }

    /// Claims all outstanding demand ([`UNBOUNDED`] stays unbounded).
    pub fn take_all(&self) -> u64 {
        match self.shared.requested.load(Ordering::Acquire) {
            0 => 0,
            UNBOUNDED => UNBOUNDED,
            // A request racing the swap is either in the value swapped out or left for
            // the next take: the grants add up to exactly what was requested. Requests
            // that saturated meanwhile made the demand unbounded, which it stays.
            _ => match self.shared.requested.swap(0, Ordering::AcqRel) {
                UNBOUNDED => {
                    self.shared.requested.store(UNBOUNDED, Ordering::Release);
                    UNBOUNDED
                }
                granted => granted,
            },
        }
    }

    /// Runs `on_next` (the subscriber's signal) on this thread. A `request` the signal
    /// makes for this subscription skips the wake-up: the publisher is running right
    /// here and takes the new demand when the signal returns.
    pub fn serve<R>(&self, on_next: impl FnOnce() -> R) -> R {
        let _serving = Serving::enter(&self.shared);
        on_next()
    }

    /// Whether the subscriber cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.shared.cancelled.load(Ordering::Acquire)
    }

    /// Waits for demand: `Ready(Some(n))` claims all `n` outstanding items,
    /// `Ready(None)` means cancelled. Otherwise the task is woken by the next `request`
    /// or `cancel`.
    pub fn poll_take_all(&self, cx: &mut Context<'_>) -> Poll<Option<u64>> {
        if let Some(ready) = self.ready() {
            return Poll::Ready(ready);
        }
        self.shared.bell.arm(cx.waker());
        match self.ready() {
            Some(ready) => {
                self.shared.bell.disarm();
                Poll::Ready(ready)
            }
            None => Poll::Pending,
        }
    }

    /// Makes the next `request` or `cancel` wake `cx`'s task (call before returning
    /// `Pending` for another reason, so a cancel is not missed while waiting).
    pub fn wake_on_signal(&self, cx: &mut Context<'_>) {
        self.shared.bell.arm(cx.waker());
    }

    fn ready(&self) -> Option<Option<u64>> {
        if self.is_cancelled() {
            return Some(None);
        }
        match self.take_all() {
            0 => None,
            granted => Some(Some(granted)),
        }
    }
}

#[cfg(not(flowbed_loom))]
std::thread_local! {
    /// The subscription whose publisher is inside a signal on this thread (null: none).
    static SERVING: std::cell::Cell<*const Shared> = const { std::cell::Cell::new(std::ptr::null()) };
}

/// Marks this thread as inside a signal of `shared`'s subscription until dropped
/// (also when the signal panics).
struct Serving {
    #[cfg(not(flowbed_loom))]
    previous: *const Shared,
}

impl Serving {
    fn enter(shared: &Arc<Shared>) -> Self {
        #[cfg(not(flowbed_loom))]
        {
            let previous = SERVING.with(|serving| serving.replace(Arc::as_ptr(shared)));
            Self { previous }
        }
        #[cfg(flowbed_loom)]
        {
            // Loom runs its threads on one OS thread: a thread-local would leak between
            // them, so the models always take the ringing path.
            let _ = shared;
            Self {}
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        #[cfg(not(flowbed_loom))]
        SERVING.with(|serving| serving.set(self.previous));
    }
}

/// Whether this thread's publisher is inside a signal of `shared`'s subscription.
fn serving(shared: &Arc<Shared>) -> bool {
    #[cfg(not(flowbed_loom))]
    {
        SERVING.with(|serving| std::ptr::eq(serving.get(), Arc::as_ptr(shared)))
    }
    #[cfg(flowbed_loom)]
    {
        let _ = shared;
        false
    }
}

impl fmt::Debug for Demand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Demand")
            .field("requested", &self.shared.requested.load(Ordering::Relaxed))
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}
