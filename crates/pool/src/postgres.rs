//! PostgreSQL connections for a [`Pool`](crate::Pool), through tokio-postgres.
//!
//! Why tokio-postgres: it is the maintained pure-Rust PostgreSQL driver for tokio (no
//! libpq, pipelined queries, pluggable TLS), and unlike sqlx it brings no pool of its own
//! to fight with this one.
//!
//! * [`PgManager`] opens connections from a [`Config`] (or a connection string) and a TLS
//!   connector ([`NoTls`], or any [`MakeTlsConnect`] such as `postgres-native-tls` or
//!   `tokio-postgres-rustls`), spawning each connection's I/O task on the current tokio
//!   runtime (the pool's, when the pool opens it).
//! * [`PgConnection`] is what the pool hands out: it derefs to
//!   [`tokio_postgres::Client`] and adds a per-connection statement cache
//!   ([`prepare_cached`](PgConnection::prepare_cached)).
//! * A connection whose socket closed (the server restarted, the backend was terminated)
//!   is [broken](crate::Manager::is_broken) and never handed out; an idle one is
//!   [validated](Validation) before reuse; optional session SQL runs on each new
//!   connection ([`PgManager::session_setup`]).
//! * Errors are [`tokio_postgres::Error`]: a server that refuses a connection shows up in
//!   [`PoolError::Timeout`](crate::PoolError::Timeout)'s `last_create_error` (or as
//!   [`PoolError::Create`](crate::PoolError::Create) with
//!   [`fail_fast`](crate::Builder::fail_fast)) with the server's message.
//!
//! # Examples
//!
//! ```no_run
//! use flowbed_pool::Pool;
//! use flowbed_pool::postgres::PgManager;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = PgManager::parse("postgres://postgres@127.0.0.1:5432/test")?
//!     .session_setup("SET application_name = 'my-service'");
//! let pool = Pool::builder(manager).max_size(8).build()?;
//!
//! let conn = pool.get().await?;
//! let statement = conn.prepare_cached("SELECT $1::int4 + 1").await?; // prepared once per connection
//! let row = conn.query_one(&statement, &[&41i32]).await?; // Deref to tokio_postgres::Client
//! assert_eq!(row.get::<_, i32>(0), 42);
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard, PoisonError};

pub use tokio_postgres;
pub use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
pub use tokio_postgres::{Client, Config, Error, NoTls, Socket, Statement};

use crate::Manager;

/// How [`PgManager`] checks an idle connection before handing it out (the pool's
/// [`recycle`](crate::Manager::recycle), run for connections idle longer than
/// [`validate_after`](crate::Builder::validate_after)).
///
/// # Examples
///
/// ```
/// use flowbed_pool::postgres::{PgManager, Validation};
///
/// let manager = PgManager::parse("host=127.0.0.1 user=postgres dbname=test")
///     .unwrap()
///     .validation(Validation::Query("SELECT 1 FROM pg_database LIMIT 1".to_owned()));
/// assert_eq!(Validation::default(), Validation::Query("SELECT 1".to_owned()));
/// # let _ = manager;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Validation {
    /// Run this SQL with the simple-query protocol (one round trip); an error closes the
    /// connection and the caller gets another. The default: `SELECT 1`.
    Query(String),
    /// No round trip: only check that the connection's socket is still open
    /// ([`Client::is_closed`]), as the pool does on every checkout anyway. Cheapest, but a
    /// backend that died without the client noticing yet is handed out.
    SocketOnly,
}

impl Default for Validation {
    fn default() -> Self {
        Self::Query("SELECT 1".to_owned())
    }
}

/// Opens, checks and closes tokio-postgres connections for a [`Pool`](crate::Pool).
///
/// `T` is the TLS connector: [`NoTls`] (the default), or any [`MakeTlsConnect`] over
/// tokio-postgres' [`Socket`] whose futures and streams are `Send` — the same bounds as
/// deadpool-postgres, so `postgres-native-tls` and `tokio-postgres-rustls` fit.
///
/// Each new connection's I/O task is spawned on the current tokio runtime (when the pool
/// opens a connection, that is the pool's runtime); it ends when the connection is closed.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowbed_pool::Pool;
/// use flowbed_pool::postgres::{Config, NoTls, PgManager, Validation};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let mut config = Config::new();
/// config.host("127.0.0.1").user("postgres").dbname("test");
/// let manager = PgManager::new(config, NoTls)
///     .validation(Validation::Query("SELECT 1".to_owned()))
///     .session_setup("SET statement_timeout = '5s'");
/// // Nothing connects until a connection is asked for (or `min_idle` is set).
/// let pool = Pool::builder(manager)
///     .max_size(8)
///     .create_timeout(Duration::from_secs(5))
///     .build()
///     .unwrap();
/// assert_eq!(pool.manager().config().get_dbname(), Some("test"));
/// # }
/// ```
pub struct PgManager<T = NoTls> {
    config: Config,
    tls: T,
    validation: Validation,
    session_setup: Option<String>,
}

impl<T> fmt::Debug for PgManager<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgManager")
            .field("config", &self.config) // tokio-postgres redacts the password
            .field("tls", &std::any::type_name::<T>())
            .field("validation", &self.validation)
            .field("session_setup", &self.session_setup)
            .finish()
    }
}

impl PgManager<NoTls> {
    /// A manager without TLS from a connection string, either a URL
    /// (`postgres://user:password@host:port/dbname?application_name=app`) or key-value
    /// pairs (`host=localhost user=postgres dbname=app`), in the syntax of [`Config`].
    /// Does not connect.
    ///
    /// # Errors
    ///
    /// The string does not parse.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_pool::postgres::PgManager;
    ///
    /// let manager = PgManager::parse("postgres://postgres@127.0.0.1:5432/test").unwrap();
    /// assert_eq!(manager.config().get_user(), Some("postgres"));
    /// assert!(PgManager::parse("postgres://host:not-a-port/db").is_err());
    /// ```
    pub fn parse(connection_string: &str) -> Result<Self, Error> {
        Ok(Self::new(connection_string.parse()?, NoTls))
    }
}

impl FromStr for PgManager<NoTls> {
    type Err = Error;

    /// As [`PgManager::parse`].
    fn from_str(connection_string: &str) -> Result<Self, Error> {
        Self::parse(connection_string)
    }
}

impl<T> PgManager<T> {
    /// A manager that connects with `config` through `tls`, validating idle connections
    /// with `SELECT 1` and running no session setup.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_pool::postgres::{Config, NoTls, PgManager};
    ///
    /// let config: Config = "host=127.0.0.1 user=postgres".parse().unwrap();
    /// let manager = PgManager::new(config, NoTls);
    /// # let _ = manager;
    /// ```
    pub fn new(config: Config, tls: T) -> Self {
        Self {
            config,
            tls,
            validation: Validation::default(),
            session_setup: None,
        }
    }

    /// How idle connections are checked before reuse (default
    /// `Validation::Query("SELECT 1")`).
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_pool::postgres::{PgManager, Validation};
    ///
    /// let manager = PgManager::parse("host=127.0.0.1").unwrap().validation(Validation::SocketOnly);
    /// # let _ = manager;
    /// ```
    #[must_use]
    pub fn validation(mut self, validation: Validation) -> Self {
        self.validation = validation;
        self
    }

    /// SQL run once on every new connection before it is used (any number of
    /// `;`-separated statements, through [`Client::batch_execute`]): session settings
    /// such as `SET application_name = 'api'; SET statement_timeout = '5s'`. If it fails,
    /// the connection counts as a failed create.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_pool::postgres::PgManager;
    ///
    /// let manager = PgManager::parse("host=127.0.0.1")
    ///     .unwrap()
    ///     .session_setup("SET application_name = 'api'; SET TIME ZONE 'UTC'");
    /// # let _ = manager;
    /// ```
    #[must_use]
    pub fn session_setup(mut self, sql: impl Into<String>) -> Self {
        self.session_setup = Some(sql.into());
        self
    }

    /// The connection settings.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_pool::postgres::PgManager;
    ///
    /// let manager = PgManager::parse("host=127.0.0.1 dbname=app").unwrap();
    /// assert_eq!(manager.config().get_dbname(), Some("app"));
    /// ```
    pub fn config(&self) -> &Config {
        &self.config
    }
}

impl<T> Manager for PgManager<T>
where
    T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    type Connection = PgConnection;
    type Error = Error;

    /// Connects and spawns the connection's I/O task on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (the pool always calls it inside its own).
    async fn create(&self) -> Result<PgConnection, Error> {
        let (client, connection) = self.config.connect(self.tls.clone()).await?;
        // The task ends when the client is dropped (after telling the server) or the
        // socket fails; either way `Client::is_closed` turns true and the pool drops the
        // connection. The error itself reaches the client's pending queries.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(PgConnection::new(client))
    }

    async fn recycle(&self, connection: &mut PgConnection) -> Result<(), Error> {
        match &self.validation {
            Validation::Query(sql) => connection.client.simple_query(sql).await.map(drop),
            Validation::SocketOnly => Ok(()),
        }
    }

    fn is_broken(&self, connection: &PgConnection) -> bool {
        connection.client.is_closed()
    }

    async fn after_create(&self, connection: &mut PgConnection) -> Result<(), Error> {
        match &self.session_setup {
            Some(sql) => connection.client.batch_execute(sql).await,
            None => Ok(()),
        }
    }
}

/// A tokio-postgres [`Client`] with a statement cache: what a pool of [`PgManager`] hands
/// out. Use it as a `Client` (it derefs to one); prepare repeated queries with
/// [`prepare_cached`](Self::prepare_cached), which prepares each SQL text once per
/// connection.
///
/// The cache has no size limit: it holds one statement per distinct SQL text, so cache
/// fixed query texts, not SQL built from values. After a schema change that alters a
/// cached query's result columns the server rejects the old statement ("cached plan must
/// not change result type"); [`clear_statement_cache`](Self::clear_statement_cache) then
/// forgets (and deallocates) them.
///
/// # Examples
///
/// ```no_run
/// use flowbed_pool::Pool;
/// use flowbed_pool::postgres::PgManager;
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = Pool::builder(PgManager::parse("postgres://postgres@127.0.0.1/test")?).build()?;
/// let mut conn = pool.get().await?;
/// let insert = conn.prepare_cached("INSERT INTO events (name) VALUES ($1)").await?;
/// // DerefMut to Client: transactions need `&mut Client`.
/// let tx = conn.transaction().await?;
/// tx.execute(&insert, &[&"started"]).await?;
/// tx.commit().await?;
/// # Ok(())
/// # }
/// ```
pub struct PgConnection {
    client: Client,
    statements: Mutex<HashMap<String, Statement>>,
}

impl fmt::Debug for PgConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConnection")
            .field("closed", &self.client.is_closed())
            .field("cached_statements", &self.statement_cache_len())
            .finish_non_exhaustive()
    }
}

impl PgConnection {
    /// Wraps a connected client, with an empty statement cache. (A pool's manager does
    /// this for you; this is for a client opened some other way.)
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use flowbed_pool::postgres::{Config, NoTls, PgConnection};
    ///
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), flowbed_pool::postgres::Error> {
    /// let config: Config = "host=127.0.0.1 user=postgres".parse()?;
    /// let (client, connection) = config.connect(NoTls).await?;
    /// tokio::spawn(connection);
    /// let conn = PgConnection::new(client);
    /// assert_eq!(conn.statement_cache_len(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(client: Client) -> Self {
        Self {
            client,
            statements: Mutex::new(HashMap::new()),
        }
    }

    /// [`Client::prepare`] once per connection: the first call for a SQL text prepares it
    /// on the server and caches the [`Statement`]; later calls on this connection return
    /// the cached one without a round trip. Takes `&self`, so it works through a shared
    /// reference; the cache's lock is never held across the server round trip (two
    /// concurrent first calls for the same text may both prepare; one statement is kept).
    ///
    /// # Errors
    ///
    /// The server rejected the SQL, or the connection is closed. Nothing is cached then.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use flowbed_pool::postgres::PgConnection;
    /// # async fn example(conn: &PgConnection) -> Result<(), flowbed_pool::postgres::Error> {
    /// let by_id = conn.prepare_cached("SELECT name FROM users WHERE id = $1").await?;
    /// let again = conn.prepare_cached("SELECT name FROM users WHERE id = $1").await?; // no round trip
    /// assert_eq!(conn.statement_cache_len(), 1);
    /// let rows = conn.query(&again, &[&7i64]).await?;
    /// # let _ = (by_id, rows);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn prepare_cached(&self, sql: &str) -> Result<Statement, Error> {
        if let Some(statement) = self.cache().get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql).await?;
        Ok(self
            .cache()
            .entry(sql.to_owned())
            .or_insert(statement)
            .clone())
    }

    /// Forgets every cached statement. Each is deallocated on the server once no clone of
    /// it is left.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use flowbed_pool::postgres::PgConnection;
    /// # async fn example(conn: &PgConnection) -> Result<(), flowbed_pool::postgres::Error> {
    /// conn.prepare_cached("SELECT 1").await?;
    /// conn.clear_statement_cache();
    /// assert_eq!(conn.statement_cache_len(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn clear_statement_cache(&self) {
        let statements = std::mem::take(&mut *self.cache());
        drop(statements); // outside the lock
    }

    /// How many statements this connection has cached.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use flowbed_pool::postgres::PgConnection;
    /// # async fn example(conn: &PgConnection) -> Result<(), flowbed_pool::postgres::Error> {
    /// let before = conn.statement_cache_len();
    /// conn.prepare_cached("SELECT now()").await?;
    /// assert!(conn.statement_cache_len() <= before + 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn statement_cache_len(&self) -> usize {
        self.cache().len()
    }

    /// The client.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use flowbed_pool::postgres::PgConnection;
    /// # fn example(conn: &PgConnection) {
    /// let open = !conn.client().is_closed();
    /// # let _ = open;
    /// # }
    /// ```
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The client, dropping the statement cache (its statements are deallocated).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use flowbed_pool::postgres::PgConnection;
    /// # fn example(conn: PgConnection) {
    /// let client: flowbed_pool::postgres::Client = conn.into_client();
    /// # let _ = client;
    /// # }
    /// ```
    pub fn into_client(self) -> Client {
        self.client
    }

    fn cache(&self) -> MutexGuard<'_, HashMap<String, Statement>> {
        // The map stays consistent whatever panicked while it was locked.
        self.statements
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Deref for PgConnection {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl DerefMut for PgConnection {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

impl AsRef<Client> for PgConnection {
    fn as_ref(&self) -> &Client {
        &self.client
    }
}

impl From<Client> for PgConnection {
    fn from(client: Client) -> Self {
        Self::new(client)
    }
}
