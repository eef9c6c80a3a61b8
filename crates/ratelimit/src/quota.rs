//! How much traffic a limiter admits: a count per period and a burst.

use std::num::NonZeroU32;
use std::time::Duration;

use crate::error::{InsufficientCapacity, QuotaError};

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// The longest period a quota may have: 2^62 ns, about 146 years, so that every sum of
/// clock readings and periods fits the 63 bits a limiter's state keeps.
pub const MAX_PERIOD: Duration = Duration::from_nanos(1 << 62);

/// How much a limiter admits: `count` cells per `period`, at most `burst` at once.
///
/// A *cell* is one unit of work: a request, an event, a byte, whatever the caller weighs.
/// For the GCRA limiters ([`RateLimiter`](crate::RateLimiter),
/// [`KeyedRateLimiter`](crate::KeyedRateLimiter)) the quota means: one cell is replenished
/// every `period / count` (rounded up to whole nanoseconds, so the rate is never exceeded),
/// and up to `burst` cells (default: `count`) can be spent at once after a quiet time.
/// For the [`SlidingWindow`](crate::SlidingWindow) it means: at most `count` cells in any
/// window of `period`, estimated from the current and previous fixed windows.
///
/// Invalid quotas cannot be built: the constructors take [`NonZeroU32`], and
/// [`Quota::new`] checks run-time numbers and says what is wrong.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use std::time::Duration;
/// use flowbed_ratelimit::Quota;
///
/// // 100 per second, in bursts of up to 20:
/// let quota = Quota::per_second(NonZeroU32::new(100).unwrap())
///     .allow_burst(NonZeroU32::new(20).unwrap());
/// assert_eq!(quota.replenish_interval(), Duration::from_millis(10));
/// assert_eq!(quota.burst(), 20);
///
/// // From configuration, with a typed error for bad numbers:
/// let quota = Quota::new(3, Duration::from_secs(1))?;
/// assert_eq!(quota.replenish_interval(), Duration::from_nanos(333_333_334)); // rounded up
/// # Ok::<(), flowbed_ratelimit::QuotaError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    count: u32,
    burst: u32,
    period_nanos: u64,
    interval_nanos: u64,
}

impl Quota {
    /// `count` cells per second, burst `count`.
    pub const fn per_second(count: NonZeroU32) -> Self {
        Self::from_parts(count.get(), NANOS_PER_SEC)
    }

    /// `count` cells per minute, burst `count`.
    pub const fn per_minute(count: NonZeroU32) -> Self {
        Self::from_parts(count.get(), 60 * NANOS_PER_SEC)
    }

    /// `count` cells per hour, burst `count`.
    pub const fn per_hour(count: NonZeroU32) -> Self {
        Self::from_parts(count.get(), 3_600 * NANOS_PER_SEC)
    }

    /// One cell per `period`, burst 1; `None` if `period` is zero or longer than
    /// [`MAX_PERIOD`].
    pub fn with_period(period: Duration) -> Option<Self> {
        Self::new(1, period).ok()
    }

    /// `count` cells per `period`, burst `count`, from run-time numbers.
    ///
    /// # Errors
    ///
    /// [`QuotaError::ZeroCount`], [`QuotaError::ZeroPeriod`], or
    /// [`QuotaError::PeriodTooLong`] when `period` exceeds [`MAX_PERIOD`].
    pub fn new(count: u32, period: Duration) -> Result<Self, QuotaError> {
        if count == 0 {
            return Err(QuotaError::ZeroCount);
        }
        if period.is_zero() {
            return Err(QuotaError::ZeroPeriod);
        }
        if period > MAX_PERIOD {
            return Err(QuotaError::PeriodTooLong {
                max_secs: MAX_PERIOD.as_secs(),
            });
        }
        // Fits: MAX_PERIOD is 2^62 ns.
        Ok(Self::from_parts(count, period.as_nanos() as u64))
    }

    /// The same rate with a different burst: how many cells can be spent at once after a
    /// quiet time. Only the GCRA limiters use it; a sliding window admits `count` per
    /// window.
    #[must_use]
    pub const fn allow_burst(self, burst: NonZeroU32) -> Self {
        Self {
            burst: burst.get(),
            ..self
        }
    }

    /// [`allow_burst`](Self::allow_burst) for run-time numbers.
    ///
    /// # Errors
    ///
    /// [`QuotaError::ZeroBurst`] if `burst` is zero.
    pub fn try_allow_burst(self, burst: u32) -> Result<Self, QuotaError> {
        NonZeroU32::new(burst)
            .map(|burst| self.allow_burst(burst))
            .ok_or(QuotaError::ZeroBurst)
    }

    /// Cells admitted per period.
    pub const fn count(&self) -> u32 {
        self.count
    }

    /// The period `count` refers to.
    pub const fn period(&self) -> Duration {
        Duration::from_nanos(self.period_nanos)
    }

    /// The most cells admitted at once.
    pub const fn burst(&self) -> u32 {
        self.burst
    }

    /// How often one cell is replenished: `period / count`, rounded up to a whole
    /// nanosecond.
    pub const fn replenish_interval(&self) -> Duration {
        Duration::from_nanos(self.interval_nanos)
    }

    /// Whether `n` cells can ever be admitted at once (`n <= burst`); a GCRA check of
    /// more could never succeed and is refused before it touches any state.
    pub(crate) fn fits(&self, n: u32) -> Result<(), InsufficientCapacity> {
        if n > self.burst {
            return Err(InsufficientCapacity {
                requested: n,
                burst: self.burst,
            });
        }
        Ok(())
    }

    pub(crate) const fn period_nanos(&self) -> u64 {
        self.period_nanos
    }

    pub(crate) const fn interval_nanos(&self) -> u64 {
        self.interval_nanos
    }

    /// GCRA's tolerance: how far ahead of now the theoretical arrival time may run.
    pub(crate) const fn tolerance_nanos(&self) -> u64 {
        self.interval_nanos.saturating_mul(self.burst as u64)
    }

    /// Rebuilds a quota from the words [`QuotaCell`](crate::quota_cell) stores.
    pub(crate) const fn from_words(
        count_burst: u64,
        period_nanos: u64,
        interval_nanos: u64,
    ) -> Self {
        Self {
            count: (count_burst >> 32) as u32,
            burst: count_burst as u32,
            period_nanos,
            interval_nanos,
        }
    }

    const fn from_parts(count: u32, period_nanos: u64) -> Self {
        Self {
            count,
            burst: count,
            period_nanos,
            interval_nanos: period_nanos.div_ceil(count as u64),
        }
    }
}
