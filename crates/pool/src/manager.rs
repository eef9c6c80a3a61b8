//! What the pool asks of a connection type: how to make one, check one, and tell a dead one.

use std::future::Future;

/// Creates, checks and recycles the connections of a [`Pool`](crate::Pool).
///
/// Only [`create`](Manager::create) is required. The pool calls
/// [`recycle`](Manager::recycle) on an idle connection before handing it out when it has
/// not been used for [`validate_after`](crate::Builder::validate_after) (500 ms by
/// default), and [`is_broken`](Manager::is_broken) — cheap and synchronous — on every
/// checkout and return. The hooks run at the points their names say; a hook that fails
/// makes the pool close that connection and carry on with another.
///
/// Native `async fn` in the trait: no boxing on any path.
///
/// # Examples
///
/// ```
/// use flowbed_pool::{Manager, Pool};
/// use std::convert::Infallible;
///
/// /// Connections are plain numbers here; a real manager opens sockets.
/// struct Numbers;
///
/// impl Manager for Numbers {
///     type Connection = u32;
///     type Error = Infallible;
///
///     async fn create(&self) -> Result<u32, Infallible> {
///         Ok(42)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pool = Pool::builder(Numbers).max_size(4).build().unwrap();
/// let conn = pool.get().await.unwrap();
/// assert_eq!(*conn, 42);
/// # }
/// ```
pub trait Manager: Send + Sync + 'static {
    /// The pooled connection.
    type Connection: Send + 'static;
    /// Why creating or checking a connection failed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Opens a new connection. The pool bounds it by
    /// [`create_timeout`](crate::Builder::create_timeout), runs it in the background (a
    /// caller that gives up does not abort it) and retries failures with backoff.
    fn create(&self) -> impl Future<Output = Result<Self::Connection, Self::Error>> + Send;

    /// Checks (and, if needed, resets) an idle connection before it is handed out: a
    /// validation query, say. `Err` closes the connection and the caller gets another.
    /// Bounded by [`recycle_timeout`](crate::Builder::recycle_timeout). The default
    /// accepts every connection.
    fn recycle(
        &self,
        connection: &mut Self::Connection,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let _ = connection;
        std::future::ready(Ok(()))
    }

    /// A cheap, synchronous check that a connection is dead (its socket closed, say). Runs
    /// on every checkout and every return; a broken connection is closed, never handed
    /// out. The default: never broken.
    fn is_broken(&self, connection: &Self::Connection) -> bool {
        let _ = connection;
        false
    }

    /// Runs once on every new connection before it is used (session settings, say). `Err`
    /// counts as a failed create.
    fn after_create(
        &self,
        connection: &mut Self::Connection,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let _ = connection;
        std::future::ready(Ok(()))
    }

    /// Runs synchronously on every checkout, after any validation, just before the caller
    /// gets the connection. `Err` closes the connection and the caller gets another.
    fn before_checkout(&self, connection: &mut Self::Connection) -> Result<(), Self::Error> {
        let _ = connection;
        Ok(())
    }

    /// Runs synchronously when a connection comes back, before anyone else can get it
    /// (clear per-use state, say). `false` closes it instead of keeping it.
    fn after_return(&self, connection: &mut Self::Connection) -> bool {
        let _ = connection;
        true
    }
}
