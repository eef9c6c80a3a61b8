//! Errors: one type per operation, each handing back what it could not take.

use std::any::Any;
use std::fmt;

use crate::job::JobHandle;

/// A job the pool did not accept, handed back to the caller with the reason.
///
/// Returned by [`WorkerPool::submit`](crate::WorkerPool::submit) and friends. Its `Debug`
/// does not require the job to be `Debug` (closures never are).
///
/// # Examples
///
/// ```
/// use flowbed_workerpool::{RejectPolicy, Rejected, WorkerPool};
///
/// let pool = WorkerPool::builder()
///     .core_threads(1)
///     .queue_capacity(1)
///     .reject_policy(RejectPolicy::Abort)
///     .build()
///     .unwrap();
/// let gate = std::sync::Arc::new(std::sync::Barrier::new(2));
/// let held = std::sync::Arc::clone(&gate);
/// pool.execute(move || { held.wait(); }).unwrap(); // occupies the only worker
/// # std::thread::sleep(std::time::Duration::from_millis(50));
/// pool.execute(|| ()).unwrap(); // fills the queue
/// match pool.execute(|| ()) {
///     Err(Rejected::Full(job)) => job(), // `Abort` hands the job back
///     other => panic!("expected a full queue, got {other:?}"),
/// }
/// gate.wait();
/// ```
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Rejected<F> {
    /// The queue was full and no thread could be added (policy `Abort`).
    #[error("worker pool queue is full")]
    Full(F),
    /// The queue stayed full for the whole `Block` timeout.
    #[error("timed out waiting for room in the worker pool queue")]
    Timeout(F),
    /// The pool is shutting down or shut down.
    #[error("worker pool is shut down")]
    Shutdown(F),
}

impl<F> Rejected<F> {
    /// The job that was not accepted.
    pub fn into_inner(self) -> F {
        match self {
            Self::Full(job) | Self::Timeout(job) | Self::Shutdown(job) => job,
        }
    }
}

impl<F> fmt::Debug for Rejected<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Full(_) => "Full",
            Self::Timeout(_) => "Timeout",
            Self::Shutdown(_) => "Shutdown",
        };
        f.debug_tuple(name).finish_non_exhaustive()
    }
}

/// Why a job produced no value.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// The job panicked; the payload is what it panicked with (see
    /// [`std::panic::resume_unwind`] to re-raise it).
    #[error("job panicked: {}", panic_message(&**.0))]
    Panicked(Box<dyn Any + Send + 'static>),
    /// [`JobHandle::cancel`] removed the job before it started.
    #[error("job was cancelled before it started")]
    Cancelled,
    /// The pool dropped the job unrun: the `Discard` or `DiscardOldest` policy, or
    /// `shutdown_now` whose returned job was dropped instead of run.
    #[error("job was discarded before it started")]
    Discarded,
}

impl JobError {
    /// True if the job panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, Self::Panicked(_))
    }

    /// The panic payload as text, when it was a string (`panic!("...")`).
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            Self::Panicked(payload) => payload_str(payload.as_ref()),
            _ => None,
        }
    }
}

impl fmt::Debug for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Panicked(payload) => f
                .debug_tuple("Panicked")
                .field(&payload_str(payload.as_ref()).unwrap_or("<non-string payload>"))
                .finish(),
            Self::Cancelled => f.write_str("Cancelled"),
            Self::Discarded => f.write_str("Discarded"),
        }
    }
}

impl PartialEq for JobError {
    /// Panics compare equal when their messages do.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Panicked(_), Self::Panicked(_)) => self.panic_message() == other.panic_message(),
            (Self::Cancelled, Self::Cancelled) | (Self::Discarded, Self::Discarded) => true,
            _ => false,
        }
    }
}

fn payload_str(payload: &(dyn Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&'static str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload_str(payload).unwrap_or("<non-string payload>")
}

/// [`JobHandle::join_timeout`] gave up, or the job produced no value.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum JoinTimeoutError<T> {
    /// The job did not finish in time; the handle comes back so you can wait again.
    #[error("job did not finish in time")]
    Timeout(JobHandle<T>),
    /// The job finished without a value.
    #[error(transparent)]
    Job(JobError),
}

impl<T> JoinTimeoutError<T> {
    /// The handle, if the wait timed out.
    pub fn into_handle(self) -> Option<JobHandle<T>> {
        match self {
            Self::Timeout(handle) => Some(handle),
            Self::Job(_) => None,
        }
    }
}

impl<T> fmt::Debug for JoinTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout(_) => f.write_str("Timeout(..)"),
            Self::Job(error) => f.debug_tuple("Job").field(error).finish(),
        }
    }
}

/// A configuration the pool refuses, from [`Builder::build`](crate::Builder::build) or
/// [`WorkerPool::resize`](crate::WorkerPool::resize).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A setting is out of range or contradicts another.
    #[error("invalid worker pool setting `{field}`: {reason}")]
    Invalid {
        /// The builder method / field at fault.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// The operating system refused to start a worker thread.
    #[error("could not start a worker thread: {0}")]
    Spawn(#[from] std::io::Error),
}
