//! Loom models of flowbed-reactive's concurrent parts, two or three threads each:
//! * The demand counter (`Demand`/`Subscription`): two threads `request` while the
//!   publisher `take`s and waits in `poll_take_all` (driven by `loom::future::block_on`, so
//!   a lost wake-up is a loom deadlock): the publisher is granted exactly what was
//!   requested; a sum that reaches `u64::MAX` turns unbounded and stays unbounded, a sum just
//!   below it stays exact.
//! * `cancel` racing `request` and a waiting publisher: the publisher always wakes and then
//!   sees `None` for good; a publisher waiting for upstream (`wake_on_signal`) wakes too.
//! * The real `Flow::drive` publishing to the real `Flow::from_publisher` on another thread
//!   (a publisher whose `subscribe` runs the driver on a loom thread instead of a tokio
//!   task): every item arrives once, in order, then the end, with prefetch 1 and 2; a
//!   consumer that leaves mid-stream ends the driver, which drops upstream.
//! * The real async boundary (`ops/boundary.rs`) through `Flow::async_boundary_on`, its
//!   pump run on a loom thread and the consumer on the model's main thread: with rings of 1
//!   and 2 slots every item arrives once, in order, then the end (consumed in batches by
//!   `fold` and one at a time by `into_stream`); an upstream error arrives after the item
//!   emitted before it; a consumer that leaves mid-stream (the pump waiting for room, or on
//!   a quiet upstream) or before the pump started makes the pump drop upstream and finish.
//!   The models that move a whole stream run at a preemption bound of at most 2 (see
//!   `model_whole_stream`). `Flow::buffer` with a dropping policy always spawns its pump on
//!   tokio, which loom cannot run, so it has no model here.
//!
//! Run: `RUSTFLAGS="--cfg flowbed_loom" LOOM_MAX_PREEMPTIONS=3
//! CARGO_TARGET_DIR=/work/target-loom cargo test --release -p flowbed-reactive --test loom`.
#![cfg(flowbed_loom)]

use std::future::poll_fn;
use std::num::NonZeroU64;
use std::task::{Context, Poll};

use flowbed_reactive::{
    Demand, Emit, Error, Flow, Publisher, PumpTask, Source, Step, Subscriber, UNBOUNDED,
};
use futures::StreamExt;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;
fn nonzero(count: u64) -> NonZeroU64 {
    NonZeroU64::new(count).expect("a positive count")
}

/// Waits like a publisher with nothing granted: blocks for ever (loom reports a deadlock)
/// if a `request` or `cancel` is not followed by a wake-up.
fn wait_for_demand(demand: &Demand) -> Option<u64> {
    loom::future::block_on(poll_fn(|cx| demand.poll_take_all(cx)))
}

// ---------------------------------------------------------------------------------------
// The demand counter
// ---------------------------------------------------------------------------------------

#[test]
fn concurrent_requests_are_granted_exactly_and_always_wake_the_publisher() {
    loom::model(|| {
        let (subscription, demand) = Demand::pair();
        let requesters: Vec<_> = [1, 2]
            .into_iter()
            .map(|count| {
                let subscription = subscription.clone();
                thread::spawn(move || subscription.request(nonzero(count)))
            })
            .collect();
        // A synchronous claim (Drive's path inside on_next), then waits for the rest.
        let mut granted = demand.take(1);
        while granted < 3 {
            granted += wait_for_demand(&demand).expect("nobody cancelled");
        }
        for requester in requesters {
            requester.join().expect("no panic");
        }
        assert_eq!(granted, 3, "granted exactly what was requested");
        assert_eq!(demand.take_all(), 0);
    });
}

#[test]
fn demand_summing_to_u64_max_turns_unbounded_and_stays_unbounded() {
    loom::model(|| {
        let (subscription, demand) = Demand::pair();
        let requesters: Vec<_> = [u64::MAX - 1, 1]
            .into_iter()
            .map(|count| {
                let subscription = subscription.clone();
                thread::spawn(move || subscription.request(nonzero(count)))
            })
            .collect();
        let first = demand.take(1);
        for requester in requesters {
            requester.join().expect("no panic");
        }
        let rest = demand.take_all();
        if rest == UNBOUNDED {
            // Both requests met before (or without) the claim: u64::MAX outstanding.
            assert_eq!(demand.take(7), 7);
            assert_eq!(
                demand.take_all(),
                UNBOUNDED,
                "unbounded is never decremented"
            );
        } else {
            // The claim came between the two requests: the sum never reached u64::MAX,
            // so every unit is accounted for.
            assert_eq!(first, 1);
            assert_eq!(u128::from(first) + u128::from(rest), u128::from(u64::MAX));
            assert_eq!(demand.take_all(), 0);
        }
    });
}

#[test]
fn demand_just_below_u64_max_stays_exact() {
    loom::model(|| {
        let (subscription, demand) = Demand::pair();
        let requesters: Vec<_> = [u64::MAX - 2, 1]
            .into_iter()
            .map(|count| {
                let subscription = subscription.clone();
                thread::spawn(move || subscription.request(nonzero(count)))
            })
            .collect();
        let first = demand.take(1);
        for requester in requesters {
            requester.join().expect("no panic");
        }
        let rest = demand.take_all();
        assert_ne!(
            rest, UNBOUNDED,
            "u64::MAX - 1 requested in total is bounded"
        );
        assert_eq!(
            u128::from(first) + u128::from(rest),
            u128::from(u64::MAX - 1)
        );
    });
}

#[test]
fn an_unbounded_request_racing_a_bounded_one_is_always_granted() {
    loom::model(|| {
        let (subscription, demand) = Demand::pair();
        let unbounded = {
            let subscription = subscription.clone();
            thread::spawn(move || subscription.request_unbounded())
        };
        let bounded = {
            let subscription = subscription.clone();
            thread::spawn(move || subscription.request(nonzero(5)))
        };
        assert!(demand.take(3) <= 3);
        let waited = wait_for_demand(&demand).expect("nobody cancelled");
        assert!(waited == UNBOUNDED || waited <= 5, "waited for {waited}");
        unbounded.join().expect("no panic");
        bounded.join().expect("no panic");
        // Unbounded demand reached the publisher: in the wait, or in what is left.
        let rest = demand.take_all();
        assert!(
            waited == UNBOUNDED || rest == UNBOUNDED,
            "waited for {waited}, {rest} left"
        );
    });
}

/// Rule 3.17: once `u64::MAX` is outstanding it is never decremented, so every later
/// `take_all` is unbounded and `take(n)` grants `n` — also when a request saturates the
/// counter between `take_all`'s load and its swap (this model found that the swap used to
/// leave 0 behind; `take_all` now restores unbounded after swapping it out).
#[test]
fn unbounded_demand_stays_unbounded_when_it_saturates_during_take_all() {
    loom::model(|| {
        let (subscription, demand) = Demand::pair();
        subscription.request(nonzero(1));
        let unbounded = thread::spawn(move || subscription.request_unbounded());
        let first = demand.take_all();
        unbounded.join().expect("no panic");
        assert!(first == 1 || first == UNBOUNDED, "granted {first}");
        assert_eq!(demand.take_all(), UNBOUNDED, "granted {first} first");
        assert_eq!(demand.take(7), 7);
    });
}

#[test]
fn a_cancel_racing_a_request_wakes_the_waiting_publisher_with_none() {
    loom::model(|| {
        let (subscription, demand) = Demand::pair();
        let requester = {
            let subscription = subscription.clone();
            thread::spawn(move || subscription.request(nonzero(1)))
        };
        let canceller = thread::spawn(move || subscription.cancel());
        let mut granted = 0;
        while let Some(more) = wait_for_demand(&demand) {
            granted += more;
        }
        requester.join().expect("no panic");
        canceller.join().expect("no panic");
        assert!(granted <= 1, "granted {granted}");
        assert!(demand.is_cancelled());
        assert_eq!(wait_for_demand(&demand), None, "a cancel is for good");
    });
}

#[test]
fn a_cancel_wakes_a_publisher_waiting_for_upstream() {
    loom::model(|| {
        let (subscription, demand) = Demand::pair();
        subscription.request(nonzero(1));
        assert_eq!(demand.take_all(), 1);
        let canceller = thread::spawn(move || subscription.cancel());
        // Drive's path when upstream is quiet: wake on a signal, look once more, sleep.
        loom::future::block_on(poll_fn(|cx| {
            if demand.is_cancelled() {
                return Poll::Ready(());
            }
            demand.wake_on_signal(cx);
            if demand.is_cancelled() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }));
        canceller.join().expect("no panic");
    });
}

// ---------------------------------------------------------------------------------------
// The real driver and from_publisher, across threads
// ---------------------------------------------------------------------------------------

/// A flow published on a loom thread: what `Flow::subscribe` does on a tokio task.
struct OnLoomThread<S> {
    flow: Flow<S>,
    driver: Arc<Mutex<Option<thread::JoinHandle<()>>>>,
}

impl<S> Publisher for OnLoomThread<S>
where
    S: Source + Send + 'static,
    S::Item: Send + 'static,
{
    type Item = S::Item;

    fn subscribe<Sub>(self, subscriber: Sub)
    where
        Sub: Subscriber<S::Item> + Send + 'static,
    {
        let drive = self.flow.drive(subscriber);
        let handle = thread::spawn(move || loom::future::block_on(drive));
        *self.driver.lock().expect("not poisoned") = Some(handle);
    }
}

/// Sets its flag when dropped: shows upstream was released.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

fn join_thread(driver: &Mutex<Option<thread::JoinHandle<()>>>) {
    let handle = driver.lock().expect("not poisoned").take();
    handle.expect("subscribed").join().expect("no panic");
}

fn round_trip_through_a_driver_thread(prefetch: usize) {
    loom::model(move || {
        let driver = Arc::new(Mutex::new(None));
        let publisher = OnLoomThread {
            flow: Flow::iter(0..2u32),
            driver: driver.clone(),
        };
        let items = loom::future::block_on(
            Flow::from_publisher_with_prefetch(publisher, prefetch).collect::<Vec<_>>(),
        );
        assert_eq!(items.expect("completes"), [0, 1]);
        join_thread(&driver);
    });
}

#[test]
fn drive_to_from_publisher_with_prefetch_1_delivers_every_item_then_the_end() {
    round_trip_through_a_driver_thread(1);
}

#[test]
fn drive_to_from_publisher_with_prefetch_2_delivers_every_item_then_the_end() {
    round_trip_through_a_driver_thread(2);
}

#[test]
fn a_consumer_leaving_mid_stream_ends_the_driver_and_drops_upstream() {
    loom::model(|| {
        let driver = Arc::new(Mutex::new(None));
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = DropFlag(dropped.clone());
        let publisher = OnLoomThread {
            flow: Flow::iter(0..3u32).map(move |n| {
                let _keep = &flag;
                n
            }),
            driver: driver.clone(),
        };
        let mut stream = Flow::from_publisher_with_prefetch(publisher, 2).into_stream();
        let first = loom::future::block_on(stream.next());
        assert_eq!(first.expect("an item").expect("no error"), 0);
        drop(stream); // cancels the subscription
        // Blocks for ever (a loom deadlock) if the driver misses the cancel.
        join_thread(&driver);
        assert!(
            dropped.load(Ordering::Acquire),
            "the driver dropped upstream"
        );
    });
}

#[test]
fn a_consumer_leaving_before_the_subscription_arrives_still_cancels_it() {
    loom::model(|| {
        let driver = Arc::new(Mutex::new(None));
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = DropFlag(dropped.clone());
        let publisher = OnLoomThread {
            flow: Flow::iter(0..2u32).map(move |n| {
                let _keep = &flag;
                n
            }),
            driver: driver.clone(),
        };
        let mut stream = Flow::from_publisher_with_prefetch(publisher, 1).into_stream();
        // One poll subscribes (the driver thread starts), then the consumer leaves while
        // `on_subscribe` may still be on its way.
        loom::future::block_on(poll_fn(|cx| {
            let _ = stream.poll_next_unpin(cx);
            Poll::Ready(())
        }));
        drop(stream);
        join_thread(&driver);
        assert!(
            dropped.load(Ordering::Acquire),
            "the driver dropped upstream"
        );
    });
}

// ---------------------------------------------------------------------------------------
// The real async boundary, its pump on a loom thread
// ---------------------------------------------------------------------------------------

/// Where the boundary's pump thread is kept once the first poll spawned it.
type PumpThread = Arc<Mutex<Option<thread::JoinHandle<()>>>>;

/// An `async_boundary_on` spawner: runs the pump on a loom thread (blocking on it, so a
/// pump that misses a wake-up is a loom deadlock) and keeps the thread in `slot`.
fn on_loom_thread(slot: &PumpThread) -> impl FnOnce(PumpTask) + Send + 'static {
    let slot = slot.clone();
    move |task| {
        let handle = thread::spawn(move || loom::future::block_on(task));
        *slot.lock().expect("not poisoned") = Some(handle);
    }
}

/// Runs a model that moves a whole stream through the real boundary, at a preemption bound
/// of at most 2: the boundary has many atomics per item, so at loom's usual 3 each such
/// model takes one to two minutes (all pass), at 2 a few seconds.
/// `FLOWBED_LOOM_DEEP=1` runs them at `LOOM_MAX_PREEMPTIONS` instead.
fn model_whole_stream(model: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if std::env::var_os("FLOWBED_LOOM_DEEP").is_none() {
        builder.preemption_bound = Some(builder.preemption_bound.map_or(2, |bound| bound.min(2)));
    }
    builder.check(model);
}

/// `count` items through a boundary of `capacity`, consumed in batches by `fold`: every
/// item arrives once, in order, then the end, and the pump finishes.
fn boundary_folds_every_item(capacity: usize, count: u32) {
    model_whole_stream(move || {
        let pump = PumpThread::default();
        let flow = Flow::iter(0..count).async_boundary_on(capacity, on_loom_thread(&pump));
        // Blocks for ever (a loom deadlock) if the consumer misses a wake-up.
        let items = loom::future::block_on(flow.collect::<Vec<_>>());
        assert_eq!(items.expect("completes"), (0..count).collect::<Vec<_>>());
        join_thread(&pump);
    });
}

/// `count` items through a boundary of `capacity`, consumed one per poll by `into_stream`.
fn boundary_streams_every_item(capacity: usize, count: u32) {
    model_whole_stream(move || {
        let pump = PumpThread::default();
        let mut stream = Flow::iter(0..count)
            .async_boundary_on(capacity, on_loom_thread(&pump))
            .into_stream();
        let mut items = Vec::new();
        while let Some(item) = loom::future::block_on(stream.next()) {
            items.push(item.expect("no error"));
        }
        assert_eq!(items, (0..count).collect::<Vec<_>>());
        join_thread(&pump);
    });
}

#[test]
fn boundary_of_one_slot_folds_every_item_then_the_end() {
    boundary_folds_every_item(1, 2);
}

#[test]
fn boundary_of_one_slot_streams_every_item_then_the_end() {
    boundary_streams_every_item(1, 2);
}

#[test]
fn boundary_of_two_slots_folds_every_item_then_the_end() {
    boundary_folds_every_item(2, 3);
}

#[test]
fn boundary_of_two_slots_streams_every_item_then_the_end() {
    boundary_streams_every_item(2, 3);
}

/// Emits 0, then fails.
struct OneThenFail {
    emitted: bool,
}

impl Source for OneThenFail {
    type Item = u32;

    fn poll_emit<E: Emit<u32>>(
        &mut self,
        _cx: &mut Context<'_>,
        emit: &mut E,
    ) -> Poll<Result<Step, Error>> {
        if !self.emitted {
            self.emitted = true;
            if emit.emit(0).is_break() {
                return Poll::Ready(Ok(Step::Paused));
            }
        }
        Poll::Ready(Err(Error::Protocol("upstream failed")))
    }
}

/// The item emitted before an upstream error arrives, then the error, then the end. With
/// one slot upstream pauses after the item and fails at the next poll; with two it fails
/// in the poll that emitted the item.
fn boundary_delivers_the_item_before_the_error(capacity: usize) {
    loom::model(move || {
        let pump = PumpThread::default();
        let mut stream = Flow::from_source(OneThenFail { emitted: false })
            .async_boundary_on(capacity, on_loom_thread(&pump))
            .into_stream();
        let first = loom::future::block_on(stream.next());
        assert_eq!(first.expect("an item").expect("the item first"), 0);
        let second = loom::future::block_on(stream.next()).expect("the error");
        assert!(
            matches!(second, Err(Error::Protocol("upstream failed"))),
            "got {second:?}"
        );
        assert!(loom::future::block_on(stream.next()).is_none());
        join_thread(&pump);
    });
}

#[test]
fn boundary_of_one_slot_delivers_the_item_before_an_upstream_error() {
    boundary_delivers_the_item_before_the_error(1);
}

#[test]
fn boundary_of_two_slots_delivers_the_item_before_an_upstream_error() {
    boundary_delivers_the_item_before_the_error(2);
}

/// The consumer takes one of `count` items and leaves: the pump (asleep on a full ring,
/// or about to push) must wake up, drop upstream and finish.
fn boundary_consumer_leaves_mid_stream(capacity: usize, count: u32) {
    loom::model(move || {
        let pump = PumpThread::default();
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = DropFlag(dropped.clone());
        let mut stream = Flow::iter(0..count)
            .map(move |n| {
                let _keep = &flag;
                n
            })
            .async_boundary_on(capacity, on_loom_thread(&pump))
            .into_stream();
        let first = loom::future::block_on(stream.next());
        assert_eq!(first.expect("an item").expect("no error"), 0);
        drop(stream);
        // Blocks for ever (a loom deadlock) if the pump sleeps through the leave.
        join_thread(&pump);
        assert!(dropped.load(Ordering::Acquire), "the pump dropped upstream");
    });
}

#[test]
fn boundary_of_one_slot_consumer_leaving_mid_stream_ends_the_pump() {
    boundary_consumer_leaves_mid_stream(1, 3);
}

#[test]
fn boundary_of_two_slots_consumer_leaving_mid_stream_ends_the_pump() {
    boundary_consumer_leaves_mid_stream(2, 3);
}

/// Emits 0, then has nothing: the first time it wakes itself (as a source whose data
/// arrived at once would), after that it stays quiet for ever (nobody wakes it).
struct OneThenQuiet {
    emitted: bool,
    woke: bool,
    _flag: DropFlag,
}

impl Source for OneThenQuiet {
    type Item = u32;

    fn poll_emit<E: Emit<u32>>(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut E,
    ) -> Poll<Result<Step, Error>> {
        if !self.emitted {
            self.emitted = true;
            if emit.emit(0).is_break() {
                return Poll::Ready(Ok(Step::Paused));
            }
        }
        if !self.woke {
            self.woke = true;
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

/// The consumer takes the only item of a quiet upstream and leaves: the pump, asleep on
/// upstream (which will never wake it), must wake up, drop upstream and finish.
fn boundary_consumer_leaves_a_quiet_upstream(capacity: usize) {
    loom::model(move || {
        let pump = PumpThread::default();
        let dropped = Arc::new(AtomicBool::new(false));
        let upstream = OneThenQuiet {
            emitted: false,
            woke: false,
            _flag: DropFlag(dropped.clone()),
        };
        let mut stream = Flow::from_source(upstream)
            .async_boundary_on(capacity, on_loom_thread(&pump))
            .into_stream();
        let first = loom::future::block_on(stream.next());
        assert_eq!(first.expect("an item").expect("no error"), 0);
        drop(stream);
        join_thread(&pump);
        assert!(dropped.load(Ordering::Acquire), "the pump dropped upstream");
    });
}

#[test]
fn boundary_of_one_slot_consumer_leaving_a_quiet_upstream_ends_the_pump() {
    boundary_consumer_leaves_a_quiet_upstream(1);
}

#[test]
fn boundary_of_two_slots_consumer_leaving_a_quiet_upstream_ends_the_pump() {
    boundary_consumer_leaves_a_quiet_upstream(2);
}

/// The consumer polls once (which spawns the pump) and leaves before taking anything,
/// possibly before the pump thread ran at all: the pump still drops upstream and finishes.
#[test]
fn boundary_consumer_leaving_before_the_pump_runs_ends_the_pump() {
    loom::model(|| {
        let pump = PumpThread::default();
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = DropFlag(dropped.clone());
        let mut stream = Flow::iter(0..2u32)
            .map(move |n| {
                let _keep = &flag;
                n
            })
            .async_boundary_on(1, on_loom_thread(&pump))
            .into_stream();
        loom::future::block_on(poll_fn(|cx| {
            let _ = stream.poll_next_unpin(cx);
            Poll::Ready(())
        }));
        drop(stream);
        join_thread(&pump);
        assert!(dropped.load(Ordering::Acquire), "the pump dropped upstream");
    });
}
