//! `Stats`: every counter in a scripted run with known outcomes, the identity the
//! counters satisfy once the pool is quiet, and build-time configuration errors.

mod common;

use common::{Counter, LONG, assert_stats_add_up, busy_pool, eventually, occupy, rejections};
use flowbed_workerpool::{ConfigError, MAX_QUEUE_CAPACITY, RejectPolicy, WorkerPool};

#[test]
fn a_frozen_pool_reports_its_queued_active_and_thread_counts() {
    let (pool, gate) = busy_pool(WorkerPool::builder(), 2);
    for _ in 0..3 {
        pool.execute(|| ()).unwrap();
    }
    let stats = pool.stats();
    assert_eq!(stats.active, 2);
    assert_eq!(stats.queued, 3);
    assert_eq!(stats.threads, 2);
    assert_eq!(stats.peak_threads, 2);
    assert_eq!(stats.submitted, 5);
    assert_eq!(stats.completed, 0);
    assert_stats_add_up(&stats);
    gate.open();
    pool.shutdown();
    assert!(pool.await_termination(LONG));
    let stats = pool.stats();
    assert_eq!(stats.completed, 5);
    assert_stats_add_up(&stats);
}

#[test]
fn every_outcome_lands_in_exactly_one_counter() {
    let (pool, gate) = busy_pool(
        WorkerPool::builder()
            .queue_capacity(4)
            .reject_policy(RejectPolicy::DiscardOldest),
        1,
    );
    let ran = Counter::new();
    let dropped_oldest = pool.submit(|| -> u8 { panic!("never runs") }).unwrap();
    pool.execute(ran.job()).unwrap();
    let cancelled = pool.submit(ran.job()).unwrap();
    pool.execute(ran.job()).unwrap();
    assert!(cancelled.cancel());
    pool.execute(ran.job()).unwrap(); // full: drops the oldest (the panicking job)
    assert!(dropped_oldest.join().is_err());
    gate.open();
    eventually("the queue drained", || pool.stats().queued == 0);
    let panicked = pool.submit(|| -> u8 { panic!("counted") }).unwrap();
    assert!(panicked.join().unwrap_err().is_panic());
    eventually("the pool is idle", || pool.stats().active == 0);

    let second_gate = occupy(&pool, 1);
    for _ in 0..2 {
        pool.execute(ran.job()).unwrap();
    }
    let returned = pool.shutdown_now();
    assert_eq!(returned.len(), 2);
    drop(returned);
    second_gate.open();
    assert!(pool.await_termination(LONG));

    assert_eq!(ran.get(), 3);
    let stats = pool.stats();
    assert_eq!(stats.submitted, 10, "{stats:#?}");
    assert_eq!(stats.completed, 5, "two gate jobs and three counting jobs");
    assert_eq!(stats.panicked, 1);
    assert_eq!(stats.cancelled, 1);
    assert_eq!(stats.returned_by_shutdown_now, 2);
    assert_eq!(stats.rejected, rejections(|r| r.discarded_oldest = 1));
    assert_eq!((stats.queued, stats.active, stats.threads), (0, 0, 0));
    assert_eq!(stats.peak_threads, 1);
    assert_stats_add_up(&stats);
}

#[test]
fn jobs_refused_or_run_on_the_caller_are_not_counted_as_submitted() {
    for (policy, expected) in [
        (RejectPolicy::Abort, rejections(|r| r.aborted = 1)),
        (RejectPolicy::CallerRuns, rejections(|r| r.caller_runs = 1)),
        (RejectPolicy::Discard, rejections(|r| r.discarded = 1)),
        (
            RejectPolicy::Block {
                timeout: Some(std::time::Duration::from_millis(1)),
            },
            rejections(|r| r.timed_out = 1),
        ),
    ] {
        let (pool, gate) = busy_pool(
            WorkerPool::builder()
                .queue_capacity(1)
                .reject_policy(policy),
            1,
        );
        pool.execute(|| ()).unwrap();
        let _ = pool.execute(|| ());
        pool.shutdown();
        let _ = pool.execute(|| ());
        gate.open();
        assert!(pool.await_termination(LONG));
        let stats = pool.stats();
        let mut expected = expected;
        expected.shutdown = 1;
        assert_eq!(stats.rejected, expected, "{policy:?}");
        assert_eq!(stats.rejected.total(), 2, "{policy:?}");
        assert_eq!(
            stats.submitted, 2,
            "{policy:?}: the gate job and the queued job"
        );
        assert_eq!(stats.completed, 2, "{policy:?}");
        assert_stats_add_up(&stats);
    }
}

#[track_caller]
fn assert_invalid(result: Result<WorkerPool, ConfigError>, field: &str) {
    let error = match result {
        Err(error) => error,
        Ok(pool) => panic!("expected Invalid({field}), got a pool: {pool:?}"),
    };
    match &error {
        ConfigError::Invalid { field: named, .. } => assert_eq!(*named, field),
        other => panic!("expected Invalid({field}), got {other:?}"),
    }
    let text = error.to_string();
    assert!(
        text.starts_with(&format!("invalid worker pool setting `{field}`: ")),
        "{text}"
    );
}

#[test]
fn invalid_settings_are_refused_at_build_time_naming_the_field() {
    assert_invalid(WorkerPool::builder().max_threads(0).build(), "max_threads");
    assert_invalid(
        WorkerPool::builder().core_threads(0).max_threads(0).build(),
        "max_threads",
    );
    assert_invalid(WorkerPool::new(0), "max_threads");
    assert_invalid(
        WorkerPool::builder().core_threads(3).max_threads(2).build(),
        "core_threads",
    );
    assert_invalid(
        WorkerPool::builder()
            .core_threads(1)
            .queue_capacity(0)
            .build(),
        "queue_capacity",
    );
    assert_invalid(
        WorkerPool::builder()
            .core_threads(1)
            .queue_capacity(MAX_QUEUE_CAPACITY + 1)
            .build(),
        "queue_capacity",
    );
}

#[test]
fn the_edges_of_the_valid_settings_build() {
    let pool = WorkerPool::builder()
        .core_threads(1)
        .queue_capacity(MAX_QUEUE_CAPACITY)
        .build()
        .unwrap();
    assert_eq!(pool.queue_capacity(), MAX_QUEUE_CAPACITY);
    let pool = WorkerPool::builder()
        .core_threads(2)
        .max_threads(2)
        .queue_capacity(1)
        .build()
        .unwrap();
    assert_eq!(pool.thread_limits(), (2, 2));
    assert_eq!(pool.queue_capacity(), 1);
    let pool = WorkerPool::builder().max_threads(1).build().unwrap();
    assert_eq!(pool.thread_limits(), (1, 1), "core follows a lower max");
}
