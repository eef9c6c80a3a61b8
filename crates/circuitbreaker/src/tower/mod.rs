//! tower middleware: [`CircuitBreakerLayer`] puts a [`CircuitBreaker`](crate::CircuitBreaker)
//! in front of a service, so calls to a failing downstream fail fast instead of piling up.
//!
//! Every service the layer makes, and every clone of those and of the layer, asks the
//! **same** breaker, held in an `Arc`: one downstream, one breaker, however many routes,
//! clones and connections call it. The inner service does not have to be `Clone`, and
//! there is no `Buffer` (no task, no channel, no lock): the layer moves the inner service
//! into the service it makes, and only the `Arc` is shared.
//!
//! A permitted call goes to the inner service and its outcome is recorded when its
//! response future completes; a refused one is answered at once with
//! [`CallError::Rejected`](crate::CallError::Rejected), whose [`Rejected`](crate::Rejected)
//! says which state refused it and, when the breaker is open, how long until it lets a
//! probe through ([`retry_after`](crate::Rejected::retry_after)): what an HTTP server
//! turns into `503 Service Unavailable` with `Retry-After`. The inner service is not
//! called.
//!
//! # The name: `CircuitBreakerService`
//!
//! tower's convention (a `FooLayer` makes a `Foo<S>`, as `RateLimitLayer` makes
//! `RateLimit<S>`) would call the service `CircuitBreaker<S>`. That name is taken: it is
//! the breaker itself, [`crate::CircuitBreaker`], which the service holds and which users
//! import next to it. Two public types of one name in one crate would make every `use`
//! need a rename and every type error read "expected `CircuitBreaker`, found
//! `CircuitBreaker`"; so the service is [`CircuitBreakerService`].
//!
//! # The permit is taken in `call`, not in `poll_ready`
//!
//! `poll_ready` only asks the inner service. The breaker is asked in `call`, for three
//! reasons:
//!
//! * **Readiness is not a call.** axum clones the service for every request, polls the
//!   clone ready and then calls it; other callers poll a service ready and then drop it,
//!   or keep a ready service idle for a long time. A permit taken in `poll_ready` would
//!   hold one of the few half-open probe slots for a call that may never happen (or
//!   happen much later), and would start a slow-call timer before the call starts.
//! * **A rejection is not a broken service.** An error from `poll_ready` tells tower that
//!   the service has failed for good: `Buffer` and balancers drop it, hyper closes the
//!   connection. An open breaker is a transient, per-call answer, so it belongs in the
//!   call's future. (And `Pending` would not do either: a breaker fails fast, it does not
//!   make callers queue.)
//! * **The outcome belongs to the call.** The permit moves into the call's
//!   [`ResponseFuture`], which records the outcome when the call completes, and gives the
//!   slot back if the future is dropped first.
//!
//! A rejected call leaves the inner service's readiness unused, for the next call (or
//! until the service is dropped, which is what axum does with its per-request clone).
//!
//! # How a call counts
//!
//! By default ([`ConfigClassifier`]) `Ok` is a success and an error counts as the
//! breaker's [`Config`](crate::Config) error classifiers say (a failure unless one of
//! them ignores it), exactly as for [`CircuitBreaker::call`](crate::CircuitBreaker::call).
//! That default looks errors up by type, so it needs the inner error type to be
//! `'static`. Give the layer any `Fn(&Result<Response, Error>) -> Outcome` with
//! [`classify`](CircuitBreakerLayer::classify) to decide otherwise; an HTTP client's
//! `Ok(response)` with a `5xx` status is the usual case:
//!
//! ```
//! # use flowbed_circuitbreaker::{CircuitBreaker, Config, Outcome};
//! # use flowbed_circuitbreaker::tower::CircuitBreakerLayer;
//! # struct StatusCode(u16);
//! # impl StatusCode { fn is_server_error(&self) -> bool { self.0 >= 500 } }
//! # struct Response(StatusCode);
//! # impl Response { fn status(&self) -> &StatusCode { &self.0 } }
//! # type Error = std::io::Error;
//! // With `http::Response` the closure is the same.
//! let layer = CircuitBreakerLayer::new(CircuitBreaker::new(Config::default()))
//!     .classify(|result: &Result<Response, Error>| match result {
//!         Ok(response) if response.status().is_server_error() => Outcome::Failure,
//!         Ok(_) => Outcome::Success,
//!         Err(_) => Outcome::Failure,
//!     });
//! # let _ = layer;
//! ```
//!
//! Calls are timed only by their permit, from `call` to the completion of the response
//! future, and only when the breaker's config sets `slow_call_duration`.
//!
//! # Errors, cancellation, panics
//!
//! The service's error is [`CallError<S::Error>`](crate::CallError), the same type as
//! [`CircuitBreaker::call_async`](crate::CircuitBreaker::call_async)'s:
//! [`Rejected`](crate::CallError::Rejected) (the inner service was not called) or
//! [`Failed`](crate::CallError::Failed) with the inner service's error. An error of the
//! inner service's `poll_ready` comes back as `Failed` too, and is not recorded: no call
//! was made. axum needs services that cannot fail: turn the error into a response with
//! `axum::error_handling::HandleErrorLayer`, or call the service from a handler and match
//! on the error (the `circuitbreaker_axum` example of the `flowbed` repository).
//!
//! A response future dropped before it completes records nothing and gives its half-open
//! probe slot back; one dropped while its thread panics (the inner future panicked)
//! records a failure.
//!
//! # The parts
//!
//! | type | role |
//! |---|---|
//! | [`CircuitBreakerLayer`] | builds [`CircuitBreakerService`]s that share one breaker |
//! | [`CircuitBreakerService`] | the service: asks the breaker, then calls the inner service or rejects |
//! | [`ResponseFuture`] | its future: holds the permit and records the outcome; a named type, no box |
//! | [`Classify`], [`ConfigClassifier`] | how a finished call counts: success, failure or ignored |
//!
//! # Examples
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use flowbed_circuitbreaker::tower::CircuitBreakerLayer;
//! use flowbed_circuitbreaker::{CallError, CircuitBreaker, Config, ManualClock, State};
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # futures::executor::block_on(async {
//! let clock = ManualClock::new();
//! let config = Config::builder()
//!     .count_window(2)
//!     .minimum_calls(2)
//!     .permitted_calls_in_half_open(1)
//!     .build()
//!     .unwrap();
//! let breaker = Arc::new(CircuitBreaker::with_clock(config, clock.clone()));
//! let layer = CircuitBreakerLayer::new(Arc::clone(&breaker));
//! let downstream = service_fn(|request: &'static str| async move {
//!     if request == "fail" { Err("downstream error") } else { Ok(request) }
//! });
//!
//! // Two services made by the layer (say, two handlers) share the breaker.
//! let reads = layer.layer(downstream);
//! let writes = layer.layer(downstream);
//! assert_eq!(reads.clone().oneshot("fail").await, Err(CallError::Failed("downstream error")));
//! assert_eq!(writes.clone().oneshot("fail").await, Err(CallError::Failed("downstream error")));
//! assert_eq!(breaker.state(), State::Open);
//!
//! match reads.clone().oneshot("get").await {
//!     Err(CallError::Rejected(rejected)) => {
//!         assert_eq!(rejected.state(), State::Open);
//!         assert_eq!(rejected.retry_after(), Some(Duration::from_secs(60)));
//!     }
//!     other => panic!("expected a rejection, got {other:?}"),
//! }
//!
//! clock.advance(Duration::from_secs(60)); // the wait is over: one probe goes through
//! assert_eq!(writes.oneshot("put").await, Ok("put"));
//! assert_eq!(breaker.state(), State::Closed);
//! # });
//! ```

mod classify;
mod future;
mod layer;
mod service;

pub use classify::{Classify, ConfigClassifier};
pub use future::ResponseFuture;
pub use layer::CircuitBreakerLayer;
pub use service::CircuitBreakerService;
