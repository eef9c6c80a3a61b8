//! Real threads hammering one breaker: 4 threads, 200 000 calls with random outcomes
//! (seeded xorshift, so every run draws the same outcomes; only the interleaving varies),
//! a [`ManualClock`] moved on by one of them. Invariants are checked during the run and
//! at the end:
//!
//! * the window never reports more calls than it holds (`count_window` size; in
//!   half-open, the permitted probes);
//! * never more half-open probes are held at once than permitted (an in-flight counter
//!   around every probe);
//! * every transition is an edge of the state machine, and every recorded outcome and
//!   every refusal emits exactly one event;
//! * the breaker is never stuck: once the calls succeed and time passes it closes, and
//!   its window then holds exactly the calls recorded since.
//!
//! Nothing here measures wall-clock time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use flowbed_circuitbreaker::{
    CircuitBreaker, Config, Event, Interest, ManualClock, Outcome, State, WaitInOpen,
};

const THREADS: u64 = 4;
const CALLS_PER_THREAD: u64 = 50_000;
/// The count window's size.
const WINDOW: u32 = 20;
const PERMITTED: u32 = 3;
const WAIT: Duration = Duration::from_millis(100);
const SLOW: Duration = Duration::from_millis(50);

/// Marsaglia's xorshift64: deterministic per seed, no dependency.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// `true` with probability `percent` %.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// What every thread counts, checked against the breaker's own numbers at the end.
#[derive(Default)]
struct Tally {
    /// Outcomes recorded on permits not granted in `Disabled` (each emits one
    /// `Event::Call`).
    recorded: AtomicU64,
    /// Refused calls (each emits one `Event::Rejected`).
    rejected: AtomicU64,
    /// Half-open probes held right now, and the most ever held at once.
    probes_in_flight: AtomicU64,
    most_probes: AtomicU64,
    /// Half-open probes admitted over the whole run.
    probes: AtomicU64,
}

/// What the breaker told its subscriber.
#[derive(Default)]
struct Seen {
    calls: AtomicU64,
    rejected: AtomicU64,
    /// `[Closed->Open, Open->HalfOpen, HalfOpen->Closed, HalfOpen->Open]`.
    edges: [AtomicU64; 4],
    /// Transitions that are no edge of the automatic state machine.
    illegal: AtomicU64,
}

impl Seen {
    fn note(&self, event: &Event) {
        let counter = match *event {
            Event::Call { .. } => &self.calls,
            Event::Rejected(_) => &self.rejected,
            Event::Transition { from, to } => match (from, to) {
                (State::Closed, State::Open) => &self.edges[0],
                (State::Open, State::HalfOpen) => &self.edges[1],
                (State::HalfOpen, State::Closed) => &self.edges[2],
                (State::HalfOpen, State::Open) => &self.edges[3],
                _ => &self.illegal,
            },
            _ => &self.illegal,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// How a worker thread behaves.
#[derive(Clone, Copy)]
struct Plan {
    /// Whether this thread moves the clock on (1 ms per call).
    drives_clock: bool,
    /// The largest number of calls the window may report outside half-open (`None`:
    /// a time window, bounded by time rather than count).
    window: Option<u64>,
    /// Whether the breaker moves only by itself (no `reset`/`transition_to`): then the
    /// in-flight probe count is exact and must stay within the permitted probes.
    automatic: bool,
}

/// One worker: `CALLS_PER_THREAD` calls in phases of 2 000 that alternate between a
/// healthy (5 % failures, 5 % slow) and a sick (70 % failures, 40 % slow) downstream.
/// A tenth of the permits are given back without an outcome, a twentieth are ignored.
fn worker(
    breaker: &CircuitBreaker<ManualClock>,
    clock: &ManualClock,
    seed: u64,
    plan: Plan,
    tally: &Tally,
) {
    let mut rng = XorShift::new(seed);
    let mut last_not_permitted = 0;
    for i in 0..CALLS_PER_THREAD {
        if plan.drives_clock {
            clock.advance(Duration::from_millis(1));
        }
        let sick = (i / 2_000) % 2 == 1;
        let (fail, slow) = if sick { (70, 40) } else { (5, 5) };
        match breaker.try_acquire() {
            Ok(permit) => {
                let probe = permit.state() == State::HalfOpen;
                // A `Disabled` breaker records nothing and emits no event.
                let disabled = permit.state() == State::Disabled;
                if probe {
                    tally.probes.fetch_add(1, Ordering::Relaxed);
                    let held = tally.probes_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    tally.most_probes.fetch_max(held, Ordering::Relaxed);
                    if plan.automatic {
                        assert!(
                            held <= u64::from(PERMITTED),
                            "{held} half-open probes held at once, {PERMITTED} permitted"
                        );
                    }
                }
                let took = if rng.chance(slow) {
                    SLOW * 2
                } else {
                    Duration::from_millis(1)
                };
                let roll = rng.next() % 100;
                // Leave the in-flight count before finishing: once the outcome is in, the
                // trial may end and a new one admit probes.
                if probe {
                    tally.probes_in_flight.fetch_sub(1, Ordering::SeqCst);
                }
                if roll < 10 {
                    drop(permit);
                } else {
                    let outcome = if roll < 15 {
                        Outcome::Ignored
                    } else if rng.chance(fail) {
                        Outcome::Failure
                    } else {
                        Outcome::Success
                    };
                    permit.record_timed(outcome, took);
                    if !disabled {
                        tally.recorded.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Err(rejected) => {
                tally.rejected.fetch_add(1, Ordering::Relaxed);
                if plan.automatic {
                    assert!(
                        matches!(rejected.state(), State::Open | State::HalfOpen),
                        "rejected in {:?}",
                        rejected.state()
                    );
                }
                if let Some(after) = rejected.retry_after() {
                    assert!(after <= WAIT, "retry_after {after:?} beyond the wait");
                }
            }
        }
        if i % 32 == 0 {
            let metrics = breaker.metrics();
            match metrics.state {
                State::HalfOpen => assert!(
                    metrics.calls <= u64::from(PERMITTED),
                    "{} probes finished in a trial of {PERMITTED}",
                    metrics.calls
                ),
                _ => {
                    if let Some(window) = plan.window {
                        assert!(
                            metrics.calls <= window,
                            "{} calls in a window of {window}",
                            metrics.calls
                        );
                    }
                }
            }
            if plan.automatic {
                assert!(
                    metrics.not_permitted >= last_not_permitted,
                    "the refused-call count went back"
                );
                last_not_permitted = metrics.not_permitted;
            }
        }
    }
}

/// Once the calls succeed and time passes, the breaker closes (within a bounded number
/// of waits), and its window then holds exactly the calls recorded since.
fn assert_recovers(breaker: &CircuitBreaker<ManualClock>, clock: &ManualClock, fill: u64) {
    if matches!(
        breaker.state(),
        State::Disabled | State::ForcedOpen | State::MetricsOnly
    ) {
        breaker.transition_to(State::Closed);
    }
    for _ in 0..100 {
        if breaker.state() == State::Closed {
            break;
        }
        clock.advance(WAIT);
        // One probe at a time: every probe slot must be free once the workers are done.
        for _ in 0..PERMITTED {
            match breaker.try_acquire() {
                Ok(permit) => permit.record_success(Duration::ZERO),
                Err(rejected) => assert_eq!(
                    rejected.state(),
                    State::Open,
                    "half-open with no probe in flight refused a probe: a slot leaked"
                ),
            }
        }
    }
    assert_eq!(breaker.state(), State::Closed, "the breaker is stuck");
    // Closing emptied the window (or it was already closed): fill it with successes.
    clock.advance(Duration::from_secs(10));
    for _ in 0..fill {
        breaker
            .try_acquire()
            .expect("a closed breaker refused a call")
            .record_success(Duration::ZERO);
    }
    let metrics = breaker.metrics();
    assert_eq!(metrics.state, State::Closed);
    assert_eq!(
        (metrics.calls, metrics.failed, metrics.slow_successful),
        (fill, 0, 0),
        "the window's counts drifted from its contents"
    );
}

/// Runs the workers on `config` (plus a chaos thread forcing states by hand when
/// `chaos`), then checks the tallies against the events and the breaker's recovery.
fn stress(config: Config, window: Option<u64>, chaos: bool) -> (Arc<Seen>, Tally) {
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::with_clock(config, clock.clone());
    let seen = Arc::new(Seen::default());
    let subscriber = Arc::clone(&seen);
    let _subscription = breaker.subscribe(Interest::All, move |event| subscriber.note(event));
    let tally = Tally::default();
    let stop = AtomicBool::new(false);

    thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|seed| {
                let plan = Plan {
                    drives_clock: seed == 0,
                    window,
                    automatic: !chaos,
                };
                let (breaker, clock, tally) = (&breaker, &clock, &tally);
                scope.spawn(move || worker(breaker, clock, seed, plan, tally))
            })
            .collect();
        let chaos = chaos.then(|| {
            let (breaker, stop) = (&breaker, &stop);
            scope.spawn(move || {
                let mut rng = XorShift::new(99);
                let states = [
                    State::Closed,
                    State::Open,
                    State::HalfOpen,
                    State::Disabled,
                    State::ForcedOpen,
                    State::MetricsOnly,
                ];
                // Bounded: at most 20 000 manual changes, fewer if the workers end first.
                for _ in 0..20_000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    if rng.chance(20) {
                        breaker.reset();
                    } else {
                        breaker.transition_to(states[(rng.next() % 6) as usize]);
                    }
                    thread::yield_now();
                }
            })
        });
        for worker in workers {
            worker.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        if let Some(chaos) = chaos {
            chaos.join().unwrap();
        }
    });

    assert_eq!(tally.probes_in_flight.load(Ordering::SeqCst), 0);
    if !chaos {
        assert!(tally.most_probes.load(Ordering::Relaxed) <= u64::from(PERMITTED));
        assert_eq!(
            seen.illegal.load(Ordering::Relaxed),
            0,
            "illegal transitions"
        );
        assert_eq!(
            breaker.metrics().not_permitted,
            tally.rejected.load(Ordering::Relaxed),
            "refusals counted by the breaker and by the callers differ"
        );
    }
    assert_eq!(
        seen.calls.load(Ordering::Relaxed),
        tally.recorded.load(Ordering::Relaxed),
        "not exactly one Call event per recorded outcome"
    );
    assert_eq!(
        seen.rejected.load(Ordering::Relaxed),
        tally.rejected.load(Ordering::Relaxed),
        "not exactly one Rejected event per refusal"
    );
    assert_recovers(&breaker, &clock, window.unwrap_or(50));
    (seen, tally)
}

fn base() -> flowbed_circuitbreaker::ConfigBuilder {
    Config::builder()
        .minimum_calls(10)
        .failure_rate_threshold(50.0)
        .slow_call_duration(SLOW)
        .slow_call_rate_threshold(80.0)
        .wait_in_open(WaitInOpen::Fixed(WAIT))
        .permitted_calls_in_half_open(PERMITTED)
}

/// The run went through every edge of the state machine many times (the workers'
/// sick phases open it; the clock and the healthy phases close it again).
fn assert_exercised(seen: &Seen, tally: &Tally) {
    let edges: Vec<u64> = seen
        .edges
        .iter()
        .map(|edge| edge.load(Ordering::Relaxed))
        .collect();
    assert!(
        edges.iter().all(|&count| count >= 5),
        "transitions [Closed->Open, Open->HalfOpen, HalfOpen->Closed, HalfOpen->Open] = {edges:?}"
    );
    assert!(tally.probes.load(Ordering::Relaxed) >= 30);
}

#[test]
fn count_window_under_four_threads_keeps_its_invariants() {
    let config = base().count_window(WINDOW).build().unwrap();
    let (seen, tally) = stress(config, Some(u64::from(WINDOW)), false);
    assert_exercised(&seen, &tally);
}

#[test]
fn time_window_under_four_threads_keeps_its_invariants() {
    let config = base()
        .time_window(Duration::from_millis(200), Duration::from_millis(20))
        .build()
        .unwrap();
    let (seen, tally) = stress(config, None, false);
    assert_exercised(&seen, &tally);
}

/// A fifth thread forces states by hand (`transition_to` any state, `reset`) while the
/// four workers call: counts stay within the window, every outcome and refusal still
/// emits one event, and once the chaos stops the breaker recovers with exact counts.
#[test]
fn manual_transitions_racing_calls_leave_the_breaker_consistent() {
    let config = base().count_window(WINDOW).build().unwrap();
    stress(config, Some(u64::from(WINDOW)), true);
}

/// A half-open trial's counters are tagged with 24 bits of the state word (6 bits of
/// transition counter, 18 bits of the start time in µs); a trial that starts 64
/// transitions after the previous one, at the same time modulo 2^18 µs, gets the same
/// tag and inherits the previous trial's counters. If that trial had used all its probe
/// slots, the new trial refuses every probe: with no `max_wait_in_half_open` the breaker
/// is stuck half-open for good.
///
/// Here the clock stands still (a `ManualClock`, or any clock read twice within the same
/// µs), and an operator toggles the breaker 62 times between two trials.
#[test]
fn half_open_trial_64_transitions_after_the_last_is_not_stuck() {
    let clock = ManualClock::new();
    let config = base().count_window(WINDOW).build().unwrap();
    let breaker = CircuitBreaker::with_clock(config, clock.clone());

    breaker.transition_to(State::HalfOpen);
    for _ in 0..PERMITTED {
        breaker
            .try_acquire()
            .unwrap()
            .record_success(Duration::ZERO);
    }
    assert_eq!(breaker.state(), State::Closed, "the first trial closed");
    for _ in 0..31 {
        breaker.transition_to(State::Disabled);
        breaker.transition_to(State::Closed);
    }
    breaker.transition_to(State::HalfOpen);
    assert_eq!(breaker.state(), State::HalfOpen);
    let probe = breaker.try_acquire();
    assert!(
        probe.is_ok(),
        "a fresh half-open trial refused its first probe: {:?}",
        probe.unwrap_err()
    );
}
