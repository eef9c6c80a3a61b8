//! What a check decided, with the numbers a client needs to behave well.

use std::time::Duration;

/// The outcome of a check: allowed or not, plus how much is left, when the limiter is
/// fully replenished, and (when denied) when the same request would be allowed.
///
/// These map one to one onto the HTTP `RateLimit-Limit`, `RateLimit-Remaining`,
/// `RateLimit-Reset` and `Retry-After` headers. The numbers are computed lazily from the
/// limiter state captured at the decision, so a check that only looks at
/// [`is_allowed`](Self::is_allowed) pays for nothing else.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use std::time::Duration;
/// use flowbed_ratelimit::{ManualClock, Quota, RateLimiter};
///
/// let clock = ManualClock::new();
/// let limiter = RateLimiter::with_clock(Quota::per_second(NonZeroU32::new(2).unwrap()), clock.clone());
/// let first = limiter.check();
/// assert!(first.is_allowed());
/// assert_eq!(first.remaining(), 1);
/// assert!(limiter.check().is_allowed());
/// let third = limiter.check();
/// assert!(!third.is_allowed());
/// assert_eq!(third.retry_after(), Duration::from_millis(500)); // one cell every 500 ms
/// assert_eq!(third.reset_after(), Duration::from_secs(1)); // both cells back after 1 s
/// assert_eq!(third.limit(), 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a rate limit decision does nothing unless it is looked at"]
pub struct Decision {
    allowed: bool,
    limit: u32,
    /// `remaining() = headroom / unit`: GCRA keeps time, the sliding window counts cells.
    headroom: u64,
    unit: u64,
    reset_after_nanos: u64,
    retry_after_nanos: u64,
}

impl Decision {
    pub(crate) const fn new(
        allowed: bool,
        limit: u32,
        headroom: u64,
        unit: u64,
        reset_after_nanos: u64,
        retry_after_nanos: u64,
    ) -> Self {
        Self {
            allowed,
            limit,
            headroom,
            unit,
            reset_after_nanos,
            retry_after_nanos,
        }
    }

    /// Whether the cells were admitted (and spent).
    #[inline]
    pub const fn is_allowed(&self) -> bool {
        self.allowed
    }

    /// The most cells the limiter admits at once (the burst, or a window's count).
    pub const fn limit(&self) -> u32 {
        self.limit
    }

    /// Cells that could still be admitted right now, after this decision.
    pub fn remaining(&self) -> u32 {
        let cells = self.headroom / self.unit.max(1);
        cells.min(u64::from(self.limit)) as u32
    }

    /// Time until the limiter is fully replenished (all of [`limit`](Self::limit) free
    /// again) if nothing else is admitted meanwhile.
    pub const fn reset_after(&self) -> Duration {
        Duration::from_nanos(self.reset_after_nanos)
    }

    /// When denied: the time after which the same request would be admitted if nothing
    /// else is admitted meanwhile. Zero when allowed.
    pub const fn retry_after(&self) -> Duration {
        Duration::from_nanos(self.retry_after_nanos)
    }
}
