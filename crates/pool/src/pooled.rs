//! [`Pooled`]: a connection on loan; it goes back to the pool when dropped.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use crate::Manager;
use crate::conn::{Conn, ConnectionInfo};
use crate::pool::Shared;
use crate::stats::CloseReason;
use crate::sync::lock;
use crate::wait::finish_put;

/// A connection taken from a [`Pool`](crate::Pool). Use it through `Deref`/`DerefMut`;
/// dropping it returns it — to the caller who has waited longest, if any — unless it is
/// broken ([`Manager::is_broken`]), past its lifetime, refused by
/// [`Manager::after_return`], or the pool closed, in which case it is closed.
///
/// # Examples
///
/// ```
/// use flowbed_pool::{Manager, Pool};
/// # struct M;
/// # impl Manager for M { type Connection = Vec<u8>; type Error = std::convert::Infallible;
/// #     async fn create(&self) -> Result<Vec<u8>, Self::Error> { Ok(Vec::new()) } }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pool = Pool::builder(M).build().unwrap();
/// {
///     let mut conn = pool.get().await.unwrap();
///     conn.push(1); // DerefMut to the connection
///     assert_eq!(conn.info().uses, 1);
/// } // back to the pool
/// assert_eq!(*pool.get().await.unwrap(), vec![1]);
/// # }
/// ```
pub struct Pooled<M: Manager> {
    shared: Arc<Shared<M>>,
    /// `None` only after `detach` (so `Drop` has nothing to return).
    conn: Option<Conn<M::Connection>>,
}

impl<M: Manager> Pooled<M> {
    pub(crate) fn new(shared: Arc<Shared<M>>, conn: Conn<M::Connection>) -> Self {
        Self {
            shared,
            conn: Some(conn),
        }
    }

    fn conn(&self) -> &Conn<M::Connection> {
        self.conn
            .as_ref()
            .expect("a Pooled holds its connection until dropped")
    }

    /// What the pool knows about this connection.
    pub fn info(&self) -> ConnectionInfo {
        self.conn().meta.info(self.shared.clock.now())
    }

    /// Takes the connection out of the pool for good: the pool forgets it (and opens a
    /// replacement if one is wanted).
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_pool::{Manager, Pool};
    /// # struct M;
    /// # impl Manager for M { type Connection = String; type Error = std::convert::Infallible;
    /// #     async fn create(&self) -> Result<String, Self::Error> { Ok("conn".into()) } }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = Pool::builder(M).max_size(1).build().unwrap();
    /// let mine: String = pool.get().await.unwrap().detach();
    /// assert_eq!(mine, "conn");
    /// assert_eq!(pool.stats().size, 0);
    /// # }
    /// ```
    pub fn detach(mut self) -> M::Connection {
        let conn = self
            .conn
            .take()
            .expect("a Pooled holds its connection until dropped");
        if let Some(leaks) = &self.shared.leaks {
            leaks.returned(conn.meta.id);
        }
        let creates = lock(&self.shared.slots).discard(CloseReason::Detached);
        self.shared.spawn_creates(creates);
        conn.conn
    }
}

impl<M: Manager> Drop for Pooled<M> {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        let shared = &self.shared;
        let now = shared.clock.now();
        if let Some(leaks) = &shared.leaks {
            leaks.returned(conn.meta.id);
        }
        let closing = if shared.manager.is_broken(&conn.conn) {
            Some(CloseReason::Broken)
        } else if conn.meta.retire_at <= now {
            Some(CloseReason::MaxLifetime)
        } else if !shared.manager.after_return(&mut conn.conn) {
            Some(CloseReason::Refused)
        } else {
            None
        };
        let held = Duration::from_nanos(now.saturating_sub(conn.meta.last_used));
        conn.meta.last_used = now;
        let mut slots = lock(&shared.slots);
        slots.hold_time.record_exclusive(held);
        match closing {
            None => {
                let put = slots.put(conn);
                drop(slots);
                finish_put(put);
            }
            Some(reason) => {
                let creates = slots.discard(reason);
                drop(slots);
                drop(conn);
                shared.spawn_creates(creates);
            }
        }
    }
}

impl<M: Manager> Deref for Pooled<M> {
    type Target = M::Connection;

    fn deref(&self) -> &M::Connection {
        &self.conn().conn
    }
}

impl<M: Manager> DerefMut for Pooled<M> {
    fn deref_mut(&mut self) -> &mut M::Connection {
        &mut self
            .conn
            .as_mut()
            .expect("a Pooled holds its connection until dropped")
            .conn
    }
}

impl<M: Manager> AsRef<M::Connection> for Pooled<M> {
    fn as_ref(&self) -> &M::Connection {
        self
    }
}

impl<M: Manager> AsMut<M::Connection> for Pooled<M> {
    fn as_mut(&mut self) -> &mut M::Connection {
        self
    }
}

impl<M: Manager> fmt::Debug for Pooled<M>
where
    M::Connection: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pooled")
            .field("connection", &self.conn().conn)
            .field("id", &self.conn().meta.id)
            .finish()
    }
}
