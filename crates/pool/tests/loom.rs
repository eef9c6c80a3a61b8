//! loom models of the pool's hand-off core (`Slots` behind its mutex, the `Wait` future and
//! `finish_put`): no lost wake-up, no double hand-out, FIFO order, cancellation and close
//! during a hand-off, and creations that never reserve more than `max_size`.
//!
//! Run with:
//! `RUSTFLAGS="--cfg flowbed_loom" LOOM_MAX_PREEMPTIONS=3 cargo test --release -p flowbed-pool --test loom`
//!
//! Every connection carries a clone of a per-iteration marker `Arc`, so a model can count
//! the connections still alive and check that each is either idle, held by a thread, or
//! closed (dropped and no longer counted open): nothing is lost inside the slots.

#![cfg(flowbed_loom)]

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering as StdOrdering};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use flowbed_pool::loom_api::{self, Checkout, Put, Slots, Wait, WaitFailed, finish_put};
use loom::future::block_on;
use loom::sync::{Arc, Mutex};
use loom::thread;

/// A connection's payload: a clone of the iteration's marker.
type Marker = std::sync::Arc<()>;
type Core = Slots<Marker, String>;
type Conn = loom_api::Conn<Marker>;

/// Runs `body` under loom with the preemption bound from `LOOM_MAX_PREEMPTIONS` (3 if
/// unset), and reports how many interleavings it explored and how long that took.
fn model(name: &str, body: impl Fn() + Send + Sync + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    let bound = builder.preemption_bound;
    let runs = std::sync::Arc::new(StdAtomicUsize::new(0));
    let counter = runs.clone();
    let start = Instant::now();
    builder.check(move || {
        counter.fetch_add(1, StdOrdering::Relaxed);
        body();
    });
    eprintln!(
        "loom {name}: {} interleavings in {:.2?} (preemption bound {bound:?})",
        runs.load(StdOrdering::Relaxed),
        start.elapsed(),
    );
}

/// A pool core of `open` connections (ids `1..=open`), all checked out and returned to
/// the caller in id order, with `max_size == min_idle == open` so nothing more is ever created.
fn core_with_all_out(open: usize, marker: &Marker) -> (Arc<Mutex<Core>>, Vec<Conn>) {
    let mut slots = Core::new(open, open, true, false);
    assert_eq!(slots.start_creates(), open);
    for id in 1..=open as u64 {
        assert!(matches!(
            slots.created(loom_api::conn(marker.clone(), id)),
            Put::Idle
        ));
    }
    let mut held: Vec<Conn> = (0..open)
        .map(|_| match slots.checkout(None) {
            Checkout::Idle(conn) => conn,
            other => panic!("expected an idle connection, got {other:?}"),
        })
        .collect();
    held.sort_by_key(loom_api::id);
    (Arc::new(Mutex::new(slots)), held)
}

/// Connections alive (not dropped) in this iteration.
fn alive(marker: &Marker) -> usize {
    std::sync::Arc::strong_count(marker) - 1
}

/// Returns a connection the way `Pooled`'s drop does: `put` under the lock, then wake or
/// close after unlocking.
fn put(slots: &Mutex<Core>, conn: Conn) {
    let put = slots.lock().unwrap().put(conn);
    finish_put(put);
}

/// Queues a caller (there is nothing idle and no room to create): its key.
fn enqueue(slots: &Mutex<Core>) -> loom_api::WaiterKey {
    match slots.lock().unwrap().checkout(None) {
        Checkout::Queued { key, creates } => {
            assert_eq!(creates, 0, "no room to create");
            key
        }
        other => panic!("expected to queue, got {other:?}"),
    }
}

/// What a `get` does: take an idle connection or queue and wait (on loom's executor).
fn checkout_and_wait(slots: &Mutex<Core>) -> Result<Conn, WaitFailed<String>> {
    let checkout = slots.lock().unwrap().checkout(None);
    match checkout {
        Checkout::Idle(conn) => Ok(conn),
        Checkout::Queued { key, creates } => {
            assert_eq!(creates, 0, "no room to create");
            block_on(Wait::new(slots, key))
        }
        Checkout::Closed => Err(WaitFailed::Closed),
    }
}

/// Polls `future` once with a waker that does nothing.
fn poll_once<F: Future>(future: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

/// Checks the core's counts once every thread is done: `open` connections, `idle` of them
/// with these ids, nobody waiting, nothing being created, and only `open` connections
/// alive.
fn assert_settled(slots: &Mutex<Core>, marker: &Marker, open: usize, idle: &[u64]) {
    let mut slots = slots.lock().unwrap();
    assert_eq!(slots.open(), open, "open count");
    let idle_now = slots.take_all_idle();
    let idle_ids: Vec<u64> = idle_now.iter().map(loom_api::id).collect();
    for conn in idle_now {
        assert!(matches!(slots.put(conn), Put::Idle), "put back in order");
    }
    assert_eq!(idle_ids, idle, "idle connections");
    assert_eq!(slots.waiting(), 0, "waiters left");
    assert_eq!(slots.creating(), 0, "creations left");
    assert_eq!(alive(marker), open, "connections alive vs open");
}

/// A connection is returned while a caller checks out and, finding nothing idle, waits:
/// the caller gets it either way (no lost wake-up: `block_on` would report a deadlock),
/// and nothing else keeps it.
#[test]
fn returned_connection_reaches_a_caller_who_waits() {
    model("returned_connection_reaches_a_caller_who_waits", || {
        let marker = Marker::new(());
        let (slots, mut held) = core_with_all_out(1, &marker);
        let returner = {
            let (slots, conn) = (slots.clone(), held.pop().unwrap());
            thread::spawn(move || put(&slots, conn))
        };
        let got = checkout_and_wait(&slots).expect("the returned connection");
        returner.join().unwrap();
        assert_eq!(loom_api::id(&got), 1);
        assert_settled(&slots, &marker, 1, &[]);
        put(&slots, got);
        assert_settled(&slots, &marker, 1, &[1]);
    });
}

/// Two connections are returned by two threads while a caller checks out: the caller gets
/// exactly one of them and the other is idle (never both handed out, never one lost).
#[test]
fn two_returns_one_caller_hand_out_exactly_once() {
    model("two_returns_one_caller_hand_out_exactly_once", || {
        let marker = Marker::new(());
        let (slots, held) = core_with_all_out(2, &marker);
        let returners: Vec<_> = held
            .into_iter()
            .map(|conn| {
                let slots = slots.clone();
                thread::spawn(move || put(&slots, conn))
            })
            .collect();
        let got = checkout_and_wait(&slots).expect("a returned connection");
        for returner in returners {
            returner.join().unwrap();
        }
        let got_id = loom_api::id(&got);
        let other = 3 - got_id;
        assert!(got_id == 1 || got_id == 2);
        assert_settled(&slots, &marker, 2, &[other]);
    });
}

/// Two callers wait (the first queued before the second checks out); two connections are
/// returned one after the other: the first waiter gets the first, the second the second.
#[test]
fn two_waiters_are_served_in_queue_order() {
    model("two_waiters_are_served_in_queue_order", || {
        let marker = Marker::new(());
        let (slots, held) = core_with_all_out(2, &marker);
        let first_key = enqueue(&slots);
        let first = {
            let slots = slots.clone();
            thread::spawn(move || block_on(Wait::new(&slots, first_key)).map(|c| loom_api::id(&c)))
        };
        let second = {
            let slots = slots.clone();
            thread::spawn(move || checkout_and_wait(&slots).map(|c| loom_api::id(&c)))
        };
        for conn in held {
            put(&slots, conn);
        }
        assert_eq!(
            first.join().unwrap().unwrap(),
            1,
            "the oldest waiter gets the first"
        );
        assert_eq!(second.join().unwrap().unwrap(), 2);
        let slots = slots.lock().unwrap();
        assert_eq!((slots.open(), slots.idle(), slots.waiting()), (2, 0, 0));
    });
}

/// The older of two waiters gives up (its `Wait`, polled zero or one times, is dropped)
/// while a connection is returned: the connection reaches the other waiter, whether it was
/// handed to the quitter first (and handed on by its drop) or not. A quitter whose poll
/// already saw the connection returns it, as its `Pooled` would.
#[test]
fn cancelled_waiter_hands_the_connection_on() {
    for polls in [0, 1] {
        model(
            &format!("cancelled_waiter_hands_the_connection_on (polls {polls})"),
            move || {
                let marker = Marker::new(());
                let (slots, mut held) = core_with_all_out(1, &marker);
                let quitter_key = enqueue(&slots);
                let stayer_key = enqueue(&slots);
                let quitter = {
                    let slots = slots.clone();
                    thread::spawn(move || {
                        let mut wait = pin!(Wait::new(&slots, quitter_key));
                        for _ in 0..polls {
                            if let Poll::Ready(got) = poll_once(wait.as_mut()) {
                                put(&slots, got.expect("a connection, not a failure"));
                                return;
                            }
                        }
                    })
                };
                let stayer = {
                    let slots = slots.clone();
                    thread::spawn(move || block_on(Wait::new(&slots, stayer_key)))
                };
                put(&slots, held.pop().unwrap());
                quitter.join().unwrap();
                let got = stayer.join().unwrap().expect("the connection, handed on");
                assert_eq!(loom_api::id(&got), 1);
                assert_settled(&slots, &marker, 1, &[]);
            },
        );
    }
}

/// The only waiter gives up (its `Wait` polled zero or one times, then dropped) while a
/// connection is returned: the connection ends idle (counted open, alive, takeable), never
/// stranded in the quitter's place.
#[test]
fn cancelled_only_waiter_leaves_the_connection_idle() {
    for polls in [0, 1] {
        model(
            &format!("cancelled_only_waiter_leaves_the_connection_idle (polls {polls})"),
            move || {
                let marker = Marker::new(());
                let (slots, mut held) = core_with_all_out(1, &marker);
                let key = enqueue(&slots);
                let quitter = {
                    let slots = slots.clone();
                    thread::spawn(move || {
                        let mut wait = pin!(Wait::new(&slots, key));
                        for _ in 0..polls {
                            if let Poll::Ready(got) = poll_once(wait.as_mut()) {
                                put(&slots, got.expect("a connection, not a failure"));
                                return;
                            }
                        }
                    })
                };
                put(&slots, held.pop().unwrap());
                quitter.join().unwrap();
                assert_settled(&slots, &marker, 1, &[1]);
                assert!(matches!(
                    slots.lock().unwrap().checkout(None),
                    Checkout::Idle(_)
                ));
            },
        );
    }
}

/// `close` races a caller who checks out (and may wait) and a connection being returned:
/// the caller gets `Closed` or the connection (which it then returns), never hangs; once
/// all is done nothing is idle, nothing is open and the connection was closed.
#[test]
fn close_races_a_waiter_and_a_return() {
    model("close_races_a_waiter_and_a_return", || {
        let marker = Marker::new(());
        let (slots, mut held) = core_with_all_out(1, &marker);
        let caller = {
            let slots = slots.clone();
            thread::spawn(move || match checkout_and_wait(&slots) {
                Ok(conn) => {
                    assert_eq!(loom_api::id(&conn), 1);
                    put(&slots, conn);
                    true
                }
                Err(WaitFailed::Closed) => false,
                Err(other) => panic!("unexpected {other:?}"),
            })
        };
        let returner = {
            let (slots, conn) = (slots.clone(), held.pop().unwrap());
            thread::spawn(move || put(&slots, conn))
        };
        let (idle, wakers) = slots.lock().unwrap().close();
        drop(idle);
        wakers.into_iter().for_each(Waker::wake);
        caller.join().unwrap();
        returner.join().unwrap();
        assert_settled(&slots, &marker, 0, &[]);
        assert!(matches!(
            slots.lock().unwrap().checkout(None),
            Checkout::Closed
        ));
    });
}

/// Two callers queue (each starting the creations `checkout` reserves for it and then
/// waiting) while maintenance asks for `min_idle`: `open + creating` never exceeds
/// `max_size`, every reserved creation turns into a connection, and each caller gets a
/// different one.
#[test]
fn concurrent_creations_stay_within_max_size() {
    const MAX: usize = 2;
    model("concurrent_creations_stay_within_max_size", || {
        let marker = Marker::new(());
        let slots = Arc::new(Mutex::new(Core::new(MAX, 1, true, false)));
        let reserved = Arc::new(loom::sync::atomic::AtomicUsize::new(0));
        let callers: Vec<_> = [10u64, 20]
            .into_iter()
            .map(|first| {
                let (slots, reserved, marker) = (slots.clone(), reserved.clone(), marker.clone());
                thread::spawn(move || {
                    let checkout = slots.lock().unwrap().checkout(None);
                    match checkout {
                        Checkout::Idle(conn) => conn,
                        Checkout::Queued { key, creates } => {
                            reserved.fetch_add(creates, loom::sync::atomic::Ordering::Relaxed);
                            check_within_max(&slots);
                            create(&slots, &marker, creates, first);
                            block_on(Wait::new(&slots, key)).expect("a connection")
                        }
                        Checkout::Closed => unreachable!(),
                    }
                })
            })
            .collect();
        let creates = slots.lock().unwrap().start_creates();
        reserved.fetch_add(creates, loom::sync::atomic::Ordering::Relaxed);
        check_within_max(&slots);
        create(&slots, &marker, creates, 30);
        let held: Vec<Conn> = callers.into_iter().map(|c| c.join().unwrap()).collect();
        assert_ne!(
            loom_api::id(&held[0]),
            loom_api::id(&held[1]),
            "one connection handed to both callers"
        );
        let reserved = reserved.load(loom::sync::atomic::Ordering::Relaxed);
        assert_eq!(reserved, MAX, "creations reserved for max_size {MAX}");
        // Both callers hold one; `min_idle` wants one more but there is no room.
        assert_settled(&slots, &marker, MAX, &[]);
    });
}

fn check_within_max(slots: &Mutex<Core>) {
    let slots = slots.lock().unwrap();
    assert!(
        slots.open() + slots.creating() <= slots.max_size(),
        "open {} + creating {} over max_size {}",
        slots.open(),
        slots.creating(),
        slots.max_size()
    );
}

/// Opens `creates` connections (numbered from `first`) as the create tasks would.
fn create(slots: &Mutex<Core>, marker: &Marker, creates: usize, first: u64) {
    for id in first..first + creates as u64 {
        let put = slots
            .lock()
            .unwrap()
            .created(loom_api::conn(marker.clone(), id));
        finish_put(put);
    }
}

/// A creation reserved for a caller fails while the caller gives up (its `Wait` polled
/// once and dropped). Without fail-fast the creator retries only while the connection is
/// still wanted; with fail-fast the error may go to the caller. Either way the room is
/// given back or used: nothing is left `creating`, and a connection made is idle.
#[test]
fn failed_creation_racing_a_quitting_caller_gives_its_room_back() {
    for fail_fast in [false, true] {
        model(
            &format!("failed_creation_racing_a_quitting_caller (fail_fast {fail_fast})"),
            move || {
                let marker = Marker::new(());
                let slots = Arc::new(Mutex::new(Core::new(1, 0, true, fail_fast)));
                let (key, creates) = match slots.lock().unwrap().checkout(None) {
                    Checkout::Queued { key, creates } => (key, creates),
                    other => panic!("expected to queue, got {other:?}"),
                };
                assert_eq!(creates, 1);
                let creator = {
                    let (slots, marker) = (slots.clone(), marker.clone());
                    thread::spawn(move || {
                        let (woken, retry) = slots
                            .lock()
                            .unwrap()
                            .create_failed(std::sync::Arc::new("refused".to_owned()));
                        if let Some(waker) = woken {
                            waker.wake();
                        }
                        // After the backoff: still wanted?
                        if retry && slots.lock().unwrap().keep_creating() {
                            let put = slots.lock().unwrap().created(loom_api::conn(marker, 1));
                            finish_put(put);
                        }
                    })
                };
                let quitter = {
                    let slots = slots.clone();
                    thread::spawn(move || {
                        let mut wait = pin!(Wait::new(&slots, key));
                        match poll_once(wait.as_mut()) {
                            Poll::Ready(Ok(conn)) => put(&slots, conn),
                            Poll::Ready(Err(WaitFailed::Create(error))) => {
                                assert!(fail_fast, "a create error without fail_fast");
                                assert_eq!(*error, "refused");
                            }
                            Poll::Ready(Err(WaitFailed::Closed)) => panic!("not closed"),
                            Poll::Pending => {}
                        }
                    })
                };
                creator.join().unwrap();
                quitter.join().unwrap();
                let open = slots.lock().unwrap().open();
                assert!(open <= 1);
                let idle: &[u64] = if open == 1 { &[1] } else { &[] };
                assert_settled(&slots, &marker, open, idle);
            },
        );
    }
}
