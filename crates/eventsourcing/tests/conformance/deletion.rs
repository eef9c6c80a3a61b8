//! Soft delete: the stream reads empty but keeps its version and its events in the global
//! log; the next append continues numbering and un-deletes it.

use flowbed_eventsourcing::{Direction, EventStore, ExpectedVersion, Position, StreamMetadata};
use serde_json::json;

use super::*;

/// `"s"` with 3 events (positions 1..=3) and `"t"` with one (position 4).
async fn two_streams<S: EventStore>(store: &S) {
    append_ok(store, "s", ExpectedVersion::NoStream, numbered("s", 3)).await;
    append_ok(store, "t", ExpectedVersion::NoStream, numbered("t", 1)).await;
}

/// Deletes `stream` expecting `expected`, failing the case on an error.
async fn delete<S: EventStore>(store: &S, stream: &str, expected: ExpectedVersion) {
    store
        .delete_stream(stream, expected)
        .await
        .unwrap_or_else(|error| panic!("delete_stream {stream:?} {expected:?} failed: {error}"));
}

/// The versions visible in `stream`, forward.
async fn visible<S: EventStore>(store: &S, stream: &str) -> Vec<u64> {
    stream_events(store, stream)
        .await
        .iter()
        .map(|event| event.version)
        .collect()
}

/// A deleted stream reads empty from anywhere in both directions; the global log, the
/// head, its version and other streams are untouched.
pub(crate) async fn soft_delete_hides_stream_keeps_log<S: EventStore>(store: S) {
    two_streams(&store).await;
    let log = all_events(&store).await;
    let t_before = stream_events(&store, "t").await;
    delete(&store, "s", ExpectedVersion::Exact(3)).await;
    for from in [0, 1, 3, u64::MAX] {
        for direction in [Direction::Forward, Direction::Backward] {
            assert!(
                read_stream(&store, "s", from, direction, 100)
                    .await
                    .is_empty(),
                "deleted stream from {from} {direction:?}"
            );
        }
    }
    assert_eq!(all_events(&store).await, log);
    assert_eq!(head_of(&store).await, Position(4));
    assert_eq!(version_of(&store, "s").await, 3);
    assert_eq!(stream_events(&store, "t").await, t_before);
}

/// A delete sets `deleted` and `truncate_before = version + 1`, keeping custom metadata.
pub(crate) async fn delete_sets_metadata_and_keeps_custom<S: EventStore>(store: S) {
    two_streams(&store).await;
    store
        .set_stream_metadata(
            "s",
            StreamMetadata {
                truncate_before: 2,
                deleted: false,
                custom: Some(json!({ "keep": "me" })),
            },
        )
        .await
        .expect("set metadata");
    delete(&store, "s", ExpectedVersion::StreamExists).await;
    assert_eq!(
        store.stream_metadata("s").await.expect("metadata"),
        StreamMetadata {
            truncate_before: 4,
            deleted: true,
            custom: Some(json!({ "keep": "me" })),
        }
    );
    assert_eq!(
        store.stream_metadata("t").await.expect("metadata"),
        StreamMetadata::default()
    );
}

/// A deleted stream keeps its version: `NoStream` and `Exact(0)` are refused with it.
pub(crate) async fn deleted_stream_rejects_no_stream<S: EventStore>(store: S) {
    two_streams(&store).await;
    delete(&store, "s", ExpectedVersion::Any).await;
    for expected in [ExpectedVersion::NoStream, ExpectedVersion::Exact(0)] {
        assert_wrong_version(
            store.append("s", expected, numbered("again", 1)).await,
            "s",
            expected,
            3,
        );
    }
    assert_eq!(head_of(&store).await, Position(4));
    assert!(store.stream_metadata("s").await.expect("metadata").deleted);
}

/// `Exact(version)` appends to a deleted stream: numbering continues, the flag clears, the
/// old events stay hidden and the new ones show.
pub(crate) async fn deleted_stream_accepts_exact_and_continues<S: EventStore>(store: S) {
    two_streams(&store).await;
    delete(&store, "s", ExpectedVersion::Exact(3)).await;
    let again = numbered("again", 2);
    assert_eq!(
        append_ok(&store, "s", ExpectedVersion::Exact(3), again.clone()).await,
        appended(5, 6)
    );
    assert_eq!(
        store.stream_metadata("s").await.expect("metadata"),
        StreamMetadata {
            truncate_before: 4,
            deleted: false,
            custom: None,
        }
    );
    let read = stream_events(&store, "s").await;
    assert_eq!(read.len(), 2);
    assert_recorded(&read[0], &again[0], "s", 4, 5);
    assert_recorded(&read[1], &again[1], "s", 5, 6);
    let backward = read_stream(&store, "s", u64::MAX, Direction::Backward, 100).await;
    assert_eq!(
        backward.iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![5, 4]
    );
    assert_eq!(all_events(&store).await.len(), 6);
    assert_eq!(version_of(&store, "s").await, 5);
}

/// `StreamExists` and `Any` also append to a deleted stream (its version is kept).
pub(crate) async fn deleted_stream_accepts_any_and_stream_exists<S: EventStore>(store: S) {
    two_streams(&store).await;
    delete(&store, "s", ExpectedVersion::Any).await;
    assert_eq!(
        append_ok(&store, "s", ExpectedVersion::StreamExists, numbered("a", 1)).await,
        appended(4, 5)
    );
    delete(&store, "s", ExpectedVersion::Exact(4)).await;
    assert_eq!(
        append_ok(&store, "s", ExpectedVersion::Any, numbered("b", 1)).await,
        appended(5, 6)
    );
    assert_eq!(visible(&store, "s").await, vec![5]);
}

/// A delete with a wrong expectation is refused with the actual version and changes
/// nothing.
pub(crate) async fn delete_with_wrong_expected_version_changes_nothing<S: EventStore>(store: S) {
    two_streams(&store).await;
    for expected in [
        ExpectedVersion::Exact(2),
        ExpectedVersion::Exact(4),
        ExpectedVersion::NoStream,
    ] {
        assert_wrong_version(store.delete_stream("s", expected).await, "s", expected, 3);
    }
    assert_eq!(
        store.stream_metadata("s").await.expect("metadata"),
        StreamMetadata::default()
    );
    assert_eq!(visible(&store, "s").await, vec![1, 2, 3]);
}

/// Deleting a stream that has no events: `StreamExists` is refused (actual 0), `NoStream`
/// marks it deleted at version 0, and a first append then shows normally.
pub(crate) async fn delete_missing_stream<S: EventStore>(store: S) {
    assert_wrong_version(
        store
            .delete_stream("ghost", ExpectedVersion::StreamExists)
            .await,
        "ghost",
        ExpectedVersion::StreamExists,
        0,
    );
    assert_eq!(
        store.stream_metadata("ghost").await.expect("metadata"),
        StreamMetadata::default()
    );
    delete(&store, "ghost", ExpectedVersion::NoStream).await;
    assert_eq!(
        store.stream_metadata("ghost").await.expect("metadata"),
        StreamMetadata {
            truncate_before: 1,
            deleted: true,
            custom: None,
        }
    );
    assert_eq!(version_of(&store, "ghost").await, 0);
    assert_eq!(head_of(&store).await, Position::START);
    assert_eq!(
        append_ok(&store, "ghost", ExpectedVersion::NoStream, numbered("g", 2)).await,
        appended(2, 2)
    );
    assert_eq!(visible(&store, "ghost").await, vec![1, 2]);
}

/// Deleting twice is allowed and keeps the same cut.
pub(crate) async fn delete_twice<S: EventStore>(store: S) {
    two_streams(&store).await;
    delete(&store, "s", ExpectedVersion::Exact(3)).await;
    delete(&store, "s", ExpectedVersion::Exact(3)).await;
    delete(&store, "s", ExpectedVersion::Any).await;
    let metadata = store.stream_metadata("s").await.expect("metadata");
    assert_eq!((metadata.deleted, metadata.truncate_before), (true, 4));
    assert_eq!(version_of(&store, "s").await, 3);
    assert!(visible(&store, "s").await.is_empty());
}
