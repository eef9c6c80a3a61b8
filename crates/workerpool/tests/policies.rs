//! Every `RejectPolicy` when the queue is full, and `Rejected::Shutdown` under every
//! policy once the pool is shut down. The queue is made full deterministically: the one
//! worker is held on a gate (and seen running), then `queue_capacity` jobs are queued.

mod common;

use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{Counter, Gate, LONG, busy_pool, rejections};
use flowbed_workerpool::{
    JobError, JoinTimeoutError, RejectPolicy, Rejected, RejectedStats, WorkerPool,
};

/// A one-thread pool with `policy`, its worker held on the gate, and its queue of
/// `capacity` filled with jobs that count on the returned counter.
fn full_pool(policy: RejectPolicy, capacity: usize) -> (WorkerPool, Gate, Counter) {
    let (pool, gate) = busy_pool(
        WorkerPool::builder()
            .queue_capacity(capacity)
            .reject_policy(policy),
        1,
    );
    let queued = Counter::new();
    for _ in 0..capacity {
        pool.execute(queued.job())
            .expect("the queue has room for its capacity");
    }
    assert_eq!(pool.stats().queued, capacity);
    (pool, gate, queued)
}

/// Opens the gate, shuts the pool down and waits until it has run everything it
/// accepted and every worker has exited (so every counter is final).
fn drain(pool: &WorkerPool, gate: &Gate) {
    gate.open();
    pool.shutdown();
    assert!(pool.await_termination(LONG), "the pool terminates");
}

const POLICIES: [RejectPolicy; 6] = [
    RejectPolicy::Abort,
    RejectPolicy::CallerRuns,
    RejectPolicy::Discard,
    RejectPolicy::DiscardOldest,
    RejectPolicy::Block {
        timeout: Some(Duration::from_millis(20)),
    },
    RejectPolicy::Block { timeout: None },
];

#[test]
fn abort_hands_the_closure_back_and_never_runs_it() {
    let (pool, gate, queued) = full_pool(RejectPolicy::Abort, 1);
    let refused = Counter::new();
    let job = refused.job();
    let back = match pool.submit(job) {
        Err(Rejected::Full(job)) => job,
        other => panic!("expected Rejected::Full, got {other:?}"),
    };
    match pool.execute(refused.job()) {
        Err(rejected @ Rejected::Full(_)) => {
            assert_eq!(rejected.to_string(), "worker pool queue is full");
            rejected.into_inner()(); // the very closure we passed in
        }
        other => panic!("expected Rejected::Full, got {other:?}"),
    }
    assert_eq!(refused.get(), 1);
    back();
    assert_eq!(refused.get(), 2);

    drain(&pool, &gate);
    assert_eq!(queued.get(), 1);
    assert_eq!(refused.get(), 2, "the pool must not have run a refused job");
    let stats = pool.stats();
    assert_eq!(stats.rejected, rejections(|r| r.aborted = 2));
    assert_eq!(stats.submitted, 2, "the gate job and the queued job");
}

#[test]
fn caller_runs_runs_the_job_on_the_submitting_thread() {
    let (pool, gate, _queued) = full_pool(RejectPolicy::CallerRuns, 1);
    let caller = thread::current().id();
    let handle = pool
        .submit(|| thread::current().id())
        .expect("CallerRuns accepts");
    assert!(
        handle.is_finished(),
        "the job ran before submit returned, so its handle is finished"
    );
    assert_eq!(handle.join().unwrap(), caller);

    let (tx, rx) = mpsc::channel();
    pool.execute(move || tx.send(thread::current().id()).unwrap())
        .expect("CallerRuns accepts");
    assert_eq!(rx.try_recv().unwrap(), caller);

    let stats = pool.stats();
    assert_eq!(stats.rejected, rejections(|r| r.caller_runs = 2));
    assert_eq!(
        stats.submitted, 2,
        "jobs run on the caller are not submitted"
    );
    drain(&pool, &gate);
}

#[test]
fn caller_runs_reports_a_panic_through_the_handle() {
    let (pool, gate, _queued) = full_pool(RejectPolicy::CallerRuns, 1);
    let handle = pool
        .submit(|| -> u8 { panic!("caller-side boom") })
        .expect("CallerRuns accepts");
    let error = handle.join().unwrap_err();
    assert_eq!(error.panic_message(), Some("caller-side boom"));
    drain(&pool, &gate);
}

#[test]
fn discard_drops_the_new_job_and_its_handle_says_discarded() {
    let (pool, gate, queued) = full_pool(RejectPolicy::Discard, 1);
    let dropped = Counter::new();
    let job = dropped.job();
    let handle = pool.submit(job).expect("Discard accepts the call");
    assert!(handle.is_finished());
    assert_eq!(handle.join().unwrap_err(), JobError::Discarded);
    pool.execute(dropped.job())
        .expect("Discard accepts the call");

    drain(&pool, &gate);
    assert_eq!(dropped.get(), 0, "a discarded job never runs");
    assert_eq!(queued.get(), 1, "the queued job is untouched");
    let stats = pool.stats();
    assert_eq!(stats.rejected, rejections(|r| r.discarded = 2));
    assert_eq!(stats.submitted, 2);
    assert_eq!(stats.completed, 2);
}

#[test]
fn discard_oldest_drops_the_oldest_queued_job_and_queues_the_new_one() {
    let (pool, gate) = busy_pool(
        WorkerPool::builder()
            .queue_capacity(2)
            .reject_policy(RejectPolicy::DiscardOldest),
        1,
    );
    let ran = Arc::new(std::sync::Mutex::new(Vec::new()));
    let job = |n: u32| {
        let ran = ran.clone();
        move || {
            ran.lock().unwrap().push(n);
            n
        }
    };
    let first = pool.submit(job(1)).unwrap();
    let second = pool.submit(job(2)).unwrap();
    assert_eq!(pool.stats().queued, 2);

    let third = pool
        .submit(job(3))
        .expect("DiscardOldest accepts the new job");
    assert!(first.is_finished(), "the oldest job was dropped at once");
    assert_eq!(first.join().unwrap_err(), JobError::Discarded);
    assert!(!second.is_finished());
    assert_eq!(pool.stats().queued, 2, "one out, one in");

    let fourth = pool.submit(job(4)).unwrap();
    assert!(matches!(
        second.join_timeout(Duration::ZERO),
        Err(JoinTimeoutError::Job(JobError::Discarded))
    ));

    gate.open();
    assert_eq!(third.join().unwrap(), 3);
    assert_eq!(fourth.join().unwrap(), 4);
    assert_eq!(
        *ran.lock().unwrap(),
        vec![3, 4],
        "the dropped jobs never ran"
    );
    drain(&pool, &gate);
    let stats = pool.stats();
    assert_eq!(stats.rejected, rejections(|r| r.discarded_oldest = 2));
    common::assert_stats_add_up(&stats);
}

#[test]
fn block_with_a_short_timeout_gives_up_with_rejected_timeout() {
    let policy = RejectPolicy::Block {
        timeout: Some(Duration::from_millis(30)),
    };
    let (pool, gate, _queued) = full_pool(policy, 1);
    let refused = Counter::new();
    let back = match pool.submit(refused.job()) {
        Err(Rejected::Timeout(job)) => job,
        other => panic!("expected Rejected::Timeout, got {other:?}"),
    };
    match pool.execute(refused.job()) {
        Err(Rejected::Timeout(_)) => {}
        other => panic!("expected Rejected::Timeout, got {other:?}"),
    }
    back();
    drain(&pool, &gate);
    assert_eq!(
        refused.get(),
        1,
        "only the handed-back closure ran, on the caller"
    );
    assert_eq!(pool.stats().rejected, rejections(|r| r.timed_out = 2));
}

/// Submits on another thread under a `Block` policy and checks it waits until the gate
/// opens, then succeeds.
fn block_waits_for_room(timeout: Option<Duration>) {
    let (pool, gate, _queued) = full_pool(RejectPolicy::Block { timeout }, 1);
    let pool = Arc::new(pool);
    let (tx, rx) = mpsc::channel();
    let submitter = {
        let pool = pool.clone();
        thread::spawn(move || {
            let handle = pool.submit(|| 42);
            tx.send(()).unwrap();
            handle.map_err(|rejected| format!("{rejected:?}"))
        })
    };
    // Nothing can make room while the worker is held: the submitter must still wait.
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(100)),
        Err(mpsc::RecvTimeoutError::Timeout),
        "Block returned while the queue was full"
    );
    gate.open();
    rx.recv_timeout(LONG)
        .expect("the blocked submit returns once there is room");
    let handle = submitter
        .join()
        .unwrap()
        .expect("accepted once room appeared");
    assert_eq!(handle.join().unwrap(), 42);
    assert_eq!(pool.stats().rejected, RejectedStats::default());
}

#[test]
fn block_without_timeout_waits_until_there_is_room() {
    block_waits_for_room(None);
}

#[test]
fn block_with_a_long_timeout_succeeds_once_there_is_room() {
    block_waits_for_room(Some(LONG));
}

#[test]
fn a_blocked_submitter_is_refused_when_the_pool_shuts_down() {
    let (pool, gate, _queued) = full_pool(RejectPolicy::Block { timeout: None }, 1);
    let pool = Arc::new(pool);
    let refused = Counter::new();
    let (tx, rx) = mpsc::channel();
    let submitter = {
        let (pool, job) = (pool.clone(), refused.job());
        thread::spawn(move || {
            let result = match pool.submit(job) {
                Err(Rejected::Shutdown(job)) => Ok(job),
                other => Err(format!("{other:?}")),
            };
            tx.send(()).unwrap();
            result
        })
    };
    // Give the submitter time to block (it is refused with Shutdown either way).
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(50)),
        Err(mpsc::RecvTimeoutError::Timeout),
        "Block returned while the queue was full"
    );
    pool.shutdown();
    let back = common::within_long("the blocked submit", move || submitter.join().unwrap())
        .expect("a blocked submit is refused with Shutdown");
    drop(gate);
    assert!(pool.await_termination(LONG));
    assert_eq!(refused.get(), 0, "the refused job never ran");
    back();
    assert_eq!(refused.get(), 1);
    assert_eq!(pool.stats().rejected.shutdown, 1);
}

#[test]
fn every_policy_refuses_with_shutdown_once_the_pool_is_shut_down() {
    for policy in POLICIES {
        let pool = WorkerPool::builder()
            .core_threads(1)
            .queue_capacity(1)
            .reject_policy(policy)
            .build()
            .unwrap();
        pool.shutdown();
        let refused = Counter::new();
        match pool.submit(refused.job()) {
            Err(rejected @ Rejected::Shutdown(_)) => {
                assert_eq!(rejected.to_string(), "worker pool is shut down");
                rejected.into_inner()();
            }
            other => panic!("{policy:?}: expected Rejected::Shutdown, got {other:?}"),
        }
        match pool.execute(refused.job()) {
            Err(Rejected::Shutdown(job)) => drop(job),
            other => panic!("{policy:?}: expected Rejected::Shutdown, got {other:?}"),
        }
        assert!(pool.await_termination(LONG), "{policy:?}");
        assert_eq!(
            refused.get(),
            1,
            "{policy:?}: only the handed-back closure ran"
        );
        let stats = pool.stats();
        assert_eq!(stats.rejected, rejections(|r| r.shutdown = 2), "{policy:?}");
        assert_eq!(stats.submitted, 0, "{policy:?}");
    }
}

#[test]
fn a_full_and_shut_down_pool_refuses_with_shutdown_under_every_policy() {
    for policy in POLICIES {
        let (pool, gate, queued) = full_pool(policy, 1);
        pool.shutdown();
        let refused = Counter::new();
        let caller_ran = Counter::new();
        match pool.submit({
            let job = refused.job();
            let caller_ran = caller_ran.clone();
            move || {
                caller_ran.job()();
                job()
            }
        }) {
            Err(Rejected::Shutdown(_)) => {}
            other => panic!("{policy:?}: expected Rejected::Shutdown, got {other:?}"),
        }
        assert_eq!(
            caller_ran.get(),
            0,
            "{policy:?}: nothing runs on the caller"
        );
        assert_eq!(pool.stats().queued, 1, "{policy:?}: the queued job is kept");
        gate.open();
        assert!(pool.await_termination(LONG), "{policy:?}");
        assert_eq!(
            queued.get(),
            1,
            "{policy:?}: shutdown still runs queued jobs"
        );
        assert_eq!(refused.get(), 0, "{policy:?}");
        let stats = pool.stats();
        assert_eq!(stats.rejected, rejections(|r| r.shutdown = 1), "{policy:?}");
        common::assert_stats_add_up(&stats);
    }
}

/// `Block` documents that a worker submitting to its own full pool runs the job itself
/// (counted as `caller_runs`) rather than waiting for room only it could make.
#[test]
fn a_block_submit_from_the_pools_own_worker_runs_the_job_there_instead_of_waiting() {
    let pool = Arc::new(
        WorkerPool::builder()
            .core_threads(1)
            .queue_capacity(1)
            .reject_policy(RejectPolicy::Block { timeout: None })
            .drop_timeout(Duration::from_secs(1))
            .build()
            .unwrap(),
    );
    let inner = pool.clone();
    let outer = pool
        .submit(move || {
            let worker = thread::current().id();
            let queued = inner.submit(|| thread::current().id()).unwrap(); // fills the queue
            let overflow = inner.submit(|| thread::current().id()).unwrap(); // full
            (worker, overflow.join().unwrap(), queued)
        })
        .unwrap();
    let (worker, overflow_ran_on, queued) = outer
        .join_timeout(LONG)
        .expect("the worker did not wait for room only it could make");
    assert_eq!(overflow_ran_on, worker);
    assert_eq!(queued.join_timeout(LONG).unwrap(), worker);
    assert_eq!(pool.stats().rejected, rejections(|r| r.caller_runs = 1));
}
