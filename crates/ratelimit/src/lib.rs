//! Rate limiting for ingestion and APIs: refuse excess traffic per source without slowing
//! accepted traffic.
//!
//! | need | use |
//! |---|---|
//! | N per second with bursts, lock-free | [`RateLimiter`] (GCRA) with a [`Quota`] |
//! | at most N in any window | [`SlidingWindow`] |
//! | a limit per client / source / tenant, bounded memory | [`KeyedRateLimiter`] |
//! | wait for capacity instead of refusing | `until_ready().await`, `until_ready_blocking()` |
//! | cap operations in flight | [`ConcurrencyLimit`] |
//! | answer "how many left, when to retry" | [`Decision`] |
//! | tests with controlled time | [`ManualClock`], [`TokioClock`] under `tokio::time::pause()` |
//!
//! # Examples
//!
//! ```
//! use std::num::NonZeroU32;
//! use flowbed_ratelimit::{KeyedRateLimiter, Quota};
//!
//! // Each event source may send 6000 events per minute, in bursts of up to 100.
//! let per_source = Quota::per_minute(NonZeroU32::new(6_000).unwrap())
//!     .allow_burst(NonZeroU32::new(100).unwrap());
//! let limiter = KeyedRateLimiter::<u32>::new(per_source);
//!
//! let accepted = (0..150).filter(|_| limiter.check(&42).unwrap().is_allowed()).count();
//! assert_eq!(accepted, 100); // the burst; the next cell comes 10 ms later
//! assert!(limiter.check(&7).unwrap().is_allowed()); // other sources are unaffected
//! ```

#![deny(unsafe_code)]

mod clock;
#[cfg(feature = "tokio")]
mod concurrency;
mod decision;
mod error;
mod gcra;
mod keyed;
mod limiter;
mod monotonic;
mod quota;
mod quota_cell;
mod rate_limiter;
#[cfg(feature = "redis")]
pub mod redis;
mod sliding_window;
mod sync;
#[cfg(feature = "tower")]
pub mod tower;
#[cfg(feature = "tokio")]
mod wait;

#[cfg(feature = "tokio")]
pub use clock::TokioClock;
pub use clock::{Clock, ManualClock};
#[cfg(feature = "tokio")]
pub use concurrency::{ConcurrencyLimit, Permit};
pub use decision::Decision;
#[cfg(feature = "tokio")]
pub use error::AcquireError;
pub use error::{InsufficientCapacity, KeyedCheckError, QuotaError};
pub use keyed::{
    DEFAULT_MAX_KEYS, DEFAULT_SWEEP_INTERVAL, KeyedBuilder, KeyedRateLimiter, WhenFull,
};
pub use limiter::Limiter;
pub use monotonic::MonotonicClock;
pub use quota::{MAX_PERIOD, Quota};
pub use rate_limiter::RateLimiter;
pub use sliding_window::SlidingWindow;

/// The README's examples, compiled and run as doctests so they cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
