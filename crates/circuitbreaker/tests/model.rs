//! `CircuitBreaker` against a sequential reference model, on random configurations and
//! random sequences of operations: acquire, record an outstanding permit (with an outcome
//! and a measured or given duration), drop a permit, move the clock, transition by hand,
//! reset.
//!
//! The model is plain data: the count window is a `VecDeque` of the last `n` outcomes, the
//! time window a `VecDeque` of `(bucket epoch, outcome)`, the half-open trial five
//! counters, and every state *period* has a number that a permit remembers. After each
//! step the breaker's answers must equal the model's: every `try_acquire` (granted or not,
//! the refusing state, the retry-after), and, on the steps that look, `state()`,
//! every field of `metrics()` and the transition events emitted so far.
//!
//! Time-driven transitions (`Open` → `HalfOpen` once the wait is over, `HalfOpen` →
//! `Open` once `max_wait_in_half_open` has passed) happen at the first *look* after they
//! are due, and the new state's clock starts at that look: `state()`, `metrics()`,
//! `try_acquire()` and `transition_to()` look (`reset()` does not need to: it closes
//! whatever the state). Not every step looks, so due transitions also meet records, drops,
//! manual transitions and resets. These rules hold whether or not anybody looked:
//! - a half-open trial that is past `max_wait_in_half_open` is over: a probe finishing
//!   after that cannot decide it (its record is a look: the breaker opens then);
//! - `transition_to(s)` leaves the breaker in `s` (a due transition is applied first, and
//!   its events come first);
//! - an outcome counts only in the period its permit was granted in: the permit of a
//!   period that is over (a closed window since emptied, a half-open trial since ended)
//!   changes nothing at all.

use std::collections::VecDeque;
use std::time::Duration;

use flowbed_circuitbreaker::{
    CallPermit, CircuitBreaker, Config, Event, Interest, ManualClock, Metrics, Outcome, Rejected,
    SlidingWindow, State, WaitInOpen,
};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;

mod common;

use common::EventLog;

const MS: u64 = 1_000_000;
/// The breaker saturates its count of failed trials in a row at this.
const MAX_TRIALS: u32 = 127;

// ---------------------------------------------------------------------------------------
// Configurations and operations
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum WindowKind {
    Count(u32),
    Time { buckets: u64, bucket_ns: u64 },
}

#[derive(Debug, Clone, Copy)]
enum Wait {
    Fixed(u64),
    Exponential {
        initial: u64,
        multiplier: u32,
        max: u64,
    },
}

#[derive(Debug, Clone, Copy)]
struct Cfg {
    window: WindowKind,
    minimum_calls: u32,
    failure_threshold: f32,
    /// `slow_call_duration` and `slow_call_rate_threshold`.
    slow: Option<(u64, f32)>,
    wait: Wait,
    permitted: u32,
    max_wait_in_half_open: Option<u64>,
    /// Where the clock stands when the breaker is made.
    start: u64,
}

impl Cfg {
    fn config(&self) -> Config {
        let mut builder = Config::builder()
            .sliding_window(match self.window {
                WindowKind::Count(n) => SlidingWindow::Count(n),
                WindowKind::Time { buckets, bucket_ns } => SlidingWindow::Time {
                    length: Duration::from_nanos(buckets * bucket_ns),
                    bucket: Duration::from_nanos(bucket_ns),
                },
            })
            .minimum_calls(self.minimum_calls)
            .failure_rate_threshold(self.failure_threshold)
            .permitted_calls_in_half_open(self.permitted)
            .wait_in_open(match self.wait {
                Wait::Fixed(ns) => WaitInOpen::Fixed(Duration::from_nanos(ns)),
                Wait::Exponential {
                    initial,
                    multiplier,
                    max,
                } => WaitInOpen::Exponential {
                    initial: Duration::from_nanos(initial),
                    multiplier: f64::from(multiplier),
                    max: Duration::from_nanos(max),
                },
            });
        if let Some((duration, threshold)) = self.slow {
            builder = builder
                .slow_call_duration(Duration::from_nanos(duration))
                .slow_call_rate_threshold(threshold);
        }
        if let Some(max) = self.max_wait_in_half_open {
            builder = builder.max_wait_in_half_open(Duration::from_nanos(max));
        }
        builder.build().expect("generated configurations are valid")
    }
}

fn percent() -> impl Strategy<Value = f32> {
    prop_oneof![
        2 => prop::sample::select(vec![1.0f32, 25.0, 50.0, 60.0, 75.0, 100.0]),
        1 => (1u32..=1000).prop_map(|tenths| tenths as f32 / 10.0),
    ]
}

fn cfg() -> impl Strategy<Value = Cfg> {
    let window = prop_oneof![
        (1u32..=20).prop_map(WindowKind::Count),
        (
            1u64..=5,
            prop_oneof![
                Just(MS),
                Just(10 * MS),
                Just(100 * MS),
                Just(1000 * MS),
                (1u64..=1000).prop_map(|ms| ms * MS),
            ]
        )
            .prop_map(|(buckets, bucket_ns)| WindowKind::Time { buckets, bucket_ns }),
    ];
    let wait = prop_oneof![
        (1u64..=3000).prop_map(|ms| Wait::Fixed(ms * MS)),
        (1u64..=1000, 1u32..=3, 1u64..=20).prop_map(|(ms, multiplier, cap)| {
            Wait::Exponential {
                initial: ms * MS,
                multiplier,
                max: ms * MS * cap,
            }
        }),
    ];
    (
        window,
        prop_oneof![3 => 1u32..=5, 1 => 1u32..=25],
        percent(),
        prop::option::weighted(0.5, (1u64..=100, percent())),
        wait,
        1u32..=4,
        prop::option::weighted(0.4, 1u64..=5000),
        0u64..=10_000_000_000,
    )
        .prop_map(
            |(window, minimum_calls, failure_threshold, slow, wait, permitted, max_half, start)| {
                Cfg {
                    window,
                    minimum_calls,
                    failure_threshold,
                    slow: slow.map(|(ms, threshold)| (ms * MS, threshold)),
                    wait,
                    permitted,
                    max_wait_in_half_open: max_half.map(|ms| ms * MS),
                    start,
                }
            },
        )
}

#[derive(Debug, Clone)]
enum Op {
    Acquire,
    /// Records the outstanding permit at this index: timed by the breaker (`None`) or with
    /// a duration given by the caller.
    Record(Index, Outcome, Option<u64>),
    Drop(Index),
    /// Acquires and, if granted, records at once (what `call` does).
    Call(Outcome, Option<u64>),
    Advance(u64),
    TransitionTo(State),
    Reset,
}

#[derive(Debug, Clone)]
struct Step {
    op: Op,
    /// Compare `state()`, `metrics()` and the events after the step (a look).
    look: bool,
}

fn op() -> impl Strategy<Value = Op> {
    let outcome = prop_oneof![
        9 => Just(Outcome::Success),
        9 => Just(Outcome::Failure),
        2 => Just(Outcome::Ignored),
    ];
    let took = prop::option::weighted(0.7, 0u64..=150 * MS);
    let advance = prop_oneof![
        // Sub-microsecond and microsecond steps: the breaker keeps µs.
        2 => 0u64..=3_000,
        6 => (0u64..=2_000).prop_map(|ms| ms * MS),
        3 => (0u64..=10_000).prop_map(|ms| ms * MS),
        // Long quiet times (tens of thousands of 1 ms buckets).
        1 => (30u64..=3_000).prop_map(|s| s * 1_000 * MS),
    ];
    let state = prop::sample::select(vec![
        State::Closed,
        State::Open,
        State::HalfOpen,
        State::Disabled,
        State::ForcedOpen,
        State::MetricsOnly,
    ]);
    prop_oneof![
        5 => Just(Op::Acquire),
        5 => (any::<Index>(), outcome.clone(), took.clone())
            .prop_map(|(i, o, t)| Op::Record(i, o, t)),
        4 => (outcome, took).prop_map(|(o, t)| Op::Call(o, t)),
        1 => any::<Index>().prop_map(Op::Drop),
        4 => advance.prop_map(Op::Advance),
        1 => state.prop_map(Op::TransitionTo),
        1 => Just(Op::Reset),
    ]
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = (op(), prop::bool::weighted(0.6)).prop_map(|(op, look)| Step { op, look });
    prop::collection::vec(step, 1..=60)
}

// ---------------------------------------------------------------------------------------
// The reference model
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Code {
    failed: bool,
    slow: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Totals {
    calls: u64,
    failed: u64,
    slow: u64,
    slow_failed: u64,
}

impl Totals {
    fn add(&mut self, code: Code) {
        self.calls += 1;
        self.failed += u64::from(code.failed);
        self.slow += u64::from(code.slow);
        self.slow_failed += u64::from(code.failed && code.slow);
    }
}

/// A permit as the model sees it: the period it was granted in, and when.
#[derive(Debug, Clone, Copy)]
struct ModelPermit {
    period: u64,
    state: State,
    started: u64,
}

/// What `try_acquire` should answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Granted(State),
    Refused(State, Option<Duration>),
}

#[derive(Debug)]
struct Model {
    cfg: Cfg,
    now: u64,
    state: State,
    /// When the period began, in ns, kept to the µs as the breaker keeps it.
    since: u64,
    failed_trials: u32,
    /// Numbers the periods: a new one for every transition and reset.
    period: u64,
    /// Count window: the last `n` outcomes. Time window: `(epoch, outcome)` of every call
    /// still in the window (older entries are filtered out when read).
    window: VecDeque<(u64, Code)>,
    /// The half-open trial: probes admitted (in flight or done) and the outcomes so far.
    admitted: u32,
    trial: Totals,
    not_permitted: u64,
    events: Vec<Event>,
}

impl Model {
    fn new(cfg: Cfg) -> Model {
        Model {
            cfg,
            now: cfg.start,
            state: State::Closed,
            since: cfg.start / 1_000 * 1_000,
            failed_trials: 0,
            period: 0,
            window: VecDeque::new(),
            admitted: 0,
            trial: Totals::default(),
            not_permitted: 0,
            events: Vec::new(),
        }
    }

    fn timed(&self) -> bool {
        self.cfg.slow.is_some()
    }

    fn minimum_calls(&self) -> u64 {
        u64::from(match self.cfg.window {
            WindowKind::Count(n) => self.cfg.minimum_calls.min(n),
            WindowKind::Time { .. } => self.cfg.minimum_calls,
        })
    }

    /// `wait_in_open` after `k` failed trials in a row (integer multipliers: exact).
    fn wait(&self, k: u32) -> u64 {
        match self.cfg.wait {
            Wait::Fixed(ns) => ns,
            Wait::Exponential {
                initial,
                multiplier,
                max,
            } => {
                let mut wait = u128::from(initial);
                for _ in 0..k {
                    wait *= u128::from(multiplier);
                    if wait >= u128::from(max) {
                        return max;
                    }
                }
                u64::try_from(wait).unwrap().min(max)
            }
        }
    }

    fn open_until(&self) -> u64 {
        self.since + self.wait(self.failed_trials)
    }

    fn trial_expired(&self) -> bool {
        self.state == State::HalfOpen
            && self
                .cfg
                .max_wait_in_half_open
                .is_some_and(|max| self.now >= self.since + max)
    }

    fn transition(&mut self, to: State, failed_trials: u32) {
        if matches!(to, State::Closed | State::MetricsOnly) {
            self.window.clear();
        }
        self.events.push(Event::Transition {
            from: self.state,
            to,
        });
        self.enter(to, failed_trials);
    }

    fn enter(&mut self, to: State, failed_trials: u32) {
        self.state = to;
        self.failed_trials = failed_trials.min(MAX_TRIALS);
        self.since = (self.now / 1_000 * 1_000).max(self.since);
        self.period += 1;
        self.admitted = 0;
        self.trial = Totals::default();
    }

    /// Applies the time-driven transitions that are due (a look).
    fn settle(&mut self) {
        loop {
            if self.state == State::Open && self.now >= self.open_until() {
                self.transition(State::HalfOpen, self.failed_trials);
            } else if self.trial_expired() {
                self.transition(State::Open, self.failed_trials + 1);
            } else {
                return;
            }
        }
    }

    fn window_totals(&self) -> Totals {
        let mut totals = Totals::default();
        let oldest = match self.cfg.window {
            WindowKind::Count(_) => 0,
            WindowKind::Time { buckets, bucket_ns } => {
                (self.now / bucket_ns + 1).saturating_sub(buckets)
            }
        };
        for &(epoch, code) in &self.window {
            if epoch >= oldest {
                totals.add(code);
            }
        }
        totals
    }

    fn rates_exceed(&self, totals: Totals) -> bool {
        let calls = totals.calls as f64;
        let at_least =
            |count: u64, percent: f32| count as f64 * 100.0 >= f64::from(percent) * calls;
        (totals.failed != 0 && at_least(totals.failed, self.cfg.failure_threshold))
            || self
                .cfg
                .slow
                .is_some_and(|(_, threshold)| totals.slow != 0 && at_least(totals.slow, threshold))
    }

    fn refuse(&mut self, state: State, retry_after: Option<Duration>) -> Answer {
        self.not_permitted += 1;
        Answer::Refused(state, retry_after)
    }

    fn acquire(&mut self) -> (Answer, Option<ModelPermit>) {
        self.settle();
        let permit = ModelPermit {
            period: self.period,
            state: self.state,
            started: if self.timed() && self.state != State::Disabled {
                self.now
            } else {
                0
            },
        };
        match self.state {
            State::Closed | State::MetricsOnly | State::Disabled => {
                (Answer::Granted(self.state), Some(permit))
            }
            State::ForcedOpen => (self.refuse(State::ForcedOpen, None), None),
            State::Open => {
                let left = Duration::from_nanos(self.open_until() - self.now);
                (self.refuse(State::Open, Some(left)), None)
            }
            State::HalfOpen if self.admitted >= self.cfg.permitted => {
                (self.refuse(State::HalfOpen, None), None)
            }
            State::HalfOpen => {
                self.admitted += 1;
                (Answer::Granted(State::HalfOpen), Some(permit))
            }
        }
    }

    fn release(&mut self, permit: ModelPermit) {
        if permit.state == State::HalfOpen && permit.period == self.period {
            assert!(self.admitted > self.trial.calls as u32);
            self.admitted -= 1;
        }
    }

    fn record(&mut self, permit: ModelPermit, outcome: Outcome, took: Option<u64>) {
        if permit.state == State::Disabled {
            return;
        }
        let took = took.or_else(|| self.timed().then(|| self.now - permit.started));
        let slow = match (self.cfg.slow, took) {
            (Some((duration, _)), Some(took)) => took >= duration,
            _ => false,
        };
        let code = match outcome {
            Outcome::Success => Code {
                failed: false,
                slow,
            },
            Outcome::Failure => Code { failed: true, slow },
            Outcome::Ignored => return self.release(permit),
        };
        if permit.period != self.period {
            // The period the permit was granted in is over: the outcome counts nowhere.
            return;
        }
        if permit.state == State::HalfOpen {
            if self.trial_expired() {
                // The trial ran out of time before this probe finished: the record is a
                // look, and the breaker opens (from now on).
                self.transition(State::Open, self.failed_trials + 1);
                return;
            }
            self.trial.add(code);
            if self.trial.calls >= u64::from(self.cfg.permitted) {
                if self.rates_exceed(self.trial) {
                    self.transition(State::Open, self.failed_trials + 1);
                } else {
                    self.transition(State::Closed, 0);
                }
            }
        } else {
            let epoch = match self.cfg.window {
                WindowKind::Count(n) => {
                    if self.window.len() == n as usize {
                        self.window.pop_front();
                    }
                    0
                }
                WindowKind::Time { bucket_ns, .. } => self.now / bucket_ns,
            };
            self.window.push_back((epoch, code));
            let totals = self.window_totals();
            if self.state == State::Closed
                && totals.calls >= self.minimum_calls()
                && self.rates_exceed(totals)
            {
                self.transition(State::Open, 0);
            }
        }
    }

    fn transition_to(&mut self, state: State) {
        self.settle();
        if self.state != state {
            let trials = match state {
                State::Open | State::HalfOpen => self.failed_trials,
                _ => 0,
            };
            self.transition(state, trials);
        }
    }

    fn reset(&mut self) {
        self.window.clear();
        self.not_permitted = 0;
        if self.state != State::Closed {
            self.events.push(Event::Transition {
                from: self.state,
                to: State::Closed,
            });
        }
        self.events.push(Event::Reset);
        self.enter(State::Closed, 0);
    }

    /// The expected metrics, as `(state, failure_rate, slow_call_rate, calls, successful,
    /// failed, slow_successful, slow_failed, not_permitted, time_in_state)`.
    fn metrics(&mut self) -> MetricsTuple {
        self.settle();
        let (totals, ready) = if self.state == State::HalfOpen {
            (self.trial, self.trial.calls > 0)
        } else {
            let totals = self.window_totals();
            (totals, totals.calls >= self.minimum_calls())
        };
        let rate = |count: u64| {
            (ready && totals.calls > 0).then(|| (count as f64 * 100.0 / totals.calls as f64) as f32)
        };
        (
            self.state,
            rate(totals.failed),
            if self.timed() {
                rate(totals.slow)
            } else {
                None
            },
            totals.calls,
            totals.calls - totals.failed,
            totals.failed,
            totals.slow - totals.slow_failed,
            totals.slow_failed,
            self.not_permitted,
            Duration::from_nanos(self.now - self.since),
        )
    }
}

type MetricsTuple = (
    State,
    Option<f32>,
    Option<f32>,
    u64,
    u64,
    u64,
    u64,
    u64,
    u64,
    Duration,
);

fn tuple(m: &Metrics) -> MetricsTuple {
    (
        m.state,
        m.failure_rate,
        m.slow_call_rate,
        m.calls,
        m.successful,
        m.failed,
        m.slow_successful,
        m.slow_failed,
        m.not_permitted,
        m.time_in_state,
    )
}

fn answer(result: &Result<CallPermit<'_, ManualClock>, Rejected>) -> Answer {
    match result {
        Ok(permit) => Answer::Granted(permit.state()),
        Err(rejected) => Answer::Refused(rejected.state(), rejected.retry_after()),
    }
}

// ---------------------------------------------------------------------------------------
// Running a case
// ---------------------------------------------------------------------------------------

fn run(cfg: Cfg, steps: &[Step]) -> Result<(), TestCaseError> {
    let clock = ManualClock::new();
    clock.advance(Duration::from_nanos(cfg.start));
    let breaker = CircuitBreaker::with_clock(cfg.config(), clock.clone());
    let log = EventLog::new(&breaker, Interest::Transitions);
    let mut model = Model::new(cfg);
    let mut permits: Vec<(CallPermit<'_, ManualClock>, ModelPermit)> = Vec::new();

    for (number, step) in steps.iter().enumerate() {
        match &step.op {
            Op::Acquire => {
                if let Some(granted) = acquire(&breaker, &mut model, number)? {
                    permits.push(granted);
                }
            }
            Op::Record(index, outcome, took) => {
                if !permits.is_empty() {
                    let (real, permit) = permits.swap_remove(index.index(permits.len()));
                    record(real, permit, &mut model, *outcome, *took);
                }
            }
            Op::Call(outcome, took) => {
                if let Some((real, permit)) = acquire(&breaker, &mut model, number)? {
                    record(real, permit, &mut model, *outcome, *took);
                }
            }
            Op::Drop(index) => {
                if !permits.is_empty() {
                    let (real, permit) = permits.swap_remove(index.index(permits.len()));
                    drop(real);
                    model.release(permit);
                }
            }
            Op::Advance(ns) => {
                clock.advance(Duration::from_nanos(*ns));
                model.now += ns;
            }
            Op::TransitionTo(state) => {
                breaker.transition_to(*state);
                model.transition_to(*state);
            }
            Op::Reset => {
                breaker.reset();
                model.reset();
            }
        }
        if step.look {
            look(&breaker, &mut model, &log, number)?;
        }
    }
    look(&breaker, &mut model, &log, steps.len())
}

/// `try_acquire` on both; the two permits if granted.
fn acquire<'a>(
    breaker: &'a CircuitBreaker<ManualClock>,
    model: &mut Model,
    step: usize,
) -> Result<Option<(CallPermit<'a, ManualClock>, ModelPermit)>, TestCaseError> {
    let real = breaker.try_acquire();
    let (expected, permit) = model.acquire();
    prop_assert_eq!(answer(&real), expected, "step {}: try_acquire", step);
    Ok(real.ok().zip(permit))
}

/// Records `outcome` on both permits, timed by the breaker or taking `took` ns.
fn record(
    real: CallPermit<'_, ManualClock>,
    permit: ModelPermit,
    model: &mut Model,
    outcome: Outcome,
    took: Option<u64>,
) {
    match took {
        Some(ns) => real.record_timed(outcome, Duration::from_nanos(ns)),
        None => real.record(outcome),
    }
    model.record(permit, outcome, took);
}

/// Compares what `state()`, `metrics()` and the event log say with the model.
fn look(
    breaker: &CircuitBreaker<ManualClock>,
    model: &mut Model,
    log: &EventLog,
    step: usize,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        breaker.state(),
        model.metrics().0,
        "after step {}: state()",
        step
    );
    prop_assert_eq!(
        tuple(&breaker.metrics()),
        model.metrics(),
        "after step {}: metrics() as (state, failure_rate, slow_call_rate, calls, successful, \
         failed, slow_successful, slow_failed, not_permitted, time_in_state)",
        step
    );
    prop_assert_eq!(
        log.take(),
        std::mem::take(&mut model.events),
        "after step {}: transition events",
        step
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1_000,
        max_shrink_iters: 20_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn breaker_matches_the_reference_model(cfg in cfg(), steps in steps()) {
        run(cfg, &steps)?;
    }
}
