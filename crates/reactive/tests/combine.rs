//! merge, merge_all, zip, concat, flat_map, flat_map_iter.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use flowbed_reactive::{Error, Flow};
use futures::StreamExt;

#[tokio::test]
async fn merge_interleaves_and_keeps_each_inputs_order() {
    let merged = Flow::iter(0..1000u32)
        .merge(Flow::iter(1000..2000u32))
        .collect::<Vec<_>>()
        .await
        .unwrap();
    assert_eq!(merged.len(), 2000);
    let left: Vec<_> = merged.iter().copied().filter(|n| *n < 1000).collect();
    let right: Vec<_> = merged.iter().copied().filter(|n| *n >= 1000).collect();
    assert_eq!(left, (0..1000).collect::<Vec<_>>());
    assert_eq!(right, (1000..2000).collect::<Vec<_>>());
}

#[tokio::test]
async fn merge_fails_with_the_first_error() {
    let result = Flow::iter(0..3u32)
        .merge(Flow::failed(Error::Protocol("test")))
        .collect::<Vec<_>>()
        .await;
    assert!(matches!(result, Err(Error::Protocol("test"))));
}

#[tokio::test]
async fn merge_all_takes_every_flow() {
    let flows = (0..5u32).map(|n| Flow::iter(n * 10..n * 10 + 10));
    let mut all = Flow::merge_all(flows).collect::<Vec<_>>().await.unwrap();
    all.sort();
    assert_eq!(all, (0..50).collect::<Vec<_>>());
}

#[tokio::test]
async fn zip_stops_at_the_shorter_flow() {
    let pairs = Flow::iter(0..5u32)
        .zip(Flow::iter(["a", "b"]).async_boundary(1))
        .collect::<Vec<_>>()
        .await
        .unwrap();
    assert_eq!(pairs, [(0, "a"), (1, "b")]);
}

#[tokio::test]
async fn concat_runs_the_second_only_after_the_first() {
    let started = Arc::new(AtomicUsize::new(0));
    let probe = Arc::clone(&started);
    let second = Flow::iter(10..12u32).inspect(move |_| {
        probe.fetch_add(1, Ordering::SeqCst);
    });
    let mut stream = Flow::iter(0..2u32).concat(second).into_stream();
    assert_eq!(stream.next().await.unwrap().unwrap(), 0);
    assert_eq!(stream.next().await.unwrap().unwrap(), 1);
    assert_eq!(started.load(Ordering::SeqCst), 0);
    let rest: Vec<_> = stream.map(Result::unwrap).collect().await;
    assert_eq!(rest, [10, 11]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flat_map_respects_its_concurrency_limit() {
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (running2, peak2) = (Arc::clone(&running), Arc::clone(&peak));
    let total = Flow::iter(0..20u32)
        .flat_map(
            move |n| {
                let now = running2.fetch_add(1, Ordering::SeqCst) + 1;
                peak2.fetch_max(now, Ordering::SeqCst);
                let running3 = Arc::clone(&running2);
                Flow::iter(0..100u32)
                    .map(move |i| n * 100 + i)
                    .concat(Flow::from_stream(futures::stream::once(async move {
                        running3.fetch_sub(1, Ordering::SeqCst);
                        u32::MAX
                    })))
            },
            3,
        )
        .filter(|n| *n != u32::MAX)
        .collect::<Vec<_>>()
        .await
        .unwrap();
    let mut total = total;
    total.sort();
    assert_eq!(total, (0..2000).collect::<Vec<_>>());
    assert!(
        peak.load(Ordering::SeqCst) <= 3,
        "peak {}",
        peak.load(Ordering::SeqCst)
    );
}

/// futures' `buffered` polls its in-flight futures only while the consumer polls; a slow
/// consumer stalls them. Here the inner flows keep producing (up to their prefetch) while
/// the consumer sleeps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inner_flows_progress_while_a_slow_consumer_is_busy() {
    let produced = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&produced);
    let mut stream = Flow::iter(0..4u32)
        .flat_map_with_prefetch(
            move |n| {
                let counter = Arc::clone(&counter);
                Flow::iter(0..1000u32).map(move |i| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    (n, i)
                })
            },
            4,
            16,
        )
        .into_stream();
    let _first = stream.next().await.unwrap().unwrap();
    // The consumer is "busy": it does not poll. Inner flows fill their prefetch meanwhile.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while produced.load(Ordering::SeqCst) < 4 * 16 {
        assert!(std::time::Instant::now() < deadline, "inner flows stalled");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // And never more than the prefetch (plus the item in hand) ahead.
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(produced.load(Ordering::SeqCst) <= 4 * 17 + 1);
    let rest = stream.count().await;
    assert_eq!(rest, 3999);
}

#[tokio::test]
async fn flat_map_iter_expands_in_order_even_when_downstream_pauses() {
    let mut stream = Flow::iter(["a b c", "d"])
        .flat_map_iter(|line| line.split(' ').map(str::to_owned).collect::<Vec<_>>())
        .into_stream();
    let mut words = Vec::new();
    while let Some(word) = stream.next().await {
        words.push(word.unwrap());
    }
    assert_eq!(words, ["a", "b", "c", "d"]);
}
