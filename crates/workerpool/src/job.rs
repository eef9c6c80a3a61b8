//! A submitted job and the handle its submitter keeps: one allocation holds the closure,
//! then its result, and the waiter to wake when the result is ready.

use std::fmt;
use std::future::Future;
use std::mem;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use flowbed_lockfree::Backoff;
use flowbed_lockfree::wait_list::{Wake, park_timeout};

use crate::error::{JobError, JoinTimeoutError};
use std::sync::Arc;

use crate::sync::{AtomicBool, Mutex, Ordering, current_thread, lock, park};

/// How running a job went, for the pool's counters.
#[derive(Debug)]
pub(crate) enum Outcome {
    Completed,
    /// The payload is `Some` only when nobody else will receive it (a detached job).
    Panicked(Option<Box<dyn std::any::Any + Send>>),
    /// The job had been cancelled or discarded; nothing ran.
    Skipped,
}

/// The pool's side of a job with a handle: run it, or resolve it unrun.
pub(crate) trait Runnable: Send + Sync {
    /// Runs the job; `returned` is called after the closure returns (or panics) and
    /// before anyone waiting for the result can see it.
    fn run(&self, returned: &dyn Fn()) -> Outcome;
    /// Resolves the handle with `Discarded` if the job has not started.
    fn discard(&self);
}

/// The handle's side: the result once it is there.
pub(crate) trait Completion<T>: Send + Sync {
    /// Takes the result if finished; otherwise remembers `waiter` to wake.
    fn take_or_wait(&self, waiter: Option<Wake>) -> Option<Result<T, JobError>>;
    fn cancel(&self) -> bool;
    fn is_finished(&self) -> bool;
}

enum Slot<F, T> {
    Queued(F),
    Running,
    Finished(Result<T, JobError>),
    /// The result went to the handle.
    Taken,
}

struct State<F, T> {
    slot: Slot<F, T>,
    waiter: Option<Wake>,
}

/// The shared cell behind a [`JobHandle`].
pub(crate) struct JobCell<F, T> {
    /// Set after the result is stored: lets a joiner spin without taking the lock.
    finished: AtomicBool,
    state: Mutex<State<F, T>>,
}

impl<F, T> JobCell<F, T>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    pub(crate) fn new(job: F) -> Self {
        Self {
            finished: AtomicBool::new(false),
            state: Mutex::new(State {
                slot: Slot::Queued(job),
                waiter: None,
            }),
        }
    }

    fn finish(&self, result: Result<T, JobError>) {
        let waiter = {
            let mut state = lock(&self.state);
            state.slot = Slot::Finished(result);
            state.waiter.take()
        };
        self.finished.store(true, Ordering::Release);
        if let Some(waiter) = waiter {
            waiter.wake();
        }
    }

    /// Takes the closure out and marks the cell `Running`, if it is still queued (not
    /// cancelled, discarded or run).
    fn take_queued(&self) -> Option<F> {
        let mut state = lock(&self.state);
        match mem::replace(&mut state.slot, Slot::Running) {
            Slot::Queued(job) => Some(job),
            other => {
                state.slot = other;
                None
            }
        }
    }

    /// Moves the cell from `Queued` to an unrun end state; false if it already started.
    fn resolve_unrun(&self, error: JobError) -> bool {
        let Some(job) = self.take_queued() else {
            return false;
        };
        // The closure may own anything; drop it outside the lock.
        drop(job);
        self.finish(Err(error));
        true
    }
}

impl<F, T> Runnable for JobCell<F, T>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    fn run(&self, returned: &dyn Fn()) -> Outcome {
        let Some(job) = self.take_queued() else {
            return Outcome::Skipped;
        };
        let result = catch_unwind(AssertUnwindSafe(job));
        returned();
        match result {
            Ok(value) => {
                self.finish(Ok(value));
                Outcome::Completed
            }
            Err(payload) => {
                self.finish(Err(JobError::Panicked(payload)));
                Outcome::Panicked(None)
            }
        }
    }

    fn discard(&self) {
        self.resolve_unrun(JobError::Discarded);
    }
}

impl<F, T> Completion<T> for JobCell<F, T>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    fn take_or_wait(&self, waiter: Option<Wake>) -> Option<Result<T, JobError>> {
        let mut state = lock(&self.state);
        match mem::replace(&mut state.slot, Slot::Taken) {
            Slot::Finished(result) => Some(result),
            Slot::Taken => panic!("a job's result was taken twice"),
            other => {
                state.slot = other;
                if waiter.is_some() {
                    state.waiter = waiter;
                }
                None
            }
        }
    }

    fn cancel(&self) -> bool {
        self.resolve_unrun(JobError::Cancelled)
    }

    fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }
}

/// The result of a submitted job, to wait for ([`join`](Self::join),
/// [`join_timeout`](Self::join_timeout), `.await`) or to [`cancel`](Self::cancel).
///
/// Dropping the handle detaches the job: it still runs, and its result is dropped.
///
/// # Examples
///
/// ```
/// use flowbed_workerpool::WorkerPool;
///
/// let pool = WorkerPool::new(2).unwrap();
/// let handle = pool.submit(|| 6 * 7).unwrap();
/// assert_eq!(handle.join().unwrap(), 42);
/// ```
#[must_use = "dropping a handle detaches the job; call `join` to get its result"]
pub struct JobHandle<T> {
    cell: Arc<dyn Completion<T>>,
}

impl<T> JobHandle<T> {
    pub(crate) fn new(cell: Arc<dyn Completion<T>>) -> Self {
        Self { cell }
    }

    /// Waits for the job and returns its value.
    ///
    /// Waits by spinning a few microseconds (most short jobs finish within that), then
    /// parking the thread.
    ///
    /// # Errors
    ///
    /// [`JobError::Panicked`] with the panic payload, [`JobError::Cancelled`], or
    /// [`JobError::Discarded`].
    pub fn join(self) -> Result<T, JobError> {
        wait_for(&*self.cell, None).expect("a wait without deadline ends with a result")
    }

    /// Waits at most `timeout` for the job.
    ///
    /// # Errors
    ///
    /// [`JoinTimeoutError::Timeout`] with this handle if the job is still pending, or
    /// [`JoinTimeoutError::Job`] as for [`join`](Self::join).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowbed_workerpool::{JoinTimeoutError, WorkerPool};
    ///
    /// let pool = WorkerPool::new(1).unwrap();
    /// let slow = pool.submit(|| std::thread::sleep(Duration::from_millis(200))).unwrap();
    /// let slow = match slow.join_timeout(Duration::from_millis(1)) {
    ///     Err(JoinTimeoutError::Timeout(handle)) => handle, // still running
    ///     other => panic!("{other:?}"),
    /// };
    /// slow.join().unwrap();
    /// ```
    pub fn join_timeout(self, timeout: Duration) -> Result<T, JoinTimeoutError<T>> {
        match wait_for(&*self.cell, Instant::now().checked_add(timeout)) {
            Some(result) => result.map_err(JoinTimeoutError::Job),
            None => Err(JoinTimeoutError::Timeout(self)),
        }
    }

    /// Cancels the job if it has not started. Returns `true` if it will never run; its
    /// result is then [`JobError::Cancelled`]. A running or finished job is not touched.
    ///
    /// The cancelled job keeps its queue slot (and counts in `Stats::queued`) until a
    /// worker reaches it and skips it; `Stats::cancelled` counts it then.
    pub fn cancel(&self) -> bool {
        self.cell.cancel()
    }

    /// True once the result is ready (`join` will not block).
    pub fn is_finished(&self) -> bool {
        self.cell.is_finished()
    }
}

/// Spins briefly, then parks until the job is finished or `deadline` passes.
pub(crate) fn wait_for<T>(
    cell: &dyn Completion<T>,
    deadline: Option<Instant>,
) -> Option<Result<T, JobError>> {
    // Spin phase: short jobs finish within microseconds and parking costs more. (Under
    // loom the park path alone is explored.)
    // On a worker thread, run queued jobs while waiting: the awaited job may sit in this
    // very worker's deque (submitted from here), where nobody else would take it.
    crate::worker::help_until(|| cell.is_finished());
    let mut backoff = Backoff::new();
    while !cfg!(flowbed_loom) && !cell.is_finished() && !backoff.is_completed() {
        backoff.snooze();
    }
    loop {
        if let Some(result) = cell.take_or_wait(Some(Wake::Thread(current_thread()))) {
            return Some(result);
        }
        match deadline {
            None => park(),
            Some(deadline) => {
                let now = Instant::now();
                if now >= deadline {
                    return None;
                }
                park_timeout(deadline - now);
            }
        }
    }
}

impl<T> Future for JobHandle<T> {
    type Output = Result<T, JobError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.cell.take_or_wait(Some(Wake::Task(cx.waker().clone()))) {
            Some(result) => Poll::Ready(result),
            None => Poll::Pending,
        }
    }
}

impl<T> fmt::Debug for JobHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}
