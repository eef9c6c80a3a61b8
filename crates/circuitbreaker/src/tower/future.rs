//! `ResponseFuture`: the inner service's future holding its permit, or a rejection ready
//! at once.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use flowbed_ratelimit::Clock;
use pin_project_lite::pin_project;

use super::classify::Classify;
use crate::{CallError, OwnedCallPermit, Rejected};

pin_project! {
    /// The future of a [`CircuitBreakerService`](super::CircuitBreakerService) call: the
    /// inner service's response when the breaker permitted the call, or
    /// [`CallError::Rejected`] at once when it did not. A plain enum over the inner
    /// future: no box, no allocation.
    ///
    /// A permitted call's future holds its [`OwnedCallPermit`] and records the outcome
    /// (as its [`Classify`] says) when the inner future completes. Dropped before that
    /// (a timeout, a client gone away, a `select!` that picked another branch), it
    /// records nothing and a half-open probe slot is given back: cancelling calls never
    /// leaves the breaker stuck half-open. Dropped while its thread panics (the inner
    /// future panicked), it records a failure.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::future::Ready;
    /// use flowbed_circuitbreaker::tower::{CircuitBreakerLayer, ConfigClassifier, ResponseFuture};
    /// use flowbed_circuitbreaker::{CircuitBreaker, Config, MonotonicClock};
    /// use tower::{Layer, Service};
    ///
    /// # futures::executor::block_on(async {
    /// let layer = CircuitBreakerLayer::new(CircuitBreaker::new(Config::default()));
    /// let mut service = layer.layer(tower::service_fn(|n: u8| std::future::ready(Ok::<_, Infallible>(n))));
    /// let future: ResponseFuture<Ready<Result<u8, Infallible>>, MonotonicClock, ConfigClassifier> =
    ///     service.call(7);
    /// assert_eq!(future.await.unwrap(), 7);
    /// assert_eq!(layer.breaker().metrics().successful, 1);
    /// # });
    /// ```
    pub struct ResponseFuture<Fut, C: Clock, F> {
        #[pin]
        state: State<Fut, C, F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<Fut, C: Clock, F> {
        Called {
            #[pin]
            future: Fut,
            // `None` once the outcome is recorded.
            permit: Option<OwnedCallPermit<C>>,
            classify: F,
        },
        Rejected {
            rejected: Rejected,
        },
    }
}

impl<Fut, C: Clock, F> ResponseFuture<Fut, C, F> {
    pub(super) fn called(future: Fut, permit: OwnedCallPermit<C>, classify: F) -> Self {
        Self {
            state: State::Called {
                future,
                permit: Some(permit),
                classify,
            },
        }
    }

    pub(super) fn rejected(rejected: Rejected) -> Self {
        Self {
            state: State::Rejected { rejected },
        }
    }
}

impl<Fut, C, F, T, E> Future for ResponseFuture<Fut, C, F>
where
    Fut: Future<Output = Result<T, E>>,
    C: Clock,
    F: Classify<T, E>,
{
    type Output = Result<T, CallError<E>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Called {
                future,
                permit,
                classify,
            } => {
                let result = ready!(future.poll(cx));
                if let Some(permit) = permit.take() {
                    permit.record(classify.classify(&result));
                }
                Poll::Ready(result.map_err(CallError::Failed))
            }
            StateProj::Rejected { rejected } => Poll::Ready(Err(CallError::Rejected(*rejected))),
        }
    }
}

impl<Fut, C: Clock, F> fmt::Debug for ResponseFuture<Fut, C, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.state {
            State::Called { permit, .. } => f
                .debug_struct("ResponseFuture::Called")
                .field("permit", permit)
                .finish_non_exhaustive(),
            State::Rejected { rejected } => f
                .debug_struct("ResponseFuture::Rejected")
                .field("rejected", rejected)
                .finish(),
        }
    }
}
