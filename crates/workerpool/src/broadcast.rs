//! `broadcast`: one run of a closure on every worker thread.

use crate::error::JobError;
use crate::pool::Inner;
use crate::sync::{Arc, Ordering, fence, lock};
use crate::worker::current_worker;

/// Where a broadcast closure is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BroadcastContext {
    index: usize,
    num_workers: usize,
}

impl BroadcastContext {
    /// This run's position, `0..num_workers()`.
    pub fn index(&self) -> usize {
        self.index
    }

    /// How many workers run the broadcast.
    pub fn num_workers(&self) -> usize {
        self.num_workers
    }
}

/// `WorkerPool::broadcast`.
pub(crate) fn run<T, F>(inner: &Arc<Inner>, f: F) -> Vec<Result<T, JobError>>
where
    F: Fn(BroadcastContext) -> T + Sync,
    T: Send,
{
    let f = &f;
    crate::scope::run(inner, |scope| {
        let handles: Vec<_> = {
            // Holding the registry lock: no worker can leave with its inbox unserved.
            let registry = lock(&scope.inner().registry);
            let staying: Vec<_> = registry
                .workers
                .iter()
                .filter(|worker| !worker.leaving.load(Ordering::Relaxed))
                .collect();
            let num_workers = staying.len();
            staying
                .into_iter()
                .enumerate()
                .map(|(index, worker)| {
                    let context = BroadcastContext { index, num_workers };
                    scope.spawn_on(worker, move || f(context))
                })
                .collect()
        };
        fence(Ordering::SeqCst);
        inner.idle_workers.notify_all();
        // Called on a worker of this pool: run our own share before waiting for the rest.
        if let Some(worker) = current_worker(inner) {
            while let Some(task) = worker.take_own_inbox() {
                worker.run_task(task);
            }
        }
        handles.into_iter().map(|handle| handle.join()).collect()
    })
}
