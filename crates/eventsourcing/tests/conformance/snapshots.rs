//! Snapshots: save, load, replace by a newer (or equal) version, ignore an older one.

use flowbed_eventsourcing::{EventStore, Snapshot, StoreError};

/// A snapshot of `stream` at `version`, schema 1, with a state naming both.
fn snapshot(stream: &str, version: u64) -> Snapshot {
    Snapshot {
        stream_id: stream.to_owned(),
        version,
        schema_version: 1,
        state: format!(r#"{{"stream":"{stream}","version":{version}}}"#).into_bytes(),
    }
}

/// Saves, failing the case on an error.
async fn save<S: EventStore>(store: &S, snapshot: Snapshot) {
    store
        .save_snapshot(snapshot)
        .await
        .unwrap_or_else(|error| panic!("save_snapshot failed: {error}"));
}

/// Loads, failing the case on an error.
async fn load<S: EventStore>(store: &S, stream: &str) -> Option<Snapshot> {
    store
        .load_snapshot(stream)
        .await
        .unwrap_or_else(|error| panic!("load_snapshot {stream:?} failed: {error}"))
}

/// No snapshot: `None`.
pub(crate) async fn missing_snapshot_is_none<S: EventStore>(store: S) {
    assert_eq!(load(&store, "s").await, None);
    save(&store, snapshot("other", 3)).await;
    assert_eq!(load(&store, "s").await, None);
}

/// A saved snapshot loads back equal, every field.
pub(crate) async fn save_and_load_round_trip<S: EventStore>(store: S) {
    let saved = Snapshot {
        stream_id: "account-ü".to_owned(),
        version: 17,
        schema_version: 3,
        state: r#"{"balance": -12, "owner": "Zoë"}"#.as_bytes().to_vec(),
    };
    save(&store, saved.clone()).await;
    assert_eq!(load(&store, "account-ü").await, Some(saved));
}

/// A newer snapshot replaces the stored one.
pub(crate) async fn newer_snapshot_replaces<S: EventStore>(store: S) {
    save(&store, snapshot("s", 5)).await;
    save(&store, snapshot("s", 9)).await;
    assert_eq!(load(&store, "s").await, Some(snapshot("s", 9)));
    save(&store, snapshot("s", u64::MAX >> 1)).await;
    assert_eq!(load(&store, "s").await, Some(snapshot("s", u64::MAX >> 1)));
}

/// An older snapshot than the stored one is ignored (a slow writer cannot roll it back).
pub(crate) async fn older_snapshot_ignored<S: EventStore>(store: S) {
    save(&store, snapshot("s", 9)).await;
    let mut older = snapshot("s", 4);
    older.schema_version = 2;
    save(&store, older).await;
    assert_eq!(load(&store, "s").await, Some(snapshot("s", 9)));
}

/// A snapshot at the same version replaces the stored one (a new state encoding).
pub(crate) async fn same_version_snapshot_replaces<S: EventStore>(store: S) {
    save(&store, snapshot("s", 6)).await;
    let reencoded = Snapshot {
        schema_version: 2,
        state: br#"{"v2":true}"#.to_vec(),
        ..snapshot("s", 6)
    };
    save(&store, reencoded.clone()).await;
    assert_eq!(load(&store, "s").await, Some(reencoded));
}

/// Snapshots of different streams are independent.
pub(crate) async fn snapshots_are_per_stream<S: EventStore>(store: S) {
    save(&store, snapshot("a", 10)).await;
    save(&store, snapshot("b", 2)).await;
    save(&store, snapshot("a-1", 1)).await;
    save(&store, snapshot("b", 3)).await;
    assert_eq!(load(&store, "a").await, Some(snapshot("a", 10)));
    assert_eq!(load(&store, "b").await, Some(snapshot("b", 3)));
    assert_eq!(load(&store, "a-1").await, Some(snapshot("a-1", 1)));
    assert_eq!(load(&store, "A").await, None);
}

/// A 1 MiB state survives byte for byte.
pub(crate) async fn large_snapshot_round_trips<S: EventStore>(store: S) {
    let state: Vec<u8> = format!(r#"{{"blob":"{}"}}"#, "ab".repeat(1 << 19)).into_bytes();
    let big = Snapshot {
        stream_id: "big".to_owned(),
        version: 1_000_000,
        schema_version: 1,
        state,
    };
    save(&store, big.clone()).await;
    let loaded = load(&store, "big").await.expect("the snapshot");
    assert!(loaded == big, "the 1 MiB snapshot changed on the way");
}

/// A snapshot of a stream id with a NUL character (no stream can have one: appends refuse
/// it) is refused with a typed error on every backend, and nothing is stored.
pub(crate) async fn nul_in_stream_id_is_refused<S: EventStore>(store: S) {
    match store.save_snapshot(snapshot("acc\0ount", 3)).await {
        Err(StoreError::NulCharacter { field, value }) => {
            assert_eq!(field, "snapshot stream id");
            assert_eq!(value, "acc\0ount");
        }
        other => panic!("expected NulCharacter, got {other:?}"),
    }
    assert_eq!(load(&store, "acc\0ount").await, None);
    assert_eq!(load(&store, "acc").await, None);
}
