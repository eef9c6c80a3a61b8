//! resilience4j's state-machine scenarios (`CircuitBreakerStateMachineTest`, the sliding
//! window and metrics tests), ported to a [`ManualClock`], plus the scenarios flowbed adds:
//! permits that outlive their state, cancellation, events, tokio's paused clock.
//!
//! Each test is named after the behaviour it checks; a comment names the resilience4j
//! test it ports where there is one. Where flowbed deliberately differs from resilience4j
//! (the not-permitted counter is not reset by transitions; `Open` shows the window that
//! opened the breaker, not the failed trial's numbers) the test says so.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::Duration;

use flowbed_circuitbreaker::{
    CallError, CircuitBreaker, Config, ConfigBuilder, Event, Interest, ManualClock, Outcome, State,
    WaitInOpen,
};
use futures::FutureExt;

mod common;

use common::{EventLog, manual, millis, record, record_timed, secs};

/// resilience4j's `CircuitBreakerStateMachineTest` setup: failure and slow-call thresholds
/// of 50 %, 4 half-open probes, calls of 4 s and longer are slow, a 5 s time window (five
/// 1 s buckets) needing 5 calls, 5 s in open, `NumberFormatException` ignored (here: a
/// `ParseIntError`).
fn r4j_config() -> ConfigBuilder {
    Config::builder()
        .failure_rate_threshold(50.0)
        .permitted_calls_in_half_open(4)
        .slow_call_duration(secs(4))
        .slow_call_rate_threshold(50.0)
        .time_window(secs(5), secs(1))
        .minimum_calls(5)
        .wait_in_open(WaitInOpen::Fixed(secs(5)))
        .ignore_error_if(|_: &std::num::ParseIntError| true)
}

/// A count window of `size` calls that needs all of them, 50 % failure threshold.
fn count_config(size: u32) -> ConfigBuilder {
    Config::builder()
        .count_window(size)
        .minimum_calls(size)
        .failure_rate_threshold(50.0)
        .wait_in_open(WaitInOpen::Fixed(secs(5)))
}

fn parse_error() -> std::num::ParseIntError {
    "x".parse::<i32>().unwrap_err()
}

/// Asserts the numbers resilience4j's `assertCircuitBreakerMetricsEqualTo` checks.
#[track_caller]
fn assert_metrics(
    breaker: &CircuitBreaker<ManualClock>,
    failure_rate: Option<f32>,
    successful: u64,
    calls: u64,
    failed: u64,
    not_permitted: u64,
) {
    let m = breaker.metrics();
    assert_eq!(
        (
            m.failure_rate,
            m.successful,
            m.calls,
            m.failed,
            m.not_permitted
        ),
        (failure_rate, successful, calls, failed, not_permitted),
        "(failure_rate, successful, calls, failed, not_permitted) of {m:?}"
    );
}

/// Moves a fresh breaker to `HalfOpen` by hand, as resilience4j's tests do.
fn half_open(breaker: &CircuitBreaker<ManualClock>) {
    breaker.transition_to(State::Open);
    breaker.transition_to(State::HalfOpen);
    assert_eq!(breaker.state(), State::HalfOpen);
}

// ---------------------------------------------------------------------------------------
// Closed: opening on the failure rate, minimum calls, count window
// ---------------------------------------------------------------------------------------

// resilience4j: shouldOpenAfterFailureRateThresholdExceeded
#[test]
fn opens_when_failure_rate_reaches_threshold() {
    let (breaker, _clock) = manual(r4j_config());
    assert_eq!(breaker.state(), State::Closed);
    assert_metrics(&breaker, None, 0, 0, 0, 0);

    for n in 1..=3 {
        record_timed(&breaker, Outcome::Failure, Duration::ZERO);
        assert_eq!(breaker.state(), State::Closed);
        assert_metrics(&breaker, None, 0, n, n, 0);
    }
    record_timed(&breaker, Outcome::Success, Duration::ZERO);
    assert_eq!(breaker.state(), State::Closed);
    assert_metrics(&breaker, None, 1, 4, 3, 0);

    // The fifth call reaches minimum_calls: 3 of 5 failed, 60 % >= 50 %.
    record_timed(&breaker, Outcome::Success, Duration::ZERO);
    assert_eq!(breaker.state(), State::Open);
    assert_metrics(&breaker, Some(60.0), 2, 5, 3, 0);

    let rejected = breaker.try_acquire().unwrap_err();
    assert_eq!(rejected.state(), State::Open);
    assert_metrics(&breaker, Some(60.0), 2, 5, 3, 1);
}

// resilience4j: CircuitBreakerStateMachineTest (failure rate exactly at the threshold opens)
#[test]
fn opens_when_failure_rate_equals_threshold() {
    let (breaker, _clock) = manual(count_config(4));
    record(&breaker, Outcome::Failure);
    record(&breaker, Outcome::Success);
    record(&breaker, Outcome::Success);
    assert_eq!(breaker.state(), State::Closed);
    record(&breaker, Outcome::Failure);
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(breaker.metrics().failure_rate, Some(50.0));
}

#[test]
fn stays_closed_while_failure_rate_is_below_threshold() {
    let (breaker, _clock) = manual(count_config(4).failure_rate_threshold(60.0));
    for outcome in [Outcome::Failure, Outcome::Success].repeat(10) {
        record(&breaker, outcome);
        assert_eq!(breaker.state(), State::Closed);
    }
    assert_eq!(breaker.metrics().failure_rate, Some(50.0));
}

// resilience4j: CircuitBreakerMetricsTest (minimum number of calls not reached)
#[test]
fn stays_closed_until_minimum_calls_are_recorded() {
    let (breaker, _clock) = manual(Config::builder().count_window(10).minimum_calls(5));
    for n in 1..=4 {
        record(&breaker, Outcome::Failure);
        assert_eq!(breaker.state(), State::Closed, "after {n} failures");
        assert_eq!(breaker.metrics().failure_rate, None);
    }
    record(&breaker, Outcome::Failure);
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(breaker.metrics().failure_rate, Some(100.0));
}

// resilience4j: minimumNumberOfCalls larger than a count-based window is capped at its size
#[test]
fn count_window_smaller_than_minimum_calls_needs_only_to_be_full() {
    let (breaker, _clock) = manual(Config::builder().count_window(3).minimum_calls(100));
    record(&breaker, Outcome::Failure);
    record(&breaker, Outcome::Failure);
    assert_eq!(breaker.state(), State::Closed);
    record(&breaker, Outcome::Success);
    assert_eq!(breaker.state(), State::Open);
}

// resilience4j: FixedSizeSlidingWindowMetricsTest.checkFailureRateAfterWindowIsFull / slide
#[test]
fn count_window_forgets_its_oldest_outcomes() {
    let (breaker, _clock) = manual(count_config(4).failure_rate_threshold(75.0));
    record(&breaker, Outcome::Failure);
    record(&breaker, Outcome::Failure);
    record(&breaker, Outcome::Success);
    record(&breaker, Outcome::Success);
    assert_eq!((breaker.metrics().calls, breaker.metrics().failed), (4, 2));
    // Each new call pushes the oldest out: the two failures leave one by one.
    record(&breaker, Outcome::Success);
    assert_eq!((breaker.metrics().calls, breaker.metrics().failed), (4, 1));
    record(&breaker, Outcome::Success);
    assert_eq!((breaker.metrics().calls, breaker.metrics().failed), (4, 0));
    // Three failures in a window of four: 75 % opens; the first successes already left.
    record(&breaker, Outcome::Failure);
    record(&breaker, Outcome::Failure);
    assert_eq!(breaker.state(), State::Closed);
    record(&breaker, Outcome::Failure);
    assert_eq!(breaker.state(), State::Open);
    assert_eq!((breaker.metrics().calls, breaker.metrics().failed), (4, 3));
}

// ---------------------------------------------------------------------------------------
// Time window
// ---------------------------------------------------------------------------------------

// resilience4j: SlidingTimeWindowMetricsTest.checkThatBucketsAreResetAfterWindowDuration
#[test]
fn time_window_buckets_leave_whole_as_time_passes() {
    let (breaker, clock) = manual(
        Config::builder()
            .time_window(secs(3), secs(1))
            .minimum_calls(10),
    );
    // Two calls in the first bucket ([0 s, 1 s)), one in the second.
    record(&breaker, Outcome::Failure);
    clock.advance(millis(900));
    record(&breaker, Outcome::Failure);
    clock.advance(millis(600));
    record(&breaker, Outcome::Success);
    assert_eq!((breaker.metrics().calls, breaker.metrics().failed), (3, 2));

    // At 2.999 s the window still spans all three buckets.
    clock.advance_to(Duration::from_nanos(2_999_999_999));
    assert_eq!((breaker.metrics().calls, breaker.metrics().failed), (3, 2));
    // At 3 s the first bucket leaves, both of its calls at once.
    clock.advance_to(secs(3));
    assert_eq!((breaker.metrics().calls, breaker.metrics().failed), (1, 0));
    // At 4 s the second one.
    clock.advance_to(secs(4));
    assert_eq!(breaker.metrics().calls, 0);
    assert_eq!(breaker.state(), State::Closed);
}

// resilience4j: shouldOpenAfterFailureRateThresholdExceeded (TIME_BASED, calls spread out)
#[test]
fn time_window_opens_on_failures_across_buckets() {
    let (breaker, clock) = manual(r4j_config());
    for outcome in [
        Outcome::Failure,
        Outcome::Success,
        Outcome::Failure,
        Outcome::Success,
    ] {
        record_timed(&breaker, outcome, Duration::ZERO);
        clock.advance(secs(1));
    }
    assert_eq!(breaker.state(), State::Closed);
    // t = 4 s: the window (0 s..5 s) holds all five.
    record_timed(&breaker, Outcome::Failure, Duration::ZERO);
    assert_eq!(breaker.state(), State::Open);
    assert_metrics(&breaker, Some(60.0), 2, 5, 3, 0);
}

#[test]
fn time_window_old_failures_expire_before_they_can_open() {
    let (breaker, clock) = manual(r4j_config());
    for _ in 0..4 {
        record_timed(&breaker, Outcome::Failure, Duration::ZERO);
    }
    clock.advance(secs(5));
    // The four failures have left: the fifth call is alone in the window.
    record_timed(&breaker, Outcome::Failure, Duration::ZERO);
    assert_eq!(breaker.state(), State::Closed);
    assert_metrics(&breaker, None, 0, 1, 1, 0);
}

#[test]
fn time_window_forgets_everything_after_a_long_idle_period() {
    // 1 ms buckets: 40 s of silence are 40 000 bucket widths.
    let (breaker, clock) = manual(
        Config::builder()
            .time_window(millis(5), millis(1))
            .minimum_calls(10),
    );
    for _ in 0..3 {
        record(&breaker, Outcome::Failure);
    }
    assert_eq!(breaker.metrics().calls, 3);
    clock.advance(secs(40));
    assert_eq!(
        breaker.metrics().calls,
        0,
        "calls from 40 s ago are still in a 5 ms window"
    );
    record(&breaker, Outcome::Success);
    assert_eq!(
        (breaker.metrics().calls, breaker.metrics().failed),
        (1, 0),
        "a fresh call after the idle period is counted"
    );
}

// ---------------------------------------------------------------------------------------
// Slow calls
// ---------------------------------------------------------------------------------------

// resilience4j: shouldOpenAfterSlowCallRateThresholdExceeded
#[test]
fn opens_when_slow_call_rate_reaches_threshold() {
    let (breaker, _clock) = manual(r4j_config());
    let calls = [
        (Outcome::Failure, secs(5)),
        (Outcome::Success, secs(5)),
        (Outcome::Failure, millis(100)),
        (Outcome::Success, millis(100)),
    ];
    for (outcome, took) in calls {
        record_timed(&breaker, outcome, took);
        assert_eq!(breaker.state(), State::Closed);
    }
    // 3 of 5 slow (60 %), 2 of 5 failed (40 %): the slow-call rate opens the breaker.
    breaker.try_acquire().unwrap().record_success(secs(5));
    assert_eq!(breaker.state(), State::Open);
    let m = breaker.metrics();
    assert_eq!(m.calls, 5);
    assert_eq!(m.slow_successful + m.slow_failed, 3);
    assert_eq!(m.slow_call_rate, Some(60.0));
    assert_eq!(m.failure_rate, Some(40.0));
}

// resilience4j: CircuitBreakerMetricsTest (slow failures are counted as failed and as slow)
#[test]
fn slow_failures_count_in_both_rates() {
    let (breaker, _clock) = manual(
        Config::builder()
            .count_window(10)
            .minimum_calls(4)
            .failure_rate_threshold(100.0)
            .slow_call_duration(secs(1))
            .slow_call_rate_threshold(100.0),
    );
    breaker.try_acquire().unwrap().record_failure(secs(2));
    breaker.try_acquire().unwrap().record_failure(millis(10));
    breaker.try_acquire().unwrap().record_success(secs(3));
    breaker.try_acquire().unwrap().record_success(millis(10));
    let m = breaker.metrics();
    assert_eq!(m.state, State::Closed);
    assert_eq!((m.calls, m.successful, m.failed), (4, 2, 2));
    assert_eq!((m.slow_successful, m.slow_failed), (1, 1));
    assert_eq!(m.failure_rate, Some(50.0));
    assert_eq!(m.slow_call_rate, Some(50.0));
}

#[test]
fn call_lasting_exactly_slow_call_duration_is_slow() {
    let (breaker, _clock) = manual(
        Config::builder()
            .count_window(2)
            .slow_call_duration(millis(100))
            .slow_call_rate_threshold(50.0),
    );
    breaker.try_acquire().unwrap().record_success(millis(99));
    assert_eq!(breaker.metrics().slow_successful, 0);
    breaker.try_acquire().unwrap().record_success(millis(100));
    assert_eq!(breaker.metrics().slow_successful, 1);
    assert_eq!(breaker.state(), State::Open);
}

#[test]
fn permit_times_the_call_from_its_grant_on_the_breakers_clock() {
    let (breaker, clock) = manual(
        Config::builder()
            .count_window(10)
            .slow_call_duration(millis(100)),
    );
    let log = EventLog::new(&breaker, Interest::All);
    let permit = breaker.try_acquire().unwrap();
    clock.advance(millis(150));
    permit.record(Outcome::Success);
    let permit = breaker.try_acquire().unwrap();
    clock.advance(millis(20));
    permit.record(Outcome::Failure);
    assert_eq!(
        log.take(),
        [
            Event::Call {
                outcome: Outcome::Success,
                slow: true,
                took: Some(millis(150)),
            },
            Event::Call {
                outcome: Outcome::Failure,
                slow: false,
                took: Some(millis(20)),
            },
        ]
    );
    let m = breaker.metrics();
    assert_eq!((m.slow_successful, m.slow_failed, m.failed), (1, 0, 1));
}

#[test]
fn calls_are_not_timed_without_slow_call_duration() {
    let (breaker, clock) = manual(Config::builder().count_window(2).minimum_calls(2));
    let log = EventLog::new(&breaker, Interest::All);
    let permit = breaker.try_acquire().unwrap();
    clock.advance(secs(3600));
    permit.record(Outcome::Success);
    breaker.try_acquire().unwrap().record_success(secs(3600));
    let m = breaker.metrics();
    assert_eq!((m.slow_successful, m.slow_call_rate), (0, None));
    assert_eq!(m.state, State::Closed);
    assert_eq!(
        log.take(),
        [
            Event::Call {
                outcome: Outcome::Success,
                slow: false,
                took: None,
            },
            Event::Call {
                outcome: Outcome::Success,
                slow: false,
                took: Some(secs(3600)),
            },
        ]
    );
}

// ---------------------------------------------------------------------------------------
// Open: waiting, retry-after, backoff
// ---------------------------------------------------------------------------------------

// resilience4j: shouldTransitionToHalfOpenAfterWaitDuration
#[test]
fn open_rejects_until_wait_has_passed_then_half_opens() {
    let (breaker, clock) = manual(r4j_config());
    breaker.transition_to(State::Open);
    assert_metrics(&breaker, None, 0, 0, 0, 0);
    assert_eq!(breaker.state(), State::Open);
    let rejected = breaker.try_acquire().unwrap_err();
    assert_eq!(
        (rejected.state(), rejected.retry_after()),
        (State::Open, Some(secs(5)))
    );

    clock.advance(secs(3));
    assert_eq!(breaker.state(), State::Open);
    let rejected = breaker.try_acquire().unwrap_err();
    assert_eq!(rejected.retry_after(), Some(secs(2)));
    assert_metrics(&breaker, None, 0, 0, 0, 2);

    clock.advance(millis(1999));
    assert_eq!(
        breaker.try_acquire().unwrap_err().retry_after(),
        Some(millis(1))
    );
    clock.advance(millis(1));
    let probe = breaker.try_acquire().expect("the wait is over");
    assert_eq!(probe.state(), State::HalfOpen);
    assert_eq!(breaker.state(), State::HalfOpen);
    // flowbed keeps counting refusals across transitions (resilience4j resets them).
    assert_metrics(&breaker, None, 0, 0, 0, 3);
    probe.release();
}

#[test]
fn state_reports_half_open_once_the_wait_is_over_without_a_call() {
    let (breaker, clock) = manual(count_config(2));
    record(&breaker, Outcome::Failure);
    record(&breaker, Outcome::Failure);
    assert_eq!(breaker.state(), State::Open);
    clock.advance(secs(5));
    assert_eq!(breaker.state(), State::HalfOpen);
    assert_eq!(breaker.metrics().state, State::HalfOpen);
}

// resilience4j: shouldTransitionToHalfOpenAfterWaitInterval (exponential backoff, ×1.5)
#[test]
fn exponential_wait_grows_with_failed_trials_and_restarts_after_closing() {
    let (breaker, clock) = manual(
        count_config(2)
            .permitted_calls_in_half_open(1)
            .wait_in_open(WaitInOpen::Exponential {
                initial: secs(5),
                multiplier: 1.5,
                max: secs(20),
            }),
    );
    record(&breaker, Outcome::Failure);
    record(&breaker, Outcome::Failure);
    let waits = [
        millis(5_000),
        millis(7_500),
        millis(11_250),
        millis(16_875),
        millis(20_000), // 25.3 s, capped
        millis(20_000),
    ];
    for (trial, wait) in waits.into_iter().enumerate() {
        assert_eq!(breaker.state(), State::Open);
        assert_eq!(
            breaker.try_acquire().unwrap_err().retry_after(),
            Some(wait),
            "wait after {trial} failed trials"
        );
        clock.advance(wait - millis(1));
        assert_eq!(breaker.state(), State::Open, "1 ms before the wait is over");
        clock.advance(millis(1));
        // A failed probe: the trial fails and the next wait is longer.
        record(&breaker, Outcome::Failure);
    }
    clock.advance(secs(20));
    record(&breaker, Outcome::Success);
    assert_eq!(breaker.state(), State::Closed);
    record(&breaker, Outcome::Failure);
    record(&breaker, Outcome::Failure);
    assert_eq!(
        breaker.try_acquire().unwrap_err().retry_after(),
        Some(secs(5)),
        "a successful trial starts the backoff over"
    );
}

#[test]
fn fixed_wait_does_not_grow_with_failed_trials() {
    let (breaker, clock) = manual(count_config(2).permitted_calls_in_half_open(1));
    record(&breaker, Outcome::Failure);
    record(&breaker, Outcome::Failure);
    for _ in 0..3 {
        assert_eq!(
            breaker.try_acquire().unwrap_err().retry_after(),
            Some(secs(5))
        );
        clock.advance(secs(5));
        record(&breaker, Outcome::Failure);
    }
}

// ---------------------------------------------------------------------------------------
// Half-open: probes, their outcomes, cancellation, max wait
// ---------------------------------------------------------------------------------------

// resilience4j: shouldOnlyPermitFourCallsInHalfOpenState
#[test]
fn half_open_permits_only_the_configured_probes_per_trial() {
    let (breaker, _clock) = manual(r4j_config());
    half_open(&breaker);
    let probes: Vec<_> = (0..4).map(|_| breaker.try_acquire().unwrap()).collect();
    for _ in 0..2 {
        let rejected = breaker.try_acquire().unwrap_err();
        assert_eq!(
            (rejected.state(), rejected.retry_after()),
            (State::HalfOpen, None)
        );
    }
    drop(probes);
    // A new trial has four fresh slots.
    breaker.transition_to(State::Open);
    breaker.transition_to(State::HalfOpen);
    let probes: Vec<_> = (0..4).map(|_| breaker.try_acquire().unwrap()).collect();
    assert!(breaker.try_acquire().is_err());
    assert_eq!(breaker.metrics().not_permitted, 3);
    drop(probes);
}

// resilience4j: shouldThrowCallNotPermittedExceptionWhenNotFurtherTestCallsArePermitted
#[test]
fn half_open_rejects_extra_probes_while_the_slots_are_taken() {
    let (breaker, _clock) = manual(r4j_config());
    half_open(&breaker);
    let mut probes: Vec<_> = (0..4).map(|_| breaker.try_acquire().unwrap()).collect();
    assert!(matches!(
        breaker.call(|| Ok::<_, ()>(())),
        Err(CallError::Rejected(r)) if r.state() == State::HalfOpen
    ));
    // A probe that finished keeps its slot: the trial has had its four probes' worth.
    probes.pop().unwrap().record(Outcome::Success);
    assert!(breaker.try_acquire().is_err());
    assert_eq!(breaker.metrics().not_permitted, 2);
    assert_eq!(breaker.state(), State::HalfOpen);
}

// resilience4j: shouldIncreaseCounterOnReleasePermission
#[test]
fn released_permit_gives_its_half_open_slot_back() {
    let (breaker, _clock) = manual(r4j_config());
    half_open(&breaker);
    let mut probes: Vec<_> = (0..4).map(|_| breaker.try_acquire().unwrap()).collect();
    assert!(breaker.try_acquire().is_err());
    assert!(breaker.try_acquire().is_err());
    probes.pop().unwrap().release();
    probes.push(
        breaker
            .try_acquire()
            .expect("the released slot is free again"),
    );
    assert!(breaker.try_acquire().is_err());
    // Dropping works like release.
    drop(probes.pop());
    assert!(breaker.try_acquire().is_ok());
}

#[test]
fn cancelled_call_async_gives_its_half_open_slot_back() {
    let (breaker, _clock) = manual(r4j_config().permitted_calls_in_half_open(1));
    half_open(&breaker);
    {
        // The call takes the only slot and waits forever on its downstream.
        let mut call = pin!(breaker.call_async(futures::future::pending::<Result<(), ()>>()));
        assert!(call.as_mut().now_or_never().is_none());
        let rejected = breaker.try_acquire().unwrap_err();
        assert_eq!(rejected.state(), State::HalfOpen);
        // The caller gives up (a timeout, a select!): the future is dropped here.
    }
    let probe = breaker
        .try_acquire()
        .expect("the cancelled call's slot is free");
    probe.record(Outcome::Success);
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(breaker.metrics().calls, 0);
}

#[test]
fn cancelled_call_async_in_closed_records_nothing() {
    let (breaker, _clock) = manual(count_config(1));
    {
        let mut call = pin!(breaker.call_async(futures::future::pending::<Result<(), ()>>()));
        let waker = Waker::noop();
        assert!(
            call.as_mut()
                .poll(&mut Context::from_waker(waker))
                .is_pending()
        );
    }
    assert_eq!(breaker.metrics().calls, 0);
    assert_eq!(breaker.state(), State::Closed);
}

// resilience4j: shouldTransitionBackToClosedStateWhenFailureIsBelowThreshold
#[test]
fn half_open_closes_when_the_probes_failure_rate_is_below_threshold() {
    let (breaker, _clock) = manual(r4j_config());
    half_open(&breaker);
    assert_metrics(&breaker, None, 0, 0, 0, 0);
    record_timed(&breaker, Outcome::Failure, Duration::ZERO);
    assert_metrics(&breaker, Some(100.0), 0, 1, 1, 0);
    for n in 1..=2 {
        record_timed(&breaker, Outcome::Success, Duration::ZERO);
        assert_eq!(breaker.state(), State::HalfOpen);
        assert_metrics(&breaker, Some(100.0 / (n + 1) as f32), n, n + 1, 1, 0);
    }
    // The fourth probe decides: 1 of 4 failed, 25 % < 50 %.
    record_timed(&breaker, Outcome::Success, Duration::ZERO);
    assert_eq!(breaker.state(), State::Closed);
    assert_metrics(&breaker, None, 0, 0, 0, 0);
    record_timed(&breaker, Outcome::Success, Duration::ZERO);
    assert_metrics(&breaker, None, 1, 1, 0, 0);
}

// resilience4j: shouldTransitionBackToOpenStateWhenFailureRateIsAboveThreshold
#[test]
fn half_open_reopens_when_the_probes_failure_rate_reaches_threshold() {
    let (breaker, clock) = manual(r4j_config());
    half_open(&breaker);
    for outcome in [Outcome::Failure, Outcome::Failure, Outcome::Success] {
        record_timed(&breaker, outcome, Duration::ZERO);
        assert_eq!(breaker.state(), State::HalfOpen);
    }
    assert_metrics(&breaker, Some((200.0_f64 / 3.0) as f32), 1, 3, 2, 0);
    record_timed(&breaker, Outcome::Failure, Duration::ZERO);
    assert_eq!(breaker.state(), State::Open);
    // flowbed's Open shows the window, not the failed trial (resilience4j shows 75 %).
    assert_metrics(&breaker, None, 0, 0, 0, 0);
    assert_eq!(
        breaker.try_acquire().unwrap_err().retry_after(),
        Some(secs(5))
    );
    clock.advance(secs(5));
    assert_eq!(breaker.state(), State::HalfOpen);
}

// resilience4j: shouldTransitionBackToOpenStateWhenSlowCallRateIsAboveThreshold
#[test]
fn half_open_reopens_when_the_probes_are_slow() {
    let (breaker, _clock) = manual(r4j_config());
    half_open(&breaker);
    for _ in 0..3 {
        breaker.try_acquire().unwrap().record_success(secs(5));
    }
    let m = breaker.metrics();
    assert_eq!(
        (m.slow_successful, m.slow_call_rate, m.failure_rate),
        (3, Some(100.0), Some(0.0))
    );
    breaker.try_acquire().unwrap().record_success(secs(1));
    assert_eq!(breaker.state(), State::Open);
}

#[test]
fn half_open_decides_only_when_the_last_probe_is_in() {
    let (breaker, _clock) = manual(r4j_config());
    half_open(&breaker);
    let probes: Vec<_> = (0..4).map(|_| breaker.try_acquire().unwrap()).collect();
    // Three failures of four probes: already over the threshold, but the trial waits
    // for its last probe.
    let mut probes = probes.into_iter();
    for probe in probes.by_ref().take(3) {
        probe.record(Outcome::Failure);
        assert_eq!(breaker.state(), State::HalfOpen);
    }
    probes.next().unwrap().record(Outcome::Success);
    assert_eq!(breaker.state(), State::Open);
}

// resilience4j: shouldReleasePermissionWhenExceptionIgnored
#[test]
fn ignored_probe_gives_its_slot_back_and_does_not_count() {
    let (breaker, _clock) = manual(r4j_config());
    half_open(&breaker);
    for n in 1..=3 {
        record_timed(&breaker, Outcome::Success, Duration::ZERO);
        assert_eq!(breaker.state(), State::HalfOpen);
        assert_metrics(&breaker, Some(0.0), n, n, 0, 0);
    }
    let ignored = breaker.call(|| Err::<(), _>(parse_error()));
    assert!(matches!(ignored, Err(CallError::Failed(_))));
    assert_eq!(breaker.state(), State::HalfOpen);
    assert_metrics(&breaker, Some(0.0), 3, 3, 0, 0);
    // The fourth slot is free again: a failure there makes 25 %, and the breaker closes.
    let failed = breaker.call(|| Err::<(), _>(std::io::Error::other("boom")));
    assert!(matches!(failed, Err(CallError::Failed(_))));
    assert_eq!(breaker.state(), State::Closed);
    assert_metrics(&breaker, None, 0, 0, 0, 0);
}

// resilience4j: shouldIgnoreExceptionsAndThenTransitionToClosed
#[test]
fn half_open_ignores_ignored_errors_then_closes_on_successes() {
    let (breaker, _clock) = manual(r4j_config());
    half_open(&breaker);
    for _ in 0..4 {
        let _ = breaker.call(|| Err::<(), _>(parse_error()));
        assert_eq!(breaker.state(), State::HalfOpen);
    }
    assert_metrics(&breaker, None, 0, 0, 0, 0);
    for _ in 0..3 {
        record_timed(&breaker, Outcome::Success, Duration::ZERO);
        assert_eq!(breaker.state(), State::HalfOpen);
    }
    assert_metrics(&breaker, Some(0.0), 3, 3, 0, 0);
    record_timed(&breaker, Outcome::Success, Duration::ZERO);
    assert_eq!(breaker.state(), State::Closed);
    assert_metrics(&breaker, None, 0, 0, 0, 0);
}

// resilience4j: shouldTransitionToOpenStateAfterMaxWaitDurationInHalfOpenState
#[test]
fn half_open_reopens_after_max_wait_in_half_open() {
    let (breaker, clock) = manual(
        count_config(2)
            .permitted_calls_in_half_open(2)
            .max_wait_in_half_open(secs(10))
            .wait_in_open(WaitInOpen::Exponential {
                initial: secs(5),
                multiplier: 2.0,
                max: secs(60),
            }),
    );
    record(&breaker, Outcome::Failure);
    record(&breaker, Outcome::Failure);
    clock.advance(secs(5));
    assert_eq!(breaker.state(), State::HalfOpen);
    let log = EventLog::new(&breaker, Interest::Transitions);
    record(&breaker, Outcome::Success);
    clock.advance(millis(9_999));
    assert_eq!(breaker.state(), State::HalfOpen);
    clock.advance(millis(1));
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(
        log.take(),
        [Event::Transition {
            from: State::HalfOpen,
            to: State::Open
        }]
    );
    // The trial that ran out of time counts as failed: the wait doubles.
    assert_eq!(
        breaker.try_acquire().unwrap_err().retry_after(),
        Some(secs(10))
    );
}

#[test]
fn probe_finishing_after_max_wait_in_half_open_does_not_close_the_breaker() {
    let (breaker, clock) = manual(
        count_config(2)
            .permitted_calls_in_half_open(1)
            .max_wait_in_half_open(secs(10)),
    );
    half_open(&breaker);
    let probe = breaker.try_acquire().unwrap();
    clock.advance(secs(11));
    // Nobody looked at the breaker during the 11 s; the trial ran out at 10 s all the same.
    probe.record(Outcome::Success);
    assert_eq!(
        breaker.state(),
        State::Open,
        "a trial past max_wait_in_half_open was decided by a probe that finished after it"
    );
}

#[test]
fn probe_of_an_earlier_trial_does_not_count_in_the_next_one() {
    let (breaker, _clock) = manual(r4j_config().permitted_calls_in_half_open(2));
    half_open(&breaker);
    let old = breaker.try_acquire().unwrap();
    breaker.transition_to(State::Open);
    breaker.transition_to(State::HalfOpen);
    old.record(Outcome::Failure);
    assert_eq!(breaker.metrics().calls, 0);
    // Both slots of the new trial are free.
    let a = breaker.try_acquire().unwrap();
    let b = breaker.try_acquire().unwrap();
    a.record(Outcome::Success);
    b.record(Outcome::Success);
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn probes_of_an_abandoned_trial_do_not_touch_the_closed_window() {
    let (breaker, _clock) = manual(
        Config::builder()
            .count_window(10)
            .minimum_calls(10)
            .permitted_calls_in_half_open(2),
    );
    half_open(&breaker);
    let probes = [
        breaker.try_acquire().unwrap(),
        breaker.try_acquire().unwrap(),
    ];
    // An operator closes the breaker by hand while the trial's probes are in flight.
    breaker.transition_to(State::Closed);
    record(&breaker, Outcome::Failure);
    record(&breaker, Outcome::Success);
    assert_eq!(breaker.metrics().calls, 2);
    for probe in probes {
        probe.record(Outcome::Success);
    }
    let m = breaker.metrics();
    assert_eq!(m.state, State::Closed);
    assert_eq!(
        (m.calls, m.failed),
        (2, 1),
        "the stale trial's end emptied the window of the current closed period"
    );
}

// ---------------------------------------------------------------------------------------
// Stale outcomes: a permit counts only in the period it was granted in
// ---------------------------------------------------------------------------------------

#[test]
fn outcome_of_a_permit_from_before_the_breaker_opened_is_discarded() {
    let (breaker, _clock) = manual(count_config(2));
    let late = breaker.try_acquire().unwrap();
    assert_eq!(late.state(), State::Closed);
    record(&breaker, Outcome::Failure);
    record(&breaker, Outcome::Failure);
    assert_eq!(breaker.state(), State::Open);
    late.record(Outcome::Success);
    let m = breaker.metrics();
    assert_eq!(
        (m.state, m.calls, m.failed, m.successful),
        (State::Open, 2, 2, 0)
    );
}

#[test]
fn outcome_of_a_permit_from_before_a_reset_is_discarded() {
    let (breaker, _clock) = manual(count_config(2));
    let late = breaker.try_acquire().unwrap();
    breaker.reset();
    late.record(Outcome::Failure);
    assert_eq!(breaker.metrics().calls, 0);
    record(&breaker, Outcome::Failure);
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn outcome_of_a_closed_permit_after_a_full_open_half_open_closed_cycle_is_discarded() {
    let (breaker, clock) = manual(count_config(2).permitted_calls_in_half_open(1));
    let late = breaker.try_acquire().unwrap();
    record(&breaker, Outcome::Failure);
    record(&breaker, Outcome::Failure);
    clock.advance(secs(5));
    record(&breaker, Outcome::Success);
    assert_eq!(breaker.state(), State::Closed);
    late.record(Outcome::Failure);
    assert_eq!(breaker.metrics().calls, 0);
}

// ---------------------------------------------------------------------------------------
// Manual states: Disabled, ForcedOpen, MetricsOnly, transition_to
// ---------------------------------------------------------------------------------------

// resilience4j: shouldDisableCircuitBreaker
#[test]
fn disabled_permits_every_call_and_records_nothing() {
    let (breaker, clock) = manual(r4j_config());
    breaker.transition_to(State::Disabled);
    assert_eq!(breaker.state(), State::Disabled);
    assert_metrics(&breaker, None, 0, 0, 0, 0);
    let log = EventLog::new(&breaker, Interest::All);
    record_timed(&breaker, Outcome::Success, Duration::ZERO);
    for _ in 0..4 {
        let permit = breaker.try_acquire().unwrap();
        assert_eq!(permit.state(), State::Disabled);
        clock.advance(secs(10));
        permit.record(Outcome::Failure);
    }
    assert_eq!(
        breaker.call(|| Err::<(), _>("boom")),
        Err(CallError::Failed("boom"))
    );
    assert_eq!(breaker.state(), State::Disabled);
    assert_metrics(&breaker, None, 0, 0, 0, 0);
    assert_eq!(log.take(), [], "a disabled breaker emits no call events");
}

// resilience4j: shouldForceOpenCircuitBreaker
#[test]
fn forced_open_rejects_every_call_and_never_half_opens() {
    let (breaker, clock) = manual(r4j_config());
    breaker.transition_to(State::ForcedOpen);
    assert_eq!(breaker.state(), State::ForcedOpen);
    let rejected = breaker.try_acquire().unwrap_err();
    assert_eq!(
        (rejected.state(), rejected.retry_after()),
        (State::ForcedOpen, None)
    );
    clock.advance(secs(6));
    assert!(breaker.try_acquire().is_err());
    assert_eq!(breaker.state(), State::ForcedOpen);
    assert_metrics(&breaker, None, 0, 0, 0, 2);
}

// resilience4j: shouldRecordMetricsInMetricsOnlyState
#[test]
fn metrics_only_records_every_call_but_never_opens() {
    let (breaker, _clock) = manual(r4j_config());
    breaker.transition_to(State::MetricsOnly);
    assert_eq!(breaker.state(), State::MetricsOnly);
    assert_metrics(&breaker, None, 0, 0, 0, 0);
    let log = EventLog::new(&breaker, Interest::All);
    for n in 1..=3 {
        record_timed(&breaker, Outcome::Failure, Duration::ZERO);
        assert_eq!(breaker.state(), State::MetricsOnly);
        assert_metrics(&breaker, None, 0, n, n, 0);
    }
    record_timed(&breaker, Outcome::Success, Duration::ZERO);
    assert_metrics(&breaker, None, 1, 4, 3, 0);
    record_timed(&breaker, Outcome::Success, Duration::ZERO);
    assert_eq!(breaker.state(), State::MetricsOnly);
    assert_metrics(&breaker, Some(60.0), 2, 5, 3, 0);
    record_timed(&breaker, Outcome::Failure, Duration::ZERO);
    assert_eq!(breaker.state(), State::MetricsOnly);
    let events = log.take();
    assert_eq!(events.len(), 6);
    assert!(
        events.iter().all(|e| matches!(e, Event::Call { .. })),
        "calls only, no transition: {events:?}"
    );
}

// resilience4j: shouldResetMetricsAfterMetricsOnlyStateTransition
#[test]
fn entering_metrics_only_empties_the_window() {
    let (breaker, _clock) = manual(r4j_config());
    record(&breaker, Outcome::Success);
    record(&breaker, Outcome::Success);
    assert_eq!(breaker.metrics().successful, 2);
    breaker.transition_to(State::MetricsOnly);
    assert_eq!(breaker.state(), State::MetricsOnly);
    assert_eq!(breaker.metrics().successful, 0);
}

#[test]
fn entering_closed_by_hand_empties_the_window_and_keeps_it_otherwise() {
    let (breaker, _clock) = manual(count_config(10));
    record(&breaker, Outcome::Failure);
    for state in [State::ForcedOpen, State::Disabled, State::Open] {
        breaker.transition_to(state);
        assert_eq!(
            breaker.metrics().calls,
            1,
            "entering {state} keeps the window"
        );
    }
    breaker.transition_to(State::Closed);
    assert_eq!(breaker.metrics().calls, 0);
}

#[test]
fn leaving_a_manual_state_returns_to_normal_operation() {
    let (breaker, clock) = manual(count_config(2));
    breaker.transition_to(State::ForcedOpen);
    breaker.transition_to(State::Closed);
    record(&breaker, Outcome::Failure);
    record(&breaker, Outcome::Failure);
    assert_eq!(breaker.state(), State::Open);
    breaker.transition_to(State::Disabled);
    clock.advance(secs(60));
    assert_eq!(breaker.state(), State::Disabled, "no timer leaves Disabled");
    breaker.transition_to(State::Open);
    assert_eq!(
        breaker.try_acquire().unwrap_err().retry_after(),
        Some(secs(5))
    );
}

// resilience4j: shouldNotAllowTransitionFromClosedToClosed (flowbed: a no-op, not an error)
#[test]
fn transition_to_the_current_state_does_nothing() {
    let (breaker, clock) = manual(count_config(4));
    record(&breaker, Outcome::Failure);
    let log = EventLog::new(&breaker, Interest::All);
    clock.advance(secs(2));
    breaker.transition_to(State::Closed);
    let m = breaker.metrics();
    assert_eq!(
        (m.state, m.calls, m.time_in_state),
        (State::Closed, 1, secs(2))
    );
    breaker.transition_to(State::Open);
    clock.advance(secs(1));
    breaker.transition_to(State::Open);
    assert_eq!(
        breaker.try_acquire().unwrap_err().retry_after(),
        Some(secs(4)),
        "the wait was not restarted"
    );
    let transitions: Vec<_> = log
        .take()
        .into_iter()
        .filter(|e| matches!(e, Event::Transition { .. }))
        .collect();
    assert_eq!(
        transitions,
        [Event::Transition {
            from: State::Closed,
            to: State::Open
        }]
    );
}

#[test]
fn transition_to_open_after_the_wait_is_over_starts_a_fresh_wait() {
    let (breaker, clock) = manual(count_config(2));
    breaker.transition_to(State::Open);
    clock.advance(secs(5));
    // The wait is over but nobody has looked: the operator wants it open for another 5 s.
    breaker.transition_to(State::Open);
    assert_eq!(
        breaker.state(),
        State::Open,
        "transition_to(Open) was followed at once by a HalfOpen state"
    );
    assert_eq!(
        breaker.try_acquire().unwrap_err().retry_after(),
        Some(secs(5))
    );
}

#[test]
fn transition_to_half_open_after_max_wait_starts_a_fresh_trial() {
    let (breaker, clock) = manual(count_config(2).max_wait_in_half_open(secs(10)));
    half_open(&breaker);
    clock.advance(secs(10));
    // The trial ran out, unobserved; the operator asks for a new trial.
    breaker.transition_to(State::HalfOpen);
    assert_eq!(
        breaker.state(),
        State::HalfOpen,
        "transition_to(HalfOpen) was followed at once by an Open state"
    );
    assert!(breaker.try_acquire().is_ok());
}

// ---------------------------------------------------------------------------------------
// reset
// ---------------------------------------------------------------------------------------

// resilience4j: shouldResetMetrics, shouldResetClosedState
#[test]
fn reset_empties_the_window_of_a_closed_breaker() {
    let (breaker, _clock) = manual(r4j_config());
    assert_metrics(&breaker, None, 0, 0, 0, 0);
    record(&breaker, Outcome::Success);
    record(&breaker, Outcome::Failure);
    assert_metrics(&breaker, None, 1, 2, 1, 0);
    let log = EventLog::new(&breaker, Interest::Transitions);
    breaker.reset();
    assert_eq!(breaker.state(), State::Closed);
    assert_metrics(&breaker, None, 0, 0, 0, 0);
    assert_eq!(log.take(), [Event::Reset]);
}

// resilience4j: shouldResetToClosedState
#[test]
fn reset_closes_an_open_breaker_and_restarts_the_backoff() {
    let (breaker, clock) = manual(
        count_config(2)
            .permitted_calls_in_half_open(1)
            .wait_in_open(WaitInOpen::Exponential {
                initial: secs(1),
                multiplier: 2.0,
                max: secs(100),
            }),
    );
    record(&breaker, Outcome::Failure);
    record(&breaker, Outcome::Failure);
    clock.advance(secs(1));
    record(&breaker, Outcome::Failure); // failed trial: next wait 2 s
    assert_eq!(
        breaker.try_acquire().unwrap_err().retry_after(),
        Some(secs(2))
    );
    let log = EventLog::new(&breaker, Interest::Transitions);
    breaker.reset();
    assert_eq!(
        log.take(),
        [
            Event::Transition {
                from: State::Open,
                to: State::Closed
            },
            Event::Reset
        ]
    );
    let m = breaker.metrics();
    assert_eq!((m.state, m.calls, m.not_permitted), (State::Closed, 0, 0));
    record(&breaker, Outcome::Failure);
    record(&breaker, Outcome::Failure);
    assert_eq!(
        breaker.try_acquire().unwrap_err().retry_after(),
        Some(secs(1))
    );
}

// ---------------------------------------------------------------------------------------
// Error classification
// ---------------------------------------------------------------------------------------

// resilience4j: CircuitBreakerExceptionHandlingTest.shouldIgnoreNumberFormatException
#[test]
fn ignored_errors_count_neither_as_success_nor_as_failure() {
    let (breaker, _clock) = manual(r4j_config());
    let log = EventLog::new(&breaker, Interest::All);
    let result = breaker.call(|| "x".parse::<i32>());
    assert!(matches!(result, Err(CallError::Failed(_))));
    assert_metrics(&breaker, None, 0, 0, 0, 0);
    assert_eq!(
        log.take(),
        [Event::Call {
            outcome: Outcome::Ignored,
            slow: false,
            took: Some(Duration::ZERO),
        }]
    );
    // Errors of other types still count.
    let _ = breaker.call(|| Err::<(), _>(std::io::Error::other("down")));
    assert_metrics(&breaker, None, 0, 1, 1, 0);
}

// resilience4j: CircuitBreakerExceptionHandlingTest.shouldRecordRuntimeExceptionAsFailure
// (recordException predicate)
#[test]
fn errors_failing_the_record_predicate_count_as_successes() {
    let (breaker, _clock) = manual(
        count_config(4)
            .record_error_if(|e: &std::io::Error| e.kind() != std::io::ErrorKind::NotFound),
    );
    for _ in 0..4 {
        let _ = breaker.call(|| Err::<(), _>(std::io::Error::from(std::io::ErrorKind::NotFound)));
    }
    let m = breaker.metrics();
    assert_eq!((m.state, m.successful, m.failed), (State::Closed, 4, 0));
    for _ in 0..2 {
        let _ = breaker.call(|| Err::<(), _>(std::io::Error::from(std::io::ErrorKind::TimedOut)));
    }
    assert_eq!(breaker.state(), State::Open);
}

#[test]
fn first_classifier_with_an_opinion_decides_and_unclassified_errors_fail() {
    let (breaker, _clock) = manual(
        Config::builder()
            .count_window(100)
            .classify_error(|code: &u16| (*code == 404).then_some(Outcome::Ignored))
            .classify_error(|code: &u16| (*code < 500).then_some(Outcome::Success))
            .classify_error(|_: &u16| Some(Outcome::Ignored)),
    );
    assert_eq!(breaker.classify(&Err::<(), u16>(404)), Outcome::Ignored);
    assert_eq!(breaker.classify(&Err::<(), u16>(409)), Outcome::Success);
    assert_eq!(breaker.classify(&Err::<(), u16>(503)), Outcome::Ignored);
    assert_eq!(
        breaker.classify(&Err::<(), &str>("other")),
        Outcome::Failure
    );
    assert_eq!(breaker.classify(&Ok::<(), u16>(())), Outcome::Success);
    let _ = breaker.call(|| Err::<(), u16>(409));
    let _ = breaker.call(|| Err::<(), u16>(404));
    let _ = breaker.call(|| Err::<(), &str>("other"));
    let m = breaker.metrics();
    assert_eq!((m.calls, m.successful, m.failed), (2, 1, 1));
}

// resilience4j: CircuitBreakerResultHandlingTest (recordResult: a result counted as failure)
#[test]
fn call_classified_can_count_an_ok_result_as_a_failure() {
    let (breaker, _clock) = manual(count_config(2));
    let status = |r: &Result<u16, std::io::Error>| match r {
        Ok(status) if *status >= 500 => Outcome::Failure,
        Ok(_) => Outcome::Success,
        Err(_) => Outcome::Failure,
    };
    assert_eq!(breaker.call_classified(|| Ok(503), status).unwrap(), 503);
    assert_eq!(breaker.call_classified(|| Ok(502), status).unwrap(), 502);
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(breaker.metrics().failed, 2);
    let rejected = breaker.call_classified(|| Ok(200), status).unwrap_err();
    assert!(rejected.is_rejected());
}

#[test]
fn call_async_classified_counts_by_its_classifier() {
    let (breaker, _clock) = manual(count_config(2));
    let ok_is_failure = |_: &Result<(), ()>| Outcome::Failure;
    futures::executor::block_on(async {
        for _ in 0..2 {
            let result = breaker
                .call_async_classified(async { Ok(()) }, ok_is_failure)
                .await;
            assert_eq!(result, Ok(()));
        }
        assert!(
            breaker
                .call_async(async { Ok::<_, ()>(()) })
                .await
                .unwrap_err()
                .is_rejected()
        );
    });
    assert_eq!(breaker.state(), State::Open);
}

// resilience4j: CircuitBreakerTest (a runtime exception thrown by the call is a failure)
#[test]
fn panic_in_call_is_recorded_as_a_failure_and_resumes() {
    let (breaker, _clock) = manual(count_config(2));
    for _ in 0..2 {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            breaker.call(|| -> Result<(), ()> { panic!("downstream panicked") })
        }));
        let payload = result.unwrap_err();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"downstream panicked"));
    }
    let m = breaker.metrics();
    assert_eq!((m.state, m.failed), (State::Open, 2));
}

#[test]
fn permit_dropped_while_panicking_records_a_failure() {
    let (breaker, _clock) = manual(count_config(1));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _permit = breaker.try_acquire().unwrap();
        panic!("handler panicked while holding the permit");
    }));
    assert!(result.is_err());
    assert_eq!(breaker.state(), State::Open);
}

// ---------------------------------------------------------------------------------------
// Events and subscriptions
// ---------------------------------------------------------------------------------------

// resilience4j: CircuitBreakerEventPublisherTest (state transition events in order)
#[test]
fn transition_events_follow_the_state_machine_exactly() {
    let (breaker, clock) = manual(count_config(2).permitted_calls_in_half_open(1));
    let log = EventLog::new(&breaker, Interest::Transitions);
    record(&breaker, Outcome::Failure);
    record(&breaker, Outcome::Failure);
    assert!(breaker.try_acquire().is_err());
    clock.advance(secs(5));
    record(&breaker, Outcome::Failure); // failed trial
    clock.advance(secs(5));
    assert_eq!(breaker.state(), State::HalfOpen);
    assert_eq!(breaker.state(), State::HalfOpen);
    record(&breaker, Outcome::Success);
    breaker.transition_to(State::MetricsOnly);
    breaker.transition_to(State::ForcedOpen);
    breaker.transition_to(State::Disabled);
    breaker.reset();
    use State::*;
    let t = |from, to| Event::Transition { from, to };
    assert_eq!(
        log.take(),
        [
            t(Closed, Open),
            t(Open, HalfOpen),
            t(HalfOpen, Open),
            t(Open, HalfOpen),
            t(HalfOpen, Closed),
            t(Closed, MetricsOnly),
            t(MetricsOnly, ForcedOpen),
            t(ForcedOpen, Disabled),
            t(Disabled, Closed),
            Event::Reset,
        ]
    );
}

// resilience4j: CircuitBreakerEventPublisherTest (onSuccess / onError / onCallNotPermitted)
#[test]
fn interest_all_sees_calls_rejections_and_transitions() {
    let (breaker, _clock) = manual(count_config(2));
    let log = EventLog::new(&breaker, Interest::All);
    record(&breaker, Outcome::Success);
    record_timed(&breaker, Outcome::Failure, millis(3));
    let rejected = breaker.try_acquire().unwrap_err();
    assert_eq!(
        log.take(),
        [
            Event::Call {
                outcome: Outcome::Success,
                slow: false,
                took: None
            },
            Event::Call {
                outcome: Outcome::Failure,
                slow: false,
                took: Some(millis(3))
            },
            Event::Transition {
                from: State::Closed,
                to: State::Open
            },
            Event::Rejected(rejected),
        ]
    );
}

#[test]
fn interest_transitions_sees_no_call_or_rejection_events() {
    let (breaker, _clock) = manual(count_config(2));
    let log = EventLog::new(&breaker, Interest::Transitions);
    record(&breaker, Outcome::Success);
    record(&breaker, Outcome::Failure);
    assert!(breaker.try_acquire().is_err());
    assert!(breaker.call(|| Ok::<_, ()>(())).unwrap_err().is_rejected());
    assert_eq!(
        log.take(),
        [Event::Transition {
            from: State::Closed,
            to: State::Open
        }]
    );
}

#[test]
fn dropping_the_subscription_unsubscribes() {
    let (breaker, _clock) = manual(count_config(2));
    let kept = EventLog::new(&breaker, Interest::Transitions);
    let dropped = EventLog::new(&breaker, Interest::All);
    record(&breaker, Outcome::Success);
    let seen = dropped.unsubscribe();
    assert_eq!(seen.lock().unwrap().len(), 1);
    record(&breaker, Outcome::Failure);
    breaker.transition_to(State::ForcedOpen);
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "no event after unsubscribing"
    );
    assert_eq!(kept.take().len(), 2);
}

#[test]
fn forgotten_subscription_keeps_receiving() {
    let (breaker, _clock) = manual(count_config(2));
    let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::clone(&seen);
    breaker
        .subscribe(Interest::Transitions, move |_| {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        })
        .forget();
    breaker.transition_to(State::ForcedOpen);
    breaker.transition_to(State::Closed);
    assert_eq!(seen.load(std::sync::atomic::Ordering::Relaxed), 2);
}

// ---------------------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------------------

// resilience4j: CircuitBreakerMetricsTest
#[test]
fn metrics_count_calls_by_outcome() {
    let (breaker, _clock) = manual(
        Config::builder()
            .count_window(20)
            .minimum_calls(20)
            .slow_call_duration(secs(1)),
    );
    let calls = [
        (Outcome::Success, millis(5)),
        (Outcome::Success, secs(2)),
        (Outcome::Success, secs(1)),
        (Outcome::Failure, millis(5)),
        (Outcome::Failure, secs(9)),
        (Outcome::Ignored, secs(9)),
    ];
    for (outcome, took) in calls {
        record_timed(&breaker, outcome, took);
    }
    assert!(breaker.try_acquire().is_ok());
    let m = breaker.metrics();
    assert_eq!(m.state, State::Closed);
    assert_eq!((m.calls, m.successful, m.failed), (5, 3, 2));
    assert_eq!((m.slow_successful, m.slow_failed), (2, 1));
    assert_eq!((m.failure_rate, m.slow_call_rate), (None, None));
    assert_eq!(m.not_permitted, 0);
}

#[test]
fn metrics_rates_appear_at_minimum_calls() {
    let (breaker, _clock) = manual(
        Config::builder()
            .count_window(10)
            .minimum_calls(3)
            .failure_rate_threshold(100.0)
            .slow_call_duration(secs(1)),
    );
    breaker.try_acquire().unwrap().record_failure(secs(1));
    breaker.try_acquire().unwrap().record_success(millis(1));
    assert_eq!(
        (
            breaker.metrics().failure_rate,
            breaker.metrics().slow_call_rate
        ),
        (None, None)
    );
    breaker.try_acquire().unwrap().record_success(millis(1));
    let m = breaker.metrics();
    assert_eq!(m.failure_rate, Some(100.0 / 3.0));
    assert_eq!(m.slow_call_rate, Some(100.0 / 3.0));
}

#[test]
fn metrics_time_in_state_follows_the_clock() {
    let (breaker, clock) = manual(count_config(2));
    clock.advance(secs(3));
    assert_eq!(breaker.metrics().time_in_state, secs(3));
    breaker.transition_to(State::ForcedOpen);
    assert_eq!(breaker.metrics().time_in_state, Duration::ZERO);
    clock.advance(millis(2_500));
    assert_eq!(breaker.metrics().time_in_state, millis(2_500));
    breaker.transition_to(State::Open);
    clock.advance(secs(7));
    // The wait ended at 5 s, but the breaker became half-open at the first look (7 s).
    let m = breaker.metrics();
    assert_eq!(
        (m.state, m.time_in_state),
        (State::HalfOpen, Duration::ZERO)
    );
}

#[test]
fn metrics_count_refused_calls_until_reset() {
    let (breaker, clock) = manual(count_config(2).permitted_calls_in_half_open(1));
    breaker.transition_to(State::ForcedOpen);
    assert!(breaker.try_acquire().is_err());
    breaker.transition_to(State::Open);
    assert!(breaker.try_acquire().is_err());
    clock.advance(secs(5));
    let probe = breaker.try_acquire().unwrap();
    assert!(breaker.try_acquire().is_err());
    assert_eq!(breaker.metrics().not_permitted, 3);
    probe.record(Outcome::Success);
    assert_eq!(breaker.metrics().not_permitted, 3);
    breaker.reset();
    assert_eq!(breaker.metrics().not_permitted, 0);
}

// ---------------------------------------------------------------------------------------
// tokio's paused clock
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn tokio_clock_half_opens_after_the_wait_in_paused_time() {
    let breaker = Arc::new(CircuitBreaker::with_clock(
        count_config(2)
            .permitted_calls_in_half_open(1)
            .slow_call_duration(millis(500))
            .build()
            .unwrap(),
        flowbed_circuitbreaker::TokioClock::new(),
    ));
    for _ in 0..2 {
        let result = breaker.call_async(async { Err::<(), _>("refused") }).await;
        assert_eq!(result, Err(CallError::Failed("refused")));
    }
    assert_eq!(breaker.state(), State::Open);
    let rejected = breaker.try_acquire().unwrap_err();
    assert_eq!(rejected.retry_after(), Some(secs(5)));

    tokio::time::advance(secs(3)).await;
    assert_eq!(
        breaker.try_acquire().unwrap_err().retry_after(),
        Some(secs(2))
    );
    tokio::time::sleep(rejected.retry_after().unwrap() - secs(3)).await;
    assert_eq!(breaker.state(), State::HalfOpen);

    // The probe runs in a spawned task with an owned permit; it takes 600 ms of paused
    // time, which the breaker's clock sees: a slow probe, so the trial fails.
    let permit = breaker.try_acquire_owned().unwrap();
    let task = tokio::spawn(async move {
        tokio::time::sleep(millis(600)).await;
        permit.record(Outcome::Success);
    });
    assert!(breaker.try_acquire().is_err());
    task.await.unwrap();
    assert_eq!(breaker.state(), State::Open);

    tokio::time::sleep(secs(5)).await;
    let result = breaker
        .call_async(async {
            tokio::time::sleep(millis(100)).await;
            Ok::<_, ()>("pong")
        })
        .await;
    assert_eq!(result, Ok("pong"));
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn tokio_timeout_cancels_a_probe_and_frees_its_slot() {
    let breaker = CircuitBreaker::with_clock(
        count_config(2)
            .permitted_calls_in_half_open(1)
            .build()
            .unwrap(),
        flowbed_circuitbreaker::TokioClock::new(),
    );
    breaker.transition_to(State::Open);
    breaker.transition_to(State::HalfOpen);
    let hung = breaker.call_async(futures::future::pending::<Result<(), ()>>());
    let timed_out = tokio::time::timeout(secs(1), hung).await;
    assert!(timed_out.is_err());
    assert!(
        matches!(breaker.try_acquire(), Ok(p) if p.state() == State::HalfOpen),
        "the timed-out probe's slot is free"
    );
}
