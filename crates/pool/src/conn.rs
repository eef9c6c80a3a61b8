//! A connection as the pool keeps it: the manager's connection plus what the sizing rules
//! need to know about it.

// `pub` items in a private module: reachable only through `loom_api` in loom builds.
#![allow(unreachable_pub)]

use std::time::Duration;

/// Facts the pool keeps about one connection (times are readings of the pool's clock, in
/// nanoseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// Unique within the pool, in creation order.
    pub id: u64,
    pub created_at: u64,
    /// When `max_lifetime` (minus this connection's jitter) retires it; `u64::MAX` for never.
    pub retire_at: u64,
    /// When it was last handed out or returned.
    pub last_used: u64,
    /// How many times it has been handed out.
    pub uses: u64,
}

impl Meta {
    pub fn new(id: u64, now: u64, lifetime: Option<(Duration, Duration)>) -> Self {
        let retire_at = match lifetime {
            None => u64::MAX,
            Some((lifetime, jitter)) => {
                let jitter = nanos(jitter);
                // A per-connection draw in [0, jitter]: spreads retirements so connections
                // made together are not all replaced at the same instant.
                let drawn = if jitter == 0 {
                    0
                } else {
                    splitmix64(id ^ now) % (jitter + 1)
                };
                now.saturating_add(nanos(lifetime) - drawn)
            }
        };
        Self {
            id,
            created_at: now,
            retire_at,
            last_used: now,
            uses: 0,
        }
    }

    pub fn info(&self, now: u64) -> ConnectionInfo {
        ConnectionInfo {
            id: self.id,
            age: Duration::from_nanos(now.saturating_sub(self.created_at)),
            idle_for: Duration::from_nanos(now.saturating_sub(self.last_used)),
            uses: self.uses,
        }
    }
}

/// What the pool knows about a connection: given to [`Pool::retain`](crate::Pool::retain)
/// predicates and returned by [`Pooled::info`](crate::Pooled::info).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// Unique within the pool, in creation order (the first connection is 1).
    pub id: u64,
    /// Time since it was opened.
    pub age: Duration,
    /// Time since it was last handed out or returned.
    pub idle_for: Duration,
    /// How many times it has been handed out.
    pub uses: u64,
}

/// A connection in the pool's hands.
#[derive(Debug)]
pub struct Conn<C> {
    pub conn: C,
    pub meta: Meta,
}

pub fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(all(test, not(flowbed_loom)))]
mod tests {
    use super::*;

    #[test]
    fn jitter_retires_within_the_window_and_spreads() {
        let lifetime = Duration::from_secs(60);
        let jitter = Duration::from_secs(5);
        let mut seen = std::collections::HashSet::new();
        for id in 1..=100 {
            let meta = Meta::new(id, 1_000, Some((lifetime, jitter)));
            assert!(meta.retire_at <= 1_000 + nanos(lifetime));
            assert!(meta.retire_at >= 1_000 + nanos(lifetime - jitter));
            seen.insert(meta.retire_at);
        }
        assert!(seen.len() > 90, "retirements should differ: {}", seen.len());
    }

    #[test]
    fn no_lifetime_never_retires() {
        assert_eq!(Meta::new(1, 5, None).retire_at, u64::MAX);
        let exact = Meta::new(1, 5, Some((Duration::from_nanos(10), Duration::ZERO)));
        assert_eq!(exact.retire_at, 15);
    }
}
