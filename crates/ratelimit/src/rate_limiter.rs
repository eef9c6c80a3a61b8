//! `RateLimiter`: one GCRA state shared by every caller.

use std::fmt;

use crate::clock::Clock;
use crate::decision::Decision;
use crate::error::InsufficientCapacity;
use crate::gcra::GcraCell;
#[cfg(feature = "tokio")]
use crate::gcra::Reserved;
use crate::limiter::Limiter;
use crate::monotonic::MonotonicClock;
use crate::quota::Quota;

/// A lock-free GCRA rate limiter: `check()` is one clock read and one compare-and-swap.
///
/// Share it by reference or in an `Arc`; every method takes `&self`. Weighted checks
/// ([`check_n`](Self::check_n)) are exact: they admit all `n` cells or none, and never
/// more than the quota allows. Async callers wait with
/// [`until_ready`](Self::until_ready) (fair: first come, first served); blocking callers
/// with [`until_ready_blocking`](Self::until_ready_blocking).
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use flowbed_ratelimit::{Quota, RateLimiter};
///
/// let limiter = RateLimiter::new(Quota::per_second(NonZeroU32::new(100).unwrap()));
/// let decision = limiter.check();
/// if decision.is_allowed() {
///     // handle the request
/// } else {
///     println!("busy, retry in {:?}", decision.retry_after());
/// }
/// assert_eq!(decision.remaining(), 99);
/// ```
pub struct RateLimiter<C: Clock = MonotonicClock> {
    state: GcraCell,
    quota: Quota,
    clock: C,
}

impl RateLimiter<MonotonicClock> {
    /// A limiter for `quota` on the default clock, starting with the full burst free.
    pub fn new(quota: Quota) -> Self {
        Self::with_clock(quota, MonotonicClock::new())
    }
}

impl<C: Clock> RateLimiter<C> {
    /// A limiter for `quota` reading time from `clock` (a [`ManualClock`](crate::ManualClock)
    /// in tests, a [`TokioClock`](crate::TokioClock) under paused tokio time).
    pub fn with_clock(quota: Quota, clock: C) -> Self {
        Self {
            state: GcraCell::new(false),
            quota,
            clock,
        }
    }

    /// Admits one cell if the quota allows it now.
    #[inline]
    pub fn check(&self) -> Decision {
        self.state.check(self.clock.now(), 1, &self.quota)
    }

    /// Admits `n` cells at once if the quota allows all of them now; `n = 0` spends
    /// nothing and is allowed.
    ///
    /// # Errors
    ///
    /// [`InsufficientCapacity`] if `n` exceeds the burst: it could never be admitted.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use flowbed_ratelimit::{Quota, RateLimiter};
    ///
    /// let limiter = RateLimiter::new(Quota::per_second(NonZeroU32::new(10).unwrap()));
    /// assert!(limiter.check_n(7)?.is_allowed());
    /// assert!(!limiter.check_n(4)?.is_allowed()); // only 3 left: nothing is spent
    /// assert!(limiter.check_n(3)?.is_allowed());
    /// assert!(limiter.check_n(11).is_err()); // more than the burst: never
    /// # Ok::<(), flowbed_ratelimit::InsufficientCapacity>(())
    /// ```
    #[inline]
    pub fn check_n(&self, n: u32) -> Result<Decision, InsufficientCapacity> {
        self.quota.fits(n)?;
        Ok(self.state.check(self.clock.now(), n, &self.quota))
    }

    /// The quota this limiter enforces.
    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// The clock this limiter reads.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// Waits (without blocking a thread) until one cell is admitted.
    ///
    /// Waiters are served in the order they called: each reserves its place on the
    /// limiter's timeline at once and sleeps on its own timer until then, so every waiter
    /// is woken exactly once and nobody can overtake it. Dropping the future before it
    /// completes gives the reserved cell back (if nobody queued behind it meanwhile;
    /// otherwise its slot passes unused, so the limit is never exceeded).
    ///
    /// Under `tokio::time::pause()`, give the limiter a [`TokioClock`](crate::TokioClock)
    /// so that it sees the paused time too.
    #[cfg(feature = "tokio")]
    pub async fn until_ready(&self) {
        // The burst is at least 1, so one cell always fits.
        let _ = self.until_n_ready(1).await;
    }

    /// Waits until `n` cells are admitted at once, fairly (see
    /// [`until_ready`](Self::until_ready)).
    ///
    /// # Errors
    ///
    /// [`InsufficientCapacity`] at once if `n` exceeds the burst (it would wait forever).
    #[cfg(feature = "tokio")]
    pub async fn until_n_ready(&self, n: u32) -> Result<(), InsufficientCapacity> {
        crate::wait::Reservation::make(self, n)?.wait().await;
        Ok(())
    }

    /// Blocks the calling thread until `n` cells are admitted at once (first come, first
    /// served, like [`until_n_ready`](Self::until_n_ready)).
    ///
    /// # Errors
    ///
    /// [`InsufficientCapacity`] at once if `n` exceeds the burst.
    pub fn until_n_ready_blocking(&self, n: u32) -> Result<(), InsufficientCapacity> {
        self.quota.fits(n)?;
        let now = self.clock.now();
        let ready_at = self.state.reserve(now, n, &self.quota).ready_at;
        if ready_at > now {
            std::thread::sleep(std::time::Duration::from_nanos(ready_at - now));
        }
        Ok(())
    }

    /// Blocks the calling thread until one cell is admitted.
    pub fn until_ready_blocking(&self) {
        let _ = self.until_n_ready_blocking(1);
    }
}

impl<C: Clock> Limiter for RateLimiter<C> {
    #[inline]
    fn check(&self) -> Decision {
        RateLimiter::check(self)
    }

    #[inline]
    fn check_n(&self, n: u32) -> Result<Decision, InsufficientCapacity> {
        RateLimiter::check_n(self, n)
    }

    fn limit(&self) -> u32 {
        self.quota.burst()
    }
}

#[cfg(feature = "tokio")]
impl<C: Clock> crate::wait::Slot for &RateLimiter<C> {
    type Error = InsufficientCapacity;

    fn now(&self) -> u64 {
        self.clock.now()
    }

    fn reserve(&self, now: u64, cells: u32) -> Result<Reserved, InsufficientCapacity> {
        self.quota.fits(cells)?;
        Ok(self.state.reserve(now, cells, &self.quota))
    }

    fn release(&self, now: u64, reserved: &Reserved) {
        self.state.release(now, reserved);
    }
}

impl<C: Clock> fmt::Debug for RateLimiter<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("quota", &self.quota)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}
