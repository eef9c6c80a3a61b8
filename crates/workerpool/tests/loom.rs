//! loom models of the pool's protocols: every interleaving of the real code (the
//! work-stealing deques are replaced by a mutex-guarded queue, see `src/queue.rs`).
//!
//! Run: `RUSTFLAGS="--cfg flowbed_loom" cargo test --release -p flowbed-workerpool --test loom`
#![cfg(flowbed_loom)]

use std::time::Duration;

use flowbed_workerpool::{Rejected, WorkerPool};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};

fn model(body: impl Fn() + Send + Sync + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    builder.check(move || {
        RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        body()
    });
    eprintln!(
        "iterations: {}",
        RUNS.load(std::sync::atomic::Ordering::Relaxed)
    );
}

/// A one-thread pool to share with a second loom thread, and a run counter.
fn shared_one_worker_pool() -> (Arc<WorkerPool>, Arc<AtomicUsize>) {
    let pool = WorkerPool::builder()
        .core_threads(1)
        .max_threads(1)
        .build()
        .unwrap();
    (Arc::new(pool), Arc::new(AtomicUsize::new(0)))
}

/// A job arriving as the only worker goes to sleep is never lost: the worker either
/// sees it on its re-check after registering as idle, or the submitter sees the
/// registration and wakes it.
#[test]
fn a_job_arriving_as_the_worker_parks_is_run() {
    model(|| {
        let pool = WorkerPool::builder()
            .core_threads(1)
            .max_threads(1)
            .build()
            .unwrap();
        let handle = pool.submit(|| 7).unwrap();
        assert_eq!(handle.join().unwrap(), 7);
        drop(pool);
    });
}

/// `shutdown_now` racing with a submit: a job whose submit succeeded is either run by a
/// worker or returned by `shutdown_now`, exactly once; a refused job never runs.
#[test]
fn shutdown_now_racing_with_submit_loses_nothing() {
    model(|| {
        let (pool, ran) = shared_one_worker_pool();
        let submitter = {
            let (pool, ran) = (pool.clone(), ran.clone());
            loom::thread::spawn(move || {
                let job = move || {
                    ran.fetch_add(1, Ordering::SeqCst);
                };
                match pool.execute(job) {
                    Ok(()) => true,
                    Err(Rejected::Shutdown(_)) => false,
                    Err(other) => panic!("unexpected rejection {other:?}"),
                }
            })
        };
        let returned = pool.shutdown_now();
        let accepted = submitter.join().unwrap();
        let returned = returned.len();
        assert!(pool.await_termination(Duration::from_secs(3600)));
        let ran = ran.load(Ordering::SeqCst);
        assert_eq!(
            ran + returned,
            usize::from(accepted),
            "ran {ran}, returned {returned}"
        );
    });
}

/// Graceful `shutdown` racing with a submit: an accepted job always runs before the
/// pool terminates.
#[test]
fn shutdown_racing_with_submit_runs_every_accepted_job() {
    model(|| {
        let (pool, ran) = shared_one_worker_pool();
        let submitter = {
            let (pool, ran) = (pool.clone(), ran.clone());
            loom::thread::spawn(move || {
                pool.execute(move || {
                    ran.fetch_add(1, Ordering::SeqCst);
                })
                .is_ok()
            })
        };
        pool.shutdown();
        let accepted = submitter.join().unwrap();
        assert!(pool.await_termination(Duration::from_secs(3600)));
        assert_eq!(ran.load(Ordering::SeqCst), usize::from(accepted));
    });
}

/// A worker above `core_threads` (here core 0) retiring after its keep-alive, racing
/// with a new submit: the job still runs (the worker stays, or a new one starts).
#[test]
fn keep_alive_exit_racing_with_submit_runs_the_job() {
    model(|| {
        let pool = WorkerPool::builder()
            .core_threads(0)
            .max_threads(1)
            .keep_alive(Duration::ZERO)
            .build()
            .unwrap();
        let first = pool.submit(|| 1).unwrap();
        // The worker may now time out and retire at any point while we submit again.
        let second = pool.submit(|| 2).unwrap();
        assert_eq!(first.join().unwrap() + second.join().unwrap(), 3);
        drop(pool);
    });
}
