//! The read side: a fixed pool of read-only connections. A read waits (asynchronously) for
//! a free connection, then runs on tokio's blocking pool, so SQLite's synchronous calls
//! never stall the async workers. In WAL mode readers never wait for the writer: each
//! statement reads the newest committed snapshot.
//!
//! Every read is one SQL statement (one consistent snapshot), on statements the connection
//! keeps prepared (`prepare_cached`).

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::Shared;
use super::busy::{self, is_busy};
use super::rows::{self, ReadFailure, clamp, event_columns, from_stored, recorded_event};
use crate::error::{BackendError, StoreError};
use crate::event::{Position, RecordedEvent};
use crate::store::{Direction, Snapshot, StreamMetadata};
use crate::sync::{Mutex, lock};

/// How many rows a read reserves room for up front (a bigger `max` grows as rows come).
const PREALLOCATE: usize = 1024;

/// The pool of read-only connections.
#[derive(Debug)]
pub(super) struct ReadPool {
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
    shared: Arc<Shared>,
}

/// A connection taken from the pool; goes back (with its permit) when dropped, also when
/// the read panicked.
struct Lease {
    pool: Arc<ReadPool>,
    conn: Option<Connection>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && !self.pool.permits.is_closed()
        {
            lock(&self.pool.idle).push(conn);
        }
    }
}

impl ReadPool {
    /// A pool of these connections.
    pub(super) fn new(connections: Vec<Connection>, shared: Arc<Shared>) -> ReadPool {
        ReadPool {
            permits: Arc::new(Semaphore::new(connections.len())),
            idle: Mutex::new(connections),
            shared,
        }
    }

    /// Closes the pool: reads waiting for a connection and later reads get
    /// [`StoreError::Closed`]; idle connections are closed now, busy ones when their read
    /// ends.
    pub(super) fn close(&self) {
        self.permits.close();
        let idle = std::mem::take(&mut *lock(&self.idle));
        drop(idle);
    }

    /// Runs `read` on a pooled connection on the blocking pool, waiting out busy errors.
    async fn run<T, F>(self: &Arc<Self>, operation: &'static str, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> Result<T, ReadFailure> + Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        let Some(conn) = lock(&self.idle).pop() else {
            return Err(StoreError::Closed);
        };
        let lease = Lease {
            pool: Arc::clone(self),
            conn: Some(conn),
            _permit: permit,
        };
        let task = tokio::task::spawn_blocking(move || {
            let mut read = read;
            let lease = lease;
            let conn = lease.conn.as_ref().expect("a lease holds its connection");
            let shared = &lease.pool.shared;
            busy::retry_if(
                shared,
                |failure: &ReadFailure| matches!(failure, ReadFailure::Sqlite(error) if is_busy(error)),
                || read(conn),
            )
        });
        match task.await {
            Ok(Ok(result)) => result.map_err(|failure| failure.into_store_error(operation)),
            Ok(Err(busy::Interrupted)) => Err(StoreError::Closed),
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(error) => Err(StoreError::Backend(BackendError::new(
                "sqlite", operation, error,
            ))),
        }
    }

    /// See [`EventStore::read_stream`](crate::EventStore::read_stream).
    pub(super) async fn read_stream(
        self: &Arc<Self>,
        stream: &str,
        from: u64,
        direction: Direction,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let stream = stream.to_owned();
        let from = clamp(from);
        let limit = clamp(max as u64);
        let sql = match direction {
            Direction::Forward => READ_STREAM_FORWARD,
            Direction::Backward => READ_STREAM_BACKWARD,
        };
        self.run("read_stream", move |conn| {
            let mut statement = conn.prepare_cached(sql)?;
            events(statement.query(params![stream, from, limit])?, max)
        })
        .await
    }

    /// See [`EventStore::read_all`](crate::EventStore::read_all).
    pub(super) async fn read_all(
        self: &Arc<Self>,
        after: Position,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let after = clamp(after.0);
        let limit = clamp(max as u64);
        self.run("read_all", move |conn| {
            let mut statement = conn.prepare_cached(READ_ALL)?;
            events(statement.query(params![after, limit])?, max)
        })
        .await
    }

    /// See [`EventStore::stream_version`](crate::EventStore::stream_version).
    pub(super) async fn stream_version(self: &Arc<Self>, stream: &str) -> Result<u64, StoreError> {
        let stream = stream.to_owned();
        self.run("stream_version", move |conn| {
            let version: i64 = conn
                .prepare_cached(
                    "SELECT COALESCE(MAX(version), 0) FROM events WHERE stream_id = ?1",
                )?
                .query_row(params![stream], |row| row.get(0))?;
            Ok(from_stored(version))
        })
        .await
    }

    /// See [`EventStore::head`](crate::EventStore::head).
    pub(super) async fn head(self: &Arc<Self>) -> Result<Position, StoreError> {
        self.run("head", move |conn| {
            let head: i64 = conn
                .prepare_cached("SELECT COALESCE(MAX(position), 0) FROM events")?
                .query_row([], |row| row.get(0))?;
            Ok(Position(from_stored(head)))
        })
        .await
    }

    /// See [`EventStore::stream_metadata`](crate::EventStore::stream_metadata).
    pub(super) async fn stream_metadata(
        self: &Arc<Self>,
        stream: &str,
    ) -> Result<StreamMetadata, StoreError> {
        let stream = stream.to_owned();
        self.run("stream_metadata", move |conn| {
            let row: Option<(i64, i64, Option<String>)> = conn
                .prepare_cached(
                    "SELECT truncate_before, deleted, custom FROM streams WHERE stream_id = ?1",
                )?
                .query_row(params![stream], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })
                .optional()?;
            match row {
                None => Ok(StreamMetadata::default()),
                Some((truncate_before, deleted, custom)) => {
                    rows::stream_metadata(&stream, truncate_before, deleted, custom)
                }
            }
        })
        .await
    }

    /// See [`EventStore::load_snapshot`](crate::EventStore::load_snapshot).
    pub(super) async fn load_snapshot(
        self: &Arc<Self>,
        stream: &str,
    ) -> Result<Option<Snapshot>, StoreError> {
        let stream = stream.to_owned();
        self.run("load_snapshot", move |conn| {
            let row: Option<(i64, i64, Vec<u8>)> = conn
                .prepare_cached(
                    "SELECT version, schema_version, state FROM snapshots WHERE stream_id = ?1",
                )?
                .query_row(params![stream], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })
                .optional()?;
            row.map(|(version, schema_version, state)| {
                rows::snapshot(&stream, version, schema_version, state)
            })
            .transpose()
        })
        .await
    }

    /// See [`EventStore::load_checkpoint`](crate::EventStore::load_checkpoint).
    pub(super) async fn load_checkpoint(
        self: &Arc<Self>,
        subscriber: &str,
    ) -> Result<Option<Position>, StoreError> {
        let subscriber = subscriber.to_owned();
        self.run("load_checkpoint", move |conn| {
            let position: Option<i64> = conn
                .prepare_cached("SELECT position FROM checkpoints WHERE subscriber = ?1")?
                .query_row(params![subscriber], |row| row.get(0))
                .optional()?;
            Ok(position.map(|position| Position(from_stored(position))))
        })
        .await
    }
}

/// The lowest visible version of stream `?1`, from its metadata row if it has one: a
/// deleted stream, or a `truncate_before` stored negative (a `u64` above `i64::MAX`), hides
/// every version. An uncorrelated subquery: evaluated once per read.
macro_rules! visible_from {
    () => {
        "COALESCE((SELECT CASE WHEN deleted != 0 OR truncate_before < 0 \
         THEN 9223372036854775807 ELSE truncate_before END \
         FROM streams WHERE stream_id = ?1), 0)"
    };
}

/// Visible events of a stream from a version up, in one statement (metadata and events
/// from the same snapshot).
const READ_STREAM_FORWARD: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM events e WHERE e.stream_id = ?1 AND e.version >= ?2 AND e.version >= ",
    visible_from!(),
    " ORDER BY e.version ASC LIMIT ?3"
);

/// Visible events of a stream from a version down.
const READ_STREAM_BACKWARD: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM events e WHERE e.stream_id = ?1 AND e.version <= ?2 AND e.version >= ",
    visible_from!(),
    " ORDER BY e.version DESC LIMIT ?3"
);

/// The global log after a position (a range scan of the table's own B-tree).
const READ_ALL: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM events e WHERE e.position > ?1 ORDER BY e.position LIMIT ?2"
);

/// Decodes every row of an event query (at most `max`).
fn events(mut rows: rusqlite::Rows<'_>, max: usize) -> Result<Vec<RecordedEvent>, ReadFailure> {
    let mut events = Vec::with_capacity(max.min(PREALLOCATE));
    while let Some(row) = rows.next()? {
        events.push(recorded_event(row)?);
    }
    Ok(events)
}
