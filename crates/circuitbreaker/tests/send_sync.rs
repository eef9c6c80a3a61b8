//! The thread-safety promises of every core public type, and that the futures of
//! `call_async` can be spawned on a multi-threaded runtime whenever the operation can,
//! checked at compile time.

use std::cell::Cell;
use std::fmt::Debug;
use std::rc::Rc;
use std::sync::Arc;

#[cfg(feature = "tokio")]
use flowbed_circuitbreaker::TokioClock;
use flowbed_circuitbreaker::{
    CallError, CallPermit, CircuitBreaker, Clock, Config, ConfigBuilder, ConfigError, Event,
    Interest, ManualClock, Metrics, MonotonicClock, Outcome, OwnedCallPermit, Permit, Rejected,
    SlidingWindow, State, Subscription, WaitInOpen,
};

use flowbed_testkit::thread_safety::{debug, error, send, send_future, spawnable, thread_safe};

/// A `Send + Sync` error type that is not `Clone` or `Copy`.
#[derive(Debug)]
struct IoLike(#[allow(dead_code)] String);

#[test]
fn values_are_thread_safe() {
    thread_safe::<Config>();
    thread_safe::<ConfigBuilder>();
    thread_safe::<SlidingWindow>();
    thread_safe::<WaitInOpen>();
    thread_safe::<State>();
    thread_safe::<Outcome>();
    thread_safe::<Interest>();
    thread_safe::<Event>();
    thread_safe::<Metrics>();
    thread_safe::<Subscription>();
}

#[test]
fn breakers_are_thread_safe_on_every_clock() {
    fn breaker<C: Clock + Unpin + 'static>() {
        thread_safe::<CircuitBreaker<C>>();
        thread_safe::<Arc<CircuitBreaker<C>>>();
    }
    breaker::<MonotonicClock>();
    breaker::<ManualClock>();
    #[cfg(feature = "tokio")]
    breaker::<TokioClock>();
    // The default clock parameter.
    thread_safe::<CircuitBreaker>();
}

#[test]
fn permits_are_thread_safe() {
    fn permits<C: Clock + Unpin + 'static>() {
        thread_safe::<CallPermit<'static, C>>();
        thread_safe::<OwnedCallPermit<C>>();
        thread_safe::<Permit<C, Arc<CircuitBreaker<C>>>>();
    }
    permits::<MonotonicClock>();
    permits::<ManualClock>();
    #[cfg(feature = "tokio")]
    permits::<TokioClock>();
    // An owned permit moves into a 'static task.
    fn static_send<T: Send + 'static>() {}
    static_send::<OwnedCallPermit>();
}

#[test]
fn errors_are_send_sync_std_errors() {
    error::<ConfigError>();
    error::<Rejected>();
    error::<CallError<std::io::Error>>();
    error::<CallError<std::fmt::Error>>();
    thread_safe::<CallError<&'static str>>();
    thread_safe::<CallError<IoLike>>();
    // `CallError<E>` is exactly as thread-safe as `E`.
    send::<CallError<Cell<u32>>>();
    debug::<CallError<Rc<u32>>>();
}

#[test]
fn call_async_futures_are_send_when_the_operation_is() {
    let breaker = CircuitBreaker::new(Config::default());
    // Borrowing the breaker: Send (the breaker is Sync).
    drop(send_future(
        breaker.call_async(async { Ok::<_, std::io::Error>(1) }),
    ));
    drop(send_future(breaker.call_async_classified(
        async { Err::<u32, _>(IoLike("boom".into())) },
        |result| {
            if result.is_ok() {
                Outcome::Success
            } else {
                Outcome::Failure
            }
        },
    )));
    // Holding the operation's permit across an await inside a spawned task.
    let shared = Arc::new(CircuitBreaker::with_clock(
        Config::default(),
        ManualClock::new(),
    ));
    let breaker = Arc::clone(&shared);
    drop(spawnable(async move {
        breaker
            .call_async(async { Ok::<_, std::io::Error>("pong") })
            .await
    }));
    let permit = shared.try_acquire_owned().unwrap();
    drop(spawnable(async move {
        std::future::ready(()).await;
        permit.record(Outcome::Success);
    }));
}

#[cfg(feature = "tokio")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_async_runs_in_tokio_spawn() {
    let breaker = Arc::new(CircuitBreaker::with_clock(
        Config::default(),
        TokioClock::new(),
    ));
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let breaker = Arc::clone(&breaker);
            tokio::spawn(async move {
                breaker
                    .call_async(async move {
                        tokio::task::yield_now().await;
                        if i % 2 == 0 {
                            Ok(i)
                        } else {
                            Err(IoLike("boom".into()))
                        }
                    })
                    .await
                    .map_err(|error| error.is_rejected())
            })
        })
        .collect();
    let mut failed = 0;
    for task in tasks {
        if task.await.unwrap() == Err(false) {
            failed += 1;
        }
    }
    assert_eq!(failed, 2);
    assert_eq!(breaker.metrics().calls, 4);
}
