//! Subscriptions under concurrent writers, on a multi-threaded runtime:
//!
//! * 8 writer tasks append while a live `Subscription::all` with a small batch size reads:
//!   every event arrives exactly once, in position order, with dense positions, and each
//!   writer's events in the order it wrote them; a stream subscription sees its stream
//!   whole and in order.
//! * A subscriber dropped midway (with events still buffered) and resumed from its
//!   checkpoint continues right after the last event it processed: no gap, no duplicate.
//! * A pending `next()` dropped while waiting for a commit loses nothing.
//! * A slow consumer never makes the subscription hold more than one batch: a `Counting`
//!   wrapper store records every `read_all` (its `max` and how many events came back), and
//!   after each delivered event the events read but not yet delivered are at most
//!   `batch_size`.
//!
//! Run on the memory store and (feature `sqlite`) on SQLite. A generous timeout turns a
//! hang (a lost wake-up, a skipped event) into a failure; nothing waits on time otherwise.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flowbed_eventsourcing::memory::MemoryStore;
use flowbed_eventsourcing::{
    EventData, EventId, EventStore, ExpectedVersion, Position, RecordedEvent, Subscription,
};
use futures::{FutureExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::Barrier;

use common::hooked::{Hooked, StoreHooks};

const WRITERS: usize = 8;
/// A hang guard, not a timing assertion.
const HANG: Duration = Duration::from_secs(120);

#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Written {
    writer: usize,
    seq: usize,
}

fn decode(event: &RecordedEvent) -> Written {
    serde_json::from_slice(&event.payload).unwrap()
}

/// Starts `WRITERS` tasks, each appending `per_writer` events to its own stream `w-<i>`
/// in batches of 1 to 3 (writer `i` uses `i % 3 + 1`), all released together.
fn spawn_writers<S: EventStore>(store: &S, per_writer: usize) -> Vec<tokio::task::JoinHandle<()>> {
    let barrier = Arc::new(Barrier::new(WRITERS));
    (0..WRITERS)
        .map(|writer| {
            let store = store.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let batch = writer % 3 + 1;
                let mut seq = 0;
                while seq < per_writer {
                    let events: Vec<EventData> = (seq..(seq + batch).min(per_writer))
                        .map(|seq| {
                            EventData::new(
                                "Written",
                                serde_json::to_vec(&Written { writer, seq }).unwrap(),
                            )
                        })
                        .collect();
                    let expected = ExpectedVersion::Exact(seq as u64);
                    seq += events.len();
                    let result = store
                        .append(&format!("w-{writer}"), expected, events)
                        .await
                        .unwrap();
                    assert_eq!(result.version, seq as u64);
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect()
}

/// Checks a complete delivery of `WRITERS × per_writer` events: positions `1..=total` in
/// order, ids unique, each writer's events in the order written with versions `1..`.
fn check_delivery(events: &[RecordedEvent], per_writer: usize) {
    let total = WRITERS * per_writer;
    assert_eq!(events.len(), total);
    let mut ids: HashSet<EventId> = HashSet::new();
    let mut next_seq = [0usize; WRITERS];
    for (index, event) in events.iter().enumerate() {
        assert_eq!(event.position, Position(index as u64 + 1), "gap or reorder");
        assert!(ids.insert(event.id), "duplicate event {}", event.id);
        let written = decode(event);
        assert_eq!(event.stream_id, format!("w-{}", written.writer));
        assert_eq!(written.seq, next_seq[written.writer], "writer order");
        assert_eq!(event.version, written.seq as u64 + 1);
        next_seq[written.writer] += 1;
    }
    assert!(next_seq.iter().all(|&n| n == per_writer));
}

async fn join_all(writers: Vec<tokio::task::JoinHandle<()>>) {
    for writer in writers {
        writer.await.unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// Exactly once, in order, dense.
// ---------------------------------------------------------------------------------------

async fn live_subscription_sees_everything_once<S: EventStore>(store: S, per_writer: usize) {
    let total = WRITERS * per_writer;
    let all = Subscription::all(store.clone(), Position::START).batch_size(7);
    let reader = tokio::spawn(async move {
        let mut all = all;
        let mut seen = Vec::with_capacity(total);
        while seen.len() < total {
            seen.push(all.next().await.unwrap());
        }
        (seen, all.position())
    });
    // A stream subscription, as a Stream, beside it.
    let one = Subscription::stream(store.clone(), "w-5", 0)
        .batch_size(5)
        .into_stream();
    let stream_reader = tokio::spawn(async move {
        one.take(per_writer)
            .map(Result::unwrap)
            .collect::<Vec<RecordedEvent>>()
            .await
    });
    let writers = spawn_writers(&store, per_writer);

    let (seen, position) = tokio::time::timeout(HANG, reader)
        .await
        .expect("the subscription stalled")
        .unwrap();
    join_all(writers).await;
    check_delivery(&seen, per_writer);
    assert_eq!(position, Position(total as u64));
    assert_eq!(store.head().await.unwrap(), position);

    let stream_events = tokio::time::timeout(HANG, stream_reader)
        .await
        .expect("the stream subscription stalled")
        .unwrap();
    let versions: Vec<u64> = stream_events.iter().map(|e| e.version).collect();
    assert_eq!(versions, (1..=per_writer as u64).collect::<Vec<_>>());
    assert!(stream_events.iter().all(|e| decode(e).writer == 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_live_subscription_sees_every_event_once_in_order() {
    live_subscription_sees_everything_once(MemoryStore::new(), 2000).await;
}

// ---------------------------------------------------------------------------------------
// Drop and resume from the checkpoint.
// ---------------------------------------------------------------------------------------

async fn resumed_subscriber_has_no_gap_and_no_duplicate<S: EventStore>(
    store: S,
    per_writer: usize,
) {
    let total = WRITERS * per_writer;
    let writers = spawn_writers(&store, per_writer);
    let mut delivered = Vec::with_capacity(total);

    // First life: process about a third, checkpointing each event, then drop mid-batch.
    let mut first = Subscription::resume(store.clone(), "projection")
        .await
        .unwrap()
        .batch_size(16);
    let stop_after = total / 3 + 5; // not a multiple of the batch size
    while delivered.len() < stop_after {
        let event = tokio::time::timeout(HANG, first.next())
            .await
            .expect("first subscriber stalled")
            .unwrap();
        delivered.push(event);
        first.save_checkpoint("projection").await.unwrap();
    }
    let checkpoint = first.position();
    drop(first);
    assert_eq!(
        store.load_checkpoint("projection").await.unwrap(),
        Some(checkpoint)
    );

    // Second life: resumes right after the checkpoint while the writers go on.
    let mut second = Subscription::resume(store.clone(), "projection")
        .await
        .unwrap()
        .batch_size(16);
    assert_eq!(second.position(), checkpoint);
    while delivered.len() < total {
        let event = tokio::time::timeout(HANG, second.next())
            .await
            .expect("resumed subscriber stalled")
            .unwrap();
        delivered.push(event);
    }
    second.save_checkpoint("projection").await.unwrap();
    join_all(writers).await;
    assert_eq!(delivered[stop_after].position, checkpoint.next());
    check_delivery(&delivered, per_writer);
    assert_eq!(
        store.load_checkpoint("projection").await.unwrap(),
        Some(Position(total as u64))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_resumed_subscriber_has_no_gap_and_no_duplicate() {
    resumed_subscriber_has_no_gap_and_no_duplicate(MemoryStore::new(), 1000).await;
}

/// A `next()` dropped while it waits for a commit (the consumer timed out, a `select!`
/// took another branch) loses nothing: the next call delivers the next event.
async fn dropped_pending_next_loses_nothing<S: EventStore>(store: S) {
    let mut subscription = Subscription::all(store.clone(), Position::START).batch_size(2);
    for round in 1..=20u64 {
        // Caught up: the call waits, and is dropped while waiting.
        assert!(subscription.next().now_or_never().is_none());
        let appended = store
            .append(
                "s",
                ExpectedVersion::Any,
                vec![EventData::new("E", b"{}".to_vec())],
            )
            .await
            .unwrap();
        assert_eq!(appended.position, Some(Position(round)));
        let event = tokio::time::timeout(HANG, subscription.next())
            .await
            .expect("stalled after a dropped next()")
            .unwrap();
        assert_eq!(event.position, Position(round));
    }
}

#[tokio::test]
async fn memory_dropped_pending_next_loses_nothing() {
    dropped_pending_next_loses_nothing(MemoryStore::new()).await;
}

// ---------------------------------------------------------------------------------------
// Backpressure: a slow consumer makes nothing buffer beyond one batch.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Reads {
    /// `(max, returned)` of every `read_all`.
    calls: Vec<(usize, usize)>,
    /// Events returned by all `read_all` calls together.
    returned: usize,
}

/// The hooks of a [`Counting`] store: its [`Reads`], behind a lock.
#[derive(Debug, Default)]
struct ReadAllCounter(Mutex<Reads>);

impl StoreHooks for ReadAllCounter {
    fn on_read_all(&self, max: usize, events: &[RecordedEvent]) {
        let mut reads = self.0.lock().unwrap();
        reads.calls.push((max, events.len()));
        reads.returned += events.len();
    }
}

/// Delegates to `S`, recording `read_all` calls.
type Counting<S> = Hooked<S, ReadAllCounter>;

impl<S: EventStore> Counting<S> {
    /// The recorded reads, locked.
    fn reads(&self) -> std::sync::MutexGuard<'_, Reads> {
        self.hooks().0.lock().unwrap()
    }

    /// Events returned by all `read_all` calls so far.
    fn returned(&self) -> usize {
        self.reads().returned
    }
}

/// Adds a delivered `event` to `delivered` and checks that the store returned at most
/// `batch` events that are not delivered yet; then yields, so the writers run ahead.
async fn accept_within_one_batch<S: EventStore>(
    store: &Counting<S>,
    delivered: &mut Vec<RecordedEvent>,
    event: RecordedEvent,
    batch: usize,
) {
    delivered.push(event);
    let buffered = store.returned() - delivered.len();
    assert!(
        buffered <= batch,
        "{buffered} events buffered, batch size {batch}"
    );
    tokio::task::yield_now().await;
}

async fn slow_consumer_buffers_at_most_one_batch<S: EventStore>(inner: S, per_writer: usize) {
    const BATCH: usize = 10;
    let total = WRITERS * per_writer;
    let store = Counting::new(inner);
    // A backlog before the consumer starts, then writers racing ahead of it.
    join_all(spawn_writers(store.inner(), per_writer / 2)).await;
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let store = store.clone();
            tokio::spawn(async move {
                for seq in per_writer / 2..per_writer {
                    let payload = serde_json::to_vec(&Written { writer, seq }).unwrap();
                    store
                        .append(
                            &format!("w-{writer}"),
                            ExpectedVersion::Exact(seq as u64),
                            vec![EventData::new("Written", payload)],
                        )
                        .await
                        .unwrap();
                }
            })
        })
        .collect();

    // Half through `next()`, half through the Stream adapter; the consumer yields after
    // every event so the writers run ahead.
    let mut delivered = Vec::with_capacity(total);
    let mut subscription = Subscription::all(store.clone(), Position::START).batch_size(BATCH);
    while delivered.len() < total / 2 {
        let event = tokio::time::timeout(HANG, subscription.next())
            .await
            .expect("stalled")
            .unwrap();
        accept_within_one_batch(&store, &mut delivered, event, BATCH).await;
    }
    let mut stream = subscription.into_stream();
    while delivered.len() < total {
        let event = tokio::time::timeout(HANG, stream.next())
            .await
            .expect("stalled")
            .unwrap()
            .unwrap();
        accept_within_one_batch(&store, &mut delivered, event, BATCH).await;
    }
    join_all(writers).await;

    let reads = store.reads();
    assert!(
        reads
            .calls
            .iter()
            .all(|&(max, returned)| max <= BATCH && returned <= max),
        "read_all asked for or returned more than a batch: {:?}",
        reads.calls
    );
    // Nothing was read twice or ahead: every event read was delivered.
    assert_eq!(reads.returned, total);
    // The backlog was read in full batches, not one event at a time.
    assert!(reads.calls.iter().filter(|&&(_, n)| n == BATCH).count() >= (total / 2) / BATCH);
    drop(reads);
    check_delivery(&delivered, per_writer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_slow_consumer_buffers_at_most_one_batch() {
    slow_consumer_buffers_at_most_one_batch(MemoryStore::new(), 500).await;
}

// ---------------------------------------------------------------------------------------
// SQLite.
// ---------------------------------------------------------------------------------------

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;
    use flowbed_eventsourcing::sqlite::SqliteStore;

    fn open() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::Builder::new()
            .prefix("es-stress-")
            .tempdir()
            .unwrap();
        let store = SqliteStore::open(dir.path().join("events.db")).unwrap();
        (dir, store)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite_live_subscription_sees_every_event_once_in_order() {
        let (_dir, store) = open();
        live_subscription_sees_everything_once(store, 250).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite_resumed_subscriber_has_no_gap_and_no_duplicate() {
        let (_dir, store) = open();
        resumed_subscriber_has_no_gap_and_no_duplicate(store, 150).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_dropped_pending_next_loses_nothing() {
        let (_dir, store) = open();
        dropped_pending_next_loses_nothing(store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite_slow_consumer_buffers_at_most_one_batch() {
        let (_dir, store) = open();
        slow_consumer_buffers_at_most_one_batch(store, 100).await;
    }
}
