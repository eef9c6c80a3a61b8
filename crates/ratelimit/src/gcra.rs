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

use std::convert::Infallible;

use crate::decision::Decision;
use crate::quota::Quota;
use crate::sync::{AtomicU64, Ordering};

/// Set on keys of a keyed limiter whose quota is overridden.
pub(crate) const OVERRIDE_FLAG: u64 = 1 << 63;
/// The TAT's bits; times saturate here (about 292 years).
const TIME_MASK: u64 = OVERRIDE_FLAG - 1;

/// Cells spent ahead of time by [`GcraCell::reserve`].
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
pub(crate) struct Reserved {
    /// When the cells conform.
    pub(crate) ready_at: u64,
    /// The TAT the reservation left behind.
    end: u64,
    /// Nanoseconds of the timeline the cells take.
    cost: u64,
}

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
        let cost = interval.saturating_mul(u64::from(n));
        let horizon = now.saturating_add(quota.tolerance_nanos());
        let outcome = self.advance(|tat| {
            let start = tat.max(now);
            let new_tat = start.saturating_add(cost);
            // `n = 0` spends nothing and is always allowed, also behind queued waiters.
            if new_tat > horizon && cost > 0 {
                // Denied: nothing is written.
                return Err(Decision::new(
                    false,
                    quota.burst(),
                    horizon.saturating_sub(start),
                    interval,
                    tat.saturating_sub(now),
                    new_tat - horizon,
                ));
            }
            Ok(new_tat)
        });
        match outcome {
            Ok(new_tat) => Decision::new(
                true,
                quota.burst(),
                horizon.saturating_sub(new_tat),
                interval,
                new_tat - now,
                0,
            ),
            Err(denied) => denied,
        }
    }

    /// Spends `n` cells unconditionally, queueing behind earlier reservations, and says
    /// when they conform (at or before `now`: use them at once). Reservations are served
    /// in the order they were made. The caller has checked `n <= burst`.
    pub(crate) fn reserve(&self, now: u64, n: u32, quota: &Quota) -> Reserved {
        let cost = quota.interval_nanos().saturating_mul(u64::from(n));
        let Ok(new_tat) = self.advance::<Infallible>(|tat| Ok(tat.max(now).saturating_add(cost)));
        Reserved {
            ready_at: new_tat.saturating_sub(quota.tolerance_nanos()),
            end: new_tat.min(TIME_MASK),
            cost,
        }
    }

    /// The one compare-and-swap loop: `next` maps the current TAT to the new one, or to a
    /// refusal that leaves the state alone. Returns the TAT as `next` computed it (before
    /// saturation at the word's range) or the refusal. The override flag is kept.
    #[inline(always)]
    fn advance<R>(&self, mut next: impl FnMut(u64) -> Result<u64, R>) -> Result<u64, R> {
        let mut word = self.word.load(Ordering::Relaxed);
        loop {
            let new_tat = next(word & TIME_MASK)?;
            let new_word = new_tat.min(TIME_MASK) | (word & OVERRIDE_FLAG);
            match self.word.compare_exchange_weak(
                word,
                new_word,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(new_tat),
                Err(actual) => word = actual,
            }
        }
    }

    /// Gives back cells reserved with [`reserve`](Self::reserve) and never used (the waiter
    /// was cancelled), if that reservation is still the last thing on the timeline and
    /// without moving the TAT below `now` (cells in the past are free anyway). If someone
    /// reserved or was admitted after it, its cells sit between theirs and cannot be
    /// handed to a newcomer without putting two users on one slot: they are skipped.
    #[cfg(feature = "tokio")]
    pub(crate) fn release(&self, now: u64, reserved: &Reserved) {
        let word = self.word.load(Ordering::Relaxed);
        if word & TIME_MASK != reserved.end {
            return;
        }
        let tat = reserved
            .end
            .saturating_sub(reserved.cost)
            .max(now)
            .min(reserved.end);
        // One attempt: if the TAT moved meanwhile, someone is behind us now.
        let _ = self.word.compare_exchange(
            word,
            tat | (word & OVERRIDE_FLAG),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
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
