//! `KeyedRateLimiter`: per-key independence, idle eviction that loses nothing, automatic
//! sweeps, the hard cap on tracked keys (bounded memory under a flood of new keys),
//! per-key and run-time quota changes, reset, weighted checks above the burst, and
//! concurrent checks of one key.

use std::collections::HashMap;
use std::sync::Barrier;
use std::time::Duration;

use flowbed_ratelimit::{
    Clock, Decision, KeyedCheckError, KeyedRateLimiter, ManualClock, Quota, RateLimiter, WhenFull,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

mod common;

use common::{nz, per_second};

fn keyed(quota: Quota, clock: &ManualClock) -> KeyedRateLimiter<u64, ManualClock> {
    KeyedRateLimiter::builder(quota)
        .clock(clock.clone())
        .build()
}

/// Cells `key` could be admitted now, without spending any (a zero-cell check).
fn remaining(limiter: &KeyedRateLimiter<u64, ManualClock>, key: u64) -> u32 {
    limiter.check_n(&key, 0).unwrap().remaining()
}

#[test]
fn keys_are_limited_independently() {
    let clock = ManualClock::new();
    let limiter = keyed(per_second(3, 3), &clock);
    for expected in [2, 1, 0] {
        let decision = limiter.check(&1).unwrap();
        assert!(decision.is_allowed());
        assert_eq!(decision.remaining(), expected);
    }
    let denied = limiter.check(&1).unwrap();
    assert!(!denied.is_allowed());
    assert_eq!(denied.retry_after(), Duration::from_nanos(333_333_334));
    // Key 2 has its own full burst, and spending it leaves key 1 as it was.
    assert!(limiter.check_n(&2, 3).unwrap().is_allowed());
    assert!(!limiter.check(&2).unwrap().is_allowed());
    assert_eq!(limiter.check(&1).unwrap(), denied);
    assert_eq!(limiter.len(), 2);
}

#[test]
fn evicting_an_idle_key_loses_nothing() {
    let clock = ManualClock::new();
    let limiter = keyed(per_second(10, 5), &clock); // one cell per 100 ms
    assert!(limiter.check_n(&1, 3).unwrap().is_allowed()); // busy until 300 ms
    clock.advance(Duration::from_millis(299));
    assert_eq!(limiter.evict_idle(), 0, "a busy key must not be forgotten");
    assert_eq!(limiter.len(), 1);
    clock.advance(Duration::from_millis(1));
    assert_eq!(limiter.evict_idle(), 1);
    assert_eq!(limiter.len(), 0);
    assert!(limiter.is_empty());
    // The forgotten key behaves exactly like one never seen, which is how it would have
    // behaved had it been kept: fully replenished.
    let forgotten = limiter.check_n(&1, 5).unwrap();
    let fresh = limiter.check_n(&2, 5).unwrap();
    assert!(forgotten.is_allowed());
    assert_eq!(forgotten, fresh);
    let kept = RateLimiter::with_clock(per_second(10, 5), ManualClock::new());
    assert!(kept.check_n(3).unwrap().is_allowed());
    kept.clock().advance(Duration::from_millis(300));
    assert_eq!(kept.check_n(5).unwrap(), forgotten);
}

#[test]
fn new_keys_sweep_idle_keys_once_per_sweep_interval() {
    let clock = ManualClock::new();
    let limiter = KeyedRateLimiter::<u64, _>::builder(per_second(10, 10))
        .sweep_interval(Duration::from_secs(1))
        .clock(clock.clone())
        .build();
    for key in 0..10 {
        assert!(limiter.check(&key).unwrap().is_allowed()); // busy until 100 ms
    }
    clock.advance_to(Duration::from_millis(500));
    assert!(limiter.check(&10).unwrap().is_allowed()); // new, but no sweep due yet
    assert_eq!(limiter.len(), 11);
    assert!(limiter.check(&0).unwrap().is_allowed()); // busy until 600 ms

    clock.advance_to(Duration::from_secs(1));
    assert!(limiter.check(&10).unwrap().is_allowed()); // known keys never sweep
    assert_eq!(limiter.len(), 11);
    // A new key after the interval sweeps: keys 0..=9 are idle, key 10 (busy until 1.1 s)
    // stays, and the new key is tracked.
    assert!(limiter.check(&11).unwrap().is_allowed());
    assert_eq!(limiter.len(), 2);

    clock.advance_to(Duration::from_millis(1_500));
    assert!(limiter.check(&12).unwrap().is_allowed()); // next sweep is due at 2 s
    assert_eq!(limiter.len(), 3);
    clock.advance_to(Duration::from_secs(2));
    assert!(limiter.check(&13).unwrap().is_allowed());
    assert_eq!(limiter.len(), 1, "keys 10, 11 and 12 are idle at 2 s");
}

/// The memory test of the issue: a flood of 1,000,000 distinct keys against a cap of
/// 100,000 never tracks more than the cap; while every tracked key is busy the surplus is
/// refused (fail closed) and the tracked keys keep their state; once they are idle, new
/// keys are accepted again.
#[test]
fn a_million_new_keys_never_exceed_the_cap() {
    const CAP: u64 = 100_000;
    const KEYS: u64 = 1_000_000;
    let clock = ManualClock::new();
    let limiter = KeyedRateLimiter::<u64, _>::builder(Quota::per_hour(nz(1)))
        .max_keys(CAP as usize)
        .clock(clock.clone())
        .build();
    assert_eq!(limiter.max_keys(), CAP as usize);
    let mut refused = 0;
    for key in 0..KEYS {
        match limiter.check(&key) {
            Ok(decision) => {
                assert!(key < CAP, "key {key} tracked beyond the cap");
                assert!(decision.is_allowed());
            }
            Err(error) => {
                assert!(key >= CAP, "key {key} refused below the cap");
                assert_eq!(error, KeyedCheckError::TooManyKeys { max_keys: 100_000 });
                refused += 1;
            }
        }
        assert!(
            limiter.len() <= CAP as usize,
            "{} keys tracked",
            limiter.len()
        );
    }
    assert_eq!(refused, KEYS - CAP);
    assert_eq!(limiter.len(), CAP as usize);
    // Nothing tracked was forgotten to make room: every tracked key is still limited.
    for key in (0..CAP).step_by(997) {
        assert!(!limiter.check(&key).unwrap().is_allowed());
    }

    // An hour later every tracked key is idle: new keys (and the refused ones) get in,
    // with a full burst, and the count stays at the cap.
    clock.advance(Duration::from_secs(3_600));
    for key in (CAP..KEYS).step_by(9) {
        let decision = limiter.check(&key).unwrap();
        assert!(decision.is_allowed());
        assert!(
            limiter.len() <= CAP as usize,
            "{} keys tracked",
            limiter.len()
        );
    }
    // Full of busy keys again: the next new key is refused again.
    assert_eq!(limiter.len(), CAP as usize);
    assert_eq!(
        limiter.check(&KEYS),
        Err(KeyedCheckError::TooManyKeys { max_keys: 100_000 })
    );
}

/// The same flood where tracked keys go idle as new ones arrive (each key is busy for one
/// second, a new key comes every 20 µs, so 50,000 keys are busy at any time): every key
/// is accepted and the cap holds at every step.
#[test]
fn a_million_keys_churning_through_the_cap_are_all_accepted() {
    const CAP: usize = 100_000;
    let clock = ManualClock::new();
    let limiter = KeyedRateLimiter::<u64, _>::builder(Quota::per_second(nz(1)))
        .max_keys(CAP)
        .clock(clock.clone())
        .build();
    let mut most = 0;
    for key in 0..1_000_000u64 {
        assert!(limiter.check(&key).unwrap().is_allowed(), "key {key}");
        most = most.max(limiter.len());
        assert!(limiter.len() <= CAP, "{} keys tracked", limiter.len());
        clock.advance(Duration::from_micros(20));
    }
    assert_eq!(most, CAP, "the flood fills the limiter to the cap");
}

/// Threads flooding a full limiter with new keys: exactly `max_keys` are accepted, and
/// the count seen by another thread never exceeds the cap, not even for a moment.
#[test]
fn a_concurrent_flood_of_new_keys_never_exceeds_the_cap() {
    const CAP: usize = 1_000;
    const THREADS: u64 = 3;
    let clock = ManualClock::new();
    let limiter = KeyedRateLimiter::<u64, _>::builder(Quota::per_hour(nz(1)))
        .max_keys(CAP)
        .clock(clock.clone())
        .build();
    let done = std::sync::atomic::AtomicBool::new(false);
    let barrier = Barrier::new(THREADS as usize + 1);
    let (accepted, most): (usize, usize) = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            barrier.wait();
            let mut most = 0;
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                most = most.max(limiter.len());
            }
            most
        });
        let flooders: Vec<_> = (0..THREADS)
            .map(|thread| {
                let (limiter, barrier) = (&limiter, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    (0..20_000u64)
                        .filter(|key| limiter.check(&(key * THREADS + thread)).is_ok())
                        .count()
                })
            })
            .collect();
        let accepted = flooders.into_iter().map(|f| f.join().unwrap()).sum();
        done.store(true, std::sync::atomic::Ordering::Release);
        (accepted, watcher.join().unwrap())
    });
    assert_eq!(accepted, CAP);
    assert_eq!(limiter.len(), CAP);
    assert!(most <= CAP, "len() reported {most} keys, the cap is {CAP}");
}

#[test]
fn evict_busy_key_accepts_new_keys_at_the_cap() {
    let clock = ManualClock::new();
    let limiter = KeyedRateLimiter::<u64, _>::builder(Quota::per_hour(nz(1)))
        .max_keys(1_000)
        .when_full(WhenFull::EvictBusyKey)
        .clock(clock.clone())
        .build();
    for key in 0..6_000 {
        assert!(limiter.check(&key).unwrap().is_allowed(), "key {key}");
        assert!(limiter.len() <= 1_000);
    }
    assert_eq!(limiter.len(), 1_000);
    // The newest key is tracked and limited.
    assert!(!limiter.check(&5_999).unwrap().is_allowed());
}

/// Idle keys are swept before any busy key is forgotten, whatever `WhenFull` says.
#[test]
fn a_full_limiter_forgets_idle_keys_before_busy_ones() {
    for when_full in [WhenFull::RejectNewKeys, WhenFull::EvictBusyKey] {
        let clock = ManualClock::new();
        let limiter = KeyedRateLimiter::<u64, _>::builder(Quota::per_hour(nz(1)))
            .max_keys(100)
            .when_full(when_full)
            .clock(clock.clone())
            .build();
        // Key 0 replenishes within 1 ms; keys 1..100 stay busy for an hour.
        limiter.set_key_quota(&0, Quota::per_second(nz(1_000)));
        for key in 0..100 {
            assert!(limiter.check(&key).unwrap().is_allowed());
        }
        clock.advance(Duration::from_millis(2));
        assert!(limiter.check(&100).unwrap().is_allowed(), "{when_full:?}");
        assert_eq!(limiter.len(), 100);
        for key in 1..=100 {
            assert!(
                !limiter.check(&key).unwrap().is_allowed(),
                "{when_full:?}: busy key {key} was forgotten"
            );
        }
    }
}

#[test]
fn a_key_quota_applies_before_the_key_is_tracked() {
    let clock = ManualClock::new();
    let default = per_second(10, 10);
    let own = per_second(100, 100);
    let limiter = keyed(default, &clock);
    limiter.set_key_quota(&7, own);
    assert_eq!(limiter.len(), 0, "setting a quota tracks nothing");
    assert_eq!(limiter.key_quota(&7), own);
    assert_eq!(limiter.key_quota(&8), default);
    assert_eq!(limiter.check(&7).unwrap().remaining(), 99);
    assert_eq!(limiter.check(&8).unwrap().remaining(), 9);
    assert_eq!(limiter.check(&7).unwrap().limit(), 100);
    assert_eq!(
        limiter.check_n(&8, 11).unwrap_err(),
        KeyedCheckError::InsufficientCapacity {
            requested: 11,
            burst: 10
        }
    );
    assert!(limiter.check_n(&7, 11).unwrap().is_allowed());
}

#[test]
fn a_key_quota_keeps_the_cells_spent() {
    let clock = ManualClock::new();
    let limiter = keyed(per_second(10, 10), &clock);
    assert!(limiter.check_n(&1, 2).unwrap().is_allowed());
    limiter.set_key_quota(&1, per_second(100, 100));
    assert_eq!(remaining(&limiter, 1), 98);
    // Back to the default: still 2 spent.
    assert!(limiter.clear_key_quota(&1));
    assert_eq!(limiter.key_quota(&1), per_second(10, 10));
    assert_eq!(remaining(&limiter, 1), 8);
    assert!(!limiter.clear_key_quota(&1), "no quota of its own any more");
    assert!(!limiter.clear_key_quota(&2), "never had one");
    // Replacing one override by another also keeps what was spent.
    limiter.set_key_quota(&1, per_second(100, 100));
    limiter.set_key_quota(&1, per_second(1_000, 50));
    assert_eq!(remaining(&limiter, 1), 48);
}

#[test]
fn a_key_quota_survives_eviction_of_the_idle_key() {
    let clock = ManualClock::new();
    let own = per_second(3, 3);
    let limiter = keyed(per_second(10, 10), &clock);
    limiter.set_key_quota(&1, own);
    assert!(limiter.check_n(&1, 3).unwrap().is_allowed());
    assert!(!limiter.check(&1).unwrap().is_allowed());
    // One cell per 333,333,334 ns: fully replenished 2 ns after the second.
    clock.advance(Duration::from_secs(1));
    assert_eq!(limiter.evict_idle(), 0);
    clock.advance(Duration::from_nanos(2));
    assert_eq!(limiter.evict_idle(), 1);
    assert_eq!(limiter.len(), 0);
    assert_eq!(limiter.key_quota(&1), own);
    assert_eq!(
        limiter.check_n(&1, 4).unwrap_err(),
        KeyedCheckError::InsufficientCapacity {
            requested: 4,
            burst: 3
        }
    );
    assert_eq!(limiter.len(), 0, "a refused check tracks nothing");
    let decision = limiter.check_n(&1, 3).unwrap();
    assert!(decision.is_allowed());
    assert_eq!(decision.remaining(), 0);
    assert_eq!(decision.limit(), 3);
    assert!(!limiter.check(&1).unwrap().is_allowed());
}

#[test]
fn changing_the_default_quota_keeps_spent_cells_and_spares_overridden_keys() {
    let clock = ManualClock::new();
    let limiter = keyed(per_second(10, 10), &clock);
    let own = per_second(5, 5);
    limiter.set_key_quota(&2, own);
    assert!(limiter.check_n(&1, 2).unwrap().is_allowed());
    assert!(limiter.check(&2).unwrap().is_allowed());
    assert!(limiter.check_n(&3, 10).unwrap().is_allowed());
    clock.advance(Duration::from_secs(1)); // key 3 is idle again, keys 1 and 2 too
    assert!(limiter.check_n(&1, 2).unwrap().is_allowed());
    assert!(limiter.check(&2).unwrap().is_allowed());

    let new = per_second(100, 100);
    limiter.set_quota(new);
    assert_eq!(limiter.quota(), new);
    assert_eq!(limiter.key_quota(&1), new);
    assert_eq!(
        remaining(&limiter, 1),
        98,
        "2 spent of 10 stay 2 spent of 100"
    );
    assert_eq!(limiter.key_quota(&2), own);
    assert_eq!(
        remaining(&limiter, 2),
        4,
        "an overridden key is not touched"
    );
    assert_eq!(remaining(&limiter, 3), 100);
    assert_eq!(remaining(&limiter, 4), 100, "a new key gets the new quota");
    // Part of a cell spent counts as spent (rounded up, never in the client's favour).
    clock.advance(Duration::from_millis(5)); // key 1: 1.5 cells of 10 ms left
    assert_eq!(remaining(&limiter, 1), 98);
    limiter.set_quota(per_second(10, 10));
    assert_eq!(remaining(&limiter, 1), 8);
}

#[test]
fn reset_key_forgets_the_state_but_not_the_quota() {
    let clock = ManualClock::new();
    let limiter = keyed(per_second(10, 10), &clock);
    let own = per_second(4, 4);
    limiter.set_key_quota(&1, own);
    assert!(limiter.check_n(&1, 4).unwrap().is_allowed());
    assert!(limiter.check_n(&2, 10).unwrap().is_allowed());
    assert_eq!(limiter.len(), 2);
    assert!(limiter.reset_key(&1));
    assert_eq!(limiter.len(), 1);
    assert!(!limiter.reset_key(&1), "no longer tracked");
    assert!(!limiter.reset_key(&3), "never tracked");
    assert_eq!(limiter.key_quota(&1), own);
    let decision = limiter.check_n(&1, 4).unwrap();
    assert!(decision.is_allowed());
    assert_eq!(decision.limit(), 4);
    assert!(
        !limiter.check(&2).unwrap().is_allowed(),
        "other keys keep their state"
    );
}

#[test]
fn a_check_above_the_burst_is_refused_and_changes_nothing() {
    let clock = ManualClock::new();
    let limiter = keyed(per_second(10, 10), &clock);
    let expected = KeyedCheckError::InsufficientCapacity {
        requested: 11,
        burst: 10,
    };
    assert_eq!(limiter.check_n(&1, 11).unwrap_err(), expected);
    assert_eq!(limiter.len(), 0, "an impossible check tracks nothing");
    assert!(limiter.check_n(&1, 3).unwrap().is_allowed());
    assert_eq!(limiter.check_n(&1, 11).unwrap_err(), expected);
    assert_eq!(
        remaining(&limiter, 1),
        7,
        "an impossible check spends nothing"
    );
    assert_eq!(limiter.len(), 1);
}

/// Threads checking one key at the same instant never admit more than its burst together,
/// and lose nothing: what they admitted plus what remains is the burst. Each round starts
/// on an untracked key, so threads also race to insert it.
#[test]
fn concurrent_checks_of_one_key_never_exceed_the_burst() {
    const BURST: u32 = 50;
    for threads in 2..=4u32 {
        let clock = ManualClock::new();
        let limiter = keyed(Quota::per_hour(nz(BURST)), &clock);
        for round in 0..20u64 {
            let barrier = Barrier::new(threads as usize);
            let weighted = round % 2 == 1;
            let admitted: u32 = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..threads)
                    .map(|thread| {
                        let (limiter, barrier) = (&limiter, &barrier);
                        scope.spawn(move || {
                            barrier.wait();
                            let mut cells = 0;
                            for attempt in 0..40 {
                                let n = if weighted {
                                    1 + (attempt + thread) % 3
                                } else {
                                    1
                                };
                                if limiter.check_n(&round, n).unwrap().is_allowed() {
                                    cells += n;
                                }
                            }
                            cells
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).sum()
            });
            assert!(admitted <= BURST, "{threads} threads admitted {admitted}");
            assert_eq!(admitted + remaining(&limiter, round), BURST);
            if !weighted {
                assert_eq!(admitted, BURST, "{threads} threads, single cells");
            }
        }
        assert_eq!(limiter.len(), 20);
    }
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Advance(u64),
    Check { key: u64, n: u32 },
    EvictIdle,
    Reset(u64),
}

fn ops(period: u64, burst: u32) -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        4 => (0..=period / 2).prop_map(Op::Advance),
        1 => (0..=3 * period).prop_map(Op::Advance),
        10 => (0u64..6, 0..=burst + 1).prop_map(|(key, n)| Op::Check { key, n }),
        1 => Just(Op::EvictIdle),
        1 => (0u64..6).prop_map(Op::Reset),
    ];
    proptest::collection::vec(op, 1..150)
}

/// A key without state in the reference model is idle; one with state is idle when it
/// is fully replenished.
fn is_idle(limiter: &RateLimiter<ManualClock>) -> bool {
    limiter.check_n(0).unwrap().reset_after().is_zero()
}

fn run_model(
    count: u32,
    period: u64,
    burst: u32,
    sweep: u64,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let quota = Quota::new(count, Duration::from_nanos(period))
        .unwrap()
        .try_allow_burst(burst)
        .unwrap();
    let clock = ManualClock::new();
    let keyed = KeyedRateLimiter::<u64, _>::builder(quota)
        .sweep_interval(Duration::from_nanos(sweep))
        .shards(2)
        .clock(clock.clone())
        .build();
    // The reference: one plain limiter per key, never forgotten.
    let mut reference: HashMap<u64, RateLimiter<ManualClock>> = HashMap::new();
    for &op in ops {
        match op {
            Op::Advance(nanos) => clock.advance(Duration::from_nanos(nanos)),
            Op::Check { key, n } => {
                let expected: Result<Decision, KeyedCheckError> = reference
                    .entry(key)
                    .or_insert_with(|| RateLimiter::with_clock(quota, clock.clone()))
                    .check_n(n)
                    .map_err(Into::into);
                prop_assert_eq!(
                    keyed.check_n(&key, n),
                    expected,
                    "key {} at {}",
                    key,
                    clock.now()
                );
            }
            Op::EvictIdle => {
                keyed.evict_idle();
                let busy = reference
                    .values()
                    .filter(|limiter| !is_idle(limiter))
                    .count();
                prop_assert_eq!(keyed.len(), busy, "after evict_idle at {}", clock.now());
            }
            Op::Reset(key) => {
                let was_tracked = keyed.reset_key(&key);
                if let Some(limiter) = reference.remove(&key) {
                    prop_assert!(
                        was_tracked || is_idle(&limiter),
                        "key {} was busy but not tracked",
                        key
                    );
                }
            }
        }
        let busy = reference
            .values()
            .filter(|limiter| !is_idle(limiter))
            .count();
        prop_assert!(keyed.len() >= busy, "a busy key was forgotten");
        prop_assert!(keyed.len() <= reference.len());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Eviction, sweeps and resets never change a decision: the keyed limiter decides
    /// exactly like one `RateLimiter` per key that is never forgotten (reset keys start
    /// over in both).
    #[test]
    fn keyed_decides_like_one_limiter_per_key(
        (count, period, burst, sweep, ops) in (1u32..=20, 1_000_000u64..=1_000_000_000, 1u32..=20)
            .prop_flat_map(|(count, period, burst)| {
                (Just(count), Just(period), Just(burst), 1..=2 * period, ops(period, burst))
            })
    ) {
        run_model(count, period, burst, sweep, &ops)?;
    }
}
