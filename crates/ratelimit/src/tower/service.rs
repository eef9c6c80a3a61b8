//! `RateLimit`: the service a [`RateLimitLayer`](super::RateLimitLayer) makes.

use std::fmt;
use std::task::{Context, Poll};

use tower_service::Service;

use super::RateLimitError;
use super::future::ResponseFuture;
use super::layer::Policy;
use crate::decision::Decision;

/// What to do with the response of an admitted request, knowing the [`Decision`] that
/// admitted it (set `RateLimit-*` headers, record remaining capacity). Implemented by
/// every `Fn(&mut Response, &Decision)` and by [`NoHook`], which does nothing.
///
/// Set it with [`RateLimitLayer::on_allowed`](super::RateLimitLayer::on_allowed). It runs
/// when the inner service's future completes successfully, on the response it produced;
/// not for rejected requests, nor for inner errors.
///
/// # Examples
///
/// ```
/// use flowbed_ratelimit::Decision;
/// use flowbed_ratelimit::tower::OnAllowed;
///
/// /// Appends the remaining capacity to a text response.
/// #[derive(Clone)]
/// struct AppendRemaining;
///
/// impl OnAllowed<String> for AppendRemaining {
///     fn on_allowed(&self, response: &mut String, decision: &Decision) {
///         response.push_str(&format!(" ({} left)", decision.remaining()));
///     }
/// }
/// # let _ = AppendRemaining;
/// ```
pub trait OnAllowed<Response> {
    /// Called with the response of an admitted request and its decision.
    fn on_allowed(&self, response: &mut Response, decision: &Decision);
}

impl<Response, F> OnAllowed<Response> for F
where
    F: Fn(&mut Response, &Decision),
{
    #[inline]
    fn on_allowed(&self, response: &mut Response, decision: &Decision) {
        self(response, decision)
    }
}

/// The default [`OnAllowed`]: leaves responses as they are.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use flowbed_ratelimit::tower::{NoHook, OnAllowed};
/// use flowbed_ratelimit::{Quota, RateLimiter};
///
/// let decision = RateLimiter::new(Quota::per_second(NonZeroU32::new(1).unwrap())).check();
/// let mut response = "unchanged";
/// NoHook.on_allowed(&mut response, &decision);
/// assert_eq!(response, "unchanged");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoHook;

impl<Response> OnAllowed<Response> for NoHook {
    #[inline]
    fn on_allowed(&self, _response: &mut Response, _decision: &Decision) {}
}

/// A tower service that checks each request against a rate limit [`Policy`] before
/// handing it to the inner service; made by
/// [`RateLimitLayer`](super::RateLimitLayer).
///
/// - `poll_ready` asks the inner service only (it cannot see the request, so it cannot
///   check a keyed or weighted limit; see the [module docs](super)).
/// - `call` checks the policy. Admitted: calls the inner service, and its
///   [`ResponseFuture`] runs the [`OnAllowed`] hook on the response. Refused: does not
///   call the inner service; the future is ready at once with
///   [`RateLimitError::Rejected`].
///
/// Clones share the limiter (they clone the policy, which holds it in an `Arc`).
///
/// # Examples
///
/// ```
/// use std::convert::Infallible;
/// use std::num::NonZeroU32;
/// use flowbed_ratelimit::tower::{RateLimitLayer, Rejection};
/// use flowbed_ratelimit::{ManualClock, Quota, RateLimiter};
/// use tower::{Layer, Service, ServiceExt, service_fn};
///
/// # futures::executor::block_on(async {
/// let quota = Quota::per_second(NonZeroU32::new(3).unwrap());
/// let mut service = RateLimitLayer::new(RateLimiter::with_clock(quota, ManualClock::new()))
///     .layer(service_fn(|n: u32| async move { Ok::<_, Infallible>(n * 2) }));
///
/// let mut answers = Vec::new();
/// for n in 0..5 {
///     let answer = service.ready().await.unwrap().call(n).await;
///     answers.push(answer.map_err(|error| error.rejection().copied()));
/// }
/// assert_eq!(answers[..3], [Ok(0), Ok(2), Ok(4)]);
/// assert!(matches!(answers[3], Err(Some(Rejection::Limited(_)))));
/// # });
/// ```
#[derive(Clone)]
pub struct RateLimit<S, P, H = NoHook> {
    inner: S,
    policy: P,
    hook: H,
}

impl<S, P, H> RateLimit<S, P, H> {
    pub(super) fn new(inner: S, policy: P, hook: H) -> Self {
        Self {
            inner,
            policy,
            hook,
        }
    }

    /// The inner service.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use flowbed_ratelimit::tower::RateLimitLayer;
    /// use flowbed_ratelimit::{Quota, RateLimiter};
    /// use tower::Layer;
    ///
    /// let layer = RateLimitLayer::new(RateLimiter::new(Quota::per_second(NonZeroU32::new(5).unwrap())));
    /// let service = layer.layer("inner");
    /// assert_eq!(*service.get_ref(), "inner");
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use flowbed_ratelimit::tower::RateLimitLayer;
    /// use flowbed_ratelimit::{Quota, RateLimiter};
    /// use tower::Layer;
    ///
    /// let layer = RateLimitLayer::new(RateLimiter::new(Quota::per_second(NonZeroU32::new(5).unwrap())));
    /// let mut service = layer.layer(1_u32);
    /// *service.get_mut() += 1;
    /// assert_eq!(*service.get_ref(), 2);
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, without the rate limit.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use flowbed_ratelimit::tower::RateLimitLayer;
    /// use flowbed_ratelimit::{Quota, RateLimiter};
    /// use tower::Layer;
    ///
    /// let layer = RateLimitLayer::new(RateLimiter::new(Quota::per_second(NonZeroU32::new(5).unwrap())));
    /// assert_eq!(layer.layer("inner").into_inner(), "inner");
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// What this service checks for each request (shared with the layer that made it).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use std::sync::Arc;
    /// use flowbed_ratelimit::tower::RateLimitLayer;
    /// use flowbed_ratelimit::{Quota, RateLimiter};
    /// use tower::Layer;
    ///
    /// let layer = RateLimitLayer::new(RateLimiter::new(Quota::per_second(NonZeroU32::new(5).unwrap())));
    /// let service = layer.layer(());
    /// assert!(Arc::ptr_eq(service.policy().limiter(), layer.limiter()));
    /// ```
    pub fn policy(&self) -> &P {
        &self.policy
    }
}

impl<S, P, H, Req> Service<Req> for RateLimit<S, P, H>
where
    S: Service<Req>,
    P: Policy<Req>,
    H: OnAllowed<S::Response> + Clone,
{
    type Response = S::Response;
    type Error = RateLimitError<S::Error>;
    type Future = ResponseFuture<S::Future, H>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(RateLimitError::Inner)
    }

    #[inline]
    fn call(&mut self, request: Req) -> Self::Future {
        match self.policy.check(&request) {
            Ok(decision) => {
                ResponseFuture::allowed(self.inner.call(request), decision, self.hook.clone())
            }
            Err(rejection) => ResponseFuture::rejected(rejection),
        }
    }
}

impl<S: fmt::Debug, P: fmt::Debug, H> fmt::Debug for RateLimit<S, P, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("inner", &self.inner)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}
