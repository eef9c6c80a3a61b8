//! What a finished call counts as.

/// How a finished call counts in the breaker's statistics.
///
/// Durations decide *slow* separately: a success or a failure that took at least
/// `slow_call_duration` also counts as slow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The call worked.
    Success,
    /// The call failed and counts toward the failure rate.
    Failure,
    /// The call neither counts as a success nor as a failure (a client error, a
    /// cancellation): it leaves no trace in the window, and in half-open it gives its
    /// probe slot back.
    Ignored,
}
