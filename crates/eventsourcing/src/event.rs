//! The event envelope: what an append carries ([`EventData`]) and what a read returns
//! ([`RecordedEvent`]).

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::EncodeError;

/// A global position in the store's log: `1` is the first event ever appended, and every
/// committed event has the next one, with no gaps and in commit order (on every backend).
///
/// `Position::START` (0) is "before the first event": `read_all(Position::START, ..)` reads
/// from the beginning, and a subscription's checkpoint is the position of the last event it
/// processed.
///
/// # Examples
///
/// ```
/// use flowbed_eventsourcing::Position;
///
/// assert_eq!(Position::START.next(), Position(1));
/// assert!(Position(7) > Position::START);
/// ```
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Position(pub u64);

impl Position {
    /// Before the first event.
    pub const START: Position = Position(0);

    /// The position after this one.
    pub fn next(self) -> Position {
        Position(self.0 + 1)
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An event's unique id. Appending an event whose id the store already holds is a no-op
/// success (idempotent append), for the life of the store.
///
/// New ids are UUID v7 (time-ordered, so index inserts stay at the right edge of a B-tree).
///
/// # Examples
///
/// ```
/// use flowbed_eventsourcing::EventId;
///
/// let a = EventId::new();
/// let b = EventId::new();
/// assert_ne!(a, b);
/// assert_eq!(EventId::from(a.as_uuid()), a);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EventId(Uuid);

impl EventId {
    /// A fresh, time-ordered id (UUID v7).
    #[allow(clippy::new_without_default)]
    pub fn new() -> EventId {
        EventId(Uuid::now_v7())
    }

    /// The id as a UUID.
    pub fn as_uuid(self) -> Uuid {
        self.0
    }
}

impl From<Uuid> for EventId {
    fn from(uuid: Uuid) -> EventId {
        EventId(uuid)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({})", self.0)
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// What travels with an event besides its payload: who caused it and why.
///
/// `correlation_id` ties together every event of one business flow (the same value on all
/// of them); `causation_id` is the id of the command or event that directly caused this
/// one. `extra` holds anything else (user id, tenant, trace context).
///
/// # Examples
///
/// ```
/// use flowbed_eventsourcing::{EventId, Metadata};
///
/// let cause = EventId::new();
/// let metadata = Metadata::default()
///     .correlation_id(cause.as_uuid())
///     .caused_by(cause)
///     .with("tenant", "acme");
/// assert_eq!(metadata.extra["tenant"], "acme");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// The business flow this event belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
    /// The command or event that caused this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    /// Free-form key/value pairs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, String>,
}

impl Metadata {
    /// Sets the correlation id.
    pub fn correlation_id(mut self, id: Uuid) -> Metadata {
        self.correlation_id = Some(id);
        self
    }

    /// Sets the causation id to `cause`'s id.
    pub fn caused_by(mut self, cause: EventId) -> Metadata {
        self.causation_id = Some(cause.as_uuid());
        self
    }

    /// Adds a free-form entry.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Metadata {
        self.extra.insert(key.into(), value.into());
        self
    }

    /// True when nothing is set (stored as nothing).
    pub fn is_empty(&self) -> bool {
        self.correlation_id.is_none() && self.causation_id.is_none() && self.extra.is_empty()
    }

    /// The metadata as JSON bytes (empty for empty metadata), as the durable stores keep it.
    pub fn to_bytes(&self) -> Vec<u8> {
        if self.is_empty() {
            Vec::new()
        } else {
            serde_json::to_vec(self).expect("metadata of strings and uuids always serializes")
        }
    }

    /// Reads metadata written by [`to_bytes`](Metadata::to_bytes).
    ///
    /// # Errors
    ///
    /// The bytes are not metadata JSON.
    pub fn from_bytes(bytes: &[u8]) -> Result<Metadata, serde_json::Error> {
        if bytes.is_empty() {
            Ok(Metadata::default())
        } else {
            serde_json::from_slice(bytes)
        }
    }
}

/// A domain event type that can be stored: serde for the payload, plus the name and schema
/// version stored beside it.
///
/// # Examples
///
/// ```
/// use flowbed_eventsourcing::DomainEvent;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// enum AccountEvent {
///     Opened { owner: String },
///     Deposited { amount: u64 },
/// }
///
/// impl DomainEvent for AccountEvent {
///     fn event_type(&self) -> &'static str {
///         match self {
///             AccountEvent::Opened { .. } => "AccountOpened",
///             AccountEvent::Deposited { .. } => "MoneyDeposited",
///         }
///     }
/// }
/// ```
pub trait DomainEvent: Serialize + serde::de::DeserializeOwned + Send + Sync + 'static {
    /// The name stored with the event (what projections and upcasters match on).
    fn event_type(&self) -> &'static str;

    /// The schema version new events are written with. Bump it when the payload shape
    /// changes and register an [`Upcaster`](crate::Upcaster) from the old version.
    const SCHEMA_VERSION: u32 = 1;
}

/// An event on its way into the store.
///
/// # Examples
///
/// ```
/// use flowbed_eventsourcing::EventData;
///
/// let raw = EventData::new("Deposited", br#"{"amount":5}"#.to_vec());
/// assert_eq!(raw.schema_version, 1);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventData {
    /// Unique id; re-appending it is idempotent.
    pub id: EventId,
    /// The event's type name.
    pub event_type: String,
    /// The payload's schema version.
    pub schema_version: u32,
    /// The payload, JSON when built from a [`DomainEvent`].
    pub payload: Vec<u8>,
    /// Correlation, causation and free-form metadata.
    pub metadata: Metadata,
}

impl EventData {
    /// An event with a fresh id, schema version 1 and no metadata.
    pub fn new(event_type: impl Into<String>, payload: Vec<u8>) -> EventData {
        EventData {
            id: EventId::new(),
            event_type: event_type.into(),
            schema_version: 1,
            payload,
            metadata: Metadata::default(),
        }
    }

    /// Serializes a domain event to JSON with a fresh id.
    ///
    /// # Errors
    ///
    /// [`EncodeError`] when serde cannot serialize the event (a map with non-string keys,
    /// a failing `Serialize` impl), naming the event type.
    pub fn from_event<E: DomainEvent>(event: &E) -> Result<EventData, EncodeError> {
        let event_type = event.event_type();
        let payload = serde_json::to_vec(event).map_err(|source| EncodeError {
            event_type: event_type.to_owned(),
            source,
        })?;
        Ok(EventData {
            id: EventId::new(),
            event_type: event_type.to_owned(),
            schema_version: E::SCHEMA_VERSION,
            payload,
            metadata: Metadata::default(),
        })
    }

    /// Sets the id (use a deterministic id to make a retried append idempotent).
    pub fn with_id(mut self, id: EventId) -> EventData {
        self.id = id;
        self
    }

    /// Sets the metadata.
    pub fn with_metadata(mut self, metadata: Metadata) -> EventData {
        self.metadata = metadata;
        self
    }

    /// Sets the schema version.
    pub fn with_schema_version(mut self, schema_version: u32) -> EventData {
        self.schema_version = schema_version;
        self
    }
}

/// An event as stored: the [`EventData`] plus where and when it was recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedEvent {
    /// Unique id.
    pub id: EventId,
    /// The stream it belongs to.
    pub stream_id: String,
    /// Its version in the stream: 1 for the first event of a stream.
    pub version: u64,
    /// Its global position: 1 for the first event of the store, gap-free, commit order.
    pub position: Position,
    /// The event's type name.
    pub event_type: String,
    /// The payload's schema version as written (before any upcasting).
    pub schema_version: u32,
    /// The payload bytes.
    pub payload: Vec<u8>,
    /// Correlation, causation and free-form metadata.
    pub metadata: Metadata,
    /// When the store accepted it (the appending process's clock), microseconds precision.
    pub recorded_at: SystemTime,
}

/// Microseconds since the Unix epoch, the resolution every backend stores.
pub(crate) fn to_unix_micros(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_micros()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_micros()).unwrap_or(i64::MAX),
    }
}

/// The inverse of [`to_unix_micros`].
pub(crate) fn from_unix_micros(micros: i64) -> SystemTime {
    if micros >= 0 {
        UNIX_EPOCH + Duration::from_micros(micros.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_micros(micros.unsigned_abs())
    }
}

/// Now, truncated to the microseconds every backend stores (so a recorded event reads back
/// equal from every backend).
pub(crate) fn now_micros() -> i64 {
    to_unix_micros(SystemTime::now())
}
