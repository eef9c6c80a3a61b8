//! `SegQueue`: behaviour across block boundaries, a model-based property test, and
//! concurrent exactly-once checks with `close()` racing pushes and pops.

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Barrier};
use std::thread;

use common::{assert_exactly_once, assert_fifo_per_producer, drain_until_closed, scaled, tagged};
use flowbed_lockfree::{PopError, SegQueue};
use proptest::prelude::*;

#[test]
fn fifo_across_many_blocks() {
    let q = SegQueue::new();
    for i in 0..1000 {
        q.push(i).unwrap();
    }
    assert_eq!(q.len(), 1000);
    for i in 0..1000 {
        assert_eq!(q.pop(), Ok(i));
    }
    assert_eq!(q.pop(), Err(PopError::Empty));
    assert!(q.is_empty());
    assert_eq!(q.len(), 0);
}

#[test]
fn close_refuses_pushes_and_drains() {
    let q = SegQueue::new();
    for i in 0..40 {
        q.push(i).unwrap();
    }
    assert!(q.close());
    assert!(!q.close());
    assert_eq!(q.push(99).unwrap_err().into_inner(), 99);
    for i in 0..40 {
        assert_eq!(q.pop(), Ok(i));
    }
    assert_eq!(q.pop(), Err(PopError::Closed));
}

#[test]
fn drop_drops_every_value_left_and_recycled_blocks_hold_none() {
    let marker = Arc::new(());
    {
        let q = SegQueue::new();
        // Cycle through several blocks so some are recycled, then leave values behind.
        for _ in 0..200 {
            q.push(Arc::clone(&marker)).unwrap();
        }
        for _ in 0..150 {
            drop(q.pop().unwrap());
        }
        assert_eq!(Arc::strong_count(&marker), 51);
    }
    assert_eq!(Arc::strong_count(&marker), 1);
}

#[derive(Debug, Clone)]
enum Op {
    Push(u16),
    Pop,
    Close,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => any::<u16>().prop_map(Op::Push),
        4 => Just(Op::Pop),
        1 => Just(Op::Close),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 256 }))]

    /// Every operation gives the same answer as a `VecDeque` with a closed flag; sequences
    /// are long enough to cross several 31-slot blocks.
    #[test]
    fn matches_a_vecdeque_model(ops in prop::collection::vec(op(), 0..400)) {
        let q = SegQueue::new();
        let mut model = VecDeque::new();
        let mut closed = false;
        for op in ops {
            match op {
                Op::Push(v) => {
                    let got = q.push(v).map_err(|e| e.into_inner());
                    if closed {
                        prop_assert_eq!(got, Err(v));
                    } else {
                        prop_assert_eq!(got, Ok(()));
                        model.push_back(v);
                    }
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
        }
    }
}

#[test]
fn mpmc_every_value_exactly_once_with_close_racing() {
    let per_producer = scaled(50_000) as u64;
    let (producers, consumers) = (3u64, 3usize);
    let q = Arc::new(SegQueue::new());
    let start = Arc::new(Barrier::new(producers as usize + consumers + 1));
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
                let mut accepted = Vec::new();
                for i in 0..per_producer {
                    match q.push(tagged(p, i)) {
                        Ok(()) => accepted.push(tagged(p, i)),
                        Err(refused) => {
                            assert_eq!(refused.into_inner(), tagged(p, i));
                            break;
                        }
                    }
                }
                accepted
            })
        })
        .collect();
    start.wait();
    while q.len() < 1000 && !producer_threads.iter().all(|p| p.is_finished()) {
        thread::yield_now();
    }
    q.close();
    let mut accepted: Vec<u64> = producer_threads
        .into_iter()
        .flat_map(|p| p.join().unwrap())
        .collect();
    let received: Vec<Vec<u64>> = consumer_threads
        .into_iter()
        .map(|c| c.join().unwrap())
        .collect();
    for stream in &received {
        assert_fifo_per_producer(stream);
    }
    let mut received: Vec<u64> = received.into_iter().flatten().collect();
    accepted.sort_unstable();
    received.sort_unstable();
    assert_eq!(accepted, received);
}

#[test]
fn mpmc_without_close_delivers_everything() {
    let per_producer = scaled(40_000) as u64;
    let q = Arc::new(SegQueue::new());
    let producers: Vec<_> = (0..2u64)
        .map(|p| {
            let q = Arc::clone(&q);
            thread::spawn(move || {
                for i in 0..per_producer {
                    q.push(tagged(p, i)).unwrap();
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let q = Arc::clone(&q);
            thread::spawn(move || {
                let mut got = Vec::new();
                while got.len() < per_producer as usize {
                    if let Ok(v) = q.pop() {
                        got.push(v);
                    } else {
                        thread::yield_now();
                    }
                }
                got
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    let all: Vec<u64> = consumers
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    assert_exactly_once(&all, 2, per_producer);
    assert!(q.is_empty());
}
