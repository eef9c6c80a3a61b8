//! Helpers shared by the integration tests.

#![allow(dead_code)]

/// Stress sizes: large natively, tiny under miri (which runs ~1000x slower).
pub(crate) fn scaled(native: usize) -> usize {
    if cfg!(miri) {
        (native / 500).max(8)
    } else {
        native
    }
}

/// Checks that `received` holds every value of every producer exactly once, and that each
/// producer's values arrived in the order it sent them when `fifo_per_producer` is set
/// (true for any single consumer of a FIFO queue). Values are `producer << 32 | sequence`.
pub(crate) fn assert_exactly_once(received: &[u64], producers: u64, per_producer: u64) {
    let mut seen = vec![vec![false; per_producer as usize]; producers as usize];
    for &value in received {
        let producer = (value >> 32) as usize;
        let sequence = (value & 0xffff_ffff) as usize;
        assert!(!seen[producer][sequence], "value {value:#x} received twice");
        seen[producer][sequence] = true;
    }
    for (producer, flags) in seen.iter().enumerate() {
        let missing = flags.iter().filter(|seen| !**seen).count();
        assert_eq!(missing, 0, "producer {producer} lost {missing} values");
    }
}

/// Checks that within one consumer's stream, each producer's values are increasing.
pub(crate) fn assert_fifo_per_producer(stream: &[u64]) {
    let mut last = std::collections::HashMap::new();
    for &value in stream {
        let producer = value >> 32;
        let sequence = value & 0xffff_ffff;
        if let Some(previous) = last.insert(producer, sequence) {
            assert!(
                previous < sequence,
                "producer {producer}: {previous} before {sequence}"
            );
        }
    }
}

/// The value producer `p` sends as its `i`th.
pub(crate) fn tagged(producer: u64, sequence: u64) -> u64 {
    producer << 32 | sequence
}

/// Pops with `pop` until the queue reports closed-and-drained, yielding while it is empty;
/// returns what was popped, in order.
pub(crate) fn drain_until_closed<T>(
    mut pop: impl FnMut() -> Result<T, flowbed_lockfree::PopError>,
) -> Vec<T> {
    let mut got = Vec::new();
    loop {
        match pop() {
            Ok(value) => got.push(value),
            Err(flowbed_lockfree::PopError::Empty) => std::thread::yield_now(),
            Err(flowbed_lockfree::PopError::Closed) => return got,
        }
    }
}
