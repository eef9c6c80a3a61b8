//! Stream metadata (custom JSON, truncate-before, the deleted flag) and per-event metadata
//! (correlation, causation, extras).

use flowbed_eventsourcing::{
    Direction, EventData, EventId, EventStore, ExpectedVersion, Metadata, Position, StreamMetadata,
};
use serde_json::json;

use super::*;

/// The versions `read_stream` returns for `stream`, forward from 0 and backward from the
/// end (reversed), which must agree.
async fn visible<S: EventStore>(store: &S, stream: &str) -> Vec<u64> {
    let forward: Vec<u64> = read_stream(store, stream, 0, Direction::Forward, 1000)
        .await
        .iter()
        .map(|event| event.version)
        .collect();
    let mut backward: Vec<u64> = read_stream(store, stream, u64::MAX, Direction::Backward, 1000)
        .await
        .iter()
        .map(|event| event.version)
        .collect();
    backward.reverse();
    assert_eq!(
        forward, backward,
        "forward and backward disagree on {stream:?}"
    );
    forward
}

/// Sets `stream`'s metadata, failing the case on an error.
async fn set<S: EventStore>(store: &S, stream: &str, metadata: StreamMetadata) {
    store
        .set_stream_metadata(stream, metadata)
        .await
        .unwrap_or_else(|error| panic!("set_stream_metadata {stream:?} failed: {error}"));
}

/// Loads `stream`'s metadata, failing the case on an error.
async fn get<S: EventStore>(store: &S, stream: &str) -> StreamMetadata {
    store
        .stream_metadata(stream)
        .await
        .unwrap_or_else(|error| panic!("stream_metadata {stream:?} failed: {error}"))
}

/// Truncating `stream` before `version`.
fn truncated(version: u64) -> StreamMetadata {
    StreamMetadata {
        truncate_before: version,
        ..StreamMetadata::default()
    }
}

/// A stream nobody configured has the default metadata, with or without events.
pub(crate) async fn default_for_unknown_stream<S: EventStore>(store: S) {
    assert_eq!(get(&store, "never").await, StreamMetadata::default());
    append_ok(&store, "written", ExpectedVersion::Any, numbered("w", 2)).await;
    assert_eq!(get(&store, "written").await, StreamMetadata::default());
    assert_eq!(get(&store, "never").await, StreamMetadata::default());
}

/// What is set is what is read, per stream.
pub(crate) async fn set_and_load_round_trip<S: EventStore>(store: S) {
    append_ok(&store, "s", ExpectedVersion::Any, numbered("s", 3)).await;
    let metadata = StreamMetadata {
        truncate_before: 2,
        deleted: false,
        custom: Some(json!({ "owner": "team-a", "max_age_days": 30 })),
    };
    set(&store, "s", metadata.clone()).await;
    assert_eq!(get(&store, "s").await, metadata);
    assert_eq!(get(&store, "t").await, StreamMetadata::default());
    let other = StreamMetadata {
        custom: Some(json!("t's")),
        ..StreamMetadata::default()
    };
    set(&store, "t", other.clone()).await;
    assert_eq!(get(&store, "t").await, other);
    assert_eq!(get(&store, "s").await, metadata);
}

/// Setting replaces the whole metadata (nothing is merged), and a removed truncation makes
/// the events visible again.
pub(crate) async fn set_replaces_everything<S: EventStore>(store: S) {
    append_ok(&store, "s", ExpectedVersion::Any, numbered("s", 4)).await;
    set(
        &store,
        "s",
        StreamMetadata {
            truncate_before: 3,
            deleted: false,
            custom: Some(json!({ "a": 1 })),
        },
    )
    .await;
    assert_eq!(visible(&store, "s").await, vec![3, 4]);
    let replacement = StreamMetadata {
        truncate_before: 0,
        deleted: false,
        custom: Some(json!({ "b": 2 })),
    };
    set(&store, "s", replacement.clone()).await;
    assert_eq!(get(&store, "s").await, replacement);
    assert_eq!(visible(&store, "s").await, vec![1, 2, 3, 4]);
    set(&store, "s", StreamMetadata::default()).await;
    assert_eq!(get(&store, "s").await, StreamMetadata::default());
}

/// Custom JSON comes back equal: big and negative integers, floats, unicode, escapes,
/// nesting, empty containers, a top-level `null`.
pub(crate) async fn custom_json_round_trips_exactly<S: EventStore>(store: S) {
    let values = [
        (
            "scalars",
            json!({
                "u64_max": u64::MAX,
                "i64_min": i64::MIN,
                "float": 0.1,
                "exp": 1.5e300,
                "zero": 0,
                "bools": [true, false],
                "z": "last", "a": "first"
            }),
        ),
        (
            "strings",
            json!({ "unicode": "ü 流 🚀", "escapes": "quote \" backslash \\ newline \n tab \t" }),
        ),
        (
            "nesting",
            json!({ "a": [1, [2, [3, { "b": null }]]], "empty_object": {}, "empty_array": [] }),
        ),
        ("array", json!([1, "two", null])),
        ("string", json!("a string")),
        ("number", json!(42)),
        ("big", json!({ "big": "x".repeat(100_000) })),
        ("nul-in-string", json!({ "nul": "a\u{0}b" })),
        ("null", serde_json::Value::Null),
    ];
    // Every value is tried, and the case fails listing all that did not round-trip.
    let mut failures = Vec::new();
    for (label, value) in values {
        let stream = format!("custom-{label}");
        let metadata = StreamMetadata {
            custom: Some(value),
            ..StreamMetadata::default()
        };
        if let Err(error) = store.set_stream_metadata(&stream, metadata.clone()).await {
            failures.push(format!("{label}: set_stream_metadata failed: {error}"));
            continue;
        }
        let read = get(&store, &stream).await;
        if read != metadata {
            failures.push(format!("{label}: stored {metadata:?}, read back {read:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "custom metadata that did not round-trip:\n{}",
        failures.join("\n")
    );
}

/// Metadata on a stream without events creates no event and no version; the stream is
/// still new for `NoStream`, and the first append keeps the metadata.
pub(crate) async fn metadata_without_events_creates_no_events<S: EventStore>(store: S) {
    let metadata = StreamMetadata {
        truncate_before: 0,
        deleted: false,
        custom: Some(json!({ "retention": "forever" })),
    };
    set(&store, "configured", metadata.clone()).await;
    assert_eq!(version_of(&store, "configured").await, 0);
    assert_eq!(head_of(&store).await, Position::START);
    assert!(visible(&store, "configured").await.is_empty());
    assert!(read_all(&store, Position::START, 10).await.is_empty());
    assert_eq!(
        append_ok(
            &store,
            "configured",
            ExpectedVersion::NoStream,
            numbered("c", 2)
        )
        .await,
        appended(2, 2)
    );
    assert_eq!(get(&store, "configured").await, metadata);
}

/// `truncate_before` hides older versions from `read_stream` in both directions; they
/// stay in `read_all`, the version stays, and appends continue.
pub(crate) async fn truncate_before_hides_from_read_stream_only<S: EventStore>(store: S) {
    let events = numbered("s", 6);
    append_ok(&store, "s", ExpectedVersion::Any, events.clone()).await;
    let log_before = all_events(&store).await;
    set(&store, "s", truncated(4)).await;
    assert_eq!(visible(&store, "s").await, vec![4, 5, 6]);
    let versions = |events: Vec<flowbed_eventsourcing::RecordedEvent>| {
        events.iter().map(|event| event.version).collect::<Vec<_>>()
    };
    assert_eq!(
        versions(read_stream(&store, "s", 5, Direction::Forward, 10).await),
        vec![5, 6]
    );
    assert_eq!(
        versions(read_stream(&store, "s", 2, Direction::Forward, 2).await),
        vec![4, 5]
    );
    assert_eq!(
        versions(read_stream(&store, "s", 5, Direction::Backward, 10).await),
        vec![5, 4]
    );
    assert!(
        read_stream(&store, "s", 3, Direction::Backward, 10)
            .await
            .is_empty()
    );
    assert_eq!(all_events(&store).await, log_before);
    assert_eq!(version_of(&store, "s").await, 6);
    assert_eq!(
        append_ok(&store, "s", ExpectedVersion::Exact(6), numbered("more", 1)).await,
        appended(7, 7)
    );
    assert_eq!(visible(&store, "s").await, vec![4, 5, 6, 7]);
    assert_eq!(get(&store, "s").await, truncated(4));
}

/// `truncate_before` 0 and 1 hide nothing.
pub(crate) async fn truncate_before_zero_and_one_hide_nothing<S: EventStore>(store: S) {
    append_ok(&store, "s", ExpectedVersion::Any, numbered("s", 3)).await;
    for version in [0, 1] {
        set(&store, "s", truncated(version)).await;
        assert_eq!(
            visible(&store, "s").await,
            vec![1, 2, 3],
            "truncate_before {version}"
        );
    }
}

/// Truncating beyond the version hides everything until appends reach the threshold.
pub(crate) async fn truncate_beyond_version_hides_until_reached<S: EventStore>(store: S) {
    append_ok(&store, "s", ExpectedVersion::Any, numbered("s", 3)).await;
    set(&store, "s", truncated(6)).await;
    assert!(visible(&store, "s").await.is_empty());
    assert_eq!(version_of(&store, "s").await, 3);
    append_ok(&store, "s", ExpectedVersion::Exact(3), numbered("t", 2)).await;
    assert!(visible(&store, "s").await.is_empty());
    append_ok(&store, "s", ExpectedVersion::Exact(5), numbered("u", 2)).await;
    assert_eq!(visible(&store, "s").await, vec![6, 7]);
    assert_eq!(all_events(&store).await.len(), 7);
}

/// The `deleted` flag set through `set_stream_metadata` hides the stream like a delete;
/// the next append clears it (and with `truncate_before` 0, every event shows again).
pub(crate) async fn deleted_flag_set_directly_hides_stream<S: EventStore>(store: S) {
    append_ok(&store, "s", ExpectedVersion::Any, numbered("s", 3)).await;
    let hidden = StreamMetadata {
        truncate_before: 0,
        deleted: true,
        custom: Some(json!({ "why": "gdpr" })),
    };
    set(&store, "s", hidden.clone()).await;
    assert!(visible(&store, "s").await.is_empty());
    assert_eq!(version_of(&store, "s").await, 3);
    assert_eq!(get(&store, "s").await, hidden);
    assert_eq!(all_events(&store).await.len(), 3);
    assert_eq!(
        append_ok(&store, "s", ExpectedVersion::Exact(3), numbered("back", 1)).await,
        appended(4, 4)
    );
    assert_eq!(
        get(&store, "s").await,
        StreamMetadata {
            deleted: false,
            ..hidden
        }
    );
    assert_eq!(visible(&store, "s").await, vec![1, 2, 3, 4]);
}

/// Each event keeps its own correlation, causation and extras (empty values, unusual keys)
/// through both read paths.
pub(crate) async fn event_metadata_round_trips<S: EventStore>(store: S) {
    let correlation = uuid::Uuid::new_v4();
    let cause = EventId::new();
    let metadatas = [
        Metadata::default(),
        Metadata::default().correlation_id(correlation),
        Metadata::default().caused_by(cause),
        Metadata::default()
            .with("", "empty key")
            .with("empty value", "")
            .with("quote\"key", "new\nline")
            .with("ключ", "值 🚀")
            .with("nul", "a\u{0}b"),
        Metadata::default()
            .correlation_id(correlation)
            .caused_by(cause)
            .with("tenant", "acme")
            .with(
                "trace",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
    ];
    let batch: Vec<EventData> = metadatas
        .iter()
        .enumerate()
        .map(|(n, metadata)| event("WithMetadata", "m", n).with_metadata(metadata.clone()))
        .collect();
    append_ok(&store, "m", ExpectedVersion::Any, batch.clone()).await;
    append_ok(
        &store,
        "m",
        ExpectedVersion::Any,
        vec![event("Later", "later", 0).with_metadata(metadatas[4].clone())],
    )
    .await;
    let read = stream_events(&store, "m").await;
    assert_eq!(read.len(), 6);
    for (index, (recorded, data)) in read.iter().zip(&batch).enumerate() {
        let n = index as u64 + 1;
        assert_recorded(recorded, data, "m", n, n);
        assert_eq!(recorded.metadata, metadatas[index]);
    }
    assert_eq!(read[5].metadata, metadatas[4]);
    assert_eq!(read[1].metadata.correlation_id, Some(correlation));
    assert_eq!(read[2].metadata.causation_id, Some(cause.as_uuid()));
    assert_eq!(all_events(&store).await, read);
}
