//! The database layout, its migrations (`PRAGMA user_version`) and the settings every
//! connection gets.
//!
//! Layout (version 1):
//!
//! * `events`: one row per event. `position INTEGER PRIMARY KEY` is the rowid, so the
//!   global log is the table's own B-tree and `read_all` is a range scan of it. Positions
//!   are assigned by the writer as `max(position) + 1` inside its write transaction (no
//!   `AUTOINCREMENT`: it would burn numbers on rollback). `event_id` is the UUID's 16 bytes
//!   under a unique index (idempotency); `(stream_id, version)` is unique (stream reads).
//!   `metadata` is [`Metadata::to_bytes`](crate::Metadata::to_bytes) (empty for none);
//!   `recorded_at` is microseconds since the Unix epoch.
//! * `streams`: one row per stream that has metadata (set, or from a soft delete): its
//!   [`StreamMetadata`](crate::StreamMetadata) as columns (`truncate_before`, `deleted`,
//!   and `custom` as JSON text), so an append can clear `deleted` and a read can filter in
//!   SQL. A stream's version is not stored here: it is `max(version)` of its events, one
//!   seek in the `(stream_id, version)` index, exact inside any transaction. Keeping it in
//!   a row would cost every append one more B-tree page written per commit (measured:
//!   about a third of the pages a commit of small appends to different streams writes).
//! * `snapshots` (one per stream, the newest) and `checkpoints` (one per subscriber).
//!
//! `u64` values that SQLite cannot hold as a signed integer (`truncate_before`, snapshot
//! versions, checkpoints, all chosen by the caller) are stored bit-for-bit as `i64` and
//! read back with `as u64`; SQL that compares them guards the negative range.

use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::busy::{self, Interrupted};
use super::{Shared, Synchronous};
use crate::error::{BackendError, StoreError};

/// The layout this code reads and writes.
pub(super) const SCHEMA_VERSION: i64 = 1;

/// Version 0 → 1: the whole layout.
const V1: &str = "
CREATE TABLE events (
    position       INTEGER PRIMARY KEY,
    event_id       BLOB    NOT NULL,
    stream_id      TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    event_type     TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    payload        BLOB    NOT NULL,
    metadata       BLOB    NOT NULL,
    recorded_at    INTEGER NOT NULL
);
CREATE UNIQUE INDEX events_event_id ON events (event_id);
CREATE UNIQUE INDEX events_stream_version ON events (stream_id, version);
CREATE TABLE streams (
    stream_id       TEXT    PRIMARY KEY,
    truncate_before INTEGER NOT NULL DEFAULT 0,
    deleted         INTEGER NOT NULL DEFAULT 0,
    custom          TEXT
) WITHOUT ROWID;
CREATE TABLE snapshots (
    stream_id      TEXT    PRIMARY KEY,
    version        INTEGER NOT NULL,
    schema_version INTEGER NOT NULL,
    state          BLOB    NOT NULL
);
CREATE TABLE checkpoints (
    subscriber TEXT    PRIMARY KEY,
    position   INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Prepared statements a connection keeps (the writer uses about 50: 32 of them inserts of
/// 1 to 32 rows; a reader about 8).
const STATEMENT_CACHE: usize = 64;

fn open_error(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> StoreError {
    StoreError::Backend(BackendError::new("sqlite", "open", source))
}

fn interrupted(_: Interrupted) -> StoreError {
    StoreError::Closed
}

/// Opens the writer's connection: creates the file, switches it to WAL, applies the
/// durability mode and migrates the schema.
pub(super) fn open_writer(
    path: &std::path::Path,
    synchronous: Synchronous,
    busy_timeout: Duration,
    shared: &Shared,
) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open_error)?;
    conn.busy_timeout(busy_timeout).map_err(open_error)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    let mode: String = busy::retry(shared, || {
        conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
    })
    .map_err(interrupted)?
    .map_err(open_error)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(open_error(format!(
            "the database at {} cannot use WAL (journal mode is {mode:?}); \
             SqliteStore needs a file on a local file system, not \":memory:\"",
            path.display()
        )));
    }
    let synchronous = match synchronous {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {synchronous}; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -16384;"
    ))
    .map_err(open_error)?;
    migrate(&conn, shared)?;
    Ok(conn)
}

/// Opens one read-only connection of the pool.
pub(super) fn open_reader(
    path: &std::path::Path,
    busy_timeout: Duration,
) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open_error)?;
    conn.busy_timeout(busy_timeout).map_err(open_error)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.execute_batch("PRAGMA cache_size = -16384; PRAGMA mmap_size = 268435456;")
        .map_err(open_error)?;
    Ok(conn)
}

/// Brings the schema to [`SCHEMA_VERSION`] in one write transaction (so two processes
/// opening a new file at once do not both create it).
fn migrate(conn: &Connection, shared: &Shared) -> Result<(), StoreError> {
    busy::retry(shared, || conn.execute_batch("BEGIN IMMEDIATE"))
        .map_err(interrupted)?
        .map_err(open_error)?;
    let result = (|| {
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(open_error)?;
        match found {
            0 => conn
                .execute_batch(&format!("{V1} PRAGMA user_version = {SCHEMA_VERSION};"))
                .map_err(open_error),
            SCHEMA_VERSION => Ok(()),
            newer if newer > SCHEMA_VERSION => Err(open_error(format!(
                "the database has schema version {newer}, newer than this code's \
                 {SCHEMA_VERSION} (written by a newer flowbed-eventsourcing)"
            ))),
            other => Err(open_error(format!(
                "the database has an unknown schema version {other}"
            ))),
        }
    })();
    match result {
        Ok(()) => busy::retry(shared, || conn.execute_batch("COMMIT"))
            .map_err(interrupted)?
            .map_err(open_error),
        Err(error) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(error)
        }
    }
}
