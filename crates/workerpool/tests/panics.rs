//! Panic isolation: a panicking job reports through its handle or the builder's
//! `panic_handler`, and the worker that ran it carries on.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::thread;

use common::{LONG, eventually};
use flowbed_workerpool::{JobError, WorkerPool};

/// The ids of the pool's worker threads (one broadcast run per worker).
fn worker_ids(pool: &WorkerPool) -> BTreeSet<String> {
    pool.broadcast(|_| format!("{:?}", thread::current().id()))
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn a_panicking_job_reports_its_message_through_the_handle() {
    let pool = WorkerPool::new(1).unwrap();

    let literal = pool
        .submit(|| -> u32 { panic!("malformed event") })
        .unwrap();
    let error = literal.join().unwrap_err();
    assert!(error.is_panic());
    assert_eq!(error.panic_message(), Some("malformed event"));
    assert_eq!(format!("{error:?}"), r#"Panicked("malformed event")"#);

    let formatted = pool
        .submit(|| -> u32 { panic!("offset {} out of range", 17) })
        .unwrap();
    let error = formatted.join().unwrap_err();
    assert_eq!(error.panic_message(), Some("offset 17 out of range"));
    assert_eq!(
        error,
        JobError::Panicked(Box::new("offset 17 out of range")),
        "panics compare by message"
    );
}

#[test]
fn a_panics_display_shows_the_panic_message() {
    let pool = WorkerPool::new(1).unwrap();
    let literal = pool.submit(|| -> u8 { panic!("malformed event") }).unwrap();
    let formatted = pool.submit(|| -> u8 { panic!("code {}", 7) }).unwrap();
    assert_eq!(
        literal.join().unwrap_err().to_string(),
        "job panicked: malformed event"
    );
    assert_eq!(
        formatted.join().unwrap_err().to_string(),
        "job panicked: code 7"
    );
}

#[test]
fn a_non_string_panic_payload_comes_back_intact() {
    let pool = WorkerPool::new(1).unwrap();
    let handle = pool
        .submit(|| -> u8 { std::panic::panic_any(42_i64) })
        .unwrap();
    let error = handle.join().unwrap_err();
    assert_eq!(error.panic_message(), None);
    assert_eq!(error.to_string(), "job panicked: <non-string payload>");
    match error {
        JobError::Panicked(payload) => assert_eq!(*payload.downcast::<i64>().unwrap(), 42),
        other => panic!("expected a panic, got {other:?}"),
    }
}

#[test]
fn workers_survive_panics_and_keep_running_jobs() {
    let pool = WorkerPool::new(2).unwrap();
    let before = worker_ids(&pool);
    assert_eq!(before.len(), 2);

    let panics: Vec<_> = (0..20)
        .map(|n| pool.submit(move || -> u32 { panic!("job {n}") }).unwrap())
        .collect();
    for (n, handle) in panics.into_iter().enumerate() {
        let message = format!("job {n}");
        assert_eq!(handle.join().unwrap_err().panic_message(), Some(&*message));
    }

    let after = pool.submit(|| "still working").unwrap();
    assert_eq!(after.join().unwrap(), "still working");
    let stats = pool.stats();
    assert_eq!(stats.threads, 2, "no thread was lost");
    assert_eq!(stats.peak_threads, 2, "and none had to be replaced");
    assert_eq!(worker_ids(&pool), before, "the same threads carry on");
}

#[test]
fn many_panics_in_a_row_are_each_counted_and_later_jobs_still_run() {
    let pool = WorkerPool::new(2).unwrap();
    let panics: Vec<_> = (0..200)
        .map(|_| pool.submit(|| -> u8 { panic!("again") }).unwrap())
        .collect();
    let oks: Vec<_> = (0..200u32)
        .map(|n| pool.submit(move || n).unwrap())
        .collect();
    for handle in panics {
        assert!(handle.join().unwrap_err().is_panic());
    }
    let total: u32 = oks.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(total, (0..200).sum());
    pool.shutdown();
    assert!(pool.await_termination(LONG));
    let stats = pool.stats();
    assert_eq!(stats.panicked, 200);
    assert_eq!(stats.completed, 200);
    common::assert_stats_add_up(&stats);
}

#[test]
fn execute_panics_reach_the_panic_handler_on_the_worker() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let pool = WorkerPool::builder()
        .core_threads(2)
        .thread_name("panicky")
        .panic_handler({
            let seen = seen.clone();
            move |payload| {
                let message = common::payload_message(&*payload).unwrap_or("?").to_owned();
                let thread = thread::current().name().unwrap_or("").to_owned();
                seen.lock().unwrap().push((message, thread));
            }
        })
        .build()
        .unwrap();
    for n in 0..3 {
        pool.execute(move || panic!("detached {n}")).unwrap();
    }
    pool.execute(|| ()).unwrap();
    eventually("the handler saw three panics", || {
        seen.lock().unwrap().len() == 3
    });

    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    let messages: Vec<_> = seen.iter().map(|(message, _)| message.as_str()).collect();
    assert_eq!(messages, ["detached 0", "detached 1", "detached 2"]);
    for (_, thread) in &seen {
        assert!(thread.starts_with("panicky-"), "handler ran on {thread:?}");
    }
    pool.shutdown();
    assert!(pool.await_termination(LONG));
    let stats = pool.stats();
    assert_eq!(stats.panicked, 3);
    assert_eq!(stats.completed, 1);
}

#[test]
fn submit_panics_do_not_reach_the_panic_handler() {
    let calls = common::Counter::new();
    let pool = WorkerPool::builder()
        .core_threads(1)
        .panic_handler({
            let calls = calls.clone();
            move |_| calls.job()()
        })
        .build()
        .unwrap();
    let handle = pool.submit(|| -> u8 { panic!("to the handle") }).unwrap();
    assert!(handle.join().unwrap_err().is_panic());
    pool.shutdown();
    assert!(pool.await_termination(LONG));
    assert_eq!(calls.get(), 0, "the payload went to the handle instead");
    assert_eq!(pool.stats().panicked, 1);
}

#[test]
fn a_panicking_panic_handler_does_not_take_the_worker_down() {
    let calls = common::Counter::new();
    let pool = WorkerPool::builder()
        .core_threads(1)
        .panic_handler({
            let calls = calls.clone();
            move |_| {
                calls.job()();
                panic!("the handler itself panics");
            }
        })
        .build()
        .unwrap();
    for _ in 0..5 {
        pool.execute(|| panic!("job")).unwrap();
    }
    assert_eq!(pool.submit(|| 1).unwrap().join().unwrap(), 1);
    assert_eq!(calls.get(), 5);
    let stats = pool.stats();
    assert_eq!(stats.threads, 1);
    assert_eq!(stats.panicked, 5);
}

#[test]
fn execute_panics_without_a_handler_are_counted_and_survived() {
    let pool = WorkerPool::new(1).unwrap();
    for _ in 0..10 {
        pool.execute(|| panic!("nobody listens")).unwrap();
    }
    assert_eq!(pool.submit(|| 2).unwrap().join().unwrap(), 2);
    let stats = pool.stats();
    assert_eq!(stats.panicked, 10);
    assert_eq!(stats.threads, 1);
}
