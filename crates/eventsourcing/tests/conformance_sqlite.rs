//! The `EventStore` conformance suite on [`SqliteStore`]: a fresh database file in its own
//! temporary directory per case.
#![cfg(feature = "sqlite")]

mod common;
mod conformance;

use std::path::PathBuf;

use conformance::{BoxFuture, Fixture};
use flowbed_eventsourcing::sqlite::SqliteStore;

/// Opens the database at `path`, failing the case with the store's error.
fn open(path: &PathBuf) -> SqliteStore {
    SqliteStore::open(path)
        .unwrap_or_else(|error| panic!("SqliteStore::open({}) failed: {error}", path.display()))
}

/// A fresh, empty SQLite store in a new temporary directory (kept until the case ends);
/// "another handle" is a second `SqliteStore::open` of the same file.
async fn sqlite_fixture(case: &'static str) -> Fixture<SqliteStore> {
    let dir = tempfile::Builder::new()
        .prefix(&format!("es-conformance-{case}-"))
        .tempdir()
        .expect("a temporary directory");
    let path = dir.path().join("events.db");
    let store = open(&path);
    Fixture::new(store, move || -> BoxFuture<SqliteStore> {
        let path = path.clone();
        Box::pin(async move { open(&path) })
    })
    .keep(dir)
}

conformance::conformance_cases!(sqlite_fixture);
