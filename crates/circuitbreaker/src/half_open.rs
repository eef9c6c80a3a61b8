//! The counters of one half-open trial, in one atomic word.

use crate::window::{Code, Totals};

const FIELD_BITS: u32 = 8;
const FIELD_MASK: u64 = (1 << FIELD_BITS) - 1;
const ADMITTED: u32 = 0;
const DONE: u32 = 8;
const FAILED: u32 = 16;
const SLOW: u32 = 24;
const SLOW_FAILED: u32 = 32;
const TAG_SHIFT: u32 = 40;

/// One half-open trial's counters:
///
/// | bits | field |
/// |---|---|
/// | 0..8 | probes admitted (in flight or done; a released probe gives its slot back) |
/// | 8..16 | probes done (an outcome was recorded) |
/// | 16..24, 24..32, 32..40 | failed, slow and slow-failed probes |
/// | 40..64 | the trial's tag ([`StateWord::tag`](crate::state::StateWord::tag)) |
///
/// Every change is a compare-and-swap that checks the tag, so a permit of an earlier
/// trial can neither take nor give back a slot of this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HalfOpenWord(pub(crate) u64);

impl HalfOpenWord {
    pub(crate) fn fresh(tag: u64) -> HalfOpenWord {
        HalfOpenWord(tag << TAG_SHIFT)
    }

    fn field(self, shift: u32) -> u32 {
        ((self.0 >> shift) & FIELD_MASK) as u32
    }

    pub(crate) fn tag(self) -> u64 {
        self.0 >> TAG_SHIFT
    }

    pub(crate) fn admitted(self) -> u32 {
        self.field(ADMITTED)
    }

    pub(crate) fn done(self) -> u32 {
        self.field(DONE)
    }

    pub(crate) fn failed(self) -> u32 {
        self.field(FAILED)
    }

    pub(crate) fn slow(self) -> u32 {
        self.field(SLOW)
    }

    pub(crate) fn slow_failed(self) -> u32 {
        self.field(SLOW_FAILED)
    }

    /// The trial's outcomes so far, as window totals.
    pub(crate) fn totals(self) -> Totals {
        Totals {
            calls: u64::from(self.done()),
            failed: u64::from(self.failed()),
            slow: u64::from(self.slow()),
            slow_failed: u64::from(self.slow_failed()),
        }
    }

    /// One more probe admitted (the caller checked there is room).
    pub(crate) fn admit(self) -> HalfOpenWord {
        HalfOpenWord(self.0 + (1 << ADMITTED))
    }

    /// An admitted probe gives its slot back.
    pub(crate) fn release(self) -> HalfOpenWord {
        HalfOpenWord(self.0 - (1 << ADMITTED))
    }

    /// An admitted probe finished with `code`; it keeps its slot.
    pub(crate) fn record(self, code: Code) -> HalfOpenWord {
        let mut word = self.0 + (1 << DONE);
        if code.failed() {
            word += 1 << FAILED;
        }
        if code.slow() {
            word += 1 << SLOW;
        }
        if code.failed() && code.slow() {
            word += 1 << SLOW_FAILED;
        }
        HalfOpenWord(word)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_independent() {
        let word = HalfOpenWord::fresh(0xAB_CDEF).admit().admit().admit();
        let word = word
            .record(Code::new(true, true))
            .record(Code::new(false, true))
            .release();
        assert_eq!(word.tag(), 0xAB_CDEF);
        assert_eq!(
            (
                word.admitted(),
                word.done(),
                word.failed(),
                word.slow(),
                word.slow_failed()
            ),
            (2, 2, 1, 2, 1)
        );
    }
}
