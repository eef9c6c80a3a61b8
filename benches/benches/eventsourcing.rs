//! flowbed-eventsourcing (memory, SQLite, PostgreSQL stores) against cqrs-es 0.5 (its
//! in-memory `MemStore`) and postgres-es 0.5 (cqrs-es on PostgreSQL through sqlx), in the
//! same run.
//!
//! Groups are `eventsourcing_<workload>`. flowbed's functions are named after the backend
//! (`flowbed_memory`, `flowbed_sqlite`, `flowbed_postgres`), the peers' after the crate
//! (`cqrs_es`, `postgres_es`), so results sit at
//! `target/criterion/eventsourcing_<workload>/<name>/`. Each backend has a peer of its
//! kind: `flowbed_memory` against `cqrs_es`, `flowbed_postgres` against `postgres_es`, and
//! `flowbed_sqlite` against `postgres_es` too (cqrs-es has no SQLite store; postgres-es is
//! its durable one). `benches/tools/eventsourcing-rounds.sh` prints these ratios.
//!
//! | group | one iteration | throughput | functions |
//! |---|---|---|---|
//! | `eventsourcing_append_single` | one append of one event, awaited before the next (one writer) | 1 event | flowbed ×3 (`EventStore::append`) and `flowbed_sqlite_normal`, `cqrs_es` (`MemStore::commit`), `postgres_es` (`PostgresEventRepository::persist`) |
//! | `eventsourcing_append_batch100` | one append of 100 events to a new stream | 100 events | the same |
//! | `eventsourcing_append_concurrent_16` | one single-event append by one of 16 writer tasks appending at once (time per event = total time / events) | 1 event | the same |
//! | `eventsourcing_append_command` | one deposit command: load the account, decide, append its one event (one writer) | 1 event | flowbed ×3 (`Repository::execute`), `cqrs_es` and `postgres_es` (`CqrsFramework::execute`) |
//! | `eventsourcing_replay_1m` | read every event of a store holding [`REPLAY_EVENTS`] (1,000,000) events, decode each and fold it | [`REPLAY_EVENTS`] events | flowbed ×3 (`read_all` in batches of [`REPLAY_BATCH`]), `postgres_es` (`stream_all_events`) |
//! | `eventsourcing_load_aggregate_snapshot` | load one account of 1000 events that has a snapshot at version 990 | 1 aggregate | flowbed ×3 (`Repository::load`), `cqrs_es` (`MemStore::load_aggregate`: no snapshots, replays all 1000), `postgres_es` (snapshot store `load_aggregate`) |
//!
//! # What each pair measures
//!
//! * Raw appends (`append_single`, `append_batch100`, `append_concurrent_16`): the events
//!   handed to the store, nothing loaded. flowbed: `EventStore::append(stream,
//!   ExpectedVersion::Exact(v), events)` with events built by `EventData::from_event` (serde
//!   JSON); postgres-es: `PersistedEventRepository::persist(events, None)` with
//!   `SerializedEvent`s built as cqrs-es builds them (`serde_json::to_value` of the same
//!   event, empty metadata `{}`), one transaction with one `INSERT` per event and the
//!   primary key `(aggregate_type, aggregate_id, sequence)` as its concurrency check;
//!   cqrs-es: `EventStore::commit` on a `MemStore` with a context built at the stream's
//!   version (what `CqrsFramework` does after loading; `MemStore` checks no version, keeps
//!   no event ids or global order, and clones the stream's stored events on every commit).
//!   Every writer appends to its own streams; a stream takes [`STREAM_EVENTS`] (100)
//!   events and the writer then starts a new one, so every workload leaves streams of 100
//!   events (`append_batch100` writes one per append).
//!   Serializing the events is inside the timed loop for all (cqrs-es's `MemStore` keeps
//!   the typed events and serializes nothing: that is its design).
//! * `append_command`: flowbed `Repository::execute(id, Deposit)` (no snapshots) against
//!   `CqrsFramework::execute(id, Deposit)` over `MemStore` and over
//!   `PersistedEventStore::new_event_store(PostgresEventRepository)`. Each framework loads
//!   the account (every stored event, decoded and folded; `MemStore` clones its typed
//!   events), runs the same decision, and appends one event at the loaded version (checked
//!   by flowbed and postgres-es, not by `MemStore`). One writer sends 100 commands to an
//!   account and then moves to a new one, so a load reads 0 to 99 events (49.5 on average)
//!   for every framework. No query processors on the cqrs-es side.
//! * `replay_1m`: flowbed reads the global log with `read_all(after, REPLAY_BATCH)` until
//!   the end and decodes every payload with `Upcasters::decode` (an empty chain) into the
//!   event type, folding it into an account; postgres-es reads every event of the
//!   aggregate type with `stream_all_events` (its only read across aggregates: `ORDER BY
//!   sequence`, the per-aggregate version, there is no global position) and decodes each
//!   with `ReplayStream::next` into an `EventEnvelope`, folding it the same way. Both check
//!   the count and the sum of the amounts. cqrs-es's `MemStore` has no read across
//!   aggregates, so it has no function here. The stores are filled before measuring:
//!   flowbed's through their own appends (16 writers, batches of 100), postgres-es's table
//!   with one `INSERT .. SELECT generate_series` writing the rows its `persist` would write
//!   (setup only; it would take a million round trips through `persist`).
//! * `load_aggregate_snapshot`: one account with 1000 deposits and a snapshot of its state
//!   at version 990. flowbed `Repository::load` (`snapshot_every(1000)`, so it reads the
//!   snapshot, then the 10 events after it); postgres-es
//!   `PersistedEventStore::new_snapshot_store(repo, 1000)` `load_aggregate` (its snapshot
//!   row, then `get_last_events` after 990); cqrs-es's `MemStore` has no snapshots: its
//!   `load_aggregate` clones and folds all 1000 events (the only load it has). Every load is
//!   checked (version 1000, the balance of 1000 deposits).
//!
//! All functions use the same aggregate ([`Account`], implementing both frameworks'
//! `Aggregate`) and the same event type ([`Deposited`], whose JSON is about 43 bytes:
//! `{"amount":42,"reference":"ref-0000000042"}`), with no metadata.
//!
//! # Setup
//!
//! * Runtime: a tokio multi-thread runtime with 2 workers per group; every measured loop
//!   runs as a task spawned on it (16 tasks in `append_concurrent_16`).
//! * Memory stores (`flowbed_memory`, `cqrs_es`) start empty for every sample of the append
//!   groups, so they do not grow through a run; the durable ones are made once per group
//!   and function (a SQLite file in a temporary directory; a PostgreSQL schema) and keep
//!   growing by what the group appends (tens of thousands of events).
//! * cqrs-es's `MemStore` prints a line on every load and every commit (`println!`). While
//!   a `cqrs_es` function runs, stdout is pointed at `/dev/null` (`gag`), so each line
//!   costs it a `write(2)` to `/dev/null` instead of flooding the report.
//! * PostgreSQL at `FLOWBED_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
//!   Each group and function gets a fresh schema `bench_es_<workload>_<function>` (dropped
//!   first if a crashed run left it, and dropped at the end of the group): flowbed's store
//!   creates its tables in it (`PostgresStore::connect(url, schema)`), postgres-es's tables
//!   are its `db/init.sql` `events` and `snapshots` created there, and its repository is
//!   pointed at them with `with_tables("<schema>.events", "<schema>.snapshots")` (no
//!   `search_path` involved: the table names are schema-qualified). postgres-es gets
//!   a sqlx pool of 16 connections (one per writer of the concurrent group, opened before
//!   measuring, no TLS, `test_before_acquire(false)`: sqlx's default pings the server before
//!   handing out any idle connection, a round trip per query that flowbed's pool does not
//!   make for connections used in the last 500 ms); flowbed's store gets what
//!   `PostgresStore::connect` makes (a flowbed-pool of 16 connections). An unreachable
//!   server fails the bench with a message (filter the PostgreSQL functions out to run
//!   without one).
//! * Durability as shipped: flowbed's SQLite store with `SqliteStore::open`'s defaults
//!   (WAL, `synchronous = FULL`: every commit is synced), PostgreSQL as the server is
//!   configured, the same for flowbed and postgres-es. The raw-append groups also run
//!   `flowbed_sqlite_normal`: the same SQLite store with `Synchronous::Normal` (WAL synced
//!   at checkpoints only: an acknowledged append survives a crash of the process, not
//!   necessarily a power loss), so the cost of a sync per commit is visible; it is not the
//!   default and not what the ratios compare.
//! * `--test` (CI's smoke mode, each benchmark once): the stores for `replay_1m` hold
//!   10,000 events instead of 1,000,000 ([`test_mode`]), so setup stays cheap.
//!
//! Every run is bounded by [`HANG_LIMIT`]: a store whose writers never finish fails the
//! bench instead of hanging it.
//!
//! Run: `cargo bench -p flowbed-benches --bench eventsourcing` (add `-- --quick` for a fast
//! pass; `bash benches/tools/eventsourcing-rounds.sh` for the 3 rounds of the docs).

use std::collections::HashMap;
use std::future::Future;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cqrs_es::event_sink::EventSink;
use cqrs_es::mem_store::{MemStore, MemStoreAggregateContext};
use cqrs_es::persist::{
    EventStoreAggregateContext, PersistedEventRepository, PersistedEventStore, SerializedEvent,
};
use cqrs_es::{CqrsFramework, EventEnvelope};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group};
use flowbed_eventsourcing::memory::MemoryStore;
use flowbed_eventsourcing::postgres::PostgresStore;
use flowbed_eventsourcing::sqlite::{SqliteStore, Synchronous};
use flowbed_eventsourcing::{
    EventData, EventStore, ExpectedVersion, Position, Repository, Snapshot, Upcasters,
};
use postgres_es::PostgresEventRepository;
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgPool, PgPoolOptions};
use tokio::runtime::Runtime;

/// Events per stream in the append workloads (a writer then starts a new stream).
const STREAM_EVENTS: u64 = 100;
/// Writers in `append_concurrent_16`.
const WRITERS: usize = 16;
/// Events in the `replay_1m` stores (outside `--test`).
const REPLAY_EVENTS: u64 = 1_000_000;
/// Events in the `replay_1m` stores under `--test`.
const REPLAY_EVENTS_TEST: u64 = 10_000;
/// Events per `read_all` call in `replay_1m`.
const REPLAY_BATCH: usize = 10_000;
/// Events of the account loaded in `load_aggregate_snapshot`.
const LOAD_EVENTS: u64 = 1000;
/// The version of its snapshot.
const LOAD_SNAPSHOT_AT: u64 = 990;
/// A measured run (or a setup) that takes longer than this has writers that never finish.
const HANG_LIMIT: Duration = Duration::from_secs(300);
const PG_DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

// ---------------------------------------------------------------------------------------
// The domain: one account aggregate and one event type, for both frameworks.
// ---------------------------------------------------------------------------------------

/// A bank account: the aggregate of every workload, for both frameworks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Account {
    balance: i64,
    deposits: u64,
}

/// The command: deposit `amount`, recorded under `reference`.
#[derive(Clone, Debug)]
struct Deposit {
    amount: i64,
    reference: String,
}

/// The one event type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Deposited {
    amount: i64,
    reference: String,
}

/// Why a deposit is refused (never, in these workloads: every amount is positive).
#[derive(Debug)]
struct NotPositive;

impl std::fmt::Display for NotPositive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a deposit must be positive")
    }
}

impl std::error::Error for NotPositive {}

impl Account {
    fn decide(&self, command: Deposit) -> Result<Deposited, NotPositive> {
        if command.amount <= 0 {
            return Err(NotPositive);
        }
        Ok(Deposited {
            amount: command.amount,
            reference: command.reference,
        })
    }

    fn fold(&mut self, event: &Deposited) {
        self.balance += event.amount;
        self.deposits += 1;
    }
}

/// The deposit recorded at `version` of an account: `version` units.
fn deposit(version: u64) -> Deposit {
    Deposit {
        amount: version as i64,
        reference: format!("ref-{version:010}"),
    }
}

/// The event of [`deposit`]`(version)`.
fn deposited(version: u64) -> Deposited {
    Deposited {
        amount: version as i64,
        reference: format!("ref-{version:010}"),
    }
}

/// The balance of an account after deposits 1..=`versions`.
fn balance_after(versions: u64) -> i64 {
    (versions * (versions + 1) / 2) as i64
}

impl flowbed_eventsourcing::DomainEvent for Deposited {
    fn event_type(&self) -> &'static str {
        "Deposited"
    }
}

impl cqrs_es::DomainEvent for Deposited {
    fn event_type(&self) -> String {
        "Deposited".to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

impl flowbed_eventsourcing::Aggregate for Account {
    const TYPE: &'static str = "account";
    type Command = Deposit;
    type Event = Deposited;
    type Error = NotPositive;

    fn handle(&self, command: Deposit) -> Result<Vec<Deposited>, NotPositive> {
        Ok(vec![self.decide(command)?])
    }

    fn apply(&mut self, event: &Deposited) {
        self.fold(event);
    }
}

impl cqrs_es::Aggregate for Account {
    const TYPE: &'static str = "account";
    type Command = Deposit;
    type Event = Deposited;
    type Error = NotPositive;
    type Services = ();

    async fn handle(
        &mut self,
        command: Deposit,
        _services: &(),
        sink: &EventSink<Account>,
    ) -> Result<(), NotPositive> {
        let event = self.decide(command)?;
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Deposited) {
        self.fold(&event);
    }
}

/// The stream of account `id` (flowbed's naming, `Repository::stream_id`).
fn account_stream(id: &str) -> String {
    Repository::<Account, MemoryStore>::stream_id(id)
}

// ---------------------------------------------------------------------------------------
// What the workloads need from a store, implemented once per framework.
// ---------------------------------------------------------------------------------------

/// Raw appends.
trait Appends: Clone + Send + Sync + 'static {
    /// Appends `count` events (versions `first..first + count`) to account `id`'s stream,
    /// which holds `first - 1` events, in one call; panics unless the store took them.
    fn append(&self, id: String, first: u64, count: u64) -> impl Future<Output = ()> + Send;
}

/// Commands through the framework's command path.
trait Commands: Clone + Send + Sync + 'static {
    /// Runs `deposit(version)` on account `id`, which holds `version - 1` events.
    fn execute(&self, id: String, version: u64) -> impl Future<Output = ()> + Send;
}

/// Aggregate loads.
trait Loads: Clone + Send + Sync + 'static {
    /// Loads account `id`: its state and version.
    fn load(&self, id: String) -> impl Future<Output = (Account, u64)> + Send;
}

/// Replays of every stored event.
trait Replays: Clone + Send + Sync + 'static {
    /// Reads, decodes and folds every stored event; returns how many and their fold.
    fn replay(&self) -> impl Future<Output = (u64, Account)> + Send;
}

/// A flowbed store.
#[derive(Clone)]
struct Flowbed<S>(S);

impl<S: EventStore> Appends for Flowbed<S> {
    async fn append(&self, id: String, first: u64, count: u64) {
        let events = (first..first + count)
            .map(|version| EventData::from_event(&deposited(version)).expect("serializable"))
            .collect();
        let result = self
            .0
            .append(
                &account_stream(&id),
                ExpectedVersion::Exact(first - 1),
                events,
            )
            .await
            .expect("flowbed append");
        assert_eq!(result.version, first + count - 1, "flowbed append version");
    }
}

impl<S: EventStore> Replays for Flowbed<S> {
    async fn replay(&self) -> (u64, Account) {
        let upcasters = Upcasters::new();
        let mut account = Account::default();
        let mut after = Position::START;
        let mut count = 0;
        loop {
            let batch = self
                .0
                .read_all(after, REPLAY_BATCH)
                .await
                .expect("flowbed read_all");
            for recorded in &batch {
                let event: Deposited = upcasters.decode(recorded).expect("flowbed decode");
                account.fold(&event);
                count += 1;
            }
            match batch.last() {
                Some(last) if batch.len() == REPLAY_BATCH => after = last.position,
                _ => return (count, account),
            }
        }
    }
}

impl<S: EventStore> Commands for Repository<Account, S> {
    async fn execute(&self, id: String, version: u64) {
        let executed = Repository::execute(self, &id, deposit(version))
            .await
            .expect("flowbed execute");
        assert_eq!(executed.loaded.version, version, "flowbed execute version");
    }
}

impl<S: EventStore> Loads for Repository<Account, S> {
    async fn load(&self, id: String) -> (Account, u64) {
        let loaded = Repository::load(self, &id).await.expect("flowbed load");
        (loaded.state, loaded.version)
    }
}

/// cqrs-es's in-memory store. It prints a line per load and commit: see [`quiet`].
type CqrsMem = MemStore<Account>;

impl Appends for CqrsMem {
    async fn append(&self, id: String, first: u64, count: u64) {
        let events = (first..first + count).map(deposited).collect();
        let context = MemStoreAggregateContext {
            aggregate_id: id,
            aggregate: Account::default(),
            current_sequence: (first - 1) as usize,
        };
        let committed = cqrs_es::EventStore::commit(self, events, context, HashMap::new())
            .await
            .expect("cqrs-es commit");
        assert_eq!(committed.len() as u64, count, "cqrs-es commit");
    }
}

impl Loads for CqrsMem {
    async fn load(&self, id: String) -> (Account, u64) {
        let context = cqrs_es::EventStore::load_aggregate(self, &id)
            .await
            .expect("cqrs-es load_aggregate");
        (context.aggregate, context.current_sequence as u64)
    }
}

/// A `CqrsFramework` (over `MemStore` or postgres-es's store), without queries.
struct Cqrs<ES: cqrs_es::EventStore<Account>>(Arc<CqrsFramework<Account, ES>>);

impl<ES: cqrs_es::EventStore<Account>> Clone for Cqrs<ES> {
    fn clone(&self) -> Self {
        Cqrs(Arc::clone(&self.0))
    }
}

impl<ES> Commands for Cqrs<ES>
where
    ES: cqrs_es::EventStore<Account> + 'static,
    ES::AC: Send,
{
    async fn execute(&self, id: String, version: u64) {
        self.0
            .execute(&id, deposit(version))
            .await
            .expect("cqrs-es execute");
    }
}

/// postgres-es's event repository.
#[derive(Clone)]
struct PgEs(Arc<PostgresEventRepository>);

impl Appends for PgEs {
    async fn append(&self, id: String, first: u64, count: u64) {
        let events: Vec<SerializedEvent> = (first..first + count)
            .map(|version| {
                let event = deposited(version);
                SerializedEvent::new(
                    id.clone(),
                    version as usize,
                    <Account as cqrs_es::Aggregate>::TYPE.to_owned(),
                    cqrs_es::DomainEvent::event_type(&event),
                    cqrs_es::DomainEvent::event_version(&event),
                    serde_json::to_value(&event).expect("serializable"),
                    serde_json::to_value(HashMap::<String, String>::new()).expect("empty map"),
                )
            })
            .collect();
        self.0
            .persist::<Account>(&events, None)
            .await
            .expect("postgres-es persist");
    }
}

impl Replays for PgEs {
    async fn replay(&self) -> (u64, Account) {
        let mut stream = self
            .0
            .stream_all_events::<Account>()
            .await
            .expect("postgres-es stream_all_events");
        let mut account = Account::default();
        let mut count = 0;
        while let Some(envelope) = stream.next::<Account>(&[]).await {
            let envelope: EventEnvelope<Account> = envelope.expect("postgres-es decode");
            account.fold(&envelope.payload);
            count += 1;
        }
        (count, account)
    }
}

/// postgres-es's snapshot store.
type PgEsStore = PersistedEventStore<PostgresEventRepository, Account>;

#[derive(Clone)]
struct PgEsSnapshots(Arc<PgEsStore>);

impl Loads for PgEsSnapshots {
    async fn load(&self, id: String) -> (Account, u64) {
        let context: EventStoreAggregateContext<Account> =
            cqrs_es::EventStore::load_aggregate(&*self.0, &id)
                .await
                .expect("postgres-es load_aggregate");
        (context.aggregate, context.current_sequence as u64)
    }
}

// ---------------------------------------------------------------------------------------
// Measured loops.
// ---------------------------------------------------------------------------------------

/// Distinguishes the streams of every sample (and writer) from those of earlier ones.
static NEXT_RUN: AtomicU64 = AtomicU64::new(0);

fn run_prefix() -> String {
    format!("r{}", NEXT_RUN.fetch_add(1, Ordering::Relaxed))
}

/// Runs `work` as a task on `runtime` and returns its output; fails after [`HANG_LIMIT`].
fn run<F>(runtime: &Runtime, what: &str, work: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    runtime.block_on(async {
        match tokio::time::timeout(HANG_LIMIT, tokio::spawn(work)).await {
            Ok(Ok(output)) => output,
            Ok(Err(panic)) => std::panic::resume_unwind(panic.into_panic()),
            Err(_) => panic!("{what} did not finish within {HANG_LIMIT:?}"),
        }
    })
}

/// One writer's share: `appends` appends of `count` events each, to streams named
/// `{prefix}n{k}` of [`STREAM_EVENTS`] events each.
async fn writer<A: Appends>(store: A, prefix: String, appends: u64, count: u64) {
    let mut stream = 0u64;
    let mut version = 0u64;
    for _ in 0..appends {
        if version + count > STREAM_EVENTS {
            stream += 1;
            version = 0;
        }
        store
            .append(format!("{prefix}n{stream}"), version + 1, count)
            .await;
        version += count;
    }
}

/// `appends` appends of `count` events shared by `writers` concurrent writer tasks (one
/// writer runs on the calling task); returns the time they took.
async fn append_run<A: Appends>(store: A, writers: usize, appends: u64, count: u64) -> Duration {
    let prefix = run_prefix();
    let start = Instant::now();
    if writers == 1 {
        writer(store.clone(), prefix, appends, count).await;
    } else {
        let tasks: Vec<_> = (0..writers as u64)
            .map(|w| {
                let share = appends / writers as u64 + u64::from(w < appends % writers as u64);
                tokio::spawn(writer(store.clone(), format!("{prefix}w{w}"), share, count))
            })
            .collect();
        for task in tasks {
            task.await.expect("writer task panicked");
        }
    }
    let elapsed = start.elapsed();
    // A per-sample memory store is dropped here, after the clock stopped.
    drop(store);
    elapsed
}

/// `commands` deposits by one writer, 100 per account; returns the time they took.
async fn command_run<C: Commands>(target: C, commands: u64) -> Duration {
    let prefix = run_prefix();
    let start = Instant::now();
    for i in 0..commands {
        let (account, version) = (i / STREAM_EVENTS, i % STREAM_EVENTS + 1);
        target.execute(format!("{prefix}n{account}"), version).await;
    }
    let elapsed = start.elapsed();
    drop(target);
    elapsed
}

/// `loads` loads of account `snapshot`, each checked; returns the time they took.
async fn load_run<L: Loads>(target: L, loads: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..loads {
        let (account, version) = target.load("snapshot".to_owned()).await;
        assert_eq!(version, LOAD_EVENTS, "loaded version");
        assert_eq!(
            account.balance,
            balance_after(LOAD_EVENTS),
            "loaded balance"
        );
    }
    start.elapsed()
}

/// `replays` full replays, each checked against `events` stored events in streams of 100;
/// returns the time they took.
async fn replay_run<R: Replays>(target: R, events: u64, replays: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..replays {
        let (count, account) = target.replay().await;
        assert_eq!(count, events, "replayed events");
        assert_eq!(
            account.balance,
            balance_after(STREAM_EVENTS) * (events / STREAM_EVENTS) as i64,
            "replayed sum"
        );
    }
    start.elapsed()
}

/// Points stdout at /dev/null while it lives (cqrs-es's `MemStore` prints a line per load
/// and per commit); criterion's report, printed outside the measured closures, is kept.
fn quiet() -> gag::Gag {
    std::io::stdout().flush().expect("flush stdout");
    gag::Gag::stdout().expect("redirect stdout to /dev/null")
}

// ---------------------------------------------------------------------------------------
// Stores: how each function gets its own.
// ---------------------------------------------------------------------------------------

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// `--test` (CI's smoke mode), or run without `--bench` (`cargo test --benches`): criterion
/// then runs every benchmark once, and the replay stores are kept small.
fn test_mode() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|arg| arg == "--test") || !args.iter().any(|arg| arg == "--bench")
}

fn replay_events() -> u64 {
    if test_mode() {
        REPLAY_EVENTS_TEST
    } else {
        REPLAY_EVENTS
    }
}

/// A SQLite store in a fresh temporary directory (removed when the store's group ends).
struct SqliteTarget {
    store: SqliteStore,
    _dir: tempfile::TempDir,
}

fn sqlite_store(runtime: &Runtime, name: &str, synchronous: Synchronous) -> SqliteTarget {
    let dir = tempfile::Builder::new()
        .prefix(&format!("es-bench-{name}-"))
        .tempdir()
        .expect("temporary directory");
    let path: PathBuf = dir.path().join("events.db");
    let _entered = runtime.enter();
    let store = SqliteStore::builder(&path)
        .synchronous(synchronous)
        .open()
        .expect("open the SQLite store");
    SqliteTarget { store, _dir: dir }
}

fn pg_url() -> String {
    std::env::var("FLOWBED_PG_URL").unwrap_or_else(|_| PG_DEFAULT_URL.to_owned())
}

/// The PostgreSQL side of a group: a sqlx pool for postgres-es and the schemas to drop at
/// the end. Made on first use, so a filter that leaves PostgreSQL out needs no server.
struct Pg {
    pool: PgPool,
    schemas: Vec<String>,
}

impl Pg {
    fn connect(runtime: &Runtime) -> Pg {
        let url = pg_url();
        let pool = runtime.block_on(async {
            let connect = PgPoolOptions::new()
                .max_connections(WRITERS as u32)
                .acquire_timeout(Duration::from_secs(30))
                // sqlx pings every idle connection it hands out by default (one more round
                // trip per query); flowbed's pool checks only connections idle for 500 ms.
                .test_before_acquire(false)
                .connect(&url);
            match tokio::time::timeout(Duration::from_secs(30), connect).await {
                Ok(Ok(pool)) => pool,
                Ok(Err(e)) => panic!(
                    "eventsourcing bench: PostgreSQL is unreachable at {url}: {e}. Start it \
                     (ci/services.sh), set FLOWBED_PG_URL, or filter the postgres functions out"
                ),
                Err(_) => panic!("eventsourcing bench: connecting to {url} took over 30 s"),
            }
        });
        Pg {
            pool,
            schemas: Vec::new(),
        }
    }

    /// A fresh, empty schema named `bench_es_{name}`, dropped when the group ends.
    fn fresh_schema(&mut self, runtime: &Runtime, name: &str) -> String {
        let schema = format!("bench_es_{name}");
        runtime.block_on(async {
            sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .execute(&self.pool)
                .await
                .expect("drop an old bench schema");
        });
        self.schemas.push(schema.clone());
        schema
    }

    /// flowbed's PostgreSQL store in a fresh schema.
    fn flowbed(&mut self, runtime: &Runtime, name: &str) -> PostgresStore {
        let schema = self.fresh_schema(runtime, name);
        let url = pg_url();
        runtime.block_on(async {
            PostgresStore::connect(&url, &schema)
                .await
                .expect("flowbed PostgresStore::connect")
        })
    }

    /// postgres-es's repository on its `db/init.sql` tables in a fresh schema (and the
    /// schema's name), with every connection of the pool opened.
    fn postgres_es(&mut self, runtime: &Runtime, name: &str) -> (PostgresEventRepository, String) {
        let schema = self.fresh_schema(runtime, name);
        runtime.block_on(async {
            sqlx::raw_sql(&format!(
                "CREATE SCHEMA {schema};
                 CREATE TABLE {schema}.events (
                     aggregate_type text NOT NULL,
                     aggregate_id text NOT NULL,
                     sequence bigint CHECK (sequence >= 0) NOT NULL,
                     event_type text NOT NULL,
                     event_version text NOT NULL,
                     payload json NOT NULL,
                     metadata json NOT NULL,
                     PRIMARY KEY (aggregate_type, aggregate_id, sequence)
                 );
                 CREATE TABLE {schema}.snapshots (
                     aggregate_type text NOT NULL,
                     aggregate_id text NOT NULL,
                     last_sequence bigint CHECK (last_sequence >= 0) NOT NULL,
                     current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
                     payload json NOT NULL,
                     PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
                 );"
            ))
            .execute(&self.pool)
            .await
            .expect("create postgres-es's tables");
            let mut held = Vec::with_capacity(WRITERS);
            for _ in 0..WRITERS {
                held.push(self.pool.acquire().await.expect("sqlx connect"));
            }
        });
        let repo = PostgresEventRepository::new(self.pool.clone())
            .with_tables(&format!("{schema}.events"), &format!("{schema}.snapshots"));
        (repo, schema)
    }

    /// Drops every schema this group made (after its stores are gone).
    fn drop_schemas(self, runtime: &Runtime) {
        runtime.block_on(async {
            for schema in &self.schemas {
                sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .execute(&self.pool)
                    .await
                    .expect("drop a bench schema");
            }
            self.pool.close().await;
        });
    }
}

/// The group's PostgreSQL side, connected on first use.
fn pg<'a>(pg: &'a mut Option<Pg>, runtime: &Runtime) -> &'a mut Pg {
    pg.get_or_insert_with(|| Pg::connect(runtime))
}

// ---------------------------------------------------------------------------------------
// Groups.
// ---------------------------------------------------------------------------------------

type Group<'a> = BenchmarkGroup<'a, WallTime>;

/// The group `eventsourcing_{workload}`. Flat sampling (every sample runs the same number
/// of iterations): the durable stores take milliseconds per iteration, and criterion's
/// default linear sampling would then run 5050 iterations (1 + 2 + ... + 100) whatever
/// the measurement time.
fn new_group<'a>(c: &'a mut Criterion, workload: &str) -> Group<'a> {
    let mut group = c.benchmark_group(format!("eventsourcing_{workload}"));
    group.sampling_mode(SamplingMode::Flat);
    group
}

/// Where a function's store comes from, and whether it prints.
#[derive(Clone, Copy)]
struct Setup {
    /// A new store for every sample (memory stores); otherwise one for the whole function.
    per_sample: bool,
    /// The store prints as it works (cqrs-es's `MemStore`): stdout goes to /dev/null while
    /// it is measured.
    prints: bool,
}

const DURABLE: Setup = Setup {
    per_sample: false,
    prints: false,
};
const MEMORY: Setup = Setup {
    per_sample: true,
    prints: false,
};
const CQRS_MEMORY: Setup = Setup {
    per_sample: true,
    prints: true,
};
/// A store filled once before measuring (replay, load): memory or not, it is kept.
const FILLED: Setup = DURABLE;
const CQRS_FILLED: Setup = Setup {
    per_sample: false,
    prints: true,
};

/// One function of a group: each sample takes a store from `make` (see [`Setup`]) and runs
/// `work(store, iterations)` as a task on `runtime`, which returns the measured time.
fn bench<T, F>(
    group: &mut Group<'_>,
    runtime: &Runtime,
    name: &str,
    setup: Setup,
    mut make: impl FnMut() -> T,
    work: impl Fn(T, u64) -> F,
) where
    T: Clone,
    F: Future<Output = Duration> + Send + 'static,
{
    let mut kept: Option<T> = None;
    group.bench_function(name, |b| {
        b.iter_custom(|iterations| {
            let target = if setup.per_sample {
                make()
            } else {
                kept.get_or_insert_with(&mut make).clone()
            };
            let _quiet = setup.prints.then(quiet);
            run(runtime, name, work(target, iterations))
        })
    });
}

/// The PostgreSQL schema name of a group's function.
fn schema_name(workload: &str, function: &str) -> String {
    format!("{workload}_{function}")
}

/// The six functions of a raw-append group: `writers` writers, `count` events per append.
fn append_group(c: &mut Criterion, workload: &str, writers: usize, count: u64) {
    let mut group = new_group(c, workload);
    group.throughput(Throughput::Elements(count));
    let runtime = runtime();
    let mut postgres: Option<Pg> = None;

    bench(
        &mut group,
        &runtime,
        "flowbed_memory",
        MEMORY,
        || Flowbed(MemoryStore::new()),
        move |store, appends| append_run(store, writers, appends, count),
    );
    for (name, synchronous) in [
        ("flowbed_sqlite", Synchronous::Full),
        ("flowbed_sqlite_normal", Synchronous::Normal),
    ] {
        let mut sqlite: Option<SqliteTarget> = None;
        bench(
            &mut group,
            &runtime,
            name,
            DURABLE,
            || {
                Flowbed(
                    sqlite
                        .insert(sqlite_store(&runtime, workload, synchronous))
                        .store
                        .clone(),
                )
            },
            move |store, appends| append_run(store, writers, appends, count),
        );
    }
    let mut flowbed_pg: Option<PostgresStore> = None;
    bench(
        &mut group,
        &runtime,
        "flowbed_postgres",
        DURABLE,
        || {
            let schema = schema_name(workload, "flowbed");
            Flowbed(
                flowbed_pg
                    .insert(pg(&mut postgres, &runtime).flowbed(&runtime, &schema))
                    .clone(),
            )
        },
        move |store, appends| append_run(store, writers, appends, count),
    );
    drop(flowbed_pg);
    bench(
        &mut group,
        &runtime,
        "cqrs_es",
        CQRS_MEMORY,
        CqrsMem::default,
        move |store, appends| append_run(store, writers, appends, count),
    );
    bench(
        &mut group,
        &runtime,
        "postgres_es",
        DURABLE,
        || {
            let schema = schema_name(workload, "pges");
            PgEs(Arc::new(
                pg(&mut postgres, &runtime).postgres_es(&runtime, &schema).0,
            ))
        },
        move |store, appends| append_run(store, writers, appends, count),
    );
    group.finish();
    if let Some(postgres) = postgres {
        postgres.drop_schemas(&runtime);
    }
}

fn append_single(c: &mut Criterion) {
    append_group(c, "append_single", 1, 1);
}

fn append_batch100(c: &mut Criterion) {
    append_group(c, "append_batch100", 1, STREAM_EVENTS);
}

fn append_concurrent_16(c: &mut Criterion) {
    append_group(c, "append_concurrent_16", WRITERS, 1);
}

fn append_command(c: &mut Criterion) {
    let workload = "append_command";
    let mut group = new_group(c, workload);
    group.throughput(Throughput::Elements(1));
    let runtime = runtime();
    let mut postgres: Option<Pg> = None;

    bench(
        &mut group,
        &runtime,
        "flowbed_memory",
        MEMORY,
        || Repository::<Account, _>::new(MemoryStore::new()),
        command_run,
    );
    let mut sqlite: Option<SqliteTarget> = None;
    bench(
        &mut group,
        &runtime,
        "flowbed_sqlite",
        DURABLE,
        || {
            let store = sqlite
                .insert(sqlite_store(&runtime, workload, Synchronous::Full))
                .store
                .clone();
            Repository::<Account, _>::new(store)
        },
        command_run,
    );
    drop(sqlite);
    let mut flowbed_pg: Option<PostgresStore> = None;
    bench(
        &mut group,
        &runtime,
        "flowbed_postgres",
        DURABLE,
        || {
            let schema = schema_name(workload, "flowbed");
            let store = flowbed_pg.insert(pg(&mut postgres, &runtime).flowbed(&runtime, &schema));
            Repository::<Account, _>::new(store.clone())
        },
        command_run,
    );
    drop(flowbed_pg);
    bench(
        &mut group,
        &runtime,
        "cqrs_es",
        CQRS_MEMORY,
        || Cqrs(Arc::new(CqrsFramework::new(CqrsMem::default(), vec![], ()))),
        command_run,
    );
    bench(
        &mut group,
        &runtime,
        "postgres_es",
        DURABLE,
        || {
            let schema = schema_name(workload, "pges");
            let (repo, _) = pg(&mut postgres, &runtime).postgres_es(&runtime, &schema);
            let store = PersistedEventStore::new_event_store(repo);
            Cqrs(Arc::new(CqrsFramework::new(store, vec![], ())))
        },
        command_run,
    );
    group.finish();
    if let Some(postgres) = postgres {
        postgres.drop_schemas(&runtime);
    }
}

/// Fills a flowbed store with `events` events: 16 writers appending batches of 100, each
/// batch a new stream.
fn fill_flowbed<S: EventStore>(runtime: &Runtime, store: &S, events: u64) {
    let appends = events / STREAM_EVENTS;
    run(
        runtime,
        "filling a flowbed store",
        append_run(Flowbed(store.clone()), WRITERS, appends, STREAM_EVENTS),
    );
}

fn replay_1m(c: &mut Criterion) {
    let workload = "replay_1m";
    let events = replay_events();
    let mut group = new_group(c, workload);
    group.throughput(Throughput::Elements(events));
    group.sample_size(10);
    let runtime = runtime();
    let mut postgres: Option<Pg> = None;

    bench(
        &mut group,
        &runtime,
        "flowbed_memory",
        FILLED,
        || {
            let store = MemoryStore::new();
            fill_flowbed(&runtime, &store, events);
            Flowbed(store)
        },
        move |target, replays| replay_run(target, events, replays),
    );
    let mut sqlite: Option<SqliteTarget> = None;
    bench(
        &mut group,
        &runtime,
        "flowbed_sqlite",
        FILLED,
        || {
            let store = &sqlite
                .insert(sqlite_store(&runtime, workload, Synchronous::Full))
                .store;
            fill_flowbed(&runtime, store, events);
            Flowbed(store.clone())
        },
        move |target, replays| replay_run(target, events, replays),
    );
    drop(sqlite);
    let mut flowbed_pg: Option<PostgresStore> = None;
    bench(
        &mut group,
        &runtime,
        "flowbed_postgres",
        FILLED,
        || {
            let schema = schema_name(workload, "flowbed");
            let store = flowbed_pg.insert(pg(&mut postgres, &runtime).flowbed(&runtime, &schema));
            fill_flowbed(&runtime, store, events);
            Flowbed(store.clone())
        },
        move |target, replays| replay_run(target, events, replays),
    );
    drop(flowbed_pg);
    bench(
        &mut group,
        &runtime,
        "postgres_es",
        FILLED,
        || {
            let postgres = pg(&mut postgres, &runtime);
            let (repo, schema) = postgres.postgres_es(&runtime, &schema_name(workload, "pges"));
            // The rows `persist` writes for deposits 1..=100 of accounts replay-0, replay-1, ...
            runtime.block_on(async {
                sqlx::query(&format!(
                    "INSERT INTO {schema}.events (aggregate_type, aggregate_id, sequence, \
                         event_type, event_version, payload, metadata)
                     SELECT 'account', 'replay-' || (i / 100), i % 100 + 1, 'Deposited', '1.0',
                            json_build_object('amount', i % 100 + 1, 'reference',
                                              'ref-' || lpad((i % 100 + 1)::text, 10, '0')),
                            '{{}}'::json
                     FROM generate_series(0, $1 - 1) AS i"
                ))
                .bind(events as i64)
                .execute(&postgres.pool)
                .await
                .expect("fill postgres-es's events table");
            });
            PgEs(Arc::new(repo))
        },
        move |target, replays| replay_run(target, events, replays),
    );
    group.finish();
    if let Some(postgres) = postgres {
        postgres.drop_schemas(&runtime);
    }
}

/// The state of account `snapshot` after deposits 1..=`version`.
fn state_at(version: u64) -> Account {
    let mut state = Account::default();
    for version in 1..=version {
        state.fold(&deposited(version));
    }
    state
}

/// Stores account `snapshot`'s 1000 deposits in a flowbed store (10 appends of 100) and a
/// snapshot of its state at version 990; returns a repository that loads from snapshots.
fn snapshot_repository<S: EventStore>(runtime: &Runtime, store: S) -> Repository<Account, S> {
    let filled = store.clone();
    run(runtime, "filling a flowbed account", async move {
        let target = Flowbed(filled.clone());
        for first in (1..=LOAD_EVENTS).step_by(STREAM_EVENTS as usize) {
            target
                .append("snapshot".to_owned(), first, STREAM_EVENTS)
                .await;
        }
        filled
            .save_snapshot(Snapshot {
                stream_id: account_stream("snapshot"),
                version: LOAD_SNAPSHOT_AT,
                schema_version: <Account as flowbed_eventsourcing::Aggregate>::SNAPSHOT_VERSION,
                state: serde_json::to_vec(&state_at(LOAD_SNAPSHOT_AT)).expect("serializable"),
            })
            .await
            .expect("flowbed save_snapshot");
    });
    Repository::new(store).snapshot_every(LOAD_EVENTS)
}

/// Account `snapshot`'s deposits `versions` as postgres-es's `persist` takes them.
fn serialized_deposits(versions: std::ops::RangeInclusive<u64>) -> Vec<SerializedEvent> {
    versions
        .map(|version| {
            let event = deposited(version);
            SerializedEvent::new(
                "snapshot".to_owned(),
                version as usize,
                <Account as cqrs_es::Aggregate>::TYPE.to_owned(),
                cqrs_es::DomainEvent::event_type(&event),
                cqrs_es::DomainEvent::event_version(&event),
                serde_json::to_value(&event).expect("serializable"),
                serde_json::to_value(HashMap::<String, String>::new()).expect("empty map"),
            )
        })
        .collect()
}

fn load_aggregate_snapshot(c: &mut Criterion) {
    let workload = "load_aggregate_snapshot";
    let mut group = new_group(c, workload);
    group.throughput(Throughput::Elements(1));
    let runtime = runtime();
    let mut postgres: Option<Pg> = None;

    bench(
        &mut group,
        &runtime,
        "flowbed_memory",
        FILLED,
        || snapshot_repository(&runtime, MemoryStore::new()),
        load_run,
    );
    let mut sqlite: Option<SqliteTarget> = None;
    bench(
        &mut group,
        &runtime,
        "flowbed_sqlite",
        FILLED,
        || {
            let store = sqlite
                .insert(sqlite_store(&runtime, workload, Synchronous::Full))
                .store
                .clone();
            snapshot_repository(&runtime, store)
        },
        load_run,
    );
    drop(sqlite);
    let mut flowbed_pg: Option<PostgresStore> = None;
    bench(
        &mut group,
        &runtime,
        "flowbed_postgres",
        FILLED,
        || {
            let schema = schema_name(workload, "flowbed");
            let store = flowbed_pg.insert(pg(&mut postgres, &runtime).flowbed(&runtime, &schema));
            snapshot_repository(&runtime, store.clone())
        },
        load_run,
    );
    drop(flowbed_pg);
    bench(
        &mut group,
        &runtime,
        "cqrs_es",
        CQRS_FILLED,
        || {
            let store = CqrsMem::default();
            let filled = store.clone();
            let _quiet = quiet();
            run(&runtime, "filling cqrs-es's account", async move {
                filled.append("snapshot".to_owned(), 1, LOAD_EVENTS).await;
            });
            store
        },
        load_run,
    );
    bench(
        &mut group,
        &runtime,
        "postgres_es",
        FILLED,
        || {
            let schema = schema_name(workload, "pges");
            let (repo, _) = pg(&mut postgres, &runtime).postgres_es(&runtime, &schema);
            // Deposits 1..=990 with the snapshot row (what a snapshot store's commit writes
            // when it takes a snapshot), then 991..=1000 without.
            let snapshot = (
                "snapshot".to_owned(),
                serde_json::to_value(state_at(LOAD_SNAPSHOT_AT)).expect("serializable"),
                1,
            );
            let repo = run(&runtime, "filling postgres-es's account", async move {
                repo.persist::<Account>(&serialized_deposits(1..=LOAD_SNAPSHOT_AT), Some(snapshot))
                    .await
                    .expect("postgres-es persist with a snapshot");
                repo.persist::<Account>(
                    &serialized_deposits(LOAD_SNAPSHOT_AT + 1..=LOAD_EVENTS),
                    None,
                )
                .await
                .expect("postgres-es persist");
                repo
            });
            PgEsSnapshots(Arc::new(PersistedEventStore::new_snapshot_store(
                repo,
                LOAD_EVENTS as usize,
            )))
        },
        load_run,
    );
    group.finish();
    if let Some(postgres) = postgres {
        postgres.drop_schemas(&runtime);
    }
}

criterion_group!(
    benches,
    append_single,
    append_batch100,
    append_concurrent_16,
    append_command,
    replay_1m,
    load_aggregate_snapshot
);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
