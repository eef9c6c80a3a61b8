//! Tests of what only the SQLite store has: lock waits instead of `SQLITE_BUSY`, group
//! commit, per-request savepoints, persistence across reopen, several stores on one file,
//! closing and dropping, options, schema versions and corrupt rows. (The shared semantics
//! are checked by the conformance suite and the model test.)
#![cfg(feature = "sqlite")]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use flowbed_eventsourcing::sqlite::{
    MAX_QUEUE_CAPACITY, OpenError, SqliteStats, SqliteStore, Synchronous,
};
use flowbed_eventsourcing::{
    AppendError, AppendResult, Direction, EventData, EventId, EventStore, ExpectedVersion,
    Metadata, Position, Snapshot, StoreError, StreamMetadata, Subscription,
};
use rusqlite::Connection;
use tempfile::TempDir;
use uuid::Uuid;

/// A failure guard for tests that wait on another thread (never a synchronisation).
const GUARD: Duration = Duration::from_secs(120);

fn temp_db() -> (TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("es-sqlite-test-")
        .tempdir()
        .expect("a temporary directory");
    let path = dir.path().join("events.db");
    (dir, path)
}

/// A store that notices a held lock after 1 ms (so `busy_waits` moves quickly).
fn open_quick(path: &Path) -> SqliteStore {
    SqliteStore::builder(path)
        .busy_timeout(Duration::from_millis(1))
        .open()
        .expect("open the store")
}

/// Opens the store at `path` and appends one event `E` to stream `s` (position 1).
async fn open_with_one_event(path: &Path) -> SqliteStore {
    let store = SqliteStore::open(path).unwrap();
    store
        .append("s", ExpectedVersion::Any, vec![event("E")])
        .await
        .unwrap();
    store
}

fn event(event_type: &str) -> EventData {
    EventData::new(event_type, br#"{"n":1}"#.to_vec())
}

fn id(n: u128) -> EventId {
    EventId::from(Uuid::from_u128(n))
}

/// A raw connection to the store's file, as another program would have.
fn raw(path: &Path) -> Connection {
    let conn = Connection::open(path).expect("a raw connection");
    conn.busy_timeout(Duration::from_secs(30)).unwrap();
    conn
}

/// Takes the write lock from a raw connection (and keeps it until `COMMIT`).
fn hold_write_lock(conn: &Connection) {
    conn.execute_batch(
        "BEGIN IMMEDIATE; INSERT INTO checkpoints (subscriber, position) VALUES ('raw', 0) \
         ON CONFLICT (subscriber) DO UPDATE SET position = position + 1;",
    )
    .expect("take the write lock");
}

/// Polls a future once with a no-op waker (it must then be awaited, which registers a
/// real waker). An append's first poll queues its request to the writer.
fn poll_once<F: Future>(future: &mut Pin<Box<F>>) -> Poll<F::Output> {
    future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
}

/// Waits until `condition` holds, yielding; the writer runs on its own thread, so this
/// only waits for it to get there.
async fn until(mut condition: impl FnMut() -> bool) {
    tokio::time::timeout(GUARD, async {
        while !condition() {
            tokio::task::yield_now().await;
            std::thread::yield_now();
        }
    })
    .await
    .expect("the condition never held");
}

/// Asserts the whole log reads as positions `1..=n` with no hole, and returns it.
async fn dense_log(store: &SqliteStore) -> Vec<flowbed_eventsourcing::RecordedEvent> {
    let all = store.read_all(Position::START, usize::MAX).await.unwrap();
    for (index, event) in all.iter().enumerate() {
        assert_eq!(
            event.position,
            Position(index as u64 + 1),
            "a hole in the log"
        );
    }
    assert_eq!(store.head().await.unwrap(), Position(all.len() as u64));
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_wait_while_another_connection_holds_the_write_lock() {
    let (_dir, path) = temp_db();
    let store = open_quick(&path);
    store
        .append("before", ExpectedVersion::NoStream, vec![event("E")])
        .await
        .unwrap();
    let other = raw(&path);
    hold_write_lock(&other);
    let waits_before = store.stats().busy_waits;

    let mut append = Box::pin(store.append("s", ExpectedVersion::NoStream, vec![event("E")]));
    assert!(poll_once(&mut append).is_pending());
    // The writer has met the lock and retried at least once ...
    until(|| store.stats().busy_waits > waits_before + 2).await;
    // ... and the append is still waiting, not failed.
    assert!(poll_once(&mut append).is_pending());
    // Reads are not blocked by the other writer (WAL), and see only committed data.
    assert_eq!(store.read_all(Position::START, 10).await.unwrap().len(), 1);
    assert_eq!(store.load_checkpoint("raw").await.unwrap(), None);

    other.execute_batch("COMMIT").unwrap();
    let result = tokio::time::timeout(GUARD, append).await.unwrap().unwrap();
    assert_eq!(
        result,
        AppendResult {
            version: 1,
            position: Some(Position(2)),
            deduplicated: false
        }
    );
    assert_eq!(
        store.load_checkpoint("raw").await.unwrap(),
        Some(Position(0))
    );
    dense_log(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_writes_wait_for_the_lock_too() {
    let (_dir, path) = temp_db();
    let store = open_quick(&path);
    let other = raw(&path);
    hold_write_lock(&other);
    let waits_before = store.stats().busy_waits;
    let mut metadata = Box::pin(store.set_stream_metadata(
        "s",
        StreamMetadata {
            truncate_before: 3,
            ..StreamMetadata::default()
        },
    ));
    let mut snapshot = Box::pin(store.save_snapshot(Snapshot {
        stream_id: "s".to_owned(),
        version: 2,
        schema_version: 1,
        state: b"{}".to_vec(),
    }));
    let mut checkpoint = Box::pin(store.save_checkpoint("p", Position(9)));
    assert!(poll_once(&mut metadata).is_pending());
    assert!(poll_once(&mut snapshot).is_pending());
    assert!(poll_once(&mut checkpoint).is_pending());
    until(|| store.stats().busy_waits > waits_before + 2).await;
    other.execute_batch("COMMIT").unwrap();
    metadata.await.unwrap();
    snapshot.await.unwrap();
    checkpoint.await.unwrap();
    assert_eq!(store.stream_metadata("s").await.unwrap().truncate_before, 3);
    assert_eq!(store.load_snapshot("s").await.unwrap().unwrap().version, 2);
    assert_eq!(store.load_checkpoint("p").await.unwrap(), Some(Position(9)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_are_group_committed() {
    let (_dir, path) = temp_db();
    let store = open_quick(&path);
    let other = raw(&path);
    hold_write_lock(&other);
    let before = store.stats();

    // 16 appends queued while the writer is held up: they cannot be committed one by one.
    let streams: Vec<String> = (0..16).map(|n| format!("stream-{n}")).collect();
    let mut appends: Vec<_> = streams
        .iter()
        .map(|stream| {
            Box::pin(store.append(
                stream,
                ExpectedVersion::NoStream,
                vec![event("E"), event("F")],
            ))
        })
        .collect();
    for append in &mut appends {
        assert!(poll_once(append).is_pending());
    }
    other.execute_batch("COMMIT").unwrap();
    let results = tokio::time::timeout(GUARD, futures::future::join_all(appends))
        .await
        .unwrap();
    let mut positions: Vec<u64> = results
        .into_iter()
        .map(|result| {
            let result = result.unwrap();
            assert_eq!(result.version, 2);
            result.position.unwrap().0
        })
        .collect();
    positions.sort_unstable();
    assert_eq!(positions, (1..=16).map(|n| n * 2).collect::<Vec<_>>());

    let after = store.stats();
    // The first request may have been taken alone before the others arrived; everything
    // else waited and went into one transaction.
    assert!(
        after.commits - before.commits <= 2,
        "16 queued appends took {} commits",
        after.commits - before.commits
    );
    assert_eq!(after.appends - before.appends, 16);
    assert_eq!(after.events - before.events, 32);
    dense_log(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_request_does_not_affect_the_rest_of_its_batch() {
    let (_dir, path) = temp_db();
    let store = open_quick(&path);
    // Earlier history the batch will collide with.
    let stored = vec![event("Old").with_id(id(1)), event("Old").with_id(id(2))];
    store
        .append("old", ExpectedVersion::NoStream, stored.clone())
        .await
        .unwrap();
    // A driver error on demand: inserting an event of type "poison" aborts the statement.
    let other = raw(&path);
    other
        .execute_batch(
            "CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.event_type = 'poison' \
             BEGIN SELECT RAISE(ABORT, 'poisoned event'); END;",
        )
        .unwrap();
    hold_write_lock(&other);
    let before = store.stats();

    // A plug: the writer takes it and waits for the lock, so everything queued after it
    // lands in the next batch, together.
    let mut plug = Box::pin(store.append("plug", ExpectedVersion::Any, vec![event("Plug")]));
    assert!(poll_once(&mut plug).is_pending());
    until(|| store.stats().busy_waits > before.busy_waits).await;

    let mut fine = Box::pin(store.append("a", ExpectedVersion::NoStream, vec![event("A")]));
    let mut conflict = Box::pin(store.append("a", ExpectedVersion::Exact(5), vec![event("B")]));
    let mut reused = Box::pin(store.append(
        "c",
        ExpectedVersion::Any,
        vec![event("Old").with_id(id(2)), event("C")],
    ));
    let mut poisoned = Box::pin(store.append(
        "d",
        ExpectedVersion::Any,
        vec![event("D"), event("poison"), event("D")],
    ));
    let mut poisoned_chunk = {
        let mut events: Vec<EventData> = (0..40).map(|_| event("D")).collect();
        events[10] = event("poison"); // inside the first 32-row insert
        Box::pin(store.append("d", ExpectedVersion::Any, events))
    };
    let mut after_them = Box::pin(store.append("e", ExpectedVersion::Any, vec![event("E")]));
    let mut replay = Box::pin(store.append("old", ExpectedVersion::NoStream, stored));
    assert!(poll_once(&mut fine).is_pending());
    assert!(poll_once(&mut conflict).is_pending());
    assert!(poll_once(&mut reused).is_pending());
    assert!(poll_once(&mut poisoned).is_pending());
    assert!(poll_once(&mut poisoned_chunk).is_pending());
    assert!(poll_once(&mut after_them).is_pending());
    assert!(poll_once(&mut replay).is_pending());
    other.execute_batch("COMMIT").unwrap();

    let plug = plug.await.unwrap();
    assert_eq!(plug.position, Some(Position(3)));
    let fine = fine.await.unwrap();
    assert_eq!((fine.version, fine.position), (1, Some(Position(4))));
    match conflict.await {
        Err(AppendError::WrongExpectedVersion {
            stream,
            expected,
            actual,
        }) => assert_eq!(
            (stream.as_str(), expected, actual),
            ("a", ExpectedVersion::Exact(5), 1)
        ),
        other => panic!("expected a version conflict, got {other:?}"),
    }
    match reused.await {
        Err(AppendError::IdempotencyConflict { stream, event_id }) => {
            assert_eq!((stream.as_str(), event_id), ("c", id(2)));
        }
        other => panic!("expected an idempotency conflict, got {other:?}"),
    }
    for poisoned in [poisoned.await, poisoned_chunk.await] {
        match poisoned {
            Err(AppendError::Backend(error)) => {
                assert_eq!(error.backend(), "sqlite");
                assert!(error.to_string().contains("poisoned event"), "{error}");
            }
            other => panic!("expected the trigger's error, got {other:?}"),
        }
    }
    // The failed requests gave their positions back: the next one is dense.
    let after_them = after_them.await.unwrap();
    assert_eq!(
        (after_them.version, after_them.position),
        (1, Some(Position(5)))
    );
    let replay = replay.await.unwrap();
    assert_eq!(
        replay,
        AppendResult {
            version: 2,
            position: Some(Position(2)),
            deduplicated: true
        }
    );

    let after = store.stats();
    assert_eq!(
        after.commits - before.commits,
        2,
        "the plug's batch, then the rest"
    );
    assert_eq!(after.appends - before.appends, 4);
    assert_eq!(after.deduplicated - before.deduplicated, 1);
    assert_eq!(after.rejected - before.rejected, 4);
    assert_eq!(store.stream_version("c").await.unwrap(), 0);
    assert_eq!(store.stream_version("d").await.unwrap(), 0);
    let log = dense_log(&store).await;
    let types: Vec<&str> = log.iter().map(|event| event.event_type.as_str()).collect();
    assert_eq!(types, ["Old", "Old", "Plug", "A", "E"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_persists_across_reopen() {
    let (_dir, path) = temp_db();
    let metadata = Metadata::default()
        .correlation_id(Uuid::from_u128(7))
        .caused_by(id(8))
        .with("tenant", "acme");
    let custom = StreamMetadata {
        truncate_before: 2,
        deleted: false,
        custom: Some(serde_json::json!({"owner": "ada", "tags": [1, 2]})),
    };
    let written = {
        let store = SqliteStore::builder(&path)
            .synchronous(Synchronous::Normal)
            .open()
            .unwrap();
        store
            .append(
                "a",
                ExpectedVersion::NoStream,
                vec![
                    event("A1").with_metadata(metadata.clone()).with_id(id(100)),
                    event("A2").with_schema_version(3),
                    event("A3"),
                ],
            )
            .await
            .unwrap();
        store
            .append("gone", ExpectedVersion::Any, vec![event("G")])
            .await
            .unwrap();
        store
            .delete_stream("gone", ExpectedVersion::Exact(1))
            .await
            .unwrap();
        store
            .set_stream_metadata("a", custom.clone())
            .await
            .unwrap();
        store
            .save_snapshot(Snapshot {
                stream_id: "a".to_owned(),
                version: 3,
                schema_version: 2,
                state: b"state".to_vec(),
            })
            .await
            .unwrap();
        store
            .save_checkpoint("projection", Position(4))
            .await
            .unwrap();
        store.read_all(Position::START, 100).await.unwrap()
        // dropped here: the writer is joined, the file closed
    };
    assert_eq!(written.len(), 4);

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(*store.watch_head().borrow(), Position(4));
    assert_eq!(store.head().await.unwrap(), Position(4));
    assert_eq!(store.read_all(Position::START, 100).await.unwrap(), written);
    assert_eq!(written[0].metadata, metadata);
    assert_eq!(written[1].schema_version, 3);
    assert_eq!(store.stream_version("a").await.unwrap(), 3);
    assert_eq!(store.stream_metadata("a").await.unwrap(), custom);
    let visible = store
        .read_stream("a", u64::MAX, Direction::Backward, 10)
        .await
        .unwrap();
    assert_eq!(visible, vec![written[2].clone(), written[1].clone()]);
    assert_eq!(
        store.stream_metadata("gone").await.unwrap(),
        StreamMetadata {
            truncate_before: 2,
            deleted: true,
            custom: None
        }
    );
    assert!(
        store
            .read_stream("gone", 0, Direction::Forward, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.load_snapshot("a").await.unwrap().unwrap().state,
        b"state"
    );
    assert_eq!(
        store.load_checkpoint("projection").await.unwrap(),
        Some(Position(4))
    );
    // Idempotency is for the life of the file, not of a process.
    let again = store
        .append(
            "a",
            ExpectedVersion::NoStream,
            vec![
                written[0].clone().into_data(),
                written[1].clone().into_data(),
                written[2].clone().into_data(),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        again,
        AppendResult {
            version: 3,
            position: Some(Position(3)),
            deduplicated: true
        }
    );
    // And numbering continues.
    let next = store
        .append("gone", ExpectedVersion::Exact(1), vec![event("G2")])
        .await
        .unwrap();
    assert_eq!((next.version, next.position), (2, Some(Position(5))));
    assert!(!store.stream_metadata("gone").await.unwrap().deleted);
}

/// The parts of a recorded event an append carries.
trait IntoData {
    fn into_data(self) -> EventData;
}

impl IntoData for flowbed_eventsourcing::RecordedEvent {
    fn into_data(self) -> EventData {
        EventData::new(self.event_type, self.payload)
            .with_id(self.id)
            .with_schema_version(self.schema_version)
            .with_metadata(self.metadata)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_file_keep_positions_dense() {
    let (_dir, path) = temp_db();
    let first = open_quick(&path);
    let second = open_quick(&path);
    let writers = 8;
    let appends = 25;
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let store = if writer % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        tasks.push(tokio::spawn(async move {
            for n in 0..appends {
                store
                    .append(
                        &format!("w{writer}"),
                        ExpectedVersion::Exact(n * 2),
                        vec![event("X"), event("Y")],
                    )
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        tokio::time::timeout(GUARD, task).await.unwrap().unwrap();
    }
    for store in [&first, &second] {
        let log = dense_log(store).await;
        assert_eq!(log.len() as u64, writers * appends * 2);
        for writer in 0..writers {
            let versions: Vec<u64> = log
                .iter()
                .filter(|event| event.stream_id == format!("w{writer}"))
                .map(|event| event.version)
                .collect();
            assert_eq!(versions, (1..=appends * 2).collect::<Vec<_>>());
        }
    }
    // Each store's head watch knows at least its own commits.
    let total = Position(writers * appends * 2);
    let heads = [*first.watch_head().borrow(), *second.watch_head().borrow()];
    assert!(heads.contains(&total), "{heads:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_sees_another_stores_commits_at_its_poll_interval() {
    let (_dir, path) = temp_db();
    let reader = open_quick(&path);
    let writer = open_quick(&path);
    let mut subscription =
        Subscription::all(reader.clone(), Position::START).poll_interval(Duration::from_millis(5));
    writer
        .append("elsewhere", ExpectedVersion::Any, vec![event("Remote")])
        .await
        .unwrap();
    // The reader's head watch does not move (another store committed) ...
    assert_eq!(*reader.watch_head().borrow(), Position::START);
    // ... but the subscription reads again after its poll interval.
    let seen = tokio::time::timeout(GUARD, subscription.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (seen.event_type.as_str(), seen.position),
        ("Remote", Position(1))
    );
    // The reader's own next commit brings its watch up to date with both.
    reader
        .append("here", ExpectedVersion::Any, vec![event("Local")])
        .await
        .unwrap();
    assert_eq!(*reader.watch_head().borrow(), Position(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_store_refuses_everything() {
    let (_dir, path) = temp_db();
    let store = open_with_one_event(&path).await;
    let clone = store.clone();
    store.close().await;
    store.close().await; // twice is fine

    for handle in [&store, &clone] {
        assert!(matches!(
            handle
                .append("s", ExpectedVersion::Any, vec![event("E")])
                .await,
            Err(AppendError::Closed)
        ));
        assert!(matches!(
            handle
                .set_stream_metadata("s", StreamMetadata::default())
                .await,
            Err(AppendError::Closed)
        ));
        assert!(matches!(
            handle.delete_stream("s", ExpectedVersion::Any).await,
            Err(AppendError::Closed)
        ));
        assert!(matches!(
            handle.save_checkpoint("p", Position(1)).await,
            Err(StoreError::Closed)
        ));
        assert!(matches!(
            handle.read_all(Position::START, 10).await,
            Err(StoreError::Closed)
        ));
        assert!(matches!(handle.head().await, Err(StoreError::Closed)));
    }
    drop(store);
    drop(clone);
    // What was committed before the close is there.
    let reopened = SqliteStore::open(&path).unwrap();
    assert_eq!(reopened.head().await.unwrap(), Position(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_ends_a_wait_for_another_connections_lock() {
    let (_dir, path) = temp_db();
    let store = open_quick(&path);
    let other = raw(&path);
    hold_write_lock(&other);
    let waits_before = store.stats().busy_waits;
    let mut append = Box::pin(store.append("s", ExpectedVersion::Any, vec![event("E")]));
    assert!(poll_once(&mut append).is_pending());
    until(|| store.stats().busy_waits > waits_before).await;
    tokio::time::timeout(GUARD, store.close()).await.unwrap();
    assert!(matches!(append.await, Err(AppendError::Closed)));
    other.execute_batch("COMMIT").unwrap();
    drop(store);
    let reopened = SqliteStore::open(&path).unwrap();
    assert_eq!(reopened.head().await.unwrap(), Position::START);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_store_joins_the_writer_and_closes_the_file() {
    let (_dir, path) = temp_db();
    let store = open_with_one_event(&path).await;
    let clone = store.clone();
    assert_eq!(clone.read_all(Position::START, 10).await.unwrap().len(), 1);
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    assert!(wal.exists(), "an open store has its WAL");

    drop(store);
    // One handle left: the writer still runs.
    clone
        .append("s", ExpectedVersion::Exact(1), vec![event("E")])
        .await
        .unwrap();
    drop(clone);

    // Every connection of the store is closed: the last one checkpointed and removed the
    // WAL, and nobody else holds the file (leaving WAL mode needs that).
    assert!(
        !wal.exists(),
        "the WAL outlived the store (a read connection closed after the writer's)"
    );
    let conn = Connection::open(&path).unwrap();
    conn.busy_timeout(Duration::ZERO).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode = DELETE", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "delete");
    let count: i64 = conn
        .query_row("SELECT count(*) FROM events", [], |row| row.get(0))
        .unwrap();
    assert_eq!(count, 2);
}

#[tokio::test]
async fn invalid_options_are_typed_errors() {
    let (_dir, path) = temp_db();
    let cases: [(&str, OpenError); 6] = [
        (
            "readers",
            SqliteStore::builder(&path).readers(0).open().unwrap_err(),
        ),
        (
            "readers",
            SqliteStore::builder(&path)
                .readers(flowbed_eventsourcing::sqlite::MAX_READERS + 1)
                .open()
                .unwrap_err(),
        ),
        (
            "max_batch_events",
            SqliteStore::builder(&path)
                .max_batch_events(0)
                .open()
                .unwrap_err(),
        ),
        (
            "queue_capacity",
            SqliteStore::builder(&path)
                .queue_capacity(0)
                .open()
                .unwrap_err(),
        ),
        (
            "queue_capacity",
            SqliteStore::builder(&path)
                .queue_capacity(MAX_QUEUE_CAPACITY + 1)
                .open()
                .unwrap_err(),
        ),
        (
            "busy_timeout",
            SqliteStore::builder(&path)
                .busy_timeout(Duration::from_secs(u64::MAX / 4))
                .open()
                .unwrap_err(),
        ),
    ];
    for (expected, error) in cases {
        match &error {
            OpenError::InvalidOption { option, reason } => {
                assert_eq!(*option, expected);
                assert!(!reason.is_empty());
                assert!(error.to_string().contains(expected), "{error}");
            }
            other => panic!("expected an invalid {expected}, got {other:?}"),
        }
        // As the trait's error, it still says what was wrong.
        assert!(StoreError::from(error).to_string().contains(expected));
    }
    assert!(
        !path.exists(),
        "an invalid configuration must not create the file"
    );
    // Valid extremes open.
    let store = SqliteStore::builder(&path)
        .readers(1)
        .max_batch_events(1)
        .queue_capacity(1)
        .busy_timeout(Duration::ZERO)
        .open()
        .unwrap();
    let streams: Vec<String> = (0..8).map(|n| format!("s{n}")).collect();
    let results = futures::future::join_all(streams.iter().map(|stream| {
        store.append(
            stream,
            ExpectedVersion::NoStream,
            vec![event("E"), event("F")],
        )
    }))
    .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(dense_log(&store).await.len(), 16);
}

#[tokio::test]
async fn a_newer_schema_and_a_memory_database_are_refused() {
    let (_dir, path) = temp_db();
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA user_version = 99").unwrap();
    }
    let error = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(error, StoreError::Backend(_)), "{error:?}");
    assert!(error.to_string().contains("newer"), "{error}");

    let error = SqliteStore::open(":memory:").unwrap_err();
    assert!(error.to_string().contains("WAL"), "{error}");
}

#[tokio::test]
async fn the_schema_version_is_recorded() {
    let (_dir, path) = temp_db();
    drop(SqliteStore::open(&path).unwrap());
    let version: i64 = Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, 1);
    // Reopening an up-to-date file changes nothing.
    drop(SqliteStore::open(&path).unwrap());
}

#[tokio::test]
async fn a_corrupt_row_is_reported_not_skipped() {
    let (_dir, path) = temp_db();
    let store = open_with_one_event(&path).await;
    raw(&path)
        .execute(
            "INSERT INTO events VALUES (2, ?1, 's', 2, 'E', 1, x'', 'not json', 0)",
            [&Uuid::from_u128(9).as_bytes()[..]],
        )
        .unwrap();
    raw(&path)
        .execute(
            "INSERT INTO events VALUES (3, x'0102', 't', 1, 'E', 1, x'', x'', 0)",
            [],
        )
        .unwrap();
    match store.read_all(Position::START, 10).await {
        Err(StoreError::Corrupt { location, reason }) => {
            assert_eq!(location, "global position 2");
            assert!(reason.contains("metadata"), "{reason}");
        }
        other => panic!("expected a corrupt row, got {other:?}"),
    }
    match store.read_stream("t", 0, Direction::Forward, 10).await {
        Err(StoreError::Corrupt { location, reason }) => {
            assert_eq!(location, "global position 3");
            assert!(reason.contains("event_id"), "{reason}");
        }
        other => panic!("expected a corrupt row, got {other:?}"),
    }
    // The healthy row before it still reads.
    assert_eq!(store.read_all(Position::START, 1).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_reads_than_connections_share_the_pool() {
    let (_dir, path) = temp_db();
    let store = SqliteStore::builder(&path).readers(2).open().unwrap();
    store
        .append(
            "s",
            ExpectedVersion::Any,
            (0..10).map(|_| event("E")).collect(),
        )
        .await
        .unwrap();
    let reads = futures::future::join_all((0..64u64).map(|n| {
        let store = store.clone();
        async move {
            if n % 2 == 0 {
                store
                    .read_all(Position(n % 10), 100)
                    .await
                    .map(|events| events.len() as u64)
            } else {
                store
                    .read_stream("s", n % 10, Direction::Backward, 100)
                    .await
                    .map(|events| events.len() as u64)
            }
        }
    }))
    .await;
    for (n, read) in reads.into_iter().enumerate() {
        let n = n as u64;
        let expected = if n % 2 == 0 { 10 - n % 10 } else { n % 10 };
        assert_eq!(read.unwrap(), expected, "read {n}");
    }
}

#[tokio::test]
async fn stats_count_this_stores_work() {
    let (_dir, path) = temp_db();
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.stats(), SqliteStats::default());
    let first = event("E");
    store
        .append(
            "s",
            ExpectedVersion::NoStream,
            vec![first.clone(), event("F")],
        )
        .await
        .unwrap();
    store
        .append("elsewhere", ExpectedVersion::Any, vec![first])
        .await
        .unwrap_err(); // stored in another stream: an idempotency conflict
    store
        .append("s", ExpectedVersion::NoStream, vec![event("G")])
        .await
        .unwrap_err();
    store
        .append("s", ExpectedVersion::Exact(2), vec![])
        .await
        .unwrap();
    let stats = store.stats();
    assert_eq!(stats.appends, 2);
    assert_eq!(stats.events, 2);
    assert_eq!(stats.rejected, 2);
    assert_eq!(stats.deduplicated, 0);
    assert_eq!(stats.commits, 4);
    assert!(format!("{store:?}").contains("SqliteStore"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_run_while_the_store_is_open() {
    let (_dir, path) = temp_db();
    let store = SqliteStore::builder(&path)
        .synchronous(Synchronous::Normal)
        .open()
        .unwrap();
    let initial = std::fs::metadata(&path).unwrap().len();
    // About 3000 WAL pages: the checkpointer is asked to run at least twice.
    for batch in 0..30 {
        let events = (0..100)
            .map(|_| EventData::new("Big", vec![b'x'; 4000]))
            .collect();
        store
            .append(&format!("big-{batch}"), ExpectedVersion::NoStream, events)
            .await
            .unwrap();
    }
    // The database file itself grows while the store is open: pages were copied out of
    // the WAL by a checkpoint, without closing the store.
    until(|| std::fs::metadata(&path).unwrap().len() > initial + 4 * 1024 * 1024).await;
    let log = dense_log(&store).await;
    assert_eq!(log.len(), 3000);
    assert!(log.iter().all(|event| event.payload.len() == 4000));
}
