//! The channel: blocking and async waits, timeouts, close, and cancellation that loses
//! neither values nor wake-ups.

mod common;

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::Duration;

use common::{assert_exactly_once, assert_fifo_per_producer, scaled, tagged};
use flowbed_lockfree::channel::{self, Receiver, Sender};
use flowbed_lockfree::{PopError, PushError, RecvError, RecvTimeoutError, SendTimeoutError};

#[test]
fn try_send_and_try_recv() {
    let (tx, rx) = channel::bounded(1);
    assert_eq!(tx.capacity(), Some(1));
    tx.try_send(1).unwrap();
    assert_eq!(tx.try_send(2), Err(PushError::Full(2)));
    assert_eq!(rx.len(), 1);
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Err(PopError::Empty));

    let (tx, rx) = channel::unbounded();
    assert_eq!(rx.capacity(), None);
    for i in 0..100 {
        tx.try_send(i).unwrap();
    }
    assert_eq!(rx.len(), 100);
}

#[test]
fn dropping_every_sender_closes_after_the_drain() {
    let (tx, rx) = channel::bounded(4);
    let tx2 = tx.clone();
    tx.try_send(1).unwrap();
    drop(tx);
    assert!(!rx.is_closed());
    tx2.try_send(2).unwrap();
    drop(tx2);
    assert!(rx.is_closed());
    assert_eq!(rx.recv_blocking(), Ok(1));
    assert_eq!(rx.recv_blocking(), Ok(2));
    assert_eq!(rx.recv_blocking(), Err(RecvError));
}

#[test]
fn dropping_every_receiver_refuses_sends() {
    let (tx, rx) = channel::bounded(4);
    drop(rx);
    assert_eq!(tx.try_send(1), Err(PushError::Closed(1)));
    assert_eq!(tx.send_blocking(2).unwrap_err().into_inner(), 2);
}

#[test]
fn timeouts_hand_the_value_back() {
    let (tx, rx) = channel::bounded(1);
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(5)),
        Err(RecvTimeoutError::Timeout)
    );
    tx.try_send(1).unwrap();
    assert_eq!(
        tx.send_timeout(2, Duration::from_millis(5)),
        Err(SendTimeoutError::Timeout(2))
    );
    assert_eq!(rx.recv_timeout(Duration::from_millis(5)), Ok(1));
    drop(tx);
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(60)),
        Err(RecvTimeoutError::Closed)
    );
}

#[test]
fn close_wakes_blocked_receivers_and_senders() {
    // Whether the threads are still spinning or already parked when `close` runs, they
    // must all return.
    let (tx, rx) = channel::bounded::<u32>(1);
    let receivers: Vec<_> = (0..2)
        .map(|_| {
            let rx = rx.clone();
            thread::spawn(move || rx.recv_blocking())
        })
        .collect();
    for receiver in receivers {
        thread::yield_now();
        rx.close();
        assert_eq!(receiver.join().unwrap(), Err(RecvError));
    }
    drop(tx);

    let (tx, rx) = channel::bounded(1);
    tx.try_send(0).unwrap();
    let sender = {
        let tx = tx.clone();
        thread::spawn(move || tx.send_blocking(7))
    };
    drop(rx);
    assert_eq!(sender.join().unwrap().unwrap_err().into_inner(), 7);
}

/// Producers and consumers block on a one-slot channel, so nearly every operation parks
/// and every value crosses through a wake-up.
#[test]
fn blocking_mpmc_every_value_exactly_once() {
    let per_producer = scaled(20_000) as u64;
    for capacity in [1, 8] {
        let (tx, rx) = channel::bounded(capacity);
        let producers: Vec<_> = (0..3u64)
            .map(|p| {
                let tx = tx.clone();
                thread::spawn(move || {
                    for i in 0..per_producer {
                        tx.send_blocking(tagged(p, i)).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        let consumers: Vec<_> = (0..3)
            .map(|_| {
                let rx = rx.clone();
                thread::spawn(move || {
                    let mut got = Vec::new();
                    while let Ok(v) = rx.recv_blocking() {
                        got.push(v);
                    }
                    got
                })
            })
            .collect();
        drop(rx);
        for p in producers {
            p.join().unwrap();
        }
        let streams: Vec<Vec<u64>> = consumers.into_iter().map(|c| c.join().unwrap()).collect();
        streams.iter().for_each(|s| assert_fifo_per_producer(s));
        let all: Vec<u64> = streams.into_iter().flatten().collect();
        assert_exactly_once(&all, 3, per_producer);
    }
}

#[cfg(not(miri))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_mpmc_every_value_exactly_once() {
    let per_producer = 20_000u64;
    let (tx, rx) = channel::bounded(2);
    let producers: Vec<_> = (0..4u64)
        .map(|p| {
            let tx = tx.clone();
            tokio::spawn(async move {
                for i in 0..per_producer {
                    tx.send(tagged(p, i)).await.unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let consumers: Vec<_> = (0..3)
        .map(|_| {
            let rx = rx.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                while let Ok(v) = rx.recv().await {
                    got.push(v);
                }
                got
            })
        })
        .collect();
    drop(rx);
    for p in producers {
        p.await.unwrap();
    }
    let mut all = Vec::new();
    for c in consumers {
        let stream = c.await.unwrap();
        assert_fifo_per_producer(&stream);
        all.extend(stream);
    }
    assert_exactly_once(&all, 4, per_producer);
}

#[cfg(not(miri))]
#[tokio::test(start_paused = true)]
async fn a_timed_out_recv_takes_nothing_and_a_timed_out_send_sends_nothing() {
    let (tx, rx) = channel::bounded(1);
    let timed_out = tokio::time::timeout(Duration::from_secs(1), rx.recv()).await;
    assert!(timed_out.is_err());
    tx.send(1).await.unwrap();
    let timed_out = tokio::time::timeout(Duration::from_secs(1), tx.send(2)).await;
    assert!(timed_out.is_err());
    assert_eq!(rx.recv().await, Ok(1));
    assert_eq!(rx.try_recv(), Err(PopError::Empty));
    // The waits left no registration behind: a later wait is woken normally.
    let waiter = tokio::spawn(async move { rx.recv().await });
    tokio::task::yield_now().await;
    tx.send(3).await.unwrap();
    assert_eq!(waiter.await.unwrap(), Ok(3));
}

struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counting_waker() -> (Arc<CountingWaker>, Waker) {
    let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
    (counter.clone(), Waker::from(counter))
}

/// Two receivers wait; one value arrives and wakes the first; the first is dropped before
/// it runs. The wake-up must move to the second receiver, which then gets the value.
#[test]
fn a_dropped_woken_recv_passes_its_wake_up_on() {
    let (tx, rx): (Sender<u32>, Receiver<u32>) = channel::bounded(4);
    let (first_count, first_waker) = counting_waker();
    let (second_count, second_waker) = counting_waker();
    let mut first = Box::pin(rx.recv());
    let mut second = pin!(rx.recv());
    assert!(
        first
            .as_mut()
            .poll(&mut Context::from_waker(&first_waker))
            .is_pending()
    );
    assert!(
        second
            .as_mut()
            .poll(&mut Context::from_waker(&second_waker))
            .is_pending()
    );

    tx.try_send(9).unwrap();
    assert_eq!(first_count.0.load(Ordering::SeqCst), 1);
    assert_eq!(second_count.0.load(Ordering::SeqCst), 0);
    drop(first);
    assert_eq!(second_count.0.load(Ordering::SeqCst), 1);
    assert_eq!(
        second
            .as_mut()
            .poll(&mut Context::from_waker(&second_waker)),
        Poll::Ready(Ok(9))
    );
}

/// The same for senders waiting for room.
#[test]
fn a_dropped_woken_send_passes_its_wake_up_on() {
    let (tx, rx) = channel::bounded(1);
    tx.try_send(0).unwrap();
    let (_, first_waker) = counting_waker();
    let (second_count, second_waker) = counting_waker();
    let mut first = Box::pin(tx.send(1));
    let mut second = pin!(tx.send(2));
    assert!(
        first
            .as_mut()
            .poll(&mut Context::from_waker(&first_waker))
            .is_pending()
    );
    assert!(
        second
            .as_mut()
            .poll(&mut Context::from_waker(&second_waker))
            .is_pending()
    );

    assert_eq!(rx.try_recv(), Ok(0));
    drop(first);
    assert_eq!(second_count.0.load(Ordering::SeqCst), 1);
    assert!(
        second
            .as_mut()
            .poll(&mut Context::from_waker(&second_waker))
            .is_ready()
    );
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.try_recv(), Err(PopError::Empty));
}

#[test]
fn close_completes_pending_futures() {
    let (tx, rx) = channel::bounded::<u32>(1);
    let (count, waker) = counting_waker();
    let mut recv = pin!(rx.recv());
    assert!(
        recv.as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
    );
    tx.close();
    assert_eq!(count.0.load(Ordering::SeqCst), 1);
    assert_eq!(
        recv.as_mut().poll(&mut Context::from_waker(&waker)),
        Poll::Ready(Err(RecvError))
    );
}
