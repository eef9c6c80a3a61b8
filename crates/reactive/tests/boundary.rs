//! The async boundary and the overflow strategies of `buffer`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use flowbed_reactive::ops::boundary::Overflow;
use flowbed_reactive::{Error, Flow};
use futures::StreamExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_item_crosses_the_boundary_in_order() {
    for capacity in [1, 2, 7, 1024] {
        let items = Flow::iter(0..100_000u32)
            .async_boundary(capacity)
            .collect::<Vec<_>>()
            .await
            .unwrap();
        assert_eq!(
            items,
            (0..100_000).collect::<Vec<_>>(),
            "capacity {capacity}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_error_arrives_after_the_items_before_it() {
    let mut stream = Flow::iter(["1", "2", "x", "4"])
        .try_map(|text| Ok(text.parse::<u32>()?))
        .async_boundary(1)
        .into_stream();
    assert_eq!(stream.next().await.unwrap().unwrap(), 1);
    assert_eq!(stream.next().await.unwrap().unwrap(), 2);
    let error = stream.next().await.unwrap().unwrap_err();
    assert!(error.downcast_ref::<std::num::ParseIntError>().is_some());
    assert!(stream.next().await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_on_the_boundary_task_becomes_an_error() {
    let result = Flow::iter(0..10u32)
        .map(|n| if n == 5 { panic!("boom") } else { n })
        .async_boundary(4)
        .collect::<Vec<_>>()
        .await;
    assert!(matches!(result, Err(Error::Panicked { message }) if message == "boom"));
}

/// Sets its flag when dropped: shows that upstream was cancelled.
struct DropFlag(Arc<AtomicBool>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_consumer_cancels_upstream() {
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = DropFlag(Arc::clone(&dropped));
    let quiet = Flow::from_stream(futures::stream::pending::<u32>()).map(move |n| {
        let _keep = &flag;
        n
    });
    let mut stream = quiet.async_boundary(8).into_stream();
    assert!(futures::poll!(stream.next()).is_pending());
    drop(stream);
    tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while !dropped.load(Ordering::SeqCst) {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("upstream dropped after the consumer left");
}

#[test]
fn outside_a_runtime_the_boundary_fails_with_no_runtime() {
    let result = futures::executor::block_on(Flow::iter(0..3).async_boundary(2).count());
    assert!(matches!(result, Err(Error::NoRuntime)));
}

/// Lets the buffer's pump run to the end before the consumer takes anything.
async fn stalled_consumer(policy: Overflow) -> (Vec<u32>, Option<Error>) {
    let mut stream = Flow::iter(0..10u32).buffer(3, policy).into_stream();
    assert!(
        futures::poll!(stream.next()).is_pending(),
        "the pump has not run yet"
    );
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    let mut items = Vec::new();
    let mut error = None;
    while let Some(next) = stream.next().await {
        match next {
            Ok(item) => items.push(item),
            Err(failure) => error = Some(failure),
        }
    }
    (items, error)
}

#[tokio::test(flavor = "current_thread")]
async fn overflow_strategies_keep_what_they_promise() {
    assert_eq!(stalled_consumer(Overflow::DropNewest).await.0, [0, 1, 2]);
    assert_eq!(stalled_consumer(Overflow::DropOldest).await.0, [7, 8, 9]);
    assert_eq!(stalled_consumer(Overflow::Latest).await.0, [0, 1, 9]);
    let (items, error) = stalled_consumer(Overflow::Error).await;
    assert_eq!(items, [0, 1, 2]);
    assert!(matches!(error, Some(Error::Overflow { capacity: 3 })));
    let (items, error) = stalled_consumer(Overflow::Backpressure).await;
    assert_eq!(items, (0..10).collect::<Vec<_>>());
    assert!(error.is_none());
}
