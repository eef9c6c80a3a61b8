//! The explicit asynchronous boundary: [`Flow::async_boundary`] and [`Flow::buffer`].
//!
//! Upstream runs on its own tokio task and hands items to the consumer through a queue:
//! flowbed-lockfree's wait-free SPSC ring for backpressure (the producer stops when the
//! ring is full), or a locked deque with an [`Overflow`] policy. Either way both sides
//! work in batches: a side that runs never touches a lock or a waker per item, and wakes
//! the other side once per batch through a [`Doorbell`].

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use flowbed_lockfree::Doorbell;
use flowbed_lockfree::spsc;

use crate::panic::guard;
use crate::source::{Emit, Source, Step};
use crate::sources::iter::{YIELD_EVERY, yield_now};
use crate::sync::{Arc, AtomicBool, Mutex, Ordering, lock};
use crate::{Error, Flow};

/// Ring the other side's doorbell at least this often while a batch is in progress, so
/// the two sides overlap instead of taking turns.
const RING_EVERY: usize = 64;

/// What a [`Flow::buffer`] does with an item that arrives while the buffer is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Overflow {
    /// Stop pulling upstream until there is room (nothing is dropped). The default.
    Backpressure,
    /// Drop the arriving item.
    DropNewest,
    /// Drop the oldest buffered item to make room.
    DropOldest,
    /// Replace the newest buffered item with the arriving one (Reactor's
    /// `onBackpressureLatest` when the capacity is 1).
    Latest,
    /// Deliver what is buffered, then end with [`Error::Overflow`].
    Error,
}

/// The two sides' shared flags.
#[derive(Debug, Default)]
struct Shared {
    /// Wakes the consumer: items or the ending arrived.
    consumer_bell: Doorbell,
    /// Wakes the producer: room was freed, or the consumer is gone.
    producer_bell: Doorbell,
    consumer_gone: AtomicBool,
    ended: AtomicBool,
    ending: Mutex<Option<Result<(), Error>>>,
}

impl Shared {
    fn end(&self, ending: Result<(), Error>) {
        lock(&self.ending).get_or_insert(ending);
        self.ended.store(true, Ordering::Release);
        self.consumer_bell.ring();
    }
}

/// The producer's end of the queue.
trait Inlet<T>: Send {
    /// Items that can be put without overflow (`usize::MAX`: never full).
    fn room(&mut self) -> usize;
    /// Puts an item; `Err` when the policy says the flow must fail.
    fn put(&mut self, item: T) -> Result<(), Error>;
}

/// The consumer's end of the queue.
trait Outlet<T>: Send {
    fn take(&mut self) -> Option<T>;
}

impl<T: Send> Inlet<T> for spsc::Producer<T> {
    fn room(&mut self) -> usize {
        self.slots()
    }

    fn put(&mut self, item: T) -> Result<(), Error> {
        self.push(item)
            .map_err(|_| Error::Protocol("the boundary pushed into a full ring"))
    }
}

impl<T: Send> Outlet<T> for spsc::Consumer<T> {
    #[inline]
    fn take(&mut self) -> Option<T> {
        self.pop().ok()
    }
}

/// The deque behind every [`Overflow`] policy but backpressure.
#[derive(Debug)]
struct PolicyQueue<T> {
    items: Arc<Mutex<VecDeque<T>>>,
    capacity: usize,
    policy: Overflow,
}

impl<T: Send> Inlet<T> for PolicyQueue<T> {
    fn room(&mut self) -> usize {
        usize::MAX
    }

    fn put(&mut self, item: T) -> Result<(), Error> {
        let mut items = lock(&self.items);
        if items.len() < self.capacity {
            items.push_back(item);
            return Ok(());
        }
        match self.policy {
            Overflow::DropNewest => {}
            Overflow::DropOldest => {
                items.pop_front();
                items.push_back(item);
            }
            Overflow::Latest => {
                items.pop_back();
                items.push_back(item);
            }
            Overflow::Backpressure | Overflow::Error => {
                return Err(Error::Overflow {
                    capacity: self.capacity,
                });
            }
        }
        Ok(())
    }
}

/// The consumer side of a [`PolicyQueue`]: takes the whole deque in one lock.
#[derive(Debug)]
struct PolicyOutlet<T> {
    items: Arc<Mutex<VecDeque<T>>>,
    taken: VecDeque<T>,
}

impl<T: Send> Outlet<T> for PolicyOutlet<T> {
    fn take(&mut self) -> Option<T> {
        if self.taken.is_empty() {
            std::mem::swap(&mut self.taken, &mut *lock(&self.items));
        }
        self.taken.pop_front()
    }
}

/// The consumer's end of either queue (an enum, not a trait object: one predictable
/// branch per item instead of a dynamic call).
enum Queue<T> {
    Ring(spsc::Consumer<T>),
    Policy(PolicyOutlet<T>),
}

impl<T: Send> Queue<T> {
    #[inline]
    fn take(&mut self) -> Option<T> {
        match self {
            Self::Ring(ring) => ring.take(),
            Self::Policy(queue) => queue.take(),
        }
    }
}

/// The task that pulls upstream into the queue.
struct Pump<S, I> {
    upstream: Option<S>,
    inlet: I,
    shared: Arc<Shared>,
}

impl<S, I> Unpin for Pump<S, I> {}

impl<S: Source, I: Inlet<S::Item>> Future for Pump<S, I> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        loop {
            if this.shared.consumer_gone.load(Ordering::Acquire) {
                this.upstream = None;
                return Poll::Ready(());
            }
            let Some(upstream) = this.upstream.as_mut() else {
                return Poll::Ready(());
            };
            let mut room = this.inlet.room();
            if room == 0 {
                this.shared.producer_bell.arm(cx.waker());
                room = this.inlet.room();
                if room == 0 && !this.shared.consumer_gone.load(Ordering::Acquire) {
                    return Poll::Pending;
                }
                this.shared.producer_bell.disarm();
                continue;
            }
            let (inlet, shared) = (&mut this.inlet, &this.shared);
            let mut failure = None;
            let mut pushed = 0usize;
            let polled = guard(|| {
                upstream.poll_emit(cx, &mut |item| {
                    if let Err(error) = inlet.put(item) {
                        failure = Some(error);
                        return std::ops::ControlFlow::Break(());
                    }
                    pushed += 1;
                    if pushed % RING_EVERY == 0 {
                        shared.consumer_bell.ring();
                    }
                    room -= 1;
                    if room == 0 {
                        std::ops::ControlFlow::Break(())
                    } else {
                        std::ops::ControlFlow::Continue(())
                    }
                })
            });
            let ending = match (failure, polled) {
                (Some(error), _) | (None, Err(error)) | (None, Ok(Poll::Ready(Err(error)))) => {
                    Err(error)
                }
                (None, Ok(Poll::Ready(Ok(Step::Ended)))) => Ok(()),
                (None, Ok(Poll::Ready(Ok(Step::Paused)))) => {
                    this.shared.consumer_bell.ring();
                    continue;
                }
                (None, Ok(Poll::Pending)) => {
                    this.shared.consumer_bell.ring();
                    // A consumer that leaves while upstream is quiet must still cancel it.
                    this.shared.producer_bell.arm(cx.waker());
                    if this.shared.consumer_gone.load(Ordering::Acquire) {
                        continue;
                    }
                    return Poll::Pending;
                }
            };
            this.upstream = None;
            this.shared.end(ending);
            return Poll::Ready(());
        }
    }
}

impl<S, I> Drop for Pump<S, I> {
    fn drop(&mut self) {
        // Also reached when the runtime shuts down under a pending pump: the consumer must
        // not wait for an ending that will never come.
        self.upstream = None;
        self.shared.end(Err(Error::NoRuntime));
    }
}

/// The source of [`Flow::async_boundary`] and [`Flow::buffer`]: the consumer's side.
pub struct Boundary<S: Source> {
    /// Upstream and the producer's end, until the first poll spawns the pump.
    pending: Option<Box<dyn FnOnce() -> Result<(), Error> + Send>>,
    outlet: Queue<S::Item>,
    shared: Arc<Shared>,
}

impl<S: Source> std::fmt::Debug for Boundary<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Boundary")
            .field("started", &self.pending.is_none())
            .field("shared", &self.shared)
            .finish()
    }
}

impl<S: Source> Source for Boundary<S>
where
    S::Item: Send,
{
    type Item = S::Item;

    fn poll_emit<E: Emit<S::Item>>(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut E,
    ) -> Poll<Result<Step, Error>> {
        if let Some(start) = self.pending.take() {
            start()?;
        }
        let mut taken = 0usize;
        loop {
            while let Some(item) = self.outlet.take() {
                taken += 1;
                if taken % RING_EVERY == 0 {
                    self.shared.producer_bell.ring();
                }
                if emit.emit(item).is_break() {
                    self.shared.producer_bell.ring();
                    return Poll::Ready(Ok(Step::Paused));
                }
                if taken >= YIELD_EVERY {
                    self.shared.producer_bell.ring();
                    return yield_now(cx);
                }
            }
            if taken > 0 {
                self.shared.producer_bell.ring();
            }
            if self.shared.ended.load(Ordering::Acquire) {
                // Everything pushed before the ending is visible now: drain it first.
                if let Some(item) = self.outlet.take() {
                    taken += 1;
                    if emit.emit(item).is_break() {
                        return Poll::Ready(Ok(Step::Paused));
                    }
                    continue;
                }
                let ending = lock(&self.shared.ending).clone().unwrap_or(Ok(()));
                return Poll::Ready(ending.map(|()| Step::Ended));
            }
            self.shared.consumer_bell.arm(cx.waker());
            match self.outlet.take() {
                Some(item) => {
                    self.shared.consumer_bell.disarm();
                    taken += 1;
                    if emit.emit(item).is_break() {
                        self.shared.producer_bell.ring();
                        return Poll::Ready(Ok(Step::Paused));
                    }
                }
                None if self.shared.ended.load(Ordering::Acquire) => {
                    self.shared.consumer_bell.disarm();
                }
                None => return Poll::Pending,
            }
        }
    }
}

impl<S: Source> Drop for Boundary<S> {
    fn drop(&mut self) {
        self.shared.consumer_gone.store(true, Ordering::Release);
        self.shared.producer_bell.ring();
    }
}

/// Spawns the pump on the current runtime at the first poll.
fn starter<S, I>(
    upstream: S,
    inlet: I,
    shared: Arc<Shared>,
) -> Box<dyn FnOnce() -> Result<(), Error> + Send>
where
    S: Source + Send + 'static,
    S::Item: Send + 'static,
    I: Inlet<S::Item> + 'static,
{
    Box::new(move || {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        runtime.spawn(Pump {
            upstream: Some(upstream),
            inlet,
            shared,
        });
        Ok(())
    })
}

impl<S> Flow<S>
where
    S: Source + Send + 'static,
    S::Item: Send + 'static,
{
    /// Runs upstream on its own tokio task, `capacity` items ahead at most, and hands items
    /// over in batches through a wait-free ring: the stages before and after the boundary
    /// run in parallel. Upstream is spawned at the first poll (inside a tokio runtime, or
    /// the flow fails with [`Error::NoRuntime`]) and cancelled when this flow is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_reactive::Flow;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let sum = Flow::iter(0..100_000u64)
    ///     .map(|n| n * 2) // runs on the boundary's task
    ///     .async_boundary(1024)
    ///     .fold(0, |sum, n| sum + n) // runs here
    ///     .await
    ///     .unwrap();
    /// assert_eq!(sum, 99_999 * 100_000);
    /// # }
    /// ```
    pub fn async_boundary(self, capacity: usize) -> Flow<Boundary<S>> {
        let (producer, consumer) = spsc::channel(capacity.max(1));
        let shared = Arc::new(Shared::default());
        Flow::from_source(Boundary {
            pending: Some(starter(self.into_source(), producer, Arc::clone(&shared))),
            outlet: Queue::Ring(consumer),
            shared,
        })
    }

    /// Decouples upstream from a slower downstream with a buffer of `capacity` items and a
    /// policy for when it is full ([`Overflow`]). With [`Overflow::Backpressure`] this is
    /// [`async_boundary`](Self::async_boundary); the other policies never slow upstream
    /// down and lose (or fail on) what does not fit.
    pub fn buffer(self, capacity: usize, policy: Overflow) -> Flow<Boundary<S>> {
        if policy == Overflow::Backpressure {
            return self.async_boundary(capacity);
        }
        let items = Arc::new(Mutex::new(VecDeque::new()));
        let shared = Arc::new(Shared::default());
        let inlet = PolicyQueue {
            items: Arc::clone(&items),
            capacity: capacity.max(1),
            policy,
        };
        Flow::from_source(Boundary {
            pending: Some(starter(self.into_source(), inlet, Arc::clone(&shared))),
            outlet: Queue::Policy(PolicyOutlet {
                items,
                taken: VecDeque::new(),
            }),
            shared,
        })
    }
}
