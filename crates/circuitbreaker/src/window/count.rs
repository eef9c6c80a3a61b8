//! The count window: the outcomes of the last `n` calls in a ring of bytes.

use crossbeam_utils::CachePadded;

use super::{BadCounts, Code, Totals};
use crate::sync::{AtomicU8, AtomicU64, Ordering};

/// The last `size` outcomes.
///
/// A call takes the next sequence number (one `fetch_add`) and reads the ring slot of
/// that number; only if the slot holds a different outcome does it swap its own in and
/// adjust the running counts. A success replacing a success, the steady state of a
/// healthy service, costs the `fetch_add`, a load and no division (the slot index is
/// Lemire's multiply-shift remainder). Two threads recording at once share the sequence
/// counter's cache line and only read the ring's.
#[derive(Debug)]
pub(crate) struct CountWindow {
    seq: CachePadded<AtomicU64>,
    /// Records finished while the window was filling (`seq < size`): the call count then,
    /// so that the last of several concurrent records sees all their outcomes.
    filled: CachePadded<AtomicU64>,
    counts: CachePadded<BadCounts>,
    slots: Box<[AtomicU8]>,
    size: u64,
    /// `2^64 / size` rounded up, for [`slot_index`](Self::slot_index).
    magic: u64,
}

impl CountWindow {
    pub(crate) fn new(size: u32) -> CountWindow {
        let size = u64::from(size);
        CountWindow {
            seq: CachePadded::new(AtomicU64::new(0)),
            filled: CachePadded::new(AtomicU64::new(0)),
            counts: CachePadded::new(BadCounts::default()),
            slots: (0..size).map(|_| AtomicU8::new(0)).collect(),
            size,
            magic: (u64::MAX / size).wrapping_add(1),
        }
    }

    /// The slot of call number `seq`: `(seq mod 2^32) mod size`, by Lemire's "fastmod"
    /// (exact for 32-bit numerators and divisors). Every 2^32 calls the ring skips ahead
    /// once to slot 0, which leaves a few slots one lap older: harmless.
    #[inline]
    fn slot_index(&self, seq: u64) -> usize {
        let low = self.magic.wrapping_mul(u64::from(seq as u32));
        ((u128::from(low) * u128::from(self.size)) >> 64) as usize
    }

    /// Records one call; returns the totals after it and where it went (for
    /// [`undo`](Self::undo)), or `None` when the window is full and the call's slot
    /// already held the same outcome: then nothing changed, not even the rates.
    #[inline]
    pub(crate) fn record(&self, code: Code) -> Option<(Totals, usize)> {
        let seq = self.seq.fetch_add(1, Ordering::AcqRel);
        let index = self.slot_index(seq);
        let slot = &self.slots[index];
        let filling = seq < self.size;
        // The steady state of a healthy service: a success where a success was. Reading
        // first spares the write (only calls a whole lap apart share a slot, and their
        // order is arbitrary anyway).
        if !filling && slot.load(Ordering::Acquire) == code.0 {
            return None;
        }
        let old = Code(slot.swap(code.0, Ordering::AcqRel));
        if old != code {
            self.counts.replace(old, code);
        }
        // Once full, the window holds `size` calls whatever the order of concurrent
        // records; while it fills, only finished records count, so that the record that
        // completes the minimum sees the outcomes of the records before it.
        let calls = if filling {
            (self.filled.fetch_add(1, Ordering::AcqRel) + 1).min(self.size)
        } else {
            self.size
        };
        Some((self.counts.read(calls), index))
    }

    /// Takes back a record that raced a [`clear`](Self::clear) (its slot written after
    /// the clear passed it): the slot is emptied if it still holds the outcome.
    pub(crate) fn undo(&self, index: usize, code: Code) {
        if self.slots[index]
            .compare_exchange(code.0, 0, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.counts.replace(code, Code(0));
        }
    }

    pub(crate) fn totals(&self) -> Totals {
        let calls = if self.seq.load(Ordering::Acquire) >= self.size {
            self.size
        } else {
            self.filled.load(Ordering::Acquire).min(self.size)
        };
        self.counts.read(calls)
    }

    pub(crate) fn clear(&self) {
        self.seq.store(0, Ordering::Release);
        self.filled.store(0, Ordering::Release);
        for slot in self.slots.iter() {
            let old = Code(slot.swap(0, Ordering::AcqRel));
            if old.0 != 0 {
                self.counts.replace(old, Code(0));
            }
        }
    }
}

#[cfg(all(test, not(flowbed_loom)))]
mod tests {
    use super::*;

    #[test]
    fn slot_index_is_the_remainder() {
        for size in [1u32, 2, 3, 63, 64, 65, 100, 1000, 999_983, 1 << 20] {
            let window = CountWindow::new(size);
            for seq in (0..5_000u64).chain([u64::from(u32::MAX) - 3, 1 << 40, u64::MAX]) {
                let expected = u64::from(seq as u32) % u64::from(size);
                assert_eq!(window.slot_index(seq) as u64, expected, "{seq} mod {size}");
            }
        }
    }

    #[test]
    fn oldest_outcome_leaves() {
        let window = CountWindow::new(3);
        let fail = Code::new(true, false);
        let ok = Code::new(false, false);
        assert_eq!(window.record(fail).unwrap().0.failed, 1);
        window.record(ok);
        let (totals, _) = window.record(ok).unwrap();
        assert_eq!((totals.calls, totals.failed), (3, 1));
        let (totals, _) = window.record(ok).unwrap();
        assert_eq!((totals.calls, totals.failed), (3, 0));
        assert_eq!(window.record(ok), None); // a success where a success was
        window.record(Code::new(true, true));
        window.clear();
        assert_eq!(window.totals(), Totals::default());
    }
}
