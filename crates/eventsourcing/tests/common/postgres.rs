//! PostgreSQL test setup: the server's URL, a plain connection, and a fresh schema per
//! test. An unreachable server fails the test with a message saying how to start one;
//! nothing is skipped.

use std::time::Duration;

use flowbed_eventsourcing::postgres::PostgresStore;
use tokio_postgres::{Client, NoTls};

/// The server used when `FLOWBED_PG_URL` is not set.
pub(crate) const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Bound on connecting and on a schema statement: longer is a hang.
pub(crate) const STEP: Duration = Duration::from_secs(30);

/// The server's URL: `FLOWBED_PG_URL`, or [`DEFAULT_URL`].
pub(crate) fn url() -> String {
    std::env::var("FLOWBED_PG_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// A plain connection for the test's own SQL (its connection task is spawned on the
/// current runtime).
///
/// # Panics
///
/// When the server is unreachable or connecting takes longer than [`STEP`].
pub(crate) async fn connect_client() -> Client {
    let url = url();
    match tokio::time::timeout(STEP, tokio_postgres::connect(&url, NoTls)).await {
        Ok(Ok((client, connection))) => {
            tokio::spawn(connection);
            client
        }
        Ok(Err(error)) => panic!(
            "PostgreSQL at {url} is unreachable: {error} (source: {:?}). Start it \
             (ci/services.sh, or pg_ctlcluster --skip-systemctl-redirect <version> main \
             start) or point FLOWBED_PG_URL at a server",
            std::error::Error::source(&error)
        ),
        Err(_) => panic!("connecting to PostgreSQL at {url} took longer than {STEP:?}"),
    }
}

/// Drops `schema` and everything in it (nothing when it does not exist).
///
/// # Panics
///
/// When the statement fails or takes longer than [`STEP`].
pub(crate) async fn drop_schema(client: &Client, schema: &str) {
    let statement = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
    match tokio::time::timeout(STEP, client.batch_execute(&statement)).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => panic!("{statement} failed: {error}"),
        Err(_) => panic!("{statement} took longer than {STEP:?}"),
    }
}

/// Drops `schema` (a clean slate for the test) and returns a [`connect_client`] connection.
pub(crate) async fn fresh_schema(schema: &str) -> Client {
    let client = connect_client().await;
    drop_schema(&client, schema).await;
    client
}

/// Connects a store to `schema` (creating or migrating it).
///
/// # Panics
///
/// When the store cannot connect or connecting takes longer than [`STEP`].
pub(crate) async fn connect_store(schema: &str) -> PostgresStore {
    let url = url();
    match tokio::time::timeout(STEP, PostgresStore::connect(&url, schema)).await {
        Ok(Ok(store)) => store,
        Ok(Err(error)) => {
            panic!("PostgresStore::connect({url:?}, {schema:?}) failed: {error}")
        }
        Err(_) => panic!("PostgresStore::connect({url:?}, {schema:?}) took longer than {STEP:?}"),
    }
}
