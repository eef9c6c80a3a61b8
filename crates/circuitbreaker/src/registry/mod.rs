//! `Registry`: one breaker per downstream (per host, per tenant, per shard), created on
//! first use from shared defaults, with a cap on how many it holds.

mod builder;
mod shards;

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;
use std::time::Duration;

use flowbed_ratelimit::{Clock, MonotonicClock};

pub use builder::{DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_BREAKERS, RegistryBuilder};

use crate::sync::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use crate::{CircuitBreaker, Config, Event, Interest, Metrics, State};
use builder::{ConfigFactory, EntryCallback, EventCallback, default_shards};
use shards::{Shards, Slot, find, take};

/// How many evictable breakers an eviction compares before it picks the best of them.
const EVICTION_SAMPLE: usize = 32;

/// `get` refreshes a breaker's last-use time only when it is older than this, so threads
/// sharing a busy breaker do not all write the same cache line.
const TOUCH_GRANULARITY_NS: u64 = 1_000_000;

/// A registry could not hand out a breaker.
///
/// # Examples
///
/// ```
/// use flowbed_circuitbreaker::{Registry, RegistryError, State};
///
/// let registry = Registry::<u32>::builder().max_breakers(1).build();
/// registry.get(&1)?.transition_to(State::ForcedOpen); // never evicted
/// assert_eq!(registry.get(&2).unwrap_err(), RegistryError::Full { max: 1 });
/// # Ok::<(), RegistryError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The key has no breaker, the registry already holds `max` breakers, and none of
    /// them is safe to evict (every one is open, half-open, in a manual state, held by a
    /// caller, or closed with recent calls in its window). Try again later, or
    /// [`remove`](Registry::remove) breakers that are no longer needed.
    #[error("registry is full: {max} breakers and none of them is safe to evict")]
    Full {
        /// The registry's [`max_breakers`](RegistryBuilder::max_breakers).
        max: usize,
    },
}

/// A breaker entering or leaving a [`Registry`], for
/// [`on_entry`](RegistryBuilder::on_entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EntryEvent {
    /// A breaker was created for the key.
    Added,
    /// The key's breaker was taken out by [`remove`](Registry::remove) or
    /// [`retain`](Registry::retain).
    Removed,
    /// The key's breaker was evicted to make room for another key.
    Evicted,
}

/// A registry's counters, from [`Registry::stats`].
///
/// # Examples
///
/// ```
/// use flowbed_circuitbreaker::Registry;
///
/// let registry = Registry::<&str>::builder().max_breakers(1).build();
/// registry.get(&"a")?;
/// registry.get(&"b")?; // "a" is closed with an empty window: evicted
/// let stats = registry.stats();
/// assert_eq!((stats.breakers, stats.created, stats.evicted), (1, 2, 1));
/// # Ok::<(), flowbed_circuitbreaker::RegistryError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegistryStats {
    /// Breakers held now.
    pub breakers: usize,
    /// The cap on breakers held.
    pub max_breakers: usize,
    /// Breakers created since the registry was built.
    pub created: u64,
    /// Breakers evicted to make room.
    pub evicted: u64,
    /// Breakers taken out by `remove` or `retain`.
    pub removed: u64,
    /// `get`s refused with [`RegistryError::Full`].
    pub rejected: u64,
}

/// One breaker in the registry.
struct Entry<C: Clock> {
    breaker: Arc<CircuitBreaker<C>>,
    /// When `get` last handed the breaker out (clock nanoseconds, refreshed at most every
    /// [`TOUCH_GRANULARITY_NS`]).
    last_used: AtomicU64,
    /// The state the breaker last announced (`State as u8`), kept by a transition
    /// subscriber: evictions read it instead of `CircuitBreaker::state`, which may make a
    /// due transition and run subscribers' callbacks under the registry's locks.
    announced: Arc<AtomicU8>,
}

impl<C: Clock> Entry<C> {
    #[inline]
    fn touch(&self, now: u64) {
        if now.saturating_sub(self.last_used.load(Ordering::Relaxed)) >= TOUCH_GRANULARITY_NS {
            self.last_used.store(now, Ordering::Relaxed);
        }
    }
}

/// How good an eviction victim is; smaller is better: an empty window first (forgetting
/// it loses nothing), then the least recently used.
type Rank = (bool, u64);

enum Eviction {
    Evicted,
    /// The victim changed before it could be removed: look again.
    Raced,
    Nothing,
}

/// Circuit breakers by key — one per downstream service, host, tenant or partition —
/// created on first use, with shared defaults and bounded memory. resilience4j's
/// `CircuitBreakerRegistry`, with a cap.
///
/// - **Get or create**: [`get`](Self::get) returns the key's breaker, creating it on first
///   use from the key's configuration ([`configure`](RegistryBuilder::configure), else the
///   [`config_factory`](RegistryBuilder::config_factory), else the
///   [`default_config`](RegistryBuilder::default_config)). Threads racing to create a key
///   all get the same breaker. Getting an existing breaker hashes the key once,
///   read-locks one shard of the map and clones an `Arc`.
/// - **Bounded memory**: at most [`max_breakers`](RegistryBuilder::max_breakers) breakers.
///   A new key beyond it evicts one breaker that is *safe to forget*: **closed**, **held by
///   nobody** but the registry, and either with an **empty window** or **idle** (not handed
///   out by `get`) for at least [`idle_timeout`](RegistryBuilder::idle_timeout). Among
///   those it prefers empty windows (nothing is lost), then the least recently used
///   (approximately: it compares a sample of 32 candidates, or all of them if there are
///   fewer). If none is safe to forget, `get` fails with [`RegistryError::Full`].
///
///   Why those rules: forgetting an open or half-open breaker would send traffic straight
///   back to a failing downstream, and forgetting a disabled, forced-open or metrics-only
///   one would silently undo an operator's decision, so those stay until
///   [`remove`](Self::remove)d. A breaker a caller still holds is in use; evicting it
///   would free no memory (the caller keeps it alive) and split the key's state in two
///   (the caller's breaker and a fresh one from the next `get`).
///
///   When the registry is full and nothing is evictable, each new key's `get` looks at
///   every breaker before it fails (under read locks: other `get`s go on).
/// - **Events and numbers**: [`on_event`](RegistryBuilder::on_event) subscribes one
///   callback to every breaker (with its key), [`on_entry`](RegistryBuilder::on_entry)
///   hears breakers come and go; [`metrics`](Self::metrics) and
///   [`snapshot`](Self::snapshot) list them, [`stats`](Self::stats) counts.
///
/// A [`remove`](Self::remove)d breaker keeps working for whoever still holds it, apart
/// from the registry; the next `get` of its key creates a new one. (Eviction never takes
/// a breaker someone holds, so it cannot split a key's state.)
///
/// Keys are compared with `Eq` and hashed once per lookup with `S` (std's randomized
/// `RandomState` by default; see [`hasher`](RegistryBuilder::hasher)).
///
/// # Examples
///
/// ```
/// use flowbed_circuitbreaker::{CallError, Config, Registry};
///
/// let registry = Registry::<String>::new(Config::builder().minimum_calls(5).build()?);
///
/// fn fetch(host: &str) -> Result<String, std::io::Error> {
///     Err(std::io::Error::other(format!("{host} is down")))
/// }
///
/// for host in ["eu.example.com", "us.example.com"] {
///     let breaker = registry.get(&host.to_string())?;
///     match breaker.call(|| fetch(host)) {
///         Ok(body) => println!("{body}"),
///         Err(CallError::Rejected(rejected)) => println!("{host}: {rejected}"),
///         Err(CallError::Failed(error)) => println!("{host}: {error}"),
///     }
/// }
/// assert_eq!(registry.len(), 2);
/// assert_eq!(registry.get(&"eu.example.com".to_string())?.metrics().failed, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Registry<K, C: Clock = MonotonicClock, S = RandomState> {
    shards: Shards<K, Entry<C>, S>,
    default_config: Config,
    overrides: HashMap<K, Config, S>,
    factory: Option<ConfigFactory<K>>,
    on_event: Option<(Interest, EventCallback<K>)>,
    on_entry: Option<EntryCallback<K>>,
    /// Breakers held, never above `max_breakers` (a slot is reserved before inserting).
    len: AtomicUsize,
    max_breakers: usize,
    idle_timeout_ns: u64,
    /// Where the next eviction starts looking (a shard index, wrapping).
    cursor: AtomicUsize,
    created: AtomicU64,
    evicted: AtomicU64,
    removed: AtomicU64,
    rejected: AtomicU64,
    clock: C,
}

impl<K, C: Clock, S> fmt::Debug for Registry<K, C, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("breakers", &self.len.load(Ordering::Relaxed))
            .field("max_breakers", &self.max_breakers)
            .field("idle_timeout", &Duration::from_nanos(self.idle_timeout_ns))
            .field("default_config", &self.default_config)
            .finish_non_exhaustive()
    }
}

impl<K> Registry<K>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
{
    /// A registry whose breakers all start from `config`, with the default cap and clock.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use flowbed_circuitbreaker::{Config, Registry};
    ///
    /// let registry = Registry::<u64>::new(Config::default());
    /// let first = registry.get(&42)?;
    /// assert!(Arc::ptr_eq(&first, &registry.get(&42)?));
    /// # Ok::<(), flowbed_circuitbreaker::RegistryError>(())
    /// ```
    pub fn new(config: Config) -> Self {
        Self::builder().default_config(config).build()
    }

    /// A builder, starting from [`Config::default`], [`DEFAULT_MAX_BREAKERS`],
    /// [`DEFAULT_IDLE_TIMEOUT`] and the [`MonotonicClock`].
    pub fn builder() -> RegistryBuilder<K> {
        RegistryBuilder::new()
    }
}

impl<K, C, S> Registry<K, C, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    C: Clock + Clone,
    S: BuildHasher + Clone,
{
    pub(crate) fn from_builder(builder: RegistryBuilder<K, C, S>) -> Self {
        let shards = builder
            .shards
            .unwrap_or_else(|| default_shards(builder.max_breakers));
        let mut overrides = HashMap::with_hasher(builder.hasher.clone());
        overrides.extend(builder.overrides);
        Registry {
            shards: Shards::new(shards, builder.hasher),
            default_config: builder.default_config,
            overrides,
            factory: builder.factory,
            on_event: builder.on_event,
            on_entry: builder.on_entry,
            len: AtomicUsize::new(0),
            max_breakers: builder.max_breakers,
            idle_timeout_ns: u64::try_from(builder.idle_timeout.as_nanos()).unwrap_or(u64::MAX),
            cursor: AtomicUsize::new(0),
            created: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            removed: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            clock: builder.clock,
        }
    }

    /// The breaker of `key`, created from the key's configuration if it has none (see
    /// [`config_for`](Self::config_for)).
    ///
    /// # Errors
    ///
    /// [`RegistryError::Full`] if `key` has no breaker, the registry holds
    /// `max_breakers`, and none of them may be evicted (see [`Registry`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_circuitbreaker::{Config, Registry};
    ///
    /// let registry = Registry::<&str>::new(Config::default());
    /// let orders = registry.get(&"orders-db")?;
    /// let result = orders.call(|| Ok::<_, std::io::Error>(42));
    /// assert_eq!(result.ok(), Some(42));
    /// # Ok::<(), flowbed_circuitbreaker::RegistryError>(())
    /// ```
    #[inline]
    pub fn get(&self, key: &K) -> Result<Arc<CircuitBreaker<C>>, RegistryError> {
        let hash = self.shards.hash(key);
        let index = self.shards.index(hash);
        let now = self.clock.now();
        if let Some(breaker) = self.lookup(index, hash, key, Some(now)) {
            return Ok(breaker);
        }
        self.create(key, hash, index, now, None)
    }

    /// The breaker of `key`, created from `config()` if it has none (resilience4j's
    /// `circuitBreaker(name, config)`): for configurations that depend on more than the
    /// key. An existing breaker is returned as it is, and `config` is not called.
    ///
    /// # Errors
    ///
    /// [`RegistryError::Full`] as for [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_circuitbreaker::{Config, Registry};
    ///
    /// let registry = Registry::<&str>::new(Config::default());
    /// let timeout_ms = 250; // from the service's discovery record, say
    /// let breaker = registry.get_with(&"geo", || {
    ///     Config::builder()
    ///         .slow_call_duration(std::time::Duration::from_millis(timeout_ms / 2))
    ///         .build()
    ///         .expect("valid config")
    /// })?;
    /// assert!(breaker.config().slow_call_duration().is_some());
    /// # Ok::<(), flowbed_circuitbreaker::RegistryError>(())
    /// ```
    pub fn get_with(
        &self,
        key: &K,
        config: impl FnOnce() -> Config,
    ) -> Result<Arc<CircuitBreaker<C>>, RegistryError> {
        let hash = self.shards.hash(key);
        let index = self.shards.index(hash);
        let now = self.clock.now();
        if let Some(breaker) = self.lookup(index, hash, key, Some(now)) {
            return Ok(breaker);
        }
        self.create(key, hash, index, now, Some(config()))
    }

    /// The breaker of `key` if it has one, without creating it and without counting as a
    /// use for eviction (for dashboards and health checks).
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_circuitbreaker::{Config, Registry};
    ///
    /// let registry = Registry::<&str>::new(Config::default());
    /// assert!(registry.find(&"auth").is_none());
    /// registry.get(&"auth")?;
    /// assert!(registry.find(&"auth").is_some());
    /// # Ok::<(), flowbed_circuitbreaker::RegistryError>(())
    /// ```
    pub fn find(&self, key: &K) -> Option<Arc<CircuitBreaker<C>>> {
        let hash = self.shards.hash(key);
        self.lookup(self.shards.index(hash), hash, key, None)
    }

    /// Whether `key` has a breaker.
    pub fn contains(&self, key: &K) -> bool {
        let hash = self.shards.hash(key);
        find(&self.shards.read(self.shards.index(hash)), hash, key).is_some()
    }

    #[inline]
    fn lookup(
        &self,
        index: usize,
        hash: u64,
        key: &K,
        touch: Option<u64>,
    ) -> Option<Arc<CircuitBreaker<C>>> {
        let shard = self.shards.read(index);
        let entry = find(&shard, hash, key)?;
        if let Some(now) = touch {
            entry.touch(now);
        }
        Some(Arc::clone(&entry.breaker))
    }

    /// The slow path of `get`: `key` had no breaker when we looked.
    #[cold]
    fn create(
        &self,
        key: &K,
        hash: u64,
        index: usize,
        now: u64,
        config: Option<Config>,
    ) -> Result<Arc<CircuitBreaker<C>>, RegistryError> {
        // Built outside the lock (the factory is the user's code); a thread that loses
        // the race to insert drops its breaker unseen.
        let config = config.unwrap_or_else(|| self.config_for(key));
        let breaker = Arc::new(CircuitBreaker::with_clock(config, self.clock.clone()));
        let announced = Arc::new(AtomicU8::new(State::Closed as u8));
        let mirror = Arc::clone(&announced);
        breaker
            .subscribe(Interest::Transitions, move |event| match event {
                Event::Transition { to, .. } => mirror.store(*to as u8, Ordering::Release),
                Event::Reset => mirror.store(State::Closed as u8, Ordering::Release),
                _ => {}
            })
            .forget();
        if let Some((interest, callback)) = &self.on_event {
            let callback = Arc::clone(callback);
            let key = key.clone();
            breaker
                .subscribe(*interest, move |event| callback(&key, event))
                .forget();
        }
        loop {
            let mut shard = self.shards.write(index);
            if let Some(entry) = find(&shard, hash, key) {
                entry.touch(now);
                return Ok(Arc::clone(&entry.breaker));
            }
            let reserved = self
                .len
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |len| {
                    (len < self.max_breakers).then_some(len + 1)
                })
                .is_ok();
            if reserved {
                shard.insert(
                    Slot {
                        hash,
                        key: key.clone(),
                    },
                    Entry {
                        breaker: Arc::clone(&breaker),
                        last_used: AtomicU64::new(now),
                        announced,
                    },
                );
                drop(shard);
                self.created.fetch_add(1, Ordering::Relaxed);
                self.notify(key, EntryEvent::Added);
                return Ok(breaker);
            }
            drop(shard);
            match self.evict_one(now) {
                Eviction::Evicted | Eviction::Raced => continue,
                Eviction::Nothing => {
                    self.rejected.fetch_add(1, Ordering::Relaxed);
                    return Err(RegistryError::Full {
                        max: self.max_breakers,
                    });
                }
            }
        }
    }

    /// `Some(rank)` if `entry` may be evicted now.
    fn eviction_rank(&self, entry: &Entry<C>, now: u64) -> Option<Rank> {
        // Only the map holds it: nobody can be using it, and nobody can start to while
        // the caller holds the shard's lock. (The fence pairs with the release of the
        // last other holder's drop, so its recorded outcomes are visible.)
        if Arc::strong_count(&entry.breaker) != 1 {
            return None;
        }
        std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
        if entry.announced.load(Ordering::Acquire) != State::Closed as u8 {
            return None;
        }
        // Closed has no time-driven transitions: this reads, it changes nothing.
        let metrics = entry.breaker.metrics();
        if metrics.state != State::Closed {
            return None;
        }
        let last_used = entry.last_used.load(Ordering::Relaxed);
        let has_calls = metrics.calls != 0;
        if has_calls && now.saturating_sub(last_used) < self.idle_timeout_ns {
            return None;
        }
        Some((has_calls, last_used))
    }

    /// Evicts the best victim among the first [`EVICTION_SAMPLE`] evictable breakers found
    /// (in hash order, starting at a rotating shard), or among all of them if there are
    /// fewer. Hash order has nothing to do with recency, so the victim is close to the
    /// least recently used (as with Redis's sampled LRU), and the work stays bounded
    /// however many breakers the registry holds.
    fn evict_one(&self, now: u64) -> Eviction {
        let count = self.shards.count();
        let start = self.cursor.fetch_add(1, Ordering::Relaxed);
        let mut best: Option<(Rank, usize, u64, K)> = None;
        let mut candidates = 0;
        'shards: for step in 0..count {
            let index = start.wrapping_add(step) & (count - 1);
            let shard = self.shards.read(index);
            for (slot, entry) in shard.iter() {
                let Some(rank) = self.eviction_rank(entry, now) else {
                    continue;
                };
                candidates += 1;
                if best.as_ref().is_none_or(|(best, ..)| rank < *best) {
                    best = Some((rank, index, slot.hash, slot.key.clone()));
                }
                if candidates >= EVICTION_SAMPLE {
                    break 'shards;
                }
            }
        }
        let Some((_, index, hash, key)) = best else {
            return Eviction::Nothing;
        };
        let mut shard = self.shards.write(index);
        let still_evictable =
            find(&shard, hash, &key).is_some_and(|entry| self.eviction_rank(entry, now).is_some());
        if !still_evictable {
            return Eviction::Raced;
        }
        let entry = take(&mut shard, hash, &key);
        drop(shard);
        drop(entry);
        self.len.fetch_sub(1, Ordering::Relaxed);
        self.evicted.fetch_add(1, Ordering::Relaxed);
        self.notify(&key, EntryEvent::Evicted);
        Eviction::Evicted
    }

    fn notify(&self, key: &K, event: EntryEvent) {
        if let Some(callback) = &self.on_entry {
            callback(key, event);
        }
    }

    /// Takes `key`'s breaker out of the registry and returns it; `None` if it had none.
    /// Whoever holds the breaker can go on using it; the next [`get`](Self::get) creates
    /// a new one. Removing is how open or manually set breakers leave a full registry.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use flowbed_circuitbreaker::{Config, Registry, State};
    ///
    /// let registry = Registry::<&str>::new(Config::default());
    /// let old = registry.get(&"legacy")?;
    /// old.transition_to(State::ForcedOpen);
    /// let removed = registry.remove(&"legacy").expect("it was there");
    /// assert!(Arc::ptr_eq(&old, &removed));
    /// assert_eq!(registry.get(&"legacy")?.state(), State::Closed); // a new one
    /// assert_eq!(old.state(), State::ForcedOpen); // the old one still works
    /// # Ok::<(), flowbed_circuitbreaker::RegistryError>(())
    /// ```
    pub fn remove(&self, key: &K) -> Option<Arc<CircuitBreaker<C>>> {
        let hash = self.shards.hash(key);
        let entry = take(&mut self.shards.write(self.shards.index(hash)), hash, key)?;
        self.len.fetch_sub(1, Ordering::Relaxed);
        self.removed.fetch_add(1, Ordering::Relaxed);
        self.notify(key, EntryEvent::Removed);
        Some(entry.breaker)
    }

    /// Keeps only the breakers for which `keep` returns `true`, and returns how many it
    /// removed (as [`remove`](Self::remove) does). `keep` runs outside the registry's
    /// locks, one shard's breakers at a time, so it may use the registry; a breaker
    /// replaced meanwhile is left alone.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_circuitbreaker::{Config, Registry, State};
    ///
    /// let registry = Registry::<u32>::new(Config::default());
    /// for tenant in 0..4 {
    ///     registry.get(&tenant)?;
    /// }
    /// registry.get(&3)?.transition_to(State::ForcedOpen);
    /// // Tenants 2 and 3 were deleted.
    /// assert_eq!(registry.retain(|tenant, _| *tenant < 2), 2);
    /// assert_eq!(registry.len(), 2);
    /// # Ok::<(), flowbed_circuitbreaker::RegistryError>(())
    /// ```
    pub fn retain(&self, mut keep: impl FnMut(&K, &CircuitBreaker<C>) -> bool) -> usize {
        let mut removed = 0;
        for index in 0..self.shards.count() {
            let listed: Vec<(u64, K, Arc<CircuitBreaker<C>>)> = self
                .shards
                .read(index)
                .iter()
                .map(|(slot, entry)| (slot.hash, slot.key.clone(), Arc::clone(&entry.breaker)))
                .collect();
            let doomed: Vec<_> = listed
                .into_iter()
                .filter(|(_, key, breaker)| !keep(key, breaker))
                .collect();
            if doomed.is_empty() {
                continue;
            }
            let mut gone = Vec::with_capacity(doomed.len());
            {
                let mut shard = self.shards.write(index);
                for (hash, key, breaker) in doomed {
                    let same = find(&shard, hash, &key)
                        .is_some_and(|entry| Arc::ptr_eq(&entry.breaker, &breaker));
                    if same {
                        let entry = take(&mut shard, hash, &key);
                        gone.push((key, entry));
                    }
                }
            }
            self.len.fetch_sub(gone.len(), Ordering::Relaxed);
            self.removed.fetch_add(gone.len() as u64, Ordering::Relaxed);
            removed += gone.len();
            for (key, entry) in gone {
                drop(entry);
                self.notify(&key, EntryEvent::Removed);
            }
        }
        removed
    }

    /// Every key and its breaker, shard by shard (not one atomic picture of the whole
    /// registry while other threads add and remove).
    ///
    /// The returned `Arc`s count as holders: breakers in a snapshot are not evicted until
    /// it is dropped. For numbers only, [`metrics`](Self::metrics) holds nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_circuitbreaker::{Config, Registry, State};
    ///
    /// let registry = Registry::<&str>::new(Config::default());
    /// registry.get(&"a")?;
    /// registry.get(&"b")?.transition_to(State::ForcedOpen);
    /// let mut forced: Vec<_> = registry
    ///     .snapshot()
    ///     .into_iter()
    ///     .filter(|(_, breaker)| breaker.state() == State::ForcedOpen)
    ///     .map(|(key, _)| key)
    ///     .collect();
    /// assert_eq!(forced, ["b"]);
    /// # Ok::<(), flowbed_circuitbreaker::RegistryError>(())
    /// ```
    pub fn snapshot(&self) -> Vec<(K, Arc<CircuitBreaker<C>>)> {
        let mut all = Vec::with_capacity(self.len());
        for index in 0..self.shards.count() {
            let shard = self.shards.read(index);
            all.extend(
                shard
                    .iter()
                    .map(|(slot, entry)| (slot.key.clone(), Arc::clone(&entry.breaker))),
            );
        }
        all
    }

    /// Every key with its breaker's [`Metrics`] (for a dashboard or a `/metrics`
    /// endpoint). The metrics are read outside the registry's locks, one shard at a
    /// time, so events of transitions that fall due while reading run on this thread
    /// without any lock held.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_circuitbreaker::{Config, Registry};
    ///
    /// let registry = Registry::<&str>::new(Config::default());
    /// let _ = registry.get(&"search")?.call(|| Err::<(), _>("timeout"));
    /// let metrics = registry.metrics();
    /// assert_eq!(metrics.len(), 1);
    /// assert_eq!((metrics[0].0, metrics[0].1.failed), ("search", 1));
    /// # Ok::<(), flowbed_circuitbreaker::RegistryError>(())
    /// ```
    pub fn metrics(&self) -> Vec<(K, Metrics)> {
        let mut all = Vec::with_capacity(self.len());
        let mut shard_breakers = Vec::new();
        for index in 0..self.shards.count() {
            shard_breakers.extend(
                self.shards
                    .read(index)
                    .iter()
                    .map(|(slot, entry)| (slot.key.clone(), Arc::clone(&entry.breaker))),
            );
            all.extend(
                shard_breakers
                    .drain(..)
                    .map(|(key, breaker)| (key, breaker.metrics())),
            );
        }
        all
    }

    /// The configuration a new breaker for `key` gets: the key's own, else the
    /// factory's, else the default.
    pub fn config_for(&self, key: &K) -> Config {
        if let Some(config) = self.overrides.get(key) {
            return config.clone();
        }
        match &self.factory {
            Some(factory) => factory(key),
            None => self.default_config.clone(),
        }
    }

    /// The default configuration (see [`config_for`](Self::config_for)).
    pub fn default_config(&self) -> &Config {
        &self.default_config
    }

    /// Breakers held now.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether the registry holds no breaker.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cap on breakers held.
    pub fn max_breakers(&self) -> usize {
        self.max_breakers
    }

    /// How long a closed breaker with calls in its window must go unused before it may
    /// be evicted.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_nanos(self.idle_timeout_ns)
    }

    /// The clock the registry and its breakers read.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// The registry's counters (a few relaxed loads).
    pub fn stats(&self) -> RegistryStats {
        RegistryStats {
            breakers: self.len(),
            max_breakers: self.max_breakers,
            created: self.created.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
            removed: self.removed.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
        }
    }
}
