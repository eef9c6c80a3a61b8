//! The `EventStore` conformance suite on [`PostgresStore`] against the server at
//! `FLOWBED_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`): one schema per
//! case, dropped before the case and again after it passed. An unreachable server fails
//! every case with a message saying so; nothing is skipped.
#![cfg(feature = "postgres")]

mod conformance;

use std::time::Duration;

use conformance::{BoxFuture, Fixture};
use flowbed_eventsourcing::postgres::PostgresStore;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Bound on connecting and on the schema statements: longer is a hang.
const STEP: Duration = Duration::from_secs(30);

/// The server's URL.
fn url() -> String {
    std::env::var("FLOWBED_PG_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// A schema name unique to the case and this test process, at most 48 bytes (the longest
/// name `PostgresStore` accepts: its notification channel adds a prefix to it).
fn schema_name(case: &str) -> String {
    // FNV-1a of the full case name keeps truncated names apart.
    let hash = case.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    let short: String = case.chars().take(20).collect();
    let name = format!("es_conf_{short}_{:08x}_{}", hash as u32, std::process::id());
    assert!(name.len() <= 48, "schema name {name:?} is too long");
    name
}

/// A raw connection for dropping schemas; fails the case (never skips it) when the server
/// is unreachable.
async fn admin(url: &str) -> tokio_postgres::Client {
    match tokio::time::timeout(STEP, tokio_postgres::connect(url, tokio_postgres::NoTls)).await {
        Ok(Ok((client, connection))) => {
            tokio::spawn(connection);
            client
        }
        Ok(Err(error)) => panic!(
            "PostgreSQL is unreachable at {url}: {error} (source: {:?}). The postgres \
             conformance suite needs a running server: start it (ci/services.sh, or \
             pg_ctlcluster --skip-systemctl-redirect <version> main start) or point \
             FLOWBED_PG_URL at one",
            std::error::Error::source(&error)
        ),
        Err(_) => panic!("connecting to PostgreSQL at {url} took longer than {STEP:?}"),
    }
}

/// Drops `schema` and everything in it.
async fn drop_schema(client: &tokio_postgres::Client, schema: &str) {
    let statement = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
    match tokio::time::timeout(STEP, client.batch_execute(&statement)).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => panic!("{statement} failed: {error}"),
        Err(_) => panic!("{statement} took longer than {STEP:?}"),
    }
}

/// Connects a store to `schema`, failing the case with the store's error.
async fn connect(url: &str, schema: &str) -> PostgresStore {
    match tokio::time::timeout(STEP, PostgresStore::connect(url, schema)).await {
        Ok(Ok(store)) => store,
        Ok(Err(error)) => {
            panic!("PostgresStore::connect({url:?}, {schema:?}) failed: {error}")
        }
        Err(_) => panic!("PostgresStore::connect({url:?}, {schema:?}) took longer than {STEP:?}"),
    }
}

/// A fresh, empty PostgreSQL store in its own schema; "another handle" is a second
/// `PostgresStore::connect` to the same schema.
async fn postgres_fixture(case: &'static str) -> Fixture<PostgresStore> {
    let url = url();
    let schema = schema_name(case);
    let client = admin(&url).await;
    drop_schema(&client, &schema).await;
    let store = connect(&url, &schema).await;
    let (open_url, open_schema) = (url.clone(), schema.clone());
    Fixture::new(store, move || -> BoxFuture<PostgresStore> {
        let (url, schema) = (open_url.clone(), open_schema.clone());
        Box::pin(async move { connect(&url, &schema).await })
    })
    .on_success(async move { drop_schema(&client, &schema).await })
}

conformance::conformance_cases!(postgres_fixture);
