//! Event sourcing for flowbed: the events are the source of truth, state is their fold.
//!
//! * [`Aggregate`] decides (`handle`) and folds (`apply`); [`Repository`] loads one from a
//!   snapshot plus the tail of its stream, runs a command, and appends the new events with
//!   optimistic concurrency ([`ExpectedVersion`]), retrying on conflict by reading only the
//!   events it missed.
//! * [`EventStore`] is the storage contract: append with expected version and idempotency
//!   by event id (for the life of the store), streams read forward or backward, one global
//!   log with gap-free positions in commit order, stream metadata (soft delete, truncate),
//!   snapshots and subscriber checkpoints. Backends: [`memory::MemoryStore`] (feature
//!   `memory`), [`sqlite::SqliteStore`] (feature `sqlite`, the embedded durable default:
//!   WAL, group commit) and [`postgres::PostgresStore`] (feature `postgres`, through
//!   flowbed-pool).
//! * [`Subscription`] catches up from a position and then follows new commits, never
//!   skipping or repeating an event, and never buffering more than one batch for a slow
//!   consumer.
//! * [`Upcasters`] migrate old event schema versions on every read path.
//!
//! # The gap problem, and why no backend here has it
//!
//! A PostgreSQL store that numbers events from a sequence hands out numbers at insert time,
//! but they become visible at commit time: transaction A takes 10, B takes 11, B commits
//! first, a subscriber reads 11 and moves its checkpoint past 10; when A commits, event 10
//! is never delivered. Stores work around it by waiting a while for gaps to fill and then
//! skipping them (losing a slow transaction's events) or by reading only "old enough"
//! events (adding latency and still losing under long transactions). Here:
//!
//! * memory: appends are checked and written under one lock, positions are dense.
//! * SQLite: one writer (SQLite allows no other), positions are assigned inside it.
//! * PostgreSQL: positions come from a counter row that each appending transaction
//!   updates; its row lock is held until commit, so the next transaction's positions are
//!   allocated only after the previous one committed (or rolled back, releasing its
//!   numbers). Positions are therefore dense and in commit order, a reader can never see
//!   position `n + 1` without `n`, and nothing is skipped by time. The cost, documented in
//!   [`postgres`]: appends serialize on that lock from allocation to commit, which the
//!   store offsets by group-committing concurrent appends into one transaction.
//!
//! # Examples
//!
//! ```
//! use flowbed_eventsourcing::{EventData, EventStore, ExpectedVersion, Position, Subscription};
//! use flowbed_eventsourcing::memory::MemoryStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = MemoryStore::new();
//! store.append("cart-1", ExpectedVersion::NoStream, vec![EventData::new("ItemAdded", br#"{"sku":"a"}"#.to_vec())]).await?;
//! let conflict = store.append("cart-1", ExpectedVersion::NoStream, vec![EventData::new("ItemAdded", vec![])]).await;
//! assert!(conflict.is_err()); // someone appended first
//!
//! let mut subscription = Subscription::all(store.clone(), Position::START);
//! let first = subscription.next().await?;
//! assert_eq!((first.stream_id.as_str(), first.version, first.position), ("cart-1", 1, Position(1)));
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod aggregate;
mod error;
mod event;
mod expected;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod group_commit;
mod repository;
mod store;
mod subscription;
mod sync;
mod upcast;

#[cfg(feature = "memory")]
pub mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;

pub use aggregate::Aggregate;
pub use error::{AppendError, BackendError, CommandError, DecodeError, EncodeError, StoreError};
pub use event::{DomainEvent, EventData, EventId, Metadata, Position, RecordedEvent};
pub use expected::ExpectedVersion;
pub use repository::{Executed, Loaded, Repository};
pub use store::{AppendResult, Direction, EventStore, Snapshot, StreamMetadata};
pub use subscription::{Subscription, SubscriptionStream};
pub use upcast::{FnUpcaster, RawEvent, Upcaster, Upcasters};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
