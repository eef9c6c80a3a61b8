//! Rows to values and values to SQL parameters, with every conversion checked: a stored
//! value out of range is [`StoreError::Corrupt`], never a panic or a silent wrap.

use tokio_postgres::Row;
use tokio_postgres::types::FromSql;

use crate::error::StoreError;
use crate::event::{EventId, Metadata, Position, RecordedEvent, from_unix_micros};
use crate::store::{Snapshot, StreamMetadata};

/// A `u64` as a PostgreSQL `bigint`, saturating (versions and positions beyond `i64::MAX`
/// cannot exist, so a saturated bound selects the same rows).
pub(super) fn to_sql_u64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A caller-chosen `u64` (a checkpoint, a snapshot version, `truncate_before`) stored bit
/// for bit in a `bigint`, so that every value reads back as written: values above
/// `i64::MAX` are stored as negative numbers. SQL that compares such columns flips the
/// sign bit first (`# (-9223372036854775808)`), which orders them as unsigned.
pub(super) fn u64_bits(value: u64) -> i64 {
    i64::from_ne_bytes(value.to_ne_bytes())
}

/// The inverse of [`u64_bits`].
pub(super) fn from_u64_bits(value: i64) -> u64 {
    u64::from_ne_bytes(value.to_ne_bytes())
}

/// A `usize` limit as a `bigint` `LIMIT`.
pub(super) fn to_sql_limit(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn corrupt(location: impl Into<String>, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        location: location.into(),
        reason: reason.into(),
    }
}

fn column<'a, T: FromSql<'a>>(row: &'a Row, index: usize, location: &str) -> Result<T, StoreError> {
    row.try_get(index).map_err(|error| {
        corrupt(
            location,
            format!("column {}: {error}", row.columns()[index].name()),
        )
    })
}

fn non_negative(value: i64, what: &str, location: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt(location, format!("negative {what} {value}")))
}

/// An `events` row in the column order of `schema::EVENT_COLUMNS`.
pub(super) fn event(row: &Row) -> Result<RecordedEvent, StoreError> {
    let position: i64 = column(row, 0, "an event row")?;
    let location = format!("global position {position}");
    let location = location.as_str();
    let position = non_negative(position, "position", location)?;
    let version = non_negative(column(row, 2, location)?, "version", location)?;
    let schema_version: i64 = column(row, 5, location)?;
    let schema_version = u32::try_from(schema_version).map_err(|_| {
        corrupt(
            location,
            format!("schema version {schema_version} out of range"),
        )
    })?;
    let metadata: &[u8] = column(row, 7, location)?;
    let metadata = Metadata::from_bytes(metadata)
        .map_err(|error| corrupt(location, format!("metadata is not JSON: {error}")))?;
    Ok(RecordedEvent {
        id: EventId::from(column::<uuid::Uuid>(row, 3, location)?),
        stream_id: column(row, 1, location)?,
        version,
        position: Position(position),
        event_type: column(row, 4, location)?,
        schema_version,
        payload: column(row, 6, location)?,
        metadata,
        recorded_at: from_unix_micros(column(row, 8, location)?),
    })
}

/// Every row of a read, converted.
pub(super) fn events(rows: &[Row]) -> Result<Vec<RecordedEvent>, StoreError> {
    rows.iter().map(event).collect()
}

/// A `streams` row (`truncate_before, deleted, custom`).
pub(super) fn stream_metadata(row: &Row, stream: &str) -> Result<StreamMetadata, StoreError> {
    let location = format!("stream {stream:?}");
    let location = location.as_str();
    Ok(StreamMetadata {
        truncate_before: from_u64_bits(column(row, 0, location)?),
        deleted: column(row, 1, location)?,
        custom: column::<Option<&str>>(row, 2, location)?
            .map(|text| {
                serde_json::from_str(text).map_err(|error| {
                    corrupt(location, format!("custom metadata is not JSON: {error}"))
                })
            })
            .transpose()?,
    })
}

/// A `snapshots` row (`stream_id, version, schema_version, state`).
pub(super) fn snapshot(row: &Row) -> Result<Snapshot, StoreError> {
    let stream_id: String = column(row, 0, "a snapshot row")?;
    let location = format!("snapshot of stream {stream_id:?}");
    let location = location.as_str();
    let schema_version: i64 = column(row, 2, location)?;
    Ok(Snapshot {
        version: from_u64_bits(column(row, 1, location)?),
        schema_version: u32::try_from(schema_version).map_err(|_| {
            corrupt(
                location,
                format!("schema version {schema_version} out of range"),
            )
        })?,
        state: column(row, 3, location)?,
        stream_id,
    })
}

/// A checkpoint row's position (stored with [`u64_bits`]).
pub(super) fn checkpoint(row: &Row, location: &str) -> Result<u64, StoreError> {
    column(row, 0, location).map(from_u64_bits)
}

/// A single `bigint` column read as a version or position.
pub(super) fn count(row: &Row, location: &str) -> Result<u64, StoreError> {
    non_negative(column(row, 0, location)?, "value", location)
}
