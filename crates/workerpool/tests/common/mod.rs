//! Helpers shared by the integration tests.
//!
//! Nothing here synchronises by sleeping: workers are held on a [`Gate`] and the tests
//! poll the pool's own counters ([`wait_until`]) with a generous upper bound, so a slow
//! machine makes a test slower, never wrong.

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use flowbed_workerpool::{Builder, WorkerPool};

/// The upper bound of every wait in these tests: long enough for a loaded CI machine,
/// short enough that a hang shows up as a failure instead of a stuck run.
pub(crate) const LONG: Duration = Duration::from_secs(10);

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
pub(crate) fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return condition();
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// [`wait_until`] with [`LONG`], panicking with `what` if the condition never holds.
#[track_caller]
pub(crate) fn eventually(what: &str, condition: impl FnMut() -> bool) {
    assert!(
        wait_until(LONG, condition),
        "timed out waiting until {what}"
    );
}

#[derive(Debug, Default)]
struct GateState {
    open: Mutex<bool>,
    opened: Condvar,
}

/// A latch that holds jobs until [`Gate::open`]. Dropping the `Gate` opens it too, so a
/// failing assertion never leaves workers blocked (and the pool's `Drop` hanging).
#[derive(Debug, Default)]
pub(crate) struct Gate(Arc<GateState>);

/// The jobs' side of a [`Gate`]: cheap to clone into closures.
#[derive(Debug, Clone)]
pub(crate) struct GateWaiter(Arc<GateState>);

impl Gate {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn waiter(&self) -> GateWaiter {
        GateWaiter(self.0.clone())
    }

    pub(crate) fn open(&self) {
        *self.0.open.lock().unwrap() = true;
        self.0.opened.notify_all();
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.open();
    }
}

impl GateWaiter {
    /// Blocks until the gate opens (at most a minute: a guard against hangs only).
    pub(crate) fn wait(&self) {
        let open = self.0.open.lock().unwrap_or_else(|e| e.into_inner());
        let _unused = self
            .0
            .opened
            .wait_timeout_while(open, Duration::from_secs(60), |open| !*open)
            .unwrap_or_else(|e| e.into_inner());
    }

    pub(crate) fn is_open(&self) -> bool {
        *self.0.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Submits `n` jobs that wait on a new gate and returns once `n` jobs are running
/// (`stats().active` counts them), so every queue slot is free and every one of those
/// `n` workers is busy until the gate opens.
pub(crate) fn occupy(pool: &WorkerPool, n: usize) -> Gate {
    let gate = Gate::new();
    let active_before = pool.stats().active;
    for _ in 0..n {
        let waiter = gate.waiter();
        pool.execute(move || waiter.wait())
            .unwrap_or_else(|rejected| panic!("could not occupy a worker: {rejected:?}"));
    }
    eventually("the gate jobs are all running", || {
        pool.stats().active == active_before + n
    });
    gate
}

/// A pool of exactly `threads` threads built from `builder`, with every worker held on
/// the returned gate and the queue empty.
pub(crate) fn busy_pool(builder: Builder, threads: usize) -> (WorkerPool, Gate) {
    let pool = builder
        .core_threads(threads)
        .max_threads(threads)
        .build()
        .expect("a valid test configuration");
    let gate = occupy(&pool, threads);
    (pool, gate)
}

/// Counts how often a job ran.
#[derive(Debug, Default, Clone)]
pub(crate) struct Counter(Arc<AtomicUsize>);

impl Counter {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    /// A job that counts one run.
    pub(crate) fn job(&self) -> impl FnOnce() + Send + 'static {
        let count = self.0.clone();
        move || {
            count.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Checks the identity `Stats` promises for a quiet pool.
#[track_caller]
pub(crate) fn assert_stats_add_up(stats: &flowbed_workerpool::Stats) {
    let accounted = stats.completed
        + stats.panicked
        + stats.cancelled
        + stats.rejected.discarded_oldest
        + stats.returned_by_shutdown_now
        + stats.queued as u64
        + stats.active as u64;
    assert_eq!(
        stats.submitted, accounted,
        "submitted must equal completed + panicked + cancelled + discarded_oldest + \
         returned_by_shutdown_now + queued + active: {stats:#?}"
    );
}

/// The panic message of a `catch_unwind` payload, if it was a string.
pub(crate) fn payload_message(payload: &(dyn std::any::Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&'static str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

/// Runs `f` on a helper thread and waits at most [`LONG`] for it; panics if it did not
/// finish (so a blocking call under test cannot hang the test run).
#[track_caller]
pub(crate) fn within_long<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    });
    match rx.recv_timeout(LONG) {
        Ok(Ok(value)) => value,
        Ok(Err(payload)) => std::panic::resume_unwind(payload),
        Err(_) => panic!("{what} did not finish within {LONG:?}"),
    }
}

/// `RejectedStats` with every counter zero except what `set` sets (the type is
/// `#[non_exhaustive]`, so it cannot be built with a struct expression here).
pub(crate) fn rejections(
    set: impl FnOnce(&mut flowbed_workerpool::RejectedStats),
) -> flowbed_workerpool::RejectedStats {
    let mut expected = flowbed_workerpool::RejectedStats::default();
    set(&mut expected);
    expected
}
