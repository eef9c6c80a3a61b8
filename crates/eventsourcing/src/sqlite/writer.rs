//! The writer thread: the only place this store writes. It owns the read-write connection
//! and commits whatever is waiting in one transaction (group commit):
//!
//! 1. wait for the first request (an append from the [`group_commit`](crate::group_commit)
//!    queue or another write [`Job`]), then take every request already waiting, up to
//!    `max_batch_events` events, yielding the thread briefly while the appenders of the
//!    last batch are still coming back (`Gather`: at most 200 µs, and at most 50 µs after
//!    the last arrival);
//! 2. `BEGIN IMMEDIATE` (waiting out another connection's write lock), read the next global
//!    position (`max(position) + 1`, inside the transaction, so a second process writing
//!    the same file cannot make a gap);
//! 3. run each request so that it writes all or nothing while the others stay in the
//!    transaction: its checks (wrong expected version, idempotency conflict) come before
//!    any write, and its writes are one SQL statement (SQLite undoes a failed statement by
//!    itself: an append of up to 32 events is one multi-row `INSERT`) or run inside a
//!    `SAVEPOINT` rolled back on failure (bigger appends, an append that also clears a soft
//!    delete). A request that fails gives its positions back, so the next one is dense;
//! 4. `COMMIT` once (waiting out locks), move the head watch (before answering, so an
//!    appender that has its answer sees the head at least at its position), then answer
//!    every request. If the commit fails, every request of the batch gets the backend
//!    error; if SQLite rolled the whole transaction back mid-batch (an I/O error), so do
//!    all of its requests.
//!
//! Then it keeps the WAL short (see the `checkpoint` module).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Wake, Waker};

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{mpsc, oneshot};

use super::Shared;
use super::busy::{self, Interrupted};
use super::checkpoint::{self, CHECKPOINT_PAGES, Checkpointer, WRITER_CHECKPOINT_PAGES};
use super::rows::{clamp, from_stored, to_stored};
use crate::error::{AppendError, BackendError, StoreError};
use crate::event::{EventData, Position, now_micros};
use crate::expected::{ExistingEvent, ExpectedVersion, Replay, check_expected, classify_replay};
use crate::group_commit::{AppendRequest, Gather, drain_ready};
use crate::store::{AppendResult, Snapshot, StreamMetadata};

/// A write other than an append; goes through the writer so the store has one writer.
#[derive(Debug)]
pub(super) enum Job {
    /// [`EventStore::set_stream_metadata`](crate::EventStore::set_stream_metadata).
    SetMetadata {
        stream: String,
        metadata: StreamMetadata,
        reply: oneshot::Sender<Result<(), AppendError>>,
    },
    /// [`EventStore::delete_stream`](crate::EventStore::delete_stream).
    Delete {
        stream: String,
        expected: ExpectedVersion,
        reply: oneshot::Sender<Result<(), AppendError>>,
    },
    /// [`EventStore::save_snapshot`](crate::EventStore::save_snapshot).
    SaveSnapshot {
        snapshot: Snapshot,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// [`EventStore::save_checkpoint`](crate::EventStore::save_checkpoint).
    SaveCheckpoint {
        subscriber: String,
        position: Position,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Finish the current batch and stop.
    Close,
}

/// Why one request of a batch failed.
#[derive(Debug)]
enum Failure {
    /// Its checks refused it (nothing written).
    Refused(AppendError),
    /// The driver failed while running it (its savepoint was rolled back).
    Sqlite {
        operation: &'static str,
        error: rusqlite::Error,
    },
}

impl Failure {
    fn sqlite(operation: &'static str) -> impl FnOnce(rusqlite::Error) -> Failure {
        move |error| Failure::Sqlite { operation, error }
    }

    fn into_append_error(self) -> AppendError {
        match self {
            Failure::Refused(error) => error,
            Failure::Sqlite { operation, error } => {
                AppendError::Backend(BackendError::new("sqlite", operation, error))
            }
        }
    }

    fn into_store_error(self) -> StoreError {
        match self {
            // Snapshots and checkpoints have no checks to fail.
            Failure::Refused(error) => {
                StoreError::Backend(BackendError::new("sqlite", "write", error.to_string()))
            }
            Failure::Sqlite { operation, error } => {
                StoreError::Backend(BackendError::new("sqlite", operation, error))
            }
        }
    }
}

/// How a batch's transaction ended.
enum End {
    Committed,
    /// The transaction could not start, was lost, or did not commit: nothing of it stored.
    Failed {
        operation: &'static str,
        message: String,
    },
    /// The store closed while waiting for another connection's lock.
    Interrupted,
}

impl End {
    fn append_error(&self) -> AppendError {
        match self {
            End::Committed => unreachable!("a committed batch answers with its results"),
            End::Failed { operation, message } => {
                AppendError::Backend(BackendError::new("sqlite", operation, message.clone()))
            }
            End::Interrupted => AppendError::Closed,
        }
    }

    fn store_error(&self) -> StoreError {
        match self {
            End::Committed => unreachable!("a committed batch answers with its results"),
            End::Failed { operation, message } => {
                StoreError::Backend(BackendError::new("sqlite", operation, message.clone()))
            }
            End::Interrupted => StoreError::Closed,
        }
    }
}

/// What the writer waits for.
enum Incoming {
    Append(AppendRequest),
    Job(Job),
}

/// Wakes the writer thread parked in [`Writer::next_incoming`].
struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// The writer: its connection, its two queues, and the batch being built.
pub(super) struct Writer {
    /// Declared first: dropped (stopped and joined) before the connection closes.
    checkpointer: Checkpointer,
    conn: Connection,
    shared: Arc<Shared>,
    appends: mpsc::Receiver<AppendRequest>,
    jobs: mpsc::Receiver<Job>,
    max_batch_events: usize,
    /// The SQL inserting `n + 1` events at index `n` (built once; `prepare_cached` keys
    /// on it).
    insert_sql: Vec<String>,
    /// The WAL's size when the checkpointer was last asked to run.
    wal_pages_at_kick: std::ffi::c_int,
}

impl Writer {
    /// A writer over this connection and these queues.
    pub(super) fn new(
        checkpointer: Checkpointer,
        conn: Connection,
        shared: Arc<Shared>,
        appends: mpsc::Receiver<AppendRequest>,
        jobs: mpsc::Receiver<Job>,
        max_batch_events: usize,
    ) -> Writer {
        checkpoint::watch_wal(&conn);
        Writer {
            checkpointer,
            conn,
            shared,
            appends,
            jobs,
            max_batch_events,
            insert_sql: (1..=INSERT_CHUNK).map(insert_sql).collect(),
            wal_pages_at_kick: 0,
        }
    }

    /// Commits batches until every store handle is gone or the store is closed. Requests
    /// still queued then are dropped, and their appenders get [`AppendError::Closed`].
    pub(super) fn run(mut self) {
        let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
        let mut appends = Vec::new();
        let mut jobs = Vec::new();
        let mut gather = Gather::default();
        loop {
            let mut stop = false;
            match self.next_incoming(&waker) {
                None => break,
                Some(Incoming::Append(request)) => appends.push(request),
                Some(Incoming::Job(Job::Close)) => break,
                Some(Incoming::Job(job)) => jobs.push(job),
            }
            let mut full = drain_ready(
                &mut self.appends,
                &mut appends,
                self.max_batch_events,
                self.max_batch_events,
            );
            let mut gathering = gather.start();
            while !full && gathering.wait_for_more(appends.len()) {
                std::thread::yield_now();
                full = drain_ready(
                    &mut self.appends,
                    &mut appends,
                    self.max_batch_events,
                    self.max_batch_events,
                );
            }
            if !appends.is_empty() {
                gather.finished(appends.len());
            }
            while jobs.len() < self.max_batch_events {
                match self.jobs.try_recv() {
                    Ok(Job::Close) => {
                        stop = true;
                        break;
                    }
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            self.commit_batch(&mut appends, &mut jobs);
            if stop {
                break;
            }
        }
    }

    /// Waits for the next request on either queue (`None`: both queues closed).
    fn next_incoming(&mut self, waker: &Waker) -> Option<Incoming> {
        let mut cx = Context::from_waker(waker);
        loop {
            let jobs_closed = match self.jobs.poll_recv(&mut cx) {
                Poll::Ready(Some(job)) => return Some(Incoming::Job(job)),
                Poll::Ready(None) => true,
                Poll::Pending => false,
            };
            match self.appends.poll_recv(&mut cx) {
                Poll::Ready(Some(request)) => return Some(Incoming::Append(request)),
                Poll::Ready(None) if jobs_closed => return None,
                _ => std::thread::park(),
            }
        }
    }

    /// Runs one batch in one transaction and answers every request of it.
    fn commit_batch(&mut self, appends: &mut Vec<AppendRequest>, jobs: &mut Vec<Job>) {
        let mut append_results = Vec::with_capacity(appends.len());
        let mut job_results = Vec::with_capacity(jobs.len());
        let mut head = None;
        let end = match busy::retry(&self.shared, || self.exec("BEGIN IMMEDIATE")) {
            Err(Interrupted) => End::Interrupted,
            Ok(Err(error)) => End::Failed {
                operation: "begin",
                message: error.to_string(),
            },
            Ok(Ok(())) => {
                let end = self.run_requests(appends, jobs, &mut append_results, &mut job_results);
                match end {
                    Ok(next_position) => {
                        head = Some(Position(from_stored(next_position - 1)));
                        self.commit()
                    }
                    Err(end) => {
                        self.rollback();
                        end
                    }
                }
            }
        };
        let counters = &self.shared.counters;
        match &end {
            End::Committed => {
                counters.commits.fetch_add(1, Ordering::Relaxed);
                if let Some(head) = head {
                    self.shared.head.send_if_modified(|current| {
                        let newer = head > *current;
                        if newer {
                            *current = head;
                        }
                        newer
                    });
                }
                // Counted before answering, so an appender reading stats() after its
                // answer sees its own append.
                let (mut ok, mut events, mut deduplicated) = (0, 0, 0);
                for (request, result) in appends.iter().zip(&append_results) {
                    if let Ok(result) = result {
                        ok += 1;
                        if result.deduplicated {
                            deduplicated += 1;
                        } else {
                            events += request.events.len() as u64;
                        }
                    }
                }
                counters.appends.fetch_add(ok, Ordering::Relaxed);
                counters.events.fetch_add(events, Ordering::Relaxed);
                counters
                    .deduplicated
                    .fetch_add(deduplicated, Ordering::Relaxed);
                for (request, result) in appends.drain(..).zip(append_results) {
                    request.answer(result.map_err(Failure::into_append_error));
                }
                for (job, result) in jobs.drain(..).zip(job_results) {
                    answer_job(job, result, &end);
                }
                self.after_commit(checkpoint::take_wal_pages());
            }
            _ => {
                for request in appends.drain(..) {
                    request.answer(Err(end.append_error()));
                }
                for job in jobs.drain(..) {
                    answer_job(job, Ok(()), &end);
                }
            }
        }
    }

    /// Keeps the WAL short: asks the checkpointer for a checkpoint every
    /// [`CHECKPOINT_PAGES`] new pages, and checkpoints itself past
    /// [`WRITER_CHECKPOINT_PAGES`] (see the `checkpoint` module).
    fn after_commit(&mut self, wal_pages: std::ffi::c_int) {
        if wal_pages == 0 {
            return; // the commit wrote nothing (or the hook did not run)
        }
        if wal_pages < self.wal_pages_at_kick {
            self.wal_pages_at_kick = 0; // the WAL restarted from its beginning
        }
        if wal_pages >= WRITER_CHECKPOINT_PAGES {
            // Harmless if it fails (a checkpoint already running): the WAL keeps everything.
            let _ = checkpoint::checkpoint(&self.conn);
            self.wal_pages_at_kick = 0;
        } else if wal_pages - self.wal_pages_at_kick >= CHECKPOINT_PAGES {
            self.checkpointer.kick();
            self.wal_pages_at_kick = wal_pages;
        }
    }

    /// Runs every request of the batch in the open transaction; returns the next free
    /// position, or how the transaction was lost.
    fn run_requests(
        &mut self,
        appends: &[AppendRequest],
        jobs: &[Job],
        append_results: &mut Vec<Result<AppendResult, Failure>>,
        job_results: &mut Vec<Result<(), Failure>>,
    ) -> Result<i64, End> {
        let lost = |error: rusqlite::Error| End::Failed {
            operation: "append",
            message: error.to_string(),
        };
        let mut next_position: i64 = self
            .conn
            .prepare_cached("SELECT COALESCE(MAX(position), 0) + 1 FROM events")
            .and_then(|mut statement| statement.query_row([], |row| row.get(0)))
            .map_err(lost)?;
        let now = now_micros();
        for request in appends {
            let saved = next_position;
            let result = self.append(request, &mut next_position, now)?;
            if result.is_err() {
                next_position = saved;
                self.check_transaction()?;
            }
            append_results.push(result);
        }
        for job in jobs {
            let result = self.job(job);
            if result.is_err() {
                self.check_transaction()?;
            }
            job_results.push(result);
        }
        Ok(next_position)
    }

    /// After a failed request: `Err` when SQLite rolled the whole transaction back (an I/O
    /// error, say), so the batch is lost.
    fn check_transaction(&self) -> Result<(), End> {
        if self.conn.is_autocommit() {
            Err(End::Failed {
                operation: "append",
                message: "the write transaction was rolled back by SQLite".to_owned(),
            })
        } else {
            Ok(())
        }
    }

    /// Runs `write` so that it writes all or nothing while the transaction goes on. One
    /// SQL statement is that already (SQLite undoes a failed statement); `several`
    /// statements run inside a savepoint, rolled back if `write` fails. `Err` when the
    /// savepoint cannot be rolled back: the transaction is no longer trustworthy.
    fn atomically<T>(
        &mut self,
        several: bool,
        write: impl FnOnce(&mut Writer) -> rusqlite::Result<T>,
    ) -> Result<rusqlite::Result<T>, End> {
        if !several {
            return Ok(write(self));
        }
        let gone = |error: rusqlite::Error| End::Failed {
            operation: "append",
            message: format!("the write transaction was lost: {error}"),
        };
        self.exec("SAVEPOINT request").map_err(gone)?;
        let result = write(self);
        if result.is_err() {
            self.exec("ROLLBACK TO request").map_err(gone)?;
        }
        self.exec("RELEASE request").map_err(gone)?;
        Ok(result)
    }

    fn commit(&mut self) -> End {
        match busy::retry(&self.shared, || self.exec("COMMIT")) {
            Ok(Ok(())) => End::Committed,
            Ok(Err(error)) => {
                self.rollback();
                End::Failed {
                    operation: "commit",
                    message: error.to_string(),
                }
            }
            Err(Interrupted) => {
                self.rollback();
                End::Interrupted
            }
        }
    }

    fn rollback(&mut self) {
        if !self.conn.is_autocommit() {
            let _ = self.exec("ROLLBACK");
        }
    }

    fn exec(&self, sql: &str) -> rusqlite::Result<()> {
        self.conn.prepare_cached(sql)?.execute([]).map(drop)
    }

    /// The stream's version (`max(version)` of its events, 0 for none) and whether it is
    /// soft-deleted.
    fn stream_state(&self, stream: &str) -> rusqlite::Result<(u64, bool)> {
        self.conn
            .prepare_cached(
                "SELECT COALESCE((SELECT MAX(version) FROM events WHERE stream_id = ?1), 0), \
                 COALESCE((SELECT deleted FROM streams WHERE stream_id = ?1), 0)",
            )?
            .query_row(params![stream], |row| {
                Ok((from_stored(row.get(0)?), row.get::<_, i64>(1)? != 0))
            })
    }

    /// One append. Fast path: the expected version holds, so insert at once; the unique
    /// index on `event_id` then proves no id is stored (a violation rolls the inserts back
    /// and takes the slow path). Slow path (expected version fails, or an id is stored):
    /// look every id up and apply [`classify_replay`] and [`check_expected`], in that
    /// order, exactly like the memory store.
    fn append(
        &mut self,
        request: &AppendRequest,
        next_position: &mut i64,
        now: i64,
    ) -> Result<Result<AppendResult, Failure>, End> {
        let stream = request.stream.as_str();
        let events = &request.events;
        let (current, deleted) = match self.stream_state(stream) {
            Ok(state) => state,
            Err(error) => return Ok(Err(Failure::sqlite("append")(error))),
        };
        let mut violation = None;
        if request.expected.admits(current) && !events.is_empty() {
            let start = *next_position;
            // Up to INSERT_CHUNK events are one INSERT; clearing a soft delete is another.
            let several = deleted || events.len() > INSERT_CHUNK;
            let inserted = self.atomically(several, |writer| {
                writer.insert(stream, current, deleted, events, next_position, now)
            })?;
            match inserted {
                Ok(result) => return Ok(Ok(result)),
                Err(error) if is_constraint_violation(&error) => {
                    *next_position = start;
                    violation = Some(error);
                }
                Err(error) => {
                    *next_position = start;
                    return Ok(Err(Failure::sqlite("append")(error)));
                }
            }
        }
        Ok(self.replay_or_refuse(request, current, violation))
    }

    /// The slow path of [`append`](Writer::append): nothing was written; decide from where
    /// the ids are stored whether the request is a replay, refused, or failed.
    fn replay_or_refuse(
        &self,
        request: &AppendRequest,
        current: u64,
        violation: Option<rusqlite::Error>,
    ) -> Result<AppendResult, Failure> {
        let stream = request.stream.as_str();
        let events = &request.events;
        let existing = self
            .find_events(events)
            .map_err(Failure::sqlite("append"))?;
        match classify_replay(stream, events, &existing).map_err(Failure::Refused)? {
            Replay::AlreadyAppended { last_version } => {
                let position: i64 = self
                    .conn
                    .prepare_cached(
                        "SELECT position FROM events WHERE stream_id = ?1 AND version = ?2",
                    )
                    .and_then(|mut statement| {
                        statement.query_row(params![stream, clamp(last_version)], |row| row.get(0))
                    })
                    .map_err(Failure::sqlite("append"))?;
                Ok(AppendResult {
                    version: last_version,
                    position: Some(Position(from_stored(position))),
                    deduplicated: true,
                })
            }
            Replay::Fresh => {
                check_expected(stream, request.expected, current).map_err(Failure::Refused)?;
                match violation {
                    // No id is stored and the version holds, yet the insert violated a
                    // constraint (a trigger or a damaged index, say).
                    Some(error) => Err(Failure::sqlite("append")(error)),
                    // An empty append: a version check and nothing else.
                    None => Ok(AppendResult {
                        version: current,
                        position: None,
                        deduplicated: false,
                    }),
                }
            }
        }
    }

    /// Inserts `events` after version `current` from `next_position` on (and clears the
    /// stream's soft delete).
    fn insert(
        &self,
        stream: &str,
        current: u64,
        deleted: bool,
        events: &[EventData],
        next_position: &mut i64,
        now: i64,
    ) -> rusqlite::Result<AppendResult> {
        let mut version = clamp(current);
        for chunk in events.chunks(INSERT_CHUNK) {
            let mut insert = self
                .conn
                .prepare_cached(&self.insert_sql[chunk.len() - 1])?;
            bind_events(&mut insert, chunk, stream, &mut version, next_position, now)?;
            insert.raw_execute()?;
        }
        if deleted {
            self.conn
                .prepare_cached("UPDATE streams SET deleted = 0 WHERE stream_id = ?1")?
                .execute(params![stream])?;
        }
        Ok(AppendResult {
            version: from_stored(version),
            position: Some(Position(from_stored(*next_position - 1))),
            deduplicated: false,
        })
    }

    /// Where each id of the batch is stored, if anywhere.
    fn find_events(&self, events: &[EventData]) -> rusqlite::Result<Vec<Option<ExistingEvent>>> {
        let mut find = self
            .conn
            .prepare_cached("SELECT stream_id, version FROM events WHERE event_id = ?1")?;
        events
            .iter()
            .map(|event| {
                find.query_row(params![&event.id.as_uuid().as_bytes()[..]], |row| {
                    Ok(ExistingEvent {
                        stream_id: row.get(0)?,
                        version: from_stored(row.get(1)?),
                    })
                })
                .optional()
            })
            .collect()
    }

    /// Runs one writing statement of a job (`operation` names it in an error).
    fn write(
        &self,
        operation: &'static str,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<(), Failure> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut statement| statement.execute(params))
            .map(drop)
            .map_err(Failure::sqlite(operation))
    }

    /// Runs a write other than an append. Each writes with one SQL statement (after its
    /// reads and checks), so a failure leaves nothing behind without a savepoint.
    fn job(&mut self, job: &Job) -> Result<(), Failure> {
        match job {
            Job::SetMetadata {
                stream, metadata, ..
            } => {
                let custom = metadata.custom.as_ref().map(ToString::to_string);
                self.write(
                    "set_stream_metadata",
                    "INSERT INTO streams (stream_id, truncate_before, deleted, custom) \
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (stream_id) DO UPDATE SET \
                     truncate_before = excluded.truncate_before, deleted = excluded.deleted, \
                     custom = excluded.custom",
                    params![
                        stream,
                        to_stored(metadata.truncate_before),
                        metadata.deleted,
                        custom,
                    ],
                )?;
            }
            Job::Delete {
                stream, expected, ..
            } => {
                let (current, _) = self
                    .stream_state(stream)
                    .map_err(Failure::sqlite("delete_stream"))?;
                check_expected(stream, *expected, current).map_err(Failure::Refused)?;
                self.write(
                    "delete_stream",
                    "INSERT INTO streams (stream_id, truncate_before, deleted) \
                     VALUES (?1, ?2, 1) ON CONFLICT (stream_id) DO UPDATE SET \
                     deleted = 1, truncate_before = excluded.truncate_before",
                    params![stream, clamp(current + 1)],
                )?;
            }
            Job::SaveSnapshot { snapshot, .. } => {
                let stored: Option<i64> = self
                    .conn
                    .prepare_cached("SELECT version FROM snapshots WHERE stream_id = ?1")
                    .and_then(|mut statement| {
                        statement
                            .query_row(params![snapshot.stream_id], |row| row.get(0))
                            .optional()
                    })
                    .map_err(Failure::sqlite("save_snapshot"))?;
                // An older snapshot than the stored one is ignored (like the memory store).
                if stored.is_some_and(|stored| from_stored(stored) > snapshot.version) {
                    return Ok(());
                }
                self.write(
                    "save_snapshot",
                    "INSERT INTO snapshots (stream_id, version, schema_version, state) \
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (stream_id) DO UPDATE SET \
                     version = excluded.version, schema_version = excluded.schema_version, \
                     state = excluded.state",
                    params![
                        snapshot.stream_id,
                        to_stored(snapshot.version),
                        snapshot.schema_version,
                        snapshot.state,
                    ],
                )?;
            }
            Job::SaveCheckpoint {
                subscriber,
                position,
                ..
            } => {
                self.write(
                    "save_checkpoint",
                    "INSERT INTO checkpoints (subscriber, position) VALUES (?1, ?2) \
                     ON CONFLICT (subscriber) DO UPDATE SET position = excluded.position",
                    params![subscriber, to_stored(position.0)],
                )?;
            }
            Job::Close => {}
        }
        Ok(())
    }
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("max_batch_events", &self.max_batch_events)
            .finish_non_exhaustive()
    }
}

/// Answers a job with its result (`Ok(())` for a batch that did not commit is replaced by
/// the batch's error).
fn answer_job(job: Job, result: Result<(), Failure>, end: &End) {
    let committed = matches!(end, End::Committed);
    match job {
        Job::SetMetadata { reply, .. } | Job::Delete { reply, .. } => {
            let _ = reply.send(if committed {
                result.map_err(Failure::into_append_error)
            } else {
                Err(end.append_error())
            });
        }
        Job::SaveSnapshot { reply, .. } | Job::SaveCheckpoint { reply, .. } => {
            let _ = reply.send(if committed {
                result.map_err(Failure::into_store_error)
            } else {
                Err(end.store_error())
            });
        }
        Job::Close => {}
    }
}

/// The most events one `INSERT` writes (one statement step writes them all, saving the
/// per-statement overhead, and one statement is atomic without a savepoint; 9 parameters
/// each, far below SQLite's limit). A request of up to this many events is one statement.
const INSERT_CHUNK: usize = 32;

/// The columns an insert binds, per event.
const INSERT_COLUMNS: usize = 9;

/// The SQL inserting `rows` events.
fn insert_sql(rows: usize) -> String {
    let rows = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?)"; rows].join(", ");
    format!(
        "INSERT INTO events (position, event_id, stream_id, version, event_type, \
         schema_version, payload, metadata, recorded_at) VALUES {rows}"
    )
}

/// Binds `events` to consecutive rows of an insert statement, numbering them from
/// `version + 1` and `next_position` (both advanced).
fn bind_events(
    insert: &mut rusqlite::Statement<'_>,
    events: &[EventData],
    stream: &str,
    version: &mut i64,
    next_position: &mut i64,
    now: i64,
) -> rusqlite::Result<()> {
    for (row, event) in events.iter().enumerate() {
        *version += 1;
        let base = row * INSERT_COLUMNS;
        insert.raw_bind_parameter(base + 1, *next_position)?;
        insert.raw_bind_parameter(base + 2, &event.id.as_uuid().as_bytes()[..])?;
        insert.raw_bind_parameter(base + 3, stream)?;
        insert.raw_bind_parameter(base + 4, *version)?;
        insert.raw_bind_parameter(base + 5, event.event_type.as_str())?;
        insert.raw_bind_parameter(base + 6, event.schema_version)?;
        insert.raw_bind_parameter(base + 7, event.payload.as_slice())?;
        if event.metadata.is_empty() {
            insert.raw_bind_parameter(base + 8, &[][..] as &[u8])?;
        } else {
            insert.raw_bind_parameter(base + 8, event.metadata.to_bytes())?;
        }
        insert.raw_bind_parameter(base + 9, now)?;
        *next_position += 1;
    }
    Ok(())
}

fn is_constraint_violation(error: &rusqlite::Error) -> bool {
    error.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation)
}
