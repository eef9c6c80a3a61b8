//! The Generic Cell Rate Algorithm on one atomic word.
//!
//! GCRA keeps a single number per limited thing, the *theoretical arrival time* (TAT):
//! the moment by which everything admitted so far would have drained at the quota's rate.
//! With `T` the replenish interval and `τ = T × burst` the tolerance, admitting `n` cells
//! at time `now` moves the TAT to `max(TAT, now) + n·T`, which is allowed only if the new
//! TAT is at most `now + τ` (the cells fit in the burst). A denial writes nothing. The
//! whole state is one `AtomicU64`, updated with a compare-and-swap loop: lock-free, and
//! exact for weighted checks because `n·T` is added in one step.
//!
//! The top bit of the word is not time: keyed limiters mark keys with a quota of their
//! own there ([`OVERRIDE_FLAG`]). Every update keeps it.

use crate::decision::Decision;
use crate::quota::Quota;
use crate::sync::{AtomicU64, Ordering};

/// Set on keys of a keyed limiter whose quota is overridden.
pub(crate) const OVERRIDE_FLAG: u64 = 1 << 63;
/// The TAT's bits; times saturate here (about 292 years).
const TIME_MASK: u64 = OVERRIDE_FLAG - 1;

/// One GCRA state: the theoretical arrival time, in the limiter clock's nanoseconds.
#[derive(Debug)]
pub(crate) struct GcraCell {
    word: AtomicU64,
}

impl GcraCell {
    /// A fresh state (full burst available), optionally marked as overridden.
    pub(crate) fn new(overridden: bool) -> Self {
        Self {
            word: AtomicU64::new(if overridden { OVERRIDE_FLAG } else { 0 }),
        }
    }

    /// Admits `n` cells at `now` if they conform; the caller has checked `n <= burst`.
    #[inline]
    pub(crate) fn check(&self, now: u64, n: u32, quota: &Quota) -> Decision {
        let interval = quota.interval_nanos();
        let tolerance = quota.tolerance_nanos();
        let cost = interval * u64::from(n); // <= tolerance, which fits
        let horizon = now.saturating_add(tolerance);
        let mut word = self.word.load(Ordering::Relaxed);
        loop {
            let tat = word & TIME_MASK;
            let start = tat.max(now);
            let new_tat = start.saturating_add(cost);
            if new_tat > horizon {
                return Decision::new(
                    false,
                    quota.burst(),
                    horizon.saturating_sub(start),
                    interval,
                    tat.saturating_sub(now),
                    new_tat - horizon,
                );
            }
            let new_word = new_tat.min(TIME_MASK) | (word & OVERRIDE_FLAG);
            match self.word.compare_exchange_weak(
                word,
                new_word,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    return Decision::new(
                        true,
                        quota.burst(),
                        horizon - new_tat,
                        interval,
                        new_tat - now,
                        0,
                    );
                }
                Err(actual) => word = actual,
            }
        }
    }

    /// Spends `n` cells unconditionally, queueing behind earlier reservations, and returns
    /// the time at which they conform (at or before `now`: use them at once). Reservations
    /// are served in the order they were made. The caller has checked `n <= burst`.
    pub(crate) fn reserve(&self, now: u64, n: u32, quota: &Quota) -> u64 {
        let cost = quota.interval_nanos() * u64::from(n);
        let mut word = self.word.load(Ordering::Relaxed);
        loop {
            let new_tat = (word & TIME_MASK).max(now).saturating_add(cost);
            let new_word = new_tat.min(TIME_MASK) | (word & OVERRIDE_FLAG);
            match self.word.compare_exchange_weak(
                word,
                new_word,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return new_tat.saturating_sub(quota.tolerance_nanos()),
                Err(actual) => word = actual,
            }
        }
    }

    /// Gives back `n` cells reserved with [`reserve`](Self::reserve) and never used (the
    /// waiter was cancelled), without moving the TAT below `now` (cells in the past are
    /// already free).
    pub(crate) fn release(&self, now: u64, n: u32, quota: &Quota) {
        let cost = quota.interval_nanos() * u64::from(n);
        let _ = self
            .word
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |word| {
                let tat = (word & TIME_MASK).saturating_sub(cost).max(now);
                Some(tat.min(word & TIME_MASK) | (word & OVERRIDE_FLAG))
            });
    }

    /// Whether the state equals a fresh one at `now` (fully replenished), so forgetting it
    /// loses nothing.
    pub(crate) fn is_idle(&self, now: u64) -> bool {
        self.word.load(Ordering::Relaxed) & TIME_MASK <= now
    }

    /// The theoretical arrival time (for choosing which busy key to forget).
    pub(crate) fn theoretical_arrival(&self) -> u64 {
        self.word.load(Ordering::Relaxed) & TIME_MASK
    }

    /// Re-expresses the state for a new quota so that the key keeps the cells it has spent
    /// (rounded up): spent `k` cells under the old quota, it has spent `k` under the new
    /// one. The caller holds the state exclusively (a shard write lock).
    pub(crate) fn rescale(&self, now: u64, old: &Quota, new: &Quota) {
        let word = self.word.load(Ordering::Relaxed);
        let tat = word & TIME_MASK;
        if tat <= now || old.interval_nanos() == new.interval_nanos() {
            return;
        }
        let debt = u128::from(tat - now) * u128::from(new.interval_nanos());
        let debt = debt.div_ceil(u128::from(old.interval_nanos()));
        let tat = now.saturating_add(u64::try_from(debt).unwrap_or(u64::MAX));
        self.word.store(
            tat.min(TIME_MASK) | (word & OVERRIDE_FLAG),
            Ordering::Relaxed,
        );
    }

    /// Whether the key's quota is overridden.
    #[inline]
    pub(crate) fn is_overridden(&self) -> bool {
        self.word.load(Ordering::Relaxed) & OVERRIDE_FLAG != 0
    }

    /// Marks or unmarks the key's quota as overridden, keeping the TAT.
    pub(crate) fn set_overridden(&self, overridden: bool) {
        if overridden {
            self.word.fetch_or(OVERRIDE_FLAG, Ordering::Relaxed);
        } else {
            self.word.fetch_and(TIME_MASK, Ordering::Relaxed);
        }
    }
}
