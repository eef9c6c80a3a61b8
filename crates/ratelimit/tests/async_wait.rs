//! Async waits under paused tokio time (`TokioClock`): FIFO order, one wake-up per waiter
//! at exactly its slot, cancellation gives capacity back (and never more), impossible
//! requests fail at once, the rate holds over long runs, keyed waits per key; and
//! `ConcurrencyLimit`: the cap holds, FIFO, cancellation, resizing, closing, timeouts.

#![cfg(feature = "tokio")]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use flowbed_ratelimit::{
    AcquireError, ConcurrencyLimit, KeyedCheckError, KeyedRateLimiter, Quota, RateLimiter,
    TokioClock,
};
use futures::task::ArcWake;
use proptest::prelude::*;
use tokio::task::JoinHandle;
use tokio::time::Instant;

mod common;

use common::{nz, paused_runtime, per_second};

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// Polls `future` once right here (so a waiter reserves its place now, in program order)
/// and spawns the rest of it.
fn start<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let mut future = Box::pin(future);
    let waker = futures::task::noop_waker();
    match future.as_mut().poll(&mut Context::from_waker(&waker)) {
        Poll::Ready(output) => tokio::spawn(async move { output }),
        // The spawned task polls it again at once, registering its own waker.
        Poll::Pending => tokio::spawn(future),
    }
}

/// A future together with the number of times it was woken.
struct CountWakes<F: Future> {
    inner: Pin<Box<F>>,
    wakes: Arc<AtomicUsize>,
}

/// Wraps the task's waker to count wake-ups.
struct CountingWaker {
    inner: Waker,
    wakes: Arc<AtomicUsize>,
}

impl ArcWake for CountingWaker {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.wakes.fetch_add(1, Ordering::SeqCst);
        arc_self.inner.wake_by_ref();
    }
}

impl<F: Future> CountWakes<F> {
    fn new(inner: F) -> Self {
        Self {
            inner: Box::pin(inner),
            wakes: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl<F: Future> Future for CountWakes<F> {
    type Output = (F::Output, usize);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let waker = futures::task::waker(Arc::new(CountingWaker {
            inner: cx.waker().clone(),
            wakes: Arc::clone(&self.wakes),
        }));
        let wakes = self.wakes.load(Ordering::SeqCst);
        self.inner
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .map(|output| (output, wakes))
    }
}

/// Never more than the quota allows: in every `[a, b]` between two uses, at most
/// `burst + floor((b - a) / T)` cells.
fn assert_conforms(uses: &[(Duration, u32)], interval: Duration, burst: u32) {
    let mut uses = uses.to_vec();
    uses.sort();
    for (first, &(from, _)) in uses.iter().enumerate() {
        let mut cells = 0;
        for &(to, n) in &uses[first..] {
            cells += u128::from(n);
            let bound = u128::from(burst) + (to - from).as_nanos() / interval.as_nanos();
            assert!(
                cells <= bound,
                "{cells} cells used in [{from:?}, {to:?}], at most {bound} allowed: {uses:?}"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn waiters_are_served_in_arrival_order_each_woken_once_at_its_slot() {
    const WAITERS: usize = 12;
    let limiter = Arc::new(RateLimiter::with_clock(
        per_second(10, 3),
        TokioClock::new(),
    ));
    let begin = Instant::now();
    let completions = Arc::new(Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..WAITERS)
        .map(|arrival| {
            let (limiter, completions) = (Arc::clone(&limiter), Arc::clone(&completions));
            start(async move {
                let ((), wakes) = CountWakes::new(limiter.until_ready()).await;
                completions.lock().unwrap().push(arrival);
                (begin.elapsed(), wakes)
            })
        })
        .collect();
    for (arrival, handle) in handles.into_iter().enumerate() {
        let (elapsed, wakes) = handle.await.unwrap();
        // The burst of 3 at once, then one every 100 ms.
        let slot = ms(100 * (arrival as u64).saturating_sub(2));
        assert_eq!(elapsed, slot, "waiter {arrival}");
        let expected_wakes = usize::from(arrival >= 3);
        assert_eq!(wakes, expected_wakes, "waiter {arrival}: wake-ups");
    }
    assert_eq!(
        *completions.lock().unwrap(),
        (0..WAITERS).collect::<Vec<_>>()
    );
}

#[tokio::test(start_paused = true)]
async fn weighted_waiters_queue_in_order() {
    let limiter = Arc::new(RateLimiter::with_clock(
        per_second(10, 5),
        TokioClock::new(),
    ));
    let begin = Instant::now();
    let handles: Vec<_> = [5, 1, 4, 2]
        .into_iter()
        .map(|n| {
            let limiter = Arc::clone(&limiter);
            start(async move {
                limiter.until_n_ready(n).await.unwrap();
                begin.elapsed()
            })
        })
        .collect();
    let mut times = Vec::new();
    for handle in handles {
        times.push(handle.await.unwrap());
    }
    // Cells 1-5 at once, cell 6 at 100 ms, cells 7-10 at 500 ms, cells 11-12 at 700 ms.
    assert_eq!(times, [ms(0), ms(100), ms(500), ms(700)]);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_waiter_gives_its_cell_back() {
    let limiter = RateLimiter::with_clock(per_second(10, 1), TokioClock::new());
    let begin = Instant::now();
    assert!(limiter.check().is_allowed()); // the next cell is due at 100 ms
    let cancelled = tokio::time::timeout(ms(50), limiter.until_ready()).await;
    assert!(cancelled.is_err(), "the wait should have timed out");
    assert_eq!(begin.elapsed(), ms(50));
    // The cell reserved for 100 ms is free again: a new waiter gets it, not the next.
    limiter.until_ready().await;
    assert_eq!(begin.elapsed(), ms(100));
    limiter.until_ready().await;
    assert_eq!(begin.elapsed(), ms(200));
}

/// The control for the test above: a waiter that is not cancelled keeps its cell, so the
/// next one waits a slot longer.
#[tokio::test(start_paused = true)]
async fn a_waiter_that_is_not_cancelled_keeps_its_cell() {
    let limiter = Arc::new(RateLimiter::with_clock(
        per_second(10, 1),
        TokioClock::new(),
    ));
    let begin = Instant::now();
    assert!(limiter.check().is_allowed());
    let first = {
        let limiter = Arc::clone(&limiter);
        start(async move { limiter.until_ready().await })
    };
    tokio::time::sleep(ms(50)).await;
    limiter.until_ready().await;
    assert_eq!(begin.elapsed(), ms(200));
    first.await.unwrap();
}

/// Giving back the cells of a waiter that has waiters queued behind it must not let a
/// newcomer share a slot with one of them: with burst 1, no two cells at the same time.
#[tokio::test(start_paused = true)]
async fn cancelling_a_waiter_in_the_middle_of_the_queue_never_exceeds_the_burst() {
    let limiter = Arc::new(RateLimiter::with_clock(
        per_second(10, 1),
        TokioClock::new(),
    ));
    let begin = Instant::now();
    assert!(limiter.check().is_allowed());
    let waiter = || {
        let limiter = Arc::clone(&limiter);
        start(async move {
            limiter.until_ready().await;
            begin.elapsed()
        })
    };
    let (a, b, c) = (waiter(), waiter(), waiter()); // slots at 100, 200 and 300 ms
    tokio::time::sleep(ms(50)).await;
    b.abort();
    assert!(b.await.unwrap_err().is_cancelled());
    let d = waiter();
    let mut uses = vec![(Duration::ZERO, 1)];
    for handle in [a, c, d] {
        uses.push((handle.await.unwrap(), 1));
    }
    assert_conforms(&uses, ms(100), 1);
}

#[tokio::test(start_paused = true)]
async fn a_request_above_the_burst_fails_at_once_and_reserves_nothing() {
    let limiter = RateLimiter::with_clock(per_second(10, 4), TokioClock::new());
    let begin = Instant::now();
    let error = limiter.until_n_ready(5).await.unwrap_err();
    assert_eq!((error.requested, error.burst), (5, 4));
    assert_eq!(begin.elapsed(), Duration::ZERO);
    assert_eq!(limiter.check().remaining(), 3);
    // Also after waiting: the wait for 4 took until the spent cell was back.
    limiter.until_n_ready(4).await.unwrap();
    assert_eq!(begin.elapsed(), ms(100));
    assert!(limiter.until_n_ready(5).await.is_err());
    assert_eq!(begin.elapsed(), ms(100));
}

#[tokio::test(start_paused = true)]
async fn the_rate_holds_over_a_long_run() {
    // 100 per second: the burst at once, then one every 10 ms.
    let limiter = RateLimiter::with_clock(Quota::per_second(nz(100)), TokioClock::new());
    let begin = Instant::now();
    for _ in 0..20_000 {
        limiter.until_ready().await;
    }
    let expected = ms(10 * (20_000 - 100));
    let elapsed = begin.elapsed();
    let error = elapsed.abs_diff(expected);
    assert!(
        error <= expected / 100,
        "{elapsed:?} for 20,000 cells, {expected:?} expected"
    );
    assert_eq!(elapsed, expected, "whole-millisecond slots are met exactly");
}

/// With an interval that is not a whole number of milliseconds (tokio's timer
/// resolution), each wake-up may be up to 1 ms late, but lateness never accumulates:
/// slots are kept on the limiter's timeline, not counted from each wake-up.
#[tokio::test(start_paused = true)]
async fn timer_rounding_does_not_accumulate() {
    let limiter = RateLimiter::with_clock(Quota::per_second(nz(3)), TokioClock::new());
    let interval = limiter.quota().replenish_interval(); // 333,333,334 ns
    let begin = Instant::now();
    for cell in 0..3_000u32 {
        limiter.until_ready().await;
        let slot = interval * cell.saturating_sub(2);
        let elapsed = begin.elapsed();
        assert!(
            elapsed >= slot && elapsed < slot + ms(1),
            "cell {cell} at {elapsed:?}, slot {slot:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn concurrent_waiters_share_the_rate() {
    let limiter = Arc::new(RateLimiter::with_clock(
        Quota::per_second(nz(100)),
        TokioClock::new(),
    ));
    let begin = Instant::now();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let limiter = Arc::clone(&limiter);
            tokio::spawn(async move {
                for _ in 0..1_000 {
                    limiter.until_ready().await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(begin.elapsed(), ms(10 * (10_000 - 100)));
}

#[tokio::test(start_paused = true)]
async fn keyed_waits_are_per_key() {
    let limiter = Arc::new(
        KeyedRateLimiter::<&'static str, _>::builder(per_second(10, 1))
            .clock(TokioClock::new())
            .build(),
    );
    let begin = Instant::now();
    let tasks: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|key| {
            let limiter = Arc::clone(&limiter);
            tokio::spawn(async move {
                let mut times = Vec::new();
                for _ in 0..3 {
                    limiter.until_key_ready(&key).await.unwrap();
                    times.push(begin.elapsed());
                }
                times
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), [ms(0), ms(100), ms(200)]);
    }
    // A weighted wait above the key's burst fails at once, using the key's own quota.
    limiter.set_key_quota(&"c", per_second(10, 3));
    let before = Instant::now();
    assert_eq!(
        limiter.until_key_n_ready(&"b", 2).await,
        Err(KeyedCheckError::InsufficientCapacity {
            requested: 2,
            burst: 1
        })
    );
    limiter.until_key_n_ready(&"c", 3).await.unwrap();
    assert_eq!(before.elapsed(), Duration::ZERO);
    // A cancelled keyed wait gives its cell back.
    assert!(
        tokio::time::timeout(ms(50), limiter.until_key_ready(&"c"))
            .await
            .is_err()
    );
    limiter.until_key_ready(&"c").await.unwrap();
    assert_eq!(
        before.elapsed(),
        ms(100),
        "the cell due at 100 ms was given back"
    );
}

/// A cancelled keyed waiter gives its cell back to the state it reserved on, not to a new
/// state of the same key (after `reset_key`, the key starts over with one burst).
#[tokio::test(start_paused = true)]
async fn a_cancelled_keyed_waiter_gives_nothing_to_a_reset_key() {
    let limiter = Arc::new(
        KeyedRateLimiter::<u32, _>::builder(per_second(10, 1))
            .clock(TokioClock::new())
            .build(),
    );
    assert!(limiter.check(&1).unwrap().is_allowed());
    let waiter = {
        let limiter = Arc::clone(&limiter);
        start(async move { limiter.until_key_ready(&1).await })
    };
    tokio::time::sleep(ms(50)).await;
    assert!(limiter.reset_key(&1));
    assert!(limiter.check(&1).unwrap().is_allowed()); // the new state's one cell
    waiter.abort();
    assert!(waiter.await.unwrap_err().is_cancelled());
    assert!(
        !limiter.check(&1).unwrap().is_allowed(),
        "a burst of 1 admitted 2 cells at once"
    );
}

#[tokio::test(start_paused = true)]
async fn a_keyed_wait_for_a_new_key_can_be_refused_when_full() {
    let limiter = KeyedRateLimiter::<u32, _>::builder(Quota::per_hour(nz(1)))
        .max_keys(1)
        .clock(TokioClock::new())
        .build();
    limiter.until_key_ready(&1).await.unwrap();
    assert_eq!(
        limiter.until_key_ready(&2).await,
        Err(KeyedCheckError::TooManyKeys { max_keys: 1 })
    );
    assert_eq!(limiter.len(), 1);
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Wait(u32),
    Check(u32),
    Cancel(usize),
    Sleep(u64),
}

/// Random waits, checks, cancellations and pauses: whatever is used (checks admitted now,
/// waiters when they complete) conforms to the quota, and waiters complete in order.
fn run_waits(count: u32, burst: u32, ops: &[Op]) {
    let runtime = paused_runtime();
    runtime.block_on(async {
        let limiter = Arc::new(RateLimiter::with_clock(
            per_second(count, burst),
            TokioClock::new(),
        ));
        let interval = limiter.quota().replenish_interval();
        let begin = Instant::now();
        let uses = Arc::new(Mutex::new(Vec::new()));
        let mut waiters: Vec<(u32, JoinHandle<Duration>)> = Vec::new();
        for &op in ops {
            match op {
                Op::Wait(n) => {
                    let (limiter, uses) = (Arc::clone(&limiter), Arc::clone(&uses));
                    let waiter = start(async move {
                        limiter.until_n_ready(n).await.unwrap();
                        uses.lock().unwrap().push((begin.elapsed(), n));
                        begin.elapsed()
                    });
                    waiters.push((n, waiter));
                }
                Op::Check(n) => {
                    if limiter.check_n(n).unwrap().is_allowed() {
                        uses.lock().unwrap().push((begin.elapsed(), n));
                    }
                }
                Op::Cancel(index) => {
                    if !waiters.is_empty() {
                        let index = index % waiters.len();
                        waiters[index].1.abort();
                    }
                }
                Op::Sleep(millis) => tokio::time::sleep(ms(millis)).await,
            }
        }
        // Waiters for at least one cell complete in the order they arrived (a zero-cell
        // wait spends nothing, so its place in the queue is not a promise).
        let mut completed = Vec::new();
        for (n, waiter) in waiters {
            match waiter.await {
                Ok(time) if n > 0 => completed.push(time),
                Ok(_) => {}
                Err(error) => assert!(error.is_cancelled()),
            }
        }
        assert!(
            completed.is_sorted(),
            "waiters completed out of order: {completed:?}"
        );
        assert_conforms(&uses.lock().unwrap(), interval, burst);
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn waits_checks_and_cancellations_conform_to_the_quota(
        (count, burst, ops) in (
            // Whole-millisecond intervals, so tokio's timer wakes waiters exactly.
            prop::sample::select(vec![1u32, 2, 4, 5, 10, 20, 25, 50, 100]),
            1u32..=4,
        ).prop_flat_map(|(count, burst)| {
            let interval = 1_000 / u64::from(count);
            let op = prop_oneof![
                4 => (0..=burst).prop_map(Op::Wait),
                2 => (0..=burst).prop_map(Op::Check),
                2 => any::<usize>().prop_map(Op::Cancel),
                3 => (0..=3 * interval).prop_map(Op::Sleep),
            ];
            (Just(count), Just(burst), proptest::collection::vec(op, 1..40))
        })
    ) {
        run_waits(count, burst, &ops);
    }
}

// ConcurrencyLimit.

#[tokio::test(start_paused = true)]
async fn in_flight_never_exceeds_the_limit() {
    let limit = ConcurrencyLimit::new(3);
    let active = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..50u64)
        .map(|task| {
            let (limit, active, most) = (limit.clone(), Arc::clone(&active), Arc::clone(&most));
            tokio::spawn(async move {
                let permit = limit.acquire().await.unwrap();
                let now = active.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                assert!(limit.in_flight() <= 3);
                tokio::time::sleep(ms(1 + task * 7 % 13)).await; // simulated work
                active.fetch_sub(1, Ordering::SeqCst);
                drop(permit);
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(most.load(Ordering::SeqCst), 3);
    assert_eq!(limit.in_flight(), 0);
    assert_eq!(limit.available(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_flight_never_exceeds_the_limit_across_threads() {
    let limit = ConcurrencyLimit::new(2);
    let active = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (limit, active) = (limit.clone(), Arc::clone(&active));
            tokio::spawn(async move {
                for _ in 0..200 {
                    let _permit = limit.acquire().await.unwrap();
                    let now = active.fetch_add(1, Ordering::SeqCst) + 1;
                    assert!(now <= 2, "{now} in flight");
                    tokio::task::yield_now().await;
                    active.fetch_sub(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(limit.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn acquire_is_first_come_first_served() {
    let limit = ConcurrencyLimit::new(1);
    let held = limit.try_acquire().unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let waiters: Vec<_> = (0..10)
        .map(|arrival| {
            let (limit, order) = (limit.clone(), Arc::clone(&order));
            start(async move {
                let _permit = limit.acquire().await.unwrap();
                order.lock().unwrap().push(arrival);
            })
        })
        .collect();
    assert!(
        matches!(limit.try_acquire(), Err(AcquireError::NoPermits)),
        "try_acquire must not overtake waiters"
    );
    drop(held);
    for waiter in waiters {
        waiter.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), (0..10).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_acquire_holds_nothing() {
    let limit = ConcurrencyLimit::new(1);
    let held = limit.acquire().await.unwrap();
    assert!(tokio::time::timeout(ms(10), limit.acquire()).await.is_err());
    let aborted = {
        let limit = limit.clone();
        start(async move { limit.acquire().await.map(drop) })
    };
    let later = {
        let limit = limit.clone();
        start(async move { limit.acquire().await.map(drop) })
    };
    aborted.abort();
    assert!(aborted.await.unwrap_err().is_cancelled());
    assert_eq!(limit.in_flight(), 1);
    drop(held);
    later.await.unwrap().unwrap(); // the waiter behind the cancelled one gets the slot
    assert_eq!(limit.in_flight(), 0);
    assert_eq!(limit.available(), 1);
    drop(limit.try_acquire().unwrap());
}

#[tokio::test(start_paused = true)]
async fn raising_the_limit_lets_waiters_in() {
    let limit = ConcurrencyLimit::new(1);
    let _held = limit.acquire().await.unwrap();
    let (entered, mut entries) = tokio::sync::mpsc::unbounded_channel();
    let (release, released) = tokio::sync::watch::channel(false);
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let (limit, entered, mut released) = (limit.clone(), entered.clone(), released.clone());
            start(async move {
                let _permit = limit.acquire().await.unwrap();
                entered.send(()).unwrap();
                released.wait_for(|released| *released).await.unwrap();
            })
        })
        .collect();
    limit.set_limit(4);
    assert_eq!(limit.limit(), 4);
    for _ in 0..3 {
        entries.recv().await.unwrap();
    }
    assert_eq!(limit.in_flight(), 4);
    assert_eq!(limit.available(), 0);
    release.send(true).unwrap();
    for waiter in waiters {
        waiter.await.unwrap();
    }
    assert_eq!((limit.in_flight(), limit.available()), (1, 3));
}

#[tokio::test(start_paused = true)]
async fn lowering_the_limit_retires_permits_as_they_come_back() {
    let limit = ConcurrencyLimit::new(4);
    let mut held: Vec<_> = (0..4).map(|_| limit.try_acquire().unwrap()).collect();
    limit.set_limit(2);
    assert_eq!(
        (limit.limit(), limit.in_flight(), limit.available()),
        (2, 4, 0)
    );
    held.pop();
    assert_eq!((limit.in_flight(), limit.available()), (3, 0));
    assert!(limit.try_acquire().is_err());
    held.pop();
    assert_eq!((limit.in_flight(), limit.available()), (2, 0));
    assert!(limit.try_acquire().is_err(), "2 in flight is the new limit");
    held.pop();
    assert_eq!((limit.in_flight(), limit.available()), (1, 1));
    held.push(limit.try_acquire().unwrap());
    assert!(limit.try_acquire().is_err());

    // Lowered and raised again before any permit came back: nothing is lost or gained.
    limit.set_limit(1); // 2 in flight, one to retire
    limit.set_limit(3);
    assert_eq!(
        (limit.limit(), limit.in_flight(), limit.available()),
        (3, 2, 1)
    );
    held.clear();
    assert_eq!((limit.in_flight(), limit.available()), (0, 3));

    // Lowering with free slots takes them away at once.
    limit.set_limit(0);
    assert_eq!(limit.available(), 0);
    assert!(tokio::time::timeout(ms(5), limit.acquire()).await.is_err());
    limit.set_limit(1);
    drop(limit.acquire().await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn closing_fails_waiters_and_later_acquires() {
    let limit = ConcurrencyLimit::new(1);
    let held = limit.acquire().await.unwrap();
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let limit = limit.clone();
            start(async move { limit.acquire().await.map(drop) })
        })
        .collect();
    assert!(!limit.is_closed());
    limit.close();
    assert!(limit.is_closed());
    for waiter in waiters {
        assert_eq!(waiter.await.unwrap(), Err(AcquireError::Closed));
    }
    assert_eq!(limit.try_acquire().unwrap_err(), AcquireError::Closed);
    assert_eq!(limit.acquire().await.unwrap_err(), AcquireError::Closed);
    assert_eq!(
        limit.acquire_timeout(ms(10)).await.unwrap_err(),
        AcquireError::Closed
    );
    // A permit already out stays valid until dropped.
    assert_eq!(limit.in_flight(), 1);
    drop(held);
    assert_eq!(limit.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn acquire_timeout_waits_exactly_the_timeout() {
    let limit = ConcurrencyLimit::new(1);
    let held = limit.acquire().await.unwrap();
    let begin = Instant::now();
    assert_eq!(
        limit.acquire_timeout(ms(50)).await.unwrap_err(),
        AcquireError::NoPermits
    );
    assert_eq!(begin.elapsed(), ms(50));
    let releaser = tokio::spawn(async move {
        tokio::time::sleep(ms(20)).await; // simulated work on paused time
        drop(held);
    });
    let permit = limit.acquire_timeout(ms(50)).await.unwrap();
    assert_eq!(begin.elapsed(), ms(70));
    assert_eq!(limit.in_flight(), 1);
    drop(permit);
    releaser.await.unwrap();
    assert_eq!(limit.try_acquire().map(drop), Ok(()));
}

/// `check_n(0)` spends nothing and is allowed even while waiters are queued past the
/// burst (the state's TAT is then beyond `now + tolerance`); a one-cell check is not.
#[tokio::test(start_paused = true)]
async fn a_zero_cell_check_is_allowed_behind_queued_waiters() {
    let limiter = Arc::new(RateLimiter::with_clock(
        per_second(10, 1),
        TokioClock::new(),
    ));
    assert!(limiter.check().is_allowed());
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let limiter = Arc::clone(&limiter);
            start(async move { limiter.until_ready().await })
        })
        .collect();
    tokio::task::yield_now().await;
    let zero = limiter.check_n(0).unwrap();
    assert!(zero.is_allowed());
    assert_eq!(zero.remaining(), 0);
    assert!(!limiter.check().is_allowed());
    for waiter in waiters {
        waiter.await.unwrap();
    }
}
