//! `broadcast`/`share`: fan-out in order, backpressure to the slowest subscriber with
//! bounded memory, the three overflow policies, auto-connect, late joiners, unsubscribing,
//! cancellation and completion/error fan-out.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use flowbed_reactive::ops::broadcast::{
    Broadcast, BroadcastConfig, BroadcastPolicy, BroadcastSubscriber,
};
use flowbed_reactive::{Error, Flow};
use futures::StreamExt;

/// A hang guard only: every test finishes long before it on a working operator.
const HANG: Duration = Duration::from_secs(20);

fn config(capacity: usize, policy: BroadcastPolicy, auto_connect: usize) -> BroadcastConfig {
    BroadcastConfig {
        capacity,
        policy,
        auto_connect,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_subscriber_sees_every_item_in_order() {
    let hub = Flow::iter(0..50_000u64).broadcast(config(64, BroadcastPolicy::SlowestSubscriber, 5));
    let tasks: Vec<_> = (0..5)
        .map(|_| tokio::spawn(hub.subscribe().collect::<Vec<_>>()))
        .collect();
    let expected: Vec<u64> = (0..50_000).collect();
    for task in tasks {
        let got = tokio::time::timeout(HANG, task).await.expect("hang");
        assert_eq!(got.unwrap().unwrap(), expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_subscribers_on_their_own_tasks_get_all_items_with_the_default_config() {
    let hub = Flow::iter(0..200_000u64).broadcast(BroadcastConfig {
        auto_connect: 10,
        ..BroadcastConfig::default()
    });
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            tokio::spawn(
                hub.subscribe()
                    .fold((0u64, 0u64), |(n, sum), x| (n + 1, sum + x)),
            )
        })
        .collect();
    for task in tasks {
        let got = tokio::time::timeout(HANG, task).await.expect("hang");
        assert_eq!(got.unwrap().unwrap(), (200_000, 199_999 * 200_000 / 2));
    }
}

#[tokio::test(start_paused = true)]
async fn a_slow_subscriber_slows_the_source_and_memory_stays_bounded() {
    const CAPACITY: usize = 8;
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&pulled);
    let hub = Flow::iter(0..300u64)
        .inspect(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .broadcast(config(CAPACITY, BroadcastPolicy::SlowestSubscriber, 2));
    let fast = tokio::spawn(hub.subscribe().collect::<Vec<_>>());
    let mut slow = hub.subscribe().into_stream();
    let mut received = 0;
    while let Some(item) = slow.next().await {
        assert_eq!(item.unwrap(), received as u64);
        received += 1;
        let ahead = pulled.load(Ordering::SeqCst) - received;
        assert!(
            ahead <= CAPACITY,
            "upstream {ahead} items ahead of the slowest"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(received, 300);
    assert_eq!(fast.await.unwrap().unwrap(), (0..300).collect::<Vec<_>>());
}

/// One fast subscriber runs the whole upstream while a slow one (subscribed, never polled
/// meanwhile) overflows; returns (fast's items, slow's outcome).
async fn fast_and_stalled(policy: BroadcastPolicy) -> (Vec<u64>, Vec<u64>, Result<(), Error>) {
    let hub = Flow::iter(0..100u64).broadcast(config(4, policy, 2));
    let mut slow = hub.subscribe().into_stream();
    let fast = hub.subscribe().collect::<Vec<_>>();
    let fast = tokio::time::timeout(HANG, fast)
        .await
        .expect("hang")
        .unwrap();
    let mut items = Vec::new();
    let mut ending = Ok(());
    while let Some(item) = slow.next().await {
        match item {
            Ok(item) => items.push(item),
            Err(error) => ending = Err(error),
        }
    }
    (fast, items, ending)
}

#[tokio::test]
async fn drop_oldest_keeps_the_newest_items_of_a_slow_subscriber() {
    let (fast, slow, ending) = fast_and_stalled(BroadcastPolicy::DropOldest).await;
    assert_eq!(fast, (0..100).collect::<Vec<_>>());
    assert_eq!(slow, [96, 97, 98, 99]);
    ending.unwrap();
}

#[tokio::test]
async fn drop_newest_keeps_the_oldest_items_of_a_slow_subscriber() {
    let (fast, slow, ending) = fast_and_stalled(BroadcastPolicy::DropNewest).await;
    assert_eq!(fast, (0..100).collect::<Vec<_>>());
    assert_eq!(slow, [0, 1, 2, 3]);
    ending.unwrap();
}

#[tokio::test]
async fn the_error_policy_ends_a_slow_subscriber_with_overflow_after_the_items_that_fit() {
    let (fast, slow, ending) = fast_and_stalled(BroadcastPolicy::Error).await;
    assert_eq!(fast, (0..100).collect::<Vec<_>>());
    assert_eq!(slow, [0, 1, 2, 3]);
    assert!(
        matches!(ending, Err(Error::Overflow { capacity: 4 })),
        "{ending:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn drop_newest_resumes_with_new_items_once_the_slow_subscriber_caught_up() {
    // The upstream waits between items, so the slow subscriber's gaps are deterministic.
    let hub = Flow::from_stream(futures::stream::iter(0..40u64).then(|n| async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        n
    }))
    .broadcast(config(4, BroadcastPolicy::DropNewest, 2));
    let fast = tokio::spawn(hub.subscribe().collect::<Vec<_>>());
    let mut slow = hub.subscribe().into_stream();
    let mut got = Vec::new();
    while let Some(item) = slow.next().await {
        got.push(item.unwrap());
        // 10 items arrive while this subscriber sleeps: it keeps 4 of them.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(fast.await.unwrap().unwrap(), (0..40).collect::<Vec<_>>());
    assert!(got.len() < 40, "nothing dropped: {got:?}");
    assert!(got.windows(2).all(|pair| pair[0] < pair[1]), "{got:?}");
    assert_eq!(got[..4], [0, 1, 2, 3]);
    assert!(*got.last().unwrap() > 3, "never resumed: {got:?}");
}

#[tokio::test(start_paused = true)]
async fn auto_connect_waits_for_n_subscribers_so_none_misses_the_first_items() {
    let hub = Flow::iter(0..10u64).broadcast(config(4, BroadcastPolicy::SlowestSubscriber, 3));
    let mut first = hub.subscribe().into_stream();
    let second = hub.subscribe();
    let early = tokio::time::timeout(Duration::from_secs(1), first.next()).await;
    assert!(early.is_err(), "started before the third subscriber");
    let third = hub.subscribe();
    let (rest, second, third) = futures::future::join3(
        first.map(Result::unwrap).collect::<Vec<_>>(),
        second.collect::<Vec<_>>(),
        third.collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(rest, (0..10).collect::<Vec<_>>());
    assert_eq!(second.unwrap(), (0..10).collect::<Vec<_>>());
    assert_eq!(third.unwrap(), (0..10).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn connect_starts_a_hub_without_auto_connect_and_dropping_the_hub_connects_too() {
    let hub = Flow::iter(0..5u64).broadcast(config(4, BroadcastPolicy::SlowestSubscriber, 0));
    let mut subscriber = hub.subscribe().into_stream();
    let early = tokio::time::timeout(Duration::from_secs(1), subscriber.next()).await;
    assert!(early.is_err(), "started without connect");
    hub.connect();
    let items: Vec<u64> = subscriber.map(Result::unwrap).collect().await;
    assert_eq!(items, [0, 1, 2, 3, 4]);

    let hub = Flow::iter(0..5u64).broadcast(config(4, BroadcastPolicy::SlowestSubscriber, 9));
    let subscriber = hub.subscribe();
    drop(hub);
    let items = tokio::time::timeout(HANG, subscriber.collect::<Vec<_>>())
        .await
        .expect("a dropped hub must connect its waiting subscribers");
    assert_eq!(items.unwrap(), [0, 1, 2, 3, 4]);
}

#[tokio::test]
async fn a_late_subscriber_sees_the_items_from_when_it_joined() {
    const CAPACITY: usize = 4;
    let hub =
        Flow::iter(0..100u64).broadcast(config(CAPACITY, BroadcastPolicy::SlowestSubscriber, 1));
    let mut early = hub.subscribe().into_stream();
    for expected in 0..10 {
        assert_eq!(early.next().await.unwrap().unwrap(), expected);
    }
    let late = hub.subscribe();
    assert_eq!(hub.subscriber_count(), 2);
    let (rest, late) = futures::future::join(
        early.map(Result::unwrap).collect::<Vec<_>>(),
        late.collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(rest, (10..100).collect::<Vec<_>>());
    let late = late.unwrap();
    let start = late[0];
    assert!(
        (10..=10 + CAPACITY as u64).contains(&start),
        "late joiner starts at {start}"
    );
    assert_eq!(late, (start..100).collect::<Vec<_>>());
}

#[tokio::test]
async fn an_unsubscribed_slow_subscriber_no_longer_holds_the_others_back() {
    let hub = Flow::iter(0..1_000u64).broadcast(config(4, BroadcastPolicy::SlowestSubscriber, 2));
    let mut slow = hub.subscribe().into_stream();
    let fast = hub.subscribe().into_stream();
    assert_eq!(slow.next().await.unwrap().unwrap(), 0);
    let mut fast = fast;
    // The slow one stopped reading: the fast one is held at the capacity bound...
    let mut fast_items = Vec::new();
    for _ in 0..4 {
        fast_items.push(fast.next().await.unwrap().unwrap());
    }
    // ...until the slow one unsubscribes.
    drop(slow);
    let rest = tokio::time::timeout(HANG, fast.map(Result::unwrap).collect::<Vec<_>>())
        .await
        .expect("the dropped subscriber still holds the hub back");
    fast_items.extend(rest);
    assert_eq!(fast_items, (0..1_000).collect::<Vec<_>>());
}

/// An endless upstream that records when it is dropped (cancelled).
struct Endless {
    next: u64,
    dropped: Arc<AtomicBool>,
}

impl Iterator for Endless {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        self.next += 1;
        Some(self.next - 1)
    }
}

impl Drop for Endless {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

fn endless_hub(policy: BroadcastPolicy) -> (Broadcast<u64>, Arc<AtomicBool>) {
    let dropped = Arc::new(AtomicBool::new(false));
    let upstream = Endless {
        next: 0,
        dropped: Arc::clone(&dropped),
    };
    (
        Flow::iter(upstream).broadcast(config(16, policy, 2)),
        dropped,
    )
}

#[tokio::test]
async fn upstream_is_cancelled_when_every_subscriber_is_gone() {
    let (hub, dropped) = endless_hub(BroadcastPolicy::SlowestSubscriber);
    let first = hub.subscribe();
    let second = hub.subscribe();
    let (a, b) = futures::future::join(
        first.take(100).collect::<Vec<_>>(),
        second.take(50).collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(a.unwrap(), (0..100).collect::<Vec<_>>());
    assert_eq!(b.unwrap(), (0..50).collect::<Vec<_>>());
    assert!(
        dropped.load(Ordering::SeqCst),
        "upstream outlived its subscribers"
    );
    // The hub is still there: a new subscriber completes at once.
    let late = hub.subscribe().collect::<Vec<_>>().await.unwrap();
    assert!(late.is_empty());

    // One subscriber left, or the hub dropped first: upstream runs on.
    let (hub, dropped) = endless_hub(BroadcastPolicy::DropOldest);
    let first = hub.subscribe();
    let second = hub.subscribe();
    drop(hub);
    assert_eq!(first.take(10).count().await.unwrap(), 10);
    assert!(!dropped.load(Ordering::SeqCst));
    drop(second);
    assert!(dropped.load(Ordering::SeqCst));
}

#[tokio::test]
async fn dropping_an_unconnected_hub_without_subscribers_cancels_upstream() {
    let (hub, dropped) = endless_hub(BroadcastPolicy::SlowestSubscriber);
    drop(hub.subscribe());
    assert!(
        !dropped.load(Ordering::SeqCst),
        "not connected yet: the hub may get more"
    );
    drop(hub);
    assert!(dropped.load(Ordering::SeqCst));
}

#[tokio::test]
async fn completion_and_errors_reach_every_subscriber_after_the_items_before_them() {
    let hub = Flow::iter(0..10u64)
        .try_map(|n| {
            if n == 7 {
                Err(std::io::Error::other("boom").into())
            } else {
                Ok(n)
            }
        })
        .broadcast(config(4, BroadcastPolicy::SlowestSubscriber, 3));
    let subscribers: Vec<_> = (0..3).map(|_| hub.subscribe().into_stream()).collect();
    let outcomes = futures::future::join_all(
        subscribers
            .into_iter()
            .map(|stream| stream.collect::<Vec<_>>()),
    )
    .await;
    for outcome in outcomes {
        let (items, errors): (Vec<_>, Vec<_>) = outcome.into_iter().partition(Result::is_ok);
        let items: Vec<u64> = items.into_iter().map(Result::unwrap).collect();
        assert_eq!(items, (0..7).collect::<Vec<_>>());
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0]
                .as_ref()
                .unwrap_err()
                .downcast_ref::<std::io::Error>()
                .is_some()
        );
    }
    // Joining after the end gets the ending at once.
    let late = hub.subscribe().collect::<Vec<_>>().await;
    assert!(late.unwrap_err().downcast_ref::<std::io::Error>().is_some());

    let hub = Flow::iter(0..3u64).share();
    let items = hub.subscribe().collect::<Vec<_>>().await.unwrap();
    assert_eq!(items, [0, 1, 2]);
}

#[tokio::test]
async fn a_panic_upstream_ends_every_subscriber_with_panicked() {
    let hub = Flow::iter(0..10u64)
        .map(|n| if n == 5 { panic!("bad item") } else { n })
        .broadcast(config(4, BroadcastPolicy::DropNewest, 2));
    let (a, b) = futures::future::join(
        hub.subscribe().collect::<Vec<_>>(),
        hub.subscribe().collect::<Vec<_>>(),
    )
    .await;
    for outcome in [a, b] {
        assert!(
            matches!(outcome, Err(Error::Panicked { .. })),
            "{outcome:?}"
        );
    }
}

#[test]
fn the_hub_is_send_and_sync_and_subscribers_are_send() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    fn assert_send<T: Send + 'static>() {}
    assert_send_sync::<Broadcast<String>>();
    assert_send::<BroadcastSubscriber<String>>();
    assert_send::<Flow<BroadcastSubscriber<String>>>();
}
