//! flowbed-circuitbreaker against recloser, failsafe and tower-resilience's circuit breaker,
//! on the same workloads in the same run.
//!
//! Groups are `circuitbreaker_<workload>`, functions are `flowbed` and the peer's crate
//! name, so results sit at `target/criterion/circuitbreaker_<workload>/<name>/`.
//!
//! | group | one iteration | peers |
//! |---|---|---|
//! | `circuitbreaker_closed_call` | one successful `call` through a closed breaker, one thread | recloser, failsafe, `failsafe_success_rate` (for information) |
//! | `circuitbreaker_closed_call_2threads` | one successful `call` on one of 2 threads sharing one breaker (time per call: aggregate throughput) | recloser, failsafe |
//! | `circuitbreaker_open_reject` | one `call` refused by an open breaker (opened by failures, 60 s wait) | recloser, failsafe |
//! | `circuitbreaker_tower_layer` | `ready().await` + `call().await` on a `service_fn` that answers at once | `bare` (no layer), `tower_resilience` |
//!
//! Every breaker is configured alike, as far as each allows: a count window of the last
//! 100 calls, open at a failure rate of 50 % or more, rates computed over at least 100
//! calls, 60 s in open, no slow-call timing.
//!
//! * flowbed: `Config::builder().count_window(100).failure_rate_threshold(50.0)
//!   .minimum_calls(100)`, wait 60 s, 10 half-open probes, no `slow_call_duration` (calls
//!   are not timed), default clock (`MonotonicClock`), nobody subscribed to events.
//! * recloser: `closed_len(100)`, `error_rate(0.5)`, `open_wait(60 s)`, `half_open_len(10)`.
//!   It has no separate minimum: the rate is computed once the ring of 100 is full (in
//!   practice from the 101st call on). It never times calls.
//! * failsafe: it has no count window (its built-in policies are consecutive failures and
//!   an exponentially weighted success rate over a time window), so `failsafe` runs its
//!   state machine with [`CountWindowPolicy`] below, a 100-call ring with the same
//!   threshold and minimum, through failsafe's public `FailurePolicy` trait; a constant
//!   60 s backoff. `failsafe_success_rate` (closed path only, for information) is its
//!   built-in `success_rate_over_time_window(0.5, 100, 30 s, constant 60 s)`, which reads
//!   the clock on every success. It never times calls.
//! * tower-resilience (`tower-resilience-circuitbreaker`): `sliding_window_size(100)`
//!   (count based, the default), `failure_rate_threshold(0.5)`,
//!   `minimum_number_of_calls(100)`, `wait_duration_in_open(60 s)`,
//!   `permitted_calls_in_half_open(10)`, no `slow_call_duration_threshold`. It times every
//!   call all the same (`Instant::now()` around the inner call) and stamps its events with
//!   `Instant::now()` whether or not anyone listens; there is no switch for either.
//!
//! Every measured loop counts the calls that went through and asserts that all took the
//! intended path (all permitted, or all refused), so a misconfigured breaker cannot
//! measure the wrong path unnoticed.
//!
//! The tower services run on a current-thread tokio runtime (with the time driver), one
//! `block_on` around each batch of calls, the same for every service.
//!
//! Run: `cargo bench -p flowbed-benches --bench circuitbreaker` (add `-- --quick` for a
//! fast pass).

use std::hint::black_box;
use std::time::Duration;

mod support;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use failsafe::CircuitBreaker as _;
use failsafe::FailurePolicy;
use flowbed_circuitbreaker::{CallError, CircuitBreaker, Config, State, WaitInOpen};
use support::{call_loop, instant_service, run_2threads, run_timed};

/// Calls in the count window of every breaker.
const WINDOW: usize = 100;
/// Failure rate (percent) at which every breaker opens.
const THRESHOLD_PERCENT: usize = 50;
/// The fewest calls a rate is computed over.
const MINIMUM_CALLS: usize = 100;
/// How long every breaker stays open.
const WAIT_IN_OPEN: Duration = Duration::from_secs(60);
/// Half-open probes (where a breaker has the setting).
const HALF_OPEN_CALLS: usize = 10;

/// The error of a failing operation.
#[derive(Debug)]
struct Boom;

/// A successful operation: what every measured closed-path call runs.
#[inline]
fn succeed() -> Result<u64, Boom> {
    Ok(black_box(1))
}

/// A failing operation, used to open the breakers.
fn fail() -> Result<u64, Boom> {
    Err(Boom)
}

fn flowbed_config() -> Config {
    Config::builder()
        .count_window(WINDOW as u32)
        .failure_rate_threshold(THRESHOLD_PERCENT as f32)
        .minimum_calls(MINIMUM_CALLS as u32)
        .wait_in_open(WaitInOpen::Fixed(WAIT_IN_OPEN))
        .permitted_calls_in_half_open(HALF_OPEN_CALLS as u32)
        .build()
        .expect("valid circuit breaker config")
}

fn flowbed_breaker() -> CircuitBreaker {
    CircuitBreaker::new(flowbed_config())
}

fn recloser_breaker() -> recloser::Recloser {
    recloser::Recloser::custom()
        .closed_len(WINDOW)
        .error_rate(THRESHOLD_PERCENT as f32 / 100.0)
        .half_open_len(HALF_OPEN_CALLS)
        .open_wait(WAIT_IN_OPEN)
        .build()
}

/// A count window for failsafe's state machine: the last [`WINDOW`] outcomes, open at a
/// failure rate of at least [`THRESHOLD_PERCENT`] once [`MINIMUM_CALLS`] are in (the
/// semantics of the other breakers' count windows). failsafe asks its policy only on a
/// failure whether to open.
#[derive(Debug)]
struct CountWindowPolicy {
    /// `true`: that call failed.
    ring: [bool; WINDOW],
    /// The slot the next outcome goes to.
    next: usize,
    /// Outcomes in the ring (up to `WINDOW`).
    filled: usize,
    /// Failures in the ring.
    failed: usize,
}

impl CountWindowPolicy {
    fn new() -> Self {
        CountWindowPolicy {
            ring: [false; WINDOW],
            next: 0,
            filled: 0,
            failed: 0,
        }
    }

    #[inline]
    fn push(&mut self, failed: bool) {
        let slot = &mut self.ring[self.next];
        if self.filled == WINDOW {
            self.failed -= usize::from(*slot);
        } else {
            self.filled += 1;
        }
        *slot = failed;
        self.failed += usize::from(failed);
        self.next = if self.next + 1 == WINDOW {
            0
        } else {
            self.next + 1
        };
    }
}

impl FailurePolicy for CountWindowPolicy {
    #[inline]
    fn record_success(&mut self) {
        self.push(false);
    }

    fn mark_dead_on_failure(&mut self) -> Option<Duration> {
        self.push(true);
        (self.filled >= MINIMUM_CALLS && self.failed * 100 >= THRESHOLD_PERCENT * self.filled)
            .then_some(WAIT_IN_OPEN)
    }

    fn revived(&mut self) {
        *self = CountWindowPolicy::new();
    }
}

fn failsafe_breaker() -> failsafe::StateMachine<CountWindowPolicy, ()> {
    failsafe::Config::new()
        .failure_policy(CountWindowPolicy::new())
        .build()
}

/// failsafe's own rate policy, the nearest it has to the others' configuration.
fn failsafe_success_rate_breaker() -> failsafe::StateMachine<
    failsafe::failure_policy::SuccessRateOverTimeWindow<failsafe::backoff::Constant>,
    (),
> {
    let policy = failsafe::failure_policy::success_rate_over_time_window(
        1.0 - THRESHOLD_PERCENT as f64 / 100.0,
        MINIMUM_CALLS as u32,
        Duration::from_secs(30),
        failsafe::backoff::constant(WAIT_IN_OPEN),
    );
    failsafe::Config::new().failure_policy(policy).build()
}

/// Feeds failing calls to a breaker until one is refused; asserts that it opened after at
/// least [`MINIMUM_CALLS`] and at most one call more (recloser computes its rate from the
/// call after the one that fills its ring).
fn open_by_failures(name: &str, mut call_failing: impl FnMut() -> bool) {
    let mut failures = 0;
    while call_failing() {
        failures += 1;
        assert!(failures <= MINIMUM_CALLS + 1, "{name} did not open");
    }
    assert!(
        failures >= MINIMUM_CALLS,
        "{name} opened after {failures} calls"
    );
}

fn closed_call(c: &mut Criterion) {
    let mut group = c.benchmark_group("circuitbreaker_closed_call");
    group.throughput(Throughput::Elements(1));

    let flowbed = flowbed_breaker();
    group.bench_function("flowbed", |b| {
        b.iter_custom(|iters| run_timed(iters, true, || flowbed.call(succeed).is_ok()))
    });
    assert_eq!(flowbed.state(), State::Closed);

    let recloser = recloser_breaker();
    group.bench_function("recloser", |b| {
        b.iter_custom(|iters| run_timed(iters, true, || recloser.call(succeed).is_ok()))
    });

    let failsafe = failsafe_breaker();
    group.bench_function("failsafe", |b| {
        b.iter_custom(|iters| run_timed(iters, true, || failsafe.call(succeed).is_ok()))
    });

    let failsafe_success_rate = failsafe_success_rate_breaker();
    group.bench_function("failsafe_success_rate", |b| {
        b.iter_custom(|iters| {
            run_timed(iters, true, || failsafe_success_rate.call(succeed).is_ok())
        })
    });
    group.finish();
}

/// Two threads make `iters` calls each on one breaker; the figure is the time until both
/// are done, halved: time per call of the pair, the inverse of their combined throughput.
fn closed_call_2threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("circuitbreaker_closed_call_2threads");
    // The reported time is per call of either thread: throughput is calls per second of
    // both threads together.
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);

    let flowbed = flowbed_breaker();
    group.bench_function("flowbed", |b| {
        b.iter_custom(|iters| run_2threads(&flowbed, iters, |cb| cb.call(succeed).is_ok()) / 2)
    });
    assert_eq!(flowbed.state(), State::Closed);

    let recloser = recloser_breaker();
    group.bench_function("recloser", |b| {
        b.iter_custom(|iters| run_2threads(&recloser, iters, |cb| cb.call(succeed).is_ok()) / 2)
    });

    let failsafe = failsafe_breaker();
    group.bench_function("failsafe", |b| {
        b.iter_custom(|iters| run_2threads(&failsafe, iters, |cb| cb.call(succeed).is_ok()) / 2)
    });
    group.finish();
}

fn open_reject(c: &mut Criterion) {
    let mut group = c.benchmark_group("circuitbreaker_open_reject");
    group.throughput(Throughput::Elements(1));

    let flowbed = flowbed_breaker();
    open_by_failures("flowbed", || {
        !matches!(flowbed.call(fail), Err(CallError::Rejected(_)))
    });
    assert_eq!(flowbed.state(), State::Open);
    group.bench_function("flowbed", |b| {
        b.iter_custom(|iters| run_timed(iters, false, || flowbed.call(succeed).is_ok()))
    });
    assert_eq!(flowbed.state(), State::Open);

    let recloser = recloser_breaker();
    open_by_failures("recloser", || {
        !matches!(recloser.call(fail), Err(recloser::Error::Rejected))
    });
    group.bench_function("recloser", |b| {
        b.iter_custom(|iters| run_timed(iters, false, || recloser.call(succeed).is_ok()))
    });

    let failsafe = failsafe_breaker();
    open_by_failures("failsafe", || {
        !matches!(failsafe.call(fail), Err(failsafe::Error::Rejected))
    });
    group.bench_function("failsafe", |b| {
        b.iter_custom(|iters| run_timed(iters, false, || failsafe.call(succeed).is_ok()))
    });
    group.finish();
}

fn tower_layer(c: &mut Criterion) {
    let mut group = c.benchmark_group("circuitbreaker_tower_layer");
    group.throughput(Throughput::Elements(1));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");

    let mut bare = instant_service();
    group.bench_function("bare", |b| {
        b.iter_custom(|iters| runtime.block_on(call_loop(&mut bare, iters)))
    });

    let mut flowbed = tower::ServiceBuilder::new()
        .layer(flowbed_circuitbreaker::tower::CircuitBreakerLayer::new(
            flowbed_breaker(),
        ))
        .service(instant_service());
    group.bench_function("flowbed", |b| {
        b.iter_custom(|iters| runtime.block_on(call_loop(&mut flowbed, iters)))
    });

    let mut tower_resilience = {
        let _context = runtime.enter();
        let layer = tower_resilience_circuitbreaker::CircuitBreakerLayer::builder()
            .sliding_window_size(WINDOW)
            .failure_rate_threshold(THRESHOLD_PERCENT as f64 / 100.0)
            .minimum_number_of_calls(MINIMUM_CALLS)
            .wait_duration_in_open(WAIT_IN_OPEN)
            .permitted_calls_in_half_open(HALF_OPEN_CALLS)
            .build()
            .expect("valid tower-resilience config");
        tower::ServiceBuilder::new()
            .layer(layer)
            .service(instant_service())
    };
    group.bench_function("tower_resilience", |b| {
        b.iter_custom(|iters| runtime.block_on(call_loop(&mut tower_resilience, iters)))
    });

    group.finish();
}

criterion_group!(
    benches,
    closed_call,
    closed_call_2threads,
    open_reject,
    tower_layer
);
criterion_main!(benches);
