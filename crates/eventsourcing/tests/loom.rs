//! loom models of the memory store's lock protocol: an append checks the expected version
//! and idempotency and writes under one write lock, readers copy out under a read lock.
//! `src/sync.rs` swaps the std locks for loom's under `--cfg flowbed_loom`, so loom explores
//! every interleaving of those lock acquisitions.
//!
//! Run with:
//! `RUSTFLAGS="--cfg flowbed_loom" LOOM_MAX_PREEMPTIONS=3 CARGO_TARGET_DIR=/work/target-loom cargo test --release -p flowbed-eventsourcing --test loom`
//!
//! The head watch (`tokio::sync::watch`) is not loom-aware; the models never wait on it.

#![cfg(flowbed_loom)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering as StdOrdering};
use std::time::Instant;

use flowbed_eventsourcing::memory::MemoryStore;
use flowbed_eventsourcing::{
    AppendError, AppendResult, Direction, EventData, EventId, EventStore, ExpectedVersion,
    Position, RecordedEvent, StreamMetadata,
};
use loom::future::block_on;
use loom::thread;
use uuid::Uuid;

/// Runs `body` under loom with the preemption bound from `LOOM_MAX_PREEMPTIONS` (3 if
/// unset), and reports how many interleavings it explored and how long that took. `body`
/// names the outcome of each interleaving (who won, what a reader saw); the set of
/// outcomes seen must be exactly `outcomes`, so a model that never reaches one of the
/// races it is about fails instead of passing vacuously.
fn model(name: &str, outcomes: &[&str], body: impl Fn() -> String + Send + Sync + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    let bound = builder.preemption_bound;
    let runs = std::sync::Arc::new(StdAtomicUsize::new(0));
    let seen = std::sync::Arc::new(std::sync::Mutex::new(BTreeSet::new()));
    let (counter, record) = (runs.clone(), seen.clone());
    let start = Instant::now();
    builder.check(move || {
        counter.fetch_add(1, StdOrdering::Relaxed);
        let outcome = body();
        record.lock().unwrap().insert(outcome);
    });
    eprintln!(
        "loom {name}: {} interleavings in {:.2?} (preemption bound {bound:?})",
        runs.load(StdOrdering::Relaxed),
        start.elapsed(),
    );
    let seen = seen.lock().unwrap();
    let expected: BTreeSet<String> = outcomes.iter().map(|o| o.to_string()).collect();
    assert_eq!(*seen, expected, "outcomes explored by {name}");
}

/// An event with a fixed id (`n`), so the models stay deterministic.
fn event(n: u128) -> EventData {
    EventData::new("E", n.to_string().into_bytes()).with_id(EventId::from(Uuid::from_u128(n)))
}

fn ids(events: &[RecordedEvent]) -> Vec<u128> {
    events
        .iter()
        .map(|event| event.id.as_uuid().as_u128())
        .collect()
}

/// Two writers both expecting an empty stream: exactly one wins, the other is told the
/// stream is at version 1, and only the winner's event is stored.
#[test]
fn concurrent_exact_appends_have_one_winner() {
    model(
        "concurrent_exact_appends_have_one_winner",
        &["writer 1 won", "writer 2 won"],
        || {
            let store = MemoryStore::new();
            let other = store.clone();
            let racer = thread::spawn(move || {
                block_on(other.append("s", ExpectedVersion::Exact(0), vec![event(1)]))
            });
            let mine = block_on(store.append("s", ExpectedVersion::Exact(0), vec![event(2)]));
            let theirs = racer.join().unwrap();

            let won = AppendResult {
                version: 1,
                position: Some(Position(1)),
                deduplicated: false,
            };
            let (winner, loser) = match (&mine, &theirs) {
                (Ok(result), Err(error)) => {
                    assert_eq!(*result, won);
                    (2, error)
                }
                (Err(error), Ok(result)) => {
                    assert_eq!(*result, won);
                    (1, error)
                }
                other => panic!("expected exactly one winner, got {other:?}"),
            };
            assert!(
                matches!(
                    loser,
                    AppendError::WrongExpectedVersion {
                        expected: ExpectedVersion::Exact(0),
                        actual: 1,
                        ..
                    }
                ),
                "{loser:?}"
            );
            let all = block_on(store.read_all(Position::START, 10)).unwrap();
            assert_eq!(ids(&all), vec![winner]);
            assert_eq!(block_on(store.stream_version("s")).unwrap(), 1);
            format!("writer {winner} won")
        },
    );
}

/// Two writers re-sending the same batch (a retried request): one writes it, the other is
/// answered as a replay with the same version and position, and the log holds it once.
#[test]
fn concurrent_replays_write_once() {
    model(
        "concurrent_replays_write_once",
        &["main wrote", "spawned wrote"],
        || {
            let store = MemoryStore::new();
            let other = store.clone();
            let batch = vec![event(1), event(2)];
            let sent = batch.clone();
            let racer =
                thread::spawn(move || block_on(other.append("s", ExpectedVersion::NoStream, sent)));
            let mine = block_on(store.append("s", ExpectedVersion::NoStream, batch)).unwrap();
            let theirs = racer.join().unwrap().unwrap();

            assert_eq!((mine.version, mine.position), (2, Some(Position(2))));
            assert_eq!((theirs.version, theirs.position), (2, Some(Position(2))));
            assert!(
                mine.deduplicated != theirs.deduplicated,
                "exactly one of {mine:?} and {theirs:?} must be the replay"
            );
            let all = block_on(store.read_all(Position::START, 10)).unwrap();
            assert_eq!(ids(&all), vec![1, 2]);
            assert_eq!(store.len(), 2);
            if theirs.deduplicated {
                "main wrote"
            } else {
                "spawned wrote"
            }
            .to_owned()
        },
    );
}

/// A reader running next to two appenders (one two-event batch each, to different
/// streams) always sees a dense prefix of the log with whole batches, and a stream read
/// that agrees with it.
#[test]
fn reader_sees_a_dense_prefix_and_a_consistent_stream() {
    model(
        "reader_sees_a_dense_prefix_and_a_consistent_stream",
        &[
            "log 0, stream a 0",
            "log 0, stream a 2",
            "log 2, stream a 0",
            "log 2, stream a 2",
            "log 4, stream a 2",
        ],
        || {
            let store = MemoryStore::new();
            let writers: Vec<_> = [("a", 1u128), ("b", 3u128)]
                .into_iter()
                .map(|(stream, first)| {
                    let store = store.clone();
                    thread::spawn(move || {
                        block_on(store.append(
                            stream,
                            ExpectedVersion::NoStream,
                            vec![event(first), event(first + 1)],
                        ))
                        .unwrap()
                    })
                })
                .collect();

            let all = block_on(store.read_all(Position::START, 10)).unwrap();
            let stream_a = block_on(store.read_stream("a", 1, Direction::Forward, 10)).unwrap();

            // Dense positions from 1, and whole batches only.
            let positions: Vec<u64> = all.iter().map(|event| event.position.0).collect();
            assert_eq!(positions, (1..=all.len() as u64).collect::<Vec<_>>());
            assert!(
                all.len() % 2 == 0,
                "a batch was seen in part: {:?}",
                ids(&all)
            );
            for pair in all.chunks(2) {
                assert_eq!(pair[0].stream_id, pair[1].stream_id);
                assert_eq!((pair[0].version, pair[1].version), (1, 2));
            }
            // The stream read came later: it holds everything of "a" the log read showed,
            // with the same positions, and is itself whole.
            let a_in_log: Vec<&RecordedEvent> =
                all.iter().filter(|event| event.stream_id == "a").collect();
            assert!(
                stream_a.is_empty() || stream_a.len() == 2,
                "{:?}",
                ids(&stream_a)
            );
            assert!(a_in_log.len() <= stream_a.len());
            for (logged, streamed) in a_in_log.iter().zip(&stream_a) {
                assert_eq!(*logged, streamed);
            }

            let results: Vec<AppendResult> = writers
                .into_iter()
                .map(|writer| writer.join().unwrap())
                .collect();
            let mut last_positions: Vec<u64> = results
                .iter()
                .map(|result| result.position.unwrap().0)
                .collect();
            last_positions.sort_unstable();
            assert_eq!(last_positions, vec![2, 4]);
            assert_eq!(block_on(store.head()).unwrap(), Position(4));
            format!("log {}, stream a {}", all.len(), stream_a.len())
        },
    );
}

/// `delete_stream(Exact(1))` racing an append of a second event: either the delete goes
/// first (the append then revives the stream, showing only the new event) or the append
/// does (the delete is refused with the new version); never a mix.
#[test]
fn delete_racing_an_append() {
    model(
        "delete_racing_an_append",
        &["deleted then revived", "append won"],
        || {
            let store = MemoryStore::new();
            block_on(store.append("s", ExpectedVersion::NoStream, vec![event(1)])).unwrap();
            let other = store.clone();
            let appender = thread::spawn(move || {
                block_on(other.append("s", ExpectedVersion::Any, vec![event(2)]))
            });
            let deleted = block_on(store.delete_stream("s", ExpectedVersion::Exact(1)));
            let appended = appender.join().unwrap().unwrap();
            assert_eq!(
                appended,
                AppendResult {
                    version: 2,
                    position: Some(Position(2)),
                    deduplicated: false
                }
            );

            let visible = block_on(store.read_stream("s", 1, Direction::Forward, 10)).unwrap();
            let metadata = block_on(store.stream_metadata("s")).unwrap();
            let outcome = match deleted {
                Ok(()) => {
                    // Deleted at version 1, then revived by the append.
                    assert_eq!(ids(&visible), vec![2]);
                    assert_eq!(
                        metadata,
                        StreamMetadata {
                            truncate_before: 2,
                            deleted: false,
                            custom: None
                        }
                    );
                    "deleted then revived"
                }
                Err(AppendError::WrongExpectedVersion { actual: 2, .. }) => {
                    assert_eq!(ids(&visible), vec![1, 2]);
                    assert_eq!(metadata, StreamMetadata::default());
                    "append won"
                }
                Err(other) => panic!("unexpected delete error {other:?}"),
            };
            // The global log keeps both events either way.
            assert_eq!(
                ids(&block_on(store.read_all(Position::START, 10)).unwrap()),
                vec![1, 2]
            );
            assert_eq!(block_on(store.stream_version("s")).unwrap(), 2);
            outcome.to_owned()
        },
    );
}

/// A batch racing an overlapping one (they share event 2): whichever goes second is an
/// idempotency conflict naming its first misfit, and nothing of it is written.
#[test]
fn overlapping_batches_never_half_apply() {
    model(
        "overlapping_batches_never_half_apply",
        &["[1, 2] won", "[2, 3] won"],
        || {
            let store = MemoryStore::new();
            let other = store.clone();
            let racer = thread::spawn(move || {
                block_on(other.append("s", ExpectedVersion::Any, vec![event(2), event(3)]))
            });
            let mine =
                block_on(store.append("s", ExpectedVersion::NoStream, vec![event(1), event(2)]));
            let theirs = racer.join().unwrap();
            let stored = ids(&block_on(store.read_all(Position::START, 10)).unwrap());
            match (mine, theirs) {
                (Ok(_), Err(AppendError::IdempotencyConflict { event_id, .. })) => {
                    assert_eq!(event_id.as_uuid().as_u128(), 3);
                    assert_eq!(stored, vec![1, 2]);
                    "[1, 2] won".to_owned()
                }
                (Err(AppendError::IdempotencyConflict { event_id, .. }), Ok(_)) => {
                    assert_eq!(event_id.as_uuid().as_u128(), 1);
                    assert_eq!(stored, vec![2, 3]);
                    "[2, 3] won".to_owned()
                }
                other => panic!("expected exactly one batch to win, got {other:?}"),
            }
        },
    );
}
