//! What the pool does when a job arrives and the queue is full, and whether it adds
//! threads before or after queueing.

use std::time::Duration;

/// What [`WorkerPool::submit`](crate::WorkerPool::submit) and
/// [`execute`](crate::WorkerPool::execute) do when the queue is full and the pool is
/// already at its maximum thread count. The same names as Java's `ThreadPoolExecutor`.
///
/// A shut-down pool rejects with [`Rejected::Shutdown`](crate::Rejected::Shutdown) under
/// every policy.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowbed_workerpool::{RejectPolicy, WorkerPool};
///
/// // Backpressure: a producer that outruns the pool waits up to 50 ms for room.
/// let pool = WorkerPool::builder()
///     .core_threads(2)
///     .queue_capacity(64)
///     .reject_policy(RejectPolicy::Block { timeout: Some(Duration::from_millis(50)) })
///     .build()
///     .unwrap();
/// for _ in 0..1000 {
///     pool.execute(|| ()).unwrap();
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectPolicy {
    /// Refuse: [`Rejected::Full`](crate::Rejected::Full) hands the job back.
    Abort,
    /// Run the job on the submitting thread, which slows the producer down to the pool's
    /// pace. The handle is finished when `submit` returns.
    CallerRuns,
    /// Drop the new job; its handle resolves to
    /// [`JobError::Discarded`](crate::JobError::Discarded).
    Discard,
    /// Drop the oldest queued job (its handle resolves to `Discarded`) and queue the new
    /// one: for work where only the latest matters.
    DiscardOldest,
    /// Wait for room, at most `timeout` (`None`: as long as it takes), then reject with
    /// [`Rejected::Timeout`](crate::Rejected::Timeout). The default, with no timeout:
    /// backpressure, like a bounded channel's `send`.
    ///
    /// A job submitted from one of the pool's own workers is run by that worker instead
    /// of waiting (counted as `caller_runs`): a worker blocking on its own pool could
    /// wait forever.
    Block {
        /// The longest wait; `None` waits until there is room or the pool shuts down.
        timeout: Option<Duration>,
    },
}

impl Default for RejectPolicy {
    /// `Block { timeout: None }`.
    fn default() -> Self {
        Self::Block { timeout: None }
    }
}

/// When the pool adds threads between `core_threads` and `max_threads`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Growth {
    /// Queue first; add a thread only when the queue is full (Java's
    /// `ThreadPoolExecutor`). Keeps the thread count low; latency grows with the queue.
    #[default]
    QueueFirst,
    /// Add a thread whenever no worker is idle, until `max_threads`; queue only then
    /// (Go's ants, Tomcat's executor). Lower latency under bursts, more threads. A worker
    /// counts as idle from the moment its job returns.
    ThreadsFirst,
}
