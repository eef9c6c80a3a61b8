//! The interface every single-key limiting algorithm offers.

use crate::decision::Decision;
use crate::error::InsufficientCapacity;

/// A rate limiter for one stream of requests, whatever its algorithm:
/// [`RateLimiter`](crate::RateLimiter) (GCRA: a rate with a burst) or
/// [`SlidingWindow`](crate::SlidingWindow) (at most `count` per window). Code that should
/// work with either (middleware, tests) takes `impl Limiter`.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use flowbed_ratelimit::{Limiter, Quota, RateLimiter, SlidingWindow};
///
/// fn admitted(limiter: &impl Limiter, attempts: u32) -> u32 {
///     (0..attempts).filter(|_| limiter.check().is_allowed()).count() as u32
/// }
///
/// let quota = Quota::per_minute(NonZeroU32::new(10).unwrap());
/// assert_eq!(admitted(&RateLimiter::new(quota), 50), 10);
/// assert_eq!(admitted(&SlidingWindow::new(quota), 50), 10);
/// ```
pub trait Limiter: Send + Sync {
    /// Admits one cell if the quota allows it now.
    fn check(&self) -> Decision;

    /// Admits `n` cells at once if the quota allows all of them now (all or nothing).
    /// `n = 0` is always allowed and spends nothing.
    ///
    /// # Errors
    ///
    /// [`InsufficientCapacity`] if `n` exceeds [`limit`](Self::limit): such a request can
    /// never be admitted.
    fn check_n(&self, n: u32) -> Result<Decision, InsufficientCapacity>;

    /// The most cells admitted at once.
    fn limit(&self) -> u32;
}
