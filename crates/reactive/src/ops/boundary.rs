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

/// While a batch is in progress, a side rings the other side's doorbell once per this
/// fraction of the queue's capacity: often enough that both sides work at the same time,
/// rarely enough that a sleeping side wakes up to a big batch, not to a few items.
const RING_FRACTION: usize = 4;

/// How many items a side moves between two rings of the other side's doorbell.
fn ring_every(capacity: usize) -> usize {
    (capacity / RING_FRACTION).max(1)
}

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
#[derive(Debug)]
struct Shared {
    /// Items a side moves between two rings of the other side's bell.
    ring_every: usize,
    /// Wakes the consumer: items or the ending arrived.
    consumer_bell: Doorbell,
    /// Wakes the producer: room was freed, or the consumer is gone.
    producer_bell: Doorbell,
    consumer_gone: AtomicBool,
    ended: AtomicBool,
    ending: Mutex<Option<Result<(), Error>>>,
}

impl Shared {
    fn new(capacity: usize) -> Self {
        Self {
            ring_every: ring_every(capacity),
            consumer_bell: Doorbell::new(),
            producer_bell: Doorbell::new(),
            consumer_gone: AtomicBool::new(false),
            ended: AtomicBool::new(false),
            ending: Mutex::new(None),
        }
    }

    fn end(&self, ending: Result<(), Error>) {
        lock(&self.ending).get_or_insert(ending);
        self.ended.store(true, Ordering::Release);
        self.consumer_bell.ring();
    }
}

/// The producer's end of the queue: takes items in batches.
trait Inlet<T>: Send {
    /// Items that can be put without overflow (`usize::MAX`: never full).
    fn room(&mut self) -> usize;
    /// Moves every item of `batch` into the queue (at most `room()` of them for a
    /// bounded queue); `Err` when the overflow policy says the flow must fail.
    fn put_all(&mut self, batch: &mut Vec<T>) -> Result<(), Error>;
}

impl<T: Send> Inlet<T> for spsc::Producer<T> {
    fn room(&mut self) -> usize {
        self.slots()
    }

    fn put_all(&mut self, batch: &mut Vec<T>) -> Result<(), Error> {
        // One publication (one release store) for the whole batch.
        let chunk = self
            .write_chunk_uninit(batch.len())
            .map_err(|_| Error::Protocol("the boundary overfilled its ring"))?;
        chunk.fill_from_iter(batch.drain(..));
        Ok(())
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

    fn put_all(&mut self, batch: &mut Vec<T>) -> Result<(), Error> {
        let mut items = lock(&self.items);
        for item in batch.drain(..) {
            if items.len() < self.capacity {
                items.push_back(item);
                continue;
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
        }
        Ok(())
    }
}

/// The consumer's end of either queue (an enum, not a trait object: one predictable
/// branch per batch instead of a dynamic call per item).
enum Queue<T> {
    /// The backpressured ring.
    Ring(spsc::Consumer<T>),
    /// A policy deque, shared with the producer: the consumer takes one item per lock,
    /// so the policy always sees every item not yet emitted (the buffer never holds more
    /// than its capacity, and `DropOldest` drops the oldest of them).
    Policy(Arc<Mutex<VecDeque<T>>>),
}

/// How a round of [`Queue::emit_ready`] ended.
enum Drained {
    /// The sink said "enough".
    Full,
    /// The queue is empty.
    Empty,
    /// [`YIELD_EVERY`] items went by: time to let other tasks run.
    Yield,
}

impl<T: Send> Queue<T> {
    /// Emits what the queue holds, ringing `bell` (the producer's) each time a batch of
    /// room was freed.
    fn emit_ready<E: Emit<T>>(
        &mut self,
        emit: &mut E,
        bell: &Doorbell,
        batch: usize,
        taken: &mut usize,
    ) -> Drained {
        match self {
            Self::Ring(ring) => loop {
                let ready = ring.slots().min(batch);
                if ready == 0 {
                    return Drained::Empty;
                }
                let chunk = ring.read_chunk(ready).expect("`slots` were filled");
                for item in chunk {
                    *taken += 1;
                    if emit.emit(item).is_break() {
                        // The chunk iterator frees the slots of the items taken.
                        return Drained::Full;
                    }
                }
                bell.ring();
                if *taken >= YIELD_EVERY {
                    return Drained::Yield;
                }
            },
            Self::Policy(items) => loop {
                let Some(item) = lock(items).pop_front() else {
                    return Drained::Empty;
                };
                *taken += 1;
                if emit.emit(item).is_break() {
                    return Drained::Full;
                }
                if *taken >= YIELD_EVERY {
                    return Drained::Yield;
                }
            },
        }
    }

    /// Whether an item is waiting (after the producer's last publication).
    fn has_items(&mut self) -> bool {
        match self {
            Self::Ring(ring) => ring.slots() > 0,
            Self::Policy(items) => !lock(items).is_empty(),
        }
    }
}

/// The task that pulls upstream into the queue.
struct Pump<S: Source, I> {
    upstream: Option<S>,
    inlet: I,
    /// Items emitted by upstream and not yet put into the queue.
    batch: Vec<S::Item>,
    shared: Arc<Shared>,
}

impl<S: Source, I> Unpin for Pump<S, I> {}

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
            let (inlet, shared, batch) = (&mut this.inlet, &this.shared, &mut this.batch);
            let mut failure = None;
            let polled = guard(|| {
                upstream.poll_emit(cx, &mut |item| {
                    batch.push(item);
                    room -= 1;
                    if batch.len() >= shared.ring_every {
                        if let Err(error) = inlet.put_all(batch) {
                            failure = Some(error);
                            return std::ops::ControlFlow::Break(());
                        }
                        shared.consumer_bell.ring();
                    }
                    if room == 0 {
                        std::ops::ControlFlow::Break(())
                    } else {
                        std::ops::ControlFlow::Continue(())
                    }
                })
            });
            if failure.is_none() && !batch.is_empty() {
                failure = inlet.put_all(batch).err();
            }
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

impl<S: Source, I> Drop for Pump<S, I> {
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
    queue: Queue<S::Item>,
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
        let shared = &*self.shared;
        let mut taken = 0usize;
        loop {
            match self
                .queue
                .emit_ready(emit, &shared.producer_bell, shared.ring_every, &mut taken)
            {
                Drained::Full => {
                    shared.producer_bell.ring();
                    return Poll::Ready(Ok(Step::Paused));
                }
                Drained::Yield => {
                    shared.producer_bell.ring();
                    return yield_now(cx);
                }
                Drained::Empty => {}
            }
            if taken > 0 {
                shared.producer_bell.ring();
            }
            if shared.ended.load(Ordering::Acquire) {
                // Everything put before the ending is visible now: drain it first.
                if self.queue.has_items() {
                    continue;
                }
                let ending = lock(&shared.ending).clone().unwrap_or(Ok(()));
                return Poll::Ready(ending.map(|()| Step::Ended));
            }
            shared.consumer_bell.arm(cx.waker());
            if self.queue.has_items() || shared.ended.load(Ordering::Acquire) {
                shared.consumer_bell.disarm();
                continue;
            }
            return Poll::Pending;
        }
    }
}

impl<S: Source> Drop for Boundary<S> {
    fn drop(&mut self) {
        self.shared.consumer_gone.store(true, Ordering::Release);
        self.shared.producer_bell.ring();
    }
}

/// The task that runs a boundary's upstream, handed to a [`Flow::async_boundary_on`]
/// spawner.
pub type PumpTask = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Spawns the pump at the first poll: with `spawn`, or on the current tokio runtime.
fn starter<S, I>(
    upstream: S,
    inlet: I,
    shared: Arc<Shared>,
    spawn: Option<Box<dyn FnOnce(PumpTask) + Send>>,
) -> Box<dyn FnOnce() -> Result<(), Error> + Send>
where
    S: Source + Send + 'static,
    S::Item: Send + 'static,
    I: Inlet<S::Item> + 'static,
{
    Box::new(move || {
        let batch = Vec::with_capacity(shared.ring_every.min(1024));
        let pump = Pump {
            upstream: Some(upstream),
            inlet,
            batch,
            shared,
        };
        match spawn {
            Some(spawn) => spawn(Box::pin(pump)),
            None => {
                let runtime =
                    tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
                runtime.spawn(pump);
            }
        }
        Ok(())
    })
}

impl<S> Flow<S>
where
    S: Source + Send + 'static,
    S::Item: Send + 'static,
{
    /// Runs upstream on its own tokio task, `capacity` (at least 1) items ahead at most, and hands items
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
        self.ring_boundary(capacity, None)
    }

    /// [`async_boundary`](Self::async_boundary) with upstream run by `spawn` instead of
    /// the current tokio runtime: a runtime of its own (`move |task| {
    /// handle.spawn(task); }`), another executor, a dedicated thread. `spawn` is called
    /// once, at the first poll. A task dropped before it completed (its executor shut
    /// down) cancels upstream and ends the flow with [`Error::NoRuntime`].
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_reactive::Flow;
    ///
    /// // The upstream runs on a thread of its own, the consumer on this one.
    /// let sum = futures::executor::block_on(
    ///     Flow::iter(1..=100u64)
    ///         .async_boundary_on(16, |task| {
    ///             std::thread::spawn(move || futures::executor::block_on(task));
    ///         })
    ///         .fold(0, |sum, n| sum + n),
    /// );
    /// assert_eq!(sum.unwrap(), 5050);
    /// ```
    pub fn async_boundary_on(
        self,
        capacity: usize,
        spawn: impl FnOnce(PumpTask) + Send + 'static,
    ) -> Flow<Boundary<S>> {
        self.ring_boundary(capacity, Some(Box::new(spawn)))
    }

    fn ring_boundary(
        self,
        capacity: usize,
        spawn: Option<Box<dyn FnOnce(PumpTask) + Send>>,
    ) -> Flow<Boundary<S>> {
        let (producer, consumer) = spsc::channel(capacity.max(1));
        let shared = Arc::new(Shared::new(capacity.max(1)));
        Flow::from_source(Boundary {
            pending: Some(starter(
                self.into_source(),
                producer,
                Arc::clone(&shared),
                spawn,
            )),
            queue: Queue::Ring(consumer),
            shared,
        })
    }

    /// Decouples upstream from a slower downstream with a buffer of `capacity` (at least 1) items and a
    /// policy for when it is full ([`Overflow`]). With [`Overflow::Backpressure`] this is
    /// [`async_boundary`](Self::async_boundary); the other policies never slow upstream
    /// down and lose (or fail on) what does not fit.
    pub fn buffer(self, capacity: usize, policy: Overflow) -> Flow<Boundary<S>> {
        if policy == Overflow::Backpressure {
            return self.async_boundary(capacity);
        }
        let items = Arc::new(Mutex::new(VecDeque::new()));
        let shared = Arc::new(Shared::new(capacity.max(1)));
        let inlet = PolicyQueue {
            items: Arc::clone(&items),
            capacity: capacity.max(1),
            policy,
        };
        Flow::from_source(Boundary {
            pending: Some(starter(
                self.into_source(),
                inlet,
                Arc::clone(&shared),
                None,
            )),
            queue: Queue::Policy(items),
            shared,
        })
    }
}
