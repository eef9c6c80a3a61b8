//! The closed path allocates nothing: `call`, `try_acquire` + `record`, and `call_async`
//! polled by hand, on count and time windows, with and without slow-call timing, with no
//! subscribers, a transitions subscriber, or a subscriber to every call. So do the
//! rejections of an open breaker, half-open probes and `metrics()`.
//!
//! A counting global allocator counts the allocations of each thread (a thread-local
//! counter), so the tests of this binary can run in parallel without seeing each other's
//! allocations. Every measurement runs a warm-up first, then 10 000 operations, and must
//! count zero.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::hint::black_box;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use flowbed_circuitbreaker::{
    CircuitBreaker, Clock, Config, Event, Interest, ManualClock, MonotonicClock, Outcome, State,
};

struct CountingAllocator;

thread_local! {
    /// Allocations (and reallocations) made by this thread.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_one() {
    // `try_with`: a thread being torn down may still free and allocate.
    let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
}

// SAFETY: forwards every call to the system allocator unchanged and only counts.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Operations per measurement, after a warm-up of `WARM_UP`.
const N: u64 = 10_000;
const WARM_UP: u64 = 1_000;

/// How many times this thread allocated while `f` ran.
fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

/// Runs `op(i)` `WARM_UP` times, then `N` times counting allocations, and asserts none.
fn assert_no_allocations(what: &str, mut op: impl FnMut(u64)) {
    for i in 0..WARM_UP {
        op(i);
    }
    let allocations = allocations_in(|| {
        for i in WARM_UP..WARM_UP + N {
            op(i);
        }
    });
    assert_eq!(
        allocations, 0,
        "{what}: {allocations} allocations in {N} calls"
    );
}

/// Every fourth call fails: 25 %, below the default 50 % threshold, so the breaker stays
/// closed and the window keeps turning over (successes replacing failures and back).
fn outcome(i: u64) -> Result<u64, &'static str> {
    if i % 4 == 0 { Err("boom") } else { Ok(i) }
}

fn classified(i: u64) -> Outcome {
    if i % 4 == 0 {
        Outcome::Failure
    } else {
        Outcome::Success
    }
}

/// The configurations the closed path is measured on: count and time windows, each with
/// and without slow-call timing (a tenth of the calls slow, below the 100 % default slow
/// rate threshold).
fn configs() -> Vec<(&'static str, Config)> {
    let count = || Config::builder().count_window(100).minimum_calls(10);
    let time = || {
        Config::builder()
            .time_window(Duration::from_secs(10), Duration::from_secs(1))
            .minimum_calls(10)
    };
    let slow = Duration::from_millis(50);
    vec![
        ("count window", count().build().unwrap()),
        (
            "count window, timed",
            count().slow_call_duration(slow).build().unwrap(),
        ),
        ("time window", time().build().unwrap()),
        (
            "time window, timed",
            time().slow_call_duration(slow).build().unwrap(),
        ),
    ]
}

/// A breaker on a manual clock; `tick(i)` moves the clock on a little every call, so the
/// time window's buckets rotate (every 1 000 calls) during the measurement.
fn manual_breaker(config: Config) -> (CircuitBreaker<ManualClock>, impl Fn(u64)) {
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::with_clock(config, clock.clone());
    let tick = move |_i: u64| clock.advance(Duration::from_millis(1));
    (breaker, tick)
}

fn assert_closed<C: Clock>(breaker: &CircuitBreaker<C>, what: &str) {
    assert_eq!(breaker.state(), State::Closed, "{what}: the breaker opened");
    assert!(
        breaker.metrics().calls >= 10,
        "{what}: nothing was recorded"
    );
}

#[test]
fn the_allocator_counts() {
    let allocations = allocations_in(|| {
        black_box(Box::new(black_box(7u64)));
    });
    assert_eq!(allocations, 1);
    let mut grown = Vec::<u64>::with_capacity(1);
    let allocations = allocations_in(|| grown.extend([1, 2, 3, 4, 5]));
    assert!(allocations >= 1);
}

#[test]
fn call_on_the_closed_path_allocates_nothing() {
    for (name, config) in configs() {
        let (breaker, tick) = manual_breaker(config);
        assert_no_allocations(name, |i| {
            tick(i);
            let _ = black_box(breaker.call(|| outcome(i)));
        });
        assert_closed(&breaker, name);
    }
}

#[test]
fn call_classified_and_error_classifiers_allocate_nothing() {
    let config = Config::builder()
        .minimum_calls(10)
        .ignore_error_if(|error: &&'static str| error.is_empty())
        .build()
        .unwrap();
    let (breaker, tick) = manual_breaker(config);
    assert_no_allocations("call with classifiers", |i| {
        tick(i);
        let _ = black_box(breaker.call(|| outcome(i)));
    });
    assert_no_allocations("call_classified", |i| {
        let _ = black_box(breaker.call_classified(|| Ok::<_, ()>(i), |_| classified(i)));
    });
    assert_closed(&breaker, "classifiers");
}

#[test]
fn try_acquire_and_record_allocate_nothing() {
    for (name, config) in configs() {
        let (breaker, tick) = manual_breaker(config);
        assert_no_allocations(name, |i| {
            tick(i);
            breaker.try_acquire().unwrap().record(classified(i));
        });
        assert_no_allocations(name, |i| {
            let took = Duration::from_millis(if i % 10 == 0 { 60 } else { 1 });
            let permit = breaker.try_acquire().unwrap();
            match i % 3 {
                0 => permit.record_success(took),
                1 => permit.record_timed(classified(i), took),
                _ => permit.release(),
            }
        });
        assert_closed(&breaker, name);
    }
}

#[test]
fn owned_permits_allocate_nothing() {
    let config = Config::builder().minimum_calls(10).build().unwrap();
    let breaker = Arc::new(CircuitBreaker::with_clock(config, ManualClock::new()));
    assert_no_allocations("try_acquire_owned", |i| {
        breaker.try_acquire_owned().unwrap().record(classified(i));
    });
    assert_closed(&*breaker, "owned permits");
}

#[test]
fn the_default_monotonic_clock_allocates_nothing() {
    let config = Config::builder()
        .minimum_calls(10)
        .slow_call_duration(Duration::from_secs(1))
        .build()
        .unwrap();
    let breaker: CircuitBreaker<MonotonicClock> = CircuitBreaker::new(config);
    assert_no_allocations("monotonic clock, timed", |i| {
        let _ = black_box(breaker.call(|| outcome(i)));
    });
    assert_closed(&breaker, "monotonic clock");
}

/// Ready after being polled `pending` times (waking itself each time).
struct ReadyAfter {
    pending: u32,
    value: u64,
}

impl Future for ReadyAfter {
    type Output = Result<u64, &'static str>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.pending == 0 {
            return Poll::Ready(outcome(self.value));
        }
        self.pending -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[test]
fn call_async_polled_by_hand_allocates_nothing() {
    let mut cx = Context::from_waker(Waker::noop());
    for (name, config) in configs() {
        let (breaker, tick) = manual_breaker(config);
        assert_no_allocations(name, |i| {
            tick(i);
            let operation = ReadyAfter {
                pending: (i % 3) as u32,
                value: i,
            };
            let mut future = pin!(breaker.call_async(operation));
            loop {
                if let Poll::Ready(result) = future.as_mut().poll(&mut cx) {
                    black_box(result.map_err(|error| error.is_rejected()).ok());
                    break;
                }
            }
        });
        // Cancelled futures (dropped while the operation is pending) give their permit back
        // without allocating either.
        assert_no_allocations(name, |i| {
            let operation = ReadyAfter {
                pending: 1,
                value: i,
            };
            let mut future = pin!(breaker.call_async(operation));
            assert!(future.as_mut().poll(&mut cx).is_pending());
        });
        assert_closed(&breaker, name);
    }
}

#[test]
fn events_with_no_subscriber_or_a_transitions_subscriber_allocate_nothing() {
    for (name, config) in configs() {
        let (breaker, tick) = manual_breaker(config.clone());
        assert_no_allocations(name, |i| {
            tick(i);
            let _ = black_box(breaker.call(|| outcome(i)));
        });

        let (breaker, tick) = manual_breaker(config);
        let transitions = Arc::new(AtomicU64::new(0));
        let seen = Arc::clone(&transitions);
        let _subscription = breaker.subscribe(Interest::Transitions, move |_| {
            seen.fetch_add(1, Ordering::Relaxed);
        });
        assert_no_allocations(name, |i| {
            tick(i);
            let _ = black_box(breaker.call(|| outcome(i)));
        });
        assert_eq!(transitions.load(Ordering::Relaxed), 0, "{name}");
        assert_closed(&breaker, name);
    }
}

#[test]
fn a_subscriber_to_every_call_costs_no_allocation() {
    for (name, config) in configs() {
        let (breaker, tick) = manual_breaker(config);
        let calls = Arc::new(AtomicU64::new(0));
        let seen = Arc::clone(&calls);
        let _subscription = breaker.subscribe(Interest::All, move |event| {
            if let Event::Call { .. } = event {
                seen.fetch_add(1, Ordering::Relaxed);
            }
        });
        assert_no_allocations(name, |i| {
            tick(i);
            let _ = black_box(breaker.call(|| outcome(i)));
        });
        assert_eq!(
            calls.load(Ordering::Relaxed),
            WARM_UP + N,
            "{name}: one event per call"
        );
        assert_closed(&breaker, name);
    }
}

#[test]
fn rejections_allocate_nothing_even_with_a_subscriber() {
    let clock = ManualClock::new();
    let config = Config::builder()
        .count_window(4)
        .minimum_calls(4)
        .build()
        .unwrap();
    let breaker = CircuitBreaker::with_clock(config, clock.clone());
    let rejected = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&rejected);
    let _subscription = breaker.subscribe(Interest::All, move |event| {
        if let Event::Rejected(_) = event {
            seen.fetch_add(1, Ordering::Relaxed);
        }
    });
    for _ in 0..4 {
        let _ = breaker.call(|| Err::<(), _>("boom"));
    }
    assert_eq!(breaker.state(), State::Open);
    assert_no_allocations("open", |i| {
        let _ = black_box(breaker.call(|| outcome(i)));
    });
    breaker.transition_to(State::ForcedOpen);
    assert_no_allocations("forced open", |_| {
        black_box(breaker.try_acquire().unwrap_err());
    });
    assert_eq!(rejected.load(Ordering::Relaxed), 2 * (WARM_UP + N));
}

#[test]
fn half_open_probes_allocate_nothing() {
    let clock = ManualClock::new();
    let config = Config::builder()
        .count_window(4)
        .minimum_calls(4)
        .permitted_calls_in_half_open(2)
        .build()
        .unwrap();
    let breaker = CircuitBreaker::with_clock(config, clock.clone());
    breaker.transition_to(State::HalfOpen);
    // Probes given back (dropped, ignored) and refused extra probes never end the trial.
    assert_no_allocations("half-open probes", |i| {
        let first = breaker.try_acquire().unwrap();
        let second = breaker.try_acquire().unwrap();
        assert_eq!(first.state(), State::HalfOpen);
        black_box(breaker.try_acquire().unwrap_err());
        first.record(Outcome::Ignored);
        if i % 2 == 0 {
            drop(second);
        } else {
            second.release();
        }
    });
    assert_eq!(breaker.state(), State::HalfOpen);
}

#[test]
fn metrics_and_state_allocate_nothing() {
    for (name, config) in configs() {
        let (breaker, tick) = manual_breaker(config);
        assert_no_allocations(name, |i| {
            tick(i);
            let _ = breaker.call(|| outcome(i));
            black_box(breaker.metrics());
            black_box(breaker.state());
        });
    }
}
