//! A worker pool for CPU-bound pipeline stages: bounded queue with rejection policies,
//! core/max threads with keep-alive, panic isolation, scoped and broadcast jobs,
//! graceful and immediate shutdown, counters, and work stealing underneath.
//!
//! | need | use |
//! |---|---|
//! | run a closure, no result | [`WorkerPool::execute`] |
//! | run a closure, get its result (blocking, with timeout, or `.await`), cancel it | [`WorkerPool::submit`] → [`JobHandle`] |
//! | wait for room without blocking a thread | [`WorkerPool::submit_async`] |
//! | borrow from the stack (fork-join) | [`WorkerPool::scope`] |
//! | run once on every worker | [`WorkerPool::broadcast`] |
//! | move fork-join work onto a worker and wait | [`WorkerPool::install`] |
//! | decide what happens when full | [`RejectPolicy`] on the [`Builder`] |
//! | stop | [`WorkerPool::shutdown`], [`WorkerPool::shutdown_now`], [`WorkerPool::await_termination`] |
//! | observe | [`WorkerPool::stats`] |
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use flowbed_workerpool::{RejectPolicy, WorkerPool};
//!
//! let pool = WorkerPool::builder()
//!     .core_threads(2)
//!     .max_threads(4)
//!     .queue_capacity(1_000)
//!     .reject_policy(RejectPolicy::Block { timeout: Some(Duration::from_secs(1)) })
//!     .build()?;
//!
//! let handles: Vec<_> = (0..100u64).map(|n| pool.submit(move || n * 2).unwrap()).collect();
//! let total: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
//! assert_eq!(total, 9_900);
//!
//! pool.shutdown();
//! assert!(pool.await_termination(Duration::from_secs(5)));
//! assert_eq!(pool.stats().completed, 100);
//! # Ok::<(), flowbed_workerpool::ConfigError>(())
//! ```

mod broadcast;
mod builder;
mod control;
mod error;
mod job;
mod pending;
mod policy;
mod pool;
mod queue;
mod scope;
mod small_fn;
mod stats;
mod submit_async;
mod sync;
mod task;
mod worker;

pub use broadcast::BroadcastContext;
pub use builder::{
    Builder, DEFAULT_DROP_TIMEOUT, DEFAULT_KEEP_ALIVE, DEFAULT_QUEUE_CAPACITY, MAX_QUEUE_CAPACITY,
};
pub use error::{ConfigError, JobError, JoinTimeoutError, Rejected};
#[cfg(feature = "histograms")]
pub use flowbed_lockfree::histogram::Histogram;
pub use job::JobHandle;
pub use pending::PendingJob;
pub use policy::{Growth, RejectPolicy};
pub use pool::WorkerPool;
pub use scope::{Scope, ScopedJoinHandle};
pub use stats::{RejectedStats, Stats};
pub use submit_async::SubmitAsync;

/// The README's example, compiled and run as a doctest so it cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
