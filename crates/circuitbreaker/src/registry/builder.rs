//! Configuration of a [`Registry`].

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use flowbed_ratelimit::{Clock, MonotonicClock};

use crate::registry::{EntryEvent, Registry};
use crate::{Config, Event, Interest};

/// The default cap on breakers a registry holds: 10,000.
pub const DEFAULT_MAX_BREAKERS: usize = 10_000;
/// The default time after which a closed breaker nobody asked for is idle enough to
/// evict, whatever its window holds: 60 s.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) type ConfigFactory<K> = Arc<dyn Fn(&K) -> Config + Send + Sync>;
pub(crate) type EventCallback<K> = Arc<dyn Fn(&K, &Event) + Send + Sync>;
pub(crate) type EntryCallback<K> = Arc<dyn Fn(&K, EntryEvent) + Send + Sync>;

/// Builds a [`Registry`]; start with [`Registry::builder`].
///
/// A new breaker's [`Config`] is the first of: the key's own ([`configure`](Self::configure)),
/// the factory's ([`config_factory`](Self::config_factory)), the default
/// ([`default_config`](Self::default_config), itself [`Config::default`] unless set).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowbed_circuitbreaker::{Config, ManualClock, Registry};
///
/// let registry = Registry::<String>::builder()
///     .default_config(Config::builder().minimum_calls(20).build()?)
///     // The payment provider is slow and precious: a window of its own.
///     .configure("payments".to_string(), Config::builder().count_window(10).build()?)
///     .max_breakers(1_000)
///     .idle_timeout(Duration::from_secs(300))
///     .clock(ManualClock::new())
///     .build();
/// assert_eq!(registry.get(&"payments".to_string())?.config().minimum_calls(), 100);
/// assert_eq!(registry.get(&"search".to_string())?.config().minimum_calls(), 20);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a builder does nothing until `build()`"]
pub struct RegistryBuilder<K, C = MonotonicClock, S = RandomState> {
    pub(crate) default_config: Config,
    pub(crate) overrides: Vec<(K, Config)>,
    pub(crate) factory: Option<ConfigFactory<K>>,
    pub(crate) max_breakers: usize,
    pub(crate) idle_timeout: Duration,
    pub(crate) shards: Option<usize>,
    pub(crate) on_event: Option<(Interest, EventCallback<K>)>,
    pub(crate) on_entry: Option<EntryCallback<K>>,
    pub(crate) clock: C,
    pub(crate) hasher: S,
    pub(crate) key: PhantomData<fn(K)>,
}

impl<K, C: fmt::Debug, S> fmt::Debug for RegistryBuilder<K, C, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryBuilder")
            .field("default_config", &self.default_config)
            .field("configured_keys", &self.overrides.len())
            .field("config_factory", &self.factory.is_some())
            .field("max_breakers", &self.max_breakers)
            .field("idle_timeout", &self.idle_timeout)
            .field("shards", &self.shards)
            .field(
                "on_event",
                &self.on_event.as_ref().map(|(interest, _)| interest),
            )
            .field("on_entry", &self.on_entry.is_some())
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl<K> RegistryBuilder<K> {
    pub(crate) fn new() -> Self {
        RegistryBuilder {
            default_config: Config::default(),
            overrides: Vec::new(),
            factory: None,
            max_breakers: DEFAULT_MAX_BREAKERS,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            shards: None,
            on_event: None,
            on_entry: None,
            clock: MonotonicClock::new(),
            hasher: RandomState::new(),
            key: PhantomData,
        }
    }
}

impl<K, C, S> RegistryBuilder<K, C, S> {
    /// The configuration of breakers for keys without one of their own and when no
    /// [`config_factory`](Self::config_factory) is set (default: [`Config::default`],
    /// resilience4j's defaults).
    pub fn default_config(mut self, config: Config) -> Self {
        self.default_config = config;
        self
    }

    /// Computes the configuration of each new breaker from its key, for keys without a
    /// configuration of their own ([`configure`](Self::configure)); replaces the default
    /// configuration. Use it for configurations that follow a naming scheme
    /// (resilience4j's named configurations): `"db:*"` keys one way, `"http:*"` another.
    ///
    /// The factory runs outside the registry's locks, and may run more than once for a
    /// key when threads race to create its breaker (only one breaker is kept): make it a
    /// pure function of the key. To react once per breaker, use
    /// [`on_entry`](Self::on_entry).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowbed_circuitbreaker::{Config, Registry, WaitInOpen};
    ///
    /// let quick = Config::builder().wait_in_open(WaitInOpen::Fixed(Duration::from_secs(5))).build()?;
    /// let registry = Registry::<&str>::builder()
    ///     .config_factory(move |key| {
    ///         if key.starts_with("cache:") { quick.clone() } else { Config::default() }
    ///     })
    ///     .build();
    /// let cache = registry.get(&"cache:eu-1")?;
    /// assert_eq!(cache.config().wait_in_open(), WaitInOpen::Fixed(Duration::from_secs(5)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn config_factory(
        mut self,
        factory: impl Fn(&K) -> Config + Send + Sync + 'static,
    ) -> Self {
        self.factory = Some(Arc::new(factory));
        self
    }

    /// The most breakers the registry holds at once (default [`DEFAULT_MAX_BREAKERS`];
    /// values below 1 are raised to 1). A new key beyond it evicts a breaker that is safe
    /// to forget, or is refused with [`RegistryError::Full`](crate::RegistryError::Full)
    /// (see [`Registry`]).
    ///
    /// Each breaker takes about 1.5 KB plus its window (one byte per call of a count
    /// window, 32 bytes per bucket of a time window): the default cap with the default
    /// configuration is about 16 MB.
    pub fn max_breakers(mut self, max: usize) -> Self {
        self.max_breakers = max.max(1);
        self
    }

    /// How long a closed breaker must go without being handed out by
    /// [`get`](Registry::get) before it may be evicted although its window holds calls
    /// (default [`DEFAULT_IDLE_TIMEOUT`]). A closed breaker with an empty window may be
    /// evicted at any time: forgetting it loses nothing.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Number of shards of the map (rounded up to a power of two). The default grows with
    /// the cores and with [`max_breakers`](Self::max_breakers) (at most about 256
    /// breakers per shard, up to 1,024 shards), which keeps every write lock short.
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards.max(1).next_power_of_two());
        self
    }

    /// Calls `callback` with the key for every event of the given interest of every
    /// breaker the registry creates: one subscriber for all downstreams (log the
    /// transitions, count rejections per key). Like
    /// [`CircuitBreaker::subscribe`](crate::CircuitBreaker::subscribe), it runs on the
    /// thread that caused the event; keep it short. The registry never runs it while it
    /// holds one of its own locks, so the callback may use the registry.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use flowbed_circuitbreaker::{Event, Interest, Registry, State};
    ///
    /// let opened = Arc::new(Mutex::new(Vec::new()));
    /// let log = Arc::clone(&opened);
    /// let registry = Registry::<&str>::builder()
    ///     .on_event(Interest::Transitions, move |key, event| {
    ///         if let Event::Transition { to: State::ForcedOpen, .. } = event {
    ///             log.lock().unwrap().push(*key);
    ///         }
    ///     })
    ///     .build();
    /// registry.get(&"billing")?.transition_to(State::ForcedOpen);
    /// assert_eq!(opened.lock().unwrap()[..], ["billing"]);
    /// # Ok::<(), flowbed_circuitbreaker::RegistryError>(())
    /// ```
    pub fn on_event(
        mut self,
        interest: Interest,
        callback: impl Fn(&K, &Event) + Send + Sync + 'static,
    ) -> Self {
        self.on_event = Some((interest, Arc::new(callback)));
        self
    }

    /// Calls `callback` when a breaker enters or leaves the registry (resilience4j's
    /// entry added / removed events). It runs after the registry's locks are released,
    /// on the thread that caused it, exactly once per breaker added.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use flowbed_circuitbreaker::{EntryEvent, Registry};
    ///
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = Arc::clone(&seen);
    /// let registry = Registry::<u32>::builder()
    ///     .on_entry(move |key, event| log.lock().unwrap().push((*key, event)))
    ///     .build();
    /// registry.get(&7)?;
    /// registry.get(&7)?;
    /// registry.remove(&7);
    /// assert_eq!(seen.lock().unwrap()[..], [(7, EntryEvent::Added), (7, EntryEvent::Removed)]);
    /// # Ok::<(), flowbed_circuitbreaker::RegistryError>(())
    /// ```
    pub fn on_entry(mut self, callback: impl Fn(&K, EntryEvent) + Send + Sync + 'static) -> Self {
        self.on_entry = Some(Arc::new(callback));
        self
    }

    /// Gives every breaker a clone of `clock` (default [`MonotonicClock`]); the registry
    /// reads it too, for idle times. Use [`ManualClock`](crate::ManualClock) in tests.
    pub fn clock<C2: Clock + Clone>(self, clock: C2) -> RegistryBuilder<K, C2, S> {
        RegistryBuilder {
            default_config: self.default_config,
            overrides: self.overrides,
            factory: self.factory,
            max_breakers: self.max_breakers,
            idle_timeout: self.idle_timeout,
            shards: self.shards,
            on_event: self.on_event,
            on_entry: self.on_entry,
            clock,
            hasher: self.hasher,
            key: self.key,
        }
    }
}

impl<K, C, S> RegistryBuilder<K, C, S> {
    /// Gives `key` a configuration of its own, used when its breaker is created (the
    /// registry is built after every key is configured, so this is always before the
    /// key's first use). It wins over the factory and the default; configuring a key
    /// twice keeps the last configuration.
    pub fn configure(mut self, key: K, config: Config) -> Self {
        self.overrides.push((key, config));
        self
    }

    /// Hashes keys with `hasher` instead of std's DoS-resistant `RandomState`. Keep a
    /// keyed, randomized hasher if keys come from clients (host names in URLs, tenants).
    pub fn hasher<S2: BuildHasher + Clone>(self, hasher: S2) -> RegistryBuilder<K, C, S2> {
        RegistryBuilder {
            default_config: self.default_config,
            overrides: self.overrides,
            factory: self.factory,
            max_breakers: self.max_breakers,
            idle_timeout: self.idle_timeout,
            shards: self.shards,
            on_event: self.on_event,
            on_entry: self.on_entry,
            clock: self.clock,
            hasher,
            key: self.key,
        }
    }
}

impl<K, C, S> RegistryBuilder<K, C, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    C: Clock + Clone,
    S: BuildHasher + Clone,
{
    /// The registry.
    pub fn build(self) -> Registry<K, C, S> {
        Registry::from_builder(self)
    }
}

/// The default number of shards: 4 per core, and enough for at most about 256 breakers
/// per shard when full, up to 1,024 shards.
pub(crate) fn default_shards(max_breakers: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
    let for_cores = (cores * 4).next_power_of_two();
    let for_size = max_breakers.div_ceil(256).next_power_of_two().min(1024);
    for_cores.max(for_size)
}
