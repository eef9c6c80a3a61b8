//! `CallPermit`: the right to make one call, and the duty to say how it went.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use flowbed_ratelimit::{Clock, MonotonicClock};

use crate::config::duration_nanos;
use crate::state::StateWord;
use crate::{CircuitBreaker, Outcome, State};

/// What a permit remembers: the state period it was granted in and when (if calls are
/// timed).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    pub(crate) word: StateWord,
    pub(crate) started: u64,
}

/// Permission to make one call, from [`CircuitBreaker::try_acquire`] (borrowing the
/// breaker: [`CallPermit`]) or [`CircuitBreaker::try_acquire_owned`] (holding an `Arc`:
/// [`OwnedCallPermit`]).
///
/// Finish it with one of the `record` methods. Dropped without one, it counts as nothing
/// and a half-open probe slot is given back, so cancelling a future that holds a permit
/// is safe; dropped while its thread panics, it records a failure.
#[must_use = "record the call's outcome on the permit (dropping it records nothing)"]
pub struct Permit<C: Clock, B: Deref<Target = CircuitBreaker<C>>> {
    breaker: B,
    ticket: Option<Ticket>,
    clock: PhantomData<fn() -> C>,
}

impl<C: Clock, B: Deref<Target = CircuitBreaker<C>>> fmt::Debug for Permit<C, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("ticket", &self.ticket)
            .finish_non_exhaustive()
    }
}

/// A permit borrowing its breaker.
pub type CallPermit<'a, C = MonotonicClock> = Permit<C, &'a CircuitBreaker<C>>;
/// A permit holding its breaker in an `Arc`, for `'static` futures.
pub type OwnedCallPermit<C = MonotonicClock> = Permit<C, Arc<CircuitBreaker<C>>>;

impl<C: Clock, B: Deref<Target = CircuitBreaker<C>>> Permit<C, B> {
    pub(crate) fn new(breaker: B, ticket: Ticket) -> Self {
        Permit {
            breaker,
            ticket: Some(ticket),
            clock: PhantomData,
        }
    }

    /// The state the permit was granted in (`Closed`, `HalfOpen`, `MetricsOnly` or
    /// `Disabled`).
    pub fn state(&self) -> State {
        self.ticket.map_or(State::Closed, |t| t.word.state())
    }

    /// Records the outcome, timing the call from the permit's grant when calls are timed.
    #[inline]
    pub fn record(mut self, outcome: Outcome) {
        if let Some(ticket) = self.ticket.take() {
            self.breaker.finish(ticket, outcome, None);
        }
    }

    /// Records a success that took `took` (counted slow if at least `slow_call_duration`).
    pub fn record_success(self, took: Duration) {
        self.record_timed(Outcome::Success, took);
    }

    /// Records a failure that took `took`.
    pub fn record_failure(self, took: Duration) {
        self.record_timed(Outcome::Failure, took);
    }

    /// Records the outcome with a duration measured by the caller.
    pub fn record_timed(mut self, outcome: Outcome, took: Duration) {
        if let Some(ticket) = self.ticket.take() {
            self.breaker
                .finish(ticket, outcome, Some(duration_nanos(took)));
        }
    }

    /// Gives the permit back without an outcome (what dropping it does).
    pub fn release(self) {
        drop(self);
    }
}

impl<C: Clock, B: Deref<Target = CircuitBreaker<C>>> Drop for Permit<C, B> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            if std::thread::panicking() {
                self.breaker.finish(ticket, Outcome::Failure, None);
            } else {
                self.breaker.release(ticket);
            }
        }
    }
}
