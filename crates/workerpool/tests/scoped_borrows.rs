//! The one `unsafe` in this crate erases the lifetime of scoped jobs. These tests drive
//! every path a scoped job can take (run by a worker, run on the caller, dropped unrun by
//! `shutdown_now`, broadcast) with borrowed data, and run under miri (`ci/miri.sh`),
//! which would flag any use of a borrow after its scope ended.

use std::sync::atomic::{AtomicUsize, Ordering};

use flowbed_workerpool::{JobError, WorkerPool};

#[test]
fn scoped_jobs_write_into_borrowed_stack_data() {
    let pool = WorkerPool::new(2).unwrap();
    let mut halves = [Vec::new(), Vec::new()];
    let input: Vec<u32> = (0..8).collect();
    let (left, right) = halves.split_at_mut(1);
    pool.scope(|s| {
        s.spawn(|| left[0].extend(input[..4].iter().map(|n| n * 10)));
        s.spawn(|| right[0].extend(input[4..].iter().map(|n| n * 10)));
    });
    assert_eq!(halves[0], [0, 10, 20, 30]);
    assert_eq!(halves[1], [40, 50, 60, 70]);
}

#[test]
fn scoped_results_borrow_from_the_environment() {
    let pool = WorkerPool::new(1).unwrap();
    let text = String::from("borrowed text");
    let words = pool.scope(|s| {
        let handle = s.spawn(|| text.split(' ').collect::<Vec<&str>>());
        handle.join().unwrap()
    });
    assert_eq!(words, ["borrowed", "text"]);
}

#[test]
fn scoped_jobs_on_a_shut_down_pool_run_on_the_caller() {
    let pool = WorkerPool::new(1).unwrap();
    pool.shutdown();
    let caller = std::thread::current().id();
    let mut ran_on = None;
    pool.scope(|s| {
        s.spawn(|| ran_on = Some(std::thread::current().id()));
    });
    assert_eq!(ran_on, Some(caller));
}

#[test]
fn a_scoped_job_taken_back_by_shutdown_now_is_dropped_before_the_scope_ends() {
    let pool = WorkerPool::new(1).unwrap();
    let gate = std::sync::Barrier::new(2);
    let counted = AtomicUsize::new(0);
    pool.scope(|s| {
        // Occupy the only worker, then queue a borrowing job behind it.
        let blocker = s.spawn(|| {
            gate.wait();
        });
        while pool.stats().active == 0 {
            std::thread::yield_now();
        }
        let queued = s.spawn(|| counted.fetch_add(1, Ordering::SeqCst));
        let returned = pool.shutdown_now();
        assert_eq!(returned.len(), 1);
        drop(returned);
        assert!(matches!(queued.join(), Err(JobError::Discarded)));
        gate.wait();
        blocker.join().unwrap();
    });
    assert_eq!(counted.load(Ordering::SeqCst), 0);
}

#[test]
fn broadcast_borrows_its_closure_and_environment() {
    let pool = WorkerPool::new(2).unwrap();
    let seen = AtomicUsize::new(0);
    let results = pool.broadcast(|ctx| {
        seen.fetch_add(1, Ordering::SeqCst);
        ctx.index() * 100
    });
    let mut indices: Vec<usize> = results.into_iter().map(Result::unwrap).collect();
    indices.sort_unstable();
    assert_eq!(indices, [0, 100]);
    assert_eq!(seen.load(Ordering::SeqCst), 2);
}
