//! Re-subscribing after a failure: [`Flow::retry`], [`Flow::retry_if`], [`RetryPolicy`].

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::source::{Emit, Source, Step};
use crate::sources::interval::Alarm;
use crate::sources::iter::yield_now;
use crate::{Error, Flow};

/// How often and how patiently [`Flow::retry`] re-subscribes: a number of retries and an
/// exponential backoff with a cap and optional jitter.
///
/// Retry `n` (1-based) waits `initial · multiplier^(n-1)`, at most `max_backoff`, then
/// spread by ± `jitter` (a fraction of the delay), still at most `max_backoff`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowbed_reactive::ops::retry::RetryPolicy;
///
/// let policy = RetryPolicy::exponential(Duration::from_millis(100))
///     .max_retries(5)
///     .max_backoff(Duration::from_millis(300));
/// let delays: Vec<_> = (1..=4).map(|retry| policy.delay(retry)).collect();
/// assert_eq!(delays, [100, 200, 300, 300].map(Duration::from_millis));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    max_retries: u32,
    initial: Duration,
    max_backoff: Duration,
    multiplier: f64,
    jitter: f64,
    reset_after_item: bool,
}

impl Default for RetryPolicy {
    /// 3 retries after 100 ms, 200 ms, 400 ms (no jitter), at most 10 s apart.
    fn default() -> Self {
        Self::exponential(Duration::from_millis(100))
    }
}

impl RetryPolicy {
    /// Exponential backoff starting at `initial` and doubling: 3 retries, at most 10 s
    /// apart (or `initial`, if larger), no jitter. Tune it with the other methods.
    pub fn exponential(initial: Duration) -> Self {
        Self {
            max_retries: 3,
            initial,
            max_backoff: initial.max(Duration::from_secs(10)),
            multiplier: 2.0,
            jitter: 0.0,
            reset_after_item: false,
        }
    }

    /// The same `delay` before every retry: 3 retries, no jitter.
    pub fn fixed(delay: Duration) -> Self {
        Self::exponential(delay).multiplier(1.0)
    }

    /// Re-subscribe at once (the task still yields to the executor in between): 3
    /// retries. For sources whose failures are not load-related.
    pub fn immediate() -> Self {
        Self::fixed(Duration::ZERO)
    }

    /// How many times to re-subscribe after the first failure before giving up with the
    /// last error (`0`: never; `u32::MAX`: practically forever).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The longest wait between two attempts, jitter included.
    pub fn max_backoff(mut self, cap: Duration) -> Self {
        self.max_backoff = cap;
        self
    }

    /// The factor between consecutive delays (2.0 by default; 1.0 for a fixed delay).
    ///
    /// # Panics
    ///
    /// If `factor` is below 1.0 or not finite.
    pub fn multiplier(mut self, factor: f64) -> Self {
        assert!(
            factor.is_finite() && factor >= 1.0,
            "RetryPolicy::multiplier: the factor must be finite and at least 1.0, got {factor}"
        );
        self.multiplier = factor;
        self
    }

    /// Spreads each delay uniformly over `delay · (1 ± fraction)` so that many clients
    /// failing together do not retry in lockstep (0.0, the default: exact delays; 0.5 is
    /// Reactor's default). Clamped to `0.0..=1.0`.
    ///
    /// # Panics
    ///
    /// If `fraction` is NaN.
    pub fn jitter(mut self, fraction: f64) -> Self {
        assert!(
            !fraction.is_nan(),
            "RetryPolicy::jitter: the fraction is NaN"
        );
        self.jitter = fraction.clamp(0.0, 1.0);
        self
    }

    /// With `true`, an attempt that delivered at least one item before failing starts the
    /// count (and the backoff) afresh: for long-lived subscriptions, where a failure
    /// after hours of items is a new incident, not one more retry of the last one
    /// (Reactor's `transientErrors(true)`). Off by default.
    pub fn reset_after_item(mut self, reset: bool) -> Self {
        self.reset_after_item = reset;
        self
    }

    /// The delay before retry `retry` (1-based), before jitter.
    pub fn delay(&self, retry: u32) -> Duration {
        let exponent = f64::from(retry.saturating_sub(1));
        let seconds = self.initial.as_secs_f64() * self.multiplier.powf(exponent);
        Duration::try_from_secs_f64(seconds)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }

    /// The delay before retry `retry`, with jitter.
    fn jittered_delay(&self, retry: u32) -> Duration {
        let delay = self.delay(retry);
        if self.jitter == 0.0 || delay.is_zero() {
            return delay;
        }
        // A uniform draw in [0, 1): a randomly keyed hash, no random-number dependency.
        let draw = (RandomState::new().hash_one(retry) >> 11) as f64 / (1u64 << 53) as f64;
        let factor = 1.0 + self.jitter * (2.0 * draw - 1.0);
        Duration::try_from_secs_f64(delay.as_secs_f64() * factor)
            .unwrap_or(delay)
            .min(self.max_backoff)
    }

    /// Whether [`Flow::retry`] retries `error`: failures of the source and time-outs
    /// ([`Error::Upstream`], [`Error::Timeout`], [`Error::Overflow`]) are worth another
    /// attempt; bugs and set-up errors ([`Error::Panicked`], [`Error::Protocol`],
    /// [`Error::NoRuntime`], the `group_by` limits) would only fail again. A panic in a
    /// fused operator's closure never reaches `retry` anyway: it unwinds to the consumer.
    pub fn is_retryable(error: &Error) -> bool {
        matches!(
            error,
            Error::Upstream(_) | Error::Timeout { .. } | Error::Overflow { .. }
        )
    }
}

/// The source of [`Flow::retry`] and [`Flow::retry_if`].
pub struct Retry<S, F, P> {
    make: F,
    should_retry: P,
    policy: RetryPolicy,
    /// The running attempt; `None` before the first poll and during a backoff.
    current: Option<S>,
    /// Retries spent (since the last item, with `reset_after_item`).
    retries: u32,
    /// A backoff delay is running.
    waiting: bool,
    alarm: Alarm,
}

impl<S, F, P> Source for Retry<S, F, P>
where
    S: Source,
    F: FnMut() -> Flow<S>,
    P: FnMut(&Error) -> bool,
{
    type Item = S::Item;

    fn poll_emit<E: Emit<S::Item>>(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut E,
    ) -> Poll<Result<Step, Error>> {
        loop {
            if self.waiting {
                if !self.alarm.poll_fired(cx) {
                    return Poll::Pending;
                }
                self.waiting = false;
            }
            let make = &mut self.make;
            let source = self.current.get_or_insert_with(|| make().into_source());
            let mut delivered = false;
            let step = source.poll_emit(cx, &mut |item| {
                delivered = true;
                emit.emit(item)
            });
            if delivered && self.policy.reset_after_item {
                self.retries = 0;
            }
            let error = match step {
                Poll::Ready(Err(error)) => error,
                Poll::Ready(Ok(Step::Ended)) => {
                    self.current = None;
                    return Poll::Ready(Ok(Step::Ended));
                }
                other => return other,
            };
            // Drop the failed attempt now: it may hold connections.
            self.current = None;
            if self.retries >= self.policy.max_retries || !(self.should_retry)(&error) {
                return Poll::Ready(Err(error));
            }
            self.retries += 1;
            let delay = self.policy.jittered_delay(self.retries);
            if delay.is_zero() {
                // Re-subscribe at the next poll, after letting other tasks run.
                return yield_now(cx);
            }
            self.alarm.arm_after(delay)?;
            self.waiting = true;
        }
    }
}

impl<S: std::fmt::Debug, F, P> std::fmt::Debug for Retry<S, F, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retry")
            .field("policy", &self.policy)
            .field("current", &self.current)
            .field("retries", &self.retries)
            .field("waiting", &self.waiting)
            .finish_non_exhaustive()
    }
}

impl<S, F> Flow<Retry<S, F, fn(&Error) -> bool>>
where
    S: Source,
    F: FnMut() -> Flow<S>,
{
    /// A flow that subscribes to `make()` and, when it fails with a retryable error
    /// ([`RetryPolicy::is_retryable`]: not a panic or a set-up error), drops it and
    /// subscribes to a new `make()` after the policy's backoff, up to
    /// [`max_retries`](RetryPolicy::max_retries) times; then it fails with the last error.
    /// A flow is one-shot, hence the factory.
    ///
    /// Items already emitted stay emitted, and `retry` itself never repeats one; but a
    /// new subscription to a *cold* source starts it from the beginning, so its items
    /// come again (like Reactor's and RxJava's `retry`). Make the factory resume where
    /// the last attempt stopped (an offset it captures) when that matters. The first
    /// `make()` runs at the first poll. Backoff delays need a tokio runtime with time
    /// enabled (zero delays do not).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowbed_reactive::{Error, Flow};
    /// use flowbed_reactive::ops::retry::RetryPolicy;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let mut attempts = 0;
    /// let items = Flow::retry(
    ///     || {
    ///         attempts += 1;
    ///         let fail = attempts < 3;
    ///         Flow::from_try_stream(futures::stream::iter([
    ///             Ok(attempts),
    ///             if fail { Err(std::io::Error::other("flaky")) } else { Ok(0) },
    ///         ]))
    ///     },
    ///     RetryPolicy::exponential(Duration::from_millis(100)),
    /// )
    /// .collect::<Vec<_>>()
    /// .await;
    /// assert_eq!(items.unwrap(), [1, 2, 3, 0]);
    /// # }
    /// ```
    pub fn retry(make: F, policy: RetryPolicy) -> Self {
        Self::retry_if(make, policy, RetryPolicy::is_retryable)
    }
}

impl<S, F, P> Flow<Retry<S, F, P>>
where
    S: Source,
    F: FnMut() -> Flow<S>,
    P: FnMut(&Error) -> bool,
{
    /// [`Flow::retry`] that retries only the errors for which `should_retry` returns
    /// `true` (any error, a panic included, if it says so); any other error ends the
    /// flow at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_reactive::{Error, Flow};
    /// use flowbed_reactive::ops::retry::RetryPolicy;
    ///
    /// # futures::executor::block_on(async {
    /// let mut attempts = 0;
    /// let outcome = Flow::retry_if(
    ///     || {
    ///         attempts += 1;
    ///         Flow::<flowbed_reactive::sources::iter::Failed<u8>>::failed(Error::Timeout {
    ///             after: std::time::Duration::from_secs(1),
    ///         })
    ///     },
    ///     RetryPolicy::immediate(),
    ///     |error| !matches!(error, Error::Timeout { .. }),
    /// )
    /// .collect::<Vec<_>>()
    /// .await;
    /// assert!(matches!(outcome, Err(Error::Timeout { .. })));
    /// assert_eq!(attempts, 1);
    /// # });
    /// ```
    pub fn retry_if(make: F, policy: RetryPolicy, should_retry: P) -> Self {
        Flow::from_source(Retry {
            make,
            should_retry,
            policy,
            current: None,
            retries: 0,
            waiting: false,
            alarm: Alarm::default(),
        })
    }
}
