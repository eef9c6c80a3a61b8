//! A decision of a Redis-backed limiter, with the path that produced it.

use crate::decision::Decision;

/// Which path produced a [`RedisDecision`].
///
/// # Examples
///
/// ```
/// use flowbed_ratelimit::redis::DecisionSource;
///
/// assert!(DecisionSource::Redis.is_authoritative());
/// assert!(DecisionSource::Local.is_authoritative());
/// assert!(!DecisionSource::FailOpen.is_authoritative());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DecisionSource {
    /// Redis decided: the cluster-wide quota holds.
    Redis,
    /// A [`HybridRateLimiter`](super::HybridRateLimiter)'s local limiter refused the
    /// request without asking Redis (this node alone used up the key's quota).
    Local,
    /// Redis could not decide in time and [`FailurePolicy::FailOpen`](super::FailurePolicy)
    /// admitted the request.
    FailOpen,
    /// Redis could not decide in time and [`FailurePolicy::FailClosed`](super::FailurePolicy)
    /// refused the request.
    FailClosed,
}

impl DecisionSource {
    /// Whether the decision comes from a limiter's state (Redis, or the local limiter's
    /// refusal) rather than from the failure policy.
    pub const fn is_authoritative(self) -> bool {
        matches!(self, Self::Redis | Self::Local)
    }
}

/// The outcome of a Redis-backed check: the [`Decision`] and which path produced it.
///
/// # Examples
///
/// ```no_run
/// use std::num::NonZeroU32;
/// use flowbed_ratelimit::Quota;
/// use flowbed_ratelimit::redis::{DecisionSource, RedisRateLimiter};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), redis::RedisError> {
/// let limiter = RedisRateLimiter::builder(Quota::per_second(NonZeroU32::new(10).unwrap()))
///     .build("redis://127.0.0.1:6379")?;
/// let answer = limiter.check("tenant-7").await;
/// if answer.source() != DecisionSource::Redis {
///     eprintln!("Redis unavailable, {:?} applied", answer.source());
/// }
/// if answer.is_allowed() {
///     // handle the request
/// } else {
///     println!("retry in {:?}", answer.decision().retry_after());
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a rate limit decision does nothing unless it is looked at"]
pub struct RedisDecision {
    decision: Decision,
    source: DecisionSource,
}

impl RedisDecision {
    pub(crate) const fn new(decision: Decision, source: DecisionSource) -> Self {
        Self { decision, source }
    }

    /// Whether the cells were admitted.
    #[inline]
    pub const fn is_allowed(&self) -> bool {
        self.decision.is_allowed()
    }

    /// The decision, with remaining capacity, reset-after and retry-after.
    pub const fn decision(&self) -> Decision {
        self.decision
    }

    /// Which path produced the decision.
    pub const fn source(&self) -> DecisionSource {
        self.source
    }
}

impl From<RedisDecision> for Decision {
    fn from(answer: RedisDecision) -> Self {
        answer.decision
    }
}
