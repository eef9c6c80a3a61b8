//! The pool's bookkeeping, all behind one mutex: idle connections, the queue of waiting
//! callers, and the counts the sizing rules work from.
//!
//! Invariants (checked by the loom model and the property tests):
//! * `idle` is non-empty only when nobody waits: a returned connection goes straight to the
//!   oldest waiter ([`Slots::put`]), and a caller who finds an idle connection takes it
//!   before it would queue. So nobody can barge past a waiter (strict FIFO hand-off).
//! * `open + creating <= max_size` whenever something is added: creations start only into
//!   free room ([`Slots::start_creates`]), so a burst of cold callers never opens more than
//!   `max_size` connections.
//! * Every connection is counted in `open` from the moment it is created until the pool
//!   closes it; a connection handed to a waiter that gave up comes back through
//!   [`Slots::cancel`] and is handed on: nothing leaks.
//!
//! No user code runs under the lock, and no waker is woken under it: the methods return the
//! wakers to wake and the connections to close, and callers act on them after unlocking.

// `pub` items in a private module: reachable only through `loom_api` in loom builds.
#![allow(unreachable_pub)]

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::Waker;

use flowbed_lockfree::histogram::LatencyRecorder;

use crate::conn::Conn;
use crate::stats::CloseReason;

/// A place in the waiter queue: the slab index and the generation that owned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaiterKey {
    index: usize,
    generation: u64,
}

/// What a waiter's entry holds.
#[derive(Debug)]
enum Entry<C, E> {
    /// Unused; the next free index in the slab's free list is kept separately.
    Vacant,
    Waiting(Option<Waker>),
    Handed(Conn<C>),
    /// A create for this waiter failed and the pool fails fast.
    Failed(Arc<E>),
    Closed,
}

#[derive(Debug)]
struct Place<C, E> {
    generation: u64,
    entry: Entry<C, E>,
}

/// What a caller gets when it asks for a connection.
#[derive(Debug)]
pub enum Checkout<C> {
    Idle(Conn<C>),
    /// Queued: wait on the key. `creates` is how many creations the caller must start.
    Queued {
        key: WaiterKey,
        creates: usize,
    },
    Closed,
}

/// How a wait ended without a connection.
#[derive(Debug)]
pub enum WaitFailed<E> {
    Create(Arc<E>),
    Closed,
}

/// What became of a returned connection.
#[derive(Debug)]
pub enum Put<C> {
    /// Handed to a waiter: wake it.
    Handed(Option<Waker>),
    Idle,
    /// Not kept (the pool is closed or over its size): close it.
    Close(Conn<C>),
}

/// The state behind the pool's mutex.
#[derive(Debug)]
pub struct Slots<C, E> {
    idle: VecDeque<Conn<C>>,
    places: Vec<Place<C, E>>,
    free: Vec<usize>,
    /// Waiters in arrival order; keys whose place moved on are skipped.
    queue: VecDeque<WaiterKey>,
    /// Entries in `Waiting`.
    waiting: usize,
    /// Connections alive: idle, handed to a waiter, checked out, or being checked.
    open: usize,
    /// Creations in flight (each will add one connection or give up).
    creating: usize,
    max_size: usize,
    min_idle: usize,
    lifo: bool,
    fail_fast: bool,
    closed: bool,
    /// The latest create failure, until a create succeeds.
    last_create_error: Option<Arc<E>>,
    pub counters: Counters,
    /// How long callers who had to wait waited, and how long connections were held;
    /// recorded under the lock (so the single-writer record is exact).
    pub wait_time: LatencyRecorder,
    pub hold_time: LatencyRecorder,
}

/// Event counts kept under the lock.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    pub created: u64,
    pub closed: [u64; CloseReason::COUNT],
    pub waits: u64,
    pub create_failures: u64,
    pub timeouts: u64,
    pub leaks: u64,
}

impl<C, E> Slots<C, E> {
    pub fn new(max_size: usize, min_idle: usize, lifo: bool, fail_fast: bool) -> Self {
        Self {
            idle: VecDeque::with_capacity(max_size),
            places: Vec::new(),
            free: Vec::new(),
            queue: VecDeque::new(),
            waiting: 0,
            open: 0,
            creating: 0,
            max_size,
            min_idle,
            lifo,
            fail_fast,
            closed: false,
            last_create_error: None,
            counters: Counters::default(),
            wait_time: LatencyRecorder::new(),
            hold_time: LatencyRecorder::new(),
        }
    }

    /// Takes an idle connection, or queues the caller.
    pub fn checkout(&mut self, waker: Option<&Waker>) -> Checkout<C> {
        if self.closed {
            return Checkout::Closed;
        }
        if let Some(conn) = self.take_idle() {
            return Checkout::Idle(conn);
        }
        let key = self.enqueue(waker.cloned(), false);
        self.counters.waits += 1;
        let creates = self.start_creates();
        Checkout::Queued { key, creates }
    }

    /// [`checkout`](Self::checkout) for a caller who already waited and was handed a
    /// connection that failed its checks: it queues at the front, keeping its turn.
    pub fn checkout_again(&mut self, waker: &Waker) -> Checkout<C> {
        if self.closed {
            return Checkout::Closed;
        }
        if let Some(conn) = self.take_idle() {
            return Checkout::Idle(conn);
        }
        let key = self.enqueue(Some(waker.clone()), true);
        let creates = self.start_creates();
        Checkout::Queued { key, creates }
    }

    /// Takes an idle connection without queueing.
    pub fn try_checkout(&mut self) -> Option<Conn<C>> {
        self.take_idle()
    }

    fn take_idle(&mut self) -> Option<Conn<C>> {
        if self.lifo {
            self.idle.pop_back()
        } else {
            self.idle.pop_front()
        }
    }

    fn enqueue(&mut self, waker: Option<Waker>, front: bool) -> WaiterKey {
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.places.push(Place {
                    generation: 0,
                    entry: Entry::Vacant,
                });
                self.places.len() - 1
            }
        };
        let place = &mut self.places[index];
        place.generation += 1;
        place.entry = Entry::Waiting(waker);
        let key = WaiterKey {
            index,
            generation: place.generation,
        };
        if front {
            self.queue.push_front(key);
        } else {
            self.queue.push_back(key);
        }
        self.waiting += 1;
        key
    }

    fn place(&mut self, key: WaiterKey) -> &mut Place<C, E> {
        let place = &mut self.places[key.index];
        debug_assert_eq!(
            place.generation, key.generation,
            "a waiter key outlived its place"
        );
        place
    }

    /// Checks a queued caller: its connection, how its wait failed, or still waiting (the
    /// waker is kept for the hand-off).
    pub fn poll_waiter(
        &mut self,
        key: WaiterKey,
        waker: &Waker,
    ) -> Option<Result<Conn<C>, WaitFailed<E>>> {
        let place = self.place(key);
        match &mut place.entry {
            Entry::Waiting(slot) => {
                match slot {
                    Some(old) if old.will_wake(waker) => {}
                    _ => *slot = Some(waker.clone()),
                }
                None
            }
            Entry::Vacant => unreachable!("a polled waiter has a place"),
            _ => Some(self.release(key)),
        }
    }

    /// Frees a finished waiter's place and returns what it was given.
    fn release(&mut self, key: WaiterKey) -> Result<Conn<C>, WaitFailed<E>> {
        let entry = std::mem::replace(&mut self.place(key).entry, Entry::Vacant);
        self.free.push(key.index);
        match entry {
            Entry::Handed(conn) => Ok(conn),
            Entry::Failed(error) => Err(WaitFailed::Create(error)),
            Entry::Closed => Err(WaitFailed::Closed),
            Entry::Waiting(_) | Entry::Vacant => unreachable!("released while waiting"),
        }
    }

    /// A queued caller gives up (timed out or dropped). A connection already handed to it
    /// comes back to the caller, which must [`put`](Self::put) it again.
    pub fn cancel(&mut self, key: WaiterKey) -> Option<Conn<C>> {
        if matches!(self.place(key).entry, Entry::Waiting(_)) {
            self.place(key).entry = Entry::Vacant;
            self.free.push(key.index);
            self.waiting -= 1;
            self.compact_queue();
            return None;
        }
        self.release(key).ok()
    }

    /// Drops queue keys of cancelled waiters once they outnumber the live ones, so a storm
    /// of timeouts cannot grow the queue without bound.
    fn compact_queue(&mut self) {
        if self.queue.len() > 2 * self.waiting + 32 {
            let places = &self.places;
            self.queue.retain(|key| {
                let place = &places[key.index];
                place.generation == key.generation && matches!(place.entry, Entry::Waiting(_))
            });
        }
    }

    /// The oldest caller still waiting, taken off the queue.
    fn next_waiter(&mut self) -> Option<WaiterKey> {
        while let Some(key) = self.queue.pop_front() {
            let place = &self.places[key.index];
            if place.generation == key.generation && matches!(place.entry, Entry::Waiting(_)) {
                self.waiting -= 1;
                return Some(key);
            }
        }
        None
    }

    fn hand(&mut self, key: WaiterKey, entry: Entry<C, E>) -> Option<Waker> {
        match std::mem::replace(&mut self.place(key).entry, entry) {
            Entry::Waiting(waker) => waker,
            _ => unreachable!("only waiting entries are handed to"),
        }
    }

    /// A connection comes back (or is new): to the oldest waiter, else idle — unless the
    /// pool is closed or over its size.
    pub fn put(&mut self, conn: Conn<C>) -> Put<C> {
        let refused = if self.closed {
            Some(CloseReason::PoolClosed)
        } else if self.open > self.max_size {
            Some(CloseReason::Resized)
        } else {
            None
        };
        if let Some(reason) = refused {
            self.open -= 1;
            self.counters.closed[reason as usize] += 1;
            return Put::Close(conn);
        }
        match self.next_waiter() {
            Some(key) => Put::Handed(self.hand(key, Entry::Handed(conn))),
            None => {
                self.idle.push_back(conn);
                Put::Idle
            }
        }
    }

    /// A connection taken out of the pool's hands was closed (broken, expired, failed its
    /// check, detached). Returns how many creations to start to replace it.
    pub fn discard(&mut self, reason: CloseReason) -> usize {
        self.open -= 1;
        self.counters.closed[reason as usize] += 1;
        self.start_creates()
    }

    /// How many connections the pool wants opened beyond those being opened: one per
    /// waiter, plus enough to bring idle up to `min_idle`, within the room `max_size`
    /// leaves. Reserves them (the caller starts that many creations).
    pub fn start_creates(&mut self) -> usize {
        if self.closed {
            return 0;
        }
        let room = self.max_size.saturating_sub(self.open + self.creating);
        let wanted = self.demand().saturating_sub(self.creating).min(room);
        self.creating += wanted;
        wanted
    }

    fn demand(&self) -> usize {
        self.waiting + self.min_idle.saturating_sub(self.idle.len())
    }

    /// A creation succeeded: count the connection and hand it on.
    pub fn created(&mut self, conn: Conn<C>) -> Put<C> {
        self.creating -= 1;
        self.open += 1;
        self.counters.created += 1;
        self.last_create_error = None;
        self.put(conn)
    }

    /// A creation failed. Remembers the error; with fail-fast hands it to the oldest waiter
    /// (returned to wake). Returns whether the creation should be retried (after a
    /// backoff): only while it is still wanted. A creation not retried gives its room back.
    pub fn create_failed(&mut self, error: Arc<E>) -> (Option<Waker>, bool) {
        self.counters.create_failures += 1;
        self.last_create_error = Some(Arc::clone(&error));
        let woken = if self.fail_fast {
            self.next_waiter()
                .and_then(|key| self.hand(key, Entry::Failed(error)))
        } else {
            None
        };
        (woken, self.keep_creating())
    }

    /// Whether a creation in flight is still wanted; if not, it is given up.
    pub fn keep_creating(&mut self) -> bool {
        if !self.closed
            && self.creating <= self.demand()
            && self.open + self.creating <= self.max_size
        {
            return true;
        }
        self.creating -= 1;
        false
    }

    /// The latest create failure, if no create has succeeded since.
    pub fn last_create_error(&self) -> Option<Arc<E>> {
        self.last_create_error.clone()
    }

    /// Closes the pool: every waiter gets `Closed` (their wakers are returned), idle
    /// connections are returned for closing. Connections out are closed when they come
    /// back; creations in flight close what they make.
    pub fn close(&mut self) -> (Vec<Conn<C>>, Vec<Waker>) {
        self.closed = true;
        let mut wakers = Vec::new();
        while let Some(key) = self.next_waiter() {
            wakers.extend(self.hand(key, Entry::Closed));
        }
        let idle: Vec<_> = self.idle.drain(..).collect();
        self.open -= idle.len();
        self.counters.closed[CloseReason::PoolClosed as usize] += idle.len() as u64;
        (idle, wakers)
    }

    /// Changes `max_size`. Idle connections above the new size are returned for closing;
    /// ones checked out are closed as they come back. Returns those and how many creations
    /// to start (growing serves waiters at once).
    pub fn resize(&mut self, max_size: usize) -> (Vec<Conn<C>>, usize) {
        self.max_size = max_size;
        let mut surplus = Vec::new();
        while self.open > self.max_size {
            let Some(conn) = self.take_idle_oldest() else {
                break;
            };
            self.open -= 1;
            self.counters.closed[CloseReason::Resized as usize] += 1;
            surplus.push(conn);
        }
        (surplus, self.start_creates())
    }

    fn take_idle_oldest(&mut self) -> Option<Conn<C>> {
        // The least recently used idle connection is at the front either way.
        self.idle.pop_front()
    }

    /// Removes the idle connections `expired` says to close: every one past its lifetime,
    /// then, oldest first, ones past the idle timeout while more than `min_idle` stay idle.
    pub fn reap(
        &mut self,
        mut expired: impl FnMut(&Conn<C>) -> Option<CloseReason>,
    ) -> Vec<(Conn<C>, CloseReason)> {
        let verdicts: Vec<_> = self.idle.iter().map(&mut expired).collect();
        let lifetime_closes = verdicts
            .iter()
            .filter(|verdict| **verdict == Some(CloseReason::MaxLifetime))
            .count();
        let mut idle_closes_allowed =
            (self.idle.len() - lifetime_closes).saturating_sub(self.min_idle);
        let mut closing = Vec::new();
        let mut kept = VecDeque::with_capacity(self.idle.len());
        for (conn, verdict) in self.idle.drain(..).zip(verdicts) {
            match verdict {
                Some(CloseReason::IdleTimeout) if idle_closes_allowed == 0 => kept.push_back(conn),
                Some(CloseReason::IdleTimeout) => {
                    idle_closes_allowed -= 1;
                    closing.push((conn, CloseReason::IdleTimeout));
                }
                Some(reason) => closing.push((conn, reason)),
                None => kept.push_back(conn),
            }
        }
        self.idle = kept;
        self.open -= closing.len();
        for (_, reason) in &closing {
            self.counters.closed[*reason as usize] += 1;
        }
        closing
    }

    /// After an idle connection was taken: how many creations to start so `min_idle` stay
    /// idle (reserved, as [`start_creates`](Self::start_creates)).
    pub fn refill_after_take(&mut self) -> usize {
        if self.min_idle == 0 {
            return 0;
        }
        self.start_creates()
    }

    /// Takes every idle connection out (for [`Pool::retain`](crate::Pool::retain), which
    /// judges them without the lock and puts the kept ones back).
    pub fn take_all_idle(&mut self) -> Vec<Conn<C>> {
        self.idle.drain(..).collect()
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    pub fn max_size(&self) -> usize {
        self.max_size
    }

    pub fn min_idle(&self) -> usize {
        self.min_idle
    }

    pub fn open(&self) -> usize {
        self.open
    }

    pub fn idle(&self) -> usize {
        self.idle.len()
    }

    pub fn waiting(&self) -> usize {
        self.waiting
    }

    pub fn creating(&self) -> usize {
        self.creating
    }
}
