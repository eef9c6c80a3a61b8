//! Thread scaling: growth from `core_threads` to `max_threads` under either `Growth`,
//! keep-alive retirement back to `core_threads`, `resize`, a pool with no core threads,
//! thread names and the start/stop hooks.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::{Counter, Gate, LONG, eventually, occupy, wait_until};
use flowbed_workerpool::{ConfigError, Growth, RejectPolicy, Rejected, WorkerPool};

const KEEP_ALIVE: Duration = Duration::from_millis(50);

/// Submits a job that waits on `gate`.
fn held_job(pool: &WorkerPool, gate: &Gate) -> Result<(), Rejected<impl FnOnce()>> {
    let waiter = gate.waiter();
    pool.execute(move || waiter.wait())
}

/// Waits until the pool is back at `core` threads, checking it never dips below.
fn assert_returns_to(pool: &WorkerPool, core: usize) {
    let mut lowest = usize::MAX;
    let settled = wait_until(LONG, || {
        let threads = pool.stats().threads;
        lowest = lowest.min(threads);
        threads == core
    });
    assert!(
        settled,
        "still {} threads, expected {core}",
        pool.stats().threads
    );
    assert!(
        lowest >= core,
        "the pool dipped to {lowest} threads, below core {core}"
    );
}

#[test]
fn queue_first_adds_threads_only_when_the_queue_is_full_and_retires_them_when_idle() {
    let pool = WorkerPool::builder()
        .core_threads(1)
        .max_threads(3)
        .queue_capacity(2)
        .reject_policy(RejectPolicy::Abort)
        .keep_alive(KEEP_ALIVE)
        .build()
        .unwrap();
    let gate = occupy(&pool, 1);

    held_job(&pool, &gate).unwrap();
    held_job(&pool, &gate).unwrap();
    let stats = pool.stats();
    assert_eq!((stats.threads, stats.queued), (1, 2), "queued, not grown");

    held_job(&pool, &gate).unwrap();
    assert_eq!(
        pool.stats().threads,
        2,
        "the queue was full: a thread was added"
    );
    held_job(&pool, &gate).unwrap();
    assert_eq!(pool.stats().threads, 3);
    assert!(
        matches!(held_job(&pool, &gate), Err(Rejected::Full(_))),
        "at max_threads with a full queue, Abort refuses"
    );
    let stats = pool.stats();
    assert_eq!((stats.threads, stats.peak_threads, stats.queued), (3, 3, 2));

    gate.open();
    assert_returns_to(&pool, 1);
    assert_eq!(pool.stats().peak_threads, 3);
    assert_eq!(
        pool.submit(|| 1).unwrap().join().unwrap(),
        1,
        "the core thread still works"
    );
    eventually("all jobs counted", || pool.stats().completed == 6);
}

#[test]
fn threads_first_adds_a_thread_whenever_no_worker_is_idle() {
    // Start at max 1 so the gate job cannot be given a thread of its own, then raise it.
    let pool = WorkerPool::builder()
        .core_threads(1)
        .max_threads(1)
        .queue_capacity(10)
        .growth(Growth::ThreadsFirst)
        .keep_alive(KEEP_ALIVE)
        .build()
        .unwrap();
    let gate = occupy(&pool, 1);
    pool.resize(1, 3).unwrap();

    held_job(&pool, &gate).unwrap();
    let stats = pool.stats();
    assert_eq!((stats.threads, stats.queued), (2, 0), "grown, not queued");
    held_job(&pool, &gate).unwrap();
    assert_eq!(pool.stats().threads, 3);
    held_job(&pool, &gate).unwrap();
    let stats = pool.stats();
    assert_eq!(
        (stats.threads, stats.queued),
        (3, 1),
        "at max_threads: queued"
    );

    gate.open();
    assert_returns_to(&pool, 1);
    assert_eq!(pool.stats().peak_threads, 3);
}

#[test]
fn threads_first_does_not_add_threads_while_a_worker_is_free() {
    // One job at a time: the one core worker is always free when the next job comes, so
    // there is never a reason to add a thread.
    let pool = WorkerPool::builder()
        .core_threads(1)
        .max_threads(4)
        .growth(Growth::ThreadsFirst)
        .build()
        .unwrap();
    for n in 0..200u32 {
        assert_eq!(pool.submit(move || n).unwrap().join().unwrap(), n);
    }
    assert_eq!(
        pool.stats().peak_threads,
        1,
        "ThreadsFirst added threads although no job ever waited for one"
    );
}

#[test]
fn resize_up_starts_core_threads_at_once() {
    let pool = WorkerPool::new(1).unwrap();
    pool.resize(3, 5).unwrap();
    assert_eq!(pool.thread_limits(), (3, 5));
    assert_eq!(pool.stats().threads, 3);
    assert_eq!(pool.broadcast(|ctx| ctx.num_workers()).len(), 3);
}

#[test]
fn resize_down_lets_running_jobs_finish_then_shrinks() {
    let pool = WorkerPool::new(3).unwrap();
    let gate = occupy(&pool, 3);
    pool.resize(1, 1).unwrap();
    assert_eq!(pool.thread_limits(), (1, 1));
    assert_eq!(pool.stats().threads, 3, "busy threads are not interrupted");
    gate.open();
    eventually("the pool shrank to one thread", || {
        pool.stats().threads == 1
    });
    eventually("the held jobs completed", || pool.stats().completed == 3);
    assert_eq!(pool.submit(|| 4).unwrap().join().unwrap(), 4);
}

#[test]
fn resize_down_retires_idle_threads() {
    let pool = WorkerPool::builder()
        .core_threads(3)
        .keep_alive(KEEP_ALIVE)
        .build()
        .unwrap();
    pool.resize(2, 2).unwrap();
    eventually("max shrank to 2", || pool.stats().threads == 2);
    pool.resize(1, 2).unwrap();
    assert_returns_to(&pool, 1);
}

#[test]
fn an_invalid_resize_is_a_typed_error_naming_the_field_and_changes_nothing() {
    let pool = WorkerPool::builder()
        .core_threads(2)
        .max_threads(4)
        .build()
        .unwrap();
    match pool.resize(0, 0) {
        Err(
            error @ ConfigError::Invalid {
                field: "max_threads",
                ..
            },
        ) => {
            assert!(error.to_string().contains("`max_threads`"), "{error}");
        }
        other => panic!("expected Invalid(max_threads), got {other:?}"),
    }
    match pool.resize(3, 2) {
        Err(
            error @ ConfigError::Invalid {
                field: "core_threads",
                ..
            },
        ) => {
            assert!(error.to_string().contains("`core_threads`"), "{error}");
        }
        other => panic!("expected Invalid(core_threads), got {other:?}"),
    }
    assert_eq!(pool.thread_limits(), (2, 4));
    assert_eq!(pool.stats().threads, 2);
}

#[test]
fn a_pool_without_core_threads_runs_jobs_and_drops_to_zero_threads_when_idle() {
    let pool = WorkerPool::builder()
        .core_threads(0)
        .keep_alive(KEEP_ALIVE)
        .build()
        .unwrap();
    assert_eq!(pool.thread_limits(), (0, 1));
    assert_eq!(pool.stats().threads, 0);
    for round in 0..3 {
        let handle = pool.submit(move || round).unwrap();
        assert_eq!(
            handle.join_timeout(LONG).expect("a thread was started"),
            round
        );
        eventually("the idle thread retired", || pool.stats().threads == 0);
    }
    let counter = Counter::new();
    pool.execute(counter.job()).unwrap();
    eventually("a detached job runs too", || counter.get() == 1);
    assert_eq!(pool.stats().peak_threads, 1);
    pool.shutdown();
    assert!(pool.await_termination(LONG));
}

#[test]
fn worker_threads_are_named_with_the_prefix_and_their_index() {
    let pool = WorkerPool::builder()
        .core_threads(2)
        .thread_name("ingest")
        .build()
        .unwrap();
    let mut names: Vec<_> = pool
        .broadcast(|_| thread::current().name().map(str::to_owned))
        .into_iter()
        .map(|result| result.unwrap().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["ingest-0", "ingest-1"]);
    let name = pool
        .submit(|| thread::current().name().map(str::to_owned))
        .unwrap();
    assert!(name.join().unwrap().unwrap().starts_with("ingest-"));
}

#[test]
fn start_and_stop_hooks_run_once_on_each_thread() {
    type Calls = Arc<Mutex<BTreeMap<usize, Vec<String>>>>;
    let starts: Calls = Arc::default();
    let stops: Calls = Arc::default();
    let record = |calls: &Calls| {
        let calls = calls.clone();
        move |index: usize| {
            let name = thread::current().name().unwrap_or("").to_owned();
            calls.lock().unwrap().entry(index).or_default().push(name);
        }
    };
    let pool = WorkerPool::builder()
        .core_threads(1)
        .max_threads(3)
        .keep_alive(KEEP_ALIVE)
        .thread_name("hooked")
        .on_thread_start(record(&starts))
        .on_thread_stop(record(&stops))
        .build()
        .unwrap();
    pool.resize(3, 3).unwrap();
    pool.resize(1, 3).unwrap(); // the two extra threads retire after the keep-alive
    eventually("two threads stopped", || stops.lock().unwrap().len() == 2);
    pool.shutdown();
    assert!(pool.await_termination(LONG));
    eventually("every thread stopped", || stops.lock().unwrap().len() == 3);

    for calls in [&starts, &stops] {
        let calls = calls.lock().unwrap();
        assert_eq!(calls.keys().copied().collect::<Vec<_>>(), [0, 1, 2]);
        for (index, names) in calls.iter() {
            assert_eq!(
                names,
                &[format!("hooked-{index}")],
                "once, on its own thread"
            );
        }
    }
}
