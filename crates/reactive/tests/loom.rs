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
//! * The async boundary's hand-off protocol (`ops/boundary.rs`), rebuilt from the public
//!   pieces it is made of (the real `Boundary` spawns its pump on tokio, which loom cannot
//!   run): flowbed-lockfree's SPSC ring, a doorbell per side (arm, look again, sleep; push,
//!   ring) and an `ended` flag set after the last push. The consumer never sleeps for ever,
//!   sees every item in order and then the end; a consumer that leaves wakes a producer
//!   waiting for room or waiting on a quiet upstream, so upstream is always dropped.
//!
//! Run: `RUSTFLAGS="--cfg flowbed_loom" LOOM_MAX_PREEMPTIONS=3
//! CARGO_TARGET_DIR=/work/target-loom cargo test --release -p flowbed-reactive --test loom`.
#![cfg(flowbed_loom)]

use std::future::poll_fn;
use std::num::NonZeroU64;
use std::ops::ControlFlow;
use std::task::{Context, Poll};

use flowbed_lockfree::{Doorbell, spsc};
use flowbed_reactive::{Demand, Flow, Publisher, Source, Subscriber, UNBOUNDED};
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

fn join_driver(driver: &Mutex<Option<thread::JoinHandle<()>>>) {
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
        join_driver(&driver);
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
        join_driver(&driver);
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
        join_driver(&driver);
        assert!(
            dropped.load(Ordering::Acquire),
            "the driver dropped upstream"
        );
    });
}

// ---------------------------------------------------------------------------------------
// The async boundary's hand-off protocol
// ---------------------------------------------------------------------------------------

/// The flags the two sides of `ops/boundary.rs` share (its `Shared`, minus the ending's
/// value).
#[derive(Default)]
struct Hand {
    consumer_bell: Doorbell,
    producer_bell: Doorbell,
    consumer_gone: AtomicBool,
    ended: AtomicBool,
}

/// How the pump stopped.
#[derive(Debug, PartialEq)]
enum Stop {
    /// Upstream ended and the ending was published.
    Ended,
    /// The consumer left; upstream was dropped.
    ConsumerGone,
}

/// What upstream does once its items run out.
#[derive(Clone, Copy)]
enum Upstream {
    /// Ends.
    Ends,
    /// Stays quiet for ever (a `Pending` source nobody wakes).
    Quiet,
}

/// `Pump::poll` of `ops/boundary.rs` with an upstream of `items`: pushes while there is
/// room, rings the consumer once per batch, sleeps on the producer bell when the ring is
/// full or upstream is quiet, publishes `ended` after the last push.
fn run_pump(
    mut ring: spsc::Producer<u32>,
    items: std::ops::Range<u32>,
    upstream: Upstream,
    hand: &Hand,
) -> Stop {
    let mut next = items.start;
    loom::future::block_on(poll_fn(|cx: &mut Context<'_>| {
        loop {
            if hand.consumer_gone.load(Ordering::Acquire) {
                return Poll::Ready(Stop::ConsumerGone);
            }
            let mut room = ring.slots();
            if room == 0 {
                hand.producer_bell.arm(cx.waker());
                room = ring.slots();
                if room == 0 && !hand.consumer_gone.load(Ordering::Acquire) {
                    return Poll::Pending;
                }
                hand.producer_bell.disarm();
                continue;
            }
            // upstream.poll_emit: push until the ring is full or upstream runs out.
            while room > 0 && next < items.end {
                ring.push(next).expect("room was counted");
                next += 1;
                room -= 1;
            }
            if next < items.end {
                // Paused: the ring is full.
                hand.consumer_bell.ring();
                continue;
            }
            match upstream {
                Upstream::Ends => {
                    hand.ended.store(true, Ordering::Release);
                    hand.consumer_bell.ring();
                    return Poll::Ready(Stop::Ended);
                }
                Upstream::Quiet => {
                    hand.consumer_bell.ring();
                    hand.producer_bell.arm(cx.waker());
                    if hand.consumer_gone.load(Ordering::Acquire) {
                        continue;
                    }
                    return Poll::Pending;
                }
            }
        }
    }))
}

/// `Boundary::poll_emit` of `ops/boundary.rs`: takes items into `emit` until it breaks,
/// then returns `Paused` (`Some(false)`); `Ended` is `Some(true)`; sleeps on the consumer
/// bell when the ring is empty and the producer has not ended.
fn poll_boundary(
    ring: &mut spsc::Consumer<u32>,
    hand: &Hand,
    cx: &mut Context<'_>,
    emit: &mut impl FnMut(u32) -> ControlFlow<()>,
) -> Poll<bool> {
    let mut taken = 0usize;
    loop {
        while let Ok(item) = ring.pop() {
            taken += 1;
            if emit(item).is_break() {
                hand.producer_bell.ring();
                return Poll::Ready(false);
            }
        }
        if taken > 0 {
            hand.producer_bell.ring();
        }
        if hand.ended.load(Ordering::Acquire) {
            if let Ok(item) = ring.pop() {
                taken += 1;
                if emit(item).is_break() {
                    return Poll::Ready(false);
                }
                continue;
            }
            return Poll::Ready(true);
        }
        hand.consumer_bell.arm(cx.waker());
        match ring.pop() {
            Ok(item) => {
                hand.consumer_bell.disarm();
                taken += 1;
                if emit(item).is_break() {
                    hand.producer_bell.ring();
                    return Poll::Ready(false);
                }
            }
            Err(_) if hand.ended.load(Ordering::Acquire) => hand.consumer_bell.disarm(),
            Err(_) => return Poll::Pending,
        }
    }
}

/// Consumes a boundary of `count` items over a ring of `capacity`, one item per poll (as
/// `into_stream` does) or in batches, and checks that every item arrives once, in order,
/// then the end.
fn hand_off(capacity: usize, count: u32, one_per_poll: bool) {
    loom::model(move || {
        let (producer, mut consumer) = spsc::channel(capacity);
        let hand = Arc::new(Hand::default());
        let pump = {
            let hand = hand.clone();
            thread::spawn(move || run_pump(producer, 0..count, Upstream::Ends, &hand))
        };
        let mut got = Vec::new();
        loop {
            // Blocks for ever (a loom deadlock) if the consumer misses a wake-up.
            let ended = loom::future::block_on(poll_fn(|cx| {
                poll_boundary(&mut consumer, &hand, cx, &mut |item| {
                    got.push(item);
                    if one_per_poll {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                })
            }));
            if ended {
                break;
            }
        }
        assert_eq!(pump.join().expect("no panic"), Stop::Ended);
        assert_eq!(got, (0..count).collect::<Vec<_>>());
    });
}

#[test]
fn boundary_hand_off_through_one_slot_one_item_per_poll() {
    hand_off(1, 2, true);
}

#[test]
fn boundary_hand_off_through_one_slot_in_batches() {
    hand_off(1, 2, false);
}

/// The consumer takes one item and leaves (drops the boundary): the pump, asleep on a
/// full ring or on a quiet upstream, must wake up and stop.
fn consumer_leaves(capacity: usize, count: u32, upstream: Upstream) {
    loom::model(move || {
        let (producer, mut consumer) = spsc::channel(capacity);
        let hand = Arc::new(Hand::default());
        let pump = {
            let hand = hand.clone();
            thread::spawn(move || run_pump(producer, 0..count, upstream, &hand))
        };
        let mut first = None;
        let ended = loom::future::block_on(poll_fn(|cx| {
            poll_boundary(&mut consumer, &hand, cx, &mut |item| {
                first = Some(item);
                ControlFlow::Break(())
            })
        }));
        assert!(!ended);
        assert_eq!(first, Some(0));
        // Boundary's Drop.
        hand.consumer_gone.store(true, Ordering::Release);
        hand.producer_bell.ring();
        drop(consumer);
        // Blocks for ever (a loom deadlock) if the pump sleeps through the leave.
        assert_eq!(pump.join().expect("no panic"), Stop::ConsumerGone);
    });
}

#[test]
fn a_consumer_leaving_wakes_a_pump_waiting_for_room() {
    consumer_leaves(1, 3, Upstream::Ends);
}

#[test]
fn a_consumer_leaving_wakes_a_pump_waiting_on_a_quiet_upstream() {
    consumer_leaves(2, 1, Upstream::Quiet);
}
