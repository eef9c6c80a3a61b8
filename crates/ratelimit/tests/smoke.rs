//! A small, fast pass over every limiter's main paths, sized for miri (`ci/miri.sh` runs
//! it): no proptest, no long loops, no sleeps, at most two extra threads per test.
//!
//! The crate's one `unsafe` block (`rdtsc` in `src/monotonic.rs`) is compiled out under
//! miri, where `MonotonicClock` reads `Instant`; these tests check the rest (hash tables,
//! shard locks, the GCRA word, the quota seqlock, tokio's semaphore and timers) for
//! undefined behaviour while asserting what each path does.

use std::future::Future;
use std::pin::pin;
use std::sync::Barrier;
use std::task::{Context, Waker};
use std::time::Duration;

use flowbed_ratelimit::{
    AcquireError, Clock, ConcurrencyLimit, KeyedCheckError, KeyedRateLimiter, Limiter, ManualClock,
    MonotonicClock, Quota, RateLimiter, SlidingWindow, TokioClock, WhenFull,
};

mod common;

use common::{nz, paused_runtime, per_second};

fn keyed(quota: Quota, clock: &ManualClock) -> KeyedRateLimiter<u64, ManualClock> {
    KeyedRateLimiter::builder(quota)
        .shards(2)
        .clock(clock.clone())
        .build()
}

#[test]
fn rate_limiter_admits_the_burst_then_replenishes() {
    let clock = ManualClock::new();
    let limiter = RateLimiter::with_clock(per_second(4, 2), clock.clone());
    let first = limiter.check();
    assert!(first.is_allowed());
    assert_eq!((first.limit(), first.remaining()), (2, 1));
    assert!(limiter.check().is_allowed());
    let denied = limiter.check();
    assert!(!denied.is_allowed());
    assert_eq!(denied.retry_after(), Duration::from_millis(250));
    assert_eq!(denied.reset_after(), Duration::from_millis(500));

    clock.advance(Duration::from_millis(250));
    assert!(limiter.check().is_allowed());
    assert!(!limiter.check().is_allowed());

    clock.advance(Duration::from_secs(1));
    let error = limiter.check_n(3).unwrap_err();
    assert_eq!((error.requested, error.burst), (3, 2));
    assert!(limiter.check_n(0).unwrap().is_allowed());
    assert!(limiter.check_n(2).unwrap().is_allowed());
    assert!(!limiter.check_n(1).unwrap().is_allowed());
    assert_eq!(Limiter::limit(&limiter), 2);
}

#[test]
fn rate_limiter_on_the_default_clock() {
    // One cell an hour: nothing replenishes while the test runs.
    let limiter = RateLimiter::new(Quota::per_hour(nz(3)));
    assert!(limiter.check_n(2).unwrap().is_allowed());
    let last = limiter.check();
    assert!(last.is_allowed());
    assert_eq!(last.remaining(), 0);
    assert!(!limiter.check().is_allowed());
}

#[test]
fn rate_limiter_shared_by_two_threads_admits_exactly_the_burst() {
    let limiter = RateLimiter::with_clock(per_second(1, 4), ManualClock::new());
    let admitted: usize = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| (0..3).filter(|_| limiter.check().is_allowed()).count()))
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).sum()
    });
    assert_eq!(admitted, 4);
    assert!(!limiter.check().is_allowed());
}

#[test]
fn async_waits_without_a_timer() {
    // Cells that are free now are handed out without touching tokio's timer, so any
    // executor will do; impossible requests fail at once.
    let limiter = RateLimiter::with_clock(per_second(1, 2), ManualClock::new());
    futures::executor::block_on(async {
        limiter.until_ready().await;
        let error = limiter.until_n_ready(3).await.unwrap_err();
        assert_eq!((error.requested, error.burst), (3, 2));
        limiter.until_n_ready(1).await.unwrap();
    });
    assert!(!limiter.check().is_allowed());
}

#[test]
fn async_waits_reserve_in_order_and_cancel_under_paused_time() {
    let runtime = paused_runtime();
    runtime.block_on(async {
        let limiter = RateLimiter::with_clock(per_second(10, 1), TokioClock::new());
        let start = tokio::time::Instant::now();
        limiter.until_ready().await; // the burst
        limiter.until_ready().await; // 100 ms later
        assert_eq!(start.elapsed(), Duration::from_millis(100));

        // A waiter that is cancelled gives its reserved cell back.
        {
            let mut cancelled = pin!(limiter.until_ready());
            let mut cx = Context::from_waker(Waker::noop());
            assert!(cancelled.as_mut().poll(&mut cx).is_pending());
        }
        limiter.until_ready().await;
        assert_eq!(start.elapsed(), Duration::from_millis(200));

        // Keyed waits, per key.
        let keyed = KeyedRateLimiter::<u64>::builder(per_second(10, 1))
            .shards(1)
            .clock(TokioClock::new())
            .build();
        keyed.until_key_ready(&1).await.unwrap();
        keyed.until_key_ready(&2).await.unwrap();
        keyed.until_key_ready(&1).await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_millis(300));
        assert_eq!(keyed.len(), 2);
    });
}

#[test]
fn sliding_window_counts_the_previous_window_in_part() {
    let clock = ManualClock::new();
    let limiter = SlidingWindow::with_clock(Quota::per_second(nz(4)), clock.clone());
    assert!(limiter.check_n(4).unwrap().is_allowed());
    assert!(!limiter.check().is_allowed());
    let error = limiter.check_n(5).unwrap_err();
    assert_eq!((error.requested, error.burst), (5, 4));

    clock.advance(Duration::from_millis(1_500)); // half of the previous window counts
    let decision = limiter.check_n(2).unwrap();
    assert!(decision.is_allowed());
    assert_eq!(decision.remaining(), 0);
    assert!(!limiter.check().is_allowed());

    clock.advance(Duration::from_secs(2)); // both windows have passed
    assert_eq!(limiter.check().remaining(), 3);
    assert_eq!(Limiter::limit(&limiter), 4);
}

#[test]
fn keyed_tracks_keys_up_to_the_cap_and_evicts_idle_ones() {
    let clock = ManualClock::new();
    let limiter = KeyedRateLimiter::<u64>::builder(per_second(2, 2))
        .max_keys(2)
        .shards(2)
        .clock(clock.clone())
        .build();
    assert!(limiter.check(&1).unwrap().is_allowed());
    assert!(limiter.check(&2).unwrap().is_allowed());
    assert_eq!(limiter.len(), 2);
    assert_eq!(
        limiter.check(&3),
        Err(KeyedCheckError::TooManyKeys { max_keys: 2 })
    );
    assert_eq!(limiter.len(), 2);

    clock.advance(Duration::from_millis(500)); // both keys fully replenished
    assert_eq!(limiter.evict_idle(), 2);
    assert!(limiter.is_empty());
    let fresh = limiter.check(&3).unwrap();
    assert!(fresh.is_allowed());
    assert_eq!(fresh.remaining(), 1);

    assert!(limiter.reset_key(&3));
    assert!(!limiter.reset_key(&3));
    assert_eq!(limiter.len(), 0);
    assert_eq!(
        limiter.check_n(&4, 3),
        Err(KeyedCheckError::InsufficientCapacity {
            requested: 3,
            burst: 2
        })
    );
    assert_eq!(limiter.len(), 0, "an impossible request tracks nothing");
}

#[test]
fn keyed_evict_busy_key_when_full() {
    let clock = ManualClock::new();
    let limiter = KeyedRateLimiter::<u64>::builder(per_second(1, 2))
        .max_keys(1)
        .when_full(WhenFull::EvictBusyKey)
        .shards(1)
        .clock(clock.clone())
        .build();
    assert!(limiter.check_n(&1, 2).unwrap().is_allowed());
    assert!(limiter.check(&2).unwrap().is_allowed());
    assert_eq!(limiter.len(), 1);
    // Key 1 was forgotten for key 2: it starts over with a full burst.
    assert_eq!(limiter.check(&1).unwrap().remaining(), 1);
    assert_eq!(limiter.len(), 1);
}

#[test]
fn keyed_quotas_change_at_run_time_keeping_spent_cells() {
    let clock = ManualClock::new();
    let limiter = keyed(per_second(10, 10), &clock);
    assert_eq!(limiter.check_n(&1, 4).unwrap().remaining(), 6);
    assert_eq!(limiter.check_n(&2, 4).unwrap().remaining(), 6);

    // Key 2 gets its own quota; key 1 keeps the default.
    let own = per_second(100, 50);
    limiter.set_key_quota(&2, own);
    assert_eq!(limiter.key_quota(&2), own);
    let decision = limiter.check(&2).unwrap();
    assert_eq!((decision.limit(), decision.remaining()), (50, 45));

    // A new default applies to key 1 only; 4 cells stay spent.
    let doubled = per_second(20, 20);
    limiter.set_quota(doubled);
    assert_eq!(limiter.quota(), doubled);
    let decision = limiter.check(&1).unwrap();
    assert_eq!((decision.limit(), decision.remaining()), (20, 15));
    assert_eq!(limiter.check(&2).unwrap().limit(), 50);

    // Back to the default, keeping its 6 spent cells.
    assert!(limiter.clear_key_quota(&2));
    assert!(!limiter.clear_key_quota(&2));
    assert_eq!(limiter.key_quota(&2), doubled);
    let decision = limiter.check(&2).unwrap();
    assert_eq!((decision.limit(), decision.remaining()), (20, 13));

    // An override set before the key is tracked applies from its first check.
    limiter.set_key_quota(&3, own);
    assert_eq!(limiter.check(&3).unwrap().remaining(), 49);
}

#[test]
fn keyed_shared_by_two_threads() {
    let clock = ManualClock::new();
    let limiter = keyed(per_second(1, 2), &clock);
    let barrier = Barrier::new(2);
    std::thread::scope(|scope| {
        for own_key in [10, 20] {
            let (limiter, barrier) = (&limiter, &barrier);
            scope.spawn(move || {
                barrier.wait();
                // The shared key is new for both threads at once.
                assert!(limiter.check(&0).unwrap().is_allowed());
                assert!(limiter.check(&own_key).unwrap().is_allowed());
                assert!(limiter.check(&own_key).unwrap().is_allowed());
                assert!(!limiter.check(&own_key).unwrap().is_allowed());
            });
        }
    });
    assert_eq!(limiter.len(), 3);
    assert!(!limiter.check(&0).unwrap().is_allowed());
}

#[test]
fn monotonic_clock_never_goes_back() {
    let clock = MonotonicClock::new();
    if cfg!(miri) {
        assert!(!clock.uses_tsc(), "miri cannot run rdtsc");
    }
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                let other = MonotonicClock::new();
                let mut last = clock.now();
                for _ in 0..20 {
                    let now = other.now();
                    assert!(now >= last, "{now} < {last}");
                    last = now;
                }
            });
        }
    });
}

#[test]
fn concurrency_limit_try_acquire_from_two_threads() {
    let limit = ConcurrencyLimit::new(1);
    let barrier = Barrier::new(2);
    let won: usize = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (limit, barrier) = (limit.clone(), &barrier);
                scope.spawn(move || {
                    let permit = limit.try_acquire();
                    // Both have tried while the winner still holds its permit.
                    barrier.wait();
                    match permit {
                        Ok(_permit) => 1,
                        Err(error) => {
                            assert_eq!(error, AcquireError::NoPermits);
                            0
                        }
                    }
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).sum()
    });
    assert_eq!(won, 1);
    assert_eq!((limit.in_flight(), limit.available()), (0, 1));
}

#[test]
fn concurrency_limit_resizes_and_closes() {
    let limit = ConcurrencyLimit::new(2);
    let first = limit.try_acquire().unwrap();
    let second = limit.try_acquire().unwrap();
    assert_eq!(limit.in_flight(), 2);
    limit.set_limit(1); // below the number in flight: one permit retires on return
    assert_eq!(limit.limit(), 1);
    drop(first);
    assert_eq!((limit.in_flight(), limit.available()), (1, 0));
    drop(second);
    assert_eq!((limit.in_flight(), limit.available()), (0, 1));
    limit.set_limit(3);
    assert_eq!(limit.available(), 3);

    let held = limit.try_acquire().unwrap();
    limit.close();
    assert!(limit.is_closed());
    assert_eq!(limit.try_acquire().unwrap_err(), AcquireError::Closed);
    drop(held);
    assert_eq!(limit.in_flight(), 0);
}
