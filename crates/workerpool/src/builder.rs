//! `Builder`: every setting of a pool, checked when the pool is built.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::ConfigError;
use crate::policy::{Growth, RejectPolicy};
use crate::pool::WorkerPool;

/// A hook called on a worker thread with the worker's index.
pub(crate) type ThreadHook = Arc<dyn Fn(usize) + Send + Sync>;
/// Receives the payload of a panicking `execute` job.
pub(crate) type PanicHandler = Arc<dyn Fn(Box<dyn Any + Send>) + Send + Sync>;

/// Jobs the queue holds by default.
pub const DEFAULT_QUEUE_CAPACITY: usize = 4096;
/// How long threads above `core_threads` stay idle before exiting, by default.
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(60);
/// How long dropping a pool waits for queued and running jobs, by default.
pub const DEFAULT_DROP_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest queue capacity (the count shares a word with the pool's state).
pub const MAX_QUEUE_CAPACITY: usize = (1 << (usize::BITS - 2)) - 1;

/// The settings a pool keeps for its whole life.
pub(crate) struct Config {
    pub(crate) keep_alive: Duration,
    pub(crate) queue_capacity: usize,
    pub(crate) reject_policy: RejectPolicy,
    pub(crate) growth: Growth,
    pub(crate) thread_name: String,
    pub(crate) stack_size: Option<usize>,
    pub(crate) on_thread_start: Option<ThreadHook>,
    pub(crate) on_thread_stop: Option<ThreadHook>,
    pub(crate) panic_handler: Option<PanicHandler>,
    pub(crate) drop_timeout: Duration,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("keep_alive", &self.keep_alive)
            .field("queue_capacity", &self.queue_capacity)
            .field("reject_policy", &self.reject_policy)
            .field("growth", &self.growth)
            .field("thread_name", &self.thread_name)
            .field("stack_size", &self.stack_size)
            .field("drop_timeout", &self.drop_timeout)
            .finish_non_exhaustive()
    }
}

/// Configures and builds a [`WorkerPool`].
///
/// Defaults: `core_threads` = `max_threads` = the number of CPUs, queue of
/// [`DEFAULT_QUEUE_CAPACITY`] jobs, [`RejectPolicy::Block`] without timeout
/// (backpressure), [`Growth::QueueFirst`],
/// keep-alive [`DEFAULT_KEEP_ALIVE`], threads named `flowbed-worker-N`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowbed_workerpool::{Growth, RejectPolicy, WorkerPool};
///
/// let pool = WorkerPool::builder()
///     .core_threads(2)
///     .max_threads(8)
///     .keep_alive(Duration::from_secs(30))
///     .queue_capacity(10_000)
///     .growth(Growth::ThreadsFirst)
///     .reject_policy(RejectPolicy::CallerRuns)
///     .thread_name("parser")
///     .build()?;
/// assert_eq!(pool.stats().threads, 2);
/// # Ok::<(), flowbed_workerpool::ConfigError>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct Builder {
    core_threads: Option<usize>,
    max_threads: Option<usize>,
    config: Config,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("core_threads", &self.core_threads)
            .field("max_threads", &self.max_threads)
            .field("config", &self.config)
            .finish()
    }
}

impl Builder {
    /// A builder with the defaults.
    pub fn new() -> Self {
        Self {
            core_threads: None,
            max_threads: None,
            config: Config {
                keep_alive: DEFAULT_KEEP_ALIVE,
                queue_capacity: DEFAULT_QUEUE_CAPACITY,
                reject_policy: RejectPolicy::default(),
                growth: Growth::default(),
                thread_name: "flowbed-worker".to_owned(),
                stack_size: None,
                on_thread_start: None,
                on_thread_stop: None,
                panic_handler: None,
                drop_timeout: DEFAULT_DROP_TIMEOUT,
            },
        }
    }

    /// Threads started at build time and kept even when idle. If `max_threads` is not
    /// set, it follows.
    pub fn core_threads(mut self, threads: usize) -> Self {
        self.core_threads = Some(threads);
        self
    }

    /// The most threads the pool runs; those above `core_threads` exit after
    /// `keep_alive` idle.
    pub fn max_threads(mut self, threads: usize) -> Self {
        self.max_threads = Some(threads);
        self
    }

    /// How long a thread above `core_threads` may stay idle before it exits.
    pub fn keep_alive(mut self, keep_alive: Duration) -> Self {
        self.config.keep_alive = keep_alive;
        self
    }

    /// The most jobs waiting to start (not counting running ones).
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.config.queue_capacity = capacity;
        self
    }

    /// What to do with a job when the queue is full.
    pub fn reject_policy(mut self, policy: RejectPolicy) -> Self {
        self.config.reject_policy = policy;
        self
    }

    /// Whether to add threads before or after queueing.
    pub fn growth(mut self, growth: Growth) -> Self {
        self.config.growth = growth;
        self
    }

    /// Worker threads are named `<prefix>-<index>`.
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Self {
        self.config.thread_name = prefix.into();
        self
    }

    /// Stack size of worker threads, in bytes (the platform default otherwise).
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.config.stack_size = Some(bytes);
        self
    }

    /// Called on each worker thread when it starts, with its index. A panic in the hook
    /// is caught; the worker runs regardless.
    pub fn on_thread_start(mut self, hook: impl Fn(usize) + Send + Sync + 'static) -> Self {
        self.config.on_thread_start = Some(Arc::new(hook));
        self
    }

    /// Called on each worker thread just before it exits, with its index. A panic in the
    /// hook is caught.
    pub fn on_thread_stop(mut self, hook: impl Fn(usize) + Send + Sync + 'static) -> Self {
        self.config.on_thread_stop = Some(Arc::new(hook));
        self
    }

    /// Receives the payload of every panicking job that has no handle to report to
    /// ([`execute`](WorkerPool::execute)). Without one, the payload is dropped (the panic
    /// message was already printed by the panic hook). Either way the worker survives.
    pub fn panic_handler(
        mut self,
        handler: impl Fn(Box<dyn Any + Send>) + Send + Sync + 'static,
    ) -> Self {
        self.config.panic_handler = Some(Arc::new(handler));
        self
    }

    /// How long dropping the pool waits for queued and running jobs before it discards
    /// what is still queued and returns (running jobs finish on their own).
    pub fn drop_timeout(mut self, timeout: Duration) -> Self {
        self.config.drop_timeout = timeout;
        self
    }

    /// Checks the settings and starts the core threads.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming the setting (`max_threads` zero or below
    /// `core_threads`, `queue_capacity` zero or above [`MAX_QUEUE_CAPACITY`]), or
    /// [`ConfigError::Spawn`] if a thread could not be started.
    pub fn build(self) -> Result<WorkerPool, ConfigError> {
        let default_threads = || {
            std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(1)
        };
        let (core, max) = match (self.core_threads, self.max_threads) {
            (Some(core), Some(max)) => (core, max),
            (Some(core), None) => (core, core.max(1)),
            (None, Some(max)) => (default_threads().min(max), max),
            (None, None) => (default_threads(), default_threads()),
        };
        validate_threads(core, max)?;
        let capacity = self.config.queue_capacity;
        if capacity == 0 {
            return Err(ConfigError::Invalid {
                field: "queue_capacity",
                reason: "must be at least 1",
            });
        }
        if capacity > MAX_QUEUE_CAPACITY {
            return Err(ConfigError::Invalid {
                field: "queue_capacity",
                reason: "must be at most MAX_QUEUE_CAPACITY",
            });
        }
        WorkerPool::start(core, max, self.config)
    }
}

/// The thread-count rules shared by `build` and `resize`.
pub(crate) fn validate_threads(core: usize, max: usize) -> Result<(), ConfigError> {
    if max == 0 {
        return Err(ConfigError::Invalid {
            field: "max_threads",
            reason: "must be at least 1",
        });
    }
    if core > max {
        return Err(ConfigError::Invalid {
            field: "core_threads",
            reason: "must not exceed max_threads",
        });
    }
    Ok(())
}
