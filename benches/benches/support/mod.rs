//! Measuring loops shared by the bench suites (a module, not a bench target: cargo only
//! discovers `benches/*.rs` and `benches/*/main.rs`).

use std::convert::Infallible;
use std::fmt::Debug;
use std::future::{Ready, ready};
use std::hint::black_box;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use tower::{Service, ServiceExt};

/// Runs `op` `iters` times on this thread and returns the time it took; asserts that `op`
/// returned `expected` every time (every check allowed, every call refused, ...), so a
/// loop that took the wrong path cannot pass for a fast one.
#[inline]
pub(crate) fn run_timed(iters: u64, expected: bool, mut op: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    let mut hits = 0u64;
    for _ in 0..iters {
        hits += u64::from(black_box(op()));
    }
    let elapsed = start.elapsed();
    let expected_hits = if expected { iters } else { 0 };
    assert_eq!(hits, expected_hits, "an operation took the wrong path");
    elapsed
}

/// Runs `op` `iters` times on each of two threads sharing `shared`, started together on a
/// barrier, and returns the time from the common start until both are done; asserts that
/// every `op` returned `true`.
pub(crate) fn run_2threads<T: Sync>(
    shared: &T,
    iters: u64,
    op: impl Fn(&T) -> bool + Sync,
) -> Duration {
    let start = Barrier::new(3);
    thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    start.wait();
                    let mut hits = 0u64;
                    for _ in 0..iters {
                        hits += u64::from(black_box(op(shared)));
                    }
                    hits
                })
            })
            .collect();
        start.wait();
        let began = Instant::now();
        let hits: u64 = workers
            .into_iter()
            .map(|worker| worker.join().expect("worker panicked"))
            .sum();
        let elapsed = began.elapsed();
        assert_eq!(hits, 2 * iters, "an operation took the wrong path");
        elapsed
    })
}

/// A tower service that answers at once: the baseline a middleware's overhead is measured
/// against.
pub(crate) fn instant_service()
-> impl Service<u64, Response = u64, Error = Infallible, Future = Ready<Result<u64, Infallible>>>
+ Clone
+ Send
+ 'static {
    tower::service_fn(|request: u64| ready(Ok::<u64, Infallible>(request)))
}

/// Calls `service` `iters` times, each `ready().await` then `call(..).await`, and returns
/// the time taken; every call must succeed.
pub(crate) async fn call_loop<S>(service: &mut S, iters: u64) -> Duration
where
    S: Service<u64, Response = u64>,
    S::Error: Debug,
{
    let start = Instant::now();
    for request in 0..iters {
        let response = service
            .ready()
            .await
            .expect("service ready")
            .call(request)
            .await
            .expect("call permitted and successful");
        black_box(response);
    }
    start.elapsed()
}
