//! The Redis backend against the real server (`FLOWBED_REDIS_URL`, default
//! `redis://127.0.0.1:6379`). These tests FAIL when the server is unreachable: they never
//! skip. Each test keeps its keys under its own prefix (test name + process id), so they
//! run in parallel.

#![cfg(feature = "redis")]

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flowbed_ratelimit::redis::{
    DecisionSource, FailurePolicy, HybridRateLimiter, RedisBuilder, RedisLimitError,
    RedisRateLimiter,
};
use flowbed_ratelimit::{Clock, KeyedRateLimiter, MAX_PERIOD, ManualClock, Quota, RateLimiter};
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;

/// A port nothing listens on: connections are refused at once.
const UNREACHABLE: &str = "redis://127.0.0.1:1";

/// Long enough that a loaded 2-core machine never turns a healthy server into a failure.
const GENEROUS: Duration = Duration::from_secs(5);

/// Keys of tests on an injected (manual) clock stay this long past what the state needs,
/// so they cannot expire in real time while the manual clock says they are busy.
const MANUAL_MARGIN: Duration = Duration::from_secs(600);

/// How long any failure-path check may take before the test calls it a hang.
const HANG: Duration = Duration::from_secs(10);

fn url() -> String {
    std::env::var("FLOWBED_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn prefix(test: &str) -> String {
    format!("flowbed-test:{}:{test}:", std::process::id())
}

fn per_second(count: u32) -> Quota {
    Quota::per_second(NonZeroU32::new(count).unwrap())
}

/// A connection to the test server, or a panic that says what to do.
async fn server() -> MultiplexedConnection {
    let url = url();
    let unreachable = |error: &dyn std::fmt::Display| -> ! {
        panic!(
            "Redis is not reachable at {url} ({error}). The redis tests need a running server: \
             start it with `ci/services.sh` (or `redis-server --daemonize yes --bind 127.0.0.1 \
             --port 6379 --save '' --appendonly no`), or point FLOWBED_REDIS_URL at one. \
             They never skip."
        )
    };
    let client = redis::Client::open(url.as_str()).unwrap_or_else(|error| unreachable(&error));
    let mut connection =
        match tokio::time::timeout(GENEROUS, client.get_multiplexed_async_connection()).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(error)) => unreachable(&error),
            Err(_) => unreachable(&"no answer within 5 s"),
        };
    let pong: String = redis::cmd("PING")
        .query_async(&mut connection)
        .await
        .unwrap_or_else(|error| unreachable(&error));
    assert_eq!(pong, "PONG");
    connection
}

/// A fresh key space for `test`: deletes whatever an earlier process with the same id left.
async fn fresh(test: &str) -> (MultiplexedConnection, String) {
    let mut connection = server().await;
    let prefix = prefix(test);
    let stale: Vec<String> = connection.keys(format!("{prefix}*")).await.unwrap();
    if !stale.is_empty() {
        let _: () = connection.del(stale).await.unwrap();
    }
    (connection, prefix)
}

/// A limiter on the test server, connected and with the script loaded.
async fn connect(builder: RedisBuilder) -> RedisRateLimiter {
    let url = url();
    builder
        .timeout(GENEROUS)
        .connect(&url)
        .await
        .unwrap_or_else(|error| panic!("Redis is not reachable at {url} ({error}); see server()"))
}

/// A limiter on the test server that reads `clock` instead of Redis time; keys outlive the
/// manual clock's jumps by `MANUAL_MARGIN`.
async fn connect_manual(
    quota: Quota,
    prefix: impl Into<String>,
    clock: ManualClock,
) -> RedisRateLimiter {
    connect(
        RedisRateLimiter::builder(quota)
            .key_prefix(prefix)
            .clock(clock)
            .expiry_margin(MANUAL_MARGIN),
    )
    .await
}

/// A deterministic pseudo-random sequence (xorshift64*), so failures replay.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 { 0 } else { self.next() % bound }
    }

    fn percent(&mut self) -> u64 {
        self.below(100)
    }
}

/// Runs `steps` random operations on `keys` keys: clock moves (none, a fraction of a cell,
/// about the tolerance, whole cells, long jumps) and weighted checks (0, 1, up to the
/// burst, above it), each on a local `RateLimiter` per key and on Redis with the same
/// clock, and asserts equal answers. Returns how many checks were admitted.
async fn compare(
    connection_prefix: &str,
    quota: Quota,
    start: Duration,
    seed: u64,
    steps: usize,
) -> usize {
    let clock = ManualClock::new();
    clock.advance(start);
    let redis = connect_manual(quota, format!("{connection_prefix}{seed}:"), clock.clone()).await;
    let keys = 3;
    let local: Vec<_> = (0..keys)
        .map(|_| RateLimiter::with_clock(quota, clock.clone()))
        .collect();
    let interval = u64::try_from(quota.replenish_interval().as_nanos()).unwrap();
    let tolerance = interval.saturating_mul(u64::from(quota.burst()));
    let burst = quota.burst();
    let mut rng = Rng(seed | 1);
    let mut admitted = 0;
    for step in 0..steps {
        let advance = match rng.percent() {
            0..40 => 0,
            40..60 => rng.below(interval),
            60..80 => rng.below(tolerance.saturating_mul(2).min(u64::MAX / 4)),
            80..95 => interval.saturating_mul(rng.below(3)),
            _ => rng.below(3_600_000_000_000 * 24 * 30), // up to a month
        };
        clock.advance(Duration::from_nanos(advance));
        let n = match rng.percent() {
            0..50 => 1,
            50..55 => 0,
            55..90 => u32::try_from(rng.below(u64::from(burst) + 1)).unwrap(),
            90..95 => burst,
            _ => quota.burst().saturating_add(1),
        };
        let key = usize::try_from(rng.below(keys as u64)).unwrap();
        let context = format!(
            "seed {seed}, step {step}, key {key}, n {n}, now {} ns, quota {quota:?}",
            clock.now()
        );
        let expected = local[key].check_n(n);
        let actual = redis.try_check_n(&key, n).await;
        match (expected, actual) {
            (Ok(expected), Ok(actual)) => {
                assert_eq!(actual, expected, "{context}");
                admitted += usize::from(expected.is_allowed());
            }
            (Err(expected), Err(RedisLimitError::InsufficientCapacity { requested, burst })) => {
                assert_eq!(
                    (requested, burst),
                    (expected.requested, expected.burst),
                    "{context}"
                );
            }
            (expected, actual) => panic!("{context}: local {expected:?}, redis {actual:?}"),
        }
    }
    assert_eq!(redis.stats().errors + redis.stats().timeouts, 0);
    admitted
}

#[tokio::test]
async fn same_decisions_as_the_local_limiter_on_random_sequences() {
    let (_connection, prefix) = fresh("same_decisions").await;
    let hour = Duration::from_secs(3_600);
    let quotas = [
        // Intervals that are not whole microseconds: the arithmetic is exact nanoseconds.
        per_second(3),
        Quota::new(7, Duration::from_secs(1))
            .unwrap()
            .allow_burst(NonZeroU32::new(20).unwrap()),
        Quota::new(1_000, Duration::from_secs(1))
            .unwrap()
            .allow_burst(NonZeroU32::MIN),
        Quota::new(1_000_000, Duration::from_secs(1)).unwrap(),
        Quota::with_period(hour)
            .unwrap()
            .allow_burst(NonZeroU32::new(5).unwrap()),
        Quota::new(999_983, Duration::from_nanos(999_999_937)).unwrap(),
        // The tolerance, and the cost of 12 cells or more, saturate at u64::MAX.
        Quota::new(3, MAX_PERIOD)
            .unwrap()
            .allow_burst(NonZeroU32::new(20).unwrap()),
    ];
    let starts = [
        Duration::ZERO,
        // About now in nanoseconds since 1970: well above 2^53, where doubles lose integers.
        Duration::from_nanos(1_755_000_000_123_456_789),
    ];
    let mut seed = 0x5eed;
    let mut admitted = 0;
    for quota in quotas {
        for start in starts {
            seed += 1;
            admitted += compare(&prefix, quota, start, seed, 400).await;
        }
    }
    // The sequences exercised both answers, not just refusals.
    assert!(admitted > 1_000, "only {admitted} admitted");
}

#[tokio::test]
async fn check_and_check_n_agree_with_the_local_limiter_on_a_burst_then_a_refill() {
    let (_connection, prefix) = fresh("burst_refill").await;
    let clock = ManualClock::new();
    let quota = per_second(4);
    let redis = connect_manual(quota, prefix, clock.clone()).await;
    let local = RateLimiter::with_clock(quota, clock.clone());
    for _ in 0..6 {
        let answer = redis.check("k").await;
        assert_eq!(answer.source(), DecisionSource::Redis);
        assert_eq!(answer.decision(), local.check());
    }
    let refused = redis.check("k").await.decision();
    assert!(!refused.is_allowed());
    assert_eq!(refused.retry_after(), Duration::from_millis(250));
    assert_eq!(refused.reset_after(), Duration::from_secs(1));
    assert_eq!(local.check(), refused);
    clock.advance(Duration::from_millis(500));
    let two = redis.check_n("k", 2).await.unwrap();
    assert!(two.is_allowed());
    assert_eq!(two.decision(), local.check_n(2).unwrap());
    assert_eq!(two.decision().remaining(), 0);
    assert_eq!(redis.stats().round_trips, 8);
}

#[tokio::test]
async fn many_tasks_on_one_key_never_admit_more_than_the_burst() {
    let (_connection, prefix) = fresh("concurrency").await;
    let clock = ManualClock::new(); // frozen: nothing is replenished
    let quota = per_second(25);
    // Two "nodes" with connections of their own share the key.
    let mut nodes = Vec::new();
    for _ in 0..2 {
        nodes.push(Arc::new(
            connect_manual(quota, prefix.clone(), clock.clone()).await,
        ));
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(16));
    let tasks: Vec<_> = (0..16)
        .map(|task| {
            let node = Arc::clone(&nodes[task % 2]);
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                let mut admitted = 0u32;
                for round in 0..10 {
                    let n = if (task + round) % 3 == 0 { 2 } else { 1 };
                    let decision = node.try_check_n("shared", n).await.unwrap();
                    if decision.is_allowed() {
                        admitted += n;
                    }
                }
                admitted
            })
        })
        .collect();
    let mut admitted = 0;
    for task in tasks {
        admitted += task.await.unwrap();
    }
    // 16 tasks asked for far more than 25 cells; exactly the burst got through, and the
    // last cells may be left over only if every remaining request was a 2 (never above).
    assert!(
        (24..=25).contains(&admitted),
        "{admitted} cells admitted, burst 25"
    );
    let last = nodes[0].try_check("shared").await.unwrap();
    assert_eq!(last.is_allowed(), admitted == 24);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_on_two_threads_admit_exactly_the_burst() {
    let (_connection, prefix) = fresh("concurrency_mt").await;
    let clock = ManualClock::new();
    let limiter = Arc::new(connect_manual(per_second(40), prefix, clock).await);
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let limiter = Arc::clone(&limiter);
            tokio::spawn(async move {
                let mut admitted = 0;
                for _ in 0..8 {
                    admitted += u32::from(limiter.try_check("k").await.unwrap().is_allowed());
                }
                admitted
            })
        })
        .collect();
    let mut admitted = 0;
    for task in tasks {
        admitted += task.await.unwrap();
    }
    assert_eq!(admitted, 40);
    assert_eq!(limiter.stats().round_trips, 32 * 8);
}

#[tokio::test]
async fn keys_expire_once_fully_replenished() {
    let (mut connection, prefix) = fresh("expiry").await;
    // Server time: the key's expiry is exactly its state's remaining life.
    let limiter =
        connect(RedisRateLimiter::builder(per_second(10)).key_prefix(prefix.clone())).await;
    assert!(limiter.check_n("three", 3).await.unwrap().is_allowed());
    let pttl: i64 = connection.pttl(limiter.redis_key("three")).await.unwrap();
    assert!(
        (1..=300).contains(&pttl),
        "PTTL {pttl} ms, 3 cells of 100 ms spent"
    );

    // A check that spends nothing on an idle key leaves no key behind.
    assert!(limiter.check_n("zero", 0).await.unwrap().is_allowed());
    let exists: bool = connection.exists(limiter.redis_key("zero")).await.unwrap();
    assert!(!exists);

    // One 20 ms cell: the key is gone soon after, and the full burst is back.
    let fast = connect(
        RedisRateLimiter::builder(Quota::new(1, Duration::from_millis(20)).unwrap())
            .key_prefix(prefix.clone()),
    )
    .await;
    assert!(fast.check("once").await.is_allowed());
    let key = fast.redis_key("once");
    let deadline = Instant::now() + HANG;
    loop {
        let exists: bool = connection.exists(&key).await.unwrap();
        if !exists {
            break;
        }
        assert!(Instant::now() < deadline, "{key} did not expire");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let fresh = fast.check("once").await;
    assert_eq!(fresh.source(), DecisionSource::Redis);
    assert!(fresh.is_allowed());
}

#[tokio::test]
async fn an_injected_clock_sets_the_expiry_from_its_time_plus_the_margin() {
    let (mut connection, prefix) = fresh("expiry_margin").await;
    let clock = ManualClock::new();
    clock.advance(Duration::from_secs(1_000));
    let limiter = connect(
        RedisRateLimiter::builder(per_second(1).allow_burst(NonZeroU32::new(5).unwrap()))
            .key_prefix(prefix)
            .clock(clock.clone())
            .expiry_margin(Duration::from_secs(60)),
    )
    .await;
    assert!(limiter.check_n("k", 2).await.unwrap().is_allowed());
    let key = limiter.redis_key("k");
    let pttl: i64 = connection.pttl(&key).await.unwrap();
    // 2 s of state + 60 s of margin; PTTL only shrinks with real time (allow a slow
    // machine up to 10 s between the check and this read).
    assert!((52_000..=62_000).contains(&pttl), "PTTL {pttl} ms");
    let tat: String = connection.get(&key).await.unwrap();
    assert_eq!(tat, "1002000000000", "TAT in ns of the injected clock");
}

#[tokio::test]
async fn server_time_shares_one_quota_between_nodes() {
    let (_connection, prefix) = fresh("server_time").await;
    let quota = Quota::per_minute(NonZeroU32::new(3).unwrap());
    let a = connect(RedisRateLimiter::builder(quota).key_prefix(prefix.clone())).await;
    let b = connect(RedisRateLimiter::builder(quota).key_prefix(prefix)).await;
    assert_eq!(a.try_check("k").await.unwrap().remaining(), 2);
    assert_eq!(b.try_check("k").await.unwrap().remaining(), 1);
    assert!(a.try_check("k").await.unwrap().is_allowed());
    let refused = b.try_check("k").await.unwrap();
    assert!(!refused.is_allowed());
    // One cell every 20 s; some real time has passed since the first check.
    assert!(
        refused.retry_after() > Duration::from_secs(15),
        "{refused:?}"
    );
    assert!(
        refused.retry_after() <= Duration::from_secs(20),
        "{refused:?}"
    );
    assert!(
        refused.reset_after() <= Duration::from_secs(60),
        "{refused:?}"
    );
    // Another key is untouched.
    assert_eq!(a.try_check("other").await.unwrap().remaining(), 2);
}

#[tokio::test]
async fn requests_above_the_burst_are_refused_before_any_round_trip() {
    // Even with Redis unreachable, the answer is immediate and typed.
    let limiter = RedisRateLimiter::builder(per_second(10))
        .build(UNREACHABLE)
        .unwrap();
    let error = limiter.check_n("k", 11).await.unwrap_err();
    assert_eq!((error.requested, error.burst), (11, 10));
    let error = limiter.try_check_n("k", 11).await.unwrap_err();
    assert!(matches!(
        error,
        RedisLimitError::InsufficientCapacity {
            requested: 11,
            burst: 10
        }
    ));
    assert!(!error.is_redis_failure());
    assert_eq!(limiter.stats().round_trips, 0);
}

#[tokio::test]
async fn fail_closed_is_the_default_and_refuses_when_redis_is_down() {
    let quota = per_second(10);
    let limiter = RedisRateLimiter::builder(quota)
        .timeout(Duration::from_millis(200))
        .build(UNREACHABLE)
        .unwrap();
    assert_eq!(limiter.failure_policy(), FailurePolicy::FailClosed);
    tokio::time::timeout(HANG, async {
        for _ in 0..5 {
            let answer = limiter.check("k").await;
            assert_eq!(answer.source(), DecisionSource::FailClosed);
            assert!(!answer.is_allowed());
            assert_eq!(answer.decision().retry_after(), Duration::from_millis(100));
        }
        let three = limiter.check_n("k", 3).await.unwrap();
        assert_eq!(three.source(), DecisionSource::FailClosed);
        assert_eq!(three.decision().retry_after(), Duration::from_millis(300));
        let error = limiter.try_check("k").await.unwrap_err();
        assert!(error.is_redis_failure(), "{error:?}");
    })
    .await
    .expect("checks against an unreachable Redis must not hang");
    let stats = limiter.stats();
    assert_eq!(stats.round_trips, 7);
    assert_eq!(stats.errors + stats.timeouts, 7);
}

#[tokio::test]
async fn fail_open_admits_when_redis_is_down() {
    let limiter = RedisRateLimiter::builder(per_second(10))
        .timeout(Duration::from_millis(200))
        .failure_policy(FailurePolicy::FailOpen)
        .build(UNREACHABLE)
        .unwrap();
    tokio::time::timeout(HANG, async {
        for _ in 0..20 {
            let answer = limiter.check("k").await;
            assert_eq!(answer.source(), DecisionSource::FailOpen);
            assert!(!answer.source().is_authoritative());
            assert!(answer.is_allowed());
        }
        assert!(matches!(
            limiter.try_check("k").await,
            Err(RedisLimitError::Redis(_) | RedisLimitError::Timeout { .. })
        ));
    })
    .await
    .expect("checks against an unreachable Redis must not hang");
}

/// A server that accepts connections and never answers: Redis hung or overloaded.
async fn silent_server() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket); // keep it open, say nothing
        }
    });
    (format!("redis://{address}"), task)
}

#[tokio::test]
async fn a_silent_server_times_out_and_the_policy_answers() {
    let (url, server) = silent_server().await;
    let timeout = Duration::from_millis(150);
    let closed = RedisRateLimiter::builder(per_second(10))
        .timeout(timeout)
        .build(&url)
        .unwrap();
    let open = RedisRateLimiter::builder(per_second(10))
        .timeout(timeout)
        .failure_policy(FailurePolicy::FailOpen)
        .build(&url)
        .unwrap();
    tokio::time::timeout(HANG, async {
        match closed.try_check("k").await {
            Err(RedisLimitError::Timeout { after }) => assert_eq!(after, timeout),
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert_eq!(closed.check("k").await.source(), DecisionSource::FailClosed);
        assert_eq!(open.check("k").await.source(), DecisionSource::FailOpen);
    })
    .await
    .expect("checks against a silent server must end at the timeout");
    assert_eq!(closed.stats().timeouts, 2);
    assert_eq!(closed.stats().errors, 0);
    server.abort();
}

#[tokio::test]
async fn hybrid_refuses_locally_without_a_round_trip() {
    let (mut connection, prefix) = fresh("hybrid").await;
    let clock = ManualClock::new();
    let quota = per_second(5);
    let node = |clock: ManualClock, prefix: String| async move {
        let remote = connect_manual(quota, prefix, clock.clone()).await;
        let local = KeyedRateLimiter::<String, _>::builder(quota)
            .clock(clock)
            .build();
        HybridRateLimiter::with_local(remote, local)
    };
    let a = node(clock.clone(), prefix.clone()).await;
    let b = node(clock.clone(), prefix).await;
    let key = "client".to_owned();
    let redis_key = a.remote_limiter().redis_key(&key);

    for _ in 0..5 {
        let answer = a.check(&key).await;
        assert_eq!(answer.source(), DecisionSource::Redis);
        assert!(answer.is_allowed());
    }
    let tat: String = connection.get(&redis_key).await.unwrap();
    for _ in 0..15 {
        let answer = a.check(&key).await;
        assert_eq!(answer.source(), DecisionSource::Local);
        assert!(!answer.is_allowed());
        assert_eq!(answer.decision().retry_after(), Duration::from_millis(200));
    }
    let stats = a.stats();
    assert_eq!((stats.round_trips, stats.local_denials), (5, 15));
    // Redis never saw the refused checks: the key's state did not move.
    let after: String = connection.get(&redis_key).await.unwrap();
    assert_eq!(after, tat);
    assert_eq!(tat, "1000000000");

    // Node b's local limiter admits, but the cluster quota is spent: Redis refuses.
    let answer = b.check(&key).await;
    assert_eq!(answer.source(), DecisionSource::Redis);
    assert!(!answer.is_allowed());
    assert_eq!(b.stats().round_trips, 1);

    // One cell later, a's local limiter admits again and Redis confirms.
    clock.advance(Duration::from_millis(200));
    let answer = a.check(&key).await;
    assert_eq!(answer.source(), DecisionSource::Redis);
    assert!(answer.is_allowed());
    assert_eq!(a.stats().round_trips, 6);
    // Above the burst: refused before the local limiter and Redis.
    assert!(a.check_n(&key, 6).await.is_err());
    assert!(matches!(
        a.try_check_n(&key, 6).await,
        Err(RedisLimitError::InsufficientCapacity {
            requested: 6,
            burst: 5
        })
    ));
    assert_eq!(a.stats().round_trips, 6);
}

#[tokio::test]
async fn hybrid_fail_open_falls_back_to_per_node_limits() {
    let clock = ManualClock::new();
    let quota = per_second(3);
    let build = |policy| {
        let remote = RedisRateLimiter::builder(quota)
            .timeout(Duration::from_millis(200))
            .failure_policy(policy)
            .build(UNREACHABLE)
            .unwrap();
        let local = KeyedRateLimiter::<u32, _>::builder(quota)
            .clock(clock.clone())
            .build();
        HybridRateLimiter::with_local(remote, local)
    };
    let open = build(FailurePolicy::FailOpen);
    let closed = build(FailurePolicy::FailClosed);
    tokio::time::timeout(HANG, async {
        let mut sources = Vec::new();
        for _ in 0..6 {
            let answer = open.check(&1).await;
            sources.push((
                answer.source(),
                answer.is_allowed(),
                answer.decision().remaining(),
            ));
        }
        use DecisionSource::{FailOpen, Local};
        assert_eq!(
            sources,
            [
                (FailOpen, true, 2),
                (FailOpen, true, 1),
                (FailOpen, true, 0),
                (Local, false, 0),
                (Local, false, 0),
                (Local, false, 0)
            ]
        );
        for _ in 0..3 {
            let answer = closed.check(&1).await;
            assert_eq!(answer.source(), DecisionSource::FailClosed);
            assert!(!answer.is_allowed());
        }
        assert_eq!(closed.check(&1).await.source(), DecisionSource::Local);
        assert!(closed.try_check(&2).await.unwrap_err().is_redis_failure());
    })
    .await
    .expect("must not hang");
    assert_eq!(open.stats().round_trips, 3);
    assert_eq!(open.stats().local_denials, 3);
}

#[tokio::test]
async fn hybrid_asks_redis_when_the_local_limiter_is_full() {
    let (_connection, prefix) = fresh("hybrid_full").await;
    let clock = ManualClock::new();
    let quota = per_second(2);
    let remote = connect_manual(quota, prefix, clock.clone()).await;
    let local = KeyedRateLimiter::<u32, _>::builder(quota)
        .max_keys(1)
        .clock(clock)
        .build();
    let limiter = HybridRateLimiter::with_local(remote, local);
    assert_eq!(limiter.check(&1).await.source(), DecisionSource::Redis);
    // Key 2 cannot be tracked locally (key 1 is busy): Redis alone decides.
    for expected in [true, true, false] {
        let answer = limiter.check(&2).await;
        assert_eq!(answer.source(), DecisionSource::Redis);
        assert_eq!(answer.is_allowed(), expected);
    }
    assert_eq!(limiter.local_limiter().len(), 1);
}

#[tokio::test]
async fn reset_key_frees_the_burst() {
    let (_connection, prefix) = fresh("reset").await;
    let limiter = connect(RedisRateLimiter::builder(per_second(2)).key_prefix(prefix)).await;
    assert!(limiter.check_n("k", 2).await.unwrap().is_allowed());
    assert!(!limiter.check("k").await.is_allowed());
    assert!(limiter.reset_key("k").await.unwrap());
    assert!(!limiter.reset_key("k").await.unwrap());
    assert_eq!(limiter.try_check("k").await.unwrap().remaining(), 1);
}

#[tokio::test]
async fn the_script_is_loaded_again_after_a_flush() {
    let (mut connection, prefix) = fresh("script_flush").await;
    let limiter = connect(RedisRateLimiter::builder(per_second(5)).key_prefix(prefix)).await;
    assert!(limiter.try_check("k").await.unwrap().is_allowed());
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(limiter.try_check("k").await.unwrap().remaining(), 3);
    assert_eq!(limiter.stats().round_trips, 2);
}

#[tokio::test]
async fn connect_reports_an_unreachable_server() {
    let result = RedisRateLimiter::builder(per_second(1))
        .timeout(Duration::from_millis(200))
        .connect(UNREACHABLE)
        .await;
    assert!(result.is_err());
    assert!(
        RedisRateLimiter::builder(per_second(1))
            .build("not a url")
            .is_err()
    );
}

#[test]
fn public_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<RedisRateLimiter>();
    send_sync::<HybridRateLimiter<String>>();
    send_sync::<RedisLimitError>();
    send_sync::<flowbed_ratelimit::redis::RedisDecision>();
    send_sync::<RedisBuilder>();
}

#[tokio::test]
async fn check_futures_are_send() {
    fn send<T: Send>(value: T) -> T {
        value
    }
    let limiter = RedisRateLimiter::builder(per_second(1))
        .build(UNREACHABLE)
        .unwrap();
    let hybrid = HybridRateLimiter::<String>::new(
        RedisRateLimiter::builder(per_second(1))
            .build(UNREACHABLE)
            .unwrap(),
    );
    let key = "k".to_owned();
    // Spawnable on a multi-threaded runtime (as tower and axum need).
    drop(send(limiter.check("k")));
    drop(send(limiter.try_check_n("k", 1)));
    drop(send(hybrid.check(&key)));
    drop(send(hybrid.try_check(&key)));
}

/// Reports the time per check (run with `--nocapture`); asserts only the counting.
#[tokio::test]
async fn round_trip_time_per_check() {
    let (_connection, prefix) = fresh("timing").await;
    let limiter = connect(
        RedisRateLimiter::builder(Quota::per_second(NonZeroU32::new(1_000_000).unwrap()))
            .key_prefix(prefix),
    )
    .await;
    let checks: u32 = 2_000;
    let started = Instant::now();
    for i in 0..checks {
        let _ = limiter.try_check(&(i % 16)).await.unwrap();
    }
    let elapsed = started.elapsed();
    println!(
        "redis check round trip: {:.1} µs per check ({checks} sequential checks, server time)",
        elapsed.as_secs_f64() * 1e6 / f64::from(checks)
    );
    assert_eq!(limiter.stats().round_trips, u64::from(checks));
}
