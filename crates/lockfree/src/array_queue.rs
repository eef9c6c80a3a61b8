//! `ArrayQueue<T>`: a bounded multi-producer multi-consumer queue on a ring of slots.

use std::fmt;
use std::mem::MaybeUninit;

use crossbeam_utils::CachePadded;

use crate::backoff::Backoff;
use crate::error::{CapacityError, ClosedError, PopError, PushError};
use crate::sync::{AtomicUsize, Ordering, UnsafeCell, fence};

/// One slot of the ring.
///
/// `stamp` says whose turn the slot is: `tail` (as a position) when it is empty and a
/// producer at that position may write it, `tail + 1` once written, and `head + one_lap`
/// once read (empty again, for the producer one lap later).
struct Slot<T> {
    stamp: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
}

/// A bounded, lock-free, multi-producer multi-consumer FIFO queue.
///
/// Producers and consumers claim slots by advancing `tail` and `head` with a
/// compare-and-swap; each slot carries a stamp (Dmitry Vyukov's sequence idea) that tells a
/// thread whether the slot is ready for it, so no thread ever waits on a lock. Positions
/// carry a lap counter, so a stale thread can never mistake a slot from an earlier lap for
/// the current one (no ABA).
///
/// Beyond `push`/`pop` it offers [`force_push`](Self::force_push) (a ring buffer that
/// overwrites the oldest value) and [`close`](Self::close) (producers stop, consumers drain
/// what is left). For waiting instead of polling, wrap it in a [`channel`](crate::channel).
///
/// # Examples
///
/// ```
/// use flowbed_lockfree::{ArrayQueue, PopError};
///
/// let q = ArrayQueue::new(2);
/// q.push(1).unwrap();
/// q.push(2).unwrap();
/// assert!(q.push(3).unwrap_err().is_full());
///
/// q.close();
/// assert_eq!(q.pop(), Ok(1));
/// assert_eq!(q.pop(), Ok(2));
/// assert_eq!(q.pop(), Err(PopError::Closed));
/// ```
pub struct ArrayQueue<T> {
    /// Position of the next value to pop: `lap | index`.
    head: CachePadded<AtomicUsize>,
    /// Position of the next free slot: `lap | mark_bit? | index`. `mark_bit` set = closed.
    tail: CachePadded<AtomicUsize>,
    buffer: Box<[Slot<T>]>,
    capacity: usize,
    /// The bit above every index; set in `tail` when the queue is closed.
    mark_bit: usize,
    /// Adding this moves a position one lap further.
    one_lap: usize,
}

// SAFETY: values move between threads through the queue, so `T: Send` is required and
// enough; slots are only touched by the one thread whose CAS claimed them.
unsafe impl<T: Send> Send for ArrayQueue<T> {}
// SAFETY: as above; `&ArrayQueue` only hands out owned `T`s, never `&T`.
unsafe impl<T: Send> Sync for ArrayQueue<T> {}

impl<T> ArrayQueue<T> {
    /// The largest capacity supported: positions need spare high bits for the lap counter.
    pub const MAX_CAPACITY: usize = 1 << (usize::BITS - 8);

    /// Creates a queue that holds at most `capacity` values.
    ///
    /// # Panics
    ///
    /// If `capacity` is 0 or above [`MAX_CAPACITY`](Self::MAX_CAPACITY); use
    /// [`try_new`](Self::try_new) to get a typed error instead.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = flowbed_lockfree::ArrayQueue::<u64>::new(1024);
    /// assert_eq!(q.capacity(), 1024);
    /// ```
    pub fn new(capacity: usize) -> Self {
        match Self::try_new(capacity) {
            Ok(queue) => queue,
            Err(error) => panic!("ArrayQueue::new: {error}"),
        }
    }

    /// Creates a queue that holds at most `capacity` values.
    ///
    /// # Errors
    ///
    /// [`CapacityError::Zero`] for 0, [`CapacityError::TooLarge`] above
    /// [`MAX_CAPACITY`](Self::MAX_CAPACITY).
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_lockfree::{ArrayQueue, CapacityError};
    ///
    /// assert_eq!(ArrayQueue::<u8>::try_new(0).unwrap_err(), CapacityError::Zero);
    /// assert!(ArrayQueue::<u8>::try_new(3).is_ok());
    /// ```
    pub fn try_new(capacity: usize) -> Result<Self, CapacityError> {
        if capacity == 0 {
            return Err(CapacityError::Zero);
        }
        if capacity > Self::MAX_CAPACITY {
            return Err(CapacityError::TooLarge {
                requested: capacity,
                max: Self::MAX_CAPACITY,
            });
        }
        // Index bits hold 0..capacity; the bit above them is the close mark; laps above that.
        let mark_bit = (capacity + 1).next_power_of_two();
        let one_lap = mark_bit * 2;
        let buffer = (0..capacity)
            .map(|index| Slot {
                // Slot `index` starts empty, ready for the producer at position `index` of lap 0.
                stamp: AtomicUsize::new(index),
                value: UnsafeCell::new(MaybeUninit::uninit()),
            })
            .collect();
        Ok(Self {
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            buffer,
            capacity,
            mark_bit,
            one_lap,
        })
    }

    /// The position after `position`: the next index, or index 0 of the next lap.
    #[inline]
    fn next_position(&self, position: usize) -> usize {
        let index = position & (self.mark_bit - 1);
        if index + 1 < self.capacity {
            position + 1
        } else {
            (position & !(self.one_lap - 1)).wrapping_add(self.one_lap)
        }
    }

    #[inline]
    fn slot(&self, position: usize) -> &Slot<T> {
        let index = position & (self.mark_bit - 1);
        debug_assert!(index < self.capacity);
        // SAFETY: every position's index part is below `capacity` by construction
        // (`next_position` wraps to 0 at `capacity`) and the mark bit is masked off.
        unsafe { self.buffer.get_unchecked(index) }
    }

    /// Pushes `value` at the back.
    ///
    /// # Errors
    ///
    /// [`PushError::Full`] if the queue holds `capacity()` values, [`PushError::Closed`] if
    /// it was closed; either way the value comes back inside the error.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = flowbed_lockfree::ArrayQueue::new(1);
    /// assert!(q.push(7).is_ok());
    /// assert_eq!(q.push(8).unwrap_err().into_inner(), 8);
    /// ```
    pub fn push(&self, value: T) -> Result<(), PushError<T>> {
        self.push_or_else(value, |value, _, _, _| Err(PushError::Full(value)))
    }

    /// Pushes `value`, overwriting and returning the oldest value if the queue is full.
    ///
    /// This is the ring-buffer behaviour a "latest N samples" stage wants.
    ///
    /// # Errors
    ///
    /// [`ClosedError`] (holding `value`) if the queue was closed.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = flowbed_lockfree::ArrayQueue::new(2);
    /// assert_eq!(q.force_push(1), Ok(None));
    /// assert_eq!(q.force_push(2), Ok(None));
    /// assert_eq!(q.force_push(3), Ok(Some(1)));
    /// assert_eq!(q.pop(), Ok(2));
    /// ```
    pub fn force_push(&self, value: T) -> Result<Option<T>, ClosedError<T>> {
        let result = self.push_or_else(value, |value, tail, new_tail, slot| {
            // Full: the slot at `tail` holds the oldest value, at head = tail - one lap.
            let head = tail.wrapping_sub(self.one_lap);
            let new_head = new_tail.wrapping_sub(self.one_lap);
            if self
                .head
                .compare_exchange_weak(head, new_head, Ordering::SeqCst, Ordering::Relaxed)
                .is_err()
            {
                // A consumer popped meanwhile: there is room now, retry a plain push.
                return Ok(value);
            }
            // We own the slot: no consumer can reach it (head moved past it) and no producer
            // can (its stamp still says "full" until we store the new one). Move tail too,
            // keeping the close mark if `close()` set it in the meantime.
            let mut current = tail;
            while let Err(actual) = self.tail.compare_exchange_weak(
                current,
                new_tail | (current & self.mark_bit),
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                current = actual;
            }
            // SAFETY: the slot holds an initialised value (its stamp said so: it is the
            // oldest value), and the head CAS above made us its only owner.
            let oldest = slot
                .value
                .with_mut(|cell| unsafe { (*cell).assume_init_read() });
            // SAFETY: same exclusive ownership; the slot is now logically empty.
            slot.value.with_mut(|cell| unsafe { (*cell).write(value) });
            slot.stamp.store(tail + 1, Ordering::Release);
            Err(PushError::Full(oldest))
        });
        match result {
            Ok(()) => Ok(None),
            Err(PushError::Full(oldest)) => Ok(Some(oldest)),
            Err(PushError::Closed(value)) => Err(ClosedError(value)),
        }
    }

    /// The push loop; `on_full(value, tail, new_tail, slot)` decides what a full queue
    /// means: `Ok(value)` retries, `Err(e)` returns `e`.
    fn push_or_else<F>(&self, mut value: T, mut on_full: F) -> Result<(), PushError<T>>
    where
        F: FnMut(T, usize, usize, &Slot<T>) -> Result<T, PushError<T>>,
    {
        let mut backoff = Backoff::new();
        let mut tail = self.tail.load(Ordering::Relaxed);
        loop {
            if tail & self.mark_bit != 0 {
                return Err(PushError::Closed(value));
            }
            let new_tail = self.next_position(tail);
            let slot = self.slot(tail);
            let stamp = slot.stamp.load(Ordering::Acquire);

            if tail == stamp {
                // The slot is empty and ours if we win the race for `tail`.
                match self.tail.compare_exchange_weak(
                    tail,
                    new_tail,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: the CAS gave this thread the slot at `tail`; its stamp
                        // says it is empty, so no other thread reads or writes it until we
                        // publish the value with the stamp store below.
                        slot.value.with_mut(|cell| unsafe { (*cell).write(value) });
                        slot.stamp.store(tail + 1, Ordering::Release);
                        return Ok(());
                    }
                    Err(actual) => {
                        tail = actual;
                        backoff.spin();
                    }
                }
            } else if stamp.wrapping_add(self.one_lap) == tail + 1 {
                // The slot still holds last lap's value: the queue may be full.
                fence(Ordering::SeqCst);
                let head = self.head.load(Ordering::Relaxed);
                if head.wrapping_add(self.one_lap) == tail {
                    value = on_full(value, tail, new_tail, slot)?;
                    backoff.spin();
                } else {
                    backoff.spin();
                }
                tail = self.tail.load(Ordering::Relaxed);
            } else {
                // Another producer claimed the slot but has not written it yet, or we hold
                // a stale `tail`: wait for the world to move on.
                backoff.snooze();
                tail = self.tail.load(Ordering::Relaxed);
            }
        }
    }

    /// Pops the value at the front.
    ///
    /// # Errors
    ///
    /// [`PopError::Empty`] if there is nothing to pop, [`PopError::Closed`] if the queue
    /// was closed and everything pushed before has been popped.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_lockfree::{ArrayQueue, PopError};
    ///
    /// let q = ArrayQueue::new(4);
    /// assert_eq!(q.pop(), Err::<u8, _>(PopError::Empty));
    /// q.push(1).unwrap();
    /// assert_eq!(q.pop(), Ok(1));
    /// ```
    pub fn pop(&self) -> Result<T, PopError> {
        let mut backoff = Backoff::new();
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            let slot = self.slot(head);
            let stamp = slot.stamp.load(Ordering::Acquire);

            if head + 1 == stamp {
                // The slot holds a value and it is ours if we win the race for `head`.
                let new_head = self.next_position(head);
                match self.head.compare_exchange_weak(
                    head,
                    new_head,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: the stamp (loaded with Acquire, pairing with the
                        // producer's Release store) says the value is written, and the CAS
                        // made this thread its only reader.
                        let value = slot
                            .value
                            .with(|cell| unsafe { (*cell).assume_init_read() });
                        slot.stamp
                            .store(head.wrapping_add(self.one_lap), Ordering::Release);
                        return Ok(value);
                    }
                    Err(actual) => {
                        head = actual;
                        backoff.spin();
                    }
                }
            } else if stamp == head {
                // The slot is empty: the queue may be empty.
                fence(Ordering::SeqCst);
                let tail = self.tail.load(Ordering::Relaxed);
                if tail & !self.mark_bit == head {
                    return Err(if tail & self.mark_bit != 0 {
                        PopError::Closed
                    } else {
                        PopError::Empty
                    });
                }
                backoff.spin();
                head = self.head.load(Ordering::Relaxed);
            } else {
                // A producer claimed the slot but has not finished writing, or `head` is
                // stale.
                backoff.snooze();
                head = self.head.load(Ordering::Relaxed);
            }
        }
    }

    /// Closes the queue: every later push fails with `Closed`, pops drain what is left
    /// and then report [`PopError::Closed`]. Returns `true` if this call closed it, `false`
    /// if it was already closed.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = flowbed_lockfree::ArrayQueue::new(4);
    /// q.push(1).unwrap();
    /// assert!(q.close());
    /// assert!(!q.close());
    /// assert!(q.push(2).unwrap_err().is_closed());
    /// assert_eq!(q.pop(), Ok(1));
    /// ```
    pub fn close(&self) -> bool {
        self.tail.fetch_or(self.mark_bit, Ordering::SeqCst) & self.mark_bit == 0
    }

    /// True once [`close`](Self::close) has been called.
    pub fn is_closed(&self) -> bool {
        self.tail.load(Ordering::SeqCst) & self.mark_bit != 0
    }

    /// The most values the queue holds at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The number of values in the queue: exact when no other thread is pushing or popping,
    /// a snapshot that was true at some instant during the call otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = flowbed_lockfree::ArrayQueue::new(8);
    /// q.push('x').unwrap();
    /// assert_eq!(q.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        loop {
            let tail = self.tail.load(Ordering::SeqCst) & !self.mark_bit;
            let head = self.head.load(Ordering::SeqCst);
            // A consistent pair: tail did not move while we read head.
            if self.tail.load(Ordering::SeqCst) & !self.mark_bit == tail {
                let head_index = head & (self.mark_bit - 1);
                let tail_index = tail & (self.mark_bit - 1);
                return if head_index < tail_index {
                    tail_index - head_index
                } else if head_index > tail_index {
                    self.capacity - head_index + tail_index
                } else if tail == head {
                    0
                } else {
                    self.capacity
                };
            }
        }
    }

    /// True if the queue holds no value (a snapshot, like [`len`](Self::len)).
    pub fn is_empty(&self) -> bool {
        let head = self.head.load(Ordering::SeqCst);
        let tail = self.tail.load(Ordering::SeqCst) & !self.mark_bit;
        tail == head
    }

    /// True if the queue holds `capacity()` values (a snapshot, like [`len`](Self::len)).
    pub fn is_full(&self) -> bool {
        let tail = self.tail.load(Ordering::SeqCst) & !self.mark_bit;
        let head = self.head.load(Ordering::SeqCst);
        head.wrapping_add(self.one_lap) == tail
    }
}

impl<T> Drop for ArrayQueue<T> {
    fn drop(&mut self) {
        // `&mut self`: no other thread can touch the queue; drop what is still in it.
        let len = self.len();
        let mut position = self.head.load(Ordering::Relaxed);
        for _ in 0..len {
            let slot = self.slot(position);
            // SAFETY: the `len` slots from head on hold initialised values that nobody
            // popped, and we have exclusive access.
            slot.value
                .with_mut(|cell| unsafe { (*cell).assume_init_drop() });
            position = self.next_position(position);
        }
    }
}

impl<T> fmt::Debug for ArrayQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArrayQueue")
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .field("closed", &self.is_closed())
            .finish()
    }
}
