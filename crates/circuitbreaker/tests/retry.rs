//! The `retry` module: validation, the attempt count, the exponential schedule and its cap,
//! jitter bounds over many seeds, the `max_elapsed` budget (manual clock and paused tokio
//! time), predicates, hooks, composition with the breaker (rejections not retried by
//! default, retried after `retry_after` when opted in, a breaker opening mid-retry), async
//! cancellation, and a model-based property test of the whole loop.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flowbed_circuitbreaker::retry::{
    Jitter, Retry, RetryBuilder, RetryConfigError, RetryError, StopReason,
};
use flowbed_circuitbreaker::{
    CallError, CircuitBreaker, Clock, Config, ManualClock, State, WaitInOpen,
};
use proptest::prelude::*;

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// A policy without jitter, so every delay is the nominal backoff.
fn exact(max_attempts: u32, initial: Duration) -> RetryBuilder {
    Retry::builder()
        .max_attempts(max_attempts)
        .initial_backoff(initial)
        .jitter(Jitter::None)
}

/// A manual clock and the sleeps a run asked for; `sleep` advances the clock.
#[derive(Debug, Default)]
struct FakeTime {
    clock: ManualClock,
    slept: Mutex<Vec<Duration>>,
}

impl FakeTime {
    fn sleep(&self, d: Duration) {
        self.slept.lock().unwrap().push(d);
        self.clock.advance(d);
    }

    fn slept(&self) -> Vec<Duration> {
        self.slept.lock().unwrap().clone()
    }

    fn now(&self) -> Duration {
        Duration::from_nanos(self.clock.now())
    }
}

/// A breaker on `clock` that opens after `window` calls all failed, stays open `wait`,
/// then lets one probe through.
fn breaker_on<C: Clock>(clock: C, window: u32, wait: Duration) -> CircuitBreaker<C> {
    let config = Config::builder()
        .count_window(window)
        .minimum_calls(window)
        .wait_in_open(WaitInOpen::Fixed(wait))
        .permitted_calls_in_half_open(1)
        .build()
        .unwrap();
    CircuitBreaker::with_clock(config, clock)
}

// ---------------------------------------------------------------------------------------
// Configuration

#[test]
fn invalid_settings_are_typed_errors_naming_the_field() {
    let err = Retry::builder().max_attempts(0).build().unwrap_err();
    assert_eq!(err, RetryConfigError::MaxAttempts);
    assert!(err.to_string().contains("max_attempts"));

    for bad in [0.5, 0.0, -2.0, f64::NAN, f64::INFINITY] {
        let err = Retry::builder().multiplier(bad).build().unwrap_err();
        assert!(
            matches!(err, RetryConfigError::Multiplier { value } if value.to_bits() == bad.to_bits())
        );
        assert!(err.to_string().contains("multiplier"), "{err}");
    }

    let err = Retry::builder()
        .initial_backoff(ms(500))
        .max_backoff(ms(499))
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        RetryConfigError::MaxBackoff {
            initial: ms(500),
            max: ms(499)
        }
    );
    assert!(err.to_string().contains("max_backoff"));

    let err = Retry::builder()
        .max_elapsed(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(err, RetryConfigError::MaxElapsed);
    assert!(err.to_string().contains("max_elapsed"));

    // The edges that are allowed.
    Retry::builder()
        .max_attempts(1)
        .initial_backoff(Duration::ZERO)
        .multiplier(1.0)
        .max_backoff(Duration::ZERO)
        .max_elapsed(Duration::from_nanos(1))
        .build()
        .unwrap();
    Retry::builder()
        .initial_backoff(ms(7))
        .max_backoff(ms(7))
        .build()
        .unwrap();
}

#[test]
fn defaults_match_the_documented_table() {
    let retry = Retry::default();
    assert_eq!(retry.max_attempts(), 3);
    assert_eq!(retry.backoff_after(0), Duration::ZERO);
    assert_eq!(retry.backoff_after(1), ms(100));
    assert_eq!(retry.backoff_after(2), ms(200));
    assert_eq!(retry.backoff_after(7), ms(6_400));
    assert_eq!(retry.backoff_after(8), Duration::from_secs(10));
    assert_eq!(retry.backoff_after(u32::MAX), Duration::from_secs(10));
    assert_eq!(retry.jitter(), Jitter::Full);
    assert_eq!(retry.max_elapsed(), None);
    assert!(!retry.retries_rejected());
    assert_eq!(
        format!("{:?}", Retry::builder().build().unwrap()),
        format!("{retry:?}")
    );
}

// ---------------------------------------------------------------------------------------
// Attempts and the schedule

#[test]
fn gives_up_after_max_attempts_with_the_last_error() {
    for max in 1..=6 {
        let time = FakeTime::default();
        let retry = exact(max, ms(10)).build().unwrap();
        let mut calls = 0u32;
        let err = retry
            .run_with(
                &time.clock,
                |d| time.sleep(d),
                || {
                    calls += 1;
                    Err::<(), _>(calls)
                },
            )
            .unwrap_err();
        assert_eq!(calls, max);
        assert_eq!(err.attempts(), max);
        assert_eq!(err.reason(), StopReason::MaxAttempts);
        assert_eq!(*err.last(), max, "the last attempt's error is returned");
        assert_eq!(
            time.slept().len(),
            max as usize - 1,
            "one sleep between attempts"
        );
    }
}

#[test]
fn success_on_the_kth_attempt_returns_the_value() {
    for k in 1..=5u32 {
        let time = FakeTime::default();
        let retry = exact(5, ms(10)).build().unwrap();
        let mut calls = 0u32;
        let value = retry
            .run_with(
                &time.clock,
                |d| time.sleep(d),
                || {
                    calls += 1;
                    if calls < k {
                        Err("not yet")
                    } else {
                        Ok(calls * 10)
                    }
                },
            )
            .unwrap();
        assert_eq!(value, k * 10);
        assert_eq!(calls, k);
        assert_eq!(time.slept().len(), k as usize - 1);
    }
}

#[test]
fn delays_follow_the_exponential_schedule_up_to_the_cap() {
    let retry = exact(8, ms(100))
        .multiplier(3.0)
        .max_backoff(Duration::from_secs(1))
        .build()
        .unwrap();
    let expected: Vec<Duration> = [100, 300, 900, 1000, 1000, 1000, 1000]
        .into_iter()
        .map(ms)
        .collect();

    let time = FakeTime::default();
    let err = retry
        .run_with(&time.clock, |d| time.sleep(d), || Err::<(), _>("down"))
        .unwrap_err();
    assert_eq!(err.attempts(), 8);
    assert_eq!(time.slept(), expected);
    assert_eq!(time.now(), ms(5_300));
    assert_eq!(retry.delays().collect::<Vec<_>>(), expected);
    assert_eq!(retry.delays().len(), 7);
    for (n, delay) in expected.iter().enumerate() {
        assert_eq!(retry.backoff_after(n as u32 + 1), *delay);
    }
}

#[test]
fn fractional_multiplier_and_constant_and_zero_backoffs() {
    let grow = exact(5, ms(1_000)).multiplier(1.5).build().unwrap();
    assert_eq!(
        grow.delays().collect::<Vec<_>>(),
        [ms(1_000), ms(1_500), ms(2_250), ms(3_375)]
    );

    let constant = exact(4, ms(250)).multiplier(1.0).build().unwrap();
    assert_eq!(constant.delays().collect::<Vec<_>>(), [ms(250); 3]);

    // A zero backoff retries at once, but `sleep` is still called before every retry.
    let time = FakeTime::default();
    let zero = Retry::builder()
        .max_attempts(4)
        .initial_backoff(Duration::ZERO)
        .build()
        .unwrap();
    let _ = zero.run_with(&time.clock, |d| time.sleep(d), || Err::<(), _>(()));
    assert_eq!(time.slept(), [Duration::ZERO; 3]);
}

#[test]
fn full_jitter_stays_within_bounds_over_many_seeds() {
    let mut fractions = Vec::new();
    for seed in 0..2_000u64 {
        let retry = Retry::builder()
            .max_attempts(6)
            .initial_backoff(ms(100))
            .max_backoff(ms(1_000))
            .seed(seed)
            .build()
            .unwrap();
        for (n, delay) in retry.delays().enumerate() {
            let cap = retry.backoff_after(n as u32 + 1);
            assert!(delay <= cap, "seed {seed}: {delay:?} > {cap:?}");
            fractions.push(delay.as_secs_f64() / cap.as_secs_f64());
        }
    }
    // Uniform on [0, 1]: mean 1/2, and both ends of the range are reached.
    let mean = fractions.iter().sum::<f64>() / fractions.len() as f64;
    assert!((0.48..0.52).contains(&mean), "mean fraction {mean}");
    let low = fractions.iter().filter(|f| **f < 0.1).count();
    let high = fractions.iter().filter(|f| **f > 0.9).count();
    let tenth = fractions.len() / 10;
    assert!(
        low > tenth * 8 / 10 && low < tenth * 12 / 10,
        "{low} of {}",
        fractions.len()
    );
    assert!(
        high > tenth * 8 / 10 && high < tenth * 12 / 10,
        "{high} of {}",
        fractions.len()
    );
}

#[test]
fn equal_jitter_stays_in_the_upper_half() {
    let mut below_three_quarters = 0;
    let mut total = 0;
    for seed in 0..1_000u64 {
        let retry = Retry::builder()
            .max_attempts(5)
            .initial_backoff(ms(80))
            .jitter(Jitter::Equal)
            .seed(seed)
            .build()
            .unwrap();
        for (n, delay) in retry.delays().enumerate() {
            let cap = retry.backoff_after(n as u32 + 1);
            assert!(
                delay >= cap / 2 && delay <= cap,
                "seed {seed}: {delay:?} of {cap:?}"
            );
            total += 1;
            if delay < cap * 3 / 4 {
                below_three_quarters += 1;
            }
        }
    }
    assert!((total * 45 / 100..total * 55 / 100).contains(&below_three_quarters));
}

#[test]
fn seeded_runs_repeat_and_unseeded_runs_differ() {
    let seeded = Retry::builder()
        .max_attempts(8)
        .initial_backoff(ms(100))
        .seed(1234)
        .build()
        .unwrap();
    let run = |retry: &Retry| {
        let time = FakeTime::default();
        let _ = retry.run_with(&time.clock, |d| time.sleep(d), || Err::<(), _>(()));
        time.slept()
    };
    let first = run(&seeded);
    assert_eq!(first, run(&seeded));
    assert_eq!(first, seeded.delays().collect::<Vec<_>>());
    assert_eq!(first, run(&seeded.clone()), "clones keep the seed");
    assert!(first.iter().any(|d| !d.is_zero()));

    // Without a seed every run draws afresh: 7 draws of ~27 bits each never all agree.
    let unseeded = Retry::builder()
        .max_attempts(8)
        .initial_backoff(ms(100))
        .build()
        .unwrap();
    assert_ne!(run(&unseeded), run(&unseeded));
    assert_ne!(
        unseeded.delays().collect::<Vec<_>>(),
        unseeded.delays().collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------------------------------
// The time budget

#[test]
fn max_elapsed_stops_instead_of_sleeping_past_the_budget() {
    // Each attempt takes 50 ms; backoffs 100, 200, 400, 800 ms.
    let time = FakeTime::default();
    let retry = exact(10, ms(100)).max_elapsed(ms(1_000)).build().unwrap();
    let mut starts = Vec::new();
    let err = retry
        .run_with(
            &time.clock,
            |d| time.sleep(d),
            || {
                starts.push(time.now());
                time.clock.advance(ms(50));
                Err::<(), _>("slow and failing")
            },
        )
        .unwrap_err();
    // Attempts start at 0, 150, 400, 850; the fourth fails at 900 and the next would
    // start at 900 + 800 > 1000: no sleep, the error at once.
    assert_eq!(starts, [ms(0), ms(150), ms(400), ms(850)]);
    assert_eq!(err.attempts(), 4);
    assert_eq!(err.reason(), StopReason::MaxElapsed);
    assert_eq!(time.slept(), [ms(100), ms(200), ms(400)]);
    assert_eq!(time.now(), ms(900));
}

#[test]
fn an_attempt_may_start_exactly_at_the_budget() {
    let time = FakeTime::default();
    let retry = exact(10, Duration::from_secs(1))
        .max_elapsed(Duration::from_secs(3))
        .build()
        .unwrap();
    let err = retry
        .run_with(&time.clock, |d| time.sleep(d), || Err::<(), _>(()))
        .unwrap_err();
    // Attempts at 0 s, 1 s and 3 s (exactly the budget); the next would be at 7 s.
    assert_eq!(err.attempts(), 3);
    assert_eq!(err.reason(), StopReason::MaxElapsed);
    assert_eq!(time.now(), Duration::from_secs(3));

    // One nanosecond less and the third attempt is not made.
    let time = FakeTime::default();
    let retry = exact(10, Duration::from_secs(1))
        .max_elapsed(Duration::from_secs(3) - Duration::from_nanos(1))
        .build()
        .unwrap();
    let err = retry
        .run_with(&time.clock, |d| time.sleep(d), || Err::<(), _>(()))
        .unwrap_err();
    assert_eq!(err.attempts(), 2);
    assert_eq!(time.now(), Duration::from_secs(1));
}

#[test]
fn a_non_retryable_error_is_reported_as_such_even_on_the_last_attempt() {
    let time = FakeTime::default();
    let retry = exact(2, ms(1))
        .retry_if(|e: &&str| *e != "fatal")
        .build()
        .unwrap();
    let mut errors = ["transient", "fatal"].into_iter();
    let err = retry
        .run_with(
            &time.clock,
            |d| time.sleep(d),
            || Err::<(), _>(errors.next().unwrap()),
        )
        .unwrap_err();
    assert_eq!(
        (err.attempts(), err.reason()),
        (2, StopReason::NotRetryable)
    );
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn max_elapsed_stops_early_under_paused_tokio_time() {
    let retry = exact(10, ms(100))
        .max_elapsed(Duration::from_secs(2))
        .build()
        .unwrap();
    let start = tokio::time::Instant::now();
    let starts = Mutex::new(Vec::new());
    let err = retry
        .run_async(|| async {
            starts.lock().unwrap().push(start.elapsed());
            tokio::time::sleep(ms(300)).await;
            Err::<(), _>("down")
        })
        .await
        .unwrap_err();
    // 0-300 fail, sleep 100; 400-700, sleep 200; 900-1200, sleep 400; 1600-1900, and the
    // next would start at 1900 + 800 > 2000.
    assert_eq!(
        *starts.lock().unwrap(),
        [ms(0), ms(400), ms(900), ms(1_600)]
    );
    assert_eq!(err.attempts(), 4);
    assert_eq!(err.reason(), StopReason::MaxElapsed);
    assert_eq!(start.elapsed(), ms(1_900));
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn run_async_sleeps_the_exponential_schedule_on_tokio_time() {
    let retry = exact(5, ms(100)).max_backoff(ms(300)).build().unwrap();
    let start = tokio::time::Instant::now();
    let starts = Mutex::new(Vec::new());
    let err = retry
        .run_async(|| async {
            starts.lock().unwrap().push(start.elapsed());
            Err::<(), _>(())
        })
        .await
        .unwrap_err();
    assert_eq!(err.attempts(), 5);
    assert_eq!(
        *starts.lock().unwrap(),
        [ms(0), ms(100), ms(300), ms(600), ms(900)]
    );
}

// ---------------------------------------------------------------------------------------
// Predicates and hooks

#[derive(Debug, Clone, Copy, PartialEq)]
enum DbError {
    Timeout,
    Constraint,
}

#[test]
fn predicate_stops_on_non_retryable_errors() {
    let retry = exact(10, ms(1))
        .retry_if(|e: &DbError| *e == DbError::Timeout)
        .build()
        .unwrap();
    let time = FakeTime::default();
    let mut errors = [DbError::Timeout, DbError::Timeout, DbError::Constraint].into_iter();
    let mut calls = 0;
    let err = retry
        .run_with(
            &time.clock,
            |d| time.sleep(d),
            || {
                calls += 1;
                Err::<(), _>(errors.next().unwrap())
            },
        )
        .unwrap_err();
    assert_eq!(calls, 3);
    assert_eq!(err.attempts(), 3);
    assert_eq!(err.reason(), StopReason::NotRetryable);
    assert_eq!(*err.last(), DbError::Constraint);
    assert_eq!(time.slept().len(), 2);
    assert!(retry.is_retryable(&DbError::Timeout));
    assert!(!retry.is_retryable(&DbError::Constraint));
}

#[test]
fn predicates_apply_only_to_their_own_error_type_and_all_must_agree() {
    let retry = exact(4, ms(1))
        .retry_if(|status: &u16| *status >= 500)
        .retry_if(|status: &u16| *status != 501)
        .build()
        .unwrap();
    assert!(retry.is_retryable(&503u16));
    assert!(!retry.is_retryable(&404u16));
    assert!(!retry.is_retryable(&501u16), "the second predicate vetoes");
    assert!(retry.is_retryable(&"a &str error"), "no predicate for &str");
    assert!(retry.is_retryable(&503u32), "u32 is not u16");

    let time = FakeTime::default();
    let err = retry
        .run_with(&time.clock, |d| time.sleep(d), || Err::<(), _>("not a u16"))
        .unwrap_err();
    assert_eq!((err.attempts(), err.reason()), (4, StopReason::MaxAttempts));
}

#[test]
fn on_retry_reports_attempt_error_delay_and_elapsed() {
    type Seen = (u32, Option<DbError>, Duration, Duration);
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let sink = Arc::clone(&seen);
    let second = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&second);
    let retry = Retry::builder()
        .max_attempts(4)
        .initial_backoff(ms(100))
        .seed(99)
        .on_retry(move |event| {
            assert!(event.rejected().is_none());
            sink.lock().unwrap().push((
                event.attempt(),
                event.error::<DbError>().copied(),
                event.delay(),
                event.elapsed(),
            ));
        })
        .on_retry(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        })
        .build()
        .unwrap();
    let time = FakeTime::default();
    let err = retry
        .run_with(
            &time.clock,
            |d| time.sleep(d),
            || {
                time.clock.advance(ms(5));
                Err::<(), _>(DbError::Timeout)
            },
        )
        .unwrap_err();
    assert_eq!(err.attempts(), 4);
    let slept = time.slept();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "no hook call when giving up");
    let mut elapsed = Duration::ZERO;
    for (n, (attempt, error, delay, at)) in seen.into_iter().enumerate() {
        elapsed += ms(5);
        assert_eq!(attempt, n as u32 + 1);
        assert_eq!(error, Some(DbError::Timeout));
        assert_eq!(delay, slept[n], "the hook sees the delay slept");
        assert_eq!(at, elapsed);
        elapsed += delay;
    }
    assert_eq!(second.load(Ordering::Relaxed), 3, "every hook runs");
}

#[test]
fn retry_error_displays_attempts_reason_and_error_and_converts_with_question_mark() {
    let time = FakeTime::default();
    let one = exact(1, ms(1)).build().unwrap();
    let err = one
        .run_with(&time.clock, |d| time.sleep(d), || Err::<(), _>("boom"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "gave up after 1 attempt (max_attempts reached): boom"
    );
    assert!(time.slept().is_empty(), "max_attempts(1) never sleeps");

    let three = exact(3, ms(1)).build().unwrap();
    let err = three
        .run_with(&time.clock, |d| time.sleep(d), || Err::<(), _>("boom"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "gave up after 3 attempts (max_attempts reached): boom"
    );
    assert_eq!(err.clone().into_last(), "boom");

    fn fetch(retry: &Retry, time: &FakeTime) -> Result<(), Box<dyn std::error::Error>> {
        retry.run_with(
            &time.clock,
            |d| time.sleep(d),
            || Err::<(), _>(std::io::Error::other("eof")),
        )?;
        Ok(())
    }
    let boxed = fetch(&three, &time).unwrap_err();
    assert!(boxed.to_string().ends_with("(max_attempts reached): eof"));
    let typed = boxed.downcast::<RetryError<std::io::Error>>().unwrap();
    assert_eq!(typed.attempts(), 3);
}

#[test]
fn run_sleeps_the_thread_between_attempts() {
    // Zero backoff: the real sleeping path without slowing the test down.
    let retry = Retry::builder()
        .max_attempts(3)
        .initial_backoff(Duration::ZERO)
        .build()
        .unwrap();
    let mut calls = 0;
    assert_eq!(
        retry.run(|| {
            calls += 1;
            if calls < 3 { Err(()) } else { Ok(calls) }
        }),
        Ok(3)
    );
    let breaker = CircuitBreaker::new(Config::default());
    let err = retry.call(&breaker, || Err::<(), _>("down")).unwrap_err();
    assert_eq!(err.attempts(), 3);
    assert_eq!(breaker.metrics().failed, 3);
}

// ---------------------------------------------------------------------------------------
// With the breaker

#[test]
fn a_breaker_rejection_is_not_retried_by_default() {
    let time = FakeTime::default();
    let breaker = breaker_on(time.clock.clone(), 2, Duration::from_secs(5));
    let _ = breaker.call(|| Err::<(), _>("a"));
    let _ = breaker.call(|| Err::<(), _>("b"));
    assert_eq!(breaker.state(), State::Open);

    let retry = exact(5, ms(10)).build().unwrap();
    let mut calls = 0;
    let err = retry
        .call_with(
            &breaker,
            &time.clock,
            |d| time.sleep(d),
            || {
                calls += 1;
                Ok::<_, &str>(())
            },
        )
        .unwrap_err();
    assert_eq!(calls, 0, "the operation never ran");
    assert_eq!(err.attempts(), 1);
    assert_eq!(err.reason(), StopReason::NotRetryable);
    let CallError::Rejected(rejected) = err.last() else {
        panic!("expected a rejection, got {:?}", err.last())
    };
    assert_eq!(rejected.state(), State::Open);
    assert_eq!(rejected.retry_after(), Some(Duration::from_secs(5)));
    assert!(time.slept().is_empty());
    assert_eq!(breaker.metrics().not_permitted, 1);
}

#[test]
fn a_failing_downstream_opens_the_breaker_mid_retry_and_the_retry_stops_there() {
    let time = FakeTime::default();
    let breaker = breaker_on(time.clock.clone(), 3, Duration::from_secs(30));
    let retry = exact(10, ms(10)).build().unwrap();
    let mut calls = 0;
    let err = retry
        .call_with(
            &breaker,
            &time.clock,
            |d| time.sleep(d),
            || {
                calls += 1;
                Err::<(), _>(format!("timeout {calls}"))
            },
        )
        .unwrap_err();
    // Three failures fill the window at 100 %: the breaker opens; attempt 4 is refused.
    assert_eq!(calls, 3);
    assert_eq!(err.attempts(), 4);
    assert_eq!(err.reason(), StopReason::NotRetryable);
    assert!(err.last().is_rejected());
    assert_eq!(time.slept(), [ms(10), ms(20), ms(40)]);
    let metrics = breaker.metrics();
    assert_eq!(
        (metrics.state, metrics.failed, metrics.not_permitted),
        (State::Open, 3, 1)
    );
}

#[test]
fn a_rejection_is_retried_after_retry_after_when_opted_in() {
    let time = FakeTime::default();
    let breaker = breaker_on(time.clock.clone(), 2, Duration::from_secs(5));
    let rejections = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&rejections);
    let retry = exact(6, ms(10))
        .retry_rejected(true)
        .on_retry(move |event| {
            if let Some(rejected) = event.rejected() {
                sink.lock()
                    .unwrap()
                    .push((event.attempt(), rejected.state(), event.delay()));
            }
        })
        .build()
        .unwrap();
    assert!(retry.retries_rejected());
    let mut calls = 0;
    let value = retry
        .call_with(
            &breaker,
            &time.clock,
            |d| time.sleep(d),
            || {
                calls += 1;
                if calls <= 2 {
                    Err("timeout")
                } else {
                    Ok(calls)
                }
            },
        )
        .unwrap();
    // 1 fails (sleep 10 ms), 2 fails and opens the breaker (sleep 20 ms), 3 is refused
    // with 5 s - 20 ms to go: the retry sleeps that (more than the 40 ms backoff), and 4
    // is the half-open probe, which works and closes the breaker.
    assert_eq!(value, 3);
    assert_eq!(time.slept(), [ms(10), ms(20), ms(4_980)]);
    assert_eq!(*rejections.lock().unwrap(), [(3, State::Open, ms(4_980))]);
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn an_opted_in_rejection_uses_the_backoff_when_it_is_longer_than_retry_after() {
    let time = FakeTime::default();
    let breaker = breaker_on(time.clock.clone(), 1, ms(50));
    let retry = exact(3, ms(200)).retry_rejected(true).build().unwrap();
    let _ = breaker.call(|| Err::<(), _>("open it"));
    let value = retry
        .call_with(
            &breaker,
            &time.clock,
            |d| time.sleep(d),
            || Ok::<_, &str>("ok"),
        )
        .unwrap();
    assert_eq!(value, "ok");
    assert_eq!(time.slept(), [ms(200)]);
}

#[test]
fn a_half_open_rejection_is_retried_after_the_backoff_when_opted_in() {
    let time = FakeTime::default();
    let breaker = breaker_on(time.clock.clone(), 1, Duration::from_secs(1));
    let _ = breaker.call(|| Err::<(), _>("open it"));
    time.clock.advance(Duration::from_secs(1));
    assert_eq!(breaker.state(), State::HalfOpen);
    // Someone else holds the only probe slot; it is released during the retry's sleep.
    let mut probe = Some(breaker.try_acquire().unwrap());

    let retry = exact(3, ms(30)).retry_rejected(true).build().unwrap();
    let value = retry
        .call_with(
            &breaker,
            &time.clock,
            |d| {
                probe.take();
                time.sleep(d);
            },
            || Ok::<_, &str>(7),
        )
        .unwrap();
    assert_eq!(value, 7);
    // HalfOpen's refusal has no retry_after: the plain backoff was slept.
    assert_eq!(time.slept(), [ms(30)]);
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn a_forced_open_breaker_is_never_retried_even_when_opted_in() {
    let time = FakeTime::default();
    let breaker = breaker_on(time.clock.clone(), 1, Duration::from_secs(1));
    breaker.transition_to(State::ForcedOpen);
    let retry = exact(5, ms(10)).retry_rejected(true).build().unwrap();
    let err = retry
        .call_with(
            &breaker,
            &time.clock,
            |d| time.sleep(d),
            || Ok::<_, &str>(()),
        )
        .unwrap_err();
    assert_eq!(
        (err.attempts(), err.reason()),
        (1, StopReason::NotRetryable)
    );
    assert!(time.slept().is_empty());
}

#[test]
fn opted_in_rejections_still_respect_max_elapsed() {
    let time = FakeTime::default();
    let breaker = breaker_on(time.clock.clone(), 1, Duration::from_secs(60));
    let _ = breaker.call(|| Err::<(), _>("open it"));
    let retry = exact(5, ms(10))
        .retry_rejected(true)
        .max_elapsed(Duration::from_secs(10))
        .build()
        .unwrap();
    let err = retry
        .call_with(
            &breaker,
            &time.clock,
            |d| time.sleep(d),
            || Ok::<_, &str>(()),
        )
        .unwrap_err();
    assert_eq!((err.attempts(), err.reason()), (1, StopReason::MaxElapsed));
    assert!(err.last().is_rejected());
    assert!(time.slept().is_empty());
}

#[test]
fn predicates_in_call_see_the_operations_own_error() {
    let time = FakeTime::default();
    let breaker = breaker_on(time.clock.clone(), 100, Duration::from_secs(1));
    let retry = exact(5, ms(1))
        .retry_if(|e: &DbError| *e == DbError::Timeout)
        .build()
        .unwrap();
    let mut errors = [DbError::Timeout, DbError::Constraint].into_iter();
    let err = retry
        .call_with(
            &breaker,
            &time.clock,
            |d| time.sleep(d),
            || Err::<(), _>(errors.next().unwrap()),
        )
        .unwrap_err();
    assert_eq!(
        (err.attempts(), err.reason()),
        (2, StopReason::NotRetryable)
    );
    assert_eq!(*err.last(), CallError::Failed(DbError::Constraint));
    assert_eq!(
        breaker.metrics().failed,
        2,
        "the breaker recorded every attempt"
    );
}

#[test]
fn composing_by_hand_retries_rejections_unless_a_predicate_says_no() {
    let time = FakeTime::default();
    let breaker = breaker_on(time.clock.clone(), 1, Duration::from_secs(60));
    let _ = breaker.call(|| Err::<(), _>(DbError::Timeout));

    // `run` sees a plain `CallError`: without a predicate it retries the refusals.
    let naive = exact(4, ms(1)).build().unwrap();
    let err = naive
        .run_with(
            &time.clock,
            |d| time.sleep(d),
            || breaker.call(|| Ok::<_, DbError>(())),
        )
        .unwrap_err();
    assert_eq!((err.attempts(), err.reason()), (4, StopReason::MaxAttempts));

    let careful = exact(4, ms(1))
        .retry_if(|e: &CallError<DbError>| !e.is_rejected())
        .build()
        .unwrap();
    let err = careful
        .run_with(
            &time.clock,
            |d| time.sleep(d),
            || breaker.call(|| Ok::<_, DbError>(())),
        )
        .unwrap_err();
    assert_eq!(
        (err.attempts(), err.reason()),
        (1, StopReason::NotRetryable)
    );
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn async_retry_waits_out_the_open_breaker_on_tokio_time() {
    let breaker = breaker_on(
        flowbed_circuitbreaker::TokioClock::new(),
        2,
        Duration::from_secs(1),
    );
    let retry = exact(5, ms(100)).retry_rejected(true).build().unwrap();
    let start = tokio::time::Instant::now();
    let calls = AtomicU32::new(0);
    let value = retry
        .call_async(&breaker, || async {
            let call = calls.fetch_add(1, Ordering::Relaxed) + 1;
            if call <= 2 { Err("timeout") } else { Ok(call) }
        })
        .await
        .unwrap();
    // 1 at 0 ms fails; 2 at 100 ms fails and opens the breaker until 1100 ms; 3 at 300 ms
    // is refused (800 ms to go, longer than the 400 ms backoff); 4 at 1100 ms is the probe.
    assert_eq!(value, 3);
    assert_eq!(start.elapsed(), ms(1_100));
    assert_eq!(breaker.state(), State::Closed);

    // Without the opt-in the same story ends at the refusal.
    let breaker = breaker_on(
        flowbed_circuitbreaker::TokioClock::new(),
        2,
        Duration::from_secs(1),
    );
    let strict = exact(5, ms(100)).build().unwrap();
    let err = strict
        .call_async(&breaker, || async { Err::<(), _>("timeout") })
        .await
        .unwrap_err();
    assert_eq!(
        (err.attempts(), err.reason()),
        (3, StopReason::NotRetryable)
    );
    assert!(err.last().is_rejected());
}

// ---------------------------------------------------------------------------------------
// Async: cancellation, other runtimes, Send

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn dropping_the_future_stops_retrying() {
    let retry = exact(100, ms(100)).build().unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&calls);
    let run = async move {
        retry
            .run_async(|| {
                counter.fetch_add(1, Ordering::Relaxed);
                async { Err::<(), _>(()) }
            })
            .await
    };
    // Attempts at 0 and 100 ms, then a 200 ms sleep that the timeout cuts at 250 ms.
    assert!(tokio::time::timeout(ms(250), run).await.is_err());
    assert_eq!(calls.load(Ordering::Relaxed), 2);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(
        calls.load(Ordering::Relaxed),
        2,
        "nothing runs after the drop"
    );
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn dropping_the_future_mid_attempt_gives_the_half_open_slot_back() {
    let breaker = Arc::new(breaker_on(
        flowbed_circuitbreaker::TokioClock::new(),
        1,
        Duration::from_secs(1),
    ));
    let _ = breaker.call(|| Err::<(), _>("open it"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(breaker.state(), State::HalfOpen);

    let retry = Retry::default();
    let stuck = retry.call_async(&breaker, || async {
        std::future::pending::<Result<(), &str>>().await
    });
    assert!(tokio::time::timeout(ms(10), stuck).await.is_err());
    // The cancelled probe's slot is free again.
    let permit = breaker.try_acquire().expect("the slot was given back");
    permit.record_success(Duration::ZERO);
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn async_with_a_custom_sleep_runs_on_any_executor() {
    let time = FakeTime::default();
    let retry = exact(4, ms(100)).build().unwrap();
    let mut calls = 0;
    let value = futures::executor::block_on(retry.run_async_with(
        &time.clock,
        |d| {
            time.sleep(d);
            std::future::ready(())
        },
        || {
            calls += 1;
            let call = calls;
            async move { if call < 4 { Err(call) } else { Ok(call) } }
        },
    ))
    .unwrap();
    assert_eq!(value, 4);
    assert_eq!(time.slept(), [ms(100), ms(200), ms(400)]);

    let breaker = breaker_on(time.clock.clone(), 2, Duration::from_secs(9));
    let err = futures::executor::block_on(retry.call_async_with(
        &breaker,
        &time.clock,
        |d| {
            time.sleep(d);
            std::future::ready(())
        },
        || async { Err::<(), _>("down") },
    ))
    .unwrap_err();
    assert_eq!(
        (err.attempts(), err.reason()),
        (3, StopReason::NotRetryable)
    );
}

#[cfg(feature = "tokio")]
fn assert_send<T: Send>(_: &T) {}
#[cfg(feature = "tokio")]
fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}
#[cfg(feature = "tokio")]
fn assert_send_sync<T: Send + Sync + std::error::Error + 'static>() {}

#[cfg(feature = "tokio")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn futures_are_send_and_run_on_spawned_tasks() {
    assert_send_sync_clone::<Retry>();
    assert_send_sync_clone::<RetryError<CallError<String>>>();
    assert_send_sync::<RetryError<std::io::Error>>();

    let retry = Retry::builder()
        .initial_backoff(Duration::ZERO)
        .build()
        .unwrap();
    let breaker = Arc::new(CircuitBreaker::new(Config::default()));

    let plain = {
        let retry = retry.clone();
        async move { retry.run_async(|| async { Err::<(), _>("x") }).await }
    };
    assert_send(&plain);
    let through = {
        let (retry, breaker) = (retry.clone(), Arc::clone(&breaker));
        async move {
            retry
                .call_async(&breaker, || async { Err::<(), _>("y") })
                .await
        }
    };
    assert_send(&through);
    assert_eq!(
        tokio::spawn(plain).await.unwrap().unwrap_err().attempts(),
        3
    );
    assert_eq!(
        tokio::spawn(through).await.unwrap().unwrap_err().attempts(),
        3
    );
    assert_eq!(breaker.metrics().failed, 3);
}

// ---------------------------------------------------------------------------------------
// Model-based: the whole loop against a direct reading of the documented rules

/// What the documented rules say a run does: the attempts made, the sleeps, how it ends.
fn model(
    retry: &Retry,
    attempt_takes: &[Duration],
    succeeds_at: Option<u32>,
    retryable: &[bool],
) -> (u32, Vec<Duration>, Result<u32, StopReason>) {
    let mut delays = retry.delays(); // the same seed draws the same jitter
    let mut now = Duration::ZERO;
    let mut slept = Vec::new();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        now += attempt_takes[attempt as usize - 1];
        if succeeds_at == Some(attempt) {
            return (attempt, slept, Ok(attempt));
        }
        if !retryable[attempt as usize - 1] {
            return (attempt, slept, Err(StopReason::NotRetryable));
        }
        if attempt == retry.max_attempts() {
            return (attempt, slept, Err(StopReason::MaxAttempts));
        }
        let delay = delays.next().unwrap();
        assert!(delay <= retry.backoff_after(attempt));
        if retry
            .max_elapsed()
            .is_some_and(|budget| now + delay > budget)
        {
            return (attempt, slept, Err(StopReason::MaxElapsed));
        }
        slept.push(delay);
        now += delay;
    }
}

proptest! {
    #[test]
    fn the_loop_follows_the_documented_rules(
        max_attempts in 1u32..12,
        initial_ms in 0u64..500,
        multiplier in 1.0f64..4.0,
        extra_cap_ms in 0u64..3_000,
        jitter in prop_oneof![Just(Jitter::Full), Just(Jitter::Equal), Just(Jitter::None)],
        budget_ms in proptest::option::of(1u64..20_000),
        seed in any::<u64>(),
        takes_ms in proptest::collection::vec(0u64..300, 12),
        succeeds_at in proptest::option::of(1u32..12),
        retryable in proptest::collection::vec(proptest::bool::weighted(0.85), 12),
    ) {
        let mut builder = Retry::builder()
            .max_attempts(max_attempts)
            .initial_backoff(ms(initial_ms))
            .multiplier(multiplier)
            .max_backoff(ms(initial_ms + extra_cap_ms))
            .jitter(jitter)
            .seed(seed)
            // Each error says whether it is retryable.
            .retry_if(|retryable: &bool| *retryable);
        if let Some(budget) = budget_ms {
            builder = builder.max_elapsed(ms(budget));
        }
        let retry = builder.build().unwrap();
        let takes: Vec<Duration> = takes_ms.into_iter().map(ms).collect();
        let (attempts, slept, outcome) = model(&retry, &takes, succeeds_at, &retryable);

        let time = FakeTime::default();
        let mut call = 0u32;
        let got = retry.run_with(&time.clock, |d| time.sleep(d), || {
            call += 1;
            time.clock.advance(takes[call as usize - 1]);
            if succeeds_at == Some(call) { Ok(call) } else { Err(retryable[call as usize - 1]) }
        });
        prop_assert_eq!(call, attempts);
        prop_assert_eq!(time.slept(), slept);
        match (got, outcome) {
            (Ok(value), Ok(expected)) => prop_assert_eq!(value, expected),
            (Err(err), Err(reason)) => {
                prop_assert_eq!(err.attempts(), attempts);
                prop_assert_eq!(err.reason(), reason);
                prop_assert_eq!(*err.last(), retryable[attempts as usize - 1]);
            }
            (got, expected) => prop_assert!(false, "got {:?}, model says {:?}", got, expected),
        }
        if let Some(budget) = budget_ms {
            // Every attempt started within the budget.
            let last_start = time.now() - takes[attempts as usize - 1];
            prop_assert!(last_start <= ms(budget));
        }
    }
}
