//! The [`EventStore`] trait every backend implements, and the values it exchanges.

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::error::{AppendError, StoreError};
use crate::event::{EventData, Position, RecordedEvent};
use crate::expected::ExpectedVersion;

/// What a successful append did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendResult {
    /// The stream's version after the append (the version of its last event).
    pub version: u64,
    /// The global position of the last appended event (`None` for an empty append).
    pub position: Option<Position>,
    /// True when every event id was already stored in this stream, at consecutive versions
    /// in batch order (a retried append): nothing was written and `version`/`position` are
    /// those of the stored batch's last event.
    pub deduplicated: bool,
}

/// Which way [`EventStore::read_stream`] walks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From `from` towards the newest event.
    Forward,
    /// From `from` towards the first event (`u64::MAX` starts at the newest).
    Backward,
}

/// A stream's settings, stored beside its events.
///
/// # Examples
///
/// ```
/// use flowbed_eventsourcing::StreamMetadata;
///
/// let metadata = StreamMetadata { truncate_before: 10, ..StreamMetadata::default() };
/// assert!(!metadata.is_visible(9));
/// assert!(metadata.is_visible(10));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamMetadata {
    /// Events with a lower version are hidden from [`EventStore::read_stream`] (they stay
    /// in the global log, [`EventStore::read_all`], and keep their ids for idempotency).
    /// 0 hides nothing.
    pub truncate_before: u64,
    /// Set by [`EventStore::delete_stream`] (a soft delete): reads of the stream return no
    /// events. The stream keeps its version, so the next append continues from it (and
    /// clears the flag, like EventStoreDB).
    pub deleted: bool,
    /// Anything else the application wants to keep per stream (JSON).
    pub custom: Option<serde_json::Value>,
}

impl StreamMetadata {
    /// Whether an event of this version is returned by `read_stream`.
    pub fn is_visible(&self, version: u64) -> bool {
        !self.deleted && version >= self.truncate_before
    }
}

/// A stored snapshot of an aggregate's state at a stream version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The stream it summarizes.
    pub stream_id: String,
    /// The version of the last event folded into it.
    pub version: u64,
    /// Which encoding of the state this is (bump it when the state's shape changes; a
    /// snapshot with another version is ignored and the state rebuilt from events).
    pub schema_version: u32,
    /// The encoded state (JSON).
    pub state: Vec<u8>,
}

/// An event store: streams of events with optimistic concurrency, one global log with
/// gap-free positions in commit order, stream metadata, snapshots and subscription
/// checkpoints.
///
/// Handles are cheap to clone (they share one store). Implemented by
/// [`MemoryStore`](crate::memory::MemoryStore), [`SqliteStore`](crate::sqlite::SqliteStore)
/// and [`PostgresStore`](crate::postgres::PostgresStore); all three pass the same
/// conformance suite.
///
/// # Examples
///
/// ```
/// use flowbed_eventsourcing::{Direction, EventData, EventStore, ExpectedVersion, Position};
/// use flowbed_eventsourcing::memory::MemoryStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = MemoryStore::new();
/// let first = EventData::new("Opened", b"{}".to_vec());
/// let result = store.append("account-1", ExpectedVersion::NoStream, vec![first.clone()]).await?;
/// assert_eq!(result.version, 1);
///
/// // Re-appending the same event id is a no-op success.
/// let again = store.append("account-1", ExpectedVersion::NoStream, vec![first]).await?;
/// assert!(again.deduplicated);
///
/// let events = store.read_stream("account-1", 1, Direction::Forward, 100).await?;
/// assert_eq!(events.len(), 1);
/// let all = store.read_all(Position::START, 100).await?;
/// assert_eq!(all[0].position, Position(1));
/// # Ok(())
/// # }
/// ```
pub trait EventStore: Clone + Send + Sync + 'static {
    /// Appends `events` to `stream` atomically (all or none), if the stream's version
    /// satisfies `expected`. Event ids all already stored in this stream at consecutive
    /// versions in batch order (a retry) make the call a no-op success
    /// ([`AppendResult::deduplicated`]), whatever `expected` says.
    ///
    /// # Errors
    ///
    /// [`AppendError::WrongExpectedVersion`], [`AppendError::IdempotencyConflict`],
    /// [`AppendError::DuplicateEventInBatch`], [`AppendError::EmptyStreamId`],
    /// [`AppendError::Backend`]. Nothing is stored after an error.
    fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    ) -> impl Future<Output = Result<AppendResult, AppendError>> + Send;

    /// Up to `max` visible events of `stream`, starting at version `from` (inclusive) and
    /// walking in `direction`. A missing stream reads as empty.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`], [`StoreError::Corrupt`].
    fn read_stream(
        &self,
        stream: &str,
        from: u64,
        direction: Direction,
        max: usize,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send;

    /// Up to `max` events of the global log with positions after `after`, in position
    /// order. Positions are gap-free: the events returned are exactly `after+1, after+2,
    /// ...` up to the newest committed one.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`], [`StoreError::Corrupt`].
    fn read_all(
        &self,
        after: Position,
        max: usize,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send;

    /// The stream's version (0 when it has no events).
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`].
    fn stream_version(&self, stream: &str) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The position of the newest committed event (`Position::START` when empty).
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`].
    fn head(&self) -> impl Future<Output = Result<Position, StoreError>> + Send;

    /// A receiver that changes whenever events are committed (its value is a head position
    /// at least as new as the last commit it announces). Subscriptions wait on it.
    fn watch_head(&self) -> tokio::sync::watch::Receiver<Position>;

    /// The stream's metadata (the default for a stream that has none).
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`], [`StoreError::Corrupt`].
    fn stream_metadata(
        &self,
        stream: &str,
    ) -> impl Future<Output = Result<StreamMetadata, StoreError>> + Send;

    /// Replaces the stream's metadata.
    ///
    /// # Errors
    ///
    /// [`AppendError::EmptyStreamId`], [`AppendError::Backend`].
    fn set_stream_metadata(
        &self,
        stream: &str,
        metadata: StreamMetadata,
    ) -> impl Future<Output = Result<(), AppendError>> + Send;

    /// Soft-deletes the stream if its version satisfies `expected`: its events disappear
    /// from `read_stream` (they stay in `read_all` and keep their ids).
    ///
    /// # Errors
    ///
    /// [`AppendError::WrongExpectedVersion`], [`AppendError::Backend`].
    fn delete_stream(
        &self,
        stream: &str,
        expected: ExpectedVersion,
    ) -> impl Future<Output = Result<(), AppendError>> + Send;

    /// Stores a snapshot, replacing an older one of the same stream (a snapshot older than
    /// the stored one is ignored).
    ///
    /// # Errors
    ///
    /// [`StoreError::NulCharacter`] when the stream id contains a NUL character (no stream
    /// can have such an id), [`StoreError::Backend`].
    fn save_snapshot(
        &self,
        snapshot: Snapshot,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The stream's newest snapshot.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`].
    fn load_snapshot(
        &self,
        stream: &str,
    ) -> impl Future<Output = Result<Option<Snapshot>, StoreError>> + Send;

    /// Stores a subscriber's checkpoint (the position of the last event it processed).
    ///
    /// # Errors
    ///
    /// [`StoreError::NulCharacter`] when the subscriber's name contains a NUL character,
    /// [`StoreError::Backend`].
    fn save_checkpoint(
        &self,
        subscriber: &str,
        position: Position,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A subscriber's stored checkpoint.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`].
    fn load_checkpoint(
        &self,
        subscriber: &str,
    ) -> impl Future<Output = Result<Option<Position>, StoreError>> + Send;
}
