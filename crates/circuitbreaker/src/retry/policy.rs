//! `Retry` and its builder: how many attempts, how long between them, which errors are
//! worth another try.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::backoff::{Backoff, Delays, Jitter, Rng};
use super::{RetryConfigError, RetryEvent};

type Predicate = Arc<dyn Fn(&dyn Any) -> Option<bool> + Send + Sync>;
type Hook = Arc<dyn Fn(&RetryEvent<'_>) + Send + Sync>;

/// A retry policy: runs an operation again, after a growing and randomised delay, until
/// it succeeds, fails with an error not worth retrying, or the attempts or time budget are
/// spent. The [module docs](super) explain the schedule and the breaker integration.
///
/// Build it once with [`Retry::builder`] and share it (it is `Clone`, `Send` and `Sync`;
/// clones share the predicates and hooks). One policy serves operations of any error type:
/// [`retry_if`](RetryBuilder::retry_if) predicates apply to the error type they name.
///
/// | setting | default | meaning |
/// |---|---|---|
/// | `max_attempts` | 3 | attempts in all, the first one included |
/// | `initial_backoff` | 100 ms | the backoff after the first failed attempt |
/// | `multiplier` | 2.0 | each further backoff is this many times the previous one |
/// | `max_backoff` | 10 s | no backoff is longer |
/// | `jitter` | [`Jitter::Full`] | how much of the backoff is actually slept |
/// | `max_elapsed` | none | no attempt starts later than this after the first one |
/// | `retry_if` | every error | which errors are retried |
/// | `retry_rejected` | `false` | whether a circuit breaker's refusal is retried |
///
/// | run the operation … | sync | async |
/// |---|---|---|
/// | directly | [`run`](Retry::run) | [`run_async`](Retry::run_async) (tokio) |
/// | through a [`CircuitBreaker`](crate::CircuitBreaker) | [`call`](Retry::call) | [`call_async`](Retry::call_async) (tokio) |
/// | … with your clock and sleep (tests, other runtimes) | [`run_with`](Retry::run_with), [`call_with`](Retry::call_with) | [`run_async_with`](Retry::run_async_with), [`call_async_with`](Retry::call_async_with) |
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowbed_circuitbreaker::retry::{Jitter, Retry};
///
/// let retry = Retry::builder()
///     .max_attempts(5)
///     .initial_backoff(Duration::from_millis(50))
///     .multiplier(2.0)
///     .max_backoff(Duration::from_secs(2))
///     .jitter(Jitter::Full)
///     .max_elapsed(Duration::from_secs(5))
///     .retry_if(|e: &std::io::Error| e.kind() != std::io::ErrorKind::NotFound)
///     .build()?;
///
/// // NotFound is not retried: one attempt, then the error.
/// let err = retry.run(|| std::fs::read("/definitely/not/here")).unwrap_err();
/// assert_eq!(err.attempts(), 1);
/// # Ok::<(), flowbed_circuitbreaker::retry::RetryConfigError>(())
/// ```
#[derive(Clone)]
pub struct Retry {
    pub(crate) max_attempts: u32,
    pub(crate) backoff: Backoff,
    pub(crate) max_elapsed: Option<Duration>,
    pub(crate) retry_rejected: bool,
    pub(crate) seed: Option<u64>,
    predicates: Arc<[Predicate]>,
    hooks: Arc<[Hook]>,
}

impl Default for Retry {
    /// The default policy (see the table on [`Retry`]).
    fn default() -> Self {
        RetryBuilder::new()
            .build()
            .expect("the default policy is valid")
    }
}

impl fmt::Debug for Retry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("max_attempts", &self.max_attempts)
            .field("initial_backoff", &self.backoff.initial)
            .field("multiplier", &self.backoff.multiplier)
            .field("max_backoff", &self.backoff.max)
            .field("jitter", &self.backoff.jitter)
            .field("max_elapsed", &self.max_elapsed)
            .field("retry_rejected", &self.retry_rejected)
            .field("seed", &self.seed)
            .field("predicates", &self.predicates.len())
            .field("hooks", &self.hooks.len())
            .finish()
    }
}

impl Retry {
    /// A builder starting from the defaults (see the table on [`Retry`]).
    pub fn builder() -> RetryBuilder {
        RetryBuilder::new()
    }

    /// Attempts in all, the first one included.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The time budget, if any: no attempt starts later than this after the first one.
    pub fn max_elapsed(&self) -> Option<Duration> {
        self.max_elapsed
    }

    /// The jitter applied to every backoff.
    pub fn jitter(&self) -> Jitter {
        self.backoff.jitter
    }

    /// Whether a circuit breaker's refusal is retried (by [`call`](Self::call) and
    /// [`call_async`](Self::call_async)).
    pub fn retries_rejected(&self) -> bool {
        self.retry_rejected
    }

    /// The backoff after `failed` failed attempts, before jitter:
    /// `min(max_backoff, initial_backoff × multiplier^(failed-1))`, and zero for
    /// `failed == 0`. The delay actually slept is drawn from it by the [`Jitter`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowbed_circuitbreaker::retry::Retry;
    ///
    /// let retry = Retry::builder()
    ///     .initial_backoff(Duration::from_millis(100))
    ///     .multiplier(3.0)
    ///     .max_backoff(Duration::from_secs(1))
    ///     .build()?;
    /// assert_eq!(retry.backoff_after(1), Duration::from_millis(100));
    /// assert_eq!(retry.backoff_after(2), Duration::from_millis(300));
    /// assert_eq!(retry.backoff_after(3), Duration::from_millis(900));
    /// assert_eq!(retry.backoff_after(4), Duration::from_secs(1));
    /// # Ok::<(), flowbed_circuitbreaker::retry::RetryConfigError>(())
    /// ```
    pub fn backoff_after(&self, failed: u32) -> Duration {
        Duration::from_nanos(self.backoff.nominal_nanos(failed))
    }

    /// The delays this policy sleeps between attempts, jitter included (from the
    /// configured [`seed`](RetryBuilder::seed), else from a fresh one), ignoring
    /// `max_elapsed`: `max_attempts - 1` of them.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_circuitbreaker::retry::Retry;
    ///
    /// let retry = Retry::builder().max_attempts(4).seed(42).build()?;
    /// let delays: Vec<_> = retry.delays().collect();
    /// assert_eq!(delays.len(), 3);
    /// assert_eq!(delays, retry.delays().collect::<Vec<_>>()); // seeded: the same every time
    /// for (n, delay) in delays.iter().enumerate() {
    ///     assert!(*delay <= retry.backoff_after(n as u32 + 1));
    /// }
    /// # Ok::<(), flowbed_circuitbreaker::retry::RetryConfigError>(())
    /// ```
    pub fn delays(&self) -> Delays {
        Delays {
            backoff: self.backoff,
            rng: self.rng(),
            failed: 1,
            max_attempts: self.max_attempts,
        }
    }

    /// Whether the `retry_if` predicates registered for `E` let `error` be retried (`true`
    /// when none is registered for `E`). Use it to compose this policy with a retry loop
    /// of your own.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_circuitbreaker::retry::Retry;
    ///
    /// let retry = Retry::builder().retry_if(|status: &u16| *status >= 500).build()?;
    /// assert!(retry.is_retryable(&503u16));
    /// assert!(!retry.is_retryable(&404u16));
    /// assert!(retry.is_retryable(&"no predicate for &str"));
    /// # Ok::<(), flowbed_circuitbreaker::retry::RetryConfigError>(())
    /// ```
    pub fn is_retryable<E: Any>(&self, error: &E) -> bool {
        self.predicates
            .iter()
            .all(|predicate| predicate(error).unwrap_or(true))
    }

    pub(crate) fn rng(&self) -> Rng {
        self.seed.map_or_else(Rng::fresh, Rng::new)
    }

    pub(crate) fn notify(&self, event: &RetryEvent<'_>) {
        for hook in self.hooks.iter() {
            hook(event);
        }
    }
}

/// Builds a [`Retry`]: start from [`Retry::builder`], change what you need, then
/// [`build`](Self::build), which checks the settings.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowbed_circuitbreaker::retry::{Jitter, Retry};
///
/// let retry = Retry::builder()
///     .max_attempts(4)
///     .initial_backoff(Duration::from_millis(200))
///     .jitter(Jitter::None)
///     .build()?;
/// assert_eq!(retry.backoff_after(3), Duration::from_millis(800));
/// # Ok::<(), flowbed_circuitbreaker::retry::RetryConfigError>(())
/// ```
#[derive(Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct RetryBuilder {
    max_attempts: u32,
    backoff: Backoff,
    max_elapsed: Option<Duration>,
    retry_rejected: bool,
    seed: Option<u64>,
    predicates: Vec<Predicate>,
    hooks: Vec<Hook>,
}

impl fmt::Debug for RetryBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBuilder")
            .field("max_attempts", &self.max_attempts)
            .field("backoff", &self.backoff)
            .field("max_elapsed", &self.max_elapsed)
            .field("retry_rejected", &self.retry_rejected)
            .field("seed", &self.seed)
            .field("predicates", &self.predicates.len())
            .field("hooks", &self.hooks.len())
            .finish()
    }
}

impl Default for RetryBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl RetryBuilder {
    /// A builder with the defaults (see the table on [`Retry`]).
    pub fn new() -> Self {
        RetryBuilder {
            max_attempts: 3,
            backoff: Backoff {
                initial: Duration::from_millis(100),
                multiplier: 2.0,
                max: Duration::from_secs(10),
                jitter: Jitter::Full,
            },
            max_elapsed: None,
            retry_rejected: false,
            seed: None,
            predicates: Vec::new(),
            hooks: Vec::new(),
        }
    }

    /// Attempts in all, the first one included (resilience4j's `maxAttempts`; Polly's
    /// and backon's retry counts are this minus one). `1` never retries. Default 3.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// The backoff after the first failed attempt. Zero retries at once (every backoff
    /// is then zero). Default 100 ms.
    pub fn initial_backoff(mut self, backoff: Duration) -> Self {
        self.backoff.initial = backoff;
        self
    }

    /// How much each backoff grows over the previous one: a finite number of at least 1
    /// (1 keeps the backoff constant). Default 2.
    pub fn multiplier(mut self, multiplier: f64) -> Self {
        self.backoff.multiplier = multiplier;
        self
    }

    /// The longest backoff, before jitter: at least `initial_backoff`. Default 10 s.
    pub fn max_backoff(mut self, backoff: Duration) -> Self {
        self.backoff.max = backoff;
        self
    }

    /// How much of each backoff is slept. Default [`Jitter::Full`].
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.backoff.jitter = jitter;
        self
    }

    /// The time budget: no attempt starts later than `budget` after the first one
    /// started. After a failed attempt, if the delay before the next one would end past
    /// the budget, the retry does not sleep at all: it returns the error at once
    /// ([`StopReason::MaxElapsed`](super::StopReason::MaxElapsed)). The budget does not
    /// cut an attempt that is running (wrap the operation in a timeout for that). Longer
    /// than zero; default none.
    pub fn max_elapsed(mut self, budget: Duration) -> Self {
        self.max_elapsed = Some(budget);
        self
    }

    /// Retries an error of type `E` only if `predicate` says so. Errors of other types
    /// are not affected; when several predicates apply to `E`, all must say yes. Without
    /// any, every error is retried.
    ///
    /// The type must be the operation's error type exactly (a predicate on
    /// `std::io::Error` does not see a `Box<dyn Error>`). Through a breaker
    /// ([`Retry::call`]), predicates see the operation's own error, not the
    /// [`CallError`](crate::CallError).
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_circuitbreaker::ManualClock;
    /// use flowbed_circuitbreaker::retry::{Retry, StopReason};
    ///
    /// #[derive(Debug)]
    /// enum DbError { Timeout, Constraint }
    ///
    /// let retry = Retry::builder()
    ///     .max_attempts(5)
    ///     .retry_if(|e: &DbError| matches!(e, DbError::Timeout))
    ///     .build()?;
    /// let clock = ManualClock::new();
    /// let mut errors = vec![DbError::Constraint, DbError::Timeout, DbError::Timeout].into_iter().rev();
    /// let err = retry
    ///     .run_with(&clock, |d| clock.advance(d), || Err::<(), _>(errors.next().unwrap()))
    ///     .unwrap_err();
    /// assert_eq!(err.attempts(), 3); // Timeout, Timeout, then Constraint is not retried
    /// assert_eq!(err.reason(), StopReason::NotRetryable);
    /// # Ok::<(), flowbed_circuitbreaker::retry::RetryConfigError>(())
    /// ```
    pub fn retry_if<E: Any>(
        mut self,
        predicate: impl Fn(&E) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.predicates.push(Arc::new(move |error: &dyn Any| {
            error.downcast_ref::<E>().map(&predicate)
        }));
        self
    }

    /// Whether [`Retry::call`] and [`Retry::call_async`] retry a call the breaker refused
    /// ([`CallError::Rejected`](crate::CallError::Rejected)). Default `false`: an open
    /// breaker means the downstream is known to be failing, and the caller should get
    /// that answer at once.
    ///
    /// With `true`, a refusal is retried like a failure, but never sooner than the
    /// breaker's [`retry_after`](crate::Rejected::retry_after) (the rest of its open
    /// wait; this may exceed `max_backoff`, and `max_elapsed` still applies). A
    /// [`ForcedOpen`](crate::State::ForcedOpen) breaker's refusal is never retried: only
    /// an operator ends it.
    pub fn retry_rejected(mut self, retry: bool) -> Self {
        self.retry_rejected = retry;
        self
    }

    /// Calls `hook` before every retry, after the delay is chosen and before sleeping:
    /// for logs and metrics. Hooks run in the order added, on the retrying thread or
    /// task; keep them short.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use flowbed_circuitbreaker::ManualClock;
    /// use flowbed_circuitbreaker::retry::Retry;
    ///
    /// let log = Arc::new(Mutex::new(Vec::new()));
    /// let sink = Arc::clone(&log);
    /// let retry = Retry::builder()
    ///     .max_attempts(3)
    ///     .on_retry(move |event| {
    ///         let error = event.error::<std::io::Error>().map(|e| e.kind());
    ///         sink.lock().unwrap().push(format!("attempt {} failed ({error:?})", event.attempt()));
    ///     })
    ///     .build()?;
    /// let clock = ManualClock::new();
    /// let _ = retry.run_with(&clock, |d| clock.advance(d), || std::fs::read("/definitely/not/here"));
    /// assert_eq!(*log.lock().unwrap(), [
    ///     "attempt 1 failed (Some(NotFound))",
    ///     "attempt 2 failed (Some(NotFound))",
    /// ]);
    /// # Ok::<(), flowbed_circuitbreaker::retry::RetryConfigError>(())
    /// ```
    pub fn on_retry(mut self, hook: impl Fn(&RetryEvent<'_>) + Send + Sync + 'static) -> Self {
        self.hooks.push(Arc::new(hook));
        self
    }

    /// Seeds the jitter: every run then draws the same delays, for reproducible tests.
    /// Without a seed, every run draws from a fresh seed (differing between runs, threads
    /// and processes, so clients that failed together spread out).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Checks the settings and makes the policy.
    ///
    /// # Errors
    ///
    /// [`RetryConfigError`] naming the first setting out of range: `max_attempts` of 0,
    /// a `multiplier` below 1 or not finite, a `max_backoff` shorter than
    /// `initial_backoff`, a zero `max_elapsed`.
    pub fn build(self) -> Result<Retry, RetryConfigError> {
        if self.max_attempts == 0 {
            return Err(RetryConfigError::MaxAttempts);
        }
        let multiplier = self.backoff.multiplier;
        if !(multiplier.is_finite() && multiplier >= 1.0) {
            return Err(RetryConfigError::Multiplier { value: multiplier });
        }
        if self.backoff.max < self.backoff.initial {
            return Err(RetryConfigError::MaxBackoff {
                initial: self.backoff.initial,
                max: self.backoff.max,
            });
        }
        if self.max_elapsed == Some(Duration::ZERO) {
            return Err(RetryConfigError::MaxElapsed);
        }
        Ok(Retry {
            max_attempts: self.max_attempts,
            backoff: self.backoff,
            max_elapsed: self.max_elapsed,
            retry_rejected: self.retry_rejected,
            seed: self.seed,
            predicates: self.predicates.into(),
            hooks: self.hooks.into(),
        })
    }
}
