//! `SegQueue<T>`: an unbounded multi-producer multi-consumer queue of linked segments
//! that recycles its segments.

use std::fmt;
use std::mem::MaybeUninit;
use std::ptr;

use crossbeam_utils::CachePadded;

use crate::backoff::Backoff;
use crate::error::{ClosedError, PopError};
use crate::sync::{AtomicPtr, AtomicUsize, Ordering, UnsafeCell, fence};

// Positions count in steps of `1 << SHIFT`; bit 0 is a flag: `HAS_NEXT` in `head` (the
// head block has a successor, so pops need not look at `tail`), `CLOSED` in `tail`.
const SHIFT: usize = 1;
const HAS_NEXT: usize = 1;
const CLOSED: usize = 1;

// A lap is one block: `BLOCK_CAP` slots plus one position that marks "moving to the next
// block". Loom models use tiny blocks so two or three operations already cross a boundary.
const LAP: usize = if cfg!(flowbed_loom) { 4 } else { 32 };
const BLOCK_CAP: usize = LAP - 1;

// Slot states.
const WRITE: usize = 1;
const READ: usize = 2;
const DESTROY: usize = 4;

/// How many drained blocks are kept for reuse. A steady producer/consumer pair cycles
/// through two or three blocks; more spares would only hold memory after a burst.
const SPARE_BLOCKS: usize = 4;

struct Slot<T> {
    value: UnsafeCell<MaybeUninit<T>>,
    state: AtomicUsize,
}

impl<T> Slot<T> {
    /// Waits until the producer that claimed this slot has written it.
    fn wait_write(&self) {
        let mut backoff = Backoff::new();
        while self.state.load(Ordering::Acquire) & WRITE == 0 {
            backoff.snooze();
        }
    }
}

struct Block<T> {
    next: AtomicPtr<Block<T>>,
    slots: [Slot<T>; BLOCK_CAP],
}

impl<T> Block<T> {
    fn allocate() -> *mut Self {
        Box::into_raw(Box::new(Self {
            next: AtomicPtr::new(ptr::null_mut()),
            slots: std::array::from_fn(|_| Slot {
                value: UnsafeCell::new(MaybeUninit::uninit()),
                state: AtomicUsize::new(0),
            }),
        }))
    }

    /// Waits until the producer that filled the last slot has linked the next block.
    fn wait_next(&self) -> *mut Self {
        let mut backoff = Backoff::new();
        loop {
            let next = self.next.load(Ordering::Acquire);
            if !next.is_null() {
                return next;
            }
            backoff.snooze();
        }
    }

    /// Makes a drained block look freshly allocated. Needs exclusive ownership.
    fn reset(&self) {
        self.next.store(ptr::null_mut(), Ordering::Relaxed);
        for slot in &self.slots {
            slot.state.store(0, Ordering::Relaxed);
        }
    }
}

struct Position<T> {
    index: AtomicUsize,
    block: AtomicPtr<Block<T>>,
}

/// An unbounded, lock-free, multi-producer multi-consumer FIFO queue.
///
/// Values live in blocks of 31 slots linked into a list. Producers claim a slot by advancing
/// `tail` with a CAS and consumers by advancing `head`; the thread that reads the last slot
/// of a block retires it. Unlike crossbeam's `SegQueue`, a retired block goes to a small
/// spare list and the next producer that needs a block takes it from there, so a queue in
/// steady state (pushes keeping pace with pops) allocates nothing. Spares are capped, so
/// the memory of a burst is returned once the queue drains.
///
/// [`close`](Self::close) stops producers; consumers drain what is left and then see
/// [`PopError::Closed`].
///
/// # Examples
///
/// ```
/// use flowbed_lockfree::{PopError, SegQueue};
///
/// let q = SegQueue::new();
/// for i in 0..100 {
///     q.push(i).unwrap();
/// }
/// assert_eq!(q.len(), 100);
/// q.close();
/// let drained: Vec<i32> = std::iter::from_fn(|| q.pop().ok()).collect();
/// assert_eq!(drained, (0..100).collect::<Vec<_>>());
/// assert_eq!(q.pop(), Err(PopError::Closed));
/// ```
pub struct SegQueue<T> {
    head: CachePadded<Position<T>>,
    tail: CachePadded<Position<T>>,
    /// Retired blocks ready for reuse; null entries are free places.
    spares: [AtomicPtr<Block<T>>; SPARE_BLOCKS],
}

// SAFETY: values move between threads through the queue, so `T: Send` is required and
// enough; a slot is only accessed by the thread whose CAS claimed it.
unsafe impl<T: Send> Send for SegQueue<T> {}
// SAFETY: as above; `&SegQueue` only hands out owned `T`s.
unsafe impl<T: Send> Sync for SegQueue<T> {}

impl<T> Default for SegQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> SegQueue<T> {
    /// Creates an empty queue. The first block is allocated by the first push.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = flowbed_lockfree::SegQueue::<String>::new();
    /// assert!(q.is_empty());
    /// ```
    pub fn new() -> Self {
        Self {
            head: CachePadded::new(Position {
                index: AtomicUsize::new(0),
                block: AtomicPtr::new(ptr::null_mut()),
            }),
            tail: CachePadded::new(Position {
                index: AtomicUsize::new(0),
                block: AtomicPtr::new(ptr::null_mut()),
            }),
            spares: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
        }
    }

    /// A block from the spares, or a new one.
    fn take_block(&self) -> *mut Block<T> {
        for spare in &self.spares {
            if !spare.load(Ordering::Relaxed).is_null() {
                let block = spare.swap(ptr::null_mut(), Ordering::Acquire);
                if !block.is_null() {
                    return block;
                }
            }
        }
        Block::allocate()
    }

    /// Gives a block that no thread can reach any more back to the spares, or frees it.
    ///
    /// # Safety
    ///
    /// `block` came from `take_block` and the caller owns it exclusively.
    unsafe fn retire_block(&self, block: *mut Block<T>) {
        // SAFETY: the caller owns the block.
        unsafe { (*block).reset() };
        for spare in &self.spares {
            if spare.load(Ordering::Relaxed).is_null()
                && spare
                    .compare_exchange(ptr::null_mut(), block, Ordering::Release, Ordering::Relaxed)
                    .is_ok()
            {
                return;
            }
        }
        // SAFETY: the caller owns the block and it was allocated by `Block::allocate`.
        drop(unsafe { Box::from_raw(block) });
    }

    /// Called by a reader once it is done with slot `start - 1`: retires the block if every
    /// slot from `start` on has been read, or leaves that job to the first reader still busy.
    ///
    /// # Safety
    ///
    /// `block` is a block of this queue whose last slot has been read.
    unsafe fn release_block(&self, block: *mut Block<T>, start: usize) {
        // The last slot is skipped: its reader is the one that started the release.
        for i in start..BLOCK_CAP - 1 {
            // SAFETY: the block stays alive until the release completes, and only the
            // thread running the release gets here.
            let slot = unsafe { (*block).slots.get_unchecked(i) };
            if slot.state.load(Ordering::Acquire) & READ == 0
                && slot.state.fetch_or(DESTROY, Ordering::AcqRel) & READ == 0
            {
                // That slot's reader is still busy; it will continue the release.
                return;
            }
        }
        // SAFETY: every slot is read and no thread holds the block any more: head and tail
        // have moved past it, and late threads only dereference a block after a CAS on a
        // monotonic position that now fails.
        unsafe { self.retire_block(block) };
    }

    /// Pushes `value` at the back. Never blocks, never fails while the queue is open.
    ///
    /// # Errors
    ///
    /// [`ClosedError`] (holding `value`) once [`close`](Self::close) was called.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = flowbed_lockfree::SegQueue::new();
    /// q.push("event").unwrap();
    /// assert_eq!(q.pop(), Ok("event"));
    /// ```
    pub fn push(&self, value: T) -> Result<(), ClosedError<T>> {
        let mut backoff = Backoff::new();
        let mut tail = self.tail.index.load(Ordering::Acquire);
        let mut block = self.tail.block.load(Ordering::Acquire);
        let mut next_block: *mut Block<T> = ptr::null_mut();

        loop {
            if tail & CLOSED != 0 {
                if !next_block.is_null() {
                    // SAFETY: we took it and never published it.
                    unsafe { self.retire_block(next_block) };
                }
                return Err(ClosedError(value));
            }
            let offset = (tail >> SHIFT) % LAP;

            // Another producer is linking the next block: wait for it.
            if offset == BLOCK_CAP {
                backoff.snooze();
                tail = self.tail.index.load(Ordering::Acquire);
                block = self.tail.block.load(Ordering::Acquire);
                continue;
            }

            // About to fill this block's last slot: have its successor ready before the CAS,
            // so the window in which others wait stays short.
            if offset + 1 == BLOCK_CAP && next_block.is_null() {
                next_block = self.take_block();
            }

            // The very first push installs the first block.
            if block.is_null() {
                let first = self.take_block();
                if self
                    .tail
                    .block
                    .compare_exchange(block, first, Ordering::Release, Ordering::Relaxed)
                    .is_ok()
                {
                    self.head.block.store(first, Ordering::Release);
                    block = first;
                } else {
                    // SAFETY: we own `first`; nobody saw it.
                    unsafe { self.retire_block(first) };
                    tail = self.tail.index.load(Ordering::Acquire);
                    block = self.tail.block.load(Ordering::Acquire);
                    continue;
                }
            }

            let new_tail = tail + (1 << SHIFT);
            match self.tail.index.compare_exchange_weak(
                tail,
                new_tail,
                Ordering::SeqCst,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if offset + 1 == BLOCK_CAP {
                        let next = next_block;
                        next_block = ptr::null_mut();
                        self.tail.block.store(next, Ordering::Release);
                        // Step from the marker position to offset 0 of the next lap with an
                        // add, not a store, so a concurrent `close()` keeps its bit.
                        self.tail.index.fetch_add(1 << SHIFT, Ordering::Release);
                        // SAFETY: `block` is the tail block we claimed a slot in; it cannot
                        // be retired before that slot is read, which needs our write below.
                        unsafe { (*block).next.store(next, Ordering::Release) };
                    }
                    // SAFETY: the CAS claimed slot `offset` of `block` for us alone, and
                    // the block lives until the slot is read.
                    let slot = unsafe { (*block).slots.get_unchecked(offset) };
                    // SAFETY: the claimed slot is empty and ours to write.
                    slot.value.with_mut(|cell| unsafe { (*cell).write(value) });
                    slot.state.fetch_or(WRITE, Ordering::Release);
                    if !next_block.is_null() {
                        // SAFETY: taken earlier, never published.
                        unsafe { self.retire_block(next_block) };
                    }
                    return Ok(());
                }
                Err(actual) => {
                    tail = actual;
                    block = self.tail.block.load(Ordering::Acquire);
                    backoff.spin();
                }
            }
        }
    }

    /// Pops the value at the front.
    ///
    /// # Errors
    ///
    /// [`PopError::Empty`] if there is nothing to pop, [`PopError::Closed`] if the queue
    /// is closed and drained.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_lockfree::{PopError, SegQueue};
    ///
    /// let q = SegQueue::<u8>::new();
    /// assert_eq!(q.pop(), Err(PopError::Empty));
    /// ```
    pub fn pop(&self) -> Result<T, PopError> {
        let mut backoff = Backoff::new();
        let mut head = self.head.index.load(Ordering::Acquire);
        let mut block = self.head.block.load(Ordering::Acquire);

        loop {
            let offset = (head >> SHIFT) % LAP;

            // Another consumer is moving head to the next block: wait for it.
            if offset == BLOCK_CAP {
                backoff.snooze();
                head = self.head.index.load(Ordering::Acquire);
                block = self.head.block.load(Ordering::Acquire);
                continue;
            }

            let mut new_head = head + (1 << SHIFT);
            if new_head & HAS_NEXT == 0 {
                fence(Ordering::SeqCst);
                let tail = self.tail.index.load(Ordering::Relaxed);
                if head >> SHIFT == tail >> SHIFT {
                    return Err(if tail & CLOSED != 0 {
                        PopError::Closed
                    } else {
                        PopError::Empty
                    });
                }
                // Head and tail in different blocks: the head block has a successor.
                if (head >> SHIFT) / LAP != (tail >> SHIFT) / LAP {
                    new_head |= HAS_NEXT;
                }
            }

            // The first block is still being installed.
            if block.is_null() {
                backoff.snooze();
                head = self.head.index.load(Ordering::Acquire);
                block = self.head.block.load(Ordering::Acquire);
                continue;
            }

            match self.head.index.compare_exchange_weak(
                head,
                new_head,
                Ordering::SeqCst,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if offset + 1 == BLOCK_CAP {
                        // We took the block's last slot: move head to the next block.
                        // SAFETY: the block lives until our slot is read.
                        let next = unsafe { (*block).wait_next() };
                        let mut next_index = (new_head & !HAS_NEXT).wrapping_add(1 << SHIFT);
                        // SAFETY: `next` is the live successor block.
                        if unsafe { !(*next).next.load(Ordering::Relaxed).is_null() } {
                            next_index |= HAS_NEXT;
                        }
                        self.head.block.store(next, Ordering::Release);
                        self.head.index.store(next_index, Ordering::Release);
                    }
                    // SAFETY: the CAS claimed slot `offset` for us alone; the block lives
                    // until we mark the slot read.
                    let slot = unsafe { (*block).slots.get_unchecked(offset) };
                    slot.wait_write();
                    // SAFETY: WRITE is set (Acquire), so the value is initialised, and we
                    // are its only reader.
                    let value = slot
                        .value
                        .with(|cell| unsafe { (*cell).assume_init_read() });
                    if offset + 1 == BLOCK_CAP {
                        // SAFETY: we read the last slot, so we start the release.
                        unsafe { self.release_block(block, 0) };
                    } else if slot.state.fetch_or(READ, Ordering::AcqRel) & DESTROY != 0 {
                        // SAFETY: the releasing thread handed the rest of the job to us.
                        unsafe { self.release_block(block, offset + 1) };
                    }
                    return Ok(value);
                }
                Err(actual) => {
                    head = actual;
                    block = self.head.block.load(Ordering::Acquire);
                    backoff.spin();
                }
            }
        }
    }

    /// Closes the queue: later pushes fail, pops drain what is left and then report
    /// [`PopError::Closed`]. Returns `true` if this call closed it.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = flowbed_lockfree::SegQueue::new();
    /// q.push(1).unwrap();
    /// assert!(q.close());
    /// assert!(q.push(2).is_err());
    /// assert_eq!(q.pop(), Ok(1));
    /// ```
    pub fn close(&self) -> bool {
        self.tail.index.fetch_or(CLOSED, Ordering::SeqCst) & CLOSED == 0
    }

    /// True once [`close`](Self::close) has been called.
    pub fn is_closed(&self) -> bool {
        self.tail.index.load(Ordering::SeqCst) & CLOSED != 0
    }

    /// True if the queue holds no value (a snapshot when other threads are active).
    pub fn is_empty(&self) -> bool {
        let head = self.head.index.load(Ordering::SeqCst);
        let tail = self.tail.index.load(Ordering::SeqCst);
        head >> SHIFT == tail >> SHIFT
    }

    /// The number of values in the queue (a snapshot when other threads are active).
    pub fn len(&self) -> usize {
        loop {
            let mut tail = self.tail.index.load(Ordering::SeqCst);
            let mut head = self.head.index.load(Ordering::SeqCst);
            // A consistent pair: tail did not move while we read head.
            if self.tail.index.load(Ordering::SeqCst) == tail {
                tail >>= SHIFT;
                head >>= SHIFT;
                // A position resting on a block's marker counts as the next block's start.
                if tail % LAP == BLOCK_CAP {
                    tail = tail.wrapping_add(1);
                }
                if head % LAP == BLOCK_CAP {
                    head = head.wrapping_add(1);
                }
                // Re-base both on the head's lap so the arithmetic cannot overflow.
                let lap_start = head / LAP * LAP;
                let tail = tail.wrapping_sub(lap_start);
                let head = head.wrapping_sub(lap_start);
                // Every lap passed includes one marker position that holds no value.
                return tail - head - tail / LAP;
            }
        }
    }
}

impl<T> Drop for SegQueue<T> {
    fn drop(&mut self) {
        // `&mut self`: no other thread can touch the queue.
        let mut head = self.head.index.load(Ordering::Relaxed) & !HAS_NEXT;
        let tail = self.tail.index.load(Ordering::Relaxed) & !CLOSED;
        let mut block = self.head.block.load(Ordering::Relaxed);
        while head >> SHIFT != tail >> SHIFT {
            let offset = (head >> SHIFT) % LAP;
            if offset < BLOCK_CAP {
                // SAFETY: slots between head and tail hold values nobody popped.
                unsafe {
                    (*block).slots[offset]
                        .value
                        .with_mut(|cell| (*cell).assume_init_drop());
                }
            } else {
                // SAFETY: we own every block; read the link before freeing.
                let next = unsafe { (*block).next.load(Ordering::Relaxed) };
                // SAFETY: allocated by `Block::allocate`, no longer referenced.
                drop(unsafe { Box::from_raw(block) });
                block = next;
            }
            head = head.wrapping_add(1 << SHIFT);
        }
        if !block.is_null() {
            // SAFETY: the last block, no longer referenced.
            drop(unsafe { Box::from_raw(block) });
        }
        for spare in &self.spares {
            let block = spare.load(Ordering::Relaxed);
            if !block.is_null() {
                // SAFETY: spares are owned by the queue and unreachable otherwise.
                drop(unsafe { Box::from_raw(block) });
            }
        }
    }
}

impl<T> fmt::Debug for SegQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SegQueue")
            .field("len", &self.len())
            .field("closed", &self.is_closed())
            .finish()
    }
}
