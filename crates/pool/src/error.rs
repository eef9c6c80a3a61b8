//! Errors: one type per operation, each saying why.

use std::sync::Arc;
use std::time::Duration;

/// Why [`Pool::get`](crate::Pool::get) (or one of its variants) gave no connection.
///
/// `E` is the [`Manager::Error`](crate::Manager::Error).
///
/// # Examples
///
/// ```
/// use flowbed_pool::{Manager, Pool, PoolError};
/// use std::time::Duration;
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("connection refused")]
/// struct Refused;
///
/// struct Down;
/// impl Manager for Down {
///     type Connection = ();
///     type Error = Refused;
///     async fn create(&self) -> Result<(), Refused> {
///         Err(Refused)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let pool = Pool::builder(Down).max_size(2).build().unwrap();
/// match pool.get_timeout(Duration::from_secs(1)).await {
///     Err(PoolError::Timeout { waited, last_create_error: Some(cause) }) => {
///         assert_eq!(waited, Duration::from_secs(1));
///         assert_eq!(cause.to_string(), "connection refused");
///     }
///     other => panic!("{other:?}"),
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError<E: std::error::Error + 'static> {
    /// No connection became free within the wait timeout. `last_create_error` is the latest
    /// failure to open a connection, if opening is what kept the caller waiting.
    #[error(
        "no connection within {waited:?}{}",
        last_create_error.as_ref().map(|error| format!(" (last create error: {})", display_with_sources(error.as_ref()))).unwrap_or_default()
    )]
    Timeout {
        /// How long the caller waited.
        waited: Duration,
        /// The most recent create failure, if no create has succeeded since.
        #[source]
        last_create_error: Option<Arc<CreateError<E>>>,
    },
    /// The pool was closed (before or while the caller waited).
    #[error("the pool is closed")]
    Closed,
    /// Opening a connection for this caller failed (only with
    /// [`fail_fast`](crate::Builder::fail_fast); otherwise failures are retried in the
    /// background and show up in `Timeout`).
    #[error("creating a connection failed: {0}")]
    Create(#[source] Arc<CreateError<E>>),
    /// The connection picked for this caller failed its check (only with
    /// [`fail_fast`](crate::Builder::fail_fast); otherwise the pool closes it and the caller
    /// gets another). The failed connection has been closed.
    #[error("checking a connection failed: {0}")]
    Recycle(#[source] E),
    /// The connection picked for this caller did not pass its check within
    /// [`recycle_timeout`](crate::Builder::recycle_timeout) (only with
    /// [`fail_fast`](crate::Builder::fail_fast)). It has been closed.
    #[error("checking a connection took longer than {0:?}")]
    RecycleTimeout(Duration),
}

/// An error's message followed by its sources' messages, separated by `": "` (a source
/// whose message the text already ends with is skipped). Drivers often put the useful
/// part, the server's message, in a source: tokio-postgres displays just "db error".
///
/// # Examples
///
/// ```
/// use std::error::Error;
/// use std::fmt;
///
/// /// Like tokio-postgres's error: a vague message, the server's words in the source.
/// #[derive(Debug)]
/// struct Query(std::io::Error);
///
/// impl fmt::Display for Query {
///     fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
///         f.write_str("db error")
///     }
/// }
///
/// impl Error for Query {
///     fn source(&self) -> Option<&(dyn Error + 'static)> {
///         Some(&self.0)
///     }
/// }
///
/// let error = Query(std::io::Error::other("relation \"events\" does not exist"));
/// assert_eq!(
///     flowbed_pool::display_with_sources(&error),
///     "db error: relation \"events\" does not exist"
/// );
/// ```
pub fn display_with_sources(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !text.ends_with(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = cause.source();
    }
    text
}

impl<E: std::error::Error + 'static> PoolError<E> {
    /// Whether this is a [`PoolError::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }
}

/// Why opening a connection failed: the manager's error, or the attempt ran past
/// [`create_timeout`](crate::Builder::create_timeout).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowbed_pool::CreateError;
///
/// let err: CreateError<std::io::Error> = CreateError::TimedOut(Duration::from_secs(5));
/// assert_eq!(err.to_string(), "opening a connection took longer than 5s");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateError<E: std::error::Error + 'static> {
    /// [`Manager::create`](crate::Manager::create) or
    /// [`Manager::after_create`](crate::Manager::after_create) failed.
    #[error(transparent)]
    Failed(E),
    /// The attempt took longer than `create_timeout` and was abandoned.
    #[error("opening a connection took longer than {0:?}")]
    TimedOut(Duration),
}

/// Why [`Builder::build`](crate::Builder::build) refused a configuration.
///
/// # Examples
///
/// ```
/// use flowbed_pool::{BuildError, Manager, Pool};
/// # struct M;
/// # impl Manager for M { type Connection = (); type Error = std::convert::Infallible;
/// #     async fn create(&self) -> Result<(), Self::Error> { Ok(()) } }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let err = Pool::builder(M).max_size(2).min_idle(3).build().unwrap_err();
/// assert_eq!(err, BuildError::MinIdleAboveMaxSize { min_idle: 3, max_size: 2 });
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// `max_size` must be at least 1.
    #[error("max_size must be at least 1")]
    ZeroMaxSize,
    /// `min_idle` cannot exceed `max_size`.
    #[error("min_idle ({min_idle}) must not exceed max_size ({max_size})")]
    MinIdleAboveMaxSize {
        /// The `min_idle` given.
        min_idle: usize,
        /// The `max_size` given.
        max_size: usize,
    },
    /// A duration setting must be longer than zero.
    #[error("{field} must be longer than zero")]
    ZeroDuration {
        /// The setting.
        field: &'static str,
    },
    /// `max_lifetime_jitter` must be shorter than `max_lifetime`, or connections could be
    /// retired as soon as they are made.
    #[error("max_lifetime_jitter ({jitter:?}) must be shorter than max_lifetime ({lifetime:?})")]
    JitterNotBelowLifetime {
        /// The jitter given.
        jitter: Duration,
        /// The lifetime given.
        lifetime: Duration,
    },
    /// The pool runs connection creation and maintenance on a tokio runtime: build it
    /// inside one or pass [`Builder::runtime`](crate::Builder::runtime).
    #[error("no tokio runtime: build the pool inside one or pass Builder::runtime")]
    NoRuntime,
}

/// Why [`Pool::resize`](crate::Pool::resize) refused a size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResizeError {
    /// The size must be at least 1.
    #[error("max_size must be at least 1")]
    Zero,
    /// The size cannot go below `min_idle`.
    #[error("max_size ({max_size}) must not go below min_idle ({min_idle})")]
    BelowMinIdle {
        /// The size asked for.
        max_size: usize,
        /// The pool's `min_idle`.
        min_idle: usize,
    },
    /// The pool is closed.
    #[error("the pool is closed")]
    Closed,
}
