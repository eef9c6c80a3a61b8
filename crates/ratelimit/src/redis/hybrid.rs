//! `HybridRateLimiter`: a local keyed limiter in front of Redis.

use std::collections::hash_map::RandomState;
use std::fmt::{self, Display};
use std::hash::{BuildHasher, Hash};

use super::decision::{DecisionSource, RedisDecision};
use super::error::RedisLimitError;
use super::limiter::RedisRateLimiter;
use super::policy::FailurePolicy;
use super::stats::RedisStats;
use crate::clock::Clock;
use crate::decision::Decision;
use crate::error::{InsufficientCapacity, KeyedCheckError};
use crate::keyed::KeyedRateLimiter;
use crate::monotonic::MonotonicClock;
use crate::sync::{AtomicU64, Ordering};

/// Local-first rate limiting: a [`KeyedRateLimiter`] on this node answers refusals at
/// once, and only the requests it admits are confirmed with Redis.
///
/// A check of `n` cells for `key`:
///
/// 1. `n` above the cluster quota's burst: an error, without a round trip.
/// 2. The local limiter refuses: the answer is that refusal
///    ([`DecisionSource::Local`]), without a round trip. Under a flood from one client,
///    most checks end here and Redis sees about the quota's rate per node.
/// 3. The local limiter admits (or cannot track the key because it is full): Redis
///    decides ([`DecisionSource::Redis`]), so the cluster-wide quota holds.
/// 4. Redis cannot decide in time: the [`FailurePolicy`] answers. Failing open, the answer
///    is the local limiter's admission with its numbers ([`DecisionSource::FailOpen`]):
///    during an outage every node still holds each key to the quota on its own.
///
/// With the local quota equal to the cluster quota ([`new`](Self::new)), one node can
/// never admit more than the quota by itself, so a local refusal is one Redis would have
/// given too, with one bound on the difference: the local limiter spends cells when it
/// admits a request even if Redis then refuses it. So a local refusal of `n` cells means
/// the key has fewer than `n + m` cells free cluster-wide, `m` being the largest request
/// (in cells) of this node that Redis refused; with one-cell checks, a local refusal is at
/// most one cell early. (The local limiter runs on the node's clock, Redis on its own;
/// both advance at the same rate.) A stricter per-node quota is a matter of handing
/// [`with_local`](Self::with_local) a limiter built for it.
///
/// # Examples
///
/// ```no_run
/// use std::num::NonZeroU32;
/// use flowbed_ratelimit::Quota;
/// use flowbed_ratelimit::redis::{DecisionSource, HybridRateLimiter, RedisRateLimiter};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), redis::RedisError> {
/// let quota = Quota::per_second(NonZeroU32::new(10).unwrap());
/// let remote = RedisRateLimiter::builder(quota).connect("redis://127.0.0.1:6379").await?;
/// let limiter = HybridRateLimiter::<String>::new(remote);
///
/// let client = "203.0.113.9".to_string();
/// for _ in 0..100 {
///     let answer = limiter.check(&client).await;
///     if answer.source() == DecisionSource::Local {
///         assert!(!answer.is_allowed()); // refused on this node, no round trip
///     }
/// }
/// // At most 10 admitted (plus what the clock replenished), each confirmed by Redis;
/// // the other checks were refused locally.
/// assert!(limiter.stats().local_denials >= 80);
/// # Ok(())
/// # }
/// ```
pub struct HybridRateLimiter<K, C: Clock = MonotonicClock, S = RandomState> {
    local: KeyedRateLimiter<K, C, S>,
    remote: RedisRateLimiter,
    local_denials: AtomicU64,
}

/// What the local limiter said.
enum Local {
    /// Refused: the answer.
    Refused(Decision),
    /// Admitted: Redis decides.
    Admitted(Decision),
    /// The key could not be tracked (the local limiter is full): Redis decides.
    Untracked,
}

impl<K: Hash + Eq + Clone + Display> HybridRateLimiter<K> {
    /// A hybrid limiter whose local limiter enforces the Redis limiter's quota per key,
    /// with the default [`KeyedRateLimiter`] settings.
    pub fn new(remote: RedisRateLimiter) -> Self {
        let local = KeyedRateLimiter::new(remote.quota());
        Self::with_local(remote, local)
    }
}

impl<K, C, S> HybridRateLimiter<K, C, S>
where
    K: Hash + Eq + Clone + Display,
    C: Clock,
    S: BuildHasher + Clone,
{
    /// A hybrid limiter with the local limiter given: its quota (per-node, normally the
    /// cluster quota or less), key cap and clock are the caller's.
    pub fn with_local(remote: RedisRateLimiter, local: KeyedRateLimiter<K, C, S>) -> Self {
        Self {
            local,
            remote,
            local_denials: AtomicU64::new(0),
        }
    }

    /// Admits one cell for `key`: refused locally, or confirmed with Redis; the
    /// [`FailurePolicy`] answers if Redis cannot in time.
    pub async fn check(&self, key: &K) -> RedisDecision {
        match self.check_n(key, 1).await {
            Ok(answer) => answer,
            // Unreachable: every burst is at least one cell.
            Err(_) => self.remote.policy_decision(1),
        }
    }

    /// Admits `n` cells for `key` at once: refused locally, or confirmed with Redis; the
    /// [`FailurePolicy`] answers if Redis cannot in time.
    ///
    /// # Errors
    ///
    /// [`InsufficientCapacity`] if `n` exceeds the burst of the cluster quota or of the
    /// key's local quota, without a round trip.
    pub async fn check_n(&self, key: &K, n: u32) -> Result<RedisDecision, InsufficientCapacity> {
        let local = match self.local(key, n)? {
            Local::Refused(decision) => {
                return Ok(RedisDecision::new(decision, DecisionSource::Local));
            }
            Local::Admitted(decision) => Some(decision),
            Local::Untracked => None,
        };
        Ok(match self.remote.round_trip(key, n).await {
            Ok(decision) => RedisDecision::new(decision, DecisionSource::Redis),
            Err(_) => match (self.remote.failure_policy(), local) {
                (FailurePolicy::FailOpen, Some(decision)) => {
                    RedisDecision::new(decision, DecisionSource::FailOpen)
                }
                _ => self.remote.policy_decision(n),
            },
        })
    }

    /// Admits one cell for `key`; a Redis failure is returned, not answered by the policy.
    ///
    /// # Errors
    ///
    /// [`RedisLimitError::Redis`] or [`RedisLimitError::Timeout`] if the local limiter
    /// admitted and Redis could not decide in time.
    pub async fn try_check(&self, key: &K) -> Result<RedisDecision, RedisLimitError> {
        self.try_check_n(key, 1).await
    }

    /// Admits `n` cells for `key` at once; a Redis failure is returned, not answered by
    /// the policy.
    ///
    /// # Errors
    ///
    /// [`RedisLimitError::InsufficientCapacity`] as for [`check_n`](Self::check_n);
    /// [`RedisLimitError::Redis`] or [`RedisLimitError::Timeout`] if the local limiter
    /// admitted and Redis could not decide in time.
    pub async fn try_check_n(&self, key: &K, n: u32) -> Result<RedisDecision, RedisLimitError> {
        if let Local::Refused(decision) = self.local(key, n)? {
            return Ok(RedisDecision::new(decision, DecisionSource::Local));
        }
        let decision = self.remote.round_trip(key, n).await?;
        Ok(RedisDecision::new(decision, DecisionSource::Redis))
    }

    /// The local limiter (to change its quotas or inspect its keys).
    pub fn local_limiter(&self) -> &KeyedRateLimiter<K, C, S> {
        &self.local
    }

    /// The Redis limiter.
    pub fn remote_limiter(&self) -> &RedisRateLimiter {
        &self.remote
    }

    /// The counters since the limiter was built: the Redis limiter's, and the checks
    /// refused locally.
    pub fn stats(&self) -> RedisStats {
        RedisStats {
            local_denials: self.local_denials.load(Ordering::Relaxed),
            ..self.remote.stats()
        }
    }

    fn local(&self, key: &K, n: u32) -> Result<Local, InsufficientCapacity> {
        self.remote.quota().fits(n)?;
        match self.local.check_n(key, n) {
            Ok(decision) if decision.is_allowed() => Ok(Local::Admitted(decision)),
            Ok(decision) => {
                self.local_denials.fetch_add(1, Ordering::Relaxed);
                Ok(Local::Refused(decision))
            }
            Err(KeyedCheckError::InsufficientCapacity { requested, burst }) => {
                Err(InsufficientCapacity { requested, burst })
            }
            Err(_) => Ok(Local::Untracked),
        }
    }
}

impl<K, C: Clock, S> fmt::Debug for HybridRateLimiter<K, C, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HybridRateLimiter")
            .field("local", &self.local)
            .field("remote", &self.remote)
            .field("local_denials", &self.local_denials.load(Ordering::Relaxed))
            .finish()
    }
}
