//! `PgManager` against a real server (`FLOWBED_PG_URL`): queries, statement cache, validation, terminated backends, refused connects.
#![cfg(feature = "postgres")]

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use flowbed_pool::postgres::tokio_postgres::error::SqlState;
use flowbed_pool::postgres::{Client, Config, Error, NoTls, PgConnection, PgManager, Validation};
use flowbed_pool::{CloseReason, CreateError, Manager, Pool, PoolError};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// Bound on every single step that talks to the server: a step that takes longer is a hang.
const STEP: Duration = Duration::from_secs(20);

fn url() -> String {
    std::env::var("FLOWBED_PG_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

fn config() -> Config {
    let url = url();
    url.parse()
        .unwrap_or_else(|e| panic!("FLOWBED_PG_URL {url:?} is not a connection string: {e}"))
}

/// The admin connection; fails the test (never skips it) when the server is unreachable.
async fn admin() -> Client {
    let url = url();
    let connected = tokio::time::timeout(STEP, config().connect(NoTls)).await;
    match connected {
        Ok(Ok((client, connection))) => {
            tokio::spawn(connection);
            client
        }
        Ok(Err(e)) => panic!(
            "PostgreSQL is unreachable at {url}: {}. These tests need a running server: \
             start it (pg_ctlcluster --skip-systemctl-redirect <version> main start) or set \
             FLOWBED_PG_URL",
            report(&e)
        ),
        Err(_) => panic!("connecting to PostgreSQL at {url} took longer than {STEP:?}"),
    }
}

/// A per-test `application_name`, so a test finds its own backends in `pg_stat_activity`.
fn app_name(test: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "flowbed-{test}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn manager(app: &str) -> PgManager {
    PgManager::new(config(), NoTls).session_setup(format!("SET application_name = '{app}'"))
}

async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(STEP, fut).await {
        Ok(out) => out,
        Err(_) => panic!("hung: {what} took longer than {STEP:?}"),
    }
}

async fn get(pool: &Pool<PgManager>) -> flowbed_pool::Pooled<PgManager> {
    within("pool.get()", pool.get())
        .await
        .unwrap_or_else(|e| panic!("pool.get() failed: {e}"))
}

async fn backend_pid(conn: &PgConnection) -> Result<i32, Error> {
    let row = within(
        "SELECT pg_backend_pid()",
        conn.query_one("SELECT pg_backend_pid()", &[]),
    )
    .await?;
    Ok(row.get(0))
}

/// Pids of the backends running with `app` as their application name.
async fn backends(admin: &Client, app: &str) -> HashSet<i32> {
    let rows = within(
        "listing backends",
        admin.query(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        ),
    )
    .await
    .unwrap();
    rows.iter().map(|row| row.get(0)).collect()
}

/// Terminates every backend of `app` and waits until each has exited; returns their pids.
async fn terminate(admin: &Client, app: &str) -> HashSet<i32> {
    // Signal them all at once, then wait for the stragglers (waiting one by one costs a
    // 100 ms server-side poll each).
    let rows = within(
        "pg_terminate_backend",
        admin.query(
            // MATERIALIZED: pick the targets first; in a plain WHERE the planner may
            // call pg_terminate_backend on rows the other conditions would exclude.
            "WITH targets AS MATERIALIZED (SELECT pid FROM pg_stat_activity \
             WHERE application_name = $1 AND pid <> pg_backend_pid()) \
             SELECT pid FROM targets WHERE pg_terminate_backend(pid)",
            &[&app],
        ),
    )
    .await
    .unwrap();
    let pids: Vec<i32> = rows.iter().map(|row| row.get(0)).collect();
    within(
        "waiting for terminated backends to exit",
        admin.query(
            "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE pid = ANY($1)",
            &[&pids],
        ),
    )
    .await
    .unwrap();
    let left = within(
        "listing terminated backends",
        admin.query(
            "SELECT pid FROM pg_stat_activity WHERE pid = ANY($1)",
            &[&pids],
        ),
    )
    .await
    .unwrap();
    assert!(
        left.is_empty(),
        "{} terminated backends did not exit within 10 s",
        left.len()
    );
    pids.into_iter().collect()
}

/// Checks out `n` connections at once (so each is a different one) and returns them with
/// their backend pids, every query having succeeded.
async fn take_all(pool: &Pool<PgManager>, n: usize) -> Vec<(flowbed_pool::Pooled<PgManager>, i32)> {
    let mut taken = Vec::new();
    for _ in 0..n {
        let conn = get(pool).await;
        let pid = backend_pid(&conn)
            .await
            .unwrap_or_else(|e| panic!("query on a freshly checked-out connection failed: {e}"));
        taken.push((conn, pid));
    }
    taken
}

fn dead_closed(pool: &Pool<PgManager>) -> u64 {
    let stats = pool.stats();
    stats.closed_for(CloseReason::Broken) + stats.closed_for(CloseReason::CheckFailed)
}

#[test]
fn manager_is_send_sync_and_its_debug_hides_the_password() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<PgManager>();
    send_sync::<PgConnection>();
    send_sync::<Pool<PgManager>>();
    let manager = PgManager::parse("postgres://alice:s3cret@db.example:5432/app").unwrap();
    let shown = format!("{manager:?}");
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(
        shown.contains("alice") && shown.contains("SELECT 1"),
        "{shown}"
    );
    let parsed: PgManager = "host=/run/postgresql dbname=app".parse().unwrap();
    assert_eq!(parsed.config().get_dbname(), Some("app"));
    assert!(PgManager::parse("postgres://h:port/db").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_run_through_the_pool_with_session_setup_applied() {
    let admin = admin().await;
    let app = app_name("basic");
    let pool = Pool::builder(manager(&app)).max_size(2).build().unwrap();

    let conn = get(&pool).await;
    let row = within(
        "query",
        conn.query_one("SELECT $1::text || '!', 40 + 2", &[&"hello"]),
    )
    .await
    .unwrap();
    assert_eq!(row.get::<_, String>(0), "hello!");
    assert_eq!(row.get::<_, i32>(1), 42);
    let shown = within("SHOW", conn.query_one("SHOW application_name", &[]))
        .await
        .unwrap();
    assert_eq!(
        shown.get::<_, String>(0),
        app,
        "session setup ran on the new connection"
    );
    let pid = backend_pid(&conn).await.unwrap();
    assert_eq!(backends(&admin, &app).await, HashSet::from([pid]));

    let other = get(&pool).await;
    assert_ne!(
        backend_pid(&other).await.unwrap(),
        pid,
        "two checkouts, two backends"
    );
    drop((conn, other));
    let stats = pool.stats();
    assert_eq!((stats.size, stats.idle, stats.created), (2, 2, 2));
    assert_eq!(stats.closed_total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_cache_prepares_once_per_connection() {
    let _admin = admin().await;
    let app = app_name("cache");
    let pool = Pool::builder(manager(&app)).max_size(2).build().unwrap();
    // Counted with the simple-query protocol, which prepares nothing itself.
    async fn prepared_on_server(conn: &PgConnection) -> usize {
        let messages = within(
            "count pg_prepared_statements",
            conn.simple_query("SELECT count(*) FROM pg_prepared_statements"),
        )
        .await
        .unwrap();
        messages
            .iter()
            .find_map(|m| match m {
                flowbed_pool::postgres::tokio_postgres::SimpleQueryMessage::Row(row) => {
                    row.get(0).map(|n| n.parse().unwrap())
                }
                _ => None,
            })
            .unwrap()
    }

    let conn = get(&pool).await;
    let pid = backend_pid(&conn).await.unwrap();
    let base = prepared_on_server(&conn).await;
    assert_eq!(conn.statement_cache_len(), 0);
    for i in 0..3 {
        let add = within("prepare_cached", conn.prepare_cached("SELECT $1::int4 + 1"))
            .await
            .unwrap();
        let row = within("query", conn.query_one(&add, &[&i])).await.unwrap();
        assert_eq!(row.get::<_, i32>(0), i + 1);
    }
    assert_eq!(conn.statement_cache_len(), 1);
    assert_eq!(
        prepared_on_server(&conn).await,
        base + 1,
        "three uses, one server-side prepare"
    );

    // A bad statement is reported and not cached.
    let bad = within("prepare_cached", conn.prepare_cached("SELEC nonsense"))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Some(&SqlState::SYNTAX_ERROR));
    assert_eq!(conn.statement_cache_len(), 1);

    // Back in the pool and out again: same connection, same cache.
    drop(conn);
    let conn = get(&pool).await;
    assert_eq!(backend_pid(&conn).await.unwrap(), pid);
    assert_eq!(conn.statement_cache_len(), 1);
    within("prepare_cached", conn.prepare_cached("SELECT $1::int4 + 1"))
        .await
        .unwrap();
    within("prepare_cached", conn.prepare_cached("SELECT $1::text"))
        .await
        .unwrap();
    assert_eq!(conn.statement_cache_len(), 2);
    assert_eq!(prepared_on_server(&conn).await, base + 2);

    // Another connection has a cache of its own.
    let other = get(&pool).await;
    assert_ne!(backend_pid(&other).await.unwrap(), pid);
    assert_eq!(other.statement_cache_len(), 0);
    let other_base = prepared_on_server(&other).await;
    within(
        "prepare_cached",
        other.prepare_cached("SELECT $1::int4 + 1"),
    )
    .await
    .unwrap();
    assert_eq!(other.statement_cache_len(), 1);
    assert_eq!(prepared_on_server(&other).await, other_base + 1);

    // Clearing deallocates on the server.
    conn.clear_statement_cache();
    assert_eq!(conn.statement_cache_len(), 0);
    assert_eq!(prepared_on_server(&conn).await, base);
    assert_eq!(other.statement_cache_len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_runs_the_configured_query_or_none() {
    let admin = admin().await;
    async fn last_query(admin: &Client, pid: i32) -> String {
        let row = within(
            "pg_stat_activity.query",
            admin.query_one("SELECT query FROM pg_stat_activity WHERE pid = $1", &[&pid]),
        )
        .await
        .unwrap();
        row.get(0)
    }

    for (validation, expect_marker) in [
        (
            Validation::Query("SELECT 'flowbed-validation'".to_owned()),
            true,
        ),
        (Validation::SocketOnly, false),
    ] {
        let app = app_name("validation");
        let pool = Pool::builder(manager(&app).validation(validation.clone()))
            .max_size(1)
            .validate_after(Duration::ZERO)
            .build()
            .unwrap();
        let conn = get(&pool).await;
        let pid = backend_pid(&conn).await.unwrap();
        drop(conn);
        let conn = get(&pool).await; // idle ≥ validate_after: recycled first
        let last = last_query(&admin, pid).await;
        assert_eq!(
            last == "SELECT 'flowbed-validation'",
            expect_marker,
            "{validation:?}: last query of the backend was {last:?}"
        );
        if !expect_marker {
            assert_eq!(
                last, "SELECT pg_backend_pid()",
                "SocketOnly made no round trip"
            );
        }
        drop(conn);
    }

    // A validation query that fails closes the connection (reported with fail_fast).
    let app = app_name("validation-fails");
    let pool = Pool::builder(manager(&app).validation(Validation::Query("SELECT 1/0".to_owned())))
        .max_size(1)
        .validate_after(Duration::ZERO)
        .fail_fast(true)
        .build()
        .unwrap();
    match within("get", pool.get()).await {
        Err(PoolError::Recycle(e)) => {
            assert_eq!(e.code(), Some(&SqlState::DIVISION_BY_ZERO), "{e}")
        }
        other => panic!("expected PoolError::Recycle, got {other:?}"),
    }
    let stats = pool.stats();
    assert_eq!(stats.closed_for(CloseReason::CheckFailed), 1);
    assert_eq!(stats.size, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_whose_backends_were_terminated_are_replaced() {
    let admin = admin().await;
    let app = app_name("kill-idle");
    let pool = Pool::builder(manager(&app))
        .max_size(4)
        .validate_after(Duration::ZERO)
        .build()
        .unwrap();
    let old: HashSet<i32> = take_all(&pool, 4)
        .await
        .into_iter()
        .map(|(_, pid)| pid)
        .collect();
    assert_eq!(old.len(), 4);
    assert_eq!(pool.stats().idle, 4);

    assert_eq!(terminate(&admin, &app).await, old);
    assert!(backends(&admin, &app).await.is_empty());

    let fresh = take_all(&pool, 4).await;
    let new: HashSet<i32> = fresh.iter().map(|(_, pid)| *pid).collect();
    assert_eq!(new.len(), 4);
    assert!(
        new.is_disjoint(&old),
        "a terminated backend was handed out: {new:?} / {old:?}"
    );
    assert_eq!(backends(&admin, &app).await, new);
    let stats = pool.stats();
    assert_eq!(dead_closed(&pool), 4, "closed: {:?}", stats.closed);
    assert_eq!(stats.closed_total(), 4);
    assert_eq!((stats.size, stats.created), (4, 8));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn terminating_backends_in_use_gives_typed_errors_and_replacements() {
    let admin = admin().await;
    let app = app_name("kill-busy");
    let pool = Pool::builder(manager(&app))
        .max_size(4)
        .validate_after(Duration::ZERO)
        .build()
        .unwrap();
    let ready = Arc::new(tokio::sync::Barrier::new(5));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let pool = pool.clone();
        let ready = Arc::clone(&ready);
        tasks.push(tokio::spawn(async move {
            let conn = get(&pool).await;
            let pid = backend_pid(&conn).await.unwrap();
            ready.wait().await;
            // Runs until its backend is terminated (before or during the query).
            let outcome = within(
                "a query on a terminated backend",
                conn.simple_query("SELECT pg_sleep(60)"),
            )
            .await;
            (pid, outcome.map(drop))
        }));
    }
    ready.wait().await;
    let killed = terminate(&admin, &app).await;
    let mut old = HashSet::new();
    for task in tasks {
        let (pid, outcome) = within("a worker", task).await.unwrap();
        let error: Error = match outcome {
            Ok(()) => panic!("a query on terminated backend {pid} succeeded"),
            Err(e) => e,
        };
        assert!(
            error.is_closed() || error.code() == Some(&SqlState::ADMIN_SHUTDOWN),
            "unexpected error: {error:?}"
        );
        old.insert(pid);
    }
    assert_eq!(killed, old);

    let fresh = take_all(&pool, 4).await;
    let new: HashSet<i32> = fresh.iter().map(|(_, pid)| *pid).collect();
    assert_eq!(new.len(), 4);
    assert!(new.is_disjoint(&old));
    let stats = pool.stats();
    assert_eq!(dead_closed(&pool), 4, "closed: {:?}", stats.closed);
    assert_eq!((stats.size, stats.created, stats.closed_total()), (4, 8, 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_tasks_keep_working_while_backends_are_terminated() {
    const TASKS: usize = 32;
    /// Each worker's bound, in case the rounds stall.
    const MAX_ITERATIONS: usize = 2_000;
    const ROUNDS: usize = 10;
    /// Successful queries between two rounds of terminations.
    const OK_PER_ROUND: usize = 100;

    let admin = admin().await;
    let app = app_name("kill-load");
    let pool = Pool::builder(manager(&app))
        .max_size(8)
        .validate_after(Duration::ZERO)
        .build()
        .unwrap();
    // (successful queries, workers finished)
    let (progress, mut watch) = tokio::sync::watch::channel((0usize, 0usize));
    let progress = Arc::new(progress);
    let failed = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for task in 0..TASKS {
        let (pool, progress, failed, stop) = (
            pool.clone(),
            Arc::clone(&progress),
            Arc::clone(&failed),
            Arc::clone(&stop),
        );
        workers.push(tokio::spawn(async move {
            let mut iterations = 0;
            while iterations < MAX_ITERATIONS && !stop.load(Ordering::Relaxed) {
                let n = (task * MAX_ITERATIONS + iterations) as i32;
                iterations += 1;
                let conn = get(&pool).await;
                let outcome = async {
                    let double = conn.prepare_cached("SELECT $1::int4 * 2").await?;
                    conn.query_one(&double, &[&n]).await
                };
                // Whatever a termination does to it, the query ends, with a typed error at worst.
                let outcome: Result<_, Error> = within("a query under terminations", outcome).await;
                match outcome {
                    Ok(row) => {
                        assert_eq!(row.get::<_, i32>(0), n * 2);
                        progress.send_modify(|(ok, _)| *ok += 1);
                    }
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            progress.send_modify(|(_, done)| *done += 1);
            iterations
        }));
    }

    let mut killed = HashSet::new();
    let mut rounds = 0;
    for round in 1..=ROUNDS {
        let target = round * OK_PER_ROUND;
        let (ok, _) = *within(
            "waiting for queries to succeed between terminations",
            watch.wait_for(|&(ok, done)| ok >= target || done == TASKS),
        )
        .await
        .unwrap();
        if ok < target {
            break;
        }
        killed.extend(terminate(&admin, &app).await);
        rounds += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let mut iterations = 0;
    for worker in workers {
        iterations += within("a worker", worker).await.unwrap();
    }
    let ok = watch.borrow().0;
    let failed = failed.load(Ordering::Relaxed);
    assert_eq!(ok + failed, iterations);
    assert_eq!(rounds, ROUNDS, "only {ok} queries succeeded");
    assert!(!killed.is_empty());

    // Healed: eight working connections, none of them a terminated backend, and every
    // terminated one closed as broken or failing its check.
    let fresh = take_all(&pool, 8).await;
    let live: HashSet<i32> = fresh.iter().map(|(_, pid)| *pid).collect();
    assert_eq!(live.len(), 8);
    assert!(live.is_disjoint(&killed));
    let stats = pool.stats();
    // A backend terminated right after its session setup ran, before the client heard
    // back, is a failed create instead of a closed connection.
    assert_eq!(
        dead_closed(&pool) + stats.create_failures,
        killed.len() as u64,
        "closed: {:?}, create failures: {}",
        stats.closed,
        stats.create_failures
    );
    assert_eq!(stats.closed_total(), dead_closed(&pool));
    assert_eq!(stats.size, 8);
    assert_eq!(stats.created, stats.closed_total() + 8);
    println!(
        "{ok} queries succeeded, {failed} failed, {} backends terminated in {rounds} rounds",
        killed.len()
    );
}

/// Delegates to a `PgManager` and says when a create failed.
struct Observed {
    inner: PgManager,
    failed: tokio::sync::mpsc::UnboundedSender<()>,
}

impl Manager for Observed {
    type Connection = PgConnection;
    type Error = Error;

    async fn create(&self) -> Result<PgConnection, Error> {
        let created = self.inner.create().await;
        if created.is_err() {
            let _ = self.failed.send(());
        }
        created
    }

    async fn after_create(&self, conn: &mut PgConnection) -> Result<(), Error> {
        self.inner.after_create(conn).await
    }

    async fn recycle(&self, conn: &mut PgConnection) -> Result<(), Error> {
        self.inner.recycle(conn).await
    }

    fn is_broken(&self, conn: &PgConnection) -> bool {
        self.inner.is_broken(conn)
    }
}

/// An error and its sources, as an error reporter prints them.
fn report(error: &dyn std::error::Error) -> String {
    let mut report = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        report = format!("{report}: {cause}");
        source = cause.source();
    }
    report
}

fn wrong_database() -> PgManager {
    let mut config = config();
    config.dbname("flowbed_no_such_database");
    PgManager::new(config, NoTls)
}

fn assert_missing_database(error: &CreateError<Error>) {
    match error {
        CreateError::Failed(e) => {
            assert_eq!(e.code(), Some(&SqlState::INVALID_CATALOG_NAME), "{e}");
            let message = e.as_db_error().expect("a server error").message();
            assert!(message.contains("flowbed_no_such_database"), "{message}");
        }
        other => panic!("expected CreateError::Failed, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connects_carry_the_server_message() {
    let _admin = admin().await;
    let direct = within("create", wrong_database().create())
        .await
        .unwrap_err();
    assert_eq!(direct.code(), Some(&SqlState::INVALID_CATALOG_NAME));

    // Retried in the background; the caller's timeout carries the server's answer.
    let (failed, mut failures) = tokio::sync::mpsc::unbounded_channel();
    let pool = Pool::builder(Observed {
        inner: wrong_database(),
        failed,
    })
    .max_size(2)
    .min_idle(1)
    .build()
    .unwrap();
    within("the first failed create", failures.recv())
        .await
        .unwrap();
    let waited = Duration::from_millis(200);
    match within("get_timeout", pool.get_timeout(waited)).await {
        Err(error @ PoolError::Timeout { .. }) => {
            // tokio-postgres displays "db error"; the server's text is the error's source.
            let report = report(&error);
            assert!(report.contains("flowbed_no_such_database"), "{report}");
            let PoolError::Timeout {
                waited: w,
                last_create_error,
            } = error
            else {
                unreachable!()
            };
            assert_eq!(w, waited);
            assert_missing_database(&last_create_error.expect("the create error"));
        }
        other => panic!("expected PoolError::Timeout, got {other:?}"),
    }
    assert!(pool.stats().create_failures >= 1);
    assert_eq!(pool.stats().size, 0);

    // fail_fast: the waiter gets the failure itself.
    let pool = Pool::builder(wrong_database())
        .max_size(2)
        .fail_fast(true)
        .build()
        .unwrap();
    match within("get", pool.get()).await {
        Err(PoolError::Create(error)) => assert_missing_database(&error),
        other => panic!("expected PoolError::Create, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_session_setup_is_a_failed_create() {
    let _admin = admin().await;
    let manager = PgManager::new(config(), NoTls)
        .session_setup("SET statement_timeout = '5s'; SET flowbed_no_such_setting = 1");
    let pool = Pool::builder(manager)
        .max_size(1)
        .fail_fast(true)
        .build()
        .unwrap();
    match within("get", pool.get()).await {
        Err(PoolError::Create(error)) => match &*error {
            CreateError::Failed(e) => {
                assert_eq!(e.code(), Some(&SqlState::UNDEFINED_OBJECT), "{e}")
            }
            other => panic!("expected CreateError::Failed, got {other:?}"),
        },
        other => panic!("expected PoolError::Create, got {other:?}"),
    }
    let stats = pool.stats();
    assert_eq!(
        (stats.size, stats.created, stats.create_failures),
        (0, 0, 1)
    );
}
