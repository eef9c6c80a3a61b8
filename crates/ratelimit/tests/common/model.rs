//! The part of the model tests (`gcra_model.rs`, `sliding_window_model.rs`) that does not
//! depend on the algorithm: comparing a decision with the reference's, and probing that
//! retry-after is exact.

use std::time::Duration;

use flowbed_ratelimit::{Decision, InsufficientCapacity};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// What a reference model expects of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Expected {
    pub(crate) allowed: bool,
    pub(crate) remaining: u32,
    pub(crate) retry_after: u128,
    pub(crate) reset_after: u128,
}

impl Expected {
    fn of(decision: &Decision) -> Self {
        Self {
            allowed: decision.is_allowed(),
            remaining: decision.remaining(),
            retry_after: decision.retry_after().as_nanos(),
            reset_after: decision.reset_after().as_nanos(),
        }
    }
}

/// Compares the limiter's answer to `check_n(n)` at `now` with the reference's
/// (`Err((requested, burst))` when the reference refuses `n` as impossible); returns the
/// limiter's decision, or `None` for an agreed refusal.
pub(crate) fn compare(
    actual: Result<Decision, InsufficientCapacity>,
    expected: Result<Expected, (u32, u32)>,
    now: u128,
    n: u32,
) -> Result<Option<Decision>, TestCaseError> {
    match (actual, expected) {
        (Err(error), Err((requested, burst))) => {
            prop_assert_eq!((error.requested, error.burst), (requested, burst));
            Ok(None)
        }
        (Ok(decision), Ok(expected)) => {
            prop_assert_eq!(
                Expected::of(&decision),
                expected,
                "check_n({}) at {} ns",
                n,
                now
            );
            Ok(Some(decision))
        }
        (actual, expected) => Err(TestCaseError::fail(format!(
            "check_n({n}) at {now} ns: limiter {actual:?}, reference {expected:?}"
        ))),
    }
}

/// A limiter under test beside its reference, on a shared manual time line.
pub(crate) trait Harness {
    /// Moves both clocks forward.
    fn advance(&mut self, nanos: u128);

    /// Checks `n` cells on both and compares; returns the limiter's decision.
    fn check(&mut self, n: u32) -> Result<Option<Decision>, TestCaseError>;

    /// After a denial of `n` with `retry_after`: still denied 1 ns before, allowed at it.
    fn probe_retry_after(&mut self, n: u32, retry_after: u128) -> Result<(), TestCaseError> {
        prop_assert!(retry_after > 0, "a denial must say when to retry");
        self.advance(retry_after - 1);
        let before = self.check(n)?.unwrap();
        prop_assert!(
            !before.is_allowed(),
            "check_n({}) admitted 1 ns before its retry-after",
            n
        );
        prop_assert_eq!(before.retry_after(), Duration::from_nanos(1));
        self.advance(1);
        let at = self.check(n)?.unwrap();
        prop_assert!(
            at.is_allowed(),
            "check_n({}) denied at its retry-after ({} ns)",
            n,
            retry_after
        );
        Ok(())
    }
}
