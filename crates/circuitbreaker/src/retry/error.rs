//! The retry module's errors: a policy that cannot be built, and a retry that gave up.

use std::fmt;
use std::time::Duration;

/// A [`Retry`](super::Retry) policy that cannot be built: the setting named in the variant
/// is out of range or contradicts another one.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowbed_circuitbreaker::retry::{Retry, RetryConfigError};
///
/// let err = Retry::builder().max_attempts(0).build().unwrap_err();
/// assert_eq!(err, RetryConfigError::MaxAttempts);
/// assert_eq!(err.to_string(), "max_attempts must be at least 1 (the first call counts)");
///
/// let err = Retry::builder()
///     .initial_backoff(Duration::from_secs(2))
///     .max_backoff(Duration::from_secs(1))
///     .build()
///     .unwrap_err();
/// assert!(err.to_string().starts_with("max_backoff"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RetryConfigError {
    /// `max_attempts` must be at least 1: it counts the first call too.
    #[error("max_attempts must be at least 1 (the first call counts)")]
    MaxAttempts,
    /// `multiplier` must be a finite number of at least 1.
    #[error("multiplier must be a finite number of at least 1, got {value}")]
    Multiplier {
        /// The value given.
        value: f64,
    },
    /// `max_backoff` must not be shorter than `initial_backoff`.
    #[error("max_backoff {max:?} must not be shorter than initial_backoff {initial:?}")]
    MaxBackoff {
        /// The `initial_backoff` given.
        initial: Duration,
        /// The `max_backoff` given.
        max: Duration,
    },
    /// `max_elapsed` must be longer than zero (leave it unset for no time budget, or use
    /// `max_attempts(1)` never to retry).
    #[error("max_elapsed must be longer than zero")]
    MaxElapsed,
}

/// Why a retry gave up and returned its last error.
///
/// # Examples
///
/// ```
/// use flowbed_circuitbreaker::retry::{Retry, StopReason};
///
/// let retry = Retry::builder().max_attempts(2).build()?;
/// let err = retry.run_with(&flowbed_circuitbreaker::ManualClock::new(), |_| {}, || Err::<(), _>("down")).unwrap_err();
/// assert_eq!(err.reason(), StopReason::MaxAttempts);
/// # Ok::<(), flowbed_circuitbreaker::retry::RetryConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StopReason {
    /// `max_attempts` attempts were made.
    MaxAttempts,
    /// The next attempt would have started after the `max_elapsed` budget.
    MaxElapsed,
    /// The error is not worth retrying: a `retry_if` predicate said no, or a circuit
    /// breaker refused the call (see [`RetryBuilder::retry_rejected`](super::RetryBuilder::retry_rejected)).
    NotRetryable,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StopReason::MaxAttempts => "max_attempts reached",
            StopReason::MaxElapsed => "max_elapsed reached",
            StopReason::NotRetryable => "not retryable",
        })
    }
}

/// A retry that gave up: how many attempts were made, why it stopped, and the last
/// attempt's error.
///
/// Its `Display` includes the last error (`gave up after 3 attempts (max_attempts
/// reached): connection refused`), so `?` into `Box<dyn Error>` or `anyhow::Error` reads
/// well; [`into_last`](Self::into_last) hands the error itself back for your own error
/// type (`.map_err(RetryError::into_last)?`).
///
/// # Examples
///
/// ```
/// use flowbed_circuitbreaker::ManualClock;
/// use flowbed_circuitbreaker::retry::{Retry, RetryError, StopReason};
///
/// fn fetch(retry: &Retry) -> Result<String, RetryError<std::io::Error>> {
///     let clock = ManualClock::new();
///     let text = retry.run_with(&clock, |d| clock.advance(d), || {
///         std::fs::read_to_string("/definitely/not/here")
///     })?;
///     Ok(text)
/// }
///
/// let err = fetch(&Retry::builder().max_attempts(3).build()?).unwrap_err();
/// assert_eq!(err.attempts(), 3);
/// assert_eq!(err.reason(), StopReason::MaxAttempts);
/// assert_eq!(err.last().kind(), std::io::ErrorKind::NotFound);
/// assert!(err.to_string().starts_with("gave up after 3 attempts (max_attempts reached): "));
/// # Ok::<(), flowbed_circuitbreaker::retry::RetryConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryError<E> {
    pub(crate) attempts: u32,
    pub(crate) reason: StopReason,
    pub(crate) last: E,
}

impl<E> RetryError<E> {
    /// How many attempts were made (the first one included; a call a circuit breaker
    /// refused counts as an attempt).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Why the retry gave up.
    pub fn reason(&self) -> StopReason {
        self.reason
    }

    /// The last attempt's error.
    pub fn last(&self) -> &E {
        &self.last
    }

    /// The last attempt's error, by value.
    pub fn into_last(self) -> E {
        self.last
    }
}

impl<E: fmt::Display> fmt::Display for RetryError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.attempts == 1 { "" } else { "s" };
        write!(
            f,
            "gave up after {} attempt{plural} ({}): {}",
            self.attempts, self.reason, self.last
        )
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for RetryError<E> {}
