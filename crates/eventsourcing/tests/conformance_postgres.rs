//! The `EventStore` conformance suite on [`PostgresStore`] against the server at
//! `FLOWBED_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`): one schema per
//! case, dropped before the case and again after it passed. An unreachable server fails
//! every case with a message saying so; nothing is skipped.
#![cfg(feature = "postgres")]

mod common;
mod conformance;

use common::postgres::{connect_store, drop_schema, fresh_schema};
use conformance::{BoxFuture, Fixture};
use flowbed_eventsourcing::postgres::PostgresStore;

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

/// A fresh, empty PostgreSQL store in its own schema; "another handle" is a second
/// `PostgresStore::connect` to the same schema.
async fn postgres_fixture(case: &'static str) -> Fixture<PostgresStore> {
    let schema = schema_name(case);
    let client = fresh_schema(&schema).await;
    let store = connect_store(&schema).await;
    let open_schema = schema.clone();
    Fixture::new(store, move || -> BoxFuture<PostgresStore> {
        let schema = open_schema.clone();
        Box::pin(async move { connect_store(&schema).await })
    })
    .on_success(async move { drop_schema(&client, &schema).await })
}

conformance::conformance_cases!(postgres_fixture);
