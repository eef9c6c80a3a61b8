//! Appending: numbering, what is stored, empty appends, input validation, payload sizes and
//! unusual stream ids.

use std::time::SystemTime;

use flowbed_eventsourcing::{
    AppendError, AppendResult, Direction, EventData, EventStore, ExpectedVersion, Metadata,
    Position, StreamMetadata,
};

use super::*;

/// The first append to a new stream numbers its events 1.. and the store's positions 1...
pub(crate) async fn first_append_numbers_from_one<S: EventStore>(store: S) {
    let batch = numbered("first", 3);
    let result = append_ok(&store, "cart-1", ExpectedVersion::Any, batch.clone()).await;
    assert_eq!(result, appended(3, 3));

    let read = read_stream(&store, "cart-1", 1, Direction::Forward, 10).await;
    assert_eq!(read.len(), 3);
    for (index, (recorded, data)) in read.iter().zip(&batch).enumerate() {
        let n = index as u64 + 1;
        assert_recorded(recorded, data, "cart-1", n, n);
    }
    assert_eq!(version_of(&store, "cart-1").await, 3);
    assert_eq!(head_of(&store).await, Position(3));
}

/// Versions count per stream, positions count over the whole store.
pub(crate) async fn appends_continue_numbering_across_streams<S: EventStore>(store: S) {
    let a1 = numbered("a1", 2);
    let b1 = numbered("b1", 1);
    let a2 = numbered("a2", 3);
    let c1 = numbered("c1", 1);
    assert_eq!(
        append_ok(&store, "a", ExpectedVersion::Any, a1.clone()).await,
        appended(2, 2)
    );
    assert_eq!(
        append_ok(&store, "b", ExpectedVersion::Any, b1.clone()).await,
        appended(1, 3)
    );
    assert_eq!(
        append_ok(&store, "a", ExpectedVersion::Exact(2), a2.clone()).await,
        appended(5, 6)
    );
    assert_eq!(
        append_ok(&store, "c", ExpectedVersion::NoStream, c1.clone()).await,
        appended(1, 7)
    );

    let all = all_events(&store).await;
    let expected: Vec<(&str, u64, u64, &EventData)> = vec![
        ("a", 1, 1, &a1[0]),
        ("a", 2, 2, &a1[1]),
        ("b", 1, 3, &b1[0]),
        ("a", 3, 4, &a2[0]),
        ("a", 4, 5, &a2[1]),
        ("a", 5, 6, &a2[2]),
        ("c", 1, 7, &c1[0]),
    ];
    assert_eq!(all.len(), expected.len());
    for (recorded, (stream, version, position, data)) in all.iter().zip(expected) {
        assert_recorded(recorded, data, stream, version, position);
    }
    assert_eq!(version_of(&store, "a").await, 5);
    assert_eq!(version_of(&store, "b").await, 1);
    assert_eq!(version_of(&store, "c").await, 1);
    assert_eq!(head_of(&store).await, Position(7));
}

/// Every field of an appended event reads back as written (type, schema version, payload,
/// metadata with correlation, causation and extras), on both read paths.
pub(crate) async fn recorded_event_round_trips_every_field<S: EventStore>(store: S) {
    let cause = flowbed_eventsourcing::EventId::new();
    let correlation = uuid::Uuid::new_v4();
    let full = EventData::new(
        "OrderPlaced",
        br#"{"order":"o-1","lines":[1,2,3]}"#.to_vec(),
    )
    .with_schema_version(4)
    .with_metadata(
        Metadata::default()
            .correlation_id(correlation)
            .caused_by(cause)
            .with("tenant", "acme")
            .with("user", "ü-42"),
    );
    let bare = EventData::new("OrderShipped", b"{}".to_vec());
    let result = append_ok(
        &store,
        "order-1",
        ExpectedVersion::NoStream,
        vec![full.clone(), bare.clone()],
    )
    .await;
    assert_eq!(result, appended(2, 2));

    let read = read_stream(&store, "order-1", 0, Direction::Forward, 10).await;
    assert_eq!(read.len(), 2);
    assert_recorded(&read[0], &full, "order-1", 1, 1);
    assert_recorded(&read[1], &bare, "order-1", 2, 2);
    assert_eq!(read[0].metadata.correlation_id, Some(correlation));
    assert_eq!(read[0].metadata.causation_id, Some(cause.as_uuid()));
    assert_eq!(read[0].metadata.extra["tenant"], "acme");
    assert_eq!(read[0].schema_version, 4);
    assert!(read[1].metadata.is_empty());
    assert_eq!(read_all(&store, Position::START, 10).await, read);
}

/// `recorded_at` is the appending moment at microsecond precision, equal on every read path.
pub(crate) async fn recorded_at_round_trips_at_microsecond_precision<S: EventStore>(store: S) {
    let before = floor_micros(SystemTime::now());
    append_ok(&store, "clock", ExpectedVersion::Any, numbered("t", 2)).await;
    let after = SystemTime::now();

    let by_stream = read_stream(&store, "clock", 1, Direction::Forward, 10).await;
    let by_log = read_all(&store, Position::START, 10).await;
    let backward = read_stream(&store, "clock", u64::MAX, Direction::Backward, 10).await;
    assert_eq!(by_stream.len(), 2);
    for event in &by_stream {
        assert_micros(event.recorded_at);
        assert!(
            before <= event.recorded_at && event.recorded_at <= after,
            "recorded_at {:?} outside the append call [{before:?}, {after:?}]",
            event.recorded_at
        );
    }
    assert_eq!(by_stream, by_log);
    assert_eq!(
        backward.iter().rev().cloned().collect::<Vec<_>>(),
        by_stream
    );
}

/// One batch is accepted at one instant: its events share `recorded_at` (the memory
/// store's rule, the batch being atomic).
pub(crate) async fn recorded_at_is_one_instant_per_batch<S: EventStore>(store: S) {
    append_ok(&store, "batch", ExpectedVersion::Any, numbered("b", 5)).await;
    let read = read_stream(&store, "batch", 1, Direction::Forward, 10).await;
    assert_eq!(read.len(), 5);
    for event in &read[1..] {
        assert_eq!(
            event.recorded_at, read[0].recorded_at,
            "events of one batch recorded at different instants"
        );
    }
}

/// An empty append to a new stream checks the expected version only: no event, no
/// position, no stream created.
pub(crate) async fn empty_append_to_new_stream_checks_version_only<S: EventStore>(store: S) {
    let empty = AppendResult {
        version: 0,
        position: None,
        deduplicated: false,
    };
    for expected in [
        ExpectedVersion::Any,
        ExpectedVersion::NoStream,
        ExpectedVersion::Exact(0),
    ] {
        assert_eq!(
            append_ok(&store, "nothing", expected, Vec::new()).await,
            empty,
            "empty append expecting {expected:?}"
        );
    }
    assert_wrong_version(
        store
            .append("nothing", ExpectedVersion::StreamExists, Vec::new())
            .await,
        "nothing",
        ExpectedVersion::StreamExists,
        0,
    );
    assert_wrong_version(
        store
            .append("nothing", ExpectedVersion::Exact(1), Vec::new())
            .await,
        "nothing",
        ExpectedVersion::Exact(1),
        0,
    );
    assert_eq!(version_of(&store, "nothing").await, 0);
    assert_eq!(head_of(&store).await, Position::START);
    assert!(read_all(&store, Position::START, 10).await.is_empty());
    assert_eq!(
        store.stream_metadata("nothing").await.expect("metadata"),
        StreamMetadata::default()
    );
    // The stream is still new: NoStream accepts a real append.
    assert_eq!(
        append_ok(
            &store,
            "nothing",
            ExpectedVersion::NoStream,
            numbered("x", 1)
        )
        .await,
        appended(1, 1)
    );
}

/// An empty append to an existing stream answers with its version and no position.
pub(crate) async fn empty_append_to_existing_stream_checks_version_only<S: EventStore>(store: S) {
    append_ok(&store, "s", ExpectedVersion::Any, numbered("s", 2)).await;
    let before = observe(&store, &["s"]).await;
    let empty = AppendResult {
        version: 2,
        position: None,
        deduplicated: false,
    };
    for expected in [
        ExpectedVersion::Any,
        ExpectedVersion::StreamExists,
        ExpectedVersion::Exact(2),
    ] {
        assert_eq!(
            append_ok(&store, "s", expected, Vec::new()).await,
            empty,
            "empty append expecting {expected:?}"
        );
    }
    assert_wrong_version(
        store
            .append("s", ExpectedVersion::Exact(1), Vec::new())
            .await,
        "s",
        ExpectedVersion::Exact(1),
        2,
    );
    assert_wrong_version(
        store
            .append("s", ExpectedVersion::NoStream, Vec::new())
            .await,
        "s",
        ExpectedVersion::NoStream,
        2,
    );
    assert_eq!(observe(&store, &["s"]).await, before);
}

/// An empty stream id is refused by every writing method, and nothing is written.
pub(crate) async fn empty_stream_id_rejected<S: EventStore>(store: S) {
    let result = store
        .append("", ExpectedVersion::Any, numbered("e", 2))
        .await;
    assert!(
        matches!(result, Err(AppendError::EmptyStreamId)),
        "append with events: {result:?}"
    );
    let result = store.append("", ExpectedVersion::Any, Vec::new()).await;
    assert!(
        matches!(result, Err(AppendError::EmptyStreamId)),
        "empty append: {result:?}"
    );
    let result = store
        .set_stream_metadata("", StreamMetadata::default())
        .await;
    assert!(
        matches!(result, Err(AppendError::EmptyStreamId)),
        "set_stream_metadata: {result:?}"
    );
    let result = store.delete_stream("", ExpectedVersion::Any).await;
    assert!(
        matches!(result, Err(AppendError::EmptyStreamId)),
        "delete_stream: {result:?}"
    );
    assert_eq!(head_of(&store).await, Position::START);
    assert!(read_all(&store, Position::START, 10).await.is_empty());
}

/// The same id twice in one batch is refused, naming the id, and nothing of the batch is
/// stored (its ids stay unused).
pub(crate) async fn duplicate_id_in_batch_rejected<S: EventStore>(store: S) {
    append_ok(&store, "other", ExpectedVersion::Any, numbered("o", 1)).await;
    let before = observe(&store, &["dup", "other"]).await;
    let first = event("E", "first", 0);
    let second = event("E", "second", 1);
    let again = event("E", "again", 2).with_id(first.id);
    let result = store
        .append(
            "dup",
            ExpectedVersion::Any,
            vec![first.clone(), second.clone(), again],
        )
        .await;
    match result {
        Err(AppendError::DuplicateEventInBatch { event_id }) => assert_eq!(event_id, first.id),
        other => panic!("expected DuplicateEventInBatch, got {other:?}"),
    }
    assert_eq!(observe(&store, &["dup", "other"]).await, before);
    // The ids were not burned: the corrected batch is a fresh append.
    assert_eq!(
        append_ok(
            &store,
            "dup",
            ExpectedVersion::NoStream,
            vec![first, second]
        )
        .await,
        appended(2, 3)
    );
}

/// Batch validation comes before the expected-version check.
pub(crate) async fn duplicate_id_checked_before_expected_version<S: EventStore>(store: S) {
    let first = event("E", "first", 0);
    let result = store
        .append(
            "dup",
            ExpectedVersion::Exact(7),
            vec![first.clone(), first.clone()],
        )
        .await;
    match result {
        Err(AppendError::DuplicateEventInBatch { event_id }) => assert_eq!(event_id, first.id),
        other => panic!("expected DuplicateEventInBatch, got {other:?}"),
    }
    assert_eq!(head_of(&store).await, Position::START);
}

/// Schema versions 0, 1 and `u32::MAX` are stored as given.
pub(crate) async fn schema_version_full_range<S: EventStore>(store: S) {
    let batch: Vec<EventData> = [0, 1, 2, i32::MAX as u32, i32::MAX as u32 + 1, u32::MAX]
        .into_iter()
        .enumerate()
        .map(|(n, version)| event("Versioned", "v", n).with_schema_version(version))
        .collect();
    append_ok(&store, "versions", ExpectedVersion::Any, batch.clone()).await;
    let read = read_stream(&store, "versions", 1, Direction::Forward, 10).await;
    assert_eq!(read.len(), batch.len());
    for (index, (recorded, data)) in read.iter().zip(&batch).enumerate() {
        let n = index as u64 + 1;
        assert_recorded(recorded, data, "versions", n, n);
    }
}

/// An empty payload (not JSON) is stored and read back empty.
pub(crate) async fn empty_payload_round_trips<S: EventStore>(store: S) {
    let empty = EventData::new("Ping", Vec::new());
    let other = event("Pong", "p", 0);
    append_ok(
        &store,
        "ping",
        ExpectedVersion::Any,
        vec![empty.clone(), other.clone()],
    )
    .await;
    let read = read_stream(&store, "ping", 1, Direction::Forward, 10).await;
    assert_eq!(read.len(), 2);
    assert_recorded(&read[0], &empty, "ping", 1, 1);
    assert!(read[0].payload.is_empty());
    assert_recorded(&read[1], &other, "ping", 2, 2);
    assert_eq!(read_all(&store, Position::START, 10).await, read);
}

/// Payloads are bytes: every byte value (NUL, invalid UTF-8) survives unchanged.
pub(crate) async fn binary_payload_round_trips<S: EventStore>(store: S) {
    let bytes: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    let binary = EventData::new("Blob", bytes.clone());
    let invalid_utf8 = EventData::new("Blob", vec![0xff, 0xfe, 0x00, 0xc3, 0x28]);
    append_ok(
        &store,
        "blobs",
        ExpectedVersion::Any,
        vec![binary.clone(), invalid_utf8.clone()],
    )
    .await;
    let read = read_stream(&store, "blobs", 1, Direction::Forward, 10).await;
    assert_eq!(read.len(), 2);
    assert_recorded(&read[0], &binary, "blobs", 1, 1);
    assert_eq!(read[0].payload, bytes);
    assert_recorded(&read[1], &invalid_utf8, "blobs", 2, 2);
    assert_eq!(read_all(&store, Position::START, 10).await, read);
}

/// 1 MiB payloads, JSON (with whitespace and key order a JSON column would normalize) and
/// binary, survive byte for byte.
pub(crate) async fn large_payloads_round_trip<S: EventStore>(store: S) {
    const MIB: usize = 1 << 20;
    let mut json = String::from("{ \"z\" : 1,  \"a\" : [");
    let mut n = 0u64;
    while json.len() < MIB - 32 {
        json.push_str(&format!(" {n} ,"));
        n += 1;
    }
    json.push_str(" 0 ] }");
    while json.len() < MIB {
        json.insert(json.len() - 1, ' ');
    }
    assert_eq!(json.len(), MIB);
    let json_event = EventData::new("Big", json.into_bytes());
    let binary: Vec<u8> = (0..MIB).map(|i| (i * 31 % 251) as u8).collect();
    let binary_event = EventData::new("BigBlob", binary);
    let small = event("Small", "s", 0);
    let result = append_ok(
        &store,
        "big",
        ExpectedVersion::NoStream,
        vec![json_event.clone(), binary_event.clone(), small.clone()],
    )
    .await;
    assert_eq!(result, appended(3, 3));
    let read = read_stream(&store, "big", 1, Direction::Forward, 10).await;
    assert_eq!(read.len(), 3);
    assert_recorded(&read[0], &json_event, "big", 1, 1);
    assert_recorded(&read[1], &binary_event, "big", 2, 2);
    assert_recorded(&read[2], &small, "big", 3, 3);
    assert_eq!(
        read_all(&store, Position(1), 1).await,
        vec![read[1].clone()]
    );
}

/// Unicode stream ids and event types are stored and matched exactly.
pub(crate) async fn unicode_stream_ids_and_event_types<S: EventStore>(store: S) {
    let streams = ["流水-ü-🚀", "Ωmega/ß", "e\u{301}", "\u{e9}"];
    let mut written = Vec::new();
    for (n, stream) in streams.iter().enumerate() {
        let data = EventData::new("Überweisung✓-注文", payload("ü", n))
            .with_metadata(Metadata::default().with("grüße", "👋"));
        assert_eq!(
            append_ok(
                &store,
                stream,
                ExpectedVersion::NoStream,
                vec![data.clone()]
            )
            .await,
            appended(1, n as u64 + 1)
        );
        written.push(data);
    }
    // "e" + combining acute and the precomposed "é" are different byte strings, hence
    // different streams (no normalization).
    for (n, stream) in streams.iter().enumerate() {
        let read = read_stream(&store, stream, 1, Direction::Forward, 10).await;
        assert_eq!(read.len(), 1, "stream {stream:?}");
        assert_recorded(&read[0], &written[n], stream, 1, n as u64 + 1);
        assert_eq!(version_of(&store, stream).await, 1);
    }
    let all = all_events(&store).await;
    assert_eq!(
        all.iter().map(|e| e.stream_id.as_str()).collect::<Vec<_>>(),
        streams
    );
}

/// Stream ids with quotes, SQL wildcards, backslashes and 1000 characters are plain ids.
pub(crate) async fn special_character_stream_ids<S: EventStore>(store: S) {
    let long = "x".repeat(1000);
    let streams = [
        "'; DROP TABLE events; --",
        "a%",
        "a_",
        "a",
        "\"quoted\"",
        "back\\slash",
        "tab\there",
        " spaced ",
        long.as_str(),
    ];
    for (n, stream) in streams.iter().enumerate() {
        assert_eq!(
            append_ok(
                &store,
                stream,
                ExpectedVersion::NoStream,
                numbered(stream, 1)
            )
            .await,
            appended(1, n as u64 + 1),
            "stream {stream:?}"
        );
    }
    for (n, stream) in streams.iter().enumerate() {
        let read = read_stream(&store, stream, 1, Direction::Forward, 10).await;
        assert_eq!(read.len(), 1, "stream {stream:?}");
        assert_eq!(read[0].stream_id, *stream);
        assert_eq!(read[0].position, Position(n as u64 + 1));
        let meta = StreamMetadata {
            custom: Some(serde_json::json!({ "n": n })),
            ..StreamMetadata::default()
        };
        store
            .set_stream_metadata(stream, meta.clone())
            .await
            .expect("set metadata");
        assert_eq!(store.stream_metadata(stream).await.expect("metadata"), meta);
    }
    assert_eq!(head_of(&store).await, Position(streams.len() as u64));
}

/// Ids differing in case, a trailing space or a suffix are different streams.
pub(crate) async fn similar_stream_ids_are_distinct<S: EventStore>(store: S) {
    let streams = ["cart", "Cart", "CART", "cart ", "cart-1", "cart-10", "car"];
    for (n, stream) in streams.iter().enumerate() {
        append_ok(
            &store,
            stream,
            ExpectedVersion::NoStream,
            numbered(stream, n + 1),
        )
        .await;
    }
    for (n, stream) in streams.iter().enumerate() {
        assert_eq!(version_of(&store, stream).await, n as u64 + 1, "{stream:?}");
        let read = stream_events(&store, stream).await;
        assert_eq!(read.len(), n + 1, "{stream:?}");
        assert!(read.iter().all(|event| event.stream_id == *stream));
    }
}

/// 2000 events in one batch get versions 1..=2000 and dense positions after the existing
/// ones.
pub(crate) async fn large_batch_numbered_densely<S: EventStore>(store: S) {
    append_ok(&store, "before", ExpectedVersion::Any, numbered("b", 3)).await;
    let batch = numbered("big", 2000);
    assert_eq!(
        append_ok(&store, "bulk", ExpectedVersion::NoStream, batch.clone()).await,
        appended(2000, 2003)
    );
    let read = stream_events(&store, "bulk").await;
    assert_eq!(read.len(), 2000);
    for (index, (recorded, data)) in read.iter().zip(&batch).enumerate() {
        assert_recorded(recorded, data, "bulk", index as u64 + 1, index as u64 + 4);
    }
    assert_eq!(
        append_ok(&store, "after", ExpectedVersion::Any, numbered("a", 1)).await,
        appended(1, 2004)
    );
}
