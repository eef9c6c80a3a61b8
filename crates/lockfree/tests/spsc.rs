//! The SPSC ring: behaviour, chunks across the wrap point, a model-based property test and
//! a concurrent transfer through chunks.

mod common;

use std::collections::VecDeque;
use std::sync::Arc;
use std::thread;

use common::scaled;
use flowbed_lockfree::{CapacityError, ChunkError, PopError, PushError, spsc};
use proptest::prelude::*;

#[test]
fn rejects_zero_capacity() {
    assert_eq!(spsc::try_channel::<u8>(0).unwrap_err(), CapacityError::Zero);
}

#[test]
fn push_pop_and_full() {
    let (mut tx, mut rx) = spsc::channel(3);
    assert_eq!(tx.capacity(), 3);
    for i in 0..3 {
        tx.push(i).unwrap();
    }
    assert_eq!(tx.push(3), Err(PushError::Full(3)));
    assert_eq!(rx.slots(), 3);
    assert_eq!(rx.pop(), Ok(0));
    tx.push(3).unwrap();
    assert_eq!(tx.slots(), 0);
    for i in 1..4 {
        assert_eq!(rx.pop(), Ok(i));
    }
    assert_eq!(rx.pop(), Err(PopError::Empty));
}

#[test]
fn dropped_ends_are_reported() {
    let (mut tx, rx) = spsc::channel(1);
    tx.push(1).unwrap();
    drop(rx);
    assert!(tx.is_abandoned());
    assert_eq!(tx.push(2), Err(PushError::Closed(2)));

    let (mut tx, mut rx) = spsc::channel(4);
    tx.push(1).unwrap();
    drop(tx);
    assert!(rx.is_abandoned());
    assert_eq!(rx.pop(), Ok(1));
    assert_eq!(rx.pop(), Err(PopError::Closed));
}

#[test]
fn chunks_wrap_around_the_buffer_end() {
    let (mut tx, mut rx) = spsc::channel(4);
    tx.push_slice(&[0, 0, 0]);
    let mut out = [0; 3];
    assert_eq!(rx.pop_slice(&mut out), 3);
    // The next 4 slots start at index 3: one run of 1 and a wrapped run of 3.
    let mut chunk = tx.write_chunk_uninit(4).unwrap();
    let (first, second) = chunk.as_mut_slices();
    assert_eq!((first.len(), second.len()), (1, 3));
    assert_eq!(chunk.fill_from_iter(1..=4), 4);
    assert_eq!(
        tx.write_chunk_uninit(1).unwrap_err(),
        ChunkError {
            requested: 1,
            available: 0
        }
    );
    let chunk = rx.read_chunk(4).unwrap();
    let (a, b) = chunk.as_slices();
    assert_eq!((a, b), (&[1][..], &[2, 3, 4][..]));
    chunk.commit(2);
    assert_eq!(rx.pop(), Ok(3));
    assert_eq!(
        rx.read_chunk(2).unwrap_err(),
        ChunkError {
            requested: 2,
            available: 1
        }
    );
}

#[test]
fn uncommitted_chunks_change_nothing_and_iterators_free_only_what_they_took() {
    let (mut tx, mut rx) = spsc::channel(8);
    {
        let mut chunk = tx.write_chunk_uninit(5).unwrap();
        assert_eq!(chunk.as_mut_slices().0.len(), 5);
        // Dropped without commit: nothing is published.
    }
    assert_eq!(rx.slots(), 0);
    for word in ["a", "b", "c"] {
        tx.push(word.to_string()).unwrap();
    }
    let mut iter = rx.read_chunk(3).unwrap().into_iter();
    assert_eq!(iter.next().as_deref(), Some("a"));
    drop(iter);
    assert_eq!(rx.pop().as_deref(), Ok("b"));
    rx.read_chunk(1).unwrap().commit_all();
    assert_eq!(rx.slots(), 0);
}

#[test]
fn values_left_in_the_ring_are_dropped_with_it() {
    let marker = Arc::new(());
    let (mut tx, rx) = spsc::channel(4);
    for _ in 0..3 {
        tx.push(Arc::clone(&marker)).unwrap();
    }
    drop(tx);
    drop(rx);
    assert_eq!(Arc::strong_count(&marker), 1);
}

#[derive(Debug, Clone)]
enum Op {
    Push(u8),
    Pop,
    PushSlice(Vec<u8>),
    PopSlice(usize),
    ReadChunk(usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        any::<u8>().prop_map(Op::Push),
        Just(Op::Pop),
        prop::collection::vec(any::<u8>(), 0..8).prop_map(Op::PushSlice),
        (0usize..8).prop_map(Op::PopSlice),
        (0usize..8, 0usize..8).prop_map(|(n, c)| Op::ReadChunk(n, c)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 256 }))]

    #[test]
    fn matches_a_vecdeque_model(capacity in 1usize..7, ops in prop::collection::vec(op(), 0..200)) {
        let (mut tx, mut rx) = spsc::channel(capacity);
        let mut model = VecDeque::new();
        for op in ops {
            match op {
                Op::Push(v) => {
                    if model.len() < capacity {
                        prop_assert_eq!(tx.push(v), Ok(()));
                        model.push_back(v);
                    } else {
                        prop_assert_eq!(tx.push(v), Err(PushError::Full(v)));
                    }
                }
                Op::Pop => {
                    let expected = model.pop_front().ok_or(PopError::Empty);
                    prop_assert_eq!(rx.pop(), expected);
                }
                Op::PushSlice(values) => {
                    let fit = values.len().min(capacity - model.len());
                    prop_assert_eq!(tx.push_slice(&values), fit);
                    model.extend(&values[..fit]);
                }
                Op::PopSlice(n) => {
                    let mut out = vec![0; n];
                    let got = rx.pop_slice(&mut out);
                    prop_assert_eq!(got, n.min(model.len()));
                    let expected: Vec<u8> = model.drain(..got).collect();
                    prop_assert_eq!(&out[..got], &expected[..]);
                }
                Op::ReadChunk(n, commit) => match rx.read_chunk(n) {
                    Ok(chunk) => {
                        prop_assert!(n <= model.len());
                        let (a, b) = chunk.as_slices();
                        let seen: Vec<u8> = a.iter().chain(b).copied().collect();
                        let expected: Vec<u8> = model.iter().take(n).copied().collect();
                        prop_assert_eq!(seen, expected);
                        let commit = commit.min(n);
                        chunk.commit(commit);
                        model.drain(..commit);
                    }
                    Err(error) => {
                        prop_assert!(n > model.len());
                        prop_assert_eq!(error.available, model.len());
                    }
                },
            }
            prop_assert_eq!(rx.slots(), model.len());
            prop_assert_eq!(tx.slots(), capacity - model.len());
        }
    }
}

#[test]
fn concurrent_chunked_transfer_is_exact_and_ordered() {
    let total = scaled(1_000_000) as u64;
    let (mut tx, mut rx) = spsc::channel::<u64>(256);
    let producer = thread::spawn(move || {
        let mut next = 0u64;
        while next < total {
            let want = (total - next).min(64) as usize;
            let free = tx.slots().min(want);
            if free == 0 {
                thread::yield_now();
                continue;
            }
            let chunk = tx.write_chunk_uninit(free).unwrap();
            next += chunk.fill_from_iter(next..total) as u64;
        }
    });
    let mut expected = 0u64;
    while expected < total {
        let available = rx.slots().min(100);
        if available == 0 {
            thread::yield_now();
            continue;
        }
        for value in rx.read_chunk(available).unwrap() {
            assert_eq!(value, expected);
            expected += 1;
        }
    }
    producer.join().unwrap();
    assert_eq!(rx.pop(), Err(PopError::Closed));
}
