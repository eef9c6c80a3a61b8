//! `scope`: jobs that borrow from the stack, nested scopes on small pools, how panics of
//! scoped jobs surface, and scoped jobs that cannot be queued running on the caller.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use common::{LONG, busy_pool, eventually, payload_message};
use flowbed_workerpool::{JobError, RejectPolicy, WorkerPool};

#[test]
fn scoped_jobs_borrow_and_mutate_stack_data() {
    let pool = WorkerPool::new(3).unwrap();
    let input: Vec<u64> = (1..=1000).collect();
    let mut output = vec![0u64; 1000];
    let total = AtomicUsize::new(0);
    let returned = pool.scope(|s| {
        for (chunk_in, chunk_out) in input.chunks(64).zip(output.chunks_mut(64)) {
            let total = &total;
            s.spawn(move || {
                for (x, y) in chunk_in.iter().zip(chunk_out.iter_mut()) {
                    *y = x * x;
                }
                total.fetch_add(chunk_in.len(), Ordering::Relaxed);
            });
        }
        "the closure's value"
    });
    assert_eq!(returned, "the closure's value");
    assert_eq!(
        total.load(Ordering::Relaxed),
        1000,
        "every job finished before scope returned"
    );
    assert!(output.iter().zip(&input).all(|(y, x)| *y == x * x));
}

#[test]
fn scoped_handles_return_values_and_the_scope_returns_the_closures_value() {
    let pool = WorkerPool::new(2).unwrap();
    let words = ["alpha", "be", "gam"];
    let total = pool.scope(|s| {
        let handles: Vec<_> = words.iter().map(|w| s.spawn(move || w.len())).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum::<usize>()
    });
    assert_eq!(total, 10);
}

/// Jobs on a pool of `threads` that each open a scope whose jobs open scopes again.
fn nested_scopes_inside_pool_jobs_complete(threads: usize) {
    let pool = Arc::new(
        WorkerPool::builder()
            .core_threads(threads)
            .drop_timeout(Duration::from_secs(1))
            .build()
            .unwrap(),
    );
    let outer: Vec<_> = (0..threads as u64 * 2)
        .map(|i| {
            let pool = pool.clone();
            pool.clone()
                .submit(move || {
                    let mut sums = [0u64; 4];
                    pool.scope(|s| {
                        for (j, slot) in (0u64..).zip(sums.iter_mut()) {
                            let pool = &pool;
                            s.spawn(move || {
                                let mut inner = [0u64; 3];
                                pool.scope(|s| {
                                    for (k, x) in (0u64..).zip(inner.iter_mut()) {
                                        s.spawn(move || *x = i * 100 + j * 10 + k);
                                    }
                                });
                                *slot = inner.iter().sum();
                            });
                        }
                    });
                    sums.iter().sum::<u64>()
                })
                .unwrap()
        })
        .collect();
    for (i, handle) in (0u64..).zip(outer) {
        let expected: u64 = (0..4)
            .flat_map(|j| (0..3).map(move |k| i * 100 + j * 10 + k))
            .sum();
        match handle.join_timeout(LONG) {
            Ok(sum) => assert_eq!(sum, expected),
            Err(error) => panic!("outer job {i} on a {threads}-thread pool: {error:?} (deadlock?)"),
        }
    }
}

#[test]
fn nested_scopes_inside_pool_jobs_complete_on_a_one_thread_pool() {
    nested_scopes_inside_pool_jobs_complete(1);
}

#[test]
fn nested_scopes_inside_pool_jobs_complete_on_a_two_thread_pool() {
    nested_scopes_inside_pool_jobs_complete(2);
}

#[test]
fn joining_a_scoped_handle_on_the_only_worker_runs_the_job_instead_of_deadlocking() {
    let pool = Arc::new(
        WorkerPool::builder()
            .core_threads(1)
            .drop_timeout(Duration::from_secs(1))
            .build()
            .unwrap(),
    );
    let inner = pool.clone();
    let handle = pool
        .submit(move || {
            let worker = thread::current().id();
            // The jobs go to this worker's own deque, and nobody else can run them:
            // `join` must run them here, as waiting for the whole scope does.
            inner.scope(|s| {
                let handles: Vec<_> = (0..8).map(|_| s.spawn(|| thread::current().id())).collect();
                handles.into_iter().all(|h| h.join().unwrap() == worker)
            })
        })
        .unwrap();
    assert!(handle.join_timeout(LONG).expect("no deadlock"));
}

#[test]
fn an_unjoined_panicking_job_makes_scope_panic_after_all_other_jobs_finished() {
    let pool = WorkerPool::new(2).unwrap();
    let finished = AtomicBool::new(false);
    let (panicking_tx, panicking_rx) = mpsc::channel::<()>();
    let result = catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|s| {
            let _unjoined = s.spawn(move || {
                let _dropped_when_unwinding = panicking_tx;
                panic!("scoped boom");
            });
            let (pool, finished) = (&pool, &finished);
            s.spawn(move || {
                // Still running when the other job has panicked and been counted.
                let _ = panicking_rx.recv_timeout(LONG);
                eventually("the panic was counted", || pool.stats().panicked == 1);
                for _ in 0..100 {
                    thread::yield_now();
                }
                finished.store(true, Ordering::SeqCst);
            });
        })
    }));
    let payload = result.expect_err("an unjoined panic makes scope panic");
    assert!(
        finished.load(Ordering::SeqCst),
        "scope panicked before its other job finished"
    );
    let message = payload_message(&*payload).unwrap_or_default();
    assert!(
        message.contains("panicked"),
        "scope's panic message: {message:?}"
    );
}

#[test]
fn a_joined_panic_is_reported_by_join_and_scope_returns_normally() {
    let pool = WorkerPool::new(2).unwrap();
    let (error, other) = pool.scope(|s| {
        let bad = s.spawn(|| -> u8 { panic!("joined boom") });
        let good = s.spawn(|| 5u8);
        (bad.join().unwrap_err(), good.join().unwrap())
    });
    assert_eq!(error.panic_message(), Some("joined boom"));
    assert_eq!(other, 5);
    pool.shutdown();
    assert!(pool.await_termination(LONG));
    assert_eq!(pool.stats().panicked, 1);
}

#[test]
fn a_panic_of_the_scope_closure_is_re_raised_after_the_jobs_finished() {
    let pool = WorkerPool::new(2).unwrap();
    let done = AtomicUsize::new(0);
    let result = catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..100 {
                        thread::yield_now();
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                });
            }
            panic!("closure boom");
        })
    }));
    let payload = result.expect_err("the closure's panic propagates");
    assert_eq!(payload_message(&*payload), Some("closure boom"));
    assert_eq!(done.load(Ordering::SeqCst), 4);
}

#[test]
fn scope_on_a_shut_down_pool_runs_jobs_on_the_caller() {
    let pool = WorkerPool::new(2).unwrap();
    pool.shutdown();
    assert!(pool.await_termination(LONG));
    let caller = thread::current().id();
    let mut values = [0u32; 3];
    let ran_on = pool.scope(|s| {
        let handles: Vec<_> = values
            .iter_mut()
            .enumerate()
            .map(|(i, v)| {
                s.spawn(move || {
                    *v = i as u32 + 1;
                    thread::current().id()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                assert!(h.is_finished(), "it ran before spawn returned");
                h.join().unwrap()
            })
            .collect::<Vec<_>>()
    });
    assert!(ran_on.iter().all(|id| *id == caller));
    assert_eq!(values, [1, 2, 3]);
    assert_eq!(pool.stats().submitted, 0);
}

#[test]
fn scoped_jobs_that_do_not_fit_in_the_queue_run_on_the_caller() {
    let (pool, gate) = busy_pool(WorkerPool::builder().queue_capacity(1), 1);
    let caller = thread::current().id();
    let (queued, overflow) = pool.scope(|s| {
        let queued = s.spawn(|| thread::current().id());
        let overflow = s.spawn(|| thread::current().id());
        assert!(overflow.is_finished(), "the queue was full: it ran here");
        gate.open();
        (queued.join().unwrap(), overflow.join().unwrap())
    });
    assert_ne!(queued, caller, "the job that fitted ran on the worker");
    assert_eq!(overflow, caller);
}

/// `Scope::spawn` promises scoped jobs are never refused (they run on the caller when
/// they cannot be queued). A `DiscardOldest` submit must therefore not drop a queued
/// scoped job: the scope would return with the job unrun, its handle `Discarded`.
#[test]
fn a_queued_scoped_job_is_not_dropped_by_discard_oldest() {
    let (pool, gate) = busy_pool(
        WorkerPool::builder()
            .queue_capacity(1)
            .reject_policy(RejectPolicy::DiscardOldest),
        1,
    );
    let mut value = 0;
    let (scoped, other) = pool.scope(|s| {
        let scoped = s.spawn(|| value = 1);
        // The queue is full with the scoped job; this submit drops the oldest entry.
        let other = pool.submit(|| 2).unwrap();
        gate.open();
        (scoped.join(), other.join())
    });
    assert_eq!(other.unwrap(), 2);
    assert_eq!(
        scoped,
        Ok(()),
        "a scoped job was discarded by another submitter's DiscardOldest"
    );
    assert_eq!(value, 1);
}

#[test]
fn every_scoped_job_runs_exactly_once() {
    let pool = WorkerPool::new(2).unwrap();
    let runs = AtomicUsize::new(0);
    let results: Vec<Result<(), JobError>> = pool.scope(|s| {
        let handles: Vec<_> = (0..100)
            .map(|_| {
                s.spawn(|| {
                    runs.fetch_add(1, Ordering::Relaxed);
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join()).collect()
    });
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(runs.load(Ordering::Relaxed), 100);
}

#[test]
fn install_runs_the_closure_on_a_worker_and_returns_its_value() {
    let pool = WorkerPool::builder()
        .core_threads(2)
        .thread_name("installer")
        .build()
        .unwrap();
    let name = pool.install(|| std::thread::current().name().map(String::from));
    assert!(name.unwrap().starts_with("installer-"));
    // Called on a worker, it runs right there.
    let caller_and_runner = pool
        .submit({
            let inner_pool = WorkerPool::new(1).unwrap();
            move || {
                let me = std::thread::current().id();
                // A different pool: runs on that pool's worker, not here.
                let other = inner_pool.install(|| std::thread::current().id());
                (me, other)
            }
        })
        .unwrap()
        .join()
        .unwrap();
    assert_ne!(caller_and_runner.0, caller_and_runner.1);
}

#[test]
fn install_on_a_worker_of_the_same_pool_runs_inline() {
    let pool = std::sync::Arc::new(WorkerPool::new(1).unwrap());
    let inner = std::sync::Arc::clone(&pool);
    let same_thread = pool
        .submit(move || {
            let me = std::thread::current().id();
            inner.install(|| std::thread::current().id()) == me
        })
        .unwrap()
        .join()
        .unwrap();
    assert!(same_thread);
}

#[test]
fn install_re_raises_a_panic_of_its_closure() {
    let pool = WorkerPool::new(1).unwrap();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.install(|| -> u8 { panic!("installed panic") })
    }));
    let payload = outcome.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"installed panic"));
    // The pool is unharmed.
    assert_eq!(pool.install(|| 5), 5);
}
