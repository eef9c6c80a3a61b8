//! The thread-safety and pinning promises of every public type, and that the futures of
//! the async waits can be spawned on a multi-threaded runtime, checked at compile time.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
#[cfg(feature = "tokio")]
use std::num::NonZeroU32;
use std::rc::Rc;
use std::sync::Arc;
#[cfg(feature = "tokio")]
use std::time::Duration;

#[cfg(feature = "tokio")]
use flowbed_ratelimit::{AcquireError, ConcurrencyLimit, Permit, TokioClock};
use flowbed_ratelimit::{
    Clock, Decision, InsufficientCapacity, KeyedBuilder, KeyedCheckError, KeyedRateLimiter,
    Limiter, ManualClock, MonotonicClock, Quota, QuotaError, RateLimiter, SlidingWindow, WhenFull,
};

use flowbed_testkit::thread_safety::{send, sync, thread_safe};
#[cfg(feature = "tokio")]
use flowbed_testkit::thread_safety::{send_future, spawnable};

fn quota() -> Quota {
    Quota::per_second(NonZeroU32::new(10).unwrap())
}

#[test]
fn values_are_thread_safe() {
    thread_safe::<Quota>();
    thread_safe::<Decision>();
    thread_safe::<WhenFull>();
}

#[test]
fn clocks_are_thread_safe() {
    thread_safe::<MonotonicClock>();
    thread_safe::<ManualClock>();
    // `Clock: Send + Sync`, so shared and borrowed clocks are clocks too.
    fn clock<C: Clock>() {}
    clock::<Arc<dyn Clock>>();
    clock::<&ManualClock>();
}

#[test]
fn limiters_are_thread_safe_on_every_clock() {
    thread_safe::<RateLimiter>();
    thread_safe::<RateLimiter<ManualClock>>();
    thread_safe::<RateLimiter<Arc<dyn Clock>>>();
    thread_safe::<SlidingWindow>();
    thread_safe::<SlidingWindow<ManualClock>>();
    thread_safe::<SlidingWindow<Arc<dyn Clock>>>();
    // The common trait is usable as a shared trait object.
    send::<Box<dyn Limiter>>();
    sync::<Box<dyn Limiter>>();
    send::<Arc<dyn Limiter>>();
    let limiters: Vec<Box<dyn Limiter>> = vec![
        Box::new(RateLimiter::new(quota())),
        Box::new(SlidingWindow::new(quota())),
    ];
    assert!(limiters.iter().all(|limiter| limiter.limit() == 10));
}

#[test]
fn keyed_limiters_and_builders_are_thread_safe() {
    thread_safe::<KeyedRateLimiter<u64>>();
    thread_safe::<KeyedRateLimiter<String, ManualClock>>();
    thread_safe::<KeyedRateLimiter<Arc<str>, Arc<dyn Clock>, RandomState>>();
    thread_safe::<KeyedBuilder<u64>>();
    thread_safe::<KeyedBuilder<String, ManualClock>>();
    // The builder holds no key, so it is thread-safe whatever the key type.
    send::<KeyedBuilder<Rc<Cell<u8>>>>();
    sync::<KeyedBuilder<Rc<Cell<u8>>>>();
}

#[test]
fn errors_are_send_sync_and_std_errors() {
    copyable_error::<QuotaError>();
    copyable_error::<InsufficientCapacity>();
    copyable_error::<KeyedCheckError>();
}

/// A thread-safe error that is a plain value (copied and compared, as these are).
fn copyable_error<E: std::error::Error + Send + Sync + Unpin + Copy + Eq + 'static>() {}

#[cfg(feature = "tokio")]
#[test]
fn tokio_types_are_thread_safe() {
    thread_safe::<TokioClock>();
    thread_safe::<RateLimiter<TokioClock>>();
    thread_safe::<SlidingWindow<TokioClock>>();
    thread_safe::<KeyedRateLimiter<Arc<str>, TokioClock>>();
    thread_safe::<ConcurrencyLimit>();
    thread_safe::<Permit>();
    copyable_error::<AcquireError>();
}

#[cfg(feature = "tokio")]
#[test]
fn waiting_futures_are_send() {
    let limiter = RateLimiter::new(quota());
    drop(send_future(limiter.until_ready()));
    drop(send_future(limiter.until_n_ready(3)));
    let limiter = RateLimiter::with_clock(quota(), ManualClock::new());
    drop(send_future(limiter.until_ready()));

    let keyed = KeyedRateLimiter::<String>::new(quota());
    let key = "client".to_string();
    drop(send_future(keyed.until_key_ready(&key)));
    drop(send_future(keyed.until_key_n_ready(&key, 2)));
    let keyed = KeyedRateLimiter::<Arc<str>, _>::builder(quota())
        .clock(TokioClock::new())
        .build();
    let key: Arc<str> = Arc::from("client");
    drop(send_future(keyed.until_key_ready(&key)));

    let limit = ConcurrencyLimit::new(1);
    drop(send_future(limit.acquire()));
    drop(send_future(limit.acquire_timeout(Duration::from_secs(1))));
}

#[cfg(feature = "tokio")]
#[test]
fn waits_on_shared_limiters_can_be_spawned() {
    let limiter = Arc::new(RateLimiter::new(quota()));
    drop(spawnable(async move { limiter.until_ready().await }));
    let keyed = Arc::new(KeyedRateLimiter::<u64>::new(quota()));
    drop(spawnable(async move { keyed.until_key_ready(&7).await }));
    let limit = ConcurrencyLimit::new(1);
    drop(spawnable(async move { limit.acquire().await.map(drop) }));
}
