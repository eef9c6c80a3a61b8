//! The lock-free parts of an actor's life, kept free of tokio so loom can check them:
//! the count of strong references, the kill switch and the list of exit watchers (the doorbell that wakes a
//! sleeping actor is flowbed-lockfree's [`Doorbell`]).
//!
//! The items are `pub` (in a private module) so `loom_api` can show them to the models.
#![allow(unreachable_pub)]

use std::task::{Context, Poll};

#[cfg(not(flowbed_loom))]
use futures::task::AtomicWaker;
#[cfg(flowbed_loom)]
use loom::future::AtomicWaker;

pub use flowbed_lockfree::Doorbell;

use crate::sync::{AtomicBool, AtomicUsize, Mutex, Ordering, lock};

/// Counts the strong [`ActorRef`](crate::ActorRef)s. When the count drops to zero the
/// last holder tells the actor (one signal per drop to zero); the actor then checks the
/// count again, because a weak reference may have been upgraded meanwhile.
#[derive(Debug)]
pub struct RefCount {
    strong: AtomicUsize,
}

impl RefCount {
    /// A count holding the first reference.
    pub fn new() -> Self {
        Self {
            strong: AtomicUsize::new(1),
        }
    }

    /// Adds a reference (a clone or an upgrade).
    pub fn acquire(&self) {
        self.strong.fetch_add(1, Ordering::Relaxed);
    }

    /// Drops a reference; true if it was the last one.
    pub fn release(&self) -> bool {
        self.strong.fetch_sub(1, Ordering::AcqRel) == 1
    }

    /// True if no strong reference is left right now.
    pub fn is_unreferenced(&self) -> bool {
        self.strong.load(Ordering::Acquire) == 0
    }

    /// Strong references right now.
    pub fn count(&self) -> usize {
        self.strong.load(Ordering::Relaxed)
    }
}

impl Default for RefCount {
    fn default() -> Self {
        Self::new()
    }
}

/// Aborts the running handler: set from any thread, polled by the actor while a handler
/// is pending. Re-armed for each run of a supervised actor.
#[derive(Debug, Default)]
pub struct KillSwitch {
    killed: AtomicBool,
    waker: AtomicWaker,
}

impl KillSwitch {
    /// A switch not yet thrown.
    pub fn new() -> Self {
        Self::default()
    }

    /// Throws the switch and wakes the actor if it waits.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// True once thrown.
    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }

    /// Ready once thrown; otherwise registers the waker (no lost wake-up: the flag is
    /// checked again after registering).
    pub fn poll_killed(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.is_killed() {
            return Poll::Ready(());
        }
        #[cfg(not(flowbed_loom))]
        self.waker.register(cx.waker());
        #[cfg(flowbed_loom)]
        self.waker.register_by_ref(cx.waker());
        if self.is_killed() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Re-arms the switch for the next run.
    pub fn reset(&self) {
        self.killed.store(false, Ordering::Release);
    }
}

/// Who is told when the actor ends. A watcher added after the end is handed back at once
/// (so the caller notifies it itself): every watcher is notified exactly once.
#[derive(Debug)]
pub struct ExitWatchers<W> {
    watchers: Mutex<Option<Vec<W>>>,
}

impl<W> ExitWatchers<W> {
    /// An empty list of a running actor.
    pub fn new() -> Self {
        Self {
            watchers: Mutex::new(Some(Vec::new())),
        }
    }

    /// Adds a watcher, or hands it back if the actor has already ended.
    ///
    /// # Errors
    ///
    /// The watcher itself, when the actor has ended.
    pub fn add(&self, watcher: W) -> Result<(), W> {
        match lock(&self.watchers).as_mut() {
            Some(list) => {
                list.push(watcher);
                Ok(())
            }
            None => Err(watcher),
        }
    }

    /// Removes the watchers `matches` selects (a demonitor, an unlink).
    pub fn remove(&self, mut matches: impl FnMut(&W) -> bool) {
        if let Some(list) = lock(&self.watchers).as_mut() {
            list.retain(|watcher| !matches(watcher));
        }
    }

    /// Marks the actor ended and takes every watcher (empty if already ended).
    pub fn finish(&self) -> Vec<W> {
        lock(&self.watchers).take().unwrap_or_default()
    }
}

impl<W> Default for ExitWatchers<W> {
    fn default() -> Self {
        Self::new()
    }
}
