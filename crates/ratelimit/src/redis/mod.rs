//! The GCRA on Redis, for limits that many nodes enforce together (feature `redis`).
//!
//! | need | use |
//! |---|---|
//! | one quota per key across all nodes, one round trip per check | [`RedisRateLimiter`] |
//! | refuse floods on the node, confirm admissions with Redis | [`HybridRateLimiter`] |
//! | say what happens when Redis is down or slow | [`FailurePolicy`], [`RedisBuilder::timeout`] |
//! | know which path answered | [`RedisDecision::source`] |
//!
//! The algorithm is the crate's GCRA ([`RateLimiter`](crate::RateLimiter)), run as one Lua
//! script on the key's state: one number per key (its theoretical arrival time, in
//! nanoseconds), read and written atomically by Redis on its own clock, with an expiry
//! so that idle keys take no memory. With an injected clock it takes exactly the local
//! limiter's decisions; the tests check this on long random sequences against a real
//! server.
//!
//! # Examples
//!
//! ```no_run
//! use std::num::NonZeroU32;
//! use std::time::Duration;
//! use flowbed_ratelimit::Quota;
//! use flowbed_ratelimit::redis::{FailurePolicy, RedisRateLimiter};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), redis::RedisError> {
//! let limiter = RedisRateLimiter::builder(Quota::per_second(NonZeroU32::new(5).unwrap()))
//!     .key_prefix("api:")
//!     .timeout(Duration::from_millis(50))
//!     .failure_policy(FailurePolicy::FailClosed)
//!     .connect("redis://127.0.0.1:6379")
//!     .await?;
//! let admitted = {
//!     let mut admitted = 0;
//!     for _ in 0..10 {
//!         admitted += u32::from(limiter.check("alice").await.is_allowed());
//!     }
//!     admitted
//! };
//! assert_eq!(admitted, 5); // the burst, shared by every node using "api:alice"
//! # Ok(())
//! # }
//! ```

mod builder;
mod decision;
mod error;
mod hybrid;
mod limiter;
mod policy;
mod script;
mod stats;

pub use builder::{DEFAULT_KEY_PREFIX, DEFAULT_TIMEOUT, RedisBuilder};
pub use decision::{DecisionSource, RedisDecision};
pub use error::RedisLimitError;
pub use hybrid::HybridRateLimiter;
pub use limiter::RedisRateLimiter;
pub use policy::FailurePolicy;
pub use stats::RedisStats;
