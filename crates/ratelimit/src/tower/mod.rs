//! tower middleware: [`RateLimitLayer`] refuses requests over a quota, for one limit shared
//! by every request or one limit per key (client, tenant, API key), weighted by a cost.
//!
//! # Why not tower's `RateLimit`
//!
//! tower's `RateLimit` keeps its state in the service value and is not `Clone`, so under
//! axum (which clones the service for every request, and builds one per route) each clone
//! counts on its own and the limit does not hold (tower issue 794). It also only delays:
//! a client over its quota waits in the server instead of being told when to come back.
//!
//! Here every clone of a [`RateLimitLayer`] and every [`RateLimit`] service it makes (and
//! every clone of those) checks the **same** limiter, held in an `Arc`: one quota, however
//! many routes, clones and connections. A request over the quota is answered at once with
//! [`RateLimitError::Rejected`], whose [`Rejection`] says why and, when the quota is merely
//! spent, carries the [`Decision`] with `retry_after`, `limit`,
//! `remaining` and `reset_after`: what an HTTP server turns into `429 Too Many Requests`
//! with `Retry-After` and `RateLimit-*` headers. The inner service is not called.
//!
//! # Checked in `call`, not in `poll_ready`
//!
//! tower's `poll_ready` does not see the request, so a limit per key, or weighted by the
//! request's cost, can only be decided in `call`. Unkeyed limits are decided there too,
//! for the same reason and one more: a service may be polled ready and then dropped
//! without a call (axum clones a service, polls the clone, and calls it), and a cell spent
//! in `poll_ready` would then be lost. So `poll_ready` only asks the inner service, and
//! `call` checks the limiter and either calls the inner service or answers with the
//! rejection. A rejected call leaves the inner service's readiness unused, for the next
//! call (or until the service is dropped, which is what axum does with its per-request
//! clone).
//!
//! # Telling admitted clients what is left
//!
//! A response cannot be built generically, but one can be touched: give the layer a hook
//! with [`on_allowed`](RateLimitLayer::on_allowed), and it runs on every response of an
//! admitted request with that request's [`Decision`]. With `http`
//! responses it sets the `RateLimit-*` headers on `200`s too (see the `ratelimit_axum`
//! example of the `flowbed` repository). The default hook, [`NoHook`], does nothing and
//! costs nothing.
//!
//! # The parts
//!
//! | type | role |
//! |---|---|
//! | [`RateLimitLayer`] | builds [`RateLimit`] services that share one limiter |
//! | [`RateLimit`] | the service: checks, then calls the inner service or rejects |
//! | [`ResponseFuture`] | its future: a named type, no box |
//! | [`Policy`], [`Unkeyed`], [`Keyed`] | what is checked for a request: one limiter, or a key's |
//! | [`Cost`], [`UnitCost`] | how many cells a request spends (weighted limits) |
//! | [`OnAllowed`], [`NoHook`] | what to do with the response of an admitted request |
//! | [`RateLimitError`], [`Rejection`] | the service's error, and why a request was refused |
//!
//! # Examples
//!
//! ```
//! use std::convert::Infallible;
//! use std::num::NonZeroU32;
//! use flowbed_ratelimit::tower::{RateLimitError, RateLimitLayer, Rejection};
//! use flowbed_ratelimit::{ManualClock, Quota, RateLimiter};
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # futures::executor::block_on(async {
//! let quota = Quota::per_second(NonZeroU32::new(2).unwrap());
//! let layer = RateLimitLayer::new(RateLimiter::with_clock(quota, ManualClock::new()));
//! let echo = service_fn(|request: &'static str| async move { Ok::<_, Infallible>(request) });
//!
//! // Two services made by the layer (say, two routes) share the quota of 2.
//! let first = layer.layer(echo);
//! let second = layer.layer(echo);
//! assert_eq!(first.clone().oneshot("a").await.unwrap(), "a");
//! assert_eq!(second.clone().oneshot("b").await.unwrap(), "b");
//! match first.oneshot("c").await {
//!     Err(RateLimitError::Rejected(Rejection::Limited(decision))) => {
//!         assert_eq!(decision.retry_after().as_millis(), 500);
//!     }
//!     other => panic!("expected a rejection, got {other:?}"),
//! }
//! # });
//! ```

mod future;
mod layer;
mod service;

use std::error::Error;
use std::fmt;
use std::time::Duration;

use crate::decision::Decision;

pub use future::ResponseFuture;
pub use layer::{Cost, Keyed, Policy, RateLimitLayer, UnitCost, Unkeyed};
pub use service::{NoHook, OnAllowed, RateLimit};

/// Why a [`RateLimit`] service refused a request without calling its inner service.
///
/// [`Limited`](Self::Limited) is the common case: the quota has no room now, and the
/// [`Decision`] says when it will (`retry_after`) and what the quota is. The other two
/// are refusals that waiting does not cure.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use std::time::Duration;
/// use flowbed_ratelimit::tower::{Policy, Rejection, RateLimitLayer};
/// use flowbed_ratelimit::{ManualClock, Quota, RateLimiter};
///
/// let quota = Quota::per_second(NonZeroU32::new(1).unwrap());
/// let layer = RateLimitLayer::new(RateLimiter::with_clock(quota, ManualClock::new()));
/// assert!(layer.policy().check(&()).is_ok());
/// let rejection = layer.policy().check(&()).unwrap_err();
/// assert!(matches!(rejection, Rejection::Limited(_)));
/// assert_eq!(rejection.retry_after(), Some(Duration::from_secs(1)));
/// assert_eq!(rejection.to_string(), "rate limit exceeded, retry after 1s");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// The quota has no room for the request now; the decision says when it will
    /// ([`Decision::retry_after`]) and what the quota is.
    Limited(Decision),
    /// The request costs more cells than the quota's burst: it can never be admitted,
    /// however long the client waits.
    InsufficientCapacity {
        /// The cells the request costs.
        requested: u32,
        /// The most cells the quota admits at once.
        burst: u32,
    },
    /// The request's key is new and the keyed limiter already tracks as many busy keys as
    /// it may (see [`KeyedBuilder::max_keys`](crate::KeyedBuilder::max_keys)).
    TooManyKeys {
        /// The configured cap on tracked keys.
        max_keys: usize,
    },
}

impl Rejection {
    /// The limiter's decision, when the request was refused for lack of room now.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_ratelimit::tower::Rejection;
    ///
    /// assert_eq!(Rejection::TooManyKeys { max_keys: 10 }.decision(), None);
    /// ```
    pub fn decision(&self) -> Option<Decision> {
        match self {
            Self::Limited(decision) => Some(*decision),
            Self::InsufficientCapacity { .. } | Self::TooManyKeys { .. } => None,
        }
    }

    /// How long the client should wait before sending the same request again; `None`
    /// when waiting would not help ([`InsufficientCapacity`](Self::InsufficientCapacity))
    /// or the wait is unknown ([`TooManyKeys`](Self::TooManyKeys)).
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_ratelimit::tower::Rejection;
    ///
    /// let too_big = Rejection::InsufficientCapacity { requested: 20, burst: 10 };
    /// assert_eq!(too_big.retry_after(), None);
    /// ```
    pub fn retry_after(&self) -> Option<Duration> {
        self.decision().map(|decision| decision.retry_after())
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Limited(decision) => write!(
                f,
                "rate limit exceeded, retry after {:?}",
                decision.retry_after()
            ),
            Self::InsufficientCapacity { requested, burst } => write!(
                f,
                "the request costs {requested} cells, more than the burst of {burst}"
            ),
            Self::TooManyKeys { max_keys } => write!(
                f,
                "too many keys are rate limited at once (at most {max_keys})"
            ),
        }
    }
}

impl Error for Rejection {}

/// The error of a [`RateLimit`] service: the request was refused by the limiter, or the
/// inner service failed.
///
/// # Examples
///
/// ```
/// use std::error::Error;
/// use std::num::NonZeroU32;
/// use flowbed_ratelimit::tower::{RateLimitError, RateLimitLayer, Rejection};
/// use flowbed_ratelimit::{Quota, RateLimiter};
/// use tower::{Layer, ServiceExt, service_fn};
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("disk full")]
/// struct DiskFull;
///
/// # futures::executor::block_on(async {
/// let layer = RateLimitLayer::new(RateLimiter::new(Quota::per_hour(NonZeroU32::new(1).unwrap())));
/// let failing = layer.layer(service_fn(|_request: ()| async { Err::<(), _>(DiskFull) }));
///
/// let error = failing.clone().oneshot(()).await.unwrap_err(); // admitted, then failed
/// assert!(matches!(error, RateLimitError::Inner(DiskFull)));
/// assert_eq!(error.to_string(), "the inner service failed");
/// assert_eq!(error.source().unwrap().to_string(), "disk full");
///
/// let error = failing.oneshot(()).await.unwrap_err(); // refused: the hour's one is spent
/// assert!(matches!(error.rejection(), Some(Rejection::Limited(_))));
/// # });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RateLimitError<E> {
    /// The limiter refused the request; the inner service was not called.
    Rejected(Rejection),
    /// The request was admitted and the inner service failed (in `poll_ready` or in its
    /// response future) with this error.
    Inner(E),
}

impl<E> RateLimitError<E> {
    /// Why the request was refused, if it was.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_ratelimit::tower::{RateLimitError, Rejection};
    ///
    /// let error = RateLimitError::<std::io::Error>::Rejected(Rejection::TooManyKeys { max_keys: 1 });
    /// assert_eq!(error.rejection(), Some(&Rejection::TooManyKeys { max_keys: 1 }));
    /// ```
    pub fn rejection(&self) -> Option<&Rejection> {
        match self {
            Self::Rejected(rejection) => Some(rejection),
            Self::Inner(_) => None,
        }
    }

    /// The inner service's error, if that is what this is.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_ratelimit::tower::RateLimitError;
    ///
    /// assert_eq!(RateLimitError::Inner("boom").into_inner(), Some("boom"));
    /// ```
    pub fn into_inner(self) -> Option<E> {
        match self {
            Self::Inner(error) => Some(error),
            Self::Rejected(_) => None,
        }
    }
}

impl<E> From<Rejection> for RateLimitError<E> {
    fn from(rejection: Rejection) -> Self {
        Self::Rejected(rejection)
    }
}

impl<E> fmt::Display for RateLimitError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rejected(rejection) => fmt::Display::fmt(rejection, f),
            Self::Inner(_) => f.write_str("the inner service failed"),
        }
    }
}

impl<E: Error + 'static> Error for RateLimitError<E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Rejected(_) => None,
            Self::Inner(error) => Some(error),
        }
    }
}
