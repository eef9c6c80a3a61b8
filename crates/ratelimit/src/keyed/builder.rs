//! Configuration of a keyed limiter.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};
use std::time::Duration;

use crate::clock::Clock;
use crate::keyed::KeyedRateLimiter;
use crate::monotonic::MonotonicClock;
use crate::quota::Quota;

/// The default cap on tracked keys: 2^20 (about 40 MB with 16-byte keys).
pub const DEFAULT_MAX_KEYS: usize = 1 << 20;
/// The default interval between sweeps that forget idle keys.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(10);

/// What a keyed limiter does with a new key when it already tracks `max_keys` keys and
/// none of them is idle.
///
/// Forgetting an idle key loses nothing (its state equals a fresh one), so idle keys are
/// always swept first. Beyond that it is a choice between two risks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum WhenFull {
    /// Refuse the new key with [`KeyedCheckError::TooManyKeys`](crate::KeyedCheckError):
    /// never admits more than any key's quota, but a flood of new keys locks out other
    /// new keys until tracked keys go idle. The default (fail closed).
    #[default]
    RejectNewKeys,
    /// Forget the tracked key that is closest to idle among a few sampled, and track the
    /// new key: new keys always get through, but a forgotten busy key gets a fresh burst.
    EvictBusyKey,
}

/// Builds a [`KeyedRateLimiter`]; start with [`KeyedRateLimiter::builder`].
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use std::time::Duration;
/// use flowbed_ratelimit::{KeyedRateLimiter, ManualClock, Quota, WhenFull};
///
/// let limiter = KeyedRateLimiter::<u64>::builder(Quota::per_second(NonZeroU32::new(50).unwrap()))
///     .max_keys(100_000)
///     .when_full(WhenFull::EvictBusyKey)
///     .sweep_interval(Duration::from_secs(30))
///     .clock(ManualClock::new())
///     .build();
/// assert!(limiter.check(&7).unwrap().is_allowed());
/// ```
#[derive(Debug)]
#[must_use = "a builder does nothing until `build()`"]
pub struct KeyedBuilder<K, C = MonotonicClock, S = RandomState> {
    pub(crate) quota: Quota,
    pub(crate) max_keys: usize,
    pub(crate) when_full: WhenFull,
    pub(crate) sweep_interval: Duration,
    pub(crate) shards: usize,
    pub(crate) clock: C,
    pub(crate) hasher: S,
    pub(crate) key: std::marker::PhantomData<fn(K)>,
}

impl<K, C, S> KeyedBuilder<K, C, S> {
    /// The most keys tracked at once (default [`DEFAULT_MAX_KEYS`]); memory stays bounded
    /// under a flood of new keys. Values below 1 are raised to 1.
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys.max(1);
        self
    }

    /// What to do with a new key when `max_keys` busy keys are tracked (default
    /// [`WhenFull::RejectNewKeys`]).
    pub fn when_full(mut self, when_full: WhenFull) -> Self {
        self.when_full = when_full;
        self
    }

    /// How often (at most) a new key's check also sweeps out idle keys (default
    /// [`DEFAULT_SWEEP_INTERVAL`]). Checks of known keys never sweep.
    pub fn sweep_interval(mut self, interval: Duration) -> Self {
        self.sweep_interval = interval;
        self
    }

    /// Number of shards (rounded up to a power of two; default: 4 × available cores).
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = shards.max(1).next_power_of_two();
        self
    }

    /// Reads time from `clock` instead of the default [`MonotonicClock`].
    pub fn clock<C2: Clock>(self, clock: C2) -> KeyedBuilder<K, C2, S> {
        KeyedBuilder {
            quota: self.quota,
            max_keys: self.max_keys,
            when_full: self.when_full,
            sweep_interval: self.sweep_interval,
            shards: self.shards,
            clock,
            hasher: self.hasher,
            key: self.key,
        }
    }

    /// Hashes keys with `hasher` instead of std's DoS-resistant `RandomState`. Keys often
    /// come from clients (IP addresses, API keys): keep a keyed, randomized hasher there.
    pub fn hasher<S2: BuildHasher>(self, hasher: S2) -> KeyedBuilder<K, C, S2> {
        KeyedBuilder {
            quota: self.quota,
            max_keys: self.max_keys,
            when_full: self.when_full,
            sweep_interval: self.sweep_interval,
            shards: self.shards,
            clock: self.clock,
            hasher,
            key: self.key,
        }
    }
}

impl<K: Hash + Eq + Clone, C: Clock, S: BuildHasher + Clone> KeyedBuilder<K, C, S> {
    /// The limiter.
    pub fn build(self) -> KeyedRateLimiter<K, C, S> {
        KeyedRateLimiter::from_builder(self)
    }
}

pub(crate) fn default_shards() -> usize {
    let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
    (cores * 4).next_power_of_two()
}
