//! Where limiters get the time: a trait, a manual clock for tests and, with the `tokio`
//! feature, tokio's (pausable) clock. The default, [`MonotonicClock`](crate::MonotonicClock),
//! has its own file.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A source of monotonic time for limiters: nanoseconds since an origin of the clock's
/// choosing, never smaller than an earlier reading on the same thread.
///
/// Limiters only compare readings of their own clock, so the origin does not matter.
/// Implement it to drive limiters from your own time source; tests use [`ManualClock`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowbed_ratelimit::{Clock, ManualClock};
///
/// let clock = ManualClock::new();
/// let before = clock.now();
/// clock.advance(Duration::from_millis(5));
/// assert_eq!(clock.now() - before, 5_000_000);
/// ```
pub trait Clock: Send + Sync {
    /// Nanoseconds since this clock's origin.
    fn now(&self) -> u64;
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    #[inline]
    fn now(&self) -> u64 {
        (**self).now()
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    #[inline]
    fn now(&self) -> u64 {
        (**self).now()
    }
}

/// A clock that moves only when told to. Clones share the same time, so a test keeps one
/// clone and gives another to the limiter.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use std::time::Duration;
/// use flowbed_ratelimit::{ManualClock, Quota, RateLimiter};
///
/// let clock = ManualClock::new();
/// let limiter = RateLimiter::with_clock(Quota::per_second(NonZeroU32::new(1).unwrap()), clock.clone());
/// assert!(limiter.check().is_allowed());
/// assert!(!limiter.check().is_allowed());
/// clock.advance(Duration::from_secs(1));
/// assert!(limiter.check().is_allowed());
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock at time zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward by `by` (saturating at the end of time).
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        // `fetch_update` with a saturating add: the clock never wraps around.
        let _ = self
            .nanos
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                Some(now.saturating_add(by))
            });
    }

    /// Moves the clock to `to` after its origin, if that is later than now (a monotonic
    /// clock never goes back; an earlier `to` is ignored).
    pub fn advance_to(&self, to: Duration) {
        let to = u64::try_from(to.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_max(to, Ordering::AcqRel);
    }
}

impl Clock for ManualClock {
    #[inline]
    fn now(&self) -> u64 {
        self.nanos.load(Ordering::Acquire)
    }
}

/// tokio's clock (`tokio::time::Instant`), which stands still under
/// `tokio::time::pause()` and jumps with `advance()` and auto-advance. Give it to a
/// limiter whose async waits are tested with paused time, so the limiter and its timers
/// agree on what time it is.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use flowbed_ratelimit::{Quota, RateLimiter, TokioClock};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let limiter = RateLimiter::with_clock(Quota::per_second(NonZeroU32::new(10).unwrap()), TokioClock::new());
/// let start = tokio::time::Instant::now();
/// for _ in 0..30 {
///     limiter.until_ready().await;
/// }
/// // 10 at once (the burst), then one every 100 ms: paused time makes this instant.
/// assert_eq!(start.elapsed().as_millis(), 2_000);
/// # }
/// ```
#[cfg(feature = "tokio")]
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    origin: tokio::time::Instant,
}

#[cfg(feature = "tokio")]
impl TokioClock {
    /// A clock whose origin is tokio's `Instant::now()`.
    pub fn new() -> Self {
        Self {
            origin: tokio::time::Instant::now(),
        }
    }
}

#[cfg(feature = "tokio")]
impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "tokio")]
impl Clock for TokioClock {
    #[inline]
    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}
