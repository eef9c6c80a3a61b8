//! `PendingJob`: a queued job that `shutdown_now` took back.

use std::fmt;

use crate::builder::PanicHandler;
use crate::job::Outcome;
use crate::task::Task;

/// A job `shutdown_now` took out of the queue before it started.
///
/// [`run`](Self::run) it on the current thread, or drop it: its handle (if it has one)
/// then resolves to [`JobError::Discarded`](crate::JobError::Discarded).
pub struct PendingJob {
    task: Task,
    panic_handler: Option<PanicHandler>,
}

impl PendingJob {
    pub(crate) fn new(task: Task, panic_handler: Option<PanicHandler>) -> Self {
        Self {
            task,
            panic_handler,
        }
    }

    /// Runs the job here. Its result goes where it always would: to its handle, or, for
    /// a panicking `execute` job, to the pool's panic handler.
    pub fn run(self) {
        if let Outcome::Panicked(Some(payload)) = self.task.run(&|| {}) {
            if let Some(handler) = &self.panic_handler {
                // As on a worker: a panicking handler does not escape.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(payload)));
            }
        }
    }
}

impl fmt::Debug for PendingJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingJob")
            .field("task", &self.task)
            .finish()
    }
}
