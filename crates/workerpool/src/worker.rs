//! A worker thread: find a job (own inbox, own deque, the injector, other workers'
//! deques), run it, and when there is none, spin briefly and park until a push wakes it,
//! its keep-alive runs out, or the pool shuts down.

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
#[cfg(feature = "histograms")]
use std::time::Instant;

use flowbed_lockfree::Backoff;

use crate::control::RunState;
use crate::job::Outcome;
use crate::policy::Growth;
use crate::pool::Inner;
use crate::queue::{LocalQueue, Stealer};
use crate::stats::WorkerCounters;
use crate::sync::{
    Arc, AtomicBool, AtomicUsize, Mutex, Ordering, fence, lock, thread_local, yield_now,
};
use crate::task::Task;

/// The part of a worker other threads see: its deque to steal from, its broadcast inbox,
/// its counters.
#[derive(Debug)]
pub(crate) struct WorkerShared {
    pub(crate) index: usize,
    pub(crate) stealer: Stealer,
    /// Jobs for this worker only (`broadcast`). Not counted in the queue.
    inbox: Mutex<Vec<Task>>,
    inbox_len: AtomicUsize,
    /// Set (under the registry lock) once the worker has begun to exit.
    pub(crate) leaving: AtomicBool,
    pub(crate) counters: WorkerCounters,
}

impl WorkerShared {
    /// Adds a job only this worker may run. Caller holds the registry lock, so the worker
    /// cannot have left yet (it empties its inbox after leaving the registry).
    pub(crate) fn push_inbox(&self, task: Task) {
        lock(&self.inbox).push(task);
        self.inbox_len.fetch_add(1, Ordering::Relaxed);
    }

    fn take_inbox(&self) -> Option<Task> {
        if self.inbox_len.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let task = lock(&self.inbox).pop()?;
        self.inbox_len.fetch_sub(1, Ordering::Relaxed);
        Some(task)
    }
}

/// The thread-owned side of a worker.
pub(crate) struct Worker {
    inner: Arc<Inner>,
    shared: std::sync::Arc<WorkerShared>,
    local: LocalQueue,
    victims: RefCell<Victims>,
    /// Counted in `Inner::idle`.
    is_idle: Cell<bool>,
}

/// Other workers' deques, refreshed when the registry changes.
#[derive(Default)]
struct Victims {
    version: usize,
    stealers: Vec<Stealer>,
    next: usize,
}

#[cfg(not(flowbed_loom))]
thread_local! {
    /// The worker running on this thread, if any: nested submits go to its deque, and a
    /// scope waiting on it runs queued jobs instead of sleeping.
    static CURRENT: RefCell<Option<Rc<Worker>>> = const { RefCell::new(None) };
}

// loom's `thread_local!` has no `const` form.
#[cfg(flowbed_loom)]
thread_local! {
    static CURRENT: RefCell<Option<Rc<Worker>>> = RefCell::new(None);
}

/// The worker on this thread if it belongs to `inner`'s pool.
pub(crate) fn current_worker(inner: &Arc<Inner>) -> Option<Rc<Worker>> {
    CURRENT.with(|current| {
        current
            .borrow()
            .as_ref()
            .filter(|worker| Arc::ptr_eq(&worker.inner, inner))
            .cloned()
    })
}

pub(crate) fn is_worker_of(inner: &Arc<Inner>) -> bool {
    current_worker(inner).is_some()
}

/// Pushes to this thread's own deque if it is a worker of `inner`'s pool.
pub(crate) fn push_local(inner: &Arc<Inner>, task: Task) -> Result<(), Task> {
    CURRENT.with(|current| match current.borrow().as_ref() {
        Some(worker) if Arc::ptr_eq(&worker.inner, inner) => {
            worker.local.push(task);
            Ok(())
        }
        _ => Err(task),
    })
}

/// Marks the worker as leaving: broadcasts skip it from now on (it still runs what its
/// inbox holds), and `stats` keeps counting it until `keep_counts`.
pub(crate) fn deregister(inner: &Inner, shared: &WorkerShared) {
    let _registry = lock(&inner.registry);
    shared.leaving.store(true, Ordering::Relaxed);
    inner.registry_version.fetch_add(1, Ordering::Release);
}

/// Removes a departed worker, adding its counters to the pool's totals (after its last
/// job), in one step so that `stats` never misses them.
pub(crate) fn keep_counts(inner: &Inner, shared: &std::sync::Arc<WorkerShared>) {
    let mut registry = lock(&inner.registry);
    registry
        .workers
        .retain(|worker| !std::sync::Arc::ptr_eq(worker, shared));
    registry.retired.add(&shared.counters);
    inner.registry_version.fetch_add(1, Ordering::Release);
}

/// On a worker thread (of any pool), runs queued jobs of its pool until `done` holds or
/// none is left. Lets a job wait for another job without starving the pool.
pub(crate) fn help_until(done: impl Fn() -> bool) {
    let Some(worker) = CURRENT.with(|current| current.borrow().clone()) else {
        return;
    };
    while !done() {
        match worker.find_task() {
            Some(task) => worker.run_task(task),
            None => return,
        }
    }
}

/// How the main loop ended.
enum Exit {
    /// The thread count was already lowered (keep-alive or shrink).
    Retired,
    /// Shut down: the thread count is lowered on the way out.
    Shutdown,
}

/// What an idle worker found.
enum Idle {
    Task(Task),
    Exit(Exit),
    /// The limits changed: re-read them.
    Recheck,
}

impl Worker {
    /// A worker registered with the pool (its thread is not started yet).
    pub(crate) fn new(
        inner: Arc<Inner>,
        starts_idle: bool,
    ) -> (Self, std::sync::Arc<WorkerShared>) {
        if starts_idle {
            inner.idle.fetch_add(1, Ordering::Relaxed);
        }
        let local = LocalQueue::new();
        let shared = {
            let mut registry = lock(&inner.registry);
            let index = registry.next_index;
            registry.next_index += 1;
            let shared = std::sync::Arc::new(WorkerShared {
                index,
                stealer: local.stealer(),
                inbox: Mutex::new(Vec::new()),
                inbox_len: AtomicUsize::new(0),
                leaving: AtomicBool::new(false),
                counters: WorkerCounters::default(),
            });
            registry.workers.push(shared.clone());
            inner.registry_version.fetch_add(1, Ordering::Release);
            shared
        };
        let worker = Self {
            inner,
            shared: shared.clone(),
            local,
            victims: RefCell::new(Victims::default()),
            is_idle: Cell::new(starts_idle),
        };
        (worker, shared)
    }

    /// Takes the next job: own inbox, own deque, a batch from the injector, then other
    /// workers' deques.
    pub(crate) fn find_task(&self) -> Option<Task> {
        if let Some(task) = self.shared.take_inbox() {
            return Some(task);
        }
        let task = self
            .local
            .pop()
            .or_else(|| self.inner.injector.steal_batch_and_pop(&self.local))
            .or_else(|| self.steal_from_peers())?;
        self.inner.release_one();
        Some(task)
    }

    /// Takes a job from this worker's broadcast inbox.
    pub(crate) fn take_own_inbox(&self) -> Option<Task> {
        self.shared.take_inbox()
    }

    fn steal_from_peers(&self) -> Option<Task> {
        let mut victims = self.victims.borrow_mut();
        let version = self.inner.registry_version.load(Ordering::Acquire);
        if victims.version != version || victims.stealers.is_empty() {
            let registry = lock(&self.inner.registry);
            victims.stealers = registry
                .workers
                .iter()
                .filter(|worker| !std::sync::Arc::ptr_eq(worker, &self.shared))
                .map(|worker| worker.stealer.clone())
                .collect();
            victims.version = version;
        }
        let count = victims.stealers.len();
        if count == 0 {
            return None;
        }
        // Start where the last search stopped, so thieves spread over their victims.
        let start = victims.next % count;
        victims.next = victims.next.wrapping_add(1);
        (0..count).find_map(|offset| victims.stealers[(start + offset) % count].steal())
    }

    /// Runs a job and counts how it went.
    pub(crate) fn run_task(&self, task: Task) {
        let counters = &self.shared.counters;
        // A worker helping its scope runs jobs inside a job: it stays busy after them.
        let was_busy = counters.busy.load(Ordering::Relaxed);
        counters.busy.store(true, Ordering::Relaxed);
        #[cfg(feature = "histograms")]
        let started = {
            let now = Instant::now();
            counters
                .queue_wait
                .record_exclusive(now.saturating_duration_since(task.enqueued_at));
            now
        };
        // Under `ThreadsFirst` the worker counts as idle as soon as the job returns, so a
        // submitter reacting to the result does not start a thread for nothing. (Other
        // modes skip the bookkeeping: it costs two shared updates per job.)
        let count_idle_early = !was_busy && self.inner.config.growth == Growth::ThreadsFirst;
        let outcome = task.run(&|| {
            if count_idle_early {
                self.set_idle(true);
            }
        });
        #[cfg(feature = "histograms")]
        counters.run_time.record_exclusive(started.elapsed());
        counters.busy.store(was_busy, Ordering::Relaxed);
        match outcome {
            Outcome::Completed => counters.completed.increment(),
            Outcome::Skipped => counters.cancelled.increment(),
            Outcome::Panicked(payload) => {
                counters.panicked.increment();
                if let Some(payload) = payload {
                    self.inner.handle_panic(payload);
                }
            }
        }
    }

    fn set_idle(&self, idle: bool) {
        if self.is_idle.replace(idle) != idle {
            if idle {
                self.inner.idle.fetch_add(1, Ordering::Relaxed);
            } else {
                self.inner.idle.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    fn main_loop(&self) -> Exit {
        loop {
            if let Some(task) = self.find_task() {
                self.set_idle(false);
                self.run_task(task);
                // Shrunk below the running count: leave after the current job.
                let max = self.inner.max.load(Ordering::Relaxed);
                if self.inner.threads.load(Ordering::Relaxed) > max
                    && self.inner.try_remove_thread(max)
                {
                    return Exit::Retired;
                }
                continue;
            }
            self.set_idle(true);
            match self.idle() {
                Idle::Task(task) => {
                    self.set_idle(false);
                    self.run_task(task);
                }
                Idle::Exit(exit) => return exit,
                Idle::Recheck => {}
            }
        }
    }

    /// Waits for work. Threads above `core_threads` wait at most `keep_alive`.
    fn idle(&self) -> Idle {
        let inner = &*self.inner;
        let epoch = inner.epoch.load(Ordering::Relaxed);
        let core = inner.core.load(Ordering::Relaxed);
        let max = inner.max.load(Ordering::Relaxed);
        let threads = inner.threads.load(Ordering::Relaxed);
        if threads > max && inner.try_remove_thread(max) {
            return Idle::Exit(Exit::Retired);
        }
        if let Some(task) = self.search() {
            return Idle::Task(task);
        }
        let deadline = (threads > core)
            .then(|| std::time::Instant::now().checked_add(inner.config.keep_alive))
            .flatten();
        let found = inner.idle_workers.park_until(deadline, || {
            if let Some(task) = self.find_task() {
                return Some(Idle::Task(task));
            }
            let control = inner.control.load();
            if control.state == RunState::Stop
                || (control.state == RunState::Shutdown && control.queued == 0)
            {
                return Some(Idle::Exit(Exit::Shutdown));
            }
            (inner.epoch.load(Ordering::Relaxed) != epoch).then_some(Idle::Recheck)
        });
        match found {
            Some(idle) => idle,
            None => self.keep_alive_expired(),
        }
    }

    /// Spins a few microseconds looking for work, counted in `searching` so that pushes
    /// meanwhile skip the (expensive) wake-up of a parked worker.
    fn search(&self) -> Option<Task> {
        let inner = &*self.inner;
        inner.searching.fetch_add(1, Ordering::Relaxed);
        let mut backoff = Backoff::new();
        let found = loop {
            if let Some(task) = self.find_task() {
                break Some(task);
            }
            // Under loom one look is enough to model the protocol (no spin loops).
            if cfg!(flowbed_loom) || backoff.is_completed() {
                break None;
            }
            // Spin, then yield: on a machine with fewer cores than threads, yielding is
            // what lets a submitter sharing the core make the progress we wait for.
            backoff.snooze();
        };
        // Leaving the search before parking: the park registers, fences and re-checks,
        // so a push that skipped its wake-up because we searched is still seen.
        let searchers_before = inner.searching.fetch_sub(1, Ordering::Relaxed);
        if found.is_some() && searchers_before == 1 && inner.control.load().queued > 0 {
            // The last searcher found work and more is queued: pushes skipped their
            // wake-ups while we searched, so wake a parked worker to take over.
            fence(Ordering::SeqCst);
            inner.wake_idle_worker();
        }
        found
    }

    /// Idle for `keep_alive`: retire if the pool is above `core_threads`, unless a job
    /// arrived as we left.
    fn keep_alive_expired(&self) -> Idle {
        let inner = &*self.inner;
        if !inner.try_remove_thread(inner.core.load(Ordering::Relaxed)) {
            return Idle::Recheck;
        }
        // Pairs with the fence a submitter issues after its push: either it sees our
        // lower thread count (and starts a worker if none is left), or we see its job.
        fence(Ordering::SeqCst);
        if inner.control.load().queued > 0 && inner.try_add_thread() {
            // The job may still be on its way into the queue (reserved, not pushed):
            // give its submitter the CPU before looking again.
            yield_now();
            return Idle::Recheck;
        }
        Idle::Exit(Exit::Retired)
    }

    /// On the way out: hand queued jobs to the others, leave the registry, run what is
    /// left in the inbox.
    fn leave(&self) {
        deregister(&self.inner, &self.shared);
        while let Some(task) = self.shared.take_inbox() {
            self.run_task(task);
        }
        // Last: the inbox jobs may have queued nested jobs here.
        let mut moved = false;
        while let Some(task) = self.local.pop() {
            self.inner.injector.push(task);
            moved = true;
        }
        if moved {
            fence(Ordering::SeqCst);
            self.inner.idle_workers.notify_all();
        }
        keep_counts(&self.inner, &self.shared);
        self.set_idle(false);
    }
}

/// A worker thread's body.
pub(crate) fn run(worker: Worker, first: Option<Task>) {
    let worker = Rc::new(worker);
    CURRENT.with(|current| *current.borrow_mut() = Some(worker.clone()));
    let index = worker.shared.index;
    if let Some(hook) = &worker.inner.config.on_thread_start {
        let _ = catch_unwind(AssertUnwindSafe(|| hook(index)));
    }
    if let Some(task) = first {
        worker.run_task(task);
    }
    let exit = worker.main_loop();
    worker.leave();
    if let Some(hook) = &worker.inner.config.on_thread_stop {
        let _ = catch_unwind(AssertUnwindSafe(|| hook(index)));
    }
    CURRENT.with(|current| current.borrow_mut().take());
    let inner = worker.inner.clone();
    drop(worker);
    if let Exit::Shutdown = exit {
        inner.threads.fetch_sub(1, Ordering::AcqRel);
    }
    inner.alive.fetch_sub(1, Ordering::AcqRel);
    inner.after_worker_exit();
}
