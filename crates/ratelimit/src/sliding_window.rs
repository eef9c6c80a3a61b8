//! `SlidingWindow`: at most `count` cells per window, estimated from two fixed windows.

use std::fmt;

use crate::clock::Clock;
use crate::decision::Decision;
use crate::error::InsufficientCapacity;
use crate::limiter::Limiter;
use crate::monotonic::MonotonicClock;
use crate::quota::Quota;
use crate::sync::{Mutex, lock};

/// A sliding-window-counter limiter: "at most `count` per `period`", the semantics most
/// API quotas are written in.
///
/// Time is cut into fixed windows of `period`. The limiter counts cells admitted in the
/// current window and remembers the previous window's count; the load over the sliding
/// window that ends now is estimated as `previous × (unexpired part of the previous
/// window) + current`, and a request is admitted if it fits under `count`. Unlike a fixed
/// window it does not admit `2 × count` across a window boundary; unlike a log of
/// timestamps it needs three numbers. The burst of the [`Quota`] is ignored: a window
/// admits up to `count` at once.
///
/// All arithmetic is exact integer arithmetic on nanoseconds. The three numbers sit
/// behind a mutex (a check holds it for a few nanoseconds); use
/// [`RateLimiter`](crate::RateLimiter) where lock-freedom matters.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use std::time::Duration;
/// use flowbed_ratelimit::{ManualClock, Quota, SlidingWindow};
///
/// let clock = ManualClock::new();
/// let limiter = SlidingWindow::with_clock(Quota::per_second(NonZeroU32::new(4).unwrap()), clock.clone());
/// assert!(limiter.check_n(4)?.is_allowed()); // the whole window at once
/// assert!(!limiter.check().is_allowed());
/// clock.advance(Duration::from_millis(1_500)); // half of the previous window still counts
/// let decision = limiter.check_n(2)?;
/// assert!(decision.is_allowed());
/// assert_eq!(decision.remaining(), 0); // 4 × 0.5 + 2 = 4
/// # Ok::<(), flowbed_ratelimit::InsufficientCapacity>(())
/// ```
pub struct SlidingWindow<C: Clock = MonotonicClock> {
    windows: Mutex<Windows>,
    quota: Quota,
    clock: C,
}

/// Cells admitted in the current fixed window and in the one before.
#[derive(Debug, Clone, Copy, Default)]
struct Windows {
    /// Index of the current window (`now / period`).
    index: u64,
    previous: u64,
    current: u64,
}

impl SlidingWindow<MonotonicClock> {
    /// A limiter admitting `quota.count()` cells per `quota.period()` on the default clock.
    pub fn new(quota: Quota) -> Self {
        Self::with_clock(quota, MonotonicClock::new())
    }
}

impl<C: Clock> SlidingWindow<C> {
    /// A limiter reading time from `clock`.
    pub fn with_clock(quota: Quota, clock: C) -> Self {
        Self {
            windows: Mutex::new(Windows::default()),
            quota,
            clock,
        }
    }

    /// Admits one cell if it fits in the sliding window now.
    pub fn check(&self) -> Decision {
        self.decide(1)
    }

    /// Admits `n` cells at once if all fit in the sliding window now; `n = 0` is allowed
    /// and spends nothing.
    ///
    /// # Errors
    ///
    /// [`InsufficientCapacity`] if `n` exceeds the window's count.
    pub fn check_n(&self, n: u32) -> Result<Decision, InsufficientCapacity> {
        if n > self.quota.count() {
            return Err(InsufficientCapacity {
                requested: n,
                burst: self.quota.count(),
            });
        }
        Ok(self.decide(n))
    }

    /// The quota this limiter enforces (count per period).
    pub fn quota(&self) -> Quota {
        self.quota
    }

    fn decide(&self, n: u32) -> Decision {
        let mut now = self.clock.now();
        let mut windows = lock(&self.windows);
        let period = self.quota.period_nanos();
        if now / period < windows.index {
            // Read before another thread's check moved to a later window: decide at the
            // start of the current window, never roll back (that would wipe its count).
            now = windows.index * period;
        }
        windows.roll_to(now / period);
        let (decision, admitted) = evaluate(&windows, now, u64::from(n), &self.quota);
        if admitted {
            windows.current += u64::from(n);
        }
        decision
    }
}

impl Windows {
    fn roll_to(&mut self, index: u64) {
        if index == self.index {
            return;
        }
        self.previous = if index == self.index + 1 {
            self.current
        } else {
            0
        };
        self.current = 0;
        self.index = index;
    }
}

/// Decides `n` cells at `now` against rolled-forward `windows`; returns the decision and
/// whether the cells are admitted. `n <= count`.
fn evaluate(windows: &Windows, now: u64, n: u64, quota: &Quota) -> (Decision, bool) {
    let period = u128::from(quota.period_nanos());
    let count = u128::from(quota.count());
    let elapsed = u128::from(now % quota.period_nanos());
    let unexpired = period - elapsed;
    let previous = u128::from(windows.previous);
    let current = u128::from(windows.current);
    let n = u128::from(n);
    // Load in cell·nanoseconds: previous × unexpired + current × period.
    let load = previous * unexpired + current * period;
    let capacity = count * period;
    let allowed = load + n * period <= capacity;
    let (current_after, load_after) = if allowed {
        (current + n, load + n * period)
    } else {
        (current, load)
    };
    let remaining = capacity.saturating_sub(load_after) / period;
    // Fully reset when nothing counted remains in the sliding window.
    let reset_after = if current_after > 0 {
        unexpired + period
    } else if previous > 0 {
        unexpired
    } else {
        0
    };
    let retry_after = if allowed {
        0
    } else {
        retry_after(previous, current, n, count, period, unexpired)
    };
    let decision = Decision::new(
        allowed,
        quota.count(),
        remaining as u64,
        1,
        clamp(reset_after),
        clamp(retry_after),
    );
    (decision, allowed)
}

/// The earliest wait after which `n` more cells fit, if nothing else is admitted.
fn retry_after(
    previous: u128,
    current: u128,
    n: u128,
    count: u128,
    period: u128,
    unexpired: u128,
) -> u128 {
    // Later in this window, once enough of the previous window has expired:
    // previous × (unexpired - wait) + (current + n) × period <= count × period.
    if current + n <= count && previous > 0 {
        let room = (count - current - n) * period / previous; // unexpired part allowed
        if room > 0 {
            return unexpired.saturating_sub(room);
        }
    }
    // In the next window, where the current count becomes the previous one:
    // current × (period - into_next) + n × period <= count × period.
    let into_next = ((count - n) * period)
        .checked_div(current)
        .map_or(0, |room| period.saturating_sub(room));
    unexpired + into_next
}

fn clamp(nanos: u128) -> u64 {
    u64::try_from(nanos).unwrap_or(u64::MAX)
}

impl<C: Clock> Limiter for SlidingWindow<C> {
    fn check(&self) -> Decision {
        SlidingWindow::check(self)
    }

    fn check_n(&self, n: u32) -> Result<Decision, InsufficientCapacity> {
        SlidingWindow::check_n(self, n)
    }

    fn limit(&self) -> u32 {
        self.quota.count()
    }
}

impl<C: Clock> fmt::Debug for SlidingWindow<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlidingWindow")
            .field("quota", &self.quota)
            .field("windows", &*lock(&self.windows))
            .finish_non_exhaustive()
    }
}
