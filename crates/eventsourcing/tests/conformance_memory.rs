//! The `EventStore` conformance suite on [`MemoryStore`], the reference semantics.
#![cfg(feature = "memory")]

mod common;
mod conformance;

use conformance::{BoxFuture, Fixture};
use flowbed_eventsourcing::memory::MemoryStore;

/// A fresh, empty memory store; "another handle" on it is a clone.
async fn memory_fixture(_case: &'static str) -> Fixture<MemoryStore> {
    let store = MemoryStore::new();
    let shared = store.clone();
    Fixture::new(store, move || -> BoxFuture<MemoryStore> {
        let store = shared.clone();
        Box::pin(async move { store })
    })
}

conformance::conformance_cases!(memory_fixture);
