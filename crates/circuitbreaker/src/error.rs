//! Errors: one type per operation, each saying exactly what was wrong.

use std::time::Duration;

use crate::State;

/// A [`Config`](crate::Config) that cannot be built: the setting named in the variant is
/// out of range or contradicts another one.
///
/// # Examples
///
/// ```
/// use flowbed_circuitbreaker::{Config, ConfigError};
///
/// let err = Config::builder().failure_rate_threshold(0.0).build().unwrap_err();
/// assert_eq!(err, ConfigError::FailureRateThreshold { value: 0.0 });
/// assert!(err.to_string().contains("failure_rate_threshold"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `failure_rate_threshold` must be a percentage in `(0, 100]`.
    #[error("failure_rate_threshold must be in (0, 100], got {value}")]
    FailureRateThreshold {
        /// The value given.
        value: f32,
    },
    /// `slow_call_rate_threshold` must be a percentage in `(0, 100]`.
    #[error("slow_call_rate_threshold must be in (0, 100], got {value}")]
    SlowCallRateThreshold {
        /// The value given.
        value: f32,
    },
    /// `slow_call_rate_threshold` was set without `slow_call_duration`: nothing would ever
    /// count as slow.
    #[error("slow_call_rate_threshold is set but slow_call_duration is not")]
    SlowCallDurationMissing,
    /// `slow_call_duration` must be longer than zero.
    #[error("slow_call_duration must be longer than zero")]
    SlowCallDuration,
    /// A count window must hold between 1 and [`MAX_COUNT_WINDOW`](crate::MAX_COUNT_WINDOW)
    /// calls.
    #[error("count_window must hold 1..={max} calls, got {value}")]
    CountWindow {
        /// The value given.
        value: u32,
        /// The largest window accepted.
        max: u32,
    },
    /// A time window's length must be a whole number (1..=[`MAX_TIME_BUCKETS`](crate::MAX_TIME_BUCKETS))
    /// of buckets, and the bucket width at least 1 µs.
    #[error(
        "time_window length {length:?} must be 1..={max_buckets} whole buckets of {bucket:?} (bucket at least 1 µs)"
    )]
    TimeWindow {
        /// The window length given.
        length: Duration,
        /// The bucket width given.
        bucket: Duration,
        /// The most buckets accepted.
        max_buckets: u32,
    },
    /// `minimum_calls` must be at least 1.
    #[error("minimum_calls must be at least 1")]
    MinimumCalls,
    /// `permitted_calls_in_half_open` must be in `1..=`[`MAX_HALF_OPEN_CALLS`](crate::MAX_HALF_OPEN_CALLS).
    #[error("permitted_calls_in_half_open must be 1..={max}, got {value}")]
    PermittedCallsInHalfOpen {
        /// The value given.
        value: u32,
        /// The largest number accepted.
        max: u32,
    },
    /// `wait_in_open` must be longer than zero, exponential backoff needs a multiplier of
    /// at least 1 and a cap no shorter than the first wait.
    #[error("wait_in_open: {reason}")]
    WaitInOpen {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `max_wait_in_half_open` must be longer than zero (leave it unset to wait forever).
    #[error("max_wait_in_half_open must be longer than zero")]
    MaxWaitInHalfOpen,
}

/// The breaker did not permit the call: it is open, forced open, or half-open with every
/// probe slot taken. resilience4j calls this `CallNotPermittedException`.
///
/// # Examples
///
/// ```
/// use flowbed_circuitbreaker::{CircuitBreaker, Config, State};
///
/// let breaker = CircuitBreaker::new(Config::default());
/// breaker.transition_to(State::ForcedOpen);
/// let rejected = breaker.try_acquire().unwrap_err();
/// assert_eq!(rejected.state(), State::ForcedOpen);
/// assert_eq!(rejected.retry_after(), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("circuit breaker is {state}: call not permitted")]
pub struct Rejected {
    pub(crate) state: State,
    pub(crate) retry_after: Option<Duration>,
}

impl Rejected {
    /// The state that refused the call.
    pub fn state(&self) -> State {
        self.state
    }

    /// When the breaker will let a probe through, if it knows: the rest of the wait in
    /// `Open`; `None` in `ForcedOpen` and in `HalfOpen` (a probe slot frees when a probe
    /// finishes).
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

/// What a call through the breaker can fail with: it was not permitted, or the operation
/// itself failed.
///
/// # Examples
///
/// ```
/// use flowbed_circuitbreaker::{CallError, CircuitBreaker, Config};
///
/// let breaker = CircuitBreaker::new(Config::default());
/// let result: Result<(), _> = breaker.call(|| Err::<(), _>("boom"));
/// assert!(matches!(result, Err(CallError::Failed("boom"))));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError<E> {
    /// The breaker refused the call; the operation did not run.
    #[error(transparent)]
    Rejected(Rejected),
    /// The operation ran and returned this error.
    #[error("call failed: {0}")]
    Failed(E),
}

impl<E> CallError<E> {
    /// Whether the breaker refused the call.
    pub fn is_rejected(&self) -> bool {
        matches!(self, CallError::Rejected(_))
    }

    /// The operation's own error, if it ran.
    pub fn into_failed(self) -> Option<E> {
        match self {
            CallError::Failed(e) => Some(e),
            CallError::Rejected(_) => None,
        }
    }
}
