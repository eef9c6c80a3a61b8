//! An async connection pool with HikariCP's discipline and a short fast path.
//!
//! * [`Pool::get`] waits in a strict FIFO queue — a returned connection goes straight to
//!   the caller who has waited longest — and gives up at the wait timeout (30 s by default)
//!   with [`PoolError::Timeout`] carrying the last connect error. `try_get`, `get_timeout`
//!   and `get_blocking` (for synchronous code) are variants.
//! * A `get` future dropped at any point leaks nothing; [`Pooled`] returns its connection
//!   when dropped, or [`detach`](Pooled::detach)es it.
//! * Sizing: `max_size`, `min_idle` (opened at start, replenished in the background, never
//!   a creation storm: at most one creation per waiter within `max_size`), `max_lifetime`
//!   with jitter, `idle_timeout` down to `min_idle`, validation skipped for connections
//!   used in the last 500 ms, LIFO or FIFO choice of idle connection, [`Pool::resize`],
//!   [`Pool::retain`], [`Pool::close`].
//! * A [`Manager`] opens, checks and recycles connections (native `async fn`, no boxing);
//!   with the `postgres` feature, [`postgres::PgManager`] does it for tokio-postgres.
//! * Leak detection reports connections held too long with the line that took them;
//!   [`Pool::stats`] has sizes, counts by close reason and wait/hold-time histograms.
//! * Time comes from a [`Clock`]: [`ManualClock`] drives tests, [`TokioClock`] follows
//!   `tokio::time::pause()`.
//!
//! # Examples
//!
//! ```
//! use std::convert::Infallible;
//! use std::time::Duration;
//! use flowbed_pool::{Manager, Pool};
//!
//! struct Sessions;
//!
//! impl Manager for Sessions {
//!     type Connection = String;
//!     type Error = Infallible;
//!
//!     async fn create(&self) -> Result<String, Infallible> {
//!         Ok("session".to_owned()) // a real manager connects here
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let pool = Pool::builder(Sessions)
//!     .max_size(8)
//!     .wait_timeout(Duration::from_secs(5))
//!     .build()
//!     .unwrap();
//! let conn = pool.get().await.unwrap();
//! assert_eq!(conn.as_str(), "session");
//! # }
//! ```
#![forbid(unsafe_code)]

mod background;
mod builder;
mod conn;
mod error;
mod leak;
mod manager;
mod pool;
mod pooled;
#[cfg(feature = "postgres")]
pub mod postgres;
mod slots;
mod stats;
mod sync;
mod wait;

pub use builder::{Builder, IdleOrder};
pub use conn::ConnectionInfo;
pub use error::{BuildError, CreateError, PoolError, ResizeError, display_with_sources};
pub use flowbed_lockfree::histogram::Histogram;
pub use flowbed_ratelimit::{Clock, ManualClock, MonotonicClock, TokioClock};
pub use leak::LeakReport;
pub use manager::Manager;
pub use pool::Pool;
pub use pooled::Pooled;
pub use stats::{CloseReason, Stats};

/// The hand-off core, exposed for the loom model only.
#[cfg(flowbed_loom)]
#[doc(hidden)]
pub mod loom_api {
    pub use crate::conn::Conn;
    pub use crate::slots::{Checkout, Put, Slots, WaitFailed, WaiterKey};
    pub use crate::stats::CloseReason;
    pub use crate::wait::{Wait, finish_put};

    /// A connection with id `id` (a model's stand-in for one the manager made).
    pub fn conn<C>(conn: C, id: u64) -> Conn<C> {
        Conn {
            conn,
            meta: crate::conn::Meta::new(id, 0, None),
        }
    }

    /// The id of a connection.
    pub fn id<C>(conn: &Conn<C>) -> u64 {
        conn.meta.id
    }
}

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
