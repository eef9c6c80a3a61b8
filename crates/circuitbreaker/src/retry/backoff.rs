//! The delays between attempts: exponential backoff with a cap, then jitter drawn from a
//! small seedable random number generator.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::config::duration_nanos;

/// How much of the backoff a retry actually sleeps: the random part that keeps many
/// clients that failed together from retrying together.
///
/// With `b` the backoff after `n` failed attempts, `min(max_backoff, initial_backoff ×
/// multiplier^(n-1))`, the delay before the next attempt is:
///
/// | jitter | delay | mean |
/// |---|---|---|
/// | [`Full`](Jitter::Full) (default) | uniform in `[0, b]` | `b / 2` |
/// | [`Equal`](Jitter::Equal) | `b / 2` + uniform in `[0, b / 2]` | `3b / 4` |
/// | [`None`](Jitter::None) | `b` | `b` |
///
/// See the [module docs](super) for why full jitter is the default.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowbed_circuitbreaker::retry::{Jitter, Retry};
///
/// let retry = Retry::builder()
///     .max_attempts(4)
///     .initial_backoff(Duration::from_millis(100))
///     .jitter(Jitter::Equal)
///     .seed(7)
///     .build()?;
/// for (n, delay) in retry.delays().enumerate() {
///     let b = retry.backoff_after(n as u32 + 1);
///     assert!(delay >= b / 2 && delay <= b);
/// }
/// # Ok::<(), flowbed_circuitbreaker::retry::RetryConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Jitter {
    /// Sleep a uniformly random time in `[0, backoff]` (AWS's "full jitter").
    #[default]
    Full,
    /// Sleep half the backoff plus a uniformly random time in `[0, backoff / 2]`: never
    /// less than half the backoff.
    Equal,
    /// Sleep exactly the backoff: every client that failed together retries together.
    /// Useful in tests and for a single client.
    None,
}

/// The backoff settings of a policy, and the math on them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Backoff {
    pub(crate) initial: Duration,
    pub(crate) multiplier: f64,
    pub(crate) max: Duration,
    pub(crate) jitter: Jitter,
}

impl Backoff {
    /// `min(max, initial × multiplier^(failed-1))` in nanoseconds; zero when nothing failed.
    pub(crate) fn nominal_nanos(&self, failed: u32) -> u64 {
        if failed == 0 {
            return 0;
        }
        let max = duration_nanos(self.max);
        let exponent = i32::try_from(failed - 1).unwrap_or(i32::MAX);
        let grown = duration_nanos(self.initial) as f64 * self.multiplier.powi(exponent);
        // `grown` is finite or +inf (multiplier >= 1, validated); `as` saturates anyway.
        if grown >= max as f64 {
            max
        } else {
            grown as u64
        }
    }

    /// The delay after `failed` failed attempts: the nominal backoff with jitter applied.
    pub(crate) fn delay(&self, failed: u32, rng: &mut Rng) -> Duration {
        let b = self.nominal_nanos(failed);
        let nanos = match self.jitter {
            Jitter::None => b,
            Jitter::Full => rng.up_to(b),
            Jitter::Equal => b / 2 + rng.up_to(b - b / 2),
        };
        Duration::from_nanos(nanos)
    }
}

/// SplitMix64 (Steele, Lea and Flood, 2014): one 64-bit word of state, statistically
/// strong enough for jitter, and seedable so a test sees the same delays every run.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// A generator seeded differently for every call in the process and in every process:
    /// std's per-process random hash keys hash a process-wide counter.
    pub(crate) fn fresh() -> Self {
        static RUNS: AtomicU64 = AtomicU64::new(0);
        let run = RUNS.fetch_add(1, Ordering::Relaxed);
        Rng(RandomState::new().hash_one(run))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, max]` (both ends included), by scaling a 64-bit draw: the bias is
    /// below `max / 2^64`, far under a nanosecond for any real backoff.
    pub(crate) fn up_to(&mut self, max: u64) -> u64 {
        ((u128::from(self.next_u64()) * (u128::from(max) + 1)) >> 64) as u64
    }
}

/// The delays a [`Retry`](super::Retry) would sleep between its attempts, jitter included,
/// ignoring `max_elapsed`: one after each of the first `max_attempts - 1` attempts.
/// Made by [`Retry::delays`](super::Retry::delays); use it to log or plot a policy's
/// schedule, or to drive a retry loop of your own.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowbed_circuitbreaker::retry::{Jitter, Retry};
///
/// let retry = Retry::builder()
///     .max_attempts(6)
///     .initial_backoff(Duration::from_millis(100))
///     .multiplier(2.0)
///     .max_backoff(Duration::from_millis(500))
///     .jitter(Jitter::None)
///     .build()?;
/// let ms: Vec<u128> = retry.delays().map(|d| d.as_millis()).collect();
/// assert_eq!(ms, [100, 200, 400, 500, 500]);
/// # Ok::<(), flowbed_circuitbreaker::retry::RetryConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Delays {
    pub(crate) backoff: Backoff,
    pub(crate) rng: Rng,
    /// The failed attempt the next delay follows.
    pub(crate) failed: u32,
    /// The policy's `max_attempts`.
    pub(crate) max_attempts: u32,
}

impl Iterator for Delays {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.failed >= self.max_attempts {
            return None;
        }
        let delay = self.backoff.delay(self.failed, &mut self.rng);
        self.failed += 1;
        Some(delay)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.max_attempts.saturating_sub(self.failed) as usize;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Delays {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_to_covers_both_ends_and_stays_in_range() {
        let mut rng = Rng::new(1);
        let mut seen = [false; 4];
        for _ in 0..1000 {
            let x = rng.up_to(3);
            assert!(x <= 3);
            seen[x as usize] = true;
        }
        assert_eq!(seen, [true; 4]);
        assert_eq!(Rng::new(5).up_to(0), 0);
        // The full range does not overflow.
        let _ = Rng::new(9).up_to(u64::MAX);
    }

    #[test]
    fn nominal_saturates_at_the_cap() {
        let backoff = Backoff {
            initial: Duration::from_secs(1),
            multiplier: 10.0,
            max: Duration::MAX,
            jitter: Jitter::None,
        };
        assert_eq!(backoff.nominal_nanos(0), 0);
        assert_eq!(backoff.nominal_nanos(1), 1_000_000_000);
        assert_eq!(backoff.nominal_nanos(u32::MAX), u64::MAX);
    }

    #[test]
    fn fresh_generators_differ() {
        assert_ne!(Rng::fresh().next_u64(), Rng::fresh().next_u64());
    }
}
