//! Helpers shared by the integration test files (each `mod common;` uses a subset).
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use flowbed_circuitbreaker::{
    CircuitBreaker, ConfigBuilder, Event, Interest, ManualClock, Outcome, Subscription,
};

/// A breaker built from `builder` on a fresh [`ManualClock`] at time zero, and the clock.
///
/// # Panics
///
/// If the configuration does not build.
pub(crate) fn manual(builder: ConfigBuilder) -> (CircuitBreaker<ManualClock>, ManualClock) {
    let clock = ManualClock::new();
    let config = builder.build().expect("test configuration builds");
    (CircuitBreaker::with_clock(config, clock.clone()), clock)
}

pub(crate) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub(crate) fn millis(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Acquires a permit (which must be granted) and records `outcome` on it at once.
pub(crate) fn record(breaker: &CircuitBreaker<ManualClock>, outcome: Outcome) {
    breaker
        .try_acquire()
        .expect("the breaker permits the call")
        .record(outcome);
}

/// Acquires a permit (which must be granted) and records `outcome` as having taken `took`.
pub(crate) fn record_timed(
    breaker: &CircuitBreaker<ManualClock>,
    outcome: Outcome,
    took: Duration,
) {
    breaker
        .try_acquire()
        .expect("the breaker permits the call")
        .record_timed(outcome, took);
}

/// The events a breaker emits, as a subscriber of `interest` sees them.
#[derive(Debug)]
pub(crate) struct EventLog {
    events: Arc<Mutex<Vec<Event>>>,
    subscription: Subscription,
}

impl EventLog {
    pub(crate) fn new<C: flowbed_circuitbreaker::Clock>(
        breaker: &CircuitBreaker<C>,
        interest: Interest,
    ) -> EventLog {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        let subscription = breaker.subscribe(interest, move |event| {
            sink.lock().unwrap().push(*event);
        });
        EventLog {
            events,
            subscription,
        }
    }

    /// The events seen since the last call, oldest first.
    pub(crate) fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.events.lock().unwrap())
    }

    /// Stops listening, keeping what was seen so far readable.
    pub(crate) fn unsubscribe(self) -> Arc<Mutex<Vec<Event>>> {
        drop(self.subscription);
        self.events
    }
}
