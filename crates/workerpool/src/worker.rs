//! A worker thread: find a job (own inbox, own deque, the injector, other workers'
//! deques), run it, and when there is none, spin briefly and park until a push wakes it,
//! its keep-alive runs out, or the pool shuts down.

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
#[cfg(feature = "histograms")]
use std::time::Instant;

use crate::control::RunState;
use crate::job::Outcome;
use crate::pool::Inner;
use crate::queue::{LocalQueue, Stealer};
use crate::stats::WorkerCounters;
use crate::sync::{Arc, AtomicUsize, Mutex, Ordering, fence, lock, thread_local};
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
}

/// Other workers' deques, refreshed when the registry changes.
#[derive(Default)]
struct Victims {
    version: usize,
    stealers: Vec<Stealer>,
    next: usize,
}

thread_local! {
    /// The worker running on this thread, if any: nested submits go to its deque, and a
    /// scope waiting on it runs queued jobs instead of sleeping.
    static CURRENT: RefCell<Option<Rc<Worker>>> = const { RefCell::new(None) };
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

/// Leaves the registry, keeping what the worker counted.
pub(crate) fn deregister(inner: &Inner, shared: &std::sync::Arc<WorkerShared>) {
    let mut registry = lock(&inner.registry);
    registry
        .workers
        .retain(|worker| !std::sync::Arc::ptr_eq(worker, shared));
    registry.retired.add(&shared.counters);
    inner.registry_version.fetch_add(1, Ordering::Release);
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
    pub(crate) fn new(inner: Arc<Inner>) -> (Self, std::sync::Arc<WorkerShared>) {
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
        counters.busy.store(true, Ordering::Relaxed);
        #[cfg(feature = "histograms")]
        let started = {
            let now = Instant::now();
            counters
                .queue_wait
                .record(now.saturating_duration_since(task.enqueued_at));
            now
        };
        let outcome = task.run();
        #[cfg(feature = "histograms")]
        counters.run_time.record(started.elapsed());
        counters.busy.store(false, Ordering::Relaxed);
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

    fn main_loop(&self) -> Exit {
        loop {
            if let Some(task) = self.find_task() {
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
            match self.idle() {
                Idle::Task(task) => self.run_task(task),
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
        let deadline = (threads > core)
            .then(|| std::time::Instant::now().checked_add(inner.config.keep_alive))
            .flatten();
        let found = inner.idle_workers.wait_until(deadline, || {
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
            return Idle::Recheck;
        }
        Idle::Exit(Exit::Retired)
    }

    /// On the way out: hand queued jobs to the others, leave the registry, run what is
    /// left in the inbox.
    fn leave(&self) {
        let mut moved = false;
        while let Some(task) = self.local.pop() {
            self.inner.injector.push(task);
            moved = true;
        }
        if moved {
            fence(Ordering::SeqCst);
            self.inner.idle_workers.notify_all();
        }
        deregister(&self.inner, &self.shared);
        while let Some(task) = self.shared.take_inbox() {
            self.run_task(task);
        }
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
    inner.after_worker_exit();
}
