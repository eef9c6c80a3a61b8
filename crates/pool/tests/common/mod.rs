//! A fault-injection manager for the pool's scenario tests: creates, checks and hooks that
//! can be told to fail, hang or refuse, and counts of everything the pool asked of it.
#![allow(dead_code)]

use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::Duration;

use flowbed_pool::{Builder, CreateError, Manager, Pool, PoolError, TokioClock};
use tokio::sync::Semaphore;
use tokio::time::Instant;

pub(crate) type TestPool = Pool<TestManager>;
pub(crate) type TestResult = Result<flowbed_pool::Pooled<TestManager>, PoolError<TestError>>;

/// The manager's error: says which operation failed and its attempt number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TestError(pub(crate) String);

impl fmt::Display for TestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TestError {}

/// What an operation does when it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Fault {
    #[default]
    Ok,
    Fail,
    /// Never completes (the pool's timeout has to drop it).
    Hang,
}

/// A connection: the manager's id (in order of successful `create`s, from 1).
pub(crate) struct TestConn {
    pub(crate) id: u64,
    faults: Arc<Faults>,
}

impl fmt::Debug for TestConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TestConn").field(&self.id).finish()
    }
}

impl Drop for TestConn {
    fn drop(&mut self) {
        self.faults.live.fetch_sub(1, SeqCst);
        lock(&self.faults.dropped_ids).push(self.id);
    }
}

#[derive(Debug, Default)]
struct Knobs {
    create: Fault,
    create_failures_left: usize,
    create_delay: Duration,
    gated: bool,
    after_create_failures_left: usize,
    recycle: Fault,
    recycle_failures_left: usize,
    recycle_hangs_left: usize,
    broken: HashSet<u64>,
    refuse_checkout: HashSet<u64>,
    refuse_return: HashSet<u64>,
}

/// The switches and counters shared by a test and its manager.
#[derive(Debug)]
pub(crate) struct Faults {
    knobs: Mutex<Knobs>,
    gate: Semaphore,
    attempts: AtomicUsize,
    in_create: AtomicUsize,
    peak_in_create: AtomicUsize,
    made: AtomicU64,
    live: AtomicUsize,
    peak_live: AtomicUsize,
    recycles: AtomicUsize,
    after_creates: AtomicUsize,
    before_checkouts: AtomicUsize,
    after_returns: AtomicUsize,
    attempt_times: Mutex<Vec<Instant>>,
    dropped_ids: Mutex<Vec<u64>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Faults {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            knobs: Mutex::default(),
            gate: Semaphore::new(0),
            attempts: AtomicUsize::new(0),
            in_create: AtomicUsize::new(0),
            peak_in_create: AtomicUsize::new(0),
            made: AtomicU64::new(0),
            live: AtomicUsize::new(0),
            peak_live: AtomicUsize::new(0),
            recycles: AtomicUsize::new(0),
            after_creates: AtomicUsize::new(0),
            before_checkouts: AtomicUsize::new(0),
            after_returns: AtomicUsize::new(0),
            attempt_times: Mutex::default(),
            dropped_ids: Mutex::default(),
        })
    }

    fn knobs(&self) -> MutexGuard<'_, Knobs> {
        lock(&self.knobs)
    }

    // --- switches ---

    /// What every `create` does from now on (after any `fail_creates` are used up).
    pub(crate) fn set_create(&self, fault: Fault) {
        self.knobs().create = fault;
    }

    /// The next `n` creates fail.
    pub(crate) fn fail_creates(&self, n: usize) {
        self.knobs().create_failures_left = n;
    }

    /// Every create takes `delay` (of tokio time) before its outcome.
    pub(crate) fn create_delay(&self, delay: Duration) {
        self.knobs().create_delay = delay;
    }

    /// Creates from now on wait for `release_creates` before deciding their outcome.
    pub(crate) fn gate_creates(&self) {
        self.knobs().gated = true;
    }

    /// Lets `n` gated creates go on.
    pub(crate) fn release_creates(&self, n: usize) {
        self.gate.add_permits(n);
    }

    /// Creates no longer wait; those waiting go on.
    pub(crate) fn ungate_creates(&self) {
        self.knobs().gated = false;
        self.gate.add_permits(1_000);
    }

    /// The next `n` `after_create` hooks fail.
    pub(crate) fn fail_after_creates(&self, n: usize) {
        self.knobs().after_create_failures_left = n;
    }

    /// What every `recycle` does (after any one-off faults are used up).
    pub(crate) fn set_recycle(&self, fault: Fault) {
        self.knobs().recycle = fault;
    }

    /// The next `n` recycles fail.
    pub(crate) fn fail_recycles(&self, n: usize) {
        self.knobs().recycle_failures_left = n;
    }

    /// The next `n` recycles hang.
    pub(crate) fn hang_recycles(&self, n: usize) {
        self.knobs().recycle_hangs_left = n;
    }

    /// `is_broken` says yes for connection `id`.
    pub(crate) fn break_conn(&self, id: u64) {
        self.knobs().broken.insert(id);
    }

    /// `before_checkout` fails for connection `id`.
    pub(crate) fn refuse_checkout(&self, id: u64) {
        self.knobs().refuse_checkout.insert(id);
    }

    /// `after_return` refuses connection `id`.
    pub(crate) fn refuse_return(&self, id: u64) {
        self.knobs().refuse_return.insert(id);
    }

    // --- counters ---

    /// Calls of `create` so far.
    pub(crate) fn attempts(&self) -> usize {
        self.attempts.load(SeqCst)
    }

    /// When each `create` was called (tokio time).
    pub(crate) fn attempt_times(&self) -> Vec<Instant> {
        lock(&self.attempt_times).clone()
    }

    /// The gaps between consecutive `create` calls.
    pub(crate) fn attempt_gaps(&self) -> Vec<Duration> {
        self.attempt_times()
            .windows(2)
            .map(|pair| pair[1] - pair[0])
            .collect()
    }

    /// `create` calls running now.
    pub(crate) fn in_create(&self) -> usize {
        self.in_create.load(SeqCst)
    }

    /// The most `create` calls that ran at once.
    pub(crate) fn peak_in_create(&self) -> usize {
        self.peak_in_create.load(SeqCst)
    }

    /// Connections `create` returned.
    pub(crate) fn made(&self) -> u64 {
        self.made.load(SeqCst)
    }

    /// Connections alive (made and not yet dropped).
    pub(crate) fn live(&self) -> usize {
        self.live.load(SeqCst)
    }

    /// The most connections alive at once.
    pub(crate) fn peak_live(&self) -> usize {
        self.peak_live.load(SeqCst)
    }

    /// Ids of the dropped connections, in drop order.
    pub(crate) fn dropped_ids(&self) -> Vec<u64> {
        lock(&self.dropped_ids).clone()
    }

    pub(crate) fn recycles(&self) -> usize {
        self.recycles.load(SeqCst)
    }

    pub(crate) fn after_creates(&self) -> usize {
        self.after_creates.load(SeqCst)
    }

    pub(crate) fn before_checkouts(&self) -> usize {
        self.before_checkouts.load(SeqCst)
    }

    pub(crate) fn after_returns(&self) -> usize {
        self.after_returns.load(SeqCst)
    }
}

/// Counts a `create` call as running until dropped (also when the pool's timeout drops it).
struct Creating<'a>(&'a Faults);

impl<'a> Creating<'a> {
    fn enter(faults: &'a Faults) -> Self {
        let now = faults.in_create.fetch_add(1, SeqCst) + 1;
        faults.peak_in_create.fetch_max(now, SeqCst);
        Self(faults)
    }
}

impl Drop for Creating<'_> {
    fn drop(&mut self) {
        self.0.in_create.fetch_sub(1, SeqCst);
    }
}

/// The manager: every operation does what its [`Faults`] say.
#[derive(Debug, Clone)]
pub(crate) struct TestManager {
    pub(crate) faults: Arc<Faults>,
}

impl Manager for TestManager {
    type Connection = TestConn;
    type Error = TestError;

    async fn create(&self) -> Result<TestConn, TestError> {
        let faults = &self.faults;
        let attempt = faults.attempts.fetch_add(1, SeqCst) + 1;
        lock(&faults.attempt_times).push(Instant::now());
        let _creating = Creating::enter(faults);
        let gated = faults.knobs().gated;
        if gated {
            faults.gate.acquire().await.expect("gate open").forget();
        }
        let delay = faults.knobs().create_delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let fault = {
            let mut knobs = faults.knobs();
            if knobs.create_failures_left > 0 {
                knobs.create_failures_left -= 1;
                Fault::Fail
            } else {
                knobs.create
            }
        };
        match fault {
            Fault::Ok => {
                let id = faults.made.fetch_add(1, SeqCst) + 1;
                let live = faults.live.fetch_add(1, SeqCst) + 1;
                faults.peak_live.fetch_max(live, SeqCst);
                Ok(TestConn {
                    id,
                    faults: Arc::clone(faults),
                })
            }
            Fault::Fail => Err(TestError(format!("create {attempt} refused"))),
            Fault::Hang => std::future::pending().await,
        }
    }

    async fn recycle(&self, conn: &mut TestConn) -> Result<(), TestError> {
        let faults = &self.faults;
        let call = faults.recycles.fetch_add(1, SeqCst) + 1;
        let fault = {
            let mut knobs = faults.knobs();
            if knobs.recycle_failures_left > 0 {
                knobs.recycle_failures_left -= 1;
                Fault::Fail
            } else if knobs.recycle_hangs_left > 0 {
                knobs.recycle_hangs_left -= 1;
                Fault::Hang
            } else {
                knobs.recycle
            }
        };
        match fault {
            Fault::Ok => Ok(()),
            Fault::Fail => Err(TestError(format!(
                "recycle {call} of conn {} failed",
                conn.id
            ))),
            Fault::Hang => std::future::pending().await,
        }
    }

    fn is_broken(&self, conn: &TestConn) -> bool {
        self.faults.knobs().broken.contains(&conn.id)
    }

    async fn after_create(&self, conn: &mut TestConn) -> Result<(), TestError> {
        self.faults.after_creates.fetch_add(1, SeqCst);
        let mut knobs = self.faults.knobs();
        if knobs.after_create_failures_left > 0 {
            knobs.after_create_failures_left -= 1;
            return Err(TestError(format!(
                "after_create of conn {} failed",
                conn.id
            )));
        }
        Ok(())
    }

    fn before_checkout(&self, conn: &mut TestConn) -> Result<(), TestError> {
        self.faults.before_checkouts.fetch_add(1, SeqCst);
        if self.faults.knobs().refuse_checkout.contains(&conn.id) {
            return Err(TestError(format!(
                "before_checkout refused conn {}",
                conn.id
            )));
        }
        Ok(())
    }

    fn after_return(&self, conn: &mut TestConn) -> bool {
        self.faults.after_returns.fetch_add(1, SeqCst);
        !self.faults.knobs().refuse_return.contains(&conn.id)
    }
}

/// A builder for a [`TestManager`] pool on tokio's (paused) clock, with background
/// maintenance effectively off (every hour); tests that want it set it again.
pub(crate) fn builder() -> (Builder<TestManager>, Arc<Faults>) {
    let faults = Faults::new();
    let builder = Pool::builder(TestManager {
        faults: Arc::clone(&faults),
    })
    .clock(TokioClock::new())
    .maintenance_interval(Duration::from_secs(3600));
    (builder, faults)
}

/// A manager and its faults, for tests that build the pool themselves.
pub(crate) fn manager() -> (TestManager, Arc<Faults>) {
    let faults = Faults::new();
    (
        TestManager {
            faults: Arc::clone(&faults),
        },
        faults,
    )
}

pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub(crate) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Lets the other tasks of this (current-thread) runtime run until `cond` holds, without
/// moving time. Panics if it never does.
pub(crate) async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if cond() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("never happened: {what}");
}

/// Polls `fut` once with this task's waker.
pub(crate) async fn poll_once<F: Future>(mut fut: Pin<&mut F>) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await
}

/// The parts of a `Timeout`, or a panic naming what came instead.
pub(crate) fn timeout_parts(result: TestResult) -> (Duration, Option<Arc<CreateError<TestError>>>) {
    match result {
        Err(PoolError::Timeout {
            waited,
            last_create_error,
        }) => (waited, last_create_error),
        other => panic!("expected Timeout, got {other:?}"),
    }
}
