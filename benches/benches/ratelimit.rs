//! flowbed-ratelimit against governor, the `ratelimit` crate (iopsystems' token bucket)
//! and tower's `RateLimit`, on the same workloads in the same run.
//!
//! Groups are `ratelimit_<workload>`, functions are `flowbed` and the peer's crate name, so
//! results sit at `target/criterion/ratelimit_<workload>/<name>/`. Every limiter uses its
//! default clock (flowbed: `MonotonicClock`; governor: its `DefaultClock`, quanta; the
//! `ratelimit` crate: `StdClock`) and keyed limiters their default hasher (`RandomState`).
//!
//! | group | one iteration | peers |
//! |---|---|---|
//! | `ratelimit_check` | one allowed check, one thread | governor, ratelimit, `flowbed_sliding_window` (for information) |
//! | `ratelimit_check_rejected` | one denied check (quota spent), one thread | governor, ratelimit |
//! | `ratelimit_check_2threads` | one allowed check on each of 2 threads sharing one limiter (throughput: both checks) | governor, ratelimit |
//! | `ratelimit_keyed_hot` | one allowed check of the only key | governor (`RateLimiter::keyed`, dashmap) |
//! | `ratelimit_keyed_100k` | one allowed check, keys round-robin over 100,000 tracked keys | governor |
//! | `ratelimit_tower_layer` | `ready().await` + `call` on a `service_fn` that answers at once | `bare` (no layer), tower (`RateLimit`), flowbed (`RateLimitLayer`) |
//!
//! "Allowed" workloads use a quota of `u32::MAX` per second (burst `u32::MAX`), which no
//! thread here can exhaust: every check takes the allowed path. "Denied" workloads use one
//! cell per hour (one per 10^6 s for the token bucket) with that cell already spent. Every
//! measured loop counts the decisions and asserts that all were as intended, so a
//! misconfigured peer cannot measure the wrong path unnoticed. The `ratelimit` crate has no
//! keyed limiter and is absent from the keyed groups. tower's `RateLimit` is not shared by
//! its clones (each clone counts alone), unlike flowbed's layer; here both wrap one service
//! used from one task.
//!
//! Bytes per tracked key are measured by the `ratelimit_memory` bench.
//!
//! Run: `cargo bench -p flowbed-benches --bench ratelimit` (add `-- --quick` for a fast
//! pass).

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::Duration;

mod support;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowbed_ratelimit::{KeyedRateLimiter, Quota, RateLimiter, SlidingWindow};
use support::{call_loop, instant_service, run_2threads, run_timed};

/// Keys tracked in `ratelimit_keyed_100k`.
const KEYS: u64 = 100_000;
/// The key of `ratelimit_keyed_hot`.
const HOT_KEY: u64 = 42;

/// A quota no benchmark can exhaust: `u32::MAX` cells per second, burst `u32::MAX`.
fn open_quota() -> Quota {
    Quota::per_second(NonZeroU32::MAX)
}

/// governor's equivalent of [`open_quota`] (its interval rounds to the same 1 ns).
fn governor_open_quota() -> governor::Quota {
    governor::Quota::per_second(NonZeroU32::MAX)
}

/// A token bucket holding `u32::MAX` tokens, refilled at `u32::MAX` per second, full at
/// the start. (A rate of 0 would mean "unlimited" and skip the bucket altogether.)
fn ratelimit_open() -> ratelimit::Ratelimiter {
    let rate = u64::from(u32::MAX);
    ratelimit::Ratelimiter::builder(rate)
        .max_tokens(rate)
        .initial_available(rate)
        .build()
        .expect("valid token bucket")
}

/// A flowbed limiter whose only cell (one per hour) is spent.
fn flowbed_closed() -> RateLimiter {
    let limiter = RateLimiter::new(Quota::per_hour(NonZeroU32::MIN));
    assert!(limiter.check().is_allowed());
    limiter
}

/// A governor limiter whose only cell (one per hour) is spent.
fn governor_closed() -> governor::DefaultDirectRateLimiter {
    let limiter = governor::RateLimiter::direct(governor::Quota::per_hour(NonZeroU32::MIN));
    assert!(limiter.check().is_ok());
    limiter
}

/// An empty token bucket of one token, refilled at one token per 10^6 seconds.
fn ratelimit_closed() -> ratelimit::Ratelimiter {
    ratelimit::Ratelimiter::builder(1)
        .period(Duration::from_secs(1_000_000))
        .max_tokens(1)
        .initial_available(0)
        .build()
        .expect("valid token bucket")
}

fn check(c: &mut Criterion) {
    let mut group = c.benchmark_group("ratelimit_check");
    group.throughput(Throughput::Elements(1));

    let flowbed = RateLimiter::new(open_quota());
    group.bench_function("flowbed", |b| {
        b.iter_custom(|iters| run_timed(iters, true, || flowbed.check().is_allowed()))
    });
    let governor = governor::RateLimiter::direct(governor_open_quota());
    group.bench_function("governor", |b| {
        b.iter_custom(|iters| run_timed(iters, true, || governor.check().is_ok()))
    });
    let bucket = ratelimit_open();
    group.bench_function("ratelimit", |b| {
        b.iter_custom(|iters| run_timed(iters, true, || bucket.try_wait().is_ok()))
    });
    let window = SlidingWindow::new(open_quota());
    group.bench_function("flowbed_sliding_window", |b| {
        b.iter_custom(|iters| run_timed(iters, true, || window.check().is_allowed()))
    });
    group.finish();
}

fn check_rejected(c: &mut Criterion) {
    let mut group = c.benchmark_group("ratelimit_check_rejected");
    group.throughput(Throughput::Elements(1));

    let flowbed = flowbed_closed();
    group.bench_function("flowbed", |b| {
        b.iter_custom(|iters| run_timed(iters, false, || flowbed.check().is_allowed()))
    });
    let governor = governor_closed();
    group.bench_function("governor", |b| {
        b.iter_custom(|iters| run_timed(iters, false, || governor.check().is_ok()))
    });
    let bucket = ratelimit_closed();
    group.bench_function("ratelimit", |b| {
        b.iter_custom(|iters| run_timed(iters, false, || bucket.try_wait().is_ok()))
    });
    group.finish();
}

fn check_2threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("ratelimit_check_2threads");
    // One iteration is one check on each thread: throughput counts both.
    group.throughput(Throughput::Elements(2));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(3));

    let flowbed = RateLimiter::new(open_quota());
    group.bench_function("flowbed", |b| {
        b.iter_custom(|iters| run_2threads(&flowbed, iters, |l| l.check().is_allowed()))
    });
    let governor = governor::RateLimiter::direct(governor_open_quota());
    group.bench_function("governor", |b| {
        b.iter_custom(|iters| run_2threads(&governor, iters, |l| l.check().is_ok()))
    });
    let bucket = ratelimit_open();
    group.bench_function("ratelimit", |b| {
        b.iter_custom(|iters| run_2threads(&bucket, iters, |l| l.try_wait().is_ok()))
    });
    group.finish();
}

fn keyed_hot(c: &mut Criterion) {
    let mut group = c.benchmark_group("ratelimit_keyed_hot");
    group.throughput(Throughput::Elements(1));

    // The key is tracked before the measurement: every measured check finds it.
    let flowbed = KeyedRateLimiter::<u64>::new(open_quota());
    assert!(flowbed.check(&HOT_KEY).is_ok_and(|d| d.is_allowed()));
    group.bench_function("flowbed", |b| {
        b.iter_custom(|iters| {
            run_timed(iters, true, || {
                flowbed
                    .check(black_box(&HOT_KEY))
                    .is_ok_and(|d| d.is_allowed())
            })
        })
    });
    assert_eq!(flowbed.len(), 1);
    let governor = governor::RateLimiter::<u64, _, _>::keyed(governor_open_quota());
    assert!(governor.check_key(&HOT_KEY).is_ok());
    group.bench_function("governor", |b| {
        b.iter_custom(|iters| {
            run_timed(iters, true, || {
                governor.check_key(black_box(&HOT_KEY)).is_ok()
            })
        })
    });
    assert_eq!(governor.len(), 1);
    group.finish();
}

/// Runs `iters` allowed checks cycling over keys `0..KEYS`.
#[inline]
fn round_robin(iters: u64, mut check: impl FnMut(&u64) -> bool) -> Duration {
    let mut key = 0u64;
    run_timed(iters, true, || {
        let allowed = check(&key);
        key += 1;
        if key == KEYS {
            key = 0;
        }
        allowed
    })
}

fn keyed_100k(c: &mut Criterion) {
    let mut group = c.benchmark_group("ratelimit_keyed_100k");
    group.throughput(Throughput::Elements(1));

    let flowbed = KeyedRateLimiter::<u64>::new(open_quota());
    for key in 0..KEYS {
        assert!(flowbed.check(&key).is_ok_and(|d| d.is_allowed()));
    }
    assert_eq!(flowbed.len() as u64, KEYS);
    group.bench_function("flowbed", |b| {
        b.iter_custom(|iters| {
            round_robin(iters, |key| {
                flowbed.check(key).is_ok_and(|d| d.is_allowed())
            })
        })
    });
    // No key was added or forgotten: the measurement checked known keys only.
    assert_eq!(flowbed.len() as u64, KEYS);
    drop(flowbed);

    let governor = governor::RateLimiter::<u64, _, _>::keyed(governor_open_quota());
    for key in 0..KEYS {
        assert!(governor.check_key(&key).is_ok());
    }
    assert_eq!(governor.len() as u64, KEYS);
    group.bench_function("governor", |b| {
        b.iter_custom(|iters| round_robin(iters, |key| governor.check_key(key).is_ok()))
    });
    assert_eq!(governor.len() as u64, KEYS);
    group.finish();
}

fn tower_layer(c: &mut Criterion) {
    let mut group = c.benchmark_group("ratelimit_tower_layer");
    group.throughput(Throughput::Elements(1));
    // tower's `RateLimit` creates a tokio `Sleep` when built: it needs a runtime with time.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");

    let mut bare = instant_service();
    group.bench_function("bare", |b| {
        b.iter_custom(|iters| runtime.block_on(call_loop(&mut bare, iters)))
    });

    let mut tower = {
        let _context = runtime.enter();
        tower::ServiceBuilder::new()
            .layer(tower::limit::RateLimitLayer::new(
                u64::MAX,
                Duration::from_secs(1),
            ))
            .service(instant_service())
    };
    group.bench_function("tower", |b| {
        b.iter_custom(|iters| runtime.block_on(call_loop(&mut tower, iters)))
    });

    // Clones of this service, and of the layer, would share the one limiter.
    let mut flowbed = tower::ServiceBuilder::new()
        .layer(flowbed_ratelimit::tower::RateLimitLayer::new(
            RateLimiter::new(open_quota()),
        ))
        .service(instant_service());
    group.bench_function("flowbed", |b| {
        b.iter_custom(|iters| runtime.block_on(call_loop(&mut flowbed, iters)))
    });

    group.finish();
}

criterion_group!(
    benches,
    check,
    check_rejected,
    check_2threads,
    keyed_hot,
    keyed_100k,
    tower_layer
);
criterion_main!(benches);
