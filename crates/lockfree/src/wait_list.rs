//! `WaitList`: where threads and tasks sleep until a queue has room or values.
//!
//! The protocol that makes lost wake-ups impossible (proved by the loom models):
//!
//! * a waiter first **registers** (its entry is in the list and `unnotified` counts it),
//!   then issues a `SeqCst` fence, then **re-checks** the queue, and only then sleeps;
//! * a notifier first **changes** the queue (push, pop or close), then issues a `SeqCst`
//!   fence, then reads `unnotified` and wakes someone only if it is not zero.
//!
//! The two fences are totally ordered. If the waiter's comes first, the notifier sees the
//! registration and wakes it; if the notifier's comes first, the waiter's re-check sees
//! the change and it does not sleep. The common case (nobody waiting) costs the notifier
//! one fence and one load, no lock.
//!
//! A woken waiter whose wake-up it will not use (its future was dropped, its wait timed
//! out) passes the notification on, so a cancelled wait never swallows a wake-up.

use std::collections::VecDeque;
use std::fmt;
use std::task::Waker;

use crate::sync::{AtomicUsize, Mutex, Ordering, Thread, fence, lock};

/// How to wake one waiter.
#[derive(Debug)]
pub(crate) enum Wake {
    /// A thread blocked in `park()`.
    Thread(Thread),
    /// An async task.
    Task(Waker),
}

impl Wake {
    fn wake(self) {
        match self {
            Self::Thread(thread) => thread.unpark(),
            Self::Task(waker) => waker.wake(),
        }
    }
}

#[derive(Debug)]
struct Entry {
    key: u64,
    /// `None` once notified: the wake-up has been sent.
    wake: Option<Wake>,
}

#[derive(Debug, Default)]
struct Entries {
    next_key: u64,
    /// Oldest first: notifications go to the longest waiter (FIFO fairness).
    queue: VecDeque<Entry>,
}

impl Entries {
    fn position(&self, key: u64) -> Option<usize> {
        self.queue.iter().position(|entry| entry.key == key)
    }
}

/// A registered waiter's ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WaitKey(u64);

/// What a waiter finds when it looks at its entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryState {
    /// Still waiting for a notification.
    Waiting,
    /// Notified; the entry is gone.
    Notified,
}

/// A FIFO list of sleeping threads and tasks, with a lock-free "nobody waits" fast path.
pub(crate) struct WaitList {
    /// Entries not yet notified. Read without the lock by notifiers.
    unnotified: AtomicUsize,
    entries: Mutex<Entries>,
}

impl WaitList {
    pub(crate) fn new() -> Self {
        Self {
            unnotified: AtomicUsize::new(0),
            entries: Mutex::new(Entries::default()),
        }
    }

    /// Adds a waiter. The caller must re-check its condition afterwards, then sleep only
    /// if it still does not hold.
    pub(crate) fn register(&self, wake: Wake) -> WaitKey {
        let key = {
            let mut entries = lock(&self.entries);
            let key = entries.next_key;
            entries.next_key += 1;
            entries.queue.push_back(Entry {
                key,
                wake: Some(wake),
            });
            self.unnotified.fetch_add(1, Ordering::Relaxed);
            key
        };
        // Pairs with the fence in `notify`: see the module docs.
        fence(Ordering::SeqCst);
        WaitKey(key)
    }

    /// Looks at a waiter's entry; removes it if notified. A task passes its current waker,
    /// which replaces the stored one if it changed.
    pub(crate) fn poll(&self, key: WaitKey, waker: Option<&Waker>) -> EntryState {
        let mut entries = lock(&self.entries);
        let Some(index) = entries.position(key.0) else {
            // Only the owner removes its entry, so a missing entry cannot happen; treat it
            // as notified so the owner re-checks instead of sleeping forever.
            return EntryState::Notified;
        };
        let entry = &mut entries.queue[index];
        match (&mut entry.wake, waker) {
            (None, _) => {
                entries.queue.remove(index);
                EntryState::Notified
            }
            (Some(Wake::Task(stored)), Some(waker)) => {
                if !stored.will_wake(waker) {
                    stored.clone_from(waker);
                }
                EntryState::Waiting
            }
            (Some(_), _) => EntryState::Waiting,
        }
    }

    /// Removes a waiter that gives up (cancelled, timed out, or done without needing the
    /// wake-up). If it had been notified, the notification goes to the next waiter.
    pub(crate) fn cancel(&self, key: WaitKey) {
        let was_notified = {
            let mut entries = lock(&self.entries);
            match entries.position(key.0) {
                Some(index) => {
                    let entry = entries.queue.remove(index);
                    let notified = entry.is_some_and(|entry| entry.wake.is_none());
                    if !notified {
                        self.unnotified.fetch_sub(1, Ordering::Relaxed);
                    }
                    notified
                }
                None => false,
            }
        };
        if was_notified {
            self.notify_one();
        }
    }

    /// Wakes the longest-waiting unnotified waiter, if any.
    pub(crate) fn notify_one(&self) {
        // Pairs with the fence in `register`: see the module docs.
        fence(Ordering::SeqCst);
        if self.unnotified.load(Ordering::Relaxed) == 0 {
            return;
        }
        let wake = {
            let mut entries = lock(&self.entries);
            let wake = entries.queue.iter_mut().find_map(|entry| entry.wake.take());
            if wake.is_some() {
                self.unnotified.fetch_sub(1, Ordering::Relaxed);
            }
            wake
        };
        // Wake outside the lock: the woken thread's first act is to take it.
        if let Some(wake) = wake {
            wake.wake();
        }
    }

    /// Wakes every waiter (the queue was closed).
    pub(crate) fn notify_all(&self) {
        fence(Ordering::SeqCst);
        if self.unnotified.load(Ordering::Relaxed) == 0 {
            return;
        }
        let wakes: Vec<Wake> = {
            let mut entries = lock(&self.entries);
            let wakes: Vec<Wake> = entries
                .queue
                .iter_mut()
                .filter_map(|entry| entry.wake.take())
                .collect();
            self.unnotified.fetch_sub(wakes.len(), Ordering::Relaxed);
            wakes
        };
        for wake in wakes {
            wake.wake();
        }
    }

    /// Waiters registered and not yet notified.
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.unnotified.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for WaitList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitList")
            .field("unnotified", &self.unnotified.load(Ordering::Relaxed))
            .finish()
    }
}

#[cfg(all(test, not(flowbed_loom)))]
mod tests {
    use super::*;
    use std::sync::Arc as StdArc;
    use std::sync::atomic::AtomicUsize as StdAtomicUsize;
    use std::task::Wake as TaskWake;

    /// A waker that counts its wake-ups.
    struct CountingWaker(StdAtomicUsize);

    impl TaskWake for CountingWaker {
        fn wake(self: StdArc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counting_waker() -> (StdArc<CountingWaker>, Waker) {
        let counter = StdArc::new(CountingWaker(StdAtomicUsize::new(0)));
        (counter.clone(), Waker::from(counter))
    }

    #[test]
    fn notify_one_wakes_the_oldest_waiter_first() {
        let list = WaitList::new();
        let (first_count, first) = counting_waker();
        let (second_count, second) = counting_waker();
        let first_key = list.register(Wake::Task(first.clone()));
        let second_key = list.register(Wake::Task(second.clone()));
        assert_eq!(list.waiting(), 2);

        list.notify_one();
        assert_eq!(first_count.0.load(Ordering::SeqCst), 1);
        assert_eq!(second_count.0.load(Ordering::SeqCst), 0);
        assert_eq!(list.poll(first_key, Some(&first)), EntryState::Notified);
        assert_eq!(list.poll(second_key, Some(&second)), EntryState::Waiting);
        assert_eq!(list.waiting(), 1);
    }

    #[test]
    fn a_cancelled_notified_waiter_passes_the_notification_on() {
        let list = WaitList::new();
        let (_, first) = counting_waker();
        let (second_count, second) = counting_waker();
        let first_key = list.register(Wake::Task(first));
        let second_key = list.register(Wake::Task(second.clone()));

        list.notify_one();
        list.cancel(first_key);
        assert_eq!(second_count.0.load(Ordering::SeqCst), 1);
        assert_eq!(list.poll(second_key, Some(&second)), EntryState::Notified);
        assert_eq!(list.waiting(), 0);
    }

    #[test]
    fn a_cancelled_waiting_entry_is_forgotten() {
        let list = WaitList::new();
        let (count, waker) = counting_waker();
        let key = list.register(Wake::Task(waker));
        list.cancel(key);
        assert_eq!(list.waiting(), 0);
        list.notify_one();
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn notify_all_wakes_everyone_once() {
        let list = WaitList::new();
        let wakers: Vec<_> = (0..3).map(|_| counting_waker()).collect();
        for (_, waker) in &wakers {
            list.register(Wake::Task(waker.clone()));
        }
        list.notify_all();
        list.notify_all();
        for (count, _) in &wakers {
            assert_eq!(count.0.load(Ordering::SeqCst), 1);
        }
        assert_eq!(list.waiting(), 0);
    }

    #[test]
    fn poll_replaces_a_changed_waker() {
        let list = WaitList::new();
        let (old_count, old) = counting_waker();
        let (new_count, new) = counting_waker();
        let key = list.register(Wake::Task(old));
        assert_eq!(list.poll(key, Some(&new)), EntryState::Waiting);
        list.notify_one();
        assert_eq!(old_count.0.load(Ordering::SeqCst), 0);
        assert_eq!(new_count.0.load(Ordering::SeqCst), 1);
    }
}
