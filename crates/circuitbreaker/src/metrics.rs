//! `Metrics`: a snapshot of a breaker's numbers.

use std::time::Duration;

use crate::State;
use crate::window::Totals;

/// A breaker's numbers at one instant, from [`CircuitBreaker::metrics`](crate::CircuitBreaker::metrics).
///
/// # Examples
///
/// ```
/// use flowbed_circuitbreaker::{CircuitBreaker, Config, State};
///
/// let breaker = CircuitBreaker::new(Config::builder().minimum_calls(2).build()?);
/// let _ = breaker.call(|| Ok::<_, ()>(()));
/// assert_eq!(breaker.metrics().failure_rate, None); // fewer than minimum_calls
/// let _ = breaker.call(|| Err::<(), _>(()));
/// let metrics = breaker.metrics();
/// assert_eq!(metrics.state, State::Open);
/// assert_eq!((metrics.calls, metrics.successful, metrics.failed), (2, 1, 1));
/// assert_eq!(metrics.failure_rate, Some(50.0));
/// # Ok::<(), flowbed_circuitbreaker::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Metrics {
    /// The state.
    pub state: State,
    /// Failed calls as a percentage of `calls`; `None` below `minimum_calls` (in
    /// half-open: before the first probe finished).
    pub failure_rate: Option<f32>,
    /// Slow calls as a percentage of `calls`; `None` when calls are not timed or below
    /// `minimum_calls`.
    pub slow_call_rate: Option<f32>,
    /// Calls in the window (in half-open: probes finished in this trial).
    pub calls: u64,
    /// Of those, successes (slow ones included).
    pub successful: u64,
    /// Of those, failures (slow ones included).
    pub failed: u64,
    /// Of those, slow successes.
    pub slow_successful: u64,
    /// Of those, slow failures.
    pub slow_failed: u64,
    /// Calls refused since the breaker was made or last [`reset`](crate::CircuitBreaker::reset).
    pub not_permitted: u64,
    /// How long the breaker has been in `state`.
    pub time_in_state: Duration,
}

impl Metrics {
    pub(crate) fn new(
        state: State,
        totals: Totals,
        rates_ready: bool,
        timed: bool,
        not_permitted: u64,
        time_in_state: Duration,
    ) -> Metrics {
        // Running totals may lag each other by the calls being recorded right now.
        let calls = totals.calls;
        let failed = totals.failed.min(calls);
        let slow = totals.slow.min(calls);
        let slow_failed = totals.slow_failed.min(failed).min(slow);
        let rate = |count: u64| (calls > 0).then(|| (count as f64 * 100.0 / calls as f64) as f32);
        Metrics {
            state,
            failure_rate: rates_ready.then(|| rate(failed)).flatten(),
            slow_call_rate: (rates_ready && timed).then(|| rate(slow)).flatten(),
            calls,
            successful: calls - failed,
            failed,
            slow_successful: slow - slow_failed,
            slow_failed,
            not_permitted,
            time_in_state,
        }
    }
}
