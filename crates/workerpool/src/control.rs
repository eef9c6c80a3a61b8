//! `Control`: the pool's run state and the number of queued jobs in one atomic word.
//!
//! Keeping both in one word is what makes shutdown airtight. A submitter reserves a
//! queue slot with a CAS that succeeds only while the state is `Running`, and only then
//! pushes; the count covers the job from the reservation until a worker (or a drain)
//! takes it out of a queue. So:
//! * after `shutdown`, a worker may exit once the count is zero: no reserved job can
//!   still be on its way into a queue;
//! * `shutdown_now` drains until the count is zero, so it also collects jobs that were
//!   reserved before the state changed and pushed after.

use crate::sync::{AtomicUsize, Ordering};

const STATE_SHIFT: u32 = usize::BITS - 2;
const COUNT_MASK: usize = (1 << STATE_SHIFT) - 1;

/// Where the pool is in its life. Only ever moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum RunState {
    /// Accepting jobs.
    Running = 0,
    /// `shutdown`: refusing new jobs, finishing queued ones.
    Shutdown = 1,
    /// `shutdown_now`: refusing new jobs, queued ones are being drained.
    Stop = 2,
}

/// A consistent reading of the word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub(crate) state: RunState,
    pub(crate) queued: usize,
}

/// Why a reservation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Full,
    Shutdown,
}

#[derive(Debug)]
pub(crate) struct Control(AtomicUsize);

fn decode(word: usize) -> Snapshot {
    let state = match word >> STATE_SHIFT {
        0 => RunState::Running,
        1 => RunState::Shutdown,
        _ => RunState::Stop,
    };
    Snapshot {
        state,
        queued: word & COUNT_MASK,
    }
}

impl Control {
    pub(crate) fn new() -> Self {
        Self(AtomicUsize::new(0))
    }

    pub(crate) fn load(&self) -> Snapshot {
        decode(self.0.load(Ordering::Acquire))
    }

    /// Reserves room for one job in a queue of `capacity`.
    pub(crate) fn try_reserve(&self, capacity: usize) -> Result<(), Refusal> {
        let mut word = self.0.load(Ordering::Relaxed);
        loop {
            let now = decode(word);
            if now.state != RunState::Running {
                return Err(Refusal::Shutdown);
            }
            if now.queued >= capacity {
                return Err(Refusal::Full);
            }
            match self
                .0
                .compare_exchange_weak(word, word + 1, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(actual) => word = actual,
            }
        }
    }

    /// A job left a queue. Returns the state before, for the caller to decide whom to
    /// wake (the last job out under shutdown lets idle workers exit).
    pub(crate) fn release(&self) -> Snapshot {
        let before = decode(self.0.fetch_sub(1, Ordering::AcqRel));
        debug_assert!(before.queued > 0, "released more jobs than were reserved");
        before
    }

    /// Moves the state forward to `target` (never back). Returns the state before.
    pub(crate) fn advance(&self, target: RunState) -> RunState {
        let mut word = self.0.load(Ordering::Relaxed);
        loop {
            let now = decode(word);
            if now.state >= target {
                return now.state;
            }
            let next = (word & COUNT_MASK) | ((target as usize) << STATE_SHIFT);
            match self
                .0
                .compare_exchange_weak(word, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return now.state,
                Err(actual) => word = actual,
            }
        }
    }
}

#[cfg(all(test, not(flowbed_loom)))]
mod tests {
    use super::*;

    #[test]
    fn reservations_stop_at_capacity_and_at_shutdown() {
        let control = Control::new();
        assert_eq!(control.try_reserve(2), Ok(()));
        assert_eq!(control.try_reserve(2), Ok(()));
        assert_eq!(control.try_reserve(2), Err(Refusal::Full));
        assert_eq!(control.release().queued, 2);
        assert_eq!(control.advance(RunState::Shutdown), RunState::Running);
        assert_eq!(control.try_reserve(2), Err(Refusal::Shutdown));
        assert_eq!(
            control.load(),
            Snapshot {
                state: RunState::Shutdown,
                queued: 1
            }
        );
    }

    #[test]
    fn the_state_never_moves_back() {
        let control = Control::new();
        control.advance(RunState::Stop);
        assert_eq!(control.advance(RunState::Shutdown), RunState::Stop);
        assert_eq!(control.load().state, RunState::Stop);
    }
}
