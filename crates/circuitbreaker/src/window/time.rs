//! The time window: the calls of the last `length`, in buckets of one `bucket` width each.

use crossbeam_utils::CachePadded;

use super::{Code, Totals};
use crate::sync::{AtomicU64, Ordering};

const TAG_SHIFT: u32 = 40;
const COUNT_MASK: u64 = (1 << TAG_SHIFT) - 1;
const TAG_MASK: u64 = (1 << (64 - TAG_SHIFT)) - 1;

/// Which count a word of a bucket (and of the totals) holds.
const CALLS: usize = 0;
const FAILED: usize = 1;
const SLOW: usize = 2;
const SLOW_FAILED: usize = 3;

/// Time is cut into epochs of one bucket width; epoch `e` lives in bucket `e % buckets`.
/// Each bucket is four words (calls, failed, slow, slow-failed), each a 40-bit count under
/// a 24-bit tag naming the epoch it counts. Whoever finds a word tagged with another epoch
/// than its own replaces it with a fresh count (one compare-and-swap) and takes the old
/// count out of the totals, so an outcome leaves the window exactly once. A thread whose
/// epoch has already left the window (it was preempted for a whole window length) finds
/// that out from the head and leaves the bucket alone. (Tags wrap after 2^24 epochs: if
/// the window sits idle for an exact multiple of that, 4.6 hours of 1 ms buckets, a
/// bucket's old counts can survive one more pass of the window.)
///
/// Buckets nobody writes to still have to leave the window: the first call (or metrics
/// read) of a new epoch moves the window's `head` forward and resets the buckets of the
/// epochs it passed over. A success in a bucket that is already current costs one
/// compare-and-swap and one `fetch_add` (the bucket's count and the total).
#[derive(Debug)]
pub(crate) struct TimeWindow {
    head: CachePadded<AtomicU64>,
    totals: CachePadded<[AtomicU64; 4]>,
    buckets: Box<[[AtomicU64; 4]]>,
    bucket_ns: u64,
}

fn tag(epoch: u64) -> u64 {
    epoch & TAG_MASK
}

impl TimeWindow {
    pub(crate) fn new(length_ns: u64, bucket_ns: u64, now: u64) -> TimeWindow {
        let buckets = length_ns / bucket_ns;
        let epoch = now / bucket_ns;
        let window = TimeWindow {
            head: CachePadded::new(AtomicU64::new(epoch)),
            totals: CachePadded::new(std::array::from_fn(|_| AtomicU64::new(0))),
            buckets: (0..buckets)
                .map(|_| std::array::from_fn(|_| AtomicU64::new(0)))
                .collect(),
            bucket_ns,
        };
        for index in 0..buckets {
            let owner = window.epoch_of_bucket(index, epoch);
            for word in &window.buckets[index as usize] {
                word.store(tag(owner) << TAG_SHIFT, Ordering::Relaxed);
            }
        }
        window
    }

    fn len(&self) -> u64 {
        self.buckets.len() as u64
    }

    /// The epoch bucket `index` stands for when `epoch` is the newest: the one in the
    /// window, or (early on, when that would be before time zero) the next one.
    fn epoch_of_bucket(&self, index: u64, epoch: u64) -> u64 {
        if epoch >= index {
            epoch - (epoch - index) % self.len()
        } else {
            index
        }
    }

    fn bucket(&self, epoch: u64) -> &[AtomicU64; 4] {
        &self.buckets[(epoch % self.len()) as usize]
    }

    /// Records one call; returns the totals after it and its epoch (for
    /// [`undo`](Self::undo)).
    #[inline]
    pub(crate) fn record(&self, code: Code, now: u64) -> (Totals, u64) {
        let epoch = now / self.bucket_ns;
        self.advance(epoch);
        for kind in Self::kinds(code) {
            self.add(kind, epoch);
        }
        (self.read(), epoch)
    }

    /// The words a call of `code` counts in.
    fn kinds(code: Code) -> impl Iterator<Item = usize> {
        [
            (CALLS, true),
            (FAILED, code.failed()),
            (SLOW, code.slow()),
            (SLOW_FAILED, code.failed() && code.slow()),
        ]
        .into_iter()
        .filter_map(|(kind, counts)| counts.then_some(kind))
    }

    /// Takes back a record of `epoch` that raced a [`clear`](Self::clear): one less in
    /// each of its words that still counts that epoch.
    pub(crate) fn undo(&self, code: Code, epoch: u64) {
        for kind in Self::kinds(code) {
            let word = &self.bucket(epoch)[kind];
            let mut current = word.load(Ordering::Acquire);
            while current >> TAG_SHIFT == tag(epoch) && current & COUNT_MASK != 0 {
                match word.compare_exchange_weak(
                    current,
                    current - 1,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => {
                        self.totals[kind].fetch_sub(1, Ordering::AcqRel);
                        break;
                    }
                    Err(actual) => current = actual,
                }
            }
        }
    }

    /// Adds one to word `kind` of `epoch`'s bucket. Every change is a compare-and-swap
    /// that checks the tag, so a call whose epoch leaves the window while it is being
    /// recorded is dropped from all its words alike.
    fn add(&self, kind: usize, epoch: u64) {
        let word = &self.bucket(epoch)[kind];
        let mut current = word.load(Ordering::Acquire);
        loop {
            let (next, expired) = if current >> TAG_SHIFT == tag(epoch) {
                (current + 1, 0)
            } else if self.has_left(epoch) {
                return;
            } else {
                (tag(epoch) << TAG_SHIFT | 1, current & COUNT_MASK)
            };
            match word.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    self.totals[kind].fetch_add(1u64.wrapping_sub(expired), Ordering::AcqRel);
                    return;
                }
                Err(actual) => current = actual,
            }
        }
    }

    /// Whether `epoch` is no longer in the window (its bucket belongs to a later epoch).
    fn has_left(&self, epoch: u64) -> bool {
        epoch + self.len() <= self.head.load(Ordering::Acquire)
    }

    /// Moves the newest epoch to `epoch`, emptying the buckets of the epochs passed over.
    fn advance(&self, epoch: u64) {
        let mut head = self.head.load(Ordering::Acquire);
        while epoch > head {
            match self
                .head
                .compare_exchange_weak(head, epoch, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    let first = (head + 1).max((epoch + 1).saturating_sub(self.len()));
                    for passed in first..=epoch {
                        self.expire(passed);
                    }
                    return;
                }
                Err(actual) => head = actual,
            }
        }
    }

    /// Empties `epoch`'s bucket if it still counts an earlier epoch.
    fn expire(&self, epoch: u64) {
        for (total, word) in self.bucket(epoch).iter().enumerate() {
            let mut current = word.load(Ordering::Acquire);
            // A word tagged `epoch` was started by a call of that epoch: keep it. Once the
            // epoch has left the window, a later advance owns the bucket.
            while current >> TAG_SHIFT != tag(epoch) && !self.has_left(epoch) {
                match word.compare_exchange_weak(
                    current,
                    tag(epoch) << TAG_SHIFT,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => {
                        self.totals[total].fetch_sub(current & COUNT_MASK, Ordering::AcqRel);
                        break;
                    }
                    Err(actual) => current = actual,
                }
            }
        }
    }

    fn read(&self) -> Totals {
        let count =
            |total: usize| (self.totals[total].load(Ordering::Acquire) as i64).max(0) as u64;
        Totals {
            calls: count(CALLS),
            failed: count(FAILED),
            slow: count(SLOW),
            slow_failed: count(SLOW_FAILED),
        }
    }

    pub(crate) fn totals(&self, now: u64) -> Totals {
        self.advance(now / self.bucket_ns);
        self.read()
    }

    /// Empties every bucket, tagging each with the epoch it stands for now.
    pub(crate) fn clear(&self, now: u64) {
        let epoch = now / self.bucket_ns;
        self.advance(epoch);
        for index in 0..self.len() {
            let owner = tag(self.epoch_of_bucket(index, epoch));
            for (total, word) in self.buckets[index as usize].iter().enumerate() {
                let old = word.swap(owner << TAG_SHIFT, Ordering::AcqRel);
                self.totals[total].fetch_sub(old & COUNT_MASK, Ordering::AcqRel);
            }
        }
    }
}

#[cfg(all(test, not(flowbed_loom)))]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn buckets_leave_as_time_moves() {
        let window = TimeWindow::new(3 * SEC, SEC, 10 * SEC);
        let fail = Code::new(true, false);
        let ok = Code::new(false, false);
        window.record(fail, 10 * SEC);
        window.record(ok, 11 * SEC);
        let (totals, _) = window.record(ok, 12 * SEC + 5);
        assert_eq!((totals.calls, totals.failed), (3, 1));
        let totals = window.totals(13 * SEC);
        assert_eq!((totals.calls, totals.failed), (2, 0));
        assert_eq!(window.totals(100 * SEC), Totals::default());
        let (totals, _) = window.record(Code::new(true, true), 100 * SEC);
        assert_eq!(
            (totals.calls, totals.failed, totals.slow, totals.slow_failed),
            (1, 1, 1, 1)
        );
        window.clear(100 * SEC);
        assert_eq!(window.totals(100 * SEC), Totals::default());
    }

    #[test]
    fn forgets_everything_after_any_idle_period() {
        let window = TimeWindow::new(4 * SEC, SEC, 0);
        window.record(Code::new(true, false), 0);
        // Idle for 2^15 and 2^16 epochs (where 16-bit tags would alias) and past the
        // 24-bit tags' wrap, then a call.
        for idle in [1u64 << 15, 1 << 16, (1 << 24) + 1000] {
            let now = window.head.load(Ordering::Relaxed) * SEC + idle * SEC;
            assert_eq!(window.totals(now), Totals::default(), "idle {idle}");
            let (totals, _) = window.record(Code::new(true, false), now);
            assert_eq!((totals.calls, totals.failed), (1, 1), "idle {idle}");
        }
    }

    #[test]
    fn starts_at_time_zero() {
        let window = TimeWindow::new(10 * SEC, SEC, 0);
        for second in 0..10 {
            window.record(Code::new(second % 2 == 0, false), second * SEC);
        }
        let totals = window.totals(9 * SEC);
        assert_eq!((totals.calls, totals.failed), (10, 5));
        let totals = window.totals(10 * SEC);
        assert_eq!((totals.calls, totals.failed), (9, 4));
    }
}
