//! Counters of a Redis-backed limiter.

/// A snapshot of a Redis-backed limiter's counters, since it was built.
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
/// let limiter = RedisRateLimiter::builder(Quota::per_second(NonZeroU32::new(10).unwrap()))
///     .build("redis://127.0.0.1:6379")?;
/// let _ = limiter.check("tenant-7").await;
/// let stats = limiter.stats();
/// assert_eq!(stats.round_trips, 1);
/// println!("{} errors, {} timeouts", stats.errors, stats.timeouts);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RedisStats {
    /// Checks sent to Redis (one script call each, whatever their outcome).
    pub round_trips: u64,
    /// Checks that failed with a Redis error (unreachable, refused, bad reply).
    pub errors: u64,
    /// Checks that Redis did not answer within the timeout.
    pub timeouts: u64,
    /// Checks a [`HybridRateLimiter`](super::HybridRateLimiter) refused locally, without a
    /// round trip (always zero for a [`RedisRateLimiter`](super::RedisRateLimiter)).
    pub local_denials: u64,
}
