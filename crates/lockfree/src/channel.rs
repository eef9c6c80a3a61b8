//! A backpressured MPMC channel: the lock-free queues plus async and blocking waits.
//!
//! [`bounded`] wraps an [`ArrayQueue`]: senders wait while it is full, which is how a slow
//! stage slows the stages before it instead of letting memory grow. [`unbounded`] wraps a
//! [`SegQueue`]: sends never wait. Either way receivers wait while it is empty.
//!
//! Waiting spins briefly (a value often arrives within a microsecond), then sleeps: a
//! parked thread or a pending task uses no CPU. Senders and receivers can be cloned; when
//! the last sender (or the last receiver) is dropped, or anyone calls `close()`, the
//! channel closes: sends fail and hand the value back, receives drain what is left and
//! then fail.
//!
//! The async `send` and `recv` futures are cancel-safe: dropping one (for example when a
//! `tokio::time::timeout` or `select!` gives up on it) loses no value and no wake-up.
//!
//! # Examples
//!
//! ```
//! use flowbed_lockfree::channel;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let (tx, rx) = channel::bounded(2);
//! let producer = tokio::spawn(async move {
//!     for i in 0..10 {
//!         tx.send(i).await.unwrap(); // waits while 2 values are in flight
//!     }
//! });
//! let mut sum = 0;
//! while let Ok(value) = rx.recv().await {
//!     sum += value;
//! }
//! producer.await.unwrap();
//! assert_eq!(sum, 45);
//! # });
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::array_queue::ArrayQueue;
use crate::error::{
    CapacityError, ClosedError, PopError, PushError, RecvError, RecvTimeoutError, SendTimeoutError,
};
use crate::seg_queue::SegQueue;
use crate::sync::{Arc, AtomicUsize, Ordering};
use crate::wait_list::{EntryState, WaitKey, WaitList, Wake};

enum Queue<T> {
    Bounded(ArrayQueue<T>),
    Unbounded(SegQueue<T>),
}

impl<T> Queue<T> {
    #[inline]
    fn push(&self, value: T) -> Result<(), PushError<T>> {
        match self {
            Self::Bounded(queue) => queue.push(value),
            Self::Unbounded(queue) => queue
                .push(value)
                .map_err(|ClosedError(value)| PushError::Closed(value)),
        }
    }

    #[inline]
    fn pop(&self) -> Result<T, PopError> {
        match self {
            Self::Bounded(queue) => queue.pop(),
            Self::Unbounded(queue) => queue.pop(),
        }
    }

    fn close(&self) -> bool {
        match self {
            Self::Bounded(queue) => queue.close(),
            Self::Unbounded(queue) => queue.close(),
        }
    }

    fn is_closed(&self) -> bool {
        match self {
            Self::Bounded(queue) => queue.is_closed(),
            Self::Unbounded(queue) => queue.is_closed(),
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::Bounded(queue) => queue.len(),
            Self::Unbounded(queue) => queue.len(),
        }
    }

    fn capacity(&self) -> Option<usize> {
        match self {
            Self::Bounded(queue) => Some(queue.capacity()),
            Self::Unbounded(_) => None,
        }
    }
}

struct Shared<T> {
    queue: Queue<T>,
    senders: AtomicUsize,
    receivers: AtomicUsize,
    /// Senders waiting for room (bounded channels only).
    send_waiters: WaitList,
    /// Receivers waiting for a value.
    recv_waiters: WaitList,
}

impl<T> Shared<T> {
    fn into_ends(queue: Queue<T>) -> (Sender<T>, Receiver<T>) {
        let shared = Arc::new(Self {
            queue,
            senders: AtomicUsize::new(1),
            receivers: AtomicUsize::new(1),
            send_waiters: WaitList::new(),
            recv_waiters: WaitList::new(),
        });
        (
            Sender {
                shared: shared.clone(),
            },
            Receiver { shared },
        )
    }

    #[inline]
    fn try_send(&self, value: T) -> Result<(), PushError<T>> {
        self.queue.push(value)?;
        self.recv_waiters.notify_one();
        Ok(())
    }

    #[inline]
    fn try_recv(&self) -> Result<T, PopError> {
        let value = self.queue.pop()?;
        self.send_waiters.notify_one();
        Ok(value)
    }

    fn close(&self) -> bool {
        let closed_now = self.queue.close();
        if closed_now {
            self.send_waiters.notify_all();
            self.recv_waiters.notify_all();
        }
        closed_now
    }
}

/// Creates a channel that holds at most `capacity` values in flight.
///
/// # Panics
///
/// If `capacity` is 0 or above [`ArrayQueue::MAX_CAPACITY`]; [`try_bounded`] returns a typed
/// error instead.
///
/// # Examples
///
/// ```
/// let (tx, rx) = flowbed_lockfree::channel::bounded(1);
/// tx.try_send(1).unwrap();
/// assert!(tx.try_send(2).unwrap_err().is_full());
/// assert_eq!(rx.try_recv(), Ok(1));
/// ```
pub fn bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    Shared::into_ends(Queue::Bounded(ArrayQueue::new(capacity)))
}

/// Creates a channel that holds at most `capacity` values in flight.
///
/// # Errors
///
/// [`CapacityError`] for a capacity of 0 or above [`ArrayQueue::MAX_CAPACITY`].
///
/// # Examples
///
/// ```
/// assert!(flowbed_lockfree::channel::try_bounded::<u8>(0).is_err());
/// ```
pub fn try_bounded<T>(capacity: usize) -> Result<(Sender<T>, Receiver<T>), CapacityError> {
    Ok(Shared::into_ends(Queue::Bounded(ArrayQueue::try_new(
        capacity,
    )?)))
}

/// Creates a channel without a bound: sends never wait (and memory grows with the
/// backlog). Prefer [`bounded`] between pipeline stages.
///
/// # Examples
///
/// ```
/// let (tx, rx) = flowbed_lockfree::channel::unbounded();
/// for i in 0..1000 {
///     tx.try_send(i).unwrap();
/// }
/// assert_eq!(rx.len(), 1000);
/// ```
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    Shared::into_ends(Queue::Unbounded(SegQueue::new()))
}

/// The sending half of a channel. Clone it for more producers.
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Sender<T> {
    /// Sends without waiting.
    ///
    /// # Errors
    ///
    /// [`PushError::Full`] or [`PushError::Closed`], holding `value`.
    #[inline]
    pub fn try_send(&self, value: T) -> Result<(), PushError<T>> {
        self.shared.try_send(value)
    }

    /// Sends, waiting asynchronously while the channel is full.
    ///
    /// Cancel-safe: if the future is dropped before it completes, the value was not sent
    /// (and is dropped with the future).
    ///
    /// # Errors
    ///
    /// [`ClosedError`] holding the value if the channel is (or becomes) closed.
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let (tx, rx) = flowbed_lockfree::channel::bounded(1);
    /// tx.send("hi").await.unwrap();
    /// assert_eq!(rx.recv().await, Ok("hi"));
    /// # });
    /// ```
    pub fn send(&self, value: T) -> Send<'_, T> {
        Send {
            shared: &self.shared,
            value: Some(value),
            key: None,
        }
    }

    /// Sends, blocking the thread while the channel is full.
    ///
    /// # Errors
    ///
    /// [`ClosedError`] holding the value if the channel is (or becomes) closed.
    pub fn send_blocking(&self, value: T) -> Result<(), ClosedError<T>> {
        self.send_until(value, None).map_err(|error| match error {
            SendTimeoutError::Closed(value) | SendTimeoutError::Timeout(value) => {
                ClosedError(value)
            }
        })
    }

    /// Sends, blocking the thread at most `timeout` while the channel is full.
    ///
    /// # Errors
    ///
    /// [`SendTimeoutError::Timeout`] or [`SendTimeoutError::Closed`], holding the value.
    pub fn send_timeout(&self, value: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.send_until(value, Instant::now().checked_add(timeout))
    }

    fn send_until(&self, value: T, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
        let shared = &*self.shared;
        // The value moves into each attempt and comes back when the channel is full.
        let mut pending = Some(value);
        let mut attempt = || {
            let value = pending
                .take()
                .expect("the value is back after every failed attempt");
            match shared.try_send(value) {
                Ok(()) => Some(Ok(())),
                Err(PushError::Full(value)) => {
                    pending = Some(value);
                    None
                }
                Err(PushError::Closed(value)) => Some(Err(SendTimeoutError::Closed(value))),
            }
        };
        match shared.send_waiters.wait_until(deadline, &mut attempt) {
            Some(result) => result,
            None => {
                let value = pending
                    .take()
                    .expect("a timed-out attempt hands the value back");
                Err(SendTimeoutError::Timeout(value))
            }
        }
    }

    /// Closes the channel for everyone. Returns `true` if this call closed it.
    pub fn close(&self) -> bool {
        self.shared.close()
    }

    /// True once the channel is closed.
    pub fn is_closed(&self) -> bool {
        self.shared.queue.is_closed()
    }

    /// Values in the channel right now.
    pub fn len(&self) -> usize {
        self.shared.queue.len()
    }

    /// True if the channel holds no value right now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bound of a [`bounded`] channel; `None` for [`unbounded`].
    pub fn capacity(&self) -> Option<usize> {
        self.shared.queue.capacity()
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.close();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// The receiving half of a channel. Clone it for more consumers; each value goes to one.
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Receiver<T> {
    /// Receives without waiting.
    ///
    /// # Errors
    ///
    /// [`PopError::Empty`], or [`PopError::Closed`] once closed and drained.
    #[inline]
    pub fn try_recv(&self) -> Result<T, PopError> {
        self.shared.try_recv()
    }

    /// Receives, waiting asynchronously while the channel is empty.
    ///
    /// Cancel-safe: a dropped future has taken no value.
    ///
    /// # Errors
    ///
    /// [`RecvError`] once the channel is closed and drained.
    pub fn recv(&self) -> Recv<'_, T> {
        Recv {
            shared: &self.shared,
            key: None,
        }
    }

    /// Receives, blocking the thread while the channel is empty.
    ///
    /// # Errors
    ///
    /// [`RecvError`] once the channel is closed and drained.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = flowbed_lockfree::channel::bounded(4);
    /// std::thread::spawn(move || tx.send_blocking(42).unwrap());
    /// assert_eq!(rx.recv_blocking(), Ok(42));
    /// assert!(rx.recv_blocking().is_err()); // the sender is gone
    /// ```
    pub fn recv_blocking(&self) -> Result<T, RecvError> {
        self.recv_until(None).map_err(|_| RecvError)
    }

    /// Receives, blocking the thread at most `timeout` while the channel is empty.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`], or [`RecvTimeoutError::Closed`] once closed and
    /// drained.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_until(Instant::now().checked_add(timeout))
    }

    fn recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let shared = &*self.shared;
        let attempt = || match shared.try_recv() {
            Ok(value) => Some(Ok(value)),
            Err(PopError::Empty) => None,
            Err(PopError::Closed) => Some(Err(RecvTimeoutError::Closed)),
        };
        shared
            .recv_waiters
            .wait_until(deadline, attempt)
            .unwrap_or(Err(RecvTimeoutError::Timeout))
    }

    /// Closes the channel for everyone. Returns `true` if this call closed it.
    pub fn close(&self) -> bool {
        self.shared.close()
    }

    /// True once the channel is closed (values may still be left to receive).
    pub fn is_closed(&self) -> bool {
        self.shared.queue.is_closed()
    }

    /// Values in the channel right now.
    pub fn len(&self) -> usize {
        self.shared.queue.len()
    }

    /// True if the channel holds no value right now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bound of a [`bounded`] channel; `None` for [`unbounded`].
    pub fn capacity(&self) -> Option<usize> {
        self.shared.queue.capacity()
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.shared.receivers.fetch_add(1, Ordering::Relaxed);
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        if self.shared.receivers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.close();
        }
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// The future returned by [`Sender::send`].
#[must_use = "futures do nothing unless awaited"]
pub struct Send<'a, T> {
    shared: &'a Arc<Shared<T>>,
    value: Option<T>,
    key: Option<WaitKey>,
}

// The value is never pinned in place: it is moved into the queue.
impl<T> Unpin for Send<'_, T> {}

impl<T> Future for Send<'_, T> {
    type Output = Result<(), ClosedError<T>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let list = &this.shared.send_waiters;
        if let Some(key) = this.key {
            if list.poll(key, Some(cx.waker())) == EntryState::Waiting {
                return Poll::Pending;
            }
            this.key = None;
        }
        let value = this.value.take().expect("`Send` polled after completion");
        let value = match this.shared.try_send(value) {
            Ok(()) => return Poll::Ready(Ok(())),
            Err(PushError::Closed(value)) => return Poll::Ready(Err(ClosedError(value))),
            Err(PushError::Full(value)) => value,
        };
        let key = list.register(Wake::Task(cx.waker().clone()));
        match this.shared.try_send(value) {
            Ok(()) => {
                list.cancel(key);
                Poll::Ready(Ok(()))
            }
            Err(PushError::Closed(value)) => {
                list.cancel(key);
                Poll::Ready(Err(ClosedError(value)))
            }
            Err(PushError::Full(value)) => {
                this.value = Some(value);
                this.key = Some(key);
                Poll::Pending
            }
        }
    }
}

impl<T> Send<'_, T> {
    /// Gives up sending: the value back if it is not in the channel yet (`None` once the
    /// send has completed). Like dropping the future, but the value is not lost.
    pub fn cancel(mut self) -> Option<T> {
        if let Some(key) = self.key.take() {
            self.shared.send_waiters.cancel(key);
        }
        self.value.take()
    }
}

impl<T> Drop for Send<'_, T> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.shared.send_waiters.cancel(key);
        }
    }
}

impl<T> fmt::Debug for Send<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Send")
            .field("done", &self.value.is_none())
            .field("waiting", &self.key.is_some())
            .finish()
    }
}

/// The future returned by [`Receiver::recv`].
#[must_use = "futures do nothing unless awaited"]
pub struct Recv<'a, T> {
    shared: &'a Arc<Shared<T>>,
    key: Option<WaitKey>,
}

impl<T> Future for Recv<'_, T> {
    type Output = Result<T, RecvError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let list = &this.shared.recv_waiters;
        if let Some(key) = this.key {
            if list.poll(key, Some(cx.waker())) == EntryState::Waiting {
                return Poll::Pending;
            }
            this.key = None;
        }
        match this.shared.try_recv() {
            Ok(value) => return Poll::Ready(Ok(value)),
            Err(PopError::Closed) => return Poll::Ready(Err(RecvError)),
            Err(PopError::Empty) => {}
        }
        let key = list.register(Wake::Task(cx.waker().clone()));
        match this.shared.try_recv() {
            Ok(value) => {
                list.cancel(key);
                Poll::Ready(Ok(value))
            }
            Err(PopError::Closed) => {
                list.cancel(key);
                Poll::Ready(Err(RecvError))
            }
            Err(PopError::Empty) => {
                this.key = Some(key);
                Poll::Pending
            }
        }
    }
}

impl<T> Drop for Recv<'_, T> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.shared.recv_waiters.cancel(key);
        }
    }
}

impl<T> fmt::Debug for Recv<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recv")
            .field("waiting", &self.key.is_some())
            .finish()
    }
}
