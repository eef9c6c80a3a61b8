//! What an `on_retry` hook is told before each retry.

use std::any::Any;
use std::time::Duration;

use crate::Rejected;

/// A retry about to happen, as an [`on_retry`](super::RetryBuilder::on_retry) hook sees
/// it: which attempt failed, with what error, and how long the retry sleeps first.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowbed_circuitbreaker::ManualClock;
/// use flowbed_circuitbreaker::retry::{Jitter, Retry};
///
/// let retry = Retry::builder()
///     .max_attempts(2)
///     .initial_backoff(Duration::from_millis(10))
///     .jitter(Jitter::None)
///     .on_retry(|event| {
///         assert_eq!(event.attempt(), 1);
///         assert_eq!(event.delay(), Duration::from_millis(10));
///         assert_eq!(event.error::<&str>(), Some(&"busy"));
///         assert!(event.rejected().is_none());
///     })
///     .build()?;
/// let clock = ManualClock::new();
/// let _ = retry.run_with(&clock, |d| clock.advance(d), || Err::<(), _>("busy"));
/// # Ok::<(), flowbed_circuitbreaker::retry::RetryConfigError>(())
/// ```
#[derive(Debug)]
pub struct RetryEvent<'a> {
    pub(crate) attempt: u32,
    pub(crate) delay: Duration,
    pub(crate) elapsed: Duration,
    pub(crate) error: &'a dyn Any,
}

impl RetryEvent<'_> {
    /// The attempt that failed, counting from 1; the next one is `attempt() + 1`.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// How long the retry sleeps before the next attempt (jitter included).
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// The time from the start of the first attempt to the end of the failed one.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// The failed attempt's error, if it is an `E`. Through a breaker
    /// ([`Retry::call`](super::Retry::call)) this is the operation's own error, or
    /// [`Rejected`] when the breaker refused the call.
    pub fn error<E: Any>(&self) -> Option<&E> {
        self.error.downcast_ref()
    }

    /// The breaker's refusal, when the failed attempt was refused by a breaker in
    /// [`Retry::call`](super::Retry::call) or [`Retry::call_async`](super::Retry::call_async)
    /// (with [`retry_rejected`](super::RetryBuilder::retry_rejected) on).
    pub fn rejected(&self) -> Option<&Rejected> {
        self.error()
    }
}
