//! More than one handle on the same storage: a store reopened after every handle was
//! dropped keeps everything, and independently opened handles share one log (for the
//! memory store, "another handle" is a clone).

use std::collections::HashMap;
use std::time::Duration;

use flowbed_eventsourcing::{
    EventStore, ExpectedVersion, Position, Snapshot, StreamMetadata, Subscription,
};
use serde_json::json;

use super::*;

/// Everything written before closing reads back after reopening: events, versions, head,
/// stream metadata (truncation, deletion), snapshots, checkpoints and the ids used for
/// idempotency; numbering continues.
pub(crate) async fn reopened_store_keeps_everything<S: EventStore>(fixture: &mut Fixture<S>) {
    let store = fixture.store();
    let batch = numbered("s", 3);
    append_ok(&store, "s", ExpectedVersion::NoStream, batch.clone()).await;
    append_ok(&store, "t", ExpectedVersion::NoStream, numbered("t", 3)).await;
    append_ok(&store, "u", ExpectedVersion::NoStream, numbered("u", 1)).await;
    let t_metadata = StreamMetadata {
        truncate_before: 2,
        deleted: false,
        custom: Some(json!({ "kept": ["across", "reopen"] })),
    };
    store
        .set_stream_metadata("t", t_metadata.clone())
        .await
        .expect("set metadata");
    store
        .delete_stream("u", ExpectedVersion::Exact(1))
        .await
        .expect("delete");
    let snapshot = Snapshot {
        stream_id: "s".into(),
        version: 3,
        schema_version: 2,
        state: br#"{"n":3}"#.to_vec(),
    };
    store
        .save_snapshot(snapshot.clone())
        .await
        .expect("snapshot");
    store
        .save_checkpoint("projection", Position(5))
        .await
        .expect("checkpoint");
    let before = observe(&store, &["s", "t", "u"]).await;
    let u_metadata = store.stream_metadata("u").await.expect("metadata");

    drop(store);
    fixture.close();
    let reopened = fixture.open_another().await;

    assert_eq!(observe(&reopened, &["s", "t", "u"]).await, before);
    assert_eq!(
        reopened.stream_metadata("t").await.expect("metadata"),
        t_metadata
    );
    assert_eq!(
        reopened.stream_metadata("u").await.expect("metadata"),
        u_metadata
    );
    assert_eq!(
        reopened.load_snapshot("s").await.expect("snapshot"),
        Some(snapshot)
    );
    assert_eq!(
        reopened
            .load_checkpoint("projection")
            .await
            .expect("checkpoint"),
        Some(Position(5))
    );
    assert_eq!(
        append_ok(&reopened, "s", ExpectedVersion::NoStream, batch).await,
        deduplicated(3, 3)
    );
    assert_eq!(
        append_ok(&reopened, "s", ExpectedVersion::Exact(3), numbered("s2", 1)).await,
        appended(4, 8)
    );
    assert_wrong_version(
        reopened
            .append("u", ExpectedVersion::NoStream, numbered("u2", 1))
            .await,
        "u",
        ExpectedVersion::NoStream,
        1,
    );
    assert_eq!(head_of(&reopened).await, Position(8));
}

/// Two handles opened independently on the same storage see each other's writes, share
/// optimistic concurrency and idempotency, and interleave into one dense log.
pub(crate) async fn two_handles_share_one_log<S: EventStore>(fixture: &mut Fixture<S>) {
    let a = fixture.store();
    let b = fixture.open_another().await;
    let first = numbered("a", 2);
    assert_eq!(
        append_ok(&a, "s", ExpectedVersion::NoStream, first.clone()).await,
        appended(2, 2)
    );
    assert_eq!(version_of(&b, "s").await, 2);
    assert_eq!(
        append_ok(&b, "s", ExpectedVersion::Exact(2), numbered("b", 1)).await,
        appended(3, 3)
    );
    assert_wrong_version(
        a.append("s", ExpectedVersion::Exact(2), numbered("late", 1))
            .await,
        "s",
        ExpectedVersion::Exact(2),
        3,
    );
    assert_eq!(
        append_ok(&b, "s", ExpectedVersion::Any, first).await,
        deduplicated(2, 2)
    );
    assert_eq!(all_events(&a).await, all_events(&b).await);

    let metadata = StreamMetadata {
        custom: Some(json!("from a")),
        ..StreamMetadata::default()
    };
    a.set_stream_metadata("s", metadata.clone())
        .await
        .expect("set metadata");
    assert_eq!(b.stream_metadata("s").await.expect("metadata"), metadata);
    b.save_checkpoint("p", Position(3))
        .await
        .expect("checkpoint");
    assert_eq!(
        a.load_checkpoint("p").await.expect("checkpoint"),
        Some(Position(3))
    );

    // Both handles appending at once, to their own streams.
    let mut tasks = Vec::new();
    for (name, handle) in [("via-a", a.clone()), ("via-b", b.clone())] {
        tasks.push(tokio::spawn(async move {
            for n in 0..20 {
                append_ok(
                    &handle,
                    name,
                    ExpectedVersion::Exact(n),
                    vec![event("E", name, n as usize)],
                )
                .await;
            }
        }));
    }
    for task in tasks {
        within("an appending handle", task)
            .await
            .expect("an appending task panicked");
    }
    let log = all_events(&a).await;
    assert_eq!(log, all_events(&b).await);
    assert_eq!(log.len(), 43);
    let mut versions: HashMap<&str, u64> = HashMap::new();
    for (index, event) in log.iter().enumerate() {
        assert_eq!(event.position, Position(index as u64 + 1));
        let version = versions.entry(event.stream_id.as_str()).or_insert(0);
        *version += 1;
        assert_eq!(event.version, *version);
    }
    assert_eq!(head_of(&a).await, Position(43));
    assert_eq!(head_of(&b).await, Position(43));
}

/// A subscription on one handle delivers what another handle commits, catch-up and live.
/// (A short poll interval covers backends whose commit notices do not cross handles; it
/// never changes what is delivered.)
pub(crate) async fn subscription_on_another_handle_sees_commits<S: EventStore>(
    fixture: &mut Fixture<S>,
) {
    let writer = fixture.store();
    let reader = fixture.open_another().await;
    append_ok(&writer, "s", ExpectedVersion::Any, numbered("history", 2)).await;
    let mut subscription = Subscription::all(reader.clone(), Position::START)
        .batch_size(2)
        .poll_interval(Duration::from_millis(50));
    let mut delivered = Vec::new();
    for _ in 0..2 {
        delivered.push(
            within("catch-up across handles", subscription.next())
                .await
                .unwrap_or_else(|error| panic!("the subscription failed: {error}")),
        );
    }
    let append_task = {
        let writer = writer.clone();
        tokio::spawn(async move {
            for n in 0..3 {
                append_ok(
                    &writer,
                    "t",
                    ExpectedVersion::Any,
                    vec![event("Live", "l", n)],
                )
                .await;
            }
        })
    };
    for _ in 0..3 {
        delivered.push(
            within("a live event across handles", subscription.next())
                .await
                .unwrap_or_else(|error| panic!("the subscription failed: {error}")),
        );
    }
    within("the writer", append_task)
        .await
        .expect("the writer panicked");
    assert_eq!(
        delivered.iter().map(|e| e.position.0).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(delivered, all_events(&writer).await);
}
