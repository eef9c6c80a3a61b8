//! `ArrayQueue`: behaviour, a model-based property test against `VecDeque`, and
//! concurrent exactly-once checks (with and without a `close()` in the middle).

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Barrier};
use std::thread;

use common::{assert_exactly_once, assert_fifo_per_producer, drain_until_closed, scaled, tagged};
use flowbed_lockfree::{ArrayQueue, CapacityError, PopError, PushError};
use proptest::prelude::*;

#[test]
fn rejects_zero_capacity_with_a_typed_error() {
    assert_eq!(
        ArrayQueue::<u8>::try_new(0).unwrap_err(),
        CapacityError::Zero
    );
    let too_large = ArrayQueue::<u8>::MAX_CAPACITY + 1;
    assert!(matches!(
        ArrayQueue::<u8>::try_new(too_large),
        Err(CapacityError::TooLarge { .. })
    ));
}

#[test]
#[should_panic(expected = "capacity must be at least 1")]
fn new_panics_on_zero_capacity() {
    let _ = ArrayQueue::<u8>::new(0);
}

#[test]
fn full_push_hands_the_value_back() {
    let q = ArrayQueue::new(2);
    q.push(String::from("a")).unwrap();
    q.push(String::from("b")).unwrap();
    assert!(q.is_full());
    let error = q.push(String::from("c")).unwrap_err();
    assert!(error.is_full());
    assert_eq!(error.into_inner(), "c");
    assert_eq!(format!("{:?}", PushError::Full(())), "Full(..)");
    assert_eq!(PushError::Full(()).to_string(), "queue is full");
}

#[test]
fn wraps_around_many_laps_with_odd_capacity() {
    let q = ArrayQueue::new(3);
    for i in 0..1000 {
        q.push(i).unwrap();
        q.push(i + 1).unwrap();
        assert_eq!(q.len(), 2);
        assert_eq!(q.pop(), Ok(i));
        assert_eq!(q.pop(), Ok(i + 1));
        assert!(q.is_empty());
    }
}

#[test]
fn close_refuses_pushes_and_drains() {
    let q = ArrayQueue::new(4);
    q.push(1).unwrap();
    q.push(2).unwrap();
    assert!(q.close());
    assert!(q.is_closed());
    assert_eq!(q.push(3), Err(PushError::Closed(3)));
    assert_eq!(q.force_push(3).unwrap_err().into_inner(), 3);
    assert_eq!(q.pop(), Ok(1));
    assert_eq!(q.pop(), Ok(2));
    assert_eq!(q.pop(), Err(PopError::Closed));
    assert!(!q.close());
}

#[test]
fn force_push_overwrites_the_oldest() {
    let q = ArrayQueue::new(3);
    for i in 0..3 {
        assert_eq!(q.force_push(i), Ok(None));
    }
    assert_eq!(q.force_push(3), Ok(Some(0)));
    assert_eq!(q.force_push(4), Ok(Some(1)));
    assert_eq!(q.len(), 3);
    assert_eq!(q.pop(), Ok(2));
    assert_eq!(q.pop(), Ok(3));
    assert_eq!(q.pop(), Ok(4));
}

#[test]
fn drop_drops_every_value_left() {
    let marker = Arc::new(());
    {
        let q = ArrayQueue::new(8);
        for _ in 0..5 {
            q.push(Arc::clone(&marker)).unwrap();
        }
        drop(q.pop());
        assert_eq!(Arc::strong_count(&marker), 5);
    }
    assert_eq!(Arc::strong_count(&marker), 1);
}

#[derive(Debug, Clone)]
enum Op {
    Push(u16),
    ForcePush(u16),
    Pop,
    Close,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<u16>().prop_map(Op::Push),
        1 => any::<u16>().prop_map(Op::ForcePush),
        4 => Just(Op::Pop),
        1 => Just(Op::Close),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 256 }))]

    /// Every operation gives the same answer as a `VecDeque` with a capacity and a flag.
    #[test]
    fn matches_a_vecdeque_model(capacity in 1usize..6, ops in prop::collection::vec(op(), 0..200)) {
        let q = ArrayQueue::new(capacity);
        let mut model: VecDeque<u16> = VecDeque::new();
        let mut closed = false;
        for op in ops {
            match op {
                Op::Push(v) => {
                    let expected = if closed {
                        Err(PushError::Closed(v))
                    } else if model.len() == capacity {
                        Err(PushError::Full(v))
                    } else {
                        model.push_back(v);
                        Ok(())
                    };
                    prop_assert_eq!(q.push(v), expected);
                }
                Op::ForcePush(v) => {
                    let got = q.force_push(v).map_err(|e| e.into_inner());
                    let expected = if closed {
                        Err(v)
                    } else {
                        let evicted = if model.len() == capacity { model.pop_front() } else { None };
                        model.push_back(v);
                        Ok(evicted)
                    };
                    prop_assert_eq!(got, expected);
                }
                Op::Pop => {
                    let expected = match model.pop_front() {
                        Some(v) => Ok(v),
                        None if closed => Err(PopError::Closed),
                        None => Err(PopError::Empty),
                    };
                    prop_assert_eq!(q.pop(), expected);
                }
                Op::Close => {
                    prop_assert_eq!(q.close(), !closed);
                    closed = true;
                }
            }
            prop_assert_eq!(q.len(), model.len());
            prop_assert_eq!(q.is_empty(), model.is_empty());
            prop_assert_eq!(q.is_full(), model.len() == capacity);
            prop_assert_eq!(q.is_closed(), closed);
        }
    }
}

/// `producers` threads push `per_producer` tagged values each; `consumers` threads pop
/// until the queue is closed and drained. Returns what each consumer received.
fn run_mpmc(capacity: usize, producers: u64, consumers: usize, per_producer: u64) -> Vec<Vec<u64>> {
    let q = Arc::new(ArrayQueue::new(capacity));
    let start = Arc::new(Barrier::new(producers as usize + consumers));
    let consumer_threads: Vec<_> = (0..consumers)
        .map(|_| {
            let (q, start) = (Arc::clone(&q), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                drain_until_closed(|| q.pop())
            })
        })
        .collect();
    let producer_threads: Vec<_> = (0..producers)
        .map(|p| {
            let (q, start) = (Arc::clone(&q), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                for i in 0..per_producer {
                    let mut value = tagged(p, i);
                    while let Err(error) = q.push(value) {
                        value = error.into_inner();
                        thread::yield_now();
                    }
                }
            })
        })
        .collect();
    for producer in producer_threads {
        producer.join().unwrap();
    }
    q.close();
    consumer_threads
        .into_iter()
        .map(|c| c.join().unwrap())
        .collect()
}

#[test]
fn mpmc_every_value_exactly_once() {
    let per_producer = scaled(50_000) as u64;
    for (capacity, producers, consumers) in [(1, 2, 2), (16, 4, 4), (1024, 3, 1)] {
        let received = run_mpmc(capacity, producers, consumers, per_producer);
        for stream in &received {
            assert_fifo_per_producer(stream);
        }
        let all: Vec<u64> = received.into_iter().flatten().collect();
        assert_exactly_once(&all, producers, per_producer);
    }
}

/// A close in the middle: every push that returned `Ok` is popped exactly once, every
/// push after the close gets its value back, and nothing else appears.
#[test]
fn close_in_the_middle_loses_nothing_accepted() {
    let per_producer = scaled(100_000) as u64;
    let producers = 3;
    let q = Arc::new(ArrayQueue::new(64));
    let start = Arc::new(Barrier::new(producers + 2));
    let producer_threads: Vec<_> = (0..producers as u64)
        .map(|p| {
            let (q, start) = (Arc::clone(&q), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                let mut accepted = Vec::new();
                for i in 0..per_producer {
                    let mut value = tagged(p, i);
                    loop {
                        match q.push(value) {
                            Ok(()) => {
                                accepted.push(tagged(p, i));
                                break;
                            }
                            Err(PushError::Full(v)) => {
                                value = v;
                                thread::yield_now();
                            }
                            Err(PushError::Closed(v)) => {
                                assert_eq!(
                                    v,
                                    tagged(p, i),
                                    "a refused push hands its own value back"
                                );
                                return accepted;
                            }
                        }
                    }
                }
                accepted
            })
        })
        .collect();
    let consumer = {
        let (q, start) = (Arc::clone(&q), Arc::clone(&start));
        thread::spawn(move || {
            start.wait();
            drain_until_closed(|| q.pop())
        })
    };
    start.wait();
    // Let some values through, then close while producers are still pushing.
    // The consumer may keep the queue short until every producer is done, so
    // stop waiting then too (closing a drained queue must also lose nothing).
    while q.len() < 32 && !producer_threads.iter().all(|p| p.is_finished()) {
        thread::yield_now();
    }
    q.close();
    let mut accepted: Vec<u64> = producer_threads
        .into_iter()
        .flat_map(|p| p.join().unwrap())
        .collect();
    let mut received = consumer.join().unwrap();
    assert_fifo_per_producer(&received);
    accepted.sort_unstable();
    received.sort_unstable();
    assert_eq!(accepted, received);
}

#[test]
fn concurrent_force_push_keeps_the_newest_and_loses_no_count() {
    // Two threads force-push into a small queue; every value is either still in the queue
    // at the end or was returned as evicted, exactly once.
    let per_producer = scaled(20_000) as u64;
    let q = Arc::new(ArrayQueue::new(4));
    let handles: Vec<_> = (0..2u64)
        .map(|p| {
            let q = Arc::clone(&q);
            thread::spawn(move || {
                let mut evicted = Vec::new();
                for i in 0..per_producer {
                    if let Some(old) = q.force_push(tagged(p, i)).unwrap() {
                        evicted.push(old);
                    }
                }
                evicted
            })
        })
        .collect();
    let mut all: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(q.len(), 4);
    all.extend(std::iter::from_fn(|| q.pop().ok()));
    assert_exactly_once(&all, 2, per_producer);
}
