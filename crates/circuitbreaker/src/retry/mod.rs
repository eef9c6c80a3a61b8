//! Retrying failed operations with exponential backoff and jitter, on their own or
//! through a [`CircuitBreaker`](crate::CircuitBreaker).
//!
//! A [`Retry`] is a policy built once and shared: how many attempts, how long to wait
//! between them, which errors are worth another try, how long the whole thing may take.
//! It runs a closure (sync, sleeping the thread) or a closure that makes a future (async,
//! sleeping on tokio's timer):
//!
//! ```
//! use std::time::Duration;
//! use flowbed_circuitbreaker::retry::Retry;
//!
//! let retry = Retry::builder()
//!     .max_attempts(4)                              // the first call included
//!     .initial_backoff(Duration::from_millis(1))
//!     .retry_if(|e: &std::io::Error| e.kind() != std::io::ErrorKind::PermissionDenied)
//!     .build()?;
//!
//! let mut calls = 0;
//! let value = retry.run(|| {
//!     calls += 1;
//!     if calls < 3 { Err(std::io::Error::other("flaky")) } else { Ok(calls) }
//! })?;
//! assert_eq!(value, 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The schedule
//!
//! After the `n`-th failed attempt (`n` = 1, 2, …) the *backoff* is
//!
//! ```text
//! b(n) = min(max_backoff, initial_backoff × multiplier^(n-1))
//! ```
//!
//! and the retry sleeps a delay drawn from it by the [`Jitter`]: uniformly in `[0, b(n)]`
//! with [`Jitter::Full`] (the default), in `[b(n)/2, b(n)]` with [`Jitter::Equal`], exactly
//! `b(n)` with [`Jitter::None`]. With the defaults (3 attempts, 100 ms, ×2, cap 10 s) the
//! two retries wait up to 100 ms and 200 ms, 150 ms in all on average.
//! [`Retry::backoff_after`] computes `b(n)`, [`Retry::delays`] draws a whole schedule.
//!
//! The jitter comes from a small SplitMix64 generator seeded afresh for every run (from
//! std's per-process random keys and a counter), or from
//! [`seed`](RetryBuilder::seed) when a test needs the same delays every time.
//!
//! ## Why full jitter
//!
//! Clients rarely fail alone: a downstream restarts, a network path flaps, and every
//! client sees its calls fail at the same moment. With plain exponential backoff they
//! also retry at the same moments, `b(1)`, `b(1) + b(2)`, …, and each wave of retries hits
//! the recovering server all at once, often knocking it over again. Jitter spreads every
//! wave out. In AWS's simulation of competing clients (Marc Brooker, "Exponential Backoff
//! And Jitter", AWS Architecture Blog, 2015), full jitter made the fewest calls and
//! finished far sooner than equal jitter (decorrelated jitter was slightly quicker but
//! made more calls); no jitter was worst on both counts. The price is that one client may
//! retry almost at once; its expected wait, `b(n)/2`,
//! still doubles with every failure. Choose [`Jitter::Equal`] if you need a floor on the
//! wait, [`Jitter::None`] for a single client or a test.
//!
//! ## The time budget
//!
//! [`max_elapsed`](RetryBuilder::max_elapsed) bounds when attempts may *start*: the clock
//! starts when the first attempt starts, and after a failed attempt (at elapsed time `e`),
//! if the next delay `d` would make the next attempt start after the budget (`e + d >
//! max_elapsed`), the retry does not sleep: it returns the last error at once, with
//! [`StopReason::MaxElapsed`]. A sleep is never cut short to squeeze in a last attempt.
//! So a run takes at most `max_elapsed` plus its last attempt; bound the attempts
//! themselves with a timeout (`tokio::time::timeout`) inside the operation.
//!
//! Elapsed time is measured by the clock that matches the sleep: [`Retry::run`] and
//! [`Retry::call`] use a [`MonotonicClock`](crate::MonotonicClock) and
//! `std::thread::sleep`; [`Retry::run_async`] and [`Retry::call_async`] use tokio's clock
//! and timer (so `tokio::time::pause()` makes tests exact); the `_with` variants take
//! both from you.
//!
//! # With a circuit breaker
//!
//! Put the retry *outside* the breaker, so that the breaker sees (and counts) every
//! attempt, and let [`Retry::call`] or [`Retry::call_async`] make the calls:
//!
//! ```
//! use std::time::Duration;
//! use flowbed_circuitbreaker::{CallError, CircuitBreaker, Config};
//! use flowbed_circuitbreaker::retry::{Retry, StopReason};
//!
//! let breaker = CircuitBreaker::new(Config::builder().count_window(4).minimum_calls(4).build()?);
//! let retry = Retry::builder().max_attempts(10).initial_backoff(Duration::from_millis(1)).build()?;
//!
//! let err = retry.call(&breaker, || Err::<(), _>("connection refused")).unwrap_err();
//! // Four failures opened the breaker; the fifth attempt was refused, and the retry
//! // stopped there instead of burning its last five attempts on an open breaker.
//! assert_eq!(err.attempts(), 5);
//! assert_eq!(err.reason(), StopReason::NotRetryable);
//! assert!(err.last().is_rejected());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A breaker's refusal ([`CallError::Rejected`](crate::CallError::Rejected)) is not
//! retried: the breaker already knows the downstream is failing and will refuse calls for
//! seconds, while the retry would spend its attempts in microseconds; the caller should
//! get the answer at once (that is what the breaker is for). To wait for the breaker
//! instead, set [`retry_rejected(true)`](RetryBuilder::retry_rejected): a refusal is then
//! retried no sooner than its [`retry_after`](crate::Rejected::retry_after), within
//! `max_attempts` and `max_elapsed`. [`retry_if`](RetryBuilder::retry_if) predicates see
//! the operation's own error.
//!
//! If you compose the two by hand, with `retry.run(|| breaker.call(...))`, the retry sees
//! a plain [`CallError`](crate::CallError) and **retries refusals** like any other
//! error; say otherwise with a predicate:
//!
//! ```
//! use flowbed_circuitbreaker::CallError;
//! use flowbed_circuitbreaker::retry::Retry;
//!
//! let retry = Retry::builder()
//!     .retry_if(|e: &CallError<std::io::Error>| !e.is_rejected())
//!     .build()?;
//! # Ok::<(), flowbed_circuitbreaker::retry::RetryConfigError>(())
//! ```
//!
//! # Errors and cancellation
//!
//! A run that gives up returns a [`RetryError`]: the attempts made, the [`StopReason`],
//! and the last error ([`into_last`](RetryError::into_last) hands it back). The async
//! runners are cancel-safe: dropping the future (a `select!`, a timeout, an aborted
//! task) drops the attempt in flight or the sleep, and nothing else runs.
//!
//! # Testing
//!
//! Nothing needs to sleep for real. Sync code: [`Retry::run_with`] / [`Retry::call_with`]
//! with a [`ManualClock`](crate::ManualClock) and a sleep that advances it (and records
//! the delays, if you want to check them). Async code: `tokio::time::pause()` (or
//! `#[tokio::test(start_paused = true)]`), and a breaker on a
//! [`TokioClock`](crate::TokioClock) so that it agrees with the timer.
//!
//! # Compared with
//!
//! resilience4j's `Retry` counts `maxAttempts` the same way (the first call included)
//! but has no time budget and retries a breaker's `CallNotPermittedException` unless told
//! not to; Polly, backon and tokio-retry count retries instead of attempts; the `backoff`
//! crate has a time budget but asks the operation to mark errors permanent or transient.
//! Here the policy is one value shared by sync and async code, the predicates are per
//! error type, and the breaker's refusal is handled for you.

mod backoff;
mod error;
mod event;
mod policy;
mod run;

pub use backoff::{Delays, Jitter};
pub use error::{RetryConfigError, RetryError, StopReason};
pub use event::RetryEvent;
pub use policy::{Retry, RetryBuilder};
