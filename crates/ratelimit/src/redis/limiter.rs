//! `RedisRateLimiter`: the GCRA on Redis, one round trip per check.

use std::fmt::{self, Display, Write as _};
use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::ConnectionManager;

use super::builder::RedisBuilder;
use super::decision::{DecisionSource, RedisDecision};
use super::error::RedisLimitError;
use super::policy::FailurePolicy;
use super::script;
use super::stats::RedisStats;
use crate::clock::Clock;
use crate::decision::Decision;
use crate::error::InsufficientCapacity;
use crate::quota::Quota;
use crate::sync::{AtomicU64, Ordering};

/// A rate limiter per key whose state lives in Redis, so that every node of a cluster
/// enforces one quota per key together.
///
/// - **The same GCRA** as [`KeyedRateLimiter`](crate::KeyedRateLimiter): one number per
///   key, its theoretical arrival time (TAT), and the same arithmetic in nanoseconds, run
///   as one Lua script (`EVALSHA`; the source is sent once per server). Given the same
///   [clock](RedisBuilder::clock), it takes exactly the decisions of a local
///   [`RateLimiter`](crate::RateLimiter), with the same numbers.
/// - **One round trip per check**, atomic on the server, so concurrent checks from any
///   number of nodes never admit more than the quota.
/// - **Server time** by default: the script reads Redis's clock (`TIME`), so nodes need
///   no synchronised clocks. Time is exact to the microsecond Redis reports, and the
///   arithmetic is exact in nanoseconds (the script splits numbers into seconds and
///   nanoseconds, because Lua's doubles are exact only to 2^53).
/// - **Idle keys vanish**: each key is stored with an expiry of the time until it is
///   fully replenished (rounded up to a millisecond), after which forgetting it loses
///   nothing. A check that spends nothing on an idle key deletes it.
/// - **Failures are explicit**: [`check`](Self::check) answers with the
///   [`FailurePolicy`] (fail closed by default) when Redis is unreachable, fails, or does
///   not answer within the [timeout](RedisBuilder::timeout), and says so in the
///   [`RedisDecision`]; [`try_check`](Self::try_check) returns a [`RedisLimitError`]
///   instead. A check that timed out may still have been applied by Redis.
///
/// Keys are anything [`Display`]: key `k` lives at the Redis key `{prefix}{k}`.
///
/// # Examples
///
/// ```no_run
/// use std::num::NonZeroU32;
/// use flowbed_ratelimit::Quota;
/// use flowbed_ratelimit::redis::RedisRateLimiter;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), redis::RedisError> {
/// // Each tenant may send 1000 requests per second across all nodes, 100 at once.
/// let quota = Quota::per_second(NonZeroU32::new(1_000).unwrap())
///     .allow_burst(NonZeroU32::new(100).unwrap());
/// let limiter = RedisRateLimiter::builder(quota).connect("redis://127.0.0.1:6379").await?;
///
/// let answer = limiter.check("tenant-7").await;
/// if answer.is_allowed() {
///     // handle the request
/// } else {
///     println!("retry in {:?}", answer.decision().retry_after());
/// }
/// # Ok(())
/// # }
/// ```
pub struct RedisRateLimiter {
    connection: ConnectionManager,
    quota: Quota,
    key_prefix: String,
    timeout: Duration,
    policy: FailurePolicy,
    clock: Option<Arc<dyn Clock>>,
    margin_ms: u64,
    round_trips: AtomicU64,
    errors: AtomicU64,
    timeouts: AtomicU64,
}

impl RedisRateLimiter {
    /// A builder for a limiter with `quota` per key.
    pub fn builder(quota: Quota) -> RedisBuilder {
        RedisBuilder::new(quota)
    }

    pub(crate) fn from_builder(builder: RedisBuilder, connection: ConnectionManager) -> Self {
        let margin_ms = builder.expiry_margin.as_nanos().div_ceil(1_000_000);
        Self {
            connection,
            quota: builder.quota,
            key_prefix: builder.key_prefix,
            timeout: builder.timeout,
            policy: builder.policy,
            clock: builder.clock,
            margin_ms: u64::try_from(margin_ms).unwrap_or(u64::MAX),
            round_trips: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
        }
    }

    /// Admits one cell for `key` if the quota allows it now, asking Redis; applies the
    /// [`FailurePolicy`] if Redis cannot answer in time.
    pub async fn check<K: Display + ?Sized>(&self, key: &K) -> RedisDecision {
        self.decide(key, 1).await
    }

    /// Admits `n` cells for `key` at once if the quota allows all of them now (all or
    /// nothing; `n = 0` spends nothing); applies the [`FailurePolicy`] if Redis cannot
    /// answer in time.
    ///
    /// # Errors
    ///
    /// [`InsufficientCapacity`] if `n` exceeds the burst, without a round trip.
    pub async fn check_n<K: Display + ?Sized>(
        &self,
        key: &K,
        n: u32,
    ) -> Result<RedisDecision, InsufficientCapacity> {
        self.quota.fits(n)?;
        Ok(self.decide(key, n).await)
    }

    /// Admits one cell for `key` if the quota allows it now; a Redis failure is returned,
    /// not answered by the policy.
    ///
    /// # Errors
    ///
    /// [`RedisLimitError::Redis`] or [`RedisLimitError::Timeout`] if Redis could not
    /// decide in time.
    pub async fn try_check<K: Display + ?Sized>(
        &self,
        key: &K,
    ) -> Result<Decision, RedisLimitError> {
        self.round_trip(key, 1).await
    }

    /// Admits `n` cells for `key` at once if the quota allows all of them now; a Redis
    /// failure is returned, not answered by the policy.
    ///
    /// # Errors
    ///
    /// [`RedisLimitError::InsufficientCapacity`] if `n` exceeds the burst (without a round
    /// trip); [`RedisLimitError::Redis`] or [`RedisLimitError::Timeout`] if Redis could
    /// not decide in time.
    pub async fn try_check_n<K: Display + ?Sized>(
        &self,
        key: &K,
        n: u32,
    ) -> Result<Decision, RedisLimitError> {
        self.quota.fits(n)?;
        self.round_trip(key, n).await
    }

    /// Forgets `key`'s state (its full burst is free again); returns whether it had any.
    ///
    /// # Errors
    ///
    /// [`RedisLimitError::Redis`] or [`RedisLimitError::Timeout`] if Redis could not
    /// answer in time.
    pub async fn reset_key<K: Display + ?Sized>(&self, key: &K) -> Result<bool, RedisLimitError> {
        let mut connection = self.connection.clone();
        let command = ::redis::cmd("DEL").arg(self.redis_key(key)).clone();
        let deleted: u64 = self
            .bounded(async move { command.query_async(&mut connection).await })
            .await?;
        Ok(deleted > 0)
    }

    /// The Redis key holding `key`'s state: `{prefix}{key}`.
    pub fn redis_key<K: Display + ?Sized>(&self, key: &K) -> String {
        let mut name = String::with_capacity(self.key_prefix.len() + 16);
        name.push_str(&self.key_prefix);
        let _ = write!(name, "{key}");
        name
    }

    /// The quota enforced per key.
    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// The prefix of every key's Redis key.
    pub fn key_prefix(&self) -> &str {
        &self.key_prefix
    }

    /// How long a check waits for Redis.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// What [`check`](Self::check) answers when Redis cannot.
    pub fn failure_policy(&self) -> FailurePolicy {
        self.policy
    }

    /// The connection checks use (clone it to send other commands on it).
    pub fn connection(&self) -> &ConnectionManager {
        &self.connection
    }

    /// The counters since the limiter was built.
    pub fn stats(&self) -> RedisStats {
        RedisStats {
            round_trips: self.round_trips.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            timeouts: self.timeouts.load(Ordering::Relaxed),
            local_denials: 0,
        }
    }

    /// Loads the script into Redis's script cache (checks do it on their own when
    /// needed; [`RedisBuilder::connect`] does it to check the connection at start-up).
    pub(crate) async fn load_script(&self) -> Result<(), ::redis::RedisError> {
        let mut connection = self.connection.clone();
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, script::GCRA.load_async(&mut connection)).await {
            Ok(loaded) => loaded.map(drop),
            Err(_elapsed) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("redis did not answer within {timeout:?}"),
            )
            .into()),
        }
    }

    /// One check through Redis, the policy answering failures.
    pub(crate) async fn decide<K: Display + ?Sized>(&self, key: &K, n: u32) -> RedisDecision {
        match self.round_trip(key, n).await {
            Ok(decision) => RedisDecision::new(decision, DecisionSource::Redis),
            Err(_) => self.policy_decision(n),
        }
    }

    /// The answer of the failure policy to a check of `n` cells.
    pub(crate) fn policy_decision(&self, n: u32) -> RedisDecision {
        let interval = self.quota.interval_nanos();
        match self.policy {
            FailurePolicy::FailOpen => RedisDecision::new(
                Decision::new(true, self.quota.burst(), 0, interval, 0, 0),
                DecisionSource::FailOpen,
            ),
            FailurePolicy::FailClosed => RedisDecision::new(
                Decision::new(
                    false,
                    self.quota.burst(),
                    0,
                    interval,
                    0,
                    interval.saturating_mul(u64::from(n.max(1))),
                ),
                DecisionSource::FailClosed,
            ),
        }
    }

    /// Refuses `n` cells that could never fit the burst.
    /// One script call for `n` cells of `key`, which fit the burst.
    pub(crate) async fn round_trip<K: Display + ?Sized>(
        &self,
        key: &K,
        n: u32,
    ) -> Result<Decision, RedisLimitError> {
        let now = self.clock.as_ref().map(|clock| clock.now());
        let invocation =
            script::invocation(&self.redis_key(key), n, &self.quota, now, self.margin_ms);
        let mut connection = self.connection.clone();
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let reply: script::Reply = self
            .bounded(async move { invocation.invoke_async(&mut connection).await })
            .await?;
        Ok(script::decision(reply, &self.quota))
    }

    /// Runs a Redis request within the timeout, counting failures.
    async fn bounded<T>(
        &self,
        request: impl Future<Output = Result<T, ::redis::RedisError>>,
    ) -> Result<T, RedisLimitError> {
        match tokio::time::timeout(self.timeout, request).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) if error.is_timeout() => {
                self.timeouts.fetch_add(1, Ordering::Relaxed);
                Err(RedisLimitError::Timeout {
                    after: self.timeout,
                })
            }
            Ok(Err(error)) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                Err(RedisLimitError::Redis(error))
            }
            Err(_elapsed) => {
                self.timeouts.fetch_add(1, Ordering::Relaxed);
                Err(RedisLimitError::Timeout {
                    after: self.timeout,
                })
            }
        }
    }
}

impl fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("quota", &self.quota)
            .field("key_prefix", &self.key_prefix)
            .field("timeout", &self.timeout)
            .field("policy", &self.policy)
            .field("clock", &self.clock.as_ref().map(|_| "injected"))
            .field("expiry_margin_ms", &self.margin_ms)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}
