//! The probe subscriber: a [`TestSubscriber`] handed to the publisher under test, and its
//! [`ManualSubscriber`] handle the test drives (request, cancel, wait for signals).
//!
//! The probe records every signal with the thread it arrived on and when, and flags
//! protocol violations as they happen: a signal before `on_subscribe` or a second
//! `on_subscribe` (rule 1.9), `on_next` beyond the requested demand (1.1), overlapping
//! signals (1.3), any signal after `on_complete` / `on_error` (1.7).

use std::num::NonZeroU64;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::{Error, Subscriber, Subscription, UNBOUNDED};

/// One signal the probe received.
#[derive(Debug, Clone)]
pub enum Signal {
    /// `on_subscribe`.
    Subscribe,
    /// `on_next` (the item itself is in [`ManualSubscriber::items`]).
    Next,
    /// `on_error` with this error.
    Error(Error),
    /// `on_complete`.
    Complete,
}

/// A signal with where and when it arrived.
#[derive(Debug, Clone)]
pub struct Event {
    /// The signal.
    pub signal: Signal,
    /// The thread that delivered it.
    pub thread: ThreadId,
    /// When it arrived.
    pub at: Instant,
}

/// A broken rule the probe saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The rule's number, e.g. `"1.1"`.
    pub rule: &'static str,
    /// What happened.
    pub message: String,
}

#[derive(Debug)]
struct State<T> {
    events: Vec<Event>,
    items: Vec<T>,
    subscription: Option<Subscription>,
    /// Demand requested so far, saturating at [`UNBOUNDED`].
    requested: u64,
    received: u64,
    cancelled: bool,
    terminated: bool,
    violations: Vec<Violation>,
    /// The slowest `request` / `cancel` call the probe made.
    slowest_call: Duration,
}

#[derive(Debug)]
struct Shared<T> {
    state: Mutex<State<T>>,
    /// Woken after every signal and when the subscriber is dropped.
    changed: Notify,
    in_signal: AtomicBool,
    released: AtomicBool,
    request_on_subscribe: u64,
    request_on_next: u64,
    cancel_at: u64,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn violation(&self, rule: &'static str, message: String) {
        self.lock().violations.push(Violation { rule, message });
    }

    /// Records demand before asking for it, so an item racing the request is never
    /// mistaken for one beyond demand.
    fn request(&self, n: u64) {
        let Some(n) = NonZeroU64::new(n) else { return };
        let subscription = {
            let mut state = self.lock();
            state.requested = state.requested.saturating_add(n.get());
            state.subscription.clone()
        };
        let Some(subscription) = subscription else {
            self.violation(
                "1.9",
                "request before on_subscribe delivered a subscription".into(),
            );
            return;
        };
        let started = Instant::now();
        let returned = catch_unwind(AssertUnwindSafe(|| subscription.request(n)));
        self.timed(started);
        if returned.is_err() {
            self.violation("3.16", format!("request({n}) panicked"));
        }
    }

    fn cancel(&self) {
        let subscription = {
            let mut state = self.lock();
            state.cancelled = true;
            state.subscription.clone()
        };
        let Some(subscription) = subscription else {
            return;
        };
        let started = Instant::now();
        let returned = catch_unwind(AssertUnwindSafe(|| subscription.cancel()));
        self.timed(started);
        if returned.is_err() {
            self.violation("3.15", "cancel panicked".into());
        }
    }

    fn timed(&self, started: Instant) {
        let took = started.elapsed();
        let mut state = self.lock();
        state.slowest_call = state.slowest_call.max(took);
    }
}

/// The subscriber half of a probe: give it to the publisher under test.
///
/// Dropping it (the publisher releasing its subscriber, rule 3.13) is visible through
/// [`ManualSubscriber::is_released`].
#[derive(Debug)]
pub struct TestSubscriber<T> {
    shared: Arc<Shared<T>>,
}

/// The test's handle on a probe: request, cancel, and wait for signals.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowbed_reactive::{Flow, Publisher, tck::ManualSubscriber};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let (probe, subscriber) = ManualSubscriber::<u32>::new();
/// Flow::iter([1, 2, 3]).subscribe(subscriber);
/// probe.expect_subscribed(Duration::from_secs(1)).await.unwrap();
/// probe.request(2);
/// probe.expect_items(2, Duration::from_secs(1)).await.unwrap();
/// assert_eq!(probe.items(), [1, 2]);
/// assert!(probe.violations().is_empty());
/// # });
/// ```
#[derive(Debug)]
pub struct ManualSubscriber<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Clone for ManualSubscriber<T> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

/// What the probe does by itself, from inside its signals.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProbeConfig {
    /// Demand requested from inside `on_subscribe` (0: none).
    pub request_on_subscribe: u64,
    /// Demand requested from inside every `on_next` (0: none).
    pub request_on_next: u64,
    /// Cancel from inside the `on_next` that brings the count to this many (0: never).
    pub cancel_at: u64,
}

impl<T> ManualSubscriber<T> {
    /// A probe that requests nothing by itself: the handle, and the subscriber to give
    /// the publisher.
    pub fn new() -> (Self, TestSubscriber<T>) {
        Self::with_config(ProbeConfig::default())
    }

    /// A probe that requests and cancels from inside its signals as `config` says.
    pub fn with_config(config: ProbeConfig) -> (Self, TestSubscriber<T>) {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                events: Vec::new(),
                items: Vec::new(),
                subscription: None,
                requested: 0,
                received: 0,
                cancelled: false,
                terminated: false,
                violations: Vec::new(),
                slowest_call: Duration::ZERO,
            }),
            changed: Notify::new(),
            in_signal: AtomicBool::new(false),
            released: AtomicBool::new(false),
            request_on_subscribe: config.request_on_subscribe,
            request_on_next: config.request_on_next,
            cancel_at: config.cancel_at,
        });
        (
            Self {
                shared: Arc::clone(&shared),
            },
            TestSubscriber { shared },
        )
    }

    /// Asks for `n` more items (`n == 0` does nothing: `Subscription::request` takes a
    /// `NonZeroU64`). The demand is recorded before the request is made.
    pub fn request(&self, n: u64) {
        self.shared.request(n);
    }

    /// Cancels the subscription (recorded; a panic in `cancel` is a rule 3.15 violation).
    pub fn cancel(&self) {
        self.shared.cancel();
    }

    /// The subscription, once `on_subscribe` delivered it.
    pub fn subscription(&self) -> Option<Subscription> {
        self.shared.lock().subscription.clone()
    }

    /// How many `on_next` arrived.
    pub fn received(&self) -> u64 {
        self.shared.lock().received
    }

    /// How much demand the probe requested in all (saturating at `u64::MAX`).
    pub fn requested(&self) -> u64 {
        self.shared.lock().requested
    }

    /// How many signals of any kind arrived.
    pub fn signal_count(&self) -> usize {
        self.shared.lock().events.len()
    }

    /// The items received, in order.
    pub fn items(&self) -> Vec<T>
    where
        T: Clone,
    {
        self.shared.lock().items.clone()
    }

    /// Every signal received, in order, with thread and time.
    pub fn events(&self) -> Vec<Event> {
        self.shared.lock().events.clone()
    }

    /// The rule violations seen so far.
    pub fn violations(&self) -> Vec<Violation> {
        self.shared.lock().violations.clone()
    }

    /// The slowest `request` or `cancel` call the probe made.
    pub fn slowest_call(&self) -> Duration {
        self.shared.lock().slowest_call
    }

    /// Whether `on_complete` or `on_error` arrived.
    pub fn is_terminated(&self) -> bool {
        self.shared.lock().terminated
    }

    /// Whether `on_complete` arrived.
    pub fn is_completed(&self) -> bool {
        self.terminal()
            .is_some_and(|signal| matches!(signal, Signal::Complete))
    }

    /// The error, if `on_error` arrived.
    pub fn error(&self) -> Option<Error> {
        match self.terminal() {
            Some(Signal::Error(error)) => Some(error),
            _ => None,
        }
    }

    /// Whether the publisher dropped the [`TestSubscriber`].
    pub fn is_released(&self) -> bool {
        self.shared.released.load(Ordering::Acquire)
    }

    fn terminal(&self) -> Option<Signal> {
        let state = self.shared.lock();
        state
            .events
            .iter()
            .find(|event| matches!(event.signal, Signal::Error(_) | Signal::Complete))
            .map(|event| event.signal.clone())
    }

    /// Waits until `done` holds (re-checked after every signal), at most `timeout`.
    async fn wait(
        &self,
        timeout: Duration,
        what: &str,
        done: impl Fn(&Self) -> bool,
    ) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if done(self) {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return if done(self) {
                    Ok(())
                } else {
                    Err(format!("no {what} within {timeout:?} ({})", self.summary()))
                };
            }
        }
    }

    /// Waits for `on_subscribe`.
    pub async fn expect_subscribed(&self, timeout: Duration) -> Result<(), String> {
        self.wait(timeout, "on_subscribe", |probe| {
            probe.subscription().is_some()
        })
        .await
    }

    /// Waits until `count` items arrived in all.
    pub async fn expect_items(&self, count: u64, timeout: Duration) -> Result<(), String> {
        let what = format!("{count} items");
        self.wait(timeout, &what, |probe| probe.received() >= count)
            .await
    }

    /// Waits for `on_complete` or `on_error`.
    pub async fn expect_terminated(&self, timeout: Duration) -> Result<(), String> {
        self.wait(timeout, "on_complete or on_error", Self::is_terminated)
            .await
    }

    /// Waits for `on_complete`; an `on_error` instead is an error.
    pub async fn expect_completed(&self, timeout: Duration) -> Result<(), String> {
        self.expect_terminated(timeout).await?;
        match self.error() {
            Some(error) => Err(format!("on_error({error}) instead of on_complete")),
            None => Ok(()),
        }
    }

    /// Waits for `on_error` and returns its error; an `on_complete` instead is an error.
    pub async fn expect_error(&self, timeout: Duration) -> Result<Error, String> {
        self.expect_terminated(timeout).await?;
        self.error()
            .ok_or_else(|| "on_complete instead of on_error".to_owned())
    }

    /// Waits until the publisher dropped the subscriber.
    pub async fn expect_released(&self, timeout: Duration) -> Result<(), String> {
        self.wait(timeout, "release of the subscriber", Self::is_released)
            .await
    }

    /// Waits `period` and fails if any signal arrived meanwhile.
    pub async fn expect_no_signal(&self, period: Duration) -> Result<(), String> {
        let before = self.signal_count();
        tokio::time::sleep(period).await;
        let after = self.signal_count();
        if after == before {
            Ok(())
        } else {
            Err(format!(
                "{} unexpected signal(s) within {period:?} ({})",
                after - before,
                self.summary()
            ))
        }
    }

    /// Waits until no signal arrived for `period`, at most `timeout`; fails if the signals
    /// never stop.
    pub async fn expect_quiet(&self, period: Duration, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let before = self.signal_count();
            tokio::time::sleep(period).await;
            if self.signal_count() == before {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "signals still arriving after {timeout:?} ({})",
                    self.summary()
                ));
            }
        }
    }

    /// The violations as one line each, or `Ok` if there is none.
    pub fn check_violations(&self) -> Result<(), String> {
        let violations = self.violations();
        if violations.is_empty() {
            return Ok(());
        }
        // The first violation of each rule, and how many more of it there were.
        let mut lines: Vec<(&str, &str, usize)> = Vec::new();
        for violation in &violations {
            match lines
                .iter_mut()
                .find(|(rule, _, _)| *rule == violation.rule)
            {
                Some((_, _, more)) => *more += 1,
                None => lines.push((violation.rule, &violation.message, 0)),
            }
        }
        Err(lines
            .iter()
            .map(|(rule, message, more)| match more {
                0 => format!("rule {rule}: {message}"),
                more => format!("rule {rule}: {message} (and {more} more like it)"),
            })
            .collect::<Vec<_>>()
            .join("; "))
    }

    /// A one-line account of what arrived, for failure messages.
    pub fn summary(&self) -> String {
        let state = self.shared.lock();
        let subscribed = state
            .events
            .iter()
            .any(|e| matches!(e.signal, Signal::Subscribe));
        let terminal = state.events.iter().rev().find_map(|e| match &e.signal {
            Signal::Complete => Some("on_complete".to_owned()),
            Signal::Error(error) => Some(format!("on_error({error})")),
            _ => None,
        });
        let requested = match state.requested {
            UNBOUNDED => "unbounded".to_owned(),
            n => n.to_string(),
        };
        format!(
            "subscribed: {subscribed}, requested: {requested}, received: {}, cancelled: {}, terminal: {}",
            state.received,
            state.cancelled,
            terminal.as_deref().unwrap_or("none")
        )
    }
}

impl<T> TestSubscriber<T> {
    /// Enters a signal: flags overlap with another signal (1.3), records the event.
    fn enter(&self, signal: Signal) -> SignalGuard<'_, T> {
        if self.shared.in_signal.swap(true, Ordering::AcqRel) {
            self.shared.violation(
                "1.3",
                format!("{} while another signal was still running", name(&signal)),
            );
        }
        let mut state = self.shared.lock();
        let subscribed = state
            .events
            .iter()
            .any(|e| matches!(e.signal, Signal::Subscribe));
        if state.terminated {
            let message = format!("{} after the terminal signal", name(&signal));
            state.violations.push(Violation {
                rule: "1.7",
                message,
            });
        }
        match &signal {
            Signal::Subscribe if subscribed => state.violations.push(Violation {
                rule: "1.9",
                message: "on_subscribe called twice (rule 2.12)".into(),
            }),
            Signal::Subscribe => {}
            other if !subscribed => {
                let message = format!("{} before on_subscribe", name(other));
                state.violations.push(Violation {
                    rule: "1.9",
                    message,
                });
            }
            _ => {}
        }
        if matches!(signal, Signal::Error(_) | Signal::Complete) {
            state.terminated = true;
        }
        state.events.push(Event {
            signal,
            thread: std::thread::current().id(),
            at: Instant::now(),
        });
        drop(state);
        SignalGuard { probe: self }
    }
}

/// Leaves a signal: clears the overlap flag and wakes waiters, even if the signal panicked.
struct SignalGuard<'a, T> {
    probe: &'a TestSubscriber<T>,
}

impl<T> Drop for SignalGuard<'_, T> {
    fn drop(&mut self) {
        self.probe.shared.in_signal.store(false, Ordering::Release);
        self.probe.shared.changed.notify_waiters();
    }
}

fn name(signal: &Signal) -> &'static str {
    match signal {
        Signal::Subscribe => "on_subscribe",
        Signal::Next => "on_next",
        Signal::Error(_) => "on_error",
        Signal::Complete => "on_complete",
    }
}

impl<T> Subscriber<T> for TestSubscriber<T> {
    fn on_subscribe(&mut self, subscription: Subscription) {
        let _guard = self.enter(Signal::Subscribe);
        {
            let mut state = self.shared.lock();
            if state.subscription.is_some() {
                drop(state);
                // Rule 2.5: a second subscription is cancelled.
                subscription.cancel();
                return;
            }
            state.subscription = Some(subscription);
        }
        self.shared.request(self.shared.request_on_subscribe);
    }

    fn on_next(&mut self, item: T) {
        let _guard = self.enter(Signal::Next);
        let received = {
            let mut state = self.shared.lock();
            state.received += 1;
            state.items.push(item);
            if state.requested != UNBOUNDED && state.received > state.requested {
                let message = format!(
                    "on_next #{} with only {} requested",
                    state.received, state.requested
                );
                state.violations.push(Violation {
                    rule: "1.1",
                    message,
                });
            }
            state.received
        };
        if self.shared.cancel_at != 0 && received == self.shared.cancel_at {
            self.shared.cancel();
        }
        self.shared.request(self.shared.request_on_next);
    }

    fn on_error(&mut self, error: Error) {
        let _guard = self.enter(Signal::Error(error));
    }

    fn on_complete(&mut self) {
        let _guard = self.enter(Signal::Complete);
    }
}

impl<T> Drop for TestSubscriber<T> {
    fn drop(&mut self) {
        self.shared.released.store(true, Ordering::Release);
        self.shared.changed.notify_waiters();
    }
}
