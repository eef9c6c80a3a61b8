//! Waking every consumer of an upstream shared by several consumers (`group_by`'s outer
//! flow and groups, `broadcast`'s subscribers).
//!
//! Whichever consumer is polled drives the shared upstream, so the upstream must not wake
//! only the task that happened to poll it last (that task may stop polling, stranding the
//! others). It is polled with the set's own waker instead, which wakes every registered
//! consumer and records that readiness arrived (so a driver that got `Pending` while such a
//! wake raced with it knows to look again).

use std::task::{Wake, Waker};

use crate::sync::{AtomicBool, Mutex, Ordering, lock};

/// Consumers waiting for something from a shared upstream, keyed by a consumer id.
#[derive(Debug)]
pub(crate) struct WakerSet {
    waiting: Mutex<Vec<(u64, Waker)>>,
    /// The upstream woke the set since the last [`WakerSet::clear_notified`].
    notified: AtomicBool,
}

impl WakerSet {
    /// An empty set, ready to hand out its waker.
    pub(crate) fn new() -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self {
            waiting: Mutex::new(Vec::new()),
            notified: AtomicBool::new(false),
        })
    }

    /// The waker to poll the shared upstream with: waking it wakes every waiting consumer.
    pub(crate) fn upstream_waker(self: &std::sync::Arc<Self>) -> Waker {
        Waker::from(std::sync::Arc::clone(self))
    }

    /// Makes the next wake reach `consumer`'s task (replacing its earlier registration).
    pub(crate) fn register(&self, consumer: u64, waker: &Waker) {
        let mut waiting = lock(&self.waiting);
        match waiting.iter_mut().find(|(id, _)| *id == consumer) {
            Some((_, registered)) => {
                if !registered.will_wake(waker) {
                    registered.clone_from(waker);
                }
            }
            None => waiting.push((consumer, waker.clone())),
        }
    }

    /// Forgets `consumer`'s registration (it is gone).
    pub(crate) fn unregister(&self, consumer: u64) {
        lock(&self.waiting).retain(|(id, _)| *id != consumer);
    }

    /// Wakes every registered consumer but `me` (which stays registered: it is running and
    /// will decide itself whether to wait).
    pub(crate) fn wake_others(&self, me: u64) {
        let woken = {
            let mut waiting = lock(&self.waiting);
            if waiting.is_empty() || (waiting.len() == 1 && waiting[0].0 == me) {
                return;
            }
            let mut woken = std::mem::take(&mut *waiting);
            if let Some(at) = woken.iter().position(|(id, _)| *id == me) {
                waiting.push(woken.swap_remove(at));
            }
            woken
        };
        for (_, waker) in woken {
            waker.wake();
        }
    }

    /// Wakes every registered consumer.
    pub(crate) fn wake_all(&self) {
        let woken = std::mem::take(&mut *lock(&self.waiting));
        for (_, waker) in woken {
            waker.wake();
        }
    }

    /// Call right before polling the upstream.
    pub(crate) fn clear_notified(&self) {
        self.notified.store(false, Ordering::SeqCst);
    }

    /// Whether the upstream woke the set since [`WakerSet::clear_notified`].
    pub(crate) fn take_notified(&self) -> bool {
        self.notified.swap(false, Ordering::SeqCst)
    }
}

impl Wake for WakerSet {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        self.notified.store(true, Ordering::SeqCst);
        self.wake_all();
    }
}
