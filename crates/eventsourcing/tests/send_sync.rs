//! Thread-safety of the public types (DESIGN.md §3.10): stores, repositories,
//! subscriptions, events and errors are `Send + Sync` (and `Unpin + Debug`), and the futures
//! of every `EventStore` method, `Subscription::next` and the repository's commands are
//! `Send`, so they run on a multi-threaded runtime and inside `tokio::spawn`.
//!
//! Each check is a call that only compiles when the property holds; the tests also build
//! and drop the futures (without polling them) so a regression fails the build, not a run.

use flowbed_eventsourcing::memory::MemoryStore;
use flowbed_eventsourcing::{
    Aggregate, AppendError, AppendResult, BackendError, CommandError, DecodeError, Direction,
    DomainEvent, EncodeError, EventData, EventId, EventStore, Executed, ExpectedVersion,
    FnUpcaster, Loaded, Metadata, Position, RawEvent, RecordedEvent, Repository, Snapshot,
    StoreError, StreamMetadata, Subscription, SubscriptionStream, Upcasters,
};
use flowbed_testkit::thread_safety::{
    debug, error, send, send_future, spawnable, thread_safe, unpin,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
struct Counter {
    value: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Added {
    by: u64,
}

impl DomainEvent for Added {
    fn event_type(&self) -> &'static str {
        "Added"
    }
}

#[derive(Debug, thiserror::Error)]
#[error("rejected")]
struct Rejected;

impl Aggregate for Counter {
    const TYPE: &'static str = "counter";
    type Command = u64;
    type Event = Added;
    type Error = Rejected;

    fn handle(&self, by: u64) -> Result<Vec<Added>, Rejected> {
        Ok(vec![Added { by }])
    }

    fn apply(&mut self, event: &Added) {
        self.value += event.by;
    }
}

/// The values every store exchanges.
#[test]
fn values_are_thread_safe() {
    thread_safe::<Position>();
    thread_safe::<EventId>();
    thread_safe::<Metadata>();
    thread_safe::<EventData>();
    thread_safe::<RecordedEvent>();
    thread_safe::<ExpectedVersion>();
    thread_safe::<AppendResult>();
    thread_safe::<Direction>();
    thread_safe::<StreamMetadata>();
    thread_safe::<Snapshot>();
    thread_safe::<RawEvent>();
    thread_safe::<Upcasters>();
    thread_safe::<Loaded<Counter>>();
    thread_safe::<Executed<Counter>>();
}

/// Errors cross threads and box into `Box<dyn Error + Send + Sync>`.
#[test]
fn errors_are_thread_safe() {
    thread_safe::<AppendError>();
    thread_safe::<StoreError>();
    thread_safe::<BackendError>();
    thread_safe::<DecodeError>();
    thread_safe::<EncodeError>();
    thread_safe::<CommandError<Rejected>>();
    error::<AppendError>();
    error::<StoreError>();
    error::<BackendError>();
    error::<DecodeError>();
    error::<EncodeError>();
    error::<CommandError<Rejected>>();
}

/// An upcaster built from a closure is shared by every reader of the chain.
#[test]
fn upcasters_are_thread_safe() {
    type Migrate = fn(serde_json::Value) -> Result<serde_json::Value, String>;
    thread_safe::<FnUpcaster<Migrate>>();
}

/// Stores, repositories and subscriptions over `S`, and the futures of all their async
/// methods, for one store type.
fn store_and_futures_are_send<S: EventStore + std::fmt::Debug + Unpin>(store: S) {
    thread_safe::<S>();
    thread_safe::<Repository<Counter, S>>();
    thread_safe::<Subscription<S>>();
    // The Stream adapter holds a `dyn Future + Send` (the trait only promises Send
    // futures), so it is Send and Unpin but not Sync, like most streams.
    send::<SubscriptionStream<S>>();
    unpin::<SubscriptionStream<S>>();
    debug::<SubscriptionStream<S>>();

    // Every EventStore method's future is Send (and 'static where it owns its inputs, so
    // tokio::spawn takes it).
    drop(send_future(store.append(
        "s",
        ExpectedVersion::Any,
        Vec::new(),
    )));
    drop(send_future(store.read_stream(
        "s",
        1,
        Direction::Forward,
        10,
    )));
    drop(send_future(store.read_all(Position::START, 10)));
    drop(send_future(store.stream_version("s")));
    drop(send_future(store.head()));
    drop(send_future(store.stream_metadata("s")));
    drop(send_future(
        store.set_stream_metadata("s", StreamMetadata::default()),
    ));
    drop(send_future(store.delete_stream("s", ExpectedVersion::Any)));
    drop(send_future(store.save_snapshot(Snapshot {
        stream_id: "s".into(),
        version: 1,
        schema_version: 1,
        state: Vec::new(),
    })));
    drop(send_future(store.load_snapshot("s")));
    drop(send_future(store.save_checkpoint("sub", Position(1))));
    drop(send_future(store.load_checkpoint("sub")));
    let owned = store.clone();
    drop(spawnable(async move {
        owned.append("s", ExpectedVersion::Any, Vec::new()).await
    }));

    // Subscriptions.
    let mut subscription = Subscription::all(store.clone(), Position::START);
    drop(send_future(subscription.next()));
    drop(send_future(subscription.save_checkpoint("sub")));
    drop(send_future(Subscription::resume(store.clone(), "sub")));
    let moved = Subscription::stream(store.clone(), "s", 0);
    drop(spawnable(async move {
        let mut moved = moved;
        moved.next().await
    }));

    // Repository commands.
    let repository = Repository::<Counter, S>::new(store);
    drop(send_future(repository.load("1")));
    drop(send_future(repository.execute("1", 1)));
    drop(send_future(repository.execute_with_retry("1", 1, 3)));
    drop(send_future(repository.execute_with_metadata(
        "1",
        1,
        Metadata::default(),
        3,
    )));
    drop(spawnable(async move {
        repository.execute_with_retry("1", 1, 3).await.map(|_| ())
    }));
}

#[test]
fn memory_store_and_its_futures_are_send() {
    store_and_futures_are_send(MemoryStore::new());
}

#[cfg(feature = "sqlite")]
#[test]
fn sqlite_store_and_its_futures_are_send() {
    use flowbed_eventsourcing::sqlite::SqliteStore;
    thread_safe::<SqliteStore>();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::Builder::new()
        .prefix("es-sendsync-")
        .tempdir()
        .unwrap();
    let _guard = runtime.enter();
    let store = SqliteStore::open(dir.path().join("events.db")).unwrap();
    store_and_futures_are_send(store);
}

/// The PostgreSQL store is only type-checked here (no server needed: nothing is polled).
#[cfg(feature = "postgres")]
#[test]
fn postgres_store_and_its_futures_are_send() {
    use flowbed_eventsourcing::postgres::PostgresStore;
    fn check<S: EventStore + std::fmt::Debug + Unpin>() -> fn(S) {
        store_and_futures_are_send::<S>
    }
    thread_safe::<PostgresStore>();
    let _ = check::<PostgresStore>();
    drop(send_future(PostgresStore::connect(
        "postgres://postgres@127.0.0.1:5432/test",
        "es_send_sync",
    )));
}
