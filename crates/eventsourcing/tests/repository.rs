//! `Repository` semantics on the memory store: loading (new aggregates, long streams,
//! snapshots and when they are ignored), executing (state, events, positions, rejection,
//! commands that decide nothing), optimistic concurrency (conflicts, retries that re-read
//! only the tail, exhausted retries, 16 concurrent executors with no lost update),
//! snapshot policy, metadata on events, and a failing snapshot save.
//!
//! A `Recording` store (the shared `Hooked` wrapper around a `MemoryStore`) records the
//! `from` of every `read_stream` call; it can also slip a competing append in front of the
//! next appends (to force a conflict at a known point) and fail snapshot saves.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use flowbed_eventsourcing::memory::MemoryStore;
use flowbed_eventsourcing::{
    Aggregate, AppendError, BackendError, CommandError, Direction, DomainEvent, EventData,
    EventStore, ExpectedVersion, Metadata, Position, Repository, Snapshot, StoreError,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use common::hooked::{Hooked, StoreHooks};

// ---------------------------------------------------------------------------------------
// The aggregate: a counter that remembers which command tokens it applied.
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Tally {
    count: u64,
    tokens: Vec<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Counted {
    token: u32,
}

impl DomainEvent for Counted {
    fn event_type(&self) -> &'static str {
        "Counted"
    }
}

#[derive(Clone, Debug)]
enum Command {
    /// One event with this token.
    Count(u32),
    /// `n` events with this token.
    CountMany(u32, usize),
    /// Decides that nothing happens (no events).
    Nothing,
    /// Refused.
    Refuse,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("refused")]
struct Refused;

impl Aggregate for Tally {
    const TYPE: &'static str = "tally";
    type Command = Command;
    type Event = Counted;
    type Error = Refused;

    fn handle(&self, command: Command) -> Result<Vec<Counted>, Refused> {
        match command {
            Command::Count(token) => Ok(vec![Counted { token }]),
            Command::CountMany(token, n) => Ok(vec![Counted { token }; n]),
            Command::Nothing => Ok(Vec::new()),
            Command::Refuse => Err(Refused),
        }
    }

    fn apply(&mut self, event: &Counted) {
        self.count += 1;
        self.tokens.push(event.token);
    }
}

/// The same state with another snapshot encoding.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct TallyV2(Tally);

impl Aggregate for TallyV2 {
    const TYPE: &'static str = "tally";
    const SNAPSHOT_VERSION: u32 = 2;
    type Command = Command;
    type Event = Counted;
    type Error = Refused;

    fn handle(&self, command: Command) -> Result<Vec<Counted>, Refused> {
        self.0.handle(command)
    }

    fn apply(&mut self, event: &Counted) {
        self.0.apply(event);
    }
}

fn tally(tokens: impl IntoIterator<Item = u32>) -> Tally {
    let tokens: Vec<u32> = tokens.into_iter().collect();
    Tally {
        count: tokens.len() as u64,
        tokens,
    }
}

// ---------------------------------------------------------------------------------------
// The recording wrapper store.
// ---------------------------------------------------------------------------------------

/// What a [`Recording`] store saw and what it is told to do.
#[derive(Debug, Default)]
struct Record {
    /// `from` of every `read_stream` call, in order.
    read_from: Vec<u64>,
    /// How many of the next appends get a competing event (token 9999) appended first.
    interfere: usize,
    /// Appends that reached the wrapper (competing ones not counted).
    appends: usize,
    /// Snapshot saves fail while set.
    fail_snapshots: bool,
}

/// The hooks of a [`Recording`] store: its [`Record`], behind a lock.
#[derive(Debug, Default)]
struct Recorder(Mutex<Record>);

/// A `MemoryStore` that keeps a [`Record`] of its calls.
type Recording = Hooked<MemoryStore, Recorder>;

const COMPETITOR: u32 = 9999;

impl StoreHooks for Recorder {
    fn before_append(&self, _events: &[EventData]) -> Option<EventData> {
        let mut record = self.0.lock().unwrap();
        record.appends += 1;
        let interfere = record.interfere > 0;
        record.interfere = record.interfere.saturating_sub(1);
        interfere.then(|| EventData::from_event(&Counted { token: COMPETITOR }).unwrap())
    }

    fn on_read_stream(&self, from: u64) {
        self.0.lock().unwrap().read_from.push(from);
    }

    fn save_snapshot_error(&self, _snapshot: &Snapshot) -> Option<StoreError> {
        self.0.lock().unwrap().fail_snapshots.then(|| {
            StoreError::Backend(BackendError::new(
                "memory",
                "save_snapshot",
                "disk full (injected)",
            ))
        })
    }
}

impl Recording {
    /// The record, locked.
    fn record(&self) -> std::sync::MutexGuard<'_, Record> {
        self.hooks().0.lock().unwrap()
    }

    /// Takes the recorded `read_stream` starts.
    fn take_reads(&self) -> Vec<u64> {
        std::mem::take(&mut self.record().read_from)
    }
}

/// Appends `n` events with tokens `first..first + n` through the repository.
async fn count_up<S: EventStore>(repository: &Repository<Tally, S>, id: &str, first: u32, n: u32) {
    for token in first..first + n {
        repository.execute(id, Command::Count(token)).await.unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// Loading and executing.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_new_aggregate_loads_as_default_at_version_zero() {
    let store = MemoryStore::new();
    let repository = Repository::<Tally, _>::new(store.clone());
    let loaded = repository.load("nobody").await.unwrap();
    assert_eq!((loaded.state, loaded.version), (Tally::default(), 0));
    assert_eq!(Repository::<Tally, MemoryStore>::stream_id("7"), "tally-7");
    assert!(store.is_empty());
}

#[tokio::test]
async fn execute_appends_the_events_and_returns_the_new_state() {
    let store = MemoryStore::new();
    let repository = Repository::<Tally, _>::new(store.clone());

    let first = repository.execute("1", Command::Count(10)).await.unwrap();
    assert_eq!(first.events, vec![Counted { token: 10 }]);
    assert_eq!(
        (first.loaded.state.clone(), first.loaded.version),
        (tally([10]), 1)
    );
    assert_eq!((first.position, first.retries), (Some(Position(1)), 0));
    assert!(first.snapshot_error.is_none());

    // Another aggregate in between: positions are global, versions per stream.
    repository.execute("2", Command::Count(20)).await.unwrap();
    let second = repository
        .execute("1", Command::CountMany(11, 2))
        .await
        .unwrap();
    assert_eq!(
        (second.loaded.state.clone(), second.loaded.version),
        (tally([10, 11, 11]), 3)
    );
    assert_eq!(second.position, Some(Position(4)));
    assert_eq!(repository.load("1").await.unwrap(), second.loaded);

    let stored = store
        .read_stream("tally-1", 1, Direction::Forward, 10)
        .await
        .unwrap();
    let summary: Vec<(u64, u64, &str, u32)> = stored
        .iter()
        .map(|e| {
            (
                e.version,
                e.position.0,
                e.event_type.as_str(),
                e.schema_version,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, 1, "Counted", 1),
            (2, 3, "Counted", 1),
            (3, 4, "Counted", 1)
        ]
    );
    let payload: Counted = serde_json::from_slice(&stored[1].payload).unwrap();
    assert_eq!(payload, Counted { token: 11 });
}

#[tokio::test]
async fn a_rejected_command_writes_nothing() {
    let store = MemoryStore::new();
    let repository = Repository::<Tally, _>::new(store.clone());
    repository.execute("1", Command::Count(1)).await.unwrap();

    let error = repository.execute("1", Command::Refuse).await.unwrap_err();
    assert!(
        matches!(error, CommandError::Rejected(Refused)),
        "{error:?}"
    );
    assert!(!error.is_conflict());
    let error = repository
        .execute_with_retry("1", Command::Refuse, 5)
        .await
        .unwrap_err();
    assert!(
        matches!(error, CommandError::Rejected(Refused)),
        "{error:?}"
    );
    assert_eq!(store.head().await.unwrap(), Position(1));
    assert_eq!(store.stream_version("tally-1").await.unwrap(), 1);
}

#[tokio::test]
async fn a_command_that_decides_nothing_appends_nothing() {
    let store = MemoryStore::new();
    let repository = Repository::<Tally, _>::new(store.clone());
    repository.execute("1", Command::Count(1)).await.unwrap();
    let executed = repository.execute("1", Command::Nothing).await.unwrap();
    assert!(executed.events.is_empty());
    assert_eq!((executed.loaded.version, executed.position), (1, None));
    assert_eq!(store.head().await.unwrap(), Position(1));
}

#[tokio::test]
async fn a_long_stream_loads_in_pages() {
    let store = Recording::new(MemoryStore::new());
    let events: Vec<EventData> = (0..2500)
        .map(|token| EventData::from_event(&Counted { token }).unwrap())
        .collect();
    store
        .inner()
        .append("tally-long", ExpectedVersion::NoStream, events)
        .await
        .unwrap();
    let repository = Repository::<Tally, _>::new(store.clone());
    let loaded = repository.load("long").await.unwrap();
    assert_eq!((loaded.state, loaded.version), (tally(0..2500), 2500));
    // Tail reads of 1024: the last one comes back short.
    assert_eq!(store.take_reads(), vec![1, 1025, 2049]);
}

// ---------------------------------------------------------------------------------------
// Optimistic concurrency.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn execute_without_retry_reports_the_conflict_and_writes_nothing() {
    let store = Recording::new(MemoryStore::new());
    let repository = Repository::<Tally, _>::new(store.clone());
    count_up(&repository, "1", 0, 2).await;
    store.record().interfere = 1;

    let error = repository
        .execute("1", Command::Count(7))
        .await
        .unwrap_err();
    assert!(error.is_conflict(), "{error:?}");
    assert!(
        matches!(
            error,
            CommandError::Append(AppendError::WrongExpectedVersion {
                expected: ExpectedVersion::Exact(2),
                actual: 3,
                ..
            })
        ),
        "{error:?}"
    );
    let loaded = repository.load("1").await.unwrap();
    assert_eq!(loaded.state, tally([0, 1, COMPETITOR]));
}

#[tokio::test]
async fn a_retry_rereads_only_the_tail() {
    let store = Recording::new(MemoryStore::new());
    let repository = Repository::<Tally, _>::new(store.clone());
    count_up(&repository, "1", 0, 5).await;
    store.take_reads();

    // One competing append: load from 1, conflict at Exact(5), re-read from 6 (only the
    // competitor), append at Exact(6).
    store.record().interfere = 1;
    let executed = repository
        .execute_with_retry("1", Command::Count(5), 3)
        .await
        .unwrap();
    assert_eq!(executed.retries, 1);
    assert_eq!(executed.loaded.version, 7);
    assert_eq!(executed.loaded.state, tally([0, 1, 2, 3, 4, COMPETITOR, 5]));
    assert_eq!(store.take_reads(), vec![1, 6]);

    // Two in a row: each re-read starts right after what is already folded in.
    store.record().interfere = 2;
    let executed = repository
        .execute_with_retry("1", Command::Count(6), 3)
        .await
        .unwrap();
    assert_eq!((executed.retries, executed.loaded.version), (2, 10));
    assert_eq!(store.take_reads(), vec![1, 8, 9]);
    assert_eq!(repository.load("1").await.unwrap(), executed.loaded);
}

#[tokio::test]
async fn a_retry_after_a_snapshot_load_rereads_only_the_tail() {
    let store = Recording::new(MemoryStore::new());
    let repository = Repository::<Tally, _>::new(store.clone()).snapshot_every(4);
    count_up(&repository, "1", 0, 5).await; // snapshot at 4
    store.take_reads();

    store.record().interfere = 1;
    let executed = repository
        .execute_with_retry("1", Command::Count(5), 1)
        .await
        .unwrap();
    assert_eq!(executed.loaded.state, tally([0, 1, 2, 3, 4, COMPETITOR, 5]));
    // Snapshot at 4: read from 5; after the conflict from 6. Never from 1.
    assert_eq!(store.take_reads(), vec![5, 6]);
}

#[tokio::test]
async fn exhausted_retries_end_in_a_conflict() {
    let store = Recording::new(MemoryStore::new());
    let repository = Repository::<Tally, _>::new(store.clone());
    count_up(&repository, "1", 0, 5).await;
    store.record().appends = 0;

    store.record().interfere = 3;
    let error = repository
        .execute_with_retry("1", Command::Count(5), 2)
        .await
        .unwrap_err();
    assert!(error.is_conflict(), "{error:?}");
    // The first try plus two retries, and none of them wrote the command's event.
    assert_eq!(store.record().appends, 3);
    let loaded = repository.load("1").await.unwrap();
    assert_eq!(
        loaded.state,
        tally([0, 1, 2, 3, 4, COMPETITOR, COMPETITOR, COMPETITOR])
    );

    // max_retries = 0 behaves like execute.
    store.record().interfere = 1;
    let error = repository
        .execute_with_retry("1", Command::Count(5), 0)
        .await
        .unwrap_err();
    assert!(error.is_conflict(), "{error:?}");
}

/// 16 tasks × 20 commands on one aggregate, on a multi-threaded runtime: every command
/// either succeeds exactly once or reports a conflict; the final state holds exactly the
/// successful commands' tokens (no lost update, nothing applied twice), one event each.
async fn concurrent_executors(snapshot_every: u64) {
    const TASKS: u32 = 16;
    const COMMANDS: u32 = 20;
    let store = MemoryStore::new();
    let repository = Repository::<Tally, _>::new(store.clone()).snapshot_every(snapshot_every);
    let barrier = Arc::new(tokio::sync::Barrier::new(TASKS as usize));
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let repository = repository.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let mut succeeded = Vec::new();
                let mut retries = 0;
                for i in 0..COMMANDS {
                    let token = task * 1000 + i;
                    match repository
                        .execute_with_retry("shared", Command::Count(token), 64)
                        .await
                    {
                        Ok(executed) => {
                            retries += executed.retries;
                            // The returned state includes this command's event, last.
                            assert_eq!(executed.loaded.state.tokens.last(), Some(&token));
                            assert_eq!(executed.loaded.state.count, executed.loaded.version);
                            succeeded.push(token);
                        }
                        Err(error) => assert!(error.is_conflict(), "{error:?}"),
                    }
                    tokio::task::yield_now().await;
                }
                (succeeded, retries)
            })
        })
        .collect();
    let mut succeeded = BTreeSet::new();
    for task in tasks {
        let (tokens, _retries) = task.await.unwrap();
        succeeded.extend(tokens);
    }
    assert!(!succeeded.is_empty());

    let loaded = repository.load("shared").await.unwrap();
    let applied: BTreeSet<u32> = loaded.state.tokens.iter().copied().collect();
    assert_eq!(
        loaded.state.tokens.len(),
        applied.len(),
        "a command was applied twice"
    );
    assert_eq!(applied, succeeded, "lost or phantom updates");
    assert_eq!(loaded.state.count, succeeded.len() as u64);
    assert_eq!(loaded.version, succeeded.len() as u64);
    assert_eq!(
        store.head().await.unwrap(),
        Position(succeeded.len() as u64)
    );
    // A load from scratch agrees with the snapshot-based one.
    let fresh = Repository::<Tally, _>::new(store.clone())
        .load("shared")
        .await
        .unwrap();
    assert_eq!(fresh, loaded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_executors_lose_no_update() {
    concurrent_executors(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_executors_with_snapshots_lose_no_update() {
    concurrent_executors(3).await;
}

// ---------------------------------------------------------------------------------------
// Snapshots.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn snapshots_are_written_when_a_command_crosses_a_multiple() {
    let store = MemoryStore::new();
    let repository = Repository::<Tally, _>::new(store.clone()).snapshot_every(3);
    let mut expected_snapshot = None;
    for token in 0..7u32 {
        let executed = repository
            .execute("1", Command::Count(token))
            .await
            .unwrap();
        let version = executed.loaded.version;
        if version % 3 == 0 {
            expected_snapshot = Some((version, executed.loaded.state.clone()));
        }
        let snapshot = store.load_snapshot("tally-1").await.unwrap();
        let snapshot = snapshot.map(|s| {
            assert_eq!((s.stream_id.as_str(), s.schema_version), ("tally-1", 1));
            (
                s.version,
                serde_json::from_slice::<Tally>(&s.state).unwrap(),
            )
        });
        assert_eq!(snapshot, expected_snapshot, "after version {version}");
    }
    // 7 → 9 lands on a multiple; 9 → 13 crosses 12: snapshot at the command's end.
    for (events, snapshot_at) in [(2usize, 9u64), (4, 13)] {
        let executed = repository
            .execute("1", Command::CountMany(100, events))
            .await
            .unwrap();
        assert_eq!(executed.loaded.version, snapshot_at);
        let snapshot = store.load_snapshot("tally-1").await.unwrap().unwrap();
        assert_eq!(snapshot.version, snapshot_at);
        assert_eq!(
            serde_json::from_slice::<Tally>(&snapshot.state).unwrap(),
            executed.loaded.state
        );
    }
    // 13 → 14 crosses nothing.
    repository.execute("1", Command::Count(1)).await.unwrap();
    assert_eq!(
        store
            .load_snapshot("tally-1")
            .await
            .unwrap()
            .unwrap()
            .version,
        13
    );
}

#[tokio::test]
async fn load_starts_from_the_snapshot() {
    let store = Recording::new(MemoryStore::new());
    let repository = Repository::<Tally, _>::new(store.clone()).snapshot_every(4);
    count_up(&repository, "1", 0, 6).await;
    store.take_reads();

    let loaded = repository.load("1").await.unwrap();
    assert_eq!((loaded.state, loaded.version), (tally(0..6), 6));
    assert_eq!(store.take_reads(), vec![5]);

    // The snapshot really is the starting point: a planted one with a state no event
    // sequence produces comes back, plus the tail after it.
    let planted = tally([42, 42, 42, 42]);
    store
        .save_snapshot(Snapshot {
            stream_id: "tally-1".into(),
            version: 5,
            schema_version: 1,
            state: serde_json::to_vec(&planted).unwrap(),
        })
        .await
        .unwrap();
    let loaded = repository.load("1").await.unwrap();
    assert_eq!(
        (loaded.state, loaded.version),
        (tally([42, 42, 42, 42, 5]), 6)
    );
    assert_eq!(store.take_reads(), vec![6]);

    // A repository without a snapshot policy ignores snapshots.
    let plain = Repository::<Tally, _>::new(store.clone());
    assert_eq!(plain.load("1").await.unwrap().state, tally(0..6));
    assert_eq!(store.take_reads(), vec![1]);
}

#[tokio::test]
async fn a_snapshot_of_another_encoding_is_ignored() {
    let store = Recording::new(MemoryStore::new());
    let repository = Repository::<Tally, _>::new(store.clone()).snapshot_every(4);
    count_up(&repository, "1", 0, 5).await;
    // A newer release (snapshot version 2) snapshotted a different state at version 5.
    let newer = Repository::<TallyV2, _>::new(store.clone()).snapshot_every(1);
    newer.execute("1", Command::Count(5)).await.unwrap();
    let stored = store.load_snapshot("tally-1").await.unwrap().unwrap();
    assert_eq!((stored.version, stored.schema_version), (6, 2));
    store.take_reads();

    let loaded = repository.load("1").await.unwrap();
    assert_eq!((loaded.state, loaded.version), (tally(0..6), 6));
    assert_eq!(
        store.take_reads(),
        vec![1],
        "the v2 snapshot must not be used"
    );
}

#[tokio::test]
async fn a_corrupt_snapshot_is_ignored() {
    let store = Recording::new(MemoryStore::new());
    let repository = Repository::<Tally, _>::new(store.clone()).snapshot_every(100);
    count_up(&repository, "1", 0, 3).await;
    for state in [b"not json".to_vec(), br#"{"count":"three"}"#.to_vec()] {
        store
            .inner()
            .save_snapshot(Snapshot {
                stream_id: "tally-1".into(),
                version: 3,
                schema_version: 1,
                state,
            })
            .await
            .unwrap();
        store.take_reads();
        let loaded = repository.load("1").await.unwrap();
        assert_eq!((loaded.state, loaded.version), (tally(0..3), 3));
        assert_eq!(store.take_reads(), vec![1]);
    }
}

#[tokio::test]
async fn a_failed_snapshot_save_does_not_fail_the_command() {
    let store = Recording::new(MemoryStore::new());
    let repository = Repository::<Tally, _>::new(store.clone()).snapshot_every(2);
    repository.execute("1", Command::Count(0)).await.unwrap();
    store.record().fail_snapshots = true;
    let executed = repository.execute("1", Command::Count(1)).await.unwrap();
    assert_eq!(executed.loaded.version, 2);
    let error = executed
        .snapshot_error
        .expect("the injected snapshot failure");
    assert!(matches!(error, StoreError::Backend(ref e) if e.operation() == "save_snapshot"));
    assert!(store.load_snapshot("tally-1").await.unwrap().is_none());
    // The events are stored; the next load just reads them all.
    assert_eq!(repository.load("1").await.unwrap().state, tally([0, 1]));
}

// ---------------------------------------------------------------------------------------
// Metadata.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn metadata_goes_on_every_event_of_the_command() {
    let store = MemoryStore::new();
    let repository = Repository::<Tally, _>::new(store.clone());
    let correlation = Uuid::now_v7();
    let cause = repository.execute("1", Command::Count(0)).await.unwrap();
    let cause_id = store.read_all(Position::START, 1).await.unwrap()[0].id;
    let metadata = Metadata::default()
        .correlation_id(correlation)
        .caused_by(cause_id)
        .with("user", "ada");
    let executed = repository
        .execute_with_metadata("1", Command::CountMany(1, 2), metadata.clone(), 3)
        .await
        .unwrap();
    assert_eq!(executed.loaded.version, cause.loaded.version + 2);
    let events = store
        .read_stream("tally-1", 2, Direction::Forward, 10)
        .await
        .unwrap();
    assert_eq!(events.len(), 2);
    for event in &events {
        assert_eq!(event.metadata, metadata);
        assert_eq!(event.metadata.causation_id, Some(cause_id.as_uuid()));
    }
    // Commands without metadata store none.
    let first = store
        .read_stream("tally-1", 1, Direction::Forward, 1)
        .await
        .unwrap();
    assert!(first[0].metadata.is_empty());
}

// ---------------------------------------------------------------------------------------
// Soft-deleted aggregates.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_soft_deleted_aggregate_can_be_recreated() {
    let store = MemoryStore::new();
    let repository = Repository::<Tally, _>::new(store.clone());
    count_up(&repository, "1", 0, 3).await;
    store
        .delete_stream("tally-1", ExpectedVersion::Exact(3))
        .await
        .unwrap();

    // The store's rule: the stream keeps its version and the next append continues from
    // it, showing only the new events. The repository should then start the aggregate
    // afresh and append at version 4; instead it loads version 0, appends with Exact(0),
    // and every retry re-reads the (hidden) tail, finds nothing and conflicts again.
    let loaded = repository.load("1").await.unwrap();
    assert_eq!(loaded.state, Tally::default());
    let executed = repository
        .execute_with_retry("1", Command::Count(7), 3)
        .await
        .unwrap();
    assert_eq!(
        (executed.loaded.state, executed.loaded.version),
        (tally([7]), 4)
    );
}
