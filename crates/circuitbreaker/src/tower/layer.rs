//! `CircuitBreakerLayer`: makes [`CircuitBreakerService`]s that share one breaker.

use std::fmt;
use std::sync::Arc;

use flowbed_ratelimit::{Clock, MonotonicClock};
use tower_layer::Layer;

use super::classify::ConfigClassifier;
use super::service::CircuitBreakerService;
use crate::CircuitBreaker;

/// A tower [`Layer`] putting a [`CircuitBreaker`] in front of a service: every
/// [`CircuitBreakerService`] it makes, and every clone of those and of the layer, asks the
/// **same** breaker (held in an `Arc`), so one downstream has one breaker however many
/// routes, clones and connections call it.
///
/// `F` decides how a finished call counts ([`Classify`](super::Classify)); the default,
/// [`ConfigClassifier`], counts `Ok` as a success and an error as the breaker's config
/// says. Change it with [`classify`](Self::classify).
///
/// The inner service does not need to be `Clone`: the layer moves it into the service it
/// makes. (The service is `Clone` when the inner service is.)
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use flowbed_circuitbreaker::tower::CircuitBreakerLayer;
/// use flowbed_circuitbreaker::{CallError, CircuitBreaker, Config, ManualClock, State};
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
///
/// # futures::executor::block_on(async {
/// let config = Config::builder().count_window(2).minimum_calls(2).build().unwrap();
/// let breaker = Arc::new(CircuitBreaker::with_clock(config, ManualClock::new()));
/// let service = ServiceBuilder::new()
///     .layer(CircuitBreakerLayer::new(Arc::clone(&breaker)))
///     .service(service_fn(|n: i32| async move {
///         if n >= 0 { Ok(n) } else { Err("negative") }
///     }));
///
/// assert_eq!(service.clone().oneshot(1).await, Ok(1));
/// assert_eq!(service.clone().oneshot(-1).await, Err(CallError::Failed("negative")));
/// // 1 failure in 2 calls: 50 %, the default threshold.
/// assert_eq!(breaker.state(), State::Open);
/// assert!(service.oneshot(2).await.unwrap_err().is_rejected());
/// # });
/// ```
pub struct CircuitBreakerLayer<C: Clock = MonotonicClock, F = ConfigClassifier> {
    breaker: Arc<CircuitBreaker<C>>,
    classify: F,
}

impl<C: Clock> CircuitBreakerLayer<C> {
    /// A layer asking `breaker` for every call, counting `Ok` as a success and an error as
    /// the breaker's config says.
    ///
    /// Takes the breaker itself or an `Arc` of it: keep a clone of the `Arc` to watch the
    /// breaker ([`state`](CircuitBreaker::state), [`metrics`](CircuitBreaker::metrics),
    /// [`subscribe`](CircuitBreaker::subscribe)), to move it by hand
    /// ([`transition_to`](CircuitBreaker::transition_to)), or to guard other calls to the
    /// same downstream with it; [`breaker`](Self::breaker) hands it back too.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use flowbed_circuitbreaker::tower::CircuitBreakerLayer;
    /// use flowbed_circuitbreaker::{CircuitBreaker, Config};
    ///
    /// // Owned by the layer:
    /// let layer = CircuitBreakerLayer::new(CircuitBreaker::new(Config::default()));
    /// # let _ = layer;
    ///
    /// // Shared with the code around it:
    /// let breaker = Arc::new(CircuitBreaker::new(Config::default()));
    /// let layer = CircuitBreakerLayer::new(Arc::clone(&breaker));
    /// assert!(Arc::ptr_eq(layer.breaker(), &breaker));
    /// ```
    pub fn new(breaker: impl Into<Arc<CircuitBreaker<C>>>) -> Self {
        let breaker = breaker.into();
        let classify = ConfigClassifier::new(breaker.config());
        Self { breaker, classify }
    }
}

impl<C: Clock, F> CircuitBreakerLayer<C, F> {
    /// Counts finished calls with `classify` instead: any `Fn(&Result<Response, Error>) ->
    /// Outcome + Clone` (annotate the argument's type) or
    /// [`Classify`](super::Classify) implementation.
    ///
    /// # Examples
    ///
    /// An HTTP client whose `5xx` responses are failures:
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use flowbed_circuitbreaker::tower::CircuitBreakerLayer;
    /// use flowbed_circuitbreaker::{CircuitBreaker, Config, Outcome};
    /// use tower::{Layer, ServiceExt, service_fn};
    ///
    /// /// What the downstream answers (think `http::Response`).
    /// struct Response { status: u16 }
    ///
    /// # futures::executor::block_on(async {
    /// let layer = CircuitBreakerLayer::new(CircuitBreaker::new(Config::default()))
    ///     .classify(|result: &Result<Response, Infallible>| match result {
    ///         Ok(response) if response.status >= 500 => Outcome::Failure,
    ///         _ => Outcome::Success,
    ///     });
    /// let client = layer.layer(service_fn(|_: ()| async { Ok(Response { status: 503 }) }));
    /// let response = client.oneshot(()).await.unwrap();
    /// assert_eq!(response.status, 503); // passed through, and counted as a failure:
    /// assert_eq!(layer.breaker().metrics().failed, 1);
    /// # });
    /// ```
    pub fn classify<F2>(self, classify: F2) -> CircuitBreakerLayer<C, F2> {
        CircuitBreakerLayer {
            breaker: self.breaker,
            classify,
        }
    }

    /// The breaker every service of this layer asks.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_circuitbreaker::tower::CircuitBreakerLayer;
    /// use flowbed_circuitbreaker::{CircuitBreaker, Config, State};
    ///
    /// let layer = CircuitBreakerLayer::new(CircuitBreaker::new(Config::default()));
    /// layer.breaker().transition_to(State::ForcedOpen); // maintenance: refuse every call
    /// assert_eq!(layer.breaker().state(), State::ForcedOpen);
    /// ```
    pub fn breaker(&self) -> &Arc<CircuitBreaker<C>> {
        &self.breaker
    }

    /// How the layer's services count finished calls.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_circuitbreaker::tower::{CircuitBreakerLayer, Classify};
    /// use flowbed_circuitbreaker::{CircuitBreaker, Config, Outcome};
    ///
    /// let layer = CircuitBreakerLayer::new(CircuitBreaker::new(Config::default()));
    /// assert_eq!(layer.classifier().classify(&Err::<(), _>("boom")), Outcome::Failure);
    /// ```
    pub fn classifier(&self) -> &F {
        &self.classify
    }
}

impl<C: Clock> From<CircuitBreaker<C>> for CircuitBreakerLayer<C> {
    fn from(breaker: CircuitBreaker<C>) -> Self {
        Self::new(breaker)
    }
}

impl<C: Clock> From<Arc<CircuitBreaker<C>>> for CircuitBreakerLayer<C> {
    fn from(breaker: Arc<CircuitBreaker<C>>) -> Self {
        Self::new(breaker)
    }
}

impl<S, C: Clock, F: Clone> Layer<S> for CircuitBreakerLayer<C, F> {
    type Service = CircuitBreakerService<S, C, F>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreakerService::new(inner, Arc::clone(&self.breaker), self.classify.clone())
    }
}

impl<C: Clock, F: Clone> Clone for CircuitBreakerLayer<C, F> {
    fn clone(&self) -> Self {
        Self {
            breaker: Arc::clone(&self.breaker),
            classify: self.classify.clone(),
        }
    }
}

impl<C: Clock, F> fmt::Debug for CircuitBreakerLayer<C, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerLayer")
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}
