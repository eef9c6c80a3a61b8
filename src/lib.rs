//! flowbed: concurrency patterns for real-time analytics pipelines.
//!
//! Each pattern is its own crate, usable alone; this facade re-exports them behind one
//! feature each, so `flowbed = { version = "0.1", features = ["lockfree"] }` gives
//! `flowbed::lockfree`.
//!
//! | module | crate | pattern |
//! |---|---|---|
//! | [`lockfree`] | `flowbed-lockfree` | lock-free queues and a backpressured channel |
//! | [`workerpool`] | `flowbed-workerpool` | worker pool: bounded queue, rejection policies, scaling, scoped jobs |
//! | [`ratelimit`] | `flowbed-ratelimit` | rate limiting: GCRA and sliding window, keyed with bounded memory, async waits, tower, Redis |
//! | [`circuitbreaker`] | `flowbed-circuitbreaker` | circuit breaker: resilience4j semantics, lock-free closed path, retry, tower |
//! | [`pool`] | `flowbed-pool` | connection pool: strict FIFO hand-off, min idle, lifetimes, validation, leak detection, PostgreSQL |
//! | [`actor`] | `flowbed-actor` | typed actors: bounded mailboxes, OTP supervision, links, monitors, registry, timers, routers |
//! | [`reactive`] | `flowbed-reactive` | reactive streams: request(n) demand, fused operators, overflow strategies, event-time windows with watermarks |
//! | [`eventsourcing`] | `flowbed-eventsourcing` | event sourcing: aggregates, repository with snapshots and upcasters, event store on memory/SQLite/PostgreSQL with gap-free catch-up subscriptions |
//!
//! The tutorials in `docs/tutorials/` are compiled and run as doctests of this crate.

#[cfg(feature = "lockfree")]
#[doc(inline)]
pub use flowbed_lockfree as lockfree;

#[cfg(feature = "workerpool")]
#[doc(inline)]
pub use flowbed_workerpool as workerpool;

#[cfg(feature = "ratelimit")]
#[doc(inline)]
pub use flowbed_ratelimit as ratelimit;

#[cfg(feature = "circuitbreaker")]
#[doc(inline)]
pub use flowbed_circuitbreaker as circuitbreaker;

#[cfg(feature = "pool")]
#[doc(inline)]
pub use flowbed_pool as pool;

#[cfg(feature = "actor")]
#[doc(inline)]
pub use flowbed_actor as actor;

#[cfg(feature = "reactive")]
#[doc(inline)]
pub use flowbed_reactive as reactive;

#[cfg(feature = "eventsourcing")]
#[doc(inline)]
pub use flowbed_eventsourcing as eventsourcing;

/// `docs/tutorials/01-lockfree.md`, compiled and run as doctests.
#[cfg(all(doctest, feature = "lockfree"))]
#[doc = include_str!("../docs/tutorials/01-lockfree.md")]
pub struct TutorialLockfree;

/// `docs/tutorials/02-workerpool.md`, compiled and run as doctests.
#[cfg(all(doctest, feature = "workerpool"))]
#[doc = include_str!("../docs/tutorials/02-workerpool.md")]
pub struct TutorialWorkerpool;

/// `docs/tutorials/03-ratelimit.md`, compiled and run as doctests.
#[cfg(all(doctest, feature = "ratelimit"))]
#[doc = include_str!("../docs/tutorials/03-ratelimit.md")]
pub struct TutorialRatelimit;

/// `docs/tutorials/04-circuitbreaker.md`, compiled and run as doctests.
#[cfg(all(doctest, feature = "circuitbreaker"))]
#[doc = include_str!("../docs/tutorials/04-circuitbreaker.md")]
pub struct TutorialCircuitbreaker;

/// `docs/tutorials/05-pool.md`, compiled and run as doctests.
#[cfg(all(doctest, feature = "pool"))]
#[doc = include_str!("../docs/tutorials/05-pool.md")]
pub struct TutorialPool;

/// `docs/tutorials/06-actor.md`, compiled and run as doctests.
#[cfg(all(doctest, feature = "actor"))]
#[doc = include_str!("../docs/tutorials/06-actor.md")]
pub struct TutorialActor;

/// `docs/tutorials/07-reactive.md`, compiled and run as doctests.
#[cfg(all(doctest, feature = "reactive"))]
#[doc = include_str!("../docs/tutorials/07-reactive.md")]
pub struct TutorialReactive;

/// `docs/tutorials/08-eventsourcing.md`, compiled and run as doctests.
#[cfg(all(doctest, feature = "eventsourcing"))]
#[doc = include_str!("../docs/tutorials/08-eventsourcing.md")]
pub struct TutorialEventsourcing;
