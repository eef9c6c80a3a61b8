//! The tower middleware: permitted calls pass through and are recorded when they
//! complete; failures open the breaker and rejected calls never reach the inner service;
//! every layer and service clone shares one breaker; classifiers; cancellation and panics
//! in half-open and closed; non-`Clone` inner services; `ServiceBuilder` composition.

#![cfg(feature = "tower")]

mod common;

use std::convert::Infallible;
use std::future::{Pending, Ready, pending, ready};
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use common::{manual, secs};
use flowbed_circuitbreaker::tower::{
    CircuitBreakerLayer, CircuitBreakerService, Classify, ConfigClassifier, ResponseFuture,
};
use flowbed_circuitbreaker::{
    CallError, CircuitBreaker, Config, ConfigBuilder, ManualClock, Outcome, Rejected, State,
    WaitInOpen,
};
use futures::executor::block_on;
use futures::future::Either;
use tower::{Layer, Service, ServiceBuilder, ServiceExt, service_fn};

/// What the downstream is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    /// Answer `Ok(200)`.
    Ok,
    /// Answer `Ok(status)`.
    Status(u16),
    /// Fail with an `io::Error` of this kind.
    Fail(io::ErrorKind),
    /// Never answer.
    Hang,
}

type Answer = Result<u16, io::Error>;

/// A downstream service that counts the calls that reach it.
#[derive(Debug, Clone, Default)]
struct Downstream {
    calls: Arc<AtomicUsize>,
}

impl Downstream {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Service<Call> for Downstream {
    type Response = u16;
    type Error = io::Error;
    type Future = Either<Ready<Answer>, Pending<Answer>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: Call) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match call {
            Call::Ok => Either::Left(ready(Ok(200))),
            Call::Status(status) => Either::Left(ready(Ok(status))),
            Call::Fail(kind) => Either::Left(ready(Err(kind.into()))),
            Call::Hang => Either::Right(pending()),
        }
    }
}

const TIMEOUT: Call = Call::Fail(io::ErrorKind::TimedOut);

/// A breaker on a manual clock in an `Arc`, and the clock.
fn breaker(builder: ConfigBuilder) -> (Arc<CircuitBreaker<ManualClock>>, ManualClock) {
    let (breaker, clock) = manual(builder);
    (Arc::new(breaker), clock)
}

/// A breaker that opens when 2 of the last 4 calls failed and lets `probes` calls through
/// in half-open after 10 s.
fn small(probes: u32) -> ConfigBuilder {
    Config::builder()
        .count_window(4)
        .minimum_calls(4)
        .wait_in_open(WaitInOpen::Fixed(secs(10)))
        .permitted_calls_in_half_open(probes)
}

/// Sends `request` through `service` (ready, then call) and returns the answer.
fn send<S: Service<R>, R>(service: &mut S, request: R) -> Result<S::Response, S::Error> {
    block_on(async { service.ready().await?.call(request).await })
}

/// The rejection of a refused call; panics if the call was permitted.
fn rejection<T: std::fmt::Debug, E: std::fmt::Debug>(answer: Result<T, CallError<E>>) -> Rejected {
    match answer {
        Err(CallError::Rejected(rejected)) => rejected,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

/// Opens `breaker` through `service` with 2 timeouts after 2 successes.
fn open_through<S>(service: &mut S)
where
    S: Service<Call, Response = u16, Error = CallError<io::Error>>,
{
    assert_eq!(send(service, Call::Ok).unwrap(), 200);
    assert!(matches!(send(service, TIMEOUT), Err(CallError::Failed(_))));
    assert_eq!(send(service, Call::Ok).unwrap(), 200);
    assert!(matches!(send(service, TIMEOUT), Err(CallError::Failed(_))));
}

#[test]
fn successes_pass_through_and_are_recorded_when_they_complete() {
    let (breaker, _clock) = breaker(small(1));
    let downstream = Downstream::default();
    let mut service = CircuitBreakerLayer::new(Arc::clone(&breaker)).layer(downstream.clone());

    for status in [200, 201, 204] {
        assert_eq!(send(&mut service, Call::Status(status)).unwrap(), status);
    }
    assert_eq!(downstream.calls(), 3);

    // The outcome is recorded by the response future, not by `call`.
    block_on(service.ready()).unwrap();
    let future = service.call(Call::Ok);
    assert_eq!(downstream.calls(), 4);
    assert_eq!(breaker.metrics().calls, 3);
    assert_eq!(block_on(future).unwrap(), 200);
    let metrics = breaker.metrics();
    assert_eq!(
        (metrics.calls, metrics.successful, metrics.failed),
        (4, 4, 0)
    );
    assert_eq!(metrics.state, State::Closed);
}

#[test]
fn failures_open_the_breaker_and_rejected_calls_never_reach_the_inner_service() {
    let (breaker, clock) = breaker(small(1));
    let downstream = Downstream::default();
    let mut service = CircuitBreakerLayer::new(Arc::clone(&breaker)).layer(downstream.clone());

    open_through(&mut service);
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(downstream.calls(), 4);

    let rejected = rejection(send(&mut service, Call::Ok));
    assert_eq!(rejected.state(), State::Open);
    assert_eq!(rejected.retry_after(), Some(secs(10)));
    clock.advance(secs(4));
    assert_eq!(
        rejection(send(&mut service, Call::Ok)).retry_after(),
        Some(secs(6))
    );
    assert_eq!(
        downstream.calls(),
        4,
        "a rejected call reached the downstream"
    );
    assert_eq!(breaker.metrics().not_permitted, 2);

    // After the wait one probe goes through, succeeds and closes the breaker.
    clock.advance(secs(6));
    assert_eq!(send(&mut service, Call::Ok).unwrap(), 200);
    assert_eq!(downstream.calls(), 5);
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn the_inner_error_passes_through_as_failed() {
    let (breaker, _clock) = breaker(small(1));
    let mut service = CircuitBreakerLayer::new(breaker).layer(Downstream::default());
    match send(&mut service, Call::Fail(io::ErrorKind::ConnectionRefused)) {
        Err(CallError::Failed(error)) => assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused),
        other => panic!("expected the inner error, got {other:?}"),
    }
}

#[test]
fn layer_clones_and_service_clones_share_one_breaker() {
    let (breaker, clock) = breaker(small(1));
    let downstream = Downstream::default();
    let layer = CircuitBreakerLayer::new(Arc::clone(&breaker));
    let other_layer = layer.clone();
    assert!(Arc::ptr_eq(layer.breaker(), other_layer.breaker()));

    let mut first = layer.layer(downstream.clone());
    let mut first_clone = first.clone();
    let mut second = other_layer.layer(downstream.clone());
    assert!(Arc::ptr_eq(first_clone.breaker(), &breaker));
    assert!(Arc::ptr_eq(second.breaker(), &breaker));

    // Two successes and two failures, spread over three services, open the one breaker.
    assert_eq!(send(&mut first, Call::Ok).unwrap(), 200);
    assert!(send(&mut first_clone, TIMEOUT).is_err());
    assert_eq!(send(&mut second, Call::Ok).unwrap(), 200);
    assert_eq!(breaker.state(), State::Closed);
    assert!(send(&mut second, TIMEOUT).is_err());
    assert_eq!(breaker.state(), State::Open);

    for service in [&mut first, &mut first_clone, &mut second] {
        assert_eq!(rejection(send(service, Call::Ok)).state(), State::Open);
    }
    assert_eq!(downstream.calls(), 4);

    // The half-open trial is shared too: one service's probe closes it for all.
    clock.advance(secs(10));
    assert_eq!(send(&mut second, Call::Ok).unwrap(), 200);
    assert_eq!(send(&mut first_clone, Call::Ok).unwrap(), 200);
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn from_a_breaker_by_value_or_in_an_arc() {
    let config = || small(1).build().unwrap();
    let by_value =
        CircuitBreakerLayer::new(CircuitBreaker::with_clock(config(), ManualClock::new()));
    let from_value: CircuitBreakerLayer<ManualClock> =
        CircuitBreaker::with_clock(config(), ManualClock::new()).into();
    let shared = Arc::new(CircuitBreaker::with_clock(config(), ManualClock::new()));
    let from_arc = CircuitBreakerLayer::from(Arc::clone(&shared));
    assert!(Arc::ptr_eq(from_arc.breaker(), &shared));

    for layer in [by_value, from_value, from_arc] {
        let mut service = layer.layer(Downstream::default());
        open_through(&mut service);
        assert_eq!(layer.breaker().state(), State::Open);
    }
    assert_eq!(shared.state(), State::Open);
}

#[test]
fn a_custom_classifier_counts_ok_503_as_a_failure() {
    let (breaker, _clock) = breaker(small(1));
    let downstream = Downstream::default();
    let layer = CircuitBreakerLayer::new(Arc::clone(&breaker)).classify(
        |result: &Result<u16, io::Error>| match result {
            Ok(status) if *status >= 500 => Outcome::Failure,
            Ok(status) if *status >= 400 => Outcome::Ignored,
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failure,
        },
    );
    let mut service = layer.layer(downstream.clone());

    // 4xx: the caller's fault, not counted.
    for _ in 0..5 {
        assert_eq!(send(&mut service, Call::Status(404)).unwrap(), 404);
    }
    assert_eq!(breaker.metrics().calls, 0);

    // 503s come back as `Ok` (the response passes through) but count as failures.
    assert_eq!(send(&mut service, Call::Ok).unwrap(), 200);
    assert_eq!(send(&mut service, Call::Status(503)).unwrap(), 503);
    assert_eq!(send(&mut service, Call::Ok).unwrap(), 200);
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(send(&mut service, Call::Status(503)).unwrap(), 503);
    let metrics = breaker.metrics();
    assert_eq!(
        (metrics.state, metrics.calls, metrics.failed),
        (State::Open, 4, 2)
    );
    assert!(send(&mut service, Call::Ok).unwrap_err().is_rejected());
    assert_eq!(downstream.calls(), 9);
}

#[test]
fn the_default_classifier_follows_the_config_error_classifiers() {
    let (breaker, _clock) = breaker(
        small(1).ignore_error_if(|error: &io::Error| error.kind() == io::ErrorKind::NotFound),
    );
    let layer = CircuitBreakerLayer::new(Arc::clone(&breaker));
    assert_eq!(
        layer
            .classifier()
            .classify(&Err::<u16, _>(io::Error::from(io::ErrorKind::NotFound))),
        Outcome::Ignored
    );
    let mut service = layer.layer(Downstream::default());

    for _ in 0..8 {
        assert!(matches!(
            send(&mut service, Call::Fail(io::ErrorKind::NotFound)),
            Err(CallError::Failed(_))
        ));
    }
    assert_eq!(
        (breaker.state(), breaker.metrics().calls),
        (State::Closed, 0)
    );

    open_through(&mut service); // timeouts are failures
    assert_eq!(breaker.state(), State::Open);
}

#[test]
fn config_classifier_without_error_classifiers_counts_every_error_as_a_failure() {
    let classifier = ConfigClassifier::new(&Config::default());
    assert_eq!(
        classifier.classify(&Ok::<_, io::Error>(1)),
        Outcome::Success
    );
    assert_eq!(
        classifier.classify(&Err::<(), _>(io::Error::from(io::ErrorKind::NotFound))),
        Outcome::Failure
    );
    assert_eq!(
        ConfigClassifier::default().classify(&Err::<(), _>(())),
        Outcome::Failure
    );
}

#[test]
fn a_cancelled_response_future_in_half_open_gives_its_slot_back() {
    let (breaker, clock) = breaker(small(1));
    let downstream = Downstream::default();
    let mut service = CircuitBreakerLayer::new(Arc::clone(&breaker)).layer(downstream.clone());
    open_through(&mut service);
    clock.advance(secs(10));
    assert_eq!(breaker.state(), State::HalfOpen);

    // The one probe slot is held by a call in flight...
    block_on(service.ready()).unwrap();
    let in_flight = service.call(Call::Hang);
    assert_eq!(downstream.calls(), 5);
    let refused = rejection(send(&mut service, Call::Ok));
    assert_eq!(
        (refused.state(), refused.retry_after()),
        (State::HalfOpen, None)
    );
    assert_eq!(downstream.calls(), 5);

    // ...until its future is dropped (a timeout, a client gone): then the slot is free.
    drop(in_flight);
    assert_eq!(breaker.state(), State::HalfOpen);
    assert_eq!(send(&mut service, Call::Ok).unwrap(), 200);
    assert_eq!(downstream.calls(), 6);
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn a_cancelled_response_future_in_closed_records_nothing() {
    let (breaker, _clock) = breaker(small(1));
    let mut service = CircuitBreakerLayer::new(Arc::clone(&breaker)).layer(Downstream::default());
    for _ in 0..10 {
        block_on(service.ready()).unwrap();
        drop(service.call(Call::Hang));
    }
    let metrics = breaker.metrics();
    assert_eq!((metrics.state, metrics.calls), (State::Closed, 0));
}

#[test]
fn polling_ready_takes_no_permit() {
    // axum clones the service per request, polls the clone ready, and may drop it
    // without calling: that must not use up half-open probe slots.
    let (breaker, clock) = breaker(small(1));
    let mut service = CircuitBreakerLayer::new(Arc::clone(&breaker)).layer(Downstream::default());
    open_through(&mut service);
    clock.advance(secs(10));
    assert_eq!(breaker.state(), State::HalfOpen);
    // Clones polled ready and dropped, and clones polled ready and kept idle.
    let mut idle = Vec::new();
    for n in 0..6 {
        let mut clone = service.clone();
        block_on(clone.ready()).unwrap();
        if n % 2 == 0 {
            idle.push(clone);
        }
    }
    assert_eq!(send(&mut service, Call::Ok).unwrap(), 200);
    assert_eq!(breaker.state(), State::Closed);
    drop(idle);
}

#[test]
fn slow_calls_are_timed_from_call_to_completion_by_the_permit() {
    let (breaker, clock) = breaker(
        Config::builder()
            .count_window(2)
            .minimum_calls(2)
            .slow_call_duration(secs(1))
            .slow_call_rate_threshold(100.0),
    );
    let downstream_clock = clock.clone();
    // The downstream takes as long as it is asked to (on the manual clock).
    let mut service =
        CircuitBreakerLayer::new(Arc::clone(&breaker)).layer(service_fn(move |took: Duration| {
            let clock = downstream_clock.clone();
            async move {
                clock.advance(took);
                Ok::<_, Infallible>(took)
            }
        }));

    // Time spent between readiness and the call is not the call's.
    block_on(service.ready()).unwrap();
    clock.advance(secs(30));
    assert_eq!(
        block_on(service.call(Duration::ZERO)).unwrap(),
        Duration::ZERO
    );
    assert_eq!(breaker.metrics().slow_successful, 0);

    assert_eq!(send(&mut service, secs(2)).unwrap(), secs(2));
    let metrics = breaker.metrics();
    // One slow call of two: 50 %, under the 100 % threshold.
    assert_eq!(
        (metrics.calls, metrics.slow_successful, metrics.state),
        (2, 1, State::Closed)
    );
    assert_eq!(send(&mut service, secs(1)).unwrap(), secs(1));
    let metrics = breaker.metrics();
    assert_eq!(
        (metrics.calls, metrics.slow_successful, metrics.state),
        (2, 2, State::Open)
    );
}

#[test]
fn a_panicking_inner_future_records_a_failure() {
    let (breaker, _clock) = breaker(small(1));
    let mut service = CircuitBreakerLayer::new(Arc::clone(&breaker)).layer(service_fn(
        |explode: bool| async move {
            assert!(!explode, "the downstream client panicked");
            Ok::<_, Infallible>(())
        },
    ));
    send(&mut service, false).unwrap();
    block_on(service.ready()).unwrap();
    let future = service.call(true);
    assert!(catch_unwind(AssertUnwindSafe(|| block_on(future))).is_err());
    let metrics = breaker.metrics();
    assert_eq!(
        (metrics.calls, metrics.successful, metrics.failed),
        (2, 1, 1)
    );
}

/// A service that is not `Clone`: it owns its connection.
#[derive(Debug)]
struct Connection {
    served: Vec<u32>,
    broken: bool,
}

impl Service<u32> for Connection {
    type Response = usize;
    type Error = &'static str;
    type Future = Ready<Result<usize, &'static str>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(if self.broken {
            Err("connection lost")
        } else {
            Ok(())
        })
    }

    fn call(&mut self, request: u32) -> Self::Future {
        self.served.push(request);
        ready(if request == 0 {
            Err("zero")
        } else {
            Ok(self.served.len())
        })
    }
}

#[test]
fn a_non_clone_inner_service_is_moved_in() {
    let (breaker, _clock) = breaker(small(1));
    let layer = CircuitBreakerLayer::new(Arc::clone(&breaker));
    let mut service: CircuitBreakerService<Connection, ManualClock> = layer.layer(Connection {
        served: Vec::new(),
        broken: false,
    });

    assert_eq!(send(&mut service, 7), Ok(1));
    assert_eq!(send(&mut service, 0), Err(CallError::Failed("zero")));
    assert_eq!(send(&mut service, 9), Ok(3));
    assert_eq!(send(&mut service, 0), Err(CallError::Failed("zero")));
    assert_eq!(breaker.state(), State::Open);
    assert!(send(&mut service, 1).unwrap_err().is_rejected());
    assert_eq!(service.get_ref().served, [7, 0, 9, 0]);
    assert_eq!(service.into_inner().served.len(), 4);
}

#[test]
fn an_inner_poll_ready_error_comes_back_as_failed_and_is_not_recorded() {
    let (breaker, _clock) = breaker(small(1));
    let mut service = CircuitBreakerLayer::new(Arc::clone(&breaker)).layer(Connection {
        served: Vec::new(),
        broken: true,
    });
    for _ in 0..5 {
        assert_eq!(
            send(&mut service, 1),
            Err(CallError::Failed("connection lost"))
        );
    }
    assert_eq!(breaker.metrics().calls, 0);
    assert!(service.get_ref().served.is_empty());
}

#[test]
fn composes_with_service_builder() {
    let (breaker, _clock) = breaker(small(1));
    let downstream = Downstream::default();
    let service = ServiceBuilder::new()
        // Outside the breaker: the caller's view, with a plain string error.
        .map_err(|error: CallError<io::Error>| match error {
            CallError::Rejected(rejected) => format!("not now: {rejected}"),
            CallError::Failed(error) => format!("failed: {error}"),
        })
        .layer(CircuitBreakerLayer::new(Arc::clone(&breaker)))
        // Inside the breaker: what the breaker counts is the downstream's own answer.
        .map_request(|path: &str| match path {
            "/timeout" => TIMEOUT,
            _ => Call::Ok,
        })
        .service(downstream.clone());

    assert_eq!(block_on(service.clone().oneshot("/")), Ok(200));
    assert_eq!(
        block_on(service.clone().oneshot("/timeout")),
        Err("failed: timed out".to_string())
    );
    assert_eq!(block_on(service.clone().oneshot("/")), Ok(200));
    assert!(block_on(service.clone().oneshot("/timeout")).is_err());
    assert_eq!(
        block_on(service.oneshot("/")),
        Err("not now: circuit breaker is open: call not permitted".to_string())
    );
    assert_eq!(downstream.calls(), 4);
}

#[test]
fn forced_open_rejects_and_disabled_lets_everything_through_unrecorded() {
    let (breaker, _clock) = breaker(small(1));
    let downstream = Downstream::default();
    let mut service = CircuitBreakerLayer::new(Arc::clone(&breaker)).layer(downstream.clone());

    breaker.transition_to(State::ForcedOpen);
    let refused = rejection(send(&mut service, Call::Ok));
    assert_eq!(
        (refused.state(), refused.retry_after()),
        (State::ForcedOpen, None)
    );
    assert_eq!(downstream.calls(), 0);

    breaker.transition_to(State::Disabled);
    for _ in 0..6 {
        assert!(send(&mut service, TIMEOUT).is_err());
    }
    assert_eq!(downstream.calls(), 6);
    assert_eq!(breaker.state(), State::Disabled);
}

#[test]
fn debug_output_names_the_parts() {
    let (breaker, _clock) = breaker(small(1));
    let layer = CircuitBreakerLayer::new(breaker);
    assert!(format!("{layer:?}").starts_with("CircuitBreakerLayer"));
    let mut service = layer.layer(Downstream::default());
    assert!(format!("{service:?}").starts_with("CircuitBreakerService"));
    block_on(service.ready()).unwrap();
    let future = service.call(Call::Hang);
    assert!(format!("{future:?}").starts_with("ResponseFuture::Called"));
    layer.breaker().transition_to(State::ForcedOpen);
    let future = service.call(Call::Ok);
    assert!(format!("{future:?}").starts_with("ResponseFuture::Rejected"));
}

#[test]
fn the_public_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    fn unpin<T: Unpin>() {}
    send_sync::<CircuitBreakerLayer>();
    send_sync::<CircuitBreakerLayer<ManualClock, fn(&Result<u16, io::Error>) -> Outcome>>();
    send_sync::<CircuitBreakerService<Downstream>>();
    send_sync::<ConfigClassifier>();
    type Future = ResponseFuture<Ready<Answer>, ManualClock, ConfigClassifier>;
    send::<Future>();
    unpin::<Future>();
}
