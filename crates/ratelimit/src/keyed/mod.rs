//! Rate limits per key (per client, per source, per API key) with bounded memory.

mod builder;
mod limiter;
mod shards;

pub use builder::{DEFAULT_MAX_KEYS, DEFAULT_SWEEP_INTERVAL, KeyedBuilder, WhenFull};
pub use limiter::KeyedRateLimiter;
