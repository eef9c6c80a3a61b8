//! A quota that can be replaced while checks read it, without a lock on the read path.
//!
//! A sequence lock: the writer (serialized by a mutex) makes the sequence odd, stores the
//! quota's words, and makes it even again; a reader reads the sequence, the words, and the
//! sequence again, and retries if a write overlapped. Reads are three plain loads on x86
//! and never write shared memory, so checks on many cores do not contend. Every word is an
//! atomic, so a torn read is a retry, never undefined behaviour.

use crate::quota::Quota;
use crate::sync::{AtomicU64, Mutex, Ordering, fence, lock};

#[derive(Debug)]
pub(crate) struct QuotaCell {
    sequence: AtomicU64,
    /// `count` in the high half, `burst` in the low half.
    count_burst: AtomicU64,
    period: AtomicU64,
    interval: AtomicU64,
    writer: Mutex<()>,
}

impl QuotaCell {
    pub(crate) fn new(quota: Quota) -> Self {
        let (count_burst, period, interval) = words(&quota);
        Self {
            sequence: AtomicU64::new(0),
            count_burst: AtomicU64::new(count_burst),
            period: AtomicU64::new(period),
            interval: AtomicU64::new(interval),
            writer: Mutex::new(()),
        }
    }

    /// The current quota: the one before or the one after any concurrent `store`, never a
    /// mix.
    #[inline]
    pub(crate) fn load(&self) -> Quota {
        loop {
            let before = self.sequence.load(Ordering::Acquire);
            let count_burst = self.count_burst.load(Ordering::Relaxed);
            let period = self.period.load(Ordering::Relaxed);
            let interval = self.interval.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            let after = self.sequence.load(Ordering::Relaxed);
            if before == after && before % 2 == 0 {
                return Quota::from_words(count_burst, period, interval);
            }
            crate::sync::spin_loop();
        }
    }

    pub(crate) fn store(&self, quota: Quota) {
        let _writer = lock(&self.writer);
        let (count_burst, period, interval) = words(&quota);
        let sequence = self.sequence.load(Ordering::Relaxed);
        self.sequence.store(sequence + 1, Ordering::Relaxed);
        fence(Ordering::Release);
        self.count_burst.store(count_burst, Ordering::Relaxed);
        self.period.store(period, Ordering::Relaxed);
        self.interval.store(interval, Ordering::Relaxed);
        self.sequence.store(sequence + 2, Ordering::Release);
    }
}

fn words(quota: &Quota) -> (u64, u64, u64) {
    (
        (u64::from(quota.count()) << 32) | u64::from(quota.burst()),
        quota.period_nanos(),
        quota.interval_nanos(),
    )
}
