//! Scenario tests of every behaviour of the pool (issue 6, Build 1-7) on paused tokio time with a fault-injecting manager.

mod common;

use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use common::{
    Fault, TestManager, TestPool, builder, manager, ms, poll_once, secs, timeout_parts, until,
};
use flowbed_pool::{
    BuildError, Builder, CloseReason, CreateError, IdleOrder, LeakReport, ManualClock, Pool,
    PoolError, ResizeError,
};
use tokio::time::Instant;

fn ids(conns: &[flowbed_pool::Pooled<TestManager>]) -> Vec<u64> {
    conns.iter().map(|conn| conn.id).collect()
}

/// Asserts the pool's sizes: (size, idle, in_use, waiters, creating).
#[track_caller]
fn assert_sizes(pool: &TestPool, expected: (usize, usize, usize, usize, usize)) {
    let stats = pool.stats();
    assert_eq!(
        (
            stats.size,
            stats.idle,
            stats.in_use,
            stats.waiters,
            stats.creating
        ),
        expected,
        "(size, idle, in_use, waiters, creating) of {stats:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Creation failures and hangs: Timeout at exactly the wait timeout, last error, recovery.
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn failing_create_times_out_at_exactly_the_wait_timeout_with_the_last_error() {
    let (builder, faults) = builder();
    faults.set_create(Fault::Fail);
    let pool = builder.max_size(2).wait_timeout(secs(2)).build().unwrap();
    let start = Instant::now();
    let (waited, last) = timeout_parts(pool.get().await);
    assert_eq!(start.elapsed(), secs(2));
    assert_eq!(waited, secs(2));
    // Attempts at 0, 50, 150, 350, 750 and 1550 ms (backoff 50 ms doubling): the sixth
    // failure is the one reported.
    assert_eq!(faults.attempts(), 6);
    match last.as_deref() {
        Some(CreateError::Failed(error)) => assert_eq!(error.0, "create 6 refused"),
        other => panic!("expected Failed, got {other:?}"),
    }
    let stats = pool.stats();
    assert_eq!(
        (stats.timeouts, stats.create_failures, stats.created),
        (1, 6, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn hanging_create_times_out_with_timed_out_when_create_timeout_is_shorter() {
    let (builder, faults) = builder();
    faults.set_create(Fault::Hang);
    let pool = builder
        .wait_timeout(secs(3))
        .create_timeout(secs(1))
        .build()
        .unwrap();
    let start = Instant::now();
    let (waited, last) = timeout_parts(pool.get().await);
    assert_eq!((start.elapsed(), waited), (secs(3), secs(3)));
    assert!(
        matches!(last.as_deref(), Some(CreateError::TimedOut(d)) if *d == secs(1)),
        "{last:?}"
    );
    // Attempts at 0, 1.05 s and 2.15 s; each hung attempt is dropped at its timeout.
    assert_eq!(faults.attempts(), 3);
    assert_eq!(faults.peak_in_create(), 1);
    assert_eq!(pool.stats().create_failures, 2);
    // Nobody wants a connection any more: the third attempt times out and is not retried.
    tokio::time::sleep(secs(60)).await;
    assert_eq!(faults.attempts(), 3);
    assert_eq!(faults.in_create(), 0);
    assert_sizes(&pool, (0, 0, 0, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn hanging_create_longer_than_the_wait_has_no_last_error() {
    let (builder, faults) = builder();
    faults.set_create(Fault::Hang);
    let pool = builder.wait_timeout(secs(2)).build().unwrap(); // create_timeout 10 s
    let start = Instant::now();
    let (waited, last) = timeout_parts(pool.get().await);
    assert_eq!((start.elapsed(), waited), (secs(2), secs(2)));
    assert!(last.is_none(), "{last:?}");
    assert_eq!(faults.attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn pool_recovers_when_a_hanging_manager_heals() {
    let (builder, faults) = builder();
    faults.set_create(Fault::Hang);
    let pool = builder
        .wait_timeout(secs(30))
        .create_timeout(secs(1))
        .build()
        .unwrap();
    let start = Instant::now();
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.map(|conn| conn.id) }
    });
    // Attempt 1 times out at 1 s; attempt 2 starts at 1.05 s and hangs until 2.05 s.
    tokio::time::sleep(ms(1_500)).await;
    faults.set_create(Fault::Ok);
    assert_eq!(waiter.await.unwrap().unwrap(), 1);
    // Attempt 3 (after a 100 ms backoff) is the first of the healed manager.
    assert_eq!(start.elapsed(), ms(2_150));
    assert_eq!(faults.attempts(), 3);
    let stats = pool.stats();
    assert_eq!(
        (stats.created, stats.create_failures, stats.idle),
        (1, 2, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn failed_creates_are_retried_in_the_background_until_the_waiter_is_served() {
    let (builder, faults) = builder();
    faults.fail_creates(3);
    let pool = builder.wait_forever().build().unwrap();
    let start = Instant::now();
    let conn = pool.get().await.unwrap();
    assert_eq!(start.elapsed(), ms(50 + 100 + 200));
    assert_eq!(faults.attempts(), 4);
    assert_eq!(conn.id, 1);
    assert_eq!(pool.stats().create_failures, 3);
}

#[tokio::test(start_paused = true)]
async fn create_backoff_doubles_and_is_capped() {
    let (builder, faults) = builder();
    faults.fail_creates(8);
    let pool = builder
        .wait_forever()
        .create_backoff(ms(10), ms(80))
        .build()
        .unwrap();
    let start = Instant::now();
    let _conn = pool.get().await.unwrap();
    assert_eq!(faults.attempts(), 9);
    assert_eq!(
        faults.attempt_gaps(),
        [10, 20, 40, 80, 80, 80, 80, 80].map(ms).to_vec()
    );
    assert_eq!(start.elapsed(), ms(470));
}

#[tokio::test(start_paused = true)]
async fn retries_stop_when_nobody_wants_a_connection_and_restart_for_the_next_caller() {
    let (builder, faults) = builder();
    faults.set_create(Fault::Fail);
    let pool = builder.wait_timeout(ms(100)).build().unwrap();
    assert!(pool.get().await.unwrap_err().is_timeout());
    let after_timeout = faults.attempts();
    assert_eq!(after_timeout, 2); // 0 and 50 ms
    tokio::time::sleep(secs(600)).await;
    assert_eq!(
        faults.attempts(),
        after_timeout,
        "no retries once nobody waits"
    );
    assert_sizes(&pool, (0, 0, 0, 0, 0));
    // The manager heals; the next caller starts a fresh create and is served at once.
    faults.set_create(Fault::Ok);
    let start = Instant::now();
    let conn = pool.get().await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(conn.id, 1);
    assert_eq!(faults.attempts(), after_timeout + 1);
}

#[tokio::test(start_paused = true)]
async fn a_later_timeout_carries_no_stale_create_error_once_a_create_succeeded() {
    let (builder, faults) = builder();
    faults.fail_creates(1);
    let pool = builder.max_size(1).wait_timeout(secs(1)).build().unwrap();
    let held = pool.get().await.unwrap(); // second attempt succeeds
    let (_, last) = timeout_parts(pool.get().await); // full pool, nothing failing
    assert!(last.is_none(), "{last:?}");
    drop(held);
}

#[tokio::test(start_paused = true)]
async fn after_create_error_counts_as_a_create_failure() {
    let (builder, faults) = builder();
    faults.fail_after_creates(1);
    let pool = builder.wait_forever().build().unwrap();
    let start = Instant::now();
    let conn = pool.get().await.unwrap();
    assert_eq!(start.elapsed(), ms(50));
    assert_eq!(
        conn.id, 2,
        "the connection whose after_create failed is not used"
    );
    assert_eq!(faults.dropped_ids(), [1], "and it is closed");
    assert_eq!(faults.after_creates(), 2);
    let stats = pool.stats();
    assert_eq!(
        (stats.created, stats.create_failures, stats.size),
        (1, 1, 1)
    );
}

// ---------------------------------------------------------------------------------------
// fail_fast
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn fail_fast_hands_a_create_error_to_the_oldest_waiter() {
    let (builder, faults) = builder();
    faults.gate_creates();
    let pool = builder.max_size(1).fail_fast(true).build().unwrap();
    let first = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.map(|conn| conn.id) }
    });
    until("first waits", || pool.stats().waiters == 1).await;
    let second = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.map(|conn| conn.id) }
    });
    until("second waits", || pool.stats().waiters == 2).await;
    assert_eq!(
        faults.attempts(),
        1,
        "max_size 1: one create for two waiters"
    );
    faults.fail_creates(1);
    faults.ungate_creates();
    match first.await.unwrap() {
        Err(PoolError::Create(error)) => match &*error {
            CreateError::Failed(error) => assert_eq!(error.0, "create 1 refused"),
            other => panic!("{other:?}"),
        },
        other => panic!("expected Create, got {other:?}"),
    }
    // The second waiter is still wanted: the retry serves it.
    assert_eq!(second.await.unwrap().unwrap(), 1);
    assert_eq!(faults.attempts(), 2);
    assert_eq!(pool.stats().create_failures, 1);
}

#[tokio::test(start_paused = true)]
async fn fail_fast_hands_a_create_timeout_to_the_waiter() {
    let (builder, faults) = builder();
    faults.set_create(Fault::Hang);
    let pool = builder
        .fail_fast(true)
        .create_timeout(secs(1))
        .build()
        .unwrap();
    let start = Instant::now();
    match pool.get().await {
        Err(PoolError::Create(error)) => {
            assert!(
                matches!(&*error, CreateError::TimedOut(d) if *d == secs(1)),
                "{error:?}"
            );
        }
        other => panic!("expected Create, got {other:?}"),
    }
    assert_eq!(start.elapsed(), secs(1));
}

#[tokio::test(start_paused = true)]
async fn fail_fast_recycle_failure_is_returned_as_recycle() {
    let (builder, faults) = builder();
    let pool = builder.fail_fast(true).build().unwrap();
    drop(pool.get().await.unwrap());
    tokio::time::sleep(ms(500)).await; // past validate_after
    faults.fail_recycles(1);
    match pool.get().await {
        Err(PoolError::Recycle(error)) => assert_eq!(error.0, "recycle 1 of conn 1 failed"),
        other => panic!("expected Recycle, got {other:?}"),
    }
    assert_eq!(pool.stats().closed_for(CloseReason::CheckFailed), 1);
    assert_eq!(faults.dropped_ids(), [1]);
    assert_sizes(&pool, (0, 0, 0, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn fail_fast_recycle_hang_is_returned_as_recycle_timeout() {
    let (builder, faults) = builder();
    let pool = builder
        .fail_fast(true)
        .recycle_timeout(secs(2))
        .build()
        .unwrap();
    drop(pool.get().await.unwrap());
    tokio::time::sleep(secs(1)).await;
    faults.hang_recycles(1);
    let start = Instant::now();
    match pool.get().await {
        Err(PoolError::RecycleTimeout(d)) => assert_eq!(d, secs(2)),
        other => panic!("expected RecycleTimeout, got {other:?}"),
    }
    assert_eq!(start.elapsed(), secs(2));
    assert_eq!(pool.stats().closed_for(CloseReason::CheckFailed), 1);
    assert_sizes(&pool, (0, 0, 0, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn the_wait_timeout_bounds_the_whole_get_including_checks() {
    // Three idle connections whose checks each hang until recycle_timeout (1 s): checking
    // them all one after the other would take 3 s, but the caller asked to wait 2 s at most.
    let (builder, faults) = builder();
    let pool = builder
        .wait_timeout(secs(2))
        .recycle_timeout(secs(1))
        .build()
        .unwrap();
    let conns = vec![
        pool.get().await.unwrap(),
        pool.get().await.unwrap(),
        pool.get().await.unwrap(),
    ];
    drop(conns);
    tokio::time::sleep(secs(1)).await; // past validate_after
    faults.set_recycle(Fault::Hang);
    let start = Instant::now();
    let result = pool.get().await;
    let took = start.elapsed();
    assert!(
        took <= secs(2),
        "get() returned after {took:?}, past its 2 s wait timeout ({} checks ran): {:?}",
        faults.recycles(),
        result.as_ref().map(|conn| conn.id)
    );
    if let Err(error) = result {
        assert!(error.is_timeout(), "{error:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn without_fail_fast_a_failed_check_is_replaced_silently() {
    let (builder, faults) = builder();
    let pool = builder.recycle_timeout(secs(2)).build().unwrap();
    drop(pool.get().await.unwrap());
    tokio::time::sleep(secs(1)).await;
    faults.fail_recycles(1);
    let conn = pool.get().await.unwrap();
    assert_eq!(conn.id, 2);
    drop(conn);
    tokio::time::sleep(secs(1)).await;
    faults.hang_recycles(1);
    let start = Instant::now();
    let conn = pool.get().await.unwrap();
    assert_eq!(
        start.elapsed(),
        secs(2),
        "the hung check is abandoned at recycle_timeout"
    );
    assert_eq!(conn.id, 3);
    assert_eq!(faults.recycles(), 2);
    assert_eq!(pool.stats().closed_for(CloseReason::CheckFailed), 2);
    assert_eq!(faults.dropped_ids(), [1, 2]);
}

// ---------------------------------------------------------------------------------------
// No creation storms.
// ---------------------------------------------------------------------------------------

async fn storm(pool: &TestPool, callers: usize) -> Vec<u64> {
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let conn = pool.get().await.unwrap();
                tokio::time::sleep(ms(1)).await;
                conn.id
            })
        })
        .collect();
    let mut served = Vec::new();
    for task in tasks {
        served.push(task.await.unwrap());
    }
    served
}

#[tokio::test(start_paused = true)]
async fn two_hundred_cold_gets_create_at_most_max_size_and_all_are_served() {
    let (builder, faults) = builder();
    faults.create_delay(ms(10));
    let pool = builder.max_size(8).build().unwrap();
    let served = storm(&pool, 200).await;
    assert_eq!(served.len(), 200);
    assert!(served.iter().all(|id| (1..=8).contains(id)), "{served:?}");
    assert_eq!(faults.attempts(), 8);
    assert_eq!(
        faults.peak_in_create(),
        8,
        "all eight open concurrently, no more"
    );
    assert_eq!(faults.peak_live(), 8);
    let stats = pool.stats();
    assert_eq!((stats.created, stats.size, stats.idle), (8, 8, 8));
    assert_eq!((stats.waiters, stats.creating, stats.timeouts), (0, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn cold_storm_with_min_idle_and_failing_creates_still_stays_within_max_size() {
    let (builder, faults) = builder();
    faults.create_delay(ms(10));
    faults.fail_creates(6);
    let pool = builder.max_size(8).min_idle(4).build().unwrap();
    let served = storm(&pool, 200).await;
    assert_eq!(served.len(), 200);
    assert_eq!(faults.made(), 8);
    assert_eq!(faults.attempts(), 8 + 6);
    assert!(faults.peak_in_create() <= 8, "{}", faults.peak_in_create());
    assert_eq!(faults.peak_live(), 8);
    assert_eq!(pool.stats().size, 8);
}

// ---------------------------------------------------------------------------------------
// Strict FIFO hand-off.
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_waiter_handed_a_bad_connection_keeps_its_turn() {
    let (builder, faults) = builder();
    let pool = builder.max_size(1).build().unwrap();
    let held = pool.get().await.unwrap();
    let first_id = held.id;
    faults.refuse_checkout(first_id); // whoever is handed it next throws it away
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for name in ["first", "second"] {
        let (pool2, order) = (pool.clone(), Arc::clone(&order));
        tasks.push(tokio::spawn(async move {
            let conn = pool2.get().await.unwrap();
            order.lock().unwrap().push((name, conn.id));
            tokio::task::yield_now().await;
            drop(conn);
        }));
        let queued = tasks.len();
        until("queued", || pool.stats().waiters == queued).await;
    }
    drop(held);
    for task in tasks {
        task.await.unwrap();
    }
    // "first" got the refused connection, dropped it, and still went before "second".
    let order = order.lock().unwrap().clone();
    assert_eq!(
        order.iter().map(|(name, _)| *name).collect::<Vec<_>>(),
        ["first", "second"]
    );
    assert!(order.iter().all(|(_, id)| *id != first_id));
    assert_eq!(pool.stats().waits, 3, "a re-queue is not a new wait");
}

#[tokio::test(start_paused = true)]
async fn waiters_are_served_in_arrival_order() {
    let (builder, _faults) = builder();
    let pool = builder.max_size(1).build().unwrap();
    let held = pool.get().await.unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..10 {
        let pool2 = pool.clone();
        let order = Arc::clone(&order);
        tasks.push(tokio::spawn(async move {
            let conn = pool2.get().await.unwrap();
            order.lock().unwrap().push(i);
            tokio::task::yield_now().await;
            drop(conn);
        }));
        until("queued", || pool.stats().waiters == i + 1).await;
    }
    drop(held);
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), (0..10).collect::<Vec<_>>());
    let stats = pool.stats();
    assert_eq!((stats.waits, stats.created, stats.idle), (11, 1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_returned_connection_goes_to_the_waiter_not_a_newcomer() {
    let (builder, _faults) = builder();
    let pool = builder.max_size(1).build().unwrap();
    let held = pool.get().await.unwrap();
    let (got_tx, got_rx) = tokio::sync::oneshot::channel();
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let first = tokio::spawn({
        let pool = pool.clone();
        async move {
            let conn = pool.get().await.unwrap();
            got_tx.send(conn.id).unwrap();
            release_rx.await.unwrap();
        }
    });
    until("first queued", || pool.stats().waiters == 1).await;
    drop(held);
    // The waiter has not run yet, but the connection is already its own.
    assert!(pool.try_get().await.unwrap().is_none());
    assert_sizes(&pool, (1, 0, 1, 0, 0));
    let newcomer = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.unwrap().id }
    });
    until("newcomer queued", || pool.stats().waiters == 1).await;
    assert_eq!(got_rx.await.unwrap(), 1);
    assert!(!newcomer.is_finished());
    release_tx.send(()).unwrap();
    first.await.unwrap();
    assert_eq!(newcomer.await.unwrap(), 1);
}

// ---------------------------------------------------------------------------------------
// Sizing: min_idle, idle_timeout, max_lifetime, validation window, idle order.
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn min_idle_is_opened_when_the_pool_is_built() {
    let (builder, faults) = builder();
    let pool = builder.max_size(5).min_idle(3).build().unwrap();
    until("pre-warmed", || pool.stats().idle == 3).await;
    tokio::time::sleep(secs(10)).await;
    assert_eq!(faults.attempts(), 3);
    let stats = pool.stats();
    assert_eq!(
        (stats.created, stats.size, stats.idle, stats.waits),
        (3, 3, 3, 0)
    );
    // Served without waiting.
    assert!(pool.try_get().await.unwrap().is_some());
}

#[tokio::test(start_paused = true)]
async fn min_idle_is_replenished_in_the_background_after_checkouts() {
    let (builder, faults) = builder();
    let pool = builder
        .max_size(5)
        .min_idle(2)
        .maintenance_interval(secs(1))
        .build()
        .unwrap();
    until("pre-warmed", || pool.stats().idle == 2).await;
    let a = pool.get().await.unwrap();
    let b = pool.get().await.unwrap();
    assert_eq!(pool.stats().waits, 0);
    tokio::time::sleep(secs(1)).await; // one maintenance round
    until("replenished", || pool.stats().idle == 2).await;
    assert_sizes(&pool, (4, 2, 2, 0, 0));
    assert_eq!(faults.attempts(), 4);
    drop((a, b));
    assert_sizes(&pool, (4, 4, 0, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn min_idle_is_replenished_after_a_close() {
    let (builder, faults) = builder();
    let pool = builder.max_size(5).min_idle(2).build().unwrap(); // maintenance hourly
    until("pre-warmed", || pool.stats().idle == 2).await;
    let conn = pool.get().await.unwrap();
    faults.break_conn(conn.id);
    drop(conn);
    until("replaced", || pool.stats().idle == 2).await;
    assert_sizes(&pool, (2, 2, 0, 0, 0));
    assert_eq!(pool.stats().closed_for(CloseReason::Broken), 1);
    assert_eq!(faults.made(), 3);
}

#[tokio::test(start_paused = true)]
async fn idle_timeout_closes_idle_connections_down_to_min_idle() {
    let (builder, faults) = builder();
    let clock = ManualClock::new();
    let pool = builder
        .clock(clock.clone())
        .max_size(4)
        .min_idle(1)
        .idle_timeout(Some(secs(60)))
        .max_lifetime(None)
        .build()
        .unwrap();
    until("pre-warmed", || pool.stats().idle == 1).await;
    let conns = vec![
        pool.get().await.unwrap(),
        pool.get().await.unwrap(),
        pool.get().await.unwrap(),
    ];
    let mut expected = ids(&conns);
    expected.sort_unstable();
    assert_eq!(expected, [1, 2, 3]);
    drop(conns); // returned in the order 1, 2, 3
    until("all idle", || pool.stats().idle == 3).await;
    clock.advance(secs(60) - Duration::from_nanos(1));
    pool.maintain();
    assert_eq!(pool.stats().idle, 3);
    clock.advance(Duration::from_nanos(1));
    pool.maintain();
    let stats = pool.stats();
    assert_eq!((stats.idle, stats.size), (1, 1));
    assert_eq!(stats.closed_for(CloseReason::IdleTimeout), 2);
    assert_eq!(faults.dropped_ids(), [1, 2], "the longest idle go first");
    // min_idle is kept however long it idles.
    clock.advance(secs(3600));
    pool.maintain();
    assert_eq!(pool.stats().idle, 1);
    assert_eq!(pool.try_get().await.unwrap().unwrap().id, 3);
}

#[tokio::test(start_paused = true)]
async fn idle_timeout_spares_recently_used_connections() {
    let (builder, faults) = builder();
    let clock = ManualClock::new();
    let pool = builder
        .clock(clock.clone())
        .idle_timeout(Some(secs(60)))
        .idle_order(IdleOrder::Fifo)
        .build()
        .unwrap();
    let conns = vec![pool.get().await.unwrap(), pool.get().await.unwrap()];
    drop(conns);
    clock.advance(secs(30));
    let first = pool.get().await.unwrap(); // FIFO: connection 1, used again at 30 s
    assert_eq!(first.id, 1);
    drop(first);
    clock.advance(secs(30));
    pool.maintain();
    assert_eq!(faults.dropped_ids(), [2]);
    assert_eq!(pool.stats().idle, 1);
    clock.advance(secs(30));
    pool.maintain();
    assert_eq!(faults.dropped_ids(), [2, 1]);
    assert_sizes(&pool, (0, 0, 0, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn background_maintenance_expires_idle_connections_on_its_own() {
    let (builder, faults) = builder();
    let pool = builder
        .idle_timeout(Some(secs(60)))
        .maintenance_interval(secs(10))
        .build()
        .unwrap();
    drop(pool.get().await.unwrap());
    tokio::time::sleep(secs(59)).await;
    assert_eq!(pool.stats().idle, 1);
    tokio::time::sleep(secs(11)).await; // the round at 60 s
    assert_eq!(faults.dropped_ids(), [1]);
    assert_eq!(pool.stats().closed_for(CloseReason::IdleTimeout), 1);
}

#[tokio::test(start_paused = true)]
async fn max_lifetime_retires_idle_connections_on_maintain_and_min_idle_refills() {
    let (builder, faults) = builder();
    let clock = ManualClock::new();
    let pool = builder
        .clock(clock.clone())
        .min_idle(1)
        .max_lifetime(Some(secs(60)))
        .max_lifetime_jitter(secs(5))
        .idle_timeout(None)
        .build()
        .unwrap();
    until("pre-warmed", || pool.stats().idle == 1).await;
    clock.advance(secs(55) - Duration::from_nanos(1));
    pool.maintain();
    assert!(
        faults.dropped_ids().is_empty(),
        "retired before lifetime - jitter"
    );
    clock.advance(secs(5) + Duration::from_nanos(1));
    pool.maintain();
    assert_eq!(faults.dropped_ids(), [1]);
    assert_eq!(pool.stats().closed_for(CloseReason::MaxLifetime), 1);
    until("refilled", || pool.stats().idle == 1).await;
    assert_eq!(pool.get().await.unwrap().id, 2);
}

#[tokio::test(start_paused = true)]
async fn max_lifetime_retires_a_connection_when_it_comes_back() {
    let (builder, faults) = builder();
    let clock = ManualClock::new();
    let pool = builder
        .clock(clock.clone())
        .max_lifetime(Some(secs(60)))
        .build()
        .unwrap();
    let conn = pool.get().await.unwrap();
    clock.advance(secs(60));
    drop(conn);
    assert_eq!(faults.dropped_ids(), [1]);
    assert_eq!(pool.stats().closed_for(CloseReason::MaxLifetime), 1);
    assert_sizes(&pool, (0, 0, 0, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn max_lifetime_is_checked_at_checkout_too() {
    let (builder, faults) = builder();
    let clock = ManualClock::new();
    let pool = builder
        .clock(clock.clone())
        .max_lifetime(Some(secs(60)))
        .validate_after(secs(3600))
        .build()
        .unwrap();
    drop(pool.get().await.unwrap());
    clock.advance(secs(60));
    let conn = pool.get().await.unwrap(); // no maintain in between
    assert_eq!(conn.id, 2);
    assert_eq!(faults.dropped_ids(), [1]);
    assert_eq!(pool.stats().closed_for(CloseReason::MaxLifetime), 1);
}

/// Opens `n` connections at time zero and steps the clock through the jitter window,
/// returning how many retired at each step.
async fn retirements(lifetime: Duration, jitter: Option<Duration>, n: usize) -> Vec<usize> {
    let (builder, faults) = builder();
    let clock = ManualClock::new();
    let mut builder = builder
        .clock(clock.clone())
        .max_size(n)
        .min_idle(n)
        .idle_timeout(None)
        .max_lifetime(Some(lifetime));
    if let Some(jitter) = jitter {
        builder = builder.max_lifetime_jitter(jitter);
    }
    let pool = builder.build().unwrap();
    until("pre-warmed", || pool.stats().idle == n).await;
    let window = jitter.unwrap_or(lifetime / 40);
    clock.advance(lifetime - window - Duration::from_nanos(1));
    pool.maintain();
    assert!(
        faults.dropped_ids().is_empty(),
        "retired before lifetime - jitter"
    );
    let mut per_step = Vec::new();
    let steps = 10;
    let mut dropped = 0;
    for _ in 0..steps {
        clock.advance(window / steps);
        pool.maintain();
        let now = faults
            .dropped_ids()
            .iter()
            .filter(|&&id| id <= n as u64)
            .count();
        per_step.push(now - dropped);
        dropped = now;
    }
    clock.advance(Duration::from_nanos(1));
    pool.maintain();
    let originals = faults
        .dropped_ids()
        .iter()
        .filter(|&&id| id <= n as u64)
        .count();
    assert_eq!(originals, n, "all retired by max_lifetime");
    per_step
}

#[tokio::test(start_paused = true)]
async fn lifetime_jitter_spreads_retirements_within_its_bound() {
    let per_step = retirements(secs(100), Some(secs(10)), 20).await;
    let steps_with_retirements = per_step.iter().filter(|&&n| n > 0).count();
    assert!(
        steps_with_retirements >= 3,
        "retirements not spread: {per_step:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn default_lifetime_jitter_is_a_fortieth_of_the_lifetime() {
    let per_step = retirements(secs(400), None, 20).await; // jitter 10 s
    let steps_with_retirements = per_step.iter().filter(|&&n| n > 0).count();
    assert!(
        steps_with_retirements >= 3,
        "retirements not spread: {per_step:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn recently_used_connections_skip_validation() {
    let (builder, faults) = builder();
    let pool = builder.build().unwrap(); // validate_after 500 ms
    drop(pool.get().await.unwrap());
    drop(pool.get().await.unwrap());
    assert_eq!(faults.recycles(), 0);
    tokio::time::sleep(ms(499)).await;
    drop(pool.get().await.unwrap());
    assert_eq!(faults.recycles(), 0, "used 499 ms ago");
    tokio::time::sleep(ms(500)).await;
    drop(pool.get().await.unwrap());
    assert_eq!(faults.recycles(), 1, "used 500 ms ago");
    // Holding counts as use: returned just now, no check.
    let conn = pool.get().await.unwrap();
    tokio::time::sleep(secs(5)).await;
    drop(conn);
    drop(pool.get().await.unwrap());
    assert_eq!(faults.recycles(), 1);
}

#[tokio::test(start_paused = true)]
async fn validate_after_window_is_configurable() {
    let (builder, faults) = builder();
    let pool = builder.validate_after(secs(2)).build().unwrap();
    drop(pool.get().await.unwrap());
    tokio::time::sleep(ms(1_999)).await;
    drop(pool.get().await.unwrap());
    assert_eq!(faults.recycles(), 0);
    tokio::time::sleep(secs(2)).await;
    drop(pool.get().await.unwrap());
    assert_eq!(faults.recycles(), 1);

    let (builder, faults) = common::builder();
    let pool = builder
        .validate_after(Duration::from_nanos(1))
        .build()
        .unwrap();
    drop(pool.get().await.unwrap());
    tokio::time::sleep(ms(1)).await;
    drop(pool.get().await.unwrap());
    assert_eq!(
        faults.recycles(),
        1,
        "a tiny window checks every later checkout"
    );
}

async fn idle_order_pick(order: IdleOrder) -> u64 {
    let (builder, _faults) = builder();
    let pool = builder.idle_order(order).build().unwrap();
    let conns = vec![
        pool.get().await.unwrap(),
        pool.get().await.unwrap(),
        pool.get().await.unwrap(),
    ];
    assert_eq!(ids(&conns), [1, 2, 3]);
    drop(conns); // returned 1, then 2, then 3
    pool.get().await.unwrap().id
}

#[tokio::test(start_paused = true)]
async fn lifo_hands_out_the_most_recently_returned_connection() {
    assert_eq!(idle_order_pick(IdleOrder::Lifo).await, 3);
}

#[tokio::test(start_paused = true)]
async fn fifo_hands_out_the_least_recently_returned_connection() {
    assert_eq!(idle_order_pick(IdleOrder::Fifo).await, 1);
}

// ---------------------------------------------------------------------------------------
// is_broken and hooks.
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_broken_connection_is_closed_when_returned() {
    let (builder, faults) = builder();
    let pool = builder.build().unwrap();
    let conn = pool.get().await.unwrap();
    faults.break_conn(conn.id);
    drop(conn);
    assert_eq!(faults.dropped_ids(), [1]);
    assert_eq!(pool.stats().closed_for(CloseReason::Broken), 1);
    assert_eq!(
        faults.after_returns(),
        0,
        "after_return is not run on a broken connection"
    );
    assert_sizes(&pool, (0, 0, 0, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_broken_idle_connection_is_closed_at_checkout_and_the_caller_gets_another() {
    let (builder, faults) = builder();
    let pool = builder.build().unwrap();
    drop(pool.get().await.unwrap());
    faults.break_conn(1);
    let conn = pool.get().await.unwrap();
    assert_eq!(conn.id, 2);
    assert_eq!(faults.dropped_ids(), [1]);
    assert_eq!(faults.recycles(), 0);
    assert_eq!(pool.stats().closed_for(CloseReason::Broken), 1);
}

#[tokio::test(start_paused = true)]
async fn after_return_false_closes_the_connection() {
    let (builder, faults) = builder();
    let pool = builder.build().unwrap();
    let a = pool.get().await.unwrap();
    let b = pool.get().await.unwrap();
    faults.refuse_return(a.id);
    drop(a);
    drop(b);
    assert_eq!(faults.after_returns(), 2);
    assert_eq!(faults.dropped_ids(), [1]);
    assert_eq!(pool.stats().closed_for(CloseReason::Refused), 1);
    assert_sizes(&pool, (1, 1, 0, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn before_checkout_error_closes_and_the_caller_gets_another() {
    let (builder, faults) = builder();
    let pool = builder.build().unwrap();
    drop(pool.get().await.unwrap());
    faults.refuse_checkout(1);
    let conn = pool.get().await.unwrap();
    assert_eq!(conn.id, 2);
    assert_eq!(faults.before_checkouts(), 3);
    assert_eq!(faults.dropped_ids(), [1]);
    assert_eq!(pool.stats().closed_for(CloseReason::CheckFailed), 1);
}

#[tokio::test(start_paused = true)]
async fn before_checkout_error_with_fail_fast_is_returned_as_recycle() {
    let (builder, faults) = builder();
    let pool = builder.fail_fast(true).build().unwrap();
    faults.refuse_checkout(1);
    match pool.get().await {
        Err(PoolError::Recycle(error)) => assert_eq!(error.0, "before_checkout refused conn 1"),
        other => panic!("expected Recycle, got {other:?}"),
    }
    assert_eq!(faults.dropped_ids(), [1]);
    assert_sizes(&pool, (0, 0, 0, 0, 0));
}

// ---------------------------------------------------------------------------------------
// resize, close, retain, detach.
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn resize_up_serves_waiters_at_once() {
    let (builder, _faults) = builder();
    let pool = builder.max_size(1).build().unwrap();
    let _held = pool.get().await.unwrap();
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.get().await.map(|conn| conn.id) })
        })
        .collect();
    until("both wait", || pool.stats().waiters == 2).await;
    assert_eq!(pool.stats().creating, 0);
    let start = Instant::now();
    pool.resize(3).unwrap();
    let mut got = Vec::new();
    for waiter in waiters {
        got.push(waiter.await.unwrap().unwrap());
    }
    got.sort_unstable();
    assert_eq!(got, [2, 3]);
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(pool.stats().max_size, 3);
}

#[tokio::test(start_paused = true)]
async fn resize_down_closes_idle_surplus_now_and_in_use_surplus_on_return() {
    let (builder, faults) = builder();
    let pool = builder.max_size(4).build().unwrap();
    let mut conns = vec![
        pool.get().await.unwrap(),
        pool.get().await.unwrap(),
        pool.get().await.unwrap(),
        pool.get().await.unwrap(),
    ];
    let d = conns.pop().unwrap();
    let c = conns.pop().unwrap();
    drop(c);
    drop(d);
    assert_sizes(&pool, (4, 2, 2, 0, 0));
    pool.resize(1).unwrap();
    assert_sizes(&pool, (2, 0, 2, 0, 0));
    assert_eq!(faults.dropped_ids(), [3, 4]);
    let b = conns.pop().unwrap();
    let a = conns.pop().unwrap();
    drop(a);
    assert_eq!(
        faults.dropped_ids(),
        [3, 4, 1],
        "over the new size: closed on return"
    );
    drop(b);
    assert_sizes(&pool, (1, 1, 0, 0, 0));
    let stats = pool.stats();
    assert_eq!(stats.closed_for(CloseReason::Resized), 3);
    assert_eq!(stats.max_size, 1);
}

#[tokio::test(start_paused = true)]
async fn resize_rejects_zero_below_min_idle_and_closed() {
    let (builder, _faults) = builder();
    let pool = builder.max_size(4).min_idle(2).build().unwrap();
    assert_eq!(pool.resize(0), Err(ResizeError::Zero));
    assert_eq!(
        pool.resize(1),
        Err(ResizeError::BelowMinIdle {
            max_size: 1,
            min_idle: 2
        })
    );
    assert_eq!(pool.stats().max_size, 4, "a refused resize changes nothing");
    pool.resize(2).unwrap();
    pool.close();
    assert_eq!(pool.resize(3), Err(ResizeError::Closed));
}

#[tokio::test(start_paused = true)]
async fn close_fails_waiters_at_once_and_later_gets_are_closed() {
    let (builder, faults) = builder();
    let pool = builder.max_size(2).build().unwrap();
    let a = pool.get().await.unwrap();
    let b = pool.get().await.unwrap();
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.get().await.map(|conn| conn.id) })
        })
        .collect();
    until("both wait", || pool.stats().waiters == 2).await;
    let start = Instant::now();
    pool.close();
    assert_eq!(pool.stats().waiters, 0);
    for waiter in waiters {
        assert!(matches!(waiter.await.unwrap(), Err(PoolError::Closed)));
    }
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "waiters fail at once, not at the timeout"
    );
    assert!(pool.is_closed());
    assert!(matches!(pool.get().await, Err(PoolError::Closed)));
    assert!(matches!(pool.try_get().await, Err(PoolError::Closed)));
    assert!(matches!(
        pool.get_timeout(secs(1)).await,
        Err(PoolError::Closed)
    ));
    assert_eq!(
        faults.live(),
        2,
        "connections out stay usable until returned"
    );
    drop((a, b));
    assert_eq!(faults.live(), 0);
    assert_sizes(&pool, (0, 0, 0, 0, 0));
    assert_eq!(pool.stats().closed_for(CloseReason::PoolClosed), 2);
    pool.close(); // idempotent
    assert_eq!(pool.stats().closed_for(CloseReason::PoolClosed), 2);
}

#[tokio::test(start_paused = true)]
async fn close_counts_idle_and_returned_connections_as_pool_closed() {
    let (builder, faults) = builder();
    let pool = builder.build().unwrap();
    let a = pool.get().await.unwrap();
    let b = pool.get().await.unwrap();
    let c = pool.get().await.unwrap();
    drop(c);
    let waiter_pool = pool.clone();
    pool.close();
    assert_eq!(faults.dropped_ids(), [3], "idle closed at once");
    drop(a);
    assert_eq!(faults.dropped_ids(), [3, 1], "out: closed on return");
    b.detach(); // detaching after close is still a detach
    let stats = pool.stats();
    assert_eq!(stats.closed_for(CloseReason::PoolClosed), 2);
    assert_eq!(stats.closed_for(CloseReason::Detached), 1);
    assert_sizes(&pool, (0, 0, 0, 0, 0));
    assert!(matches!(waiter_pool.get().await, Err(PoolError::Closed)));
}

#[tokio::test(start_paused = true)]
async fn close_while_creating_closes_what_the_create_makes() {
    let (builder, faults) = builder();
    faults.gate_creates();
    let pool = builder.build().unwrap();
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.map(|conn| conn.id) }
    });
    until("creating", || faults.attempts() == 1).await;
    pool.close();
    assert!(matches!(waiter.await.unwrap(), Err(PoolError::Closed)));
    faults.ungate_creates();
    until("made", || faults.made() == 1).await;
    until("closed", || faults.live() == 0).await;
    let stats = pool.stats();
    assert_eq!(stats.closed_for(CloseReason::PoolClosed), 1);
    assert_sizes(&pool, (0, 0, 0, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn dropping_the_last_pool_handle_closes_the_pool() {
    let (builder, faults) = builder();
    let pool = builder.build().unwrap();
    let other = pool.clone();
    let held = pool.get().await.unwrap();
    drop(pool.get().await.unwrap());
    drop(pool);
    assert!(!other.is_closed(), "a clone keeps the pool open");
    assert_eq!(faults.live(), 2);
    assert_eq!(held.info().id, 1);
    drop(other);
    assert_eq!(
        faults.dropped_ids(),
        [2],
        "idle closed when the last handle goes"
    );
    drop(held);
    assert_eq!(
        faults.dropped_ids(),
        [2, 1],
        "the one out is closed on return"
    );
    assert_eq!(faults.live(), 0);
}

#[tokio::test(start_paused = true)]
async fn retain_judges_idle_connections_only() {
    let (builder, faults) = builder();
    let clock = ManualClock::new();
    let pool = builder.clock(clock.clone()).build().unwrap();
    let conns = vec![
        pool.get().await.unwrap(),
        pool.get().await.unwrap(),
        pool.get().await.unwrap(),
        pool.get().await.unwrap(),
    ];
    let mut conns = conns.into_iter();
    let held = conns.next().unwrap(); // 1 stays out
    drop(conns); // 2, 3, 4 idle
    clock.advance(secs(7));
    let mut judged = Vec::new();
    let closed = pool.retain(|conn, info| {
        assert_eq!(conn.id, info.id);
        assert_eq!((info.age, info.idle_for, info.uses), (secs(7), secs(7), 1));
        judged.push(info.id);
        info.id % 2 == 0
    });
    judged.sort_unstable();
    assert_eq!(judged, [2, 3, 4]);
    assert_eq!(closed, 1);
    assert_eq!(faults.dropped_ids(), [3]);
    let stats = pool.stats();
    assert_eq!(stats.closed_for(CloseReason::Retain), 1);
    assert_sizes(&pool, (3, 2, 1, 0, 0));
    drop(held);
}

#[tokio::test(start_paused = true)]
async fn detach_frees_the_slot_and_a_waiter_gets_a_new_connection() {
    let (builder, faults) = builder();
    let pool = builder.max_size(1).build().unwrap();
    let held = pool.get().await.unwrap();
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.map(|conn| conn.id) }
    });
    until("waits", || pool.stats().waiters == 1).await;
    let mine = held.detach();
    assert_eq!(mine.id, 1);
    assert_eq!(waiter.await.unwrap().unwrap(), 2);
    let stats = pool.stats();
    assert_eq!(stats.closed_for(CloseReason::Detached), 1);
    assert_eq!((stats.created, stats.size), (2, 1));
    assert!(
        faults.dropped_ids().is_empty(),
        "a detached connection is the caller's"
    );
    drop(mine);
    assert_eq!(faults.dropped_ids(), [1]);
}

// ---------------------------------------------------------------------------------------
// Cancel safety.
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn dropping_a_queued_get_leaks_nothing() {
    let (builder, faults) = builder();
    let pool = builder.max_size(1).build().unwrap();
    let held = pool.get().await.unwrap();
    {
        let mut get = std::pin::pin!(pool.get());
        assert!(poll_once(get.as_mut()).await.is_pending());
        assert_sizes(&pool, (1, 0, 1, 1, 0));
    }
    assert_sizes(&pool, (1, 0, 1, 0, 0));
    drop(held);
    assert_sizes(&pool, (1, 1, 0, 0, 0));
    assert_eq!(faults.attempts(), 1);
    assert_eq!(pool.get().await.unwrap().id, 1);
}

#[tokio::test(start_paused = true)]
async fn a_create_for_a_dropped_get_ends_up_idle() {
    let (builder, faults) = builder();
    faults.gate_creates();
    let pool = builder.build().unwrap();
    {
        let mut get = std::pin::pin!(pool.get());
        assert!(poll_once(get.as_mut()).await.is_pending());
        until("creating", || faults.attempts() == 1).await;
    }
    faults.ungate_creates();
    until("idle", || pool.stats().idle == 1).await;
    assert_sizes(&pool, (1, 1, 0, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn dropping_a_get_after_the_hand_off_passes_the_connection_on() {
    let (builder, faults) = builder();
    let pool = builder.max_size(1).build().unwrap();
    let held = pool.get().await.unwrap();
    let mut first = Box::pin(pool.get());
    let mut second = Box::pin(pool.get());
    assert!(poll_once(first.as_mut()).await.is_pending());
    assert!(poll_once(second.as_mut()).await.is_pending());
    assert_sizes(&pool, (1, 0, 1, 2, 0));
    drop(held); // handed to `first`, which is not polled again
    assert_sizes(&pool, (1, 0, 1, 1, 0));
    drop(first);
    assert_sizes(&pool, (1, 0, 1, 0, 0));
    let conn = match poll_once(second.as_mut()).await {
        Poll::Ready(result) => result.unwrap(),
        Poll::Pending => panic!("the connection was not passed on"),
    };
    assert_eq!(conn.id, 1);
    drop(conn);
    drop(second);
    // Last waiter dropped after a hand-off: the connection goes idle.
    let held = pool.get().await.unwrap();
    let mut last = Box::pin(pool.get());
    assert!(poll_once(last.as_mut()).await.is_pending());
    drop(held);
    drop(last);
    assert_sizes(&pool, (1, 1, 0, 0, 0));
    let stats = pool.stats();
    assert_eq!((stats.created, stats.closed_total()), (1, 0));
    assert_eq!(faults.attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn dropping_a_get_while_recycle_runs_closes_that_connection_and_replaces_it() {
    let (builder, faults) = builder();
    let pool = builder.max_size(1).build().unwrap();
    drop(pool.get().await.unwrap());
    tokio::time::sleep(secs(1)).await;
    faults.hang_recycles(1);
    let checking = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.map(|conn| conn.id) }
    });
    until("recycling", || faults.recycles() == 1).await;
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.map(|conn| conn.id) }
    });
    until("waits", || pool.stats().waiters == 1).await;
    assert_sizes(&pool, (1, 0, 1, 1, 0));
    checking.abort();
    assert!(checking.await.unwrap_err().is_cancelled());
    assert_eq!(faults.dropped_ids(), [1]);
    assert_eq!(pool.stats().closed_for(CloseReason::CheckFailed), 1);
    assert_eq!(
        waiter.await.unwrap().unwrap(),
        2,
        "a replacement is made for the waiter"
    );
    let stats = pool.stats();
    assert_eq!(
        (stats.size, stats.idle, stats.in_use, stats.waiters),
        (1, 1, 0, 0)
    );
    assert_eq!((stats.created, stats.closed_total()), (2, 1));
}

#[tokio::test(start_paused = true)]
async fn timed_out_and_aborted_waiters_leave_exact_counts() {
    let (builder, faults) = builder();
    let pool = builder.max_size(2).build().unwrap();
    let a = pool.get().await.unwrap();
    let b = pool.get().await.unwrap();
    // One times out, one is aborted, two are served.
    assert!(pool.get_timeout(secs(1)).await.unwrap_err().is_timeout());
    let aborted = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.map(|conn| conn.id) }
    });
    until("waits", || pool.stats().waiters == 1).await;
    let served: Vec<_> = (0..2)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.get().await.map(|conn| conn.id) })
        })
        .collect();
    until("all wait", || pool.stats().waiters == 3).await;
    aborted.abort();
    assert!(aborted.await.unwrap_err().is_cancelled());
    assert_eq!(pool.stats().waiters, 2);
    drop((a, b));
    let mut got = Vec::new();
    for task in served {
        got.push(task.await.unwrap().unwrap());
    }
    got.sort_unstable();
    assert_eq!(got, [1, 2]);
    let stats = pool.stats();
    assert_eq!(
        (
            stats.size,
            stats.idle,
            stats.in_use,
            stats.waiters,
            stats.creating
        ),
        (2, 2, 0, 0, 0)
    );
    assert_eq!(
        (stats.created, stats.closed_total(), stats.timeouts),
        (2, 0, 1)
    );
    assert_eq!(stats.waits, 2 + 1 + 1 + 2);
    assert_eq!(faults.live(), 2);
}

// ---------------------------------------------------------------------------------------
// try_get, get_timeout, get_blocking.
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn try_get_returns_none_when_nothing_is_idle_and_never_creates() {
    let (builder, faults) = builder();
    let pool = builder.build().unwrap();
    assert!(pool.try_get().await.unwrap().is_none());
    tokio::time::sleep(secs(1)).await;
    assert_eq!(faults.attempts(), 0);
    assert_sizes(&pool, (0, 0, 0, 0, 0));
    let stats = pool.stats();
    assert_eq!((stats.waits, stats.timeouts), (0, 0));
    drop(pool.get().await.unwrap());
    let conn = pool.try_get().await.unwrap().expect("an idle connection");
    assert_eq!(conn.id, 1);
    assert!(pool.try_get().await.unwrap().is_none());
}

#[tokio::test(start_paused = true)]
async fn try_get_checks_the_connection_it_takes() {
    let (builder, faults) = builder();
    let pool = builder.fail_fast(true).build().unwrap();
    drop(pool.get().await.unwrap());
    tokio::time::sleep(secs(1)).await;
    faults.fail_recycles(1);
    assert!(matches!(pool.try_get().await, Err(PoolError::Recycle(_))));
    assert_eq!(faults.recycles(), 1);
    assert!(pool.try_get().await.unwrap().is_none());
}

#[tokio::test(start_paused = true)]
async fn get_timeout_uses_its_own_timeout() {
    let (builder, _faults) = builder();
    let pool = builder.max_size(1).build().unwrap(); // wait_timeout 30 s
    let _held = pool.get().await.unwrap();
    let start = Instant::now();
    let (waited, last) = timeout_parts(pool.get_timeout(ms(250)).await);
    assert_eq!((start.elapsed(), waited), (ms(250), ms(250)));
    assert!(last.is_none());
    assert_sizes(&pool, (1, 0, 1, 0, 0));
    assert_eq!(pool.stats().timeouts, 1);
}

fn blocking_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn get_blocking_takes_an_idle_connection_from_a_plain_thread() {
    let runtime = blocking_runtime();
    let (mgr, faults) = manager();
    let pool = Pool::builder(mgr)
        .clock(ManualClock::new())
        .runtime(runtime.handle().clone())
        .build()
        .unwrap();
    drop(runtime.block_on(pool.get()).unwrap());
    let worker = std::thread::spawn({
        let pool = pool.clone();
        move || pool.get_blocking().map(|conn| conn.id)
    });
    assert_eq!(worker.join().unwrap().unwrap(), 1);
    assert_eq!(faults.attempts(), 1);
    assert_eq!(faults.recycles(), 0);
    assert_sizes(&pool, (1, 1, 0, 0, 0));
}

#[test]
fn get_blocking_waits_for_a_connection_from_a_plain_thread() {
    let runtime = blocking_runtime();
    let (mgr, _faults) = manager();
    let pool = Pool::builder(mgr)
        .max_size(1)
        .clock(ManualClock::new())
        .runtime(runtime.handle().clone())
        .build()
        .unwrap();
    // A cold pool: the blocking caller waits for a create on the runtime.
    let cold = std::thread::spawn({
        let pool = pool.clone();
        move || pool.get_blocking().map(|conn| conn.id)
    });
    assert_eq!(cold.join().unwrap().unwrap(), 1);
    // A full pool: it waits for the connection to come back.
    let held = pool.get_blocking().unwrap();
    let worker = std::thread::spawn({
        let pool = pool.clone();
        move || pool.get_blocking().map(|conn| conn.id)
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while pool.stats().waiters == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the blocking caller never queued"
        );
        std::thread::yield_now();
    }
    drop(held);
    assert_eq!(worker.join().unwrap().unwrap(), 1);
    assert_eq!(pool.stats().created, 1);
}

#[test]
fn get_blocking_times_out_like_get() {
    let runtime = blocking_runtime();
    let (mgr, faults) = manager();
    faults.set_create(Fault::Fail);
    let pool = Pool::builder(mgr)
        .wait_timeout(ms(200))
        .create_backoff(ms(10), ms(10))
        .runtime(runtime.handle().clone())
        .build()
        .unwrap();
    let (waited, last) = timeout_parts(pool.get_blocking());
    assert_eq!(waited, ms(200));
    assert!(
        matches!(last.as_deref(), Some(CreateError::Failed(_))),
        "{last:?}"
    );
}

#[tokio::test]
// The pool is cold, so the call would have to wait: it must panic, not stall the runtime
// (the message may be the pool's or tokio's own "... runtime ...").
#[should_panic(expected = "runtime")]
async fn get_blocking_inside_an_async_task_panics() {
    let (builder, _faults) = builder();
    let pool = builder.build().unwrap();
    let _ = pool.get_blocking();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_blocking_works_from_spawn_blocking() {
    let (mgr, _faults) = manager();
    let pool = Pool::builder(mgr).build().unwrap();
    let got = tokio::task::spawn_blocking({
        let pool = pool.clone();
        move || pool.get_blocking().map(|conn| conn.id)
    })
    .await
    .expect("get_blocking must not panic on a blocking thread");
    assert_eq!(got.unwrap(), 1);
}

// ---------------------------------------------------------------------------------------
// Leak detection.
// ---------------------------------------------------------------------------------------

fn leak_sink() -> (
    Arc<Mutex<Vec<LeakReport>>>,
    impl Fn(&LeakReport) + Send + Sync,
) {
    let reports = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&reports);
    (reports, move |report: &LeakReport| {
        sink.lock().unwrap().push(*report)
    })
}

#[tokio::test(start_paused = true)]
async fn a_leak_is_reported_once_with_the_exact_call_site() {
    let (builder, _faults) = builder();
    let (reports, sink) = leak_sink();
    let pool = builder
        .leak_detection(secs(10), sink)
        .maintenance_interval(secs(5))
        .build()
        .unwrap();
    let line = line!() + 1;
    let held = pool.get().await.unwrap();
    tokio::time::sleep(secs(60)).await;
    {
        let reports = reports.lock().unwrap();
        assert_eq!(reports.len(), 1, "reported once per checkout: {reports:?}");
        let report = reports[0];
        assert_eq!(report.id, 1);
        assert_eq!(report.location.file(), file!());
        assert_eq!(report.location.line(), line);
        assert_eq!(report.held_for, secs(10), "found by the round at 10 s");
    }
    assert_eq!(pool.stats().leaks, 1);
    drop(held);
    // A new checkout of the same connection, from another line, is a new report.
    let line2 = line!() + 1;
    let again = pool.get_timeout(secs(1)).await.unwrap();
    tokio::time::sleep(secs(11)).await;
    {
        let reports = reports.lock().unwrap();
        assert_eq!(reports.len(), 2);
        assert_eq!(reports[1].location.line(), line2);
        assert_eq!(reports[1].id, 1);
    }
    assert_eq!(pool.stats().leaks, 2);
    drop(again);
}

#[tokio::test(start_paused = true)]
async fn a_connection_returned_in_time_is_not_a_leak() {
    let (builder, _faults) = builder();
    let (reports, sink) = leak_sink();
    let pool = builder
        .leak_detection(secs(10), sink)
        .maintenance_interval(secs(1))
        .build()
        .unwrap();
    let held = pool.get().await.unwrap();
    tokio::time::sleep(secs(9)).await;
    drop(held);
    tokio::time::sleep(secs(60)).await; // idle is not held
    assert!(reports.lock().unwrap().is_empty());
    assert_eq!(pool.stats().leaks, 0);
}

#[tokio::test(start_paused = true)]
async fn leak_reports_name_try_get_call_sites_and_follow_maintain() {
    let (builder, _faults) = builder();
    let clock = ManualClock::new();
    let (reports, sink) = leak_sink();
    let pool = builder
        .clock(clock.clone())
        .leak_detection(secs(10), sink)
        .build()
        .unwrap(); // maintenance hourly: `maintain` drives it
    drop(pool.get().await.unwrap());
    let line = line!() + 1;
    let held = pool.try_get().await.unwrap().unwrap();
    clock.advance(secs(10) - Duration::from_nanos(1));
    pool.maintain();
    assert!(reports.lock().unwrap().is_empty());
    clock.advance(Duration::from_nanos(1));
    pool.maintain();
    pool.maintain();
    let reports = reports.lock().unwrap().clone();
    assert_eq!(reports.len(), 1);
    assert_eq!(
        (reports[0].location.file(), reports[0].location.line()),
        (file!(), line)
    );
    assert_eq!(reports[0].held_for, secs(10));
    assert_eq!(pool.stats().leaks, 1);
    drop(held);
}

// ---------------------------------------------------------------------------------------
// Stats.
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn stats_count_every_event_of_a_known_sequence() {
    let (builder, faults) = builder();
    faults.fail_creates(1);
    let pool = builder.max_size(2).wait_timeout(secs(1)).build().unwrap();
    let a = pool.get().await.unwrap(); // waits 50 ms (one failed create)
    let b = pool.get().await.unwrap(); // waits for a create (no time)
    assert!(pool.try_get().await.unwrap().is_none()); // not a wait
    assert!(pool.get().await.unwrap_err().is_timeout()); // full: waits 1 s
    tokio::time::sleep(secs(2)).await;
    drop(a); // held 3.05 s
    let c = pool.get().await.unwrap(); // idle: no wait
    faults.break_conn(b.id);
    drop(b); // held 3.05 s, closed as broken
    c.detach(); // not a hold-time sample
    let stats = pool.stats();
    assert_eq!(
        (
            stats.size,
            stats.max_size,
            stats.idle,
            stats.in_use,
            stats.waiters,
            stats.creating
        ),
        (0, 2, 0, 0, 0, 0)
    );
    assert_eq!(stats.created, 2);
    assert_eq!(stats.create_failures, 1);
    assert_eq!(stats.waits, 3);
    assert_eq!(stats.timeouts, 1);
    assert_eq!(stats.leaks, 0);
    let mut closed = [0; CloseReason::COUNT];
    closed[CloseReason::Broken as usize] = 1;
    closed[CloseReason::Detached as usize] = 1;
    assert_eq!(stats.closed, closed);
    assert_eq!(stats.closed_total(), 2);
    for reason in CloseReason::ALL {
        let expected = u64::from(matches!(
            reason,
            CloseReason::Broken | CloseReason::Detached
        ));
        assert_eq!(stats.closed_for(reason), expected, "{reason}");
    }
    assert_eq!(
        stats.wait_time.count(),
        2,
        "two callers waited and were served"
    );
    let longest_wait = stats.wait_time.quantile(1.0);
    assert!(
        longest_wait >= ms(50) && longest_wait <= ms(100),
        "{longest_wait:?}"
    );
    assert_eq!(stats.hold_time.count(), 2, "two connections came back");
    let longest_hold = stats.hold_time.quantile(1.0);
    assert!(
        longest_hold >= secs(3) && longest_hold <= secs(7),
        "{longest_hold:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Build errors.
// ---------------------------------------------------------------------------------------

type Configure = fn(Builder<TestManager>) -> Builder<TestManager>;

#[tokio::test]
async fn build_rejects_each_bad_setting_by_name() {
    let err = |f: Configure| f(builder().0).build().unwrap_err();
    assert_eq!(err(|b| b.max_size(0)), BuildError::ZeroMaxSize);
    assert_eq!(
        err(|b| b.max_size(2).min_idle(3)),
        BuildError::MinIdleAboveMaxSize {
            min_idle: 3,
            max_size: 2
        }
    );
    let cases: [(&str, Configure); 8] = [
        ("wait_timeout", |b| b.wait_timeout(Duration::ZERO)),
        ("create_timeout", |b| b.create_timeout(Duration::ZERO)),
        ("recycle_timeout", |b| b.recycle_timeout(Duration::ZERO)),
        ("max_lifetime", |b| b.max_lifetime(Some(Duration::ZERO))),
        ("idle_timeout", |b| b.idle_timeout(Some(Duration::ZERO))),
        ("leak_detection threshold", |b| {
            b.leak_detection(Duration::ZERO, |_: &LeakReport| {})
        }),
        ("maintenance_interval", |b| {
            b.maintenance_interval(Duration::ZERO)
        }),
        ("create_backoff", |b| {
            b.create_backoff(Duration::ZERO, secs(1))
        }),
    ];
    for (field, bad) in cases {
        let error = err(bad);
        assert_eq!(error, BuildError::ZeroDuration { field }, "{field}");
        assert_eq!(
            error.to_string(),
            format!("{field} must be longer than zero")
        );
    }
    for jitter in [secs(60), secs(61)] {
        let (b, _) = builder();
        assert_eq!(
            b.max_lifetime(Some(secs(60)))
                .max_lifetime_jitter(jitter)
                .build()
                .unwrap_err(),
            BuildError::JitterNotBelowLifetime {
                jitter,
                lifetime: secs(60)
            }
        );
    }
    // Allowed: no lifetime (a jitter then means nothing), no idle timeout, waiting forever.
    let (b, _) = builder();
    let pool = b
        .max_lifetime(None)
        .max_lifetime_jitter(secs(5))
        .idle_timeout(None)
        .wait_forever()
        .max_size(1)
        .min_idle(1)
        .build()
        .unwrap();
    assert_eq!(pool.stats().max_size, 1);
}

#[test]
fn build_outside_a_runtime_needs_one() {
    let (mgr, _faults) = manager();
    let err = Pool::builder(mgr)
        .clock(ManualClock::new())
        .build()
        .unwrap_err();
    assert_eq!(err, BuildError::NoRuntime);
    let runtime = blocking_runtime();
    let (mgr, _faults) = manager();
    let pool = Pool::builder(mgr)
        .runtime(runtime.handle().clone())
        .build()
        .unwrap();
    assert!(!pool.is_closed());
}
