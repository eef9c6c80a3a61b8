//! Concurrent appenders: optimistic concurrency has exactly one winner per version, and
//! the global log stays dense and in commit order for writers and readers alike.

use std::collections::HashMap;
use std::sync::Arc;

use flowbed_eventsourcing::{
    AppendError, AppendResult, EventId, EventStore, ExpectedVersion, Position, RecordedEvent,
};
use tokio::sync::Barrier;

use super::*;

/// Checks that the log is positions 1..=n and that each stream's versions are 1..=k in
/// position order. Returns the log.
async fn assert_dense_log<S: EventStore>(store: &S, expected_len: usize) -> Vec<RecordedEvent> {
    let log = all_events(store).await;
    assert_eq!(log.len(), expected_len, "events in the log");
    let mut versions: HashMap<&str, u64> = HashMap::new();
    for (index, event) in log.iter().enumerate() {
        assert_eq!(
            event.position,
            Position(index as u64 + 1),
            "dense positions"
        );
        let version = versions.entry(event.stream_id.as_str()).or_insert(0);
        *version += 1;
        assert_eq!(
            event.version, *version,
            "versions of {:?} in position order",
            event.stream_id
        );
    }
    assert_eq!(head_of(store).await, Position(expected_len as u64));
    log
}

/// Per round, six writers append to one stream expecting the same version: exactly one
/// wins, the others are refused with the winner's version as actual.
pub(crate) async fn exact_appenders_one_winner_per_version<S: EventStore>(store: S) {
    const WRITERS: usize = 6;
    const ROUNDS: u64 = 15;
    let barrier = Arc::new(Barrier::new(WRITERS));
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let (store, barrier) = (store.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let mut outcomes: Vec<(u64, EventId, Result<AppendResult, AppendError>)> = Vec::new();
            for round in 0..ROUNDS {
                let data = event("Attempt", &format!("writer-{writer}"), round as usize);
                let id = data.id;
                barrier.wait().await;
                let result = store
                    .append("contended", ExpectedVersion::Exact(round), vec![data])
                    .await;
                outcomes.push((round, id, result));
                // Nobody starts the next round before every attempt of this one returned.
                barrier.wait().await;
            }
            outcomes
        }));
    }
    let mut winners: HashMap<u64, Vec<EventId>> = HashMap::new();
    for task in tasks {
        let outcomes = within("a contending writer", task)
            .await
            .expect("a contending writer panicked");
        for (round, id, result) in outcomes {
            match result {
                Ok(result) => {
                    assert_eq!(result, appended(round + 1, round + 1), "round {round}");
                    winners.entry(round).or_default().push(id);
                }
                Err(AppendError::WrongExpectedVersion {
                    stream,
                    expected,
                    actual,
                }) => assert_eq!(
                    (stream.as_str(), expected, actual),
                    ("contended", ExpectedVersion::Exact(round), round + 1),
                    "a loser of round {round}"
                ),
                Err(other) => panic!("round {round}: unexpected error {other}"),
            }
        }
    }
    let log = assert_dense_log(&store, ROUNDS as usize).await;
    for round in 0..ROUNDS {
        let ids = &winners[&round];
        assert_eq!(ids.len(), 1, "exactly one winner in round {round}");
        assert_eq!(
            log[round as usize].id, ids[0],
            "the winner's event is stored"
        );
    }
}

/// Sixteen writers, each on its own stream, appending 2-event batches at once: all
/// succeed, each answer matches what was stored, and positions stay dense.
pub(crate) async fn appenders_on_different_streams_all_succeed<S: EventStore>(store: S) {
    const WRITERS: usize = 16;
    const APPENDS: usize = 20;
    let barrier = Arc::new(Barrier::new(WRITERS));
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let (store, barrier) = (store.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let stream = format!("stream-{writer}");
            barrier.wait().await;
            let mut answers = Vec::new();
            for n in 0..APPENDS {
                let batch = numbered(&format!("{stream}-{n}"), 2);
                let ids = data_ids(&batch);
                let result =
                    append_ok(&store, &stream, ExpectedVersion::Exact(2 * n as u64), batch).await;
                answers.push((ids, result));
            }
            (stream, answers)
        }));
    }
    let mut answered = Vec::new();
    for task in tasks {
        answered.push(within("a writer", task).await.expect("a writer panicked"));
    }
    let log = assert_dense_log(&store, WRITERS * APPENDS * 2).await;
    for (stream, answers) in answered {
        for (n, (ids, result)) in answers.into_iter().enumerate() {
            assert_eq!(result.version, 2 * n as u64 + 2, "{stream} append {n}");
            assert!(!result.deduplicated);
            let position = result.position.expect("a position").0 as usize;
            let stored = &log[position - 2..position];
            assert_eq!(
                ids_of(stored),
                ids,
                "{stream} append {n}: the answer's position"
            );
            assert!(stored.iter().all(|event| event.stream_id == stream));
            assert_eq!(stored[1].version, result.version);
        }
    }
}

/// Eight writers appending with `Any` to one stream: versions 1..=120 without gaps or
/// repeats, and each answer names its own event.
pub(crate) async fn any_appenders_on_one_stream_dense_versions<S: EventStore>(store: S) {
    const WRITERS: usize = 8;
    const APPENDS: usize = 15;
    let barrier = Arc::new(Barrier::new(WRITERS));
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let (store, barrier) = (store.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut answers = Vec::new();
            for n in 0..APPENDS {
                let data = event("Any", &format!("w{writer}"), n);
                let id = data.id;
                let result = append_ok(&store, "shared", ExpectedVersion::Any, vec![data]).await;
                answers.push((id, result));
            }
            answers
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.extend(within("a writer", task).await.expect("a writer panicked"));
    }
    let log = assert_dense_log(&store, WRITERS * APPENDS).await;
    let mut versions: Vec<u64> = answers.iter().map(|(_, result)| result.version).collect();
    versions.sort_unstable();
    assert_eq!(
        versions,
        (1..=(WRITERS * APPENDS) as u64).collect::<Vec<_>>()
    );
    for (id, result) in answers {
        let position = result.position.expect("a position");
        let stored = &log[position.0 as usize - 1];
        assert_eq!((stored.id, stored.version), (id, result.version));
    }
}

/// While four writers commit batches, a reader following `read_all` never sees a hole or a
/// repeat, and `head()` never names a position `read_all` cannot return.
pub(crate) async fn readers_never_see_gaps_while_writers_commit<S: EventStore>(store: S) {
    const WRITERS: usize = 4;
    const APPENDS: usize = 30;
    let total: usize = (0..WRITERS)
        .map(|_| (0..APPENDS).map(|n| 1 + n % 3).sum::<usize>())
        .sum();
    let reader_store = store.clone();
    let reader = tokio::spawn(async move {
        let mut watch = reader_store.watch_head();
        let mut last = Position::START;
        let mut pages = 0usize;
        while last.0 < total as u64 {
            let head = head_of(&reader_store).await;
            if head > Position::START {
                let newest = read_all(&reader_store, Position(head.0 - 1), 1).await;
                assert_eq!(
                    newest.first().map(|event| event.position),
                    Some(head),
                    "head() named {head}, read_all did not return it"
                );
            }
            let page = read_all(&reader_store, last, 5).await;
            if page.is_empty() {
                let seen = last;
                within(
                    "a commit announced on watch_head",
                    watch.wait_for(|head| *head > seen),
                )
                .await
                .expect("the head watch closed");
                continue;
            }
            for event in &page {
                assert_eq!(event.position, last.next(), "read_all skipped or repeated");
                last = event.position;
            }
            pages += 1;
        }
        pages
    });
    let barrier = Arc::new(Barrier::new(WRITERS));
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let (store, barrier) = (store.clone(), barrier.clone());
        writers.push(tokio::spawn(async move {
            barrier.wait().await;
            for n in 0..APPENDS {
                let stream = format!("w{writer}-{}", n % 2);
                append_ok(
                    &store,
                    &stream,
                    ExpectedVersion::Any,
                    numbered(&format!("{writer}-{n}"), 1 + n % 3),
                )
                .await;
            }
        }));
    }
    for writer in writers {
        within("a writer", writer).await.expect("a writer panicked");
    }
    let pages = within("the reader", reader)
        .await
        .expect("the reader panicked");
    assert!(
        pages >= total / 5,
        "the reader read everything in pages of 5"
    );
    assert_dense_log(&store, total).await;
}
