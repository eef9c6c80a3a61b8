//! [`SqliteStore`]: the embedded durable store, one SQLite file in WAL mode, appends
//! group-committed by one writer thread, reads on a pool of read-only connections.
//!
//! # Design
//!
//! **One writer, group commit.** SQLite lets one connection write at a time, so the store
//! does not pretend otherwise: a dedicated thread owns the only read-write connection, and
//! every write (appends, stream metadata, deletes, snapshots, checkpoints) is a request
//! queued to it. The thread takes the first request, then every request already waiting
//! (up to [`max_batch_events`](SqliteStoreBuilder::max_batch_events) events), and runs
//! them in one `BEGIN IMMEDIATE` transaction, each request all-or-nothing on its own (a
//! request that fails its expected-version or idempotency check, or meets a driver error,
//! writes nothing — one statement, or a `SAVEPOINT` rolled back — and the others commit).
//! One `COMMIT` — one WAL sync — then pays for the whole batch, which is what makes many
//! concurrent small appends fast. The queue is bounded
//! ([`queue_capacity`](SqliteStoreBuilder::queue_capacity)): when the writer falls behind,
//! appenders wait for room.
//!
//! **Idempotency, cheaply.** An append whose expected version holds is inserted at once;
//! the unique index on the event id proves none of its ids is stored. Only when that index
//! objects, or the expected version fails, are the ids looked up and the shared rule
//! (`classify_replay`, then the version check) applied — the same rule, in the same order,
//! as every other backend.
//!
//! **Checkpoints off the write path.** SQLite normally copies the WAL back into the
//! database (and syncs it) inside the commit that grows the WAL past 1000 pages, stalling
//! every append of that batch. Here a second thread with its own connection runs those
//! checkpoints (`PASSIVE`: it never blocks the writer or readers); the writer itself
//! checkpoints, between batches, only when the WAL passes 16 000 pages under a sustained
//! load (so that the WAL can start over from its beginning).
//!
//! **Gap-free positions.** Global positions are the `events` table's `INTEGER PRIMARY KEY`,
//! assigned by the writer as `max(position) + 1` read inside its write transaction. A
//! rolled-back request gives its numbers back, and a second process writing the same file
//! reads the maximum under the same write lock, so positions stay dense in commit order
//! even then.
//!
//! **WAL.** Readers never block the writer and the writer never blocks readers; each read
//! is one SQL statement and sees one committed snapshot. Reads run on tokio's blocking
//! pool (`spawn_blocking`) over [`readers`](SqliteStoreBuilder::readers) read-only
//! connections with cached prepared statements.
//!
//! **SQLite never reports BUSY here.** `SQLITE_BUSY` means another connection (another
//! store on the same file, another process, a `sqlite3` shell) holds a lock. Every
//! connection has a [busy timeout](SqliteStoreBuilder::busy_timeout) and every statement
//! that can meet such a lock (`BEGIN IMMEDIATE`, `COMMIT`, each read) is retried, with a
//! growing pause, until it gets through: an append waits as long as someone else holds the
//! write lock, and never fails because of it. [`SqliteStats::busy_waits`] counts the waits.
//! Closing or dropping the store ends the waiting (the waiting requests then get
//! [`AppendError::Closed`]).
//!
//! **Durability.** [`Synchronous::Full`] (the default) syncs the WAL on every commit: an
//! acknowledged append survives a power loss. [`Synchronous::Normal`] syncs only at WAL
//! checkpoints: it never corrupts the database and an acknowledged append survives a
//! process crash (the OS has the write), but the last commits before a power loss or an
//! OS crash may be lost. Either way a crash leaves whole transactions only (the crash test
//! in `tests/sqlite_crash.rs` kills a writing process with SIGKILL and checks it).
//!
//! **Several processes.** Any number of stores (in this or other processes) may open the
//! same file; they take turns at the write lock and positions stay dense. The head
//! [`watch`](EventStore::watch_head) of a store moves with its own commits (and catches up
//! with others' at its next commit): a [`Subscription`](crate::Subscription) sees another
//! process's commits at its [poll interval](crate::Subscription::poll_interval).
//!
//! **Threads.** `fb-sqlite-write` (the writer) and `fb-sqlite-ckpt` (checkpoints) per
//! store; reads use tokio's blocking pool.
//!
//! **Closing.** The writer thread stops when the last handle is dropped (the drop waits for
//! the batch in progress and joins the thread) or at [`SqliteStore::close`]; then appends
//! get [`AppendError::Closed`] and reads [`StoreError::Closed`].
//!
//! The layout and its migrations are described in the `schema` module: `events`, `streams`,
//! `snapshots`, `checkpoints`, versioned with `PRAGMA user_version`.
//!
//! # Examples
//!
//! ```
//! use flowbed_eventsourcing::{Direction, EventData, EventStore, ExpectedVersion, Position};
//! use flowbed_eventsourcing::sqlite::{SqliteStore, Synchronous};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("events.db");
//! let store = SqliteStore::builder(&path)
//!     .readers(2)
//!     .synchronous(Synchronous::Normal)
//!     .open()?;
//! let opened = EventData::new("Opened", br#"{"owner":"ada"}"#.to_vec());
//! store.append("account-1", ExpectedVersion::NoStream, vec![opened.clone()]).await?;
//! // The same event id again: a no-op success.
//! assert!(store.append("account-1", ExpectedVersion::NoStream, vec![opened]).await?.deduplicated);
//! drop(store); // joins the writer thread
//!
//! let store = SqliteStore::open(&path)?; // everything is still there
//! let events = store.read_stream("account-1", 1, Direction::Forward, 10).await?;
//! assert_eq!((events[0].event_type.as_str(), events[0].position), ("Opened", Position(1)));
//! assert_eq!(store.stats().commits, 0); // stats count this handle's writes
//! # Ok(())
//! # }
//! ```

mod busy;
mod checkpoint;
mod readers;
mod rows;
mod schema;
mod writer;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use crate::error::{AppendError, BackendError, StoreError};
use crate::event::{EventData, Position, RecordedEvent};
use crate::expected::{ExpectedVersion, validate_batch, validate_name};
use crate::group_commit::{self, Appender};
use crate::store::{AppendResult, Direction, EventStore, Snapshot, StreamMetadata};
use crate::sync::{Mutex, lock};

use readers::ReadPool;
use writer::{Job, Writer};

/// How hard a commit tries to reach the disk (SQLite's `PRAGMA synchronous`, in WAL mode).
///
/// # Examples
///
/// ```
/// use flowbed_eventsourcing::sqlite::{SqliteStore, Synchronous};
///
/// let builder = SqliteStore::builder("events.db").synchronous(Synchronous::Normal);
/// # let _ = builder;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Synchronous {
    /// Sync the WAL at every commit: an acknowledged append survives power loss. The
    /// default.
    #[default]
    Full,
    /// Sync only at WAL checkpoints: never corrupts, survives a process crash, but the
    /// last commits before a power loss or OS crash may be lost. Faster commits.
    Normal,
}

/// Options of a [`SqliteStore`]; [`open`](SqliteStoreBuilder::open) checks them and opens
/// the store.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowbed_eventsourcing::sqlite::SqliteStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let store = SqliteStore::builder(dir.path().join("events.db"))
///     .readers(8)
///     .max_batch_events(4096)
///     .queue_capacity(2048)
///     .busy_timeout(Duration::from_millis(50))
///     .open()?;
/// # drop(store);
///
/// let invalid = SqliteStore::builder(dir.path().join("other.db")).readers(0).open();
/// assert!(invalid.is_err());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct SqliteStoreBuilder {
    path: PathBuf,
    readers: usize,
    synchronous: Synchronous,
    max_batch_events: usize,
    queue_capacity: usize,
    busy_timeout: Duration,
}

/// The most read connections a store may have.
pub const MAX_READERS: usize = 1024;
/// The longest queue a store may have.
pub const MAX_QUEUE_CAPACITY: usize = 1 << 20;

impl SqliteStoreBuilder {
    /// How many read-only connections serve reads concurrently (default 4, at least 1, at
    /// most [`MAX_READERS`]). More readers than cores rarely helps.
    pub fn readers(mut self, readers: usize) -> SqliteStoreBuilder {
        self.readers = readers;
        self
    }

    /// The durability of a commit (default [`Synchronous::Full`]).
    pub fn synchronous(mut self, synchronous: Synchronous) -> SqliteStoreBuilder {
        self.synchronous = synchronous;
        self
    }

    /// The most events (and requests) the writer takes into one transaction (default
    /// 10 000, at least 1). One append bigger than this is still written whole, alone.
    pub fn max_batch_events(mut self, max_batch_events: usize) -> SqliteStoreBuilder {
        self.max_batch_events = max_batch_events;
        self
    }

    /// How many appends may wait for the writer (default 1024, at least 1, at most
    /// [`MAX_QUEUE_CAPACITY`]); further appenders wait for room (backpressure). Other writes
    /// (metadata, snapshots, checkpoints) have a queue of the same size.
    pub fn queue_capacity(mut self, queue_capacity: usize) -> SqliteStoreBuilder {
        self.queue_capacity = queue_capacity;
        self
    }

    /// How long one attempt waits inside SQLite for another connection's lock before the
    /// store's own retry loop takes over (default 100 ms, at most `i32::MAX` ms). The store
    /// waits for a lock as long as it is held either way; this only sets how often it
    /// checks whether it is being closed.
    pub fn busy_timeout(mut self, busy_timeout: Duration) -> SqliteStoreBuilder {
        self.busy_timeout = busy_timeout;
        self
    }

    /// Checks the options, opens (or creates) the database, migrates its schema, opens the
    /// read connections and starts the writer thread.
    ///
    /// # Errors
    ///
    /// [`OpenError::InvalidOption`] naming the option; [`OpenError::Store`] when the file
    /// cannot be opened, cannot use WAL (`":memory:"`), or has a newer schema.
    pub fn open(self) -> Result<SqliteStore, OpenError> {
        self.validate()?;
        Ok(SqliteStore::open_with(self)?)
    }

    fn validate(&self) -> Result<(), OpenError> {
        let invalid = |option, reason| Err(OpenError::InvalidOption { option, reason });
        if self.readers == 0 {
            return invalid("readers", "must be at least 1");
        }
        if self.readers > MAX_READERS {
            return invalid("readers", "must be at most MAX_READERS (1024)");
        }
        if self.max_batch_events == 0 {
            return invalid("max_batch_events", "must be at least 1");
        }
        if self.queue_capacity == 0 {
            return invalid("queue_capacity", "must be at least 1");
        }
        if self.queue_capacity > MAX_QUEUE_CAPACITY {
            return invalid(
                "queue_capacity",
                "must be at most MAX_QUEUE_CAPACITY (1048576)",
            );
        }
        if self.busy_timeout.as_millis() > i32::MAX as u128 {
            return invalid("busy_timeout", "must be at most i32::MAX milliseconds");
        }
        Ok(())
    }
}

/// Why [`SqliteStoreBuilder::open`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// An option is out of range.
    #[error("invalid sqlite store option {option}: {reason}")]
    InvalidOption {
        /// The builder method's name.
        option: &'static str,
        /// What the value must be.
        reason: &'static str,
    },
    /// The database could not be opened, configured or migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<OpenError> for StoreError {
    fn from(error: OpenError) -> StoreError {
        match error {
            OpenError::Store(error) => error,
            invalid @ OpenError::InvalidOption { .. } => {
                StoreError::Backend(BackendError::new("sqlite", "open", invalid.to_string()))
            }
        }
    }
}

/// A snapshot of a store's counters (since it was opened, this process's writes only).
///
/// # Examples
///
/// ```
/// use flowbed_eventsourcing::{EventData, EventStore, ExpectedVersion};
/// use flowbed_eventsourcing::sqlite::SqliteStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let store = SqliteStore::open(dir.path().join("events.db"))?;
/// store.append("a", ExpectedVersion::Any, vec![EventData::new("E", vec![]), EventData::new("E", vec![])]).await?;
/// let stats = store.stats();
/// assert_eq!((stats.commits, stats.appends, stats.events), (1, 1, 2));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqliteStats {
    /// Write transactions committed (one per batch: `appends / commits` is the average
    /// group-commit batch size, counting other writes too).
    pub commits: u64,
    /// Appends that succeeded (deduplicated and empty appends included).
    pub appends: u64,
    /// Events written.
    pub events: u64,
    /// Appends answered as a replay of an earlier append (nothing written).
    pub deduplicated: u64,
    /// Appends that failed (wrong expected version, idempotency conflict, backend error).
    pub rejected: u64,
    /// Times a connection found the database locked by another connection and waited.
    pub busy_waits: u64,
}

#[derive(Debug, Default)]
struct Counters {
    commits: AtomicU64,
    appends: AtomicU64,
    events: AtomicU64,
    deduplicated: AtomicU64,
    rejected: AtomicU64,
    busy_waits: AtomicU64,
}

/// What the writer thread, the read pool and the handles share.
#[derive(Debug)]
struct Shared {
    counters: Counters,
    /// Set when the store closes: lock waits give up.
    closing: AtomicBool,
    head: watch::Sender<Position>,
}

/// An event store in one SQLite file. Cheap to clone: clones share the writer thread and
/// the read connections. See the [module docs](self) for the design.
///
/// Open it inside a tokio runtime (reads run on its blocking pool).
///
/// # Examples
///
/// ```
/// use flowbed_eventsourcing::{EventData, EventStore, ExpectedVersion, Position};
/// use flowbed_eventsourcing::sqlite::SqliteStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let store = SqliteStore::open(dir.path().join("events.db"))?;
/// let result = store.append("orders-1", ExpectedVersion::NoStream, vec![EventData::new("Placed", b"{}".to_vec())]).await?;
/// assert_eq!((result.version, result.position), (1, Some(Position(1))));
/// assert_eq!(store.head().await?, Position(1));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// `None` only while dropping (so the writer's queues close before the join).
    appender: Option<Appender>,
    jobs: Option<mpsc::Sender<Job>>,
    readers: Arc<ReadPool>,
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .field("head", &*self.inner.shared.head.borrow())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (or creates) the store at `path` with the default options.
    ///
    /// Opening is synchronous file I/O on the calling thread (a few milliseconds; longer
    /// if another process holds the write lock while the schema is checked, which it waits
    /// for). Call it inside a tokio runtime: reads run on its blocking pool.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the file cannot be opened, cannot use WAL, or has a
    /// newer schema.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(SqliteStore::builder(path))
    }

    /// Options for opening the store at `path`.
    pub fn builder(path: impl AsRef<Path>) -> SqliteStoreBuilder {
        SqliteStoreBuilder {
            path: path.as_ref().to_owned(),
            readers: 4,
            synchronous: Synchronous::Full,
            max_batch_events: 10_000,
            queue_capacity: 1024,
            busy_timeout: Duration::from_millis(100),
        }
    }

    fn open_with(options: SqliteStoreBuilder) -> Result<SqliteStore, StoreError> {
        let shared = Arc::new(Shared {
            counters: Counters::default(),
            closing: AtomicBool::new(false),
            head: watch::Sender::new(Position::START),
        });
        let conn = schema::open_writer(
            &options.path,
            options.synchronous,
            options.busy_timeout,
            &shared,
        )?;
        let head: i64 = conn
            .query_row("SELECT COALESCE(MAX(position), 0) FROM events", [], |row| {
                row.get(0)
            })
            .map_err(|error| StoreError::Backend(BackendError::new("sqlite", "open", error)))?;
        shared.head.send_replace(Position(rows::from_stored(head)));
        let readers = (0..options.readers)
            .map(|_| schema::open_reader(&options.path, options.busy_timeout))
            .collect::<Result<Vec<_>, _>>()?;
        let readers = Arc::new(ReadPool::new(readers, Arc::clone(&shared)));
        let (appender, appends) = group_commit::queue(options.queue_capacity);
        let (jobs, job_queue) = mpsc::channel(options.queue_capacity);
        let checkpointer = checkpoint::Checkpointer::start(&options.path, options.busy_timeout)?;
        let writer = Writer::new(
            checkpointer,
            conn,
            Arc::clone(&shared),
            appends,
            job_queue,
            options.max_batch_events,
        );
        let writer = std::thread::Builder::new()
            .name("fb-sqlite-write".to_owned())
            .spawn(move || writer.run())
            .map_err(|error| StoreError::Backend(BackendError::new("sqlite", "open", error)))?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path: options.path,
                appender: Some(appender),
                jobs: Some(jobs),
                readers,
                shared,
                writer: Mutex::new(Some(writer)),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The store's counters.
    pub fn stats(&self) -> SqliteStats {
        let counters = &self.inner.shared.counters;
        SqliteStats {
            commits: counters.commits.load(Ordering::Relaxed),
            appends: counters.appends.load(Ordering::Relaxed),
            events: counters.events.load(Ordering::Relaxed),
            deduplicated: counters.deduplicated.load(Ordering::Relaxed),
            rejected: counters.rejected.load(Ordering::Relaxed),
            busy_waits: counters.busy_waits.load(Ordering::Relaxed),
        }
    }

    /// Closes the store for every handle: the writer finishes the batch it is committing
    /// (a batch waiting for another connection's lock is abandoned, its requests get
    /// [`AppendError::Closed`]) and stops; the read connections close. Afterwards appends
    /// and other writes fail with [`AppendError::Closed`] / [`StoreError::Closed`], and so
    /// do reads. Dropping the last handle does the same; `close` lets you wait for it.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_eventsourcing::{AppendError, EventData, EventStore, ExpectedVersion};
    /// use flowbed_eventsourcing::sqlite::SqliteStore;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let store = SqliteStore::open(dir.path().join("events.db"))?;
    /// store.close().await;
    /// let refused = store.append("a", ExpectedVersion::Any, vec![EventData::new("E", vec![])]).await;
    /// assert!(matches!(refused, Err(AppendError::Closed)));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn close(&self) {
        // Readers first: the writer's connection, closing last, removes the WAL.
        self.inner.readers.close();
        self.inner.shared.closing.store(true, Ordering::Release);
        if let Some(jobs) = &self.inner.jobs {
            // A full queue: the writer is alive and will read the close in turn; a closed
            // queue: the writer is already gone.
            let _ = jobs.send(Job::Close).await;
        }
        let writer = lock(&self.inner.writer).take();
        if let Some(writer) = writer {
            let joined = tokio::task::spawn_blocking(move || writer.join()).await;
            if let Ok(Err(panic)) = joined {
                std::panic::resume_unwind(panic);
            }
        }
    }

    fn appender(&self) -> Result<&Appender, AppendError> {
        self.inner.appender.as_ref().ok_or(AppendError::Closed)
    }

    /// Queues a job and waits for the writer's answer; `closed` is the error when the
    /// writer is gone.
    async fn job<E>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<(), E>>) -> Job,
        closed: E,
    ) -> Result<(), E> {
        let Some(jobs) = &self.inner.jobs else {
            return Err(closed);
        };
        let (reply, answer) = oneshot::channel();
        if jobs.send(job(reply)).await.is_err() {
            return Err(closed);
        }
        answer.await.unwrap_or(Err(closed))
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The read connections close first, so that the writer's connection is the last
        // one: it then checkpoints the WAL into the database and removes it (a read-only
        // connection closing last cannot). Closing the queues ends the writer's loop once
        // it has answered what is queued; `closing` makes a writer waiting for another
        // process's lock give up instead of holding the drop hostage.
        self.readers.close();
        self.shared.closing.store(true, Ordering::Release);
        self.appender = None;
        self.jobs = None;
        let writer = lock(&self.writer).take();
        if let Some(writer) = writer {
            // A panic of the writer thread was already reported to its appenders as
            // `Closed`; do not panic in drop.
            let _ = writer.join();
        }
    }
}

impl EventStore for SqliteStore {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    ) -> Result<AppendResult, AppendError> {
        let result = self.appender()?.append(stream, expected, events).await;
        if result.is_err() {
            self.inner
                .shared
                .counters
                .rejected
                .fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    async fn read_stream(
        &self,
        stream: &str,
        from: u64,
        direction: Direction,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner
            .readers
            .read_stream(stream, from, direction, max)
            .await
    }

    async fn read_all(
        &self,
        after: Position,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.readers.read_all(after, max).await
    }

    async fn stream_version(&self, stream: &str) -> Result<u64, StoreError> {
        self.inner.readers.stream_version(stream).await
    }

    async fn head(&self) -> Result<Position, StoreError> {
        self.inner.readers.head().await
    }

    fn watch_head(&self) -> watch::Receiver<Position> {
        self.inner.shared.head.subscribe()
    }

    async fn stream_metadata(&self, stream: &str) -> Result<StreamMetadata, StoreError> {
        self.inner.readers.stream_metadata(stream).await
    }

    async fn set_stream_metadata(
        &self,
        stream: &str,
        metadata: StreamMetadata,
    ) -> Result<(), AppendError> {
        validate_batch(stream, &[])?;
        let stream = stream.to_owned();
        self.job(
            |reply| Job::SetMetadata {
                stream,
                metadata,
                reply,
            },
            AppendError::Closed,
        )
        .await
    }

    async fn delete_stream(
        &self,
        stream: &str,
        expected: ExpectedVersion,
    ) -> Result<(), AppendError> {
        validate_batch(stream, &[])?;
        let stream = stream.to_owned();
        self.job(
            |reply| Job::Delete {
                stream,
                expected,
                reply,
            },
            AppendError::Closed,
        )
        .await
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        validate_name("snapshot stream id", &snapshot.stream_id)?;
        self.job(
            |reply| Job::SaveSnapshot { snapshot, reply },
            StoreError::Closed,
        )
        .await
    }

    async fn load_snapshot(&self, stream: &str) -> Result<Option<Snapshot>, StoreError> {
        self.inner.readers.load_snapshot(stream).await
    }

    async fn save_checkpoint(
        &self,
        subscriber: &str,
        position: Position,
    ) -> Result<(), StoreError> {
        validate_name("subscriber", subscriber)?;
        let subscriber = subscriber.to_owned();
        self.job(
            |reply| Job::SaveCheckpoint {
                subscriber,
                position,
                reply,
            },
            StoreError::Closed,
        )
        .await
    }

    async fn load_checkpoint(&self, subscriber: &str) -> Result<Option<Position>, StoreError> {
        self.inner.readers.load_checkpoint(subscriber).await
    }
}
