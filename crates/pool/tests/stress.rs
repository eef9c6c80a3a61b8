//! Many tasks on a multi-thread runtime hammer one pool of 8 while about 30 % of their
//! `get` futures are cancelled at random points (a `select!` against a short sleep or a
//! few yields, an aborted task, a future dropped after 0-3 polls), holders keep
//! connections across awaits, and the manager fails creates and validations and reports
//! connections broken. Once everything has finished the counters must be exact: nobody
//! waiting, nothing in use, every open connection idle, `created - closed == size`, and
//! the manager's own count of live connections equal to the pool's size; the pool then
//! still hands out `max_size` connections at once. Variants: `fail_fast`, and `close()`
//! racing the load (every `get` ends `Ok` or `Closed`, nothing hangs).
//!
//! Real time runs here (create backoff, the cancelling sleeps) but nothing asserts on it;
//! hangs are caught by a generous timeout that fails the test.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Duration;

use flowbed_pool::{CloseReason, Manager, Pool, PoolError, Pooled, Stats};
use tokio::sync::Notify;
use tokio::task::{JoinHandle, yield_now};

const MAX_SIZE: usize = 8;
const TASKS: u64 = if cfg!(miri) { 4 } else { 64 };
const GETS_PER_TASK: u64 = if cfg!(miri) { 10 } else { 500 };
/// A hang (a lost wake-up, a leaked slot) fails the test after this long.
const HANG: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Refused(&'static str);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} refused", self.0)
    }
}

impl std::error::Error for Refused {}

/// A connection that counts itself in its manager's `live` counter until dropped.
#[derive(Debug)]
struct Conn {
    live: Arc<AtomicUsize>,
    broken: bool,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Fails `create_fail_pct` % of creates and `recycle_fail_pct` % of validations, refuses
/// 1 % of returns, reports connections broken when their holder marked them, and yields
/// inside creates and validations (so cancellations land mid-check).
#[derive(Debug)]
struct Flaky {
    live: Arc<AtomicUsize>,
    draws: AtomicU64,
    create_fail_pct: u64,
    recycle_fail_pct: u64,
}

impl Flaky {
    fn new(create_fail_pct: u64, recycle_fail_pct: u64) -> Self {
        Self {
            live: Arc::new(AtomicUsize::new(0)),
            draws: AtomicU64::new(0),
            create_fail_pct,
            recycle_fail_pct,
        }
    }

    fn draw(&self) -> u64 {
        splitmix64(self.draws.fetch_add(1, Ordering::Relaxed))
    }

    fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }
}

impl Manager for Flaky {
    type Connection = Conn;
    type Error = Refused;

    async fn create(&self) -> Result<Conn, Refused> {
        let draw = self.draw();
        if draw % 4 == 0 {
            yield_now().await;
        }
        if (draw >> 8) % 100 < self.create_fail_pct {
            return Err(Refused("create"));
        }
        self.live.fetch_add(1, Ordering::SeqCst);
        Ok(Conn {
            live: Arc::clone(&self.live),
            broken: false,
        })
    }

    async fn recycle(&self, _conn: &mut Conn) -> Result<(), Refused> {
        let draw = self.draw();
        if draw % 3 == 0 {
            yield_now().await;
        }
        if (draw >> 8) % 100 < self.recycle_fail_pct {
            return Err(Refused("validation"));
        }
        Ok(())
    }

    fn is_broken(&self, conn: &Conn) -> bool {
        conn.broken
    }

    fn after_return(&self, _conn: &mut Conn) -> bool {
        self.draw() % 100 != 0
    }
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A task's random draws (seeded per task: the same draws every run, only the
/// interleaving varies).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(1);
        splitmix64(self.0) % n
    }
}

#[derive(Debug, Clone, Copy)]
struct Scenario {
    fail_fast: bool,
    /// Close the pool once this many gets have been attempted.
    close_after: Option<u64>,
}

/// What the load did, summed over tasks.
#[derive(Debug, Default)]
struct Tally {
    attempts: AtomicU64,
    got: AtomicU64,
    /// `get` futures dropped (or their task aborted) before they finished.
    cancelled: AtomicU64,
    errors: AtomicU64,
}

type FlakyPool = Pool<Flaky>;
type GetResult = Result<Pooled<Flaky>, PoolError<Refused>>;

/// Fails on an error this scenario does not allow.
fn check(result: &GetResult, scenario: Scenario) {
    match result {
        Ok(_) => {}
        Err(PoolError::Closed) if scenario.close_after.is_some() => {}
        Err(PoolError::Create(_) | PoolError::Recycle(_)) if scenario.fail_fast => {}
        Err(error) => panic!("unexpected error in {scenario:?}: {error}"),
    }
}

/// Uses a connection: maybe marks it broken or detaches it, holds it across 0-2 yields.
async fn hold(result: GetResult, scenario: Scenario, rng: &mut Rng, tally: &Tally) {
    check(&result, scenario);
    let Ok(mut conn) = result else {
        tally.errors.fetch_add(1, Ordering::Relaxed);
        return;
    };
    tally.got.fetch_add(1, Ordering::Relaxed);
    match rng.below(100) {
        0..5 => conn.broken = true,
        5 => {
            drop(conn.detach());
            return;
        }
        _ => {}
    }
    for _ in 0..rng.below(3) {
        yield_now().await;
    }
    drop(conn);
}

/// Yields `n` times.
async fn yields(n: u64) {
    for _ in 0..n {
        yield_now().await;
    }
}

/// Polls `future` up to `polls` times (yielding between polls) and drops it if it has
/// not finished: its output, or `None`.
async fn poll_then_drop<F: Future>(future: F, polls: u64) -> Option<F::Output> {
    let mut future = pin!(future);
    for _ in 0..polls {
        if let Poll::Ready(output) = poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await {
            return Some(output);
        }
        yield_now().await;
    }
    None
}

/// Awaits a task, passing on its panic.
async fn join<T>(task: JoinHandle<T>) -> Option<T> {
    match task.await {
        Ok(output) => Some(output),
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(_cancelled) => None,
    }
}

/// One task's `GETS_PER_TASK` gets, about 30 % of them cancelled.
async fn load(
    pool: FlakyPool,
    scenario: Scenario,
    seed: u64,
    tally: Arc<Tally>,
    close_now: Arc<Notify>,
) {
    let mut rng = Rng(seed.wrapping_mul(0x1000_0000_01B3));
    for _ in 0..GETS_PER_TASK {
        let attempt = tally.attempts.fetch_add(1, Ordering::Relaxed) + 1;
        if scenario.close_after == Some(attempt) {
            close_now.notify_one();
        }
        match rng.below(100) {
            // Raced against a short sleep.
            0..8 => {
                let sleep = tokio::time::sleep(Duration::from_micros(rng.below(200)));
                tokio::select! {
                    result = pool.get() => hold(result, scenario, &mut rng, &tally).await,
                    () = sleep => { tally.cancelled.fetch_add(1, Ordering::Relaxed); }
                }
            }
            // Raced against a few yields.
            8..16 => {
                tokio::select! {
                    result = pool.get() => hold(result, scenario, &mut rng, &tally).await,
                    () = yields(rng.below(4)) => { tally.cancelled.fetch_add(1, Ordering::Relaxed); }
                }
            }
            // In a task of its own, aborted after a few yields.
            16..23 => {
                let (inner_pool, inner_tally) = (pool.clone(), Arc::clone(&tally));
                let inner_seed = rng.below(u64::MAX);
                let task = tokio::spawn(async move {
                    let mut rng = Rng(inner_seed);
                    let result = inner_pool.get().await;
                    hold(result, scenario, &mut rng, &inner_tally).await;
                });
                yields(rng.below(4)).await;
                task.abort();
                if join(task).await.is_none() {
                    tally.cancelled.fetch_add(1, Ordering::Relaxed);
                }
            }
            // Dropped after 0-3 polls.
            23..30 => {
                let polls = rng.below(4);
                match poll_then_drop(pool.get(), polls).await {
                    Some(result) => hold(result, scenario, &mut rng, &tally).await,
                    None => {
                        tally.cancelled.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            // Never waits.
            30..35 => match pool.try_get().await {
                Ok(Some(conn)) => hold(Ok(conn), scenario, &mut rng, &tally).await,
                Ok(None) => {}
                Err(error) => hold(Err(error), scenario, &mut rng, &tally).await,
            },
            _ => {
                let result = pool.get().await;
                hold(result, scenario, &mut rng, &tally).await;
            }
        }
    }
}

fn build(scenario: Scenario) -> FlakyPool {
    let (create_fail_pct, recycle_fail_pct) = (10, 5);
    Pool::builder(Flaky::new(create_fail_pct, recycle_fail_pct))
        .max_size(MAX_SIZE)
        .min_idle(2)
        // Every checkout validates: more failures, and cancellations mid-check.
        .validate_after(Duration::ZERO)
        .fail_fast(scenario.fail_fast)
        .create_backoff(Duration::from_millis(1), Duration::from_millis(4))
        // Generous: a waiter stuck this long is a hang, and its `Timeout` fails the test.
        .wait_timeout(HANG)
        // Keep background maintenance out of the final counts.
        .maintenance_interval(Duration::from_secs(3600))
        .build()
        .unwrap()
}

/// Waits (bounded) until no creation is in flight and every connection the manager made
/// and the pool has not closed is counted in `size`: connections closed after the
/// pool's lock is released are dropped a moment later.
async fn settle(pool: &FlakyPool) -> Stats {
    let settled = tokio::time::timeout(HANG, async {
        loop {
            let stats = pool.stats();
            if stats.creating == 0 && pool.manager().live() == stats.size {
                return stats;
            }
            yield_now().await;
        }
    })
    .await;
    match settled {
        Ok(stats) => stats,
        Err(_) => panic!(
            "never settled: {:?}, manager's live connections {}",
            pool.stats(),
            pool.manager().live()
        ),
    }
}

/// The counts of a pool nobody is using.
fn assert_quiet(stats: &Stats, live: usize) {
    assert_eq!(stats.waiters, 0, "waiters left: {stats:?}");
    assert_eq!(stats.in_use, 0, "connections still in use: {stats:?}");
    assert_eq!(stats.size, stats.idle, "open but not idle: {stats:?}");
    assert!(stats.size <= MAX_SIZE, "over max_size: {stats:?}");
    assert_eq!(
        stats.created - stats.closed_total(),
        stats.size as u64,
        "created - closed != size: {stats:?}"
    );
    assert_eq!(
        live, stats.size,
        "manager's live connections vs size: {stats:?}"
    );
}

async fn run(scenario: Scenario) -> (FlakyPool, Tally) {
    let pool = build(scenario);
    let tally = Arc::new(Tally::default());
    let close_now = Arc::new(Notify::new());
    let closer = scenario.close_after.map(|_| {
        let (pool, close_now) = (pool.clone(), Arc::clone(&close_now));
        tokio::spawn(async move {
            close_now.notified().await;
            pool.close();
        })
    });
    let tasks: Vec<_> = (0..TASKS)
        .map(|seed| {
            tokio::spawn(load(
                pool.clone(),
                scenario,
                seed,
                Arc::clone(&tally),
                Arc::clone(&close_now),
            ))
        })
        .collect();
    let all = async {
        for task in tasks {
            join(task).await.expect("load tasks are not aborted");
        }
        if let Some(closer) = closer {
            join(closer).await.expect("the closer is not aborted");
        }
    };
    if tokio::time::timeout(HANG, all).await.is_err() {
        panic!("the load hung: {:?}", pool.stats());
    }
    let tally = Arc::into_inner(tally).expect("every task is done");
    assert_eq!(
        tally.attempts.load(Ordering::Relaxed),
        TASKS * GETS_PER_TASK
    );
    assert!(
        tally.cancelled.load(Ordering::Relaxed) > 0,
        "nothing was cancelled"
    );
    assert!(
        tally.got.load(Ordering::Relaxed) > 0,
        "nobody got a connection"
    );
    (pool, tally)
}

/// After the load, the pool still serves `max_size` holders at once (no slot leaked as
/// "open"), then closes down to nothing. With fail-fast, a failed create or check is
/// tried again.
async fn serves_max_size_then_closes(pool: &FlakyPool, scenario: Scenario) {
    let mut held = Vec::new();
    while held.len() < MAX_SIZE {
        let result = pool.get().await;
        check(&result, scenario);
        held.extend(result.ok());
    }
    let stats = pool.stats();
    assert_eq!(
        (stats.size, stats.in_use),
        (MAX_SIZE, MAX_SIZE),
        "{stats:?}"
    );
    drop(held);
    pool.close();
    let stats = settle(pool).await;
    assert_quiet(&stats, pool.manager().live());
    assert_eq!(stats.size, 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelled_gets_leak_nothing() {
    let scenario = Scenario {
        fail_fast: false,
        close_after: None,
    };
    let (pool, tally) = run(scenario).await;
    assert_eq!(tally.errors.load(Ordering::Relaxed), 0);
    let stats = settle(&pool).await;
    assert_quiet(&stats, pool.manager().live());
    assert!(stats.closed_for(CloseReason::Broken) > 0, "{stats:?}");
    assert!(stats.closed_for(CloseReason::CheckFailed) > 0, "{stats:?}");
    assert!(stats.create_failures > 0, "{stats:?}");
    serves_max_size_then_closes(&pool, scenario).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelled_gets_leak_nothing_with_fail_fast() {
    let scenario = Scenario {
        fail_fast: true,
        close_after: None,
    };
    let (pool, _tally) = run(scenario).await;
    let stats = settle(&pool).await;
    assert_quiet(&stats, pool.manager().live());
    serves_max_size_then_closes(&pool, scenario).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn close_racing_the_load_ends_every_get() {
    let scenario = Scenario {
        fail_fast: false,
        close_after: Some(TASKS * GETS_PER_TASK / 3),
    };
    let (pool, tally) = run(scenario).await;
    assert!(pool.is_closed());
    assert!(
        tally.errors.load(Ordering::Relaxed) > 0,
        "nobody saw Closed"
    );
    let stats = settle(&pool).await;
    assert_quiet(&stats, pool.manager().live());
    assert_eq!(
        stats.size, 0,
        "connections left open after close: {stats:?}"
    );
    assert!(matches!(pool.get().await, Err(PoolError::Closed)));
}
