//! Fair async waits: reserve a place on a GCRA timeline, sleep until it comes, and give
//! it back if the wait is cancelled.
//!
//! Reserving spends the cells at once, queued behind every earlier reservation, and tells
//! the waiter when they conform. So waiters are served in the order they arrived, each
//! sleeps on its own timer and is woken exactly once, and there is no herd of waiters
//! re-checking a shared state.

use std::time::Duration;

use crate::gcra::Reserved;

/// A GCRA state cells can be reserved on: a limiter, or one key of a keyed limiter.
pub(crate) trait Slot {
    type Error;

    /// The state's clock.
    fn now(&self) -> u64;

    /// Spends `cells` behind earlier reservations.
    fn reserve(&self, now: u64, cells: u32) -> Result<Reserved, Self::Error>;

    /// Gives back a reservation never used (if nothing was queued behind it since).
    fn release(&self, now: u64, reserved: &Reserved);
}

/// Cells reserved for a waiter that has not used them yet. Dropped before
/// [`wait`](Self::wait) finishes (the waiting future was cancelled), it gives them back if
/// nobody queued behind it meanwhile (otherwise its slot passes unused: handing it to a
/// newcomer would put two users on one slot).
pub(crate) struct Reservation<T: Slot> {
    slot: T,
    reserved: Reserved,
    reserved_at: u64,
    used: bool,
}

impl<T: Slot> Reservation<T> {
    /// Reserves `cells` behind every earlier reservation.
    pub(crate) fn make(slot: T, cells: u32) -> Result<Self, T::Error> {
        let reserved_at = slot.now();
        let reserved = slot.reserve(reserved_at, cells)?;
        Ok(Self {
            slot,
            reserved,
            reserved_at,
            used: false,
        })
    }

    /// Sleeps until the reserved cells conform, then hands them to the caller.
    pub(crate) async fn wait(mut self) {
        let ready_at = self.reserved.ready_at;
        if ready_at > self.reserved_at {
            tokio::time::sleep(Duration::from_nanos(ready_at - self.reserved_at)).await;
        }
        self.used = true;
    }
}

impl<T: Slot> Drop for Reservation<T> {
    fn drop(&mut self) {
        if !self.used {
            self.slot.release(self.slot.now(), &self.reserved);
        }
    }
}
