//! `CircuitBreaker`: the state machine, its permits and transitions.

use std::sync::Arc;
use std::time::Duration;

use crossbeam_utils::CachePadded;
use flowbed_ratelimit::{Clock, MonotonicClock};

use crate::config::duration_nanos;
use crate::events::{Event, Interest, Listeners, Subscription};
use crate::half_open::HalfOpenWord;
use crate::metrics::Metrics;
use crate::permit::{CallPermit, OwnedCallPermit, Ticket};
use crate::state::StateWord;
use crate::sync::{AtomicU64, Ordering};
use crate::window::{Code, Totals, Window};
use crate::{Config, Outcome, Rejected, State};

/// A circuit breaker: lets calls through while the downstream is healthy, refuses them
/// for a while once too many fail or are slow, then probes carefully before closing
/// again. The semantics are resilience4j's; see the [crate docs](crate) for the state
/// machine.
///
/// Share one breaker between threads and tasks by reference or in an `Arc`. Every method
/// takes `&self`; the closed path is lock-free and does not allocate.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowbed_circuitbreaker::{CircuitBreaker, Config, ManualClock, State};
///
/// let clock = ManualClock::new();
/// let config = Config::builder().count_window(4).minimum_calls(4).build()?;
/// let breaker = CircuitBreaker::with_clock(config, clock.clone());
///
/// for _ in 0..2 {
///     let _ = breaker.call(|| Ok::<_, &str>(()));
///     let _ = breaker.call(|| Err::<(), _>("timeout"));
/// }
/// // 2 of the last 4 calls failed: 50 %, the default threshold.
/// assert_eq!(breaker.state(), State::Open);
/// assert!(breaker.call(|| Ok::<_, &str>(())).unwrap_err().is_rejected());
///
/// clock.advance(Duration::from_secs(60));
/// assert_eq!(breaker.state(), State::HalfOpen);
/// # Ok::<(), flowbed_circuitbreaker::ConfigError>(())
/// ```
pub struct CircuitBreaker<C: Clock = MonotonicClock> {
    /// The current [`StateWord`] and the period the window's contents belong to (the
    /// state word it was last emptied for, or [`CLEARING`] while it is being emptied):
    /// read by every call, written by transitions only.
    state: CachePadded<[AtomicU64; 2]>,
    /// The current half-open trial's [`HalfOpenWord`].
    half_open: CachePadded<AtomicU64>,
    /// Calls refused since the breaker was made.
    not_permitted: CachePadded<AtomicU64>,
    window: Window,
    listeners: Arc<Listeners>,
    /// `slow_call_duration` in nanoseconds (`u64::MAX` when calls are not timed).
    slow_ns: u64,
    /// The fewest calls the window's rates are computed over.
    minimum_calls: u64,
    config: Config,
    clock: C,
}

impl<C: Clock> std::fmt::Debug for CircuitBreaker<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("state", &self.word())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// `window_period` while the window is being emptied: no record counts then.
const CLEARING: u64 = u64::MAX;
const STATE: usize = 0;
const WINDOW_PERIOD: usize = 1;

impl CircuitBreaker<MonotonicClock> {
    /// A closed breaker on the default clock.
    pub fn new(config: Config) -> Self {
        Self::with_clock(config, MonotonicClock::new())
    }
}

impl<C: Clock> CircuitBreaker<C> {
    /// A closed breaker on `clock` ([`ManualClock`](crate::ManualClock) in tests,
    /// [`TokioClock`](crate::TokioClock) under `tokio::time::pause()`).
    pub fn with_clock(config: Config, clock: C) -> Self {
        let now = clock.now();
        let minimum_calls = match config.sliding_window {
            crate::SlidingWindow::Count(size) => config.minimum_calls.min(size),
            crate::SlidingWindow::Time { .. } => config.minimum_calls,
        };
        let initial = StateWord::initial(State::Closed, now);
        CircuitBreaker {
            state: CachePadded::new([AtomicU64::new(initial.0), AtomicU64::new(initial.0)]),
            half_open: CachePadded::new(AtomicU64::new(0)),
            not_permitted: CachePadded::new(AtomicU64::new(0)),
            window: Window::new(config.sliding_window, now),
            listeners: Listeners::new(),
            slow_ns: config.slow_call_duration.map_or(u64::MAX, duration_nanos),
            minimum_calls: u64::from(minimum_calls),
            config,
            clock,
        }
    }

    /// The configuration the breaker was made with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The breaker's clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    fn word(&self) -> StateWord {
        StateWord(self.state[STATE].load(Ordering::Acquire))
    }

    fn window_period(&self) -> u64 {
        self.state[WINDOW_PERIOD].load(Ordering::Acquire)
    }

    /// The current state. An `Open` breaker whose wait is over becomes `HalfOpen` here
    /// (and a half-open trial past `max_wait_in_half_open` becomes `Open`): the
    /// transitions happen at the first look after they are due, without a timer thread.
    pub fn state(&self) -> State {
        self.settle().state()
    }

    /// Applies the time-driven transitions that are due and returns the current word.
    fn settle(&self) -> StateWord {
        let mut word = self.word();
        loop {
            let due = match word.state() {
                State::Open => {
                    let now = self.clock.now();
                    (now >= self.open_until(word))
                        .then(|| (State::HalfOpen, word.failed_trials(), now))
                }
                State::HalfOpen => self
                    .half_open_expired(word)
                    .map(|now| (State::Open, word.failed_trials() + 1, now)),
                _ => None,
            };
            match due {
                Some((to, trials, now)) => word = self.transition(word, to, trials, now),
                None => return word,
            }
        }
    }

    fn open_until(&self, word: StateWord) -> u64 {
        word.since_ns()
            .saturating_add(self.config.wait_in_open.nanos(word.failed_trials()))
    }

    /// `Some(now)` if the half-open trial `word` has run past `max_wait_in_half_open`.
    fn half_open_expired(&self, word: StateWord) -> Option<u64> {
        let max = self.config.max_wait_in_half_open?;
        let now = self.clock.now();
        (now >= word.since_ns().saturating_add(duration_nanos(max))).then_some(now)
    }

    /// Asks to make one call: a permit if the breaker lets it through, else why not.
    ///
    /// Record the call's outcome on the permit; a permit dropped without an outcome
    /// counts as nothing and gives a half-open probe slot back (so a cancelled future
    /// never leaves the breaker stuck half-open). A permit dropped while its thread
    /// panics records a failure.
    ///
    /// # Errors
    ///
    /// [`Rejected`] when the breaker is open, forced open, or half-open with every probe
    /// slot taken.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_circuitbreaker::{CircuitBreaker, Config, Outcome};
    ///
    /// let breaker = CircuitBreaker::new(Config::default());
    /// let permit = breaker.try_acquire()?;
    /// let status = 503; // ... make the call ...
    /// permit.record(if status >= 500 { Outcome::Failure } else { Outcome::Success });
    /// assert_eq!(breaker.metrics().failed, 1);
    /// # Ok::<(), flowbed_circuitbreaker::Rejected>(())
    /// ```
    #[inline]
    pub fn try_acquire(&self) -> Result<CallPermit<'_, C>, Rejected> {
        self.acquire().map(|ticket| CallPermit::new(self, ticket))
    }

    /// [`try_acquire`](Self::try_acquire) for a breaker in an `Arc`: the permit owns a
    /// reference, so it can move into a `'static` future.
    ///
    /// # Errors
    ///
    /// [`Rejected`] as for `try_acquire`.
    #[inline]
    pub fn try_acquire_owned(self: &Arc<Self>) -> Result<OwnedCallPermit<C>, Rejected> {
        self.acquire()
            .map(|ticket| OwnedCallPermit::new(Arc::clone(self), ticket))
    }

    #[inline]
    pub(crate) fn acquire(&self) -> Result<Ticket, Rejected> {
        let word = self.word();
        match word.state() {
            State::Closed | State::MetricsOnly | State::Disabled => Ok(self.ticket(word)),
            _ => self.acquire_contended(word),
        }
    }

    #[inline]
    fn ticket(&self, word: StateWord) -> Ticket {
        let timed = self.slow_ns != u64::MAX && word.state() != State::Disabled;
        Ticket {
            word,
            started: if timed { self.clock.now() } else { 0 },
        }
    }

    /// Acquiring outside `Closed`: open (maybe due for a trial), forced open, half-open.
    #[cold]
    fn acquire_contended(&self, mut word: StateWord) -> Result<Ticket, Rejected> {
        loop {
            match word.state() {
                State::Closed | State::MetricsOnly | State::Disabled => {
                    return Ok(self.ticket(word));
                }
                State::ForcedOpen => return Err(self.reject(State::ForcedOpen, None)),
                State::Open => {
                    let now = self.clock.now();
                    let until = self.open_until(word);
                    if now < until {
                        return Err(
                            self.reject(State::Open, Some(Duration::from_nanos(until - now)))
                        );
                    }
                    word = self.transition(word, State::HalfOpen, word.failed_trials(), now);
                }
                State::HalfOpen => {
                    if let Some(now) = self.half_open_expired(word) {
                        word = self.transition(word, State::Open, word.failed_trials() + 1, now);
                        continue;
                    }
                    match self.admit_probe(word) {
                        Ok(()) => return Ok(self.ticket(word)),
                        Err(Some(moved_on)) => word = moved_on,
                        Err(None) => return Err(self.reject(State::HalfOpen, None)),
                    }
                }
            }
        }
    }

    /// Takes a probe slot of the trial `word`. `Err(Some(w))`: the breaker left the
    /// trial (now `w`); `Err(None)`: every slot is taken.
    fn admit_probe(&self, word: StateWord) -> Result<(), Option<StateWord>> {
        let tag = word.tag();
        let mut current = self.half_open.load(Ordering::Acquire);
        loop {
            let half = HalfOpenWord(current);
            let next = if half.tag() != tag {
                // The trial's counters still belong to an earlier trial: start them, as
                // long as the breaker is still in this trial.
                let now = self.word();
                if now != word {
                    return Err(Some(now));
                }
                HalfOpenWord::fresh(tag).admit()
            } else if half.admitted() >= self.config.permitted_calls_in_half_open {
                return Err(None);
            } else {
                half.admit()
            };
            match self.half_open.compare_exchange_weak(
                current,
                next.0,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(()),
                Err(actual) => current = actual,
            }
        }
    }

    #[cold]
    fn reject(&self, state: State, retry_after: Option<Duration>) -> Rejected {
        self.not_permitted.fetch_add(1, Ordering::Relaxed);
        let rejected = Rejected { state, retry_after };
        if self.listeners.want_calls() {
            self.listeners.emit(&Event::Rejected(rejected));
        }
        rejected
    }

    /// Records how the call of `ticket` ended; `took` is measured from the ticket when
    /// `None` and calls are timed.
    pub(crate) fn finish(&self, ticket: Ticket, outcome: Outcome, took: Option<u64>) {
        let state = ticket.word.state();
        if state == State::Disabled {
            return;
        }
        let mut now = None;
        let took = took.or_else(|| {
            (self.slow_ns != u64::MAX).then(|| {
                let at = self.clock.now();
                now = Some(at);
                at.saturating_sub(ticket.started)
            })
        });
        let slow = took.is_some_and(|took| took >= self.slow_ns);
        if self.listeners.want_calls() {
            self.listeners.emit(&Event::Call {
                outcome,
                slow,
                took: took.map(Duration::from_nanos),
            });
        }
        let code = match outcome {
            Outcome::Success => Code::new(false, slow),
            Outcome::Failure => Code::new(true, slow),
            Outcome::Ignored => return self.release(ticket),
        };
        match state {
            State::HalfOpen => self.record_probe(ticket.word, code),
            _ => self.record_in_window(ticket.word, code, now),
        }
    }

    #[inline]
    fn record_in_window(&self, word: StateWord, code: Code, now: Option<u64>) {
        if self.word() != word || self.window_period() != word.0 {
            // The breaker left the period the permit was granted in (the outcome belongs
            // to a window that no longer exists), or the window is being emptied for a
            // new period.
            return;
        }
        let now = match now {
            Some(now) => now,
            None if self.window.needs_time() => self.clock.now(),
            None => 0,
        };
        let Some((totals, receipt)) = self.window.record(code, now) else {
            return;
        };
        if self.window_period() != word.0 {
            // A clear began while this call was being recorded and may have passed its
            // slot already: take the record back so no outcome of the old period
            // survives in the new one.
            self.window.undo(code, receipt);
            return;
        }
        if word.state() == State::Closed && self.exceeds(totals) {
            let now = if now == 0 { self.clock.now() } else { now };
            self.transition(word, State::Open, 0, now);
        }
    }

    /// Whether the window's rates call for opening.
    #[inline]
    fn exceeds(&self, totals: Totals) -> bool {
        totals.calls >= self.minimum_calls && self.rates_exceed(totals)
    }

    /// Whether the failure or slow-call rate of `totals` is at or above its threshold.
    #[inline]
    fn rates_exceed(&self, totals: Totals) -> bool {
        let calls = totals.calls as f64;
        let at_least =
            |count: u64, percent: f32| count as f64 * 100.0 >= f64::from(percent) * calls;
        (totals.failed != 0 && at_least(totals.failed, self.config.failure_rate_threshold))
            || (self.slow_ns != u64::MAX
                && totals.slow != 0
                && at_least(totals.slow, self.config.slow_call_rate_threshold))
    }

    fn record_probe(&self, word: StateWord, code: Code) {
        if self.word() != word {
            // The trial was abandoned (max wait, a manual transition, a reset).
            return;
        }
        if let Some(now) = self.half_open_expired(word) {
            // The trial ran out of time before this probe finished: the breaker was
            // open from the deadline on, whether anyone looked or not.
            self.transition(word, State::Open, word.failed_trials() + 1, now);
            return;
        }
        let mut current = self.half_open.load(Ordering::Acquire);
        loop {
            let half = HalfOpenWord(current);
            if half.tag() != word.tag() {
                return;
            }
            let next = half.record(code);
            match self.half_open.compare_exchange_weak(
                current,
                next.0,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if next.done() >= self.config.permitted_calls_in_half_open {
                        self.end_trial(word, next);
                    }
                    return;
                }
                Err(actual) => current = actual,
            }
        }
    }

    /// The last probe of trial `word` is in: close or open again.
    fn end_trial(&self, word: StateWord, half: HalfOpenWord) {
        let now = self.clock.now();
        let trial_exceeds = self.rates_exceed(half.totals());
        if trial_exceeds {
            self.transition(word, State::Open, word.failed_trials() + 1, now);
        } else {
            self.transition(word, State::Closed, 0, now);
        }
    }

    /// A permit ends without an outcome: a half-open probe gives its slot back.
    pub(crate) fn release(&self, ticket: Ticket) {
        if ticket.word.state() != State::HalfOpen {
            return;
        }
        let mut current = self.half_open.load(Ordering::Acquire);
        loop {
            let half = HalfOpenWord(current);
            if half.tag() != ticket.word.tag() || half.admitted() <= half.done() {
                return;
            }
            match self.half_open.compare_exchange_weak(
                current,
                half.release().0,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }

    /// Moves from `from` to `to` if the breaker is still in `from`; returns the word
    /// in force afterwards (the new one, or whatever another thread put there first).
    /// Exactly one of the threads racing to make a transition makes it and emits its
    /// event.
    fn transition(&self, from: StateWord, to: State, failed_trials: u32, now: u64) -> StateWord {
        let next = from.successor(to, failed_trials, now);
        if let Err(actual) =
            self.state[STATE].compare_exchange(from.0, next.0, Ordering::AcqRel, Ordering::Acquire)
        {
            return StateWord(actual);
        }
        self.entered(from, next, now);
        next
    }

    /// What moving from `from` to `next` involves besides the state word: zeroed trial
    /// counters after `HalfOpen`, a fresh window for `Closed` and `MetricsOnly`, and the
    /// event.
    fn entered(&self, from: StateWord, next: StateWord, now: u64) {
        if from.state() == State::HalfOpen {
            // The trial is over: zero its counters, so that a later trial whose tag
            // happens to be the same (the tags are 24 bits) starts from nothing. Nobody
            // is starting a trial now (the state is not `HalfOpen`), and permits of the
            // old one no longer match (a zero word is tag 0 with nothing admitted).
            self.half_open.store(0, Ordering::Release);
        }
        if matches!(next.state(), State::Closed | State::MetricsOnly) {
            self.empty_window_for(next, now);
        }
        if self.listeners.want_transitions() && from.state() != next.state() {
            self.listeners.emit(&Event::Transition {
                from: from.state(),
                to: next.state(),
            });
        }
    }

    /// Empties the window for the period `next`. Records of the new period that come
    /// before the window is empty are not counted, and records of the old period that
    /// land after the clear passed them are taken back (they see the period change).
    fn empty_window_for(&self, next: StateWord, now: u64) {
        self.state[WINDOW_PERIOD].store(CLEARING, Ordering::Release);
        self.window.clear(now);
        // Only if no later transition has emptied the window for its own period since.
        let _ = self.state[WINDOW_PERIOD].compare_exchange(
            CLEARING,
            next.0,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// Moves to `state` now, whatever the current state (resilience4j's
    /// `transitionTo…State`). Entering `Closed` or `MetricsOnly` empties the window;
    /// entering `Open` starts a fresh wait; entering `HalfOpen` starts a fresh trial.
    /// Moving to the current state does nothing (use [`reset`](Self::reset) to empty
    /// the window of a closed breaker).
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_circuitbreaker::{CircuitBreaker, Config, State};
    ///
    /// let breaker = CircuitBreaker::new(Config::default());
    /// breaker.transition_to(State::Disabled);
    /// assert!(breaker.try_acquire().is_ok());
    /// breaker.transition_to(State::ForcedOpen);
    /// assert!(breaker.try_acquire().is_err());
    /// ```
    pub fn transition_to(&self, state: State) {
        // Transitions that are due happen first (an `Open` whose wait is over is already
        // half-open), so the manual one starts from the state the breaker is really in.
        let mut word = self.settle();
        while word.state() != state {
            let trials = match state {
                State::Open | State::HalfOpen => word.failed_trials(),
                _ => 0,
            };
            let next = self.transition(word, state, trials, self.clock.now());
            if next.state() == state && next != word {
                return;
            }
            word = next;
        }
    }

    /// Closes the breaker with an empty window and the backoff started over.
    pub fn reset(&self) {
        let mut word = self.word();
        loop {
            let now = self.clock.now();
            let next = word.successor(State::Closed, 0, now);
            match self.state[STATE].compare_exchange(
                word.0,
                next.0,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    self.not_permitted.store(0, Ordering::Relaxed);
                    self.entered(word, next, now);
                    break;
                }
                Err(actual) => word = StateWord(actual),
            }
        }
        if self.listeners.want_transitions() {
            self.listeners.emit(&Event::Reset);
        }
    }

    /// Calls `callback` for every event of the given interest until the returned
    /// [`Subscription`] is dropped. Callbacks run on the thread that caused the event,
    /// after the state change; keep them short (forward to a channel for slow work) and
    /// do not panic in them.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use flowbed_circuitbreaker::{CircuitBreaker, Config, Event, Interest, State};
    ///
    /// let breaker = CircuitBreaker::new(Config::default());
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = Arc::clone(&seen);
    /// let _subscription = breaker.subscribe(Interest::Transitions, move |event| {
    ///     log.lock().unwrap().push(*event);
    /// });
    /// breaker.transition_to(State::ForcedOpen);
    /// assert_eq!(
    ///     seen.lock().unwrap()[..],
    ///     [Event::Transition { from: State::Closed, to: State::ForcedOpen }]
    /// );
    /// ```
    pub fn subscribe(
        &self,
        interest: Interest,
        callback: impl Fn(&Event) + Send + Sync + 'static,
    ) -> Subscription {
        self.listeners.subscribe(interest, Arc::new(callback))
    }

    /// A snapshot of the breaker's numbers, in constant time (running totals, no scan).
    /// In `HalfOpen` the call counts are the current trial's; in every other state they
    /// are the window's (in `Open`, the window that opened the breaker).
    pub fn metrics(&self) -> Metrics {
        let word = self.settle();
        let now = self.clock.now();
        let (totals, rates_ready) = if word.state() == State::HalfOpen {
            let half = HalfOpenWord(self.half_open.load(Ordering::Acquire));
            let half = if half.tag() == word.tag() {
                half
            } else {
                HalfOpenWord::fresh(word.tag())
            };
            let totals = half.totals();
            (totals, totals.calls > 0)
        } else {
            let totals = self.window.totals(now);
            (totals, totals.calls >= self.minimum_calls)
        };
        Metrics::new(
            word.state(),
            totals,
            rates_ready,
            self.slow_ns != u64::MAX,
            self.not_permitted.load(Ordering::Relaxed),
            Duration::from_nanos(now.saturating_sub(word.since_ns())),
        )
    }
}
