//! What the pool has done, as a snapshot: sizes, counts, and wait- and hold-time histograms.

use flowbed_lockfree::histogram::Histogram;

/// Why the pool closed a connection.
///
/// # Examples
///
/// ```
/// use flowbed_pool::CloseReason;
///
/// assert_eq!(CloseReason::ALL.len(), CloseReason::COUNT);
/// assert_eq!(CloseReason::IdleTimeout.to_string(), "idle timeout");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// [`Manager::is_broken`](crate::Manager::is_broken) said so.
    Broken,
    /// [`Manager::recycle`](crate::Manager::recycle) or
    /// [`Manager::before_checkout`](crate::Manager::before_checkout) failed or timed out,
    /// or the check was cancelled halfway.
    CheckFailed,
    /// [`Manager::after_return`](crate::Manager::after_return) refused it.
    Refused,
    /// Idle longer than `idle_timeout` with more than `min_idle` idle.
    IdleTimeout,
    /// Older than `max_lifetime` (minus its jitter).
    MaxLifetime,
    /// Above a smaller [`Pool::resize`](crate::Pool::resize).
    Resized,
    /// Refused by a [`Pool::retain`](crate::Pool::retain) predicate.
    Retain,
    /// Taken out with [`Pooled::detach`](crate::Pooled::detach) (no longer the pool's to close).
    Detached,
    /// The pool was closed.
    PoolClosed,
}

impl CloseReason {
    /// How many reasons there are.
    pub const COUNT: usize = 9;
    /// Every reason, in declaration order (the order of [`Stats::closed`]).
    pub const ALL: [CloseReason; Self::COUNT] = [
        Self::Broken,
        Self::CheckFailed,
        Self::Refused,
        Self::IdleTimeout,
        Self::MaxLifetime,
        Self::Resized,
        Self::Retain,
        Self::Detached,
        Self::PoolClosed,
    ];
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Broken => "broken",
            Self::CheckFailed => "check failed",
            Self::Refused => "refused on return",
            Self::IdleTimeout => "idle timeout",
            Self::MaxLifetime => "max lifetime",
            Self::Resized => "resized",
            Self::Retain => "retain",
            Self::Detached => "detached",
            Self::PoolClosed => "pool closed",
        })
    }
}

/// A snapshot of a pool, from [`Pool::stats`](crate::Pool::stats).
///
/// # Examples
///
/// ```
/// use flowbed_pool::{CloseReason, Manager, Pool};
/// # struct M;
/// # impl Manager for M { type Connection = (); type Error = std::convert::Infallible;
/// #     async fn create(&self) -> Result<(), Self::Error> { Ok(()) } }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pool = Pool::builder(M).max_size(4).build().unwrap();
/// let conn = pool.get().await.unwrap();
/// let stats = pool.stats();
/// assert_eq!((stats.size, stats.in_use, stats.idle), (1, 1, 0));
/// conn.detach();
/// let stats = pool.stats();
/// assert_eq!(stats.size, 0);
/// assert_eq!(stats.closed_for(CloseReason::Detached), 1);
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Connections open (idle + in use).
    pub size: usize,
    /// The size limit now.
    pub max_size: usize,
    /// Connections waiting in the pool.
    pub idle: usize,
    /// Connections out: checked out, handed to a waiter, or being checked.
    pub in_use: usize,
    /// Callers waiting for a connection.
    pub waiters: usize,
    /// Connections being opened.
    pub creating: usize,
    /// Connections opened since the pool was built.
    pub created: u64,
    /// Connections closed, by [`CloseReason`] (indexed as [`CloseReason::ALL`]).
    pub closed: [u64; CloseReason::COUNT],
    /// Failed attempts to open a connection.
    pub create_failures: u64,
    /// Callers who had to wait (found no idle connection).
    pub waits: u64,
    /// Callers who gave up at the wait timeout.
    pub timeouts: u64,
    /// Connections reported by leak detection.
    pub leaks: u64,
    /// How long callers who had to wait (see `waits`) waited; callers who found an idle
    /// connection are not recorded.
    pub wait_time: Histogram,
    /// How long connections were held by callers.
    pub hold_time: Histogram,
}

impl Stats {
    /// Connections closed for `reason`.
    pub fn closed_for(&self, reason: CloseReason) -> u64 {
        self.closed[reason as usize]
    }

    /// Connections closed for any reason.
    pub fn closed_total(&self) -> u64 {
        self.closed.iter().sum()
    }
}
