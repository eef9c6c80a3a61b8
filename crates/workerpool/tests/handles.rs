//! `JobHandle`: `join`, `join_timeout`, `.await` on tokio and on `futures`' executor,
//! `cancel` before and after the job starts, `is_finished`, and detaching by drop.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::{Counter, LONG, busy_pool, eventually, occupy};
use flowbed_workerpool::{JobError, JoinTimeoutError, RejectPolicy, WorkerPool};

#[test]
fn join_returns_the_jobs_value() {
    let pool = WorkerPool::new(2).unwrap();
    let handle = pool.submit(|| String::from("parsed")).unwrap();
    assert_eq!(handle.join().unwrap(), "parsed");
}

#[test]
fn join_timeout_hands_the_handle_back_and_a_later_join_gets_the_value() {
    let (pool, gate) = busy_pool(WorkerPool::builder(), 1);
    let handle = pool.submit(|| 7).unwrap();
    let handle = match handle.join_timeout(Duration::from_millis(10)) {
        Err(error @ JoinTimeoutError::Timeout(_)) => {
            assert_eq!(error.to_string(), "job did not finish in time");
            error
                .into_handle()
                .expect("a timeout gives the handle back")
        }
        other => panic!("expected a timeout while the job is queued, got {other:?}"),
    };
    assert!(!handle.is_finished());
    // A second timed wait on the same handle also times out, and still hands it back.
    let handle = handle
        .join_timeout(Duration::ZERO)
        .unwrap_err()
        .into_handle()
        .unwrap();
    gate.open();
    assert_eq!(handle.join().unwrap(), 7);
    drop(pool);
}

#[test]
fn join_timeout_returns_the_value_or_the_jobs_error() {
    let pool = WorkerPool::new(1).unwrap();
    let ok = pool.submit(|| 5).unwrap();
    assert_eq!(ok.join_timeout(LONG).unwrap(), 5);

    let bad = pool.submit(|| -> u8 { panic!("bad event") }).unwrap();
    match bad.join_timeout(LONG) {
        Err(JoinTimeoutError::Job(error)) => {
            assert_eq!(error.panic_message(), Some("bad event"));
        }
        other => panic!("expected the job's panic, got {other:?}"),
    }
}

#[test]
fn a_handle_resolves_when_awaited_on_a_current_thread_tokio_runtime() {
    let pool = WorkerPool::new(2).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let gate = common::Gate::new();
    let held = pool.submit(|| 1).unwrap();
    let waiter = gate.waiter();
    let blocked = pool
        .submit(move || {
            waiter.wait();
            2
        })
        .unwrap();
    runtime.block_on(async {
        // The job is held: the handle must be pending, and the runtime must be woken
        // from the worker thread when it finishes.
        let mut blocked = blocked;
        assert!(futures::poll!(&mut blocked).is_pending());
        gate.open();
        let two = tokio::time::timeout(LONG, blocked)
            .await
            .expect("woken when the job finished");
        assert_eq!(two.unwrap(), 2);
        assert_eq!(held.await.unwrap(), 1);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_handles_resolve_when_awaited_together_on_tokio() {
    let pool = WorkerPool::new(2).unwrap();
    let handles: Vec<_> = (0..200u64)
        .map(|n| pool.submit(move || n * 3).unwrap())
        .collect();
    let tasks: Vec<_> = handles.into_iter().map(tokio::spawn).collect();
    let mut total = 0;
    for task in tasks {
        total += tokio::time::timeout(LONG, task)
            .await
            .expect("every handle resolves")
            .unwrap()
            .unwrap();
    }
    assert_eq!(total, 3 * (0..200).sum::<u64>());
}

#[test]
fn a_handle_resolves_under_futures_block_on() {
    let pool = WorkerPool::new(1).unwrap();
    let gate = occupy(&pool, 1);
    let waiter = gate.waiter();
    let handle = pool
        .submit(move || {
            waiter.wait();
            "done"
        })
        .unwrap();
    let opener = std::thread::spawn(move || gate.open());
    let value = common::within_long("block_on(handle)", move || {
        futures::executor::block_on(handle)
    });
    assert_eq!(value.unwrap(), "done");
    opener.join().unwrap();

    let err = futures::executor::block_on(pool.submit(|| -> u8 { panic!("async boom") }).unwrap());
    assert_eq!(err.unwrap_err().panic_message(), Some("async boom"));
}

#[test]
fn cancel_before_start_means_the_job_never_runs() {
    let (pool, gate) = busy_pool(WorkerPool::builder(), 1);
    let counter = Counter::new();
    let job = counter.job();
    let handle = pool.submit(job).unwrap();
    assert!(!handle.is_finished());
    assert!(handle.cancel(), "a queued job can be cancelled");
    assert!(
        handle.is_finished(),
        "a cancelled handle is finished at once"
    );
    assert!(!handle.cancel(), "cancelling twice does nothing");
    let later = pool.submit(counter.job()).unwrap();

    gate.open();
    later.join().unwrap();
    assert_eq!(handle.join().unwrap_err(), JobError::Cancelled);
    eventually("the worker skipped the cancelled job", || {
        pool.stats().cancelled == 1
    });
    assert_eq!(counter.get(), 1, "only the job that was not cancelled ran");
    pool.shutdown();
    assert!(pool.await_termination(LONG));
    let stats = pool.stats();
    assert_eq!(stats.completed, 2, "the gate job and the later job");
    common::assert_stats_add_up(&stats);
}

#[test]
fn a_cancelled_job_still_holds_its_queue_slot_until_a_worker_skips_it() {
    let (pool, gate) = busy_pool(
        WorkerPool::builder()
            .queue_capacity(1)
            .reject_policy(RejectPolicy::Abort),
        1,
    );
    let counter = Counter::new();
    let handle = pool.submit(counter.job()).unwrap();
    assert!(handle.cancel());
    // Cancelling does not free room (the entry stays queued until a worker drops it).
    assert!(pool.execute(counter.job()).is_err());
    gate.open();
    eventually("the cancelled entry left the queue", || {
        pool.stats().queued == 0
    });
    pool.execute(counter.job()).unwrap();
    pool.shutdown();
    assert!(pool.await_termination(LONG));
    assert_eq!(counter.get(), 1);
    assert_eq!(pool.stats().cancelled, 1);
}

#[test]
fn cancel_after_start_returns_false_and_the_job_completes() {
    let pool = WorkerPool::new(1).unwrap();
    let gate = common::Gate::new();
    let waiter = gate.waiter();
    let (started_tx, started_rx) = mpsc::channel();
    let handle = pool
        .submit(move || {
            started_tx.send(()).unwrap();
            waiter.wait();
            99
        })
        .unwrap();
    started_rx.recv_timeout(LONG).expect("the job started");
    assert!(!handle.cancel(), "a running job cannot be cancelled");
    assert!(!handle.is_finished());
    gate.open();
    assert_eq!(handle.join().unwrap(), 99);
    assert_eq!(pool.stats().cancelled, 0);
}

#[test]
fn cancel_after_finish_returns_false_and_keeps_the_value() {
    let pool = WorkerPool::new(1).unwrap();
    let handle = pool.submit(|| 3).unwrap();
    eventually("the job finished", || handle.is_finished());
    assert!(!handle.cancel());
    assert_eq!(handle.join().unwrap(), 3);
}

#[test]
fn is_finished_turns_true_only_when_the_result_is_ready() {
    let (pool, gate) = busy_pool(WorkerPool::builder(), 1);
    let handle = pool.submit(|| 1).unwrap();
    assert!(!handle.is_finished(), "queued behind the held worker");
    assert_eq!(format!("{handle:?}"), "JobHandle { finished: false }");
    gate.open();
    eventually("the job finished", || handle.is_finished());
    assert_eq!(format!("{handle:?}"), "JobHandle { finished: true }");
    // `join` on a finished handle returns at once with the value.
    assert_eq!(handle.join_timeout(Duration::ZERO).unwrap(), 1);
}

#[test]
fn dropping_a_handle_detaches_the_job_which_still_runs() {
    let pool = WorkerPool::new(1).unwrap();
    let counter = Counter::new();
    drop(pool.submit(counter.job()).unwrap());
    pool.shutdown();
    assert!(pool.await_termination(LONG));
    assert_eq!(counter.get(), 1);
    assert_eq!(pool.stats().completed, 1);
}
