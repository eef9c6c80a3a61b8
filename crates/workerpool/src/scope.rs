//! Scoped jobs: jobs that borrow from the caller's stack, because the scope does not
//! return until every one of them has finished (or was dropped unrun).

use std::fmt;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc as StdArc;

use flowbed_lockfree::WaitList;

use crate::control::Refusal;
use crate::error::JobError;
use crate::job::{Completion, JobCell, Runnable, wait_for};
use crate::pool::Inner;
use crate::stats::PoolCounters;
use crate::sync::{Arc, AtomicUsize, Ordering};
use crate::task::Task;
use crate::worker::{WorkerShared, current_worker};

/// What a scope's owner waits on.
#[derive(Debug)]
pub(crate) struct ScopeState {
    /// Jobs spawned and not yet run or dropped.
    pending: AtomicUsize,
    /// Panics of jobs whose handles did not report them (wrapping: a join may count
    /// down before the worker counts up; the total is right once `pending` is zero).
    unobserved_panics: AtomicUsize,
    done: WaitList,
}

/// Held by each scoped task; dropping it counts the task out of its scope.
#[derive(Debug)]
pub(crate) struct ScopeGuard(StdArc<ScopeState>);

impl ScopeGuard {
    pub(crate) fn record_panic(&self) {
        self.0.unobserved_panics.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        if self.0.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.done.notify_all();
        }
    }
}

/// A scope to spawn borrowing jobs in; see [`WorkerPool::scope`](crate::WorkerPool::scope).
///
/// The lifetimes work as in [`std::thread::Scope`]: `'env` is what jobs may borrow,
/// `'scope` is the scope itself.
pub struct Scope<'scope, 'env: 'scope> {
    inner: Arc<Inner>,
    state: StdArc<ScopeState>,
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

impl<'scope> Scope<'scope, '_> {
    /// Spawns a job that may borrow anything that outlives the scope.
    ///
    /// Never rejected: if the queue is full or the pool shut down, the job runs here,
    /// on the calling thread, before `spawn` returns.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_workerpool::WorkerPool;
    ///
    /// let pool = WorkerPool::new(2).unwrap();
    /// let words = ["a", "bb", "ccc"];
    /// let total = pool.scope(|s| {
    ///     let handles: Vec<_> = words.iter().map(|w| s.spawn(move || w.len())).collect();
    ///     handles.into_iter().map(|h| h.join().unwrap()).sum::<usize>()
    /// });
    /// assert_eq!(total, 6);
    /// ```
    pub fn spawn<F, T>(&'scope self, job: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let (task, handle) = self.scoped_task(job);
        match self
            .inner
            .control
            .try_reserve(self.inner.config.queue_capacity)
        {
            Ok(()) => {
                PoolCounters::count(&self.inner.counters.submitted);
                self.inner.push(task);
            }
            Err(Refusal::Full | Refusal::Shutdown) => self.inner.run_on_caller(task),
        }
        handle
    }

    /// Builds the task for `job` on `worker`'s inbox (broadcast).
    pub(crate) fn spawn_on<F, T>(
        &'scope self,
        worker: &WorkerShared,
        job: F,
    ) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let (task, handle) = self.scoped_task(job);
        PoolCounters::count(&self.inner.counters.submitted);
        worker.push_inbox(task);
        handle
    }

    fn scoped_task<F, T>(&'scope self, job: F) -> (Task, ScopedJoinHandle<'scope, T>)
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let cell = StdArc::new(JobCell::new(job));
        let completion: StdArc<dyn Completion<T> + 'scope> = cell.clone();
        let runnable: StdArc<dyn Runnable + 'scope> = cell;
        // SAFETY: only the lifetime bound changes (same layout and vtable). The queue's
        // reference is dropped before the task's `ScopeGuard` (see `Task::run` and its
        // `Drop`), and `run` below does not return until every guard is gone, so the job
        // and everything it borrows are dead before `'scope` ends. The handle keeps its
        // real lifetime.
        let runnable: StdArc<dyn Runnable> = unsafe {
            std::mem::transmute::<StdArc<dyn Runnable + 'scope>, StdArc<dyn Runnable>>(runnable)
        };
        self.state.pending.fetch_add(1, Ordering::Relaxed);
        let task = Task::scoped(runnable, ScopeGuard(self.state.clone()));
        let handle = ScopedJoinHandle {
            cell: completion,
            state: self.state.clone(),
            scope: PhantomData,
        };
        (task, handle)
    }

    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }

    /// Waits until every spawned job is done; a worker of this pool runs queued jobs
    /// meanwhile.
    fn wait_all(&self) {
        let helper = current_worker(&self.inner);
        loop {
            let next = self.state.done.wait_until(None, || {
                if self.state.pending.load(Ordering::Acquire) == 0 {
                    return Some(None);
                }
                helper
                    .as_ref()
                    .and_then(|worker| worker.find_task())
                    .map(Some)
            });
            match (next.flatten(), &helper) {
                (Some(task), Some(worker)) => worker.run_task(task),
                _ => return,
            }
        }
    }
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("pending", &self.state.pending.load(Ordering::Relaxed))
            .finish()
    }
}

/// `WorkerPool::scope`.
pub(crate) fn run<'env, F, R>(inner: &Arc<Inner>, f: F) -> R
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> R,
{
    let scope = Scope {
        inner: inner.clone(),
        state: StdArc::new(ScopeState {
            pending: AtomicUsize::new(0),
            unobserved_panics: AtomicUsize::new(0),
            done: WaitList::new(),
        }),
        scope: PhantomData,
        env: PhantomData,
    };
    let result = catch_unwind(AssertUnwindSafe(|| f(&scope)));
    scope.wait_all();
    match result {
        Err(payload) => resume_unwind(payload),
        Ok(value) => {
            if scope.state.unobserved_panics.load(Ordering::Relaxed) != 0 {
                panic!("a scoped job panicked and its handle was not joined");
            }
            value
        }
    }
}

/// The result of a scoped job; see [`Scope::spawn`].
pub struct ScopedJoinHandle<'scope, T> {
    cell: StdArc<dyn Completion<T> + 'scope>,
    state: StdArc<ScopeState>,
    scope: PhantomData<&'scope ()>,
}

impl<T> ScopedJoinHandle<'_, T> {
    /// Waits for the job and returns its value.
    ///
    /// # Errors
    ///
    /// [`JobError::Panicked`] with the payload (the scope then does not panic for it).
    pub fn join(self) -> Result<T, JobError> {
        let result =
            wait_for(&*self.cell, None).expect("a wait without deadline ends with a result");
        if matches!(result, Err(JobError::Panicked(_))) {
            self.state.unobserved_panics.fetch_sub(1, Ordering::Relaxed);
        }
        result
    }

    /// True once the result is ready.
    pub fn is_finished(&self) -> bool {
        self.cell.is_finished()
    }
}

impl<T> fmt::Debug for ScopedJoinHandle<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedJoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}
