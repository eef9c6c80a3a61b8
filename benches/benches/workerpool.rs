//! flowbed-workerpool against threadpool, rayon (`ThreadPool::spawn`, `scope`, `install`),
//! tokio's `spawn_blocking` and plain `std::thread`, on the same workloads in the same run.
//!
//! Every pool has 2 worker threads (this machine class has 2 cores) and is built once per
//! function, outside the measured loop, and dropped before the next function's pool is
//! built, so idle pools never compete with the one being measured. Groups are
//! `workerpool_<workload>`, functions are `flowbed` (the handle-less path: `execute`, or
//! `scope`), `flowbed_submit` (`submit`, which always creates a `JobHandle`, like tokio's
//! `spawn_blocking` always creates a `JoinHandle`) and the peer's name, so results sit at
//! `target/criterion/workerpool_<workload>/<name>/`.
//!
//! | group | one measured iteration | throughput |
//! |---|---|---|
//! | `workerpool_submit_tiny` | 500,000 no-op jobs submitted from one outside thread, until all have run | jobs |
//! | `workerpool_submit_wait` | one job submitted from outside and its result waited for (round trip) | jobs |
//! | `workerpool_fanout_sum` | 100,000 CPU jobs (~a few hundred ns each) whose results are summed and checked | jobs |
//! | `workerpool_burst_idle` | 10 bursts of 1,000 no-op jobs, each after a 200 µs idle gap (the gap is not timed) | jobs |
//!
//! Completion of handle-less jobs is counted with one shared countdown ([`Latch`]): the
//! last job wakes the measuring thread, so every pool pays the same one atomic per job
//! and one wake-up per batch for being waited on.
//!
//! flowbed's pool gets a queue of [`FLOWBED_QUEUE`] jobs, more than any workload
//! submits, with `RejectPolicy::Block { timeout: None }` as a safety net: the peers'
//! queues are unbounded, so a bounded queue that pushed back would measure a different
//! thing.
//!
//! Run: `cargo bench -p flowbed-benches --bench workerpool` (add `-- --quick` for a fast
//! pass).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use flowbed_workerpool::{RejectPolicy, WorkerPool};

/// Worker threads in every pool: the machine class has 2 cores.
const THREADS: usize = 2;
/// Jobs per iteration of `workerpool_submit_tiny`. A million took 0.3 s (flowbed) to
/// 1.1 s (tokio) per iteration on this 2-core machine class; half of that keeps every
/// iteration well under a second and the group within the suite's `--quick` budget.
const SUBMIT_JOBS: usize = 500_000;
/// Jobs per iteration of `workerpool_fanout_sum`.
const FANOUT_JOBS: u64 = 100_000;
/// xorshift rounds per `workerpool_fanout_sum` job: a few hundred ns of dependent
/// arithmetic.
const WORK_ROUNDS: u32 = 100;
/// Jobs per burst in `workerpool_burst_idle`.
const BURST: usize = 1_000;
/// Bursts per iteration of `workerpool_burst_idle`.
const BURSTS: usize = 10;
/// The idle gap before each burst: long enough for every pool's workers to stop spinning
/// and go to sleep, so each burst pays the wake-up.
const IDLE_GAP: Duration = Duration::from_micros(200);
/// flowbed's queue capacity: room for every job any workload submits at once.
const FLOWBED_QUEUE: usize = 1 << 20;

/// Counts a batch of jobs down and wakes the measuring thread when the last one has run.
struct Latch {
    remaining: AtomicUsize,
    waiter: Thread,
}

impl Latch {
    /// A latch for the calling thread to wait on. Leaked (one per benchmark function), so
    /// the `'static` jobs can hold a plain reference: no reference count per job.
    fn leak() -> &'static Self {
        Box::leak(Box::new(Self {
            remaining: AtomicUsize::new(0),
            waiter: thread::current(),
        }))
    }

    /// Expects `jobs` calls to `done` before `wait` returns.
    fn arm(&self, jobs: usize) {
        self.remaining.store(jobs, Ordering::Relaxed);
    }

    #[inline]
    fn done(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.waiter.unpark();
        }
    }

    /// Sleeps until every job of the batch has called `done`.
    fn wait(&self) {
        while self.remaining.load(Ordering::Acquire) != 0 {
            thread::park();
        }
    }
}

fn flowbed_pool() -> WorkerPool {
    WorkerPool::builder()
        .core_threads(THREADS)
        .max_threads(THREADS)
        .queue_capacity(FLOWBED_QUEUE)
        .reject_policy(RejectPolicy::Block { timeout: None })
        .build()
        .expect("flowbed pool")
}

fn threadpool_pool() -> threadpool::ThreadPool {
    threadpool::ThreadPool::new(THREADS)
}

fn rayon_pool() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(THREADS)
        .build()
        .expect("rayon pool")
}

/// `spawn_blocking` runs on tokio's blocking pool, so that is the pool limited to
/// `THREADS`; the one async worker only drives `block_on`'s wake-ups and stays idle.
fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(THREADS)
        .build()
        .expect("tokio runtime")
}

/// Times `iters` batches: `jobs` calls to `submit` (each queues one job that calls
/// `latch.done()`), then the wait until all have run.
fn timed_batches(
    iters: u64,
    jobs: usize,
    latch: &'static Latch,
    submit: &mut impl FnMut(&'static Latch),
) -> Duration {
    let began = Instant::now();
    for _ in 0..iters {
        latch.arm(jobs);
        for _ in 0..jobs {
            submit(latch);
        }
        latch.wait();
    }
    began.elapsed()
}

/// Like `timed_batches` with `BURSTS` bursts of `BURST` jobs per iteration, each after an
/// untimed `IDLE_GAP` of sleep.
fn timed_bursts(
    iters: u64,
    latch: &'static Latch,
    submit: &mut impl FnMut(&'static Latch),
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        for _ in 0..BURSTS {
            thread::sleep(IDLE_GAP);
            total += timed_batches(1, BURST, latch, submit);
        }
    }
    total
}

fn bench_submit_tiny(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    mut submit: impl FnMut(&'static Latch),
) {
    let latch = Latch::leak();
    group.bench_function(name, |b| {
        b.iter_custom(|iters| timed_batches(iters, SUBMIT_JOBS, latch, &mut submit))
    });
}

fn bench_burst_idle(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    mut submit: impl FnMut(&'static Latch),
) {
    let latch = Latch::leak();
    group.bench_function(name, |b| {
        b.iter_custom(|iters| timed_bursts(iters, latch, &mut submit))
    });
}

/// A group whose iterations take tens to hundreds of milliseconds: few, equal-sized
/// samples.
fn long_group<'c>(c: &'c mut Criterion, name: &str, jobs: u64) -> BenchmarkGroup<'c, WallTime> {
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(jobs));
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    group
}

/// Many no-op jobs from one outside thread: the cost of accepting, queueing, taking and
/// running a job, with the submitter and both workers sharing 2 cores.
fn submit_tiny(c: &mut Criterion) {
    let mut group = long_group(c, "workerpool_submit_tiny", SUBMIT_JOBS as u64);
    {
        let pool = flowbed_pool();
        bench_submit_tiny(&mut group, "flowbed", |latch| {
            pool.execute(move || latch.done()).unwrap();
        });
    }
    {
        let pool = flowbed_pool();
        bench_submit_tiny(&mut group, "flowbed_submit", |latch| {
            drop(pool.submit(move || latch.done()).unwrap());
        });
    }
    {
        let pool = threadpool_pool();
        bench_submit_tiny(&mut group, "threadpool", |latch| {
            pool.execute(move || latch.done());
        });
    }
    {
        let pool = rayon_pool();
        bench_submit_tiny(&mut group, "rayon_spawn", |latch| {
            pool.spawn(move || latch.done());
        });
    }
    {
        let runtime = tokio_runtime();
        bench_submit_tiny(&mut group, "tokio_spawn_blocking", |latch| {
            drop(runtime.spawn_blocking(move || latch.done()));
        });
    }
    // Not here: `rayon_scope`, because a rayon scope runs its body on a worker, so its
    // spawns are a worker pushing to its own deque, not submission from an outside
    // thread (`workerpool_fanout_sum` measures scopes); `std_thread`, because 500,000
    // OS threads per iteration measures thread creation, not a pool.
    group.finish();
}

/// One job, submitted from outside and waited for: the round trip through an idle pool
/// (wake a worker, run, wake the submitter).
fn submit_wait(c: &mut Criterion) {
    let mut group = c.benchmark_group("workerpool_submit_wait");
    group.throughput(Throughput::Elements(1));
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    {
        let pool = flowbed_pool();
        group.bench_function("flowbed", |b| {
            b.iter(|| pool.submit(|| black_box(1u64)).unwrap().join().unwrap())
        });
    }
    {
        let pool = threadpool_pool();
        let (tx, rx) = mpsc::channel();
        group.bench_function("threadpool", |b| {
            b.iter(|| {
                let tx = tx.clone();
                pool.execute(move || tx.send(black_box(1u64)).unwrap());
                rx.recv().unwrap()
            })
        });
    }
    {
        let pool = rayon_pool();
        let (tx, rx) = mpsc::channel();
        group.bench_function("rayon_spawn", |b| {
            b.iter(|| {
                let tx = tx.clone();
                pool.spawn(move || tx.send(black_box(1u64)).unwrap());
                rx.recv().unwrap()
            })
        });
        group.bench_function("rayon_install", |b| {
            b.iter(|| pool.install(|| black_box(1u64)))
        });
    }
    {
        let runtime = tokio_runtime();
        group.bench_function("tokio_spawn_blocking", |b| {
            b.iter(|| {
                runtime
                    .block_on(runtime.spawn_blocking(|| black_box(1u64)))
                    .unwrap()
            })
        });
    }
    group.bench_function("std_thread", |b| {
        b.iter(|| thread::spawn(|| black_box(1u64)).join().unwrap())
    });
    // `flowbed` is `submit` + `join` here. Not here: `execute` and `rayon_scope`, which have no result to wait
    // for; `rayon_install` is rayon's own round trip.
    group.finish();
}

/// A few hundred ns of dependent arithmetic the optimizer cannot fold.
#[inline]
fn work(seed: u64) -> u64 {
    let mut x = black_box(seed) | 1;
    for _ in 0..WORK_ROUNDS {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    x
}

/// Many small CPU jobs fanned out and their results summed: each pool's idiomatic
/// fork-join path (scope where there is one, handles or a channel back otherwise).
fn fanout_sum(c: &mut Criterion) {
    let expected = (0..FANOUT_JOBS).map(work).fold(0u64, u64::wrapping_add);
    let mut group = long_group(c, "workerpool_fanout_sum", FANOUT_JOBS);
    {
        let pool = flowbed_pool();
        // Like `rayon_scope` (rayon's `ThreadPool::scope` runs its body on a worker):
        // `install` moves the scope onto a worker, whose spawns go to its own deque.
        group.bench_function("flowbed", |b| {
            b.iter(|| {
                let sum = AtomicU64::new(0);
                pool.install(|| {
                    pool.scope(|s| {
                        for i in 0..FANOUT_JOBS {
                            let sum = &sum;
                            drop(s.spawn(move || sum.fetch_add(work(i), Ordering::Relaxed)));
                        }
                    })
                });
                assert_eq!(sum.into_inner(), expected);
            })
        });
        // The same scope opened on the (outside) benchmark thread: its spawns go through
        // the shared injector, and the spawning thread competes with both workers for
        // the 2 cores.
        group.bench_function("flowbed_scope_outside", |b| {
            b.iter(|| {
                let sum = AtomicU64::new(0);
                pool.scope(|s| {
                    for i in 0..FANOUT_JOBS {
                        let sum = &sum;
                        drop(s.spawn(move || sum.fetch_add(work(i), Ordering::Relaxed)));
                    }
                });
                assert_eq!(sum.into_inner(), expected);
            })
        });
    }
    {
        let pool = flowbed_pool();
        group.bench_function("flowbed_submit", |b| {
            b.iter(|| {
                let handles: Vec<_> = (0..FANOUT_JOBS)
                    .map(|i| pool.submit(move || work(i)).unwrap())
                    .collect();
                let sum = handles
                    .into_iter()
                    .map(|handle| handle.join().unwrap())
                    .fold(0u64, u64::wrapping_add);
                assert_eq!(sum, expected);
            })
        });
    }
    {
        let pool = threadpool_pool();
        let (tx, rx) = mpsc::channel();
        group.bench_function("threadpool", |b| {
            b.iter(|| {
                for i in 0..FANOUT_JOBS {
                    let tx = tx.clone();
                    pool.execute(move || tx.send(work(i)).unwrap());
                }
                let sum = rx
                    .iter()
                    .take(FANOUT_JOBS as usize)
                    .fold(0u64, u64::wrapping_add);
                assert_eq!(sum, expected);
            })
        });
    }
    {
        let pool = rayon_pool();
        let (tx, rx) = mpsc::channel();
        group.bench_function("rayon_spawn", |b| {
            b.iter(|| {
                for i in 0..FANOUT_JOBS {
                    let tx = tx.clone();
                    pool.spawn(move || tx.send(work(i)).unwrap());
                }
                let sum = rx
                    .iter()
                    .take(FANOUT_JOBS as usize)
                    .fold(0u64, u64::wrapping_add);
                assert_eq!(sum, expected);
            })
        });
        group.bench_function("rayon_scope", |b| {
            b.iter(|| {
                let sum = AtomicU64::new(0);
                pool.scope(|s| {
                    for i in 0..FANOUT_JOBS {
                        let sum = &sum;
                        s.spawn(move |_| {
                            sum.fetch_add(work(i), Ordering::Relaxed);
                        });
                    }
                });
                assert_eq!(sum.into_inner(), expected);
            })
        });
    }
    {
        let runtime = tokio_runtime();
        group.bench_function("tokio_spawn_blocking", |b| {
            b.iter(|| {
                let handles: Vec<_> = (0..FANOUT_JOBS)
                    .map(|i| runtime.spawn_blocking(move || work(i)))
                    .collect();
                let sum = runtime.block_on(async {
                    let mut sum = 0u64;
                    for handle in handles {
                        sum = sum.wrapping_add(handle.await.unwrap());
                    }
                    sum
                });
                assert_eq!(sum, expected);
            })
        });
    }
    // Not here: `std_thread`, because 100,000 OS threads per iteration measures thread
    // creation, not a pool.
    group.finish();
}

/// Bursts after idle gaps: each burst first has to wake sleeping workers, which a
/// steady stream (`workerpool_submit_tiny`) never does.
fn burst_idle(c: &mut Criterion) {
    let mut group = c.benchmark_group("workerpool_burst_idle");
    group.throughput(Throughput::Elements((BURSTS * BURST) as u64));
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    {
        let pool = flowbed_pool();
        bench_burst_idle(&mut group, "flowbed", |latch| {
            pool.execute(move || latch.done()).unwrap();
        });
    }
    {
        let pool = flowbed_pool();
        bench_burst_idle(&mut group, "flowbed_submit", |latch| {
            drop(pool.submit(move || latch.done()).unwrap());
        });
    }
    {
        let pool = threadpool_pool();
        bench_burst_idle(&mut group, "threadpool", |latch| {
            pool.execute(move || latch.done());
        });
    }
    {
        let pool = rayon_pool();
        bench_burst_idle(&mut group, "rayon_spawn", |latch| {
            pool.spawn(move || latch.done());
        });
    }
    {
        let runtime = tokio_runtime();
        bench_burst_idle(&mut group, "tokio_spawn_blocking", |latch| {
            drop(runtime.spawn_blocking(move || latch.done()));
        });
    }
    // Not here: `rayon_scope` (see `submit_tiny`: not outside submission) and
    // `std_thread` (a thousand OS threads per burst measures thread creation).
    group.finish();
}

criterion_group!(benches, submit_tiny, submit_wait, fanout_sum, burst_idle);
criterion_main!(benches);
