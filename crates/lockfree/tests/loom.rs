//! loom models: every interleaving (up to `LOOM_MAX_PREEMPTIONS`) of small scenarios on the
//! real code, with loom's atomics, cells, mutexes and park/unpark swapped in by the crate's
//! `sync` shim.
//!
//! Run with:
//! `RUSTFLAGS="--cfg flowbed_loom" LOOM_MAX_PREEMPTIONS=3 cargo test --release -p flowbed-lockfree --test loom`
//!
//! Under loom the `SegQueue` uses 3-slot blocks so these models cross block boundaries
//! (and recycle blocks) after a handful of operations.

#![cfg(flowbed_loom)]

use std::future::Future;

use loom::sync::Arc;
use loom::thread;

use flowbed_lockfree::channel;
use flowbed_lockfree::{ArrayQueue, PopError, SegQueue, spsc};

/// Pops with `pop` until the queue reports closed-and-drained (yielding to loom's scheduler
/// while it is empty).
fn drain(mut pop: impl FnMut() -> Result<u32, PopError>) -> Vec<u32> {
    let mut got = Vec::new();
    loop {
        match pop() {
            Ok(value) => got.push(value),
            Err(PopError::Empty) => thread::yield_now(),
            Err(PopError::Closed) => return got,
        }
    }
}

/// A producer thread pushes `pushes` clones of a marker while this thread pops one; once
/// the queue is dropped, only the original marker may be left: every value left in the
/// queue was dropped exactly once.
fn model_drop_releases_values_left<Q: Send + Sync + 'static>(
    make: fn() -> Q,
    pushes: usize,
    push: fn(&Q, Arc<()>),
    pop: fn(&Q) -> Option<Arc<()>>,
) {
    loom::model(move || {
        let value = Arc::new(());
        let queue = Arc::new(make());
        let producer = {
            let (queue, value) = (queue.clone(), value.clone());
            thread::spawn(move || {
                for _ in 0..pushes {
                    push(&queue, value.clone());
                }
            })
        };
        drop(pop(&queue));
        producer.join().unwrap();
        drop(queue);
        assert_eq!(Arc::strong_count(&value), 1);
    });
}

// ---------------------------------------------------------------------------------------
// ArrayQueue
// ---------------------------------------------------------------------------------------

/// Two producers race for the one slot of a capacity-1 queue while a consumer pops:
/// every accepted value is popped exactly once, every refused one is handed back.
#[test]
fn array_two_producers_one_consumer() {
    loom::model(|| {
        let queue = Arc::new(ArrayQueue::new(1));
        let producers: Vec<_> = [1u32, 2]
            .into_iter()
            .map(|value| {
                let queue = queue.clone();
                thread::spawn(move || match queue.push(value) {
                    Ok(()) => Some(value),
                    Err(refused) => {
                        assert_eq!(refused.into_inner(), value);
                        None
                    }
                })
            })
            .collect();
        let mut popped: Vec<u32> = queue.pop().ok().into_iter().collect();
        let mut accepted: Vec<u32> = producers
            .into_iter()
            .filter_map(|producer| producer.join().unwrap())
            .collect();
        popped.extend(queue.pop().ok());
        assert_eq!(queue.pop(), Err(PopError::Empty));
        accepted.sort_unstable();
        popped.sort_unstable();
        assert_eq!(accepted, popped);
        assert!(
            !accepted.is_empty(),
            "an empty capacity-1 queue accepts one push"
        );
    });
}

/// A push races `close()`: the value is either refused (and handed back) or drained.
#[test]
fn array_close_races_push() {
    loom::model(|| {
        let queue = Arc::new(ArrayQueue::new(2));
        let producer = {
            let queue = queue.clone();
            thread::spawn(move || queue.push(7).is_ok())
        };
        let closer = {
            let queue = queue.clone();
            thread::spawn(move || {
                queue.close();
            })
        };
        closer.join().unwrap();
        let drained = drain(|| queue.pop());
        let accepted = producer.join().unwrap();
        // The producer may finish after the drain only if it was refused.
        assert_eq!(drained, if accepted { vec![7] } else { vec![] });
    });
}

/// `force_push` on a full queue races a `pop`: no value is lost or duplicated.
#[test]
fn array_force_push_races_pop() {
    loom::model(|| {
        let queue = Arc::new(ArrayQueue::new(1));
        queue.push(1).unwrap();
        let forcer = {
            let queue = queue.clone();
            thread::spawn(move || queue.force_push(2).unwrap())
        };
        let popped = queue.pop().ok();
        let evicted = forcer.join().unwrap();
        let mut all: Vec<u32> = popped.into_iter().chain(evicted).collect();
        all.extend(queue.pop().ok());
        all.sort_unstable();
        assert_eq!(all, [1, 2]);
    });
}

/// Dropping the queue drops exactly the values left in it.
#[test]
fn array_drop_releases_values_left() {
    // Capacity 2: one of the pushes may be refused; refused values come back and drop.
    model_drop_releases_values_left(
        || ArrayQueue::new(2),
        2,
        |queue, value| drop(queue.push(value)),
        |queue| queue.pop().ok(),
    );
}

// ---------------------------------------------------------------------------------------
// SegQueue
// ---------------------------------------------------------------------------------------

/// A producer fills past the end of the first 3-slot block while a consumer pops: the
/// hand-over to the next block and the retirement (recycling) of the first are race-free.
#[test]
fn seg_push_pop_across_a_block_boundary() {
    loom::model(|| {
        let queue = Arc::new(SegQueue::new());
        let producer = {
            let queue = queue.clone();
            thread::spawn(move || {
                for value in 0..4 {
                    queue.push(value).unwrap();
                }
                queue.close();
            })
        };
        let got = drain(|| queue.pop());
        producer.join().unwrap();
        assert_eq!(got, [0, 1, 2, 3]);
    });
}

/// Two consumers race for values spread over two blocks; the block is retired by
/// whichever finishes last, and reused by the next push.
#[test]
fn seg_two_consumers_retire_a_block_together() {
    loom::model(|| {
        let queue = Arc::new(SegQueue::new());
        for value in 0..4 {
            queue.push(value).unwrap();
        }
        queue.close();
        let other = {
            let queue = queue.clone();
            thread::spawn(move || drain(|| queue.pop()))
        };
        let mut got = drain(|| queue.pop());
        got.extend(other.join().unwrap());
        got.sort_unstable();
        assert_eq!(got, [0, 1, 2, 3]);
    });
}

/// A push races `close()`; refused values come back, accepted ones are drained.
#[test]
fn seg_close_races_push() {
    loom::model(|| {
        let queue = Arc::new(SegQueue::new());
        queue.push(0).unwrap();
        queue.push(1).unwrap();
        let producer = {
            let queue = queue.clone();
            thread::spawn(move || queue.push(2).is_ok())
        };
        queue.close();
        let accepted = producer.join().unwrap();
        let drained = drain(|| queue.pop());
        let expected: Vec<u32> = if accepted { vec![0, 1, 2] } else { vec![0, 1] };
        assert_eq!(drained, expected);
    });
}

/// Dropping a queue with values in two blocks drops each value once.
#[test]
fn seg_drop_releases_values_left() {
    // Four values span two 3-slot blocks.
    model_drop_releases_values_left(
        SegQueue::new,
        4,
        |queue, value| queue.push(value).unwrap(),
        |queue| queue.pop().ok(),
    );
}

// ---------------------------------------------------------------------------------------
// SPSC ring
// ---------------------------------------------------------------------------------------

/// Batch writes and reads through chunks on a 2-slot ring (so chunks wrap): values arrive
/// once, in order, and the ends never touch the same slot at the same time.
#[test]
fn spsc_chunks_transfer_in_order() {
    loom::model(|| {
        let (mut tx, mut rx) = spsc::channel::<u32>(2);
        let producer = thread::spawn(move || {
            let mut next = 0;
            while next < 3 {
                let free = tx.slots().min(3 - next as usize);
                if free == 0 {
                    thread::yield_now();
                    continue;
                }
                let chunk = tx.write_chunk_uninit(free).unwrap();
                next += chunk.fill_from_iter(next..3) as u32;
            }
        });
        let mut got = Vec::new();
        while got.len() < 3 {
            let available = rx.slots();
            if available == 0 {
                thread::yield_now();
                continue;
            }
            got.extend(rx.read_chunk(available).unwrap());
        }
        producer.join().unwrap();
        assert_eq!(got, [0, 1, 2]);
        assert_eq!(rx.pop(), Err(PopError::Closed));
    });
}

/// The producer pushes and drops its end while the consumer pops: the consumer sees every
/// value, then `Closed`, never `Closed` early; values left in the ring are dropped once.
#[test]
fn spsc_producer_drop_races_pop() {
    loom::model(|| {
        let value = Arc::new(());
        let (mut tx, mut rx) = spsc::channel(2);
        let producer = {
            let value = value.clone();
            thread::spawn(move || {
                tx.push(value.clone()).unwrap();
                tx.push(value).unwrap();
            })
        };
        let mut got = 0;
        loop {
            match rx.pop() {
                Ok(_) => got += 1,
                Err(PopError::Empty) => thread::yield_now(),
                Err(PopError::Closed) => break,
            }
        }
        producer.join().unwrap();
        assert_eq!(got, 2);
        drop(rx);
        assert_eq!(Arc::strong_count(&value), 1);
    });
}

// ---------------------------------------------------------------------------------------
// Park / wake protocol of the channel
// ---------------------------------------------------------------------------------------

/// A receiver parks on an empty channel while a sender sends: the receiver is always
/// woken (loom reports a deadlock if a wake-up can be lost).
#[test]
fn channel_no_lost_wake_up_for_a_parked_receiver() {
    loom::model(|| {
        let (tx, rx) = channel::bounded::<u32>(1);
        let receiver = thread::spawn(move || rx.recv_blocking());
        tx.try_send(5).unwrap();
        assert_eq!(receiver.join().unwrap(), Ok(5));
    });
}

/// A sender parks on a full channel while the receiver makes room.
#[test]
fn channel_no_lost_wake_up_for_a_parked_sender() {
    loom::model(|| {
        let (tx, rx) = channel::bounded::<u32>(1);
        tx.try_send(1).unwrap();
        let sender = thread::spawn(move || tx.send_blocking(2));
        assert_eq!(rx.recv_blocking(), Ok(1));
        assert_eq!(sender.join().unwrap(), Ok(()));
        assert_eq!(rx.recv_blocking(), Ok(2));
    });
}

/// `close()` races a receiver going to sleep: the receiver always returns.
#[test]
fn channel_close_wakes_a_parked_receiver() {
    loom::model(|| {
        let (tx, rx) = channel::bounded::<u32>(1);
        let receiver = thread::spawn(move || rx.recv_blocking());
        tx.close();
        assert!(receiver.join().unwrap().is_err());
    });
}

/// An async receiver registers first, a second receiver then blocks, and a send
/// notifies the oldest waiter, the async one, which is dropped (a cancelled `recv`) instead
/// of running. The blocked receiver must still get the value: a notification sent to a
/// dropped future is passed on, never lost (loom reports a deadlock otherwise).
#[test]
fn channel_cancelled_async_recv_passes_its_wake_up_on() {
    loom::model(|| {
        let (tx, rx) = channel::bounded::<u32>(1);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut cancelled = Box::pin(rx.recv());
        assert!(cancelled.as_mut().poll(&mut cx).is_pending());
        let blocked = {
            let rx = rx.clone();
            thread::spawn(move || rx.recv_blocking())
        };
        tx.try_send(1).unwrap();
        drop(cancelled);
        assert_eq!(blocked.join().unwrap(), Ok(1));
    });
}

/// The async path end to end under loom's executor: a task waits, a thread sends.
#[test]
fn channel_async_recv_is_woken() {
    loom::model(|| {
        let (tx, rx) = channel::bounded::<u32>(1);
        let sender = thread::spawn(move || {
            tx.try_send(3).unwrap();
        });
        assert_eq!(loom::future::block_on(rx.recv()), Ok(3));
        sender.join().unwrap();
    });
}
