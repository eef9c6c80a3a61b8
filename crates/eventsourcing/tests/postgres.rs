//! Tests of what is specific to the PostgreSQL store: migrations, group commit in one
//! round trip, races between processes (two stores on one schema), LISTEN/NOTIFY,
//! `append_in`, and its errors. The behaviour every backend shares is the conformance
//! suite's.
//!
//! Needs the server at `FLOWBED_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`)
//! and fails, with a message saying so, when it is unreachable. Each test works in its
//! own schema, dropped first.
#![cfg(feature = "postgres")]

mod common;

use std::collections::HashSet;
use std::error::Error as _;
use std::time::Duration;

use flowbed_eventsourcing::postgres::{PostgresStore, SchemaError};
use flowbed_eventsourcing::{
    AppendError, AppendResult, Direction, EventData, EventId, EventStore, ExpectedVersion,
    Metadata, Position, Snapshot, StoreError, StreamMetadata, Subscription,
};
use tokio::sync::mpsc;
use tokio_postgres::{Client, Transaction};

use common::postgres::{connect_client, connect_store, fresh_schema, url};

fn event(kind: &str) -> EventData {
    EventData::new(kind, format!(r#"{{"kind":"{kind}"}}"#).into_bytes())
}

/// Fails a test that would otherwise hang.
async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within 30 s"))
}

/// Waits until an `append_batch` call of `schema` waits for a lock (polls the server's
/// activity view; no sleeping).
async fn until_an_append_waits_for_a_lock(admin: &Client, schema: &str) {
    let pattern = format!("%\"{schema}\".append_batch%");
    for _ in 0..100_000 {
        let waiting: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1",
                &[&pattern],
            )
            .await
            .expect("read pg_stat_activity")
            .get(0);
        if waiting > 0 {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("no append of schema {schema} waited for a lock");
}

/// Appends `events` to `stream` on `store` in a task while `transaction` holds the
/// position lock of `schema`: waits (watching through `admin`) until that append waits for
/// the lock, commits `transaction`, and returns the append's answer.
async fn append_behind_transaction(
    admin: &Client,
    schema: &str,
    transaction: Transaction<'_>,
    store: &PostgresStore,
    stream: &'static str,
    expected: ExpectedVersion,
    events: Vec<EventData>,
) -> Result<AppendResult, AppendError> {
    let waiting = tokio::spawn({
        let store = store.clone();
        async move { store.append(stream, expected, events).await }
    });
    until_an_append_waits_for_a_lock(admin, schema).await;
    transaction.commit().await.unwrap();
    within("the waiting append", waiting).await.unwrap()
}

async fn migrations(admin: &Client, schema: &str) -> Vec<i32> {
    admin
        .query(
            &format!("SELECT version FROM \"{schema}\".migrations ORDER BY version"),
            &[],
        )
        .await
        .expect("read migrations")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

fn schema_error(error: StoreError) -> SchemaError {
    let StoreError::Backend(error) = error else {
        panic!("expected a backend error, got {error:?}");
    };
    assert_eq!(
        (error.backend(), error.operation()),
        ("postgres", "connect")
    );
    error
        .source()
        .and_then(|source| source.downcast_ref::<SchemaError>())
        .unwrap_or_else(|| panic!("expected a SchemaError source, got {error}"))
        .clone()
}

#[tokio::test]
async fn the_schema_is_created_once_and_migrating_again_changes_nothing() {
    let schema = "es_pg_migrate";
    let admin = fresh_schema(schema).await;
    let first = connect_store(schema).await;
    first
        .append("a", ExpectedVersion::NoStream, vec![event("one")])
        .await
        .unwrap();
    let second = connect_store(schema).await; // migrates again: nothing to do
    assert_eq!(migrations(&admin, schema).await, vec![1, 2, 3]);
    assert_eq!(second.stream_version("a").await.unwrap(), 1);
    assert_eq!(second.head().await.unwrap(), Position(1));
    let result = second
        .append("a", ExpectedVersion::Exact(1), vec![event("two")])
        .await
        .unwrap();
    assert_eq!((result.version, result.position), (2, Some(Position(2))));
    let tables: i64 = admin
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1",
            &[&schema],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        tables, 6,
        "events, streams, snapshots, checkpoints, position_counter, migrations"
    );
}

#[tokio::test]
async fn a_schema_at_migration_2_is_upgraded_keeping_custom_metadata() {
    let schema = "es_pg_upgrade";
    let admin = fresh_schema(schema).await;
    drop(connect_store(schema).await);
    // Back to what migration 2 left: `custom` as jsonb, holding a value.
    admin
        .batch_execute(&format!(
            "ALTER TABLE \"{schema}\".streams ALTER COLUMN custom TYPE jsonb USING custom::jsonb;
             DELETE FROM \"{schema}\".migrations WHERE version = 3;
             INSERT INTO \"{schema}\".streams (stream_id, custom) VALUES ('s', '{{\"owner\": \"ops\"}}')"
        ))
        .await
        .unwrap();
    let store = connect_store(schema).await;
    assert_eq!(migrations(&admin, schema).await, vec![1, 2, 3]);
    assert_eq!(
        store.stream_metadata("s").await.unwrap().custom,
        Some(serde_json::json!({"owner": "ops"}))
    );
}

#[tokio::test]
async fn a_schema_from_a_newer_release_is_refused() {
    let schema = "es_pg_newer";
    let admin = fresh_schema(schema).await;
    drop(connect_store(schema).await);
    admin
        .execute(
            &format!("INSERT INTO \"{schema}\".migrations (version, name) VALUES (99, 'future')"),
            &[],
        )
        .await
        .unwrap();
    let error = PostgresStore::connect(&url(), schema).await.unwrap_err();
    assert_eq!(
        schema_error(error),
        SchemaError::NewerVersion {
            schema: schema.to_owned(),
            found: 99,
            known: 3
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_connects_migrate_once() {
    let schema = "es_pg_concurrent_connect";
    let admin = fresh_schema(schema).await;
    let url = url();
    let connects = (0..8).map(|_| PostgresStore::connect(&url, schema));
    let stores = within("8 concurrent connects", futures::future::join_all(connects)).await;
    let stores: Vec<PostgresStore> = stores
        .into_iter()
        .map(|store| store.expect("every concurrent connect succeeds"))
        .collect();
    assert_eq!(migrations(&admin, schema).await, vec![1, 2, 3]);
    for (index, store) in stores.iter().enumerate() {
        store
            .append(
                "shared",
                ExpectedVersion::Exact(index as u64),
                vec![event("e")],
            )
            .await
            .unwrap();
    }
    assert_eq!(stores[0].stream_version("shared").await.unwrap(), 8);
}

#[tokio::test]
async fn a_batch_of_100_events_is_one_round_trip() {
    let schema = "es_pg_round_trip";
    let _admin = fresh_schema(schema).await;
    let store = connect_store(schema).await;
    let before = store.stats();
    let events: Vec<EventData> = (0..100).map(|i| event(&format!("e{i}"))).collect();
    let result = store
        .append("batch", ExpectedVersion::NoStream, events.clone())
        .await
        .unwrap();
    assert_eq!(
        (result.version, result.position),
        (100, Some(Position(100)))
    );
    let after = store.stats();
    assert_eq!(after.batches - before.batches, 1, "one append_batch call");
    assert_eq!(after.appends - before.appends, 1);
    assert_eq!(after.events - before.events, 100);
    let read = store.read_all(Position::START, 1000).await.unwrap();
    assert_eq!(read.len(), 100);
    for (index, (stored, sent)) in read.iter().zip(&events).enumerate() {
        assert_eq!(stored.id, sent.id);
        assert_eq!(stored.version, index as u64 + 1);
        assert_eq!(stored.position, Position(index as u64 + 1));
        assert_eq!(stored.payload, sent.payload);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_appending_the_same_ids_one_writes_the_other_deduplicates() {
    let schema = "es_pg_same_ids";
    let _admin = fresh_schema(schema).await;
    let a = connect_store(schema).await;
    let b = connect_store(schema).await;
    for round in 0..20 {
        let stream = format!("s{round}");
        let events = vec![event("x"), event("y")];
        let (left, right) = tokio::join!(
            a.append(&stream, ExpectedVersion::NoStream, events.clone()),
            b.append(&stream, ExpectedVersion::NoStream, events.clone()),
        );
        let (left, right) = (left.unwrap(), right.unwrap());
        assert_ne!(left.deduplicated, right.deduplicated, "round {round}");
        assert_eq!(
            (left.version, left.position),
            (right.version, right.position)
        );
        assert_eq!(a.stream_version(&stream).await.unwrap(), 2);
    }
    assert_eq!(a.head().await.unwrap(), Position(40));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_waiting_on_a_transaction_with_the_same_ids_deduplicates() {
    let schema = "es_pg_dedup_wait";
    let admin = fresh_schema(schema).await;
    let a = connect_store(schema).await;
    let b = connect_store(schema).await;
    let mut client = connect_client().await;
    let events = vec![event("x"), event("y")];

    let transaction = client.transaction().await.unwrap();
    let written = a
        .append_in(
            &transaction,
            "s1",
            ExpectedVersion::NoStream,
            events.clone(),
        )
        .await
        .unwrap();
    let answer = append_behind_transaction(
        &admin,
        schema,
        transaction,
        &b,
        "s1",
        ExpectedVersion::NoStream,
        events,
    )
    .await
    .unwrap();
    assert!(answer.deduplicated);
    assert_eq!((answer.version, answer.position), (2, written.position));
    assert_eq!(b.head().await.unwrap(), Position(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unique_violation_from_another_process_is_retried_and_judged() {
    let schema = "es_pg_unique_violation";
    let admin = fresh_schema(schema).await;
    let a = connect_store(schema).await;
    let b = connect_store(schema).await;
    let mut client = connect_client().await;
    let shared = event("shared");

    // The transaction holds the position lock with `shared` in stream s2, uncommitted: b
    // appends it to s3, finds it not stored, and waits for the lock; after the commit its
    // insert hits the unique index (23505), and the retry sees the committed id.
    let transaction = client.transaction().await.unwrap();
    a.append_in(
        &transaction,
        "s2",
        ExpectedVersion::Any,
        vec![shared.clone()],
    )
    .await
    .unwrap();
    let answer = append_behind_transaction(
        &admin,
        schema,
        transaction,
        &b,
        "s3",
        ExpectedVersion::Any,
        vec![shared.clone()],
    )
    .await;
    match answer {
        Err(AppendError::IdempotencyConflict { stream, event_id }) => {
            assert_eq!((stream.as_str(), event_id), ("s3", shared.id));
        }
        other => panic!("expected an idempotency conflict, got {other:?}"),
    }
    assert_eq!(b.stats().unique_violation_retries, 1);
    assert_eq!(b.stream_version("s3").await.unwrap(), 0);
    let all = b.read_all(Position::START, 10).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!((all[0].stream_id.as_str(), all[0].id), ("s2", shared.id));

    // The writer goes on: the next batch commits at the next position.
    let next = b
        .append("s3", ExpectedVersion::NoStream, vec![event("after")])
        .await
        .unwrap();
    assert_eq!(next.position, Some(Position(2)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_request_of_a_group_commit_writes_nothing_and_the_others_commit() {
    let schema = "es_pg_group";
    let admin = fresh_schema(schema).await;
    let store = connect_store(schema).await;
    let mut client = connect_client().await;

    // Hold the position lock so that the appends below queue up behind the writer's
    // first call and are committed together.
    let transaction = client.transaction().await.unwrap();
    store
        .append_in(
            &transaction,
            "held",
            ExpectedVersion::Any,
            vec![event("held")],
        )
        .await
        .unwrap();
    let twins = vec![event("twin-a"), event("twin-b")];
    let appends = vec![
        ("x", ExpectedVersion::NoStream, vec![event("x1")]),
        ("y", ExpectedVersion::Exact(5), vec![event("y1")]),
        ("z", ExpectedVersion::Any, vec![event("z1"), event("z2")]),
        ("x", ExpectedVersion::NoStream, vec![event("x1'")]),
        ("w", ExpectedVersion::Any, twins.clone()),
        ("w", ExpectedVersion::Any, twins.clone()),
        ("v", ExpectedVersion::Any, vec![]),
    ];
    let tasks: Vec<_> = appends
        .into_iter()
        .map(|(stream, expected, events)| {
            let store = store.clone();
            tokio::spawn(async move { store.append(stream, expected, events).await })
        })
        .collect();
    until_an_append_waits_for_a_lock(&admin, schema).await;
    transaction.commit().await.unwrap();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(within("an append", task).await.unwrap());
    }

    let x: Vec<_> = [&answers[0], &answers[3]].into_iter().collect();
    assert_eq!(x.iter().filter(|answer| answer.is_ok()).count(), 1, "{x:?}");
    assert!(x.iter().any(|answer| matches!(
        answer,
        Err(AppendError::WrongExpectedVersion { actual: 1, .. })
    )));
    assert!(matches!(
        answers[1],
        Err(AppendError::WrongExpectedVersion { actual: 0, .. })
    ));
    assert_eq!(answers[2].as_ref().unwrap().version, 2);
    let (w1, w2) = (answers[4].as_ref().unwrap(), answers[5].as_ref().unwrap());
    assert_ne!(w1.deduplicated, w2.deduplicated);
    assert_eq!((w1.version, w1.position), (w2.version, w2.position));
    assert_eq!(answers[6].as_ref().unwrap().position, None);

    assert_eq!(store.stream_version("y").await.unwrap(), 0);
    assert!(
        store
            .read_stream("y", 1, Direction::Forward, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // held 1 + x 1 + z 2 + w 2, dense.
    let all = store.read_all(Position::START, 100).await.unwrap();
    let positions: Vec<u64> = all.iter().map(|event| event.position.0).collect();
    assert_eq!(positions, (1..=6).collect::<Vec<_>>());
    assert_eq!(store.stats().appends, 7);
}

/// Begins a transaction on `client` that runs `insert` and appends `deposit` to
/// `account-a` (expecting no stream) with `append_in`; returns it uncommitted, with what
/// `append_in` answered.
async fn deposit_in_transaction<'a>(
    client: &'a mut Client,
    store: &PostgresStore,
    insert: &str,
    deposit: &EventData,
) -> (Transaction<'a>, AppendResult) {
    let transaction = client.transaction().await.unwrap();
    transaction.execute(insert, &[]).await.unwrap();
    let result = store
        .append_in(
            &transaction,
            "account-a",
            ExpectedVersion::NoStream,
            vec![deposit.clone()],
        )
        .await
        .unwrap();
    (transaction, result)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_in_commits_and_rolls_back_with_the_callers_transaction() {
    let schema = "es_pg_append_in";
    let admin = fresh_schema(schema).await;
    let store = connect_store(schema).await;
    admin
        .batch_execute(&format!(
            "CREATE TABLE \"{schema}\".balances (account text PRIMARY KEY, amount bigint NOT NULL)"
        ))
        .await
        .unwrap();
    let mut client = connect_client().await;
    let insert = format!("INSERT INTO \"{schema}\".balances VALUES ('a', 10)");

    let rolled_back = event("Deposited");
    let (transaction, result) =
        deposit_in_transaction(&mut client, &store, &insert, &rolled_back).await;
    assert_eq!((result.version, result.position), (1, Some(Position(1))));
    transaction.rollback().await.unwrap();
    assert_eq!(store.head().await.unwrap(), Position::START);
    assert_eq!(store.stream_version("account-a").await.unwrap(), 0);
    let rows: i64 = admin
        .query_one(&format!("SELECT count(*) FROM \"{schema}\".balances"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 0);

    let committed = event("Deposited");
    let (transaction, result) =
        deposit_in_transaction(&mut client, &store, &insert, &committed).await;
    transaction.commit().await.unwrap();
    assert_eq!(
        result.position,
        Some(Position(1)),
        "the rolled-back number is reused"
    );
    let all = store.read_all(Position::START, 10).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].id, committed.id);

    // Rules as for append: a wrong expected version writes nothing, a replay deduplicates.
    let transaction = client.transaction().await.unwrap();
    let wrong = store
        .append_in(
            &transaction,
            "account-a",
            ExpectedVersion::NoStream,
            vec![event("x")],
        )
        .await;
    assert!(matches!(
        wrong,
        Err(AppendError::WrongExpectedVersion { actual: 1, .. })
    ));
    let replay = store
        .append_in(
            &transaction,
            "account-a",
            ExpectedVersion::NoStream,
            vec![committed],
        )
        .await
        .unwrap();
    assert!(replay.deduplicated);
    assert!(matches!(
        store
            .append_in(&transaction, "", ExpectedVersion::Any, vec![event("x")])
            .await,
        Err(AppendError::EmptyStreamId)
    ));
    transaction.commit().await.unwrap();
    assert_eq!(store.head().await.unwrap(), Position(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_in_one_store_wakes_a_subscription_on_another_even_after_its_listener_reconnects()
{
    let schema = "es_pg_listener";
    let admin = fresh_schema(schema).await;
    let writer = connect_store(schema).await;
    let reader = connect_store(schema).await;
    // Only a notification can wake it quickly: its fallback poll is an hour away.
    let mut subscription =
        Subscription::all(reader.clone(), Position::START).poll_interval(Duration::from_secs(3600));
    let (seen, mut events) = mpsc::unbounded_channel();
    let subscriber = tokio::spawn(async move {
        loop {
            let event = subscription.next().await.expect("subscription read");
            if seen.send(event).is_err() {
                return;
            }
        }
    });

    writer
        .append("a", ExpectedVersion::Any, vec![event("first")])
        .await
        .unwrap();
    let first = within("the first notification", events.recv())
        .await
        .unwrap();
    assert_eq!(first.position, Position(1));

    // Kill every listener of the schema; each store reconnects, listens again and reads
    // the head (so a commit made while it was away still wakes its subscribers).
    let application = format!("flowbed-es-listener:{schema}");
    let old: HashSet<i32> = admin
        .query(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
            &[&application],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(old.len(), 2, "one listener per store");
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&application],
        )
        .await
        .unwrap();
    within("the listeners' reconnection", async {
        loop {
            let now: HashSet<i32> = admin
                .query(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'SELECT last%'",
                    &[&application],
                )
                .await
                .unwrap()
                .iter()
                .map(|row| row.get(0))
                .collect();
            if now.len() == 2 && now.is_disjoint(&old) {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;

    writer
        .append("a", ExpectedVersion::Any, vec![event("second")])
        .await
        .unwrap();
    let second = within("the notification after reconnecting", events.recv())
        .await
        .unwrap();
    assert_eq!(second.position, Position(2));
    subscriber.abort();
}

#[tokio::test]
async fn an_unreachable_server_is_an_error_not_a_hang() {
    // Port 1: nothing listens there.
    let error = within(
        "connecting to a closed port",
        PostgresStore::connect("postgres://postgres@127.0.0.1:1/test", "es_pg_unreachable"),
    )
    .await
    .unwrap_err();
    match error {
        StoreError::Backend(error) => {
            assert_eq!(
                (error.backend(), error.operation()),
                ("postgres", "connect")
            );
        }
        other => panic!("expected a backend error, got {other:?}"),
    }
    let error = PostgresStore::connect("not a url", "es_pg_unreachable")
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Backend(_)), "{error:?}");
}

#[tokio::test]
async fn an_invalid_schema_name_is_a_typed_error_before_connecting() {
    for name in [
        "",
        "a-b",
        "1abc",
        "x\"; DROP TABLE t; --",
        "pg_catalog",
        &"s".repeat(49),
    ] {
        // The port is closed: the name is refused before anything connects.
        let error = PostgresStore::connect("postgres://postgres@127.0.0.1:1/test", name)
            .await
            .unwrap_err();
        assert!(
            matches!(schema_error(error), SchemaError::InvalidName { name: ref got, .. } if got == name),
            "{name:?}"
        );
    }
}

#[tokio::test]
async fn events_round_trip_every_field() {
    let schema = "es_pg_round_trip_fields";
    let _admin = fresh_schema(schema).await;
    let store = connect_store(schema).await;
    let cause = EventId::new();
    let sent = EventData::new("Odd", vec![0, 159, 146, 150, 0, 255])
        .with_schema_version(u32::MAX)
        .with_metadata(
            Metadata::default()
                .correlation_id(cause.as_uuid())
                .caused_by(cause)
                .with("tenant", "ünïcode ✓"),
        );
    let plain = EventData::new("Plain", Vec::new());
    store
        .append(
            "odd",
            ExpectedVersion::NoStream,
            vec![sent.clone(), plain.clone()],
        )
        .await
        .unwrap();
    let read = store
        .read_stream("odd", u64::MAX, Direction::Backward, usize::MAX)
        .await
        .unwrap();
    assert_eq!(read.len(), 2);
    let (second, first) = (&read[0], &read[1]);
    assert_eq!(
        (
            first.id,
            first.version,
            first.position,
            first.event_type.as_str()
        ),
        (sent.id, 1, Position(1), "Odd")
    );
    assert_eq!(first.schema_version, u32::MAX);
    assert_eq!(first.payload, sent.payload);
    assert_eq!(first.metadata, sent.metadata);
    assert_eq!(
        first.recorded_at, second.recorded_at,
        "one append, one timestamp"
    );
    assert_eq!((second.id, second.payload.len()), (plain.id, 0));
    assert!(second.metadata.is_empty());
    assert_eq!(
        store.read_all(Position(u64::MAX), 10).await.unwrap(),
        vec![]
    );

    let custom = serde_json::json!({"owner": "ops", "tags": ["a", "b"], "n": 1.5, "big": u64::MAX});
    let metadata = StreamMetadata {
        truncate_before: 2,
        deleted: false,
        custom: Some(custom),
    };
    store
        .set_stream_metadata("odd", metadata.clone())
        .await
        .unwrap();
    assert_eq!(store.stream_metadata("odd").await.unwrap(), metadata);
    assert_eq!(store.stream_version("odd").await.unwrap(), 2);
    let visible = store
        .read_stream("odd", 0, Direction::Forward, 10)
        .await
        .unwrap();
    assert_eq!(visible.len(), 1);
    assert_eq!(visible[0].version, 2);

    let snapshot = Snapshot {
        stream_id: "odd".to_owned(),
        version: 2,
        schema_version: u32::MAX,
        state: b"state".to_vec(),
    };
    store.save_snapshot(snapshot.clone()).await.unwrap();
    store
        .save_snapshot(Snapshot {
            version: 1,
            ..snapshot.clone()
        })
        .await
        .unwrap();
    assert_eq!(store.load_snapshot("odd").await.unwrap(), Some(snapshot));
    store
        .save_checkpoint("projection", Position(2))
        .await
        .unwrap();
    assert_eq!(
        store.load_checkpoint("projection").await.unwrap(),
        Some(Position(2))
    );
    assert_eq!(store.load_checkpoint("nobody").await.unwrap(), None);
}

#[tokio::test]
async fn caller_chosen_u64_values_round_trip_bit_for_bit() {
    let schema = "es_pg_u64";
    let _admin = fresh_schema(schema).await;
    let store = connect_store(schema).await;
    for position in [Position(u64::MAX), Position(1 << 63), Position(7)] {
        store.save_checkpoint("far", position).await.unwrap();
        assert_eq!(store.load_checkpoint("far").await.unwrap(), Some(position));
    }
    // Snapshot versions compare as unsigned across the sign bit of the bigint.
    let snapshot = |version: u64| Snapshot {
        stream_id: "s".to_owned(),
        version,
        schema_version: 1,
        state: version.to_string().into_bytes(),
    };
    store
        .save_snapshot(snapshot(i64::MAX as u64))
        .await
        .unwrap();
    store.save_snapshot(snapshot(u64::MAX)).await.unwrap();
    store.save_snapshot(snapshot(5)).await.unwrap(); // older: ignored
    store.save_snapshot(snapshot(1 << 63)).await.unwrap(); // older: ignored
    assert_eq!(
        store.load_snapshot("s").await.unwrap(),
        Some(snapshot(u64::MAX))
    );

    store
        .append("t", ExpectedVersion::Any, vec![event("a"), event("b")])
        .await
        .unwrap();
    for truncate_before in [u64::MAX, 1 << 63] {
        let metadata = StreamMetadata {
            truncate_before,
            ..StreamMetadata::default()
        };
        store
            .set_stream_metadata("t", metadata.clone())
            .await
            .unwrap();
        assert_eq!(store.stream_metadata("t").await.unwrap(), metadata);
        for direction in [Direction::Forward, Direction::Backward] {
            assert!(
                store
                    .read_stream("t", 0, direction, 10)
                    .await
                    .unwrap()
                    .is_empty()
            );
            assert!(
                store
                    .read_stream("t", u64::MAX, direction, 10)
                    .await
                    .unwrap()
                    .is_empty()
            );
        }
    }
}

#[tokio::test]
async fn names_holding_nul_read_as_absent_and_are_refused_for_writes() {
    let schema = "es_pg_nul";
    let _admin = fresh_schema(schema).await;
    let store = connect_store(schema).await;
    let name = "a\0b";
    assert!(
        store
            .read_stream(name, 0, Direction::Forward, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.stream_version(name).await.unwrap(), 0);
    assert_eq!(
        store.stream_metadata(name).await.unwrap(),
        StreamMetadata::default()
    );
    assert_eq!(store.load_snapshot(name).await.unwrap(), None);
    assert_eq!(store.load_checkpoint(name).await.unwrap(), None);
    assert!(matches!(
        store
            .append(name, ExpectedVersion::Any, vec![event("x")])
            .await,
        Err(AppendError::NulCharacter { .. })
    ));
    assert!(matches!(
        store
            .set_stream_metadata(name, StreamMetadata::default())
            .await,
        Err(AppendError::NulCharacter { .. })
    ));
    assert_eq!(store.head().await.unwrap(), Position::START);
}

#[tokio::test]
async fn a_broken_schema_is_a_backend_error_naming_the_operation() {
    let schema = "es_pg_broken";
    let admin = fresh_schema(schema).await;
    let store = connect_store(schema).await;
    store
        .append("a", ExpectedVersion::Any, vec![event("kept")])
        .await
        .unwrap();
    admin
        .batch_execute(&format!("DROP TABLE \"{schema}\".events"))
        .await
        .unwrap();
    for _ in 0..2 {
        // The writer survives a failed batch and answers the next one.
        match store
            .append("a", ExpectedVersion::Any, vec![event("lost")])
            .await
        {
            Err(AppendError::Backend(error)) => {
                assert_eq!((error.backend(), error.operation()), ("postgres", "append"));
                assert!(error.to_string().contains("events"), "{error}");
            }
            other => panic!("expected a backend error, got {other:?}"),
        }
    }
    match store.read_all(Position::START, 10).await {
        Err(StoreError::Backend(error)) => assert_eq!(error.operation(), "read_all"),
        other => panic!("expected a backend error, got {other:?}"),
    }
    // Nothing of the failed appends was written: the stream and the counter are unchanged.
    assert_eq!(store.stream_version("a").await.unwrap(), 1);
    assert_eq!(store.head().await.unwrap(), Position(1));
}

#[test]
fn store_types_are_send_sync_and_unpin() {
    fn assert_send_sync_unpin<T: Send + Sync + Unpin + 'static>() {}
    assert_send_sync_unpin::<PostgresStore>();
    assert_send_sync_unpin::<flowbed_eventsourcing::postgres::PostgresStoreBuilder>();
    assert_send_sync_unpin::<flowbed_eventsourcing::postgres::PostgresStats>();
    assert_send_sync_unpin::<SchemaError>();
}
