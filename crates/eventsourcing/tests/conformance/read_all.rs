//! `read_all`, `head`, `stream_version` and `watch_head`: the global log in commit order
//! with dense positions.

use flowbed_eventsourcing::{EventData, EventStore, ExpectedVersion, Position};

use super::*;

/// Appends 10 events over three streams in a known order and returns `(stream, version,
/// data)` per position.
async fn ten_events<S: EventStore>(store: &S) -> Vec<(&'static str, u64, EventData)> {
    let plan: [(&str, usize); 6] = [("x", 2), ("y", 1), ("z", 3), ("x", 1), ("y", 2), ("x", 1)];
    let mut log = Vec::new();
    let mut versions = std::collections::HashMap::new();
    for (batch_no, (stream, count)) in plan.into_iter().enumerate() {
        let batch = numbered(&format!("{stream}{batch_no}"), count);
        append_ok(store, stream, ExpectedVersion::Any, batch.clone()).await;
        for data in batch {
            let version = versions.entry(stream).or_insert(0u64);
            *version += 1;
            log.push((stream, *version, data));
        }
    }
    assert_eq!(log.len(), 10);
    log
}

/// Checks `read` against the planned log, starting at `first` (a 1-based position).
#[track_caller]
fn assert_log(
    read: &[flowbed_eventsourcing::RecordedEvent],
    log: &[(&str, u64, EventData)],
    first: u64,
    count: usize,
) {
    assert_eq!(read.len(), count, "events read from position {first}");
    for (offset, recorded) in read.iter().enumerate() {
        let position = first + offset as u64;
        let (stream, version, data) = &log[position as usize - 1];
        assert_recorded(recorded, data, stream, *version, position);
    }
}

/// An empty store: no events from anywhere, head at `START`.
pub(crate) async fn empty_store<S: EventStore>(store: S) {
    for after in [Position::START, Position(1), Position(u64::MAX)] {
        assert!(
            read_all(&store, after, 100).await.is_empty(),
            "after {after}"
        );
    }
    assert_eq!(head_of(&store).await, Position::START);
    assert_eq!(*store.watch_head().borrow(), Position::START);
}

/// From the start: every event, in commit order, positions 1..=n across interleaved
/// streams.
pub(crate) async fn from_start_in_commit_order<S: EventStore>(store: S) {
    let log = ten_events(&store).await;
    let read = read_all(&store, Position::START, 100).await;
    assert_log(&read, &log, 1, 10);
}

/// From a middle position: the events after it.
pub(crate) async fn from_middle<S: EventStore>(store: S) {
    let log = ten_events(&store).await;
    for after in 1..10u64 {
        let read = read_all(&store, Position(after), 100).await;
        assert_log(&read, &log, after + 1, (10 - after) as usize);
    }
}

/// From the head or beyond: nothing.
pub(crate) async fn from_head_and_beyond_is_empty<S: EventStore>(store: S) {
    ten_events(&store).await;
    for after in [10, 11, 1000, i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX] {
        assert!(
            read_all(&store, Position(after), 100).await.is_empty(),
            "after {after}"
        );
    }
}

/// `max` bounds the count; 0 reads nothing.
pub(crate) async fn max_limits<S: EventStore>(store: S) {
    let log = ten_events(&store).await;
    assert!(read_all(&store, Position::START, 0).await.is_empty());
    assert!(read_all(&store, Position(4), 0).await.is_empty());
    assert_log(&read_all(&store, Position::START, 1).await, &log, 1, 1);
    assert_log(&read_all(&store, Position(3), 4).await, &log, 4, 4);
    assert_log(&read_all(&store, Position(8), 5).await, &log, 9, 2);
}

/// `max = usize::MAX` means "everything".
pub(crate) async fn max_usize_max_reads_everything<S: EventStore>(store: S) {
    let log = ten_events(&store).await;
    assert_log(
        &read_all(&store, Position::START, usize::MAX).await,
        &log,
        1,
        10,
    );
    assert_log(&read_all(&store, Position(7), usize::MAX).await, &log, 8, 3);
}

/// Paging with every page size visits each event once, in order.
pub(crate) async fn paging_covers_everything_once<S: EventStore>(store: S) {
    let log = ten_events(&store).await;
    for size in 1..=11 {
        let mut read = Vec::new();
        let mut after = Position::START;
        loop {
            let page = read_all(&store, after, size).await;
            assert!(page.len() <= size);
            let Some(last) = page.last() else { break };
            assert!(page[0].position > after, "read_all after {after} went back");
            after = last.position;
            read.extend(page);
        }
        assert_log(&read, &log, 1, 10);
    }
}

/// `head` is the newest position, `stream_version` each stream's newest version; failed
/// and empty appends move neither.
pub(crate) async fn head_and_stream_version_track_appends<S: EventStore>(store: S) {
    assert_eq!(head_of(&store).await, Position::START);
    assert_eq!(version_of(&store, "x").await, 0);
    append_ok(&store, "x", ExpectedVersion::Any, numbered("x", 3)).await;
    assert_eq!(head_of(&store).await, Position(3));
    assert_eq!(version_of(&store, "x").await, 3);
    append_ok(&store, "y", ExpectedVersion::Any, numbered("y", 2)).await;
    assert_eq!(head_of(&store).await, Position(5));
    assert_eq!(version_of(&store, "x").await, 3);
    assert_eq!(version_of(&store, "y").await, 2);
    assert!(
        store
            .append("x", ExpectedVersion::NoStream, numbered("no", 1))
            .await
            .is_err()
    );
    append_ok(&store, "x", ExpectedVersion::Any, Vec::new()).await;
    assert_eq!(head_of(&store).await, Position(5));
    assert_eq!(version_of(&store, "x").await, 3);
    append_ok(&store, "x", ExpectedVersion::Exact(3), numbered("x2", 1)).await;
    assert_eq!(head_of(&store).await, Position(6));
    assert_eq!(version_of(&store, "x").await, 4);
    assert_eq!(version_of(&store, "y").await, 2);
}

/// `watch_head` announces each commit: after an append returns, a receiver reaches a head
/// at least as new as its position, and its value is never ahead of the committed log.
pub(crate) async fn watch_head_announces_commits<S: EventStore>(store: S) {
    let mut watch = store.watch_head();
    assert_eq!(*watch.borrow_and_update(), Position::START);
    for round in 1..=3u64 {
        let result = append_ok(&store, "w", ExpectedVersion::Any, numbered("w", 2)).await;
        assert_eq!(result.position, Some(Position(round * 2)));
        let seen = *within(
            "watch_head announcing a commit",
            watch.wait_for(|head| *head >= Position(round * 2)),
        )
        .await
        .expect("the store's head watch closed");
        assert!(
            seen <= head_of(&store).await,
            "the watch is ahead of the log"
        );
    }
}
