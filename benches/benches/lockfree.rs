//! flowbed-lockfree against crossbeam-queue, rtrb, concurrent-queue, flume, std mpsc and
//! tokio mpsc, on the same workloads in the same run.
//!
//! Groups are `lockfree_<workload>`, functions are `flowbed` and the peer's crate name, so
//! results sit at `target/criterion/lockfree_<workload>/<name>/`. Throughput is reported in
//! elements (values moved) per second.
//!
//! Run: `cargo bench -p flowbed-benches --bench lockfree` (add `-- --quick` for a fast pass).

use std::future::Future;
use std::hint::black_box;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};

/// Values moved per measured transfer in the multi-threaded MPMC workloads (~2 ms).
const TRANSFER: u64 = 100_000;
/// Values moved per transfer in the SPSC workloads. A transfer must take milliseconds, or
/// thread start-up and scheduling (tens of µs on this 2-core class) dominate the time.
const SPSC_TRANSFER: u64 = 1_000_000;
/// Values moved per transfer in the chunked SPSC workloads (about 1 ns per value).
const CHUNK_TRANSFER: u64 = 4_000_000;
/// Bounded queues' capacity in the multi-threaded workloads (crossbeam-channel's benches
/// use similar small bounds, where contention is highest).
const CAPACITY: usize = 1024;

/// The common face of every MPMC queue measured here: non-blocking push and pop.
trait MpmcQueue: Sync {
    fn try_push(&self, value: u64) -> Result<(), u64>;
    fn try_pop(&self) -> Option<u64>;
}

impl MpmcQueue for flowbed_lockfree::ArrayQueue<u64> {
    #[inline]
    fn try_push(&self, value: u64) -> Result<(), u64> {
        self.push(value).map_err(|e| e.into_inner())
    }
    #[inline]
    fn try_pop(&self) -> Option<u64> {
        self.pop().ok()
    }
}

impl MpmcQueue for flowbed_lockfree::SegQueue<u64> {
    #[inline]
    fn try_push(&self, value: u64) -> Result<(), u64> {
        self.push(value).map_err(|e| e.into_inner())
    }
    #[inline]
    fn try_pop(&self) -> Option<u64> {
        self.pop().ok()
    }
}

impl MpmcQueue for crossbeam_queue::ArrayQueue<u64> {
    #[inline]
    fn try_push(&self, value: u64) -> Result<(), u64> {
        self.push(value)
    }
    #[inline]
    fn try_pop(&self) -> Option<u64> {
        self.pop()
    }
}

impl MpmcQueue for crossbeam_queue::SegQueue<u64> {
    #[inline]
    fn try_push(&self, value: u64) -> Result<(), u64> {
        self.push(value);
        Ok(())
    }
    #[inline]
    fn try_pop(&self) -> Option<u64> {
        self.pop()
    }
}

impl MpmcQueue for concurrent_queue::ConcurrentQueue<u64> {
    #[inline]
    fn try_push(&self, value: u64) -> Result<(), u64> {
        self.push(value).map_err(|e| e.into_inner())
    }
    #[inline]
    fn try_pop(&self) -> Option<u64> {
        self.pop().ok()
    }
}

/// flume's two ends, used as one MPMC queue through `try_send`/`try_recv`.
struct FlumeQueue(flume::Sender<u64>, flume::Receiver<u64>);

impl MpmcQueue for FlumeQueue {
    #[inline]
    fn try_push(&self, value: u64) -> Result<(), u64> {
        self.0.try_send(value).map_err(|e| e.into_inner())
    }
    #[inline]
    fn try_pop(&self) -> Option<u64> {
        self.1.try_recv().ok()
    }
}

/// On a failed push or pop: spin a little, then give the core away. Every queue gets the
/// same retry policy so only the queues differ.
#[inline]
fn retry_wait(attempt: &mut u32) {
    if *attempt < 6 {
        for _ in 0..(1 << *attempt) {
            std::hint::spin_loop();
        }
        *attempt += 1;
    } else {
        thread::yield_now();
    }
}

/// Moves `TRANSFER` values from `producers` threads to `consumers` threads through `queue`
/// and returns the elapsed time.
fn transfer<Q: MpmcQueue>(queue: &Q, producers: u64, consumers: u64) -> Duration {
    let start = Barrier::new((producers + consumers + 1) as usize);
    let per_producer = TRANSFER / producers;
    let per_consumer = TRANSFER / consumers;
    thread::scope(|scope| {
        for _ in 0..producers {
            scope.spawn(|| {
                start.wait();
                for i in 0..per_producer {
                    let mut value = i;
                    let mut attempt = 0;
                    while let Err(back) = queue.try_push(value) {
                        value = back;
                        retry_wait(&mut attempt);
                    }
                }
            });
        }
        for _ in 0..consumers {
            scope.spawn(|| {
                start.wait();
                let mut sum = 0u64;
                for _ in 0..per_consumer {
                    let mut attempt = 0;
                    loop {
                        if let Some(value) = queue.try_pop() {
                            sum = sum.wrapping_add(value);
                            break;
                        }
                        retry_wait(&mut attempt);
                    }
                }
                black_box(sum);
            });
        }
        start.wait();
        let began = Instant::now();
        // The scope joins every thread before returning.
        began
    })
    .elapsed()
}

fn bench_transfer<Q: MpmcQueue>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    make: impl Fn() -> Q,
    producers: u64,
    consumers: u64,
) {
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| transfer(&make(), producers, consumers))
                .sum()
        })
    });
}

fn threaded_group<'c>(
    c: &'c mut Criterion,
    name: &str,
    values: u64,
) -> BenchmarkGroup<'c, WallTime> {
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(values));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(3));
    group
}

fn array_seq(c: &mut Criterion) {
    let mut group = c.benchmark_group("lockfree_array_seq");
    group.throughput(Throughput::Elements(1));
    let flowbed = flowbed_lockfree::ArrayQueue::new(CAPACITY);
    group.bench_function("flowbed", |b| {
        b.iter(|| {
            flowbed.push(black_box(1u64)).unwrap();
            flowbed.pop().unwrap()
        })
    });
    let crossbeam = crossbeam_queue::ArrayQueue::new(CAPACITY);
    group.bench_function("crossbeam", |b| {
        b.iter(|| {
            crossbeam.push(black_box(1u64)).unwrap();
            crossbeam.pop().unwrap()
        })
    });
    let concurrent = concurrent_queue::ConcurrentQueue::bounded(CAPACITY);
    group.bench_function("concurrent_queue", |b| {
        b.iter(|| {
            concurrent.push(black_box(1u64)).unwrap();
            concurrent.pop().unwrap()
        })
    });
    let (tx, rx) = flume::bounded(CAPACITY);
    group.bench_function("flume", |b| {
        b.iter(|| {
            tx.try_send(black_box(1u64)).unwrap();
            rx.try_recv().unwrap()
        })
    });
    group.finish();
}

fn array_threads(c: &mut Criterion, producers: u64, consumers: u64) {
    let mut group = threaded_group(
        c,
        &format!("lockfree_array_{producers}p{consumers}c"),
        TRANSFER,
    );
    bench_transfer(
        &mut group,
        "flowbed",
        || flowbed_lockfree::ArrayQueue::new(CAPACITY),
        producers,
        consumers,
    );
    bench_transfer(
        &mut group,
        "crossbeam",
        || crossbeam_queue::ArrayQueue::new(CAPACITY),
        producers,
        consumers,
    );
    bench_transfer(
        &mut group,
        "concurrent_queue",
        || concurrent_queue::ConcurrentQueue::bounded(CAPACITY),
        producers,
        consumers,
    );
    bench_transfer(
        &mut group,
        "flume",
        || {
            let (tx, rx) = flume::bounded(CAPACITY);
            FlumeQueue(tx, rx)
        },
        producers,
        consumers,
    );
    group.finish();
}

fn array_1p1c(c: &mut Criterion) {
    array_threads(c, 1, 1);
}

fn array_2p2c(c: &mut Criterion) {
    array_threads(c, 2, 2);
}

fn array_4p4c(c: &mut Criterion) {
    array_threads(c, 4, 4);
}

fn seg_seq(c: &mut Criterion) {
    let mut group = c.benchmark_group("lockfree_seg_seq");
    group.throughput(Throughput::Elements(1));
    // Push a batch of 64 then pop it, so blocks fill, retire and (for flowbed) recycle.
    const BATCH: u64 = 64;
    group.throughput(Throughput::Elements(BATCH));
    let flowbed = flowbed_lockfree::SegQueue::new();
    group.bench_function("flowbed", |b| {
        b.iter(|| {
            for i in 0..BATCH {
                flowbed.push(black_box(i)).unwrap();
            }
            for _ in 0..BATCH {
                black_box(flowbed.pop().unwrap());
            }
        })
    });
    let crossbeam = crossbeam_queue::SegQueue::new();
    group.bench_function("crossbeam", |b| {
        b.iter(|| {
            for i in 0..BATCH {
                crossbeam.push(black_box(i));
            }
            for _ in 0..BATCH {
                black_box(crossbeam.pop().unwrap());
            }
        })
    });
    let concurrent = concurrent_queue::ConcurrentQueue::unbounded();
    group.bench_function("concurrent_queue", |b| {
        b.iter(|| {
            for i in 0..BATCH {
                concurrent.push(black_box(i)).unwrap();
            }
            for _ in 0..BATCH {
                black_box(concurrent.pop().unwrap());
            }
        })
    });
    group.finish();
}

fn seg_1p1c(c: &mut Criterion) {
    let mut group = threaded_group(c, "lockfree_seg_1p1c", TRANSFER);
    bench_transfer(&mut group, "flowbed", flowbed_lockfree::SegQueue::new, 1, 1);
    bench_transfer(
        &mut group,
        "crossbeam",
        crossbeam_queue::SegQueue::new,
        1,
        1,
    );
    bench_transfer(
        &mut group,
        "concurrent_queue",
        concurrent_queue::ConcurrentQueue::unbounded,
        1,
        1,
    );
    bench_transfer(
        &mut group,
        "flume",
        || {
            let (tx, rx) = flume::unbounded();
            FlumeQueue(tx, rx)
        },
        1,
        1,
    );
    group.finish();
}

/// The common face of the SPSC rings measured here: single-value and chunked access.
trait SpscRing {
    type Producer: Send;
    type Consumer: Send;
    fn with_capacity(capacity: usize) -> (Self::Producer, Self::Consumer);
    fn push(producer: &mut Self::Producer, value: u64) -> Result<(), u64>;
    fn pop(consumer: &mut Self::Consumer) -> Option<u64>;
    /// Writes the values `next..` into up to `max` free slots at once; returns how many.
    fn write_chunk(producer: &mut Self::Producer, max: usize, next: u64) -> usize;
    /// Reads (and sums into `sum`) up to `max` values at once; returns how many.
    fn read_chunk(consumer: &mut Self::Consumer, max: usize, sum: &mut u64) -> usize;
}

/// Implements `SpscRing` for a ring crate whose ends have the same method names as rtrb's
/// (flowbed's deliberately do); only construction and the push error differ.
macro_rules! spsc_ring {
    ($name:ident, $producer:ty, $consumer:ty, $new:path, $push_error:expr) => {
        struct $name;

        impl SpscRing for $name {
            type Producer = $producer;
            type Consumer = $consumer;

            fn with_capacity(capacity: usize) -> (Self::Producer, Self::Consumer) {
                $new(capacity)
            }
            #[inline]
            fn push(producer: &mut Self::Producer, value: u64) -> Result<(), u64> {
                producer.push(value).map_err($push_error)
            }
            #[inline]
            fn pop(consumer: &mut Self::Consumer) -> Option<u64> {
                consumer.pop().ok()
            }
            #[inline]
            fn write_chunk(producer: &mut Self::Producer, max: usize, next: u64) -> usize {
                let n = producer.slots().min(max);
                if n == 0 {
                    return 0;
                }
                producer
                    .write_chunk_uninit(n)
                    .unwrap()
                    .fill_from_iter(next..)
            }
            #[inline]
            fn read_chunk(consumer: &mut Self::Consumer, max: usize, sum: &mut u64) -> usize {
                let n = consumer.slots().min(max);
                if n == 0 {
                    return 0;
                }
                let chunk = consumer.read_chunk(n).unwrap();
                let (a, b) = chunk.as_slices();
                *sum = a.iter().chain(b).fold(*sum, |s, v| s.wrapping_add(*v));
                chunk.commit_all();
                n
            }
        }
    };
}

spsc_ring!(
    Flowbed,
    flowbed_lockfree::spsc::Producer<u64>,
    flowbed_lockfree::spsc::Consumer<u64>,
    flowbed_lockfree::spsc::channel,
    |error: flowbed_lockfree::PushError<u64>| error.into_inner()
);
spsc_ring!(
    Rtrb,
    rtrb::Producer<u64>,
    rtrb::Consumer<u64>,
    rtrb::RingBuffer::new,
    |rtrb::PushError::Full(value)| value
);

/// Runs `producer` and `consumer` on two threads released together; returns the time until
/// both finish.
fn timed_pair(producer: impl FnOnce() + Send, consumer: impl FnOnce() + Send) -> Duration {
    let start = Barrier::new(3);
    thread::scope(|scope| {
        scope.spawn(|| {
            start.wait();
            producer();
        });
        scope.spawn(|| {
            start.wait();
            consumer();
        });
        start.wait();
        Instant::now()
    })
    .elapsed()
}

/// `values` values from one thread to another, one at a time.
fn spsc_transfer<R: SpscRing>(values: u64) -> Duration {
    let (mut tx, mut rx) = R::with_capacity(CAPACITY);
    timed_pair(
        move || {
            for i in 0..values {
                let mut value = i;
                let mut attempt = 0;
                while let Err(back) = R::push(&mut tx, value) {
                    value = back;
                    retry_wait(&mut attempt);
                }
            }
        },
        move || {
            let mut sum = 0u64;
            for _ in 0..values {
                let mut attempt = 0;
                loop {
                    if let Some(value) = R::pop(&mut rx) {
                        sum = sum.wrapping_add(value);
                        break;
                    }
                    retry_wait(&mut attempt);
                }
            }
            black_box(sum);
        },
    )
}

/// `values` values from one thread to another in chunks of up to `chunk`.
fn chunk_transfer<R: SpscRing>(values: u64, chunk: usize) -> Duration {
    let (mut tx, mut rx) = R::with_capacity(CAPACITY);
    timed_pair(
        move || {
            let mut next = 0;
            let mut attempt = 0;
            while next < values {
                let max = chunk.min((values - next) as usize);
                match R::write_chunk(&mut tx, max, next) {
                    0 => retry_wait(&mut attempt),
                    written => {
                        attempt = 0;
                        next += written as u64;
                    }
                }
            }
        },
        move || {
            let mut seen = 0;
            let mut sum = 0u64;
            let mut attempt = 0;
            while seen < values {
                match R::read_chunk(&mut rx, chunk, &mut sum) {
                    0 => retry_wait(&mut attempt),
                    read => {
                        attempt = 0;
                        seen += read as u64;
                    }
                }
            }
            black_box(sum);
        },
    )
}

/// `round_trips` round trips: thread A sends a value, thread B sends it back.
fn pingpong_rounds<R: SpscRing>(round_trips: u64) -> Duration {
    let (mut to_b, mut from_a) = R::with_capacity(1);
    let (mut to_a, mut from_b) = R::with_capacity(1);
    timed_pair(
        move || {
            for i in 0..round_trips {
                R::push(&mut to_b, i).unwrap();
                while R::pop(&mut from_b).is_none() {
                    std::hint::spin_loop();
                }
            }
        },
        move || {
            for _ in 0..round_trips {
                let value = loop {
                    if let Some(v) = R::pop(&mut from_a) {
                        break v;
                    }
                    std::hint::spin_loop();
                };
                R::push(&mut to_a, value).unwrap();
            }
        },
    )
}

/// Repeats a timed run `iters` times and sums the times.
fn repeat(iters: u64, run: impl Fn() -> Duration) -> Duration {
    (0..iters).map(|_| run()).sum()
}

/// One producer thread and one consumer thread over an SPSC ring, one value at a time.
fn spsc_1p1c(c: &mut Criterion) {
    let mut group = threaded_group(c, "lockfree_spsc_1p1c", SPSC_TRANSFER);
    group.bench_function("flowbed", |b| {
        b.iter_custom(|iters| repeat(iters, || spsc_transfer::<Flowbed>(SPSC_TRANSFER)))
    });
    group.bench_function("rtrb", |b| {
        b.iter_custom(|iters| repeat(iters, || spsc_transfer::<Rtrb>(SPSC_TRANSFER)))
    });
    group.bench_function("std_mpsc", |b| {
        b.iter_custom(|iters| {
            repeat(iters, || {
                let (tx, rx) = std::sync::mpsc::sync_channel(CAPACITY);
                timed_pair(
                    move || {
                        for i in 0..SPSC_TRANSFER {
                            let mut value = i;
                            let mut attempt = 0;
                            while let Err(std::sync::mpsc::TrySendError::Full(back)) =
                                tx.try_send(value)
                            {
                                value = back;
                                retry_wait(&mut attempt);
                            }
                        }
                    },
                    move || {
                        let mut sum = 0u64;
                        for _ in 0..SPSC_TRANSFER {
                            let mut attempt = 0;
                            loop {
                                if let Ok(value) = rx.try_recv() {
                                    sum = sum.wrapping_add(value);
                                    break;
                                }
                                retry_wait(&mut attempt);
                            }
                        }
                        black_box(sum);
                    },
                )
            })
        })
    });
    group.finish();
}

/// Chunked SPSC transfer: up to `chunk` values per index update on each side.
fn spsc_chunks(c: &mut Criterion, chunk: usize) {
    let mut group = threaded_group(c, &format!("lockfree_spsc_chunk{chunk}"), CHUNK_TRANSFER);
    group.bench_function("flowbed", |b| {
        b.iter_custom(|iters| repeat(iters, || chunk_transfer::<Flowbed>(CHUNK_TRANSFER, chunk)))
    });
    group.bench_function("rtrb", |b| {
        b.iter_custom(|iters| repeat(iters, || chunk_transfer::<Rtrb>(CHUNK_TRANSFER, chunk)))
    });
    group.finish();
}

fn spsc_chunk64(c: &mut Criterion) {
    spsc_chunks(c, 64);
}

fn spsc_chunk256(c: &mut Criterion) {
    spsc_chunks(c, 256);
}

/// Round trips: thread A sends a value, thread B sends it back. Latency, not throughput.
fn pingpong(c: &mut Criterion) {
    const ROUND_TRIPS: u64 = 10_000;
    let mut group = c.benchmark_group("lockfree_pingpong");
    group.throughput(Throughput::Elements(ROUND_TRIPS));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("flowbed", |b| {
        b.iter_custom(|iters| repeat(iters, || pingpong_rounds::<Flowbed>(ROUND_TRIPS)))
    });
    group.bench_function("rtrb", |b| {
        b.iter_custom(|iters| repeat(iters, || pingpong_rounds::<Rtrb>(ROUND_TRIPS)))
    });
    group.bench_function("crossbeam", |b| {
        b.iter_custom(|iters| {
            repeat(iters, || {
                let to_b = crossbeam_queue::ArrayQueue::<u64>::new(1);
                let to_a = crossbeam_queue::ArrayQueue::<u64>::new(1);
                let (to_b, to_a) = (&to_b, &to_a);
                timed_pair(
                    move || {
                        for i in 0..ROUND_TRIPS {
                            to_b.push(i).unwrap();
                            while to_a.pop().is_none() {
                                std::hint::spin_loop();
                            }
                        }
                    },
                    move || {
                        for _ in 0..ROUND_TRIPS {
                            let value = loop {
                                if let Some(v) = to_b.pop() {
                                    break v;
                                }
                                std::hint::spin_loop();
                            };
                            to_a.push(value).unwrap();
                        }
                    },
                )
            })
        })
    });
    group.finish();
}

/// Times `iters` transfers on `runtime`; each is a producer task and a consumer task (which
/// returns a checksum) built by `make`.
fn async_transfers<P, C>(
    runtime: &tokio::runtime::Runtime,
    iters: u64,
    make: impl Fn() -> (P, C),
) -> Duration
where
    P: Future<Output = ()> + Send + 'static,
    C: Future<Output = u64> + Send + 'static,
{
    runtime.block_on(async {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let (producer, consumer) = make();
            let began = Instant::now();
            let producer = tokio::spawn(producer);
            let consumer = tokio::spawn(consumer);
            producer.await.unwrap();
            black_box(consumer.await.unwrap());
            total += began.elapsed();
        }
        total
    })
}

/// Async hand-off between two tokio tasks on a 2-worker runtime: the waiting path (register,
/// park, wake) is exercised whenever one side outruns the other.
fn channel_async_1p1c(c: &mut Criterion) {
    const BOUND: usize = 128;
    let mut group = threaded_group(c, "lockfree_channel_async_1p1c", TRANSFER);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("tokio runtime");

    group.bench_function("flowbed", |b| {
        b.iter_custom(|iters| {
            async_transfers(&runtime, iters, || {
                let (tx, rx) = flowbed_lockfree::channel::bounded::<u64>(BOUND);
                let producer = async move {
                    for i in 0..TRANSFER {
                        tx.send(i).await.unwrap();
                    }
                };
                let consumer = async move {
                    let mut sum = 0u64;
                    while let Ok(v) = rx.recv().await {
                        sum = sum.wrapping_add(v);
                    }
                    sum
                };
                (producer, consumer)
            })
        })
    });
    group.bench_function("flume", |b| {
        b.iter_custom(|iters| {
            async_transfers(&runtime, iters, || {
                let (tx, rx) = flume::bounded::<u64>(BOUND);
                let producer = async move {
                    for i in 0..TRANSFER {
                        tx.send_async(i).await.unwrap();
                    }
                };
                let consumer = async move {
                    let mut sum = 0u64;
                    while let Ok(v) = rx.recv_async().await {
                        sum = sum.wrapping_add(v);
                    }
                    sum
                };
                (producer, consumer)
            })
        })
    });
    group.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            async_transfers(&runtime, iters, || {
                let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(BOUND);
                let producer = async move {
                    for i in 0..TRANSFER {
                        tx.send(i).await.unwrap();
                    }
                };
                let consumer = async move {
                    let mut sum = 0u64;
                    while let Some(v) = rx.recv().await {
                        sum = sum.wrapping_add(v);
                    }
                    sum
                };
                (producer, consumer)
            })
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    array_seq,
    array_1p1c,
    array_2p2c,
    array_4p4c,
    seg_seq,
    seg_1p1c,
    spsc_1p1c,
    spsc_chunk64,
    spsc_chunk256,
    pingpong,
    channel_async_1p1c
);
criterion_main!(benches);
