//! The future a caller awaits while queued for a connection. Dropping it at any point —
//! a timeout, a cancelled task — takes the caller off the queue, and a connection handed to
//! it in the meantime goes on to the next waiter.

// `pub` items in a private module: reachable only through `loom_api` in loom builds.
#![allow(unreachable_pub)]

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use flowbed_ratelimit::Clock;

use crate::conn::Conn;
use crate::slots::{Put, Slots, WaitFailed, WaiterKey};
use crate::sync::{Mutex, lock};

/// Waits at `key` in the queue of `slots`.
pub struct Wait<'a, C, E> {
    slots: &'a Mutex<Slots<C, E>>,
    key: Option<WaiterKey>,
    /// The waker was registered when the caller queued, in this same poll: the first poll
    /// can return `Pending` without locking (a hand-off before it wakes that waker).
    registered: bool,
    /// Records the wait into the `wait_time` histogram: the clock and when the wait began.
    timing: Option<(&'a dyn Clock, u64)>,
}

impl<C, E> fmt::Debug for Wait<'_, C, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wait")
            .field("key", &self.key)
            .field("registered", &self.registered)
            .finish_non_exhaustive()
    }
}

impl<'a, C, E> Wait<'a, C, E> {
    /// Waits at `key`, registering the waker at the first poll (the loom model's way in).
    #[cfg_attr(not(flowbed_loom), allow(dead_code))]
    pub fn new(slots: &'a Mutex<Slots<C, E>>, key: WaiterKey) -> Self {
        Self {
            slots,
            key: Some(key),
            registered: false,
            timing: None,
        }
    }

    /// Waits at `key`, queued with the waker of the task that will poll this (in the same
    /// poll), recording the wait time from `since` on `clock`.
    pub(crate) fn registered(
        slots: &'a Mutex<Slots<C, E>>,
        key: WaiterKey,
        clock: &'a dyn Clock,
        since: u64,
    ) -> Self {
        Self {
            slots,
            key: Some(key),
            registered: true,
            timing: Some((clock, since)),
        }
    }
}

impl<C, E> Future for Wait<'_, C, E> {
    type Output = Result<Conn<C>, WaitFailed<E>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let key = self.key.expect("Wait polled after it finished");
        if std::mem::take(&mut self.registered) {
            return Poll::Pending;
        }
        let mut slots = lock(self.slots);
        match slots.poll_waiter(key, cx.waker()) {
            Some(outcome) => {
                if let (Ok(_), Some((clock, since))) = (&outcome, self.timing) {
                    let waited = clock.now().saturating_sub(since);
                    slots
                        .wait_time
                        .record_exclusive(Duration::from_nanos(waited));
                }
                drop(slots);
                self.key = None;
                Poll::Ready(outcome)
            }
            None => Poll::Pending,
        }
    }
}

impl<C, E> Drop for Wait<'_, C, E> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let mut slots = lock(self.slots);
            if let Some(conn) = slots.cancel(key) {
                // Handed to us after we stopped caring: hand it on.
                let put = slots.put(conn);
                drop(slots);
                finish_put(put);
            }
        }
    }
}

/// Acts on a [`Put`] after the lock is released: wakes the waiter it went to, or closes it.
pub fn finish_put<C>(put: Put<C>) {
    match put {
        Put::Handed(waker) => wake(waker),
        Put::Idle => {}
        Put::Close(conn) => drop(conn),
    }
}

pub fn wake(waker: Option<Waker>) {
    if let Some(waker) = waker {
        waker.wake();
    }
}
