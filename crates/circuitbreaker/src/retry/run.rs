//! The retry loops: sync and async, on their own or through a circuit breaker.

use std::any::Any;
use std::future::Future;
use std::time::Duration;

use flowbed_ratelimit::Clock;

use super::backoff::Rng;
use super::{Retry, RetryError, RetryEvent, StopReason};
use crate::config::duration_nanos;
use crate::{CallError, CircuitBreaker, State};

/// What the policy makes of one error.
#[derive(Debug, Clone, Copy)]
enum Verdict {
    Stop,
    /// Retry, sleeping at least `not_before`.
    Retry {
        not_before: Duration,
    },
}

/// How a loop judges its errors, and what its hooks see of them.
type Judge<E> = for<'e> fn(&Retry, &'e E) -> (Verdict, &'e dyn Any);

/// An operation's own error: the `retry_if` predicates decide.
fn judge_plain<'e, E: Any>(retry: &Retry, error: &'e E) -> (Verdict, &'e dyn Any) {
    let verdict = if retry.is_retryable(error) {
        Verdict::Retry {
            not_before: Duration::ZERO,
        }
    } else {
        Verdict::Stop
    };
    (verdict, error)
}

/// A call through a breaker: a failure goes to the predicates; a refusal is retried only
/// when the policy says so, not before the breaker's `retry_after`, and never when the
/// breaker is forced open.
fn judge_call<'e, E: Any>(retry: &Retry, error: &'e CallError<E>) -> (Verdict, &'e dyn Any) {
    match error {
        CallError::Failed(error) => judge_plain(retry, error),
        CallError::Rejected(rejected) => {
            let verdict = if retry.retry_rejected && rejected.state() != State::ForcedOpen {
                Verdict::Retry {
                    not_before: rejected.retry_after().unwrap_or_default(),
                }
            } else {
                Verdict::Stop
            };
            (verdict, rejected)
        }
    }
}

/// One run's bookkeeping.
#[derive(Debug)]
struct Attempts {
    /// Attempts started so far.
    made: u32,
    /// When the first one started, on the run's clock.
    started: u64,
    rng: Rng,
}

impl Retry {
    fn begin(&self, now: u64) -> Attempts {
        Attempts {
            made: 0,
            started: now,
            rng: self.rng(),
        }
    }

    /// After attempt `attempts.made` failed with `error` at `now`: how long to sleep
    /// before the next one, or why to stop. Tells the hooks when it retries.
    fn next_delay<E>(
        &self,
        attempts: &mut Attempts,
        now: u64,
        error: &E,
        judge: Judge<E>,
    ) -> Result<Duration, StopReason> {
        let (verdict, seen) = judge(self, error);
        let Verdict::Retry { not_before } = verdict else {
            return Err(StopReason::NotRetryable);
        };
        if attempts.made >= self.max_attempts {
            return Err(StopReason::MaxAttempts);
        }
        let delay = self
            .backoff
            .delay(attempts.made, &mut attempts.rng)
            .max(not_before);
        let elapsed = now.saturating_sub(attempts.started);
        if let Some(budget) = self.max_elapsed {
            // The next attempt would start at `elapsed + delay`: it must not be later
            // than the budget.
            if elapsed.saturating_add(duration_nanos(delay)) > duration_nanos(budget) {
                return Err(StopReason::MaxElapsed);
            }
        }
        self.notify(&RetryEvent {
            attempt: attempts.made,
            delay,
            elapsed: Duration::from_nanos(elapsed),
            error: seen,
        });
        Ok(delay)
    }

    fn run_loop<T, E, C: Clock + ?Sized>(
        &self,
        clock: &C,
        mut sleep: impl FnMut(Duration),
        mut op: impl FnMut() -> Result<T, E>,
        judge: Judge<E>,
    ) -> Result<T, RetryError<E>> {
        let mut attempts = self.begin(clock.now());
        loop {
            attempts.made += 1;
            let error = match op() {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            match self.next_delay(&mut attempts, clock.now(), &error, judge) {
                Ok(delay) => {
                    drop(error);
                    sleep(delay);
                }
                Err(reason) => {
                    return Err(RetryError {
                        attempts: attempts.made,
                        reason,
                        last: error,
                    });
                }
            }
        }
    }

    async fn run_async_loop<T, E, C, F, Fut, S, Sleep>(
        &self,
        clock: &C,
        mut sleep: S,
        mut op: F,
        judge: Judge<E>,
    ) -> Result<T, RetryError<E>>
    where
        C: Clock + ?Sized,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        S: FnMut(Duration) -> Sleep,
        Sleep: Future<Output = ()>,
    {
        let mut attempts = self.begin(clock.now());
        loop {
            attempts.made += 1;
            // The error's scope ends before the sleep: the future holds no error (nor a
            // `&dyn Any`) across an await, so it is `Send` whenever `F`, `Fut`, `S` and
            // `Sleep` are.
            let delay = match op().await {
                Ok(value) => return Ok(value),
                Err(error) => match self.next_delay(&mut attempts, clock.now(), &error, judge) {
                    Ok(delay) => delay,
                    Err(reason) => {
                        return Err(RetryError {
                            attempts: attempts.made,
                            reason,
                            last: error,
                        });
                    }
                },
            };
            sleep(delay).await;
        }
    }

    /// Runs `op` until it succeeds or the policy gives up, sleeping the thread
    /// (`std::thread::sleep`) between attempts. Time for `max_elapsed` is measured on a
    /// [`MonotonicClock`](crate::MonotonicClock).
    ///
    /// In tests, use [`run_with`](Self::run_with) and a [`ManualClock`](crate::ManualClock)
    /// so nothing sleeps for real.
    ///
    /// # Errors
    ///
    /// [`RetryError`] with the number of attempts, why the policy gave up, and the last
    /// error.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowbed_circuitbreaker::retry::Retry;
    ///
    /// let retry = Retry::builder().initial_backoff(Duration::from_millis(1)).build()?;
    /// let mut calls = 0;
    /// let value = retry.run(|| {
    ///     calls += 1;
    ///     if calls < 3 { Err("not yet") } else { Ok(calls) }
    /// })?;
    /// assert_eq!(value, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn run<T, E: Any>(&self, op: impl FnMut() -> Result<T, E>) -> Result<T, RetryError<E>> {
        let clock = crate::MonotonicClock::new();
        self.run_loop(&clock, std::thread::sleep, op, judge_plain::<E>)
    }

    /// [`run`](Self::run) measuring time on `clock` and sleeping with `sleep`, which is
    /// called exactly once before every retry (with a zero delay too). In tests, pass a
    /// [`ManualClock`](crate::ManualClock) and a `sleep` that advances it.
    ///
    /// # Errors
    ///
    /// As for [`run`](Self::run).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowbed_circuitbreaker::ManualClock;
    /// use flowbed_circuitbreaker::retry::{Jitter, Retry, StopReason};
    ///
    /// let retry = Retry::builder()
    ///     .max_attempts(10)
    ///     .initial_backoff(Duration::from_secs(1))
    ///     .jitter(Jitter::None)
    ///     .max_elapsed(Duration::from_secs(10))
    ///     .build()?;
    /// let clock = ManualClock::new();
    /// let mut slept = Vec::new();
    /// let err = retry
    ///     .run_with(&clock, |d| { slept.push(d.as_secs()); clock.advance(d) }, || Err::<(), _>("down"))
    ///     .unwrap_err();
    /// // 1 + 2 + 4 = 7 s; the next 8 s would start attempt 5 at 15 s, past the budget.
    /// assert_eq!(slept, [1, 2, 4]);
    /// assert_eq!((err.attempts(), err.reason()), (4, StopReason::MaxElapsed));
    /// # Ok::<(), flowbed_circuitbreaker::retry::RetryConfigError>(())
    /// ```
    pub fn run_with<T, E: Any, C: Clock + ?Sized>(
        &self,
        clock: &C,
        sleep: impl FnMut(Duration),
        op: impl FnMut() -> Result<T, E>,
    ) -> Result<T, RetryError<E>> {
        self.run_loop(clock, sleep, op, judge_plain::<E>)
    }

    /// Runs the future `op` makes until one succeeds or the policy gives up, sleeping on
    /// tokio's timer between attempts and measuring `max_elapsed` on tokio's clock (so
    /// `tokio::time::pause()` makes a test exact and instant).
    ///
    /// Cancel-safe: dropping the returned future drops the attempt in flight (or the
    /// sleep) and makes no further attempt.
    ///
    /// # Errors
    ///
    /// As for [`run`](Self::run).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowbed_circuitbreaker::retry::{Jitter, Retry};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let retry = Retry::builder()
    ///     .max_attempts(4)
    ///     .initial_backoff(Duration::from_millis(100))
    ///     .jitter(Jitter::None)
    ///     .build()?;
    /// let start = tokio::time::Instant::now();
    /// let mut calls = 0;
    /// let value = retry
    ///     .run_async(|| {
    ///         calls += 1;
    ///         let this = calls;
    ///         async move { if this < 3 { Err("busy") } else { Ok(this) } }
    ///     })
    ///     .await?;
    /// assert_eq!(value, 3);
    /// assert_eq!(start.elapsed(), Duration::from_millis(100 + 200));
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "tokio")]
    pub async fn run_async<T, E, F, Fut>(&self, op: F) -> Result<T, RetryError<E>>
    where
        E: Any,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let clock = crate::TokioClock::new();
        self.run_async_loop(&clock, tokio::time::sleep, op, judge_plain::<E>)
            .await
    }

    /// [`run_async`](Self::run_async) measuring time on `clock` and sleeping with the
    /// future `sleep` makes (called exactly once before every retry): for runtimes other
    /// than tokio, and for tests.
    ///
    /// # Errors
    ///
    /// As for [`run`](Self::run).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowbed_circuitbreaker::{Clock, ManualClock};
    /// use flowbed_circuitbreaker::retry::{Jitter, Retry};
    ///
    /// let retry = Retry::builder().initial_backoff(Duration::from_secs(1)).jitter(Jitter::None).build()?;
    /// let clock = ManualClock::new();
    /// let sleep = |d| { clock.advance(d); std::future::ready(()) };
    /// let err = futures::executor::block_on(
    ///     retry.run_async_with(&clock, sleep, || async { Err::<(), _>("down") }),
    /// )
    /// .unwrap_err();
    /// assert_eq!(err.attempts(), 3);
    /// assert_eq!(Duration::from_nanos(clock.now()), Duration::from_secs(1 + 2));
    /// # Ok::<(), flowbed_circuitbreaker::retry::RetryConfigError>(())
    /// ```
    pub async fn run_async_with<T, E, C, F, Fut, S, Sleep>(
        &self,
        clock: &C,
        sleep: S,
        op: F,
    ) -> Result<T, RetryError<E>>
    where
        E: Any,
        C: Clock + ?Sized,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        S: FnMut(Duration) -> Sleep,
        Sleep: Future<Output = ()>,
    {
        self.run_async_loop(clock, sleep, op, judge_plain::<E>)
            .await
    }

    /// Runs `op` through `breaker` ([`CircuitBreaker::call`]) until it succeeds or the
    /// policy gives up, sleeping the thread between attempts. Every attempt is recorded
    /// by the breaker; when the breaker refuses one
    /// ([`CallError::Rejected`]), the retry stops there and returns the refusal, unless
    /// the policy [retries rejections](super::RetryBuilder::retry_rejected).
    /// `retry_if` predicates see `op`'s own error.
    ///
    /// Time for `max_elapsed` is measured on a [`MonotonicClock`](crate::MonotonicClock);
    /// tests use [`call_with`](Self::call_with).
    ///
    /// # Errors
    ///
    /// [`RetryError`] whose last error is the breaker's refusal or `op`'s error.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowbed_circuitbreaker::{CallError, CircuitBreaker, Config, State};
    /// use flowbed_circuitbreaker::retry::{Retry, StopReason};
    ///
    /// let breaker = CircuitBreaker::new(Config::builder().count_window(2).minimum_calls(2).build()?);
    /// let retry = Retry::builder().max_attempts(5).initial_backoff(Duration::from_millis(1)).build()?;
    ///
    /// // Two failures open the breaker; the third attempt is refused and not retried.
    /// let err = retry.call(&breaker, || Err::<(), _>("timeout")).unwrap_err();
    /// assert_eq!(err.attempts(), 3);
    /// assert_eq!(err.reason(), StopReason::NotRetryable);
    /// assert!(matches!(err.last(), CallError::Rejected(r) if r.state() == State::Open));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn call<T, E: Any, C: Clock>(
        &self,
        breaker: &CircuitBreaker<C>,
        op: impl FnMut() -> Result<T, E>,
    ) -> Result<T, RetryError<CallError<E>>> {
        let clock = crate::MonotonicClock::new();
        self.call_with(breaker, &clock, std::thread::sleep, op)
    }

    /// [`call`](Self::call) measuring time on `clock` and sleeping with `sleep` (called
    /// exactly once before every retry). In tests, give the breaker and the retry the
    /// same [`ManualClock`](crate::ManualClock), and a `sleep` that advances it.
    ///
    /// # Errors
    ///
    /// As for [`call`](Self::call).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowbed_circuitbreaker::{CircuitBreaker, Config, ManualClock, WaitInOpen};
    /// use flowbed_circuitbreaker::retry::Retry;
    ///
    /// let clock = ManualClock::new();
    /// let config = Config::builder()
    ///     .count_window(2)
    ///     .minimum_calls(2)
    ///     .wait_in_open(WaitInOpen::Fixed(Duration::from_secs(5)))
    ///     .permitted_calls_in_half_open(1)
    ///     .build()?;
    /// let breaker = CircuitBreaker::with_clock(config, clock.clone());
    /// let retry = Retry::builder()
    ///     .max_attempts(4)
    ///     .initial_backoff(Duration::from_millis(10))
    ///     .retry_rejected(true) // wait out the open breaker instead of failing fast
    ///     .build()?;
    ///
    /// let mut calls = 0;
    /// let value = retry.call_with(&breaker, &clock, |d| clock.advance(d), || {
    ///     calls += 1;
    ///     if calls <= 2 { Err("timeout") } else { Ok(calls) }
    /// })?;
    /// // Attempts 1-2 failed and opened the breaker, 3 was refused, and the retry slept
    /// // out the 5 s open wait; attempt 4 was the half-open probe, and it worked.
    /// assert_eq!(value, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn call_with<T, E: Any, C: Clock, K: Clock + ?Sized>(
        &self,
        breaker: &CircuitBreaker<C>,
        clock: &K,
        sleep: impl FnMut(Duration),
        mut op: impl FnMut() -> Result<T, E>,
    ) -> Result<T, RetryError<CallError<E>>> {
        self.run_loop(clock, sleep, || breaker.call(&mut op), judge_call::<E>)
    }

    /// Runs the future `op` makes through `breaker` ([`CircuitBreaker::call_async`])
    /// until one succeeds or the policy gives up, sleeping on tokio's timer and measuring
    /// `max_elapsed` on tokio's clock. A refusal stops the retry as in
    /// [`call`](Self::call).
    ///
    /// Cancel-safe: dropping the returned future drops the attempt in flight (its breaker
    /// permit records nothing and gives a half-open slot back) and makes no further
    /// attempt.
    ///
    /// # Errors
    ///
    /// As for [`call`](Self::call).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowbed_circuitbreaker::{CircuitBreaker, Config, TokioClock};
    /// use flowbed_circuitbreaker::retry::Retry;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let breaker = CircuitBreaker::with_clock(Config::default(), TokioClock::new());
    /// let retry = Retry::default();
    /// let mut calls = 0;
    /// let body = retry
    ///     .call_async(&breaker, || {
    ///         calls += 1;
    ///         let this = calls;
    ///         async move { if this == 1 { Err("reset by peer") } else { Ok("pong") } }
    ///     })
    ///     .await?;
    /// assert_eq!(body, "pong");
    /// assert_eq!((breaker.metrics().failed, breaker.metrics().successful), (1, 1));
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "tokio")]
    pub async fn call_async<T, E, C, F, Fut>(
        &self,
        breaker: &CircuitBreaker<C>,
        op: F,
    ) -> Result<T, RetryError<CallError<E>>>
    where
        E: Any,
        C: Clock,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let clock = crate::TokioClock::new();
        self.call_async_with(breaker, &clock, tokio::time::sleep, op)
            .await
    }

    /// [`call_async`](Self::call_async) measuring time on `clock` and sleeping with the
    /// future `sleep` makes (called exactly once before every retry).
    ///
    /// # Errors
    ///
    /// As for [`call`](Self::call).
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_circuitbreaker::{CircuitBreaker, Config, ManualClock};
    /// use flowbed_circuitbreaker::retry::Retry;
    ///
    /// let clock = ManualClock::new();
    /// let breaker = CircuitBreaker::with_clock(Config::default(), clock.clone());
    /// let retry = Retry::default();
    /// let sleep = |d| { clock.advance(d); std::future::ready(()) };
    /// let err = futures::executor::block_on(
    ///     retry.call_async_with(&breaker, &clock, sleep, || async { Err::<(), _>("down") }),
    /// )
    /// .unwrap_err();
    /// assert_eq!(err.attempts(), 3);
    /// assert_eq!(breaker.metrics().failed, 3);
    /// # Ok::<(), flowbed_circuitbreaker::retry::RetryConfigError>(())
    /// ```
    pub async fn call_async_with<T, E, C, K, F, Fut, S, Sleep>(
        &self,
        breaker: &CircuitBreaker<C>,
        clock: &K,
        sleep: S,
        mut op: F,
    ) -> Result<T, RetryError<CallError<E>>>
    where
        E: Any,
        C: Clock,
        K: Clock + ?Sized,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        S: FnMut(Duration) -> Sleep,
        Sleep: Future<Output = ()>,
    {
        self.run_async_loop(clock, sleep, || breaker.call_async(op()), judge_call::<E>)
            .await
    }
}
