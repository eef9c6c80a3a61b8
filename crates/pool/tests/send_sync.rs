//! The thread-safety promises of the pool's public types, and that the futures of `get`,
//! `get_timeout` and `try_get` can be spawned on a multi-threaded runtime, checked at
//! compile time (plus one run on a multi-thread runtime).

use std::cell::Cell;
use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use flowbed_pool::{
    BuildError, Builder, CloseReason, ConnectionInfo, CreateError, IdleOrder, LeakReport, Manager,
    Pool, PoolError, Pooled, ResizeError, Stats,
};

use flowbed_testkit::thread_safety::{
    debug, error, send, send_future, spawnable, thread_safe, unpin,
};

/// A manager of plain, `Send + Sync` connections.
#[derive(Debug, Default)]
struct Numbers(AtomicU32);

impl Manager for Numbers {
    type Connection = u32;
    type Error = std::io::Error;

    async fn create(&self) -> Result<u32, std::io::Error> {
        Ok(self.0.fetch_add(1, Ordering::Relaxed))
    }
}

/// A manager whose connections are `Send` but not `Sync` (like many client handles).
#[derive(Debug)]
struct Cells;

impl Manager for Cells {
    type Connection = Cell<u32>;
    type Error = std::fmt::Error;

    async fn create(&self) -> Result<Cell<u32>, std::fmt::Error> {
        Ok(Cell::new(0))
    }
}

#[test]
fn values_are_thread_safe() {
    thread_safe::<Stats>();
    thread_safe::<LeakReport>();
    thread_safe::<ConnectionInfo>();
    thread_safe::<CloseReason>();
    thread_safe::<IdleOrder>();
    thread_safe::<BuildError>();
    thread_safe::<ResizeError>();
}

#[test]
fn pools_and_builders_are_thread_safe_whatever_the_connection() {
    thread_safe::<Pool<Numbers>>();
    thread_safe::<Builder<Numbers>>();
    // A pool shares only its own bookkeeping between threads: it is `Sync` even when its
    // connections are not.
    thread_safe::<Pool<Cells>>();
    thread_safe::<Builder<Cells>>();
}

#[test]
fn pooled_is_sync_exactly_when_the_connection_is() {
    thread_safe::<Pooled<Numbers>>();
    send::<Pooled<Cells>>();
    unpin::<Pooled<Cells>>();
    debug::<Pooled<Cells>>();
    // `Pooled<Cells>` derefs to a `Cell`: sharing it would share the cell.
    flowbed_testkit::assert_not_sync!(Pooled<Cells>);
}

#[test]
fn errors_are_send_sync_std_errors() {
    error::<PoolError<std::io::Error>>();
    error::<PoolError<std::fmt::Error>>();
    error::<CreateError<std::io::Error>>();
    error::<BuildError>();
    error::<ResizeError>();
    thread_safe::<PoolError<std::io::Error>>();
    thread_safe::<CreateError<std::io::Error>>();
    thread_safe::<Arc<CreateError<std::io::Error>>>();
}

#[tokio::test]
async fn get_futures_are_send() {
    fn futures<M: Manager>(pool: &Pool<M>) {
        drop(send_future(pool.get()));
        drop(send_future(pool.get_timeout(Duration::from_secs(1))));
        drop(send_future(pool.try_get()));
    }
    futures(&Pool::builder(Numbers::default()).build().unwrap());
    futures(&Pool::builder(Cells).build().unwrap());

    // A clone moved into a 'static task, holding the connection across an await.
    let pool = Pool::builder(Cells).build().unwrap();
    let (a, b, c) = (pool.clone(), pool.clone(), pool.clone());
    drop(spawnable(async move {
        let conn = a.get().await.unwrap();
        tokio::task::yield_now().await;
        conn.set(conn.get() + 1);
    }));
    drop(spawnable(async move {
        b.get_timeout(Duration::from_secs(1))
            .await
            .map(|conn| conn.get())
    }));
    drop(spawnable(async move {
        c.try_get().await.map(|conn| conn.map(|conn| conn.get()))
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_runs_in_tokio_spawn() {
    let pool = Pool::builder(Numbers::default())
        .max_size(2)
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let conn = pool.get().await.unwrap();
                tokio::task::yield_now().await;
                let again = pool.try_get().await.unwrap().map(|conn| *conn);
                (*conn, again)
            })
        })
        .collect();
    for task in tasks {
        let (id, _) = task.await.unwrap();
        assert!(id < 2, "only two connections are ever opened");
    }
    let stats = pool.stats();
    assert_eq!((stats.in_use, stats.waiters), (0, 0));
    assert_eq!(stats.created, stats.size as u64);
    assert!(stats.size <= 2);
}
