//! Rows ↔ values: the event columns, their decoding into [`RecordedEvent`] (a malformed
//! column is [`StoreError::Corrupt`], never a panic), and the integer conversions between
//! Rust's `u64` and SQLite's `i64`.

use rusqlite::Row;
use rusqlite::types::ValueRef;
use uuid::Uuid;

use crate::error::StoreError;
use crate::event::{EventId, Metadata, Position, RecordedEvent, from_unix_micros};
use crate::store::{Snapshot, StreamMetadata};

/// The columns [`recorded_event`] decodes, in its order, of the `events` table aliased `e`
/// (a macro so that queries can be `concat!`ed at compile time).
macro_rules! event_columns {
    () => {
        "e.position, e.event_id, e.stream_id, e.version, e.event_type, e.schema_version, \
         e.payload, e.metadata, e.recorded_at"
    };
}
pub(super) use event_columns;

/// Why a read failed: the driver (maybe busy: then it is retried), or a row that does not
/// decode.
#[derive(Debug)]
pub(super) enum ReadFailure {
    /// The driver failed.
    Sqlite(rusqlite::Error),
    /// A stored row is malformed.
    Corrupt {
        /// Where.
        location: String,
        /// What.
        reason: String,
    },
}

impl From<rusqlite::Error> for ReadFailure {
    fn from(error: rusqlite::Error) -> ReadFailure {
        ReadFailure::Sqlite(error)
    }
}

impl ReadFailure {
    /// The failure as the trait's error, naming the operation.
    pub(super) fn into_store_error(self, operation: &'static str) -> StoreError {
        match self {
            ReadFailure::Sqlite(error) => {
                StoreError::Backend(crate::error::BackendError::new("sqlite", operation, error))
            }
            ReadFailure::Corrupt { location, reason } => StoreError::Corrupt { location, reason },
        }
    }
}

/// A caller's `u64` bound as an SQL bound: versions and positions never exceed `i64::MAX`,
/// so clamping changes no result.
pub(super) fn clamp(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A caller-chosen `u64` stored bit for bit (read back with [`from_stored`]).
pub(super) fn to_stored(value: u64) -> i64 {
    value as i64
}

/// The inverse of [`to_stored`].
pub(super) fn from_stored(value: i64) -> u64 {
    value as u64
}

fn corrupt(position: i64, reason: impl Into<String>) -> ReadFailure {
    ReadFailure::Corrupt {
        location: format!("global position {position}"),
        reason: reason.into(),
    }
}

fn text(row: &Row<'_>, index: usize, position: i64, column: &str) -> Result<String, ReadFailure> {
    match row.get_ref(index)? {
        ValueRef::Text(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => Ok(text.to_owned()),
            Err(_) => Err(corrupt(position, format!("{column} is not UTF-8"))),
        },
        other => Err(corrupt(
            position,
            format!("{column} is {:?}, not text", other.data_type()),
        )),
    }
}

fn blob<'row>(
    row: &'row Row<'_>,
    index: usize,
    position: i64,
    column: &str,
) -> Result<&'row [u8], ReadFailure> {
    match row.get_ref(index)? {
        ValueRef::Blob(bytes) => Ok(bytes),
        // SQLite hands out a zero-length blob as an empty text or blob depending on how it
        // was written; both mean "no bytes".
        ValueRef::Text(bytes) if bytes.is_empty() => Ok(bytes),
        other => Err(corrupt(
            position,
            format!("{column} is {:?}, not a blob", other.data_type()),
        )),
    }
}

fn integer(row: &Row<'_>, index: usize, position: i64, column: &str) -> Result<i64, ReadFailure> {
    match row.get_ref(index)? {
        ValueRef::Integer(value) => Ok(value),
        other => Err(corrupt(
            position,
            format!("{column} is {:?}, not an integer", other.data_type()),
        )),
    }
}

/// Decodes one row selected with [`event_columns!`].
pub(super) fn recorded_event(row: &Row<'_>) -> Result<RecordedEvent, ReadFailure> {
    let position = integer(row, 0, 0, "position")?;
    let id_bytes = blob(row, 1, position, "event_id")?;
    let id = Uuid::from_slice(id_bytes)
        .map_err(|_| corrupt(position, format!("event_id has {} bytes", id_bytes.len())))?;
    let stream_id = text(row, 2, position, "stream_id")?;
    let version = integer(row, 3, position, "version")?;
    let event_type = text(row, 4, position, "event_type")?;
    let schema_version = integer(row, 5, position, "schema_version")?;
    let schema_version = u32::try_from(schema_version).map_err(|_| {
        corrupt(
            position,
            format!("schema_version {schema_version} is out of range"),
        )
    })?;
    let payload = blob(row, 6, position, "payload")?.to_vec();
    let metadata = Metadata::from_bytes(blob(row, 7, position, "metadata")?)
        .map_err(|error| corrupt(position, format!("metadata is not metadata JSON: {error}")))?;
    let recorded_at = integer(row, 8, position, "recorded_at")?;
    let (Ok(position_u64), Ok(version)) = (u64::try_from(position), u64::try_from(version)) else {
        return Err(corrupt(position, "negative position or version"));
    };
    Ok(RecordedEvent {
        id: EventId::from(id),
        stream_id,
        version,
        position: Position(position_u64),
        event_type,
        schema_version,
        payload,
        metadata,
        recorded_at: from_unix_micros(recorded_at),
    })
}

/// Decodes `truncate_before, deleted, custom` of a `streams` row.
pub(super) fn stream_metadata(
    stream: &str,
    truncate_before: i64,
    deleted: i64,
    custom: Option<String>,
) -> Result<StreamMetadata, ReadFailure> {
    let custom = match custom {
        None => None,
        Some(json) => Some(
            serde_json::from_str(&json).map_err(|error| ReadFailure::Corrupt {
                location: format!("stream {stream:?} metadata"),
                reason: format!("custom metadata is not JSON: {error}"),
            })?,
        ),
    };
    Ok(StreamMetadata {
        truncate_before: from_stored(truncate_before),
        deleted: deleted != 0,
        custom,
    })
}

/// Builds a snapshot from a `snapshots` row.
pub(super) fn snapshot(
    stream: &str,
    version: i64,
    schema_version: i64,
    state: Vec<u8>,
) -> Result<Snapshot, ReadFailure> {
    let schema_version = u32::try_from(schema_version).map_err(|_| ReadFailure::Corrupt {
        location: format!("snapshot of stream {stream:?}"),
        reason: format!("schema_version {schema_version} is out of range"),
    })?;
    Ok(Snapshot {
        stream_id: stream.to_owned(),
        version: from_stored(version),
        schema_version,
        state,
    })
}
