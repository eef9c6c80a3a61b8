//! `ResponseFuture`: the inner service's future, or a rejection ready at once.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use super::service::OnAllowed;
use super::{RateLimitError, Rejection};
use crate::decision::Decision;

pin_project! {
    /// The future of a [`RateLimit`](super::RateLimit) call: the inner service's response
    /// (passed through the [`OnAllowed`] hook) when the request was admitted, or the
    /// [`Rejection`] at once when it was not. A plain enum over the inner future: no box,
    /// no allocation.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::future::Ready;
    /// use std::num::NonZeroU32;
    /// use flowbed_ratelimit::tower::{NoHook, RateLimitLayer, ResponseFuture};
    /// use flowbed_ratelimit::{Quota, RateLimiter};
    /// use tower::{Layer, Service};
    ///
    /// # futures::executor::block_on(async {
    /// let layer = RateLimitLayer::new(RateLimiter::new(Quota::per_second(NonZeroU32::new(5).unwrap())));
    /// let mut service = layer.layer(tower::service_fn(|n: u8| std::future::ready(Ok::<_, Infallible>(n))));
    /// let future: ResponseFuture<Ready<Result<u8, Infallible>>, NoHook> = service.call(7);
    /// assert_eq!(future.await.unwrap(), 7);
    /// # });
    /// ```
    pub struct ResponseFuture<F, H> {
        #[pin]
        state: State<F, H>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, H> {
        Allowed {
            #[pin]
            future: F,
            decision: Decision,
            hook: H,
        },
        Rejected {
            rejection: Rejection,
        },
    }
}

impl<F, H> ResponseFuture<F, H> {
    pub(super) fn allowed(future: F, decision: Decision, hook: H) -> Self {
        Self {
            state: State::Allowed {
                future,
                decision,
                hook,
            },
        }
    }

    pub(super) fn rejected(rejection: Rejection) -> Self {
        Self {
            state: State::Rejected { rejection },
        }
    }
}

impl<F, H, T, E> Future for ResponseFuture<F, H>
where
    F: Future<Output = Result<T, E>>,
    H: OnAllowed<T>,
{
    type Output = Result<T, RateLimitError<E>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Allowed {
                future,
                decision,
                hook,
            } => {
                let mut response = ready!(future.poll(cx)).map_err(RateLimitError::Inner)?;
                hook.on_allowed(&mut response, decision);
                Poll::Ready(Ok(response))
            }
            StateProj::Rejected { rejection } => {
                Poll::Ready(Err(RateLimitError::Rejected(*rejection)))
            }
        }
    }
}

impl<F, H> fmt::Debug for ResponseFuture<F, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.state {
            State::Allowed { decision, .. } => f
                .debug_struct("ResponseFuture::Allowed")
                .field("decision", decision)
                .finish_non_exhaustive(),
            State::Rejected { rejection } => f
                .debug_struct("ResponseFuture::Rejected")
                .field("rejection", rejection)
                .finish(),
        }
    }
}
