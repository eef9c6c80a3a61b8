//! Lock-free queues for handing events between pipeline stages, and a backpressured
//! channel built on them.
//!
//! | type | shape | blocking? |
//! |---|---|---|
//! | [`ArrayQueue`] | bounded MPMC ring, `force_push` overwrite mode | never (lock-free) |
//! | [`SegQueue`] | unbounded MPMC, recycles its segments | never (lock-free) |
//! | [`spsc::channel`] | bounded SPSC ring with batch chunks | never (wait-free) |
//! | [`channel::bounded`] / [`channel::unbounded`] | MPMC channel over the queues | async and blocking waits, spin then park |
//!
//! Every queue can be closed: producers then fail and get their value back, consumers
//! drain what is left and then see [`PopError::Closed`]. No value that a queue accepted is
//! ever lost or duplicated; the loom models in `tests/loom.rs`, the miri runs and the
//! property tests in `tests/` check exactly that.
//!
//! [`histogram`] has the lock-free latency histograms that the pools record into;
//! [`Doorbell`] wakes one sleeping task without costing its ringers a lock.
//!
//! # Examples
//!
//! ```
//! use std::sync::Arc;
//! use flowbed_lockfree::ArrayQueue;
//!
//! let queue = Arc::new(ArrayQueue::new(1024));
//! let producer = {
//!     let queue = Arc::clone(&queue);
//!     std::thread::spawn(move || {
//!         for event in 0..10_000u64 {
//!             let mut event = event;
//!             while let Err(full) = queue.push(event) {
//!                 event = full.into_inner();
//!                 std::thread::yield_now();
//!             }
//!         }
//!         queue.close();
//!     })
//! };
//! let mut received = 0u64;
//! loop {
//!     match queue.pop() {
//!         Ok(_) => received += 1,
//!         Err(flowbed_lockfree::PopError::Empty) => std::thread::yield_now(),
//!         Err(flowbed_lockfree::PopError::Closed) => break,
//!     }
//! }
//! producer.join().unwrap();
//! assert_eq!(received, 10_000);
//! ```

mod array_queue;
mod backoff;
pub mod channel;
mod doorbell;
mod error;
pub mod histogram;
mod seg_queue;
pub mod spsc;
mod sync;
pub mod wait_list;

pub use array_queue::ArrayQueue;
pub use backoff::Backoff;
pub use doorbell::Doorbell;
pub use error::{
    CapacityError, ChunkError, ClosedError, PopError, PushError, RecvError, RecvTimeoutError,
    SendTimeoutError,
};
pub use seg_queue::SegQueue;
pub use wait_list::WaitList;

/// The README's example, compiled and run as a doctest so it cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
