//! [`Builder`]: every setting of a pool, checked when the pool is built.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use flowbed_ratelimit::{Clock, MonotonicClock};

use crate::error::BuildError;
use crate::leak::LeakReport;
use crate::{Manager, Pool};

/// Which idle connection a caller gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum IdleOrder {
    /// The most recently returned (the default): a few hot connections serve a light load
    /// and the rest idle out under `idle_timeout`.
    #[default]
    Lifo,
    /// The least recently returned: every connection is used in turn (keeps them all warm,
    /// spreads load over database-side resources).
    Fifo,
}

pub(crate) type LeakCallback = Arc<dyn Fn(&LeakReport) + Send + Sync>;

/// The settings a built pool runs with.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) max_size: usize,
    pub(crate) min_idle: usize,
    pub(crate) wait_timeout: Option<Duration>,
    pub(crate) create_timeout: Duration,
    pub(crate) recycle_timeout: Duration,
    pub(crate) max_lifetime: Option<Duration>,
    pub(crate) max_lifetime_jitter: Option<Duration>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) validate_after: Duration,
    pub(crate) idle_order: IdleOrder,
    pub(crate) fail_fast: bool,
    pub(crate) create_backoff: (Duration, Duration),
    pub(crate) leak_threshold: Option<Duration>,
    pub(crate) on_leak: Option<LeakCallback>,
    pub(crate) maintenance_interval: Option<Duration>,
}

impl Config {
    /// The lifetime and its jitter, if connections retire.
    pub(crate) fn lifetime(&self) -> Option<(Duration, Duration)> {
        self.max_lifetime
            .map(|lifetime| (lifetime, self.max_lifetime_jitter.unwrap_or(lifetime / 40)))
    }

    /// How often the background maintenance runs: often enough for the shortest of the
    /// expiry settings, at most every 30 s.
    pub(crate) fn maintenance_interval(&self) -> Duration {
        if let Some(interval) = self.maintenance_interval {
            return interval;
        }
        let mut interval = Duration::from_secs(30);
        for quarter in [
            self.idle_timeout,
            self.max_lifetime_jitter.or(self.max_lifetime),
        ]
        .into_iter()
        .flatten()
        .map(|d| d / 4)
        .chain(self.leak_threshold.map(|d| d / 2))
        {
            interval = interval.min(quarter);
        }
        interval.max(Duration::from_millis(10))
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("max_size", &self.max_size)
            .field("min_idle", &self.min_idle)
            .field("wait_timeout", &self.wait_timeout)
            .field("create_timeout", &self.create_timeout)
            .field("recycle_timeout", &self.recycle_timeout)
            .field("max_lifetime", &self.max_lifetime)
            .field("idle_timeout", &self.idle_timeout)
            .field("validate_after", &self.validate_after)
            .field("idle_order", &self.idle_order)
            .field("fail_fast", &self.fail_fast)
            .field("leak_threshold", &self.leak_threshold)
            .finish_non_exhaustive()
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_size: 10,
            min_idle: 0,
            wait_timeout: Some(Duration::from_secs(30)),
            create_timeout: Duration::from_secs(10),
            recycle_timeout: Duration::from_secs(5),
            max_lifetime: Some(Duration::from_secs(30 * 60)),
            max_lifetime_jitter: None,
            idle_timeout: Some(Duration::from_secs(10 * 60)),
            validate_after: Duration::from_millis(500),
            idle_order: IdleOrder::Lifo,
            fail_fast: false,
            create_backoff: (Duration::from_millis(50), Duration::from_secs(5)),
            leak_threshold: None,
            on_leak: None,
            maintenance_interval: None,
        }
    }
}

/// Builds a [`Pool`]. Defaults follow HikariCP: 10 connections, 30 s wait timeout,
/// 30 min max lifetime (minus up to 2.5 % jitter), 10 min idle timeout, validation skipped
/// for connections used in the last 500 ms.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowbed_pool::{IdleOrder, Manager, Pool};
/// # struct M;
/// # impl Manager for M { type Connection = (); type Error = std::convert::Infallible;
/// #     async fn create(&self) -> Result<(), Self::Error> { Ok(()) } }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pool = Pool::builder(M)
///     .max_size(16)
///     .min_idle(4) // opened at once, kept idle in the background
///     .wait_timeout(Duration::from_secs(2))
///     .max_lifetime(Some(Duration::from_secs(1800)))
///     .idle_timeout(Some(Duration::from_secs(300)))
///     .idle_order(IdleOrder::Fifo)
///     .build()
///     .unwrap();
/// assert_eq!(pool.stats().max_size, 16);
/// # }
/// ```
pub struct Builder<M: Manager> {
    manager: M,
    config: Config,
    clock: Option<Arc<dyn Clock>>,
    runtime: Option<tokio::runtime::Handle>,
}

impl<M: Manager> fmt::Debug for Builder<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<M: Manager> Builder<M> {
    pub(crate) fn new(manager: M) -> Self {
        Self {
            manager,
            config: Config::default(),
            clock: None,
            runtime: None,
        }
    }

    /// Most connections open at once (default 10).
    pub fn max_size(mut self, max_size: usize) -> Self {
        self.config.max_size = max_size;
        self
    }

    /// Idle connections kept ready (default 0): opened when the pool is built and
    /// replenished in the background as they are used or closed, never above `max_size`.
    pub fn min_idle(mut self, min_idle: usize) -> Self {
        self.config.min_idle = min_idle;
        self
    }

    /// How long [`Pool::get`] waits for a connection before [`PoolError::Timeout`](crate::PoolError::Timeout)
    /// (default 30 s).
    pub fn wait_timeout(mut self, timeout: Duration) -> Self {
        self.config.wait_timeout = Some(timeout);
        self
    }

    /// Lets [`Pool::get`] wait without a limit. Explicit on purpose: a pool whose database
    /// went away then hangs its callers.
    pub fn wait_forever(mut self) -> Self {
        self.config.wait_timeout = None;
        self
    }

    /// Bound on one attempt to open a connection (default 10 s). Keep it below the wait
    /// timeout so a hanging connect shows up in `Timeout`'s `last_create_error`.
    pub fn create_timeout(mut self, timeout: Duration) -> Self {
        self.config.create_timeout = timeout;
        self
    }

    /// Bound on [`Manager::recycle`] (default 5 s); a check that takes longer closes the
    /// connection.
    pub fn recycle_timeout(mut self, timeout: Duration) -> Self {
        self.config.recycle_timeout = timeout;
        self
    }

    /// Connections older than this are closed when idle or returned (default 30 min;
    /// `None`: never). Each connection retires up to [`max_lifetime_jitter`](Self::max_lifetime_jitter)
    /// early so they are not all replaced at once.
    pub fn max_lifetime(mut self, lifetime: Option<Duration>) -> Self {
        self.config.max_lifetime = lifetime;
        self
    }

    /// The most a connection's lifetime is shortened by its random jitter (default 2.5 %
    /// of `max_lifetime`; must be below it).
    pub fn max_lifetime_jitter(mut self, jitter: Duration) -> Self {
        self.config.max_lifetime_jitter = Some(jitter);
        self
    }

    /// Idle connections unused this long are closed, down to `min_idle` (default 10 min;
    /// `None`: never).
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.idle_timeout = timeout;
        self
    }

    /// Connections used within this window are handed out without
    /// [`Manager::recycle`] (default 500 ms; zero checks every checkout).
    pub fn validate_after(mut self, window: Duration) -> Self {
        self.config.validate_after = window;
        self
    }

    /// Which idle connection callers get (default [`IdleOrder::Lifo`]).
    pub fn idle_order(mut self, order: IdleOrder) -> Self {
        self.config.idle_order = order;
        self
    }

    /// Report failures to the caller instead of retrying them (default off): a failed
    /// create goes to the oldest waiter as [`PoolError::Create`](crate::PoolError::Create),
    /// a failed check as [`PoolError::Recycle`](crate::PoolError::Recycle).
    pub fn fail_fast(mut self, fail_fast: bool) -> Self {
        self.config.fail_fast = fail_fast;
        self
    }

    /// Backoff between retries of a failed create: starts at `initial`, doubles up to
    /// `max` (default 50 ms to 5 s). Retries continue only while connections are wanted.
    pub fn create_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.config.create_backoff = (initial, max);
        self
    }

    /// Reports connections held longer than `threshold` to `on_leak`, with the call site
    /// that took them (default off; off costs nothing per checkout).
    pub fn leak_detection(
        mut self,
        threshold: Duration,
        on_leak: impl Fn(&LeakReport) + Send + Sync + 'static,
    ) -> Self {
        self.config.leak_threshold = Some(threshold);
        self.config.on_leak = Some(Arc::new(on_leak));
        self
    }

    /// How often the background maintenance (expiry, min-idle, leak checks) runs
    /// (default: a quarter of the shortest expiry setting, at most 30 s).
    pub fn maintenance_interval(mut self, interval: Duration) -> Self {
        self.config.maintenance_interval = Some(interval);
        self
    }

    /// The clock for lifetimes, idle times and validation windows (default
    /// [`MonotonicClock`]; tests use [`ManualClock`](flowbed_ratelimit::ManualClock)).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// The tokio runtime that opens connections and runs maintenance (default: the one
    /// `build` is called in).
    pub fn runtime(mut self, runtime: tokio::runtime::Handle) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// Checks the settings and starts the pool (and the opening of `min_idle` connections).
    ///
    /// # Errors
    ///
    /// [`BuildError`] names the setting that is out of range, or says there is no runtime.
    pub fn build(self) -> Result<Pool<M>, BuildError> {
        let config = &self.config;
        if config.max_size == 0 {
            return Err(BuildError::ZeroMaxSize);
        }
        if config.min_idle > config.max_size {
            return Err(BuildError::MinIdleAboveMaxSize {
                min_idle: config.min_idle,
                max_size: config.max_size,
            });
        }
        let durations = [
            ("wait_timeout", config.wait_timeout),
            ("create_timeout", Some(config.create_timeout)),
            ("recycle_timeout", Some(config.recycle_timeout)),
            ("max_lifetime", config.max_lifetime),
            ("idle_timeout", config.idle_timeout),
            ("leak_detection threshold", config.leak_threshold),
            ("maintenance_interval", config.maintenance_interval),
            ("create_backoff", Some(config.create_backoff.0)),
        ];
        for (field, duration) in durations {
            if duration == Some(Duration::ZERO) {
                return Err(BuildError::ZeroDuration { field });
            }
        }
        if let (Some(lifetime), Some(jitter)) = (config.max_lifetime, config.max_lifetime_jitter) {
            if jitter >= lifetime {
                return Err(BuildError::JitterNotBelowLifetime { jitter, lifetime });
            }
        }
        let runtime = match self.runtime {
            Some(runtime) => runtime,
            None => tokio::runtime::Handle::try_current().map_err(|_| BuildError::NoRuntime)?,
        };
        let clock = self
            .clock
            .unwrap_or_else(|| Arc::new(MonotonicClock::new()));
        Ok(Pool::start(self.manager, self.config, clock, runtime))
    }
}
