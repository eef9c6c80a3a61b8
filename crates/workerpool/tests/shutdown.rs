//! Stopping a pool: graceful `shutdown`, `shutdown_now` handing back queued jobs,
//! `await_termination`, and `Drop` (graceful, bounded by `drop_timeout`, never waiting
//! for itself).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use common::{Counter, Gate, LONG, busy_pool, within_long};
use flowbed_workerpool::{JobError, Rejected, WorkerPool};

#[test]
fn await_termination_is_false_before_shutdown() {
    let pool = WorkerPool::new(1).unwrap();
    assert!(!pool.await_termination(Duration::from_millis(20)));
    assert!(!pool.is_shutdown());
    assert!(!pool.is_terminated());
}

#[test]
fn shutdown_refuses_new_jobs_and_lets_queued_ones_finish() {
    let (pool, gate) = busy_pool(WorkerPool::builder(), 1);
    let counter = Counter::new();
    for _ in 0..5 {
        pool.execute(counter.job()).unwrap();
    }
    pool.shutdown();
    assert!(pool.is_shutdown());
    assert!(matches!(
        pool.execute(counter.job()),
        Err(Rejected::Shutdown(_))
    ));
    assert!(
        !pool.is_terminated(),
        "a job is still running, five are queued"
    );
    assert!(!pool.await_termination(Duration::ZERO));

    gate.open();
    assert!(pool.await_termination(LONG));
    assert!(pool.is_terminated());
    assert_eq!(counter.get(), 5, "every queued job ran");
    let stats = pool.stats();
    assert_eq!(stats.threads, 0);
    assert_eq!(stats.completed, 6);
    assert_eq!(stats.rejected.shutdown, 1);
    common::assert_stats_add_up(&stats);
}

#[test]
fn shutdown_now_returns_the_queued_jobs_oldest_first() {
    let handler_calls = Counter::new();
    let (pool, gate) = busy_pool(
        WorkerPool::builder().panic_handler({
            let calls = handler_calls.clone();
            move |_| calls.job()()
        }),
        1,
    );
    let order = Arc::new(Mutex::new(Vec::new()));
    let job = |n: u32| {
        let order = order.clone();
        move || {
            order.lock().unwrap().push(n);
            (n, thread::current().id())
        }
    };
    let first = pool.submit(job(1)).unwrap();
    let second = pool.submit(job(2)).unwrap();
    let third = pool.submit(job(3)).unwrap();
    let detached = Counter::new();
    pool.execute(detached.job()).unwrap();
    pool.execute(|| panic!("returned and run")).unwrap();

    let returned = pool.shutdown_now();
    assert!(pool.is_shutdown());
    assert_eq!(returned.len(), 5);
    assert_eq!(pool.stats().queued, 0);
    assert_eq!(pool.stats().returned_by_shutdown_now, 5);

    let mut returned = returned.into_iter();
    returned.next().unwrap().run(); // job 1: run here
    drop(returned.next().unwrap()); // job 2: dropped
    returned.next().unwrap().run(); // job 3: run here
    drop(returned.next().unwrap()); // the detached counter job: dropped
    returned.next().unwrap().run(); // the panicking detached job: to the panic handler

    let here = thread::current().id();
    assert_eq!(
        first.join().unwrap(),
        (1, here),
        "ran on the caller of run()"
    );
    assert_eq!(second.join().unwrap_err(), JobError::Discarded);
    assert_eq!(third.join().unwrap(), (3, here));
    assert_eq!(
        *order.lock().unwrap(),
        [1, 3],
        "oldest first; dropped jobs never ran"
    );
    assert_eq!(detached.get(), 0);
    assert_eq!(handler_calls.get(), 1);

    assert!(!pool.is_terminated(), "the running job is not interrupted");
    gate.open();
    assert!(pool.await_termination(LONG));
    let stats = pool.stats();
    assert_eq!(stats.completed, 1, "only the gate job ran on a worker");
    assert_eq!(stats.returned_by_shutdown_now, 5);
    common::assert_stats_add_up(&stats);
}

#[test]
fn shutdown_now_on_an_idle_pool_returns_nothing_and_terminates() {
    let pool = WorkerPool::new(2).unwrap();
    assert!(pool.shutdown_now().is_empty());
    assert!(pool.await_termination(LONG));
    assert_eq!(pool.stats().threads, 0);
    assert!(matches!(pool.submit(|| 1), Err(Rejected::Shutdown(_))));
}

#[test]
fn shutdown_now_after_shutdown_takes_what_is_still_queued() {
    let (pool, gate) = busy_pool(WorkerPool::builder(), 1);
    let counter = Counter::new();
    for _ in 0..3 {
        pool.execute(counter.job()).unwrap();
    }
    pool.shutdown();
    let returned = pool.shutdown_now();
    assert_eq!(returned.len(), 3);
    drop(returned);
    gate.open();
    assert!(pool.await_termination(LONG));
    assert_eq!(counter.get(), 0);
}

#[test]
fn dropping_the_pool_waits_for_the_queued_jobs() {
    let (pool, gate) = busy_pool(WorkerPool::builder(), 2);
    let counter = Counter::new();
    for _ in 0..50 {
        pool.execute(counter.job()).unwrap();
    }
    // Open the gate only once the drop has begun, so the jobs can only run while `drop`
    // is (or should be) waiting for them.
    let pool = Arc::new(pool);
    let watcher = {
        let weak = Arc::downgrade(&pool);
        thread::spawn(move || {
            let began = common::wait_until(LONG, || weak.upgrade().is_none());
            gate.open();
            began
        })
    };
    within_long("dropping the pool", move || drop(pool));
    assert!(watcher.join().unwrap(), "the drop began");
    assert_eq!(
        counter.get(),
        50,
        "drop returned before the queued jobs ran"
    );
}

#[test]
fn drop_timeout_bounds_drop_when_a_job_blocks() {
    let pool = WorkerPool::builder()
        .core_threads(1)
        .drop_timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    let (release, released) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel();
    let finished = Arc::new(AtomicBool::new(false));
    let blocking = pool
        .submit({
            let finished = finished.clone();
            move || {
                started_tx.send(()).unwrap();
                let _ = released.recv(); // until the test releases it (or drops `release`)
                finished.store(true, Ordering::SeqCst);
            }
        })
        .unwrap();
    started
        .recv_timeout(LONG)
        .expect("the blocking job started");
    let queued = pool.submit(|| 1).unwrap();

    within_long("dropping the pool with a blocked job", move || drop(pool));
    assert!(
        !finished.load(Ordering::SeqCst),
        "drop returned without waiting for the blocked job"
    );
    assert_eq!(
        queued.join_timeout(LONG).unwrap_err().to_string(),
        "job was discarded before it started",
        "the job still queued at the timeout is discarded"
    );
    release.send(()).unwrap();
    blocking
        .join_timeout(LONG)
        .expect("the running job finishes on its own once released");
    assert!(finished.load(Ordering::SeqCst));
}

#[test]
fn dropping_the_pool_on_its_own_worker_does_not_wait_for_itself() {
    let pool = Arc::new(WorkerPool::new(1).unwrap());
    let gate = Gate::new();
    let waiter = gate.waiter();
    let last_reference = pool.clone();
    let handle = pool
        .submit(move || {
            waiter.wait();
            // The test dropped its reference meanwhile: this drop is the pool's last.
            drop(last_reference);
            "returned"
        })
        .unwrap();
    drop(pool);
    gate.open();
    assert_eq!(
        handle
            .join_timeout(LONG)
            .expect("the worker did not wait for itself"),
        "returned"
    );
}

/// `await_termination` promises every worker thread has exited. A thread that retired
/// after its keep-alive and is still running its `on_thread_stop` hook has not.
#[test]
fn termination_waits_for_a_retiring_threads_stop_hook() {
    let (in_hook_tx, in_hook) = mpsc::channel();
    let (leave_tx, leave) = mpsc::channel::<()>();
    let (in_hook_tx, leave) = (Mutex::new(in_hook_tx), Mutex::new(leave));
    let pool = WorkerPool::builder()
        .core_threads(0)
        .keep_alive(Duration::from_millis(20))
        .on_thread_stop(move |_| {
            in_hook_tx.lock().unwrap().send(()).unwrap();
            let _ = leave.lock().unwrap().recv_timeout(LONG);
        })
        .build()
        .unwrap();
    pool.submit(|| ()).unwrap().join().unwrap();
    in_hook
        .recv_timeout(LONG)
        .expect("the idle thread retires and runs its stop hook");
    pool.shutdown();
    let terminated_while_in_hook = pool.is_terminated();
    let threads_while_in_hook = pool.stats().threads;
    leave_tx.send(()).unwrap();
    assert!(pool.await_termination(LONG));
    assert!(
        !terminated_while_in_hook,
        "is_terminated was true while a worker thread was still running its stop hook \
         (stats.threads was {threads_while_in_hook})"
    );
}
