//! `read_stream`: both directions from every kind of starting version, limits, paging,
//! missing streams and isolation between streams.

use flowbed_eventsourcing::{Direction, EventData, EventStore, ExpectedVersion, Position};

use super::*;

/// Stream `"s"` with versions 1..=6 interleaved with stream `"t"` (positions: s1=1, s2=2,
/// t1=3, s3=4, s4=5, t2=6, s5=7, s6=8). Returns `"s"`'s events in order.
async fn interleaved<S: EventStore>(store: &S) -> Vec<EventData> {
    let s = numbered("s", 6);
    let t = numbered("t", 2);
    append_ok(store, "s", ExpectedVersion::NoStream, s[..2].to_vec()).await;
    append_ok(store, "t", ExpectedVersion::NoStream, vec![t[0].clone()]).await;
    append_ok(store, "s", ExpectedVersion::Exact(2), s[2..4].to_vec()).await;
    append_ok(store, "t", ExpectedVersion::Exact(1), vec![t[1].clone()]).await;
    append_ok(store, "s", ExpectedVersion::Exact(4), s[4..].to_vec()).await;
    s
}

/// The global position of `"s"`'s version `v` in [`interleaved`].
fn position_of(version: u64) -> u64 {
    [0, 1, 2, 4, 5, 7, 8][version as usize]
}

/// Checks that `read` holds exactly `"s"`'s `versions`, in that order, as written.
#[track_caller]
fn assert_versions(
    read: &[flowbed_eventsourcing::RecordedEvent],
    s: &[EventData],
    versions: &[u64],
) {
    assert_eq!(
        read.iter().map(|event| event.version).collect::<Vec<_>>(),
        versions,
        "versions read"
    );
    for (recorded, &version) in read.iter().zip(versions) {
        assert_recorded(
            recorded,
            &s[version as usize - 1],
            "s",
            version,
            position_of(version),
        );
    }
}

/// Forward from 0 or 1 reads the whole stream in order.
pub(crate) async fn forward_from_start<S: EventStore>(store: S) {
    let s = interleaved(&store).await;
    for from in [0, 1] {
        let read = read_stream(&store, "s", from, Direction::Forward, 100).await;
        assert_versions(&read, &s, &[1, 2, 3, 4, 5, 6]);
    }
}

/// Forward from a middle version reads it and everything after.
pub(crate) async fn forward_from_middle<S: EventStore>(store: S) {
    let s = interleaved(&store).await;
    let read = read_stream(&store, "s", 3, Direction::Forward, 100).await;
    assert_versions(&read, &s, &[3, 4, 5, 6]);
}

/// Forward from the last version reads exactly the last event.
pub(crate) async fn forward_from_last<S: EventStore>(store: S) {
    let s = interleaved(&store).await;
    let read = read_stream(&store, "s", 6, Direction::Forward, 100).await;
    assert_versions(&read, &s, &[6]);
}

/// Forward from past the end (including `u64::MAX`) reads nothing.
pub(crate) async fn forward_beyond_end_is_empty<S: EventStore>(store: S) {
    interleaved(&store).await;
    for from in [7, 8, 1000, i64::MAX as u64, u64::MAX] {
        assert!(
            read_stream(&store, "s", from, Direction::Forward, 100)
                .await
                .is_empty(),
            "forward from {from}"
        );
    }
}

/// Backward from the last version reads the whole stream newest first.
pub(crate) async fn backward_from_end<S: EventStore>(store: S) {
    let s = interleaved(&store).await;
    let read = read_stream(&store, "s", 6, Direction::Backward, 100).await;
    assert_versions(&read, &s, &[6, 5, 4, 3, 2, 1]);
}

/// Backward from a middle version reads it and everything before, newest first.
pub(crate) async fn backward_from_middle<S: EventStore>(store: S) {
    let s = interleaved(&store).await;
    let read = read_stream(&store, "s", 4, Direction::Backward, 100).await;
    assert_versions(&read, &s, &[4, 3, 2, 1]);
    let read = read_stream(&store, "s", 1, Direction::Backward, 100).await;
    assert_versions(&read, &s, &[1]);
}

/// Backward from `u64::MAX` starts at the newest event.
pub(crate) async fn backward_from_u64_max_starts_at_newest<S: EventStore>(store: S) {
    let s = interleaved(&store).await;
    let read = read_stream(&store, "s", u64::MAX, Direction::Backward, 100).await;
    assert_versions(&read, &s, &[6, 5, 4, 3, 2, 1]);
    let read = read_stream(&store, "s", u64::MAX, Direction::Backward, 2).await;
    assert_versions(&read, &s, &[6, 5]);
}

/// Backward from any version past the end starts at the newest event.
pub(crate) async fn backward_beyond_end_starts_at_newest<S: EventStore>(store: S) {
    let s = interleaved(&store).await;
    for from in [7, 100, i64::MAX as u64, i64::MAX as u64 + 1] {
        let read = read_stream(&store, "s", from, Direction::Backward, 3).await;
        assert_versions(&read, &s, &[6, 5, 4]);
    }
}

/// Backward from version 0 reads nothing (there is no event at or before it).
pub(crate) async fn backward_from_zero_is_empty<S: EventStore>(store: S) {
    interleaved(&store).await;
    assert!(
        read_stream(&store, "s", 0, Direction::Backward, 100)
            .await
            .is_empty()
    );
}

/// `max` bounds the count in both directions; 0 reads nothing.
pub(crate) async fn max_limits_both_directions<S: EventStore>(store: S) {
    let s = interleaved(&store).await;
    for direction in [Direction::Forward, Direction::Backward] {
        assert!(
            read_stream(&store, "s", 3, direction, 0).await.is_empty(),
            "{direction:?} max 0"
        );
    }
    assert_versions(
        &read_stream(&store, "s", 2, Direction::Forward, 1).await,
        &s,
        &[2],
    );
    assert_versions(
        &read_stream(&store, "s", 2, Direction::Forward, 3).await,
        &s,
        &[2, 3, 4],
    );
    assert_versions(
        &read_stream(&store, "s", 5, Direction::Backward, 1).await,
        &s,
        &[5],
    );
    assert_versions(
        &read_stream(&store, "s", 5, Direction::Backward, 3).await,
        &s,
        &[5, 4, 3],
    );
    assert_versions(
        &read_stream(&store, "s", 1, Direction::Forward, usize::MAX).await,
        &s,
        &[1, 2, 3, 4, 5, 6],
    );
    assert_versions(
        &read_stream(&store, "s", u64::MAX, Direction::Backward, usize::MAX).await,
        &s,
        &[6, 5, 4, 3, 2, 1],
    );
}

/// Paging by `max` in either direction visits every event once.
pub(crate) async fn paging_forward_and_backward<S: EventStore>(store: S) {
    let batch = numbered("p", 25);
    append_ok(&store, "paged", ExpectedVersion::Any, batch.clone()).await;
    let mut forward = Vec::new();
    let mut from = 1;
    loop {
        let page = read_stream(&store, "paged", from, Direction::Forward, 4).await;
        assert!(page.len() <= 4);
        let Some(last) = page.last() else { break };
        assert!(page[0].version >= from, "forward from {from} went back");
        from = last.version + 1;
        forward.extend(page);
    }
    assert_eq!(forward.len(), 25);
    assert_eq!(ids_of(&forward), data_ids(&batch));

    let mut backward = Vec::new();
    let mut from = u64::MAX;
    loop {
        let page = read_stream(&store, "paged", from, Direction::Backward, 7).await;
        assert!(page.len() <= 7);
        let Some(last) = page.last() else { break };
        assert!(page[0].version <= from, "backward from {from} went forward");
        assert!(
            last.version <= page[0].version,
            "a backward page is not newest first"
        );
        backward.extend(page.iter().cloned());
        if last.version == 1 {
            assert!(
                read_stream(&store, "paged", 0, Direction::Backward, 7)
                    .await
                    .is_empty()
            );
            break;
        }
        from = last.version - 1;
    }
    backward.reverse();
    assert_eq!(backward, forward);
}

/// A stream that was never written reads empty from anywhere, in both directions.
pub(crate) async fn missing_stream_reads_empty<S: EventStore>(store: S) {
    for stored in [false, true] {
        if stored {
            append_ok(&store, "present", ExpectedVersion::Any, numbered("p", 3)).await;
        }
        for from in [0, 1, 5, u64::MAX] {
            for direction in [Direction::Forward, Direction::Backward] {
                assert!(
                    read_stream(&store, "absent", from, direction, 100)
                        .await
                        .is_empty(),
                    "absent stream from {from} {direction:?}"
                );
            }
        }
        assert_eq!(version_of(&store, "absent").await, 0);
    }
}

/// A stream read returns only that stream's events, also for ids that share a prefix.
pub(crate) async fn only_its_own_stream<S: EventStore>(store: S) {
    let streams = ["a", "a-1", "a-10", "b", "A"];
    for round in 0..4 {
        for stream in streams {
            append_ok(
                &store,
                stream,
                ExpectedVersion::Any,
                vec![event("E", stream, round)],
            )
            .await;
        }
    }
    for (index, stream) in streams.iter().enumerate() {
        let forward = read_stream(&store, stream, 1, Direction::Forward, 100).await;
        assert_eq!(forward.len(), 4, "{stream:?}");
        for (round, recorded) in forward.iter().enumerate() {
            assert_eq!(recorded.stream_id, *stream);
            assert_eq!(recorded.version, round as u64 + 1);
            assert_eq!(
                recorded.position,
                Position((round * streams.len() + index) as u64 + 1)
            );
            assert_eq!(recorded.payload, payload(stream, round));
        }
        let mut backward = read_stream(&store, stream, u64::MAX, Direction::Backward, 100).await;
        backward.reverse();
        assert_eq!(backward, forward);
    }
}

/// `read_stream` and `read_all` return identical records for the same events.
pub(crate) async fn read_stream_matches_read_all<S: EventStore>(store: S) {
    interleaved(&store).await;
    let all = all_events(&store).await;
    for stream in ["s", "t"] {
        let by_stream = stream_events(&store, stream).await;
        let from_log: Vec<_> = all
            .iter()
            .filter(|event| event.stream_id == stream)
            .cloned()
            .collect();
        assert_eq!(by_stream, from_log, "stream {stream:?}");
    }
}
