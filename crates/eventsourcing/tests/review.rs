//! Review findings: each test pins a correctness bug found in review and is marked
//! `#[ignore = "BUG: ..."]` until it is fixed (run with `--include-ignored` to see it fail).

use std::time::Duration;

use flowbed_eventsourcing::memory::MemoryStore;
use flowbed_eventsourcing::{EventData, EventStore, ExpectedVersion, Subscription};

fn event(kind: &str) -> EventData {
    EventData::new(kind, format!(r#"{{"kind":"{kind}"}}"#).into_bytes())
}

/// `Subscription::stream(store, s, u64::MAX)` means "after the last possible version":
/// it must deliver nothing. `fill` computes `version + 1`, which overflows: a panic in
/// debug builds, and in release it wraps to 0 and re-delivers the whole stream.
#[tokio::test(start_paused = true)]
async fn subscription_stream_after_u64_max_delivers_nothing() {
    let store = MemoryStore::new();
    store
        .append("s", ExpectedVersion::Any, vec![event("A")])
        .await
        .expect("append");
    let mut subscription = Subscription::stream(store, "s", u64::MAX);
    // Paused time: the timeout fires once the subscription is idle, no wall clock involved.
    let next = tokio::time::timeout(Duration::from_secs(10), subscription.next()).await;
    assert!(
        next.is_err(),
        "a subscription after version u64::MAX delivered {next:?}"
    );
}

#[cfg(feature = "postgres")]
mod postgres {
    use flowbed_eventsourcing::memory::MemoryStore;
    use flowbed_eventsourcing::postgres::PostgresStore;
    use flowbed_eventsourcing::{EventStore, ExpectedVersion, Position, Snapshot};
    use tokio_postgres::{Client, NoTls};

    use super::event;

    fn pg_url() -> String {
        std::env::var("FLOWBED_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
    }

    async fn fresh(schema: &str) -> (Client, PostgresStore) {
        let url = pg_url();
        let (client, connection) =
            tokio_postgres::connect(&url, NoTls)
                .await
                .unwrap_or_else(|error| {
                    panic!(
                        "PostgreSQL at {url} is unreachable ({error}): start it with \
                     ci/services.sh or point FLOWBED_PG_URL at a server"
                    )
                });
        tokio::spawn(connection);
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .await
            .expect("drop the test schema");
        let store = PostgresStore::connect(&url, schema)
            .await
            .unwrap_or_else(|error| panic!("connect to {url} (schema {schema}): {error}"));
        (client, store)
    }

    async fn drop_schema(client: &Client, schema: &str) {
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .await
            .expect("drop the test schema");
    }

    /// One request whose stream id holds a NUL byte (which PostgreSQL `text` cannot
    /// store) makes the whole `append_batch` call fail, so every other append that was
    /// group-committed with it gets a backend error too. The memory store accepts such a
    /// stream id; at the very least the error must stay with the request that caused it.
    ///
    /// `join!` on the current-thread runtime queues both appends before the writer task
    /// runs, so the writer takes them as one batch.
    #[tokio::test]
    async fn pg_invalid_text_in_one_request_fails_only_that_request() {
        let schema = format!("es_review_nul_{}", std::process::id());
        let (client, store) = fresh(&schema).await;
        let (bad, good) = tokio::join!(
            store.append("bad\0stream", ExpectedVersion::Any, vec![event("Bad")]),
            store.append("good", ExpectedVersion::Any, vec![event("Good")]),
        );
        let reference = MemoryStore::new()
            .append("bad\0stream", ExpectedVersion::Any, vec![event("Bad")])
            .await;
        eprintln!("bad request: {bad:?}; the memory store answers {reference:?}");
        assert!(
            good.is_ok(),
            "an unrelated append in the same batch failed: {good:?}"
        );
        drop_schema(&client, &schema).await;
    }

    /// The same for an event type holding a NUL byte.
    #[tokio::test]
    async fn pg_invalid_event_type_in_one_request_fails_only_that_request() {
        let schema = format!("es_review_nultype_{}", std::process::id());
        let (client, store) = fresh(&schema).await;
        let (bad, good) = tokio::join!(
            store.append("a", ExpectedVersion::Any, vec![event("Bad\0Type")]),
            store.append("b", ExpectedVersion::Any, vec![event("Good")]),
        );
        eprintln!("bad request: {bad:?}");
        assert!(
            good.is_ok(),
            "an unrelated append in the same batch failed: {good:?}"
        );
        drop_schema(&client, &schema).await;
    }

    /// Caller-chosen `u64` values above `i64::MAX` (a checkpoint, a snapshot version) are
    /// silently saturated to `i64::MAX` by `to_sql_u64`: they do not read back as written.
    /// The memory store (the reference) and the SQLite store (bit-for-bit `i64`) return
    /// exactly what was saved.
    #[tokio::test]
    async fn pg_u64_values_above_i64_max_round_trip() {
        let schema = format!("es_review_u64_{}", std::process::id());
        let (client, store) = fresh(&schema).await;
        let reference = MemoryStore::new();
        let far = Position(u64::MAX);
        reference.save_checkpoint("far", far).await.expect("memory");
        store.save_checkpoint("far", far).await.expect("save");
        let snapshot = Snapshot {
            stream_id: "s".to_owned(),
            version: u64::MAX,
            schema_version: 1,
            state: b"{}".to_vec(),
        };
        store.save_snapshot(snapshot.clone()).await.expect("save");
        let checkpoint = store.load_checkpoint("far").await.expect("load");
        let loaded = store.load_snapshot("s").await.expect("load");
        drop_schema(&client, &schema).await;
        assert_eq!(
            checkpoint,
            reference.load_checkpoint("far").await.expect("memory")
        );
        assert_eq!(loaded.map(|snapshot| snapshot.version), Some(u64::MAX));
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use flowbed_eventsourcing::sqlite::SqliteStore;
    use flowbed_eventsourcing::{AppendError, Direction, EventStore, ExpectedVersion};

    use super::event;

    /// A NUL character in a stream id is refused on SQLite too (PostgreSQL text cannot hold
    /// it, and data must stay portable), with a typed error, and the other request of the
    /// batch is unaffected.
    #[tokio::test]
    async fn sqlite_nul_stream_id_is_refused_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path().join("events.db")).expect("open");
        let (bad, good) = tokio::join!(
            store.append("bad\0stream", ExpectedVersion::Any, vec![event("Bad")]),
            store.append("good", ExpectedVersion::Any, vec![event("Good")]),
        );
        good.expect("good");
        assert!(
            matches!(
                bad,
                Err(AppendError::NulCharacter {
                    field: "stream id",
                    ..
                })
            ),
            "{bad:?}"
        );
        let read = store
            .read_stream("good", 0, Direction::Forward, 10)
            .await
            .expect("read");
        assert_eq!(read.len(), 1);
        assert_eq!(store.head().await.expect("head").0, 1);
    }
}
