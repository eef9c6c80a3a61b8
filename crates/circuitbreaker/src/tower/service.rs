//! `CircuitBreakerService`: the service a [`CircuitBreakerLayer`](super::CircuitBreakerLayer)
//! makes.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use flowbed_ratelimit::{Clock, MonotonicClock};
use tower_service::Service;

use super::classify::{Classify, ConfigClassifier};
use super::future::ResponseFuture;
use crate::{CallError, CircuitBreaker};

/// A tower service that asks a [`CircuitBreaker`] before each call to the inner service
/// and tells it how the call went; made by
/// [`CircuitBreakerLayer`](super::CircuitBreakerLayer). (Why it is not called
/// `CircuitBreaker<S>`: see the [module docs](super#the-name-circuitbreakerservice).)
///
/// - `poll_ready` asks the inner service only; its error comes back as
///   [`CallError::Failed`] and is not recorded.
/// - `call` takes a permit from the breaker. Permitted: calls the inner service; its
///   [`ResponseFuture`] records the outcome ([`Classify`]) when it completes, timed from
///   the permit when the breaker times calls. Refused: does not call the inner service;
///   the future is ready at once with [`CallError::Rejected`].
///
/// Clones share the breaker (and clone the inner service, so the service is `Clone`
/// exactly when the inner service and the classifier are).
///
/// # Examples
///
/// ```
/// use std::convert::Infallible;
/// use flowbed_circuitbreaker::tower::CircuitBreakerLayer;
/// use flowbed_circuitbreaker::{CallError, CircuitBreaker, Config, ManualClock, State};
/// use tower::{Layer, Service, ServiceExt, service_fn};
///
/// # futures::executor::block_on(async {
/// let config = Config::builder().count_window(4).minimum_calls(4).build().unwrap();
/// let layer = CircuitBreakerLayer::new(CircuitBreaker::with_clock(config, ManualClock::new()));
/// let mut service = layer.layer(service_fn(|n: u32| async move {
///     if n % 2 == 0 { Ok(n) } else { Err(format!("{n} is odd")) }
/// }));
///
/// let mut answers = Vec::new();
/// for n in 0..6 {
///     answers.push(service.ready().await.unwrap().call(n).await);
/// }
/// assert_eq!(answers[..4], [Ok(0), Err(CallError::Failed("1 is odd".into())), Ok(2), Err(CallError::Failed("3 is odd".into()))]);
/// // 2 of 4 failed: the breaker opened, and refuses calls without making them.
/// assert_eq!(layer.breaker().state(), State::Open);
/// assert!(answers[4..].iter().all(|answer| matches!(answer, Err(CallError::Rejected(_)))));
/// # });
/// ```
pub struct CircuitBreakerService<S, C: Clock = MonotonicClock, F = ConfigClassifier> {
    inner: S,
    breaker: Arc<CircuitBreaker<C>>,
    classify: F,
}

impl<S, C: Clock, F> CircuitBreakerService<S, C, F> {
    pub(super) fn new(inner: S, breaker: Arc<CircuitBreaker<C>>, classify: F) -> Self {
        Self {
            inner,
            breaker,
            classify,
        }
    }

    /// The breaker this service asks (shared with the layer that made it).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use flowbed_circuitbreaker::tower::CircuitBreakerLayer;
    /// use flowbed_circuitbreaker::{CircuitBreaker, Config};
    /// use tower::Layer;
    ///
    /// let layer = CircuitBreakerLayer::new(CircuitBreaker::new(Config::default()));
    /// let service = layer.layer(());
    /// assert!(Arc::ptr_eq(service.breaker(), layer.breaker()));
    /// ```
    pub fn breaker(&self) -> &Arc<CircuitBreaker<C>> {
        &self.breaker
    }

    /// The inner service.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_circuitbreaker::tower::CircuitBreakerLayer;
    /// use flowbed_circuitbreaker::{CircuitBreaker, Config};
    /// use tower::Layer;
    ///
    /// let layer = CircuitBreakerLayer::new(CircuitBreaker::new(Config::default()));
    /// assert_eq!(*layer.layer("inner").get_ref(), "inner");
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_circuitbreaker::tower::CircuitBreakerLayer;
    /// use flowbed_circuitbreaker::{CircuitBreaker, Config};
    /// use tower::Layer;
    ///
    /// let layer = CircuitBreakerLayer::new(CircuitBreaker::new(Config::default()));
    /// let mut service = layer.layer(1_u32);
    /// *service.get_mut() += 1;
    /// assert_eq!(*service.get_ref(), 2);
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, without the breaker.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_circuitbreaker::tower::CircuitBreakerLayer;
    /// use flowbed_circuitbreaker::{CircuitBreaker, Config};
    /// use tower::Layer;
    ///
    /// let layer = CircuitBreakerLayer::new(CircuitBreaker::new(Config::default()));
    /// assert_eq!(layer.layer("inner").into_inner(), "inner");
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, C, F, Req> Service<Req> for CircuitBreakerService<S, C, F>
where
    S: Service<Req>,
    C: Clock,
    F: Classify<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = CallError<S::Error>;
    type Future = ResponseFuture<S::Future, C, F>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(CallError::Failed)
    }

    #[inline]
    fn call(&mut self, request: Req) -> Self::Future {
        // The permit is taken before the inner call: a slow-call timer starts here, and a
        // panic in `inner.call` drops it while panicking, which records a failure.
        match self.breaker.try_acquire_owned() {
            Ok(permit) => {
                ResponseFuture::called(self.inner.call(request), permit, self.classify.clone())
            }
            Err(rejected) => ResponseFuture::rejected(rejected),
        }
    }
}

impl<S: Clone, C: Clock, F: Clone> Clone for CircuitBreakerService<S, C, F> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            breaker: Arc::clone(&self.breaker),
            classify: self.classify.clone(),
        }
    }
}

impl<S: fmt::Debug, C: Clock, F> fmt::Debug for CircuitBreakerService<S, C, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerService")
            .field("inner", &self.inner)
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}
