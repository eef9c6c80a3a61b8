//! The gap-problem chaos test: many PostgreSQL writers commit in an order unrelated to
//! when they started, some roll back, while a live subscriber reads the global log. The
//! subscriber must see every committed event exactly once, in position order 1..n, and
//! nothing that was rolled back or rejected.
//!
//! * 16 transactional writers loop: begin, `append_in` (1-3 events to one of 12 shared
//!   streams), wait 0-5 ms (seeded xorshift) while holding the transaction open, then
//!   commit, or roll back about 5 % of the time.
//! * 4 writers use the store's `append` (group commit) with `Exact` expected versions read
//!   just before (so some lose the race and are rejected) and now and then replay their
//!   previous append (which must be deduplicated, not stored twice).
//! * One `Subscription::all` follows the log live from the start until a sentinel event
//!   appended after every writer finished.
//!
//! Needs the server at `FLOWBED_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`)
//! and fails, saying so, when it is unreachable.
#![cfg(feature = "postgres")]

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use flowbed_eventsourcing::postgres::PostgresStore;
use flowbed_eventsourcing::{
    AppendError, EventData, EventId, EventStore, ExpectedVersion, Position, RecordedEvent,
    Subscription,
};

use common::postgres::{connect_client, connect_store, fresh_schema};

const SCHEMA: &str = "es_pg_chaos";
const TRANSACTIONAL_WRITERS: u64 = 16;
const TRANSACTIONS_EACH: usize = 40;
const GROUP_COMMIT_WRITERS: u64 = 4;
const APPENDS_EACH: usize = 60;
const STREAMS: u64 = 12;

/// xorshift64*: a seeded, dependency-free generator (the same run every time, whatever
/// the scheduling).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

fn events(rng: &mut Rng, writer: u64) -> Vec<EventData> {
    (0..1 + rng.below(3))
        .map(|_| EventData::new("Chaos", format!(r#"{{"writer":{writer}}}"#).into_bytes()))
        .collect()
}

/// What one writer did: ids committed (with the position the store reported for each),
/// and ids that must never appear (rolled back or rejected).
#[derive(Default)]
struct Outcome {
    committed: HashMap<EventId, Position>,
    absent: HashSet<EventId>,
    rollbacks: usize,
    rejections: usize,
    replays: usize,
}

impl Outcome {
    fn commit(&mut self, events: &[EventData], last: Position) {
        let first = last.0 + 1 - events.len() as u64;
        for (offset, event) in events.iter().enumerate() {
            self.committed
                .insert(event.id, Position(first + offset as u64));
        }
    }
}

async fn transactional_writer(store: PostgresStore, writer: u64) -> Outcome {
    let mut client = connect_client().await;
    let mut rng = Rng::new(writer + 1);
    let mut outcome = Outcome::default();
    for _ in 0..TRANSACTIONS_EACH {
        let stream = format!("stream-{}", rng.below(STREAMS));
        let batch = events(&mut rng, writer);
        let transaction = client.transaction().await.expect("begin");
        let result = store
            .append_in(&transaction, &stream, ExpectedVersion::Any, batch.clone())
            .await
            .expect("append_in");
        // Commit late, holding the position lock: other writers queue behind it.
        tokio::time::sleep(Duration::from_micros(rng.below(5_000))).await;
        if rng.below(20) == 0 {
            transaction.rollback().await.expect("rollback");
            outcome.absent.extend(batch.iter().map(|event| event.id));
            outcome.rollbacks += 1;
        } else {
            transaction.commit().await.expect("commit");
            outcome.commit(&batch, result.position.expect("a position"));
        }
    }
    outcome
}

async fn group_commit_writer(store: PostgresStore, writer: u64) -> Outcome {
    let mut rng = Rng::new(1_000 + writer);
    let mut outcome = Outcome::default();
    let mut previous: Option<(String, Vec<EventData>, Position)> = None;
    for _ in 0..APPENDS_EACH {
        if let (Some((stream, batch, position)), 0) = (&previous, rng.below(10)) {
            let replay = store
                .append(stream, ExpectedVersion::NoStream, batch.clone())
                .await
                .expect("a replay succeeds");
            assert!(replay.deduplicated, "a replay must not write");
            assert_eq!(replay.position, Some(*position));
            outcome.replays += 1;
            continue;
        }
        let stream = format!("stream-{}", rng.below(STREAMS));
        let batch = events(&mut rng, 100 + writer);
        let version = store.stream_version(&stream).await.expect("stream_version");
        match store
            .append(&stream, ExpectedVersion::Exact(version), batch.clone())
            .await
        {
            Ok(result) => {
                let position = result.position.expect("a position");
                outcome.commit(&batch, position);
                previous = Some((stream, batch, position));
            }
            Err(AppendError::WrongExpectedVersion { .. }) => {
                outcome.absent.extend(batch.iter().map(|event| event.id));
                outcome.rejections += 1;
            }
            Err(other) => panic!("append failed: {other}"),
        }
    }
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_live_subscriber_sees_every_committed_event_once_in_order_and_no_rolled_back_one() {
    let _admin = fresh_schema(SCHEMA).await;
    let store = connect_store(SCHEMA).await;

    let subscriber = tokio::spawn({
        let store = store.clone();
        async move {
            let mut subscription = Subscription::all(store, Position::START).batch_size(64);
            let mut seen: Vec<RecordedEvent> = Vec::new();
            loop {
                let event = subscription.next().await.expect("the subscription reads");
                if event.event_type == "Sentinel" {
                    return (seen, event);
                }
                seen.push(event);
            }
        }
    });

    let run = async {
        let mut writers = Vec::new();
        for writer in 0..TRANSACTIONAL_WRITERS {
            writers.push(tokio::spawn(transactional_writer(store.clone(), writer)));
        }
        for writer in 0..GROUP_COMMIT_WRITERS {
            writers.push(tokio::spawn(group_commit_writer(store.clone(), writer)));
        }
        let mut total = Outcome::default();
        for writer in writers {
            let outcome = writer.await.expect("a writer panicked");
            total.committed.extend(outcome.committed);
            total.absent.extend(outcome.absent);
            total.rollbacks += outcome.rollbacks;
            total.rejections += outcome.rejections;
            total.replays += outcome.replays;
        }
        let sentinel = store
            .append(
                "sentinel",
                ExpectedVersion::NoStream,
                vec![EventData::new("Sentinel", vec![])],
            )
            .await
            .expect("append the sentinel");
        let (seen, last) = subscriber.await.expect("the subscriber panicked");
        (total, sentinel, seen, last)
    };
    let (total, sentinel, seen, last) = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the chaos run did not finish within 60 s");

    assert!(
        total.rollbacks > 0,
        "the run must roll some transactions back"
    );
    assert!(total.replays > 0, "the run must replay some appends");
    // In order, no gap, no duplicate: positions 1..n, exactly.
    for (index, event) in seen.iter().enumerate() {
        assert_eq!(
            event.position,
            Position(index as u64 + 1),
            "the subscriber's event #{index} has the wrong position"
        );
    }
    assert_eq!(last.position, Position(seen.len() as u64 + 1));
    assert_eq!(sentinel.position, Some(last.position));
    // Exactly the committed events, at the positions their appends reported.
    assert_eq!(
        seen.len(),
        total.committed.len(),
        "every committed event, once"
    );
    for event in &seen {
        assert!(
            !total.absent.contains(&event.id),
            "rolled-back or rejected event {} was delivered",
            event.id
        );
        assert_eq!(
            total.committed.get(&event.id),
            Some(&event.position),
            "event {} was not committed at this position",
            event.id
        );
    }
    // Stream versions are dense too.
    let mut versions: HashMap<&str, u64> = HashMap::new();
    for event in &seen {
        let version = versions.entry(&event.stream_id).or_default();
        *version += 1;
        assert_eq!(
            event.version, *version,
            "stream {} skips a version",
            event.stream_id
        );
    }
    // A fresh read of the log agrees with what was seen live.
    let mut read = Vec::new();
    let mut after = Position::START;
    loop {
        let page = store.read_all(after, 500).await.expect("read_all");
        let Some(end) = page.last() else { break };
        after = end.position;
        read.extend(page);
    }
    read.pop(); // the sentinel
    assert_eq!(read, seen);
    println!(
        "chaos: {} events committed, {} transactions rolled back, {} appends rejected, {} replays deduplicated, {} batches",
        seen.len(),
        total.rollbacks,
        total.rejections,
        total.replays,
        store.stats().batches
    );
}
