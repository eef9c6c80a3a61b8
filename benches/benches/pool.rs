//! flowbed-pool against deadpool, bb8, qp and r2d2 on the workloads of deadpool's
//! async-pool-benchmark (a no-op manager, get + drop), and against deadpool-postgres and
//! bb8-postgres on a real PostgreSQL, in the same run.
//!
//! Groups are `pool_<workload>`, functions are `flowbed` and the peer's crate name, so
//! results sit at `target/criterion/pool_<workload>/<name>/`.
//!
//! | group | one iteration | peers |
//! |---|---|---|
//! | `pool_get_drop_uncontended` | one `get().await` + drop, one task on a current-thread runtime, 4 connections | deadpool, bb8, qp |
//! | `pool_get_drop_16conn_64tasks` | one get + drop by one of 64 tasks sharing 16 connections on a 2-worker runtime (time per get + drop: total / gets) | deadpool, bb8, qp |
//! | `pool_get_drop_8conn_256tasks` | the same with 256 tasks on 8 connections | deadpool, bb8, qp |
//! | `pool_blocking_get_drop` | one blocking get + drop (flowbed `get_blocking`, r2d2 `get`), one thread, 4 connections | r2d2 |
//! | `pool_blocking_get_drop_2threads` | the same on one of 2 threads sharing the pool (time per get: aggregate throughput) | r2d2 |
//! | `pool_fairness_wait_p9999` | the whole fairness workload: 1000 tasks released together on 50 connections, 20 rounds each of get, yield while holding, drop (20 000 gets), 2-worker runtime | deadpool, bb8 |
//! | `pool_postgres_select1` | one get + `simple_query("SELECT 1")` + drop by one of 32 tasks on 8 connections to a real PostgreSQL | `deadpool_postgres`, `bb8_postgres` |
//!
//! The no-op manager's connection is a `u64`, made at once, never broken, always valid.
//! Every pool is configured alike, as far as each allows, and filled to its size before
//! it is measured, so no iteration opens a connection:
//!
//! * A get waits at most 30 s: flowbed's, bb8's (`connection_timeout`) and r2d2's default;
//!   deadpool gets `wait_timeout(Some(30 s))` with `Runtime::Tokio1` (its default waits
//!   forever, with no timer on any get). qp has no wait bound.
//! * No validation on checkout where it can be turned off: flowbed skips `recycle` for
//!   connections used in the last 500 ms (every one handed out here); bb8 and r2d2 run with
//!   `test_on_check_out(false)`; qp gets through `acquire_unchecked` (its `acquire` calls
//!   `validate`, a boxed `async_trait` future, on every get). deadpool always calls
//!   `recycle`, a no-op here. Broken-connection checks (`is_broken`, `has_broken`) stay.
//!
//! Tails: criterion reports typical times, not the worst wait. Run with
//! `FLOWBED_POOL_FAIRNESS=1` to print instead, for each pool, the wait-time percentiles
//! (p50, p99, p99.9, p99.99, max) of 5 runs of the fairness workload (100 000 gets in
//! all, after one unrecorded run):
//!
//! `FLOWBED_POOL_FAIRNESS=1 cargo bench -p flowbed-benches --bench pool`
//!
//! In the two `pool_get_drop_<n>conn_<m>tasks` groups, as in deadpool's benchmark, a task
//! does not await while it holds a connection, so at most 2 (the runtime's workers) are out
//! at once and no get ever waits: they measure the shared fast path under 2 threads, not
//! queueing. `pool_fairness_wait_p9999` is the queueing workload (it yields while holding).
//!
//! qp is left out of `pool_fairness_wait_p9999`: its semaphore loses waiters (a waiter
//! queues its waker only on its first poll; woken but beaten to the permit by a task that
//! did not wait, it sleeps again with no waker queued), and most tasks of that workload then
//! never finish. The fairness report still runs it, bounded by a time limit, and says how
//! many tasks it stranded.
//!
//! `pool_postgres_select1` needs a running PostgreSQL at `FLOWBED_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`) and fails, never skips, when it is not
//! reachable (filter the group out to run the rest without a server). The three pools
//! are alike: 8 connections opened before measuring, a 30 s wait bound, no validation
//! round trip on a connection used moments ago (flowbed validates only after 500 ms idle;
//! deadpool-postgres `RecyclingMethod::Fast` checks only `is_closed`; bb8-postgres runs
//! with `test_on_check_out(false)`, as its default would send an empty query on every
//! get), and every task sends the same single-round-trip `simple_query("SELECT 1")` (no
//! statement, so no pool's statement cache is involved) and checks that it got one row.
//!
//! Every contended run is bounded by a time limit: a pool whose tasks do not finish fails
//! the bench with the number of stuck tasks instead of hanging it.
//!
//! Run: `cargo bench -p flowbed-benches --bench pool` (add `-- --quick` for a fast pass).

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

// Only the blocking loops are used here.
#[allow(dead_code)]
mod support;

use criterion::{Criterion, Throughput, criterion_group};
use flowbed_pool::postgres::tokio_postgres::SimpleQueryMessage;
use support::{run_2threads, run_timed};
use tokio::runtime::Runtime;

/// Connections in the uncontended and blocking pools.
const SMALL_POOL: usize = 4;
/// The wait bound of every pool that has one (flowbed's, bb8's and r2d2's default).
const WAIT_TIMEOUT: Duration = Duration::from_secs(30);
/// A contended run that takes longer than this is a pool that lost a task.
const HANG_LIMIT: Duration = Duration::from_secs(60);

/// Tasks and connections of the fairness workload.
const FAIR_TASKS: usize = 1000;
const FAIR_CONNECTIONS: usize = 50;
/// Gets per task in one fairness workload.
const FAIR_ROUNDS: usize = 20;
/// Fairness workloads per pool in the `FLOWBED_POOL_FAIRNESS` report.
const FAIR_REPEATS: usize = 5;
/// A fairness workload that takes longer than this has stranded tasks (the report's bound;
/// a normal run takes well under a second).
const FAIR_LIMIT: Duration = Duration::from_secs(10);

const PG_DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const PG_CONNECTIONS: usize = 8;
const PG_TASKS: usize = 32;

/// The no-op manager of every pool: a connection is a number, made at once, always valid.
#[derive(Debug, Default)]
struct Noop {
    created: AtomicU64,
}

impl Noop {
    fn next(&self) -> u64 {
        self.created.fetch_add(1, Ordering::Relaxed)
    }
}

impl flowbed_pool::Manager for Noop {
    type Connection = u64;
    type Error = Infallible;

    async fn create(&self) -> Result<u64, Infallible> {
        Ok(self.next())
    }
}

impl deadpool::managed::Manager for Noop {
    type Type = u64;
    type Error = Infallible;

    async fn create(&self) -> Result<u64, Infallible> {
        Ok(self.next())
    }

    async fn recycle(
        &self,
        _: &mut u64,
        _: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<Infallible> {
        Ok(())
    }
}

impl bb8::ManageConnection for Noop {
    type Connection = u64;
    type Error = Infallible;

    async fn connect(&self) -> Result<u64, Infallible> {
        Ok(self.next())
    }

    async fn is_valid(&self, _: &mut u64) -> Result<(), Infallible> {
        Ok(())
    }

    fn has_broken(&self, _: &mut u64) -> bool {
        false
    }
}

#[qp::async_trait]
impl qp::resource::Manage for Noop {
    type Output = u64;
    type Error = Infallible;

    async fn try_create(&self) -> Result<u64, Infallible> {
        Ok(self.next())
    }
}

impl r2d2::ManageConnection for Noop {
    type Connection = u64;
    type Error = Infallible;

    fn connect(&self) -> Result<u64, Infallible> {
        Ok(self.next())
    }

    fn is_valid(&self, _: &mut u64) -> Result<(), Infallible> {
        Ok(())
    }

    fn has_broken(&self, _: &mut u64) -> bool {
        false
    }
}

type FlowbedPool = flowbed_pool::Pool<Noop>;
type DeadPool = deadpool::managed::Pool<Noop>;
type Bb8Pool = bb8::Pool<Noop>;
type QpPool = qp::Pool<Noop>;

/// A pool and the one operation a workload's tasks repeat on it.
trait Workload: Clone + Send + Sync + 'static {
    /// One operation (a get and drop, a query); panics if the pool refused.
    fn once(&self) -> impl Future<Output = ()> + Send;
}

/// An async pool of [`Noop`] connections, as the workloads use it; its
/// [`once`](Workload::once) is one get and drop.
trait NoopPool: Workload {
    /// One get, a yield to the scheduler while holding the connection, and drop; returns
    /// how long the get took.
    fn get_hold_drop(&self) -> impl Future<Output = Duration> + Send;
    /// Takes `n` connections at once and returns them, so the pool has `n` open.
    fn fill(&self, n: usize) -> impl Future<Output = ()> + Send;
}

/// The [`NoopPool`] of a pool whose `$get` method returns a `Result` of a guard.
macro_rules! noop_pool {
    ($pool:ty, $get:ident) => {
        impl Workload for $pool {
            async fn once(&self) {
                let conn = self.$get().await.expect("the pool refused a get");
                black_box(*conn);
            }
        }

        impl NoopPool for $pool {
            async fn get_hold_drop(&self) -> Duration {
                let start = Instant::now();
                let conn = self.$get().await.expect("the pool refused a get");
                let waited = start.elapsed();
                tokio::task::yield_now().await;
                black_box(*conn);
                waited
            }

            async fn fill(&self, n: usize) {
                let mut held = Vec::with_capacity(n);
                for _ in 0..n {
                    held.push(self.$get().await.expect("the pool refused a get"));
                }
            }
        }
    };
}

noop_pool!(FlowbedPool, get);
noop_pool!(DeadPool, get);
noop_pool!(Bb8Pool, get);
noop_pool!(QpPool, acquire_unchecked);

fn current_thread_runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn multi_thread_runtime(workers: usize) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn flowbed_pool(runtime: &Runtime, size: usize) -> FlowbedPool {
    let pool = flowbed_pool::Pool::builder(Noop::default())
        .max_size(size)
        .runtime(runtime.handle().clone())
        .build()
        .expect("valid flowbed pool");
    runtime.block_on(pool.fill(size));
    assert_eq!(pool.stats().idle, size);
    pool
}

fn deadpool_pool(runtime: &Runtime, size: usize) -> DeadPool {
    let pool = deadpool::managed::Pool::builder(Noop::default())
        .max_size(size)
        .wait_timeout(Some(WAIT_TIMEOUT))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .expect("valid deadpool pool");
    runtime.block_on(pool.fill(size));
    pool
}

fn bb8_pool(runtime: &Runtime, size: usize) -> Bb8Pool {
    let pool = runtime
        .block_on(
            bb8::Pool::builder()
                .max_size(u32::try_from(size).expect("small pool"))
                .test_on_check_out(false)
                .build(Noop::default()),
        )
        .expect("valid bb8 pool");
    runtime.block_on(pool.fill(size));
    pool
}

fn qp_pool(runtime: &Runtime, size: usize) -> QpPool {
    let pool = qp::Pool::new(Noop::default(), size);
    runtime.block_on(pool.fill(size));
    pool
}

/// Waits for every task, at most [`HANG_LIMIT`]; panics naming the pool and the number of
/// tasks that did not finish if some did not.
async fn join_all<T>(name: &str, tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let total = tasks.len();
    let deadline = tokio::time::Instant::now() + HANG_LIMIT;
    let mut results = Vec::with_capacity(total);
    let mut tasks = tasks.into_iter();
    while let Some(mut task) = tasks.next() {
        match tokio::time::timeout_at(deadline, &mut task).await {
            Ok(result) => results.push(result.expect("a bench task panicked")),
            Err(_) => {
                task.abort();
                let stuck = 1 + tasks.inspect(|t| t.abort()).count();
                panic!("{name}: {stuck} of {total} tasks did not finish within {HANG_LIMIT:?}");
            }
        }
    }
    results
}

/// `tasks` tasks on `runtime`, each running [`Workload::once`] on `pool` the same number of
/// times, at least `iters` in all; returns the time taken scaled to `iters` operations (the
/// time per operation of all tasks together, times `iters`).
fn run_tasks<P: Workload>(
    runtime: &Runtime,
    name: &str,
    pool: &P,
    tasks: usize,
    iters: u64,
) -> Duration {
    let per_task = iters.div_ceil(tasks as u64).max(1);
    let elapsed = runtime.block_on(async {
        let start = Instant::now();
        let handles = (0..tasks)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    for _ in 0..per_task {
                        pool.once().await;
                    }
                })
            })
            .collect();
        join_all(name, handles).await;
        start.elapsed()
    });
    elapsed.mul_f64(iters as f64 / (tasks as u64 * per_task) as f64)
}

fn get_drop_uncontended(c: &mut Criterion) {
    let mut group = c.benchmark_group("pool_get_drop_uncontended");
    group.throughput(Throughput::Elements(1));
    let runtime = current_thread_runtime();

    fn bench<P: NoopPool>(
        group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
        runtime: &Runtime,
        name: &str,
        pool: &P,
    ) {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        pool.once().await;
                    }
                    start.elapsed()
                })
            })
        });
    }

    let flowbed = flowbed_pool(&runtime, SMALL_POOL);
    let filled = flowbed.stats();
    bench(&mut group, &runtime, "flowbed", &flowbed);
    let stats = flowbed.stats();
    // Every get found an idle connection.
    assert_eq!((stats.created, stats.waits), (filled.created, filled.waits));
    drop(flowbed);

    bench(
        &mut group,
        &runtime,
        "deadpool",
        &deadpool_pool(&runtime, SMALL_POOL),
    );
    bench(&mut group, &runtime, "bb8", &bb8_pool(&runtime, SMALL_POOL));
    bench(&mut group, &runtime, "qp", &qp_pool(&runtime, SMALL_POOL));
    group.finish();
}

/// `tasks` tasks sharing `connections` connections on a 2-worker runtime.
fn get_drop_contended(c: &mut Criterion, connections: usize, tasks: usize) {
    let mut group = c.benchmark_group(format!("pool_get_drop_{connections}conn_{tasks}tasks"));
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    let runtime = multi_thread_runtime(2);

    fn bench<P: NoopPool>(
        group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
        runtime: &Runtime,
        name: &str,
        pool: &P,
        tasks: usize,
    ) {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| run_tasks(runtime, name, pool, tasks, iters))
        });
    }

    let flowbed = flowbed_pool(&runtime, connections);
    let filled = flowbed.stats();
    bench(&mut group, &runtime, "flowbed", &flowbed, tasks);
    let stats = flowbed.stats();
    // No task awaits while holding a connection: no get ever waited.
    assert_eq!((stats.created, stats.waits), (filled.created, filled.waits));
    drop(flowbed);

    bench(
        &mut group,
        &runtime,
        "deadpool",
        &deadpool_pool(&runtime, connections),
        tasks,
    );
    bench(
        &mut group,
        &runtime,
        "bb8",
        &bb8_pool(&runtime, connections),
        tasks,
    );
    bench(
        &mut group,
        &runtime,
        "qp",
        &qp_pool(&runtime, connections),
        tasks,
    );
    group.finish();
}

fn get_drop_16conn_64tasks(c: &mut Criterion) {
    get_drop_contended(c, 16, 64);
}

fn get_drop_8conn_256tasks(c: &mut Criterion) {
    get_drop_contended(c, 8, 256);
}

/// A flowbed pool for `get_blocking`: its runtime (one worker, for the background
/// maintenance and any connection opening) is not the calling thread's.
fn flowbed_blocking_pool(runtime: &Runtime) -> FlowbedPool {
    let pool = flowbed_pool(runtime, SMALL_POOL);
    let held: Vec<_> = (0..SMALL_POOL)
        .map(|_| pool.get_blocking().expect("flowbed get_blocking"))
        .collect();
    drop(held);
    pool
}

fn r2d2_pool() -> r2d2::Pool<Noop> {
    // r2d2 opens min_idle (by default max_size) connections before build returns.
    r2d2::Pool::builder()
        .max_size(SMALL_POOL as u32)
        .test_on_check_out(false)
        .build(Noop::default())
        .expect("valid r2d2 pool")
}

fn blocking_get_drop(c: &mut Criterion) {
    let mut group = c.benchmark_group("pool_blocking_get_drop");
    group.throughput(Throughput::Elements(1));
    let runtime = multi_thread_runtime(1);

    let flowbed = flowbed_blocking_pool(&runtime);
    group.bench_function("flowbed", |b| {
        b.iter_custom(|iters| run_timed(iters, true, || flowbed.get_blocking().is_ok()))
    });
    assert_eq!(flowbed.stats().created, SMALL_POOL as u64);
    drop(flowbed);

    let r2d2 = r2d2_pool();
    group.bench_function("r2d2", |b| {
        b.iter_custom(|iters| run_timed(iters, true, || r2d2.get().is_ok()))
    });
    group.finish();
}

fn blocking_get_drop_2threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("pool_blocking_get_drop_2threads");
    // Time per get of either thread: throughput is gets per second of both together.
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    let runtime = multi_thread_runtime(1);

    let flowbed = flowbed_blocking_pool(&runtime);
    group.bench_function("flowbed", |b| {
        b.iter_custom(|iters| run_2threads(&flowbed, iters, |pool| pool.get_blocking().is_ok()) / 2)
    });
    assert_eq!(flowbed.stats().created, SMALL_POOL as u64);
    drop(flowbed);

    let r2d2 = r2d2_pool();
    group.bench_function("r2d2", |b| {
        b.iter_custom(|iters| run_2threads(&r2d2, iters, |pool| pool.get().is_ok()) / 2)
    });
    group.finish();
}

/// One fairness workload: [`FAIR_TASKS`] tasks, released together, each doing
/// [`FAIR_ROUNDS`] get / yield / drop rounds. Returns the time from the release until
/// every task is done and every wait, or, if not every task finished within `limit`, how
/// many did not (they are aborted).
async fn fairness_workload<P: NoopPool>(
    pool: &P,
    limit: Duration,
) -> Result<(Duration, Vec<Duration>), usize> {
    let start = Arc::new(tokio::sync::Barrier::new(FAIR_TASKS + 1));
    let tasks: Vec<_> = (0..FAIR_TASKS)
        .map(|_| {
            let pool = pool.clone();
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                let mut waits = Vec::with_capacity(FAIR_ROUNDS);
                for _ in 0..FAIR_ROUNDS {
                    waits.push(pool.get_hold_drop().await);
                }
                waits
            })
        })
        .collect();
    start.wait().await;
    let began = Instant::now();
    let deadline = tokio::time::Instant::now() + limit;
    let mut waits = Vec::with_capacity(FAIR_TASKS * FAIR_ROUNDS);
    let mut stuck = 0;
    for mut task in tasks {
        if stuck > 0 {
            stuck += usize::from(!task.is_finished());
            task.abort();
            continue;
        }
        match tokio::time::timeout_at(deadline, &mut task).await {
            Ok(done) => waits.extend(done.expect("a fairness task panicked")),
            Err(_) => {
                task.abort();
                stuck = 1;
            }
        }
    }
    if stuck > 0 {
        return Err(stuck);
    }
    Ok((began.elapsed(), waits))
}

fn fairness_wait_p9999(c: &mut Criterion) {
    let mut group = c.benchmark_group("pool_fairness_wait_p9999");
    group.sample_size(10);
    let runtime = multi_thread_runtime(2);

    fn bench<P: NoopPool>(
        group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
        runtime: &Runtime,
        name: &str,
        pool: &P,
    ) {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        match runtime.block_on(fairness_workload(pool, HANG_LIMIT)) {
                            Ok((took, waits)) => {
                                assert_eq!(waits.len(), FAIR_TASKS * FAIR_ROUNDS);
                                took
                            }
                            Err(stuck) => panic!(
                                "{name}: {stuck} of {FAIR_TASKS} tasks did not finish within {HANG_LIMIT:?}"
                            ),
                        }
                    })
                    .sum()
            })
        });
    }

    bench(
        &mut group,
        &runtime,
        "flowbed",
        &flowbed_pool(&runtime, FAIR_CONNECTIONS),
    );
    bench(
        &mut group,
        &runtime,
        "deadpool",
        &deadpool_pool(&runtime, FAIR_CONNECTIONS),
    );
    bench(
        &mut group,
        &runtime,
        "bb8",
        &bb8_pool(&runtime, FAIR_CONNECTIONS),
    );
    group.finish();
}

/// The nearest-rank `q` quantile of sorted `values`.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn fmt_duration(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// One row of the fairness report: a warm-up workload, then [`FAIR_REPEATS`] recorded ones.
fn fairness_row<P: NoopPool>(runtime: &Runtime, name: &str, pool: P) {
    let mut waits = Vec::with_capacity(FAIR_REPEATS * FAIR_TASKS * FAIR_ROUNDS);
    let mut took = Vec::with_capacity(FAIR_REPEATS);
    for run in 0..=FAIR_REPEATS {
        match runtime.block_on(fairness_workload(&pool, FAIR_LIMIT)) {
            Ok(_) if run == 0 => {}
            Ok((elapsed, run_waits)) => {
                took.push(elapsed);
                waits.extend(run_waits);
            }
            Err(stuck) => {
                println!(
                    "| {name} | stuck: {stuck} of {FAIR_TASKS} tasks never finished within {} | | | | | |",
                    fmt_duration(FAIR_LIMIT)
                );
                return;
            }
        }
    }
    waits.sort_unstable();
    took.sort_unstable();
    println!(
        "| {name} | {} | {} | {} | {} | {} | {} |",
        fmt_duration(quantile(&waits, 0.5)),
        fmt_duration(quantile(&waits, 0.99)),
        fmt_duration(quantile(&waits, 0.999)),
        fmt_duration(quantile(&waits, 0.9999)),
        fmt_duration(*waits.last().expect("waits recorded")),
        fmt_duration(took[took.len() / 2]),
    );
}

/// The `FLOWBED_POOL_FAIRNESS` report: wait-time percentiles per pool.
fn fairness_report() {
    let runtime = multi_thread_runtime(2);
    println!(
        "pool fairness: {FAIR_TASKS} tasks on {FAIR_CONNECTIONS} connections, {FAIR_ROUNDS} rounds of \
         get / yield / drop per task, {FAIR_REPEATS} runs per pool ({} gets), 2 runtime workers",
        FAIR_REPEATS * FAIR_TASKS * FAIR_ROUNDS
    );
    println!();
    println!(
        "| pool | p50 wait | p99 wait | p99.9 wait | p99.99 wait | max wait | median run time |"
    );
    println!("|---|---|---|---|---|---|---|");
    fairness_row(
        &runtime,
        "flowbed",
        flowbed_pool(&runtime, FAIR_CONNECTIONS),
    );
    fairness_row(
        &runtime,
        "deadpool",
        deadpool_pool(&runtime, FAIR_CONNECTIONS),
    );
    fairness_row(&runtime, "bb8", bb8_pool(&runtime, FAIR_CONNECTIONS));
    fairness_row(&runtime, "qp", qp_pool(&runtime, FAIR_CONNECTIONS));
}

fn pg_url() -> String {
    std::env::var("FLOWBED_PG_URL").unwrap_or_else(|_| PG_DEFAULT_URL.to_owned())
}

fn pg_config() -> flowbed_pool::postgres::Config {
    let url = pg_url();
    url.parse()
        .unwrap_or_else(|e| panic!("FLOWBED_PG_URL {url:?} is not a connection string: {e}"))
}

/// Connects once, so an unreachable server fails the bench with a clear message.
async fn pg_probe() {
    let url = pg_url();
    let config = pg_config();
    let connect = config.connect(flowbed_pool::postgres::NoTls);
    match tokio::time::timeout(Duration::from_secs(10), connect).await {
        Ok(Ok((client, connection))) => {
            drop(client);
            let _ = connection.await;
        }
        Ok(Err(e)) => panic!(
            "pool_postgres_select1: PostgreSQL is unreachable at {url}: {e}. Start it \
             (ci/services.sh), set FLOWBED_PG_URL, or filter the group out"
        ),
        Err(_) => panic!("pool_postgres_select1: connecting to {url} took over 10 s"),
    }
}

/// `SELECT 1` over the simple-query protocol; asserts that exactly one row came back.
async fn select1(client: &flowbed_pool::postgres::Client) {
    let messages = client
        .simple_query("SELECT 1")
        .await
        .expect("SELECT 1 failed");
    let rows = messages
        .iter()
        .filter(|m| matches!(m, SimpleQueryMessage::Row(_)))
        .count();
    assert_eq!(rows, 1, "SELECT 1 returned {rows} rows");
}

type FlowbedPgPool = flowbed_pool::Pool<flowbed_pool::postgres::PgManager>;
type Bb8PgPool = bb8::Pool<bb8_postgres::PostgresConnectionManager<flowbed_pool::postgres::NoTls>>;

impl Workload for FlowbedPgPool {
    async fn once(&self) {
        let conn = self.get().await.expect("flowbed get");
        select1(&conn).await;
    }
}

impl Workload for deadpool_postgres::Pool {
    async fn once(&self) {
        let conn = self.get().await.expect("deadpool-postgres get");
        select1(&conn).await;
    }
}

impl Workload for Bb8PgPool {
    async fn once(&self) {
        let conn = self.get().await.expect("bb8-postgres get");
        select1(&conn).await;
    }
}

/// Takes `n` connections at once through `get_one` and returns them.
async fn pg_fill<T, F: Future<Output = T>>(n: usize, mut get_one: impl FnMut() -> F) {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        held.push(get_one().await);
    }
}

fn postgres_select1(c: &mut Criterion) {
    let mut group = c.benchmark_group("pool_postgres_select1");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    let runtime = multi_thread_runtime(2);
    // Pools are made on first use, so a filter that leaves the group out needs no server.
    let mut probed = false;
    let mut probe = |runtime: &Runtime| {
        if !std::mem::replace(&mut probed, true) {
            runtime.block_on(pg_probe());
        }
    };

    let mut flowbed: Option<FlowbedPgPool> = None;
    group.bench_function("flowbed", |b| {
        let pool = flowbed.get_or_insert_with(|| {
            probe(&runtime);
            let pool = flowbed_pool::Pool::builder(flowbed_pool::postgres::PgManager::new(
                pg_config(),
                flowbed_pool::postgres::NoTls,
            ))
            .max_size(PG_CONNECTIONS)
            .runtime(runtime.handle().clone())
            .build()
            .expect("valid flowbed pool");
            runtime.block_on(pg_fill(PG_CONNECTIONS, || async {
                pool.get().await.expect("flowbed connect")
            }));
            pool
        });
        b.iter_custom(|iters| run_tasks(&runtime, "flowbed", pool, PG_TASKS, iters))
    });
    drop(flowbed);

    let mut deadpool: Option<deadpool_postgres::Pool> = None;
    group.bench_function("deadpool_postgres", |b| {
        let pool = deadpool.get_or_insert_with(|| {
            probe(&runtime);
            let manager = deadpool_postgres::Manager::from_config(
                pg_config(),
                flowbed_pool::postgres::NoTls,
                deadpool_postgres::ManagerConfig {
                    recycling_method: deadpool_postgres::RecyclingMethod::Fast,
                },
            );
            let pool = deadpool_postgres::Pool::builder(manager)
                .max_size(PG_CONNECTIONS)
                .wait_timeout(Some(WAIT_TIMEOUT))
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .build()
                .expect("valid deadpool-postgres pool");
            runtime.block_on(pg_fill(PG_CONNECTIONS, || async {
                pool.get().await.expect("deadpool-postgres connect")
            }));
            pool
        });
        b.iter_custom(|iters| run_tasks(&runtime, "deadpool_postgres", pool, PG_TASKS, iters))
    });
    drop(deadpool);

    let mut bb8: Option<Bb8PgPool> = None;
    group.bench_function("bb8_postgres", |b| {
        let pool = bb8.get_or_insert_with(|| {
            probe(&runtime);
            let manager = bb8_postgres::PostgresConnectionManager::new(
                pg_config(),
                flowbed_pool::postgres::NoTls,
            );
            let pool = runtime
                .block_on(
                    bb8::Pool::builder()
                        .max_size(PG_CONNECTIONS as u32)
                        .test_on_check_out(false)
                        .build(manager),
                )
                .expect("valid bb8-postgres pool");
            runtime.block_on(pg_fill(PG_CONNECTIONS, || async {
                pool.get().await.expect("bb8-postgres connect")
            }));
            pool
        });
        b.iter_custom(|iters| run_tasks(&runtime, "bb8_postgres", pool, PG_TASKS, iters))
    });
    drop(bb8);
    group.finish();
}

criterion_group!(
    benches,
    get_drop_uncontended,
    get_drop_16conn_64tasks,
    get_drop_8conn_256tasks,
    blocking_get_drop,
    blocking_get_drop_2threads,
    fairness_wait_p9999,
    postgres_select1
);

fn main() {
    if std::env::var_os("FLOWBED_POOL_FAIRNESS").is_some() {
        fairness_report();
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
