//! The breaker's states, and the one atomic word that holds the current one.

use std::fmt;

/// The state of a circuit breaker.
///
/// The first three are automatic (the breaker moves between them by itself); the last
/// three are entered only by [`transition_to`](crate::CircuitBreaker::transition_to) and
/// left the same way or by [`reset`](crate::CircuitBreaker::reset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Calls go through; their outcomes fill the sliding window, and a failure or
    /// slow-call rate at or above its threshold opens the breaker.
    Closed,
    /// Calls are refused until `wait_in_open` has passed; then the breaker is half-open.
    Open,
    /// Up to `permitted_calls_in_half_open` probes go through; their rates decide between
    /// `Closed` and `Open`.
    HalfOpen,
    /// Every call goes through and nothing is recorded.
    Disabled,
    /// Every call is refused.
    ForcedOpen,
    /// Every call goes through and is recorded (metrics and events), but the breaker never
    /// opens.
    MetricsOnly,
}

impl State {
    const ALL: [State; 6] = [
        State::Closed,
        State::Open,
        State::HalfOpen,
        State::Disabled,
        State::ForcedOpen,
        State::MetricsOnly,
    ];

    fn code(self) -> u64 {
        self as u64
    }

    fn from_code(code: u64) -> State {
        State::ALL[code as usize]
    }

    /// Whether calls are permitted at all in this state (half-open: some are).
    pub fn permits_calls(self) -> bool {
        !matches!(self, State::Open | State::ForcedOpen)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half-open",
            State::Disabled => "disabled",
            State::ForcedOpen => "forced open",
            State::MetricsOnly => "metrics only",
        })
    }
}

const STATE_BITS: u32 = 3;
const TRIAL_BITS: u32 = 7;
const SEQ_BITS: u32 = 6;
const SINCE_SHIFT: u32 = STATE_BITS + TRIAL_BITS + SEQ_BITS;
const MAX_TRIALS: u64 = (1 << TRIAL_BITS) - 1;
const SINCE_MASK: u64 = (1 << (64 - SINCE_SHIFT)) - 1;

/// The current state in one `u64`, so every transition is one compare-and-swap:
///
/// | bits | field |
/// |---|---|
/// | 0..3 | the [`State`] |
/// | 3..10 | failed half-open trials in a row (for exponential `wait_in_open`), saturating |
/// | 10..16 | a transition counter (wrapping) |
/// | 16..64 | when the state was entered, µs on the breaker's clock (8.9 years) |
///
/// Two consecutive words always differ (the counter moves on every transition), so the
/// whole word identifies one *period* of a state: a permit remembers the word it was
/// granted under, and an outcome counts only if the breaker is still in that period.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct StateWord(pub(crate) u64);

impl StateWord {
    pub(crate) fn initial(state: State, now_ns: u64) -> StateWord {
        StateWord::pack(state, 0, 0, now_ns / 1_000)
    }

    fn pack(state: State, failed_trials: u64, seq: u64, since_us: u64) -> StateWord {
        StateWord(
            state.code()
                | failed_trials.min(MAX_TRIALS) << STATE_BITS
                | (seq & ((1 << SEQ_BITS) - 1)) << (STATE_BITS + TRIAL_BITS)
                | (since_us & SINCE_MASK) << SINCE_SHIFT,
        )
    }

    pub(crate) fn state(self) -> State {
        State::from_code(self.0 & ((1 << STATE_BITS) - 1))
    }

    /// Failed half-open trials in a row before this period.
    pub(crate) fn failed_trials(self) -> u32 {
        ((self.0 >> STATE_BITS) & MAX_TRIALS) as u32
    }

    fn seq(self) -> u64 {
        (self.0 >> (STATE_BITS + TRIAL_BITS)) & ((1 << SEQ_BITS) - 1)
    }

    /// When this period began, in nanoseconds (µs precision).
    pub(crate) fn since_ns(self) -> u64 {
        (self.0 >> SINCE_SHIFT) * 1_000
    }

    /// 24 bits that differ between neighbouring periods, to tag the half-open counters.
    pub(crate) fn tag(self) -> u64 {
        (self.0 >> (STATE_BITS + TRIAL_BITS)) & 0xFF_FFFF
    }

    /// The word for moving to `state` at `now_ns` with this many failed trials behind it.
    pub(crate) fn successor(self, state: State, failed_trials: u32, now_ns: u64) -> StateWord {
        // A clock read before this period began (another thread's stale reading) must
        // not move the period's start back.
        let since_us = (now_ns / 1_000).max(self.since_ns() / 1_000);
        StateWord::pack(
            state,
            u64::from(failed_trials),
            self.seq().wrapping_add(1),
            since_us,
        )
    }
}

impl fmt::Debug for StateWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateWord")
            .field("state", &self.state())
            .field("failed_trials", &self.failed_trials())
            .field("seq", &self.seq())
            .field("since_ns", &self.since_ns())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_and_successors_differ() {
        let word = StateWord::initial(State::Closed, 5_000_123);
        assert_eq!(word.state(), State::Closed);
        assert_eq!(word.since_ns(), 5_000_000);
        let open = word.successor(State::Open, 3, 5_000_999);
        assert_eq!(open.state(), State::Open);
        assert_eq!(open.failed_trials(), 3);
        assert_ne!(open, word);
        let stale = open.successor(State::HalfOpen, 200, 1_000);
        assert_eq!(stale.since_ns(), 5_000_000);
        assert_eq!(stale.failed_trials(), 127);
        assert_ne!(stale.tag(), open.tag());
    }
}
