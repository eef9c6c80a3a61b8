//! Settings of a [`RedisRateLimiter`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::limiter::RedisRateLimiter;
use super::policy::FailurePolicy;
use crate::clock::Clock;
use crate::quota::Quota;

/// The key prefix used unless [`RedisBuilder::key_prefix`] says otherwise.
pub const DEFAULT_KEY_PREFIX: &str = "flowbed:ratelimit:";

/// How long a check waits for Redis unless [`RedisBuilder::timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(100);

/// The longest pause between two reconnection attempts of a connection built from a URL.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// Settings of a [`RedisRateLimiter`], from [`RedisRateLimiter::builder`].
///
/// | setting | default |
/// |---|---|
/// | [`key_prefix`](Self::key_prefix) | [`DEFAULT_KEY_PREFIX`] |
/// | [`timeout`](Self::timeout) | [`DEFAULT_TIMEOUT`] (100 ms) per check |
/// | [`failure_policy`](Self::failure_policy) | [`FailurePolicy::FailClosed`] |
/// | [`clock`](Self::clock) | Redis server time (`TIME`) |
/// | [`expiry_margin`](Self::expiry_margin) | zero |
///
/// # Examples
///
/// ```no_run
/// use std::num::NonZeroU32;
/// use std::time::Duration;
/// use flowbed_ratelimit::Quota;
/// use flowbed_ratelimit::redis::{FailurePolicy, RedisRateLimiter};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), redis::RedisError> {
/// let limiter = RedisRateLimiter::builder(Quota::per_second(NonZeroU32::new(100).unwrap()))
///     .key_prefix("ingest:limit:")
///     .timeout(Duration::from_millis(20))
///     .failure_policy(FailurePolicy::FailOpen)
///     .connect("redis://127.0.0.1:6379") // connects and loads the script now
///     .await?;
/// assert!(limiter.check("source-42").await.is_allowed());
/// # Ok(())
/// # }
/// ```
#[must_use = "a builder does nothing until it is built"]
pub struct RedisBuilder {
    pub(crate) quota: Quota,
    pub(crate) key_prefix: String,
    pub(crate) timeout: Duration,
    pub(crate) policy: FailurePolicy,
    pub(crate) clock: Option<Arc<dyn Clock>>,
    pub(crate) expiry_margin: Duration,
}

impl RedisBuilder {
    pub(crate) fn new(quota: Quota) -> Self {
        Self {
            quota,
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            policy: FailurePolicy::default(),
            clock: None,
            expiry_margin: Duration::ZERO,
        }
    }

    /// Prepended to every key's text to name its Redis key: key `k` lives at
    /// `{prefix}{k}`. Give each limit its own prefix.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// How long a check waits for Redis (connecting included) before the failure policy
    /// answers. Connections built from a URL also use it as their connect and response
    /// timeout. It runs on tokio's timer: under `tokio::time::pause()` with auto-advance,
    /// it elapses as soon as the runtime idles waiting for Redis.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// What [`check`](RedisRateLimiter::check) answers when Redis cannot.
    pub fn failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Reads time from `clock` and sends it with each check, instead of the script
    /// reading the Redis server's clock.
    ///
    /// For tests: a [`ManualClock`](crate::ManualClock) shared with a local
    /// [`RateLimiter`](crate::RateLimiter) makes both take the same decisions. Every
    /// limiter using the same keys must then use the same clock: server time is the one
    /// clock all nodes share, which is why it is the default.
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Keeps keys this much longer than their state needs. A key expires in Redis once
    /// fully replenished, measured on the Redis server's clock; with an injected
    /// [`clock`](Self::clock) that runs slower than real time (a `ManualClock` in a test),
    /// a margin longer than the test keeps keys from expiring while the injected clock
    /// says they are still busy.
    pub fn expiry_margin(mut self, margin: Duration) -> Self {
        self.expiry_margin = margin;
        self
    }

    /// Builds the limiter on a new connection to `url` (`redis://host:port/db`), made
    /// lazily on the first check and re-made automatically after failures
    /// ([`ConnectionManager`]).
    ///
    /// # Errors
    ///
    /// The URL is invalid.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime: the connection manager spawns a task.
    pub fn build(self, url: &str) -> Result<RedisRateLimiter, ::redis::RedisError> {
        let client = ::redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_max_delay(MAX_RECONNECT_DELAY);
        let connection = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(self.build_with(connection))
    }

    /// Builds the limiter on `connection` (clones of a manager share one connection, so
    /// many limiters can use one).
    pub fn build_with(self, connection: ConnectionManager) -> RedisRateLimiter {
        RedisRateLimiter::from_builder(self, connection)
    }

    /// Builds the limiter on a new connection to `url`, connects, and loads the script,
    /// all within the [timeout](Self::timeout): fails at start-up rather than at the first
    /// check.
    ///
    /// # Errors
    ///
    /// The URL is invalid, or Redis could not be reached or did not answer in time.
    pub async fn connect(self, url: &str) -> Result<RedisRateLimiter, ::redis::RedisError> {
        let limiter = self.build(url)?;
        limiter.load_script().await?;
        Ok(limiter)
    }
}

impl fmt::Debug for RedisBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBuilder")
            .field("quota", &self.quota)
            .field("key_prefix", &self.key_prefix)
            .field("timeout", &self.timeout)
            .field("policy", &self.policy)
            .field("clock", &self.clock.as_ref().map(|_| "injected"))
            .field("expiry_margin", &self.expiry_margin)
            .finish()
    }
}
