//! `broadcast`: one run per live worker with distinct indices, from outside and from
//! inside the pool, with per-run panic reporting and exact counters.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use common::{LONG, busy_pool, eventually, occupy, within_long};
use flowbed_workerpool::WorkerPool;

#[test]
fn runs_once_per_worker_with_distinct_indices_in_order() {
    let pool = WorkerPool::builder()
        .core_threads(3)
        .thread_name("bcast")
        .build()
        .unwrap();
    let calls = AtomicUsize::new(0); // borrowed: the closure need not be 'static
    let results = pool.broadcast(|ctx| {
        calls.fetch_add(1, Ordering::SeqCst);
        (
            ctx.index(),
            ctx.num_workers(),
            thread::current().id(),
            thread::current().name().map(str::to_owned),
        )
    });
    assert_eq!(results.len(), 3);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "exactly one run per worker"
    );
    let mut threads = BTreeSet::new();
    for (position, result) in results.into_iter().enumerate() {
        let (index, num_workers, id, name) = result.unwrap();
        assert_eq!(index, position, "results come back in worker order");
        assert_eq!(num_workers, 3);
        assert!(name.unwrap().starts_with("bcast-"), "ran on a worker");
        assert!(
            threads.insert(format!("{id:?}")),
            "each run on a different thread"
        );
    }
    assert!(
        !threads.contains(&format!("{:?}", thread::current().id())),
        "the caller's thread never runs a worker's share"
    );
}

#[test]
fn broadcast_counts_as_submitted_and_completed_jobs() {
    let pool = WorkerPool::new(2).unwrap();
    for _ in 0..10 {
        assert_eq!(pool.broadcast(|ctx| ctx.index()).len(), 2);
    }
    pool.shutdown();
    assert!(pool.await_termination(LONG));
    let stats = pool.stats();
    assert_eq!(stats.submitted, 20);
    assert_eq!(stats.completed, 20);
    common::assert_stats_add_up(&stats);
}

#[test]
fn broadcast_from_inside_a_pool_job_completes() {
    for threads in [1, 2, 3] {
        let pool = Arc::new(
            WorkerPool::builder()
                .core_threads(threads)
                .drop_timeout(Duration::from_secs(1))
                .build()
                .unwrap(),
        );
        let inner = pool.clone();
        let handle = pool
            .submit(move || {
                let caller = thread::current().id();
                let results = inner.broadcast(|ctx| (ctx.index(), thread::current().id()));
                let ran_here = results
                    .iter()
                    .filter(|result| result.as_ref().unwrap().1 == caller)
                    .count();
                (results.len(), ran_here)
            })
            .unwrap();
        let (len, ran_here) = handle
            .join_timeout(LONG)
            .unwrap_or_else(|error| panic!("{threads} threads: {error:?} (deadlock?)"));
        assert_eq!(len, threads);
        assert_eq!(ran_here, 1, "the calling worker ran its own share");
    }
}

#[test]
fn concurrent_broadcasts_from_inside_pool_jobs_complete() {
    let pool = Arc::new(
        WorkerPool::builder()
            .core_threads(2)
            .drop_timeout(Duration::from_secs(1))
            .build()
            .unwrap(),
    );
    let handles: Vec<_> = (0..20)
        .map(|_| {
            let inner = pool.clone();
            pool.submit(move || inner.broadcast(|ctx| ctx.num_workers()).len())
                .unwrap()
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.join_timeout(LONG).expect("no deadlock"), 2);
    }
}

#[test]
fn a_panic_in_one_run_is_reported_for_that_index_only() {
    let pool = WorkerPool::new(3).unwrap();
    let results = pool.broadcast(|ctx| {
        if ctx.index() == 1 {
            panic!("worker one fails");
        }
        ctx.index() * 10
    });
    assert_eq!(results.len(), 3);
    assert_eq!(results[0].as_ref().unwrap(), &0);
    assert_eq!(
        results[1].as_ref().unwrap_err().panic_message(),
        Some("worker one fails")
    );
    assert_eq!(results[2].as_ref().unwrap(), &20);
    eventually("the panic was counted", || pool.stats().panicked == 1);
    assert_eq!(pool.stats().threads, 3, "the worker survived");
    pool.shutdown();
    assert!(pool.await_termination(LONG));
    assert_eq!(pool.stats().panicked, 1);
}

#[test]
fn broadcast_waits_for_busy_workers() {
    let pool = Arc::new(WorkerPool::new(2).unwrap());
    let gate = occupy(&pool, 1);
    let (tx, rx) = mpsc::channel();
    let broadcaster = {
        let pool = pool.clone();
        thread::spawn(move || {
            let results = pool.broadcast(|ctx| ctx.index());
            tx.send(()).unwrap();
            results.len()
        })
    };
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(50)),
        Err(mpsc::RecvTimeoutError::Timeout),
        "broadcast returned while a worker was still busy"
    );
    gate.open();
    rx.recv_timeout(LONG)
        .expect("broadcast returns once the worker is free");
    assert_eq!(broadcaster.join().unwrap(), 2);
}

#[test]
fn a_pool_without_threads_broadcasts_to_nobody() {
    let pool = WorkerPool::builder()
        .core_threads(0)
        .max_threads(2)
        .build()
        .unwrap();
    assert_eq!(pool.stats().threads, 0);
    let calls = AtomicUsize::new(0);
    let results = pool.broadcast(|_| calls.fetch_add(1, Ordering::SeqCst));
    assert!(results.is_empty());
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

/// A worker that leaves the pool right after its current job (here: `resize` shrank
/// the pool while both workers were busy) still runs the broadcast waiting in its inbox;
/// that run must be counted like any other, or the `Stats` identity breaks.
#[test]
fn a_broadcast_run_by_a_worker_on_its_way_out_is_counted() {
    let (pool, gate) = busy_pool(WorkerPool::builder(), 2);
    let pool = Arc::new(pool);
    let broadcaster = {
        let pool = pool.clone();
        thread::spawn(move || pool.broadcast(|ctx| ctx.index()))
    };
    eventually("both broadcast runs are in the workers' inboxes", || {
        pool.stats().submitted == 4
    });
    pool.resize(1, 1).unwrap();
    gate.open();
    let results = within_long("broadcast", move || broadcaster.join().unwrap());
    assert_eq!(results.len(), 2);
    assert!(results.iter().all(Result::is_ok));
    eventually("the surplus worker left", || pool.stats().threads == 1);
    pool.shutdown();
    assert!(pool.await_termination(LONG));
    let stats = pool.stats();
    assert_eq!(
        stats.completed, 4,
        "two gate jobs and two broadcast runs completed: {stats:?}"
    );
    common::assert_stats_add_up(&stats);
}

/// The counts of a worker that is leaving the pool stay in `stats()` while it runs the
/// broadcast left in its inbox: a snapshot never loses jobs that already completed.
#[test]
fn a_leaving_workers_counts_stay_visible_while_it_runs_its_last_broadcast() {
    let (pool, first_gate) = busy_pool(WorkerPool::builder(), 2);
    let pool = Arc::new(pool);
    let second_gate = common::Gate::new();
    let broadcaster = {
        let (pool, waiter) = (pool.clone(), second_gate.waiter());
        thread::spawn(move || pool.broadcast(move |_| waiter.wait()))
    };
    eventually("both broadcast runs are in the workers' inboxes", || {
        pool.stats().submitted == 4
    });
    pool.resize(1, 1).unwrap();
    first_gate.open(); // both gate jobs complete; one worker leaves, into its broadcast
    eventually("the surplus worker left", || pool.stats().threads == 1);
    let counted = common::wait_until(LONG, || pool.stats().completed == 2);
    let stats = pool.stats();
    second_gate.open();
    assert_eq!(
        within_long("broadcast", move || broadcaster.join().unwrap()).len(),
        2
    );
    assert!(
        counted,
        "both gate jobs completed, but stats() shows {stats:?} while the leaving worker \
         runs its broadcast"
    );
}
