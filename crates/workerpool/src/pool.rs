//! `WorkerPool`: the public face, and `Inner`, the state its workers share.

use std::fmt;
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;
use flowbed_lockfree::WaitList;

use crate::broadcast::BroadcastContext;
use crate::builder::{Builder, Config, validate_threads};
use crate::control::{Control, Refusal, RunState};
use crate::error::{ConfigError, JobError, Rejected};
use crate::job::{JobHandle, Outcome};
use crate::pending::PendingJob;
use crate::policy::{Growth, RejectPolicy};
use crate::queue::Injector;
use crate::scope::Scope;
use crate::stats::{PoolCounters, RetiredTotals, Stats};
use crate::submit_async::SubmitAsync;
use crate::sync::{Arc, AtomicUsize, Mutex, Ordering, fence, lock, yield_now};
use crate::task::{Detached, Job, Task, WithHandle};
use crate::worker::{self, WorkerShared};

/// Live workers, for stealing, broadcast and stats.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    pub(crate) workers: Vec<std::sync::Arc<WorkerShared>>,
    pub(crate) next_index: usize,
    pub(crate) retired: RetiredTotals,
}

/// The state a pool's handle and its workers share.
#[derive(Debug)]
pub(crate) struct Inner {
    /// Written by every submit and every job start: its own cache line.
    pub(crate) control: CachePadded<Control>,
    /// Workers spinning for work (not parked yet): a push needs no wake-up while one is.
    pub(crate) searching: CachePadded<AtomicUsize>,
    /// Workers not running a job (starting, searching or parked): `ThreadsFirst` adds a
    /// thread only when this is zero.
    pub(crate) idle: AtomicUsize,
    /// Worker threads that have not finished exiting (their stop hook included); the pool
    /// is terminated when this is zero. `threads` drops earlier for a retiring worker,
    /// since it counts against the limits.
    pub(crate) alive: AtomicUsize,
    pub(crate) injector: Injector,
    /// Idle workers sleep here; every push wakes the most recent sleeper.
    pub(crate) idle_workers: WaitList,
    /// Submitters waiting for queue room (`Block`, `submit_async`).
    pub(crate) room: WaitList,
    /// `await_termination` callers.
    pub(crate) termination: WaitList,
    /// Worker threads alive (counted from the decision to start one until it exits).
    pub(crate) threads: AtomicUsize,
    peak_threads: AtomicUsize,
    pub(crate) core: AtomicUsize,
    pub(crate) max: AtomicUsize,
    /// Bumped when limits change, so idle workers re-read them.
    pub(crate) epoch: AtomicUsize,
    pub(crate) registry: Mutex<Registry>,
    /// Bumped when a worker joins or leaves, so thieves refresh their list of victims.
    pub(crate) registry_version: AtomicUsize,
    pub(crate) config: Config,
    pub(crate) counters: CachePadded<PoolCounters>,
}

impl Inner {
    /// Accepts `job` into a queue or onto a new thread, or says why not.
    pub(crate) fn offer<J: Job>(self: &Arc<Self>, job: J) -> Result<J::Handle, (J, Refusal)> {
        if self.config.growth == Growth::ThreadsFirst
            && self.idle.load(Ordering::Relaxed) == 0
            && self.control.load().state == RunState::Running
            && self.try_add_thread()
        {
            let (task, handle) = job.into_task();
            self.start_worker_with(task);
            return Ok(handle);
        }
        match self.control.try_reserve(self.config.queue_capacity) {
            Ok(()) => {
                let (task, handle) = job.into_task();
                PoolCounters::count(&self.counters.submitted);
                self.push(task);
                Ok(handle)
            }
            Err(Refusal::Full) if self.try_add_thread() => {
                let (task, handle) = job.into_task();
                self.start_worker_with(task);
                Ok(handle)
            }
            Err(refusal) => Err((job, refusal)),
        }
    }

    /// Queues a task whose slot is already reserved, and makes sure a worker sees it.
    pub(crate) fn push(self: &Arc<Self>, task: Task) {
        if let Err(task) = worker::push_local(self, task) {
            self.injector.push(task);
        }
        // Pairs with the fence an idle worker issues when it registers (WaitList), and
        // with the one a retiring worker issues after lowering `threads`. A worker that
        // stops searching registers (and re-checks) after lowering `searching`, so
        // skipping the wake-up while one searches loses nothing.
        fence(Ordering::SeqCst);
        self.wake_idle_worker();
        if self.threads.load(Ordering::Relaxed) == 0 && self.try_add_thread() {
            // `core_threads` is 0 and the last worker retired: start one. If the OS
            // refuses, the job stays queued for the next push or `resize` to pick up.
            let _ = self.start_worker(None);
        }
    }

    /// Wakes a parked worker unless one is searching already. Call after a `SeqCst`
    /// fence that follows the change the worker should see.
    pub(crate) fn wake_idle_worker(&self) {
        if self.searching.load(Ordering::Relaxed) == 0 && self.idle_workers.waiting() > 0 {
            self.idle_workers.notify_newest();
        }
    }

    /// A task left a queue: free its slot and wake whoever waits for that.
    pub(crate) fn release_one(&self) {
        let before = self.control.release();
        // One fence for both wait lists (each `notify` re-fences only if someone waits).
        fence(Ordering::SeqCst);
        if self.room.waiting() > 0 {
            self.room.notify_one();
        }
        if before.queued > 1 {
            // More work is queued: make sure someone besides us is looking for it (a
            // batch we stole, or jobs pushed while nobody searched).
            self.wake_idle_worker();
        } else if before.state != RunState::Running {
            // The last queued job is out: idle workers of a shut-down pool may now exit.
            self.idle_workers.notify_all();
        }
    }

    /// Counts a thread in if the pool is below `max_threads`.
    pub(crate) fn try_add_thread(&self) -> bool {
        let mut threads = self.threads.load(Ordering::Relaxed);
        loop {
            if threads >= self.max.load(Ordering::Relaxed) {
                return false;
            }
            match self.threads.compare_exchange_weak(
                threads,
                threads + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    self.peak_threads.fetch_max(threads + 1, Ordering::Relaxed);
                    return true;
                }
                Err(actual) => threads = actual,
            }
        }
    }

    /// Counts a thread out if more than `floor` are alive.
    pub(crate) fn try_remove_thread(&self, floor: usize) -> bool {
        let mut threads = self.threads.load(Ordering::Relaxed);
        loop {
            if threads <= floor {
                return false;
            }
            match self.threads.compare_exchange_weak(
                threads,
                threads - 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => threads = actual,
            }
        }
    }

    /// Starts a counted-in worker whose first job is `task`. If the thread cannot start,
    /// the job goes to the queue instead (over capacity: it was already accepted).
    fn start_worker_with(self: &Arc<Self>, task: Task) {
        PoolCounters::count(&self.counters.submitted);
        if let Err(Some(task)) = self.start_worker(Some(task)) {
            match self.control.try_reserve(usize::MAX >> 2) {
                Ok(()) => self.push(task),
                // Shut down meanwhile: dropping the task resolves its handle `Discarded`.
                Err(_) => drop(task),
            }
        }
    }

    /// Starts a counted-in worker thread; on failure counts it out again.
    pub(crate) fn start_worker(self: &Arc<Self>, first: Option<Task>) -> Result<(), Option<Task>> {
        let starts_idle = first.is_none();
        let (worker, shared) = worker::Worker::new(self.clone(), starts_idle);
        self.alive.fetch_add(1, Ordering::Relaxed);
        let name = format!("{}-{}", self.config.thread_name, shared.index);
        // The first task travels through a slot the spawn error can hand back.
        let slot = std::sync::Arc::new(std::sync::Mutex::new(first));
        let thread_slot = slot.clone();
        let spawned = crate::sync::spawn_thread(name, self.config.stack_size, move || {
            let first = thread_slot
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .take();
            worker::run(worker, first);
        });
        match spawned {
            Ok(()) => Ok(()),
            Err(_) => {
                worker::deregister(self, &shared);
                worker::keep_counts(self, &shared);
                if starts_idle {
                    self.idle.fetch_sub(1, Ordering::Relaxed);
                }
                self.threads.fetch_sub(1, Ordering::AcqRel);
                self.alive.fetch_sub(1, Ordering::AcqRel);
                self.after_worker_exit();
                let first = slot
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .take();
                Err(first)
            }
        }
    }

    /// Called whenever the thread count went down.
    pub(crate) fn after_worker_exit(&self) {
        self.termination.notify_all();
    }

    pub(crate) fn is_terminated(&self) -> bool {
        self.control.load().state != RunState::Running && self.alive.load(Ordering::Acquire) == 0
    }

    /// Takes the oldest queued task out (for `DiscardOldest` and `shutdown_now`).
    fn take_oldest(&self) -> Option<Task> {
        let task = self.injector.steal().or_else(|| {
            let stealers: Vec<_> = lock(&self.registry)
                .workers
                .iter()
                .map(|worker| worker.stealer.clone())
                .collect();
            stealers.iter().find_map(|stealer| stealer.steal())
        })?;
        self.release_one();
        Some(task)
    }

    /// Runs a rejected job on the calling thread (`CallerRuns`, scoped jobs that do not
    /// fit).
    pub(crate) fn run_on_caller(&self, task: Task) {
        if let Outcome::Panicked(Some(payload)) = task.run(&|| {}) {
            self.handle_panic(payload);
        }
    }

    pub(crate) fn handle_panic(&self, payload: Box<dyn std::any::Any + Send>) {
        if let Some(handler) = &self.config.panic_handler {
            // A panicking handler must not take the worker down with it.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(payload)));
        }
    }

    fn shutdown(&self, target: RunState) {
        self.control.advance(target);
        self.epoch.fetch_add(1, Ordering::Relaxed);
        self.idle_workers.notify_all();
        self.room.notify_all();
        self.termination.notify_all();
    }
}

/// A pool of worker threads with a bounded queue.
///
/// * **Bounded:** at most `queue_capacity` jobs wait; beyond that the
///   [`RejectPolicy`] decides (refuse and hand the job back, run it on the caller, drop
///   it, drop the oldest, or block with a timeout).
/// * **Elastic:** `core_threads` always run; up to `max_threads` are added under load and
///   exit after `keep_alive` idle; [`resize`](Self::resize) changes both at runtime.
/// * **Panic-proof:** a panicking job reports `Err(JobError::Panicked)` through its
///   handle; the worker catches it and carries on.
/// * **Fast:** one global injector plus a work-stealing deque per worker; idle workers
///   spin for a few microseconds, then park (no busy idling).
///
/// Dropping the pool shuts it down gracefully: queued jobs run, for at most the
/// builder's `drop_timeout`.
///
/// # Examples
///
/// ```
/// use flowbed_workerpool::WorkerPool;
///
/// let pool = WorkerPool::new(4)?;
/// let handles: Vec<_> = (0..10u64)
///     .map(|n| pool.submit(move || n * n).unwrap())
///     .collect();
/// let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
/// assert_eq!(sum, 285);
/// # Ok::<(), flowbed_workerpool::ConfigError>(())
/// ```
pub struct WorkerPool {
    inner: Arc<Inner>,
}

impl WorkerPool {
    /// A pool of exactly `threads` threads with the other defaults of [`Builder`].
    ///
    /// # Errors
    ///
    /// As [`Builder::build`]: `threads` must be at least 1.
    pub fn new(threads: usize) -> Result<Self, ConfigError> {
        Builder::new()
            .core_threads(threads)
            .max_threads(threads)
            .build()
    }

    /// A builder for every other setting.
    pub fn builder() -> Builder {
        Builder::new()
    }

    pub(crate) fn start(core: usize, max: usize, config: Config) -> Result<Self, ConfigError> {
        let inner = Arc::new(Inner {
            control: CachePadded::new(Control::new()),
            searching: CachePadded::new(AtomicUsize::new(0)),
            idle: AtomicUsize::new(0),
            alive: AtomicUsize::new(0),
            injector: Injector::default(),
            idle_workers: WaitList::new(),
            room: WaitList::new(),
            termination: WaitList::new(),
            threads: AtomicUsize::new(0),
            peak_threads: AtomicUsize::new(0),
            core: AtomicUsize::new(core),
            max: AtomicUsize::new(max),
            epoch: AtomicUsize::new(0),
            registry: Mutex::new(Registry::default()),
            registry_version: AtomicUsize::new(0),
            config,
            counters: CachePadded::new(PoolCounters::default()),
        });
        let pool = Self { inner };
        pool.start_core_threads()?;
        Ok(pool)
    }

    fn start_core_threads(&self) -> Result<(), ConfigError> {
        let inner = &self.inner;
        while inner.threads.load(Ordering::Relaxed) < inner.core.load(Ordering::Relaxed)
            && inner.try_add_thread()
        {
            if inner.start_worker(None).is_err() {
                return Err(ConfigError::Spawn(std::io::Error::other(
                    "the operating system refused a new thread",
                )));
            }
        }
        Ok(())
    }

    /// Runs `job` on the pool without a handle (fire and forget). A panic goes to the
    /// builder's `panic_handler`, if any; the worker survives.
    ///
    /// # Errors
    ///
    /// The job comes back in [`Rejected`] if the queue is full (per the policy) or the
    /// pool is shut down.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use flowbed_workerpool::WorkerPool;
    ///
    /// let pool = WorkerPool::new(2).unwrap();
    /// let done = Arc::new(AtomicUsize::new(0));
    /// for _ in 0..100 {
    ///     let done = Arc::clone(&done);
    ///     pool.execute(move || { done.fetch_add(1, Ordering::Relaxed); }).unwrap();
    /// }
    /// pool.shutdown();
    /// pool.await_termination(std::time::Duration::from_secs(10));
    /// assert_eq!(done.load(Ordering::Relaxed), 100);
    /// ```
    pub fn execute<F>(&self, job: F) -> Result<(), Rejected<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.submit_job(Detached(job))
    }

    /// Runs `job` on the pool and returns a handle to its result.
    ///
    /// # Errors
    ///
    /// The job comes back in [`Rejected`] if the queue is full (per the policy) or the
    /// pool is shut down.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_workerpool::{JobError, WorkerPool};
    ///
    /// let pool = WorkerPool::new(2).unwrap();
    /// let ok = pool.submit(|| "parsed").unwrap();
    /// let bad = pool.submit(|| -> u8 { panic!("malformed event") }).unwrap();
    /// assert_eq!(ok.join().unwrap(), "parsed");
    /// assert_eq!(bad.join().unwrap_err().panic_message(), Some("malformed event"));
    /// ```
    pub fn submit<F, T>(&self, job: F) -> Result<JobHandle<T>, Rejected<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.submit_job(WithHandle::new(job))
    }

    /// Submits `job`, waiting asynchronously while the queue is full (whatever the
    /// policy). Dropping the future gives up the wait; the job is not submitted.
    ///
    /// # Errors
    ///
    /// [`Rejected::Shutdown`] with the job if the pool shuts down first.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use flowbed_workerpool::WorkerPool;
    ///
    /// let pool = WorkerPool::builder().core_threads(2).queue_capacity(4).build().unwrap();
    /// let mut handles = Vec::new();
    /// for n in 0..100u32 {
    ///     handles.push(pool.submit_async(move || n).await.unwrap());
    /// }
    /// let mut total = 0;
    /// for handle in handles {
    ///     total += handle.await.unwrap();
    /// }
    /// assert_eq!(total, 4950);
    /// # });
    /// ```
    pub fn submit_async<F, T>(&self, job: F) -> SubmitAsync<'_, F, T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        SubmitAsync::new(&self.inner, WithHandle::new(job))
    }

    fn submit_job<J: Job>(&self, job: J) -> Result<J::Handle, Rejected<J::Closure>> {
        let inner = &self.inner;
        let counters = &inner.counters;
        let job = match inner.offer(job) {
            Ok(handle) => return Ok(handle),
            Err((job, Refusal::Shutdown)) => {
                PoolCounters::count(&counters.shutdown);
                return Err(Rejected::Shutdown(job.into_closure()));
            }
            Err((job, Refusal::Full)) => job,
        };
        match inner.config.reject_policy {
            RejectPolicy::Abort => {
                PoolCounters::count(&counters.aborted);
                Err(Rejected::Full(job.into_closure()))
            }
            RejectPolicy::CallerRuns => {
                PoolCounters::count(&counters.caller_runs);
                let (task, handle) = job.into_task();
                inner.run_on_caller(task);
                Ok(handle)
            }
            RejectPolicy::Discard => {
                PoolCounters::count(&counters.discarded);
                let (task, handle) = job.into_task();
                drop(task); // resolves the handle with `Discarded`
                Ok(handle)
            }
            RejectPolicy::DiscardOldest => self.discard_oldest_for(job),
            RejectPolicy::Block { timeout } => self.block_for_room(job, timeout),
        }
    }

    fn discard_oldest_for<J: Job>(&self, mut job: J) -> Result<J::Handle, Rejected<J::Closure>> {
        let inner = &self.inner;
        loop {
            if let Some(oldest) = inner.take_oldest() {
                if oldest.is_scoped() {
                    // A scope waits for its jobs and promises to run them: run it here.
                    PoolCounters::count(&inner.counters.caller_runs);
                    inner.run_on_caller(oldest);
                } else {
                    PoolCounters::count(&inner.counters.discarded_oldest);
                    drop(oldest);
                }
            }
            match inner.offer(job) {
                Ok(handle) => return Ok(handle),
                Err((back, Refusal::Shutdown)) => {
                    PoolCounters::count(&inner.counters.shutdown);
                    return Err(Rejected::Shutdown(back.into_closure()));
                }
                Err((back, Refusal::Full)) => {
                    // Full of reservations whose jobs are still on their way in.
                    job = back;
                    yield_now();
                }
            }
        }
    }

    fn block_for_room<J: Job>(
        &self,
        job: J,
        timeout: Option<Duration>,
    ) -> Result<J::Handle, Rejected<J::Closure>> {
        let inner = &self.inner;
        if worker::is_worker_of(inner) {
            // A worker waiting for room in its own pool could wait forever (every worker
            // blocked the same way): it runs the job itself instead.
            PoolCounters::count(&inner.counters.caller_runs);
            let (task, handle) = job.into_task();
            inner.run_on_caller(task);
            return Ok(handle);
        }
        let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
        let mut pending = Some(job);
        let outcome = inner.room.wait_until(deadline, || {
            let job = pending
                .take()
                .expect("the job is back after every failed attempt");
            match inner.offer(job) {
                Ok(handle) => Some(Ok(handle)),
                Err((back, Refusal::Full)) => {
                    pending = Some(back);
                    None
                }
                Err((back, Refusal::Shutdown)) => {
                    PoolCounters::count(&inner.counters.shutdown);
                    Some(Err(Rejected::Shutdown(back.into_closure())))
                }
            }
        });
        outcome.unwrap_or_else(|| {
            PoolCounters::count(&inner.counters.timed_out);
            let job = pending.take().expect("a timed-out wait hands the job back");
            Err(Rejected::Timeout(job.into_closure()))
        })
    }

    /// Runs `f` with a [`Scope`] whose jobs may borrow from the caller's stack, like
    /// [`std::thread::scope`]; returns once every job spawned in it has finished.
    ///
    /// Scoped jobs are never rejected: if the queue is full or the pool is shut down,
    /// they run on the calling thread. A worker thread waiting for its scope runs other
    /// queued jobs meanwhile, so nested scopes cannot starve the pool.
    ///
    /// # Panics
    ///
    /// Re-raises a panic of `f`, and panics if a spawned job panicked and its handle was
    /// not joined (a joined handle reports the panic as [`JobError::Panicked`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_workerpool::WorkerPool;
    ///
    /// let pool = WorkerPool::new(4).unwrap();
    /// let events = vec![3u64, 1, 4, 1, 5, 9, 2, 6];
    /// let mut sums = [0u64; 2];
    /// let (left, right) = sums.split_at_mut(1);
    /// pool.scope(|s| {
    ///     s.spawn(|| left[0] = events[..4].iter().sum());
    ///     s.spawn(|| right[0] = events[4..].iter().sum());
    /// });
    /// assert_eq!(sums, [9, 22]);
    /// ```
    pub fn scope<'env, F, R>(&'env self, f: F) -> R
    where
        F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> R,
    {
        crate::scope::run(&self.inner, f)
    }

    /// Runs `f` on one of the pool's workers and returns its result, blocking the caller
    /// meanwhile (rayon's `install`). Scopes opened inside `f` then spawn into that
    /// worker's own deque and the worker helps run them, which is the fast path for
    /// fork-join work; called on a worker of this pool, `f` simply runs here.
    ///
    /// # Panics
    ///
    /// Re-raises a panic of `f`; panics if `shutdown_now` took `f` back unrun.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use flowbed_workerpool::WorkerPool;
    ///
    /// let pool = WorkerPool::new(2).unwrap();
    /// let total = AtomicU64::new(0);
    /// pool.install(|| {
    ///     pool.scope(|s| {
    ///         for n in 1..=100u64 {
    ///             let total = &total;
    ///             s.spawn(move || total.fetch_add(n, Ordering::Relaxed));
    ///         }
    ///     })
    /// });
    /// assert_eq!(total.into_inner(), 5050);
    /// ```
    pub fn install<F, R>(&self, f: F) -> R
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        if worker::is_worker_of(&self.inner) {
            return f();
        }
        match self.scope(|s| s.spawn(f).join()) {
            Ok(value) => value,
            Err(JobError::Panicked(payload)) => std::panic::resume_unwind(payload),
            Err(error) => panic!("`install` job did not run: {error}"),
        }
    }

    /// Runs `f` once on every worker thread alive now, and returns the results in worker
    /// order. Useful for per-thread setup (thread-local caches, affinity) or stats.
    ///
    /// Workers started later do not run it; a pool with no threads (`core_threads` 0,
    /// all idle threads retired) returns an empty vector.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_workerpool::WorkerPool;
    ///
    /// let pool = WorkerPool::new(3).unwrap();
    /// let names = pool.broadcast(|ctx| (ctx.index(), std::thread::current().name().map(String::from)));
    /// assert_eq!(names.len(), 3);
    /// for result in names {
    ///     let (_, name) = result.unwrap();
    ///     assert!(name.unwrap().starts_with("flowbed-worker-"));
    /// }
    /// ```
    pub fn broadcast<T, F>(&self, f: F) -> Vec<Result<T, JobError>>
    where
        F: Fn(BroadcastContext) -> T + Sync,
        T: Send,
    {
        crate::broadcast::run(&self.inner, f)
    }

    /// Changes the thread limits. Threads are started at once up to `core`; threads
    /// above `max` exit after their current job; idle threads above `core` exit after
    /// `keep_alive`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] if `max` is 0 or `core > max` (nothing changes), or
    /// [`ConfigError::Spawn`] if a thread could not be started (the new limits hold).
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_workerpool::WorkerPool;
    ///
    /// let pool = WorkerPool::new(1).unwrap();
    /// pool.resize(4, 8).unwrap();
    /// assert_eq!(pool.stats().threads, 4);
    /// assert!(pool.resize(5, 2).is_err());
    /// ```
    pub fn resize(&self, core: usize, max: usize) -> Result<(), ConfigError> {
        validate_threads(core, max)?;
        let inner = &self.inner;
        inner.max.store(max, Ordering::Relaxed);
        inner.core.store(core, Ordering::Relaxed);
        inner.epoch.fetch_add(1, Ordering::Relaxed);
        // Idle workers re-read the limits: surplus ones retire, others re-arm keep-alive.
        inner.idle_workers.notify_all();
        if inner.control.load().state == RunState::Running {
            self.start_core_threads()?;
        }
        Ok(())
    }

    /// Stops accepting jobs; queued jobs still run. Returns at once (see
    /// [`await_termination`](Self::await_termination)).
    pub fn shutdown(&self) {
        self.inner.shutdown(RunState::Shutdown);
    }

    /// Stops accepting jobs and takes the queued ones back, oldest first. Jobs already
    /// running finish; a job a worker took in the same instant may still run. Each
    /// returned job can be [`run`](PendingJob::run); dropping it resolves its handle with
    /// [`JobError::Discarded`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowbed_workerpool::WorkerPool;
    ///
    /// let pool = WorkerPool::new(1).unwrap();
    /// pool.execute(|| std::thread::sleep(Duration::from_millis(100))).unwrap();
    /// std::thread::sleep(Duration::from_millis(20)); // the worker is busy now
    /// let queued = pool.submit(|| 1).unwrap();
    /// let returned = pool.shutdown_now();
    /// assert_eq!(returned.len(), 1);
    /// drop(returned);
    /// assert!(queued.join().is_err()); // discarded
    /// ```
    pub fn shutdown_now(&self) -> Vec<PendingJob> {
        let inner = &self.inner;
        inner.shutdown(RunState::Stop);
        let mut returned = Vec::new();
        loop {
            while let Some(task) = inner.take_oldest() {
                returned.push(PendingJob::new(task, inner.config.panic_handler.clone()));
            }
            if inner.control.load().queued == 0 {
                break;
            }
            // A reserved job is still on its way into a queue, or a retiring worker is
            // moving its local jobs to the injector.
            yield_now();
        }
        inner
            .counters
            .returned
            .fetch_add(returned.len() as u64, Ordering::Relaxed);
        returned
    }

    /// Waits until the pool is shut down and every worker thread has exited, at most
    /// `timeout`. Returns `true` if it has.
    pub fn await_termination(&self, timeout: Duration) -> bool {
        let inner = &self.inner;
        let deadline = Instant::now().checked_add(timeout);
        inner
            .termination
            .wait_until(deadline, || inner.is_terminated().then_some(()))
            .is_some()
    }

    /// True once `shutdown` or `shutdown_now` was called.
    pub fn is_shutdown(&self) -> bool {
        self.inner.control.load().state != RunState::Running
    }

    /// True once shut down and every worker thread has exited.
    pub fn is_terminated(&self) -> bool {
        self.inner.is_terminated()
    }

    /// The configured queue capacity.
    pub fn queue_capacity(&self) -> usize {
        self.inner.config.queue_capacity
    }

    /// The current `(core_threads, max_threads)`.
    pub fn thread_limits(&self) -> (usize, usize) {
        (
            self.inner.core.load(Ordering::Relaxed),
            self.inner.max.load(Ordering::Relaxed),
        )
    }

    /// A snapshot of the counters (see [`Stats`] for how they add up).
    pub fn stats(&self) -> Stats {
        let inner = &self.inner;
        let mut stats = Stats::default();
        inner.counters.write_into(&mut stats);
        {
            let registry = lock(&inner.registry);
            registry.retired.write_into(&mut stats);
            for worker in &registry.workers {
                worker.counters.write_into(&mut stats);
            }
        }
        stats.queued = inner.control.load().queued;
        stats.threads = inner.threads.load(Ordering::Relaxed);
        stats.peak_threads = inner.peak_threads.load(Ordering::Relaxed);
        stats
    }
}

impl Drop for WorkerPool {
    /// Graceful: stops accepting, lets queued jobs run for up to `drop_timeout`, then
    /// discards what is still queued. Never waits for itself when dropped on one of its
    /// own workers.
    fn drop(&mut self) {
        self.shutdown();
        if worker::is_worker_of(&self.inner) {
            return;
        }
        if !self.await_termination(self.inner.config.drop_timeout) {
            drop(self.shutdown_now());
        }
    }
}

impl fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let control = self.inner.control.load();
        f.debug_struct("WorkerPool")
            .field("state", &control.state)
            .field("queued", &control.queued)
            .field("threads", &self.inner.threads.load(Ordering::Relaxed))
            .field("limits", &self.thread_limits())
            .finish()
    }
}
