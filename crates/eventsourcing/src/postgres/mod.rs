//! [`PostgresStore`]: the event store on PostgreSQL, through tokio-postgres connections
//! from a flowbed-pool [`Pool`], for services that outgrow one machine.
//!
//! ```no_run
//! use flowbed_eventsourcing::{EventData, EventStore, ExpectedVersion, Position, Subscription};
//! use flowbed_eventsourcing::postgres::PostgresStore;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Creates (or migrates) the schema `billing` and its tables.
//! let store = PostgresStore::connect("postgres://postgres@127.0.0.1:5432/test", "billing").await?;
//! let event = EventData::new("InvoiceIssued", br#"{"amount":120}"#.to_vec());
//! let result = store.append("invoice-7", ExpectedVersion::NoStream, vec![event]).await?;
//! assert_eq!(result.version, 1);
//!
//! // Any process subscribed to the same schema sees it, in commit order, exactly once.
//! let mut subscription = Subscription::all(store.clone(), Position::START);
//! let first = subscription.next().await?;
//! assert_eq!(first.stream_id, "invoice-7");
//! # Ok(())
//! # }
//! ```
//!
//! # Gap-free positions: the counter row
//!
//! A store that numbers events from a sequence (`bigserial`) has the gap problem described
//! in the [crate docs](crate#the-gap-problem-and-why-no-backend-here-has-it): numbers are
//! taken at insert time and become visible at commit time, in another order. This store
//! numbers events from one row, `<schema>.position_counter(last)`: an appending
//! transaction runs `UPDATE position_counter SET last = last + n RETURNING last` and uses
//! `last - n + 1 ..= last`. PostgreSQL holds that row lock until the transaction ends and
//! releases it only after the commit is visible to new snapshots, so the next appender
//! allocates only after the previous one committed (its numbers are then visible) or
//! rolled back (its numbers are handed out again). Hence:
//!
//! * positions are dense and in commit order; a reader can never see `n + 1` without `n`;
//! * readers just read `WHERE position > $1 ORDER BY position LIMIT $2`: no waiting for
//!   gaps to fill, no skipping after a timeout, no "old enough" horizon;
//! * a rolled-back append leaves no hole: the next append reuses its numbers.
//!
//! The limits, and why they are acceptable here:
//!
//! * **Appends serialize from allocation to commit.** The window is kept tiny: the lock
//!   is the *last* thing an append takes (after its stream locks, idempotency lookup and
//!   version checks); inside it only the event rows are inserted and the commit runs. The
//!   store group-commits concurrent appends (below), so one commit (one WAL flush) pays
//!   for many appends.
//! * **A long transaction that appends blocks every other appender** until it ends. This
//!   only happens with [`append_in`](PostgresStore::append_in), which appends inside the
//!   caller's own transaction: keep such transactions short, and append last in them.
//! * Throughput is bounded by one commit at a time per schema (use several schemas to
//!   scale out independent event logs).
//!
//! Why not `xid8`/`pg_snapshot` visibility (as Marten and some others do): it orders events
//! by *transaction id*, which is not commit order, so a reader must carry a composite
//! checkpoint (a position plus the set of transactions in flight when it last read) and
//! filter with `pg_visible_in_snapshot`; checkpoints are then no longer plain positions,
//! every subscriber pays for the snapshot logic, and a long-running transaction still
//! holds all readers back. The counter row gives plain dense positions for the same
//! serialization cost, which group commit mostly hides.
//!
//! # Locks, and why batches cannot deadlock
//!
//! An append takes its stream rows first (one `INSERT ... ON CONFLICT DO UPDATE ... WHERE
//! false`, which creates missing stream rows and locks existing ones without writing a new
//! row version, in byte order of the stream id), then the counter row. Every appender
//! takes locks in that one order, so two batches touching the same streams wait for each
//! other instead of deadlocking. (A transaction calling `append_in` twice breaks that
//! order; PostgreSQL then detects the deadlock and aborts one of the transactions.)
//!
//! # One round trip per batch
//!
//! The migration creates a PL/pgSQL function, `<schema>.append_batch`, that takes a whole
//! group of appends as parallel arrays (per request: stream, expected version code, event
//! count; per event: id, type, schema version, payload, metadata) and in one call locks the
//! streams, applies the idempotency rule (the same rule as every backend: all ids stored
//! as this exact batch in this stream → deduplicated success with the original version and
//! position; none stored → append; anything else → [`AppendError::IdempotencyConflict`]),
//! checks expected versions, allocates positions once for all accepted requests, inserts
//! the events with one `INSERT ... SELECT FROM unnest(...)`, updates the streams (clearing
//! a soft delete), notifies, and returns one row per request. A rejected request writes
//! nothing; the others of the batch commit. The store sends it as a single statement
//! outside an explicit transaction: one round trip, one commit. Inside, it runs three SQL
//! statements whatever the batch size (lock, look up ids, then one statement that updates
//! the streams, allocates positions, inserts every event and notifies), with generic plans
//! (`plan_cache_mode = force_generic_plan`: nothing is re-planned per call).
//!
//! The store's writer task takes every append waiting in its queue (up to
//! [`max_batch_events`](PostgresStoreBuilder::max_batch_events)), calls the function once
//! on a pooled connection, and answers each appender. Commits are serialized by the
//! counter row anyway, so one writer per store loses nothing; what matters is how many
//! appends share a commit (one WAL flush): the writer yields briefly (at most 200 µs, and
//! at most 50 µs after the last arrival) so that as many appenders as its last batch had
//! can queue again before it sends the next; a lone appender does not wait. If another process commits
//! one of the batch's event ids first, the insert fails with a unique violation (SQLSTATE
//! 23505); the writer sends the batch again and the retry judges that request by the
//! idempotency rule (counted in [`PostgresStats::unique_violation_retries`]).
//!
//! # Events and read models in one transaction
//!
//! [`append_in`](PostgresStore::append_in) calls the same function inside a transaction
//! of yours, so that events and read-model rows (or an outbox) commit or roll back
//! together (the cqrs-es issue #21). Until that transaction ends it holds the position lock:
//! other appends of every process wait for it.
//!
//! # Schema and migrations
//!
//! Each store lives in its own PostgreSQL schema (`connect(url, "billing")`), created on
//! first connect. Migrations are recorded in `<schema>.migrations` and applied in one
//! transaction under `pg_advisory_xact_lock`, so processes connecting at once do not race.
//! Tables:
//!
//! * `events(position bigint primary key, stream_id, version, event_id uuid unique,
//!   event_type, schema_version bigint, payload bytea, metadata bytea, recorded_at bigint
//!   (Unix microseconds), unique (stream_id, version))`;
//! * `streams(stream_id primary key, version, truncate_before, deleted, custom text)`:
//!   the stream's version (0 = no events) and its [`StreamMetadata`];
//! * `snapshots(stream_id primary key, version, schema_version, state bytea)`,
//!   `checkpoints(subscriber primary key, position)`, `position_counter(last)`.
//!
//! `schema_version` is a `bigint` so that every `u32` round-trips. The `custom` stream
//! metadata is JSON text (cast it with `custom::jsonb` to query it in SQL): `jsonb` would
//! refuse the string escape `\u0000`, and every value must read back equal.
//!
//! # Waking subscribers
//!
//! [`watch_head`](EventStore::watch_head) is raised by the writer after each commit and by
//! a listener task that keeps its own connection, `LISTEN`s on the schema's channel
//! (`flowbed_es_<schema>`), and reconnects with backoff when the connection drops; every
//! process appending to the schema notifies at commit. [`Subscription`](crate::Subscription)
//! also reads at an interval, so a lost notification delays a subscriber, never skips an
//! event.
//!
//! # Errors
//!
//! Driver and pool failures are [`BackendError`]s with backend `"postgres"` and the
//! operation (`"append"`, `"read_all"`, ...), the driver's error (with the server's
//! message) as the source. A failed append leaves nothing written: every batch is one
//! statement, hence one transaction.

mod listener;
mod rows;
mod schema;
mod writer;

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use flowbed_pool::Pool;
use flowbed_pool::postgres::PgManager;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Transaction};

use self::listener::{Listener, OpenError};
use self::rows::{to_sql_limit, to_sql_u64, u64_bits};
pub use self::schema::SchemaError;
use self::schema::{MigrateError, Sql};
use self::writer::{BatchParams, Counters, Request, Writer};
use crate::error::{AppendError, BackendError, StoreError};
use crate::event::{EventData, Position, RecordedEvent};
use crate::expected::{ExpectedVersion, check_expected, validate_batch, validate_name};
use crate::group_commit::{self, Appender};
use crate::store::{AppendResult, Direction, EventStore, Snapshot, StreamMetadata};

/// The event store on PostgreSQL. Cheap to clone: clones share the pool, the writer task
/// and the listener; both tasks stop when the last clone is dropped.
///
/// See the [module docs](self) for how positions stay gap-free and what that costs.
///
/// # Examples
///
/// ```no_run
/// use flowbed_eventsourcing::{EventData, EventStore, ExpectedVersion};
/// use flowbed_eventsourcing::postgres::PostgresStore;
/// use flowbed_pool::Pool;
/// use flowbed_pool::postgres::PgManager;
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = Pool::builder(PgManager::parse("postgres://postgres@127.0.0.1/test")?)
///     .max_size(16)
///     .build()?;
/// let store = PostgresStore::builder(pool).schema("orders").build().await?;
/// store.append("order-1", ExpectedVersion::Any, vec![EventData::new("Placed", b"{}".to_vec())]).await?;
/// assert_eq!(store.stream_version("order-1").await?, 1);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    shared: Arc<Shared>,
}

struct Shared {
    pool: Pool<PgManager>,
    schema: String,
    sql: Arc<Sql>,
    appender: Appender,
    head: Arc<watch::Sender<Position>>,
    counters: Arc<Counters>,
    listener: AbortHandle,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The writer stops by itself once the appender (the queue's sender) is gone.
        self.listener.abort();
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.shared.schema)
            .field("head", &*self.shared.head.borrow())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Counters of a [`PostgresStore`]'s writer, from [`PostgresStore::stats`].
///
/// # Examples
///
/// ```no_run
/// # use flowbed_eventsourcing::postgres::PostgresStore;
/// # async fn example(store: PostgresStore) {
/// let stats = store.stats();
/// println!("{} appends in {} round trips", stats.appends, stats.batches);
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PostgresStats {
    /// Appends the writer handled (committed, deduplicated or rejected).
    pub appends: u64,
    /// `append_batch` calls sent: one round trip (and one commit) each.
    pub batches: u64,
    /// Events written.
    pub events: u64,
    /// Batches sent again after a unique violation (another process committed one of
    /// their event ids first).
    pub unique_violation_retries: u64,
}

/// Configures a [`PostgresStore`] on a pool: the schema, the group-commit queue, the
/// listener's connect timeout. Built by [`PostgresStore::builder`].
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use flowbed_eventsourcing::postgres::PostgresStore;
/// use flowbed_pool::Pool;
/// use flowbed_pool::postgres::PgManager;
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = Pool::builder(PgManager::parse("postgres://postgres@127.0.0.1/test")?).build()?;
/// let store = PostgresStore::builder(pool)
///     .schema("inventory")
///     .queue_capacity(4096)
///     .max_batch_events(8192)
///     .connect_timeout(Duration::from_secs(3))
///     .build()
///     .await?;
/// # let _ = store;
/// # Ok(())
/// # }
/// ```
pub struct PostgresStoreBuilder {
    pool: Pool<PgManager>,
    schema: String,
    queue_capacity: usize,
    max_batch_requests: usize,
    max_batch_events: usize,
    connect_timeout: Duration,
}

impl fmt::Debug for PostgresStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStoreBuilder")
            .field("schema", &self.schema)
            .field("queue_capacity", &self.queue_capacity)
            .field("max_batch_requests", &self.max_batch_requests)
            .field("max_batch_events", &self.max_batch_events)
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

/// A driver or pool error, displayed with its sources (tokio-postgres displays only
/// "db error" and keeps the server's message in a source); cheap to clone, so that one
/// failed batch can answer each of its appenders.
#[derive(Debug, Clone)]
pub(crate) struct DriverError {
    text: String,
    source: Option<Arc<dyn StdError + Send + Sync>>,
}

impl DriverError {
    fn new(error: impl StdError + Send + Sync + 'static) -> DriverError {
        DriverError {
            text: flowbed_pool::display_with_sources(&error),
            source: Some(Arc::new(error)),
        }
    }

    fn from_message(text: String) -> DriverError {
        DriverError { text, source: None }
    }
}

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl StdError for DriverError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match &self.source {
            Some(source) => Some(&**source),
            None => None,
        }
    }
}

/// PostgreSQL `text` cannot hold NUL: no stream (appends refuse such ids) or checkpoint
/// can have such a name, so reads of one answer "nothing" without asking the server.
fn holds_nul(name: &str) -> bool {
    name.contains('\0')
}

/// A [`BackendError`] of this backend.
fn backend(operation: &'static str, error: impl StdError + Send + Sync + 'static) -> BackendError {
    BackendError::new("postgres", operation, DriverError::new(error))
}

fn connect_error(error: impl StdError + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(backend("connect", error))
}

/// A [`SchemaError`] as the direct source of a `"connect"` [`BackendError`] (so that it can
/// be downcast from [`source`](StdError::source)).
fn schema_error(error: SchemaError) -> StoreError {
    StoreError::Backend(BackendError::new("postgres", "connect", error))
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/dbname`, or the key-value
    /// form) with a pool of up to 16 connections, and creates or migrates the store's
    /// tables in the schema `schema`. Without a `connect_timeout` in the URL, connecting
    /// gives up after 10 s.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] (operation `"connect"`): the URL does not parse, the server
    /// is unreachable or refuses, a migration failed, or the schema name is invalid
    /// ([`SchemaError::InvalidName`] as the source; checked before connecting) or the
    /// schema is newer than this release ([`SchemaError::NewerVersion`]).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use flowbed_eventsourcing::postgres::PostgresStore;
    ///
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), flowbed_eventsourcing::StoreError> {
    /// let store = PostgresStore::connect("postgres://postgres@127.0.0.1:5432/test", "shop").await?;
    /// assert_eq!(store.schema(), "shop");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(url: &str, schema: &str) -> Result<PostgresStore, StoreError> {
        schema::validate_schema_name(schema).map_err(schema_error)?;
        let mut config: tokio_postgres::Config = url.parse().map_err(connect_error)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        let pool = Pool::builder(PgManager::new(config, tokio_postgres::NoTls))
            .max_size(16)
            .build()
            .map_err(connect_error)?;
        PostgresStore::builder(pool).schema(schema).build().await
    }

    /// Configures a store on `pool` (schema `flowbed` unless set).
    pub fn builder(pool: Pool<PgManager>) -> PostgresStoreBuilder {
        PostgresStoreBuilder {
            pool,
            schema: "flowbed".to_owned(),
            queue_capacity: 1024,
            max_batch_requests: 512,
            max_batch_events: 4096,
            connect_timeout: Duration::from_secs(10),
        }
    }

    /// The schema the store's tables live in.
    pub fn schema(&self) -> &str {
        &self.shared.schema
    }

    /// The pool the store reads and writes with (to open a transaction for
    /// [`append_in`](PostgresStore::append_in), for example).
    pub fn pool(&self) -> &Pool<PgManager> {
        &self.shared.pool
    }

    /// A snapshot of the writer's counters.
    pub fn stats(&self) -> PostgresStats {
        let counters = &self.shared.counters;
        PostgresStats {
            appends: counters.appends.load(Ordering::Relaxed),
            batches: counters.batches.load(Ordering::Relaxed),
            events: counters.events.load(Ordering::Relaxed),
            unique_violation_retries: counters.unique_violation_retries.load(Ordering::Relaxed),
        }
    }

    /// Appends inside `transaction`, a transaction of yours on a connection to the same
    /// database: the events commit or roll back with everything else it does (a read
    /// model, an outbox). Same rules and same answers as [`EventStore::append`], judged
    /// against what was committed before (and what this transaction wrote), in one round
    /// trip.
    ///
    /// The transaction holds the store's position lock from this call until it commits
    /// or rolls back: every other append to this schema, from any process, waits until
    /// then. Keep the rest of the transaction short, and call this once per transaction,
    /// as its last write (a second call may deadlock with another appender, which
    /// PostgreSQL resolves by aborting one of the transactions). Subscribers hear of the
    /// events after your commit, through the schema's notification channel.
    ///
    /// # Errors
    ///
    /// As [`EventStore::append`]. A [`BackendError`] (operation `"append_in"`) leaves the
    /// transaction aborted: roll it back. That includes a unique violation when another
    /// process commits one of the same event ids meanwhile; retrying the whole transaction
    /// then gets the idempotent answer.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use flowbed_eventsourcing::{EventData, ExpectedVersion};
    /// use flowbed_eventsourcing::postgres::PostgresStore;
    ///
    /// # async fn example(store: PostgresStore) -> Result<(), Box<dyn std::error::Error>> {
    /// let mut connection = store.pool().get().await?;
    /// let transaction = connection.transaction().await?;
    /// transaction
    ///     .execute("UPDATE balances SET amount = amount + 10 WHERE account = 'a-1'", &[])
    ///     .await?;
    /// let event = EventData::new("Deposited", br#"{"amount":10}"#.to_vec());
    /// store.append_in(&transaction, "account-a-1", ExpectedVersion::Any, vec![event]).await?;
    /// transaction.commit().await?; // the balance and the event, or neither
    /// # Ok(())
    /// # }
    /// ```
    pub async fn append_in(
        &self,
        transaction: &Transaction<'_>,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    ) -> Result<AppendResult, AppendError> {
        validate_batch(stream, &events)?;
        let request = Request {
            stream,
            expected,
            events: &events,
        };
        let params = BatchParams::new(std::iter::once(request));
        let rows = transaction
            .query_typed(&self.shared.sql.append, &params.as_typed_params())
            .await
            .map_err(|error| backend("append_in", error))?;
        let row = rows.first().ok_or_else(|| {
            BackendError::new(
                "postgres",
                "append_in",
                "append_batch returned no row for the request",
            )
        })?;
        writer::outcome(row, &request)
    }

    /// One statement on a pooled connection, prepared once per connection.
    async fn query(
        &self,
        operation: &'static str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, BackendError> {
        let connection = self
            .shared
            .pool
            .get()
            .await
            .map_err(|error| backend(operation, error))?;
        let statement = connection
            .prepare_cached(sql)
            .await
            .map_err(|error| backend(operation, error))?;
        connection
            .query(&statement, params)
            .await
            .map_err(|error| backend(operation, error))
    }
}

impl PostgresStoreBuilder {
    /// The schema the store's tables live in (default `flowbed`): 1 to 48 ASCII letters,
    /// digits and underscores, not starting with a digit or `pg_`. Created if missing.
    pub fn schema(mut self, schema: impl Into<String>) -> PostgresStoreBuilder {
        self.schema = schema.into();
        self
    }

    /// How many appends may wait for the writer (default 1024, at least 1); appenders
    /// beyond it wait for room.
    pub fn queue_capacity(mut self, capacity: usize) -> PostgresStoreBuilder {
        self.queue_capacity = capacity.max(1);
        self
    }

    /// Most events one group commit takes (default 4096, at least 1; a single larger
    /// append still goes in one batch of its own).
    pub fn max_batch_events(mut self, events: usize) -> PostgresStoreBuilder {
        self.max_batch_events = events.max(1);
        self
    }

    /// Most appends one group commit takes (default 512, at least 1).
    pub fn max_batch_requests(mut self, requests: usize) -> PostgresStoreBuilder {
        self.max_batch_requests = requests.max(1);
        self
    }

    /// How long opening the listener's connection may take (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> PostgresStoreBuilder {
        self.connect_timeout = timeout;
        self
    }

    /// Checks the schema name, opens the listener's connection, creates or migrates the
    /// schema, starts listening, and starts the writer. Must run inside a tokio runtime
    /// (the store's tasks are spawned on it).
    ///
    /// # Errors
    ///
    /// As [`PostgresStore::connect`].
    pub async fn build(self) -> Result<PostgresStore, StoreError> {
        let PostgresStoreBuilder {
            pool,
            schema,
            queue_capacity,
            max_batch_requests,
            max_batch_events,
            connect_timeout,
        } = self;
        schema::validate_schema_name(&schema).map_err(schema_error)?;
        let sql = Arc::new(Sql::new(&schema));
        let head = Arc::new(watch::Sender::new(Position::START));
        let mut config = pool.manager().config().clone();
        config.application_name(format!("flowbed-es-listener:{schema}"));
        let listener = Listener {
            config,
            channel: schema::channel(&schema),
            head_sql: sql.head.clone(),
            head: Arc::clone(&head),
            connect_timeout,
        };
        let mut session = listener.open().await.map_err(|error| match error {
            OpenError::Driver(error) => connect_error(error),
            OpenError::TimedOut(after) => connect_error(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("connecting took longer than {after:?}"),
            )),
        })?;
        schema::migrate(&mut session.client, &schema)
            .await
            .map_err(|error| match error {
                MigrateError::Driver(error) => connect_error(error),
                MigrateError::Schema(error) => schema_error(error),
            })?;
        listener.listen(&session).await.map_err(connect_error)?;
        let listener = listener.spawn(session).abort_handle();

        let counters = Arc::new(Counters::default());
        let (appender, requests) = group_commit::queue(queue_capacity);
        let writer = Writer {
            pool: pool.clone(),
            sql: Arc::clone(&sql),
            head: Arc::clone(&head),
            counters: Arc::clone(&counters),
            max_requests: max_batch_requests,
            max_events: max_batch_events,
        };
        tokio::spawn(writer.run(requests));
        Ok(PostgresStore {
            shared: Arc::new(Shared {
                pool,
                schema,
                sql,
                appender,
                head,
                counters,
                listener,
            }),
        })
    }
}

impl EventStore for PostgresStore {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    ) -> Result<AppendResult, AppendError> {
        self.shared.appender.append(stream, expected, events).await
    }

    async fn read_stream(
        &self,
        stream: &str,
        from: u64,
        direction: Direction,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if holds_nul(stream) {
            return Ok(Vec::new());
        }
        let sql = match direction {
            Direction::Forward => &self.shared.sql.read_forward,
            Direction::Backward => &self.shared.sql.read_backward,
        };
        let rows = self
            .query(
                "read_stream",
                sql,
                &[&stream, &to_sql_u64(from), &to_sql_limit(max)],
            )
            .await?;
        rows::events(&rows)
    }

    async fn read_all(
        &self,
        after: Position,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = self
            .query(
                "read_all",
                &self.shared.sql.read_all,
                &[&to_sql_u64(after.0), &to_sql_limit(max)],
            )
            .await?;
        rows::events(&rows)
    }

    async fn stream_version(&self, stream: &str) -> Result<u64, StoreError> {
        if holds_nul(stream) {
            return Ok(0);
        }
        let rows = self
            .query(
                "stream_version",
                &self.shared.sql.stream_version,
                &[&stream],
            )
            .await?;
        match rows.first() {
            Some(row) => rows::count(row, &format!("version of stream {stream:?}")),
            None => Ok(0),
        }
    }

    async fn head(&self) -> Result<Position, StoreError> {
        let rows = self.query("head", &self.shared.sql.head, &[]).await?;
        match rows.first() {
            Some(row) => Ok(Position(rows::count(row, "the position counter")?)),
            None => Err(StoreError::Corrupt {
                location: "the position counter".to_owned(),
                reason: "its row is missing".to_owned(),
            }),
        }
    }

    fn watch_head(&self) -> watch::Receiver<Position> {
        self.shared.head.subscribe()
    }

    async fn stream_metadata(&self, stream: &str) -> Result<StreamMetadata, StoreError> {
        if holds_nul(stream) {
            return Ok(StreamMetadata::default());
        }
        let rows = self
            .query(
                "stream_metadata",
                &self.shared.sql.stream_metadata,
                &[&stream],
            )
            .await?;
        match rows.first() {
            Some(row) => rows::stream_metadata(row, stream),
            None => Ok(StreamMetadata::default()),
        }
    }

    async fn set_stream_metadata(
        &self,
        stream: &str,
        metadata: StreamMetadata,
    ) -> Result<(), AppendError> {
        validate_batch(stream, &[])?;
        // JSON text, not jsonb: every value round-trips exactly (jsonb rejects `\u0000`).
        let custom = metadata.custom.as_ref().map(serde_json::Value::to_string);
        self.query(
            "set_stream_metadata",
            &self.shared.sql.set_stream_metadata,
            &[
                &stream,
                &u64_bits(metadata.truncate_before),
                &metadata.deleted,
                &custom,
            ],
        )
        .await?;
        Ok(())
    }

    async fn delete_stream(
        &self,
        stream: &str,
        expected: ExpectedVersion,
    ) -> Result<(), AppendError> {
        validate_batch(stream, &[])?;
        let rows = self
            .query(
                "delete_stream",
                &self.shared.sql.delete_stream,
                &[&stream, &expected.to_code()],
            )
            .await?;
        let answer = rows.first().map(|row| {
            (
                row.try_get::<_, bool>(0),
                row.try_get::<_, i64>(1)
                    .map(|actual| u64::try_from(actual).unwrap_or(0)),
            )
        });
        match answer {
            Some((Ok(true), Ok(_))) => Ok(()),
            Some((Ok(false), Ok(actual))) => check_expected(stream, expected, actual),
            _ => Err(AppendError::Backend(BackendError::new(
                "postgres",
                "delete_stream",
                "delete_stream returned an unexpected row",
            ))),
        }
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        validate_name("snapshot stream id", &snapshot.stream_id)?;
        self.query(
            "save_snapshot",
            &self.shared.sql.save_snapshot,
            &[
                &snapshot.stream_id,
                &u64_bits(snapshot.version),
                &i64::from(snapshot.schema_version),
                &snapshot.state,
            ],
        )
        .await?;
        Ok(())
    }

    async fn load_snapshot(&self, stream: &str) -> Result<Option<Snapshot>, StoreError> {
        if holds_nul(stream) {
            return Ok(None);
        }
        let rows = self
            .query("load_snapshot", &self.shared.sql.load_snapshot, &[&stream])
            .await?;
        rows.first().map(rows::snapshot).transpose()
    }

    async fn save_checkpoint(
        &self,
        subscriber: &str,
        position: Position,
    ) -> Result<(), StoreError> {
        validate_name("subscriber", subscriber)?;
        self.query(
            "save_checkpoint",
            &self.shared.sql.save_checkpoint,
            &[&subscriber, &u64_bits(position.0)],
        )
        .await?;
        Ok(())
    }

    async fn load_checkpoint(&self, subscriber: &str) -> Result<Option<Position>, StoreError> {
        if holds_nul(subscriber) {
            return Ok(None);
        }
        let rows = self
            .query(
                "load_checkpoint",
                &self.shared.sql.load_checkpoint,
                &[&subscriber],
            )
            .await?;
        rows.first()
            .map(|row| {
                rows::checkpoint(row, &format!("checkpoint of {subscriber:?}")).map(Position)
            })
            .transpose()
    }
}
