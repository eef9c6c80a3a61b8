//! `RateLimitLayer` and what it checks for a request: a [`Policy`] over one limiter or a
//! keyed one, with a [`Cost`] per request.

use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

use tower_layer::Layer;

use super::Rejection;
use super::service::{NoHook, RateLimit};
use crate::clock::Clock;
use crate::decision::Decision;
use crate::error::KeyedCheckError;
use crate::keyed::KeyedRateLimiter;
use crate::limiter::Limiter;

/// What a [`RateLimit`] service checks for each request: spend the request's cells on a
/// limiter and say whether it may go through.
///
/// [`Unkeyed`] (one limiter for every request) and [`Keyed`] (one limit per key of a
/// [`KeyedRateLimiter`]) cover the usual cases; implement it for anything else, such as a
/// per-client limit and a global one together, and use it with
/// [`RateLimitLayer::with_policy`].
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use flowbed_ratelimit::tower::{Keyed, Policy, RateLimitLayer, Rejection, Unkeyed};
/// use flowbed_ratelimit::{Decision, KeyedRateLimiter, Quota, RateLimiter};
///
/// /// A request: which tenant sends it.
/// struct Request { tenant: u32 }
///
/// /// Each tenant gets 2 per second, and all of them together 3 per second.
/// #[derive(Clone)]
/// struct TenantAndTotal<T, G> { tenant: T, total: G }
///
/// impl<T: Policy<Request>, G: Policy<Request>> Policy<Request> for TenantAndTotal<T, G> {
///     fn check(&self, request: &Request) -> Result<Decision, Rejection> {
///         // (A real policy might give the tenant's cell back when the total refuses.)
///         let _ = self.tenant.check(request)?;
///         self.total.check(request)
///     }
/// }
///
/// let per_tenant = RateLimitLayer::keyed(
///     KeyedRateLimiter::new(Quota::per_second(NonZeroU32::new(2).unwrap())),
///     |request: &Request| request.tenant,
/// );
/// let total = RateLimitLayer::new(RateLimiter::new(Quota::per_second(NonZeroU32::new(3).unwrap())));
/// let policy = TenantAndTotal { tenant: per_tenant.policy().clone(), total: total.policy().clone() };
/// let layer = RateLimitLayer::with_policy(policy);
///
/// let admitted = [1, 1, 1, 2, 2]
///     .into_iter()
///     .filter(|&tenant| layer.policy().check(&Request { tenant }).is_ok())
///     .count();
/// assert_eq!(admitted, 3); // tenant 1: 2 (its third refused), tenant 2: 1 (the total is spent)
/// ```
pub trait Policy<Req> {
    /// Spends `request`'s cells if the limit allows them now and returns the limiter's
    /// decision; spends nothing and says why otherwise.
    ///
    /// # Errors
    ///
    /// The [`Rejection`]: no room now ([`Rejection::Limited`], with the decision), a
    /// request that could never fit, or a key that cannot be tracked.
    fn check(&self, request: &Req) -> Result<Decision, Rejection>;
}

/// How many cells a request spends: the weight of a weighted limit.
///
/// Implemented by every `Fn(&Req) -> u32` and by [`UnitCost`] (1 cell per request, the
/// default). A cost of 0 is always admitted and spends nothing; a cost above the quota's
/// burst is refused with [`Rejection::InsufficientCapacity`].
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use flowbed_ratelimit::tower::{Policy, RateLimitLayer, Rejection};
/// use flowbed_ratelimit::{Quota, RateLimiter};
///
/// /// A batch of events: it costs one cell per event.
/// struct Batch(Vec<u64>);
///
/// let layer = RateLimitLayer::new(RateLimiter::new(Quota::per_hour(NonZeroU32::new(100).unwrap())))
///     .with_cost(|batch: &Batch| u32::try_from(batch.0.len()).unwrap_or(u32::MAX));
/// assert_eq!(layer.policy().check(&Batch(vec![0; 60]))?.remaining(), 40);
/// assert!(matches!(layer.policy().check(&Batch(vec![0; 60])), Err(Rejection::Limited(_))));
/// assert!(matches!(
///     layer.policy().check(&Batch(vec![0; 101])),
///     Err(Rejection::InsufficientCapacity { requested: 101, burst: 100 })
/// ));
/// # Ok::<(), Rejection>(())
/// ```
pub trait Cost<Req> {
    /// The cells `request` spends.
    fn cost(&self, request: &Req) -> u32;
}

impl<Req, F> Cost<Req> for F
where
    F: Fn(&Req) -> u32,
{
    #[inline]
    fn cost(&self, request: &Req) -> u32 {
        self(request)
    }
}

/// The default [`Cost`]: every request spends one cell.
///
/// # Examples
///
/// ```
/// use flowbed_ratelimit::tower::{Cost, UnitCost};
///
/// assert_eq!(UnitCost.cost(&"any request"), 1);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnitCost;

impl<Req> Cost<Req> for UnitCost {
    #[inline]
    fn cost(&self, _request: &Req) -> u32 {
        1
    }
}

/// The [`Policy`] of one limiter for every request (any [`Limiter`]: a
/// [`RateLimiter`](crate::RateLimiter) or a [`SlidingWindow`](crate::SlidingWindow)),
/// with each request spending [`Cost`] cells. Clones share the limiter.
///
/// Made by [`RateLimitLayer::new`] and [`RateLimitLayer::from_arc`].
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use flowbed_ratelimit::tower::{Policy, RateLimitLayer};
/// use flowbed_ratelimit::{Quota, SlidingWindow};
///
/// let layer = RateLimitLayer::new(SlidingWindow::new(Quota::per_minute(NonZeroU32::new(3).unwrap())));
/// let policy = layer.policy().clone(); // shares the window with the layer
/// assert!(policy.check(&()).is_ok());
/// assert_eq!(layer.policy().check(&())?.remaining(), 1);
/// # Ok::<(), flowbed_ratelimit::tower::Rejection>(())
/// ```
pub struct Unkeyed<L, W = UnitCost> {
    limiter: Arc<L>,
    cost: W,
}

impl<L, W> Unkeyed<L, W> {
    /// The limiter every request is checked against.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use flowbed_ratelimit::tower::RateLimitLayer;
    /// use flowbed_ratelimit::{Quota, RateLimiter};
    ///
    /// let quota = Quota::per_second(NonZeroU32::new(5).unwrap());
    /// let layer = RateLimitLayer::new(RateLimiter::new(quota));
    /// assert_eq!(layer.policy().limiter().quota(), quota);
    /// ```
    pub fn limiter(&self) -> &Arc<L> {
        &self.limiter
    }

    /// The cost of a request.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use flowbed_ratelimit::tower::{Cost, RateLimitLayer};
    /// use flowbed_ratelimit::{Quota, RateLimiter};
    ///
    /// let layer = RateLimitLayer::new(RateLimiter::new(Quota::per_second(NonZeroU32::new(5).unwrap())))
    ///     .with_cost(|bytes: &Vec<u8>| bytes.len() as u32);
    /// assert_eq!(layer.policy().cost().cost(&vec![0; 3]), 3);
    /// ```
    pub fn cost(&self) -> &W {
        &self.cost
    }
}

impl<Req, L, W> Policy<Req> for Unkeyed<L, W>
where
    L: Limiter,
    W: Cost<Req>,
{
    #[inline]
    fn check(&self, request: &Req) -> Result<Decision, Rejection> {
        match self.limiter.check_n(self.cost.cost(request)) {
            Ok(decision) if decision.is_allowed() => Ok(decision),
            Ok(decision) => Err(Rejection::Limited(decision)),
            Err(error) => Err(Rejection::InsufficientCapacity {
                requested: error.requested,
                burst: error.burst,
            }),
        }
    }
}

impl<L, W: Clone> Clone for Unkeyed<L, W> {
    fn clone(&self) -> Self {
        Self {
            limiter: Arc::clone(&self.limiter),
            cost: self.cost.clone(),
        }
    }
}

impl<L: fmt::Debug, W> fmt::Debug for Unkeyed<L, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Unkeyed")
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

/// The [`Policy`] of a limit per key: a [`KeyedRateLimiter`], a function from the request
/// to its key (`Fn(&Req) -> K`: a client id, an IP address, a tenant), and a [`Cost`] per
/// request. Clones share the limiter.
///
/// Made by [`RateLimitLayer::keyed`] and [`RateLimitLayer::keyed_from_arc`].
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use flowbed_ratelimit::tower::{Policy, RateLimitLayer};
/// use flowbed_ratelimit::{KeyedRateLimiter, Quota};
///
/// struct Request { client: &'static str }
///
/// let layer = RateLimitLayer::keyed(
///     KeyedRateLimiter::new(Quota::per_minute(NonZeroU32::new(1).unwrap())),
///     |request: &Request| request.client,
/// );
/// let policy = layer.policy();
/// assert!(policy.check(&Request { client: "alice" }).is_ok());
/// assert!(policy.check(&Request { client: "alice" }).is_err());
/// assert!(policy.check(&Request { client: "bob" }).is_ok());
/// assert_eq!(policy.limiter().len(), 2);
/// ```
pub struct Keyed<L, F, W = UnitCost> {
    limiter: Arc<L>,
    key: F,
    cost: W,
}

impl<L, F, W> Keyed<L, F, W> {
    /// The keyed limiter requests are checked against.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use flowbed_ratelimit::tower::RateLimitLayer;
    /// use flowbed_ratelimit::{KeyedRateLimiter, Quota};
    ///
    /// let layer = RateLimitLayer::keyed(
    ///     KeyedRateLimiter::new(Quota::per_second(NonZeroU32::new(5).unwrap())),
    ///     |client: &u64| *client,
    /// );
    /// // Quotas change at run time for every service the layer made:
    /// layer.policy().limiter().set_key_quota(&7, Quota::per_second(NonZeroU32::new(50).unwrap()));
    /// ```
    pub fn limiter(&self) -> &Arc<L> {
        &self.limiter
    }

    /// The function from a request to its key.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use flowbed_ratelimit::tower::RateLimitLayer;
    /// use flowbed_ratelimit::{KeyedRateLimiter, Quota};
    ///
    /// let layer = RateLimitLayer::keyed(
    ///     KeyedRateLimiter::new(Quota::per_second(NonZeroU32::new(5).unwrap())),
    ///     |pair: &(u8, u8)| pair.0,
    /// );
    /// assert_eq!((layer.policy().key())(&(3, 4)), 3);
    /// ```
    pub fn key(&self) -> &F {
        &self.key
    }

    /// The cost of a request.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use flowbed_ratelimit::tower::{Cost, RateLimitLayer};
    /// use flowbed_ratelimit::{KeyedRateLimiter, Quota};
    ///
    /// let layer = RateLimitLayer::keyed(
    ///     KeyedRateLimiter::new(Quota::per_second(NonZeroU32::new(5).unwrap())),
    ///     |pair: &(u8, u32)| pair.0,
    /// )
    /// .with_cost(|pair: &(u8, u32)| pair.1);
    /// assert_eq!(layer.policy().cost().cost(&(3, 4)), 4);
    /// ```
    pub fn cost(&self) -> &W {
        &self.cost
    }
}

impl<Req, K, C, S, F, W> Policy<Req> for Keyed<KeyedRateLimiter<K, C, S>, F, W>
where
    K: Hash + Eq + Clone,
    C: Clock,
    S: BuildHasher + Clone,
    F: Fn(&Req) -> K,
    W: Cost<Req>,
{
    #[inline]
    fn check(&self, request: &Req) -> Result<Decision, Rejection> {
        let key = (self.key)(request);
        match self.limiter.check_n(&key, self.cost.cost(request)) {
            Ok(decision) if decision.is_allowed() => Ok(decision),
            Ok(decision) => Err(Rejection::Limited(decision)),
            Err(KeyedCheckError::InsufficientCapacity { requested, burst }) => {
                Err(Rejection::InsufficientCapacity { requested, burst })
            }
            Err(KeyedCheckError::TooManyKeys { max_keys }) => {
                Err(Rejection::TooManyKeys { max_keys })
            }
        }
    }
}

impl<L, F: Clone, W: Clone> Clone for Keyed<L, F, W> {
    fn clone(&self) -> Self {
        Self {
            limiter: Arc::clone(&self.limiter),
            key: self.key.clone(),
            cost: self.cost.clone(),
        }
    }
}

impl<L: fmt::Debug, F, W> fmt::Debug for Keyed<L, F, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyed")
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

/// A tower [`Layer`] that makes [`RateLimit`] services which all check one shared limiter:
/// clones of the layer, the services it makes and their clones count against the same
/// quota (unlike tower's `RateLimit`, whose clones would each count on their own).
///
/// - [`new`](Self::new) / [`from_arc`](Self::from_arc): one limit for every request.
/// - [`keyed`](Self::keyed) / [`keyed_from_arc`](Self::keyed_from_arc): one limit per key,
///   the key computed from the request.
/// - [`with_cost`](Self::with_cost): weighted, each request spending its cost in cells.
/// - [`on_allowed`](Self::on_allowed): a hook that sees each admitted request's response
///   and [`Decision`] (to set `RateLimit-*` headers, say).
/// - [`with_policy`](Self::with_policy): any other [`Policy`].
///
/// Building services clones the policy: an `Arc` for the limiter plus the key, cost and
/// hook functions (closures without captures are free to clone).
///
/// # Examples
///
/// ```
/// use std::convert::Infallible;
/// use std::num::NonZeroU32;
/// use flowbed_ratelimit::tower::{RateLimitError, RateLimitLayer};
/// use flowbed_ratelimit::{KeyedRateLimiter, Quota};
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
///
/// #[derive(Debug)]
/// struct Request { client: u32, events: u32 }
///
/// # futures::executor::block_on(async {
/// // Each client may send 100 events per second, in requests of any size.
/// let per_client = Quota::per_second(NonZeroU32::new(100).unwrap());
/// let layer = RateLimitLayer::keyed(KeyedRateLimiter::new(per_client), |r: &Request| r.client)
///     .with_cost(|r: &Request| r.events);
/// let service = ServiceBuilder::new()
///     .layer(layer)
///     .service(service_fn(|r: Request| async move { Ok::<_, Infallible>(r.events) }));
///
/// assert_eq!(service.clone().oneshot(Request { client: 1, events: 80 }).await.unwrap(), 80);
/// let refused = service.clone().oneshot(Request { client: 1, events: 30 }).await;
/// assert!(matches!(refused, Err(RateLimitError::Rejected(_)))); // 20 left for client 1
/// assert_eq!(service.oneshot(Request { client: 2, events: 30 }).await.unwrap(), 30);
/// # });
/// ```
#[derive(Clone)]
pub struct RateLimitLayer<P, H = NoHook> {
    policy: P,
    hook: H,
}

impl<L: Limiter> RateLimitLayer<Unkeyed<L>> {
    /// A layer checking every request against `limiter`, one cell each.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use flowbed_ratelimit::tower::RateLimitLayer;
    /// use flowbed_ratelimit::{Quota, RateLimiter};
    ///
    /// let layer = RateLimitLayer::new(RateLimiter::new(Quota::per_second(NonZeroU32::new(1_000).unwrap())));
    /// # let _ = layer;
    /// ```
    pub fn new(limiter: L) -> Self {
        Self::from_arc(Arc::new(limiter))
    }

    /// A layer checking every request against a limiter the caller shares with other code
    /// (to read its state, or to check other work against the same quota).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use std::sync::Arc;
    /// use flowbed_ratelimit::tower::{Policy, RateLimitLayer};
    /// use flowbed_ratelimit::{Quota, RateLimiter};
    ///
    /// let limiter = Arc::new(RateLimiter::new(Quota::per_hour(NonZeroU32::new(2).unwrap())));
    /// let layer = RateLimitLayer::from_arc(Arc::clone(&limiter));
    /// assert!(limiter.check().is_allowed()); // background work spends one cell
    /// assert_eq!(layer.policy().check(&())?.remaining(), 0); // requests get the other
    /// # Ok::<(), flowbed_ratelimit::tower::Rejection>(())
    /// ```
    pub fn from_arc(limiter: Arc<L>) -> Self {
        Self {
            policy: Unkeyed {
                limiter,
                cost: UnitCost,
            },
            hook: NoHook,
        }
    }
}

impl<K, C, S, F> RateLimitLayer<Keyed<KeyedRateLimiter<K, C, S>, F>>
where
    K: Hash + Eq + Clone,
    C: Clock,
    S: BuildHasher + Clone,
{
    /// A layer checking each request against the limit of its key, `key(&request)`, one
    /// cell each.
    ///
    /// The key function runs once per request, before the check; keys are compared by
    /// `Eq`, so cheap keys (an `IpAddr`, an integer id, an `http::HeaderValue`) keep the
    /// check cheap.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::IpAddr;
    /// use std::num::NonZeroU32;
    /// use flowbed_ratelimit::tower::RateLimitLayer;
    /// use flowbed_ratelimit::{KeyedRateLimiter, Quota};
    ///
    /// struct Request { peer: IpAddr, path: String }
    ///
    /// let layer = RateLimitLayer::keyed(
    ///     KeyedRateLimiter::<IpAddr>::new(Quota::per_second(NonZeroU32::new(10).unwrap())),
    ///     |request: &Request| request.peer,
    /// );
    /// # let _ = layer;
    /// ```
    pub fn keyed<Req>(limiter: KeyedRateLimiter<K, C, S>, key: F) -> Self
    where
        F: Fn(&Req) -> K,
    {
        Self::keyed_from_arc(Arc::new(limiter), key)
    }

    /// A layer checking each request against the limit of its key in a keyed limiter the
    /// caller shares with other code (to change quotas at run time, or to read it).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use std::sync::Arc;
    /// use flowbed_ratelimit::tower::{Policy, RateLimitLayer};
    /// use flowbed_ratelimit::{KeyedRateLimiter, Quota};
    ///
    /// let limiter = Arc::new(KeyedRateLimiter::<u32>::new(Quota::per_hour(NonZeroU32::new(1).unwrap())));
    /// let layer = RateLimitLayer::keyed_from_arc(Arc::clone(&limiter), |tenant: &u32| *tenant);
    /// assert!(layer.policy().check(&7).is_ok());
    /// assert!(layer.policy().check(&7).is_err());
    /// limiter.set_key_quota(&7, Quota::per_hour(NonZeroU32::new(10).unwrap())); // tenant 7 upgrades
    /// assert!(layer.policy().check(&7).is_ok());
    /// ```
    pub fn keyed_from_arc<Req>(limiter: Arc<KeyedRateLimiter<K, C, S>>, key: F) -> Self
    where
        F: Fn(&Req) -> K,
    {
        Self {
            policy: Keyed {
                limiter,
                key,
                cost: UnitCost,
            },
            hook: NoHook,
        }
    }
}

impl<P> RateLimitLayer<P> {
    /// A layer checking requests with a [`Policy`] of your own.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_ratelimit::Decision;
    /// use flowbed_ratelimit::tower::{Policy, RateLimitLayer, Rejection};
    ///
    /// /// Refuses every request that would need more than it has (here: everything).
    /// #[derive(Clone)]
    /// struct Closed;
    ///
    /// impl<Req> Policy<Req> for Closed {
    ///     fn check(&self, _request: &Req) -> Result<Decision, Rejection> {
    ///         Err(Rejection::InsufficientCapacity { requested: 1, burst: 0 })
    ///     }
    /// }
    ///
    /// let layer = RateLimitLayer::with_policy(Closed);
    /// assert!(layer.policy().check(&"anything").is_err());
    /// ```
    pub fn with_policy(policy: P) -> Self {
        Self {
            policy,
            hook: NoHook,
        }
    }
}

impl<L, W, H> RateLimitLayer<Unkeyed<L, W>, H> {
    /// Makes each request spend `cost(&request)` cells instead of one (see [`Cost`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use flowbed_ratelimit::tower::{Policy, RateLimitLayer};
    /// use flowbed_ratelimit::{Quota, RateLimiter};
    ///
    /// // 1 MiB per second of request bodies, in bursts of up to 4 MiB.
    /// let bytes = Quota::per_second(NonZeroU32::new(1 << 20).unwrap())
    ///     .allow_burst(NonZeroU32::new(4 << 20).unwrap());
    /// let layer = RateLimitLayer::new(RateLimiter::new(bytes))
    ///     .with_cost(|body: &Vec<u8>| u32::try_from(body.len()).unwrap_or(u32::MAX));
    /// assert_eq!(layer.policy().check(&vec![0; 1 << 20])?.remaining(), 3 << 20);
    /// # Ok::<(), flowbed_ratelimit::tower::Rejection>(())
    /// ```
    pub fn with_cost<W2>(self, cost: W2) -> RateLimitLayer<Unkeyed<L, W2>, H> {
        RateLimitLayer {
            policy: Unkeyed {
                limiter: self.policy.limiter,
                cost,
            },
            hook: self.hook,
        }
    }

    /// The limiter every request is checked against.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use flowbed_ratelimit::tower::RateLimitLayer;
    /// use flowbed_ratelimit::{Quota, RateLimiter};
    ///
    /// let layer = RateLimitLayer::new(RateLimiter::new(Quota::per_second(NonZeroU32::new(5).unwrap())));
    /// assert!(layer.limiter().check().is_allowed());
    /// ```
    pub fn limiter(&self) -> &Arc<L> {
        &self.policy.limiter
    }
}

impl<L, F, W, H> RateLimitLayer<Keyed<L, F, W>, H> {
    /// Makes each request spend `cost(&request)` cells of its key's quota instead of one
    /// (see [`Cost`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use flowbed_ratelimit::tower::{Policy, RateLimitLayer};
    /// use flowbed_ratelimit::{KeyedRateLimiter, Quota};
    ///
    /// struct Query { tenant: u32, expensive: bool }
    ///
    /// let layer = RateLimitLayer::keyed(
    ///     KeyedRateLimiter::new(Quota::per_minute(NonZeroU32::new(10).unwrap())),
    ///     |query: &Query| query.tenant,
    /// )
    /// .with_cost(|query: &Query| if query.expensive { 5 } else { 1 });
    /// assert_eq!(layer.policy().check(&Query { tenant: 1, expensive: true })?.remaining(), 5);
    /// # Ok::<(), flowbed_ratelimit::tower::Rejection>(())
    /// ```
    pub fn with_cost<W2>(self, cost: W2) -> RateLimitLayer<Keyed<L, F, W2>, H> {
        RateLimitLayer {
            policy: Keyed {
                limiter: self.policy.limiter,
                key: self.policy.key,
                cost,
            },
            hook: self.hook,
        }
    }

    /// The keyed limiter requests are checked against: change quotas through it at run
    /// time, for every service the layer made.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use flowbed_ratelimit::tower::RateLimitLayer;
    /// use flowbed_ratelimit::{KeyedRateLimiter, Quota};
    ///
    /// let layer = RateLimitLayer::keyed(
    ///     KeyedRateLimiter::new(Quota::per_second(NonZeroU32::new(5).unwrap())),
    ///     |client: &u64| *client,
    /// );
    /// layer.limiter().set_quota(Quota::per_second(NonZeroU32::new(20).unwrap()));
    /// assert_eq!(layer.limiter().quota().burst(), 20);
    /// ```
    pub fn limiter(&self) -> &Arc<L> {
        &self.policy.limiter
    }
}

impl<P, H> RateLimitLayer<P, H> {
    /// Runs `hook(&mut response, &decision)` on the response of every admitted request
    /// whose inner service succeeded, with the [`Decision`] that admitted it: how an HTTP
    /// server sets `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` on its
    /// `200`s. Any `Fn(&mut Response, &Decision)` (or [`OnAllowed`](super::OnAllowed)
    /// implementation) will do; it must be `Clone` for the services to be.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::num::NonZeroU32;
    /// use flowbed_ratelimit::tower::RateLimitLayer;
    /// use flowbed_ratelimit::{Decision, Quota, RateLimiter};
    /// use tower::{Layer, ServiceExt, service_fn};
    ///
    /// #[derive(Debug, Default)]
    /// struct Response { body: String, remaining: Option<u32> }
    ///
    /// # futures::executor::block_on(async {
    /// let layer = RateLimitLayer::new(RateLimiter::new(Quota::per_hour(NonZeroU32::new(10).unwrap())))
    ///     .on_allowed(|response: &mut Response, decision: &Decision| {
    ///         response.remaining = Some(decision.remaining());
    ///     });
    /// let service = layer.layer(service_fn(|_request: ()| async {
    ///     Ok::<_, Infallible>(Response { body: "hello".into(), ..Response::default() })
    /// }));
    /// let response = service.oneshot(()).await.unwrap();
    /// assert_eq!((response.body.as_str(), response.remaining), ("hello", Some(9)));
    /// # });
    /// ```
    pub fn on_allowed<H2>(self, hook: H2) -> RateLimitLayer<P, H2> {
        RateLimitLayer {
            policy: self.policy,
            hook,
        }
    }

    /// What the layer's services check for each request.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use flowbed_ratelimit::tower::{Policy, RateLimitLayer};
    /// use flowbed_ratelimit::{Quota, RateLimiter};
    ///
    /// let layer = RateLimitLayer::new(RateLimiter::new(Quota::per_second(NonZeroU32::new(5).unwrap())));
    /// // Check work that does not go through a service against the same quota:
    /// assert!(layer.policy().check(&()).is_ok());
    /// ```
    pub fn policy(&self) -> &P {
        &self.policy
    }
}

impl<Svc, P: Clone, H: Clone> Layer<Svc> for RateLimitLayer<P, H> {
    type Service = RateLimit<Svc, P, H>;

    fn layer(&self, inner: Svc) -> Self::Service {
        RateLimit::new(inner, self.policy.clone(), self.hook.clone())
    }
}

impl<P: fmt::Debug, H> fmt::Debug for RateLimitLayer<P, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}
