//! [`WaitList`]: where threads and tasks sleep until a lock-free structure has room or
//! values. The channel in this crate waits on it, and sibling crates (the worker pool's
//! idle workers and blocked submitters) build their own blocking and async waits on it.
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
use std::time::{Duration, Instant};

use crate::backoff::Backoff;
use crate::sync::{AtomicUsize, Mutex, Ordering, Thread, current_thread, fence, lock, park};

/// How to wake one waiter.
#[derive(Debug)]
pub enum Wake {
    /// A thread blocked in `park()`.
    Thread(Thread),
    /// An async task.
    Task(Waker),
}

impl Wake {
    /// Wakes the thread or task.
    pub fn wake(self) {
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

/// A registered waiter's ticket, returned by [`WaitList::register`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitKey(u64);

/// What a waiter finds when it looks at its entry ([`WaitList::poll`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryState {
    /// Still waiting for a notification.
    Waiting,
    /// Notified; the entry is gone.
    Notified,
}

/// A FIFO list of sleeping threads and tasks, with a lock-free "nobody waits" fast path.
///
/// Follow the protocol in the [module docs](self): the waiter registers, re-checks its
/// condition, and only then sleeps; the notifier changes the condition, then notifies.
/// [`wait_until`](Self::wait_until) packages the waiter's side for threads.
///
/// # Examples
///
/// A flag that one thread waits for and another sets:
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use flowbed_lockfree::WaitList;
///
/// let ready = Arc::new(AtomicBool::new(false));
/// let waiters = Arc::new(WaitList::new());
/// let setter = {
///     let (ready, waiters) = (Arc::clone(&ready), Arc::clone(&waiters));
///     std::thread::spawn(move || {
///         ready.store(true, Ordering::Release); // change the condition first,
///         waiters.notify_one(); // then notify
///     })
/// };
/// let seen = waiters.wait_until(None, || ready.load(Ordering::Acquire).then_some(()));
/// assert_eq!(seen, Some(()));
/// setter.join().unwrap();
/// ```
pub struct WaitList {
    /// Entries not yet notified. Read without the lock by notifiers.
    unnotified: AtomicUsize,
    entries: Mutex<Entries>,
}

impl WaitList {
    /// An empty list.
    pub fn new() -> Self {
        Self {
            unnotified: AtomicUsize::new(0),
            entries: Mutex::new(Entries::default()),
        }
    }

    /// Adds a waiter. The caller must re-check its condition afterwards, then sleep only
    /// if it still does not hold.
    pub fn register(&self, wake: Wake) -> WaitKey {
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
    pub fn poll(&self, key: WaitKey, waker: Option<&Waker>) -> EntryState {
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
    pub fn cancel(&self, key: WaitKey) {
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

    /// Wakes the longest-waiting unnotified waiter, if any (FIFO: fair to waiters).
    pub fn notify_one(&self) {
        self.notify(Pick::Oldest);
    }

    /// Wakes the most recently registered unnotified waiter, if any (LIFO: keeps the
    /// same few waiters busy and lets the others stay asleep, which is what an idle
    /// timeout such as a pool's keep-alive needs).
    pub fn notify_newest(&self) {
        self.notify(Pick::Newest);
    }

    fn notify(&self, pick: Pick) {
        // Pairs with the fence in `register`: see the module docs.
        fence(Ordering::SeqCst);
        if self.unnotified.load(Ordering::Relaxed) == 0 {
            return;
        }
        let wake = {
            let mut entries = lock(&self.entries);
            let mut unnotified = entries.queue.iter_mut();
            let wake = match pick {
                Pick::Oldest => unnotified.find_map(|entry| entry.wake.take()),
                Pick::Newest => unnotified.rev().find_map(|entry| entry.wake.take()),
            };
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
    pub fn notify_all(&self) {
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

    /// Waiters registered and not yet notified (a snapshot).
    pub fn waiting(&self) -> usize {
        self.unnotified.load(Ordering::Relaxed)
    }

    /// Blocks the calling thread until `attempt` returns `Some`, or until `deadline`
    /// passes (`None` waits forever). Returns what `attempt` returned, or `None` on
    /// timeout.
    ///
    /// `attempt` is tried first, then a few times while spinning briefly (a result often
    /// arrives within microseconds and parking costs more), then after registering, and
    /// again after every wake-up; whoever makes `attempt` succeed must call one of the
    /// `notify` methods afterwards. A thread that times out or succeeds after it was
    /// notified passes the notification on.
    pub fn wait_until<R>(
        &self,
        deadline: Option<Instant>,
        attempt: impl FnMut() -> Option<R>,
    ) -> Option<R> {
        self.wait(deadline, true, attempt)
    }

    /// [`wait_until`](Self::wait_until) without the spin phase: registers and parks as
    /// soon as `attempt` fails, for callers that did their own spinning first.
    pub fn park_until<R>(
        &self,
        deadline: Option<Instant>,
        attempt: impl FnMut() -> Option<R>,
    ) -> Option<R> {
        self.wait(deadline, false, attempt)
    }

    fn wait<R>(
        &self,
        deadline: Option<Instant>,
        spin: bool,
        mut attempt: impl FnMut() -> Option<R>,
    ) -> Option<R> {
        loop {
            if let Some(result) = attempt() {
                return Some(result);
            }
            match self.block_until(deadline, spin, &mut attempt) {
                Blocked::Done(result) => return Some(result),
                Blocked::Retry => {}
                Blocked::TimedOut => return None,
            }
        }
    }

    /// Spins briefly re-trying `attempt` (if `spin`), then registers and parks until
    /// notified or until `deadline`.
    fn block_until<R>(
        &self,
        deadline: Option<Instant>,
        spin: bool,
        mut attempt: impl FnMut() -> Option<R>,
    ) -> Blocked<R> {
        // Spin phase: a value often arrives within a few microseconds; parking costs more.
        if spin && !cfg!(flowbed_loom) {
            let mut backoff = Backoff::new();
            while !backoff.is_completed() {
                backoff.snooze();
                if let Some(result) = attempt() {
                    return Blocked::Done(result);
                }
            }
        }
        let key = self.register(Wake::Thread(current_thread()));
        if let Some(result) = attempt() {
            self.cancel(key);
            return Blocked::Done(result);
        }
        loop {
            if self.poll(key, None) == EntryState::Notified {
                return Blocked::Retry;
            }
            match deadline {
                None => park(),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        self.cancel(key);
                        return match attempt() {
                            Some(result) => Blocked::Done(result),
                            None => Blocked::TimedOut,
                        };
                    }
                    park_timeout(deadline - now);
                }
            }
        }
    }
}

impl Default for WaitList {
    fn default() -> Self {
        Self::new()
    }
}

/// Which waiter a notification goes to.
#[derive(Debug, Clone, Copy)]
enum Pick {
    Oldest,
    Newest,
}

/// How a blocking wait ended.
enum Blocked<R> {
    /// The re-check after registering succeeded (or failed for good).
    Done(R),
    /// Woken: try the operation again.
    Retry,
    /// The deadline passed.
    TimedOut,
}

/// Parks the current thread for at most `timeout` (or until unparked), for waits that
/// keep their own waiter instead of a `WaitList` entry (a job handle's result cell).
#[cfg(not(flowbed_loom))]
pub fn park_timeout(timeout: Duration) {
    std::thread::park_timeout(timeout);
}

/// loom has no timed park: a yield lets the model explore "the deadline passed" at every
/// point, which is the interleaving that matters.
#[cfg(flowbed_loom)]
pub fn park_timeout(_timeout: Duration) {
    crate::sync::yield_now();
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
    fn notify_newest_wakes_the_most_recent_waiter_first() {
        let list = WaitList::new();
        let (first_count, first) = counting_waker();
        let (second_count, second) = counting_waker();
        let first_key = list.register(Wake::Task(first.clone()));
        let second_key = list.register(Wake::Task(second.clone()));

        list.notify_newest();
        assert_eq!(first_count.0.load(Ordering::SeqCst), 0);
        assert_eq!(second_count.0.load(Ordering::SeqCst), 1);
        assert_eq!(list.poll(first_key, Some(&first)), EntryState::Waiting);
        assert_eq!(list.poll(second_key, Some(&second)), EntryState::Notified);
    }

    #[test]
    fn wait_until_times_out_with_none_and_leaves_no_entry() {
        let list = WaitList::new();
        let deadline = Instant::now() + Duration::from_millis(5);
        assert_eq!(list.wait_until(Some(deadline), || None::<()>), None);
        assert_eq!(list.waiting(), 0);
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
