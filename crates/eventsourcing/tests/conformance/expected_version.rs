//! Optimistic concurrency: each `ExpectedVersion` variant against a new and an existing
//! stream, the error's contents, and that a refused append writes nothing.

use flowbed_eventsourcing::{Direction, EventStore, ExpectedVersion, Position};

use super::*;

/// Checks that appending one event to the new stream `"fresh"` expecting `expected` is
/// accepted as its first event.
async fn accepted_on_new_stream<S: EventStore>(store: &S, expected: ExpectedVersion) {
    append_ok(store, "other", ExpectedVersion::Any, numbered("o", 2)).await;
    let data = numbered("fresh", 1);
    assert_eq!(
        append_ok(store, "fresh", expected, data.clone()).await,
        appended(1, 3)
    );
    let read = read_stream(store, "fresh", 1, Direction::Forward, 10).await;
    assert_eq!(read.len(), 1);
    assert_recorded(&read[0], &data[0], "fresh", 1, 3);
}

/// Checks that appending to the new stream `"fresh"` expecting `expected` is refused with
/// actual version 0 and writes nothing.
async fn rejected_on_new_stream<S: EventStore>(store: &S, expected: ExpectedVersion) {
    append_ok(store, "other", ExpectedVersion::Any, numbered("o", 2)).await;
    let before = observe(store, &["fresh", "other"]).await;
    assert_wrong_version(
        store.append("fresh", expected, numbered("fresh", 2)).await,
        "fresh",
        expected,
        0,
    );
    assert_eq!(observe(store, &["fresh", "other"]).await, before);
}

/// Checks that appending two events to `"s"` (at version 3) expecting `expected` is
/// accepted as versions 4 and 5.
async fn accepted_on_existing_stream<S: EventStore>(store: &S, expected: ExpectedVersion) {
    append_ok(store, "s", ExpectedVersion::Any, numbered("s", 3)).await;
    append_ok(store, "other", ExpectedVersion::Any, numbered("o", 1)).await;
    let data = numbered("more", 2);
    assert_eq!(
        append_ok(store, "s", expected, data.clone()).await,
        appended(5, 6)
    );
    let read = read_stream(store, "s", 4, Direction::Forward, 10).await;
    assert_eq!(read.len(), 2);
    assert_recorded(&read[0], &data[0], "s", 4, 5);
    assert_recorded(&read[1], &data[1], "s", 5, 6);
}

/// Checks that appending to `"s"` (at version 3) expecting `expected` is refused with
/// actual version 3 and writes nothing.
async fn rejected_on_existing_stream<S: EventStore>(store: &S, expected: ExpectedVersion) {
    append_ok(store, "s", ExpectedVersion::Any, numbered("s", 3)).await;
    let before = observe(store, &["s"]).await;
    assert_wrong_version(
        store.append("s", expected, numbered("late", 2)).await,
        "s",
        expected,
        3,
    );
    assert_eq!(observe(store, &["s"]).await, before);
}

/// `Any` accepts a new stream.
pub(crate) async fn new_stream_any_accepted<S: EventStore>(store: S) {
    accepted_on_new_stream(&store, ExpectedVersion::Any).await;
}

/// `NoStream` accepts a new stream.
pub(crate) async fn new_stream_no_stream_accepted<S: EventStore>(store: S) {
    accepted_on_new_stream(&store, ExpectedVersion::NoStream).await;
}

/// `StreamExists` refuses a new stream.
pub(crate) async fn new_stream_stream_exists_rejected<S: EventStore>(store: S) {
    rejected_on_new_stream(&store, ExpectedVersion::StreamExists).await;
}

/// `Exact(0)` accepts a new stream (0 = no events).
pub(crate) async fn new_stream_exact_zero_accepted<S: EventStore>(store: S) {
    accepted_on_new_stream(&store, ExpectedVersion::Exact(0)).await;
}

/// `Exact(1)` refuses a new stream.
pub(crate) async fn new_stream_exact_nonzero_rejected<S: EventStore>(store: S) {
    rejected_on_new_stream(&store, ExpectedVersion::Exact(1)).await;
}

/// `Any` accepts an existing stream.
pub(crate) async fn existing_stream_any_accepted<S: EventStore>(store: S) {
    accepted_on_existing_stream(&store, ExpectedVersion::Any).await;
}

/// `NoStream` refuses an existing stream.
pub(crate) async fn existing_stream_no_stream_rejected<S: EventStore>(store: S) {
    rejected_on_existing_stream(&store, ExpectedVersion::NoStream).await;
}

/// `StreamExists` accepts an existing stream.
pub(crate) async fn existing_stream_stream_exists_accepted<S: EventStore>(store: S) {
    accepted_on_existing_stream(&store, ExpectedVersion::StreamExists).await;
}

/// `Exact(current)` accepts.
pub(crate) async fn existing_stream_exact_current_accepted<S: EventStore>(store: S) {
    accepted_on_existing_stream(&store, ExpectedVersion::Exact(3)).await;
}

/// `Exact` below the current version refuses (including 0).
pub(crate) async fn existing_stream_exact_stale_rejected<S: EventStore>(store: S) {
    rejected_on_existing_stream(&store, ExpectedVersion::Exact(2)).await;
    for stale in [0, 1] {
        assert_wrong_version(
            store
                .append("s", ExpectedVersion::Exact(stale), numbered("late", 1))
                .await,
            "s",
            ExpectedVersion::Exact(stale),
            3,
        );
    }
    assert_eq!(version_of(&store, "s").await, 3);
}

/// `Exact` above the current version refuses.
pub(crate) async fn existing_stream_exact_ahead_rejected<S: EventStore>(store: S) {
    rejected_on_existing_stream(&store, ExpectedVersion::Exact(4)).await;
}

/// `Exact(u64::MAX)` (beyond what SQL integers hold) is refused with the true actual
/// version, on a new and on an existing stream.
pub(crate) async fn exact_u64_max_rejected<S: EventStore>(store: S) {
    assert_wrong_version(
        store
            .append("s", ExpectedVersion::Exact(u64::MAX), numbered("x", 1))
            .await,
        "s",
        ExpectedVersion::Exact(u64::MAX),
        0,
    );
    append_ok(&store, "s", ExpectedVersion::Any, numbered("s", 2)).await;
    assert_wrong_version(
        store
            .append("s", ExpectedVersion::Exact(u64::MAX), numbered("y", 1))
            .await,
        "s",
        ExpectedVersion::Exact(u64::MAX),
        2,
    );
    assert_wrong_version(
        store
            .append(
                "s",
                ExpectedVersion::Exact(i64::MAX as u64),
                numbered("z", 1),
            )
            .await,
        "s",
        ExpectedVersion::Exact(i64::MAX as u64),
        2,
    );
    assert_eq!(version_of(&store, "s").await, 2);
    assert_eq!(head_of(&store).await, Position(2));
}

/// Fifty single appends, each expecting exactly the previous version; every stale
/// expectation along the way is refused.
pub(crate) async fn exact_after_many_appends<S: EventStore>(store: S) {
    for version in 0..50u64 {
        if version > 0 {
            assert_wrong_version(
                store
                    .append(
                        "counter",
                        ExpectedVersion::Exact(version - 1),
                        numbered("stale", 1),
                    )
                    .await,
                "counter",
                ExpectedVersion::Exact(version - 1),
                version,
            );
        }
        let data = vec![event("Tick", "tick", version as usize)];
        assert_eq!(
            append_ok(&store, "counter", ExpectedVersion::Exact(version), data).await,
            appended(version + 1, version + 1)
        );
    }
    let read = stream_events(&store, "counter").await;
    assert_eq!(read.len(), 50);
    for (index, recorded) in read.iter().enumerate() {
        assert_eq!(recorded.version, index as u64 + 1);
        assert_eq!(recorded.payload, payload("tick", index));
    }
}

/// A `WrongExpectedVersion` carries stream, expectation and actual version; the batch's
/// events are not stored, and their ids are not taken (the same batch appends later).
pub(crate) async fn wrong_expected_version_writes_nothing<S: EventStore>(store: S) {
    append_ok(&store, "s", ExpectedVersion::Any, numbered("s", 2)).await;
    append_ok(&store, "t", ExpectedVersion::Any, numbered("t", 1)).await;
    let before = observe(&store, &["s", "t"]).await;
    let batch = numbered("refused", 3);
    let result = store
        .append("s", ExpectedVersion::Exact(1), batch.clone())
        .await;
    let error = result.as_ref().err().map(ToString::to_string);
    assert_wrong_version(result, "s", ExpectedVersion::Exact(1), 2);
    let message = error.expect("an error");
    assert!(
        message.contains("\"s\"") && message.contains('2') && message.contains('1'),
        "the message names stream and versions: {message}"
    );
    assert_eq!(observe(&store, &["s", "t"]).await, before);
    assert_eq!(
        append_ok(&store, "s", ExpectedVersion::Exact(2), batch).await,
        appended(5, 6)
    );
}

/// The expectation is checked against the named stream only.
pub(crate) async fn expectation_is_per_stream<S: EventStore>(store: S) {
    append_ok(&store, "busy", ExpectedVersion::Any, numbered("b", 5)).await;
    append_ok(&store, "quiet", ExpectedVersion::NoStream, numbered("q", 1)).await;
    append_ok(
        &store,
        "quiet",
        ExpectedVersion::Exact(1),
        numbered("q2", 1),
    )
    .await;
    assert_wrong_version(
        store
            .append("quiet", ExpectedVersion::Exact(5), numbered("q3", 1))
            .await,
        "quiet",
        ExpectedVersion::Exact(5),
        2,
    );
    assert_eq!(version_of(&store, "busy").await, 5);
    assert_eq!(version_of(&store, "quiet").await, 2);
    assert_eq!(head_of(&store).await, Position(7));
}
