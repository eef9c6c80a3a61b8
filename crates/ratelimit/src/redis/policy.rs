//! What a Redis-backed check answers when Redis cannot.

/// What [`RedisRateLimiter::check`](super::RedisRateLimiter::check) answers when Redis
/// cannot decide in time: it is unreachable, returned an error, or did not answer within
/// the [timeout](super::RedisBuilder::timeout).
///
/// There is no hidden choice: the default is [`FailClosed`](Self::FailClosed), because a
/// limit that silently stops limiting during an outage is the riskier surprise; choose
/// [`FailOpen`](Self::FailOpen) where availability matters more than the limit (and
/// consider [`HybridRateLimiter`](super::HybridRateLimiter), whose fail-open answer still
/// holds each node to the quota on its own).
///
/// The decision says which path was taken
/// ([`RedisDecision::source`](super::RedisDecision::source)), and
/// [`try_check`](super::RedisRateLimiter::try_check) skips the policy and returns the
/// error instead.
///
/// # Examples
///
/// ```
/// use flowbed_ratelimit::redis::FailurePolicy;
///
/// assert_eq!(FailurePolicy::default(), FailurePolicy::FailClosed);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum FailurePolicy {
    /// Admit the request. Without Redis the decision's numbers are unknown: remaining,
    /// reset-after and retry-after are zero (a hybrid limiter gives its local numbers).
    FailOpen,
    /// Refuse the request, with a retry-after of the cells' replenish time
    /// (`max(n, 1)` × the quota's replenish interval), remaining and reset-after zero.
    #[default]
    FailClosed,
}
