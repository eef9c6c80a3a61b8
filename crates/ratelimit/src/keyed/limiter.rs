//! `KeyedRateLimiter`: one GCRA state per key, quotas changeable at run time.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hash};

use crate::clock::Clock;
use crate::decision::Decision;
use crate::error::KeyedCheckError;
use crate::gcra::GcraCell;
use crate::keyed::builder::{
    DEFAULT_MAX_KEYS, DEFAULT_SWEEP_INTERVAL, KeyedBuilder, WhenFull, default_shards,
};
use crate::keyed::shards::{Shards, find};
use crate::monotonic::MonotonicClock;
use crate::quota::Quota;
use crate::quota_cell::QuotaCell;
use crate::sync::{AtomicU64, AtomicUsize, Ordering, RwLock, read, write};

/// How many tracked keys [`WhenFull::EvictBusyKey`] samples to pick one to forget.
const EVICTION_SAMPLE: usize = 8;

/// A rate limiter per key: each key (client IP, tenant, event source) gets its own GCRA
/// state, created on first use and forgotten once idle.
///
/// - **Bounded memory**: at most [`max_keys`](KeyedBuilder::max_keys) keys are tracked.
///   A key whose state is fully replenished is *idle*: forgetting it loses nothing, and
///   periodic sweeps do (during new keys' checks, at most every
///   [`sweep_interval`](KeyedBuilder::sweep_interval)), as does
///   [`evict_idle`](Self::evict_idle). When `max_keys` busy keys are tracked, a new key is
///   refused or replaces a busy one, as [`WhenFull`] says.
/// - **Quotas change at run time** without resetting anyone's state:
///   [`set_quota`](Self::set_quota) for every key without its own,
///   [`set_key_quota`](Self::set_key_quota) for one key.
/// - **Fast**: a check of a known key hashes it once, read-locks one shard, and does the
///   same compare-and-swap as [`RateLimiter`](crate::RateLimiter).
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use flowbed_ratelimit::{KeyedRateLimiter, Quota};
///
/// let limiter = KeyedRateLimiter::<String>::new(Quota::per_second(NonZeroU32::new(2).unwrap()));
/// let alice = "alice".to_string();
/// assert!(limiter.check(&alice)?.is_allowed());
/// assert!(limiter.check(&alice)?.is_allowed());
/// assert!(!limiter.check(&alice)?.is_allowed()); // alice is over her quota
/// assert!(limiter.check(&"bob".to_string())?.is_allowed()); // bob is not
///
/// // A paying customer gets more, without touching her current state:
/// limiter.set_key_quota(&alice, Quota::per_second(NonZeroU32::new(100).unwrap()));
/// assert!(limiter.check(&alice)?.is_allowed());
/// # Ok::<(), flowbed_ratelimit::KeyedCheckError>(())
/// ```
pub struct KeyedRateLimiter<K, C: Clock = MonotonicClock, S = RandomState> {
    shards: Shards<K, S>,
    default_quota: QuotaCell,
    /// Quotas of keys that have their own; their states carry the override flag.
    overrides: RwLock<HashMap<K, Quota, S>>,
    tracked: AtomicUsize,
    max_keys: usize,
    when_full: WhenFull,
    sweep_interval: u64,
    next_sweep: AtomicU64,
    /// When a full limiter may sweep again (see `sweep_when_full`).
    next_full_sweep: AtomicU64,
    clock: C,
}

impl<K: Hash + Eq + Clone> KeyedRateLimiter<K> {
    /// A keyed limiter with `quota` per key and default settings.
    pub fn new(quota: Quota) -> Self {
        Self::builder(quota).build()
    }

    /// A builder for a keyed limiter with `quota` per key.
    pub fn builder(quota: Quota) -> KeyedBuilder<K> {
        KeyedBuilder {
            quota,
            max_keys: DEFAULT_MAX_KEYS,
            when_full: WhenFull::default(),
            sweep_interval: DEFAULT_SWEEP_INTERVAL,
            shards: default_shards(),
            clock: MonotonicClock::new(),
            hasher: RandomState::new(),
            key: std::marker::PhantomData,
        }
    }
}

impl<K: Hash + Eq + Clone, C: Clock, S: BuildHasher + Clone> KeyedRateLimiter<K, C, S> {
    pub(crate) fn from_builder(builder: KeyedBuilder<K, C, S>) -> Self {
        let now = builder.clock.now();
        let sweep_interval = u64::try_from(builder.sweep_interval.as_nanos()).unwrap_or(u64::MAX);
        Self {
            shards: Shards::new(builder.shards, builder.hasher.clone()),
            default_quota: QuotaCell::new(builder.quota),
            overrides: RwLock::new(HashMap::with_hasher(builder.hasher)),
            tracked: AtomicUsize::new(0),
            max_keys: builder.max_keys,
            when_full: builder.when_full,
            sweep_interval,
            next_sweep: AtomicU64::new(now.saturating_add(sweep_interval)),
            next_full_sweep: AtomicU64::new(0),
            clock: builder.clock,
        }
    }

    /// Admits one cell for `key` if its quota allows it now.
    ///
    /// Keys are compared by `Eq` and hashed once per check. A check of a known key
    /// read-locks one shard; a new key's first check write-locks it.
    ///
    /// # Errors
    ///
    /// [`KeyedCheckError::TooManyKeys`] if `key` is new and cannot be tracked (see
    /// [`WhenFull`]).
    #[inline]
    pub fn check(&self, key: &K) -> Result<Decision, KeyedCheckError> {
        self.check_n(key, 1)
    }

    /// Admits `n` cells for `key` at once if its quota allows all of them now.
    ///
    /// # Errors
    ///
    /// [`KeyedCheckError::InsufficientCapacity`] if `n` exceeds the key's burst;
    /// [`KeyedCheckError::TooManyKeys`] as for [`check`](Self::check).
    pub fn check_n(&self, key: &K, n: u32) -> Result<Decision, KeyedCheckError> {
        let hash = self.shards.hash(key);
        let now = self.clock.now();
        {
            let shard = self.shards.read(hash);
            if let Some(state) = find(&shard, hash, key) {
                let quota = self.quota_of(state, key);
                quota.fits(n)?;
                return Ok(state.check(now, n, &quota));
            }
        }
        self.check_new_key(key, hash, now, n)
    }

    /// The slow path: `key` was not tracked when we looked.
    #[cold]
    fn check_new_key(
        &self,
        key: &K,
        hash: u64,
        now: u64,
        n: u32,
    ) -> Result<Decision, KeyedCheckError> {
        // Refuse an impossible request before tracking anything.
        let own_quota = read(&self.overrides).get(key).copied();
        own_quota
            .unwrap_or_else(|| self.default_quota.load())
            .fits(n)?;
        self.sweep_if_due(now);
        loop {
            let mut shard = self.shards.write(hash);
            if let Some(state) = find(&shard, hash, key) {
                // Another thread inserted it meanwhile.
                let quota = self.quota_of(state, key);
                quota.fits(n)?;
                return Ok(state.check(now, n, &quota));
            }
            // Take a slot only if one is free, so `len()` never exceeds `max_keys`.
            let slot = self
                .tracked
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |tracked| {
                    (tracked < self.max_keys).then_some(tracked + 1)
                });
            if slot.is_ok() {
                // Look the override up again under the shard lock, which `set_key_quota`
                // holds while it changes the override.
                let overridden = read(&self.overrides).contains_key(key);
                let state = GcraCell::new(overridden);
                let quota = if overridden {
                    self.quota_of(&state, key)
                } else {
                    self.default_quota.load()
                };
                let decision = state.check(now, n, &quota);
                self.shards.insert(&mut shard, hash, key.clone(), state);
                return Ok(decision);
            }
            drop(shard);
            if self.sweep_when_full(now) > 0 {
                continue;
            }
            match self.when_full {
                WhenFull::EvictBusyKey if self.evict_one_busy() => continue,
                _ => {
                    return Err(KeyedCheckError::TooManyKeys {
                        max_keys: self.max_keys,
                    });
                }
            }
        }
    }

    /// Waits (without blocking a thread) until one cell is admitted for `key`; fair per
    /// key, and cancellation gives the cell back, as
    /// [`RateLimiter::until_ready`](crate::RateLimiter::until_ready).
    ///
    /// # Errors
    ///
    /// As [`check`](Self::check).
    #[cfg(feature = "tokio")]
    pub async fn until_key_ready(&self, key: &K) -> Result<(), KeyedCheckError> {
        self.until_key_n_ready(key, 1).await
    }

    /// Waits until `n` cells are admitted at once for `key`.
    ///
    /// # Errors
    ///
    /// As [`check_n`](Self::check_n).
    #[cfg(feature = "tokio")]
    pub async fn until_key_n_ready(&self, key: &K, n: u32) -> Result<(), KeyedCheckError> {
        let reservation = crate::wait::Reservation::make(KeyedSlot { limiter: self, key }, n)?;
        reservation.wait().await;
        Ok(())
    }

    /// Replaces the quota of every key that has no quota of its own. Keys keep what they
    /// have spent: a key that used 2 cells of a burst of 10 has 2 cells spent under the
    /// new quota too (its state is re-expressed in the new replenish interval).
    ///
    /// This visits every tracked key with all shards locked, so checks pause for as long
    /// (about a millisecond per 100,000 keys): an administrative operation, not one for
    /// every request.
    pub fn set_quota(&self, new: Quota) {
        let now = self.clock.now();
        let mut shards: Vec<_> = (0..self.shards.count())
            .map(|index| self.shards.write_shard(index))
            .collect();
        let old = self.default_quota.load();
        self.default_quota.store(new);
        for shard in &mut shards {
            for (_, state) in shard.iter() {
                if !state.is_overridden() {
                    state.rescale(now, &old, &new);
                }
            }
        }
    }

    /// The quota of keys without a quota of their own.
    pub fn quota(&self) -> Quota {
        self.default_quota.load()
    }

    /// Gives `key` a quota of its own (kept until [`clear_key_quota`](Self::clear_key_quota),
    /// also while the key is idle and untracked). The key keeps the cells it has spent, as
    /// with [`set_quota`](Self::set_quota).
    pub fn set_key_quota(&self, key: &K, quota: Quota) {
        let now = self.clock.now();
        let hash = self.shards.hash(key);
        // The shard lock makes the quota change and the state's rescaling one step for
        // the key's checks, which read both under the same lock.
        let shard = self.shards.write(hash);
        let old = write(&self.overrides).insert(key.clone(), quota);
        if let Some(state) = find(&shard, hash, key) {
            let old = if state.is_overridden() { old } else { None };
            state.rescale(
                now,
                &old.unwrap_or_else(|| self.default_quota.load()),
                &quota,
            );
            state.set_overridden(true);
        }
    }

    /// Returns `key` to the shared quota (keeping the cells it has spent); `false` if it
    /// had no quota of its own.
    pub fn clear_key_quota(&self, key: &K) -> bool {
        let now = self.clock.now();
        let hash = self.shards.hash(key);
        let shard = self.shards.write(hash);
        let old = write(&self.overrides).remove(key);
        if let (Some(state), Some(old)) = (find(&shard, hash, key), old) {
            state.rescale(now, &old, &self.default_quota.load());
            state.set_overridden(false);
        }
        old.is_some()
    }

    /// The quota `key` is checked against.
    pub fn key_quota(&self, key: &K) -> Quota {
        read(&self.overrides)
            .get(key)
            .copied()
            .unwrap_or_else(|| self.default_quota.load())
    }

    /// Forgets `key`'s state (its next check starts with a full burst); `false` if it was
    /// not tracked. Its own quota, if any, stays.
    pub fn reset_key(&self, key: &K) -> bool {
        let hash = self.shards.hash(key);
        let removed = self
            .shards
            .write(hash)
            .find_entry(hash, |(candidate, _)| candidate == key)
            .map(|entry| entry.remove())
            .is_ok();
        if removed {
            self.tracked.fetch_sub(1, Ordering::Relaxed);
        }
        removed
    }

    /// Forgets every idle key (fully replenished, so nothing is lost) and returns how many.
    pub fn evict_idle(&self) -> usize {
        self.evict_idle_at(self.clock.now())
    }

    /// Keys tracked now.
    pub fn len(&self) -> usize {
        self.tracked.load(Ordering::Relaxed)
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cap on tracked keys.
    pub fn max_keys(&self) -> usize {
        self.max_keys
    }

    /// The clock this limiter reads.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    #[inline]
    fn quota_of(&self, state: &GcraCell, key: &K) -> Quota {
        if state.is_overridden() {
            if let Some(quota) = read(&self.overrides).get(key) {
                return *quota;
            }
        }
        self.default_quota.load()
    }

    fn sweep_if_due(&self, now: u64) {
        let due = self.next_sweep.load(Ordering::Relaxed);
        if now >= due
            && self
                .next_sweep
                .compare_exchange(
                    due,
                    now.saturating_add(self.sweep_interval),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            self.evict_idle_at(now);
        }
    }

    /// Sweeps idle keys because a new key found the limiter full, unless a recent sweep
    /// makes another one pointless: a flood of new keys while every tracked key is busy
    /// must not sweep once per new key. After a sweep that took `d`, the next waits
    /// `max(100 × d, 1 ms)`, which bounds the time spent sweeping to about 1 %.
    fn sweep_when_full(&self, now: u64) -> usize {
        const MIN_GAP: u64 = 1_000_000;
        let due = self.next_full_sweep.load(Ordering::Relaxed);
        if now < due
            || self
                .next_full_sweep
                .compare_exchange(due, u64::MAX, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return 0;
        }
        let evicted = self.evict_idle_at(now);
        let finished = self.clock.now();
        let gap = finished
            .saturating_sub(now)
            .saturating_mul(100)
            .max(MIN_GAP);
        self.next_full_sweep
            .store(finished.saturating_add(gap), Ordering::Relaxed);
        evicted
    }

    fn evict_idle_at(&self, now: u64) -> usize {
        let mut evicted = 0;
        for index in 0..self.shards.count() {
            let mut shard = self.shards.write_shard(index);
            let before = shard.len();
            shard.retain(|(_, state)| !state.is_idle(now));
            evicted += before - shard.len();
        }
        self.tracked.fetch_sub(evicted, Ordering::Relaxed);
        evicted
    }

    /// Forgets the key closest to idle among a few in the first non-empty shard.
    fn evict_one_busy(&self) -> bool {
        for index in 0..self.shards.count() {
            let mut shard = self.shards.write_shard(index);
            let victim = shard
                .iter()
                .take(EVICTION_SAMPLE)
                .min_by_key(|(_, state)| state.theoretical_arrival())
                .map(|(key, _)| key.clone());
            if let Some(victim) = victim {
                let hash = self.shards.hash(&victim);
                if let Ok(entry) = shard.find_entry(hash, |(candidate, _)| *candidate == victim) {
                    entry.remove();
                    self.tracked.fetch_sub(1, Ordering::Relaxed);
                    return true;
                }
            }
        }
        false
    }
}

/// A key's GCRA state as a place to reserve cells for an async waiter.
#[cfg(feature = "tokio")]
struct KeyedSlot<'a, K, C: Clock, S> {
    limiter: &'a KeyedRateLimiter<K, C, S>,
    key: &'a K,
}

#[cfg(feature = "tokio")]
impl<K: Hash + Eq + Clone, C: Clock, S: BuildHasher + Clone> crate::wait::Slot
    for KeyedSlot<'_, K, C, S>
{
    type Error = KeyedCheckError;

    fn now(&self) -> u64 {
        self.limiter.clock.now()
    }

    fn reserve(&self, now: u64, cells: u32) -> Result<crate::gcra::Reserved, KeyedCheckError> {
        let limiter = self.limiter;
        let hash = limiter.shards.hash(self.key);
        loop {
            {
                let shard = limiter.shards.read(hash);
                if let Some(state) = find(&shard, hash, self.key) {
                    let quota = limiter.quota_of(state, self.key);
                    quota.fits(cells)?;
                    return Ok(state.reserve(now, cells, &quota));
                }
            }
            // Track the key with a zero-cell check (spends nothing), then reserve.
            let _tracked = limiter.check_new_key(self.key, hash, now, 0)?;
        }
    }

    fn release(&self, now: u64, reserved: &crate::gcra::Reserved) {
        let limiter = self.limiter;
        let hash = limiter.shards.hash(self.key);
        let shard = limiter.shards.read(hash);
        if let Some(state) = find(&shard, hash, self.key) {
            state.release(now, reserved);
        }
    }
}

impl<K, C: Clock, S> fmt::Debug for KeyedRateLimiter<K, C, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedRateLimiter")
            .field("quota", &self.default_quota.load())
            .field("tracked", &self.tracked.load(Ordering::Relaxed))
            .field("max_keys", &self.max_keys)
            .field("when_full", &self.when_full)
            .finish_non_exhaustive()
    }
}
