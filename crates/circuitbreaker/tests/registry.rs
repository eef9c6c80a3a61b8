//! `Registry`: get-or-create identity, per-key configuration (own > factory > default),
//! racing creators, the cap with its eviction rule (closed, unheld, empty or idle; least
//! recently used; never open, half-open or manual states), `Full`, removal, callbacks
//! that may use the registry, and a model-based property test of the cap.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, OnceLock, mpsc};
use std::thread;
use std::time::Duration;

use flowbed_circuitbreaker::{
    CircuitBreaker, Clock, Config, EntryEvent, Event, Interest, ManualClock, Outcome, Registry,
    RegistryBuilder, RegistryError, RegistryStats, State, WaitInOpen,
};
use proptest::prelude::*;

type Reg = Registry<&'static str, ManualClock>;
type EntryLog = Arc<Mutex<Vec<(&'static str, EntryEvent)>>>;

const IDLE: Duration = Duration::from_secs(10);

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A registry of at most `max` breakers on `clock`, idle after [`IDLE`], whose breakers
/// open on 2 failures out of the last 2 calls, wait 60 s, and close after 2 good probes.
fn builder(max: usize, clock: &ManualClock) -> RegistryBuilder<&'static str, ManualClock> {
    Registry::builder()
        .default_config(small())
        .max_breakers(max)
        .idle_timeout(IDLE)
        .clock(clock.clone())
}

fn small() -> Config {
    Config::builder()
        .count_window(2)
        .minimum_calls(2)
        .permitted_calls_in_half_open(2)
        .wait_in_open(WaitInOpen::Fixed(secs(60)))
        .build()
        .expect("valid test config")
}

fn with_entry_log(
    builder: RegistryBuilder<&'static str, ManualClock>,
) -> (RegistryBuilder<&'static str, ManualClock>, EntryLog) {
    let log: EntryLog = Arc::default();
    let sink = Arc::clone(&log);
    let builder = builder.on_entry(move |key, event| sink.lock().unwrap().push((*key, event)));
    (builder, log)
}

fn record(registry: &Reg, key: &'static str, outcome: Outcome) {
    registry
        .get(&key)
        .expect("breaker available")
        .try_acquire()
        .expect("call permitted")
        .record(outcome);
}

fn open(registry: &Reg, key: &'static str) {
    record(registry, key, Outcome::Failure);
    record(registry, key, Outcome::Failure);
    assert_eq!(registry.find(&key).unwrap().state(), State::Open);
}

fn keys(registry: &Reg) -> HashSet<&'static str> {
    registry
        .snapshot()
        .into_iter()
        .map(|(key, _)| key)
        .collect()
}

#[test]
fn the_same_key_gets_the_same_breaker() {
    let clock = ManualClock::new();
    let (builder, log) = with_entry_log(builder(10, &clock));
    let registry = builder.build();
    assert!(registry.is_empty());
    assert!(!registry.contains(&"a"));
    assert!(registry.find(&"a").is_none());

    let a = registry.get(&"a").unwrap();
    assert!(Arc::ptr_eq(&a, &registry.get(&"a").unwrap()));
    assert!(Arc::ptr_eq(&a, &registry.find(&"a").unwrap()));
    let b = registry.get(&"b").unwrap();
    assert!(!Arc::ptr_eq(&a, &b));

    // The breakers are independent.
    a.transition_to(State::ForcedOpen);
    assert_eq!(b.state(), State::Closed);
    assert_eq!(registry.len(), 2);
    assert!(registry.contains(&"a"));
    let stats = registry.stats();
    assert_eq!(
        (stats.breakers, stats.max_breakers, stats.created),
        (2, 10, 2)
    );
    assert_eq!((stats.evicted, stats.removed, stats.rejected), (0, 0, 0));
    assert_eq!(
        log.lock().unwrap()[..],
        [("a", EntryEvent::Added), ("b", EntryEvent::Added)]
    );
}

#[test]
fn a_keys_own_config_beats_the_factory_which_beats_the_default() {
    let min = |n| Config::builder().minimum_calls(n).build().unwrap();
    let registry = Registry::<String>::builder()
        .default_config(min(7))
        .config_factory(move |key: &String| {
            if key.starts_with("db:") {
                min(3)
            } else {
                min(9)
            }
        })
        .configure("db:orders".to_string(), min(5))
        .configure("web".to_string(), min(6))
        .configure("web".to_string(), min(4)) // the last one wins
        .build();
    assert_eq!(registry.default_config().minimum_calls(), 7);
    for (key, expected) in [("db:orders", 5), ("db:users", 3), ("web", 4), ("cache", 9)] {
        let key = key.to_string();
        assert_eq!(registry.config_for(&key).minimum_calls(), expected, "{key}");
        assert_eq!(
            registry.get(&key).unwrap().config().minimum_calls(),
            expected,
            "{key}"
        );
    }

    // Without a factory, keys without their own config get the default.
    let registry = Registry::<u32>::builder()
        .default_config(min(7))
        .configure(1, min(2))
        .build();
    let one = registry.get(&1).unwrap();
    let two = registry.get(&2).unwrap();
    assert_eq!(two.config().minimum_calls(), 7);
    // And the configs take effect: 2 failures open key 1 and not key 2.
    for breaker in [&one, &two] {
        for _ in 0..2 {
            let _ = breaker.call(|| Err::<(), _>("down"));
        }
    }
    assert_eq!(one.state(), State::Open);
    assert_eq!(two.state(), State::Closed);
}

#[test]
fn get_with_computes_the_config_only_to_create() {
    let registry = Registry::<&str>::new(Config::default());
    let made = AtomicUsize::new(0);
    let make = || {
        made.fetch_add(1, Ordering::Relaxed);
        Config::builder().minimum_calls(3).build().unwrap()
    };
    let first = registry.get_with(&"geo", make).unwrap();
    assert_eq!(first.config().minimum_calls(), 3);
    let again = registry.get_with(&"geo", make).unwrap();
    assert!(Arc::ptr_eq(&first, &again));
    assert_eq!(made.load(Ordering::Relaxed), 1);
    // `get` of an existing key ignores the default too.
    assert_eq!(registry.get(&"geo").unwrap().config().minimum_calls(), 3);
}

#[test]
fn threads_racing_to_create_a_key_share_one_breaker() {
    const THREADS: usize = 8;
    for _ in 0..50 {
        let factory_calls = Arc::new(AtomicUsize::new(0));
        let calls = Arc::clone(&factory_calls);
        let added = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&added);
        let registry = Registry::<&str>::builder()
            .config_factory(move |_| {
                calls.fetch_add(1, Ordering::Relaxed);
                Config::default()
            })
            .on_entry(move |_, event| {
                assert_eq!(event, EntryEvent::Added);
                seen.fetch_add(1, Ordering::Relaxed);
            })
            .build();
        let barrier = Barrier::new(THREADS);
        let breakers: Vec<_> = thread::scope(|scope| {
            let handles: Vec<_> = (0..THREADS)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        registry.get(&"shared").unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for breaker in &breakers {
            assert!(Arc::ptr_eq(breaker, &breakers[0]));
        }
        assert!(Arc::ptr_eq(&breakers[0], &registry.get(&"shared").unwrap()));
        assert_eq!(registry.len(), 1);
        assert_eq!(registry.stats().created, 1);
        assert_eq!(added.load(Ordering::Relaxed), 1);
        // Losers may have built a config (outside the lock), never a second entry.
        assert!((1..=THREADS).contains(&factory_calls.load(Ordering::Relaxed)));
    }
}

#[test]
fn concurrent_new_keys_never_exceed_the_cap() {
    const THREADS: u64 = 4;
    const KEYS: u64 = 300;
    const MAX: usize = 16;
    let registry = Registry::<u64>::builder()
        .max_breakers(MAX)
        .shards(4)
        .build();
    let barrier = Barrier::new(THREADS as usize);
    thread::scope(|scope| {
        for t in 0..THREADS {
            let (registry, barrier) = (&registry, &barrier);
            scope.spawn(move || {
                barrier.wait();
                for key in 0..KEYS {
                    // Closed with an empty window and dropped at once: always evictable.
                    registry.get(&(t * KEYS + key)).unwrap();
                    assert!(registry.len() <= MAX);
                }
            });
        }
    });
    let stats = registry.stats();
    assert_eq!(stats.breakers, MAX);
    assert_eq!(registry.snapshot().len(), MAX);
    assert_eq!(stats.created, THREADS * KEYS);
    assert_eq!(stats.evicted, THREADS * KEYS - MAX as u64);
    assert_eq!(stats.rejected, 0);
}

#[test]
fn an_empty_window_is_evicted_before_a_less_recently_used_one() {
    let clock = ManualClock::new();
    let (builder, log) = with_entry_log(builder(3, &clock));
    let registry = builder.build();
    record(&registry, "a", Outcome::Success);
    record(&registry, "c", Outcome::Success);
    clock.advance(secs(60)); // a and c are idle...
    registry.get(&"b").unwrap(); // ...b is fresh, but its window is empty
    registry.get(&"d").unwrap();
    assert_eq!(keys(&registry), HashSet::from(["a", "c", "d"]));
    assert_eq!(
        log.lock().unwrap()[3..],
        [("b", EntryEvent::Evicted), ("d", EntryEvent::Added)]
    );
    assert_eq!(registry.stats().evicted, 1);
}

#[test]
fn the_least_recently_used_idle_breaker_goes_first() {
    let clock = ManualClock::new();
    let registry = builder(3, &clock).build();
    for key in ["a", "b", "c"] {
        record(&registry, key, Outcome::Success);
    }
    for key in ["b", "a", "c"] {
        clock.advance(secs(1));
        registry.get(&key).unwrap();
    }
    clock.advance(secs(20)); // all idle: last used 22, 21 and 20 s ago
    registry.get(&"d").unwrap();
    assert_eq!(keys(&registry), HashSet::from(["a", "c", "d"]));
    record(&registry, "d", Outcome::Success); // not empty: only idle keys compete
    clock.advance(IDLE);
    registry.get(&"e").unwrap();
    assert_eq!(keys(&registry), HashSet::from(["c", "d", "e"]));
}

#[test]
fn a_large_registry_evicts_from_a_sample_of_the_least_recently_used() {
    // 64 idle breakers, last used at 1 s, 2 s, ... 64 s. An eviction compares 32 of
    // them, so its victim is always among the 33 least recently used of those left.
    let clock = ManualClock::new();
    let evicted = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&evicted);
    let registry = Registry::<u32>::builder()
        .default_config(small())
        .max_breakers(64)
        .shards(8)
        .idle_timeout(IDLE)
        .clock(clock.clone())
        .on_entry(move |key, event| {
            if event == EntryEvent::Evicted {
                sink.lock().unwrap().push(*key);
            }
        })
        .build();
    for key in 0..64 {
        clock.advance(secs(1));
        let _ = registry.get(&key).unwrap().call(|| Ok::<_, ()>(()));
    }
    clock.advance(IDLE);
    let mut left: Vec<u32> = (0..64).collect(); // by last use, oldest first
    for new in 64..80 {
        // Recent calls keep the new breakers out of the competition.
        let _ = registry.get(&new).unwrap().call(|| Ok::<_, ()>(()));
        let victim = evicted
            .lock()
            .unwrap()
            .pop()
            .expect("one eviction per new key");
        let position = left.iter().position(|key| *key == victim).unwrap();
        assert!(
            position < left.len() - 31,
            "evicted {victim}, position {position} of {}",
            left.len()
        );
        left.remove(position);
    }
    assert_eq!(registry.len(), 64);
}

#[test]
fn a_recently_used_breaker_with_calls_is_kept_until_idle() {
    let clock = ManualClock::new();
    let registry = builder(1, &clock).build();
    record(&registry, "a", Outcome::Failure);
    assert_eq!(
        registry.get(&"b").err(),
        Some(RegistryError::Full { max: 1 })
    );
    clock.advance(IDLE - Duration::from_nanos(1));
    assert!(registry.get(&"b").is_err());
    assert_eq!(registry.stats().rejected, 2);
    assert!(registry.contains(&"a"));
    // `find` does not count as a use; `get` does.
    registry.find(&"a").unwrap();
    clock.advance(Duration::from_nanos(1));
    registry.get(&"b").unwrap();
    assert_eq!(keys(&registry), HashSet::from(["b"]));
}

#[test]
fn open_half_open_and_manual_states_are_never_evicted() {
    let clock = ManualClock::new();
    let registry = builder(5, &clock).build();
    open(&registry, "half-open");
    clock.advance(secs(60));
    assert_eq!(
        registry.find(&"half-open").unwrap().state(),
        State::HalfOpen
    );
    open(&registry, "open");
    for (key, state) in [
        ("forced", State::ForcedOpen),
        ("disabled", State::Disabled),
        ("metrics-only", State::MetricsOnly),
    ] {
        registry.get(&key).unwrap().transition_to(state);
    }
    clock.advance(secs(3_600)); // idle for an hour, window empty or not
    let before = keys(&registry);
    assert_eq!(before.len(), 5);
    let err = registry.get(&"new").unwrap_err();
    assert_eq!(err, RegistryError::Full { max: 5 });
    assert_eq!(
        err.to_string(),
        "registry is full: 5 breakers and none of them is safe to evict"
    );
    assert_eq!(keys(&registry), before);
    assert_eq!(registry.stats().rejected, 1);
    assert_eq!(registry.stats().evicted, 0);

    // A reset breaker is closed with an empty window again: fair game.
    registry.find(&"forced").unwrap().reset();
    registry.get(&"new").unwrap();
    assert!(!registry.contains(&"forced"));
    assert_eq!(registry.len(), 5);
}

#[test]
fn a_breaker_that_recovers_becomes_evictable() {
    let clock = ManualClock::new();
    let registry = builder(1, &clock).build();
    open(&registry, "a");
    clock.advance(secs(60));
    record(&registry, "a", Outcome::Success); // probe 1 of 2
    assert!(registry.get(&"b").is_err(), "half-open is kept");
    record(&registry, "a", Outcome::Success); // the trial closes the breaker
    assert_eq!(registry.find(&"a").unwrap().state(), State::Closed);
    registry.get(&"b").unwrap(); // closed with an empty window (closing cleared it)
    assert_eq!(keys(&registry), HashSet::from(["b"]));
}

#[test]
fn a_breaker_someone_holds_is_not_evicted() {
    let clock = ManualClock::new();
    let registry = builder(1, &clock).build();
    let held = registry.get(&"a").unwrap();
    clock.advance(secs(3_600));
    assert_eq!(
        registry.get(&"b").err(),
        Some(RegistryError::Full { max: 1 })
    );
    // A snapshot holds too.
    drop(held);
    let snapshot = registry.snapshot();
    assert!(registry.get(&"b").is_err());
    drop(snapshot);
    registry.get(&"b").unwrap();
    assert_eq!(keys(&registry), HashSet::from(["b"]));
}

#[test]
fn a_time_window_that_emptied_makes_its_breaker_evictable() {
    let clock = ManualClock::new();
    let config = Config::builder()
        .time_window(secs(10), secs(1))
        .build()
        .unwrap();
    let registry = builder(1, &clock)
        .default_config(config)
        .idle_timeout(secs(3_600))
        .build();
    record(&registry, "a", Outcome::Failure);
    clock.advance(secs(5));
    registry.get(&"a").unwrap();
    assert!(
        registry.get(&"b").is_err(),
        "the failure is still in the window"
    );
    clock.advance(secs(6)); // the failure left the window
    assert_eq!(registry.find(&"a").unwrap().metrics().calls, 0);
    registry.get(&"b").unwrap();
    assert_eq!(keys(&registry), HashSet::from(["b"]));
}

#[test]
fn the_whole_registry_is_searched_for_a_victim() {
    let clock = ManualClock::new();
    let registry = Registry::<u32>::builder()
        .default_config(small())
        .max_breakers(100)
        .shards(64)
        .clock(clock.clone())
        .build();
    for key in 0..100 {
        let breaker = registry.get(&key).unwrap();
        if key != 57 {
            breaker.transition_to(State::ForcedOpen);
        }
    }
    let _held = registry.get(&100).unwrap();
    assert!(!registry.contains(&57));
    assert_eq!(
        registry.get(&101).err(),
        Some(RegistryError::Full { max: 100 })
    );
    assert_eq!(registry.len(), 100);
}

#[test]
fn removed_breakers_keep_working_for_their_holders() {
    let clock = ManualClock::new();
    let (builder, log) = with_entry_log(builder(10, &clock));
    let registry = builder.build();
    let old = registry.get(&"a").unwrap();
    assert!(registry.remove(&"b").is_none());
    let removed = registry.remove(&"a").unwrap();
    assert!(Arc::ptr_eq(&old, &removed));
    assert!(registry.is_empty());
    assert!(registry.remove(&"a").is_none());

    // The holder's breaker still counts and trips.
    for _ in 0..2 {
        let _ = old.call(|| Err::<(), _>("down"));
    }
    assert_eq!(old.state(), State::Open);
    assert!(old.call(|| Ok::<_, ()>(())).unwrap_err().is_rejected());
    // The registry has a fresh one for the key.
    let new = registry.get(&"a").unwrap();
    assert!(!Arc::ptr_eq(&old, &new));
    assert_eq!(new.state(), State::Closed);
    assert_eq!(new.metrics().calls, 0);
    assert_eq!(registry.stats().removed, 1);
    assert_eq!(
        log.lock().unwrap()[..],
        [
            ("a", EntryEvent::Added),
            ("a", EntryEvent::Removed),
            ("a", EntryEvent::Added)
        ]
    );
}

#[test]
fn retain_removes_what_the_predicate_rejects() {
    let clock = ManualClock::new();
    let (builder, log) = with_entry_log(builder(10, &clock));
    let registry = builder.build();
    for key in ["a", "b", "c", "d"] {
        registry.get(&key).unwrap();
    }
    open(&registry, "b");
    open(&registry, "d");
    // Drop the open ones; the predicate may use the registry (no lock is held).
    let removed = registry.retain(|key, breaker| {
        assert!(registry.contains(key));
        breaker.state() == State::Closed
    });
    assert_eq!(removed, 2);
    assert_eq!(keys(&registry), HashSet::from(["a", "c"]));
    assert_eq!(registry.stats().removed, 2);
    let mut gone: Vec<_> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, event)| *event == EntryEvent::Removed)
        .map(|(key, _)| *key)
        .collect();
    gone.sort_unstable();
    assert_eq!(gone, ["b", "d"]);
}

#[test]
fn metrics_and_snapshot_list_every_breaker() {
    let clock = ManualClock::new();
    let registry = builder(10, &clock).build();
    record(&registry, "a", Outcome::Success);
    open(&registry, "b");
    let mut metrics = registry.metrics();
    metrics.sort_by_key(|(key, _)| *key);
    let summary: Vec<_> = metrics
        .iter()
        .map(|(key, m)| (*key, m.state, m.calls, m.failed))
        .collect();
    assert_eq!(
        summary,
        [("a", State::Closed, 1, 0), ("b", State::Open, 2, 2)]
    );
    let snapshot: HashMap<_, _> = registry.snapshot().into_iter().collect();
    assert_eq!(snapshot.len(), 2);
    assert!(Arc::ptr_eq(&snapshot["b"], &registry.get(&"b").unwrap()));
    // `metrics` holds nothing afterwards: both can still be evicted.
    drop(snapshot);
    let _ = registry.metrics();
    for key in ["a", "b"] {
        assert_eq!(Arc::strong_count(&registry.find(&key).unwrap()), 2);
    }
}

#[test]
fn one_subscriber_hears_every_breaker_with_its_key() {
    let clock = ManualClock::new();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let registry = builder(10, &clock)
        .on_event(Interest::All, move |key, event| {
            sink.lock().unwrap().push((*key, *event))
        })
        .build();
    record(&registry, "a", Outcome::Success);
    open(&registry, "b");
    let events = events.lock().unwrap();
    let calls = |key| {
        events
            .iter()
            .filter(|(k, e)| *k == key && matches!(e, Event::Call { .. }))
            .count()
    };
    assert_eq!((calls("a"), calls("b")), (1, 2));
    let transitions: Vec<_> = events
        .iter()
        .filter(|(_, e)| matches!(e, Event::Transition { .. }))
        .collect();
    assert_eq!(
        transitions,
        [&(
            "b",
            Event::Transition {
                from: State::Closed,
                to: State::Open
            }
        )]
    );
}

#[test]
fn transitions_only_subscribers_cost_nothing_per_call() {
    let clock = ManualClock::new();
    let seen = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&seen);
    let registry = builder(10, &clock)
        .on_event(Interest::Transitions, move |_, _| {
            count.fetch_add(1, Ordering::Relaxed);
        })
        .build();
    record(&registry, "a", Outcome::Success);
    record(&registry, "b", Outcome::Failure);
    assert_eq!(seen.load(Ordering::Relaxed), 0);
    record(&registry, "b", Outcome::Failure);
    assert_eq!(seen.load(Ordering::Relaxed), 1);
}

/// Runs `f` on another thread and fails (instead of hanging) if it deadlocks.
fn within_a_minute(f: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        f();
        done.send(()).unwrap();
    });
    finished
        .recv_timeout(Duration::from_secs(60))
        .expect("deadlock: the registry ran a callback under its own lock");
}

#[test]
fn callbacks_may_use_the_registry() {
    within_a_minute(|| {
        let clock = ManualClock::new();
        let cell: Arc<OnceLock<Reg>> = Arc::new(OnceLock::new());
        let (for_factory, for_events, for_entries) =
            (Arc::clone(&cell), Arc::clone(&cell), Arc::clone(&cell));
        let registry = builder(2, &clock)
            .shards(1) // every key in one shard: any lock held would deadlock
            .idle_timeout(secs(3_600 * 24))
            .config_factory(move |key| {
                if let Some(registry) = for_factory.get() {
                    let _ = registry.contains(key);
                    if *key == "child" {
                        registry.get(&"parent").unwrap();
                    }
                }
                small()
            })
            .on_event(Interest::Transitions, move |_, event| {
                let to_half_open = matches!(
                    event,
                    Event::Transition {
                        to: State::HalfOpen,
                        ..
                    }
                );
                if let Some(registry) = for_events.get().filter(|_| to_half_open) {
                    let _ = registry.get(&"from-event");
                }
            })
            .on_entry(move |_, _| {
                if let Some(registry) = for_entries.get() {
                    let _ = registry.snapshot();
                    let _ = registry.contains(&"x");
                }
            })
            .build();
        assert!(cell.set(registry).is_ok());
        let registry = cell.get().unwrap();

        registry.get(&"child").unwrap(); // the factory creates "parent" on the way
        assert_eq!(keys(registry), HashSet::from(["child", "parent"]));
        registry.remove(&"child");
        registry.remove(&"parent");

        // An open breaker whose wait is over, held by nobody: an eviction scan must not
        // be the one to move it to half-open (its subscribers would run under the lock).
        open(registry, "a");
        record(registry, "b", Outcome::Failure);
        clock.advance(secs(61));
        assert_eq!(
            registry.get(&"c").err(),
            Some(RegistryError::Full { max: 2 })
        );
        // Now move it, outside any lock: the event handler's `get` fails (full) quietly.
        assert_eq!(registry.find(&"a").unwrap().state(), State::HalfOpen);
        assert!(!registry.contains(&"from-event"));
    });
}

#[test]
fn max_breakers_is_at_least_one() {
    let registry = Registry::<u8>::builder().max_breakers(0).build();
    assert_eq!(registry.max_breakers(), 1);
    registry.get(&1).unwrap();
    registry.get(&2).unwrap();
    assert_eq!(registry.len(), 1);
}

#[test]
fn accessors_report_the_settings() {
    let clock = ManualClock::new();
    let registry = builder(42, &clock).build();
    assert_eq!(registry.max_breakers(), 42);
    assert_eq!(registry.idle_timeout(), IDLE);
    clock.advance(secs(3));
    assert_eq!(registry.clock().now(), 3_000_000_000);
    let debug = format!("{registry:?}");
    assert!(debug.contains("max_breakers: 42"), "{debug}");
    let defaults = Registry::<u8>::new(Config::default());
    assert_eq!(
        defaults.max_breakers(),
        flowbed_circuitbreaker::DEFAULT_MAX_BREAKERS
    );
    assert_eq!(
        defaults.idle_timeout(),
        flowbed_circuitbreaker::DEFAULT_IDLE_TIMEOUT
    );
}

#[test]
fn registry_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Registry<String>>();
    send_sync::<Registry<u64, ManualClock>>();
    send_sync::<RegistryBuilder<String>>();
    send_sync::<RegistryError>();
    send_sync::<RegistryStats>();
    send_sync::<EntryEvent>();
    send_sync::<Arc<CircuitBreaker<ManualClock>>>();
}

/// What the property test does to a registry of at most 4 breakers over 6 keys.
#[derive(Debug, Clone)]
enum Op {
    Get(u8),
    Call(u8, bool),
    Force(u8, State),
    Reset(u8),
    Hold(u8),
    ReleaseAll,
    Remove(u8),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0u8..6;
    prop_oneof![
        3 => key.clone().prop_map(Op::Get),
        4 => (key.clone(), any::<bool>()).prop_map(|(k, ok)| Op::Call(k, ok)),
        1 => (key.clone(), prop::sample::select(vec![
            State::ForcedOpen, State::Disabled, State::MetricsOnly, State::Closed,
        ])).prop_map(|(k, s)| Op::Force(k, s)),
        1 => key.clone().prop_map(Op::Reset),
        1 => key.clone().prop_map(Op::Hold),
        1 => Just(Op::ReleaseAll),
        1 => key.prop_map(Op::Remove),
        2 => (0u64..15).prop_map(Op::Advance),
    ]
}

/// The model: what the registry held before an operation, with the facts the eviction
/// rule depends on, read through the public API.
#[derive(Debug)]
struct Seen {
    state: State,
    calls: u64,
    held: bool,
    idle_secs: u64,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Against a model of the rule: the registry never holds more than its cap; a `get`
    /// that creates evicts exactly one breaker when full, and only one the rule allows
    /// (closed, unheld, empty or idle), preferring empty windows and then the least
    /// recently used; it fails with `Full` exactly when none is allowed; nothing else
    /// ever disappears.
    #[test]
    fn eviction_follows_the_rule(ops in prop::collection::vec(op(), 1..80)) {
        const MAX: usize = 4;
        let clock = ManualClock::new();
        let registry: Registry<u8, ManualClock> = Registry::builder()
            .default_config(small())
            .max_breakers(MAX)
            .idle_timeout(IDLE)
            .clock(clock.clone())
            .build();
        let mut held: Vec<Arc<CircuitBreaker<ManualClock>>> = Vec::new();
        // When `get` last handed each key's breaker out (seconds).
        let mut last_get: HashMap<u8, u64> = HashMap::new();
        let mut now = 0u64;
        for op in ops {
            let before: HashMap<u8, Seen> = registry
                .snapshot()
                .into_iter()
                .map(|(key, breaker)| {
                    let metrics = breaker.metrics();
                    let seen = Seen {
                        state: metrics.state,
                        calls: metrics.calls,
                        // The snapshot's own Arc and this one are not holders.
                        held: Arc::strong_count(&breaker) > 2,
                        idle_secs: now - last_get[&key],
                    };
                    (key, seen)
                })
                .collect();
            let creating = match op {
                Op::Get(k) | Op::Call(k, _) | Op::Hold(k) => Some(k),
                _ => None,
            }
            .filter(|k| !before.contains_key(k));
            let result = match op {
                Op::Get(k) => registry.get(&k).map(drop),
                Op::Call(k, ok) => registry.get(&k).map(|breaker| {
                    let _ = breaker.call(|| if ok { Ok(()) } else { Err(()) });
                }),
                Op::Hold(k) => registry.get(&k).map(|breaker| held.push(breaker)),
                Op::Force(k, state) => {
                    if let Some(breaker) = registry.find(&k) {
                        breaker.transition_to(state);
                    }
                    Ok(())
                }
                Op::Reset(k) => {
                    if let Some(breaker) = registry.find(&k) {
                        breaker.reset();
                    }
                    Ok(())
                }
                Op::ReleaseAll => {
                    held.clear();
                    Ok(())
                }
                Op::Remove(k) => {
                    prop_assert_eq!(registry.remove(&k).is_some(), before.contains_key(&k));
                    Ok(())
                }
                Op::Advance(secs) => {
                    clock.advance(Duration::from_secs(secs));
                    now += secs;
                    Ok(())
                }
            };
            if let Op::Get(k) | Op::Call(k, _) | Op::Hold(k) = op {
                if result.is_ok() {
                    last_get.insert(k, now);
                }
            }
            prop_assert!(registry.len() <= MAX);
            let after: HashSet<u8> = registry.snapshot().into_iter().map(|(k, _)| k).collect();
            let gone: Vec<u8> = before.keys().copied().filter(|k| !after.contains(k)).collect();
            let evictable: Vec<(&u8, &Seen)> = before
                .iter()
                .filter(|(_, s)| {
                    s.state == State::Closed
                        && !s.held
                        && (s.calls == 0 || s.idle_secs >= IDLE.as_secs())
                })
                .collect();
            match (creating, before.len() == MAX) {
                (Some(k), true) => {
                    if evictable.is_empty() {
                        prop_assert_eq!(result, Err(RegistryError::Full { max: MAX }));
                        prop_assert!(gone.is_empty());
                        prop_assert!(!after.contains(&k));
                    } else {
                        prop_assert!(result.is_ok());
                        prop_assert_eq!(gone.len(), 1);
                        let victim = &before[&gone[0]];
                        let rank = |s: &Seen| (s.calls != 0, std::cmp::Reverse(s.idle_secs));
                        let best = evictable.iter().map(|(_, s)| rank(s)).min().unwrap();
                        prop_assert!(evictable.iter().any(|(key, _)| **key == gone[0]));
                        prop_assert_eq!(rank(victim), best);
                        prop_assert!(after.contains(&k));
                    }
                }
                (Some(k), false) => {
                    prop_assert!(result.is_ok());
                    prop_assert!(gone.is_empty());
                    prop_assert!(after.contains(&k));
                }
                (None, _) => {
                    prop_assert!(result.is_ok());
                    match op {
                        Op::Remove(k) => prop_assert!(gone == vec![k] || (gone.is_empty() && !before.contains_key(&k))),
                        _ => prop_assert!(gone.is_empty(), "{:?} lost {:?}", op, gone),
                    }
                }
            }
            prop_assert_eq!(registry.len(), after.len());
        }
    }
}
