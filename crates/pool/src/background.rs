//! The pool's background work on its runtime: opening connections (with timeout and
//! retry) and periodic maintenance. Neither runs user-visible code paths' locks: they
//! report into the slots like any caller.

use std::sync::Arc;

use crate::Manager;
use crate::conn::Conn;
use crate::error::CreateError;
use crate::pool::Shared;
use crate::sync::lock;
use crate::wait::{finish_put, wake};

/// Opens one connection the slots reserved room for, retrying failures with backoff for as
/// long as the connection is still wanted. The result goes to the oldest waiter, or idle.
pub(crate) async fn create<M: Manager>(shared: Arc<Shared<M>>) {
    let (initial, max) = shared.config.create_backoff;
    let mut backoff = initial;
    loop {
        let timeout = shared.config.create_timeout;
        let attempt = tokio::time::timeout(timeout, async {
            let mut conn = shared.manager.create().await?;
            shared.manager.after_create(&mut conn).await?;
            Ok(conn)
        })
        .await;
        let error = match attempt {
            Ok(Ok(conn)) => {
                let conn = Conn {
                    conn,
                    meta: shared.new_meta(),
                };
                let put = lock(&shared.slots).created(conn);
                finish_put(put);
                return;
            }
            Ok(Err(error)) => CreateError::Failed(error),
            Err(_elapsed) => CreateError::TimedOut(timeout),
        };
        let (woken, retry) = lock(&shared.slots).create_failed(Arc::new(error));
        wake(woken);
        if !retry {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(max.max(initial));
        if !lock(&shared.slots).keep_creating() {
            return;
        }
    }
}

/// Runs [`Shared::maintain`] every maintenance interval until the pool is closed or gone.
pub(crate) fn spawn_maintenance<M: Manager>(shared: &Arc<Shared<M>>) {
    let pool = Arc::downgrade(shared);
    let interval = shared.config.maintenance_interval();
    shared.runtime.spawn(async move {
        loop {
            tokio::time::sleep(interval).await;
            let Some(shared) = pool.upgrade() else {
                return;
            };
            if shared.is_closed() {
                return;
            }
            shared.maintain();
        }
    });
}
