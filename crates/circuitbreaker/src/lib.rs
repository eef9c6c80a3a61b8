//! A circuit breaker with resilience4j's semantics and a lock-free closed path.
//!
//! ```text
//!              failure or slow-call rate ≥ threshold
//!   Closed ───────────────────────────────────────────▶ Open
//!     ▲                                                  │ wait_in_open passed
//!     │ the trial's rates are below the thresholds       ▼
//!     └────────────────────────────────────────────── HalfOpen ──▶ Open (rates too high,
//!                                                                   or max_wait_in_half_open)
//! ```
//!
//! * [`CircuitBreaker`] counts the outcomes of the last calls in a [`SlidingWindow`]
//!   (the last *n* calls, or the last *n* seconds in buckets) and opens when the failure
//!   rate or the slow-call rate reaches its threshold over at least `minimum_calls`.
//! * `Open` refuses calls ([`Rejected`], with the time left) for `wait_in_open`, fixed or
//!   growing exponentially with every failed trial; then `HalfOpen` lets
//!   `permitted_calls_in_half_open` probes through and their rates decide.
//! * [`State::Disabled`], [`State::ForcedOpen`] and [`State::MetricsOnly`] are entered by
//!   hand ([`CircuitBreaker::transition_to`]); [`CircuitBreaker::reset`] starts over.
//! * Calls: [`CircuitBreaker::call`], [`CircuitBreaker::call_async`], or a
//!   [`CallPermit`] from [`CircuitBreaker::try_acquire`] for anything else. A permit
//!   dropped without an outcome gives its half-open slot back: cancelled futures never
//!   leave the breaker stuck.
//! * [`Event`]s go to [`subscribe`](CircuitBreaker::subscribe)d callbacks; [`Metrics`]
//!   is a constant-time snapshot.
//! * [`Registry`] holds named breakers with shared defaults and bounded memory;
//!   [`retry`] retries with exponential backoff and jitter, and does not retry a
//!   breaker's rejection; the `tower` feature adds [`tower::CircuitBreakerLayer`].
//! * Time comes from a [`Clock`]: [`ManualClock`] drives tests, [`TokioClock`] follows
//!   `tokio::time::pause()`.
//!
//! # Examples
//!
//! ```
//! use flowbed_circuitbreaker::{CallError, CircuitBreaker, Config};
//!
//! let breaker = CircuitBreaker::new(Config::builder().minimum_calls(10).build()?);
//! match breaker.call(|| std::fs::read_to_string("/definitely/not/here")) {
//!     Ok(text) => println!("{text}"),
//!     Err(CallError::Rejected(rejected)) => println!("not now: {rejected}"),
//!     Err(CallError::Failed(error)) => println!("failed: {error}"),
//! }
//! assert_eq!(breaker.metrics().failed, 1);
//! # Ok::<(), flowbed_circuitbreaker::ConfigError>(())
//! ```

#![deny(unsafe_code)]

mod breaker;
mod call;
mod config;
mod error;
mod events;
mod half_open;
mod metrics;
mod outcome;
mod permit;
mod registry;
pub mod retry;
mod state;
mod sync;
#[cfg(feature = "tower")]
pub mod tower;
mod window;

pub use breaker::CircuitBreaker;
pub use config::{
    Config, ConfigBuilder, MAX_COUNT_WINDOW, MAX_HALF_OPEN_CALLS, MAX_TIME_BUCKETS, SlidingWindow,
    WaitInOpen,
};
pub use error::{CallError, ConfigError, Rejected};
pub use events::{Event, Interest, Subscription};
#[cfg(feature = "tokio")]
pub use flowbed_ratelimit::TokioClock;
pub use flowbed_ratelimit::{Clock, ManualClock, MonotonicClock};
pub use metrics::Metrics;
pub use outcome::Outcome;
pub use permit::{CallPermit, OwnedCallPermit, Permit};
pub use registry::{
    DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_BREAKERS, EntryEvent, Registry, RegistryBuilder,
    RegistryError, RegistryStats,
};
pub use state::State;

/// The README's examples, compiled and run as doctests so they cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
