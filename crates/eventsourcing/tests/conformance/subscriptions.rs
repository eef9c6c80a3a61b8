//! Catch-up subscriptions on every backend: history in order, then live, with no gap and no
//! duplicate at the switch or between batches; stream subscriptions; resuming from a
//! checkpoint; the `Stream` adapter.

use std::sync::Arc;

use flowbed_eventsourcing::{EventStore, ExpectedVersion, Position, RecordedEvent, Subscription};
use futures::StreamExt;
use tokio::sync::{Barrier, mpsc, oneshot};

use super::*;

/// The subscription's next event, failing the case on an error or a hang.
async fn next_event<S: EventStore>(subscription: &mut Subscription<S>) -> RecordedEvent {
    within("the subscription's next event", subscription.next())
        .await
        .unwrap_or_else(|error| panic!("the subscription failed: {error}"))
}

/// Checks that `delivered` is exactly the global log (every event once, in order).
async fn assert_is_the_log<S: EventStore>(store: &S, delivered: &[RecordedEvent]) {
    let log = all_events(store).await;
    assert_eq!(
        delivered.iter().map(|e| e.position.0).collect::<Vec<_>>(),
        (1..=log.len() as u64).collect::<Vec<_>>(),
        "delivered positions"
    );
    assert_eq!(delivered, log, "delivered events equal the log");
}

/// Runs a subscription on its own task, forwarding `count` events through a channel.
fn forward<S: EventStore>(
    mut subscription: Subscription<S>,
    count: usize,
) -> (
    mpsc::UnboundedReceiver<RecordedEvent>,
    tokio::task::JoinHandle<Subscription<S>>,
) {
    let (sender, receiver) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        for _ in 0..count {
            let event = subscription
                .next()
                .await
                .unwrap_or_else(|error| panic!("the subscription failed: {error}"));
            if sender.send(event).is_err() {
                break;
            }
        }
        subscription
    });
    (receiver, task)
}

/// Receives the next forwarded event, failing the case on a hang or a dead forwarder.
async fn receive(events: &mut mpsc::UnboundedReceiver<RecordedEvent>) -> RecordedEvent {
    within("a forwarded subscription event", events.recv())
        .await
        .expect("the subscription task ended early (it panicked?)")
}

/// History is delivered in position order, across streams, in batches smaller than it.
pub(crate) async fn catch_up_delivers_history_in_order<S: EventStore>(store: S) {
    append_alternating(&store, &["a", "b", "c"], "H", "h", 7).await;
    let mut subscription = Subscription::all(store.clone(), Position::START).batch_size(3);
    assert_eq!(subscription.position(), Position::START);
    let mut delivered = Vec::new();
    for n in 1..=7u64 {
        delivered.push(next_event(&mut subscription).await);
        assert_eq!(subscription.position(), Position(n));
    }
    assert_is_the_log(&store, &delivered).await;
}

/// Appends made while the subscription is between batches (mid-batch, at a batch boundary,
/// while it is live) are all delivered once, in order: a writer task appends on request
/// and acknowledges, so every interleaving point is exercised deterministically.
pub(crate) async fn appends_between_batches_no_gap_no_duplicate<S: EventStore>(store: S) {
    append_alternating(&store, &["a", "b"], "H", "h", 5).await;
    let (requests, mut incoming) = mpsc::channel::<(usize, oneshot::Sender<()>)>(1);
    let writer_store = store.clone();
    let writer = tokio::spawn(async move {
        let mut written = 0;
        while let Some((count, done)) = incoming.recv().await {
            for _ in 0..count {
                let stream = ["w0", "w1", "w2"][written % 3];
                append_ok(
                    &writer_store,
                    stream,
                    ExpectedVersion::Any,
                    vec![event("Live", "w", written)],
                )
                .await;
                written += 1;
            }
            let _ = done.send(());
        }
        written
    });

    let mut subscription = Subscription::all(store.clone(), Position::START).batch_size(2);
    let mut delivered: Vec<RecordedEvent> = Vec::new();
    let mut total = 5;
    while delivered.len() < total {
        delivered.push(next_event(&mut subscription).await);
        let seen = delivered.len();
        // Append after the 1st, 2nd, 4th, 5th, 7th ... delivered event: with batches of 2
        // that is both mid-batch and at batch ends, and at the live edge once caught up.
        if seen % 3 != 0 && total < 40 {
            let count = 1 + seen % 2;
            let (done, acked) = oneshot::channel();
            requests
                .send((count, done))
                .await
                .expect("the writer stopped");
            within("the writer's acknowledgement", acked)
                .await
                .expect("the writer dropped a request");
            total += count;
        }
    }
    drop(requests);
    let written = within("the writer finishing", writer)
        .await
        .expect("the writer panicked");
    assert_eq!(written + 5, total);
    assert_eq!(delivered.len(), total);
    assert_is_the_log(&store, &delivered).await;
    assert_eq!(subscription.position(), Position(total as u64));
}

/// A subscription that has caught up waits for commits and delivers each new one, single
/// events and batches, with no gap or duplicate at the switch from history to live.
pub(crate) async fn catch_up_then_live_switch<S: EventStore>(store: S) {
    append_alternating(&store, &["history"], "H", "h", 4).await;
    let subscription = Subscription::all(store.clone(), Position::START).batch_size(2);
    let (mut events, task) = forward(subscription, 10);
    let mut delivered = Vec::new();
    for _ in 0..4 {
        delivered.push(receive(&mut events).await);
    }
    // Caught up: everything after this is live.
    append_ok(
        &store,
        "live",
        ExpectedVersion::Any,
        vec![event("L", "l", 0)],
    )
    .await;
    delivered.push(receive(&mut events).await);
    assert_eq!(delivered[4].position, Position(5));
    append_ok(&store, "other", ExpectedVersion::Any, numbered("batch", 3)).await;
    for _ in 0..3 {
        delivered.push(receive(&mut events).await);
    }
    append_ok(
        &store,
        "live",
        ExpectedVersion::Exact(1),
        vec![event("L", "l", 1)],
    )
    .await;
    append_ok(
        &store,
        "live",
        ExpectedVersion::Exact(2),
        vec![event("L", "l", 2)],
    )
    .await;
    for _ in 0..2 {
        delivered.push(receive(&mut events).await);
    }
    let subscription = within("the subscription task", task)
        .await
        .expect("the subscription task panicked");
    assert_eq!(subscription.position(), Position(10));
    assert_is_the_log(&store, &delivered).await;
}

/// `Subscription::all(store, p)` starts with the event after `p`.
pub(crate) async fn all_from_middle<S: EventStore>(store: S) {
    for n in 0..6 {
        append_ok(&store, "s", ExpectedVersion::Any, vec![event("E", "e", n)]).await;
    }
    let log = all_events(&store).await;
    let mut subscription = Subscription::all(store.clone(), Position(4));
    assert_eq!(subscription.position(), Position(4));
    assert_eq!(next_event(&mut subscription).await, log[4]);
    assert_eq!(next_event(&mut subscription).await, log[5]);
    let writer = store.clone();
    let append = tokio::spawn(async move {
        append_ok(
            &writer,
            "t",
            ExpectedVersion::Any,
            vec![event("E", "late", 0)],
        )
        .await
    });
    let live = next_event(&mut subscription).await;
    assert_eq!(
        within("the append", append).await.expect("the append task"),
        appended(1, 7)
    );
    assert_eq!((live.position, live.stream_id.as_str()), (Position(7), "t"));
    assert_eq!(live, all_events(&store).await[6]);
}

/// A stream subscription delivers only its stream's events, in version order, in
/// catch-up and live, however the other streams interleave.
pub(crate) async fn stream_subscription_sees_only_its_stream<S: EventStore>(store: S) {
    for n in 0..6 {
        let stream = ["s", "t", "s-1"][n % 3];
        append_ok(
            &store,
            stream,
            ExpectedVersion::Any,
            vec![event("E", stream, n)],
        )
        .await;
        append_ok(
            &store,
            "s",
            ExpectedVersion::Any,
            vec![event("E", "s", 100 + n)],
        )
        .await;
    }
    let history = stream_events(&store, "s").await;
    assert_eq!(history.len(), 8);
    let subscription = Subscription::stream(store.clone(), "s", 0).batch_size(3);
    let (mut events, task) = forward(subscription, 11);
    let mut delivered = Vec::new();
    for _ in 0..8 {
        delivered.push(receive(&mut events).await);
    }
    assert_eq!(delivered, history);
    for (stream, n) in [
        ("t", 0),
        ("s-1", 1),
        ("s", 2),
        ("t", 3),
        ("s", 4),
        ("S", 5),
        ("s", 6),
    ] {
        append_ok(
            &store,
            stream,
            ExpectedVersion::Any,
            vec![event("L", stream, n)],
        )
        .await;
    }
    for _ in 0..3 {
        delivered.push(receive(&mut events).await);
    }
    within("the subscription task", task)
        .await
        .expect("the subscription task panicked");
    assert_eq!(
        delivered.iter().map(|e| e.version).collect::<Vec<_>>(),
        (1..=11).collect::<Vec<u64>>()
    );
    assert_eq!(delivered, stream_events(&store, "s").await);
}

/// `Subscription::stream(store, s, v)` starts with version `v + 1`.
pub(crate) async fn stream_subscription_after_version<S: EventStore>(store: S) {
    append_ok(&store, "s", ExpectedVersion::Any, numbered("s", 5)).await;
    append_ok(&store, "t", ExpectedVersion::Any, numbered("t", 2)).await;
    let mut subscription = Subscription::stream(store.clone(), "s", 3);
    let fourth = next_event(&mut subscription).await;
    assert_eq!(
        (fourth.stream_id.as_str(), fourth.version, fourth.position),
        ("s", 4, Position(4))
    );
    assert_eq!(next_event(&mut subscription).await.version, 5);
    assert_eq!(subscription.position(), Position(5));
    let writer = store.clone();
    let append = tokio::spawn(async move {
        append_ok(&writer, "t", ExpectedVersion::Any, numbered("t2", 1)).await;
        append_ok(&writer, "s", ExpectedVersion::Exact(5), numbered("s2", 1)).await
    });
    let sixth = next_event(&mut subscription).await;
    within("the appends", append)
        .await
        .expect("the append task");
    assert_eq!(
        (sixth.stream_id.as_str(), sixth.version, sixth.position),
        ("s", 6, Position(9))
    );
}

/// `Subscription::resume` starts after the stored checkpoint (from the beginning without
/// one); `save_checkpoint` stores the position of the last delivered event.
pub(crate) async fn resume_from_checkpoint<S: EventStore>(store: S) {
    append_alternating(&store, &["a", "b"], "E", "e", 6).await;
    let log = all_events(&store).await;
    let mut first = Subscription::resume(store.clone(), "projection")
        .await
        .expect("resume without a checkpoint");
    assert_eq!(first.position(), Position::START);
    for expected in &log[..3] {
        assert_eq!(&next_event(&mut first).await, expected);
    }
    first
        .save_checkpoint("projection")
        .await
        .expect("save checkpoint");
    assert_eq!(checkpoint_of(&store, "projection").await, Some(Position(3)));
    drop(first);

    let mut resumed = Subscription::resume(store.clone(), "projection")
        .await
        .expect("resume from the checkpoint");
    assert_eq!(resumed.position(), Position(3));
    for expected in &log[3..] {
        assert_eq!(&next_event(&mut resumed).await, expected);
    }
    append_ok(&store, "c", ExpectedVersion::Any, numbered("c", 1)).await;
    assert_eq!(next_event(&mut resumed).await.position, Position(7));
    resumed
        .save_checkpoint("projection")
        .await
        .expect("save checkpoint");
    assert_eq!(checkpoint_of(&store, "projection").await, Some(Position(7)));
    assert_eq!(checkpoint_of(&store, "other").await, None);
}

/// `into_stream` yields the same events as `next`, in catch-up and live.
pub(crate) async fn into_stream_yields_same_sequence<S: EventStore>(store: S) {
    append_alternating(&store, &["a", "b"], "E", "e", 5).await;
    let mut stream = Subscription::all(store.clone(), Position::START)
        .batch_size(2)
        .into_stream();
    let mut by_next = Subscription::all(store.clone(), Position::START).batch_size(3);
    let mut from_stream = Vec::new();
    let mut from_next = Vec::new();
    for _ in 0..5 {
        let item = within("the subscription stream", stream.next())
            .await
            .expect("a subscription stream never ends");
        from_stream.push(item.unwrap_or_else(|error| panic!("stream item failed: {error}")));
        from_next.push(next_event(&mut by_next).await);
    }
    let writer = store.clone();
    let append = tokio::spawn(async move {
        append_ok(&writer, "c", ExpectedVersion::Any, numbered("c", 2)).await;
        append_ok(&writer, "a", ExpectedVersion::Any, numbered("a", 1)).await
    });
    for _ in 0..3 {
        let item = within("the subscription stream", stream.next())
            .await
            .expect("a subscription stream never ends");
        from_stream.push(item.unwrap_or_else(|error| panic!("stream item failed: {error}")));
        from_next.push(next_event(&mut by_next).await);
    }
    within("the appends", append)
        .await
        .expect("the append task");
    assert_eq!(from_stream, from_next);
    assert_is_the_log(&store, &from_stream).await;
}

/// Four writers committing concurrently while a subscription follows live: every event
/// exactly once, in position order, each writer's events in its order.
pub(crate) async fn live_with_concurrent_writers_exactly_once<S: EventStore>(store: S) {
    const WRITERS: usize = 4;
    const EACH: usize = 25;
    let subscription = Subscription::all(store.clone(), Position::START).batch_size(7);
    let (mut events, task) = forward(subscription, WRITERS * EACH);
    let barrier = Arc::new(Barrier::new(WRITERS));
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let (store, barrier) = (store.clone(), barrier.clone());
        writers.push(tokio::spawn(async move {
            barrier.wait().await;
            let stream = format!("writer-{writer}");
            for n in 0..EACH {
                append_ok(
                    &store,
                    &stream,
                    ExpectedVersion::Exact(n as u64),
                    vec![event("W", &stream, n)],
                )
                .await;
            }
        }));
    }
    let mut delivered = Vec::new();
    for _ in 0..WRITERS * EACH {
        delivered.push(receive(&mut events).await);
    }
    for writer in writers {
        within("a writer", writer).await.expect("a writer panicked");
    }
    within("the subscription task", task)
        .await
        .expect("the subscription task panicked");
    for writer in 0..WRITERS {
        let stream = format!("writer-{writer}");
        let versions: Vec<u64> = delivered
            .iter()
            .filter(|e| e.stream_id == stream)
            .map(|e| e.version)
            .collect();
        assert_eq!(versions, (1..=EACH as u64).collect::<Vec<_>>(), "{stream}");
    }
    assert_is_the_log(&store, &delivered).await;
}
