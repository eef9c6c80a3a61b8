//! Subscriber checkpoints: save, load, overwrite (either way), per subscriber.

use flowbed_eventsourcing::{EventStore, Position, StoreError};

use super::checkpoint_of;

/// Saves, failing the case on an error.
async fn save<S: EventStore>(store: &S, subscriber: &str, position: Position) {
    store
        .save_checkpoint(subscriber, position)
        .await
        .unwrap_or_else(|error| panic!("save_checkpoint {subscriber:?} failed: {error}"));
}

/// A subscriber that never saved has no checkpoint.
pub(crate) async fn unknown_checkpoint_is_none<S: EventStore>(store: S) {
    assert_eq!(checkpoint_of(&store, "projection").await, None);
}

/// A saved checkpoint loads back, including `START` and large positions (checkpoints do not
/// need events to exist).
pub(crate) async fn save_and_load<S: EventStore>(store: S) {
    save(&store, "at-start", Position::START).await;
    assert_eq!(
        checkpoint_of(&store, "at-start").await,
        Some(Position::START)
    );
    save(&store, "projection", Position(42)).await;
    assert_eq!(
        checkpoint_of(&store, "projection").await,
        Some(Position(42))
    );
    save(&store, "far", Position(i64::MAX as u64)).await;
    assert_eq!(
        checkpoint_of(&store, "far").await,
        Some(Position(i64::MAX as u64))
    );
}

/// Saving overwrites, forwards and backwards (resetting a projection is allowed).
pub(crate) async fn overwrite_moves_both_ways<S: EventStore>(store: S) {
    save(&store, "p", Position(10)).await;
    save(&store, "p", Position(25)).await;
    assert_eq!(checkpoint_of(&store, "p").await, Some(Position(25)));
    save(&store, "p", Position(5)).await;
    assert_eq!(checkpoint_of(&store, "p").await, Some(Position(5)));
    save(&store, "p", Position::START).await;
    assert_eq!(checkpoint_of(&store, "p").await, Some(Position::START));
}

/// Subscribers' checkpoints are independent (names compared exactly).
pub(crate) async fn checkpoints_are_per_subscriber<S: EventStore>(store: S) {
    let names = ["p", "P", "p ", "p-1", "投影 ü", "'; --"];
    for (n, name) in names.iter().enumerate() {
        save(&store, name, Position(n as u64 * 10 + 1)).await;
    }
    for (n, name) in names.iter().enumerate() {
        assert_eq!(
            checkpoint_of(&store, name).await,
            Some(Position(n as u64 * 10 + 1)),
            "{name:?}"
        );
    }
    assert_eq!(checkpoint_of(&store, "q").await, None);
}

/// A subscriber name with a NUL character is refused with a typed error on every backend
/// (PostgreSQL text cannot hold it), and nothing is stored.
pub(crate) async fn nul_in_subscriber_is_refused<S: EventStore>(store: S) {
    match store.save_checkpoint("proj\0ection", Position(7)).await {
        Err(StoreError::NulCharacter { field, value }) => {
            assert_eq!(field, "subscriber");
            assert_eq!(value, "proj\0ection");
        }
        other => panic!("expected NulCharacter, got {other:?}"),
    }
    assert_eq!(checkpoint_of(&store, "proj\0ection").await, None);
    assert_eq!(checkpoint_of(&store, "proj").await, None);
}
