//! Typed errors: each says what happened and carries what you need to react.

use std::error::Error as StdError;
use std::fmt;

use crate::event::EventId;
use crate::expected::ExpectedVersion;

/// The storage under a store failed: the database is unreachable, a disk is full, a query
/// was rejected. Which backend, what it was doing, and the driver's error as the source.
///
/// After a `BackendError` from an append, nothing of that append is stored (every backend
/// writes a batch in one transaction), unless the failure hid a commit that did happen
/// (a connection lost during `COMMIT`); re-appending the same event ids is safe either way.
#[derive(Debug)]
pub struct BackendError {
    backend: &'static str,
    operation: &'static str,
    source: Box<dyn StdError + Send + Sync>,
}

impl BackendError {
    /// Wraps a driver error.
    pub fn new(
        backend: &'static str,
        operation: &'static str,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> BackendError {
        BackendError {
            backend,
            operation,
            source: source.into(),
        }
    }

    /// `"memory"`, `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// What the store was doing (`"append"`, `"read_all"`, `"open"`, ...).
    pub fn operation(&self) -> &'static str {
        self.operation
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} backend failed during {}: {}",
            self.backend, self.operation, self.source
        )
    }
}

impl StdError for BackendError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.source)
    }
}

/// Why an append (or a stream delete / metadata write) was refused. Nothing of a refused
/// append is stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError {
    /// Optimistic concurrency: someone else appended first.
    #[error(
        "wrong expected version for stream {stream:?}: expected {expected}, actual version {actual}"
    )]
    WrongExpectedVersion {
        /// The stream.
        stream: String,
        /// What the writer expected.
        expected: ExpectedVersion,
        /// The stream's actual version (0 = no events).
        actual: u64,
    },
    /// Some of the batch's event ids are already stored, but not all of them at
    /// consecutive versions of this stream in batch order (an id reused for a different
    /// event, or a batch that overlaps an earlier one). A re-append of stored events is not
    /// an error: it succeeds without writing.
    #[error(
        "event {event_id} of an append to stream {stream:?} is already stored elsewhere or as part of a different batch"
    )]
    IdempotencyConflict {
        /// The stream appended to.
        stream: String,
        /// The first id that does not match.
        event_id: EventId,
    },
    /// The same event id twice in one batch.
    #[error("event id {event_id} appears twice in one append")]
    DuplicateEventInBatch {
        /// The repeated id.
        event_id: EventId,
    },
    /// The stream id is empty.
    #[error("stream id is empty")]
    EmptyStreamId,
    /// A stream id or event type contains a NUL character, which PostgreSQL text cannot
    /// hold (refused on every backend, so data stays portable between them).
    #[error("{field} {value:?} contains a NUL character")]
    NulCharacter {
        /// `"stream id"` or `"event type"`.
        field: &'static str,
        /// The offending value.
        value: String,
    },
    /// The store is closed (dropped, or its writer stopped).
    #[error("the event store is closed")]
    Closed,
    /// The storage failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// Why a read, a metadata/snapshot/checkpoint operation or a subscription failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The storage failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The store is closed.
    #[error("the event store is closed")]
    Closed,
    /// A snapshot's stream id or a subscriber's name contains a NUL character, which
    /// PostgreSQL text cannot hold (refused on every backend, so data stays portable
    /// between them; nothing is written).
    #[error("{field} {value:?} contains a NUL character")]
    NulCharacter {
        /// `"snapshot stream id"` or `"subscriber"`.
        field: &'static str,
        /// The offending value.
        value: String,
    },
    /// A stored row could not be read back (metadata that is not JSON, a corrupt column).
    #[error("corrupt stored data at {location}: {reason}")]
    Corrupt {
        /// Where (stream and version, or global position).
        location: String,
        /// What is wrong.
        reason: String,
    },
}

/// A domain event could not be serialized.
#[derive(Debug, thiserror::Error)]
#[error("cannot serialize event {event_type}: {source}")]
pub struct EncodeError {
    /// The event type.
    pub event_type: String,
    /// serde's error.
    #[source]
    pub source: serde_json::Error,
}

/// A stored event could not be turned back into a domain event (after upcasting).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The payload does not deserialize into the current event type.
    #[error(
        "cannot deserialize event {event_type} (schema version {schema_version}) at position {position}: {source}"
    )]
    Payload {
        /// The stored type name.
        event_type: String,
        /// Its schema version after upcasting.
        schema_version: u32,
        /// Its global position.
        position: u64,
        /// serde's error.
        #[source]
        source: serde_json::Error,
    },
    /// An upcaster refused the event.
    #[error(
        "upcaster {upcaster} failed on event {event_type} (schema version {schema_version}): {reason}"
    )]
    Upcast {
        /// The upcaster's name.
        upcaster: String,
        /// The event type.
        event_type: String,
        /// The schema version it was given.
        schema_version: u32,
        /// Why.
        reason: String,
    },
    /// The stored schema version is newer than the code knows (written by a newer release).
    #[error(
        "event {event_type} has schema version {schema_version}, newer than this code's {known}"
    )]
    FromTheFuture {
        /// The event type.
        event_type: String,
        /// The stored version.
        schema_version: u32,
        /// The newest version this code writes.
        known: u32,
    },
}

/// Why a repository command failed. `E` is the aggregate's domain error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError<E: StdError + 'static> {
    /// The aggregate rejected the command; nothing was appended.
    #[error("command rejected: {0}")]
    Rejected(#[source] E),
    /// The append was refused (a concurrent writer won, when not retrying or out of
    /// retries; or an idempotency conflict).
    #[error(transparent)]
    Append(#[from] AppendError),
    /// Loading the aggregate failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored event or snapshot could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A new event could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

impl<E: StdError + 'static> CommandError<E> {
    /// True when the command lost an optimistic-concurrency race (safe to retry).
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            CommandError::Append(AppendError::WrongExpectedVersion { .. })
        )
    }
}
