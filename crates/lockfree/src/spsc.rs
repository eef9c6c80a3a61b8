//! A wait-free single-producer single-consumer ring buffer with batch (chunk) access.
//!
//! [`channel`] returns a [`Producer`] and a [`Consumer`]. Each end owns its own index and
//! keeps a cached copy of the other end's index, so in the common case a push or pop
//! touches no cache line the other thread writes: it reloads the other index only when the
//! cached one says the ring is full (or empty). Every operation finishes in a bounded
//! number of steps whatever the other thread does (wait-free).
//!
//! Batches move many values per index update: [`Producer::write_chunk_uninit`] and
//! [`Consumer::read_chunk`] expose the free or filled region as (at most two) slices, the
//! same shape as rtrb's chunks; [`Producer::push_slice`] and [`Consumer::pop_slice`] copy
//! `Copy` values in bulk.
//!
//! # Examples
//!
//! ```
//! use flowbed_lockfree::spsc;
//!
//! let (mut tx, mut rx) = spsc::channel(4);
//! let consumer = std::thread::spawn(move || {
//!     let mut sum = 0u64;
//!     let mut seen = 0;
//!     while seen < 1000 {
//!         if let Ok(v) = rx.pop() {
//!             sum += v;
//!             seen += 1;
//!         }
//!     }
//!     sum
//! });
//! for i in 0..1000u64 {
//!     let mut value = i;
//!     while let Err(full) = tx.push(value) {
//!         value = full.into_inner();
//!         std::thread::yield_now();
//!     }
//! }
//! assert_eq!(consumer.join().unwrap(), 999 * 1000 / 2);
//! ```

use std::fmt;
use std::marker::PhantomData;
use std::mem::MaybeUninit;

use crossbeam_utils::CachePadded;

use crate::error::{CapacityError, ChunkError, PopError, PushError};
use crate::sync::{Arc, AtomicUsize, Ordering, SlotAccess};

/// Set in `head` when the consumer is dropped, in `tail` when the producer is. Keeping the
/// flag in the index word means one load tells the other end both "how far" and "is it
/// gone", so an empty poll costs a single load.
const GONE: usize = 1 << (usize::BITS - 1);
/// Positions count modulo 2^63, below the `GONE` bit.
const POSITION: usize = !GONE;

/// The state both ends share.
struct Ring<T> {
    /// Position of the next value to read (| `GONE`); written by the consumer only.
    head: CachePadded<AtomicUsize>,
    /// Position of the next slot to write (| `GONE`); written by the producer only.
    tail: CachePadded<AtomicUsize>,
    /// `slot_count` slots (a power of two, so a position maps to a slot with a mask).
    buffer: *mut MaybeUninit<T>,
    slot_count: usize,
    capacity: usize,
    access: SlotAccess,
    _owns: PhantomData<T>,
}

// SAFETY: values cross from the producer thread to the consumer thread, so `T: Send`;
// each slot is accessed by one end at a time, as ordered by the head/tail indices.
unsafe impl<T: Send> Send for Ring<T> {}
// SAFETY: as above; the ring never hands out `&T` to both ends.
unsafe impl<T: Send> Sync for Ring<T> {}

impl<T> Ring<T> {
    #[inline]
    fn slot(&self, position: usize) -> *mut MaybeUninit<T> {
        // SAFETY: the mask keeps the offset inside the allocation of `slot_count` slots.
        unsafe { self.buffer.add(position & (self.slot_count - 1)) }
    }

    /// The slot ranges `[start, start + len)` covers, as (first run, wrapped run).
    #[inline]
    fn runs(&self, start: usize, len: usize) -> (usize, usize, usize) {
        let index = start & (self.slot_count - 1);
        let first = len.min(self.slot_count - index);
        (index, first, len - first)
    }

    /// Tells loom about accesses to `len` slots from position `start`.
    #[inline(always)]
    fn record(&self, start: usize, len: usize, write: bool) {
        if cfg!(flowbed_loom) {
            for offset in 0..len {
                let index = start.wrapping_add(offset) & (self.slot_count - 1);
                if write {
                    self.access.write(index);
                } else {
                    self.access.read(index);
                }
            }
        }
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        // Both ends are gone: drop the values pushed but never popped, then the buffer.
        let head = self.head.load(Ordering::Relaxed) & POSITION;
        let tail = self.tail.load(Ordering::Relaxed) & POSITION;
        for offset in 0..(tail.wrapping_sub(head) & POSITION) {
            let position = head.wrapping_add(offset);
            // SAFETY: positions in head..tail hold initialised values; no end is left.
            unsafe { (*self.slot(position)).assume_init_drop() };
        }
        // SAFETY: `buffer` came from a boxed slice of `slot_count` elements in `channel`.
        drop(unsafe {
            Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                self.buffer,
                self.slot_count,
            ))
        });
    }
}

/// Creates a ring holding at most `capacity` values and returns its two ends.
///
/// # Panics
///
/// If `capacity` is 0 or larger than 2^62 (on 64-bit targets); [`try_channel`] returns a
/// typed error instead.
///
/// # Examples
///
/// ```
/// let (mut tx, mut rx) = flowbed_lockfree::spsc::channel(2);
/// tx.push('a').unwrap();
/// assert_eq!(rx.pop(), Ok('a'));
/// ```
pub fn channel<T>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    match try_channel(capacity) {
        Ok(ends) => ends,
        Err(error) => panic!("spsc::channel: {error}"),
    }
}

/// Creates a ring holding at most `capacity` values and returns its two ends.
///
/// The ring allocates `capacity.next_power_of_two()` slots so positions map to slots with
/// a mask instead of a division.
///
/// # Errors
///
/// [`CapacityError::Zero`] for 0, [`CapacityError::TooLarge`] above 2^62 (on 64-bit
/// targets).
///
/// # Examples
///
/// ```
/// use flowbed_lockfree::{CapacityError, spsc};
///
/// assert_eq!(spsc::try_channel::<u8>(0).unwrap_err(), CapacityError::Zero);
/// ```
pub fn try_channel<T>(capacity: usize) -> Result<(Producer<T>, Consumer<T>), CapacityError> {
    // Distances between positions must stay below the `GONE` bit.
    const MAX: usize = 1 << (usize::BITS - 2);
    if capacity == 0 {
        return Err(CapacityError::Zero);
    }
    if capacity > MAX {
        return Err(CapacityError::TooLarge {
            requested: capacity,
            max: MAX,
        });
    }
    let slot_count = capacity.next_power_of_two();
    let buffer: Box<[MaybeUninit<T>]> = (0..slot_count).map(|_| MaybeUninit::uninit()).collect();
    let ring = Arc::new(Ring {
        head: CachePadded::new(AtomicUsize::new(0)),
        tail: CachePadded::new(AtomicUsize::new(0)),
        buffer: Box::into_raw(buffer).cast::<MaybeUninit<T>>(),
        slot_count,
        capacity,
        access: SlotAccess::new(slot_count),
        _owns: PhantomData,
    });
    Ok((
        Producer {
            ring: ring.clone(),
            tail: 0,
            cached_head: 0,
        },
        Consumer {
            ring,
            head: 0,
            cached_tail: 0,
            producer_gone: false,
        },
    ))
}

/// The writing end of an SPSC ring. `Send` but not `Clone`: exactly one producer.
///
/// A push only looks for the consumer when the ring is full (the fast path touches no
/// shared flag): while there is room, values pushed after the consumer was dropped are
/// accepted and dropped with the ring. Check [`is_abandoned`](Self::is_abandoned) when that
/// matters.
pub struct Producer<T> {
    ring: Arc<Ring<T>>,
    /// Our own position (the ring's `tail` is its published copy).
    tail: usize,
    /// Last seen consumer position; the truth is only ever further on.
    cached_head: usize,
}

impl<T> Producer<T> {
    /// Free slots, reloading the consumer's position only if the cached one shows fewer
    /// than `wanted`.
    #[inline]
    fn free_slots(&mut self, wanted: usize) -> usize {
        let free = self.ring.capacity - (self.tail.wrapping_sub(self.cached_head) & POSITION);
        if free >= wanted {
            return free;
        }
        self.cached_head = self.ring.head.load(Ordering::Acquire) & POSITION;
        self.ring.capacity - (self.tail.wrapping_sub(self.cached_head) & POSITION)
    }

    /// Publishes `count` newly written values to the consumer.
    #[inline]
    fn publish(&mut self, count: usize) {
        self.tail = self.tail.wrapping_add(count) & POSITION;
        self.ring.tail.store(self.tail, Ordering::Release);
    }

    /// Pushes `value`.
    ///
    /// # Errors
    ///
    /// [`PushError::Full`] if the ring holds `capacity()` values, [`PushError::Closed`] if
    /// it is full and the consumer is gone; the value comes back either way.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut tx, _rx) = flowbed_lockfree::spsc::channel(1);
    /// tx.push(1).unwrap();
    /// assert!(tx.push(2).unwrap_err().is_full());
    /// ```
    #[inline]
    pub fn push(&mut self, value: T) -> Result<(), PushError<T>> {
        if self.free_slots(1) == 0 {
            return Err(if self.is_abandoned() {
                PushError::Closed(value)
            } else {
                PushError::Full(value)
            });
        }
        self.ring.record(self.tail, 1, true);
        // SAFETY: the slot at `tail` is free (the consumer's head is at most one lap
        // behind) and only the producer writes free slots.
        unsafe { (*self.ring.slot(self.tail)).write(value) };
        self.publish(1);
        Ok(())
    }

    /// Reserves `len` free slots to write in place; values become visible to the consumer
    /// only when the chunk is committed.
    ///
    /// # Errors
    ///
    /// [`ChunkError`] if fewer than `len` slots are free.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut tx, mut rx) = flowbed_lockfree::spsc::channel(8);
    /// let chunk = tx.write_chunk_uninit(3).unwrap();
    /// assert_eq!(chunk.fill_from_iter(10..), 3);
    /// assert_eq!(rx.pop(), Ok(10));
    /// ```
    pub fn write_chunk_uninit(
        &mut self,
        len: usize,
    ) -> Result<WriteChunkUninit<'_, T>, ChunkError> {
        let available = self.free_slots(len);
        if available < len {
            return Err(ChunkError {
                requested: len,
                available,
            });
        }
        Ok(WriteChunkUninit {
            producer: self,
            len,
        })
    }

    /// Copies as many values from `values` as fit and returns how many were pushed.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut tx, mut rx) = flowbed_lockfree::spsc::channel(4);
    /// assert_eq!(tx.push_slice(&[1, 2, 3, 4, 5, 6]), 4);
    /// let mut out = [0; 8];
    /// assert_eq!(rx.pop_slice(&mut out), 4);
    /// assert_eq!(&out[..4], &[1, 2, 3, 4]);
    /// ```
    pub fn push_slice(&mut self, values: &[T]) -> usize
    where
        T: Copy,
    {
        let count = values.len().min(self.free_slots(values.len()));
        if count == 0 {
            return 0;
        }
        let mut chunk = WriteChunkUninit {
            producer: self,
            len: count,
        };
        let (first, second) = chunk.as_mut_slices();
        let split = first.len();
        for (slot, value) in first.iter_mut().zip(&values[..split]) {
            slot.write(*value);
        }
        for (slot, value) in second.iter_mut().zip(&values[split..count]) {
            slot.write(*value);
        }
        // SAFETY: both slices were fully written above.
        unsafe { chunk.commit_all() };
        count
    }

    /// Free slots right now (the consumer may free more at any time).
    pub fn slots(&mut self) -> usize {
        self.free_slots(usize::MAX)
    }

    /// The most values the ring holds.
    pub fn capacity(&self) -> usize {
        self.ring.capacity
    }

    /// True if the consumer has been dropped.
    pub fn is_abandoned(&self) -> bool {
        self.ring.head.load(Ordering::Acquire) & GONE != 0
    }
}

impl<T> Drop for Producer<T> {
    fn drop(&mut self) {
        // Release: the consumer that sees the flag sees every value published before it.
        self.ring.tail.fetch_or(GONE, Ordering::Release);
    }
}

impl<T> fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("capacity", &self.ring.capacity)
            .field("tail", &self.tail)
            .finish()
    }
}

/// Free slots of the ring reserved by [`Producer::write_chunk_uninit`].
///
/// Write them through [`as_mut_slices`](Self::as_mut_slices) and publish with
/// [`commit`](Self::commit), or let [`fill_from_iter`](Self::fill_from_iter) do both.
/// Dropping the chunk without committing publishes nothing.
pub struct WriteChunkUninit<'a, T> {
    producer: &'a mut Producer<T>,
    len: usize,
}

impl<T> WriteChunkUninit<'_, T> {
    /// The reserved slots, as up to two runs (the second is non-empty when the chunk wraps
    /// around the end of the buffer).
    pub fn as_mut_slices(&mut self) -> (&mut [MaybeUninit<T>], &mut [MaybeUninit<T>]) {
        let ring = &self.producer.ring;
        ring.record(self.producer.tail, self.len, true);
        let (index, first, second) = ring.runs(self.producer.tail, self.len);
        // SAFETY: the reserved slots are free and belong to the producer, which we borrow
        // mutably; the two runs do not overlap and stay inside the buffer.
        unsafe {
            (
                std::slice::from_raw_parts_mut(ring.buffer.add(index), first),
                std::slice::from_raw_parts_mut(ring.buffer, second),
            )
        }
    }

    /// Slots in the chunk.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if the chunk has no slots.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Publishes the first `count` slots to the consumer.
    ///
    /// # Safety
    ///
    /// The first `count` slots (in order: first run, then second run) must have been
    /// initialised through [`as_mut_slices`](Self::as_mut_slices).
    ///
    /// # Panics
    ///
    /// If `count` is larger than the chunk.
    pub unsafe fn commit(self, count: usize) {
        assert!(
            count <= self.len,
            "commit({count}) on a chunk of {}",
            self.len
        );
        self.producer.publish(count);
    }

    /// Publishes every slot of the chunk.
    ///
    /// # Safety
    ///
    /// Every slot must have been initialised.
    pub unsafe fn commit_all(self) {
        let len = self.len;
        // SAFETY: forwarded to the caller.
        unsafe { self.commit(len) }
    }

    /// Moves values from `iter` into the chunk until either runs out, publishes them, and
    /// returns how many were written.
    pub fn fill_from_iter<I: IntoIterator<Item = T>>(mut self, iter: I) -> usize {
        let mut iter = iter.into_iter();
        let mut written = 0;
        let (first, second) = self.as_mut_slices();
        for slot in first.iter_mut().chain(second.iter_mut()) {
            match iter.next() {
                Some(value) => {
                    slot.write(value);
                    written += 1;
                }
                None => break,
            }
        }
        // SAFETY: exactly the first `written` slots were initialised, in order.
        unsafe { self.commit(written) };
        written
    }
}

impl<T> fmt::Debug for WriteChunkUninit<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteChunkUninit")
            .field("len", &self.len)
            .finish()
    }
}

/// The reading end of an SPSC ring. `Send` but not `Clone`: exactly one consumer.
pub struct Consumer<T> {
    ring: Arc<Ring<T>>,
    /// Our own position (the ring's `head` is its published copy).
    head: usize,
    /// Last seen producer position; the truth is only ever further on.
    cached_tail: usize,
    /// The `GONE` flag as of the last load of `tail`: if set, `cached_tail` is final.
    producer_gone: bool,
}

impl<T> Consumer<T> {
    /// Filled slots, reloading the producer's position only if the cached one shows fewer
    /// than `wanted`.
    #[inline]
    fn filled_slots(&mut self, wanted: usize) -> usize {
        let filled = self.cached_tail.wrapping_sub(self.head) & POSITION;
        if filled >= wanted {
            return filled;
        }
        let tail = self.ring.tail.load(Ordering::Acquire);
        self.cached_tail = tail & POSITION;
        self.producer_gone = tail & GONE != 0;
        self.cached_tail.wrapping_sub(self.head) & POSITION
    }

    /// Hands `count` consumed slots back to the producer.
    #[inline]
    fn release(&mut self, count: usize) {
        self.head = self.head.wrapping_add(count) & POSITION;
        self.ring.head.store(self.head, Ordering::Release);
    }

    /// Pops the oldest value.
    ///
    /// # Errors
    ///
    /// [`PopError::Empty`] if there is nothing to pop, [`PopError::Closed`] if the producer
    /// is gone and everything it pushed has been popped.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_lockfree::{PopError, spsc};
    ///
    /// let (tx, mut rx) = spsc::channel::<u8>(1);
    /// assert_eq!(rx.pop(), Err(PopError::Empty));
    /// drop(tx);
    /// assert_eq!(rx.pop(), Err(PopError::Closed));
    /// ```
    #[inline]
    pub fn pop(&mut self) -> Result<T, PopError> {
        if self.filled_slots(1) == 0 {
            // The load that found nothing also carried the producer's `GONE` flag.
            return Err(if self.producer_gone {
                PopError::Closed
            } else {
                PopError::Empty
            });
        }
        self.ring.record(self.head, 1, false);
        // SAFETY: the slot at `head` was published by the producer (Acquire load of its
        // tail) and only the consumer reads filled slots.
        let value = unsafe { (*self.ring.slot(self.head)).assume_init_read() };
        self.release(1);
        Ok(value)
    }

    /// Borrows the `len` oldest values in place; they are removed when the chunk is
    /// committed (or iterated by value).
    ///
    /// # Errors
    ///
    /// [`ChunkError`] if fewer than `len` values are available.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut tx, mut rx) = flowbed_lockfree::spsc::channel(8);
    /// tx.push_slice(&[1, 2, 3]);
    /// let chunk = rx.read_chunk(3).unwrap();
    /// let (a, b) = chunk.as_slices();
    /// assert_eq!(a.len() + b.len(), 3);
    /// assert_eq!(chunk.into_iter().sum::<i32>(), 6);
    /// ```
    pub fn read_chunk(&mut self, len: usize) -> Result<ReadChunk<'_, T>, ChunkError> {
        let available = self.filled_slots(len);
        if available < len {
            return Err(ChunkError {
                requested: len,
                available,
            });
        }
        Ok(ReadChunk {
            consumer: self,
            len,
        })
    }

    /// Copies up to `out.len()` values into `out` and returns how many were popped.
    pub fn pop_slice(&mut self, out: &mut [T]) -> usize
    where
        T: Copy,
    {
        let count = out.len().min(self.filled_slots(out.len()));
        if count == 0 {
            return 0;
        }
        let chunk = ReadChunk {
            consumer: self,
            len: count,
        };
        let (first, second) = chunk.as_slices();
        out[..first.len()].copy_from_slice(first);
        out[first.len()..count].copy_from_slice(second);
        chunk.commit_all();
        count
    }

    /// Values ready to pop right now (the producer may add more at any time).
    pub fn slots(&mut self) -> usize {
        self.filled_slots(usize::MAX)
    }

    /// The most values the ring holds.
    pub fn capacity(&self) -> usize {
        self.ring.capacity
    }

    /// True if the producer has been dropped.
    pub fn is_abandoned(&self) -> bool {
        self.ring.tail.load(Ordering::Acquire) & GONE != 0
    }
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        self.ring.head.fetch_or(GONE, Ordering::Release);
    }
}

impl<T> fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("capacity", &self.ring.capacity)
            .field("head", &self.head)
            .finish()
    }
}

/// Filled slots of the ring borrowed by [`Consumer::read_chunk`].
///
/// Look at them with [`as_slices`](Self::as_slices) and remove them with
/// [`commit`](Self::commit), or take them by value with `into_iter()`. Dropping the chunk
/// without committing leaves the values in the ring.
pub struct ReadChunk<'a, T> {
    consumer: &'a mut Consumer<T>,
    len: usize,
}

impl<T> ReadChunk<'_, T> {
    /// The borrowed values, oldest first, as up to two runs.
    pub fn as_slices(&self) -> (&[T], &[T]) {
        let ring = &self.consumer.ring;
        ring.record(self.consumer.head, self.len, false);
        let (index, first, second) = ring.runs(self.consumer.head, self.len);
        // SAFETY: the slots are filled (published by the producer) and the producer does
        // not touch them until we release them; `MaybeUninit<T>` has `T`'s layout.
        unsafe {
            (
                std::slice::from_raw_parts(ring.buffer.add(index).cast::<T>(), first),
                std::slice::from_raw_parts(ring.buffer.cast::<T>(), second),
            )
        }
    }

    /// Values in the chunk.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if the chunk has no values.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Drops the `count` oldest values of the chunk and frees their slots.
    ///
    /// # Panics
    ///
    /// If `count` is larger than the chunk.
    pub fn commit(self, count: usize) {
        assert!(
            count <= self.len,
            "commit({count}) on a chunk of {}",
            self.len
        );
        let consumer = self.consumer;
        if std::mem::needs_drop::<T>() {
            for offset in 0..count {
                let position = consumer.head.wrapping_add(offset) & POSITION;
                // SAFETY: filled slots owned by the consumer, each dropped once.
                unsafe { (*consumer.ring.slot(position)).assume_init_drop() };
            }
        }
        consumer.release(count);
    }

    /// Drops every value of the chunk and frees the slots.
    pub fn commit_all(self) {
        let len = self.len;
        self.commit(len);
    }
}

impl<'a, T> IntoIterator for ReadChunk<'a, T> {
    type Item = T;
    type IntoIter = ReadChunkIntoIter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        ReadChunkIntoIter {
            consumer: self.consumer,
            len: self.len,
            taken: 0,
        }
    }
}

impl<T> fmt::Debug for ReadChunk<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadChunk").field("len", &self.len).finish()
    }
}

/// Takes the values of a [`ReadChunk`] by value; the slots of the values taken are freed
/// when the iterator is dropped.
pub struct ReadChunkIntoIter<'a, T> {
    consumer: &'a mut Consumer<T>,
    len: usize,
    taken: usize,
}

impl<T> Iterator for ReadChunkIntoIter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        if self.taken == self.len {
            return None;
        }
        let position = self.consumer.head.wrapping_add(self.taken) & POSITION;
        self.consumer.ring.record(position, 1, false);
        // SAFETY: a filled slot of the chunk, moved out once (`taken` only grows).
        let value = unsafe { (*self.consumer.ring.slot(position)).assume_init_read() };
        self.taken += 1;
        Some(value)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.len - self.taken;
        (left, Some(left))
    }
}

impl<T> ExactSizeIterator for ReadChunkIntoIter<'_, T> {}

impl<T> Drop for ReadChunkIntoIter<'_, T> {
    fn drop(&mut self) {
        self.consumer.release(self.taken);
    }
}

impl<T> fmt::Debug for ReadChunkIntoIter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadChunkIntoIter")
            .field("len", &self.len)
            .field("taken", &self.taken)
            .finish()
    }
}

#[cfg(all(test, not(flowbed_loom)))]
mod tests {
    use super::*;

    /// Positions count modulo 2^63: start both ends just below the wrap and move values
    /// (single and chunked) across it.
    #[test]
    fn positions_wrap_below_the_gone_bit() {
        let (mut tx, mut rx) = channel::<u64>(4);
        let start = POSITION - 2;
        tx.tail = start;
        tx.cached_head = start;
        rx.head = start;
        rx.cached_tail = start;
        tx.ring.head.store(start, Ordering::Relaxed);
        tx.ring.tail.store(start, Ordering::Relaxed);

        for round in 0..3u64 {
            tx.push_slice(&[round, round + 1, round + 2]);
            tx.push(round + 3).unwrap();
            assert!(tx.push(99).unwrap_err().is_full());
            assert_eq!(rx.slots(), 4);
            let mut out = [0; 3];
            assert_eq!(rx.pop_slice(&mut out), 3);
            assert_eq!(out, [round, round + 1, round + 2]);
            assert_eq!(rx.pop(), Ok(round + 3));
            assert_eq!(rx.pop(), Err(PopError::Empty));
        }
        assert!(rx.head < start, "the consumer's position wrapped");
        tx.push(7).unwrap();
        drop(tx);
        assert_eq!(rx.pop(), Ok(7));
        assert_eq!(rx.pop(), Err(PopError::Closed));
    }
}
