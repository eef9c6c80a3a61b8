//! Errors of every queue and channel operation.
//!
//! An operation that refuses a value hands it back inside the error (`into_inner()`), so
//! nothing a caller tried to enqueue is ever lost. `Debug` does not require `T: Debug`.
//!
//! The outcomes of a push or pop (`Full`/`Closed`, `Empty`/`Closed`, `Timeout`/`Closed`)
//! are complete sets, so those enums are exhaustive: a `match` on them needs no wildcard
//! arm, and a new outcome would be a breaking change callers should see. Only
//! [`CapacityError`] is `#[non_exhaustive]`.

use std::fmt;

/// Why a non-blocking push (or `try_send`) did not enqueue its value. The value is inside.
#[derive(thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum PushError<T> {
    /// The queue holds `capacity()` values; try again after a pop.
    #[error("queue is full")]
    Full(T),
    /// The queue was closed; no push will ever succeed again.
    #[error("queue is closed")]
    Closed(T),
}

impl<T> PushError<T> {
    /// Returns the value that was not pushed.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_lockfree::ArrayQueue;
    ///
    /// let q = ArrayQueue::new(1);
    /// q.push("a").unwrap();
    /// let rejected = q.push("b").unwrap_err();
    /// assert!(rejected.is_full());
    /// assert_eq!(rejected.into_inner(), "b");
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            Self::Full(value) | Self::Closed(value) => value,
        }
    }

    /// True if the push failed because the queue was full.
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Full(_))
    }

    /// True if the push failed because the queue was closed.
    pub fn is_closed(&self) -> bool {
        matches!(self, Self::Closed(_))
    }
}

impl<T> fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("Full(..)"),
            Self::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

/// A push to a closed queue or channel. The value is inside.
#[derive(thiserror::Error, PartialEq, Eq, Clone, Copy)]
#[error("queue is closed")]
pub struct ClosedError<T>(pub T);

impl<T> ClosedError<T> {
    /// Returns the value that was not pushed.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for ClosedError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClosedError(..)")
    }
}

/// Why a non-blocking pop (or `try_recv`) returned no value.
#[derive(thiserror::Error, Debug, PartialEq, Eq, Clone, Copy)]
pub enum PopError {
    /// Nothing to pop right now; a later push may fill the queue.
    #[error("queue is empty")]
    Empty,
    /// The queue is closed and everything pushed before the close has been popped.
    #[error("queue is closed and drained")]
    Closed,
}

/// Why a blocking or async send with a deadline did not enqueue its value. The value is
/// inside.
#[derive(thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum SendTimeoutError<T> {
    /// No room appeared before the deadline.
    #[error("timed out waiting for room in the channel")]
    Timeout(T),
    /// The channel was closed or every receiver was dropped.
    #[error("channel is closed")]
    Closed(T),
}

impl<T> SendTimeoutError<T> {
    /// Returns the value that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            Self::Timeout(value) | Self::Closed(value) => value,
        }
    }
}

impl<T> fmt::Debug for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout(_) => f.write_str("Timeout(..)"),
            Self::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

/// A receive on a channel that is closed and drained.
#[derive(thiserror::Error, Debug, PartialEq, Eq, Clone, Copy)]
#[error("channel is closed and drained")]
pub struct RecvError;

/// Why a receive with a deadline returned no value.
#[derive(thiserror::Error, Debug, PartialEq, Eq, Clone, Copy)]
pub enum RecvTimeoutError {
    /// Nothing arrived before the deadline.
    #[error("timed out waiting for a value")]
    Timeout,
    /// The channel is closed and drained.
    #[error("channel is closed and drained")]
    Closed,
}

/// A capacity that no queue can be built with.
#[derive(thiserror::Error, Debug, PartialEq, Eq, Clone, Copy)]
#[non_exhaustive]
pub enum CapacityError {
    /// A bounded queue needs room for at least one value.
    #[error("capacity must be at least 1")]
    Zero,
    /// The capacity does not leave room for the position counters' lap bits.
    #[error("capacity {requested} is larger than the maximum {max}")]
    TooLarge {
        /// The capacity asked for.
        requested: usize,
        /// The largest capacity this queue supports.
        max: usize,
    },
}

/// A chunk of the SPSC ring asked for more slots than are free (writing) or filled
/// (reading) right now.
#[derive(thiserror::Error, Debug, PartialEq, Eq, Clone, Copy)]
#[error("asked for {requested} slots but only {available} are available")]
pub struct ChunkError {
    /// Slots asked for.
    pub requested: usize,
    /// Slots available at the time of the call.
    pub available: usize,
}
