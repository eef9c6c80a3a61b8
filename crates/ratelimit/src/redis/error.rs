//! Why a Redis-backed check could not be decided.

use std::time::Duration;

use crate::error::InsufficientCapacity;

/// Why [`RedisRateLimiter::try_check_n`](super::RedisRateLimiter::try_check_n) (or a
/// hybrid limiter's) returned no decision.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use flowbed_ratelimit::Quota;
/// use flowbed_ratelimit::redis::{RedisLimitError, RedisRateLimiter};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), redis::RedisError> {
/// let limiter = RedisRateLimiter::builder(Quota::per_second(NonZeroU32::new(10).unwrap()))
///     .build("redis://127.0.0.1:6379")?;
/// // Refused before any round trip: 11 cells can never fit a burst of 10.
/// let error = limiter.try_check_n("tenant-7", 11).await.unwrap_err();
/// assert!(matches!(error, RedisLimitError::InsufficientCapacity { requested: 11, burst: 10 }));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisLimitError {
    /// Redis could not be reached or answered with an error.
    #[error("redis rate limit check failed: {0}")]
    Redis(#[from] ::redis::RedisError),
    /// Redis did not answer within the limiter's timeout.
    #[error("redis rate limit check timed out after {after:?}")]
    Timeout {
        /// The limiter's timeout.
        after: Duration,
    },
    /// The cells asked for exceed the burst: the request can never be admitted (refused
    /// before any round trip).
    #[error("cannot admit {requested} cells at once: the burst is {burst}")]
    InsufficientCapacity {
        /// The cells asked for.
        requested: u32,
        /// The most cells the quota can ever admit at once.
        burst: u32,
    },
}

impl RedisLimitError {
    /// Whether Redis failed (unreachable, error, timeout), as opposed to a request that
    /// can never be admitted: the failures a [`FailurePolicy`](super::FailurePolicy)
    /// answers.
    pub const fn is_redis_failure(&self) -> bool {
        matches!(self, Self::Redis(_) | Self::Timeout { .. })
    }
}

impl From<InsufficientCapacity> for RedisLimitError {
    fn from(error: InsufficientCapacity) -> Self {
        Self::InsufficientCapacity {
            requested: error.requested,
            burst: error.burst,
        }
    }
}
