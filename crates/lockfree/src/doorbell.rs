//! A wake-up for one sleeping task that costs its ringers nothing while the task is busy.

use std::task::Waker;

#[cfg(not(flowbed_loom))]
use atomic_waker::AtomicWaker;
#[cfg(flowbed_loom)]
use loom::future::AtomicWaker;

use crate::sync::{AtomicBool, Ordering, fence};

/// Wakes a task that sleeps waiting for work (a message, an item, free room).
///
/// The sleeper *arms* the bell (registers its waker, raises the flag, fence) and then looks
/// at its queues once more before sleeping; a sender pushes, fences, and *rings* only if
/// the flag is up. The two `SeqCst` fences are totally ordered: either the ringer sees the
/// flag and wakes the sleeper, or the sleeper's second look finds the pushed value. While the
/// sleeper is busy the flag is down and a send costs a fence and a load, no lock and no
/// read-modify-write.
#[derive(Debug, Default)]
pub struct Doorbell {
    armed: AtomicBool,
    waker: AtomicWaker,
}

impl Doorbell {
    /// A bell nobody waits on.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::task::{Context, Poll};
    /// use flowbed_lockfree::Doorbell;
    ///
    /// let bell = Arc::new(Doorbell::new());
    /// let work = Arc::new(AtomicBool::new(false));
    /// let waiter = {
    ///     let (bell, work) = (Arc::clone(&bell), Arc::clone(&work));
    ///     std::future::poll_fn(move |cx: &mut Context<'_>| {
    ///         if work.load(Ordering::Acquire) {
    ///             return Poll::Ready(());
    ///         }
    ///         bell.arm(cx.waker());
    ///         if work.load(Ordering::Acquire) {
    ///             bell.disarm();
    ///             return Poll::Ready(());
    ///         }
    ///         Poll::Pending
    ///     })
    /// };
    /// let ringer = std::thread::spawn(move || {
    ///     work.store(true, Ordering::Release);
    ///     bell.ring();
    /// });
    /// futures::executor::block_on(waiter);
    /// ringer.join().unwrap();
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The sleeper is about to sleep: after this, look at the queues once more.
    pub fn arm(&self, waker: &Waker) {
        #[cfg(not(flowbed_loom))]
        self.waker.register(waker);
        #[cfg(flowbed_loom)]
        self.waker.register_by_ref(waker);
        // A read-modify-write, so the flag's latest value is the one a ringer's swap
        // competes with.
        self.armed.swap(true, Ordering::AcqRel);
        fence(Ordering::SeqCst);
    }

    /// The sleeper found work after arming: ringers need not wake it.
    pub fn disarm(&self) {
        self.armed.store(false, Ordering::Relaxed);
    }

    /// Call after making work available (pushing a value, freeing room): wakes the sleeper if it
    /// is (about to be)
    /// asleep. Only the first ringer after an arm wakes it.
    pub fn ring(&self) {
        fence(Ordering::SeqCst);
        if self.armed.load(Ordering::Relaxed) && self.armed.swap(false, Ordering::AcqRel) {
            self.waker.wake();
        }
    }
}
