//! `submit_async`: waits for queue room without blocking a thread, gives up cleanly when
//! dropped, and is refused once the pool shuts down. The futures are polled by hand with
//! a waker that records its wake-ups, so "pending" and "woken" are observed exactly.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

use common::{Counter, Gate, LONG, busy_pool, eventually};
use flowbed_workerpool::{Rejected, WorkerPool};
use futures::FutureExt;
use futures::task::ArcWake;

/// A waker that remembers it was woken.
#[derive(Default)]
struct WakeFlag(AtomicBool);

impl ArcWake for WakeFlag {
    fn wake_by_ref(flag: &Arc<Self>) {
        flag.0.store(true, Ordering::SeqCst);
    }
}

struct Probe {
    flag: Arc<WakeFlag>,
    waker: Waker,
}

impl Probe {
    fn new() -> Self {
        let flag = Arc::new(WakeFlag::default());
        let waker = futures::task::waker(flag.clone());
        Self { flag, waker }
    }

    fn woken(&self) -> bool {
        self.flag.0.load(Ordering::SeqCst)
    }

    fn poll<F: Future + Unpin>(&self, future: &mut F) -> Poll<F::Output> {
        self.flag.0.store(false, Ordering::SeqCst);
        Pin::new(future).poll(&mut Context::from_waker(&self.waker))
    }
}

/// A one-thread pool whose worker is held and whose one-slot queue is full.
fn full_pool() -> (WorkerPool, Gate, Counter) {
    let (pool, gate) = busy_pool(WorkerPool::builder().queue_capacity(1), 1);
    let filler = Counter::new();
    pool.execute(filler.job()).unwrap();
    (pool, gate, filler)
}

#[test]
fn submit_async_with_room_is_ready_on_the_first_poll() {
    let pool = WorkerPool::new(1).unwrap();
    let handle = pool
        .submit_async(|| 8)
        .now_or_never()
        .expect("room in the queue: no wait")
        .unwrap();
    assert_eq!(handle.join().unwrap(), 8);
}

#[test]
fn submit_async_waits_while_full_and_completes_once_room_appears() {
    let (pool, gate, filler) = full_pool();
    let probe = Probe::new();
    let counter = Counter::new();
    let mut submit = pool.submit_async({
        let job = counter.job();
        move || {
            job();
            "ran"
        }
    });
    assert!(probe.poll(&mut submit).is_pending(), "the queue is full");
    assert!(
        probe.poll(&mut submit).is_pending(),
        "still full on a second poll"
    );
    assert_eq!(pool.stats().submitted, 2, "nothing submitted yet");

    gate.open(); // the worker takes the queued job: one slot frees up
    eventually("the waiting submit was woken", || probe.woken());
    let handle = match probe.poll(&mut submit) {
        Poll::Ready(Ok(handle)) => handle,
        other => panic!("expected the job to be accepted, got {other:?}"),
    };
    assert_eq!(handle.join().unwrap(), "ran");
    assert_eq!((filler.get(), counter.get()), (1, 1));
    assert_eq!(pool.stats().rejected.total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_async_awaited_on_tokio_resumes_once_room_appears() {
    let (pool, gate, _filler) = full_pool();
    let pool = Arc::new(pool);
    let task = tokio::spawn({
        let pool = pool.clone();
        async move { pool.submit_async(|| 21 * 2).await.unwrap().await.unwrap() }
    });
    gate.open();
    let value = tokio::time::timeout(LONG, task)
        .await
        .expect("the submit resumed")
        .unwrap();
    assert_eq!(value, 42);
}

#[test]
fn dropping_a_waiting_submit_does_not_submit_the_job() {
    let (pool, gate, filler) = full_pool();
    let probe = Probe::new();
    let counter = Counter::new();
    let mut submit = pool.submit_async(counter.job());
    assert!(probe.poll(&mut submit).is_pending());
    drop(submit);

    gate.open();
    eventually("the pool is quiet", || {
        let stats = pool.stats();
        stats.active == 0 && stats.queued == 0
    });
    pool.shutdown();
    assert!(pool.await_termination(LONG));
    assert_eq!(filler.get(), 1);
    assert_eq!(counter.get(), 0, "the dropped submit's job never ran");
    let stats = pool.stats();
    assert_eq!(stats.submitted, 2, "the gate job and the filler only");
    common::assert_stats_add_up(&stats);
}

#[test]
fn a_dropped_waiting_submit_leaves_no_waiter_behind_to_take_a_wake_up() {
    let (pool, gate, _filler) = full_pool();
    let (first, second) = (Probe::new(), Probe::new());
    let mut dropped = pool.submit_async(|| 1);
    let mut waiting = pool.submit_async(|| 2);
    assert!(first.poll(&mut dropped).is_pending());
    assert!(second.poll(&mut waiting).is_pending());
    drop(dropped); // the older waiter gives up before any room appears

    gate.open(); // exactly one slot frees up: its wake-up must reach the remaining waiter
    eventually("the remaining waiter was woken", || second.woken());
    match second.poll(&mut waiting) {
        Poll::Ready(Ok(handle)) => assert_eq!(handle.join().unwrap(), 2),
        other => panic!("expected the job to be accepted, got {other:?}"),
    }
}

#[test]
fn a_woken_submit_dropped_before_it_polls_passes_the_wake_up_on() {
    let (pool, gate, _filler) = full_pool();
    let (first, second) = (Probe::new(), Probe::new());
    let mut notified = pool.submit_async(|| 1);
    let mut waiting = pool.submit_async(|| 2);
    assert!(first.poll(&mut notified).is_pending());
    assert!(second.poll(&mut waiting).is_pending());

    gate.open(); // one slot frees up; the oldest waiter is told
    eventually("the oldest waiter was woken", || first.woken());
    assert!(!second.woken(), "one slot, one wake-up");
    drop(notified); // ...but it gives up instead of using the slot
    eventually("the wake-up was passed on", || second.woken());
    match second.poll(&mut waiting) {
        Poll::Ready(Ok(handle)) => assert_eq!(handle.join().unwrap(), 2),
        other => panic!("expected the job to be accepted, got {other:?}"),
    }
}

#[test]
fn submit_async_on_a_shut_down_pool_is_refused_with_the_job() {
    let pool = WorkerPool::new(1).unwrap();
    pool.shutdown();
    let counter = Counter::new();
    match futures::executor::block_on(pool.submit_async(counter.job())) {
        Err(Rejected::Shutdown(job)) => job(),
        other => panic!("expected Rejected::Shutdown, got {other:?}"),
    }
    assert_eq!(counter.get(), 1, "the handed-back job, run here");
    let stats = pool.stats();
    assert_eq!(stats.rejected.shutdown, 1);
    assert_eq!(stats.submitted, 0);
}

#[test]
fn a_waiting_submit_is_woken_and_refused_when_the_pool_shuts_down() {
    let (pool, gate, _filler) = full_pool();
    let probe = Probe::new();
    let counter = Counter::new();
    let mut submit = pool.submit_async(counter.job());
    assert!(probe.poll(&mut submit).is_pending());
    pool.shutdown();
    eventually("shutdown woke the waiting submit", || probe.woken());
    assert!(matches!(
        probe.poll(&mut submit),
        Poll::Ready(Err(Rejected::Shutdown(_)))
    ));
    drop(gate);
    assert!(pool.await_termination(LONG));
    assert_eq!(counter.get(), 0);
}
