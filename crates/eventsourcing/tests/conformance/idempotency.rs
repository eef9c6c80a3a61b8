//! Idempotent appends by event id: an exact re-append is a no-op success answering with the
//! original outcome, for the life of the store; anything overlapping differently is an
//! `IdempotencyConflict` that writes nothing.

use std::sync::Arc;

use flowbed_eventsourcing::{
    AppendResult, Direction, EventData, EventStore, ExpectedVersion, Position, StreamMetadata,
};
use tokio::sync::Barrier;

use super::*;

/// Stores `[a, b, c]` as versions 1..=3 (positions 1..=3) of `"s"` and returns it.
async fn stored_batch<S: EventStore>(store: &S) -> Vec<EventData> {
    let batch = numbered("batch", 3);
    assert_eq!(
        append_ok(store, "s", ExpectedVersion::NoStream, batch.clone()).await,
        appended(3, 3)
    );
    batch
}

/// Re-appending the same batch answers with the original version and position, marked
/// deduplicated, and writes nothing, however often it is repeated.
pub(crate) async fn same_batch_reappended_is_deduplicated<S: EventStore>(store: S) {
    append_ok(&store, "other", ExpectedVersion::Any, numbered("o", 1)).await;
    let batch = numbered("batch", 3);
    assert_eq!(
        append_ok(&store, "s", ExpectedVersion::NoStream, batch.clone()).await,
        appended(3, 4)
    );
    append_ok(&store, "other", ExpectedVersion::Any, numbered("o2", 1)).await;
    let before = observe(&store, &["s", "other"]).await;
    for _ in 0..3 {
        assert_eq!(
            append_ok(&store, "s", ExpectedVersion::NoStream, batch.clone()).await,
            deduplicated(3, 4)
        );
    }
    assert_eq!(observe(&store, &["s", "other"]).await, before);
    let read = stream_events(&store, "s").await;
    for (index, (recorded, data)) in read.iter().zip(&batch).enumerate() {
        assert_recorded(recorded, data, "s", index as u64 + 1, index as u64 + 2);
    }
}

/// A re-append is recognised before the expected version is checked, whatever it says.
pub(crate) async fn reappend_ignores_expected_version<S: EventStore>(store: S) {
    let batch = numbered("batch", 2);
    append_ok(&store, "s", ExpectedVersion::NoStream, batch.clone()).await;
    append_ok(&store, "s", ExpectedVersion::Exact(2), numbered("more", 2)).await;
    let before = observe(&store, &["s"]).await;
    for expected in [
        ExpectedVersion::Any,
        ExpectedVersion::NoStream,
        ExpectedVersion::StreamExists,
        ExpectedVersion::Exact(0),
        ExpectedVersion::Exact(2),
        ExpectedVersion::Exact(4),
        ExpectedVersion::Exact(99),
        ExpectedVersion::Exact(u64::MAX),
    ] {
        assert_eq!(
            append_ok(&store, "s", expected, batch.clone()).await,
            deduplicated(2, 2),
            "re-append expecting {expected:?}"
        );
    }
    assert_eq!(observe(&store, &["s"]).await, before);
}

/// Ids are remembered for the life of the store, not a window: a batch re-sent after a
/// hundred other appends is still recognised, and so is the store's very first event.
pub(crate) async fn reappend_after_many_other_appends<S: EventStore>(store: S) {
    let singles = append_singles(&store, "s", "s", 10).await;
    append_singles(&store, "t", "t", 5).await;
    let batch = numbered("batch", 3);
    assert_eq!(
        append_ok(&store, "s", ExpectedVersion::Exact(10), batch.clone()).await,
        appended(13, 18)
    );
    append_alternating(&store, &["s", "t", "u"], "Later", "later", 100).await;
    let before = observe(&store, &["s", "t", "u"]).await;
    assert_eq!(
        append_ok(&store, "s", ExpectedVersion::Any, batch).await,
        deduplicated(13, 18)
    );
    assert_eq!(
        append_ok(
            &store,
            "s",
            ExpectedVersion::NoStream,
            vec![singles[0].clone()]
        )
        .await,
        deduplicated(1, 1)
    );
    assert_eq!(
        append_ok(&store, "s", ExpectedVersion::Any, vec![singles[9].clone()]).await,
        deduplicated(10, 10)
    );
    assert_eq!(observe(&store, &["s", "t", "u"]).await, before);
    assert_eq!(head_of(&store).await, Position(118));
}

/// Idempotency is by id: a re-sent batch with other contents is still the stored batch,
/// and the stored contents stay.
pub(crate) async fn reappend_with_other_payload_keeps_original<S: EventStore>(store: S) {
    let batch = stored_batch(&store).await;
    let altered: Vec<EventData> = batch
        .iter()
        .map(|data| {
            EventData::new("Altered", b"{\"altered\":true}".to_vec())
                .with_id(data.id)
                .with_schema_version(9)
        })
        .collect();
    assert_eq!(
        append_ok(&store, "s", ExpectedVersion::Any, altered).await,
        deduplicated(3, 3)
    );
    let read = stream_events(&store, "s").await;
    assert_eq!(read.len(), 3);
    for (index, (recorded, data)) in read.iter().zip(&batch).enumerate() {
        let n = index as u64 + 1;
        assert_recorded(recorded, data, "s", n, n);
    }
}

/// A soft-deleted stream's events keep their ids: re-sending its batch is deduplicated
/// (and, writing nothing, leaves the stream deleted).
pub(crate) async fn reappend_after_soft_delete<S: EventStore>(store: S) {
    let batch = stored_batch(&store).await;
    store
        .delete_stream("s", ExpectedVersion::Exact(3))
        .await
        .expect("delete");
    assert_eq!(
        append_ok(&store, "s", ExpectedVersion::NoStream, batch).await,
        deduplicated(3, 3)
    );
    let metadata = store.stream_metadata("s").await.expect("metadata");
    assert!(metadata.deleted, "a deduplicated append wrote nothing");
    assert_eq!(metadata.truncate_before, 4);
    assert!(stream_events(&store, "s").await.is_empty());
    assert_eq!(version_of(&store, "s").await, 3);
    assert_eq!(head_of(&store).await, Position(3));
}

/// Truncated events keep their ids too.
pub(crate) async fn reappend_after_truncate<S: EventStore>(store: S) {
    let batch = stored_batch(&store).await;
    append_ok(&store, "s", ExpectedVersion::Exact(3), numbered("later", 2)).await;
    store
        .set_stream_metadata(
            "s",
            StreamMetadata {
                truncate_before: 5,
                ..StreamMetadata::default()
            },
        )
        .await
        .expect("truncate");
    assert_eq!(
        append_ok(&store, "s", ExpectedVersion::Exact(0), batch).await,
        deduplicated(3, 3)
    );
    assert_eq!(version_of(&store, "s").await, 5);
    assert_eq!(
        read_stream(&store, "s", 0, Direction::Forward, 10)
            .await
            .iter()
            .map(|e| e.version)
            .collect::<Vec<_>>(),
        vec![5]
    );
}

/// Checks that appending `events` to `stream` is an `IdempotencyConflict` naming
/// `conflicting`, and that it wrote nothing.
async fn assert_conflict_writes_nothing<S: EventStore>(
    store: &S,
    stream: &str,
    events: Vec<EventData>,
    conflicting: flowbed_eventsourcing::EventId,
) {
    let before = observe(store, &["s", stream]).await;
    for expected in [ExpectedVersion::Any, ExpectedVersion::Exact(3)] {
        assert_idempotency_conflict(
            store.append(stream, expected, events.clone()).await,
            stream,
            conflicting,
        );
    }
    assert_eq!(observe(store, &["s", stream]).await, before);
}

/// The stored batch plus a new event is a conflict naming the new event.
pub(crate) async fn superset_conflicts<S: EventStore>(store: S) {
    let mut batch = stored_batch(&store).await;
    let fresh = event("Fresh", "fresh", 0);
    batch.push(fresh.clone());
    assert_conflict_writes_nothing(&store, "s", batch, fresh.id).await;
    // The new event's id was not taken.
    assert_eq!(
        append_ok(&store, "s", ExpectedVersion::Exact(3), vec![fresh]).await,
        appended(4, 4)
    );
}

/// A new event followed by a stored one is a conflict naming the first, new, event.
pub(crate) async fn fresh_then_stored_conflicts<S: EventStore>(store: S) {
    let batch = stored_batch(&store).await;
    let fresh = event("Fresh", "fresh", 0);
    assert_conflict_writes_nothing(&store, "s", vec![fresh.clone(), batch[0].clone()], fresh.id)
        .await;
}

/// Stored events that are not consecutive in the stream are a conflict naming the first one
/// out of place.
pub(crate) async fn non_consecutive_subset_conflicts<S: EventStore>(store: S) {
    let batch = stored_batch(&store).await;
    assert_conflict_writes_nothing(
        &store,
        "s",
        vec![batch[0].clone(), batch[2].clone()],
        batch[2].id,
    )
    .await;
}

/// Stores keep no batch boundaries: a consecutive run of stored events re-sent in order
/// (part of a batch, as a client that split its retry might) is a retry, answered with
/// the run's last version and position, and writes nothing.
pub(crate) async fn consecutive_part_of_batch_deduplicates<S: EventStore>(store: S) {
    let batch = stored_batch(&store).await;
    let before = observe(&store, &["s"]).await;
    let stored = store
        .read_stream("s", 1, Direction::Forward, 10)
        .await
        .expect("read_stream");
    for (range, last_version) in [(0..2, 2u64), (1..3, 3), (1..2, 2)] {
        let part = batch[range.clone()].to_vec();
        let result = store
            .append("s", ExpectedVersion::Exact(99), part)
            .await
            .unwrap_or_else(|error| panic!("re-sending events {range:?} of a batch: {error}"));
        assert_eq!(
            result,
            AppendResult {
                version: last_version,
                position: Some(stored[last_version as usize - 1].position),
                deduplicated: true,
            },
            "re-sending events {range:?} of a batch"
        );
    }
    assert_eq!(observe(&store, &["s"]).await, before);
}

/// Two adjacent stored batches re-sent as one batch are a retry of both: deduplicated,
/// answered with the second batch's last version, nothing written.
pub(crate) async fn adjacent_batches_combined_deduplicate<S: EventStore>(store: S) {
    let first = numbered("first", 2);
    let second = numbered("second", 2);
    append_ok(&store, "s", ExpectedVersion::NoStream, first.clone()).await;
    let last = append_ok(&store, "s", ExpectedVersion::Exact(2), second.clone()).await;
    let before = observe(&store, &["s"]).await;
    let combined: Vec<EventData> = first.into_iter().chain(second).collect();
    let result = store
        .append("s", ExpectedVersion::NoStream, combined)
        .await
        .expect("re-sending two batches as one");
    assert_eq!(
        result,
        AppendResult {
            version: 4,
            position: last.position,
            deduplicated: true,
        }
    );
    assert_eq!(observe(&store, &["s"]).await, before);
}

/// The stored batch in another order is a conflict naming the first id out of place.
pub(crate) async fn other_order_conflicts<S: EventStore>(store: S) {
    let batch = stored_batch(&store).await;
    let reversed: Vec<EventData> = batch.iter().rev().cloned().collect();
    assert_conflict_writes_nothing(&store, "s", reversed, batch[1].id).await;
    assert_conflict_writes_nothing(
        &store,
        "s",
        vec![batch[1].clone(), batch[0].clone(), batch[2].clone()],
        batch[0].id,
    )
    .await;
}

/// The stored batch (or one of its events) sent to another stream is a conflict naming the
/// first id; the other stream stays empty.
pub(crate) async fn other_stream_conflicts<S: EventStore>(store: S) {
    let batch = stored_batch(&store).await;
    assert_conflict_writes_nothing(&store, "t", batch.clone(), batch[0].id).await;
    assert_conflict_writes_nothing(&store, "t", vec![batch[1].clone()], batch[1].id).await;
    assert_eq!(version_of(&store, "t").await, 0);
}

/// A conflicting batch stores none of its new events; they append later as fresh ones.
pub(crate) async fn conflict_writes_nothing<S: EventStore>(store: S) {
    let batch = stored_batch(&store).await;
    let fresh = numbered("fresh", 2);
    let mixed = vec![fresh[0].clone(), fresh[1].clone(), batch[0].clone()];
    assert_conflict_writes_nothing(&store, "u", mixed, fresh[0].id).await;
    assert_eq!(
        append_ok(&store, "u", ExpectedVersion::NoStream, fresh.clone()).await,
        appended(2, 5)
    );
    let read = stream_events(&store, "u").await;
    assert_recorded(&read[0], &fresh[0], "u", 1, 4);
    assert_recorded(&read[1], &fresh[1], "u", 2, 5);
}

/// Eight writers sending the same batch at once: it is stored once, exactly one answer is
/// fresh, and every answer carries the same version and position.
pub(crate) async fn concurrent_same_batch_stored_once<S: EventStore>(store: S) {
    const WRITERS: usize = 8;
    append_ok(&store, "before", ExpectedVersion::Any, numbered("b", 2)).await;
    let batch = numbered("same", 3);
    let barrier = Arc::new(Barrier::new(WRITERS));
    let mut tasks = Vec::new();
    for _ in 0..WRITERS {
        let (store, batch, barrier) = (store.clone(), batch.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store.append("s", ExpectedVersion::Any, batch).await
        }));
    }
    let mut fresh = 0;
    for task in tasks {
        let result = within("a concurrent append", task)
            .await
            .expect("the appending task panicked")
            .unwrap_or_else(|error| panic!("a concurrent identical append failed: {error}"));
        assert_eq!((result.version, result.position), (3, Some(Position(5))));
        if !result.deduplicated {
            fresh += 1;
        }
    }
    assert_eq!(fresh, 1, "exactly one append is the fresh one");
    let read = stream_events(&store, "s").await;
    assert_eq!(read.len(), 3);
    for (index, (recorded, data)) in read.iter().zip(&batch).enumerate() {
        assert_recorded(recorded, data, "s", index as u64 + 1, index as u64 + 3);
    }
    assert_eq!(head_of(&store).await, Position(5));
}
