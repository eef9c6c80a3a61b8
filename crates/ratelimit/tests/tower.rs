//! The tower middleware: shared limits across clones, keyed and weighted checks, typed
//! rejections, pass-through of the inner service's errors, and the response hook.

#![cfg(feature = "tower")]

use std::convert::Infallible;
use std::error::Error;
use std::future::{Ready, ready};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use flowbed_ratelimit::tower::{
    NoHook, Policy, RateLimit, RateLimitError, RateLimitLayer, Rejection, ResponseFuture,
};
use flowbed_ratelimit::{
    Decision, KeyedRateLimiter, ManualClock, Quota, RateLimiter, SlidingWindow,
};
use futures::executor::block_on;
use tower::{Layer, Service, ServiceBuilder, ServiceExt, service_fn};

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

/// `burst` cells, one more every `1 s / burst`.
fn per_second(burst: u32) -> Quota {
    Quota::per_second(nz(burst))
}

/// A request as a service sees it: who sends it and what it costs.
#[derive(Debug, Clone, Copy)]
struct Request {
    client: u32,
    cost: u32,
}

fn request(client: u32) -> Request {
    Request { client, cost: 1 }
}

/// An inner service that counts its calls and answers with the request's client.
#[derive(Debug, Clone, Default)]
struct Counting {
    calls: Arc<AtomicUsize>,
}

impl Counting {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Service<Request> for Counting {
    type Response = u32;
    type Error = Infallible;
    type Future = Ready<Result<u32, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        ready(Ok(request.client))
    }
}

/// Sends `request` through `service` (ready, then call) and returns the outcome.
fn send<S>(service: &mut S, request: Request) -> Result<S::Response, S::Error>
where
    S: Service<Request>,
{
    block_on(async { service.ready().await?.call(request).await })
}

/// The rejection of a refused request; panics if it was admitted or failed otherwise.
fn rejection<T: std::fmt::Debug, E: std::fmt::Debug>(
    outcome: Result<T, RateLimitError<E>>,
) -> Rejection {
    match outcome {
        Err(RateLimitError::Rejected(rejection)) => rejection,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn services_from_clones_of_the_layer_share_one_limit() {
    let clock = ManualClock::new();
    let layer = RateLimitLayer::new(RateLimiter::with_clock(per_second(5), clock.clone()));
    let inner = Counting::default();
    // Two services from two clones of the layer (two routes, say), and clones of those.
    let mut first = layer.clone().layer(inner.clone());
    let mut second = layer.layer(inner.clone());
    let mut third = first.clone();
    let mut admitted = 0;
    for round in 0..20 {
        let service: &mut RateLimit<_, _> = match round % 3 {
            0 => &mut first,
            1 => &mut second,
            _ => &mut third,
        };
        if send(service, request(1)).is_ok() {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 5, "the burst, across all services together");
    assert_eq!(inner.calls(), 5);
    // And all of them see the replenished cell.
    clock.advance(Duration::from_millis(200));
    assert!(send(&mut second, request(1)).is_ok());
    assert!(send(&mut first, request(1)).is_err());
}

#[test]
fn clones_made_by_service_builder_share_one_limit() {
    let clock = ManualClock::new();
    let service = ServiceBuilder::new()
        .layer(RateLimitLayer::new(RateLimiter::with_clock(
            per_second(3),
            clock.clone(),
        )))
        .service(Counting::default());
    // axum's way: a fresh clone of the service for every request.
    let admitted = (0..10)
        .filter(|_| block_on(service.clone().oneshot(request(1))).is_ok())
        .count();
    assert_eq!(admitted, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clones_on_many_threads_admit_the_burst_exactly() {
    const TASKS: usize = 4;
    const ATTEMPTS: usize = 50;
    let clock = ManualClock::new();
    let keyed = RateLimitLayer::keyed(
        KeyedRateLimiter::<u32>::builder(per_second(7))
            .clock(clock.clone())
            .build(),
        |request: &Request| request.client,
    );
    let unkeyed = RateLimitLayer::new(RateLimiter::with_clock(per_second(10), clock.clone()));
    let keyed_service = keyed.layer(Counting::default());
    let unkeyed_service = unkeyed.layer(Counting::default());
    let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (keyed, unkeyed) = (keyed_service.clone(), unkeyed_service.clone());
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                let (mut keyed_admitted, mut unkeyed_admitted) = (0, 0);
                for _ in 0..ATTEMPTS {
                    if keyed.clone().oneshot(request(1)).await.is_ok() {
                        keyed_admitted += 1;
                    }
                    if unkeyed.clone().oneshot(request(1)).await.is_ok() {
                        unkeyed_admitted += 1;
                    }
                }
                (keyed_admitted, unkeyed_admitted)
            })
        })
        .collect();
    let (mut keyed_total, mut unkeyed_total) = (0, 0);
    for task in tasks {
        let (keyed, unkeyed) = task.await.unwrap();
        keyed_total += keyed;
        unkeyed_total += unkeyed;
    }
    assert_eq!(keyed_total, 7);
    assert_eq!(unkeyed_total, 10);
}

#[test]
fn a_sliding_window_works_as_the_limiter_too() {
    let clock = ManualClock::new();
    let layer = RateLimitLayer::new(SlidingWindow::with_clock(
        Quota::per_minute(nz(4)),
        clock.clone(),
    ));
    let mut service = layer.layer(Counting::default());
    let admitted = (0..10)
        .filter(|_| send(&mut service, request(1)).is_ok())
        .count();
    assert_eq!(admitted, 4);
}

#[test]
fn keyed_limits_apply_per_request_field() {
    let clock = ManualClock::new();
    let limiter = KeyedRateLimiter::<u32>::builder(per_second(3))
        .clock(clock.clone())
        .build();
    let inner = Counting::default();
    let layer = RateLimitLayer::keyed(limiter, |request: &Request| request.client);
    let mut service = layer.layer(inner.clone());
    let mut other = layer.layer(inner.clone());

    let alice = (0..10)
        .filter(|_| send(&mut service, request(1)).is_ok())
        .count();
    assert_eq!(alice, 3);
    // Another client has its own limit, on every service of the layer.
    let bob = (0..10)
        .filter(|_| send(&mut other, request(2)).is_ok())
        .count();
    assert_eq!(bob, 3);
    // The inner service answered the admitted requests, with the right client.
    assert_eq!(inner.calls(), 6);
    clock.advance(Duration::from_secs(1));
    assert_eq!(send(&mut other, request(1)).unwrap(), 1);
    assert_eq!(layer.limiter().len(), 2);
}

#[test]
fn weighted_costs_are_spent_exactly() {
    let clock = ManualClock::new();
    let inner = Counting::default();
    let mut service = RateLimitLayer::new(RateLimiter::with_clock(per_second(10), clock.clone()))
        .with_cost(|request: &Request| request.cost)
        .layer(inner.clone());
    let weighted = |cost| Request { client: 1, cost };

    assert!(send(&mut service, weighted(4)).is_ok());
    assert!(send(&mut service, weighted(4)).is_ok());
    // Two cells left: 4 does not fit, and nothing is spent by the refusal.
    let refused = rejection(send(&mut service, weighted(4)));
    let decision = refused.decision().unwrap();
    assert_eq!(decision.remaining(), 2);
    // Two more cells come in 200 ms.
    assert_eq!(decision.retry_after(), Duration::from_millis(200));
    assert!(send(&mut service, weighted(2)).is_ok());
    // A free request goes through even now.
    assert!(send(&mut service, weighted(0)).is_ok());
    assert!(send(&mut service, weighted(1)).is_err());
    // More than the burst can never go through.
    assert_eq!(
        rejection(send(&mut service, weighted(11))),
        Rejection::InsufficientCapacity {
            requested: 11,
            burst: 10
        }
    );
    assert_eq!(inner.calls(), 4);
}

#[test]
fn keyed_weighted_costs_are_spent_from_the_key() {
    let limiter = KeyedRateLimiter::<u32>::builder(per_second(10))
        .clock(ManualClock::new())
        .build();
    let mut service = RateLimitLayer::keyed(limiter, |request: &Request| request.client)
        .with_cost(|request: &Request| request.cost)
        .layer(Counting::default());
    assert!(send(&mut service, Request { client: 1, cost: 7 }).is_ok());
    let refused = rejection(send(&mut service, Request { client: 1, cost: 4 }));
    assert_eq!(refused.decision().unwrap().remaining(), 3);
    assert!(
        send(
            &mut service,
            Request {
                client: 2,
                cost: 10
            }
        )
        .is_ok()
    );
    assert_eq!(
        rejection(send(
            &mut service,
            Request {
                client: 3,
                cost: 11
            }
        )),
        Rejection::InsufficientCapacity {
            requested: 11,
            burst: 10
        }
    );
}

#[test]
fn a_rejection_carries_the_decision_with_retry_after() {
    let clock = ManualClock::new();
    // 2 per second: one cell every 500 ms.
    let layer = RateLimitLayer::new(RateLimiter::with_clock(per_second(2), clock.clone()));
    let mut service = layer.layer(Counting::default());
    assert!(send(&mut service, request(1)).is_ok());
    assert!(send(&mut service, request(1)).is_ok());
    clock.advance(Duration::from_millis(100));

    let refused = rejection(send(&mut service, request(1)));
    let Rejection::Limited(decision) = refused else {
        panic!("expected Limited, got {refused:?}");
    };
    assert!(!decision.is_allowed());
    assert_eq!(decision.limit(), 2);
    assert_eq!(decision.remaining(), 0);
    assert_eq!(decision.retry_after(), Duration::from_millis(400));
    assert_eq!(decision.reset_after(), Duration::from_millis(900));
    assert_eq!(refused.retry_after(), Some(Duration::from_millis(400)));
    assert_eq!(
        refused.to_string(),
        "rate limit exceeded, retry after 400ms"
    );

    // Just before retry_after: still refused; at retry_after: admitted.
    clock.advance(Duration::from_millis(399));
    assert!(send(&mut service, request(1)).is_err());
    clock.advance(Duration::from_millis(1));
    assert!(send(&mut service, request(1)).is_ok());
}

#[test]
fn too_many_keys_is_a_rejection_without_a_decision() {
    let limiter = KeyedRateLimiter::<u32>::builder(per_second(5))
        .clock(ManualClock::new())
        .max_keys(1)
        .build();
    let inner = Counting::default();
    let mut service =
        RateLimitLayer::keyed(limiter, |request: &Request| request.client).layer(inner.clone());
    assert!(send(&mut service, request(1)).is_ok());
    let refused = rejection(send(&mut service, request(2)));
    assert_eq!(refused, Rejection::TooManyKeys { max_keys: 1 });
    assert_eq!(refused.decision(), None);
    assert_eq!(refused.retry_after(), None);
    assert_eq!(
        refused.to_string(),
        "too many keys are rate limited at once (at most 1)"
    );
    assert_eq!(inner.calls(), 1);
}

#[test]
fn the_inner_service_is_not_called_on_rejection() {
    let clock = ManualClock::new();
    let inner = Counting::default();
    let mut service = RateLimitLayer::new(RateLimiter::with_clock(per_second(4), clock.clone()))
        .layer(inner.clone());
    let mut outcomes = Vec::new();
    for _ in 0..10 {
        outcomes.push(send(&mut service, request(1)).is_ok());
    }
    assert_eq!(outcomes.iter().filter(|admitted| **admitted).count(), 4);
    assert_eq!(inner.calls(), 4, "one inner call per admitted request");
    assert!(outcomes[..4].iter().all(|admitted| *admitted));
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("inner failure {0}")]
struct InnerFailure(u32);

#[test]
fn inner_errors_pass_through() {
    let layer = RateLimitLayer::new(RateLimiter::with_clock(per_second(2), ManualClock::new()));
    let mut service = layer.layer(service_fn(|request: Request| async move {
        Err::<u32, _>(InnerFailure(request.client))
    }));
    let error = send(&mut service, request(7)).unwrap_err();
    assert!(matches!(error, RateLimitError::Inner(InnerFailure(7))));
    assert_eq!(error.rejection(), None);
    assert_eq!(error.to_string(), "the inner service failed");
    assert_eq!(error.source().unwrap().to_string(), "inner failure 7");
    assert_eq!(error.into_inner(), Some(InnerFailure(7)));
    // An admitted request spends its cell even when the inner service fails.
    assert!(matches!(
        send(&mut service, request(8)),
        Err(RateLimitError::Inner(InnerFailure(8)))
    ));
    let refused = send(&mut service, request(9)).unwrap_err();
    assert!(refused.source().is_none());
    assert_eq!(
        refused.to_string(),
        "rate limit exceeded, retry after 500ms"
    );
    assert_eq!(refused.into_inner(), None);
}

/// An inner service whose readiness fails.
#[derive(Debug, Clone)]
struct NeverReady;

impl Service<Request> for NeverReady {
    type Response = u32;
    type Error = InnerFailure;
    type Future = Ready<Result<u32, InnerFailure>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), InnerFailure>> {
        Poll::Ready(Err(InnerFailure(0)))
    }

    fn call(&mut self, _request: Request) -> Self::Future {
        unreachable!("never ready, never called")
    }
}

#[test]
fn poll_ready_asks_the_inner_service_and_spends_nothing() {
    let limiter = Arc::new(RateLimiter::with_clock(per_second(1), ManualClock::new()));
    let mut service = RateLimitLayer::from_arc(Arc::clone(&limiter)).layer(NeverReady);
    for _ in 0..3 {
        let error = block_on(service.ready()).unwrap_err();
        assert!(matches!(error, RateLimitError::Inner(InnerFailure(0))));
    }
    // Readiness checks spent no cell: the one cell is still there.
    assert_eq!(limiter.check().remaining(), 0);
    assert!(limiter.check().retry_after() > Duration::ZERO);
}

#[test]
fn the_hook_sees_the_decision_of_admitted_requests_only() {
    let clock = ManualClock::new();
    let hooked = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&hooked);
    let layer = RateLimitLayer::keyed(
        KeyedRateLimiter::<u32>::builder(per_second(3))
            .clock(clock.clone())
            .build(),
        |request: &Request| request.client,
    )
    .on_allowed(
        move |response: &mut (u32, Option<Decision>), decision: &Decision| {
            seen.fetch_add(1, Ordering::SeqCst);
            response.1 = Some(*decision);
        },
    );
    let mut service = layer.layer(service_fn(|request: Request| async move {
        Ok::<_, Infallible>((request.client, None))
    }));
    let remaining: Vec<u32> = (0..3)
        .map(|_| {
            let (client, decision) = send(&mut service, request(5)).unwrap();
            assert_eq!(client, 5);
            decision.unwrap().remaining()
        })
        .collect();
    assert_eq!(remaining, [2, 1, 0]);
    assert!(send(&mut service, request(5)).is_err());
    assert_eq!(
        hooked.load(Ordering::SeqCst),
        3,
        "not run for the rejection"
    );
}

#[test]
fn the_hook_does_not_run_for_inner_errors() {
    let hooked = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&hooked);
    let mut service =
        RateLimitLayer::new(RateLimiter::with_clock(per_second(5), ManualClock::new()))
            .on_allowed(move |_response: &mut u32, _decision: &Decision| {
                seen.fetch_add(1, Ordering::SeqCst);
            })
            .layer(service_fn(|request: Request| async move {
                if request.client == 0 {
                    Err(InnerFailure(0))
                } else {
                    Ok(request.client)
                }
            }));
    assert!(send(&mut service, request(0)).is_err());
    assert_eq!(send(&mut service, request(1)).unwrap(), 1);
    assert_eq!(hooked.load(Ordering::SeqCst), 1);
}

#[test]
fn quota_changes_through_the_layer_apply_to_its_services() {
    let clock = ManualClock::new();
    let layer = RateLimitLayer::keyed(
        KeyedRateLimiter::<u32>::builder(per_second(1))
            .clock(clock.clone())
            .build(),
        |request: &Request| request.client,
    );
    let mut service = layer.layer(Counting::default());
    assert!(send(&mut service, request(1)).is_ok());
    assert!(send(&mut service, request(1)).is_err());
    layer.limiter().set_key_quota(&1, per_second(3));
    // The key keeps its spent cell: 2 of 3 left.
    assert!(send(&mut service, request(1)).is_ok());
    assert!(send(&mut service, request(1)).is_ok());
    assert!(send(&mut service, request(1)).is_err());
}

/// A custom policy: every client gets 2, and all of them together 3.
#[derive(Clone)]
struct ClientAndTotal<C, T> {
    client: C,
    total: T,
}

impl<C: Policy<Request>, T: Policy<Request>> Policy<Request> for ClientAndTotal<C, T> {
    fn check(&self, request: &Request) -> Result<Decision, Rejection> {
        let _ = self.client.check(request)?;
        self.total.check(request)
    }
}

#[test]
fn a_custom_policy_is_enforced() {
    let clock = ManualClock::new();
    let client = RateLimitLayer::keyed(
        KeyedRateLimiter::<u32>::builder(per_second(2))
            .clock(clock.clone())
            .build(),
        |request: &Request| request.client,
    );
    let total = RateLimitLayer::new(RateLimiter::with_clock(per_second(3), clock.clone()));
    let layer = RateLimitLayer::with_policy(ClientAndTotal {
        client: client.policy().clone(),
        total: total.policy().clone(),
    });
    let inner = Counting::default();
    let mut service = layer.layer(inner.clone());
    let admitted: Vec<bool> = [1, 1, 1, 2, 2, 3]
        .into_iter()
        .map(|client| send(&mut service, request(client)).is_ok())
        .collect();
    assert_eq!(admitted, [true, true, false, true, false, false]);
    assert_eq!(inner.calls(), 3);
}

#[test]
fn rejections_and_errors_display_lowercase_without_a_period() {
    let messages = [
        Rejection::InsufficientCapacity {
            requested: 11,
            burst: 10,
        }
        .to_string(),
        Rejection::TooManyKeys { max_keys: 4 }.to_string(),
        RateLimitError::Inner(InnerFailure(1)).to_string(),
        RateLimitError::<InnerFailure>::Rejected(Rejection::TooManyKeys { max_keys: 4 })
            .to_string(),
    ];
    assert_eq!(
        messages[0],
        "the request costs 11 cells, more than the burst of 10"
    );
    for message in messages {
        assert!(message.starts_with(char::is_lowercase), "{message}");
        assert!(!message.ends_with('.'), "{message}");
    }
}

#[test]
fn the_public_types_are_send_sync_and_the_future_is_named() {
    fn send_sync<T: Send + Sync>() {}
    fn unpin<T: Unpin>() {}
    type Keyed = flowbed_ratelimit::tower::Keyed<
        KeyedRateLimiter<u32>,
        fn(&Request) -> u32,
        fn(&Request) -> u32,
    >;
    type Unkeyed = flowbed_ratelimit::tower::Unkeyed<RateLimiter>;
    send_sync::<RateLimitLayer<Unkeyed>>();
    send_sync::<RateLimitLayer<Keyed>>();
    send_sync::<RateLimit<Counting, Unkeyed>>();
    send_sync::<RateLimit<Counting, Keyed>>();
    send_sync::<ResponseFuture<Ready<Result<u32, Infallible>>, NoHook>>();
    send_sync::<RateLimitError<InnerFailure>>();
    send_sync::<Rejection>();
    unpin::<ResponseFuture<Ready<Result<u32, Infallible>>, NoHook>>();

    // The future of a call is the named type, not a box.
    let layer = RateLimitLayer::new(RateLimiter::with_clock(per_second(1), ManualClock::new()));
    let mut service = layer.layer(Counting::default());
    let future: ResponseFuture<Ready<Result<u32, Infallible>>, NoHook> = service.call(request(3));
    assert_eq!(block_on(future).unwrap(), 3);
    assert!(format!("{layer:?}").starts_with("RateLimitLayer"));
    assert!(format!("{:?}", service.call(request(3))).contains("Rejected"));
}
