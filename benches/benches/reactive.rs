//! flowbed-reactive against a std `Iterator` chain, `futures` streams and channels, and
//! tokio channels, in the same run.
//!
//! Groups are `reactive_<workload>`, flowbed's function is `flowbed` and each peer's is
//! named after the peer, so results sit at `target/criterion/reactive_<workload>/<name>/`.
//! Every iteration moves [`ITEMS`] (1,000,000) `u64`s; throughput is in elements.
//!
//! | group | one iteration | functions |
//! |---|---|---|
//! | `reactive_fused_10_stages` | `0..ITEMS` through 5 maps and 5 filters, alternating ([`stages!`]), folded to a wrapping sum; polled with `futures::executor::block_on` | `flowbed`, `iterator` (std `Iterator` chain + `fold`), `futures` (`stream::iter` + `StreamExt::map`/`filter(ready)` + `fold`) |
//! | `reactive_async_boundary` | `0..ITEMS` produced on one task and summed on another, at most 1024 in flight, on a 2-worker tokio runtime | `flowbed` (`Flow::iter(..).async_boundary(1024).fold(..)`), `tokio_mpsc` (`mpsc::channel(1024)`, `send`/`recv` one by one), `futures_channel` (`futures::channel::mpsc::channel(1024)`, `SinkExt::send`/`StreamExt::next` one by one) |
//! | `reactive_request_one` | a [`Subscriber`] that requests 1 item at a time (from inside `on_next`) sums `Flow::iter(0..ITEMS)` through `Flow::drive(..).await` on a current-thread runtime | `flowbed`, `flowbed_request_unbounded` (the same subscriber requesting everything up front), `futures_stream_next` (`stream::iter(0..ITEMS)` pulled with `StreamExt::next().await`, one item per call) |
//! | `reactive_tumbling_window_count` | `0..ITEMS` as events at event time `i` ms (in order, monotonic watermarks, one global key) counted ([`Count`]) in tumbling 100 ms windows; the fired windows are folded (how many, total count) on `block_on` | `flowbed` |
//! | `reactive_sliding_window_100` | the same in sliding windows of 10,000 ms every 100 ms (each event is in 100 windows) | `flowbed` |
//! | `reactive_broadcast_10` | `0..ITEMS` delivered to 10 consumers, each summing on its own task of a 2-worker tokio runtime | `flowbed` (`Flow::iter(..).broadcast(..)`, capacity 1024, backpressure to the slowest subscriber, `auto_connect` 10, each subscriber folded on a spawned task), `tokio_broadcast` (`broadcast::channel(1024)`, one sender task kept from lagging receivers, 10 receiver tasks), `tokio_broadcast_unbounded` (the same with a channel that holds every item and a sender that never waits) |
//!
//! # Equal work
//!
//! * `fused_10_stages`: the stages are the same function items for every implementation
//!   ([`mix`] and [`keep`]; `futures`' filter wraps [`keep`] in `future::ready`), the input
//!   is `0..black_box(ITEMS)`, and every run's sum is checked against the `Iterator`'s.
//! * `async_boundary`: the whole iteration runs in a task spawned on the runtime (so the
//!   consumer is on a worker thread, like the producer), and the producer is a task too:
//!   flowbed's boundary spawns it on the current runtime at the first poll, the peers with
//!   `tokio::spawn`. Every run's sum is checked.
//! * `broadcast_10`: the 10 consumers are tasks spawned on the runtime by every
//!   implementation and every consumer's sum is checked (none may miss an item).
//!
//! # Where the comparisons are not like for like
//!
//! * `async_boundary`: flowbed hands items over in batches (the consumer drains the ring
//!   and rings the producer once per 64 items), the peers one `send`/`recv` (each with its
//!   own wake-up bookkeeping) per item, as the workload asks. That batching is the design
//!   under test, not an accident of the harness. `futures::channel::mpsc::channel(1024)`
//!   holds up to 1024 + 1 (one slot per sender) items.
//! * `request_one`: flowbed's `drive` runs the source and the subscriber on the same task:
//!   a `request(1)` from inside `on_next` is an atomic add the driver claims right after
//!   `on_next` returns, with no wake-up and no task switch. The fair analogue is a pull of
//!   one item at a time on the same task, `futures_stream_next`. A producer task feeding
//!   `tokio::sync::mpsc::channel(1)` would also deliver one item per "request", but it
//!   switches tasks for every item (about 80 times slower than `flowbed` here), so it
//!   measures task switching, not demand signalling, and is left out. Read `flowbed`
//!   against `flowbed_request_unbounded` for the price of per-item demand in flowbed.
//! * `tumbling_window_count` and `sliding_window_100` have no peer: compare the two groups
//!   (the target is sliding at least half tumbling's throughput). Every run checks the
//!   number of windows fired and that their counts add up to `ITEMS` (tumbling) or
//!   `100 × ITEMS` (sliding).
//! * `broadcast_10`: flowbed's hub has no task of its own (a subscriber with nothing left
//!   pulls the next chunk from upstream and hands every subscriber its copy); tokio's
//!   needs a sender task. tokio's broadcast never waits for receivers: a sender that gets
//!   `capacity` items ahead overwrites the oldest and a receiver sees `Lagged` (which
//!   fails the run here). To make `tokio_broadcast` lossless and bounded like flowbed's,
//!   its sender sends in chunks of 64 and, before each, waits until `Sender::len` (items
//!   not yet seen by every receiver) leaves room for a chunk; it waits on a `Notify` that
//!   every receiver signals once per 64 items received (tokio has no wait-for-room of its
//!   own). That added signalling is the harness's, not tokio's, so
//!   `tokio_broadcast_unbounded` shows tokio without it: a channel of 2^20 slots that
//!   holds all the items, so the sender never waits and no receiver lags, at the cost of
//!   allocating and touching 2^20 slots per iteration (not bounded like the others).
//!
//! Run: `cargo bench -p flowbed-benches --bench reactive` (`-- --test` runs each once).

use std::cell::Cell;
use std::future::ready;
use std::hint::black_box;
use std::num::NonZeroU64;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use flowbed_reactive::ops::broadcast::{BroadcastConfig, BroadcastPolicy};
use flowbed_reactive::window::{Count, Timestamp, Watermarks, WindowEvent, WindowSpec};
use flowbed_reactive::{Error, Flow, Subscriber, Subscription};
use futures::executor::block_on;
use futures::{SinkExt, StreamExt};
use tokio::runtime::Runtime;
use tokio::sync::Notify;
use tokio::sync::broadcast::error::RecvError;

/// Items per iteration of every group.
const ITEMS: u64 = 1_000_000;

/// Items in flight at most across a task boundary (`async_boundary`).
const CAPACITY: usize = 1024;

/// Samples per function where an iteration takes a few milliseconds.
const SAMPLES: usize = 20;

/// Samples per function in groups where a peer's iteration takes up to a second or two
/// (criterion's minimum): criterion runs every sample at least once however short the
/// measurement time, so this keeps one round of the suite within a few minutes on a
/// 2-core machine.
const SLOW_SAMPLES: usize = 10;

/// The smallest power of two holding [`ITEMS`]: `tokio_broadcast_unbounded`'s capacity.
const ITEMS_POW2: usize = ITEMS.next_power_of_two() as usize;

/// The map stage of `fused_10_stages`: `K` differs per stage.
#[inline]
fn mix<const K: u64>(x: u64) -> u64 {
    x.wrapping_mul(3) ^ K
}

/// The filter stage of `fused_10_stages` (drops about one item in eight).
#[inline]
fn keep(x: &u64) -> bool {
    x & 7 != 0
}

/// The fold of every group: a wrapping sum.
#[inline]
fn add(sum: u64, x: u64) -> u64 {
    sum.wrapping_add(x)
}

/// `0 + 1 + … + (ITEMS - 1)`, what every channel and subscriber workload must add up to.
const SUM_OF_ITEMS: u64 = ITEMS * (ITEMS - 1) / 2;

/// The 10 stages of `fused_10_stages` applied to `$chain` with its own `map` and
/// `filter` (`$filter` wraps [`keep`] for the implementation).
macro_rules! stages {
    ($chain:expr, $filter:expr) => {
        $chain
            .map(mix::<0x9e37>)
            .filter($filter)
            .map(mix::<0x79b9>)
            .filter($filter)
            .map(mix::<0x7f4a>)
            .filter($filter)
            .map(mix::<0x7c15>)
            .filter($filter)
            .map(mix::<0xf39c>)
            .filter($filter)
    };
}

fn fused_10_stages(c: &mut Criterion) {
    let mut group = c.benchmark_group("reactive_fused_10_stages");
    group.throughput(Throughput::Elements(ITEMS));
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(SAMPLES);

    let iterator = || block_on(async { stages!(0..black_box(ITEMS), keep).fold(0, add) });
    let expected = iterator();

    group.bench_function("flowbed", |b| {
        b.iter(|| {
            let flow = stages!(Flow::iter(0..black_box(ITEMS)), keep);
            let sum = block_on(flow.fold(0, add)).expect("the flow does not fail");
            assert_eq!(sum, expected);
            black_box(sum)
        })
    });
    group.bench_function("iterator", |b| {
        b.iter(|| {
            let sum = iterator();
            assert_eq!(sum, expected);
            black_box(sum)
        })
    });
    group.bench_function("futures", |b| {
        b.iter(|| {
            let stream = stages!(futures::stream::iter(0..black_box(ITEMS)), |x: &u64| {
                ready(keep(x))
            });
            let sum = block_on(stream.fold(0, |sum, x| ready(add(sum, x))));
            assert_eq!(sum, expected);
            black_box(sum)
        })
    });
    group.finish();
}

fn multi_thread_runtime(workers: usize) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn current_thread_runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Runs `work` as a task of `runtime` (so it sits on a worker thread) and checks its sum.
fn run_spawned<F>(runtime: &Runtime, work: F)
where
    F: Future<Output = u64> + Send + 'static,
{
    let sum = runtime
        .block_on(async { tokio::spawn(work).await })
        .expect("the consumer task does not panic");
    assert_eq!(sum, SUM_OF_ITEMS);
    black_box(sum);
}

fn async_boundary(c: &mut Criterion) {
    let mut group = c.benchmark_group("reactive_async_boundary");
    group.throughput(Throughput::Elements(ITEMS));
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(SLOW_SAMPLES);
    let runtime = multi_thread_runtime(2);

    group.bench_function("flowbed", |b| {
        b.iter(|| {
            run_spawned(&runtime, async {
                Flow::iter(0..black_box(ITEMS))
                    .async_boundary(CAPACITY)
                    .fold(0, add)
                    .await
                    .expect("the flow does not fail")
            })
        })
    });
    group.bench_function("tokio_mpsc", |b| {
        b.iter(|| {
            run_spawned(&runtime, async {
                let (tx, mut rx) = tokio::sync::mpsc::channel(CAPACITY);
                let producer = tokio::spawn(async move {
                    for x in 0..black_box(ITEMS) {
                        tx.send(x).await.expect("the consumer is there");
                    }
                });
                let mut sum = 0;
                while let Some(x) = rx.recv().await {
                    sum = add(sum, x);
                }
                producer.await.expect("the producer does not panic");
                sum
            })
        })
    });
    group.bench_function("futures_channel", |b| {
        b.iter(|| {
            run_spawned(&runtime, async {
                let (mut tx, mut rx) = futures::channel::mpsc::channel(CAPACITY);
                let producer = tokio::spawn(async move {
                    for x in 0..black_box(ITEMS) {
                        tx.send(x).await.expect("the consumer is there");
                    }
                });
                let mut sum = 0;
                while let Some(x) = rx.next().await {
                    sum = add(sum, x);
                }
                producer.await.expect("the producer does not panic");
                sum
            })
        })
    });
    drop(runtime);
    group.finish();
}

/// Sums what it gets, asking for one item at a time (or for everything up front).
struct Summer<'a> {
    one_at_a_time: bool,
    subscription: Option<Subscription>,
    sum: u64,
    /// The sum, set at `on_complete`.
    done: &'a Cell<Option<u64>>,
}

impl<'a> Summer<'a> {
    fn new(one_at_a_time: bool, done: &'a Cell<Option<u64>>) -> Self {
        Self {
            one_at_a_time,
            subscription: None,
            sum: 0,
            done,
        }
    }
}

impl Subscriber<u64> for Summer<'_> {
    fn on_subscribe(&mut self, subscription: Subscription) {
        if self.one_at_a_time {
            subscription.request(NonZeroU64::MIN);
        } else {
            subscription.request_unbounded();
        }
        self.subscription = Some(subscription);
    }

    fn on_next(&mut self, item: u64) {
        self.sum = add(self.sum, item);
        if self.one_at_a_time {
            self.subscription
                .as_ref()
                .expect("on_subscribe came first")
                .request(NonZeroU64::MIN);
        }
    }

    fn on_error(&mut self, error: Error) {
        panic!("the flow failed: {error}");
    }

    fn on_complete(&mut self) {
        self.done.set(Some(self.sum));
    }
}

fn request_one(c: &mut Criterion) {
    let mut group = c.benchmark_group("reactive_request_one");
    group.throughput(Throughput::Elements(ITEMS));
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(SAMPLES);
    let runtime = current_thread_runtime();

    fn bench_flowbed(runtime: &Runtime, one_at_a_time: bool) {
        let done = Cell::new(None);
        runtime.block_on(Flow::iter(0..black_box(ITEMS)).drive(Summer::new(one_at_a_time, &done)));
        assert_eq!(
            done.get(),
            Some(SUM_OF_ITEMS),
            "the subscriber did not complete"
        );
    }

    group.bench_function("flowbed", |b| b.iter(|| bench_flowbed(&runtime, true)));
    group.bench_function("flowbed_request_unbounded", |b| {
        b.iter(|| bench_flowbed(&runtime, false))
    });
    group.bench_function("futures_stream_next", |b| {
        b.iter(|| {
            let sum = runtime.block_on(async {
                let mut stream = futures::stream::iter(0..black_box(ITEMS));
                let mut sum = 0;
                while let Some(x) = stream.next().await {
                    sum = add(sum, x);
                }
                sum
            });
            assert_eq!(sum, SUM_OF_ITEMS);
            black_box(sum)
        })
    });
    drop(runtime);
    group.finish();
}

/// Window sizes of the window groups, in milliseconds of event time.
const TUMBLING_MS: u64 = 100;
const SLIDING_SIZE_MS: u64 = 10_000;
const SLIDING_SLIDE_MS: u64 = 100;

/// Counts `0..ITEMS` (event `i` at event time `i` ms, in order) in `spec`'s windows with
/// one global key and monotonic watermarks; returns (windows fired, sum of their counts).
fn count_windows(spec: WindowSpec) -> (u64, u64) {
    let flow = Flow::iter(0..black_box(ITEMS))
        .windowed(spec)
        .event_time(|&event| event as Timestamp, Watermarks::monotonic())
        .aggregate(Count)
        .filter_map(WindowEvent::into_fired)
        .fold((0, 0), |(windows, events), fired| {
            (windows + 1, events + fired.value)
        });
    block_on(flow).expect("the flow does not fail")
}

fn tumbling_window_count(c: &mut Criterion) {
    let mut group = c.benchmark_group("reactive_tumbling_window_count");
    group.throughput(Throughput::Elements(ITEMS));
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(SLOW_SAMPLES);
    let spec = WindowSpec::tumbling(Duration::from_millis(TUMBLING_MS));
    group.bench_function("flowbed", |b| {
        b.iter(|| {
            let (windows, events) = count_windows(spec);
            // Every event is in one window.
            assert_eq!((windows, events), (ITEMS / TUMBLING_MS, ITEMS));
            black_box(windows)
        })
    });
    group.finish();
}

fn sliding_window_100(c: &mut Criterion) {
    let mut group = c.benchmark_group("reactive_sliding_window_100");
    group.throughput(Throughput::Elements(ITEMS));
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(SLOW_SAMPLES);
    let spec = WindowSpec::sliding(
        Duration::from_millis(SLIDING_SIZE_MS),
        Duration::from_millis(SLIDING_SLIDE_MS),
    );
    let per_event = SLIDING_SIZE_MS / SLIDING_SLIDE_MS;
    group.bench_function("flowbed", |b| {
        b.iter(|| {
            let (windows, events) = count_windows(spec);
            // Every event is in `per_event` windows; the first windows start before 0.
            assert_eq!(
                (windows, events),
                (ITEMS / SLIDING_SLIDE_MS + per_event - 1, ITEMS * per_event)
            );
            black_box(windows)
        })
    });
    group.finish();
}

/// Subscribers (receivers) of `broadcast_10`.
const SUBSCRIBERS: usize = 10;

/// `tokio_broadcast`: sends between two looks at the queue's length, and receives between
/// two "room" signals from a receiver.
const CHUNK: usize = 64;

/// Awaits every consumer task of `broadcast_10` and checks each saw every item.
async fn check_all(consumers: Vec<tokio::task::JoinHandle<u64>>) {
    for consumer in consumers {
        let sum = consumer.await.expect("a consumer task does not panic");
        assert_eq!(sum, SUM_OF_ITEMS, "a subscriber missed items");
    }
}

/// One tokio broadcast run: 10 receiver tasks, one sender task. With `room`, the sender
/// keeps at most `CAPACITY` items queued (waiting on `room`, which every receiver signals
/// each [`CHUNK`] items); without, it never waits (the channel must hold every item).
async fn tokio_broadcast_run(capacity: usize, room: Option<Arc<Notify>>) {
    let (tx, _) = tokio::sync::broadcast::channel(capacity);
    let consumers = (0..SUBSCRIBERS)
        .map(|_| {
            let mut rx = tx.subscribe();
            let room = room.clone();
            tokio::spawn(async move {
                let (mut sum, mut seen) = (0, 0usize);
                loop {
                    match rx.recv().await {
                        Ok(x) => sum = add(sum, x),
                        Err(RecvError::Closed) => return sum,
                        Err(RecvError::Lagged(n)) => panic!("a receiver lagged by {n} items"),
                    }
                    seen += 1;
                    if let Some(room) = room.as_ref().filter(|_| seen % CHUNK == 0) {
                        room.notify_one();
                    }
                }
            })
        })
        .collect();
    let producer = tokio::spawn(async move {
        let mut next = 0..black_box(ITEMS);
        loop {
            if let Some(room) = &room {
                // Sender::len: items not yet seen by every receiver.
                loop {
                    let mut notified = pin!(room.notified());
                    notified.as_mut().enable();
                    if tx.len() <= capacity - CHUNK {
                        break;
                    }
                    notified.await;
                }
            }
            let mut sent = 0;
            for x in next.by_ref().take(CHUNK) {
                tx.send(x).expect("the receivers are there");
                sent += 1;
            }
            if sent < CHUNK {
                return;
            }
        }
    });
    producer.await.expect("the producer does not panic");
    check_all(consumers).await;
}

fn broadcast_10(c: &mut Criterion) {
    let mut group = c.benchmark_group("reactive_broadcast_10");
    group.throughput(Throughput::Elements(ITEMS));
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(SLOW_SAMPLES);
    let runtime = multi_thread_runtime(2);

    group.bench_function("flowbed", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let hub = Flow::iter(0..black_box(ITEMS)).broadcast(BroadcastConfig {
                    capacity: CAPACITY,
                    policy: BroadcastPolicy::SlowestSubscriber,
                    auto_connect: SUBSCRIBERS,
                });
                let consumers = (0..SUBSCRIBERS)
                    .map(|_| {
                        let subscriber = hub.subscribe();
                        tokio::spawn(async move {
                            subscriber
                                .fold(0, add)
                                .await
                                .expect("the flow does not fail")
                        })
                    })
                    .collect();
                drop(hub);
                check_all(consumers).await;
            })
        })
    });
    group.bench_function("tokio_broadcast", |b| {
        b.iter(|| runtime.block_on(tokio_broadcast_run(CAPACITY, Some(Arc::new(Notify::new())))))
    });
    group.bench_function("tokio_broadcast_unbounded", |b| {
        b.iter(|| runtime.block_on(tokio_broadcast_run(ITEMS_POW2, None)))
    });
    drop(runtime);
    group.finish();
}

criterion_group!(
    benches,
    fused_10_stages,
    async_boundary,
    request_one,
    tumbling_window_count,
    sliding_window_100,
    broadcast_10
);
criterion_main!(benches);
