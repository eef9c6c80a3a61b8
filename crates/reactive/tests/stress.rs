//! Multi-thread stress of the parts that cross threads: the async boundary and the lossy
//! buffers, boundaries dropped mid-stream, `from_publisher` over a driven flow, and a
//! subscriber whose demand comes from another thread while `on_next` runs. Consumers pause
//! at random (yields and short spins, never sleeps) so both sides of each hand-off find the
//! other one busy, idle, full and empty. Each test runs well under 5 s in a debug build.

use std::num::NonZeroU64;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use flowbed_reactive::ops::boundary::Overflow;
use flowbed_reactive::{Error, Flow, Subscriber, Subscription};
use futures::StreamExt;

/// A failure bound only: every test finishes in far less.
const DEADLINE: Duration = Duration::from_secs(20);

/// A small deterministic random number generator (xorshift64).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }

    /// Pauses now and then: mostly not at all, sometimes a short spin.
    fn spin(&mut self) {
        if self.below(64) == 0 {
            for _ in 0..self.below(2_000) {
                std::hint::spin_loop();
            }
        }
    }

    /// Pauses now and then, letting other tasks of this thread run.
    async fn pause(&mut self) {
        match self.below(128) {
            0 => tokio::task::yield_now().await,
            1 => self.spin_now(),
            _ => {}
        }
    }

    fn spin_now(&mut self) {
        for _ in 0..self.below(2_000) {
            std::hint::spin_loop();
        }
    }
}

/// Counts its drops: shows upstream was released.
struct DropCounter(Arc<AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Waits (yielding, bounded by [`DEADLINE`]) until `count` reaches `expected`.
async fn wait_for(count: &AtomicUsize, expected: usize, what: &str) {
    let reached = tokio::time::timeout(DEADLINE, async {
        while count.load(Ordering::SeqCst) < expected {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(
        reached.is_ok(),
        "{what}: {} of {expected}",
        count.load(Ordering::SeqCst)
    );
    assert_eq!(count.load(Ordering::SeqCst), expected, "{what}: too many");
}

// ---------------------------------------------------------------------------------------
// The async boundary
// ---------------------------------------------------------------------------------------

/// Items per capacity: a million in all over capacities 1..=8.
const PER_CAPACITY: u64 = 1_000_000 / 8;

/// Sends its share of the million through a boundary of `capacity` and checks that every
/// item arrives once and in order. Odd capacities are consumed one item per poll (the
/// boundary's pause path), even ones in batches (its drain path); both on a task of
/// their own, pausing at random.
async fn cross(capacity: usize) {
    let items = (capacity as u64 - 1) * PER_CAPACITY..capacity as u64 * PER_CAPACITY;
    let start = items.start;
    let flow = Flow::iter(items.clone()).async_boundary(capacity);
    let mut rng = Rng::new(capacity as u64);
    let consumer = if capacity % 2 == 1 {
        tokio::spawn(async move {
            let mut stream = flow.into_stream();
            let mut expected = start;
            while let Some(item) = stream.next().await {
                assert_eq!(item.expect("no error"), expected, "capacity {capacity}");
                expected += 1;
                rng.pause().await;
            }
            expected
        })
    } else {
        tokio::spawn(async move {
            flow.fold(start, move |expected, item| {
                assert_eq!(item, expected, "capacity {capacity}");
                rng.spin();
                expected + 1
            })
            .await
            .expect("completes")
        })
    };
    let end = tokio::time::timeout(DEADLINE, consumer).await;
    assert_eq!(
        end.expect("in time").expect("no panic"),
        items.end,
        "capacity {capacity}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_cross_boundaries_of_capacity_1_and_2_without_loss_duplication_or_reordering() {
    cross(1).await;
    cross(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_cross_boundaries_of_capacity_3_and_4_without_loss_duplication_or_reordering() {
    cross(3).await;
    cross(4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_cross_boundaries_of_capacity_5_and_6_without_loss_duplication_or_reordering() {
    cross(5).await;
    cross(6).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_cross_boundaries_of_capacity_7_and_8_without_loss_duplication_or_reordering() {
    cross(7).await;
    cross(8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lossy_buffers_drop_items_but_never_duplicate_or_reorder_them() {
    const ITEMS: u64 = 100_000;
    for (index, policy) in [
        Overflow::DropNewest,
        Overflow::DropOldest,
        Overflow::Latest,
        Overflow::Error,
    ]
    .into_iter()
    .enumerate()
    {
        for capacity in [1, 3] {
            let mut rng = Rng::new(index as u64 * 10 + capacity as u64);
            let flow = Flow::iter(0..ITEMS).buffer(capacity, policy);
            let consumer = tokio::spawn(async move {
                let mut stream = flow.into_stream();
                let (mut items, mut error) = (Vec::new(), None);
                while let Some(item) = stream.next().await {
                    match item {
                        Ok(item) => items.push(item),
                        Err(failure) => error = Some(failure),
                    }
                    rng.pause().await;
                }
                (items, error)
            });
            let ended = tokio::time::timeout(DEADLINE, consumer).await;
            let (items, error) = ended.expect("in time").expect("no panic");
            let context = format!("{policy:?}, capacity {capacity}");
            assert!(
                items.windows(2).all(|pair| pair[0] < pair[1]),
                "{context}: duplicated or reordered"
            );
            match policy {
                // The first item always finds room; the last one may not.
                Overflow::DropNewest => assert_eq!(items.first(), Some(&0), "{context}"),
                // The newest item always stays.
                Overflow::DropOldest | Overflow::Latest => {
                    assert_eq!(items.last(), Some(&(ITEMS - 1)), "{context}");
                }
                // A gapless prefix, then the overflow (or everything, if it kept up).
                _ => {
                    assert!(items.iter().copied().eq(0..items.len() as u64), "{context}");
                    match error {
                        Some(Error::Overflow { capacity: full }) => assert_eq!(full, capacity),
                        Some(other) => panic!("{context}: {other:?}"),
                        None => assert_eq!(items.len() as u64, ITEMS, "{context}"),
                    }
                    continue;
                }
            }
            assert!(error.is_none(), "{context}: {error:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boundaries_dropped_mid_stream_always_drop_upstream() {
    const FLOWS: usize = 600;
    let drops = Arc::new(AtomicUsize::new(0));
    let mut rng = Rng::new(7);
    let mut consumers = Vec::new();
    for round in 0..FLOWS {
        let guard = DropCounter(Arc::clone(&drops));
        let keep = move |n: u64| {
            let _keep = &guard;
            n
        };
        let capacity = 1 + rng.below(4) as usize;
        // How many items the consumer takes before it leaves (0: before the first poll,
        // so the pump never starts).
        let take = rng.below(6);
        let stream = match round % 3 {
            // Endless upstream: the pump waits for room.
            0 => Flow::iter(0u64..)
                .map(keep)
                .async_boundary(capacity)
                .into_stream()
                .boxed(),
            // Upstream goes quiet after a few items: the pump waits on upstream.
            1 => {
                Flow::from_stream(futures::stream::iter(0..take).chain(futures::stream::pending()))
                    .map(keep)
                    .async_boundary(capacity)
                    .into_stream()
                    .boxed()
            }
            // Two boundaries in a row: leaving the outer one must reach the inner pump.
            _ => Flow::iter(0u64..)
                .map(keep)
                .async_boundary(capacity)
                .map(|n| n)
                .async_boundary(1 + rng.below(3) as usize)
                .into_stream()
                .boxed(),
        };
        let leave_on_another_task = rng.below(2) == 0;
        let consume = async move {
            let mut stream = stream;
            for expected in 0..take {
                let item = stream.next().await.expect("an item").expect("no error");
                assert_eq!(item, expected);
            }
            drop(stream);
        };
        if leave_on_another_task {
            consumers.push(tokio::spawn(consume));
        } else {
            tokio::time::timeout(DEADLINE, consume)
                .await
                .expect("in time");
        }
    }
    for consumer in consumers {
        tokio::time::timeout(DEADLINE, consumer)
            .await
            .expect("in time")
            .expect("no panic");
    }
    wait_for(&drops, FLOWS, "upstreams dropped").await;
}

#[test]
fn a_runtime_shut_down_under_a_running_boundary_ends_it_instead_of_hanging() {
    for capacity in [1, 4] {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .expect("a runtime");
        let drops = Arc::new(AtomicUsize::new(0));
        let guard = DropCounter(Arc::clone(&drops));
        let mut stream = Flow::iter(0u64..)
            .map(move |n| {
                let _keep = &guard;
                n
            })
            .async_boundary(capacity)
            .into_stream();
        let first = runtime.block_on(stream.next());
        assert_eq!(first.expect("an item").expect("no error"), 0);
        drop(runtime); // drops the pump task
        assert_eq!(
            drops.load(Ordering::SeqCst),
            1,
            "upstream dropped with the runtime"
        );
        // The items already handed over, in order, then the error: no hang.
        let rest = futures::executor::block_on(stream.collect::<Vec<_>>());
        let (last, items) = rest.split_last().expect("at least the error");
        assert!(matches!(last, Err(Error::NoRuntime)), "{last:?}");
        assert!(items.len() <= capacity);
        for (index, item) in items.iter().enumerate() {
            assert_eq!(
                *item.as_ref().expect("items before the error"),
                index as u64 + 1
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// from_publisher over a driven flow
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_publisher_over_a_driven_flow_keeps_order_with_small_prefetch() {
    const ITEMS: u64 = 20_000;
    for prefetch in 1..=4usize {
        let mut rng = Rng::new(prefetch as u64 * 31);
        // Half the publishers have a boundary of their own: three tasks hand items on.
        let upstream = Flow::iter(0..ITEMS).map(|n| n * 3);
        let flow = if prefetch % 2 == 0 {
            Flow::from_publisher_with_prefetch(upstream.async_boundary(2).boxed(), prefetch)
        } else {
            Flow::from_publisher_with_prefetch(upstream.boxed(), prefetch)
        };
        let consumer = tokio::spawn(async move {
            let mut stream = flow.into_stream();
            let mut expected = 0;
            while let Some(item) = stream.next().await {
                // A publisher sending beyond demand would show as Error::Protocol here.
                assert_eq!(item.expect("no error"), expected * 3, "prefetch {prefetch}");
                expected += 1;
                rng.pause().await;
            }
            expected
        });
        let received = tokio::time::timeout(DEADLINE, consumer).await;
        assert_eq!(received.expect("in time").expect("no panic"), ITEMS);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_publisher_left_mid_stream_cancels_the_driven_flow() {
    let drops = Arc::new(AtomicUsize::new(0));
    let mut rng = Rng::new(99);
    const FLOWS: usize = 200;
    for _ in 0..FLOWS {
        let guard = DropCounter(Arc::clone(&drops));
        let prefetch = 1 + rng.below(4) as usize;
        let take = rng.below(20);
        let mut stream = Flow::from_publisher_with_prefetch(
            Flow::iter(0u64..).map(move |n| {
                let _keep = &guard;
                n
            }),
            prefetch,
        )
        .into_stream();
        for expected in 0..take {
            let item = tokio::time::timeout(DEADLINE, stream.next()).await;
            assert_eq!(
                item.expect("in time").expect("an item").expect("no error"),
                expected
            );
        }
        drop(stream);
    }
    // Flows never polled never subscribed: their upstream went with them.
    wait_for(&drops, FLOWS, "driven upstreams dropped").await;
}

// ---------------------------------------------------------------------------------------
// Demand from another thread while on_next runs
// ---------------------------------------------------------------------------------------

/// What the subscriber and the thread requesting for it share.
#[derive(Default)]
struct Remote {
    subscription: OnceLock<Subscription>,
    /// Raised before each `request` reaches the subscription.
    requested: AtomicU64,
    received: AtomicU64,
    completed: AtomicUsize,
    failed: Mutex<Option<Error>>,
    violations: Mutex<Vec<String>>,
    stop: AtomicBool,
}

impl Remote {
    fn request(&self, n: u64) {
        let subscription = self.subscription.get().expect("subscribed");
        self.requested.fetch_add(n, Ordering::SeqCst);
        subscription.request(NonZeroU64::new(n).expect("positive"));
    }

    fn violation(&self, what: String) {
        self.violations.lock().expect("not poisoned").push(what);
    }
}

/// Takes demand from another thread; asks for a little itself every few items.
struct Remoted(Arc<Remote>);

impl Subscriber<u64> for Remoted {
    fn on_subscribe(&mut self, subscription: Subscription) {
        if self.0.subscription.set(subscription).is_err() {
            self.0.violation("on_subscribe twice".into());
        }
    }

    fn on_next(&mut self, item: u64) {
        let remote = &self.0;
        let received = remote.received.load(Ordering::SeqCst);
        if item != received {
            remote.violation(format!("item {item} where {received} was due"));
        }
        let received = received + 1;
        remote.received.store(received, Ordering::SeqCst);
        let requested = remote.requested.load(Ordering::SeqCst);
        if received > requested {
            remote.violation(format!("item #{received} with {requested} requested"));
        }
        if remote.completed.load(Ordering::SeqCst) > 0 {
            remote.violation("on_next after on_complete".into());
        }
        if item % 7 == 3 {
            remote.request(1);
        }
    }

    fn on_error(&mut self, error: Error) {
        *self.0.failed.lock().expect("not poisoned") = Some(error);
    }

    fn on_complete(&mut self) {
        self.0.completed.fetch_add(1, Ordering::SeqCst);
    }
}

/// Requests small random amounts from its own thread until `until` items were requested
/// (or `stop`), pausing at random; returns what it asked for.
fn requester(remote: Arc<Remote>, seed: u64, until: u64) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut rng = Rng::new(seed);
        while remote.subscription.get().is_none() {
            std::thread::yield_now();
        }
        while remote.requested.load(Ordering::SeqCst) < until && !remote.stop.load(Ordering::SeqCst)
        {
            remote.request(1 + rng.below(16));
            match rng.below(8) {
                0 => std::thread::yield_now(),
                1 => rng.spin_now(),
                _ => {}
            }
        }
    })
}

async fn drive_with_remote_demand<S>(flow: Flow<S>, items: u64, seed: u64)
where
    S: flowbed_reactive::Source<Item = u64> + Send + 'static,
{
    let remote = Arc::new(Remote::default());
    let driver = tokio::spawn(flow.drive(Remoted(Arc::clone(&remote))));
    // One more than the items: completion is only signalled with demand outstanding.
    let thread = requester(Arc::clone(&remote), seed, items + 1);
    let ended = tokio::time::timeout(DEADLINE, driver).await;
    remote.stop.store(true, Ordering::SeqCst);
    thread.join().expect("the requester did not panic");
    ended.expect("in time").expect("no panic");
    let violations = remote.violations.lock().expect("not poisoned");
    assert!(
        violations.is_empty(),
        "{:?}",
        &violations[..violations.len().min(5)]
    );
    assert!(remote.failed.lock().expect("not poisoned").is_none());
    assert_eq!(remote.received.load(Ordering::SeqCst), items);
    assert_eq!(remote.completed.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_from_another_thread_race_on_next_safely() {
    const ITEMS: u64 = 200_000;
    drive_with_remote_demand(Flow::iter(0..ITEMS), ITEMS, 5).await;
    // A source that waits now and then: the driver also sleeps on upstream, not only on
    // demand, while requests arrive.
    drive_with_remote_demand(Flow::iter(0..ITEMS).async_boundary(3), ITEMS, 6).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_from_another_thread_ends_the_driver_promptly() {
    let drops = Arc::new(AtomicUsize::new(0));
    const RUNS: usize = 100;
    for run in 0..RUNS {
        let guard = DropCounter(Arc::clone(&drops));
        let upstream = Flow::iter(0u64..).map(move |n| {
            let _keep = &guard;
            n
        });
        let remote = Arc::new(Remote::default());
        let driver = if run % 2 == 0 {
            tokio::spawn(upstream.drive(Remoted(Arc::clone(&remote))))
        } else {
            tokio::spawn(
                upstream
                    .async_boundary(2)
                    .drive(Remoted(Arc::clone(&remote))),
            )
        };
        let cancel_at = 1 + run as u64 * 37 % 500;
        let canceller = {
            let remote = Arc::clone(&remote);
            std::thread::spawn(move || {
                let mut rng = Rng::new(run as u64 + 1);
                while remote.subscription.get().is_none() {
                    std::thread::yield_now();
                }
                while remote.requested.load(Ordering::SeqCst) < cancel_at {
                    remote.request(1 + rng.below(16));
                }
                while remote.received.load(Ordering::SeqCst) * 2 < cancel_at
                    && rng.below(1_000) != 0
                {
                    std::hint::spin_loop();
                }
                remote.subscription.get().expect("subscribed").cancel();
            })
        };
        let ended = tokio::time::timeout(DEADLINE, driver).await;
        canceller.join().expect("the canceller did not panic");
        ended
            .expect("the driver ended after the cancel")
            .expect("no panic");
        let violations = remote.violations.lock().expect("not poisoned");
        assert!(
            violations.is_empty(),
            "{:?}",
            &violations[..violations.len().min(5)]
        );
        assert_eq!(
            remote.completed.load(Ordering::SeqCst),
            0,
            "an endless flow"
        );
        assert!(remote.failed.lock().expect("not poisoned").is_none());
    }
    wait_for(&drops, RUNS, "upstreams dropped after the cancel").await;
}
