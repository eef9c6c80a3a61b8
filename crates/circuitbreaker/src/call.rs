//! Running an operation through the breaker: `call` and `call_async`.

use std::any::Any;
use std::future::Future;

use flowbed_ratelimit::Clock;

use crate::{CallError, CircuitBreaker, Outcome};

impl<C: Clock> CircuitBreaker<C> {
    /// Runs `operation` if the breaker permits it and records how it went: `Ok` is a
    /// success, `Err` is whatever the configured error classifiers say (a failure by
    /// default). A panic in `operation` is recorded as a failure and resumes.
    ///
    /// # Errors
    ///
    /// [`CallError::Rejected`] if the breaker refused the call (the operation did not
    /// run), [`CallError::Failed`] with the operation's own error.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_circuitbreaker::{CallError, CircuitBreaker, Config};
    ///
    /// let breaker = CircuitBreaker::new(Config::default());
    /// let value = breaker.call(|| "42".parse::<u32>())?;
    /// assert_eq!(value, 42);
    /// # Ok::<(), CallError<std::num::ParseIntError>>(())
    /// ```
    #[inline]
    pub fn call<T, E: Any>(
        &self,
        operation: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, CallError<E>> {
        self.call_classified(operation, |result| self.classify(result))
    }

    /// [`call`](Self::call) with the outcome decided by `classify` (which sees the
    /// result, so an `Ok` can count as a failure too, e.g. an HTTP 503).
    ///
    /// # Errors
    ///
    /// As for [`call`](Self::call).
    #[inline]
    pub fn call_classified<T, E>(
        &self,
        operation: impl FnOnce() -> Result<T, E>,
        classify: impl FnOnce(&Result<T, E>) -> Outcome,
    ) -> Result<T, CallError<E>> {
        let permit = self.try_acquire().map_err(CallError::Rejected)?;
        let result = operation();
        permit.record(classify(&result));
        result.map_err(CallError::Failed)
    }

    /// Awaits `operation` if the breaker permits it and records how it went, like
    /// [`call`](Self::call). Dropping the returned future before it finishes records
    /// nothing and gives a half-open probe slot back.
    ///
    /// # Errors
    ///
    /// As for [`call`](Self::call).
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_circuitbreaker::{CircuitBreaker, Config};
    ///
    /// # futures::executor::block_on(async {
    /// let breaker = CircuitBreaker::new(Config::default());
    /// let body = breaker.call_async(async { Ok::<_, std::io::Error>("pong") }).await;
    /// assert_eq!(body.unwrap(), "pong");
    /// # });
    /// ```
    pub async fn call_async<T, E: Any>(
        &self,
        operation: impl Future<Output = Result<T, E>>,
    ) -> Result<T, CallError<E>> {
        self.call_async_classified(operation, |result| self.classify(result))
            .await
    }

    /// [`call_async`](Self::call_async) with the outcome decided by `classify`.
    ///
    /// # Errors
    ///
    /// As for [`call`](Self::call).
    pub async fn call_async_classified<T, E>(
        &self,
        operation: impl Future<Output = Result<T, E>>,
        classify: impl FnOnce(&Result<T, E>) -> Outcome,
    ) -> Result<T, CallError<E>> {
        let permit = self.try_acquire().map_err(CallError::Rejected)?;
        let result = operation.await;
        permit.record(classify(&result));
        result.map_err(CallError::Failed)
    }

    /// How the configured classifiers count `result`: `Ok` is a success; an error goes
    /// to the classifiers registered for its type (a failure if none has an opinion).
    pub fn classify<T, E: Any>(&self, result: &Result<T, E>) -> Outcome {
        self.config().classify(result)
    }
}
