//! Errors: one type per operation, each saying exactly what was wrong.

/// A [`Quota`](crate::Quota) that cannot be built from the numbers given.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowbed_ratelimit::{Quota, QuotaError};
///
/// assert_eq!(Quota::new(0, Duration::from_secs(1)), Err(QuotaError::ZeroCount));
/// assert_eq!(Quota::new(10, Duration::ZERO), Err(QuotaError::ZeroPeriod));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QuotaError {
    /// The quota admits no cells at all.
    #[error("a quota must admit at least one cell per period")]
    ZeroCount,
    /// The period is zero.
    #[error("a quota period must be longer than zero")]
    ZeroPeriod,
    /// The burst is zero.
    #[error("a quota burst must be at least one cell")]
    ZeroBurst,
    /// The period does not fit the limiter's clock (about 292 years of nanoseconds).
    #[error("a quota period must be shorter than {max_secs} seconds")]
    PeriodTooLong {
        /// The longest period accepted, in seconds.
        max_secs: u64,
    },
}

/// A weighted check asked for more cells than the quota's burst: it could never succeed,
/// so it is refused at once instead of waiting forever.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use flowbed_ratelimit::{InsufficientCapacity, Quota, RateLimiter};
///
/// let limiter = RateLimiter::new(Quota::per_second(NonZeroU32::new(10).unwrap()));
/// let error = limiter.check_n(11).unwrap_err();
/// assert_eq!((error.requested, error.burst), (11, 10));
/// assert_eq!(error.to_string(), "cannot admit 11 cells at once: the burst is 10");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot admit {requested} cells at once: the burst is {burst}")]
#[non_exhaustive]
pub struct InsufficientCapacity {
    /// The cells asked for.
    pub requested: u32,
    /// The most cells the quota can ever admit at once.
    pub burst: u32,
}

/// Why a [`KeyedRateLimiter`](crate::KeyedRateLimiter) check could not be decided by the
/// quota alone.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use flowbed_ratelimit::{KeyedCheckError, KeyedRateLimiter, Quota};
///
/// let limiter = KeyedRateLimiter::<&str>::builder(Quota::per_second(NonZeroU32::new(5).unwrap()))
///     .max_keys(1)
///     .build();
/// assert!(limiter.check(&"a").unwrap().is_allowed());
/// // The one tracked key is busy, so a new key cannot be tracked (fail closed):
/// assert_eq!(limiter.check(&"b").unwrap_err(), KeyedCheckError::TooManyKeys { max_keys: 1 });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyedCheckError {
    /// The cells asked for exceed the key's burst (see [`InsufficientCapacity`]).
    #[error("cannot admit {requested} cells at once: the burst is {burst}")]
    InsufficientCapacity {
        /// The cells asked for.
        requested: u32,
        /// The most cells the key's quota can ever admit at once.
        burst: u32,
    },
    /// The key is new, the limiter already tracks `max_keys` keys and none of them is idle,
    /// and the limiter is set to refuse new keys rather than forget a busy one.
    #[error("too many keys are rate limited at once (at most {max_keys})")]
    TooManyKeys {
        /// The configured cap on tracked keys.
        max_keys: usize,
    },
}

impl From<InsufficientCapacity> for KeyedCheckError {
    fn from(error: InsufficientCapacity) -> Self {
        Self::InsufficientCapacity {
            requested: error.requested,
            burst: error.burst,
        }
    }
}

/// A [`ConcurrencyLimit`](crate::ConcurrencyLimit) permit that could not be had.
#[cfg(feature = "tokio")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AcquireError {
    /// Every permit is in use (`try_acquire`) or stayed in use for the whole timeout.
    #[error("all permits are in use")]
    NoPermits,
    /// The limit was closed.
    #[error("the concurrency limit is closed")]
    Closed,
}
