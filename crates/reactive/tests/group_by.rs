//! `group_by`: routing, per-group order, the two typed errors instead of hangs, upstream
//! errors reaching every group, concurrent groups on tasks, cancellation.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use flowbed_reactive::ops::group_by::Group;
use flowbed_reactive::{Error, Flow};
use futures::StreamExt;
use tokio::task::JoinHandle;

/// A hang guard only: every test finishes long before it on a working operator.
const HANG: Duration = Duration::from_secs(20);

type Collected = Result<Vec<u64>, Error>;

/// Takes every group from the outer flow and collects each on its own task.
async fn collect_groups_on_tasks<S>(
    outer: Flow<S>,
) -> (Result<(), Error>, BTreeMap<u64, Vec<Collected>>)
where
    S: flowbed_reactive::Source<Item = Group<u64, u64>>,
{
    let mut outer = outer.into_stream();
    let mut tasks: Vec<(u64, JoinHandle<Collected>)> = Vec::new();
    let mut outer_end = Ok(());
    while let Some(group) = outer.next().await {
        match group {
            Ok(group) => {
                let key = *group.key();
                tasks.push((key, tokio::spawn(group.into_flow().collect::<Vec<_>>())));
            }
            Err(error) => outer_end = Err(error),
        }
    }
    let mut results: BTreeMap<u64, Vec<Collected>> = BTreeMap::new();
    for (key, task) in tasks {
        results.entry(key).or_default().push(task.await.unwrap());
    }
    (outer_end, results)
}

fn expected_groups(
    items: impl Iterator<Item = u64>,
    key: impl Fn(u64) -> u64,
) -> BTreeMap<u64, Vec<u64>> {
    let mut groups: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for item in items {
        groups.entry(key(item)).or_default().push(item);
    }
    groups
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_keys_are_routed_to_their_groups_in_order_on_a_thread_pool() {
    let run = collect_groups_on_tasks(Flow::iter(0..20_000u64).group_by(|n| n % 37, 64, 8));
    let (outer, results) = tokio::time::timeout(HANG, run).await.expect("hang");
    outer.unwrap();
    let expected = expected_groups(0..20_000, |n| n % 37);
    assert_eq!(results.len(), 37);
    for (key, mut got) in results {
        assert_eq!(got.len(), 1, "key {key} opened twice");
        assert_eq!(got.pop().unwrap().unwrap(), expected[&key], "key {key}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn groups_consumed_on_spawned_tasks_of_one_thread_do_not_trip_the_not_consumed_check() {
    // The outer flow runs ahead and fills fresh groups before their tasks ever ran: the
    // grace for a never-polled group must let the spawned tasks start.
    let run = collect_groups_on_tasks(Flow::iter(0..5_000u64).group_by(|n| n % 7, 16, 2));
    let (outer, results) = tokio::time::timeout(HANG, run).await.expect("hang");
    outer.unwrap();
    let expected = expected_groups(0..5_000, |n| n % 7);
    for (key, mut got) in results {
        assert_eq!(got.pop().unwrap().unwrap(), expected[&key]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flat_map_with_enough_concurrency_consumes_every_group() {
    let run = Flow::iter(0..3_000u64)
        .group_by(|n| n % 5, 8, 4)
        .flat_map(|group| group.into_flow(), 5)
        .collect::<Vec<_>>();
    let mut got = tokio::time::timeout(HANG, run)
        .await
        .expect("hang")
        .unwrap();
    got.sort_unstable();
    assert_eq!(got, (0..3_000).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_open_groups_than_the_limit_fail_the_outer_flow_and_every_group() {
    let run = collect_groups_on_tasks(Flow::iter(0..1_000u64).group_by(|n| n % 10, 3, 1_000));
    let (outer, results) = tokio::time::timeout(HANG, run).await.expect("hang");
    assert!(
        matches!(outer, Err(Error::TooManyGroups { limit: 3 })),
        "{outer:?}"
    );
    assert_eq!(results.len(), 3);
    for (key, mut got) in results {
        match got.pop().unwrap() {
            Err(Error::TooManyGroups { limit: 3 }) => {}
            other => panic!("group {key}: {other:?}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_group_nobody_polls_fails_everything_instead_of_hanging() {
    // Take 2 of the 5 groups and consume only them: the third group fills up and the two
    // consumed ones would wait for it forever (the Reactor hang).
    let mut outer = Flow::iter(0..10_000u64)
        .group_by(|n| n % 5, 8, 8)
        .into_stream();
    let first = outer.next().await.unwrap().unwrap();
    let second = outer.next().await.unwrap().unwrap();
    assert_eq!((*first.key(), *second.key()), (0, 1));
    let both = futures::future::join(
        first.into_flow().collect::<Vec<_>>(),
        second.into_flow().collect::<Vec<_>>(),
    );
    let (first, second) = tokio::time::timeout(HANG, both).await.expect("hang");
    for result in [first, second] {
        match result {
            Err(Error::GroupNotConsumed { key, capacity: 8 }) => assert_eq!(key, "2"),
            other => panic!("expected GroupNotConsumed, got {other:?}"),
        }
    }
    // The outer flow hands out the groups it still has, then the same error.
    let mut rest = Vec::new();
    let ending = loop {
        match tokio::time::timeout(HANG, outer.next())
            .await
            .expect("hang")
        {
            Some(Ok(group)) => rest.push(*group.key()),
            Some(Err(error)) => break error,
            None => panic!("the outer flow completed"),
        }
    };
    assert_eq!(rest, [2, 3, 4]);
    assert!(
        matches!(ending, Error::GroupNotConsumed { .. }),
        "{ending:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn flat_map_with_fewer_slots_than_groups_fails_with_group_not_consumed() {
    let run = Flow::iter(0..10_000u64)
        .group_by(|n| n % 5, 8, 8)
        .flat_map(|group| group.into_flow(), 2)
        .count();
    match tokio::time::timeout(HANG, run).await.expect("hang") {
        Err(Error::GroupNotConsumed { capacity: 8, .. }) => {}
        other => panic!("expected GroupNotConsumed, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_error_reaches_every_group_after_its_items() {
    let upstream = Flow::iter(0..100u64).try_map(|n| {
        if n == 60 {
            Err(std::io::Error::other("boom").into())
        } else {
            Ok(n)
        }
    });
    let run = collect_groups_on_tasks(upstream.group_by(|n| n % 3, 8, 64));
    let (outer, results) = tokio::time::timeout(HANG, run).await.expect("hang");
    assert!(
        outer
            .unwrap_err()
            .downcast_ref::<std::io::Error>()
            .is_some()
    );
    assert_eq!(results.len(), 3);
    for (key, mut got) in results {
        let error = got.pop().unwrap().unwrap_err();
        assert!(
            error.downcast_ref::<std::io::Error>().is_some(),
            "group {key}: {error:?}"
        );
    }
    // The items before the error arrive first.
    let mut stream = Flow::iter(0..10u64)
        .try_map(|n| {
            if n == 4 {
                Err(std::io::Error::other("late").into())
            } else {
                Ok(n)
            }
        })
        .group_by(|_| 0u8, 1, 16)
        .into_stream();
    let group = stream.next().await.unwrap().unwrap();
    let mut items = group.into_flow().into_stream();
    for expected in 0..4 {
        assert_eq!(items.next().await.unwrap().unwrap(), expected);
    }
    assert!(items.next().await.unwrap().is_err());
    assert!(items.next().await.is_none());
}

#[tokio::test]
async fn a_panicking_key_function_ends_every_consumer_with_panicked() {
    let mut outer = Flow::iter(0..10u64)
        .group_by(|n| if *n == 5 { panic!("bad key") } else { n % 2 }, 4, 16)
        .into_stream();
    let even = outer.next().await.unwrap().unwrap();
    let odd = outer.next().await.unwrap().unwrap();
    let (even, odd) = futures::future::join(
        even.into_flow().collect::<Vec<_>>(),
        odd.into_flow().collect::<Vec<_>>(),
    )
    .await;
    for result in [even, odd] {
        assert!(matches!(result, Err(Error::Panicked { .. })), "{result:?}");
    }
    assert!(matches!(
        outer.next().await,
        Some(Err(Error::Panicked { .. }))
    ));
}

/// An endless upstream that records when it is dropped (cancelled) and how far it got.
struct Tracked {
    next: u64,
    dropped: Arc<AtomicBool>,
    pulled: Arc<AtomicUsize>,
}

impl Iterator for Tracked {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        self.pulled.fetch_add(1, Ordering::Relaxed);
        self.next += 1;
        Some(self.next - 1)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

fn tracked() -> (Tracked, Arc<AtomicBool>, Arc<AtomicUsize>) {
    let dropped = Arc::new(AtomicBool::new(false));
    let pulled = Arc::new(AtomicUsize::new(0));
    let upstream = Tracked {
        next: 0,
        dropped: Arc::clone(&dropped),
        pulled: Arc::clone(&pulled),
    };
    (upstream, dropped, pulled)
}

#[tokio::test]
async fn upstream_is_cancelled_only_when_the_outer_flow_and_every_group_are_dropped() {
    let (upstream, dropped, _) = tracked();
    let mut outer = Flow::iter(upstream).group_by(|n| n % 2, 4, 8).into_stream();
    let even = outer.next().await.unwrap().unwrap();
    drop(outer);
    assert!(!dropped.load(Ordering::SeqCst), "a group is still alive");
    // The surviving group keeps pulling upstream; odd items are discarded.
    let items = even.into_flow().take(5).collect::<Vec<_>>().await.unwrap();
    assert_eq!(items, [0, 2, 4, 6, 8]);
    assert!(dropped.load(Ordering::SeqCst));

    let (upstream, dropped, _) = tracked();
    let mut outer = Flow::iter(upstream).group_by(|n| n % 2, 4, 8).into_stream();
    let even = outer.next().await.unwrap().unwrap();
    drop(even);
    assert!(
        !dropped.load(Ordering::SeqCst),
        "the outer flow is still alive"
    );
    drop(outer);
    assert!(dropped.load(Ordering::SeqCst));
}

#[tokio::test]
async fn a_dropped_group_discards_its_items_and_its_key_reopens_a_fresh_group() {
    // Capacity 1: most items are still upstream of the groups when a group is dropped.
    let mut outer = Flow::iter([1u64, 1, 2, 1, 1, 2, 1])
        .group_by(|n| *n, 4, 1)
        .into_stream();
    let mut seen = Vec::new();
    while let Some(group) = outer.next().await {
        let group = group.unwrap();
        let key = *group.key();
        // One item, then `take` drops (closes) the group.
        let first = group.into_flow().take(1).collect::<Vec<_>>().await.unwrap();
        assert_eq!(first, [key]);
        seen.push(key);
    }
    assert!(
        seen.iter().filter(|key| **key == 1).count() >= 2,
        "key 1 never reopened: {seen:?}"
    );
    assert!(seen.contains(&2), "{seen:?}");
}

#[tokio::test]
async fn upstream_completion_completes_the_outer_flow_and_the_groups_after_their_items() {
    let mut outer = Flow::iter(0..6u64).group_by(|n| n % 3, 3, 16).into_stream();
    let mut groups = Vec::new();
    while let Some(group) = outer.next().await {
        groups.push(group.unwrap());
    }
    // The outer flow completed first; every group still has its items.
    assert_eq!(groups.len(), 3);
    for group in groups {
        let key = *group.key();
        let items = group.into_flow().collect::<Vec<_>>().await.unwrap();
        assert_eq!(items, [key, key + 3]);
    }
}

#[test]
fn groups_and_the_outer_source_are_send_and_static() {
    fn assert_send_static<T: Send + 'static>() {}
    assert_send_static::<Group<String, Vec<u8>>>();
    assert_send_static::<flowbed_reactive::ops::group_by::GroupBy<String, Vec<u8>>>();
}
