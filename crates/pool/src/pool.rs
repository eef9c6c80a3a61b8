//! [`Pool`]: hands out connections, fairly, with a deadline, and takes them back.

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use flowbed_ratelimit::Clock;

use crate::builder::{Builder, Config};
use crate::conn::{Conn, ConnectionInfo, Meta, nanos};
use crate::error::{CreateError, PoolError, ResizeError};
use crate::leak::LeakTracker;
use crate::pooled::Pooled;
use crate::slots::{Checkout, Slots, WaitFailed};
use crate::stats::{CloseReason, Stats};
use crate::sync::{AtomicU64, AtomicUsize, Mutex, Ordering, lock};
use crate::wait::{Wait, finish_put, wake};
use crate::{IdleOrder, Manager};

type PoolSlots<M> = Slots<<M as Manager>::Connection, CreateError<<M as Manager>::Error>>;

/// A pool of connections made by a [`Manager`].
///
/// Cloning is cheap and every clone is the same pool; the pool closes when the last clone
/// is dropped (connections still out close as they come back).
///
/// * [`get`](Self::get) waits in a strict FIFO queue: a returned connection goes straight
///   to the caller who has waited longest, so nobody is starved. It gives up at the wait
///   timeout (30 s by default) with [`PoolError::Timeout`], carrying the last connect error.
/// * A `get` future can be dropped at any point (a `select!`, a timeout, an aborted task)
///   without leaking anything: a connection handed to it goes to the next waiter, one
///   being checked is closed and replaced.
/// * Connections are opened in the background, at most `max_size` at once, one per waiter
///   plus what `min_idle` asks for, with failures retried with backoff.
///
/// # Examples
///
/// ```
/// use flowbed_pool::{Manager, Pool};
/// use std::convert::Infallible;
///
/// struct Counter(std::sync::atomic::AtomicU32);
///
/// impl Manager for Counter {
///     type Connection = u32;
///     type Error = Infallible;
///     async fn create(&self) -> Result<u32, Infallible> {
///         Ok(self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pool = Pool::builder(Counter(0.into())).max_size(2).build().unwrap();
/// let a = pool.get().await.unwrap();
/// let b = pool.get().await.unwrap();
/// assert_ne!(*a, *b);
/// assert!(pool.try_get().await.unwrap().is_none()); // both out, and no room to open more
/// drop(a); // back to the pool
/// assert!(pool.try_get().await.unwrap().is_some());
/// # }
/// ```
pub struct Pool<M: Manager> {
    shared: Arc<Shared<M>>,
}

/// Everything the pool handles, guards and background tasks share.
pub(crate) struct Shared<M: Manager> {
    pub(crate) manager: M,
    pub(crate) config: Config,
    pub(crate) slots: Mutex<PoolSlots<M>>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) runtime: tokio::runtime::Handle,
    next_id: AtomicU64,
    /// Live `Pool` handles; the pool closes when the last goes.
    handles: AtomicUsize,
    pub(crate) leaks: Option<LeakTracker>,
}

impl<M: Manager> fmt::Debug for Pool<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("config", &self.shared.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<M: Manager> Clone for Pool<M> {
    fn clone(&self) -> Self {
        self.shared.handles.fetch_add(1, Ordering::Relaxed);
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<M: Manager> Drop for Pool<M> {
    fn drop(&mut self) {
        if self.shared.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.close();
        }
    }
}

/// How far the synchronous fast path got.
enum Now<M: Manager> {
    /// Done: a connection (or a fail-fast error).
    Ready(Result<Pooled<M>, PoolError<M::Error>>),
    /// An idle connection that needs its async check (`recycle`).
    Check(Conn<M::Connection>),
    /// Nothing usable was idle: queue.
    Wait,
}

/// What a checkout found wrong with a connection, or that it needs a check.
enum Inspection {
    Ready,
    NeedsCheck,
    Close(CloseReason),
}

impl<M: Manager> Pool<M> {
    /// Starts configuring a pool of `manager`'s connections.
    pub fn builder(manager: M) -> Builder<M> {
        Builder::new(manager)
    }

    pub(crate) fn start(
        manager: M,
        config: Config,
        clock: Arc<dyn Clock>,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        let slots = Slots::new(
            config.max_size,
            config.min_idle,
            config.idle_order == IdleOrder::Lifo,
            config.fail_fast,
        );
        let leaks = config.leak_threshold.map(|_| LeakTracker::default());
        let shared = Arc::new(Shared {
            manager,
            config,
            slots: Mutex::new(slots),
            clock,
            runtime,
            next_id: AtomicU64::new(0),
            handles: AtomicUsize::new(1),
            leaks,
        });
        crate::background::spawn_maintenance(&shared);
        let creates = lock(&shared.slots).start_creates();
        shared.spawn_creates(creates);
        Self { shared }
    }

    /// Takes a connection, waiting (in FIFO order with other callers) up to the pool's
    /// wait timeout.
    ///
    /// # Errors
    ///
    /// [`PoolError::Timeout`] at the wait timeout, [`PoolError::Closed`] if the pool is or
    /// gets closed; with [`fail_fast`](Builder::fail_fast), [`PoolError::Create`] and
    /// [`PoolError::Recycle`].
    ///
    /// # Cancel safety
    ///
    /// Dropping the future at any point loses nothing: see [`Pool`].
    #[track_caller]
    pub fn get(&self) -> impl Future<Output = Result<Pooled<M>, PoolError<M::Error>>> + Send + '_ {
        let caller = Location::caller();
        self.shared
            .get_fast_first(caller, self.shared.config.wait_timeout)
    }

    /// [`get`](Self::get) with its own wait timeout.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    #[track_caller]
    pub fn get_timeout(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<Pooled<M>, PoolError<M::Error>>> + Send + '_ {
        let caller = Location::caller();
        self.shared.get_fast_first(caller, Some(timeout))
    }

    /// Takes an idle connection if there is one now: never waits for one to be returned or
    /// opened (it still checks the one it takes, which may await [`Manager::recycle`]).
    ///
    /// # Errors
    ///
    /// [`PoolError::Closed`]; with [`fail_fast`](Builder::fail_fast), [`PoolError::Recycle`].
    #[track_caller]
    pub fn try_get(
        &self,
    ) -> impl Future<Output = Result<Option<Pooled<M>>, PoolError<M::Error>>> + Send + '_ {
        let caller = Location::caller();
        async move {
            match self.shared.get(caller, None, false, None).await {
                Ok(conn) => Ok(Some(conn)),
                Err(PoolError::Timeout { .. }) => Ok(None),
                Err(other) => Err(other),
            }
        }
    }

    /// [`get`](Self::get) for synchronous code: blocks the thread. An idle connection that
    /// needs no check is taken without touching the runtime; otherwise the wait runs on the
    /// pool's runtime.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    ///
    /// # Panics
    ///
    /// When it has to wait and is called from inside an async task (tokio refuses to block
    /// a runtime thread): use `get().await` there. Threads of `spawn_blocking` and plain
    /// threads are fine.
    #[track_caller]
    pub fn get_blocking(&self) -> Result<Pooled<M>, PoolError<M::Error>> {
        let caller = Location::caller();
        let shared = &self.shared;
        let first = match shared.get_now(caller) {
            Now::Ready(ready) => return ready,
            Now::Check(conn) => Some(conn),
            Now::Wait => None,
        };
        let timeout = shared.config.wait_timeout;
        shared
            .runtime
            .block_on(shared.get(caller, timeout, true, first))
    }

    /// Changes the most connections open at once. Growing serves waiters at once;
    /// shrinking closes idle connections above the new size now and others as they come
    /// back.
    ///
    /// # Errors
    ///
    /// [`ResizeError`] for zero, a size below `min_idle`, or a closed pool.
    pub fn resize(&self, max_size: usize) -> Result<(), ResizeError> {
        if max_size == 0 {
            return Err(ResizeError::Zero);
        }
        let mut slots = lock(&self.shared.slots);
        if slots.is_closed() {
            return Err(ResizeError::Closed);
        }
        if max_size < slots.min_idle() {
            return Err(ResizeError::BelowMinIdle {
                max_size,
                min_idle: slots.min_idle(),
            });
        }
        let (surplus, creates) = slots.resize(max_size);
        drop(slots);
        drop(surplus);
        self.shared.spawn_creates(creates);
        Ok(())
    }

    /// Closes idle connections for which `keep` returns `false` (connections out are not
    /// judged). Returns how many were closed. `keep` runs without the pool's lock held, so
    /// it may take its time; meanwhile the judged connections count as in use.
    pub fn retain(&self, mut keep: impl FnMut(&M::Connection, ConnectionInfo) -> bool) -> usize {
        let shared = &self.shared;
        let judged = lock(&shared.slots).take_all_idle();
        let now = shared.clock.now();
        let mut closed = 0;
        for conn in judged {
            if keep(&conn.conn, conn.meta.info(now)) {
                let put = lock(&shared.slots).put(conn);
                finish_put(put);
            } else {
                closed += 1;
                shared.close_one(conn, CloseReason::Retain);
            }
        }
        closed
    }

    /// Closes the pool: waiting callers get [`PoolError::Closed`] at once, idle
    /// connections are closed now, connections out are closed as they come back, and new
    /// `get`s fail. Idempotent.
    pub fn close(&self) {
        self.shared.close();
    }

    /// Whether [`close`](Self::close) was called (or every handle dropped).
    pub fn is_closed(&self) -> bool {
        lock(&self.shared.slots).is_closed()
    }

    /// Runs now what the background maintenance runs every interval: closes idle
    /// connections past `idle_timeout` (down to `min_idle`) or `max_lifetime`, opens
    /// connections up to `min_idle`, and reports leaks. Useful with a manual clock.
    pub fn maintain(&self) {
        self.shared.maintain();
    }

    /// A snapshot of sizes, counts and histograms.
    pub fn stats(&self) -> Stats {
        let slots = lock(&self.shared.slots);
        let counters = slots.counters;
        Stats {
            size: slots.open(),
            max_size: slots.max_size(),
            idle: slots.idle(),
            in_use: slots.open() - slots.idle(),
            waiters: slots.waiting(),
            creating: slots.creating(),
            created: counters.created,
            closed: counters.closed,
            create_failures: counters.create_failures,
            waits: counters.waits,
            timeouts: counters.timeouts,
            leaks: counters.leaks,
            wait_time: slots.wait_time.snapshot(),
            hold_time: slots.hold_time.snapshot(),
        }
    }

    /// The manager.
    pub fn manager(&self) -> &M {
        &self.shared.manager
    }
}

impl<M: Manager> Shared<M> {
    /// `get`: the synchronous fast path on the first poll, the full state machine (built
    /// only then) when it cannot finish there.
    async fn get_fast_first(
        self: &Arc<Self>,
        caller: &'static Location<'static>,
        timeout: Option<Duration>,
    ) -> Result<Pooled<M>, PoolError<M::Error>> {
        match self.get_now(caller) {
            Now::Ready(ready) => ready,
            Now::Check(conn) => self.get(caller, timeout, true, Some(conn)).await,
            Now::Wait => self.get(caller, timeout, true, None).await,
        }
    }

    /// The fast path, without awaiting: an idle connection that needs no async check.
    fn get_now(self: &Arc<Self>, caller: &'static Location<'static>) -> Now<M> {
        let (mut conn, refill) = {
            let mut slots = lock(&self.slots);
            let Some(conn) = slots.try_checkout() else {
                return Now::Wait;
            };
            (conn, slots.refill_after_take())
        };
        self.spawn_creates(refill);
        let now = self.clock.now();
        match self.inspect(&conn, now) {
            Inspection::Ready => match self.hand_out(&mut conn, now, caller) {
                Ok(pooled) => return Now::Ready(Ok(pooled.into_pooled(conn))),
                Err(error) => {
                    self.close_one(conn, CloseReason::CheckFailed);
                    if self.config.fail_fast {
                        return Now::Ready(Err(PoolError::Recycle(error)));
                    }
                }
            },
            Inspection::NeedsCheck => return Now::Check(conn),
            Inspection::Close(reason) => self.close_one(conn, reason),
        }
        Now::Wait
    }

    /// The whole checkout: take or wait, inspect, check, hand out. `queue` false: take an
    /// idle connection or give up (`Timeout` with zero wait) without queueing.
    async fn get(
        self: &Arc<Self>,
        caller: &'static Location<'static>,
        timeout: Option<Duration>,
        queue: bool,
        mut first: Option<Conn<M::Connection>>,
    ) -> Result<Pooled<M>, PoolError<M::Error>> {
        let mut deadline = None;
        let mut waited_before = false;
        loop {
            let mut conn = if let Some(conn) = first.take() {
                conn
            } else if queue {
                // Checked out inside `poll_fn` so a caller who queues registers its waker
                // at once (the queue path clones it; the idle path does not touch it).
                let (checkout, refill) = std::future::poll_fn(|cx| {
                    let mut slots = lock(&self.slots);
                    let checkout = if waited_before {
                        // Handed a connection that failed its checks: keep the turn.
                        slots.checkout_again(cx.waker())
                    } else {
                        slots.checkout(Some(cx.waker()))
                    };
                    // Taking an idle connection may leave fewer than `min_idle`: refill now.
                    let refill = if matches!(checkout, Checkout::Idle(_)) {
                        slots.refill_after_take()
                    } else {
                        0
                    };
                    Poll::Ready((checkout, refill))
                })
                .await;
                self.spawn_creates(refill);
                match checkout {
                    Checkout::Idle(conn) => conn,
                    Checkout::Closed => return Err(PoolError::Closed),
                    Checkout::Queued { key, creates } => {
                        self.spawn_creates(creates);
                        waited_before = true;
                        let deadline = *deadline.get_or_insert_with(|| {
                            timeout.map(|timeout| tokio::time::Instant::now() + timeout)
                        });
                        let wait =
                            Wait::registered(&self.slots, key, &*self.clock, self.clock.now());
                        let outcome = match deadline {
                            None => wait.await,
                            Some(deadline) => match tokio::time::timeout_at(deadline, wait).await {
                                Ok(outcome) => outcome,
                                Err(_elapsed) => return Err(self.timed_out(timeout)),
                            },
                        };
                        match outcome {
                            Ok(conn) => conn,
                            Err(WaitFailed::Closed) => return Err(PoolError::Closed),
                            Err(WaitFailed::Create(error)) => return Err(PoolError::Create(error)),
                        }
                    }
                }
            } else {
                let (taken, refill) = {
                    let mut slots = lock(&self.slots);
                    if slots.is_closed() {
                        return Err(PoolError::Closed);
                    }
                    let taken = slots.try_checkout();
                    let refill = if taken.is_some() {
                        slots.refill_after_take()
                    } else {
                        0
                    };
                    (taken, refill)
                };
                self.spawn_creates(refill);
                match taken {
                    Some(conn) => conn,
                    None => {
                        return Err(PoolError::Timeout {
                            waited: Duration::ZERO,
                            last_create_error: None,
                        });
                    }
                }
            };
            let mut now = self.clock.now();
            match self.inspect(&conn, now) {
                Inspection::Ready => {}
                Inspection::Close(reason) => {
                    self.close_one(conn, reason);
                    continue;
                }
                Inspection::NeedsCheck => {
                    // The wait timeout bounds the whole `get`, checks included.
                    let started = tokio::time::Instant::now();
                    let deadline =
                        *deadline.get_or_insert_with(|| timeout.map(|timeout| started + timeout));
                    let check_until = started + self.config.recycle_timeout;
                    let check_until =
                        deadline.map_or(check_until, |deadline| deadline.min(check_until));
                    let mut checking = Checking {
                        shared: self,
                        conn: Some(conn),
                    };
                    let check = self
                        .manager
                        .recycle(&mut checking.conn.as_mut().expect("held while checking").conn);
                    let checked = tokio::time::timeout_at(check_until, check).await;
                    let conn_back = checking.conn.take().expect("held while checking");
                    match checked {
                        Ok(Ok(())) => conn = conn_back,
                        Ok(Err(error)) => {
                            self.close_one(conn_back, CloseReason::CheckFailed);
                            if self.config.fail_fast {
                                return Err(PoolError::Recycle(error));
                            }
                            continue;
                        }
                        Err(_elapsed) => {
                            self.close_one(conn_back, CloseReason::CheckFailed);
                            if deadline
                                .is_some_and(|deadline| tokio::time::Instant::now() >= deadline)
                            {
                                return Err(self.timed_out(timeout));
                            }
                            if self.config.fail_fast {
                                return Err(PoolError::RecycleTimeout(self.config.recycle_timeout));
                            }
                            continue;
                        }
                    }
                    now = self.clock.now();
                }
            }
            match self.hand_out(&mut conn, now, caller) {
                Ok(pooled) => return Ok(pooled.into_pooled(conn)),
                Err(error) => {
                    self.close_one(conn, CloseReason::CheckFailed);
                    if self.config.fail_fast {
                        return Err(PoolError::Recycle(error));
                    }
                }
            }
        }
    }

    /// What a checkout must do with `conn` before handing it out.
    fn inspect(&self, conn: &Conn<M::Connection>, now: u64) -> Inspection {
        if self.manager.is_broken(&conn.conn) {
            Inspection::Close(CloseReason::Broken)
        } else if conn.meta.retire_at <= now {
            Inspection::Close(CloseReason::MaxLifetime)
        } else if now.saturating_sub(conn.meta.last_used) >= nanos(self.config.validate_after) {
            Inspection::NeedsCheck
        } else {
            Inspection::Ready
        }
    }

    /// The last step of a checkout: the `before_checkout` hook, bookkeeping, leak
    /// tracking. `Err` if the hook refused (the caller must close the connection).
    fn hand_out(
        self: &Arc<Self>,
        conn: &mut Conn<M::Connection>,
        now: u64,
        caller: &'static Location<'static>,
    ) -> Result<HandOut<M>, M::Error> {
        self.manager.before_checkout(&mut conn.conn)?;
        conn.meta.uses += 1;
        conn.meta.last_used = now;
        if let Some(leaks) = &self.leaks {
            leaks.checked_out(conn.meta.id, now, caller);
        }
        Ok(HandOut {
            shared: Arc::clone(self),
        })
    }

    fn timed_out(&self, timeout: Option<Duration>) -> PoolError<M::Error> {
        let mut slots = lock(&self.slots);
        slots.counters.timeouts += 1;
        PoolError::Timeout {
            waited: timeout.unwrap_or_default(),
            last_create_error: slots.last_create_error(),
        }
    }

    /// Closes a connection the pool had taken out of its hands, and starts its
    /// replacement if one is wanted.
    pub(crate) fn close_one(self: &Arc<Self>, conn: Conn<M::Connection>, reason: CloseReason) {
        let creates = lock(&self.slots).discard(reason);
        drop(conn);
        self.spawn_creates(creates);
    }

    pub(crate) fn spawn_creates(self: &Arc<Self>, creates: usize) {
        for _ in 0..creates {
            self.runtime
                .spawn(crate::background::create(Arc::clone(self)));
        }
    }

    /// A new connection's bookkeeping.
    pub(crate) fn new_meta(&self) -> Meta {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        Meta::new(id, self.clock.now(), self.config.lifetime())
    }

    pub(crate) fn close(&self) {
        let (idle, wakers) = lock(&self.slots).close();
        drop(idle);
        for waker in wakers {
            wake(Some(waker));
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        lock(&self.slots).is_closed()
    }

    pub(crate) fn maintain(self: &Arc<Self>) {
        let now = self.clock.now();
        let idle_timeout = self.config.idle_timeout.map(nanos);
        let mut slots = lock(&self.slots);
        let closing = slots.reap(|conn| {
            if conn.meta.retire_at <= now {
                Some(CloseReason::MaxLifetime)
            } else if idle_timeout
                .is_some_and(|idle| now.saturating_sub(conn.meta.last_used) >= idle)
            {
                Some(CloseReason::IdleTimeout)
            } else {
                None
            }
        });
        let creates = slots.start_creates();
        drop(slots);
        drop(closing);
        self.spawn_creates(creates);
        if let (Some(leaks), Some(threshold)) = (&self.leaks, self.config.leak_threshold) {
            let overdue = leaks.overdue(now, threshold);
            if !overdue.is_empty() {
                lock(&self.slots).counters.leaks += overdue.len() as u64;
                if let Some(on_leak) = &self.config.on_leak {
                    for report in &overdue {
                        on_leak(report);
                    }
                }
            }
        }
    }
}

/// A connection between leaving the idle list and passing its check: if the checkout is
/// dropped here, it is closed (it may be halfway through a query) and replaced.
struct Checking<'a, M: Manager> {
    shared: &'a Arc<Shared<M>>,
    conn: Option<Conn<M::Connection>>,
}

impl<M: Manager> Drop for Checking<'_, M> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.shared.close_one(conn, CloseReason::CheckFailed);
        }
    }
}

/// A checkout that passed: becomes the guard.
pub(crate) struct HandOut<M: Manager> {
    shared: Arc<Shared<M>>,
}

impl<M: Manager> HandOut<M> {
    fn into_pooled(self, conn: Conn<M::Connection>) -> Pooled<M> {
        Pooled::new(self.shared, conn)
    }
}
